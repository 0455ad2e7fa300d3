//! Memory maps: translation tables (EL2 stage 1 and each partition's stage
//! 2), guest-physical to host-physical translation with bounds checks, and
//! sets of physical ranges. Portable logic; the tables are installed by
//! `crate::arch`.
#![forbid(unsafe_code)]

pub mod guest_map;
pub mod pagetable;
pub mod ranges;
