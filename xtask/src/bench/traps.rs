//! The traps part of `cargo xtask bench`: what the hypervisor's own paths
//! cost a partition, against the same program on QEMU without the
//! hypervisor. Two runs of the testkit `trapbench` program
//! (`config/qemu-virt/bench/traps.toml`, one partition of two vCPUs alone
//! on the machine):
//!
//! - `traps`: under the hypervisor;
//! - `traps-native`: the same image booted directly on QEMU `virt` at EL1
//!   with two cores.
//!
//! Under `-icount shift=0` a nanosecond of counter time is one
//! instruction, so each figure counts the instructions of its path: a
//! null SMCCC call (HVC; natively QEMU's own firmware answers it), a read
//! of the console PL011's flag register (emulated by the console mediator;
//! natively QEMU's device), the virtual timer's expiry to the guest's
//! handler, and an SGI from one vCPU to the other's handler.

use serde_json::{Value, json};

use super::{Boot, Part, Run, RunResult, lines_of};
use crate::scenario::Scenario;

const CONFIG: &str = "config/qemu-virt/bench/traps.toml";
/// Wall-clock limit of each run (each takes a few seconds).
const RUN_TIMEOUT_S: u64 = 120;

/// One measurement line (after the partition's tag, if any).
const LINE: &str = r"trapbench: (\w+) n=(\d+) mean_ns=(\d+) p50_ns=(\d+)$";
/// What no run may print.
const ERRORS: &str = r"trapbench: (needs|no |cpu1)|unexpected exception|panic on cpu|PANIC|FATAL|\[hv\] (WARN|ERROR)";

/// The paths measured, in the program's order, with what they are.
const PATHS: [(&str, &str); 5] = [
    ("load", "load from memory (no trap)"),
    ("hvc", "null HVC (SMCCC_VERSION)"),
    ("mmio", "PL011 flag register read"),
    ("vtimer", "virtual timer expiry to handler"),
    ("sgi", "SGI to the other vCPU's handler"),
];

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let run = |key, name, boot, tag: Option<&str>| {
        let done = match tag {
            Some(tag) => format!(r"^\[{tag}\] trapbench: done$"),
            None => "^trapbench: done$".to_string(),
        };
        Run {
            key,
            part: Part::Traps,
            scenario: Scenario::new(name, CONFIG)
                .icount(icount)
                .timeout(RUN_TIMEOUT_S)
                .expect(&done)
                .expect_none(ERRORS)
                .stop_on(&done),
            boot,
        }
    };
    vec![
        run("traps", "bench-traps", Boot::Hypervisor, Some("bench")),
        run(
            "traps-native",
            "bench-traps-native",
            Boot::Native { partition: "bench" },
            None,
        ),
    ]
}

/// One path's figures (ns of counter time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figure {
    n: u64,
    mean_ns: u64,
    p50_ns: u64,
}

/// The figure of `path` in a run's lines.
fn figure(lines: &[String], path: &str) -> Option<Figure> {
    let re = regex::Regex::new(LINE).expect("valid pattern");
    lines.iter().find_map(|l| {
        let c = re.captures(l)?;
        if &c[1] != path {
            return None;
        }
        let num = |i: usize| c[i].parse::<u64>().ok();
        Some(Figure {
            n: num(2)?,
            mean_ns: num(3)?,
            p50_ns: num(4)?,
        })
    })
}

/// Everything the traps runs measured: per path, under the hypervisor and
/// native.
#[derive(Debug, Default)]
pub(super) struct Summary {
    paths: Vec<(&'static str, Option<Figure>, Option<Figure>)>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        let (hv, native) = (
            lines_of(results, "traps"),
            lines_of(results, "traps-native"),
        );
        Summary {
            paths: PATHS
                .iter()
                .map(|&(path, _)| (path, figure(hv, path), figure(native, path)))
                .collect(),
        }
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut out = format!(
            "traps: a partition's paths through the hypervisor, p50 ns of counter time \
             (-icount {icount}: instructions)\n"
        );
        out += &format!(
            "  {:<36} {:>12} {:>8} {:>10}\n",
            "", "hypervisor", "native", "added"
        );
        for (path, hv, native) in &self.paths {
            let label = PATHS
                .iter()
                .find(|(p, _)| p == path)
                .map_or(*path, |(_, what)| what);
            let cell = |f: &Option<Figure>| f.map_or("-".to_string(), |f| f.p50_ns.to_string());
            let added = match (hv, native) {
                (Some(h), Some(n)) => (h.p50_ns as i64 - n.p50_ns as i64).to_string(),
                _ => "-".to_string(),
            };
            out += &format!(
                "  {:<36} {:>12} {:>8} {:>10}\n",
                label,
                cell(hv),
                cell(native),
                added
            );
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        let figure = |f: &Option<Figure>| {
            f.map(|f| json!({ "n": f.n, "mean_ns": f.mean_ns, "p50_ns": f.p50_ns }))
        };
        let mut out = serde_json::Map::new();
        for (path, hv, native) in &self.paths {
            out.insert(
                (*path).to_string(),
                json!({ "hypervisor": figure(hv), "native": figure(native) }),
            );
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn patterns_are_valid() {
        for p in [LINE, ERRORS] {
            regex::Regex::new(p).unwrap();
        }
        assert_eq!(runs("shift=0").len(), 2);
    }

    #[test]
    fn reads_both_runs_lines() {
        let hv = lines(
            "[bench] trapbench: hvc n=20000 mean_ns=588 p50_ns=588\n\
             [bench] trapbench: sgi n=500 mean_ns=2140 p50_ns=2144\n",
        );
        let native = lines("trapbench: hvc n=20000 mean_ns=14 p50_ns=14\n");
        assert_eq!(
            figure(&hv, "hvc"),
            Some(Figure {
                n: 20000,
                mean_ns: 588,
                p50_ns: 588
            })
        );
        assert_eq!(figure(&hv, "sgi").map(|f| f.p50_ns), Some(2144));
        assert_eq!(figure(&native, "hvc").map(|f| f.p50_ns), Some(14));
        assert_eq!(figure(&native, "sgi"), None);
        let summary = Summary {
            paths: vec![
                ("hvc", figure(&hv, "hvc"), figure(&native, "hvc")),
                ("sgi", figure(&hv, "sgi"), None),
            ],
        };
        let table = summary.table("shift=0");
        assert!(table.contains("null HVC (SMCCC_VERSION)"), "{table}");
        assert!(table.contains("588") && table.contains("574"), "{table}");
        assert_eq!(summary.json()["hvc"]["native"]["p50_ns"], 14);
        assert_eq!(summary.json()["sgi"]["native"], Value::Null);
    }
}
