//! Polled output on the physical PL011: the hypervisor's own log and the
//! partitions' tagged console lines. Callers serialize through the console
//! lock in `console.rs`.

use core::sync::atomic::{AtomicU64, Ordering};

static BASE: AtomicU64 = AtomicU64::new(0);

const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Selects the UART (the board's early UART first, the DT's later).
pub fn set_base(base: u64) {
    BASE.store(base, Ordering::Release);
}

pub fn write_bytes(bytes: &[u8]) {
    let base = BASE.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    for &b in bytes {
        if b == b'\n' {
            put(base, b'\r');
        }
        put(base, b);
    }
}

fn put(base: u64, byte: u8) {
    // SAFETY: `base` is the console PL011's MMIO frame, identity mapped as
    // device memory at EL2 (or accessed with the MMU off); only the flag and
    // data registers are touched.
    unsafe {
        while core::ptr::read_volatile((base + FR) as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile((base + DR) as *mut u32, byte as u32);
    }
}

const IMSC: u64 = 0x38;
const FR_RXFE: u32 = 1 << 4;
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;

/// Enables the receive (and receive-timeout) interrupts.
pub fn enable_receive_interrupt() {
    let base = BASE.load(Ordering::Acquire);
    // SAFETY: as for `put`; IMSC only selects which interrupts assert.
    unsafe { core::ptr::write_volatile((base + IMSC) as *mut u32, INT_RX | INT_RT) };
}

/// A received byte, if one is waiting.
pub fn read_byte() -> Option<u8> {
    let base = BASE.load(Ordering::Acquire);
    // SAFETY: as for `put`; reading DR pops the receive FIFO, which only
    // the console input path does.
    unsafe {
        if core::ptr::read_volatile((base + FR) as *const u32) & FR_RXFE != 0 {
            return None;
        }
        Some(core::ptr::read_volatile((base + DR) as *const u32) as u8)
    }
}

/// Last words before a core halts: straight to the UART, with no
/// allocation, no lock the dying code could hold, and no queue.
pub fn emergency(args: core::fmt::Arguments) {
    struct Raw;
    impl core::fmt::Write for Raw {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            write_bytes(s.as_bytes());
            Ok(())
        }
    }
    let _ = core::fmt::Write::write_fmt(&mut Raw, args);
}
