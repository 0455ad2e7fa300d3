use super::*;

/// 5 ms at 48 kHz: the ramp the tests (and the cockpit) use.
const RAMP: u32 = 240;
/// 10 ms at 48 kHz.
const PERIOD: usize = 480;

const MEDIA: u8 = 10;
const CHIME: u8 = 200;

fn source(priority: u8, gain_q16: u32, duck_q16: u32) -> Source {
    Source {
        priority,
        gain_q16,
        duck_q16,
    }
}

/// Interleaved stereo of `frames` frames, every frame (`left`, `right`).
fn dc(frames: usize, left: i16, right: i16) -> Vec<i16> {
    (0..frames).flat_map(|_| [left, right]).collect()
}

/// A deterministic pseudo-random signal covering the whole i16 range.
fn noise(samples: usize, seed: u32) -> Vec<i16> {
    let mut x = seed;
    (0..samples)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 16) as i16
        })
        .collect()
}

fn mix<const N: usize>(
    mixer: &mut Mixer<N>,
    inputs: &[Input<'_>],
    frames: usize,
) -> (Vec<i16>, MixReport<N>) {
    let mut out = vec![0x5555; frames * CHANNELS];
    let report = mixer.mix(inputs, &mut out);
    (out, report)
}

fn left(out: &[i16]) -> Vec<i32> {
    out.iter().step_by(2).map(|&s| s as i32).collect()
}

fn right(out: &[i16]) -> Vec<i32> {
    out.iter().skip(1).step_by(2).map(|&s| s as i32).collect()
}

fn max_step(samples: &[i32]) -> i32 {
    samples
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .max()
        .unwrap_or(0)
}

/// The per-frame bound on a ramp's change of a constant sample `x` (see
/// the module documentation).
fn ramp_bound(x: i32, from: u32, to: u32) -> i32 {
    let per_frame = from.abs_diff(to).div_ceil(RAMP) as u64;
    (x.unsigned_abs() as u64 * per_frame).div_ceil(65536) as i32
}

/// The per-frame bound on a tail from `v`.
fn tail_bound(v: i32) -> i32 {
    v.unsigned_abs().div_ceil(FADE_FRAMES) as i32
}

/// Expected contribution of `x` at gain `g` (Q16, round half up).
fn scaled(x: i32, g: u32) -> i32 {
    ((x as i64 * g as i64 + 32768) >> 16) as i32
}

#[test]
fn unity_pass_through_is_bit_exact() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let mut input = noise(PERIOD * CHANNELS, 7);
    input[0] = i16::MIN;
    input[1] = i16::MAX;
    input[2] = -1;
    input[3] = 1;
    for _ in 0..3 {
        let (out, report) = mix(&mut mixer, &[Input::Playing(&input), Input::Idle], PERIOD);
        assert_eq!(out, input);
        assert_eq!(report.clipped, 0);
        assert!(!report.ducking);
        assert_eq!(report.underruns, 0);
        assert_eq!(report.gains_q16, [UNITY_Q16, UNITY_Q16]);
    }
}

#[test]
fn two_sources_sum_with_saturation() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(MEDIA, UNITY_Q16, 0)],
        RAMP,
    );
    let a = [20_000, -20_000, 1000, -1000, 32_767, -32_768, 100, 0];
    let b = [20_000, -20_000, 2000, -3000, 1, -1, -200, 0];
    let (out, report) = mix(&mut mixer, &[Input::Playing(&a), Input::Playing(&b)], 4);
    assert_eq!(
        out,
        [32_767, -32_768, 3000, -4000, 32_767, -32_768, -100, 0]
    );
    assert_eq!(report.clipped, 4);
    // Saturation is not a state: the next period is clean again.
    let (out, report) = mix(&mut mixer, &[Input::Playing(&b), Input::Playing(&b)], 4);
    assert_eq!(out, [32_767, -32_768, 4000, -6000, 2, -2, -400, 0]);
    assert_eq!(report.clipped, 2);
}

#[test]
fn gain_scales_both_channels_and_rounds() {
    let minus_6 = db_to_q16(-60);
    let mut mixer = Mixer::<1>::new(&[source(MEDIA, minus_6, 0)], RAMP);
    let input = noise(PERIOD * CHANNELS, 3);
    let (out, _) = mix(&mut mixer, &[Input::Playing(&input)], PERIOD);
    for (o, i) in out.iter().zip(&input) {
        assert_eq!(*o as i32, scaled(*i as i32, minus_6));
    }
}

/// The cockpit case: media plays, a chime starts and ducks it by −20 dB,
/// the chime ends and the media comes back.
#[test]
fn higher_priority_ducks_by_the_configured_amount_then_restores() {
    let duck = db_to_q16(-200);
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, duck), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let media = dc(PERIOD, 16_000, -12_000);
    let silence = dc(PERIOD, 0, 0);

    let (out, report) = mix(&mut mixer, &[Input::Playing(&media), Input::Idle], PERIOD);
    assert_eq!(out, media);
    assert!(!report.ducking);

    // The chime (silent here, so the media alone is measured) starts: the
    // duck begins at the period's first frame.
    let inputs = [Input::Playing(&media), Input::Playing(&silence)];
    let (out, report) = mix(&mut mixer, &inputs, PERIOD);
    assert!(report.ducking);
    assert_eq!(report.gains_q16, [duck, UNITY_Q16]);
    for channel in [left(&out), right(&out)] {
        assert!(channel[0].abs() < [16_000, 12_000][(channel[0] < 0) as usize]);
        // Monotonic toward the ducked level, in bounded steps.
        assert!(channel.windows(2).all(|w| w[1].abs() <= w[0].abs()));
    }
    let l = left(&out);
    let r = right(&out);
    assert!(max_step(&l) <= ramp_bound(16_000, UNITY_Q16, duck));
    assert!(max_step(&r) <= ramp_bound(-12_000, UNITY_Q16, duck));
    // Both channels carry the same gain at every frame.
    for f in 0..PERIOD {
        let g = l[f] as f64 / 16_000.0;
        assert!(
            (r[f] as f64 / -12_000.0 - g).abs() < 2.0 / 12_000.0,
            "frame {f}"
        );
    }
    // After the ramp: exactly the configured amount, within a count.
    for f in RAMP as usize - 1..PERIOD {
        assert!(
            (l[f] - scaled(16_000, duck)).abs() <= 1,
            "frame {f}: {}",
            l[f]
        );
        assert!(
            (r[f] - scaled(-12_000, duck)).abs() <= 1,
            "frame {f}: {}",
            r[f]
        );
    }
    assert!((l[RAMP as usize - 1] as f64 / 16_000.0 - 0.1).abs() < 1e-4);

    // Still ducked while the chime plays.
    let (out, report) = mix(&mut mixer, &inputs, PERIOD);
    assert!(report.ducking);
    assert!(left(&out).iter().all(|&s| (s - 1600).abs() <= 1));

    // The chime ends: the media ramps back up to exactly unity.
    let (out, report) = mix(&mut mixer, &[Input::Playing(&media), Input::Idle], PERIOD);
    assert!(!report.ducking);
    assert_eq!(report.gains_q16[0], UNITY_Q16);
    let l = left(&out);
    assert!(l[0] > 1601 && l[0] < 16_000);
    assert!(l.windows(2).all(|w| w[1] >= w[0]));
    assert!(max_step(&l) <= ramp_bound(16_000, duck, UNITY_Q16));
    assert!(l[RAMP as usize - 1..].iter().all(|&s| s == 16_000));
}

#[test]
fn the_chime_itself_starts_at_its_first_frame() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let chime = noise(PERIOD * CHANNELS, 11);
    let silence = dc(PERIOD, 0, 0);
    let (out, _) = mix(&mut mixer, &[Input::Playing(&silence), Input::Idle], PERIOD);
    assert!(out.iter().all(|&s| s == 0));
    let (out, _) = mix(
        &mut mixer,
        &[Input::Playing(&silence), Input::Playing(&chime)],
        PERIOD,
    );
    assert_eq!(out, chime);
}

#[test]
fn equal_priorities_do_not_duck() {
    let mut mixer = Mixer::<3>::new(
        &[
            source(MEDIA, UNITY_Q16, 0),
            source(MEDIA, UNITY_Q16, 0),
            source(MEDIA - 1, UNITY_Q16, 0),
        ],
        RAMP,
    );
    let a = dc(PERIOD, 1000, 1000);
    let b = dc(PERIOD, 2000, 2000);
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&a), Input::Playing(&b)],
        PERIOD,
    );
    assert!(out.iter().all(|&s| s == 3000));
    assert!(!report.ducking);
    // The idle third source (lower) would be muted if it started now,
    // and it starts at that gain: no burst at unity first.
    assert_eq!(report.gains_q16, [UNITY_Q16, UNITY_Q16, 0]);
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&a), Input::Playing(&b), Input::Playing(&a)],
        PERIOD,
    );
    assert!(report.ducking);
    assert_eq!(report.gains_q16, [UNITY_Q16, UNITY_Q16, 0]);
    assert!(out.iter().all(|&s| s == 3000));
}

#[test]
fn duck_zero_mutes() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let media = dc(PERIOD, 32_767, -32_768);
    let silence = dc(PERIOD, 0, 0);
    mix(&mut mixer, &[Input::Playing(&media)], PERIOD);
    let (out, _) = mix(
        &mut mixer,
        &[Input::Playing(&media), Input::Playing(&silence)],
        PERIOD,
    );
    let (l, r) = (left(&out), right(&out));
    let bound = ramp_bound(-32_768, UNITY_Q16, 0);
    assert_eq!(bound, 137, "the documented bound");
    assert!(max_step(&l) <= bound && max_step(&r) <= bound);
    assert!(l[RAMP as usize - 1..].iter().all(|&s| s == 0));
    assert!(r[RAMP as usize - 1..].iter().all(|&s| s == 0));
    assert!(l[..RAMP as usize - 1].iter().all(|&s| s > 0));
}

/// A ramp interrupted halfway (a chime shorter than the ramp) turns back
/// from where it is, never stepping.
#[test]
fn a_short_chime_turns_the_ramp_around_without_a_step() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let media = dc(PERIOD, 30_000, 30_000);
    let silence = dc(PERIOD, 0, 0);
    let mut l = Vec::new();
    let (out, _) = mix(&mut mixer, &[Input::Playing(&media)], 100);
    l.extend(left(&out));
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&media), Input::Playing(&silence)],
        100,
    );
    l.extend(left(&out));
    let turning_gain = report.gains_q16[0];
    assert!(turning_gain > 0 && turning_gain < UNITY_Q16);
    for _ in 0..3 {
        let (out, _) = mix(&mut mixer, &[Input::Playing(&media), Input::Idle], 100);
        l.extend(left(&out));
    }
    assert!(max_step(&l) <= ramp_bound(30_000, UNITY_Q16, 0));
    // Down for 100 frames, then back up, at the full ramp rate.
    assert!(l[100..200].windows(2).all(|w| w[1] <= w[0]));
    assert!(l[200..].windows(2).all(|w| w[1] >= w[0]));
    assert!(l[200 + RAMP as usize - 1..].iter().all(|&s| s == 30_000));
    assert!(l[200 + RAMP as usize - 2] < 30_000);
}

#[test]
fn a_source_starting_under_a_chime_starts_ducked() {
    let duck = db_to_q16(-120);
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, duck), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let media = dc(PERIOD, 20_000, 20_000);
    let silence = dc(PERIOD, 0, 0);
    mix(&mut mixer, &[Input::Idle, Input::Playing(&silence)], PERIOD);
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&media), Input::Playing(&silence)],
        PERIOD,
    );
    assert!(report.ducking);
    assert!(out.iter().all(|&s| s as i32 == scaled(20_000, duck)));
}

#[test]
fn idle_fades_from_the_last_sample() {
    let mut mixer = Mixer::<1>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    let media = dc(PERIOD, 32_767, -32_768);
    let (first, _) = mix(&mut mixer, &[Input::Playing(&media)], PERIOD);
    let (out, report) = mix(&mut mixer, &[Input::Idle], PERIOD);
    assert_eq!(report.underruns, 0);
    let mut l = left(&first);
    l.extend(left(&out));
    let mut r = right(&first);
    r.extend(right(&out));
    assert_eq!(tail_bound(-32_768), 342, "the documented bound");
    assert!(max_step(&l) <= tail_bound(32_767));
    assert!(max_step(&r) <= tail_bound(-32_768));
    let fade = FADE_FRAMES as usize;
    assert!(l[PERIOD..PERIOD + fade - 1].iter().all(|&s| s > 0));
    assert!(l[PERIOD..].windows(2).all(|w| w[1] <= w[0]));
    assert!(r[PERIOD..].windows(2).all(|w| w[1] >= w[0]));
    assert!(l[PERIOD + fade - 1..].iter().all(|&s| s == 0));
    assert!(r[PERIOD + fade - 1..].iter().all(|&s| s == 0));
    // And stays silent.
    let (out, _) = mix(&mut mixer, &[Input::Idle], PERIOD);
    assert!(out.iter().all(|&s| s == 0));
}

#[test]
fn underrun_fades_mid_period_and_resumes() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(MEDIA, UNITY_Q16, 0)],
        RAMP,
    );
    let short = dc(200, 20_000, -20_000);
    let steady = dc(PERIOD, 1000, 1000);
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&short), Input::Playing(&steady)],
        PERIOD,
    );
    assert_eq!(report.underruns, 1);
    let l = left(&out);
    assert!(l[..200].iter().all(|&s| s == 21_000));
    assert!(max_step(&l) <= tail_bound(20_000));
    assert!(l[200] < 21_000 && l[200] > 20_000);
    assert!(
        l[200 + FADE_FRAMES as usize - 1..]
            .iter()
            .all(|&s| s == 1000)
    );
    let r = right(&out);
    assert!(max_step(&r) <= tail_bound(-20_000));
    assert!(
        r[200 + FADE_FRAMES as usize - 1..]
            .iter()
            .all(|&s| s == 1000)
    );

    // An empty period of a running stream is an underrun from frame 0;
    // the stream still counts as playing.
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&[]), Input::Playing(&steady)],
        PERIOD,
    );
    assert_eq!(report.underruns, 1);
    assert!(out.iter().all(|&s| s == 1000));
}

#[test]
fn a_stream_resuming_during_its_tail_adds_to_it() {
    let mut mixer = Mixer::<1>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    let media = dc(PERIOD, 10_000, 10_000);
    let mut l = Vec::new();
    let (out, _) = mix(&mut mixer, &[Input::Playing(&media[..2 * 100])], 150);
    l.extend(left(&out));
    let (out, _) = mix(&mut mixer, &[Input::Playing(&media)], 150);
    l.extend(left(&out));
    // The tail from frame 100 runs until 196; the stream is back at 150.
    assert!(max_step(&l[..150]) <= tail_bound(10_000));
    let tail_at_150 = 10_000 * (FADE_FRAMES as i32 - 51) / FADE_FRAMES as i32;
    assert_eq!(l[150], 10_000 + tail_at_150);
    assert!(
        l[100 + FADE_FRAMES as usize - 1..]
            .iter()
            .all(|&s| s == 10_000)
    );
}

/// A stream that stops again while the tail of its previous stop still
/// decays folds that tail into the new one: neither steps.
#[test]
fn a_second_stop_during_a_tail_carries_it_on() {
    let mut mixer = Mixer::<1>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    let media = dc(PERIOD, 10_000, 10_000);
    let mut l = Vec::new();
    // Stops at frame 10, restarts at 40 (its own step, not the mixer's),
    // stops again at 70 while the first tail is still at 36/96.
    let stopped = &media[..0];
    for period in [
        &media[..2 * 10],
        &media[..2 * 30],
        stopped,
        stopped,
        stopped,
    ] {
        let (out, _) = mix(&mut mixer, &[Input::Playing(period)], 40);
        l.extend(left(&out));
    }
    assert_eq!(l[..10], [10_000; 10]);
    assert!(max_step(&l[..40]) <= tail_bound(10_000));
    let before = l[69];
    assert_eq!(before, 10_000 + 10_000 * 36 / 96, "the first tail is there");
    assert!(max_step(&l[69..]) <= tail_bound(before), "{l:?}");
    assert!(l[69..].windows(2).all(|w| w[1] <= w[0]));
    assert!(l[70 + FADE_FRAMES as usize - 1..].iter().all(|&s| s == 0));
}

#[test]
fn a_dropped_source_fades_then_stays_silent_until_idle() {
    let mut mixer = Mixer::<2>::new(
        &[source(MEDIA, UNITY_Q16, 0), source(CHIME, UNITY_Q16, 0)],
        RAMP,
    );
    let media = dc(PERIOD, 5000, 5000);
    let stale = dc(PERIOD, 25_000, -25_000);
    let silence = dc(PERIOD, 0, 0);
    // The chime's partition plays, ducking (muting) the media, then dies.
    mix(
        &mut mixer,
        &[Input::Playing(&media), Input::Playing(&stale)],
        PERIOD,
    );
    mixer.drop_source(1);
    mixer.drop_source(7);
    // Its stale buffer is still presented: it fades out regardless, and
    // no longer ducks the media.
    let (out, report) = mix(
        &mut mixer,
        &[Input::Playing(&media), Input::Playing(&stale)],
        PERIOD,
    );
    assert!(!report.ducking);
    let r = right(&out);
    assert!(r[0] < 0 && r[0] > -25_000);
    assert!(max_step(&r) <= tail_bound(-25_000) + ramp_bound(5000, 0, UNITY_Q16));
    assert!(r[RAMP as usize - 1..].iter().all(|&s| s == 5000));
    // It stays silent while its input is not idle...
    let (out, _) = mix(
        &mut mixer,
        &[Input::Playing(&silence), Input::Playing(&stale)],
        PERIOD,
    );
    assert!(out.iter().all(|&s| s == 0));
    // ...until its partition has come back and starts a new stream.
    let (out, _) = mix(&mut mixer, &[Input::Playing(&silence), Input::Idle], PERIOD);
    assert!(out.iter().all(|&s| s == 0));
    let (out, _) = mix(
        &mut mixer,
        &[Input::Playing(&silence), Input::Playing(&stale)],
        PERIOD,
    );
    assert_eq!(out, stale);
}

/// A dropped source fades over [`FADE_FRAMES`] even when periods are
/// shorter than that.
#[test]
fn a_tail_spans_short_periods() {
    let mut mixer = Mixer::<1>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    let media = dc(32, -32_768, 32_767);
    let (out, _) = mix(&mut mixer, &[Input::Playing(&media)], 32);
    let mut l = left(&out);
    mixer.drop_source(0);
    for _ in 0..4 {
        let (out, _) = mix(&mut mixer, &[Input::Playing(&media)], 32);
        l.extend(left(&out));
    }
    assert!(max_step(&l) <= tail_bound(-32_768));
    assert!(l[32..].windows(2).all(|w| w[1] >= w[0]));
    assert!(l[32 + FADE_FRAMES as usize - 2] < 0);
    assert!(l[32 + FADE_FRAMES as usize - 1..].iter().all(|&s| s == 0));
}

#[test]
fn period_lengths_do_not_change_the_output() {
    let duck = db_to_q16(-150);
    let sources = [
        source(MEDIA, db_to_q16(-30), duck),
        source(CHIME, UNITY_Q16, 0),
    ];
    let media = noise(3 * PERIOD * CHANNELS, 5);
    let chime = noise(2 * PERIOD * CHANNELS, 9);

    // The chime starts at frame 480 and stops at frame 960 in both runs.
    let run = |cuts: &[usize]| {
        let mut mixer = Mixer::<2>::new(&sources, RAMP);
        let mut out = vec![0; 3 * PERIOD * CHANNELS];
        let mut start = 0;
        for &end in cuts {
            let chime_on = (PERIOD..2 * PERIOD).contains(&start);
            let m = Input::Playing(&media[start * 2..end * 2]);
            let c = if chime_on {
                Input::Playing(&chime[(start - PERIOD) * 2..(end - PERIOD) * 2])
            } else {
                Input::Idle
            };
            mixer.mix(&[m, c], &mut out[start * 2..end * 2]);
            start = end;
        }
        out
    };
    let whole = run(&[480, 960, 1440]);
    assert_eq!(run(&[100, 480, 700, 701, 960, 1000, 1440]), whole);
    assert_eq!(run(&[480, 512, 544, 960, 1440]), whole);
    // Determinism: the same inputs, the same bits.
    assert_eq!(run(&[480, 960, 1440]), whole);
}

#[test]
fn full_mixer_ducks_every_lower_source() {
    let duck = db_to_q16(-60);
    let sources = [
        source(1, UNITY_Q16, duck),
        source(2, UNITY_Q16, duck),
        source(3, UNITY_Q16, duck),
        source(4, UNITY_Q16, duck),
        source(255, UNITY_Q16, 0),
    ];
    let mut mixer = Mixer::<4>::new(&sources, 0);
    assert_eq!(mixer.len(), 4);
    let a = dc(8, 1000, 1000);
    let inputs = [Input::Playing(&a); 6];
    let (out, report) = mix(&mut mixer, &inputs, 8);
    assert!(report.ducking);
    assert_eq!(report.gains_q16, [duck, duck, duck, UNITY_Q16]);
    // The fifth source (and sixth input) is not there: it ducks no one.
    assert!(
        out.iter()
            .all(|&s| s as i32 == 1000 + 3 * scaled(1000, duck))
    );
}

#[test]
fn odd_lengths_and_empty_mixers_are_harmless() {
    let mut empty = Mixer::<0>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    assert!(empty.is_empty());
    let mut out = [7i16; 5];
    let report = empty.mix(&[Input::Idle], &mut out);
    assert_eq!(out, [0; 5]);
    assert_eq!(report.clipped, 0);

    let mut mixer = Mixer::<1>::new(&[source(MEDIA, UNITY_Q16, 0)], RAMP);
    let mut out = [7i16; 5];
    mixer.mix(&[Input::Playing(&[1, 2, 3, 4, 5])], &mut out);
    assert_eq!(out, [1, 2, 3, 4, 0]);
}

#[test]
fn gains_are_clamped() {
    let mut mixer = Mixer::<2>::new(
        &[
            source(MEDIA, u32::MAX, u32::MAX),
            source(CHIME, u32::MAX, 0),
        ],
        0,
    );
    let a = dc(4, i16::MIN, i16::MAX);
    let (out, report) = mix(&mut mixer, &[Input::Playing(&a), Input::Playing(&a)], 4);
    assert_eq!(report.gains_q16, [MAX_GAIN_Q16, MAX_GAIN_Q16]);
    assert_eq!(out, a);
    assert_eq!(report.clipped, 8);
}

#[test]
fn db_to_q16_matches_f64_to_the_rounding() {
    const _: () = assert!(db_to_q16(0) == UNITY_Q16);
    for tenths in -960..=120 {
        let exact = 65536.0 * 10f64.powf(tenths as f64 / 200.0);
        let got = db_to_q16(tenths) as f64;
        // Correctly rounded (the tables are good to 2^-33).
        assert!(
            (got - exact).abs() <= 0.5 + 1e-6,
            "{tenths}: {got} vs {exact}"
        );
        // So within 0.01 dB wherever Q16 can say so (above 435 counts).
        if exact >= 435.0 {
            let error_db = 20.0 * (got / exact).log10();
            assert!(error_db.abs() <= 0.01, "{tenths}: {error_db} dB");
        }
    }
    assert_eq!(db_to_q16(-60), 32_846); // 0.501187 × 65536
    assert_eq!(db_to_q16(120), 260_904); // +12 dB, 3.98107
    assert_eq!(db_to_q16(200), 655_360);
    assert_eq!(db_to_q16(-200), 6_554);
    assert_eq!(db_to_q16(-960), 1);
    assert_eq!(db_to_q16(-2000), 0);
    assert_eq!(db_to_q16(i32::MIN), 0);
    assert_eq!(db_to_q16(964), u32::MAX);
    assert_eq!(db_to_q16(i32::MAX), u32::MAX);
    // The largest gain that fits: 65536 × 10^(963/200) = 4.28e9.
    assert_eq!(db_to_q16(963), 4_280_356_390);
}
