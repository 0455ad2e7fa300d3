//! Rate-limited warnings about what a partition did (faults, refused
//! firmware calls, malformed device requests).
//!
//! A partition can make such events as fast as it can trap; logging each
//! would fill the hypervisor's log queue, so that lines about other
//! partitions were lost, and keep the service core writing. Each kind of
//! report of each partition has a token bucket: [`BURST`] lines at once,
//! then [`PER_SECOND`] a second. What is held back is counted, and the
//! next line of that kind says how many were.

use super::Partition;
use crate::arch::cpu;
use core::fmt;
use spin::Mutex;

/// Lines of one kind a partition may cause at once.
pub const BURST: u32 = 16;
/// Lines of one kind a partition may cause per second after a burst.
pub const PER_SECOND: u64 = 2;

/// What a report is about; each kind has its own budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Faults handled per `on_fault` (aborts, undefined traps, SErrors).
    Fault = 0,
    /// PSCI/SMCCC calls refused.
    Firmware = 1,
    /// Malformed requests to an emulated device.
    Device = 2,
    /// Stops and restarts (a partition in a crash loop restarts as fast
    /// as it can boot).
    Lifecycle = 3,
}

const KINDS: usize = 4;

/// A token bucket, in counter ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bucket {
    /// Tokens, scaled by the counter frequency (one line = `frequency`).
    tokens: u64,
    /// Counter value of the last refill.
    refilled_at: u64,
    /// Lines held back since the last one let through.
    held_back: u32,
    /// Set once the bucket has been filled the first time.
    started: bool,
}

impl Bucket {
    /// Whether a line may go out at counter value `now` (`frequency`
    /// ticks a second); if so, how many were held back before it.
    pub fn take(&mut self, now: u64, frequency: u64) -> Option<u32> {
        let line = frequency.max(1);
        let full = u64::from(BURST) * line;
        if !self.started {
            self.started = true;
            self.tokens = full;
            self.refilled_at = now;
        }
        let elapsed = now.saturating_sub(self.refilled_at);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(PER_SECOND))
            .min(full);
        self.refilled_at = now;
        if self.tokens >= line {
            self.tokens -= line;
            Some(core::mem::take(&mut self.held_back))
        } else {
            self.held_back = self.held_back.saturating_add(1);
            None
        }
    }
}

/// A partition's buckets, one per [`Kind`].
#[derive(Default)]
pub struct Reports {
    buckets: [Mutex<Bucket>; KINDS],
}

/// Logs a warning about partition `p` (`[hv] WARN  partition <name>:
/// <what>`) if its budget for `kind` allows.
pub fn warn(p: &Partition, kind: Kind, what: fmt::Arguments) {
    note(p, kind, log::Level::Warn, what);
}

/// Logs `what` about partition `p` at `level` if its budget for `kind`
/// allows; whether it did.
pub fn note(p: &Partition, kind: Kind, level: log::Level, what: fmt::Arguments) -> bool {
    let held_back = p.reports.buckets[kind as usize]
        .lock()
        .take(cpu::counter(), cpu::counter_frequency());
    match held_back {
        None => return false,
        Some(0) => log::log!(level, "partition {}: {what}", p.name()),
        Some(n) => log::log!(
            level,
            "partition {}: {what} ({n} more like it not shown)",
            p.name()
        ),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_trickle_and_the_count_of_what_was_held_back() {
        let hz = 1000;
        let mut b = Bucket::default();
        let allowed = (0..100).filter(|_| b.take(5, hz).is_some()).count();
        assert_eq!(allowed, BURST as usize, "a burst, at one instant");
        // Half a second later: one more line (2 a second), which says how
        // many were held back.
        assert_eq!(b.take(505, hz), Some(100 - BURST));
        assert_eq!(b.take(505, hz), None);
        // Quiet for a long time: the full burst again, no more.
        let allowed = (0..100).filter(|_| b.take(60_000, hz).is_some()).count();
        assert_eq!(allowed, BURST as usize);
    }
}
