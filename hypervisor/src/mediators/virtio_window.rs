//! What the touch and audio mediators' per-partition virtio devices share:
//! a virtio-mmio transport behind one lock, whose register writes are
//! processed on the trapping core (the notified queues included), and
//! whose breaking (DEVICE_NEEDS_RESET newly set) is reported once.

use crate::arch::guest_mem::PartitionMemory;
use crate::partition::{Access, Partition, report};
use shared_devices::mmio::RegisterFile;
use shared_devices::virtio::device::VirtioDevice;
use shared_devices::virtio::mmio::{Effects, MmioTransport, status};

/// Rounds of queue processing per notification: a device that stopped at
/// its per-call budget with work left is called again this many times.
const NOTIFY_ROUNDS: usize = 4;

/// Processes the queues `fx` says were notified (or have work left) until
/// none has, or [`NOTIFY_ROUNDS`] rounds; returns the effects of it all.
pub fn settle<D: VirtioDevice>(
    transport: &mut MmioTransport<D>,
    mut fx: Effects,
    mem: &PartitionMemory,
) -> Effects {
    for _ in 0..NOTIFY_ROUNDS {
        let Some(queue) = fx.notify.take() else { break };
        fx = fx.and(transport.notify_queue(queue, mem));
    }
    fx
}

/// Whether the device waits for a reset (DEVICE_NEEDS_RESET).
pub fn broken<D: VirtioDevice>(transport: &MmioTransport<D>) -> bool {
    transport.status() & status::DEVICE_NEEDS_RESET != 0
}

/// Says, as `what` (`touch`, `audio`), that partition `p` broke a ring of
/// its device: it needs a reset.
pub fn report_broken(p: &Partition, what: &str) {
    report::warn(
        p,
        report::Kind::Device,
        format_args!("{what}: malformed virtqueue request; device needs reset"),
    );
}

/// A driver's register write `a` of `value` to `transport` (the
/// partition's memory `mem`), processed with the queues it notified;
/// reports, as `what`, a ring it broke. Returns whether the device's
/// interrupt line is to go high.
pub fn write<D: VirtioDevice>(
    transport: &spin::Mutex<MmioTransport<D>>,
    mem: &PartitionMemory,
    a: &Access,
    value: u64,
    what: &str,
) -> bool {
    let mut transport = transport.lock();
    let broken_before = broken(&transport);
    let mut fx = Effects::default();
    transport.write(a.offset, a.width, value, &mut fx);
    let fx = settle(&mut transport, fx, mem);
    let broke = !broken_before && broken(&transport);
    drop(transport);
    if broke {
        report_broken(a.partition, what);
    }
    fx.irq == Some(true)
}
