//! The Arm PrimeCell PL011 UART: polled output, and input on the receive
//! and receive-timeout interrupts.

use super::ConsoleUart;
use crate::arch::mmio::Registers;
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

/// A PL011.
#[derive(Clone, Copy)]
pub struct Pl011(Registers<Pl011Regs>);

impl Pl011 {
    /// The UART at `base`.
    pub fn open(base: u64) -> Option<Self> {
        Registers::new(base, FRAME).map(Self)
    }
}

impl ConsoleUart for Pl011 {
    /// The boot loader (or QEMU) leaves a PL011 enabled.
    fn init(&self) {}

    fn put(&self, byte: u8) {
        while self.0.fr.is_set(FR::TXFF) {}
        self.0.dr.set(byte as u32);
    }

    fn get(&self) -> Option<u8> {
        if self.0.fr.is_set(FR::RXFE) {
            return None;
        }
        Some(self.0.dr.get() as u8)
    }

    fn enable_receive_interrupt(&self) {
        self.0.imsc.write(INT::RX::SET + INT::RT::SET);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{deselect, enable_receive_interrupt, read_byte, select, write_bytes};
    use super::*;
    use crate::arch::fake;
    use config::model::UartKind;

    #[test]
    fn writes_reach_the_registers() {
        fake::reset_machine();
        let base = 0x0900_0000;
        let regs = Registers::<Pl011Regs>::new(base, FRAME).unwrap();
        select(UartKind::Pl011, base);
        enable_receive_interrupt();
        assert_eq!(regs.imsc.get(), (1 << 4) | (1 << 6));
        write_bytes(b"hv\n");
        // The last byte written; a newline goes out as CR LF.
        assert_eq!(regs.dr.get(), b'\n' as u32);
        // Receive FIFO not empty (the zeroed flag register): DR's byte.
        assert_eq!(read_byte(), Some(b'\n'));
        deselect();
    }
}
