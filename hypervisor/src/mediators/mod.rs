//! The mediators' run-time side: one module per shared physical device.
//! Each implements [`crate::partition::Mediator`] (work on its home core,
//! its physical interrupts, quiescing a stopping partition) and offers
//! each partition its register windows as
//! [`crate::partition::EmulatedDevice`]s; the device models themselves
//! (virtio transport, block, PL011, ...) are safe state machines in the
//! `shared-devices` crate.
//!
//! A new mediator (touch, audio) is a new module here, its model
//! in `shared-devices`, and its physical driver in `crate::drivers`; the
//! boot code (`main.rs`) creates it, adds its windows to the partitions
//! that use it and registers it with the hypervisor.
#![forbid(unsafe_code)]

pub mod audio;
pub mod console;
pub mod display;
pub mod storage;
pub mod touch;
pub mod virtio_window;
