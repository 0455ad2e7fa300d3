//! QEMU scenarios: boot a system, watch its serial console, and judge the
//! lines it printed.
//!
//! A scenario names a config, a timeout, a stop condition and a set of
//! expectations over the console lines. QEMU runs until the stop condition
//! holds (pass or fail is decided afterwards, over every line), until the
//! timeout (a failure), or until it exits by itself (a failure too: the
//! systems under test never power off). The console goes to
//! `target/test-logs/<name>.log`; QEMU's own standard error is kept there
//! too, each line prefixed with `qemu-stderr: `.
//!
//! A scenario may boot with a disk: `.disk(layout)` writes a fresh image of
//! that layout to `target/test-disks/<name>.img` before QEMU starts, and
//! `.check_disk(...)` judges the image after QEMU has stopped.
//!
//! ```ignore
//! Scenario::new("two-partitions", "config/qemu-virt/tests/two.toml")
//!     .timeout(30)
//!     .expect(r"^\[cluster\] hello: tick=5 pattern=ok")
//!     .expect_at_least(10, r"^\[hv\] WARN .*fault")
//!     .expect_none(r"pattern=BAD")
//!     .check("ticks never skip", |lines| consecutive(&numbers(lines, r"tick=(\d+)")))
//!     .stop_when_all(&[r"tick=5"])
//! ```

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use regex::Regex;

use crate::qemu::{MachineChanges, Qemu};

/// A check over every console line: `Err` says what is wrong.
pub type LinesCheck = Box<dyn Fn(&[String]) -> Result<(), String>>;
/// A condition over the console lines so far.
pub type LinesPredicate = Box<dyn Fn(&[String]) -> bool>;

/// Prefix of QEMU's standard-error lines among the console lines.
pub const STDERR_PREFIX: &str = "qemu-stderr: ";

/// How often at most a stop condition that looks at every line is
/// re-evaluated while lines stream in.
const STOP_POLL: Duration = Duration::from_millis(25);

pub struct Scenario {
    /// Test name (`qemu/<name>`) and log file name.
    pub name: &'static str,
    /// The config to boot, relative to the workspace root.
    pub config: &'static str,
    /// Replaces the board's `-M` value (e.g. to boot without EL2).
    pub machine: MachineChanges,
    /// Wall-clock limit for the run (TCG runs in real time).
    pub timeout: Duration,
    /// How long QEMU must keep running after the stop condition holds.
    pub settle: Duration,
    expectations: Vec<Expectation>,
    stop: Stop,
    /// Console input: when a line first matches, type these bytes.
    inputs: Vec<(Regex, Vec<u8>)>,
    /// Tools run alongside: when a line first matches, run the hook.
    hooks: Vec<(Regex, &'static str, Hook)>,
    /// A measurement printed with the result (e.g. a worst-case latency).
    report: Option<LinesReport>,
    /// Disk layout (relative to the workspace root) of the fresh disk.
    pub disk: Option<&'static str>,
    /// Which hypervisor build boots (the development one unless
    /// [`Scenario::production`]).
    pub profile: crate::images::Profile,
    /// Run on the fresh disk before QEMU starts.
    disk_setup: Option<DiskCheck>,
    /// Boot with the disk as the last run left it (a fresh one if there
    /// is none yet) instead of a fresh one.
    keep_disk: bool,
    /// Boot through the board's U-Boot from a flashed image on the disk,
    /// which this writes (config, image path).
    flashed: Option<FlashWriter>,
    /// Judged on the disk (with the console lines) after QEMU has stopped.
    disk_checks: Vec<(String, DiskJudge)>,
    /// Screenshots: when a line first matches (in this order), every
    /// physical display is dumped under this label.
    screenshots: Vec<(Regex, &'static str)>,
    /// Multi-touch and mouse frames: when a line first matches (in this
    /// order), the frames go to the panel (or its pointer) on the display
    /// device named.
    touches: Vec<(Regex, &'static str, Vec<InputFrame>)>,
    /// Judged on the screenshots (with the console lines) afterwards.
    screen_checks: Vec<(String, ScreensJudge)>,
    /// Judged on the audio output's recording (with the console lines)
    /// afterwards.
    audio_checks: Vec<(String, AudioJudge)>,
}

/// Checks what a scenario's audio output recorded against what the console
/// said.
pub type AudioJudge = Box<dyn Fn(&crate::wav::Wav, &[String]) -> Result<(), String>>;

/// One frame of input to a display's touch panel, over QMP.
#[derive(Clone, Debug)]
pub enum InputFrame {
    /// Fingers on the panel (none: only wait for the line).
    Touch(Vec<crate::qmp::Mtt>),
    /// The mouse, through the panel's pointer (a tablet: see
    /// [`Scenario::pointers`]).
    Pointer(crate::qmp::Pointer),
}

/// A tool run alongside the machine (see [`Scenario::run_on`]).
type Hook = Box<dyn Fn() -> Result<String, String>>;

/// Checks a scenario's screenshots against what the console said.
pub type ScreensJudge = Box<dyn Fn(&Screens, &[String]) -> Result<(), String>>;

/// The screenshots a run took: (label, display name, image).
#[derive(Default)]
pub struct Screens {
    pub shots: Vec<(&'static str, String, crate::qmp::Image)>,
}

impl Screens {
    /// Display `display`'s screenshot labelled `label`.
    pub fn get(&self, label: &str, display: &str) -> Result<&crate::qmp::Image, String> {
        self.shots
            .iter()
            .find(|(l, d, _)| *l == label && d == display)
            .map(|(_, _, image)| image)
            .ok_or_else(|| format!("no screenshot {label:?} of display {display:?}"))
    }
}

/// `text`'s lines as a run's console lines, for tests of what judges them.
/// The second disk of a scenario whose first is `first`
/// (`<name>.img` -> `<name>-second.img`).
fn second_image(first: &Path) -> PathBuf {
    let stem = first.file_stem().unwrap_or_default().to_string_lossy();
    first.with_file_name(format!("{stem}-second.img"))
}

#[cfg(test)]
pub fn console_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Works on or checks a scenario's disk image: `Err` says what is wrong.
pub type DiskCheck = Box<dyn Fn(&Path) -> Result<(), String>>;

/// Writes a flashable image of a config (its path) to a disk (its path).
pub type FlashWriter = Box<dyn Fn(&Path, &Path) -> Result<()>>;

/// Checks a scenario's disk image against what the console said.
pub type DiskJudge = Box<dyn Fn(&Path, &[String]) -> Result<(), String>>;

/// Turns the console lines into a one-line measurement.
pub type LinesReport = Box<dyn Fn(&[String]) -> String>;

struct Expectation {
    rule: Rule,
}

enum Rule {
    /// Between `min` and `max` (inclusive) lines match.
    Count {
        regex: Regex,
        min: usize,
        max: Option<usize>,
    },
    Custom {
        description: String,
        check: LinesCheck,
    },
}

/// When to stop QEMU.
pub enum Stop {
    /// Every expectation holds so far (upper bounds, such as "no line
    /// matches", are only judged at the end).
    Expected,
    /// Some line matches.
    Line(Regex),
    /// Each of these matched some line.
    AllLines(Vec<Regex>),
    /// A predicate over the lines so far holds.
    When {
        description: String,
        predicate: LinesPredicate,
    },
}

/// Compiles a regex written in a scenario. A bad one is a bug in
/// `scenarios/`, caught by xtask's own tests.
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex in a scenario: {e}"))
}

impl Scenario {
    /// A scenario with a 30 s timeout that stops once every expectation
    /// holds.
    pub fn new(name: &'static str, config: &'static str) -> Scenario {
        Scenario {
            name,
            config,
            machine: MachineChanges::default(),
            screenshots: Vec::new(),
            touches: Vec::new(),
            screen_checks: Vec::new(),
            audio_checks: Vec::new(),
            timeout: Duration::from_secs(30),
            settle: Duration::ZERO,
            expectations: Vec::new(),
            stop: Stop::Expected,
            inputs: Vec::new(),
            hooks: Vec::new(),
            report: None,
            disk: None,
            profile: crate::images::Profile::Development,
            disk_setup: None,
            keep_disk: false,
            flashed: None,
            disk_checks: Vec::new(),
        }
    }

    pub fn timeout(mut self, seconds: u64) -> Self {
        self.timeout = Duration::from_secs(seconds);
        self
    }

    /// Prints `report(lines)` with the scenario's result.
    pub fn report(mut self, report: impl Fn(&[String]) -> String + 'static) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    /// Types `bytes` on the console (QEMU's standard input) once a line
    /// matches `pattern`; inputs fire in the order given, each at most once.
    pub fn type_on(mut self, pattern: &str, bytes: &[u8]) -> Self {
        self.inputs.push((regex(pattern), bytes.to_vec()));
        self
    }

    /// Once a line matches `pattern`, runs `hook` (a tool working on the
    /// running machine, e.g. a debugger), waiting for it: what it prints
    /// joins the console's lines as `xtask: <label>: <line>`, so the
    /// expectations and checks see it in order; an error fails the run.
    pub fn run_on(
        mut self,
        pattern: &str,
        label: &'static str,
        hook: impl Fn() -> Result<String, String> + 'static,
    ) -> Self {
        self.hooks.push((regex(pattern), label, Box::new(hook)));
        self
    }

    /// Boot with this `-M` value instead of the board's.
    pub fn machine(mut self, machine: &'static str) -> Self {
        self.machine.machine = Some(machine);
        self
    }

    /// Boot with this many cores instead of the board's.
    pub fn smp(mut self, cores: u32) -> Self {
        self.machine.smp = Some(cores);
        self
    }

    /// Run under `-icount <value>`: virtual time advances with executed
    /// instructions, so time measurements are repeatable.
    pub fn icount(mut self, value: &'static str) -> Self {
        self.machine.icount = Some(value);
        self
    }

    /// More QEMU `-drive` options for the scenario's disk (see
    /// [`crate::qemu::MachineChanges::drive_options`]).
    pub fn drive_options(mut self, options: &'static str) -> Self {
        self.machine.drive_options = Some(options);
        self
    }

    /// More QEMU `-device` properties for the scenario's disk.
    pub fn device_options(mut self, options: &'static str) -> Self {
        self.machine.device_options = Some(options);
        self
    }

    /// Boot with this much RAM (`-m` value) instead of the board's.
    pub fn memory(mut self, memory: &'static str) -> Self {
        self.machine.memory = Some(memory);
        self
    }

    /// Boot with a fresh disk image of `layout` (a `disk.toml`, relative to
    /// the workspace root, e.g. [`crate::disk::QEMU_VIRT_LAYOUT`]), written
    /// to `target/test-disks/<name>.img` before each run.
    #[allow(dead_code, reason = "for the storage scenarios")]
    pub fn disk(mut self, layout: &'static str) -> Self {
        self.disk = Some(layout);
        self.machine.disk = Some(crate::disk::test_disk(self.name));
        self
    }

    /// Boots the production build of the hypervisor (no console input,
    /// the log at warnings) instead of the development one.
    pub fn production(mut self) -> Self {
        self.profile = crate::images::Profile::Production;
        self
    }

    /// Keeps the fresh disk in host memory (`/dev/shm/hv-bench/<name>.img`)
    /// rather than under `target/`, where the host has a tmpfs: a benchmark
    /// measures the hypervisor, and the host writing an on-disk image back
    /// to its own disk would add its own noise, which under `-icount`
    /// becomes virtual time (every core waits for QEMU's I/O).
    pub fn disk_in_host_memory(mut self) -> Self {
        let size = self
            .disk
            .and_then(|layout| crate::disk::Layout::load(&crate::paths::root().join(layout)).ok())
            .map(|layout| layout.size());
        if let Some(dir) = size.and_then(crate::disk::host_memory_dir) {
            let image = dir.join(format!("{}.img", self.name));
            if let Some((second, _)) = &mut self.machine.second_disk {
                *second = second_image(&image);
            }
            self.machine.disk = Some(image);
        }
        self
    }

    /// Boots with a second fresh disk of the same layout, a virtio-blk
    /// device on the virtio-mmio transport at `base`, which must also
    /// change only inside the partitions `names` (see
    /// [`Scenario::writes_only_inside`]).
    pub fn second_disk(mut self, base: u64, names: &'static [&'static str]) -> Self {
        let layout = self.disk.expect("second_disk needs .disk(layout) first");
        let first = self.machine.disk.clone().expect("set by .disk(layout)");
        self.machine.second_disk = Some((second_image(&first), base));
        self.check_disk(
            &format!("the second image changed only inside {}", names.join(", ")),
            move |image| {
                crate::disk::check_unchanged_outside(&second_image(image), layout, names)
                    .map_err(|e| format!("{e:#}"))
            },
        )
    }

    /// When a line matches `pattern` (after the line that took the
    /// previous screenshot), dump every physical display of the config to
    /// `target/screens/<scenario>/<label>-<display>.png`.
    pub fn screenshot_on(mut self, pattern: &str, label: &'static str) -> Self {
        self.screenshots.push((regex(pattern), label));
        self
    }

    /// When a line matches `pattern` (after the line that sent the previous
    /// frame), sends a multi-touch frame to the panel bound to display
    /// `display` (its `[[display]]` name). An empty frame only waits for
    /// its line.
    pub fn touch_on(
        self,
        pattern: &str,
        display: &'static str,
        frame: Vec<crate::qmp::Mtt>,
    ) -> Self {
        self.touches_on(pattern, display, vec![frame])
    }

    /// [`Self::touch_on`] with several frames, sent one after the other.
    pub fn touches_on(
        mut self,
        pattern: &str,
        display: &'static str,
        frames: Vec<Vec<crate::qmp::Mtt>>,
    ) -> Self {
        let frames = frames.into_iter().map(InputFrame::Touch).collect();
        self.touches.push((regex(pattern), display, frames));
        self
    }

    /// When a line matches `pattern` (after the line that sent the previous
    /// frame, finger or mouse), moves the mouse over display `display` to
    /// each of `frames` in turn, with its left button as each says: one
    /// more contact on the display's panel while it is down. Needs
    /// [`Self::pointers`].
    pub fn point_on(
        mut self,
        pattern: &str,
        display: &'static str,
        frames: Vec<crate::qmp::Pointer>,
    ) -> Self {
        let frames = frames.into_iter().map(InputFrame::Pointer).collect();
        self.touches.push((regex(pattern), display, frames));
        self
    }

    /// Attach a tablet on the transport of each touch panel's `pointer`
    /// (see [`crate::qemu::MachineChanges::pointers`]): the mouse of
    /// [`Self::point_on`]. Without it those transports are empty, as in
    /// every other scenario.
    pub fn pointers(mut self) -> Self {
        self.machine.pointers = true;
        self
    }

    /// After the run, `check` judges the screenshots with the console
    /// lines.
    pub fn check_screens(
        mut self,
        description: &str,
        check: impl Fn(&Screens, &[String]) -> Result<(), String> + 'static,
    ) -> Self {
        self.screen_checks
            .push((description.to_string(), Box::new(check)));
        self
    }

    /// After the run, `check` judges what the config's (first) audio
    /// output recorded, with the console lines. QEMU is then stopped
    /// cleanly (SIGTERM), which completes the recording.
    pub fn check_audio(
        mut self,
        description: &str,
        check: impl Fn(&crate::wav::Wav, &[String]) -> Result<(), String> + 'static,
    ) -> Self {
        self.audio_checks
            .push((description.to_string(), Box::new(check)));
        self
    }

    /// Where the recording of audio output `output` goes.
    pub fn wav_path(&self, output: &str) -> PathBuf {
        crate::paths::target_dir()
            .join("audio")
            .join(format!("{}-{output}.wav", self.name))
    }

    /// The machine the scenario boots the hypervisor built for `config`
    /// on: its changes, with the config's displays (and their touch
    /// panels) always attached, since a partition's display traffic needs
    /// them, and a QMP socket then for screenshots and touches; and its
    /// audio outputs, each recording to [`Self::wav_path`].
    pub fn hypervisor_machine(&self, config: &Path) -> Result<crate::qemu::MachineChanges> {
        let mut machine = self.machine.clone();
        if self.flashed.is_some() {
            let board = crate::board::Board::load(&crate::board::name_for_config(config)?)?;
            machine.bios = Some(board.u_boot_for_qemu()?);
        }
        let system = crate::qemu::system_of(config)?;
        machine.displays = crate::qemu::displays_in(&system);
        machine.audio = crate::qemu::audio_in(&system, |name| {
            crate::qemu::AudioSink::Wav(self.wav_path(name))
        });
        for output in &machine.audio {
            if let crate::qemu::AudioSink::Wav(path) = &output.sink {
                crate::paths::create_dir(path.parent().expect("in target/audio"))?;
                let _ = std::fs::remove_file(path);
            }
        }
        if !machine.displays.is_empty() {
            let socket = self.qmp_socket();
            crate::paths::create_dir(socket.parent().expect("in target/qmp"))?;
            let _ = std::fs::remove_file(&socket);
            machine.qmp = Some(socket);
        }
        Ok(machine)
    }

    /// Where this scenario's QMP socket goes.
    pub fn qmp_socket(&self) -> PathBuf {
        crate::paths::target_dir()
            .join("qmp")
            .join(format!("{}.sock", self.name))
    }

    /// Where its screenshots go.
    pub fn screens_dir(&self) -> PathBuf {
        crate::paths::target_dir().join("screens").join(self.name)
    }

    /// Boot with the disk image `target/test-disks/<name>.img` as the
    /// previous run of series `name` left it: for runs that go on where
    /// another stopped (power cuts). The `first` run of a series starts on
    /// a fresh disk of `layout` (prepared by [`Scenario::prepare_disk`]),
    /// so a series is the same wherever it runs.
    pub fn disk_left_by(mut self, name: &str, layout: &'static str, first: bool) -> Self {
        self.disk = Some(layout);
        self.machine.disk = Some(crate::disk::test_disk(name));
        self.keep_disk = !first;
        self
    }

    /// Boot as a flashed board does: the board's U-Boot (`-bios`) finds the
    /// hypervisor on the disk, an SD-card image that `write(config, image)`
    /// writes (`cargo xtask image`'s, at `target/test-disks/<series>.img`).
    /// The `first` run of a series writes the image; the next ones boot
    /// what the previous left on it.
    pub fn flashed(
        mut self,
        series: &str,
        first: bool,
        write: impl Fn(&Path, &Path) -> Result<()> + 'static,
    ) -> Self {
        self.flashed = Some(Box::new(write));
        self.machine.disk = Some(crate::disk::test_disk(series));
        self.keep_disk = !first;
        self
    }

    /// Every read of the last sector of GPT partition `partition` of the
    /// scenario's disk fails on the physical disk with an I/O error (QEMU
    /// blkdebug). After [`Scenario::disk`].
    pub fn failing_last_sector_of(mut self, partition: &str) -> Self {
        let layout = self.disk.expect("failing_last_sector_of needs a disk");
        let lba = crate::disk::Layout::load(&crate::paths::root().join(layout))
            .and_then(|l| Ok(l.partition(partition)?.last_lba))
            .unwrap_or_else(|e| panic!("{layout}: {e:#}"));
        self.machine.failing_read_lba = Some(lba);
        self
    }

    /// Runs `setup` on the fresh disk image before QEMU starts (e.g. to put
    /// data on it with [`crate::disk::write_partition`]).
    #[allow(dead_code, reason = "for the storage scenarios")]
    pub fn prepare_disk(mut self, setup: impl Fn(&Path) -> Result<(), String> + 'static) -> Self {
        self.disk_setup = Some(Box::new(setup));
        self
    }

    /// `check` over the disk image, once QEMU has stopped, must return `Ok`
    /// (see [`crate::disk::read_partition`], [`crate::disk::hash_outside`],
    /// [`crate::disk::check_unchanged_outside`]).
    #[allow(dead_code, reason = "for the storage scenarios")]
    pub fn check_disk(
        self,
        description: &str,
        check: impl Fn(&Path) -> Result<(), String> + 'static,
    ) -> Self {
        self.check_disk_against_lines(description, move |image, _| check(image))
    }

    /// `check` over the disk image and the console lines, once QEMU has
    /// stopped, must return `Ok` (what the guests said was durable must be
    /// on the disk).
    pub fn check_disk_against_lines(
        mut self,
        description: &str,
        check: impl Fn(&Path, &[String]) -> Result<(), String> + 'static,
    ) -> Self {
        self.disk_checks
            .push((description.to_string(), Box::new(check)));
        self
    }

    /// The disk image, once QEMU has stopped, must still be the pristine
    /// image of the scenario's layout outside the partitions `names` (the
    /// writable disks of the config): nobody wrote anywhere else.
    pub fn writes_only_inside(self, names: &'static [&'static str]) -> Self {
        let layout = self
            .disk
            .expect("writes_only_inside needs .disk(layout) first");
        self.check_disk(
            &format!("the image changed only inside {}", names.join(", ")),
            move |image| {
                crate::disk::check_unchanged_outside(image, layout, names)
                    .map_err(|e| format!("{e:#}"))
            },
        )
    }

    /// After the stop condition holds, keep watching for `millis` and fail
    /// if QEMU exits meanwhile.
    pub fn settle(mut self, millis: u64) -> Self {
        self.settle = Duration::from_millis(millis);
        self
    }

    fn count(mut self, pattern: &str, min: usize, max: Option<usize>) -> Self {
        self.expectations.push(Expectation {
            rule: Rule::Count {
                regex: regex(pattern),
                min,
                max,
            },
        });
        self
    }

    /// Some line must match `pattern`.
    pub fn expect(self, pattern: &str) -> Self {
        self.count(pattern, 1, None)
    }

    /// At least `n` lines must match `pattern`.
    pub fn expect_at_least(self, n: usize, pattern: &str) -> Self {
        self.count(pattern, n, None)
    }

    /// Exactly `n` lines must match `pattern`.
    pub fn expect_exactly(self, n: usize, pattern: &str) -> Self {
        self.count(pattern, n, Some(n))
    }

    /// No line may match `pattern`.
    pub fn expect_none(self, pattern: &str) -> Self {
        self.count(pattern, 0, Some(0))
    }

    /// `check` over all lines must return `Ok`.
    pub fn check(
        mut self,
        description: &str,
        check: impl Fn(&[String]) -> Result<(), String> + 'static,
    ) -> Self {
        self.expectations.push(Expectation {
            rule: Rule::Custom {
                description: description.to_string(),
                check: Box::new(check),
            },
        });
        self
    }

    /// Stop as soon as a line matches `pattern`.
    pub fn stop_on(mut self, pattern: &str) -> Self {
        self.stop = Stop::Line(regex(pattern));
        self
    }

    /// Stop once each of `patterns` has matched some line.
    pub fn stop_when_all(mut self, patterns: &[&str]) -> Self {
        self.stop = Stop::AllLines(patterns.iter().map(|p| regex(p)).collect());
        self
    }

    /// Stop once `predicate` holds over the lines so far.
    pub fn stop_when(
        mut self,
        description: &str,
        predicate: impl Fn(&[String]) -> bool + 'static,
    ) -> Self {
        self.stop = Stop::When {
            description: description.to_string(),
            predicate: Box::new(predicate),
        };
        self
    }

    /// Runs `command` (QEMU, or anything that prints lines) under this
    /// scenario, writing its output to `log`. `text` is the command as shown
    /// to people. An `Err` means the run could not happen at all.
    pub fn run(&self, mut command: Command, text: &str, log: &Path) -> Result<Outcome> {
        let mut log_file = BufWriter::new(
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?,
        );
        let disk = self.prepare_fresh_disk()?;
        command
            .stdin(if self.inputs.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut qemu = Qemu::spawn(command, text)?;
        let (sender, receiver) = mpsc::channel();
        let child = qemu.child();
        let readers = [
            read_lines(
                child.stdout.take().expect("stdout is piped"),
                "",
                sender.clone(),
            ),
            read_lines(
                child.stderr.take().expect("stderr is piped"),
                STDERR_PREFIX,
                sender,
            ),
        ];

        let mut stdin = qemu.child().stdin.take();
        let mut next_input = 0;
        let mut next_hook = 0;
        let mut next_shot = 0;
        // Lines before this one have been looked at for screenshots.
        let mut shot_from = 0;
        let mut next_touch = 0;
        let mut touch_from = 0;
        let mut qmp: Option<crate::qmp::Qmp> = None;
        let mut shots: Vec<(&'static str, String, PathBuf)> = Vec::new();
        let displays = if self.screenshots.is_empty() {
            Vec::new()
        } else {
            crate::qemu::displays_of(&crate::paths::root().join(self.config))?
        };
        let mut lines: Vec<String> = Vec::new();
        let mut watch = Watch::new(&self.stop);
        let mut failures = Vec::new();
        let start = Instant::now();
        let mut deadline = start + self.timeout;
        let mut stopped = false;
        let mut last_poll = start;
        let mut dirty = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = if dirty { STOP_POLL } else { deadline - now };
            match receiver.recv_timeout(wait.min(deadline - now)) {
                Ok(line) => {
                    writeln!(log_file, "{line}")?;
                    lines.push(line);
                    while let Ok(line) = receiver.try_recv() {
                        writeln!(log_file, "{line}")?;
                        lines.push(line);
                    }
                    log_file.flush()?;
                    dirty = true;
                    while let Some((pattern, bytes)) = self.inputs.get(next_input) {
                        if !lines.iter().any(|l| pattern.is_match(l)) {
                            break;
                        }
                        if let Some(input) = stdin.as_mut() {
                            input.write_all(bytes)?;
                            input.flush()?;
                        }
                        writeln!(
                            log_file,
                            "xtask: typed {:?}",
                            String::from_utf8_lossy(bytes)
                        )?;
                        next_input += 1;
                    }
                    while let Some((pattern, label, hook)) = self.hooks.get(next_hook) {
                        if !lines.iter().any(|l| pattern.is_match(l)) {
                            break;
                        }
                        next_hook += 1;
                        match hook() {
                            Ok(output) => {
                                for line in output.lines() {
                                    let line = format!("xtask: {label}: {line}");
                                    writeln!(log_file, "{line}")?;
                                    lines.push(line);
                                }
                            }
                            Err(e) => failures.push(format!("{label}: {e}")),
                        }
                    }
                    while let Some((pattern, display, frames)) = self.touches.get(next_touch) {
                        let Some(at) = lines[touch_from..].iter().position(|l| pattern.is_match(l))
                        else {
                            break;
                        };
                        touch_from += at + 1;
                        next_touch += 1;
                        for frame in frames {
                            let sent = self.touch(&mut qmp, display, frame);
                            match (sent, frame) {
                                (Ok(()), InputFrame::Touch(f)) => {
                                    writeln!(log_file, "xtask: touch {f:?}")?
                                }
                                (Ok(()), InputFrame::Pointer(p)) => {
                                    writeln!(log_file, "xtask: pointer {p:?}")?
                                }
                                (Err(e), frame) => failures.push(format!("input {frame:?}: {e:#}")),
                            }
                        }
                    }
                    while let Some((pattern, label)) = self.screenshots.get(next_shot) {
                        let Some(at) = lines[shot_from..].iter().position(|l| pattern.is_match(l))
                        else {
                            break;
                        };
                        shot_from += at + 1;
                        next_shot += 1;
                        let taken = self.screenshot(&mut qmp, &displays, label, &mut shots);
                        match taken {
                            Ok(()) => writeln!(log_file, "xtask: screenshot {label}")?,
                            Err(e) => failures.push(format!("screenshot {label}: {e:#}")),
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = qemu.child().wait()?;
                    failures.push(if stopped {
                        format!(
                            "QEMU exited ({status}) within {:?} of the stop condition",
                            self.settle
                        )
                    } else {
                        format!("QEMU exited ({status}) before: {}", self.stop_description())
                    });
                    break;
                }
            }
            if stopped || !dirty {
                continue;
            }
            if watch.is_cheap() || last_poll.elapsed() >= STOP_POLL {
                last_poll = Instant::now();
                dirty = false;
                if watch.holds(&self.stop, &self.expectations, &lines) {
                    stopped = true;
                    if self.settle.is_zero() {
                        break;
                    }
                    deadline = Instant::now() + self.settle;
                }
            }
        }
        // Lines that came in just before the deadline.
        if !stopped && dirty && failures.is_empty() {
            stopped = watch.holds(&self.stop, &self.expectations, &lines);
        }
        if !stopped && failures.is_empty() {
            failures.push(format!(
                "timed out after {:?} waiting for: {}",
                self.timeout,
                self.stop_description()
            ));
        }
        if self.audio_checks.is_empty() {
            qemu.kill();
        } else {
            // Cleanly, so that QEMU completes the WAV files.
            qemu.stop(Duration::from_secs(10));
        }
        for reader in readers {
            let _ = reader.join();
        }
        // Whatever QEMU printed while it was being stopped.
        while let Ok(line) = receiver.try_recv() {
            writeln!(log_file, "{line}")?;
            lines.push(line);
        }
        log_file.flush()?;

        for expectation in &self.expectations {
            if let Err(e) = expectation.judge(&lines) {
                failures.push(e);
            }
        }
        for (description, check) in &self.disk_checks {
            let result = match &disk {
                Some(disk) => check(disk, &lines),
                None => Err("the scenario has no disk (`.disk(layout)`)".to_string()),
            };
            if let Err(e) = result {
                failures.push(format!("{description}: {e}"));
            }
        }
        if next_shot < self.screenshots.len() {
            let missing: Vec<&str> = self.screenshots[next_shot..].iter().map(|s| s.1).collect();
            failures.push(format!("screenshots never taken: {}", missing.join(", ")));
        }
        let mut screens = Screens::default();
        for (label, display, path) in shots {
            match crate::qmp::Image::load(&path) {
                Ok(image) => screens.shots.push((label, display, image)),
                Err(e) => failures.push(format!("screenshot {label}: {e:#}")),
            }
        }
        if failures.is_empty() {
            for (description, check) in &self.screen_checks {
                if let Err(e) = check(&screens, &lines) {
                    failures.push(format!("{description}: {e}"));
                }
            }
        }
        if failures.is_empty() && !self.audio_checks.is_empty() {
            match self.recording() {
                Ok(wav) => {
                    for (description, check) in &self.audio_checks {
                        if let Err(e) = check(&wav, &lines) {
                            failures.push(format!("{description}: {e}"));
                        }
                    }
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        let report = self.report.as_ref().map(|report| report(&lines));
        if let Some(report) = &report {
            writeln!(log_file, "xtask: {report}")?;
        }
        Ok(Outcome {
            failures,
            lines,
            duration: start.elapsed(),
            report,
        })
    }

    /// The recording of the config's first audio output.
    fn recording(&self) -> Result<crate::wav::Wav> {
        let config = crate::paths::root().join(self.config);
        let system = crate::qemu::system_of(&config)?;
        let output = system
            .audio
            .first()
            .context("the scenario checks audio, its config has no [[audio]] output")?;
        let path = self.wav_path(&output.name);
        let wav = crate::wav::Wav::read(&path)
            .with_context(|| format!("the recording {}", crate::paths::display(&path)))?;
        wav.expect_format(48_000, 2)?;
        Ok(wav)
    }

    /// Dumps every display under `label` (connecting to QMP the first
    /// time), recording where each went.
    fn screenshot(
        &self,
        qmp: &mut Option<crate::qmp::Qmp>,
        displays: &[crate::qemu::QemuDisplay],
        label: &'static str,
        shots: &mut Vec<(&'static str, String, PathBuf)>,
    ) -> Result<()> {
        if qmp.is_none() {
            *qmp = Some(crate::qmp::Qmp::connect(
                &self.qmp_socket(),
                Duration::from_secs(5),
            )?);
        }
        let qmp = qmp.as_mut().expect("connected above");
        let dir = self.screens_dir();
        crate::paths::create_dir(&dir)?;
        for display in displays {
            let path = dir.join(format!("{label}-{}.png", display.name));
            qmp.screendump(&display.id(), &path)?;
            shots.push((label, display.name.clone(), path));
        }
        Ok(())
    }

    /// Sends `frame` to the panel (or its pointer) on display `display`
    /// over QMP (an empty touch frame sends nothing: a point to wait for a
    /// line).
    fn touch(
        &self,
        qmp: &mut Option<crate::qmp::Qmp>,
        display: &str,
        frame: &InputFrame,
    ) -> Result<()> {
        if matches!(frame, InputFrame::Touch(f) if f.is_empty()) {
            return Ok(());
        }
        if qmp.is_none() {
            *qmp = Some(crate::qmp::Qmp::connect(
                &self.qmp_socket(),
                Duration::from_secs(5),
            )?);
        }
        let qmp = qmp.as_mut().expect("connected above");
        let device = format!("display-{display}");
        match frame {
            InputFrame::Touch(f) => qmp.touch(&device, f),
            InputFrame::Pointer(p) => qmp.pointer(&device, p.x, p.y, p.down),
        }
    }

    /// Writes the fresh disk (and runs the setup on it), if the scenario
    /// has one; returns its path.
    fn prepare_fresh_disk(&self) -> Result<Option<PathBuf>> {
        if let (Some(write), Some(image)) = (&self.flashed, &self.machine.disk) {
            if !(self.keep_disk && image.is_file()) {
                write(&crate::paths::root().join(self.config), image)?;
            }
            return Ok(Some(image.clone()));
        }
        let (Some(layout), Some(image)) = (self.disk, &self.machine.disk) else {
            return Ok(None);
        };
        if self.keep_disk && image.is_file() {
            return Ok(Some(image.clone()));
        }
        crate::disk::create_fresh(layout, image)?;
        if let Some((second, _)) = &self.machine.second_disk {
            crate::disk::create_fresh(layout, second)?;
        }
        if let Some(setup) = &self.disk_setup {
            setup(image).map_err(|e| anyhow::anyhow!("preparing {}: {e}", image.display()))?;
        }
        Ok(Some(image.clone()))
    }

    fn stop_description(&self) -> String {
        match &self.stop {
            Stop::Expected => "every expectation to hold".to_string(),
            Stop::Line(re) => format!("a line matching `{re}`"),
            Stop::AllLines(res) => {
                let all: Vec<String> = res.iter().map(|r| format!("`{r}`")).collect();
                format!("lines matching each of {}", all.join(", "))
            }
            Stop::When { description, .. } => description.clone(),
        }
    }
}

/// Tracks the stop condition as lines come in, so the common conditions
/// cost one regex match per new line.
struct Watch {
    /// Lines already looked at.
    seen: usize,
    /// Per expectation (for `Stop::Expected`) or per regex
    /// (`Stop::AllLines`, `Stop::Line`): matches so far.
    counts: Vec<usize>,
    /// Whether the condition runs closures over all lines.
    cheap: bool,
}

impl Watch {
    fn new(stop: &Stop) -> Watch {
        Watch {
            seen: 0,
            counts: Vec::new(),
            cheap: matches!(stop, Stop::Line(_) | Stop::AllLines(_)),
        }
    }

    fn is_cheap(&self) -> bool {
        self.cheap
    }

    fn holds(&mut self, stop: &Stop, expectations: &[Expectation], lines: &[String]) -> bool {
        let new = &lines[self.seen..];
        self.seen = lines.len();
        match stop {
            Stop::Line(re) => new.iter().any(|l| re.is_match(l)),
            Stop::AllLines(res) => {
                self.counts.resize(res.len(), 0);
                for (count, re) in self.counts.iter_mut().zip(res) {
                    *count += new.iter().filter(|l| re.is_match(l)).count();
                }
                self.counts.iter().all(|&c| c > 0)
            }
            Stop::When { predicate, .. } => predicate(lines),
            Stop::Expected => {
                self.counts.resize(expectations.len(), 0);
                let mut all = true;
                for (count, expectation) in self.counts.iter_mut().zip(expectations) {
                    all &= match &expectation.rule {
                        Rule::Count { regex, min, .. } => {
                            *count += new.iter().filter(|l| regex.is_match(l)).count();
                            *count >= *min
                        }
                        Rule::Custom { check, .. } => all && check(lines).is_ok(),
                    };
                }
                all
            }
        }
    }
}

impl Expectation {
    /// `Err` says how the lines fall short.
    fn judge(&self, lines: &[String]) -> Result<(), String> {
        match &self.rule {
            Rule::Custom { description, check } => {
                check(lines).map_err(|e| format!("{description}: {e}"))
            }
            Rule::Count { regex, min, max } => {
                let matching: Vec<usize> = (0..lines.len())
                    .filter(|&i| regex.is_match(&lines[i]))
                    .collect();
                let n = matching.len();
                if n >= *min && max.is_none_or(|max| n <= max) {
                    return Ok(());
                }
                let mut message = match (min, max) {
                    (_, Some(0)) => format!("expected no line matching `{regex}`, found {n}"),
                    (1, None) => format!("expected a line matching `{regex}`, found none"),
                    (min, None) => {
                        format!("expected at least {min} lines matching `{regex}`, found {n}")
                    }
                    (min, Some(max)) if min == max => {
                        format!("expected exactly {min} line(s) matching `{regex}`, found {n}")
                    }
                    (min, Some(max)) => {
                        format!("expected {min} to {max} lines matching `{regex}`, found {n}")
                    }
                };
                for &i in matching.iter().take(3) {
                    let _ = write!(message, "\n    line {}: {}", i + 1, lines[i]);
                }
                Err(message)
            }
        }
    }
}

/// What a run showed.
pub struct Outcome {
    /// Empty when the scenario passed.
    pub failures: Vec<String>,
    /// Every console line, QEMU's standard error prefixed.
    pub lines: Vec<String>,
    pub duration: Duration,
    /// The scenario's measurement, if it makes one.
    pub report: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Sends each line of `source` (without its line ending, prefixed) until
/// end of file.
fn read_lines(
    source: impl Read + Send + 'static,
    prefix: &'static str,
    sender: Sender<String>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                // The output ended mid-line: the process was stopped while
                // writing it (a scenario stops QEMU as soon as it has seen
                // enough), so it is not a line the guest or the hypervisor
                // finished, and judging it would flag a cut that is ours.
                Ok(_) if !buf.ends_with(b"\n") => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let line = text.trim_end_matches(['\n', '\r']).replace('\r', "");
                    if sender.send(format!("{prefix}{line}")).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

// Helpers for custom checks and stop conditions.

/// The lines after the first one matching `pattern`, if any matches.
pub fn after<'a>(lines: &'a [String], pattern: &str) -> Option<&'a [String]> {
    let re = regex(pattern);
    let i = lines.iter().position(|l| re.is_match(l))?;
    Some(&lines[i + 1..])
}

/// The first capture group of `pattern`, parsed as a number, on every line
/// that matches.
pub fn numbers(lines: &[String], pattern: &str) -> Vec<u64> {
    let re = regex(pattern);
    lines
        .iter()
        .filter_map(|l| re.captures(l)?.get(1)?.as_str().parse().ok())
        .collect()
}

/// The first two numbers each line matching `pattern` captures.
pub fn pairs(lines: &[String], pattern: &str) -> Vec<(u64, u64)> {
    let re = regex(pattern);
    lines
        .iter()
        .filter_map(|l| {
            let c = re.captures(l)?;
            Some((
                c.get(1)?.as_str().parse().ok()?,
                c.get(2)?.as_str().parse().ok()?,
            ))
        })
        .collect()
}

/// `Ok` when each number is one more than the one before.
pub fn consecutive(numbers: &[u64]) -> Result<(), String> {
    for pair in numbers.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(format!("{} is followed by {}", pair[0], pair[1]));
        }
    }
    Ok(())
}

/// How many lines match `pattern`.
pub fn count(lines: &[String], pattern: &str) -> usize {
    let re = regex(pattern);
    lines.iter().filter(|l| re.is_match(l)).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    fn log(name: &str) -> std::path::PathBuf {
        let dir = paths::target_dir().join("xtask-test-logs");
        paths::create_dir(&dir).unwrap();
        dir.join(format!("{name}.log"))
    }

    fn run(scenario: &Scenario, script: &str) -> Outcome {
        scenario
            .run(sh(script), script, &log(scenario.name))
            .unwrap()
    }

    /// A process that prints `lines` and then stays alive, like a guest.
    fn prints_then_waits(lines: &str) -> String {
        format!("printf '{lines}'; exec sleep 60")
    }

    /// A line the process had not finished when it stopped is not judged
    /// (it would look like a cut line of the guest's).
    #[test]
    fn a_line_cut_by_the_end_of_the_output_is_not_judged() {
        let scenario = Scenario::new("t-cut", "")
            .timeout(10)
            .expect_at_least(2, r"tick=\d+")
            .expect_none("^tick=3$|^ti$");
        let outcome = run(&scenario, r"printf 'tick=1\ntick=2\nti'; exec sleep 60");
        assert!(outcome.passed(), "{:?}", outcome.failures);
        assert_eq!(outcome.lines, ["tick=1", "tick=2"]);
    }

    #[test]
    fn stops_when_all_expectations_hold() {
        let scenario = Scenario::new("t-expected", "")
            .timeout(10)
            .expect(r"^\[a\] hello")
            .expect_at_least(2, r"tick=\d+")
            .expect_none("BAD");
        let outcome = run(
            &scenario,
            &prints_then_waits(r"[a] hello\r\ntick=1\ntick=2\n"),
        );
        assert!(outcome.passed(), "{:?}", outcome.failures);
        assert!(outcome.duration < Duration::from_secs(5));
        assert_eq!(outcome.lines, ["[a] hello", "tick=1", "tick=2"]);
        let log = std::fs::read_to_string(log("t-expected")).unwrap();
        assert_eq!(log, "[a] hello\ntick=1\ntick=2\n");
    }

    #[test]
    fn forbidden_lines_and_counts_fail() {
        let scenario = Scenario::new("t-forbidden", "")
            .timeout(10)
            .expect_exactly(1, "boot")
            .expect_none("BAD")
            .expect_at_least(3, "tick")
            .stop_on("end");
        let outcome = run(
            &scenario,
            &prints_then_waits(r"boot\nboot\ntick BAD\nend\n"),
        );
        assert_eq!(outcome.failures.len(), 3, "{:?}", outcome.failures);
        assert!(
            outcome.failures[0].starts_with("expected exactly 1 line(s) matching `boot`, found 2")
        );
        assert!(outcome.failures[1].contains("line 3: tick BAD"));
        assert!(outcome.failures[2].contains("at least 3"));
    }

    #[test]
    fn timeout_kills_the_process() {
        let scenario = Scenario::new("t-timeout", "")
            .timeout(1)
            .expect("never printed");
        let started = Instant::now();
        let outcome = run(&scenario, &prints_then_waits(r"something\n"));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            outcome.failures[0].starts_with("timed out after 1s"),
            "{:?}",
            outcome.failures
        );
        assert!(outcome.failures[1].contains("found none"));
    }

    #[test]
    fn early_exit_fails_and_stderr_is_kept() {
        let scenario = Scenario::new("t-exit", "")
            .timeout(10)
            .stop_on("never printed");
        let outcome = run(&scenario, "echo out; echo oops >&2; exit 3");
        assert!(outcome.failures[0].starts_with("QEMU exited (exit status: 3) before"));
        assert!(outcome.lines.contains(&format!("{STDERR_PREFIX}oops")));
    }

    #[test]
    fn settle_requires_the_process_to_keep_running() {
        let scenario = Scenario::new("t-settle", "")
            .timeout(10)
            .stop_on("ready")
            .settle(1000);
        let outcome = run(&scenario, "echo ready; sleep 0.2; echo crash; exit 1");
        assert!(
            outcome.failures[0].contains("within"),
            "{:?}",
            outcome.failures
        );
        assert!(outcome.lines.contains(&"crash".to_string()));
        let outcome = run(&scenario, &prints_then_waits(r"ready\n"));
        assert!(outcome.passed(), "{:?}", outcome.failures);
        assert!(outcome.duration >= Duration::from_millis(1000));
    }

    #[test]
    fn custom_checks_and_predicates() {
        let scenario = Scenario::new("t-custom", "")
            .timeout(10)
            .check("ticks never skip", |lines| {
                consecutive(&numbers(lines, r"tick=(\d+)"))
            })
            .stop_when("tick=3 after done", |lines| {
                after(lines, "done").is_some_and(|rest| count(rest, "tick=3") > 0)
            });
        let outcome = run(
            &scenario,
            &prints_then_waits(r"tick=1\ntick=3\ndone\ntick=3\n"),
        );
        assert_eq!(outcome.failures, ["ticks never skip: 1 is followed by 3"]);
    }

    /// A fresh disk per run, set up before and checked after the process.
    #[test]
    fn disks_are_fresh_prepared_and_checked() {
        use crate::disk::{self, QEMU_VIRT_LAYOUT};

        let image = disk::test_disk("t-disk");
        let scenario = Scenario::new("t-disk", "")
            .timeout(10)
            .disk(QEMU_VIRT_LAYOUT)
            .prepare_disk(|image| {
                disk::write_partition(image, "ivi-data", 0, b"seed").map_err(|e| e.to_string())
            })
            .stop_on("^done$")
            .check_disk(
                "ivi-data starts with SEED",
                |image| match disk::read_partition(image, "ivi-data", 0, 4) {
                    Ok(bytes) if bytes == b"SEED" => Ok(()),
                    other => Err(format!("{other:?}")),
                },
            )
            .check_disk("nothing else changed", |image| {
                disk::check_unchanged_outside(image, QEMU_VIRT_LAYOUT, &["ivi-data"])
                    .map_err(|e| e.to_string())
            });
        assert_eq!(scenario.machine.disk.as_ref(), Some(&image));
        // ivi-data starts at LBA 4096, shared-ro at LBA 69632.
        let write = |text: &str, lba: u64| {
            format!(
                "printf {text} | dd of={} bs=512 seek={lba} conv=notrunc status=none",
                image.display()
            )
        };
        let seeded = format!(
            "test \"$(head -c 4 {0} 2>/dev/null; dd if={0} bs=512 skip=4096 count=1 status=none | head -c 4)\" = seed",
            image.display()
        );
        let script = format!(
            "{seeded} && {} && echo done; exec sleep 60",
            write("SEED", 4096)
        );
        let outcome = run(&scenario, &script);
        assert!(
            outcome.passed(),
            "{:?} {:?}",
            outcome.failures,
            outcome.lines
        );

        // The next run starts from a fresh disk: "seed" again, not "SEED".
        let script = format!(
            "{seeded} && {} && echo done; exec sleep 60",
            write("x", 69632)
        );
        let outcome = run(&scenario, &script);
        assert_eq!(
            outcome.failures,
            [
                "ivi-data starts with SEED: Ok([115, 101, 101, 100])",
                "nothing else changed: LBA 69632 changed (sector 0 of partition \"shared-ro\")"
            ]
        );

        let no_disk = Scenario::new("t-no-disk", "")
            .timeout(10)
            .stop_on("^done$")
            .check_disk("x", |_| Ok(()));
        let outcome = run(&no_disk, &prints_then_waits(r"done\n"));
        assert_eq!(
            outcome.failures,
            ["x: the scenario has no disk (`.disk(layout)`)"]
        );
    }

    #[test]
    fn helpers() {
        let lines: Vec<String> = ["a tick=1", "b", "a tick=2", "a tick=4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(numbers(&lines, r"a tick=(\d+)"), [1, 2, 4]);
        assert_eq!(after(&lines, "^b$").unwrap().len(), 2);
        assert!(after(&lines, "zzz").is_none());
        assert_eq!(consecutive(&[1, 2, 3]), Ok(()));
        assert!(consecutive(&[1, 2, 4]).is_err());
        assert_eq!(count(&lines, "tick"), 3);
    }
}
