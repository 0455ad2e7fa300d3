//! Accessors for the system registers aarch64-cpu 11.2 does not have (or
//! has without the fields or the write access we need). Everything else is
//! `aarch64_cpu::registers`.
//!
//! Each register here is used exactly like one of aarch64-cpu's: a constant
//! of the register's name implementing tock-registers' `Readable` and/or
//! `Writeable`, whose fields (where it has any) are the module of the same
//! name in `arch::registers`. So `ICC_CTLR_EL1.write(ICC_CTLR_EL1::EOImode::SET)`
//! reads as it would with the crate. When a later aarch64-cpu has one of
//! them, its entry here goes and the import changes; nothing else does.
//!
//! Unlike aarch64-cpu's, the writes here are not `nomem`: the compiler
//! keeps memory accesses on their side of them, as it did for the
//! hand-written `msr` they replace.

pub use crate::arch::registers::{
    CPTR_EL2, CTR_EL0, ICC_BPR1_EL1, ICC_CTLR_EL1, ICC_IGRPEN1_EL1, ICC_INTID, ICC_PMR_EL1,
    ICC_SGI1R_EL1, PMCR_EL0,
};
use tock_registers::interfaces::{Readable, Writeable};

/// `sysreg!(Type => NAME: "asm name", Fields, read/write...)` defines
/// `Type` with the accessors asked for and `NAME`, its one value.
macro_rules! sysreg {
    ($(#[$doc:meta])* $ty:ident => $name:ident: $asm:literal, $fields:ty, $($access:ident)/+) => {
        $(#[$doc])*
        pub struct $ty;
        $(#[$doc])*
        pub const $name: $ty = $ty;
        $(sysreg!(@$access $ty, $asm, $fields);)+
    };
    (@read $ty:ident, $asm:literal, $fields:ty) => {
        impl Readable for $ty {
            type T = u64;
            type R = $fields;
            #[inline]
            fn get(&self) -> u64 {
                let value: u64;
                // SAFETY: reading a system register has no memory effects.
                unsafe {
                    core::arch::asm!(concat!("mrs {}, ", $asm), out(reg) value, options(nomem, nostack))
                };
                value
            }
        }
    };
    (@write $ty:ident, $asm:literal, $fields:ty) => {
        impl Writeable for $ty {
            type T = u64;
            type R = $fields;
            #[inline]
            fn set(&self, value: u64) {
                // SAFETY: only EL2-owned or guest-context registers are
                // defined here; their callers in `arch::aarch64` write values
                // that keep the hypervisor's own state intact.
                unsafe { core::arch::asm!(concat!("msr ", $asm, ", {}"), in(reg) value, options(nostack)) };
            }
        }
    };
}

sysreg!(
    /// CPTR_EL2, with the fields aarch64-cpu 11.2 lacks (it names only TAM).
    CptrEl2 => CPTR_EL2: "cptr_el2", CPTR_EL2::Register, write
);
sysreg!(
    /// Virtualization Processor ID Register: the MIDR guests read.
    VpidrEl2 => VPIDR_EL2: "vpidr_el2", (), write
);
sysreg!(
    /// Cache Type Register.
    CtrEl0 => CTR_EL0: "ctr_el0", CTR_EL0::Register, read
);
sysreg!(
    /// Performance Monitors Control Register.
    PmcrEl0 => PMCR_EL0: "pmcr_el0", PMCR_EL0::Register, read
);
sysreg!(
    /// Compare value of the EL2 physical timer.
    CnthpCvalEl2 => CNTHP_CVAL_EL2: "cnthp_cval_el2", (), write
);
sysreg!(
    /// Priority mask of the physical CPU interface.
    IccPmrEl1 => ICC_PMR_EL1: "icc_pmr_el1", ICC_PMR_EL1::Register, write
);
sysreg!(
    /// Binary point for group 1 interrupts.
    IccBpr1El1 => ICC_BPR1_EL1: "icc_bpr1_el1", ICC_BPR1_EL1::Register, write
);
sysreg!(
    /// CPU interface control (writable here; read-only in aarch64-cpu 11.2).
    IccCtlrEl1 => ICC_CTLR_EL1: "icc_ctlr_el1", ICC_CTLR_EL1::Register, write
);
sysreg!(
    /// Group 1 interrupt enable.
    IccIgrpen1El1 => ICC_IGRPEN1_EL1: "icc_igrpen1_el1", ICC_IGRPEN1_EL1::Register, write
);
sysreg!(
    /// Interrupt acknowledge, group 1.
    IccIar1El1 => ICC_IAR1_EL1: "icc_iar1_el1", ICC_INTID::Register, read
);
sysreg!(
    /// End of interrupt, group 1 (with EOImode 1: priority drop only).
    IccEoir1El1 => ICC_EOIR1_EL1: "icc_eoir1_el1", ICC_INTID::Register, write
);
sysreg!(
    /// Deactivate interrupt.
    IccDirEl1 => ICC_DIR_EL1: "icc_dir_el1", ICC_INTID::Register, write
);
sysreg!(
    /// Generate a group 1 SGI.
    IccSgi1rEl1 => ICC_SGI1R_EL1: "icc_sgi1r_el1", ICC_SGI1R_EL1::Register, write
);
sysreg!(
    /// Bit n set: list register n holds nothing.
    IchElrsrEl2 => ICH_ELRSR_EL2: "ich_elrsr_el2", (), read
);
sysreg!(
    /// Bit n set: list register n holds an EOIed interrupt that asked for a
    /// maintenance interrupt.
    IchEisrEl2 => ICH_EISR_EL2: "ich_eisr_el2", (), read
);
