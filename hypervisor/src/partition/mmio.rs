//! Trapped MMIO: every emulated device behind one interface, found by
//! address in one place, its effects carried out in one place.
//!
//! Each partition has a table of [`Window`]s built from its config at
//! set-up (vGIC distributor and redistributors, console UART, watchdog,
//! virtio slots), sorted by address. A stage-2 data abort with a valid
//! syndrome in one of them becomes a call to the window's
//! [`EmulatedDevice`] with the offset in the window and the access width;
//! what the access asks of the hypervisor comes back as [`Actions`] and is
//! carried out by [`emulate`] after the device has let go of its locks.

use super::esr::MmioAccess;
use super::{Partition, raise_virtual_spi, service_mediators, watchdog};
use crate::arch::{Frame, cpu};
use shared_devices::mmio::Width;

/// One guest access to a window.
pub struct Access<'a> {
    /// The partition that made it.
    pub partition: &'a Partition,
    /// Its vCPU that made it.
    pub vcpu: usize,
    /// Byte offset in the window. May lie past the window's end when a wide
    /// access starts in its last bytes.
    pub offset: u64,
    /// Access width.
    pub width: Width,
}

/// What an access left for the hypervisor to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Actions {
    /// The device's interrupt line rose: make the window's SPI pending.
    pub raise_line: bool,
    /// Mediation work was queued on this core's mediators' home: run them
    /// here if it is this core, else kick it.
    pub wake: Option<usize>,
    /// The partition's watchdog was touched: bring its deadline and this
    /// core's timer up to date (which may stop the partition).
    pub watchdog: bool,
}

/// A device a partition reaches through trapped MMIO; devices live as long
/// as the hypervisor (`&'static self`), so they may hand out references to
/// themselves (a queued request names its disk). Implementations hold
/// their own locks only inside a call; they never call back into the
/// dispatcher. The contract on widths and offsets is that of
/// [`shared_devices::mmio::RegisterFile`]: anything goes, nothing panics.
pub trait EmulatedDevice: Sync {
    /// A guest load; the result fits in `access.width`.
    fn read(&'static self, access: &Access, actions: &mut Actions) -> u64;

    /// A guest store of the low `access.width` bytes of `value`.
    fn write(&'static self, access: &Access, value: u64, actions: &mut Actions);

    /// Level of the device's interrupt line (for a level-triggered line
    /// still high when the guest ends its interrupt).
    fn line_high(&self, _p: &Partition) -> bool {
        false
    }

    /// The partition restarts (its vCPUs are parked and its mediators
    /// quiesced): back to the reset state.
    fn reset(&self, _p: &Partition) {}
}

/// An emulated register window in a partition's physical address space.
pub struct Window {
    /// First guest-physical address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// The device's virtual SPI, if it has one.
    pub intid: Option<u32>,
    /// The device.
    pub device: &'static dyn EmulatedDevice,
}

impl Window {
    /// Does the window contain guest-physical address `ipa`?
    pub fn contains(&self, ipa: u64) -> bool {
        ipa.wrapping_sub(self.base) < self.size
    }
}

/// Sorts a partition's windows by address and checks that none overlaps
/// the next; returns the first pair that does.
pub fn sort_windows(windows: &mut [Window]) -> Result<(), (u64, u64)> {
    windows.sort_by_key(|w| w.base);
    for pair in windows.windows(2) {
        if pair[0].base + pair[0].size > pair[1].base {
            return Err((pair[0].base, pair[1].base));
        }
    }
    Ok(())
}

/// The window of `p` that contains `ipa`.
pub fn find(p: &Partition, ipa: u64) -> Option<&Window> {
    let after = p.windows.partition_point(|w| w.base <= ipa);
    let w = p.windows.get(after.checked_sub(1)?)?;
    w.contains(ipa).then_some(w)
}

/// Emulates a trapped access at `ipa` by vCPU `vcpu` of `p`: finds the
/// window, calls its device, writes a load's result to the guest register
/// and carries out the effects. `false` if no window contains `ipa` (the
/// caller faults the guest).
pub fn emulate(p: &Partition, vcpu: usize, frame: &mut Frame, ipa: u64, t: MmioAccess) -> bool {
    let Some(window) = find(p, ipa) else {
        return false;
    };
    let access = Access {
        partition: p,
        vcpu,
        offset: ipa - window.base,
        width: t.width,
    };
    let mut actions = Actions::default();
    if t.write {
        let value = frame.reg(t.reg) & t.width.mask();
        window.device.write(&access, value, &mut actions);
    } else {
        let mut v = window.device.read(&access, &mut actions) & t.width.mask();
        let sign = 1u64 << (8 * t.width.bytes() - 1);
        if t.sign_extend && t.width != Width::Double && v & sign != 0 {
            v |= !t.width.mask();
        }
        if !t.sixty_four {
            v &= 0xffff_ffff;
        }
        frame.set_reg(t.reg, v);
    }
    apply(p, window, actions, frame);
    true
}

/// Carries out what an access by the vCPU whose registers are `frame`
/// asked for.
pub fn apply(p: &Partition, window: &Window, actions: Actions, frame: &Frame) {
    if actions.raise_line
        && let Some(intid) = window.intid
    {
        raise_virtual_spi(p, intid);
    }
    if let Some(home) = actions.wake {
        if home == cpu::current() {
            // This partition's core is the mediator's home: it does the work.
            service_mediators();
        } else {
            super::kick(home, 0);
        }
    }
    if actions.watchdog
        && let Some(then) = watchdog::service(p)
    {
        watchdog::expire(p, then, Some(frame));
    }
}
