//! The display mediator's policy: rectangles, pixel formats and the
//! compositor that stacks partitions' views on a physical display.
//!
//! The guest side is virtio-gpu ([`crate::virtio::gpu`]): each view of a
//! partition is one scanout of its virtio-gpu device. The compositor knows
//! nothing of virtio: it composes [`compositor::Layer`]s whose pixels come
//! from a [`compositor::LayerSource`], which the hypervisor implements over
//! the partitions' devices.

pub mod compositor;
pub mod frames;

/// A rectangle in pixels. Its far edges (`x + width`, `y + height`) are
/// computed in 64 bits, so no rectangle a guest names can overflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// One past the rightmost column.
    pub const fn right(&self) -> u64 {
        self.x as u64 + self.width as u64
    }

    /// One past the bottom row.
    pub const fn bottom(&self) -> u64 {
        self.y as u64 + self.height as u64
    }

    pub const fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// Whether `other` lies entirely inside this rectangle.
    pub const fn contains(&self, other: &Rect) -> bool {
        other.x >= self.x
            && other.y >= self.y
            && other.right() <= self.right()
            && other.bottom() <= self.bottom()
    }

    /// The common part, if not empty.
    pub fn intersection(&self, other: &Rect) -> Option<Rect> {
        let x = self.x.max(other.x);
        let y = self.y.max(other.y);
        let right = self.right().min(other.right());
        let bottom = self.bottom().min(other.bottom());
        (u64::from(x) < right && u64::from(y) < bottom).then(|| Rect {
            x,
            y,
            width: (right - u64::from(x)) as u32,
            height: (bottom - u64::from(y)) as u32,
        })
    }

    /// The smallest rectangle holding both (an empty one adds nothing);
    /// clamped to `u32` coordinates.
    pub fn union(&self, other: &Rect) -> Rect {
        if self.is_empty() {
            return *other;
        }
        if other.is_empty() {
            return *self;
        }
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = self.right().max(other.right()).min(u64::from(u32::MAX));
        let bottom = self.bottom().max(other.bottom()).min(u64::from(u32::MAX));
        Rect {
            x,
            y,
            width: (right - u64::from(x)) as u32,
            height: (bottom - u64::from(y)) as u32,
        }
    }

    /// Moved by (`dx`, `dy`), or `None` if that leaves `u32` coordinates.
    pub fn offset(&self, dx: u32, dy: u32) -> Option<Rect> {
        Some(Rect {
            x: self.x.checked_add(dx)?,
            y: self.y.checked_add(dy)?,
            ..*self
        })
    }
}

/// A few rectangles of damage, kept apart while there are few (a needle
/// here, a counter there: composing their union would cover most of the
/// screen) and merged, the pair that grows least first, when more come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rects {
    n: u8,
    r: [Rect; Rects::MAX],
}

impl Rects {
    /// Rectangles kept apart at most.
    pub const MAX: usize = 4;

    /// One rectangle (none if it is empty).
    pub fn of(rect: Rect) -> Rects {
        let mut rects = Rects::default();
        rects.push(rect);
        rects
    }

    pub fn as_slice(&self) -> &[Rect] {
        &self.r[..usize::from(self.n)]
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// The smallest rectangle holding them all.
    pub fn bounds(&self) -> Option<Rect> {
        self.as_slice().iter().copied().reduce(|a, b| a.union(&b))
    }

    /// Adds `rect` (nothing if it is empty or inside one already).
    pub fn push(&mut self, rect: Rect) {
        if rect.is_empty() || self.as_slice().iter().any(|r| r.contains(&rect)) {
            return;
        }
        let n = usize::from(self.n);
        if n < Self::MAX {
            self.r[n] = rect;
            self.n += 1;
            return;
        }
        // Full: into the one whose union with it adds the fewest pixels.
        let area = |r: &Rect| u64::from(r.width) * u64::from(r.height);
        let grows = |r: &Rect| area(&r.union(&rect)) - area(r);
        let best = (0..n).min_by_key(|&i| grows(&self.r[i])).unwrap_or(0);
        self.r[best] = self.r[best].union(&rect);
    }

    /// Adds each of `other`.
    pub fn extend(&mut self, other: &Rects) {
        for r in other.as_slice() {
            self.push(*r);
        }
    }
}

/// The 32-bit pixel formats of virtio-gpu 2D resources (VIRTIO 1.2
/// §5.7.6.8), named by their byte order in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    B8G8R8A8,
    B8G8R8X8,
    A8R8G8B8,
    X8R8G8B8,
    R8G8B8A8,
    X8B8G8R8,
    A8B8G8R8,
    R8G8B8X8,
}

impl PixelFormat {
    /// Every format, for tests and tables.
    pub const ALL: [PixelFormat; 8] = [
        PixelFormat::B8G8R8A8,
        PixelFormat::B8G8R8X8,
        PixelFormat::A8R8G8B8,
        PixelFormat::X8R8G8B8,
        PixelFormat::R8G8B8A8,
        PixelFormat::X8B8G8R8,
        PixelFormat::A8B8G8R8,
        PixelFormat::R8G8B8X8,
    ];

    /// The virtio-gpu format code.
    pub const fn code(self) -> u32 {
        match self {
            PixelFormat::B8G8R8A8 => 1,
            PixelFormat::B8G8R8X8 => 2,
            PixelFormat::A8R8G8B8 => 3,
            PixelFormat::X8R8G8B8 => 4,
            PixelFormat::R8G8B8A8 => 67,
            PixelFormat::X8B8G8R8 => 68,
            PixelFormat::A8B8G8R8 => 121,
            PixelFormat::R8G8B8X8 => 134,
        }
    }

    /// The format with virtio-gpu code `code`, if it is one of these.
    pub fn from_code(code: u32) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.code() == code)
    }

    /// One pixel (4 bytes in memory order) as `0xAARRGGBB`; formats
    /// without alpha are opaque.
    pub const fn to_argb(self, p: [u8; 4]) -> u32 {
        let (a, r, g, b) = match self {
            PixelFormat::B8G8R8A8 => (p[3], p[2], p[1], p[0]),
            PixelFormat::B8G8R8X8 => (0xff, p[2], p[1], p[0]),
            PixelFormat::A8R8G8B8 => (p[0], p[1], p[2], p[3]),
            PixelFormat::X8R8G8B8 => (0xff, p[1], p[2], p[3]),
            PixelFormat::R8G8B8A8 => (p[3], p[0], p[1], p[2]),
            PixelFormat::X8B8G8R8 => (0xff, p[3], p[2], p[1]),
            PixelFormat::A8B8G8R8 => (p[0], p[3], p[2], p[1]),
            PixelFormat::R8G8B8X8 => (0xff, p[0], p[1], p[2]),
        };
        (a as u32) << 24 | (r as u32) << 16 | (g as u32) << 8 | b as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_never_overflow() {
        let far = Rect::new(u32::MAX - 1, u32::MAX - 1, u32::MAX, u32::MAX);
        assert_eq!(far.right(), 2 * u64::from(u32::MAX) - 1);
        let screen = Rect::new(0, 0, 1920, 720);
        assert_eq!(screen.intersection(&far), None);
        assert!(!screen.contains(&far));
        assert_eq!(
            screen.intersection(&Rect::new(1900, 700, 100, 100)),
            Some(Rect::new(1900, 700, 20, 20))
        );
        assert_eq!(screen.union(&far).right(), u64::from(u32::MAX));
        assert_eq!(far.offset(2, 0), None);
        assert_eq!(Rect::default().union(&screen), screen);
        assert!(screen.contains(&Rect::new(10, 10, 0, 0)));
    }

    #[test]
    fn rects_stay_apart_until_full() {
        let mut d = Rects::default();
        d.push(Rect::new(0, 0, 64, 4));
        d.push(Rect::new(0, 0, 10, 2)); // inside: nothing new
        d.push(Rect::new(1800, 600, 100, 100));
        d.push(Rect::default());
        assert_eq!(d.as_slice().len(), 2);
        assert_eq!(d.bounds(), Some(Rect::new(0, 0, 1900, 700)));
        d.push(Rect::new(100, 0, 10, 4));
        d.push(Rect::new(1000, 300, 10, 10));
        assert_eq!(d.as_slice().len(), 4);
        // A fifth goes with the one it grows least: the counter's.
        d.push(Rect::new(70, 0, 10, 4));
        assert_eq!(d.as_slice().len(), 4);
        assert_eq!(d.as_slice()[0], Rect::new(0, 0, 80, 4));
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.bounds(), None);
        assert_eq!(Rects::of(Rect::default()), Rects::default());
    }

    #[test]
    fn formats_read_their_bytes_in_order() {
        // Red, half transparent, as each format lays it out in memory.
        let cases = [
            (PixelFormat::B8G8R8A8, [0, 0, 0xff, 0x80], 0x80ff_0000),
            (PixelFormat::B8G8R8X8, [0, 0, 0xff, 0x80], 0xffff_0000),
            (PixelFormat::A8R8G8B8, [0x80, 0xff, 0, 0], 0x80ff_0000),
            (PixelFormat::X8R8G8B8, [0x80, 0xff, 0, 0], 0xffff_0000),
            (PixelFormat::R8G8B8A8, [0xff, 0, 0, 0x80], 0x80ff_0000),
            (PixelFormat::X8B8G8R8, [0x80, 0, 0, 0xff], 0xffff_0000),
            (PixelFormat::A8B8G8R8, [0x80, 0, 0, 0xff], 0x80ff_0000),
            (PixelFormat::R8G8B8X8, [0xff, 0, 0, 0x80], 0xffff_0000),
        ];
        for (format, bytes, argb) in cases {
            assert_eq!(format.to_argb(bytes), argb, "{format:?}");
            assert_eq!(PixelFormat::from_code(format.code()), Some(format));
        }
        assert_eq!(PixelFormat::from_code(0), None);
        assert_eq!(PixelFormat::from_code(5), None);
    }
}
