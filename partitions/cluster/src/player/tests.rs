//! The player against a simulated device and frame loop: the device
//! plays one frame per frame of time while started, completing each
//! period once it has played it all (as the hypervisor's mixer does); the
//! loop draws for a while each frame and looks after the stream in
//! between, as `main.rs` does.

use super::*;
use crate::chime::{Chime, TAIL_FRAMES, Triggers};
use std::collections::VecDeque;

const CHANNELS: usize = 2;
/// Periods the device takes (the cluster's buffer).
const DEPTH: usize = 6;
/// A display frame at 60 fps, in audio frames.
const DISPLAY_FRAME: u64 = 800;

#[derive(Default)]
struct Device {
    queue: VecDeque<Vec<i16>>,
    /// Frames of the head period played.
    pos: usize,
    running: bool,
    /// (time, sample) of every frame played, left channel.
    played: Vec<(u64, i16)>,
    /// When the device was started and had nothing.
    starved: Vec<u64>,
    /// Each time it was started: [start, stop) and how late START was
    /// (after the run's first frame).
    runs: Vec<(u64, u64, u64)>,
    /// The device's time: frames before it are simulated.
    now: u64,
}

impl Device {
    fn advance(&mut self, to: u64) {
        while self.now < to {
            if self.running {
                match self.queue.front() {
                    Some(p) => {
                        self.played.push((self.now, p[self.pos * CHANNELS]));
                        assert_eq!(p[self.pos * CHANNELS], p[self.pos * CHANNELS + 1]);
                        self.pos += 1;
                        if self.pos * CHANNELS == p.len() {
                            self.queue.pop_front();
                            self.pos = 0;
                        }
                    }
                    None => self.starved.push(self.now),
                }
            }
            self.now += 1;
        }
    }

    fn free_slots(&self) -> usize {
        DEPTH - self.queue.len()
    }
}

#[derive(Default)]
struct Log {
    /// (chime, frame, started by START) of every chime line.
    began: Vec<(Chime, u64, bool)>,
    stops: Vec<(u64, Vec<Chime>)>,
    underruns: Vec<u64>,
    missed: Vec<(Chime, u64)>,
}

/// Runs the frame loop until `until`; `draw(n)` is how long display
/// frame `n` takes to draw (in audio frames).
fn run(source: Triggers, until: u64, draw: impl Fn(u64) -> u64) -> (Device, Log) {
    let mut player = Player::new(Chimes::new(source), CHANNELS);
    let mut out = vec![0i16; player.period_samples()];
    let mut dev = Device::default();
    let mut log = Log::default();
    let mut deadline = 0;
    let mut n = 0;
    // Periods queued since the stream stopped.
    let mut prefilled = 0;
    while dev.now < until {
        // Draw.
        dev.advance(dev.now + draw(n));
        n += 1;
        deadline += DISPLAY_FRAME;
        // Look after the stream until the next frame is due.
        loop {
            let step = player.step(
                dev.now,
                deadline,
                dev.free_slots(),
                dev.queue.len(),
                &mut out,
            );
            match step {
                Step::Write { first, started } => {
                    assert!(dev.free_slots() > 0);
                    assert!(first >= dev.now.saturating_sub(Chime::Warning.frames()));
                    dev.queue.push_back(out.clone());
                    if !dev.running {
                        prefilled += 1;
                    }
                    for s in started.as_slice() {
                        log.began.push((s.chime, s.frame, false));
                    }
                }
                Step::Start { at, begins } => {
                    assert!(!dev.running);
                    assert!((1..=PREFILL).contains(&prefilled), "{prefilled}");
                    assert_eq!(dev.queue.len(), prefilled);
                    prefilled = 0;
                    dev.advance(at);
                    dev.running = true;
                    dev.runs.push((dev.now, u64::MAX, dev.now - at));
                    for s in begins.as_slice() {
                        log.began.push((s.chime, s.frame, true));
                    }
                }
                Step::Stop { played } => {
                    assert!(dev.running && dev.queue.is_empty());
                    dev.running = false;
                    dev.runs.last_mut().unwrap().1 = dev.now;
                    log.stops.push((dev.now, played.iter().collect()));
                }
                Step::Underrun { at } => log.underruns.push(at),
                Step::Missed { chimes, .. } => {
                    for s in chimes.as_slice() {
                        log.missed.push((s.chime, s.frame));
                    }
                }
                Step::Wait { until } => {
                    if dev.now >= deadline {
                        break;
                    }
                    dev.advance(until.clamp(dev.now + 1, deadline));
                }
            }
        }
    }
    assert_eq!(player.chimes.rewinds, 0, "the player went back in time");
    (dev, log)
}

/// Every chime start before `until`.
fn all_starts(source: Triggers, until: u64) -> Vec<(Chime, u64)> {
    let mut c = Chimes::new(source);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(s) = c.next_start(at, until) {
        for s in c.starts_at(s.frame).as_slice() {
            out.push((s.chime, s.frame));
        }
        at = s.frame + 1;
    }
    out
}

/// Checks a run that had no trouble: every chime played, in step with
/// the drive's time (later by how late START was, at most `late`), the
/// stream started only while chimes sounded.
fn check(source: Triggers, until: u64, dev: &Device, log: &Log, late: u64) {
    assert!(log.underruns.is_empty() && log.missed.is_empty());
    let starts = all_starts(source, until);
    let began: Vec<_> = log.began.iter().map(|&(c, f, _)| (c, f)).collect();
    let settled = starts.iter().filter(|s| s.1 + 48_000 < until).count();
    assert_eq!(began[..settled], starts[..settled]);
    // What was played is the timeline at those very frames (shifted by
    // how late its run started).
    let mut reference = Chimes::new(source);
    let mut one = [0i16; 2];
    let delta = |t: u64| dev.runs.iter().rev().find(|r| r.0 <= t).map_or(0, |r| r.2);
    for &(t, v) in &dev.played {
        reference.render(t - delta(t), &mut one, 2);
        assert_eq!(v, one[0], "frame {t}");
    }
    // The ring never ran dry while a chime sounded (only while the tail's
    // last period had come back and STOP was on its way).
    let mut reference = Chimes::new(source);
    for &t in &dev.starved {
        let p = reference.render(t - delta(t), &mut one, 2);
        assert!(!p.sounding, "the ring ran dry at {t}");
    }
    // Every sound was played.
    let played: std::collections::HashSet<u64> = dev.played.iter().map(|p| p.0).collect();
    let mut reference = Chimes::new(source);
    for &(chime, first) in &starts {
        let run = dev.runs.iter().rev().find(|r| r.0 <= first + late).unwrap();
        for f in first..first + chime.frames() {
            reference.render(f, &mut one, 2);
            if one[0] != 0 {
                assert!(
                    played.contains(&(f + run.2)),
                    "{chime:?} at {first}: frame {f}"
                );
            }
        }
    }
    // A run starts at a chime's first frame (or as late as drawing made
    // it) and stops within the tail, a period and a look after the last
    // one ended.
    for &(start, stop, delta) in &dev.runs {
        assert!(delta <= late, "run at {start}: {delta} late");
        let first = start - delta;
        assert!(
            starts.iter().any(|s| s.1 == first),
            "run at {start} is no chime's start"
        );
        let last_end = starts
            .iter()
            .filter(|s| s.1 >= first && s.1 + delta < stop)
            .map(|s| s.1 + s.0.frames())
            .max()
            .unwrap()
            + delta;
        if stop != u64::MAX {
            assert!(
                stop >= last_end + TAIL_FRAMES,
                "run {start}..{stop} cut short"
            );
            let look = (PERIOD_FRAMES / 2).max(late);
            assert!(
                stop <= last_end + TAIL_FRAMES + PERIOD_FRAMES + look + 1,
                "run {start}..{stop}: ran on after {last_end}"
            );
        }
    }
    for (_, names) in &log.stops {
        assert!(!names.is_empty());
    }
}

#[test]
fn plays_the_test_chimes_in_step_with_the_drive() {
    let source = Triggers {
        test_at: Some(1_000),
        ..Triggers::default()
    };
    let until = 6 * 48_000;
    // Drawing takes 2 to 5 ms a frame: within the preparation time, so
    // every START is on time.
    let (dev, log) = run(source, until, |n| 96 + (n * 2_654_435_761 % 144));
    check(source, until, &dev, &log, 0);
    // Each chime its own run: START began it, STOP ended it.
    assert!(log.began.iter().all(|b| b.2));
    assert_eq!(dev.runs.len(), 4);
    let names: Vec<Vec<&str>> = log
        .stops
        .iter()
        .map(|(_, n)| n.iter().map(|c| c.name()).collect())
        .collect();
    assert_eq!(names, [["belt"], ["tick"], ["tock"], ["warning"]]);
    assert_eq!(dev.runs[0].0, 1_000 * 48);
}

#[test]
fn plays_the_drive_chimes() {
    // Up to the belt warning on the country road (with ticks before it)
    // and the left bend's ticks after it. Drawing takes 1 to 19 ms.
    let source = Triggers::default();
    let until = 44 * 48_000;
    let (dev, log) = run(source, until, |n| 48 + (n * 40_503 % 864));
    check(source, until, &dev, &log, 48 + 864);
    let belts = log.began.iter().filter(|b| b.0 == Chime::Belt).count();
    assert_eq!(belts, 4);
    assert!(log.began.iter().filter(|b| b.0 == Chime::Tick).count() >= 10);
}

#[test]
fn a_chime_that_begins_while_running_is_queued_in_place() {
    // The warning 100 ms into the belt chime.
    let source = Triggers {
        test_at: Some(1_000),
        warn_at: [Some(1_100), None, None, None],
    };
    let until = 5 * 48_000;
    let (dev, log) = run(source, until, |_| 300);
    check(source, until, &dev, &log, 0);
    assert!(log.began.contains(&(Chime::Warning, 1_100 * 48, false)));
    assert_eq!(
        log.stops[0].1,
        [Chime::Belt, Chime::Warning],
        "one run played both"
    );
}

#[test]
fn a_long_frame_is_an_underrun_and_a_late_chime_is_missed() {
    let source = Triggers {
        test_at: Some(1_000),
        ..Triggers::default()
    };
    // Frame 63 (1.05 s, in the belt chime) draws for 100 ms, more than
    // the ring holds; frame 119 (1.983 s) for 450 ms, past the tick
    // (2 s) and the tock (2.333 s).
    let draw = |n: u64| match n {
        63 => 100 * 48,
        119 => 450 * 48,
        _ => 200,
    };
    let (dev, log) = run(source, 5 * 48_000, draw);
    assert_eq!(log.underruns.len(), 1, "{:?}", log.underruns);
    assert!(!dev.starved.is_empty());
    assert_eq!(
        log.missed,
        [(Chime::Tick, 2_000 * 48), (Chime::Tock, 2_333 * 48)]
    );
    // The warning still plays, on time.
    assert!(log.began.contains(&(Chime::Warning, 3_000 * 48, true)));
    assert!(dev.runs.iter().any(|r| r.0 == 3_000 * 48));
}

#[test]
fn after_an_abort_the_next_chimes_play() {
    let source = Triggers {
        test_at: Some(1_000),
        ..Triggers::default()
    };
    let mut player = Player::new(Chimes::new(source), CHANNELS);
    let mut out = vec![0i16; player.period_samples()];
    // Into the belt's run: prefilled and started.
    let now = 1_000 * 48 - PREP_FRAMES;
    let mut writes = 0;
    loop {
        match player.step(now, now + 800, DEPTH - writes, writes, &mut out) {
            Step::Write { .. } => writes += 1,
            Step::Start { at, .. } => {
                assert_eq!((at, writes), (48_000, PREFILL));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(player.running());
    // The device is reset 50 ms later: what it had is lost.
    player.abort(now + 50 * 48);
    assert!(!player.running());
    // The tick at 2 s is next.
    let step = player.step(2_000 * 48 - PREP_FRAMES, 2_100 * 48, DEPTH, 0, &mut out);
    assert_eq!(
        step,
        Step::Write {
            first: 2_000 * 48,
            started: Starts::new()
        }
    );
}
