//! Where things live in the workspace and under `target/`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// Target triple of the EL2 hypervisor binary.
pub const HV_TARGET: &str = "aarch64-unknown-none-softfloat";
/// Target triple of the bare-metal test partitions.
pub const GUEST_TARGET: &str = "aarch64-unknown-none";
/// Config used by `build` and `run` when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/qemu-virt/default.toml";

/// The workspace root (the parent of this crate's folder).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits directly in the workspace root")
}

/// `board/`: one folder per board, each with a `board.toml`.
pub fn boards_dir() -> PathBuf {
    root().join("board")
}

/// `target/`: everything xtask produces goes below it.
pub fn target_dir() -> PathBuf {
    root().join("target")
}

/// `target/partitions/`: guest images (`<bin>.img`) that configs refer to.
pub fn partitions_dir() -> PathBuf {
    target_dir().join("partitions")
}

/// `target/hv/`: one hypervisor image per config (`<config-stem>.bin`).
pub fn hv_dir() -> PathBuf {
    target_dir().join("hv")
}

/// `target/test-logs/`: serial output of each QEMU scenario.
pub fn test_logs_dir() -> PathBuf {
    target_dir().join("test-logs")
}

/// Turns a path given on the command line (relative to the current
/// directory) into an absolute one, failing with a clear message when the
/// file does not exist.
pub fn absolute_existing(path: &Path) -> Result<PathBuf> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    if !path.exists() {
        anyhow::bail!("{}: no such file", path.display());
    }
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// `path` relative to the workspace root when it is inside it, for
/// shorter messages; otherwise unchanged.
pub fn display(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Creates `dir` (and its parents) if needed.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
