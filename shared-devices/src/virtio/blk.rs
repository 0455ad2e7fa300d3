//! virtio-blk (VIRTIO 1.2 §5.2): the device model of the storage mediator.
//!
//! Each partition sees its own virtual disk: a window `[start, start +
//! sectors)` of a physical disk, optionally read-only. [`VirtioBlk`] turns
//! the driver's requests into physical requests on that window and never
//! lets one out of it: a request that reaches outside the window (or is
//! malformed) fails with VIRTIO_BLK_S_IOERR before anything is started,
//! one the model does not support with VIRTIO_BLK_S_UNSUPP, a write to a
//! read-only disk with IOERR.
//!
//! Offered: VERSION_1, INDIRECT_DESC, EVENT_IDX, SIZE_MAX, SEG_MAX,
//! BLK_SIZE, FLUSH (what the Linux virtio_blk driver uses), plus RO,
//! DISCARD and WRITE_ZEROES as the disk's configuration says. One request
//! queue of [`QUEUE_SIZE`] entries. No request covers more than
//! [`MAX_REQUEST_BYTES`] (segments of at most [`SIZE_MAX`] bytes, at most
//! [`SEG_MAX`] of them; discard and write-zeroes ranges as configured), so
//! a backend that buffers requests needs bounded memory per request, and a
//! partition cannot make it allocate more whatever it submits.
//!
//! Life of a request:
//! 1. The driver notifies; [`VirtioBlk`] (through
//!    [`super::mmio::MmioTransport::notify_queue`]) pops chains, parses and
//!    checks them. Requests that need no physical work (errors, GET_ID,
//!    an empty discard, a flush on a read-only disk) complete at once.
//!    Valid ones take one of [`SLOTS`] slots; when all are taken the model
//!    stops consuming the ring and resumes as slots free up.
//! 2. The hypervisor takes them with [`VirtioBlk::take_pending`] and queues
//!    them in the device's [`super::sched::Scheduler`] under the
//!    partition's index.
//! 3. For each dispatch, [`VirtioBlk::physical_request`] gives the
//!    physical request (on physical sectors, data as guest-physical
//!    segments already checked against the partition's RAM) for the
//!    [`BlockBackend`].
//! 4. When the backend completes it, the scheduler maps the id back to the
//!    partition and token and [`VirtioBlk::complete`] (through
//!    [`super::mmio::MmioTransport::with_device`]) writes the status byte
//!    and returns the chain to the driver.
//!
//! Data movement is the backend's choice. A zero-copy backend translates
//! the segments (guest-physical, already checked against the partition's
//! RAM) to host-physical addresses for the disk's DMA. A bounce-buffer
//! backend copies a write's segments in through the partition's
//! [`GuestMemory`] when it submits, and a read's segments out when the
//! disk is done, before calling `complete`, and only if
//! [`VirtioBlk::physical_request`] still returns the request: after a
//! reset it returns `None` and nothing may be written.
//!
//! Reset (the driver writes Status = 0, or the partition restarts) forgets
//! every request. Those already handed to the scheduler become orphans:
//! their slots stay taken until they come back through `complete`, which
//! then writes nothing. The hypervisor should cancel the partition's
//! queued requests in the scheduler ([`super::sched::Scheduler::cancel`])
//! and complete each cancelled token at once. Physical requests already on
//! the device still run: with a zero-copy backend, the partition's memory
//! must not be reused (scrubbed, reloaded) until [`VirtioBlk::in_flight`]
//! is 0.

use super::device::{DeviceContext, VirtioDevice, feature, id};
use super::memory::GuestMemory;
use super::queue::{ChainBuffers, ChainToken, Region};
use super::sched::RequestId;

/// Bytes per sector: the unit of every sector number in the protocol.
pub const SECTOR: u64 = 512;
/// QueueNumMax of the request queue.
pub const QUEUE_SIZE: u16 = 128;
/// Data segments per request (`seg_max`): as many as a chain of the
/// full queue holds beside the header and the status byte (a chain may
/// not be longer than the queue, §2.7.5.2). Linux puts a page or a run
/// of contiguous pages in each, so a 1 MiB transfer is two or three
/// requests rather than eight: fewer requests, fewer exits and
/// interrupts. (Each slot keeps its request's segments: more would make
/// the model too big to build on a 64 KiB stack, see [`SLOTS`].)
pub const SEG_MAX: usize = QUEUE_SIZE as usize - 2;
/// Bytes per data segment at most (`size_max`): Linux's virtio_blk builds
/// its requests within it; a larger segment fails with IOERR.
pub const SIZE_MAX: u32 = 64 * 1024;
/// Data bytes per request at most, and the default limit of one discard
/// or write-zeroes range.
pub const MAX_REQUEST_BYTES: u64 = SEG_MAX as u64 * SIZE_MAX as u64;
/// Requests held at once per virtual disk (parsed, waiting for or on the
/// physical disk: more than the scheduler lets out, so a partition's
/// queue stays full). Each keeps its segments, so this times [`SEG_MAX`]
/// sizes the model; the hypervisor builds it on a 64 KiB boot stack
/// (a test keeps it under 40 KiB).
pub const SLOTS: usize = 16;
/// Length of the device ID string (GET_ID).
pub const ID_BYTES: usize = 20;
/// Ranges per discard / write-zeroes request (`max_*_seg`).
const MAX_RANGES: u32 = 1;
/// Buffers per direction a request may use: the data segments plus the
/// header (readable) or status (writable) in buffers of their own.
const BUFFERS: usize = SEG_MAX + 1;

/// Feature bits (§5.2.3).
pub mod features {
    pub const SIZE_MAX: u64 = 1 << 1;
    pub const SEG_MAX: u64 = 1 << 2;
    pub const RO: u64 = 1 << 5;
    pub const BLK_SIZE: u64 = 1 << 6;
    pub const FLUSH: u64 = 1 << 9;
    pub const DISCARD: u64 = 1 << 13;
    pub const WRITE_ZEROES: u64 = 1 << 14;
}

/// Request types (§5.2.6).
pub mod req {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    pub const GET_ID: u32 = 8;
    pub const DISCARD: u32 = 11;
    pub const WRITE_ZEROES: u32 = 13;
}

/// Status byte values.
pub mod status {
    pub const OK: u8 = 0;
    pub const IOERR: u8 = 1;
    pub const UNSUPP: u8 = 2;
}

/// A partition's virtual disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskConfig {
    /// First physical sector of the window.
    pub start: u64,
    /// Size of the window (the virtual disk's capacity), in sectors.
    pub sectors: u64,
    pub read_only: bool,
    /// Logical block size reported to the driver (a power of two from 512
    /// to 64 KiB; the window must be aligned to it).
    pub blk_size: u32,
    /// Offer DISCARD / WRITE_ZEROES, with these limits per request (in
    /// sectors, non-zero).
    pub discard: bool,
    pub write_zeroes: bool,
    pub max_discard_sectors: u32,
    pub max_write_zeroes_sectors: u32,
    /// The device ID string (NUL-padded).
    pub id: [u8; ID_BYTES],
}

impl DiskConfig {
    /// A read-write window with 512-byte blocks and no discard or write
    /// zeroes.
    pub const fn new(start: u64, sectors: u64) -> Self {
        Self {
            start,
            sectors,
            read_only: false,
            blk_size: 512,
            discard: false,
            write_zeroes: false,
            max_discard_sectors: (MAX_REQUEST_BYTES / SECTOR) as u32,
            max_write_zeroes_sectors: (MAX_REQUEST_BYTES / SECTOR) as u32,
            id: [0; ID_BYTES],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskConfigError {
    /// The window does not fit in the physical disk.
    OutsideDisk,
    /// `blk_size` is not a power of two in 512..=65536, or the window is
    /// not aligned to it.
    BlockSize,
    /// A discard or write-zeroes limit of 0.
    Limits,
}

/// What a physical request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysOp {
    /// Disk to the segments.
    Read,
    /// Segments to disk. `durable`: the driver did not negotiate FLUSH, so
    /// the write must be on stable storage when it completes (§5.2.6.4).
    Write {
        durable: bool,
    },
    /// Everything completed before is made durable.
    Flush,
    Discard,
    /// The range reads as zeroes afterwards; `unmap` allows deallocating.
    WriteZeroes {
        unmap: bool,
    },
}

/// A request for the physical disk, on physical sectors. For Read and
/// Write, `segments` are the guest-physical buffers of the requesting
/// partition, in order, adding up to `sectors * 512` bytes, each checked
/// to lie in its RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRequest<'a> {
    pub op: PhysOp,
    pub lba: u64,
    pub sectors: u64,
    pub segments: &'a [Region],
}

impl PhysRequest<'_> {
    /// The bytes it moves or changes on the disk: what the scheduler's
    /// byte budget counts. A flush names no range: 0.
    pub fn bytes(&self) -> u64 {
        match self.op {
            PhysOp::Flush => 0,
            _ => self.sectors.saturating_mul(SECTOR),
        }
    }
}

/// How a physical request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendStatus {
    Ok,
    IoError,
    /// The physical disk does not do this (e.g. discard).
    Unsupported,
}

/// The physical side: starts requests; each completes later (in any
/// order, several in flight) with the same id, which the hypervisor
/// passes to the scheduler's `complete`.
pub trait BlockBackend {
    /// Starts `req`. An error means it was not started (and will not
    /// complete): the caller completes it at once with that status.
    fn submit(&mut self, id: RequestId, req: &PhysRequest<'_>) -> Result<(), BackendStatus>;
}

/// Names a request held by a [`VirtioBlk`] (slot and generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkToken {
    slot: u16,
    generation: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    /// Parsed, waiting for `take_pending`.
    Parsed,
    /// Handed to the hypervisor (queued in the scheduler or on the disk).
    Submitted,
    /// Handed on before a reset; nothing is written when it completes.
    Orphaned,
}

#[derive(Clone, Debug)]
struct Slot {
    state: State,
    generation: u16,
    chain: Option<ChainToken>,
    op: PhysOp,
    lba: u64,
    sectors: u64,
    segments: heapless::Vec<Region, SEG_MAX>,
    status: u64,
    used_len: u32,
}

impl Slot {
    fn free(generation: u16) -> Self {
        Slot {
            state: State::Free,
            generation,
            chain: None,
            op: PhysOp::Flush,
            lba: 0,
            sectors: 0,
            segments: heapless::Vec::new(),
            status: 0,
            used_len: 0,
        }
    }
}

/// Counters for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Requests returned to the driver, by status.
    pub ok: u64,
    pub io_errors: u64,
    pub unsupported: u64,
    /// Chains without a status byte, returned with nothing written.
    pub no_status: u64,
    /// Times the driver broke the ring (DEVICE_NEEDS_RESET).
    pub broken_rings: u64,
}

/// What parsing a chain decided.
enum Parsed {
    /// Needs the physical disk: the slot is filled.
    Physical,
    /// Finished here with this status.
    Done(u8),
}

/// One partition's virtual disk.
pub struct VirtioBlk {
    cfg: DiskConfig,
    features: u64,
    slots: [Slot; SLOTS],
    pending: heapless::Deque<u16, SLOTS>,
    /// Stopped consuming the ring for lack of a free slot.
    stalled: bool,
    /// The driver broke the ring; nothing more until reset.
    broken: bool,
    stats: BlkStats,
}

impl VirtioBlk {
    /// The virtual disk `cfg` on a physical disk of `disk_sectors`.
    pub fn new(cfg: DiskConfig, disk_sectors: u64) -> Result<Self, DiskConfigError> {
        let end = cfg.start.checked_add(cfg.sectors);
        if end.is_none_or(|end| end > disk_sectors) {
            return Err(DiskConfigError::OutsideDisk);
        }
        let bs = cfg.blk_size;
        if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
            return Err(DiskConfigError::BlockSize);
        }
        let per_block = u64::from(bs) / SECTOR;
        if !cfg.start.is_multiple_of(per_block) || !cfg.sectors.is_multiple_of(per_block) {
            return Err(DiskConfigError::BlockSize);
        }
        if (cfg.discard && cfg.max_discard_sectors == 0)
            || (cfg.write_zeroes && cfg.max_write_zeroes_sectors == 0)
        {
            return Err(DiskConfigError::Limits);
        }
        Ok(Self {
            cfg,
            features: 0,
            slots: core::array::from_fn(|_| Slot::free(0)),
            pending: heapless::Deque::new(),
            stalled: false,
            broken: false,
            stats: BlkStats::default(),
        })
    }

    pub fn config(&self) -> &DiskConfig {
        &self.cfg
    }

    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// Requests held (parsed, submitted or orphaned): the partition's
    /// buffers may still be in use while this is not 0.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.state != State::Free).count()
    }

    /// The next parsed request, for the scheduler.
    pub fn take_pending(&mut self) -> Option<BlkToken> {
        let i = self.pending.pop_front()?;
        let s = &mut self.slots[usize::from(i)];
        s.state = State::Submitted;
        Some(BlkToken {
            slot: i,
            generation: s.generation,
        })
    }

    /// The physical request of a submitted token; `None` if it was
    /// orphaned by a reset (complete it at once) or is unknown.
    pub fn physical_request(&self, token: BlkToken) -> Option<PhysRequest<'_>> {
        let s = self.slot(token)?;
        if s.state != State::Submitted {
            return None;
        }
        Some(PhysRequest {
            op: s.op,
            lba: s.lba,
            sectors: s.sectors,
            segments: &s.segments,
        })
    }

    /// The physical request `token` finished with `result`: reports it to
    /// the driver (unless orphaned) and frees the slot. Unknown or stale
    /// tokens are ignored.
    pub fn complete(
        &mut self,
        token: BlkToken,
        result: BackendStatus,
        ctx: &mut DeviceContext<'_>,
    ) {
        let Some(s) = self.slot(token) else {
            return;
        };
        let (state, chain, at, used_len) = (s.state, s.chain, s.status, s.used_len);
        if !matches!(state, State::Submitted | State::Orphaned) {
            return;
        }
        self.release(usize::from(token.slot));
        if state == State::Orphaned {
            return;
        }
        let st = match result {
            BackendStatus::Ok => status::OK,
            BackendStatus::IoError => status::IOERR,
            BackendStatus::Unsupported => status::UNSUPP,
        };
        if let Some(chain) = chain {
            self.finish(chain, Some(at), st, used_len, ctx);
        }
        // The ring holds more than the slots took: a slot is free now, but
        // taking more means parsing the driver's ring, which is work the
        // partition caused. It is left to whoever handles the effects'
        // `notify` (the hypervisor does it on the partition's own core, not
        // on the core that completes physical requests for everybody).
        if self.stalled {
            ctx.more_work(0);
        }
    }

    fn slot(&self, token: BlkToken) -> Option<&Slot> {
        self.slots
            .get(usize::from(token.slot))
            .filter(|s| s.generation == token.generation)
    }

    fn release(&mut self, i: usize) {
        let generation = self.slots[i].generation.wrapping_add(1);
        self.slots[i] = Slot::free(generation);
    }

    fn negotiated(&self, bit: u64) -> bool {
        self.features & bit != 0
    }

    /// Writes the status byte (if there is one) and returns the chain.
    fn finish(
        &mut self,
        chain: ChainToken,
        status_at: Option<u64>,
        st: u8,
        used_len: u32,
        ctx: &mut DeviceContext<'_>,
    ) {
        let mut len = used_len;
        match status_at {
            // The byte lies in a device-writable buffer of this chain; if
            // the guest's map refuses it there is nothing to report to.
            Some(at) => {
                if ctx.mem().write(at, &[st]).is_err() {
                    len = 0;
                }
                match st {
                    status::OK => self.stats.ok += 1,
                    status::UNSUPP => self.stats.unsupported += 1,
                    _ => self.stats.io_errors += 1,
                }
            }
            None => {
                len = 0;
                self.stats.no_status += 1;
            }
        }
        if ctx.push(chain, len).is_err() {
            self.break_ring(ctx);
        }
    }

    fn break_ring(&mut self, ctx: &mut DeviceContext<'_>) {
        if !self.broken {
            self.stats.broken_rings += 1;
        }
        self.broken = true;
        ctx.needs_reset();
    }

    /// Consumes the ring while there are free slots, at most
    /// [`QUEUE_SIZE`] attempts per call: each costs at most `QUEUE_SIZE`
    /// descriptor reads, so one call is bounded whatever the driver does
    /// (even one that keeps refilling the ring, or flips `avail.idx` from
    /// another core); the rest is asked for with `more_work`.
    fn process(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = QUEUE_SIZE;
        while !self.broken {
            if budget == 0 {
                ctx.more_work(0);
                return;
            }
            budget -= 1;
            let Some(free) = self.slots.iter().position(|s| s.state == State::Free) else {
                self.stalled = true;
                return;
            };
            let chain = match ctx.pop(0) {
                Ok(Some(c)) => c,
                Ok(None) => match ctx.enable_notification(0) {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.stalled = false;
                        return;
                    }
                    Err(_) => return self.break_ring(ctx),
                },
                Err(_) => return self.break_ring(ctx),
            };
            let bufs = match ChainBuffers::<BUFFERS>::collect(chain, ctx.mem()) {
                Ok(b) => b,
                // A malformed chain: the ring can no longer be trusted.
                Err(_) => return self.break_ring(ctx),
            };
            // The status byte is the last device-writable byte (§5.2.6).
            // The used length covers the whole writable part, status
            // included (as QEMU reports it; Linux does not look at it).
            let status_at = bufs.last_writable_byte();
            let used_len = bufs.writable_len();
            let outcome = match status_at {
                Some(at) => self.parse(&bufs, at, free, ctx.mem()),
                None => Parsed::Done(status::IOERR),
            };
            match outcome {
                Parsed::Physical => {
                    let s = &mut self.slots[free];
                    s.state = State::Parsed;
                    s.chain = Some(bufs.token());
                    s.used_len = used_len;
                    // Cannot fail: there are as many places as slots.
                    let _ = self.pending.push_back(free as u16);
                }
                Parsed::Done(st) => self.finish(bufs.token(), status_at, st, used_len, ctx),
            }
        }
    }

    /// Checks one request and, if it needs the disk, fills slot `free`.
    fn parse(
        &mut self,
        bufs: &ChainBuffers<BUFFERS>,
        status_at: u64,
        free: usize,
        mem: &dyn GuestMemory,
    ) -> Parsed {
        use Parsed::Done;
        if bufs.overflowed() || bufs.readable_len() < 16 {
            return Done(status::IOERR);
        }
        let mut h = [0u8; 16];
        if bufs.read(mem, 0, &mut h).is_err() {
            return Done(status::IOERR);
        }
        let kind = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let sector = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        // Bytes after the header, and before the status byte.
        let data_out = bufs.readable_len() - 16;
        let data_in = bufs.writable_len() - 1;
        let ro = self.cfg.read_only;
        let (op, lba, sectors, segments) = match kind {
            req::IN | req::OUT => {
                let (len, write) = match kind {
                    req::IN if data_out == 0 => (data_in, false),
                    req::OUT if data_in == 0 && !ro => (data_out, true),
                    _ => return Done(status::IOERR),
                };
                if len == 0 || u64::from(len) % SECTOR != 0 {
                    return Done(status::IOERR);
                }
                let sectors = u64::from(len) / SECTOR;
                let Some(lba) = self.window(sector, sectors) else {
                    return Done(status::IOERR);
                };
                let segments = if write {
                    bufs.readable_range::<SEG_MAX>(16, len)
                } else {
                    bufs.writable_range::<SEG_MAX>(0, len)
                };
                let Ok(segments) = segments else {
                    return Done(status::IOERR);
                };
                if segments.iter().any(|r| r.len > SIZE_MAX) {
                    return Done(status::IOERR);
                }
                // The physical device will reach these directly; refuse
                // anything outside the partition's RAM now.
                if segments
                    .iter()
                    .any(|r| mem.check(r.gpa, u64::from(r.len)).is_err())
                {
                    return Done(status::IOERR);
                }
                let op = if write {
                    PhysOp::Write {
                        durable: !self.negotiated(features::FLUSH),
                    }
                } else {
                    PhysOp::Read
                };
                (op, lba, sectors, segments)
            }
            req::FLUSH if ro => return Done(status::OK),
            req::FLUSH => (PhysOp::Flush, 0, 0, heapless::Vec::new()),
            req::GET_ID => {
                let n = (data_in as usize).min(ID_BYTES);
                return match bufs.write(mem, 0, &self.cfg.id[..n]) {
                    Ok(()) => Done(status::OK),
                    Err(_) => Done(status::IOERR),
                };
            }
            req::DISCARD | req::WRITE_ZEROES => {
                let discard = kind == req::DISCARD;
                let (bit, max) = if discard {
                    (features::DISCARD, self.cfg.max_discard_sectors)
                } else {
                    (features::WRITE_ZEROES, self.cfg.max_write_zeroes_sectors)
                };
                if !self.negotiated(bit) {
                    return Done(status::UNSUPP);
                }
                if ro || data_in != 0 || data_out == 0 || !data_out.is_multiple_of(16) {
                    return Done(status::IOERR);
                }
                if data_out / 16 > MAX_RANGES {
                    return Done(status::IOERR);
                }
                let mut r = [0u8; 16];
                if bufs.read(mem, 16, &mut r).is_err() {
                    return Done(status::IOERR);
                }
                let start = u64::from_le_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]);
                let num = u32::from_le_bytes([r[8], r[9], r[10], r[11]]);
                let flags = u32::from_le_bytes([r[12], r[13], r[14], r[15]]);
                let unmap = flags & 1 != 0;
                // Unknown flags, and unmap on a discard (§5.2.6.4).
                if flags & !1 != 0 || (discard && unmap) {
                    return Done(status::UNSUPP);
                }
                if num > max {
                    return Done(status::IOERR);
                }
                let Some(lba) = self.window(start, u64::from(num)) else {
                    return Done(status::IOERR);
                };
                if num == 0 {
                    return Done(status::OK);
                }
                let op = if discard {
                    PhysOp::Discard
                } else {
                    PhysOp::WriteZeroes { unmap }
                };
                (op, lba, u64::from(num), heapless::Vec::new())
            }
            _ => return Done(status::UNSUPP),
        };
        let s = &mut self.slots[free];
        s.op = op;
        s.lba = lba;
        s.sectors = sectors;
        s.segments = segments;
        s.status = status_at;
        Parsed::Physical
    }

    /// The physical sector of `sectors` sectors at virtual `sector`, if
    /// they all lie inside the window.
    fn window(&self, sector: u64, sectors: u64) -> Option<u64> {
        let end = sector.checked_add(sectors)?;
        (end <= self.cfg.sectors).then(|| self.cfg.start + sector)
    }

    /// `struct virtio_blk_config` up to `write_zeroes_may_unmap`.
    fn config_bytes(&self) -> [u8; 60] {
        let mut c = [0u8; 60];
        let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
        put(0, &self.cfg.sectors.to_le_bytes());
        put(8, &SIZE_MAX.to_le_bytes());
        put(12, &(SEG_MAX as u32).to_le_bytes());
        put(20, &self.cfg.blk_size.to_le_bytes());
        if self.cfg.discard {
            put(36, &self.cfg.max_discard_sectors.to_le_bytes());
            put(40, &MAX_RANGES.to_le_bytes());
            put(44, &(self.cfg.blk_size / SECTOR as u32).to_le_bytes());
        }
        if self.cfg.write_zeroes {
            put(48, &self.cfg.max_write_zeroes_sectors.to_le_bytes());
            put(52, &MAX_RANGES.to_le_bytes());
        }
        c
    }
}

impl VirtioDevice for VirtioBlk {
    fn device_id(&self) -> u32 {
        id::BLOCK
    }

    fn device_features(&self) -> u64 {
        let mut f = feature::VERSION_1
            | feature::INDIRECT_DESC
            | feature::EVENT_IDX
            | features::SIZE_MAX
            | features::SEG_MAX
            | features::BLK_SIZE
            | features::FLUSH;
        if self.cfg.read_only {
            f |= features::RO;
        }
        if self.cfg.discard {
            f |= features::DISCARD;
        }
        if self.cfg.write_zeroes {
            f |= features::WRITE_ZEROES;
        }
        f
    }

    fn queue_count(&self) -> u16 {
        1
    }

    fn queue_max_size(&self, _queue: u16) -> u16 {
        QUEUE_SIZE
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let c = self.config_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            if let Some(v) = c.get(offset as usize + i) {
                *b = *v;
            }
        }
    }

    fn activate(&mut self, features: u64) {
        self.features = features;
    }

    fn queue_notify(&mut self, _queue: u16, ctx: &mut DeviceContext<'_>) {
        self.process(ctx);
    }

    fn reset(&mut self) {
        for i in 0..SLOTS {
            match self.slots[i].state {
                State::Free | State::Orphaned => {}
                State::Parsed => self.release(i),
                State::Submitted => self.slots[i].state = State::Orphaned,
            }
        }
        self.pending.clear();
        self.features = 0;
        self.stalled = false;
        self.broken = false;
    }
}

/// A physical disk in memory, for tests: requests wait until completed
/// one by one (in any order), and data moves between the disk and guest
/// memory then, as a DMA-capable disk would move it.
pub struct MemDisk<'d, const N: usize> {
    data: &'d mut [u8],
    queue: heapless::Vec<(RequestId, Owned), N>,
    /// Flushes and durable writes performed.
    pub flushes: u32,
    pub durable_writes: u32,
    /// Report discard and write zeroes as unsupported.
    pub no_discard: bool,
    /// Fail every request with an I/O error.
    pub failing: bool,
}

#[derive(Clone, Debug)]
struct Owned {
    op: PhysOp,
    lba: u64,
    sectors: u64,
    segments: heapless::Vec<Region, SEG_MAX>,
}

impl<'d, const N: usize> MemDisk<'d, N> {
    /// A disk of `data.len() / 512` sectors.
    pub fn new(data: &'d mut [u8]) -> Self {
        Self {
            data,
            queue: heapless::Vec::new(),
            flushes: 0,
            durable_writes: 0,
            no_discard: false,
            failing: false,
        }
    }

    pub fn data(&self) -> &[u8] {
        self.data
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Ids in flight, oldest first.
    pub fn ids(&self) -> impl Iterator<Item = RequestId> + '_ {
        self.queue.iter().map(|(id, _)| *id)
    }

    /// Performs request `id` with guest memory `mem` (the requesting
    /// partition's) and completes it.
    pub fn complete(&mut self, id: RequestId, mem: &dyn GuestMemory) -> Option<BackendStatus> {
        let i = self.queue.iter().position(|(q, _)| *q == id)?;
        let (_, r) = self.queue.remove(i);
        Some(self.execute(&r, mem))
    }

    fn execute(&mut self, r: &Owned, mem: &dyn GuestMemory) -> BackendStatus {
        if self.failing {
            return BackendStatus::IoError;
        }
        let range = r
            .lba
            .checked_mul(SECTOR)
            .zip(r.sectors.checked_mul(SECTOR))
            .and_then(|(at, len)| Some((at, at.checked_add(len)?)))
            .filter(|&(_, end)| end <= self.data.len() as u64);
        let Some((start, end)) = range else {
            return BackendStatus::IoError;
        };
        let (start, end) = (start as usize, end as usize);
        match r.op {
            PhysOp::Read | PhysOp::Write { .. } => {
                let total: u64 = r.segments.iter().map(|s| u64::from(s.len)).sum();
                if total != (end - start) as u64 {
                    return BackendStatus::IoError;
                }
                let mut at = start;
                for s in &r.segments {
                    let disk = &mut self.data[at..at + s.len as usize];
                    let moved = match r.op {
                        PhysOp::Read => mem.write(s.gpa, disk),
                        _ => mem.read(s.gpa, disk),
                    };
                    if moved.is_err() {
                        return BackendStatus::IoError;
                    }
                    at += s.len as usize;
                }
                if r.op == (PhysOp::Write { durable: true }) {
                    self.durable_writes += 1;
                }
            }
            PhysOp::Flush => self.flushes += 1,
            PhysOp::Discard | PhysOp::WriteZeroes { .. } => {
                if self.no_discard {
                    return BackendStatus::Unsupported;
                }
                self.data[start..end].fill(0);
            }
        }
        BackendStatus::Ok
    }
}

impl<const N: usize> BlockBackend for MemDisk<'_, N> {
    fn submit(&mut self, id: RequestId, req: &PhysRequest<'_>) -> Result<(), BackendStatus> {
        let mut segments = heapless::Vec::new();
        for s in req.segments {
            segments.push(*s).map_err(|_| BackendStatus::IoError)?;
        }
        let owned = Owned {
            op: req.op,
            lba: req.lba,
            sectors: req.sectors,
            segments,
        };
        self.queue
            .push((id, owned))
            .map_err(|_| BackendStatus::IoError)
    }
}

#[cfg(test)]
mod tests;
