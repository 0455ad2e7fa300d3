//! The physical GICv3: distributor and redistributor MMIO, the EL2 CPU
//! interface (ICC_*) and the virtual CPU interface control (ICH_*, list
//! registers) through which interrupts reach guests.
//!
//! The distributor and redistributor frames are tock-registers blocks
//! (`mmio::Registers`), shared by every core: a guest's trapped vGIC
//! write enables, disables or routes its interrupts on the physical
//! distributor from the core it runs on, with the one write the
//! architecture makes safe without a lock (ISENABLER/ICENABLER bits,
//! IROUTER). System registers are aarch64-cpu's, plus the ICC/ICH ones it
//! lacks (`sysreg`).

use super::cpu::isb;
use super::mmio::Registers;
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
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! {u32,
    GICD_CTLR [
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing (ARE_NS in the Non-secure view).
        ARE OFFSET(4) NUMBITS(1) [],
        /// EnableGrp1 with a single security state (EnableGrp1A in the
        /// Non-secure view).
        EnableGrp1 OFFSET(1) NUMBITS(1) [],
        /// EnableGrp0 with a single security state (EnableGrp1 in the
        /// Non-secure view).
        EnableGrp0 OFFSET(0) NUMBITS(1) [],
    ],
    GICD_TYPER [
        /// (Number of interrupt IDs / 32) - 1.
        ITLinesNumber OFFSET(0) NUMBITS(5) [],
    ],
    GICR_WAKER [
        ChildrenAsleep OFFSET(2) NUMBITS(1) [],
        ProcessorSleep OFFSET(1) NUMBITS(1) [],
    ],
}

register_bitfields! {u64,
    GICR_TYPER [
        /// Aff3.Aff2.Aff1.Aff0 of the core this redistributor serves.
        Affinity OFFSET(32) NUMBITS(32) [],
        /// The last redistributor of its region.
        Last OFFSET(4) NUMBITS(1) [],
        /// GICv4 virtual LPIs: two more 64 KiB frames follow.
        VLPIS OFFSET(1) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The distributor (GICD), as far as the hypervisor uses it.
    Gicd {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32, GICD_TYPER::Register>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [WriteOnly<u32>; 32]),
        (0x0180 => icenabler: [WriteOnly<u32>; 32]),
        (0x0200 => ispendr: [ReadWrite<u32>; 32]),
        (0x0280 => icpendr: [WriteOnly<u32>; 32]),
        (0x0300 => isactiver: [ReadWrite<u32>; 32]),
        (0x0380 => icactiver: [WriteOnly<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u8>; 1024]),
        (0x0800 => _reserved3),
        /// Indexed by INTID; 0-31 (SGIs and PPIs) are reserved.
        (0x6000 => irouter: [ReadWrite<u64>; 1024]),
        (0x8000 => @END),
    }
}

register_structs! {
    /// A redistributor: its RD_base frame and its SGI_base frame, as far
    /// as the hypervisor uses them.
    Gicr {
        (0x0_0000 => _reserved0),
        (0x0_0008 => typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x0_0010 => _reserved1),
        (0x0_0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0_0018 => _reserved2),
        (0x1_0080 => igroupr0: ReadWrite<u32>),
        (0x1_0084 => _reserved3),
        (0x1_0100 => isenabler0: WriteOnly<u32>),
        (0x1_0104 => _reserved4),
        (0x1_0180 => icenabler0: WriteOnly<u32>),
        (0x1_0184 => _reserved5),
        (0x1_0200 => ispendr0: ReadWrite<u32>),
        (0x1_0204 => _reserved9),
        (0x1_0280 => icpendr0: WriteOnly<u32>),
        (0x1_0284 => _reserved6),
        (0x1_0300 => isactiver0: ReadWrite<u32>),
        (0x1_0304 => _reserved10),
        (0x1_0380 => icactiver0: WriteOnly<u32>),
        (0x1_0384 => _reserved7),
        (0x1_0400 => ipriorityr: [ReadWrite<u8>; 32]),
        (0x1_0420 => _reserved8),
        (0x2_0000 => @END),
    }
}

/// The distributor's frame.
const GICD_FRAME: u64 = 0x1_0000;
/// A GICv3 redistributor: RD_base and SGI_base, 64 KiB each.
const GICR_FRAME: u64 = 0x2_0000;
/// A GICv4 redistributor with virtual LPIs: VLPI_base and a reserved
/// frame follow.
const GICR_FRAME_VLPI: u64 = 0x4_0000;

/// Priority the hypervisor gives every physical interrupt: they are only
/// ever taken at EL2 with the same urgency.
const DEFAULT_PRIORITY: u8 = 0xa0;

fn distributor(gicd: u64) -> Registers<Gicd> {
    Registers::new(gicd, GICD_FRAME)
        .unwrap_or_else(|| panic!("GIC distributor at {gicd:#x} is not device memory"))
}

fn redistributor(rd: u64) -> Registers<Gicr> {
    Registers::new(rd, GICR_FRAME)
        .unwrap_or_else(|| panic!("GIC redistributor at {rd:#x} is not device memory"))
}

fn wait_rwp(d: &Gicd) {
    while d.ctlr.is_set(GICD_CTLR::RWP) {}
}

/// Number of interrupt IDs the distributor implements (SGIs and PPIs included).
pub fn lines(gicd: u64) -> usize {
    (distributor(gicd).typer.read(GICD_TYPER::ITLinesNumber) as usize + 1) * 32
}

/// Resets all SPIs to disabled, group 1, one priority, routed to no one
/// in particular; then enables affinity routing and group 1.
pub fn init_distributor(gicd: u64) {
    let d = distributor(gicd);
    d.ctlr.set(0);
    wait_rwp(&d);
    let lines = lines(gicd);
    for word in 1..lines / 32 {
        d.igroupr[word].set(!0);
        d.icenabler[word].set(!0);
        d.icpendr[word].set(!0);
        d.icactiver[word].set(!0);
    }
    for priority in &d.ipriorityr[32..lines] {
        priority.set(DEFAULT_PRIORITY);
    }
    wait_rwp(&d);
    d.ctlr
        .write(GICD_CTLR::ARE::SET + GICD_CTLR::EnableGrp1::SET + GICD_CTLR::EnableGrp0::SET);
    wait_rwp(&d);
}

/// Finds the redistributor frame of the core with MPIDR affinity `mpidr`.
pub fn find_redistributor(gicr_base: u64, gicr_size: u64, mpidr: u64) -> Option<u64> {
    let aff = values::gicr_affinity(mpidr);
    let end = gicr_base.checked_add(gicr_size)?;
    let mut frame = gicr_base;
    while frame.checked_add(GICR_FRAME)? <= end {
        let typer = redistributor(frame).typer.extract();
        if typer.read(GICR_TYPER::Affinity) == aff {
            return Some(frame);
        }
        if typer.is_set(GICR_TYPER::Last) {
            break;
        }
        frame += if typer.is_set(GICR_TYPER::VLPIS) {
            GICR_FRAME_VLPI
        } else {
            GICR_FRAME
        };
    }
    None
}

/// Wakes this core's redistributor and sets up its CPU interfaces: the
/// physical one for EL2 (EOImode 1: priority drop and deactivation are
/// separate, so a guest can deactivate a forwarded interrupt itself) and
/// the virtual one for the guest.
pub fn init_cpu(rd: u64, enabled_private: u32) {
    let r = redistributor(rd);
    r.waker.modify(GICR_WAKER::ProcessorSleep::CLEAR);
    while r.waker.is_set(GICR_WAKER::ChildrenAsleep) {}
    r.igroupr0.set(!0);
    r.icenabler0.set(!0);
    r.icpendr0.set(!0);
    r.icactiver0.set(!0);
    for priority in &r.ipriorityr {
        priority.set(DEFAULT_PRIORITY);
    }
    r.isenabler0.set(enabled_private);

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
    let d = distributor(gicd);
    let bank = if enable { &d.isenabler } else { &d.icenabler };
    if let Some(r) = bank.get(intid as usize / 32) {
        r.set(1 << (intid % 32));
    }
}

pub fn route_spi(gicd: u64, intid: u32, mpidr: u64) {
    if let Some(r) = distributor(gicd).irouter.get(intid as usize) {
        // Affinity only: MPIDR bit 31 (RES1) would be IROUTER.IRM, 1 of N.
        r.set(mpidr & values::MPIDR_AFFINITY);
    }
}

pub fn set_private_enabled(rd: u64, intid: u32, enable: bool) {
    let r = redistributor(rd);
    let bit = 1 << (intid % 32);
    if enable {
        r.isenabler0.set(bit);
    } else {
        r.icenabler0.set(bit);
    }
}

/// Whether SPI `intid` is pending and whether it is active at the
/// distributor.
pub fn spi_state(gicd: u64, intid: u32) -> IrqState {
    let d = distributor(gicd);
    let word = intid as usize / 32;
    let bit = 1 << (intid % 32);
    IrqState {
        pending: d.ispendr.get(word).is_some_and(|r| r.get() & bit != 0),
        active: d.isactiver.get(word).is_some_and(|r| r.get() & bit != 0),
    }
}

/// Sets or clears SPI `intid`'s pending or active state at the
/// distributor.
pub fn set_spi_state(gicd: u64, intid: u32, which: StateBit, value: bool) {
    let d = distributor(gicd);
    let word = intid as usize / 32;
    let bank = match (which, value) {
        (StateBit::Pending, true) => d.ispendr.get(word),
        (StateBit::Active, true) => d.isactiver.get(word),
        (StateBit::Pending, false) => {
            if let Some(r) = d.icpendr.get(word) {
                r.set(1 << (intid % 32));
            }
            return;
        }
        (StateBit::Active, false) => {
            if let Some(r) = d.icactiver.get(word) {
                r.set(1 << (intid % 32));
            }
            return;
        }
    };
    if let Some(r) = bank {
        r.set(1 << (intid % 32));
    }
}

/// Whether PPI or SGI `intid` of the core with redistributor `rd` is
/// pending and whether it is active.
pub fn private_state(rd: u64, intid: u32) -> IrqState {
    let r = redistributor(rd);
    let bit = 1 << (intid % 32);
    IrqState {
        pending: r.ispendr0.get() & bit != 0,
        active: r.isactiver0.get() & bit != 0,
    }
}

/// Sets or clears PPI or SGI `intid`'s pending or active state at the
/// redistributor `rd`.
pub fn set_private_state(rd: u64, intid: u32, which: StateBit, value: bool) {
    let r = redistributor(rd);
    let bit = 1 << (intid % 32);
    match (which, value) {
        (StateBit::Pending, true) => r.ispendr0.set(bit),
        (StateBit::Pending, false) => r.icpendr0.set(bit),
        (StateBit::Active, true) => r.isactiver0.set(bit),
        (StateBit::Active, false) => r.icactiver0.set(bit),
    }
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
pub use crate::arch::{IrqState, StateBit};

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

/// Ask for a maintenance interrupt once the list registers (nearly) drain
/// (`underflow`), and while none of them is pending (`no_pending`).
pub fn set_maintenance(underflow: bool, no_pending: bool) {
    ICH_HCR_EL2.write(values::ich_hcr_el2(underflow, no_pending));
}

/// Does a list register hold a pending interrupt (pending, or pending and
/// active)?
pub fn any_pending_lr() -> bool {
    (0..num_lrs()).any(|i| read_lr(i) & LR_STATE_PENDING != 0)
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
    set_maintenance(false, false);
    isb();
}
