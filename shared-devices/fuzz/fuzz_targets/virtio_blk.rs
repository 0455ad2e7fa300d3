//! A hostile driver against the virtio-blk device, end to end: arbitrary
//! guest RAM, descriptor chains, ring indices and MMIO register sequences
//! go into the transport, the queue and the request parser; the scheduler
//! and an in-memory disk complete requests in arbitrary order.
//!
//! Checked besides "no panic":
//! - every write to guest memory lies inside a device-writable buffer the
//!   driver offered at some point (a WRITE descriptor, direct or in an
//!   indirect table) or inside the used ring of a queue the driver
//!   enabled, and inside the partition's RAM;
//! - the physical disk outside the partition's window never changes;
//! - the interrupt line level reported through the effects always matches
//!   InterruptStatus, and a reset leaves Status and InterruptStatus at 0;
//! - register reads (any offset, also far past the window, any width) fit
//!   in their width and have no effects.

#![no_main]

use std::cell::RefCell;
use std::collections::HashSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shared_devices::mmio::{RegisterFile, Width};
use shared_devices::virtio::blk::{BlkToken, DiskConfig, MemDisk, VirtioBlk, features};
use shared_devices::virtio::device::{VirtioDevice, feature};
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};
use shared_devices::virtio::mmio::{Effects, MmioTransport, reg, status};
use shared_devices::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueLayout};
use shared_devices::virtio::sched::{Limits, Scheduler};

const BASE: u64 = 0x4000_0000;
const RAM: usize = 0x1_0000;
const DISK_SECTORS: u64 = 64;
const WINDOW_START: u64 = 16;
const WINDOW_SECTORS: u64 = 32;
const OUTSIDE: u8 = 0xa5;
/// `Op::Request` buffers live here up to the end of RAM.
const BUFS: u64 = BASE + 0x2000;

#[derive(Arbitrary, Debug)]
struct Input {
    ram: Vec<u8>,
    read_only: bool,
    setup: Option<Setup>,
    ops: Vec<Op>,
}

/// A well-behaved initialisation (features the device offers, rings in
/// the first 8 KiB), so that the interesting states are reachable; the
/// ops may undo any of it.
#[derive(Arbitrary, Debug)]
struct Setup {
    features: u64,
    size_log2: u8,
    desc: u16,
    avail: u16,
    used: u16,
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
    /// An access anywhere (overflowing offsets).
    Far {
        offset: u64,
        width: u8,
        value: u64,
        write: bool,
    },
    /// QueueNotify(0), then whatever the device asks for.
    Notify,
    /// The driver scribbles on its memory.
    Poke {
        at: u16,
        bytes: Vec<u8>,
    },
    /// Descriptors into queue 0's table, the first one's index into the
    /// available ring.
    Chain {
        descs: Vec<Desc>,
        publish: bool,
        idx_jump: u8,
    },
    /// A well-formed request of the kind a driver sends (but with
    /// arbitrary sector, size, framing and flags), laid out in the RAM
    /// above the rings, published and notified.
    Request {
        kind: u8,
        sector: u8,
        sectors: u8,
        split: u8,
        indirect: bool,
        flags: u8,
    },
    /// The disk finishes one of its requests.
    Complete {
        pick: u8,
        fail: bool,
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

/// Guest RAM that checks every device write against the buffers the
/// driver has offered.
struct Guest {
    ram: RefCell<Vec<u8>>,
    /// Layouts of every queue the driver enabled.
    layouts: RefCell<Vec<QueueLayout>>,
    /// Writable ranges ever offered (cumulative: the device may hold a
    /// chain after the driver rewrote its descriptors).
    offered: RefCell<HashSet<(u64, u64)>>,
    /// Memory or layouts changed since the last snapshot.
    dirty: std::cell::Cell<bool>,
}

impl Guest {
    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, MemoryError> {
        let err = MemoryError {
            gpa,
            len: len as u64,
        };
        let start = gpa.checked_sub(BASE).ok_or(err)? as usize;
        let end = start.checked_add(len).ok_or(err)?;
        if end > RAM {
            return Err(err);
        }
        Ok(start..end)
    }

    fn u16_at(ram: &[u8], gpa: u64) -> Option<u16> {
        let i = usize::try_from(gpa.checked_sub(BASE)?).ok()?;
        Some(u16::from_le_bytes([*ram.get(i)?, *ram.get(i + 1)?]))
    }

    /// The writable ranges the current memory offers: used rings, and
    /// WRITE descriptors of every enabled table and the indirect tables
    /// they point to.
    fn scan(&self) -> Vec<(u64, u64)> {
        let ram = self.ram.borrow();
        let mut out = Vec::new();
        let desc = |gpa: u64| -> Option<(u64, u32, u16, u16)> {
            let i = usize::try_from(gpa.checked_sub(BASE)?).ok()?;
            let b = ram.get(i..i + 16)?;
            Some((
                u64::from_le_bytes(b[..8].try_into().unwrap()),
                u32::from_le_bytes(b[8..12].try_into().unwrap()),
                u16::from_le_bytes([b[12], b[13]]),
                u16::from_le_bytes([b[14], b[15]]),
            ))
        };
        for l in self.layouts.borrow().iter() {
            out.push((l.used, l.used + l.used_bytes()));
            for i in 0..u64::from(l.num) {
                let Some((addr, len, flags, _)) = desc(l.desc + 16 * i) else {
                    continue;
                };
                if flags & DESC_F_INDIRECT != 0 {
                    // The device walks an indirect table from entry 0 along
                    // `next`, for at most the queue size: so can this.
                    let mut j = 0u64;
                    for _ in 0..l.num {
                        if j >= u64::from(len / 16) {
                            break;
                        }
                        let Some((a, n, f, next)) = desc(addr.wrapping_add(16 * j)) else {
                            break;
                        };
                        if f & DESC_F_WRITE != 0 {
                            out.push((a, a.saturating_add(u64::from(n))));
                        }
                        if f & DESC_F_NEXT == 0 {
                            break;
                        }
                        j = u64::from(next);
                    }
                } else if flags & DESC_F_WRITE != 0 {
                    out.push((addr, addr.saturating_add(u64::from(len))));
                }
            }
        }
        out
    }

    fn snapshot(&self) {
        if !self.dirty.replace(false) {
            return;
        }
        let fresh = self.scan();
        self.offered.borrow_mut().extend(fresh);
    }

    fn allowed(&self, gpa: u64, len: u64) -> bool {
        let end = gpa + len;
        let inside = |&(a, b): &(u64, u64)| a <= gpa && end <= b;
        self.offered.borrow().iter().any(inside) || self.scan().iter().any(inside)
    }
}

impl GuestMemory for Guest {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let r = self.range(gpa, buf.len())?;
        buf.copy_from_slice(&self.ram.borrow()[r]);
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let r = self.range(gpa, data.len())?;
        assert!(
            self.allowed(gpa, data.len() as u64),
            "device wrote {} bytes at {gpa:#x}, outside every writable buffer",
            data.len()
        );
        self.ram.borrow_mut()[r].copy_from_slice(data);
        self.dirty.set(true);
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        let n = usize::try_from(len).map_err(|_| MemoryError { gpa, len })?;
        self.range(gpa, n).map(|_| ())
    }

    fn fence(&self, _kind: Fence) {}
}

struct Rig<'d> {
    t: MmioTransport<VirtioBlk>,
    mem: Guest,
    sched: Scheduler<BlkToken, 1, 32, 4>,
    disk: MemDisk<'d, 4>,
    level: bool,
    /// The driver's next free descriptor and buffer (for `Op::Request`).
    next_desc: u16,
    next_buf: u64,
}

impl Rig<'_> {
    fn apply(&mut self, fx: Effects) {
        if let Some(l) = fx.irq {
            assert_ne!(l, self.level, "a change to the same level");
            self.level = l;
        }
        assert_eq!(self.level, self.t.irq_level());
        if fx.reset {
            assert_eq!(self.t.status(), 0);
            assert_eq!(self.t.interrupt_status(), 0);
            let mut cancelled = Vec::new();
            self.sched.cancel(0, |tok| cancelled.push(tok));
            for tok in cancelled {
                let (_, fx) = self.t.with_device(&self.mem, |blk, ctx| {
                    assert!(blk.physical_request(tok).is_none());
                    blk.complete(
                        tok,
                        shared_devices::virtio::blk::BackendStatus::IoError,
                        ctx,
                    )
                });
                self.apply(fx);
            }
        }
        // The device asked to be called again: do so, a few times.
        let mut notify = fx.notify;
        for _ in 0..4 {
            let Some(q) = notify else { break };
            let fx = self.t.notify_queue(q, &self.mem);
            if let Some(l) = fx.irq {
                self.level = l;
            }
            assert_eq!(self.level, self.t.irq_level());
            notify = fx.notify;
        }
        self.pump();
    }

    fn pump(&mut self) {
        use shared_devices::virtio::blk::BlockBackend;
        while let Some(tok) = self.t.device_mut().take_pending() {
            let bytes = self.t.device().physical_request(tok).map_or(0, |r| r.bytes());
            assert!(
                self.sched.enqueue(0, tok, bytes).is_ok(),
                "queue sized for every slot"
            );
        }
        while let Some(d) = self.sched.dispatch() {
            let req = self.t.device().physical_request(d.item);
            let submitted = match req {
                Some(req) => {
                    if req.op != shared_devices::virtio::blk::PhysOp::Flush {
                        assert!(req.lba >= WINDOW_START);
                        assert!(req.lba + req.sectors <= WINDOW_START + WINDOW_SECTORS);
                    }
                    self.disk.submit(d.id, &req).is_ok()
                }
                None => false,
            };
            if !submitted {
                let (_, tok) = self.sched.complete(d.id).unwrap();
                let (_, fx) = self.t.with_device(&self.mem, |blk, ctx| {
                    blk.complete(
                        tok,
                        shared_devices::virtio::blk::BackendStatus::IoError,
                        ctx,
                    )
                });
                self.apply(fx);
            }
        }
    }

    fn alloc(&mut self, len: u64) -> u64 {
        if self.next_buf + len > BASE + RAM as u64 {
            self.next_buf = BUFS;
        }
        let at = self.next_buf;
        self.next_buf = (at + len + 15) & !15;
        at
    }

    /// Lays out a request as a driver would and publishes it; false if
    /// queue 0 has no usable layout.
    fn request(
        &mut self,
        kind: u8,
        sector: u8,
        sectors: u8,
        split: u8,
        indirect: bool,
        flags: u8,
    ) -> bool {
        use shared_devices::virtio::blk::req;
        let Some(l) = self.t.queue(0).map(|q| q.layout()) else {
            return false;
        };
        if l.num == 0 || !l.num.is_power_of_two() || l.num > 128 {
            return false;
        }
        let num = l.num as u16;
        let kind = [
            req::IN,
            req::OUT,
            req::FLUSH,
            req::GET_ID,
            req::DISCARD,
            req::WRITE_ZEROES,
            2,
            u32::from(flags) << 8,
        ][usize::from(kind % 8)];
        let nsec = u64::from(sectors % 9);
        // Sectors up to a little beyond the window's end, or (flag bit 7)
        // near 2^64.
        let sector = if flags & 0x80 != 0 {
            u64::MAX - u64::from(sector)
        } else {
            u64::from(sector % 40)
        };
        let (out_len, in_len) = match kind {
            req::IN => (0, nsec * 512),
            req::OUT => (nsec * 512, 0),
            req::GET_ID => (0, 20),
            req::DISCARD | req::WRITE_ZEROES => (16, 0),
            _ => (0, 0),
        };
        let hdr = self.alloc(16);
        let data = self.alloc(out_len.max(in_len).max(1));
        let status = self.alloc(1);
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&kind.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        let mut range = [0u8; 16];
        range[..8].copy_from_slice(&sector.to_le_bytes());
        range[8..12].copy_from_slice(&(nsec as u32).to_le_bytes());
        range[12..].copy_from_slice(&u32::from(flags & 3).to_le_bytes());
        let mut bufs = vec![(hdr, 16u64, false)];
        let (dlen, dw) = if out_len > 0 {
            (out_len, false)
        } else {
            (in_len, true)
        };
        let parts = u64::from(split % 4) + 1;
        let mut at = 0;
        while at < dlen {
            let n = (dlen / parts).max(1).min(dlen - at);
            bufs.push((data + at, n, dw));
            at += n;
        }
        bufs.push((status, 1, true));
        let table = self.alloc(16 * bufs.len() as u64);
        let desc = |addr: u64, len: u64, flags: u16, next: u16| {
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&(len as u32).to_le_bytes());
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..].copy_from_slice(&next.to_le_bytes());
            b
        };
        let chain = |i: usize, next: u16| {
            let (gpa, len, w) = bufs[i];
            let mut f = if w { DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                f |= DESC_F_NEXT;
            }
            desc(gpa, len, f, next)
        };
        // What the driver writes: (address, bytes).
        let mut writes: Vec<(u64, Vec<u8>)> = vec![(hdr, h.to_vec())];
        if matches!(kind, req::DISCARD | req::WRITE_ZEROES) {
            writes.push((data, range.to_vec()));
        }
        let head = self.next_desc % num;
        if indirect {
            for i in 0..bufs.len() {
                writes.push((table + 16 * i as u64, chain(i, i as u16 + 1).to_vec()));
            }
            self.next_desc = self.next_desc.wrapping_add(1);
            let len = 16 * bufs.len() as u64;
            let d = desc(table, len, DESC_F_INDIRECT, 0);
            writes.push((l.desc + 16 * u64::from(head), d.to_vec()));
        } else {
            for i in 0..bufs.len() {
                let me = self.next_desc % num;
                self.next_desc = self.next_desc.wrapping_add(1);
                let d = chain(i, self.next_desc % num);
                writes.push((l.desc + 16 * u64::from(me), d.to_vec()));
            }
        }
        self.mem.dirty.set(true);
        let mut ram = self.mem.ram.borrow_mut();
        let mut put = |gpa: u64, bytes: &[u8]| {
            if let Some(i) = gpa.checked_sub(BASE).map(|i| i as usize) {
                if let Some(dst) = ram.get_mut(i..i + bytes.len()) {
                    dst.copy_from_slice(bytes);
                }
            }
        };
        for (gpa, bytes) in &writes {
            put(*gpa, bytes);
        }
        let Some(idx) = Guest::u16_at(&ram, l.avail + 2) else {
            return false;
        };
        let mut put = |gpa: u64, bytes: &[u8]| {
            if let Some(i) = gpa.checked_sub(BASE).map(|i| i as usize) {
                if let Some(dst) = ram.get_mut(i..i + bytes.len()) {
                    dst.copy_from_slice(bytes);
                }
            }
        };
        put(l.avail + 4 + 2 * u64::from(idx % num), &head.to_le_bytes());
        put(l.avail + 2, &idx.wrapping_add(1).to_le_bytes());
        true
    }

    fn layout_seen(&self) {
        if let Some(q) = self.t.queue(0) {
            if q.is_ready() {
                let l = q.layout();
                let mut ls = self.mem.layouts.borrow_mut();
                if !ls.contains(&l) {
                    ls.push(l);
                    self.mem.dirty.set(true);
                }
            }
        }
    }
}

fn width(w: u8) -> Width {
    Width::ALL[usize::from(w % 4)]
}

impl Rig<'_> {
    /// A register read, which must fit the width and have no effects.
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

    fn write(&mut self, offset: u64, width: Width, value: u64) -> Effects {
        let mut fx = Effects::default();
        self.t.write(offset, width, value, &mut fx);
        fx
    }
}

fn w(rig: &mut Rig<'_>, offset: u64, v: u64) {
    let fx = rig.write(offset, Width::Word, v);
    rig.layout_seen();
    rig.apply(fx);
}

fuzz_target!(|input: Input| {
    let mut ram = vec![0u8; RAM];
    let n = input.ram.len().min(RAM);
    ram[..n].copy_from_slice(&input.ram[..n]);
    let mut disk = vec![OUTSIDE; DISK_SECTORS as usize * 512];
    let window = WINDOW_START as usize * 512..(WINDOW_START + WINDOW_SECTORS) as usize * 512;
    for (i, b) in disk[window.clone()].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut cfg = DiskConfig::new(WINDOW_START, WINDOW_SECTORS);
    cfg.read_only = input.read_only;
    cfg.discard = true;
    cfg.write_zeroes = true;
    cfg.max_discard_sectors = 8;
    cfg.max_write_zeroes_sectors = 8;
    cfg.id = *b"fuzzed-disk-0000000\0";
    let blk = VirtioBlk::new(cfg, DISK_SECTORS).unwrap();
    let mut rig = Rig {
        t: MmioTransport::new(blk),
        mem: Guest {
            ram: RefCell::new(ram),
            layouts: RefCell::new(Vec::new()),
            offered: RefCell::new(HashSet::new()),
            dirty: std::cell::Cell::new(true),
        },
        sched: Scheduler::new(&[200], Limits::default()).unwrap(),
        disk: MemDisk::new(&mut disk),
        level: false,
        next_desc: 0,
        next_buf: BUFS,
    };

    if let Some(s) = &input.setup {
        let f = ((s.features
            & (features::SEG_MAX
                | features::BLK_SIZE
                | features::FLUSH
                | features::RO
                | features::DISCARD
                | features::WRITE_ZEROES
                | feature::EVENT_IDX
                | feature::INDIRECT_DESC))
            | feature::VERSION_1)
            & rig.t.device().device_features();
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
        let size = 1u64 << (s.size_log2 % 8);
        w(&mut rig, reg::QUEUE_SEL, 0);
        w(&mut rig, reg::QUEUE_NUM, size);
        // Descriptors at 0..0xc00, available ring at 0x1000..0x1206,
        // used ring at 0x1400..0x1c06: apart, whatever the size.
        let desc = BASE + 16 * u64::from(s.desc % 64);
        let avail = BASE + 0x1000 + 2 * u64::from(s.avail % 256);
        let used = BASE + 0x1400 + 4 * u64::from(s.used % 256);
        w(&mut rig, reg::QUEUE_DESC_LOW, desc & 0xffff_ffff);
        w(&mut rig, reg::QUEUE_DRIVER_LOW, avail & 0xffff_ffff);
        w(&mut rig, reg::QUEUE_DEVICE_LOW, used & 0xffff_ffff);
        w(&mut rig, reg::QUEUE_READY, 1);
        w(&mut rig, reg::STATUS, u64::from(st | status::DRIVER_OK));
    }

    for op in input.ops.iter().take(256) {
        rig.mem.snapshot();
        match op {
            Op::Read { offset, width: wd } => {
                let _ = rig.read(u64::from(*offset), width(*wd));
            }
            Op::Write {
                offset,
                width: wd,
                value,
            } => {
                let fx = rig.write(u64::from(*offset), width(*wd), *value);
                rig.layout_seen();
                rig.mem.snapshot();
                rig.apply(fx);
            }
            Op::Far {
                offset,
                width: wd,
                value,
                write,
            } => {
                if *write {
                    let fx = rig.write(*offset, width(*wd), *value);
                    rig.layout_seen();
                    rig.mem.snapshot();
                    rig.apply(fx);
                } else {
                    let _ = rig.read(*offset, width(*wd));
                }
            }
            Op::Notify => {
                let fx = rig.write(reg::QUEUE_NOTIFY, Width::Word, 0);
                rig.apply(fx);
            }
            Op::Poke { at, bytes } => {
                let start = usize::from(*at);
                let end = (start + bytes.len()).min(RAM);
                let mut ram = rig.mem.ram.borrow_mut();
                ram[start..end].copy_from_slice(&bytes[..end - start]);
                rig.mem.dirty.set(true);
            }
            Op::Chain {
                descs,
                publish,
                idx_jump,
            } => {
                let Some(l) = rig.t.queue(0).map(|q| q.layout()) else {
                    continue;
                };
                if l.num == 0 || !l.num.is_power_of_two() || l.num > 128 || descs.is_empty() {
                    continue;
                }
                rig.mem.dirty.set(true);
                let mut ram = rig.mem.ram.borrow_mut();
                let mut put = |gpa: u64, bytes: &[u8]| {
                    if let Some(i) = gpa.checked_sub(BASE).map(|i| i as usize) {
                        if let Some(dst) = ram.get_mut(i..i + bytes.len()) {
                            dst.copy_from_slice(bytes);
                        }
                    }
                };
                for d in descs.iter().take(64) {
                    let i = u64::from(d.index) % u64::from(l.num);
                    let mut b = [0u8; 16];
                    b[..8].copy_from_slice(&(BASE + u64::from(d.addr)).to_le_bytes());
                    b[8..12].copy_from_slice(&u32::from(d.len).to_le_bytes());
                    b[12..14].copy_from_slice(&u16::from(d.flags & 7).to_le_bytes());
                    b[14..].copy_from_slice(&u16::from(d.next).to_le_bytes());
                    put(l.desc + 16 * i, &b);
                }
                drop(put);
                let idx = Guest::u16_at(&ram, l.avail + 2).unwrap_or(0);
                let head = u16::from(descs[0].index) % l.num as u16;
                let slot = u64::from(idx % l.num as u16);
                let mut put = |gpa: u64, v: u16| {
                    if let Some(i) = gpa.checked_sub(BASE).map(|i| i as usize) {
                        if let Some(dst) = ram.get_mut(i..i + 2) {
                            dst.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                };
                put(l.avail + 4 + 2 * slot, head);
                if *publish {
                    put(
                        l.avail + 2,
                        idx.wrapping_add(1).wrapping_add(u16::from(*idx_jump)),
                    );
                }
            }
            &Op::Request {
                kind,
                sector,
                sectors,
                split,
                indirect,
                flags,
            } => {
                if rig.request(kind, sector, sectors, split, indirect, flags) {
                    let fx = rig.write(reg::QUEUE_NOTIFY, Width::Word, 0);
                    rig.mem.snapshot();
                    rig.apply(fx);
                }
            }
            Op::Complete { pick, fail } => {
                let ids: Vec<_> = rig.disk.ids().collect();
                if ids.is_empty() {
                    continue;
                }
                let id = ids[usize::from(*pick) % ids.len()];
                rig.disk.failing = *fail;
                let st = rig.disk.complete(id, &rig.mem).unwrap();
                let (_, tok) = rig.sched.complete(id).expect("in flight");
                let (_, fx) = rig
                    .t
                    .with_device(&rig.mem, |blk, ctx| blk.complete(tok, st, ctx));
                rig.apply(fx);
            }
            Op::Reset => {
                let fx = rig.t.reset();
                rig.apply(fx);
            }
        }
        let d = rig.disk.data();
        assert!(
            d[..window.start].iter().all(|&b| b == OUTSIDE),
            "wrote below the window"
        );
        assert!(
            d[window.end..].iter().all(|&b| b == OUTSIDE),
            "wrote above the window"
        );
        if input.read_only {
            assert!(
                d[window.clone()]
                    .iter()
                    .enumerate()
                    .all(|(i, &b)| b == i as u8),
                "wrote to a read-only disk"
            );
        }
    }
});
