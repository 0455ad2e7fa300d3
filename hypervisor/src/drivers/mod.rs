//! The hypervisor's own drivers for the physical devices it keeps: the
//! console UART (`uart`: a PL011 or an i.MX UART, as the DT says), the
//! disks the storage mediator shares, the displays the display mediator
//! composes onto, the touch panels and audio outputs. A new physical
//! device (a display controller, a touch panel, an audio codec) gets a
//! module here; its mediator in `crate::mediators` drives it.
//!
//! Drivers reach hardware only through `crate::arch`, so there is no
//! `unsafe` here (and the compiler holds them to it): a driver declares its
//! registers as a tock-registers `register_structs!` block and opens it at
//! the device's address with `arch::mmio::Registers::new`, which checks the
//! address is device memory; memory shared with a device is an
//! `arch::dma::DmaRegion`, published to it with `arch::dma::publish`
//! before the register write that tells it.
#![forbid(unsafe_code)]

pub mod uart;
pub mod virtio_blk;
pub mod virtio_gpu;
pub mod virtio_input;
pub mod virtio_mmio;
pub mod virtio_snd;
