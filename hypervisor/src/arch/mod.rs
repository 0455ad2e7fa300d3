//! The architecture interface: what the partition machinery, the mediators
//! and the drivers may ask of the CPU, the interrupt controller and raw
//! memory, and nothing else.
//!
//! Two implementations provide the same modules (`cpu`, `gic`,
//! `guest_mem`, `dma`, `mmio`) and the functions at their roots:
//! - [`aarch64`]: the real one, at EL2. Every `unsafe` block of the EL2
//!   hypervisor is in it (and in its heap), each with a SAFETY comment.
//! - `fake`: a simulated machine for host tests (`cargo test -p
//!   hypervisor`), one per test thread, that records what the code above
//!   it did (list registers, SGIs sent, interrupts deactivated, timer
//!   deadlines, guest memory written, device registers written) and lets a
//!   test play the hardware (pending interrupts, trap syndromes, the
//!   counter). Its only `unsafe` gives device register blocks zeroed memory
//!   (`fake/mmio.rs`).
//!
//! Both share [`registers`] (the system register values EL2 writes, from
//! aarch64-cpu's named fields, host-tested) and [`list_register`].
//!
//! The choice is made by target: bare metal gets `aarch64`, the host gets
//! `fake`.

#[cfg(target_os = "none")]
pub mod aarch64;
#[cfg(target_os = "none")]
pub use aarch64::*;

#[cfg(not(target_os = "none"))]
pub mod fake;
#[cfg(not(target_os = "none"))]
pub use fake::*;

pub mod list_register;
pub mod register_block;
pub mod registers;

/// An interrupt's state at the physical GIC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqState {
    /// Pending.
    pub pending: bool,
    /// Active.
    pub active: bool,
}

/// Which of an interrupt's state bits a set or clear acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateBit {
    /// The pending bit (ISPENDR/ICPENDR).
    Pending,
    /// The active bit (ISACTIVER/ICACTIVER).
    Active,
}

/// Microseconds in `ticks` of the system counter (at its frequency; in
/// u128, so no uptime a vehicle reaches overflows it).
pub fn micros(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(cpu::counter_frequency().max(1))) as u64
}

/// Largest number of physical cores the hypervisor runs on.
pub const MAX_CPUS: usize = 8;

/// Guest registers saved on a trap, laid out as `aarch64/boot.S` stores
/// them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Frame {
    /// x0..x30.
    pub x: [u64; 31],
    /// Where the guest resumes (ELR_EL2).
    pub elr: u64,
    /// The guest's PSTATE (SPSR_EL2).
    pub spsr: u64,
    _pad: u64,
}

impl Frame {
    /// Register `n` as an instruction operand: 31 is the zero register.
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(n as usize).copied().unwrap_or(0)
    }

    /// Writes register `n`; writes to the zero register (31) vanish.
    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(r) = self.x.get_mut(n as usize) {
            *r = value;
        }
    }
}
