//! Everything that touches AArch64 system registers, the GIC's MMIO or raw
//! memory lives under `arch/`. Each module documents why its `unsafe` is
//! sound; the rest of the hypervisor calls the safe functions here.

pub mod boot_dtb;
pub mod cpu;
pub mod dma;
pub mod gic;
pub mod guest_mem;
pub mod mmu;
pub mod uart;

use core::arch::global_asm;

pub const MAX_CPUS: usize = 8;
pub const STACK_SIZE: usize = 64 * 1024;

/// Guest registers saved on a trap, laid out as `boot.S` stores them.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _pad: u64,
}

impl Frame {
    /// Register `n` as an instruction operand: 31 is the zero register.
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }

    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = value;
        }
    }
}

global_asm!(
    include_str!("boot.S"),
    stack_size = const STACK_SIZE,
    max_cpus = const MAX_CPUS,
    frame_size = const core::mem::size_of::<Frame>(),
);

unsafe extern "C" {
    static __stacks: u8;
    static __image_start: u8;
    static __image_end: u8;
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
