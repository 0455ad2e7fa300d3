//! `cargo xtask image [--board B] [--config FILE] [-o FILE]`: a flashable
//! SD-card or eMMC image for a board, booted by U-Boot.
//!
//! The image is a GPT disk: the board's shared disk (`board/<board>/
//! disk.toml`, what `cargo xtask disk` writes) with a boot partition put in
//! front of it. Partition 1, "boot", is FAT32 (type EFI System, so U-Boot
//! counts it as bootable) and holds the hypervisor built for the config as
//! `Image` and the U-Boot script `boot.scr` that loads and boots it. Then
//! come the shared disk's partitions: same names, types, sizes, contents
//! and partition GUIDs, each moved up by the boot partition's size, so the
//! storage mediator finds them by name (`gpt = "..."` in configs) on the
//! card as it does on QEMU's disk. The disk grows by the boot partition.
//!
//! The boot partition is [`BOOT_MIB`] MiB unless the files need more (then
//! the next multiple of it). The image is a pure function of the hypervisor
//! image, the board and `disk.toml`: GUIDs and the FAT volume ID are derived
//! from names, timestamps are fixed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use sha2::{Digest, Sha256};
use shared_devices::gpt::{self, Guid, SECTOR_SIZE};

use crate::disk::{self, Fill, Layout};
use crate::fat;
use crate::paths;
use crate::process::step;

const SECTOR: u64 = SECTOR_SIZE as u64;
const MIB: u64 = 1 << 20;
/// Default size of the boot partition.
pub const BOOT_MIB: u64 = 64;
/// The boot partition's GPT name and FAT label.
pub const BOOT_NAME: &str = "boot";
/// Where the boot partition starts: 1 MiB, the usual alignment.
const BOOT_FIRST_LBA: u64 = MIB / SECTOR;
/// C12A7328-F81F-11D2-BA4B-00A0C93EC93B, the EFI System partition.
pub const EFI_SYSTEM: Guid = Guid::from_u128(0xc12a_7328_f81f_11d2_ba4b_00a0_c93e_c93b);

/// `target/image/<board>.img`.
pub fn default_output(board: &str) -> PathBuf {
    paths::target_dir()
        .join("image")
        .join(format!("{board}.img"))
}

/// A GUID from a hash of `seed` (RFC 9562 version 8), as `disk` derives
/// its own.
fn derived_guid(seed: &str) -> Guid {
    let hash = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Guid::from_u128(u128::from_be_bytes(bytes))
}

// ---------------------------------------------------------------------------
// boot.scr

/// The boot script for a hypervisor linked at `load_address`. Distro boot
/// (`scan_dev_for_scripts`, or the script bootmeth of standard boot) runs
/// it with `devtype`, `devnum` and `distro_bootpart` naming the partition
/// it was found on.
pub fn script_text(board: &str, load_address: u64) -> String {
    format!(
        "\
# boot.scr for board {board}, written by `cargo xtask image`.
# Run by U-Boot's distro boot from the partition it was found on.
echo \"Loading the hypervisor from ${{devtype}} ${{devnum}}:${{distro_bootpart}}\"
# The hypervisor's raw arm64 Image, to the address it is linked for.
load ${{devtype}} ${{devnum}}:${{distro_bootpart}} {load_address:#x} Image
# Boot it (no initrd) with the device tree U-Boot itself runs on; the
# hypervisor reads the platform from it.
booti {load_address:#x} - ${{fdtcontroladdr}}
"
    )
}

/// `mkimage -A arm64 -O linux -T script -C none -n NAME -d SCRIPT` with a
/// timestamp of 0: a legacy U-Boot image (`include/image.h`) whose payload
/// is a list of one file: its length and a 0 as big-endian u32s, then the
/// script, unpadded.
pub fn legacy_script(name: &str, script: &[u8]) -> Result<Vec<u8>> {
    const MAGIC: u32 = 0x2705_1956;
    const OS_LINUX: u8 = 5;
    const ARCH_ARM64: u8 = 22;
    const TYPE_SCRIPT: u8 = 6;
    const COMP_NONE: u8 = 0;
    ensure!(name.len() < 32, "image name {name:?}: at most 31 bytes");
    let len = u32::try_from(script.len()).context("script too long")?;
    let mut data = Vec::with_capacity(script.len() + 8);
    data.extend(len.to_be_bytes());
    data.extend(0u32.to_be_bytes());
    data.extend(script);
    let mut h = [0u8; 64];
    h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    // Header CRC (4..8) last; timestamp (8..12) 0.
    h[12..16].copy_from_slice(&(data.len() as u32).to_be_bytes());
    // Load address (16..20) and entry point (20..24) 0.
    h[24..28].copy_from_slice(&gpt::crc32(&data).to_be_bytes());
    h[28..32].copy_from_slice(&[OS_LINUX, ARCH_ARM64, TYPE_SCRIPT, COMP_NONE]);
    h[32..32 + name.len()].copy_from_slice(name.as_bytes());
    let crc = gpt::crc32(&h);
    h[4..8].copy_from_slice(&crc.to_be_bytes());
    let mut out = h.to_vec();
    out.extend(data);
    Ok(out)
}

// ---------------------------------------------------------------------------
// GPT

/// One partition of the image.
#[derive(Clone, Debug)]
pub struct ImagePartition {
    pub name: String,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub content: Content,
}

#[derive(Clone, Debug)]
pub enum Content {
    /// Regions relative to the partition start; zero elsewhere.
    Regions(Vec<(u64, Vec<u8>)>),
    Fill(Fill),
}

impl ImagePartition {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    pub fn size(&self) -> u64 {
        (self.last_lba + 1 - self.first_lba) * SECTOR
    }
}

/// A whole image: its size and partitions in table order.
#[derive(Clone, Debug)]
pub struct DiskImage {
    pub sectors: u64,
    pub disk_guid: Guid,
    pub partitions: Vec<ImagePartition>,
}

impl DiskImage {
    /// The image for the shared disk `layout` with a boot partition of
    /// at least `boot_mib` MiB holding `files`.
    pub fn assemble(layout: &Layout, boot_mib: u64, files: &[fat::File]) -> Result<DiskImage> {
        ensure!(
            layout.partitions.iter().all(|p| p.name != BOOT_NAME),
            "{} already has a partition named {BOOT_NAME:?}, the boot partition's name",
            layout.name
        );
        let file_bytes: u64 = files.iter().map(|f| f.data.len() as u64).sum();
        // Room for the FATs, the directory and rounding, generously.
        let needed = file_bytes + file_bytes / 64 + MIB;
        let boot_mib = needed.div_ceil(boot_mib * MIB).max(1) * boot_mib;
        let boot_sectors = boot_mib * (MIB / SECTOR);
        let seed = |what: &str| format!("image:{}:{what}", layout.name);
        let volume_id =
            u32::from_le_bytes(Sha256::digest(seed("volume").as_bytes())[..4].try_into()?);
        let boot_regions = fat::format(
            boot_sectors,
            BOOT_FIRST_LBA as u32,
            BOOT_NAME,
            volume_id,
            files,
        )?;
        let mut partitions = vec![ImagePartition {
            name: BOOT_NAME.to_string(),
            type_guid: EFI_SYSTEM,
            unique_guid: derived_guid(&seed("partition:boot")),
            first_lba: BOOT_FIRST_LBA,
            last_lba: BOOT_FIRST_LBA + boot_sectors - 1,
            content: Content::Regions(boot_regions),
        }];
        // The shared disk's partitions start at 1 MiB or later: moved up by
        // the boot partition, they follow it and keep their alignment.
        for p in &layout.partitions {
            ensure!(
                p.first_lba >= BOOT_FIRST_LBA,
                "{}: starts before 1 MiB",
                p.name
            );
            partitions.push(ImagePartition {
                name: p.name.clone(),
                type_guid: Guid::LINUX_FILESYSTEM,
                unique_guid: p.unique_guid,
                first_lba: p.first_lba + boot_sectors,
                last_lba: p.last_lba + boot_sectors,
                content: Content::Fill(p.fill),
            });
        }
        Ok(DiskImage {
            sectors: layout.sectors + boot_sectors,
            disk_guid: derived_guid(&seed("disk")),
            partitions,
        })
    }

    pub fn size(&self) -> u64 {
        self.sectors * SECTOR
    }

    /// Writes the image to `path` (replacing it, through a temporary file);
    /// zero ranges are left sparse.
    pub fn write(&self, path: &Path) -> Result<()> {
        let entries = disk::gpt_entries(self.partitions.iter().map(|p| disk::GptEntry {
            type_guid: p.type_guid,
            unique_guid: p.unique_guid,
            first_lba: p.first_lba,
            last_lba: p.last_lba,
            name: &p.name,
        }));
        let tables = disk::gpt_regions(self.sectors, self.disk_guid, &entries);
        let mut regions: Vec<(u64, &[u8])> = tables
            .iter()
            .map(|(at, bytes)| (*at, bytes.as_slice()))
            .collect();
        let mut patterned = Vec::new();
        for p in &self.partitions {
            match &p.content {
                Content::Regions(within) => {
                    for (at, bytes) in within {
                        ensure!(at + bytes.len() as u64 <= p.size(), "{}: overflow", p.name);
                        regions.push((p.offset() + at, bytes));
                    }
                }
                Content::Fill(Fill::Zero) => {}
                Content::Fill(Fill::Pattern) => patterned.push(p.offset()..p.offset() + p.size()),
            }
        }
        disk::write_sparse(path, self.size(), regions, patterned)
    }
}

// ---------------------------------------------------------------------------
// The command

/// `load_address` of `board/<board>/board.toml`.
pub fn load_address(board: &str) -> Result<u64> {
    let path = paths::boards_dir().join(board).join("board.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", paths::display(&path)))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}: invalid", paths::display(&path)))?;
    match table.get("load_address") {
        Some(toml::Value::Integer(a)) if *a >= 0 => Ok(*a as u64),
        Some(other) => bail!(
            "{}: load_address {other} is not an address",
            paths::display(&path)
        ),
        None => bail!(
            "{}: no load_address (where the hypervisor Image is loaded)",
            paths::display(&path)
        ),
    }
}

/// The image for `board`'s disk layout with `hypervisor` (a raw arm64
/// Image) and its boot script.
pub fn assemble_for_board(board: &str, hypervisor: &[u8]) -> Result<DiskImage> {
    let layout_file = disk::layout_path(board);
    let layout = if layout_file.is_file() {
        Layout::load(&layout_file)?
    } else {
        // No shared disk: the image is the boot partition alone.
        Layout::parse(&format!("name = \"{board}\"\nsize_mib = 2\n"))?
    };
    let script = legacy_script(
        "hypervisor boot script",
        script_text(board, load_address(board)?).as_bytes(),
    )?;
    let files = [
        fat::File {
            name: "Image",
            data: hypervisor,
        },
        fat::File {
            name: "boot.scr",
            data: &script,
        },
    ];
    DiskImage::assemble(&layout, BOOT_MIB, &files)
}

/// SHA-256 of a file, as hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex(&hash.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an image holds, read back from it: its partitions through the
/// hypervisor's GPT reader, the boot partition's files through
/// [`fat::read_root`], its size and SHA-256.
pub fn describe(image: &Path) -> Result<String> {
    let table = disk::partitions(image)?;
    let mut text = format!("{}\n", paths::display(image));
    text.push_str(&format!(
        "  {:<3} {:<16} {:>12} {:>12}\n",
        "#", "partition", "offset", "size"
    ));
    for (i, (name, extent)) in table.iter().enumerate() {
        text.push_str(&format!(
            "  {:<3} {:<16} {:>12} {:>12}  ({} MiB at {} MiB)\n",
            i + 1,
            name,
            extent.first_lba() * SECTOR,
            extent.bytes(),
            extent.bytes() / MIB,
            extent.first_lba() * SECTOR / MIB,
        ));
    }
    let Some((_, boot)) = table.iter().find(|(n, _)| n == BOOT_NAME) else {
        bail!("{}: no partition named {BOOT_NAME:?}", image.display());
    };
    let mut file = File::open(image)?;
    let base = boot.first_lba() * SECTOR;
    let limit = boot.bytes();
    let (label, files) = fat::read_root(&mut |at, buf| {
        ensure!(
            at + buf.len() as u64 <= limit,
            "read past the boot partition"
        );
        file.seek(SeekFrom::Start(base + at))?;
        file.read_exact(buf)?;
        Ok(())
    })
    .context("the boot partition is not a FAT32 file system")?;
    text.push_str(&format!("  files in {BOOT_NAME} (FAT32, label {label}):\n"));
    for f in &files {
        text.push_str(&format!(
            "    {:<10} {:>10} bytes  sha256 {}\n",
            f.name,
            f.data.len(),
            hex(&Sha256::digest(&f.data))
        ));
    }
    let size = std::fs::metadata(image)?.len();
    text.push_str(&format!(
        "  image: {size} bytes ({} MiB), sha256 {}\n",
        size / MIB,
        sha256_file(image)?
    ));
    Ok(text)
}

const USAGE: &str =
    "usage: cargo xtask image [--board B] [--config FILE] [--release-profile production] [-o FILE]";

/// `cargo xtask image [--board B] [--config FILE] [--release-profile NAME] [-o FILE]`.
pub fn command(args: &[String]) -> Result<()> {
    let mut board = None;
    let mut profile = crate::images::Profile::Development;
    let mut config = None;
    let mut output = None;
    let mut args = crate::cli::Options::new(args, USAGE);
    while let Some(option) = args.next_option() {
        match option {
            "--board" => board = Some(args.value(option)?.to_owned()),
            "--config" => config = Some(paths::absolute_existing(Path::new(args.value(option)?))?),
            "-o" | "--output" => output = Some(PathBuf::from(args.value(option)?)),
            "--release-profile" => profile = crate::images::Profile::parse(args.value(option)?)?,
            _ => return Err(args.unexpected(option)),
        }
    }
    let (board, config) = match (board, config) {
        (Some(board), Some(config)) => {
            let for_board = crate::board::name_for_config(&config)?;
            ensure!(
                for_board == board,
                "{} is a config for board {for_board}, not {board}",
                paths::display(&config)
            );
            (board, config)
        }
        (None, Some(config)) => (crate::board::name_for_config(&config)?, config),
        (board, None) => {
            let board = board.unwrap_or_else(|| "qemu-virt".to_string());
            let config = paths::root()
                .join("config")
                .join(&board)
                .join("default.toml");
            (board, paths::absolute_existing(&config)?)
        }
    };
    let output = output.unwrap_or_else(|| default_output(&board));
    write_for(&board, &config, profile, &output)?;
    Ok(())
}

/// Builds the hypervisor of `profile` for `config` and writes `board`'s
/// image with it to `output`, printing what it holds.
pub fn write_for(
    board: &str,
    config: &Path,
    profile: crate::images::Profile,
    output: &Path,
) -> Result<()> {
    let hypervisor = crate::build::run(config, profile)?;
    let bytes = std::fs::read(&hypervisor)
        .with_context(|| format!("cannot read {}", paths::display(&hypervisor)))?;
    step(format!("Image for board {board}"));
    let image = assemble_for_board(board, &bytes)?;
    image.write(output)?;
    println!("wrote {}", paths::display(output));
    print!("{}", describe(output)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Cmd, find_program};

    fn scratch(name: &str) -> PathBuf {
        let dir = paths::target_dir().join("xtask-tests").join("image");
        paths::create_dir(&dir).unwrap();
        dir.join(name)
    }

    /// `mkimage -A arm64 -O linux -T script -C none -n "boot script"` of
    /// "echo hi\n" with SOURCE_DATE_EPOCH=0 (u-boot-tools 2023.01).
    const KNOWN_GOOD: [u8; 80] = [
        0x27, 0x05, 0x19, 0x56, 0x05, 0x58, 0xb8, 0xe2, 0, 0, 0, 0, 0, 0, 0, 0x10, //
        0, 0, 0, 0, 0, 0, 0, 0, 0xd9, 0x34, 0x01, 0x62, 0x05, 0x16, 0x06, 0x00, //
        b'b', b'o', b'o', b't', b' ', b's', b'c', b'r', b'i', b'p', b't', 0, 0, 0, 0, 0, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
        0, 0, 0, 8, 0, 0, 0, 0, b'e', b'c', b'h', b'o', b' ', b'h', b'i', b'\n',
    ];

    #[test]
    fn legacy_script_matches_mkimage() {
        let out = legacy_script("boot script", b"echo hi\n").unwrap();
        assert_eq!(out, KNOWN_GOOD);
        // Fields one by one.
        let be = |at: usize| u32::from_be_bytes(out[at..at + 4].try_into().unwrap());
        assert_eq!(be(0), 0x2705_1956);
        let mut header = out[..64].to_vec();
        header[4..8].fill(0);
        assert_eq!(be(4), gpt::crc32(&header));
        assert_eq!(be(12) as usize, out.len() - 64);
        assert_eq!(be(24), gpt::crc32(&out[64..]));
        assert_eq!(out[28..32], [5, 22, 6, 0]);
        assert!(legacy_script(&"x".repeat(32), b"").is_err());
    }

    /// mkimage itself agrees on the real script, and dumpimage reads ours.
    #[test]
    fn legacy_script_against_u_boot_tools() {
        let Some(mkimage) = find_program("mkimage") else {
            eprintln!("mkimage (u-boot-tools) is not installed: not checking with it");
            return;
        };
        let text = script_text("qemu-virt", 0x4008_0000);
        let input = scratch("boot.txt");
        let theirs = scratch("theirs.scr");
        std::fs::write(&input, &text).unwrap();
        Cmd::new(mkimage)
            .env("SOURCE_DATE_EPOCH", "0")
            .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
            .args(["-n", "hypervisor boot script", "-d"])
            .arg(&input)
            .arg(&theirs)
            .read()
            .unwrap();
        let ours = legacy_script("hypervisor boot script", text.as_bytes()).unwrap();
        assert_eq!(std::fs::read(&theirs).unwrap(), ours);
        if let Some(dumpimage) = find_program("dumpimage") {
            let file = scratch("ours.scr");
            std::fs::write(&file, &ours).unwrap();
            let out = Cmd::new(dumpimage).arg("-l").arg(&file).read().unwrap();
            assert!(out.contains("AArch64 Linux Script (uncompressed)"), "{out}");
            assert!(out.contains("hypervisor boot script"), "{out}");
        }
    }

    #[test]
    fn script_loads_and_boots_at_the_load_address() {
        let text = script_text("qemu-virt", 0x4008_0000);
        let commands: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            commands[1..],
            [
                "load ${devtype} ${devnum}:${distro_bootpart} 0x40080000 Image",
                "booti 0x40080000 - ${fdtcontroladdr}",
            ]
        );
        assert_eq!(load_address("qemu-virt").unwrap(), 0x4008_0000);
    }

    fn qemu_virt_image(hypervisor: &[u8]) -> DiskImage {
        assemble_for_board("qemu-virt", hypervisor).unwrap()
    }

    fn fake_hypervisor() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i % 253) as u8).collect()
    }

    #[test]
    fn layout_is_boot_then_the_shared_disk() {
        let image = qemu_virt_image(&fake_hypervisor());
        let layout = Layout::load(&disk::layout_path("qemu-virt")).unwrap();
        let boot = &image.partitions[0];
        assert_eq!(
            (boot.name.as_str(), boot.first_lba, boot.size()),
            (BOOT_NAME, 2048, 64 * MIB)
        );
        assert_eq!(
            boot.type_guid.to_string().to_uppercase(),
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
        );
        let shift = 64 * MIB / SECTOR;
        assert_eq!(image.partitions.len(), layout.partitions.len() + 1);
        for (ours, theirs) in image.partitions[1..].iter().zip(&layout.partitions) {
            assert_eq!(ours.name, theirs.name);
            assert_eq!(ours.unique_guid, theirs.unique_guid);
            assert_eq!(ours.type_guid, Guid::LINUX_FILESYSTEM);
            assert_eq!(ours.first_lba, theirs.first_lba + shift);
            assert_eq!(ours.last_lba, theirs.last_lba + shift);
        }
        assert_eq!(image.sectors, layout.sectors + shift);
        // Nothing overlaps, everything lies between the two tables.
        let mut previous_end = disk::FIRST_USABLE;
        for p in &image.partitions {
            assert!(p.first_lba >= previous_end, "{}", p.name);
            assert!(p.first_lba % 2048 == 0, "{} is not MiB aligned", p.name);
            previous_end = p.last_lba + 1;
        }
        assert!(previous_end <= image.sectors - disk::FIRST_USABLE + 1);

        // A boot partition grows for files that need more.
        let big = vec![7u8; 70 << 20];
        let grown = qemu_virt_image(&big);
        assert_eq!(grown.partitions[0].size(), 128 * MIB);
        // The name is taken.
        let taken = Layout::parse(
            "name = \"x\"\nsize_mib = 8\n[[partition]]\nname = \"boot\"\nsize_mib = 1\n",
        )
        .unwrap();
        let e = DiskImage::assemble(&taken, 64, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("already has a partition named \"boot\""), "{e}");
    }

    #[test]
    fn written_image_reads_back_and_is_deterministic() {
        let hypervisor = fake_hypervisor();
        let path = scratch("qemu-virt.img");
        qemu_virt_image(&hypervisor).write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, (64 + 64) * MIB);

        // Protective MBR and both headers.
        assert_eq!(bytes[446 + 4], 0xee);
        assert_eq!(bytes[510..512], [0x55, 0xaa]);
        let last = bytes.len() as u64 / SECTOR - 1;
        assert_eq!(&bytes[(last * SECTOR) as usize..][..8], b"EFI PART");
        assert_eq!(gpt::parse_all(&bytes), Ok(5));
        assert_eq!(
            bytes[1024..1024 + 16384],
            bytes[((last - 32) * SECTOR) as usize..][..16384]
        );

        // The hypervisor's reader finds the shared partitions by name.
        let names: Vec<String> = disk::partitions(&path)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["boot", "cluster-odo", "ivi-data", "shared-ro", "hv-records"]
        );
        let ro = disk::read_partition(&path, "shared-ro", 0, 8).unwrap();
        assert_eq!(ro, [0xa5, 0xa5, 0x5a, 0x5a, 0xa1, 0xa5, 0x5a, 0x5a]);

        // The boot partition's files.
        let text = describe(&path).unwrap();
        let sha = hex(&Sha256::digest(&hypervisor));
        assert!(
            text.contains(&format!("Image         3000000 bytes  sha256 {sha}")),
            "{text}"
        );
        assert!(text.contains("boot.scr"), "{text}");
        assert!(
            text.contains("  1   boot                  1048576     67108864"),
            "{text}"
        );
        assert!(
            text.contains(&format!("image: {} bytes (128 MiB)", 128 * MIB)),
            "{text}"
        );

        // Same inputs, same bytes.
        let again = scratch("again.img");
        qemu_virt_image(&hypervisor).write(&again).unwrap();
        assert!(std::fs::read(&again).unwrap() == bytes);
    }

    /// mtools and fsck.fat accept the boot partition; sgdisk the table.
    #[test]
    fn host_tools_accept_the_image() {
        let hypervisor = fake_hypervisor();
        let path = scratch("tools.img");
        let image = qemu_virt_image(&hypervisor);
        image.write(&path).unwrap();
        let boot = &image.partitions[0];
        // The boot partition alone, for fsck.fat.
        let bytes = std::fs::read(&path).unwrap();
        let fs = scratch("boot.fat");
        std::fs::write(
            &fs,
            &bytes[boot.offset() as usize..][..boot.size() as usize],
        )
        .unwrap();
        match find_program("fsck.fat") {
            Some(fsck) => {
                let out = Cmd::new(fsck).args(["-n", "-v"]).arg(&fs).read().unwrap();
                // The label counts as a file.
                assert!(
                    out.contains("boot.fat: 3 files, 5863/128992 clusters"),
                    "{out}"
                );
            }
            None => eprintln!("fsck.fat (dosfstools) is not installed: not checking with it"),
        }
        match find_program("mcopy") {
            Some(mcopy) => {
                let at = format!("{}@@{}", path.display(), boot.offset());
                let copy = scratch("copied.scr");
                let _ = std::fs::remove_file(&copy);
                Cmd::new(mcopy)
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .args(["-i", &at, "::boot.scr"])
                    .arg(&copy)
                    .read()
                    .unwrap();
                let script = std::fs::read(&copy).unwrap();
                assert!(
                    String::from_utf8_lossy(&script)
                        .contains("booti 0x40080000 - ${fdtcontroladdr}")
                );
                let out = Cmd::new("mdir")
                    .env("MTOOLS_SKIP_CHECK", "1")
                    .args(["-i", &at, "::"])
                    .read()
                    .unwrap();
                assert!(out.contains("Image"), "{out}");
                assert!(out.contains("boot.scr"), "{out}");
                assert!(out.contains("Volume in drive : is BOOT"), "{out}");
            }
            None => eprintln!("mtools is not installed: not checking with it"),
        }
        match find_program("sgdisk") {
            Some(sgdisk) => {
                let out = Cmd::new(&sgdisk).arg("-v").arg(&path).read().unwrap();
                assert!(out.contains("No problems found"), "{out}");
                let out = Cmd::new(sgdisk).arg("-p").arg(&path).read().unwrap();
                assert!(
                    out.contains("2048          133119   64.0 MiB    EF00  boot"),
                    "{out}"
                );
            }
            None => eprintln!("sgdisk (gdisk) is not installed: not checking with it"),
        }
    }
}
