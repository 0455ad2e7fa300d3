//! Trapped system register and system instruction accesses (EC 0x18), one
//! family at a time: each family says whether an access is its own and
//! handles it. Anything no family claims is an undefined instruction for
//! the guest (its `on_fault` policy).
//!
//! Families:
//! - the SGI register (ICC_SGI1R_EL1, trapped by HCR_EL2.IMO): a virtual
//!   SGI to the partition's own vCPUs;
//! - data cache maintenance by set/way (DC ISW, CSW, CISW; HCR_EL2.TSW):
//!   completed as a no-op. Set/way operations act on whole shared caches,
//!   so a partition's loop over them would write back and evict every
//!   other partition's lines (an interference channel), and on an SMP
//!   system they cannot keep its own data coherent anyway: that is what
//!   maintenance by address is for, which is not trapped. Nothing is lost:
//!   the hypervisor cleans a partition's memory to the point of coherency
//!   when it loads it, so no stale line of its previous life can surface;
//! - the performance monitors (PMCR_EL0 and the counter, event and
//!   interrupt registers; MDCR_EL2.TPM/TPMCR): read as zero (PMCR_EL0.N =
//!   0: no counters), writes ignored. A partition has no PMU (none in its
//!   device tree), cannot count the hypervisor's events, and leaves no
//!   counter running into its next life.

use super::esr::{self, SysRegAccess, sysreg_id};
use super::{Partition, virq};
use crate::arch::Frame;

/// What a family did with an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Emulated: the guest resumes after the instruction.
    Done,
    /// No family's: an undefined instruction for the guest.
    Undefined,
}

/// Handles a trapped access by vCPU `vcpu` of `p`.
pub fn emulate(p: &Partition, vcpu: usize, frame: &mut Frame, a: SysRegAccess) -> Outcome {
    if a.id == esr::ICC_SGI1R_EL1 && !a.read {
        virq::send_sgi(p, vcpu, frame.reg(a.reg));
        Outcome::Done
    } else if is_set_way_maintenance(a) {
        Outcome::Done
    } else if is_performance_monitor(a) {
        if a.read {
            frame.set_reg(a.reg, 0);
        }
        Outcome::Done
    } else {
        Outcome::Undefined
    }
}

/// DC ISW, DC CSW, DC CISW: op0 1, op1 0, CRn 7, CRm 6/10/14, op2 2.
fn is_set_way_maintenance(a: SysRegAccess) -> bool {
    !a.read
        && [6, 10, 14]
            .iter()
            .any(|&crm| a.id == sysreg_id(1, 0, 7, crm, 2))
}

/// The PMU's registers: op0 3 with CRn 9, CRm 12-14 (PMCR_EL0, PMCNTEN*,
/// PMOVS*, PMSWINC, PMSELR, PMCEID*, PMCCNTR, PMXEV*, PMUSERENR at op1 3;
/// PMINTEN* at op1 0), or CRn 14, CRm 8-15 at op1 3 (PMEVCNTR<n>,
/// PMEVTYPER<n>, PMCCFILTR).
fn is_performance_monitor(a: SysRegAccess) -> bool {
    let op0 = a.id >> 14;
    let op1 = (a.id >> 11) & 0b111;
    let crn = (a.id >> 7) & 0xf;
    let crm = (a.id >> 3) & 0xf;
    op0 == 3
        && ((crn == 9 && (12..=14).contains(&crm) && (op1 == 3 || (op1 == 0 && crm == 14)))
            || (crn == 14 && crm >= 8 && op1 == 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32, read: bool) -> SysRegAccess {
        SysRegAccess {
            id: sysreg_id(op0, op1, crn, crm, op2),
            reg: 1,
            read,
        }
    }

    #[test]
    fn families_claim_their_own_accesses_only() {
        // DC ISW / CSW / CISW, but not DC CIVAC (by address, CRm 14 op2 1).
        assert!(is_set_way_maintenance(access(1, 0, 7, 6, 2, false)));
        assert!(is_set_way_maintenance(access(1, 0, 7, 10, 2, false)));
        assert!(is_set_way_maintenance(access(1, 0, 7, 14, 2, false)));
        assert!(!is_set_way_maintenance(access(1, 3, 7, 14, 1, false)));
        // PMCR_EL0, PMUSERENR_EL0, PMINTENSET_EL1, PMEVTYPER3_EL0, PMCCFILTR_EL0.
        for a in [
            access(3, 3, 9, 12, 0, true),
            access(3, 3, 9, 14, 0, false),
            access(3, 0, 9, 14, 1, false),
            access(3, 3, 14, 12, 3, false),
            access(3, 3, 14, 15, 7, true),
        ] {
            assert!(is_performance_monitor(a), "{a:?}");
        }
        // Not the PMU: MDSCR_EL1 (op0 2), CNTV_CTL_EL0 (CRn 14, CRm 3),
        // ICC_SGI1R_EL1 (CRn 12).
        for a in [
            access(2, 0, 0, 2, 2, true),
            access(3, 3, 14, 3, 1, true),
            access(3, 0, 12, 11, 5, false),
        ] {
            assert!(!is_performance_monitor(a), "{a:?}");
        }
    }
}
