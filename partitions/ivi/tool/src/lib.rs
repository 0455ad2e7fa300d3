//! The ivi partition's userspace tool. `main.rs` only parses the command
//! line and prints; everything it decides is here, so it is tested on the
//! host.
//!
//! - [`cli`]: the command line.
//! - [`check`]: `ivi-tool check`, which compares what the kernel sees (CPUs,
//!   memory, device tree) with what the partition's config promised.

pub mod check;
pub mod cli;
