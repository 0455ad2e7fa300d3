//! The touch half of `cargo xtask bench`: how long a touch on the shared
//! panel takes to reach the safety partition, under the same `-icount` as
//! the other runs. Two runs (`config/qemu-virt/bench/touch-*.toml`):
//!
//! - `touch-alone`: the cluster (`touch.latency`) owns a protected strip of
//!   the center display; the IVI reads its own touches and is otherwise
//!   idle;
//! - `touch-loaded`: the same while the IVI redraws its whole view of the
//!   center display as fast as it can (`gpu.full`), keeping busy both its
//!   core and the service core, which routes the panel and composes.
//!
//! The bench taps the cluster's strip through QMP, one tap after the
//! other: each contact's begin is sent once the previous one's lift has
//! reached the cluster, its end once its begin has. Every frame the
//! hypervisor routes carries `MSC_TIMESTAMP`, the counter's time (µs) at
//! which it took the panel's interrupt; the cluster's handler for its own
//! device's interrupt notes when the frame arrived. The latency is the
//! difference: routing, the copy into the partition's event ring, the
//! virtual interrupt and the guest's entry into its handler.
//!
//! Not in it: how long QEMU's panel takes to raise its interrupt (nothing
//! at the hypervisor's side can see that), and how long the interrupt
//! waits while the service core finishes the mediator work it is doing
//! (at most one budget-sized composition slice, an eighth of a refresh:
//! see docs/architecture.md).

use serde_json::{Value, json};

use super::{Boot, Part, Run, RunResult, captures, lines_of};
use crate::qmp::Mtt;
use crate::scenario::Scenario;

const ALONE: &str = "config/qemu-virt/bench/touch-alone.toml";
const LOADED: &str = "config/qemu-virt/bench/touch-loaded.toml";

/// Wall-clock limit of each run.
const RUN_TIMEOUT_S: u64 = 150;
/// Taps per run (two stamped frames each: the configs' `touch.latency`).
const TAPS: u32 = 30;
/// The center display, in pixels, and where the cluster's strip is.
const DISPLAY: (u32, u32) = (1280, 800);
const STRIP_Y: u32 = 750;

const RESULT: &str =
    r"^\[cluster\] touch: latency n=(\d+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+) min_us=(\d+)$";
const IVI_FRAME: &str = r"^\[ivi\] gpu: frame (\d+)$";
/// What no run may print.
const ERRORS: &str =
    r"touch: error|gpu: .*error|unexpected exception|panic on cpu|PANIC|FATAL|\[hv\] (WARN|ERROR)";

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let loaded = base("bench-touch-loaded", LOADED, icount)
        .expect_at_least(2, IVI_FRAME)
        .check("the IVI drew while the cluster measured", |lines| {
            let frames = |from: usize| crate::scenario::count(&lines[from..], IVI_FRAME);
            let first = lines
                .iter()
                .position(|l| l.contains("touch: frame 1: latency"));
            match first {
                Some(at) if frames(at) > 0 => Ok(()),
                Some(_) => Err("no IVI frame after the first measured touch".into()),
                None => Err("no measured touch".into()),
            }
        });
    let run = |key, scenario| Run {
        key,
        part: Part::Touch,
        scenario,
        boot: Boot::Hypervisor,
    };
    vec![
        run("touch-alone", base("bench-touch-alone", ALONE, icount)),
        run("touch-loaded", loaded),
    ]
}

/// A run of `config` under `-icount icount`: [`TAPS`] taps on the
/// cluster's strip, each sent when the previous frame has arrived.
fn base(name: &'static str, config: &'static str, icount: &'static str) -> Scenario {
    let at = |kind, tap: u32| {
        let x = 100 + tap * 30 % 1000;
        vec![Mtt::at(kind, 0, tap + 1, (x, STRIP_Y), DISPLAY)]
    };
    let mut s = Scenario::new(name, config)
        .icount(icount)
        .timeout(RUN_TIMEOUT_S)
        .expect(RESULT)
        .expect_none(ERRORS)
        .stop_on(RESULT)
        .touch_on(r"^\[cluster\] touch: device at ", "center", at("begin", 0));
    for tap in 0..TAPS {
        s = s.touch_on(
            r"^\[cluster\] touch: frame \d+: slot 0 down",
            "center",
            at("end", tap),
        );
        if tap + 1 < TAPS {
            s = s.touch_on(
                r"^\[cluster\] touch: frame \d+: slot 0 up",
                "center",
                at("begin", tap + 1),
            );
        }
    }
    s
}

/// A `touch.latency` result.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Latency {
    n: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    min_us: u64,
}

impl Latency {
    fn parse(lines: &[String]) -> Option<Latency> {
        let r = captures(lines, RESULT)?;
        Some(Latency {
            n: r[0],
            p50_us: r[1],
            p99_us: r[2],
            max_us: r[3],
            min_us: r[4],
        })
    }

    fn json(&self) -> Value {
        json!({
            "n": self.n,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
            "min_us": self.min_us,
        })
    }
}

/// Everything the touch runs measured.
#[derive(Debug, Default)]
pub(super) struct Summary {
    alone: Option<Latency>,
    loaded: Option<Latency>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        Summary {
            alone: Latency::parse(lines_of(results, "touch-alone")),
            loaded: Latency::parse(lines_of(results, "touch-loaded")),
        }
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut out = format!(
            "touch: the hypervisor taking the panel's interrupt to the cluster's handler (-icount {icount})\n"
        );
        out += &format!(
            "  {:<34} {:>6} {:>8} {:>8} {:>8} {:>8}\n",
            "", "frames", "p50 µs", "p99 µs", "max µs", "min µs"
        );
        for (label, l) in [
            ("alone", &self.alone),
            ("while the IVI redraws flat out", &self.loaded),
        ] {
            match l {
                Some(l) => {
                    out += &format!(
                        "  {:<34} {:>6} {:>8} {:>8} {:>8} {:>8}\n",
                        label, l.n, l.p50_us, l.p99_us, l.max_us, l.min_us
                    )
                }
                None => out += &format!("  {label:<34} (no result)\n"),
            }
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "alone": self.alone.map(|l| l.json()),
            "loaded": self.loaded.map(|l| l.json()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn patterns_are_valid() {
        for p in [RESULT, IVI_FRAME, ERRORS] {
            regex::Regex::new(p).unwrap();
        }
        assert_eq!(runs("shift=0").len(), 2);
    }

    #[test]
    fn parses_the_result() {
        let l = lines(
            "[cluster] touch: frame 1: latency 41 us\n\
             [cluster] touch: latency n=60 p50_us=40 p99_us=95 max_us=101 min_us=33",
        );
        assert_eq!(
            Latency::parse(&l),
            Some(Latency {
                n: 60,
                p50_us: 40,
                p99_us: 95,
                max_us: 101,
                min_us: 33
            })
        );
        let s = Summary {
            alone: Latency::parse(&l),
            loaded: None,
        };
        let table = s.table("shift=0");
        assert!(table.contains("alone"), "{table}");
        assert!(table.contains("(no result)"), "{table}");
        assert_eq!(s.json()["alone"]["p99_us"], 95);
    }
}
