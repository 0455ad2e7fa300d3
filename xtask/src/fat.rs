//! A FAT32 writer for a few files in the root directory: the boot partition
//! of `cargo xtask image`, which U-Boot reads with `load`.
//!
//! [`format`] lays out a whole file system of a given size (512-byte
//! sectors) and returns it as the non-zero regions to write: boot sector,
//! FSInfo and their backups (sectors 6 and 7), two FATs, the root directory
//! and the files, each stored in consecutive clusters. Everything else is
//! zero. Names are kept as written through a long-name (VFAT) entry when
//! they are not an upper-case 8.3 name already; each must still be a valid
//! 8.3 name ignoring case, which gives its short name. Timestamps are fixed
//! (1980-01-01 00:00, the FAT epoch) so that the same files give the same
//! bytes. [`read_root`] parses such a file system back, for tests and for
//! `image`'s report of what it wrote.
//!
//! Layout references: Microsoft's "FAT: General Overview of On-Disk
//! Format" (BPB fields, FAT32 minimum cluster count, FSInfo) and its long
//! file name entries.

use anyhow::{Result, bail, ensure};

/// Bytes per sector.
pub const SECTOR: u64 = 512;
/// Sectors before the first FAT (boot sector, FSInfo, backups).
const RESERVED_SECTORS: u64 = 32;
const FAT_COUNT: u64 = 2;
/// Fewer clusters than this make a FAT16 volume by definition.
const MIN_FAT32_CLUSTERS: u64 = 65_525;
/// End of a cluster chain.
const END_OF_CHAIN: u32 = 0x0fff_ffff;
/// 1980-01-01 as a FAT date (day 1, month 1, year 0); the time is 0.
const FIXED_DATE: u16 = (1 << 5) | 1;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0f;
const ROOT_CLUSTER: u32 = 2;

/// A file for the root directory.
pub struct File<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// The geometry [`format`] chooses for a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub sectors: u64,
    pub sectors_per_cluster: u64,
    pub fat_sectors: u64,
    pub clusters: u64,
}

impl Geometry {
    /// FAT32 over `sectors` sectors: one-sector clusters up to 260 MiB,
    /// 4 KiB clusters above (Microsoft's defaults), FATs sized for the
    /// clusters that remain after them.
    pub fn for_sectors(sectors: u64) -> Result<Geometry> {
        let sectors_per_cluster = if sectors <= 260 * 2048 { 1 } else { 8 };
        let mut fat_sectors = 1;
        loop {
            let data = sectors.saturating_sub(RESERVED_SECTORS + FAT_COUNT * fat_sectors);
            let clusters = data / sectors_per_cluster;
            let needed = ((clusters + 2) * 4).div_ceil(SECTOR);
            if needed <= fat_sectors {
                ensure!(
                    clusters >= MIN_FAT32_CLUSTERS,
                    "{} sectors are too few for FAT32 ({clusters} clusters of {} bytes, at least {MIN_FAT32_CLUSTERS} needed)",
                    sectors,
                    sectors_per_cluster * SECTOR
                );
                ensure!(clusters < 0x0fff_fff5, "too many clusters for FAT32");
                return Ok(Geometry {
                    sectors,
                    sectors_per_cluster,
                    fat_sectors,
                    clusters,
                });
            }
            fat_sectors = needed;
        }
    }

    pub fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * SECTOR
    }

    fn data_start(&self) -> u64 {
        (RESERVED_SECTORS + FAT_COUNT * self.fat_sectors) * SECTOR
    }

    /// Byte offset of a cluster (the first is 2).
    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_start() + u64::from(cluster - 2) * self.cluster_bytes()
    }

    fn clusters_for(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.cluster_bytes())
    }
}

/// The 11-byte short name of `name` ("boot.scr" is `BOOT    SCR`), or an
/// error if it is not an 8.3 name.
fn short_name(name: &str) -> Result<[u8; 11]> {
    let (base, ext) = name.split_once('.').unwrap_or((name, ""));
    let valid = |part: &str, max: usize| {
        (1..=max).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-~!#$%&'()@^{}".contains(&b))
    };
    if !valid(base, 8) || !(ext.is_empty() || valid(ext, 3)) {
        bail!("{name:?} is not an 8.3 file name");
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.to_ascii_uppercase().as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.to_ascii_uppercase().as_bytes());
    Ok(out)
}

/// The checksum of a short name that its long-name entries carry.
fn short_name_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// The 32-byte directory entries of one file: long-name entries (last
/// part first) when needed, then the short entry.
fn dir_entries(name: &str, first_cluster: u32, size: u32) -> Result<Vec<[u8; 32]>> {
    let short = short_name(name)?;
    let mut entries = Vec::new();
    let plain = {
        let (base, ext) = name.split_once('.').unwrap_or((name, ""));
        let mut padded = [b' '; 11];
        padded[..base.len()].copy_from_slice(base.as_bytes());
        padded[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
        padded == short
    };
    if !plain {
        let units: Vec<u16> = name.encode_utf16().collect();
        let parts = units.len().div_ceil(13);
        let checksum = short_name_checksum(&short);
        for part in (0..parts).rev() {
            let mut e = [0u8; 32];
            e[0] = (part + 1) as u8 | if part + 1 == parts { 0x40 } else { 0 };
            e[11] = ATTR_LONG_NAME;
            e[13] = checksum;
            // Characters 1-5 at 1, 6-11 at 14, 12-13 at 28: the name, a
            // NUL after it if there is room, then 0xFFFF.
            let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            for (i, at) in offsets.into_iter().enumerate() {
                let index = part * 13 + i;
                let unit = match index.cmp(&units.len()) {
                    std::cmp::Ordering::Less => units[index],
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 0xffff,
                };
                e[at..at + 2].copy_from_slice(&unit.to_le_bytes());
            }
            entries.push(e);
        }
    }
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(&short);
    e[11] = ATTR_ARCHIVE;
    // Creation, access and modification dates; times stay 0.
    for at in [16, 18, 24] {
        e[at..at + 2].copy_from_slice(&FIXED_DATE.to_le_bytes());
    }
    e[20..22].copy_from_slice(&((first_cluster >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(first_cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    entries.push(e);
    Ok(entries)
}

/// A FAT32 file system of `sectors` sectors holding `files` in its root
/// directory, as (byte offset, bytes) regions; the rest is zero.
/// `hidden_sectors` is where the partition starts on its disk, `label` at
/// most 11 characters, `volume_id` the serial number.
pub fn format(
    sectors: u64,
    hidden_sectors: u32,
    label: &str,
    volume_id: u32,
    files: &[File],
) -> Result<Vec<(u64, Vec<u8>)>> {
    let g = Geometry::for_sectors(sectors)?;
    ensure!(
        label.len() <= 11 && label.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "volume label {label:?}: at most 11 ASCII characters"
    );
    let mut label_bytes = [b' '; 11];
    label_bytes[..label.len()].copy_from_slice(label.to_ascii_uppercase().as_bytes());

    // The root directory: the volume label, then each file's entries.
    let mut root: Vec<[u8; 32]> = Vec::new();
    let mut volume = [0u8; 32];
    volume[..11].copy_from_slice(&label_bytes);
    volume[11] = ATTR_VOLUME_ID;
    volume[24..26].copy_from_slice(&FIXED_DATE.to_le_bytes());
    root.push(volume);
    let mut shorts = Vec::new();
    for f in files {
        let short = short_name(f.name)?;
        ensure!(!shorts.contains(&short), "two files are named {:?}", f.name);
        shorts.push(short);
    }
    // Clusters: the root directory's first, then each file's in turn.
    // A long-name entry and a short one per file (8.3 names need at most
    // one long-name entry), and the label.
    let root_entries = 2 * files.len() + 1;
    let root_clusters = g.clusters_for(root_entries as u64 * 32).max(1);
    let mut next = ROOT_CLUSTER as u64 + root_clusters;
    let mut chains = vec![(ROOT_CLUSTER, root_clusters)];
    for f in files {
        let size = u32::try_from(f.data.len())
            .map_err(|_| anyhow::anyhow!("{} is larger than 4 GiB", f.name))?;
        let count = g.clusters_for(f.data.len() as u64);
        // An empty file has no cluster (first cluster 0).
        let first = if count == 0 { 0 } else { next as u32 };
        root.extend(dir_entries(f.name, first, size)?);
        if count > 0 {
            chains.push((first, count));
        }
        next += count;
    }
    ensure!(
        root.len() as u64 * 32 <= root_clusters * g.cluster_bytes(),
        "root directory estimate too small"
    );
    let used = next - 2;
    ensure!(
        used <= g.clusters,
        "the files need {} KiB, more than the {} KiB of the file system",
        used * g.cluster_bytes() / 1024,
        g.clusters * g.cluster_bytes() / 1024
    );

    let mut boot = [0u8; SECTOR as usize];
    boot[0..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
    boot[3..11].copy_from_slice(b"MSWIN4.1");
    boot[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    boot[13] = g.sectors_per_cluster as u8;
    boot[14..16].copy_from_slice(&(RESERVED_SECTORS as u16).to_le_bytes());
    boot[16] = FAT_COUNT as u8;
    // Root entries (17) and 16-bit sector count (19) are 0 on FAT32.
    boot[21] = 0xf8;
    // 16-bit FAT size (22) is 0; sectors per track and heads, for BIOSes.
    boot[24..26].copy_from_slice(&63u16.to_le_bytes());
    boot[26..28].copy_from_slice(&255u16.to_le_bytes());
    boot[28..32].copy_from_slice(&hidden_sectors.to_le_bytes());
    let total = u32::try_from(sectors).map_err(|_| anyhow::anyhow!("file system too large"))?;
    boot[32..36].copy_from_slice(&total.to_le_bytes());
    boot[36..40].copy_from_slice(&(g.fat_sectors as u32).to_le_bytes());
    // Flags (40) 0: both FATs mirrored; version (42) 0.0.
    boot[44..48].copy_from_slice(&ROOT_CLUSTER.to_le_bytes());
    boot[48..50].copy_from_slice(&1u16.to_le_bytes());
    boot[50..52].copy_from_slice(&6u16.to_le_bytes());
    boot[64] = 0x80;
    boot[66] = 0x29;
    boot[67..71].copy_from_slice(&volume_id.to_le_bytes());
    boot[71..82].copy_from_slice(&label_bytes);
    boot[82..90].copy_from_slice(b"FAT32   ");
    boot[510..512].copy_from_slice(&[0x55, 0xaa]);

    let mut info = [0u8; SECTOR as usize];
    info[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    info[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    info[488..492].copy_from_slice(&((g.clusters - used) as u32).to_le_bytes());
    info[492..496].copy_from_slice(&(next as u32).to_le_bytes());
    info[508..512].copy_from_slice(&0xaa55_0000u32.to_le_bytes());

    let mut fat = vec![0u8; (g.fat_sectors * SECTOR) as usize];
    let mut set = |cluster: u64, value: u32| {
        fat[cluster as usize * 4..][..4].copy_from_slice(&value.to_le_bytes());
    };
    set(0, 0x0fff_fff8);
    set(1, END_OF_CHAIN);
    for &(first, count) in &chains {
        let first = u64::from(first);
        for c in first..first + count {
            let value = if c + 1 == first + count {
                END_OF_CHAIN
            } else {
                c as u32 + 1
            };
            set(c, value);
        }
    }

    let mut regions = vec![
        (0, boot.to_vec()),
        (SECTOR, info.to_vec()),
        (6 * SECTOR, boot.to_vec()),
        (7 * SECTOR, info.to_vec()),
    ];
    for copy in 0..FAT_COUNT {
        regions.push((
            (RESERVED_SECTORS + copy * g.fat_sectors) * SECTOR,
            fat.clone(),
        ));
    }
    regions.push((g.cluster_offset(ROOT_CLUSTER), root.concat()));
    let mut cluster = ROOT_CLUSTER as u64 + root_clusters;
    for f in files {
        if !f.data.is_empty() {
            regions.push((g.cluster_offset(cluster as u32), f.data.to_vec()));
        }
        cluster += g.clusters_for(f.data.len() as u64);
    }
    Ok(regions)
}

/// A file found by [`read_root`].
#[derive(Debug, PartialEq, Eq)]
pub struct ReadFile {
    /// The long name if there is one, else the short name (`NAME.EXT`).
    pub name: String,
    pub data: Vec<u8>,
}

/// The volume label and the files of the root directory of a FAT32 file
/// system read through `read(offset, buf)`, checking what this module
/// writes relies on: signatures, geometry, both FATs equal, chains that
/// stay in range and end.
pub fn read_root(
    read: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
) -> Result<(String, Vec<ReadFile>)> {
    let mut boot = [0u8; SECTOR as usize];
    read(0, &mut boot)?;
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    ensure!(boot[510..] == [0x55, 0xaa], "no boot sector signature");
    ensure!(&boot[82..90] == b"FAT32   ", "not FAT32");
    ensure!(u64::from(u16_at(&boot, 11)) == SECTOR, "sector size");
    let spc = u64::from(boot[13]);
    let reserved = u64::from(u16_at(&boot, 14));
    let fats = u64::from(boot[16]);
    let sectors = u64::from(u32_at(&boot, 32));
    let fat_sectors = u64::from(u32_at(&boot, 36));
    let root_cluster = u32_at(&boot, 44);
    ensure!(spc.is_power_of_two() && fats >= 1, "bad geometry");
    let data_start = (reserved + fats * fat_sectors) * SECTOR;
    let clusters = (sectors - reserved - fats * fat_sectors) / spc;
    ensure!(clusters >= MIN_FAT32_CLUSTERS, "too few clusters for FAT32");
    let mut info = [0u8; SECTOR as usize];
    read(u64::from(u16_at(&boot, 48)) * SECTOR, &mut info)?;
    ensure!(
        u32_at(&info, 0) == 0x4161_5252 && u32_at(&info, 484) == 0x6141_7272,
        "bad FSInfo sector"
    );
    let mut fat = vec![0u8; (fat_sectors * SECTOR) as usize];
    read(reserved * SECTOR, &mut fat)?;
    let mut other = vec![0u8; fat.len()];
    for copy in 1..fats {
        read((reserved + copy * fat_sectors) * SECTOR, &mut other)?;
        ensure!(other == fat, "FAT copy {copy} differs from the first");
    }
    let cluster_bytes = spc * SECTOR;
    let mut read_chain = |first: u32, size: Option<u64>| -> Result<Vec<u8>> {
        let mut data = Vec::new();
        let mut cluster = first;
        let mut steps = 0;
        loop {
            ensure!(
                (2..clusters + 2).contains(&u64::from(cluster)),
                "cluster {cluster} out of range"
            );
            steps += 1;
            ensure!(steps <= clusters, "cluster chain loops");
            let mut buf = vec![0u8; cluster_bytes as usize];
            read(
                data_start + u64::from(cluster - 2) * cluster_bytes,
                &mut buf,
            )?;
            data.extend(buf);
            let next = u32_at(&fat, cluster as usize * 4) & 0x0fff_ffff;
            if next >= 0x0fff_fff8 {
                break;
            }
            cluster = next;
        }
        if let Some(size) = size {
            ensure!(
                data.len() as u64 >= size && data.len() as u64 - size < cluster_bytes,
                "chain of {} bytes for a file of {size}",
                data.len()
            );
            data.truncate(size as usize);
        }
        Ok(data)
    };
    let root = read_chain(root_cluster, None)?;
    let mut label = String::new();
    let mut files = Vec::new();
    let mut long: Vec<u16> = Vec::new();
    for e in root.chunks_exact(32) {
        match e[0] {
            0 => break,
            0xe5 => continue,
            _ => {}
        }
        if e[11] == ATTR_LONG_NAME {
            if e[0] & 0x40 != 0 {
                long.clear();
            }
            let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            let part: Vec<u16> = offsets
                .iter()
                .map(|&at| u16_at(e, at))
                .take_while(|&u| u != 0 && u != 0xffff)
                .collect();
            // Parts come last first.
            long.splice(0..0, part);
            continue;
        }
        let short = String::from_utf8_lossy(&e[..11]).to_string();
        if e[11] & ATTR_VOLUME_ID != 0 {
            label = short.trim_end().to_string();
            continue;
        }
        let base = short[..8].trim_end();
        let ext = short[8..].trim_end();
        let short_name = if ext.is_empty() {
            base.to_string()
        } else {
            format!("{base}.{ext}")
        };
        let name = if long.is_empty() {
            short_name
        } else {
            String::from_utf16(&long)?
        };
        long.clear();
        let first = (u32::from(u16_at(e, 20)) << 16) | u32::from(u16_at(e, 26));
        let size = u64::from(u32_at(e, 28));
        let data = if first == 0 {
            ensure!(size == 0, "{name}: {size} bytes but no cluster");
            Vec::new()
        } else {
            read_chain(first, Some(size))?
        };
        files.push(ReadFile { name, data });
    }
    Ok((label, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system as one buffer.
    fn build(sectors: u64, files: &[File]) -> Vec<u8> {
        let mut fs = vec![0u8; (sectors * SECTOR) as usize];
        for (at, bytes) in format(sectors, 2048, "boot", 0x1234_5678, files).unwrap() {
            fs[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
        }
        fs
    }

    fn read_back(fs: &[u8]) -> Result<(String, Vec<ReadFile>)> {
        read_root(&mut |at, buf| {
            buf.copy_from_slice(&fs[at as usize..at as usize + buf.len()]);
            Ok(())
        })
    }

    #[test]
    fn geometry() {
        let g = Geometry::for_sectors(64 * 2048).unwrap();
        assert_eq!(g.sectors_per_cluster, 1);
        assert_eq!(g.fat_sectors, 1024);
        assert_eq!(g.clusters, 64 * 2048 - 32 - 2 * 1024);
        // Every cluster (and the two reserved entries) has a FAT entry.
        assert!((g.clusters + 2) * 4 <= g.fat_sectors * SECTOR);
        let big = Geometry::for_sectors(1024 * 2048).unwrap();
        assert_eq!(big.sectors_per_cluster, 8);
        let e = Geometry::for_sectors(16 * 2048).unwrap_err().to_string();
        assert!(e.contains("too few for FAT32"), "{e}");
    }

    #[test]
    fn names() {
        assert_eq!(&short_name("boot.scr").unwrap(), b"BOOT    SCR");
        assert_eq!(&short_name("Image").unwrap(), b"IMAGE      ");
        for bad in ["", "toolongname", "a.long", "a b", ".x", "a.b.c"] {
            assert!(short_name(bad).is_err(), "{bad}");
        }
        // The example of the specification's checksum algorithm, by hand:
        // each step rotates right by one and adds the next byte.
        let mut sum = 0u8;
        for &b in b"IMAGE      " {
            sum = (if sum & 1 != 0 { 0x80 } else { 0 }) + (sum >> 1);
            sum = sum.wrapping_add(b);
        }
        assert_eq!(short_name_checksum(b"IMAGE      "), sum);
        // "Image" gets one long-name entry before its short entry.
        let entries = dir_entries("Image", 5, 10).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0][0], 0x41);
        assert_eq!(entries[0][1..11], *b"I\0m\0a\0g\0e\0");
        assert_eq!(entries[0][14..18], [0, 0, 0xff, 0xff]);
        assert_eq!(dir_entries("IMAGE", 5, 10).unwrap().len(), 1);
        let long = dir_entries("abcdefghijklmnopq.txt", 5, 10);
        assert!(long.is_err());
    }

    #[test]
    fn writes_and_reads_back() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let files = [
            File {
                name: "Image",
                data: &big,
            },
            File {
                name: "boot.scr",
                data: b"script",
            },
            File {
                name: "EMPTY",
                data: b"",
            },
            File {
                name: "SECTOR.BIN",
                data: &[9; 512],
            },
        ];
        let fs = build(64 * 2048, &files);
        let (label, read) = read_back(&fs).unwrap();
        assert_eq!(label, "BOOT");
        let got: Vec<(&str, &[u8])> = read
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_slice()))
            .collect();
        let want: Vec<(&str, &[u8])> = files.iter().map(|f| (f.name, f.data)).collect();
        assert_eq!(got, want);
        // FSInfo: free clusters and the next free one.
        let g = Geometry::for_sectors(64 * 2048).unwrap();
        let used = 1 + 300_000u64.div_ceil(512) + 1 + 1;
        assert_eq!(
            u32::from_le_bytes(fs[512 + 488..512 + 492].try_into().unwrap()) as u64,
            g.clusters - used
        );
        assert_eq!(fs[..512], fs[6 * 512..7 * 512]);
        // Deterministic.
        assert!(fs == build(64 * 2048, &files));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let big = vec![1u8; 40 << 20];
        let e = format(
            40 * 2048,
            0,
            "boot",
            0,
            &[File {
                name: "A",
                data: &big,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("more than"), "{e}");
        let two = [
            File {
                name: "a",
                data: b"",
            },
            File {
                name: "A",
                data: b"",
            },
        ];
        assert!(format(64 * 2048, 0, "boot", 0, &two).is_err());
    }
}
