//! A hostile driver against the virtio-input touchscreen, end to end:
//! arbitrary guest RAM, descriptor chains, ring indices and MMIO register
//! accesses (configuration `select`/`subsel` among them), event buffers
//! of every shape (8 bytes whole, split, through an indirect table, too
//! short, read-only, outside RAM), statusq junk; the touch mediator
//! pushes frames of arbitrary events and lengths at any time; the
//! hypervisor resets the device at any time.
//!
//! Checked besides "no panic":
//! - frames reach the guest only whole: the events the device returns in
//!   one call are whole frames, each ending with its `SYN_REPORT`, each
//!   exactly a frame the mediator pushed (every frame carries a sequence
//!   number), in the order they were pushed; every accepted frame is
//!   delivered once, still pending, or counted dropped, and the pending
//!   ones are the newest (drops take the oldest); the device's pending
//!   events are exactly the pending frames' events;
//! - the device's own invariants (`check_invariants`); the pending store
//!   never exceeds its capacity, nor the buffers held a ring;
//! - configuration reads fit: `size` at most 128 and every byte of the
//!   union beyond it, the reserved bytes and everything past the
//!   structure read 0; `select`/`subsel` read back as written;
//! - one device call reads a bounded amount of guest memory, and returns
//!   eventq buffers with 0 or 8 bytes written, statusq ones with 0;
//! - the interrupt level from the effects matches InterruptStatus, and a
//!   reset leaves Status and InterruptStatus at 0; register reads fit
//!   their width and have no effects.
//!
//! Where the driver disables the eventq while the device holds some of
//! its buffers (the buffers are gone with the ring, and with them maybe
//! the start of a frame: documented), or the device breaks in the middle
//! of returning a frame, only the counts are checked until the next
//! reset.

#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::virtio::device::feature;
use shared_devices::virtio::input::protocol::{
    ABS_MT_POSITION_X, ABS_MT_SLOT, ABS_MT_TRACKING_ID, ABS_X, ABS_Y, BUS_VIRTUAL, EV_ABS, EV_KEY,
    EV_MSC, EV_SYN, select,
};
use shared_devices::virtio::input::{
    BUFFERS_PER_CALL, EVENT_QUEUE, Identity, InputEvent, InputStats, PENDING_EVENTS, QUEUE_SIZE,
    STATUS_BUFFERS_PER_CALL, STATUS_QUEUE, VirtioInput,
};
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};
use shared_devices::virtio::mmio::{Effects, MmioTransport, reg, status};
use shared_devices::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueLayout};

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x1_0000;
/// Buffers live here up to the end of RAM; the rings below.
const BUFS: u64 = BASE + 0x4000;
const END: u64 = BASE + RAM as u64;
/// Guest memory one device call may read at most: every chain it may
/// take, each walked over at most a queue's descriptors, plus the ring
/// indices and event words around them.
const READ_BOUND: u64 =
    (BUFFERS_PER_CALL as u64 + STATUS_BUFFERS_PER_CALL as u64 + 2) * (16 * QUEUE_SIZE as u64 + 16);
/// The event that starts every pushed frame, naming it by its value.
const TAG: (u16, u16) = (EV_MSC, 0x7);

#[derive(Arbitrary, Debug)]
struct Input {
    width: u16,
    height: u16,
    slots: u8,
    ram: Vec<u8>,
    setup: Option<Setup>,
    ops: Vec<Op>,
}

/// A well-behaved initialisation (both queues in the first 16 KiB, of
/// any size), so that the interesting states are reachable; the ops may
/// undo any of it.
#[derive(Arbitrary, Debug)]
struct Setup {
    features: u8,
    event_log2: u8,
    status_log2: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Read {
        offset: u16,
        width: u8,
    },
    Write {
        offset: u16,
        width: u8,
        value: u64,
    },
    Far {
        offset: u64,
        width: u8,
        value: u64,
        write: bool,
    },
    /// The driver queries configuration space.
    Select {
        select: u8,
        subsel: u8,
        wide: bool,
    },
    Notify {
        status: bool,
    },
    /// The driver scribbles on its memory.
    Poke {
        at: u16,
        bytes: Vec<u8>,
    },
    /// Raw descriptors into a queue's table, the first one's index into
    /// the available ring.
    Chain {
        status: bool,
        descs: Vec<Desc>,
        publish: bool,
        idx_jump: u8,
    },
    /// Event buffers of one shape, published and maybe notified.
    Post {
        count: u8,
        shape: u8,
        notify: bool,
    },
    /// statusq buffers, published and notified.
    Status {
        count: u8,
        len: u16,
        writable: bool,
    },
    /// The mediator pushes a frame: its sequence number, then `events`,
    /// then `filler` more (to reach the length limits).
    Frame {
        events: Vec<Ev>,
        filler: u8,
    },
    /// The hypervisor resets the device (partition restart).
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    index: u8,
    addr: u16,
    len: u16,
    flags: u8,
    next: u8,
}

#[derive(Arbitrary, Debug)]
struct Ev {
    kind: u8,
    code: u16,
    value: u32,
}

impl Ev {
    fn event(&self) -> InputEvent {
        let kind = match self.kind % 6 {
            0 => EV_SYN,
            1 => EV_KEY,
            2 | 3 => EV_ABS,
            4 => EV_MSC,
            _ => u16::from(self.kind),
        };
        let code = match kind {
            EV_SYN => self.code % 4,
            EV_ABS => [
                ABS_X,
                ABS_Y,
                ABS_MT_SLOT,
                ABS_MT_POSITION_X,
                ABS_MT_TRACKING_ID,
            ][usize::from(self.code % 5)],
            _ => self.code,
        };
        InputEvent::new(kind, code, self.value)
    }
}

/// A device access, as the device made it.
#[derive(Debug)]
enum Access {
    Write(Vec<u8>),
    /// A ring index (`used.idx`, `avail_event`).
    Index,
    Fence(Fence),
}

/// Guest RAM, logging what the device writes and counting what it reads.
struct Guest {
    ram: RefCell<Vec<u8>>,
    read: Cell<u64>,
    log: RefCell<Vec<Access>>,
}

impl Guest {
    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, MemoryError> {
        let err = MemoryError {
            gpa,
            len: len as u64,
        };
        let start = usize::try_from(gpa.checked_sub(BASE).ok_or(err)?).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > RAM {
            return Err(err);
        }
        Ok(start..end)
    }

    fn put(&self, gpa: u64, bytes: &[u8]) {
        if let Ok(r) = self.range(gpa, bytes.len()) {
            self.ram.borrow_mut()[r].copy_from_slice(bytes);
        }
    }

    fn u16_at(&self, gpa: u64) -> u16 {
        match self.range(gpa, 2) {
            Ok(r) => {
                let ram = self.ram.borrow();
                u16::from_le_bytes([ram[r.start], ram[r.start + 1]])
            }
            Err(_) => 0,
        }
    }
}

impl GuestMemory for Guest {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let r = self.range(gpa, buf.len())?;
        self.read.set(self.read.get() + buf.len() as u64);
        buf.copy_from_slice(&self.ram.borrow()[r]);
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = self.range(gpa, data.len())?;
        self.ram.borrow_mut()[r].copy_from_slice(data);
        self.log.borrow_mut().push(Access::Write(data.to_vec()));
        Ok(())
    }

    fn write_u16(&self, gpa: u64, value: u16) -> Result<(), MemoryError> {
        let r = self.range(gpa, 2)?;
        self.ram.borrow_mut()[r].copy_from_slice(&value.to_le_bytes());
        self.log.borrow_mut().push(Access::Index);
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        let n = usize::try_from(len).map_err(|_| MemoryError { gpa, len })?;
        self.range(gpa, n).map(|_| ())
    }

    fn fence(&self, kind: Fence) {
        self.log.borrow_mut().push(Access::Fence(kind));
    }
}

/// What the guest got in one device call: the events of the eventq
/// buffers returned with 8 bytes, in ring order.
fn returned_events(log: &[Access]) -> Vec<InputEvent> {
    // `VirtQueue::push` writes the used element, then fences (release)
    // before publishing the index; the event words were written before,
    // in the order their buffers go back.
    let mut data = Vec::new();
    let mut pushed = 0usize;
    for (i, a) in log.iter().enumerate() {
        let Access::Write(bytes) = a else {
            continue;
        };
        if matches!(log.get(i + 1), Some(Access::Fence(Fence::Release))) {
            assert_eq!(bytes.len(), 8, "used element");
            let written = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            assert!(
                written == 0 || written == 8,
                "a buffer returned with {written} bytes"
            );
            if written == 8 {
                pushed += 1;
            }
        } else {
            data.extend_from_slice(bytes);
        }
    }
    assert_eq!(data.len(), 8 * pushed, "event words and buffers returned");
    data.chunks(8)
        .map(|c| InputEvent::from_bytes(c.try_into().unwrap()))
        .collect()
}

/// A frame pushed and accepted: its sequence number and events (without
/// the SYN_REPORT).
struct Pushed {
    seq: u32,
    events: Vec<InputEvent>,
}

/// The device's counters before a call.
#[derive(Clone, Copy)]
struct Before {
    stats: InputStats,
}

struct Rig {
    t: MmioTransport<VirtioInput>,
    mem: Guest,
    /// Interrupt level as the effects reported it.
    level: bool,
    /// Queue work asked for and not yet done.
    pending: Option<u16>,
    next_desc: [u16; 2],
    next_buf: u64,
    /// Accepted frames not yet known delivered or dropped, oldest first.
    frames: VecDeque<Pushed>,
    seq: u32,
    /// Whether what the guest gets is checked event by event (else only
    /// the counts; see the module docs).
    strict: bool,
}

fn width(w: u8) -> Width {
    Width::ALL[usize::from(w % 4)]
}

impl Rig {
    fn before(&self) -> Before {
        Before {
            stats: self.t.device().stats(),
        }
    }

    /// After a device call (or any access that may reset it): what the
    /// guest got in this call against the frames pushed, and the counts.
    fn observe(&mut self, b: Before, pushed: Option<Pushed>) {
        let log = std::mem::take(&mut *self.mem.log.borrow_mut());
        let dev = self.t.device();
        let st = dev.stats();
        if let Some(p) = pushed {
            assert_eq!(st.frames_pushed, b.stats.frames_pushed + 1);
            let refused = st.frames_refused + st.frames_unready
                > b.stats.frames_refused + b.stats.frames_unready;
            if !refused {
                self.frames.push_back(p);
            }
        }
        let broke = st.broken_rings > b.stats.broken_rings;
        if broke {
            // Possibly in the middle of a frame's buffers.
            self.strict = false;
        }
        let delivered = (st.frames_delivered - b.stats.frames_delivered) as usize;
        let dropped = (st.frames_overflowed + st.frames_discarded
            - b.stats.frames_overflowed
            - b.stats.frames_discarded) as usize;
        let pending = dev.pending_frames();
        assert!(pending <= self.frames.len(), "more pending than pushed");
        let gone = self.frames.len() - pending;
        assert_eq!(gone, delivered + dropped, "frames unaccounted for");
        if self.strict {
            let events = returned_events(&log);
            let mut frames = Vec::new();
            let mut cur = Vec::new();
            for e in events {
                if e.is_syn_report() {
                    assert_eq!(e, InputEvent::SYN_REPORT);
                    frames.push(std::mem::take(&mut cur));
                } else {
                    cur.push(e);
                }
            }
            assert!(cur.is_empty(), "part of a frame returned: {cur:?}");
            assert_eq!(frames.len(), delivered, "frames returned");
            // In push order, among those that left the store.
            let mut next = 0;
            for f in &frames {
                let tag = f.first().expect("a frame without its tag");
                assert_eq!((tag.kind, tag.code), TAG, "a frame's first event");
                let at = (next..gone)
                    .find(|&i| self.frames[i].seq == tag.value)
                    .expect("a frame returned out of order, twice, or still pending");
                assert_eq!(f, &self.frames[at].events, "frame {} changed", tag.value);
                next = at + 1;
            }
        }
        self.frames.drain(..gone);
        let events: usize = self.frames.iter().map(|f| f.events.len() + 1).sum();
        assert_eq!(dev.pending_events(), events, "pending events");
    }

    fn read(&mut self, offset: u64, width: Width) -> u64 {
        let mut fx = Effects::default();
        let v = self.t.read(offset, width, &mut fx);
        assert_eq!(fx, Effects::default(), "a read had effects");
        assert_eq!(
            v & !width.mask(),
            0,
            "{width:?} read at {offset:#x}: {v:#x}"
        );
        v
    }

    fn write(&mut self, offset: u64, width: Width, value: u64) {
        let b = self.before();
        let mut fx = Effects::default();
        self.t.write(offset, width, value, &mut fx);
        self.observe(b, None);
        self.apply(fx);
    }

    /// Records the effects and does the queue work they ask for, a few
    /// rounds (the rest stays pending, as the hypervisor would put it off).
    fn apply(&mut self, fx: Effects) {
        let mut fx = fx;
        self.level(fx);
        if fx.reset {
            assert_eq!(self.t.status(), 0);
            assert_eq!(self.t.interrupt_status(), 0);
            self.reset_seen();
        }
        for _ in 0..8 {
            let Some(q) = fx.notify.take().or_else(|| self.pending.take()) else {
                return;
            };
            let b = self.before();
            self.mem.read.set(0);
            fx = self.t.notify_queue(q, &self.mem);
            assert!(
                self.mem.read.get() <= READ_BOUND,
                "one call read {} bytes",
                self.mem.read.get()
            );
            self.observe(b, None);
            self.level(fx);
            self.check();
        }
        if fx.notify.is_some() {
            self.pending = fx.notify;
        }
    }

    fn reset_seen(&mut self) {
        assert_eq!(self.t.device().pending_frames(), 0);
        assert_eq!(self.t.device().held_buffers(), 0);
        self.pending = None;
        self.strict = true;
    }

    fn level(&mut self, fx: Effects) {
        if let Some(l) = fx.irq {
            assert_ne!(l, self.level, "a level change that changes nothing");
            self.level = l;
        }
        assert_eq!(
            self.level,
            self.t.irq_level(),
            "line and InterruptStatus disagree"
        );
    }

    fn check(&mut self) {
        let dev = self.t.device();
        dev.check_invariants().unwrap();
        assert!(dev.pending_events() <= PENDING_EVENTS);
        assert!(dev.held_buffers() <= usize::from(QUEUE_SIZE));
        // Buffers held from a ring the driver took away: what the guest
        // gets is no longer checked event by event.
        let ready = self.t.queue(EVENT_QUEUE).is_some_and(|q| q.is_ready());
        if !ready && dev.held_buffers() > 0 {
            self.strict = false;
        }
    }

    /// Reads the whole configuration structure (and beyond) byte by byte.
    fn check_config(&mut self) {
        let bytes: Vec<u8> = (0..0x100)
            .map(|i| self.read(reg::CONFIG + i, Width::Byte) as u8)
            .collect();
        let size = usize::from(bytes[2]);
        assert!(size <= 128, "size {size}");
        assert!(bytes[3..8].iter().all(|b| *b == 0), "reserved bytes");
        assert!(
            bytes[8 + size..].iter().all(|b| *b == 0),
            "bytes beyond size {size} for {:#x}/{:#x}",
            bytes[0],
            bytes[1]
        );
        let word = self.read(reg::CONFIG, Width::Word);
        assert_eq!(
            word,
            u64::from_le_bytes([bytes[0], bytes[1], bytes[2], 0, 0, 0, 0, 0])
        );
        if bytes[0] == select::ABS_INFO {
            let axes = [0x00, 0x01, 0x2f, 0x35, 0x36, 0x39];
            let want = if axes.contains(&bytes[1]) { 20 } else { 0 };
            assert_eq!(size, want, "ABS_INFO of {:#x}", bytes[1]);
        }
    }

    fn layout(&self, q: u16) -> Option<QueueLayout> {
        let l = self.t.queue(q)?.layout();
        (l.num != 0 && l.num.is_power_of_two() && l.num <= 64).then_some(l)
    }

    fn alloc(&mut self, len: u64) -> u64 {
        if self.next_buf + len > END {
            self.next_buf = BUFS;
        }
        let at = self.next_buf;
        self.next_buf = (at + len + 15) & !15;
        at
    }

    /// Adds a chain of `(gpa, len, writable)` buffers to queue `q`,
    /// directly or through an indirect table, and publishes it.
    fn add(&mut self, q: u16, bufs: &[(u64, u32, bool)], indirect: bool) -> bool {
        let Some(l) = self.layout(q) else {
            return false;
        };
        let num = l.num as u16;
        if bufs.is_empty() || bufs.len() > usize::from(num) {
            return false;
        }
        let desc = |addr: u64, len: u32, flags: u16, next: u16| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..].copy_from_slice(&next.to_le_bytes());
            b
        };
        let chained = |i: usize, next: u16| {
            let (gpa, len, w) = bufs[i];
            let mut f = if w { DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                f |= DESC_F_NEXT;
            }
            desc(gpa, len, f, next)
        };
        let qi = usize::from(q);
        let head = self.next_desc[qi] % num;
        if indirect && self.t.driver_features() & feature::INDIRECT_DESC != 0 {
            let table = self.alloc(16 * bufs.len() as u64);
            for i in 0..bufs.len() {
                self.mem
                    .put(table + 16 * i as u64, &chained(i, i as u16 + 1));
            }
            self.next_desc[qi] = self.next_desc[qi].wrapping_add(1);
            let d = desc(table, 16 * bufs.len() as u32, DESC_F_INDIRECT, 0);
            self.mem.put(l.desc + 16 * u64::from(head), &d);
        } else {
            for i in 0..bufs.len() {
                let me = self.next_desc[qi] % num;
                self.next_desc[qi] = self.next_desc[qi].wrapping_add(1);
                let d = chained(i, self.next_desc[qi] % num);
                self.mem.put(l.desc + 16 * u64::from(me), &d);
            }
        }
        let idx = self.mem.u16_at(l.avail + 2);
        self.mem
            .put(l.avail + 4 + 2 * u64::from(idx % num), &head.to_le_bytes());
        self.mem
            .put(l.avail + 2, &idx.wrapping_add(1).to_le_bytes());
        true
    }

    /// One event buffer of shape `shape`.
    fn post(&mut self, shape: u8) {
        let a = self.alloc(16);
        let (bufs, indirect): (Vec<(u64, u32, bool)>, bool) = match shape % 9 {
            // As Linux posts them.
            0..=2 => (vec![(a, 8, true)], false),
            3 => (vec![(a, 3, true), (a + 8, 5, true)], false),
            4 => (vec![(a, 1, true), (a + 4, 12, true)], true),
            5 => (vec![(a, 4, false), (a + 4, 8, true)], false),
            6 => (vec![(a, u32::from(shape >> 4) % 8, true)], false),
            7 => (vec![(a, 8, false)], false),
            _ => (vec![(END - u64::from(shape >> 4) % 8, 8, true)], false),
        };
        let _ = self.add(EVENT_QUEUE, &bufs, indirect);
    }

    fn push(&mut self, events: Vec<InputEvent>) {
        let seq = self.seq;
        self.seq += 1;
        let mut frame = vec![InputEvent::new(TAG.0, TAG.1, seq)];
        frame.extend(events);
        let b = self.before();
        self.mem.read.set(0);
        let ((), fx) = self
            .t
            .with_device(&self.mem, |dev, ctx| dev.push_frame(&frame, ctx));
        assert!(
            self.mem.read.get() <= READ_BOUND,
            "one call read {} bytes",
            self.mem.read.get()
        );
        self.observe(b, Some(Pushed { seq, events: frame }));
        self.apply(fx);
    }
}

fuzz_target!(|input: Input| {
    let identity = Identity {
        name: "fuzzed touchscreen",
        serial: Default::default(),
        bustype: BUS_VIRTUAL,
        vendor: 1,
        product: 2,
        version: 3,
    };
    let dev = VirtioInput::touchscreen(
        identity,
        u32::from(input.width),
        u32::from(input.height),
        u32::from(input.slots),
    );
    let mut ram = vec![0u8; RAM];
    let n = input.ram.len().min(RAM);
    ram[..n].copy_from_slice(&input.ram[..n]);
    let mut rig = Rig {
        t: MmioTransport::new(dev),
        mem: Guest {
            ram: RefCell::new(ram),
            read: Cell::new(0),
            log: RefCell::new(Vec::new()),
        },
        level: false,
        pending: None,
        next_desc: [0; 2],
        next_buf: BUFS,
        frames: VecDeque::new(),
        seq: 0,
        strict: true,
    };

    if let Some(s) = &input.setup {
        let mut f = feature::VERSION_1;
        if s.features & 1 != 0 {
            f |= feature::EVENT_IDX;
        }
        if s.features & 2 != 0 {
            f |= feature::INDIRECT_DESC;
        }
        let w = |rig: &mut Rig, o, v: u64| rig.write(o, Width::Word, v);
        w(&mut rig, reg::STATUS, 0);
        w(
            &mut rig,
            reg::STATUS,
            u64::from(status::ACKNOWLEDGE | status::DRIVER),
        );
        w(&mut rig, reg::DRIVER_FEATURES_SEL, 0);
        w(&mut rig, reg::DRIVER_FEATURES, f & 0xffff_ffff);
        w(&mut rig, reg::DRIVER_FEATURES_SEL, 1);
        w(&mut rig, reg::DRIVER_FEATURES, f >> 32);
        let st = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        w(&mut rig, reg::STATUS, u64::from(st));
        for (q, log2) in [(0u64, s.event_log2), (1, s.status_log2)] {
            let base = BASE + 0x2000 * q;
            w(&mut rig, reg::QUEUE_SEL, q);
            w(&mut rig, reg::QUEUE_NUM, 1 << (log2 % 7));
            w(&mut rig, reg::QUEUE_DESC_LOW, base & 0xffff_ffff);
            w(
                &mut rig,
                reg::QUEUE_DRIVER_LOW,
                (base + 0x1000) & 0xffff_ffff,
            );
            w(
                &mut rig,
                reg::QUEUE_DEVICE_LOW,
                (base + 0x1400) & 0xffff_ffff,
            );
            w(&mut rig, reg::QUEUE_READY, 1);
        }
        w(&mut rig, reg::STATUS, u64::from(st | status::DRIVER_OK));
    }
    rig.check();

    for op in input.ops.iter().take(256) {
        match op {
            Op::Read { offset, width: wd } => {
                let _ = rig.read(u64::from(*offset), width(*wd));
            }
            Op::Write {
                offset,
                width: wd,
                value,
            } => rig.write(u64::from(*offset), width(*wd), *value),
            Op::Far {
                offset,
                width: wd,
                value,
                write,
            } => {
                if *write {
                    rig.write(*offset, width(*wd), *value);
                } else {
                    let _ = rig.read(*offset, width(*wd));
                }
            }
            Op::Select {
                select,
                subsel,
                wide,
            } => {
                if *wide {
                    let v = u64::from(*select) | u64::from(*subsel) << 8 | 0xffff_0000;
                    rig.write(reg::CONFIG, Width::Word, v);
                } else {
                    rig.write(reg::CONFIG + 1, Width::Byte, u64::from(*subsel));
                    rig.write(reg::CONFIG, Width::Byte, u64::from(*select));
                }
                assert_eq!(rig.read(reg::CONFIG, Width::Byte), u64::from(*select));
                assert_eq!(rig.read(reg::CONFIG + 1, Width::Byte), u64::from(*subsel));
                rig.check_config();
            }
            Op::Notify { status } => {
                rig.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(*status));
            }
            Op::Poke { at, bytes } => {
                let at = BASE + u64::from(*at) % RAM as u64;
                let n = bytes.len().min(END.saturating_sub(at) as usize);
                rig.mem.put(at, &bytes[..n]);
            }
            Op::Chain {
                status,
                descs,
                publish,
                idx_jump,
            } => {
                let q = u16::from(*status);
                let Some(l) = rig.layout(q) else {
                    continue;
                };
                if descs.is_empty() {
                    continue;
                }
                for d in descs.iter().take(64) {
                    let i = u64::from(d.index) % u64::from(l.num);
                    let mut b = [0u8; 16];
                    b[..8].copy_from_slice(&(BASE + u64::from(d.addr) * 2).to_le_bytes());
                    b[8..12].copy_from_slice(&u32::from(d.len % 0x200).to_le_bytes());
                    b[12..14].copy_from_slice(&u16::from(d.flags & 7).to_le_bytes());
                    b[14..].copy_from_slice(&u16::from(d.next).to_le_bytes());
                    rig.mem.put(l.desc + 16 * i, &b);
                }
                let num = l.num as u16;
                let idx = rig.mem.u16_at(l.avail + 2);
                let head = u16::from(descs[0].index) % num;
                rig.mem
                    .put(l.avail + 4 + 2 * u64::from(idx % num), &head.to_le_bytes());
                if *publish {
                    let idx = idx.wrapping_add(1).wrapping_add(u16::from(*idx_jump));
                    rig.mem.put(l.avail + 2, &idx.to_le_bytes());
                }
            }
            Op::Post {
                count,
                shape,
                notify,
            } => {
                for i in 0..count % 65 {
                    // Mostly one shape, sometimes a mix.
                    let s = if shape & 0x80 != 0 {
                        shape.wrapping_add(i)
                    } else {
                        *shape
                    };
                    rig.post(s);
                }
                if *notify {
                    rig.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(EVENT_QUEUE));
                }
            }
            Op::Status {
                count,
                len,
                writable,
            } => {
                for _ in 0..count % 65 {
                    let at = rig.alloc(u64::from(*len % 0x400));
                    let _ = rig.add(
                        STATUS_QUEUE,
                        &[(at, u32::from(*len % 0x400), *writable)],
                        false,
                    );
                }
                rig.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(STATUS_QUEUE));
            }
            Op::Frame { events, filler } => {
                let mut frame: Vec<InputEvent> = events.iter().take(80).map(Ev::event).collect();
                let extra = usize::from(*filler % 72);
                frame.extend(
                    (0..extra).map(|i| InputEvent::new(EV_ABS, ABS_MT_POSITION_X, i as u32)),
                );
                rig.push(frame);
            }
            Op::Reset => {
                let b = rig.before();
                let fx = rig.t.reset();
                rig.observe(b, None);
                rig.pending = None;
                rig.apply(fx);
            }
        }
        rig.check();
    }
});
