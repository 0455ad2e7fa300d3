//! Typed register blocks of the devices the hypervisor drives itself (the
//! console UART, virtio-mmio disks, the GIC): the one place a device
//! address becomes a Rust reference.
//!
//! Device addresses come from the platform DT (the early UART from the
//! board); EL2 identity-maps everything outside RAM as device memory, and
//! the config validator keeps the hypervisor's devices away from the
//! partitions.
//!
//! A block type is a tock-registers `register_structs!` struct: every
//! register in it is a cell read and written with single volatile
//! accesses of its width, and the macro checks its offsets at compile
//! time. Barriers are not part of an access: a driver that publishes
//! memory to a device calls `arch::dma::publish` before the register write
//! that tells the device.

pub use crate::arch::register_block::Registers;
use core::ptr::NonNull;

impl<T> Registers<T> {
    /// The block at `base` of a device the hypervisor owns, whose register
    /// frame (from the platform DT, or the architecture) is `size` bytes.
    /// `None` if the block does not fit the frame, is misaligned, or is not
    /// device memory in the EL2 map (RAM, or beyond the mapped space).
    pub fn new(base: u64, size: u64) -> Option<Self> {
        let len = size_of::<T>() as u64;
        let ptr = NonNull::new(base as usize as *mut T)?;
        if len > size || !ptr.is_aligned() || !super::mmu::is_device(base, len) {
            return None;
        }
        // SAFETY: `base..base + size_of::<T>()` is device memory in the EL2
        // identity map (checked above: no byte of it is RAM, so no Rust
        // object lives there and nothing else can hold a reference to it),
        // aligned for `T`, and inside the device's frame. Its registers are
        // only ever reached through tock-registers cells (volatile accesses
        // through `UnsafeCell`), so a shared `&'static` reference is what
        // the block is meant to be used through.
        let regs = unsafe { ptr.as_ref() };
        Some(Self::from_parts(regs, base))
    }
}
