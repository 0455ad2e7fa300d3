//! Getting virtual interrupts into a vCPU through the list registers.
//!
//! Two kinds: software interrupts (virtual SGIs, emulated devices' SPIs)
//! wait in a per-core `Pending` set until a list register is free and the
//! guest has them enabled; hardware interrupts (virtual timer, passthrough
//! SPIs) go straight into a list register with the HW bit, so the guest's
//! deactivation also deactivates the physical interrupt.

use super::{Partition, PhysicalCpu, hv, kick, vgic};
use crate::arch::list_register::*;
use crate::arch::{IrqState, StateBit, cpu, gic};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Asks for the maintenance interrupts the list registers need now.
///
/// Where the GIC cannot raise the cores' virtual IRQ line
/// (`Hypervisor::virq_by_hcr`) the hypervisor raises it itself with
/// HCR_EL2.VI while a list register is pending, and a "no pending"
/// maintenance interrupt brings the core back to drop it once the guest
/// has acknowledged them. A guest that takes the line while only an
/// active-and-pending interrupt waits reads a spurious INTID, as it may
/// on any GIC.
fn set_maintenance(underflow: bool) {
    if hv().virq_by_hcr {
        let pending = gic::any_pending_lr();
        gic::set_maintenance(underflow, pending);
        cpu::set_virtual_irq(pending);
    } else {
        gic::set_maintenance(underflow, false);
    }
}

/// Interrupt IDs a software interrupt can have: SGIs, PPIs and the low SPIs
/// the hypervisor's virtual devices use.
const SOFT_INTIDS: usize = 128;

/// A core's virtual interrupts waiting for a list register.
#[derive(Default)]
pub struct Pending {
    bits: [AtomicU32; SOFT_INTIDS / 32],
    /// Software interrupts whose pending state another vCPU cleared (a
    /// clear-pending write): the core takes them out of its list registers
    /// on its way back to its vCPU.
    unpend: [AtomicU32; SOFT_INTIDS / 32],
    /// The same for the active state (a clear-active write).
    deactivate: [AtomicU32; SOFT_INTIDS / 32],
    /// Hardware interrupts acknowledged but not yet in a list register
    /// (only this core sets or takes them).
    hardware: [AtomicU32; 1024 / 32],
    /// Some bit of `hardware` may be set: spares every return to the guest
    /// a look at its 32 words (they fill only while list registers are).
    hardware_waiting: AtomicBool,
}

/// The positions of the bits set in `word`, lowest first: as many steps as
/// bits set (every return to a guest walks these words, most of them 0).
pub fn set_bits(mut word: u32) -> impl Iterator<Item = u32> {
    core::iter::from_fn(move || {
        (word != 0).then(|| {
            let bit = word.trailing_zeros();
            word &= word - 1;
            bit
        })
    })
}

/// Takes the bits set in `words` (clearing them) and calls `f` with the
/// number of each (word index * 32 + bit). A word found 0 costs one load.
fn take_each(words: &[AtomicU32], mut f: impl FnMut(u32)) {
    for (w, word) in words.iter().enumerate() {
        if word.load(Ordering::Relaxed) == 0 {
            continue;
        }
        for b in set_bits(word.swap(0, Ordering::AcqRel)) {
            f(w as u32 * 32 + b);
        }
    }
}

/// Is any bit set in `words`?
fn any_set(words: &[AtomicU32]) -> bool {
    words.iter().any(|w| w.load(Ordering::Acquire) != 0)
}

impl Pending {
    /// Makes software interrupt `intid` pending (ignored beyond the
    /// software range).
    pub fn set(&self, intid: u32) {
        if let Some(w) = self.bits.get(intid as usize / 32) {
            w.fetch_or(1 << (intid % 32), Ordering::AcqRel);
        }
    }

    fn set_hardware(&self, intid: u32) {
        self.hardware[intid as usize / 32].fetch_or(1 << (intid % 32), Ordering::AcqRel);
        self.hardware_waiting.store(true, Ordering::Release);
    }

    /// Whether hardware interrupts may wait, forgetting that they do (the
    /// caller takes them, and puts back the ones that still must wait).
    fn take_hardware_waiting(&self) -> bool {
        self.hardware_waiting.swap(false, Ordering::AcqRel)
    }

    /// Forgets software interrupt `intid` if it was pending here.
    pub fn unset(&self, intid: u32) {
        if let Some(w) = self.bits.get(intid as usize / 32) {
            w.fetch_and(!(1 << (intid % 32)), Ordering::AcqRel);
        }
    }

    /// Is software interrupt `intid` pending?
    pub fn is_set(&self, intid: u32) -> bool {
        self.bits
            .get(intid as usize / 32)
            .is_some_and(|w| w.load(Ordering::Acquire) & (1 << (intid % 32)) != 0)
    }

    /// Forgets the software interrupts pending (virtual SGIs, emulated
    /// devices' SPIs), and requests to take state out of list registers:
    /// before a partition boots, so nothing raised while it was stopping
    /// survives into its next life.
    pub fn clear_software(&self) {
        for w in self.bits.iter().chain(&self.unpend).chain(&self.deactivate) {
            w.store(0, Ordering::Release);
        }
    }

    /// Stops the vCPU's interrupts, on its own core: software ones are
    /// forgotten; hardware ones still waiting for a list register are
    /// deactivated (they are active at the physical GIC until someone
    /// does: a virtual timer left active would never fire again on this
    /// core).
    pub fn clear_on_this_core(&self) {
        self.clear_software();
        self.take_hardware_waiting();
        take_each(&self.hardware, gic::deactivate);
    }
}

fn lr_value(intid: u32, priority: u8) -> u64 {
    LR_STATE_PENDING | LR_GROUP1 | ((priority as u64) << 48) | intid as u64
}

/// Software SPIs model level-triggered device lines: ask for a maintenance
/// interrupt when the guest ends them, to re-raise a line still high.
fn soft_lr_value(intid: u32, priority: u8) -> u64 {
    let eoi_notify = if intid >= 32 { LR_EOI } else { 0 };
    lr_value(intid, priority) | eoi_notify
}

fn free_lr() -> Option<usize> {
    let empty = gic::empty_lrs();
    (0..gic::num_lrs()).find(|&i| empty & (1 << i) != 0)
}

/// Makes a software interrupt pending in a list register; false if none free.
fn try_inject_soft(intid: u32, priority: u8) -> bool {
    for i in 0..gic::num_lrs() {
        let lr = gic::read_lr(i);
        if lr & LR_STATE_MASK != 0 && lr as u32 == intid {
            // Already there: at most add "pending" to "active".
            gic::write_lr(i, lr | LR_STATE_PENDING);
            return true;
        }
    }
    match free_lr() {
        Some(i) => {
            gic::write_lr(i, soft_lr_value(intid, priority));
            true
        }
        None => false,
    }
}

fn try_inject_hardware(intid: u32, priority: u8) -> bool {
    match free_lr() {
        Some(i) => {
            gic::write_lr(
                i,
                lr_value(intid, priority) | LR_HW | ((intid as u64) << 32),
            );
            true
        }
        None => false,
    }
}

/// Forwards a physical interrupt (already priority-dropped, still active)
/// to the vCPU on this core.
pub fn inject_hardware(cpu: &PhysicalCpu, p: &Partition, vcpu: usize, intid: u32) {
    let priority = p.vgic.lock().priority(vcpu, intid);
    if !try_inject_hardware(intid, priority) {
        cpu.pending.set_hardware(intid);
        set_maintenance(true);
    }
}

/// Moves whatever is pending for this core's vCPU into free list
/// registers. Called on every return to the guest.
pub fn flush(cpu: &PhysicalCpu, p: &Partition, vcpu: usize) {
    take_each(&cpu.pending.unpend, |intid| {
        clear_lr_state(intid, StateBit::Pending)
    });
    take_each(&cpu.pending.deactivate, |intid| {
        clear_lr_state(intid, StateBit::Active)
    });
    let mut waiting = false;
    let hardware = cpu.pending.take_hardware_waiting();
    // Most returns have nothing to inject: no lock then.
    if hardware || any_set(&cpu.pending.bits) {
        let vgic = p.vgic.lock();
        if hardware {
            take_each(&cpu.pending.hardware, |intid| {
                if !try_inject_hardware(intid, vgic.priority(vcpu, intid)) {
                    cpu.pending.set_hardware(intid);
                    waiting = true;
                }
            });
        }
        take_each(&cpu.pending.bits, |intid| {
            // A disabled interrupt stays pending until the guest enables it.
            let injected =
                vgic.enabled(vcpu, intid) && try_inject_soft(intid, vgic.priority(vcpu, intid));
            if !injected {
                cpu.pending.set(intid);
                waiting |= vgic.enabled(vcpu, intid);
            }
        });
    }
    set_maintenance(waiting);
    publish_lrs(cpu);
}

/// Copies this core's list registers where the partition's other vCPUs
/// can see them (`software_state`).
pub fn publish_lrs(cpu: &PhysicalCpu) {
    // The copies past the core's list registers stay 0.
    for (i, copy) in cpu.lr_copy.iter().take(gic::num_lrs()).enumerate() {
        copy.store(gic::read_lr(i), Ordering::Release);
    }
}

/// The state of software interrupt `intid` of the vCPU on core `core`:
/// pending in its set or in a list register, active in a list register
/// (live on this core, as last published on another).
pub fn software_state(core: usize, intid: u32) -> IrqState {
    let c = &hv().cpus[core];
    let mut state = IrqState {
        pending: c.pending.is_set(intid),
        active: false,
    };
    let here = core == cpu::current();
    for i in 0..c.lr_copy.len().min(gic::num_lrs()) {
        let lr = if here {
            gic::read_lr(i)
        } else {
            c.lr_copy[i].load(Ordering::Acquire)
        };
        if lr & LR_STATE_MASK != 0 && lr as u32 == intid {
            state.pending |= lr & LR_STATE_PENDING != 0;
            state.active |= lr & LR_STATE_ACTIVE != 0;
        }
    }
    state
}

/// Makes software interrupt `intid` pending on the vCPU of core `core`
/// (a guest's set-pending write), and wakes that core.
pub fn set_software_pending(core: usize, intid: u32) {
    hv().cpus[core].pending.set(intid);
    if core != cpu::current() {
        kick(core, 0);
    }
}

/// Clears software interrupt `intid`'s pending (or active) state on the
/// vCPU of core `core` (a guest's clear-pending or clear-active write):
/// from its pending set, and from its list registers: at once on this
/// core, before its vCPU runs again on another (it is kicked).
pub fn clear_software_state(core: usize, intid: u32, which: StateBit) {
    let c = &hv().cpus[core];
    if which == StateBit::Pending {
        c.pending.unset(intid);
    }
    if core == cpu::current() {
        clear_lr_state(intid, which);
        return;
    }
    let requests = match which {
        StateBit::Pending => &c.pending.unpend,
        StateBit::Active => &c.pending.deactivate,
    };
    if let Some(w) = requests.get(intid as usize / 32) {
        w.fetch_or(1 << (intid % 32), Ordering::AcqRel);
        kick(core, 0);
    }
}

/// Takes `which` state of software interrupt `intid` out of this core's
/// list registers (an empty one is freed).
fn clear_lr_state(intid: u32, which: StateBit) {
    let bit = match which {
        StateBit::Pending => LR_STATE_PENDING,
        StateBit::Active => LR_STATE_ACTIVE,
    };
    for i in 0..gic::num_lrs() {
        let lr = gic::read_lr(i);
        if lr & LR_STATE_MASK != 0 && lr as u32 == intid && lr & LR_HW == 0 {
            let lr = lr & !bit;
            gic::write_lr(i, if lr & LR_STATE_MASK == 0 { 0 } else { lr });
        }
    }
}

/// EOI maintenance: the guest has ended level-triggered software SPIs.
/// Frees their list registers and raises again the lines still high.
pub fn end_of_interrupts(cpu: &PhysicalCpu, p: &Partition) {
    let ended = gic::ended_lrs();
    for i in (0..gic::num_lrs()).filter(|i| ended & (1 << i) != 0) {
        let intid = gic::read_lr(i) as u32;
        gic::write_lr(i, 0);
        let high = p
            .window_of_intid(intid)
            .is_some_and(|w| w.device.line_high(p));
        if high {
            cpu.pending.set(intid);
        }
    }
}

/// A guest write to ICC_SGI1R_EL1 by vCPU `sender`: makes the SGI pending
/// on each of the partition's vCPUs it names, and wakes their cores.
pub fn send_sgi(p: &Partition, sender: usize, value: u64) {
    let (intid, targets) = vgic::sgi_targets(value, sender, p.vcpus());
    for vcpu in (0..p.vcpus()).filter(|v| targets & (1 << v) != 0) {
        let cpu = p.vcpu_cpus[vcpu];
        hv().cpus[cpu].pending.set(intid);
        if cpu != cpu::current() {
            kick(cpu, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn set_bits_are_the_bits_set_lowest_first() {
        assert_eq!(set_bits(0).count(), 0);
        assert_eq!(set_bits(0b1010_0001).collect::<Vec<_>>(), [0, 5, 7]);
        assert_eq!(set_bits(1 << 31).collect::<Vec<_>>(), [31]);
        assert_eq!(set_bits(u32::MAX).count(), 32);
    }

    #[test]
    fn take_each_takes_every_bit_once() {
        let words: [AtomicU32; 3] = [
            AtomicU32::new(0b101),
            AtomicU32::new(0),
            AtomicU32::new(1 << 31),
        ];
        let mut taken = Vec::new();
        take_each(&words, |intid| taken.push(intid));
        assert_eq!(taken, [0, 2, 95]);
        assert!(!any_set(&words));
        take_each(&words, |_| panic!("taken twice"));
    }
}
