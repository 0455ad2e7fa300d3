//! Runtime shared by the test partitions: small bare-metal AArch64 guests
//! that the hypervisor's QEMU scenarios boot and whose console lines the
//! tests assert on.
//!
//! Every guest is an arm64 Linux `Image` entered at EL1h with the MMU off and
//! `x0` pointing at its device tree. The runtime (`rt`, only built for
//! `target_os = "none"`) discovers everything (UART, GIC, PSCI conduit, CPUs,
//! memory) from that device tree, so the same binaries run under the
//! hypervisor and natively on QEMU `virt`.
//!
//! The target-independent helpers (`args`, `dt`, `journal`, `odometer`, `pattern`,
//! `virtio`) are unit tested on the host with `cargo test -p testkit --lib`.

#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod dt;
pub mod journal;
pub mod odometer;
pub mod pattern;
pub mod rng;
pub mod virtio;

#[cfg(target_os = "none")]
pub mod rt;

/// Most vCPUs a test partition can run (one stack each).
pub const MAX_CPUS: usize = 4;
