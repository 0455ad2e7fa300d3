//! The device side of virtio, shared by every mediator: virtio 1.2 over
//! virtio-mmio version 2, split virtqueues, and the device models.
//!
//! ```text
//!  guest MMIO trap ──> mmio::MmioTransport ──> device::VirtioDevice (blk::VirtioBlk, ...)
//!                        │  registers, status,      │  parses requests from
//!                        │  features, interrupt     │  queue::VirtQueue chains
//!                        └── Effects ──> hypervisor │
//!                                                   └──> sched::Scheduler ──> blk::BlockBackend
//!  guest RAM <── memory::GuestMemory (bounds-checked, implemented by the hypervisor)
//! ```
//!
//! - [`memory`]: the guest memory accessor the hypervisor implements, and
//!   where memory barriers go.
//! - [`queue`]: split virtqueue, device side, with full validation.
//! - [`device`]: the trait every device model implements, and the context
//!   it works through.
//! - [`mmio`]: the virtio-mmio register model.
//! - [`blk`]: virtio-blk on a window of a physical disk.
//! - [`gpu`]: virtio-gpu (2D) whose scanouts are a partition's views.
//! - [`sound`]: virtio-snd, one output stream that the audio mixer plays.
//! - [`sched`]: the storage scheduler shared by the partitions' disks.
//!
//! Nothing here allocates or touches hardware; every guest-supplied index,
//! length and address is checked, and malformed input ends as an error
//! status or DEVICE_NEEDS_RESET, never a panic.
//!
//! # Wiring it into the hypervisor
//!
//! Per partition and virtual device: one `MmioTransport<D>` at a
//! guest-physical window left unmapped in stage 2 (so accesses trap), an
//! SPI, and a [`memory::GuestMemory`] over the partition's memory map
//! (`guest_map::to_host` plus copies, with [`memory::GuestMemory::read_u16`]
//! and [`memory::GuestMemory::write_u16`] as single 16-bit accesses and
//! [`memory::Fence`] as `dmb ishld` / `dmb ish`). Then:
//!
//! 1. **Data abort in the window** (ISV set): through
//!    [`crate::mmio::RegisterFile`], a load calls
//!    `transport.read(offset, width, &mut fx)` and writes the value to the
//!    register; a store calls `transport.write(offset, width, value, &mut
//!    fx)` and acts on the [`mmio::Effects`] `fx`:
//!    - `irq: Some(level)`: set the SPI's level in the vGIC (the line is
//!      level-sensitive: high while InterruptStatus is not 0).
//!    - `notify: Some(q)`: call `transport.notify_queue(q, &mem)`, on the
//!      trapping core or on the device's service core, and act on its
//!      effects the same way (its `notify` means "call again later": the
//!      device stopped at its per-call budget).
//!    - `reset`: the driver reset the device. For a disk: cancel the
//!      partition's queued requests in the scheduler and complete each
//!      cancelled token (see [`blk`]).
//! 2. **Device events** (a physical completion, input, a timer):
//!    `transport.with_device(&mem, |dev, ctx| ...)`, then the effects.
//! 3. **Partition restart**: `transport.reset()`, treated like a driver
//!    reset; with zero-copy block I/O, wait until the disk's `in_flight()`
//!    is 0 before scrubbing the partition's memory.
//! 4. **Ordering**: the transport and its device are one state machine;
//!    calls for one device must not run concurrently (one lock per device,
//!    or all calls on one core). The interrupt level change must reach the
//!    vGIC after the call that produced it returned (the used ring is
//!    already published then: the release fence is inside).
//!
//! For the storage mediator, per physical disk: one
//! `sched::Scheduler<blk::BlkToken, ..>` with the partitions' priorities,
//! and the physical driver as a [`blk::BlockBackend`]. After each
//! `notify_queue` of a partition's disk, move its parsed requests to the
//! scheduler (`take_pending` then `enqueue(partition, token)`), then
//! dispatch: for each `Dispatch`, `physical_request(item)` of that
//! partition's disk and `backend.submit(id, &req)` (if it has none, or
//! `submit` fails, complete it at once). On each physical completion
//! `(id, status)`: `sched.complete(id)` gives `(partition, token)`, then
//! `with_device(&mem_of(partition), |blk, ctx| blk.complete(token,
//! status, ctx))`, and dispatch again. `blk/tests.rs` does exactly this.

pub mod blk;
pub mod device;
pub mod driver;
pub mod gpu;
pub mod input;
pub mod memory;
pub mod mmio;
pub mod queue;
pub mod sched;
pub mod sound;

#[cfg(test)]
mod test_driver;
