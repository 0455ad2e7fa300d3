//! Partition configuration.
//!
//! `model` is the validated, static form of a system configuration. It is
//! `no_std` and allocation-free so the hypervisor can link it: the build
//! script of the hypervisor parses and validates the TOML file on the host
//! and emits Rust source that constructs a `model::System` as a `static`.
//! Nothing parses TOML at EL2.
//!
//! With the `std` feature (the default) the crate also holds that host
//! side: [`load`] parses and validates a config against its board's device
//! tree, [`codegen::rust_source`] turns the result into Rust source, and
//! [`check`] is what `cargo xtask check-config` runs ([`explain()`] with
//! `--explain` and `--json`). The file format is described in
//! `docs/config.md`.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub mod layout;
pub mod model;

#[cfg(feature = "std")]
pub mod codegen;
#[cfg(feature = "std")]
mod diag;
#[cfg(feature = "std")]
mod dtb;
#[cfg(feature = "std")]
pub mod explain;
#[cfg(feature = "std")]
pub mod generate;
#[cfg(feature = "std")]
mod owned;
#[cfg(feature = "std")]
mod raw;
#[cfg(feature = "std")]
mod validate;

#[cfg(feature = "std")]
pub use diag::{Diagnostic, line_col};
#[cfg(feature = "std")]
pub use owned::{
    AllExcept, LeftOut, Loaded, OwnedAudio, OwnedDevice, OwnedDisk, OwnedDiskExtent, OwnedDisplay,
    OwnedHypervisor, OwnedInitrd, OwnedPartition, OwnedPartitionAudio, OwnedStorage, OwnedSystem,
    OwnedTouch, OwnedTouchPointer,
};

#[cfg(feature = "std")]
use std::path::{Path, PathBuf};

/// Where a config's outside references point.
#[cfg(feature = "std")]
#[derive(Debug, Clone)]
pub struct Context {
    /// The workspace's `board/` folder: `board = "x"` means
    /// `<boards_dir>/x/x.dtb`.
    pub boards_dir: PathBuf,
    /// What an image or initrd path starting with `@/` is relative to
    /// (the folder guest images are built into, `target/partitions`).
    pub build_dir: PathBuf,
}

/// Reads, parses and validates the config at `path`.
///
/// On success the result holds the validated system and every file it was
/// built from (for `cargo:rerun-if-changed`). On failure it holds every
/// problem found, sorted by position; a TOML syntax or shape error stops
/// parsing, so it comes alone.
#[cfg(feature = "std")]
pub fn load(path: &Path, ctx: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let bytes = std::fs::read(path)
        .map_err(|e| vec![diag::whole_file(path, format!("cannot read config: {e}"))])?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Point at the offending byte: TOML must be UTF-8, and the column
        // is still meaningful for everything before it.
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.into_bytes()[..valid]).into_owned();
        let (line, col) = line_col(&text, valid);
        vec![Diagnostic {
            file: path.to_path_buf(),
            line,
            col,
            message: "config is not valid UTF-8".into(),
        }]
    })?;
    load_str(path, &text, ctx)
}

/// Like [`load`], with the file's contents already read. `path` names the
/// file in diagnostics and anchors relative image and initrd paths.
#[cfg(feature = "std")]
pub fn load_str(path: &Path, text: &str, ctx: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let mut diags = diag::Diagnostics::new(path, text);
    let raw = match raw::parse(text) {
        Ok(raw) => raw,
        Err((span, message)) => {
            diags.error(span, message);
            return Err(diags.into_sorted());
        }
    };
    match validate::validate(&raw, path, ctx, &mut diags) {
        Some((system, mut dependencies)) if diags.is_empty() => {
            dependencies.insert(0, path.to_path_buf());
            Ok(Loaded {
                source: path.to_path_buf(),
                system,
                dependencies,
            })
        }
        _ => Err(diags.into_sorted()),
    }
}

/// Validates the config at `path` and describes it for a person:
/// partitions, their cpus and memory. This is `cargo xtask check-config`.
#[cfg(feature = "std")]
pub fn check(path: &Path, ctx: &Context) -> Result<String, Vec<Diagnostic>> {
    load(path, ctx).map(|loaded| loaded.system.summary())
}

/// Validates the config at `path` and lays the resolved system out for
/// `cargo xtask check-config --explain` and `--json`.
#[cfg(feature = "std")]
pub fn explain(path: &Path, ctx: &Context) -> Result<explain::Explanation, Vec<Diagnostic>> {
    load(path, ctx).map(|loaded| explain::Explanation::of(&loaded.system))
}

#[cfg(all(test, feature = "std"))]
mod tests;
