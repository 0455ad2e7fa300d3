//! The boot part of `cargo xtask bench`: how long from power-on (QEMU's
//! start, counter 0) the default cockpit takes to show the cluster's first
//! frame and to reach the IVI's userspace, against each partition's image
//! booted alone on QEMU without the hypervisor. Three runs:
//!
//! - `boot`: `config/qemu-virt/default.toml` under the hypervisor, with a
//!   fresh disk of the board's layout (as the `boot-time` scenario): the
//!   hypervisor's entry, the cluster's first frame on screen, the first
//!   thing the IVI's `/init` runs (`ivi-tool clock`);
//! - `boot-ivi-native`: the IVI's kernel and initramfs with its bootargs,
//!   booted directly on QEMU `virt` at EL1 with its two cores and 256 MiB;
//! - `boot-cluster-native`: the cluster's image the same way, with its one
//!   core and 16 MiB.
//!
//! Each native run gets the devices its partition gets under the
//! hypervisor, as far as QEMU gives them ([`super::NativeGuest`]): a
//! virtio-gpu per view, a blank disk of its GPT partition's size, its
//! view of the touch panel, a sound device. QEMU's virtio-gpu enables only
//! its first scanout without a window, so the cluster natively draws its
//! instrument view alone, without the strip it has on the center display
//! under the hypervisor.
//!
//! Under `-icount shift=0` a nanosecond of counter time is an instruction
//! (or a nanosecond of host time while every core is idle), and every
//! core of the machine counts on the same timeline: under the hypervisor
//! the cluster's drawing, the IVI's boot and the hypervisor's own work
//! (composing the displays, the storage and console mediators) add up,
//! where each native run has its partition alone. No figure is judged: a
//! run fails only when a marker is missing.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Boot, Part, Run, RunResult, captures, lines_of, ratio, round};
use crate::disk::QEMU_VIRT_LAYOUT;
use crate::scenario::Scenario;

const CONFIG: &str = "config/qemu-virt/default.toml";
/// Wall-clock limit of each run (Linux boots in about 30 s under
/// `-icount`; the cockpit's other partition slows it down).
const RUN_TIMEOUT_S: u64 = 240;

/// The hypervisor's entry: the counter, and its frequency.
const ENTRY: &str = r"^\[hv\] INFO  entered at counter (\d+) \(\d+ ms at (\d+) Hz\)";
/// The cluster's first frame on screen (after its tag, if any).
const FRAME: &str = r"cluster: first frame shown at counter (\d+) ";
/// The first thing the IVI's userspace does (after its tag, if any): the
/// counter and its frequency.
const USERSPACE: &str = r"ivi-tool: clock (\d+) ticks at (\d+) Hz";

/// `pattern` as a whole line of partition `tag`'s console output (under
/// the hypervisor), or of the console alone (`None`: native).
fn marker(tag: Option<&str>, pattern: &str) -> String {
    match tag {
        Some(tag) => format!(r"^\[{tag}\] {pattern}"),
        None => format!("^{pattern}"),
    }
}

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let scenario = |name, markers: &[String]| {
        markers.iter().fold(
            Scenario::new(name, CONFIG)
                .icount(icount)
                .timeout(RUN_TIMEOUT_S),
            |s, m| s.expect(m),
        )
    };
    vec![
        Run {
            key: "boot",
            part: Part::Boot,
            scenario: scenario(
                "bench-boot",
                &[
                    ENTRY.to_string(),
                    marker(Some("cluster"), FRAME),
                    marker(Some("ivi"), USERSPACE),
                ],
            )
            .disk(QEMU_VIRT_LAYOUT),
            boot: Boot::Hypervisor,
        },
        Run {
            key: "boot-ivi-native",
            part: Part::Boot,
            scenario: scenario("bench-boot-ivi-native", &[marker(None, USERSPACE)]),
            boot: Boot::Native { partition: "ivi" },
        },
        Run {
            key: "boot-cluster-native",
            part: Part::Boot,
            scenario: scenario("bench-boot-cluster-native", &[marker(None, FRAME)]),
            boot: Boot::Native {
                partition: "cluster",
            },
        },
    ]
}

/// A milestone's counter values: under the hypervisor, and native.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Milestone {
    hypervisor: Option<u64>,
    native: Option<u64>,
}

impl Milestone {
    /// Under the hypervisor / native.
    fn ratio(&self) -> Option<f64> {
        ratio(self.hypervisor?, self.native?)
    }
}

/// Everything the boot runs measured (counter values).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Summary {
    /// The counter's frequency (the same counter with and without the
    /// hypervisor: QEMU's `virt` with the same CPU).
    hz: Option<u64>,
    /// The hypervisor's entry.
    entry: Option<u64>,
    frame: Milestone,
    userspace: Milestone,
}

/// The milestones, in the table's order: key in the results, label.
const MILESTONES: [(&str, &str); 2] = [
    ("cluster_first_frame", "cluster: first frame on screen"),
    ("ivi_userspace", "IVI: userspace (/init)"),
];

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        Summary::from_lines(
            lines_of(results, "boot"),
            lines_of(results, "boot-ivi-native"),
            lines_of(results, "boot-cluster-native"),
        )
    }

    /// From the consoles of the hypervisor run and the two native runs.
    fn from_lines(hv: &[String], ivi: &[String], cluster: &[String]) -> Summary {
        let first = |lines: &[String], pattern: &str| captures(lines, pattern).map(|v| v[0]);
        let entry = captures(hv, ENTRY);
        let clock_hz = |lines: &[String], tag| {
            captures(lines, &marker(tag, USERSPACE)).and_then(|v| v.get(1).copied())
        };
        Summary {
            hz: entry
                .as_ref()
                .and_then(|v| v.get(1).copied())
                .or_else(|| clock_hz(hv, Some("ivi")))
                .or_else(|| clock_hz(ivi, None))
                .filter(|&hz| hz > 0),
            entry: entry.map(|v| v[0]),
            frame: Milestone {
                hypervisor: first(hv, &marker(Some("cluster"), FRAME)),
                native: first(cluster, &marker(None, FRAME)),
            },
            userspace: Milestone {
                hypervisor: first(hv, &marker(Some("ivi"), USERSPACE)),
                native: first(ivi, &marker(None, USERSPACE)),
            },
        }
    }

    /// Counter value `ticks` in milliseconds from power-on.
    fn ms(&self, ticks: Option<u64>) -> Option<f64> {
        Some(ticks? as f64 * 1000.0 / self.hz? as f64)
    }

    fn milestones(&self) -> [(&'static str, &'static str, Milestone); 2] {
        let [(fk, fl), (uk, ul)] = MILESTONES;
        [(fk, fl, self.frame), (uk, ul, self.userspace)]
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "boot: ms of counter time from power-on (QEMU start, counter 0), -icount {icount};\n\
             native: the partition's image alone on QEMU, without the hypervisor\n"
        );
        let _ = writeln!(
            t,
            "  {:<34} {:>11} {:>9} {:>9} {:>7}",
            "", "hypervisor", "native", "added", "ratio"
        );
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            t,
            "  {:<34} {:>11} {:>9} {:>9} {:>7}",
            "hypervisor entry",
            cell(self.ms(self.entry)),
            "-",
            "-",
            "-"
        );
        for (_, label, m) in self.milestones() {
            let (hv, native) = (self.ms(m.hypervisor), self.ms(m.native));
            let added = hv.zip(native).map(|(h, n)| h - n);
            let ratio = m.ratio();
            let _ = writeln!(
                t,
                "  {:<34} {:>11} {:>9} {:>9} {:>7}",
                label,
                cell(hv),
                cell(native),
                added.map_or("-".to_string(), |a| format!("{a:+.1}")),
                ratio.map_or("-".to_string(), |r| format!("x{r:.2}"))
            );
        }
        let _ = writeln!(
            t,
            "  (natively the cluster draws its instrument view alone: without a window QEMU's \
             virtio-gpu\n  enables one scanout, so its strip on the center display is not drawn)"
        );
        if let (Some(entry), Some(hz)) = (self.entry, self.hz) {
            let _ = writeln!(
                t,
                "  (counter at {hz} Hz; from the hypervisor's entry: cluster {}, IVI {} ms)",
                self.since_entry(self.frame.hypervisor, entry)
                    .map_or("-".to_string(), |v| format!("{v:.1}")),
                self.since_entry(self.userspace.hypervisor, entry)
                    .map_or("-".to_string(), |v| format!("{v:.1}")),
            );
        }
        t
    }

    /// Milliseconds from the hypervisor's entry to `ticks`.
    fn since_entry(&self, ticks: Option<u64>, entry: u64) -> Option<f64> {
        self.ms(Some(ticks?.checked_sub(entry)?))
    }

    pub(super) fn json(&self) -> Value {
        let point = |ticks: Option<u64>| {
            ticks.map_or(
                Value::Null,
                |c| json!({ "counter": c, "ms": self.ms(Some(c)).map(|ms| round(ms, 3)) }),
            )
        };
        let mut out = serde_json::Map::new();
        out.insert("counter_hz".into(), json!(self.hz));
        out.insert("hypervisor_entry".into(), point(self.entry));
        for (key, _, m) in self.milestones() {
            let added = self
                .ms(m.hypervisor)
                .zip(self.ms(m.native))
                .map(|(h, n)| round(h - n, 3));
            out.insert(
                key.into(),
                json!({
                    "hypervisor": point(m.hypervisor),
                    "native": point(m.native),
                    "added_ms": added,
                    "hypervisor_over_native": m.ratio().map(|r| round(r, 3)),
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
    fn patterns_are_valid() {
        for tag in [None, Some("cluster"), Some("ivi")] {
            for p in [FRAME, USERSPACE] {
                regex::Regex::new(&marker(tag, p)).unwrap();
            }
        }
        regex::Regex::new(ENTRY).unwrap();
        let runs = runs("shift=0");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].boot, Boot::Hypervisor);
        assert_eq!(runs[0].scenario.disk, Some(QEMU_VIRT_LAYOUT));
        assert_eq!(runs[1].boot, Boot::Native { partition: "ivi" });
        assert_eq!(
            runs[2].boot,
            Boot::Native {
                partition: "cluster"
            }
        );
        assert!(runs.iter().all(|r| r.part == Part::Boot));
    }

    #[test]
    fn boot_milestones_tagged_and_native() {
        let hv = lines(
            "[hv] INFO  entered at counter 625000 (10 ms at 62500000 Hz)\n\
             [cluster] cluster: display 1920x720 + strip 1280x100\n\
             [cluster] cluster: first frame shown at counter 25000000 (400 ms)\n\
             [ivi] [    1.2] something\n\
             [ivi] ivi-tool: clock 125000000 ticks at 62500000 Hz = 2000 ms\n\
             [ivi] ivi-tool: clock 999999999 ticks at 62500000 Hz = 16000 ms\n",
        );
        let ivi = lines(
            "[    0.000000] Booting Linux\n\
             ivi-tool: clock 100000000 ticks at 62500000 Hz = 1600 ms\n",
        );
        let cluster = lines("cluster: first frame shown at counter 2500000 (40 ms)\n");
        let s = Summary::from_lines(&hv, &ivi, &cluster);
        assert_eq!(
            s,
            Summary {
                hz: Some(62_500_000),
                entry: Some(625_000),
                frame: Milestone {
                    hypervisor: Some(25_000_000),
                    native: Some(2_500_000),
                },
                userspace: Milestone {
                    hypervisor: Some(125_000_000),
                    native: Some(100_000_000),
                },
            }
        );
        // Untagged lines do not count for the hypervisor run, nor tagged
        // ones for a native run.
        let crossed = Summary::from_lines(&ivi, &hv, &hv);
        assert_eq!(crossed.frame, Milestone::default());
        assert_eq!(crossed.userspace, Milestone::default());
        assert_eq!(crossed.hz, None);
        assert_eq!(
            Summary::from_lines(&[], &ivi, &[]).hz,
            Some(62_500_000),
            "from the native clock line"
        );
        assert_eq!(Summary::from_lines(&[], &[], &[]), Summary::default());

        assert_eq!(s.ms(Some(625_000)), Some(10.0));
        assert_eq!(s.since_entry(Some(25_000_000), 625_000), Some(390.0));
        assert_eq!(s.since_entry(Some(1), 625_000), None);
        let table = s.table("shift=0");
        for cell in [
            "10.0", "400.0", "40.0", "+360.0", "x10.00", "2000.0", "1600.0", "x1.25",
        ] {
            assert!(table.contains(cell), "{cell} in\n{table}");
        }
        assert!(table.contains("cluster 390.0, IVI 1990.0 ms"), "{table}");
        let j = s.json();
        assert_eq!(j["counter_hz"], 62_500_000);
        assert_eq!(j["hypervisor_entry"]["ms"], 10.0);
        assert_eq!(j["cluster_first_frame"]["native"]["counter"], 2_500_000);
        assert_eq!(j["cluster_first_frame"]["added_ms"], 360.0);
        assert_eq!(j["ivi_userspace"]["hypervisor_over_native"], 1.25);

        // A missing marker leaves its cells empty, without a ratio.
        let s = Summary::from_lines(&hv, &[], &cluster);
        let table = s.table("shift=0");
        assert!(
            table.lines().any(|l| l.contains("IVI: userspace")
                && l.split_whitespace().filter(|c| *c == "-").count() == 3),
            "{table}"
        );
        assert_eq!(s.json()["ivi_userspace"]["native"], Value::Null);
        assert_eq!(
            s.json()["ivi_userspace"]["hypervisor_over_native"],
            Value::Null
        );
        let no_hz = Summary {
            hz: None,
            ..Summary::from_lines(&hv, &ivi, &cluster)
        };
        assert_eq!(no_hz.ms(Some(1)), None);
        assert_eq!(
            no_hz.json()["cluster_first_frame"]["hypervisor"]["ms"],
            Value::Null
        );
    }
}
