//! A small driver for a virtio-input device (VIRTIO 1.2 §5.8), enough to
//! read a touchscreen's events: it reads the device's name and axis
//! ranges from its configuration space and keeps event buffers posted
//! (or, for tests of a partition that stops reading, stops posting them).

use super::cache::{barrier, dcache_clean_invalidate};
use super::{device_tree, mmio, timer};
use crate::dt::{self, VirtioMmio};
use crate::virtio::{self, reg, status};
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

/// virtio-input's device id.
pub const DEVICE_ID_INPUT: u32 = 18;
/// VIRTIO_F_VERSION_1.
const VERSION_1: u64 = 1 << 32;
/// Event buffers (one event each).
const QUEUE_SIZE: u16 = 64;
const Q: usize = QUEUE_SIZE as usize;
/// The event queue.
const EVENTQ: u32 = 0;

/// Configuration space selections (§5.8.4).
pub const CFG_ID_NAME: u8 = 0x01;
pub const CFG_PROP_BITS: u8 = 0x10;
pub const CFG_EV_BITS: u8 = 0x11;
pub const CFG_ABS_INFO: u8 = 0x12;

/// One event as the device writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    pub code: u16,
    pub value: u32,
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
    events: [[u8; 8]; Q],
}

static mut DMA: Dma = unsafe { core::mem::zeroed() };
static DMA_TAKEN: AtomicBool = AtomicBool::new(false);

/// The first virtio-mmio version 2 input device of the device tree.
pub fn find() -> Option<VirtioMmio> {
    let dt = device_tree();
    dt::virtio_mmio(&dt).find(|node| {
        // SAFETY: a virtio-mmio window named by the device tree.
        let id = unsafe { super::virtio_blk::identify(node.base) };
        id.magic == virtio::MAGIC && id.version == virtio::VERSION_2 && id.device == DEVICE_ID_INPUT
    })
}

/// Acknowledges whatever the transport at `base` has pending, so that the
/// device lowers its interrupt line: for an interrupt handler, which has
/// no [`VirtioInput`] to call.
pub fn ack_interrupt(base: usize) {
    // SAFETY: registers of a virtio-mmio window from the device tree.
    unsafe {
        let pending = mmio::read32(base + reg::INTERRUPT_STATUS);
        if pending != 0 {
            mmio::write32(base + reg::INTERRUPT_ACK, pending);
        }
    }
}

/// A virtio-input device, brought up, its event buffers posted.
pub struct VirtioInput {
    node: VirtioMmio,
    dma: *mut Dma,
    avail_idx: u16,
    used_idx: u16,
}

impl VirtioInput {
    /// Takes the DMA area and initialises the device at `node`; `None` if
    /// it does not come up.
    pub fn open(node: VirtioMmio) -> Option<VirtioInput> {
        if DMA_TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        let mut input = VirtioInput {
            node,
            dma: &raw mut DMA,
            avail_idx: 0,
            used_idx: 0,
        };
        input.init().then_some(input)
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: a register of this transport (window from the DT).
        unsafe { mmio::read32(self.node.base + offset) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as for `read_reg`.
        unsafe { mmio::write32(self.node.base + offset, value) }
    }

    fn init(&mut self) -> bool {
        self.write_reg(reg::STATUS, 0);
        let deadline = timer::counter() + timer::ms_to_ticks(100);
        while self.read_reg(reg::STATUS) != 0 {
            if timer::counter() > deadline {
                return false;
            }
        }
        self.write_reg(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write_reg(reg::DEVICE_FEATURES_SEL, 1);
        if u64::from(self.read_reg(reg::DEVICE_FEATURES)) << 32 & VERSION_1 == 0 {
            return false;
        }
        self.write_reg(reg::DRIVER_FEATURES_SEL, 0);
        self.write_reg(reg::DRIVER_FEATURES, 0);
        self.write_reg(reg::DRIVER_FEATURES_SEL, 1);
        self.write_reg(reg::DRIVER_FEATURES, (VERSION_1 >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write_reg(reg::STATUS, s);
        if self.read_reg(reg::STATUS) & status::FEATURES_OK == 0 {
            return false;
        }
        self.write_reg(reg::QUEUE_SEL, EVENTQ);
        if self.read_reg(reg::QUEUE_NUM_MAX) < u32::from(QUEUE_SIZE) {
            return false;
        }
        let dma = self.dma;
        // SAFETY: the device is reset; the area is the driver's own.
        unsafe { core::ptr::write_bytes(dma, 0, 1) };
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
        self.sync();
        self.write_reg(reg::QUEUE_READY, 1);
        self.write_reg(reg::STATUS, s | status::DRIVER_OK);
        true
    }

    fn sync(&self) {
        dcache_clean_invalidate(self.dma as usize, core::mem::size_of::<Dma>());
    }

    /// Posts `n` event buffers (the ring's free ones at most).
    pub fn post(&mut self, n: usize) {
        let dma = self.dma;
        let free = Q - usize::from(self.avail_idx.wrapping_sub(self.used_idx));
        for _ in 0..n.min(free) {
            let slot = usize::from(self.avail_idx % QUEUE_SIZE);
            // SAFETY: the driver's own descriptors and ring; the device
            // reads them after the notify below.
            unsafe {
                write_volatile(
                    addr_of_mut!((*dma).desc[slot]),
                    Desc {
                        addr: addr_of!((*dma).events[slot]) as u64,
                        len: 8,
                        flags: 2, // WRITE
                        next: 0,
                    },
                );
                write_volatile(addr_of_mut!((*dma).avail.ring[slot]), slot as u16);
            }
            self.avail_idx = self.avail_idx.wrapping_add(1);
        }
        barrier();
        // SAFETY: the available index, published after the entries.
        unsafe { write_volatile(addr_of_mut!((*dma).avail.idx), self.avail_idx) };
        self.sync();
        self.write_reg(reg::QUEUE_NOTIFY, EVENTQ);
    }

    /// Where its registers are, and its interrupt (if the device tree
    /// gives one).
    pub fn node(&self) -> VirtioMmio {
        self.node
    }

    /// The next event the device wrote, if any (its buffer is not posted
    /// again: call [`Self::post`]).
    pub fn next_event(&mut self) -> Option<Event> {
        let dma = self.dma;
        self.sync();
        // SAFETY: an aligned load of the used index.
        let idx = unsafe { read_volatile(addr_of!((*dma).used.idx)) };
        if idx == self.used_idx {
            return None;
        }
        let slot = usize::from(self.used_idx % QUEUE_SIZE);
        // SAFETY: the used element the device published, then the event
        // buffer it names (each descriptor is its own buffer).
        let e = unsafe {
            let elem = read_volatile(addr_of!((*dma).used.ring[slot]));
            read_volatile(addr_of!((*dma).events[elem[0] as usize % Q]))
        };
        self.used_idx = self.used_idx.wrapping_add(1);
        let pending = self.read_reg(reg::INTERRUPT_STATUS);
        if pending != 0 {
            self.write_reg(reg::INTERRUPT_ACK, pending);
        }
        Some(Event {
            kind: u16::from_le_bytes([e[0], e[1]]),
            code: u16::from_le_bytes([e[2], e[3]]),
            value: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
    }

    /// What the configuration space shows for `select`/`subsel`: its
    /// `size` and the first bytes of its union.
    pub fn config(&self, select: u8, subsel: u8) -> (u8, [u8; 128]) {
        self.write_reg(0x100, u32::from(select) | u32::from(subsel) << 8);
        let size = (self.read_reg(0x100) >> 16) as u8;
        let mut out = [0u8; 128];
        for (i, chunk) in out.chunks_mut(4).enumerate() {
            chunk.copy_from_slice(&self.read_reg(0x108 + 4 * i).to_le_bytes());
        }
        (size, out)
    }

    /// (min, max) of absolute axis `axis`, if the device has it.
    pub fn abs_range(&self, axis: u16) -> Option<(i32, i32)> {
        let (size, u) = self.config(CFG_ABS_INFO, axis as u8);
        (size >= 8).then(|| {
            (
                i32::from_le_bytes([u[0], u[1], u[2], u[3]]),
                i32::from_le_bytes([u[4], u[5], u[6], u[7]]),
            )
        })
    }
}
