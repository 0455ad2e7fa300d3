//! The display half of `cargo xtask bench`: the display mediator measured
//! from the partitions' side, with the `gpu` test program (its `gpu.lat`
//! and `gpu.rate` measurements), under the same `-icount` as the storage
//! runs. Four runs, none with a disk:
//!
//! - `display-alone` (`display-alone.toml`): the cluster (1920x720, the
//!   whole instrument display) draws a frame counter at 60 fps and times
//!   each fenced RESOURCE_FLUSH until its answer, which the hypervisor
//!   gives when a frame started after it is on the physical display; the
//!   IVI has its views (800x320 in a window of the instrument display,
//!   below the cluster's layer, and the whole 1280x800 center display),
//!   draws its first frame and sleeps;
//! - `display-loaded` (`display-loaded.toml`): the same while the IVI
//!   redraws both its whole views as fast as it can (`gpu.full`);
//! - `display-ivi` (`display-ivi.toml`): the IVI alone with one 1280x800
//!   view, drawing whole-view frames as fast as it can: its frame rate and
//!   the flush-to-screen latency of those frames;
//! - `display-native`: the same image with the same bootargs booted
//!   directly on QEMU with a 1280x800 virtio-gpu device of its own: the
//!   baseline for the frame rate.
//!
//! The compositor's cost comes from the hypervisor's line for each
//! display's first frame (the whole display, composed at its first
//! refresh, before the partitions have drawn: their views blank); the
//! `display-ivi` run's whole-view flush latency bounds the cost of
//! composing real pixels from above (it also holds the wait for the next
//! refresh and the physical frame). The hypervisor does not report its
//! composition time over many frames.
//!
//! Under `-icount` every core runs in turn on one host thread, so what one
//! core does takes virtual time from the others: the IVI's redrawing (its
//! transfers are copied on its own core) and the compositor's work for it
//! take time from the cluster's frames (the testkit driver sleeps between
//! looks at its ring, so a partition waiting for its flush's answer takes
//! little).

use std::fmt::Write as _;

use regex::Regex;
use serde_json::{Value, json};

use super::{Boot, COUNTER_HZ, Part, Run, RunResult, captures, lines_of, ratio, round};
use crate::scenario::Scenario;

const ALONE: &str = "config/qemu-virt/bench/display-alone.toml";
const LOADED: &str = "config/qemu-virt/bench/display-loaded.toml";
const IVI: &str = "config/qemu-virt/bench/display-ivi.toml";

/// Wall-clock limit of each run (each takes well under a minute).
const RUN_TIMEOUT_S: u64 = 150;
/// Megapixels of the IVI's view in `display-ivi.toml` (1280x800).
const WHOLE_VIEW_MPX: f64 = 1.024;

/// The `gpu` program's lines (after the partition's tag, if any).
const FROM: &str = r"gpu: measuring from frame (\d+) at counter (\d+)$";
const UNTIL: &str = r"gpu: measured until frame (\d+) at counter (\d+)$";
const LATENCY: &str =
    r"gpu: flush latency n=(\d+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+) missed=(\d+)$";
const LATENCY_DETAIL: &str = r"gpu: flush latency min_us=(\d+) mean_us=(\d+) period_us=(\d+)$";
const RATE: &str = r"gpu: rate frames=(\d+) us=(\d+) fps=\d+\.\d\d$";
const FRAME: &str = r"gpu: frame (\d+)$";
/// What no run may print: the `gpu` program's errors, crashes, the
/// hypervisor's errors (a failed signature check among them).
const ERRORS: &str =
    r"gpu: .*error|unexpected exception|panic on cpu|PANIC|FATAL|\[hv\] ERROR|shows signature";
const FIRST_FRAME: &str =
    r"^\[hv\] INFO  display (\S+): first frame \((\d+)x(\d+)\) composed in (\d+) ms$";

/// `line` (one of the `gpu` patterns above) as partition `who` prints it
/// under the hypervisor (`[who] gpu: ...`), or as the program prints it
/// when booted natively (`who` = `None`).
fn from(who: Option<&str>, line: &str) -> String {
    match who {
        Some(who) => format!(r"^\[{who}\] {line}"),
        None => format!("^{line}"),
    }
}

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let cluster = Some("cluster");
    // The detail line is the last of the result.
    let (result, frame) = (from(cluster, LATENCY_DETAIL), from(Some("ivi"), FRAME));
    let loaded = latency(base("bench-display-loaded", LOADED, icount), cluster)
        .expect(&frame)
        .check(
            "the IVI drew during the cluster's measurement",
            |lines| match ivi_frames_during(lines) {
                Some((0, _)) => {
                    Err("no IVI frame between the cluster's first and last timed flush".into())
                }
                Some(_) => Ok(()),
                None => Err("no measurement window".into()),
            },
        )
        .stop_when(
            "the cluster's result and an IVI frame after it",
            move |lines| {
                crate::scenario::after(lines, &result)
                    .is_some_and(|rest| crate::scenario::count(rest, &frame) > 0)
            },
        );
    let run = |key, scenario, boot| Run {
        key,
        part: Part::Display,
        scenario,
        boot,
    };
    vec![
        run(
            "display-alone",
            latency(base("bench-display-alone", ALONE, icount), cluster)
                .stop_on(&from(cluster, LATENCY_DETAIL)),
            Boot::Hypervisor,
        ),
        run("display-loaded", loaded, Boot::Hypervisor),
        run(
            "display-ivi",
            rate(base("bench-display-ivi", IVI, icount), Some("ivi")),
            Boot::Hypervisor,
        ),
        run(
            "display-native",
            rate(base("bench-display-native", IVI, icount), None),
            Boot::Native { partition: "ivi" },
        ),
    ]
}

/// A run of `config` (or of a partition of it) under `-icount icount`.
fn base(name: &'static str, config: &'static str, icount: &'static str) -> Scenario {
    Scenario::new(name, config)
        .icount(icount)
        .timeout(RUN_TIMEOUT_S)
        .expect_none(ERRORS)
}

/// `who`'s `gpu.lat` measurement completed.
fn latency(s: Scenario, who: Option<&str>) -> Scenario {
    s.expect(&from(who, FROM))
        .expect(&from(who, UNTIL))
        .expect(&from(who, LATENCY))
        .expect(&from(who, LATENCY_DETAIL))
}

/// `who`'s `gpu.rate` and `gpu.lat` measurements completed; it stops then.
fn rate(s: Scenario, who: Option<&str>) -> Scenario {
    let (rate, detail) = (from(who, RATE), from(who, LATENCY_DETAIL));
    latency(s, who)
        .expect(&rate)
        .stop_when_all(&[rate.as_str(), detail.as_str()])
}

/// A `gpu.lat` result.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FlushLatency {
    n: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    /// Flushes longer than one refresh period.
    missed: u64,
    min_us: u64,
    mean_us: u64,
    period_us: u64,
    /// Counter values at the start and end of the measurement.
    window: (u64, u64),
}

impl FlushLatency {
    fn parse(lines: &[String], who: Option<&str>) -> Option<FlushLatency> {
        let r = captures(lines, &from(who, LATENCY))?;
        let d = captures(lines, &from(who, LATENCY_DETAIL))?;
        let start = captures(lines, &from(who, FROM))?;
        let end = captures(lines, &from(who, UNTIL))?;
        Some(FlushLatency {
            n: r[0],
            p50_us: r[1],
            p99_us: r[2],
            max_us: r[3],
            missed: r[4],
            min_us: d[0],
            mean_us: d[1],
            period_us: d[2],
            window: (start[1], end[1]),
        })
    }

    fn json(&self) -> Value {
        json!({
            "n": self.n,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
            "missed": self.missed,
            "min_us": self.min_us,
            "mean_us": self.mean_us,
            "refresh_period_us": self.period_us,
            "window_counter": [self.window.0, self.window.1],
        })
    }
}

/// A `gpu.rate` result.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rate {
    frames: u64,
    us: u64,
}

impl Rate {
    fn parse(lines: &[String], who: Option<&str>) -> Option<Rate> {
        let r = captures(lines, &from(who, RATE))?;
        Some(Rate {
            frames: r[0],
            us: r[1],
        })
    }

    /// Frames per second of counter time.
    fn fps(&self) -> f64 {
        self.frames as f64 * 1e6 / self.us.max(1) as f64
    }

    fn json(&self) -> Value {
        json!({
            "fps": round(self.fps(), 2),
            "frames": self.frames,
            "us": self.us,
        })
    }
}

/// The hypervisor's line for a display's first frame.
#[derive(Clone, Debug, PartialEq)]
struct FirstFrame {
    display: String,
    width: u64,
    height: u64,
    ms: u64,
}

impl FirstFrame {
    fn parse_all(lines: &[String]) -> Vec<FirstFrame> {
        let re = Regex::new(FIRST_FRAME).expect("checked by the tests");
        lines
            .iter()
            .filter_map(|l| {
                let c = re.captures(l)?;
                let n = |i: usize| c[i].parse::<u64>().ok();
                Some(FirstFrame {
                    display: c[1].to_string(),
                    width: n(2)?,
                    height: n(3)?,
                    ms: n(4)?,
                })
            })
            .collect()
    }

    fn megapixels(&self) -> f64 {
        (self.width * self.height) as f64 / 1e6
    }

    /// Milliseconds per million pixels.
    fn ms_per_mpx(&self) -> f64 {
        self.ms as f64 / self.megapixels()
    }
}

/// In a `display-loaded` console: how many frames the IVI reported
/// between the cluster's `measuring from` and `measured until` lines, and
/// the counter ticks between them.
fn ivi_frames_during(lines: &[String]) -> Option<(u64, u64)> {
    let (start, end) = (
        Regex::new(&from(Some("cluster"), FROM)).ok()?,
        Regex::new(&from(Some("cluster"), UNTIL)).ok()?,
    );
    let first = lines.iter().position(|l| start.is_match(l))?;
    let last = first + lines[first..].iter().position(|l| end.is_match(l))?;
    let frames = crate::scenario::count(&lines[first..last], &from(Some("ivi"), FRAME));
    let window = FlushLatency::parse(lines, Some("cluster"))?.window;
    Some((frames as u64, window.1.saturating_sub(window.0)))
}

/// Everything the display runs measured.
#[derive(Debug, Default)]
pub(super) struct Summary {
    alone: Option<FlushLatency>,
    loaded: Option<FlushLatency>,
    /// IVI frames during the loaded measurement, and their rate (fps).
    load: Option<(u64, Option<f64>)>,
    /// Every display's first frame, by run key.
    first_frames: Vec<(&'static str, FirstFrame)>,
    /// The IVI's whole-view frames, mediated and native.
    mediated: Option<Rate>,
    native: Option<Rate>,
    mediated_latency: Option<FlushLatency>,
    native_latency: Option<FlushLatency>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        let lines = |key: &str| lines_of(results, key);
        let cluster = Some("cluster");
        let hz = captures(lines("display-loaded"), COUNTER_HZ).map(|v| v[0]);
        let load = ivi_frames_during(lines("display-loaded")).map(|(frames, ticks)| {
            let fps = hz
                .filter(|&hz| hz > 0 && ticks > 0)
                .map(|hz| frames as f64 / (ticks as f64 / hz as f64));
            (frames, fps)
        });
        Summary {
            alone: FlushLatency::parse(lines("display-alone"), cluster),
            loaded: FlushLatency::parse(lines("display-loaded"), cluster),
            load,
            first_frames: results
                .iter()
                .filter(|r| r.boot == Boot::Hypervisor && r.key.starts_with("display"))
                .flat_map(|r| {
                    FirstFrame::parse_all(&r.outcome.lines)
                        .into_iter()
                        .map(|f| (r.key, f))
                })
                .collect(),
            mediated: Rate::parse(lines("display-ivi"), Some("ivi")),
            native: Rate::parse(lines("display-native"), None),
            mediated_latency: FlushLatency::parse(lines("display-ivi"), Some("ivi")),
            native_latency: FlushLatency::parse(lines("display-native"), None),
        }
    }

    fn latency_ratio(&self) -> Option<(f64, f64)> {
        let (a, l) = (self.alone?, self.loaded?);
        Some((ratio(l.p50_us, a.p50_us)?, ratio(l.p99_us, a.p99_us)?))
    }

    fn rate_ratio(&self) -> Option<f64> {
        let (m, n) = (self.mediated?, self.native?);
        (n.fps() > 0.0).then(|| m.fps() / n.fps())
    }

    /// The first frames shown in the table: per display, the quickest over
    /// the runs (the one the other cores disturbed least: under `-icount`
    /// their instructions while it was composed count too).
    fn shown_first_frames(&self) -> Vec<&FirstFrame> {
        let mut shown: Vec<&FirstFrame> = Vec::new();
        for (_, f) in &self.first_frames {
            match shown.iter_mut().find(|s| s.display == f.display) {
                Some(s) if f.ms < s.ms => *s = f,
                Some(_) => {}
                None => shown.push(f),
            }
        }
        shown
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "Mediated displays, QEMU -icount {icount} (virtual time)\n"
        );
        let _ = writeln!(
            t,
            "cluster flush-to-screen latency (1920x720)  p50 us   p99 us   max us  missed     n"
        );
        for (label, latency) in [
            ("  alone (IVI idle)", &self.alone),
            ("  IVI redrawing both views flat out", &self.loaded),
        ] {
            match latency {
                Some(l) => {
                    let _ = writeln!(
                        t,
                        "{label:<43} {:>7} {:>8} {:>8} {:>7} {:>5}",
                        l.p50_us, l.p99_us, l.max_us, l.missed, l.n
                    );
                }
                None => {
                    let _ = writeln!(t, "{label:<43} {:>7}", "-");
                }
            }
        }
        let ratio = self.latency_ratio();
        let _ = writeln!(
            t,
            "{:<43} {:>7} {:>8}",
            "  under load / alone",
            ratio.map_or("-".into(), |(p50, _)| format!("x{p50:.2}")),
            ratio.map_or("-".into(), |(_, p99)| format!("x{p99:.2}")),
        );
        if let Some(l) = self.alone.or(self.loaded) {
            let _ = writeln!(
                t,
                "  (missed: flushes longer than one refresh period, {} us)",
                l.period_us
            );
        }
        if let Some((frames, fps)) = self.load {
            let fps = fps.map_or(String::new(), |f| format!(", {f:.1} fps"));
            let _ = writeln!(
                t,
                "  (the IVI drew {frames} frames{fps} during the loaded measurement)"
            );
        }

        let _ = writeln!(
            t,
            "\ncompositor                                                ms   ms/Mpx"
        );
        let shown = self.shown_first_frames();
        if shown.is_empty() {
            let _ = writeln!(t, "{:<54} {:>5}", "  first frame of a display", "-");
        }
        for f in shown {
            let label = format!("  first frame, {} {}x{}", f.display, f.width, f.height);
            let _ = writeln!(t, "{label:<54} {:>5} {:>8.1}", f.ms, f.ms_per_mpx());
        }
        let _ = writeln!(
            t,
            "  (the whole display, its views still blank; the quickest of the runs)"
        );
        let label = "  IVI whole-view frame to screen (1280x800), best";
        match self.mediated_latency {
            Some(l) => {
                let _ = writeln!(
                    t,
                    "{label:<54} {:>5} {:>8}",
                    l.min_us / 1000,
                    format!("<={:.1}", l.min_us as f64 / 1000.0 / WHOLE_VIEW_MPX)
                );
            }
            None => {
                let _ = writeln!(t, "{label:<54} {:>5}", "-");
            }
        }
        let _ = writeln!(
            t,
            "  (an upper bound: composing it, plus the wait for a refresh and the physical frame)"
        );

        let _ = writeln!(
            t,
            "\nIVI whole-view frames (1280x800)           fps   flush p50 us   frames"
        );
        for (label, rate, latency) in [
            ("  mediated", &self.mediated, &self.mediated_latency),
            (
                "  native (QEMU's own virtio-gpu)",
                &self.native,
                &self.native_latency,
            ),
        ] {
            match rate {
                Some(r) => {
                    let p50 = latency.map_or("-".into(), |l| l.p50_us.to_string());
                    let _ = writeln!(
                        t,
                        "{label:<38} {:>9.1} {:>14} {:>8}",
                        r.fps(),
                        p50,
                        r.frames
                    );
                }
                None => {
                    let _ = writeln!(t, "{label:<38} {:>9}", "-");
                }
            }
        }
        let _ = writeln!(
            t,
            "{:<38} {:>9}",
            "  mediated / native",
            self.rate_ratio().map_or("-".into(), |r| format!("{r:.3}"))
        );
        t
    }

    pub(super) fn json(&self) -> Value {
        let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
        json!({
            "cluster_flush_latency": {
                "alone": opt(self.alone.map(|l| l.json())),
                "loaded": opt(self.loaded.map(|l| l.json())),
                "loaded_over_alone": opt(self.latency_ratio().map(|(p50, p99)| json!({
                    "p50": round(p50, 3),
                    "p99": round(p99, 3),
                }))),
                "ivi_frames_during_loaded": self.load.map(|(frames, _)| frames),
                "ivi_fps_during_loaded": self.load.and_then(|(_, fps)| fps).map(|f| round(f, 2)),
            },
            "compositor_first_frame": self.first_frames.iter().map(|(run, f)| json!({
                "run": run,
                "display": f.display,
                "width": f.width,
                "height": f.height,
                "ms": f.ms,
                "ms_per_mpx": round(f.ms_per_mpx(), 2),
            })).collect::<Vec<_>>(),
            "ivi_whole_view_frames": {
                "mediated": opt(self.mediated.map(|r| r.json())),
                "native": opt(self.native.map(|r| r.json())),
                "mediated_over_native": self.rate_ratio().map(|r| round(r, 4)),
                "mediated_flush_latency": opt(self.mediated_latency.map(|l| l.json())),
                "native_flush_latency": opt(self.native_latency.map(|l| l.json())),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::ICOUNT;
    use crate::scenario::console_lines as lines;

    #[test]
    fn patterns_are_valid() {
        for p in [FROM, UNTIL, LATENCY, LATENCY_DETAIL, RATE, FRAME] {
            Regex::new(&from(Some("cluster"), p)).unwrap();
            Regex::new(&from(None, p)).unwrap();
        }
        Regex::new(ERRORS).unwrap();
        Regex::new(FIRST_FRAME).unwrap();
        let runs = runs(ICOUNT);
        assert_eq!(runs.len(), 4);
        assert!(runs.iter().all(|r| r.part == Part::Display));
        assert_eq!(
            runs.iter().filter(|r| r.boot != Boot::Hypervisor).count(),
            1
        );
    }

    const LOADED_LOG: &str = "\
[hv] INFO  entered at counter 100 (0 ms at 1000000 Hz)
[hv] INFO  display instrument: first frame (1920x720) composed in 276 ms
[hv] INFO  display center: first frame (1280x800) composed in 205 ms
[ivi] gpu: frame 1
[cluster] gpu: measuring from frame 31 at counter 2000000
[ivi] gpu: frame 2
[ivi] gpu: frame 3
[cluster] gpu: frame 60
[ivi] gpu: frame 4
[cluster] gpu: measured until frame 330 at counter 7000000
[cluster] gpu: flush latency n=300 p50_us=9000 p99_us=25000 max_us=31000 missed=12
[cluster] gpu: flush latency min_us=800 mean_us=9500 period_us=16667
[ivi] gpu: frame 5
";

    #[test]
    fn parses_the_cluster_latency_and_the_load() {
        let log = lines(LOADED_LOG);
        let l = FlushLatency::parse(&log, Some("cluster")).unwrap();
        assert_eq!(
            (l.n, l.p50_us, l.p99_us, l.max_us, l.missed),
            (300, 9000, 25000, 31000, 12)
        );
        assert_eq!((l.min_us, l.mean_us, l.period_us), (800, 9500, 16667));
        assert_eq!(l.window, (2_000_000, 7_000_000));
        assert!(FlushLatency::parse(&log, Some("ivi")).is_none());
        assert!(FlushLatency::parse(&log[..11], Some("cluster")).is_none());
        // Frames 2, 3 and 4 in 5 s of counter time.
        assert_eq!(ivi_frames_during(&log), Some((3, 5_000_000)));

        let frames = FirstFrame::parse_all(&log);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[1],
            FirstFrame {
                display: "center".into(),
                width: 1280,
                height: 800,
                ms: 205
            }
        );
        assert!((frames[1].ms_per_mpx() - 205.0 / 1.024).abs() < 1e-9);
    }

    #[test]
    fn parses_rates_tagged_or_native() {
        let mediated = lines(
            "[ivi] gpu: measuring from frame 6 at counter 10\n\
             [ivi] gpu: rate frames=60 us=12000000 fps=5.00\n",
        );
        let native = lines("gpu: rate frames=60 us=600000 fps=100.00\nqemu-stderr: x\n");
        let m = Rate::parse(&mediated, Some("ivi")).unwrap();
        assert_eq!((m.frames, m.us), (60, 12_000_000));
        assert!((m.fps() - 5.0).abs() < 1e-9);
        assert!(Rate::parse(&mediated, None).is_none());
        assert!(Rate::parse(&native, Some("ivi")).is_none());
        let n = Rate::parse(&native, None).unwrap();
        assert!((n.fps() - 100.0).abs() < 1e-9);
        let s = Summary {
            mediated: Some(m),
            native: Some(n),
            ..Summary::default()
        };
        assert!((s.rate_ratio().unwrap() - 0.05).abs() < 1e-9);
    }

    #[test]
    fn table_and_json_show_what_ran() {
        let log = lines(LOADED_LOG);
        let latency = FlushLatency::parse(&log, Some("cluster"));
        let summary = Summary {
            alone: latency.map(|l| FlushLatency {
                p50_us: 4500,
                p99_us: 5000,
                ..l
            }),
            loaded: latency,
            load: Some((3, Some(0.6))),
            first_frames: FirstFrame::parse_all(&log)
                .into_iter()
                .map(|f| ("display-loaded", f))
                .collect(),
            ..Summary::default()
        };
        assert_eq!(summary.latency_ratio(), Some((2.0, 5.0)));
        let table = summary.table(ICOUNT);
        assert!(table.contains("x2.00"), "{table}");
        assert!(
            table.contains("  first frame, instrument 1920x720"),
            "{table}"
        );
        assert!(table.contains("the IVI drew 3 frames, 0.6 fps"), "{table}");
        let json = summary.json();
        assert_eq!(json["cluster_flush_latency"]["loaded"]["p99_us"], 25000);
        assert_eq!(json["compositor_first_frame"][0]["ms"], 276);
        assert_eq!(json["ivi_whole_view_frames"]["mediated"], Value::Null);
        // Nothing ran: dashes, not a panic.
        assert!(Summary::default().table(ICOUNT).contains(" -"));
    }
}
