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

use crate::arch::dma::{self, DmaRegion};
use crate::arch::mmio::Registers;
use alloc::format;
use alloc::string::String;
use shared_devices::gpt::{self, Extent, Header};
use shared_devices::virtio::blk::{features, req};
use shared_devices::virtio::device::feature;
use shared_devices::virtio::driver::{Buf, DriverQueue, blk_header, blk_range};
use shared_devices::virtio::memory::GuestMemory;
use shared_devices::virtio::mmio::{MAGIC, status};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// A virtio-mmio (version 2) transport's registers, from the driver's
    /// side (VIRTIO 1.2 §4.2.2); the same layout as the device model's
    /// `shared_devices::virtio::mmio::reg`.
    pub VirtioMmio {
        (0x000 => pub magic_value: ReadOnly<u32>),
        (0x004 => pub version: ReadOnly<u32>),
        (0x008 => pub device_id: ReadOnly<u32>),
        (0x00c => pub vendor_id: ReadOnly<u32>),
        (0x010 => pub device_features: ReadOnly<u32>),
        (0x014 => pub device_features_sel: WriteOnly<u32>),
        (0x018 => _reserved0),
        (0x020 => pub driver_features: WriteOnly<u32>),
        (0x024 => pub driver_features_sel: WriteOnly<u32>),
        (0x028 => _reserved1),
        (0x030 => pub queue_sel: WriteOnly<u32>),
        (0x034 => pub queue_num_max: ReadOnly<u32>),
        (0x038 => pub queue_num: WriteOnly<u32>),
        (0x03c => _reserved2),
        (0x044 => pub queue_ready: ReadWrite<u32>),
        (0x048 => _reserved3),
        (0x050 => pub queue_notify: WriteOnly<u32>),
        (0x054 => _reserved4),
        (0x060 => pub interrupt_status: ReadOnly<u32>),
        (0x064 => pub interrupt_ack: WriteOnly<u32>),
        (0x068 => _reserved5),
        (0x070 => pub status: ReadWrite<u32>),
        (0x074 => _reserved6),
        /// Descriptor area, low and high 32 bits.
        (0x080 => pub queue_desc: [WriteOnly<u32>; 2]),
        (0x088 => _reserved7),
        /// Driver (available) area, low and high.
        (0x090 => pub queue_driver: [WriteOnly<u32>; 2]),
        (0x098 => _reserved8),
        /// Device (used) area, low and high.
        (0x0a0 => pub queue_device: [WriteOnly<u32>; 2]),
        (0x0a8 => _reserved9),
        (0x0fc => pub config_generation: ReadOnly<u32>),
        /// Device configuration space (as much of it as a 0x200-byte frame
        /// holds; virtio-blk's is smaller).
        (0x100 => pub config: [ReadOnly<u32>; 64]),
        (0x200 => @END),
    }
}

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Requests in flight at most (slots).
pub const SLOTS: usize = 4;
/// Data buffers one request may have.
pub const MAX_DATA_BUFS: usize = 64;
/// Bytes of zeros the driver keeps for writing zeros where the device has
/// no WRITE_ZEROES (each data buffer of such a write points at them).
pub const ZEROS: u64 = 64 * 1024;

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
/// queue (§2.7.5.3.1), and a request's table has up to MAX_DATA_BUFS + 3.
const QUEUE_SIZE: u16 = 128;
/// Per slot: header at 0, discard/write-zeroes range at 16, status byte at
/// 32, indirect table (header, range, data buffers, status) from 64.
const SLOT_BYTES: u64 = 2048;
const TABLE_AT: u64 = 64;
/// Boot-time reads (the GPT) go through this many bytes.
const SCRATCH: u64 = 4096;
/// The status byte before the device writes it.
const UNWRITTEN: u8 = 0xff;

pub struct PhysicalDisk {
    regs: Registers<VirtioMmio>,
    dma: DmaRegion,
    queue: DriverQueue,
    capacity: u64,
    read_only: bool,
    flush: bool,
    max_discard: u32,
    max_write_zeroes: u32,
}

/// 32 bits of the device's configuration space at byte offset `at`
/// (aligned; 0 outside the frame).
fn config32(regs: &VirtioMmio, at: u64) -> u32 {
    debug_assert!(at.is_multiple_of(4));
    regs.config.get((at / 4) as usize).map_or(0, Readable::get)
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
        let regs = Registers::<VirtioMmio>::new(base, size).ok_or_else(|| {
            format!("virtio-mmio at {base:#x}: {size:#x}-byte frame is not device registers of 0x200 bytes")
        })?;
        let (magic, version, device) = (
            regs.magic_value.get(),
            regs.version.get(),
            regs.device_id.get(),
        );
        if magic != MAGIC || version != 2 || device != 2 {
            return Err(format!(
                "virtio-mmio at {base:#x}: not a version 2 block device (magic {magic:#x}, version {version}, device {device}){}",
                if version == 1 {
                    "; QEMU needs -global virtio-mmio.force-legacy=false"
                } else {
                    ""
                }
            ));
        }
        let set_status = |s: u32| {
            dma::publish();
            regs.status.set(s);
        };
        set_status(0);
        set_status(status::ACKNOWLEDGE);
        set_status(status::ACKNOWLEDGE | status::DRIVER);
        regs.device_features_sel.set(0);
        let low = regs.device_features.get();
        regs.device_features_sel.set(1);
        let offered = u64::from(regs.device_features.get()) << 32 | u64::from(low);
        let features = offered & WANTED;
        if features & REQUIRED != REQUIRED {
            set_status(status::FAILED);
            return Err(format!(
                "virtio-blk at {base:#x} lacks VERSION_1 or INDIRECT_DESC (features {offered:#x})"
            ));
        }
        regs.driver_features_sel.set(0);
        regs.driver_features.set(features as u32);
        regs.driver_features_sel.set(1);
        regs.driver_features.set((features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        set_status(s);
        if regs.status.get() & status::FEATURES_OK == 0 {
            return Err(format!(
                "virtio-blk at {base:#x} refused features {features:#x}"
            ));
        }

        let config32 = |at: u64| config32(&regs, at);
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
        let slots = SLOT_BYTES * SLOTS as u64;
        let bytes = rings + slots + SCRATCH + ZEROS;
        let dma = DmaRegion::alloc(bytes as usize)
            .ok_or_else(|| format!("no memory for the disk's {bytes}-byte DMA area"))?;
        let queue = DriverQueue::new(QUEUE_SIZE, dma.base(), &dma)
            .map_err(|e| format!("queue memory {e:?}"))?;
        regs.queue_sel.set(0);
        let max = regs.queue_num_max.get();
        if max < u32::from(QUEUE_SIZE) {
            return Err(format!(
                "virtio-blk at {base:#x}: queue of {max} entries, need {QUEUE_SIZE}"
            ));
        }
        regs.queue_num.set(u32::from(QUEUE_SIZE));
        // The rings are initialised in `dma`: published before the device
        // learns where they are.
        dma::publish();
        for (reg, addr) in [
            (&regs.queue_desc, queue.desc_addr()),
            (&regs.queue_driver, queue.avail_addr()),
            (&regs.queue_device, queue.used_addr()),
        ] {
            reg[0].set(addr as u32);
            reg[1].set((addr >> 32) as u32);
        }
        regs.queue_ready.set(1);
        set_status(s | status::DRIVER_OK);

        let capacity =
            u64::from(config32(config::CAPACITY)) | u64::from(config32(config::CAPACITY + 4)) << 32;
        let limit = |bit: u64, at: u64| if features & bit != 0 { config32(at) } else { 0 };
        Ok(PhysicalDisk {
            capacity,
            read_only: features & features::RO != 0,
            flush: features & features::FLUSH != 0,
            max_discard: limit(features::DISCARD, config::MAX_DISCARD_SECTORS),
            max_write_zeroes: limit(features::WRITE_ZEROES, config::MAX_WRITE_ZEROES_SECTORS),
            regs,
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
        self.dma.base() + Self::rings_bytes() + SLOT_BYTES * SLOTS as u64
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
        if slot >= SLOTS || data.len() > MAX_DATA_BUFS {
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
        let mut bufs: heapless::Vec<Buf, { MAX_DATA_BUFS + 3 }> = heapless::Vec::new();
        let header = Buf {
            addr: at,
            len: 16,
            device_writes: false,
        };
        let _ = bufs.push(header);
        if let Some(range) = range {
            mem.write(at + 16, &range).map_err(err)?;
            let _ = bufs.push(Buf {
                addr: at + 16,
                len: 16,
                device_writes: false,
            });
        }
        for b in data {
            let _ = bufs.push(*b);
        }
        let _ = bufs.push(Buf {
            addr: at + 32,
            len: 1,
            device_writes: true,
        });
        let id = self
            .queue
            .add(at + TABLE_AT, &bufs, &self.dma)
            .map_err(|e| format!("queue: {e:?}"))?;
        if self.queue.should_notify(&self.dma) {
            // The request and the ring entry reach the device first.
            dma::publish();
            self.regs.queue_notify.set(0);
        }
        Ok(id)
    }

    /// The ring id of the next request the device has finished, if any.
    pub fn take_used(&mut self) -> Option<u16> {
        loop {
            match self.queue.pop_used(&self.dma) {
                Ok(used) => return used.map(|u| u.id),
                Err(e) => log::error!(
                    "disk at {:#x} returned a request it was not given ({e:?})",
                    self.regs.base()
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
        let pending = self.regs.interrupt_status.get();
        dma::publish();
        self.regs.interrupt_ack.set(pending);
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use shared_devices::virtio::mmio::reg;

    /// The driver's view of the transport and the device model's agree.
    #[test]
    fn register_layout_matches_the_device_model() {
        let at = |offset: usize| offset as u64;
        assert_eq!(at(offset_of!(VirtioMmio, magic_value)), reg::MAGIC_VALUE);
        assert_eq!(at(offset_of!(VirtioMmio, version)), reg::VERSION);
        assert_eq!(at(offset_of!(VirtioMmio, device_id)), reg::DEVICE_ID);
        assert_eq!(at(offset_of!(VirtioMmio, vendor_id)), reg::VENDOR_ID);
        assert_eq!(
            at(offset_of!(VirtioMmio, device_features)),
            reg::DEVICE_FEATURES
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, device_features_sel)),
            reg::DEVICE_FEATURES_SEL
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, driver_features)),
            reg::DRIVER_FEATURES
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, driver_features_sel)),
            reg::DRIVER_FEATURES_SEL
        );
        assert_eq!(at(offset_of!(VirtioMmio, queue_sel)), reg::QUEUE_SEL);
        assert_eq!(
            at(offset_of!(VirtioMmio, queue_num_max)),
            reg::QUEUE_NUM_MAX
        );
        assert_eq!(at(offset_of!(VirtioMmio, queue_num)), reg::QUEUE_NUM);
        assert_eq!(at(offset_of!(VirtioMmio, queue_ready)), reg::QUEUE_READY);
        assert_eq!(at(offset_of!(VirtioMmio, queue_notify)), reg::QUEUE_NOTIFY);
        assert_eq!(
            at(offset_of!(VirtioMmio, interrupt_status)),
            reg::INTERRUPT_STATUS
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, interrupt_ack)),
            reg::INTERRUPT_ACK
        );
        assert_eq!(at(offset_of!(VirtioMmio, status)), reg::STATUS);
        assert_eq!(at(offset_of!(VirtioMmio, queue_desc)), reg::QUEUE_DESC_LOW);
        assert_eq!(
            at(offset_of!(VirtioMmio, queue_driver)),
            reg::QUEUE_DRIVER_LOW
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, queue_device)),
            reg::QUEUE_DEVICE_LOW
        );
        assert_eq!(
            at(offset_of!(VirtioMmio, config_generation)),
            reg::CONFIG_GENERATION
        );
        assert_eq!(at(offset_of!(VirtioMmio, config)), reg::CONFIG);
    }

    /// Against a device that answers 0 (the fake's zeroed registers), open
    /// fails on the magic value and leaves the status reset.
    #[test]
    fn open_refuses_what_is_not_a_virtio_device() {
        crate::arch::fake::reset_machine();
        let base = 0x0a00_3e00;
        let err = PhysicalDisk::open(base, 0x200).err().unwrap();
        assert!(err.contains("not a version 2 block device"), "{err}");
        assert!(PhysicalDisk::open(base, 0x100).is_err(), "frame too small");
        let regs = Registers::<VirtioMmio>::new(base, 0x200).unwrap();
        assert_eq!(regs.status.get(), 0);
    }
}
