//! Polled output on the physical PL011: the hypervisor's own log and the
//! partitions' tagged console lines. Callers serialize through the console
//! lock in `console.rs`.

use crate::arch::mmio::Registers;
use core::sync::atomic::{AtomicU64, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
    ],
    /// Interrupt bits (IMSC, RIS, MIS, ICR).
    INT [
        /// Receive timeout.
        RT OFFSET(6) NUMBITS(1) [],
        /// Receive.
        RX OFFSET(4) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The PL011 registers the hypervisor uses.
    pub Pl011Regs {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x38 => imsc: ReadWrite<u32, INT::Register>),
        (0x3c => @END),
    }
}

/// A PrimeCell's register frame.
const FRAME: u64 = 0x1000;

static BASE: AtomicU64 = AtomicU64::new(0);

/// Selects the UART (the board's early UART first, the DT's later).
pub fn set_base(base: u64) {
    BASE.store(base, Ordering::Release);
}

/// The selected UART's registers; `None` before one is selected (or if it
/// is not device memory).
fn uart() -> Option<Registers<Pl011Regs>> {
    match BASE.load(Ordering::Acquire) {
        0 => None,
        base => Registers::new(base, FRAME),
    }
}

pub fn write_bytes(bytes: &[u8]) {
    let Some(uart) = uart() else {
        return;
    };
    for &b in bytes {
        if b == b'\n' {
            put(&uart, b'\r');
        }
        put(&uart, b);
    }
}

fn put(uart: &Pl011Regs, byte: u8) {
    while uart.fr.is_set(FR::TXFF) {}
    uart.dr.set(byte as u32);
}

/// Enables the receive (and receive-timeout) interrupts.
pub fn enable_receive_interrupt() {
    if let Some(uart) = uart() {
        uart.imsc.write(INT::RX::SET + INT::RT::SET);
    }
}

/// A received byte, if one is waiting. Reading DR pops the receive FIFO,
/// which only the console input path does.
pub fn read_byte() -> Option<u8> {
    let uart = uart()?;
    if uart.fr.is_set(FR::RXFE) {
        return None;
    }
    Some(uart.dr.get() as u8)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::fake;

    #[test]
    fn writes_reach_the_registers() {
        fake::reset_machine();
        let base = 0x0900_0000;
        let regs = Registers::<Pl011Regs>::new(base, FRAME).unwrap();
        set_base(base);
        enable_receive_interrupt();
        assert_eq!(regs.imsc.get(), (1 << 4) | (1 << 6));
        write_bytes(b"hv\n");
        // The last byte written; a newline goes out as CR LF.
        assert_eq!(regs.dr.get(), b'\n' as u32);
        // Receive FIFO not empty (the zeroed flag register): DR's byte.
        assert_eq!(read_byte(), Some(b'\n'));
        set_base(0);
    }
}
