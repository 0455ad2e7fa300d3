//! `board/<name>/board.toml`: the board facts xtask needs (how to start
//! QEMU for it), and which board a config is for.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::paths;

/// The part of `board.toml` xtask uses (other keys are for the hypervisor).
#[derive(Debug, Deserialize)]
pub struct Board {
    pub name: String,
    /// How to emulate this board; absent for boards QEMU does not model.
    pub qemu: Option<QemuMachine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QemuMachine {
    /// `-M` value, e.g. `virt,virtualization=on,gic-version=3`.
    pub machine: String,
    /// `-cpu` value; absent for machines with fixed cores.
    #[serde(default)]
    pub cpu: Option<String>,
    /// `-smp` value.
    pub smp: u32,
    /// `-m` value, e.g. `2G`.
    pub memory: String,
    /// Where QEMU's virtio-mmio transports are: bus `virtio-mmio-bus.<n>`
    /// at `virtio_mmio_base + n * virtio_mmio_stride`.
    #[serde(default)]
    pub virtio_mmio_base: Option<u64>,
    #[serde(default)]
    pub virtio_mmio_stride: Option<u64>,
    /// The device-tree node of the disk xtask attaches (`disk.toml`'s
    /// layout), for configs that share it.
    #[serde(default)]
    pub disk: Option<String>,
    /// The board's DTB (in its folder) for machines that make none (`-dtb`).
    #[serde(default)]
    pub dtb: Option<String>,
    /// Which of QEMU's serial ports (from 0) is the console UART; the ones
    /// before it go nowhere.
    #[serde(default)]
    pub console_serial: u32,
    /// U-Boot built for this machine (`-bios`), to boot a flashed image as
    /// the board would; and the Debian package that has it.
    #[serde(default)]
    pub u_boot: Option<String>,
    #[serde(default)]
    pub u_boot_package: Option<String>,
}

impl QemuMachine {
    /// The `virtio-mmio-bus.<n>` whose transport is at `base`, if the
    /// board says where its transports are.
    pub fn virtio_mmio_bus(&self, base: u64) -> Option<u64> {
        let (first, stride) = (self.virtio_mmio_base?, self.virtio_mmio_stride?);
        let offset = base.checked_sub(first)?;
        (stride > 0 && offset.is_multiple_of(stride)).then_some(offset / stride)
    }
}

impl Board {
    /// Reads `board/<name>/board.toml`.
    pub fn load(name: &str) -> Result<Board> {
        let path = paths::boards_dir().join(name).join("board.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", paths::display(&path)))?;
        toml::from_str(&text)
            .with_context(|| format!("{}: invalid board file", paths::display(&path)))
    }

    /// The DTB QEMU boots this board with, if its machine makes none.
    pub fn dtb_for_qemu(&self) -> Result<Option<std::path::PathBuf>> {
        let Some(dtb) = self.qemu()?.dtb.as_ref() else {
            return Ok(None);
        };
        let path = paths::boards_dir().join(&self.name).join(dtb);
        if !path.is_file() {
            bail!("board {}: no {}", self.name, paths::display(&path));
        }
        Ok(Some(path))
    }

    /// The U-Boot that boots this board's flashed image under QEMU, or why
    /// there is none.
    pub fn u_boot_for_qemu(&self) -> Result<std::path::PathBuf> {
        let qemu = self.qemu()?;
        let Some(path) = qemu.u_boot.as_ref() else {
            bail!(
                "board {} names no U-Boot for QEMU ([qemu] u_boot)",
                self.name
            );
        };
        let path = std::path::PathBuf::from(path);
        if !path.is_file() {
            bail!(
                "{} is missing: install Debian's {} (.ci/run does)",
                path.display(),
                qemu.u_boot_package.as_deref().unwrap_or("U-Boot package")
            );
        }
        Ok(path)
    }

    /// The QEMU machine of this board, or an error saying it has none.
    pub fn qemu(&self) -> Result<&QemuMachine> {
        match &self.qemu {
            Some(qemu) => Ok(qemu),
            None => bail!(
                "board {} has no [qemu] table: it cannot be emulated",
                self.name
            ),
        }
    }
}

/// The board a config file is written for: its top-level `board = "..."`
/// key, or else the nearest folder above it named like a folder of
/// `board/` (`config/qemu-virt/tests/two.toml` is for `qemu-virt`).
pub fn name_for_config(config: &Path) -> Result<String> {
    let text = std::fs::read_to_string(config)
        .with_context(|| format!("cannot read {}", paths::display(config)))?;
    if let Ok(table) = text.parse::<toml::Table>()
        && let Some(toml::Value::String(name)) = table.get("board")
    {
        return Ok(name.clone());
    }
    let boards = paths::boards_dir();
    for dir in config.ancestors().skip(1) {
        if let Some(name) = dir.file_name().and_then(|n| n.to_str())
            && boards.join(name).join("board.toml").is_file()
        {
            return Ok(name.to_string());
        }
    }
    bail!(
        "{}: cannot tell which board it is for (no `board` key, and no folder above it is named after a folder of board/)",
        paths::display(config)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_virt_board_parses() {
        let board = Board::load("qemu-virt").unwrap();
        assert_eq!(board.name, "qemu-virt");
        let qemu = board.qemu().unwrap();
        assert!(qemu.machine.starts_with("virt"));
        assert!(qemu.smp >= 1);
    }

    #[test]
    fn imx8mp_evk_board_parses() {
        let board = Board::load("imx8mp-evk").unwrap();
        let qemu = board.qemu().unwrap();
        assert_eq!(qemu.machine, "imx8mp-evk");
        assert_eq!(qemu.cpu, None);
        assert_eq!(qemu.console_serial, 1);
        assert!(board.dtb_for_qemu().unwrap().unwrap().is_file());
    }

    #[test]
    fn board_found_from_folder() {
        let dir = paths::target_dir().join("xtask-test-board");
        let config = dir.join("qemu-virt").join("tests").join("x.toml");
        paths::create_dir(config.parent().unwrap()).unwrap();
        std::fs::write(&config, "# no board key\n").unwrap();
        assert_eq!(name_for_config(&config).unwrap(), "qemu-virt");
        std::fs::write(&config, "board = \"other\"\n").unwrap();
        assert_eq!(name_for_config(&config).unwrap(), "other");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
