//! `cargo xtask bench`: the mediated-storage, display, touch and audio
//! benchmarks.
//!
//! Every run boots once under QEMU `-icount shift=0` (virtual time
//! advances one nanosecond per instruction executed, and with the host's
//! clock while every core is idle, e.g. waiting for the host to finish a
//! disk write). `cargo xtask bench storage`, `display`, `touch`, `audio`,
//! `traps`, `boot` or `cpu` does only that part; the display runs are in
//! [`display`], the touch runs in [`touch`], the audio runs in [`audio`],
//! the trap costs against native in [`traps`], the boot times against
//! native in [`boot`], a computing partition against native in [`cpu`].
//!
//! Storage: three systems, each with a fresh disk of
//! `board/qemu-virt/disk.toml`'s layout, kept in host memory (`/dev/shm`)
//! where there is room, so the host's own disk does not add its noise:
//!
//! - `storage-alone`: the cluster (`blklat`) times single one-sector
//!   requests on its GPT partition while the IVI sits idle at its shell;
//! - `storage-loaded`: the same, while the IVI writes its own partition of
//!   the same physical disk as fast as it can (`ivi.test=blkload`);
//! - `storage-side-by-side`: the mediator's throughput against
//!   passthrough in one boot. QEMU has a second disk, passed through to
//!   the IVI; the IVI writes its partition of each disk in turn, a 32 MiB
//!   pass at a time, so both see the same host at the same moments. The
//!   figure for each is its median pass.
//!
//! The configs are in `config/qemu-virt/bench/`. Each run's console goes
//! to `target/bench/<name>.log`; the tables are printed and also written to
//! `target/bench/results.json`. A benchmark measures, it does not judge:
//! a run fails only when its markers are missing, a partition reports an
//! error, or the disk image changed outside the partitions' own GPT
//! partitions.
//!
//! Under `-icount` QEMU runs every core on one host thread, in turn, so
//! the cores share one virtual timeline: the IVI's CPU work (not only its
//! I/O) delays the cluster's requests, which dedicated cores would not.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use regex::Regex;
use serde_json::{Value, json};

use crate::board::{self, Board};
use crate::disk::QEMU_VIRT_LAYOUT;
use crate::paths;
use crate::process::{Cmd, step};
use crate::qemu::{self, AudioSink, MachineChanges, QemuAudio, QemuDisplay, QemuTouch};
use crate::scenario::{Outcome, Scenario};
use crate::{guests, images, prereqs};

mod audio;
mod boot;
mod cpu;
mod display;
mod footprint;
mod touch;
mod traps;

/// The `-icount` value of every run unless `--icount` says otherwise.
const ICOUNT: &str = "shift=0";
/// Wall-clock limit of each run (each takes under a minute: Linux boots in
/// about 30 s under `-icount`).
const RUN_TIMEOUT_S: u64 = 170;
/// IVI write passes the side-by-side run waits for on each disk.
const PASSES: usize = 30;
/// The side-by-side run's second QEMU disk (passed through to the IVI)
/// is on this virtio-mmio transport: not in the 4 KiB page of the first,
/// which the hypervisor mediates.
const SECOND_DISK: u64 = 0x0a00_2e00;
/// The IVI's name for the mediated disk, and for its partition of the
/// passed-through one, in the side-by-side run.
const MEDIATED_DISK: &str = "/dev/vda";
const DIRECT_DISK: &str = "/dev/vdb2";

const BLKLAT_RESULT: &str = r"^\[cluster\] blklat: n=(\d+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+)$";
const BLKLAT_DETAIL: &str =
    r"^\[cluster\] blklat: reads p50_us=(\d+) p99_us=(\d+) writes p50_us=(\d+) p99_us=(\d+)$";
const BLKLAT_FROM: &str = r"^\[cluster\] blklat: measuring from counter (\d+)$";
const BLKLAT_UNTIL: &str = r"^\[cluster\] blklat: measured until counter (\d+)$";
/// What ends a `blklat` run, well or not.
const BLKLAT_END: &str = r"^\[cluster\] blklat: (done|no virtio-blk device|device at|empty disk)";
const PASS: &str = r"^\[ivi\] ivi: blkload: wrote (\d+) bytes in (\d+) ms \(pass (\d+), counter (\d+) to (\d+)\) to (\S+)$";
const LOAD_FAILED: &str = r"^\[ivi\] ivi: blkload: dd to .* failed";
const COUNTER_HZ: &str = r"^\[hv\] INFO  entered at counter \d+ \(\d+ ms at (\d+) Hz\)";

const USAGE: &str =
    "usage: cargo xtask bench [--icount VALUE] [storage|display|touch|audio|traps|boot|cpu]...";

/// The parts of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Storage,
    Display,
    Touch,
    Audio,
    Traps,
    Boot,
    Cpu,
}

/// What the command line asks for: the `-icount` value, and which parts
/// (all when none is named).
fn parse_args(args: &[String]) -> Result<(&'static str, Vec<Part>)> {
    let mut icount = ICOUNT;
    let mut parts = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--icount" => match it.next() {
                Some(value) if !value.is_empty() => icount = value.clone().leak(),
                _ => bail!(USAGE),
            },
            "storage" if !parts.contains(&Part::Storage) => parts.push(Part::Storage),
            "display" if !parts.contains(&Part::Display) => parts.push(Part::Display),
            "touch" if !parts.contains(&Part::Touch) => parts.push(Part::Touch),
            "audio" if !parts.contains(&Part::Audio) => parts.push(Part::Audio),
            "traps" if !parts.contains(&Part::Traps) => parts.push(Part::Traps),
            "boot" if !parts.contains(&Part::Boot) => parts.push(Part::Boot),
            "cpu" if !parts.contains(&Part::Cpu) => parts.push(Part::Cpu),
            _ => bail!(USAGE),
        }
    }
    if parts.is_empty() {
        parts = vec![
            Part::Storage,
            Part::Display,
            Part::Touch,
            Part::Audio,
            Part::Traps,
            Part::Boot,
            Part::Cpu,
        ];
    }
    Ok((icount, parts))
}

/// One run of the bench.
struct Run {
    /// Its key in the results.
    key: &'static str,
    part: Part,
    scenario: Scenario,
    boot: Boot,
}

/// How QEMU boots for a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Boot {
    /// The hypervisor built with the scenario's config, with the config's
    /// displays attached (as `cargo xtask test` boots a scenario).
    Hypervisor,
    /// Partition `partition` of the scenario's config alone, without the
    /// hypervisor: its image booted directly on QEMU `virt` (`-kernel`, at
    /// EL1, a core per vCPU, its RAM) with its bootargs (`-append`) and
    /// initrd, and devices of its own as it has them under the hypervisor:
    /// a virtio-gpu device per view, of the view's size; a blank disk of its
    /// GPT partition's size; the touch panel on its view; a sound device.
    /// See [`NativeGuest`].
    Native { partition: &'static str },
}

pub fn command(args: &[String]) -> Result<ExitCode> {
    let (icount, parts) = parse_args(args)?;
    prereqs::ensure()?;
    let mut plan: Vec<Run> = Vec::new();
    if parts.contains(&Part::Storage) {
        plan.extend(runs(icount).into_iter().map(|(key, scenario)| Run {
            key,
            part: Part::Storage,
            scenario,
            boot: Boot::Hypervisor,
        }));
    }
    if parts.contains(&Part::Display) {
        plan.extend(display::runs(icount));
    }
    if parts.contains(&Part::Touch) {
        plan.extend(touch::runs(icount));
    }
    if parts.contains(&Part::Audio) {
        plan.extend(audio::runs(icount));
    }
    if parts.contains(&Part::Traps) {
        plan.extend(traps::runs(icount));
    }
    if parts.contains(&Part::Boot) {
        plan.extend(boot::runs(icount));
    }
    if parts.contains(&Part::Cpu) {
        plan.extend(cpu::runs(icount));
    }
    let configs: Vec<PathBuf> = plan
        .iter()
        .filter(|r| r.boot == Boot::Hypervisor)
        .map(|r| paths::root().join(r.scenario.config))
        .collect();
    images::build_guests()?;
    guests::build_referenced(&configs)?;
    let dir = bench_dir();
    paths::create_dir(&dir)?;

    let mut results = Vec::new();
    for planned in &plan {
        let (key, scenario) = (planned.key, &planned.scenario);
        match planned.boot {
            Boot::Hypervisor => step(format!("bench {key}: {}", scenario.config)),
            Boot::Native { partition } => step(format!(
                "bench {key}: partition {partition} of {} on QEMU without the hypervisor",
                scenario.config
            )),
        }
        let started = Instant::now();
        let outcome = run(planned)?;
        let wall = started.elapsed();
        let status = if outcome.passed() { "ok" } else { "FAILED" };
        println!(
            "{status}  {} ({:.1}s wall, log {})",
            scenario.name,
            wall.as_secs_f64(),
            paths::display(&log_path(scenario))
        );
        for failure in &outcome.failures {
            for line in failure.lines() {
                println!("    {line}");
            }
        }
        results.push(RunResult {
            key,
            part: planned.part,
            scenario,
            boot: planned.boot,
            outcome,
            wall,
        });
    }

    let summary = Summary::from_runs(icount, &results);
    let displays = display::Summary::from_runs(&results);
    let touches = touch::Summary::from_runs(&results);
    let sounds = audio::Summary::from_runs(&results);
    let trap_costs = traps::Summary::from_runs(&results);
    let boot_times = boot::Summary::from_runs(&results);
    let footprint = footprint::Summary::from_runs(&results);
    let cpu_costs = cpu::Summary::from_runs(&results);
    // Each part's tables (printed) and its key in the results (null when
    // the part did not run); storage's figures are the results' top level.
    let reports: [(Part, &str, Vec<String>, Value); 7] = [
        (
            Part::Display,
            "display",
            vec![displays.table(icount)],
            displays.json(),
        ),
        (
            Part::Touch,
            "touch",
            vec![touches.table(icount)],
            touches.json(),
        ),
        (
            Part::Audio,
            "audio",
            vec![sounds.table(icount)],
            sounds.json(),
        ),
        (
            Part::Traps,
            "traps",
            vec![trap_costs.table(icount)],
            trap_costs.json(),
        ),
        (
            Part::Boot,
            "boot",
            vec![boot_times.table(icount), footprint.table()],
            boot_times.json(),
        ),
        (Part::Boot, "footprint", Vec::new(), footprint.json()),
        (
            Part::Cpu,
            "cpu",
            vec![cpu_costs.table(icount)],
            cpu_costs.json(),
        ),
    ];
    if parts.contains(&Part::Storage) {
        println!();
        print!("{}", summary.table());
    }
    let mut json = summary.json(&results);
    for (part, key, tables, value) in reports {
        let ran = parts.contains(&part);
        if ran {
            for table in tables {
                println!();
                print!("{table}");
            }
        }
        json[key] = if ran { value } else { Value::Null };
    }
    let file = dir.join("results.json");
    std::fs::write(&file, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    println!("\nresults: {}", paths::display(&file));
    // A cpu kernel whose result differs between its runs fails the bench
    // (its table says FAILED), though each run passed.
    let passed = results.iter().all(|r| r.outcome.passed()) && cpu_costs.passed();
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `target/bench/`: logs and results.
fn bench_dir() -> PathBuf {
    paths::target_dir().join("bench")
}

fn log_path(scenario: &Scenario) -> PathBuf {
    bench_dir().join(format!("{}.log", scenario.name))
}

/// The runs, in order, each with its key in the results.
fn runs(icount: &'static str) -> Vec<(&'static str, Scenario)> {
    vec![
        (
            "alone",
            latency(base(
                "bench-storage-alone",
                "config/qemu-virt/bench/storage-alone.toml",
                icount,
            ))
            .writes_only_inside(&["cluster-odo", "ivi-data"])
            .stop_on(BLKLAT_END),
        ),
        ("loaded", loaded_run("bench-storage-loaded", icount)),
        ("side-by-side", side_by_side_run(icount)),
    ]
}

/// The mediated disk's throughput against passthrough's, in one boot
/// (`storage-side-by-side.toml`): the IVI writes its partition of each of
/// QEMU's two disks in turn, until each has had [`PASSES`] passes.
fn side_by_side_run(icount: &'static str) -> Scenario {
    let (pass, failed) = (regex(PASS), regex(LOAD_FAILED));
    base(
        "bench-storage-side-by-side",
        "config/qemu-virt/bench/storage-side-by-side.toml",
        icount,
    )
    .second_disk(SECOND_DISK, &["ivi-data"])
    .writes_only_inside(&["ivi-data"])
    .expect(&format!(
        r"^\[ivi\] ivi: blkload: start on {MEDIATED_DISK},"
    ))
    .expect(&format!(r"^\[ivi\] ivi: blkload: start on {DIRECT_DISK},"))
    .expect_at_least(2 * PASSES, PASS)
    .expect_none(LOAD_FAILED)
    .stop_when(&format!("{PASSES} IVI passes on each disk"), move |lines| {
        lines.iter().any(|l| failed.is_match(l))
            || lines.iter().filter(|l| pass.is_match(l)).count() >= 2 * PASSES
    })
}

/// The cluster times its requests while the IVI writes its own partition
/// of the same disk flat out (`storage-loaded.toml`); it stops once an IVI
/// pass has ended after the cluster finished, so the load covered the
/// whole measurement. The bench's `loaded` run, and what the
/// `storage-priority` scenario judges.
pub(crate) fn loaded_run(name: &'static str, icount: &'static str) -> Scenario {
    let (pass, failed) = (regex(PASS), regex(LOAD_FAILED));
    let config = "config/qemu-virt/bench/storage-loaded.toml";
    latency(base(name, config, icount))
        .writes_only_inside(&["cluster-odo", "ivi-data"])
        .expect(r"^\[ivi\] ivi: blkload: start on /dev/vda,")
        .expect_none(LOAD_FAILED)
        .stop_when("blklat done and an IVI pass ended after it", move |lines| {
            lines.iter().any(|l| failed.is_match(l))
                || crate::scenario::after(lines, BLKLAT_END)
                    .is_some_and(|rest| rest.iter().any(|l| pass.is_match(l)))
        })
}

/// A run of `config` under `-icount icount` with a fresh disk.
fn base(name: &'static str, config: &'static str, icount: &'static str) -> Scenario {
    Scenario::new(name, config)
        .icount(icount)
        .disk(QEMU_VIRT_LAYOUT)
        .disk_in_host_memory()
        .timeout(RUN_TIMEOUT_S)
}

/// The cluster's `blklat` measurement completed without errors.
fn latency(s: Scenario) -> Scenario {
    s.expect(BLKLAT_RESULT)
        .expect(BLKLAT_FROM)
        .expect(BLKLAT_UNTIL)
        .expect_none(r"^\[cluster\] blklat: request \d+ .* -> error")
}

/// From a [`loaded_run`]'s console: the cluster's p99 and worst latency
/// (µs), and how much of its measurement the IVI's write load covered
/// (0..=1).
pub(crate) fn loaded_latency(lines: &[String]) -> Option<(u64, u64, f64)> {
    let l = Latency::parse(lines)?;
    let passes: Vec<Pass> = Pass::parse_all(lines)
        .into_iter()
        .filter(|p| p.overlaps(l.window))
        .collect();
    Some((l.p99_us, l.max_us, coverage(&passes, l.window)))
}

/// Compiles one of this module's patterns (checked by its tests).
fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex in bench.rs: {e}"))
}

/// Boots the run (building its hypervisor image first if it has one), the
/// console going to `target/bench/<name>.log`.
fn run(planned: &Run) -> Result<Outcome> {
    let scenario = &planned.scenario;
    let config = paths::root().join(scenario.config);
    let board = Board::load(&board::name_for_config(&config)?)?;
    let cmd = match planned.boot {
        Boot::Hypervisor => {
            let image = images::build_hypervisor(&config)?;
            qemu::command(&board, &image, &scenario.hypervisor_machine(&config)?)?
        }
        Boot::Native { partition } => {
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("cannot read {}", paths::display(&config)))?;
            let guest = NativeGuest::from_config(&text, partition)
                .with_context(|| paths::display(&config))?;
            let mut machine = scenario.machine.clone();
            if let Some(gpt) = &guest.disk {
                let image = bench_dir().join(format!("{}-disk.img", scenario.name));
                blank_disk(&board, gpt, &image)?;
                machine.disk = Some(image);
            }
            guest.command(&board, &machine)?
        }
    };
    let text = cmd.text().to_string();
    println!("$ {text}");
    scenario.run(cmd.into_command(), &text, &log_path(scenario))
}

/// QEMU's `virt` without EL2: a partition image booted directly starts at
/// EL1, as under the hypervisor.
const NATIVE_MACHINE: &str = "virt,gic-version=3";
/// The virtio-mmio transport QEMU fills first on `virt` (the highest; see
/// `qemu.rs`): a native run's disk if it has one (QEMU puts it there),
/// else its first device; its other devices go below.
const NATIVE_FIRST_TRANSPORT: u64 = 0x0a00_3e00;
const TRANSPORT_STRIDE: u64 = 0x200;

/// A partition of a config, as a native run boots it.
#[derive(Debug, PartialEq)]
struct NativeGuest {
    /// Its image (`@/` is `target/partitions/`).
    image: PathBuf,
    /// Its initial RAM disk (a Linux partition's `initrd`), if any.
    initrd: Option<PathBuf>,
    bootargs: String,
    /// Its number of cores (vCPUs).
    cpus: u32,
    /// Its RAM in MiB, its memory regions' sizes added up (none given:
    /// the board's).
    memory_mib: Option<u64>,
    /// Its views' sizes, in scanout order.
    views: Vec<(u32, u32)>,
    /// The GPT partition of the board's disk its first disk is, if any.
    disk: Option<String>,
    /// Its view that a touch panel of the config lies on, if it has touch.
    touch: Option<usize>,
    /// It has a sound device (`audio`).
    audio: bool,
}

impl NativeGuest {
    /// Partition `name` of the config `text` (already checked by the
    /// build of the hypervisor runs; only the keys used here are read).
    fn from_config(text: &str, name: &str) -> Result<NativeGuest> {
        let table: toml::Table = text.parse()?;
        let array = |t: &toml::Table, key: &str| {
            t.get(key)
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default()
        };
        let partition = array(&table, "partition")
            .into_iter()
            .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
            .and_then(|p| p.as_table().cloned())
            .with_context(|| format!("no partition {name:?}"))?;
        let path = |p: &str| match p.strip_prefix("@/") {
            Some(rest) => paths::partitions_dir().join(rest),
            None => paths::root().join(p),
        };
        let image = partition
            .get("image")
            .and_then(|i| i.as_str())
            .map(path)
            .with_context(|| format!("partition {name:?} has no image"))?;
        let initrd = partition.get("initrd").and_then(|i| i.as_str()).map(path);
        let bootargs = partition
            .get("bootargs")
            .and_then(|b| b.as_str())
            .unwrap_or("")
            .to_string();
        let cpus = partition
            .get("cpus")
            .and_then(|c| c.as_array())
            .map_or(1, |c| c.len().max(1) as u32);
        let regions = array(&partition, "memory");
        let bytes = regions
            .iter()
            .map(|r| r.get("size").and_then(|s| s.as_integer()).unwrap_or(0))
            .map(|s| u64::try_from(s).unwrap_or(0))
            .sum::<u64>();
        let memory_mib = (bytes > 0).then(|| bytes.div_ceil(1 << 20));
        let mut views = Vec::new();
        let mut displays = Vec::new();
        for view in array(&partition, "views") {
            let size = |key: &str| {
                view.get(key)
                    .and_then(|v| v.as_integer())
                    .and_then(|v| u32::try_from(v).ok())
                    .with_context(|| format!("a view of partition {name:?} has no {key}"))
            };
            views.push((size("width")?, size("height")?));
            displays.push(
                view.get("display")
                    .and_then(|d| d.as_str())
                    .map(String::from),
            );
        }
        let disk = array(&partition, "disks")
            .first()
            .and_then(|d| d.get("gpt"))
            .and_then(|g| g.as_str())
            .map(String::from);
        let panels: Vec<String> = array(&table, "touch")
            .iter()
            .filter_map(|t| t.get("display").and_then(|d| d.as_str()).map(String::from))
            .collect();
        let touch = (partition.get("touch").and_then(|t| t.as_bool()) == Some(true))
            .then(|| {
                displays
                    .iter()
                    .position(|d| d.as_ref().is_some_and(|d| panels.contains(d)))
            })
            .flatten();
        Ok(NativeGuest {
            image,
            initrd,
            bootargs,
            cpus,
            memory_mib,
            views,
            disk,
            touch,
            audio: partition.contains_key("audio"),
        })
    }

    /// The QEMU command line: `changes` (for `-icount`, and the disk if it
    /// has one) on the board's QEMU with [`NATIVE_MACHINE`], as many cores
    /// as the partition has vCPUs, its RAM, a virtio-gpu device per view,
    /// the touch panel on its view's device, a sound device, and its
    /// initrd.
    ///
    /// The disk takes the first transport, as on the board; the views
    /// take the ones below, view 0 the lowest: QEMU's device tree lists the
    /// transports from the lowest address up, so the guest finds view 0's
    /// device first, view 1's next, and so on. Then the touch panel and
    /// the sound device (its sound goes nowhere: QEMU's `none` audio
    /// driver, which takes it at the pace a WAV file would).
    fn command(&self, board: &Board, changes: &MachineChanges) -> Result<Cmd> {
        let mut free = (u64::from(changes.disk.is_some())..)
            .map(|i| NATIVE_FIRST_TRANSPORT - i * TRANSPORT_STRIDE);
        let mut bases: Vec<u64> = free.by_ref().take(self.views.len()).collect();
        bases.reverse();
        let mut displays: Vec<QemuDisplay> = (0..)
            .zip(self.views.iter().zip(bases))
            .map(|(i, (&(width, height), base))| QemuDisplay {
                name: format!("native{i}"),
                base,
                width,
                height,
                touch: None,
            })
            .collect();
        if let Some(display) = self.touch.and_then(|v| displays.get_mut(v)) {
            display.touch = Some(QemuTouch {
                name: display.name.clone(),
                base: free.next().expect("transports below"),
                pointer: None,
            });
        }
        let audio = if self.audio {
            vec![QemuAudio {
                name: "native".to_string(),
                base: free.next().expect("transports below"),
                sink: AudioSink::Host("none"),
            }]
        } else {
            Vec::new()
        };
        let memory = changes
            .memory
            .or_else(|| self.memory_mib.map(|mib| &*format!("{mib}M").leak()));
        let machine = MachineChanges {
            machine: Some(NATIVE_MACHINE),
            smp: Some(self.cpus),
            memory,
            displays,
            audio,
            ..changes.clone()
        };
        let cmd = qemu::command(board, &self.image, &machine)?;
        let cmd = match &self.initrd {
            Some(initrd) => cmd.arg("-initrd").arg(initrd),
            None => cmd,
        };
        Ok(cmd.arg("-append").arg(&self.bootargs))
    }
}

/// A blank disk image at `image` of the size GPT partition `gpt` has on
/// `board`'s disk: a native run's own disk, as its partition sees the
/// disk under the hypervisor.
fn blank_disk(board: &Board, gpt: &str, image: &std::path::Path) -> Result<()> {
    let layout = crate::disk::Layout::load(&crate::disk::layout_path(&board.name))?;
    let bytes = layout.partition(gpt)?.bytes();
    let _ = std::fs::remove_file(image);
    std::fs::File::create(image)
        .and_then(|f| f.set_len(bytes.end - bytes.start))
        .with_context(|| format!("cannot create {}", paths::display(image)))
}

struct RunResult<'a> {
    key: &'static str,
    part: Part,
    scenario: &'a Scenario,
    boot: Boot,
    outcome: Outcome,
    wall: Duration,
}

/// The console lines of the run with key `key` (none if it did not run).
fn lines_of<'a>(results: &'a [RunResult<'_>], key: &str) -> &'a [String] {
    results
        .iter()
        .find(|r| r.key == key)
        .map(|r| r.outcome.lines.as_slice())
        .unwrap_or(&[])
}

/// `blklat`'s result lines.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Latency {
    n: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    reads_p50_us: u64,
    reads_p99_us: u64,
    writes_p50_us: u64,
    writes_p99_us: u64,
    /// Counter values at the start and end of the measurement.
    window: (u64, u64),
}

impl Latency {
    fn parse(lines: &[String]) -> Option<Latency> {
        let r = captures(lines, BLKLAT_RESULT)?;
        let d = captures(lines, BLKLAT_DETAIL).unwrap_or_default();
        let from = captures(lines, BLKLAT_FROM)?;
        let until = captures(lines, BLKLAT_UNTIL)?;
        let get = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
        Some(Latency {
            n: r[0],
            p50_us: r[1],
            p99_us: r[2],
            max_us: r[3],
            reads_p50_us: get(&d, 0),
            reads_p99_us: get(&d, 1),
            writes_p50_us: get(&d, 2),
            writes_p99_us: get(&d, 3),
            window: (from[0], until[0]),
        })
    }

    fn json(&self) -> Value {
        json!({
            "n": self.n,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
            "reads": { "p50_us": self.reads_p50_us, "p99_us": self.reads_p99_us },
            "writes": { "p50_us": self.writes_p50_us, "p99_us": self.writes_p99_us },
            "window_counter": [self.window.0, self.window.1],
        })
    }
}

/// One pass of the IVI's write load.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pass {
    bytes: u64,
    number: u64,
    /// Counter values before and after.
    from: u64,
    until: u64,
}

impl Pass {
    fn parse_all(lines: &[String]) -> Vec<Pass> {
        Self::parse(lines, None)
    }

    /// The passes that wrote `device`.
    fn parse_to(lines: &[String], device: &str) -> Vec<Pass> {
        Self::parse(lines, Some(device))
    }

    fn parse(lines: &[String], device: Option<&str>) -> Vec<Pass> {
        let re = regex(PASS);
        lines
            .iter()
            .filter_map(|l| {
                let c = re.captures(l)?;
                if device.is_some_and(|d| d != &c[6]) {
                    return None;
                }
                let n = |i: usize| c[i].parse::<u64>().ok();
                Some(Pass {
                    bytes: n(1)?,
                    number: n(3)?,
                    from: n(4)?,
                    until: n(5)?,
                })
            })
            .collect()
    }

    fn overlaps(&self, window: (u64, u64)) -> bool {
        self.from < window.1 && window.0 < self.until
    }
}

/// Write throughput over some passes, in MB/s (10^6 bytes per second) of
/// counter time: the median of the passes' rates, so that a pass the
/// host slowed (its I/O is virtual time while every core waits for it)
/// does not move the figure.
#[derive(Clone, Debug, PartialEq)]
struct Throughput {
    mb_s: f64,
    /// The slowest and fastest pass.
    range: (f64, f64),
    passes: Vec<u64>,
    bytes: u64,
    seconds: f64,
}

impl Throughput {
    fn over(passes: &[Pass], hz: u64) -> Option<Throughput> {
        if hz == 0 {
            return None;
        }
        let mut rates: Vec<f64> = passes
            .iter()
            .filter(|p| p.until > p.from)
            .map(|p| p.bytes as f64 / ((p.until - p.from) as f64 / hz as f64) / 1e6)
            .collect();
        if rates.is_empty() {
            return None;
        }
        rates.sort_by(f64::total_cmp);
        let mid = rates.len() / 2;
        let median = if rates.len() % 2 == 1 {
            rates[mid]
        } else {
            (rates[mid - 1] + rates[mid]) / 2.0
        };
        let ticks: u64 = passes.iter().map(|p| p.until.saturating_sub(p.from)).sum();
        Some(Throughput {
            mb_s: median,
            range: (rates[0], rates[rates.len() - 1]),
            passes: passes.iter().map(|p| p.number).collect(),
            bytes: passes.iter().map(|p| p.bytes).sum(),
            seconds: ticks as f64 / hz as f64,
        })
    }

    fn json(&self) -> Value {
        json!({
            "mb_per_s": round(self.mb_s, 2),
            "slowest_pass_mb_per_s": round(self.range.0, 2),
            "fastest_pass_mb_per_s": round(self.range.1, 2),
            "bytes": self.bytes,
            "seconds": round(self.seconds, 4),
            "passes": self.passes,
        })
    }
}

/// How much of `window` the passes cover (0..=1).
fn coverage(passes: &[Pass], window: (u64, u64)) -> f64 {
    let length = window.1.saturating_sub(window.0);
    if length == 0 {
        return 0.0;
    }
    let covered: u64 = passes
        .iter()
        .map(|p| p.until.min(window.1).saturating_sub(p.from.max(window.0)))
        .sum();
    covered as f64 / length as f64
}

/// Everything the runs measured.
#[derive(Debug, Default)]
struct Summary {
    icount: &'static str,
    hz: Option<u64>,
    alone: Option<Latency>,
    loaded: Option<Latency>,
    /// Share of the loaded measurement during which the IVI was writing.
    load_coverage: Option<f64>,
    /// The side-by-side run's passes on the mediated disk.
    mediated: Option<Throughput>,
    /// The loaded run's passes that overlap the cluster's measurement.
    mediated_during: Option<Throughput>,
    /// The side-by-side run's passes on the passed-through disk.
    direct: Option<Throughput>,
}

impl Summary {
    fn from_runs(icount: &'static str, results: &[RunResult<'_>]) -> Summary {
        let lines = |key: &str| lines_of(results, key);
        let hz = results
            .iter()
            .find_map(|r| captures(&r.outcome.lines, COUNTER_HZ))
            .map(|v| v[0]);
        let mut summary = Summary {
            icount,
            hz,
            alone: Latency::parse(lines("alone")),
            loaded: Latency::parse(lines("loaded")),
            ..Summary::default()
        };
        let hz = hz.unwrap_or(0);
        if let Some(loaded) = &summary.loaded {
            let during: Vec<Pass> = Pass::parse_all(lines("loaded"))
                .into_iter()
                .filter(|p| p.overlaps(loaded.window))
                .collect();
            summary.load_coverage = Some(coverage(&during, loaded.window));
            summary.mediated_during = Throughput::over(&during, hz);
        }
        let side_by_side = lines("side-by-side");
        summary.mediated = Throughput::over(&Pass::parse_to(side_by_side, MEDIATED_DISK), hz);
        summary.direct = Throughput::over(&Pass::parse_to(side_by_side, DIRECT_DISK), hz);
        summary
    }

    fn latency_ratio(&self) -> Option<(f64, f64)> {
        let (a, l) = (self.alone?, self.loaded?);
        Some((ratio(l.p50_us, a.p50_us)?, ratio(l.p99_us, a.p99_us)?))
    }

    fn throughput_ratio(&self) -> Option<f64> {
        let (m, d) = (self.mediated.as_ref()?, self.direct.as_ref()?);
        (d.mb_s > 0.0).then(|| m.mb_s / d.mb_s)
    }

    fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Mediated storage, QEMU -icount {} (virtual time)\n",
            self.icount
        );
        let _ = writeln!(
            t,
            "cluster one-sector request latency     p50 us   p99 us   max us     n"
        );
        for (label, latency) in [
            ("  alone (IVI idle)", &self.alone),
            ("  under IVI write load", &self.loaded),
        ] {
            match latency {
                Some(l) => {
                    let _ = writeln!(
                        t,
                        "{label:<38} {:>7} {:>8} {:>8} {:>5}",
                        l.p50_us, l.p99_us, l.max_us, l.n
                    );
                }
                None => {
                    let _ = writeln!(t, "{label:<38} {:>7}", "-");
                }
            }
        }
        match self.latency_ratio() {
            Some((p50, p99)) => {
                let _ = writeln!(
                    t,
                    "{:<38} {:>7} {:>8}",
                    "  under load / alone",
                    format!("x{p50:.2}"),
                    format!("x{p99:.2}")
                );
            }
            None => {
                let _ = writeln!(t, "{:<38} {:>7}", "  under load / alone", "-");
            }
        }
        if let Some(c) = self.load_coverage {
            let _ = writeln!(
                t,
                "  (the IVI was writing during {:.0}% of the loaded measurement)",
                c * 100.0
            );
        }
        let _ = writeln!(
            t,
            "\nIVI write throughput (O_DIRECT 1 MiB writes,\n32 MiB passes; the median pass)                 MB/s   pass range   passes"
        );
        let row = |t: &mut String, label: &str, v: &Option<Throughput>| match v {
            Some(v) => {
                let range = format!("{:.0}-{:.0}", v.range.0, v.range.1);
                let _ = writeln!(
                    t,
                    "{label:<44} {:>7.1}   {range:<10}   {:>6}",
                    v.mb_s,
                    v.passes.len()
                );
            }
            None => {
                let _ = writeln!(t, "{label:<44} {:>7}", "-");
            }
        };
        row(&mut t, "  mediated", &self.mediated);
        row(
            &mut t,
            "  passed through (same boot, passes in turn)",
            &self.direct,
        );
        match self.throughput_ratio() {
            Some(r) => {
                let _ = writeln!(t, "{:<44} {:>7.2}", "  mediated / passed through", r);
            }
            None => {
                let _ = writeln!(t, "{:<44} {:>7}", "  mediated / passed through", "-");
            }
        }
        row(
            &mut t,
            "  mediated, while the cluster measures",
            &self.mediated_during,
        );
        t
    }

    fn json(&self, results: &[RunResult<'_>]) -> Value {
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        json!({
            "icount": self.icount,
            "counter_hz": self.hz,
            "cluster_latency": {
                "alone": opt(self.alone.map(|l| l.json())),
                "loaded": opt(self.loaded.map(|l| l.json())),
                "loaded_over_alone": opt(self.latency_ratio().map(|(p50, p99)| json!({
                    "p50": round(p50, 3),
                    "p99": round(p99, 3),
                }))),
                "load_coverage": self.load_coverage.map(|c| round(c, 3)),
            },
            "ivi_write_throughput": {
                "mediated": opt(self.mediated.as_ref().map(Throughput::json)),
                "mediated_while_cluster_measures": opt(self.mediated_during.as_ref().map(Throughput::json)),
                "direct": opt(self.direct.as_ref().map(Throughput::json)),
                "mediated_over_direct": self.throughput_ratio().map(|r| round(r, 3)),
            },
            "runs": results.iter().map(|r| json!({
                "key": r.key,
                "name": r.scenario.name,
                "config": r.scenario.config,
                "part": match r.part {
                    Part::Storage => "storage",
                    Part::Display => "display",
                    Part::Touch => "touch",
                    Part::Audio => "audio",
                    Part::Traps => "traps",
                    Part::Boot => "boot",
                    Part::Cpu => "cpu",
                },
                "native": match r.boot {
                    Boot::Hypervisor => Value::Null,
                    Boot::Native { partition } => json!({ "partition": partition }),
                },
                "log": paths::display(&log_path(r.scenario)),
                "wall_seconds": round(r.wall.as_secs_f64(), 1),
                "ok": r.outcome.passed(),
                "failures": r.outcome.failures,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The capture groups of the first line matching `pattern`, as numbers.
fn captures(lines: &[String], pattern: &str) -> Option<Vec<u64>> {
    let re = Regex::new(pattern).ok()?;
    lines.iter().find_map(|l| {
        let c = re.captures(l)?;
        c.iter().skip(1).map(|m| m?.as_str().parse().ok()).collect()
    })
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn patterns_are_valid() {
        for p in [
            BLKLAT_RESULT,
            BLKLAT_DETAIL,
            BLKLAT_FROM,
            BLKLAT_UNTIL,
            BLKLAT_END,
            PASS,
            LOAD_FAILED,
            COUNTER_HZ,
        ] {
            Regex::new(p).unwrap();
        }
        assert_eq!(runs(ICOUNT).len(), 3);
    }

    #[test]
    fn parses_latency_and_passes() {
        let log = lines(
            "[hv] INFO  entered at counter 100 (0 ms at 1000 Hz)\n\
             [cluster] blklat: measuring from counter 5000\n\
             [ivi] ivi: blkload: wrote 1000 bytes in 2000 ms (pass 1, counter 1000 to 3000) to /dev/vda\n\
             [ivi] ivi: blkload: wrote 1000 bytes in 4000 ms (pass 2, counter 3000 to 7000) to /dev/vda\n\
             [cluster] blklat: measured until counter 6000\n\
             [cluster] blklat: n=200 p50_us=40 p99_us=90 max_us=120\n\
             [cluster] blklat: reads p50_us=30 p99_us=80 writes p50_us=50 p99_us=95\n\
             [cluster] blklat: done\n",
        );
        let l = Latency::parse(&log).unwrap();
        assert_eq!((l.n, l.p50_us, l.p99_us, l.max_us), (200, 40, 90, 120));
        assert_eq!((l.writes_p50_us, l.writes_p99_us), (50, 95));
        assert_eq!(l.window, (5000, 6000));
        let passes = Pass::parse_all(&log);
        assert_eq!(passes.len(), 2);
        assert_eq!(Pass::parse_to(&log, "/dev/vda"), passes);
        assert_eq!(Pass::parse_to(&log, "/dev/vd"), []);
        assert!(!passes[0].overlaps(l.window) && passes[1].overlaps(l.window));
        assert_eq!(coverage(&passes[1..], l.window), 1.0);
        assert_eq!(coverage(&passes[..1], l.window), 0.0);
        let t = Throughput::over(&passes[..1], 1000).unwrap();
        assert_eq!((t.bytes, t.seconds), (1000, 2.0));
        assert!((t.mb_s - 0.0005).abs() < 1e-12);
        // The median pass, not the total: one slow pass does not move it.
        let pass = |number, ms| Pass {
            bytes: 1000,
            number,
            from: 0,
            until: ms,
        };
        let t = Throughput::over(&[pass(1, 1000), pass(2, 8000), pass(3, 2000)], 1000).unwrap();
        assert!((t.mb_s - 0.0005).abs() < 1e-12);
        assert_eq!(t.range, (1000.0 / 8.0 / 1e6, 1000.0 / 1e6));
        let t = Throughput::over(&[pass(1, 1000), pass(2, 2000)], 1000).unwrap();
        assert!((t.mb_s - 0.00075).abs() < 1e-12);
        assert!(Throughput::over(&[], 1000).is_none());
        assert_eq!(captures(&log, COUNTER_HZ), Some(vec![1000]));
        assert!(Latency::parse(&log[..3]).is_none());
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let all = vec![
            Part::Storage,
            Part::Display,
            Part::Touch,
            Part::Audio,
            Part::Traps,
            Part::Boot,
            Part::Cpu,
        ];
        assert_eq!(args(&[]).unwrap(), (ICOUNT, all));
        assert_eq!(args(&["cpu"]).unwrap().1, [Part::Cpu]);
        assert_eq!(
            args(&["touch", "storage"]).unwrap().1,
            [Part::Touch, Part::Storage]
        );
        assert_eq!(
            args(&["display", "--icount", "shift=1"]).unwrap(),
            ("shift=1", vec![Part::Display])
        );
        assert_eq!(args(&["storage"]).unwrap().1, [Part::Storage]);
        assert_eq!(
            args(&["boot", "traps"]).unwrap().1,
            [Part::Boot, Part::Traps]
        );
        for bad in [
            &["--icount"][..],
            &["--icount", ""],
            &["graphics"],
            &["display", "display"],
            &["boot", "boot"],
            &["cpu", "cpu"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    /// A native run boots the partition's image with its bootargs on QEMU
    /// at EL1, a core per vCPU, with a virtio-gpu device per view.
    #[test]
    fn native_runs_boot_a_partition_of_the_config() {
        let text =
            std::fs::read_to_string(paths::root().join("config/qemu-virt/bench/display-ivi.toml"))
                .unwrap();
        let guest = NativeGuest::from_config(&text, "ivi").unwrap();
        assert_eq!(guest.image, paths::partitions_dir().join("gpu.img"));
        assert!(guest.bootargs.contains("gpu.full"), "{}", guest.bootargs);
        assert_eq!(guest.views, [(1280, 800)]);
        assert_eq!(guest.memory_mib, Some(16));
        assert_eq!(
            (&guest.initrd, &guest.disk, guest.touch, guest.audio),
            (&None, &None, None, false)
        );
        assert!(NativeGuest::from_config(&text, "cluster").is_err());
        let two = NativeGuest::from_config(
            "[[partition]]\nname = \"p\"\nimage = \"x/y.img\"\nviews = [\n\
             { display = \"a\", x = 0, y = 0, width = 8, height = 4 },\n\
             { display = \"b\", x = 0, y = 0, width = 2, height = 1 },\n]\n",
            "p",
        )
        .unwrap();
        assert_eq!(two.image, paths::root().join("x/y.img"));
        assert_eq!(
            (two.bootargs.as_str(), two.views.as_slice()),
            ("", &[(8, 4), (2, 1)][..])
        );
        assert_eq!(two.memory_mib, None);

        let board = Board::load("qemu-virt").unwrap();
        let changes = MachineChanges {
            icount: Some(ICOUNT),
            ..Default::default()
        };
        let text = two.command(&board, &changes).unwrap().text().to_string();
        assert!(text.contains(" -M virt,gic-version=3 "), "{text}");
        assert!(text.contains(" -smp 1 "), "{text}");
        assert!(text.contains(" -m 2G "), "the board's: {text}");
        assert!(text.contains(" -icount shift=0 "), "{text}");
        // View 0 on the lowest transport: the guest finds it first.
        assert!(
            text.contains("virtio-gpu-device,bus=virtio-mmio-bus.30,xres=8,yres=4,")
                && text.contains("virtio-gpu-device,bus=virtio-mmio-bus.31,xres=2,yres=1,"),
            "{text}"
        );
        assert!(!text.contains("-initrd"), "{text}");
        assert!(text.ends_with(" -append ''"), "{text}");
    }

    /// The default cockpit's partitions natively: Linux with its initrd,
    /// each with its RAM, its disk (the caller's blank one) on the first
    /// transport, its views below, its touch panel and sound device.
    #[test]
    fn native_runs_of_the_default_cockpit() {
        let text =
            std::fs::read_to_string(paths::root().join("config/qemu-virt/default.toml")).unwrap();
        let ivi = NativeGuest::from_config(&text, "ivi").unwrap();
        assert_eq!(ivi.image, paths::partitions_dir().join("ivi/Image"));
        assert_eq!(
            ivi.initrd,
            Some(paths::partitions_dir().join("ivi/initramfs.cpio.gz"))
        );
        assert_eq!((ivi.cpus, ivi.memory_mib), (2, Some(256)));
        assert_eq!(ivi.views, [(1280, 800), (800, 320)]);
        assert_eq!(
            (ivi.disk.as_deref(), ivi.touch, ivi.audio),
            (Some("ivi-data"), Some(0), true)
        );
        let cluster = NativeGuest::from_config(&text, "cluster").unwrap();
        assert_eq!(cluster.initrd, None);
        assert_eq!((cluster.cpus, cluster.memory_mib), (1, Some(16)));
        assert_eq!(cluster.views, [(1920, 720), (1280, 100)]);
        assert_eq!(
            (cluster.disk.as_deref(), cluster.touch, cluster.audio),
            (Some("cluster-odo"), Some(1), true)
        );

        let board = Board::load("qemu-virt").unwrap();
        let changes = MachineChanges {
            icount: Some(ICOUNT),
            disk: Some(PathBuf::from("/tmp/odo.img")),
            ..Default::default()
        };
        let text = cluster
            .command(&board, &changes)
            .unwrap()
            .text()
            .to_string();
        assert!(text.contains(" -smp 1 -m 16M "), "{text}");
        assert!(text.contains("file=/tmp/odo.img,format=raw"), "{text}");
        assert!(
            text.contains("virtio-gpu-device,bus=virtio-mmio-bus.29,xres=1920,yres=720,")
                && text.contains("virtio-gpu-device,bus=virtio-mmio-bus.30,xres=1280,yres=100,"),
            "{text}"
        );
        assert!(
            text.contains(
                "virtio-multitouch-device,bus=virtio-mmio-bus.28,display=display-native1,"
            ),
            "{text}"
        );
        assert!(
            text.contains(" -audiodev none,id=snd0,out.frequency=48000 ")
                && text.contains("virtio-sound-device,bus=virtio-mmio-bus.27,"),
            "{text}"
        );
        let text = ivi
            .command(
                &board,
                &MachineChanges {
                    icount: Some(ICOUNT),
                    ..Default::default()
                },
            )
            .unwrap()
            .text()
            .to_string();
        assert!(text.contains(" -smp 2 -m 256M "), "{text}");
        assert!(
            text.contains(&format!(
                " -initrd {} -append ",
                paths::partitions_dir()
                    .join("ivi/initramfs.cpio.gz")
                    .display()
            )),
            "{text}"
        );
        assert!(
            text.contains("virtio-gpu-device,bus=virtio-mmio-bus.30,xres=1280,yres=800,")
                && text.contains(
                    "virtio-multitouch-device,bus=virtio-mmio-bus.29,display=display-native0,"
                ),
            "{text}"
        );
    }
}
