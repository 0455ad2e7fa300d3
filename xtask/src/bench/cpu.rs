//! The cpu part of `cargo xtask bench`: what the hypervisor costs a
//! partition that only computes, against the same program on QEMU without
//! the hypervisor. Two runs of the testkit `cpubench` program
//! (`config/qemu-virt/bench/cpu.toml`, one partition of one vCPU alone on
//! the machine):
//!
//! - `cpu`: under the hypervisor;
//! - `cpu-native`: the same image booted directly on QEMU `virt` at EL1
//!   with one core.
//!
//! The program times three kernels on the counter: `integer` (arithmetic
//! in registers), `memory` (a random walk over 8 MiB counting visits in a
//! 1 MiB table, then streaming passes: loads and stores all over the
//! partition's memory, through stage-2 translation under the hypervisor)
//! and `branchy` (quicksorts of pseudo-random numbers). Each prints its
//! ticks and a checksum of its result; the checksums of the two runs must
//! be equal (a mismatch fails the bench), the times are only reported.
//!
//! Under `-icount shift=0` a nanosecond of counter time is one
//! instruction, and QEMU runs every core on one host thread, so the
//! counter advances with the instructions of every core: whatever the
//! hypervisor does while a kernel runs, on the partition's core (traps,
//! interrupts taken at EL2) or on any other (its service core writing the
//! console out, timer interrupts), counts toward the kernel's ticks. That
//! is the overhead reported. What the emulation spends on the host (QEMU
//! walking stage-2 tables on its TLB misses) is no instruction and does
//! not count: it shows in the runs' wall-clock times only. The program
//! sleeps before each kernel so that queued console output is written out
//! before the measurement, not during it.
//!
//! The hypervisor has no periodic tick, and a partition that neither
//! traps nor sleeps leaves it idle, so the two runs' ticks are expected to
//! agree to within a tick or so: QEMU `virt`'s counter runs at 62.5 MHz,
//! 16 instructions a tick, and where in a tick a kernel starts differs.

use serde_json::{Value, json};

use super::{Boot, Part, Run, RunResult, lines_of, round};
use crate::scenario::Scenario;

const CONFIG: &str = "config/qemu-virt/bench/cpu.toml";
/// Wall-clock limit of each run (each takes well under a minute).
const RUN_TIMEOUT_S: u64 = 300;

/// One kernel's line (after the partition's tag, if any).
const LINE: &str = r"cpubench: (\w+) ticks=(\d+) hz=(\d+) checksum=0x([0-9a-f]+)$";
/// What no run may print.
const ERRORS: &str = r"unexpected exception|panic on cpu|PANIC|FATAL|\[hv\] (WARN|ERROR)";

/// The kernels, in the program's order, with what they are.
const KERNELS: [(&str, &str); 3] = [
    ("integer", "integer: arithmetic in registers"),
    ("memory", "memory: 9 MiB walk and streams"),
    ("branchy", "branchy: quicksorts of random data"),
];

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let run = |key, name, boot, tag: Option<&str>| {
        let prefix = match tag {
            Some(tag) => format!(r"^\[{tag}\] "),
            None => "^".to_string(),
        };
        let done = format!("{prefix}cpubench: done$");
        let scenario = KERNELS.iter().fold(
            Scenario::new(name, CONFIG)
                .icount(icount)
                .timeout(RUN_TIMEOUT_S),
            |s, (kernel, _)| s.expect(&format!("{prefix}cpubench: {kernel} ticks=")),
        );
        Run {
            key,
            part: Part::Cpu,
            scenario: scenario.expect(&done).expect_none(ERRORS).stop_on(&done),
            boot,
        }
    };
    vec![
        run("cpu", "bench-cpu", Boot::Hypervisor, Some("bench")),
        run(
            "cpu-native",
            "bench-cpu-native",
            Boot::Native { partition: "bench" },
            None,
        ),
    ]
}

/// One kernel's result in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figure {
    /// Counter ticks from its start to its end.
    ticks: u64,
    /// The counter's frequency.
    hz: u64,
    checksum: u64,
}

impl Figure {
    /// Its time, in ms of counter time.
    fn ms(&self) -> f64 {
        self.ticks as f64 * 1000.0 / self.hz as f64
    }

    fn json(&self) -> Value {
        json!({
            "ticks": self.ticks,
            "hz": self.hz,
            "ms": round(self.ms(), 3),
            "checksum": format!("{:#x}", self.checksum),
        })
    }
}

/// The figure of `kernel` in a run's lines.
fn figure(lines: &[String], kernel: &str) -> Option<Figure> {
    let re = regex::Regex::new(LINE).expect("valid pattern");
    lines.iter().find_map(|l| {
        let c = re.captures(l)?;
        if &c[1] != kernel {
            return None;
        }
        let hz = c[3].parse::<u64>().ok().filter(|&hz| hz > 0)?;
        Some(Figure {
            ticks: c[2].parse().ok()?,
            hz,
            checksum: u64::from_str_radix(&c[4], 16).ok()?,
        })
    })
}

/// How much longer the partition took than native, in % of native (by
/// time, so runs whose counters differ in frequency still compare).
fn overhead_percent(partition: &Figure, native: &Figure) -> Option<f64> {
    let native_ms = native.ms();
    (native_ms > 0.0).then(|| (partition.ms() - native_ms) / native_ms * 100.0)
}

/// One kernel's figures under the hypervisor and native.
#[derive(Debug)]
struct Kernel {
    name: &'static str,
    partition: Option<Figure>,
    native: Option<Figure>,
}

impl Kernel {
    /// Whether both runs got the same result: `None` unless both ran it.
    fn checksums_match(&self) -> Option<bool> {
        Some(self.partition?.checksum == self.native?.checksum)
    }

    /// The overhead in %, to 3 decimals (never -0.000).
    fn overhead(&self) -> Option<f64> {
        let o = round(
            overhead_percent(self.partition.as_ref()?, self.native.as_ref()?)?,
            3,
        );
        Some(if o == 0.0 { 0.0 } else { o })
    }
}

/// Everything the cpu runs measured.
#[derive(Debug, Default)]
pub(super) struct Summary {
    kernels: Vec<Kernel>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        let (hv, native) = (lines_of(results, "cpu"), lines_of(results, "cpu-native"));
        Summary {
            kernels: KERNELS
                .iter()
                .map(|&(name, _)| Kernel {
                    name,
                    partition: figure(hv, name),
                    native: figure(native, name),
                })
                .collect(),
        }
    }

    /// False if a kernel's checksums differ between the runs (which makes
    /// the bench fail; a missing figure already failed its run).
    pub(super) fn passed(&self) -> bool {
        self.kernels
            .iter()
            .all(|k| k.checksums_match() != Some(false))
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut out = format!(
            "cpu: a computing partition against native, ms of counter time \
             (-icount {icount}: instructions of every core)\n"
        );
        out += &format!(
            "  {:<36} {:>12} {:>12} {:>10}  {}\n",
            "", "partition", "native", "overhead", "checksums"
        );
        for k in &self.kernels {
            let label = KERNELS
                .iter()
                .find(|(name, _)| *name == k.name)
                .map_or(k.name, |(_, what)| what);
            let cell = |f: &Option<Figure>| f.map_or("-".to_string(), |f| format!("{:.3}", f.ms()));
            let overhead = k
                .overhead()
                .map_or("-".to_string(), |o| format!("{o:+.3}%"));
            let checksums = match (k.checksums_match(), k.partition, k.native) {
                (Some(true), _, _) => "match".to_string(),
                (Some(false), Some(p), Some(n)) => {
                    format!("FAILED: {:#x} != {:#x}", p.checksum, n.checksum)
                }
                _ => "-".to_string(),
            };
            out += &format!(
                "  {:<36} {:>12} {:>12} {:>10}  {}\n",
                label,
                cell(&k.partition),
                cell(&k.native),
                overhead,
                checksums
            );
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        let figure = |f: &Option<Figure>| f.as_ref().map(Figure::json);
        let mut out = serde_json::Map::new();
        for k in &self.kernels {
            out.insert(
                k.name.to_string(),
                json!({
                    "partition": figure(&k.partition),
                    "native": figure(&k.native),
                    "overhead_percent": k.overhead(),
                    "checksums_match": k.checksums_match(),
                }),
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
    fn cpu_patterns_are_valid() {
        for p in [LINE, ERRORS] {
            regex::Regex::new(p).unwrap();
        }
        let runs = runs("shift=0");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].boot, Boot::Hypervisor);
        assert_eq!(runs[1].boot, Boot::Native { partition: "bench" });
    }

    #[test]
    fn cpu_reads_both_runs_lines() {
        let hv = lines(
            "[bench] cpubench: integer ticks=125000000 hz=62500000 checksum=0x14a7663bef4f3f61\n\
             [bench] cpubench: memory ticks=62500625 hz=62500000 checksum=0xdb3f7a4b\n",
        );
        let native = lines(
            "cpubench: integer ticks=125000000 hz=62500000 checksum=0x14a7663bef4f3f61\n\
             cpubench: memory ticks=62500000 hz=62500000 checksum=0xdb3f7a4c\n",
        );
        assert_eq!(
            figure(&hv, "integer"),
            Some(Figure {
                ticks: 125_000_000,
                hz: 62_500_000,
                checksum: 0x14a7_663b_ef4f_3f61
            })
        );
        assert_eq!(figure(&native, "memory").map(|f| f.ticks), Some(62_500_000));
        assert_eq!(figure(&hv, "branchy"), None);
        assert_eq!(
            figure(
                &lines("cpubench: integer ticks=5 hz=0 checksum=0x1\n"),
                "integer"
            ),
            None
        );

        let summary = Summary {
            kernels: KERNELS
                .iter()
                .map(|&(name, _)| Kernel {
                    name,
                    partition: figure(&hv, name),
                    native: figure(&native, name),
                })
                .collect(),
        };
        let table = summary.table("shift=0");
        assert!(
            table.contains("integer: arithmetic in registers"),
            "{table}"
        );
        // 2000 ms each, the same: no overhead, same result.
        assert!(
            table.contains("2000.000     2000.000    +0.000%  match"),
            "{table}"
        );
        // 1000.010 ms against 1000 ms: 0.001 % more; different results.
        assert!(
            table.contains("1000.010     1000.000    +0.001%"),
            "{table}"
        );
        assert!(
            table.contains("FAILED: 0xdb3f7a4b != 0xdb3f7a4c"),
            "{table}"
        );
        assert!(!summary.passed());
        let json = summary.json();
        assert_eq!(json["integer"]["checksums_match"], true);
        assert_eq!(json["integer"]["native"]["checksum"], "0x14a7663bef4f3f61");
        assert_eq!(json["memory"]["overhead_percent"], 0.001);
        assert_eq!(json["memory"]["checksums_match"], false);
        assert_eq!(json["branchy"]["partition"], Value::Null);
        assert_eq!(json["branchy"]["checksums_match"], Value::Null);
    }

    #[test]
    fn cpu_overhead_is_by_time() {
        let f = |ticks, hz| Figure {
            ticks,
            hz,
            checksum: 0,
        };
        let o = overhead_percent(&f(1_012_500, 1_000_000), &f(1_000_000, 1_000_000)).unwrap();
        assert!((o - 1.25).abs() < 1e-9, "{o}");
        let o = overhead_percent(&f(990_000, 1_000_000), &f(1_000_000, 1_000_000)).unwrap();
        assert!((o + 1.0).abs() < 1e-9, "{o}");
        // The same second on counters of different frequencies.
        let o = overhead_percent(&f(62_500_000, 62_500_000), &f(1_000_000_000, 1_000_000_000));
        assert_eq!(o, Some(0.0));
        assert_eq!(overhead_percent(&f(5, 1), &f(0, 1)), None);
        // A tick less than native (the counter's phase): no overhead, and
        // not "-0.000%"; a kernel one run lacks is no mismatch.
        let summary = Summary {
            kernels: vec![
                Kernel {
                    name: "integer",
                    partition: Some(f(131_250_002, 62_500_000)),
                    native: Some(f(131_250_003, 62_500_000)),
                },
                Kernel {
                    name: "memory",
                    partition: Some(f(2, 1)),
                    native: None,
                },
            ],
        };
        assert_eq!(summary.kernels[0].overhead(), Some(0.0));
        let table = summary.table("shift=0");
        assert!(
            table.contains("2100.000     2100.000    +0.000%  match"),
            "{table}"
        );
        assert!(
            table.contains("2000.000            -          -  -"),
            "{table}"
        );
        assert!(summary.passed());
    }
}
