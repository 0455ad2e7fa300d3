//! The NXP i.MX UART (i.MX 6/7/8, `fsl,imx6q-uart` and its kin): polled
//! output, and input on the "receive data ready" interrupt.
//!
//! The boot loader sets the line up (clock, baud rate, pins) as it does for
//! its own console; `init` only makes sure the transmitter and receiver
//! are on, which a bare `-kernel` boot under QEMU leaves off.

use super::ConsoleUart;
use crate::arch::mmio::Registers;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    /// Receiver register: one character and its status.
    URXD [
        DATA OFFSET(0) NUMBITS(8) [],
        /// The character is valid.
        CHARRDY OFFSET(15) NUMBITS(1) [],
    ],
    /// Control register 1.
    UCR1 [
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
    /// Control register 2.
    UCR2 [
        /// Software reset, active low: keep it 1.
        SRST OFFSET(0) NUMBITS(1) [],
        RXEN OFFSET(1) NUMBITS(1) [],
        TXEN OFFSET(2) NUMBITS(1) [],
        /// 8-bit words.
        WS OFFSET(5) NUMBITS(1) [],
        /// Ignore the RTS pin.
        IRTS OFFSET(14) NUMBITS(1) [],
    ],
    /// Control register 4.
    UCR4 [
        /// Interrupt while receive data is ready.
        DREN OFFSET(0) NUMBITS(1) [],
    ],
    /// Status register 2.
    USR2 [
        /// At least one character in the receive FIFO.
        RDR OFFSET(0) NUMBITS(1) [],
    ],
    /// Test register (FIFO levels).
    UTS [
        TXFULL OFFSET(4) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The i.MX UART registers the hypervisor uses.
    pub ImxUartRegs {
        (0x00 => urxd: ReadOnly<u32, URXD::Register>),
        (0x04 => _reserved0),
        (0x40 => utxd: WriteOnly<u32>),
        (0x44 => _reserved1),
        (0x80 => ucr1: ReadWrite<u32, UCR1::Register>),
        (0x84 => ucr2: ReadWrite<u32, UCR2::Register>),
        (0x88 => _reserved2),
        (0x8c => ucr4: ReadWrite<u32, UCR4::Register>),
        (0x90 => _reserved3),
        (0x98 => usr2: ReadOnly<u32, USR2::Register>),
        (0x9c => _reserved4),
        (0xb4 => uts: ReadOnly<u32, UTS::Register>),
        (0xb8 => @END),
    }
}

/// The i.MX UART's register frame.
const FRAME: u64 = 0x1000;

/// An i.MX UART.
#[derive(Clone, Copy)]
pub struct ImxUart(Registers<ImxUartRegs>);

impl ImxUart {
    /// The UART at `base`.
    pub fn open(base: u64) -> Option<Self> {
        Registers::new(base, FRAME).map(Self)
    }
}

impl ConsoleUart for ImxUart {
    fn init(&self) {
        let r = &self.0;
        let on = UCR2::SRST::SET + UCR2::RXEN::SET + UCR2::TXEN::SET;
        if !r.ucr2.matches_all(on) {
            r.ucr2.modify(on + UCR2::WS::SET + UCR2::IRTS::SET);
        }
        r.ucr1.modify(UCR1::UARTEN::SET);
    }

    fn put(&self, byte: u8) {
        while self.0.uts.is_set(UTS::TXFULL) {}
        self.0.utxd.set(byte as u32);
    }

    fn get(&self) -> Option<u8> {
        if !self.0.usr2.is_set(USR2::RDR) {
            return None;
        }
        let rx = self.0.urxd.extract();
        rx.is_set(URXD::CHARRDY).then(|| rx.read(URXD::DATA) as u8)
    }

    fn enable_receive_interrupt(&self) {
        self.0.ucr4.modify(UCR4::DREN::SET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::fake;

    const BASE: u64 = 0x3089_0000;

    /// The frame as plain words, to set and look at what the driver sees.
    fn words() -> Registers<[ReadWrite<u32>; 0x2e]> {
        Registers::new(BASE, FRAME).unwrap()
    }

    #[test]
    fn init_turns_the_line_on_and_keeps_the_rest() {
        fake::reset_machine();
        // What a boot loader left: its own bits (parity, here) stay.
        words()[0x84 / 4].set(1 << 8);
        let uart = ImxUart::open(BASE).unwrap();
        uart.init();
        assert_eq!(words()[0x80 / 4].get() & 1, 1);
        assert_eq!(
            words()[0x84 / 4].get(),
            (1 << 14) | (1 << 8) | (1 << 5) | 0b111
        );
        uart.enable_receive_interrupt();
        assert_eq!(words()[0x8c / 4].get() & 1, 1);
    }

    #[test]
    fn bytes_go_out_and_come_in() {
        fake::reset_machine();
        let uart = ImxUart::open(BASE).unwrap();
        uart.put(b'x');
        assert_eq!(words()[0x40 / 4].get(), b'x' as u32);
        // Nothing received: RDR clear.
        assert_eq!(uart.get(), None);
        words()[0x98 / 4].set(1);
        words()[0].set((1 << 15) | b'k' as u32);
        assert_eq!(uart.get(), Some(b'k'));
        // A status word without a valid character is no character.
        words()[0].set(b'k' as u32);
        assert_eq!(uart.get(), None);
    }
}
