//! The QEMU command line for a board, and QEMU processes that never outlive
//! xtask.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::Result;

use crate::board::Board;
use crate::prereqs::QEMU;
use crate::process::{Cmd, spawn_error};

/// `qemu-system-aarch64 -M <machine> [-cpu <cpu>] -smp <smp> -m <memory>
/// -nographic -serial ... -kernel <image> [-dtb <board dtb>]` for `board`.
/// The console UART's serial port and the QEMU monitor share the terminal
/// (Ctrl-A X quits, Ctrl-A C switches to the monitor). `changes` replaces
/// some of the board's values and may attach a disk.
pub fn command(board: &Board, image: &Path, changes: &MachineChanges) -> Result<Cmd> {
    let qemu = board.qemu()?;
    let cmd = Cmd::new(QEMU)
        .arg("-M")
        .arg(changes.machine.unwrap_or(&qemu.machine))
        .args(qemu.cpu.iter().flat_map(|cpu| ["-cpu", cpu]))
        .arg("-smp")
        .arg(changes.smp.unwrap_or(qemu.smp).to_string())
        .arg("-m")
        .arg(changes.memory.unwrap_or(&qemu.memory))
        .args(changes.icount.map(|v| ["-icount", v]).into_iter().flatten())
        .args(if changes.window {
            // The displays in a window; serial and monitor on the terminal.
            &[][..]
        } else {
            &["-nographic"][..]
        })
        .args(serial_args(qemu.console_serial));
    // Through the board's firmware, which finds the hypervisor on the
    // disk (a flashed image), or straight into the hypervisor.
    let cmd = match &changes.bios {
        Some(bios) => cmd.arg("-bios").arg(bios),
        None => cmd.arg("-kernel").arg(image),
    };
    let cmd = match board.dtb_for_qemu()? {
        Some(dtb) => cmd.arg("-dtb").arg(dtb),
        None => cmd,
    };
    let cmd = match &changes.disk {
        Some(disk) => cmd.args(disk_args(disk, changes)),
        None => cmd,
    };
    let mut cmd = match &changes.qmp {
        Some(socket) => cmd
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display())),
        None => cmd,
    };
    if changes.disk.is_none() && !changes.displays.is_empty() {
        // (disk_args sets it too.)
        cmd = cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
    }
    if let Some(port) = changes.gdb_port {
        cmd = cmd.args(["-gdb".to_string(), format!("tcp:127.0.0.1:{port}")]);
    }
    if let Some((image, base)) = &changes.second_disk {
        let bus = qemu.virtio_mmio_bus(*base).ok_or_else(|| {
            anyhow::anyhow!(
                "second disk: board {} has no QEMU virtio-mmio transport at {base:#x}",
                board.name
            )
        })?;
        let file = image.to_string_lossy().replace(',', ",,");
        cmd = cmd.args([
            "-drive".to_string(),
            format!("if=none,id=disk1,file={file},format=raw"),
            "-device".to_string(),
            format!("virtio-blk-device,drive=disk1,bus=virtio-mmio-bus.{bus}"),
        ]);
    }
    for display in &changes.displays {
        let bus = qemu.virtio_mmio_bus(display.base).ok_or_else(|| {
            anyhow::anyhow!(
                "display {}: board {} has no QEMU virtio-mmio transport at {:#x}",
                display.name,
                board.name,
                display.base
            )
        })?;
        cmd = cmd.args([
            "-device".to_string(),
            format!(
                "virtio-gpu-device,bus=virtio-mmio-bus.{bus},xres={},yres={},id={}",
                display.width,
                display.height,
                display.id()
            ),
        ]);
        // After its display: QEMU binds the panel to the display's console
        // when it creates the panel.
        if let Some(touch) = &display.touch {
            let bus = qemu.virtio_mmio_bus(touch.base).ok_or_else(|| {
                anyhow::anyhow!(
                    "touch panel {}: board {} has no QEMU virtio-mmio transport at {:#x}",
                    touch.name,
                    board.name,
                    touch.base
                )
            })?;
            cmd = cmd.args([
                "-device".to_string(),
                format!(
                    "virtio-multitouch-device,bus=virtio-mmio-bus.{bus},display={},id={}",
                    display.id(),
                    touch.id()
                ),
            ]);
            // Its pointer, a tablet bound to the same display: QEMU's
            // mouse over the display (or QMP `abs` and `btn` events). Left
            // out, its transport stays empty and the hypervisor goes on
            // without it.
            if let Some(base) = touch.pointer.filter(|_| changes.pointers) {
                let bus = qemu.virtio_mmio_bus(base).ok_or_else(|| {
                    anyhow::anyhow!(
                        "touch panel {}: pointer: board {} has no QEMU virtio-mmio transport at {base:#x}",
                        touch.name,
                        board.name,
                    )
                })?;
                cmd = cmd.args([
                    "-device".to_string(),
                    format!(
                        "virtio-tablet-device,bus=virtio-mmio-bus.{bus},display={},id={}",
                        display.id(),
                        touch.pointer_id()
                    ),
                ]);
            }
        }
    }
    for (i, output) in changes.audio.iter().enumerate() {
        let bus = qemu.virtio_mmio_bus(output.base).ok_or_else(|| {
            anyhow::anyhow!(
                "audio output {}: board {} has no QEMU virtio-mmio transport at {:#x}",
                output.name,
                board.name,
                output.base
            )
        })?;
        if changes.disk.is_none() && changes.displays.is_empty() && i == 0 {
            cmd = cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
        }
        let backend = match &output.sink {
            // QEMU option values escape commas by doubling them.
            AudioSink::Wav(path) => format!(
                "wav,id=snd{i},path={},out.frequency=48000",
                path.display().to_string().replace(',', ",,")
            ),
            AudioSink::Host(driver) => format!("{driver},id=snd{i},out.frequency=48000"),
        };
        cmd = cmd.args([
            "-audiodev".to_string(),
            backend,
            "-device".to_string(),
            // One stream, the output: the physical side has no capture.
            format!(
                "virtio-sound-device,bus=virtio-mmio-bus.{bus},audiodev=snd{i},streams=1,id=audio-{}",
                output.name
            ),
        ]);
    }
    Ok(cmd)
}

/// QEMU's serial ports up to the console (`console`, from 0): the ones
/// before it go nowhere, the console and the monitor share the terminal
/// (Ctrl-A X quits, Ctrl-A C switches to the monitor).
fn serial_args(console: u32) -> Vec<&'static str> {
    let mut args = Vec::new();
    for _ in 0..console {
        args.extend(["-serial", "null"]);
    }
    args.extend(["-serial", "mon:stdio"]);
    args
}

/// The audio outputs of a validated system, each going to `sink(name)`.
pub fn audio_in(system: &config::OwnedSystem, sink: impl Fn(&str) -> AudioSink) -> Vec<QemuAudio> {
    system
        .audio
        .iter()
        .map(|a| QemuAudio {
            name: a.name.clone(),
            base: a.regions.first().map_or(0, |r| r.base),
            sink: sink(&a.name),
        })
        .collect()
}

/// A physical audio output of a config, as QEMU emulates it: a
/// virtio-sound device on the virtio-mmio transport the config names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuAudio {
    pub name: String,
    /// Base of its virtio-mmio transport.
    pub base: u64,
    pub sink: AudioSink,
}

/// Where QEMU sends what an audio output plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudioSink {
    /// A WAV file (48 kHz S16 stereo), complete once QEMU exits cleanly:
    /// its sizes are written last.
    Wav(PathBuf),
    /// The host's sound server, through this QEMU audio driver (`pa`,
    /// `pipewire`).
    Host(&'static str),
}

/// The system `config` describes (an error if the config is invalid).
pub fn system_of(config: &Path) -> Result<config::OwnedSystem> {
    let context = config::Context {
        boards_dir: crate::paths::boards_dir(),
        build_dir: crate::paths::partitions_dir(),
    };
    let loaded = config::load(config, &context).map_err(|diagnostics| {
        anyhow::anyhow!(
            "{}",
            diagnostics
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    Ok(loaded.system)
}

/// The physical displays `config` declares, each with the touch panel on
/// it (an error if the config is invalid).
pub fn displays_of(config: &Path) -> Result<Vec<QemuDisplay>> {
    Ok(displays_in(&system_of(config)?))
}

/// The physical displays of a validated system, each with the touch panel
/// on it.
pub fn displays_in(system: &config::OwnedSystem) -> Vec<QemuDisplay> {
    let base = |regions: &[config::model::Region]| regions.first().map_or(0, |r| r.base);
    system
        .displays
        .iter()
        .enumerate()
        .map(|(index, d)| QemuDisplay {
            name: d.name.clone(),
            base: base(&d.regions),
            width: d.width,
            height: d.height,
            touch: system
                .touch
                .iter()
                .find(|t| t.display == index)
                .map(|t| QemuTouch {
                    name: t.name.clone(),
                    base: base(&t.regions),
                    pointer: t.pointer.as_ref().map(|p| base(&p.regions)),
                }),
        })
        .collect()
}

/// A physical display of a config, as QEMU emulates it: a virtio-gpu
/// device on the virtio-mmio transport the config names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuDisplay {
    pub name: String,
    /// Base of its virtio-mmio transport.
    pub base: u64,
    pub width: u32,
    pub height: u32,
    /// The touch panel lying on it, if the config has one.
    pub touch: Option<QemuTouch>,
}

impl QemuDisplay {
    /// Its QEMU device id (for QMP `screendump`, and QMP `input-send-event`
    /// to touch its panel).
    pub fn id(&self) -> String {
        format!("display-{}", self.name)
    }
}

/// A touch panel of a config, as QEMU emulates it: a virtio-multitouch
/// device on the virtio-mmio transport the config names, bound to the
/// console of the display it lies on. QMP `input-send-event` with `device`
/// set to the display's id ([`QemuDisplay::id`]) touches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuTouch {
    pub name: String,
    /// Base of its virtio-mmio transport.
    pub base: u64,
    /// Base of its pointer's transport, if the config gives it one: with
    /// [`MachineChanges::pointers`], a virtio-tablet device bound to the
    /// same display goes there.
    pub pointer: Option<u64>,
}

impl QemuTouch {
    /// Its QEMU device id.
    pub fn id(&self) -> String {
        format!("touch-{}", self.name)
    }

    /// Its pointer's QEMU device id.
    pub fn pointer_id(&self) -> String {
        format!("pointer-{}", self.name)
    }
}

/// A raw disk image as a virtio-blk device on virtio-mmio. QEMU fills the
/// virtio-mmio transports from the highest address down: on `virt` the
/// first device is at 0x0a00_3e00 (`/virtio_mmio@a003e00`, SPI 47). Modern
/// (version 2) virtio-mmio, not QEMU's legacy default. With
/// `failing_read_lba` the image is reached through QEMU's blkdebug driver,
/// which fails every read of that sector with EIO.
fn disk_args(disk: &Path, changes: &MachineChanges) -> [OsString; 6] {
    // QEMU option values escape commas by doubling them.
    let file = disk.to_string_lossy().replace(',', ",,");
    let file = match changes.failing_read_lba {
        None => format!("file={file}"),
        Some(lba) => format!(
            "file.driver=blkdebug,file.inject-error.0.event=read_aio,\
             file.inject-error.0.iotype=read,file.inject-error.0.errno=5,\
             file.inject-error.0.sector={lba},\
             file.image.driver=file,file.image.filename={file}"
        ),
    };
    let more = |o: Option<&str>| o.map(|o| format!(",{o}")).unwrap_or_default();
    let (options, properties) = (more(changes.drive_options), more(changes.device_options));
    [
        "-global".into(),
        "virtio-mmio.force-legacy=false".into(),
        "-drive".into(),
        format!("if=none,id=disk0,{file},format=raw{options}").into(),
        "-device".into(),
        format!("virtio-blk-device,drive=disk0{properties}").into(),
    ]
}

/// Departures from the board's QEMU machine, e.g. to boot a config on a
/// machine it does not match.
#[derive(Clone, Debug, Default)]
pub struct MachineChanges {
    /// Boot this firmware (the board's U-Boot) instead of the hypervisor
    /// image: it loads the hypervisor from the disk, as on hardware.
    pub bios: Option<PathBuf>,
    /// `-M` value.
    pub machine: Option<&'static str>,
    /// Number of cores.
    pub smp: Option<u32>,
    /// `-m` value.
    pub memory: Option<&'static str>,
    /// `-icount` value: deterministic virtual time, for measurements.
    pub icount: Option<&'static str>,
    /// A raw disk image to attach as the board's virtio-blk disk.
    pub disk: Option<PathBuf>,
    /// More `-drive` options for it: `cache=unsafe` (the host never syncs
    /// it, so a guest's flush costs no host disk time), `discard=unmap`
    /// (discarded sectors become holes in the image and read as zeros).
    pub drive_options: Option<&'static str>,
    /// More `-device` properties for it (`write-zeroes=off,discard=off`: a
    /// disk without those requests).
    pub device_options: Option<&'static str>,
    /// Open QEMU's gdb stub on this TCP port of the loopback interface.
    pub gdb_port: Option<u16>,
    /// A second raw disk image, a virtio-blk device on the virtio-mmio
    /// transport at this address (with [`Self::disk`]: the bench's
    /// mediated and passed-through disks side by side).
    pub second_disk: Option<(PathBuf, u64)>,
    /// A sector of the disk whose every read fails with an I/O error (a
    /// physical disk error, injected by QEMU's blkdebug driver).
    pub failing_read_lba: Option<u64>,
    /// The config's physical displays.
    pub displays: Vec<QemuDisplay>,
    /// A QMP socket to create (for screenshots).
    pub qmp: Option<PathBuf>,
    /// Show the displays in a window (QEMU's default display) instead of
    /// running headless (`-nographic`).
    pub window: bool,
    /// Attach a tablet on the transport of each touch panel's `pointer`
    /// (QEMU's mouse over the display's window is then one more contact on
    /// the panel). Without it those transports stay empty.
    pub pointers: bool,
    /// The config's audio outputs, and where each one's sound goes.
    pub audio: Vec<QemuAudio>,
}

/// Runs `cmd` on this terminal until QEMU is quit; an error if it fails.
pub fn run_interactive(cmd: Cmd) -> Result<()> {
    println!("$ {}", cmd.text());
    let text = cmd.text().to_string();
    let mut qemu = Qemu::spawn(cmd.into_command(), &text)?;
    let status = qemu.child().wait()?;
    if !status.success() {
        anyhow::bail!("QEMU exited with {status}");
    }
    Ok(())
}

/// A running QEMU. It is killed when this is dropped, and by the kernel
/// when xtask dies for any reason (panic with `panic = "abort"`, a signal),
/// so no emulator is left behind.
pub struct Qemu {
    child: Child,
}

impl Qemu {
    /// Starts `command` (whose stdio the caller has set up).
    pub fn spawn(mut command: Command, text: &str) -> Result<Qemu> {
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| spawn_error(text, e))?;
        Ok(Qemu { child })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Asks QEMU to quit (SIGTERM: it shuts down cleanly, which completes
    /// the WAV files of its audio outputs), waits up to `grace`, then
    /// kills it.
    pub fn stop(&mut self, grace: std::time::Duration) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            terminate(pid);
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Kills QEMU (if still running) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGTERM to process `pid`.
#[cfg(target_os = "linux")]
fn terminate(pid: i32) {
    use std::os::raw::c_int;
    const SIGTERM: c_int = 15;
    unsafe extern "C" {
        fn kill(pid: c_int, sig: c_int) -> c_int;
    }
    // SAFETY: kill(2) with a pid this process spawned and has not reaped.
    unsafe { kill(pid, SIGTERM) };
}

#[cfg(not(target_os = "linux"))]
fn terminate(_pid: i32) {}

/// Asks the kernel to SIGKILL the child when the thread that spawned it
/// ends, which covers every way xtask can stop.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::raw::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;

    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    const ESRCH: i32 = 3;

    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
        fn getppid() -> c_int;
    }

    let parent = std::process::id() as c_int;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes two async-signal-safe system calls; it allocates nothing and
    // touches no lock (`from_raw_os_error` and `last_os_error` do not
    // allocate).
    unsafe {
        command.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // xtask died between fork and prctl: do not start at all.
            if getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths;
    use crate::scenario::Scenario;

    /// A position-independent AArch64 program that prints
    /// `dummy: entered at EL<n>` on the PL011 at 0x0900_0000 and parks.
    const DUMMY_CODE: [u32; 14] = [
        0xd538_4241, // mrs  x1, CurrentEL
        0xd342_0c21, // ubfx x1, x1, #2, #2
        0xd2a1_2002, // mov  x2, #0x9000000
        0x1000_0163, // adr  x3, message
        0x3840_1464, // 1: ldrb w4, [x3], #1
        0x3400_0064, //    cbz  w4, 2f
        0x3900_0044, //    strb w4, [x2]
        0x17ff_fffd, //    b    1b
        0x1100_c021, // 2: add  w1, w1, #'0'
        0x3900_0041, //    strb w1, [x2]
        0x5280_0144, //    mov  w4, #'\n'
        0x3900_0044, //    strb w4, [x2]
        0xd503_205f, // 3: wfe
        0x17ff_ffff, //    b    3b
    ];
    const DUMMY_MESSAGE: &[u8] = b"dummy: entered at EL\0";

    /// The dummy kernel, written to `target/xtask-test-qemu/<name>`: each
    /// test its own file, so that `boots_a_dummy_kernel`'s check that no
    /// QEMU is left mentioning its image does not see another test's QEMU
    /// (it did, now and then, while the tests ran in parallel).
    fn dummy_kernel(name: &str) -> PathBuf {
        let dir = paths::target_dir().join("xtask-test-qemu");
        paths::create_dir(&dir).unwrap();
        let path = dir.join(name);
        let mut bytes: Vec<u8> = DUMMY_CODE.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.extend_from_slice(DUMMY_MESSAGE);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Processes whose command line mentions `needle`.
    fn processes_mentioning(needle: &str) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|cmdline| String::from_utf8_lossy(cmdline).contains(needle))
            .count()
    }

    /// The board's command line boots an image at EL2, and at EL1 without
    /// `virtualization=on`; QEMU is gone afterwards.
    #[test]
    fn boots_a_dummy_kernel() {
        if !crate::process::on_path(QEMU) {
            eprintln!("{QEMU} is not installed: not booting the dummy kernel");
            return;
        }
        let board = Board::load("qemu-virt").unwrap();
        let image = dummy_kernel("dummy-kernel.bin");
        for (machine, el) in [(None, 2), (Some("virt,gic-version=3"), 1)] {
            let changes = MachineChanges {
                machine,
                ..Default::default()
            };
            let cmd = command(&board, &image, &changes).unwrap();
            let text = cmd.text().to_string();
            assert!(
                text.contains(" -nographic -serial mon:stdio -kernel "),
                "{text}"
            );
            let scenario = Scenario::new("dummy-kernel", "")
                .timeout(20)
                .expect(&format!("^dummy: entered at EL{el}$"))
                .stop_on("entered at EL")
                .settle(300);
            let log = image.with_extension(format!("el{el}.log"));
            let outcome = scenario.run(cmd.into_command(), &text, &log).unwrap();
            assert!(
                outcome.passed(),
                "{text}: {:?} {:?}",
                outcome.failures,
                outcome.lines
            );
        }
        assert_eq!(processes_mentioning(&image.display().to_string()), 0);
    }

    /// `disk` attaches a raw image as a modern virtio-blk device.
    #[test]
    fn disk_arguments() {
        let board = Board::load("qemu-virt").unwrap();
        let changes = MachineChanges {
            disk: Some(PathBuf::from("/tmp/a,b.img")),
            ..Default::default()
        };
        let text = command(&board, Path::new("hv.bin"), &changes)
            .unwrap()
            .text()
            .to_string();
        assert!(
            text.ends_with(
                " -global virtio-mmio.force-legacy=false \
                 -drive if=none,id=disk0,file=/tmp/a,,b.img,format=raw \
                 -device virtio-blk-device,drive=disk0"
            ),
            "{text}"
        );
        let failing = MachineChanges {
            failing_read_lba: Some(69631),
            ..changes
        };
        let text = command(&board, Path::new("hv.bin"), &failing)
            .unwrap()
            .text()
            .to_string();
        assert!(
            text.contains(
                " -drive if=none,id=disk0,file.driver=blkdebug,\
                 file.inject-error.0.event=read_aio,file.inject-error.0.iotype=read,\
                 file.inject-error.0.errno=5,\
                 file.inject-error.0.sector=69631,file.image.driver=file,\
                 file.image.filename=/tmp/a,,b.img,format=raw "
            ),
            "{text}"
        );
        let plain = command(&board, Path::new("hv.bin"), &Default::default()).unwrap();
        assert!(!plain.text().contains("-drive"));
    }

    /// Each display is a virtio-gpu device on the bus of its transport,
    /// and the panel on it a virtio-multitouch device bound to it, right
    /// after it; with pointers, the panel's tablet bound to it after that.
    #[test]
    fn display_and_touch_arguments() {
        let board = Board::load("qemu-virt").unwrap();
        let display = |name: &str, base, touch: Option<QemuTouch>| QemuDisplay {
            name: name.to_owned(),
            base,
            width: 1280,
            height: 800,
            touch,
        };
        let panel = QemuTouch {
            name: "panel".to_owned(),
            base: 0x0a00_3800,
            pointer: Some(0x0a00_3600),
        };
        assert_eq!(panel.id(), "touch-panel");
        assert_eq!(panel.pointer_id(), "pointer-panel");
        let changes = MachineChanges {
            displays: vec![
                display("instrument", 0x0a00_3c00, None),
                display("center", 0x0a00_3a00, Some(panel.clone())),
            ],
            ..Default::default()
        };
        let text = command(&board, Path::new("hv.bin"), &changes)
            .unwrap()
            .text()
            .to_string();
        assert!(
            text.ends_with(
                " -global virtio-mmio.force-legacy=false \
                 -device virtio-gpu-device,bus=virtio-mmio-bus.30,xres=1280,yres=800,id=display-instrument \
                 -device virtio-gpu-device,bus=virtio-mmio-bus.29,xres=1280,yres=800,id=display-center \
                 -device virtio-multitouch-device,bus=virtio-mmio-bus.28,display=display-center,id=touch-panel"
            ),
            "{text}"
        );
        // With pointers, the panel's tablet after it, bound to the same
        // display.
        let pointers = MachineChanges {
            pointers: true,
            ..changes.clone()
        };
        let text = command(&board, Path::new("hv.bin"), &pointers)
            .unwrap()
            .text()
            .to_string();
        assert!(
            text.ends_with(
                " -device virtio-multitouch-device,bus=virtio-mmio-bus.28,display=display-center,id=touch-panel \
                 -device virtio-tablet-device,bus=virtio-mmio-bus.27,display=display-center,id=pointer-panel"
            ),
            "{text}"
        );
        let elsewhere = MachineChanges {
            displays: vec![display(
                "center",
                0x0a00_3a00,
                Some(QemuTouch {
                    pointer: Some(0x0a00_3601),
                    ..panel.clone()
                }),
            )],
            ..pointers
        };
        let Err(error) = command(&board, Path::new("hv.bin"), &elsewhere) else {
            panic!("a command for a pointer on no transport");
        };
        assert_eq!(
            error.to_string(),
            "touch panel panel: pointer: board qemu-virt has no QEMU virtio-mmio transport at 0xa003601"
        );
        // A panel on no transport QEMU has is an error, as a display is.
        let nowhere = MachineChanges {
            displays: vec![display(
                "center",
                0x0a00_3a00,
                Some(QemuTouch {
                    base: 0x0a00_3810,
                    ..panel
                }),
            )],
            ..Default::default()
        };
        let Err(error) = command(&board, Path::new("hv.bin"), &nowhere) else {
            panic!("a command for a panel on no transport");
        };
        assert_eq!(
            error.to_string(),
            "touch panel panel: board qemu-virt has no QEMU virtio-mmio transport at 0xa003810"
        );
    }

    /// A 64-byte arm64 Image header, all the config validator reads.
    fn fake_image() -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[56..60].copy_from_slice(b"ARM\x64");
        header
    }

    /// The default config's displays, with its panel (and the panel's
    /// pointer) on the center one.
    #[test]
    fn default_config_displays_and_panel() {
        let build_dir = paths::target_dir().join("xtask-test-qemu/partitions");
        paths::create_dir(&build_dir.join("ivi")).unwrap();
        for image in ["cluster.img", "ivi/Image", "ivi/initramfs.cpio.gz"] {
            std::fs::write(build_dir.join(image), fake_image()).unwrap();
        }
        let context = config::Context {
            boards_dir: paths::boards_dir(),
            build_dir,
        };
        let loaded = config::load(&paths::root().join(paths::DEFAULT_CONFIG), &context)
            .unwrap_or_else(|d| panic!("{d:?}"));
        let displays = displays_in(&loaded.system);
        let panel = QemuTouch {
            name: "panel".to_owned(),
            base: 0x0a00_3800,
            pointer: Some(0x0a00_3600),
        };
        assert_eq!(
            displays,
            [
                QemuDisplay {
                    name: "instrument".to_owned(),
                    base: 0x0a00_3c00,
                    width: 1920,
                    height: 720,
                    touch: None,
                },
                QemuDisplay {
                    name: "center".to_owned(),
                    base: 0x0a00_3a00,
                    width: 1280,
                    height: 800,
                    touch: Some(panel),
                }
            ]
        );
    }

    /// The disk is the virtio-mmio transport at 0x0a003e00 (magic "virt",
    /// version 2, device ID 2 = block), read through QEMU's monitor before
    /// any code runs.
    #[test]
    fn disk_is_the_first_virtio_mmio_transport() {
        use std::io::{Read as _, Write as _};
        use std::process::Stdio;

        if !crate::process::on_path(QEMU) {
            eprintln!("{QEMU} is not installed: not checking the disk's transport");
            return;
        }
        let disk = paths::target_dir()
            .join("xtask-test-qemu")
            .join("transport.img");
        crate::disk::create_fresh(crate::disk::QEMU_VIRT_LAYOUT, &disk).unwrap();
        let board = Board::load("qemu-virt").unwrap();
        let changes = MachineChanges {
            disk: Some(disk),
            ..Default::default()
        };
        // Stopped before the first instruction; the monitor shares stdio
        // with the serial port (Ctrl-A C switches to it).
        let cmd = command(&board, &dummy_kernel("transport-kernel.bin"), &changes)
            .unwrap()
            .arg("-S");
        let text = cmd.text().to_string();
        let mut command = cmd.into_command();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut qemu = Qemu::spawn(command, &text).unwrap();
        let mut stdin = qemu.child().stdin.take().unwrap();
        stdin
            .write_all(b"\x01cxp /3wx 0xa003e00\nxp /3wx 0xa003c00\nquit\n")
            .unwrap();
        drop(stdin);
        let mut out = Vec::new();
        let mut stdout = qemu.child().stdout.take().unwrap();
        stdout.read_to_end(&mut out).unwrap();
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains("000000000a003e00: 0x74726976 0x00000002 0x00000002"),
            "{text}: {out}"
        );
        // The next transport down is empty (device ID 0).
        assert!(
            out.contains("000000000a003c00: 0x74726976 0x00000002 0x00000000"),
            "{text}: {out}"
        );
    }
}
