//! The warning chimes: what they sound like and when they are due, from
//! the drive and the time since boot.
//!
//! Time is counted in frames of the chime stream (48 kHz) since the drive
//! began (frame `48 * t_ms` is drive time `t_ms`), the timeline the
//! picture is drawn on too. A [`Source`] says, for each millisecond, what
//! the chimes depend on ([`Conditions`]); [`Chimes`] turns that into chime
//! starts, one millisecond at a time, and renders any period of the
//! timeline: its samples (interleaved, every channel the same) and which
//! chimes begin in it, at which exact frame.
//!
//! - **belt**: while the driver's belt is open and the car moves at
//!   [`BELT_MIN_KMH`] or more, 1000 Hz for 150 ms then 750 Hz for 150 ms,
//!   repeated every [`BELT_REPEAT_MS`] from the moment the warning began,
//!   for at most [`BELT_LIMIT_MS`] (then silent until the belt has been
//!   fastened or the car stopped, and the warning begins again).
//! - **tick** and **tock**: a 5 ms decaying click, 2500 Hz as a turn
//!   indicator lights and 1600 Hz as it goes out: at every edge of the
//!   blink the telltale strip draws ([`crate::drive::Car::blinking`], the
//!   same function of time), so the relay is heard exactly when the arrow
//!   changes.
//! - **warning**: the high-priority chime, three beeps of 2000 Hz (100 ms
//!   each, 60 ms apart): when the check engine lamp comes on, and at the
//!   times `cluster.warn_at_ms` names.
//!
//! Tones start at phase 0 and ramp in and out over 3 ms (clicks over
//! 0.5 ms, then decay quadratically), so nothing clicks; the belt's two
//! tones join without a jump (150 ms of 1000 Hz is whole cycles). A chime
//! that starts again while it sounds starts over; different chimes add
//! up, and their peak amplitudes (8000 + 6000 + 6000 + 12000) stay below
//! full scale, so no sample clips. Everything is integer arithmetic (a
//! sine table built at compile time, interpolated in fixed point), so
//! every run gives the same samples, and a sample depends only on its
//! frame, not on how the timeline is cut into periods.
//!
//! The stream is needed while a chime sounds and for [`TAIL_MS`] after
//! (the tail lets the device play the last samples out before STOP):
//! [`Period::needed`].

use crate::drive::{self, lamp};

/// Frames per second.
pub const RATE: u64 = 48_000;
/// Frames per millisecond.
pub const FRAMES_PER_MS: u64 = RATE / 1000;
/// How long the stream runs on (silent) after the last chime ended.
pub const TAIL_MS: u64 = 20;
pub const TAIL_FRAMES: u64 = TAIL_MS * FRAMES_PER_MS;

/// The belt chime repeats this often while the warning lasts.
pub const BELT_REPEAT_MS: u64 = 1000;
/// ... for this long at most (the last repetition begins before it ends).
pub const BELT_LIMIT_MS: u64 = 90_000;
/// The car moves: the belt warning sounds from this speed on.
pub const BELT_MIN_KMH: f32 = 10.0;

/// The belt chime's tones.
pub const BELT_HIGH_HZ: u64 = 1000;
pub const BELT_LOW_HZ: u64 = 750;
pub const BELT_TONE_MS: u64 = 150;
/// The clicks of the turn signal.
pub const TICK_HZ: u64 = 2500;
pub const TOCK_HZ: u64 = 1600;
pub const CLICK_MS: u64 = 5;
/// The warning's beeps.
pub const WARNING_HZ: u64 = 2000;
pub const WARNING_BEEPS: u64 = 3;
pub const WARNING_BEEP_MS: u64 = 100;
pub const WARNING_GAP_MS: u64 = 60;

/// Peak amplitudes: their sum stays below full scale.
pub const BELT_AMP: i64 = 8000;
pub const CLICK_AMP: i64 = 6000;
pub const WARNING_AMP: i64 = 12000;
const _: () = assert!(BELT_AMP + 2 * CLICK_AMP + WARNING_AMP < 32767);

/// Ramp in and out of a tone.
const RAMP_FRAMES: u64 = 3 * FRAMES_PER_MS;
/// Rise of a click.
const CLICK_ATTACK: u64 = FRAMES_PER_MS / 2;

/// Chime starts remembered (from the oldest one that may still sound).
const LOG: usize = 32;
/// Chimes sounding in one period at most (more are not mixed).
const VOICES: usize = 16;

/// One of the chimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chime {
    Belt,
    Tick,
    Tock,
    Warning,
}

impl Chime {
    pub const ALL: [Chime; 4] = [Chime::Belt, Chime::Tick, Chime::Tock, Chime::Warning];

    /// The name the console lines use.
    pub fn name(self) -> &'static str {
        match self {
            Chime::Belt => "belt",
            Chime::Tick => "tick",
            Chime::Tock => "tock",
            Chime::Warning => "warning",
        }
    }

    /// Its length in frames.
    pub fn frames(self) -> u64 {
        match self {
            Chime::Belt => 2 * BELT_TONE_MS * FRAMES_PER_MS,
            Chime::Tick | Chime::Tock => CLICK_MS * FRAMES_PER_MS,
            Chime::Warning => {
                (WARNING_BEEPS * WARNING_BEEP_MS + (WARNING_BEEPS - 1) * WARNING_GAP_MS)
                    * FRAMES_PER_MS
            }
        }
    }

    /// Its sample `n` frames after it began (0 from its end on).
    pub fn sample(self, n: u64) -> i32 {
        if n >= self.frames() {
            return 0;
        }
        match self {
            Chime::Belt => {
                let tone = BELT_TONE_MS * FRAMES_PER_MS;
                let (hz, m) = if n < tone {
                    (BELT_HIGH_HZ, n)
                } else {
                    (BELT_LOW_HZ, n - tone)
                };
                voice(BELT_AMP, ramp(n, 2 * tone), hz, m)
            }
            Chime::Tick | Chime::Tock => {
                let hz = if self == Chime::Tick {
                    TICK_HZ
                } else {
                    TOCK_HZ
                };
                let len = self.frames();
                let envelope = if n < CLICK_ATTACK {
                    n * Q15 / CLICK_ATTACK
                } else {
                    let (left, decay) = (len - n, len - CLICK_ATTACK);
                    left * left * Q15 / (decay * decay)
                };
                voice(CLICK_AMP, envelope, hz, n)
            }
            Chime::Warning => {
                let every = (WARNING_BEEP_MS + WARNING_GAP_MS) * FRAMES_PER_MS;
                let beep = WARNING_BEEP_MS * FRAMES_PER_MS;
                let m = n % every;
                if m >= beep {
                    return 0;
                }
                voice(WARNING_AMP, ramp(m, beep), WARNING_HZ, m)
            }
        }
    }
}

/// 1.0 in Q15.
const Q15: u64 = 1 << 15;

/// The envelope of a tone `len` frames long at frame `n`, in Q15: ramps
/// of [`RAMP_FRAMES`] at both ends.
fn ramp(n: u64, len: u64) -> u64 {
    let edge = n.min(len - n);
    if edge >= RAMP_FRAMES {
        Q15
    } else {
        edge * Q15 / RAMP_FRAMES
    }
}

/// `amp` · `envelope` (Q15) · sin(2π hz m / RATE), rounded.
fn voice(amp: i64, envelope: u64, hz: u64, m: u64) -> i32 {
    let phase = (((m * hz) % RATE) << 32) / RATE;
    let product = amp * envelope as i64 * i64::from(sine(phase as u32));
    ((product + (1 << 29)) >> 30) as i32
}

/// Points of the sine table (one whole period), a power of two.
const TABLE_BITS: u32 = 10;
const TABLE: usize = 1 << TABLE_BITS;
/// sin(2πk/TABLE) in Q15 for k = 0..=TABLE (the last one again the first,
/// for interpolation).
static SINE: [i32; TABLE + 1] = sine_table();

/// 1.0 in Q30.
const ONE_Q30: i64 = 1 << 30;
/// π/2 in Q30.
const HALF_PI_Q30: i64 = 1_686_629_713;

/// sin(x) for x in [0, π/2], both in Q30: the Taylor series to the x^13
/// term, in Horner form (the error is below 1e-9 there).
const fn sin_quadrant(x: i64) -> i64 {
    let x2 = (x * x) >> 30;
    let mut t = ONE_Q30;
    let mut k = 6;
    while k >= 1 {
        t = ONE_Q30 - ((x2 * t) >> 30) / ((2 * k) * (2 * k + 1));
        k -= 1;
    }
    (x * t) >> 30
}

const fn sine_table() -> [i32; TABLE + 1] {
    let quarter = TABLE / 4;
    let mut table = [0i32; TABLE + 1];
    let mut k = 0;
    while k <= TABLE {
        // Fold into the first quadrant: sin(π - x) = sin x, sin(x + π) = -sin x.
        let in_half = k % (2 * quarter);
        let q = if in_half <= quarter {
            in_half
        } else {
            2 * quarter - in_half
        };
        let x = HALF_PI_Q30 * q as i64 / quarter as i64;
        let v = (sin_quadrant(x) + (1 << 14)) >> 15;
        let v = if v > 32767 { 32767 } else { v };
        table[k] = if (k / (2 * quarter)) % 2 == 1 {
            -v as i32
        } else {
            v as i32
        };
        k += 1;
    }
    table
}

/// sin(2π phase / 2^32) in Q15, interpolated linearly in the table.
fn sine(phase: u32) -> i32 {
    let i = (phase >> (32 - TABLE_BITS)) as usize;
    let frac = i64::from((phase >> (32 - TABLE_BITS - 16)) & 0xffff);
    let (a, b) = (i64::from(SINE[i]), i64::from(SINE[i + 1]));
    (a + (((b - a) * frac) >> 16)) as i32
}

/// What the chimes depend on, in one millisecond.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The seat belt warning applies (belt open, car moving).
    pub belt: bool,
    /// A turn indicator is lit (as the telltale strip draws it).
    pub indicator: bool,
    /// The high-priority warning applies: it sounds as this comes on.
    pub warning: bool,
    /// The warning sounds now, whatever `warning` does (a test hook).
    pub warning_now: bool,
}

/// What the chimes are computed from: conditions per millisecond since
/// the drive began.
pub trait Source {
    fn conditions(&self, t_ms: u64) -> Conditions;
}

impl<F: Fn(u64) -> Conditions> Source for F {
    fn conditions(&self, t_ms: u64) -> Conditions {
        self(t_ms)
    }
}

/// The drive's conditions at `t_ms`: the belt warning while the belt
/// telltale is on and the car moves, the indicators as the strip draws
/// them blinking, and the warning while the check engine lamp is on (not
/// the bulb check's lamps).
pub fn drive_conditions(t_ms: u64) -> Conditions {
    let car = drive::at(t_ms);
    let after_check = t_ms >= drive::BULB_CHECK_MS;
    Conditions {
        belt: after_check && car.lamps & lamp::BELT != 0 && car.speed_kmh >= BELT_MIN_KMH,
        indicator: car.blinking(t_ms) != 0,
        warning: after_check && car.lamps & lamp::ENGINE != 0,
        warning_now: false,
    }
}

/// `cluster.chime_test`: the times of the test chimes after `at`.
pub mod test_schedule {
    /// The belt chime (one repetition).
    pub const BELT_MS: u64 = 0;
    /// One flash of an indicator: tick as it lights, tock as it goes out.
    pub const TICK_MS: u64 = 1000;
    pub const TOCK_MS: u64 = TICK_MS + crate::drive::BLINK_PERIOD_MS / 2;
    pub const WARNING_MS: u64 = 2000;
    /// All of them have ended by then.
    pub const END_MS: u64 = 2500;
}

/// The conditions of `cluster.chime_test=<at>`: each chime once, from
/// `at` on ([`test_schedule`]).
pub fn test_conditions(at: u64, t_ms: u64) -> Conditions {
    let Some(dt) = t_ms.checked_sub(at) else {
        return Conditions::default();
    };
    Conditions {
        belt: dt == test_schedule::BELT_MS,
        indicator: (test_schedule::TICK_MS..test_schedule::TOCK_MS).contains(&dt),
        warning: false,
        warning_now: dt == test_schedule::WARNING_MS,
    }
}

/// Times of `cluster.warn_at_ms` at most.
pub const MAX_WARN_AT: usize = 4;

/// The cluster's source: the drive (or the test chimes), and warnings at
/// given times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Triggers {
    /// `cluster.chime_test=<ms>`: the test chimes from then on instead of
    /// the drive's.
    pub test_at: Option<u64>,
    /// `cluster.warn_at_ms=<ms>,...`: the warning at these times too.
    pub warn_at: [Option<u64>; MAX_WARN_AT],
}

impl Source for Triggers {
    fn conditions(&self, t_ms: u64) -> Conditions {
        let mut c = match self.test_at {
            Some(at) => test_conditions(at, t_ms),
            None => drive_conditions(t_ms),
        };
        c.warning_now |= self.warn_at.contains(&Some(t_ms));
        c
    }
}

/// A chime's beginning on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Start {
    pub chime: Chime,
    /// Its first frame.
    pub frame: u64,
}

impl Start {
    /// The frame after its last.
    pub fn end(&self) -> u64 {
        self.frame + self.chime.frames()
    }
}

/// A few chime starts (those of one period, of one run).
#[derive(Clone, Copy, Debug)]
pub struct Starts {
    items: [Start; Starts::CAPACITY],
    len: usize,
}

impl PartialEq for Starts {
    fn eq(&self, other: &Starts) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Starts {}

impl Default for Starts {
    fn default() -> Self {
        Starts::new()
    }
}

impl Starts {
    pub const CAPACITY: usize = 8;

    pub const fn new() -> Starts {
        Starts {
            items: [Start {
                chime: Chime::Belt,
                frame: 0,
            }; Starts::CAPACITY],
            len: 0,
        }
    }

    /// Adds `s` (dropped if full).
    pub fn push(&mut self, s: Start) {
        if self.len < Self::CAPACITY {
            self.items[self.len] = s;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[Start] {
        &self.items[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// What [`Chimes::render`] found in a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Period {
    /// Chimes that begin in it.
    pub started: Starts,
    /// Some chime sounds in it.
    pub sounding: bool,
    /// The stream is needed in it: a chime sounds in it or ended less
    /// than [`TAIL_MS`] before it began.
    pub needed: bool,
}

/// The chimes of a [`Source`]: scans it one millisecond at a time and
/// keeps the starts that may still sound.
///
/// Queries are meant to move forward (as a stream plays); one that goes
/// back before what was forgotten starts the scan over from 0, so the
/// answers are those of a pure function of the frame either way.
pub struct Chimes<S> {
    source: S,
    /// Conditions are known before this millisecond.
    scanned: u64,
    last: Conditions,
    /// When the current belt warning began.
    belt_since: Option<u64>,
    /// Starts from the oldest that may still matter, in frame order.
    log: [Start; LOG],
    len: usize,
    /// No query goes before this frame (what ended before is forgotten).
    floor: u64,
    /// Starts dropped because the log was full (never, at sane rates).
    pub overflow: u32,
    /// Times a query went back and the scan started over.
    pub rewinds: u32,
}

impl<S: Source> Chimes<S> {
    pub fn new(source: S) -> Chimes<S> {
        Chimes {
            source,
            scanned: 0,
            last: Conditions::default(),
            belt_since: None,
            log: [Start {
                chime: Chime::Belt,
                frame: 0,
            }; LOG],
            len: 0,
            floor: 0,
            overflow: 0,
            rewinds: 0,
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// Scans the milliseconds before `t_ms`.
    fn scan_to(&mut self, t_ms: u64) {
        while self.scanned < t_ms {
            let t = self.scanned;
            let c = self.source.conditions(t);
            let frame = t * FRAMES_PER_MS;
            if c.belt {
                let since = *self.belt_since.get_or_insert(t);
                let k = t - since;
                if k < BELT_LIMIT_MS && k.is_multiple_of(BELT_REPEAT_MS) {
                    self.push(Chime::Belt, frame);
                }
            } else {
                self.belt_since = None;
            }
            if c.indicator != self.last.indicator {
                let chime = if c.indicator {
                    Chime::Tick
                } else {
                    Chime::Tock
                };
                self.push(chime, frame);
            }
            if c.warning_now || (c.warning && !self.last.warning) {
                self.push(Chime::Warning, frame);
            }
            self.last = c;
            self.scanned += 1;
        }
    }

    /// Scans everything that may start before frame `end`.
    fn scan_frames(&mut self, end: u64) {
        self.scan_to(end.div_ceil(FRAMES_PER_MS));
    }

    fn push(&mut self, chime: Chime, frame: u64) {
        if self.len == LOG {
            self.log.copy_within(1.., 0);
            self.len -= 1;
            self.overflow += 1;
        }
        self.log[self.len] = Start { chime, frame };
        self.len += 1;
    }

    /// Moves the floor to `frame` (forgetting what has ended by then,
    /// tail included), or starts over if `frame` is below it.
    fn seek(&mut self, frame: u64) {
        if frame < self.floor {
            self.rewinds += 1;
            self.scanned = 0;
            self.last = Conditions::default();
            self.belt_since = None;
            self.len = 0;
        }
        self.floor = frame;
        let gone = self.log[..self.len]
            .iter()
            .take_while(|s| s.end() + TAIL_FRAMES <= frame)
            .count();
        self.log.copy_within(gone..self.len, 0);
        self.len -= gone;
    }

    /// The first chime that starts in `from..until` (frames).
    pub fn next_start(&mut self, from: u64, until: u64) -> Option<Start> {
        self.seek(from);
        let end = until.div_ceil(FRAMES_PER_MS);
        loop {
            let found = self.log[..self.len]
                .iter()
                .find(|s| s.frame >= from && s.frame < until);
            if found.is_some() || self.scanned >= end {
                return found.copied();
            }
            // One millisecond at a time: stop at the first start.
            self.scan_to(self.scanned + 1);
        }
    }

    /// The starts at `frame` (all of them once [`Chimes::next_start`]
    /// has returned one there).
    pub fn starts_at(&self, frame: u64) -> Starts {
        let mut out = Starts::new();
        for s in self.log[..self.len].iter().filter(|s| s.frame == frame) {
            out.push(*s);
        }
        out
    }

    /// Whether the stream is needed in `first..first + frames` (see
    /// [`Period::needed`]).
    pub fn needed(&mut self, first: u64, frames: u64) -> bool {
        self.seek(first);
        let end = first + frames;
        self.scan_frames(end);
        self.log[..self.len]
            .iter()
            .any(|s| s.frame < end && s.end() + TAIL_FRAMES > first)
    }

    /// Renders the period from frame `first` into `out` (interleaved,
    /// `channels` per frame, all the same; as many frames as fit).
    pub fn render(&mut self, first: u64, out: &mut [i16], channels: usize) -> Period {
        let channels = channels.max(1);
        let frames = (out.len() / channels) as u64;
        let end = first + frames;
        self.seek(first);
        self.scan_frames(end);
        let mut period = Period::default();
        // The voices that sound in the period: (start, end) with a start
        // of the same chime cutting the one before.
        let mut voices = [(
            Start {
                chime: Chime::Belt,
                frame: 0,
            },
            0u64,
        ); VOICES];
        let mut count = 0;
        let log = &self.log[..self.len];
        for (i, s) in log.iter().enumerate() {
            if s.frame >= end {
                break;
            }
            if s.frame >= first {
                period.started.push(*s);
            }
            if s.end() + TAIL_FRAMES > first {
                period.needed = true;
            }
            let cut = log[i + 1..]
                .iter()
                .find(|n| n.chime == s.chime)
                .map_or(u64::MAX, |n| n.frame);
            let until = s.end().min(cut);
            if until > first && count < VOICES {
                voices[count] = (*s, until);
                count += 1;
            }
        }
        let voices = &voices[..count];
        period.sounding = voices
            .iter()
            .any(|(s, until)| s.frame < end && *until > first);
        for (k, frame) in out.chunks_exact_mut(channels).enumerate() {
            let f = first + k as u64;
            let mut sum = 0i32;
            for (s, until) in voices {
                if s.frame <= f && f < *until {
                    sum += s.chime.sample(f - s.frame);
                }
            }
            frame.fill(sum.clamp(-32767, 32767) as i16);
        }
        period
    }
}

#[cfg(test)]
mod tests;
