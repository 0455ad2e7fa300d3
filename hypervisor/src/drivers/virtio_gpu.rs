//! The hypervisor's driver for a physical virtio-gpu device (2D, one
//! scanout) on virtio-mmio version 2: where the display mediator's
//! composed frames go.
//!
//! At open it checks the device's first scanout has the size the config
//! says, creates one B8G8R8X8 resource of that size whose backing is a
//! framebuffer in the driver's [`DmaRegion`], and shows it on scanout 0.
//! Then each frame is a TRANSFER_TO_HOST_2D of each damaged rectangle (a
//! few) and one RESOURCE_FLUSH of their bounds. One frame is in flight at a time;
//! [`PhysicalDisplay::poll`] says when it is on the screen. Nothing here
//! waits except [`PhysicalDisplay::open`].

use super::virtio_mmio::Transport;
use crate::arch::cpu;
use crate::arch::dma::DmaRegion;
use alloc::format;
use alloc::string::String;
use shared_devices::display::Rect;
use shared_devices::display::compositor::Signature;
use shared_devices::display::frames::FRAME_RECTS;
use shared_devices::virtio::device::{feature, id};
use shared_devices::virtio::driver::{Buf, DriverQueue};
use shared_devices::virtio::memory::GuestMemory;

/// Control commands and responses (VIRTIO 1.2 §5.7.6.7).
mod cmd {
    pub const GET_DISPLAY_INFO: u32 = 0x0100;
    pub const RESOURCE_CREATE_2D: u32 = 0x0101;
    pub const SET_SCANOUT: u32 = 0x0103;
    pub const RESOURCE_FLUSH: u32 = 0x0104;
    pub const TRANSFER_TO_HOST_2D: u32 = 0x0105;
    pub const RESOURCE_ATTACH_BACKING: u32 = 0x0106;
    pub const OK_NODATA: u32 = 0x1100;
    pub const OK_DISPLAY_INFO: u32 = 0x1101;
}

/// B8G8R8X8_UNORM: the bytes of an `0xAARRGGBB` little-endian `u32`, alpha
/// ignored.
const FORMAT_B8G8R8X8: u32 = 2;
/// The framebuffer's resource id.
const RESOURCE: u32 = 1;
/// The control queue.
const CONTROLQ: u32 = 0;
const QUEUE_SIZE: u16 = 16;
/// Request slots: one frame is a transfer per damaged rectangle and a
/// flush.
const SLOTS: usize = FRAME_RECTS + 1;
/// Per slot: request at 0, response at 128, indirect table at 1024.
const SLOT_BYTES: u64 = 2048;
const RESPONSE_AT: u64 = 128;
const RESPONSE_MAX: u32 = 24 + 16 * 24;
const TABLE_AT: u64 = 1024;
/// How long `open` waits for the device to answer one command.
const OPEN_TIMEOUT_MS: u64 = 1000;

/// A physical display and its framebuffer.
pub struct PhysicalDisplay {
    transport: Transport,
    dma: DmaRegion,
    queue: DriverQueue,
    width: u32,
    height: u32,
    /// Requests of the frame in flight still to come back, and how many
    /// it had.
    outstanding: usize,
    sent: usize,
}

/// The 24-byte control header of a request.
fn header(kind: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h
}

fn rect_bytes(r: Rect) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, v) in [r.x, r.y, r.width, r.height].into_iter().enumerate() {
        b[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// A request's bytes: the header, then `u32` fields and byte blocks.
struct Request {
    bytes: [u8; 96],
    len: usize,
}

impl Request {
    fn new(kind: u32) -> Request {
        let mut r = Request {
            bytes: [0; 96],
            len: 0,
        };
        r.put(&header(kind));
        r
    }

    fn put(&mut self, b: &[u8]) -> &mut Self {
        self.bytes[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
        self
    }

    fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_le_bytes())
    }

    fn u64(&mut self, v: u64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl PhysicalDisplay {
    /// Initialises the virtio-gpu device in the frame at `base` and shows
    /// a black `width` x `height` framebuffer on its first scanout, which
    /// must have that size.
    pub fn open(base: u64, size: u64, width: u32, height: u32) -> Result<PhysicalDisplay, String> {
        let transport = Transport::open(
            base,
            size,
            id::GPU,
            "virtio-gpu",
            feature::VERSION_1 | feature::INDIRECT_DESC,
            feature::VERSION_1 | feature::INDIRECT_DESC,
        )?;
        let rings = DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(4096);
        let slots = (SLOT_BYTES * SLOTS as u64).next_multiple_of(4096);
        let framebuffer = u64::from(width) * u64::from(height) * 4;
        let bytes = rings + slots + framebuffer;
        let dma = DmaRegion::alloc(bytes as usize).ok_or_else(|| {
            format!(
                "no memory for the display's {} KiB framebuffer",
                bytes / 1024
            )
        })?;
        let queue = DriverQueue::new(QUEUE_SIZE, dma.base(), &dma)
            .map_err(|e| format!("queue memory {e:?}"))?;
        transport.set_queue(CONTROLQ, &queue)?;
        transport.driver_ok();
        let mut display = PhysicalDisplay {
            transport,
            dma,
            queue,
            width,
            height,
            outstanding: 0,
            sent: 0,
        };

        let info = display.command(&Request::new(cmd::GET_DISPLAY_INFO), cmd::OK_DISPLAY_INFO)?;
        let (w, h, enabled) = (
            word(&info, 24 + 8),
            word(&info, 24 + 12),
            word(&info, 24 + 16),
        );
        if (w, h) != (width, height) || enabled == 0 {
            return Err(format!(
                "virtio-gpu at {base:#x}: its first scanout is {w}x{h}{}, the config says {width}x{height}",
                if enabled == 0 { " (disabled)" } else { "" }
            ));
        }
        let mut create = Request::new(cmd::RESOURCE_CREATE_2D);
        create
            .u32(RESOURCE)
            .u32(FORMAT_B8G8R8X8)
            .u32(width)
            .u32(height);
        display.command(&create, cmd::OK_NODATA)?;
        let mut attach = Request::new(cmd::RESOURCE_ATTACH_BACKING);
        attach
            .u32(RESOURCE)
            .u32(1)
            .u64(display.framebuffer())
            .u32(framebuffer as u32)
            .u32(0);
        display.command(&attach, cmd::OK_NODATA)?;
        let mut scanout = Request::new(cmd::SET_SCANOUT);
        scanout
            .put(&rect_bytes(display.screen()))
            .u32(0)
            .u32(RESOURCE);
        display.command(&scanout, cmd::OK_NODATA)?;
        display.start_frame(&[display.screen()])?;
        let deadline = cpu::counter() + OPEN_TIMEOUT_MS * cpu::counter_frequency() / 1000;
        while !display.poll()? {
            if cpu::counter() > deadline {
                return Err(format!(
                    "virtio-gpu at {base:#x}: first frame never completed"
                ));
            }
            core::hint::spin_loop();
        }
        Ok(display)
    }

    /// The whole screen.
    pub fn screen(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    fn rings_bytes() -> u64 {
        DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(4096)
    }

    fn slot_base(&self, slot: usize) -> u64 {
        self.dma.base() + Self::rings_bytes() + SLOT_BYTES * slot as u64
    }

    /// Bus address of the framebuffer (row after row, 4 bytes a pixel).
    fn framebuffer(&self) -> u64 {
        self.dma.base() + Self::rings_bytes() + (SLOT_BYTES * SLOTS as u64).next_multiple_of(4096)
    }

    /// Writes composed pixels (`0xAARRGGBB`, `area.width` a row) into the
    /// framebuffer at `area` (inside the screen: the compositor clips).
    pub fn write(&self, area: Rect, pixels: &[u32]) {
        for (y, line) in pixels
            .chunks_exact(area.width as usize)
            .take(area.height as usize)
            .enumerate()
        {
            let _ = self
                .dma
                .write_words(self.pixel_at(area.x, area.y + y as u32), line);
        }
    }

    /// Bus address of screen pixel (`x`, `y`).
    fn pixel_at(&self, x: u32, y: u32) -> u64 {
        self.framebuffer() + (u64::from(y) * u64::from(self.width) + u64::from(x)) * 4
    }

    /// The signature of what the framebuffer holds at `area` (inside the
    /// screen), read back row by row: what the display will show there.
    pub fn signature(&self, area: Rect) -> Signature {
        let mut signature = Signature::default();
        let mut pixels = [0u32; 256];
        for y in area.y..area.y + area.height {
            let mut done = 0;
            while done < area.width {
                let n = (area.width - done).min(256) as usize;
                let _ = self
                    .dma
                    .read_words(self.pixel_at(area.x + done, y), &mut pixels[..n]);
                signature.add(&pixels[..n]);
                done += n as u32;
            }
        }
        signature
    }

    /// Sends `request` in `slot` with room for a response.
    fn submit(&mut self, slot: usize, request: &Request) -> Result<(), String> {
        let at = self.slot_base(slot);
        let err = |e| format!("DMA area: {e:?}");
        self.dma.write(at, request.bytes()).map_err(err)?;
        self.dma.write(at + RESPONSE_AT, &[0; 4]).map_err(err)?;
        let bufs = [
            Buf {
                addr: at,
                len: request.len as u32,
                device_writes: false,
            },
            Buf {
                addr: at + RESPONSE_AT,
                len: RESPONSE_MAX,
                device_writes: true,
            },
        ];
        self.queue
            .add(at + TABLE_AT, &bufs, &self.dma)
            .map_err(|e| format!("queue: {e:?}"))?;
        if self.queue.should_notify(&self.dma) {
            self.transport.notify(CONTROLQ);
        }
        Ok(())
    }

    /// The response type `slot`'s device wrote.
    fn response_type(&self, slot: usize) -> u32 {
        let mut b = [0u8; 4];
        let _ = self.dma.read(self.slot_base(slot) + RESPONSE_AT, &mut b);
        u32::from_le_bytes(b)
    }

    /// One command at boot, waited for; returns the response.
    fn command(&mut self, request: &Request, ok: u32) -> Result<[u8; 24 + 16 * 24], String> {
        self.submit(0, request)?;
        let deadline = cpu::counter() + OPEN_TIMEOUT_MS * cpu::counter_frequency() / 1000;
        loop {
            match self.queue.pop_used(&self.dma) {
                Ok(Some(_)) => break,
                Ok(None) if cpu::counter() > deadline => {
                    return Err(format!(
                        "virtio-gpu at {:#x}: no answer to command {:#x}",
                        self.transport.base(),
                        word(request.bytes(), 0)
                    ));
                }
                Ok(None) => core::hint::spin_loop(),
                Err(e) => return Err(format!("used ring: {e:?}")),
            }
        }
        let mut response = [0u8; 24 + 16 * 24];
        let _ = self
            .dma
            .read(self.slot_base(0) + RESPONSE_AT, &mut response);
        let kind = word(&response, 0);
        if kind != ok {
            return Err(format!(
                "virtio-gpu at {:#x}: command {:#x} answered {kind:#x}",
                self.transport.base(),
                word(request.bytes(), 0)
            ));
        }
        Ok(response)
    }

    /// Whether a frame is in flight.
    pub fn busy(&self) -> bool {
        self.outstanding > 0
    }

    /// Sends `damage` (at most [`FRAME_RECTS`] rectangles) of the
    /// framebuffer to the screen: a transfer of each, then a flush of
    /// their bounds. Call [`Self::poll`] until it says the frame is shown.
    pub fn start_frame(&mut self, damage: &[Rect]) -> Result<(), String> {
        if self.busy() {
            return Err("a frame is already in flight".into());
        }
        let screen = self.screen();
        let parts: heapless::Vec<Rect, FRAME_RECTS> = damage
            .iter()
            .filter_map(|r| screen.intersection(r))
            .take(FRAME_RECTS)
            .collect();
        let Some(bounds) = parts.iter().copied().reduce(|a, b| a.union(&b)) else {
            return Ok(());
        };
        for (slot, part) in parts.iter().enumerate() {
            let offset = (u64::from(part.y) * u64::from(self.width) + u64::from(part.x)) * 4;
            let mut transfer = Request::new(cmd::TRANSFER_TO_HOST_2D);
            transfer
                .put(&rect_bytes(*part))
                .u64(offset)
                .u32(RESOURCE)
                .u32(0);
            self.submit(slot, &transfer)?;
            self.outstanding += 1;
        }
        let mut flush = Request::new(cmd::RESOURCE_FLUSH);
        flush.put(&rect_bytes(bounds)).u32(RESOURCE).u32(0);
        self.submit(parts.len(), &flush)?;
        self.outstanding += 1;
        self.sent = parts.len() + 1;
        Ok(())
    }

    /// Takes what the device finished; true once the frame in flight (if
    /// any) is on the screen. An error if the device refused part of it.
    pub fn poll(&mut self) -> Result<bool, String> {
        loop {
            match self.queue.pop_used(&self.dma) {
                Ok(Some(_)) => self.outstanding = self.outstanding.saturating_sub(1),
                Ok(None) => break,
                Err(e) => return Err(format!("used ring: {e:?}")),
            }
        }
        if self.outstanding > 0 {
            return Ok(false);
        }
        for slot in 0..self.sent {
            let kind = self.response_type(slot);
            if kind != cmd::OK_NODATA {
                self.dma
                    .write(
                        self.slot_base(slot) + RESPONSE_AT,
                        &cmd::OK_NODATA.to_le_bytes(),
                    )
                    .ok();
                return Err(format!("frame request answered {kind:#x}"));
            }
        }
        Ok(true)
    }

    /// Lowers the device's interrupt line.
    pub fn ack_interrupt(&self) {
        self.transport.ack_interrupt();
    }
}

/// The little-endian `u32` at byte `at` of `b` (0 past its end).
fn word(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}
