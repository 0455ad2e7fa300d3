//! WAV capture analysis: what the physical audio output played, judged
//! from the file QEMU wrote.
//!
//! QEMU's `wav` audiodev (`-audiodev wav,id=…,path=…,out.frequency=48000`)
//! writes the guest-visible output of the sound device as a RIFF/WAVE PCM
//! file, S16_LE, stereo, 48 kHz. It writes the 44-byte header with zero
//! sizes when it opens the file and fills the sizes in only when it shuts
//! down cleanly, so a QEMU that was killed leaves a file whose sizes are 0:
//! [`Wav::read`] refuses that with an error saying so, rather than judging
//! an empty recording.
//!
//! A [`Wav`] holds each channel's samples; [`Wav::channel`] gives a
//! [`Signal`], which measures: the level of a tone (Goertzel, Hann
//! window), the dominant tone, where sound or a given tone starts, RMS,
//! the largest step between consecutive samples (a click), clipped
//! samples and runs of silence. Positions are sample indices within the
//! channel (frames); levels are fractions of full scale (32768) or dBFS.
//!
//! Two level conventions, as usual: a *tone level* is the peak amplitude
//! of that sinusoid, so a full-scale sine is 1.0 (0 dBFS); an *RMS* is
//! relative to a full-scale square wave, so a full-scale sine's RMS is
//! 0.707 (−3.01 dBFS).

// The audio scenarios and benchmarks use this next; until then only the
// tests do.
#![allow(dead_code)]

#[cfg(test)]
mod tests;

use std::f64::consts::PI;
use std::ops::{Bound, Range, RangeBounds};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::paths;

/// The sample rate QEMU's wav audiodev is configured with.
pub const QEMU_RATE: u32 = 48_000;
/// The channels the physical output has.
pub const QEMU_CHANNELS: usize = 2;

/// Full scale of an S16 sample: levels are fractions of it.
pub const FULL_SCALE: f64 = 32768.0;

/// `WAVE_FORMAT_PCM`.
const FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`: PCM when its sub-format GUID starts with 1.
const FORMAT_EXTENSIBLE: u16 = 0xfffe;

/// A decoded WAV file: S16 PCM, per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Wav {
    /// Frames per second.
    pub rate: u32,
    /// One vector of samples per channel, all the same length.
    pub channels: Vec<Vec<i16>>,
}

/// A sinusoid found in a signal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tone {
    /// Its frequency, in Hz.
    pub freq_hz: f64,
    /// Its peak amplitude as a fraction of full scale.
    pub level: f64,
}

impl Tone {
    /// Its level in dBFS (a full-scale sine is 0).
    pub fn level_db(&self) -> f64 {
        to_db(self.level)
    }
}

/// Linear level to dB (−∞ for 0).
pub fn to_db(level: f64) -> f64 {
    20.0 * level.log10()
}

/// dB to linear level.
pub fn from_db(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

impl Wav {
    /// A WAV of `channels` (each the same length; shorter ones are padded
    /// with silence) at `rate`.
    pub fn new(rate: u32, mut channels: Vec<Vec<i16>>) -> Wav {
        let frames = channels.iter().map(Vec::len).max().unwrap_or(0);
        for channel in &mut channels {
            channel.resize(frames, 0);
        }
        Wav { rate, channels }
    }

    /// Reads and decodes `path` (see [`Wav::parse`]).
    pub fn read(path: &Path) -> Result<Wav> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", paths::display(path)))?;
        Wav::parse(&bytes).with_context(|| paths::display(path))
    }

    /// Decodes a RIFF/WAVE file: 16-bit PCM (format 1, or extensible with
    /// the PCM sub-format), any number of channels and any rate; chunks
    /// other than `fmt ` and `data` are skipped.
    pub fn parse(bytes: &[u8]) -> Result<Wav> {
        const UNCLEAN: &str = "QEMU did not exit cleanly: its wav audiodev writes the header's \
             sizes only at a clean exit (stop it with the QMP `quit` command or SIGTERM, \
             not SIGKILL)";
        if bytes.is_empty() {
            bail!("empty file: {UNCLEAN}");
        }
        if bytes.len() < 12 {
            bail!("truncated RIFF header ({} bytes): {UNCLEAN}", bytes.len());
        }
        if &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            bail!("not a RIFF/WAVE file");
        }
        let riff_size = le32(bytes, 4);
        if riff_size == 0 {
            bail!("the RIFF size is 0: {UNCLEAN}");
        }

        let mut format: Option<Format> = None;
        let mut at = 12;
        loop {
            if at + 8 > bytes.len() {
                bail!("no data chunk");
            }
            let id = &bytes[at..at + 4];
            let size = le32(bytes, at + 4) as usize;
            let body = at + 8;
            let available = bytes.len() - body;
            if id == b"data" {
                let Some(format) = format else {
                    bail!("the data chunk comes before the fmt chunk");
                };
                if size == 0 && available > 0 {
                    bail!("the data size is 0 but {available} bytes follow: {UNCLEAN}");
                }
                if size > available {
                    bail!(
                        "truncated: the data chunk holds {size} bytes but the file only \
                         {available} after its header"
                    );
                }
                let frame = format.channels * 2;
                if !size.is_multiple_of(frame) {
                    bail!("the data size {size} is not a whole number of {frame}-byte frames");
                }
                return Ok(format.decode(&bytes[body..body + size]));
            }
            if size > available {
                bail!(
                    "truncated: the {:?} chunk holds {size} bytes but the file only {available}",
                    String::from_utf8_lossy(id)
                );
            }
            if id == b"fmt " {
                format = Some(Format::parse(&bytes[body..body + size])?);
            }
            // Chunks are padded to an even size.
            at = body + size + (size & 1);
        }
    }

    /// The file's bytes: a canonical 44-byte header and the samples.
    pub fn to_bytes(&self) -> Vec<u8> {
        let channels = self.channels.len();
        let data_size = (self.frames() * channels * 2) as u32;
        let mut out = Vec::with_capacity(44 + data_size as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_size).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
        out.extend_from_slice(&(channels as u16).to_le_bytes());
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * channels as u32 * 2).to_le_bytes());
        out.extend_from_slice(&(channels as u16 * 2).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_size.to_le_bytes());
        for frame in 0..self.frames() {
            for channel in &self.channels {
                out.extend_from_slice(&channel[frame].to_le_bytes());
            }
        }
        out
    }

    /// Writes the file (for excerpts kept next to a failing test's log).
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes())
            .with_context(|| format!("cannot write {}", paths::display(path)))
    }

    /// Fails unless the file has `rate` and `channels` (what QEMU was told
    /// to record: [`QEMU_RATE`], [`QEMU_CHANNELS`]).
    pub fn expect_format(&self, rate: u32, channels: usize) -> Result<()> {
        if self.rate != rate || self.channels.len() != channels {
            bail!(
                "recorded at {} Hz with {} channels, expected {rate} Hz with {channels}",
                self.rate,
                self.channels.len()
            );
        }
        Ok(())
    }

    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// How long it plays.
    pub fn duration(&self) -> Duration {
        self.time_of(self.frames())
    }

    /// The time of frame `index` from the start.
    pub fn time_of(&self, index: usize) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(index as f64 / self.rate as f64)
    }

    /// The frame at time `at` from the start.
    pub fn index_at(&self, at: Duration) -> usize {
        (at.as_secs_f64() * self.rate as f64).round() as usize
    }

    /// Channel `c` (0 is left) for measuring.
    ///
    /// # Panics
    /// If there is no such channel.
    pub fn channel(&self, c: usize) -> Signal<'_> {
        Signal {
            samples: &self.channels[c],
            rate: self.rate,
        }
    }
}

/// The `fmt ` chunk's fields this module needs.
#[derive(Clone, Copy, Debug)]
struct Format {
    channels: usize,
    rate: u32,
}

impl Format {
    fn parse(chunk: &[u8]) -> Result<Format> {
        if chunk.len() < 16 {
            bail!(
                "the fmt chunk is {} bytes, at least 16 expected",
                chunk.len()
            );
        }
        let tag = le16(chunk, 0);
        let channels = le16(chunk, 2) as usize;
        let rate = le32(chunk, 4);
        let block_align = le16(chunk, 12) as usize;
        let bits = le16(chunk, 14);
        let pcm = match tag {
            FORMAT_PCM => true,
            FORMAT_EXTENSIBLE => chunk.len() >= 26 && le16(chunk, 24) == FORMAT_PCM,
            _ => false,
        };
        if !pcm {
            bail!("format {tag:#06x} is not PCM (1)");
        }
        if bits != 16 {
            bail!("{bits}-bit samples, only 16-bit PCM is supported");
        }
        if channels == 0 {
            bail!("0 channels");
        }
        if rate == 0 {
            bail!("sample rate 0");
        }
        if block_align != channels * 2 {
            bail!("block align {block_align} does not match {channels} channels of 16 bits");
        }
        Ok(Format { channels, rate })
    }

    fn decode(&self, data: &[u8]) -> Wav {
        let frames = data.len() / (self.channels * 2);
        let mut channels = vec![Vec::with_capacity(frames); self.channels];
        for frame in data.chunks_exact(self.channels * 2) {
            for (c, sample) in frame.chunks_exact(2).enumerate() {
                channels[c].push(i16::from_le_bytes([sample[0], sample[1]]));
            }
        }
        Wav {
            rate: self.rate,
            channels,
        }
    }
}

fn le16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One channel's samples and their rate: what the measurements run on.
/// Ranges and windows beyond the end are cut to it.
#[derive(Clone, Copy, Debug)]
pub struct Signal<'a> {
    /// The samples.
    pub samples: &'a [i16],
    /// Samples per second.
    pub rate: u32,
}

impl Signal<'_> {
    /// Samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples in `ms` milliseconds (rounded).
    pub fn samples_in(&self, ms: f64) -> usize {
        (ms * self.rate as f64 / 1000.0).round() as usize
    }

    /// Sample index `index` in milliseconds from the start.
    pub fn ms(&self, index: usize) -> f64 {
        index as f64 * 1000.0 / self.rate as f64
    }

    /// `range` as indices within the signal.
    fn span(&self, range: impl RangeBounds<usize>) -> Range<usize> {
        let len = self.samples.len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        let end = end.min(len);
        start.min(end)..end
    }

    /// The Hann-windowed samples of `span`, and the window's sum.
    ///
    /// The window is `sin²(π(n + ½)/N)`, symmetric and summing to N/2:
    /// its side lobes (−31 dB, falling fast) keep other tones, such as
    /// ducked media under a chime, out of a tone's measure.
    fn windowed(&self, span: Range<usize>) -> (Vec<f64>, f64) {
        let n = span.len() as f64;
        let samples = self.samples[span]
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let w = (PI * (i as f64 + 0.5) / n).sin();
                x as f64 * w * w
            })
            .collect();
        (samples, n / 2.0)
    }

    /// The peak amplitude (fraction of full scale) of the `freq_hz`
    /// component of the `len` samples from `start`: Goertzel over the
    /// Hann-windowed samples. A sine of amplitude A at `freq_hz` reads A
    /// to within 0.05 dB (0.6%) once the window holds 4 cycles; a tone
    /// more than two bins (2 × rate / len) away is attenuated by 31 dB or
    /// more. 0 for an empty window.
    pub fn tone_level(&self, start: usize, len: usize, freq_hz: f64) -> f64 {
        let span = self.span(start..start.saturating_add(len));
        if span.is_empty() {
            return 0.0;
        }
        let (windowed, weight) = self.windowed(span);
        goertzel(&windowed, freq_hz / self.rate as f64) * 2.0 / weight / FULL_SCALE
    }

    /// [`Signal::tone_level`] in dBFS (a full-scale sine is 0).
    pub fn tone_level_db(&self, start: usize, len: usize, freq_hz: f64) -> f64 {
        to_db(self.tone_level(start, len, freq_hz))
    }

    /// The strongest sinusoid between 20 Hz and 20 kHz (or the Nyquist
    /// frequency) in the `len` samples from `start`: a scan at the window's
    /// bin spacing (rate / len), then a golden-section search around the
    /// best bin, so the frequency comes out well within 0.1 bin. `None` if
    /// the window is silent or shorter than 16 samples.
    pub fn dominant_tone(&self, start: usize, len: usize) -> Option<Tone> {
        let span = self.span(start..start.saturating_add(len));
        if span.len() < 16 {
            return None;
        }
        let (windowed, weight) = self.windowed(span.clone());
        let rate = self.rate as f64;
        let level = |freq: f64| goertzel(&windowed, freq / rate) * 2.0 / weight / FULL_SCALE;
        let bin = rate / span.len() as f64;
        let top = (rate / 2.0 - bin).min(20_000.0);
        let mut best = (0.0, 0.0);
        let mut freq = (20.0 / bin).ceil() * bin;
        while freq <= top {
            let l = level(freq);
            if l > best.1 {
                best = (freq, l);
            }
            freq += bin;
        }
        if best.1 == 0.0 {
            return None;
        }
        // The Hann main lobe is unimodal over ±2 bins, so the peak lies
        // within a bin of the best one scanned.
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        let (mut lo, mut hi) = ((best.0 - bin).max(1.0), (best.0 + bin).min(rate / 2.0));
        let mut a = hi - ratio * (hi - lo);
        let mut b = lo + ratio * (hi - lo);
        let (mut la, mut lb) = (level(a), level(b));
        for _ in 0..40 {
            if la < lb {
                lo = a;
                a = b;
                la = lb;
                b = lo + ratio * (hi - lo);
                lb = level(b);
            } else {
                hi = b;
                b = a;
                lb = la;
                a = hi - ratio * (hi - lo);
                la = level(a);
            }
        }
        let freq_hz = (lo + hi) / 2.0;
        Some(Tone {
            freq_hz,
            level: level(freq_hz).max(best.1),
        })
    }

    /// The first sample at or after `from` whose magnitude exceeds
    /// `threshold`.
    pub fn first_sound(&self, threshold: u16, from: usize) -> Option<usize> {
        let span = self.span(from..);
        self.samples[span.clone()]
            .iter()
            .position(|&x| (x as i32).unsigned_abs() > threshold as u32)
            .map(|i| span.start + i)
    }

    /// Where a tone of `freq_hz` starts, at or after `from`: the first
    /// `window`-long window (stepped by half a window) whose
    /// [`Signal::tone_level`] reaches `min_level`, refined to a sample.
    ///
    /// The refinement follows the tone's envelope around the detecting
    /// window: it takes the tone's phase φ there, demodulates
    /// (`2·x(u)·cos(ωu + φ)`, the tone's amplitude plus terms at other
    /// frequencies) and smooths that with a symmetric triangular kernel of
    /// about half a window (two boxes of [`Signal::first_tone`]'s
    /// `window / 4`, rounded odd), which keeps other sounds and the 2ω
    /// term out (−26 dB and falling beyond `rate / (window / 4)` Hz off).
    /// The onset is where that envelope crosses half its peak A, found as
    /// the change point of `envelope − A/2` (the start maximising its sum
    /// from there on), so brief wobbles do not end the search early. A
    /// symmetric kernel puts the half-way point of an abrupt start on its
    /// first sample, up to the 2ω term's partial cycle (1 / (2·sin ω)
    /// samples). A last, unsmoothed pass within that reach takes the
    /// change point of `c(u)·(x(u) − A/2·c(u))` with `c(u) = cos(ωu + φ)`,
    /// which is exact for a clean tone. The tests hold an abrupt start to
    /// ±1 sample alone, ±3 under other sounds 20 dB quieter (ducked media)
    /// and ±8 under sounds only 6 dB quieter (which hide the tone's first
    /// samples when it starts near a zero crossing). A faded-in tone is
    /// found half-way through its fade (within 2.5% of it). The frequency
    /// must be the tone's own to within a small fraction of a bin
    /// (rate / window).
    pub fn first_tone(
        &self,
        freq_hz: f64,
        window: usize,
        from: usize,
        min_level: f64,
    ) -> Option<usize> {
        if window == 0 {
            return None;
        }
        let step = (window / 2).max(1);
        let len = self.samples.len();
        let mut start = from;
        loop {
            if start.checked_add(window)? > len {
                return None;
            }
            if self.tone_level(start, window, freq_hz) >= min_level {
                break;
            }
            start += step;
        }
        // The window before the one before did not see the tone, or it
        // would have been fully covered and detected it; and its envelope
        // is at its peak well before the end of the next window.
        let lo = start.saturating_sub(window).max(from);
        let hi = start.saturating_add(2 * window).min(len);

        // The phase, from the detecting window and the next: a correlation
        // with e^{−iωu}, u counted from the signal's start so that the
        // phase holds for every sample.
        let omega = 2.0 * PI * freq_hz / self.rate as f64;
        let fit = self.span(start..start.saturating_add(2 * window));
        let (windowed, _) = self.windowed(fit.clone());
        let (mut re, mut im) = (0.0, 0.0);
        for (x, u) in windowed.iter().zip(fit) {
            let (sin, cos) = (omega * u as f64).sin_cos();
            re += x * cos;
            im -= x * sin;
        }
        let phase = im.atan2(re);

        // Demodulated over [lo − 2h, hi + 2h) (zero outside the signal),
        // then smoothed twice by a centred box of 2h + 1 samples.
        let half = window / 8;
        let demodulated: Vec<f64> = (lo as isize - 2 * half as isize..(hi + 2 * half) as isize)
            .map(|u| match usize::try_from(u).ok().filter(|&u| u < len) {
                Some(u) => 2.0 * self.samples[u] as f64 * (omega * u as f64 + phase).cos(),
                None => 0.0,
            })
            .collect();
        let once = centred_box(&demodulated, half);
        let envelope = centred_box(&once, half);
        debug_assert_eq!(envelope.len(), hi - lo);

        let peak = envelope.iter().copied().fold(0.0, f64::max);
        if peak <= 0.0 {
            return Some(start);
        }
        // Suffix sums of envelope − peak/2: the best start has the largest.
        let coarse = change_point(lo, envelope.iter().map(|e| e - peak / 2.0));

        // The smoothing lets the 2ω term's partial cycle at the onset
        // through (up to 1 / (2·sin ω) samples off); unsmoothed, each
        // sample's evidence is exact, −½·A·c² before the tone and +½·A·c²
        // after, but other sounds weigh in sample by sample. So: unsmoothed,
        // within that reach of the smoothed estimate.
        let reach = (0.5 / (omega.sin().abs().max(1e-3))).ceil() as usize + 2;
        let near = coarse.saturating_sub(reach).max(lo)..(coarse + reach + 1).min(hi);
        let fine = change_point(
            near.start,
            near.clone().map(|u| {
                let c = (omega * u as f64 + phase).cos();
                c * (self.samples[u] as f64 - peak / 2.0 * c)
            }),
        );
        Some(fine)
    }

    /// Root mean square of `range`, as a fraction of full scale (0 for an
    /// empty range).
    pub fn rms(&self, range: impl RangeBounds<usize>) -> f64 {
        let span = self.span(range);
        if span.is_empty() {
            return 0.0;
        }
        let n = span.len() as f64;
        let sum: f64 = self.samples[span].iter().map(|&x| (x as f64).powi(2)).sum();
        (sum / n).sqrt() / FULL_SCALE
    }

    /// [`Signal::rms`] in dBFS (−∞ for silence).
    pub fn rms_db(&self, range: impl RangeBounds<usize>) -> f64 {
        to_db(self.rms(range))
    }

    /// The largest absolute difference between consecutive samples of
    /// `range`: a click shows as a step far above what the music or tone
    /// around it makes (a full-scale 1 kHz sine steps by at most about 4290).
    pub fn max_step(&self, range: impl RangeBounds<usize>) -> u32 {
        self.max_step_at(range).map_or(0, |(_, step)| step)
    }

    /// Where [`Signal::max_step`] is (the index of the later sample of the
    /// first largest step) and its size; `None` for fewer than 2 samples.
    pub fn max_step_at(&self, range: impl RangeBounds<usize>) -> Option<(usize, u32)> {
        let span = self.span(range);
        let mut best: Option<(usize, u32)> = None;
        for (i, pair) in self.samples[span.clone()].windows(2).enumerate() {
            let step = (pair[1] as i32 - pair[0] as i32).unsigned_abs();
            if best.is_none_or(|(_, b)| step > b) {
                best = Some((span.start + i + 1, step));
            }
        }
        best
    }

    /// Samples of `range` at full scale (32767 or −32768): saturation.
    pub fn clipped(&self, range: impl RangeBounds<usize>) -> usize {
        let span = self.span(range);
        self.samples[span]
            .iter()
            .filter(|&&x| x == i16::MAX || x == i16::MIN)
            .count()
    }

    /// The runs of `range`, at least `min_len` samples long, in which no
    /// sample's magnitude exceeds `threshold`, in order. A run touching an
    /// end of the range is cut there.
    pub fn silent_gaps(
        &self,
        range: impl RangeBounds<usize>,
        threshold: u16,
        min_len: usize,
    ) -> Vec<Range<usize>> {
        let span = self.span(range);
        let mut gaps = Vec::new();
        let mut run_start = None;
        for u in span.clone() {
            let quiet = (self.samples[u] as i32).unsigned_abs() <= threshold as u32;
            match (quiet, run_start) {
                (true, None) => run_start = Some(u),
                (false, Some(s)) => {
                    if u - s >= min_len.max(1) {
                        gaps.push(s..u);
                    }
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = run_start
            && span.end - s >= min_len.max(1)
        {
            gaps.push(s..span.end);
        }
        gaps
    }
}

/// The change point of a sequence of evidence (negative before the
/// change, positive after), `values[0]` being at index `first`: the index
/// whose suffix sum is the largest, the earliest of equals.
fn change_point(
    first: usize,
    values: impl DoubleEndedIterator<Item = f64> + ExactSizeIterator,
) -> usize {
    let end = first + values.len();
    let mut best = (end, 0.0);
    let mut sum = 0.0;
    for (i, v) in values.enumerate().rev() {
        sum += v;
        if sum >= best.1 {
            best = (first + i, sum);
        }
    }
    best.0
}

/// `x` averaged over a centred box of `2·half + 1` samples: the output
/// is `2·half` shorter (it starts at `x[half]`'s box).
fn centred_box(x: &[f64], half: usize) -> Vec<f64> {
    let width = 2 * half + 1;
    if x.len() < width {
        return Vec::new();
    }
    let mut sum: f64 = x[..width].iter().sum();
    let mut out = Vec::with_capacity(x.len() - 2 * half);
    out.push(sum / width as f64);
    for i in width..x.len() {
        sum += x[i] - x[i - width];
        out.push(sum / width as f64);
    }
    out
}

/// Goertzel's algorithm: the magnitude of the DFT of `x` at `cycles`
/// cycles per sample (any real frequency, not only a bin's).
fn goertzel(x: &[f64], cycles_per_sample: f64) -> f64 {
    let coeff = 2.0 * (2.0 * PI * cycles_per_sample).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0).sqrt()
}
