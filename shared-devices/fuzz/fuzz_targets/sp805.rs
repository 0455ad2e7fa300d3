//! A hostile guest against the SP805 watchdog model: arbitrary register
//! accesses (any offset, also far past the window, any width and
//! alignment, the unlock key) at arbitrary times, serviced the way the
//! hypervisor does it: `set_now` before each access, then `poll` until
//! nothing is due (its timer would fire again at once otherwise).
//!
//! Checked besides "no panic":
//! - every read fits in its width;
//! - the interrupt line equals (MIS != 0), MIS = RIS & INTEN, and an
//!   access's `Sp805Effects::irq` reports exactly the line changes;
//! - once serviced, `next_deadline` is never earlier than now + 1: the
//!   hypervisor's timer is never due at once, whatever WdogLoad is (0
//!   included);
//! - after an expiry the next one is at least max(WdogLoad, 1) + 1 ticks
//!   after it, and servicing takes at most two expiries at a time;
//! - a reset expiry needs reset enabled and the interrupt still raised,
//!   and stops the counter; VALUE never exceeds max(WdogLoad, 1).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::sp805::{Expiry, Sp805, Sp805Effects};

const LOAD: u64 = 0x000;
const VALUE: u64 = 0x004;
const CONTROL: u64 = 0x008;
const RIS: u64 = 0x010;
const MIS: u64 = 0x014;
const LOCK: u64 = 0xc00;
const REGS: [u64; 8] = [LOAD, VALUE, CONTROL, 0x00c, RIS, MIS, LOCK, 0xfe0];
const UNLOCK_KEY: u64 = 0x1acc_e551;

#[derive(Arbitrary, Debug)]
enum Offset {
    Near(u16),
    Far(u64),
    /// A register, perhaps off by a lane.
    Reg {
        index: u8,
        lane: u8,
    },
}

impl Offset {
    fn get(&self) -> u64 {
        match *self {
            Offset::Near(o) => u64::from(o),
            Offset::Far(o) => o,
            // Lane 0 half the time, then 1 to 3.
            Offset::Reg { index, lane } => {
                REGS[usize::from(index) % REGS.len()] + u64::from(lane % 8).saturating_sub(4)
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Value {
    Key,
    Small(u8),
    Any(u64),
}

impl Value {
    fn get(&self) -> u64 {
        match *self {
            Value::Key => UNLOCK_KEY,
            Value::Small(v) => u64::from(v % 4),
            Value::Any(v) => v,
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
        value: Value,
    },
    /// A 32-bit write to a register, as a driver makes it.
    Set {
        index: u8,
        value: Value,
    },
    /// Time passes; the hypervisor's timer fires (if it was due).
    Wait(u16),
    WaitLong(u32),
    /// A caller with a clock that lags (another core): ignored.
    Lagging(u16),
    Reset,
}

struct Rig {
    wd: Sp805,
    now: u64,
    level: bool,
}

impl Rig {
    fn read(&mut self, offset: u64, w: Width) -> u64 {
        let mut fx = Sp805Effects::default();
        self.wd.set_now(self.now);
        let v = self.wd.read(offset, w, &mut fx);
        assert_eq!(fx, Sp805Effects::default(), "a read had effects");
        assert_eq!(v & !w.mask(), 0, "{w:?} read at {offset:#x} gave {v:#x}");
        v
    }

    fn write(&mut self, offset: u64, w: Width, value: u64) {
        let mut fx = Sp805Effects::default();
        self.wd.set_now(self.now);
        self.wd.write(offset, w, value, &mut fx);
        let line = self.wd.interrupt();
        match fx.irq {
            Some(l) => {
                assert_ne!(l, self.level, "a change to the same level");
                assert_eq!(l, line);
            }
            None => assert_eq!(line, self.level, "an unreported change"),
        }
        self.level = line;
    }

    /// What the hypervisor does after an access and when its timer fires.
    fn service(&mut self) {
        let mut expiries = 0;
        loop {
            let due = self.wd.next_deadline();
            let ris = self.read(RIS, Width::Word);
            let resen = self.read(CONTROL, Width::Word) & 2 != 0;
            match self.wd.poll(self.now) {
                Expiry::Nothing => break,
                Expiry::Interrupt => {
                    let due = due.expect("expired while not counting");
                    assert!(due <= self.now, "expired early");
                    let load = self.read(LOAD, Width::Word).max(1);
                    let next = self.wd.next_deadline().expect("stopped counting");
                    assert!(
                        next >= due + load + 1,
                        "expired at {due}, due again at {next} with WdogLoad {load}"
                    );
                    assert!(self.wd.interrupt());
                    self.level = true;
                }
                Expiry::Reset => {
                    assert!(resen && ris == 1, "reset without cause");
                    assert_eq!(self.wd.next_deadline(), None);
                    assert!(!self.wd.interrupt());
                    self.level = false;
                }
            }
            expiries += 1;
            assert!(expiries <= 2, "more than two expiries due at once");
        }
        if let Some(next) = self.wd.next_deadline() {
            assert!(next > self.now, "due again at once: {next} at {}", self.now);
        }
    }

    fn check(&mut self) {
        let mis = self.read(MIS, Width::Word);
        assert_eq!(self.wd.interrupt(), mis != 0, "line vs MIS");
        assert_eq!(self.level, mis != 0);
        let ris = self.read(RIS, Width::Word);
        let control = self.read(CONTROL, Width::Word);
        assert_eq!(mis, ris & control & 1);
        if control & 1 != 0 {
            let load = self.read(LOAD, Width::Word).max(1);
            let value = self.read(VALUE, Width::Word);
            assert!(value <= load, "VALUE {value} above WdogLoad {load}");
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut rig = Rig {
        wd: Sp805::new(),
        now: 0,
        level: false,
    };
    for op in ops.iter().take(512) {
        match op {
            Op::Read { offset, width } => {
                let w = Width::ALL[usize::from(width % 4)];
                rig.read(offset.get(), w);
            }
            Op::Write {
                offset,
                width,
                value,
            } => {
                let w = Width::ALL[usize::from(width % 4)];
                rig.write(offset.get(), w, value.get());
            }
            Op::Set { index, value } => {
                let offset = REGS[usize::from(*index) % REGS.len()];
                rig.write(offset, Width::Word, value.get());
            }
            Op::Wait(t) => rig.now += u64::from(*t),
            Op::WaitLong(t) => rig.now += u64::from(*t),
            Op::Lagging(t) => rig.wd.set_now(rig.now.saturating_sub(u64::from(*t))),
            Op::Reset => {
                rig.wd.reset();
                rig.level = false;
            }
        }
        rig.service();
        rig.check();
    }
});
