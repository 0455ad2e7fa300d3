//! virtio-snd (VIRTIO 1.2 §5.14): the guest-side device model of the
//! audio mediator, one output PCM stream that the mixer plays.
//!
//! The stock Linux `virtio_snd` driver binds to it and registers one
//! playback PCM device: configuration space shows one jack, one stream
//! and one channel map. The stream ([`STREAM_ID`] 0) is an output of S16
//! samples at [`RATE`] Hz, mono or stereo (interleaved, left first); the
//! jack is a connected internal speaker (no remapping); the channel map
//! is front left, front right. The driver sets the stream up with control
//! requests and sends its samples as I/O messages on the txq; the mixer
//! takes them one period at a time with [`VirtioSound::pull`], which
//! completes each message once all its bytes have been played.
//!
//! Offered: VERSION_1, INDIRECT_DESC and EVENT_IDX (not
//! VIRTIO_SND_F_CTLS). Four queues of [`QUEUE_SIZE`]: controlq (0),
//! eventq (1), txq (2) and rxq (3).
//!
//! # Control requests
//!
//! - JACK_INFO, PCM_INFO and CHMAP_INFO (a `virtio_snd_query_info`):
//!   items `start_id..start_id + count` must exist, `size` must be at
//!   least the structure's size (and at most [`MAX_INFO_SIZE`]; the bytes
//!   beyond the structure are written as zeros), and the writable part
//!   must hold the 4-byte header and `count * size` bytes, all in RAM;
//!   otherwise BAD_MSG. PCM_INFO offers one stream feature,
//!   VIRTIO_SND_PCM_F_EVT_XRUNS: the specification has the driver enable
//!   underrun notifications by selecting it in SET_PARAMS, and Linux
//!   selects it whenever it is offered.
//! - PCM_SET_PARAMS, PREPARE, RELEASE, START, STOP for stream 0, with
//!   exactly the transitions of §5.14.6.6.1 (see [`StreamState::after`];
//!   before the first SET_PARAMS only SET_PARAMS is valid): anything else
//!   is BAD_MSG and changes nothing. SET_PARAMS with another format, rate,
//!   channel count or feature is NOT_SUPP, with sizes the specification
//!   forbids BAD_MSG, with sizes beyond the [`SoundLimits`] NOT_SUPP (see
//!   [`SoundLimits::check`]); it is BAD_MSG while I/O messages are queued
//!   (their framing depends on the parameters; Linux never does it: its
//!   `hw_params` refuses while messages are pending). RELEASE first
//!   completes every queued message (status OK, `latency_bytes` 0,
//!   played or not: the driver asked for them to be dropped), as the
//!   specification requires ("Device Requirements: Stream Release")
//!   before the request itself completes.
//! - JACK_REMAP, the control element requests (no VIRTIO_SND_F_CTLS) and
//!   unknown codes: NOT_SUPP.
//!
//! Before each batch of control requests the device takes the I/O
//! messages already on the txq, so that messages the driver queued before
//! a START (Linux pre-buffers, then starts) or a RELEASE are seen first,
//! whatever order the hypervisor handles the two notifications in.
//!
//! # I/O messages
//!
//! A txq chain is a device-readable `virtio_snd_pcm_xfer` (the stream id),
//! the PCM bytes (any number of buffers, possibly none), and a
//! device-writable `virtio_snd_pcm_status` in its **last 8 writable
//! bytes** (readable bytes and buffers may be framed in any way, §2.7.4).
//! The device takes it (keeps its token and where its bytes are, at most
//! [`TX_BUFFERS`] messages and [`TX_REGIONS`] buffers; nothing is copied)
//! if the stream is prepared, running or stopped, the stream id is 0, the
//! PCM bytes are whole frames, at most `buffer_bytes`, and all in the
//! partition's RAM. Otherwise it answers at once with status IO_ERR (the
//! only failure status an I/O message may carry), or, when it has no 8
//! writable bytes in RAM to put a status in (or more buffers than
//! [`QUEUE_SIZE`] in one direction), returns it with 0 bytes written.
//!
//! [`VirtioSound::pull`] plays the queued messages in order while the
//! stream runs, and completes each one whose bytes have all been taken,
//! with status OK (IO_ERR if some of its memory could not be read any
//! more, which a partition's own memory map never causes: each read of
//! up to 512 bytes that fails plays as silence) and `latency_bytes` = the
//! bytes still queued in the device behind it at that moment (what Linux
//! reports as the stream's delay). The samples are read from guest memory
//! when they are played: a driver that rewrites a queued buffer hears
//! what it wrote. Each time `period_bytes` of the stream have been
//! played, a VIRTIO_SND_EVT_PCM_PERIOD_ELAPSED event goes out (Linux
//! ignores it: a completed message is its period); each underrun episode
//! (see [`VirtioSound::pull`]) sends one VIRTIO_SND_EVT_PCM_XRUN if the
//! driver selected EVT_XRUNS. An event takes the next eventq buffer; with
//! none there it is dropped and counted (events are never held back).
//!
//! There is no capture stream: every rxq chain is answered at once with
//! status IO_ERR in its last 8 writable bytes (or returned with 0 bytes
//! written if it has none in RAM).
//!
//! # Hostile drivers
//!
//! Every guest value is checked before use; nothing panics, allocates or
//! loops beyond a fixed bound.
//! - A broken ring (a [`super::queue::QueueError`]: an available index
//!   running ahead, a bad head or `next`, a loop, a bad indirect table, a
//!   used ring outside RAM) sets DEVICE_NEEDS_RESET, as for the other
//!   devices; queued messages are forgotten and the stream no longer
//!   plays until a reset.
//! - An eventq chain without 8 writable bytes in RAM at its start is
//!   returned with 0 bytes written and the next one is tried.
//! - A driver that disables and re-enables the txq without a device reset
//!   (QueueReady 0, then 1; Linux never does) keeps its old messages
//!   queued: they are played from its memory, and their completions are
//!   dropped with the old ring. They fill the store until played.
//!
//! # Work per call
//!
//! One call takes at most [`CHAINS_PER_CALL`] chains from each queue it
//! serves and at most [`EVENT_BUFFERS_PER_CALL`] eventq chains, then asks
//! for another call with `ctx.more_work` (the effects' `notify`); one
//! `pull` reads at most the guest bytes of the frames asked for and
//! completes at most [`TX_BUFFERS`] messages.
//!
//! # Wiring
//!
//! As for every virtio device (see [`super`]): an
//! `MmioTransport<VirtioSound>` per partition, `notify_queue` for its
//! effects' `notify`. The audio mediator, once per mixer period, calls
//! `transport.with_device(&mem, |snd, ctx| snd.pull(&mut period, ctx))`
//! for each partition and applies the effects (`irq` to the vGIC,
//! `notify` with `notify_queue` later); [`VirtioSound::stream`] says
//! whether the stream plays (and so ducks others) and its channel count.
//! `pull` also takes the messages the driver has made available since
//! the last notification was served, so a deferred notification does not
//! starve the mixer.

mod control;
pub mod protocol;
pub mod stream;

pub use stream::{Command, PcmParams, SoundLimits, StreamState};

use super::device::{DeviceContext, VirtioDevice, feature, id};
use super::memory::GuestMemory;
use super::queue::{ChainBuffers, ChainToken, Region};
use protocol::{Event, PcmStatus, SetParams, event, status};

/// The control queue (driver to device, with responses).
pub const CONTROL_QUEUE: u16 = 0;
/// The event queue (device to driver).
pub const EVENT_QUEUE: u16 = 1;
/// The output (playback) data queue.
pub const TX_QUEUE: u16 = 2;
/// The input (capture) data queue; this device has no input stream.
pub const RX_QUEUE: u16 = 3;
/// QueueNumMax of every queue (Linux fills the eventq, and queues at
/// most 16 periods on the txq, one ring entry each with indirect
/// descriptors).
pub const QUEUE_SIZE: u16 = 64;
/// Frame rate of the stream, the only one offered.
pub const RATE: u32 = 48_000;
/// The one stream's id.
pub const STREAM_ID: u32 = 0;
/// Chains taken from one queue per call at most.
pub const CHAINS_PER_CALL: u32 = QUEUE_SIZE as u32;
/// eventq chains taken per call at most (good or not).
pub const EVENT_BUFFERS_PER_CALL: u32 = QUEUE_SIZE as u32;
/// Largest `size` of a QUERY_INFO request (a newer driver's longer
/// structure): bounds the zeros the device writes.
pub const MAX_INFO_SIZE: u32 = 1024;
/// I/O messages the device holds at most (a txq's worth).
pub const TX_BUFFERS: usize = QUEUE_SIZE as usize;
/// Buffers (PCM bytes and status) of the held messages, altogether.
/// Linux's messages are a period each, at most a few pages: its largest
/// buffer (16 periods, 64 KiB) needs well under half of this.
pub const TX_REGIONS: usize = 256;

/// Buffers per direction a chain can have (at most the queue size).
const CHAIN_BUFFERS: usize = QUEUE_SIZE as usize;
/// PCM bytes read from guest memory at a time (a multiple of both frame
/// sizes).
const CHUNK: usize = 512;

/// Items of each kind (configuration space).
const JACKS: u32 = 1;
const STREAMS: u32 = 1;
const CHMAPS: u32 = 1;

/// What the mixer sees of the stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamView {
    /// The stream is started (and the device works): the mixer mixes it,
    /// and it ducks lower ones even while it underruns.
    pub running: bool,
    /// 1 or 2 once parameters are set, 0 before.
    pub channels: u8,
}

/// Counters for logs and tests. They survive resets: they describe the
/// device's whole life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoundStats {
    /// Control requests answered (or returned without an answer) ...
    pub control_requests: u64,
    /// ... of which not with OK.
    pub control_errors: u64,
    /// I/O messages taken (queued) ...
    pub tx_requests: u64,
    /// ... completed once played ...
    pub tx_completed: u64,
    /// ... completed by RELEASE ...
    pub tx_released: u64,
    /// ... or forgotten at a reset or a broken ring.
    pub tx_discarded: u64,
    /// txq chains refused (IO_ERR, or returned without a status).
    pub tx_bad: u64,
    /// rxq chains answered.
    pub rx_requests: u64,
    /// Frames the guest provided to `pull`.
    pub frames_played: u64,
    /// Underrun episodes of the running stream.
    pub underruns: u64,
    /// XRUN events delivered ...
    pub xrun_events: u64,
    /// ... and dropped (no eventq buffer). Episodes the driver did not
    /// want events for are in neither.
    pub xrun_events_dropped: u64,
    /// PERIOD_ELAPSED events delivered ...
    pub period_events: u64,
    /// ... and dropped (no eventq buffer, or over the per-call budget).
    pub period_events_dropped: u64,
    /// eventq chains returned unused (too short, outside RAM).
    pub bad_event_buffers: u64,
    /// Times the driver broke a ring (DEVICE_NEEDS_RESET).
    pub broken_rings: u64,
}

/// A queued I/O message. Its buffers are in the region store, in queue
/// order: first its `data_regions` PCM buffers, then its
/// `status_regions` pieces of the 8-byte status.
#[derive(Clone, Copy, Debug)]
struct TxBuffer {
    token: ChainToken,
    /// PCM bytes, whole frames.
    len: u32,
    /// Bytes played so far.
    taken: u32,
    data_regions: u16,
    status_regions: u8,
    /// Some of its memory could not be read: completed with IO_ERR.
    failed: bool,
}

type Chain = ChainBuffers<CHAIN_BUFFERS>;

/// A partition's virtio-snd device.
pub struct VirtioSound {
    limits: SoundLimits,
    state: StreamState,
    /// Some exactly when `state` is not `Unset`.
    params: Option<PcmParams>,
    /// Queued I/O messages, oldest (playing) first.
    fifo: heapless::Deque<TxBuffer, TX_BUFFERS>,
    /// Their buffers, in the same order.
    regions: heapless::Deque<Region, TX_REGIONS>,
    /// PCM bytes queued and not yet played.
    queued_bytes: u64,
    /// Bytes played since the last period boundary.
    period_pos: u32,
    /// In an underrun episode: the last non-empty pull was short.
    starved: bool,
    /// The driver broke a ring; nothing works until a reset.
    broken: bool,
    stats: SoundStats,
}

impl VirtioSound {
    /// A device whose stream accepts sizes within `limits` (see
    /// [`SoundLimits::default`] for what Linux needs).
    pub fn new(limits: SoundLimits) -> Self {
        Self {
            limits,
            state: StreamState::Unset,
            params: None,
            fifo: heapless::Deque::new(),
            regions: heapless::Deque::new(),
            queued_bytes: 0,
            period_pos: 0,
            starved: false,
            broken: false,
            stats: SoundStats::default(),
        }
    }

    pub fn limits(&self) -> SoundLimits {
        self.limits
    }

    pub fn state(&self) -> StreamState {
        self.state
    }

    /// The stream's parameters, once set.
    pub fn params(&self) -> Option<PcmParams> {
        self.params
    }

    pub fn stream(&self) -> StreamView {
        StreamView {
            running: self.state == StreamState::Running && !self.broken,
            channels: self.params.map_or(0, |p| p.channels),
        }
    }

    /// I/O messages queued (at most [`TX_BUFFERS`]).
    pub fn queued_buffers(&self) -> usize {
        self.fifo.len()
    }

    /// PCM bytes queued and not yet played.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    pub fn stats(&self) -> SoundStats {
        self.stats
    }

    /// One mixer period: fills `out` (interleaved stereo S16 frames,
    /// `out.len()` = 2 × frames; a dangling odd sample is set to 0) from
    /// the running stream's queued I/O messages, in order (a mono
    /// stream's sample goes to both channels), completing each message
    /// whose bytes have all been taken. Frames the guest did not provide
    /// are 0. Returns how many frames came from the guest.
    ///
    /// If the stream runs and comes up short (an underrun), this is
    /// counted once per episode (until a pull is served in full again, or
    /// the stream is started anew) and, if the driver selected EVT_XRUNS,
    /// one VIRTIO_SND_EVT_PCM_XRUN goes out on the eventq. If the stream
    /// is not running, nothing is taken and `out` is all zeros. Call it
    /// through [`super::mmio::MmioTransport::with_device`] and apply the
    /// effects.
    pub fn pull(&mut self, out: &mut [i16], ctx: &mut DeviceContext<'_>) -> usize {
        out.fill(0);
        self.process_tx(ctx);
        let Some(params) = self.params.filter(|_| self.stream().running) else {
            return 0;
        };
        let frames = out.len() / 2;
        let frame_bytes = params.frame_bytes() as usize;
        let mut done = 0;
        while let Some(head) = self.fifo.front().copied() {
            let left = (head.len - head.taken) as usize;
            if left < frame_bytes {
                // All taken (never a partial frame: lengths are whole
                // frames and the parameters cannot change under them).
                self.complete_head(false, ctx);
                if self.broken {
                    break;
                }
                continue;
            }
            if done == frames {
                break;
            }
            let n = (left / frame_bytes).min(frames - done);
            let failed = self.play(&head, n, frame_bytes, &mut out[2 * done..], ctx.mem());
            let bytes = (n * frame_bytes) as u32;
            if let Some(h) = self.fifo.front_mut() {
                h.taken += bytes;
                h.failed |= failed;
            }
            self.queued_bytes -= u64::from(bytes);
            self.period_pos = self.period_pos.saturating_add(bytes);
            done += n;
        }
        self.stats.frames_played += done as u64;
        if self.broken {
            return done;
        }
        let mut budget = EVENT_BUFFERS_PER_CALL;
        self.period_events(params, &mut budget, ctx);
        if frames > 0 && done < frames {
            if !self.starved {
                self.starved = true;
                self.stats.underruns += 1;
                if params.xrun_events() {
                    if self.send_event(event::PCM_XRUN, &mut budget, ctx) {
                        self.stats.xrun_events += 1;
                    } else {
                        self.stats.xrun_events_dropped += 1;
                    }
                }
            }
        } else if frames > 0 {
            self.starved = false;
        }
        done
    }

    /// Checks the model's own consistency (for tests and fuzzing): the
    /// region store holds exactly the queued messages' buffers, whose PCM
    /// buffers add up to each message's length; the queued bytes are what
    /// is left to play; messages are queued only in a state that takes
    /// them, with whole frames within the buffer size; the parameters are
    /// within the limits and set exactly when the state says so; every
    /// message taken is completed, released, discarded or still queued.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        if (self.state == StreamState::Unset) != self.params.is_none() {
            return Err("parameters and state disagree");
        }
        if !self.fifo.is_empty() && (!self.state.takes_io() || self.broken) {
            return Err("messages queued in a state that takes none");
        }
        let mut regions = self.regions.iter();
        let mut queued = 0u64;
        for m in self.fifo.iter() {
            if m.taken > m.len {
                return Err("a message played beyond its end");
            }
            if !(1..=protocol::PCM_STATUS_BYTES as u8).contains(&m.status_regions) {
                return Err("a status in no piece or too many");
            }
            let mut data = 0u64;
            for _ in 0..m.data_regions {
                let Some(r) = regions.next() else {
                    return Err("fewer regions than the messages have");
                };
                data += u64::from(r.len);
            }
            if data != u64::from(m.len) {
                return Err("a message's buffers do not add up to its length");
            }
            let mut status = 0u64;
            for _ in 0..m.status_regions {
                let Some(r) = regions.next() else {
                    return Err("fewer regions than the messages have");
                };
                status += u64::from(r.len);
            }
            if status != protocol::PCM_STATUS_BYTES as u64 {
                return Err("a status that is not 8 bytes");
            }
            if let Some(p) = self.params {
                let fb = p.frame_bytes();
                if m.len > p.buffer_bytes
                    || !m.len.is_multiple_of(fb)
                    || !m.taken.is_multiple_of(fb)
                {
                    return Err("a message of partial frames or beyond the buffer");
                }
            }
            queued += u64::from(m.len - m.taken);
        }
        if regions.next().is_some() {
            return Err("regions of no message");
        }
        if queued != self.queued_bytes {
            return Err("queued bytes miscounted");
        }
        if let Some(p) = self.params {
            let req = SetParams {
                stream_id: STREAM_ID,
                buffer_bytes: p.buffer_bytes,
                period_bytes: p.period_bytes,
                features: p.features,
                channels: p.channels,
                format: protocol::PCM_FMT_S16,
                rate: protocol::PCM_RATE_48000,
            };
            if self.limits.check(&req) != Ok(p) {
                return Err("parameters the limits refuse");
            }
            if self.period_pos >= p.period_bytes {
                return Err("a period elapsed without its event");
            }
        }
        let s = &self.stats;
        if s.tx_completed + s.tx_released + s.tx_discarded + self.fifo.len() as u64 != s.tx_requests
        {
            return Err("messages unaccounted for");
        }
        Ok(())
    }

    /// Plays `n` frames of the head message `head` into `out` (stereo),
    /// reading them from its PCM buffers; true if some of them could not
    /// be read (they play as silence).
    fn play(
        &self,
        head: &TxBuffer,
        n: usize,
        frame_bytes: usize,
        out: &mut [i16],
        mem: &dyn GuestMemory,
    ) -> bool {
        let data = || self.regions.iter().take(usize::from(head.data_regions));
        let mut failed = false;
        let mut offset = u64::from(head.taken);
        let mut i = 0;
        let mut buf = [0u8; CHUNK];
        while i < n {
            let k = (n - i).min(CHUNK / frame_bytes);
            let bytes = &mut buf[..k * frame_bytes];
            if read_stream(data(), offset, bytes, mem).is_err() {
                bytes.fill(0);
                failed = true;
            }
            let out = &mut out[2 * i..2 * (i + k)];
            for (frame, o) in bytes.chunks_exact(frame_bytes).zip(out.chunks_exact_mut(2)) {
                let left = i16::from_le_bytes([frame[0], frame[1]]);
                let right = match frame_bytes {
                    4 => i16::from_le_bytes([frame[2], frame[3]]),
                    _ => left,
                };
                o[0] = left;
                o[1] = right;
            }
            offset += bytes.len() as u64;
            i += k;
        }
        failed
    }

    /// Sends a PERIOD_ELAPSED for each whole period played since the
    /// last one.
    fn period_events(&mut self, params: PcmParams, budget: &mut u32, ctx: &mut DeviceContext<'_>) {
        let periods = self.period_pos / params.period_bytes;
        self.period_pos %= params.period_bytes;
        for sent in 0..periods {
            if !self.send_event(event::PCM_PERIOD_ELAPSED, budget, ctx) {
                // No buffer now: none later in this call either.
                self.stats.period_events_dropped += u64::from(periods - sent);
                return;
            }
            self.stats.period_events += 1;
        }
    }

    /// Writes event `code` (for the stream) into the next usable eventq
    /// buffer: false if there is none (within `budget`) or the ring broke.
    fn send_event(&mut self, code: u32, budget: &mut u32, ctx: &mut DeviceContext<'_>) -> bool {
        let e = Event {
            code,
            data: STREAM_ID,
        }
        .to_bytes();
        while !self.broken && *budget > 0 {
            *budget -= 1;
            let chain = match ctx.pop(EVENT_QUEUE) {
                Ok(Some(c)) => c,
                Ok(None) => return false,
                Err(_) => {
                    self.break_ring(ctx);
                    return false;
                }
            };
            let bufs = match Chain::collect(chain, ctx.mem()) {
                Ok(b) => b,
                Err(_) => {
                    self.break_ring(ctx);
                    return false;
                }
            };
            let written = writable_in_ram(&bufs, ctx.mem(), 0, e.len())
                && bufs.write(ctx.mem(), 0, &e).is_ok();
            if !written {
                self.stats.bad_event_buffers += 1;
            }
            let n = if written { e.len() as u32 } else { 0 };
            if ctx.push(bufs.token(), n).is_err() {
                self.break_ring(ctx);
                return false;
            }
            if written {
                return true;
            }
        }
        false
    }

    /// The next chain of queue `q`, walked, within `budget`; None when
    /// the ring is empty (notification re-armed), the budget is spent
    /// (more work asked for) or the ring broke.
    fn next_chain(
        &mut self,
        q: u16,
        budget: &mut u32,
        ctx: &mut DeviceContext<'_>,
    ) -> Option<Chain> {
        loop {
            if self.broken {
                return None;
            }
            if *budget == 0 {
                ctx.more_work(q);
                return None;
            }
            match ctx.pop(q) {
                Ok(Some(chain)) => {
                    *budget -= 1;
                    match Chain::collect(chain, ctx.mem()) {
                        Ok(b) => return Some(b),
                        Err(_) => self.break_ring(ctx),
                    }
                }
                Ok(None) => match ctx.enable_notification(q) {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(_) => self.break_ring(ctx),
                },
                Err(_) => self.break_ring(ctx),
            }
        }
    }

    /// Returns a chain as used; a used ring that refuses it is broken.
    fn push(&mut self, token: ChainToken, written: u32, ctx: &mut DeviceContext<'_>) {
        if ctx.push(token, written).is_err() {
            self.break_ring(ctx);
        }
    }

    fn break_ring(&mut self, ctx: &mut DeviceContext<'_>) {
        if !self.broken {
            self.stats.broken_rings += 1;
        }
        self.broken = true;
        self.discard();
        ctx.needs_reset();
    }

    /// Forgets the queued messages (counted as discarded).
    fn discard(&mut self) {
        self.stats.tx_discarded += self.fifo.len() as u64;
        self.fifo.clear();
        self.regions.clear();
        self.queued_bytes = 0;
    }

    /// Completes the oldest queued message: its status (OK unless its
    /// memory failed), with the bytes still queued behind it as the
    /// latency (0 when `released`).
    fn complete_head(&mut self, released: bool, ctx: &mut DeviceContext<'_>) {
        let Some(m) = self.fifo.pop_front() else {
            return;
        };
        for _ in 0..m.data_regions {
            self.regions.pop_front();
        }
        let mut at = heapless::Vec::<Region, { protocol::PCM_STATUS_BYTES }>::new();
        for _ in 0..m.status_regions {
            if let Some(r) = self.regions.pop_front() {
                let _ = at.push(r);
            }
        }
        self.queued_bytes -= u64::from(m.len - m.taken);
        if released {
            self.stats.tx_released += 1;
        } else {
            self.stats.tx_completed += 1;
        }
        let s = PcmStatus {
            status: if m.failed { status::IO_ERR } else { status::OK },
            latency_bytes: if released {
                0
            } else {
                u32::try_from(self.queued_bytes).unwrap_or(u32::MAX)
            },
        };
        let written = write_regions(&at, &s.to_bytes(), ctx.mem());
        self.push(m.token, written, ctx);
    }

    /// Takes the txq's available chains.
    fn process_tx(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = CHAINS_PER_CALL;
        while let Some(bufs) = self.next_chain(TX_QUEUE, &mut budget, ctx) {
            self.take_tx(&bufs, ctx);
        }
    }

    /// Queues one txq chain, or answers it at once.
    fn take_tx(&mut self, bufs: &Chain, ctx: &mut DeviceContext<'_>) {
        let mem = ctx.mem();
        let Some(status_at) = status_regions(bufs, mem) else {
            self.stats.tx_bad += 1;
            return self.push(bufs.token(), 0, ctx);
        };
        let Some((len, data)) = self.check_tx(bufs, status_at.len(), mem) else {
            self.stats.tx_bad += 1;
            let s = PcmStatus {
                status: status::IO_ERR,
                latency_bytes: u32::try_from(self.queued_bytes).unwrap_or(u32::MAX),
            };
            let written = write_regions(&status_at, &s.to_bytes(), mem);
            return self.push(bufs.token(), written, ctx);
        };
        // Room was checked.
        for r in data.iter().chain(status_at.iter()) {
            let _ = self.regions.push_back(*r);
        }
        let _ = self.fifo.push_back(TxBuffer {
            token: bufs.token(),
            len,
            taken: 0,
            data_regions: data.len() as u16,
            status_regions: status_at.len() as u8,
            failed: false,
        });
        self.queued_bytes += u64::from(len);
        self.stats.tx_requests += 1;
    }

    /// A txq chain the device can queue: its PCM length and buffers.
    fn check_tx(
        &self,
        bufs: &Chain,
        status_regions: usize,
        mem: &dyn GuestMemory,
    ) -> Option<(u32, heapless::Vec<Region, CHAIN_BUFFERS>)> {
        let params = self.params.filter(|_| self.state.takes_io())?;
        let mut xfer = [0u8; protocol::XFER_BYTES];
        bufs.read(mem, 0, &mut xfer).ok()?;
        if u32::from_le_bytes(xfer) != STREAM_ID {
            return None;
        }
        let len = bufs.readable_len() - protocol::XFER_BYTES as u32;
        if len > params.buffer_bytes || !len.is_multiple_of(params.frame_bytes()) {
            return None;
        }
        let data = bufs
            .readable_range::<CHAIN_BUFFERS>(protocol::XFER_BYTES as u32, len)
            .ok()?;
        if !data
            .iter()
            .all(|r| mem.check(r.gpa, u64::from(r.len)).is_ok())
        {
            return None;
        }
        let room = TX_REGIONS - self.regions.len();
        if self.fifo.is_full() || data.len() + status_regions > room {
            return None;
        }
        Some((len, data))
    }

    /// Answers every rxq chain with IO_ERR: there is no input stream.
    fn process_rx(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = CHAINS_PER_CALL;
        while let Some(bufs) = self.next_chain(RX_QUEUE, &mut budget, ctx) {
            self.stats.rx_requests += 1;
            let written = match status_regions(&bufs, ctx.mem()) {
                Some(at) => {
                    let s = PcmStatus {
                        status: status::IO_ERR,
                        latency_bytes: 0,
                    };
                    write_regions(&at, &s.to_bytes(), ctx.mem())
                }
                None => 0,
            };
            self.push(bufs.token(), written, ctx);
        }
    }
}

/// Whether bytes `offset..offset + len` of the chain's writable part
/// exist and are all in the partition's RAM.
fn writable_in_ram(bufs: &Chain, mem: &dyn GuestMemory, offset: usize, len: usize) -> bool {
    let (Ok(offset), Ok(len)) = (u32::try_from(offset), u32::try_from(len)) else {
        return false;
    };
    match bufs.writable_range::<CHAIN_BUFFERS>(offset, len) {
        Ok(at) => at
            .iter()
            .all(|r| mem.check(r.gpa, u64::from(r.len)).is_ok()),
        Err(_) => false,
    }
}

/// Where a `virtio_snd_pcm_status` goes: the last 8 writable bytes, if
/// the chain has them and they are in RAM.
fn status_regions(
    bufs: &Chain,
    mem: &dyn GuestMemory,
) -> Option<heapless::Vec<Region, { protocol::PCM_STATUS_BYTES }>> {
    let n = protocol::PCM_STATUS_BYTES as u32;
    let offset = bufs.writable_len().checked_sub(n)?;
    let at = bufs.writable_range(offset, n).ok()?;
    at.iter()
        .all(|r| mem.check(r.gpa, u64::from(r.len)).is_ok())
        .then_some(at)
}

/// Writes `data` across `at` (which add up to its length): the bytes
/// written, or 0 if memory refused a piece.
fn write_regions(at: &[Region], data: &[u8], mem: &dyn GuestMemory) -> u32 {
    let mut done = 0;
    for r in at {
        let n = r.len as usize;
        match data.get(done..done + n) {
            Some(piece) if mem.write(r.gpa, piece).is_ok() => done += n,
            _ => return 0,
        }
    }
    done as u32
}

/// Reads `buf.len()` bytes at `offset` of the byte stream `regions` make
/// up.
fn read_stream<'a>(
    regions: impl Iterator<Item = &'a Region>,
    offset: u64,
    buf: &mut [u8],
    mem: &dyn GuestMemory,
) -> Result<(), ()> {
    let mut skip = offset;
    let mut done = 0;
    for r in regions {
        if done == buf.len() {
            break;
        }
        let len = u64::from(r.len);
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = ((len - skip) as usize).min(buf.len() - done);
        mem.read(r.gpa + skip, &mut buf[done..done + n])
            .map_err(|_| ())?;
        done += n;
        skip = 0;
    }
    if done == buf.len() { Ok(()) } else { Err(()) }
}

impl VirtioDevice for VirtioSound {
    fn device_id(&self) -> u32 {
        id::SOUND
    }

    fn device_features(&self) -> u64 {
        feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX
    }

    fn queue_count(&self) -> u16 {
        4
    }

    fn queue_max_size(&self, _queue: u16) -> u16 {
        QUEUE_SIZE
    }

    /// `jacks`, `streams` and `chmaps`, each 1; nothing beyond.
    fn read_config(&self, offset: u32, data: &mut [u8]) {
        let mut image = [0u8; protocol::config::BYTES];
        image[protocol::config::JACKS..][..4].copy_from_slice(&JACKS.to_le_bytes());
        image[protocol::config::STREAMS..][..4].copy_from_slice(&STREAMS.to_le_bytes());
        image[protocol::config::CHMAPS..][..4].copy_from_slice(&CHMAPS.to_le_bytes());
        for (i, b) in data.iter_mut().enumerate() {
            let at = (offset as usize).checked_add(i);
            if let Some(v) = at.and_then(|at| image.get(at)) {
                *b = *v;
            }
        }
    }

    fn queue_notify(&mut self, queue: u16, ctx: &mut DeviceContext<'_>) {
        match queue {
            CONTROL_QUEUE => self.process_control(ctx),
            TX_QUEUE => self.process_tx(ctx),
            RX_QUEUE => self.process_rx(ctx),
            // Events are written when they happen, into whatever buffers
            // the ring has then.
            _ => {}
        }
    }

    /// Forgets the stream (back to no parameters) and the queued
    /// messages (counted in [`SoundStats::tx_discarded`]); the counters
    /// stay.
    fn reset(&mut self) {
        self.discard();
        self.state = StreamState::Unset;
        self.params = None;
        self.period_pos = 0;
        self.starved = false;
        self.broken = false;
    }
}

#[cfg(test)]
mod tests;
