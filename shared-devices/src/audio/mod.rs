//! The audio mediator's policy: the priority mixer that folds every
//! partition's PCM stream into the one physical output.
//!
//! The physical output runs at [`RATE`] Hz, S16, [`CHANNELS`] channels
//! interleaved (left, right), and is produced one *period* at a time (for
//! example 480 frames, 10 ms) on the audio device's service core. Each
//! partition's stream is a *source* with a priority, a gain and a duck
//! factor ([`Source`]); [`Mixer::mix`] takes one period of each source and
//! writes one period of output. Everything is integer arithmetic, so the
//! same inputs give bit-exactly the same output on the host and at EL2.
//!
//! Rules:
//! - each source's contribution is `sample × effective gain` (Q16, rounded
//!   half up), summed in `i32` and saturated to `i16`; saturated samples
//!   are counted ([`MixReport::clipped`]);
//! - a source's *target* gain is its `gain_q16`, times its `duck_q16` while
//!   any *other* playing source has a strictly higher priority (ties do
//!   not duck, so two equal streams never attenuate each other);
//! - the effective gain moves to a new target linearly, per frame, over
//!   the mixer's `ramp_frames`, starting at the first frame of the period
//!   in which the target changed: a warning chime's duck begins within the
//!   period the chime starts in, and reaches its depth `ramp_frames` later;
//!   both channels of a frame get the same gain, so the stereo image holds;
//! - a source that stops producing (goes [`Input::Idle`], underruns in the
//!   middle of a period, or is dropped with [`Mixer::drop_source`]) does not
//!   step to zero: the last value it contributed decays linearly to zero
//!   over [`FADE_FRAMES`] (a *tail*), so nobody else hears a click;
//! - a source starts at its current target gain, without a fade-in: a chime
//!   must be heard within one period, and its first sample is the guest's
//!   own business.
//!
//! Bounds (what the host tests hold the mixer to). For a source with a
//! constant sample value `x`, a gain ramp from `g0` to `g1` changes its
//! contribution by at most `|x| × ceil(|g1 - g0| / ramp_frames) / 65536 + 1`
//! counts per frame: at full scale, unity to mute over 240 frames (5 ms),
//! 137 counts. A tail of a contribution `v` changes by at most
//! `ceil(|v| / FADE_FRAMES)` counts per frame: 342 counts for a full-scale
//! sample, about −40 dBFS, where stepping to zero would be a 0 dBFS click.

#[cfg(test)]
mod tests;

/// Sample rate of the physical output, in frames per second.
pub const RATE: u32 = 48_000;

/// Channels per frame of the physical output and of every source
/// (interleaved: left, right).
pub const CHANNELS: usize = 2;

/// A gain of 1 (0 dB) in Q16.
pub const UNITY_Q16: u32 = 1 << 16;

/// The largest gain the mixer applies: 16 (+24.08 dB). Configured gains
/// above it are clamped, so one source's contribution stays within
/// ±2^19 and the `i32` sum of any realistic number of sources cannot
/// overflow before it saturates.
pub const MAX_GAIN_Q16: u32 = 16 << 16;

/// Length of the fade that replaces a stopping source's step to zero:
/// 96 frames, 2 ms. Short enough that a stopped or dropped source is
/// silent well within one 10 ms period (a stop sounds immediate), long
/// enough that a full-scale sample decays in steps of at most 342 counts
/// (≈ −40 dBFS) instead of one 0 dBFS step, which is what makes a click.
pub const FADE_FRAMES: u32 = 96;

/// One partition's stream, as the mixer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Higher is more important (the cluster's warning chimes above the
    /// IVI's media). Only strictly higher priorities duck.
    pub priority: u8,
    /// Linear gain in Q16 ([`UNITY_Q16`] is 0 dB; see [`db_to_q16`]),
    /// clamped to [`MAX_GAIN_Q16`].
    pub gain_q16: u32,
    /// Linear factor in Q16 applied on top of the gain while a source of
    /// strictly higher priority plays: 0 mutes, [`UNITY_Q16`] never ducks.
    /// Values above unity are clamped to unity (ducking never boosts).
    pub duck_q16: u32,
}

/// One source's share of a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The source's stream is not running: it contributes nothing (after
    /// its tail, if it was sounding) and ducks no one.
    Idle,
    /// The stream is running: its samples for this period, interleaved
    /// stereo. Shorter than the period is an underrun (the rest is a tail,
    /// then silence); longer is cut; a dangling odd sample is ignored.
    /// A running stream ducks lower ones even while it underruns: the
    /// guest is still playing, it is merely late.
    Playing(&'a [i16]),
}

/// What one period of mixing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixReport<const N: usize> {
    /// Output samples (counting each channel) that were saturated to the
    /// `i16` range.
    pub clipped: u32,
    /// Whether any playing source was ducked this period (some other
    /// playing source had a strictly higher priority).
    pub ducking: bool,
    /// Playing sources that underran (gave fewer frames than the period).
    pub underruns: u32,
    /// Each source's effective gain (Q16) after the last frame: where its
    /// ramp has got to. Sources beyond those configured read 0.
    pub gains_q16: [u32; N],
}

/// A gain in tenths of a decibel as a linear Q16 factor, rounded to the
/// nearest count: `round(65536 × 10^(db_tenths / 200))`, saturated to
/// `u32::MAX` above about +96 dB.
///
/// Integer only (no `libm` at EL2): `db_tenths` splits into decades
/// (20 dB each, a factor of 10), whole decibels and tenths; two small
/// tables hold `10^(j/20)` and `10^(i/200)` in Q32 and their product is
/// scaled by the decade in 128 bits. The tables' rounding (2^−33 relative)
/// leaves the result correctly rounded, so its error is the Q16 format's
/// own half count: under 0.01 dB down to −43.6 dB (435 counts), and at
/// −96 dB (about 1 count) simply the nearest representable gain.
pub const fn db_to_q16(db_tenths: i32) -> u32 {
    // 10^(i/200) in Q32, i = 0..=9: tenths of a decibel.
    const TENTHS: [u64; 10] = [
        4_294_967_296,
        4_344_700_673,
        4_395_009_936,
        4_445_901_753,
        4_497_382_869,
        4_549_460_108,
        4_602_140_373,
        4_655_430_647,
        4_709_337_993,
        4_763_869_557,
    ];
    // 10^(j/20) in Q32, j = 0..=19: whole decibels within a decade.
    const WHOLE: [u64; 20] = [
        4_294_967_296,
        4_819_032_567,
        5_407_043_472,
        6_066_802_559,
        6_807_064_429,
        7_637_651_909,
        8_569_586_390,
        9_615_234_075,
        10_788_470_075,
        12_104_862_517,
        13_581_879_131,
        15_239_119_029,
        17_098_572_778,
        19_184_914_199,
        21_525_827_776,
        24_152_376_009,
        27_099_411_597,
        30_406_039_913,
        34_116_137_904,
        38_278_936_318,
    ];
    let decade = db_tenths.div_euclid(200);
    let rest = db_tenths.rem_euclid(200) as usize;
    // Mantissa in [1, 10) as Q64: below 10 × 2^64, far from u128's limit.
    let mantissa = WHOLE[rest / 10] as u128 * TENTHS[rest % 10] as u128;
    // Q64 to Q16 is a shift by 48; round half up.
    const SHIFT: u32 = 48;
    if decade >= 5 {
        // 10^5 alone is beyond u32 in Q16.
        return u32::MAX;
    }
    if decade >= 0 {
        let mut scaled = mantissa;
        let mut d = 0;
        while d < decade {
            scaled *= 10;
            d += 1;
        }
        let q16 = (scaled + (1 << (SHIFT - 1))) >> SHIFT;
        return if q16 > u32::MAX as u128 {
            u32::MAX
        } else {
            q16 as u32
        };
    }
    if decade < -10 {
        // Below −200 dB: nowhere near one count.
        return 0;
    }
    let mut divisor: u128 = 1 << SHIFT;
    let mut d = decade;
    while d < 0 {
        divisor *= 10;
        d += 1;
    }
    ((mantissa + divisor / 2) / divisor) as u32
}

/// A linear tail: `start × (FADE_FRAMES − pos) / FADE_FRAMES`, per channel.
#[derive(Clone, Copy, Debug, Default)]
struct Tail {
    start: [i32; CHANNELS],
    pos: u32,
}

impl Tail {
    /// The value last output (before [`Tail::advance`] of this frame).
    fn current(&self) -> [i32; CHANNELS] {
        self.at(self.pos)
    }

    fn at(&self, pos: u32) -> [i32; CHANNELS] {
        let left = FADE_FRAMES.saturating_sub(pos) as i64;
        // Truncation toward zero keeps the decay monotonic and symmetric.
        self.start
            .map(|v| (v as i64 * left / FADE_FRAMES as i64) as i32)
    }

    /// Moves one frame on and returns this frame's value (0 once done).
    fn advance(&mut self) -> [i32; CHANNELS] {
        if self.pos < FADE_FRAMES {
            self.pos += 1;
        }
        self.at(self.pos)
    }
}

/// One source's state.
#[derive(Clone, Copy, Debug)]
struct Voice {
    source: Source,
    /// Effective gain after the last frame (Q16).
    gain: u32,
    /// The ramp in progress: from `ramp_from` to `target` over the mixer's
    /// ramp, `ramp_pos` frames in. Computed from its ends at each frame
    /// (not by accumulating a rounded step) so it lands exactly on target.
    ramp_from: u32,
    target: u32,
    ramp_pos: u32,
    /// Whether the source was playing in the previous period (a source
    /// that was not starts at its target, with no stale ramp).
    was_playing: bool,
    /// Whether its last frame was one of its samples (then a missing
    /// sample starts a tail from `last`).
    sounding: bool,
    /// Its contribution in the last frame it played.
    last: [i32; CHANNELS],
    tail: Tail,
    /// Dropped: its input is ignored until it has been seen idle.
    dropped: bool,
}

impl Voice {
    fn new(source: Source) -> Self {
        let source = Source {
            priority: source.priority,
            gain_q16: source.gain_q16.min(MAX_GAIN_Q16),
            duck_q16: source.duck_q16.min(UNITY_Q16),
        };
        let gain = source.gain_q16;
        Voice {
            source,
            gain,
            ramp_from: gain,
            target: gain,
            ramp_pos: 0,
            was_playing: false,
            sounding: false,
            last: [0; CHANNELS],
            tail: Tail {
                start: [0; CHANNELS],
                pos: FADE_FRAMES,
            },
            dropped: false,
        }
    }

    /// The gain of the next frame.
    fn step_gain(&mut self, ramp_frames: u32) -> u32 {
        if self.gain != self.target {
            if self.ramp_pos + 1 >= ramp_frames {
                self.gain = self.target;
            } else {
                self.ramp_pos += 1;
                let from = self.ramp_from as i64;
                let delta = self.target as i64 - from;
                // Truncation toward zero: monotonic in either direction.
                self.gain = (from + delta * self.ramp_pos as i64 / ramp_frames as i64) as u32;
            }
        }
        self.gain
    }

    /// Sets the target for a period.
    fn retarget(&mut self, target: u32, playing: bool) {
        if !playing || !self.was_playing {
            // Nothing of this source is heard at its gain: no ramp needed.
            self.gain = target;
            self.target = target;
        } else if target != self.target {
            self.ramp_from = self.gain;
            self.target = target;
            self.ramp_pos = 0;
        }
    }

    /// Starts a tail from what this source contributed last, carrying
    /// on any tail still decaying so that one never steps either.
    fn start_tail(&mut self) {
        let carried = self.tail.current();
        let mut start = [0; CHANNELS];
        for c in 0..CHANNELS {
            start[c] = self.last[c].saturating_add(carried[c]);
        }
        self.tail = Tail { start, pos: 0 };
        self.sounding = false;
    }
}

/// `sample × gain` with the gain in Q16, rounded half up. With gains at
/// most [`MAX_GAIN_Q16`], the result is within ±2^19.
fn apply_gain(sample: i16, gain_q16: u32) -> i32 {
    ((sample as i64 * gain_q16 as i64 + (1 << 15)) >> 16) as i32
}

/// The priority mixer for at most `N` sources; no heap, all state inline.
pub struct Mixer<const N: usize> {
    voices: heapless::Vec<Voice, N>,
    ramp_frames: u32,
}

impl<const N: usize> Mixer<N> {
    /// A mixer over `sources` (index `i` is source `i` in [`Mixer::mix`];
    /// sources beyond `N` are left out). Gain changes ramp over
    /// `ramp_frames` frames; 0 steps at once (and clicks: for tests only).
    pub fn new(sources: &[Source], ramp_frames: u32) -> Self {
        Mixer {
            voices: sources.iter().take(N).map(|&s| Voice::new(s)).collect(),
            ramp_frames,
        }
    }

    /// The number of sources the mixer took.
    pub fn len(&self) -> usize {
        self.voices.len()
    }

    /// Whether the mixer has no sources (its output is silence).
    pub fn is_empty(&self) -> bool {
        self.voices.is_empty()
    }

    /// Mixes one period into `out` (interleaved stereo, `out.len()` =
    /// 2 × frames; a dangling odd sample is written 0).
    ///
    /// `inputs[i]` is source `i`'s period: [`Input::Playing`] (interleaved
    /// stereo; if shorter than the period the rest is an underrun: treated
    /// as silence, after a tail rather than a click) or [`Input::Idle`].
    /// Missing inputs are idle; inputs beyond the sources are ignored.
    pub fn mix(&mut self, inputs: &[Input<'_>], out: &mut [i16]) -> MixReport<N> {
        let frames = out.len() / CHANNELS;
        let mut report = MixReport {
            clipped: 0,
            ducking: false,
            underruns: 0,
            gains_q16: [0; N],
        };

        // This period's samples per source; `None` when not playing.
        let mut data: [Option<&[i16]>; N] = [None; N];
        for (i, voice) in self.voices.iter_mut().enumerate() {
            match inputs.get(i).copied().unwrap_or(Input::Idle) {
                Input::Idle => voice.dropped = false,
                Input::Playing(samples) if !voice.dropped => data[i] = Some(samples),
                Input::Playing(_) => {}
            }
        }

        // Targets: ducked while another playing source outranks this one.
        let top = |i: usize| {
            self.voices
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i && data[j].is_some())
                .map(|(_, v)| v.source.priority)
                .max()
        };
        let mut targets = [0u32; N];
        for (i, voice) in self.voices.iter().enumerate() {
            let ducked = top(i).is_some_and(|p| p > voice.source.priority);
            let gain = voice.source.gain_q16 as u64;
            targets[i] = if ducked {
                report.ducking |= data[i].is_some();
                ((gain * voice.source.duck_q16 as u64 + (1 << 15)) >> 16) as u32
            } else {
                voice.source.gain_q16
            };
        }
        for (i, voice) in self.voices.iter_mut().enumerate() {
            voice.retarget(targets[i], data[i].is_some());
            if let Some(samples) = data[i]
                && samples.len() / CHANNELS < frames
            {
                report.underruns += 1;
            }
        }

        for (f, frame) in out.chunks_exact_mut(CHANNELS).enumerate() {
            let mut sum = [0i32; CHANNELS];
            for (i, voice) in self.voices.iter_mut().enumerate() {
                let gain = voice.step_gain(self.ramp_frames);
                let samples = data[i].and_then(|d| d.get(f * CHANNELS..(f + 1) * CHANNELS));
                match samples {
                    Some(samples) => {
                        for (last, &sample) in voice.last.iter_mut().zip(samples) {
                            *last = apply_gain(sample, gain);
                        }
                        voice.sounding = true;
                    }
                    None if voice.sounding => voice.start_tail(),
                    None => {}
                }
                let tail = voice.tail.advance();
                for c in 0..CHANNELS {
                    let own = if voice.sounding { voice.last[c] } else { 0 };
                    sum[c] = sum[c].saturating_add(own).saturating_add(tail[c]);
                }
            }
            for c in 0..CHANNELS {
                let clamped = sum[c].clamp(i16::MIN as i32, i16::MAX as i32);
                report.clipped += (clamped != sum[c]) as u32;
                frame[c] = clamped as i16;
            }
        }
        if let Some(odd) = out.chunks_exact_mut(CHANNELS).into_remainder().first_mut() {
            *odd = 0;
        }

        for (i, voice) in self.voices.iter_mut().enumerate() {
            voice.was_playing = data[i].is_some();
            report.gains_q16[i] = voice.gain;
        }
        report
    }

    /// Source `i` was dropped (its partition stopped or restarted): from
    /// the next period it fades out from its last sample value instead of
    /// stepping to zero (no click for the others), then stays silent, its
    /// input ignored (stale buffers of the old partition must not sound)
    /// until a period in which it is [`Input::Idle`]; its next stream then
    /// plays normally. An index beyond the sources is ignored.
    pub fn drop_source(&mut self, i: usize) {
        if let Some(voice) = self.voices.get_mut(i) {
            voice.dropped = true;
        }
    }
}
