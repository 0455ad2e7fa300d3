//! The records area: a GPT partition of a mediated disk (`records` in its
//! `[[storage]]` entry) where the hypervisor keeps crash records across
//! power cycles, in [`RECORD_BYTES`] slots used as a ring (record `seq` in
//! slot `seq % slots`; the format is `shared_devices::crash_record`).
//!
//! At boot the area is read whole (before any partition's request), which
//! tells this boot's number and where numbering goes on. At run time the
//! disk's home core writes each record the console showed
//! (`partition::crash`), one at a time, in the driver's own slot, each
//! followed by a FLUSH: a record that was reported saved survives a power
//! cut. A write starts only while the top partition has nothing queued or
//! in flight, unless one has waited [`MAX_WAIT_MS`]: the safety
//! partition's requests find at most one record write ahead of them, and
//! only after it has kept the disk busy that long.

use crate::arch::cpu;
use crate::drivers::virtio_blk::{self as phys_blk, PhysicalDisk, Request};
use crate::partition::hv;
use alloc::format;
use alloc::string::String;
use log::{info, warn};
use shared_devices::crash_record::{AreaState, RECORD_BYTES, Record, slot_of};
use spin::Mutex;

/// Slots used at most (the newest this many records are kept); more of
/// the partition is left alone, so the boot-time read stays short.
pub const MAX_SLOTS: u64 = 64;

/// How long a record may wait for the top partition to go idle.
pub const MAX_WAIT_MS: u64 = 1000;

const SECTORS_PER_SLOT: u64 = RECORD_BYTES as u64 / phys_blk::SECTOR;

/// An opened records area.
pub struct RecordsArea {
    /// The GPT partition's name (for the log).
    pub name: &'static str,
    first_lba: u64,
    slots: u64,
    /// What the boots before this one left.
    pub state: AreaState,
    own: Mutex<Own>,
}

/// The home core's write under way, and since when a record has waited.
#[derive(Default)]
struct Own {
    writing: Option<Writing>,
    waiting_since: Option<u64>,
}

#[derive(Clone, Copy)]
struct Writing {
    /// The ring id of the request in flight (the write, then its FLUSH).
    ring: u16,
    seq: u64,
    slot: u64,
    flushing: bool,
}

impl RecordsArea {
    /// Finds the area (GPT partition `name`) on `disk` and reads it: at
    /// boot, with the disk to itself.
    pub fn open(disk: &mut PhysicalDisk, name: &'static str) -> Result<RecordsArea, String> {
        if disk.read_only() {
            return Err("the disk is read-only".into());
        }
        let extent = disk
            .gpt_extent(name)?
            .ok_or_else(|| format!("no GPT partition named {name:?}"))?;
        let slots = (extent.sectors() / SECTORS_PER_SLOT).min(MAX_SLOTS);
        if slots == 0 {
            return Err(format!(
                "GPT partition {name:?} is smaller than one {RECORD_BYTES}-byte record"
            ));
        }
        let mut state = AreaState::FRESH;
        let mut slot = [0u8; RECORD_BYTES];
        for n in 0..slots {
            disk.read(extent.first_lba() + n * SECTORS_PER_SLOT, &mut slot)?;
            state.scan(&slot);
        }
        Ok(RecordsArea {
            name,
            first_lba: extent.first_lba(),
            slots,
            state,
            own: Mutex::new(Own::default()),
        })
    }

    /// Its sectors: `(first LBA, count)`.
    pub fn lbas(&self) -> (u64, u64) {
        (self.first_lba, self.slots * SECTORS_PER_SLOT)
    }

    /// Whether `sectors` sectors from `start` (a partition's disk) share
    /// sectors with it.
    pub fn overlaps(&self, start: u64, sectors: u64) -> bool {
        let (first, count) = self.lbas();
        start < first + count && first < start.saturating_add(sectors)
    }

    /// Slots in use.
    pub fn slots(&self) -> u64 {
        self.slots
    }

    /// On the home core: starts writing the oldest record waiting for the
    /// disk, if none is being written and the top partition lets it
    /// (`top_busy`: it has requests queued or in flight).
    pub fn start_next(&self, disk: &Mutex<PhysicalDisk>, top_busy: bool, device: &str) {
        let log = &hv().records;
        let (partition, seq) = {
            let mut own = self.own.lock();
            if own.writing.is_some() {
                return;
            }
            let Some(next) = log.first_unsaved() else {
                own.waiting_since = None;
                return;
            };
            let since = *own.waiting_since.get_or_insert(cpu::counter());
            if top_busy && super::micros_since(since) < MAX_WAIT_MS * 1000 {
                return;
            }
            own.waiting_since = None;
            next
        };
        let mut bytes = [0u8; RECORD_BYTES];
        let found = hv().partitions.get(partition).is_some_and(|p| {
            let ring = p.records.lock();
            ring.get(seq)
                .map(|r: &Record| r.encode(&mut bytes))
                .is_some()
        });
        if !found {
            // Overwritten in its ring before its turn came.
            log.saved(seq);
            return;
        }
        let slot = slot_of(seq, self.slots);
        let lba = self.first_lba + slot * SECTORS_PER_SLOT;
        // Only the home core gets here (and `finished`), so nothing else
        // starts a write in between; the disk before `own`, as in
        // `finished`, whose caller holds the disk.
        let mut disk = disk.lock();
        match disk.write_own(lba, &bytes) {
            Ok(ring) => {
                self.own.lock().writing = Some(Writing {
                    ring,
                    seq,
                    slot,
                    flushing: false,
                });
            }
            Err(e) => {
                warn!("storage {device}: crash record #{seq} not saved: {e}");
                log.saved(seq);
            }
        }
        drop(disk);
        let lost = log.take_lost();
        if lost > 0 {
            warn!("storage {device}: {lost} crash record(s) not saved: too many at once");
        }
    }

    /// On the home core, for each request the device finished: whether it
    /// was the area's (then handled: its FLUSH started, or the record
    /// reported saved).
    pub fn finished(&self, disk: &mut PhysicalDisk, ring: u16, device: &str) -> bool {
        let mut own = self.own.lock();
        let Some(w) = own.writing.filter(|w| w.ring == ring) else {
            return false;
        };
        own.writing = None;
        let status = disk.status(phys_blk::OWN_SLOT);
        if status != 0 {
            warn!(
                "storage {device}: crash record #{} not saved: the disk answered status {status}",
                w.seq
            );
        } else if !w.flushing && disk.has_flush() {
            match disk.submit(phys_blk::OWN_SLOT, Request::Flush, &[]) {
                Ok(ring) => {
                    own.writing = Some(Writing {
                        ring,
                        flushing: true,
                        ..w
                    });
                    return true;
                }
                Err(e) => warn!("storage {device}: crash record #{} not flushed: {e}", w.seq),
            }
        } else {
            info!(
                "storage {device}: crash record #{} saved ({} slot {} of {})",
                w.seq, self.name, w.slot, self.slots
            );
        }
        hv().records.saved(w.seq);
        true
    }
}
