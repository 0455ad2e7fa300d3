//! Physical interrupts taken at EL2: each is acknowledged, then given to
//! its owner: a mediator (its device), the watchdog (this core's EL2
//! timer), the list-register machinery (maintenance), or the running
//! vCPU (its virtual timer and passthrough SPIs, forwarded with the HW
//! bit). Anything else belongs to no running vCPU and is dropped.

use super::{Partition, current_vcpu, hv, hyp_timer, this_cpu, virq, watchdog};
use crate::arch::gic;
use config::model::OnFault;

/// Acknowledges and dispatches every pending physical interrupt. Returns
/// the partition to stop, and how, if its watchdog's second expiry came
/// due (the caller stops it: it does not return from that).
#[must_use]
pub fn service_interrupts() -> Option<(&'static Partition, OnFault)> {
    let hv = hv();
    let me = this_cpu();
    loop {
        let intid = gic::ack();
        if intid >= gic::SPURIOUS - 3 {
            break;
        }
        gic::eoi(intid);
        if let Some((_, mediator)) = hv.interrupt_owners.iter().find(|(i, _)| *i == intid) {
            mediator.interrupt(intid);
            gic::deactivate(intid);
            continue;
        }
        if intid == hv.platform.hyp_timer_intid {
            // Disarm and deactivate first: servicing may reset the
            // partition. The watchdog re-arms it for itself here, the
            // mediators when they are served next (on the way out).
            hyp_timer::fired();
            gic::deactivate(intid);
            if let Some((p, _)) = current_vcpu()
                && let Some(then) = watchdog::service(p)
            {
                return Some((p, then));
            }
            continue;
        }
        if intid == hv.platform.gic_maintenance {
            if let Some((p, _)) = current_vcpu() {
                virq::end_of_interrupts(me, p);
            }
            // Its conditions are levels: off until the way back to the
            // guest asks again for what it still needs, or this loop
            // would take it forever.
            gic::set_maintenance(false, false);
            gic::deactivate(intid);
            continue;
        }
        let running = me.guest_on().then(current_vcpu).flatten();
        let forward = match running {
            Some((p, _)) if hv.platform.is_guest_timer(intid) => Some(p),
            Some((p, _)) if intid >= 32 && p.vgic.lock().owns_spi(intid) => Some(p),
            _ => None,
        };
        match forward {
            Some(p) => virq::inject_hardware(me, p, me.vcpu.map_or(0, |v| v.1), intid),
            // Kicks and maintenance interrupts need no more than waking us;
            // anything else belongs to no running vCPU and is dropped.
            None => gic::deactivate(intid),
        }
    }
    None
}
