//! `cargo xtask run [--config FILE] [-- QEMU ARGS]`: build, then boot the
//! system in QEMU with the serial console on this terminal, the board's
//! disk (`target/disk/<board>.img`, kept between runs) attached, and the
//! config's displays in a window when there is a graphical session (else
//! headless). Every few seconds the displays are saved as PNGs in
//! `target/screens/run/`; `cargo xtask screenshot` saves them at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::board::{self, Board};
use crate::process::step;
use crate::qemu::{self, MachineChanges, QemuDisplay};
use crate::qmp::Qmp;
use crate::{build, disk, paths};

/// How often `run` saves the displays.
const SCREENSHOT_EVERY: Duration = Duration::from_secs(5);

pub fn run(config: &Path, extra_args: &[String]) -> Result<()> {
    let image = build::run(config)?;
    let board = Board::load(&board::name_for_config(config)?)?;
    let displays = qemu::displays_of(config)?;
    let socket = qmp_socket();
    if !displays.is_empty() {
        paths::create_dir(socket.parent().expect("in target/qmp"))?;
        let _ = std::fs::remove_file(&socket);
    }
    let window = !displays.is_empty()
        && (std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some());
    let changes = MachineChanges {
        disk: disk::for_board(&board.name, false)?,
        qmp: (!displays.is_empty()).then(|| socket.clone()),
        displays: displays.clone(),
        window,
        ..Default::default()
    };
    let cmd = qemu::command(&board, &image, &changes)?.args(extra_args);
    if !displays.is_empty() {
        let dir = screens_dir();
        step(format!(
            "Displays {}: {}; saved every {} s in {} (or now: cargo xtask screenshot)",
            displays
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if window { "in a window" } else { "headless" },
            SCREENSHOT_EVERY.as_secs(),
            paths::display(&dir)
        ));
        let socket = socket.clone();
        std::thread::spawn(move || keep_screenshots(&socket, &displays, &dir));
    }
    step("Starting QEMU (quit with Ctrl-A then X; Ctrl-A C toggles the QEMU monitor)");
    qemu::run_interactive(cmd)
}

/// The QMP socket of `cargo xtask run`.
fn qmp_socket() -> PathBuf {
    paths::target_dir().join("qmp").join("run.sock")
}

fn screens_dir() -> PathBuf {
    paths::target_dir().join("screens").join("run")
}

/// Saves every display to `dir/<display>.png` now and then, until QEMU
/// goes away.
fn keep_screenshots(socket: &Path, displays: &[QemuDisplay], dir: &Path) {
    let Ok(mut qmp) = Qmp::connect(socket, Duration::from_secs(30)) else {
        return;
    };
    if paths::create_dir(dir).is_err() {
        return;
    }
    loop {
        std::thread::sleep(SCREENSHOT_EVERY);
        if save_all(&mut qmp, displays, dir).is_err() {
            return;
        }
    }
}

/// Dumps every display to `dir/<display>.png`; returns the files.
fn save_all(qmp: &mut Qmp, displays: &[QemuDisplay], dir: &Path) -> Result<Vec<PathBuf>> {
    displays
        .iter()
        .map(|d| {
            let path = dir.join(format!("{}.png", d.name));
            qmp.screendump(&d.id(), &path)?;
            Ok(path)
        })
        .collect()
}

/// `cargo xtask screenshot [--config FILE]`: saves the displays of the
/// running `cargo xtask run` to `target/screens/<display>.png`.
pub fn screenshot(config: &Path) -> Result<()> {
    let displays = qemu::displays_of(config)?;
    if displays.is_empty() {
        bail!("{} declares no display", paths::display(config));
    }
    let mut qmp = Qmp::connect(&qmp_socket(), Duration::ZERO)
        .map_err(|e| anyhow::anyhow!("{e:#}: is `cargo xtask run` running (with this config)?"))?;
    let dir = paths::target_dir().join("screens");
    paths::create_dir(&dir)?;
    for path in save_all(&mut qmp, &displays, &dir)? {
        println!("{}", paths::display(&path));
    }
    Ok(())
}
