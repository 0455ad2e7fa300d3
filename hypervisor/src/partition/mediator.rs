//! What a mediator is to the partition machinery.
//!
//! A mediator shares one physical device among partitions (console,
//! storage; display, touch and audio next). It has three faces:
//! - toward each partition, one or more emulated register windows
//!   ([`super::EmulatedDevice`]), placed in the partition's window table
//!   at set-up;
//! - toward its physical device, work done on its *home core* in
//!   [`Mediator::service`], which never waits for the device, and the
//!   device's interrupts ([`Mediator::interrupt`], for the INTIDs listed in
//!   [`super::Hypervisor::interrupt_owners`]);
//! - toward the life cycle, [`Mediator::quiesce`] when a partition stops or
//!   restarts.
//!
//! The partition machinery calls these and nothing else; a mediator calls
//! down through [`super::raise_virtual_spi`], [`super::kick`] and
//! [`super::hv`].

use super::Partition;
use shared_devices::crash_record::Record;

/// A shared-device mediator. See the module docs.
pub trait Mediator: Sync {
    /// Its name in logs.
    fn name(&self) -> &'static str;

    /// Does whatever work is due on the calling core (nothing if this is
    /// not its home core), without waiting for any device. Returns the
    /// counter value at which it wants to run again even if nothing wakes
    /// the core (pacing), if any.
    fn service(&self) -> Option<u64>;

    /// A physical interrupt it owns was taken on this core (acknowledged
    /// and priority-dropped; the caller deactivates it afterwards).
    fn interrupt(&self, intid: u32);

    /// Partition `p` is stopping and all its vCPUs are parked: drop what it
    /// queued, and return once nothing the mediator does will touch its
    /// memory. The partition's windows are reset afterwards.
    fn quiesce(&self, p: &Partition);

    /// A crash record of partition `p` is being made (on the core that
    /// saw the event, which may be about to stop the partition): add what
    /// the mediator knows of it. Must not wait for anything but a short
    /// lock.
    fn add_to_record(&self, _p: &Partition, _record: &mut Record) {}

    /// A record was made whose summary the console shows (see
    /// `partition::crash`): a mediator that keeps records takes it from
    /// [`super::Hypervisor::records`].
    fn record_made(&self) {}
}
