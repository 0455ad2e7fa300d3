//! The audio mediator: what the partitions' streams became in the physical
//! output, judged from the WAV QEMU recorded (see `crate::wav`).
//!
//! The hypervisor keeps the physical stream fed without a break (silence
//! when nobody plays), so the recording is a timeline of mixer periods:
//! period `p` (the hypervisor's `in period p` lines) starts at frame
//! `p * PERIOD` of the file.

use crate::scenario::{Scenario, numbers};
use crate::wav::{Signal, Wav};

/// Frames of one mixer period (10 ms at 48 kHz, the configs' default).
const PERIOD: usize = 480;
/// The test configs' amplitude (the `snd` program's default): a tone's
/// level is this fraction of full scale.
const AMP: f64 = 8000.0 / 32768.0;
/// How far the ducked level may be from the configured one, and a
/// restored level from the original: dB.
const LEVEL_TOLERANCE_DB: f64 = 1.0;
/// Where a tone's onset may be found from the frame it is due at (the
/// detector's own error is a few frames).
const ONSET_TOLERANCE: usize = 24;
/// The largest step between consecutive samples that is still music in
/// `audio-mix`: the steepest slopes of both tones together (8000 × 2π ×
/// (440 + 1000) / 48000 = 1508) plus the mixer's largest ramp step at that
/// amplitude (8000 × 2.1e-3 = 17). A click (a sample stepping to or from
/// silence, a period out of place) is far steeper.
const MIX_MAX_STEP: u32 = 1530;

const STREAM_STARTED: &str =
    r"^\[hv\] INFO  audio speaker: partition (\S+)'s stream started: in period (\d+),";
const STREAM_STOPPED: &str =
    r"^\[hv\] INFO  audio speaker: partition (\S+)'s stream stopped before period (\d+)$";

/// The period partition `who`'s stream started in (the `n`-th time).
fn started_period(lines: &[String], who: &str, n: usize) -> Option<usize> {
    let pattern =
        format!(r"^\[hv\] INFO  audio speaker: partition {who}'s stream started: in period (\d+),");
    numbers(lines, &pattern).get(n).map(|&p| p as usize)
}

/// The period before which partition `who`'s stream stopped (the first
/// time).
fn stopped_period(lines: &[String], who: &str) -> Option<usize> {
    stopped_period_n(lines, who, 0)
}

/// dB of `level` against `reference`.
fn db(level: f64, reference: f64) -> f64 {
    20.0 * (level / reference).log10()
}

/// The IVI plays a 440 Hz tone for ever; the cluster's 1 kHz chime of
/// 300 ms comes at 1.5 s (`audio.toml`). In the WAV: the chime starts
/// exactly at the first period mixed after its START; the IVI is 20 dB
/// lower (±1 dB) while the cluster's stream runs and back at its level
/// after; nothing clips; no step between samples is steeper than the two
/// tones' own slopes and the mixer's ramp allow; the IVI's tone has no
/// gap.
pub(super) fn audio_mix() -> Scenario {
    Scenario::new("audio-mix", "config/qemu-virt/tests/audio.toml")
        .timeout(60)
        .expect(r"^\[hv\] INFO  audio speaker: virtio-sound at 0xa003400, 48000 Hz S16 stereo, ")
        .expect(r"^\[hv\] INFO  audio speaker: started at counter \d+ with \d+ periods queued$")
        .expect(r"^\[hv\] INFO  partition cluster: virtio-snd in slot 0: audio priority 200, ")
        .expect(r"^\[hv\] INFO  partition ivi: virtio-snd in slot 0: audio priority 10, gain 0 dB, -20 dB while ducked$")
        .expect(r"^\[ivi\] snd: start at counter \d+$")
        .expect(r"^\[cluster\] snd: start at counter \d+$")
        .expect(r"^\[cluster\] snd: done periods=30 underruns=0$")
        .expect_exactly(1, &STREAM_STARTED.replace(r"(\S+)", "cluster"))
        .expect_none(r"snd: error|snd: xrun|\[hv\] (WARN|ERROR)")
        // Then more of the IVI alone (wall time is virtual time here).
        .stop_on(&STREAM_STOPPED.replace(r"(\S+)", "cluster"))
        .settle(700)
        .check_audio("the chime over the ducked IVI", |wav, lines| {
            let left = wav.channel(0);
            let chime = started_period(lines, "cluster", 0).ok_or("no chime period")? * PERIOD;
            let stopped = stopped_period(lines, "cluster").ok_or("no stop period")? * PERIOD;
            let ivi = started_period(lines, "ivi", 0).ok_or("no IVI period")? * PERIOD;
            onset_at(&left, 1000.0, chime)?;
            // The IVI alone, then under the chime (after the 5 ms ramp),
            // then once the cluster's stream stopped (after the ramp back).
            let before = left.tone_level(chime - 4800, 4800, 440.0);
            let under = left.tone_level(chime + 960, 9600, 440.0);
            let after = left.tone_level(stopped + 960, 9600, 440.0);
            let chime_level = left.tone_level(chime + 960, 9600, 1000.0);
            for (what, level, want) in [
                ("the IVI alone", before, AMP),
                ("the chime", chime_level, AMP),
                ("the IVI under the chime", under, AMP / 10.0),
                ("the IVI after the chime", after, AMP),
            ] {
                let off = db(level, want);
                if off.abs() > LEVEL_TOLERANCE_DB {
                    return Err(format!(
                        "{what}: {:.2} dB from its expected level ({level:.4} of full scale)",
                        off
                    ));
                }
            }
            let clipped = left.clipped(..);
            if clipped > 0 {
                return Err(format!("{clipped} clipped samples"));
            }
            if let Some((at, step)) = left.max_step_at(ivi..)
                && step > MIX_MAX_STEP
            {
                return Err(format!(
                    "a step of {step} at frame {at} ({:.1} ms): a click",
                    left.ms(at)
                ));
            }
            let gaps = left.silent_gaps(ivi + PERIOD.., 100, 48);
            if let Some(gap) = gaps.first() {
                return Err(format!("silence in the IVI's tone at frames {gap:?}"));
            }
            Ok(())
        })
}

/// `freq` starts at frame `at` of `signal` (within [`ONSET_TOLERANCE`]).
fn onset_at(signal: &Signal<'_>, freq: f64, at: usize) -> Result<(), String> {
    let from = at.saturating_sub(10 * PERIOD);
    let found = signal
        .first_tone(freq, PERIOD / 2, from, AMP / 2.0)
        .ok_or(format!("no {freq} Hz tone after frame {from}"))?;
    if found.abs_diff(at) > ONSET_TOLERANCE {
        return Err(format!(
            "the {freq} Hz tone starts at frame {found}, not at its period's start {at}"
        ));
    }
    Ok(())
}

/// The onsets of `freq` in `signal` from frame `from`: each tone burst's
/// first frame.
fn onsets(signal: &Signal<'_>, freq: f64, from: usize) -> Vec<usize> {
    let mut found = Vec::new();
    let mut at = from;
    while let Some(onset) = signal.first_tone(freq, PERIOD / 2, at, AMP / 2.0) {
        found.push(onset);
        // Past this burst (the patterns' bursts are 100 ms).
        at = onset + 150 * 48;
    }
    found
}

/// The cluster's ticks (1 kHz, 100 ms every 500 ms) are exactly 24000
/// frames apart from the first to the last in `wav`, and there are at
/// least `min` of them.
fn ticks_on_schedule(wav: &Wav, first: usize, min: usize) -> Result<(), String> {
    let left = wav.channel(0);
    let ticks = onsets(&left, 1000.0, first.saturating_sub(PERIOD));
    if ticks.len() < min {
        return Err(format!("{} ticks, expected at least {min}", ticks.len()));
    }
    onset_at(&left, 1000.0, first)?;
    for pair in ticks.windows(2) {
        let gap = pair[1] - pair[0];
        if gap.abs_diff(24_000) > ONSET_TOLERANCE {
            return Err(format!(
                "ticks at frames {} and {} are {gap} frames apart, not 24000",
                pair[0], pair[1]
            ));
        }
    }
    Ok(())
}

/// The IVI (a 440 Hz tone for ever) faults mid-song and restarts while
/// the cluster's chime pattern (a 1 kHz tick of 100 ms every 500 ms)
/// plays (`audio-restart.toml`): the ticks are exactly 500 ms apart in the
/// WAV from the first to the last, across the fault; the IVI's tone is in
/// the WAV before the fault and again after its restart; nothing clips.
pub(super) fn audio_restart() -> Scenario {
    Scenario::new("audio-restart", "config/qemu-virt/tests/audio-restart.toml")
        .timeout(60)
        .expect(r"^\[ivi\] snd: faulting at counter \d+$")
        .expect(r"^\[hv\] WARN  partition ivi: restarting \(restart #1\)$")
        .expect(r"^\[ivi\] snd: restarts 1$")
        .expect_exactly(2, &STREAM_STARTED.replace(r"(\S+)", "ivi"))
        .expect_exactly(1, &STREAM_STARTED.replace(r"(\S+)", "cluster"))
        .expect_none(r"snd: error|snd: xrun|\[hv\] ERROR|\[cluster\] .*fault")
        // Then a second of the restarted IVI's tone.
        .stop_on(r"^\[ivi\] snd: restarts 1$")
        .settle(1500)
        .check_audio(
            "the chime pattern across the IVI's restart",
            |wav, lines| {
                let left = wav.channel(0);
                let first = started_period(lines, "cluster", 0).ok_or("no chime period")? * PERIOD;
                let again = started_period(lines, "ivi", 1).ok_or("no restart period")? * PERIOD;
                ticks_on_schedule(wav, first, 6)?;
                let ivi = started_period(lines, "ivi", 0).ok_or("no IVI period")? * PERIOD;
                for (what, at) in [("before the fault", ivi), ("after the restart", again)] {
                    let level = left.tone_level(at + 2 * PERIOD, 4800, 440.0);
                    if db(level, AMP).abs() > LEVEL_TOLERANCE_DB {
                        return Err(format!("the IVI's tone {what}: {level:.4} of full scale"));
                    }
                }
                let clipped = left.clipped(..);
                if clipped > 0 {
                    return Err(format!("{clipped} clipped samples"));
                }
                Ok(())
            },
        )
}

/// A hostile virtio-snd guest (`sndfuzz`) beside the cluster's chime
/// pattern (`hostile-snd.toml`): it gets to its end (every step answered,
/// its device reset where it asked for one), the hypervisor says which of
/// its requests broke its device, and the cluster's ticks are exactly on
/// schedule in the WAV all along.
pub(super) fn hostile_snd() -> Scenario {
    Scenario::new("hostile-snd", "config/qemu-virt/tests/hostile-snd.toml")
        .timeout(90)
        .expect(r"^\[hostile\] sndfuzz: done$")
        .expect(r"^\[hostile\] sndfuzz: sane play: ok")
        .expect_none(r"\[cluster\] snd: (error|xrun)|\[hv\] ERROR|panic|PANIC")
        // Then two more of the cluster's ticks.
        .stop_on(r"^\[hostile\] sndfuzz: done$")
        .settle(1200)
        .check_audio(
            "the cluster's ticks through the hostile guest's attack",
            |wav, lines| {
                let first = started_period(lines, "cluster", 0).ok_or("no chime period")? * PERIOD;
                ticks_on_schedule(wav, first, 4)
            },
        )
}

/// The tone sequence and length `audio-linux.toml` has the IVI play.
const LINUX_TONES: &str = "440:500,660:500,0:250,880:500";
const LINUX_SECONDS: usize = 3;

/// Stock Linux plays through ALSA (`ivi-tool play`, the kernel's PCM
/// interface) and its virtio_snd driver, alone on the output
/// (`audio-linux.toml`): the 3 s of tones are in the WAV sample for sample
/// on both channels, from the first frame of the period the hypervisor
/// mixed first after the stream's START (so: no gap, no sample changed).
pub(super) fn audio_linux() -> Scenario {
    Scenario::new("audio-linux", "config/qemu-virt/tests/audio-linux.toml")
        .timeout(240)
        .expect(r"^\[ivi\] .*ivi-tool: play: /dev/snd/pcmC\d+D\d+p 48000 Hz 2 ch period \d+ buffer \d+$")
        .expect(r"^\[ivi\] .*ivi-tool: play: started$")
        .expect(r"ivi-tool: play: done frames=144000 underruns=0$")
        .expect_exactly(1, &STREAM_STARTED.replace(r"(\S+)", "ivi"))
        .expect_none(r"ivi-tool: play: (error|underrun)|\[hv\] (WARN|ERROR)")
        .stop_on(r"ivi-tool: play: done frames=\d+")
        .settle(300)
        .check_audio("the IVI's tones, sample for sample", |wav, lines| {
            let start = started_period(lines, "ivi", 0).ok_or("no IVI period")? * PERIOD;
            let tones = ivi_tool::play::parse_tones(LINUX_TONES)?;
            let mut generator = ivi_tool::play::ToneGenerator::new(&tones, 48_000, 0.25)?;
            let frames = LINUX_SECONDS * 48_000;
            if wav.frames() < start + frames {
                return Err(format!(
                    "the recording has {} frames, the tones end at frame {}",
                    wav.frames(),
                    start + frames
                ));
            }
            for k in 0..frames {
                let want = generator.next_sample();
                for c in 0..2 {
                    let got = wav.channel(c).samples[start + k];
                    if got != want {
                        return Err(format!(
                            "channel {c}, frame {k} of the tones (file frame {}): {got}, not {want}",
                            start + k
                        ));
                    }
                }
            }
            Ok(())
        })
}

/// The cluster's chimes (`cluster.chime_test`) over the IVI's tone
/// (`cluster-chimes.toml`): each chime starts at the first frame of the
/// period the hypervisor mixed first after its START, with its own
/// frequencies (the belt's 1 kHz then, 150 ms later, 750 Hz; the tick's
/// 2.5 kHz; the tock's 1.6 kHz; the warning's 2 kHz); the IVI is 20 dB
/// lower under the belt chime and back after the last chime; nothing
/// clips.
pub(super) fn cluster_chimes() -> Scenario {
    Scenario::new("cluster-chimes", "config/qemu-virt/tests/cluster-chimes.toml")
        .timeout(60)
        .expect(r"^\[cluster\] cluster: audio: device at 0x[0-9a-f]+ \(stereo 48000 Hz, 10 ms periods\)$")
        .expect(r"^\[cluster\] cluster: chime belt at counter \d+ \(frame \d+\)$")
        .expect(r"^\[cluster\] cluster: chime tick at counter \d+ \(frame \d+\)$")
        .expect(r"^\[cluster\] cluster: chime tock at counter \d+ \(frame \d+\)$")
        .expect(r"^\[cluster\] cluster: chime warning at counter \d+ \(frame \d+\)$")
        .expect_exactly(4, &STREAM_STARTED.replace(r"(\S+)", "cluster"))
        .expect_exactly(4, &STREAM_STOPPED.replace(r"(\S+)", "cluster"))
        .expect_none(r"cluster: audio: (error|underrun)|cluster: chime \S+ missed|snd: error|\[hv\] (WARN|ERROR)")
        .stop_when("the cluster's fourth chime stopped", |lines| {
            crate::scenario::count(lines, &STREAM_STOPPED.replace(r"(\S+)", "cluster")) >= 4
        })
        .settle(500)
        .check_audio("the chimes where they were mixed, over the ducked IVI", |wav, lines| {
            let left = wav.channel(0);
            let run = |n: usize| -> Result<usize, String> {
                Ok(started_period(lines, "cluster", n).ok_or(format!("no chime run {n}"))? * PERIOD)
            };
            // The chimes' amplitudes are 6000 to 12000 of 32768: a tone
            // counts from a level of 0.08. Each fades in (the belt's and
            // the warning's over 3 ms, the ticks over 0.5 ms: no click),
            // and a faded-in tone's onset is found half-way up its fade,
            // here within 1 ms: the IVI's tone, as loud as the chime until
            // its duck ramps down, blurs the fade's half-way point more
            // than an abrupt onset's (see `audio-mix` for that, to a few
            // frames).
            // `window` frames tell `freq` from the other sounds then (the
            // belt's two tones are 250 Hz apart: a whole period).
            let onset = |freq: f64, at: usize, fade: usize, window: usize| -> Result<(), String> {
                let from = at.saturating_sub(2 * PERIOD);
                let found = left
                    .first_tone(freq, window, from, 0.08)
                    .ok_or(format!("no {freq} Hz after frame {from}"))?;
                let expected = at + fade / 2;
                if found.abs_diff(expected) > 2 * ONSET_TOLERANCE {
                    return Err(format!(
                        "{freq} Hz starts at frame {found}, not {expected} ({at}, the period's start, and half its {fade}-frame fade)"
                    ));
                }
                Ok(())
            };
            let belt = run(0)?;
            onset(1000.0, belt, 144, PERIOD / 4)?;
            // The second tone follows the first without a fade.
            onset(750.0, belt + 150 * 48, 0, PERIOD)?;
            // A tick or tock is a 5 ms decaying burst, too short for an
            // onset search: it must be in the first 5 ms of its period and
            // nowhere in the period before.
            let burst = |freq: f64, at: usize| -> Result<(), String> {
                let (before, during) = (
                    left.tone_level(at - PERIOD, PERIOD, freq),
                    left.tone_level(at, PERIOD / 2, freq),
                );
                if before > 0.005 || during < 0.02 {
                    return Err(format!(
                        "the {freq} Hz burst due at frame {at}: level {before:.4} in the period before, {during:.4} in its first 5 ms"
                    ));
                }
                Ok(())
            };
            burst(2500.0, run(1)?)?;
            burst(1600.0, run(2)?)?;
            onset(2000.0, run(3)?, 144, PERIOD / 4)?;
            let alone = left.tone_level(belt - 4800, 4800, 440.0);
            let under = left.tone_level(belt + 960, 4800, 440.0);
            let last = stopped_period_n(lines, "cluster", 3).ok_or("no last stop")? * PERIOD;
            let after = left.tone_level(last + 960, 4800, 440.0);
            for (what, level, want) in [
                ("the IVI before the chimes", alone, AMP),
                ("the IVI under the belt chime", under, AMP / 10.0),
                ("the IVI after the chimes", after, AMP),
            ] {
                let off = db(level, want);
                if off.abs() > LEVEL_TOLERANCE_DB {
                    return Err(format!("{what}: {off:.2} dB from its expected level"));
                }
            }
            let clipped = left.clipped(..);
            if clipped > 0 {
                return Err(format!("{clipped} clipped samples"));
            }
            Ok(())
        })
}

/// The period before which partition `who`'s stream stopped (the `n`-th
/// time).
fn stopped_period_n(lines: &[String], who: &str, n: usize) -> Option<usize> {
    let pattern = format!(
        r"^\[hv\] INFO  audio speaker: partition {who}'s stream stopped before period (\d+)$"
    );
    numbers(lines, &pattern).get(n).map(|&p| p as usize)
}
