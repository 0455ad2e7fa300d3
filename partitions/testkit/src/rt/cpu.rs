//! Per-vCPU facts and secondary vCPU start-up.

use super::{boot, psci};
use crate::MAX_CPUS;
use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

/// The affinity fields of MPIDR_EL1 (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// Index of the running vCPU: 0 for the boot vCPU, else the PSCI context id
/// it was started with.
pub fn index() -> usize {
    let value: usize;
    // SAFETY: reads a register the boot code set.
    unsafe { asm!("mrs {}, tpidr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// MPIDR_EL1 of the running vCPU.
pub fn mpidr() -> u64 {
    let value: u64;
    // SAFETY: reading an ID register has no side effects.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

pub fn mask_irqs() {
    // SAFETY: only changes PSTATE.I.
    unsafe { asm!("msr daifset, #2", options(nostack, preserves_flags)) };
}

pub fn unmask_irqs() {
    // SAFETY: only changes PSTATE.I; handlers are installed.
    unsafe { asm!("msr daifclr, #2", options(nostack, preserves_flags)) };
}

pub fn unmask_serror() {
    // SAFETY: only changes PSTATE.A; the vectors handle SErrors.
    unsafe { asm!("msr daifclr, #4", options(nostack, preserves_flags)) };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt; no memory effects.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}

pub fn wfe() {
    // SAFETY: waits for an event; no memory effects.
    unsafe { asm!("wfe", options(nostack, preserves_flags)) };
}

pub fn sev() {
    // SAFETY: signals an event; no memory effects.
    unsafe { asm!("sev", options(nostack, preserves_flags)) };
}

/// `main` of each secondary vCPU, as a `fn(usize) -> !` address (0: none).
static SECONDARY_MAIN: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// Starts the vCPU with affinity `mpidr` through PSCI `CPU_ON`; it runs
/// `main(index)` on its own stack with its GIC interface set up. Returns the
/// PSCI status (0 on success). An `index` of `MAX_CPUS` or more is still
/// passed to PSCI, but such a vCPU parks at once if it starts.
pub fn start(mpidr: u64, index: usize, main: fn(usize) -> !) -> i32 {
    if let Some(slot) = SECONDARY_MAIN.get(index) {
        slot.store(main as usize, Ordering::Release);
    }
    psci::cpu_on(
        mpidr,
        boot::__testkit_secondary_entry as *const () as u64,
        index as u64,
    )
}

/// Rust entry of a secondary vCPU.
pub(super) fn boot_secondary(index: usize) -> ! {
    super::enable_interrupts_here();
    let main = SECONDARY_MAIN[index].load(Ordering::Acquire);
    if main == 0 {
        super::park();
    }
    // SAFETY: only `start` stores into SECONDARY_MAIN, always a `fn(usize) -> !`.
    let main: fn(usize) -> ! = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(main) };
    main(index)
}
