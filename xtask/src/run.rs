//! `cargo xtask run [--config FILE] [-- QEMU ARGS]`: build, then boot the
//! system in QEMU with the serial console on this terminal, the board's
//! disk (`target/disk/<board>.img`, kept between runs) attached, and the
//! config's displays in a window when there is a graphical session (else
//! headless). In the window, a touch panel with a `pointer` gets a tablet
//! bound to its display: the mouse over that display, its left button
//! down, is a finger on the panel. Every few seconds the displays are saved
//! as PNGs in `target/screens/run/`; `cargo xtask screenshot` saves them at
//! once, and `cargo xtask touch X Y` taps a display's touch panel. The
//! config's audio outputs play through the host's sound server where there
//! is one (PulseAudio or PipeWire), else they are recorded to
//! `target/audio/run-<output>.wav`, complete once QEMU quits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::board::{self, Board};
use crate::process::step;
use crate::qemu::{self, AudioSink, MachineChanges, QemuDisplay};
use crate::qmp::Qmp;
use crate::{build, disk, images, paths};

/// How often `run` saves the displays.
const SCREENSHOT_EVERY: Duration = Duration::from_secs(5);

pub fn run(config: &Path, profile: images::Profile, extra_args: &[String]) -> Result<()> {
    let image = build::run(config, profile)?;
    let board = Board::load(&board::name_for_config(config)?)?;
    let system = qemu::system_of(config)?;
    let displays = qemu::displays_in(&system);
    let sink = host_audio();
    let audio = qemu::audio_in(&system, |name| match sink {
        Some(driver) => AudioSink::Host(driver),
        None => AudioSink::Wav(
            paths::target_dir()
                .join("audio")
                .join(format!("run-{name}.wav")),
        ),
    });
    for output in &audio {
        match &output.sink {
            AudioSink::Host(driver) => step(format!(
                "Audio {}: through the host's sound server (QEMU's {driver} driver)",
                output.name
            )),
            AudioSink::Wav(path) => {
                paths::create_dir(path.parent().expect("in target/audio"))?;
                step(format!(
                    "Audio {}: no sound server here, recorded to {} (complete once QEMU quits)",
                    output.name,
                    paths::display(path)
                ));
            }
        }
    }
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
        // The mouse is only there in a window.
        pointers: window,
        audio,
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
        if let Some(line) = mouse_line(&displays, window) {
            step(line);
        }
        let socket = socket.clone();
        std::thread::spawn(move || keep_screenshots(&socket, &displays, &dir));
    }
    step("Starting QEMU (quit with Ctrl-A then X; Ctrl-A C toggles the QEMU monitor)");
    qemu::run_interactive(cmd)
}

/// The QEMU audio driver for the host's sound server, if this session
/// has one: PipeWire's or PulseAudio's socket in the runtime directory (or
/// `PULSE_SERVER`).
fn host_audio() -> Option<&'static str> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let has = |name: &str| runtime.as_ref().is_some_and(|r| r.join(name).exists());
    if has("pipewire-0") {
        Some("pipewire")
    } else if std::env::var_os("PULSE_SERVER").is_some() || has("pulse/native") {
        Some("pa")
    } else {
        None
    }
}

/// What the mouse does in the window, if anything: one line per run.
fn mouse_line(displays: &[QemuDisplay], window: bool) -> Option<String> {
    let with_pointer: Vec<String> = displays
        .iter()
        .filter_map(|d| {
            let touch = d.touch.as_ref().filter(|t| t.pointer.is_some())?;
            Some(format!("display {} (touch panel {})", d.name, touch.name))
        })
        .collect();
    if with_pointer.is_empty() {
        return None;
    }
    Some(if window {
        format!(
            "Mouse: over {}, hold the left button to touch, as a finger would",
            with_pointer.join(", ")
        )
    } else {
        "Mouse: no window, so no mouse on the touch panels (cargo xtask touch X Y taps them)"
            .to_owned()
    })
}

/// The QMP socket of `cargo xtask run`.
fn qmp_socket() -> PathBuf {
    paths::target_dir().join("qmp").join("run.sock")
}

fn screens_dir() -> PathBuf {
    paths::target_dir().join("screens").join("run")
}

/// Saves every display to `dir/<display>.png` now and then, until QEMU
/// goes away. It connects for each round only: QEMU's QMP socket takes one
/// client at a time, and `cargo xtask screenshot` and `touch` need it too.
fn keep_screenshots(socket: &Path, displays: &[QemuDisplay], dir: &Path) {
    if paths::create_dir(dir).is_err() {
        return;
    }
    let mut patience = Duration::from_secs(30);
    loop {
        std::thread::sleep(SCREENSHOT_EVERY);
        let Ok(mut qmp) = Qmp::connect(socket, patience) else {
            return;
        };
        patience = QMP_PATIENCE;
        if save_all(&mut qmp, displays, dir).is_err() {
            return;
        }
    }
}

/// How long a command waits for the QMP socket (another client may hold
/// it for a moment).
const QMP_PATIENCE: Duration = Duration::from_secs(5);

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
    let mut qmp = Qmp::connect(&qmp_socket(), QMP_PATIENCE)
        .map_err(|e| anyhow::anyhow!("{e:#}: is `cargo xtask run` running (with this config)?"))?;
    let dir = paths::target_dir().join("screens");
    paths::create_dir(&dir)?;
    for path in save_all(&mut qmp, &displays, &dir)? {
        println!("{}", paths::display(&path));
    }
    Ok(())
}

/// `cargo xtask touch X Y [--to X2 Y2] [--display NAME] [--config FILE]`:
/// a finger on the touch panel of the running `cargo xtask run`, at
/// display pixel (X, Y): a tap, or with `--to` a drag there in ten steps.
/// The display is the one with a panel (or the one named).
pub fn touch(config: &Path, args: &[String]) -> Result<()> {
    let usage = "touch X Y [--to X2 Y2] [--display NAME] [--config FILE]";
    let mut numbers = Vec::new();
    let mut name = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--display" => name = it.next().cloned(),
            "--to" => {}
            n => numbers.push(
                n.parse::<u32>()
                    .map_err(|_| anyhow::anyhow!("touch: `{n}` is not a pixel; usage: {usage}"))?,
            ),
        }
    }
    let (from, to) = match numbers[..] {
        [x, y] => ((x, y), None),
        [x, y, x2, y2] => ((x, y), Some((x2, y2))),
        _ => bail!("usage: cargo xtask {usage}"),
    };
    let displays = qemu::displays_of(config)?;
    let display = displays
        .iter()
        .find(|d| d.touch.is_some() && name.as_ref().is_none_or(|n| *n == d.name))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no touch panel{}",
                paths::display(config),
                name.as_ref()
                    .map_or(String::new(), |n| format!(" on display {n}"))
            )
        })?;
    let size = (display.width, display.height);
    for (x, y) in std::iter::once(from).chain(to) {
        if x >= size.0 || y >= size.1 {
            bail!(
                "touch: ({x}, {y}) is outside display {} ({}x{})",
                display.name,
                size.0,
                size.1
            );
        }
    }
    let mut qmp = Qmp::connect(&qmp_socket(), QMP_PATIENCE)
        .map_err(|e| anyhow::anyhow!("{e:#}: is `cargo xtask run` running (with this config)?"))?;
    // A tracking id of our own (QEMU's panel reports it as is).
    let id = std::process::id() % 60_000 + 1;
    let id_frame = |kind, at| vec![crate::qmp::Mtt::at(kind, 0, id, at, size)];
    qmp.touch(&display.id(), &id_frame("begin", from))?;
    let mut last = from;
    if let Some(to) = to {
        for step in 1..=10u32 {
            let lerp = |a: u32, b: u32| {
                (i64::from(a) + (i64::from(b) - i64::from(a)) * i64::from(step) / 10) as u32
            };
            last = (lerp(from.0, to.0), lerp(from.1, to.1));
            std::thread::sleep(Duration::from_millis(20));
            qmp.touch(&display.id(), &id_frame("update", last))?;
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    qmp.touch(&display.id(), &id_frame("end", last))?;
    println!(
        "touched display {} at {},{}{}",
        display.name,
        from.0,
        from.1,
        to.map_or(String::new(), |t| format!(
            " and dragged to {},{}",
            t.0, t.1
        ))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::QemuTouch;

    #[test]
    fn the_mouse_line_names_the_displays_with_a_pointer() {
        let display = |name: &str, pointer: Option<u64>| QemuDisplay {
            name: name.to_owned(),
            base: 0,
            width: 1280,
            height: 800,
            touch: Some(QemuTouch {
                name: "panel".to_owned(),
                base: 0,
                pointer,
            }),
        };
        let displays = [display("instrument", None), display("center", Some(0))];
        assert_eq!(
            mouse_line(&displays, true).as_deref(),
            Some(
                "Mouse: over display center (touch panel panel), hold the left button to touch, as a finger would"
            )
        );
        assert!(
            mouse_line(&displays, false)
                .unwrap()
                .starts_with("Mouse: no window")
        );
        assert_eq!(mouse_line(&displays[..1], true), None);
    }
}
