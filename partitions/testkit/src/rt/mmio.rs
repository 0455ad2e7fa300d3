//! Device register accessors. Each access is a single plain `ldr`/`str`
//! (no writeback addressing) so that a hypervisor trapping it gets a valid
//! syndrome (ESR ISV = 1) and can emulate it.

use core::arch::asm;

/// Reads the 32-bit register at `addr`.
///
/// # Safety
/// `addr` must be a 4-byte aligned device register that may be read.
pub unsafe fn read32(addr: usize) -> u32 {
    let value: u32;
    // SAFETY: the caller vouches for the address.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) value, options(nostack, preserves_flags))
    };
    value
}

/// Writes the 32-bit register at `addr`.
///
/// # Safety
/// `addr` must be a 4-byte aligned device register that may be written.
pub unsafe fn write32(addr: usize, value: u32) {
    // SAFETY: the caller vouches for the address.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags))
    };
}
