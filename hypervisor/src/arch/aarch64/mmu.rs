//! The EL2 stage-1 translation (identity map of RAM and devices) and the
//! table storage shared with stage 2.

use super::cpu::isb;
use crate::arch::registers as values;
use crate::memory::pagetable::{
    Attributes, INPUT_BITS, MapError, PageTable, Regime, Table, TableArena,
};
use crate::memory::ranges::Ranges;
use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tock_registers::interfaces::{Readable, Writeable};

/// Enough for the EL2 map and stage-2 maps of a handful of partitions with
/// 4 KiB device pages; construction fails cleanly if it runs out.
const TABLES: usize = 256;

#[unsafe(link_section = ".bss.pagetables")]
static mut STORAGE: [Table; TABLES] = [Table::EMPTY; TABLES];
static TAKEN: AtomicBool = AtomicBool::new(false);
static EL2_ROOT: AtomicU64 = AtomicU64::new(0);
/// The RAM the EL2 map maps as normal memory, once it is built.
static RAM: spin::Once<Ranges> = spin::Once::new();

/// The table arena; handed out exactly once (to the boot code, which then
/// keeps it behind a lock).
pub fn take_arena() -> TableArena<'static> {
    assert!(
        !TAKEN.swap(true, Ordering::AcqRel),
        "table arena taken twice"
    );
    // SAFETY: the flag above guarantees this is the only reference ever made.
    let storage = &raw mut STORAGE;
    let tables: &'static mut [Table; TABLES] = unsafe { &mut *storage };
    let base = tables.as_ptr() as u64;
    TableArena::new(tables, base)
}

/// Builds the identity map: RAM as normal memory, everything else in the
/// 39-bit physical space as device memory (never executable).
pub fn build_el2_map(arena: &mut TableArena, ram: &Ranges) -> Result<(), MapError> {
    let pt = PageTable::new(arena, Regime::El2)?;
    for r in ram.iter() {
        pt.map(arena, r.base, r.base, r.size, Attributes::RAM)?;
    }
    for gap in ram.gaps(1 << INPUT_BITS) {
        pt.map(arena, gap.base, gap.base, gap.size, Attributes::DEVICE)?;
    }
    EL2_ROOT.store(pt.root_pa(arena), Ordering::Release);
    RAM.call_once(|| {
        let mut copy = Ranges::default();
        for r in ram.iter() {
            copy.insert(*r);
        }
        copy
    });
    Ok(())
}

/// Whether `base..base + len` is device memory to EL2: inside the
/// identity map's device part (below 2^39, no byte of it RAM). Before the
/// map is built anything is: the MMU is off, so every data access is
/// Device-nGnRnE (the boot core's early UART).
pub(super) fn is_device(base: u64, len: u64) -> bool {
    let Some(end) = base.checked_add(len) else {
        return false;
    };
    match RAM.get() {
        None => true,
        Some(ram) => {
            end <= 1 << INPUT_BITS && !ram.iter().any(|r| r.base < end && base < r.base + r.size)
        }
    }
}

/// Turns on the EL2 MMU with the map built by `build_el2_map`; every core
/// calls this once.
pub fn enable() {
    let root = EL2_ROOT.load(Ordering::Acquire);
    MAIR_EL2.write(values::mair_el2());
    // Output addresses up to 40 bits, or fewer if that is all there is.
    let pa_range = ID_AA64MMFR0_EL1
        .read(ID_AA64MMFR0_EL1::PARange)
        .min(ID_AA64MMFR0_EL1::PARange::Value::Bits_40 as u64);
    TCR_EL2.write(values::tcr_el2(pa_range));
    // aarch64-cpu's `msr` is `nomem`, so the compiler may sink the table
    // writes below it, but not past the TLBI asm, whose `dsb sy` completes
    // them before the MMU goes on (with the MMU off, nothing walks them).
    TTBR0_EL2.set(root);
    isb();
    // SAFETY: drop stale translations before the MMU goes on.
    unsafe { core::arch::asm!("tlbi alle2", "dsb sy", "isb", options(nostack)) };
    SCTLR_EL2.write(values::sctlr_el2());
    isb();
}
