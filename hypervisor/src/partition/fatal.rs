//! What happens when the hypervisor itself goes wrong: a Rust panic, or an
//! exception taken at EL2. Both are hypervisor bugs, and after one nothing
//! is known about the hypervisor's state: a lock may be held for good, a
//! structure half-updated. Carrying on with the other partitions would
//! trade a loud stop for a silent livelock or worse (another core waiting
//! forever on a lock the dead core held, while the safety partition's
//! console and disk stop without a word).
//!
//! So the policy is **fail-stop for the whole system**: the core says what
//! happened on the physical UART (directly, taking no lock), then turns the
//! machine off through firmware (PSCI SYSTEM_OFF), which stops every core
//! whatever it is doing. A board's external watchdog (or the car's power
//! management) brings the system back from a known state. Should firmware
//! refuse, every other core is asked to halt (at its next entry to EL2)
//! and this one halts.

use super::lifecycle::REQ_HALT;
use super::{psci, try_hv};
use crate::arch::{self, cpu};
use crate::drivers::uart;
use crate::dt::platform::Conduit;
use core::sync::atomic::{AtomicBool, Ordering};

/// Set by the first core to report a hypervisor bug.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Reports a hypervisor bug and stops the system. See the module docs.
pub fn hypervisor_bug(what: core::fmt::Arguments) -> ! {
    let me = cpu::current();
    if STOPPING.swap(true, Ordering::AcqRel) {
        // Another core (or this one, failing while reporting) is already
        // stopping the system.
        arch::halt()
    }
    uart::emergency(format_args!(
        "\n[hv] FATAL cpu {me}: {what}\n[hv] FATAL the hypervisor's state is unknown: \
         stopping the whole system (PSCI SYSTEM_OFF)\n"
    ));
    if let Some(hv) = try_hv() {
        let smc = hv.platform.psci == Conduit::Smc;
        // Does not return if firmware does what it is asked.
        cpu::firmware_call(smc, psci::SYSTEM_OFF as u64, 0, 0, 0);
        for (c, core) in hv.cpus.iter().enumerate() {
            if c != me {
                core.requests.fetch_or(REQ_HALT, Ordering::AcqRel);
                crate::arch::gic::send_sgi(super::KICK_SGI, core.mpidr);
            }
        }
        uart::emergency(format_args!(
            "[hv] FATAL firmware did not turn the system off: every core halts\n"
        ));
    }
    arch::halt()
}

/// Whether a core has reported a hypervisor bug (host tests).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}
