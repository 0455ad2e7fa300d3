//! Disk images with a GUID partition table, for the board's virtio disk:
//! `cargo xtask disk [--fresh] [--board NAME]`, the disk `run` attaches,
//! fresh copies for scenarios, and readers for checking a disk after QEMU
//! exits.
//!
//! A layout (`board/<board>/disk.toml`) names the disk size and the
//! partitions in order. The image is a pure function of its layout:
//! [`Layout::content_at`] gives any byte range of a pristine image, which
//! [`write_image`] writes (sparsely) and [`check_unchanged_outside`]
//! compares against. The readers go through the hypervisor's own GPT reader
//! (`shared_devices::gpt`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared_devices::gpt::{self, Crc32, Extent, Guid, Header, PartitionTable, SECTOR_SIZE};

use crate::paths;
use crate::process::step;

/// The layout of the qemu-virt board's disk, relative to the workspace root.
#[allow(dead_code, reason = "for the storage scenarios")]
pub const QEMU_VIRT_LAYOUT: &str = "board/qemu-virt/disk.toml";

const SECTOR: u64 = SECTOR_SIZE as u64;
const MIB: u64 = 1 << 20;
/// Entries in each partition entry array, and their size.
const ENTRY_COUNT: u32 = 128;
const ENTRY_SIZE: u32 = 128;
/// Sectors of one entry array (32).
const ENTRY_SECTORS: u64 = (ENTRY_COUNT as u64 * ENTRY_SIZE as u64).div_ceil(SECTOR);
/// First usable LBA: after the MBR, the primary header and its entries.
pub const FIRST_USABLE: u64 = 2 + ENTRY_SECTORS;
/// XORed into each word of a `fill = "pattern"` partition.
pub const PATTERN_XOR: u32 = 0x5a5a_a5a5;

/// `target/disk/`: the disks `run` attaches (`<board>.img`), kept between
/// runs.
pub fn disks_dir() -> PathBuf {
    paths::target_dir().join("disk")
}

/// `target/test-disks/<scenario>.img`: a scenario's own fresh disk.
pub fn test_disk(scenario: &str) -> PathBuf {
    paths::target_dir()
        .join("test-disks")
        .join(format!("{scenario}.img"))
}

/// A directory in host memory for a benchmark's disk images
/// (`/dev/shm/hv-bench/`), if the host has a tmpfs there with room for
/// four images of `bytes` (a container's is often only 64 MiB).
pub fn host_memory_dir(bytes: u64) -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let df = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(shm)
        .output()
        .ok()?;
    let free: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    (df.status.success() && free / 4 >= bytes).then(|| shm.join("hv-bench"))
}

/// `board/<board>/disk.toml`.
pub fn layout_path(board: &str) -> PathBuf {
    paths::boards_dir().join(board).join("disk.toml")
}

/// `disk.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutFile {
    name: String,
    size_mib: u64,
    #[serde(default = "one")]
    align_mib: u64,
    #[serde(default)]
    partition: Vec<PartitionFile>,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionFile {
    name: String,
    size_mib: u64,
    #[serde(default)]
    fill: Fill,
}

/// What a partition holds in a fresh image.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fill {
    #[default]
    Zero,
    /// Each little-endian u32 is its byte offset in the partition XOR
    /// [`PATTERN_XOR`].
    Pattern,
}

/// A disk layout with its partitions placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Seeds the GUIDs.
    pub name: String,
    pub sectors: u64,
    pub disk_guid: Guid,
    pub partitions: Vec<Partition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub unique_guid: Guid,
    pub fill: Fill,
}

impl Partition {
    #[allow(dead_code, reason = "for the storage scenarios")]
    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }

    /// Byte range on the disk.
    pub fn bytes(&self) -> Range<u64> {
        self.first_lba * SECTOR..(self.last_lba + 1) * SECTOR
    }
}

/// A GUID from a hash of `seed` (RFC 9562 version 8, "custom").
fn derived_guid(seed: &str) -> Guid {
    let hash = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Guid::from_u128(u128::from_be_bytes(bytes))
}

impl Layout {
    /// Reads and places a `disk.toml`.
    pub fn load(path: &Path) -> Result<Layout> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", paths::display(path)))?;
        Layout::parse(&text)
            .with_context(|| format!("{}: invalid disk layout", paths::display(path)))
    }

    pub fn parse(text: &str) -> Result<Layout> {
        let file: LayoutFile = toml::from_str(text)?;
        ensure!(file.align_mib > 0, "align_mib must be at least 1");
        ensure!(
            file.partition.len() <= ENTRY_COUNT as usize,
            "at most {ENTRY_COUNT} partitions"
        );
        let sectors = file
            .size_mib
            .checked_mul(MIB / SECTOR)
            .filter(|&s| s > 2 * FIRST_USABLE)
            .context("size_mib is too small or too large")?;
        let last_usable = sectors - FIRST_USABLE;
        let align = file.align_mib * (MIB / SECTOR);
        let mut next = FIRST_USABLE;
        let mut partitions: Vec<Partition> = Vec::new();
        for p in &file.partition {
            let units = p.name.encode_utf16().count();
            ensure!(
                (1..=gpt::NAME_UNITS).contains(&units),
                "partition name {:?}: 1 to {} UTF-16 code units",
                p.name,
                gpt::NAME_UNITS
            );
            ensure!(
                !partitions.iter().any(|q| q.name == p.name),
                "two partitions are named {:?}",
                p.name
            );
            ensure!(p.size_mib > 0, "partition {:?} has size 0", p.name);
            let first = next.div_ceil(align) * align;
            let last = p
                .size_mib
                .checked_mul(MIB / SECTOR)
                .and_then(|s| first.checked_add(s - 1))
                .filter(|&last| last <= last_usable)
                .with_context(|| {
                    format!(
                        "partition {:?} does not fit on a {} MiB disk",
                        p.name, file.size_mib
                    )
                })?;
            partitions.push(Partition {
                name: p.name.clone(),
                first_lba: first,
                last_lba: last,
                unique_guid: derived_guid(&format!("partition:{}:{}", file.name, p.name)),
                fill: p.fill,
            });
            next = last + 1;
        }
        Ok(Layout {
            disk_guid: derived_guid(&format!("disk:{}", file.name)),
            name: file.name,
            sectors,
            partitions,
        })
    }

    pub fn size(&self) -> u64 {
        self.sectors * SECTOR
    }

    /// The partition named `name`; an error naming it if there is none.
    pub fn partition(&self, name: &str) -> Result<&Partition> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("the layout has no partition named {name:?}"))
    }

    fn last_usable(&self) -> u64 {
        self.sectors - FIRST_USABLE
    }

    /// Every non-zero region of the pristine image other than pattern
    /// partitions: (byte offset, bytes).
    fn metadata(&self) -> Vec<(u64, Vec<u8>)> {
        let entries = gpt_entries(self.partitions.iter().map(|p| GptEntry {
            type_guid: Guid::LINUX_FILESYSTEM,
            unique_guid: p.unique_guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            name: &p.name,
        }));
        gpt_regions(self.sectors, self.disk_guid, &entries)
    }

    /// Fills `buf` with the pristine image's bytes from `offset` on.
    pub fn content_at(&self, offset: u64, buf: &mut [u8]) {
        buf.fill(0);
        let want = offset..offset + buf.len() as u64;
        for (at, bytes) in self.metadata() {
            let region = at..at + bytes.len() as u64;
            if let Some(common) = intersection(&want, &region) {
                buf[(common.start - offset) as usize..(common.end - offset) as usize]
                    .copy_from_slice(
                        &bytes[(common.start - at) as usize..(common.end - at) as usize],
                    );
            }
        }
        for p in self.partitions.iter().filter(|p| p.fill == Fill::Pattern) {
            let region = p.bytes();
            if let Some(common) = intersection(&want, &region) {
                let out =
                    &mut buf[(common.start - offset) as usize..(common.end - offset) as usize];
                pattern(common.start - region.start, out);
            }
        }
    }
}

/// One partition's entry in a GPT.
pub struct GptEntry<'a> {
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
    pub name: &'a str,
}

/// The partition entry array (128 entries of 128 bytes, the same in both
/// copies) holding `entries` in order; attributes zero.
pub fn gpt_entries<'a>(entries: impl IntoIterator<Item = GptEntry<'a>>) -> Vec<u8> {
    let mut array = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
    for (p, entry) in entries
        .into_iter()
        .zip(array.chunks_exact_mut(ENTRY_SIZE as usize))
    {
        entry[0..16].copy_from_slice(&p.type_guid.0);
        entry[16..32].copy_from_slice(&p.unique_guid.0);
        entry[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
        entry[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
        // Attributes (48..56) stay zero.
        for (i, unit) in p.name.encode_utf16().enumerate() {
            entry[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
    }
    array
}

/// The GPT of a disk of `sectors` sectors with the entry array `entries`
/// (from [`gpt_entries`]): protective MBR, primary header and entries at
/// LBA 1 and 2, backup entries and header at the end, as (byte offset,
/// bytes). `flash` uses it to fit an image's table to a smaller device.
pub fn gpt_regions(sectors: u64, disk_guid: Guid, entries: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let last = sectors - 1;
    let crc = gpt::crc32(entries);
    let header = |my_lba: u64, alternate: u64, entries_lba: u64| {
        let mut h = vec![0u8; SECTOR_SIZE];
        h[0..8].copy_from_slice(&gpt::SIGNATURE);
        h[8..12].copy_from_slice(&gpt::REVISION_1_0.to_le_bytes());
        h[12..16].copy_from_slice(&gpt::HEADER_SIZE.to_le_bytes());
        // CRC (16..20) last; 20..24 reserved.
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate.to_le_bytes());
        h[40..48].copy_from_slice(&FIRST_USABLE.to_le_bytes());
        h[48..56].copy_from_slice(&(sectors - FIRST_USABLE).to_le_bytes());
        h[56..72].copy_from_slice(&disk_guid.0);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRY_COUNT.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&crc.to_le_bytes());
        let crc = Crc32::new()
            .update(&h[..gpt::HEADER_SIZE as usize])
            .finish();
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    };
    // The protective MBR: one partition of type 0xEE from LBA 1 over the
    // whole disk (capped at 2^32 - 1 sectors): status, CHS of the first
    // sector (0/0/2), type, CHS of the last (saturated), first LBA, sectors.
    let mut mbr = vec![0u8; SECTOR_SIZE];
    mbr[446..454].copy_from_slice(&[0x00, 0x00, 0x02, 0x00, 0xee, 0xff, 0xff, 0xff]);
    mbr[454..458].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    mbr[458..462].copy_from_slice(&size.to_le_bytes());
    mbr[510..512].copy_from_slice(&[0x55, 0xaa]);
    vec![
        (0, mbr),
        (SECTOR, header(1, last, 2)),
        (2 * SECTOR, entries.to_vec()),
        ((last - ENTRY_SECTORS) * SECTOR, entries.to_vec()),
        (last * SECTOR, header(last, 1, last - ENTRY_SECTORS)),
    ]
}

/// The pattern of a `fill = "pattern"` partition from partition byte
/// offset `offset` on.
pub fn pattern(offset: u64, out: &mut [u8]) {
    let word = |at: u64| ((at & !3) as u32 ^ PATTERN_XOR).to_le_bytes();
    // Up to the first word boundary byte by byte, then whole words.
    let head = ((4 - offset % 4) % 4).min(out.len() as u64) as usize;
    let (first, rest) = out.split_at_mut(head);
    for (i, byte) in first.iter_mut().enumerate() {
        let at = offset + i as u64;
        *byte = word(at)[(at & 3) as usize];
    }
    let mut at = offset + head as u64;
    for chunk in rest.chunks_mut(4) {
        chunk.copy_from_slice(&word(at)[..chunk.len()]);
        at += 4;
    }
}

fn intersection(a: &Range<u64>, b: &Range<u64>) -> Option<Range<u64>> {
    let common = a.start.max(b.start)..a.end.min(b.end);
    (common.start < common.end).then_some(common)
}

/// Writes a pristine image of `layout` to `path` (replacing it). The file is
/// sparse: only the tables and pattern partitions are written.
pub fn write_image(layout: &Layout, path: &Path) -> Result<()> {
    let metadata = layout.metadata();
    write_sparse(
        path,
        layout.size(),
        metadata.iter().map(|(at, bytes)| (*at, bytes.as_slice())),
        layout
            .partitions
            .iter()
            .filter(|p| p.fill == Fill::Pattern)
            .map(Partition::bytes),
    )
}

/// Writes a disk image of `size` bytes to `path`, replacing it through a
/// temporary file: `regions` (byte offset, bytes), and each byte range of
/// `patterned` filled with the [`pattern`] (from its own start); the rest
/// is left sparse, reading as zeros.
pub fn write_sparse<'a>(
    path: &Path,
    size: u64,
    regions: impl IntoIterator<Item = (u64, &'a [u8])>,
    patterned: impl IntoIterator<Item = Range<u64>>,
) -> Result<()> {
    if let Some(dir) = path.parent() {
        paths::create_dir(dir)?;
    }
    let tmp = path.with_extension("img.partial");
    let mut file =
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.set_len(size)?;
    for (at, bytes) in regions {
        file.seek(SeekFrom::Start(at))?;
        file.write_all(bytes)?;
    }
    let mut chunk = vec![0u8; MIB as usize];
    for region in patterned {
        file.seek(SeekFrom::Start(region.start))?;
        let mut at = 0;
        while at < region.end - region.start {
            let n = (region.end - region.start - at).min(MIB) as usize;
            pattern(at, &mut chunk[..n]);
            file.write_all(&chunk[..n])?;
            at += n as u64;
        }
    }
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Writes a pristine image of the layout in `layout` (a path relative to
/// the workspace root) to `image`: a scenario's fresh disk.
pub fn create_fresh(layout: &str, image: &Path) -> Result<()> {
    let layout = Layout::load(&paths::root().join(layout))?;
    write_image(&layout, image)
}

/// The disk `run` attaches for `board`: `target/disk/<board>.img`, written
/// if missing (or `fresh`). `None` if the board has no `disk.toml`.
pub fn for_board(board: &str, fresh: bool) -> Result<Option<PathBuf>> {
    let layout_file = layout_path(board);
    if !layout_file.is_file() {
        return Ok(None);
    }
    let layout = Layout::load(&layout_file)?;
    let image = disks_dir().join(format!("{board}.img"));
    if fresh || !image.exists() {
        write_image(&layout, &image)?;
        println!("wrote {}", paths::display(&image));
    } else if !matches_layout(&image, &layout)? {
        eprintln!(
            "warning: {} does not match {} (`cargo xtask disk --fresh` recreates it, losing its data)",
            paths::display(&image),
            paths::display(&layout_file)
        );
    }
    Ok(Some(image))
}

/// Whether the image's size and partition table are those of `layout`.
fn matches_layout(image: &Path, layout: &Layout) -> Result<bool> {
    let size = std::fs::metadata(image)?.len();
    let Ok(table) = partitions(image) else {
        return Ok(false);
    };
    let placed: Vec<(String, Extent)> = layout
        .partitions
        .iter()
        .filter_map(|p| Some((p.name.clone(), Extent::new(p.first_lba, p.last_lba)?)))
        .collect();
    Ok(size == layout.size() && table == placed)
}

/// `cargo xtask disk [--fresh] [--board NAME]`.
pub fn command(args: &[String]) -> Result<()> {
    let mut fresh = false;
    let mut board = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--fresh" => fresh = true,
            "--board" => board = Some(iter.next().context("--board needs a NAME")?.clone()),
            _ => bail!("usage: cargo xtask disk [--fresh] [--board NAME]"),
        }
    }
    let board = match board {
        Some(board) => board,
        None => crate::board::name_for_config(&paths::root().join(paths::DEFAULT_CONFIG))?,
    };
    step(format!("Disk of board {board}"));
    let Some(image) = for_board(&board, fresh)? else {
        bail!(
            "board {board} has no disk layout ({} does not exist)",
            paths::display(&layout_path(&board))
        );
    };
    print!("{}", describe(&image)?);
    Ok(())
}

/// The image's partition table as text, read back through the GPT reader.
pub fn describe(image: &Path) -> Result<String> {
    let size = std::fs::metadata(image)?.len();
    let (header, _) = read_table(image)?;
    let mut text = format!(
        "{}: {} MiB, {} sectors of {SECTOR_SIZE} bytes, disk GUID {}\n",
        paths::display(image),
        size / MIB,
        size / SECTOR,
        header.disk_guid
    );
    text.push_str(&format!(
        "{:<16} {:>10} {:>10} {:>10} {:>9}\n",
        "name", "first LBA", "last LBA", "sectors", "size"
    ));
    for (name, extent) in partitions(image)? {
        text.push_str(&format!(
            "{:<16} {:>10} {:>10} {:>10} {:>5} KiB\n",
            name,
            extent.first_lba(),
            extent.last_lba(),
            extent.sectors(),
            extent.bytes() / 1024
        ));
    }
    Ok(text)
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
        .with_context(|| format!("cannot read {} bytes at offset {offset}", buf.len()))
}

/// The checked primary header and entry array of an image.
fn read_table(image: &Path) -> Result<(Header, Vec<u8>)> {
    let mut file = File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let mut lba0 = [0u8; SECTOR_SIZE];
    let mut lba1 = [0u8; SECTOR_SIZE];
    read_at(&mut file, 0, &mut lba0)?;
    read_at(&mut file, SECTOR, &mut lba1)?;
    let context = || format!("{}: bad partition table", image.display());
    gpt::check_protective_mbr(&lba0)
        .map_err(anyhow::Error::msg)
        .with_context(context)?;
    let header = Header::parse(&lba1)
        .map_err(anyhow::Error::msg)
        .with_context(context)?;
    header
        .check_disk_size(file.metadata()?.len() / SECTOR)
        .map_err(anyhow::Error::msg)
        .with_context(context)?;
    let mut entries = vec![0u8; header.entries_len()];
    read_at(&mut file, header.entries_lba() * SECTOR, &mut entries)?;
    PartitionTable::new(&header, &entries)
        .map_err(anyhow::Error::msg)
        .with_context(context)?;
    Ok((header, entries))
}

/// The used partitions of an image's GPT, in table order: name and sectors.
pub fn partitions(image: &Path) -> Result<Vec<(String, Extent)>> {
    let (header, entries) = read_table(image)?;
    let table = PartitionTable::new(&header, &entries).map_err(anyhow::Error::msg)?;
    Ok(table
        .iter()
        .filter_map(|e| Some((e.name_chars().collect(), e.extent()?)))
        .collect())
}

/// The sectors of the partition `name` of an image's GPT.
pub fn partition_extent(image: &Path, name: &str) -> Result<Extent> {
    let (header, entries) = read_table(image)?;
    match gpt::find_by_name(&header, &entries, name).map_err(anyhow::Error::msg)? {
        Some(extent) => Ok(extent),
        None => bail!("{}: no partition named {name:?}", image.display()),
    }
}

/// `len` bytes at byte `offset` of partition `name`, found through the
/// image's GPT; an error if the range leaves the partition.
#[allow(dead_code, reason = "for the storage scenarios")]
pub fn read_partition(image: &Path, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
    let extent = partition_extent(image, name)?;
    let end = offset.checked_add(len as u64);
    if end.is_none_or(|end| end > extent.bytes()) {
        bail!(
            "bytes {offset}..+{len} are outside partition {name:?} ({} bytes)",
            extent.bytes()
        );
    }
    let mut file = File::open(image)?;
    let mut buf = vec![0u8; len];
    read_at(&mut file, extent.first_lba() * SECTOR + offset, &mut buf)?;
    Ok(buf)
}

/// Byte ranges of the image outside the partitions `names` (found through
/// its GPT), in order.
fn outside(image: &Path, names: &[&str], size: u64) -> Result<Vec<Range<u64>>> {
    let mut excluded = Vec::new();
    for name in names {
        let e = partition_extent(image, name)?;
        excluded.push(e.first_lba() * SECTOR..(e.last_lba() + 1) * SECTOR);
    }
    excluded.sort_by_key(|r| r.start);
    let mut kept = Vec::new();
    let mut at = 0;
    for r in excluded {
        if r.start > at {
            kept.push(at..r.start.min(size));
        }
        at = at.max(r.end);
    }
    if at < size {
        kept.push(at..size);
    }
    Ok(kept)
}

/// Calls `f` with each chunk of the image within `ranges`.
fn for_each_chunk(
    image: &Path,
    ranges: &[Range<u64>],
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut file = File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let mut buf = vec![0u8; MIB as usize];
    for range in ranges {
        let mut at = range.start;
        while at < range.end {
            let n = (range.end - at).min(MIB) as usize;
            read_at(&mut file, at, &mut buf[..n])?;
            f(at, &buf[..n])?;
            at += n as u64;
        }
    }
    Ok(())
}

/// SHA-256 (hex) of every byte of the image outside the partitions
/// `names`, found through the image's own GPT. Equal before and after a
/// run: nothing outside those partitions changed (the GPT itself included).
#[allow(dead_code, reason = "for the storage scenarios")]
pub fn hash_outside(image: &Path, names: &[&str]) -> Result<String> {
    let size = std::fs::metadata(image)?.len();
    let ranges = outside(image, names, size)?;
    let mut hasher = Sha256::new();
    for r in &ranges {
        hasher.update(r.start.to_le_bytes());
        hasher.update(r.end.to_le_bytes());
    }
    // Most of a disk is zeros: an all-zero chunk is hashed as a tag (the
    // comparison is a memcmp even in xtask's unoptimised build; SHA-256 of
    // every byte is not).
    let zeros = vec![0u8; MIB as usize];
    for_each_chunk(image, &ranges, |_, chunk| {
        if chunk == &zeros[..chunk.len()] {
            hasher.update(b"zeros");
        } else {
            hasher.update(b"bytes");
            hasher.update(chunk);
        }
        Ok(())
    })?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks that the image is still a pristine image of `layout` (a path
/// relative to the workspace root) outside the partitions `names`; the
/// error names the first sector that differs and where it lies.
#[allow(dead_code, reason = "for the storage scenarios")]
pub fn check_unchanged_outside(image: &Path, layout: &str, names: &[&str]) -> Result<()> {
    let layout = Layout::load(&paths::root().join(layout))?;
    let size = std::fs::metadata(image)?.len();
    ensure!(
        size == layout.size(),
        "{} is {size} bytes, its layout says {}",
        image.display(),
        layout.size()
    );
    let mut excluded = names
        .iter()
        .map(|name| Ok(layout.partition(name)?.bytes()))
        .collect::<Result<Vec<_>>>()?;
    excluded.sort_by_key(|r| r.start);
    let mut ranges = Vec::new();
    let mut at = 0;
    for r in excluded {
        if r.start > at {
            ranges.push(at..r.start);
        }
        at = at.max(r.end);
    }
    if at < size {
        ranges.push(at..size);
    }
    let mut expected = vec![0u8; MIB as usize];
    for_each_chunk(image, &ranges, |offset, chunk| {
        let expected = &mut expected[..chunk.len()];
        layout.content_at(offset, expected);
        if chunk != &expected[..]
            && let Some(i) = chunk.iter().zip(expected.iter()).position(|(a, b)| a != b)
        {
            let lba = (offset + i as u64) / SECTOR;
            let place = match layout
                .partitions
                .iter()
                .find(|p| (p.first_lba..=p.last_lba).contains(&lba))
            {
                Some(p) => format!("sector {} of partition {:?}", lba - p.first_lba, p.name),
                None if lba < FIRST_USABLE => "the primary GPT".to_string(),
                None if lba > layout.last_usable() => "the backup GPT".to_string(),
                None => "no partition".to_string(),
            };
            bail!("LBA {lba} changed ({place})");
        }
        Ok(())
    })
}

/// Partition `name` of `image` copied to a file of its own (for the
/// e2fsprogs tools, which want a file system image), in a fresh work
/// directory; returns (work directory, copy).
fn copy_partition_out(image: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let extent = partition_extent(image, name)?;
    let work = paths::target_dir().join("disks").join(format!(
        "{}-{name}",
        image.file_stem().unwrap_or_default().to_string_lossy()
    ));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    paths::create_dir(&work)?;
    let fs_image = work.join("fs.img");
    let mut from = File::open(image)?;
    from.seek(SeekFrom::Start(extent.first_lba() * SECTOR))?;
    let mut to = File::create(&fs_image)?;
    let copied = std::io::copy(&mut from.take(extent.bytes()), &mut to)?;
    ensure!(
        copied == extent.bytes(),
        "{} ends inside partition {name:?}",
        image.display()
    );
    Ok((work, fs_image))
}

/// An e2fsprogs program, or why it is missing.
fn e2fsprogs(name: &str) -> Result<PathBuf> {
    crate::process::find_program(name)
        .with_context(|| format!("{name} is not installed (Debian package e2fsprogs)"))
}

/// Copies directory `dir` of file system image `fs_image` into `work/files`
/// (`debugfs rdump`); returns where the copy of `dir` is.
fn copy_dir_out(work: &Path, fs_image: &Path, dir: &str) -> Result<PathBuf> {
    let files = work.join("files");
    paths::create_dir(&files)?;
    crate::process::Cmd::new(e2fsprogs("debugfs")?)
        .arg("-R")
        .arg(format!("rdump {dir} {}", files.display()))
        .arg(fs_image)
        .read()?;
    let leaf = dir
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    Ok(files.join(leaf))
}

/// Checks the ext2/3/4 file system a guest made on partition `name`: the
/// partition is copied out of the image, `e2fsck -fn` (read-only, forced)
/// must find it consistent, and the files under `dir` (copied out with
/// `debugfs rdump`) must match the md5 list `dir/sums` the guest wrote
/// there (`md5sum -c`). Needs e2fsprogs and coreutils on the host.
#[allow(dead_code, reason = "for the storage scenarios")]
pub fn check_ext_files(image: &Path, name: &str, dir: &str, sums: &str) -> Result<()> {
    use crate::process::Cmd;
    let (work, fs_image) = copy_partition_out(image, name)?;
    Cmd::new(e2fsprogs("e2fsck")?)
        .args(["-f", "-n"])
        .arg(&fs_image)
        .read()?;
    let copied = copy_dir_out(&work, &fs_image, dir)?;
    ensure!(
        copied.join(sums).is_file(),
        "the file system on {name:?} has no {dir}/{sums}"
    );
    Cmd::new("md5sum")
        .args(["-c", "--strict", sums])
        .current_dir(&copied)
        .read()
        .with_context(|| format!("files in {dir} on {name:?} differ from {sums}"))?;
    Ok(())
}

/// The ext4 file system on partition `name` after a power cut, as the
/// next mount would find it: its journal replayed (`e2fsck -E
/// journal_only`, on a copy), then it must check clean (`e2fsck -fn`
/// exits 0). Returns the md5 (hex) of every regular file under `dir`, by
/// name relative to `dir`.
pub fn ext_after_cut(
    image: &Path,
    name: &str,
    dir: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    use crate::process::Cmd;
    let (work, fs_image) = copy_partition_out(image, name)?;
    let e2fsck = e2fsprogs("e2fsck")?;
    // 0: nothing to do, 1: the journal was replayed; anything else is a
    // file system the replay could not make whole.
    let replay = std::process::Command::new(&e2fsck)
        .args(["-E", "journal_only", "-y"])
        .arg(&fs_image)
        .output()
        .with_context(|| format!("running {}", e2fsck.display()))?;
    ensure!(
        matches!(replay.status.code(), Some(0 | 1)),
        "replaying the journal of {name:?} failed ({}):\n{}",
        replay.status,
        String::from_utf8_lossy(&replay.stdout)
    );
    // Without a journal nothing promises consistency after a cut (ext2),
    // and a check that passes would have passed by luck.
    let header = Cmd::new(e2fsprogs("dumpe2fs")?)
        .arg("-h")
        .arg(&fs_image)
        .read()?;
    let features = header
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem features:"))
        .unwrap_or_default();
    ensure!(
        features.split_whitespace().any(|f| f == "has_journal"),
        "the file system on {name:?} has no journal (features:{features}): a cut may leave it inconsistent by design"
    );
    Cmd::new(&e2fsck)
        .args(["-f", "-n"])
        .arg(&fs_image)
        .read()
        .with_context(|| format!("the file system on {name:?} is not clean after the cut"))?;
    let copied = copy_dir_out(&work, &fs_image, dir)?;
    let mut sums = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&copied)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let out = Cmd::new("md5sum").arg(entry.path()).read()?;
        let sum = out
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        sums.insert(entry.file_name().to_string_lossy().into_owned(), sum);
    }
    Ok(sums)
}

/// Makes an empty ext4 file system (with its journal) labelled `label` on
/// partition `name` of `image`, with the host's `mke2fs`: what a board's
/// image would carry for a partition its Linux mounts.
pub fn format_ext4(image: &Path, name: &str, label: &str) -> Result<()> {
    let (work, fs_image) = copy_partition_out(image, name)?;
    crate::process::Cmd::new(e2fsprogs("mke2fs")?)
        .args(["-q", "-F", "-t", "ext4", "-L", label])
        .arg(&fs_image)
        .read()?;
    write_partition(image, name, 0, &std::fs::read(&fs_image)?)?;
    std::fs::remove_dir_all(&work)?;
    Ok(())
}

/// Writes `bytes` at byte `offset` of partition `name` (found through the
/// image's GPT), e.g. to give a scenario a disk with data on it.
#[allow(dead_code, reason = "for the storage scenarios")]
pub fn write_partition(image: &Path, name: &str, offset: u64, bytes: &[u8]) -> Result<()> {
    let extent = partition_extent(image, name)?;
    let end = offset.checked_add(bytes.len() as u64);
    if end.is_none_or(|end| end > extent.bytes()) {
        bail!(
            "bytes {offset}..+{} are outside partition {name:?} ({} bytes)",
            bytes.len(),
            extent.bytes()
        );
    }
    let mut file = OpenOptions::new().write(true).open(image)?;
    file.seek(SeekFrom::Start(extent.first_lba() * SECTOR + offset))?;
    file.write_all(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Cmd, on_path};

    fn scratch(name: &str) -> PathBuf {
        let dir = paths::target_dir().join("xtask-test-disk");
        paths::create_dir(&dir).unwrap();
        dir.join(name)
    }

    fn qemu_virt() -> Layout {
        Layout::load(&paths::root().join(QEMU_VIRT_LAYOUT)).unwrap()
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// A file system a "guest" made on ivi-data passes; a flipped byte in
    /// one of its files, or a damaged superblock, fails with the reason.
    #[test]
    fn checks_a_guest_file_system() {
        let tool = |name: &str| crate::process::find_program(name);
        let Some(mke2fs) = tool("mke2fs") else {
            panic!("mke2fs is missing: install e2fsprogs (cargo xtask test does)");
        };
        let image = scratch("ext.img");
        write_image(&qemu_virt(), &image).unwrap();
        let tree = scratch("ext-tree");
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("data/logs")).unwrap();
        std::fs::write(tree.join("data/map.bin"), vec![7u8; 70_000]).unwrap();
        std::fs::write(tree.join("data/logs/trip.log"), b"12 km\n").unwrap();
        // What the guest does: md5sum's own list of the files.
        let sums = Cmd::new("md5sum")
            .args(["map.bin", "logs/trip.log"])
            .current_dir(tree.join("data"))
            .read()
            .unwrap();
        std::fs::write(tree.join("data/SUMS"), &sums).unwrap();
        let fs_image = scratch("ext-fs.img");
        let _ = std::fs::remove_file(&fs_image);
        Cmd::new(mke2fs)
            .args(["-q", "-t", "ext2", "-d"])
            .arg(&tree)
            .arg(&fs_image)
            .arg("8M")
            .read()
            .unwrap();
        let fs = std::fs::read(&fs_image).unwrap();
        write_partition(&image, "ivi-data", 0, &fs).unwrap();
        check_ext_files(&image, "ivi-data", "/data", "SUMS").unwrap();

        // One byte of map.bin changed on the disk.
        let at = fs.windows(8).position(|w| w == [7u8; 8]).unwrap() as u64;
        write_partition(&image, "ivi-data", at, &[8]).unwrap();
        let e = format!(
            "{:#}",
            check_ext_files(&image, "ivi-data", "/data", "SUMS").unwrap_err()
        );
        assert!(
            e.contains("differ from SUMS") && e.contains("map.bin: FAILED"),
            "{e}"
        );
        write_partition(&image, "ivi-data", at, &[7]).unwrap();
        check_ext_files(&image, "ivi-data", "/data", "SUMS").unwrap();

        // No such directory, and a broken superblock.
        let e = format!(
            "{:#}",
            check_ext_files(&image, "ivi-data", "/nope", "SUMS").unwrap_err()
        );
        assert!(e.contains("has no /nope/SUMS"), "{e}");
        write_partition(&image, "ivi-data", 1024 + 56, &[0, 0]).unwrap();
        let e = format!(
            "{:#}",
            check_ext_files(&image, "ivi-data", "/data", "SUMS").unwrap_err()
        );
        assert!(e.contains("e2fsck"), "{e}");
    }

    /// A qemu-virt disk image whose ivi-data holds a file system of `kind`
    /// with `files` in /pc; (image, the tree the files came from).
    fn image_with_fs(name: &str, kind: &str, files: &[(&str, &[u8])]) -> (PathBuf, PathBuf) {
        let mke2fs = crate::process::find_program("mke2fs")
            .expect("mke2fs is missing: install e2fsprogs (cargo xtask test does)");
        let image = scratch(&format!("{name}.img"));
        write_image(&qemu_virt(), &image).unwrap();
        let tree = scratch(&format!("{name}-tree"));
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("pc")).unwrap();
        for (file, bytes) in files {
            std::fs::write(tree.join("pc").join(file), bytes).unwrap();
        }
        let fs_image = scratch(&format!("{name}-fs.img"));
        let _ = std::fs::remove_file(&fs_image);
        Cmd::new(mke2fs)
            .args(["-q", "-t", kind, "-d"])
            .arg(&tree)
            .arg(&fs_image)
            .arg("8M")
            .read()
            .unwrap();
        write_partition(&image, "ivi-data", 0, &std::fs::read(&fs_image).unwrap()).unwrap();
        (image, tree)
    }

    /// After a cut: the files of a clean ext4 file system, by md5; a
    /// damaged one is an error.
    #[test]
    fn reads_a_file_system_after_a_cut() {
        let (image, tree) =
            image_with_fs("cut", "ext4", &[("1", b"one\n"), ("current", &[3; 5000])]);
        let sums = ext_after_cut(&image, "ivi-data", "/pc").unwrap();
        let md5 = |file: &str| {
            let out = Cmd::new("md5sum").arg(tree.join(file)).read().unwrap();
            out.split_whitespace().next().unwrap().to_string()
        };
        assert_eq!(sums.len(), 2, "{sums:?}");
        assert_eq!(sums["1"], md5("pc/1"));
        assert_eq!(sums["current"], md5("pc/current"));

        // A broken superblock (its magic) is no file system.
        write_partition(&image, "ivi-data", 1024 + 56, &[0, 0]).unwrap();
        let e = format!(
            "{:#}",
            ext_after_cut(&image, "ivi-data", "/pc").unwrap_err()
        );
        assert!(e.contains("replaying the journal"), "{e}");
    }

    /// A file system without a journal (ext2) proves nothing after a cut:
    /// refused, even when it happens to check clean. `format_ext4` makes
    /// one with a journal.
    #[test]
    fn a_cut_needs_a_journal() {
        let (image, _) = image_with_fs("cut-ext2", "ext2", &[]);
        let e = format!(
            "{:#}",
            ext_after_cut(&image, "ivi-data", "/pc").unwrap_err()
        );
        assert!(e.contains("no journal"), "{e}");

        // Journaled, clean and empty.
        format_ext4(&image, "ivi-data", "ivi-data").unwrap();
        let files = ext_after_cut(&image, "ivi-data", "/lost+found").unwrap();
        assert!(files.is_empty(), "{files:?}");
    }

    #[test]
    fn qemu_virt_layout() {
        let layout = qemu_virt();
        assert_eq!(layout.sectors, 64 * 2048);
        let placed: Vec<(&str, u64, u64, Fill)> = layout
            .partitions
            .iter()
            .map(|p| (p.name.as_str(), p.first_lba, p.sectors(), p.fill))
            .collect();
        assert_eq!(
            placed,
            [
                ("cluster-odo", 2048, 2048, Fill::Zero),
                ("ivi-data", 4096, 65536, Fill::Zero),
                ("shared-ro", 69632, 8192, Fill::Pattern),
                ("hv-records", 77824, 2048, Fill::Zero),
            ]
        );
        // Reproducible, distinct GUIDs.
        assert_eq!(qemu_virt(), layout);
        let mut guids: Vec<Guid> = layout.partitions.iter().map(|p| p.unique_guid).collect();
        guids.push(layout.disk_guid);
        guids.sort_by_key(|g| g.0);
        guids.dedup();
        assert_eq!(guids.len(), 5);
        let text = layout.partitions[0].unique_guid.to_string();
        assert_eq!(&text[14..15], "8", "version 8: {text}");
    }

    #[test]
    fn pattern_at_any_offset() {
        let mut all = vec![0u8; 64];
        pattern(0, &mut all);
        assert_eq!(all[..8], [0xa5, 0xa5, 0x5a, 0x5a, 0xa1, 0xa5, 0x5a, 0x5a]);
        assert_eq!(all[60..], (60 ^ PATTERN_XOR).to_le_bytes());
        for start in 0..12 {
            for len in 0..20 {
                let mut piece = vec![0u8; len];
                pattern(start as u64, &mut piece);
                assert_eq!(piece, all[start..start + len], "{start}+{len}");
            }
        }
    }

    #[test]
    fn layout_errors() {
        let cases = [
            ("name = \"x\"\nsize_mib = 0\n", "too small"),
            (
                "name = \"x\"\nsize_mib = 4\n[[partition]]\nname = \"a\"\nsize_mib = 3\n",
                "does not fit",
            ),
            (
                "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"a\"\nsize_mib = 1\n[[partition]]\nname = \"a\"\nsize_mib = 1\n",
                "two partitions",
            ),
            (
                "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"\"\nsize_mib = 1\n",
                "UTF-16",
            ),
            (
                "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"abcdefghijklmnopqrstuvwxyz0123456789x\"\nsize_mib = 1\n",
                "UTF-16",
            ),
            (
                "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"a\"\nsize_mib = 0\n",
                "size 0",
            ),
            (
                "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"a\"\nsize_mib = 1\nfill = \"ones\"\n",
                "unknown variant",
            ),
            ("name = \"x\"\nsize_mib = 8\nsize = 3\n", "unknown field"),
            ("name = \"x\"\nsize_mib = 8\nalign_mib = 0\n", "align_mib"),
        ];
        for (text, expected) in cases {
            let e = format!("{:#}", Layout::parse(text).unwrap_err());
            assert!(e.contains(expected), "{text}: {e}");
        }
        // The last MiB holds the backup table: a 3 MiB partition fits on a
        // 5 MiB disk with 1 MiB alignment, a 4 MiB one does not.
        let fits = "name = \"x\"\nsize_mib = 5\n[[partition]]\nname = \"a\"\nsize_mib = 3\n";
        assert_eq!(
            Layout::parse(fits).unwrap().partitions[0].last_lba,
            4 * 2048 - 1
        );
        assert!(Layout::parse(&fits.replace("= 3", "= 4")).is_err());
    }

    /// Both headers and entry arrays, byte by byte, and the reader's view.
    #[test]
    fn writes_a_valid_gpt() {
        let layout = qemu_virt();
        let image = scratch("gpt.img");
        write_image(&layout, &image).unwrap();
        let bytes = std::fs::read(&image).unwrap();
        assert_eq!(bytes.len() as u64, 64 * MIB);
        // The whole file is the pristine content.
        let mut expected = vec![0u8; bytes.len()];
        layout.content_at(0, &mut expected);
        assert!(bytes == expected);
        // Partial reads agree too.
        let mut piece = vec![0u8; 3000];
        layout.content_at(69632 * 512 - 1000, &mut piece);
        assert_eq!(piece[..], bytes[69632 * 512 - 1000..][..3000]);

        let sector = |lba: u64| &bytes[(lba * SECTOR) as usize..][..SECTOR_SIZE];
        let mbr = sector(0);
        assert_eq!(mbr[446 + 4], 0xee);
        assert_eq!(u32_at(mbr, 454), 1);
        assert_eq!(u32_at(mbr, 458), 64 * 2048 - 1);
        assert_eq!(mbr[510..], [0x55, 0xaa]);

        let last = layout.sectors - 1;
        let entries = &bytes[1024..1024 + 16384];
        let backup_entries = &bytes[((last - 32) * SECTOR) as usize..][..16384];
        assert_eq!(entries, backup_entries);
        for (lba, my, alternate, entries_lba) in [(1, 1, last, 2), (last, last, 1, last - 32)] {
            let h = sector(lba);
            assert_eq!(&h[..8], b"EFI PART");
            assert_eq!(u32_at(h, 8), 0x0001_0000);
            assert_eq!(u32_at(h, 12), 92);
            let mut copy = h[..92].to_vec();
            copy[16..20].fill(0);
            assert_eq!(u32_at(h, 16), gpt::crc32(&copy), "header at {lba}");
            assert_eq!(u64_at(h, 24), my);
            assert_eq!(u64_at(h, 32), alternate);
            assert_eq!(u64_at(h, 40), 34);
            assert_eq!(u64_at(h, 48), last - 33);
            assert_eq!(h[56..72], layout.disk_guid.0);
            assert_eq!(u64_at(h, 72), entries_lba);
            assert_eq!((u32_at(h, 80), u32_at(h, 84)), (128, 128));
            assert_eq!(u32_at(h, 88), gpt::crc32(entries));
            assert!(h[92..].iter().all(|&b| b == 0));
        }
        // Entry 1, by hand.
        let e = &entries[128..256];
        assert_eq!(e[..16], Guid::LINUX_FILESYSTEM.0);
        assert_eq!(e[16..32], layout.partitions[1].unique_guid.0);
        assert_eq!((u64_at(e, 32), u64_at(e, 40)), (4096, 4096 + 65535));
        assert_eq!(
            &e[56..72],
            "ivi-data"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        );
        assert!(e[72..].iter().all(|&b| b == 0));
        assert!(entries[4 * 128..].iter().all(|&b| b == 0));

        // The hypervisor's reader.
        assert_eq!(gpt::parse_all(&bytes), Ok(4));
        let table = partitions(&image).unwrap();
        let names: Vec<&str> = table.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["cluster-odo", "ivi-data", "shared-ro", "hv-records"]
        );
        assert_eq!(table[2].1, Extent::new(69632, 77823).unwrap());
        assert!(matches_layout(&image, &layout).unwrap());
        let text = describe(&image).unwrap();
        assert!(
            text.contains("shared-ro             69632      77823       8192  4096 KiB"),
            "{text}"
        );
    }

    #[test]
    fn reads_partitions_and_notices_changes() {
        let layout = qemu_virt();
        let image = scratch("rw.img");
        write_image(&layout, &image).unwrap();
        let start = read_partition(&image, "shared-ro", 0, 8).unwrap();
        assert_eq!(start, [0xa5, 0xa5, 0x5a, 0x5a, 0xa1, 0xa5, 0x5a, 0x5a]);
        let end = 4 * MIB - 4;
        let tail = read_partition(&image, "shared-ro", end, 4).unwrap();
        assert_eq!(tail, ((end as u32) ^ PATTERN_XOR).to_le_bytes());
        assert!(read_partition(&image, "shared-ro", end, 5).is_err());
        assert!(read_partition(&image, "nope", 0, 1).is_err());
        assert_eq!(read_partition(&image, "ivi-data", 512, 4).unwrap(), [0; 4]);

        let pristine_all = hash_outside(&image, &[]).unwrap();
        let pristine = hash_outside(&image, &["ivi-data"]).unwrap();
        check_unchanged_outside(&image, QEMU_VIRT_LAYOUT, &[]).unwrap();

        write_partition(&image, "ivi-data", 32 * MIB - 3, b"end").unwrap();
        assert!(write_partition(&image, "ivi-data", 32 * MIB - 3, b"end!").is_err());
        assert_eq!(
            read_partition(&image, "ivi-data", 32 * MIB - 3, 3).unwrap(),
            b"end"
        );
        assert_eq!(hash_outside(&image, &["ivi-data"]).unwrap(), pristine);
        assert_ne!(hash_outside(&image, &[]).unwrap(), pristine_all);
        check_unchanged_outside(&image, QEMU_VIRT_LAYOUT, &["ivi-data"]).unwrap();
        let e = check_unchanged_outside(&image, QEMU_VIRT_LAYOUT, &["cluster-odo"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "LBA 69631 changed (sector 65535 of partition \"ivi-data\")"
        );

        // A write just past ivi-data lands in shared-ro.
        write_partition(&image, "shared-ro", 0, &[0]).unwrap();
        assert_ne!(hash_outside(&image, &["ivi-data"]).unwrap(), pristine);
        assert_eq!(
            hash_outside(&image, &["ivi-data", "shared-ro"]).unwrap(),
            hash_outside(&image, &["shared-ro", "ivi-data"]).unwrap()
        );
        let e = check_unchanged_outside(&image, QEMU_VIRT_LAYOUT, &["ivi-data"]).unwrap_err();
        assert!(e.to_string().contains("partition \"shared-ro\""), "{e}");

        // Damage to the backup table outside every partition.
        let mut file = OpenOptions::new().write(true).open(&image).unwrap();
        file.seek(SeekFrom::Start(64 * MIB - 100)).unwrap();
        file.write_all(b"x").unwrap();
        drop(file);
        let all = ["ivi-data", "shared-ro"];
        let e = check_unchanged_outside(&image, QEMU_VIRT_LAYOUT, &all).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("LBA {} changed (the backup GPT)", 64 * 2048 - 1)
        );
    }

    /// A fresh disk replaces an old one; `for_board` keeps an existing one.
    #[test]
    fn fresh_images_replace_old_ones() {
        let image = scratch("fresh.img");
        create_fresh(QEMU_VIRT_LAYOUT, &image).unwrap();
        write_partition(&image, "cluster-odo", 0, b"data").unwrap();
        create_fresh(QEMU_VIRT_LAYOUT, &image).unwrap();
        assert_eq!(read_partition(&image, "cluster-odo", 0, 4).unwrap(), [0; 4]);
        assert!(!image.with_extension("img.partial").exists());
        assert_eq!(test_disk("x"), paths::target_dir().join("test-disks/x.img"));
        assert_eq!(for_board("no-such-board", false).unwrap(), None);
    }

    /// gdisk and util-linux agree the image is a valid GPT disk.
    #[test]
    fn host_tools_accept_the_image() {
        let image = scratch("tools.img");
        write_image(&qemu_virt(), &image).unwrap();
        let sgdisk = ["sgdisk", "/usr/sbin/sgdisk", "/sbin/sgdisk"]
            .into_iter()
            .find(|p| on_path(p) || Path::new(p).is_file());
        match sgdisk {
            Some(sgdisk) => {
                let out = Cmd::new(sgdisk).arg("-v").arg(&image).read().unwrap();
                assert!(out.contains("No problems found"), "{out}");
                let out = Cmd::new(sgdisk).arg("-p").arg(&image).read().unwrap();
                for line in [
                    "2048            4095   1024.0 KiB  8300  cluster-odo",
                    "69632           77823   4.0 MiB     8300  shared-ro",
                ] {
                    assert!(out.contains(line), "{out}");
                }
            }
            None => eprintln!("sgdisk (gdisk) is not installed: not checking with it"),
        }
        let sfdisk = ["sfdisk", "/usr/sbin/sfdisk", "/sbin/sfdisk"]
            .into_iter()
            .find(|p| on_path(p) || Path::new(p).is_file());
        match sfdisk {
            Some(sfdisk) => {
                let out = Cmd::new(sfdisk).arg("--dump").arg(&image).read().unwrap();
                assert!(out.contains("label: gpt"), "{out}");
                assert!(out.contains("start=        4096, size=       65536, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4"), "{out}");
                assert!(out.contains("name=\"ivi-data\""), "{out}");
            }
            None => eprintln!("sfdisk (util-linux) is not installed: not checking with it"),
        }
    }
}
