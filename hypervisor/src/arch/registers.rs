//! The values the EL2 code writes to system registers, built from named
//! fields, and the field layouts of the registers aarch64-cpu 11.2 lacks.
//!
//! Fields come from `aarch64-cpu` where it has them. What it lacks is
//! declared here with tock-registers' `register_bitfields!` (the same
//! macro aarch64-cpu uses), under the architectural register name, and
//! `arch::aarch64::sysreg` gives those registers accessors. Where the crate
//! has a register but no field for its RES1 bits (SCTLR_EL1/EL2, TCR_EL2),
//! the bits are an explicit constant.
//!
//! Everything here is plain data, so it also builds on the host: the tests
//! at the end check every value bit for bit against the hand-written
//! encoding it replaced.

use aarch64_cpu::registers::{
    CNTHCTL_EL2, HCR_EL2, ICC_SRE_EL2, ICH_HCR_EL2, MAIR_EL2, MDCR_EL2, MPIDR_EL1, SCTLR_EL1,
    SCTLR_EL2, SPSR_EL2, TCR_EL2, VMPIDR_EL2, VTCR_EL2,
};
use tock_registers::fields::{Field, FieldValue};
use tock_registers::register_bitfields;

// ---- registers (or fields) missing from aarch64-cpu 11.2 ----

register_bitfields! {u64,
    /// Architectural Feature Trap Register (EL2), with HCR_EL2.E2H = 0.
    /// aarch64-cpu 11.2 has the register but names only TAM.
    pub CPTR_EL2 [
        /// Trap EL1 accesses to CPACR_EL1.
        TCPAC OFFSET(31) NUMBITS(1) [],
        /// Trap activity monitor accesses.
        TAM OFFSET(30) NUMBITS(1) [],
        /// Trap trace register accesses.
        TTA OFFSET(20) NUMBITS(1) [],
        /// Trap FP/SIMD.
        TFP OFFSET(10) NUMBITS(1) [],
        /// Trap SVE (RES1 where SVE is not implemented).
        TZ OFFSET(8) NUMBITS(1) [],
    ],

    /// Cache Type Register.
    pub CTR_EL0 [
        /// Log2 of the smallest data cache line, in 4-byte words.
        DminLine OFFSET(16) NUMBITS(4) [],
        /// Log2 of the smallest instruction cache line, in 4-byte words.
        IminLine OFFSET(0) NUMBITS(4) [],
    ],

    /// Performance Monitors Control Register.
    pub PMCR_EL0 [
        /// Number of event counters implemented.
        N OFFSET(11) NUMBITS(5) [],
    ],

    /// Interrupt Controller Interrupt Priority Mask Register.
    pub ICC_PMR_EL1 [
        Priority OFFSET(0) NUMBITS(8) [],
    ],

    /// Interrupt Controller Binary Point Register 1.
    pub ICC_BPR1_EL1 [
        BinaryPoint OFFSET(0) NUMBITS(3) [],
    ],

    /// Interrupt Controller Control Register (EL1). aarch64-cpu 11.2 has it
    /// read-only, with ExtRange only.
    pub ICC_CTLR_EL1 [
        /// 1: EOIR only drops priority; deactivation is a separate DIR write.
        EOImode OFFSET(1) NUMBITS(1) [],
    ],

    /// Interrupt Controller Interrupt Group 1 Enable Register.
    pub ICC_IGRPEN1_EL1 [
        Enable OFFSET(0) NUMBITS(1) [],
    ],

    /// The INTID field of ICC_IAR1_EL1, ICC_EOIR1_EL1 and ICC_DIR_EL1.
    pub ICC_INTID [
        INTID OFFSET(0) NUMBITS(24) [],
    ],

    /// Interrupt Controller Software Generated Interrupt Group 1 Register.
    pub ICC_SGI1R_EL1 [
        Aff3 OFFSET(48) NUMBITS(8) [],
        /// Range selector: TargetList bit n means Aff0 = RS * 16 + n.
        RS OFFSET(44) NUMBITS(4) [],
        /// 1: every core but this one.
        IRM OFFSET(40) NUMBITS(1) [],
        Aff2 OFFSET(32) NUMBITS(8) [],
        INTID OFFSET(24) NUMBITS(4) [],
        Aff1 OFFSET(16) NUMBITS(8) [],
        TargetList OFFSET(0) NUMBITS(16) [],
    ],
}

/// A constant over bits no field names (RES1 bits), to add to field values.
const fn bits<R: tock_registers::RegisterLongName>(mask: u64) -> FieldValue<u64, R> {
    FieldValue::<u64, R>::new(mask, 0, mask)
}

/// The bits a field covers, in place.
const fn field_mask<R: tock_registers::RegisterLongName>(f: Field<u64, R>) -> u64 {
    f.mask << f.shift
}

// ---- EL2 configuration ----

/// HCR_EL2 while guests run: AArch64 EL1 with stage 2; physical IRQs, FIQs
/// and SErrors to EL2; set/way invalidation upgraded to clean+invalidate,
/// broadcast TLB and barrier maintenance inner shareable; SMC,
/// implementation-defined registers and data cache maintenance by set/way
/// trap (a partition's set/way loop would clean and evict every other
/// partition's lines from the shared caches: the hypervisor completes it
/// as a no-op, see `partition::trap`).
pub fn hcr_el2() -> FieldValue<u64, HCR_EL2::Register> {
    HCR_EL2::VM::Enable
        + HCR_EL2::SWIO::SET
        + HCR_EL2::FMO::EnableVirtualFIQ
        + HCR_EL2::IMO::EnableVirtualIRQ
        + HCR_EL2::AMO::SET
        + HCR_EL2::FB::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::TIDCP::SET
        + HCR_EL2::TSW::SET
        + HCR_EL2::RW::EL1IsAarch64
}

/// CPTR_EL2 bits 0-7, 9, 12 and 13, RES1.
const CPTR_EL2_RES1: u64 = 0x32ff;

/// CPTR_EL2: no FP/SIMD, trace or CPACR traps (the guest owns those
/// registers; EL2, built soft-float, never touches them); SVE traps.
pub fn cptr_el2() -> FieldValue<u64, CPTR_EL2::Register> {
    bits(CPTR_EL2_RES1)
        + CPTR_EL2::TZ::SET
        + CPTR_EL2::TFP::CLEAR
        + CPTR_EL2::TTA::CLEAR
        + CPTR_EL2::TAM::CLEAR
        + CPTR_EL2::TCPAC::CLEAR
}

/// CNTHCTL_EL2: guests read the physical counter and own the EL1 physical
/// timer as well as the virtual one (both are in their device tree; the
/// hypervisor's own is the EL2 timer).
pub fn cnthctl_el2() -> FieldValue<u64, CNTHCTL_EL2::Register> {
    CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET
}

/// MDCR_EL2: the performance monitors trap (every PMU register, PMCR
/// included): a partition has no PMU (its device tree lists none), reads
/// them as zero and its writes go nowhere, so it cannot count events at
/// EL2 (the hypervisor's work) nor leave counters running into its next
/// life. `counters` (PMCR_EL0.N) all stay with EL1 as far as HPMN goes.
/// Debug registers do not trap: a restart resets them.
pub fn mdcr_el2(counters: u64) -> FieldValue<u64, MDCR_EL2::Register> {
    MDCR_EL2::HPMN.val(counters) + MDCR_EL2::TPM::SET + MDCR_EL2::TPMCR::SET
}

/// VTCR_EL2: 4 KiB granule, 39-bit IPA (T0SZ 25, walks start at level 1),
/// inner shareable write-back walks, 40-bit PA, 8-bit VMID.
pub fn vtcr_el2() -> FieldValue<u64, VTCR_EL2::Register> {
    VTCR_EL2::RES1::SET
        + VTCR_EL2::PS::PA_40B_1TB
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::IRGN0::NormalWBRAWA
        + VTCR_EL2::SL0::Granule4KBLevel1
        + VTCR_EL2::VS::Bits8
        + VTCR_EL2::T0SZ.val(25)
}

/// VMPIDR_EL2 of vCPU `vcpu`: Aff0 = vCPU number, matching the generated
/// device tree.
pub fn vmpidr_el2(vcpu: usize) -> FieldValue<u64, VMPIDR_EL2::Register> {
    VMPIDR_EL2::RES1::SET + VMPIDR_EL2::Aff0.val(vcpu as u64)
}

// ---- EL2 stage-1 translation ----

/// MAIR_EL2: index 0 normal write-back read/write-allocate (inner and
/// outer), index 1 device nGnRE. (`Attributes` in `memory/pagetable.rs`
/// uses these indices.)
pub fn mair_el2() -> FieldValue<u64, MAIR_EL2::Register> {
    MAIR_EL2::Attr0_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr0_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc
        + MAIR_EL2::Attr1_Device::nonGathering_nonReordering_EarlyWriteAck
}

/// TCR_EL2 bits 31 and 23, RES1 (no field in aarch64-cpu).
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);

/// TCR_EL2 for the identity map: T0SZ 25 (39 bits), inner/outer
/// write-back, inner shareable, 4 KiB granule, output size `pa_range`
/// (ID_AA64MMFR0_EL1.PARange encoding).
pub fn tcr_el2(pa_range: u64) -> FieldValue<u64, TCR_EL2::Register> {
    bits(TCR_EL2_RES1)
        + TCR_EL2::PS.val(pa_range)
        + TCR_EL2::TG0::KiB_4
        + TCR_EL2::SH0::Inner
        + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
        + TCR_EL2::T0SZ.val(25)
}

/// SCTLR_EL2 bits 4, 5, 16, 18, 23, 28 and 29, RES1 (no field in
/// aarch64-cpu).
const SCTLR_EL2_RES1: u64 = 0x3085_0030;

/// SCTLR_EL2 with the MMU on: data and instruction caches, stack alignment
/// check; exception entry and return synchronise context (EIS/EOS, RES1
/// without FEAT_ExS).
pub fn sctlr_el2() -> FieldValue<u64, SCTLR_EL2::Register> {
    bits(SCTLR_EL2_RES1)
        + SCTLR_EL2::EIS::IsSynch
        + SCTLR_EL2::EOS::IsSynch
        + SCTLR_EL2::M::Enable
        + SCTLR_EL2::C::Cacheable
        + SCTLR_EL2::SA::Enable
        + SCTLR_EL2::I::Cacheable
}

// ---- guest EL1 state ----

/// SCTLR_EL1 bits 11, 20, 22, 23, 28 and 29, RES1 as reset (no field in
/// aarch64-cpu).
const SCTLR_EL1_RES1: u64 = 0x30d0_0800;

/// SCTLR_EL1 before a guest (re)boots: MMU and caches off.
pub fn sctlr_el1_reset() -> FieldValue<u64, SCTLR_EL1::Register> {
    bits(SCTLR_EL1_RES1)
        + SCTLR_EL1::M::Disable
        + SCTLR_EL1::C::NonCacheable
        + SCTLR_EL1::I::NonCacheable
}

/// PSTATE of a guest entering an EL1 exception vector: EL1h, D, A, I and F
/// masked.
pub fn spsr_exception_entry() -> FieldValue<u64, SPSR_EL2::Register> {
    SPSR_EL2::M::EL1h
        + SPSR_EL2::D::Masked
        + SPSR_EL2::A::Masked
        + SPSR_EL2::I::Masked
        + SPSR_EL2::F::Masked
}

/// The exception level and stack pointer (SPSR.M) a saved PSTATE names.
pub fn spsr_mode(spsr: u64) -> Option<SPSR_EL2::M::Value> {
    tock_registers::LocalRegisterCopy::<u64, SPSR_EL2::Register>::new(spsr)
        .read_as_enum(SPSR_EL2::M)
}

// ---- GIC CPU interfaces ----

/// ICC_SRE_EL2: system register interface at EL2, with IRQ and FIQ bypass
/// disabled, and let EL1 use it too.
pub fn icc_sre_el2() -> FieldValue<u64, ICC_SRE_EL2::Register> {
    ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::DFB::SET + ICC_SRE_EL2::DIB::SET + ICC_SRE_EL2::ENABLE::SET
}

/// ICH_HCR_EL2: virtual CPU interface on; a maintenance interrupt when the
/// list registers (nearly) drain if `underflow`, and while none of them is
/// pending if `no_pending`.
pub fn ich_hcr_el2(underflow: bool, no_pending: bool) -> FieldValue<u64, ICH_HCR_EL2::Register> {
    ICH_HCR_EL2::En::SET
        + ICH_HCR_EL2::UIE.val(underflow as u64)
        + ICH_HCR_EL2::NPIE.val(no_pending as u64)
}

/// The affinity fields of an MPIDR (Aff3, Aff2, Aff1, Aff0).
pub const MPIDR_AFFINITY: u64 = field_mask(MPIDR_EL1::Aff3)
    | field_mask(MPIDR_EL1::Aff2)
    | field_mask(MPIDR_EL1::Aff1)
    | field_mask(MPIDR_EL1::Aff0);

/// ICC_SGI1R_EL1 value sending SGI `intid` to the one core with affinity
/// `mpidr` (MPIDR layout), Aff0 by range selector and target list.
pub fn icc_sgi1r_el1(intid: u32, mpidr: u64) -> FieldValue<u64, ICC_SGI1R_EL1::Register> {
    let aff0 = MPIDR_EL1::Aff0.read(mpidr);
    ICC_SGI1R_EL1::Aff3.val(MPIDR_EL1::Aff3.read(mpidr))
        + ICC_SGI1R_EL1::RS.val(aff0 >> 4)
        + ICC_SGI1R_EL1::Aff2.val(MPIDR_EL1::Aff2.read(mpidr))
        + ICC_SGI1R_EL1::INTID.val(intid as u64 & 0xf)
        + ICC_SGI1R_EL1::Aff1.val(MPIDR_EL1::Aff1.read(mpidr))
        + ICC_SGI1R_EL1::TargetList.val(1 << (aff0 & 0xf))
}

/// The affinity a redistributor reports in GICR_TYPER[63:32]
/// (Aff3.Aff2.Aff1.Aff0) for the core with MPIDR affinity `mpidr`.
pub fn gicr_affinity(mpidr: u64) -> u64 {
    MPIDR_EL1::Aff3.read(mpidr) << 24
        | MPIDR_EL1::Aff2.read(mpidr) << 16
        | MPIDR_EL1::Aff1.read(mpidr) << 8
        | MPIDR_EL1::Aff0.read(mpidr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value is the one the hand-written code wrote before.
    #[test]
    fn same_bits_as_the_hand_written_encodings() {
        let hcr = (1 << 0)
            | (1 << 1)
            | (1 << 3)
            | (1 << 4)
            | (1 << 5)
            | (1 << 9)
            | (1 << 10)
            | (1 << 19)
            | (1 << 20)
            | (1 << 31);
        // Since issue 9: TSW (bit 22) traps set/way maintenance.
        assert_eq!(hcr_el2().value, hcr | (1 << 22));
        assert_eq!(cptr_el2().value, 0x33ff);
        // Since issue 9: EL1PCEN (bit 1), guests own the physical timer.
        assert_eq!(cnthctl_el2().value, 0b11);
        // Since issue 9: TPM (bit 6) and TPMCR (bit 5) trap the PMU.
        assert_eq!(mdcr_el2(6).value, 6 | (1 << 6) | (1 << 5));
        let vtcr = (1 << 31)
            | (0b010 << 16)
            | (0b11 << 12)
            | (0b01 << 10)
            | (0b01 << 8)
            | (0b01 << 6)
            | 25;
        assert_eq!(vtcr_el2().value, vtcr);
        assert_eq!(vmpidr_el2(3).value, (1 << 31) | 3);
        assert_eq!(mair_el2().value, 0x04ff);
        for pa_range in 0..=2 {
            let tcr = (1 << 31)
                | (1 << 23)
                | (pa_range << 16)
                | (0b11 << 12)
                | (0b01 << 10)
                | (0b01 << 8)
                | 25;
            assert_eq!(tcr_el2(pa_range).value, tcr);
        }
        let sctlr = 0x30c5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);
        assert_eq!(sctlr_el2().value, sctlr);
        assert_eq!(sctlr_el1_reset().value, 0x30d0_0800);
        assert_eq!(spsr_exception_entry().value, 0x3c5);
        assert_eq!(icc_sre_el2().value, 0b1111);
        assert_eq!(ich_hcr_el2(false, false).value, 1);
        assert_eq!(ich_hcr_el2(true, false).value, 0b11);
        assert_eq!(ich_hcr_el2(false, true).value, 0b1001);
        assert_eq!(MPIDR_AFFINITY, 0xff_00ff_ffff);
        assert_eq!((ICC_PMR_EL1::Priority.val(0xff)).value, 0xff);
        assert_eq!(ICC_CTLR_EL1::EOImode::SET.value, 1 << 1);
        assert_eq!(ICC_IGRPEN1_EL1::Enable::SET.value, 1);
        assert_eq!(ICC_INTID::INTID.read(0xdead_0000_ff00_0123), 0x123);
        assert_eq!(CTR_EL0::DminLine.read(0x8444_c004), 4);
        assert_eq!(PMCR_EL0::N.read(0x4100_3000), 6);
    }

    /// The old encoding of ICC_SGI1R_EL1.
    fn sgi1r_by_hand(intid: u32, mpidr: u64) -> u64 {
        let aff0 = mpidr & 0xff;
        (((mpidr >> 32) & 0xff) << 48)
            | (((mpidr >> 16) & 0xff) << 32)
            | ((aff0 >> 4) << 44)
            | (((mpidr >> 8) & 0xff) << 16)
            | ((intid as u64 & 0xf) << 24)
            | (1 << (aff0 & 0xf))
    }

    #[test]
    fn sgi_targets_as_before() {
        for mpidr in [
            0,
            1,
            7,
            0x0f,
            0x10,
            0x23,
            0xff,
            0x100,
            0x1_0203,
            0xab_0001_0203,
        ] {
            for intid in [0, 1, 15] {
                assert_eq!(
                    icc_sgi1r_el1(intid, mpidr).value,
                    sgi1r_by_hand(intid, mpidr),
                    "mpidr {mpidr:#x} intid {intid}"
                );
            }
        }
    }

    #[test]
    fn redistributor_affinity_as_before() {
        for mpidr in [0, 3, 0x100, 0x1_0203, 0xab_0001_0203] {
            let by_hand = ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0xff_ffff);
            assert_eq!(gicr_affinity(mpidr), by_hand);
        }
    }

    #[test]
    fn exception_modes() {
        use SPSR_EL2::M::Value;
        assert_eq!(spsr_mode(0x3c4), Some(Value::EL1t));
        assert_eq!(spsr_mode(0x3c5), Some(Value::EL1h));
        assert_eq!(spsr_mode(0x3c0), Some(Value::EL0t));
        assert_eq!(spsr_mode(0x3c9), Some(Value::EL2h));
        assert_eq!(spsr_mode(0x3c3), None);
    }
}
