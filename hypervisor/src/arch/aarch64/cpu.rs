//! System-register access and the per-core EL2 set-up.

use core::arch::asm;

/// Reads a system register by name.
macro_rules! read_sysreg {
    ($name:expr) => {{
        let value: u64;
        // SAFETY: reading a system register has no memory side effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

/// Writes a system register by name.
macro_rules! write_sysreg {
    ($name:expr, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: callers write only EL2-owned or guest-context registers
        // with values that keep the hypervisor's own translation intact.
        unsafe { core::arch::asm!(concat!("msr ", $name, ", {}"), in(reg) value, options(nostack)) };
    }};
}

pub(crate) use {read_sysreg, write_sysreg};

pub fn isb() {
    // SAFETY: barrier only.
    unsafe { asm!("isb", options(nostack)) };
}

pub fn dsb_sy() {
    // SAFETY: barrier only.
    unsafe { asm!("dsb sy", options(nostack)) };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt; masked interrupts still wake the core.
    unsafe { asm!("wfi", options(nomem, nostack)) };
}

pub fn mpidr_affinity() -> u64 {
    read_sysreg!("mpidr_el1") & 0xff_00ff_ffff
}

/// This core's logical CPU number, kept in TPIDR_EL2 from boot on.
pub fn current() -> usize {
    read_sysreg!("tpidr_el2") as usize
}

pub fn set_current(cpu: usize) {
    write_sysreg!("tpidr_el2", cpu as u64);
}

const HCR_VM: u64 = 1 << 0;
const HCR_SWIO: u64 = 1 << 1;
const HCR_FMO: u64 = 1 << 3;
const HCR_IMO: u64 = 1 << 4;
const HCR_AMO: u64 = 1 << 5;
const HCR_FB: u64 = 1 << 9;
const HCR_BSU_IS: u64 = 1 << 10;
const HCR_TSC: u64 = 1 << 19;
const HCR_TIDCP: u64 = 1 << 20;
const HCR_RW: u64 = 1 << 31;

/// EL2 configuration common to every core, before any guest runs:
/// vectors, traps, timer access and stage-2 translation control.
pub fn init_el2(vectors: u64) {
    write_sysreg!("vbar_el2", vectors);
    // Guests run AArch64 at EL1 with stage 2; physical interrupts and
    // SErrors come to EL2; SMC and implementation-defined registers trap.
    write_sysreg!(
        "hcr_el2",
        HCR_VM
            | HCR_SWIO
            | HCR_FMO
            | HCR_IMO
            | HCR_AMO
            | HCR_FB
            | HCR_BSU_IS
            | HCR_TSC
            | HCR_TIDCP
            | HCR_RW
    );
    // No FP/SIMD or trace traps: the guest owns those registers and EL2
    // (built soft-float) never touches them. Bits 0-7, 9, 12, 13 are RES1.
    write_sysreg!("cptr_el2", 0x33ff);
    // Guests read the physical counter; the EL1 physical timer traps (the
    // virtual timer is theirs).
    write_sysreg!("cnthctl_el2", 0b01);
    write_sysreg!("cntvoff_el2", 0);
    // Let guests use all PMU counters; no debug traps.
    let pmcr_n = (read_sysreg!("pmcr_el0") >> 11) & 0x1f;
    write_sysreg!("mdcr_el2", pmcr_n);
    write_sysreg!("vpidr_el2", read_sysreg!("midr_el1"));
    // Stage 2: 4 KiB granule, 39-bit IPA (start at level 1), inner
    // shareable write-back walks, 40-bit PA, 8-bit VMID.
    let vtcr =
        (1 << 31) | (0b010 << 16) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8) | (0b01 << 6) | 25;
    write_sysreg!("vtcr_el2", vtcr);
    isb();
}

/// Points stage 2 at a partition's tables and sets the vCPU identity.
pub fn set_guest_identity(vttbr: u64, vcpu: usize) {
    write_sysreg!("vttbr_el2", vttbr);
    // Bit 31 is RES1; Aff0 = vCPU number, matching the generated device tree.
    write_sysreg!("vmpidr_el2", (1 << 31) | vcpu as u64);
    isb();
    // SAFETY: invalidates this VMID's stage-1 and stage-2 TLB entries.
    unsafe { asm!("tlbi vmalls12e1is", "dsb ish", "isb", options(nostack)) };
}

/// Resets the EL1 state a guest could have left behind, before a (re)boot.
pub fn reset_el1() {
    write_sysreg!("sctlr_el1", 0x30d0_0800); // RES1 bits, MMU and caches off
    write_sysreg!("cpacr_el1", 0);
    write_sysreg!("vbar_el1", 0);
    write_sysreg!("tcr_el1", 0);
    write_sysreg!("ttbr0_el1", 0);
    write_sysreg!("ttbr1_el1", 0);
    write_sysreg!("mair_el1", 0);
    write_sysreg!("contextidr_el1", 0);
    write_sysreg!("tpidr_el1", 0);
    write_sysreg!("tpidr_el0", 0);
    write_sysreg!("tpidrro_el0", 0);
    write_sysreg!("sp_el1", 0);
    write_sysreg!("sp_el0", 0);
    write_sysreg!("cntkctl_el1", 0);
    write_sysreg!("cntv_ctl_el0", 0);
    write_sysreg!("cntv_cval_el0", 0);
    isb();
}

/// Guest-visible EL1 exception state, for injecting an exception.
pub struct El1Exception {
    pub esr: u64,
    pub far: Option<u64>,
}

/// Arranges for the guest to take a synchronous exception at EL1 when it
/// resumes: the guest's PC and PSTATE go to ELR_EL1/SPSR_EL1 and execution
/// continues at the right offset of VBAR_EL1.
pub fn inject_sync(frame: &mut super::Frame, e: El1Exception) {
    let mode = frame.spsr & 0b1111;
    let offset = match mode {
        0b0100 => 0x000, // EL1t
        0b0101 => 0x200, // EL1h
        _ => 0x400,      // EL0, AArch64
    };
    write_sysreg!("esr_el1", e.esr);
    if let Some(far) = e.far {
        write_sysreg!("far_el1", far);
    }
    write_sysreg!("elr_el1", frame.elr);
    write_sysreg!("spsr_el1", frame.spsr);
    frame.elr = read_sysreg!("vbar_el1") + offset;
    frame.spsr = 0x3c5; // EL1h, D A I F masked
}

/// ESR/FAR/HPFAR of the current trap.
pub struct TrapInfo {
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
}

pub fn trap_info() -> TrapInfo {
    TrapInfo {
        esr: read_sysreg!("esr_el2"),
        far: read_sysreg!("far_el2"),
        hpfar: read_sysreg!("hpfar_el2"),
    }
}

/// Calls firmware through SMC or HVC (SMC Calling Convention).
pub fn firmware_call(smc: bool, x0: u64, x1: u64, x2: u64, x3: u64) -> u64 {
    let mut r0 = x0;
    // SAFETY: a PSCI call to firmware; it clobbers only what SMCCC allows.
    unsafe {
        if smc {
            asm!("smc #0", inout("x0") r0, inout("x1") x1 => _, inout("x2") x2 => _, inout("x3") x3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _);
        } else {
            asm!("hvc #0", inout("x0") r0, inout("x1") x1 => _, inout("x2") x2 => _, inout("x3") x3 => _,
                 out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _, out("x10") _,
                 out("x11") _, out("x12") _, out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _);
        }
    }
    r0
}

/// Cleans data cache lines over a range to the point of coherency, so a
/// guest that starts with its MMU (and caches) off sees what EL2 wrote.
pub fn clean_dcache(start: u64, len: u64) {
    let line = 4u64 << ((read_sysreg!("ctr_el0") >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cache maintenance by VA on memory mapped at EL2.
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    dsb_sy();
    // SAFETY: invalidates all instruction caches (new guest code).
    unsafe { asm!("ic ialluis", "dsb ish", "isb", options(nostack)) };
}

/// Makes a virtual SError pending for the guest (HCR_EL2.VSE); it is taken
/// when the guest unmasks SErrors.
pub fn raise_virtual_serror() {
    write_sysreg!("hcr_el2", read_sysreg!("hcr_el2") | (1 << 8));
}

/// The physical counter (the same time base the guests' virtual counter
/// uses, with CNTVOFF_EL2 = 0).
pub fn counter() -> u64 {
    isb();
    read_sysreg!("cntpct_el0")
}

pub fn counter_frequency() -> u64 {
    read_sysreg!("cntfrq_el0")
}

/// Arms this core's EL2 physical timer for counter value `deadline`, or
/// disarms it.
pub fn set_hyp_timer(deadline: Option<u64>) {
    match deadline {
        Some(cval) => {
            write_sysreg!("cnthp_cval_el2", cval);
            write_sysreg!("cnthp_ctl_el2", 1);
        }
        None => write_sysreg!("cnthp_ctl_el2", 0),
    }
    isb();
}
