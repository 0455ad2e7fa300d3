//! The pinned Debian packages: downloaded once with `apt-get download` into
//! `target/guest-cache/`, and checked against the SHA-256 in `guest.toml`.
//!
//! Downloading arm64 packages on an amd64 machine needs the arm64
//! architecture in dpkg and, for the kernel, the bookworm-backports apt
//! source (the same one the QEMU prerequisite adds). As root these are set
//! up here; otherwise the error gives the commands.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::spec::Package;
use crate::paths;
use crate::prereqs::{self, BACKPORTS_FILE, BACKPORTS_SOURCE};
use crate::process::{Cmd, check, step};

/// Debian's name for the guests' architecture.
pub const ARCH: &str = "arm64";
/// The apt suite whose source `prereqs` knows how to add.
const BACKPORTS_SUITE: &str = "bookworm-backports";

/// `target/guest-cache/`: downloaded packages, kept across builds.
pub fn cache_dir() -> PathBuf {
    paths::target_dir().join("guest-cache")
}

/// The file name `apt-get download` gives a package (`:` of an epoch
/// becomes `%3a`).
pub fn deb_file_name(package: &Package) -> String {
    format!(
        "{}_{}_{ARCH}.deb",
        package.package,
        package.version.replace(':', "%3a")
    )
}

/// The .deb of each package, in order: from the cache when it is there with
/// the pinned hash, downloaded otherwise.
pub fn fetch(packages: &[Package]) -> Result<Vec<PathBuf>> {
    let dir = cache_dir();
    paths::create_dir(&dir)?;
    let mut debs = Vec::new();
    let mut missing = Vec::new();
    for package in packages {
        let deb = dir.join(deb_file_name(package));
        match cached(&deb, &package.sha256)? {
            Cached::Good => {}
            Cached::Absent => missing.push(package),
            Cached::Bad(actual) => {
                println!(
                    "{} has SHA-256 {actual}, not the pinned {}: downloading it again",
                    paths::display(&deb),
                    package.sha256
                );
                fs::remove_file(&deb)
                    .with_context(|| format!("cannot remove {}", deb.display()))?;
                missing.push(package);
            }
        }
        debs.push(deb);
    }
    if missing.is_empty() {
        println!(
            "Packages cached in {}: {}",
            paths::display(&dir),
            packages
                .iter()
                .map(|p| format!("{} {}", p.package, p.version))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(debs);
    }
    prepare_apt(&missing)?;
    for package in missing {
        download(package, &dir)?;
        let deb = dir.join(deb_file_name(package));
        match cached(&deb, &package.sha256)? {
            Cached::Good => {}
            Cached::Absent => bail!("apt-get download did not produce {}", paths::display(&deb)),
            Cached::Bad(actual) => bail!(
                "{} {} downloaded with SHA-256 {actual}, but guest.toml pins {}",
                package.package,
                package.version,
                package.sha256
            ),
        }
    }
    Ok(debs)
}

enum Cached {
    Good,
    Absent,
    /// Present with this other hash.
    Bad(String),
}

/// Whether `deb` is there with hash `sha256`. A file once found good is
/// remembered in `<deb>.verified` (hash, size, modification time), so the
/// ~90 MB kernel package is not hashed on every build.
fn cached(deb: &Path, sha256: &str) -> Result<Cached> {
    let Ok(meta) = fs::metadata(deb) else {
        return Ok(Cached::Absent);
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let fingerprint = format!("{sha256} {} {mtime}\n", meta.len());
    let marker = PathBuf::from(format!("{}.verified", deb.display()));
    if fs::read_to_string(&marker).is_ok_and(|m| m == fingerprint) {
        return Ok(Cached::Good);
    }
    let actual = sha256_file(deb)?;
    if actual != sha256 {
        let _ = fs::remove_file(&marker);
        return Ok(Cached::Bad(actual));
    }
    fs::write(&marker, fingerprint)
        .with_context(|| format!("cannot write {}", marker.display()))?;
    Ok(Cached::Good)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes apt able to download `packages`: arm64 in dpkg, the backports
/// source, fresh package lists. Does nothing when apt already knows every
/// pinned version.
fn prepare_apt(packages: &[&Package]) -> Result<()> {
    let native = Cmd::new("dpkg")
        .arg("--print-architecture")
        .read()
        .context("downloading the guests' Debian packages needs dpkg and apt")?;
    let foreign = Cmd::new("dpkg")
        .arg("--print-foreign-architectures")
        .read()?;
    let add_arch = native.trim() != ARCH && !foreign.lines().any(|l| l.trim() == ARCH);
    let add_backports =
        packages.iter().any(|p| p.suite == BACKPORTS_SUITE) && !prereqs::backports_configured();
    if let Some(p) = packages
        .iter()
        .find(|p| p.suite.ends_with("-backports") && p.suite != BACKPORTS_SUITE)
    {
        bail!(
            "{} comes from {}, but xtask only knows how to add the {BACKPORTS_SUITE} apt source",
            p.package,
            p.suite
        );
    }
    let unknown = |p: &&&Package| !apt_versions(p).contains(&p.version);
    let update = add_arch || add_backports || packages.iter().any(|p| unknown(&p));
    if !update {
        return Ok(());
    }
    if !prereqs::is_root() {
        let mut commands = Vec::new();
        if add_arch {
            commands.push(format!("sudo dpkg --add-architecture {ARCH}"));
        }
        if add_backports {
            commands.push(format!(
                "printf '{}' | sudo tee {BACKPORTS_FILE} >/dev/null",
                BACKPORTS_SOURCE.replace('\n', "\\n")
            ));
        }
        commands.push("sudo apt-get update".to_string());
        bail!(
            "apt cannot download the guests' {ARCH} packages yet. Fix it with:\n\n  {}\n",
            commands.join(" && ")
        );
    }
    if add_arch {
        step(format!("Adding the {ARCH} architecture to dpkg"));
        Cmd::new("dpkg").args(["--add-architecture", ARCH]).run()?;
    }
    if add_backports {
        step(format!(
            "Adding the {BACKPORTS_SUITE} apt source ({BACKPORTS_FILE})"
        ));
        fs::write(BACKPORTS_FILE, BACKPORTS_SOURCE)
            .with_context(|| format!("cannot write {BACKPORTS_FILE}"))?;
    }
    step("apt-get update");
    Cmd::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .arg("update")
        .run()?;
    for package in packages {
        let offered = apt_versions(package);
        if !offered.contains(&package.version) {
            let advice = match current_pin(package) {
                Some(pin) => format!(
                    "{} has now:\n\n{pin}\n\nPut that in guest.toml",
                    package.suite
                ),
                None => format!(
                    "Pin another version in guest.toml, with the SHA256 that \
                     `apt-cache show {}:{ARCH}=VERSION` prints",
                    package.package
                ),
            };
            bail!(
                "{}:{ARCH} {} is not in the apt archive any more (apt offers: {}). {advice}",
                package.package,
                package.version,
                if offered.is_empty() {
                    "nothing".to_string()
                } else {
                    offered.join(", ")
                },
            );
        }
    }
    Ok(())
}

/// What to pin instead of `package` today, as guest.toml lines: the newest
/// version in its suite of the package itself or, when it `follows` a
/// metapackage, of the package that one depends on now.
fn current_pin(package: &Package) -> Option<String> {
    let newest = |name: &str| {
        let text = Cmd::new("apt-cache")
            .arg("madison")
            .arg(format!("{name}:{ARCH}"))
            .read()
            .ok()?;
        versions_in_suite(&text, &package.suite).into_iter().next()
    };
    let show = |name: &str, version: &str| {
        Cmd::new("apt-cache")
            .arg("show")
            .arg(format!("{name}:{ARCH}={version}"))
            .read()
            .ok()
    };
    let (name, version) = match &package.follows {
        None => (package.package.clone(), newest(&package.package)?),
        Some(meta) => exact_dependency(&show(meta, &newest(meta)?)?)?,
    };
    let sha256 = field(&show(&name, &version)?, "SHA256")?;
    Some(format!(
        "package = \"{name}\"\nversion = \"{version}\"\nsha256 = \"{sha256}\""
    ))
}

/// Versions in `apt-cache madison` output that come from `suite`.
fn versions_in_suite(madison: &str, suite: &str) -> Vec<String> {
    madison
        .lines()
        .filter_map(|l| {
            let mut columns = l.split('|').map(str::trim);
            let version = columns.nth(1)?;
            let source = columns.next()?;
            source
                .split_whitespace()
                .any(|w| w.split('/').next() == Some(suite))
                .then(|| version.to_string())
        })
        .collect()
}

/// The first `name (= version)` of a package record's `Depends:`.
fn exact_dependency(record: &str) -> Option<(String, String)> {
    let depends = field(record, "Depends")?;
    depends.split(',').find_map(|d| {
        let (name, rest) = d.trim().split_once(' ')?;
        let version = rest.trim().strip_prefix("(=")?.strip_suffix(')')?.trim();
        Some((name.to_string(), version.to_string()))
    })
}

/// A field of the first record in `apt-cache show` output.
fn field(record: &str, key: &str) -> Option<String> {
    record
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The versions of `package` (arm64) apt can download.
fn apt_versions(package: &Package) -> Vec<String> {
    Cmd::new("apt-cache")
        .arg("madison")
        .arg(format!("{}:{ARCH}", package.package))
        .read()
        .map(|text| parse_madison(&text))
        .unwrap_or_default()
}

/// `name | version | source` lines -> versions.
fn parse_madison(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split('|').nth(1))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `apt-get download NAME:arm64=VERSION` in `dir`, with apt's progress.
fn download(package: &Package, dir: &Path) -> Result<()> {
    let name = format!("{}:{ARCH}={}", package.package, package.version);
    step(format!(
        "Downloading {name} ({}) into {}",
        package.suite,
        paths::display(dir)
    ));
    let mut cmd = Cmd::new("apt-get");
    if prereqs::is_root() {
        // apt drops to the `_apt` user for downloads, which may not be
        // able to write into the work tree.
        cmd = cmd.args(["-o", "APT::Sandbox::User=root"]);
    }
    let cmd = cmd.arg("download").arg(&name);
    println!("$ {}", cmd.text());
    let text = cmd.text().to_string();
    let mut command = cmd.into_command();
    command.current_dir(dir);
    let status = command
        .status()
        .map_err(|e| crate::process::spawn_error(&text, e))?;
    check(&text, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(version: &str) -> Package {
        Package {
            package: "busybox-static".into(),
            version: version.into(),
            sha256: String::new(),
            suite: "bookworm".into(),
            follows: None,
        }
    }

    #[test]
    fn file_names_follow_apt() {
        assert_eq!(
            deb_file_name(&package("1:1.35.0-4+deb12u1+b1")),
            "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb"
        );
    }

    #[test]
    fn madison_lines() {
        let text = "linux-image-x:arm64 | 6.12.95-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main arm64 Packages\n\
                    linux-image-x:arm64 |  6.1.1-1 | http://deb.debian.org/debian bookworm/main arm64 Packages\n";
        assert_eq!(parse_madison(text), ["6.12.95-1~bpo12+1", "6.1.1-1"]);
        assert!(parse_madison("").is_empty());
    }

    #[test]
    fn pins_from_apt_records() {
        let madison = "linux-image-arm64:arm64 | 6.12.95-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main arm64 Packages\n\
                       linux-image-arm64:arm64 | 6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main arm64 Packages\n\
                       linux-image-arm64:arm64 | 6.1.176-1 | http://deb.debian.org/debian bookworm/main arm64 Packages\n";
        assert_eq!(
            versions_in_suite(madison, "bookworm-backports"),
            ["6.12.95-1~bpo12+1"]
        );
        assert_eq!(versions_in_suite(madison, "bookworm"), ["6.1.176-1"]);
        let record = "Package: linux-image-arm64\nVersion: 6.12.95-1~bpo12+1\n\
                      Depends: linux-image-6.12.95+deb12-arm64 (= 6.12.95-1~bpo12+1), other\n\
                      SHA256: abc\n\nPackage: second\nSHA256: def\n";
        assert_eq!(
            exact_dependency(record),
            Some((
                "linux-image-6.12.95+deb12-arm64".into(),
                "6.12.95-1~bpo12+1".into()
            ))
        );
        assert_eq!(field(record, "SHA256").as_deref(), Some("abc"));
        assert_eq!(field(record, "Missing"), None);
        assert_eq!(exact_dependency("Depends: a (>= 1)\n"), None);
    }

    #[test]
    fn hashes_files() {
        let path = std::env::temp_dir().join(format!("xtask-sha-{}", std::process::id()));
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let marker = PathBuf::from(format!("{}.verified", path.display()));
        let good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(matches!(cached(&path, good).unwrap(), Cached::Good));
        assert!(marker.is_file());
        assert!(matches!(
            cached(&path, &"0".repeat(64)).unwrap(),
            Cached::Bad(_)
        ));
        assert!(!marker.exists());
        fs::remove_file(&path).unwrap();
        assert!(matches!(cached(&path, good).unwrap(), Cached::Absent));
    }
}
