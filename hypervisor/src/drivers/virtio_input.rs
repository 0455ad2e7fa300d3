//! The hypervisor's driver for a physical virtio-input device of a touch
//! panel (VIRTIO 1.2 §5.8): the multi-touch panel itself, or the absolute
//! pointer (a tablet) lying on the same display. It checks what the
//! device reports (EV_BITS), reads its axis ranges from its configuration
//! space (ABS_INFO), keeps the event queue full of 8-byte buffers and
//! hands each event the device returns to the touch mediator.

use super::virtio_mmio::{Transport, VirtioMmio};
use crate::arch::dma::DmaRegion;
use crate::arch::mmio::Registers;
use alloc::format;
use alloc::string::String;
use shared_devices::touch::{Axis, BTN_LEFT, Event, code};
use shared_devices::virtio::device::{feature, id};
use shared_devices::virtio::driver::{Buf, DriverQueue};
use shared_devices::virtio::memory::GuestMemory;
use shared_devices::virtio::mmio::MAGIC;
use tock_registers::interfaces::Readable;

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

/// What a physical virtio-input device is to the touch mediator, and so
/// which axes it must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A multi-touch panel (protocol B): `ABS_MT_POSITION_X`/`Y`.
    Panel,
    /// An absolute pointer (QEMU's `virtio-tablet-device`): `ABS_X`/`ABS_Y`
    /// and a contact button, `BTN_LEFT` or `BTN_TOUCH`.
    Pointer,
}

impl Kind {
    /// The position axes it reports.
    fn axes(self) -> (u16, u16) {
        match self {
            Kind::Panel => (code::ABS_MT_POSITION_X, code::ABS_MT_POSITION_Y),
            Kind::Pointer => (code::ABS_X, code::ABS_Y),
        }
    }
}

/// A physical virtio-input device of a touch panel.
pub struct PhysicalInput {
    transport: Transport,
    dma: DmaRegion,
    queue: DriverQueue,
    /// Which buffer each ring descriptor id carries.
    buffer_of: [u16; QUEUE_SIZE as usize],
    pub kind: Kind,
    /// Its X and Y axes (for a panel, the multi-touch position's).
    pub x: Axis,
    pub y: Axis,
}

/// Whether the virtio-mmio transport in the frame at `base` has no device
/// behind it: QEMU leaves the transports no device was attached to in
/// place, with device ID 0, which a driver ignores without an error
/// (VIRTIO 1.2 §4.2.3.1.1).
pub fn transport_is_empty(base: u64, size: u64) -> bool {
    Registers::<VirtioMmio>::new(base, size)
        .is_some_and(|regs| regs.magic_value.get() == MAGIC && regs.device_id.get() == 0)
}

impl PhysicalInput {
    /// Initialises the virtio-input device in the frame at `base`, which
    /// must be a `kind`: a panel reports multi-touch positions
    /// (ABS_MT_POSITION_X/Y), a pointer absolute ones (ABS_X/Y) and has
    /// BTN_LEFT or BTN_TOUCH. Setting DRIVER_OK makes QEMU try the
    /// device's input handler first among those of its display (see
    /// `crate::mediators::touch::open_pointer`).
    pub fn open(base: u64, size: u64, kind: Kind) -> Result<PhysicalInput, String> {
        let transport = Transport::open(
            base,
            size,
            id::INPUT,
            "virtio-input",
            feature::VERSION_1 | feature::INDIRECT_DESC,
            feature::VERSION_1 | feature::INDIRECT_DESC,
        )?;
        let abs = select(&transport, CFG_EV_BITS, code::EV_ABS as u8);
        let (x_code, y_code) = kind.axes();
        match kind {
            Kind::Panel if !has(&abs, x_code) || !has(&abs, y_code) => {
                return Err(format!(
                    "virtio-input at {base:#x} is not a multi-touch panel (no ABS_MT_POSITION_X/Y)"
                ));
            }
            Kind::Pointer if !has(&abs, x_code) || !has(&abs, y_code) => {
                return Err(format!(
                    "virtio-input at {base:#x} is not an absolute pointer (no ABS_X/Y)"
                ));
            }
            Kind::Pointer => {
                let keys = select(&transport, CFG_EV_BITS, code::EV_KEY as u8);
                if !has(&keys, BTN_LEFT) && !has(&keys, code::BTN_TOUCH) {
                    return Err(format!(
                        "virtio-input at {base:#x} is a pointer with no button to touch with (no BTN_LEFT or BTN_TOUCH)"
                    ));
                }
            }
            Kind::Panel => {}
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
        let (x, y) = (axis(x_code)?, axis(y_code)?);
        let rings = DriverQueue::memory_bytes(QUEUE_SIZE).next_multiple_of(4096);
        let bytes = rings + u64::from(QUEUE_SIZE) * (TABLE_BYTES + EVENT_BYTES);
        let dma = DmaRegion::alloc(bytes as usize).ok_or("no memory for its event buffers")?;
        let queue = DriverQueue::new(QUEUE_SIZE, dma.base(), &dma)
            .map_err(|e| format!("queue memory {e:?}"))?;
        transport.set_queue(EVENTQ, &queue)?;
        transport.driver_ok();
        let mut input = PhysicalInput {
            transport,
            dma,
            queue,
            buffer_of: [0; QUEUE_SIZE as usize],
            kind,
            x,
            y,
        };
        for b in 0..QUEUE_SIZE {
            input.post(b)?;
        }
        input.transport.notify(EVENTQ);
        Ok(input)
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

/// Whether `code`'s bit is set in an EV_BITS `bitmap`.
fn has(bitmap: &[u8], code: u16) -> bool {
    bitmap
        .get(usize::from(code / 8))
        .is_some_and(|b| b & (1 << (code % 8)) != 0)
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
