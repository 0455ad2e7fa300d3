//! The vGIC's register windows: the distributor and the redistributor
//! frames (one 128 KiB frame per vCPU) as [`EmulatedDevice`]s over the
//! partition's [`super::vgic::VGic`]. Changes the physical GIC must follow
//! (passthrough SPIs enabled or routed, the virtual timer's PPI enabled)
//! are applied by [`apply_gic_effect`].
//!
//! Pending and active state (ISPENDR, ICPENDR, ISACTIVER, ICACTIVER, in
//! the distributor for SPIs and in each redistributor for SGIs and PPIs)
//! is not in the model: it is where the interrupt is. A physically backed
//! interrupt (passthrough SPI, EL1 timer) has it at the physical GIC,
//! which these registers read and write for the partition's own ones. A
//! software interrupt (an emulated device's SPI, a virtual SGI) has it in
//! its vCPU's pending set and list registers (`virq`): set-pending raises
//! it, clear-pending and clear-active take it back (from another core's
//! list registers before its vCPU runs again); setting a software
//! interrupt active is ignored (nothing could end it). Only aligned 32-bit
//! accesses reach them; SGIs and PPIs in the distributor read as zero
//! (affinity routing: they are the redistributors').

use super::vgic::{self, Effect};
use super::{Access, Actions, EmulatedDevice, Partition, Window, hv, virq};
use crate::arch::{StateBit, gic};
use config::layout;
use shared_devices::mmio::Width;

/// The distributor window (`layout::GICD_BASE`).
pub struct Distributor;

/// The redistributor frames (`layout::GICR_BASE`, one per vCPU).
pub struct Redistributors;

impl EmulatedDevice for Distributor {
    fn read(&'static self, a: &Access, _: &mut Actions) -> u64 {
        if let Some((which, first)) = state_register(a, 0x200) {
            return u64::from(read_states(a.partition, None, first, which));
        }
        a.partition.vgic.lock().dist_read(a.offset, a.width)
    }

    fn write(&'static self, a: &Access, value: u64, _: &mut Actions) {
        let p = a.partition;
        if let Some((which, first)) = state_register(a, 0x200) {
            return write_states(p, None, first, which, value as u32);
        }
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
        let in_frame = Access { offset, ..*a };
        if let Some((which, _)) = state_register(&in_frame, 0x1_0200) {
            return u64::from(read_states(a.partition, Some(vcpu), 0, which));
        }
        a.partition.vgic.lock().redist_read(vcpu, offset, a.width)
    }

    fn write(&'static self, a: &Access, value: u64, _: &mut Actions) {
        let p = a.partition;
        let (vcpu, offset) = frame_of(a.offset);
        let in_frame = Access { offset, ..*a };
        if let Some((which, _)) = state_register(&in_frame, 0x1_0200) {
            return write_states(p, Some(vcpu), 0, which, value as u32);
        }
        p.vgic
            .lock()
            .redist_write(vcpu, offset, a.width, value, &mut |e| {
                apply_gic_effect(p, e)
            });
    }

    // Reset with the distributor: one vGIC.
}

/// Which state an access to the pending/active registers at `base`
/// (GICD_ISPENDR, or GICR_ISPENDR0) is about: set (true) or clear of
/// pending or active, and the first INTID of its 32. `None` for any other
/// register, or an access that is not an aligned 32-bit one.
fn state_register(a: &Access, base: u64) -> Option<((StateBit, bool), u32)> {
    let rel = a.offset.checked_sub(base)?;
    if rel >= 0x200 || a.width != Width::Word || !a.offset.is_multiple_of(4) {
        return None;
    }
    let which = match rel / 0x80 {
        0 => (StateBit::Pending, true),
        1 => (StateBit::Pending, false),
        2 => (StateBit::Active, true),
        _ => (StateBit::Active, false),
    };
    Some((which, ((rel % 0x80) / 4 * 32) as u32))
}

/// Where interrupt `intid` of `p` keeps its state, seen from the vCPU
/// `vcpu` (its own redistributor for SGIs and PPIs): at the physical GIC,
/// in the vCPU's software state (on its core), or nowhere the partition
/// may see.
enum Home {
    /// A passthrough SPI.
    Spi,
    /// An EL1 timer PPI: the redistributor of the vCPU's core.
    Private(u64),
    /// A software interrupt of the vCPU on this core.
    Software(usize),
    Nowhere,
}

fn home(p: &Partition, vcpu: Option<usize>, intid: u32) -> Home {
    let hv = hv();
    match vcpu {
        // The distributor: SPIs only.
        None if intid < 32 => Home::Nowhere,
        None => {
            let vgic = p.vgic.lock();
            if vgic.is_hardware_spi(intid) {
                Home::Spi
            } else if vgic.owns_spi(intid) {
                let target = p.spi_routes.get(intid);
                p.vcpu_cpus
                    .get(target)
                    .map_or(Home::Nowhere, |&c| Home::Software(c))
            } else {
                Home::Nowhere
            }
        }
        Some(v) => match p.vcpu_cpus.get(v) {
            Some(&c) if hv.platform.is_guest_timer(intid) => {
                Home::Private(hv.cpus[c].redistributor)
            }
            Some(&c) if intid < 16 => Home::Software(c),
            _ => Home::Nowhere,
        },
    }
}

/// The 32 pending (or active) bits from `first` on.
fn read_states(p: &Partition, vcpu: Option<usize>, first: u32, which: (StateBit, bool)) -> u32 {
    let gicd = hv().gicd;
    (0..32).fold(0, |bits, i| {
        let intid = first + i;
        let state = match home(p, vcpu, intid) {
            Home::Spi => gic::spi_state(gicd, intid),
            Home::Private(rd) => gic::private_state(rd, intid),
            Home::Software(core) => virq::software_state(core, intid),
            Home::Nowhere => Default::default(),
        };
        let set = match which.0 {
            StateBit::Pending => state.pending,
            StateBit::Active => state.active,
        };
        bits | (u32::from(set) << i)
    })
}

/// Sets or clears the state of each interrupt whose bit is set in `bits`.
fn write_states(
    p: &Partition,
    vcpu: Option<usize>,
    first: u32,
    which: (StateBit, bool),
    bits: u32,
) {
    let gicd = hv().gicd;
    let (bit, set) = which;
    for i in virq::set_bits(bits) {
        let intid = first + i;
        match home(p, vcpu, intid) {
            Home::Spi => gic::set_spi_state(gicd, intid, bit, set),
            Home::Private(rd) => gic::set_private_state(rd, intid, bit, set),
            Home::Software(core) => match (bit, set) {
                (StateBit::Pending, true) => {
                    if p.is_running() {
                        virq::set_software_pending(core, intid)
                    }
                }
                (_, false) => virq::clear_software_state(core, intid, bit),
                (StateBit::Active, true) => {}
            },
            Home::Nowhere => {}
        }
    }
}

/// The vGIC's register windows for a partition with `vcpus` vCPUs: the
/// distributor, and one redistributor frame per vCPU.
pub fn windows(vcpus: usize) -> [Window; 2] {
    [
        Window {
            base: layout::GICD_BASE,
            size: layout::GICD_SIZE,
            intid: None,
            device: &Distributor,
        },
        Window {
            base: layout::GICR_BASE,
            size: layout::GICR_STRIDE * vcpus as u64,
            intid: None,
            device: &Redistributors,
        },
    ]
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
