//! Prerequisites: the Rust targets and components listed in
//! `rust-toolchain.toml`, `llvm-objcopy`, QEMU >= 8.2, e2fsprogs (the
//! storage scenarios check the file systems guests make on the disk image)
//! and the U-Boot each emulated board's flashed image boots with.
//!
//! What is missing is installed when that can be done without asking
//! (rustup; apt as root). Otherwise the error carries the exact command
//! that fixes it.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, bail};

use crate::paths;
use crate::process::{self, Cmd, step};

/// The QEMU binary every board is emulated with.
pub const QEMU: &str = "qemu-system-aarch64";
/// Oldest QEMU with everything the scenarios use.
const QEMU_MIN: (u32, u32) = (8, 2);
/// Devices the shared-device mediators drive on `qemu-virt`.
const QEMU_DEVICES: &[&str] = &["virtio-sound-device", "virtio-multitouch-device"];
/// Debian's package for `qemu-system-aarch64`.
const QEMU_PACKAGE: &str = "qemu-system-arm";
/// Where the backports source goes on Debian bookworm, whose own QEMU is 7.2.
pub(crate) const BACKPORTS_FILE: &str = "/etc/apt/sources.list.d/backports.sources";
pub(crate) const BACKPORTS_SOURCE: &str = "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

/// Checks everything `build`, `run`, `lint` and `test` need, installing
/// what can be installed.
pub fn ensure() -> Result<()> {
    step("Checking prerequisites");
    ensure_rust()?;
    ensure_qemu()?;
    ensure_e2fsprogs()?;
    ensure_u_boot()?;
    Ok(())
}

/// `e2fsck` and `debugfs`, installed with apt as root when missing.
pub fn ensure_e2fsprogs() -> Result<()> {
    ensure_package("e2fsprogs", "e2fsck and debugfs", || {
        ["e2fsck", "debugfs"]
            .iter()
            .all(|p| process::find_program(p).is_some())
    })
}

/// The U-Boot each emulated board boots its flashed image with (`[qemu]
/// u_boot` in its board.toml), installed with apt as root when missing.
pub fn ensure_u_boot() -> Result<()> {
    let Ok(entries) = std::fs::read_dir(crate::paths::boards_dir()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(board) = crate::board::Board::load(&name) else {
            continue;
        };
        let Some(qemu) = &board.qemu else { continue };
        if let (Some(path), Some(package)) = (&qemu.u_boot, &qemu.u_boot_package) {
            let path = std::path::PathBuf::from(path);
            ensure_package(package, &path.display().to_string(), || path.is_file())?;
        }
    }
    Ok(())
}

/// Debian package `package`, installed with apt as root unless `present`
/// says `what` it provides is there already.
pub fn ensure_package(package: &str, what: &str, present: impl Fn() -> bool) -> Result<()> {
    if present() {
        return Ok(());
    }
    if !process::on_path("apt-get") {
        bail!("{what} is missing: install {package} with your package manager");
    }
    if !is_root() {
        bail!("{what} is missing. Fix it with:\n\n  sudo apt-get install -y {package}\n");
    }
    step(format!("Installing {package} with apt"));
    Cmd::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", package])
        .run()?;
    if !present() {
        bail!("{what} is still missing after installing {package}");
    }
    Ok(())
}

/// Rust targets and components, then `llvm-objcopy`.
pub fn ensure_rust() -> Result<()> {
    let (targets, components) = toolchain_file()?;
    if process::on_path("rustup") {
        let installed = Cmd::new("rustup")
            .args(["target", "list", "--installed"])
            .read()?;
        let missing: Vec<&String> = targets
            .iter()
            .filter(|t| !installed.lines().any(|l| l.trim() == t.as_str()))
            .collect();
        if !missing.is_empty() {
            step(format!("Installing Rust targets {missing:?}"));
            Cmd::new("rustup")
                .args(["target", "add"])
                .args(&missing)
                .run()?;
        }
        let installed = Cmd::new("rustup")
            .args(["component", "list", "--installed"])
            .read()?;
        let missing: Vec<&String> = components
            .iter()
            .filter(|c| !installed.lines().any(|l| component_matches(l.trim(), c)))
            .collect();
        if !missing.is_empty() {
            step(format!("Installing Rust components {missing:?}"));
            Cmd::new("rustup")
                .args(["component", "add"])
                .args(&missing)
                .run()?;
        }
    } else {
        let sysroot = sysroot()?;
        for target in &targets {
            if !sysroot.join("lib/rustlib").join(target).is_dir() {
                bail!(
                    "the Rust standard library for {target} is missing and rustup is not installed; \
                     install rustup (https://rustup.rs) so rust-toolchain.toml can be honoured"
                );
            }
        }
    }
    let objcopy = llvm_objcopy()?;
    if !objcopy.is_file() {
        bail!(
            "{} is missing: run `rustup component add llvm-tools`",
            objcopy.display()
        );
    }
    println!(
        "Rust: targets {} and components {} present",
        targets.join(", "),
        components.join(", ")
    );
    Ok(())
}

/// `rustup component list --installed` prints `clippy-x86_64-unknown-linux-gnu`
/// for `clippy`; `llvm-tools-preview` is the old name of `llvm-tools`.
fn component_matches(installed: &str, wanted: &str) -> bool {
    let wanted = wanted.strip_suffix("-preview").unwrap_or(wanted);
    let installed = installed.replace("-preview", "");
    installed == wanted
        || installed
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('-') && rest[1..].contains('-'))
}

/// Targets and components from `rust-toolchain.toml`.
fn toolchain_file() -> Result<(Vec<String>, Vec<String>)> {
    #[derive(serde::Deserialize)]
    struct File {
        toolchain: Toolchain,
    }
    #[derive(serde::Deserialize)]
    struct Toolchain {
        #[serde(default)]
        targets: Vec<String>,
        #[serde(default)]
        components: Vec<String>,
    }
    let path = paths::root().join("rust-toolchain.toml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let file: File =
        toml::from_str(&text).with_context(|| format!("{}: invalid", path.display()))?;
    Ok((file.toolchain.targets, file.toolchain.components))
}

fn sysroot() -> Result<PathBuf> {
    Ok(PathBuf::from(
        Cmd::new("rustc")
            .args(["--print", "sysroot"])
            .read()?
            .trim(),
    ))
}

/// `llvm-objcopy` from the `llvm-tools` component of the active toolchain.
pub fn llvm_objcopy() -> Result<PathBuf> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    let version = Cmd::new("rustc").arg("-vV").read()?;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .context("`rustc -vV` printed no host triple")?;
    let path = sysroot()?
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-objcopy");
    Ok(PATH.get_or_init(|| path).clone())
}

/// QEMU: present, new enough, and with the devices the systems use.
pub fn ensure_qemu() -> Result<()> {
    let problem = match qemu_status() {
        Ok(version) => {
            println!("QEMU: {}.{}.{}", version.0, version.1, version.2);
            return Ok(());
        }
        Err(problem) => problem,
    };
    let Some(plan) = InstallPlan::for_this_machine() else {
        bail!(
            "{problem}; install QEMU >= {}.{} ({QEMU}) with your package manager",
            QEMU_MIN.0,
            QEMU_MIN.1
        );
    };
    if !is_root() {
        bail!("{problem}. Fix it with:\n\n  {}\n", plan.shell_text(true));
    }
    step(format!("{problem}: installing {QEMU_PACKAGE} with apt"));
    plan.execute()?;
    match qemu_status() {
        Ok(version) => {
            println!("QEMU: {}.{}.{}", version.0, version.1, version.2);
            Ok(())
        }
        Err(problem) => bail!("{problem}, even after installing {QEMU_PACKAGE}"),
    }
}

/// The installed QEMU's version when it is suitable, or what is wrong.
fn qemu_status() -> Result<(u32, u32, u32), String> {
    let Ok(text) = Cmd::new(QEMU).arg("--version").read() else {
        return Err(format!("{QEMU} is not installed"));
    };
    let Some(version) = parse_qemu_version(&text) else {
        return Err(format!("cannot read the version of {QEMU} from {text:?}"));
    };
    if (version.0, version.1) < QEMU_MIN {
        return Err(format!(
            "{QEMU} is version {}.{}.{}, older than the {}.{} needed",
            version.0, version.1, version.2, QEMU_MIN.0, QEMU_MIN.1
        ));
    }
    let devices = Cmd::new(QEMU)
        .args(["-device", "help"])
        .read()
        .unwrap_or_default();
    let missing: Vec<&str> = QEMU_DEVICES
        .iter()
        .copied()
        .filter(|d| !devices.contains(&format!("\"{d}\"")))
        .collect();
    if !missing.is_empty() {
        return Err(format!("{QEMU} lacks the devices {}", missing.join(", ")));
    }
    Ok(version)
}

/// `QEMU emulator version 10.0.2 (Debian ...)` -> (10, 0, 2).
fn parse_qemu_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let word = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = word.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let micro = parts.next().and_then(|p| p.ok()).unwrap_or(0);
    Some((major, minor, micro))
}

pub(crate) fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .read()
        .is_ok_and(|uid| uid.trim() == "0")
}

/// The apt steps that install a suitable QEMU on this Debian release.
struct InstallPlan {
    /// Set when the backports source has to be added first.
    backports_file: Option<&'static str>,
    install: Vec<&'static str>,
}

impl InstallPlan {
    /// `None` when this is not a machine with apt.
    fn for_this_machine() -> Option<InstallPlan> {
        if !process::on_path("apt-get") {
            return None;
        }
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let bookworm = os_release
            .lines()
            .any(|l| l.trim() == "VERSION_CODENAME=bookworm");
        Some(if bookworm {
            InstallPlan {
                backports_file: (!backports_configured()).then_some(BACKPORTS_FILE),
                install: vec!["install", "-y", "-t", "bookworm-backports", QEMU_PACKAGE],
            }
        } else {
            InstallPlan {
                backports_file: None,
                install: vec!["install", "-y", QEMU_PACKAGE],
            }
        })
    }

    /// The plan as one line to paste into a shell.
    fn shell_text(&self, sudo: bool) -> String {
        let sudo = if sudo { "sudo " } else { "" };
        let mut parts = Vec::new();
        if let Some(file) = self.backports_file {
            parts.push(format!(
                "printf '{}' | {sudo}tee {file} >/dev/null",
                BACKPORTS_SOURCE.replace('\n', "\\n")
            ));
        }
        parts.push(format!("{sudo}apt-get update"));
        parts.push(format!("{sudo}apt-get {}", self.install.join(" ")));
        parts.join(" && ")
    }

    fn execute(&self) -> Result<()> {
        if let Some(file) = self.backports_file {
            step(format!("Adding the bookworm-backports apt source ({file})"));
            std::fs::write(file, BACKPORTS_SOURCE)
                .with_context(|| format!("cannot write {file}"))?;
        }
        step("apt-get update");
        Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("update")
            .run()?;
        step(format!("Installing {QEMU_PACKAGE}"));
        Cmd::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(&self.install)
            .run()
    }
}

/// Whether some apt source already names bookworm-backports.
pub(crate) fn backports_configured() -> bool {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.flatten().map(|e| e.path()));
    }
    files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|text| {
            text.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_versions() {
        assert_eq!(
            parse_qemu_version(
                "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"
            ),
            Some((10, 0, 2))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.15"),
            Some((7, 2, 15))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 8.2"),
            Some((8, 2, 0))
        );
        assert_eq!(parse_qemu_version("something else"), None);
    }

    #[test]
    fn components() {
        assert!(component_matches(
            "clippy-x86_64-unknown-linux-gnu",
            "clippy"
        ));
        assert!(component_matches(
            "llvm-tools-x86_64-unknown-linux-gnu",
            "llvm-tools"
        ));
        assert!(component_matches(
            "llvm-tools-preview-x86_64-unknown-linux-gnu",
            "llvm-tools"
        ));
        assert!(component_matches(
            "llvm-tools-x86_64-unknown-linux-gnu",
            "llvm-tools-preview"
        ));
        assert!(!component_matches("rust-src", "rust"));
        assert!(!component_matches(
            "rustfmt-x86_64-unknown-linux-gnu",
            "rust"
        ));
    }

    #[test]
    fn install_text_is_one_pasteable_line() {
        let plan = InstallPlan {
            backports_file: Some(BACKPORTS_FILE),
            install: vec!["install", "-y", "-t", "bookworm-backports", QEMU_PACKAGE],
        };
        let text = plan.shell_text(true);
        assert!(!text.contains('\n'));
        assert!(text.starts_with("printf 'Types: deb\\nURIs: http://deb.debian.org/debian\\n"));
        assert!(text.ends_with(
            "sudo apt-get update && sudo apt-get install -y -t bookworm-backports qemu-system-arm"
        ));
    }
}
