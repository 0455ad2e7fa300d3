//! The physical GICv3: distributor and redistributor MMIO, the EL2 CPU
//! interface (ICC_*) and the virtual CPU interface control (ICH_*, list
//! registers) through which interrupts reach guests. System registers are
//! aarch64-cpu's, plus the ICC/ICH ones it lacks (`sysreg`).

use super::cpu::isb;
use super::sysreg::{
    ICC_BPR1_EL1, ICC_CTLR_EL1, ICC_DIR_EL1, ICC_EOIR1_EL1, ICC_IAR1_EL1, ICC_IGRPEN1_EL1,
    ICC_INTID, ICC_PMR_EL1, ICC_SGI1R_EL1, ICH_EISR_EL2, ICH_ELRSR_EL2,
};
use crate::arch::registers as values;
use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    ICC_SRE_EL2, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2, ICH_LR2_EL2,
    ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
    ICH_LR10_EL2, ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2,
    ICH_VMCR_EL2, ICH_VTR_EL2,
};
use core::ptr::{read_volatile, write_volatile};
use tock_registers::interfaces::{Readable, Writeable};

const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_ICPENDR: u64 = 0x0280;
const GICD_ICACTIVER: u64 = 0x0380;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_IROUTER: u64 = 0x6000;
const CTLR_RWP: u32 = 1 << 31;

const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const GICR_FRAME: u64 = 0x2_0000;
const SGI_BASE: u64 = 0x1_0000;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Priority the hypervisor gives every physical interrupt: they are only
/// ever taken at EL2 with the same urgency.
const DEFAULT_PRIORITY: u8 = 0xa0;

fn read32(addr: u64) -> u32 {
    // SAFETY: callers pass addresses inside the GIC's MMIO frames, which
    // are identity mapped as device memory at EL2.
    unsafe { read_volatile(addr as *const u32) }
}

fn write32(addr: u64, value: u32) {
    // SAFETY: as for `read32`.
    unsafe { write_volatile(addr as *mut u32, value) }
}

fn write64(addr: u64, value: u64) {
    // SAFETY: as for `read32`.
    unsafe { write_volatile(addr as *mut u64, value) }
}

fn wait_rwp(gicd: u64) {
    while read32(gicd + GICD_CTLR) & CTLR_RWP != 0 {}
}

/// Number of interrupt IDs the distributor implements (SGIs and PPIs included).
pub fn lines(gicd: u64) -> usize {
    ((read32(gicd + GICD_TYPER) & 0x1f) as usize + 1) * 32
}

/// Resets all SPIs to disabled, group 1, one priority, routed to no one
/// in particular; then enables affinity routing and group 1.
pub fn init_distributor(gicd: u64) {
    write32(gicd + GICD_CTLR, 0);
    wait_rwp(gicd);
    let lines = lines(gicd);
    for word in 1..lines / 32 {
        let off = word as u64 * 4;
        write32(gicd + GICD_IGROUPR + off, !0);
        write32(gicd + GICD_ICENABLER + off, !0);
        write32(gicd + GICD_ICPENDR + off, !0);
        write32(gicd + GICD_ICACTIVER + off, !0);
    }
    for intid in 32..lines as u64 {
        // SAFETY: byte access to IPRIORITYR is architecturally allowed.
        unsafe {
            write_volatile(
                (gicd + GICD_IPRIORITYR + intid) as *mut u8,
                DEFAULT_PRIORITY,
            )
        };
    }
    wait_rwp(gicd);
    // ARE (bit 4) and both group enables: bit 0/1 are EnableGrp0/1 with a
    // single security state, EnableGrp1/1A in the non-secure view.
    write32(gicd + GICD_CTLR, (1 << 4) | 0b11);
    wait_rwp(gicd);
}

/// Finds the redistributor frame of the core with MPIDR affinity `mpidr`.
pub fn find_redistributor(gicr_base: u64, gicr_size: u64, mpidr: u64) -> Option<u64> {
    let aff = values::gicr_affinity(mpidr);
    let mut frame = gicr_base;
    while frame + GICR_FRAME <= gicr_base + gicr_size {
        let typer =
            read32(frame + GICR_TYPER) as u64 | ((read32(frame + GICR_TYPER + 4) as u64) << 32);
        if typer >> 32 == aff {
            return Some(frame);
        }
        if typer & (1 << 4) != 0 {
            break; // Last
        }
        frame += GICR_FRAME;
    }
    None
}

/// Wakes this core's redistributor and sets up its CPU interfaces: the
/// physical one for EL2 (EOImode 1: priority drop and deactivation are
/// separate, so a guest can deactivate a forwarded interrupt itself) and
/// the virtual one for the guest.
pub fn init_cpu(rd: u64, enabled_private: u32) {
    let waker = read32(rd + GICR_WAKER);
    write32(rd + GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
    while read32(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP != 0 {}
    let sgi = rd + SGI_BASE;
    write32(sgi + GICD_IGROUPR, !0);
    write32(sgi + GICD_ICENABLER, !0);
    write32(sgi + GICD_ICPENDR, !0);
    write32(sgi + GICD_ICACTIVER, !0);
    for intid in 0..32 {
        // SAFETY: byte access to the SGI frame's IPRIORITYR.
        unsafe { write_volatile((sgi + GICD_IPRIORITYR + intid) as *mut u8, DEFAULT_PRIORITY) };
    }
    write32(sgi + GICD_ISENABLER, enabled_private);

    ICC_SRE_EL2.write(values::icc_sre_el2());
    isb();
    ICC_PMR_EL1.write(ICC_PMR_EL1::Priority.val(0xff));
    ICC_BPR1_EL1.write(ICC_BPR1_EL1::BinaryPoint.val(0));
    ICC_CTLR_EL1.write(ICC_CTLR_EL1::EOImode::SET);
    ICC_IGRPEN1_EL1.write(ICC_IGRPEN1_EL1::Enable::SET);
    isb();
    reset_virtual_interface();
}

pub fn set_spi_enabled(gicd: u64, intid: u32, enable: bool) {
    let reg = if enable {
        GICD_ISENABLER
    } else {
        GICD_ICENABLER
    };
    write32(gicd + reg + (intid as u64 / 32) * 4, 1 << (intid % 32));
}

pub fn route_spi(gicd: u64, intid: u32, mpidr: u64) {
    write64(
        gicd + GICD_IROUTER + intid as u64 * 8,
        mpidr & values::MPIDR_AFFINITY,
    );
}

pub fn set_private_enabled(rd: u64, intid: u32, enable: bool) {
    let reg = if enable {
        GICD_ISENABLER
    } else {
        GICD_ICENABLER
    };
    write32(rd + SGI_BASE + reg, 1 << intid);
}

pub const SPURIOUS: u32 = 1023;

/// Acknowledges the highest-priority pending interrupt (1023: none).
pub fn ack() -> u32 {
    ICC_IAR1_EL1.read(ICC_INTID::INTID) as u32
}

/// Priority drop.
pub fn eoi(intid: u32) {
    ICC_EOIR1_EL1.write(ICC_INTID::INTID.val(intid as u64));
}

/// Deactivation (EOImode 1).
pub fn deactivate(intid: u32) {
    ICC_DIR_EL1.write(ICC_INTID::INTID.val(intid as u64));
}

/// Sends SGI `intid` to the core with affinity `mpidr`.
pub fn send_sgi(intid: u32, mpidr: u64) {
    // Make prior writes (the request being signalled) visible first.
    barrier::dsb(barrier::ISHST);
    ICC_SGI1R_EL1.write(values::icc_sgi1r_el1(intid, mpidr));
    isb();
}

// ---- virtual CPU interface ----

pub use crate::arch::list_register::*;

/// `read_lr` and `write_lr` over ICH_LR0_EL2..ICH_LR15_EL2 (sixteen
/// registers, each its own instruction).
macro_rules! lr_access {
    ($($n:literal => $reg:ident),* $(,)?) => {
        pub fn read_lr(i: usize) -> u64 {
            match i {
                $($n => $reg.get(),)*
                _ => 0,
            }
        }
        pub fn write_lr(i: usize, value: u64) {
            match i {
                $($n => $reg.set(value),)*
                _ => {}
            }
        }
    };
}
lr_access!(
    0 => ICH_LR0_EL2, 1 => ICH_LR1_EL2, 2 => ICH_LR2_EL2, 3 => ICH_LR3_EL2,
    4 => ICH_LR4_EL2, 5 => ICH_LR5_EL2, 6 => ICH_LR6_EL2, 7 => ICH_LR7_EL2,
    8 => ICH_LR8_EL2, 9 => ICH_LR9_EL2, 10 => ICH_LR10_EL2, 11 => ICH_LR11_EL2,
    12 => ICH_LR12_EL2, 13 => ICH_LR13_EL2, 14 => ICH_LR14_EL2, 15 => ICH_LR15_EL2,
);

pub fn num_lrs() -> usize {
    ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) as usize + 1
}

/// Bit n set: list register n holds nothing.
pub fn empty_lrs() -> u64 {
    ICH_ELRSR_EL2.get()
}

/// Bit n set: list register n was EOIed by the guest with LR_EOI set.
pub fn ended_lrs() -> u64 {
    ICH_EISR_EL2.get()
}

/// Ask for a maintenance interrupt once the list registers (nearly) drain.
pub fn set_underflow_interrupt(on: bool) {
    ICH_HCR_EL2.write(values::ich_hcr_el2(on));
}

/// Clears all list registers and the guest's virtual CPU interface state.
/// Physical interrupts still linked to a list register (HW bit) are
/// deactivated, or they would stay active forever.
pub fn reset_virtual_interface() {
    for i in 0..num_lrs() {
        let lr = read_lr(i);
        if lr & LR_HW != 0 && lr & LR_STATE_MASK != 0 {
            deactivate(physical_intid(lr));
        }
        write_lr(i, 0);
    }
    ICH_AP1R0_EL2.set(0);
    ICH_AP0R0_EL2.set(0);
    ICH_VMCR_EL2.set(0);
    set_underflow_interrupt(false);
    isb();
}
