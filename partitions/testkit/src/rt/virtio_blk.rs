//! A minimal polled virtio-blk driver on virtio-mmio version 2.
//!
//! One split virtqueue of at most [`QUEUE_SIZE`] entries and one request at
//! a time: the header, the data (at most [`DATA_BYTES`]) and the status byte
//! each sit in a buffer of the static [`Dma`] area in .bss, always in
//! descriptors 0, 1 and 2. The MMU is off, so an address in the area is
//! also its guest-physical address, and every access to it is a Device
//! access: all of them are naturally aligned (the rings through volatile
//! accesses of their own width).
//!
//! Completion is polled (the available ring asks for no interrupts; any
//! interrupt the device raises anyway is acknowledged), with a time limit;
//! while polling the driver also watches the device status for
//! DEVICE_NEEDS_RESET. Every failure is a value ([`BlkError`]), never a
//! panic: a request past the end of the disk must come back as an error.
//!
//! The guest's accesses do not allocate in the data caches (MMU off), but a
//! device model running with caches on may: before each notification and
//! after each completion the driver cleans and invalidates the shared area
//! by address (`dc civac`), so stale cache lines never hide what either
//! side wrote.
//!
//! Besides read, write, flush and GET_ID, the `raw_*` functions let a
//! hostile test (`blkfuzz`) put arbitrary descriptors and ring entries in
//! front of the device.

use super::cache::{barrier, dcache_clean_invalidate};
use super::{device_tree, mmio, timer};
use crate::dt::{self, VirtioMmio};
use crate::virtio::{
    self, AVAIL_F_NO_INTERRUPT, BlkError, DEVICE_ID_BLOCK, ID_BYTES, InitError, SECTOR, blk_config,
    blk_status, desc, feature, reg, req, status,
};
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

/// Most entries of the driver's queue (fewer if the device offers fewer).
pub const QUEUE_SIZE: u16 = 16;
const Q: usize = QUEUE_SIZE as usize;
/// Largest data transfer of one request.
pub const DATA_BYTES: usize = 8 * SECTOR;
/// Default time limit of a request.
pub const TIMEOUT_MS: u64 = 2000;
/// Time limit of a reset (Status reading back 0).
const RESET_TIMEOUT_MS: u64 = 100;
/// Status byte value before the device writes one.
const STATUS_UNWRITTEN: u8 = 0xff;

/// A split virtqueue descriptor (§2.7.5).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

#[repr(C, align(64))]
struct Avail {
    flags: u16,
    idx: u16,
    ring: [u16; Q],
    used_event: u16,
}

/// One used ring entry: the head of the chain returned and the bytes the
/// device says it wrote.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsedElem {
    pub id: u32,
    pub len: u32,
}

#[repr(C, align(64))]
struct Used {
    flags: u16,
    idx: u16,
    ring: [UsedElem; Q],
    avail_event: u16,
}

#[repr(C, align(64))]
struct Line<T>(T);

/// Everything the device reads or writes: rings and request buffers, each
/// on cache lines of its own.
#[repr(C, align(4096))]
pub struct Dma {
    desc: [Desc; Q],
    avail: Avail,
    used: Used,
    header: Line<[u8; 16]>,
    status: Line<u8>,
    data: Line<[u8; DATA_BYTES]>,
}

/// The one DMA area (in .bss: zero at boot).
static mut DMA: Dma = unsafe { core::mem::zeroed() };
static DMA_TAKEN: AtomicBool = AtomicBool::new(false);

/// What a virtio-mmio transport reports about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub magic: u32,
    pub version: u32,
    pub device: u32,
}

/// Reads MagicValue, Version and DeviceID of the transport at `base`.
///
/// # Safety
/// `base` must be a virtio-mmio register window (from the device tree).
pub unsafe fn identify(base: usize) -> Identity {
    // SAFETY: the caller vouches for the window; these reads have no effect.
    unsafe {
        Identity {
            magic: mmio::read32(base + reg::MAGIC),
            version: mmio::read32(base + reg::VERSION),
            device: mmio::read32(base + reg::DEVICE_ID),
        }
    }
}

/// The result of looking for a block device in the device tree.
#[derive(Clone, Copy, Debug)]
pub enum Found {
    /// The first (in DT order) virtio-mmio version 2 block device.
    Device(VirtioMmio),
    /// None, but a legacy (version 1) block device at this base: QEMU
    /// needs `-global virtio-mmio.force-legacy=false`.
    LegacyOnly(usize),
    /// No block device at all (transports probed).
    Nothing(usize),
}

/// Probes every `virtio,mmio` node of the device tree for a block device.
pub fn find() -> Found {
    let dt = device_tree();
    let mut legacy = None;
    let mut probed = 0;
    for node in dt::virtio_mmio(&dt) {
        probed += 1;
        // SAFETY: a virtio-mmio window named by the device tree.
        let id = unsafe { identify(node.base) };
        if id.magic != virtio::MAGIC || id.device != DEVICE_ID_BLOCK {
            continue;
        }
        if id.version == virtio::VERSION_2 {
            return Found::Device(node);
        }
        legacy.get_or_insert(node.base);
    }
    match legacy {
        Some(base) => Found::LegacyOnly(base),
        None => Found::Nothing(probed),
    }
}

/// A virtio-blk device brought up on its transport.
pub struct VirtioBlk {
    node: VirtioMmio,
    dma: *mut Dma,
    queue_size: u16,
    /// Next free available ring index (free-running).
    avail_idx: u16,
    /// Next used ring index to look at (free-running).
    used_idx: u16,
    features: u64,
    capacity: u64,
    blk_size: u32,
    timeout_ms: u64,
}

impl VirtioBlk {
    /// Takes the DMA area and initialises the device at `node`. Only one
    /// device can be open (the area is static); a second call fails with
    /// `InitError::InUse`. On an error the device is left FAILED (or reset)
    /// and the area stays taken.
    pub fn open(node: VirtioMmio) -> Result<VirtioBlk, InitError> {
        if DMA_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(InitError::InUse);
        }
        let mut blk = VirtioBlk {
            node,
            dma: &raw mut DMA,
            queue_size: 0,
            avail_idx: 0,
            used_idx: 0,
            features: 0,
            capacity: 0,
            blk_size: SECTOR as u32,
            timeout_ms: TIMEOUT_MS,
        };
        blk.init()?;
        Ok(blk)
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: a register of this transport (window from the DT).
        unsafe { mmio::read32(self.node.base + offset) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as for `read_reg`.
        unsafe { mmio::write32(self.node.base + offset, value) }
    }

    /// The transport this driver runs.
    pub fn node(&self) -> VirtioMmio {
        self.node
    }

    /// The device status register.
    pub fn device_status(&self) -> u32 {
        self.read_reg(reg::STATUS)
    }

    /// Resets the device (Status = 0) and waits for it to read back 0.
    pub fn reset(&mut self) -> Result<(), InitError> {
        self.write_reg(reg::STATUS, 0);
        let deadline = timer::counter() + timer::ms_to_ticks(RESET_TIMEOUT_MS);
        loop {
            let s = self.device_status();
            if s == 0 {
                return Ok(());
            }
            if timer::counter() > deadline {
                return Err(InitError::ResetStuck(s));
            }
            core::hint::spin_loop();
        }
    }

    /// Resets and initialises the device (§3.1.1, §4.2.3.2): negotiates
    /// features, sets up queue 0 with empty rings and sets DRIVER_OK. Also
    /// the way back from DEVICE_NEEDS_RESET.
    pub fn init(&mut self) -> Result<(), InitError> {
        // SAFETY: a transport from the DT; reads only.
        let id = unsafe { identify(self.node.base) };
        if id.magic != virtio::MAGIC
            || id.version != virtio::VERSION_2
            || id.device != DEVICE_ID_BLOCK
        {
            return Err(InitError::NotVirtioBlkV2 {
                magic: id.magic,
                version: id.version,
                device: id.device,
            });
        }
        self.reset()?;
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE);
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);

        self.write_reg(reg::DEVICE_FEATURES_SEL, 0);
        let low = self.read_reg(reg::DEVICE_FEATURES);
        self.write_reg(reg::DEVICE_FEATURES_SEL, 1);
        let high = self.read_reg(reg::DEVICE_FEATURES);
        let offered = u64::from(high) << 32 | u64::from(low);
        if offered & feature::VERSION_1 == 0 {
            self.fail();
            return Err(InitError::NoVersion1);
        }
        self.features = offered & feature::ACCEPTED;
        self.write_reg(reg::DRIVER_FEATURES_SEL, 0);
        self.write_reg(reg::DRIVER_FEATURES, self.features as u32);
        self.write_reg(reg::DRIVER_FEATURES_SEL, 1);
        self.write_reg(reg::DRIVER_FEATURES, (self.features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, s);
        let back = self.device_status();
        if back & status::FEATURES_OK == 0 {
            self.fail();
            return Err(InitError::FeaturesRejected(back));
        }

        self.write_reg(reg::QUEUE_SEL, 0);
        let num_max = self.read_reg(reg::QUEUE_NUM_MAX);
        let ready = self.read_reg(reg::QUEUE_READY);
        if num_max == 0 || ready != 0 {
            self.fail();
            return Err(InitError::Queue { num_max, ready });
        }
        // The largest power of two both sides can do.
        let limit = num_max.min(u32::from(QUEUE_SIZE));
        self.queue_size = 1 << (31 - limit.leading_zeros());
        self.clear_rings();
        self.write_reg(reg::QUEUE_NUM, u32::from(self.queue_size));
        let dma = self.dma;
        // SAFETY: only addresses are taken.
        let (d, a, u) = unsafe {
            (
                addr_of!((*dma).desc) as u64,
                addr_of!((*dma).avail) as u64,
                addr_of!((*dma).used) as u64,
            )
        };
        for (low, value) in [
            (reg::QUEUE_DESC_LOW, d),
            (reg::QUEUE_DRIVER_LOW, a),
            (reg::QUEUE_DEVICE_LOW, u),
        ] {
            self.write_reg(low, value as u32);
            self.write_reg(low + 4, (value >> 32) as u32);
        }
        self.write_reg(reg::QUEUE_READY, 1);
        self.write_reg(reg::STATUS, s | status::DRIVER_OK);

        self.capacity = self.read_capacity();
        self.blk_size = if self.features & feature::BLK_BLK_SIZE != 0 {
            self.read_reg(reg::CONFIG + blk_config::BLK_SIZE)
        } else {
            SECTOR as u32
        };
        Ok(())
    }

    fn fail(&self) {
        let s = self.device_status();
        self.write_reg(reg::STATUS, s | status::FAILED);
    }

    /// Empty rings (and no interrupts wanted), the driver's indices at 0.
    fn clear_rings(&mut self) {
        let dma = self.dma;
        // SAFETY: the device is reset (not using the area); everything
        // written is the driver's own memory, with aligned stores.
        unsafe {
            for i in 0..Q {
                write_volatile(addr_of_mut!((*dma).desc[i]), Desc::default());
                write_volatile(addr_of_mut!((*dma).avail.ring[i]), 0);
                write_volatile(addr_of_mut!((*dma).used.ring[i]), UsedElem::default());
            }
            write_volatile(addr_of_mut!((*dma).avail.flags), AVAIL_F_NO_INTERRUPT);
            write_volatile(addr_of_mut!((*dma).avail.idx), 0);
            write_volatile(addr_of_mut!((*dma).avail.used_event), 0);
            write_volatile(addr_of_mut!((*dma).used.flags), 0);
            write_volatile(addr_of_mut!((*dma).used.idx), 0);
            write_volatile(addr_of_mut!((*dma).used.avail_event), 0);
        }
        self.avail_idx = 0;
        self.used_idx = 0;
        self.sync_all();
    }

    /// `capacity` from the configuration space, consistent per
    /// ConfigGeneration.
    pub fn read_capacity(&self) -> u64 {
        let mut value = 0;
        for _ in 0..16 {
            let generation = self.read_reg(reg::CONFIG_GENERATION);
            let low = self.read_reg(reg::CONFIG + blk_config::CAPACITY);
            let high = self.read_reg(reg::CONFIG + blk_config::CAPACITY + 4);
            value = u64::from(high) << 32 | u64::from(low);
            if self.read_reg(reg::CONFIG_GENERATION) == generation {
                break;
            }
        }
        value
    }

    /// The most sectors one DISCARD may cover (0 unless offered).
    pub fn max_discard_sectors(&self) -> u32 {
        if self.features & feature::BLK_DISCARD == 0 {
            return 0;
        }
        self.read_reg(reg::CONFIG + blk_config::MAX_DISCARD_SECTORS)
    }

    /// The most sectors one WRITE_ZEROES may cover (0 unless offered).
    pub fn max_write_zeroes_sectors(&self) -> u32 {
        if self.features & feature::BLK_WRITE_ZEROES == 0 {
            return 0;
        }
        self.read_reg(reg::CONFIG + blk_config::MAX_WRITE_ZEROES_SECTORS)
    }

    /// Disk size in 512-byte sectors (as read at initialisation).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The device's logical block size (512 unless it says otherwise).
    pub fn blk_size(&self) -> u32 {
        self.blk_size
    }

    /// The features negotiated.
    pub fn features(&self) -> u64 {
        self.features
    }

    pub fn read_only(&self) -> bool {
        self.features & feature::BLK_RO != 0
    }

    /// Whether FLUSH was negotiated (without it, writes are durable when
    /// they complete and `flush` does nothing).
    pub fn flush_supported(&self) -> bool {
        self.features & feature::BLK_FLUSH != 0
    }

    /// The entries of the live queue.
    pub fn queue_size(&self) -> u16 {
        self.queue_size
    }

    /// Time limit of each request from now on.
    pub fn set_timeout_ms(&mut self, ms: u64) {
        self.timeout_ms = ms;
    }

    /// Reads `buf.len() / 512` sectors from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        check_len(buf.len())?;
        self.request(req::IN, sector, Data::In(buf.len()))?;
        self.copy_data_out(buf);
        Ok(())
    }

    /// Writes `buf` (whole sectors) from `sector` on.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        check_len(buf.len())?;
        self.request(req::OUT, sector, Data::Out(buf))?;
        Ok(())
    }

    /// Makes completed writes durable (nothing to do without FLUSH).
    pub fn flush(&mut self) -> Result<(), BlkError> {
        if !self.flush_supported() {
            return Ok(());
        }
        self.request(req::FLUSH, 0, Data::None)?;
        Ok(())
    }

    /// Makes `sectors` sectors from `sector` on read as zeroes
    /// (WRITE_ZEROES, which the device must have offered).
    pub fn write_zeroes(&mut self, sector: u64, sectors: u32) -> Result<(), BlkError> {
        let segment = virtio::range_segment(sector, sectors, 0);
        self.request(req::WRITE_ZEROES, 0, Data::Out(&segment))?;
        Ok(())
    }

    /// Tells the device `sectors` sectors from `sector` on are unused
    /// (DISCARD, which the device must have offered).
    pub fn discard(&mut self, sector: u64, sectors: u32) -> Result<(), BlkError> {
        let segment = virtio::range_segment(sector, sectors, 0);
        self.request(req::DISCARD, 0, Data::Out(&segment))?;
        Ok(())
    }

    /// The device ID string (GET_ID): up to 20 bytes, NUL-padded when
    /// shorter.
    pub fn get_id(&mut self) -> Result<[u8; ID_BYTES], BlkError> {
        self.request(req::GET_ID, 0, Data::In(ID_BYTES))?;
        let mut id = [0u8; ID_BYTES];
        self.copy_data_out(&mut id);
        Ok(id)
    }

    /// One request in descriptors 0 (header), 1 (data, if any) and 2
    /// (status); returns the used length.
    fn request(&mut self, kind: u32, sector: u64, data: Data<'_>) -> Result<u32, BlkError> {
        self.raw_header(&virtio::request_header(kind, sector));
        self.raw_set_status(STATUS_UNWRITTEN);
        let header = Desc {
            addr: self.header_addr(),
            len: 16,
            flags: desc::NEXT,
            next: 1,
        };
        let (data_len, data_flags) = match data {
            Data::None => (0, 0),
            Data::In(len) => (len, desc::WRITE),
            Data::Out(buf) => {
                self.raw_data(buf);
                (buf.len(), 0)
            }
        };
        let status = Desc {
            addr: self.status_addr(),
            len: 1,
            flags: desc::WRITE,
            next: 0,
        };
        if data_len == 0 {
            self.raw_desc(0, Desc { next: 2, ..header });
        } else {
            self.raw_desc(0, header);
            self.raw_desc(
                1,
                Desc {
                    addr: self.data_addr(),
                    len: data_len as u32,
                    flags: data_flags | desc::NEXT,
                    next: 2,
                },
            );
        }
        self.raw_desc(2, status);
        self.raw_publish(0);
        let used = self.raw_wait(self.timeout_ms)?;
        if used.id != 0 {
            return Err(BlkError::WrongChain(used.id));
        }
        match self.raw_status() {
            blk_status::OK => Ok(used.len),
            STATUS_UNWRITTEN => Err(BlkError::NoStatus),
            s => Err(BlkError::Status(s)),
        }
    }

    fn copy_data_out(&self, buf: &mut [u8]) {
        let len = buf.len().min(DATA_BYTES);
        // SAFETY: the device is done with the data buffer (the request
        // completed); plain copy from the driver's own memory.
        unsafe {
            core::ptr::copy_nonoverlapping(
                addr_of!((*self.dma).data.0).cast::<u8>(),
                buf.as_mut_ptr(),
                len,
            )
        };
    }

    fn sync_all(&self) {
        dcache_clean_invalidate(self.dma as usize, core::mem::size_of::<Dma>());
    }

    // ---- Raw access, for hostile tests --------------------------------

    /// Guest-physical address of the 16-byte header buffer.
    pub fn header_addr(&self) -> u64 {
        // SAFETY: only the address is taken.
        unsafe { addr_of!((*self.dma).header.0) as u64 }
    }

    /// Guest-physical address of the status byte.
    pub fn status_addr(&self) -> u64 {
        // SAFETY: only the address is taken.
        unsafe { addr_of!((*self.dma).status.0) as u64 }
    }

    /// Guest-physical address of the [`DATA_BYTES`] data buffer.
    pub fn data_addr(&self) -> u64 {
        // SAFETY: only the address is taken.
        unsafe { addr_of!((*self.dma).data.0) as u64 }
    }

    /// Writes descriptor `index` (of the driver's table of [`QUEUE_SIZE`]);
    /// the contents are not checked.
    pub fn raw_desc(&mut self, index: u16, d: Desc) {
        let i = usize::from(index) % Q;
        // SAFETY: an aligned store into the driver's descriptor table.
        unsafe { write_volatile(addr_of_mut!((*self.dma).desc[i]), d) };
    }

    /// Fills the header buffer.
    pub fn raw_header(&mut self, header: &[u8; 16]) {
        let mut words = [0u64; 2];
        for (w, chunk) in words.iter_mut().zip(header.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *w = u64::from_le_bytes(b);
        }
        // SAFETY: the header buffer is 64-byte aligned and 16 bytes long.
        unsafe {
            let p = addr_of_mut!((*self.dma).header.0).cast::<u64>();
            write_volatile(p, words[0]);
            write_volatile(p.add(1), words[1]);
        }
    }

    /// Sets the status byte (to see later whether the device wrote it).
    pub fn raw_set_status(&mut self, value: u8) {
        // SAFETY: a byte store into the driver's own buffer.
        unsafe { write_volatile(addr_of_mut!((*self.dma).status.0), value) };
    }

    /// The status byte as it is now.
    pub fn raw_status(&self) -> u8 {
        // SAFETY: a byte load from the driver's own buffer.
        unsafe { read_volatile(addr_of!((*self.dma).status.0)) }
    }

    /// Copies `buf` (at most [`DATA_BYTES`]) into the data buffer.
    pub fn raw_data(&mut self, buf: &[u8]) {
        let len = buf.len().min(DATA_BYTES);
        // SAFETY: the device does not use the data buffer between requests.
        unsafe {
            core::ptr::copy_nonoverlapping(
                buf.as_ptr(),
                addr_of_mut!((*self.dma).data.0).cast::<u8>(),
                len,
            )
        };
    }

    /// Offers the chain starting at `head` (any value, even out of range):
    /// next available ring entry, `avail.idx` + 1, notification.
    pub fn raw_publish(&mut self, head: u16) {
        self.raw_offer(head);
        self.raw_notify();
    }

    /// Like [`raw_publish`](Self::raw_publish) without the notification.
    pub fn raw_offer(&mut self, head: u16) {
        let slot = usize::from(self.avail_idx % self.queue_size.max(1));
        // SAFETY: aligned stores into the driver's available ring.
        unsafe { write_volatile(addr_of_mut!((*self.dma).avail.ring[slot]), head) };
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.raw_avail_idx(self.avail_idx);
    }

    /// The driver's next available ring index (what `avail.idx` says
    /// unless [`raw_avail_idx`](Self::raw_avail_idx) wrote otherwise).
    pub fn avail_idx(&self) -> u16 {
        self.avail_idx
    }

    /// Writes `avail.idx` as is (after a barrier), without notifying.
    pub fn raw_avail_idx(&mut self, idx: u16) {
        barrier();
        // SAFETY: an aligned store into the driver's available ring.
        unsafe { write_volatile(addr_of_mut!((*self.dma).avail.idx), idx) };
    }

    /// Makes the area visible to the device and notifies queue 0.
    pub fn raw_notify(&mut self) {
        self.sync_all();
        self.write_reg(reg::QUEUE_NOTIFY, 0);
    }

    /// Waits up to `timeout_ms` for the next used ring entry. Fails with
    /// `NeedsReset` when the device sets DEVICE_NEEDS_RESET or FAILED, or
    /// resets itself (status 0), and with `Timeout` when nothing comes.
    pub fn raw_wait(&mut self, timeout_ms: u64) -> Result<UsedElem, BlkError> {
        let start = timer::counter();
        let deadline = start + timer::ms_to_ticks(timeout_ms);
        // Look at the status register about every millisecond (it may trap).
        let status_period = timer::ms_to_ticks(1).max(1);
        let mut next_status = start;
        loop {
            let dma = self.dma;
            // SAFETY: the used ring's address; only the ring is touched.
            let used = unsafe { addr_of!((*dma).used) } as usize;
            dcache_clean_invalidate(used, core::mem::size_of::<Used>());
            // SAFETY: aligned loads from the used ring, which the device
            // writes.
            let idx = unsafe { read_volatile(addr_of!((*dma).used.idx)) };
            if idx != self.used_idx {
                barrier();
                let slot = usize::from(self.used_idx % self.queue_size.max(1));
                // SAFETY: as above.
                let elem = unsafe { read_volatile(addr_of!((*dma).used.ring[slot])) };
                self.used_idx = self.used_idx.wrapping_add(1);
                self.ack_interrupts();
                self.sync_all();
                return Ok(elem);
            }
            let now = timer::counter();
            if now >= next_status {
                next_status = now + status_period;
                let s = self.device_status();
                if s & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0
                    || s & status::DRIVER_OK == 0
                {
                    return Err(BlkError::NeedsReset(s));
                }
            }
            if now > deadline {
                return Err(BlkError::Timeout(timeout_ms));
            }
            core::hint::spin_loop();
        }
    }

    /// Acknowledges whatever InterruptStatus shows.
    pub fn ack_interrupts(&mut self) -> u32 {
        let pending = self.read_reg(reg::INTERRUPT_STATUS);
        if pending != 0 {
            self.write_reg(reg::INTERRUPT_ACK, pending);
        }
        pending
    }
}

enum Data<'a> {
    None,
    /// Device-writable, this many bytes.
    In(usize),
    /// Device-readable.
    Out(&'a [u8]),
}

fn check_len(len: usize) -> Result<(), BlkError> {
    if len > DATA_BYTES {
        Err(BlkError::TooLarge(len))
    } else if len == 0 || !len.is_multiple_of(SECTOR) {
        Err(BlkError::NotSectors(len))
    } else {
        Ok(())
    }
}
