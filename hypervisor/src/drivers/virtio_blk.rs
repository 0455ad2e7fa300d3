//! The hypervisor's driver for a physical virtio-blk device on virtio-mmio
//! (version 2): where the storage mediator's requests go.
//!
//! Requests are asynchronous and name their data by bus address: a
//! partition's read or write goes straight between the disk and the
//! partition's own RAM (the block model has checked every segment against
//! it; see `storage.rs`), so nothing is copied or allocated per request.
//! What the driver itself writes (request headers, discard ranges, status
//! bytes, indirect descriptor tables, the rings) lives in one [`DmaRegion`]
//! allocated when the disk is opened: a fixed area per slot, one slot per
//! request in flight.
//!
//! Negotiated when the device offers them: FLUSH, DISCARD, WRITE_ZEROES,
//! RO, SEG_MAX; required: VERSION_1 and INDIRECT_DESC (each request takes
//! one ring descriptor whatever its number of segments).

use super::virtio_mmio::Transport;
use crate::arch::dma::DmaRegion;
use alloc::format;
use alloc::string::String;
use shared_devices::gpt::{self, Extent, Header};
use shared_devices::virtio::blk::{MAX_REQUEST_BYTES, SEG_MAX, features, req};
use shared_devices::virtio::device::{feature, id};
use shared_devices::virtio::driver::{Buf, DriverQueue, blk_header, blk_range};
use shared_devices::virtio::memory::GuestMemory;

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Partitions' requests in flight at most (slots 0..SLOTS).
pub const SLOTS: usize = 4;
/// The slot of the hypervisor's own writes (crash records, see
/// [`PhysicalDisk::write_own`]), beyond the partitions': one at a time,
/// never in the way of a partition's request getting a slot.
pub const OWN_SLOT: usize = SLOTS;
/// Bytes one of the hypervisor's own writes may have.
pub const OWN_BYTES: usize = SCRATCH as usize;
/// Data buffers one request may have: a partition's request's segments,
/// some split where they cross from one of its memory regions into the
/// next.
pub const MAX_DATA_BUFS: usize = SEG_MAX + 8;
const _: () = assert!(
    MAX_DATA_BUFS <= 254,
    "QEMU's virtio-blk takes 254 (seg_max)"
);
/// Bytes of zeros the driver keeps for writing zeros where the device has
/// no WRITE_ZEROES (each data buffer of such a write points at them).
pub const ZEROS: u64 = 64 * 1024;
const _: () = assert!(MAX_DATA_BUFS as u64 * ZEROS >= MAX_REQUEST_BYTES);

/// The features this driver takes when offered.
const WANTED: u64 = features::SEG_MAX
    | features::RO
    | features::FLUSH
    | features::DISCARD
    | features::WRITE_ZEROES
    | feature::INDIRECT_DESC
    | feature::VERSION_1;
/// The features it cannot do without.
const REQUIRED: u64 = feature::INDIRECT_DESC | feature::VERSION_1;

/// virtio-blk configuration offsets (§5.2.4).
mod config {
    pub const CAPACITY: u64 = 0x00;
    pub const SEG_MAX: u64 = 0x0c;
    pub const MAX_DISCARD_SECTORS: u64 = 0x24;
    pub const MAX_WRITE_ZEROES_SECTORS: u64 = 0x30;
}

/// Ring entries, a power of two: more than the slots need, because a
/// descriptor chain (an indirect table's too) may not be longer than the
/// queue (§2.7.5.2): a read or write's table has up to MAX_DATA_BUFS + 2
/// entries (header, data, status), a discard's or write-zeroes' 3 (header,
/// range, status).
const QUEUE_SIZE: u16 = 256;
const _: () = assert!(MAX_DATA_BUFS + 2 <= QUEUE_SIZE as usize);
/// Per slot: header at 0, discard/write-zeroes range at 16, status byte at
/// 32, indirect table (header, range, data buffers, status) from 64.
const SLOT_BYTES: u64 = 4096;
const _: () = assert!(TABLE_AT + 16 * (MAX_DATA_BUFS as u64 + 3) <= SLOT_BYTES);
const TABLE_AT: u64 = 64;
/// Boot-time reads (the GPT) and the hypervisor's own writes go through
/// this many bytes.
const SCRATCH: u64 = 4096;
/// The status byte before the device writes it.
const UNWRITTEN: u8 = 0xff;

pub struct PhysicalDisk {
    transport: Transport,
    dma: DmaRegion,
    queue: DriverQueue,
    capacity: u64,
    read_only: bool,
    flush: bool,
    max_discard: u32,
    max_write_zeroes: u32,
}

/// What a physical request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Read { lba: u64 },
    Write { lba: u64 },
    Flush,
    Discard { lba: u64, sectors: u32 },
    WriteZeroes { lba: u64, sectors: u32, unmap: bool },
}

impl PhysicalDisk {
    /// Initialises the virtio-blk device in the virtio-mmio frame at `base`.
    pub fn open(base: u64, size: u64) -> Result<PhysicalDisk, String> {
        let transport = Transport::open(base, size, id::BLOCK, "virtio-blk", WANTED, REQUIRED)?;
        let features = transport.features();
        let config32 = |at: u64| transport.config32(at);
        let seg_max = if features & features::SEG_MAX != 0 {
            config32(config::SEG_MAX)
        } else {
            1
        };
        // A request's data buffers plus header and status in its indirect
        // table: the device must take them in one request.
        if (seg_max as usize) < MAX_DATA_BUFS {
            return Err(format!(
                "virtio-blk at {base:#x} takes {seg_max} segments per request, the mediator needs {MAX_DATA_BUFS}"
            ));
        }

        let rings = DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(64);
        let slots = SLOT_BYTES * (OWN_SLOT as u64 + 1);
        let bytes = rings + slots + SCRATCH + ZEROS;
        let dma = DmaRegion::alloc(bytes as usize)
            .ok_or_else(|| format!("no memory for the disk's {bytes}-byte DMA area"))?;
        let queue = DriverQueue::new(QUEUE_SIZE, dma.base(), &dma)
            .map_err(|e| format!("queue memory {e:?}"))?;
        transport.set_queue(0, &queue)?;
        transport.driver_ok();

        let capacity =
            u64::from(config32(config::CAPACITY)) | u64::from(config32(config::CAPACITY + 4)) << 32;
        let limit = |bit: u64, at: u64| if features & bit != 0 { config32(at) } else { 0 };
        Ok(PhysicalDisk {
            capacity,
            read_only: features & features::RO != 0,
            flush: features & features::FLUSH != 0,
            max_discard: limit(features::DISCARD, config::MAX_DISCARD_SECTORS),
            max_write_zeroes: limit(features::WRITE_ZEROES, config::MAX_WRITE_ZEROES_SECTORS),
            transport,
            dma,
            queue,
        })
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.capacity
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether writes may be cached until a FLUSH (without FLUSH every
    /// completed write is durable and a flush is a no-op).
    pub fn has_flush(&self) -> bool {
        self.flush
    }

    /// Sectors one DISCARD may cover; 0: the device has no DISCARD.
    pub fn max_discard_sectors(&self) -> u32 {
        self.max_discard
    }

    /// Sectors one WRITE_ZEROES may cover; 0: the device has none, and
    /// zeros are written from [`Self::zero_bufs`].
    pub fn max_write_zeroes_sectors(&self) -> u32 {
        self.max_write_zeroes
    }

    fn rings_bytes() -> u64 {
        DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(64)
    }

    fn slot_base(&self, slot: usize) -> u64 {
        self.dma.base() + Self::rings_bytes() + SLOT_BYTES * slot as u64
    }

    fn scratch(&self) -> u64 {
        self.dma.base() + Self::rings_bytes() + SLOT_BYTES * (OWN_SLOT as u64 + 1)
    }

    /// Data buffers that write `bytes` of zeros (at most
    /// `MAX_DATA_BUFS` × [`ZEROS`]), all pointing at the driver's zeros.
    pub fn zero_bufs(&self, bytes: u64) -> heapless::Vec<Buf, MAX_DATA_BUFS> {
        let zeros = self.scratch() + SCRATCH;
        let mut bufs = heapless::Vec::new();
        let mut left = bytes;
        while left > 0 {
            let len = left.min(ZEROS);
            if bufs
                .push(Buf {
                    addr: zeros,
                    len: len as u32,
                    device_writes: false,
                })
                .is_err()
            {
                break;
            }
            left -= len;
        }
        bufs
    }

    /// Sends `request` in `slot` (free: its previous request is done), with
    /// `data` as its data buffers (device-writable ones for a read); returns
    /// the ring id its completion will carry.
    pub fn submit(&mut self, slot: usize, request: Request, data: &[Buf]) -> Result<u16, String> {
        if slot > OWN_SLOT || data.len() > MAX_DATA_BUFS {
            return Err(format!("slot {slot} with {} data buffers", data.len()));
        }
        let at = self.slot_base(slot);
        let (kind, sector, range) = match request {
            Request::Read { lba } => (req::IN, lba, None),
            Request::Write { lba } => (req::OUT, lba, None),
            Request::Flush => (req::FLUSH, 0, None),
            Request::Discard { lba, sectors } => {
                (req::DISCARD, 0, Some(blk_range(lba, sectors, false)))
            }
            Request::WriteZeroes {
                lba,
                sectors,
                unmap,
            } => (req::WRITE_ZEROES, 0, Some(blk_range(lba, sectors, unmap))),
        };
        let mem = &self.dma;
        let err = |e| format!("DMA area: {e:?}");
        mem.write(at, &blk_header(kind, sector)).map_err(err)?;
        mem.write(at + 32, &[UNWRITTEN]).map_err(err)?;
        let header = Buf {
            addr: at,
            len: 16,
            device_writes: false,
        };
        let range_buf = Buf {
            addr: at + 16,
            len: 16,
            device_writes: false,
        };
        // The header, and for a discard or write-zeroes its range.
        let head = [header, range_buf];
        let head: &[Buf] = match range {
            Some(range) => {
                mem.write(at + 16, &range).map_err(err)?;
                &head
            }
            None => &head[..1],
        };
        let status = Buf {
            addr: at + 32,
            len: 1,
            device_writes: true,
        };
        let id = self
            .queue
            .add_parts(at + TABLE_AT, &[head, data, &[status]], &self.dma)
            .map_err(|e| format!("queue: {e:?}"))?;
        if self.queue.should_notify(&self.dma) {
            self.transport.notify(0);
        }
        Ok(id)
    }

    /// Starts the hypervisor's own write of `bytes` (whole sectors, at
    /// most [`OWN_BYTES`]) at `lba`, in [`OWN_SLOT`] through the scratch
    /// area: the slot's previous request must be done. Returns the ring id
    /// its completion will carry.
    pub fn write_own(&mut self, lba: u64, bytes: &[u8]) -> Result<u16, String> {
        if bytes.len() > OWN_BYTES || !(bytes.len() as u64).is_multiple_of(SECTOR) {
            return Err(format!("own write of {} bytes", bytes.len()));
        }
        let scratch = self.scratch();
        self.dma
            .write(scratch, bytes)
            .map_err(|e| format!("DMA area: {e:?}"))?;
        let data = [Buf {
            addr: scratch,
            len: bytes.len() as u32,
            device_writes: false,
        }];
        self.submit(OWN_SLOT, Request::Write { lba }, &data)
    }

    /// The ring id of the next request the device has finished, if any.
    pub fn take_used(&mut self) -> Option<u16> {
        loop {
            match self.queue.pop_used(&self.dma) {
                Ok(used) => return used.map(|u| u.id),
                Err(e) => log::error!(
                    "disk at {:#x} returned a request it was not given ({e:?})",
                    self.transport.base()
                ),
            }
        }
    }

    /// The status byte of `slot`'s request, once done (0 OK, 1 IOERR,
    /// 2 UNSUPP; the unwritten marker if the device wrote none).
    pub fn status(&self, slot: usize) -> u8 {
        let mut s = [UNWRITTEN];
        let _ = self.dma.read(self.slot_base(slot) + 32, &mut s);
        s[0]
    }

    /// Lowers the device's interrupt line.
    pub fn ack_interrupt(&self) {
        self.transport.ack_interrupt();
    }

    /// Blocking read of whole sectors through the scratch area, in slot
    /// 0: for boot (the GPT), before any partition's request.
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), String> {
        let scratch = self.scratch();
        for (i, chunk) in buf.chunks_mut(SCRATCH as usize).enumerate() {
            let at = lba + i as u64 * (SCRATCH / SECTOR);
            let data = [Buf {
                addr: scratch,
                len: chunk.len() as u32,
                device_writes: true,
            }];
            let id = self.submit(0, Request::Read { lba: at }, &data)?;
            let done = loop {
                if let Some(done) = self.take_used() {
                    break done;
                }
                core::hint::spin_loop();
            };
            if done != id || self.status(0) != 0 {
                return Err(format!("read at LBA {at}: status {}", self.status(0)));
            }
            self.dma
                .read(scratch, chunk)
                .map_err(|e| format!("DMA area: {e:?}"))?;
        }
        Ok(())
    }

    /// Finds the GPT partition called `name`.
    pub fn gpt_extent(&mut self, name: &str) -> Result<Option<Extent>, String> {
        let mut sector = [0u8; SECTOR as usize];
        self.read(0, &mut sector)?;
        gpt::check_protective_mbr(&sector).map_err(|e| format!("GPT: {e}"))?;
        self.read(1, &mut sector)?;
        let header = Header::parse(&sector).map_err(|e| format!("GPT: {e}"))?;
        header
            .check_disk_size(self.sectors())
            .map_err(|e| format!("GPT: {e}"))?;
        let mut entries = alloc::vec![0u8; header.entries_sectors() as usize * SECTOR as usize];
        self.read(header.entries_lba(), &mut entries)?;
        gpt::find_by_name(&header, &entries[..header.entries_len()], name)
            .map_err(|e| format!("GPT: {e}"))
    }
}
