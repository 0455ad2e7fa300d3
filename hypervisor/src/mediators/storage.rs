//! The storage mediator (`[[storage]]` in the config): each partition's
//! virtual virtio-blk disks (the model in `shared_devices::virtio::blk`,
//! each an [`EmulatedDevice`] in a virtio-mmio slot), the scheduler per
//! physical disk, and the physical requests on the disk's home core (see
//! docs/architecture.md).
//! Data moves directly between the physical disk and the partitions' RAM:
//! the block model has checked every segment against the partition's
//! memory map, and the home core translates them to host addresses.
//! A disk may also hold the hypervisor's crash records ([`records`]).

use crate::arch::cpu;
use crate::arch::guest_mem::PartitionMemory;
use crate::drivers::virtio_blk::{self as phys_blk, PhysicalDisk, Request};
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, hv, report};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use config::layout;
use config::model::{Disk, DiskExtent, MemoryMap};
use core::sync::atomic::Ordering;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use log::info;
use shared_devices::latency::{LatencyWindow, Summary};
use shared_devices::mmio::RegisterFile;
use shared_devices::virtio::blk::MAX_REQUEST_BYTES;
use shared_devices::virtio::blk::{BackendStatus, BlkToken, DiskConfig, PhysOp, VirtioBlk};
use shared_devices::virtio::driver::Buf;
use shared_devices::virtio::mmio::{Effects, MmioTransport};
use shared_devices::virtio::queue::Region;
use shared_devices::virtio::sched::Dispatch;
use shared_devices::virtio::sched::{Limits, Scheduler};
use spin::Mutex;

mod records;
pub use records::RecordsArea;

// ---- the storage mediator ----

/// A request between the partition's virtio-blk model and the physical
/// disk: whose it is and which of its disks.
#[derive(Clone, Copy)]
pub struct Item {
    /// The partition's index.
    pub partition: usize,
    /// Its virtual disk.
    pub disk: &'static VirtDisk,
    /// The request in the disk's model.
    pub token: BlkToken,
    /// Counter value when it was queued (how long it waited to dispatch).
    pub queued_at: u64,
}

/// Partitions a storage device can serve (scheduler queues).
pub const MAX_PARTITIONS: usize = 8;
/// Requests waiting per partition.
const DEPTH: usize = 64;
/// Physical requests in flight at most (the physical driver's slots); one
/// is always kept for the highest-priority partition.
const IN_FLIGHT: usize = phys_blk::SLOTS;

/// The scheduler of one physical disk.
pub type Sched = Scheduler<Item, MAX_PARTITIONS, DEPTH, IN_FLIGHT>;

/// The storage mediator: every mediated physical disk and every
/// partition's virtual disk on them.
pub struct Storage {
    devices: Vec<&'static StorageDevice>,
    disks: Vec<&'static VirtDisk>,
}

/// A mediated physical disk (`[[storage]]`).
pub struct StorageDevice {
    pub name: &'static str,
    /// The core that does this disk's physical I/O.
    pub home_cpu: usize,
    pub disk: Mutex<PhysicalDisk>,
    pub sched: Mutex<Sched>,
    /// Work was queued since the home core last looked.
    pub work: AtomicBool,
    /// Most physical requests seen in flight at once (reported when it grows).
    pub most_in_flight: AtomicUsize,
    /// What the top partition's requests met here (reported when it grows).
    pub top_waits: TopWaits,
    /// The device's interrupt (a used buffer), routed to the home core.
    pub intid: Option<u32>,
    /// Requests on the device; only the home core touches them.
    in_flight: Mutex<Vec<InFlight>>,
    /// What the home core put off because a partition's transport was
    /// locked (see [`Deferred`]).
    deferred: Mutex<Deferred>,
    /// Something is in `deferred`: the next access to a disk of this
    /// device wakes the home core.
    deferred_pending: AtomicBool,
    /// The hypervisor's crash records on this disk, if the config puts
    /// them here.
    pub records: Option<RecordsArea>,
}

/// Work the home core could not do at once because the partition's
/// transport was locked (one of its own vCPUs in the middle of an access):
/// it is retried on the home core's next pass. The home core never waits
/// for a partition's lock, so a partition whose vCPUs hammer their disk's
/// registers delays its own requests only, never another partition's.
/// Both lists hold dispatched requests, so they never hold more than the
/// scheduler lets be in flight.
#[derive(Default)]
struct Deferred {
    starts: heapless::Vec<Dispatch<Item>, IN_FLIGHT>,
    completions: heapless::Vec<(Dispatch<Item>, BackendStatus), IN_FLIGHT>,
}

/// The temporal-isolation record of one disk: the most lower-priority
/// requests and bytes a top-partition request found in flight when it was
/// dispatched (the scheduler keeps them at or below `K` and `B`), and its longest
/// wait from being queued to being dispatched. New highs are logged (the
/// wait only from [`WAIT_REPORT_US`] on), so the log shows the worst case
/// a run met; so is a summary of every [`WAIT_WINDOW`] waits (median, 99th
/// percentile, maximum), which shows how they usually go.
#[derive(Default)]
pub struct TopWaits {
    behind: AtomicUsize,
    behind_bytes: AtomicU64,
    wait_us: AtomicU64,
    window: Mutex<LatencyWindow<WAIT_WINDOW>>,
    /// From its start on the disk until the home core took its completion
    /// (the device's time and its interrupt reaching the home core).
    on_device: Mutex<LatencyWindow<WAIT_WINDOW>>,
}

/// Top-partition dispatches per logged summary.
pub const WAIT_WINDOW: usize = 500;

/// Top-partition waits below this are not worth a log line.
pub const WAIT_REPORT_US: u64 = 1000;

/// One of a partition's virtual disks: virtio-blk on virtio-mmio slot n.
pub struct VirtDisk {
    /// The partition's index.
    pub partition: usize,
    /// Its virtio-mmio slot.
    pub slot: usize,
    /// The physical disk it lies on.
    pub device: &'static StorageDevice,
    /// The transport and the block model.
    pub transport: Mutex<MmioTransport<VirtioBlk>>,
    /// Slots freed up while its ring still holds requests: the partition's
    /// own core parses them (see [`VirtDisk::refill`]), never the home core.
    refill: AtomicBool,
}

impl Storage {
    /// The mediator over the opened physical disks and the virtual disks
    /// on them.
    pub fn new(devices: Vec<&'static StorageDevice>, disks: Vec<&'static VirtDisk>) -> Self {
        Self { devices, disks }
    }

    /// The physical interrupts it owns.
    pub fn interrupts(&self) -> impl Iterator<Item = u32> + '_ {
        self.devices.iter().filter_map(|d| d.intid)
    }
}

/// Opens a `[[storage]]` device for the hypervisor's partitions, with a
/// scheduler queue per partition at the partition's priority.
pub fn open_storage(
    desc: &config::model::Storage,
    home_cpu: usize,
    priorities: &[u8],
) -> Result<StorageDevice, String> {
    let region = desc
        .regions
        .first()
        .ok_or("storage device has no registers")?;
    // Completions interrupt the home core, which then finishes them; it
    // never waits for the device.
    let mut disk = PhysicalDisk::open(region.base, region.size)?;
    let records = desc
        .records
        .and_then(|name| match RecordsArea::open(&mut disk, name) {
            Ok(area) => {
                let s = area.state;
                info!(
                    "storage {}: crash records in GPT partition {name} ({} slots): {} from earlier \
                 boots{}; this is boot {}",
                    desc.name,
                    area.slots(),
                    s.records,
                    if s.damaged > 0 {
                        format!(", {} slot(s) torn", s.damaged)
                    } else {
                        String::new()
                    },
                    s.boot
                );
                Some(area)
            }
            Err(e) => {
                log::error!(
                    "storage {}: crash records area {name}: {e}; records are kept in memory only",
                    desc.name
                );
                None
            }
        });
    info!(
        "storage {}: virtio-blk at {:#x}, {} MiB{}{}{}, I/O on cpu {home_cpu}",
        desc.name,
        region.base,
        disk.sectors() >> 11,
        if disk.read_only() { ", read-only" } else { "" },
        if disk.max_discard_sectors() > 0 {
            ", discard"
        } else {
            ""
        },
        if disk.max_write_zeroes_sectors() > 0 {
            ", write-zeroes"
        } else {
            ""
        },
    );
    let limits = storage_limits(u64::from(desc.lower_in_flight_kib) * 1024);
    info!(
        "storage {}: lower priorities hold at most {} requests and {} bytes in flight \
         while the top partition is idle, start nothing while it is busy and {} of \
         theirs are out",
        desc.name, limits.others_in_flight, limits.others_bytes, limits.busy_others_in_flight
    );
    let sched = Sched::new(priorities, limits).map_err(|e| format!("scheduler: {e:?}"))?;
    Ok(StorageDevice {
        name: desc.name,
        home_cpu,
        disk: Mutex::new(disk),
        sched: Mutex::new(sched),
        work: AtomicBool::new(false),
        most_in_flight: AtomicUsize::new(0),
        top_waits: TopWaits::default(),
        intid: desc.interrupts.first().copied(),
        in_flight: Mutex::new(Vec::new()),
        deferred: Mutex::new(Deferred::default()),
        deferred_pending: AtomicBool::new(false),
        records,
    })
}

/// The virtual disk a partition's `disk` entry describes, its extent
/// resolved on the physical disk (GPT name or LBA range).
pub fn open_virt_disk(
    storage: &'static StorageDevice,
    d: &Disk,
    partition: (usize, &str),
    slot: usize,
) -> Result<VirtDisk, String> {
    let (partition_index, partition) = partition;
    let mut phys = storage.disk.lock();
    let capacity = phys.sectors();
    let (start, sectors) = match d.extent {
        DiskExtent::Gpt(name) => {
            let extent = phys
                .gpt_extent(name)?
                .ok_or_else(|| format!("no GPT partition named {name:?}"))?;
            (extent.first_lba(), extent.sectors())
        }
        DiskExtent::Lba { start, sectors } => (start, sectors),
    };
    if let Some(area) = &storage.records
        && area.overlaps(start, sectors)
    {
        return Err(format!(
            "LBA {start}+{sectors} shares sectors with the hypervisor's crash records ({})",
            area.name
        ));
    }
    let mut cfg = DiskConfig::new(start, sectors);
    cfg.read_only = d.read_only || phys.read_only();
    // DISCARD where the physical disk has it; WRITE_ZEROES always (zeros
    // are written where the disk has no WRITE_ZEROES), within its limits.
    cfg.discard = !cfg.read_only && phys.max_discard_sectors() > 0;
    cfg.max_discard_sectors = cfg
        .max_discard_sectors
        .min(phys.max_discard_sectors().max(1));
    cfg.write_zeroes = !cfg.read_only;
    if phys.max_write_zeroes_sectors() > 0 {
        cfg.max_write_zeroes_sectors = cfg
            .max_write_zeroes_sectors
            .min(phys.max_write_zeroes_sectors());
    }
    // GET_ID: the partition's name (zero padded, as the spec allows).
    for (slot, byte) in cfg.id.iter_mut().zip(partition.bytes()) {
        *slot = byte;
    }
    let blk =
        VirtioBlk::new(cfg, capacity).map_err(|e| format!("disk LBA {start}+{sectors}: {e:?}"))?;
    info!(
        "partition {partition}: disk {slot} = {} LBA {start}..{} ({} MiB){}",
        storage.name,
        start + sectors,
        sectors >> 11,
        if cfg.read_only { ", read-only" } else { "" }
    );
    Ok(VirtDisk {
        partition: partition_index,
        slot,
        device: storage,
        transport: Mutex::new(MmioTransport::new(blk)),
        refill: AtomicBool::new(false),
    })
}

/// The scheduler's limits on a mediated disk (see
/// `shared_devices::virtio::sched` and docs/architecture.md): while the
/// safety partition is idle, lower-priority partitions may keep all slots
/// but one and `lower_bytes` (`lower_in_flight_kib` in the config) on the
/// device, which keeps a large transfer streaming; the moment it queues a
/// request they start nothing more until fewer than one of theirs is in
/// flight. So a safety request finds at most `IN_FLIGHT - 1` lower
/// requests of at most `lower_bytes` together (or one bigger request)
/// ahead of it, and the rest of its burst at most one started after it.
/// A starved queue gets a turn after 8 passes.
fn storage_limits(lower_bytes: u64) -> Limits {
    Limits {
        in_flight: IN_FLIGHT,
        others_in_flight: IN_FLIGHT - 1,
        others_bytes: lower_bytes.max(1),
        busy_others_in_flight: 1,
        starvation: 8,
    }
}

/// The interrupt of virtio slot `slot`.
pub fn slot_intid(slot: usize) -> u32 {
    layout::VIRTIO_FIRST_INTID + slot as u32
}

impl VirtDisk {
    /// The disk's virtual SPI.
    pub fn intid(&self) -> u32 {
        slot_intid(self.slot)
    }

    /// Processes the queue the effects `fx` name (at most `NOTIFY_ROUNDS`
    /// rounds) and hands the requests it yields to the disk's scheduler;
    /// on the partition's own core, with its transport locked. Returns the
    /// effects and whether requests were queued.
    fn take_requests(
        &'static self,
        p: &Partition,
        transport: &mut MmioTransport<VirtioBlk>,
        mut fx: Effects,
    ) -> (Effects, bool) {
        let mem = PartitionMemory {
            map: p.config.memory,
        };
        let broken_before = transport.status() & NEEDS_RESET != 0;
        for _ in 0..NOTIFY_ROUNDS {
            let Some(queue) = fx.notify.take() else { break };
            fx = fx.and(transport.notify_queue(queue, &mem));
        }
        let mut queued = false;
        while let Some(token) = transport.device_mut().take_pending() {
            let bytes = transport
                .device()
                .physical_request(token)
                .map_or(0, |r| r.bytes());
            let item = Item {
                partition: p.index,
                disk: self,
                token,
                queued_at: cpu::counter(),
            };
            if self
                .device
                .sched
                .lock()
                .enqueue(p.index, item, bytes)
                .is_ok()
            {
                queued = true;
            } else {
                let (_, more) = transport.with_device(&mem, |blk, ctx| {
                    blk.complete(token, BackendStatus::IoError, ctx)
                });
                fx = fx.and(more);
            }
        }
        if !broken_before && transport.status() & NEEDS_RESET != 0 {
            report::warn(
                p,
                report::Kind::Device,
                format_args!(
                    "disk {}: malformed virtqueue request; device needs reset",
                    self.slot
                ),
            );
        }
        (fx, queued)
    }

    /// What follows an access or a refill, the transport unlocked: a reset
    /// drops the partition's queued requests, a rising line is raised, new
    /// requests (or completions the home core had to put off while this
    /// partition held its lock) wake the home core.
    fn after(&self, p: &Partition, fx: Effects, queued: bool, actions: &mut Actions) {
        let storage = self.device;
        if fx.reset {
            drop_queued(storage, p.index);
        }
        actions.raise_line = fx.irq == Some(true);
        // A partition's core starts its own requests when the scheduler
        // lets them go, rather than wait for the home core to be woken and
        // scheduled (two exits and a core switch per request).
        let started_here = queued && storage.start_own_requests(p.index);
        if (queued && !started_here) || storage.deferred_pending.load(Ordering::Acquire) {
            storage.work.store(true, Ordering::Release);
            actions.wake = Some(storage.home_cpu);
        }
    }

    /// The home core completed a request while the ring still held more
    /// than the free slots took: the partition's own core (its vCPU 0's)
    /// is asked to parse them, as if the driver had notified again.
    fn request_refill(&self, p: &Partition) {
        if !self.refill.swap(true, Ordering::AcqRel)
            && let Some(&core) = p.vcpu_cpus.first()
        {
            if core == cpu::current() {
                return; // this core's next service pass does it
            }
            partition::kick(core, 0);
        }
    }

    /// On the partition's own core: parses what is left in the ring (see
    /// [`VirtDisk::request_refill`]).
    fn refill(&'static self, p: &Partition) {
        if !self.refill.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut transport = self.transport.lock();
        let fx = Effects {
            notify: Some(0),
            ..Effects::default()
        };
        let (fx, queued) = self.take_requests(p, &mut transport, fx);
        drop(transport);
        let mut actions = Actions::default();
        self.after(p, fx, queued, &mut actions);
        if actions.raise_line {
            partition::raise_virtual_spi(p, self.intid());
        }
        if let Some(home) = actions.wake {
            if home == cpu::current() {
                self.device.service();
            } else {
                partition::kick(home, 0);
            }
        }
    }
}

/// The registers of a virtual disk's virtio-mmio slot.
impl EmulatedDevice for VirtDisk {
    fn read(&'static self, a: &Access, actions: &mut Actions) -> u64 {
        let value = self
            .transport
            .lock()
            .read(a.offset, a.width, &mut Effects::default());
        self.after(a.partition, Effects::default(), false, actions);
        value
    }

    /// Parses what the driver queued (the partition's own work, on its own
    /// core) and hands the requests to the disk's scheduler.
    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let mut transport = self.transport.lock();
        let mut fx = Effects::default();
        transport.write(a.offset, a.width, value, &mut fx);
        let (fx, queued) = self.take_requests(a.partition, &mut transport, fx);
        drop(transport);
        self.after(a.partition, fx, queued, actions);
    }

    fn line_high(&self, _p: &Partition) -> bool {
        self.transport.lock().irq_level()
    }

    fn reset(&self, _p: &Partition) {
        // The partition is stopped: nobody is left to interrupt.
        let _ = self.transport.lock().reset();
    }
}

/// virtio device status: DEVICE_NEEDS_RESET (the device gave up on a
/// malformed queue).
const NEEDS_RESET: u32 = 0x40;

/// How soon (1/n s) the home core retries work it had to put off.
const RETRY_PER_SECOND: u64 = 20_000;

/// Rounds of queue processing per notification; a driver that keeps the
/// device busy longer gets the rest on its next notification.
const NOTIFY_ROUNDS: usize = 8;

/// Completes (as orphans, writing nothing) the requests of `partition`
/// still waiting for `storage`: after a device reset or partition stop.
fn drop_queued(storage: &StorageDevice, partition: usize) {
    let mut dropped = heapless::Vec::<Item, DEPTH>::new();
    storage.sched.lock().cancel(partition, |item| {
        let _ = dropped.push(item);
    });
    for item in dropped {
        let mem = memory_of(item.partition);
        let mut t = item.disk.transport.lock();
        // Orphaned by the reset: completing only frees the slot, no
        // interrupt follows.
        let _ = t.with_device(&mem, |blk, ctx| {
            blk.complete(item.token, BackendStatus::IoError, ctx)
        });
    }
}

/// Partition `index`'s memory, as the block model reaches it.
fn memory_of(index: usize) -> PartitionMemory {
    PartitionMemory {
        map: hv().partitions[index].config.memory,
    }
}

/// A request on the physical disk.
struct InFlight {
    dispatched: Dispatch<Item>,
    /// The physical driver's slot and the ring id its completion carries.
    slot: usize,
    ring: u16,
    /// A durable write: a FLUSH follows the write before it completes.
    then_flush: bool,
    /// Counter value when it was started on the disk.
    started_at: u64,
    /// It is the top partition's (its time on the disk is recorded).
    top: bool,
}

impl Mediator for Storage {
    fn name(&self) -> &'static str {
        "storage"
    }

    /// On the home core, whenever it is woken (a partition queued work, the
    /// device interrupted) or polls: starts what the scheduler allows
    /// (several requests in flight), finishes what the device has
    /// completed, and starts more as slots free up. Never waits for the
    /// device; its completion interrupt says when more is done.
    fn service(&self) -> Option<u64> {
        let me = cpu::current();
        // A partition's own ring, refilled on its own core.
        if let Some((p, _)) = partition::current_vcpu() {
            for disk in self.disks.iter().filter(|d| d.partition == p.index) {
                disk.refill(p);
            }
        }
        let mut retry = false;
        for storage in self.devices.iter().filter(|s| s.home_cpu == me) {
            storage.service();
            retry |= storage.deferred_pending.load(Ordering::Acquire);
        }
        // Work put off because a partition held its transport: the next
        // access of that partition wakes this core, but it might not make
        // one (it may be waiting for the very completion put off), so come
        // back soon whatever happens.
        retry.then(|| cpu::counter() + cpu::counter_frequency() / RETRY_PER_SECOND)
    }

    /// A disk's used-buffer interrupt: lowers its line and marks it for
    /// [`Mediator::service`], which runs next on this (its home) core.
    fn interrupt(&self, intid: u32) {
        if let Some(storage) = self.devices.iter().find(|s| s.intid == Some(intid)) {
            storage.disk.lock().ack_interrupt();
            storage.work.store(true, Ordering::Release);
        }
    }

    /// A crash record waits for the disk that keeps records: its home core
    /// writes it.
    fn record_made(&self) {
        for storage in self.devices.iter().filter(|s| s.records.is_some()) {
            storage.work.store(true, Ordering::Release);
            if storage.home_cpu != cpu::current() {
                partition::kick(storage.home_cpu, 0);
            }
        }
    }

    /// Resets the partition's virtual disks, drops its queued requests,
    /// and waits until none of its requests is in flight.
    fn quiesce(&self, p: &Partition) {
        for disk in self.disks.iter().filter(|d| d.partition == p.index) {
            // The partition is stopped: nobody is left to interrupt.
            let _ = disk.transport.lock().reset();
        }
        for storage in &self.devices {
            drop_queued(storage, p.index);
            if storage.home_cpu != cpu::current() {
                // Work put off while the partition held its transport is
                // done on the home core's next pass: make it come.
                storage.work.store(true, Ordering::Release);
                partition::kick(storage.home_cpu, 0);
            }
            while storage.sched.lock().in_flight_of(p.index) > 0 {
                if storage.home_cpu == cpu::current() {
                    // Nobody else finishes this core's requests.
                    storage.work.store(true, Ordering::Release);
                    storage.service();
                } else {
                    core::hint::spin_loop();
                }
            }
        }
    }
}

impl StorageDevice {
    /// Its share of [`Mediator::service`] (on its home core).
    fn service(&self) {
        let mut in_flight = self.in_flight.lock();
        let retry = self.deferred_pending.swap(false, Ordering::AcqRel);
        if !self.work.swap(false, Ordering::AcqRel) && !retry && in_flight.is_empty() {
            return;
        }
        if retry {
            let deferred = core::mem::take(&mut *self.deferred.lock());
            for (dispatched, status) in deferred.completions {
                complete(self, dispatched, status);
            }
            for dispatched in deferred.starts {
                if let Some(started) = start(self, dispatched, &in_flight) {
                    in_flight.push(started);
                }
            }
        }
        loop {
            dispatch(self, &mut in_flight, None);
            if !harvest(self, &mut in_flight) {
                break;
            }
        }
        if let Some(area) = &self.records {
            let top_busy = self.sched.lock().top_busy();
            area.start_next(&self.disk, top_busy, self.name);
        }
    }

    /// On a partition's own core, after it queued requests: starts those
    /// of its own the scheduler lets go now, and nobody else's (no
    /// partition's work runs on another partition's core, so a lower
    /// partition's dispatch never costs the safety partition's core). Not
    /// on the home core (its next pass does it), nor while the home core
    /// is in the middle of a pass (that pass does it): `false` then, or
    /// when some of its requests are still queued, and the home core is
    /// woken as before. Completions still come to the home core.
    fn start_own_requests(&self, partition: usize) -> bool {
        if self.home_cpu == cpu::current() {
            return false;
        }
        let Some(mut in_flight) = self.in_flight.try_lock() else {
            return false;
        };
        dispatch(self, &mut in_flight, Some(partition));
        drop(in_flight);
        // What is left (no slot free, or a starved lower queue's turn
        // first) is the home core's, at its next pass.
        self.sched.lock().queued(partition) == 0
    }
}

/// Starts every request the scheduler lets go now (only `only`'s, if
/// given).
fn dispatch(storage: &StorageDevice, in_flight: &mut Vec<InFlight>, only: Option<usize>) {
    // (The scheduler's lock must not be held across `start`, which
    // completes requests itself.)
    loop {
        let next = {
            let mut sched = storage.sched.lock();
            let dispatched = match only {
                Some(partition) => sched.dispatch_for(partition),
                None => sched.dispatch(),
            };
            dispatched.map(|d| {
                let behind = sched
                    .is_top(d.partition)
                    .then(|| (sched.others_in_flight(), sched.others_bytes_in_flight()));
                (d, behind)
            })
        };
        let Some((dispatched, behind)) = next else {
            break;
        };
        if let Some(behind) = behind {
            note_top_dispatch(storage, &dispatched, behind);
        }
        if let Some(mut started) = start(storage, dispatched, in_flight) {
            started.top = behind.is_some();
            in_flight.push(started);
            if in_flight.len()
                > storage
                    .most_in_flight
                    .fetch_max(in_flight.len(), Ordering::Relaxed)
            {
                info!(
                    "storage {}: {} physical requests in flight (new high)",
                    storage.name,
                    in_flight.len()
                );
            }
        }
    }
}

/// Records (and logs when it is a new high) what a top-partition request
/// met: `behind` lower-priority requests in flight (how many, how many
/// bytes), and its wait since it was queued.
fn note_top_dispatch(storage: &StorageDevice, dispatched: &Dispatch<Item>, behind: (usize, u64)) {
    let name = || hv().partitions[dispatched.partition].name();
    let waits = &storage.top_waits;
    let (requests, bytes) = behind;
    let more_requests = requests > waits.behind.fetch_max(requests, Ordering::Relaxed);
    let more_bytes = bytes > waits.behind_bytes.fetch_max(bytes, Ordering::Relaxed);
    if more_requests || more_bytes {
        info!(
            "storage {}: a request of partition {} was dispatched behind {requests} \
             lower-priority request(s) of {bytes} bytes (new high)",
            storage.name,
            name()
        );
    }
    let wait_us = micros_since(dispatched.item.queued_at);
    if wait_us >= WAIT_REPORT_US && wait_us > waits.wait_us.fetch_max(wait_us, Ordering::Relaxed) {
        info!(
            "storage {}: a request of partition {} waited {wait_us} us to be dispatched (new high)",
            storage.name,
            name()
        );
    }
    if let Some(s) = record(&waits.window, wait_us) {
        info!(
            "storage {}: partition {}: last {} dispatches waited p50 {} us, p99 {} us, max {} us",
            storage.name,
            name(),
            s.samples,
            s.p50,
            s.p99,
            s.max
        );
    }
}

/// Finishes whatever the device has completed since the last look;
/// whether it finished anything.
fn harvest(storage: &StorageDevice, in_flight: &mut Vec<InFlight>) -> bool {
    let mut finished = false;
    loop {
        let done = storage.disk.lock().take_used();
        let Some(ring) = done else { return finished };
        if let Some(area) = &storage.records
            && area.finished(&mut storage.disk.lock(), ring, storage.name)
        {
            continue;
        }
        match in_flight.iter().position(|f| f.ring == ring) {
            Some(i) => {
                let f = in_flight.swap_remove(i);
                if let Some(again) = finish(storage, f) {
                    in_flight.push(again);
                }
                finished = true;
            }
            None => log::error!(
                "storage {}: device completed unknown request {ring}",
                storage.name
            ),
        }
    }
}

/// Starts a dispatched request on the physical disk, without waiting:
/// data buffers are the partition's own RAM, translated to host addresses
/// (the model checked them against its map); a write-zeroes without
/// physical WRITE_ZEROES writes the driver's zeros. A FLUSH needs no
/// barrier: it covers every write the device completed before it, and the
/// partition's writes complete to it only after they did.
fn start(
    storage: &StorageDevice,
    dispatched: Dispatch<Item>,
    in_flight: &[InFlight],
) -> Option<InFlight> {
    let item = dispatched.item;
    let p = &hv().partitions[item.partition];
    let Some(transport) = item.disk.transport.try_lock() else {
        defer(storage, |d| d.starts.push(dispatched).map_err(drop));
        return None;
    };
    // A read's or write's segments go straight from the model to host
    // addresses, built in place: no copy of a hundred-odd segments.
    let mut data: heapless::Vec<Buf, { phys_blk::MAX_DATA_BUFS }> = heapless::Vec::new();
    let request = transport.device().physical_request(item.token).map(|r| {
        let in_memory = match r.op {
            PhysOp::Read | PhysOp::Write { .. } => {
                host_buffers(p.config.memory, r.segments, r.op == PhysOp::Read, &mut data)
            }
            _ => true,
        };
        (r.op, r.lba, r.sectors, in_memory)
    });
    drop(transport);
    let Some((op, lba, sectors, in_memory)) = request else {
        // Orphaned by a reset: nothing to do.
        complete(storage, dispatched, BackendStatus::IoError);
        return None;
    };
    if !in_memory {
        report::warn(
            p,
            report::Kind::Device,
            format_args!("storage: a buffer left its memory"),
        );
        complete(storage, dispatched, BackendStatus::IoError);
        return None;
    }
    let Some(slot) = (0..phys_blk::SLOTS).find(|s| in_flight.iter().all(|f| f.slot != *s)) else {
        log::error!(
            "storage {}: no free slot for a dispatched request",
            storage.name
        );
        complete(storage, dispatched, BackendStatus::IoError);
        return None;
    };
    let mut disk = storage.disk.lock();
    let mut then_flush = false;
    let request = match op {
        PhysOp::Read => Request::Read { lba },
        PhysOp::Write { durable } => {
            then_flush = durable && disk.has_flush();
            Request::Write { lba }
        }
        PhysOp::Flush if !disk.has_flush() => {
            drop(disk);
            complete(storage, dispatched, BackendStatus::Ok);
            return None;
        }
        PhysOp::Flush => Request::Flush,
        PhysOp::Discard if disk.max_discard_sectors() > 0 => Request::Discard {
            lba,
            sectors: sectors as u32,
        },
        PhysOp::Discard => {
            drop(disk);
            complete(storage, dispatched, BackendStatus::Unsupported);
            return None;
        }
        PhysOp::WriteZeroes { unmap } if disk.max_write_zeroes_sectors() > 0 => {
            Request::WriteZeroes {
                lba,
                sectors: sectors as u32,
                unmap,
            }
        }
        PhysOp::WriteZeroes { .. } => {
            // The model keeps the range within MAX_REQUEST_BYTES, which
            // the driver's zeros cover.
            let bytes = sectors * phys_blk::SECTOR;
            if bytes > MAX_REQUEST_BYTES {
                drop(disk);
                complete(storage, dispatched, BackendStatus::IoError);
                return None;
            }
            data = disk.zero_bufs(bytes);
            Request::Write { lba }
        }
    };
    match disk.submit(slot, request, &data) {
        Ok(ring) => Some(InFlight {
            dispatched,
            slot,
            ring,
            then_flush,
            started_at: cpu::counter(),
            top: false,
        }),
        Err(e) => {
            drop(disk);
            log::warn!("storage {}: could not start a request: {e}", storage.name);
            complete(storage, dispatched, BackendStatus::IoError);
            None
        }
    }
}

/// Appends to `bufs` the host-physical buffers of a partition's data
/// segments (split where a segment crosses from one of its memory regions
/// into the next); `false` if one is not in its memory.
fn host_buffers(
    map: &[MemoryMap],
    segments: &[Region],
    device_writes: bool,
    bufs: &mut heapless::Vec<Buf, { phys_blk::MAX_DATA_BUFS }>,
) -> bool {
    segments.iter().all(|s| {
        crate::memory::guest_map::for_each_host_range(map, s.gpa, u64::from(s.len), |addr, len| {
            bufs.push(Buf {
                addr,
                len: len as u32,
                device_writes,
            })
            .ok()
        })
        .is_some()
    })
}

/// The device finished `f`: its status goes to the partition, or, for a
/// durable write that succeeded, a FLUSH follows in the same slot (returned
/// as the request still in flight).
fn finish(storage: &StorageDevice, f: InFlight) -> Option<InFlight> {
    let mut disk = storage.disk.lock();
    let status = match disk.status(f.slot) {
        0 => BackendStatus::Ok,
        2 => BackendStatus::Unsupported,
        s => {
            log::warn!(
                "storage {}: physical request failed (status {s})",
                storage.name
            );
            BackendStatus::IoError
        }
    };
    if f.then_flush && status == BackendStatus::Ok {
        match disk.submit(f.slot, Request::Flush, &[]) {
            Ok(ring) => {
                return Some(InFlight {
                    ring,
                    then_flush: false,
                    ..f
                });
            }
            Err(e) => log::warn!("storage {}: could not flush: {e}", storage.name),
        }
    }
    drop(disk);
    let status = if f.then_flush {
        BackendStatus::IoError
    } else {
        status
    };
    if f.top {
        note_top_on_device(storage, &f);
    }
    complete(storage, f.dispatched, status);
    None
}

/// Microseconds of counter time since counter value `then`.
fn micros_since(then: u64) -> u64 {
    crate::arch::micros(cpu::counter().saturating_sub(then))
}

/// Adds `us` to `window`; its summary when the window is full.
fn record(window: &Mutex<LatencyWindow<WAIT_WINDOW>>, us: u64) -> Option<Summary> {
    window.lock().record(us.min(u64::from(u32::MAX)) as u32)
}

/// Records how long a top-partition request was on the disk, until the
/// home core took its completion; a summary every [`WAIT_WINDOW`]
/// requests (with the dispatch waits, the part of the partition's
/// latency the hypervisor sees).
fn note_top_on_device(storage: &StorageDevice, f: &InFlight) {
    if let Some(s) = record(&storage.top_waits.on_device, micros_since(f.started_at)) {
        info!(
            "storage {}: partition {}: last {} requests took p50 {} us, p99 {} us, max {} us \
             from their start on the disk to the home core",
            storage.name,
            hv().partitions[f.dispatched.partition].name(),
            s.samples,
            s.p50,
            s.p99,
            s.max
        );
    }
}

/// Reports a physical request's end to the partition and the scheduler.
/// Writes only the used ring: should freed slots let the device take more
/// of the partition's ring, that parsing is left to the partition's own
/// core (`VirtDisk::request_refill`), so a partition's ring full of junk
/// costs the home core nothing.
fn complete(storage: &StorageDevice, dispatched: Dispatch<Item>, status: BackendStatus) {
    let item = dispatched.item;
    let Some(mut transport) = item.disk.transport.try_lock() else {
        defer(storage, |d| {
            d.completions.push((dispatched, status)).map_err(drop)
        });
        return;
    };
    let mem = memory_of(item.partition);
    let (_, fx) = transport.with_device(&mem, |blk, ctx| blk.complete(item.token, status, ctx));
    drop(transport);
    storage.sched.lock().complete(dispatched.id);
    let p = &hv().partitions[item.partition];
    if fx.irq == Some(true) {
        partition::raise_virtual_spi(p, item.disk.intid());
    }
    if fx.notify.is_some() {
        item.disk.request_refill(p);
    }
}

/// Puts off work until the partition's transport is free (see
/// [`Deferred`]). `push` cannot fail: the lists hold dispatched requests
/// only, no more than the scheduler lets be in flight.
fn defer(storage: &StorageDevice, push: impl FnOnce(&mut Deferred) -> Result<(), ()>) {
    if push(&mut storage.deferred.lock()).is_err() {
        log::error!("storage {}: deferred work lost", storage.name);
    }
    storage.deferred_pending.store(true, Ordering::Release);
}
