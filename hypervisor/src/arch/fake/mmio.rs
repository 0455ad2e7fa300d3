//! Device register blocks in the simulated machine: each is zeroed memory
//! (a device that answers 0 to everything and keeps what is written), one
//! per address and test thread, leaked, so a test can open the same block
//! and look at what a driver wrote.

use super::with;
pub use crate::arch::register_block::Registers;
use std::alloc::{Layout, alloc_zeroed};

/// Backing blocks are this aligned and at most this big.
const BLOCK: usize = 128 * 1024;

impl<T> Registers<T> {
    /// The block at `base`: this thread's, zeroed when first opened.
    /// `None` where the hardware version says so (block bigger than the
    /// frame, misaligned, null).
    pub fn new(base: u64, size: u64) -> Option<Self> {
        let len = size_of::<T>();
        if base == 0 || len as u64 > size || !base.is_multiple_of(align_of::<T>() as u64) {
            return None;
        }
        assert!(
            len <= BLOCK && align_of::<T>() <= 4096,
            "fake device block too big"
        );
        let at = with(|m| {
            *m.devices.entry(base).or_insert_with(|| {
                let layout = Layout::from_size_align(BLOCK, 4096).expect("layout");
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc_zeroed(layout) };
                assert!(!p.is_null(), "out of memory");
                p as usize
            })
        });
        // SAFETY: `at` is a leaked, zeroed, 4 KiB-aligned allocation of
        // BLOCK bytes, never freed, and reached only through register
        // cells (`UnsafeCell`), for which all-zero bytes are a valid value.
        let regs = unsafe { &*(at as *const T) };
        Some(Self::from_parts(regs, base))
    }
}
