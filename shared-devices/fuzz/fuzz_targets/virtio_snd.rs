//! A hostile driver against the virtio-snd device, end to end: arbitrary
//! guest RAM, descriptor chains, ring indices and MMIO register accesses;
//! control requests of every code with fields near the edges (ranges and
//! sizes that lie, parameters the stream does not take, requests cut
//! short, responses of any size, joined or split); I/O messages of every
//! shape (Linux's, split, without a status, outside RAM, partial frames,
//! too long, another stream); eventq and rxq junk; whole Linux-style
//! sessions (set parameters, prepare, pre-buffer, start, refill); the
//! mixer pulling periods of any length at any time; the hypervisor
//! resetting the device at any time.
//!
//! Checked besides "no panic":
//! - the device's own invariants (`check_invariants`): the held
//!   messages' buffers and byte counts agree, messages are held only in a
//!   state that takes them, parameters are within the limits, every
//!   message taken is accounted for;
//! - `pull` returns at most the frames asked for, zeros after them, all
//!   zeros (and nothing taken) when the stream is not running, and the
//!   frames-played counter moves by what it returned;
//! - used entries say what a buffer of their queue can hold: 0 or 4 plus
//!   at most one item for the controlq, 0 or 8 for the others;
//! - one device call reads a bounded amount of guest memory;
//! - the interrupt level from the effects matches InterruptStatus, and a
//!   reset leaves Status and InterruptStatus at 0; register reads fit
//!   their width and have no effects.

#![no_main]

use std::cell::{Cell, RefCell};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::virtio::device::feature;
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};
use shared_devices::virtio::mmio::{Effects, MmioTransport, reg, status};
use shared_devices::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueLayout};
use shared_devices::virtio::sound::protocol::{
    PCM_FMT_S16, PCM_RATE_48000, QueryInfo, SetParams, code, pcm_feature,
};
use shared_devices::virtio::sound::{
    CHAINS_PER_CALL, CONTROL_QUEUE, EVENT_BUFFERS_PER_CALL, EVENT_QUEUE, MAX_INFO_SIZE, QUEUE_SIZE,
    RX_QUEUE, SoundLimits, StreamState, TX_BUFFERS, TX_QUEUE, VirtioSound,
};

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x2_0000;
/// Buffers live here up to the end of RAM; the four rings below.
const BUFS: u64 = BASE + 0x8000;
const END: u64 = BASE + RAM as u64;
/// Guest memory one device call may read at most, besides the PCM bytes
/// of the frames a pull asks for: every chain it may take (txq and
/// controlq, or txq and eventq), each walked over at most a queue's
/// descriptors, plus the ring indices and request headers around them.
const READ_BOUND: u64 = (2 * CHAINS_PER_CALL as u64 + EVENT_BUFFERS_PER_CALL as u64 + 4)
    * (16 * QUEUE_SIZE as u64 + 64);
/// Periods the sessions and requests choose from (bytes).
const PERIODS: [u32; 6] = [960, 1920, 192, 480, 15360, 4];

#[derive(Arbitrary, Debug)]
struct Input {
    limits: u8,
    ram: Vec<u8>,
    setup: Option<Setup>,
    ops: Vec<Op>,
}

/// A well-behaved initialisation (the four queues in the first 32 KiB,
/// of any size), so that the interesting states are reachable; the ops
/// may undo any of it.
#[derive(Arbitrary, Debug)]
struct Setup {
    features: u8,
    log2: [u8; 4],
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// What Linux and `aplay` do next, from wherever the stream is: set
    /// parameters and prepare, queue periods, start, and the mixer pulls.
    Session {
        channels: u8,
        period: u8,
        periods: u8,
        messages: u8,
        frames: u16,
    },
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
    Notify {
        queue: u8,
    },
    /// The driver scribbles on its memory.
    Poke {
        at: u16,
        bytes: Vec<u8>,
    },
    /// Raw descriptors into a queue's table, the first one's index into
    /// the available ring.
    Chain {
        queue: u8,
        descs: Vec<Desc>,
        publish: bool,
        idx_jump: u8,
    },
    /// A control request of (mostly) a known code with fields near the
    /// edges, maybe cut short, with a response of some shape.
    Control {
        code: u8,
        stream: u8,
        a: u32,
        b: u32,
        c: u32,
        d: u32,
        cut: u8,
        response: u8,
    },
    /// I/O messages of one shape.
    Tx {
        count: u8,
        len: u16,
        stream: u8,
        shape: u8,
        notify: bool,
    },
    /// Event buffers of one shape.
    Events {
        count: u8,
        shape: u8,
        notify: bool,
    },
    /// rxq chains of one shape.
    Rx {
        count: u8,
        shape: u8,
    },
    /// The mixer takes a period.
    Pull {
        frames: u16,
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

#[derive(Debug)]
enum Access {
    Write(u64, Vec<u8>),
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

    /// The used elements written since the last call: where, and the
    /// length they report.
    fn used_elements(&self) -> Vec<(u64, u32)> {
        let log = std::mem::take(&mut *self.log.borrow_mut());
        let mut v = Vec::new();
        // `VirtQueue::push` writes the used element, then fences
        // (release) before publishing the index.
        for (i, a) in log.iter().enumerate() {
            if let Access::Write(gpa, bytes) = a
                && matches!(log.get(i + 1), Some(Access::Fence(Fence::Release)))
            {
                assert_eq!(bytes.len(), 8, "used element");
                v.push((*gpa, u32::from_le_bytes(bytes[4..8].try_into().unwrap())));
            }
        }
        v
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
        self.log
            .borrow_mut()
            .push(Access::Write(gpa, data.to_vec()));
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

struct Rig {
    t: MmioTransport<VirtioSound>,
    mem: Guest,
    /// Interrupt level as the effects reported it.
    level: bool,
    /// Queue work asked for and not yet done.
    pending: Option<u16>,
    next_desc: [u16; 4],
    next_buf: u64,
}

fn width(w: u8) -> Width {
    Width::ALL[usize::from(w % 4)]
}

impl Rig {
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
        self.mem.read.set(0);
        let mut fx = Effects::default();
        self.t.write(offset, width, value, &mut fx);
        self.observe(0);
        self.apply(fx);
    }

    /// After a device call: what it read and the used entries it wrote.
    fn observe(&mut self, pcm_bytes: u64) {
        let read = self.mem.read.get();
        assert!(read <= READ_BOUND + pcm_bytes, "one call read {read} bytes");
        self.mem.read.set(0);
        for (gpa, written) in self.mem.used_elements() {
            let q = (0..4u16)
                .find(|&q| {
                    self.t.queue(q).is_some_and(|v| {
                        let l = v.layout();
                        gpa >= l.used + 4 && gpa < l.used + 4 + 8 * u64::from(l.num)
                    })
                })
                .expect("a used element outside every used ring");
            match q {
                CONTROL_QUEUE => assert!(
                    written == 0 || (4..=4 + MAX_INFO_SIZE).contains(&written),
                    "control response of {written} bytes"
                ),
                _ => assert!(
                    written == 0 || written == 8,
                    "queue {q} buffer returned with {written} bytes"
                ),
            }
        }
    }

    /// Records the effects and does the queue work they ask for, a few
    /// rounds (the rest stays pending, as the hypervisor would put it off).
    fn apply(&mut self, fx: Effects) {
        let mut fx = fx;
        self.level(fx);
        if fx.reset {
            assert_eq!(self.t.status(), 0);
            assert_eq!(self.t.interrupt_status(), 0);
            assert_eq!(self.t.device().queued_buffers(), 0);
            assert_eq!(self.t.device().state(), StreamState::Unset);
            self.pending = None;
        }
        for _ in 0..8 {
            let Some(q) = fx.notify.take().or_else(|| self.pending.take()) else {
                return;
            };
            self.mem.read.set(0);
            fx = self.t.notify_queue(q, &self.mem);
            self.observe(0);
            self.level(fx);
            self.check();
        }
        if fx.notify.is_some() {
            self.pending = fx.notify;
        }
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
        assert!(dev.queued_buffers() <= TX_BUFFERS);
        let st = dev.stats();
        assert!(st.xrun_events + st.xrun_events_dropped <= st.underruns);
    }

    fn layout(&self, q: u16) -> Option<QueueLayout> {
        let l = self.t.queue(q)?.layout();
        let ready = self.t.queue(q)?.is_ready();
        (ready && l.num != 0 && l.num.is_power_of_two() && l.num <= 64).then_some(l)
    }

    fn alloc(&mut self, len: u64) -> u64 {
        if self.next_buf + len > END {
            self.next_buf = BUFS;
        }
        let at = self.next_buf;
        self.next_buf = (at + len + 15) & !15;
        at
    }

    fn put(&mut self, bytes: &[u8]) -> u64 {
        let at = self.alloc(bytes.len() as u64);
        self.mem.put(at, bytes);
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

    fn notify(&mut self, q: u16) {
        self.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(q));
    }

    /// A control request and its response buffers (`response` picks the
    /// shape), published and notified.
    fn control(&mut self, req: &[u8], response: u8) {
        let payload = [0u32, 24, 32, 40, 8, 1024, 31, 0][usize::from(response % 8)];
        let r = self.put(req);
        let h = self.alloc(4 + u64::from(payload));
        let mut bufs = vec![];
        if !req.is_empty() {
            bufs.push((r, req.len() as u32, false));
        }
        match response >> 3 & 3 {
            // As Linux: header, then the payload apart.
            0 | 1 => {
                bufs.push((h, 4, true));
                if payload > 0 {
                    bufs.push((h + 4, payload, true));
                }
            }
            2 => bufs.push((h, 4 + payload, true)),
            _ => bufs.push((END - 2, 4 + payload, true)),
        }
        if self.add(CONTROL_QUEUE, &bufs, response & 0x20 != 0) {
            self.notify(CONTROL_QUEUE);
        }
    }

    fn set_params(&mut self, channels: u8, period: u32, periods: u32, features: u32) {
        let p = SetParams {
            stream_id: 0,
            buffer_bytes: period.wrapping_mul(periods),
            period_bytes: period,
            features,
            channels,
            format: PCM_FMT_S16,
            rate: PCM_RATE_48000,
        };
        self.control(&p.to_bytes(), 0);
    }

    fn pcm(&mut self, code: u32) {
        let req = [code.to_le_bytes(), 0u32.to_le_bytes()].concat();
        self.control(&req, 0);
    }

    /// One I/O message of `len` PCM bytes (whatever RAM holds there) in
    /// shape `shape`, published.
    fn tx(&mut self, len: u32, stream: u32, shape: u8) {
        let hdr = self.put(&stream.to_le_bytes());
        let data = self.alloc(u64::from(len));
        let st = self.alloc(8);
        let (bufs, indirect): (Vec<(u64, u32, bool)>, bool) = match shape % 12 {
            // As Linux sends them.
            0..=4 => (
                vec![(hdr, 4, false), (data, len, false), (st, 8, true)],
                true,
            ),
            5 => (
                vec![(hdr, 4, false), (data, len, false), (st, 8, true)],
                false,
            ),
            6 => {
                let a = len / 3;
                (
                    vec![
                        (hdr, 1, false),
                        (hdr + 1, 3, false),
                        (data, a, false),
                        (data + u64::from(a), len - a, false),
                        (st, 3, true),
                        (st + 3, 5, true),
                    ],
                    true,
                )
            }
            7 => (vec![(hdr, 4, false), (data, len, false)], false),
            8 => (
                vec![(hdr, 4, false), (data, len, false), (END - 4, 8, true)],
                true,
            ),
            9 => (
                vec![(hdr, 4, false), (END - 8, len, false), (st, 8, true)],
                true,
            ),
            10 => (vec![(hdr, 2, false), (st, 8, true)], false),
            _ => (vec![(hdr, 4, false), (st, 8, true)], true),
        };
        let _ = self.add(TX_QUEUE, &bufs, indirect);
    }

    /// One eventq buffer of shape `shape`, published.
    fn event(&mut self, shape: u8) {
        let a = self.alloc(16);
        let (bufs, indirect): (Vec<(u64, u32, bool)>, bool) = match shape % 8 {
            0..=2 => (vec![(a, 8, true)], false),
            3 => (vec![(a, 3, true), (a + 8, 5, true)], true),
            4 => (vec![(a, 8, false)], false),
            5 => (vec![(a, u32::from(shape >> 4) % 8, true)], false),
            6 => (vec![(END - u64::from(shape >> 4) % 8, 8, true)], false),
            _ => (vec![(a, 4, false), (a + 4, 12, true)], true),
        };
        let _ = self.add(EVENT_QUEUE, &bufs, indirect);
    }

    /// One rxq chain of shape `shape`, published.
    fn rx(&mut self, shape: u8) {
        let a = self.alloc(64);
        let (bufs, indirect): (Vec<(u64, u32, bool)>, bool) = match shape % 5 {
            0 | 1 => (
                vec![(a, 4, false), (a + 8, 32, true), (a + 48, 8, true)],
                true,
            ),
            2 => (vec![(a, 4, false)], false),
            3 => (vec![(a, 4, false), (END - 4, 8, true)], false),
            _ => (vec![(a, 7, true)], false),
        };
        let _ = self.add(RX_QUEUE, &bufs, indirect);
    }

    /// The mixer takes `frames`.
    fn pull(&mut self, frames: usize) {
        let running = self.t.device().stream().running;
        let before = self.t.device().stats().frames_played;
        let mut out = vec![0x5a5au16 as i16; 2 * frames];
        self.mem.read.set(0);
        let (n, fx) = self
            .t
            .with_device(&self.mem, |dev, ctx| dev.pull(&mut out, ctx));
        self.observe(4 * frames as u64);
        assert!(n <= frames, "{n} frames of {frames}");
        assert!(
            out[2 * n..].iter().all(|s| *s == 0),
            "guest frames after {n}"
        );
        if !running {
            assert_eq!(n, 0, "a stream that was not running played");
        }
        assert_eq!(self.t.device().stats().frames_played, before + n as u64);
        self.apply(fx);
    }
}

fuzz_target!(|input: Input| {
    let limits = match input.limits % 4 {
        0 | 1 => SoundLimits::default(),
        2 => SoundLimits {
            period_bytes_min: 4,
            period_bytes_max: 1 << 20,
            buffer_bytes_max: u32::MAX,
        },
        _ => SoundLimits {
            period_bytes_min: 1920,
            period_bytes_max: 960,
            buffer_bytes_max: 0,
        },
    };
    let mut ram = vec![0u8; RAM];
    let n = input.ram.len().min(RAM);
    ram[..n].copy_from_slice(&input.ram[..n]);
    let mut rig = Rig {
        t: MmioTransport::new(VirtioSound::new(limits)),
        mem: Guest {
            ram: RefCell::new(ram),
            read: Cell::new(0),
            log: RefCell::new(Vec::new()),
        },
        level: false,
        pending: None,
        next_desc: [0; 4],
        next_buf: BUFS,
    };

    if let Some(s) = &input.setup {
        let mut f = feature::VERSION_1;
        if s.features & 1 == 0 {
            f |= feature::EVENT_IDX;
        }
        if s.features & 2 == 0 {
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
        for (q, log2) in s.log2.iter().enumerate() {
            let base = BASE + 0x2000 * q as u64;
            w(&mut rig, reg::QUEUE_SEL, q as u64);
            // Mostly the full 64 entries, as Linux sets them up.
            let num = if log2 & 0x80 == 0 {
                64
            } else {
                1 << (log2 % 7)
            };
            w(&mut rig, reg::QUEUE_NUM, num);
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
            Op::Session {
                channels,
                period,
                periods,
                messages,
                frames,
            } => {
                let channels = 1 + channels % 2;
                let period =
                    PERIODS[usize::from(*period) % PERIODS.len()] * u32::from(channels) / 2;
                let periods = 2 + u32::from(*periods % 15);
                match rig.t.device().state() {
                    StreamState::Unset | StreamState::ParamsSet | StreamState::Released => {
                        rig.set_params(channels, period, periods, 1 << pcm_feature::EVT_XRUNS);
                        rig.pcm(code::PCM_PREPARE);
                    }
                    StreamState::Running => {}
                    StreamState::Prepared | StreamState::Stopped => {}
                }
                let period = rig.t.device().params().map_or(period, |p| p.period_bytes);
                for _ in 0..messages % 17 {
                    rig.tx(period, 0, 0);
                }
                rig.notify(TX_QUEUE);
                if rig.t.device().state() != StreamState::Running {
                    rig.pcm(code::PCM_START);
                }
                rig.pull(usize::from(*frames % 2048));
            }
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
            Op::Notify { queue } => rig.notify(u16::from(*queue % 5)),
            Op::Poke { at, bytes } => {
                let at = BASE + u64::from(*at) * 2 % RAM as u64;
                let n = bytes.len().min(END.saturating_sub(at) as usize);
                rig.mem.put(at, &bytes[..n]);
            }
            Op::Chain {
                queue,
                descs,
                publish,
                idx_jump,
            } => {
                let q = u16::from(*queue % 4);
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
                    b[8..12].copy_from_slice(&u32::from(d.len % 0x1000).to_le_bytes());
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
            Op::Control {
                code: c,
                stream,
                a,
                b,
                c: cc,
                d,
                cut,
                response,
            } => {
                let codes = [
                    code::JACK_INFO,
                    code::PCM_INFO,
                    code::CHMAP_INFO,
                    code::JACK_REMAP,
                    code::PCM_SET_PARAMS,
                    code::PCM_PREPARE,
                    code::PCM_RELEASE,
                    code::PCM_START,
                    code::PCM_STOP,
                    code::CTL_INFO,
                ];
                let code = codes.get(usize::from(*c)).copied().unwrap_or(*a);
                // Mostly stream 0.
                let stream = if *stream < 0xf0 {
                    0
                } else {
                    u32::from(*stream & 3)
                };
                let mut req = match code {
                    code::JACK_INFO | code::PCM_INFO | code::CHMAP_INFO => QueryInfo {
                        code,
                        start_id: if a & 0x100 == 0 { a % 3 } else { *a },
                        count: if b & 0x100 == 0 { b % 3 } else { *b },
                        size: [24, 32, 40, 8, MAX_INFO_SIZE, *cc][(*cc % 6) as usize],
                    }
                    .to_bytes()
                    .to_vec(),
                    code::PCM_SET_PARAMS => {
                        let period = PERIODS[(a % 6) as usize] + if a & 0x100 != 0 { 2 } else { 0 };
                        SetParams {
                            stream_id: stream,
                            buffer_bytes: if b & 0x100 == 0 {
                                period * (1 + b % 17)
                            } else {
                                *b
                            },
                            period_bytes: period,
                            features: if cc & 0x100 == 0 { cc & 0x10 } else { *cc },
                            channels: (d % 4) as u8,
                            format: if d & 0x100 == 0 {
                                PCM_FMT_S16
                            } else {
                                (d >> 16) as u8
                            },
                            rate: if d & 0x200 == 0 {
                                PCM_RATE_48000
                            } else {
                                (d >> 24) as u8
                            },
                        }
                        .to_bytes()
                        .to_vec()
                    }
                    _ => [code.to_le_bytes(), stream.to_le_bytes(), b.to_le_bytes()].concat(),
                };
                if *cut < 32 {
                    req.truncate(usize::from(*cut));
                }
                rig.control(&req, *response);
            }
            Op::Tx {
                count,
                len,
                stream,
                shape,
                notify,
            } => {
                for i in 0..count % 65 {
                    let s = if shape & 0x80 != 0 {
                        shape.wrapping_add(i)
                    } else {
                        *shape
                    };
                    let stream = if *stream < 0xf0 {
                        0
                    } else {
                        u32::from(*stream)
                    };
                    rig.tx(u32::from(*len % 0x4000), stream, s);
                }
                if *notify {
                    rig.notify(TX_QUEUE);
                }
            }
            Op::Events {
                count,
                shape,
                notify,
            } => {
                for i in 0..count % 65 {
                    let s = if shape & 0x80 != 0 {
                        shape.wrapping_add(i)
                    } else {
                        *shape
                    };
                    rig.event(s);
                }
                if *notify {
                    rig.notify(EVENT_QUEUE);
                }
            }
            Op::Rx { count, shape } => {
                for i in 0..count % 65 {
                    rig.rx(shape.wrapping_add(i));
                }
                rig.notify(RX_QUEUE);
            }
            Op::Pull { frames } => rig.pull(usize::from(*frames % 4096)),
            Op::Reset => {
                rig.mem.read.set(0);
                let fx = rig.t.reset();
                rig.observe(0);
                rig.apply(fx);
            }
        }
        rig.check();
    }
});
