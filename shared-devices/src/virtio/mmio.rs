//! virtio-mmio version 2 transport, device side (VIRTIO 1.2 §4.2.2).
//!
//! The hypervisor forwards every guest access to a virtual device's
//! register window here, through [`RegisterFile`]: `read` and `write`
//! take the offset in the window and the access [`Width`], and a write
//! leaves [`Effects`] for the hypervisor to carry out: a queue to process
//! (now, or on the core that does the mediation work), a new level for the
//! device's interrupt line, a device reset. Neither touches guest memory;
//! queue processing happens in [`MmioTransport::notify_queue`] and
//! [`MmioTransport::with_device`], which are given the partition's
//! [`GuestMemory`].
//!
//! Accesses the driver may not make have defined, harmless results:
//! register accesses that are not 32-bit and aligned read as 0 and are
//! ignored on write, as are unknown offsets and write-only registers read
//! back; configuration space accepts accesses of every width at any
//! offset, reads 0 beyond its end and ignores writes there, and an access
//! that would run past the 4 KiB window (or any offset beyond it) reads 0
//! and is ignored. Reads have no effects. The device can be reset
//! (Status = 0) and re-initialised at any time.

use super::device::{DeviceContext, MAX_QUEUES, VirtioDevice, feature};
use super::memory::GuestMemory;
use super::queue::VirtQueue;
use crate::mmio::{RegisterFile, Width};

/// "virt", little-endian.
pub const MAGIC: u32 = 0x7472_6976;
pub const VERSION: u32 = 2;
/// VendorID: "SHDV" (shared devices), for logs only; drivers ignore it.
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"SHDV");

/// Register offsets.
pub mod reg {
    pub const MAGIC_VALUE: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const SHM_SEL: u64 = 0x0ac;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    pub const SHM_BASE_LOW: u64 = 0x0b8;
    pub const SHM_BASE_HIGH: u64 = 0x0bc;
    pub const QUEUE_RESET: u64 = 0x0c0;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// Device configuration space starts here.
    pub const CONFIG: u64 = 0x100;
}

/// Device status bits (VIRTIO 1.2 §2.1).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 64;
    pub const FAILED: u32 = 128;
    /// The bits the driver sets.
    pub const DRIVER_BITS: u32 = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;
}

/// InterruptStatus bits.
pub const INT_USED_BUFFER: u32 = 1;
pub const INT_CONFIG_CHANGE: u32 = 2;

/// Configuration space ends with the 4 KiB page the window lives in.
const CONFIG_END: u64 = 0x1000;

/// Transport feature bits 28..=40; only those in [`feature::TRANSPORT`]
/// are implemented, so the others are never offered.
const TRANSPORT_RANGE: u64 = ((1 << 41) - 1) & !((1 << 28) - 1);

/// What the hypervisor has to do after an access or a device event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Effects {
    /// The driver notified this queue, or the device has more to do on it
    /// than it does in one call: call [`MmioTransport::notify_queue`] with
    /// it (on whichever core does the mediation work, after other pending
    /// work if there is any).
    pub notify: Option<u16>,
    /// The interrupt line changed to this level (it is level-sensitive:
    /// high while InterruptStatus is non-zero).
    pub irq: Option<bool>,
    /// The driver reset the device: work the device had handed on (e.g.
    /// physical block requests) must be cancelled or allowed to drain; see
    /// the device's documentation.
    pub reset: bool,
    /// The driver set DRIVER_OK.
    pub driver_ok: bool,
}

impl Effects {
    /// Both sets of effects, `later` taking precedence for the line level.
    pub fn and(self, later: Effects) -> Effects {
        Effects {
            notify: later.notify.or(self.notify),
            irq: later.irq.or(self.irq),
            reset: self.reset | later.reset,
            driver_ok: self.driver_ok | later.driver_ok,
        }
    }
}

/// One virtio-mmio device as a partition sees it.
pub struct MmioTransport<D> {
    device: D,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    queues: [VirtQueue; MAX_QUEUES],
    interrupt_status: u32,
    config_generation: u32,
}

impl<D: VirtioDevice> MmioTransport<D> {
    pub fn new(device: D) -> Self {
        let n = usize::from(device.queue_count()).min(MAX_QUEUES);
        let queues = core::array::from_fn(|i| {
            VirtQueue::new(if i < n {
                device.queue_max_size(i as u16)
            } else {
                0
            })
        });
        Self {
            device,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            queues,
            interrupt_status: 0,
            config_generation: 0,
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    /// The features the driver accepted (final once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    /// Level of the interrupt line.
    pub fn irq_level(&self) -> bool {
        self.interrupt_status != 0
    }

    /// Queue `index`, for inspection.
    pub fn queue(&self, index: u16) -> Option<&VirtQueue> {
        self.queues[..self.queue_count()].get(usize::from(index))
    }

    fn queue_count(&self) -> usize {
        usize::from(self.device.queue_count()).min(MAX_QUEUES)
    }

    /// The device may use its queues.
    fn live(&self) -> bool {
        self.status & status::DRIVER_OK != 0 && self.status & status::DEVICE_NEEDS_RESET == 0
    }

    fn offered(&self) -> u64 {
        self.device.device_features() & !(TRANSPORT_RANGE & !feature::TRANSPORT)
    }

    fn selected(&mut self) -> Option<&mut VirtQueue> {
        let n = self.queue_count();
        self.queues[..n].get_mut(self.queue_sel as usize)
    }

    /// A read of `width` at `offset` in the register window. Reads change
    /// nothing (unlike writes), so they need only shared access.
    pub fn read_register(&self, offset: u64, width: Width) -> u64 {
        if offset >= reg::CONFIG {
            return self.read_config(offset - reg::CONFIG, width);
        }
        if width != Width::Word || !width.aligned(offset) {
            return 0;
        }
        let n = self.queue_count();
        let selected = self.queues[..n].get(self.queue_sel as usize);
        let v = match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => self.device.device_id(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered() as u32,
                1 => (self.offered() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => selected.map_or(0, |q| u32::from(q.max_size())),
            reg::QUEUE_READY => selected.map_or(0, |q| u32::from(q.is_ready())),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            // No shared memory regions: length and base read as -1.
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH | reg::SHM_BASE_LOW | reg::SHM_BASE_HIGH => {
                u32::MAX
            }
            reg::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        };
        u64::from(v)
    }

    /// The bytes of configuration space an access of `width` at `offset`
    /// (from its start) covers, if it stays inside the window.
    fn config_range(offset: u64, width: Width) -> Option<(u32, usize)> {
        let end = offset.checked_add(width.bytes())?;
        (end <= CONFIG_END - reg::CONFIG).then_some((offset as u32, width.bytes() as usize))
    }

    fn read_config(&self, offset: u64, width: Width) -> u64 {
        let mut b = [0u8; 8];
        if let Some((offset, n)) = Self::config_range(offset, width) {
            self.device.read_config(offset, &mut b[..n]);
        }
        u64::from_le_bytes(b) & width.mask()
    }

    /// A write of the low `width` bytes of `value` at `offset` in the
    /// register window.
    fn write_register(&mut self, offset: u64, width: Width, value: u64) -> Effects {
        if offset >= reg::CONFIG {
            if let Some((off, n)) = Self::config_range(offset - reg::CONFIG, width) {
                self.device.write_config(off, &value.to_le_bytes()[..n]);
            }
            return Effects::default();
        }
        if width != Width::Word || !width.aligned(offset) {
            return Effects::default();
        }
        let v = value as u32;
        let low = |a: u64| (a & !0xffff_ffff) | u64::from(v);
        let high = |a: u64| (a & 0xffff_ffff) | (u64::from(v) << 32);
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            // Frozen once FEATURES_OK is set (§3.1.1).
            reg::DRIVER_FEATURES if self.status & status::FEATURES_OK == 0 => {
                match self.driver_features_sel {
                    0 => self.driver_features = low(self.driver_features),
                    1 => self.driver_features = high(self.driver_features),
                    _ => {}
                }
            }
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            reg::QUEUE_SEL => self.queue_sel = v,
            reg::QUEUE_NUM => self.set_layout(|l| l.num = v),
            reg::QUEUE_READY => self.queue_ready(v),
            reg::QUEUE_NOTIFY => return self.notified(v),
            reg::INTERRUPT_ACK => {
                let before = self.irq_level();
                self.interrupt_status &= !v;
                return self.irq_change(before);
            }
            reg::STATUS => return self.write_status(v),
            reg::QUEUE_DESC_LOW => self.set_layout(|l| l.desc = low(l.desc)),
            reg::QUEUE_DESC_HIGH => self.set_layout(|l| l.desc = high(l.desc)),
            reg::QUEUE_DRIVER_LOW => self.set_layout(|l| l.avail = low(l.avail)),
            reg::QUEUE_DRIVER_HIGH => self.set_layout(|l| l.avail = high(l.avail)),
            reg::QUEUE_DEVICE_LOW => self.set_layout(|l| l.used = low(l.used)),
            reg::QUEUE_DEVICE_HIGH => self.set_layout(|l| l.used = high(l.used)),
            // SHMSel selects among no regions; QueueReset needs RING_RESET,
            // which is not offered.
            _ => {}
        }
        Effects::default()
    }

    fn set_layout(&mut self, f: impl FnOnce(&mut super::queue::QueueLayout)) {
        if let Some(q) = self.selected() {
            q.set_layout(f);
        }
    }

    /// QueueReady: 1 enables the selected queue if its layout is valid
    /// (otherwise it stays 0, which the driver can read back), 0 disables
    /// it. Enabling needs FEATURES_OK, since the ring format depends on
    /// the negotiated EVENT_IDX and INDIRECT_DESC.
    fn queue_ready(&mut self, v: u32) {
        let features_ok = self.status & status::FEATURES_OK != 0;
        let f = self.driver_features;
        let Some(q) = self.selected() else {
            return;
        };
        match v {
            0 => q.disable(),
            1 if features_ok => {
                let _ = q.enable(f & feature::EVENT_IDX != 0, f & feature::INDIRECT_DESC != 0);
            }
            _ => {}
        }
    }

    fn notified(&mut self, v: u32) -> Effects {
        let ready = self.queue(v as u16).is_some_and(VirtQueue::is_ready);
        if self.live() && v < self.queue_count() as u32 && ready {
            Effects {
                notify: Some(v as u16),
                ..Effects::default()
            }
        } else {
            Effects::default()
        }
    }

    fn write_status(&mut self, v: u32) -> Effects {
        if v == 0 {
            return self.reset();
        }
        // A driver only ever adds bits (§2.1.2): a write that would clear
        // one, or sets undefined bits, is ignored. DEVICE_NEEDS_RESET
        // belongs to the device and may be written back unchanged.
        if v & !(status::DRIVER_BITS | status::DEVICE_NEEDS_RESET) != 0 {
            return Effects::default();
        }
        let old = self.status & status::DRIVER_BITS;
        let mut new = v & status::DRIVER_BITS;
        if old & !new != 0 {
            return Effects::default();
        }
        let added = new & !old;
        if added & status::FEATURES_OK != 0 && !self.features_acceptable() {
            new &= !status::FEATURES_OK;
        }
        if new & status::FEATURES_OK == 0 {
            new &= !status::DRIVER_OK;
        }
        self.status = (self.status & status::DEVICE_NEEDS_RESET) | new;
        if new & !old & status::DRIVER_OK != 0 {
            self.device.activate(self.driver_features);
            return Effects {
                driver_ok: true,
                ..Effects::default()
            };
        }
        Effects::default()
    }

    /// FEATURES_OK: only features offered, and VERSION_1 among them (this
    /// is a virtio 1.x transport with no legacy mode).
    fn features_acceptable(&self) -> bool {
        let f = self.driver_features;
        f & !self.offered() == 0 && f & feature::VERSION_1 != 0 && self.device.accept_features(f)
    }

    /// Device reset, by the driver (Status = 0) or by the hypervisor (the
    /// partition restarts): device state, queues, features and pending
    /// interrupts are cleared.
    pub fn reset(&mut self) -> Effects {
        let before = self.irq_level();
        self.device.reset();
        for q in &mut self.queues {
            q.reset();
        }
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        Effects {
            reset: true,
            ..self.irq_change(before)
        }
    }

    /// Processes a notified queue (from [`Effects::notify`]): the device
    /// consumes what the driver made available.
    pub fn notify_queue(&mut self, queue: u16, mem: &dyn GuestMemory) -> Effects {
        if !self.live() || !self.queue(queue).is_some_and(VirtQueue::is_ready) {
            return Effects::default();
        }
        self.with_device(mem, |dev, ctx| dev.queue_notify(queue, ctx))
            .1
    }

    /// Runs `f` with the device and a context for its queues: the entry
    /// point for events that do not come from the driver (completions of
    /// physical requests, input, timers). Returns `f`'s result and the
    /// effects (interrupt line) of what it did.
    pub fn with_device<R>(
        &mut self,
        mem: &dyn GuestMemory,
        f: impl FnOnce(&mut D, &mut DeviceContext<'_>) -> R,
    ) -> (R, Effects) {
        let live = self.live();
        let n = self.queue_count();
        let mut ctx = DeviceContext::new(mem, &mut self.queues[..n], self.driver_features, live);
        let r = f(&mut self.device, &mut ctx);
        let (used, config, needs_reset, again) = ctx.outcome();
        let before = self.irq_level();
        let driver_ok = self.status & status::DRIVER_OK != 0;
        if used {
            self.interrupt_status |= INT_USED_BUFFER;
        }
        if config {
            self.config_generation = self.config_generation.wrapping_add(1);
            if driver_ok {
                self.interrupt_status |= INT_CONFIG_CHANGE;
            }
        }
        if needs_reset && self.status & status::DEVICE_NEEDS_RESET == 0 {
            self.status |= status::DEVICE_NEEDS_RESET;
            if driver_ok {
                self.interrupt_status |= INT_CONFIG_CHANGE;
            }
        }
        let notify = again.filter(|_| self.live());
        (
            r,
            Effects {
                notify,
                ..self.irq_change(before)
            },
        )
    }

    fn irq_change(&self, before: bool) -> Effects {
        let now = self.irq_level();
        Effects {
            irq: (now != before).then_some(now),
            ..Effects::default()
        }
    }
}

impl<D: VirtioDevice> RegisterFile for MmioTransport<D> {
    type Effects = Effects;

    fn read(&mut self, offset: u64, width: Width, _effects: &mut Effects) -> u64 {
        self.read_register(offset, width)
    }

    /// The access's effects are merged into `effects` ([`Effects::and`]).
    fn write(&mut self, offset: u64, width: Width, value: u64, effects: &mut Effects) {
        let fx = self.write_register(offset, width, value);
        *effects = effects.and(fx);
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::QueueError;
    use super::super::test_driver::{BASE, Driver, RAM};
    use super::*;
    use crate::virtio::memory::SliceMemory;

    /// A two-queue device that answers each chain by writing its readable
    /// bytes, upper-cased, to its writable part.
    #[derive(Default)]
    struct Upper {
        config: [u8; 12],
        resets: u32,
        activated: Option<u64>,
        fail_next: bool,
    }

    const UPPER_F: u64 = 1 << 3;

    impl VirtioDevice for Upper {
        fn device_id(&self) -> u32 {
            0x42
        }
        fn device_features(&self) -> u64 {
            feature::VERSION_1 | feature::EVENT_IDX | UPPER_F | (1 << 34)
        }
        fn queue_count(&self) -> u16 {
            2
        }
        fn queue_max_size(&self, queue: u16) -> u16 {
            [16, 8][usize::from(queue)]
        }
        fn read_config(&self, offset: u32, data: &mut [u8]) {
            for (i, b) in data.iter_mut().enumerate() {
                if let Some(c) = self.config.get(offset as usize + i) {
                    *b = *c;
                }
            }
        }
        fn write_config(&mut self, offset: u32, data: &[u8]) {
            for (i, b) in data.iter().enumerate() {
                if let Some(c) = self.config.get_mut(offset as usize + i) {
                    *c = *b;
                }
            }
        }
        fn activate(&mut self, features: u64) {
            self.activated = Some(features);
        }
        fn queue_notify(&mut self, queue: u16, ctx: &mut DeviceContext<'_>) {
            if self.fail_next {
                ctx.needs_reset();
                return;
            }
            loop {
                let chain = match ctx.pop(queue) {
                    Ok(Some(c)) => c,
                    Ok(None) => match ctx.enable_notification(queue) {
                        Ok(true) => continue,
                        _ => break,
                    },
                    Err(_) => {
                        ctx.needs_reset();
                        break;
                    }
                };
                let b = super::super::queue::ChainBuffers::<4>::collect(chain, ctx.mem()).unwrap();
                let mut buf = [0u8; 64];
                let n = (b.readable_len() as usize).min(64);
                b.read(ctx.mem(), 0, &mut buf[..n]).unwrap();
                buf[..n].make_ascii_uppercase();
                let n = n.min(b.writable_len() as usize);
                b.write(ctx.mem(), 0, &buf[..n]).unwrap();
                ctx.push(b.token(), n as u32).unwrap();
            }
        }
        fn reset(&mut self) {
            self.resets += 1;
        }
    }

    /// An access of `width` at `offset`: the value read, or the effects of
    /// writing `value`.
    fn rd(t: &mut MmioTransport<Upper>, offset: u64, width: Width) -> u64 {
        let mut fx = Effects::default();
        let v = t.read(offset, width, &mut fx);
        assert_eq!(fx, Effects::default(), "reads have no effects");
        v
    }

    fn wr(t: &mut MmioTransport<Upper>, offset: u64, width: Width, value: u64) -> Effects {
        let mut fx = Effects::default();
        t.write(offset, width, value, &mut fx);
        fx
    }

    fn fx(t: &mut MmioTransport<Upper>, offset: u64, v: u32) -> Effects {
        wr(t, offset, Width::Word, u64::from(v))
    }

    fn w(t: &mut MmioTransport<Upper>, offset: u64, v: u32) {
        let _ = fx(t, offset, v);
    }

    fn r(t: &mut MmioTransport<Upper>, offset: u64) -> u32 {
        rd(t, offset, Width::Word) as u32
    }

    /// The Linux virtio-mmio probe and virtio core sequence, up to
    /// DRIVER_OK, with queue 0 at the test driver's layout.
    fn bring_up(t: &mut MmioTransport<Upper>, d: &Driver, features: u64) -> Effects {
        assert_eq!(
            fx(t, reg::STATUS, 0),
            Effects {
                reset: true,
                ..Default::default()
            }
        );
        w(t, reg::STATUS, status::ACKNOWLEDGE);
        w(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        w(t, reg::DRIVER_FEATURES_SEL, 0);
        w(t, reg::DRIVER_FEATURES, features as u32);
        w(t, reg::DRIVER_FEATURES_SEL, 1);
        w(t, reg::DRIVER_FEATURES, (features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        w(t, reg::STATUS, s);
        assert_eq!(r(t, reg::STATUS), s, "features accepted");
        w(t, reg::QUEUE_SEL, 0);
        assert_eq!(r(t, reg::QUEUE_READY), 0);
        assert_eq!(r(t, reg::QUEUE_NUM_MAX), 16);
        let l = d.layout();
        w(t, reg::QUEUE_NUM, l.num);
        w(t, reg::QUEUE_DESC_LOW, l.desc as u32);
        w(t, reg::QUEUE_DESC_HIGH, (l.desc >> 32) as u32);
        w(t, reg::QUEUE_DRIVER_LOW, l.avail as u32);
        w(t, reg::QUEUE_DRIVER_HIGH, (l.avail >> 32) as u32);
        w(t, reg::QUEUE_DEVICE_LOW, l.used as u32);
        w(t, reg::QUEUE_DEVICE_HIGH, (l.used >> 32) as u32);
        w(t, reg::QUEUE_READY, 1);
        assert_eq!(r(t, reg::QUEUE_READY), 1);
        fx(t, reg::STATUS, s | status::DRIVER_OK)
    }

    #[test]
    fn identifies_itself() {
        let mut t = MmioTransport::new(Upper::default());
        assert_eq!(r(&mut t, reg::MAGIC_VALUE), 0x7472_6976);
        assert_eq!(r(&mut t, reg::VERSION), 2);
        assert_eq!(r(&mut t, reg::DEVICE_ID), 0x42);
        assert_eq!(r(&mut t, reg::VENDOR_ID), VENDOR_ID);
        w(&mut t, reg::DEVICE_FEATURES_SEL, 0);
        assert_eq!(r(&mut t, reg::DEVICE_FEATURES), (1 << 29) | (1 << 3));
        w(&mut t, reg::DEVICE_FEATURES_SEL, 1);
        assert_eq!(
            r(&mut t, reg::DEVICE_FEATURES),
            1,
            "VERSION_1; RING_PACKED filtered"
        );
        w(&mut t, reg::DEVICE_FEATURES_SEL, 2);
        assert_eq!(r(&mut t, reg::DEVICE_FEATURES), 0);
        for (q, max) in [(0, 16), (1, 8), (2, 0), (u32::MAX, 0)] {
            w(&mut t, reg::QUEUE_SEL, q);
            assert_eq!(r(&mut t, reg::QUEUE_NUM_MAX), max);
        }
        assert_eq!(r(&mut t, reg::SHM_LEN_LOW), u32::MAX, "no shared memory");
        assert_eq!(r(&mut t, reg::SHM_BASE_HIGH), u32::MAX);
        assert_eq!(r(&mut t, reg::CONFIG_GENERATION), 0);
    }

    #[test]
    fn odd_accesses_are_harmless() {
        let mut t = MmioTransport::new(Upper::default());
        assert_eq!(
            rd(&mut t, reg::MAGIC_VALUE, Width::Half),
            0,
            "16-bit register read"
        );
        assert_eq!(rd(&mut t, reg::MAGIC_VALUE, Width::Double), 0);
        assert_eq!(
            rd(&mut t, reg::MAGIC_VALUE + 1, Width::Word),
            0,
            "misaligned"
        );
        assert_eq!(rd(&mut t, 0x0f0, Width::Word), 0, "unknown offset");
        assert_eq!(
            rd(&mut t, reg::QUEUE_DESC_LOW, Width::Word),
            0,
            "write-only"
        );
        assert_eq!(wr(&mut t, reg::STATUS, Width::Byte, 1), Effects::default());
        assert_eq!(r(&mut t, reg::STATUS), 0, "8-bit status write ignored");
        assert_eq!(fx(&mut t, reg::MAGIC_VALUE, 5), Effects::default());
        assert_eq!(fx(&mut t, 0x0f4, 5), Effects::default());
        assert_eq!(r(&mut t, reg::MAGIC_VALUE), MAGIC);
        // Notify before the device is live.
        assert_eq!(fx(&mut t, reg::QUEUE_NOTIFY, 0), Effects::default());
        for width in Width::ALL {
            for offset in [0x1000, u64::MAX, u64::MAX - 3, 1 << 40] {
                assert_eq!(rd(&mut t, offset, width), 0);
                assert_eq!(wr(&mut t, offset, width, u64::MAX), Effects::default());
            }
        }
    }

    #[test]
    fn effects_of_writes_accumulate() {
        let mut t = MmioTransport::new(Upper::default());
        let mut fx = Effects::default();
        t.write(reg::STATUS, Width::Word, 0, &mut fx);
        t.write(reg::STATUS, Width::Word, 1, &mut fx);
        assert_eq!(
            fx,
            Effects {
                reset: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn config_space_any_width() {
        let mut t = MmioTransport::new(Upper::default());
        t.device_mut().config = *b"0123456789ab";
        assert_eq!(rd(&mut t, 0x100, Width::Byte), u64::from(b'0'));
        assert_eq!(rd(&mut t, 0x101, Width::Half), 0x3231);
        assert_eq!(rd(&mut t, 0x104, Width::Word), 0x3736_3534);
        assert_eq!(
            rd(&mut t, 0x104, Width::Double),
            u64::from_le_bytes(*b"456789ab")
        );
        assert_eq!(
            rd(&mut t, 0x10a, Width::Word),
            0x6261,
            "beyond the end reads 0"
        );
        assert_eq!(rd(&mut t, 0xffc, Width::Double), 0, "past the window");
        let _ = wr(&mut t, 0x102, Width::Half, 0x5a5a);
        assert_eq!(&t.device().config[..5], b"01ZZ4");
        let _ = wr(&mut t, 0x100, Width::Byte, 0x5a41);
        assert_eq!(&t.device().config[..2], b"A1", "only the low byte");
        let _ = wr(&mut t, 0xfff, Width::Half, 0);
        let _ = wr(&mut t, u64::MAX, Width::Double, 0);
    }

    #[test]
    fn feature_negotiation() {
        let mut t = MmioTransport::new(Upper::default());
        let s = status::ACKNOWLEDGE | status::DRIVER;
        let try_features = |t: &mut MmioTransport<Upper>, f: u64| {
            w(t, reg::STATUS, 0);
            w(t, reg::STATUS, s);
            w(t, reg::DRIVER_FEATURES_SEL, 0);
            w(t, reg::DRIVER_FEATURES, f as u32);
            w(t, reg::DRIVER_FEATURES_SEL, 1);
            w(t, reg::DRIVER_FEATURES, (f >> 32) as u32);
            w(t, reg::STATUS, s | status::FEATURES_OK);
            r(t, reg::STATUS) & status::FEATURES_OK != 0
        };
        assert!(!try_features(&mut t, UPPER_F), "VERSION_1 is required");
        assert!(
            !try_features(&mut t, feature::VERSION_1 | (1 << 4)),
            "not offered"
        );
        assert!(
            !try_features(&mut t, feature::VERSION_1 | (1 << 34)),
            "RING_PACKED is filtered from the offer"
        );
        assert!(try_features(&mut t, feature::VERSION_1));
        assert!(try_features(&mut t, feature::VERSION_1 | UPPER_F));
        // Frozen after FEATURES_OK.
        w(&mut t, reg::DRIVER_FEATURES_SEL, 0);
        w(&mut t, reg::DRIVER_FEATURES, 0);
        assert_eq!(t.driver_features(), feature::VERSION_1 | UPPER_F);
        // DRIVER_OK without FEATURES_OK is not taken.
        w(&mut t, reg::STATUS, 0);
        w(&mut t, reg::STATUS, s | status::DRIVER_OK);
        assert_eq!(r(&mut t, reg::STATUS), s);
        assert_eq!(t.device().activated, None);
    }

    #[test]
    fn status_bits_only_accumulate() {
        let mut t = MmioTransport::new(Upper::default());
        w(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        w(&mut t, reg::STATUS, status::ACKNOWLEDGE);
        assert_eq!(r(&mut t, reg::STATUS), 3, "clearing ignored");
        w(&mut t, reg::STATUS, 3 | 0x10);
        assert_eq!(r(&mut t, reg::STATUS), 3, "undefined bit");
        w(&mut t, reg::STATUS, 3 | status::DEVICE_NEEDS_RESET);
        assert_eq!(
            r(&mut t, reg::STATUS),
            3,
            "the device's bit is not the driver's"
        );
        w(&mut t, reg::STATUS, 3 | status::FAILED);
        assert_eq!(r(&mut t, reg::STATUS), 3 | status::FAILED);
    }

    #[test]
    fn queue_setup_rules() {
        let mut t = MmioTransport::new(Upper::default());
        let d = Driver::new(16);
        w(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        w(&mut t, reg::QUEUE_SEL, 0);
        w(&mut t, reg::QUEUE_NUM, 16);
        w(&mut t, reg::QUEUE_DESC_LOW, d.layout().desc as u32);
        w(&mut t, reg::QUEUE_DRIVER_LOW, d.layout().avail as u32);
        w(&mut t, reg::QUEUE_DEVICE_LOW, d.layout().used as u32);
        w(&mut t, reg::QUEUE_READY, 1);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 0, "needs FEATURES_OK first");
        w(&mut t, reg::DRIVER_FEATURES_SEL, 1);
        w(&mut t, reg::DRIVER_FEATURES, 1);
        w(&mut t, reg::STATUS, 3 | status::FEATURES_OK);
        w(&mut t, reg::QUEUE_NUM, 32);
        w(&mut t, reg::QUEUE_READY, 1);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 0, "32 > QueueNumMax");
        w(&mut t, reg::QUEUE_NUM, 16);
        w(&mut t, reg::QUEUE_READY, 1);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 1);
        assert_eq!(t.queue(0).unwrap().layout(), d.layout());
        w(&mut t, reg::QUEUE_DESC_LOW, 0x5000);
        assert_eq!(
            t.queue(0).unwrap().layout(),
            d.layout(),
            "frozen while ready"
        );
        w(&mut t, reg::QUEUE_READY, 0);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 0);
        w(&mut t, reg::QUEUE_SEL, 7);
        w(&mut t, reg::QUEUE_NUM, 1);
        w(&mut t, reg::QUEUE_READY, 1);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 0, "queue that does not exist");
        assert!(t.queue(7).is_none());
    }

    #[test]
    fn requests_interrupts_and_acks() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut t = MmioTransport::new(Upper::default());
        let mut d = Driver::new(16);
        let e = bring_up(&mut t, &d, feature::VERSION_1);
        assert_eq!(
            e,
            Effects {
                driver_ok: true,
                ..Default::default()
            }
        );
        assert_eq!(t.device().activated, Some(feature::VERSION_1));

        mem.write(BASE + 0x8000, b"hello").unwrap();
        d.add(&mem, &[(BASE + 0x8000, 5, false), (BASE + 0x9000, 8, true)]);
        d.publish(&mem);
        let e = fx(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(e.notify, Some(0));
        assert_eq!(t.notify_queue(0, &mem).irq, Some(true));
        assert_eq!(d.used(&mem), [(0, 5)]);
        let mut out = [0u8; 5];
        mem.read(BASE + 0x9000, &mut out).unwrap();
        assert_eq!(&out, b"HELLO");
        assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), INT_USED_BUFFER);
        // A second completion while the line is high changes nothing.
        d.add(&mem, &[(BASE + 0x8000, 1, false), (BASE + 0x9000, 1, true)]);
        d.publish(&mem);
        assert_eq!(t.notify_queue(0, &mem).irq, None);
        assert_eq!(
            fx(&mut t, reg::INTERRUPT_ACK, INT_USED_BUFFER).irq,
            Some(false)
        );
        assert!(!t.irq_level());
        // Queue 1 is not ready; 2 does not exist.
        assert_eq!(fx(&mut t, reg::QUEUE_NOTIFY, 1).notify, None);
        assert_eq!(fx(&mut t, reg::QUEUE_NOTIFY, 2).notify, None);
        assert_eq!(t.notify_queue(1, &mem), Effects::default());
    }

    #[test]
    fn needs_reset_then_reinitialise() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut t = MmioTransport::new(Upper::default());
        let d = Driver::new(16);
        let _ = bring_up(&mut t, &d, feature::VERSION_1 | feature::EVENT_IDX);
        // A broken ring: avail.idx far ahead.
        d.set_avail_idx(&mem, 100);
        assert_eq!(t.notify_queue(0, &mem).irq, Some(true));
        assert_ne!(r(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), INT_CONFIG_CHANGE);
        assert_eq!(fx(&mut t, reg::QUEUE_NOTIFY, 0).notify, None, "not live");
        // The driver may write NEEDS_RESET back with its own bits.
        let s = r(&mut t, reg::STATUS);
        w(&mut t, reg::STATUS, s | status::FAILED);
        assert_eq!(r(&mut t, reg::STATUS), s | status::FAILED);
        // Reset lowers the line and clears everything.
        let e = fx(&mut t, reg::STATUS, 0);
        assert_eq!(
            e,
            Effects {
                reset: true,
                irq: Some(false),
                ..Default::default()
            }
        );
        assert_eq!(r(&mut t, reg::STATUS), 0);
        assert_eq!(r(&mut t, reg::QUEUE_READY), 0);
        assert_eq!(t.device().resets, 2, "bring_up reset once");
        // And the driver starts over, with fresh rings.
        let mut ram2 = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram2);
        let mut d = Driver::new(8);
        let _ = bring_up(&mut t, &d, feature::VERSION_1 | feature::EVENT_IDX);
        d.add(&mem, &[(BASE + 0x8000, 1, false), (BASE + 0x9000, 1, true)]);
        d.publish(&mem);
        assert_eq!(t.notify_queue(0, &mem).irq, Some(true));
        assert_eq!(d.used(&mem), [(0, 1)]);
        assert_eq!(d.avail_event(&mem), 1, "EVENT_IDX re-armed");

        // A device-reported failure raises the config interrupt too.
        t.device_mut().fail_next = true;
        let _ = fx(&mut t, reg::INTERRUPT_ACK, 3);
        assert_eq!(t.notify_queue(0, &mem).irq, Some(true));
        assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), INT_CONFIG_CHANGE);
    }

    #[test]
    fn config_change_bumps_generation() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut t = MmioTransport::new(Upper::default());
        let ((), fx) = t.with_device(&mem, |_, ctx| ctx.config_changed());
        assert_eq!(fx.irq, None, "no interrupt before DRIVER_OK");
        assert_eq!(r(&mut t, reg::CONFIG_GENERATION), 1);
        let d = Driver::new(16);
        let _ = bring_up(&mut t, &d, feature::VERSION_1);
        let ((), fx) = t.with_device(&mem, |_, ctx| ctx.config_changed());
        assert_eq!(fx.irq, Some(true));
        assert_eq!(r(&mut t, reg::CONFIG_GENERATION), 2);
        assert_eq!(r(&mut t, reg::INTERRUPT_STATUS), INT_CONFIG_CHANGE);
    }

    #[test]
    fn pushes_after_a_queue_reset_are_dropped() {
        let mut ram = vec![0u8; RAM];
        let mem = SliceMemory::new(BASE, &mut ram);
        let mut t = MmioTransport::new(Upper::default());
        let mut d = Driver::new(16);
        let _ = bring_up(&mut t, &d, feature::VERSION_1);
        d.add(&mem, &[(BASE + 0x9000, 1, true)]);
        d.publish(&mem);
        let (chain, _) = t.with_device(&mem, |_, ctx| ctx.pop(0).unwrap().unwrap());
        w(&mut t, reg::QUEUE_READY, 0);
        w(&mut t, reg::QUEUE_READY, 1);
        let (res, fx) = t.with_device(&mem, |_, ctx| ctx.push(chain.token(), 1));
        assert_eq!((res, fx.irq), (Ok(()), None));
        assert_eq!(d.used(&mem), []);
        // A push with nothing popped is a device bug, reported.
        let (res, _) = t.with_device(&mem, |_, ctx| ctx.push(chain.token(), 1));
        assert_eq!(res, Ok(()), "still stale");
        d.add(&mem, &[(BASE + 0x9000, 1, true)]);
        d.publish(&mem);
        let (res, _) = t.with_device(&mem, |_, ctx| {
            let c = ctx.pop(0).unwrap().unwrap();
            ctx.push(c.token(), 1).unwrap();
            ctx.push(c.token(), 1)
        });
        assert_eq!(res, Err(QueueError::NotInFlight));
    }
}
