//! `ivi-tool play`: deterministic test audio (a sequence of sine tones, or
//! a WAV file's samples) played through an ALSA PCM device with the
//! kernel's ioctls ([`crate::alsa`]).
//!
//! The tones are S16_LE, the same sample on every channel. A phase
//! accumulator (32 bits for a full cycle) carries over from one tone to
//! the next, so a change of frequency does not jump; silence resets it,
//! so each tone after a silence starts at 0. The sine is a polynomial in
//! `f64` with only additions and multiplications, so the samples are the
//! same bit for bit on every machine (the captured audio can be compared
//! with them).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::alsa::{self, HwParams, Param, Pcm, SwParams};

/// How `play` runs (`ivi-tool play`'s options); `None`: the default.
#[derive(Debug, PartialEq)]
pub struct PlayOptions {
    /// The PCM device; `None`: the first playback device.
    pub device: Option<PathBuf>,
    /// The tone sequence; `None`: [`DEFAULT_TONES`].
    pub tones: Option<Vec<Tone>>,
    /// A WAV file to play instead of tones.
    pub wav: Option<PathBuf>,
    /// Repeat for this long; `None`: once.
    pub seconds: Option<u64>,
    pub rate: Option<u32>,
    pub channels: Option<u32>,
    /// Of full scale, 0 to 1.
    pub amplitude: f64,
    pub period_frames: Option<u32>,
    pub buffer_frames: Option<u32>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            device: None,
            tones: None,
            wav: None,
            seconds: None,
            rate: None,
            channels: None,
            amplitude: DEFAULT_AMPLITUDE,
            period_frames: None,
            buffer_frames: None,
        }
    }
}

/// What `play` plays without `--tones` or `--wav`.
pub const DEFAULT_TONES: &str = "440:500,660:500,0:250,880:500";
/// Frames per period asked for without `--period-frames`: 2048 (43 ms
/// at 48 kHz), so that the buffer (4 periods, 171 ms, the most Linux's
/// virtio_snd takes with 4 KiB pages) rides out the partition's slow
/// moments under an emulator without an underrun.
pub const DEFAULT_PERIOD_FRAMES: u32 = 2048;
/// Periods per buffer asked for without `--buffer-frames`.
pub const DEFAULT_PERIODS: u32 = 4;
/// The rate and channels of tones without `--rate` and `--channels`.
pub const DEFAULT_RATE: u32 = 48_000;
pub const DEFAULT_CHANNELS: u32 = 2;
/// Of full scale, without `--amplitude`.
pub const DEFAULT_AMPLITUDE: f64 = 0.25;
/// Silence played after the content, at least (see [`run`]).
const TAIL_MS: u64 = 50;
/// Limits of one tone.
const MAX_TONE_MS: u32 = 3_600_000;
const MAX_TONE_HZ: u32 = 1_000_000;

/// One step of a tone sequence: `hz` (0: silence) for `ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tone {
    pub hz: u32,
    pub ms: u32,
}

/// Parses a tone sequence: `HZ:MS[,HZ:MS]...`, e.g.
/// `440:500,660:500,0:250,880:500` (0 Hz: silence).
pub fn parse_tones(spec: &str) -> Result<Vec<Tone>, String> {
    if spec.trim().is_empty() {
        return Err("tones: empty sequence (want HZ:MS[,HZ:MS]..., e.g. 440:500,0:250)".into());
    }
    spec.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let (hz, ms) = entry.split_once(':').ok_or(format!(
                "tones: `{entry}` is not HZ:MS (e.g. 440:500 for 440 Hz during 500 ms)"
            ))?;
            let hz: u32 = hz
                .trim()
                .parse()
                .ok()
                .filter(|&hz| hz <= MAX_TONE_HZ)
                .ok_or(format!(
                    "tones: `{hz}` in `{entry}` is not a frequency in whole Hz (0 to {MAX_TONE_HZ})"
                ))?;
            let ms: u32 = ms
                .trim()
                .parse()
                .ok()
                .filter(|&ms| (1..=MAX_TONE_MS).contains(&ms))
                .ok_or(format!(
                    "tones: `{ms}` in `{entry}` is not a duration in whole milliseconds (1 to {MAX_TONE_MS})"
                ))?;
            Ok(Tone { hz, ms })
        })
        .collect()
}

/// Renders a tone sequence as `parse_tones` reads it.
pub fn render_tones(tones: &[Tone]) -> String {
    let mut text = String::new();
    for (i, t) in tones.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(text, "{comma}{}:{}", t.hz, t.ms);
    }
    text
}

/// `sin(phase / 2^32 * 2π)`: a Taylor polynomial to x^17 on a quarter
/// wave (error below 1e-11), with only `+`, `*` and `/` (which IEEE 754
/// rounds alike everywhere, unlike libm's `sin`), so exactly the same
/// everywhere.
pub fn sine(phase: u32) -> f64 {
    const QUARTER: u32 = 1 << 30;
    let quadrant = phase >> 30;
    let within = phase & (QUARTER - 1);
    // Rising in quadrants 0 and 2, falling in 1 and 3.
    let x = if quadrant & 1 == 0 {
        within
    } else {
        QUARTER - within
    };
    let theta = f64::from(x) * (std::f64::consts::FRAC_PI_2 / f64::from(QUARTER));
    let t2 = theta * theta;
    // x - x^3/3! + x^5/5! - ... + x^17/17!, by Horner in x^2.
    let mut sum = 0.0;
    for n in (1..=8).rev() {
        // 1 / ((2n)(2n+1)) steps from one coefficient to the next.
        let k = f64::from(2 * n) * f64::from(2 * n + 1);
        sum = 1.0 - t2 / k * sum;
    }
    let s = theta * sum;
    if quadrant >= 2 { -s } else { s }
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    /// Phase step per frame; 0 for silence.
    step: u32,
    /// The frame (from the sequence's start) where it ends.
    end: u64,
}

/// Sine tones, one sample per frame, the sequence repeated.
#[derive(Clone, Debug)]
pub struct ToneGenerator {
    segments: Vec<Segment>,
    /// Frame within the sequence.
    position: u64,
    segment: usize,
    phase: u32,
    /// Full scale times the amplitude.
    scale: f64,
}

impl ToneGenerator {
    /// `tones` at `rate` frames a second, at `amplitude` (0 to 1) of full
    /// scale. Tone `i` covers the frames from `rate × (start in ms) /
    /// 1000` up to (not including) `rate × (end in ms) / 1000`, so the
    /// sequence is exactly as long as its milliseconds say, within a frame.
    pub fn new(tones: &[Tone], rate: u32, amplitude: f64) -> Result<ToneGenerator, String> {
        if rate < 1000 {
            return Err(format!("a rate of {rate} Hz is too low for tones"));
        }
        if !(0.0..=1.0).contains(&amplitude) {
            return Err(format!("amplitude {amplitude} is not between 0 and 1"));
        }
        let mut end_ms = 0u64;
        let mut segments = Vec::with_capacity(tones.len());
        for t in tones {
            if u64::from(t.hz) * 2 >= u64::from(rate) {
                return Err(format!(
                    "a tone of {} Hz is not below half the rate ({} Hz at {rate} Hz)",
                    t.hz,
                    rate / 2
                ));
            }
            end_ms += u64::from(t.ms);
            // Rounded: hz / rate of a cycle, in 2^-32 cycles (below 2^31).
            let step = ((u64::from(t.hz) << 32) + u64::from(rate) / 2) / u64::from(rate);
            segments.push(Segment {
                step: step as u32,
                end: end_ms * u64::from(rate) / 1000,
            });
        }
        if segments.is_empty() {
            return Err("no tones".into());
        }
        Ok(ToneGenerator {
            segments,
            position: 0,
            segment: 0,
            phase: 0,
            scale: amplitude * f64::from(i16::MAX),
        })
    }

    /// Frames in one pass of the sequence.
    pub fn sequence_frames(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end)
    }

    /// Frames of each tone of the sequence.
    pub fn tone_frames(&self) -> Vec<u64> {
        let mut start = 0;
        self.segments
            .iter()
            .map(|s| {
                let frames = s.end - start;
                start = s.end;
                frames
            })
            .collect()
    }

    /// The next frame's sample.
    pub fn next_sample(&mut self) -> i16 {
        if self.position >= self.sequence_frames() {
            self.position = 0;
            self.segment = 0;
        }
        while self.position >= self.segments[self.segment].end {
            self.segment += 1;
        }
        self.position += 1;
        let step = self.segments[self.segment].step;
        if step == 0 {
            self.phase = 0;
            return 0;
        }
        let sample = (sine(self.phase) * self.scale).round();
        self.phase = self.phase.wrapping_add(step);
        sample.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
    }
}

/// A WAV file's 16-bit PCM samples.
#[derive(Debug, PartialEq, Eq)]
pub struct Wav {
    pub rate: u32,
    pub channels: u32,
    /// Interleaved.
    pub samples: Vec<i16>,
}

/// Parses a RIFF WAVE file of 16-bit integer PCM (format 1).
pub fn parse_wav(bytes: &[u8]) -> Result<Wav, String> {
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF WAVE file".into());
    }
    let mut format = None;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4) as usize;
        let body = &bytes[at + 8..];
        match id {
            b"fmt " => {
                if size < 16 || body.len() < 16 {
                    return Err("WAV format chunk too short".into());
                }
                let (kind, channels, rate, bits) = (
                    u16_at(body, 0),
                    u16_at(body, 2),
                    u32_at(body, 4),
                    u16_at(body, 14),
                );
                if kind != 1 || bits != 16 {
                    return Err(format!(
                        "WAV format {kind} with {bits}-bit samples: only 16-bit PCM (format 1) plays"
                    ));
                }
                if channels == 0 || rate == 0 {
                    return Err("WAV with no channels or no rate".into());
                }
                format = Some((u32::from(channels), rate));
            }
            b"data" => {
                let (channels, rate) = format.ok_or("WAV data before its format chunk")?;
                // A header written before the length was known (or cut
                // short): take what is there.
                let data = &body[..size.min(body.len())];
                let frame_bytes = 2 * channels as usize;
                let samples = data[..data.len() / frame_bytes * frame_bytes]
                    .chunks_exact(2)
                    .map(|s| i16::from_le_bytes([s[0], s[1]]))
                    .collect();
                return Ok(Wav {
                    rate,
                    channels,
                    samples,
                });
            }
            _ => {}
        }
        // Chunks are padded to even sizes.
        at = at.saturating_add(8).saturating_add(size + (size & 1));
    }
    Err("WAV file without a data chunk".into())
}

/// Where the samples come from.
enum Source {
    Tones(ToneGenerator),
    Samples { samples: Vec<i16>, position: usize },
}

impl Source {
    /// Fills whole frames of `channels` samples; repeats from the start at
    /// the end.
    fn fill(&mut self, out: &mut [i16], channels: usize) {
        match self {
            Source::Tones(tones) => {
                for frame in out.chunks_exact_mut(channels) {
                    frame.fill(tones.next_sample());
                }
            }
            Source::Samples { samples, position } => {
                for sample in out {
                    if *position >= samples.len() {
                        *position = 0;
                    }
                    *sample = samples.get(*position).copied().unwrap_or(0);
                    *position += 1;
                }
            }
        }
    }
}

/// What HW_PARAMS installed, and what the device would have taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub rate: u32,
    pub channels: u32,
    pub period_frames: u32,
    pub buffer_frames: u32,
    /// The period and buffer sizes (in frames) the device allows at this
    /// rate, channel count and format.
    pub period_range: (u32, u32),
    pub buffer_range: (u32, u32),
}

/// The line that reports the device and what it was set to.
pub fn setup_line(device: &Path, setup: &Setup) -> String {
    format!(
        "ivi-tool: play: {} {} Hz {} ch period {} buffer {}",
        device.display(),
        setup.rate,
        setup.channels,
        setup.period_frames,
        setup.buffer_frames
    )
}

/// The outcome of a playback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub underruns: u64,
}

/// Narrows `param` in `params` to `target`, or the nearest value the
/// device allows (above first, then below). Leaves the choice to HW_PARAMS
/// if the device takes none of these.
fn refine_near(pcm: &Pcm, params: &mut HwParams, param: Param, target: u32) {
    let Some((min, max)) = params.range(param) else {
        return;
    };
    let target = target.clamp(min, max);
    let exact = |value: u32, from: &HwParams| {
        let mut p = *from;
        p.set_range(param, value, value);
        pcm.refine(&mut p).ok().map(|()| p)
    };
    if let Some(p) = exact(target, params) {
        *params = p;
        return;
    }
    for (low, high, above) in [(target, max, true), (min, target, false)] {
        let mut p = *params;
        p.set_range(param, low, high);
        if pcm.refine(&mut p).is_err() {
            continue;
        }
        let nearest = match p.range(param) {
            Some((lo, _)) if above => lo,
            Some((_, hi)) => hi,
            None => continue,
        };
        *params = exact(nearest, &p).unwrap_or(p);
        return;
    }
}

/// Sets the hardware parameters: interleaved S16_LE, `rate`, `channels`,
/// the period and buffer sizes nearest those asked for (default
/// [`DEFAULT_PERIOD_FRAMES`] and [`DEFAULT_PERIODS`] of them).
pub fn configure(
    pcm: &Pcm,
    rate: u32,
    channels: u32,
    period_frames: Option<u32>,
    buffer_frames: Option<u32>,
) -> Result<Setup, String> {
    let mut params = HwParams::any();
    pcm.refine(&mut params)
        .map_err(|e| format!("HW_REFINE: {e}"))?;
    let any = params;
    params.set_mask(Param::Access, alsa::ACCESS_RW_INTERLEAVED);
    params.set_mask(Param::Format, alsa::FORMAT_S16_LE);
    pcm.refine(&mut params)
        .map_err(|e| format!("the device does not play interleaved S16_LE frames: {e}"))?;
    let describe = |param: Param| match any.range(param) {
        Some((lo, hi)) if lo == hi => format!("{lo}"),
        Some((lo, hi)) => format!("{lo} to {hi}"),
        None => "none".into(),
    };
    params.set_range(Param::Channels, channels, channels);
    pcm.refine(&mut params).map_err(|_| {
        format!(
            "the device does not play {channels} channels (it plays {})",
            describe(Param::Channels)
        )
    })?;
    params.set_range(Param::Rate, rate, rate);
    pcm.refine(&mut params).map_err(|_| {
        format!(
            "the device does not play {rate} Hz with {channels} channels (rates {})",
            describe(Param::Rate)
        )
    })?;
    let period_range = params.range(Param::PeriodSize).unwrap_or((0, 0));
    let buffer_range = params.range(Param::BufferSize).unwrap_or((0, 0));
    let period = period_frames.unwrap_or(DEFAULT_PERIOD_FRAMES);
    refine_near(pcm, &mut params, Param::PeriodSize, period);
    let period = params.value(Param::PeriodSize).unwrap_or(period);
    let buffer = buffer_frames.unwrap_or(period.saturating_mul(DEFAULT_PERIODS));
    refine_near(pcm, &mut params, Param::BufferSize, buffer);
    pcm.set_hw_params(&mut params)
        .map_err(|e| format!("HW_PARAMS: {e}"))?;
    let value = |param: Param| {
        params
            .value(param)
            .ok_or(format!("HW_PARAMS left {param:?} open"))
    };
    Ok(Setup {
        rate: value(Param::Rate)?,
        channels: value(Param::Channels)?,
        period_frames: value(Param::PeriodSize)?,
        buffer_frames: value(Param::BufferSize)?,
        period_range,
        buffer_range,
    })
}

/// `ivi-tool play`: plays what `options` says, printing `ivi-tool: play:`
/// lines; an error comes back as the line to print.
pub fn run(options: &PlayOptions) -> Result<Summary, String> {
    let error =
        |what: &str, e: &dyn std::fmt::Display| format!("ivi-tool: play: error: {what}: {e}");
    let (mut source, rate, channels, description, sequence) = match &options.wav {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| error(&path.display().to_string(), &e))?;
            let wav = parse_wav(&bytes).map_err(|e| error(&path.display().to_string(), &e))?;
            for (given, of_file, what) in [
                (options.rate, wav.rate, "Hz"),
                (options.channels, wav.channels, "channels"),
            ] {
                if given.is_some_and(|g| g != of_file) {
                    return Err(error(
                        &path.display().to_string(),
                        &format!("the file has {of_file} {what}, not {}", given.unwrap_or(0)),
                    ));
                }
            }
            let frames = (wav.samples.len() / wav.channels as usize) as u64;
            if frames == 0 {
                return Err(error(&path.display().to_string(), &"no samples"));
            }
            let description = format!(
                "{} ({} Hz {} ch 16-bit)",
                path.display(),
                wav.rate,
                wav.channels
            );
            (
                Source::Samples {
                    samples: wav.samples,
                    position: 0,
                },
                wav.rate,
                wav.channels,
                description,
                frames,
            )
        }
        None => {
            let rate = options.rate.unwrap_or(DEFAULT_RATE);
            let channels = options.channels.unwrap_or(DEFAULT_CHANNELS);
            let default_tones;
            let tones = match &options.tones {
                Some(tones) => tones,
                None => {
                    default_tones = parse_tones(DEFAULT_TONES).expect("valid");
                    &default_tones
                }
            };
            let generator = ToneGenerator::new(tones, rate, options.amplitude)
                .map_err(|e| error("tones", &e))?;
            let frames = generator.sequence_frames();
            let description = format!(
                "tones {} at amplitude {}",
                render_tones(tones),
                options.amplitude
            );
            (
                Source::Tones(generator),
                rate,
                channels,
                description,
                frames,
            )
        }
    };
    let total = match options.seconds {
        Some(s) => s * u64::from(rate),
        None => sequence,
    };

    let device = match &options.device {
        Some(device) => device.clone(),
        None => PathBuf::from(alsa::first_playback_device().ok_or(error(
            "no playback device",
            &"/proc/asound/pcm and /dev/snd list none",
        ))?),
    };
    let name = device.display().to_string();
    let pcm = Pcm::open(&device).map_err(|e| error(&name, &e))?;
    let info = pcm.info().map_err(|e| error(&name, &e))?;
    if !info.playback {
        return Err(error(&name, &"not a playback device"));
    }
    let setup = configure(
        &pcm,
        rate,
        channels,
        options.period_frames,
        options.buffer_frames,
    )
    .map_err(|e| error(&name, &e))?;
    println!("{}", setup_line(&device, &setup));
    println!(
        "ivi-tool: play: \"{}\" (card {} device {}) allows period {} to {} frames, buffer {} to {} frames",
        info.name,
        info.card,
        info.device,
        setup.period_range.0,
        setup.period_range.1,
        setup.buffer_range.0,
        setup.buffer_range.1
    );
    if setup.rate != rate || setup.channels != channels {
        return Err(error(&name, &"the device changed the rate or channels"));
    }
    let period = setup.period_frames.max(1) as usize;
    let buffer = u64::from(setup.buffer_frames);
    let mut sw = SwParams::playback(u64::from(setup.period_frames), buffer, buffer);
    pcm.set_sw_params(&mut sw)
        .map_err(|e| error("SW_PARAMS", &e))?;
    pcm.prepare().map_err(|e| error("PREPARE", &e))?;
    println!("ivi-tool: play: {description}, {total} frames");

    let channels = channels as usize;
    let mut samples = vec![0i16; period * channels];
    let mut summary = Summary {
        frames: 0,
        underruns: 0,
    };
    let mut started = false;
    // Frames written, with the silence after the last.
    let mut queued = 0u64;
    let mut next_second = u64::from(rate);
    // Writes one period, through underruns.
    let write_period = |samples: &[i16], summary: &mut Summary| -> Result<(), String> {
        let mut done = 0;
        while done < period {
            match pcm.write_interleaved(&samples[done * channels..], channels) {
                Ok(0) => return Err(error("WRITEI_FRAMES", &"no frames written")),
                Ok(n) => done += n,
                Err(e) if e.raw_os_error() == Some(alsa::EPIPE) => {
                    println!("ivi-tool: play: underrun");
                    summary.underruns += 1;
                    pcm.prepare().map_err(|e| error("PREPARE", &e))?;
                }
                Err(e) => return Err(error("WRITEI_FRAMES", &e)),
            }
        }
        Ok(())
    };
    // The stream starts by itself once the buffer is full.
    let mut note_start = |queued: u64| {
        if !started && queued >= buffer {
            println!("ivi-tool: play: started");
            started = true;
        }
    };
    while summary.frames < total {
        // Whole periods only: the last one is padded with silence (the
        // device may play whole periods only; virtio_snd does, and a
        // partial one would never drain).
        let frames = (total - summary.frames).min(period as u64) as usize;
        source.fill(&mut samples[..frames * channels], channels);
        samples[frames * channels..].fill(0);
        write_period(&samples, &mut summary)?;
        summary.frames += frames as u64;
        queued += period as u64;
        note_start(queued);
        while summary.frames >= next_second {
            println!(
                "ivi-tool: play: second {} frames={} underruns={}",
                next_second / u64::from(rate),
                summary.frames,
                summary.underruns
            );
            next_second += u64::from(rate);
        }
    }
    // Then at least TAIL_MS of silence, in whole periods: a device may
    // still hold some audio when the stream stops after DRAIN, and drop it
    // (QEMU's does, up to about 10 ms): that should be silence.
    samples.fill(0);
    let tail = u64::from(rate) * TAIL_MS / 1000;
    for _ in 0..tail.div_ceil(period as u64).max(1) {
        write_period(&samples, &mut summary)?;
        queued += period as u64;
        note_start(queued);
    }
    if !started {
        // Less than a buffer in all: DRAIN starts it.
        println!("ivi-tool: play: started");
    }
    match pcm.drain() {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(alsa::EPIPE) => {
            println!("ivi-tool: play: underrun");
            summary.underruns += 1;
        }
        Err(e) => return Err(error("DRAIN", &e)),
    }
    println!(
        "ivi-tool: play: done frames={} underruns={}",
        summary.frames, summary.underruns
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tones(spec: &str) -> Vec<Tone> {
        parse_tones(spec).unwrap()
    }

    #[test]
    fn tone_sequences_parse() {
        assert_eq!(
            tones("440:500, 660:500,0:250,880:500"),
            [
                Tone { hz: 440, ms: 500 },
                Tone { hz: 660, ms: 500 },
                Tone { hz: 0, ms: 250 },
                Tone { hz: 880, ms: 500 },
            ]
        );
        assert_eq!(render_tones(&tones(DEFAULT_TONES)), DEFAULT_TONES);
        for (bad, says) in [
            ("", "empty sequence"),
            ("440", "`440` is not HZ:MS"),
            ("440:500,", "`` is not HZ:MS"),
            ("la:500", "`la` in `la:500` is not a frequency"),
            ("-440:500", "`-440` in `-440:500` is not a frequency"),
            ("440.5:500", "is not a frequency in whole Hz"),
            ("440:0", "`0` in `440:0` is not a duration"),
            ("440:1s", "`1s` in `440:1s` is not a duration"),
            ("440:3600001", "(1 to 3600000)"),
            ("2000000:5", "not a frequency"),
        ] {
            let e = parse_tones(bad).unwrap_err();
            assert!(e.starts_with("tones: ") && e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_sine_is_a_sine() {
        let mut worst: f64 = 0.0;
        for i in 0..100_000u64 {
            let phase = (i * 42_949) as u32;
            let exact = (f64::from(phase) / 4_294_967_296.0 * std::f64::consts::TAU).sin();
            worst = worst.max((sine(phase) - exact).abs());
        }
        assert!(worst < 1e-11, "{worst}");
        assert_eq!(sine(0), 0.0);
        assert!((sine(1 << 30) - 1.0).abs() < 1e-11);
        assert!((sine(3 << 30) + 1.0).abs() < 1e-11);
    }

    #[test]
    fn tones_last_exactly_their_milliseconds() {
        let mut g =
            ToneGenerator::new(&tones("440:500,660:500,0:250,880:500"), 48_000, 0.25).unwrap();
        assert_eq!(g.tone_frames(), [24_000, 24_000, 12_000, 24_000]);
        assert_eq!(g.sequence_frames(), 84_000);
        let samples: Vec<i16> = (0..84_000).map(|_| g.next_sample()).collect();
        // The silence is exactly where it belongs, and only there.
        assert!(samples[48_000..60_000].iter().all(|&s| s == 0));
        assert_ne!(samples[47_999], 0);
        assert_eq!(samples[60_000], 0, "a tone after silence starts at 0");
        assert_ne!(samples[60_001], 0);
        // The next pass is the same, but for the phase the 880 Hz tone left.
        assert_eq!(g.next_sample(), 0);
        assert_eq!(g.position, 1);
        // 44.1 kHz: no tone ends on a whole frame, the sequence does.
        let g = ToneGenerator::new(&tones("1000:3,500:3,0:4"), 44_100, 0.5).unwrap();
        assert_eq!(g.tone_frames(), [132, 132, 177]);
        assert_eq!(g.sequence_frames(), 441);
    }

    /// Sign changes of a run of samples.
    fn crossings(samples: &[i16]) -> usize {
        samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count()
    }

    #[test]
    fn frequency_and_amplitude() {
        let mut g = ToneGenerator::new(&tones("440:1000,1000:1000"), 48_000, 0.25).unwrap();
        let samples: Vec<i16> = (0..96_000).map(|_| g.next_sample()).collect();
        // Two sign changes per cycle.
        assert!(crossings(&samples[..48_000]).abs_diff(880) <= 1);
        assert!(crossings(&samples[48_000..]).abs_diff(2000) <= 1);
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap();
        // 0.25 of 32767 is 8191.75.
        assert!((8190..=8192).contains(&peak), "{peak}");
        // Full scale neither overflows nor clips.
        let mut g = ToneGenerator::new(&tones("12000:10"), 48_000, 1.0).unwrap();
        let samples: Vec<i16> = (0..480).map(|_| g.next_sample()).collect();
        // A quarter of the rate: 0, +max, 0, -max.
        assert_eq!(&samples[..4], [0, 32767, 0, -32767]);
        // Silence at any amplitude, and nothing at amplitude 0.
        let mut g = ToneGenerator::new(&tones("440:10"), 48_000, 0.0).unwrap();
        assert!((0..480).all(|_| g.next_sample() == 0));
    }

    #[test]
    fn the_phase_carries_over_a_change_of_tone() {
        // 300 Hz for 7 ms is 2.1 cycles: the 500 Hz tone starts where the
        // 300 Hz one left off, not at 0.
        let rate = 48_000u64;
        let mut g = ToneGenerator::new(&tones("300:7,500:3"), 48_000, 0.5).unwrap();
        let samples: Vec<i16> = (0..480).map(|_| g.next_sample()).collect();
        let step = |hz: u64| (((hz << 32) + rate / 2) / rate) as u32;
        let mut phase = 0u32;
        for (i, &s) in samples.iter().enumerate() {
            let expected = (sine(phase) * (0.5 * 32767.0)).round() as i16;
            assert_eq!(s, expected, "sample {i}");
            phase = phase.wrapping_add(step(if i < 336 { 300 } else { 500 }));
        }
        assert!(samples[336].abs() > 1000, "{}", samples[336]);
        // No jump: neighbours differ by at most the faster tone's slope.
        let max_step = (std::f64::consts::TAU * 500.0 / 48_000.0 * 0.5 * 32767.0) as i32 + 1;
        for w in samples.windows(2) {
            assert!((i32::from(w[1]) - i32::from(w[0])).abs() <= max_step);
        }
    }

    #[test]
    fn tone_errors() {
        assert!(ToneGenerator::new(&tones("24000:10"), 48_000, 0.25).is_err());
        assert!(ToneGenerator::new(&tones("23999:10"), 48_000, 0.25).is_ok());
        assert!(ToneGenerator::new(&tones("440:10"), 48_000, 1.5).is_err());
        assert!(ToneGenerator::new(&tones("440:10"), 48_000, -0.1).is_err());
        assert!(ToneGenerator::new(&tones("100:10"), 999, 0.25).is_err());
        assert!(ToneGenerator::new(&[], 48_000, 0.25).is_err());
    }

    #[test]
    fn frames_fill_every_channel_and_repeat() {
        let mut s = Source::Tones(ToneGenerator::new(&tones("1000:1"), 48_000, 0.25).unwrap());
        let mut out = [0i16; 3 * 100];
        s.fill(&mut out, 3);
        assert!(out.chunks_exact(3).all(|f| f[0] == f[1] && f[1] == f[2]));
        // 48 frames a pass: frame 48 is frame 0 again, 49 is 1.
        assert_eq!(out[48 * 3..50 * 3], out[..2 * 3]);
        let mut s = Source::Samples {
            samples: vec![1, 2, 3, 4],
            position: 0,
        };
        let mut out = [0i16; 6];
        s.fill(&mut out, 2);
        assert_eq!(out, [1, 2, 3, 4, 1, 2]);
    }

    fn wav(channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(b"RIFF");
        w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        w.extend_from_slice(&16u32.to_le_bytes());
        w.extend_from_slice(&1u16.to_le_bytes());
        w.extend_from_slice(&channels.to_le_bytes());
        w.extend_from_slice(&rate.to_le_bytes());
        w.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        w.extend_from_slice(&(channels * 2).to_le_bytes());
        w.extend_from_slice(&bits.to_le_bytes());
        // A chunk to skip, of odd size (padded).
        w.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        w.extend_from_slice(b"data");
        w.extend_from_slice(&(data.len() as u32).to_le_bytes());
        w.extend_from_slice(data);
        w
    }

    #[test]
    fn wav_files() {
        let parsed = parse_wav(&wav(
            2,
            44_100,
            16,
            &[1, 0, 0xff, 0xff, 0, 0x80, 0xff, 0x7f],
        ))
        .unwrap();
        assert_eq!(
            parsed,
            Wav {
                rate: 44_100,
                channels: 2,
                samples: vec![1, -1, i16::MIN, i16::MAX],
            }
        );
        // A data length QEMU had no time to write: what is there, in
        // whole frames.
        let mut cut = wav(2, 48_000, 16, &[1, 0, 2, 0, 3]);
        let n = cut.len();
        cut[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_wav(&cut).unwrap().samples, [1, 2]);
        assert!(
            parse_wav(&wav(1, 48_000, 8, &[0; 4]))
                .unwrap_err()
                .contains("16-bit")
        );
        assert!(parse_wav(b"RIFF\0\0\0\0AVI ").is_err());
        assert!(parse_wav(&wav(1, 48_000, 16, &[])[..48]).is_err());
    }

    #[test]
    fn the_setup_line() {
        let setup = Setup {
            rate: 48_000,
            channels: 2,
            period_frames: 1024,
            buffer_frames: 4096,
            period_range: (13, 30720),
            buffer_range: (26, 61440),
        };
        assert_eq!(
            setup_line(Path::new("/dev/snd/pcmC0D0p"), &setup),
            "ivi-tool: play: /dev/snd/pcmC0D0p 48000 Hz 2 ch period 1024 buffer 4096"
        );
    }
}
