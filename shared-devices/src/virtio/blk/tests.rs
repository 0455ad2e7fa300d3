//! virtio-blk end to end: a test driver on one side, the scheduler and an
//! in-memory disk on the other, wired the way the hypervisor wires them.

use super::*;
use crate::virtio::memory::SliceMemory;
use crate::virtio::mmio::{Effects, MmioTransport, reg, status as dev_status};
use crate::virtio::queue::{DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};
use crate::virtio::sched::{Limits, Scheduler};
use crate::virtio::test_driver::{BASE, Driver, RAM, bring_up, read32, write32};

const DISK_SECTORS: u64 = 256;
const QSIZE: u16 = 64;
/// What Linux virtio_blk negotiates.
const LINUX: u64 = feature::VERSION_1
    | feature::INDIRECT_DESC
    | feature::EVENT_IDX
    | features::SIZE_MAX
    | features::SEG_MAX
    | features::BLK_SIZE
    | features::FLUSH;
/// Buffers are allocated from here up.
const BUFS: u64 = BASE + 0x8000;
/// Fill of status bytes before the device writes them.
const UNSET: u8 = 0xee;

type Sched = Scheduler<BlkToken, 4, SLOTS, 8>;

/// One partition: its RAM, its virtual disk and its driver.
struct Part<'m> {
    mem: SliceMemory<'m>,
    t: MmioTransport<VirtioBlk>,
    d: Driver,
    next: u64,
}

/// Where a request's buffers are.
#[derive(Clone, Copy, Debug)]
struct Req {
    head: u16,
    data: u64,
    status: u64,
}

struct System<'m, 'd> {
    parts: Vec<Part<'m>>,
    sched: Sched,
    disk: MemDisk<'d, 8>,
}

impl<'m, 'd> System<'m, 'd> {
    fn new(
        rams: &'m mut [Vec<u8>],
        disks: &[DiskConfig],
        features: u64,
        disk: &'d mut [u8],
        limits: Limits,
    ) -> Self {
        Self::with_queue(rams, disks, features, disk, limits, QSIZE)
    }

    fn with_queue(
        rams: &'m mut [Vec<u8>],
        disks: &[DiskConfig],
        features: u64,
        disk: &'d mut [u8],
        limits: Limits,
        qsize: u16,
    ) -> Self {
        let prios: Vec<u8> = (0..disks.len()).map(|i| 200 - i as u8 * 50).collect();
        let parts = rams
            .iter_mut()
            .zip(disks)
            .map(|(ram, cfg)| {
                let blk = VirtioBlk::new(*cfg, DISK_SECTORS).unwrap();
                let mut t = MmioTransport::new(blk);
                let d = Driver::new(qsize);
                let fx = bring_up(&mut t, &d, features);
                assert!(fx.driver_ok);
                Part {
                    mem: SliceMemory::new(BASE, ram),
                    t,
                    d,
                    next: BUFS,
                }
            })
            .collect();
        Self {
            parts,
            sched: Sched::new(&prios, limits).unwrap(),
            disk: MemDisk::new(disk),
        }
    }

    fn alloc(&mut self, p: usize, len: u64) -> u64 {
        let part = &mut self.parts[p];
        if part.next + len > BASE + RAM as u64 {
            part.next = BUFS;
        }
        let at = part.next;
        part.next = (at + len + 15) & !15;
        at
    }

    /// A request laid out the usual Linux way: header, data, status in
    /// buffers of their own. `out` is device-readable data, `in_len`
    /// device-writable data.
    fn submit(&mut self, p: usize, kind: u32, sector: u64, out: &[u8], in_len: u32) -> Req {
        let hdr = self.alloc(p, 16);
        let data = self.alloc(p, (out.len() as u64).max(u64::from(in_len)));
        let status = self.alloc(p, 1);
        let part = &mut self.parts[p];
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&kind.to_le_bytes());
        h[8..].copy_from_slice(&sector.to_le_bytes());
        part.mem.write(hdr, &h).unwrap();
        part.mem.write(data, out).unwrap();
        part.mem.write(status, &[UNSET]).unwrap();
        let mut bufs = vec![(hdr, 16, false)];
        if !out.is_empty() {
            bufs.push((data, out.len() as u32, false));
        }
        if in_len > 0 {
            bufs.push((data, in_len, true));
        }
        bufs.push((status, 1, true));
        let head = part.d.add(&part.mem, &bufs);
        let _ = self.kick(p);
        Req { head, data, status }
    }

    /// Publishes and notifies, as the driver does.
    fn kick(&mut self, p: usize) -> Effects {
        let part = &mut self.parts[p];
        part.d.publish(&part.mem);
        let fx = write32(&mut part.t, reg::QUEUE_NOTIFY, 0);
        let fx = match fx.notify {
            Some(q) => fx.and(part.t.notify_queue(q, &part.mem)),
            None => fx,
        };
        self.pump();
        fx
    }

    /// Parsed requests to the scheduler, dispatches to the disk.
    fn pump(&mut self) {
        for (p, part) in self.parts.iter_mut().enumerate() {
            while let Some(tok) = part.t.device_mut().take_pending() {
                let bytes = part.t.device().physical_request(tok).unwrap().bytes();
                self.sched.enqueue(p, tok, bytes).unwrap();
            }
        }
        while let Some(d) = self.sched.dispatch() {
            let blk = self.parts[d.partition].t.device();
            match blk.physical_request(d.item) {
                Some(req) => self.disk.submit(d.id, &req).unwrap(),
                // Orphaned by a reset: complete at once.
                None => {
                    let _ = self.finish(d.id, BackendStatus::IoError);
                }
            }
        }
    }

    /// The scheduler's and the device's half of a completion; if the
    /// device has more of the ring to take, the partition's side processes
    /// its queue again (as the hypervisor does on the partition's core).
    fn finish(&mut self, id: RequestId, st: BackendStatus) -> Effects {
        let (p, tok) = self.sched.complete(id).unwrap();
        let part = &mut self.parts[p];
        let fx = part
            .t
            .with_device(&part.mem, |blk, ctx| blk.complete(tok, st, ctx))
            .1;
        match fx.notify {
            Some(q) => fx.and(part.t.notify_queue(q, &part.mem)),
            None => fx,
        }
    }

    /// The disk completes request `id`.
    fn complete(&mut self, id: RequestId) -> Effects {
        let (p, _) = self.sched.lookup(id).unwrap();
        let st = self.disk.complete(id, &self.parts[p].mem).unwrap();
        let fx = self.finish(id, st);
        self.pump();
        fx
    }

    /// Completes everything, oldest first, until idle.
    fn first(&self) -> Option<RequestId> {
        self.disk.ids().next()
    }

    fn run(&mut self) {
        while let Some(id) = self.first() {
            let _ = self.complete(id);
        }
    }

    fn status(&self, p: usize, r: Req) -> u8 {
        let mut b = [0];
        self.parts[p].mem.read(r.status, &mut b).unwrap();
        b[0]
    }

    fn read(&self, p: usize, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.parts[p].mem.read(gpa, &mut v).unwrap();
        v
    }

    fn used(&mut self, p: usize) -> Vec<(u32, u32)> {
        let part = &mut self.parts[p];
        part.d.used(&part.mem)
    }
}

fn new_rams(n: usize) -> Vec<Vec<u8>> {
    vec![vec![0u8; RAM]; n]
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(7)))
        .collect()
}

#[test]
fn config_space_and_features() {
    let mut cfg = DiskConfig::new(16, 64);
    cfg.blk_size = 4096;
    let blk = VirtioBlk::new(cfg, DISK_SECTORS).unwrap();
    let mut t = MmioTransport::new(blk);
    assert_eq!(read32(&mut t, reg::DEVICE_ID), 2);
    assert_eq!(read32(&mut t, reg::QUEUE_NUM_MAX), u64::from(QUEUE_SIZE));
    assert_eq!(read32(&mut t, reg::CONFIG), 64, "capacity, low half");
    assert_eq!(read32(&mut t, reg::CONFIG + 4), 0, "capacity, high half");
    assert_eq!(read32(&mut t, reg::CONFIG + 8), u64::from(SIZE_MAX));
    assert_eq!(read32(&mut t, reg::CONFIG + 12), SEG_MAX as u64);
    assert_eq!(read32(&mut t, reg::CONFIG + 20), 4096);
    assert_eq!(read32(&mut t, reg::CONFIG + 36), 0, "no discard limits");
    let f = t.device().device_features();
    assert_eq!(f, LINUX);

    let mut cfg = DiskConfig::new(0, 64);
    cfg.read_only = true;
    cfg.discard = true;
    cfg.write_zeroes = true;
    cfg.max_discard_sectors = 32;
    cfg.max_write_zeroes_sectors = 16;
    let mut t = MmioTransport::new(VirtioBlk::new(cfg, DISK_SECTORS).unwrap());
    let f = t.device().device_features();
    assert_eq!(
        f & (features::RO | features::DISCARD | features::WRITE_ZEROES),
        features::RO | features::DISCARD | features::WRITE_ZEROES
    );
    let mut c = |o| read32(&mut t, reg::CONFIG + o);
    assert_eq!((c(36), c(40), c(44)), (32, 1, 1), "discard");
    assert_eq!((c(48), c(52), c(56)), (16, 1, 0), "write zeroes");
    assert_eq!(c(60), 0, "past the end");
}

#[test]
fn refuses_bad_windows() {
    let new = |cfg| VirtioBlk::new(cfg, DISK_SECTORS).err();
    assert_eq!(
        new(DiskConfig::new(200, 57)),
        Some(DiskConfigError::OutsideDisk)
    );
    assert_eq!(
        new(DiskConfig::new(u64::MAX, 2)),
        Some(DiskConfigError::OutsideDisk)
    );
    assert_eq!(new(DiskConfig::new(200, 56)), None);
    let mut c = DiskConfig::new(4, 64);
    c.blk_size = 4096;
    assert_eq!(new(c), Some(DiskConfigError::BlockSize), "misaligned");
    c.blk_size = 1000;
    assert_eq!(new(c), Some(DiskConfigError::BlockSize));
    let mut c = DiskConfig::new(0, 8);
    c.discard = true;
    c.max_discard_sectors = 0;
    assert_eq!(new(c), Some(DiskConfigError::Limits));
}

#[test]
fn write_then_read_back_through_the_window() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let cfg = DiskConfig::new(16, 64);
    let mut s = System::new(&mut rams, &[cfg], LINUX, &mut disk, Limits::default());
    let data = pattern(3, 1024);
    let w = s.submit(0, req::OUT, 3, &data, 0);
    assert_eq!(s.disk.in_flight(), 1);
    let id = s.first().unwrap();
    let fx = s.complete(id);
    assert_eq!(fx.irq, Some(true));
    assert_eq!(s.status(0, w), status::OK);
    assert_eq!(s.used(0), [(u32::from(w.head), 1)]);
    assert_eq!(s.disk.durable_writes, 0, "FLUSH negotiated: write-back");
    let r = s.submit(0, req::IN, 3, &[], 1024);
    s.run();
    assert_eq!(s.status(0, r), status::OK);
    assert_eq!(s.read(0, r.data, 1024), data);
    assert_eq!(s.used(0), [(u32::from(r.head), 1025)]);
    assert_eq!(s.parts[0].t.device().stats().ok, 2);
    drop(s);
    // Physical sector 16 + 3; nothing else touched.
    assert_eq!(&disk[19 * 512..21 * 512], data.as_slice());
    assert!(disk[..19 * 512].iter().all(|&b| b == 0));
    assert!(disk[21 * 512..].iter().all(|&b| b == 0));
}

#[test]
fn requests_outside_the_window_touch_nothing() {
    let mut rams = new_rams(1);
    let mut disk = vec![0x5au8; DISK_SECTORS as usize * 512];
    let cfg = DiskConfig::new(16, 64);
    let mut s = System::new(&mut rams, &[cfg], LINUX, &mut disk, Limits::default());
    let reqs = [
        s.submit(0, req::OUT, 63, &[1; 1024], 0),
        s.submit(0, req::OUT, 64, &[1; 512], 0),
        s.submit(0, req::OUT, u64::MAX, &[1; 512], 0),
        s.submit(0, req::IN, 63, &[], 1024),
        s.submit(0, req::IN, u64::MAX - 1, &[], 1024),
    ];
    assert_eq!(s.disk.in_flight(), 0, "nothing reached the disk");
    assert_eq!(s.sched.in_flight(), 0);
    for r in reqs {
        assert_eq!(s.status(0, r), status::IOERR);
    }
    assert_eq!(s.read(0, reqs[3].data, 1024), vec![0; 1024], "no data");
    assert_eq!(s.used(0).len(), 5);
    // The last sector of the window is fine.
    let r = s.submit(0, req::IN, 63, &[], 512);
    s.run();
    assert_eq!(s.status(0, r), status::OK);
    assert_eq!(s.read(0, r.data, 512), vec![0x5a; 512]);
    drop(s);
    assert!(disk.iter().all(|&b| b == 0x5a));
}

#[test]
fn read_only_disk() {
    let mut rams = new_rams(1);
    let mut disk = vec![7u8; DISK_SECTORS as usize * 512];
    let mut cfg = DiskConfig::new(0, 64);
    cfg.read_only = true;
    cfg.write_zeroes = true;
    let f = LINUX | features::RO | features::WRITE_ZEROES;
    let mut s = System::new(&mut rams, &[cfg], f, &mut disk, Limits::default());
    let w = s.submit(0, req::OUT, 0, &[1; 512], 0);
    let mut range = [0u8; 16];
    range[8] = 1;
    let z = s.submit(0, req::WRITE_ZEROES, 0, &range, 0);
    let fl = s.submit(0, req::FLUSH, 0, &[], 0);
    assert_eq!(s.disk.in_flight(), 0);
    assert_eq!(s.status(0, w), status::IOERR);
    assert_eq!(s.status(0, z), status::IOERR);
    assert_eq!(s.status(0, fl), status::OK, "nothing to flush");
    let r = s.submit(0, req::IN, 0, &[], 512);
    s.run();
    assert_eq!(s.status(0, r), status::OK);
    assert_eq!(s.read(0, r.data, 512), vec![7; 512]);
    drop(s);
    assert!(disk.iter().all(|&b| b == 7));
}

#[test]
fn unsupported_and_malformed_requests() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut cfg = DiskConfig::new(0, 64);
    cfg.discard = true;
    // The driver does not take DISCARD.
    let mut s = System::new(&mut rams, &[cfg], LINUX, &mut disk, Limits::default());
    let mut range = [0u8; 16];
    range[8] = 1;
    let cases = [
        (s.submit(0, 2, 0, &[], 512), status::UNSUPP, "legacy SCSI"),
        (s.submit(0, 99, 0, &[], 0), status::UNSUPP, "unknown type"),
        (
            s.submit(0, req::DISCARD, 0, &range, 0),
            status::UNSUPP,
            "not negotiated",
        ),
        (
            s.submit(0, req::IN, 0, &[], 100),
            status::IOERR,
            "not whole sectors",
        ),
        (s.submit(0, req::IN, 0, &[], 0), status::IOERR, "no data"),
        (s.submit(0, req::OUT, 0, &[], 0), status::IOERR, "no data"),
        (
            s.submit(0, req::IN, 0, &[1; 512], 512),
            status::IOERR,
            "data both ways",
        ),
        (
            s.submit(0, req::OUT, 0, &[1; 512], 512),
            status::IOERR,
            "data both ways",
        ),
    ];
    for (r, st, why) in cases {
        assert_eq!(s.status(0, r), st, "{why}");
    }
    assert_eq!(s.disk.in_flight(), 0);

    // A short header.
    let p = &mut s.parts[0];
    p.mem.write(BUFS + 0x1000, &[UNSET]).unwrap();
    p.d.add(&p.mem, &[(BUFS, 8, false), (BUFS + 0x1000, 1, true)]);
    let _ = s.kick(0);
    assert_eq!(s.read(0, BUFS + 0x1000, 1), [status::IOERR]);
    // No writable byte at all: returned with nothing written.
    let p = &mut s.parts[0];
    let head = p.d.add(&p.mem, &[(BUFS, 16, false)]);
    let _ = s.kick(0);
    assert_eq!(s.used(0).last(), Some(&(u32::from(head), 0)));
    let stats = s.parts[0].t.device().stats();
    assert_eq!(
        (stats.io_errors, stats.unsupported, stats.no_status),
        (6, 3, 1)
    );
}

#[test]
fn get_id() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut cfg = DiskConfig::new(0, 64);
    cfg.id[..7].copy_from_slice(b"cluster");
    let mut s = System::new(&mut rams, &[cfg], LINUX, &mut disk, Limits::default());
    let r = s.submit(0, req::GET_ID, 0, &[], 20);
    assert_eq!(s.status(0, r), status::OK);
    assert_eq!(&s.read(0, r.data, 20)[..8], b"cluster\0");
    let r = s.submit(0, req::GET_ID, 0, &[], 4);
    assert_eq!(s.read(0, r.data, 4), b"clus", "truncated to the buffer");
    assert_eq!(s.disk.in_flight(), 0);
}

#[test]
fn flush_and_write_through() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let cfg = DiskConfig::new(0, 64);
    let mut s = System::new(&mut rams, &[cfg], LINUX, &mut disk, Limits::default());
    let f = s.submit(0, req::FLUSH, 0, &[], 0);
    s.run();
    assert_eq!((s.status(0, f), s.disk.flushes), (status::OK, 1));
    drop(s);
    // Without FLUSH negotiated, every write must be durable on completion.
    let mut rams = new_rams(1);
    let f = LINUX & !features::FLUSH;
    let mut s = System::new(&mut rams, &[cfg], f, &mut disk, Limits::default());
    let w = s.submit(0, req::OUT, 0, &[1; 512], 0);
    s.run();
    assert_eq!((s.status(0, w), s.disk.durable_writes), (status::OK, 1));
}

#[test]
fn discard_and_write_zeroes() {
    let mut rams = new_rams(1);
    let mut disk = vec![9u8; DISK_SECTORS as usize * 512];
    let mut cfg = DiskConfig::new(32, 64);
    cfg.discard = true;
    cfg.write_zeroes = true;
    cfg.max_discard_sectors = 8;
    cfg.max_write_zeroes_sectors = 8;
    let f = LINUX | features::DISCARD | features::WRITE_ZEROES;
    let mut s = System::new(&mut rams, &[cfg], f, &mut disk, Limits::default());
    let range = |sector: u64, num: u32, flags: u32| {
        let mut r = [0u8; 16];
        r[..8].copy_from_slice(&sector.to_le_bytes());
        r[8..12].copy_from_slice(&num.to_le_bytes());
        r[12..].copy_from_slice(&flags.to_le_bytes());
        r
    };
    let two = [range(0, 1, 0), range(4, 1, 0)].concat();
    let cases = [
        (req::DISCARD, range(0, 1, 1).to_vec(), status::UNSUPP),
        (req::DISCARD, range(0, 1, 4).to_vec(), status::UNSUPP),
        (req::WRITE_ZEROES, range(0, 1, 2).to_vec(), status::UNSUPP),
        (req::DISCARD, range(0, 9, 0).to_vec(), status::IOERR),
        (req::DISCARD, range(60, 8, 0).to_vec(), status::IOERR),
        (
            req::WRITE_ZEROES,
            range(u64::MAX, 1, 0).to_vec(),
            status::IOERR,
        ),
        (req::DISCARD, two, status::IOERR),
        (req::DISCARD, range(0, 1, 0)[..8].to_vec(), status::IOERR),
        (req::DISCARD, range(0, 0, 0).to_vec(), status::OK),
    ];
    for (kind, data, st) in cases {
        let r = s.submit(0, kind, 0, &data, 0);
        assert_eq!(s.status(0, r), st, "{kind} {data:?}");
    }
    assert_eq!(s.disk.in_flight(), 0);
    let d = s.submit(0, req::DISCARD, 0, &range(2, 2, 0), 0);
    let z = s.submit(0, req::WRITE_ZEROES, 0, &range(56, 8, 1), 0);
    s.run();
    assert_eq!((s.status(0, d), s.status(0, z)), (status::OK, status::OK));
    s.disk.no_discard = true;
    let d = s.submit(0, req::DISCARD, 0, &range(2, 2, 0), 0);
    s.run();
    assert_eq!(s.status(0, d), status::UNSUPP, "the physical disk said so");
    drop(s);
    let zeroed = |from: usize, to: usize| disk[from * 512..to * 512].iter().all(|&b| b == 0);
    assert!(zeroed(34, 36) && zeroed(88, 96));
    assert!(disk[..34 * 512].iter().all(|&b| b == 9));
    assert!(disk[36 * 512..88 * 512].iter().all(|&b| b == 9));
    assert!(disk[96 * 512..].iter().all(|&b| b == 9));
}

#[test]
fn backend_errors_reach_the_driver() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 64)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    s.disk.failing = true;
    let r = s.submit(0, req::IN, 0, &[], 512);
    s.run();
    assert_eq!(s.status(0, r), status::IOERR);
}

#[test]
fn segments_outside_ram_and_too_many_segments() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    // The full queue: SEG_MAX segments take all of it.
    let mut s = System::with_queue(
        &mut rams,
        &[DiskConfig::new(0, DISK_SECTORS)],
        LINUX,
        &mut disk,
        Limits::default(),
        QUEUE_SIZE,
    );
    let p = &mut s.parts[0];
    let outside = BASE + RAM as u64 - 256;
    p.mem.write(BUFS + 0x100, &[UNSET]).unwrap();
    p.d.add(
        &p.mem,
        &[
            (BUFS, 16, false),
            (outside, 512, true),
            (BUFS + 0x100, 1, true),
        ],
    );
    let _ = s.kick(0);
    assert_eq!(s.read(0, BUFS + 0x100, 1), [status::IOERR]);
    assert_eq!(s.disk.in_flight(), 0);

    // SEG_MAX segments are fine, one more is not. (The segments overlap:
    // the device may write the same memory twice. The status byte shares
    // the last segment's buffer.)
    for (n, st) in [(SEG_MAX, status::OK), (SEG_MAX + 1, status::IOERR)] {
        let p = &mut s.parts[0];
        let mut bufs = vec![(BUFS, 16, false)];
        bufs.extend((0..n as u64 - 1).map(|i| (BUFS + 0x1000 + 512 * (i % 32), 512, true)));
        let last = BUFS + 0x1000 + 512 * 32;
        bufs.push((last, 513, true));
        let status_at = last + 512;
        p.mem.write(status_at, &[UNSET]).unwrap();
        p.d.add(&p.mem, &bufs);
        let _ = s.kick(0);
        s.run();
        assert_eq!(s.read(0, status_at, 1), [st], "{n} segments");
    }
}

/// A segment of `size_max` bytes is fine, one sector more is refused
/// before anything starts: no request needs more than MAX_REQUEST_BYTES.
#[test]
fn segment_larger_than_size_max() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 200)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    let size_max = u64::from(SIZE_MAX);
    for (len, st) in [(size_max, status::OK), (size_max + 512, status::IOERR)] {
        let p = &mut s.parts[0];
        p.mem.write(BUFS + 0x100, &[UNSET]).unwrap();
        p.d.add(
            &p.mem,
            &[
                (BUFS, 16, false),
                (BUFS + 0x1000, len as u32, true),
                (BUFS + 0x100, 1, true),
            ],
        );
        let _ = s.kick(0);
        s.run();
        assert_eq!(s.read(0, BUFS + 0x100, 1), [st], "a {len}-byte segment");
    }
    assert_eq!(MAX_REQUEST_BYTES, SEG_MAX as u64 * size_max);
    assert_eq!(
        DiskConfig::new(0, 1).max_write_zeroes_sectors,
        (MAX_REQUEST_BYTES / 512) as u32
    );
}

#[test]
fn any_framing_and_indirect_tables() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    for (i, b) in disk.iter_mut().enumerate() {
        *b = (i / 512) as u8;
    }
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(8, 64)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    // Header split 10 + 6; data and status in one 513-byte buffer.
    let p = &mut s.parts[0];
    let mut h = [0u8; 16];
    h[8] = 5;
    p.mem.write(BUFS, &h[..10]).unwrap();
    p.mem.write(BUFS + 0x40, &h[10..]).unwrap();
    p.d.add(
        &p.mem,
        &[
            (BUFS, 10, false),
            (BUFS + 0x40, 6, false),
            (BUFS + 0x100, 513, true),
        ],
    );
    let _ = s.kick(0);
    s.run();
    assert_eq!(
        s.read(0, BUFS + 0x100, 513),
        [vec![13u8; 512], vec![0]].concat()
    );

    // The same request through an indirect table.
    let p = &mut s.parts[0];
    let table = BUFS + 0x1000;
    let desc = |i: u64, gpa: u64, len: u32, flags: u16, next: u16| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&gpa.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        p.mem.write(table + 16 * i, &b).unwrap();
    };
    h[8] = 6;
    p.mem.write(BUFS, &h).unwrap();
    desc(0, BUFS, 16, DESC_F_NEXT, 1);
    desc(1, BUFS + 0x200, 512, DESC_F_WRITE | DESC_F_NEXT, 2);
    desc(2, BUFS + 0x400, 1, DESC_F_WRITE, 0);
    p.d.desc(&p.mem, 40, table, 48, DESC_F_INDIRECT, 0);
    p.d.push_head(&p.mem, 40);
    let _ = s.kick(0);
    s.run();
    assert_eq!(s.read(0, BUFS + 0x200, 512), vec![14u8; 512]);
    assert_eq!(s.read(0, BUFS + 0x400, 1), [status::OK]);
    assert_eq!(s.used(0).last(), Some(&(40, 513)));
}

#[test]
fn broken_ring_needs_reset_and_recovers() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 64)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    // A descriptor loop.
    let p = &mut s.parts[0];
    p.d.desc(&p.mem, 0, BUFS, 16, DESC_F_NEXT, 1);
    p.d.desc(&p.mem, 1, BUFS, 16, DESC_F_NEXT, 0);
    p.d.push_head(&p.mem, 0);
    let fx = s.kick(0);
    assert_eq!(fx.irq, Some(true));
    let t = &s.parts[0].t;
    assert_ne!(t.status() & dev_status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(t.interrupt_status(), crate::virtio::mmio::INT_CONFIG_CHANGE);
    assert_eq!(t.device().stats().broken_rings, 1);
    // Ignored until reset.
    let r = s.submit(0, req::IN, 0, &[], 512);
    assert_eq!(s.status(0, r), UNSET);
    // The driver resets and starts over.
    let p = &mut s.parts[0];
    p.d = Driver::new(QSIZE);
    let _ = bring_up(&mut p.t, &p.d, LINUX);
    let r = s.submit(0, req::IN, 0, &[], 512);
    s.run();
    assert_eq!(s.status(0, r), status::OK);
}

#[test]
fn slots_run_out_then_the_ring_drains() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 64)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    // More than the slots, within the test driver's ring (3 descriptors
    // each).
    let n = SLOTS as u64 + 4;
    let reqs: Vec<Req> = (0..n).map(|i| s.submit(0, req::IN, i, &[], 512)).collect();
    assert_eq!(s.parts[0].t.device().in_flight(), SLOTS);
    assert_eq!(s.parts[0].t.queue(0).unwrap().in_flight(), SLOTS as u32);
    s.run();
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(s.status(0, *r), status::OK, "request {i}");
    }
    assert_eq!(s.used(0).len() as u64, n);
    assert_eq!(s.parts[0].t.device().in_flight(), 0);
}

/// Completing a request writes the used ring and nothing else: with more
/// requests waiting in the ring than slots, the device asks (`notify`) for
/// its queue to be processed again rather than parsing the ring itself, so
/// the core that completes physical requests for every partition never
/// does a partition's parsing.
#[test]
fn a_completion_leaves_the_ring_to_the_partition() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 64)],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    for i in 0..SLOTS as u64 + 4 {
        s.submit(0, req::IN, i, &[], 512);
    }
    assert_eq!(s.parts[0].t.device().in_flight(), SLOTS);
    let id = s.first().unwrap();
    let (p, tok) = s.sched.complete(id).unwrap();
    let st = s.disk.complete(id, &s.parts[p].mem).unwrap();
    let part = &mut s.parts[p];
    let (_, fx) = part
        .t
        .with_device(&part.mem, |blk, ctx| blk.complete(tok, st, ctx));
    assert_eq!(
        fx.notify,
        Some(0),
        "the rest of the ring is left to a notify"
    );
    assert_eq!(
        part.t.device().in_flight(),
        SLOTS - 1,
        "no request taken from the ring by the completion"
    );
    let _ = part.t.notify_queue(0, &part.mem);
    assert_eq!(
        part.t.device().in_flight(),
        SLOTS,
        "the notify takes one more"
    );
}

#[test]
fn reset_orphans_requests_in_flight() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let mut s = System::new(
        &mut rams,
        &[DiskConfig::new(0, 64)],
        LINUX,
        &mut disk,
        Limits {
            in_flight: 2,
            others_in_flight: 1,
            starvation: 4,
            ..Limits::default()
        },
    );
    let reqs: Vec<Req> = (0..4).map(|i| s.submit(0, req::IN, i, &[], 512)).collect();
    assert_eq!((s.disk.in_flight(), s.sched.queued(0)), (2, 2));
    // The driver resets the device with four requests out.
    let fx = write32(&mut s.parts[0].t, reg::STATUS, 0);
    assert!(fx.reset);
    assert_eq!(
        s.parts[0].t.device().in_flight(),
        4,
        "orphans keep their slots"
    );
    let mut cancelled = Vec::new();
    s.sched.cancel(0, |tok| cancelled.push(tok));
    assert_eq!(cancelled.len(), 2);
    for tok in cancelled {
        let p = &mut s.parts[0];
        let _ = p.t.with_device(&p.mem, |blk, ctx| {
            assert!(blk.physical_request(tok).is_none());
            blk.complete(tok, BackendStatus::IoError, ctx)
        });
    }
    assert_eq!(s.parts[0].t.device().in_flight(), 2);
    // The driver comes back with fresh rings before the disk finishes.
    let p = &mut s.parts[0];
    p.d = Driver::new(QSIZE);
    p.mem.write(BASE + 0x1000, &[0; 0x4000]).unwrap();
    let _ = bring_up(&mut p.t, &p.d, LINUX);
    s.run();
    for r in &reqs {
        assert_eq!(s.status(0, *r), UNSET, "nothing written for orphans");
    }
    assert_eq!(s.used(0), []);
    assert_eq!(s.parts[0].t.device().in_flight(), 0);
    let r = s.submit(0, req::IN, 0, &[], 512);
    s.run();
    assert_eq!(s.status(0, r), status::OK);
    assert_eq!(s.used(0), [(u32::from(r.head), 513)]);
}

/// Two partitions on one disk: each stays in its window, and the top
/// partition's requests overtake a flood from the other.
#[test]
fn two_partitions_share_a_disk() {
    let mut rams = new_rams(2);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let cluster = DiskConfig::new(0, 64);
    let ivi = DiskConfig::new(64, 128);
    let mut s = System::new(
        &mut rams,
        &[cluster, ivi],
        LINUX,
        &mut disk,
        Limits::default(),
    );
    let flood: Vec<Req> = (0..16)
        .map(|i| s.submit(1, req::OUT, i * 8, &pattern(i as u8, 4096), 0))
        .collect();
    assert_eq!(s.disk.in_flight(), 1, "K = 1 lower request in flight");
    let odo = s.submit(0, req::OUT, 0, &pattern(0xc0, 512), 0);
    assert_eq!(
        s.disk.in_flight(),
        2,
        "the cluster's write went out at once"
    );
    // The disk completes in order: the cluster waits for one IVI write.
    let first = s.disk.ids().next().unwrap();
    assert_eq!(s.sched.lookup(first).unwrap().0, 1);
    let _ = s.complete(first);
    let second = s.disk.ids().next().unwrap();
    assert_eq!(s.sched.lookup(second).unwrap().0, 0);
    let _ = s.complete(second);
    assert_eq!(s.status(0, odo), status::OK);
    // The IVI cannot reach the cluster's sectors.
    let bad = s.submit(1, req::OUT, 128, &[0xff; 512], 0);
    assert_eq!(s.status(1, bad), status::IOERR);
    s.run();
    assert!(flood.iter().all(|r| s.status(1, *r) == status::OK));
    drop(s);
    assert_eq!(&disk[..512], pattern(0xc0, 512).as_slice());
    assert!(disk[512..64 * 512].iter().all(|&b| b == 0));
    for i in 0..16usize {
        let at = (64 + i * 8) * 512;
        assert_eq!(&disk[at..at + 4096], pattern(i as u8, 4096).as_slice());
    }
}

/// The model is built by value (the hypervisor's boot path holds it on a
/// 64 KiB stack before it goes to the heap): it must stay well below.
#[test]
fn the_model_fits_a_boot_stack() {
    let size = core::mem::size_of::<VirtioBlk>();
    assert!(size <= 40 * 1024, "VirtioBlk is {size} bytes");
}

/// A driver that keeps the ring full cannot keep the device busy for
/// longer than one budget per call: the rest is reported as more work.
#[test]
fn work_per_call_is_bounded() {
    let mut rams = new_rams(1);
    let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
    let cfg = DiskConfig::new(0, 64);
    let mut s = System::with_queue(
        &mut rams,
        &[cfg],
        LINUX,
        &mut disk,
        Limits::default(),
        QUEUE_SIZE,
    );
    let p = &mut s.parts[0];
    // A queue full of one-buffer chains that complete at once (no status byte).
    for _ in 0..QUEUE_SIZE {
        p.d.add(&p.mem, &[(BUFS, 16, false)]);
    }
    p.d.publish(&p.mem);
    let fx = write32(&mut p.t, reg::QUEUE_NOTIFY, 0);
    let fx = p.t.notify_queue(fx.notify.unwrap(), &p.mem);
    assert_eq!(
        fx.notify,
        Some(0),
        "budget used up: asks to be called again"
    );
    assert_eq!(p.d.used(&p.mem).len(), usize::from(QUEUE_SIZE));
    let fx = p.t.notify_queue(0, &p.mem);
    assert_eq!(fx.notify, None);
    assert_eq!(p.t.device().stats().no_status, u64::from(QUEUE_SIZE));
}
