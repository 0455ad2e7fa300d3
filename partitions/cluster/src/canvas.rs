//! A view of B8G8R8A8 pixels (a little-endian `0xAARRGGBB` per pixel) in
//! memory, and embedded-graphics' `DrawTarget` on it: every colour drawn is
//! opaque; transparent pixels are only ever written by [`Canvas::fill`].

use crate::damage::Rect;
use core::convert::Infallible;
use core::marker::PhantomData;
use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Size};
use embedded_graphics::primitives::Rectangle;

/// Transparent black: where the IVI's picture shows through.
pub const TRANSPARENT: u32 = 0;

/// `c` as an opaque pixel.
pub fn argb(c: Rgb888) -> u32 {
    0xff00_0000 | u32::from(c.r()) << 16 | u32::from(c.g()) << 8 | u32::from(c.b())
}

/// `0xRRGGBB` as a colour.
pub const fn rgb(v: u32) -> Rgb888 {
    Rgb888::new((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// `width` x `height` pixels, rows `stride` pixels apart, at `ptr`.
pub struct Canvas<'a> {
    ptr: *mut u32,
    stride: usize,
    width: u32,
    height: u32,
    _pixels: PhantomData<&'a mut [u32]>,
}

impl<'a> Canvas<'a> {
    /// A canvas over `pixels` (at least `stride * (height - 1) + width`).
    pub fn new(pixels: &'a mut [u32], stride: usize, width: u32, height: u32) -> Canvas<'a> {
        assert!(width as usize <= stride);
        assert!(height == 0 || pixels.len() >= stride * (height as usize - 1) + width as usize);
        // SAFETY: the slice covers every pixel of the canvas (checked
        // above) and is borrowed for 'a.
        unsafe { Canvas::from_raw(pixels.as_mut_ptr(), stride, width, height) }
    }

    /// A canvas over raw memory.
    ///
    /// # Safety
    /// `ptr` must be valid for reads and writes of `stride * (height - 1) +
    /// width` aligned `u32`s for 'a, and nothing else may access the
    /// canvas's pixels while it is in use.
    pub unsafe fn from_raw(ptr: *mut u32, stride: usize, width: u32, height: u32) -> Canvas<'a> {
        Canvas {
            ptr,
            stride,
            width,
            height,
            _pixels: PhantomData,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn stride(&self) -> usize {
        self.stride
    }

    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// Row `y` from `x0` to `x1` (inside the canvas).
    fn row(&mut self, y: i32, x0: i32, x1: i32) -> &mut [u32] {
        debug_assert!(0 <= x0 && x0 <= x1 && x1 as u32 <= self.width);
        debug_assert!(0 <= y && (y as u32) < self.height);
        let at = y as usize * self.stride + x0 as usize;
        // SAFETY: inside the canvas (the caller clips), which `new` or
        // `from_raw`'s caller vouched for; `&mut self` keeps it exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.add(at), (x1 - x0) as usize) }
    }

    pub fn get(&self, x: u32, y: u32) -> u32 {
        assert!(x < self.width && y < self.height);
        // SAFETY: inside the canvas.
        unsafe { *self.ptr.add(y as usize * self.stride + x as usize) }
    }

    /// Sets every pixel of `r` (clipped) to `value`, alpha included.
    pub fn fill(&mut self, r: Rect, value: u32) {
        let r = r.intersect(&self.bounds());
        for y in r.y0..r.y1 {
            self.row(y, r.x0, r.x1).fill(value);
        }
    }

    /// Copies `r` (clipped to both) from `src`, whose pixel (0, 0) lies at
    /// `origin` of this canvas.
    pub fn copy_from(&mut self, r: Rect, src: &Canvas<'_>, origin: (i32, i32)) {
        let (ox, oy) = origin;
        let r = r
            .intersect(&self.bounds())
            .intersect(&src.bounds().translate(ox, oy));
        for y in r.y0..r.y1 {
            let from = (y - oy) as usize * src.stride + (r.x0 - ox) as usize;
            // SAFETY: inside `src` (clipped above); `src` is another canvas
            // (borrowed shared while this one is borrowed mutably).
            let from =
                unsafe { core::slice::from_raw_parts(src.ptr.add(from), r.width() as usize) };
            self.row(y, r.x0, r.x1).copy_from_slice(from);
        }
    }

    /// The address of pixel (`x`, `y`) and the bytes from there to the end
    /// of the row's part in `r` (for cache maintenance before a transfer).
    pub fn span(&self, x: i32, y: i32, width: u32) -> (usize, usize) {
        let at = y as usize * self.stride + x as usize;
        (self.ptr as usize + at * 4, width as usize * 4)
    }
}

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Rgb888;
    type Error = Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Infallible>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let at = p.y as usize * self.stride + p.x as usize;
                // SAFETY: inside the canvas.
                unsafe { *self.ptr.add(at) = argb(c) };
            }
        }
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Rgb888) -> Result<(), Infallible> {
        let r = Rect::new(
            area.top_left.x,
            area.top_left.y,
            area.size.width,
            area.size.height,
        );
        self.fill(r, argb(color));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_graphics::prelude::*;
    use embedded_graphics::primitives::{Circle, PrimitiveStyle};

    #[test]
    fn draws_opaque_and_clips() {
        let mut px = vec![0u32; 20 * 10];
        let mut c = Canvas::new(&mut px, 20, 16, 10);
        c.fill(Rect::new(-5, -5, 10, 10), 0x1234_5678);
        assert_eq!(c.get(4, 4), 0x1234_5678);
        assert_eq!(c.get(5, 5), 0);
        Circle::new(Point::new(10, 2), 30)
            .into_styled(PrimitiveStyle::with_fill(rgb(0x102030)))
            .draw(&mut c)
            .unwrap();
        assert_eq!(c.get(15, 9), 0xff10_2030);
        // Columns 16.. of the stride are not the canvas's.
        assert!(px.chunks(20).all(|row| row[16..].iter().all(|&p| p == 0)));
    }

    #[test]
    fn copies_between_canvases() {
        let mut a = vec![0u32; 8 * 8];
        let mut b: Vec<u32> = (0..16).collect();
        let src = Canvas::new(&mut b, 4, 4, 4);
        let mut dst = Canvas::new(&mut a, 8, 8, 8);
        dst.copy_from(Rect::new(0, 0, 8, 8), &src, (3, 2));
        assert_eq!(dst.get(3, 2), 0);
        assert_eq!(dst.get(6, 5), 15);
        assert_eq!(dst.get(2, 2), 0);
        assert_eq!(dst.get(7, 5), 0);
        let (addr, len) = dst.span(1, 2, 3);
        assert_eq!(addr, a.as_ptr() as usize + (2 * 8 + 1) * 4);
        assert_eq!(len, 12);
    }
}
