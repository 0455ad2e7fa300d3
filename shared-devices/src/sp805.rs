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
//! is a pure state machine: [`Sp805::set_now`] before each register
//! access, [`Sp805::poll`] to advance to now and learn what expired, and
//! [`Sp805::next_deadline`] for when to poll next (re-read after every
//! access and every poll: accesses move it). Time never goes back; an
//! earlier `now` than one already seen is taken as the latest.
//!
//! **Load value 0.** The SP805 TRM gives 1 as the minimum valid WdogLoad
//! and says that writing 0 generates an interrupt immediately. Here a
//! reload with WdogLoad = 0 (by writing it, writing WdogIntClr, or enabling
//! the counter) is due at once (the next `poll` reports it), and after
//! that the counter counts as if WdogLoad were 1, so expiries are never
//! due more often than once every 2 ticks (once every WdogLoad + 1 ticks in
//! general) and the hypervisor's timer cannot fire on every tick. WdogLoad
//! reads back 0 as written. When expiries were missed (the caller polled
//! late) and reset is disabled, `poll` reports one and skips the rest,
//! keeping the phase, so a late poll does not replay them one by one.
//!
//! **Accesses** ([`RegisterFile`]): every register is 32 bits at a
//! word-aligned offset. Reads of any width within one word return those
//! bytes of the register (the PrimeCell ID registers read the same with
//! `ldrb`); reads have no side effects. Writes must be 32-bit and aligned:
//! a narrower one could not carry the lock key, and a byte store to
//! WdogIntClr is not taken as a ping (the watchdog then fires: the safe
//! side). Accesses spanning two words (unaligned, or 64-bit) read 0 and
//! are ignored, as are offsets with no register (also past the 4 KiB
//! window). An access can change the interrupt line without an expiry
//! (WdogIntClr lowers it; re-enabling the counter while the raw interrupt
//! is still set raises it again): [`Sp805Effects::irq`] says so.

use crate::mmio::{RegisterFile, Width, word_lane};

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

/// What a guest access to the watchdog leaves for the hypervisor to do,
/// besides re-arming its timer from [`Sp805::next_deadline`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sp805Effects {
    /// The access changed the interrupt line to this level.
    pub irq: Option<bool>,
}

pub struct Sp805 {
    load: u32,
    control: u32,
    raised: bool,
    locked: bool,
    /// Tick at which the counter reaches zero, while counting.
    deadline: u64,
    /// The latest time the caller gave.
    now: u64,
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
            now: 0,
        }
    }

    /// Back to reset state (partition restart). The clock is kept.
    pub fn reset(&mut self) {
        *self = Self {
            now: self.now,
            ..Self::new()
        };
    }

    /// The time, in watchdog-clock ticks, of the register accesses that
    /// follow. Call before each access.
    pub fn set_now(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    fn counting(&self) -> bool {
        self.control & CONTROL_INTEN != 0
    }

    /// Ticks from one expiry to the next: WdogLoad + 1, with 0 counted as 1.
    fn period(&self) -> u64 {
        u64::from(self.load.max(1)) + 1
    }

    fn reload(&mut self) {
        self.deadline = if self.load == 0 {
            self.now
        } else {
            self.now.saturating_add(u64::from(self.load) + 1)
        };
    }

    /// Register value at word-aligned `offset`.
    fn peek(&self, offset: u64) -> u32 {
        match offset {
            reg::LOAD => self.load,
            reg::VALUE if self.counting() => self
                .deadline
                .saturating_sub(self.now.saturating_add(1))
                .min(u32::MAX as u64) as u32,
            reg::VALUE => self.load,
            reg::CONTROL => self.control,
            reg::RIS => self.raised as u32,
            reg::MIS => self.interrupt() as u32,
            reg::LOCK => self.locked as u32,
            0xfe0..=0xffc => ID[((offset - 0xfe0) / 4) as usize],
            _ => 0,
        }
    }

    fn write_word(&mut self, offset: u64, value: u32) {
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
                self.reload();
            }
            reg::CONTROL => {
                let starting = !self.counting() && value & CONTROL_INTEN != 0;
                self.control = value & (CONTROL_INTEN | CONTROL_RESEN);
                if starting {
                    self.reload();
                }
            }
            reg::INTCLR => {
                self.raised = false;
                self.reload();
            }
            _ => {}
        }
    }

    /// Advances to `now`: what happened since the last call. Reports one
    /// expiry per call; while [`Sp805::next_deadline`] is not after `now`,
    /// call again.
    pub fn poll(&mut self, now: u64) -> Expiry {
        self.set_now(now);
        let now = self.now;
        if !self.counting() || now < self.deadline {
            return Expiry::Nothing;
        }
        let reset_enabled = self.control & CONTROL_RESEN != 0;
        if self.raised && reset_enabled {
            self.control = 0; // held in reset until the partition reboots
            return Expiry::Reset;
        }
        self.raised = true;
        // Counting continues from the expiry, not from when it was noticed.
        let period = self.period();
        self.deadline = self.deadline.saturating_add(period);
        if !reset_enabled && self.deadline <= now {
            // Missed expiries would only raise the raised line again.
            let missed = (now - self.deadline) / period + 1;
            self.deadline = self.deadline.saturating_add(missed.saturating_mul(period));
        }
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

impl RegisterFile for Sp805 {
    type Effects = Sp805Effects;

    fn read(&mut self, offset: u64, width: Width, _effects: &mut Sp805Effects) -> u64 {
        match word_lane(offset, width) {
            Some((word, shift)) => (u64::from(self.peek(word)) >> shift) & width.mask(),
            None => 0,
        }
    }

    fn write(&mut self, offset: u64, width: Width, value: u64, effects: &mut Sp805Effects) {
        if width != Width::Word || !width.aligned(offset) {
            return;
        }
        let before = self.interrupt();
        self.write_word(offset, value as u32);
        let after = self.interrupt();
        if after != before {
            effects.irq = Some(after);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(wd: &mut Sp805, offset: u64, value: u32, now: u64) -> Sp805Effects {
        let mut fx = Sp805Effects::default();
        wd.set_now(now);
        wd.write(offset, Width::Word, u64::from(value), &mut fx);
        fx
    }

    fn r(wd: &mut Sp805, offset: u64, now: u64) -> u32 {
        wd.set_now(now);
        wd.read(offset, Width::Word, &mut Sp805Effects::default()) as u32
    }

    fn running(load: u32) -> Sp805 {
        let mut wd = Sp805::new();
        w(&mut wd, reg::LOCK, UNLOCK_KEY, 0);
        w(&mut wd, reg::LOAD, load, 0);
        w(&mut wd, reg::CONTROL, CONTROL_INTEN | CONTROL_RESEN, 0);
        w(&mut wd, reg::LOCK, 0, 0);
        wd
    }

    #[test]
    fn interrupt_then_reset_when_not_fed() {
        let mut wd = running(99);
        assert_eq!(wd.next_deadline(), Some(100));
        assert_eq!(r(&mut wd, reg::VALUE, 50), 49);
        assert_eq!(wd.poll(99), Expiry::Nothing);
        assert_eq!(wd.poll(100), Expiry::Interrupt);
        assert!(wd.interrupt());
        assert_eq!(wd.next_deadline(), Some(200));
        assert_eq!(wd.poll(200), Expiry::Reset);
        assert_eq!(wd.next_deadline(), None, "stops counting once it has reset");
    }

    #[test]
    fn feeding_keeps_it_quiet() {
        let mut wd = running(99);
        for t in (90..10_000).step_by(90) {
            w(&mut wd, reg::LOCK, UNLOCK_KEY, t);
            w(&mut wd, reg::INTCLR, 1, t);
            w(&mut wd, reg::LOCK, 0, t);
            assert_eq!(wd.poll(t + 1), Expiry::Nothing);
        }
        assert!(!wd.interrupt());
    }

    #[test]
    fn locked_registers_ignore_writes() {
        let mut wd = running(99);
        w(&mut wd, reg::INTCLR, 1, 150);
        assert_eq!(
            wd.poll(150),
            Expiry::Interrupt,
            "the locked ping did nothing"
        );
        assert_eq!(r(&mut wd, reg::LOCK, 150), 1);
    }

    #[test]
    fn without_reset_enable_it_only_interrupts() {
        let mut wd = Sp805::new();
        w(&mut wd, reg::LOAD, 9, 0);
        w(&mut wd, reg::CONTROL, CONTROL_INTEN, 0);
        assert_eq!(wd.poll(10), Expiry::Interrupt);
        assert_eq!(wd.poll(20), Expiry::Interrupt);
        assert_eq!(r(&mut wd, reg::MIS, 20), 1);
    }

    #[test]
    fn load_zero_interrupts_at_once_but_never_every_tick() {
        let mut wd = Sp805::new();
        w(&mut wd, reg::CONTROL, CONTROL_INTEN, 0);
        w(&mut wd, reg::LOAD, 0, 5);
        assert_eq!(r(&mut wd, reg::LOAD, 5), 0, "reads back as written");
        assert_eq!(wd.next_deadline(), Some(5), "due at once");
        assert_eq!(wd.poll(5), Expiry::Interrupt);
        // From here on, as if WdogLoad were 1: one expiry per 2 ticks.
        let mut last = 5;
        for now in 6..100 {
            if wd.poll(now) == Expiry::Interrupt {
                assert!(now >= last + 2, "expired at {last} and again at {now}");
                last = now;
            }
            let next = wd.next_deadline().unwrap();
            assert!(next > now, "due again at once at {now}");
            assert!(next >= last + 2, "next expiry {next} 1 tick after {last}");
        }
        // With reset enabled, an unfed watchdog resets 2 ticks later.
        let mut wd = Sp805::new();
        w(&mut wd, reg::LOAD, 0, 0);
        w(&mut wd, reg::CONTROL, CONTROL_INTEN | CONTROL_RESEN, 0);
        assert_eq!(wd.poll(0), Expiry::Interrupt);
        assert_eq!(wd.poll(1), Expiry::Nothing);
        assert_eq!(wd.poll(2), Expiry::Reset);
    }

    #[test]
    fn a_late_poll_does_not_replay_missed_expiries() {
        let mut wd = Sp805::new();
        w(&mut wd, reg::LOAD, 9, 0);
        w(&mut wd, reg::CONTROL, CONTROL_INTEN, 0);
        assert_eq!(wd.poll(1_000_005), Expiry::Interrupt);
        assert_eq!(wd.next_deadline(), Some(1_000_010), "phase kept");
        assert_eq!(wd.poll(1_000_005), Expiry::Nothing);
        // With reset enabled the second expiry is the reset, at once.
        let mut wd = running(9);
        assert_eq!(wd.poll(1_000_005), Expiry::Interrupt);
        assert_eq!(wd.poll(1_000_005), Expiry::Reset);
    }

    #[test]
    fn accesses_report_line_changes() {
        let mut wd = Sp805::new();
        w(&mut wd, reg::LOAD, 9, 0);
        assert_eq!(w(&mut wd, reg::CONTROL, CONTROL_INTEN, 0).irq, None);
        assert_eq!(wd.poll(10), Expiry::Interrupt);
        assert_eq!(w(&mut wd, reg::CONTROL, 0, 11).irq, Some(false), "disabled");
        assert_eq!(
            w(&mut wd, reg::CONTROL, CONTROL_INTEN, 12).irq,
            Some(true),
            "re-enabled with the raw interrupt still set"
        );
        assert_eq!(w(&mut wd, reg::INTCLR, 0, 13).irq, Some(false));
        assert_eq!(w(&mut wd, reg::INTCLR, 0, 14).irq, None);
    }

    #[test]
    fn time_does_not_go_back() {
        let mut wd = running(99);
        assert_eq!(r(&mut wd, reg::VALUE, 50), 49);
        assert_eq!(r(&mut wd, reg::VALUE, 10), 49);
        assert_eq!(wd.poll(0), Expiry::Nothing);
        w(&mut wd, reg::LOCK, UNLOCK_KEY, 0);
        w(&mut wd, reg::INTCLR, 0, 0);
        assert_eq!(wd.next_deadline(), Some(150), "reloaded at 50");
    }

    #[test]
    fn narrow_and_odd_accesses() {
        let mut wd = Sp805::new();
        let mut fx = Sp805Effects::default();
        wd.write(reg::LOAD, Width::Half, 5, &mut fx);
        wd.write(reg::LOAD + 1, Width::Word, 5, &mut fx);
        wd.write(reg::LOAD, Width::Double, 5, &mut fx);
        assert_eq!(r(&mut wd, reg::LOAD, 0), u32::MAX, "only 32-bit writes");
        assert_eq!(wd.read(reg::LOAD + 2, Width::Half, &mut fx), 0xffff);
        assert_eq!(wd.read(reg::LOAD + 2, Width::Word, &mut fx), 0);
        assert_eq!(wd.read(reg::LOAD, Width::Double, &mut fx), 0);
        assert_eq!(wd.read(u64::MAX, Width::Byte, &mut fx), 0);
        wd.write(u64::MAX - 3, Width::Word, 0, &mut fx);
        assert_eq!(fx, Sp805Effects::default());
    }

    #[test]
    fn reset_restores_everything_but_the_clock() {
        let mut wd = running(9);
        assert_eq!(wd.poll(10), Expiry::Interrupt);
        wd.reset();
        assert!(!wd.interrupt());
        assert_eq!(wd.next_deadline(), None);
        assert_eq!(r(&mut wd, reg::LOAD, 0), u32::MAX);
        assert_eq!(r(&mut wd, reg::LOCK, 0), 0);
        w(&mut wd, reg::LOAD, 4, 0);
        w(&mut wd, reg::CONTROL, CONTROL_INTEN, 0);
        assert_eq!(wd.next_deadline(), Some(15), "counts from 10, not 0");
    }

    #[test]
    fn identifies_as_an_sp805() {
        let mut wd = Sp805::new();
        let part = r(&mut wd, 0xfe0, 0) | (r(&mut wd, 0xfe4, 0) & 0xf) << 8;
        assert_eq!(part, 0x805);
        assert_eq!(r(&mut wd, 0xff0, 0), 0x0d);
        let mut fx = Sp805Effects::default();
        assert_eq!(wd.read(0xfe4, Width::Byte, &mut fx), 0x18, "ldrb");
    }
}
