//! The vGIC's register windows: the distributor and the redistributor
//! frames (one 128 KiB frame per vCPU) as [`EmulatedDevice`]s over the
//! partition's [`super::vgic::VGic`]. Changes the physical GIC must follow
//! (passthrough SPIs enabled or routed, the virtual timer's PPI enabled)
//! are applied by [`apply_gic_effect`].

use super::vgic::{self, Effect};
use super::{Access, Actions, EmulatedDevice, Partition, hv};
use crate::arch::gic;
use config::layout;

/// The distributor window (`layout::GICD_BASE`).
pub struct Distributor;

/// The redistributor frames (`layout::GICR_BASE`, one per vCPU).
pub struct Redistributors;

impl EmulatedDevice for Distributor {
    fn read(&'static self, a: &Access, _: &mut Actions) -> u64 {
        a.partition.vgic.lock().dist_read(a.offset, a.width)
    }

    fn write(&'static self, a: &Access, value: u64, _: &mut Actions) {
        let p = a.partition;
        let mut vgic = p.vgic.lock();
        vgic.dist_write(a.offset, a.width, value, &mut |e| apply_gic_effect(p, e));
        // A routing register: keep the lock-free copy up to date.
        if (0x6000..0x8000).contains(&a.offset) {
            let intid = ((a.offset - 0x6000) / 8) as u32;
            p.spi_routes.set(intid, vgic.spi_target(intid));
        }
    }

    /// The whole vGIC (distributor and redistributors) goes back to reset.
    fn reset(&self, p: &Partition) {
        p.vgic.lock().reset(&mut |e| apply_gic_effect(p, e));
        for intid in 0..vgic::MAX_INTID as u32 {
            p.spi_routes.set(intid, 0);
        }
    }
}

impl EmulatedDevice for Redistributors {
    fn read(&'static self, a: &Access, _: &mut Actions) -> u64 {
        let (vcpu, offset) = frame_of(a.offset);
        a.partition.vgic.lock().redist_read(vcpu, offset, a.width)
    }

    fn write(&'static self, a: &Access, value: u64, _: &mut Actions) {
        let p = a.partition;
        let (vcpu, offset) = frame_of(a.offset);
        p.vgic
            .lock()
            .redist_write(vcpu, offset, a.width, value, &mut |e| {
                apply_gic_effect(p, e)
            });
    }

    // Reset with the distributor: one vGIC.
}

/// The vCPU whose frame holds `offset`, and the offset in that frame.
fn frame_of(offset: u64) -> (usize, u64) {
    (
        (offset / layout::GICR_STRIDE) as usize,
        offset % layout::GICR_STRIDE,
    )
}

/// Applies a vGIC side effect to the physical GIC.
pub fn apply_gic_effect(p: &Partition, effect: Effect) {
    let hv = hv();
    let core_of = |vcpu: usize| p.vcpu_cpus.get(vcpu).map(|&c| &hv.cpus[c]);
    match effect {
        Effect::SpiEnable { intid, enable } => gic::set_spi_enabled(hv.gicd, intid, enable),
        Effect::SpiRoute { intid, vcpu } => {
            if let Some(c) = core_of(vcpu) {
                gic::route_spi(hv.gicd, intid, c.mpidr)
            }
        }
        // Only the EL1 timers are backed by physical PPIs; SGIs are
        // purely virtual.
        Effect::PrivateEnable {
            vcpu,
            intid,
            enable,
        } if hv.platform.is_guest_timer(intid) => {
            if let Some(c) = core_of(vcpu) {
                gic::set_private_enabled(c.redistributor, intid, enable)
            }
        }
        Effect::PrivateEnable { .. } => {}
    }
}
