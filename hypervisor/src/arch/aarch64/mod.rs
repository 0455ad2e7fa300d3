//! The architecture interface implemented for AArch64 at EL2: system
//! registers, the physical GICv3, the EL2 MMU, raw access to partition
//! memory, device register blocks, and the exception entry (`boot.S`). Each
//! module documents why its `unsafe` is sound; the rest of the hypervisor
//! calls the safe functions here.

pub mod boot_dtb;
pub mod cpu;
pub mod dma;
pub mod gic;
pub mod guest_mem;
pub mod heap;
pub mod mmio;
pub mod mmu;
pub mod sysreg;

use super::{Frame, MAX_CPUS};

/// Stack per core; the guest trap frame sits at its top.
pub const STACK_SIZE: usize = 64 * 1024;
// `boot.S` (entry, exception vectors, guest entry and exit) is assembled
// into the binary by `main.rs`, so that the linker keeps it: nothing in
// this library refers to `_start`.

unsafe extern "C" {
    static __stacks: u8;
    static __image_start: u8;
    static __image_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
    static __bss_start: u8;
    static __bss_end: u8;
    fn reset_stack_and_run(stack_top: u64, f: extern "C" fn() -> !) -> !;
    fn restore_and_eret(frame: *const Frame, stack_top: u64) -> !;
    pub fn secondary_entry();
    static el2_vectors: u8;
}

/// Top of the stack of logical CPU `cpu` (the guest trap frame sits just below).
pub fn stack_top(cpu: usize) -> u64 {
    assert!(cpu < MAX_CPUS);
    let base = &raw const __stacks as u64;
    base + ((cpu + 1) * STACK_SIZE) as u64
}

/// Physical range of the hypervisor image, bss included.
pub fn image_range() -> (u64, u64) {
    (
        &raw const __image_start as u64,
        &raw const __image_end as u64,
    )
}

/// The image's parts, in bytes.
pub struct ImageSections {
    /// `.text`: code.
    pub code: u64,
    /// `.rodata`: read-only data (the partitions' images among it).
    pub rodata: u64,
    /// `.data`: initialised data.
    pub data: u64,
    /// `.bss`: zeroed at boot (stacks, page tables, statics; the heap
    /// region is a section of its own, not zeroed).
    pub bss: u64,
}

pub fn image_sections() -> ImageSections {
    let start = &raw const __image_start as u64;
    let (rodata, rodata_end) = (
        &raw const __rodata_start as u64,
        &raw const __rodata_end as u64,
    );
    let (data, data_end) = (&raw const __data_start as u64, &raw const __data_end as u64);
    let (bss, bss_end) = (&raw const __bss_start as u64, &raw const __bss_end as u64);
    ImageSections {
        code: rodata - start,
        rodata: rodata_end - rodata,
        data: data_end - data,
        bss: bss_end - bss,
    }
}

pub fn vectors() -> u64 {
    &raw const el2_vectors as u64
}

/// Abandons whatever this core was doing at EL2 and runs `f` on a fresh stack.
pub fn restart_on_fresh_stack(cpu: usize, f: extern "C" fn() -> !) -> ! {
    // SAFETY: the stack belongs to this core; nothing on it is referenced
    // after the switch because `f` never returns and callers hold no locks.
    unsafe { reset_stack_and_run(stack_top(cpu), f) }
}

/// Enters the guest with the registers in `frame`.
pub fn enter_guest(cpu: usize, frame: &Frame) -> ! {
    // SAFETY: `frame` is read before the stack it may not live on is reused;
    // `restore_and_eret` only loads registers from it and erets.
    unsafe { restore_and_eret(frame, stack_top(cpu)) }
}

/// Stops this core for good (fatal hypervisor errors only).
pub fn halt() -> ! {
    loop {
        cpu::wfi();
    }
}

/// Bytes of the hypervisor's heap in use (for the log: it must stay flat
/// however often partitions restart).
pub fn heap_in_use() -> usize {
    heap::in_use()
}

/// The most bytes of the hypervisor's heap ever in use at once.
pub fn heap_high_water() -> usize {
    heap::high_water()
}
