//! Register model of an Arm PL011 UART as seen by a guest, enough for the
//! Linux `amba-pl011` driver and simple polled bare-metal drivers: the
//! transmit FIFO is the console mediator's queue for this partition (full
//! when it cannot take another line: `set_tx_full`),
//! received bytes (console input while the partition has focus) wait in a
//! 1 KiB receive buffer, and the PrimeCell identification registers identify a
//! PL011 r1p5.
//!
//! Guest accesses come in through [`RegisterFile`]; what a write to the
//! data register finishes (a whole line of output) comes back in
//! [`Pl011Effects`]. Every register is 32 bits wide at a word-aligned
//! offset. The PL011 TRM allows byte and halfword accesses to DR and
//! 32-bit accesses to the rest, and Linux's driver uses 16-bit accesses
//! throughout (`readw`/`writew`), so any width is taken:
//!
//! - **DR** (offset 0), any width including 64-bit: a write transmits the
//!   low byte of the value, a read takes the oldest received byte (the
//!   error flags above it are never set; a 64-bit read's upper half is RSR,
//!   which reads 0). Narrow accesses at offsets 1 to 3, which miss the data
//!   byte, read 0 without taking a byte and are ignored on write.
//! - **Any other register**, byte or halfword within its word: a read
//!   returns those bytes of the register (so the PrimeCell ID registers
//!   read the same with `ldrb`), a write replaces just those bytes of the
//!   register and leaves the others as they were (read-modify-write; the
//!   register's reserved bits are then cleared as for a 32-bit write).
//!   Read-only and write-only registers behave as for a 32-bit access.
//! - An access that spans two registers (unaligned, or 64-bit anywhere but
//!   DR) reads 0 and is ignored, as are offsets with no register (also past
//!   the 4 KiB window).

use crate::console::{LineBuffer, OwnedLine};
use crate::mmio::{RegisterFile, Width, word_lane};

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

/// What a guest access to the UART leaves for the hypervisor to do: at
/// most one finished line of output (a data register write emits at most
/// one, see [`LineBuffer::push`]), to queue with
/// [`OutputQueue::push`](crate::console::OutputQueue::push)`(line.as_line())`. Start each access with a fresh
/// (default) value: a line still held is replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pl011Effects {
    pub line: Option<OwnedLine>,
}

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

    /// A 32-bit write to the register at word-aligned `offset` other than DR.
    fn write_word(&mut self, offset: u64, value: u32) {
        match offset {
            reg::IBRD => self.ibrd = value & 0xffff,
            reg::FBRD => self.fbrd = value & 0x3f,
            reg::LCR_H => self.lcr_h = value & 0xff,
            reg::CR => self.cr = value & 0xffff,
            reg::IFLS => self.ifls = value & 0x3f,
            reg::IMSC => self.imsc = value & 0x7ff,
            reg::DMACR => self.dmacr = value & 0x7,
            // RSR and ICR clear error and interrupt conditions that never
            // latch here; everything else is read-only or not there.
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

impl RegisterFile for Pl011 {
    type Effects = Pl011Effects;

    /// Reading DR takes a received byte. See the module docs for widths.
    fn read(&mut self, offset: u64, width: Width, _effects: &mut Pl011Effects) -> u64 {
        if offset == reg::DR {
            return self.rx.pop_front().map_or(0, u64::from);
        }
        match word_lane(offset, width) {
            Some((reg::DR, _)) | None => 0,
            Some((word, shift)) => (u64::from(self.peek(word)) >> shift) & width.mask(),
        }
    }

    /// Writing DR transmits a byte; a finished line comes back in
    /// `effects`. See the module docs for widths.
    fn write(&mut self, offset: u64, width: Width, value: u64, effects: &mut Pl011Effects) {
        if offset == reg::DR {
            self.line.push(value as u8, &mut |line| {
                effects.line = Some(OwnedLine::new(line));
            });
            return;
        }
        let Some((word, shift)) = word_lane(offset, width).filter(|&(w, _)| w != reg::DR) else {
            return;
        };
        // `word_lane` only gives lanes within a word: the mask fits in 32 bits.
        let lane = (width.mask() << shift) as u32;
        let new = ((value << shift) as u32 & lane) | (self.peek(word) & !lane);
        self.write_word(word, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::LINE_MAX;

    fn r(u: &mut Pl011, offset: u64) -> u32 {
        u.read(offset, Width::Word, &mut Pl011Effects::default()) as u32
    }

    fn w(u: &mut Pl011, offset: u64, value: u32) -> Pl011Effects {
        let mut fx = Pl011Effects::default();
        u.write(offset, Width::Word, u64::from(value), &mut fx);
        fx
    }

    fn text(fx: &Pl011Effects) -> Option<(Vec<u8>, bool)> {
        fx.line.as_ref().map(|l| (l.text.to_vec(), l.cut))
    }

    #[test]
    fn transmits_lines_and_reports_an_empty_fifo() {
        let mut u = Pl011::new();
        let mut lines = Vec::new();
        for &b in b"hi\n" {
            lines.extend(text(&w(&mut u, reg::DR, b as u32)));
        }
        assert_eq!(lines, [(b"hi".to_vec(), false)]);
        assert_eq!(r(&mut u, reg::FR) & FR_TXFF, 0);
        assert_ne!(r(&mut u, reg::FR) & FR_TXFE, 0);
        u.set_tx_full(true);
        assert_ne!(
            r(&mut u, reg::FR) & FR_TXFF,
            0,
            "the mediator's queue is full"
        );
        assert_eq!(r(&mut u, reg::RIS) & INT_TX, 0);
    }

    #[test]
    fn long_lines_come_out_cut() {
        let mut u = Pl011::new();
        let mut lines = Vec::new();
        for _ in 0..LINE_MAX + 3 {
            lines.extend(text(&w(&mut u, reg::DR, u32::from(b'x'))));
        }
        lines.extend(text(&w(&mut u, reg::DR, u32::from(b'\n'))));
        assert_eq!(
            lines,
            [(vec![b'x'; LINE_MAX], true), (b"xxx".to_vec(), false)]
        );
    }

    #[test]
    fn data_register_takes_any_width() {
        let mut u = Pl011::new();
        let mut fx = Pl011Effects::default();
        for (width, v) in [
            (Width::Byte, 0x6f),
            (Width::Half, 0x1_6b),
            (Width::Word, 0xdead_be21),
            (Width::Double, 0xffff_ffff_ffff_ff0a),
        ] {
            u.write(reg::DR, width, v, &mut fx);
        }
        assert_eq!(text(&fx), Some((b"ok!".to_vec(), false)), "low bytes only");
        u.write(1, Width::Byte, u64::from(b'\n'), &mut fx);
        u.write(2, Width::Half, u64::from(b'\n'), &mut fx);
        assert!(u.line.is_empty(), "DR's upper lanes carry no data");
        for b in [1, 2, 3, 4] {
            u.receive(b);
        }
        let mut fx = Pl011Effects::default();
        assert_eq!(u.read(reg::DR, Width::Byte, &mut fx), 1);
        assert_eq!(u.read(1, Width::Byte, &mut fx), 0, "error flags, no pop");
        assert_eq!(u.read(reg::DR, Width::Half, &mut fx), 2);
        assert_eq!(u.read(reg::DR, Width::Double, &mut fx), 3);
        assert_eq!(r(&mut u, reg::DR), 4);
    }

    #[test]
    fn narrow_accesses_reach_the_lane() {
        let mut u = Pl011::new();
        let mut fx = Pl011Effects::default();
        // Linux's 16-bit accesses.
        u.write(reg::CR, Width::Half, 0x0301, &mut fx);
        assert_eq!(u.read(reg::CR, Width::Half, &mut fx), 0x0301);
        u.write(reg::CR + 1, Width::Byte, 0x03, &mut fx);
        u.write(reg::CR, Width::Byte, 0xff_00, &mut fx);
        assert_eq!(r(&mut u, reg::CR), 0x0300, "merged, low byte of the value");
        u.write(reg::IBRD + 2, Width::Half, 0xffff, &mut fx);
        assert_eq!(r(&mut u, reg::IBRD), 0, "reserved bits stay 0");
        u.write(reg::IMSC, Width::Byte, 0xff, &mut fx);
        u.write(reg::IMSC + 1, Width::Byte, 0x05, &mut fx);
        assert_eq!(r(&mut u, reg::IMSC), 0x5ff);
        assert_eq!(u.read(reg::IMSC + 1, Width::Byte, &mut fx), 0x05);
        // Straddling and 64-bit accesses are ignored.
        u.write(reg::CR + 2, Width::Word, 0, &mut fx);
        u.write(reg::CR, Width::Double, 0, &mut fx);
        assert_eq!(r(&mut u, reg::CR), 0x0300);
        assert_eq!(u.read(reg::CR + 2, Width::Word, &mut fx), 0);
        assert_eq!(u.read(reg::CR, Width::Double, &mut fx), 0);
        assert_eq!(fx, Pl011Effects::default());
    }

    #[test]
    fn identifies_as_a_primecell_pl011() {
        let mut u = Pl011::new();
        let id: Vec<u32> = (0..8).map(|i| r(&mut u, 0xfe0 + 4 * i)).collect();
        assert_eq!(id, ID);
        assert_eq!(
            r(&mut u, 0xfe0) | (r(&mut u, 0xfe4) & 0xf) << 8,
            0x011,
            "part number 0x011"
        );
        let mut fx = Pl011Effects::default();
        for (i, &v) in ID.iter().enumerate() {
            let at = 0xfe0 + 4 * i as u64;
            assert_eq!(u.read(at, Width::Byte, &mut fx), u64::from(v), "ldrb");
            assert_eq!(u.read(at, Width::Half, &mut fx), u64::from(v), "ldrh");
            assert_eq!(u.read(at + 1, Width::Byte, &mut fx), 0);
        }
        assert_eq!(r(&mut u, 0x1fe0), 0, "past the window");
        assert_eq!(u.read(u64::MAX, Width::Byte, &mut fx), 0);
    }

    #[test]
    fn tx_interrupt_follows_its_mask() {
        let mut u = Pl011::new();
        assert!(!u.interrupt());
        let _ = w(&mut u, reg::IMSC, INT_TX);
        assert!(u.interrupt());
    }

    #[test]
    fn receives_input_with_an_interrupt() {
        let mut u = Pl011::new();
        let _ = w(&mut u, reg::IMSC, INT_RX | INT_RT);
        assert!(!u.interrupt());
        assert_ne!(r(&mut u, reg::FR) & FR_RXFE, 0);
        assert!(u.receive(b'x'));
        assert!(u.receive(b'y'));
        assert!(u.interrupt());
        assert_eq!(r(&mut u, reg::FR) & FR_RXFE, 0);
        assert_eq!(r(&mut u, reg::DR), b'x' as u32);
        assert_eq!(r(&mut u, reg::DR), b'y' as u32);
        assert!(!u.interrupt(), "drained: line drops");
        for i in 0..RX_FIFO {
            assert!(u.receive(i as u8));
        }
        assert!(!u.receive(0), "full FIFO drops");
        assert_ne!(r(&mut u, reg::FR) & FR_RXFF, 0);
    }
}
