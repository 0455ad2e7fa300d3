//! The layout of a GICv3 list register (ICH_LR<n>_EL2), shared by both
//! implementations of the interface and by `partition::virq`, which
//! composes their values.

/// State: pending.
pub const LR_STATE_PENDING: u64 = 0b01 << 62;
/// State: active.
pub const LR_STATE_ACTIVE: u64 = 0b10 << 62;
/// The state field (0: invalid, nothing in the register).
pub const LR_STATE_MASK: u64 = 0b11 << 62;
/// Backed by a physical interrupt (pINTID in bits 41:32): the guest's
/// deactivation deactivates it too.
pub const LR_HW: u64 = 1 << 61;
/// Group 1.
pub const LR_GROUP1: u64 = 1 << 60;
/// Software interrupts only: maintenance interrupt when the guest EOIs it.
pub const LR_EOI: u64 = 1 << 41;
/// The physical INTID of a hardware interrupt.
pub const fn physical_intid(lr: u64) -> u32 {
    ((lr >> 32) & 0x3ff) as u32
}
