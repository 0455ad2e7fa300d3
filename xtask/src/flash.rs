//! `cargo xtask flash --device /dev/sdX [--image FILE] [--yes]
//! [--force-not-removable] [--force-small]`: writes an image from `cargo
//! xtask image` to a removable disk (an SD card in a reader) and verifies it.
//!
//! Refused before anything is written: a device that does not exist, a
//! partition (`/dev/sdb1`) or anything that is not a whole disk in
//! `/sys/block`, something other than a block device, a disk with any of
//! its partitions mounted or used as swap (`/proc/mounts`,
//! `/proc/self/mountinfo`, `/proc/swaps`), a disk that is not removable
//! (`/sys/block/<dev>/removable` is not 1 and it is not an SD card by
//! `device/type`) unless `--force-not-removable`, and a disk smaller than the
//! image unless `--force-small`.
//!
//! `--force-small` writes the image cut to the disk's size, but only when
//! every partition of the image's GPT still fits before the backup table:
//! the GPT is then rewritten for the disk's size (primary header's last
//! usable and backup LBAs, backup entries and header at the disk's end, as
//! `sgdisk -e` would), so the card holds a valid table. What is cut is the
//! free space after the last partition. A disk larger than the image gets
//! the image as is: the backup table then lies inside the disk, which
//! U-Boot, Linux and the hypervisor's reader accept.
//!
//! Before writing it shows the disk (vendor, model, size, current
//! partitions with their names) and asks for `yes` unless `--yes`. Then it
//! writes with a progress line on stderr, syncs (fsync, then BLKFLSBUF so
//! the read-back comes from the disk rather than the page cache), reads the
//! written range back and compares its SHA-256 with what was meant to be
//! written.
//!
//! Every sysfs, procfs and /dev path goes through a [`Root`]: `/` normally.
//! The hidden option `--root DIR` (for tests only) puts it at DIR, where a
//! fake `sys/`, `proc/` and a regular file standing for `dev/sdX` live;
//! only then are regular files accepted as devices.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use sha2::{Digest, Sha256};
use shared_devices::gpt::Guid;

use crate::image::{self, hex};
use crate::{disk, paths};

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// The GPT's first usable LBA, and the sectors the backup needs at the end.
const TABLE_SECTORS: u64 = 34;
const CHUNK: usize = 4 << 20;

/// Where `/` is for sysfs, procfs and /dev.
#[derive(Clone, Debug)]
pub struct Root {
    base: PathBuf,
    /// Tests only: regular files may stand for block devices.
    pub test_mode: bool,
}

impl Root {
    pub fn system() -> Root {
        Root {
            base: PathBuf::from("/"),
            test_mode: false,
        }
    }

    /// A fake root for tests.
    pub fn at(base: &Path) -> Root {
        Root {
            base: base.to_path_buf(),
            test_mode: true,
        }
    }

    /// `absolute` (e.g. `/sys/block/sdb`) below this root.
    pub fn path(&self, absolute: impl AsRef<Path>) -> PathBuf {
        let relative = absolute
            .as_ref()
            .strip_prefix("/")
            .unwrap_or(absolute.as_ref());
        self.base.join(relative)
    }

    /// The path as the system sees it (for messages).
    fn outside(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.base) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => path.to_path_buf(),
        }
    }

    fn read(&self, absolute: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(self.path(absolute))
            .ok()
            .map(|s| s.trim().to_string())
    }
}

/// A partition currently on the disk.
#[derive(Debug, PartialEq, Eq)]
pub struct CurrentPartition {
    /// Kernel name, e.g. `sdb1`.
    pub name: String,
    pub bytes: u64,
    /// GPT name (PARTNAME in its uevent), if any.
    pub label: Option<String>,
    /// `major:minor`.
    dev: Option<String>,
}

/// A whole disk that passed the checks that need no option.
#[derive(Debug)]
pub struct Disk {
    /// Kernel name, e.g. `sdb`.
    pub name: String,
    /// The device node as given (below the root).
    pub node: PathBuf,
    pub bytes: u64,
    pub removable: bool,
    pub description: String,
    pub partitions: Vec<CurrentPartition>,
}

/// Finds the disk for `device` (`/dev/sdb`, or a symlink to it) and
/// refuses what is not a whole, unmounted disk.
pub fn inspect(root: &Root, device: &str) -> Result<Disk> {
    ensure!(
        device.starts_with("/dev/"),
        "{device}: give a device under /dev, such as /dev/sdb"
    );
    let node = root.path(device);
    let resolved = node
        .canonicalize()
        .with_context(|| format!("{device}: no such device"))?;
    let name = resolved
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{device}: odd device name"))?
        .to_string();
    let sys = Path::new("/sys/block").join(&name);
    if !root.path(&sys).is_dir() {
        if root
            .path(format!("/sys/class/block/{name}/partition"))
            .is_file()
        {
            bail!(
                "{device} is a partition: give the whole disk it is on (e.g. /dev/sdb, not /dev/sdb1)"
            );
        }
        bail!("{device} is not a disk (no {})", sys.display());
    }
    let kind = std::fs::metadata(&resolved)?.file_type();
    {
        use std::os::unix::fs::FileTypeExt;
        ensure!(
            kind.is_block_device() || (root.test_mode && kind.is_file()),
            "{device} is not a block device"
        );
    }
    let number = |what: &str| -> Result<u64> {
        let text = root
            .read(sys.join(what))
            .with_context(|| format!("cannot read {}", sys.join(what).display()))?;
        text.parse()
            .with_context(|| format!("{}: {text:?} is not a number", sys.join(what).display()))
    };
    let bytes = number("size")? * SECTOR;
    // Built-in SD slots often say removable 0; their cards are SD all the same.
    let removable =
        number("removable")? == 1 || root.read(sys.join("device/type")).as_deref() == Some("SD");
    let vendor = root.read(sys.join("device/vendor")).unwrap_or_default();
    let model = root.read(sys.join("device/model")).unwrap_or_default();
    let description = match format!("{vendor} {model}").trim() {
        "" => "unknown model".to_string(),
        text => text.to_string(),
    };
    let mut partitions = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(root.path(&sys))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("partition").is_file())
        .collect();
    entries.sort_by_key(|e| {
        let partition = std::fs::read_to_string(e.path().join("partition")).unwrap_or_default();
        partition.trim().parse::<u64>().unwrap_or(u64::MAX)
    });
    for e in entries {
        let part = e.file_name().to_string_lossy().to_string();
        let dir = sys.join(&part);
        let sectors: u64 = root
            .read(dir.join("size"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let label = root.read(dir.join("uevent")).and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("PARTNAME=").map(str::to_string))
        });
        partitions.push(CurrentPartition {
            name: part,
            bytes: sectors * SECTOR,
            label,
            dev: root.read(dir.join("dev")),
        });
    }
    let disk = Disk {
        node,
        bytes,
        removable,
        description,
        partitions,
        name,
    };
    if let Some(user) = mounted(root, &disk) {
        bail!("{device} is in use: {user}; unmount it first (e.g. `udisksctl unmount -b /dev/…`)");
    }
    Ok(disk)
}

/// How the disk or one of its partitions is in use, if it is.
fn mounted(root: &Root, disk: &Disk) -> Option<String> {
    let mut names = vec![disk.name.clone()];
    names.extend(disk.partitions.iter().map(|p| p.name.clone()));
    let mut numbers: Vec<String> = disk
        .partitions
        .iter()
        .filter_map(|p| p.dev.clone())
        .collect();
    numbers.extend(root.read(format!("/sys/block/{}/dev", disk.name)));
    // A source names one of ours: /dev/<name>, or a link resolving to it.
    let ours = |source: &str| -> Option<String> {
        if !source.starts_with("/dev/") {
            return None;
        }
        let resolved = root.path(source).canonicalize().ok();
        let base = resolved
            .as_deref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| source.rsplit('/').next().unwrap_or("").to_string());
        names.contains(&base).then_some(base)
    };
    if let Some(text) = root.read("/proc/mounts") {
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [source, target, ..] = fields[..]
                && let Some(name) = ours(source)
            {
                return Some(format!("/dev/{name} is mounted on {target}"));
            }
        }
    }
    if let Some(text) = root.read("/proc/self/mountinfo") {
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(number), Some(target)) = (fields.get(2), fields.get(4)) else {
                continue;
            };
            // Optional fields end at "-"; then the type and the source.
            let source = fields
                .iter()
                .position(|f| *f == "-")
                .and_then(|i| fields.get(i + 2))
                .copied()
                .unwrap_or("");
            if numbers.iter().any(|n| n == number) || ours(source).is_some() {
                return Some(format!("device {number} ({source}) is mounted on {target}"));
            }
        }
    }
    if let Some(text) = root.read("/proc/swaps") {
        for line in text.lines().skip(1) {
            if let Some(name) = line.split_whitespace().next().and_then(ours) {
                return Some(format!("/dev/{name} is used as swap"));
            }
        }
    }
    None
}

fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

/// What will be overwritten, for the confirmation.
pub fn describe(root: &Root, disk: &Disk) -> String {
    let mut text = format!(
        "{}: {}, {} ({} bytes){}\n",
        root.outside(&disk.node).display(),
        disk.description,
        size_text(disk.bytes),
        disk.bytes,
        if disk.removable {
            ", removable"
        } else {
            ", NOT removable"
        }
    );
    if disk.partitions.is_empty() {
        text.push_str("  no partitions\n");
    }
    for p in &disk.partitions {
        text.push_str(&format!(
            "  {:<12} {:>10}  {}\n",
            p.name,
            size_text(p.bytes),
            p.label.as_deref().unwrap_or("")
        ));
    }
    text
}

/// Reads the answer to the confirmation: only `yes` goes on.
pub fn confirm(device: &str, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<bool> {
    write!(
        out,
        "Everything on {device} will be lost. Type yes to write it: "
    )?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// What is written: the image's first `len` bytes with `patches` (a
/// refitted GPT) over them.
struct Plan {
    len: u64,
    patches: Vec<(u64, Vec<u8>)>,
}

impl Plan {
    /// The image as is when the disk holds it; else (with `force_small`)
    /// cut to the disk with its GPT refitted.
    fn new(image: &Path, image_len: u64, disk_bytes: u64, force_small: bool) -> Result<Plan> {
        if image_len <= disk_bytes {
            return Ok(Plan {
                len: image_len,
                patches: Vec::new(),
            });
        }
        ensure!(
            force_small,
            "the disk ({} bytes) is smaller than the image ({image_len} bytes); --force-small writes what fits if all partitions do",
            disk_bytes
        );
        let sectors = disk_bytes / SECTOR;
        ensure!(
            sectors > 2 * TABLE_SECTORS,
            "the disk is too small for a GPT"
        );
        let last_usable = sectors - TABLE_SECTORS;
        for (name, extent) in disk::partitions(image)? {
            ensure!(
                extent.last_lba() <= last_usable,
                "partition {name:?} ends at LBA {}, past the last usable LBA {last_usable} of the disk: even --force-small does not cut partitions",
                extent.last_lba()
            );
        }
        let mut file = File::open(image)?;
        let mut header = [0u8; 512];
        file.seek(SeekFrom::Start(SECTOR))?;
        file.read_exact(&mut header)?;
        let mut entries = vec![0u8; 128 * 128];
        file.seek(SeekFrom::Start(2 * SECTOR))?;
        file.read_exact(&mut entries)?;
        let guid = Guid(header[56..72].try_into()?);
        Ok(Plan {
            len: sectors * SECTOR,
            patches: crate::disk::gpt_regions(sectors, guid, &entries),
        })
    }

    /// The bytes to write at `offset`.
    fn content_at(&self, image: &mut File, offset: u64, buf: &mut [u8]) -> Result<()> {
        image.seek(SeekFrom::Start(offset))?;
        image.read_exact(buf)?;
        let end = offset + buf.len() as u64;
        for (at, bytes) in &self.patches {
            let (start, stop) = ((*at).max(offset), (at + bytes.len() as u64).min(end));
            if start < stop {
                buf[(start - offset) as usize..(stop - offset) as usize]
                    .copy_from_slice(&bytes[(start - at) as usize..(stop - at) as usize]);
            }
        }
        Ok(())
    }
}

/// One updating line: bytes, total, percent, MB/s. On a terminal it is
/// redrawn in place a few times a second; otherwise a line per 10 %.
/// Errors writing it are ignored: progress is not worth failing for.
pub struct Progress<'a> {
    out: &'a mut dyn Write,
    terminal: bool,
    what: &'static str,
    total: u64,
    start: Instant,
    last: Option<Instant>,
    last_tenth: u64,
}

impl<'a> Progress<'a> {
    pub fn new(out: &'a mut dyn Write, terminal: bool, what: &'static str, total: u64) -> Self {
        Progress {
            out,
            terminal,
            what,
            total,
            start: Instant::now(),
            last: None,
            last_tenth: 0,
        }
    }

    fn line(&self, done: u64) -> String {
        let seconds = self.start.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{} {} / {} bytes {:>3}% {:.1} MB/s",
            self.what,
            done,
            self.total,
            (done * 100).checked_div(self.total).unwrap_or(100),
            done as f64 / 1e6 / seconds
        )
    }

    pub fn update(&mut self, done: u64) {
        let finished = done >= self.total;
        if self.terminal {
            let due = self
                .last
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(200));
            if due || finished {
                let line = self.line(done);
                let _ = write!(
                    self.out,
                    "\r{line}\x1b[K{}",
                    if finished { "\n" } else { "" }
                );
                let _ = self.out.flush();
                self.last = Some(Instant::now());
            }
        } else {
            let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
            if tenth > self.last_tenth || (finished && self.last.is_none()) {
                let line = self.line(done);
                let _ = writeln!(self.out, "{line}");
                self.last_tenth = tenth;
                self.last = Some(Instant::now());
            }
        }
    }
}

/// The options of one `flash`.
#[derive(Debug, Default)]
pub struct Options {
    pub device: String,
    pub image: PathBuf,
    pub yes: bool,
    pub force_not_removable: bool,
    pub force_small: bool,
}

/// What `flash` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer was not `yes`: nothing written.
    Declined,
    /// Written and read back: the bytes and their SHA-256.
    Written { bytes: u64, sha256: String },
}

/// Checks, asks, writes and verifies. `out` gets the description and the
/// result, `progress` the progress line.
pub fn flash(
    root: &Root,
    options: &Options,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    progress: &mut dyn Write,
    progress_terminal: bool,
) -> Result<Outcome> {
    let device = options.device.as_str();
    let disk = inspect(root, device)?;
    ensure!(
        disk.removable || options.force_not_removable,
        "{device} is not removable ({}): is it really the card? --force-not-removable writes to it anyway",
        disk.description
    );
    let image_len = std::fs::metadata(&options.image)
        .with_context(|| format!("cannot read {}", options.image.display()))?
        .len();
    let plan = Plan::new(&options.image, image_len, disk.bytes, options.force_small)?;
    writeln!(
        out,
        "Image: {} ({image_len} bytes)",
        paths::display(&options.image)
    )?;
    if plan.len < image_len {
        writeln!(
            out,
            "The disk is smaller than the image: writing its first {} bytes with the GPT refitted to the disk.",
            plan.len
        )?;
    }
    writeln!(out, "Will overwrite:")?;
    write!(out, "{}", describe(root, &disk))?;
    if !options.yes && !confirm(device, input, out)? {
        writeln!(out, "Not written.")?;
        return Ok(Outcome::Declined);
    }

    let mut source = File::open(&options.image)?;
    let mut open = OpenOptions::new();
    open.read(true).write(true);
    if !root.test_mode {
        // O_EXCL on a block device: fails if the kernel has it in use
        // (mounted), a last guard against a race with an automounter.
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(0o200);
    }
    let mut target = open
        .open(&disk.node)
        .with_context(|| format!("cannot open {device} for writing"))?;
    let mut written = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bar = Progress::new(progress, progress_terminal, "writing", plan.len);
    let mut at = 0;
    while at < plan.len {
        let n = (plan.len - at).min(CHUNK as u64) as usize;
        plan.content_at(&mut source, at, &mut buf[..n])?;
        target
            .write_all(&buf[..n])
            .with_context(|| format!("writing {device} at byte {at}"))?;
        written.update(&buf[..n]);
        at += n as u64;
        bar.update(at);
    }
    target
        .sync_all()
        .with_context(|| format!("syncing {device}"))?;
    drop_cache(&target);
    let expected = hex(&written.finalize());

    let mut check = File::open(&disk.node)?;
    let mut read = Sha256::new();
    let mut bar = Progress::new(progress, progress_terminal, "verifying", plan.len);
    let mut at = 0;
    while at < plan.len {
        let n = (plan.len - at).min(CHUNK as u64) as usize;
        check
            .read_exact(&mut buf[..n])
            .with_context(|| format!("reading {device} back at byte {at}"))?;
        read.update(&buf[..n]);
        at += n as u64;
        bar.update(at);
    }
    let actual = hex(&read.finalize());
    ensure!(
        actual == expected,
        "verification failed: {device} holds sha256 {actual} over the first {} bytes, {expected} was written",
        plan.len
    );
    writeln!(
        out,
        "Verified: sha256 {actual} over {} bytes of {device}",
        plan.len
    )?;
    if plan.patches.is_empty() {
        writeln!(out, "(the image's own sha256: the same bytes)")?;
    }
    writeln!(
        out,
        "Done. Put the card in the board and power it on: U-Boot's distro boot finds boot.scr on partition 1 and boots the hypervisor."
    )?;
    Ok(Outcome::Written {
        bytes: plan.len,
        sha256: actual,
    })
}

/// BLKFLSBUF on a block device: drops its cached pages, so the read-back
/// comes from the medium. A no-op for regular files.
fn drop_cache(file: &File) {
    use std::os::unix::fs::FileTypeExt;
    use std::os::unix::io::AsRawFd;
    if !file
        .metadata()
        .is_ok_and(|m| m.file_type().is_block_device())
    {
        return;
    }
    unsafe extern "C" {
        fn ioctl(fd: i32, request: std::ffi::c_ulong, ...) -> i32;
    }
    /// `_IO(0x12, 97)`.
    const BLKFLSBUF: std::ffi::c_ulong = 0x1261;
    // SAFETY: BLKFLSBUF takes no argument and only acts on the open block
    // device `file` owns; a failure just leaves the cache in place.
    let _ = unsafe { ioctl(file.as_raw_fd(), BLKFLSBUF, 0) };
}

const USAGE: &str = "usage: cargo xtask flash --device /dev/sdX [--image FILE] [--yes] [--force-not-removable] [--force-small]";

/// `cargo xtask flash ...`.
pub fn command(args: &[String]) -> Result<()> {
    let mut options = Options::default();
    let mut image = None;
    let mut root = Root::system();
    let mut args = crate::cli::Options::new(args, USAGE);
    while let Some(option) = args.next_option() {
        match option {
            "--device" => options.device = args.value(option)?.to_owned(),
            "--image" => image = Some(paths::absolute_existing(Path::new(args.value(option)?))?),
            "--yes" => options.yes = true,
            "--force-not-removable" => options.force_not_removable = true,
            "--force-small" => options.force_small = true,
            // For tests only: a fake root with sys/, proc/ and dev/.
            "--root" => root = Root::at(Path::new(args.value(option)?)),
            _ => return Err(args.unexpected(option)),
        }
    }
    ensure!(!options.device.is_empty(), "which device? {USAGE}");
    options.image = match image {
        Some(image) => image,
        None => {
            let board = "qemu-virt";
            let image = image::default_output(board);
            if !image.is_file() {
                let config = paths::root().join(paths::DEFAULT_CONFIG);
                image::write_for(board, &config, crate::images::Profile::Development, &image)?;
            }
            image
        }
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stderr = std::io::stderr();
    let terminal = stderr.is_terminal();
    flash(
        &root,
        &options,
        &mut input,
        &mut std::io::stdout(),
        &mut stderr,
        terminal,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root with one disk `sdb` of `sectors` sectors and partitions
    /// `sdb1` ("boot") and `sdb2`, and an image of `image_len` bytes.
    struct Fake {
        dir: PathBuf,
        root: Root,
        image: PathBuf,
    }

    fn fake(test: &str, sectors: u64, image_len: usize) -> Fake {
        let dir = paths::target_dir()
            .join("xtask-tests")
            .join("flash")
            .join(test);
        let _ = std::fs::remove_dir_all(&dir);
        let write = |path: &str, text: &str| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("sys/block/sdb/size", &format!("{sectors}\n"));
        write("sys/block/sdb/removable", "1\n");
        write("sys/block/sdb/dev", "8:16\n");
        write("sys/block/sdb/device/vendor", "Generic \n");
        write("sys/block/sdb/device/model", "STORAGE DEVICE  \n");
        write("sys/block/sdb/sdb1/partition", "1\n");
        write("sys/block/sdb/sdb1/size", "131072\n");
        write("sys/block/sdb/sdb1/dev", "8:17\n");
        write(
            "sys/block/sdb/sdb1/uevent",
            "MAJOR=8\nMINOR=17\nDEVNAME=sdb1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=boot\n",
        );
        write("sys/block/sdb/sdb2/partition", "2\n");
        write("sys/block/sdb/sdb2/size", "2048\n");
        write("sys/block/sdb/sdb2/dev", "8:18\n");
        write("sys/class/block/sdb1/partition", "1\n");
        write("proc/mounts", "/dev/sda1 / ext4 rw 0 0\n");
        write(
            "proc/self/mountinfo",
            "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
        );
        write("proc/swaps", "Filename Type Size Used Priority\n");
        // The device: a regular file full of old data.
        write("dev/sdb", &"old!".repeat((sectors * 128) as usize));
        write("dev/sdb1", "");
        let image = dir.join("image.img");
        let data: Vec<u8> = (0..image_len).map(|i| (i * 31 % 256) as u8).collect();
        std::fs::write(&image, data).unwrap();
        Fake {
            root: Root::at(&dir),
            dir,
            image,
        }
    }

    impl Fake {
        fn options(&self, device: &str) -> Options {
            Options {
                device: device.to_string(),
                image: self.image.clone(),
                yes: true,
                ..Options::default()
            }
        }

        fn run(&self, options: &Options, answer: &str) -> (Result<Outcome>, String, String) {
            let mut out = Vec::new();
            let mut progress = Vec::new();
            let result = flash(
                &self.root,
                options,
                &mut answer.as_bytes(),
                &mut out,
                &mut progress,
                false,
            );
            (
                result,
                String::from_utf8(out).unwrap(),
                String::from_utf8(progress).unwrap(),
            )
        }

        fn device_bytes(&self) -> Vec<u8> {
            std::fs::read(self.dir.join("dev/sdb")).unwrap()
        }

        fn error(&self, options: &Options) -> String {
            let before = self.device_bytes();
            let e = format!("{:#}", self.run(options, "yes\n").0.unwrap_err());
            assert!(self.device_bytes() == before, "wrote despite: {e}");
            e
        }
    }

    #[test]
    fn writes_and_verifies() {
        let f = fake("write", 32768, 3 * CHUNK + 12345);
        let (result, out, progress) = f.run(&f.options("/dev/sdb"), "");
        let image = std::fs::read(&f.image).unwrap();
        let sha = hex(&Sha256::digest(&image));
        assert_eq!(
            result.unwrap(),
            Outcome::Written {
                bytes: image.len() as u64,
                sha256: sha.clone()
            }
        );
        let device = f.device_bytes();
        assert_eq!(device.len(), 32768 * 512);
        assert!(device[..image.len()] == image[..]);
        // Nothing past the image was touched.
        let old = "old!".repeat(32768 * 128);
        assert!(device[image.len()..] == old.as_bytes()[image.len()..]);
        assert!(
            out.contains(&format!(
                "Verified: sha256 {sha} over {} bytes",
                image.len()
            )),
            "{out}"
        );
        assert!(
            out.contains("/dev/sdb: Generic STORAGE DEVICE, 16.0 MiB (16777216 bytes), removable"),
            "{out}"
        );
        assert!(out.contains("sdb1           64.0 MiB  boot"), "{out}");
        assert!(out.contains("U-Boot's distro boot finds boot.scr"), "{out}");
        // Not a terminal: whole lines, ending at 100 %.
        assert!(!progress.contains('\r'), "{progress}");
        assert!(
            progress
                .lines()
                .any(|l| l.starts_with(&format!("writing {0} / {0} bytes 100%", image.len()))),
            "{progress}"
        );
        assert!(
            progress.lines().any(|l| l.starts_with("verifying")),
            "{progress}"
        );
    }

    #[test]
    fn asks_first() {
        let f = fake("confirm", 8192, 1000);
        let mut options = f.options("/dev/sdb");
        options.yes = false;
        let before = f.device_bytes();
        for answer in ["no\n", "", "y\n", "YES please\n"] {
            let (result, out, progress) = f.run(&options, answer);
            assert_eq!(result.unwrap(), Outcome::Declined, "{answer:?}");
            assert!(out.contains("Type yes to write it"), "{out}");
            assert!(out.ends_with("Not written.\n"), "{out}");
            assert!(progress.is_empty());
            assert!(f.device_bytes() == before);
        }
        let (result, _, _) = f.run(&options, "yes\n");
        assert!(matches!(
            result.unwrap(),
            Outcome::Written { bytes: 1000, .. }
        ));
    }

    #[test]
    fn refusals() {
        let f = fake("refuse", 8192, 1000);
        let e = f.error(&f.options("/dev/sdc"));
        assert!(e.contains("/dev/sdc: no such device"), "{e}");
        let e = f.error(&f.options("/dev/sdb1"));
        assert!(e.contains("is a partition"), "{e}");
        let e = f.error(&f.options("sdb"));
        assert!(e.contains("under /dev"), "{e}");

        // Mounted, by name or by number.
        std::fs::write(
            f.dir.join("proc/mounts"),
            "/dev/sdb1 /media/boot vfat rw 0 0\n",
        )
        .unwrap();
        let e = f.error(&f.options("/dev/sdb"));
        assert!(e.contains("/dev/sdb1 is mounted on /media/boot"), "{e}");
        std::fs::write(f.dir.join("proc/mounts"), "").unwrap();
        std::fs::write(
            f.dir.join("proc/self/mountinfo"),
            "40 22 8:18 / /mnt rw shared:1 - ext4 /dev/root rw\n",
        )
        .unwrap();
        let e = f.error(&f.options("/dev/sdb"));
        assert!(
            e.contains("device 8:18 (/dev/root) is mounted on /mnt"),
            "{e}"
        );
        std::fs::write(f.dir.join("proc/self/mountinfo"), "").unwrap();
        std::fs::write(
            f.dir.join("proc/swaps"),
            "Filename\n/dev/sdb2 partition 1 0 -2\n",
        )
        .unwrap();
        let e = f.error(&f.options("/dev/sdb"));
        assert!(e.contains("/dev/sdb2 is used as swap"), "{e}");
        std::fs::write(f.dir.join("proc/swaps"), "").unwrap();

        // Not removable, unless forced.
        std::fs::write(f.dir.join("sys/block/sdb/removable"), "0\n").unwrap();
        let e = f.error(&f.options("/dev/sdb"));
        assert!(e.contains("is not removable"), "{e}");
        let mut forced = f.options("/dev/sdb");
        forced.force_not_removable = true;
        assert!(f.run(&forced, "").0.is_ok());
        std::fs::write(f.dir.join("sys/block/sdb/removable"), "1\n").unwrap();

        // A missing image.
        let mut missing = f.options("/dev/sdb");
        missing.image = f.dir.join("nope.img");
        let e = f.error(&missing);
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn refuses_a_small_disk_unless_forced_and_the_partitions_fit() {
        // A real image: 128 MiB with the qemu-virt partitions, the last
        // (shared-ro) ending at 102 MiB.
        let f = fake("small", 100 * 2048, 0);
        let image = image::assemble_for_board("qemu-virt", &[1, 2, 3]).unwrap();
        image.write(&f.image).unwrap();
        let e = f.error(&f.options("/dev/sdb"));
        assert!(e.contains("smaller than the image"), "{e}");
        let mut forced = f.options("/dev/sdb");
        forced.force_small = true;
        let e = f.error(&forced);
        assert!(e.contains("partition \"shared-ro\" ends at LBA"), "{e}");

        // 110 MiB: everything fits; the GPT is refitted to the disk.
        let f = fake("small-fits", 110 * 2048, 0);
        image.write(&f.image).unwrap();
        let mut forced = f.options("/dev/sdb");
        forced.force_small = true;
        let (result, out, _) = f.run(&forced, "");
        assert!(
            matches!(result.unwrap(), Outcome::Written { bytes, .. } if bytes == 110 * MIB),
            "{out}"
        );
        let device = f.dir.join("dev/sdb");
        let names: Vec<String> = disk::partitions(&device)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["boot", "cluster-odo", "ivi-data", "shared-ro", "hv-records"]
        );
        let bytes = std::fs::read(&device).unwrap();
        assert_eq!(shared_devices::gpt::parse_all(&bytes), Ok(5));
        assert_eq!(
            disk::read_partition(&device, "shared-ro", 0, 4).unwrap(),
            [0xa5, 0xa5, 0x5a, 0x5a]
        );
        assert!(out.contains("GPT refitted"), "{out}");
    }

    #[test]
    fn progress_on_a_terminal_redraws_one_line() {
        let mut out = Vec::new();
        let mut bar = Progress::new(&mut out, true, "writing", 10 * MIB);
        bar.update(MIB);
        bar.update(10 * MIB);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("\rwriting 1048576 / 10485760 bytes  10%"),
            "{text:?}"
        );
        assert!(
            text.ends_with("\n") && text.matches('\n').count() == 1,
            "{text:?}"
        );
        // A closed stream does not fail it.
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
        }
        let mut broken = Broken;
        let mut bar = Progress::new(&mut broken, false, "writing", 0);
        bar.update(0);
    }
}
