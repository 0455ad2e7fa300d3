//! Building the binaries QEMU boots: the guest images in
//! `target/partitions/` and one hypervisor image per config in `target/hv/`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::paths::{self, GUEST_TARGET, HV_TARGET};
use crate::process::{Cmd, step};
use crate::{check_config, prereqs};

/// The packages whose binaries are the bare-metal partitions: the test
/// programs and the instrument cluster.
const GUEST_PACKAGES: [&str; 2] = ["testkit", "cluster"];

/// Builds every binary of the guest packages (one cargo build) and
/// converts each to a flat image, `target/partitions/<bin>.img`. Returns
/// the images.
pub fn build_guests() -> Result<Vec<PathBuf>> {
    let metadata = Metadata::load()?;
    let mut bins = Vec::new();
    let mut listed = Vec::new();
    for package in GUEST_PACKAGES {
        let of = metadata.bins(package)?;
        listed.push(format!(
            "{package}: {}",
            if of.is_empty() {
                "no binaries yet".to_string()
            } else {
                of.join(", ")
            }
        ));
        bins.extend(of);
    }
    step(format!("Building guest partitions ({})", listed.join("; ")));
    if bins.is_empty() {
        return Ok(Vec::new());
    }
    let mut build = Cmd::cargo().args(["build", "--release", "--bins"]);
    for package in GUEST_PACKAGES {
        build = build.args(["-p", package]);
    }
    build.args(["--target", GUEST_TARGET]).run()?;
    let out_dir = paths::partitions_dir();
    paths::create_dir(&out_dir)?;
    let elf_dir = metadata.target_directory.join(GUEST_TARGET).join("release");
    let mut images = Vec::new();
    for bin in &bins {
        let image = out_dir.join(format!("{bin}.img"));
        objcopy(&elf_dir.join(bin), &image)?;
        images.push(image);
    }
    println!("Guest images in {}", paths::display(&out_dir));
    Ok(images)
}

/// Which hypervisor to build: the development one (console input, focus
/// switch, the log at info) or the production one (the `production`
/// feature: none of those, the log at warnings; docs/production.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    #[default]
    Development,
    Production,
}

impl Profile {
    /// Every profile.
    const ALL: [Profile; 2] = [Profile::Development, Profile::Production];

    /// Its name, as `--release-profile NAME` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Production => "production",
        }
    }

    /// The profile `--release-profile NAME` names.
    pub fn parse(name: &str) -> Result<Profile> {
        match Profile::ALL.into_iter().find(|p| p.name() == name) {
            Some(profile) => Ok(profile),
            None => bail!("unknown release profile {name:?} (development or production)"),
        }
    }

    /// What its image's name adds to the config's stem.
    fn suffix(self) -> &'static str {
        match self {
            Profile::Development => "",
            Profile::Production => "-production",
        }
    }
}

/// Builds the development hypervisor for `config`; see [`build_hypervisor_as`].
pub fn build_hypervisor(config: &Path) -> Result<PathBuf> {
    build_hypervisor_as(config, Profile::Development)
}

/// Builds the hypervisor with `config` compiled in and copies it to
/// `target/hv/<config-stem>.bin` (`<config-stem>-production.bin` for the
/// production profile), its ELF beside it as `.elf` (for a debugger),
/// unless that image was already built from the same config and the same
/// inputs. Returns the image.
pub fn build_hypervisor_as(config: &Path, profile: Profile) -> Result<PathBuf> {
    let stem = config
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: odd file name", config.display()))?;
    let stem = format!("{stem}{}", profile.suffix());
    let dir = paths::hv_dir();
    paths::create_dir(&dir)?;
    let image = dir.join(format!("{stem}.bin"));
    let elf_copy = dir.join(format!("{stem}.elf"));
    let stamp_path = dir.join(format!("{stem}.stamp"));
    let stamp = format!("{}{profile:?}", input_stamp(config)?);
    if image.is_file()
        && elf_copy.is_file()
        && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
    {
        step(format!(
            "Hypervisor for {} is up to date: {}",
            paths::display(config),
            paths::display(&image)
        ));
        return Ok(image);
    }
    step(format!(
        "Building the {} hypervisor for {}",
        profile.name(),
        paths::display(config)
    ));
    let _ = std::fs::remove_file(&stamp_path);
    let features: &[&str] = match profile {
        Profile::Development => &[],
        Profile::Production => &["--features", "production"],
    };
    Cmd::cargo()
        .env("HV_CONFIG", config)
        .args(["build", "--release", "-p", "hypervisor", "--bin", "hypervisor", "--target", HV_TARGET])
        .args(features)
        .run()
        .context("the hypervisor did not build (config errors are shown above as file:line:col: message)")?;
    let elf = Metadata::load()?
        .target_directory
        .join(HV_TARGET)
        .join("release/hypervisor");
    objcopy(&elf, &image)?;
    std::fs::copy(&elf, &elf_copy)
        .with_context(|| format!("cannot copy {} to {}", elf.display(), elf_copy.display()))?;
    std::fs::write(&stamp_path, stamp)
        .with_context(|| format!("cannot write {}", stamp_path.display()))?;
    println!("Hypervisor image: {}", paths::display(&image));
    Ok(image)
}

/// `llvm-objcopy -O binary ELF IMAGE`.
fn objcopy(elf: &Path, image: &Path) -> Result<()> {
    if !elf.is_file() {
        bail!("{} was not built", elf.display());
    }
    Cmd::new(prereqs::llvm_objcopy()?)
        .args(["-O", "binary"])
        .arg(elf)
        .arg(image)
        .read()
        .map(drop)
}

/// What a hypervisor image depends on, as a hash: the config and the files
/// it names (device tree, guest images), the sources of every crate that
/// goes into the image or generates part of it, the lock file and the
/// compiler.
fn input_stamp(config: &Path) -> Result<String> {
    let root = paths::root();
    let mut hash = Fnv::new();
    hash.file(config)?;
    match check_config::inputs(config) {
        Some(files) => {
            for file in files {
                hash.file(&file)?;
            }
        }
        // An invalid config does not build, so its stamp is never written.
        None => hash.tree(&paths::partitions_dir())?,
    }
    hash.write(Cmd::new("rustc").arg("-vV").read()?.as_bytes());
    let files = [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        ".cargo/config.toml",
    ];
    for file in files {
        hash.file(&root.join(file))?;
    }
    for dir in ["hypervisor", "config", "board", "shared-devices"] {
        hash.tree(&root.join(dir))?;
    }
    Ok(format!("{:016x}\n", hash.0))
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // Separate fields, so ("ab", "c") and ("a", "bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }

    /// The file's name and contents (a missing file hashes as absent).
    fn file(&mut self, path: &Path) -> Result<()> {
        self.write(path.as_os_str().as_encoded_bytes());
        match std::fs::read(path) {
            Ok(bytes) => self.write(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.write(b"<absent>"),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        Ok(())
    }

    /// Every file below `dir`, in name order, skipping hidden entries and
    /// `target` folders.
    fn tree(&mut self, dir: &Path) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.write(b"<no dir>");
            return Ok(());
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            if path.is_dir() {
                self.tree(&path)?;
            } else {
                self.file(&path)?;
            }
        }
        Ok(())
    }
}

/// The part of `cargo metadata` xtask reads.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

impl Metadata {
    fn load() -> Result<Metadata> {
        let json = Cmd::cargo()
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .read()?;
        serde_json::from_str(&json).context("cannot parse `cargo metadata` output")
    }

    /// Names of the binaries of `package`, sorted.
    fn bins(&self, package: &str) -> Result<Vec<String>> {
        let package = self
            .packages
            .iter()
            .find(|p| p.name == package)
            .with_context(|| format!("package {package} is not in the workspace"))?;
        let mut bins: Vec<String> = package
            .targets
            .iter()
            .filter(|t| t.kind.iter().any(|k| k == "bin"))
            .map(|t| t.name.clone())
            .collect();
        bins.sort();
        Ok(bins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_separates_fields() {
        let mut a = Fnv::new();
        a.write(b"ab");
        a.write(b"c");
        let mut b = Fnv::new();
        b.write(b"a");
        b.write(b"bc");
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn metadata_lists_guest_package() {
        let metadata = Metadata::load().unwrap();
        for package in GUEST_PACKAGES {
            metadata.bins(package).unwrap();
        }
        assert_eq!(metadata.bins("cluster").unwrap(), ["cluster"]);
        assert!(metadata.bins("no-such-package").is_err());
    }
}
