//! Polled PL011 output, one whole line at a time, and polled input.

use super::{cpu, mmio};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Used until the device tree has been read (QEMU `virt`'s PL011).
const DEFAULT_BASE: usize = 0x0900_0000;
const UARTDR: usize = 0x00;
const UARTFR: usize = 0x18;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;

/// 0 means `DEFAULT_BASE` (so nothing lives in .data).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// 0 when free, else the index + 1 of the vCPU printing.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// Uses the PL011 at `base` from now on.
pub fn set_base(base: usize) {
    BASE.store(base, Ordering::Relaxed);
}

fn base() -> usize {
    match BASE.load(Ordering::Relaxed) {
        0 => DEFAULT_BASE,
        base => base,
    }
}

fn put_byte(base: usize, byte: u8) {
    // SAFETY: `base` is the PL011 named by the device tree (or QEMU's).
    unsafe {
        while mmio::read32(base + UARTFR) & FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        mmio::write32(base + UARTDR, u32::from(byte));
    }
}

/// A received byte, if one is waiting.
pub fn read_byte() -> Option<u8> {
    let base = base();
    // SAFETY: as for `put_byte`; reading DR takes the byte from the FIFO.
    unsafe {
        if mmio::read32(base + UARTFR) & FR_RXFE != 0 {
            return None;
        }
        Some(mmio::read32(base + UARTDR) as u8)
    }
}

struct Uart(usize);

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                put_byte(self.0, b'\r');
            }
            put_byte(self.0, byte);
        }
        Ok(())
    }
}

/// Holds the console for one line; re-entry on the same vCPU (an exception
/// taken while printing) goes through instead of deadlocking.
struct Lock(bool);

impl Lock {
    fn take() -> Self {
        let me = cpu::index() + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            return Lock(false);
        }
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Lock(true)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.0 {
            OWNER.store(0, Ordering::Release);
        }
    }
}

/// Prints `args` and a newline (`\r\n` on the wire) as one uninterrupted line.
pub fn print_line(args: fmt::Arguments<'_>) {
    let _lock = Lock::take();
    let mut uart = Uart(base());
    let _ = uart.write_fmt(args);
    let _ = uart.write_str("\n");
}
