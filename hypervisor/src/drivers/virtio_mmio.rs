//! The driver's side of a physical virtio-mmio (version 2) transport,
//! shared by the hypervisor's virtio drivers (disk, display): finding the
//! device, negotiating features, handing it queues, notifying it and
//! acknowledging its interrupt (VIRTIO 1.2 §3.1.1, §4.2.3).

use crate::arch::dma;
use crate::arch::mmio::Registers;
use alloc::format;
use alloc::string::String;
use shared_devices::virtio::driver::DriverQueue;
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
        /// holds).
        (0x100 => pub config: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// A transport whose device accepted the features the driver chose
/// (FEATURES_OK) and is waiting for its queues and DRIVER_OK.
pub struct Transport {
    regs: Registers<VirtioMmio>,
    features: u64,
}

impl Transport {
    /// Resets the device of type `device_id` (VIRTIO 1.2 §5) in the frame
    /// at `base` and negotiates: it takes the offered features among
    /// `wanted` and fails unless all of `required` are offered. `what`
    /// names the device in errors ("virtio-blk").
    pub fn open(
        base: u64,
        size: u64,
        device_id: u32,
        what: &str,
        wanted: u64,
        required: u64,
    ) -> Result<Transport, String> {
        let regs = Registers::<VirtioMmio>::new(base, size).ok_or_else(|| {
            format!("virtio-mmio at {base:#x}: {size:#x}-byte frame is not device registers of 0x200 bytes")
        })?;
        let (magic, version, device) = (
            regs.magic_value.get(),
            regs.version.get(),
            regs.device_id.get(),
        );
        if magic != MAGIC || version != 2 || device != device_id {
            return Err(format!(
                "virtio-mmio at {base:#x}: not a version 2 {what} device (magic {magic:#x}, version {version}, device {device}){}",
                if version == 1 {
                    "; QEMU needs -global virtio-mmio.force-legacy=false"
                } else {
                    ""
                }
            ));
        }
        let transport = Transport { regs, features: 0 };
        transport.set_status(0);
        transport.set_status(status::ACKNOWLEDGE);
        transport.set_status(status::ACKNOWLEDGE | status::DRIVER);
        let regs = &transport.regs;
        regs.device_features_sel.set(0);
        let low = regs.device_features.get();
        regs.device_features_sel.set(1);
        let offered = u64::from(regs.device_features.get()) << 32 | u64::from(low);
        let features = offered & wanted;
        if features & required != required {
            transport.set_status(status::FAILED);
            return Err(format!(
                "{what} at {base:#x} lacks required features {:#x} (offers {offered:#x})",
                required & !features
            ));
        }
        regs.driver_features_sel.set(0);
        regs.driver_features.set(features as u32);
        regs.driver_features_sel.set(1);
        regs.driver_features.set((features >> 32) as u32);
        transport.set_status(status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        if regs.status.get() & status::FEATURES_OK == 0 {
            return Err(format!(
                "{what} at {base:#x} refused features {features:#x}"
            ));
        }
        Ok(Transport {
            features,
            ..transport
        })
    }

    fn set_status(&self, s: u32) {
        // Whatever the driver wrote to memory reaches the device first.
        dma::publish();
        self.regs.status.set(s);
    }

    /// The negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The frame's base address, for messages.
    pub fn base(&self) -> u64 {
        self.regs.base()
    }

    /// 32 bits of the device's configuration space at byte offset `at`
    /// (aligned; 0 outside the frame).
    pub fn config32(&self, at: u64) -> u32 {
        debug_assert!(at.is_multiple_of(4));
        self.regs
            .config
            .get((at / 4) as usize)
            .map_or(0, Readable::get)
    }

    /// Writes 32 bits of the device's configuration space at byte offset
    /// `at` (aligned; nothing outside the frame). Devices whose
    /// configuration has driver-written fields (virtio-input's select).
    pub fn set_config32(&self, at: u64, value: u32) {
        debug_assert!(at.is_multiple_of(4));
        if let Some(r) = self.regs.config.get((at / 4) as usize) {
            dma::publish();
            r.set(value);
        }
    }

    /// The device's QueueNumMax for queue `index`.
    pub fn queue_max(&self, index: u32) -> u32 {
        self.regs.queue_sel.set(index);
        self.regs.queue_num_max.get()
    }

    /// Gives the device queue `index`, whose rings `queue` has set up (and
    /// initialised in memory the device can reach).
    pub fn set_queue(&self, index: u32, queue: &DriverQueue) -> Result<(), String> {
        let max = self.queue_max(index);
        if max < u32::from(queue.size()) {
            return Err(format!(
                "virtio-mmio at {:#x}: queue {index} takes {max} entries, need {}",
                self.base(),
                queue.size()
            ));
        }
        self.regs.queue_num.set(u32::from(queue.size()));
        // The rings are initialised: published before the device learns
        // where they are.
        dma::publish();
        for (reg, addr) in [
            (&self.regs.queue_desc, queue.desc_addr()),
            (&self.regs.queue_driver, queue.avail_addr()),
            (&self.regs.queue_device, queue.used_addr()),
        ] {
            reg[0].set(addr as u32);
            reg[1].set((addr >> 32) as u32);
        }
        self.regs.queue_ready.set(1);
        Ok(())
    }

    /// Every queue is set: the driver is ready (DRIVER_OK).
    pub fn driver_ok(&self) {
        self.set_status(
            status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK,
        );
    }

    /// Tells the device there is something new on queue `index` (the
    /// requests and ring entries are published first).
    pub fn notify(&self, index: u32) {
        dma::publish();
        self.regs.queue_notify.set(index);
    }

    /// Lowers the device's interrupt line.
    pub fn ack_interrupt(&self) {
        let pending = self.regs.interrupt_status.get();
        dma::publish();
        self.regs.interrupt_ack.set(pending);
    }

    /// The device status register (DEVICE_NEEDS_RESET and the like).
    pub fn status(&self) -> u32 {
        self.regs.status.get()
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
        let pairs = [
            (offset_of!(VirtioMmio, magic_value), reg::MAGIC_VALUE),
            (offset_of!(VirtioMmio, version), reg::VERSION),
            (offset_of!(VirtioMmio, device_id), reg::DEVICE_ID),
            (offset_of!(VirtioMmio, vendor_id), reg::VENDOR_ID),
            (
                offset_of!(VirtioMmio, device_features),
                reg::DEVICE_FEATURES,
            ),
            (
                offset_of!(VirtioMmio, device_features_sel),
                reg::DEVICE_FEATURES_SEL,
            ),
            (
                offset_of!(VirtioMmio, driver_features),
                reg::DRIVER_FEATURES,
            ),
            (
                offset_of!(VirtioMmio, driver_features_sel),
                reg::DRIVER_FEATURES_SEL,
            ),
            (offset_of!(VirtioMmio, queue_sel), reg::QUEUE_SEL),
            (offset_of!(VirtioMmio, queue_num_max), reg::QUEUE_NUM_MAX),
            (offset_of!(VirtioMmio, queue_num), reg::QUEUE_NUM),
            (offset_of!(VirtioMmio, queue_ready), reg::QUEUE_READY),
            (offset_of!(VirtioMmio, queue_notify), reg::QUEUE_NOTIFY),
            (
                offset_of!(VirtioMmio, interrupt_status),
                reg::INTERRUPT_STATUS,
            ),
            (offset_of!(VirtioMmio, interrupt_ack), reg::INTERRUPT_ACK),
            (offset_of!(VirtioMmio, status), reg::STATUS),
            (offset_of!(VirtioMmio, queue_desc), reg::QUEUE_DESC_LOW),
            (offset_of!(VirtioMmio, queue_driver), reg::QUEUE_DRIVER_LOW),
            (offset_of!(VirtioMmio, queue_device), reg::QUEUE_DEVICE_LOW),
            (
                offset_of!(VirtioMmio, config_generation),
                reg::CONFIG_GENERATION,
            ),
            (offset_of!(VirtioMmio, config), reg::CONFIG),
        ];
        for (driver, device) in pairs {
            assert_eq!(at(driver), device);
        }
    }

    /// Against a device that answers 0 (the fake's zeroed registers), open
    /// fails on the magic value and leaves the status reset.
    #[test]
    fn open_refuses_what_is_not_a_virtio_device() {
        crate::arch::fake::reset_machine();
        let base = 0x0a00_3e00;
        let err = Transport::open(base, 0x200, 2, "virtio-blk", 0, 0)
            .err()
            .unwrap();
        assert!(err.contains("not a version 2 virtio-blk device"), "{err}");
        assert!(
            Transport::open(base, 0x100, 2, "virtio-blk", 0, 0).is_err(),
            "frame too small"
        );
        let regs = Registers::<VirtioMmio>::new(base, 0x200).unwrap();
        assert_eq!(regs.status.get(), 0);
    }
}
