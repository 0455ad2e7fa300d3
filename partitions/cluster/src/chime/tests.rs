use super::*;
use crate::drive::{BULB_CHECK_MS, cycle_ms};
use crate::scene::Visual;

/// Every start in frames `from..until`, in order.
fn starts<S: Source>(c: &mut Chimes<S>, from: u64, until: u64) -> Vec<Start> {
    let mut out = Vec::new();
    let mut at = from;
    while let Some(s) = c.next_start(at, until) {
        out.extend_from_slice(c.starts_at(s.frame).as_slice());
        at = s.frame + 1;
    }
    out
}

fn ms_of(chime: Chime, list: &[Start]) -> Vec<u64> {
    list.iter()
        .filter(|s| s.chime == chime)
        .map(|s| {
            assert_eq!(s.frame % FRAMES_PER_MS, 0);
            s.frame / FRAMES_PER_MS
        })
        .collect()
}

/// Mono samples of `chime` alone, from its start to its end.
fn alone(chime: Chime) -> Vec<i32> {
    (0..chime.frames()).map(|n| chime.sample(n)).collect()
}

/// Sign changes between runs of positive and negative samples (zeros
/// continue the run before them).
fn zero_crossings(s: &[i32]) -> usize {
    let mut last = 0;
    let mut count = 0;
    for &v in s {
        let sign = v.signum();
        if sign != 0 {
            if last != 0 && sign != last {
                count += 1;
            }
            last = sign;
        }
    }
    count
}

fn frames(ms: u64) -> u64 {
    ms * FRAMES_PER_MS
}

#[test]
fn sine_table_is_a_sine() {
    assert_eq!(SINE[0], 0);
    assert_eq!(SINE[TABLE / 4], 32767);
    assert_eq!(SINE[TABLE / 2], 0);
    assert_eq!(SINE[3 * TABLE / 4], -32767);
    assert_eq!(SINE[TABLE], 0);
    for (k, &v) in SINE.iter().enumerate() {
        let exact = (2.0 * std::f64::consts::PI * k as f64 / TABLE as f64).sin() * 32768.0;
        assert!(
            (f64::from(v) - exact.clamp(-32767.0, 32767.0)).abs() <= 1.0,
            "{k}: {v}"
        );
    }
    // Interpolated, between the points.
    for k in 0..4096u32 {
        let phase = k.wrapping_mul(1_048_573);
        let exact = (2.0 * std::f64::consts::PI * f64::from(phase) / 4_294_967_296.0).sin();
        assert!(
            (f64::from(sine(phase)) / 32768.0 - exact).abs() < 1e-4,
            "{phase}"
        );
    }
}

#[test]
fn lengths_and_names() {
    assert_eq!(Chime::Belt.frames(), frames(300));
    assert_eq!(Chime::Tick.frames(), frames(5));
    assert_eq!(Chime::Tock.frames(), frames(5));
    assert_eq!(Chime::Warning.frames(), frames(420));
    let names: Vec<_> = Chime::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["belt", "tick", "tock", "warning"]);
    for c in Chime::ALL {
        assert_eq!(c.sample(0), 0, "{c:?} starts at 0");
        assert_eq!(c.sample(c.frames()), 0);
        assert_eq!(c.sample(c.frames() + 1000), 0);
    }
}

#[test]
fn frequencies_are_right() {
    let belt = alone(Chime::Belt);
    let tone = frames(BELT_TONE_MS) as usize;
    // A tone of f Hz over d seconds has 2fd half cycles: one fewer
    // crossing between them (give or take the ramps).
    let expect = |hz: u64, ms: u64| (2 * hz * ms / 1000) as i64 - 1;
    let near = |got: usize, want: i64, what: &str| {
        assert!((got as i64 - want).abs() <= 1, "{what}: {got} vs {want}");
    };
    near(
        zero_crossings(&belt[..tone]),
        expect(1000, 150),
        "belt high",
    );
    near(zero_crossings(&belt[tone..]), expect(750, 150), "belt low");
    near(zero_crossings(&alone(Chime::Tick)), expect(2500, 5), "tick");
    near(zero_crossings(&alone(Chime::Tock)), expect(1600, 5), "tock");
    let warning = alone(Chime::Warning);
    let every = frames(WARNING_BEEP_MS + WARNING_GAP_MS) as usize;
    let beep = frames(WARNING_BEEP_MS) as usize;
    for b in 0..WARNING_BEEPS as usize {
        let at = b * every;
        near(
            zero_crossings(&warning[at..at + beep]),
            expect(2000, 100),
            "warning beep",
        );
        if b + 1 < WARNING_BEEPS as usize {
            assert!(warning[at + beep..at + every].iter().all(|&s| s == 0));
        }
    }
}

#[test]
fn samples_are_bounded_and_click_free() {
    for c in Chime::ALL {
        let s = alone(c);
        let (amp, hz) = match c {
            Chime::Belt => (BELT_AMP, BELT_HIGH_HZ),
            Chime::Tick => (CLICK_AMP, TICK_HZ),
            Chime::Tock => (CLICK_AMP, TOCK_HZ),
            Chime::Warning => (WARNING_AMP, WARNING_HZ),
        };
        let peak = s.iter().map(|v| v.abs()).max().unwrap();
        assert!(
            peak as i64 <= amp && peak as i64 > amp * 9 / 10,
            "{c:?}: {peak}"
        );
        // No step larger than the steepest slope of the tone itself.
        let slope = amp as f64 * 2.0 * std::f64::consts::PI * hz as f64 / RATE as f64;
        let step = s.windows(2).map(|w| (w[1] - w[0]).abs()).max().unwrap();
        assert!(
            f64::from(step) <= slope * 1.05,
            "{c:?}: step {step} > {slope}"
        );
        // It begins and ends near 0.
        assert!(s[1].abs() < 200 && s[s.len() - 1].abs() < 200, "{c:?}");
    }
    // All four at once do not clip (see also the const assertion).
    let all = |t: u64| Conditions {
        belt: t >= 10,
        // A tick and a tock 1 ms apart: all four sound together.
        indicator: t == 10,
        warning: t >= 10,
        warning_now: false,
    };
    let mut c = Chimes::new(all);
    let mut out = vec![0i16; 48_000];
    let p = c.render(0, &mut out, 1);
    assert_eq!(p.started.as_slice().len(), 4);
    let peak = out.iter().map(|v| v.unsigned_abs()).max().unwrap();
    assert!(peak > 15_000 && peak < 32_767, "{peak}");
}

#[test]
fn tick_times_are_the_blink_edges() {
    let until = 2 * cycle_ms() + 5000;
    let mut c = Chimes::new(drive_conditions);
    let list = starts(&mut c, 0, frames(until));
    let (ticks, tocks) = (ms_of(Chime::Tick, &list), ms_of(Chime::Tock, &list));
    // The edges of the indicator arrows as the scene draws them (the bulb
    // check lights them steadily: not a blink).
    let drawn = |t: u64| {
        let v = Visual::new(&drive::at(t), t, 0, 0);
        v.lamps & (lamp::LEFT | lamp::RIGHT) != 0
    };
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for t in BULB_CHECK_MS + 1..until {
        match (drawn(t - 1), drawn(t)) {
            (false, true) => on.push(t),
            (true, false) => off.push(t),
            _ => {}
        }
    }
    assert!(on.len() > 40, "{}", on.len());
    assert_eq!(ticks, on);
    assert_eq!(tocks, off);
    // While the indicator is on, they alternate half a blink apart.
    assert_eq!(ticks[0], 10_000);
    assert_eq!(tocks[0], 10_323);
    assert_eq!(ticks[1], 10_656);
    // The blink phase is the flasher's, counted from boot.
    for &t in ticks.iter().chain(&tocks) {
        let grid = t % drive::BLINK_PERIOD_MS;
        let at_phase_edge = drive::at(t).lamps != drive::at(t - 1).lamps;
        assert!(
            grid == 0 || grid == drive::BLINK_PERIOD_MS / 2 || at_phase_edge,
            "{t}"
        );
    }
}

#[test]
fn belt_repeats_in_the_drive() {
    let mut c = Chimes::new(drive_conditions);
    let list = starts(&mut c, 0, frames(2 * cycle_ms()));
    let belts = ms_of(Chime::Belt, &list);
    // The belt comes open on the country road (100 km/h) for 4 s; it is
    // also open when parked, but the car does not move then.
    let lap = cycle_ms();
    assert_eq!(
        belts,
        [38_000, 39_000, 40_000, 41_000]
            .iter()
            .chain(&[38_000 + lap, 39_000 + lap, 40_000 + lap, 41_000 + lap])
            .copied()
            .collect::<Vec<_>>()
    );
    for t in belts {
        let car = drive::at(t);
        assert!(car.lamps & lamp::BELT != 0 && car.speed_kmh >= BELT_MIN_KMH);
    }
}

#[test]
fn belt_stops_after_its_limit_and_begins_again() {
    // Open from 5 s to 200 s, and again from 210 s.
    let source = |t: u64| Conditions {
        belt: (5_000..200_000).contains(&t) || t >= 210_000,
        ..Conditions::default()
    };
    let mut c = Chimes::new(source);
    let belts = ms_of(Chime::Belt, &starts(&mut c, 0, frames(215_000)));
    let mut want: Vec<u64> = (0..90).map(|k| 5_000 + 1000 * k).collect();
    want.extend((0..5).map(|k| 210_000 + 1000 * k));
    assert_eq!(belts, want);
    assert_eq!(belts[89], 94_000);
    // Silent (not needed) from the last one's tail to the new warning.
    let mut c = Chimes::new(source);
    let end = frames(94_000) + Chime::Belt.frames() + TAIL_FRAMES;
    assert!(c.needed(end - 1, 1));
    assert!(!c.needed(end, frames(210_000) - end));
    assert!(c.needed(frames(210_000), 1));
}

#[test]
fn warnings_come_from_the_engine_lamp_and_bootargs() {
    let t = Triggers {
        warn_at: [Some(7_000), Some(60_000), None, None],
        ..Triggers::default()
    };
    let mut c = Chimes::new(t);
    let list = starts(&mut c, 0, frames(cycle_ms() + 60_000));
    // The check engine lamp comes on at 52 s (not at the bulb check);
    // at 60 s it is on already: the bootarg sounds it anyway.
    assert_eq!(
        ms_of(Chime::Warning, &list),
        [7_000, 52_000, 60_000, 52_000 + cycle_ms()]
    );
}

#[test]
fn the_test_schedule_plays_each_chime_once() {
    let t = Triggers {
        test_at: Some(3_000),
        warn_at: [Some(9_000), None, None, None],
    };
    let mut c = Chimes::new(t);
    let list = starts(&mut c, 0, frames(60_000));
    let got: Vec<_> = list
        .iter()
        .map(|s| (s.chime, s.frame / FRAMES_PER_MS))
        .collect();
    assert_eq!(
        got,
        [
            (Chime::Belt, 3_000),
            (Chime::Tick, 4_000),
            (Chime::Tock, 4_333),
            (Chime::Warning, 5_000),
            (Chime::Warning, 9_000),
        ]
    );
    assert!(
        test_schedule::WARNING_MS * FRAMES_PER_MS + Chime::Warning.frames()
            < frames(test_schedule::END_MS)
    );
}

/// Renders `frames` from 0 in pieces of `piece` frames, stereo.
fn render_in_pieces(source: Triggers, total: u64, piece: u64) -> Vec<i16> {
    let mut c = Chimes::new(source);
    let mut out = vec![0i16; 2 * total as usize];
    for (k, chunk) in out.chunks_mut(2 * piece as usize).enumerate() {
        c.render(k as u64 * piece, chunk, 2);
    }
    out
}

#[test]
fn samples_are_deterministic_whatever_the_periods() {
    let t = Triggers {
        test_at: Some(100),
        ..Triggers::default()
    };
    let total = frames(test_schedule::END_MS + 200);
    let reference = render_in_pieces(t, total, 480);
    assert_eq!(reference, render_in_pieces(t, total, 480));
    assert_eq!(reference, render_in_pieces(t, total, 4800));
    assert_eq!(reference, render_in_pieces(t, total, 7));
    assert_eq!(reference, render_in_pieces(t, total, total));
    // Both channels the same, and the chimes there.
    assert!(reference.chunks(2).all(|f| f[0] == f[1]));
    let mono: Vec<i32> = reference.iter().step_by(2).map(|&v| i32::from(v)).collect();
    let belt = frames(100) as usize;
    assert_eq!(
        &mono[belt..belt + alone(Chime::Belt).len()],
        alone(Chime::Belt)
    );
    // Going back starts the scan over: the same samples.
    let mut c = Chimes::new(t);
    let mut late = vec![0i16; 960];
    c.render(frames(2_000), &mut late, 2);
    let mut early = vec![0i16; 960];
    let p = c.render(frames(1_100), &mut early, 2);
    let at = 2 * frames(1_100) as usize;
    assert_eq!(early, reference[at..at + 960]);
    assert_eq!(c.rewinds, 1);
    assert_eq!(
        p.started.as_slice(),
        [Start {
            chime: Chime::Tick,
            frame: frames(1_100)
        }]
    );
}

#[test]
fn the_stream_is_needed_exactly_while_a_chime_sounds() {
    let t = Triggers {
        test_at: Some(1_000),
        warn_at: [Some(1_150), None, None, None],
    };
    let mut c = Chimes::new(t);
    let all = starts(&mut Chimes::new(t), 0, frames(6_000));
    assert_eq!(all.len(), 5);
    let sounding = |f: u64| all.iter().any(|s| s.frame <= f && f < s.end());
    let with_tail = |f: u64| {
        all.iter()
            .any(|s| s.frame <= f && f < s.end() + TAIL_FRAMES)
    };
    let mut one = [0i16; 1];
    for f in 0..frames(6_000) {
        let p = c.render(f, &mut one, 1);
        assert_eq!(p.needed, with_tail(f), "frame {f}");
        assert_eq!(p.sounding, sounding(f), "frame {f}");
        if one[0] != 0 {
            assert!(p.sounding, "frame {f}");
        }
    }
    // Periods: needed exactly when they meet a chime or its tail.
    let mut c = Chimes::new(t);
    let mut period = [0i16; 960];
    for k in 0..600u64 {
        let first = k * 480;
        let p = c.render(first, &mut period, 2);
        let want = all
            .iter()
            .any(|s| s.frame < first + 480 && s.end() + TAIL_FRAMES > first);
        assert_eq!(p.needed, want, "period {k}");
        assert_eq!(c.needed(first, 480), want);
        if !p.needed {
            assert!(period.iter().all(|&v| v == 0));
        }
        for s in p.started.as_slice() {
            assert!((first..first + 480).contains(&s.frame));
        }
    }
}

#[test]
fn a_whole_drive_cycle_stays_below_full_scale() {
    let mut c = Chimes::new(Triggers::default());
    let mut period = [0i16; 4800];
    let mut peak = 0;
    let mut needed = 0;
    for k in 0..cycle_ms() / 100 {
        let p = c.render(k * 4800, &mut period, 1);
        needed += u64::from(p.needed);
        peak = peak.max(period.iter().map(|v| v.unsigned_abs()).max().unwrap());
    }
    assert!(peak > 8000 && peak < 32767, "{peak}");
    // Needed a small part of the time.
    assert!(needed > 20 && needed < cycle_ms() / 100 / 5, "{needed}");
    assert_eq!(c.overflow, 0);
}
