//! virtio-gpu end to end: a test driver laying out requests the way
//! Linux's `virtio_gpu` does, the real virtio-mmio transport, and the
//! compositor's side (`scanout`, `take_damage`, `presented`).

use core::cell::Cell;

use super::edid::EDID_BYTES;
use super::protocol::{FLAG_FENCE, FLAG_INFO_RING_IDX};
use super::*;
use crate::virtio::memory::{Fence, MemoryError, SliceMemory};
use crate::virtio::mmio::{Effects, MmioTransport, reg, status};
use crate::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::virtio::test_driver::{BASE, Driver, read32, write32};

/// What Linux negotiates.
const LINUX: u64 =
    feature::VERSION_1 | feature::INDIRECT_DESC | feature::EVENT_IDX | features::EDID;
/// Request buffers are taken from here up (rings are below).
const BUFS: u64 = BASE + 0x10000;
/// Fill of response buffers before the device writes them.
const UNSET: u8 = 0xee;
const MIB: usize = 1 << 20;

type Dev = VirtioGpu<Vec<u8>>;

/// A request on its way: its chain's head and where its response goes.
#[derive(Clone, Copy, Debug)]
struct Sent {
    head: u16,
    resp: u64,
}

/// Guest memory that counts the bytes the device reads.
struct Counting<'a> {
    mem: &'a SliceMemory<'a>,
    read: Cell<u64>,
}

impl GuestMemory for Counting<'_> {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read.set(self.read.get() + buf.len() as u64);
        self.mem.read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.mem.write(gpa, data)
    }
    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        self.mem.check(gpa, len)
    }
    fn fence(&self, kind: Fence) {
        self.mem.fence(kind)
    }
}

/// One partition: its RAM, its gpu and the driver's two queues.
struct Rig<'m> {
    mem: SliceMemory<'m>,
    t: MmioTransport<Dev>,
    ctrl: Driver,
    cursor: Driver,
    next: u64,
    /// Device calls the last `kick` or `present` took.
    calls: u32,
}

impl<'m> Rig<'m> {
    fn new(ram: &'m mut [u8], views: &[(u32, u32)], max_resources: u32, arena: usize) -> Self {
        Self::with_features(ram, views, max_resources, arena, LINUX)
    }

    fn with_features(
        ram: &'m mut [u8],
        views: &[(u32, u32)],
        max_resources: u32,
        arena: usize,
        features: u64,
    ) -> Self {
        let gpu = VirtioGpu::new(views, max_resources, vec![0x5a; arena]);
        let mut r = Rig {
            mem: SliceMemory::new(BASE, ram),
            t: MmioTransport::new(gpu),
            ctrl: Driver::new(QUEUE_SIZE),
            cursor: Driver::at(16, BASE + 0x5000, BASE + 0x6000, BASE + 0x7000),
            next: BUFS,
            calls: 0,
        };
        let fx = r.bring_up(features);
        assert!(fx.driver_ok);
        r
    }

    /// The Linux virtio-mmio probe and virtio_gpu init, both queues, up to
    /// DRIVER_OK.
    fn bring_up(&mut self, features: u64) -> Effects {
        let t = &mut self.t;
        let w = |t: &mut MmioTransport<Dev>, o, v| {
            let _ = write32(t, o, v);
        };
        assert_eq!(read32(t, reg::MAGIC_VALUE), 0x7472_6976);
        assert_eq!(read32(t, reg::DEVICE_ID), 16);
        w(t, reg::STATUS, 0);
        w(t, reg::STATUS, status::ACKNOWLEDGE);
        w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        w(t, reg::DRIVER_FEATURES_SEL, 0);
        w(t, reg::DRIVER_FEATURES, features as u32);
        w(t, reg::DRIVER_FEATURES_SEL, 1);
        w(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        w(t, reg::STATUS, s);
        assert_eq!(read32(t, reg::STATUS), u64::from(s), "features refused");
        for (q, d) in [(0, &self.ctrl), (1, &self.cursor)] {
            w(t, reg::QUEUE_SEL, q);
            assert_eq!(read32(t, reg::QUEUE_NUM_MAX), u64::from(QUEUE_SIZE));
            let l = d.layout();
            w(t, reg::QUEUE_NUM, l.num);
            w(t, reg::QUEUE_DESC_LOW, l.desc as u32);
            w(t, reg::QUEUE_DESC_HIGH, (l.desc >> 32) as u32);
            w(t, reg::QUEUE_DRIVER_LOW, l.avail as u32);
            w(t, reg::QUEUE_DRIVER_HIGH, (l.avail >> 32) as u32);
            w(t, reg::QUEUE_DEVICE_LOW, l.used as u32);
            w(t, reg::QUEUE_DEVICE_HIGH, (l.used >> 32) as u32);
            w(t, reg::QUEUE_READY, 1);
            assert_eq!(read32(t, reg::QUEUE_READY), 1);
        }
        write32(t, reg::STATUS, s | status::DRIVER_OK)
    }

    fn gpu(&self) -> &Dev {
        self.t.device()
    }

    fn alloc(&mut self, len: u64) -> u64 {
        let end = BASE + self.mem.len() as u64;
        if self.next + len > end {
            self.next = BUFS;
        }
        let at = self.next;
        self.next = (at + len + 15) & !15;
        at
    }

    /// A request laid out as Linux lays it out: the command in one
    /// buffer, `data` (backing entries) in a second, the response in a
    /// third; added to queue `q` but not yet published.
    fn send(&mut self, q: u16, req: &[u8], data: &[u8], resp_len: u32) -> Sent {
        let r = self.alloc(req.len() as u64);
        let d = self.alloc(data.len() as u64);
        let resp = self.alloc(u64::from(resp_len));
        self.mem.write(r, req).unwrap();
        self.mem.write(d, data).unwrap();
        self.mem
            .write(resp, &vec![UNSET; resp_len as usize])
            .unwrap();
        let mut bufs = vec![(r, req.len() as u32, false)];
        if !data.is_empty() {
            bufs.push((d, data.len() as u32, false));
        }
        if resp_len > 0 {
            bufs.push((resp, resp_len, true));
        }
        let mem = &self.mem;
        let head = match q {
            CONTROL_QUEUE => self.ctrl.add(mem, &bufs),
            _ => self.cursor.add(mem, &bufs),
        };
        Sent { head, resp }
    }

    /// Publishes and notifies queue `q`, then does what the effects ask
    /// for until there is nothing left (as the hypervisor does).
    fn kick(&mut self, q: u16) -> Effects {
        let mem = &self.mem;
        match q {
            CONTROL_QUEUE => self.ctrl.publish(mem),
            _ => self.cursor.publish(mem),
        }
        let fx = write32(&mut self.t, reg::QUEUE_NOTIFY, u32::from(q));
        self.calls = 0;
        self.settle(fx)
    }

    fn settle(&mut self, mut fx: Effects) -> Effects {
        let mut all = fx;
        while let Some(q) = fx.notify {
            self.calls += 1;
            assert!(self.calls < 10_000, "the device never settles");
            fx = self.t.notify_queue(q, &self.mem);
            all = all.and(fx);
            self.gpu().check_invariants().unwrap();
        }
        self.gpu().check_invariants().unwrap();
        Effects {
            notify: None,
            ..all
        }
    }

    /// The compositor has shown everything: `presented`, then the queue
    /// work it asks for.
    fn present(&mut self) -> Effects {
        let ((), fx) = self.t.with_device(&self.mem, |gpu, ctx| gpu.presented(ctx));
        self.calls = 0;
        self.settle(fx)
    }

    fn used(&mut self, q: u16) -> Vec<(u32, u32)> {
        let mem = &self.mem;
        match q {
            CONTROL_QUEUE => self.ctrl.used(mem),
            _ => self.cursor.used(mem),
        }
    }

    fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read(gpa, &mut v).unwrap();
        v
    }

    /// The response header of `s`: (type, flags, fence_id).
    fn response(&self, s: &Sent) -> (u32, u32, u64) {
        let h = self.read(s.resp, HDR_BYTES);
        (le32(&h, 0), le32(&h, 4), le64(&h, 8))
    }

    /// Sends one control request (with `data`), runs it and returns its
    /// response type; it must be answered with a header.
    fn cmd_with(&mut self, req: &[u8], data: &[u8]) -> u32 {
        let s = self.send(CONTROL_QUEUE, req, data, HDR_BYTES as u32);
        let _ = self.kick(CONTROL_QUEUE);
        assert_eq!(
            self.used(CONTROL_QUEUE),
            [(u32::from(s.head), HDR_BYTES as u32)],
            "request {:#x}",
            le32(req, 0)
        );
        self.response(&s).0
    }

    fn cmd(&mut self, req: &[u8]) -> u32 {
        self.cmd_with(req, &[])
    }

    /// Guest buffers of `len` bytes in `pieces` entries, in descending
    /// addresses with gaps between them (so that the order matters).
    fn backing(&mut self, len: usize, pieces: usize) -> Vec<(u64, u32)> {
        let each = len.div_ceil(pieces);
        let mut at: Vec<u64> = (0..pieces).map(|_| self.alloc(each as u64 + 32)).collect();
        at.reverse();
        (0..pieces)
            .map(|i| {
                let n = each.min(len - i * each);
                (at[i], n as u32)
            })
            .collect()
    }

    /// Writes `stream` across the backing entries `sg`.
    fn fill(&self, sg: &[(u64, u32)], stream: &[u8]) {
        let mut done = 0;
        for &(gpa, len) in sg {
            let n = (len as usize).min(stream.len() - done);
            self.mem.write(gpa, &stream[done..done + n]).unwrap();
            done += n;
        }
        assert_eq!(done, stream.len());
    }

    /// CREATE_2D and ATTACH_BACKING of a `w` x `h` resource in `pieces`
    /// entries, as Linux creates a dumb buffer; returns its entries.
    fn dumb(&mut self, id: u32, w: u32, h: u32, pieces: usize) -> Vec<(u64, u32)> {
        assert_eq!(self.cmd(&create(id, B8G8R8X8, w, h)), resp::OK_NODATA);
        let sg = self.backing((w * h * 4) as usize, pieces);
        let r = self.cmd_with(&attach(id, sg.len() as u32), &entries(&sg));
        assert_eq!(r, resp::OK_NODATA);
        sg
    }

    /// A flush, held, then presented: its response type.
    fn flush_presented(&mut self, id: u32, r: Rect) -> u32 {
        let s = self.send(CONTROL_QUEUE, &flush(id, r), &[], HDR_BYTES as u32);
        let _ = self.kick(CONTROL_QUEUE);
        assert!(self.gpu().flush_waiting());
        assert_eq!(self.used(CONTROL_QUEUE), []);
        let _ = self.present();
        assert!(!self.gpu().flush_waiting());
        assert_eq!(
            self.used(CONTROL_QUEUE),
            [(u32::from(s.head), HDR_BYTES as u32)]
        );
        self.response(&s).0
    }
}

// Requests, as `struct virtio_gpu_*` lays them out.

const B8G8R8X8: u32 = 2;

fn hdr(kind: u32) -> Vec<u8> {
    let mut v = vec![0u8; HDR_BYTES];
    v[..4].copy_from_slice(&kind.to_le_bytes());
    v
}

fn fenced(mut req: Vec<u8>, fence: u64) -> Vec<u8> {
    req[4..8].copy_from_slice(&FLAG_FENCE.to_le_bytes());
    req[8..16].copy_from_slice(&fence.to_le_bytes());
    req
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_rect(v: &mut Vec<u8>, r: Rect) {
    for x in [r.x, r.y, r.width, r.height] {
        put32(v, x);
    }
}

fn create(id: u32, format: u32, w: u32, h: u32) -> Vec<u8> {
    let mut v = hdr(cmd::RESOURCE_CREATE_2D);
    for x in [id, format, w, h] {
        put32(&mut v, x);
    }
    v
}

fn with_id(kind: u32, id: u32) -> Vec<u8> {
    let mut v = hdr(kind);
    put32(&mut v, id);
    put32(&mut v, 0);
    v
}

fn unref(id: u32) -> Vec<u8> {
    with_id(cmd::RESOURCE_UNREF, id)
}

fn detach(id: u32) -> Vec<u8> {
    with_id(cmd::RESOURCE_DETACH_BACKING, id)
}

fn get_edid(scanout: u32) -> Vec<u8> {
    with_id(cmd::GET_EDID, scanout)
}

fn attach(id: u32, nr: u32) -> Vec<u8> {
    let mut v = hdr(cmd::RESOURCE_ATTACH_BACKING);
    put32(&mut v, id);
    put32(&mut v, nr);
    v
}

fn entries(sg: &[(u64, u32)]) -> Vec<u8> {
    let mut v = Vec::new();
    for &(addr, len) in sg {
        v.extend_from_slice(&addr.to_le_bytes());
        put32(&mut v, len);
        put32(&mut v, 0);
    }
    v
}

fn set_scanout(scanout: u32, id: u32, r: Rect) -> Vec<u8> {
    let mut v = hdr(cmd::SET_SCANOUT);
    put_rect(&mut v, r);
    put32(&mut v, scanout);
    put32(&mut v, id);
    v
}

fn flush(id: u32, r: Rect) -> Vec<u8> {
    let mut v = hdr(cmd::RESOURCE_FLUSH);
    put_rect(&mut v, r);
    put32(&mut v, id);
    put32(&mut v, 0);
    v
}

fn transfer(id: u32, r: Rect, offset: u64) -> Vec<u8> {
    let mut v = hdr(cmd::TRANSFER_TO_HOST_2D);
    put_rect(&mut v, r);
    v.extend_from_slice(&offset.to_le_bytes());
    put32(&mut v, id);
    put32(&mut v, 0);
    v
}

fn cursor(kind: u32, scanout: u32, res: u32) -> Vec<u8> {
    let mut v = hdr(kind);
    for x in [scanout, 10, 20, 0, res, 1, 2, 0] {
        put32(&mut v, x);
    }
    v
}

/// A recognisable image: pixel (x, y) of a `w`-wide B8G8R8X8 buffer.
fn image(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let mut v = Vec::new();
    for y in 0..h {
        for x in 0..w {
            v.extend_from_slice(&[x as u8, y as u8, seed, 0x11]);
        }
    }
    v
}

fn argb(x: u32, y: u32, seed: u8) -> u32 {
    0xff00_0000 | u32::from(seed) << 16 | (y & 0xff) << 8 | (x & 0xff)
}

#[test]
fn identifies_itself() {
    let gpu = VirtioGpu::new(&[(1920, 1080), (800, 480)], 8, vec![0u8; 4096]);
    let mut t = MmioTransport::new(gpu);
    assert_eq!(read32(&mut t, reg::DEVICE_ID), 16);
    let _ = write32(&mut t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(
        read32(&mut t, reg::DEVICE_FEATURES),
        (1 << 1) | (1 << 28) | (1 << 29),
        "EDID, INDIRECT_DESC, EVENT_IDX"
    );
    let _ = write32(&mut t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 1, "VERSION_1");
    for (q, max) in [(0, 64), (1, 64), (2, 0)] {
        let _ = write32(&mut t, reg::QUEUE_SEL, q);
        assert_eq!(read32(&mut t, reg::QUEUE_NUM_MAX), max);
    }
    let mut c = |o| read32(&mut t, reg::CONFIG + o);
    assert_eq!((c(0), c(4), c(8), c(12), c(16)), (0, 0, 2, 0, 0));
    // events_clear (any width) and the read-only fields.
    let _ = write32(&mut t, reg::CONFIG + 4, u32::MAX);
    let _ = write32(&mut t, reg::CONFIG + 8, 7);
    let mut fx = Effects::default();
    crate::mmio::RegisterFile::write(
        &mut t,
        reg::CONFIG + 5,
        crate::mmio::Width::Byte,
        0xff,
        &mut fx,
    );
    assert_eq!(read32(&mut t, reg::CONFIG + 8), 2);
    assert_eq!(read32(&mut t, reg::CONFIG), 0);
    assert_eq!(t.device().num_scanouts(), 2);
    // At most 16 scanouts.
    let many = VirtioGpu::new(&[(10, 10); 20], 8, vec![0u8; 0]);
    assert_eq!(many.num_scanouts(), 16);
    assert_eq!(many.scanout(0).map(|s| s.width), None);
}

#[test]
fn linux_brings_up_a_display_and_shows_a_frame() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48), (32, 16)], 16, MIB);
    assert_eq!(read32(&mut r.t, reg::CONFIG + 8), 2, "num_scanouts");
    assert_eq!(read32(&mut r.t, reg::CONFIG + 12), 0, "num_capsets");

    // virtio_gpu_init: GET_EDID per scanout, then GET_DISPLAY_INFO, in
    // one batch.
    let e0 = r.send(0, &get_edid(0), &[], EDID_RESP_BYTES as u32);
    let e1 = r.send(0, &get_edid(1), &[], EDID_RESP_BYTES as u32);
    let di = r.send(
        0,
        &hdr(cmd::GET_DISPLAY_INFO),
        &[],
        DISPLAY_INFO_BYTES as u32,
    );
    let fx = r.kick(0);
    assert_eq!(fx.irq, Some(true));
    assert_eq!(
        r.used(0),
        [
            (u32::from(e0.head), EDID_RESP_BYTES as u32),
            (u32::from(e1.head), EDID_RESP_BYTES as u32),
            (u32::from(di.head), DISPLAY_INFO_BYTES as u32)
        ]
    );
    let info = r.read(di.resp, DISPLAY_INFO_BYTES);
    assert_eq!(le32(&info, 0), resp::OK_DISPLAY_INFO);
    let pmode = |i: usize| -> Vec<u32> {
        (0..6)
            .map(|f| le32(&info, HDR_BYTES + 24 * i + 4 * f))
            .collect()
    };
    assert_eq!(pmode(0), [0, 0, 64, 48, 1, 0]);
    assert_eq!(pmode(1), [0, 0, 32, 16, 1, 0]);
    for i in 2..16 {
        assert_eq!(pmode(i), [0; 6]);
    }
    for (s, (w, h)) in [(e0, (64, 48)), (e1, (32, 16))] {
        let b = r.read(s.resp, EDID_RESP_BYTES);
        assert_eq!(le32(&b, 0), resp::OK_EDID);
        assert_eq!(le32(&b, HDR_BYTES), 128, "size");
        let e = &b[HDR_BYTES + 8..HDR_BYTES + 8 + EDID_BYTES];
        assert_eq!(e.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0, "checksum");
        assert_eq!(&e[..8], &[0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);
        let d = &e[54..72];
        assert_eq!(u32::from(d[2]) | u32::from(d[4] >> 4) << 8, w);
        assert_eq!(u32::from(d[5]) | u32::from(d[7] >> 4) << 8, h);
        assert!(b[HDR_BYTES + 8 + EDID_BYTES..].iter().all(|&x| x == 0));
    }

    // A dumb buffer (create + attach with scattered pages), the guest
    // draws, then the plane update: transfer, set_scanout, fenced flush.
    // Another request queued behind the flush waits for it.
    assert_eq!(r.cmd(&create(1, B8G8R8X8, 64, 48)), resp::OK_NODATA);
    assert_eq!(r.gpu().stats().arena_used, 64 * 48 * 4);
    let sg = r.backing(64 * 48 * 4, 3);
    let at = r.send(0, &attach(1, 3), &entries(&sg), 24);
    r.fill(&sg, &image(64, 48, 7));
    let full = Rect::new(0, 0, 64, 48);
    let tr = r.send(0, &transfer(1, full, 0), &[], 24);
    let so = r.send(0, &set_scanout(0, 1, full), &[], 24);
    let fl = r.send(0, &fenced(flush(1, full), 42), &[], 24);
    let after = r.send(
        0,
        &hdr(cmd::GET_DISPLAY_INFO),
        &[],
        DISPLAY_INFO_BYTES as u32,
    );
    let _ = r.kick(0);
    let heads: Vec<u32> = r.used(0).iter().map(|u| u.0).collect();
    assert_eq!(heads, [at.head, tr.head, so.head].map(u32::from));
    for s in [at, tr, so] {
        assert_eq!(r.response(&s), (resp::OK_NODATA, 0, 0));
    }
    assert!(r.gpu().flush_waiting());
    // (Its response is written already; the chain is returned later.)
    assert_eq!(r.response(&fl), (resp::OK_NODATA, FLAG_FENCE, 42));
    // What the compositor sees.
    let img = r.gpu().scanout(0).unwrap();
    assert_eq!((img.width, img.height, img.source), (64, 48, full));
    assert_eq!(img.format, PixelFormat::B8G8R8X8);
    assert_eq!(img.pixels, image(64, 48, 7).as_slice());
    assert_eq!(img.pixel(5, 9), Some(argb(5, 9, 7)));
    assert_eq!(img.pixel(64, 0), None);
    assert_eq!(img.row(47).map(|r| r.len()), Some(256));
    assert_eq!(img.row(48), None);
    assert!(r.gpu().scanout(1).is_none());
    assert!(r.gpu().scanout(2).is_none());
    assert_eq!(r.t.device_mut().take_damage(0), Some(full));
    assert_eq!(r.t.device_mut().take_damage(0), None, "taken");
    assert_eq!(r.t.device_mut().take_damage(1), None);
    assert_eq!(r.t.device_mut().take_damage(99), None);
    // Presented: the flush completes with its fence, and the queue goes on.
    let fx = r.present();
    assert_eq!(fx.irq, None, "the line is still high");
    assert!(r.calls >= 1);
    assert_eq!(
        r.used(0),
        [
            (u32::from(fl.head), 24),
            (u32::from(after.head), DISPLAY_INFO_BYTES as u32)
        ]
    );
    assert_eq!(r.response(&fl), (resp::OK_NODATA, FLAG_FENCE, 42));
    let st = r.gpu().stats();
    assert_eq!((st.resources, st.flushes, st.commands), (1, 1, 9));
    assert_eq!(st.ok, 9);
    assert_eq!(st.arena_used, 64 * 48 * 4 + 3 * 16);
    // Presented again with nothing held: nothing happens.
    let fx = r.present();
    assert_eq!(fx, Effects::default());
    assert_eq!(r.calls, 0);
}

#[test]
fn partial_updates_copy_only_their_rectangle() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    let sg = r.dumb(1, 64, 48, 4);
    let full = Rect::new(0, 0, 64, 48);
    r.fill(&sg, &image(64, 48, 1));
    assert_eq!(r.cmd(&transfer(1, full, 0)), resp::OK_NODATA);
    assert_eq!(r.cmd(&set_scanout(0, 1, full)), resp::OK_NODATA);
    assert_eq!(r.flush_presented(1, full), resp::OK_NODATA);
    let _ = r.t.device_mut().take_damage(0);
    // The guest redraws everything, but only (10, 5) 20x7 is damaged:
    // Linux sends offset = y * pitch + x * 4.
    r.fill(&sg, &image(64, 48, 2));
    let dirty = Rect::new(10, 5, 20, 7);
    assert_eq!(
        r.cmd(&transfer(1, dirty, 5 * 256 + 10 * 4)),
        resp::OK_NODATA
    );
    assert_eq!(r.flush_presented(1, dirty), resp::OK_NODATA);
    assert_eq!(r.t.device_mut().take_damage(0), Some(dirty));
    let img = r.gpu().scanout(0).unwrap();
    for y in 0..48 {
        for x in 0..64 {
            let inside = (10..30).contains(&x) && (5..12).contains(&y);
            let seed = if inside { 2 } else { 1 };
            assert_eq!(img.pixel(x, y), Some(argb(x, y, seed)), "({x}, {y})");
        }
    }
    // The source rows start at `offset`, one resource stride apart,
    // whatever the rectangle: offset 0 puts the buffer's first rows there.
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(3, 1, 2, 2), 0)),
        resp::OK_NODATA
    );
    let img = r.gpu().scanout(0).unwrap();
    assert_eq!(img.pixel(3, 1), Some(argb(0, 0, 2)));
    assert_eq!(img.pixel(4, 2), Some(argb(1, 1, 2)));
    assert_eq!(img.pixel(5, 2), Some(argb(5, 2, 1)));
}

#[test]
fn transfers_follow_the_backing_stream() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(16, 4)], 16, MIB);
    assert_eq!(r.cmd(&create(1, B8G8R8X8, 16, 4)), resp::OK_NODATA);
    // 256 bytes in odd pieces, empty ones among them, scattered.
    let lens = [0u32, 5, 0, 100, 1, 150, 0];
    let sg: Vec<(u64, u32)> = lens
        .iter()
        .rev()
        .map(|&l| (r.alloc(u64::from(l) + 48), l))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let a = r.cmd_with(&attach(1, sg.len() as u32), &entries(&sg));
    assert_eq!(a, resp::OK_NODATA);
    // A new resource is all zeroes (the arena was not).
    assert_eq!(
        r.cmd(&set_scanout(0, 1, Rect::new(0, 0, 16, 4))),
        resp::OK_NODATA
    );
    assert_eq!(r.gpu().scanout(0).unwrap().pixels, [0; 256]);
    let stream: Vec<u8> = (0..256).map(|i| (i * 3) as u8).collect();
    r.fill(&sg, &stream);
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(0, 0, 16, 4), 0)),
        resp::OK_NODATA
    );
    assert_eq!(
        r.cmd(&set_scanout(0, 1, Rect::new(0, 0, 16, 4))),
        resp::OK_NODATA
    );
    assert_eq!(r.gpu().scanout(0).unwrap().pixels, stream.as_slice());
    // Backwards is fine too (a new transfer starts over).
    r.fill(&sg, &vec![9u8; 256]);
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(15, 3, 1, 1), 252)),
        resp::OK_NODATA
    );
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(0, 0, 1, 1), 0)),
        resp::OK_NODATA
    );
    let px = r.gpu().scanout(0).unwrap().pixels.to_vec();
    assert_eq!(&px[252..], &[9; 4]);
    assert_eq!(&px[..4], &[9; 4]);
    assert_eq!(&px[4..252], &stream[4..252]);
    // Detach, and transfers fail until a new backing is attached.
    assert_eq!(r.cmd(&detach(1)), resp::OK_NODATA);
    assert_eq!(r.gpu().stats().arena_used, 256);
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(0, 0, 16, 4), 0)),
        resp::ERR_UNSPEC
    );
    let a = r.cmd_with(&attach(1, 1), &entries(&[(BUFS, 256)]));
    assert_eq!(a, resp::OK_NODATA);
}

#[test]
fn page_flips_between_two_buffers() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    let full = Rect::new(0, 0, 64, 48);
    let a = r.dumb(1, 64, 48, 2);
    let b = r.dumb(2, 64, 48, 5);
    r.fill(&a, &image(64, 48, 0xa));
    r.fill(&b, &image(64, 48, 0xb));
    for (id, seed) in [(1, 0xa), (2, 0xb), (1, 0xa), (2, 0xb)] {
        assert_eq!(r.cmd(&transfer(id, full, 0)), resp::OK_NODATA);
        assert_eq!(r.cmd(&set_scanout(0, id, full)), resp::OK_NODATA);
        assert_eq!(r.flush_presented(id, full), resp::OK_NODATA);
        assert_eq!(r.t.device_mut().take_damage(0), Some(full));
        assert_eq!(
            r.gpu().scanout(0).unwrap().pixel(1, 2),
            Some(argb(1, 2, seed))
        );
    }
    // A flush of the buffer not shown damages nothing (but is paced).
    assert_eq!(r.flush_presented(1, full), resp::OK_NODATA);
    assert_eq!(r.t.device_mut().take_damage(0), None);
    // Freeing the hidden one changes nothing on screen; freeing the one
    // shown disables the scanout.
    assert_eq!(r.cmd(&unref(1)), resp::OK_NODATA);
    assert!(r.gpu().scanout(0).is_some());
    assert_eq!(r.cmd(&unref(2)), resp::OK_NODATA);
    assert!(r.gpu().scanout(0).is_none());
    assert_eq!(r.t.device_mut().take_damage(0), None);
    let st = r.gpu().stats();
    assert_eq!((st.resources, st.arena_used), (0, 0));
    // Linux disables the plane with resource 0.
    let _ = r.dumb(3, 8, 8, 1);
    assert_eq!(
        r.cmd(&set_scanout(0, 3, Rect::new(0, 0, 8, 8))),
        resp::OK_NODATA
    );
    assert_eq!(r.cmd(&set_scanout(0, 0, Rect::default())), resp::OK_NODATA);
    assert!(r.gpu().scanout(0).is_none());
    assert_eq!(r.t.device_mut().take_damage(0), None);
}

#[test]
fn damage_is_clipped_to_the_source_and_accumulates() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48), (64, 48)], 16, MIB);
    let _ = r.dumb(1, 100, 100, 1);
    let src = Rect::new(20, 10, 64, 48);
    assert_eq!(r.cmd(&set_scanout(0, 1, src)), resp::OK_NODATA);
    assert_eq!(
        r.cmd(&set_scanout(1, 1, Rect::new(0, 0, 100, 100))),
        resp::OK_NODATA
    );
    let d = |r: &mut Rig<'_>, i| r.t.device_mut().take_damage(i);
    assert_eq!(d(&mut r, 0), Some(Rect::new(0, 0, 64, 48)), "set_scanout");
    assert_eq!(d(&mut r, 1), Some(Rect::new(0, 0, 100, 100)));
    let img = r.gpu().scanout(0).unwrap();
    assert_eq!((img.width, img.height, img.source), (100, 100, src));
    assert_eq!(
        r.flush_presented(1, Rect::new(0, 0, 30, 30)),
        resp::OK_NODATA
    );
    assert_eq!(d(&mut r, 0), Some(Rect::new(0, 0, 10, 20)));
    assert_eq!(d(&mut r, 1), Some(Rect::new(0, 0, 30, 30)));
    // Two flushes before the compositor looks: the union.
    assert_eq!(
        r.flush_presented(1, Rect::new(0, 0, 30, 30)),
        resp::OK_NODATA
    );
    assert_eq!(
        r.flush_presented(1, Rect::new(70, 50, 30, 30)),
        resp::OK_NODATA
    );
    assert_eq!(d(&mut r, 0), Some(Rect::new(0, 0, 64, 48)));
    assert_eq!(d(&mut r, 1), Some(Rect::new(0, 0, 100, 80)));
    // Outside the source: nothing for scanout 0.
    assert_eq!(
        r.flush_presented(1, Rect::new(0, 60, 10, 10)),
        resp::OK_NODATA
    );
    assert_eq!(d(&mut r, 0), None);
    assert_eq!(d(&mut r, 1), Some(Rect::new(0, 60, 10, 10)));
    // An empty flush is answered (and paced) but damages nothing.
    assert_eq!(r.flush_presented(1, Rect::new(5, 5, 0, 0)), resp::OK_NODATA);
    assert_eq!((d(&mut r, 0), d(&mut r, 1)), (None, None));
}

#[test]
fn flushes_hold_the_control_queue_but_not_the_cursor_queue() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    let _ = r.dumb(1, 64, 48, 1);
    let full = Rect::new(0, 0, 64, 48);
    let f1 = r.send(0, &fenced(flush(1, full), 1), &[], 24);
    let f2 = r.send(0, &fenced(flush(1, full), 2), &[], 24);
    let f3 = r.send(0, &fenced(hdr(cmd::GET_DISPLAY_INFO), 3), &[], 24);
    let _ = r.kick(0);
    assert_eq!(r.used(0), []);
    // More notifies change nothing while held.
    let _ = r.kick(0);
    assert_eq!(r.used(0), []);
    // The cursor queue goes on.
    let c = r.send(1, &cursor(cmd::MOVE_CURSOR, 0, 0), &[], 24);
    let _ = r.kick(1);
    assert_eq!(r.used(1), [(u32::from(c.head), 24)]);
    let _ = r.present();
    assert_eq!(r.used(0), [(u32::from(f1.head), 24)], "the next is held");
    assert!(r.gpu().flush_waiting());
    let _ = r.present();
    // The display info does not fit its 24 bytes: an error, in order.
    assert_eq!(
        r.used(0),
        [(u32::from(f2.head), 24), (u32::from(f3.head), 24)]
    );
    assert_eq!(r.response(&f2), (resp::OK_NODATA, FLAG_FENCE, 2));
    assert_eq!(r.response(&f3), (resp::ERR_UNSPEC, FLAG_FENCE, 3));
}

#[test]
fn every_bad_request_gets_its_error_and_changes_nothing() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48), (32, 32)], 16, MIB);
    let _ = r.dumb(1, 64, 48, 2);
    assert_eq!(r.cmd(&create(2, B8G8R8X8, 16, 16)), resp::OK_NODATA);
    assert_eq!(
        r.cmd(&set_scanout(0, 1, Rect::new(0, 0, 64, 48))),
        resp::OK_NODATA
    );
    let _ = r.t.device_mut().take_damage(0);
    let before = r.gpu().stats();
    let ram_end = BASE + MIB as u64;
    let full = Rect::new(0, 0, 64, 48);
    let short = |mut v: Vec<u8>, n: usize| {
        v.truncate(n);
        v
    };
    let mut pad = hdr(cmd::CTX_CREATE);
    pad.resize(96, 0);
    let mut blob = hdr(cmd::RESOURCE_CREATE_BLOB);
    blob.resize(HDR_BYTES + 32, 0);
    let cases: Vec<(&str, Vec<u8>, Vec<u8>, u32)> = vec![
        ("unknown", hdr(0x0999), vec![], resp::ERR_UNSPEC),
        ("3D", pad, vec![], resp::ERR_UNSPEC),
        (
            "capset",
            with_id(cmd::GET_CAPSET_INFO, 0),
            vec![],
            resp::ERR_UNSPEC,
        ),
        ("blob", blob, vec![], resp::ERR_UNSPEC),
        (
            "uuid",
            with_id(cmd::RESOURCE_ASSIGN_UUID, 1),
            vec![],
            resp::ERR_UNSPEC,
        ),
        (
            "cursor",
            cursor(cmd::UPDATE_CURSOR, 0, 1),
            vec![],
            resp::ERR_UNSPEC,
        ),
        (
            "short create",
            short(create(3, 2, 4, 4), 39),
            vec![],
            resp::ERR_UNSPEC,
        ),
        (
            "short flush",
            short(flush(1, full), 47),
            vec![],
            resp::ERR_UNSPEC,
        ),
        (
            "create 0",
            create(0, 2, 4, 4),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "create again",
            create(1, 2, 4, 4),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "format",
            create(3, 5, 4, 4),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "width 0",
            create(3, 2, 0, 4),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "height 0",
            create(3, 2, 4, 0),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "width",
            create(3, 2, 16385, 1),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "height",
            create(3, 2, 1, u32::MAX),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        ("unref", unref(3), vec![], resp::ERR_INVALID_RESOURCE_ID),
        ("unref 0", unref(0), vec![], resp::ERR_INVALID_RESOURCE_ID),
        (
            "attach unknown",
            attach(3, 1),
            entries(&[(BUFS, 16)]),
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "attach twice",
            attach(1, 1),
            entries(&[(BUFS, 16)]),
            resp::ERR_UNSPEC,
        ),
        (
            "attach none",
            attach(2, 0),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "attach missing entries",
            attach(2, 3),
            entries(&[(BUFS, 16), (BUFS, 16)]),
            resp::ERR_UNSPEC,
        ),
        (
            "attach past RAM",
            attach(2, 2),
            entries(&[(BUFS, 16), (ram_end - 8, 16)]),
            resp::ERR_UNSPEC,
        ),
        (
            "attach below RAM",
            attach(2, 1),
            entries(&[(0x1000, 1024)]),
            resp::ERR_UNSPEC,
        ),
        (
            "attach wrapping",
            attach(2, 1),
            entries(&[(u64::MAX - 4, 16)]),
            resp::ERR_UNSPEC,
        ),
        (
            "attach too many",
            attach(2, MAX_BACKING_ENTRIES + 1),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "detach unknown",
            detach(3),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        ("detach none", detach(2), vec![], resp::ERR_UNSPEC),
        (
            "scanout id",
            set_scanout(2, 1, full),
            vec![],
            resp::ERR_INVALID_SCANOUT_ID,
        ),
        (
            "scanout id max",
            set_scanout(u32::MAX, 0, full),
            vec![],
            resp::ERR_INVALID_SCANOUT_ID,
        ),
        (
            "scanout resource",
            set_scanout(1, 3, full),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "scanout outside",
            set_scanout(1, 1, Rect::new(1, 0, 64, 48)),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "scanout overflow",
            set_scanout(1, 1, Rect::new(u32::MAX, 0, 2, 1)),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "scanout empty",
            set_scanout(1, 1, Rect::new(0, 0, 0, 48)),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "flush unknown",
            flush(3, full),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "flush outside",
            flush(1, Rect::new(0, 0, 65, 1)),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "flush overflow",
            flush(1, Rect::new(1, u32::MAX, 1, u32::MAX)),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "transfer unknown",
            transfer(3, full, 0),
            vec![],
            resp::ERR_INVALID_RESOURCE_ID,
        ),
        (
            "transfer outside",
            transfer(1, Rect::new(0, 1, 64, 48), 0),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "transfer no backing",
            transfer(2, Rect::new(0, 0, 16, 16), 0),
            vec![],
            resp::ERR_UNSPEC,
        ),
        (
            "transfer past the backing",
            transfer(1, full, 4),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        (
            "transfer offset overflow",
            transfer(1, Rect::new(0, 0, 1, 2), u64::MAX - 8),
            vec![],
            resp::ERR_INVALID_PARAMETER,
        ),
        ("edid", get_edid(2), vec![], resp::ERR_INVALID_SCANOUT_ID),
        (
            "edid max",
            get_edid(u32::MAX),
            vec![],
            resp::ERR_INVALID_SCANOUT_ID,
        ),
    ];
    for (i, (name, req, data, want)) in cases.iter().enumerate() {
        let fence = 1000 + i as u64;
        let mut req = req.clone();
        if req.len() >= HDR_BYTES {
            req = fenced(req, fence);
        }
        let s = r.send(0, &req, data, 24);
        let _ = r.kick(0);
        assert_eq!(r.used(0), [(u32::from(s.head), 24)], "{name}: answered");
        assert_eq!(
            r.response(&s),
            (*want, FLAG_FENCE, fence),
            "{name}: response, fence echoed"
        );
        assert!(!r.gpu().flush_waiting(), "{name}");
        let st = r.gpu().stats();
        assert_eq!(
            (st.resources, st.arena_used),
            (before.resources, before.arena_used),
            "{name}: nothing allocated"
        );
        let img = r.gpu().scanout(0).unwrap();
        assert_eq!(img.source, full, "{name}");
        assert!(r.gpu().scanout(1).is_none(), "{name}");
        assert_eq!(r.t.device_mut().take_damage(0), None, "{name}");
    }
    let st = r.gpu().stats();
    let count = |want: u32| cases.iter().filter(|c| c.3 == want).count() as u64;
    assert_eq!(st.err_unspec - before.err_unspec, count(resp::ERR_UNSPEC));
    assert_eq!(st.err_invalid_parameter, count(resp::ERR_INVALID_PARAMETER));
    assert_eq!(
        st.err_invalid_resource_id,
        count(resp::ERR_INVALID_RESOURCE_ID)
    );
    assert_eq!(
        st.err_invalid_scanout_id,
        count(resp::ERR_INVALID_SCANOUT_ID)
    );
    assert_eq!(st.ok, before.ok);
    // Backing refused above was not attached.
    assert_eq!(
        r.cmd(&transfer(2, Rect::new(0, 0, 16, 16), 0)),
        resp::ERR_UNSPEC
    );
}

#[test]
fn malformed_chains_and_responses_without_room() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    // Shorter than a header: ERR_UNSPEC, nothing echoed.
    let s = r.send(0, &fenced(hdr(cmd::GET_DISPLAY_INFO), 5)[..20], &[], 24);
    let _ = r.kick(0);
    assert_eq!(r.used(0), [(u32::from(s.head), 24)]);
    assert_eq!(r.response(&s), (resp::ERR_UNSPEC, 0, 0));
    // No room for a header: returned with nothing written.
    for room in [0, 1, 23] {
        let s = r.send(0, &create(1, B8G8R8X8, 4, 4), &[], room);
        let _ = r.kick(0);
        assert_eq!(r.used(0), [(u32::from(s.head), 0)]);
        assert_eq!(r.read(s.resp, room as usize), vec![UNSET; room as usize]);
    }
    // ... but carried out all the same (the first one did it).
    assert_eq!(r.gpu().stats().resources, 1);
    assert_eq!(r.gpu().stats().no_response, 3);
    // Display info and EDID need their whole response: ERR_UNSPEC else.
    for (req, room) in [
        (hdr(cmd::GET_DISPLAY_INFO), DISPLAY_INFO_BYTES - 1),
        (get_edid(0), EDID_RESP_BYTES - 1),
        (get_edid(0), HDR_BYTES),
    ] {
        let s = r.send(0, &req, &[], room as u32);
        let _ = r.kick(0);
        assert_eq!(r.used(0), [(u32::from(s.head), 24)]);
        assert_eq!(r.response(&s).0, resp::ERR_UNSPEC);
    }
    // A response buffer outside RAM (the ring allows it): nothing written.
    r.ctrl.add(
        &r.mem,
        &[(BUFS, 24, false), (BASE + MIB as u64 - 8, 24, true)],
    );
    let _ = r.kick(0);
    assert_eq!(r.used(0).last().map(|u| u.1), Some(0));

    // Requests and responses split anywhere, through an indirect table.
    let req = fenced(create(2, B8G8R8X8, 4, 4), 77);
    let (a, b, c) = (r.alloc(64), r.alloc(64), r.alloc(64));
    r.mem.write(a, &req[..3]).unwrap();
    r.mem.write(b, &req[3..30]).unwrap();
    r.mem.write(c, &req[30..]).unwrap();
    let (o1, o2) = (r.alloc(64), r.alloc(64));
    let table = r.alloc(16 * 5);
    let desc = |gpa: u64, len: u32, flags: u16, next: u16| {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&gpa.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        d
    };
    let rows = [
        desc(a, 3, DESC_F_NEXT, 1),
        desc(b, 27, DESC_F_NEXT, 2),
        desc(c, 10, DESC_F_NEXT, 3),
        desc(o1, 5, DESC_F_NEXT | DESC_F_WRITE, 4),
        desc(o2, 19, DESC_F_WRITE, 0),
    ];
    for (i, d) in rows.iter().enumerate() {
        r.mem.write(table + 16 * i as u64, d).unwrap();
    }
    r.ctrl.desc(&r.mem, 63, table, 16 * 5, DESC_F_INDIRECT, 0);
    r.ctrl.push_head(&r.mem, 63);
    let _ = r.kick(0);
    assert_eq!(r.used(0), [(63, 24)]);
    let mut out = r.read(o1, 5);
    out.extend(r.read(o2, 19));
    assert_eq!(le32(&out, 0), resp::OK_NODATA);
    assert_eq!(le32(&out, 4), FLAG_FENCE);
    assert_eq!(le64(&out, 8), 77);
    assert_eq!(r.gpu().stats().resources, 2);

    // A broken ring: DEVICE_NEEDS_RESET, nothing more processed.
    r.ctrl.desc(&r.mem, 0, BUFS, 24, DESC_F_NEXT, 200);
    r.ctrl.push_head(&r.mem, 0);
    let fx = r.kick(0);
    assert_eq!(fx.irq, None, "already high");
    assert_ne!(
        read32(&mut r.t, reg::STATUS) & u64::from(status::DEVICE_NEEDS_RESET),
        0
    );
    assert_eq!(r.gpu().stats().broken_rings, 1);
    let _ = r.send(0, &create(3, B8G8R8X8, 4, 4), &[], 24);
    let _ = r.kick(0);
    assert_eq!(r.gpu().stats().resources, 2);
}

#[test]
fn the_cursor_queue_answers_and_ignores() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    // Linux sends cursor requests without a response buffer.
    let a = r.send(1, &cursor(cmd::UPDATE_CURSOR, 0, 5), &[], 0);
    let b = r.send(1, &fenced(cursor(cmd::MOVE_CURSOR, 0, 5), 9), &[], 24);
    let c = r.send(1, &hdr(cmd::GET_DISPLAY_INFO), &[], 24);
    let d = r.send(1, &cursor(cmd::MOVE_CURSOR, 0, 5)[..40], &[], 24);
    let _ = r.kick(1);
    assert_eq!(
        r.used(1),
        [
            (u32::from(a.head), 0),
            (u32::from(b.head), 24),
            (u32::from(c.head), 24),
            (u32::from(d.head), 24)
        ]
    );
    assert_eq!(r.response(&b), (resp::OK_NODATA, FLAG_FENCE, 9));
    assert_eq!(r.response(&c).0, resp::ERR_UNSPEC);
    assert_eq!(r.response(&d).0, resp::ERR_UNSPEC, "too short");
    assert_eq!(r.used(0), []);
    assert_eq!(r.gpu().stats().resources, 0);
}

#[test]
fn fences_echo_the_ring_index() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    let mut req = fenced(hdr(cmd::GET_DISPLAY_INFO), u64::MAX);
    req[4] |= FLAG_INFO_RING_IDX as u8;
    req[16..20].copy_from_slice(&3u32.to_le_bytes());
    req[20] = 2;
    let s = r.send(0, &req, &[], DISPLAY_INFO_BYTES as u32);
    let _ = r.kick(0);
    let h = r.read(s.resp, HDR_BYTES);
    assert_eq!(le32(&h, 0), resp::OK_DISPLAY_INFO);
    assert_eq!(le32(&h, 4), FLAG_FENCE | FLAG_INFO_RING_IDX);
    assert_eq!(le64(&h, 8), u64::MAX);
    assert_eq!((le32(&h, 16), h[20]), (3, 2));
}

#[test]
fn limits_resource_count_and_arena() {
    let mut ram = vec![0u8; MIB];
    // Three resources at most, 64 KiB of arena.
    let mut r = Rig::new(&mut ram, &[(64, 48)], 3, 64 << 10);
    for id in 1..=3 {
        assert_eq!(r.cmd(&create(id, B8G8R8X8, 4, 4)), resp::OK_NODATA);
    }
    assert_eq!(r.cmd(&create(4, B8G8R8X8, 4, 4)), resp::ERR_OUT_OF_MEMORY);
    assert_eq!(r.cmd(&unref(2)), resp::OK_NODATA);
    assert_eq!(r.cmd(&create(4, B8G8R8X8, 4, 4)), resp::OK_NODATA);
    for id in [1, 3, 4] {
        assert_eq!(r.cmd(&unref(id)), resp::OK_NODATA);
    }
    assert_eq!(r.gpu().stats().arena_used, 0);
    // The arena: 40 000 bytes fit once.
    assert_eq!(r.cmd(&create(1, B8G8R8X8, 100, 100)), resp::OK_NODATA);
    assert_eq!(
        r.cmd(&create(2, B8G8R8X8, 100, 100)),
        resp::ERR_OUT_OF_MEMORY
    );
    assert_eq!(
        r.cmd(&create(2, B8G8R8X8, MAX_DIMENSION, MAX_DIMENSION)),
        resp::ERR_OUT_OF_MEMORY,
        "valid, but 1 GiB"
    );
    assert_eq!(r.cmd(&create(2, B8G8R8X8, 10, 10)), resp::OK_NODATA);
    // Backing entries live in the arena too: 25 088 bytes are left.
    let page = (BUFS, 40);
    let big = vec![page; 1600];
    let a = r.cmd_with(&attach(1, 1600), &entries(&big));
    assert_eq!(a, resp::ERR_OUT_OF_MEMORY);
    let a = r.cmd_with(&attach(1, 1000), &entries(&big[..1000]));
    assert_eq!(a, resp::OK_NODATA);
    let st = r.gpu().stats();
    assert_eq!(st.arena_used, 40_000 + 400 + 16_000);
    assert!(st.arena_used <= st.arena_size);
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(0, 0, 100, 100), 0)),
        resp::OK_NODATA,
        "1000 entries of 40 bytes: the whole resource"
    );
    assert_eq!(st.err_out_of_memory, 4);
}

#[test]
fn backing_entry_lists_are_bounded() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    assert_eq!(r.cmd(&create(1, B8G8R8X8, 64, 64)), resp::OK_NODATA);
    // 100 000 entries announced, and a buffer that long (of garbage):
    // refused without reading them.
    let (q, resp_at) = (r.alloc(32), r.alloc(24));
    r.mem.write(q, &attach(1, 100_000)).unwrap();
    let head = r.ctrl.add(
        &r.mem,
        &[
            (q, 32, false),
            (BASE, 1_600_000, false),
            (resp_at, 24, true),
        ],
    );
    let s = Sent {
        head,
        resp: resp_at,
    };
    r.ctrl.publish(&r.mem);
    let _ = write32(&mut r.t, reg::QUEUE_NOTIFY, 0);
    let counting = Counting {
        mem: &r.mem,
        read: Cell::new(0),
    };
    let fx = r.t.notify_queue(0, &counting);
    assert_eq!(fx.notify, None);
    assert!(counting.read.get() < 256, "read {}", counting.read.get());
    assert_eq!(r.ctrl.used(&r.mem), [(u32::from(head), 24)]);
    assert_eq!(r.response(&s).0, resp::ERR_INVALID_PARAMETER);
    // The most there may be: 16384 entries (256 KiB) are taken.
    let sg = vec![(BUFS, 1); MAX_BACKING_ENTRIES as usize];
    let a = r.cmd_with(&attach(1, MAX_BACKING_ENTRIES), &entries(&sg));
    assert_eq!(a, resp::OK_NODATA);
    assert_eq!(
        r.gpu().stats().arena_used,
        64 * 64 * 4 + 16 * u64::from(MAX_BACKING_ENTRIES)
    );
    // 16384 one-byte entries: the whole resource, one byte at a time.
    assert_eq!(
        r.cmd(&transfer(1, Rect::new(0, 0, 64, 64), 0)),
        resp::OK_NODATA
    );
}

#[test]
fn big_work_is_spread_over_calls() {
    let mut ram = vec![0u8; 8 * MIB];
    let mut r = Rig::new(&mut ram, &[(1024, 1024)], 16, 8 * MIB);
    // 4 MiB to zero: more than one call's worth.
    let c = r.send(0, &create(1, B8G8R8X8, 1024, 1024), &[], 24);
    let fx = r.kick(0);
    assert!(r.calls >= 2, "{} calls", r.calls);
    assert_eq!(fx.notify, None);
    assert_eq!(r.used(0), [(u32::from(c.head), 24)]);
    let st = r.gpu().stats();
    assert_eq!(st.arena_used, 4 * MIB as u64);
    // Attach 1024 pages, shuffled, of a 4 MiB buffer.
    let fb = BASE + 2 * MIB as u64;
    let sg: Vec<(u64, u32)> = (0..1024u64)
        .map(|i| (fb + (i * 7 % 1024) * 4096, 4096))
        .collect();
    assert_eq!(r.cmd_with(&attach(1, 1024), &entries(&sg)), resp::OK_NODATA);
    let stream: Vec<u8> = (0..4 * MIB).map(|i| (i / 4096 + i) as u8).collect();
    r.fill(&sg, &stream);
    let full = Rect::new(0, 0, 1024, 1024);
    // Each call reads about BYTES_PER_CALL at most.
    let t = r.send(0, &transfer(1, full, 0), &[], 24);
    r.ctrl.publish(&r.mem);
    let mut fx = write32(&mut r.t, reg::QUEUE_NOTIFY, 0);
    let mut calls = 0;
    while let Some(q) = fx.notify {
        let counting = Counting {
            mem: &r.mem,
            read: Cell::new(0),
        };
        fx = r.t.notify_queue(q, &counting);
        calls += 1;
        assert!(
            counting.read.get() <= BYTES_PER_CALL + 4096 + 1024,
            "call {calls} read {}",
            counting.read.get()
        );
        r.gpu().check_invariants().unwrap();
    }
    assert!(calls >= 2, "{calls} calls");
    assert_eq!(r.used(0), [(u32::from(t.head), 24)]);
    assert_eq!(r.response(&t).0, resp::OK_NODATA);
    assert_eq!(r.cmd(&set_scanout(0, 1, full)), resp::OK_NODATA);
    assert!(r.gpu().scanout(0).unwrap().pixels == stream.as_slice());
    // The request budget: 40 requests at once take two calls.
    for _ in 0..40 {
        r.ctrl.add(&r.mem, &[(BUFS, 24, false)]);
    }
    r.ctrl.publish(&r.mem);
    let fx = write32(&mut r.t, reg::QUEUE_NOTIFY, 0);
    let fx = r.t.notify_queue(fx.notify.unwrap(), &r.mem);
    assert_eq!(fx.notify, Some(0));
    assert_eq!(r.used(0).len(), COMMANDS_PER_CALL as usize);
    let fx = r.t.notify_queue(0, &r.mem);
    assert_eq!(fx.notify, None);
    assert_eq!(r.used(0).len(), 40 - COMMANDS_PER_CALL as usize);
}

#[test]
fn reset_frees_everything() {
    let mut ram = vec![0u8; MIB];
    // Room for exactly two 64x48 resources with their backing.
    let arena = 2 * (64 * 48 * 4 + 64);
    let mut r = Rig::new(&mut ram, &[(64, 48), (64, 48)], 2, arena);
    let full = Rect::new(0, 0, 64, 48);
    let _ = r.dumb(1, 64, 48, 1);
    let _ = r.dumb(2, 64, 48, 1);
    assert_eq!(r.cmd(&create(3, B8G8R8X8, 1, 1)), resp::ERR_OUT_OF_MEMORY);
    assert_eq!(r.cmd(&set_scanout(0, 1, full)), resp::OK_NODATA);
    assert_eq!(r.cmd(&set_scanout(1, 2, full)), resp::OK_NODATA);
    let s = r.send(0, &fenced(flush(1, full), 1), &[], 24);
    let _ = r.kick(0);
    assert!(r.gpu().flush_waiting());
    for reset_by_driver in [false, true] {
        let fx = if reset_by_driver {
            write32(&mut r.t, reg::STATUS, 0)
        } else {
            r.t.reset()
        };
        assert!(fx.reset);
        let st = r.gpu().stats();
        assert_eq!((st.resources, st.arena_used), (0, 0));
        assert!(!r.gpu().flush_waiting());
        for i in 0..2 {
            assert!(r.gpu().scanout(i).is_none());
            assert_eq!(r.t.device_mut().take_damage(i), None);
        }
        r.gpu().check_invariants().unwrap();
        // Presented after the reset: the stale flush is not returned.
        let _ = r.present();
        // The driver starts over; the same ids and all the room are back.
        r.ctrl = Driver::new(QUEUE_SIZE);
        r.cursor = Driver::at(16, BASE + 0x5000, BASE + 0x6000, BASE + 0x7000);
        r.mem.write(BASE + 0x1000, &[0; 0x7000]).unwrap();
        let _ = r.bring_up(LINUX);
        let _ = r.dumb(1, 64, 48, 1);
        let _ = r.dumb(2, 64, 48, 1);
        assert_eq!(r.cmd(&set_scanout(0, 1, full)), resp::OK_NODATA);
        assert_eq!(r.flush_presented(1, full), resp::OK_NODATA);
    }
    let _ = s;
}

#[test]
fn edid_without_the_feature_and_big_views() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::with_features(
        &mut ram,
        &[(8192, 8192), (1, 1)],
        16,
        MIB,
        feature::VERSION_1,
    );
    for (i, preferred) in [(0u32, false), (1, true)] {
        let s = r.send(0, &get_edid(i), &[], EDID_RESP_BYTES as u32);
        let _ = r.kick(0);
        let b = r.read(s.resp, EDID_RESP_BYTES);
        assert_eq!(le32(&b, 0), resp::OK_EDID);
        let e = &b[32..32 + 128];
        assert_eq!(e.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        assert_eq!(e[24] & 2 != 0, preferred, "scanout {i}");
    }
    let s = r.send(
        0,
        &hdr(cmd::GET_DISPLAY_INFO),
        &[],
        DISPLAY_INFO_BYTES as u32,
    );
    let _ = r.kick(0);
    let b = r.read(s.resp, DISPLAY_INFO_BYTES);
    assert_eq!((le32(&b, 32), le32(&b, 36)), (8192, 8192));
    assert_eq!(r.used(0).len(), 3);
}

/// Two transfers far apart and one flush of their union damage two small
/// rectangles, not the union; a transfer the flush does not cover makes
/// the flush's rectangle the damage (what was transferred outside it is
/// not to be shown yet).
#[test]
fn a_flush_damages_what_was_transferred() {
    let mut ram = vec![0u8; MIB];
    let mut r = Rig::new(&mut ram, &[(64, 48)], 16, MIB);
    let sg = r.dumb(1, 64, 48, 4);
    let full = Rect::new(0, 0, 64, 48);
    r.fill(&sg, &image(64, 48, 1));
    assert_eq!(r.cmd(&transfer(1, full, 0)), resp::OK_NODATA);
    assert_eq!(r.cmd(&set_scanout(0, 1, full)), resp::OK_NODATA);
    assert_eq!(r.flush_presented(1, full), resp::OK_NODATA);
    let _ = r.t.device_mut().take_damage(0);
    let counter = Rect::new(0, 0, 16, 1);
    let needle = Rect::new(50, 40, 8, 8);
    assert_eq!(r.cmd(&transfer(1, counter, 0)), resp::OK_NODATA);
    assert_eq!(
        r.cmd(&transfer(1, needle, 40 * 256 + 50 * 4)),
        resp::OK_NODATA
    );
    assert_eq!(r.flush_presented(1, full), resp::OK_NODATA);
    let rects = r.t.device_mut().take_damage_rects(0);
    assert_eq!(rects.as_slice(), [counter, needle]);
    assert!(r.t.device_mut().take_damage_rects(0).is_empty(), "taken");
    // A transfer outside the flush: the flush's rectangle.
    let small = Rect::new(0, 0, 8, 8);
    assert_eq!(
        r.cmd(&transfer(1, needle, 40 * 256 + 50 * 4)),
        resp::OK_NODATA
    );
    assert_eq!(r.flush_presented(1, small), resp::OK_NODATA);
    assert_eq!(r.t.device_mut().take_damage_rects(0).as_slice(), [small]);
    // A flush without transfers: its rectangle.
    assert_eq!(r.flush_presented(1, needle), resp::OK_NODATA);
    assert_eq!(r.t.device_mut().take_damage(0), Some(needle));
}
