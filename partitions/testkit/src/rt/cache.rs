//! Cache maintenance and barriers for memory shared with devices. The
//! partitions run with the MMU off, so their own accesses do not allocate
//! in the data caches, but a device model running with caches on may:
//! drivers clean and invalidate what they share around each exchange.

use core::arch::asm;

/// Cleans and invalidates the data cache lines over `[start, start + len)`
/// to the point of coherency.
pub fn dcache_clean_invalidate(start: usize, len: usize) {
    let ctr: u64;
    // SAFETY: reads an ID register.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let line = 4usize << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cache maintenance on the driver's own RAM; it does not
        // change what memory holds as seen with the MMU off.
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack, preserves_flags)) };
        addr += line;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}

pub fn barrier() {
    // SAFETY: a barrier; orders ring accesses against each other and
    // against the register accesses to the device.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}
