//! Where everything goes on the instrument display, from its size: the
//! telltale strip along the top, the speedometer on the left, the
//! tachometer on the right, and between them (below the navigation
//! window, if any) the gear, the odometer and the trip counter.

use crate::counter;
use crate::damage::{Rect, round};
use crate::segment::Row;
use micromath::F32Ext;

/// One round gauge. Values map onto a 270° sweep, clockwise from the
/// lower left (0) over the top to the lower right (`max`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dial {
    pub cx: i32,
    pub cy: i32,
    pub r: i32,
    /// Full scale.
    pub max: f32,
    /// Values between long ticks (labelled) and short ones.
    pub major: f32,
    pub minor: f32,
    /// Labels show value / `label_div`.
    pub label_div: f32,
    /// Where the red zone starts, if any.
    pub red_from: Option<f32>,
}

/// The needle: a long kite pivoting at the dial's centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Needle {
    pub tip: (f32, f32),
    pub tail: (f32, f32),
    /// Either side of the pivot, where the needle is widest.
    pub left: (f32, f32),
    pub right: (f32, f32),
    /// Half the width at the pivot.
    pub half_width: f32,
}

/// Pieces the needle's damage is split into along its length (one
/// rectangle each, so a slanted needle does not damage its whole box).
pub const NEEDLE_PIECES: usize = 4;

impl Dial {
    /// Degrees (clockwise from 3 o'clock, as embedded-graphics counts) of
    /// value 0 and of the whole scale.
    pub const START_DEG: f32 = 135.0;
    pub const SWEEP_DEG: f32 = 270.0;

    /// The angle of `value`, in degrees (clamped to the scale).
    pub fn degrees(&self, value: f32) -> f32 {
        Dial::START_DEG + Dial::SWEEP_DEG * (value / self.max).clamp(0.0, 1.0)
    }

    /// The point `radius` from the centre at `degrees`.
    pub fn point(&self, degrees: f32, radius: f32) -> (f32, f32) {
        let a = degrees.to_radians();
        (
            self.cx as f32 + radius * F32Ext::cos(a),
            self.cy as f32 + radius * F32Ext::sin(a),
        )
    }

    /// The same rounded to pixels.
    pub fn pixel(&self, degrees: f32, radius: f32) -> (i32, i32) {
        let (x, y) = self.point(degrees, radius);
        (round(x), round(y))
    }

    /// What the dial's face (everything static) covers.
    pub fn square(&self) -> Rect {
        Rect::around(self.cx, self.cy, self.r + 3)
    }

    pub fn needle(&self, value: f32) -> Needle {
        let deg = self.degrees(value);
        let r = self.r as f32;
        let half_width = (r * 0.028).max(3.0);
        Needle {
            tip: self.point(deg, r * 0.86),
            tail: self.point(deg + 180.0, r * 0.16),
            left: self.point(deg - 90.0, half_width),
            right: self.point(deg + 90.0, half_width),
            half_width,
        }
    }

    /// The hub over the needle's pivot.
    pub fn hub(&self) -> Rect {
        let h = (self.r * 9 / 100).max(4);
        Rect::around(self.cx, self.cy, h)
    }

    /// Where the needle at `from` and at `to` may have drawn: one
    /// rectangle per piece of its length, holding that piece at both
    /// angles (with room for its width and rounding).
    pub fn needle_damage(&self, from: f32, to: f32) -> [Rect; NEEDLE_PIECES] {
        let (a, b) = (self.needle(from), self.needle(to));
        let along = |n: &Needle, f: f32| {
            (
                n.tail.0 + (n.tip.0 - n.tail.0) * f,
                n.tail.1 + (n.tip.1 - n.tail.1) * f,
            )
        };
        let pad = a.half_width as i32 + 3;
        let mut out = [Rect::EMPTY; NEEDLE_PIECES];
        for (i, r) in out.iter_mut().enumerate() {
            let (f0, f1) = (
                i as f32 / NEEDLE_PIECES as f32,
                (i + 1) as f32 / NEEDLE_PIECES as f32,
            );
            *r = Rect::bounding(&[along(&a, f0), along(&a, f1), along(&b, f0), along(&b, f1)])
                .pad(pad);
        }
        out
    }
}

/// Telltales, left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Telltale {
    Left,
    HighBeam,
    Belt,
    Engine,
    ParkingBrake,
    Right,
}

impl Telltale {
    pub const ALL: [Telltale; 6] = [
        Telltale::Left,
        Telltale::HighBeam,
        Telltale::Belt,
        Telltale::Engine,
        Telltale::ParkingBrake,
        Telltale::Right,
    ];

    /// The `drive::lamp` bit that lights it.
    pub fn lamp(&self) -> u8 {
        use crate::drive::lamp;
        match self {
            Telltale::Left => lamp::LEFT,
            Telltale::HighBeam => lamp::HIGH_BEAM,
            Telltale::Belt => lamp::BELT,
            Telltale::Engine => lamp::ENGINE,
            Telltale::ParkingBrake => lamp::PARKING_BRAKE,
            Telltale::Right => lamp::RIGHT,
        }
    }
}

/// Text placed by its centre, with its font's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub cx: i32,
    pub cy: i32,
    pub scale: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    /// The telltale strip: (0, 0) to (width, telltale height).
    pub strip: Rect,
    /// The transparent window, inside the display and below the strip.
    pub window: Option<Rect>,
    pub speedo: Dial,
    pub tacho: Dial,
    /// Digital km/h in the speedometer, rpm in the tachometer.
    pub speed_row: Row,
    pub rpm_row: Row,
    /// Label centres under them.
    pub speed_unit: Label,
    pub rpm_unit: Label,
    /// The selector's `P R N D`, each letter's box.
    pub prnd: [Rect; 4],
    pub prnd_scale: u32,
    /// The big gear indicator.
    pub gear: Rect,
    pub gear_scale: u32,
    pub odo_row: Row,
    pub trip_row: Row,
    /// "ODO", "km", "TRIP", "km" around the two rows.
    pub odo_label: Label,
    pub odo_unit: Label,
    pub trip_label: Label,
    pub trip_unit: Label,
    /// One box per telltale, in `Telltale::ALL` order.
    pub telltales: [Rect; 6],
}

/// Width and height of a character of the label font (embedded-graphics'
/// 10x20) at scale 1.
pub const CHAR_W: i32 = 10;
pub const CHAR_H: i32 = 20;

impl Layout {
    /// The layout of a `width` x `height` display with a telltale strip
    /// `telltales` pixels high and the transparent `window` (clipped to
    /// the display below the strip and the frame counter).
    pub fn new(width: u32, height: u32, telltales: u32, window: Option<Rect>) -> Layout {
        let (w, h) = (width as i32, height as i32);
        let t = (telltales as i32).min(h / 3);
        let strip = Rect::new(0, 0, width, t as u32);
        let below = Rect::corners(0, t.max(counter::RECT.y1), w, h);
        let window = window
            .map(|r| r.intersect(&below))
            .filter(|r| !r.is_empty());

        let body = h - t;
        let margin = body / 25;
        let r = (body / 2 - margin).min(w * 13 / 100).max(16);
        let cy = t + body / 2;
        let side = w / 50 + r;
        let speedo = Dial {
            cx: side,
            cy,
            r,
            max: 260.0,
            major: 20.0,
            minor: 10.0,
            label_div: 1.0,
            red_from: None,
        };
        let tacho = Dial {
            cx: w - side,
            cy,
            r,
            max: 8000.0,
            major: 1000.0,
            minor: 250.0,
            label_div: 1000.0,
            red_from: Some(6500.0),
        };
        let readout_y = cy + r * 40 / 100;
        let speed_row = Row::new(speedo.cx, readout_y, (r * 26 / 100) as u32, 3, false);
        let rpm_row = Row::new(tacho.cx, readout_y, (r * 15 / 100) as u32, 4, false);
        let unit_y = cy + r * 62 / 100;
        let speed_unit = Label {
            cx: speedo.cx,
            cy: unit_y,
            scale: 1,
        };
        let rpm_unit = Label {
            cx: tacho.cx,
            cy: unit_y,
            scale: 1,
        };

        // The centre column, scaled to the body's height (1 at 640 px).
        let cx = w / 2;
        let unit = |n: i32| (n * body / 640).max(1);
        let prnd_scale = unit(2) as u32;
        let prnd_y = t + body * 56 / 100;
        let (lw, lh) = (CHAR_W * prnd_scale as i32, CHAR_H * prnd_scale as i32);
        let pitch = lw * 5 / 2;
        let mut prnd = [Rect::EMPTY; 4];
        for (i, b) in prnd.iter_mut().enumerate() {
            let x = cx + (2 * i as i32 - 3) * pitch / 2;
            *b = Rect::corners(
                x - lw / 2 - 2,
                prnd_y - lh / 2 - 2,
                x + lw / 2 + 2,
                prnd_y + lh / 2 + 2,
            );
        }
        let gear_scale = unit(5) as u32;
        let gear_y = t + body * 73 / 100;
        let (gw, gh) = (CHAR_W * gear_scale as i32, CHAR_H * gear_scale as i32);
        let gear = Rect::corners(
            cx - gw / 2 - 4,
            gear_y - gh / 2 - 4,
            cx + gw / 2 + 4,
            gear_y + gh / 2 + 4,
        );

        let rows_y = t + body * 92 / 100;
        let digit_h = unit(30) as u32;
        let odo_row = Row::new(cx - w * 9 / 100, rows_y, digit_h, 6, false);
        let trip_row = Row::new(cx + w * 11 / 100, rows_y, digit_h, 4, true);
        let beside = |row: &Row, chars: i32, left: bool| {
            let b = row.bounds();
            let half = chars * CHAR_W / 2;
            Label {
                cx: if left {
                    b.x0 - 12 - half
                } else {
                    b.x1 + 12 + half
                },
                cy: rows_y,
                scale: 1,
            }
        };
        let odo_label = beside(&odo_row, 3, true);
        let odo_unit = beside(&odo_row, 2, false);
        let trip_label = beside(&trip_row, 4, true);
        let trip_unit = beside(&trip_row, 2, false);

        // No strip (or a sliver): no telltales (their boxes stay empty).
        let icon = (t * 72 / 100).min(w * 6 / 100);
        let mut telltales = [Rect::EMPTY; 6];
        if icon >= 8 {
            for (i, b) in telltales.iter_mut().enumerate() {
                let x = w * (30 + 8 * i as i32) / 100;
                *b = Rect::around(x, t / 2, icon / 2);
            }
        }

        Layout {
            width,
            height,
            strip,
            window,
            speedo,
            tacho,
            speed_row,
            rpm_row,
            speed_unit,
            rpm_unit,
            prnd,
            prnd_scale,
            gear,
            gear_scale,
            odo_row,
            trip_row,
            odo_label,
            odo_unit,
            trip_label,
            trip_unit,
            telltales,
        }
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    pub fn dials(&self) -> [&Dial; 2] {
        [&self.speedo, &self.tacho]
    }
}

/// The box `text` takes at `label` (characters of the label font).
pub fn label_box(label: &Label, chars: usize) -> Rect {
    let w = CHAR_W * label.scale as i32 * chars as i32;
    let h = CHAR_H * label.scale as i32;
    Rect::corners(
        label.cx - w / 2,
        label.cy - h / 2,
        label.cx - w / 2 + w,
        label.cy - h / 2 + h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cockpit() -> Layout {
        Layout::new(1920, 720, 80, Some(Rect::new(560, 80, 800, 320)))
    }

    #[test]
    fn everything_fits_and_nothing_overlaps() {
        let l = cockpit();
        let screen = l.bounds();
        let window = l.window.unwrap();
        assert_eq!(window, Rect::new(560, 80, 800, 320));
        let mut boxes: Vec<(&str, Rect)> = vec![
            ("speedo", l.speedo.square()),
            ("tacho", l.tacho.square()),
            ("gear", l.gear),
            ("odo", l.odo_row.bounds()),
            ("trip", l.trip_row.bounds()),
            ("odo label", label_box(&l.odo_label, 3)),
            ("odo unit", label_box(&l.odo_unit, 2)),
            ("trip label", label_box(&l.trip_label, 4)),
            ("trip unit", label_box(&l.trip_unit, 2)),
        ];
        for (i, p) in l.prnd.iter().enumerate() {
            boxes.push((["P", "R", "N", "D"][i], *p));
        }
        for (i, t) in l.telltales.iter().enumerate() {
            boxes.push((["tl0", "tl1", "tl2", "tl3", "tl4", "tl5"][i], *t));
            assert!(l.strip.contains(t), "telltale {i} {t:?}");
            assert!(!t.intersects(&counter::RECT));
        }
        for (name, b) in &boxes {
            assert!(screen.contains(b), "{name} {b:?} off screen");
            if !l.strip.contains(b) {
                assert!(!b.intersects(&window), "{name} {b:?} under the window");
                assert!(!b.intersects(&l.strip), "{name} {b:?} in the strip");
            }
        }
        for (i, (a, ra)) in boxes.iter().enumerate() {
            for (b, rb) in &boxes[i + 1..] {
                assert!(!ra.intersects(rb), "{a} {ra:?} overlaps {b} {rb:?}");
            }
        }
        // The readouts sit inside their dials.
        assert!(l.speedo.square().contains(&l.speed_row.bounds()));
        assert!(l.tacho.square().contains(&l.rpm_row.bounds()));
    }

    #[test]
    fn window_is_kept_out_of_the_strip() {
        let l = Layout::new(1920, 720, 80, Some(Rect::new(0, 0, 100, 200)));
        assert_eq!(l.window, Some(Rect::new(0, 80, 100, 120)));
        let l = Layout::new(1920, 720, 0, Some(Rect::new(0, 0, 100, 200)));
        assert_eq!(l.window, Some(Rect::new(0, 4, 100, 196)));
        let l = Layout::new(1920, 720, 80, Some(Rect::new(3000, 0, 100, 200)));
        assert_eq!(l.window, None);
        assert_eq!(Layout::new(640, 480, 900, None).strip.height(), 160);
        // Without a strip there are no telltales to draw.
        let l = Layout::new(1920, 720, 0, None);
        assert!(l.telltales.iter().all(Rect::is_empty));
    }

    #[test]
    fn small_displays_still_lay_out() {
        for (w, h) in [(800, 300), (1280, 480), (320, 240), (4096, 2160)] {
            let l = Layout::new(w, h, 60, None);
            assert!(l.speedo.r > 0 && l.tacho.r > 0);
            assert!(l.bounds().contains(&l.speedo.square()), "{w}x{h}");
            assert!(l.bounds().contains(&l.tacho.square()), "{w}x{h}");
            assert!(l.speedo.square().x1 <= l.tacho.square().x0);
        }
    }

    #[test]
    fn dial_angles() {
        let l = cockpit();
        let d = l.speedo;
        assert_eq!(d.degrees(0.0), 135.0);
        assert_eq!(d.degrees(130.0), 270.0);
        assert_eq!(d.degrees(999.0), 405.0);
        assert_eq!(d.degrees(-5.0), 135.0);
        // 130 km/h points straight up.
        let (x, y) = d.pixel(d.degrees(130.0), 100.0);
        assert!(
            (x - d.cx).abs() <= 1 && (y - (d.cy - 100)).abs() <= 1,
            "{x},{y}"
        );
        // 0 points to the lower left.
        let (x, y) = d.pixel(d.degrees(0.0), 100.0);
        assert!(x < d.cx && y > d.cy);
    }

    #[test]
    fn needle_damage_covers_both_needles() {
        let d = cockpit().speedo;
        for (from, to) in [(0.0, 0.5), (47.0, 48.2), (120.0, 0.0), (260.0, 259.0)] {
            let dmg = d.needle_damage(from, to);
            for v in [from, to] {
                let n = d.needle(v);
                for p in [n.tip, n.tail, n.left, n.right] {
                    let (x, y) = (round(p.0), round(p.1));
                    assert!(
                        dmg.iter().any(|r| r.contains_point(x, y)),
                        "{v}: {x},{y} not in {dmg:?}"
                    );
                }
            }
            // A small step damages little.
            if (from - to).abs() < 2.0 {
                let area: u64 = dmg.iter().map(Rect::area).sum();
                assert!(area < 40_000, "{from}->{to}: {area}");
            }
        }
    }
}
