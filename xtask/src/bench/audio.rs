//! The audio half of `cargo xtask bench`: how soon the safety partition's
//! chime sounds, and what mixing costs, under the same `-icount` as the
//! other runs. Two runs (`config/qemu-virt/bench/audio-*.toml`):
//!
//! - `audio-alone`: the cluster (`snd`) plays a 100 ms chime 20 times,
//!   each from its own START to its own STOP; nobody else plays;
//! - `audio-loaded`: the same while the IVI (Linux) plays through ALSA
//!   and keeps both its CPUs busy.
//!
//! For each chime:
//! - *START to mixed*: from the counter the cluster read right before its
//!   START to the hypervisor mixing the first period of it (the mixer's
//!   part: at most one period by design, plus the virtio round trip);
//! - *START to output*: from its START to where its first sample is in
//!   the output stream, counting the stream from the physical START (the
//!   mixer's part plus the periods the device holds ahead of the mixer).
//!
//! The output's position is the WAV's: the hypervisor feeds the device
//! without a break, so period `p` starts at frame `480 p` of the file; the
//! bench checks that each chime's 1 kHz tone starts there. What the device
//! adds after that (QEMU: it takes the first period one tick of its audio
//! timer after START) is its own latency, reported separately: from the
//! physical START to the device returning its first period.
//!
//! Mixing cost is the hypervisor's own figure: counter ticks (virtual
//! nanoseconds at `shift=0`, in 16 ns steps) from before the pulls of one
//! period to after its mix, mean and worst per 500 periods.

use serde_json::{Value, json};

use super::{Boot, Part, Run, RunResult, lines_of, round};
use crate::scenario::{Scenario, numbers, pairs};

const ALONE: &str = "config/qemu-virt/bench/audio-alone.toml";
const LOADED: &str = "config/qemu-virt/bench/audio-loaded.toml";

/// Wall-clock limit of each run (the loaded one boots Linux).
const RUN_TIMEOUT_S: u64 = 400;
/// Chimes per run (the configs' `snd.cycles`).
const CHIMES: usize = 20;
/// Frames of a mixer period (10 ms, the configs' default) at 48 kHz.
const PERIOD: usize = 480;

const STARTED: &str =
    r"^\[hv\] INFO  audio speaker: started at counter (\d+) with \d+ periods queued$";
const FIRST_PLAYED: &str = r"^\[hv\] INFO  audio speaker: first period played at counter (\d+)$";
const CHIME_MIXED: &str = r"^\[hv\] INFO  audio speaker: partition cluster's stream started: in period (\d+), mixed at counter (\d+)$";
const CHIME_START: &str = r"^\[cluster\] snd: start at counter (\d+)$";
const COST: &str = r"^\[hv\] INFO  audio speaker: mixing periods \d+\.\.\d+: mean (\d+) us, max (\d+) us a period, up to (\d+) stream";
const COUNTER_HZ: &str = r"^\[hv\] INFO  entered at counter \d+ \(\d+ ms at (\d+) Hz\)";
const IVI_PLAYING: &str = r"ivi-tool: play: started$";
/// What no run may print.
const ERRORS: &str =
    r"snd: error|snd: xrun|ivi-tool: play: (error|underrun)|\[hv\] (WARN|ERROR)|PANIC";

/// The runs, in order.
pub(super) fn runs(icount: &'static str) -> Vec<Run> {
    let run = |key, scenario| Run {
        key,
        part: Part::Audio,
        scenario,
        boot: Boot::Hypervisor,
    };
    vec![
        run("audio-alone", base("bench-audio-alone", ALONE, icount)),
        run(
            "audio-loaded",
            base("bench-audio-loaded", LOADED, icount)
                .expect(IVI_PLAYING)
                .expect(r"ivi: cpuload: 2 busy loops$")
                .check("the IVI played before the first chime", |lines| {
                    let playing = lines.iter().position(|l| l.ends_with("play: started"));
                    let chime = lines.iter().position(|l| l.contains("cluster] snd: start"));
                    match (playing, chime) {
                        (Some(p), Some(c)) if p < c => Ok(()),
                        _ => Err("the IVI did not play before the first chime".into()),
                    }
                }),
        ),
    ]
}

/// A run of `config` under `-icount icount`: [`CHIMES`] chimes, each found
/// in the recording where the hypervisor says it mixed it.
fn base(name: &'static str, config: &'static str, icount: &'static str) -> Scenario {
    Scenario::new(name, config)
        .icount(icount)
        .timeout(RUN_TIMEOUT_S)
        .expect(STARTED)
        .expect(FIRST_PLAYED)
        .expect_exactly(CHIMES, CHIME_START)
        .expect_exactly(CHIMES, CHIME_MIXED)
        .expect(r"^\[cluster\] snd: done periods=\d+ underruns=0$")
        .expect_none(ERRORS)
        .stop_on(r"^\[cluster\] snd: done ")
        .settle(300)
        .check_audio("each chime starts where it was mixed", |wav, lines| {
            let left = wav.channel(0);
            for period in numbers(lines, CHIME_MIXED) {
                let at = period as usize * PERIOD;
                let found = left
                    .first_tone(1000.0, PERIOD / 2, at.saturating_sub(2 * PERIOD), 0.1)
                    .ok_or(format!("no chime after frame {at}"))?;
                if found.abs_diff(at) > 24 {
                    return Err(format!(
                        "a chime mixed in period {period} starts at frame {found}, not {at}"
                    ));
                }
            }
            Ok(())
        })
}

/// Percentiles of one run's chimes, in µs.
#[derive(Clone, Debug, PartialEq)]
struct Onsets {
    n: usize,
    mixed: (u64, u64, u64),
    output: (u64, u64, u64),
    /// The device's own latency: physical START to its first period back.
    device_us: u64,
    /// Mixing cost per period: worst mean and worst max of the reports,
    /// and the most streams.
    cost: Option<(u64, u64, u64)>,
}

/// p50, p99 and max of `values`.
fn percentiles(mut values: Vec<u64>) -> (u64, u64, u64) {
    values.sort_unstable();
    let n = values.len();
    let at = |p: usize| values[(n * p).div_ceil(100).clamp(1, n) - 1];
    (at(50), at(99), values[n - 1])
}

impl Onsets {
    fn parse(lines: &[String]) -> Option<Onsets> {
        let hz = *numbers(lines, COUNTER_HZ).first()?;
        let us = |ticks: u64| ticks * 1_000_000 / hz.max(1);
        let origin = *numbers(lines, STARTED).first()?;
        let played = *numbers(lines, FIRST_PLAYED).first()?;
        let starts = numbers(lines, CHIME_START);
        let mixed = pairs(lines, CHIME_MIXED);
        if starts.is_empty() || starts.len() != mixed.len() {
            return None;
        }
        let period_ticks = hz / 100;
        let mut to_mixed = Vec::new();
        let mut to_output = Vec::new();
        for (&start, &(period, at)) in starts.iter().zip(&mixed) {
            to_mixed.push(us(at.saturating_sub(start)));
            to_output.push(us((origin + period * period_ticks).saturating_sub(start)));
        }
        let costs = pairs_of3(lines, COST);
        Some(Onsets {
            n: starts.len(),
            mixed: percentiles(to_mixed),
            output: percentiles(to_output),
            device_us: us(played.saturating_sub(origin)),
            cost: costs
                .iter()
                .copied()
                .reduce(|a, b| (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2))),
        })
    }

    fn json(&self) -> Value {
        let p = |(p50, p99, max): (u64, u64, u64)| json!({ "p50_us": p50, "p99_us": p99, "max_us": max });
        json!({
            "chimes": self.n,
            "start_to_mixed": p(self.mixed),
            "start_to_output": p(self.output),
            "device_latency_us": self.device_us,
            "mixing_us_per_period": self.cost.map(|(mean, max, streams)| json!({
                "mean": mean, "max": max, "streams": streams,
            })),
        })
    }
}

/// The three numbers each line matching `pattern` captures.
fn pairs_of3(lines: &[String], pattern: &str) -> Vec<(u64, u64, u64)> {
    let re = regex::Regex::new(pattern).expect("checked by the tests");
    lines
        .iter()
        .filter_map(|l| {
            let c = re.captures(l)?;
            Some((c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?))
        })
        .collect()
}

/// Everything the audio runs measured.
#[derive(Debug, Default)]
pub(super) struct Summary {
    alone: Option<Onsets>,
    loaded: Option<Onsets>,
}

impl Summary {
    pub(super) fn from_runs(results: &[RunResult<'_>]) -> Summary {
        Summary {
            alone: Onsets::parse(lines_of(results, "audio-alone")),
            loaded: Onsets::parse(lines_of(results, "audio-loaded")),
        }
    }

    pub(super) fn table(&self, icount: &str) -> String {
        let mut out = format!("audio: the cluster's chime, from its START (-icount {icount})\n");
        out += &format!(
            "  {:<36} {:>6} {:>22} {:>22} {:>10} {:>16}\n",
            "",
            "chimes",
            "to mixed p50/p99/max",
            "to output p50/p99/max",
            "device",
            "mixing mean/max"
        );
        for (label, o) in [
            ("alone", &self.alone),
            ("while the IVI plays and loads its CPUs", &self.loaded),
        ] {
            match o {
                Some(o) => {
                    let three = |(a, b, c): (u64, u64, u64)| format!("{a}/{b}/{c} µs");
                    let cost = o
                        .cost
                        .map_or("-".to_string(), |(mean, max, _)| format!("{mean}/{max} µs"));
                    out += &format!(
                        "  {:<36} {:>6} {:>22} {:>22} {:>10} {:>16}\n",
                        label,
                        o.n,
                        three(o.mixed),
                        three(o.output),
                        format!("{} µs", o.device_us),
                        cost
                    );
                }
                None => out += &format!("  {label:<36} (no result)\n"),
            }
        }
        out
    }

    pub(super) fn json(&self) -> Value {
        json!({
            "alone": self.alone.as_ref().map(Onsets::json),
            "loaded": self.loaded.as_ref().map(Onsets::json),
            "period_ms": round(PERIOD as f64 / 48.0, 1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::console_lines as lines;

    #[test]
    fn patterns_are_valid() {
        for p in [
            STARTED,
            FIRST_PLAYED,
            CHIME_MIXED,
            CHIME_START,
            COST,
            COUNTER_HZ,
            IVI_PLAYING,
            ERRORS,
        ] {
            regex::Regex::new(p).unwrap();
        }
        assert_eq!(runs("shift=0").len(), 2);
    }

    #[test]
    fn chimes_are_timed_from_their_start() {
        // 62.5 MHz: a period is 625000 ticks, 1 µs is 62.5 ticks.
        let l = lines(
            "[hv] INFO  entered at counter 100 (0 ms at 62500000 Hz)\n\
             [hv] INFO  audio speaker: started at counter 1000000 with 3 periods queued\n\
             [hv] INFO  audio speaker: first period played at counter 1625000\n\
             [cluster] snd: start at counter 6250000\n\
             [hv] INFO  audio speaker: partition cluster's stream started: in period 10, mixed at counter 6562500\n\
             [hv] INFO  audio speaker: mixing periods 0..500: mean 12 us, max 40 us a period, up to 2 stream(s)",
        );
        let o = Onsets::parse(&l).unwrap();
        assert_eq!(o.n, 1);
        // Mixed 312500 ticks (5 ms) after START.
        assert_eq!(o.mixed, (5000, 5000, 5000));
        // Period 10 is at 1000000 + 10 * 625000 = 7250000: 16 ms after.
        assert_eq!(o.output, (16000, 16000, 16000));
        assert_eq!(o.device_us, 10000);
        assert_eq!(o.cost, Some((12, 40, 2)));
        let s = Summary {
            alone: Some(o),
            loaded: None,
        };
        assert!(s.table("shift=0").contains("(no result)"));
        assert_eq!(s.json()["alone"]["start_to_output"]["p99_us"], 16000);
    }

    #[test]
    fn percentiles_of_a_few() {
        assert_eq!(percentiles(vec![3, 1, 2]), (2, 3, 3));
        assert_eq!(percentiles((1..=100).collect()), (50, 99, 100));
    }
}
