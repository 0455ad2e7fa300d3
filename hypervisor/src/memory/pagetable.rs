//! Translation-table construction for the EL2 stage-1 map and for each
//! partition's stage-2 map.
//!
//! Both regimes use the 4 KiB granule with a 39-bit input address space,
//! so a walk starts at level 1 (1 GiB entries), then level 2 (2 MiB) and
//! level 3 (4 KiB pages). Block descriptors are used wherever the virtual
//! address, physical address and remaining size are aligned to a block, so
//! a 2 MiB-aligned partition gets 2 MiB (or 1 GiB) blocks and far fewer TLB
//! entries.
//!
//! Tables live in an arena of 4 KiB tables whose physical base address is
//! known. This keeps construction in safe, host-testable Rust: a table's
//! "pointer" is an index into the arena, and its physical address is
//! `base_pa + index * 4096` (the hypervisor identity-maps its memory, so the
//! arena's virtual and physical addresses coincide at EL2).

pub const ENTRIES: usize = 512;
pub const PAGE_SIZE: u64 = 4096;
pub const INPUT_BITS: u32 = 39;
const START_LEVEL: usize = 1;

/// One translation table: 512 descriptors, 4 KiB aligned in memory.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct Table(pub [u64; ENTRIES]);

impl Table {
    pub const EMPTY: Table = Table([0; ENTRIES]);
}

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ACCESS_FLAG: u64 = 1 << 10;
const INNER_SHAREABLE: u64 = 0b11 << 8;
const OUTPUT_MASK: u64 = 0x0000_ffff_ffff_f000;
const XN: u64 = 1 << 54;

/// Which translation regime descriptors are encoded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// EL2 stage 1 (non-VHE). Attribute indices refer to MAIR_EL2 as set by
    /// the hypervisor: index 0 = normal write-back, index 1 = device nGnRE.
    El2,
    /// Stage 2 (guest IPA to host PA).
    Stage2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemType {
    Normal,
    Device,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub mem: MemType,
    pub writable: bool,
    pub executable: bool,
}

impl Attributes {
    pub const RAM: Attributes = Attributes {
        mem: MemType::Normal,
        writable: true,
        executable: true,
    };
    pub const DEVICE: Attributes = Attributes {
        mem: MemType::Device,
        writable: true,
        executable: false,
    };

    fn leaf_bits(self, regime: Regime) -> u64 {
        let mut bits = VALID | ACCESS_FLAG;
        if self.mem == MemType::Normal {
            bits |= INNER_SHAREABLE;
        }
        if !self.executable {
            bits |= XN;
        }
        match regime {
            Regime::El2 => {
                let attr_index = match self.mem {
                    MemType::Normal => 0,
                    MemType::Device => 1,
                };
                bits |= attr_index << 2;
                if !self.writable {
                    bits |= 1 << 7; // AP[2]: read-only
                }
            }
            Regime::Stage2 => {
                let mem_attr = match self.mem {
                    MemType::Normal => 0b1111, // outer and inner write-back cacheable
                    MemType::Device => 0b0001, // device nGnRE
                };
                bits |= mem_attr << 2;
                let s2ap = if self.writable { 0b11 } else { 0b01 };
                bits |= s2ap << 6;
            }
        }
        bits
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not a multiple of 4 KiB.
    Misaligned,
    /// Range extends beyond the 39-bit input address space.
    OutOfRange,
    /// Part of the range is already mapped.
    Overlap { va: u64 },
    /// The table arena is exhausted.
    OutOfTables,
}

/// A pool of tables with a known physical base address.
pub struct TableArena<'a> {
    tables: &'a mut [Table],
    base_pa: u64,
    used: usize,
}

impl<'a> TableArena<'a> {
    pub fn new(tables: &'a mut [Table], base_pa: u64) -> Self {
        Self {
            tables,
            base_pa,
            used: 0,
        }
    }

    pub fn tables_used(&self) -> usize {
        self.used
    }

    fn alloc(&mut self) -> Result<usize, MapError> {
        let index = self.used;
        let table = self.tables.get_mut(index).ok_or(MapError::OutOfTables)?;
        *table = Table::EMPTY;
        self.used += 1;
        Ok(index)
    }

    fn pa_of(&self, index: usize) -> u64 {
        self.base_pa + index as u64 * PAGE_SIZE
    }

    fn index_of(&self, pa: u64) -> usize {
        ((pa - self.base_pa) / PAGE_SIZE) as usize
    }
}

fn shift(level: usize) -> u32 {
    12 + 9 * (3 - level as u32)
}

/// A translation table tree rooted at a level-1 table in an arena.
#[derive(Clone, Copy, Debug)]
pub struct PageTable {
    root: usize,
    regime: Regime,
}

impl PageTable {
    pub fn new(arena: &mut TableArena, regime: Regime) -> Result<Self, MapError> {
        Ok(Self {
            root: arena.alloc()?,
            regime,
        })
    }

    /// Physical address to program into TTBR0_EL2 or VTTBR_EL2.
    pub fn root_pa(&self, arena: &TableArena) -> u64 {
        arena.pa_of(self.root)
    }

    /// Maps `size` bytes at input address `va` to output address `pa`.
    pub fn map(
        &self,
        arena: &mut TableArena,
        va: u64,
        pa: u64,
        size: u64,
        attrs: Attributes,
    ) -> Result<(), MapError> {
        if !(va | pa | size).is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned);
        }
        let end = va.checked_add(size).ok_or(MapError::OutOfRange)?;
        if end > 1 << INPUT_BITS || pa.checked_add(size).is_none() {
            return Err(MapError::OutOfRange);
        }
        let leaf = attrs.leaf_bits(self.regime);
        let (mut va, mut pa, mut remaining) = (va, pa, size);
        while remaining > 0 {
            let step = self.map_one(arena, va, pa, remaining, leaf)?;
            va += step;
            pa += step;
            remaining -= step;
        }
        Ok(())
    }

    /// Installs the largest block or page that fits at `va`, returns its size.
    fn map_one(
        &self,
        arena: &mut TableArena,
        va: u64,
        pa: u64,
        remaining: u64,
        leaf: u64,
    ) -> Result<u64, MapError> {
        let mut table = self.root;
        for level in START_LEVEL..=3 {
            let block = 1u64 << shift(level);
            let index = ((va >> shift(level)) as usize) % ENTRIES;
            let entry = arena.tables[table].0[index];
            let fits = va.is_multiple_of(block) && pa.is_multiple_of(block) && remaining >= block;
            if level == 3 || (fits && entry == 0) {
                if entry != 0 {
                    return Err(MapError::Overlap { va });
                }
                let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
                arena.tables[table].0[index] = (pa & OUTPUT_MASK) | leaf | kind;
                return Ok(block);
            }
            table = match entry & (VALID | TABLE_OR_PAGE) {
                0 => {
                    let next = arena.alloc()?;
                    arena.tables[table].0[index] = arena.pa_of(next) | VALID | TABLE_OR_PAGE;
                    next
                }
                x if x == VALID | TABLE_OR_PAGE => arena.index_of(entry & OUTPUT_MASK),
                _ => return Err(MapError::Overlap { va }),
            };
        }
        unreachable!("level 3 always returns")
    }

    /// Walks the tables: the output address and leaf descriptor for `va`.
    pub fn translate(&self, arena: &TableArena, va: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in START_LEVEL..=3 {
            let index = ((va >> shift(level)) as usize) % ENTRIES;
            let entry = arena.tables[table].0[index];
            if entry & VALID == 0 {
                return None;
            }
            let is_table = entry & TABLE_OR_PAGE != 0 && level < 3;
            if !is_table {
                let offset = va & ((1u64 << shift(level)) - 1);
                return Some((
                    (entry & OUTPUT_MASK & !((1u64 << shift(level)) - 1)) + offset,
                    entry,
                ));
            }
            table = arena.index_of(entry & OUTPUT_MASK);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn arena(tables: &mut [Table]) -> TableArena<'_> {
        TableArena::new(tables, 0x4010_0000)
    }

    #[test]
    fn aligned_ranges_use_blocks() {
        let mut storage = vec![Table::EMPTY; 8];
        let mut a = arena(&mut storage);
        let pt = PageTable::new(&mut a, Regime::Stage2).unwrap();
        // 1 GiB + 2 MiB + 4 KiB, all aligned: one L1 block, one L2 block, one page.
        pt.map(
            &mut a,
            0x4000_0000,
            0x8000_0000,
            0x4000_0000,
            Attributes::RAM,
        )
        .unwrap();
        pt.map(
            &mut a,
            0x8000_0000,
            0x1_0000_0000,
            0x20_0000,
            Attributes::RAM,
        )
        .unwrap();
        pt.map(&mut a, 0x0900_0000, 0x0900_0000, 0x1000, Attributes::DEVICE)
            .unwrap();
        // root + L2 for the 2 MiB block + L2 and L3 for the page
        assert_eq!(a.tables_used(), 4);
        let (pa, desc) = pt.translate(&a, 0x4123_4567).unwrap();
        assert_eq!(pa, 0x8123_4567);
        assert_eq!(desc & 0b11, 0b01, "level-1 block");
        assert_eq!((desc >> 2) & 0xf, 0b1111, "normal memory");
        assert_eq!((desc >> 6) & 0b11, 0b11, "read-write");
        let (pa, desc) = pt.translate(&a, 0x8000_1000).unwrap();
        assert_eq!(pa, 0x1_0000_1000);
        assert_eq!(desc & 0b11, 0b01, "level-2 block");
        let (pa, desc) = pt.translate(&a, 0x0900_0ffc).unwrap();
        assert_eq!(pa, 0x0900_0ffc);
        assert_eq!(desc & 0b11, 0b11, "page");
        assert_eq!((desc >> 2) & 0xf, 0b0001, "device nGnRE");
        assert_ne!(desc & XN, 0, "devices are never executable");
        assert_eq!(pt.translate(&a, 0x0900_1000), None);
        assert_eq!(pt.translate(&a, 0x3fff_f000), None);
    }

    #[test]
    fn unaligned_physical_address_falls_back_to_pages() {
        let mut storage = vec![Table::EMPTY; 8];
        let mut a = arena(&mut storage);
        let pt = PageTable::new(&mut a, Regime::Stage2).unwrap();
        pt.map(&mut a, 0x4000_0000, 0x4800_1000, 0x20_0000, Attributes::RAM)
            .unwrap();
        let (pa, desc) = pt.translate(&a, 0x401f_f000).unwrap();
        assert_eq!(pa, 0x4820_0000);
        assert_eq!(desc & 0b11, 0b11, "4 KiB page");
    }

    #[test]
    fn overlaps_are_rejected() {
        let mut storage = vec![Table::EMPTY; 8];
        let mut a = arena(&mut storage);
        let pt = PageTable::new(&mut a, Regime::Stage2).unwrap();
        pt.map(&mut a, 0x4000_0000, 0x4000_0000, 0x20_0000, Attributes::RAM)
            .unwrap();
        assert_eq!(
            pt.map(&mut a, 0x4010_0000, 0x0, 0x1000, Attributes::RAM),
            Err(MapError::Overlap { va: 0x4010_0000 })
        );
        assert_eq!(
            pt.map(&mut a, 0x4000_0000, 0x0, 0x4000_0000, Attributes::RAM),
            Err(MapError::Overlap { va: 0x4000_0000 })
        );
    }

    #[test]
    fn bad_ranges_are_rejected() {
        let mut storage = vec![Table::EMPTY; 2];
        let mut a = arena(&mut storage);
        let pt = PageTable::new(&mut a, Regime::El2).unwrap();
        assert_eq!(
            pt.map(&mut a, 0x1234, 0, 0x1000, Attributes::RAM),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            pt.map(&mut a, 1 << 39, 0, 0x1000, Attributes::RAM),
            Err(MapError::OutOfRange)
        );
        // Three tables needed (root, L2, L3) but only two exist.
        assert_eq!(
            pt.map(&mut a, 0x1000, 0x1000, 0x1000, Attributes::RAM),
            Err(MapError::OutOfTables)
        );
    }

    #[test]
    fn el2_encoding_uses_mair_indices_and_ap() {
        let mut storage = vec![Table::EMPTY; 4];
        let mut a = arena(&mut storage);
        let pt = PageTable::new(&mut a, Regime::El2).unwrap();
        let ro = Attributes {
            writable: false,
            ..Attributes::RAM
        };
        pt.map(&mut a, 0x4000_0000, 0x4000_0000, 0x4000_0000, ro)
            .unwrap();
        pt.map(&mut a, 0, 0, 0x4000_0000, Attributes::DEVICE)
            .unwrap();
        let (_, ram) = pt.translate(&a, 0x4000_0000).unwrap();
        assert_eq!((ram >> 2) & 0b111, 0);
        assert_ne!(ram & (1 << 7), 0, "AP[2] read-only");
        assert_eq!(ram & XN, 0);
        let (_, dev) = pt.translate(&a, 0x0800_0000).unwrap();
        assert_eq!((dev >> 2) & 0b111, 1);
        assert_ne!(dev & XN, 0);
    }
}
