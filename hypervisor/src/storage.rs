//! Physical block devices the hypervisor mediates (`[[storage]]` in the
//! config): opening the virtio-blk device and finding the partitions'
//! extents in its GPT. Physical I/O happens only on the device's home core
//! (see docs/architecture.md).

use crate::arch::cpu;
use crate::arch::dma::{self, El2Hal};
use crate::arch::guest_mem::PartitionMemory;
use crate::runtime::{self, PartitionRt, hv};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use config::layout;
use config::model::{Disk, DiskExtent, Storage};
use core::sync::atomic::Ordering;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use log::info;
use shared_devices::gpt::{self, Extent, Header};
use shared_devices::virtio::blk::{BackendStatus, BlkToken, DiskConfig, PhysOp, VirtioBlk};
use shared_devices::virtio::blk::{MAX_REQUEST_BYTES, SEG_MAX};
use shared_devices::virtio::memory::GuestMemory;
use shared_devices::virtio::mmio::Effects;
use shared_devices::virtio::mmio::MmioTransport as MmioTransport2;
use shared_devices::virtio::queue::Region;
use shared_devices::virtio::sched::Dispatch;
use shared_devices::virtio::sched::{Limits, Scheduler};
use spin::Mutex;
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::MmioTransport;

pub struct PhysicalDisk {
    blk: VirtIOBlk<El2Hal, MmioTransport<'static>>,
}

impl PhysicalDisk {
    /// The next request the device has completed, if any.
    pub fn peek_used(&mut self) -> Option<u16> {
        self.blk.peek_used()
    }

    /// Lowers the device's interrupt line (its interrupt status is read and
    /// acknowledged).
    pub fn ack_interrupt(&mut self) {
        let _ = self.blk.ack_interrupt();
    }
}

impl PhysicalDisk {
    /// Initialises the virtio-blk device in the virtio-mmio frame at `base`.
    pub fn open(base: u64, size: u64) -> Result<PhysicalDisk, String> {
        let transport = dma::mmio_transport(base, size)
            .map_err(|e| format!("virtio-mmio at {base:#x}: {e:?}"))?;
        let blk =
            VirtIOBlk::new(transport).map_err(|e| format!("virtio-blk at {base:#x}: {e:?}"))?;
        Ok(PhysicalDisk { blk })
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.blk.capacity()
    }

    pub fn read_only(&self) -> bool {
        self.blk.readonly()
    }

    /// Blocking read of whole sectors (boot-time use: the GPT).
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), String> {
        self.blk
            .read_blocks(lba as usize, buf)
            .map_err(|e| format!("read at LBA {lba}: {e:?}"))
    }

    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), String> {
        self.blk
            .write_blocks(lba as usize, buf)
            .map_err(|e| format!("write at LBA {lba}: {e:?}"))
    }

    pub fn flush(&mut self) -> Result<(), String> {
        self.blk.flush().map_err(|e| format!("flush: {e:?}"))
    }

    /// Finds the GPT partition called `name`.
    pub fn gpt_extent(&mut self, name: &str) -> Result<Option<Extent>, String> {
        let mut sector = [0u8; SECTOR_SIZE];
        self.read(0, &mut sector)?;
        gpt::check_protective_mbr(&sector).map_err(|e| format!("GPT: {e}"))?;
        self.read(1, &mut sector)?;
        let header = Header::parse(&sector).map_err(|e| format!("GPT: {e}"))?;
        header
            .check_disk_size(self.sectors())
            .map_err(|e| format!("GPT: {e}"))?;
        let mut entries = vec![0u8; header.entries_sectors() as usize * SECTOR_SIZE];
        self.read(header.entries_lba(), &mut entries)?;
        gpt::find_by_name(&header, &entries[..header.entries_len()], name)
            .map_err(|e| format!("GPT: {e}"))
    }
}

// ---- the storage mediator ----

/// A request between the partition's virtio-blk model and the physical
/// disk: whose it is and which of its disks.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub partition: usize,
    pub disk: usize,
    pub token: BlkToken,
    /// Counter value when it was queued (how long it waited to dispatch).
    pub queued_at: u64,
}

/// Partitions a storage device can serve (scheduler queues).
pub const MAX_PARTITIONS: usize = 8;
/// Requests waiting per partition.
const DEPTH: usize = 64;
/// Physical requests in flight at most (virtio-drivers' queue has 16
/// descriptors, 3 per request); with `others_in_flight` = 1 below, three
/// are always kept for the highest-priority partition.
const IN_FLIGHT: usize = 4;

pub type Sched = Scheduler<Item, MAX_PARTITIONS, DEPTH, IN_FLIGHT>;

/// A mediated physical disk (`[[storage]]`).
pub struct StorageRt {
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
}

/// The temporal-isolation record of one disk: the most lower-priority
/// requests a top-partition request found in flight when it was
/// dispatched (the scheduler keeps this at or below `K`), and its longest
/// wait from being queued to being dispatched. New highs are logged (the
/// wait only from [`WAIT_REPORT_US`] on), so the log shows the worst case
/// a run met.
#[derive(Default)]
pub struct TopWaits {
    behind: AtomicUsize,
    wait_us: AtomicU64,
}

/// Top-partition waits below this are not worth a log line.
pub const WAIT_REPORT_US: u64 = 1000;

/// One of a partition's virtual disks: virtio-blk on virtio-mmio slot n.
pub struct VirtDisk {
    pub storage: usize,
    pub transport: Mutex<MmioTransport2<VirtioBlk>>,
}

/// Opens a `[[storage]]` device for the hypervisor's partitions, with a
/// scheduler queue per partition at the partition's priority.
pub fn open_storage(
    desc: &Storage,
    home_cpu: usize,
    priorities: &[u8],
) -> Result<StorageRt, String> {
    let region = desc
        .regions
        .first()
        .ok_or("storage device has no registers")?;
    let mut disk = PhysicalDisk::open(region.base, region.size)?;
    // Completions interrupt the home core, which then finishes them; it
    // never spins waiting for the device (except for flushes, below).
    disk.blk.enable_interrupts();
    info!(
        "storage {}: virtio-blk at {:#x}, {} MiB{}, I/O on cpu {home_cpu}",
        desc.name,
        region.base,
        disk.sectors() >> 11,
        if disk.read_only() { ", read-only" } else { "" }
    );
    // The safety partition may wait behind at most one lower-priority
    // physical request (K = 1); a starved queue gets a turn after 8 passes.
    let limits = Limits {
        in_flight: IN_FLIGHT,
        others_in_flight: 1,
        starvation: 8,
    };
    let sched = Sched::new(priorities, limits).map_err(|e| format!("scheduler: {e:?}"))?;
    Ok(StorageRt {
        name: desc.name,
        home_cpu,
        disk: Mutex::new(disk),
        sched: Mutex::new(sched),
        work: AtomicBool::new(false),
        most_in_flight: AtomicUsize::new(0),
        top_waits: TopWaits::default(),
        intid: desc.interrupts.first().copied(),
        in_flight: Mutex::new(Vec::new()),
    })
}

/// The virtual disk a partition's `disk` entry describes, its extent
/// resolved on the physical disk (GPT name or LBA range).
pub fn open_virt_disk(
    storage: &StorageRt,
    index: usize,
    d: &Disk,
    partition: &str,
) -> Result<VirtDisk, String> {
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
    let mut cfg = DiskConfig::new(start, sectors);
    cfg.read_only = d.read_only || phys.read_only();
    cfg.write_zeroes = !cfg.read_only;
    // GET_ID: the partition's name (zero padded, as the spec allows).
    for (slot, byte) in cfg.id.iter_mut().zip(partition.bytes()) {
        *slot = byte;
    }
    let blk =
        VirtioBlk::new(cfg, capacity).map_err(|e| format!("disk LBA {start}+{sectors}: {e:?}"))?;
    info!(
        "partition {partition}: disk {index} = {} LBA {start}..{} ({} MiB){}",
        storage.name,
        start + sectors,
        sectors >> 11,
        if cfg.read_only { ", read-only" } else { "" }
    );
    Ok(VirtDisk {
        storage: index,
        transport: Mutex::new(MmioTransport2::new(blk)),
    })
}

/// Runs one physical request synchronously: data moves between the disk and
/// the partition's buffers through a bounce buffer, so the physical device
/// never sees guest memory.
pub fn execute(
    disk: &mut PhysicalDisk,
    op: PhysOp,
    lba: u64,
    sectors: u64,
    segments: &[Region],
    mem: &dyn GuestMemory,
) -> BackendStatus {
    let bytes = (sectors * SECTOR_SIZE as u64) as usize;
    let buffer = || bounce_buffer(bytes).ok_or_else(|| format!("no memory for {bytes} bytes"));
    let result = match op {
        PhysOp::Read => buffer().and_then(|mut buf| {
            disk.read(lba, &mut buf)
                .and_then(|()| scatter(&buf, segments, mem))
        }),
        PhysOp::Write { durable } => buffer().and_then(|mut buf| {
            gather(&mut buf, segments, mem)
                .and_then(|()| disk.write(lba, &buf))
                .and_then(|()| if durable { disk.flush() } else { Ok(()) })
        }),
        PhysOp::Flush => disk.flush(),
        PhysOp::WriteZeroes { .. } => buffer().and_then(|buf| disk.write(lba, &buf)),
        PhysOp::Discard => return BackendStatus::Unsupported,
    };
    match result {
        Ok(()) => BackendStatus::Ok,
        Err(e) => {
            log::warn!("storage: {e}");
            BackendStatus::IoError
        }
    }
}

/// A zeroed buffer for one request's data. The block model keeps every
/// request within `MAX_REQUEST_BYTES`, so with `IN_FLIGHT` requests this
/// stays bounded; still, a heap that cannot give it fails the request
/// (logged) instead of the hypervisor.
fn bounce_buffer(bytes: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    if bytes as u64 > MAX_REQUEST_BYTES || buf.try_reserve_exact(bytes).is_err() {
        log::error!("storage: no bounce buffer of {bytes} bytes for a request");
        return None;
    }
    buf.resize(bytes, 0);
    Some(buf)
}

fn scatter(buf: &[u8], segments: &[Region], mem: &dyn GuestMemory) -> Result<(), String> {
    let mut at = 0;
    for s in segments {
        let end = at + s.len as usize;
        mem.write(s.gpa, &buf[at..end])
            .map_err(|e| format!("guest buffer {:#x}: {e:?}", e.gpa))?;
        at = end;
    }
    Ok(())
}

fn gather(buf: &mut [u8], segments: &[Region], mem: &dyn GuestMemory) -> Result<(), String> {
    let mut at = 0;
    for s in segments {
        let end = at + s.len as usize;
        mem.read(s.gpa, &mut buf[at..end])
            .map_err(|e| format!("guest buffer {:#x}: {e:?}", e.gpa))?;
        at = end;
    }
    Ok(())
}

/// The interrupt of virtio slot `slot`.
pub fn slot_intid(slot: usize) -> u32 {
    layout::VIRTIO_FIRST_INTID + slot as u32
}

/// A guest access to the registers of its virtio-blk disk `slot` (a read
/// when `write` is `None`); returns the value read.
pub fn mmio(p: &PartitionRt, slot: usize, offset: u64, size: u8, write: Option<u64>) -> u64 {
    let hv = hv();
    let disk = &p.disks[slot];
    let storage = &hv.storage[disk.storage];
    let mem = PartitionMemory { map: p.desc.memory };
    let mut transport = disk.transport.lock();
    let broken_before = transport.status() & NEEDS_RESET != 0;
    let (value, mut fx) = match write {
        Some(v) => (0, transport.write(offset, size as usize, v)),
        None => (transport.read(offset, size as usize), Effects::default()),
    };
    // Parse what the driver queued: the partition's own work, on its own core.
    for _ in 0..NOTIFY_ROUNDS {
        let Some(queue) = fx.notify.take() else { break };
        fx = fx.and(transport.notify_queue(queue, &mem));
    }
    let mut queued = false;
    while let Some(token) = transport.device_mut().take_pending() {
        let item = Item {
            partition: p.index,
            disk: slot,
            token,
            queued_at: cpu::counter(),
        };
        if storage.sched.lock().enqueue(p.index, item).is_ok() {
            queued = true;
        } else {
            let (_, more) = transport.with_device(&mem, |blk, ctx| {
                blk.complete(token, BackendStatus::IoError, ctx)
            });
            fx = fx.and(more);
        }
    }
    let broken = !broken_before && transport.status() & NEEDS_RESET != 0;
    drop(transport);
    if broken {
        log::warn!(
            "partition {}: disk {slot}: malformed virtqueue request; device needs reset",
            p.name()
        );
    }
    if fx.reset {
        drop_queued(storage, p.index);
    }
    if fx.irq == Some(true) {
        runtime::raise_virtual_spi(p, slot_intid(slot));
    }
    if queued {
        storage.work.store(true, Ordering::Release);
        if storage.home_cpu == cpu::current() {
            // This partition's core is the disk's home: it does the work.
            service();
        } else {
            runtime::kick(storage.home_cpu, 0);
        }
    }
    value
}

/// virtio device status: DEVICE_NEEDS_RESET (the device gave up on a
/// malformed queue).
const NEEDS_RESET: u32 = 0x40;

/// Rounds of queue processing per notification; a driver that keeps the
/// device busy longer gets the rest on its next notification.
const NOTIFY_ROUNDS: usize = 8;

/// Completes (as orphans, writing nothing) the requests of `partition`
/// still waiting for `storage`: after a device reset or partition stop.
fn drop_queued(storage: &StorageRt, partition: usize) {
    let mut dropped = heapless::Vec::<Item, DEPTH>::new();
    storage.sched.lock().cancel(partition, |item| {
        let _ = dropped.push(item);
    });
    let p = &hv().partitions[partition];
    let mem = PartitionMemory { map: p.desc.memory };
    for item in dropped {
        let mut t = p.disks[item.disk].transport.lock();
        // Orphaned by the reset: completing only frees the slot, no
        // interrupt follows.
        let _ = t.with_device(&mem, |blk, ctx| {
            blk.complete(item.token, BackendStatus::IoError, ctx)
        });
    }
}

/// Level of virtio slot `slot`'s interrupt line.
pub fn line_high(p: &PartitionRt, slot: usize) -> bool {
    p.disks
        .get(slot)
        .is_some_and(|d| d.transport.lock().irq_level())
}

/// A physical request on the device: the buffers virtio-drivers lends to
/// the device until it completes (boxed, so they never move).
struct InFlight {
    dispatched: Dispatch<Item>,
    token: u16,
    write: bool,
    req: Box<BlkReq>,
    resp: Box<BlkResp>,
    buf: Vec<u8>,
    segments: heapless::Vec<Region, SEG_MAX>,
}

/// On the home core, whenever it is woken (a partition queued work, the
/// device interrupted) or polls: starts what the scheduler allows (several
/// requests in flight), finishes what the device has completed, and
/// starts more as slots free up. Never waits for the device except for
/// requests that must run alone (see [`start`]). Returns whether requests
/// are still on the device (their completion interrupt will come).
pub fn service() -> bool {
    let hv = hv();
    let me = cpu::current();
    let mut busy = false;
    for storage in hv.storage.iter().filter(|s| s.home_cpu == me) {
        let mut in_flight = storage.in_flight.lock();
        if !storage.work.swap(false, Ordering::AcqRel) && in_flight.is_empty() {
            continue;
        }
        loop {
            dispatch(storage, &mut in_flight);
            if !harvest(storage, &mut in_flight) {
                break;
            }
        }
        busy |= !in_flight.is_empty();
    }
    busy
}

/// A physical interrupt taken on this core: if it is a storage device's,
/// lowers its line and marks the device for [`service`]; `false` if it is
/// no storage device's.
pub fn interrupt(intid: u32) -> bool {
    let Some(storage) = hv().storage.iter().find(|s| s.intid == Some(intid)) else {
        return false;
    };
    storage.disk.lock().ack_interrupt();
    storage.work.store(true, Ordering::Release);
    true
}

/// Starts every request the scheduler lets go now.
fn dispatch(storage: &StorageRt, in_flight: &mut Vec<InFlight>) {
    // (The scheduler's lock must not be held across `start`, which
    // completes requests itself.)
    loop {
        let next = {
            let mut sched = storage.sched.lock();
            sched.dispatch().map(|d| {
                let behind = sched.is_top(d.partition).then(|| sched.others_in_flight());
                (d, behind)
            })
        };
        let Some((dispatched, behind)) = next else {
            break;
        };
        if let Some(behind) = behind {
            note_top_dispatch(storage, &dispatched, behind);
        }
        if let Some(started) = start(storage, dispatched, in_flight) {
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
/// met: `behind` lower-priority requests in flight, and its wait since it
/// was queued.
fn note_top_dispatch(storage: &StorageRt, dispatched: &Dispatch<Item>, behind: usize) {
    let name = || hv().partitions[dispatched.partition].name();
    let waits = &storage.top_waits;
    if behind > waits.behind.fetch_max(behind, Ordering::Relaxed) {
        info!(
            "storage {}: a request of partition {} was dispatched behind {behind} \
             lower-priority request(s) (new high)",
            storage.name,
            name()
        );
    }
    let ticks = cpu::counter().saturating_sub(dispatched.item.queued_at);
    let wait_us = ticks.saturating_mul(1_000_000) / cpu::counter_frequency().max(1);
    if wait_us >= WAIT_REPORT_US && wait_us > waits.wait_us.fetch_max(wait_us, Ordering::Relaxed) {
        info!(
            "storage {}: a request of partition {} waited {wait_us} us to be dispatched (new high)",
            storage.name,
            name()
        );
    }
}

/// Finishes whatever the device has completed since the last look;
/// whether it finished anything.
fn harvest(storage: &StorageRt, in_flight: &mut Vec<InFlight>) -> bool {
    let mut finished = false;
    loop {
        let done = storage.disk.lock().peek_used();
        let Some(token) = done else { return finished };
        match in_flight.iter().position(|f| f.token == token) {
            Some(i) => {
                finish(storage, in_flight.swap_remove(i));
                finished = true;
            }
            None => {
                log::error!(
                    "storage {}: device completed unknown request {token}",
                    storage.name
                );
                return finished;
            }
        }
    }
}

/// Starts a dispatched request: reads and writes go to the device without
/// waiting; the rest (flush, a write that must be durable, write-zeroes)
/// waits until everything in flight has finished, then runs to completion
/// here, so a flush covers every write completed before it.
fn start(
    storage: &StorageRt,
    dispatched: Dispatch<Item>,
    in_flight: &mut Vec<InFlight>,
) -> Option<InFlight> {
    let hv = hv();
    let item = dispatched.item;
    let p = &hv.partitions[item.partition];
    let mem = PartitionMemory { map: p.desc.memory };
    // Copy the request out so the partition's device is not locked while
    // the physical disk works.
    let request = p.disks[item.disk]
        .transport
        .lock()
        .device()
        .physical_request(item.token)
        .and_then(|r| {
            let segments = heapless::Vec::<Region, SEG_MAX>::from_slice(r.segments).ok()?;
            Some((r.op, r.lba, r.sectors, segments))
        });
    let Some((op, lba, sectors, segments)) = request else {
        // Orphaned by a reset: nothing to do.
        complete(storage, dispatched, BackendStatus::IoError);
        return None;
    };
    let bytes = (sectors * SECTOR_SIZE as u64) as usize;
    let mut req = Box::new(BlkReq::default());
    let mut resp = Box::new(BlkResp::default());
    let data = if matches!(op, PhysOp::Read | PhysOp::Write { .. }) {
        bytes
    } else {
        0
    };
    let Some(mut buf) = bounce_buffer(data) else {
        complete(storage, dispatched, BackendStatus::IoError);
        return None;
    };
    let mut disk = storage.disk.lock();
    let started = match op {
        PhysOp::Read => {
            // SAFETY: the buffers are boxed or heap-allocated, kept in the
            // returned InFlight untouched until the device completes them.
            unsafe {
                disk.blk
                    .read_blocks_nb(lba as usize, &mut req, &mut buf, &mut resp)
            }
        }
        PhysOp::Write { durable: false } => match gather(&mut buf, &segments, &mem) {
            // SAFETY: as for reads.
            Ok(()) => unsafe {
                disk.blk
                    .write_blocks_nb(lba as usize, &mut req, &buf, &mut resp)
            },
            Err(e) => {
                drop(disk);
                log::warn!("storage: {e}");
                complete(storage, dispatched, BackendStatus::IoError);
                return None;
            }
        },
        _ => {
            drop(disk);
            // A barrier: what is in flight finishes first, so a flush
            // covers every write completed before it.
            while !in_flight.is_empty() {
                if !harvest(storage, in_flight) {
                    core::hint::spin_loop();
                }
            }
            let status = execute(&mut storage.disk.lock(), op, lba, sectors, &segments, &mem);
            complete(storage, dispatched, status);
            return None;
        }
    };
    match started {
        Ok(token) => Some(InFlight {
            dispatched,
            token,
            write: op != PhysOp::Read,
            req,
            resp,
            buf,
            segments,
        }),
        Err(e) => {
            drop(disk);
            log::warn!("storage {}: could not start a request: {e:?}", storage.name);
            complete(storage, dispatched, BackendStatus::IoError);
            None
        }
    }
}

/// The device finished `f`: collect it from the driver, copy read data to
/// the partition, complete it to the partition's virtio-blk.
fn finish(storage: &StorageRt, mut f: InFlight) {
    let mut disk = storage.disk.lock();
    // SAFETY: the same buffers as at submission, untouched since.
    let result = unsafe {
        if f.write {
            disk.blk
                .complete_write_blocks(f.token, &f.req, &f.buf, &mut f.resp)
        } else {
            disk.blk
                .complete_read_blocks(f.token, &f.req, &mut f.buf, &mut f.resp)
        }
    };
    drop(disk);
    let p = &hv().partitions[f.dispatched.item.partition];
    let mem = PartitionMemory { map: p.desc.memory };
    let status = match result {
        Ok(()) if f.write => BackendStatus::Ok,
        Ok(()) => match scatter(&f.buf, &f.segments, &mem) {
            Ok(()) => BackendStatus::Ok,
            Err(e) => {
                log::warn!("storage: {e}");
                BackendStatus::IoError
            }
        },
        Err(e) => {
            log::warn!("storage {}: physical request failed: {e:?}", storage.name);
            BackendStatus::IoError
        }
    };
    complete(storage, f.dispatched, status);
}

/// Reports a physical request's end to the partition and the scheduler.
fn complete(storage: &StorageRt, dispatched: Dispatch<Item>, status: BackendStatus) {
    let item = dispatched.item;
    let p = &hv().partitions[item.partition];
    let mem = PartitionMemory { map: p.desc.memory };
    let (_, fx) = p.disks[item.disk]
        .transport
        .lock()
        .with_device(&mem, |blk, ctx| blk.complete(item.token, status, ctx));
    storage.sched.lock().complete(dispatched.id);
    if fx.irq == Some(true) {
        runtime::raise_virtual_spi(p, slot_intid(item.disk));
    }
}

/// Before a partition's memory is scrubbed: reset its virtual disks, drop
/// its queued requests, and wait until none of its requests is in flight.
pub fn quiesce(p: &PartitionRt) {
    let hv = hv();
    for disk in &p.disks {
        // The partition is stopped: nobody is left to interrupt.
        let _ = disk.transport.lock().reset();
    }
    for storage in &hv.storage {
        drop_queued(storage, p.index);
        while storage.sched.lock().in_flight_of(p.index) > 0 {
            if storage.home_cpu == cpu::current() {
                // Nobody else finishes this core's requests.
                storage.work.store(true, Ordering::Release);
                service();
            } else {
                core::hint::spin_loop();
            }
        }
    }
}
