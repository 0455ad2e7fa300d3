//! System registers, barriers, firmware calls, cache maintenance and the
//! per-core EL2 set-up.
//!
//! Registers are aarch64-cpu's (`aarch64_cpu::registers`), named with their
//! fields; the few it lacks are in `sysreg`. The values written are built
//! in `arch::registers`, where host tests pin them.

use super::sysreg::{CNTHP_CVAL_EL2, CPTR_EL2, CTR_EL0, PMCR_EL0, VPIDR_EL2};
use crate::arch::registers as values;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CNTFRQ_EL0, CNTHCTL_EL2, CNTHP_CTL_EL2, CNTKCTL_EL1,
    CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTPCT_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVOFF_EL2,
    CONTEXTIDR_EL1, CPACR_EL1, ELR_EL1, ESR_EL1, ESR_EL2, FAR_EL1, FAR_EL2, HCR_EL2, HPFAR_EL2,
    ID_AA64DFR0_EL1, MAIR_EL1, MDCR_EL2, MDSCR_EL1, MIDR_EL1, MPIDR_EL1, PAR_EL1, SCTLR_EL1,
    SP_EL0, SP_EL1, SPSR_EL1, SPSR_EL2, TCR_EL1, TPIDR_EL0, TPIDR_EL1, TPIDR_EL2, TPIDRRO_EL0,
    TTBR0_EL1, TTBR1_EL1, VBAR_EL1, VBAR_EL2, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use core::arch::asm;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

pub fn isb() {
    barrier::isb(barrier::SY);
}

pub fn dsb_sy() {
    barrier::dsb(barrier::SY);
}

pub fn wfi() {
    aarch64_cpu::asm::wfi();
}

pub fn mpidr_affinity() -> u64 {
    MPIDR_EL1.get() & values::MPIDR_AFFINITY
}

/// This core's logical CPU number, kept in TPIDR_EL2 from boot on.
pub fn current() -> usize {
    TPIDR_EL2.get() as usize
}

pub fn set_current(cpu: usize) {
    TPIDR_EL2.set(cpu as u64);
}

/// EL2 configuration common to every core, before any guest runs:
/// vectors, traps, timer access and stage-2 translation control.
pub fn init_el2(vectors: u64) {
    VBAR_EL2.set(vectors);
    HCR_EL2.write(values::hcr_el2());
    CPTR_EL2.write(values::cptr_el2());
    CNTHCTL_EL2.write(values::cnthctl_el2());
    CNTVOFF_EL2.set(0);
    // The PMU traps (partitions have none); debug registers do not.
    MDCR_EL2.write(values::mdcr_el2(PMCR_EL0.read(PMCR_EL0::N)));
    VPIDR_EL2.set(MIDR_EL1.get());
    VTCR_EL2.write(values::vtcr_el2());
    isb();
}

/// Points stage 2 at a partition's tables and sets the vCPU identity.
pub fn set_guest_identity(vttbr: u64, vcpu: usize) {
    // The whole value: `set_baddr` would write VMID 0.
    VTTBR_EL2.set(vttbr);
    VMPIDR_EL2.write(values::vmpidr_el2(vcpu));
    isb();
    // SAFETY: invalidates this VMID's stage-1 and stage-2 TLB entries.
    unsafe { asm!("tlbi vmalls12e1is", "dsb ish", "isb", options(nostack)) };
}

/// Resets the EL1 state a guest could have left behind, before a (re)boot:
/// a restarted partition finds the state of its first boot and no trace of
/// its previous life (system registers, both EL1 timers, FP/SIMD
/// registers, breakpoints and watchpoints).
pub fn reset_el1() {
    SCTLR_EL1.write(values::sctlr_el1_reset());
    CPACR_EL1.set(0);
    VBAR_EL1.set(0);
    TCR_EL1.set(0);
    TTBR0_EL1.set(0);
    TTBR1_EL1.set(0);
    MAIR_EL1.set(0);
    CONTEXTIDR_EL1.set(0);
    TPIDR_EL1.set(0);
    TPIDR_EL0.set(0);
    TPIDRRO_EL0.set(0);
    SP_EL1.set(0);
    SP_EL0.set(0);
    CNTKCTL_EL1.set(0);
    CNTV_CTL_EL0.set(0);
    CNTV_CVAL_EL0.set(0);
    CNTP_CTL_EL0.set(0);
    CNTP_CVAL_EL0.set(0);
    ESR_EL1.set(0);
    FAR_EL1.set(0);
    ELR_EL1.set(0);
    SPSR_EL1.set(0);
    AFSR0_EL1.set(0);
    AFSR1_EL1.set(0);
    PAR_EL1.set(0);
    AMAIR_EL1.set(0);
    MDSCR_EL1.set(0);
    reset_breakpoints(
        ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::BRPs) as usize + 1,
        ID_AA64DFR0_EL1.read(ID_AA64DFR0_EL1::WRPs) as usize + 1,
    );
    zero_fp_simd();
    isb();
}

/// Disables and clears the first `breakpoints` hardware breakpoints and
/// `watchpoints` watchpoints (ID_AA64DFR0_EL1 says how many exist; at most
/// 16 each).
fn reset_breakpoints(breakpoints: usize, watchpoints: usize) {
    macro_rules! clear {
        ($count:expr, $ctrl:literal, $value:literal, $($n:literal)*) => {
            $(
                if $n < $count {
                    // SAFETY: writes a debug register of the guest context.
                    unsafe {
                        asm!(
                            concat!("msr ", $ctrl, $n, "_el1, xzr"),
                            concat!("msr ", $value, $n, "_el1, xzr"),
                            options(nomem, nostack)
                        )
                    };
                }
            )*
        };
    }
    clear!(breakpoints, "dbgbcr", "dbgbvr", 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
    clear!(watchpoints, "dbgwcr", "dbgwvr", 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
}

/// Zeroes the guest's FP/SIMD registers and FPCR/FPSR. The hypervisor
/// itself is built soft-float and never touches them, so they are the
/// guest's alone, and would carry its data into its next life.
fn zero_fp_simd() {
    // SAFETY: writes only the FP/SIMD registers, which hold no state of
    // the hypervisor's (CPTR_EL2.TFP is clear, so EL2 may access them).
    unsafe {
        asm!(
            ".arch_extension fp",
            ".arch_extension simd",
            "movi v0.16b, #0",
            "movi v1.16b, #0",
            "movi v2.16b, #0",
            "movi v3.16b, #0",
            "movi v4.16b, #0",
            "movi v5.16b, #0",
            "movi v6.16b, #0",
            "movi v7.16b, #0",
            "movi v8.16b, #0",
            "movi v9.16b, #0",
            "movi v10.16b, #0",
            "movi v11.16b, #0",
            "movi v12.16b, #0",
            "movi v13.16b, #0",
            "movi v14.16b, #0",
            "movi v15.16b, #0",
            "movi v16.16b, #0",
            "movi v17.16b, #0",
            "movi v18.16b, #0",
            "movi v19.16b, #0",
            "movi v20.16b, #0",
            "movi v21.16b, #0",
            "movi v22.16b, #0",
            "movi v23.16b, #0",
            "movi v24.16b, #0",
            "movi v25.16b, #0",
            "movi v26.16b, #0",
            "movi v27.16b, #0",
            "movi v28.16b, #0",
            "movi v29.16b, #0",
            "movi v30.16b, #0",
            "movi v31.16b, #0",
            "msr fpcr, xzr",
            "msr fpsr, xzr",
            options(nomem, nostack)
        )
    };
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
    use SPSR_EL2::M::Value as Mode;
    // The vector: current EL with SP_EL0, current EL with SP_EL1, lower
    // EL in AArch64, lower EL in AArch32 (EL0 user code: SPSR.M[4]).
    let offset = match values::spsr_mode(frame.spsr) {
        Some(Mode::EL1t) => 0x000,
        Some(Mode::EL1h) => 0x200,
        _ if frame.spsr & (1 << 4) != 0 => 0x600,
        _ => 0x400,
    };
    ESR_EL1.set(e.esr);
    if let Some(far) = e.far {
        FAR_EL1.set(far);
    }
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + offset;
    frame.spsr = values::spsr_exception_entry().value;
}

/// The stack pointer the guest was using when it trapped (`spsr`: its
/// PSTATE then): SP_EL1 in EL1h, else SP_EL0.
pub fn guest_stack_pointer(spsr: u64) -> u64 {
    if spsr & 0b1111 == 0b0101 {
        SP_EL1.get()
    } else {
        SP_EL0.get()
    }
}

/// ESR/FAR/HPFAR of the current trap.
pub struct TrapInfo {
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
}

pub fn trap_info() -> TrapInfo {
    TrapInfo {
        esr: ESR_EL2.get(),
        far: FAR_EL2.get(),
        hpfar: HPFAR_EL2.get(),
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

/// Zeroes `[start, start + len)`: a block at a time with DC ZVA where the
/// architecture allows it (DCZID_EL0: 64 bytes an instruction on the
/// Cortex-A72 and QEMU, against 8 a store), the ragged ends with stores.
/// Scrubbing a partition's memory is most of what its (re)boot costs the
/// hypervisor.
///
/// # Safety
///
/// The range must be Normal memory mapped writable at EL2 that nobody else
/// uses meanwhile (DC ZVA on Device memory faults).
pub unsafe fn zero(start: u64, len: u64) {
    let end = start + len;
    let dczid: u64;
    // SAFETY: reads an ID register.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    if dczid & (1 << 4) != 0 {
        // DZP: DC ZVA prohibited.
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len as usize) };
        return;
    }
    let block = 4u64 << (dczid & 0xf);
    let first = start.next_multiple_of(block).min(end);
    let last = (end & !(block - 1)).max(first);
    // SAFETY (the three): inside the range, per the caller's contract.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, (first - start) as usize) };
    let mut addr = first;
    while addr < last {
        unsafe { asm!("dc zva, {}", in(reg) addr, options(nostack)) };
        addr += block;
    }
    unsafe { core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize) };
}

/// Cleans data cache lines over a range to the point of coherency, so a
/// guest that starts with its MMU (and caches) off sees what EL2 wrote.
pub fn clean_dcache(start: u64, len: u64) {
    let line = 4u64 << CTR_EL0.read(CTR_EL0::DminLine);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cache maintenance by VA on memory mapped at EL2.
        unsafe { asm!("dc cvac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
    dsb_sy();
    // SAFETY: invalidates all instruction caches (new guest code).
    unsafe { asm!("ic ialluis", options(nostack)) };
    barrier::dsb(barrier::ISH);
    isb();
}

/// Asserts or drops the guest's virtual IRQ line from the CPU itself
/// (HCR_EL2.VI), for boards whose GIC cannot signal it (see
/// `partition::virq::signal_through_hcr`).
pub fn set_virtual_irq(on: bool) {
    HCR_EL2.modify(HCR_EL2::VI.val(on as u64));
}

/// Makes a virtual SError pending for the guest (HCR_EL2.VSE); it is taken
/// when the guest unmasks SErrors.
pub fn raise_virtual_serror() {
    HCR_EL2.modify(HCR_EL2::VSE::SET);
}

/// The physical counter (the same time base the guests' virtual counter
/// uses, with CNTVOFF_EL2 = 0).
pub fn counter() -> u64 {
    isb();
    CNTPCT_EL0.get()
}

pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Arms this core's EL2 physical timer for counter value `deadline`, or
/// disarms it.
pub fn set_hyp_timer(deadline: Option<u64>) {
    match deadline {
        Some(cval) => {
            CNTHP_CVAL_EL2.set(cval);
            CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
        }
        None => CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR),
    }
    isb();
}
