//! The frame counter screenshots read: 16 blocks of 4x4 pixels along the
//! top left corner of each scanout (x = bit * 4, y = 0), bit 0 first,
//! white (0xffffffff) for 1 and black (0xff000000) for 0, holding the
//! frame number's low 16 bits.

use crate::damage::Rect;

pub const BITS: u32 = 16;
pub const BLOCK: u32 = 4;
pub const ONE: u32 = 0xffff_ffff;
pub const ZERO: u32 = 0xff00_0000;

/// Where the counter sits (clipped to the scanout by the caller).
pub const RECT: Rect = Rect::new(0, 0, BITS * BLOCK, BLOCK);

/// The colour of block `bit` for frame `frame`.
pub fn block(frame: u64, bit: u32) -> u32 {
    if frame >> bit & 1 == 1 { ONE } else { ZERO }
}

/// The colour of pixel (`x`, `y`) of the counter, None outside it.
pub fn pixel(frame: u64, x: i32, y: i32) -> Option<u32> {
    RECT.contains_point(x, y)
        .then(|| block(frame, x as u32 / BLOCK))
}

/// Reads a counter back from pixels (as a test would from a screenshot):
/// None if a block is not exactly uniform white or black.
pub fn decode(pixel_at: impl Fn(u32, u32) -> u32) -> Option<u16> {
    let mut value = 0u16;
    for bit in 0..BITS {
        let first = pixel_at(bit * BLOCK, 0);
        for dy in 0..BLOCK {
            for dx in 0..BLOCK {
                if pixel_at(bit * BLOCK + dx, dy) != first {
                    return None;
                }
            }
        }
        match first {
            ONE => value |= 1 << bit,
            ZERO => {}
            _ => return None,
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_low_16_bits() {
        for frame in [0u64, 1, 2, 0x8001, 0xffff, 0x1_2345, 987_654_321] {
            let v = decode(|x, y| pixel(frame, x as i32, y as i32).unwrap());
            assert_eq!(v, Some(frame as u16), "{frame}");
        }
        assert_eq!(block(5, 0), ONE);
        assert_eq!(block(5, 1), ZERO);
        assert_eq!(block(5, 2), ONE);
        assert_eq!(pixel(1, 64, 0), None);
        assert_eq!(pixel(1, 0, 4), None);
        assert_eq!(RECT, Rect::new(0, 0, 64, 4));
    }

    #[test]
    fn rejects_smudged_blocks() {
        let v = decode(|x, y| if (x, y) == (9, 3) { 0xff10_1010 } else { ZERO });
        assert_eq!(v, None);
    }
}
