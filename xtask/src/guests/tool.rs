//! The guests' userspace tool (`partitions/ivi/tool`, crate `ivi-tool`),
//! built as a static aarch64 Linux binary.
//!
//! The musl target links on its own: its C runtime ships with the Rust
//! target, and rust-lld (part of every Rust toolchain) is the linker, so
//! no cross C toolchain is needed. The linker is set through the
//! environment, for this build only.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::paths;
use crate::prereqs;
use crate::process::{Cmd, step};

/// Target triple of the guests' Linux userspace (listed in
/// rust-toolchain.toml).
pub const TARGET: &str = "aarch64-unknown-linux-musl";
/// The crate, and its binary.
pub const PACKAGE: &str = "ivi-tool";
const LINKER_VAR: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER";

/// Builds the tool and returns the stripped binary.
pub fn build() -> Result<Vec<u8>> {
    step(format!("Building {PACKAGE} ({TARGET}, static)"));
    Cmd::cargo()
        .env(LINKER_VAR, "rust-lld")
        .args(["build", "--release", "-p", PACKAGE, "--target", TARGET])
        .run()?;
    let elf = target_directory()?
        .join(TARGET)
        .join("release")
        .join(PACKAGE);
    let stripped = super::apt::cache_dir().join(format!("{PACKAGE}.stripped"));
    paths::create_dir(stripped.parent().expect("in the cache"))?;
    Cmd::new(prereqs::llvm_objcopy()?)
        .arg("--strip-all")
        .arg(&elf)
        .arg(&stripped)
        .read()?;
    let binary =
        std::fs::read(&stripped).with_context(|| format!("cannot read {}", stripped.display()))?;
    check_static_aarch64(&binary).with_context(|| format!("{}", elf.display()))?;
    Ok(binary)
}

/// The binary must run in an initramfs with nothing else in it: an
/// AArch64 ELF executable without a program interpreter (PT_INTERP).
pub fn check_static_aarch64(elf: &[u8]) -> Result<()> {
    const EM_AARCH64: u16 = 183;
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") || u16_at(0x12) != Some(EM_AARCH64) {
        bail!("not a 64-bit little-endian AArch64 ELF file");
    }
    let phoff = u64_at(0x20).context("short ELF header")? as usize;
    let phentsize = u16_at(0x36).context("short ELF header")? as usize;
    let phnum = u16_at(0x38).context("short ELF header")? as usize;
    for i in 0..phnum {
        let kind = u32_at(phoff + i * phentsize).context("program headers cut short")?;
        if kind == PT_INTERP {
            bail!("dynamically linked (it has a program interpreter); it must be static");
        }
    }
    Ok(())
}

/// Cargo's target folder (honours `CARGO_TARGET_DIR`).
fn target_directory() -> Result<PathBuf> {
    #[derive(Deserialize)]
    struct Metadata {
        target_directory: PathBuf,
    }
    let json = Cmd::cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .read()?;
    let metadata: Metadata =
        serde_json::from_str(&json).context("cannot parse `cargo metadata` output")?;
    Ok(metadata.target_directory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(machine: u16, interp: bool) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 2 * 56];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        e[64..68].copy_from_slice(&1u32.to_le_bytes());
        let second: u32 = if interp { 3 } else { 1 };
        e[120..124].copy_from_slice(&second.to_le_bytes());
        e
    }

    #[test]
    fn static_aarch64_only() {
        check_static_aarch64(&elf(183, false)).unwrap();
        assert!(check_static_aarch64(&elf(183, true)).is_err());
        assert!(check_static_aarch64(&elf(62, false)).is_err());
        assert!(check_static_aarch64(b"MZ").is_err());
    }
}
