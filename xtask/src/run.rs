//! `cargo xtask run [--config FILE] [-- QEMU ARGS]`: build, then boot the
//! system in QEMU with the serial console on this terminal, and the board's
//! disk (`target/disk/<board>.img`, kept between runs) attached.

use std::path::Path;

use anyhow::Result;

use crate::board::{self, Board};
use crate::process::step;
use crate::qemu::{self, MachineChanges};
use crate::{build, disk};

pub fn run(config: &Path, extra_args: &[String]) -> Result<()> {
    let image = build::run(config)?;
    let board = Board::load(&board::name_for_config(config)?)?;
    let changes = MachineChanges {
        disk: disk::for_board(&board.name, false)?,
        ..Default::default()
    };
    let cmd = qemu::command(&board, &image, &changes)?.args(extra_args);
    step("Starting QEMU (quit with Ctrl-A then X; Ctrl-A C toggles the QEMU monitor)");
    qemu::run_interactive(cmd)
}
