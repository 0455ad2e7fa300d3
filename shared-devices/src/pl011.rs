//! Register model of an Arm PL011 UART as seen by a guest, enough for the
//! Linux `amba-pl011` driver and simple polled bare-metal drivers: the
//! transmit FIFO is the console mediator's queue for this partition (full
//! when it cannot take another line: `set_tx_full`),
//! received bytes (console input while the partition has focus) wait in a
//! 1 KiB receive buffer, and the PrimeCell identification registers identify a
//! PL011 r1p5.

use crate::console::{Line, LineBuffer};

mod reg {
    pub const DR: u64 = 0x000;
    pub const RSR: u64 = 0x004;
    pub const FR: u64 = 0x018;
    pub const IBRD: u64 = 0x024;
    pub const FBRD: u64 = 0x028;
    pub const LCR_H: u64 = 0x02c;
    pub const CR: u64 = 0x030;
    pub const IFLS: u64 = 0x034;
    pub const IMSC: u64 = 0x038;
    pub const RIS: u64 = 0x03c;
    pub const MIS: u64 = 0x040;
    pub const ICR: u64 = 0x044;
    pub const DMACR: u64 = 0x048;
}

const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
const FR_RXFF: u32 = 1 << 6;
const FR_TXFE: u32 = 1 << 7;
/// Receive and receive-timeout interrupts: raised while input is waiting
/// (the FIFO is emptied by the driver at once, so the trigger level and the
/// timeout collapse into "not empty").
const INT_RX: u32 = 1 << 4;
const INT_RT: u32 = 1 << 6;
/// Transmit interrupt: raised while the transmit FIFO is not full.
const INT_TX: u32 = 1 << 5;
/// Received bytes held for the guest. Bigger than the PL011's own 32-entry
/// FIFO (drivers cannot tell: they read until RXFE), so a line pasted into
/// the console is not lost while the guest takes its interrupt.
const RX_FIFO: usize = 1024;
/// PeriphID0..3 then PCellID0..3, at 0xfe0..0xffc.
const ID: [u32; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

pub struct Pl011 {
    line: LineBuffer,
    rx: heapless::Deque<u8, RX_FIFO>,
    tx_full: bool,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    dmacr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    pub const fn new() -> Self {
        Self {
            line: LineBuffer::new(),
            rx: heapless::Deque::new(),
            tx_full: false,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: 0x300,
            ifls: 0x12,
            imsc: 0,
            dmacr: 0,
        }
    }

    /// Register read at `offset` in the 4 KiB frame. Reading DR takes a
    /// received byte.
    pub fn read(&mut self, offset: u64) -> u32 {
        match offset {
            reg::DR => self.rx.pop_front().map_or(0, u32::from),
            _ => self.peek(offset),
        }
    }

    /// Register value without side effects.
    fn peek(&self, offset: u64) -> u32 {
        match offset {
            reg::DR | reg::RSR => 0,
            reg::FR => {
                let mut fr = if self.tx_full { FR_TXFF } else { FR_TXFE };
                if self.rx.is_empty() {
                    fr |= FR_RXFE;
                }
                if self.rx.is_full() {
                    fr |= FR_RXFF;
                }
                fr
            }
            reg::IBRD => self.ibrd,
            reg::FBRD => self.fbrd,
            reg::LCR_H => self.lcr_h,
            reg::CR => self.cr,
            reg::IFLS => self.ifls,
            reg::IMSC => self.imsc,
            reg::RIS => self.raw_interrupts(),
            reg::MIS => self.raw_interrupts() & self.imsc,
            reg::DMACR => self.dmacr,
            0xfe0..=0xffc if offset.is_multiple_of(4) => ID[((offset - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    /// Register write; transmitted bytes leave as whole lines through `emit`.
    pub fn write(&mut self, offset: u64, value: u32, emit: &mut dyn FnMut(Line)) {
        match offset {
            reg::DR => self.line.push(value as u8, emit),
            reg::IBRD => self.ibrd = value & 0xffff,
            reg::FBRD => self.fbrd = value & 0x3f,
            reg::LCR_H => self.lcr_h = value & 0xff,
            reg::CR => self.cr = value & 0xffff,
            reg::IFLS => self.ifls = value & 0x3f,
            reg::IMSC => self.imsc = value & 0x7ff,
            reg::DMACR => self.dmacr = value & 0x7,
            // RSR and ICR clear error and interrupt conditions that never latch here.
            reg::RSR | reg::ICR => {}
            _ => {}
        }
    }

    fn raw_interrupts(&self) -> u32 {
        let tx = if self.tx_full { 0 } else { INT_TX };
        let rx = if self.rx.is_empty() {
            0
        } else {
            INT_RX | INT_RT
        };
        tx | rx
    }

    /// The console mediator's queue for this partition is full (or has room
    /// again): shown as TXFF, and as the transmit interrupt's level.
    pub fn set_tx_full(&mut self, full: bool) {
        self.tx_full = full;
    }

    /// Level of the UART's interrupt line.
    pub fn interrupt(&self) -> bool {
        self.peek(reg::MIS) != 0
    }

    /// A byte of console input; false (and lost) if the FIFO is full.
    pub fn receive(&mut self, byte: u8) -> bool {
        self.rx.push_back(byte).is_ok()
    }

    /// Back to reset state (partition restart); a partial line is dropped.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_lines_and_reports_an_empty_fifo() {
        let mut u = Pl011::new();
        let mut lines = Vec::new();
        for &b in b"hi\n" {
            u.write(reg::DR, b as u32, &mut |l| lines.push(l.text.to_vec()));
        }
        assert_eq!(lines, [b"hi".to_vec()]);
        assert_eq!(u.read(reg::FR) & FR_TXFF, 0);
        assert_ne!(u.read(reg::FR) & FR_TXFE, 0);
        u.set_tx_full(true);
        assert_ne!(u.read(reg::FR) & FR_TXFF, 0, "the mediator's queue is full");
        assert_eq!(u.read(reg::RIS) & INT_TX, 0);
    }

    #[test]
    fn identifies_as_a_primecell_pl011() {
        let mut u = Pl011::new();
        let id: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, ID);
        assert_eq!(
            u.read(0xfe0) | (u.read(0xfe4) & 0xf) << 8,
            0x011,
            "part number 0x011"
        );
    }

    #[test]
    fn tx_interrupt_follows_its_mask() {
        let mut u = Pl011::new();
        assert!(!u.interrupt());
        u.write(reg::IMSC, INT_TX, &mut |_| {});
        assert!(u.interrupt());
    }

    #[test]
    fn receives_input_with_an_interrupt() {
        let mut u = Pl011::new();
        u.write(reg::IMSC, INT_RX | INT_RT, &mut |_| {});
        assert!(!u.interrupt());
        assert_ne!(u.read(reg::FR) & FR_RXFE, 0);
        assert!(u.receive(b'x'));
        assert!(u.receive(b'y'));
        assert!(u.interrupt());
        assert_eq!(u.read(reg::FR) & FR_RXFE, 0);
        assert_eq!(u.read(reg::DR), b'x' as u32);
        assert_eq!(u.read(reg::DR), b'y' as u32);
        assert!(!u.interrupt(), "drained: line drops");
        for i in 0..RX_FIFO {
            assert!(u.receive(i as u8));
        }
        assert!(!u.receive(0), "full FIFO drops");
        assert_ne!(u.read(reg::FR) & FR_RXFF, 0);
    }
}
