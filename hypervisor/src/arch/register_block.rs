//! A device's typed register block, as both implementations of the
//! interface hand it out (`mmio::Registers::new` opens one: at the device's
//! address on hardware, over zeroed memory in the fake).

use core::ops::Deref;

/// The register block `T` of a device at a fixed physical address, shared
/// by every core (device registers, not memory: what concurrent accesses
/// mean is the device's business, as on any MMIO).
pub struct Registers<T: 'static> {
    regs: &'static T,
    base: u64,
}

impl<T> Registers<T> {
    /// The block `regs`, at physical address `base`. Only the
    /// implementations' `new` make one (they check what makes it sound).
    pub(super) const fn from_parts(regs: &'static T, base: u64) -> Self {
        Self { regs, base }
    }

    /// The block's physical address.
    pub fn base(&self) -> u64 {
        self.base
    }
}

impl<T> Deref for Registers<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.regs
    }
}

impl<T> Clone for Registers<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Registers<T> {}

// SAFETY: the block is device registers (or, in the fake, memory standing
// in for them), not memory any Rust code owns; every access is a volatile
// one through a register cell, from whichever core. Register types are not
// `Sync` only because they wrap `UnsafeCell`.
unsafe impl<T> Send for Registers<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for Registers<T> {}
