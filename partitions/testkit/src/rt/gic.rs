//! Minimal GICv3: the distributor's group enables and the SPIs a program
//! asks for, each vCPU's redistributor (SGIs and PPIs) and the ICC_*
//! system register CPU interface.

use super::{cpu, mmio, platform};
use crate::MAX_CPUS;
use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

const GICD_CTLR: usize = 0x0000;
const CTLR_RWP: u32 = 1 << 31;
/// ARE (ARE_NS as seen from the non-secure side).
const CTLR_ARE: u32 = 1 << 4;
/// Group enables: bit 1 EnableGrp1(A), bit 0 EnableGrp1 (non-secure view) or
/// EnableGrp0 (single security state).
const CTLR_ENABLE_GROUPS: u32 = 0b11;

const GICD_IGROUPR: usize = 0x0080;
const GICD_ISENABLER: usize = 0x0100;
const GICD_ICENABLER: usize = 0x0180;
const GICD_IPRIORITYR: usize = 0x0400;
const GICD_IROUTER: usize = 0x6000;

const GICR_CTLR: usize = 0x0000;
const GICR_CTLR_RWP: u32 = 1 << 3;
const GICR_TYPER_LO: usize = 0x0008;
const GICR_TYPER_HI: usize = 0x000c;
const TYPER_VLPIS: u32 = 1 << 1;
const TYPER_LAST: u32 = 1 << 4;
const GICR_WAKER: usize = 0x0014;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// The SGI/PPI frame follows the RD frame.
const SGI_FRAME: usize = 0x1_0000;
const GICR_IGROUPR0: usize = SGI_FRAME + 0x0080;
const GICR_ISENABLER0: usize = SGI_FRAME + 0x0100;
const GICR_ICENABLER0: usize = SGI_FRAME + 0x0180;
const GICR_IPRIORITYR: usize = SGI_FRAME + 0x0400;

/// Priority of every interrupt (any value below the PMR of 0xff works).
const PRIORITY: u32 = 0x80;
/// Polls of a "register write pending" bit before giving up.
const POLL_LIMIT: u32 = 1_000_000;

/// Redistributor (RD frame) of each vCPU, 0 until `init_cpu` ran there.
static REDIST: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
/// Interrupts with a handler at most: the SGIs, PPIs and the SPIs of QEMU
/// virt's devices (its virtio-mmio transports use SPIs 16..48).
const HANDLED: usize = 128;
/// IRQ handlers by INTID, as `fn(u32)` addresses (0: none).
static HANDLERS: [AtomicUsize; HANDLED] = [const { AtomicUsize::new(0) }; HANDLED];

fn wait_clear(addr: usize, bit: u32) {
    for _ in 0..POLL_LIMIT {
        // SAFETY: a GIC register from the device tree.
        if unsafe { mmio::read32(addr) } & bit == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

/// Turns on affinity routing and both interrupt groups (boot vCPU, once).
pub fn init_distributor() {
    let Some(gicd) = platform().gicd else { return };
    // SAFETY: the distributor named by the device tree.
    unsafe {
        // ARE may change only while the groups are disabled.
        let ctlr = mmio::read32(gicd + GICD_CTLR);
        mmio::write32(gicd + GICD_CTLR, (ctlr & !CTLR_ENABLE_GROUPS) | CTLR_ARE);
        wait_clear(gicd + GICD_CTLR, CTLR_RWP);
        mmio::write32(gicd + GICD_CTLR, CTLR_ARE | CTLR_ENABLE_GROUPS);
        wait_clear(gicd + GICD_CTLR, CTLR_RWP);
        mmio::write32(gicd + GICD_CTLR, CTLR_ARE | CTLR_ENABLE_GROUPS);
        wait_clear(gicd + GICD_CTLR, CTLR_RWP);
    }
}

/// Finds the redistributor whose GICR_TYPER affinity is `mpidr`'s.
fn find_redistributor(mpidr: u64) -> Option<usize> {
    let p = platform();
    let (base, size) = p.gicr?;
    let affinity = (((mpidr >> 32) & 0xff) << 24 | (mpidr & 0xff_ffff)) as u32;
    let mut rd = base;
    while size == 0 || rd < base + size {
        // SAFETY: within the redistributor region of the device tree.
        let (lo, hi) = unsafe {
            (
                mmio::read32(rd + GICR_TYPER_LO),
                mmio::read32(rd + GICR_TYPER_HI),
            )
        };
        if hi == affinity {
            return Some(rd);
        }
        if lo & TYPER_LAST != 0 {
            return None;
        }
        rd += p.gicr_stride.unwrap_or(if lo & TYPER_VLPIS != 0 {
            0x4_0000
        } else {
            0x2_0000
        });
    }
    None
}

/// The running vCPU's redistributor, once `init_cpu` found it.
pub fn redistributor() -> Option<usize> {
    match REDIST.get(cpu::index())?.load(Ordering::Relaxed) {
        0 => None,
        rd => Some(rd),
    }
}

/// Wakes this vCPU's redistributor, puts its SGIs/PPIs in group 1 at one
/// priority (all disabled), and enables the system register CPU interface.
pub fn init_cpu() {
    let Some(rd) = find_redistributor(cpu::mpidr()) else {
        crate::println!(
            "{}: no GIC redistributor for mpidr 0x{:x}",
            super::name(),
            cpu::mpidr()
        );
        return;
    };
    REDIST[cpu::index()].store(rd, Ordering::Relaxed);
    // SAFETY: this vCPU's redistributor.
    unsafe {
        let waker = mmio::read32(rd + GICR_WAKER);
        mmio::write32(rd + GICR_WAKER, waker & !WAKER_PROCESSOR_SLEEP);
        wait_clear(rd + GICR_WAKER, WAKER_CHILDREN_ASLEEP);
        mmio::write32(rd + GICR_ICENABLER0, u32::MAX);
        wait_clear(rd + GICR_CTLR, GICR_CTLR_RWP);
        mmio::write32(rd + GICR_IGROUPR0, u32::MAX);
        for i in 0..8 {
            mmio::write32(rd + GICR_IPRIORITYR + 4 * i, PRIORITY * 0x0101_0101);
        }
    }
    // SAFETY: CPU interface set-up: system register enable, priority mask,
    // binary point, group 1 enable.
    unsafe {
        let mut sre: u64;
        asm!("mrs {}, icc_sre_el1", out(reg) sre, options(nomem, nostack));
        sre |= 1;
        asm!("msr icc_sre_el1, {}", "isb", in(reg) sre, options(nostack));
        asm!("msr icc_pmr_el1, {}", in(reg) 0xffu64, options(nostack));
        asm!("msr icc_bpr1_el1, {}", in(reg) 0u64, options(nostack));
        asm!("msr icc_igrpen1_el1, {}", "isb", in(reg) 1u64, options(nostack));
    }
}

/// Enables SGI/PPI `intid` on the running vCPU.
pub fn enable(intid: u32) {
    if let (Some(rd), true) = (redistributor(), intid < 32) {
        // SAFETY: this vCPU's redistributor.
        unsafe { mmio::write32(rd + GICR_ISENABLER0, 1 << intid) };
    }
}

/// Enables SPI `intid` (a device's interrupt, level-sensitive as the
/// device tree of QEMU virt gives them) in group 1, routed to the running
/// vCPU. Its handler ([`set_handler`]) must quiet the device, or the
/// interrupt comes again at once.
pub fn enable_spi(intid: u32) {
    let (Some(gicd), true) = (platform().gicd, (32..1020).contains(&intid)) else {
        return;
    };
    let n = intid as usize;
    let (word, bit) = (4 * (n / 32), 1u32 << (n % 32));
    let shift = 8 * (n % 4);
    let affinity = cpu::mpidr() & 0xff_00ff_ffff;
    // SAFETY: the distributor named by the device tree; registers of SPI
    // `intid` only (read-modify-write of the shared group and priority
    // words, done by one vCPU while setting up).
    unsafe {
        let group = gicd + GICD_IGROUPR + word;
        mmio::write32(group, mmio::read32(group) | bit);
        let priority = gicd + GICD_IPRIORITYR + (n & !3);
        let value = mmio::read32(priority) & !(0xff << shift) | PRIORITY << shift;
        mmio::write32(priority, value);
        // IROUTER in two 32-bit halves (both access sizes are allowed).
        let router = gicd + GICD_IROUTER + 8 * n;
        mmio::write32(router, affinity as u32);
        mmio::write32(router + 4, (affinity >> 32) as u32);
        mmio::write32(gicd + GICD_ISENABLER + word, bit);
    }
}

/// Disables interrupt `intid`: an SGI/PPI on the running vCPU, or an SPI.
pub fn disable(intid: u32) {
    if intid >= 32 {
        if let (Some(gicd), true) = (platform().gicd, intid < 1020) {
            let n = intid as usize;
            // SAFETY: the distributor named by the device tree.
            unsafe {
                mmio::write32(gicd + GICD_ICENABLER + 4 * (n / 32), 1 << (n % 32));
                wait_clear(gicd + GICD_CTLR, CTLR_RWP);
            }
        }
        return;
    }
    if let Some(rd) = redistributor() {
        // SAFETY: this vCPU's redistributor.
        unsafe {
            mmio::write32(rd + GICR_ICENABLER0, 1 << intid);
            wait_clear(rd + GICR_CTLR, GICR_CTLR_RWP);
        }
    }
}

/// Sets the handler of interrupt `intid` (below 128; shared by all vCPUs).
/// It runs with IRQs masked, after the acknowledge and before the end of
/// interrupt.
pub fn set_handler(intid: u32, handler: fn(u32)) {
    if let Some(slot) = HANDLERS.get(intid as usize) {
        slot.store(handler as usize, Ordering::Release);
    }
}

/// Sends SGI `intid` (0..15) to the vCPU with affinity `mpidr`.
pub fn send_sgi(intid: u32, mpidr: u64) {
    let aff0 = mpidr & 0xff;
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let value = (aff3 << 48)
        | ((aff0 >> 4) << 44) // RS: which group of 16 Aff0 values
        | (aff2 << 32)
        | (u64::from(intid & 0xf) << 24)
        | (aff1 << 16)
        | (1 << (aff0 & 0xf));
    // SAFETY: generates an SGI; the barrier orders it after earlier writes.
    unsafe { asm!("dsb ishst", "msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack)) };
}

/// Acknowledges, dispatches and ends one interrupt (IRQ vector).
pub(super) fn handle_irq() {
    let iar: u64;
    // SAFETY: acknowledging the highest priority pending group 1 interrupt.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nostack)) };
    let intid = (iar & 0xff_ffff) as u32;
    if (1020..1024).contains(&intid) {
        return; // spurious
    }
    let handler = HANDLERS
        .get(intid as usize)
        .map_or(0, |h| h.load(Ordering::Acquire));
    if handler == 0 {
        crate::println!(
            "{}: unexpected irq intid={} on cpu{}",
            super::name(),
            intid,
            cpu::index()
        );
        disable(intid);
    } else {
        // SAFETY: only `set_handler` stores into HANDLERS, always a `fn(u32)`.
        let handler: fn(u32) = unsafe { core::mem::transmute::<usize, fn(u32)>(handler) };
        handler(intid);
    }
    // SAFETY: priority drop and deactivation of the acknowledged interrupt.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) iar, options(nostack)) };
}
