//! Crash records at run time: every fault of a partition, watchdog expiry
//! and restart leaves a [`Record`] (format and formatting in
//! `shared_devices::crash_record`) in the partition's [`Ring`], and the
//! console gets its one-line summary.
//!
//! Nothing is allocated when a record is made: each partition's ring is
//! allocated at boot, and a record is filled in place in its slot (the
//! core that makes it may be about to leave its stack for good, see
//! `lifecycle::stop_partition`).
//!
//! The mediators add what they know ([`Mediator::add_to_record`]: the
//! console its last lines) and may keep the record (storage writes it to
//! the records area on disk, see `mediators::storage`). What the console
//! shows of records is rate-limited like every line a partition causes
//! (`report`); a record whose summary was held back stays in the ring
//! only, so a partition faulting as fast as it can costs the disk nothing.
//!
//! [`Mediator::add_to_record`]: super::Mediator::add_to_record

use super::{Partition, current_vcpu, hv, report};
use crate::arch::{self, Frame, cpu};
use alloc::vec::Vec;
use config::model::OnFault;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shared_devices::crash_record::{Action, AreaState, Cause, Record, Registers};
use spin::Mutex;

/// Records kept per partition in hypervisor memory (the newest).
pub const RING: usize = 8;

/// Records waiting to be written to the records area, at most.
pub const UNSAVED: usize = 16;

/// A partition's newest records.
pub struct Ring {
    /// Allocated at boot, [`RING`] slots; a slot with `seq` 0 is unused.
    slots: Vec<Record>,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            slots: (0..RING).map(|_| Record::default()).collect(),
        }
    }
}

impl Ring {
    /// The slot the next record takes: an unused one, else the oldest.
    fn next_slot(&mut self) -> &mut Record {
        let oldest = (0..self.slots.len())
            .min_by_key(|&i| self.slots[i].seq)
            .unwrap_or(0);
        &mut self.slots[oldest]
    }

    /// Record `seq`, if the ring still has it.
    pub fn get(&self, seq: u64) -> Option<&Record> {
        self.slots.iter().find(|r| r.seq == seq && seq != 0)
    }

    /// The sequence numbers it holds, oldest first.
    pub fn seqs(&self) -> heapless::Vec<u64, RING> {
        let mut seqs: heapless::Vec<u64, RING> = self
            .slots
            .iter()
            .map(|r| r.seq)
            .filter(|&s| s != 0)
            .collect();
        seqs.sort_unstable();
        seqs
    }
}

/// The hypervisor's record numbering and what waits for the disk.
pub struct Log {
    next_seq: AtomicU64,
    boot: u32,
    /// (partition index, sequence number) of records to write to the
    /// records area, oldest first.
    unsaved: Mutex<heapless::Deque<(usize, u64), UNSAVED>>,
    /// Records not written because `unsaved` was full.
    lost: AtomicU32,
}

impl Default for Log {
    /// Numbering without a records area: from 1, boot unknown (0).
    fn default() -> Self {
        Self::new(AreaState {
            boot: 0,
            ..AreaState::FRESH
        })
    }
}

impl Log {
    /// Numbering that goes on from what the records area holds.
    pub fn new(area: AreaState) -> Self {
        Self {
            next_seq: AtomicU64::new(area.next_seq.max(1)),
            boot: area.boot,
            unsaved: Mutex::new(heapless::Deque::new()),
            lost: AtomicU32::new(0),
        }
    }

    /// This boot's number (0: no records area).
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The oldest record waiting for the disk, without taking it.
    pub fn first_unsaved(&self) -> Option<(usize, u64)> {
        self.unsaved.lock().front().copied()
    }

    /// Record `seq` is on the disk (or gone from its ring): the next one's
    /// turn.
    pub fn saved(&self, seq: u64) {
        let mut unsaved = self.unsaved.lock();
        if unsaved.front().is_some_and(|&(_, s)| s == seq) {
            unsaved.pop_front();
        }
    }

    /// Records dropped on their way to the disk since the last call.
    pub fn take_lost(&self) -> u32 {
        self.lost.swap(0, Ordering::Relaxed)
    }
}

/// The action a record names for what `then` does to the partition.
pub fn action(then: OnFault) -> Action {
    match then {
        OnFault::Inject => Action::Inject,
        OnFault::Stop => Action::Stop,
        OnFault::Restart => Action::Restart,
    }
}

/// What happened, for [`record`].
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub cause: Cause,
    pub action: Action,
    /// ESR_EL2, FAR_EL2 and the faulting IPA, for faults.
    pub esr: u64,
    pub far: u64,
    pub ipa: u64,
}

impl Event {
    /// An event that is not a fault (no exception registers).
    pub fn new(cause: Cause, action: Action) -> Self {
        Self {
            cause,
            action,
            esr: 0,
            far: 0,
            ipa: 0,
        }
    }
}

/// Makes the record of `event` in partition `p`'s ring, on the core that
/// saw it, with the registers of the vCPU on this core if it was caught
/// in the act (`frame`), and logs its summary (a warning for faults and
/// the watchdog, information for the partition's own reset or
/// power-off). Returns its sequence number.
pub fn record(p: &Partition, event: Event, frame: Option<&Frame>) -> u64 {
    let hv = hv();
    let seq = hv.records.next_seq.fetch_add(1, Ordering::Relaxed);
    let mut ring = p.records.lock();
    let r = ring.next_slot();
    r.seq = seq;
    r.boot = hv.records.boot();
    r.time_us = arch::micros(cpu::counter());
    r.partition.clear();
    // Whole characters, as many as fit (the config's names always do).
    for c in p.name().chars() {
        if r.partition.push(c).is_err() {
            break;
        }
    }
    r.restarts = p.restarts.load(Ordering::Acquire);
    r.cause = event.cause;
    r.action = event.action;
    r.vcpu = current_vcpu().map_or(0, |(_, v)| v) as u8;
    r.cpu = cpu::current() as u8;
    r.esr = event.esr;
    r.far = event.far;
    r.ipa = event.ipa;
    r.pc = frame.map_or(0, |f| f.elr);
    r.pstate = frame.map_or(0, |f| f.spsr);
    r.regs = frame.map(|f| Registers {
        x: f.x,
        sp: cpu::guest_stack_pointer(f.spsr),
    });
    r.tail.clear();
    for m in &hv.mediators {
        m.add_to_record(p, r);
    }
    let (kind, level) = match event.cause {
        Cause::Reset | Cause::Off => (report::Kind::Lifecycle, log::Level::Info),
        _ if event.action == Action::Inject => (report::Kind::Fault, log::Level::Warn),
        _ => (report::Kind::Lifecycle, log::Level::Warn),
    };
    let shown = report::note(p, kind, level, format_args!("{}", r.summary()));
    drop(ring);
    if shown {
        let queued = hv.records.unsaved.lock().push_back((p.index, seq)).is_ok();
        if !queued {
            hv.records.lost.fetch_add(1, Ordering::Relaxed);
        }
        for m in &hv.mediators {
            m.record_made();
        }
    }
    seq
}

/// Calls `f` with the oldest record of any partition whose sequence
/// number is above `after` (under its ring's lock); returns that number,
/// or `None` when there is no newer record. For walking every record in
/// order (the console's dump) without copying one.
pub fn with_next_after(after: u64, f: impl FnOnce(&Record)) -> Option<u64> {
    let hv = hv();
    let (seq, index) = hv
        .partitions
        .iter()
        .filter_map(|p| {
            let first = p.records.lock().seqs().into_iter().find(|&s| s > after);
            first.map(|s| (s, p.index))
        })
        .min()?;
    let ring = hv.partitions[index].records.lock();
    // (Overwritten since: the caller goes on after it.)
    if let Some(r) = ring.get(seq) {
        f(r);
    }
    Some(seq)
}
