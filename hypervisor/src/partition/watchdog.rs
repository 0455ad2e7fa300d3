//! A partition's SP805 watchdog (`watchdog = true` in its config): the
//! register window over the model in `shared_devices::sp805`, and the
//! expiry handling: the first expiry raises its interrupt, the second stops
//! or restarts the partition per `on_fault`. Each core of the partition
//! arms its EL2 timer for the next deadline.

use super::{
    Access, Actions, EmulatedDevice, Partition, crash, hyp_timer, lifecycle, raise_virtual_spi,
};
use crate::arch::{Frame, cpu};
use config::layout;
use config::model::OnFault;
use shared_devices::crash_record::Cause;
use shared_devices::mmio::RegisterFile;
use shared_devices::sp805::{Expiry, Sp805Effects};

/// The watchdog's register window (`layout::WATCHDOG_BASE`).
pub struct Watchdog;

impl EmulatedDevice for Watchdog {
    fn read(&'static self, a: &Access, actions: &mut Actions) -> u64 {
        let Some(w) = &a.partition.watchdog else {
            return 0;
        };
        let mut w = w.lock();
        w.set_now(now());
        actions.watchdog = true;
        w.read(a.offset, a.width, &mut Sp805Effects::default())
    }

    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let Some(w) = &a.partition.watchdog else {
            return;
        };
        let mut w = w.lock();
        w.set_now(now());
        let mut fx = Sp805Effects::default();
        w.write(a.offset, a.width, value, &mut fx);
        actions.raise_line = fx.irq == Some(true);
        // Re-arm this core's timer for the (possibly new) deadline.
        actions.watchdog = true;
    }

    fn line_high(&self, p: &Partition) -> bool {
        p.watchdog.as_ref().is_some_and(|w| w.lock().interrupt())
    }

    fn reset(&self, p: &Partition) {
        if let Some(w) = &p.watchdog {
            w.lock().reset();
        }
    }
}

/// The watchdog's clock (`layout::APB_CLOCK_HZ`), derived from the
/// physical counter.
pub fn now() -> u64 {
    let ticks = cpu::counter() as u128 * layout::APB_CLOCK_HZ as u128;
    (ticks / cpu::counter_frequency().max(1) as u128) as u64
}

/// The watchdog of `p` expired twice: makes the crash record (with the
/// registers of the vCPU this core was running, if it was: `frame`) and
/// stops or restarts the partition.
pub fn expire(p: &Partition, then: OnFault, frame: Option<&Frame>) -> ! {
    let event = crash::Event::new(Cause::Watchdog, crash::action(then));
    crash::record(p, event, frame);
    lifecycle::stop_partition(p, then)
}

/// Advances the partition's watchdog to now: raises its interrupt on the
/// first expiry, and arms this core's EL2 timer for its next deadline.
/// On the second expiry it returns what to do to the partition (stop or
/// restart, per `on_fault`), which the caller does ([`expire`]). Called on a core of the
/// partition, after a watchdog register access or when that timer fires.
#[must_use]
pub fn service(p: &Partition) -> Option<OnFault> {
    let Some(watchdog) = &p.watchdog else {
        hyp_timer::set(hyp_timer::User::Watchdog, None);
        return None;
    };
    let (expiry, next) = {
        let mut w = watchdog.lock();
        let expiry = w.poll(now());
        (expiry, w.next_deadline())
    };
    match expiry {
        Expiry::Nothing => {}
        Expiry::Interrupt => raise_virtual_spi(p, layout::WATCHDOG_INTID),
        Expiry::Reset => {
            hyp_timer::set(hyp_timer::User::Watchdog, None);
            let then = if p.config.on_fault == OnFault::Restart {
                OnFault::Restart
            } else {
                OnFault::Stop
            };
            return Some(then);
        }
    }
    let freq = cpu::counter_frequency() as u128;
    let deadline = next.map(|t| (t as u128 * freq).div_ceil(layout::APB_CLOCK_HZ as u128) as u64);
    hyp_timer::set(hyp_timer::User::Watchdog, deadline);
    None
}
