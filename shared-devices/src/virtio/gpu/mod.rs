//! virtio-gpu (VIRTIO 1.2 §5.7), 2D only: the guest-side device model of
//! the display mediator.
//!
//! Each partition with display views sees one virtio-gpu device whose
//! scanouts are its views (1 to 16, each with its own size). The stock
//! Linux `virtio_gpu` driver binds to it and modesets: fbcon and DRM dumb
//! buffers, page flips. The compositor (in the hypervisor) reads what each
//! scanout shows through [`VirtioGpu::scanout`] and
//! [`VirtioGpu::take_damage`], and paces the guest with
//! [`VirtioGpu::presented`].
//!
//! Offered: VERSION_1, INDIRECT_DESC, EVENT_IDX and VIRTIO_GPU_F_EDID; no
//! 3D, blobs, UUIDs or contexts (those commands fail with ERR_UNSPEC). Two
//! queues of [`QUEUE_SIZE`]: control (0) and cursor (1).
//!
//! # Memory
//!
//! Everything a guest can make the device keep lives in the partition's
//! **arena**, a byte buffer given at construction and sized by the
//! configuration (`display_memory`): each resource's pixels (the host copy
//! the compositor reads, width x height x 4 bytes) and its backing entries
//! (16 bytes each). A resource or backing that does not fit, or a resource
//! beyond `max_resources` (`display_resources`, at most
//! [`MAX_RESOURCES`]), fails with ERR_OUT_OF_MEMORY. Nothing else grows
//! with guest input.
//!
//! # Work per call
//!
//! [`VirtioDevice::queue_notify`] handles at most [`COMMANDS_PER_CALL`]
//! requests and moves (zeroes, copies, reads as backing entries) about
//! [`BYTES_PER_CALL`] bytes, then asks for another call with
//! `ctx.more_work`. A transfer or a resource creation larger than that is
//! carried out over several calls; the control queue waits for it (the
//! responses stay in order).
//!
//! # Pacing
//!
//! RESOURCE_FLUSH adds damage to every scanout showing the resource (the
//! rectangles transferred since the last flush, when the flush covers
//! them all, so a counter in one corner and a needle in the other stay
//! two small rectangles; else the flush's rectangle), and
//! its response is **held**: the device takes no further control request
//! until the compositor calls [`VirtioGpu::presented`], which completes
//! the flush (fence included) and asks for the queue to be processed again
//! (`Effects::notify`). A partition flushing as fast as it can thus runs
//! at the display's pace and delays nobody but itself. The compositor must
//! call `presented` whenever [`VirtioGpu::flush_waiting`] says so, also
//! for views that are not visible, or the guest's display stalls.
//!
//! # Errors
//!
//! Request errors get the response §5.7.6 defines, and the request changes
//! nothing: an unknown resource id is ERR_INVALID_RESOURCE_ID, a bad
//! scanout ERR_INVALID_SCANOUT_ID, a rectangle outside its resource (or an
//! unknown format, a size out of 1..=[`MAX_DIMENSION`], too many backing
//! entries) ERR_INVALID_PARAMETER, no room ERR_OUT_OF_MEMORY, and the rest
//! (an unknown or unsupported command, a request too short for its type,
//! backing outside the partition's RAM or already attached, a transfer
//! without backing) ERR_UNSPEC. A chain whose writable part cannot hold a
//! response header is returned with nothing written. A broken ring
//! (a [`super::queue::QueueError`]) sets DEVICE_NEEDS_RESET.
//!
//! # Wiring
//!
//! As for every virtio device (see [`super`]): an `MmioTransport<VirtioGpu<A>>`
//! per partition, `notify_queue` for its effects' `notify`; and from the
//! compositor, `transport.with_device(&mem, |gpu, ctx| gpu.presented(ctx))`
//! once what was flushed is on screen, then the effects (interrupt, and
//! `notify` for the control queue, to be processed on the partition's
//! side). Reads of [`VirtioGpu::scanout`] need only `transport.device()`.

pub mod edid;
pub mod protocol;
mod resources;

pub use crate::display::{PixelFormat, Rect, Rects};

use super::device::{DeviceContext, VirtioDevice, feature, id};
use super::memory::GuestMemory;
use super::queue::{ChainBuffers, ChainToken, Region};
use protocol::{
    CtrlHdr, DISPLAY_INFO_BYTES, EDID_RESP_BYTES, HDR_BYTES, MAX_SCANOUTS, MEM_ENTRY_BYTES, cmd,
    features, fits, le32, le64, rect_at, request_bytes, resp,
};
use resources::{Allocator, Backing, Resource};

/// The control queue.
pub const CONTROL_QUEUE: u16 = 0;
/// The cursor queue.
pub const CURSOR_QUEUE: u16 = 1;
/// QueueNumMax of both queues. A chain is never longer than its queue, so
/// this also bounds the buffers of one request.
pub const QUEUE_SIZE: u16 = 64;
/// Resources a device can hold at most (`max_resources` is clamped to it).
pub const MAX_RESOURCES: usize = 128;
/// Largest width and height of a resource.
pub const MAX_DIMENSION: u32 = 16384;
/// Backing entries per resource at most.
pub const MAX_BACKING_ENTRIES: u32 = 16384;
/// Requests handled per call at most.
pub const COMMANDS_PER_CALL: u32 = 32;
/// Bytes zeroed, copied or read as backing entries per call, roughly (one
/// row or chunk of at most 64 KiB, or one request's backing entries, may
/// go beyond).
pub const BYTES_PER_CALL: u64 = 2 << 20;
/// Zeroing goes in pieces of this size.
const ZERO_CHUNK: usize = 64 << 10;
/// Backing entries are read this many at a time.
const ENTRY_BATCH: usize = 16;
/// Bytes of configuration space.
const CONFIG_BYTES: usize = 16;
/// Buffers per direction a chain can have (at most the queue size).
const CHAIN_BUFFERS: usize = QUEUE_SIZE as usize;
/// The longest fixed part of a request.
const REQUEST_MAX: usize = HDR_BYTES + 32;

/// What a scanout shows: a rectangle of a resource.
#[derive(Clone, Copy, Debug)]
pub struct ScanoutImage<'a> {
    /// All of the resource's pixels, row-major, `width * 4` bytes a row.
    pub pixels: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// The part of the resource shown (SET_SCANOUT's rectangle, inside
    /// the resource, not empty). Its size may differ from the view's: the
    /// compositor clips or fills.
    pub source: Rect,
}

impl ScanoutImage<'_> {
    /// The bytes of row `y` of the source rectangle (`source.width * 4`).
    pub fn row(&self, y: u32) -> Option<&[u8]> {
        if y >= self.source.height {
            return None;
        }
        let stride = u64::from(self.width) * 4;
        let start =
            (u64::from(self.source.y) + u64::from(y)) * stride + u64::from(self.source.x) * 4;
        let start = usize::try_from(start).ok()?;
        self.pixels
            .get(start..start + self.source.width as usize * 4)
    }

    /// The pixel at (`x`, `y`) of the source rectangle as `0xAARRGGBB`.
    pub fn pixel(&self, x: u32, y: u32) -> Option<u32> {
        if x >= self.source.width {
            return None;
        }
        let row = self.row(y)?;
        let at = x as usize * 4;
        let px: [u8; 4] = row.get(at..at + 4)?.try_into().ok()?;
        Some(self.format.to_argb(px))
    }
}

/// Counters for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Requests answered, both queues (a flush when it is held, a
    /// request carried out over calls when it is done).
    pub commands: u64,
    /// By response: OK_* ...
    pub ok: u64,
    /// ... and each error.
    pub err_unspec: u64,
    pub err_out_of_memory: u64,
    pub err_invalid_scanout_id: u64,
    pub err_invalid_resource_id: u64,
    pub err_invalid_parameter: u64,
    /// Requests returned with nothing written (no room for a response
    /// header, or the writable buffers outside RAM).
    pub no_response: u64,
    /// Flushes held for the compositor.
    pub flushes: u64,
    /// Times the driver broke a ring (DEVICE_NEEDS_RESET).
    pub broken_rings: u64,
    /// Resources that exist now.
    pub resources: u32,
    /// Arena bytes allocated now, and the arena's size.
    pub arena_used: u64,
    pub arena_size: u64,
}

/// One scanout (a view of the partition).
#[derive(Clone, Copy, Debug)]
struct Scanout {
    /// The view's size, as GET_DISPLAY_INFO and the EDID report it.
    width: u32,
    height: u32,
    /// The resource shown, 0 if disabled.
    resource: u32,
    source: Rect,
    /// Damage not yet taken, relative to `source`.
    damage: Rects,
}

/// Where the response to a request being carried out goes.
#[derive(Clone, Debug)]
struct ReplyTo {
    token: ChainToken,
    hdr: CtrlHdr,
    /// The writable regions of the first [`HDR_BYTES`] bytes; None if the
    /// chain has no room for a header.
    at: Option<heapless::Vec<Region, HDR_BYTES>>,
}

/// A position in a backing: entry `entry` starts at byte `start` of it.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    entry: u32,
    start: u64,
}

/// A request carried out over several calls.
#[derive(Clone, Debug)]
enum Work {
    /// Zeroing `next..end` of the arena (a resource being created).
    Zero { next: usize, end: usize },
    /// TRANSFER_TO_HOST_2D of resource `index` (in the table, which does
    /// not change meanwhile), rows `row..` still to copy.
    Transfer {
        index: usize,
        rect: Rect,
        offset: u64,
        row: u32,
        cursor: Cursor,
    },
}

#[derive(Clone, Debug)]
struct Job {
    reply: ReplyTo,
    work: Work,
}

/// A flush whose response is written and waits for `presented`.
#[derive(Clone, Copy, Debug)]
struct Held {
    token: ChainToken,
    written: u32,
}

/// What a control request comes to.
enum Outcome {
    /// A response of this type, header only.
    Status(u32),
    /// OK_DISPLAY_INFO.
    DisplayInfo,
    /// OK_EDID of this scanout.
    Edid(usize),
    /// Carried out over calls; the response comes at the end.
    Start(Work),
    /// A flush: OK_NODATA, held until `presented`.
    Hold,
}

/// Per-call allowance.
struct Budget {
    commands: u32,
    bytes: u64,
}

impl Budget {
    fn new() -> Self {
        Self {
            commands: COMMANDS_PER_CALL,
            bytes: BYTES_PER_CALL,
        }
    }

    fn charge(&mut self, bytes: u64) {
        self.bytes = self.bytes.saturating_sub(bytes);
    }
}

/// A partition's virtio-gpu device; `A` is its arena.
pub struct VirtioGpu<A> {
    arena: A,
    alloc: Allocator<{ 2 * MAX_RESOURCES }>,
    resources: heapless::Vec<Resource, MAX_RESOURCES>,
    max_resources: usize,
    scanouts: heapless::Vec<Scanout, MAX_SCANOUTS>,
    events_read: u32,
    held: Option<Held>,
    job: Option<Job>,
    broken: bool,
    stats: GpuStats,
}

impl<A: AsRef<[u8]> + AsMut<[u8]>> VirtioGpu<A> {
    /// A device whose scanouts have the sizes `scanouts` (the partition's
    /// views; at most [`MAX_SCANOUTS`] are used), holding at most
    /// `max_resources` resources (at most [`MAX_RESOURCES`]) in `arena`.
    pub fn new(scanouts: &[(u32, u32)], max_resources: u32, arena: A) -> Self {
        let mut s = heapless::Vec::new();
        for &(width, height) in scanouts.iter().take(MAX_SCANOUTS) {
            let _ = s.push(Scanout {
                width,
                height,
                resource: 0,
                source: Rect::default(),
                damage: Rects::default(),
            });
        }
        let size = arena.as_ref().len();
        Self {
            arena,
            alloc: Allocator::new(size),
            resources: heapless::Vec::new(),
            max_resources: (max_resources as usize).min(MAX_RESOURCES),
            scanouts: s,
            events_read: 0,
            held: None,
            job: None,
            broken: false,
            stats: GpuStats::default(),
        }
    }

    pub fn num_scanouts(&self) -> usize {
        self.scanouts.len()
    }

    /// What scanout `i` shows now: None if disabled or no such scanout.
    pub fn scanout(&self, i: usize) -> Option<ScanoutImage<'_>> {
        let s = self.scanouts.get(i)?;
        if s.resource == 0 {
            return None;
        }
        let r = self.resources.iter().find(|r| r.id == s.resource)?;
        let pixels = self.arena.as_ref().get(r.pixels..r.pixels + r.bytes())?;
        Some(ScanoutImage {
            pixels,
            width: r.width,
            height: r.height,
            format: r.format,
            source: s.source,
        })
    }

    /// Damage of scanout `i` since the last call, in scanout coordinates
    /// ((0, 0) is the source rectangle's top left corner, and the damage
    /// lies inside it); None if none. A flush of the resource shown adds
    /// its rectangle; SET_SCANOUT damages the whole new source. Disabling
    /// a scanout drops its damage: [`VirtioGpu::scanout`] returns None then.
    pub fn take_damage(&mut self, i: usize) -> Option<Rect> {
        let s = self.scanouts.get_mut(i)?;
        let bounds = s.damage.bounds();
        s.damage.clear();
        bounds
    }

    /// [`VirtioGpu::take_damage`] as the few rectangles it is made of.
    pub fn take_damage_rects(&mut self, i: usize) -> Rects {
        let Some(s) = self.scanouts.get_mut(i) else {
            return Rects::default();
        };
        let rects = s.damage;
        s.damage.clear();
        rects
    }

    /// Whether a flush is waiting for [`VirtioGpu::presented`].
    pub fn flush_waiting(&self) -> bool {
        self.held.is_some()
    }

    /// The compositor has put everything flushed so far on screen:
    /// completes the held flush (if any) and asks for the control queue
    /// to be processed again (`ctx.more_work`, reported as the effects'
    /// `notify`).
    pub fn presented(&mut self, ctx: &mut DeviceContext<'_>) {
        let Some(h) = self.held.take() else {
            return;
        };
        if ctx.push(h.token, h.written).is_err() {
            return self.break_ring(ctx);
        }
        ctx.more_work(CONTROL_QUEUE);
    }

    /// Counters for logs and tests.
    pub fn stats(&self) -> GpuStats {
        GpuStats {
            resources: self.resources.len() as u32,
            arena_used: self.alloc.used() as u64,
            arena_size: self.alloc.size() as u64,
            ..self.stats
        }
    }

    /// Checks the model's own consistency (for tests and fuzzing): the
    /// arena's blocks are disjoint and inside it and are exactly the
    /// resources' pixels and backings; resource ids are unique and not 0;
    /// every enabled scanout shows an existing resource, inside it.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.alloc.check()?;
        if self.alloc.size() != self.arena.as_ref().len() {
            return Err("arena size changed");
        }
        if self.resources.len() > self.max_resources {
            return Err("more resources than allowed");
        }
        let mut blocks = 0;
        for (i, r) in self.resources.iter().enumerate() {
            if r.id == 0 || self.resources[..i].iter().any(|o| o.id == r.id) {
                return Err("resource id 0 or twice");
            }
            match self.alloc.block(r.pixels) {
                Some(b) if b.len == r.bytes() => blocks += 1,
                _ => return Err("resource pixels not allocated"),
            }
            if let Some(bk) = r.backing {
                match self.alloc.block(bk.at) {
                    Some(b) if b.len == bk.entries as usize * MEM_ENTRY_BYTES => blocks += 1,
                    _ => return Err("backing entries not allocated"),
                }
            }
        }
        if blocks != self.alloc.blocks().len() {
            return Err("arena blocks nobody owns");
        }
        for s in &self.scanouts {
            if s.resource == 0 {
                if !s.damage.is_empty() {
                    return Err("damage on a disabled scanout");
                }
                continue;
            }
            let Some(r) = self.resources.iter().find(|r| r.id == s.resource) else {
                return Err("scanout shows a freed resource");
            };
            if s.source.is_empty() || !fits(&s.source, r.width, r.height) {
                return Err("scanout source outside its resource");
            }
            if s.damage
                .as_slice()
                .iter()
                .any(|d| d.is_empty() || !fits(d, s.source.width, s.source.height))
            {
                return Err("damage outside the scanout");
            }
        }
        if self.held.is_some() && self.job.is_some() {
            return Err("a flush held during a job");
        }
        Ok(())
    }

    fn find(&self, id: u32) -> Option<usize> {
        if id == 0 {
            return None;
        }
        self.resources.iter().position(|r| r.id == id)
    }

    fn break_ring(&mut self, ctx: &mut DeviceContext<'_>) {
        if !self.broken {
            self.stats.broken_rings += 1;
        }
        self.broken = true;
        ctx.needs_reset();
    }

    fn count(&mut self, kind: u32) {
        self.stats.commands += 1;
        let c = &mut self.stats;
        match kind {
            resp::ERR_OUT_OF_MEMORY => c.err_out_of_memory += 1,
            resp::ERR_INVALID_SCANOUT_ID => c.err_invalid_scanout_id += 1,
            resp::ERR_INVALID_RESOURCE_ID => c.err_invalid_resource_id += 1,
            resp::ERR_INVALID_PARAMETER => c.err_invalid_parameter += 1,
            k if k < resp::ERR_UNSPEC => c.ok += 1,
            _ => c.err_unspec += 1,
        }
    }

    /// Writes the response (`kind`, then `body`) and returns the chain. A
    /// response that does not fit becomes ERR_UNSPEC; one whose header
    /// does not fit is not written.
    fn answer(
        &mut self,
        bufs: &ChainBuffers<CHAIN_BUFFERS>,
        hdr: &CtrlHdr,
        kind: u32,
        body: &[u8],
        ctx: &mut DeviceContext<'_>,
    ) {
        let written = self.write_response(bufs, hdr, kind, body, ctx.mem());
        if ctx.push(bufs.token(), written).is_err() {
            self.break_ring(ctx);
        }
    }

    /// Writes a response and counts it; returns the bytes written.
    fn write_response(
        &mut self,
        bufs: &ChainBuffers<CHAIN_BUFFERS>,
        hdr: &CtrlHdr,
        kind: u32,
        body: &[u8],
        mem: &dyn GuestMemory,
    ) -> u32 {
        let room = bufs.writable_len() as usize;
        if room < HDR_BYTES {
            self.stats.commands += 1;
            self.stats.no_response += 1;
            return 0;
        }
        let (kind, body) = if room < HDR_BYTES + body.len() {
            (resp::ERR_UNSPEC, &[][..])
        } else {
            (kind, body)
        };
        let head = hdr.response(kind);
        if bufs.write(mem, 0, &head).is_err() || bufs.write(mem, HDR_BYTES as u32, body).is_err() {
            self.stats.commands += 1;
            self.stats.no_response += 1;
            return 0;
        }
        self.count(kind);
        (HDR_BYTES + body.len()) as u32
    }

    /// The response of a request carried out over calls.
    fn reply_later(&mut self, reply: &ReplyTo, kind: u32, ctx: &mut DeviceContext<'_>) {
        let mut written = 0;
        match &reply.at {
            Some(regions) => {
                let head = reply.hdr.response(kind);
                let mut done = 0;
                let mut ok = true;
                for r in regions {
                    let n = r.len as usize;
                    ok &= ctx.mem().write(r.gpa, &head[done..done + n]).is_ok();
                    done += n;
                }
                if ok && done == HDR_BYTES {
                    self.count(kind);
                    written = HDR_BYTES as u32;
                } else {
                    self.stats.commands += 1;
                    self.stats.no_response += 1;
                }
            }
            None => {
                self.stats.commands += 1;
                self.stats.no_response += 1;
            }
        }
        if ctx.push(reply.token, written).is_err() {
            self.break_ring(ctx);
        }
    }

    /// The request at the start of a chain: its header, its fixed part
    /// (zero-padded) and the readable length; None if the header is not
    /// all there.
    fn read_request(
        bufs: &ChainBuffers<CHAIN_BUFFERS>,
        mem: &dyn GuestMemory,
    ) -> Option<(CtrlHdr, [u8; REQUEST_MAX])> {
        let mut req = [0u8; REQUEST_MAX];
        let n = (bufs.readable_len() as usize).min(REQUEST_MAX);
        if n < HDR_BYTES || bufs.read(mem, 0, &mut req[..n]).is_err() {
            return None;
        }
        Some((CtrlHdr::parse(&req), req))
    }

    /// Takes control requests until the queue is empty, a flush is held,
    /// or the budget is spent.
    fn process_control(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = Budget::new();
        while !self.broken && self.held.is_none() {
            if self.job.is_some() {
                if !self.run_job(ctx, &mut budget) {
                    ctx.more_work(CONTROL_QUEUE);
                    return;
                }
                continue;
            }
            if budget.commands == 0 || budget.bytes == 0 {
                ctx.more_work(CONTROL_QUEUE);
                return;
            }
            budget.commands -= 1;
            let chain = match ctx.pop(CONTROL_QUEUE) {
                Ok(Some(c)) => c,
                Ok(None) => match ctx.enable_notification(CONTROL_QUEUE) {
                    Ok(true) => continue,
                    Ok(false) => return,
                    Err(_) => return self.break_ring(ctx),
                },
                Err(_) => return self.break_ring(ctx),
            };
            let bufs = match ChainBuffers::<CHAIN_BUFFERS>::collect(chain, ctx.mem()) {
                Ok(b) => b,
                Err(_) => return self.break_ring(ctx),
            };
            let Some((hdr, req)) = Self::read_request(&bufs, ctx.mem()) else {
                self.answer(&bufs, &CtrlHdr::default(), resp::ERR_UNSPEC, &[], ctx);
                continue;
            };
            let outcome = match request_bytes(hdr.kind) {
                Some(need) if bufs.readable_len() as usize >= need => {
                    self.control(&bufs, &hdr, &req, ctx.mem(), &mut budget)
                }
                _ => Outcome::Status(resp::ERR_UNSPEC),
            };
            match outcome {
                Outcome::Status(kind) => self.answer(&bufs, &hdr, kind, &[], ctx),
                Outcome::DisplayInfo => {
                    let body = self.display_info();
                    self.answer(&bufs, &hdr, resp::OK_DISPLAY_INFO, &body, ctx);
                }
                Outcome::Edid(i) => {
                    let body = self.edid_body(i);
                    self.answer(&bufs, &hdr, resp::OK_EDID, &body, ctx);
                }
                Outcome::Start(work) => {
                    let at = if bufs.writable_len() as usize >= HDR_BYTES {
                        bufs.writable_range::<HDR_BYTES>(0, HDR_BYTES as u32).ok()
                    } else {
                        None
                    };
                    let reply = ReplyTo {
                        token: bufs.token(),
                        hdr,
                        at,
                    };
                    self.job = Some(Job { reply, work });
                }
                Outcome::Hold => {
                    let written = self.write_response(&bufs, &hdr, resp::OK_NODATA, &[], ctx.mem());
                    self.stats.flushes += 1;
                    self.held = Some(Held {
                        token: bufs.token(),
                        written,
                    });
                }
            }
        }
    }

    /// Goes on with the job; true when it is finished and answered, false
    /// when the budget ran out first.
    fn run_job(&mut self, ctx: &mut DeviceContext<'_>, budget: &mut Budget) -> bool {
        let Some(mut job) = self.job.take() else {
            return true;
        };
        let result = match &mut job.work {
            Work::Zero { next, end } => loop {
                if *next >= *end {
                    break Some(resp::OK_NODATA);
                }
                if budget.bytes == 0 {
                    break None;
                }
                let n = (*end - *next).min(ZERO_CHUNK);
                match self.arena.as_mut().get_mut(*next..*next + n) {
                    Some(s) => s.fill(0),
                    None => break Some(resp::ERR_UNSPEC),
                }
                *next += n;
                budget.charge(n as u64);
            },
            Work::Transfer {
                index,
                rect,
                offset,
                row,
                cursor,
            } => self.transfer_rows(*index, *rect, *offset, row, cursor, ctx.mem(), budget),
        };
        match result {
            Some(kind) => {
                self.reply_later(&job.reply, kind, ctx);
                true
            }
            None => {
                self.job = Some(job);
                false
            }
        }
    }

    /// Copies rows of a transfer while the budget lasts: the response
    /// type when done, None if rows are left.
    #[allow(clippy::too_many_arguments)]
    fn transfer_rows(
        &mut self,
        index: usize,
        rect: Rect,
        offset: u64,
        row: &mut u32,
        cursor: &mut Cursor,
        mem: &dyn GuestMemory,
        budget: &mut Budget,
    ) -> Option<u32> {
        let Some(res) = self.resources.get(index).copied() else {
            return Some(resp::ERR_UNSPEC);
        };
        let Some(backing) = res.backing else {
            return Some(resp::ERR_UNSPEC);
        };
        let stride = res.stride();
        let len = u64::from(rect.width) * 4;
        let arena = self.arena.as_mut();
        while *row < rect.height {
            if budget.bytes == 0 {
                return None;
            }
            // Checked when the transfer started: inside the backing and
            // the resource.
            let src = offset + stride * u64::from(*row);
            let dst = (u64::from(rect.y) + u64::from(*row)) * stride + u64::from(rect.x) * 4;
            let dst = res.pixels + dst as usize;
            if copy_in(arena, mem, &backing, cursor, src, dst, len).is_err() {
                return Some(resp::ERR_UNSPEC);
            }
            *row += 1;
            budget.charge(len);
        }
        Some(resp::OK_NODATA)
    }

    /// Checks and carries out one control request (its fixed part is all
    /// in `req`).
    fn control(
        &mut self,
        bufs: &ChainBuffers<CHAIN_BUFFERS>,
        hdr: &CtrlHdr,
        req: &[u8; REQUEST_MAX],
        mem: &dyn GuestMemory,
        budget: &mut Budget,
    ) -> Outcome {
        use Outcome::Status;
        match hdr.kind {
            cmd::GET_DISPLAY_INFO => Outcome::DisplayInfo,
            cmd::GET_EDID => {
                let i = le32(req, 24) as usize;
                if i >= self.scanouts.len() {
                    return Status(resp::ERR_INVALID_SCANOUT_ID);
                }
                Outcome::Edid(i)
            }
            cmd::RESOURCE_CREATE_2D => {
                self.create_2d(le32(req, 24), le32(req, 28), le32(req, 32), le32(req, 36))
            }
            cmd::RESOURCE_UNREF => Status(self.unref(le32(req, 24))),
            cmd::RESOURCE_ATTACH_BACKING => {
                Status(self.attach_backing(le32(req, 24), le32(req, 28), bufs, mem, budget))
            }
            cmd::RESOURCE_DETACH_BACKING => {
                let Some(i) = self.find(le32(req, 24)) else {
                    return Status(resp::ERR_INVALID_RESOURCE_ID);
                };
                let Some(b) = self.resources[i].backing.take() else {
                    return Status(resp::ERR_UNSPEC);
                };
                self.alloc.free(b.at);
                Status(resp::OK_NODATA)
            }
            cmd::SET_SCANOUT => {
                Status(self.set_scanout(rect_at(req, 24), le32(req, 40), le32(req, 44)))
            }
            cmd::RESOURCE_FLUSH => {
                let rect = rect_at(req, 24);
                let Some(i) = self.find(le32(req, 40)) else {
                    return Status(resp::ERR_INVALID_RESOURCE_ID);
                };
                let res = self.resources[i];
                if !fits(&rect, res.width, res.height) {
                    return Status(resp::ERR_INVALID_PARAMETER);
                }
                // What changed: the transfers since the last flush if it
                // covers them all, else (or without any) its rectangle.
                let log = res.transferred;
                let precise = !log.is_empty() && log.as_slice().iter().all(|t| rect.contains(t));
                let changed = if precise { log } else { Rects::of(rect) };
                self.resources[i].transferred.clear();
                for s in self.scanouts.iter_mut().filter(|s| s.resource == res.id) {
                    for part in changed.as_slice() {
                        if let Some(d) = part.intersection(&s.source) {
                            // Inside the source: relative to its corner.
                            s.damage.push(Rect::new(
                                d.x - s.source.x,
                                d.y - s.source.y,
                                d.width,
                                d.height,
                            ));
                        }
                    }
                }
                Outcome::Hold
            }
            cmd::TRANSFER_TO_HOST_2D => {
                self.transfer_to_host(rect_at(req, 24), le64(req, 40), le32(req, 48))
            }
            _ => Status(resp::ERR_UNSPEC),
        }
    }

    fn create_2d(&mut self, id: u32, format: u32, width: u32, height: u32) -> Outcome {
        use Outcome::Status;
        if id == 0 || self.find(id).is_some() {
            return Status(resp::ERR_INVALID_RESOURCE_ID);
        }
        let Some(format) = PixelFormat::from_code(format) else {
            return Status(resp::ERR_INVALID_PARAMETER);
        };
        let dims = 1..=MAX_DIMENSION;
        if !dims.contains(&width) || !dims.contains(&height) {
            return Status(resp::ERR_INVALID_PARAMETER);
        }
        let Ok(bytes) = usize::try_from(u64::from(width) * u64::from(height) * 4) else {
            return Status(resp::ERR_OUT_OF_MEMORY);
        };
        if self.resources.len() >= self.max_resources {
            return Status(resp::ERR_OUT_OF_MEMORY);
        }
        let Some(pixels) = self.alloc.alloc(bytes) else {
            return Status(resp::ERR_OUT_OF_MEMORY);
        };
        let r = Resource {
            id,
            format,
            width,
            height,
            pixels,
            backing: None,
            transferred: Rects::default(),
        };
        if self.resources.push(r).is_err() {
            self.alloc.free(pixels);
            return Status(resp::ERR_OUT_OF_MEMORY);
        }
        Outcome::Start(Work::Zero {
            next: pixels,
            end: pixels + bytes,
        })
    }

    fn unref(&mut self, id: u32) -> u32 {
        let Some(i) = self.find(id) else {
            return resp::ERR_INVALID_RESOURCE_ID;
        };
        let r = self.resources.swap_remove(i);
        self.alloc.free(r.pixels);
        if let Some(b) = r.backing {
            self.alloc.free(b.at);
        }
        for s in self.scanouts.iter_mut().filter(|s| s.resource == id) {
            s.resource = 0;
            s.source = Rect::default();
            s.damage.clear();
        }
        resp::OK_NODATA
    }

    /// RESOURCE_ATTACH_BACKING: the entries follow the fixed part in the
    /// readable stream; each must lie in the partition's RAM.
    fn attach_backing(
        &mut self,
        id: u32,
        entries: u32,
        bufs: &ChainBuffers<CHAIN_BUFFERS>,
        mem: &dyn GuestMemory,
        budget: &mut Budget,
    ) -> u32 {
        let Some(i) = self.find(id) else {
            return resp::ERR_INVALID_RESOURCE_ID;
        };
        if self.resources[i].backing.is_some() {
            return resp::ERR_UNSPEC;
        }
        if entries == 0 || entries > MAX_BACKING_ENTRIES {
            return resp::ERR_INVALID_PARAMETER;
        }
        let first = request_bytes(cmd::RESOURCE_ATTACH_BACKING).unwrap_or(HDR_BYTES + 8);
        let bytes = entries as usize * MEM_ENTRY_BYTES;
        if (bufs.readable_len() as usize) < first + bytes {
            return resp::ERR_UNSPEC;
        }
        let Some(at) = self.alloc.alloc(bytes) else {
            return resp::ERR_OUT_OF_MEMORY;
        };
        budget.charge(bytes as u64);
        let mut total = 0u64;
        let mut batch = [0u8; ENTRY_BATCH * MEM_ENTRY_BYTES];
        let mut done = 0usize;
        let arena = self.arena.as_mut();
        let status = loop {
            if done == bytes {
                break resp::OK_NODATA;
            }
            let n = (bytes - done).min(batch.len());
            if bufs
                .read(mem, (first + done) as u32, &mut batch[..n])
                .is_err()
            {
                break resp::ERR_UNSPEC;
            }
            let mut fine = true;
            for e in batch[..n].chunks_exact_mut(MEM_ENTRY_BYTES) {
                let (addr, len) = (le64(e, 0), le32(e, 8));
                if mem.check(addr, u64::from(len)).is_err() {
                    fine = false;
                    break;
                }
                total += u64::from(len);
                // Stored with the padding cleared.
                e[12..].fill(0);
            }
            if !fine {
                break resp::ERR_UNSPEC;
            }
            match arena.get_mut(at + done..at + done + n) {
                Some(dst) => dst.copy_from_slice(&batch[..n]),
                None => break resp::ERR_UNSPEC,
            }
            done += n;
        };
        if status != resp::OK_NODATA {
            self.alloc.free(at);
            return status;
        }
        self.resources[i].backing = Some(Backing {
            at,
            entries,
            bytes: total,
        });
        resp::OK_NODATA
    }

    fn set_scanout(&mut self, rect: Rect, scanout: u32, id: u32) -> u32 {
        if scanout as usize >= self.scanouts.len() {
            return resp::ERR_INVALID_SCANOUT_ID;
        }
        let (source, damage) = if id == 0 {
            (Rect::default(), Rects::default())
        } else {
            let Some(i) = self.find(id) else {
                return resp::ERR_INVALID_RESOURCE_ID;
            };
            let r = &self.resources[i];
            if rect.is_empty() || !fits(&rect, r.width, r.height) {
                return resp::ERR_INVALID_PARAMETER;
            }
            (rect, Rects::of(Rect::new(0, 0, rect.width, rect.height)))
        };
        let s = &mut self.scanouts[scanout as usize];
        s.resource = id;
        s.source = source;
        s.damage = damage;
        resp::OK_NODATA
    }

    fn transfer_to_host(&mut self, rect: Rect, offset: u64, id: u32) -> Outcome {
        use Outcome::Status;
        let Some(index) = self.find(id) else {
            return Status(resp::ERR_INVALID_RESOURCE_ID);
        };
        let r = self.resources[index];
        if !fits(&rect, r.width, r.height) {
            return Status(resp::ERR_INVALID_PARAMETER);
        }
        let Some(backing) = r.backing else {
            return Status(resp::ERR_UNSPEC);
        };
        if rect.is_empty() {
            return Status(resp::OK_NODATA);
        }
        // The last byte read: row height - 1 of the rectangle.
        let end = r
            .stride()
            .checked_mul(u64::from(rect.height - 1))
            .and_then(|v| v.checked_add(u64::from(rect.width) * 4))
            .and_then(|v| v.checked_add(offset));
        if end.is_none_or(|end| end > backing.bytes) {
            return Status(resp::ERR_INVALID_PARAMETER);
        }
        // Logged now: its pixels change from the first call on.
        self.resources[index].transferred.push(rect);
        Outcome::Start(Work::Transfer {
            index,
            rect,
            offset,
            row: 0,
            cursor: Cursor::default(),
        })
    }

    /// The body of OK_DISPLAY_INFO.
    fn display_info(&self) -> [u8; DISPLAY_INFO_BYTES - HDR_BYTES] {
        let mut b = [0u8; DISPLAY_INFO_BYTES - HDR_BYTES];
        for (i, s) in self.scanouts.iter().enumerate() {
            let one = &mut b[24 * i..24 * (i + 1)];
            one[8..12].copy_from_slice(&s.width.to_le_bytes());
            one[12..16].copy_from_slice(&s.height.to_le_bytes());
            one[16..20].copy_from_slice(&1u32.to_le_bytes());
        }
        b
    }

    /// The body of OK_EDID for scanout `i`.
    fn edid_body(&self, i: usize) -> [u8; EDID_RESP_BYTES - HDR_BYTES] {
        let mut b = [0u8; EDID_RESP_BYTES - HDR_BYTES];
        let s = &self.scanouts[i];
        let e = edid::edid(i, s.width, s.height);
        b[0..4].copy_from_slice(&(e.len() as u32).to_le_bytes());
        b[8..8 + e.len()].copy_from_slice(&e);
        b
    }

    /// Takes cursor requests: UPDATE_CURSOR and MOVE_CURSOR are accepted
    /// (OK_NODATA, if the chain has room for it) and ignored.
    fn process_cursor(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = COMMANDS_PER_CALL;
        while !self.broken {
            if budget == 0 {
                ctx.more_work(CURSOR_QUEUE);
                return;
            }
            budget -= 1;
            let chain = match ctx.pop(CURSOR_QUEUE) {
                Ok(Some(c)) => c,
                Ok(None) => match ctx.enable_notification(CURSOR_QUEUE) {
                    Ok(true) => continue,
                    Ok(false) => return,
                    Err(_) => return self.break_ring(ctx),
                },
                Err(_) => return self.break_ring(ctx),
            };
            let bufs = match ChainBuffers::<CHAIN_BUFFERS>::collect(chain, ctx.mem()) {
                Ok(b) => b,
                Err(_) => return self.break_ring(ctx),
            };
            let (hdr, kind) = match Self::read_request(&bufs, ctx.mem()) {
                Some((hdr, _)) => {
                    let cursor = matches!(hdr.kind, cmd::UPDATE_CURSOR | cmd::MOVE_CURSOR);
                    let whole =
                        request_bytes(hdr.kind).is_some_and(|n| bufs.readable_len() as usize >= n);
                    let kind = if cursor && whole {
                        resp::OK_NODATA
                    } else {
                        resp::ERR_UNSPEC
                    };
                    (hdr, kind)
                }
                None => (CtrlHdr::default(), resp::ERR_UNSPEC),
            };
            self.answer(&bufs, &hdr, kind, &[], ctx);
        }
    }

    /// `struct virtio_gpu_config`: events_read, events_clear (reads 0),
    /// num_scanouts, num_capsets (0).
    fn config_bytes(&self) -> [u8; CONFIG_BYTES] {
        let mut c = [0u8; CONFIG_BYTES];
        c[0..4].copy_from_slice(&self.events_read.to_le_bytes());
        c[8..12].copy_from_slice(&(self.scanouts.len() as u32).to_le_bytes());
        c
    }
}

/// Copies `len` bytes at `src` of the backing (its entries seen as one
/// stream) to `arena[dst..]`, reading guest memory only through `mem`.
/// `cursor` remembers the entry reached, so that a transfer (whose rows
/// only move forward) walks the entries once in all.
fn copy_in(
    arena: &mut [u8],
    mem: &dyn GuestMemory,
    backing: &Backing,
    cursor: &mut Cursor,
    mut src: u64,
    mut dst: usize,
    mut len: u64,
) -> Result<(), ()> {
    if src < cursor.start {
        *cursor = Cursor::default();
    }
    while len > 0 {
        if cursor.entry >= backing.entries {
            return Err(());
        }
        let at = backing.at + cursor.entry as usize * MEM_ENTRY_BYTES;
        let e = arena.get(at..at + MEM_ENTRY_BYTES).ok_or(())?;
        let (addr, elen) = (le64(e, 0), u64::from(le32(e, 8)));
        let end = cursor.start + elen;
        if src >= end {
            cursor.start = end;
            cursor.entry += 1;
            continue;
        }
        let within = src - cursor.start;
        let n = (elen - within).min(len);
        let gpa = addr.checked_add(within).ok_or(())?;
        let out = arena.get_mut(dst..dst + n as usize).ok_or(())?;
        mem.read(gpa, out).map_err(|_| ())?;
        src += n;
        dst += n as usize;
        len -= n;
    }
    Ok(())
}

impl<A: AsRef<[u8]> + AsMut<[u8]>> VirtioDevice for VirtioGpu<A> {
    fn device_id(&self) -> u32 {
        id::GPU
    }

    fn device_features(&self) -> u64 {
        feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX | features::EDID
    }

    fn queue_count(&self) -> u16 {
        2
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

    /// Bits written to `events_clear` (at any width) clear those of
    /// `events_read`; everything else is read-only.
    fn write_config(&mut self, offset: u32, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            let at = offset as usize + i;
            if (4..8).contains(&at) {
                self.events_read &= !(u32::from(*b) << (8 * (at - 4)));
            }
        }
    }

    fn queue_notify(&mut self, queue: u16, ctx: &mut DeviceContext<'_>) {
        match queue {
            CONTROL_QUEUE => self.process_control(ctx),
            CURSOR_QUEUE => self.process_cursor(ctx),
            _ => {}
        }
    }

    /// Forgets every resource, scanout, held flush, job and damage: the
    /// arena is all free again.
    fn reset(&mut self) {
        self.resources.clear();
        self.alloc.clear();
        for s in &mut self.scanouts {
            s.resource = 0;
            s.source = Rect::default();
            s.damage.clear();
        }
        self.events_read = 0;
        self.held = None;
        self.job = None;
        self.broken = false;
    }
}

#[cfg(test)]
mod tests;
