//! `cargo xtask check-config FILE...`, and the one place xtask calls the
//! config crate's validator.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::paths;

/// Where configs find boards and guest images.
fn context() -> config::Context {
    config::Context {
        boards_dir: paths::boards_dir(),
        build_dir: paths::partitions_dir(),
    }
}

/// Validates `path` the way the hypervisor's build script does. Returns the
/// config's summary, or its diagnostics rendered as `file:line:col: message`.
pub fn check(path: &Path) -> Result<String, Vec<String>> {
    config::check(path, &context())
        .map_err(|diagnostics| diagnostics.iter().map(|d| d.to_string()).collect())
}

/// The files a valid config is built from (itself, the board's device tree,
/// every image it names); `None` if it is invalid.
pub fn inputs(path: &Path) -> Option<Vec<PathBuf>> {
    config::load(path, &context())
        .ok()
        .map(|loaded| loaded.dependencies)
}

/// Checks each file: prints the summary of a valid one on stdout and each
/// diagnostic of an invalid one on stderr. Fails if any file is invalid.
pub fn run(files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        bail!("usage: cargo xtask check-config FILE...");
    }
    let mut invalid = 0;
    for file in files {
        if !file.is_file() {
            eprintln!("{}: no such file", file.display());
            invalid += 1;
            continue;
        }
        match check(file) {
            Ok(summary) => {
                println!("{}: ok", file.display());
                println!("{}", summary.trim_end());
            }
            Err(diagnostics) => {
                invalid += 1;
                for diagnostic in &diagnostics {
                    eprintln!("{diagnostic}");
                }
                if diagnostics.is_empty() {
                    eprintln!("{}: invalid (no diagnostic given)", file.display());
                }
            }
        }
    }
    if invalid > 0 {
        bail!("{invalid} of {} config file(s) invalid", files.len());
    }
    Ok(())
}
