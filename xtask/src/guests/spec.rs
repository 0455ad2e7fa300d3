//! `partitions/<guest>/guest.toml`: the pinned inputs of a Linux guest.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

/// A guest's `guest.toml`, plus where it was read from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub kernel: Kernel,
    pub busybox: Package,
    pub initramfs: Initramfs,
    /// The guest's folder (`partitions/<guest>`).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// A Debian arm64 package, pinned to the byte.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub package: String,
    pub version: String,
    /// SHA-256 of the .deb, lower-case hex.
    pub sha256: String,
    /// The suite it comes from (`bookworm`, `bookworm-backports`): tells
    /// which apt source must be there to download it.
    pub suite: String,
    /// The package whose current version in `suite` this pin was taken
    /// from, when that is another one (the kernel follows the
    /// `linux-image-arm64` metapackage): used to suggest a new pin when
    /// this version has left the archive.
    #[serde(default)]
    pub follows: Option<String>,
}

/// The kernel package, and what to take from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub package: String,
    pub version: String,
    pub sha256: String,
    pub suite: String,
    #[serde(default)]
    pub follows: Option<String>,
    /// Module names to load at boot, in order.
    #[serde(default)]
    pub modules: Vec<String>,
}

impl Kernel {
    pub fn deb(&self) -> Package {
        Package {
            package: self.package.clone(),
            version: self.version.clone(),
            sha256: self.sha256.clone(),
            suite: self.suite.clone(),
            follows: self.follows.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Initramfs {
    /// The /init script, relative to the guest's folder.
    pub init: PathBuf,
}

impl Spec {
    /// Reads and checks `dir/guest.toml`.
    pub fn load(dir: &Path) -> Result<Spec> {
        let path = dir.join("guest.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut spec = Spec::parse(&text).with_context(|| format!("{}", path.display()))?;
        spec.dir = dir.to_path_buf();
        Ok(spec)
    }

    pub fn parse(text: &str) -> Result<Spec> {
        let spec: Spec = toml::from_str(text)?;
        for package in [&spec.kernel.deb(), &spec.busybox] {
            let hex = package.sha256.len() == 64
                && package
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex {
                bail!(
                    "{}: sha256 must be 64 lower-case hex digits",
                    package.package
                );
            }
            if package.package.is_empty() || package.version.is_empty() {
                bail!("a package needs a name and a version");
            }
        }
        Ok(spec)
    }

    /// The /init script.
    pub fn init_path(&self) -> PathBuf {
        self.dir.join(&self.initramfs.init)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "08f6c01d4c68c5136106f51302d1b564f40325be2b6bfada71269929e9b5b336";

    fn text(kernel_hash: &str) -> String {
        format!(
            "[kernel]\npackage = \"linux-image-x\"\nversion = \"1.0-1\"\nsha256 = \"{kernel_hash}\"\n\
             suite = \"bookworm-backports\"\nfollows = \"linux-image-arm64\"\nmodules = [\"a\", \"b-c\"]\n\
             [busybox]\npackage = \"busybox-static\"\nversion = \"1:1.0\"\nsha256 = \"{HASH}\"\nsuite = \"bookworm\"\n\
             [initramfs]\ninit = \"init\"\n"
        )
    }

    #[test]
    fn parses() {
        let spec = Spec::parse(&text(HASH)).unwrap();
        assert_eq!(spec.kernel.package, "linux-image-x");
        assert_eq!(spec.kernel.deb().suite, "bookworm-backports");
        assert_eq!(
            spec.kernel.deb().follows.as_deref(),
            Some("linux-image-arm64")
        );
        assert_eq!(spec.busybox.follows, None);
        assert_eq!(spec.kernel.modules, ["a", "b-c"]);
        assert_eq!(spec.busybox.version, "1:1.0");
        assert_eq!(spec.initramfs.init, PathBuf::from("init"));
    }

    #[test]
    fn refuses_bad_hashes_and_unknown_keys() {
        assert!(Spec::parse(&text("abc")).is_err());
        assert!(Spec::parse(&text(&HASH.to_uppercase())).is_err());
        let extra = text(HASH).replace("[initramfs]\n", "[initramfs]\nsize = 3\n");
        assert!(Spec::parse(&extra).is_err());
    }

    #[test]
    fn the_ivi_guest_toml_is_valid() {
        let spec = Spec::load(&crate::paths::root().join("partitions/ivi")).unwrap();
        assert!(spec.init_path().is_file());
        assert!(!spec.kernel.modules.is_empty());
    }
}
