//! `flood`: a hostile console writer. It writes lines to its UART as fast
//! as it can, forever, ignoring the "transmit FIFO full" flag that a
//! well-behaved driver waits on: the partition that must not be able to
//! drown out anyone else's console output.
//!
//! ```text
//! flood: n=<n> <filler>
//! ```

#![no_std]
#![no_main]

use core::fmt::Write;
use testkit::rt::{mmio, platform};

testkit::entry!("flood", main);

/// Writes straight to the data register, never looking at the flags.
struct Reckless(usize);

impl Write for Reckless {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            // SAFETY: the PL011 named by the device tree; DR is write-only data.
            unsafe { mmio::write32(self.0, u32::from(byte)) };
        }
        Ok(())
    }
}

fn main() -> ! {
    let mut uart = Reckless(platform().uart.unwrap_or(0x0900_0000));
    let mut n: u64 = 0;
    loop {
        n += 1;
        let _ = writeln!(
            uart,
            "flood: n={} the quick brown fox jumps over the lazy dog, again and again and again",
            n
        );
    }
}
