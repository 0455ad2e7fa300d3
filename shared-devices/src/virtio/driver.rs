//! The driver's half of a split virtqueue (VIRTIO 1.2 §2.7), and the
//! virtio-blk request framing (§5.2.6), for the hypervisor's own drivers of
//! physical devices.
//!
//! Everything the driver writes or reads lives in memory it allocated for
//! the device (the rings, the request headers and status bytes, indirect
//! descriptor tables), reached through a [`GuestMemory`] over that
//! allocation; data buffers are only named by address. So this is safe,
//! host-testable code, and the tests run it against the device side in
//! [`super::queue`].
//!
//! Each request takes one descriptor of the ring: its buffers are listed
//! in an indirect table the caller provides (VIRTIO_F_INDIRECT_DESC), so a
//! queue of N entries holds N requests whatever their number of segments.
//! No EVENT_IDX: the device interrupts for every used buffer (unless it
//! batches) and the driver notifies after every request unless the device
//! says it does not need it (`used.flags`).

use super::memory::{Fence, GuestMemory, MemoryError};
use super::queue::{DESC_BYTES, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE};

/// One buffer of a request: `device_writes` for data the device fills in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub addr: u64,
    pub len: u32,
    pub device_writes: bool,
}

/// Why a request could not be queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// Every ring descriptor is taken: wait for a used buffer.
    Full,
    /// No buffers, or more than the queue allows in one table.
    Buffers(usize),
    /// The table or ring lies outside the driver's memory.
    Memory(MemoryError),
}

impl From<MemoryError> for AddError {
    fn from(e: MemoryError) -> Self {
        AddError::Memory(e)
    }
}

/// A request the device has finished: the ring descriptor [`DriverQueue::add`]
/// returned, and the bytes it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    pub id: u16,
    pub len: u32,
}

/// `used.flags` bit: the device does not need notifications.
const USED_F_NO_NOTIFY: u16 = 1;

/// The driver's view of one split virtqueue of `size` entries whose rings
/// start at `base` in its memory.
#[derive(Debug)]
pub struct DriverQueue {
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// Ring descriptors not in use, as a stack of indices.
    free: heapless::Vec<u16, { DriverQueue::MAX_SIZE as usize }>,
    avail_idx: u16,
    last_used: u16,
}

impl DriverQueue {
    /// Largest queue this driver sets up.
    pub const MAX_SIZE: u16 = 256;

    /// Bytes of memory a queue of `size` entries needs: descriptor table,
    /// available ring, used ring, each at its alignment (16, 2, 4).
    pub const fn memory_bytes(size: u16) -> u64 {
        let (_, _, used) = Self::offsets(size);
        used + 6 + 8 * size as u64
    }

    const fn offsets(size: u16) -> (u64, u64, u64) {
        let desc = 0;
        let avail = desc + DESC_BYTES * size as u64;
        let used = (avail + 6 + 2 * size as u64).next_multiple_of(4);
        (desc, avail, used)
    }

    /// A queue of `size` entries (a power of two, at most
    /// [`Self::MAX_SIZE`]) at `base` (16-byte aligned), its memory zeroed:
    /// nothing available, nothing used.
    pub fn new(size: u16, base: u64, mem: &dyn GuestMemory) -> Result<Self, MemoryError> {
        let bad = MemoryError {
            gpa: base,
            len: Self::memory_bytes(size),
        };
        if size == 0 || !size.is_power_of_two() || size > Self::MAX_SIZE || !base.is_multiple_of(16)
        {
            return Err(bad);
        }
        let (desc, avail, used) = Self::offsets(size);
        let zeros = [0u8; 256];
        let mut at = 0;
        while at < Self::memory_bytes(size) {
            let n = (Self::memory_bytes(size) - at).min(zeros.len() as u64);
            mem.write(base + at, &zeros[..n as usize])?;
            at += n;
        }
        Ok(Self {
            size,
            desc: base + desc,
            avail: base + avail,
            used: base + used,
            free: (0..size).rev().collect(),
            avail_idx: 0,
            last_used: 0,
        })
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Addresses for the transport's QueueDesc, QueueDriver, QueueDevice.
    pub fn desc_addr(&self) -> u64 {
        self.desc
    }

    pub fn avail_addr(&self) -> u64 {
        self.avail
    }

    pub fn used_addr(&self) -> u64 {
        self.used
    }

    /// Ring descriptors free (requests that can still be added).
    pub fn free(&self) -> usize {
        self.free.len()
    }

    /// Makes `bufs` (device-readable ones first) available as one request,
    /// listed in the indirect table at `table` (16 bytes per buffer, in
    /// the driver's memory, untouched until the request is used). Returns
    /// the request's id. The caller then notifies the device if
    /// [`Self::should_notify`] says so.
    pub fn add(
        &mut self,
        table: u64,
        bufs: &[Buf],
        mem: &dyn GuestMemory,
    ) -> Result<u16, AddError> {
        self.add_parts(table, &[bufs], mem)
    }

    /// [`Self::add`] with the buffers given in pieces (e.g. a header, the
    /// data, a status byte), listed in order, so the caller need not copy
    /// them into one list first. The table is written a block of
    /// descriptors at a time rather than one by one: a physical disk's
    /// request has over a hundred.
    pub fn add_parts(
        &mut self,
        table: u64,
        parts: &[&[Buf]],
        mem: &dyn GuestMemory,
    ) -> Result<u16, AddError> {
        let count: usize = parts.iter().map(|p| p.len()).sum();
        if count == 0 || count > usize::from(self.size) {
            return Err(AddError::Buffers(count));
        }
        let Some(&id) = self.free.last() else {
            return Err(AddError::Full);
        };
        let mut block = [0u8; DESC_BYTES as usize * TABLE_BLOCK];
        let mut in_block = 0;
        let mut written = 0u64;
        for (i, b) in parts.iter().flat_map(|p| p.iter()).enumerate() {
            let last = i + 1 == count;
            let flags =
                if b.device_writes { DESC_F_WRITE } else { 0 } | if last { 0 } else { DESC_F_NEXT };
            let next = if last { 0 } else { i as u16 + 1 };
            let at = DESC_BYTES as usize * in_block;
            block[at..at + DESC_BYTES as usize]
                .copy_from_slice(&descriptor(b.addr, b.len, flags, next));
            in_block += 1;
            if in_block == TABLE_BLOCK || last {
                let bytes = DESC_BYTES as usize * in_block;
                mem.write(table + written, &block[..bytes])?;
                written += bytes as u64;
                in_block = 0;
            }
        }
        let table_len = (DESC_BYTES * count as u64) as u32;
        mem.write(
            self.desc + DESC_BYTES * u64::from(id),
            &descriptor(table, table_len, DESC_F_INDIRECT, 0),
        )?;
        let slot = u64::from(self.avail_idx % self.size);
        mem.write_u16(self.avail + 4 + 2 * slot, id)?;
        // The descriptors and the ring entry before the index that
        // publishes them.
        mem.fence(Fence::Release);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.write_u16(self.avail + 2, self.avail_idx)?;
        self.free.pop();
        Ok(id)
    }

    /// Whether the device wants to hear about new requests.
    pub fn should_notify(&self, mem: &dyn GuestMemory) -> bool {
        // The index store before the flags load.
        mem.fence(Fence::Full);
        mem.read_u16(self.used)
            .map_or(true, |flags| flags & USED_F_NO_NOTIFY == 0)
    }

    /// The next request the device has finished, if any; its ring
    /// descriptor is free again. A used element naming a descriptor that
    /// is not in use (a broken device) is skipped and reported as `Err`.
    pub fn pop_used(&mut self, mem: &dyn GuestMemory) -> Result<Option<Used>, MemoryError> {
        let idx = mem.read_u16(self.used + 2)?;
        if idx == self.last_used {
            return Ok(None);
        }
        // The index load before the element it publishes.
        mem.fence(Fence::Acquire);
        let slot = u64::from(self.last_used % self.size);
        let id = mem.read_u32(self.used + 4 + 8 * slot)?;
        let len = mem.read_u32(self.used + 8 + 8 * slot)?;
        self.last_used = self.last_used.wrapping_add(1);
        let in_use = id < u32::from(self.size) && !self.free.contains(&(id as u16));
        if !in_use {
            return Err(MemoryError {
                gpa: self.used + 4 + 8 * slot,
                len: 8,
            });
        }
        let _ = self.free.push(id as u16);
        Ok(Some(Used { id: id as u16, len }))
    }
}

/// Descriptors written to an indirect table per memory write.
const TABLE_BLOCK: usize = 32;

fn descriptor(addr: u64, len: u32, flags: u16, next: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&flags.to_le_bytes());
    d[14..16].copy_from_slice(&next.to_le_bytes());
    d
}

/// The 16-byte virtio-blk request header: type, reserved, sector.
pub fn blk_header(kind: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&kind.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

/// The 16-byte range of a DISCARD or WRITE_ZEROES request; flag bit 0 is
/// `unmap`.
pub fn blk_range(sector: u64, sectors: u32, unmap: bool) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[0..8].copy_from_slice(&sector.to_le_bytes());
    r[8..12].copy_from_slice(&sectors.to_le_bytes());
    r[12..16].copy_from_slice(&u32::from(unmap).to_le_bytes());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtio::memory::SliceMemory;
    use crate::virtio::queue::{ChainBuffers, VirtQueue};

    const BASE: u64 = 0x8000_0000;

    /// A driver queue and the device's view of it, on one memory.
    fn pair(size: u16, mem: &SliceMemory<'_>) -> (DriverQueue, VirtQueue) {
        let q = DriverQueue::new(size, BASE, mem).unwrap();
        let mut dev = VirtQueue::new(size);
        dev.set_layout(|l| {
            l.num = u32::from(size);
            l.desc = q.desc_addr();
            l.avail = q.avail_addr();
            l.used = q.used_addr();
        });
        dev.enable(false, true).unwrap();
        (q, dev)
    }

    #[test]
    fn layout_and_alignment() {
        // Used ring 4-byte aligned after the 6 + 2n byte available ring.
        assert_eq!(DriverQueue::offsets(4), (0, 64, 80));
        assert_eq!(DriverQueue::memory_bytes(4), 80 + 6 + 32);
        assert_eq!(DriverQueue::memory_bytes(256), 4616 + 6 + 2048);
        let mut ram = vec![0xffu8; 0x4000];
        let mem = SliceMemory::new(BASE, &mut ram);
        assert!(DriverQueue::new(3, BASE, &mem).is_err());
        assert!(DriverQueue::new(512, BASE, &mem).is_err());
        assert!(DriverQueue::new(4, BASE + 8, &mem).is_err());
        let q = DriverQueue::new(256, BASE, &mem).unwrap();
        assert_eq!(mem.read_u16(q.avail_addr() + 2), Ok(0), "rings zeroed");
        assert_eq!(q.free(), 256);
    }

    /// Requests go through the device side as the buffers the driver
    /// listed, come back in any order, and the ring wraps many times.
    #[test]
    fn round_trips_through_the_device_side() {
        let mut ram = vec![0u8; 0x4000];
        let mem = SliceMemory::new(BASE, &mut ram);
        let (mut q, mut dev) = pair(4, &mem);
        let table = |i: u64| BASE + 0x2000 + 0x100 * i;
        for round in 0..20u64 {
            let mut ids = Vec::new();
            for i in 0..4u64 {
                let bufs = [
                    Buf {
                        addr: 0x1000 + i,
                        len: 16,
                        device_writes: false,
                    },
                    Buf {
                        addr: 0x9_0000 + round,
                        len: 512 * (i as u32 + 1),
                        device_writes: true,
                    },
                    Buf {
                        addr: 0x2000 + i,
                        len: 1,
                        device_writes: true,
                    },
                ];
                ids.push(q.add(table(i), &bufs, &mem).unwrap());
            }
            assert_eq!(
                q.add(
                    table(0),
                    &[Buf {
                        addr: 0,
                        len: 1,
                        device_writes: false
                    }],
                    &mem
                ),
                Err(AddError::Full)
            );
            assert!(q.should_notify(&mem));
            let mut chains = Vec::new();
            while let Some(chain) = dev.pop(0, &mem).unwrap() {
                let bufs = ChainBuffers::<8>::collect(chain, &mem).unwrap();
                assert_eq!(bufs.readable_len(), 16);
                let n = chains.len() as u32;
                assert_eq!(bufs.writable_len(), 512 * (n + 1) + 1);
                chains.push((bufs.token(), bufs.writable_len()));
            }
            assert_eq!(chains.len(), 4);
            // Completed out of order.
            for &(token, len) in chains.iter().rev() {
                dev.push(token, len, &mem).unwrap();
            }
            let mut seen = Vec::new();
            while let Some(u) = q.pop_used(&mem).unwrap() {
                seen.push(u);
            }
            let expect: Vec<Used> = (0..4)
                .rev()
                .map(|i| Used {
                    id: ids[i],
                    len: 512 * (i as u32 + 1) + 1,
                })
                .collect();
            assert_eq!(seen, expect, "round {round}");
            assert_eq!(q.free(), 4);
        }
    }

    /// A table longer than one written block (and not a multiple of it),
    /// given in pieces, reaches the device as the same buffers in order.
    #[test]
    fn a_long_table_in_pieces_reaches_the_device_whole() {
        let mut ram = vec![0u8; 0x8000];
        let mem = SliceMemory::new(BASE, &mut ram);
        // (A table may be as long as the queue.)
        let (mut q, mut dev) = pair(128, &mem);
        let buf = |addr: u64, device_writes| Buf {
            addr,
            len: 0x200,
            device_writes,
        };
        let head = [buf(0x1000, false)];
        let data: Vec<Buf> = (0..TABLE_BLOCK as u64 * 2 + 5)
            .map(|i| buf(0x10_0000 + 0x1000 * i, false))
            .collect();
        let tail = [buf(0x2000, true)];
        let table = BASE + 0x4000;
        q.add_parts(table, &[&head, &data, &tail], &mem).unwrap();
        let chain = dev.pop(0, &mem).unwrap().unwrap();
        let bufs = ChainBuffers::<128>::collect(chain, &mem).unwrap();
        let count = 1 + data.len() + 1;
        assert_eq!(bufs.readable_len(), 0x200 * (count as u32 - 1));
        assert_eq!(bufs.writable_len(), 0x200);
        // The table itself: every entry chained to the next, the last not.
        for i in 0..count {
            let mut d = [0u8; 16];
            mem.read(table + 16 * i as u64, &mut d).unwrap();
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            let next = u16::from_le_bytes([d[14], d[15]]);
            let want = [&head[..], &data, &tail].concat()[i].addr;
            assert_eq!(addr, want, "entry {i}");
            let last = i + 1 == count;
            assert_eq!(flags & DESC_F_NEXT != 0, !last, "entry {i}");
            assert_eq!(next, if last { 0 } else { i as u16 + 1 }, "entry {i}");
        }
        assert_eq!(
            q.add_parts(table, &[&[], &[]], &mem),
            Err(AddError::Buffers(0))
        );
    }

    #[test]
    fn a_broken_device_is_reported() {
        let mut ram = vec![0u8; 0x4000];
        let mem = SliceMemory::new(BASE, &mut ram);
        let (mut q, _) = pair(4, &mem);
        // The device claims descriptor 3 came back, which was never used.
        mem.write(q.used_addr() + 4, &3u32.to_le_bytes()).unwrap();
        mem.write_u16(q.used_addr() + 2, 1).unwrap();
        assert!(q.pop_used(&mem).is_err());
        assert_eq!(q.pop_used(&mem), Ok(None));
        assert_eq!(q.free(), 4);
        assert_eq!(q.add(0, &[], &mem), Err(AddError::Buffers(0)));
    }

    #[test]
    fn blk_framing() {
        assert_eq!(
            blk_header(13, 0x0102)[..],
            [13, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            blk_range(7, 9, true)[..],
            [7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0]
        );
    }
}
