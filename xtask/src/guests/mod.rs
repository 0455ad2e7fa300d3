//! Guest assets made from Debian packages rather than from this
//! workspace's bare-metal code: for each `partitions/<guest>/guest.toml`
//! (today only `ivi`), a Linux kernel and an initramfs in
//! `target/partitions/<guest>/`, which configs name as `@/<guest>/Image`
//! and `@/<guest>/initramfs.cpio.gz`.
//!
//! - [`spec`]: `guest.toml`, the pinned packages and the module list.
//! - [`apt`]: downloading the packages into `target/guest-cache/`.
//! - [`deb`], [`kernel`], [`modules`], [`cpio`]: taking them apart and
//!   writing the initramfs; [`linux`] puts it all together.
//! - [`tool`]: the guests' userspace tool (`partitions/ivi/tool`).
//! - [`native`]: booting the assets on QEMU without the hypervisor.
//!
//! `cargo xtask guests` builds every guest. `build`, `lint` and `test`
//! build a guest only when a config they use names one of its files: the
//! config's text contains `"@/<guest>/` (a plain text search, so a
//! commented-out line counts too; the price is a build that was not
//! needed). A guest is rebuilt only when its inputs changed: guest.toml,
//! the /init script, the tool binary, the packages' hashes, or this code.

mod apt;
mod cpio;
mod deb;
mod kernel;
mod linux;
mod modules;
mod native;
mod spec;
mod tool;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::paths;
use crate::prereqs;
use crate::process::step;
use spec::Spec;
pub use tool::TARGET as TOOL_TARGET;

/// File names below `target/partitions/<guest>/`.
pub const IMAGE: &str = "Image";
pub const INITRAMFS: &str = "initramfs.cpio.gz";
/// What the assets were built from, for people.
const MANIFEST: &str = "manifest.txt";
/// Hash of the inputs the assets were built from.
const STAMP: &str = ".stamp";

/// A guest's built files.
pub struct Assets {
    pub image: PathBuf,
    pub initramfs: PathBuf,
}

pub const USAGE: &str = "\
usage: cargo xtask guests [--boot [-- QEMU ARGS...]]

Builds the Linux guests' kernel and initramfs (partitions/<guest>/guest.toml)
into target/partitions/<guest>/. With --boot, then boots the ivi guest on
QEMU without the hypervisor, on this terminal (quit with Ctrl-A then X).";

/// `cargo xtask guests [--boot [-- ARGS]]`.
pub fn command(args: &[String]) -> Result<()> {
    let (boot, extra) = match args {
        [] => (false, &[][..]),
        [flag, rest @ ..] if flag == "--boot" => match rest {
            [] => (true, &[][..]),
            [dashes, extra @ ..] if dashes == "--" => (true, extra),
            _ => bail!("{USAGE}"),
        },
        _ => bail!("{USAGE}"),
    };
    prereqs::ensure_rust()?;
    let names = names()?;
    let mut built = Vec::new();
    for name in &names {
        built.push((name.as_str(), build(name)?));
    }
    if boot {
        prereqs::ensure_qemu()?;
        let Some((_, assets)) = built.iter().find(|(name, _)| *name == "ivi") else {
            bail!("there is no partitions/ivi/guest.toml to boot");
        };
        native::boot(assets, extra)?;
    }
    Ok(())
}

/// The guests: folders of `partitions/` with a `guest.toml`, sorted.
pub fn names() -> Result<Vec<String>> {
    let dir = paths::root().join("partitions");
    let entries = fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("guest.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// The guests among `names` whose files the config text `text` names.
pub fn referenced(text: &str, names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            text.contains(&format!("\"@/{name}/")) || text.contains(&format!("'@/{name}/"))
        })
        .cloned()
        .collect()
}

/// Builds every guest that one of `configs` names (see the module docs).
/// Unreadable configs are skipped: checking them reports that better.
pub fn build_referenced(configs: &[PathBuf]) -> Result<()> {
    let names = names()?;
    let mut wanted = BTreeSet::new();
    for config in configs {
        if let Ok(text) = fs::read_to_string(config) {
            wanted.extend(referenced(&text, &names));
        }
    }
    for name in wanted {
        build(&name)?;
    }
    Ok(())
}

/// Builds the assets of guest `name` unless they are up to date.
pub fn build(name: &str) -> Result<Assets> {
    let dir = paths::root().join("partitions").join(name);
    let spec = Spec::load(&dir)?;
    step(format!(
        "Guest {name}: {} {}, {} {}",
        spec.kernel.package, spec.kernel.version, spec.busybox.package, spec.busybox.version
    ));
    let debs = apt::fetch(&[spec.kernel.deb(), spec.busybox.clone()])?;
    let tool = tool::build()?;
    let init_path = spec.init_path();
    let init =
        fs::read(&init_path).with_context(|| format!("cannot read {}", init_path.display()))?;

    let out = paths::partitions_dir().join(name);
    let assets = Assets {
        image: out.join(IMAGE),
        initramfs: out.join(INITRAMFS),
    };
    let stamp = input_stamp(&dir, &spec, &init, &tool)?;
    let stamp_path = out.join(STAMP);
    if assets.image.is_file()
        && assets.initramfs.is_file()
        && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
    {
        println!(
            "Guest {name} is up to date: {}, {}",
            paths::display(&assets.image),
            paths::display(&assets.initramfs)
        );
        return Ok(assets);
    }

    step(format!("Assembling the {name} kernel and initramfs"));
    let started = Instant::now();
    let built = linux::assemble(&spec, &debs[0], &debs[1], &init, &tool)?;
    paths::create_dir(&out)?;
    let _ = fs::remove_file(&stamp_path);
    write_atomically(&assets.image, &built.image)?;
    write_atomically(&assets.initramfs, &built.initramfs)?;
    let manifest = manifest(&spec, &built, tool.len());
    write_atomically(&out.join(MANIFEST), manifest.as_bytes())?;
    write_atomically(&stamp_path, stamp.as_bytes())?;
    print!("{manifest}");
    println!(
        "Guest {name} built in {:.1}s: {}, {}",
        started.elapsed().as_secs_f64(),
        paths::display(&assets.image),
        paths::display(&assets.initramfs)
    );
    Ok(assets)
}

/// The guests' tests for `cargo xtask test`: each guest booted natively
/// (`guest/<name>-native`), if `selected` picks it. Each result comes with
/// how long it took.
pub fn tests(selected: &dyn Fn(&str) -> bool) -> Vec<(String, Duration, Result<(), String>)> {
    let names = match names() {
        Ok(names) => names,
        Err(e) => return vec![("guest".into(), Duration::ZERO, Err(format!("{e:#}")))],
    };
    let mut results = Vec::new();
    for name in names.iter().filter(|n| n.as_str() == "ivi") {
        let test = "guest/ivi-native";
        if !selected(test) {
            continue;
        }
        step(test);
        let started = Instant::now();
        let result = match build(name) {
            Ok(assets) => native::test(&assets, "ivi-native"),
            Err(e) => (
                started.elapsed(),
                Err(format!("the guest assets did not build: {e:#}")),
            ),
        };
        results.push((test.to_string(), result.0, result.1));
    }
    results
}

/// A summary of what went into the assets, also kept as manifest.txt.
fn manifest(spec: &Spec, built: &linux::Built, tool_len: usize) -> String {
    let mib = |n: usize| n as f64 / (1024.0 * 1024.0);
    let names = |modules: &[String]| {
        if modules.is_empty() {
            "none".to_string()
        } else {
            modules.join(" ")
        }
    };
    let shipped: Vec<String> = built
        .modules
        .modules
        .iter()
        .map(|m| format!("{} ({} KiB)", m.name, m.data.len().div_ceil(1024)))
        .collect();
    format!(
        "kernel:    {} {} ({}), release {}, vmlinuz was {}\n\
         busybox:   {} {} ({})\n\
         Image:     {} bytes ({:.1} MiB)\n\
         initramfs: {} bytes ({:.1} MiB; {:.1} MiB as cpio), ivi-tool {} KiB\n\
         modules loaded at boot: {}\n\
         modules shipped, in load order: {}\n\
         built into the kernel: {}\n",
        spec.kernel.package,
        spec.kernel.version,
        spec.kernel.suite,
        built.release,
        built.shape,
        spec.busybox.package,
        spec.busybox.version,
        spec.busybox.suite,
        built.image.len(),
        mib(built.image.len()),
        built.initramfs.len(),
        mib(built.initramfs.len()),
        mib(built.cpio_len),
        tool_len.div_ceil(1024),
        names(&built.modules.load),
        if shipped.is_empty() {
            "none".to_string()
        } else {
            shipped.join(", ")
        },
        names(&built.modules.builtin),
    )
}

/// SHA-256 over everything the assets are made from.
fn input_stamp(dir: &Path, spec: &Spec, init: &[u8], tool: &[u8]) -> Result<String> {
    let mut hash = Sha256::new();
    let mut field = |label: &str, data: &[u8]| {
        hash.update(label.as_bytes());
        hash.update((data.len() as u64).to_le_bytes());
        hash.update(data);
    };
    let guest_toml = dir.join("guest.toml");
    field(
        "guest.toml",
        &fs::read(&guest_toml).with_context(|| format!("cannot read {}", guest_toml.display()))?,
    );
    field("init", init);
    field("tool", tool);
    field("kernel", spec.kernel.sha256.as_bytes());
    field("busybox", spec.busybox.sha256.as_bytes());
    // This code: a change in how assets are made remakes them.
    let code = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/guests");
    let mut files: Vec<PathBuf> = fs::read_dir(&code)
        .with_context(|| format!("cannot list {}", code.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        field(
            &name,
            &fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
        );
    }
    Ok(format!("{}\n", apt::hex(&hash.finalize())))
}

/// Writes `path` through a temporary file, so a build that stops halfway
/// never leaves a truncated file behind.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_reference_guests_by_path() {
        let names = vec!["ivi".to_string(), "nav".to_string()];
        let text = "image = \"@/ivi/Image\"\ninitrd = '@/nav/initramfs.cpio.gz'\n\
                    other = \"@/hello.img\"\nx = \"@/ivi-old/Image\"\n";
        assert_eq!(referenced(text, &names), ["ivi", "nav"]);
        assert!(referenced("image = \"@/ivi.img\"", &names).is_empty());
    }

    #[test]
    fn ivi_is_a_guest() {
        assert!(names().unwrap().contains(&"ivi".to_string()));
    }
}
