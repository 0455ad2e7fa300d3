//! Seven-segment numerals for the digital readouts: which segments a
//! character lights, where each segment of a digit cell lies (a bevelled
//! bar, as six corner points), and how a number fills a row of cells.
//!
//! ```text
//!  aaa
//! f   b
//!  ggg
//! e   c
//!  ddd
//! ```

use crate::damage::Rect;

pub const A: u8 = 1 << 0;
pub const B: u8 = 1 << 1;
pub const C: u8 = 1 << 2;
pub const D: u8 = 1 << 3;
pub const E: u8 = 1 << 4;
pub const F: u8 = 1 << 5;
pub const G: u8 = 1 << 6;

/// Most cells of a row.
pub const MAX_CELLS: usize = 8;

/// The segments `c` lights (nothing for characters it cannot show).
pub fn segments(c: char) -> u8 {
    match c {
        '0' => A | B | C | D | E | F,
        '1' => B | C,
        '2' => A | B | D | E | G,
        '3' => A | B | C | D | G,
        '4' => B | C | F | G,
        '5' => A | C | D | F | G,
        '6' => A | C | D | E | F | G,
        '7' => A | B | C,
        '8' => A | B | C | D | E | F | G,
        '9' => A | B | C | D | F | G,
        '-' => G,
        'E' => A | D | E | F | G,
        'P' => A | B | E | F | G,
        'r' => E | G,
        'n' => C | E | G,
        'd' => B | C | D | E | G,
        _ => 0,
    }
}

/// Thickness of the segments of `cell` (even, at least 2).
pub fn thickness(cell: &Rect) -> i32 {
    ((cell.width() as i32 / 5).max(2) + 1) & !1
}

/// Whether segment `s` (0 = a .. 6 = g) lies horizontally.
pub fn horizontal(s: usize) -> bool {
    matches!(s, 0 | 3 | 6)
}

/// The six corners of segment `s` (0 = a .. 6 = g) of `cell`, going
/// round from the segment's first tip: for a horizontal segment from its
/// left tip, for a vertical one from its top tip.
pub fn hexagon(cell: &Rect, s: usize) -> [(i32, i32); 6] {
    let t = thickness(cell);
    let h = t / 2;
    let gap = (t / 6).max(1);
    let (left, right) = (cell.x0 + h, cell.x1 - h);
    let (top, bottom) = (cell.y0 + h, cell.y1 - h);
    let mid = (cell.y0 + cell.y1) / 2;
    let across = |y: i32| {
        let (xa, xb) = (left + gap, right - gap);
        [
            (xa, y),
            (xa + h, y - h),
            (xb - h, y - h),
            (xb, y),
            (xb - h, y + h),
            (xa + h, y + h),
        ]
    };
    let down = |x: i32, ya: i32, yb: i32| {
        let (ya, yb) = (ya + gap, yb - gap);
        [
            (x, ya),
            (x + h, ya + h),
            (x + h, yb - h),
            (x, yb),
            (x - h, yb - h),
            (x - h, ya + h),
        ]
    };
    match s {
        0 => across(top),
        1 => down(right, top, mid),
        2 => down(right, mid, bottom),
        3 => across(bottom),
        4 => down(left, mid, bottom),
        5 => down(left, top, mid),
        _ => across(mid),
    }
}

/// `value` right-aligned in `n` cells (at most [`MAX_CELLS`]): digits
/// beyond the cells are dropped from the left, blanks fill the left but
/// at least `min_digits` digits are shown (leading zeros).
pub fn number(value: u64, n: usize, min_digits: usize) -> [char; MAX_CELLS] {
    let n = n.min(MAX_CELLS);
    let mut out = [' '; MAX_CELLS];
    let mut v = value;
    for i in (0..n).rev() {
        let shown = n - i;
        if v == 0 && shown > min_digits.max(1) {
            break;
        }
        out[i] = char::from(b'0' + (v % 10) as u8);
        v /= 10;
    }
    out
}

/// A row of digit cells, with an optional decimal point before the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub cells: [Rect; MAX_CELLS],
    pub n: usize,
    pub dot: Option<Rect>,
}

impl Row {
    /// `n` cells of `height` pixels centred on (`cx`, `cy`).
    pub fn new(cx: i32, cy: i32, height: u32, n: usize, dot: bool) -> Row {
        let n = n.clamp(1, MAX_CELLS);
        let h = height as i32;
        let w = (h * 11 / 20).max(3);
        let gap = (h / 6).max(1);
        let dot_gap = if dot { gap + w / 3 } else { 0 };
        let total = n as i32 * w + (n as i32 - 1) * gap + dot_gap;
        let x0 = cx - total / 2;
        let y0 = cy - h / 2;
        let mut cells = [Rect::EMPTY; MAX_CELLS];
        for (i, cell) in cells.iter_mut().enumerate().take(n) {
            let extra = if dot && i == n - 1 { dot_gap } else { 0 };
            *cell = Rect::new(x0 + i as i32 * (w + gap) + extra, y0, w as u32, h as u32);
        }
        let dot = (dot && n > 1).then(|| {
            let t = thickness(&cells[0]);
            let x = (cells[n - 2].x1 + cells[n - 1].x0) / 2;
            Rect::new(x - t / 2, y0 + h - t, t as u32, t as u32)
        });
        Row { cells, n, dot }
    }

    pub fn cells(&self) -> &[Rect] {
        &self.cells[..self.n]
    }

    /// Everything the row can light.
    pub fn bounds(&self) -> Rect {
        self.cells()
            .iter()
            .fold(self.dot.unwrap_or(Rect::EMPTY), |acc, c| acc.union(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_light_the_right_segments() {
        let count = |c| segments(c).count_ones();
        let expected = [6, 2, 5, 5, 4, 5, 6, 3, 7, 6];
        for (d, &n) in expected.iter().enumerate() {
            assert_eq!(count(char::from(b'0' + d as u8)), n, "{d}");
        }
        assert_eq!(segments(' '), 0);
        assert_eq!(segments('-'), G);
        assert_eq!(segments('8'), 0x7f);
    }

    #[test]
    fn segments_stay_in_their_cell_and_apart() {
        let cell = Rect::new(100, 50, 44, 80);
        let mut boxes = Vec::new();
        for s in 0..7 {
            let pts = hexagon(&cell, s);
            for &(x, y) in &pts {
                assert!(
                    cell.contains_point(x, y) || x == cell.x1 || y == cell.y1,
                    "{s}: {x},{y}"
                );
            }
            let xs = pts.iter().map(|p| p.0);
            let ys = pts.iter().map(|p| p.1);
            let (x0, x1) = (xs.clone().min().unwrap(), xs.max().unwrap());
            let (y0, y1) = (ys.clone().min().unwrap(), ys.max().unwrap());
            if horizontal(s) {
                assert!(x1 - x0 > y1 - y0, "{s}");
            } else {
                assert!(y1 - y0 > x1 - x0, "{s}");
            }
            boxes.push(Rect::corners(x0, y0, x1, y1));
        }
        // b and c (right side), f and e (left) do not touch.
        assert!(!boxes[1].intersects(&boxes[2]));
        assert!(!boxes[5].intersects(&boxes[4]));
        // a spans the top, d the bottom.
        assert!(boxes[0].y0 == cell.y0 && boxes[3].y1 == cell.y1);
    }

    #[test]
    fn numbers_fill_cells_right_aligned() {
        let s = |v, n, m| -> String { number(v, n, m)[..n].iter().collect() };
        assert_eq!(s(0, 3, 1), "  0");
        assert_eq!(s(7, 3, 1), "  7");
        assert_eq!(s(120, 3, 1), "120");
        assert_eq!(s(1234, 3, 1), "234");
        assert_eq!(s(5, 4, 2), "  05");
        assert_eq!(s(123_456, 6, 1), "123456");
        assert_eq!(s(42, 6, 1), "    42");
        assert_eq!(s(0, 1, 0), "0");
    }

    #[test]
    fn rows_are_centred_and_ordered() {
        let r = Row::new(500, 300, 80, 3, false);
        assert_eq!(r.cells().len(), 3);
        assert_eq!(r.dot, None);
        let b = r.bounds();
        assert!((b.x0 + b.x1) / 2 - 500 <= 1);
        assert_eq!((b.y0, b.y1), (260, 340));
        for w in r.cells().windows(2) {
            assert!(w[0].x1 < w[1].x0);
        }
        let t = Row::new(500, 300, 40, 4, true);
        let dot = t.dot.unwrap();
        assert!(t.cells[2].x1 <= dot.x0 && dot.x1 <= t.cells[3].x0);
        assert_eq!(dot.y1, 320);
    }
}
