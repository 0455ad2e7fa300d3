//! Drawing the cluster with embedded-graphics, and redrawing only what
//! changed.
//!
//! The picture is a static part (background, telltale strip, dial faces
//! with their ticks and numbers, labels) and a dynamic part drawn over it
//! (readouts, gear, odometer, telltales, needles, hubs) from a [`Visual`],
//! the values as shown. Each frame compares the new `Visual` with the one
//! on screen; every rectangle of what changed is restored from the static
//! part (dial faces come from a cache drawn once, when there is memory
//! for it) and the dynamic part is drawn again clipped to it, in its
//! stacking order. The window is cleared to transparent last, and the
//! frame counter drawn over everything.

use crate::canvas::{Canvas, TRANSPARENT, rgb};
use crate::counter;
use crate::damage::{Damage, Rect, round};
use crate::drive::{Car, Gear, lamp};
use crate::layout::{CHAR_H, CHAR_W, Dial, Label, Layout, Telltale, label_box};
use crate::segment::{self, Row};
use embedded_graphics::mono_font::ascii::{FONT_9X18_BOLD, FONT_10X20};
use embedded_graphics::mono_font::{MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{
    Arc, Circle, Line, PrimitiveStyle, PrimitiveStyleBuilder, Rectangle, RoundedRectangle, Sector,
    StrokeAlignment, Triangle,
};
use embedded_graphics::text::{Baseline, Text};

/// The palette.
pub mod colour {
    use crate::canvas::rgb;
    use embedded_graphics::pixelcolor::Rgb888;

    pub const BACKGROUND: Rgb888 = rgb(0x07090d);
    pub const STRIP: Rgb888 = rgb(0x020304);
    pub const STRIP_EDGE: Rgb888 = rgb(0x1e2835);
    pub const FACE: Rgb888 = rgb(0x10151c);
    pub const FACE_INNER: Rgb888 = rgb(0x0b0f14);
    pub const RIM: Rgb888 = rgb(0x33404f);
    pub const RIM_LIGHT: Rgb888 = rgb(0x5a7088);
    pub const TICK: Rgb888 = rgb(0xe6edf5);
    pub const TICK_MINOR: Rgb888 = rgb(0x7d8b9a);
    pub const NUMBER: Rgb888 = rgb(0xd5dde6);
    pub const RED_ZONE: Rgb888 = rgb(0xd42020);
    pub const NEEDLE: Rgb888 = rgb(0xff4a1a);
    pub const NEEDLE_CORE: Rgb888 = rgb(0xffb08a);
    pub const HUB: Rgb888 = rgb(0x2a333f);
    pub const HUB_RING: Rgb888 = rgb(0x6b7c8f);
    pub const DIGIT: Rgb888 = rgb(0xf2f6fa);
    pub const DIGIT_GHOST: Rgb888 = rgb(0x161c24);
    pub const LABEL: Rgb888 = rgb(0x8896a6);
    pub const GEAR: Rgb888 = rgb(0xf2f6fa);
    pub const SELECTOR_OFF: Rgb888 = rgb(0x3a4552);
    pub const SELECTOR_ON: Rgb888 = rgb(0x49c8ff);
    pub const TURN: Rgb888 = rgb(0x1fd655);
    pub const HIGH_BEAM: Rgb888 = rgb(0x2f7dff);
    pub const BELT: Rgb888 = rgb(0xff2a2a);
    pub const ENGINE: Rgb888 = rgb(0xffb000);
    pub const PARKING: Rgb888 = rgb(0xff3030);
    pub const WARNING: Rgb888 = rgb(0xb3121a);
    pub const WARNING_TEXT: Rgb888 = rgb(0xffffff);
    pub const BAR: Rgb888 = rgb(0x12171e);
    pub const BAR_EDGE: Rgb888 = rgb(0x27313d);
    /// The strip after the driver touched it (acknowledged).
    pub const ACK: Rgb888 = rgb(0x1e7d32);
}

use colour::*;

/// The values as the cluster shows them (rounded to what can be seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Visual {
    /// Speedometer needle, in 0.1 km/h.
    pub speed_tenths: u32,
    /// Tachometer needle, in 10 rpm.
    pub rpm_tens: u32,
    /// Digital readouts: km/h, rpm (to 50).
    pub speed: u32,
    pub rpm: u32,
    pub gear: Gear,
    pub odo_km: u64,
    /// Trip counter, in 0.1 km.
    pub trip_tenths: u64,
    /// `drive::lamp` bits lit (indicators as they flash).
    pub lamps: u8,
    /// The seat belt warning on the center display.
    pub warning: bool,
    /// The driver touched the strip a moment ago: it shows the
    /// acknowledgement instead.
    pub acknowledged: bool,
}

impl Visual {
    /// What to show for `car` at `t_ms`, with the odometer at
    /// `odo_metres` and `trip_metres` driven since boot.
    pub fn new(car: &Car, t_ms: u64, odo_metres: u64, trip_metres: u64) -> Visual {
        let speed = car.speed_kmh.max(0.0);
        let rpm = car.rpm.max(0.0);
        Visual {
            speed_tenths: round(speed * 10.0) as u32,
            rpm_tens: round(rpm / 10.0) as u32,
            speed: round(speed) as u32,
            rpm: (round(rpm / 50.0) * 50) as u32,
            gear: car.gear,
            odo_km: odo_metres / 1000,
            trip_tenths: trip_metres / 100,
            lamps: car.lit(t_ms),
            warning: car.lamps & lamp::BELT != 0,
            acknowledged: false,
        }
    }
}

fn eg(r: &Rect) -> Rectangle {
    Rectangle::new(Point::new(r.x0, r.y0), Size::new(r.width(), r.height()))
}

fn pt(p: (f32, f32)) -> Point {
    Point::new(round(p.0), round(p.1))
}

fn fill(c: Rgb888) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyle::with_fill(c)
}

fn stroke(c: Rgb888, w: u32) -> PrimitiveStyle<Rgb888> {
    PrimitiveStyle::with_stroke(c, w)
}

/// Draws and ignores the result: every target here is infallible.
fn put<D, T>(d: &mut D, item: &T)
where
    D: DrawTarget<Color = Rgb888>,
    T: Drawable<Color = Rgb888>,
{
    let _ = item.draw(d);
}

/// A target that magnifies: each pixel drawn becomes a `k` x `k` block at
/// `origin + k * p` of the target underneath (to enlarge bitmap fonts).
struct Scaled<'a, D> {
    target: &'a mut D,
    origin: Point,
    k: u32,
}

impl<D: DrawTarget> Dimensions for Scaled<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        Rectangle::new(Point::zero(), Size::new(1 << 15, 1 << 15))
    }
}

impl<D: DrawTarget> DrawTarget for Scaled<'_, D> {
    type Color = D::Color;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), D::Error>
    where
        I: IntoIterator<Item = Pixel<D::Color>>,
    {
        let k = self.k;
        for Pixel(p, c) in pixels {
            let at = self.origin + p * k as i32;
            self.target
                .fill_solid(&Rectangle::new(at, Size::new(k, k)), c)?;
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: D::Color) -> Result<(), D::Error> {
        let k = self.k;
        let at = self.origin + area.top_left * k as i32;
        self.target
            .fill_solid(&Rectangle::new(at, area.size * k), color)
    }
}

/// `s` centred on (`cx`, `cy`) in `font` magnified `k` times.
fn text<D>(d: &mut D, s: &str, cx: i32, cy: i32, font: &MonoFont<'_>, k: u32, c: Rgb888)
where
    D: DrawTarget<Color = Rgb888>,
{
    let cw = (font.character_size.width + font.character_spacing) as i32;
    let w = cw * s.len() as i32 * k as i32;
    let h = font.character_size.height as i32 * k as i32;
    let mut scaled = Scaled {
        target: d,
        origin: Point::new(cx - w / 2, cy - h / 2),
        k: k.max(1),
    };
    let style = MonoTextStyle::new(font, c);
    let _ = Text::with_baseline(s, Point::zero(), style, Baseline::Top).draw(&mut scaled);
}

fn label<D: DrawTarget<Color = Rgb888>>(d: &mut D, s: &str, at: &Label, c: Rgb888) {
    text(d, s, at.cx, at.cy, &FONT_10X20, at.scale, c);
}

/// Everything that does not change: the layout and how to draw it.
pub struct Scene {
    pub layout: Layout,
}

impl Scene {
    pub fn new(layout: Layout) -> Scene {
        Scene { layout }
    }

    /// The static picture outside the dial faces, as far as it falls in
    /// `clip` (the target is clipped to it too).
    fn draw_chrome<D: DrawTarget<Color = Rgb888>>(&self, d: &mut D, clip: Rect) {
        let l = &self.layout;
        let _ = d.fill_solid(&eg(&clip), BACKGROUND);
        let strip = l.strip.intersect(&clip);
        if !strip.is_empty() {
            let _ = d.fill_solid(&eg(&strip), STRIP);
            let edge = Rect::new(0, l.strip.y1 - 2, l.width, 2).intersect(&clip);
            let _ = d.fill_solid(&eg(&edge), STRIP_EDGE);
        }
        for (s, at) in [
            ("ODO", &l.odo_label),
            ("km", &l.odo_unit),
            ("TRIP", &l.trip_label),
            ("km", &l.trip_unit),
        ] {
            if label_box(at, s.len()).intersects(&clip) {
                label(d, s, at, LABEL);
            }
        }
    }

    /// A dial's face: rim, ticks, numbers, red zone, unit.
    pub fn draw_face<D: DrawTarget<Color = Rgb888>>(&self, dial: &Dial, d: &mut D) {
        let c = Point::new(dial.cx, dial.cy);
        let r = dial.r;
        let diameter = |radius: i32| (2 * radius + 1) as u32;
        put(
            d,
            &Circle::with_center(c, diameter(r)).into_styled(fill(FACE)),
        );
        put(
            d,
            &Circle::with_center(c, diameter(r * 70 / 100)).into_styled(fill(FACE_INNER)),
        );
        // The rim: a dark band with a bright edge.
        let rim_w = (r / 28).max(2) as u32;
        put(
            d,
            &Circle::with_center(c, diameter(r)).into_styled(
                PrimitiveStyleBuilder::new()
                    .stroke_color(RIM)
                    .stroke_width(rim_w)
                    .stroke_alignment(StrokeAlignment::Inside)
                    .build(),
            ),
        );
        put(
            d,
            &Circle::with_center(c, diameter(r)).into_styled(
                PrimitiveStyleBuilder::new()
                    .stroke_color(RIM_LIGHT)
                    .stroke_width(1)
                    .stroke_alignment(StrokeAlignment::Inside)
                    .build(),
            ),
        );
        let rf = r as f32;
        if let Some(red) = dial.red_from {
            let a0 = dial.degrees(red);
            let a1 = dial.degrees(dial.max);
            let band = (r / 16).max(2) as u32;
            put(
                d,
                &Arc::with_center(
                    c,
                    diameter(r * 86 / 100),
                    Angle::from_degrees(a0),
                    Angle::from_degrees(a1 - a0),
                )
                .into_styled(stroke(RED_ZONE, band)),
            );
        }
        // Ticks.
        let steps = (dial.max / dial.minor) as i32;
        let major_every = (dial.major / dial.minor) as i32;
        for i in 0..=steps {
            let v = i as f32 * dial.minor;
            let deg = dial.degrees(v);
            let major = i % major_every == 0;
            let red = dial.red_from.is_some_and(|r| v >= r);
            let (inner, width, colour) = if major {
                (0.80, (r / 45).max(2), if red { RED_ZONE } else { TICK })
            } else {
                (
                    0.87,
                    (r / 110).max(1),
                    if red { RED_ZONE } else { TICK_MINOR },
                )
            };
            let (x0, y0) = dial.pixel(deg, rf * inner);
            let (x1, y1) = dial.pixel(deg, rf * 0.93);
            put(
                d,
                &Line::new(Point::new(x0, y0), Point::new(x1, y1))
                    .into_styled(stroke(colour, width as u32)),
            );
            if major {
                let value = (v / dial.label_div) as u32;
                let mut buf = [0u8; 4];
                let s = decimal(value, &mut buf);
                let (lx, ly) = dial.pixel(deg, rf * 0.67);
                let (font, k) = number_font(r);
                text(d, s, lx, ly, font, k, if red { RED_ZONE } else { NUMBER });
            }
        }
        let unit = if dial.label_div > 1.0 {
            "x1000 rpm"
        } else {
            "km/h"
        };
        let at = if dial.label_div > 1.0 {
            &self.layout.rpm_unit
        } else {
            &self.layout.speed_unit
        };
        label(d, unit, at, LABEL);
    }

    /// The dynamic picture of `v`, as far as it falls in `clip`.
    fn draw_dynamic<D: DrawTarget<Color = Rgb888>>(&self, v: &Visual, d: &mut D, clip: Rect) {
        let l = &self.layout;
        let mut buf = [' '; segment::MAX_CELLS];
        buf[..3].copy_from_slice(&segment::number(u64::from(v.speed), 3, 1)[..3]);
        draw_row(d, &l.speed_row, &buf, clip, DIGIT);
        buf[..4].copy_from_slice(&segment::number(u64::from(v.rpm), 4, 1)[..4]);
        draw_row(d, &l.rpm_row, &buf, clip, DIGIT);
        draw_row(d, &l.odo_row, &segment::number(v.odo_km, 6, 1), clip, DIGIT);
        draw_row(
            d,
            &l.trip_row,
            &segment::number(v.trip_tenths, 4, 2),
            clip,
            DIGIT,
        );
        if let Some(dot) = l.trip_row.dot
            && dot.intersects(&clip)
        {
            let _ = d.fill_solid(&eg(&dot), DIGIT);
        }

        for (i, b) in l.prnd.iter().enumerate() {
            if b.intersects(&clip) {
                let on = v.gear.selector() == i;
                let s = ["P", "R", "N", "D"][i];
                let (cx, cy) = ((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2);
                let c = if on { SELECTOR_ON } else { SELECTOR_OFF };
                text(d, s, cx, cy, &FONT_10X20, l.prnd_scale, c);
            }
        }
        if l.gear.intersects(&clip) {
            let mut s = [0u8; 4];
            let g = v.gear.symbol().encode_utf8(&mut s);
            let (cx, cy) = ((l.gear.x0 + l.gear.x1) / 2, (l.gear.y0 + l.gear.y1) / 2);
            text(d, g, cx, cy, &FONT_10X20, l.gear_scale, GEAR);
        }

        for (t, b) in Telltale::ALL.iter().zip(l.telltales.iter()) {
            if v.lamps & t.lamp() != 0 && b.intersects(&clip) {
                draw_telltale(d, *t, b);
            }
        }

        let needles = [
            (&l.speedo, v.speed_tenths as f32 / 10.0),
            (&l.tacho, v.rpm_tens as f32 * 10.0),
        ];
        for (dial, value) in needles {
            let n = dial.needle(value);
            let reach = Rect::bounding(&[n.tip, n.tail, n.left, n.right]).pad(2);
            if reach.intersects(&clip) {
                let (tip, tail, left, right) = (pt(n.tip), pt(n.tail), pt(n.left), pt(n.right));
                put(
                    d,
                    &Triangle::new(tip, left, right).into_styled(fill(NEEDLE)),
                );
                put(
                    d,
                    &Triangle::new(tail, left, right).into_styled(fill(NEEDLE)),
                );
                let centre = Point::new(dial.cx, dial.cy);
                put(
                    d,
                    &Line::new(centre, tip).into_styled(stroke(NEEDLE_CORE, 1)),
                );
            }
            let hub = dial.hub();
            if hub.intersects(&clip) {
                put(
                    d,
                    &Circle::with_center(Point::new(dial.cx, dial.cy), hub.width() + 1)
                        .into_styled(
                            PrimitiveStyleBuilder::new()
                                .fill_color(HUB)
                                .stroke_color(HUB_RING)
                                .stroke_width(2)
                                .build(),
                        ),
                );
            }
        }
    }

    /// Adds to `dmg` where `old` and `new` look different.
    pub fn damage<const N: usize>(&self, old: &Visual, new: &Visual, dmg: &mut Damage<N>) {
        let l = &self.layout;
        if old.speed_tenths != new.speed_tenths {
            let (a, b) = (
                old.speed_tenths as f32 / 10.0,
                new.speed_tenths as f32 / 10.0,
            );
            for r in l.speedo.needle_damage(a, b) {
                dmg.add(r);
            }
        }
        if old.rpm_tens != new.rpm_tens {
            let (a, b) = (old.rpm_tens as f32 * 10.0, new.rpm_tens as f32 * 10.0);
            for r in l.tacho.needle_damage(a, b) {
                dmg.add(r);
            }
        }
        let rows = [
            (&l.speed_row, u64::from(old.speed), u64::from(new.speed), 1),
            (&l.rpm_row, u64::from(old.rpm), u64::from(new.rpm), 1),
            (&l.odo_row, old.odo_km, new.odo_km, 1),
            (&l.trip_row, old.trip_tenths, new.trip_tenths, 2),
        ];
        for (row, a, b, min) in rows {
            if a != b {
                let (a, b) = (
                    segment::number(a, row.n, min),
                    segment::number(b, row.n, min),
                );
                for (i, cell) in row.cells().iter().enumerate() {
                    if a[i] != b[i] {
                        dmg.add(cell.pad(1));
                    }
                }
            }
        }
        if old.gear != new.gear {
            dmg.add(l.gear);
        }
        if old.gear.selector() != new.gear.selector() {
            dmg.add(l.prnd[old.gear.selector()]);
            dmg.add(l.prnd[new.gear.selector()]);
        }
        for (t, b) in Telltale::ALL.iter().zip(l.telltales.iter()) {
            if (old.lamps ^ new.lamps) & t.lamp() != 0 {
                dmg.add(*b);
            }
        }
    }
}

/// The labels' font for a dial of radius `r`, and its magnification.
fn number_font(r: i32) -> (&'static MonoFont<'static>, u32) {
    if r >= 150 {
        (&FONT_10X20, 1)
    } else {
        (&FONT_9X18_BOLD, 1)
    }
}

/// `v` in decimal, in `buf`.
fn decimal(mut v: u32, buf: &mut [u8; 4]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("?")
}

/// The cells of `row` showing `chars` (unlit segments faintly), those in
/// `clip` only.
fn draw_row<D: DrawTarget<Color = Rgb888>>(
    d: &mut D,
    row: &Row,
    chars: &[char; segment::MAX_CELLS],
    clip: Rect,
    lit: Rgb888,
) {
    for (i, cell) in row.cells().iter().enumerate() {
        if !cell.pad(1).intersects(&clip) {
            continue;
        }
        let on = segment::segments(chars[i]);
        for s in 0..7 {
            let c = if on & 1 << s != 0 { lit } else { DIGIT_GHOST };
            draw_segment(d, cell, s, c);
        }
    }
}

/// Segment `s` of `cell`: a bar with pointed ends (two triangles and a
/// rectangle).
fn draw_segment<D: DrawTarget<Color = Rgb888>>(d: &mut D, cell: &Rect, s: usize, c: Rgb888) {
    let p = segment::hexagon(cell, s).map(|(x, y)| Point::new(x, y));
    let style = fill(c);
    put(d, &Triangle::new(p[0], p[1], p[5]).into_styled(style));
    put(d, &Triangle::new(p[2], p[3], p[4]).into_styled(style));
    let body = if segment::horizontal(s) {
        Rect::corners(p[1].x, p[1].y, p[4].x, p[4].y)
    } else {
        Rect::corners(p[5].x, p[5].y, p[2].x, p[2].y)
    };
    let _ = d.fill_solid(&eg(&body), c);
}

/// One telltale's symbol, lit, in box `b`.
fn draw_telltale<D: DrawTarget<Color = Rgb888>>(d: &mut D, t: Telltale, b: &Rect) {
    let s = b.width() as i32;
    let (cx, cy) = ((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2);
    let at = |fx: i32, fy: i32| Point::new(b.x0 + s * fx / 100, b.y0 + s * fy / 100);
    match t {
        Telltale::Left | Telltale::Right => {
            // An arrow: head and shaft, mirrored for the right.
            let m = |p: Point| {
                if t == Telltale::Right {
                    Point::new(b.x0 + b.x1 - 1 - p.x, p.y)
                } else {
                    p
                }
            };
            let style = fill(colour::TURN);
            put(
                d,
                &Triangle::new(m(at(4, 50)), m(at(48, 10)), m(at(48, 90))).into_styled(style),
            );
            let shaft = Rectangle::with_corners(m(at(46, 32)), m(at(94, 68)));
            put(d, &shaft.into_styled(style));
        }
        Telltale::HighBeam => {
            // A lamp (a "D": lens flat on the left) with level beams.
            let c = colour::HIGH_BEAM;
            let lamp_c = at(66, 50);
            put(
                d,
                &Sector::with_center(
                    lamp_c,
                    (s * 56 / 100) as u32,
                    Angle::from_degrees(-90.0),
                    Angle::from_degrees(180.0),
                )
                .into_styled(fill(c)),
            );
            let bar = (s / 16).max(2);
            put(
                d,
                &Rectangle::with_corners(at(60, 22), Point::new(lamp_c.x, at(0, 78).y))
                    .into_styled(fill(c)),
            );
            for k in 0..4 {
                let y = b.y0 + s * (26 + 16 * k) / 100;
                put(
                    d,
                    &Rectangle::new(
                        at(6, 0) + Point::new(0, y - b.y0 - bar / 2),
                        Size::new((s * 46 / 100) as u32, bar as u32),
                    )
                    .into_styled(fill(c)),
                );
            }
        }
        Telltale::Belt => {
            // A seated figure with the belt across the chest.
            let c = colour::BELT;
            put(
                d,
                &Circle::with_center(at(50, 17), (s * 24 / 100) as u32).into_styled(fill(c)),
            );
            put(
                d,
                &RoundedRectangle::with_equal_corners(
                    Rectangle::with_corners(at(28, 33), at(72, 80)),
                    Size::new((s / 8) as u32, (s / 8) as u32),
                )
                .into_styled(fill(c)),
            );
            // The seat under and behind.
            put(
                d,
                &Rectangle::with_corners(at(18, 84), at(84, 94)).into_styled(fill(c)),
            );
            put(
                d,
                &Line::new(at(30, 36), at(70, 76))
                    .into_styled(stroke(STRIP, (s / 10).max(2) as u32)),
            );
        }
        Telltale::Engine => {
            // An engine block with the intake on top, fan and exhaust.
            let c = colour::ENGINE;
            let style = fill(c);
            put(
                d,
                &Rectangle::with_corners(at(22, 36), at(80, 80)).into_styled(style),
            );
            put(
                d,
                &Rectangle::with_corners(at(36, 24), at(62, 36)).into_styled(style),
            );
            put(
                d,
                &Rectangle::with_corners(at(30, 18), at(68, 25)).into_styled(style),
            );
            put(
                d,
                &Rectangle::with_corners(at(6, 46), at(22, 70)).into_styled(style),
            );
            put(
                d,
                &Rectangle::with_corners(at(2, 40), at(8, 76)).into_styled(style),
            );
            put(
                d,
                &Triangle::new(at(80, 46), at(96, 32), at(96, 84)).into_styled(style),
            );
            // A dark port, so it reads as a block.
            put(
                d,
                &Rectangle::with_corners(at(36, 48), at(66, 66)).into_styled(fill(STRIP)),
            );
        }
        Telltale::ParkingBrake => {
            // (P) in a circle, brackets either side.
            let c = colour::PARKING;
            let w = (s / 14).max(2) as u32;
            put(
                d,
                &Circle::with_center(Point::new(cx, cy), (s * 64 / 100) as u32)
                    .into_styled(stroke(c, w)),
            );
            for (start, sweep) in [(120.0, 120.0), (-60.0, 120.0)] {
                put(
                    d,
                    &Arc::with_center(
                        Point::new(cx, cy),
                        (s * 92 / 100) as u32,
                        Angle::from_degrees(start),
                        Angle::from_degrees(sweep),
                    )
                    .into_styled(stroke(c, w)),
                );
            }
            let k = (s / 40).max(1) as u32;
            text(d, "P", cx + 1, cy, &FONT_9X18_BOLD, k, c);
        }
    }
}

/// Draws the cluster and keeps track of what the screen shows.
pub struct Renderer<'c> {
    pub scene: Scene,
    /// Dial faces drawn once, each the size of its dial's square.
    caches: [Option<Canvas<'c>>; 2],
    shown: Option<Visual>,
    strip_shown: Option<(bool, bool)>,
}

impl<'c> Renderer<'c> {
    /// Draws the dial faces into `caches` (where given).
    pub fn new(layout: Layout, mut caches: [Option<Canvas<'c>>; 2]) -> Renderer<'c> {
        let scene = Scene::new(layout);
        for (dial, cache) in scene.layout.dials().into_iter().zip(caches.iter_mut()) {
            if let Some(cache) = cache {
                let sq = dial.square();
                let mut moved = cache.translated(Point::new(-sq.x0, -sq.y0));
                let _ = moved.fill_solid(&eg(&sq), BACKGROUND);
                scene.draw_face(dial, &mut moved);
            }
        }
        Renderer {
            scene,
            caches,
            shown: None,
            strip_shown: None,
        }
    }

    /// Bytes a dial face cache of `layout` needs (each of the two).
    pub fn cache_pixels(layout: &Layout) -> [(u32, u32); 2] {
        layout.dials().map(|d| {
            let sq = d.square();
            (sq.width(), sq.height())
        })
    }

    /// The next frame redraws everything.
    pub fn invalidate(&mut self) {
        self.shown = None;
        self.strip_shown = None;
    }

    /// Restores the static picture in `r`.
    fn restore(&self, c: &mut Canvas<'_>, r: Rect) {
        self.scene.draw_chrome(&mut c.clipped(&eg(&r)), r);
        for (dial, cache) in self
            .scene
            .layout
            .dials()
            .into_iter()
            .zip(self.caches.iter())
        {
            let sq = dial.square();
            let part = r.intersect(&sq);
            if part.is_empty() {
                continue;
            }
            match cache {
                Some(cache) => c.copy_from(part, cache, (sq.x0, sq.y0)),
                None => {
                    let mut clipped = c.clipped(&eg(&part));
                    let _ = clipped.fill_solid(&eg(&part), BACKGROUND);
                    self.scene.draw_face(dial, &mut clipped);
                }
            }
        }
    }

    /// Draws `v` on the instrument display `c` (of the layout's size) as
    /// frame `frame`; `dmg` (cleared first) gets every rectangle changed.
    pub fn draw_main<const N: usize>(
        &mut self,
        c: &mut Canvas<'_>,
        v: &Visual,
        frame: u64,
        dmg: &mut Damage<N>,
    ) {
        dmg.clear();
        match &self.shown {
            None => dmg.add_all(),
            Some(old) => self.scene.damage(old, v, dmg),
        }
        let window = self.scene.layout.window;
        for &r in dmg.rects() {
            self.restore(c, r);
            self.scene.draw_dynamic(v, &mut c.clipped(&eg(&r)), r);
            if let Some(w) = window {
                c.fill(w.intersect(&r), TRANSPARENT);
            }
        }
        draw_counter(c, frame);
        dmg.add(counter::RECT);
        self.shown = Some(*v);
    }

    /// Draws the warning strip `c` (the center display's bottom) as frame
    /// `frame`: the seat belt warning, or a neutral bar.
    pub fn draw_strip<const N: usize>(
        &mut self,
        c: &mut Canvas<'_>,
        v: &Visual,
        frame: u64,
        dmg: &mut Damage<N>,
    ) {
        dmg.clear();
        let shown = (v.warning, v.acknowledged);
        if self.strip_shown != Some(shown) {
            if v.acknowledged {
                draw_acknowledged(c);
            } else {
                draw_warning(c, v.warning);
            }
            dmg.add_all();
            self.strip_shown = Some(shown);
        }
        draw_counter(c, frame);
        dmg.add(counter::RECT);
    }
}

/// The warning strip: red with "FASTEN SEAT BELT" and the belt symbol, or
/// a neutral bar.
pub fn draw_warning(c: &mut Canvas<'_>, warning: bool) {
    let (w, h) = (c.width() as i32, c.height() as i32);
    let all = Rect::new(0, 0, c.width(), c.height());
    if !warning {
        let _ = c.fill_solid(&eg(&all), BAR);
        let _ = c.fill_solid(&eg(&Rect::new(0, 0, c.width(), 2)), BAR_EDGE);
        return;
    }
    let _ = c.fill_solid(&eg(&all), WARNING);
    let _ = c.fill_solid(&eg(&Rect::new(0, 0, c.width(), 3)), rgb(0xff4040));
    let msg = "FASTEN SEAT BELT";
    // Letters half the strip high.
    let k = ((h / 2 + CHAR_H / 2) / CHAR_H).max(1) as u32;
    let tw = CHAR_W * k as i32 * msg.len() as i32;
    let icon = (h * 70 / 100).max(8);
    let gap = icon / 3;
    let x0 = w / 2 - (icon + gap + tw) / 2;
    let b = Rect::new(x0, h / 2 - icon / 2, icon as u32, icon as u32);
    draw_belt_white(c, &b);
    text(
        c,
        msg,
        x0 + icon + gap + tw / 2,
        h / 2,
        &FONT_10X20,
        k,
        WARNING_TEXT,
    );
}

/// The strip after a touch: green, "ACKNOWLEDGED".
pub fn draw_acknowledged(c: &mut Canvas<'_>) {
    let (w, h) = (c.width() as i32, c.height() as i32);
    let all = Rect::new(0, 0, c.width(), c.height());
    let _ = c.fill_solid(&eg(&all), ACK);
    let msg = "ACKNOWLEDGED";
    let k = ((h / 2 + CHAR_H / 2) / CHAR_H).max(1) as u32;
    text(c, msg, w / 2, h / 2, &FONT_10X20, k, WARNING_TEXT);
}

/// The belt symbol in white on the warning's red.
fn draw_belt_white(c: &mut Canvas<'_>, b: &Rect) {
    let mut tinted = Tint {
        target: c,
        colour: WARNING_TEXT,
        background: WARNING,
    };
    draw_telltale(&mut tinted, Telltale::Belt, b);
}

/// Draws everything in one colour, except the strip background (the
/// symbols' cut-outs), which becomes `background`.
struct Tint<'a, D> {
    target: &'a mut D,
    colour: Rgb888,
    background: Rgb888,
}

impl<D: DrawTarget<Color = Rgb888>> Tint<'_, D> {
    fn map(&self, c: Rgb888) -> Rgb888 {
        if c == STRIP {
            self.background
        } else {
            self.colour
        }
    }
}

impl<D: DrawTarget<Color = Rgb888>> Dimensions for Tint<'_, D> {
    fn bounding_box(&self) -> Rectangle {
        self.target.bounding_box()
    }
}

impl<D: DrawTarget<Color = Rgb888>> DrawTarget for Tint<'_, D> {
    type Color = Rgb888;
    type Error = D::Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), D::Error>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        let (fg, bg) = (self.colour, self.background);
        self.target.draw_iter(
            pixels
                .into_iter()
                .map(|Pixel(p, c)| Pixel(p, if c == STRIP { bg } else { fg })),
        )
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb888) -> Result<(), D::Error> {
        let c = self.map(color);
        self.target.fill_solid(area, c)
    }
}

/// The frame counter at the top left.
pub fn draw_counter(c: &mut Canvas<'_>, frame: u64) {
    for bit in 0..counter::BITS {
        let r = Rect::new(
            (bit * counter::BLOCK) as i32,
            0,
            counter::BLOCK,
            counter::BLOCK,
        );
        c.fill(r, counter::block(frame, bit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive;

    const W: u32 = 1920;
    const H: u32 = 720;

    fn layout() -> Layout {
        Layout::new(W, H, 80, Some(Rect::new(560, 80, 800, 320)))
    }

    fn visual(t_ms: u64) -> Visual {
        let car = drive::at(t_ms);
        Visual::new(
            &car,
            t_ms,
            123_456_000 + car.metres as u64,
            car.metres as u64,
        )
    }

    /// A renderer with or without face caches, and its buffers.
    struct Rig {
        screen: Vec<u32>,
        caches: [Vec<u32>; 2],
    }

    impl Rig {
        fn new() -> Rig {
            let sizes = Renderer::cache_pixels(&layout());
            Rig {
                screen: vec![0xdead_beef; (W * H) as usize],
                caches: sizes.map(|(w, h)| vec![0; (w * h) as usize]),
            }
        }
    }

    fn full(t_ms: u64, frame: u64) -> Vec<u32> {
        let mut rig = Rig::new();
        let mut r = Renderer::new(layout(), [None, None]);
        let mut c = Canvas::new(&mut rig.screen, W as usize, W, H);
        let mut d: Damage<16> = Damage::new(c.bounds());
        r.draw_main(&mut c, &visual(t_ms), frame, &mut d);
        assert_eq!(d.rects(), &[c.bounds()]);
        rig.screen
    }

    #[test]
    fn incremental_frames_equal_full_redraws() {
        let mut rig = Rig::new();
        let sizes = Renderer::cache_pixels(&layout());
        let [c0, c1] = &mut rig.caches;
        let caches = [
            Some(Canvas::new(c0, sizes[0].0 as usize, sizes[0].0, sizes[0].1)),
            Some(Canvas::new(c1, sizes[1].0 as usize, sizes[1].0, sizes[1].1)),
        ];
        let mut r = Renderer::new(layout(), caches);
        let mut c = Canvas::new(&mut rig.screen, W as usize, W, H);
        let mut d: Damage<16> = Damage::new(c.bounds());
        let mut frame = 0;
        let mut costs = Vec::new();
        // Across the cycle at 60 fps, checking now and then.
        for t in (0..drive::cycle_ms()).step_by(17) {
            frame += 1;
            r.draw_main(&mut c, &visual(t), frame, &mut d);
            if frame > 1 {
                costs.push(d.cost());
            }
            if frame % 499 == 7 {
                let expect = full(t, frame);
                let got: Vec<u32> = (0..H)
                    .flat_map(|y| (0..W).map(move |x| (x, y)))
                    .map(|(x, y)| c.get(x, y))
                    .collect();
                let diff = got.iter().zip(&expect).position(|(a, b)| a != b);
                assert_eq!(diff.map(|i| (i as u32 % W, i as u32 / W)), None, "t={t}");
            }
        }
        // Most frames redraw a small part of the screen.
        costs.sort();
        let median = costs[costs.len() / 2];
        assert!(median < u64::from(W * H) / 20, "median {median}");
    }

    #[test]
    fn without_caches_faces_are_redrawn() {
        let mut rig = Rig::new();
        let mut r = Renderer::new(layout(), [None, None]);
        let mut c = Canvas::new(&mut rig.screen, W as usize, W, H);
        let mut d: Damage<16> = Damage::new(c.bounds());
        for (frame, t) in [(1, 20_000), (2, 20_017), (3, 20_500)] {
            r.draw_main(&mut c, &visual(t), frame, &mut d);
        }
        let got: Vec<u32> = (0..H)
            .flat_map(|y| (0..W).map(move |x| (x, y)))
            .map(|(x, y)| c.get(x, y))
            .collect();
        assert!(got == full(20_500, 3));
    }

    #[test]
    fn window_is_transparent_everything_else_opaque() {
        let px = full(30_000, 5);
        let window = layout().window.unwrap();
        for y in 0..H as i32 {
            for x in 0..W as i32 {
                let p = px[(y as u32 * W + x as u32) as usize];
                if window.contains_point(x, y) {
                    assert_eq!(p, TRANSPARENT, "{x},{y}");
                } else {
                    assert_eq!(p >> 24, 0xff, "{x},{y}: {p:#x}");
                }
            }
        }
    }

    #[test]
    fn counter_is_exact() {
        for frame in [1u64, 2, 0x1234_5678] {
            let px = full(1000, frame);
            let v = counter::decode(|x, y| px[(y * W + x) as usize]);
            assert_eq!(v, Some(frame as u16));
        }
    }

    #[test]
    fn telltales_light_up_in_their_colours() {
        let l = layout();
        let mut v = visual(10_000);
        v.lamps = lamp::ALL;
        let mut buf = vec![0; (W * H) as usize];
        let mut c = Canvas::new(&mut buf, W as usize, W, H);
        let mut d: Damage<16> = Damage::new(c.bounds());
        let mut r = Renderer::new(l, [None, None]);
        r.draw_main(&mut c, &v, 1, &mut d);
        let expect = [
            colour::TURN,
            colour::HIGH_BEAM,
            colour::BELT,
            colour::ENGINE,
            colour::PARKING,
            colour::TURN,
        ];
        for (b, col) in l.telltales.iter().zip(expect) {
            let want = crate::canvas::argb(col);
            let n = (b.y0..b.y1)
                .flat_map(|y| (b.x0..b.x1).map(move |x| (x, y)))
                .filter(|&(x, y)| c.get(x as u32, y as u32) == want)
                .count();
            assert!(n as u64 > b.area() / 6, "{b:?}: {n}");
        }
        // Off: the strip is empty there.
        v.lamps = 0;
        r.draw_main(&mut c, &v, 2, &mut d);
        for b in &l.telltales {
            assert!(d.rects().iter().any(|r| r.contains(b)));
            for y in b.y0..b.y1 {
                for x in b.x0..b.x1 {
                    assert_eq!(c.get(x as u32, y as u32), crate::canvas::argb(STRIP));
                }
            }
        }
    }

    #[test]
    fn strip_shows_the_warning_only_when_asked() {
        let (w, h) = (1280u32, 80u32);
        let mut buf = vec![0; (w * h) as usize];
        let mut c = Canvas::new(&mut buf, w as usize, w, h);
        let mut d: Damage<4> = Damage::new(c.bounds());
        let mut r = Renderer::new(layout(), [None, None]);
        let mut v = visual(30_000);
        v.warning = false;
        r.draw_strip(&mut c, &v, 1, &mut d);
        assert_eq!(d.rects(), &[c.bounds()]);
        assert_eq!(c.get(640, 40), crate::canvas::argb(BAR));
        r.draw_strip(&mut c, &v, 2, &mut d);
        assert_eq!(d.rects(), &[counter::RECT]);
        v.warning = true;
        r.draw_strip(&mut c, &v, 3, &mut d);
        assert_eq!(d.rects(), &[c.bounds()]);
        let red = (0..w)
            .filter(|&x| c.get(x, 70) == crate::canvas::argb(WARNING))
            .count();
        let white = (0..w)
            .flat_map(|x| (10..70).map(move |y| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == 0xffff_ffff)
            .count();
        assert!(red > 1000 && white > 500, "{red} {white}");
        assert_eq!(counter::decode(|x, y| c.get(x, y)), Some(3));
    }

    #[test]
    fn arcs_go_clockwise() {
        // embedded-graphics' angles: 0 at 3 o'clock, positive clockwise
        // on screen (y down), which `Dial` relies on.
        let mut buf = vec![0; 100 * 100];
        let mut c = Canvas::new(&mut buf, 100, 100, 100);
        put(
            &mut c,
            &Arc::with_center(
                Point::new(50, 50),
                81,
                Angle::from_degrees(0.0),
                Angle::from_degrees(90.0),
            )
            .into_styled(stroke(rgb(0xffffff), 3)),
        );
        assert_eq!(c.get(50, 90), 0xffff_ffff);
        assert_eq!(c.get(50, 10), 0);
    }

    #[test]
    fn decimals() {
        let mut b = [0u8; 4];
        assert_eq!(decimal(0, &mut b), "0");
        assert_eq!(decimal(260, &mut b), "260");
        assert_eq!(decimal(8, &mut b), "8");
    }
}
