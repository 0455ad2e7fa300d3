//! The hypervisor's own drivers for the physical devices it keeps: the
//! console UART and the disks the storage mediator shares. A new physical
//! device (a display controller, a touch panel, an audio codec) gets a
//! module here; its mediator in `crate::mediators` drives it. Drivers reach
//! registers and shared memory only through `crate::arch`.

pub mod pl011;
pub mod virtio_blk;
