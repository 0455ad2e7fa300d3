//! The driver's half of a split virtqueue, for tests: lays out descriptors
//! and the available ring in guest memory the way a virtio driver does,
//! and reads back the used ring.

use super::memory::{GuestMemory, SliceMemory};
use super::queue::{DESC_F_NEXT, DESC_F_WRITE, QueueLayout};
use crate::mmio::{RegisterFile, Width};

/// Guest RAM of the tests: 128 KiB at 1 GiB. Rings live in the first
/// 32 KiB, buffers above.
pub const BASE: u64 = 0x4000_0000;
pub const RAM: usize = 0x2_0000;

pub struct Driver {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    next_free: u16,
    avail_idx: u16,
    added: u16,
    used_seen: u16,
}

impl Driver {
    /// A queue of `size` entries (at most 256) at the default place.
    pub fn new(size: u16) -> Self {
        Self::at(size, BASE + 0x1000, BASE + 0x3000, BASE + 0x4000)
    }

    pub fn at(size: u16, desc: u64, avail: u64, used: u64) -> Self {
        Self {
            size,
            desc,
            avail,
            used,
            next_free: 0,
            avail_idx: 0,
            added: 0,
            used_seen: 0,
        }
    }

    pub fn layout(&self) -> QueueLayout {
        QueueLayout {
            num: u32::from(self.size),
            desc: self.desc,
            avail: self.avail,
            used: self.used,
        }
    }

    /// Writes descriptor `i` as given.
    pub fn desc(&self, mem: &SliceMemory, i: u16, gpa: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&gpa.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        mem.write(self.desc + 16 * u64::from(i), &b).unwrap();
    }

    /// Builds a chain of `(gpa, len, device-writable)` buffers in free
    /// descriptors (taken round robin) and adds its head to the available
    /// ring (not yet published).
    pub fn add(&mut self, mem: &SliceMemory, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_free;
        for (n, &(gpa, len, w)) in bufs.iter().enumerate() {
            let i = self.next_free;
            self.next_free = (self.next_free + 1) % self.size;
            let mut flags = if w { DESC_F_WRITE } else { 0 };
            if n + 1 < bufs.len() {
                flags |= DESC_F_NEXT;
            }
            self.desc(mem, i, gpa, len, flags, self.next_free);
        }
        self.push_head(mem, head);
        head
    }

    /// Adds `head` to the available ring (not yet published).
    pub fn push_head(&mut self, mem: &SliceMemory, head: u16) {
        let slot = self.avail_idx.wrapping_add(self.added) % self.size;
        mem.write_u16(self.avail + 4 + 2 * u64::from(slot), head)
            .unwrap();
        self.added += 1;
    }

    /// Makes everything added visible to the device (`avail.idx`).
    pub fn publish(&mut self, mem: &SliceMemory) {
        self.avail_idx = self.avail_idx.wrapping_add(self.added);
        self.added = 0;
        self.set_avail_idx(mem, self.avail_idx);
    }

    pub fn set_avail_idx(&self, mem: &SliceMemory, idx: u16) {
        mem.write_u16(self.avail + 2, idx).unwrap();
    }

    pub fn set_avail_flags(&self, mem: &SliceMemory, flags: u16) {
        mem.write_u16(self.avail, flags).unwrap();
    }

    pub fn set_used_event(&self, mem: &SliceMemory, v: u16) {
        mem.write_u16(self.avail + 4 + 2 * u64::from(self.size), v)
            .unwrap();
    }

    pub fn avail_event(&self, mem: &SliceMemory) -> u16 {
        mem.read_u16(self.used + 4 + 8 * u64::from(self.size))
            .unwrap()
    }

    /// The used entries `(id, len)` added since the last call.
    pub fn used(&mut self, mem: &SliceMemory) -> Vec<(u32, u32)> {
        let idx = mem.read_u16(self.used + 2).unwrap();
        let mut v = Vec::new();
        while self.used_seen != idx {
            let slot = u64::from(self.used_seen % self.size);
            let e = self.used + 4 + 8 * slot;
            v.push((mem.read_u32(e).unwrap(), mem.read_u32(e + 4).unwrap()));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        v
    }
}

/// A 32-bit register read, as a driver makes it.
pub fn read32<R: RegisterFile>(t: &mut R, offset: u64) -> u64 {
    t.read(offset, Width::Word, &mut R::Effects::default())
}

/// A 32-bit register write, as a driver makes it, and its effects.
pub fn write32<R: RegisterFile>(t: &mut R, offset: u64, value: u32) -> R::Effects {
    let mut fx = R::Effects::default();
    t.write(offset, Width::Word, u64::from(value), &mut fx);
    fx
}

/// The Linux virtio-mmio probe and virtio core initialisation, up to
/// DRIVER_OK, with queue 0 at `d`'s layout; checks the device accepts
/// `features`.
pub fn bring_up<D: super::device::VirtioDevice>(
    t: &mut super::mmio::MmioTransport<D>,
    d: &Driver,
    features: u64,
) -> super::mmio::Effects {
    use super::mmio::{reg, status};
    let w = write32::<super::mmio::MmioTransport<D>>;
    assert_eq!(read32(t, reg::MAGIC_VALUE), 0x7472_6976);
    let _ = w(t, reg::STATUS, 0);
    let _ = w(t, reg::STATUS, status::ACKNOWLEDGE);
    let _ = w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    let _ = w(t, reg::DRIVER_FEATURES_SEL, 0);
    let _ = w(t, reg::DRIVER_FEATURES, features as u32);
    let _ = w(t, reg::DRIVER_FEATURES_SEL, 1);
    let _ = w(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    let _ = w(t, reg::STATUS, s);
    assert_eq!(read32(t, reg::STATUS), u64::from(s), "features refused");
    let _ = w(t, reg::QUEUE_SEL, 0);
    assert_eq!(read32(t, reg::QUEUE_READY), 0);
    let l = d.layout();
    assert!(u64::from(l.num) <= read32(t, reg::QUEUE_NUM_MAX));
    let _ = w(t, reg::QUEUE_NUM, l.num);
    let _ = w(t, reg::QUEUE_DESC_LOW, l.desc as u32);
    let _ = w(t, reg::QUEUE_DESC_HIGH, (l.desc >> 32) as u32);
    let _ = w(t, reg::QUEUE_DRIVER_LOW, l.avail as u32);
    let _ = w(t, reg::QUEUE_DRIVER_HIGH, (l.avail >> 32) as u32);
    let _ = w(t, reg::QUEUE_DEVICE_LOW, l.used as u32);
    let _ = w(t, reg::QUEUE_DEVICE_HIGH, (l.used >> 32) as u32);
    let _ = w(t, reg::QUEUE_READY, 1);
    assert_eq!(read32(t, reg::QUEUE_READY), 1);
    w(t, reg::STATUS, s | status::DRIVER_OK)
}
