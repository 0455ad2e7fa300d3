//! A minimal polled virtio-gpu (2D) driver on virtio-mmio version 2, for
//! partitions that draw: one control queue, one command at a time (a
//! request buffer and a response buffer, descriptors 0 and 1), completion
//! polled with a time limit. Pixel memory is the caller's: the
//! [`free_ram`] above the image, for instance.
//!
//! As in `virtio_blk`, the MMU is off and the shared area is cleaned and
//! invalidated around each exchange; framebuffers are cleaned by
//! [`VirtioGpu::sync`] before a transfer.

use super::cache::{barrier, dcache_clean_invalidate};
use super::{device_tree, mmio, platform, timer};
use crate::dt::{self, VirtioMmio};
use crate::virtio::{self, reg, status};
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

/// Device type of a GPU (§5).
pub const DEVICE_ID_GPU: u32 = 16;
/// VIRTIO_F_VERSION_1.
const VERSION_1: u64 = 1 << 32;
const QUEUE_SIZE: u16 = 4;
const Q: usize = QUEUE_SIZE as usize;
/// Time limit of one command: a flush is answered when its frame is on
/// the screen, which under a loaded TCG host (a first frame that covers
/// whole displays) can take seconds.
pub const TIMEOUT_MS: u64 = 10_000;
/// How long a command's wait sleeps between looks at the used ring.
const POLL_US: u64 = 250;
/// Bytes of a request or response buffer.
const BUF: usize = 512;

/// Control commands and responses (§5.7.6.7).
pub mod cmd {
    pub const GET_DISPLAY_INFO: u32 = 0x0100;
    pub const RESOURCE_CREATE_2D: u32 = 0x0101;
    pub const RESOURCE_UNREF: u32 = 0x0102;
    pub const SET_SCANOUT: u32 = 0x0103;
    pub const RESOURCE_FLUSH: u32 = 0x0104;
    pub const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    pub const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    pub const RESOURCE_DETACH_BACKING: u32 = 0x0107;
    pub const GET_EDID: u32 = 0x010a;
    pub const OK_NODATA: u32 = 0x1100;
    pub const OK_DISPLAY_INFO: u32 = 0x1101;
    pub const OK_EDID: u32 = 0x1104;
    pub const ERR_UNSPEC: u32 = 0x1200;
    pub const ERR_OUT_OF_MEMORY: u32 = 0x1201;
    pub const ERR_INVALID_SCANOUT_ID: u32 = 0x1202;
    pub const ERR_INVALID_RESOURCE_ID: u32 = 0x1203;
    pub const ERR_INVALID_PARAMETER: u32 = 0x1205;
    /// `flags` bit of a fenced command.
    pub const FLAG_FENCE: u32 = 1;
}

/// B8G8R8A8_UNORM: a little-endian `0xAARRGGBB` per pixel.
pub const FORMAT_B8G8R8A8: u32 = 1;

/// Why a command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// The device answered with this response type.
    Response(u32),
    /// No answer in time.
    Timeout,
    /// The device status says DEVICE_NEEDS_RESET.
    NeedsReset,
    /// Setting up the device failed (the status read back).
    Init(u32),
}

impl core::fmt::Display for GpuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GpuError::Response(r) => write!(f, "response {r:#x}"),
            GpuError::Timeout => f.write_str("timeout"),
            GpuError::NeedsReset => f.write_str("needs-reset"),
            GpuError::Init(s) => write!(f, "init failed (status {s:#x})"),
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

#[repr(C, align(64))]
struct Avail {
    flags: u16,
    idx: u16,
    ring: [u16; Q],
    used_event: u16,
}

#[repr(C, align(64))]
struct Used {
    flags: u16,
    idx: u16,
    ring: [[u32; 2]; Q],
    avail_event: u16,
}

#[repr(C, align(4096))]
struct Dma {
    desc: [Desc; Q],
    avail: Avail,
    used: Used,
    request: [u8; BUF],
    response: [u8; BUF],
}

static mut DMA: Dma = unsafe { core::mem::zeroed() };
static DMA_TAKEN: AtomicBool = AtomicBool::new(false);

/// The first virtio-mmio version 2 GPU of the device tree.
pub fn find() -> Option<VirtioMmio> {
    let dt = device_tree();
    dt::virtio_mmio(&dt).find(|node| {
        // SAFETY: a virtio-mmio window named by the device tree.
        let id = unsafe { super::virtio_blk::identify(node.base) };
        id.magic == virtio::MAGIC && id.version == virtio::VERSION_2 && id.device == DEVICE_ID_GPU
    })
}

/// RAM nobody uses: from the end of the image (and its stacks) to the end
/// of the partition's first memory region, page aligned.
pub fn free_ram() -> (usize, usize) {
    unsafe extern "C" {
        static __image_end: u8;
    }
    let end = (&raw const __image_end as usize).next_multiple_of(4096);
    let p = platform();
    let top = (p.memory_base + p.memory_bytes) as usize;
    (end, top.saturating_sub(end))
}

/// One display mode of GET_DISPLAY_INFO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub width: u32,
    pub height: u32,
    pub enabled: bool,
}

/// How a command's two descriptors look: normally a device-readable
/// request and a device-writable response of 512 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    /// The request is marked device-writable (wrong direction).
    pub request_writable: bool,
    /// The response is marked device-readable (wrong direction).
    pub response_readable: bool,
    /// The response buffer's length, if not 512 bytes.
    pub response_len: Option<u32>,
}

/// A request: the 24-byte header, then little-endian fields.
pub struct Request {
    bytes: [u8; BUF],
    len: usize,
}

impl Request {
    pub fn new(kind: u32, flags: u32, fence: u64) -> Request {
        let mut r = Request {
            bytes: [0; BUF],
            len: 0,
        };
        r.u32(kind).u32(flags).u64(fence).u32(0).u32(0);
        r
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends `b`; what does not fit the buffer is dropped.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let n = b.len().min(BUF - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&b[..n]);
        self.len += n;
        self
    }

    pub fn rect(&mut self, x: u32, y: u32, w: u32, h: u32) -> &mut Self {
        self.u32(x).u32(y).u32(w).u32(h)
    }

    /// Sets the length the device is told about (to send short requests).
    pub fn truncate(&mut self, len: usize) -> &mut Self {
        self.len = len.min(self.len);
        self
    }
}

/// A virtio-gpu device, brought up.
pub struct VirtioGpu {
    node: VirtioMmio,
    dma: *mut Dma,
    avail_idx: u16,
    used_idx: u16,
    fence: u64,
}

impl VirtioGpu {
    /// Takes the DMA area and initialises the device at `node`.
    pub fn open(node: VirtioMmio) -> Result<VirtioGpu, GpuError> {
        if DMA_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(GpuError::Init(0));
        }
        let mut gpu = VirtioGpu {
            node,
            dma: &raw mut DMA,
            avail_idx: 0,
            used_idx: 0,
            fence: 0,
        };
        gpu.init()?;
        Ok(gpu)
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: a register of this transport (window from the DT).
        unsafe { mmio::read32(self.node.base + offset) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as for `read_reg`.
        unsafe { mmio::write32(self.node.base + offset, value) }
    }

    /// Resets the device and sets it up again (also the way back from
    /// DEVICE_NEEDS_RESET).
    pub fn init(&mut self) -> Result<(), GpuError> {
        self.write_reg(reg::STATUS, 0);
        let deadline = timer::counter() + timer::ms_to_ticks(100);
        while self.read_reg(reg::STATUS) != 0 {
            if timer::counter() > deadline {
                return Err(GpuError::Init(self.read_reg(reg::STATUS)));
            }
        }
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write_reg(reg::DEVICE_FEATURES_SEL, 1);
        let high = self.read_reg(reg::DEVICE_FEATURES);
        if u64::from(high) << 32 & VERSION_1 == 0 {
            return Err(GpuError::Init(0));
        }
        self.write_reg(reg::DRIVER_FEATURES_SEL, 0);
        self.write_reg(reg::DRIVER_FEATURES, 0);
        self.write_reg(reg::DRIVER_FEATURES_SEL, 1);
        self.write_reg(reg::DRIVER_FEATURES, (VERSION_1 >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, s);
        if self.read_reg(reg::STATUS) & status::FEATURES_OK == 0 {
            return Err(GpuError::Init(self.read_reg(reg::STATUS)));
        }
        self.write_reg(reg::QUEUE_SEL, 0);
        if self.read_reg(reg::QUEUE_NUM_MAX) < u32::from(QUEUE_SIZE) {
            return Err(GpuError::Init(self.read_reg(reg::QUEUE_NUM_MAX)));
        }
        let dma = self.dma;
        // SAFETY: the device is reset; the area is the driver's own.
        unsafe {
            core::ptr::write_bytes(dma, 0, 1);
        }
        self.avail_idx = 0;
        self.used_idx = 0;
        self.sync_dma();
        self.write_reg(reg::QUEUE_NUM, u32::from(QUEUE_SIZE));
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
        Ok(())
    }

    fn sync_dma(&self) {
        dcache_clean_invalidate(self.dma as usize, core::mem::size_of::<Dma>());
    }

    /// Cleans `[addr, addr + len)` (pixels the device is about to read).
    pub fn sync(&self, addr: usize, len: usize) {
        dcache_clean_invalidate(addr, len);
    }

    /// A fresh fence id.
    pub fn next_fence(&mut self) -> u64 {
        self.fence += 1;
        self.fence
    }

    /// Sends `request` and waits for the response, which it copies into
    /// `response` (as much as fits); returns the response type.
    pub fn command(&mut self, request: &Request, response: &mut [u8]) -> Result<u32, GpuError> {
        self.command_as(request, response, Shape::default())
            .map(|(kind, _)| kind)
    }

    /// [`Self::command`] with the descriptors shaped by `shape` (for hostile
    /// tests); returns the response type and the length the device said it
    /// wrote.
    pub fn command_as(
        &mut self,
        request: &Request,
        response: &mut [u8],
        shape: Shape,
    ) -> Result<(u32, u32), GpuError> {
        let dma = self.dma;
        // SAFETY: the area is the driver's; the device only reads the
        // request and writes the response, after the notify below.
        unsafe {
            let req = addr_of_mut!((*dma).request) as *mut u8;
            core::ptr::copy_nonoverlapping(request.bytes.as_ptr(), req, request.len);
            write_volatile(addr_of_mut!((*dma).response) as *mut u32, 0);
            write_volatile(
                addr_of_mut!((*dma).desc[0]),
                Desc {
                    addr: req as u64,
                    len: request.len as u32,
                    // NEXT, and WRITE when the shape says so.
                    flags: 1 | if shape.request_writable { 2 } else { 0 },
                    next: 1,
                },
            );
            write_volatile(
                addr_of_mut!((*dma).desc[1]),
                Desc {
                    addr: addr_of!((*dma).response) as u64,
                    len: shape.response_len.unwrap_or(BUF as u32).min(BUF as u32),
                    flags: if shape.response_readable { 0 } else { 2 }, // WRITE
                    next: 0,
                },
            );
            let slot = usize::from(self.avail_idx % QUEUE_SIZE);
            write_volatile(addr_of_mut!((*dma).avail.ring[slot]), 0);
            barrier();
            self.avail_idx = self.avail_idx.wrapping_add(1);
            write_volatile(addr_of_mut!((*dma).avail.idx), self.avail_idx);
        }
        self.sync_dma();
        self.write_reg(reg::QUEUE_NOTIFY, 0);
        let start = timer::counter();
        let deadline = start + timer::ms_to_ticks(TIMEOUT_MS);
        let mut next_status = start;
        let written = loop {
            self.sync_dma();
            // SAFETY: an aligned load of the used index.
            let idx = unsafe { read_volatile(addr_of!((*dma).used.idx)) };
            if idx != self.used_idx {
                let slot = usize::from(self.used_idx % QUEUE_SIZE);
                // SAFETY: the used element the device published.
                let elem = unsafe { read_volatile(addr_of!((*dma).used.ring[slot])) };
                self.used_idx = idx;
                break elem[1];
            }
            // The answer waits for the display (a held flush): sleep
            // between looks at the ring, which cost no trap, and read the
            // status register (a trap) once a millisecond. A driver that
            // spun on a register would keep its core in the hypervisor.
            let now = timer::counter();
            if now >= next_status {
                if self.read_reg(reg::STATUS) & status::DEVICE_NEEDS_RESET != 0 {
                    return Err(GpuError::NeedsReset);
                }
                next_status = now + timer::ms_to_ticks(1);
            }
            if now > deadline {
                return Err(GpuError::Timeout);
            }
            timer::sleep_until(now + timer::frequency() * POLL_US / 1_000_000);
        };
        let pending = self.read_reg(reg::INTERRUPT_STATUS);
        self.write_reg(reg::INTERRUPT_ACK, pending);
        // SAFETY: the device is done with the response buffer.
        let got = unsafe { &*addr_of!((*dma).response) };
        let n = response.len().min(BUF);
        response[..n].copy_from_slice(&got[..n]);
        Ok((
            u32::from_le_bytes([got[0], got[1], got[2], got[3]]),
            written,
        ))
    }

    /// Sends `request`; Ok if the device answered `ok`.
    pub fn expect(&mut self, request: &Request, ok: u32) -> Result<(), GpuError> {
        let mut response = [0u8; 24];
        match self.command(request, &mut response)? {
            r if r == ok => Ok(()),
            r => Err(GpuError::Response(r)),
        }
    }

    /// The scanouts' modes (GET_DISPLAY_INFO).
    pub fn display_info(&mut self) -> Result<[Mode; 16], GpuError> {
        let mut r = [0u8; 24 + 16 * 24];
        match self.command(&Request::new(cmd::GET_DISPLAY_INFO, 0, 0), &mut r)? {
            cmd::OK_DISPLAY_INFO => {}
            other => return Err(GpuError::Response(other)),
        }
        let word = |at: usize| u32::from_le_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]]);
        let mut modes = [Mode::default(); 16];
        for (i, m) in modes.iter_mut().enumerate() {
            let at = 24 + i * 24;
            *m = Mode {
                width: word(at + 8),
                height: word(at + 12),
                enabled: word(at + 16) != 0,
            };
        }
        Ok(modes)
    }

    pub fn create_2d(&mut self, id: u32, format: u32, w: u32, h: u32) -> Result<(), GpuError> {
        let mut r = Request::new(cmd::RESOURCE_CREATE_2D, 0, 0);
        r.u32(id).u32(format).u32(w).u32(h);
        self.expect(&r, cmd::OK_NODATA)
    }

    /// Backs resource `id` with one guest range.
    pub fn attach(&mut self, id: u32, addr: u64, len: u32) -> Result<(), GpuError> {
        let mut r = Request::new(cmd::RESOURCE_ATTACH_BACKING, 0, 0);
        r.u32(id).u32(1).u64(addr).u32(len).u32(0);
        self.expect(&r, cmd::OK_NODATA)
    }

    pub fn set_scanout(&mut self, scanout: u32, id: u32, w: u32, h: u32) -> Result<(), GpuError> {
        let mut r = Request::new(cmd::SET_SCANOUT, 0, 0);
        r.rect(0, 0, w, h).u32(scanout).u32(id);
        self.expect(&r, cmd::OK_NODATA)
    }

    /// TRANSFER_TO_HOST_2D of a `w`-wide resource's rectangle.
    pub fn transfer(
        &mut self,
        id: u32,
        width: u32,
        rect: (u32, u32, u32, u32),
    ) -> Result<(), GpuError> {
        let (x, y, w, h) = rect;
        let offset = (u64::from(y) * u64::from(width) + u64::from(x)) * 4;
        let mut r = Request::new(cmd::TRANSFER_TO_HOST_2D, 0, 0);
        r.rect(x, y, w, h).u64(offset).u32(id).u32(0);
        self.expect(&r, cmd::OK_NODATA)
    }

    /// A fenced RESOURCE_FLUSH: the answer comes when the picture is shown.
    pub fn flush(&mut self, id: u32, rect: (u32, u32, u32, u32)) -> Result<(), GpuError> {
        let fence = self.next_fence();
        let (x, y, w, h) = rect;
        let mut r = Request::new(cmd::RESOURCE_FLUSH, cmd::FLAG_FENCE, fence);
        r.rect(x, y, w, h).u32(id).u32(0);
        self.expect(&r, cmd::OK_NODATA)
    }
}
