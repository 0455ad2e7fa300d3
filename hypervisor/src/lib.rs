//! The portable part of the hypervisor: page tables, device trees, the
//! vGIC register model, PSCI decoding, exception syndromes and the guest
//! memory map. Everything here is safe Rust and runs under `cargo test` on
//! the host; the EL2 binary (`main.rs` and `arch/`) adds the registers,
//! traps and raw memory access.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod esr;
pub mod fdt_writer;
pub mod guest_dt;
pub mod guest_map;
pub mod pagetable;
pub mod platform;
pub mod psci;
pub mod ranges;
pub mod vgic;
