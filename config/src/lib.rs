//! Partition configuration.
//!
//! `model` is the validated, static form of a system configuration. It is
//! `no_std` and allocation-free so the hypervisor can link it: the build
//! script of the hypervisor parses and validates the TOML file on the host
//! and emits Rust source that constructs a `model::System` as a `static`.
//! Nothing parses TOML at EL2.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod model;
