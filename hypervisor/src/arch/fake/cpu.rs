//! The simulated CPU: which core runs, the counter, the EL2 timer, trap
//! syndromes and injected exceptions.

use super::with;
use crate::arch::Frame;

/// ESR/FAR/HPFAR of the current trap (set by the test).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    /// ESR_EL2.
    pub esr: u64,
    /// FAR_EL2.
    pub far: u64,
    /// HPFAR_EL2.
    pub hpfar: u64,
}

/// Guest-visible EL1 exception state, for injecting an exception.
pub struct El1Exception {
    /// ESR_EL1 value.
    pub esr: u64,
    /// FAR_EL1 value, if the exception has one.
    pub far: Option<u64>,
}

/// Does nothing.
pub fn isb() {}
/// Does nothing.
pub fn dsb_sy() {}
/// Does nothing (a test drives the next event itself).
pub fn wfi() {}

/// Affinity of core n is n.
pub fn mpidr_affinity() -> u64 {
    with(|m| m.current as u64)
}

/// The running core.
pub fn current() -> usize {
    with(|m| m.current)
}

/// Makes `cpu` the running core.
pub fn set_current(cpu: usize) {
    with(|m| m.current = cpu)
}

/// Does nothing.
pub fn init_el2(_vectors: u64) {}
/// Does nothing.
pub fn set_guest_identity(_vttbr: u64, _vcpu: usize) {}
/// Does nothing.
pub fn reset_el1() {}

/// Records the injected exception's ESR.
pub fn inject_sync(_frame: &mut Frame, e: El1Exception) {
    with(|m| m.core().injected.push(e.esr));
}

/// The guest's stack pointer: the simulated core's.
pub fn guest_stack_pointer(_spsr: u64) -> u64 {
    with(|m| m.core().guest_sp)
}

/// The trap the test set up.
pub fn trap_info() -> TrapInfo {
    with(|m| m.trap)
}

/// Records the call; no firmware answers (PSCI NOT_SUPPORTED).
pub fn firmware_call(_smc: bool, x0: u64, x1: u64, x2: u64, x3: u64) -> u64 {
    with(|m| m.firmware_calls.push([x0, x1, x2, x3]));
    u64::MAX
}

/// Does nothing (no caches).
pub fn clean_dcache(_start: u64, _len: u64) {}

/// Sets or clears the virtual IRQ line HCR_EL2.VI.
pub fn set_virtual_irq(on: bool) {
    with(|m| m.core().virtual_irq = on);
}

/// Marks a virtual SError pending.
pub fn raise_virtual_serror() {
    with(|m| m.core().virtual_serror = true);
}

/// The simulated counter.
pub fn counter() -> u64 {
    with(|m| m.counter)
}

/// Its frequency.
pub fn counter_frequency() -> u64 {
    with(|m| m.frequency)
}

/// Arms or disarms the running core's EL2 timer.
pub fn set_hyp_timer(deadline: Option<u64>) {
    with(|m| m.core().hyp_timer = deadline);
}
