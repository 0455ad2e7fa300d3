//! The hypervisor, everything but its entry: the partition machinery and
//! the mediators, on top of an architecture interface. The EL2 binary
//! (`main.rs`) is the boot sequence only.
//!
//! Layers, each importing only the ones below it:
//! - [`mediators`]: shared physical devices (console, storage), and
//!   [`drivers`]: the hypervisor's own physical device drivers;
//! - [`partition`]: partitions at run time: traps, trapped MMIO, virtual
//!   interrupts, PSCI, watchdog, life cycle;
//! - [`dt`] and [`memory`]: device trees and memory maps (portable logic);
//! - [`arch`]: the CPU, the GIC and raw memory, with a real AArch64
//!   implementation and a fake one for host tests.
//!
//! On the host (`cargo test -p hypervisor`) it builds with the fake
//! architecture, so every layer runs under test.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

/// Built as the production variant (the `production` feature, `cargo xtask
/// build --release-profile production`): the physical console takes no
/// input at all (no typing into a partition, no focus switch: its receive
/// interrupt is never enabled and anything received is discarded), and
/// the hypervisor logs warnings and errors only. Partitions' own console
/// output is the same. docs/production.md lists the differences.
pub const PRODUCTION: bool = cfg!(feature = "production");

pub mod arch;
pub mod drivers;
pub mod dt;
pub mod mediators;
pub mod memory;
pub mod partition;
