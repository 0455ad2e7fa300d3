//! PSCI calls through the conduit the device tree names (`hvc` or `smc`).

use crate::dt::Conduit;
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};

pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON: u32 = 0xc400_0003;
pub const AFFINITY_INFO: u32 = 0xc400_0004;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;

pub const SUCCESS: i32 = 0;
pub const NOT_SUPPORTED: i32 = -1;
pub const INVALID_PARAMETERS: i32 = -2;
pub const DENIED: i32 = -3;
pub const ALREADY_ON: i32 = -4;
pub const ON_PENDING: i32 = -5;

/// AFFINITY_INFO results.
pub const AFFINITY_ON: i32 = 0;
pub const AFFINITY_OFF: i32 = 1;
pub const AFFINITY_ON_PENDING: i32 = 2;

static USE_SMC: AtomicBool = AtomicBool::new(false);

pub fn set_conduit(conduit: Conduit) {
    USE_SMC.store(conduit == Conduit::Smc, Ordering::Relaxed);
}

/// An SMCCC call with three arguments; returns x0. x0-x17 may be clobbered.
pub fn call(function: u32, a1: u64, a2: u64, a3: u64) -> u64 {
    let mut x0 = u64::from(function);
    // SAFETY: a firmware/hypervisor call; it only touches the listed registers
    // (and, for CPU_ON, starts a vCPU at a valid entry).
    unsafe {
        if USE_SMC.load(Ordering::Relaxed) {
            asm!("smc #0",
                inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack));
        } else {
            asm!("hvc #0",
                inout("x0") x0, inout("x1") a1 => _, inout("x2") a2 => _, inout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack));
        }
    }
    x0
}

/// PSCI status codes are 32-bit signed values in w0.
fn status(x0: u64) -> i32 {
    x0 as u32 as i32
}

/// Major version in bits [31:16], minor in [15:0].
pub fn version() -> u32 {
    call(PSCI_VERSION, 0, 0, 0) as u32
}

pub fn cpu_on(mpidr: u64, entry: u64, context_id: u64) -> i32 {
    status(call(CPU_ON, mpidr, entry, context_id))
}

/// Only returns on failure.
pub fn cpu_off() -> i32 {
    status(call(CPU_OFF, 0, 0, 0))
}

/// State of the vCPU with affinity `mpidr` (level 0).
pub fn affinity_info(mpidr: u64) -> i32 {
    status(call(AFFINITY_INFO, mpidr, 0, 0))
}

pub fn system_off() -> i32 {
    status(call(SYSTEM_OFF, 0, 0, 0))
}

pub fn system_reset() -> i32 {
    status(call(SYSTEM_RESET, 0, 0, 0))
}
