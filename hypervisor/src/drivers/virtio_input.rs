//! The hypervisor's driver for a physical virtio-input multi-touch panel
//! (VIRTIO 1.2 §5.8): it reads the panel's axis ranges from its
//! configuration space (ABS_INFO), keeps the event queue full of 8-byte
//! buffers and hands each event the device returns to the touch mediator.

use super::virtio_mmio::Transport;
use crate::arch::dma::DmaRegion;
use alloc::format;
use alloc::string::String;
use shared_devices::touch::{Axis, Event, code};
use shared_devices::virtio::device::{feature, id};
use shared_devices::virtio::driver::{Buf, DriverQueue};
use shared_devices::virtio::memory::GuestMemory;

/// The event queue.
const EVENTQ: u32 = 0;
/// Event buffers kept posted (the device's events wait in them).
const QUEUE_SIZE: u16 = 64;
/// Bytes of one `virtio_input_event`.
const EVENT_BYTES: u64 = 8;
/// Bytes of one indirect table (a single descriptor).
const TABLE_BYTES: u64 = 16;

/// Configuration space selections (§5.8.4).
const CFG_EV_BITS: u8 = 0x11;
const CFG_ABS_INFO: u8 = 0x12;

/// A physical multi-touch panel.
pub struct PhysicalPanel {
    transport: Transport,
    dma: DmaRegion,
    queue: DriverQueue,
    /// Which buffer each ring descriptor id carries.
    buffer_of: [u16; QUEUE_SIZE as usize],
    /// Its X and Y axes (the multi-touch position's).
    pub x: Axis,
    pub y: Axis,
}

impl PhysicalPanel {
    /// Initialises the virtio-input device in the frame at `base`: it must
    /// report multi-touch positions (ABS_MT_POSITION_X/Y).
    pub fn open(base: u64, size: u64) -> Result<PhysicalPanel, String> {
        let transport = Transport::open(
            base,
            size,
            id::INPUT,
            "virtio-input",
            feature::VERSION_1 | feature::INDIRECT_DESC,
            feature::VERSION_1 | feature::INDIRECT_DESC,
        )?;
        let abs = select(&transport, CFG_EV_BITS, code::EV_ABS as u8);
        let has = |axis: u16| {
            let byte = usize::from(axis / 8);
            abs.get(byte).is_some_and(|b| b & (1 << (axis % 8)) != 0)
        };
        if !has(code::ABS_MT_POSITION_X) || !has(code::ABS_MT_POSITION_Y) {
            return Err(format!(
                "virtio-input at {base:#x} is not a multi-touch panel (no ABS_MT_POSITION_X/Y)"
            ));
        }
        let axis = |code: u16| -> Result<Axis, String> {
            let info = select(&transport, CFG_ABS_INFO, code as u8);
            if info.len() < 8 {
                return Err(format!(
                    "virtio-input at {base:#x}: no ABS_INFO for axis {code:#x}"
                ));
            }
            let word =
                |i: usize| i32::from_le_bytes([info[i], info[i + 1], info[i + 2], info[i + 3]]);
            Ok(Axis {
                min: word(0),
                max: word(4),
            })
        };
        let (x, y) = (
            axis(code::ABS_MT_POSITION_X)?,
            axis(code::ABS_MT_POSITION_Y)?,
        );
        let rings = DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(4096);
        let bytes = rings + u64::from(QUEUE_SIZE) * (TABLE_BYTES + EVENT_BYTES);
        let dma =
            DmaRegion::alloc(bytes as usize).ok_or("no memory for the panel's event buffers")?;
        let queue = DriverQueue::new(QUEUE_SIZE, dma.base(), &dma)
            .map_err(|e| format!("queue memory {e:?}"))?;
        transport.set_queue(EVENTQ, &queue)?;
        transport.driver_ok();
        let mut panel = PhysicalPanel {
            transport,
            dma,
            queue,
            buffer_of: [0; QUEUE_SIZE as usize],
            x,
            y,
        };
        for b in 0..QUEUE_SIZE {
            panel.post(b)?;
        }
        panel.transport.notify(EVENTQ);
        Ok(panel)
    }

    fn tables(&self) -> u64 {
        self.dma.base() + DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(4096)
    }

    fn buffer(&self, b: u16) -> u64 {
        self.tables() + u64::from(QUEUE_SIZE) * TABLE_BYTES + u64::from(b) * EVENT_BYTES
    }

    /// Makes buffer `b` available to the device.
    fn post(&mut self, b: u16) -> Result<(), String> {
        let table = self.tables() + u64::from(b) * TABLE_BYTES;
        let buf = Buf {
            addr: self.buffer(b),
            len: EVENT_BYTES as u32,
            device_writes: true,
        };
        let id = self
            .queue
            .add(table, &[buf], &self.dma)
            .map_err(|e| format!("event queue: {e:?}"))?;
        if let Some(slot) = self.buffer_of.get_mut(usize::from(id)) {
            *slot = b;
        }
        Ok(())
    }

    /// Hands the events the device has returned to `f`, in order, and
    /// posts their buffers again: at most a queue's worth per call (the
    /// rest wait for the next; the device's interrupt says so).
    pub fn poll(&mut self, f: &mut dyn FnMut(Event)) -> Result<(), String> {
        let mut posted = false;
        for _ in 0..QUEUE_SIZE {
            let used = match self.queue.pop_used(&self.dma) {
                Ok(Some(used)) => used,
                Ok(None) => break,
                Err(e) => return Err(format!("event queue: {e:?}")),
            };
            let b = self.buffer_of[usize::from(used.id) % self.buffer_of.len()];
            let mut e = [0u8; EVENT_BYTES as usize];
            if used.len as u64 >= EVENT_BYTES && self.dma.read(self.buffer(b), &mut e).is_ok() {
                f(Event::from_bytes(e));
            }
            self.post(b)?;
            posted = true;
        }
        if posted && self.queue.should_notify(&self.dma) {
            self.transport.notify(EVENTQ);
        }
        Ok(())
    }

    /// Lowers the device's interrupt line.
    pub fn ack_interrupt(&self) {
        self.transport.ack_interrupt();
    }
}

/// What the configuration space shows for `select`/`subsel` (§5.8.4):
/// `size` bytes of its union, at most 128.
fn select(t: &Transport, select: u8, subsel: u8) -> heapless::Vec<u8, 128> {
    t.set_config32(0, u32::from(select) | u32::from(subsel) << 8);
    let size = ((t.config32(0) >> 16) & 0xff).min(128) as usize;
    let mut out = heapless::Vec::new();
    for i in (0..size).step_by(4) {
        for b in t.config32(8 + i as u64).to_le_bytes() {
            let _ = out.push(b);
        }
    }
    out.truncate(size);
    out
}
