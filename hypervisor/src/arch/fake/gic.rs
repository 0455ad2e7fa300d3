//! The simulated GIC: the distributor's enables and routes, SGIs sent,
//! acknowledgement and deactivation, and each core's list registers.

use super::{NUM_LRS, with};
pub use crate::arch::list_register::*;
pub use crate::arch::{IrqState, StateBit};

/// SPI `intid`'s simulated state.
pub fn spi_state(_gicd: u64, intid: u32) -> IrqState {
    with(|m| m.irq_states.get(&(0, intid)).copied().unwrap_or_default())
}

/// Changes SPI `intid`'s simulated state.
pub fn set_spi_state(_gicd: u64, intid: u32, which: StateBit, value: bool) {
    set_state(0, intid, which, value);
}

/// Private interrupt `intid`'s simulated state at redistributor `rd`.
pub fn private_state(rd: u64, intid: u32) -> IrqState {
    with(|m| m.irq_states.get(&(rd, intid)).copied().unwrap_or_default())
}

/// Changes private interrupt `intid`'s simulated state at `rd`.
pub fn set_private_state(rd: u64, intid: u32, which: StateBit, value: bool) {
    set_state(rd, intid, which, value);
}

fn set_state(frame: u64, intid: u32, which: StateBit, value: bool) {
    with(|m| {
        let s = m.irq_states.entry((frame, intid)).or_default();
        match which {
            StateBit::Pending => s.pending = value,
            StateBit::Active => s.active = value,
        }
    });
}

/// No interrupt to acknowledge.
pub const SPURIOUS: u32 = 1023;

/// 288 interrupt IDs.
pub fn lines(_gicd: u64) -> usize {
    288
}

/// Does nothing.
pub fn init_distributor(_gicd: u64) {}

/// Core n's frame is at `gicr_base + n * 128 KiB`.
pub fn find_redistributor(gicr_base: u64, _gicr_size: u64, mpidr: u64) -> Option<u64> {
    Some(gicr_base + (mpidr & 0xff) * 0x2_0000)
}

/// Does nothing.
pub fn init_cpu(_rd: u64, _enabled_private: u32) {}

/// Records the SPI's enable.
pub fn set_spi_enabled(_gicd: u64, intid: u32, enable: bool) {
    with(|m| {
        if enable {
            m.spis_enabled.insert(intid);
        } else {
            m.spis_enabled.remove(&intid);
        }
    });
}

/// Records the SPI's route.
pub fn route_spi(_gicd: u64, intid: u32, mpidr: u64) {
    with(|m| m.spi_routes.insert(intid, mpidr));
}

/// Records the private interrupt's enable.
pub fn set_private_enabled(rd: u64, intid: u32, enable: bool) {
    with(|m| {
        if enable {
            m.private_enabled.insert((rd, intid));
        } else {
            m.private_enabled.remove(&(rd, intid));
        }
    });
}

/// The running core's next waiting interrupt.
pub fn ack() -> u32 {
    with(|m| {
        let core = m.core();
        if core.waiting.is_empty() {
            SPURIOUS
        } else {
            core.waiting.remove(0)
        }
    })
}

/// Priority drop: nothing to simulate.
pub fn eoi(_intid: u32) {}

/// Records the deactivation.
pub fn deactivate(intid: u32) {
    with(|m| m.deactivated.push(intid));
}

/// Records the SGI.
pub fn send_sgi(intid: u32, mpidr: u64) {
    with(|m| m.sgis.push((intid, mpidr)));
}

/// List register `i` of the running core.
pub fn read_lr(i: usize) -> u64 {
    with(|m| m.core().lrs.get(i).copied().unwrap_or(0))
}

/// Writes list register `i` of the running core.
pub fn write_lr(i: usize, value: u64) {
    with(|m| {
        let core = m.core();
        if let Some(lr) = core.lrs.get_mut(i) {
            *lr = value;
            core.ended &= !(1 << i);
        }
    });
}

/// [`NUM_LRS`].
pub fn num_lrs() -> usize {
    NUM_LRS
}

/// Bit n set: list register n holds nothing.
pub fn empty_lrs() -> u64 {
    with(|m| {
        let core = m.core();
        (0..NUM_LRS)
            .filter(|&i| core.lrs[i] & LR_STATE_MASK == 0)
            .fold(0, |acc, i| acc | 1 << i)
    })
}

/// Bit n set: the guest EOIed list register n (set by the test).
pub fn ended_lrs() -> u64 {
    with(|m| m.core().ended)
}

/// Records the maintenance requests.
pub fn set_maintenance(underflow: bool, no_pending: bool) {
    with(|m| {
        m.core().underflow = underflow;
        m.core().no_pending = no_pending;
    });
}

/// Does a list register hold a pending interrupt?
pub fn any_pending_lr() -> bool {
    (0..NUM_LRS).any(|i| read_lr(i) & LR_STATE_PENDING != 0)
}

/// Clears the running core's list registers, deactivating hardware
/// interrupts still in them.
pub fn reset_virtual_interface() {
    for i in 0..NUM_LRS {
        let lr = read_lr(i);
        if lr & LR_HW != 0 && lr & LR_STATE_MASK != 0 {
            deactivate(physical_intid(lr));
        }
        write_lr(i, 0);
    }
    set_maintenance(false, false);
}
