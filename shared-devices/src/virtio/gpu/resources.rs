//! Where resources live: the arena allocator and the resource table.
//!
//! The arena is a byte buffer the configuration sizes (`display_memory`);
//! every resource's pixels and its backing entries are allocated in it,
//! first fit, so a guest's resources can never take more than that,
//! whatever it asks for. The allocator only keeps offsets; it never
//! touches the bytes.

use crate::display::{PixelFormat, Rects};

/// Every allocation starts at a multiple of this (a cache line).
pub const ALIGN: usize = 64;

/// One allocation: `len` bytes at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub start: usize,
    pub len: usize,
}

impl Block {
    /// Where the next allocation may start.
    fn next_free(&self) -> usize {
        // Cannot overflow: start + len <= the arena size, a slice length.
        (self.start + self.len).next_multiple_of(ALIGN)
    }
}

/// First-fit allocation of at most `N` blocks in `size` bytes.
#[derive(Clone, Debug)]
pub struct Allocator<const N: usize> {
    size: usize,
    /// Sorted by `start`, disjoint.
    blocks: heapless::Vec<Block, N>,
    used: usize,
}

impl<const N: usize> Allocator<N> {
    pub const fn new(size: usize) -> Self {
        Self {
            size,
            blocks: heapless::Vec::new(),
            used: 0,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes allocated (without the alignment gaps).
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// `len` (> 0) bytes at the lowest aligned offset where they fit, or
    /// None (no room, or `N` blocks already).
    pub fn alloc(&mut self, len: usize) -> Option<usize> {
        if len == 0 || self.blocks.is_full() {
            return None;
        }
        let mut at = 0usize;
        let mut index = self.blocks.len();
        for (i, b) in self.blocks.iter().enumerate() {
            if b.start.checked_sub(at).is_some_and(|gap| gap >= len) {
                index = i;
                break;
            }
            at = b.next_free();
        }
        if index == self.blocks.len() && self.size.checked_sub(at).is_none_or(|room| room < len) {
            return None;
        }
        self.blocks.insert(index, Block { start: at, len }).ok()?;
        self.used += len;
        Some(at)
    }

    /// Frees the block at `start`; false if there is none.
    pub fn free(&mut self, start: usize) -> bool {
        match self.blocks.binary_search_by_key(&start, |b| b.start) {
            Ok(i) => {
                let b = self.blocks.remove(i);
                self.used -= b.len;
                true
            }
            Err(_) => false,
        }
    }

    /// The block at `start`.
    pub fn block(&self, start: usize) -> Option<Block> {
        let i = self.blocks.binary_search_by_key(&start, |b| b.start).ok()?;
        Some(self.blocks[i])
    }

    pub fn clear(&mut self) {
        self.blocks.clear();
        self.used = 0;
    }

    /// Blocks sorted, disjoint, aligned, inside the arena, and `used`
    /// their sum.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut at = 0;
        let mut sum = 0usize;
        for b in &self.blocks {
            if b.start < at || b.start % ALIGN != 0 || b.len == 0 {
                return Err("arena blocks overlap, are unaligned or empty");
            }
            let end = b.start.checked_add(b.len).ok_or("arena block wraps")?;
            if end > self.size {
                return Err("arena block beyond the arena");
            }
            at = end;
            sum += b.len;
        }
        if sum != self.used || self.used > self.size {
            return Err("arena accounting wrong");
        }
        Ok(())
    }
}

/// A resource's backing: `entries` guest memory ranges (16 bytes each in
/// the arena at `at`: address u64, length u32, padding u32) adding up to
/// `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backing {
    pub at: usize,
    pub entries: u32,
    pub bytes: u64,
}

/// A 2D resource: `width` x `height` pixels of `format`, 4 bytes each,
/// row-major without padding, at `pixels` in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    pub id: u32,
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub pixels: usize,
    pub backing: Option<Backing>,
    /// Rectangles transferred since its last flush: what a flush that
    /// covers them all actually changes.
    pub transferred: Rects,
}

impl Resource {
    /// Bytes per row.
    pub fn stride(&self) -> u64 {
        u64::from(self.width) * 4
    }

    /// Bytes of its pixels (fits in `usize`: it was allocated).
    pub fn bytes(&self) -> usize {
        (self.stride() * u64::from(self.height)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_and_accounting() {
        let mut a = Allocator::<4>::new(1000);
        assert_eq!(a.alloc(0), None);
        assert_eq!(a.alloc(100), Some(0));
        assert_eq!(a.alloc(1), Some(128));
        assert_eq!(a.alloc(300), Some(192));
        assert_eq!(a.used(), 401);
        assert_eq!(a.alloc(600), None, "no room");
        assert!(a.free(128));
        assert!(!a.free(128), "twice");
        assert!(!a.free(5));
        assert_eq!(a.alloc(64), Some(128), "the gap");
        assert_eq!(a.alloc(65), Some(512), "does not fit the gap");
        assert_eq!(a.alloc(1), None, "N blocks");
        a.check().unwrap();
        assert_eq!(
            a.block(512),
            Some(Block {
                start: 512,
                len: 65
            })
        );
        assert!(a.free(0));
        assert!(a.free(192));
        assert_eq!(a.alloc(400), None, "128 + 320 + 360 free, apart");
        assert_eq!(a.alloc(300), Some(192), "the first gap that fits");
        assert_eq!(a.alloc(360), Some(640), "the end");
        a.check().unwrap();
        a.clear();
        assert_eq!(a.used(), 0);
        assert_eq!(a.alloc(1000), Some(0), "all of it");
        assert_eq!(a.alloc(1), None);
        a.check().unwrap();
    }

    #[test]
    fn an_unaligned_arena_end_is_usable() {
        let mut a = Allocator::<4>::new(100);
        assert_eq!(a.alloc(30), Some(0));
        assert_eq!(a.alloc(36), Some(64));
        assert_eq!(a.alloc(1), None);
        assert_eq!(a.used(), 66);
        a.check().unwrap();
    }
}
