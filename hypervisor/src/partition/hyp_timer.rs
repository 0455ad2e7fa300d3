//! Each core's EL2 physical timer (CNTHP), shared by the two things that
//! need to run on a core at a time of their own: the watchdog of the
//! partition it runs (its next expiry) and the mediators homed on it
//! (their next deadline, e.g. a display's refresh). Each says when it is
//! next due; the timer is armed for the earliest. When it fires, the
//! interrupt path serves both (`irq::service_interrupts` the watchdog,
//! then `service_mediators`), and each says again when it is next due.
//!
//! Without this, a mediator homed on a partition's core (allowed for any
//! non-safety partition) would run only when that partition happened to
//! trap, and not at all while it sleeps in `wfi`.

use super::this_cpu;
use crate::arch::cpu;
use core::sync::atomic::{AtomicU64, Ordering};

/// Who wants this core's EL2 timer.
#[derive(Clone, Copy)]
pub enum User {
    Watchdog = 0,
    Mediators = 1,
}

/// Records that `user` is next due at counter value `due` (or never) on
/// this core, and arms the timer for the earliest of the users.
/// The timer is written only when the earliest changes: this runs on
/// every trap.
pub fn set(user: User, due: Option<u64>) {
    let dues = &this_cpu().timer_due;
    let before = earliest(dues);
    dues[user as usize].store(due.unwrap_or(0), Ordering::Relaxed);
    let after = earliest(dues);
    if after != before {
        cpu::set_hyp_timer(after);
    }
}

/// The timer fired: disarms it and forgets every user's deadline. Each
/// says again when it is next due as it is served (the watchdog in the
/// interrupt path, the mediators on the way out of it); keeping a past
/// deadline would keep the interrupt asserted.
pub fn fired() {
    for d in &this_cpu().timer_due {
        d.store(0, Ordering::Relaxed);
    }
    cpu::set_hyp_timer(None);
}

fn earliest(dues: &[AtomicU64; 2]) -> Option<u64> {
    dues.iter()
        .map(|d| d.load(Ordering::Relaxed))
        .filter(|&d| d != 0)
        .min()
}
