//! A hostile driver against the virtio-gpu device, end to end: arbitrary
//! guest RAM, descriptor chains, ring indices and MMIO register accesses,
//! plus well-formed requests of every command with arbitrary fields
//! (resource ids that collide, sizes and rectangles near the limits and
//! near 2^32, backing entries inside and outside RAM, entry counts that
//! lie), split over descriptors, through indirect tables, with responses
//! of any size; the compositor presents, takes damage and reads scanouts
//! at any time; the hypervisor resets the device at any time.
//!
//! Checked besides "no panic":
//! - the device's own invariants (`check_invariants`): arena blocks
//!   disjoint, inside the arena and exactly the resources' pixels and
//!   backings; no scanout shows a freed resource or a rectangle outside it;
//! - arena accounting never exceeds the arena, resources never exceed
//!   `max_resources`;
//! - what `scanout` returns is consistent (pixels of width x height x 4
//!   bytes, the source inside), damage lies inside the source;
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
use shared_devices::virtio::gpu::protocol::{FLAG_FENCE, cmd, features};
use shared_devices::virtio::gpu::{BYTES_PER_CALL, MAX_BACKING_ENTRIES, VirtioGpu};
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};
use shared_devices::virtio::mmio::{Effects, MmioTransport, reg, status};
use shared_devices::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueLayout};

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x4_0000;
/// Requests and their buffers live here up to `FB`; the rings below.
const BUFS: u64 = BASE + 0x4000;
/// Framebuffers (the backing of `Op::Frame`) from here to the end of RAM.
const FB: u64 = BASE + 0x2_0000;
/// Guest memory one device call may read at most: the byte budget, plus
/// one request's backing entries (its reading is charged after), one row,
/// and the descriptors and headers of the requests of one call.
const READ_BOUND: u64 = BYTES_PER_CALL + 16 * MAX_BACKING_ENTRIES as u64 + (64 << 10) + (64 << 10);

type Gpu = VirtioGpu<Vec<u8>>;

#[derive(Arbitrary, Debug)]
struct Input {
    views: Vec<(u8, u8)>,
    max_resources: u8,
    arena_kib: u8,
    ram: Vec<u8>,
    setup: Option<Setup>,
    ops: Vec<Op>,
}

/// A well-behaved initialisation (both queues in the first 16 KiB), so
/// that the interesting states are reachable; the ops may undo any of it.
#[derive(Arbitrary, Debug)]
struct Setup {
    features: u8,
    ctrl_log2: u8,
    cursor_log2: u8,
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
    Notify {
        cursor: bool,
    },
    /// The driver scribbles on its memory.
    Poke {
        at: u32,
        bytes: Vec<u8>,
    },
    /// Raw descriptors into a queue's table, the first one's index into
    /// the available ring.
    Chain {
        cursor: bool,
        descs: Vec<Desc>,
        publish: bool,
        idx_jump: u8,
    },
    /// A request laid out as a driver lays it out, published and notified.
    Request {
        cursor: bool,
        command: Command,
        fence: Option<u64>,
        resp: u16,
        split: u8,
        indirect: bool,
    },
    /// What Linux sends to show a new dumb buffer, in one batch: create,
    /// attach (a framebuffer in `pieces` entries), transfer, set_scanout,
    /// fenced flush.
    Frame {
        id: u8,
        width: u8,
        height: u8,
        scanout: u8,
        source: Coords,
        at: u16,
        pieces: u8,
        fence: u64,
        split: u8,
        indirect: bool,
    },
    /// The compositor has shown everything.
    Present,
    /// The compositor looks at a scanout.
    Look {
        scanout: u8,
    },
    /// The hypervisor resets the device (partition restart).
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Desc {
    index: u8,
    addr: u32,
    len: u16,
    flags: u8,
    next: u8,
}

/// Coordinates: mostly small, sometimes near 2^32.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Coords(u16, u16, u16, u16);

#[derive(Arbitrary, Debug)]
enum Command {
    DisplayInfo,
    Edid {
        scanout: u8,
    },
    Create {
        id: u8,
        format: u8,
        width: u16,
        height: u16,
    },
    Unref {
        id: u8,
    },
    Attach {
        id: u8,
        /// (offset in RAM, length); bit 31 of the offset puts the entry
        /// outside RAM.
        entries: Vec<(u32, u16)>,
        /// Added to the entry count announced.
        lie: i16,
    },
    Detach {
        id: u8,
    },
    SetScanout {
        scanout: u8,
        id: u8,
        rect: Coords,
    },
    Flush {
        id: u8,
        rect: Coords,
    },
    Transfer {
        id: u8,
        rect: Coords,
        offset: u32,
    },
    Cursor {
        update: bool,
        short: bool,
    },
    Raw {
        kind: u16,
        body: Vec<u8>,
    },
}

fn coord(v: u16) -> u32 {
    if v & 0x8000 != 0 {
        u32::MAX - u32::from(v & 0x7fff)
    } else {
        u32::from(v & 0x7f)
    }
}

fn dim(v: u16) -> u32 {
    match v {
        0 => 0,
        u16::MAX => 16385,
        0xfffe => 16384,
        _ => u32::from(v % 96) + 1,
    }
}

/// Guest RAM, counting what the device reads.
struct Guest {
    ram: RefCell<Vec<u8>>,
    read: Cell<u64>,
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
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        let n = usize::try_from(len).map_err(|_| MemoryError { gpa, len })?;
        self.range(gpa, n).map(|_| ())
    }

    fn fence(&self, _kind: Fence) {}
}

struct Rig {
    t: MmioTransport<Gpu>,
    mem: Guest,
    arena: usize,
    max_resources: u32,
    /// Interrupt level as the effects reported it.
    level: bool,
    /// Queue work asked for and not yet done.
    pending: Option<u16>,
    next_desc: [u16; 2],
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
        let mut fx = Effects::default();
        self.t.write(offset, width, value, &mut fx);
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
        }
        for _ in 0..8 {
            let Some(q) = fx.notify.take().or_else(|| self.pending.take()) else {
                return;
            };
            self.mem.read.set(0);
            fx = self.t.notify_queue(q, &self.mem);
            assert!(
                self.mem.read.get() <= READ_BOUND,
                "one call read {} bytes",
                self.mem.read.get()
            );
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

    fn check(&self) {
        let gpu = self.t.device();
        gpu.check_invariants().unwrap();
        let st = gpu.stats();
        assert!(st.arena_used <= self.arena as u64);
        assert_eq!(st.arena_size, self.arena as u64);
        assert!(st.resources <= self.max_resources.min(128));
        for i in 0..gpu.num_scanouts() + 2 {
            if let Some(img) = gpu.scanout(i) {
                assert!(i < gpu.num_scanouts());
                assert_eq!(
                    img.pixels.len() as u64,
                    u64::from(img.width) * u64::from(img.height) * 4
                );
                let s = img.source;
                assert!(!s.is_empty());
                assert!(s.right() <= u64::from(img.width) && s.bottom() <= u64::from(img.height));
                assert_eq!(
                    img.row(s.height - 1).map(|r| r.len()),
                    Some(s.width as usize * 4)
                );
            }
        }
    }

    fn layout(&self, q: u16) -> Option<QueueLayout> {
        let l = self.t.queue(q)?.layout();
        (l.num != 0 && l.num.is_power_of_two() && l.num <= 64).then_some(l)
    }

    fn alloc(&mut self, len: u64) -> u64 {
        if self.next_buf + len > FB {
            self.next_buf = BUFS;
        }
        let at = self.next_buf;
        self.next_buf = (at + len + 15) & !15;
        at
    }

    /// Lays out `req` (+ `data`) and a response of `resp` bytes as a
    /// driver would, in `split`-dependent pieces, directly or through an
    /// indirect table, and publishes it on queue `q`.
    fn request(
        &mut self,
        q: u16,
        req: &[u8],
        data: &[u8],
        resp: u64,
        split: u8,
        indirect: bool,
    ) -> bool {
        let Some(l) = self.layout(q) else {
            return false;
        };
        let num = l.num as u16;
        let mut out = req.to_vec();
        out.extend_from_slice(data);
        if out.len() as u64 + resp > (FB - BUFS) / 4 {
            return false;
        }
        let out_at = self.alloc(out.len() as u64);
        let resp_at = self.alloc(resp);
        self.mem.put(out_at, &out);
        // Readable pieces: cut after `split % 5` points spread over it.
        let mut bufs: Vec<(u64, u64, bool)> = Vec::new();
        let cuts = u64::from(split % 5) + 1;
        let len = out.len() as u64;
        let mut at = 0;
        while at < len {
            let n = (len / cuts).max(1).min(len - at);
            bufs.push((out_at + at, n, false));
            at += n;
        }
        if resp > 0 {
            let cuts = u64::from(split >> 5) % 3 + 1;
            let mut at = 0;
            while at < resp {
                let n = (resp / cuts).max(1).min(resp - at);
                bufs.push((resp_at + at, n, true));
                at += n;
            }
        }
        if bufs.is_empty() || bufs.len() > usize::from(num) {
            return false;
        }
        let desc = |addr: u64, len: u64, flags: u16, next: u16| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
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
            let d = desc(table, 16 * bufs.len() as u64, DESC_F_INDIRECT, 0);
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
}

fn hdr(kind: u32, fence: Option<u64>) -> Vec<u8> {
    let mut v = vec![0u8; 24];
    v[..4].copy_from_slice(&kind.to_le_bytes());
    if let Some(f) = fence {
        v[4..8].copy_from_slice(&FLAG_FENCE.to_le_bytes());
        v[8..16].copy_from_slice(&f.to_le_bytes());
    }
    v
}

fn put(v: &mut Vec<u8>, xs: &[u32]) {
    for x in xs {
        v.extend_from_slice(&x.to_le_bytes());
    }
}

fn rect(c: Coords) -> [u32; 4] {
    [coord(c.0), coord(c.1), coord(c.2), coord(c.3)]
}

/// The request bytes and the data that follows them.
fn build(c: &Command, fence: Option<u64>) -> (Vec<u8>, Vec<u8>) {
    const FORMATS: [u32; 10] = [1, 2, 3, 4, 67, 68, 121, 134, 0, 5];
    let id = |i: u8| u32::from(i % 8);
    match c {
        Command::DisplayInfo => (hdr(cmd::GET_DISPLAY_INFO, fence), vec![]),
        Command::Edid { scanout } => {
            let mut v = hdr(cmd::GET_EDID, fence);
            put(&mut v, &[u32::from(*scanout % 20), 0]);
            (v, vec![])
        }
        Command::Create {
            id: i,
            format,
            width,
            height,
        } => {
            let mut v = hdr(cmd::RESOURCE_CREATE_2D, fence);
            let f = FORMATS[usize::from(*format) % FORMATS.len()];
            put(&mut v, &[id(*i), f, dim(*width), dim(*height)]);
            (v, vec![])
        }
        Command::Unref { id: i } => {
            let mut v = hdr(cmd::RESOURCE_UNREF, fence);
            put(&mut v, &[id(*i), 0]);
            (v, vec![])
        }
        Command::Attach {
            id: i,
            entries,
            lie,
        } => {
            let mut v = hdr(cmd::RESOURCE_ATTACH_BACKING, fence);
            let entries = &entries[..entries.len().min(64)];
            let nr = (entries.len() as i64 + i64::from(*lie)).max(0) as u32;
            put(&mut v, &[id(*i), nr]);
            let mut d = Vec::new();
            for &(off, len) in entries {
                let addr = if off & 0x8000_0000 != 0 {
                    BASE.wrapping_add(u64::from(off)).wrapping_sub(0x4000)
                } else {
                    BASE + u64::from(off) % RAM as u64
                };
                d.extend_from_slice(&addr.to_le_bytes());
                put(&mut d, &[u32::from(len), 0]);
            }
            (v, d)
        }
        Command::Detach { id: i } => {
            let mut v = hdr(cmd::RESOURCE_DETACH_BACKING, fence);
            put(&mut v, &[id(*i), 0]);
            (v, vec![])
        }
        Command::SetScanout {
            scanout,
            id: i,
            rect: r,
        } => {
            let mut v = hdr(cmd::SET_SCANOUT, fence);
            put(&mut v, &rect(*r));
            put(&mut v, &[u32::from(*scanout % 20), id(*i)]);
            (v, vec![])
        }
        Command::Flush { id: i, rect: r } => {
            let mut v = hdr(cmd::RESOURCE_FLUSH, fence);
            put(&mut v, &rect(*r));
            put(&mut v, &[id(*i), 0]);
            (v, vec![])
        }
        Command::Transfer {
            id: i,
            rect: r,
            offset,
        } => {
            let mut v = hdr(cmd::TRANSFER_TO_HOST_2D, fence);
            put(&mut v, &rect(*r));
            let offset = if offset & 0x8000_0000 != 0 {
                u64::MAX - u64::from(offset & 0xffff)
            } else {
                u64::from(*offset % 0x10000)
            };
            v.extend_from_slice(&offset.to_le_bytes());
            put(&mut v, &[id(*i), 0]);
            (v, vec![])
        }
        Command::Cursor { update, short } => {
            let kind = if *update {
                cmd::UPDATE_CURSOR
            } else {
                cmd::MOVE_CURSOR
            };
            let mut v = hdr(kind, fence);
            put(&mut v, &[0, 10, 10, 0, 1, 0, 0, 0]);
            if *short {
                v.truncate(40);
            }
            (v, vec![])
        }
        Command::Raw { kind, body } => {
            let mut v = hdr(u32::from(*kind), fence);
            v.extend_from_slice(&body[..body.len().min(128)]);
            (v, vec![])
        }
    }
}

fuzz_target!(|input: Input| {
    let mut views: Vec<(u32, u32)> = input
        .views
        .iter()
        .take(17)
        .map(|&(w, h)| (u32::from(w % 64) + 1, u32::from(h % 64) + 1))
        .collect();
    if views.is_empty() {
        views.push((32, 32));
    }
    let arena = (usize::from(input.arena_kib % 128) + 1) << 10;
    let max_resources = u32::from(input.max_resources % 12);
    let mut ram = vec![0u8; RAM];
    let n = input.ram.len().min(RAM);
    ram[..n].copy_from_slice(&input.ram[..n]);
    let mut rig = Rig {
        t: MmioTransport::new(VirtioGpu::new(&views, max_resources, vec![0xa5; arena])),
        mem: Guest {
            ram: RefCell::new(ram),
            read: Cell::new(0),
        },
        arena,
        max_resources,
        level: false,
        pending: None,
        next_desc: [0; 2],
        next_buf: BUFS,
    };

    if let Some(s) = &input.setup {
        let f = feature::VERSION_1
            | u64::from(s.features & 1) * feature::EVENT_IDX
            | u64::from(s.features >> 1 & 1) * feature::INDIRECT_DESC
            | u64::from(s.features >> 2 & 1) * features::EDID;
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
        for (q, log2) in [(0u64, s.ctrl_log2), (1, s.cursor_log2)] {
            let base = BASE + 0x2000 * q;
            w(&mut rig, reg::QUEUE_SEL, q);
            w(&mut rig, reg::QUEUE_NUM, 1 << (4 + log2 % 3));
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

    for op in input.ops.iter().take(200) {
        match op {
            Op::Read { offset, width: wd } => {
                let _ = rig.read(u64::from(*offset), width(*wd));
            }
            Op::Write {
                offset,
                width: wd,
                value,
            } => {
                rig.write(u64::from(*offset), width(*wd), *value);
            }
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
            Op::Notify { cursor } => rig.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(*cursor)),
            Op::Poke { at, bytes } => {
                let at = BASE + u64::from(*at) % RAM as u64;
                let n = bytes.len().min(RAM - (at - BASE) as usize);
                rig.mem.put(at, &bytes[..n]);
            }
            Op::Chain {
                cursor,
                descs,
                publish,
                idx_jump,
            } => {
                let q = u16::from(*cursor);
                let Some(l) = rig.layout(q) else {
                    continue;
                };
                if descs.is_empty() {
                    continue;
                }
                for d in descs.iter().take(64) {
                    let i = u64::from(d.index) % u64::from(l.num);
                    let mut b = [0u8; 16];
                    b[..8].copy_from_slice(
                        &(BASE + u64::from(d.addr) % (2 * RAM as u64)).to_le_bytes(),
                    );
                    b[8..12].copy_from_slice(&u32::from(d.len).to_le_bytes());
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
            Op::Request {
                cursor,
                command,
                fence,
                resp,
                split,
                indirect,
            } => {
                let q = u16::from(*cursor);
                let (req, data) = build(command, *fence);
                let resp = match resp % 4 {
                    0 => 24,
                    1 => 1056,
                    2 => 0,
                    _ => u64::from(*resp % 1100),
                };
                if rig.request(q, &req, &data, resp, *split, *indirect) {
                    rig.write(reg::QUEUE_NOTIFY, Width::Word, u64::from(q));
                }
            }
            &Op::Frame {
                id,
                width,
                height,
                scanout,
                source,
                at,
                pieces,
                fence,
                split,
                indirect,
            } => {
                let (w, h) = (u32::from(width % 64) + 1, u32::from(height % 64) + 1);
                let rid = u32::from(id % 8);
                let mut create = hdr(cmd::RESOURCE_CREATE_2D, None);
                put(&mut create, &[rid, 2, w, h]);
                // The framebuffer, in pieces, somewhere in FB (maybe past
                // the end of RAM).
                let len = u64::from(w * h * 4);
                let start = FB + u64::from(at) * 4 % (BASE + RAM as u64 - FB);
                let n = u64::from(pieces % 8) + 1;
                let mut entries = Vec::new();
                let mut done = 0;
                while done < len {
                    let piece = (len / n).max(1).min(len - done);
                    entries.extend_from_slice(&(start + done).to_le_bytes());
                    put(&mut entries, &[piece as u32, 0]);
                    done += piece;
                }
                let mut attach = hdr(cmd::RESOURCE_ATTACH_BACKING, None);
                put(&mut attach, &[rid, (entries.len() / 16) as u32]);
                let full = [0, 0, w, h];
                let mut transfer = hdr(cmd::TRANSFER_TO_HOST_2D, None);
                put(&mut transfer, &full);
                transfer.extend_from_slice(&0u64.to_le_bytes());
                put(&mut transfer, &[rid, 0]);
                let mut set = hdr(cmd::SET_SCANOUT, None);
                // The whole resource, or (if `source` says so) a part.
                let r = if source.0 & 1 == 0 {
                    full
                } else {
                    rect(source)
                };
                put(&mut set, &r);
                put(&mut set, &[u32::from(scanout % 18), rid]);
                let mut flush = hdr(cmd::RESOURCE_FLUSH, Some(fence));
                put(&mut flush, &full);
                put(&mut flush, &[rid, 0]);
                for (req, data) in [
                    (create, vec![]),
                    (attach, entries),
                    (transfer, vec![]),
                    (set, vec![]),
                    (flush, vec![]),
                ] {
                    if !rig.request(0, &req, &data, 24, split, indirect) {
                        break;
                    }
                }
                rig.write(reg::QUEUE_NOTIFY, Width::Word, 0);
            }
            Op::Present => {
                let ((), fx) = rig.t.with_device(&rig.mem, |gpu, ctx| gpu.presented(ctx));
                assert!(!rig.t.device().flush_waiting());
                rig.apply(fx);
            }
            Op::Look { scanout } => {
                let i = usize::from(*scanout % 18);
                let source = rig.t.device().scanout(i).map(|img| img.source);
                let damage = rig.t.device_mut().take_damage(i);
                if let Some(d) = damage {
                    let s = source.expect("damage on a disabled scanout");
                    assert!(!d.is_empty());
                    assert!(d.right() <= u64::from(s.width) && d.bottom() <= u64::from(s.height));
                }
                assert_eq!(rig.t.device_mut().take_damage(i), None);
            }
            Op::Reset => {
                let fx = rig.t.reset();
                rig.pending = None;
                rig.apply(fx);
                let st = rig.t.device().stats();
                assert_eq!((st.resources, st.arena_used), (0, 0));
                assert!(!rig.t.device().flush_waiting());
            }
        }
        rig.check();
    }
});
