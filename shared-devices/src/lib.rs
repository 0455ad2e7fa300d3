//! Device side of the devices the hypervisor shares between partitions.
//!
//! Everything here is safe, `no_std`, allocation-free Rust, testable on the
//! host: a device model takes guest register accesses and virtio requests
//! in and produces effects out; the hypervisor owns the traps, the physical
//! devices and guest memory (reached through [`virtio::memory::GuestMemory`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod audio;
pub mod console;
pub mod crash_record;
pub mod display;
pub mod gpt;
pub mod latency;
pub mod mmio;
pub mod pl011;
pub mod sp805;
pub mod touch;
pub mod virtio;
