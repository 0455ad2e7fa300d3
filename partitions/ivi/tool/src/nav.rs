//! The picture `ivi-tool draw` shows: a navigation app's screen, drawn into
//! a plain XRGB8888 pixel slice. Pure (no I/O), so the host tests it.
//!
//! North-up map of a street grid (avenues every fourth street, some blocks
//! are parks), a route along the streets that the car follows, the car as
//! an arrow pointing where it drives, a banner with the next turn and its
//! distance, and a box with the arrival time, distance and minutes left.
//! Everything is a filled rectangle or triangle, so a frame is cheap to
//! draw even under QEMU's TCG.
//!
//! The top-left corner carries the frame counter that screenshot checks
//! read: [`COUNTER_BITS`] squares of [`COUNTER_BLOCK`]×[`COUNTER_BLOCK`]
//! pixels at (bit × 4, 0), bit 0 first, [`WHITE`] for 1 and [`BLACK`] for
//! 0, of the frame number's low 16 bits. It is drawn last: nothing covers
//! it.

/// A set counter bit.
pub const WHITE: u32 = 0xffff_ffff;
/// A clear counter bit.
pub const BLACK: u32 = 0xff00_0000;
/// Bits of the frame number the counter shows.
pub const COUNTER_BITS: usize = 16;
/// Side of one counter square, in pixels.
pub const COUNTER_BLOCK: usize = 4;

const GROUND: u32 = 0xff1a_1f29;
const PARK: u32 = 0xff17_3020;
const WATER: u32 = 0xff14_2638;
const STREET: u32 = 0xff2d_3444;
const AVENUE: u32 = 0xff44_4f63;
const ROUTE_EDGE: u32 = 0xff1a_4a8f;
const ROUTE: u32 = 0xff3b_8cff;
const ROUTE_DONE: u32 = 0xff59_6273;
const CAR_EDGE: u32 = 0xffff_ffff;
const CAR: u32 = 0xffff_8a1f;
const BANNER: u32 = 0xff1e_6b43;
const PANEL: u32 = 0xff0d_1117;
const PANEL_EDGE: u32 = 0xff3a_4256;
const TEXT: u32 = 0xffff_ffff;
const TEXT_DIM: u32 = 0xffa9_b3c6;

/// One period of the route, in blocks: northward legs (`NORTH[k]` blocks)
/// alternate with east (+) or west (-) legs (`EAST[k]` blocks). The east
/// legs sum to zero, so the route heads north for ever without drifting.
const NORTH: [i64; 8] = [3, 2, 4, 2, 3, 5, 2, 3];
const EAST: [i64; 8] = [2, 1, -3, -1, 2, -2, 3, -2];
const LEGS_PER_PERIOD: i64 = 2 * NORTH.len() as i64;
/// What one block is in the distances shown, in metres.
const BLOCK_METRES: i64 = 100;
/// The trip: the destination is this far from where the car starts, then
/// a new trip begins.
const TRIP_METRES: i64 = 8_400;
/// The speed the arrival time assumes, in metres per minute (50 km/h).
const ETA_METRES_PER_MINUTE: i64 = 833;

/// Renders frame `frame` into `pixels`, `width` × `height` XRGB8888 pixels,
/// row after row.
pub fn render(frame: u64, pixels: &mut [u32], width: usize, height: usize) {
    render_strided(frame, pixels, width, height, width);
}

/// [`render`] into rows `stride` pixels apart (a dumb buffer's pitch / 4).
/// Rows or columns that `pixels` does not hold are left out: any sizes are
/// safe.
pub fn render_strided(frame: u64, pixels: &mut [u32], width: usize, height: usize, stride: usize) {
    let mut canvas = Canvas::new(pixels, width, height, stride);
    if canvas.w == 0 || canvas.h == 0 {
        return;
    }
    let view = View::new(frame, canvas.w, canvas.h);
    draw_map(&mut canvas, &view);
    draw_route(&mut canvas, &view);
    draw_car(&mut canvas, &view);
    draw_banner(&mut canvas, &view);
    draw_panel(&mut canvas, &view);
    draw_counter(&mut canvas, frame);
}

/// The frame number's low 16 bits as the counter in `pixels` shows them,
/// if every square is exactly [`WHITE`] or [`BLACK`] (what a screenshot
/// check does; here for the tests).
pub fn read_counter(pixels: &[u32], stride: usize) -> Option<u16> {
    let mut value = 0u16;
    for bit in 0..COUNTER_BITS {
        let mut seen = None;
        for y in 0..COUNTER_BLOCK {
            for x in 0..COUNTER_BLOCK {
                let pixel = *pixels.get(y * stride + bit * COUNTER_BLOCK + x)?;
                let one = match pixel {
                    WHITE => true,
                    BLACK => false,
                    _ => return None,
                };
                if seen.is_some_and(|s| s != one) {
                    return None;
                }
                seen = Some(one);
            }
        }
        if seen == Some(true) {
            value |= 1 << bit;
        }
    }
    Some(value)
}

/// Pixels with clipping: every drawing call may reach outside.
struct Canvas<'a> {
    pixels: &'a mut [u32],
    w: i64,
    h: i64,
    stride: usize,
}

impl<'a> Canvas<'a> {
    fn new(pixels: &'a mut [u32], width: usize, height: usize, stride: usize) -> Self {
        let width = width.min(stride);
        // Rows that fit: the last one needs only `width` pixels.
        let rows = if width == 0 || pixels.len() < width {
            0
        } else {
            (pixels.len() - width) / stride + 1
        };
        let clamp = |n: usize| i64::try_from(n).unwrap_or(i64::MAX).min(1 << 24);
        Canvas {
            w: clamp(width),
            h: clamp(height.min(rows)),
            pixels,
            stride,
        }
    }

    /// Fills `x0..x1` × `y0..y1`.
    fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: u32) {
        let (x0, x1) = (x0.clamp(0, self.w), x1.clamp(0, self.w));
        let (y0, y1) = (y0.clamp(0, self.h), y1.clamp(0, self.h));
        if x0 >= x1 {
            return;
        }
        for y in y0..y1 {
            let row = y as usize * self.stride;
            self.pixels[row + x0 as usize..row + x1 as usize].fill(color);
        }
    }

    /// An axis-parallel line of width `width` from `a` to `b` (a diagonal
    /// one is drawn as its bounding box, which the route never needs).
    fn thick_line(&mut self, a: (i64, i64), b: (i64, i64), width: i64, color: u32) {
        let half = width / 2;
        let (x0, x1) = (a.0.min(b.0), a.0.max(b.0));
        let (y0, y1) = (a.1.min(b.1), a.1.max(b.1));
        self.rect(
            x0 - half,
            y0 - half,
            x1 - half + width,
            y1 - half + width,
            color,
        );
    }

    /// A filled triangle: the pixels whose centres are inside.
    fn triangle(&mut self, p: [(i64, i64); 3], color: u32) {
        let min_x = p.iter().map(|q| q.0).min().unwrap_or(0).max(0);
        let max_x = p.iter().map(|q| q.0).max().unwrap_or(0).min(self.w - 1);
        let min_y = p.iter().map(|q| q.1).min().unwrap_or(0).max(0);
        let max_y = p.iter().map(|q| q.1).max().unwrap_or(0).min(self.h - 1);
        // Edge functions on doubled coordinates (pixel centres at odd ones).
        let edge = |a: (i64, i64), b: (i64, i64), x: i64, y: i64| {
            (2 * b.0 - 2 * a.0) * (y - 2 * a.1) - (2 * b.1 - 2 * a.1) * (x - 2 * a.0)
        };
        for y in min_y..=max_y {
            let row = y as usize * self.stride;
            for x in min_x..=max_x {
                let (cx, cy) = (2 * x + 1, 2 * y + 1);
                let e = [
                    edge(p[0], p[1], cx, cy),
                    edge(p[1], p[2], cx, cy),
                    edge(p[2], p[0], cx, cy),
                ];
                if e.iter().all(|&v| v >= 0) || e.iter().all(|&v| v <= 0) {
                    self.pixels[row + x as usize] = color;
                }
            }
        }
    }

    /// `text` in the 5×7 font, each font pixel `scale` × `scale`, its top
    /// left corner at `(x, y)`. Returns the x after the text.
    fn text(&mut self, x: i64, y: i64, scale: i64, text: &str, color: u32) -> i64 {
        let mut pen = x;
        for ch in text.chars() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        let (px, py) = (pen + col * scale, y + row as i64 * scale);
                        self.rect(px, py, px + scale, py + scale, color);
                    }
                }
            }
            pen += 6 * scale;
        }
        pen
    }
}

/// Width of `text` in the 5×7 font at `scale` (with the space after each
/// character but the last).
fn text_width(text: &str, scale: i64) -> i64 {
    let n = text.chars().count() as i64;
    (6 * n - 1).max(0) * scale
}

/// Rows of a 5×7 glyph, bit 4 the leftmost column. Only what the screen
/// writes has a glyph; anything else is blank.
fn glyph(ch: char) -> [u8; 7] {
    match ch {
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        ':' => [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c],
        'k' => [0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12],
        'm' => [0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11],
        'i' => [0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e],
        'n' => [0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11],
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        _ => [0; 7],
    }
}

/// Where the car is and how the screen is laid out, for one frame.
struct View {
    /// Street spacing in pixels.
    block: i64,
    /// The car, in world pixels (x east, y south).
    car: (i64, i64),
    /// Where the car is drawn on the screen.
    anchor: (i64, i64),
    /// The leg the car is on (counting from the start) and how far along.
    leg: i64,
    along: i64,
    /// World pixels travelled since the start.
    travelled: i64,
    /// Size of the font pixel.
    scale: i64,
    w: i64,
    h: i64,
}

impl View {
    fn new(frame: u64, w: i64, h: i64) -> View {
        let block = (w.min(h) / 6).max(16);
        // A block every 20 frames: 1.5 blocks a second at 30 fps.
        let speed = (block / 20).max(1);
        let frame = i64::try_from(frame % (1 << 40)).expect("below 2^40");
        let travelled = frame * speed;
        let (leg, along) = locate(travelled, block);
        let start = vertex(leg, block);
        let (dx, dy) = direction(leg);
        View {
            block,
            car: (start.0 + dx * along, start.1 + dy * along),
            anchor: (w / 2, h * 3 / 5),
            leg,
            along,
            travelled,
            scale: (h.min(w) / 160).max(1),
            w,
            h,
        }
    }

    fn to_screen(&self, world: (i64, i64)) -> (i64, i64) {
        (
            world.0 - self.car.0 + self.anchor.0,
            world.1 - self.car.1 + self.anchor.1,
        )
    }
}

/// Length of leg `leg` in blocks, and its direction (unit vector, y south).
fn leg_blocks(leg: i64) -> i64 {
    let k = (leg.rem_euclid(LEGS_PER_PERIOD) / 2) as usize;
    if leg % 2 == 0 {
        NORTH[k]
    } else {
        EAST[k].abs()
    }
}

fn direction(leg: i64) -> (i64, i64) {
    let k = (leg.rem_euclid(LEGS_PER_PERIOD) / 2) as usize;
    if leg % 2 == 0 {
        (0, -1)
    } else {
        (EAST[k].signum(), 0)
    }
}

/// Route length of one period, in blocks.
fn period_blocks() -> i64 {
    (0..LEGS_PER_PERIOD).map(leg_blocks).sum()
}

/// Where leg `leg` (at least 0) starts, in world pixels.
fn vertex(leg: i64, block: i64) -> (i64, i64) {
    let period = leg.div_euclid(LEGS_PER_PERIOD);
    let north: i64 = NORTH.iter().sum();
    let mut at = (0, -period * north * block);
    for l in 0..leg.rem_euclid(LEGS_PER_PERIOD) {
        let (dx, dy) = direction(l);
        let len = leg_blocks(l) * block;
        at = (at.0 + dx * len, at.1 + dy * len);
    }
    at
}

/// The leg `distance` world pixels along the route lies on, and how far
/// into it.
fn locate(distance: i64, block: i64) -> (i64, i64) {
    let period_len = period_blocks() * block;
    let mut leg = distance / period_len * LEGS_PER_PERIOD;
    let mut rest = distance % period_len;
    loop {
        let len = leg_blocks(leg) * block;
        if rest < len {
            return (leg, rest);
        }
        rest -= len;
        leg += 1;
    }
}

/// A cheap hash of a block's coordinates: which blocks are parks or water.
fn block_hash(x: i64, y: i64) -> u64 {
    let mut h = (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

fn draw_map(c: &mut Canvas, v: &View) {
    c.rect(0, 0, c.w, c.h, GROUND);
    let b = v.block;
    // The world rectangle on screen.
    let left = v.car.0 - v.anchor.0;
    let top = v.car.1 - v.anchor.1;
    let (bx0, bx1) = (left.div_euclid(b), (left + v.w).div_euclid(b));
    let (by0, by1) = (top.div_euclid(b), (top + v.h).div_euclid(b));
    for by in by0..=by1 {
        for bx in bx0..=bx1 {
            let color = match block_hash(bx, by) % 11 {
                0 | 1 => PARK,
                2 => WATER,
                _ => continue,
            };
            let (sx, sy) = v.to_screen((bx * b, by * b));
            c.rect(sx, sy, sx + b, sy + b, color);
        }
    }
    let street = (b / 10).max(2);
    for bx in bx0..=bx1 + 1 {
        let (sx, _) = v.to_screen((bx * b, 0));
        let (width, color) = if bx.rem_euclid(4) == 0 {
            (street * 2, AVENUE)
        } else {
            (street, STREET)
        };
        c.rect(sx - width / 2, 0, sx - width / 2 + width, c.h, color);
    }
    for by in by0..=by1 + 1 {
        let (_, sy) = v.to_screen((0, by * b));
        let (width, color) = if by.rem_euclid(4) == 0 {
            (street * 2, AVENUE)
        } else {
            (street, STREET)
        };
        c.rect(0, sy - width / 2, c.w, sy - width / 2 + width, color);
    }
}

fn draw_route(c: &mut Canvas, v: &View) {
    let width = (v.block / 7).max(3);
    let edge = width + (width / 3).max(2);
    let car = v.to_screen(v.car);
    // Enough legs ahead to leave the screen (the shortest is one block).
    let ahead = (v.h.max(v.w) / v.block) + 2;
    let first = (v.leg - 2).max(0);
    let last = v.leg + ahead;
    for pass in 0..2 {
        for leg in first..=last {
            let a = v.to_screen(vertex(leg, v.block));
            let b = v.to_screen(vertex(leg + 1, v.block));
            let (w, done, todo) = if pass == 0 {
                (edge, PANEL, ROUTE_EDGE)
            } else {
                (width, ROUTE_DONE, ROUTE)
            };
            if leg < v.leg {
                c.thick_line(a, b, w, done);
            } else if leg == v.leg {
                c.thick_line(a, car, w, done);
                c.thick_line(car, b, w, todo);
            } else {
                c.thick_line(a, b, w, todo);
            }
        }
    }
}

/// A point of the car arrow pointing north, turned to the heading.
fn turn((x, y): (i64, i64), heading: (i64, i64)) -> (i64, i64) {
    match heading {
        (1, 0) => (-y, x),
        (-1, 0) => (y, -x),
        _ => (x, y),
    }
}

fn draw_car(c: &mut Canvas, v: &View) {
    let heading = direction(v.leg);
    let (cx, cy) = v.to_screen(v.car);
    let arrow = |size: i64| {
        [
            (0, -size),
            (-size * 7 / 10, size * 6 / 10),
            (size * 7 / 10, size * 6 / 10),
        ]
        .map(|p| turn(p, heading))
        .map(|(x, y)| (cx + x, cy + y))
    };
    let size = (v.block / 4).max(5);
    c.triangle(arrow(size + (size / 4).max(2)), CAR_EDGE);
    c.triangle(arrow(size), CAR);
}

/// The banner: the next turn (an arrow left or right) and its distance.
fn draw_banner(c: &mut Canvas, v: &View) {
    let s = v.scale;
    let margin = 2 * s + 4;
    let left_in_leg = leg_blocks(v.leg) * v.block - v.along;
    let metres = left_in_leg * BLOCK_METRES / v.block / 10 * 10;
    let label = format!("{metres} m");
    let icon = 14 * s;
    let width = margin + icon + 4 * s + text_width(&label, 2 * s) + margin;
    let height = 14 * s + 2 * margin;
    let (x0, y0) = (margin, COUNTER_BLOCK as i64 + margin);
    c.rect(x0, y0, x0 + width, y0 + height, BANNER);

    // The turn sign: north to east or west, or east or west back to
    // north. A stem up from the bottom, an arm across, the head at the
    // side it turns to.
    let (now, next) = (direction(v.leg), direction(v.leg + 1));
    let right = matches!((now, next), ((0, -1), (1, 0)) | ((-1, 0), (0, -1)));
    let (ix, iy) = (x0 + margin, y0 + margin);
    let stem = (3 * s).max(2);
    let arm_y = iy + 6 * s;
    let (stem_x, arm_end, tip) = if right {
        (ix + 2 * s, ix + icon - 5 * s, ix + icon)
    } else {
        (ix + icon - 2 * s - stem, ix + 5 * s, ix)
    };
    c.rect(stem_x, arm_y - stem / 2, stem_x + stem, iy + icon, TEXT);
    c.rect(
        stem_x.min(arm_end),
        arm_y - stem / 2,
        (stem_x + stem).max(arm_end),
        arm_y - stem / 2 + stem,
        TEXT,
    );
    c.triangle(
        [
            (tip, arm_y),
            (arm_end, arm_y - 5 * s),
            (arm_end, arm_y + 5 * s),
        ],
        TEXT,
    );
    c.text(ix + icon + 4 * s, iy, 2 * s, &label, TEXT);
}

/// The box at the bottom: arrival time, distance left, minutes left.
fn draw_panel(c: &mut Canvas, v: &View) {
    let s = v.scale;
    let metres_done = v.travelled * BLOCK_METRES / v.block;
    let left = TRIP_METRES - metres_done % TRIP_METRES;
    let minutes = (left + ETA_METRES_PER_MINUTE - 1) / ETA_METRES_PER_MINUTE;
    // The trip's clock starts at 08:00 and runs with the distance driven
    // at the assumed speed, so the arrival time holds still.
    let now_min = 8 * 60 + metres_done / ETA_METRES_PER_MINUTE;
    let eta = (now_min + minutes) % (24 * 60);
    let parts = [
        (format!("ETA {:02}:{:02}", eta / 60, eta % 60), TEXT),
        (
            format!("{}.{} km", left / 1000, left % 1000 / 100),
            TEXT_DIM,
        ),
        (format!("{minutes} min"), TEXT_DIM),
    ];
    let pad = 2 * s + 2;
    let gap = 8 * s;
    let width: i64 = parts.iter().map(|(t, _)| text_width(t, s)).sum::<i64>() + 2 * gap + 2 * pad;
    let height = 7 * s + 2 * pad;
    let x0 = (c.w - width) / 2;
    let y0 = c.h - height - 2 * s - 4;
    let border = (s / 2).max(1);
    c.rect(
        x0 - border,
        y0 - border,
        x0 + width + border,
        y0 + height + border,
        PANEL_EDGE,
    );
    c.rect(x0, y0, x0 + width, y0 + height, PANEL);
    let mut pen = x0 + pad;
    for (text, color) in &parts {
        pen = c.text(pen, y0 + pad, s, text, *color) - s + gap;
    }
}

fn draw_counter(c: &mut Canvas, frame: u64) {
    let block = COUNTER_BLOCK as i64;
    for bit in 0..COUNTER_BITS {
        let color = if (frame >> bit) & 1 == 1 {
            WHITE
        } else {
            BLACK
        };
        let x = bit as i64 * block;
        c.rect(x, 0, x + block, block, color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64, w: usize, h: usize) -> Vec<u32> {
        let mut pixels = vec![0x1234_5678; w * h];
        render(n, &mut pixels, w, h);
        pixels
    }

    #[test]
    fn counter_is_exact() {
        for n in [0u64, 1, 2, 5, 0x8000, 0xa5a5, 0xffff, 0x1_0003, 123_456_789] {
            let pixels = frame(n, 320, 200);
            assert_eq!(read_counter(&pixels, 320), Some(n as u16), "frame {n}");
            // Square by square, pixel by pixel.
            for bit in 0..16 {
                let want = if (n >> bit) & 1 == 1 { WHITE } else { BLACK };
                for y in 0..4 {
                    for x in 0..4 {
                        assert_eq!(pixels[y * 320 + bit * 4 + x], want, "frame {n} bit {bit}");
                    }
                }
            }
        }
    }

    #[test]
    fn counter_with_a_stride() {
        let (w, h, stride) = (100, 50, 128);
        let mut pixels = vec![7; stride * h];
        render_strided(0x4321, &mut pixels, w, h, stride);
        assert_eq!(read_counter(&pixels, stride), Some(0x4321));
        // The padding at the end of each row is not touched.
        for y in 0..h {
            assert!(
                pixels[y * stride + w..(y + 1) * stride]
                    .iter()
                    .all(|&p| p == 7)
            );
        }
    }

    #[test]
    fn frames_change_over_time() {
        let (w, h) = (800, 320);
        let a = frame(0, w, h);
        let b = frame(1, w, h);
        let c = frame(45, w, h);
        assert_ne!(a, b);
        // The map itself moves, not only the counter.
        let below_counter = |p: &[u32]| p[8 * w..].to_vec();
        assert_ne!(below_counter(&a), below_counter(&c));
        // Deterministic.
        assert_eq!(frame(45, w, h), c);
    }

    #[test]
    fn every_pixel_is_drawn_and_opaque() {
        for (w, h) in [(1280, 800), (800, 320), (333, 97)] {
            let pixels = frame(77, w, h);
            assert!(pixels.iter().all(|&p| p >> 24 == 0xff), "{w}x{h}");
        }
    }

    #[test]
    fn small_and_odd_sizes_stay_in_bounds() {
        for (w, h) in [
            (1, 1),
            (2, 1),
            (1, 7),
            (3, 3),
            (17, 5),
            (63, 4),
            (64, 4),
            (65, 3),
            (800, 320),
            (1280, 800),
            (1920, 1080),
            (1, 1000),
            (1000, 1),
        ] {
            for n in [0, 1, 29, 30, 1000, 65_535, 1 << 40, u64::MAX] {
                let pixels = frame(n, w, h);
                assert_eq!(pixels.len(), w * h);
                // What fits of the counter is there.
                if w >= 64 && h >= 4 {
                    assert_eq!(read_counter(&pixels, w), Some(n as u16));
                }
                if n & 1 == 1 {
                    assert_eq!(pixels[0], WHITE);
                } else {
                    assert_eq!(pixels[0], BLACK);
                }
            }
        }
    }

    #[test]
    fn short_buffers_and_zero_sizes_do_not_panic() {
        let mut pixels = vec![0; 100];
        render(3, &mut pixels, 1280, 800);
        render(3, &mut pixels, 0, 0);
        render(3, &mut pixels, 10, 0);
        render_strided(3, &mut pixels, 10, 10, 5);
        render(3, &mut [], 10, 10);
        assert_eq!(pixels[0], WHITE);
    }

    #[test]
    fn the_route_is_continuous_and_heads_north() {
        let block = 50;
        assert_eq!(vertex(0, block), (0, 0));
        for leg in 0..3 * LEGS_PER_PERIOD {
            let (a, b) = (vertex(leg, block), vertex(leg + 1, block));
            let (dx, dy) = direction(leg);
            let len = leg_blocks(leg) * block;
            assert_eq!((a.0 + dx * len, a.1 + dy * len), b, "leg {leg}");
        }
        let north: i64 = NORTH.iter().sum();
        assert_eq!(vertex(LEGS_PER_PERIOD, block), (0, -north * block));
        // Locating a distance lands on the right leg.
        assert_eq!(locate(0, block), (0, 0));
        assert_eq!(locate(3 * block, block), (1, 0));
        assert_eq!(locate(3 * block + 7, block), (1, 7));
        let period = period_blocks() * block;
        assert_eq!(locate(2 * period + 1, block), (2 * LEGS_PER_PERIOD, 1));
    }
}
