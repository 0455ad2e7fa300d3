//! Putting a Linux guest together from its packages: the kernel `Image`
//! from the kernel package, and an initramfs with busybox, /init, the
//! modules the guest lists (plus their dependencies), `modules.dep` and the
//! guests' tool.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use flate2::{Compression, GzBuilder};

use super::cpio::Archive;
use super::modules::{self, Selection, Shipped};
use super::spec::Spec;
use super::{deb, kernel};

/// Where /init reads the names of the modules to load.
pub const MODULE_LIST: &str = "etc/ivi/modules";

/// A guest's assets, in memory.
pub struct Built {
    pub image: Vec<u8>,
    pub initramfs: Vec<u8>,
    /// Size of the initramfs before compression.
    pub cpio_len: usize,
    /// `uname -r` of the kernel.
    pub release: String,
    /// What vmlinuz was.
    pub shape: kernel::Shape,
    pub modules: Selection,
}

/// Builds the assets of `spec` from its kernel and busybox packages.
pub fn assemble(
    spec: &Spec,
    kernel_deb: &Path,
    busybox_deb: &Path,
    init: &[u8],
    tool: &[u8],
) -> Result<Built> {
    // The kernel, its module lists and every module file (compressed; only
    // the needed ones get decompressed).
    let files = deb::files(kernel_deb, |p| {
        let p = p.strip_prefix("usr/").unwrap_or(p);
        p.starts_with("boot/vmlinuz-")
            || (p.starts_with("lib/modules/")
                && (p.ends_with(".ko") || p.ends_with(".ko.xz") || p.ends_with("/modules.builtin")))
    })?;
    let vmlinuz: Vec<&String> = files
        .keys()
        .filter(|p| p.starts_with("boot/vmlinuz-"))
        .collect();
    let [vmlinuz] = vmlinuz[..] else {
        bail!(
            "{}: expected one boot/vmlinuz-*, found {vmlinuz:?}",
            kernel_deb.display()
        );
    };
    let release = vmlinuz["boot/vmlinuz-".len()..].to_string();
    let (image, shape) = kernel::image_from_vmlinuz(&files[vmlinuz])
        .with_context(|| format!("{}: {vmlinuz}", kernel_deb.display()))?;

    let mut builtin = None;
    let mut shipped = Shipped::new();
    for (path, data) in files {
        let path = path.strip_prefix("usr/").unwrap_or(&path);
        let Some(rel) = path.strip_prefix(&format!("lib/modules/{release}/")) else {
            continue;
        };
        if rel == "modules.builtin" {
            builtin = Some(String::from_utf8_lossy(&data).into_owned());
        } else {
            shipped.insert(rel.to_string(), data);
        }
    }
    let builtin = builtin.with_context(|| {
        format!(
            "{}: no lib/modules/{release}/modules.builtin",
            kernel_deb.display()
        )
    })?;
    let selection = modules::select(&spec.kernel.modules, &builtin, &shipped)?;

    let busybox = deb::files(busybox_deb, |p| {
        p == "bin/busybox" || p == "usr/bin/busybox"
    })?
    .into_values()
    .next()
    .with_context(|| format!("{}: no bin/busybox", busybox_deb.display()))?;

    let mut archive = Archive::new();
    for dir in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc",
    ] {
        archive.dir(dir)?;
    }
    // The kernel opens /dev/console for /init before anything is mounted.
    archive.char_device("dev/console", 0o600, 5, 1)?;
    archive.file("init", 0o755, init.to_vec())?;
    archive.file("bin/busybox", 0o755, busybox)?;
    archive.symlink("bin/sh", "busybox")?;
    archive.file("bin/ivi-tool", 0o755, tool.to_vec())?;
    let module_dir = format!("lib/modules/{release}");
    archive.dir(&module_dir)?;
    for module in &selection.modules {
        archive.file(
            &format!("{module_dir}/{}", module.path),
            0o644,
            module.data.clone(),
        )?;
    }
    archive.file(
        &format!("{module_dir}/modules.dep"),
        0o644,
        modules::modules_dep(&selection.modules).into_bytes(),
    )?;
    let mut list = String::from("# Loaded in this order by /init (from guest.toml).\n");
    for name in &selection.load {
        list.push_str(name);
        list.push('\n');
    }
    archive.file(MODULE_LIST, 0o644, list.into_bytes())?;

    let cpio = archive.finish();
    let initramfs = gzip(&cpio)?;
    Ok(Built {
        image,
        initramfs,
        cpio_len: cpio.len(),
        release,
        shape,
        modules: selection,
    })
}

/// gzip at the best compression, with no name and time 0 in the header so
/// the same archive always gives the same bytes.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn gzip_is_deterministic_and_round_trips() {
        let a = gzip(b"hello initramfs").unwrap();
        assert_eq!(a, gzip(b"hello initramfs").unwrap());
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "mtime 0");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello initramfs");
    }
}
