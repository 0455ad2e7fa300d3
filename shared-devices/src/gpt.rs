//! Reader for the GUID partition table (GPT) of the physical disk.
//!
//! At boot the hypervisor reads the first sectors of the disk it shares out
//! and turns the partition names in the config into sector ranges. The disk
//! is untrusted input: everything here checks what it reads, reports a
//! [`GptError`] for anything malformed and never panics. It allocates
//! nothing; the caller reads the sectors and passes them in.
//!
//! The steps, with 512-byte logical sectors:
//!
//! 1. LBA 0 must be a protective MBR: [`check_protective_mbr`].
//! 2. LBA 1 holds the primary header: [`Header::parse`] checks its
//!    signature, revision, size, CRC32 and geometry.
//! 3. The partition entry array starts at [`Header::entries_lba`] and is
//!    [`Header::entries_len`] bytes long. [`PartitionTable::new`] checks its
//!    CRC32 and that every used entry lies inside the usable area and
//!    overlaps no other, so that partitions handed to different guests can
//!    never alias each other.
//! 4. [`PartitionTable::find`] (or [`find_by_name`]) resolves a name to an
//!    [`Extent`], an inclusive range of sectors.
//!
//! Only the primary table is read. A disk whose primary table is damaged is
//! refused rather than recovered from its backup: repairing disks is the
//! job of host tools, not of the hypervisor.
//!
//! [`parse_all`] runs every step over an in-memory disk image; it is the
//! entry point for fuzzing.

use core::fmt;

/// Logical sector size the table is read with.
pub const SECTOR_SIZE: usize = 512;
/// The header's first eight bytes.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Header revision 1.0; any 1.x revision is accepted.
pub const REVISION_1_0: u32 = 0x0001_0000;
/// Size of the header fields this reader knows (revision 1.0).
pub const HEADER_SIZE: u32 = 92;
/// Smallest (and usual) size of a partition entry.
pub const MIN_ENTRY_SIZE: u32 = 128;
/// Largest partition entry size accepted.
pub const MAX_ENTRY_SIZE: u32 = 1024;
/// Most partition entries accepted (the usual count is 128). Bounds the work
/// of the overlap check, which is quadratic in the number of entries.
pub const MAX_ENTRIES: u32 = 1024;
/// Length of a partition name, in UTF-16 code units.
pub const NAME_UNITS: usize = 36;
/// MBR partition type of the protective partition.
pub const MBR_TYPE_PROTECTIVE: u8 = 0xee;

/// Why a disk's partition table was refused (or a name cannot be looked up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptError {
    /// LBA 0 does not end with the 0x55 0xAA boot signature.
    NoMbrSignature,
    /// No MBR partition record of type 0xEE starting at LBA 1.
    NotProtectiveMbr,
    /// LBA 1 does not start with `EFI PART`.
    BadSignature,
    /// A header revision other than 1.x.
    UnsupportedRevision(u32),
    /// Header size below 92 bytes or above a sector.
    BadHeaderSize(u32),
    /// The header's CRC32 does not match its contents.
    HeaderCrcMismatch { stored: u32, computed: u32 },
    /// The header at LBA 1 says it lives elsewhere (`my_lba`).
    NotPrimary(u64),
    /// The usable area is empty, or starts within the MBR or header.
    BadUsableRange { first: u64, last: u64 },
    /// The backup header's LBA is inside the header, entries or usable area.
    BadAlternateLba(u64),
    /// The entry size is not a power of two from 128 to 1024 bytes.
    BadEntrySize(u32),
    /// More than [`MAX_ENTRIES`] partition entries.
    TooManyEntries(u32),
    /// The entry array overlaps the MBR, the header or the usable area.
    BadEntryArray { lba: u64, sectors: u64 },
    /// Fewer entry bytes were given than the header announces.
    EntriesTruncated { needed: usize, given: usize },
    /// The entry array's CRC32 does not match.
    EntriesCrcMismatch { stored: u32, computed: u32 },
    /// A used entry ends before it starts or leaves the usable area.
    BadExtent { index: u32 },
    /// Two used entries share sectors.
    Overlap { first: u32, second: u32 },
    /// The name looked up belongs to more than one entry.
    DuplicateName { first: u32, second: u32 },
    /// The name looked up is empty or longer than 36 UTF-16 code units.
    InvalidName,
    /// The table reaches beyond the end of the disk.
    BeyondDisk { lba: u64, disk_sectors: u64 },
}

impl fmt::Display for GptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GptError::NoMbrSignature => write!(f, "LBA 0 has no MBR boot signature"),
            GptError::NotProtectiveMbr => write!(f, "LBA 0 is not a protective MBR"),
            GptError::BadSignature => write!(f, "LBA 1 has no GPT header signature"),
            GptError::UnsupportedRevision(r) => write!(f, "unsupported GPT revision {r:#010x}"),
            GptError::BadHeaderSize(s) => write!(f, "bad GPT header size {s}"),
            GptError::HeaderCrcMismatch { stored, computed } => write!(
                f,
                "GPT header CRC32 is {stored:#010x}, its contents give {computed:#010x}"
            ),
            GptError::NotPrimary(lba) => write!(f, "GPT header at LBA 1 says it is at LBA {lba}"),
            GptError::BadUsableRange { first, last } => {
                write!(f, "bad GPT usable range {first}..={last}")
            }
            GptError::BadAlternateLba(lba) => write!(f, "bad backup GPT header LBA {lba}"),
            GptError::BadEntrySize(s) => write!(f, "bad GPT entry size {s}"),
            GptError::TooManyEntries(n) => {
                write!(f, "{n} GPT entries (at most {MAX_ENTRIES} accepted)")
            }
            GptError::BadEntryArray { lba, sectors } => write!(
                f,
                "GPT entry array at LBA {lba} ({sectors} sectors) overlaps the header or the usable area"
            ),
            GptError::EntriesTruncated { needed, given } => {
                write!(f, "GPT entry array needs {needed} bytes, {given} given")
            }
            GptError::EntriesCrcMismatch { stored, computed } => write!(
                f,
                "GPT entry array CRC32 is {stored:#010x}, its contents give {computed:#010x}"
            ),
            GptError::BadExtent { index } => {
                write!(f, "GPT entry {index} is outside the usable area")
            }
            GptError::Overlap { first, second } => {
                write!(f, "GPT entries {first} and {second} overlap")
            }
            GptError::DuplicateName { first, second } => {
                write!(f, "GPT entries {first} and {second} have the same name")
            }
            GptError::InvalidName => write!(f, "not a GPT partition name"),
            GptError::BeyondDisk { lba, disk_sectors } => write!(
                f,
                "GPT reaches LBA {lba}, beyond the disk's {disk_sectors} sectors"
            ),
        }
    }
}

/// CRC-32 as GPT uses it (IEEE 802.3: polynomial 0x04C11DB7 reflected,
/// initial value and final XOR all ones).
#[derive(Clone, Copy, Debug)]
pub struct Crc32 {
    state: u32,
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    pub const fn new() -> Self {
        Crc32 { state: !0 }
    }

    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.state = CRC_TABLE[usize::from((self.state as u8) ^ b)] ^ (self.state >> 8);
        }
        self
    }

    pub fn finish(&self) -> u32 {
        !self.state
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().update(bytes).finish()
}

/// A GUID in its on-disk byte order: the first three fields little-endian,
/// the last eight bytes as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const ZERO: Guid = Guid([0; 16]);
    /// Partition type "Linux filesystem data",
    /// 0FC63DAF-8483-4772-8E79-3D69D8477DE4.
    pub const LINUX_FILESYSTEM: Guid = Guid::from_u128(0x0fc6_3daf_8483_4772_8e79_3d69_d847_7de4);

    /// The GUID written `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, as one
    /// big-endian number.
    pub const fn from_u128(value: u128) -> Guid {
        let be = value.to_be_bytes();
        Guid([
            be[3], be[2], be[1], be[0], be[5], be[4], be[7], be[6], be[8], be[9], be[10], be[11],
            be[12], be[13], be[14], be[15],
        ])
    }

    /// The inverse of [`Guid::from_u128`].
    pub const fn to_u128(self) -> u128 {
        let d = self.0;
        u128::from_be_bytes([
            d[3], d[2], d[1], d[0], d[5], d[4], d[7], d[6], d[8], d[9], d[10], d[11], d[12], d[13],
            d[14], d[15],
        ])
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.to_u128();
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

fn u16_at<const N: usize>(bytes: &[u8; N], at: usize) -> u16 {
    let mut w = [0; 2];
    if let Some(s) = bytes.get(at..at + 2) {
        w.copy_from_slice(s);
    }
    u16::from_le_bytes(w)
}

fn u32_at<const N: usize>(bytes: &[u8; N], at: usize) -> u32 {
    let mut w = [0; 4];
    if let Some(s) = bytes.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_le_bytes(w)
}

fn u64_at<const N: usize>(bytes: &[u8; N], at: usize) -> u64 {
    let mut w = [0; 8];
    if let Some(s) = bytes.get(at..at + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

fn guid_at<const N: usize>(bytes: &[u8; N], at: usize) -> Guid {
    let mut g = [0; 16];
    if let Some(s) = bytes.get(at..at + 16) {
        g.copy_from_slice(s);
    }
    Guid(g)
}

/// Sectors needed for `bytes` bytes.
fn sectors_for(bytes: u64) -> u64 {
    bytes.div_ceil(SECTOR_SIZE as u64)
}

/// Checks that `lba0` (the disk's first sector) is a protective MBR: the
/// boot signature, and a partition record of type 0xEE starting at LBA 1
/// (a hybrid MBR, with other records beside it, passes too).
pub fn check_protective_mbr(lba0: &[u8; SECTOR_SIZE]) -> Result<(), GptError> {
    if lba0[510] != 0x55 || lba0[511] != 0xaa {
        return Err(GptError::NoMbrSignature);
    }
    let protective = (0..4).any(|i| {
        let record = 446 + 16 * i;
        lba0[record + 4] == MBR_TYPE_PROTECTIVE && u32_at(lba0, record + 8) == 1
    });
    if protective {
        Ok(())
    } else {
        Err(GptError::NotProtectiveMbr)
    }
}

/// A checked primary GPT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub revision: u32,
    pub header_size: u32,
    /// Always 1: only the primary header is accepted.
    pub my_lba: u64,
    /// Where the backup header is (not read).
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    /// Inclusive.
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entries_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

impl Header {
    /// Parses and checks the header in `lba1`, the disk's second sector.
    pub fn parse(lba1: &[u8; SECTOR_SIZE]) -> Result<Header, GptError> {
        if lba1[..8] != SIGNATURE {
            return Err(GptError::BadSignature);
        }
        let revision = u32_at(lba1, 8);
        if revision >> 16 != REVISION_1_0 >> 16 {
            return Err(GptError::UnsupportedRevision(revision));
        }
        let header_size = u32_at(lba1, 12);
        if !(HEADER_SIZE..=SECTOR_SIZE as u32).contains(&header_size) {
            return Err(GptError::BadHeaderSize(header_size));
        }
        let stored = u32_at(lba1, 16);
        let computed = Crc32::new()
            .update(&lba1[..16])
            .update(&[0; 4])
            .update(lba1.get(20..header_size as usize).unwrap_or(&[]))
            .finish();
        if stored != computed {
            return Err(GptError::HeaderCrcMismatch { stored, computed });
        }
        let header = Header {
            revision,
            header_size,
            my_lba: u64_at(lba1, 24),
            alternate_lba: u64_at(lba1, 32),
            first_usable_lba: u64_at(lba1, 40),
            last_usable_lba: u64_at(lba1, 48),
            disk_guid: guid_at(lba1, 56),
            entries_lba: u64_at(lba1, 72),
            entry_count: u32_at(lba1, 80),
            entry_size: u32_at(lba1, 84),
            entries_crc32: u32_at(lba1, 88),
        };
        header.check_geometry()?;
        Ok(header)
    }

    fn check_geometry(&self) -> Result<(), GptError> {
        if self.my_lba != 1 {
            return Err(GptError::NotPrimary(self.my_lba));
        }
        let (first, last) = (self.first_usable_lba, self.last_usable_lba);
        // `last` below u64::MAX keeps every inclusive range's length in u64.
        if first < 2 || first > last || last == u64::MAX {
            return Err(GptError::BadUsableRange { first, last });
        }
        let size = self.entry_size;
        if !size.is_power_of_two() || !(MIN_ENTRY_SIZE..=MAX_ENTRY_SIZE).contains(&size) {
            return Err(GptError::BadEntrySize(size));
        }
        if self.entry_count > MAX_ENTRIES {
            return Err(GptError::TooManyEntries(self.entry_count));
        }
        let (lba, sectors) = (self.entries_lba, self.entries_sectors());
        let array_fits = lba >= 2
            && lba.checked_add(sectors).is_some_and(|end| {
                // Before the usable area, or after it.
                end <= first || lba > last
            });
        if !array_fits {
            return Err(GptError::BadEntryArray { lba, sectors });
        }
        let alternate = self.alternate_lba;
        if alternate <= last || (alternate >= lba && alternate - lba < sectors) {
            return Err(GptError::BadAlternateLba(alternate));
        }
        Ok(())
    }

    /// First sector of the partition entry array.
    pub fn entries_lba(&self) -> u64 {
        self.entries_lba
    }

    /// Length of the partition entry array in bytes (at most
    /// [`MAX_ENTRIES`] × [`MAX_ENTRY_SIZE`]).
    pub fn entries_len(&self) -> usize {
        self.entry_count as usize * self.entry_size as usize
    }

    /// Sectors the partition entry array occupies.
    pub fn entries_sectors(&self) -> u64 {
        sectors_for(u64::from(self.entry_count) * u64::from(self.entry_size))
    }

    /// Checks that everything the header names fits on a disk of
    /// `disk_sectors` sectors.
    pub fn check_disk_size(&self, disk_sectors: u64) -> Result<(), GptError> {
        let entries_end = self.entries_lba.saturating_add(self.entries_sectors());
        let highest = [
            self.alternate_lba,
            self.last_usable_lba,
            entries_end.saturating_sub(1),
        ];
        match highest.into_iter().find(|&lba| lba >= disk_sectors) {
            Some(lba) => Err(GptError::BeyondDisk { lba, disk_sectors }),
            None => Ok(()),
        }
    }
}

/// An inclusive range of sectors, `first_lba..=last_lba`, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    first_lba: u64,
    last_lba: u64,
}

impl Extent {
    /// `None` unless `first_lba <= last_lba < u64::MAX`.
    pub fn new(first_lba: u64, last_lba: u64) -> Option<Extent> {
        (first_lba <= last_lba && last_lba < u64::MAX).then_some(Extent {
            first_lba,
            last_lba,
        })
    }

    pub fn first_lba(&self) -> u64 {
        self.first_lba
    }

    /// Inclusive.
    pub fn last_lba(&self) -> u64 {
        self.last_lba
    }

    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    /// Length in bytes (saturating).
    pub fn bytes(&self) -> u64 {
        self.sectors().saturating_mul(SECTOR_SIZE as u64)
    }

    pub fn contains(&self, lba: u64) -> bool {
        (self.first_lba..=self.last_lba).contains(&lba)
    }

    fn overlaps(&self, other: &Extent) -> bool {
        self.first_lba <= other.last_lba && other.first_lba <= self.last_lba
    }

    /// The disk LBA of sector `sector` of this extent, if the `count`
    /// sectors from there all lie inside it: how a request against a
    /// partition is bounds-checked and placed on the disk.
    pub fn to_disk_lba(&self, sector: u64, count: u64) -> Option<u64> {
        let end = sector.checked_add(count)?;
        (end <= self.sectors()).then(|| self.first_lba + sector)
    }
}

/// One partition entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Index in the entry array.
    pub index: u32,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    /// As stored; checked to be a valid extent for used entries in a
    /// [`PartitionTable`].
    pub first_lba: u64,
    pub last_lba: u64,
    pub attributes: u64,
    /// UTF-16LE, padded with zeros.
    pub name: [u16; NAME_UNITS],
}

impl Entry {
    fn parse(index: u32, bytes: &[u8; MIN_ENTRY_SIZE as usize]) -> Entry {
        let mut name = [0u16; NAME_UNITS];
        for (i, unit) in name.iter_mut().enumerate() {
            *unit = u16_at(bytes, 56 + 2 * i);
        }
        Entry {
            index,
            type_guid: guid_at(bytes, 0),
            unique_guid: guid_at(bytes, 16),
            first_lba: u64_at(bytes, 32),
            last_lba: u64_at(bytes, 40),
            attributes: u64_at(bytes, 48),
            name,
        }
    }

    /// An entry with a zero type GUID is unused.
    pub fn is_used(&self) -> bool {
        !self.type_guid.is_zero()
    }

    /// The name's UTF-16 code units, up to the first zero.
    pub fn name_units(&self) -> impl Iterator<Item = u16> + '_ {
        self.name.iter().copied().take_while(|&u| u != 0)
    }

    /// The name, with U+FFFD for unpaired surrogates.
    pub fn name_chars(&self) -> impl Iterator<Item = char> + '_ {
        char::decode_utf16(self.name_units()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    /// Whether the name is exactly `name`.
    pub fn name_is(&self, name: &str) -> bool {
        self.name_units().eq(name.encode_utf16())
    }

    /// The sectors, if `first_lba..=last_lba` is a valid range.
    pub fn extent(&self) -> Option<Extent> {
        Extent::new(self.first_lba, self.last_lba)
    }
}

/// A partition entry array whose CRC and entries have been checked against
/// its header.
#[derive(Clone, Copy, Debug)]
pub struct PartitionTable<'a> {
    entries: &'a [u8],
    entry_size: usize,
}

impl<'a> PartitionTable<'a> {
    /// Checks `entries`, the bytes read from [`Header::entries_lba`] on
    /// (at least [`Header::entries_len`] of them; more are ignored): the
    /// CRC32, and that every used entry is a non-empty range inside the
    /// usable area that overlaps no other used entry.
    pub fn new(header: &Header, entries: &'a [u8]) -> Result<PartitionTable<'a>, GptError> {
        let needed = header.entries_len();
        let Some(entries) = entries.get(..needed) else {
            return Err(GptError::EntriesTruncated {
                needed,
                given: entries.len(),
            });
        };
        let computed = crc32(entries);
        if computed != header.entries_crc32 {
            return Err(GptError::EntriesCrcMismatch {
                stored: header.entries_crc32,
                computed,
            });
        }
        let table = PartitionTable {
            entries,
            entry_size: header.entry_size as usize,
        };
        let usable = Extent {
            first_lba: header.first_usable_lba,
            last_lba: header.last_usable_lba,
        };
        for entry in table.iter() {
            let inside = entry
                .extent()
                .is_some_and(|e| usable.contains(e.first_lba) && usable.contains(e.last_lba));
            if !inside {
                return Err(GptError::BadExtent { index: entry.index });
            }
        }
        // Quadratic, over the sector ranges only (at most MAX_ENTRIES).
        for (n, (a, ea)) in table.extents().enumerate() {
            if let Some((b, _)) = table.extents().skip(n + 1).find(|(_, eb)| ea.overlaps(eb)) {
                return Err(GptError::Overlap {
                    first: a,
                    second: b,
                });
            }
        }
        Ok(table)
    }

    /// Each entry's index and bytes (its first 128).
    fn raw(&self) -> impl Iterator<Item = (u32, &'a [u8; MIN_ENTRY_SIZE as usize])> + 'a {
        let size = self.entry_size.max(MIN_ENTRY_SIZE as usize);
        self.entries
            .chunks_exact(size)
            .enumerate()
            .filter_map(|(i, chunk)| {
                let bytes = chunk.get(..MIN_ENTRY_SIZE as usize)?.try_into().ok()?;
                Some((u32::try_from(i).ok()?, bytes))
            })
    }

    /// Index and sectors of each used entry (whose extents are valid once
    /// the table is checked).
    fn extents(&self) -> impl Iterator<Item = (u32, Extent)> + 'a {
        self.raw().filter_map(|(i, bytes)| {
            if guid_at(bytes, 0).is_zero() {
                return None;
            }
            Some((i, Extent::new(u64_at(bytes, 32), u64_at(bytes, 40))?))
        })
    }

    /// The used entries, in array order.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + 'a {
        self.raw()
            .map(|(i, bytes)| Entry::parse(i, bytes))
            .filter(Entry::is_used)
    }

    /// The used entry named `name`: `None` if there is none, an error if
    /// there are several or `name` cannot be a GPT name (empty, or longer
    /// than 36 UTF-16 code units).
    pub fn find(&self, name: &str) -> Result<Option<Entry>, GptError> {
        if name.is_empty() || name.encode_utf16().count() > NAME_UNITS {
            return Err(GptError::InvalidName);
        }
        let mut found: Option<Entry> = None;
        for entry in self.iter().filter(|e| e.name_is(name)) {
            if let Some(first) = found {
                return Err(GptError::DuplicateName {
                    first: first.index,
                    second: entry.index,
                });
            }
            found = Some(entry);
        }
        Ok(found)
    }
}

/// The sectors of the partition named `name`, from the entry array read at
/// [`Header::entries_lba`]: checks the array as [`PartitionTable::new`]
/// does, then looks the name up as [`PartitionTable::find`] does.
pub fn find_by_name(
    header: &Header,
    entries: &[u8],
    name: &str,
) -> Result<Option<Extent>, GptError> {
    let table = PartitionTable::new(header, entries)?;
    Ok(table.find(name)?.and_then(|e| e.extent()))
}

/// Reads the whole table of an in-memory disk image (`disk` starts at
/// LBA 0; its length is the disk size) and returns the number of used
/// partitions. Never panics, whatever the bytes: the fuzzing entry point.
pub fn parse_all(disk: &[u8]) -> Result<usize, GptError> {
    let sector = |lba: usize| -> Option<&[u8; SECTOR_SIZE]> {
        disk.get(lba * SECTOR_SIZE..(lba + 1) * SECTOR_SIZE)?
            .try_into()
            .ok()
    };
    let lba0 = sector(0).ok_or(GptError::NoMbrSignature)?;
    check_protective_mbr(lba0)?;
    let header = Header::parse(sector(1).ok_or(GptError::BadSignature)?)?;
    let disk_sectors = (disk.len() / SECTOR_SIZE) as u64;
    header.check_disk_size(disk_sectors)?;
    let needed = header.entries_len();
    let entries = usize::try_from(header.entries_lba)
        .ok()
        .and_then(|lba| lba.checked_mul(SECTOR_SIZE))
        .and_then(|start| disk.get(start..))
        .unwrap_or(&[]);
    let table = PartitionTable::new(&header, entries)?;
    let mut used = 0;
    for entry in table.iter() {
        used += 1;
        let _ = entry.name_chars().count();
    }
    if let Some(first) = table.iter().next() {
        // Look the first name up, as the hypervisor would.
        let mut name = [0u8; NAME_UNITS * 3];
        let mut len = 0;
        for c in first.name_chars() {
            let n = c.len_utf8();
            if let Some(slot) = name.get_mut(len..len + n) {
                c.encode_utf8(slot);
                len += n;
            }
        }
        if let Ok(name) = core::str::from_utf8(name.get(..len).unwrap_or(&[])) {
            let _ = find_by_name(&header, entries.get(..needed).unwrap_or(&[]), name);
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK_SECTORS: u64 = 256;
    const ENTRIES: u32 = 128;

    /// A partition: name, first and last LBA.
    type Part<'a> = (&'a str, u64, u64);

    fn put(disk: &mut [u8], at: usize, bytes: &[u8]) {
        disk[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn header_u32(disk: &[u8], field: usize) -> u32 {
        let at = SECTOR_SIZE + field;
        u32::from_le_bytes(disk[at..at + 4].try_into().unwrap())
    }

    /// Recomputes the entry array CRC, then the header CRC.
    fn seal(disk: &mut [u8]) {
        let lba = u64::from_le_bytes(disk[SECTOR_SIZE + 72..SECTOR_SIZE + 80].try_into().unwrap());
        let len = header_u32(disk, 80) as usize * header_u32(disk, 84) as usize;
        // Damaged headers may point anywhere: seal only what exists.
        let start = (lba as usize).saturating_mul(SECTOR_SIZE);
        if let Some(array) = disk.get(start..start.saturating_add(len)) {
            let crc = crc32(array);
            put(disk, SECTOR_SIZE + 88, &crc.to_le_bytes());
        }
        reseal_header(disk);
    }

    fn reseal_header(disk: &mut [u8]) {
        let size = (header_u32(disk, 12) as usize).min(SECTOR_SIZE);
        put(disk, SECTOR_SIZE + 16, &[0; 4]);
        let crc = crc32(&disk[SECTOR_SIZE..SECTOR_SIZE + size]);
        put(disk, SECTOR_SIZE + 16, &crc.to_le_bytes());
    }

    fn set_entry(disk: &mut [u8], index: usize, (name, first, last): Part) {
        let at = 2 * SECTOR_SIZE + index * MIN_ENTRY_SIZE as usize;
        put(disk, at, &Guid::LINUX_FILESYSTEM.0);
        put(disk, at + 16, &[index as u8 + 1; 16]);
        put(disk, at + 32, &first.to_le_bytes());
        put(disk, at + 40, &last.to_le_bytes());
        let mut units = [0u16; NAME_UNITS];
        for (slot, unit) in units.iter_mut().zip(name.encode_utf16()) {
            *slot = unit;
        }
        for (i, unit) in units.iter().enumerate() {
            put(disk, at + 56 + 2 * i, &unit.to_le_bytes());
        }
    }

    /// A 256-sector disk: protective MBR, primary header, 128 entries at
    /// LBA 2..=33, usable 34..=222, backup header claimed at 255.
    fn disk(parts: &[Part]) -> Vec<u8> {
        let mut disk = vec![0u8; DISK_SECTORS as usize * SECTOR_SIZE];
        // Protective MBR record 0: type 0xEE from LBA 1 over the rest.
        put(&mut disk, 446 + 4, &[MBR_TYPE_PROTECTIVE]);
        put(&mut disk, 446 + 8, &1u32.to_le_bytes());
        put(
            &mut disk,
            446 + 12,
            &(DISK_SECTORS as u32 - 1).to_le_bytes(),
        );
        put(&mut disk, 510, &[0x55, 0xaa]);
        let h = SECTOR_SIZE;
        put(&mut disk, h, &SIGNATURE);
        put(&mut disk, h + 8, &REVISION_1_0.to_le_bytes());
        put(&mut disk, h + 12, &HEADER_SIZE.to_le_bytes());
        put(&mut disk, h + 24, &1u64.to_le_bytes());
        put(&mut disk, h + 32, &(DISK_SECTORS - 1).to_le_bytes());
        put(&mut disk, h + 40, &34u64.to_le_bytes());
        put(&mut disk, h + 48, &(DISK_SECTORS - 34).to_le_bytes());
        put(&mut disk, h + 56, &[0x42; 16]);
        put(&mut disk, h + 72, &2u64.to_le_bytes());
        put(&mut disk, h + 80, &ENTRIES.to_le_bytes());
        put(&mut disk, h + 84, &MIN_ENTRY_SIZE.to_le_bytes());
        for (i, &part) in parts.iter().enumerate() {
            set_entry(&mut disk, i, part);
        }
        seal(&mut disk);
        disk
    }

    const PARTS: [Part; 3] = [("alpha", 34, 99), ("β-data", 100, 199), ("z", 222, 222)];

    fn lba(disk: &[u8], n: usize) -> &[u8; SECTOR_SIZE] {
        disk[n * SECTOR_SIZE..(n + 1) * SECTOR_SIZE]
            .try_into()
            .unwrap()
    }

    fn header(disk: &[u8]) -> Result<Header, GptError> {
        Header::parse(lba(disk, 1))
    }

    fn entries(disk: &[u8]) -> &[u8] {
        &disk[2 * SECTOR_SIZE..34 * SECTOR_SIZE]
    }

    fn find(disk: &[u8], name: &str) -> Result<Option<Extent>, GptError> {
        find_by_name(&header(disk)?, entries(disk), name)
    }

    /// The `gpt` fuzz target's seed (fuzz/seeds/gpt/, 16 sectors: it fits
    /// the fuzzer's 8 KiB inputs) is a valid table, so the fuzzer starts
    /// from one instead of having to guess two CRCs.
    #[test]
    fn fuzz_seed_is_a_valid_table() {
        let seed = include_bytes!("../fuzz/seeds/gpt/two-partitions.img");
        assert_eq!(parse_all(seed), Ok(2));
        let header = Header::parse(seed[SECTOR_SIZE..2 * SECTOR_SIZE].try_into().unwrap()).unwrap();
        let extent = find_by_name(&header, &seed[2 * SECTOR_SIZE..3 * SECTOR_SIZE], "ivi-data")
            .unwrap()
            .unwrap();
        assert_eq!((extent.first_lba(), extent.sectors()), (6, 8));
    }

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
        let streamed = Crc32::new().update(b"1234").update(b"56789").finish();
        assert_eq!(streamed, 0xcbf4_3926);
    }

    #[test]
    fn guid_byte_order_and_text() {
        let g = Guid::LINUX_FILESYSTEM;
        assert_eq!(
            g.0,
            [
                0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
                0x7d, 0xe4
            ]
        );
        assert_eq!(
            format!("{g}"),
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4".to_string()
        );
        assert_eq!(Guid::from_u128(g.to_u128()), g);
        assert!(Guid::ZERO.is_zero() && !g.is_zero());
    }

    #[test]
    fn reads_a_table() {
        let disk = disk(&PARTS);
        check_protective_mbr(lba(&disk, 0)).unwrap();
        let h = header(&disk).unwrap();
        assert_eq!(h.entries_lba(), 2);
        assert_eq!(h.entries_len(), 128 * 128);
        assert_eq!(h.entries_sectors(), 32);
        assert_eq!((h.first_usable_lba, h.last_usable_lba), (34, 222));
        assert_eq!(h.disk_guid, Guid([0x42; 16]));
        h.check_disk_size(DISK_SECTORS).unwrap();
        assert_eq!(
            h.check_disk_size(200),
            Err(GptError::BeyondDisk {
                lba: 255,
                disk_sectors: 200
            })
        );

        let table = PartitionTable::new(&h, entries(&disk)).unwrap();
        let names: Vec<String> = table.iter().map(|e| e.name_chars().collect()).collect();
        assert_eq!(names, ["alpha", "β-data", "z"]);
        let beta = table.find("β-data").unwrap().unwrap();
        assert_eq!(beta.index, 1);
        assert_eq!(beta.type_guid, Guid::LINUX_FILESYSTEM);
        assert_eq!(beta.unique_guid, Guid([2; 16]));

        let alpha = find(&disk, "alpha").unwrap().unwrap();
        assert_eq!((alpha.first_lba(), alpha.last_lba()), (34, 99));
        assert_eq!(alpha.sectors(), 66);
        assert_eq!(alpha.bytes(), 66 * 512);
        assert_eq!(find(&disk, "z").unwrap(), Extent::new(222, 222));
        assert_eq!(find(&disk, "alph").unwrap(), None);
        assert_eq!(find(&disk, "alphaa").unwrap(), None);
        assert_eq!(find(&disk, "ALPHA").unwrap(), None);
        // Extra bytes after the array are ignored.
        let h = header(&disk).unwrap();
        assert!(find_by_name(&h, &disk[2 * SECTOR_SIZE..], "z").is_ok());
        assert_eq!(parse_all(&disk), Ok(3));
    }

    #[test]
    fn a_name_may_fill_all_36_units() {
        let long = "abcdefghijklmnopqrstuvwxyz0123456789";
        let disk = disk(&[(long, 40, 41)]);
        assert_eq!(find(&disk, long).unwrap(), Extent::new(40, 41));
        assert_eq!(find(&disk, &long[..35]).unwrap(), None);
        assert_eq!(find(&disk, &format!("{long}x")), Err(GptError::InvalidName));
        assert_eq!(find(&disk, ""), Err(GptError::InvalidName));
    }

    #[test]
    fn extent_translation() {
        let e = Extent::new(100, 199).unwrap();
        assert_eq!(e.to_disk_lba(0, 100), Some(100));
        assert_eq!(e.to_disk_lba(99, 1), Some(199));
        assert_eq!(e.to_disk_lba(99, 2), None);
        assert_eq!(e.to_disk_lba(100, 0), Some(200));
        assert_eq!(e.to_disk_lba(101, 0), None);
        assert_eq!(e.to_disk_lba(u64::MAX, 2), None);
        assert!(e.contains(100) && e.contains(199) && !e.contains(200) && !e.contains(99));
        assert_eq!(Extent::new(5, 4), None);
        assert_eq!(Extent::new(0, u64::MAX), None);
    }

    #[test]
    fn refuses_a_bad_mbr() {
        let mut d = disk(&PARTS);
        d[510] = 0;
        assert_eq!(
            check_protective_mbr(lba(&d, 0)),
            Err(GptError::NoMbrSignature)
        );
        let mut d = disk(&PARTS);
        d[446 + 4] = 0x83;
        assert_eq!(
            check_protective_mbr(lba(&d, 0)),
            Err(GptError::NotProtectiveMbr)
        );
        assert_eq!(parse_all(&d), Err(GptError::NotProtectiveMbr));
        // A hybrid MBR: the protective record in slot 3.
        let mut d = disk(&PARTS);
        d.copy_within(446..462, 446 + 48);
        d[446 + 4] = 0x83;
        check_protective_mbr(lba(&d, 0)).unwrap();
        // 0xEE not starting at LBA 1.
        let mut d = disk(&PARTS);
        put(&mut d, 446 + 8, &2u32.to_le_bytes());
        assert_eq!(
            check_protective_mbr(lba(&d, 0)),
            Err(GptError::NotProtectiveMbr)
        );
    }

    /// `disk(&PARTS)` with header bytes at `field` replaced, then resealed.
    fn with_header(field: usize, bytes: &[u8]) -> Vec<u8> {
        let mut d = disk(&PARTS);
        put(&mut d, SECTOR_SIZE + field, bytes);
        seal(&mut d);
        d
    }

    #[test]
    fn refuses_a_bad_header() {
        let cases: [(usize, &[u8], GptError); 14] = [
            (0, b"EFI PARt", GptError::BadSignature),
            (
                8,
                &0x0002_0000u32.to_le_bytes(),
                GptError::UnsupportedRevision(0x0002_0000),
            ),
            (12, &91u32.to_le_bytes(), GptError::BadHeaderSize(91)),
            (12, &513u32.to_le_bytes(), GptError::BadHeaderSize(513)),
            (24, &2u64.to_le_bytes(), GptError::NotPrimary(2)),
            (
                40,
                &1u64.to_le_bytes(),
                GptError::BadUsableRange {
                    first: 1,
                    last: 222,
                },
            ),
            (
                48,
                &33u64.to_le_bytes(),
                GptError::BadUsableRange {
                    first: 34,
                    last: 33,
                },
            ),
            (
                48,
                &u64::MAX.to_le_bytes(),
                GptError::BadUsableRange {
                    first: 34,
                    last: u64::MAX,
                },
            ),
            (84, &64u32.to_le_bytes(), GptError::BadEntrySize(64)),
            (84, &192u32.to_le_bytes(), GptError::BadEntrySize(192)),
            (84, &2048u32.to_le_bytes(), GptError::BadEntrySize(2048)),
            (80, &1025u32.to_le_bytes(), GptError::TooManyEntries(1025)),
            (
                72,
                &3u64.to_le_bytes(),
                GptError::BadEntryArray {
                    lba: 3,
                    sectors: 32,
                },
            ),
            (32, &100u64.to_le_bytes(), GptError::BadAlternateLba(100)),
        ];
        for (field, bytes, expected) in cases {
            let d = with_header(field, bytes);
            assert_eq!(header(&d), Err(expected), "field {field}");
            assert_eq!(parse_all(&d), Err(expected), "field {field}");
        }
        // Entry array at LBA 1 (over the header) or at u64::MAX.
        for lba in [1, u64::MAX] {
            let d = with_header(72, &lba.to_le_bytes());
            assert!(matches!(header(&d), Err(GptError::BadEntryArray { .. })));
        }
        // Entry array after the usable area, backup header inside it.
        let mut d = with_header(72, &223u64.to_le_bytes());
        put(&mut d, SECTOR_SIZE + 32, &230u64.to_le_bytes());
        reseal_header(&mut d);
        assert_eq!(header(&d), Err(GptError::BadAlternateLba(230)));
        put(&mut d, SECTOR_SIZE + 32, &255u64.to_le_bytes());
        reseal_header(&mut d);
        assert_eq!(header(&d).unwrap().entries_lba(), 223);

        // A larger header with reserved bytes covered by the CRC.
        let d = with_header(12, &512u32.to_le_bytes());
        assert_eq!(header(&d).unwrap().header_size, 512);
        // Revision 1.x is fine.
        let d = with_header(8, &0x0001_0001u32.to_le_bytes());
        assert!(header(&d).is_ok());
    }

    #[test]
    fn refuses_a_corrupt_header() {
        let good = disk(&PARTS);
        let stored = header_u32(&good, 16);
        for at in [8, 20, 24, 40, 60, 72, 80, 91] {
            let mut d = good.clone();
            d[SECTOR_SIZE + at] ^= 0x10;
            assert!(
                matches!(
                    header(&d),
                    Err(GptError::HeaderCrcMismatch { stored: s, .. }) if s == stored
                ),
                "byte {at}: {:?}",
                header(&d)
            );
        }
        // Bytes past the header size are not covered.
        let mut d = good.clone();
        d[SECTOR_SIZE + 100] = 1;
        assert!(header(&d).is_ok());
    }

    #[test]
    fn refuses_a_bad_entry_array() {
        let good = disk(&PARTS);
        let h = header(&good).unwrap();
        assert_eq!(
            find_by_name(&h, &entries(&good)[..100], "alpha"),
            Err(GptError::EntriesTruncated {
                needed: 16384,
                given: 100
            })
        );
        let mut d = good.clone();
        d[2 * SECTOR_SIZE + 200] ^= 1;
        assert!(matches!(
            find(&d, "alpha"),
            Err(GptError::EntriesCrcMismatch { .. })
        ));
        assert!(matches!(
            parse_all(&d),
            Err(GptError::EntriesCrcMismatch { .. })
        ));
        // A disk too short for its entry array.
        assert!(matches!(
            parse_all(&good[..10 * SECTOR_SIZE]),
            Err(GptError::BeyondDisk { .. })
        ));

        let bad_extents: [&[Part]; 5] = [
            &[("a", 50, 49)],
            &[("a", 33, 40)],
            &[("a", 200, 223)],
            &[("ok", 34, 40), ("a", 0, u64::MAX)],
            &[("ok", 34, 40), ("a", 300, 400)],
        ];
        for parts in bad_extents {
            let d = disk(parts);
            let index = parts.len() as u32 - 1;
            assert_eq!(
                find(&d, "ok"),
                Err(GptError::BadExtent { index }),
                "{parts:?}"
            );
        }
        let overlapping: [&[Part]; 3] = [
            &[("a", 34, 100), ("b", 100, 120)],
            &[("a", 50, 60), ("b", 40, 70)],
            &[("a", 34, 40), ("c", 200, 210), ("b", 41, 200)],
        ];
        for parts in overlapping {
            assert!(
                matches!(find(&disk(parts), "a"), Err(GptError::Overlap { .. })),
                "{parts:?}"
            );
        }
        let d = disk(&[("a", 34, 40), ("b", 41, 50), ("a", 51, 60)]);
        assert_eq!(
            find(&d, "a"),
            Err(GptError::DuplicateName {
                first: 0,
                second: 2
            })
        );
        assert_eq!(find(&d, "b").unwrap(), Extent::new(41, 50));
    }

    #[test]
    fn unused_entries_are_ignored() {
        // An unused entry (zero type GUID) may hold anything.
        let mut d = disk(&[("a", 34, 40), ("junk", 0, 0), ("b", 41, 50)]);
        put(&mut d, 2 * SECTOR_SIZE + 128, &[0; 16]);
        seal(&mut d);
        assert_eq!(find(&d, "junk").unwrap(), None);
        assert_eq!(parse_all(&d), Ok(2));
        let h = header(&d).unwrap();
        let table = PartitionTable::new(&h, entries(&d)).unwrap();
        assert_eq!(table.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn larger_entries() {
        // 256-byte entries: 64 of them in the same 32 sectors.
        let mut d = disk(&[]);
        put(&mut d, SECTOR_SIZE + 80, &64u32.to_le_bytes());
        put(&mut d, SECTOR_SIZE + 84, &256u32.to_le_bytes());
        let at = 2 * SECTOR_SIZE + 3 * 256;
        put(&mut d, at, &Guid::LINUX_FILESYSTEM.0);
        put(&mut d, at + 32, &60u64.to_le_bytes());
        put(&mut d, at + 40, &70u64.to_le_bytes());
        put(&mut d, at + 56, &[b'q', 0]);
        seal(&mut d);
        let e = find(&d, "q").unwrap().unwrap();
        assert_eq!((e.first_lba(), e.last_lba()), (60, 70));
        let h = header(&d).unwrap();
        let table = PartitionTable::new(&h, entries(&d)).unwrap();
        assert_eq!(table.iter().next().unwrap().index, 3);
    }

    /// xorshift64: deterministic noise for the robustness test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn never_panics_on_damaged_disks() {
        let good = disk(&PARTS);
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for round in 0..3000 {
            let mut d = good.clone();
            let hits = 1 + next(&mut state) % 8;
            for _ in 0..hits {
                // Mostly the header and the first entries.
                let span = if round % 2 == 0 {
                    3 * SECTOR_SIZE
                } else {
                    d.len()
                };
                let at = (next(&mut state) % span as u64) as usize;
                d[at] = next(&mut state) as u8;
            }
            if round % 3 == 0 {
                seal(&mut d);
            } else if round % 3 == 1 {
                reseal_header(&mut d);
            }
            let _ = parse_all(&d);
            let cut = (next(&mut state) % d.len() as u64) as usize;
            let _ = parse_all(&d[..cut]);
        }
        for len in 0..3 * SECTOR_SIZE {
            let _ = parse_all(&good[..len]);
        }
        assert_eq!(parse_all(&[]), Err(GptError::NoMbrSignature));
    }
}
