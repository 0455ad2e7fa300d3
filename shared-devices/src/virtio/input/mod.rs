//! virtio-input (VIRTIO 1.2 §5.8): the guest-side device model of the
//! touch mediator, a direct multi-touch screen the size of a view.
//!
//! The stock Linux `virtio_input` driver binds to it and registers a
//! multi-touch touchscreen: configuration space
//! ([`config`]) shows `INPUT_PROP_DIRECT`, `BTN_TOUCH`, the single-touch
//! axes `ABS_X`/`ABS_Y` and the type B multi-touch axes (`ABS_MT_SLOT`,
//! `ABS_MT_POSITION_X`/`_Y`, `ABS_MT_TRACKING_ID`), so the driver sets up
//! the slots. The mediator hands the device whole **frames** (the events
//! of one update of the screen's state) with [`VirtioInput::push_frame`];
//! the device appends the `SYN_REPORT` and delivers each frame into the
//! driver's eventq, one 8-byte `virtio_input_event` per buffer.
//!
//! Offered: VERSION_1, INDIRECT_DESC and EVENT_IDX (no device features
//! exist). Two queues of [`QUEUE_SIZE`]: eventq (0) and statusq (1).
//!
//! # Frames are delivered whole
//!
//! A frame goes into the eventq only once the device holds enough of the
//! driver's buffers for all of its events and its `SYN_REPORT`: the
//! device takes buffers from the ring as it needs them and keeps them
//! (at most [`QUEUE_SIZE`]) until it has enough, then writes the whole
//! frame and returns its buffers together, in order. Until then the
//! frame waits in a pending store of [`PENDING_EVENTS`] events
//! (`SYN_REPORT`s included). When a new frame does not fit, the **oldest
//! whole frames** are dropped until it does: a partition that stops
//! reading its eventq loses its own oldest frames, never part of one, and
//! nobody else notices. Frames are refused (and counted as dropped) when
//! they can never be delivered whole or would break the framing: more
//! than [`MAX_FRAME_EVENTS`] events with the `SYN_REPORT` (a ring holds
//! at most [`QUEUE_SIZE`] buffers), or a `SYN_REPORT` of their own. Frames
//! pushed while no driver can take them (before DRIVER_OK, after a reset,
//! while the device waits for a reset) are not kept; frames waiting when
//! the device is reset or breaks are forgotten. Every pushed frame is
//! thus eventually delivered, or counted in exactly one drop counter of
//! [`InputStats`] (checked by [`VirtioInput::check_invariants`]).
//!
//! A driver that sets the eventq up with fewer entries than a frame needs
//! (Linux uses all [`QUEUE_SIZE`]) can never take that frame: it waits,
//! and the frames behind it with it, until the store overflows and drops
//! it as the oldest. A driver that disables and re-enables the eventq
//! (QueueReady 0, then 1) without a device reset, which Linux never does,
//! may lose the buffers the device held from the old ring, and the events
//! written to them: the transport does not tell the device, and drops
//! what it returns to a ring that is gone. That driver may then see the
//! end of a frame without its start; only its own partition's input
//! suffers.
//!
//! # Hostile drivers
//!
//! - An eventq chain whose device-writable part is shorter than 8 bytes
//!   (a device-readable buffer, a 7-byte one, an empty chain), or whose
//!   first 8 writable bytes are not all in the partition's RAM, is
//!   returned at once as used with 0 bytes written, and the device takes
//!   the next one. It is never returned between the events of a frame.
//!   Bytes beyond the first 8 and readable buffers before them are
//!   ignored. The event may be split over any number of descriptors and
//!   come through an indirect table (§2.7.4).
//! - statusq chains (the driver's LED and other feedback) are returned as
//!   used with 0 bytes written, whatever they hold: the device does not
//!   read them, not even their descriptors.
//! - A broken ring (a [`super::queue::QueueError`]: an available index
//!   running ahead, a bad head or `next`, a loop, a bad indirect table, a
//!   used ring outside RAM) sets DEVICE_NEEDS_RESET, as for the other
//!   devices; pending frames are then forgotten. A used ring that is only
//!   partly in RAM can make that happen in the middle of a frame's
//!   buffers: the driver then sees part of a frame, and a broken device.
//!
//! # Work per call
//!
//! One call takes at most [`BUFFERS_PER_CALL`] eventq chains (per
//! [`VirtioInput::push_frame`] and per notification) and
//! [`STATUS_BUFFERS_PER_CALL`] statusq chains, then asks for another call
//! with `ctx.more_work` (the effects' `notify`).
//!
//! # Wiring
//!
//! As for every virtio device (see [`super`]): an
//! `MmioTransport<VirtioInput>` per partition and touchscreen,
//! `notify_queue` for its effects' `notify`. The touch mediator delivers a
//! frame with `transport.with_device(&mem, |input, ctx|
//! input.push_frame(&events, ctx))` and then applies the effects: `irq`
//! to the vGIC, `notify` (more buffers to take) with `notify_queue` later.
//! The frame is the mediator's to shape: for Linux's type B protocol,
//! per changed contact `ABS_MT_SLOT`, `ABS_MT_TRACKING_ID` (a new id when
//! a finger lands, -1 when it lifts) and `ABS_MT_POSITION_X`/`_Y`, plus
//! `BTN_TOUCH` and `ABS_X`/`ABS_Y` for the first contact (the driver does
//! not emulate single touch). [`MAX_SLOTS`] contacts at 4 events each,
//! plus those 3, fit in one frame.

pub mod config;
pub mod protocol;

pub use config::{AbsInfo, Identity};
pub use protocol::InputEvent;

use super::device::{DeviceContext, VirtioDevice, feature, id};
use super::memory::GuestMemory;
use super::queue::{ChainBuffers, ChainToken, Region};
use config::ConfigSpace;
use protocol::EVENT_BYTES;

/// The event queue (device to driver).
pub const EVENT_QUEUE: u16 = 0;
/// The status queue (driver to device).
pub const STATUS_QUEUE: u16 = 1;
/// QueueNumMax of both queues (Linux posts this many event buffers).
pub const QUEUE_SIZE: u16 = 64;
/// Events (`SYN_REPORT`s included) the pending store holds.
pub const PENDING_EVENTS: usize = 256;
/// Events of the longest frame, its `SYN_REPORT` included: a frame must
/// fit in one ring's buffers.
pub const MAX_FRAME_EVENTS: usize = QUEUE_SIZE as usize;
/// Contacts at most (`slots` is clamped to it): a frame that reports
/// every contact fully (4 events each) with `BTN_TOUCH`, `ABS_X`, `ABS_Y`,
/// `MSC_TIMESTAMP` and the `SYN_REPORT` is at most [`MAX_FRAME_EVENTS`]
/// long.
pub const MAX_SLOTS: u32 = (MAX_FRAME_EVENTS as u32 - 5) / 4;
/// eventq chains taken per call at most.
pub const BUFFERS_PER_CALL: u32 = QUEUE_SIZE as u32;
/// statusq chains taken per call at most.
pub const STATUS_BUFFERS_PER_CALL: u32 = QUEUE_SIZE as u32;
/// Buffers per direction a chain can have (at most the queue size).
const CHAIN_BUFFERS: usize = QUEUE_SIZE as usize;
/// Buffers the device holds at most.
const HELD: usize = QUEUE_SIZE as usize;

/// Counters for logs and tests. They survive resets: they describe the
/// device's whole life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputStats {
    /// Frames given to [`VirtioInput::push_frame`] ...
    pub frames_pushed: u64,
    /// ... delivered whole into the eventq ...
    pub frames_delivered: u64,
    /// ... refused: too long, or with a `SYN_REPORT` of their own ...
    pub frames_refused: u64,
    /// ... pushed while no driver could take them ...
    pub frames_unready: u64,
    /// ... dropped (oldest first) to make room for newer ones ...
    pub frames_overflowed: u64,
    /// ... or waiting when the device was reset or broke.
    pub frames_discarded: u64,
    /// Events delivered, `SYN_REPORT`s included.
    pub events_delivered: u64,
    /// eventq chains returned unused (too short, read-only, outside RAM).
    pub bad_buffers: u64,
    /// statusq chains consumed.
    pub status_buffers: u64,
    /// Times the driver broke a ring (DEVICE_NEEDS_RESET).
    pub broken_rings: u64,
}

impl InputStats {
    /// Frames pushed and never delivered, whatever the reason.
    pub fn dropped_frames(&self) -> u64 {
        self.frames_refused + self.frames_unready + self.frames_overflowed + self.frames_discarded
    }
}

/// An eventq buffer the device took and has not returned: where its
/// first 8 writable bytes are (checked to be in RAM).
#[derive(Clone, Debug)]
struct Held {
    token: ChainToken,
    at: heapless::Vec<Region, EVENT_BYTES>,
}

/// What one call may still take.
struct Budget {
    buffers: u32,
}

/// A partition's virtio-input touchscreen.
pub struct VirtioInput {
    config: ConfigSpace,
    /// Pending events, oldest first; each frame ends with its SYN_REPORT.
    events: heapless::Deque<InputEvent, PENDING_EVENTS>,
    /// The length of each pending frame, oldest first (they add up to
    /// `events.len()`).
    frames: heapless::Deque<u8, PENDING_EVENTS>,
    /// Buffers taken for the oldest frame, in ring order.
    held: heapless::Deque<Held, HELD>,
    /// DRIVER_OK was set and the device was not reset since.
    active: bool,
    /// The driver broke a ring; nothing is delivered until a reset.
    broken: bool,
    stats: InputStats,
}

impl VirtioInput {
    /// A direct multi-touch screen of `width` x `height` positions (the
    /// view's size in pixels: X in `0..width`, Y in `0..height`) with
    /// `slots` contacts (clamped to `1..=`[`MAX_SLOTS`]).
    pub fn touchscreen(identity: Identity, width: u32, height: u32, slots: u32) -> Self {
        let slots = slots.clamp(1, MAX_SLOTS);
        Self {
            config: ConfigSpace::touchscreen(identity, width, height, slots),
            events: heapless::Deque::new(),
            frames: heapless::Deque::new(),
            held: heapless::Deque::new(),
            active: false,
            broken: false,
            stats: InputStats::default(),
        }
    }

    pub fn identity(&self) -> &Identity {
        self.config.identity()
    }

    /// What `ABS_INFO` reports for `axis`; None for an axis the device
    /// does not have.
    pub fn abs_info(&self, axis: u16) -> Option<AbsInfo> {
        self.config.abs_info(axis)
    }

    /// A driver has set the device up (DRIVER_OK) and it works: frames
    /// pushed now are kept until delivered or dropped.
    pub fn is_active(&self) -> bool {
        self.active && !self.broken
    }

    /// Events waiting for eventq buffers, `SYN_REPORT`s included (at
    /// most [`PENDING_EVENTS`]).
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Frames waiting for eventq buffers.
    pub fn pending_frames(&self) -> usize {
        self.frames.len()
    }

    /// eventq buffers taken and held for the next frame.
    pub fn held_buffers(&self) -> usize {
        self.held.len()
    }

    pub fn delivered_frames(&self) -> u64 {
        self.stats.frames_delivered
    }

    /// Frames pushed and never delivered, whatever the reason (see
    /// [`InputStats`] for each).
    pub fn dropped_frames(&self) -> u64 {
        self.stats.dropped_frames()
    }

    pub fn stats(&self) -> InputStats {
        self.stats
    }

    /// Queues one whole input frame: `events` without the `SYN_REPORT`
    /// (the device appends it), at most [`MAX_FRAME_EVENTS`] - 1 of them
    /// and none a `SYN_REPORT`, else the frame is refused. Older frames
    /// are dropped, oldest first, if the pending store has no room for
    /// it. Then delivers what the ring allows. Call it through
    /// [`super::mmio::MmioTransport::with_device`] and apply the effects.
    pub fn push_frame(&mut self, events: &[InputEvent], ctx: &mut DeviceContext<'_>) {
        self.stats.frames_pushed += 1;
        if events.len() >= MAX_FRAME_EVENTS || events.iter().any(InputEvent::is_syn_report) {
            self.stats.frames_refused += 1;
            return;
        }
        let mut budget = Budget {
            buffers: BUFFERS_PER_CALL,
        };
        // Whatever the ring takes now leaves more room (and a ring found
        // broken on the way leaves no driver).
        self.deliver(ctx, &mut budget);
        if !self.is_active() {
            self.stats.frames_unready += 1;
            return;
        }
        let need = events.len() + 1;
        while PENDING_EVENTS - self.events.len() < need {
            self.drop_oldest();
            self.stats.frames_overflowed += 1;
        }
        for e in events.iter().chain([&InputEvent::SYN_REPORT]) {
            // Room was made above.
            let _ = self.events.push_back(*e);
        }
        let _ = self.frames.push_back(need as u8);
        self.deliver(ctx, &mut budget);
    }

    /// Checks the model's own consistency (for tests and fuzzing): the
    /// pending frames add up to the pending events, each is 1 to
    /// [`MAX_FRAME_EVENTS`] events with exactly one `SYN_REPORT`, its
    /// last; an inactive device keeps nothing; every pushed frame is
    /// delivered, pending or counted dropped exactly once.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let mut events = self.events.iter();
        for &len in self.frames.iter() {
            if len == 0 || usize::from(len) > MAX_FRAME_EVENTS {
                return Err("frame length out of range");
            }
            for i in 0..len {
                let Some(e) = events.next() else {
                    return Err("frames longer than the pending events");
                };
                if e.is_syn_report() != (i + 1 == len) || (i + 1 == len && e.value != 0) {
                    return Err("a frame does not end with its only SYN_REPORT");
                }
            }
        }
        if events.next().is_some() {
            return Err("pending events outside any frame");
        }
        if !self.is_active() && (!self.frames.is_empty() || !self.held.is_empty()) {
            return Err("frames or buffers kept without a driver");
        }
        let s = &self.stats;
        let accounted = s.frames_delivered + s.dropped_frames() + self.frames.len() as u64;
        if accounted != s.frames_pushed {
            return Err("pushed frames unaccounted for");
        }
        if self.config.image()[protocol::config::SIZE] as usize > protocol::config::U_BYTES {
            return Err("config size beyond the union");
        }
        Ok(())
    }

    fn drop_oldest(&mut self) {
        if let Some(len) = self.frames.pop_front() {
            for _ in 0..len {
                self.events.pop_front();
            }
        }
    }

    /// Forgets the pending frames (counted as discarded) and the buffers
    /// held.
    fn discard(&mut self) {
        self.stats.frames_discarded += self.frames.len() as u64;
        self.frames.clear();
        self.events.clear();
        self.held.clear();
    }

    fn break_ring(&mut self, ctx: &mut DeviceContext<'_>) {
        if !self.broken {
            self.stats.broken_rings += 1;
        }
        self.broken = true;
        self.discard();
        ctx.needs_reset();
    }

    /// Delivers pending frames, oldest first, while the ring has buffers
    /// for them and the budget lasts.
    fn deliver(&mut self, ctx: &mut DeviceContext<'_>, budget: &mut Budget) {
        while !self.broken {
            let Some(&len) = self.frames.front() else {
                return;
            };
            let len = usize::from(len);
            if !self.gather(len, ctx, budget) {
                return;
            }
            // Every event of the frame is written before any buffer goes
            // back, so a buffer that refuses its event can still be
            // returned empty ahead of the frame.
            if let Some(bad) = self.write_frame(len, ctx.mem()) {
                let Some(h) = self.take_held(bad) else {
                    return self.break_ring(ctx);
                };
                self.stats.bad_buffers += 1;
                if ctx.push(h.token, 0).is_err() {
                    return self.break_ring(ctx);
                }
                continue;
            }
            for _ in 0..len {
                let Some(h) = self.held.pop_front() else {
                    break;
                };
                if ctx.push(h.token, EVENT_BYTES as u32).is_err() {
                    return self.break_ring(ctx);
                }
            }
            self.drop_oldest();
            self.stats.frames_delivered += 1;
            self.stats.events_delivered += len as u64;
        }
    }

    /// Takes eventq buffers until `len` are held: true when they are,
    /// false when the ring has no more (notification re-armed), the
    /// budget is spent (more work asked for) or the ring broke.
    fn gather(&mut self, len: usize, ctx: &mut DeviceContext<'_>, budget: &mut Budget) -> bool {
        while self.held.len() < len {
            if budget.buffers == 0 {
                ctx.more_work(EVENT_QUEUE);
                return false;
            }
            budget.buffers -= 1;
            let chain = match ctx.pop(EVENT_QUEUE) {
                Ok(Some(c)) => c,
                Ok(None) => match ctx.enable_notification(EVENT_QUEUE) {
                    Ok(true) => continue,
                    Ok(false) => return false,
                    Err(_) => {
                        self.break_ring(ctx);
                        return false;
                    }
                },
                Err(_) => {
                    self.break_ring(ctx);
                    return false;
                }
            };
            let bufs = match ChainBuffers::<CHAIN_BUFFERS>::collect(chain, ctx.mem()) {
                Ok(b) => b,
                Err(_) => {
                    self.break_ring(ctx);
                    return false;
                }
            };
            match event_regions(&bufs, ctx.mem()) {
                Some(at) => {
                    // `held` is below `len`, at most its capacity.
                    let _ = self.held.push_back(Held {
                        token: bufs.token(),
                        at,
                    });
                }
                None => {
                    self.stats.bad_buffers += 1;
                    if ctx.push(bufs.token(), 0).is_err() {
                        self.break_ring(ctx);
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Writes the oldest frame's `len` events into the first `len` held
    /// buffers; the index of a buffer the write failed for, if any.
    fn write_frame(&self, len: usize, mem: &dyn GuestMemory) -> Option<usize> {
        let buffers = self.held.iter().take(len);
        for (i, (h, e)) in buffers.zip(self.events.iter()).enumerate() {
            let bytes = e.to_bytes();
            let mut done = 0;
            for r in &h.at {
                let n = r.len as usize;
                let piece = bytes.get(done..done + n);
                if piece.is_none_or(|p| mem.write(r.gpa, p).is_err()) {
                    return Some(i);
                }
                done += n;
            }
        }
        None
    }

    /// Removes held buffer `i`, keeping the order of the others.
    fn take_held(&mut self, i: usize) -> Option<Held> {
        let mut rest = heapless::Deque::new();
        let mut taken = None;
        let mut n = 0;
        while let Some(h) = self.held.pop_front() {
            if n == i {
                taken = Some(h);
            } else {
                let _ = rest.push_back(h);
            }
            n += 1;
        }
        self.held = rest;
        taken
    }

    /// Returns every statusq chain as used, 0 bytes written.
    fn process_status(&mut self, ctx: &mut DeviceContext<'_>) {
        let mut budget = STATUS_BUFFERS_PER_CALL;
        while !self.broken {
            if budget == 0 {
                ctx.more_work(STATUS_QUEUE);
                return;
            }
            budget -= 1;
            match ctx.pop(STATUS_QUEUE) {
                Ok(Some(chain)) => {
                    self.stats.status_buffers += 1;
                    if ctx.push(chain.token(), 0).is_err() {
                        return self.break_ring(ctx);
                    }
                }
                Ok(None) => match ctx.enable_notification(STATUS_QUEUE) {
                    Ok(true) => continue,
                    Ok(false) => return,
                    Err(_) => return self.break_ring(ctx),
                },
                Err(_) => return self.break_ring(ctx),
            }
        }
    }
}

/// Where an event goes in this chain: the regions of the first 8 bytes of
/// its device-writable part, if it has 8 and they are all in RAM.
fn event_regions(
    bufs: &ChainBuffers<CHAIN_BUFFERS>,
    mem: &dyn GuestMemory,
) -> Option<heapless::Vec<Region, EVENT_BYTES>> {
    if (bufs.writable_len() as usize) < EVENT_BYTES {
        return None;
    }
    let at = bufs
        .writable_range::<EVENT_BYTES>(0, EVENT_BYTES as u32)
        .ok()?;
    at.iter()
        .all(|r| mem.check(r.gpa, u64::from(r.len)).is_ok())
        .then_some(at)
}

impl VirtioDevice for VirtioInput {
    fn device_id(&self) -> u32 {
        id::INPUT
    }

    fn device_features(&self) -> u64 {
        feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX
    }

    fn queue_count(&self) -> u16 {
        2
    }

    fn queue_max_size(&self, _queue: u16) -> u16 {
        QUEUE_SIZE
    }

    fn read_config(&self, offset: u32, data: &mut [u8]) {
        self.config.read(offset, data);
    }

    /// Only `select` and `subsel` take writes.
    fn write_config(&mut self, offset: u32, data: &[u8]) {
        self.config.write(offset, data);
    }

    fn activate(&mut self, _features: u64) {
        self.active = true;
    }

    fn queue_notify(&mut self, queue: u16, ctx: &mut DeviceContext<'_>) {
        match queue {
            EVENT_QUEUE => {
                let mut budget = Budget {
                    buffers: BUFFERS_PER_CALL,
                };
                self.deliver(ctx, &mut budget);
            }
            STATUS_QUEUE => self.process_status(ctx),
            _ => {}
        }
    }

    /// Forgets the pending frames (counted in
    /// [`InputStats::frames_discarded`]), the buffers held and the
    /// configuration selection; the counters stay. Frames pushed from now
    /// until the next DRIVER_OK are not kept.
    fn reset(&mut self) {
        self.discard();
        self.config.reset();
        self.active = false;
        self.broken = false;
    }
}

#[cfg(test)]
mod tests;
