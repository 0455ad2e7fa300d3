//! Rectangles in pixel coordinates and the damage of one frame: the few
//! rectangles that changed, each redrawn and transferred on its own, and
//! their union flushed once.

/// A rectangle `[x0, x1) x [y0, y1)`; empty when either side is not positive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

impl Rect {
    pub const EMPTY: Rect = Rect {
        x0: 0,
        y0: 0,
        x1: 0,
        y1: 0,
    };

    /// The rectangle at (`x`, `y`) of `w` x `h` pixels.
    pub const fn new(x: i32, y: i32, w: u32, h: u32) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x.saturating_add(w as i32),
            y1: y.saturating_add(h as i32),
        }
    }

    /// The rectangle from corner (`x0`, `y0`) to (`x1`, `y1`), exclusive.
    pub const fn corners(x0: i32, y0: i32, x1: i32, y1: i32) -> Rect {
        Rect { x0, y0, x1, y1 }
    }

    /// The square of side `2 * half` centred on (`cx`, `cy`).
    pub const fn around(cx: i32, cy: i32, half: i32) -> Rect {
        Rect::corners(cx - half, cy - half, cx + half, cy + half)
    }

    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }

    pub fn width(&self) -> u32 {
        if self.is_empty() {
            0
        } else {
            (self.x1 - self.x0) as u32
        }
    }

    pub fn height(&self) -> u32 {
        if self.is_empty() {
            0
        } else {
            (self.y1 - self.y0) as u32
        }
    }

    pub fn area(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }

    /// The smallest rectangle holding both (an empty one adds nothing).
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        Rect::corners(
            self.x0.min(other.x0),
            self.y0.min(other.y0),
            self.x1.max(other.x1),
            self.y1.max(other.y1),
        )
    }

    /// What both cover (possibly empty).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let r = Rect::corners(
            self.x0.max(other.x0),
            self.y0.max(other.y0),
            self.x1.min(other.x1),
            self.y1.min(other.y1),
        );
        if r.is_empty() { Rect::EMPTY } else { r }
    }

    pub fn intersects(&self, other: &Rect) -> bool {
        !self.intersect(other).is_empty()
    }

    /// Whether `other` lies inside (an empty `other` always does).
    pub fn contains(&self, other: &Rect) -> bool {
        other.is_empty()
            || (self.x0 <= other.x0
                && self.y0 <= other.y0
                && other.x1 <= self.x1
                && other.y1 <= self.y1)
    }

    pub fn contains_point(&self, x: i32, y: i32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }

    /// Grown by `n` pixels on every side.
    pub fn pad(&self, n: i32) -> Rect {
        Rect::corners(self.x0 - n, self.y0 - n, self.x1 + n, self.y1 + n)
    }

    pub fn translate(&self, dx: i32, dy: i32) -> Rect {
        Rect::corners(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)
    }

    /// The smallest rectangle holding every point (whole pixels touched).
    pub fn bounding(points: &[(f32, f32)]) -> Rect {
        let mut r: Option<Rect> = None;
        for &(x, y) in points {
            let p = Rect::corners(floor(x), floor(y), floor(x) + 1, floor(y) + 1);
            r = Some(r.map_or(p, |r| r.union(&p)));
        }
        r.unwrap_or(Rect::EMPTY)
    }

    /// As (x, y, w, h) for the device (an empty one is all zero).
    pub fn xywh(&self) -> (u32, u32, u32, u32) {
        if self.is_empty() {
            (0, 0, 0, 0)
        } else {
            (self.x0 as u32, self.y0 as u32, self.width(), self.height())
        }
    }
}

/// The greatest integer not above `x` (no `f32::floor` in `core`).
pub fn floor(x: f32) -> i32 {
    let i = x as i32;
    if (i as f32) > x { i - 1 } else { i }
}

/// `x` to the nearest integer, halves up.
pub fn round(x: f32) -> i32 {
    floor(x + 0.5)
}

/// Pixels a merge may add before two rectangles stay apart: a transfer
/// command costs about as much as copying this many pixels.
pub const MERGE_SLACK: u64 = 4096;

/// Up to `N` rectangles, all inside `bounds`. Rectangles that overlap or
/// lie close are merged when their union is not much larger than both;
/// when the list is full the pair whose union grows least is merged.
#[derive(Clone, Copy, Debug)]
pub struct Damage<const N: usize> {
    bounds: Rect,
    rects: [Rect; N],
    len: usize,
}

impl<const N: usize> Damage<N> {
    pub fn new(bounds: Rect) -> Self {
        Damage {
            bounds,
            rects: [Rect::EMPTY; N],
            len: 0,
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn rects(&self) -> &[Rect] {
        &self.rects[..self.len]
    }

    pub fn bounds(&self) -> Rect {
        self.bounds
    }

    /// The union of everything damaged.
    pub fn union(&self) -> Rect {
        self.rects().iter().fold(Rect::EMPTY, |acc, r| acc.union(r))
    }

    /// Pixels covered, counting overlaps twice (what redrawing costs).
    pub fn cost(&self) -> u64 {
        self.rects().iter().map(Rect::area).sum()
    }

    /// Adds `r` (clipped to the bounds).
    pub fn add(&mut self, r: Rect) {
        let mut r = r.intersect(&self.bounds);
        if r.is_empty() || self.rects().iter().any(|d| d.contains(&r)) {
            return;
        }
        // Absorb what `r` covers or sits cheaply next to, until nothing
        // changes (a merge can make further merges worthwhile).
        loop {
            let mut merged = false;
            let mut i = 0;
            while i < self.len {
                let d = self.rects[i];
                let u = d.union(&r);
                if u.area() <= d.area() + r.area() + MERGE_SLACK {
                    r = u;
                    self.remove(i);
                    merged = true;
                } else {
                    i += 1;
                }
            }
            if !merged {
                break;
            }
        }
        if self.len == N {
            self.merge_cheapest(r);
        } else {
            self.rects[self.len] = r;
            self.len += 1;
        }
    }

    /// Everything inside the bounds.
    pub fn add_all(&mut self) {
        self.len = 0;
        self.add(self.bounds);
    }

    fn remove(&mut self, i: usize) {
        self.rects[i] = self.rects[self.len - 1];
        self.len -= 1;
    }

    /// The list is full: merges the cheapest pair among the rectangles and
    /// `r`, then stores what is left.
    fn merge_cheapest(&mut self, r: Rect) {
        // Candidates: index N stands for `r`.
        let at = |s: &Self, i: usize| if i == N { r } else { s.rects[i] };
        let mut best = (0, N, u64::MAX);
        for i in 0..=N {
            for j in i + 1..=N {
                let (a, b) = (at(self, i), at(self, j));
                let grow = a.union(&b).area().saturating_sub(a.area() + b.area());
                if grow < best.2 {
                    best = (i, j, grow);
                }
            }
        }
        let (i, j, _) = best;
        self.rects[i] = at(self, i).union(&at(self, j));
        if j != N {
            // Two stored ones merged; `r` takes the freed slot.
            self.rects[j] = r;
        }
        self.drop_covered();
    }

    /// Removes rectangles that another one covers.
    fn drop_covered(&mut self) {
        let mut i = 0;
        while i < self.len {
            let me = self.rects[i];
            let covered = (0..self.len)
                .any(|j| j != i && self.rects[j].contains(&me) && (self.rects[j] != me || j < i));
            if covered {
                self.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: Rect = Rect::new(0, 0, 1920, 720);

    #[test]
    fn rect_ops() {
        let a = Rect::new(10, 10, 10, 10);
        let b = Rect::new(15, 5, 10, 10);
        assert_eq!(a.union(&b), Rect::corners(10, 5, 25, 20));
        assert_eq!(a.intersect(&b), Rect::corners(15, 10, 20, 15));
        assert!(a.intersects(&b));
        assert!(!a.intersects(&Rect::new(20, 10, 5, 5)));
        assert_eq!(a.union(&Rect::EMPTY), a);
        assert_eq!(Rect::EMPTY.union(&a), a);
        assert!(a.intersect(&Rect::new(100, 100, 1, 1)).is_empty());
        assert_eq!(Rect::new(3, 4, 0, 9).area(), 0);
        assert_eq!(a.xywh(), (10, 10, 10, 10));
        assert_eq!(Rect::EMPTY.xywh(), (0, 0, 0, 0));
        assert!(a.contains(&Rect::new(12, 12, 8, 8)));
        assert!(!a.contains(&Rect::new(12, 12, 9, 8)));
    }

    #[test]
    fn floor_and_round() {
        assert_eq!(floor(1.5), 1);
        assert_eq!(floor(-1.5), -2);
        assert_eq!(floor(-2.0), -2);
        assert_eq!(round(2.5), 3);
        assert_eq!(round(-0.4), 0);
        assert_eq!(
            Rect::bounding(&[(1.2, 5.9), (-0.5, 3.0)]),
            Rect::corners(-1, 3, 2, 6)
        );
    }

    #[test]
    fn clips_and_skips_covered() {
        let mut d: Damage<4> = Damage::new(SCREEN);
        d.add(Rect::new(-10, -10, 20, 20));
        assert_eq!(d.rects(), &[Rect::new(0, 0, 10, 10)]);
        d.add(Rect::new(2, 2, 3, 3));
        assert_eq!(d.rects().len(), 1);
        d.add(Rect::new(5000, 0, 10, 10));
        assert_eq!(d.rects().len(), 1);
    }

    #[test]
    fn merges_neighbours_keeps_distant_apart() {
        let mut d: Damage<8> = Damage::new(SCREEN);
        d.add(Rect::new(100, 100, 50, 50));
        // Touching: the union is exactly both.
        d.add(Rect::new(150, 100, 50, 50));
        assert_eq!(d.rects(), &[Rect::new(100, 100, 100, 50)]);
        // Far away: a rectangle of its own.
        d.add(Rect::new(1500, 600, 50, 50));
        assert_eq!(d.rects().len(), 2);
        assert_eq!(d.union(), Rect::corners(100, 100, 1550, 650));
    }

    #[test]
    fn merging_cascades() {
        let mut d: Damage<8> = Damage::new(SCREEN);
        d.add(Rect::new(0, 100, 100, 100));
        d.add(Rect::new(300, 100, 100, 100));
        assert_eq!(d.rects().len(), 2);
        // Bridges the two.
        d.add(Rect::new(90, 100, 220, 100));
        assert_eq!(d.rects(), &[Rect::new(0, 100, 400, 100)]);
    }

    #[test]
    fn full_list_merges_cheapest_pair() {
        let mut d: Damage<3> = Damage::new(SCREEN);
        d.add(Rect::new(0, 0, 10, 10));
        d.add(Rect::new(1000, 0, 10, 10));
        d.add(Rect::new(0, 600, 10, 10));
        d.add(Rect::new(1000, 620, 10, 10));
        assert_eq!(d.rects().len(), 3);
        // Everything is still covered.
        for r in [
            Rect::new(0, 0, 10, 10),
            Rect::new(1000, 0, 10, 10),
            Rect::new(0, 600, 10, 10),
            Rect::new(1000, 620, 10, 10),
        ] {
            assert!(d.rects().iter().any(|d| d.contains(&r)), "{r:?}");
        }
        // The two close ones at the bottom or at the right were merged,
        // not a diagonal pair.
        assert!(d.cost() < 100 * 1000);
    }

    #[test]
    fn many_random_rects_stay_covered() {
        let mut seed = 12345u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut d: Damage<6> = Damage::new(SCREEN);
        let mut added = Vec::new();
        for _ in 0..200 {
            let r = Rect::new(
                (next() % 1900) as i32,
                (next() % 700) as i32,
                next() % 120,
                next() % 120,
            );
            d.add(r);
            added.push(r.intersect(&SCREEN));
            assert!(d.rects().len() <= 6);
            for a in &added {
                assert!(
                    a.is_empty() || d.rects().iter().any(|r| r.contains(a)),
                    "{a:?} lost in {:?}",
                    d.rects()
                );
            }
            for r in d.rects() {
                assert!(SCREEN.contains(r) && !r.is_empty());
            }
        }
        d.add_all();
        assert_eq!(d.rects(), &[SCREEN]);
    }
}
