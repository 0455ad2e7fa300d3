//! A small polled virtio-snd driver (VIRTIO 1.2 §5.14) on virtio-mmio
//! version 2, enough to play one output stream: S16 at 48 kHz, one or two
//! channels, a few periods in flight.
//!
//! Feature VERSION_1 only. Four split virtqueues of at most [`RING`]
//! entries: the control queue (one request at a time, answered
//! synchronously with a time limit), the event queue (with
//! [`EVENT_BUFFERS`] 8-byte buffers posted), the tx queue (up to
//! [`TX_SLOTS`] periods in flight, each a chain of header, samples and
//! status from a static pool) and the rx queue (set up, left empty).
//! Descriptors come from a free list per queue; a used entry whose head is
//! not a chain the driver has in flight is counted as stale and ignored,
//! so a device returning garbage cannot make the driver free the wrong
//! buffers. A control request the device never answers keeps its buffers
//! (the device might still write them); the next one uses another of the
//! [`CONTROL_SLOTS`] pairs.
//!
//! Everything is polled: the available rings ask for no interrupts and any
//! that come are acknowledged. A control request's wait sleeps on the
//! timer between looks at the used ring and reads the status register
//! (which may trap) about once a millisecond, for DEVICE_NEEDS_RESET. As in
//! the other drivers the MMU is off, the shared area is in .bss, and it is
//! cleaned and invalidated around each exchange for a device model that
//! runs with caches on.
//!
//! The `raw_*` functions let a hostile test (`sndfuzz`) put arbitrary
//! chains on any queue, with buffers in a scratch area or anywhere else.

use super::cache::{barrier, dcache_clean_invalidate};
use super::{device_tree, mmio, timer};
use crate::dt::{self, VirtioMmio};
use crate::virtio::{self, AVAIL_F_NO_INTERRUPT, desc, reg, status};
use core::fmt;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

/// virtio-snd's device id (§5).
pub const DEVICE_ID_SOUND: u32 = 25;
/// VIRTIO_F_VERSION_1.
const VERSION_1: u64 = 1 << 32;

/// Entries of each ring in memory (a queue uses fewer if the device
/// offers fewer).
pub const RING: usize = 64;
/// Control request/response buffer pairs.
pub const CONTROL_SLOTS: usize = 4;
/// Bytes of a control request or response buffer.
pub const CONTROL_BYTES: usize = 256;
/// Event buffers kept posted.
pub const EVENT_BUFFERS: usize = 8;
/// Periods the tx pool holds.
pub const TX_SLOTS: usize = 8;
/// Largest period (bytes of samples in one tx buffer): 42 ms of stereo.
pub const PERIOD_MAX: usize = 8192;
/// Bytes of the scratch area for raw chains.
pub const SCRATCH_BYTES: usize = 8192;
/// Most descriptors of one raw chain.
pub const MAX_CHAIN: usize = 8;
/// Default time limit of a control request.
pub const TIMEOUT_MS: u64 = 1000;
/// How long a wait sleeps between looks at a used ring.
const POLL_US: u64 = 100;
/// Time limit of a reset (Status reading back 0).
const RESET_TIMEOUT_MS: u64 = 100;
/// What the driver puts in a status it expects the device to overwrite.
const UNWRITTEN: u32 = 0xffff_ffff;

/// The queues (§5.14.2).
pub mod queue {
    pub const CONTROL: u32 = 0;
    pub const EVENT: u32 = 1;
    pub const TX: u32 = 2;
    pub const RX: u32 = 3;
}

/// Request, event and status codes (§5.14.6).
pub mod code {
    pub const JACK_INFO: u32 = 1;
    pub const JACK_REMAP: u32 = 2;
    pub const PCM_INFO: u32 = 0x0100;
    pub const PCM_SET_PARAMS: u32 = 0x0101;
    pub const PCM_PREPARE: u32 = 0x0102;
    pub const PCM_RELEASE: u32 = 0x0103;
    pub const PCM_START: u32 = 0x0104;
    pub const PCM_STOP: u32 = 0x0105;
    pub const CHMAP_INFO: u32 = 0x0200;
    pub const EVT_JACK_CONNECTED: u32 = 0x1000;
    pub const EVT_JACK_DISCONNECTED: u32 = 0x1001;
    pub const EVT_PCM_PERIOD_ELAPSED: u32 = 0x1100;
    pub const EVT_PCM_XRUN: u32 = 0x1101;
    pub const S_OK: u32 = 0x8000;
    pub const S_BAD_MSG: u32 = 0x8001;
    pub const S_NOT_SUPP: u32 = 0x8002;
    pub const S_IO_ERR: u32 = 0x8003;
}

/// PCM sample formats (bit numbers of `PcmInfo::formats`), the ones used.
pub mod format {
    pub const IMA_ADPCM: u8 = 0;
    pub const S16: u8 = 5;
    pub const FLOAT64: u8 = 20;
    /// The last one VIRTIO 1.2 defines (IEC958_SUBFRAME).
    pub const LAST: u8 = 24;
}

/// PCM frame rates (bit numbers of `PcmInfo::rates`), the ones used.
pub mod rate {
    pub const R5512: u8 = 0;
    pub const R48000: u8 = 7;
    /// The last one VIRTIO 1.2 defines (384000).
    pub const LAST: u8 = 13;
}

/// Directions of `PcmInfo::direction`.
pub const DIRECTION_OUTPUT: u8 = 0;
pub const DIRECTION_INPUT: u8 = 1;

/// The name of a status code.
pub fn status_name(code: u32) -> &'static str {
    match code {
        code::S_OK => "OK",
        code::S_BAD_MSG => "BAD_MSG",
        code::S_NOT_SUPP => "NOT_SUPP",
        code::S_IO_ERR => "IO_ERR",
        _ => "?",
    }
}

/// Why an operation did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device answered with this status code (BAD_MSG, NOT_SUPP,
    /// IO_ERR, or a value the spec does not define).
    Status(u32),
    /// The device returned the request with fewer bytes than the answer
    /// needs: the used length it gave.
    Short(u32),
    /// No answer within the time limit (milliseconds).
    Timeout(u64),
    /// The device set DEVICE_NEEDS_RESET or FAILED, or reset itself: the
    /// status register.
    NeedsReset(u32),
    /// Every tx slot (or every descriptor of the queue) is in use.
    Full,
    /// More bytes than the driver's buffers hold.
    TooLarge(usize),
    /// Every control buffer pair is held by a request the device never
    /// returned: reset the device.
    Busy,
    /// The queue is not set up.
    NoQueue(u32),
    /// The driver refuses the request as it stands (an empty period, a
    /// period that is not whole frames, no room for a status).
    Invalid(&'static str),
    /// Bring-up failed at this step, with the value read there.
    Init(&'static str, u32),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Status(s) => write!(f, "status 0x{:x} ({})", s, status_name(s)),
            Error::Short(len) => write!(f, "answer of {} bytes", len),
            Error::Timeout(ms) => write!(f, "timeout after {} ms", ms),
            Error::NeedsReset(s) => write!(f, "device needs reset (status 0x{:x})", s),
            Error::Full => f.write_str("full"),
            Error::TooLarge(n) => write!(f, "too large ({} bytes)", n),
            Error::Busy => f.write_str("control buffers held by unanswered requests"),
            Error::NoQueue(q) => write!(f, "queue {} not set up", q),
            Error::Invalid(what) => f.write_str(what),
            Error::Init(what, v) => write!(f, "init failed: {} (0x{:x})", what, v),
        }
    }
}

/// The configuration space (§5.14.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub jacks: u32,
    pub streams: u32,
    pub chmaps: u32,
}

/// One stream's `virtio_snd_pcm_info` (§5.14.6.6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcmInfo {
    pub hda_fn_nid: u32,
    pub features: u32,
    /// Bit n: format n is supported.
    pub formats: u64,
    /// Bit n: rate n is supported.
    pub rates: u64,
    pub direction: u8,
    pub channels_min: u8,
    pub channels_max: u8,
}

/// A SET_PARAMS request as sent (§5.14.6.6.3), every field free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    pub stream: u32,
    pub buffer_bytes: u32,
    pub period_bytes: u32,
    pub features: u32,
    pub channels: u8,
    pub format: u8,
    pub rate: u8,
}

/// What [`Sound::reap`] found: tx buffers the device returned since the
/// last call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completed {
    pub count: usize,
    /// The last one's status (`UNWRITTEN`, 0xffffffff, if the device did
    /// not write it) and `latency_bytes`.
    pub status: u32,
    pub latency_bytes: u32,
    /// How many of them had a status other than OK.
    pub errors: usize,
}

/// Events the device sent since the last [`Sound::events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    pub xrun: u32,
    pub period_elapsed: u32,
    pub jack: u32,
    /// Events of other types, and the last of them.
    pub other: u32,
    pub last_other: u32,
}

/// One buffer of a raw chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
    /// Marked device-writable.
    pub device_writes: bool,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UsedElem {
    id: u32,
    len: u32,
}

#[repr(C, align(64))]
struct Avail {
    flags: u16,
    idx: u16,
    ring: [u16; RING],
    used_event: u16,
}

#[repr(C, align(64))]
struct Used {
    flags: u16,
    idx: u16,
    ring: [UsedElem; RING],
    avail_event: u16,
}

#[repr(C, align(64))]
struct Ring {
    desc: [Desc; RING],
    avail: Avail,
    used: Used,
}

#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line<T>(T);

/// Everything the device reads or writes, each part on cache lines of its
/// own.
#[repr(C, align(4096))]
struct Dma {
    rings: [Ring; 4],
    requests: [Line<[u8; CONTROL_BYTES]>; CONTROL_SLOTS],
    responses: [Line<[u8; CONTROL_BYTES]>; CONTROL_SLOTS],
    events: [Line<[u8; 8]>; EVENT_BUFFERS],
    tx_headers: [Line<[u8; 4]>; TX_SLOTS],
    tx_status: [Line<[u8; 8]>; TX_SLOTS],
    tx_data: [Line<[u8; PERIOD_MAX]>; TX_SLOTS],
    scratch: Line<[u8; SCRATCH_BYTES]>,
}

static mut DMA: Dma = unsafe { core::mem::zeroed() };
static DMA_TAKEN: AtomicBool = AtomicBool::new(false);

/// What a chain in flight is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Free,
    Control(u8),
    Event(u8),
    Tx(u8),
    Raw,
}

/// The driver's side of one virtqueue.
#[derive(Clone, Copy)]
struct Queue {
    /// Entries in use (0: not set up).
    size: u16,
    avail_idx: u16,
    used_idx: u16,
    /// Free descriptors (bit i: descriptor i).
    free: u64,
    /// The descriptors of the chain headed by i, while in flight.
    chain: [u64; RING],
    tag: [Tag; RING],
    /// Raw chains returned: head bit set, with the used length.
    raw_done: u64,
    raw_len: [u32; RING],
    /// Raw chains returned since the bring-up.
    raw_count: u32,
}

impl Queue {
    const EMPTY: Queue = Queue {
        size: 0,
        avail_idx: 0,
        used_idx: 0,
        free: 0,
        chain: [0; RING],
        tag: [Tag::Free; RING],
        raw_done: 0,
        raw_len: [0; RING],
        raw_count: 0,
    };
}

/// The first virtio-mmio version 2 sound device of the device tree.
pub fn find() -> Option<VirtioMmio> {
    let dt = device_tree();
    dt::virtio_mmio(&dt).find(|node| {
        // SAFETY: a virtio-mmio window named by the device tree.
        let id = unsafe { super::virtio_blk::identify(node.base) };
        id.magic == virtio::MAGIC && id.version == virtio::VERSION_2 && id.device == DEVICE_ID_SOUND
    })
}

/// A virtio-snd device, brought up, driving stream 0.
pub struct Sound {
    node: VirtioMmio,
    dma: *mut Dma,
    queues: [Queue; 4],
    config: Config,
    /// Control answers: the used length, once returned.
    control_done: [Option<u32>; CONTROL_SLOTS],
    /// Control pairs whose request the device has not returned.
    control_held: [bool; CONTROL_SLOTS],
    tx_busy: [bool; TX_SLOTS],
    /// Periods kept in flight at most (buffer_bytes / period_bytes).
    depth: usize,
    /// Channels of the last SET_PARAMS that succeeded.
    channels: u8,
    completed: Completed,
    events: Events,
    /// Used entries that named no chain in flight.
    stale: u32,
    timeout_ms: u64,
}

impl Sound {
    /// Finds the device in the device tree and brings it up; `None` if
    /// there is none or it does not come up (see [`Sound::open_at`] for
    /// why).
    pub fn open() -> Option<Sound> {
        Sound::open_at(find()?).ok()
    }

    /// Takes the DMA area and initialises the device at `node`. Only one
    /// device can be open (the area is static).
    pub fn open_at(node: VirtioMmio) -> Result<Sound, Error> {
        if DMA_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(Error::Init("driver already in use", 0));
        }
        let mut sound = Sound {
            node,
            dma: &raw mut DMA,
            queues: [Queue::EMPTY; 4],
            config: Config::default(),
            control_done: [None; CONTROL_SLOTS],
            control_held: [false; CONTROL_SLOTS],
            tx_busy: [false; TX_SLOTS],
            depth: 4,
            channels: 2,
            completed: Completed::default(),
            events: Events::default(),
            stale: 0,
            timeout_ms: TIMEOUT_MS,
        };
        sound.init()?;
        Ok(sound)
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: a register of this transport (window from the DT).
        unsafe { mmio::read32(self.node.base + offset) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as for `read_reg`.
        unsafe { mmio::write32(self.node.base + offset, value) }
    }

    /// Base of the transport's register window.
    pub fn base(&self) -> usize {
        self.node.base
    }

    /// The configuration space as read at the last bring-up.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The device status register.
    pub fn device_status(&self) -> u32 {
        self.read_reg(reg::STATUS)
    }

    /// Whether the device asks for a reset (or failed, or reset itself).
    pub fn needs_reset(&self) -> bool {
        let s = self.device_status();
        s & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 || s & status::DRIVER_OK == 0
    }

    /// Sets the time limit of control requests.
    pub fn set_timeout_ms(&mut self, ms: u64) {
        self.timeout_ms = ms;
    }

    /// Used entries that named no chain in flight, since the bring-up.
    pub fn stale_completions(&self) -> u32 {
        self.stale
    }

    /// Resets the device and brings it up again (§3.1.1): VERSION_1, all
    /// four queues with empty rings, event buffers posted, DRIVER_OK. The
    /// way back from DEVICE_NEEDS_RESET; every buffer in flight is
    /// forgotten.
    pub fn init(&mut self) -> Result<(), Error> {
        // SAFETY: a transport from the DT; reads only.
        let id = unsafe { super::virtio_blk::identify(self.node.base) };
        if id.magic != virtio::MAGIC || id.version != virtio::VERSION_2 {
            return Err(Error::Init("not a virtio-mmio v2 transport", id.version));
        }
        if id.device != DEVICE_ID_SOUND {
            return Err(Error::Init("not a sound device", id.device));
        }
        self.write_reg(reg::STATUS, 0);
        let deadline = timer::counter() + timer::ms_to_ticks(RESET_TIMEOUT_MS);
        while self.device_status() != 0 {
            if timer::counter() > deadline {
                return Err(Error::Init("reset did not complete", self.device_status()));
            }
            core::hint::spin_loop();
        }
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE);
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write_reg(reg::DEVICE_FEATURES_SEL, 1);
        if u64::from(self.read_reg(reg::DEVICE_FEATURES)) << 32 & VERSION_1 == 0 {
            self.fail();
            return Err(Error::Init("VERSION_1 not offered", 0));
        }
        self.write_reg(reg::DRIVER_FEATURES_SEL, 0);
        self.write_reg(reg::DRIVER_FEATURES, 0);
        self.write_reg(reg::DRIVER_FEATURES_SEL, 1);
        self.write_reg(reg::DRIVER_FEATURES, (VERSION_1 >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, s);
        let back = self.device_status();
        if back & status::FEATURES_OK == 0 {
            self.fail();
            return Err(Error::Init("features refused", back));
        }

        let dma = self.dma;
        // SAFETY: the device is reset, so it uses none of the area; the
        // rings are the driver's own memory (aligned stores).
        unsafe { core::ptr::write_bytes(addr_of_mut!((*dma).rings), 0, 1) };
        self.queues = [Queue::EMPTY; 4];
        self.control_done = [None; CONTROL_SLOTS];
        self.control_held = [false; CONTROL_SLOTS];
        self.tx_busy = [false; TX_SLOTS];
        self.completed = Completed::default();
        self.events = Events::default();
        self.stale = 0;
        for q in 0..4u32 {
            self.write_reg(reg::QUEUE_SEL, q);
            let num_max = self.read_reg(reg::QUEUE_NUM_MAX);
            let ready = self.read_reg(reg::QUEUE_READY);
            if num_max == 0 && q == queue::RX {
                continue;
            }
            if num_max == 0 || ready != 0 {
                self.fail();
                return Err(Error::Init("queue unusable", q));
            }
            // The largest power of two both sides can do.
            let limit = num_max.min(RING as u32);
            let size = 1u16 << (31 - limit.leading_zeros());
            let r = self.ring(q as usize);
            // SAFETY: only addresses are taken; the ring asks for no
            // interrupts (written while the device does not look).
            let (d, a, u) = unsafe {
                write_volatile(addr_of_mut!((*r).avail.flags), AVAIL_F_NO_INTERRUPT);
                (
                    addr_of!((*r).desc) as u64,
                    addr_of!((*r).avail) as u64,
                    addr_of!((*r).used) as u64,
                )
            };
            self.sync_ring(q as usize);
            self.write_reg(reg::QUEUE_NUM, u32::from(size));
            for (low, value) in [
                (reg::QUEUE_DESC_LOW, d),
                (reg::QUEUE_DRIVER_LOW, a),
                (reg::QUEUE_DEVICE_LOW, u),
            ] {
                self.write_reg(low, value as u32);
                self.write_reg(low + 4, (value >> 32) as u32);
            }
            self.write_reg(reg::QUEUE_READY, 1);
            let queue = &mut self.queues[q as usize];
            queue.size = size;
            queue.free = if size as usize == RING {
                u64::MAX
            } else {
                (1u64 << size) - 1
            };
        }
        self.write_reg(reg::STATUS, s | status::DRIVER_OK);
        self.config = self.read_config();
        for i in 0..EVENT_BUFFERS {
            if self.post_event(i).is_err() {
                break;
            }
        }
        Ok(())
    }

    fn fail(&self) {
        let s = self.device_status();
        self.write_reg(reg::STATUS, s | status::FAILED);
    }

    /// The configuration space, consistent per ConfigGeneration.
    fn read_config(&self) -> Config {
        loop {
            let generation = self.read_reg(reg::CONFIG_GENERATION);
            let c = Config {
                jacks: self.read_reg(reg::CONFIG),
                streams: self.read_reg(reg::CONFIG + 4),
                chmaps: self.read_reg(reg::CONFIG + 8),
            };
            if self.read_reg(reg::CONFIG_GENERATION) == generation {
                return c;
            }
        }
    }

    fn ring(&self, q: usize) -> *mut Ring {
        let dma = self.dma;
        // SAFETY: only the address is taken.
        unsafe { addr_of_mut!((*dma).rings[q]) }
    }

    fn sync_ring(&self, q: usize) {
        dcache_clean_invalidate(self.ring(q) as usize, core::mem::size_of::<Ring>());
    }

    // ---- Chains ---------------------------------------------------------

    /// Puts `segments` in free descriptors of queue `q` as one chain,
    /// offers it and notifies; returns its head.
    fn submit(&mut self, q: usize, segments: &[Segment], tag: Tag) -> Result<u16, Error> {
        let queue = &self.queues[q];
        if queue.size == 0 {
            return Err(Error::NoQueue(q as u32));
        }
        if segments.is_empty() || segments.len() > MAX_CHAIN {
            return Err(Error::TooLarge(segments.len()));
        }
        let mut free = queue.free;
        let mut index = [0u16; MAX_CHAIN];
        for slot in index.iter_mut().take(segments.len()) {
            if free == 0 {
                return Err(Error::Full);
            }
            let i = free.trailing_zeros();
            free &= !(1u64 << i);
            *slot = i as u16;
        }
        let r = self.ring(q);
        let mut mask = 0u64;
        for (k, s) in segments.iter().enumerate() {
            let last = k + 1 == segments.len();
            let d = Desc {
                addr: s.addr,
                len: s.len,
                flags: if s.device_writes { desc::WRITE } else { 0 }
                    | if last { 0 } else { desc::NEXT },
                next: if last { 0 } else { index[k + 1] },
            };
            mask |= 1u64 << index[k];
            // SAFETY: an aligned store into the driver's descriptor table.
            unsafe { write_volatile(addr_of_mut!((*r).desc[usize::from(index[k])]), d) };
        }
        let head = index[0];
        let queue = &mut self.queues[q];
        queue.free = free;
        queue.chain[usize::from(head)] = mask;
        queue.tag[usize::from(head)] = tag;
        queue.raw_done &= !(1u64 << head);
        let slot = usize::from(queue.avail_idx % queue.size);
        queue.avail_idx = queue.avail_idx.wrapping_add(1);
        let idx = queue.avail_idx;
        // SAFETY: aligned stores into the driver's available ring; the
        // entry before the index that publishes it.
        unsafe {
            write_volatile(addr_of_mut!((*r).avail.ring[slot]), head);
            barrier();
            write_volatile(addr_of_mut!((*r).avail.idx), idx);
        }
        self.sync_ring(q);
        self.write_reg(reg::QUEUE_NOTIFY, q as u32);
        Ok(head)
    }

    /// Takes every entry the device added to queue `q`'s used ring: frees
    /// the chains, records what each was.
    fn collect(&mut self, q: usize) {
        let size = self.queues[q].size;
        if size == 0 {
            return;
        }
        let r = self.ring(q);
        // SAFETY: the used ring's address; only it is touched.
        let used = unsafe { addr_of!((*r).used) } as usize;
        dcache_clean_invalidate(used, core::mem::size_of::<Used>());
        // SAFETY: an aligned load of the index the device writes.
        let idx = unsafe { read_volatile(addr_of!((*r).used.idx)) };
        barrier();
        let mut repost = [false; EVENT_BUFFERS];
        let mut seen = 0u32;
        while self.queues[q].used_idx != idx {
            seen += 1;
            if seen > u32::from(size) {
                // More entries than chains could be in flight: garbage.
                self.stale += u32::from(idx.wrapping_sub(self.queues[q].used_idx));
                self.queues[q].used_idx = idx;
                break;
            }
            let slot = usize::from(self.queues[q].used_idx % size);
            // SAFETY: an aligned load of an entry the device published.
            let elem = unsafe { read_volatile(addr_of!((*r).used.ring[slot])) };
            self.queues[q].used_idx = self.queues[q].used_idx.wrapping_add(1);
            let head = elem.id as usize;
            let queue = &mut self.queues[q];
            if head >= usize::from(size) || queue.chain[head] == 0 {
                self.stale += 1;
                continue;
            }
            queue.free |= queue.chain[head];
            queue.chain[head] = 0;
            match core::mem::replace(&mut queue.tag[head], Tag::Free) {
                Tag::Raw => {
                    queue.raw_done |= 1u64 << head;
                    queue.raw_len[head] = elem.len;
                    queue.raw_count = queue.raw_count.wrapping_add(1);
                }
                Tag::Control(i) => {
                    // The device is done with the pair (even one whose
                    // wait gave up).
                    self.control_done[usize::from(i)] = Some(elem.len);
                    self.control_held[usize::from(i)] = false;
                }
                Tag::Event(i) => {
                    self.take_event(usize::from(i));
                    repost[usize::from(i)] = true;
                }
                Tag::Tx(i) => self.take_tx(usize::from(i)),
                Tag::Free => self.stale += 1,
            }
        }
        for (i, _) in repost.iter().enumerate().filter(|(_, r)| **r) {
            let _ = self.post_event(i);
        }
    }

    /// Acknowledges whatever InterruptStatus shows (the driver polls).
    fn ack_interrupts(&self) {
        let pending = self.read_reg(reg::INTERRUPT_STATUS);
        if pending != 0 {
            self.write_reg(reg::INTERRUPT_ACK, pending);
        }
    }

    /// Waits until `done` holds, looking at queue `q`'s used ring: sleeps
    /// between looks, reads the status register about every millisecond.
    fn wait(&mut self, q: usize, ms: u64, done: impl Fn(&Sound) -> bool) -> Result<(), Error> {
        let start = timer::counter();
        let deadline = start + timer::ms_to_ticks(ms);
        let status_period = timer::ms_to_ticks(1).max(1);
        let mut next_status = start;
        loop {
            self.collect(q);
            if done(self) {
                self.ack_interrupts();
                return Ok(());
            }
            let now = timer::counter();
            if now >= next_status {
                next_status = now + status_period;
                if self.needs_reset() {
                    return Err(Error::NeedsReset(self.device_status()));
                }
            }
            if now > deadline {
                return Err(Error::Timeout(ms));
            }
            timer::sleep_until(now + timer::frequency() * POLL_US / 1_000_000);
        }
    }

    // ---- Control requests -------------------------------------------------

    /// Sends `request` (as many bytes as given, at most [`CONTROL_BYTES`])
    /// with a device-writable response buffer of `response.len()` bytes
    /// (none if 0), waits for the answer and copies it into `response`.
    /// Returns the length the device says it wrote. No check of the
    /// answer's status: see [`Sound::command`].
    pub fn request(&mut self, request: &[u8], response: &mut [u8]) -> Result<u32, Error> {
        if request.len() > CONTROL_BYTES || response.len() > CONTROL_BYTES {
            return Err(Error::TooLarge(request.len().max(response.len())));
        }
        let Some(slot) = (0..CONTROL_SLOTS).find(|&i| !self.control_held[i]) else {
            return Err(Error::Busy);
        };
        let dma = self.dma;
        // SAFETY: the pair is the driver's; the device gets it only with
        // the chain below.
        let (req, resp) = unsafe {
            (
                addr_of_mut!((*dma).requests[slot].0).cast::<u8>(),
                addr_of_mut!((*dma).responses[slot].0).cast::<u8>(),
            )
        };
        // SAFETY: both buffers are CONTROL_BYTES long; lengths checked.
        unsafe {
            core::ptr::copy_nonoverlapping(request.as_ptr(), req, request.len());
            core::ptr::write_bytes(resp, 0, CONTROL_BYTES);
        }
        dcache_clean_invalidate(req as usize, CONTROL_BYTES);
        dcache_clean_invalidate(resp as usize, CONTROL_BYTES);
        let mut chain = [Segment {
            addr: req as u64,
            len: request.len() as u32,
            device_writes: false,
        }; 2];
        let mut n = 1;
        if !response.is_empty() {
            chain[1] = Segment {
                addr: resp as u64,
                len: response.len() as u32,
                device_writes: true,
            };
            n = 2;
        }
        self.control_done[slot] = None;
        self.submit(
            queue::CONTROL as usize,
            &chain[..n],
            Tag::Control(slot as u8),
        )?;
        // Held until the device returns it, even if the wait gives up.
        self.control_held[slot] = true;
        let ms = self.timeout_ms;
        self.wait(queue::CONTROL as usize, ms, |s| {
            s.control_done[slot].is_some()
        })?;
        dcache_clean_invalidate(resp as usize, CONTROL_BYTES);
        // SAFETY: the device returned the chain; the buffer is ours again.
        unsafe { core::ptr::copy_nonoverlapping(resp, response.as_mut_ptr(), response.len()) };
        Ok(self.control_done[slot].unwrap_or(0))
    }

    /// Sends `request`, expects at least `response.len()` bytes back with
    /// status OK in the first four.
    pub fn command(&mut self, request: &[u8], response: &mut [u8]) -> Result<(), Error> {
        if response.len() < 4 {
            return Err(Error::Invalid("answer buffer under 4 bytes"));
        }
        let len = self.request(request, response)?;
        if len < 4 {
            return Err(Error::Short(len));
        }
        match u32::from_le_bytes([response[0], response[1], response[2], response[3]]) {
            code::S_OK if (len as usize) < response.len() => Err(Error::Short(len)),
            code::S_OK => Ok(()),
            other => Err(Error::Status(other)),
        }
    }

    /// A request of just `code` and `stream` (PREPARE, RELEASE, START,
    /// STOP).
    pub fn pcm(&mut self, code: u32, stream: u32) -> Result<(), Error> {
        let mut r = [0u8; 8];
        r[0..4].copy_from_slice(&code.to_le_bytes());
        r[4..8].copy_from_slice(&stream.to_le_bytes());
        self.command(&r, &mut [0u8; 4])
    }

    /// QUERY_INFO for PCM stream `stream` (one entry of 32 bytes).
    pub fn pcm_info_of(&mut self, stream: u32) -> Result<PcmInfo, Error> {
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&code::PCM_INFO.to_le_bytes());
        r[4..8].copy_from_slice(&stream.to_le_bytes());
        r[8..12].copy_from_slice(&1u32.to_le_bytes());
        r[12..16].copy_from_slice(&32u32.to_le_bytes());
        let mut a = [0u8; 4 + 32];
        self.command(&r, &mut a)?;
        let word = |at: usize| u32::from_le_bytes([a[at], a[at + 1], a[at + 2], a[at + 3]]);
        let dword = |at: usize| u64::from(word(at)) | u64::from(word(at + 4)) << 32;
        Ok(PcmInfo {
            hda_fn_nid: word(4),
            features: word(8),
            formats: dword(12),
            rates: dword(20),
            direction: a[28],
            channels_min: a[29],
            channels_max: a[30],
        })
    }

    /// QUERY_INFO for stream 0.
    pub fn pcm_info(&mut self) -> Result<PcmInfo, Error> {
        self.pcm_info_of(0)
    }

    /// SET_PARAMS exactly as `p` says.
    pub fn set_params_with(&mut self, p: Params) -> Result<(), Error> {
        let mut r = [0u8; 24];
        r[0..4].copy_from_slice(&code::PCM_SET_PARAMS.to_le_bytes());
        r[4..8].copy_from_slice(&p.stream.to_le_bytes());
        r[8..12].copy_from_slice(&p.buffer_bytes.to_le_bytes());
        r[12..16].copy_from_slice(&p.period_bytes.to_le_bytes());
        r[16..20].copy_from_slice(&p.features.to_le_bytes());
        r[20] = p.channels;
        r[21] = p.format;
        r[22] = p.rate;
        self.command(&r, &mut [0u8; 4])
    }

    /// SET_PARAMS for stream 0: S16, 48 kHz. The driver then keeps
    /// `buffer_bytes / period_bytes` periods in flight at most (1 to
    /// [`TX_SLOTS`]).
    pub fn set_params(
        &mut self,
        channels: u8,
        period_bytes: u32,
        buffer_bytes: u32,
    ) -> Result<(), Error> {
        if period_bytes as usize > PERIOD_MAX {
            return Err(Error::TooLarge(period_bytes as usize));
        }
        self.set_params_with(Params {
            stream: 0,
            buffer_bytes,
            period_bytes,
            features: 0,
            channels,
            format: format::S16,
            rate: rate::R48000,
        })?;
        self.depth = (buffer_bytes / period_bytes.max(1)).clamp(1, TX_SLOTS as u32) as usize;
        self.channels = channels.max(1);
        Ok(())
    }

    pub fn prepare(&mut self) -> Result<(), Error> {
        self.pcm(code::PCM_PREPARE, 0)
    }

    pub fn start(&mut self) -> Result<(), Error> {
        self.pcm(code::PCM_START, 0)
    }

    pub fn stop(&mut self) -> Result<(), Error> {
        self.pcm(code::PCM_STOP, 0)
    }

    pub fn release(&mut self) -> Result<(), Error> {
        self.pcm(code::PCM_RELEASE, 0)
    }

    // ---- Playback -----------------------------------------------------

    /// Queues one period of interleaved S16 samples on txq; Err(Full) if
    /// all tx slots are busy.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), Error> {
        let bytes = samples.len() * 2;
        if bytes > PERIOD_MAX {
            return Err(Error::TooLarge(bytes));
        }
        if samples.is_empty() {
            return Err(Error::Invalid("empty period"));
        }
        if !samples.len().is_multiple_of(usize::from(self.channels)) {
            return Err(Error::Invalid("not whole frames"));
        }
        if self.free_slots() == 0 {
            return Err(Error::Full);
        }
        let Some(slot) = (0..TX_SLOTS).find(|&i| !self.tx_busy[i]) else {
            return Err(Error::Full);
        };
        let dma = self.dma;
        // SAFETY: the slot's buffers are the driver's while it is not busy.
        let (header, data, st) = unsafe {
            (
                addr_of_mut!((*dma).tx_headers[slot].0).cast::<u32>(),
                addr_of_mut!((*dma).tx_data[slot].0).cast::<i16>(),
                addr_of_mut!((*dma).tx_status[slot].0).cast::<u32>(),
            )
        };
        // SAFETY: aligned stores into the slot's buffers; `bytes` fits.
        unsafe {
            write_volatile(header, 0u32.to_le());
            core::ptr::copy_nonoverlapping(samples.as_ptr(), data, samples.len());
            write_volatile(st, UNWRITTEN);
            write_volatile(st.add(1), 0);
        }
        dcache_clean_invalidate(header as usize, 4);
        dcache_clean_invalidate(data as usize, bytes);
        dcache_clean_invalidate(st as usize, 8);
        let chain = [
            Segment {
                addr: header as u64,
                len: 4,
                device_writes: false,
            },
            Segment {
                addr: data as u64,
                len: bytes as u32,
                device_writes: false,
            },
            Segment {
                addr: st as u64,
                len: 8,
                device_writes: true,
            },
        ];
        self.submit(queue::TX as usize, &chain, Tag::Tx(slot as u8))?;
        self.tx_busy[slot] = true;
        Ok(())
    }

    /// Records a tx chain the device returned.
    fn take_tx(&mut self, slot: usize) {
        let dma = self.dma;
        // SAFETY: the device returned the slot; aligned loads.
        let (st, latency) = unsafe {
            let p = addr_of!((*dma).tx_status[slot].0).cast::<u32>();
            dcache_clean_invalidate(p as usize, 8);
            (
                u32::from_le(read_volatile(p)),
                u32::from_le(read_volatile(p.add(1))),
            )
        };
        self.tx_busy[slot] = false;
        self.completed.count += 1;
        self.completed.status = st;
        self.completed.latency_bytes = latency;
        if st != code::S_OK {
            self.completed.errors += 1;
        }
    }

    /// Reaps completed tx buffers: count and the last status/latency_bytes.
    pub fn reap(&mut self) -> Completed {
        self.collect(queue::TX as usize);
        core::mem::take(&mut self.completed)
    }

    /// Tx slots free for [`Sound::write`] (of the periods kept in flight,
    /// and as many as the tx queue has descriptors for).
    pub fn free_slots(&self) -> usize {
        let descriptors = self.queues[queue::TX as usize].free.count_ones() as usize / 3;
        self.depth.saturating_sub(self.in_flight()).min(descriptors)
    }

    /// Tx buffers the device has not returned yet.
    pub fn in_flight(&self) -> usize {
        self.tx_busy.iter().filter(|b| **b).count()
    }

    // ---- Events -----------------------------------------------------------

    /// Offers event buffer `i` (8 device-writable bytes).
    fn post_event(&mut self, i: usize) -> Result<u16, Error> {
        let dma = self.dma;
        // SAFETY: only the address is taken.
        let buffer = unsafe { addr_of_mut!((*dma).events[i].0) } as usize;
        // SAFETY: the buffer is the driver's until offered.
        unsafe { write_volatile(buffer as *mut u64, 0) };
        dcache_clean_invalidate(buffer, 8);
        let chain = [Segment {
            addr: buffer as u64,
            len: 8,
            device_writes: true,
        }];
        self.submit(queue::EVENT as usize, &chain, Tag::Event(i as u8))
    }

    /// Records an event the device wrote into buffer `i`.
    fn take_event(&mut self, i: usize) {
        let dma = self.dma;
        // SAFETY: the device returned the buffer; an aligned load.
        let e = unsafe {
            let p = addr_of!((*dma).events[i].0).cast::<u32>();
            dcache_clean_invalidate(p as usize, 8);
            u32::from_le(read_volatile(p))
        };
        match e {
            code::EVT_PCM_XRUN => self.events.xrun += 1,
            code::EVT_PCM_PERIOD_ELAPSED => self.events.period_elapsed += 1,
            code::EVT_JACK_CONNECTED | code::EVT_JACK_DISCONNECTED => self.events.jack += 1,
            other => {
                self.events.other += 1;
                self.events.last_other = other;
            }
        }
    }

    /// Pending events (XRUN, PERIOD_ELAPSED) since the last call.
    pub fn events(&mut self) -> Events {
        self.collect(queue::EVENT as usize);
        core::mem::take(&mut self.events)
    }

    // ---- Raw access, for hostile tests ----------------------------------

    /// Guest-physical address and length of the scratch area.
    pub fn scratch(&self) -> (u64, usize) {
        let dma = self.dma;
        // SAFETY: only the address is taken.
        (unsafe { addr_of!((*dma).scratch.0) } as u64, SCRATCH_BYTES)
    }

    /// Copies `bytes` into the scratch area at `offset` (what does not fit
    /// is dropped).
    pub fn raw_scratch_write(&mut self, offset: usize, bytes: &[u8]) {
        let (base, len) = self.scratch();
        let n = bytes.len().min(len.saturating_sub(offset));
        // SAFETY: within the scratch area, which the driver lends to the
        // device only in raw chains.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), (base as usize + offset) as *mut u8, n)
        };
        dcache_clean_invalidate(base as usize + offset, n);
    }

    /// Copies from the scratch area at `offset` into `out`.
    pub fn raw_scratch_read(&self, offset: usize, out: &mut [u8]) {
        let (base, len) = self.scratch();
        let n = out.len().min(len.saturating_sub(offset));
        dcache_clean_invalidate(base as usize + offset, n);
        // SAFETY: within the scratch area.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (base as usize + offset) as *const u8,
                out.as_mut_ptr(),
                n,
            )
        };
    }

    /// Offers `chain` on queue `q` as it is (any addresses, lengths and
    /// directions) and notifies; returns its head. Takes what the device
    /// returned on the queue first.
    pub fn raw_submit(&mut self, q: u32, chain: &[Segment]) -> Result<u16, Error> {
        if q as usize >= self.queues.len() {
            return Err(Error::NoQueue(q));
        }
        self.collect(q as usize);
        self.submit(q as usize, chain, Tag::Raw)
    }

    /// The used length of raw chain `head` of queue `q`, once the device
    /// returned it (collects the queue first).
    pub fn raw_done(&mut self, q: u32, head: u16) -> Option<u32> {
        let q = q as usize;
        if q >= self.queues.len() || usize::from(head) >= RING {
            return None;
        }
        self.collect(q);
        let queue = &self.queues[q];
        (queue.raw_done & 1u64 << head != 0).then(|| queue.raw_len[usize::from(head)])
    }

    /// Waits up to `ms` for raw chain `head` of queue `q` to come back:
    /// its used length.
    pub fn raw_wait(&mut self, q: u32, head: u16, ms: u64) -> Result<u32, Error> {
        let qi = q as usize;
        if qi >= self.queues.len() || usize::from(head) >= RING {
            return Err(Error::NoQueue(q));
        }
        self.wait(qi, ms, |s| s.queues[qi].raw_done & 1u64 << head != 0)?;
        Ok(self.queues[qi].raw_len[usize::from(head)])
    }

    /// Raw chains of queue `q` returned since the bring-up (collects the
    /// queue first).
    pub fn raw_completions(&mut self, q: u32) -> u32 {
        let q = q as usize % self.queues.len();
        self.collect(q);
        self.queues[q].raw_count
    }

    /// Writes queue `q`'s available index as `idx` (not the driver's own
    /// count) and notifies.
    pub fn raw_set_avail_idx(&mut self, q: u32, idx: u16) {
        let qi = q as usize % self.queues.len();
        let r = self.ring(qi);
        barrier();
        // SAFETY: an aligned store into the driver's available ring.
        unsafe { write_volatile(addr_of_mut!((*r).avail.idx), idx) };
        self.sync_ring(qi);
        self.write_reg(reg::QUEUE_NOTIFY, q);
    }

    /// Queue `q`'s available index as the driver counts it.
    pub fn raw_avail_idx(&self, q: u32) -> u16 {
        self.queues[q as usize % self.queues.len()].avail_idx
    }

    /// Entries of queue `q` (0: not set up).
    pub fn queue_size(&self, q: u32) -> u16 {
        self.queues[q as usize % self.queues.len()].size
    }
}
