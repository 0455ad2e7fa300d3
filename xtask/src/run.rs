//! `cargo xtask run [--config FILE] [-- QEMU ARGS]`: build, then boot the
//! system in QEMU with the serial console on this terminal.

use std::path::Path;

use anyhow::{Result, bail};

use crate::board::{self, Board};
use crate::build;
use crate::process::step;
use crate::qemu::{self, Qemu};

pub fn run(config: &Path, extra_args: &[String]) -> Result<()> {
    let image = build::run(config)?;
    let board = Board::load(&board::name_for_config(config)?)?;
    let cmd = qemu::command(&board, &image, &Default::default())?.args(extra_args);
    step("Starting QEMU (quit with Ctrl-A then X; Ctrl-A C toggles the QEMU monitor)");
    println!("$ {}", cmd.text());
    let text = cmd.text().to_string();
    let mut qemu = Qemu::spawn(cmd.into_command(), &text)?;
    let status = qemu.child().wait()?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
