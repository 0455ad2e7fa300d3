//! What a virtio device model implements, whatever its transport.
//!
//! A mediator (block, GPU, input, sound, console) implements
//! [`VirtioDevice`]: its identity, the features and queues it offers, its
//! configuration space, and what it does when the driver notifies a queue.
//! The transport ([`super::mmio::MmioTransport`]) owns the queues and the
//! device status; the device reaches its queues, guest memory and the
//! interrupt only through a [`DeviceContext`], which the transport builds
//! for each call and whose effects (interrupt, config change, needs-reset)
//! it applies afterwards. Events that do not come from the driver (a
//! physical completion, input arriving, an audio period elapsing) reach the
//! device through [`super::mmio::MmioTransport::with_device`], with the same
//! context.

use super::memory::GuestMemory;
use super::queue::{ChainToken, DescriptorChain, QueueError, VirtQueue};

/// Device types (VIRTIO 1.2 §5) of the mediated devices.
pub mod id {
    pub const BLOCK: u32 = 2;
    pub const CONSOLE: u32 = 3;
    pub const GPU: u32 = 16;
    pub const INPUT: u32 = 18;
    pub const SOUND: u32 = 25;
}

/// Device-independent feature bits (VIRTIO 1.2 §6).
pub mod feature {
    /// Indirect descriptor tables (§2.7.5.3).
    pub const INDIRECT_DESC: u64 = 1 << 28;
    /// `used_event` / `avail_event` notification suppression (§2.7.7).
    pub const EVENT_IDX: u64 = 1 << 29;
    /// A non-legacy (virtio 1.x) device; required by this transport.
    pub const VERSION_1: u64 = 1 << 32;
    /// Every feature bit this framework implements on the transport and
    /// ring side; a device must not offer other bits of 28..=40 (e.g.
    /// RING_PACKED, IN_ORDER, NOTIFICATION_DATA, RING_RESET).
    pub const TRANSPORT: u64 = INDIRECT_DESC | EVENT_IDX | VERSION_1;
}

/// The most queues any mediated device has (sound has four).
pub const MAX_QUEUES: usize = 8;

/// A virtio device model.
pub trait VirtioDevice {
    /// The device type (see [`id`]).
    fn device_id(&self) -> u32;

    /// The features offered, device-specific and transport bits together
    /// (VERSION_1 must be among them).
    fn device_features(&self) -> u64;

    /// Number of virtqueues (at most [`MAX_QUEUES`]).
    fn queue_count(&self) -> u16;

    /// QueueNumMax of queue `queue` (< `queue_count()`).
    fn queue_max_size(&self, queue: u16) -> u16;

    /// Reads device configuration space at `offset` into `data`. Bytes
    /// beyond the configuration space must be left as they are (the
    /// transport zero-fills `data` first).
    fn read_config(&self, offset: u32, data: &mut [u8]);

    /// A driver write to configuration space (most devices ignore it;
    /// input selects what its config space shows this way).
    fn write_config(&mut self, offset: u32, data: &[u8]) {
        let _ = (offset, data);
    }

    /// Device-specific check of the features the driver accepted (already
    /// known to be a subset of the offer including VERSION_1); false
    /// refuses FEATURES_OK.
    fn accept_features(&self, features: u64) -> bool {
        let _ = features;
        true
    }

    /// The driver set DRIVER_OK with these negotiated features.
    fn activate(&mut self, features: u64) {
        let _ = features;
    }

    /// The driver notified queue `queue` (ready, and the device is live).
    fn queue_notify(&mut self, queue: u16, ctx: &mut DeviceContext<'_>);

    /// Device reset (the driver wrote 0 to Status, or the partition is
    /// restarting): forget every request. Work already handed to physical
    /// devices may still complete later; its tokens must then be recognised
    /// as stale.
    fn reset(&mut self);
}

/// A device's access to its queues, guest memory and interrupt during one
/// call from the transport.
pub struct DeviceContext<'a> {
    mem: &'a dyn GuestMemory,
    queues: &'a mut [VirtQueue],
    features: u64,
    live: bool,
    used_notify: bool,
    config_changed: bool,
    needs_reset: bool,
    again: Option<u16>,
}

impl<'a> DeviceContext<'a> {
    /// `live`: DRIVER_OK is set and DEVICE_NEEDS_RESET is not, so the
    /// device may use its queues.
    pub(crate) fn new(
        mem: &'a dyn GuestMemory,
        queues: &'a mut [VirtQueue],
        features: u64,
        live: bool,
    ) -> Self {
        Self {
            mem,
            queues,
            features,
            live,
            used_notify: false,
            config_changed: false,
            needs_reset: false,
            again: None,
        }
    }

    pub fn mem(&self) -> &'a dyn GuestMemory {
        self.mem
    }

    /// The negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    pub fn has_feature(&self, bit: u64) -> bool {
        self.features & bit == bit
    }

    /// The next available chain of `queue`, if the device is live and the
    /// queue ready. An error means the driver broke the ring: the device
    /// should call [`DeviceContext::needs_reset`].
    pub fn pop(&mut self, queue: u16) -> Result<Option<DescriptorChain>, QueueError> {
        if !self.live {
            return Ok(None);
        }
        match self.queues.get_mut(usize::from(queue)) {
            Some(q) => q.pop(queue, self.mem),
            None => Ok(None),
        }
    }

    /// See [`VirtQueue::enable_notification`]; false if not live.
    pub fn enable_notification(&mut self, queue: u16) -> Result<bool, QueueError> {
        if !self.live {
            return Ok(false);
        }
        match self.queues.get_mut(usize::from(queue)) {
            Some(q) => q.enable_notification(self.mem),
            None => Ok(false),
        }
    }

    /// Returns a chain as used with `written` bytes written, raising the
    /// used-buffer interrupt if the driver wants one. A chain from before
    /// a queue reset is silently dropped (its ring is gone). An error
    /// means the used ring is unusable.
    pub fn push(&mut self, token: ChainToken, written: u32) -> Result<(), QueueError> {
        if !self.live {
            return Ok(());
        }
        let Some(q) = self.queues.get_mut(usize::from(token.queue())) else {
            return Ok(());
        };
        match q.push(token, written, self.mem) {
            Ok(notify) => {
                self.used_notify |= notify;
                Ok(())
            }
            Err(QueueError::Stale) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The device can no longer operate until reset (VIRTIO 1.2 §2.1.1:
    /// DEVICE_NEEDS_RESET, signalled with a configuration change
    /// interrupt). The transport stops notifying the device.
    pub fn needs_reset(&mut self) {
        self.needs_reset = true;
        self.live = false;
    }

    /// The configuration space changed: bump ConfigGeneration and raise
    /// the configuration change interrupt.
    pub fn config_changed(&mut self) {
        self.config_changed = true;
    }

    /// The device stopped with work left on `queue` because it used up
    /// its budget for one call (so that a driver that keeps the ring full
    /// cannot hold the core): the transport reports it as
    /// [`super::mmio::Effects::notify`], and the hypervisor calls
    /// `notify_queue` again once other work has had its turn.
    pub fn more_work(&mut self, queue: u16) {
        self.again = Some(queue);
    }

    pub(crate) fn outcome(&self) -> (bool, bool, bool, Option<u16>) {
        (
            self.used_notify,
            self.config_changed,
            self.needs_reset,
            self.again,
        )
    }
}
