//! `cargo xtask build [--config FILE] [--release-profile production]`:
//! prerequisites, guest images, config check, hypervisor image.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::process::step;
use crate::{check_config, guests, images, paths, prereqs};

/// Builds everything for `config` (an absolute path) and returns the
/// hypervisor image of `profile`.
pub fn run(config: &Path, profile: images::Profile) -> Result<PathBuf> {
    prereqs::ensure()?;
    images::build_guests()?;
    guests::build_referenced(&[config.to_path_buf()])?;
    step(format!("Checking {}", paths::display(config)));
    match check_config::check(config) {
        Ok(summary) => println!("{}", summary.trim_end()),
        Err(diagnostics) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            bail!("{} is not a valid config", paths::display(config));
        }
    }
    images::build_hypervisor_as(config, profile)
}
