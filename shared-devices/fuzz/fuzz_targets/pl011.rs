//! A hostile guest against the PL011 model: arbitrary register accesses
//! (any offset, also far past the window, any width and alignment)
//! interleaved with console input and the console queue filling and
//! draining.
//!
//! Checked besides "no panic":
//! - every read fits in its width;
//! - the interrupt line equals (MIS != 0), and MIS = RIS & IMSC;
//! - the lines that come out are exactly those of a reference line
//!   splitter fed the data register's bytes (`\n` ends a line, `\r` is
//!   dropped, a full line is cut at `LINE_MAX` bytes), so none is longer
//!   than `LINE_MAX`;
//! - received bytes come back out of DR in order, none lost while the
//!   FIFO had room, and FR's RXFE/TXFF match the FIFO and the queue.

#![no_main]

use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::console::LINE_MAX;
use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::pl011::{Pl011, Pl011Effects};

const DR: u64 = 0x000;
const FR: u64 = 0x018;
const IMSC: u64 = 0x038;
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
const FR_RXFE: u64 = 1 << 4;
const FR_TXFF: u64 = 1 << 5;
const RX_FIFO: usize = 1024;

#[derive(Arbitrary, Debug)]
enum Offset {
    /// The window and a little beyond.
    Near(u16),
    /// Anywhere (overflowing address arithmetic).
    Far(u64),
    /// The registers that matter, lane by lane.
    Reg { index: u8, lane: u8 },
}

impl Offset {
    fn get(&self) -> u64 {
        match *self {
            Offset::Near(o) => u64::from(o),
            Offset::Far(o) => o,
            Offset::Reg { index, lane } => 4 * u64::from(index % 20) + u64::from(lane % 4),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read {
        offset: Offset,
        width: u8,
    },
    Write {
        offset: Offset,
        width: u8,
        value: u64,
    },
    /// Bytes through DR as a driver sends them.
    Print(Vec<u8>),
    Receive(Vec<u8>),
    TxFull(bool),
    Reset,
}

/// The reference: what the console should see.
#[derive(Default)]
struct Shadow {
    partial: Vec<u8>,
    rx: VecDeque<u8>,
    tx_full: bool,
}

impl Shadow {
    /// The line a transmitted byte finishes, if any.
    fn transmit(&mut self, b: u8) -> Option<(Vec<u8>, bool)> {
        match b {
            b'\n' => Some((std::mem::take(&mut self.partial), false)),
            b'\r' => None,
            _ => {
                let cut = (self.partial.len() == LINE_MAX)
                    .then(|| (std::mem::take(&mut self.partial), true));
                self.partial.push(b);
                cut
            }
        }
    }
}

fn width(w: u8) -> Width {
    Width::ALL[usize::from(w % 4)]
}

fn line_of(fx: &Pl011Effects) -> Option<(Vec<u8>, bool)> {
    fx.line.as_ref().map(|l| {
        assert!(l.text.len() <= LINE_MAX);
        (l.text.to_vec(), l.cut)
    })
}

fn read(u: &mut Pl011, offset: u64, w: Width) -> u64 {
    let mut fx = Pl011Effects::default();
    let v = u.read(offset, w, &mut fx);
    assert_eq!(fx, Pl011Effects::default(), "a read finished a line");
    assert_eq!(v & !w.mask(), 0, "{w:?} read at {offset:#x} gave {v:#x}");
    v
}

fn write(u: &mut Pl011, s: &mut Shadow, offset: u64, w: Width, value: u64) {
    let mut fx = Pl011Effects::default();
    u.write(offset, w, value, &mut fx);
    let want = if offset == DR {
        s.transmit(value as u8)
    } else {
        None
    };
    assert_eq!(
        line_of(&fx),
        want,
        "{w:?} write of {value:#x} at {offset:#x}"
    );
}

fn check(u: &mut Pl011, s: &Shadow) {
    let mis = read(u, MIS, Width::Word);
    assert_eq!(u.interrupt(), mis != 0, "line vs MIS {mis:#x}");
    let ris = read(u, RIS, Width::Word);
    let imsc = read(u, IMSC, Width::Word);
    assert_eq!(mis, ris & imsc);
    let fr = read(u, FR, Width::Word);
    assert_eq!(fr & FR_RXFE != 0, s.rx.is_empty(), "RXFE");
    assert_eq!(fr & FR_TXFF != 0, s.tx_full, "TXFF");
}

fuzz_target!(|ops: Vec<Op>| {
    let mut u = Pl011::new();
    let mut s = Shadow::default();
    for op in ops.iter().take(512) {
        match op {
            Op::Read { offset, width: w } => {
                let (offset, w) = (offset.get(), width(*w));
                let v = read(&mut u, offset, w);
                if offset == DR {
                    let want = s.rx.pop_front().map_or(0, u64::from);
                    assert_eq!(v, want, "DR read");
                }
            }
            Op::Write {
                offset,
                width: w,
                value,
            } => write(&mut u, &mut s, offset.get(), width(*w), *value),
            Op::Print(bytes) => {
                for &b in bytes {
                    write(&mut u, &mut s, DR, Width::Byte, u64::from(b));
                }
            }
            Op::Receive(bytes) => {
                for &b in bytes {
                    let room = s.rx.len() < RX_FIFO;
                    assert_eq!(u.receive(b), room, "lost with room, or taken when full");
                    if room {
                        s.rx.push_back(b);
                    }
                }
            }
            Op::TxFull(full) => {
                u.set_tx_full(*full);
                s.tx_full = *full;
            }
            Op::Reset => {
                u.reset();
                s = Shadow::default();
            }
        }
        check(&mut u, &s);
    }
});
