//! The layout of a GICv3 list register (ICH_LR<n>_EL2), shared by both
//! implementations of the interface and by `partition::virq`, which
//! composes their values. The fields are aarch64-cpu's (declared once, in
//! `ICH_LR0_EL2`, for all sixteen registers).

use aarch64_cpu::registers::ICH_LR0_EL2;

/// State: pending.
pub const LR_STATE_PENDING: u64 = ICH_LR0_EL2::State::Pending.value;
/// State: active.
pub const LR_STATE_ACTIVE: u64 = ICH_LR0_EL2::State::Active.value;
/// The state field (0: invalid, nothing in the register).
pub const LR_STATE_MASK: u64 = ICH_LR0_EL2::State::PendingAndActive.value;
/// Backed by a physical interrupt (pINTID in bits 41:32): the guest's
/// deactivation deactivates it too.
pub const LR_HW: u64 = ICH_LR0_EL2::HW::SET.value;
/// Group 1.
pub const LR_GROUP1: u64 = ICH_LR0_EL2::Group::SET.value;
/// Software interrupts only: maintenance interrupt when the guest EOIs it.
pub const LR_EOI: u64 = ICH_LR0_EL2::EOI::SET.value;
/// The physical INTID of a hardware interrupt (bits 41:32; INTIDs below
/// 1020 only, so the higher bits aarch64-cpu's pINTID also covers are 0).
pub const fn physical_intid(lr: u64) -> u32 {
    ((lr >> ICH_LR0_EL2::pINTID.shift) & 0x3ff) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bits_as_the_hand_written_layout() {
        assert_eq!(LR_STATE_PENDING, 0b01 << 62);
        assert_eq!(LR_STATE_ACTIVE, 0b10 << 62);
        assert_eq!(LR_STATE_MASK, 0b11 << 62);
        assert_eq!(LR_HW, 1 << 61);
        assert_eq!(LR_GROUP1, 1 << 60);
        assert_eq!(LR_EOI, 1 << 41);
        assert_eq!(physical_intid(LR_HW | (27 << 32) | 27), 27);
        assert_eq!(physical_intid(LR_HW | (1019 << 32) | 5), 1019);
    }
}
