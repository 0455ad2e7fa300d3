//! Register model of an Arm SP805 watchdog, as each partition with
//! `watchdog = true` sees it (the stock Linux `sp805_wdt` driver binds to
//! it).
//!
//! The SP805 counts down from its load value. The first time it reaches
//! zero it raises its interrupt and reloads; the second time, with the
//! interrupt still raised and reset enabled, it resets the system, which
//! here means: the hypervisor stops or restarts the partition. Any write
//! to the interrupt-clear register (the driver's "ping") reloads it.
//!
//! Time is passed in by the caller in watchdog-clock ticks, so the model
//! is a pure state machine.

mod reg {
    pub const LOAD: u64 = 0x000;
    pub const VALUE: u64 = 0x004;
    pub const CONTROL: u64 = 0x008;
    pub const INTCLR: u64 = 0x00c;
    pub const RIS: u64 = 0x010;
    pub const MIS: u64 = 0x014;
    pub const LOCK: u64 = 0xc00;
}

const CONTROL_INTEN: u32 = 1 << 0;
const CONTROL_RESEN: u32 = 1 << 1;
const UNLOCK_KEY: u32 = 0x1acc_e551;
/// PeriphID0..3 (part 0x805, Arm) then PCellID0..3, at 0xfe0..0xffc.
const ID: [u32; 8] = [0x05, 0x18, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// What the passage of time did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Nothing,
    /// First expiry: the interrupt line went high.
    Interrupt,
    /// Second expiry with reset enabled: the partition must be reset.
    Reset,
}

pub struct Sp805 {
    load: u32,
    control: u32,
    raised: bool,
    locked: bool,
    /// Tick at which the counter reaches zero, while counting.
    deadline: u64,
}

impl Default for Sp805 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sp805 {
    pub const fn new() -> Self {
        Self {
            load: u32::MAX,
            control: 0,
            raised: false,
            locked: false,
            deadline: 0,
        }
    }

    fn counting(&self) -> bool {
        self.control & CONTROL_INTEN != 0
    }

    fn reload(&mut self, now: u64) {
        self.deadline = now + self.load as u64 + 1;
    }

    pub fn read(&self, offset: u64, now: u64) -> u32 {
        match offset {
            reg::LOAD => self.load,
            reg::VALUE if self.counting() => {
                self.deadline.saturating_sub(now + 1).min(u32::MAX as u64) as u32
            }
            reg::VALUE => self.load,
            reg::CONTROL => self.control,
            reg::RIS => self.raised as u32,
            reg::MIS => (self.raised && self.counting()) as u32,
            reg::LOCK => self.locked as u32,
            0xfe0..=0xffc if offset.is_multiple_of(4) => ID[((offset - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    pub fn write(&mut self, offset: u64, value: u32, now: u64) {
        if offset == reg::LOCK {
            self.locked = value != UNLOCK_KEY;
            return;
        }
        if self.locked {
            return;
        }
        match offset {
            reg::LOAD => {
                self.load = value;
                self.reload(now);
            }
            reg::CONTROL => {
                let starting = !self.counting() && value & CONTROL_INTEN != 0;
                self.control = value & (CONTROL_INTEN | CONTROL_RESEN);
                if starting {
                    self.reload(now);
                }
            }
            reg::INTCLR => {
                self.raised = false;
                self.reload(now);
            }
            _ => {}
        }
    }

    /// Advances to `now`: what happened since the last call.
    pub fn poll(&mut self, now: u64) -> Expiry {
        if !self.counting() || now < self.deadline {
            return Expiry::Nothing;
        }
        if self.raised && self.control & CONTROL_RESEN != 0 {
            self.control = 0; // held in reset until the partition reboots
            return Expiry::Reset;
        }
        self.raised = true;
        // Counting continues from the expiry, not from when it was noticed.
        self.deadline += self.load as u64 + 1;
        Expiry::Interrupt
    }

    /// When `poll` next has something to report.
    pub fn next_deadline(&self) -> Option<u64> {
        self.counting().then_some(self.deadline)
    }

    /// Level of the interrupt line.
    pub fn interrupt(&self) -> bool {
        self.raised && self.counting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(load: u32) -> Sp805 {
        let mut w = Sp805::new();
        w.write(reg::LOCK, UNLOCK_KEY, 0);
        w.write(reg::LOAD, load, 0);
        w.write(reg::CONTROL, CONTROL_INTEN | CONTROL_RESEN, 0);
        w.write(reg::LOCK, 0, 0);
        w
    }

    #[test]
    fn interrupt_then_reset_when_not_fed() {
        let mut w = running(99);
        assert_eq!(w.next_deadline(), Some(100));
        assert_eq!(w.poll(99), Expiry::Nothing);
        assert_eq!(w.read(reg::VALUE, 50), 49);
        assert_eq!(w.poll(100), Expiry::Interrupt);
        assert!(w.interrupt());
        assert_eq!(w.next_deadline(), Some(200));
        assert_eq!(w.poll(200), Expiry::Reset);
        assert_eq!(w.next_deadline(), None, "stops counting once it has reset");
    }

    #[test]
    fn feeding_keeps_it_quiet() {
        let mut w = running(99);
        for t in (90..10_000).step_by(90) {
            w.write(reg::LOCK, UNLOCK_KEY, t);
            w.write(reg::INTCLR, 1, t);
            w.write(reg::LOCK, 0, t);
            assert_eq!(w.poll(t + 1), Expiry::Nothing);
        }
        assert!(!w.interrupt());
    }

    #[test]
    fn locked_registers_ignore_writes() {
        let mut w = running(99);
        w.write(reg::INTCLR, 1, 150);
        assert_eq!(
            w.poll(150),
            Expiry::Interrupt,
            "the locked ping did nothing"
        );
        assert_eq!(w.read(reg::LOCK, 0), 1);
    }

    #[test]
    fn without_reset_enable_it_only_interrupts() {
        let mut w = Sp805::new();
        w.write(reg::LOAD, 9, 0);
        w.write(reg::CONTROL, CONTROL_INTEN, 0);
        assert_eq!(w.poll(10), Expiry::Interrupt);
        assert_eq!(w.poll(20), Expiry::Interrupt);
        assert_eq!(w.read(reg::MIS, 20), 1);
    }

    #[test]
    fn identifies_as_an_sp805() {
        let w = Sp805::new();
        let part = w.read(0xfe0, 0) | (w.read(0xfe4, 0) & 0xf) << 8;
        assert_eq!(part, 0x805);
        assert_eq!(w.read(0xff0, 0), 0x0d);
    }
}
