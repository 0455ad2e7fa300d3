//! The EL2 stage-1 translation (identity map of RAM and devices) and the
//! table storage shared with stage 2.

use super::cpu::{isb, read_sysreg, write_sysreg};
use crate::memory::pagetable::{
    Attributes, INPUT_BITS, MapError, PageTable, Regime, Table, TableArena,
};
use crate::memory::ranges::Ranges;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Enough for the EL2 map and stage-2 maps of a handful of partitions with
/// 4 KiB device pages; construction fails cleanly if it runs out.
const TABLES: usize = 256;

#[unsafe(link_section = ".bss.pagetables")]
static mut STORAGE: [Table; TABLES] = [Table::EMPTY; TABLES];
static TAKEN: AtomicBool = AtomicBool::new(false);
static EL2_ROOT: AtomicU64 = AtomicU64::new(0);

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
    Ok(())
}

/// Turns on the EL2 MMU with the map built by `build_el2_map`; every core
/// calls this once.
pub fn enable() {
    let root = EL2_ROOT.load(Ordering::Acquire);
    // MAIR: index 0 normal write-back read/write-allocate, index 1 device nGnRE.
    write_sysreg!("mair_el2", 0x04ff);
    let pa_range = (read_sysreg!("id_aa64mmfr0_el1") & 0xf).min(0b010);
    // T0SZ = 25 (39 bits), inner/outer write-back, inner shareable, 4 KiB granule.
    let tcr =
        (1 << 31) | (1 << 23) | (pa_range << 16) | (0b11 << 12) | (0b01 << 10) | (0b01 << 8) | 25;
    write_sysreg!("tcr_el2", tcr);
    write_sysreg!("ttbr0_el2", root);
    isb();
    // SAFETY: drop stale translations before the MMU goes on.
    unsafe { core::arch::asm!("tlbi alle2", "dsb sy", "isb", options(nostack)) };
    // RES1 bits, plus M (MMU), C (data cache), SA (stack alignment), I (icache).
    let sctlr = 0x30c5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);
    write_sysreg!("sctlr_el2", sctlr);
    isb();
}
