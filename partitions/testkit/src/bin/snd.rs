//! `snd`: plays a sequence of sine tones on stream 0 of its virtio-snd
//! device (S16, 48 kHz), with the counter values tests compare with a
//! recording.
//!
//! `snd.tones=<hz>:<ms>,...` (default `440:200,0:100,880:200`; 0 Hz is
//! silence) is played `snd.repeat=<n>` times (default 1; `forever` never
//! stops) on `snd.channels=<1|2>` channels (default 2, the same samples on
//! both), in periods of `snd.period_ms=<ms>` (default 10) with
//! `snd.periods=<n>` of them in flight (default 4, at most 8; the stream's
//! `buffer_bytes` is that many periods), at amplitude `snd.amp=<n>`
//! (default 8000, at most 32767). The samples come from a 1024-point sine
//! table with linear interpolation in fixed point (integer only, so every
//! run gives the same bytes); the phase runs on across periods and from
//! one tone to the next, and starts again at 0 at a tone that follows
//! silence (or starts the sequence), so the waveform never jumps except
//! where a tone stops. The last period is padded with silence.
//!
//! It queues the first periods, then sends START (at counter time
//! `snd.start_at_ms=<T>`, i.e. when CNTVCT reaches T ms of CNTFRQ ticks,
//! if given), then keeps the ring fed: every quarter period it takes back
//! what the device returned and queues as many periods as there are free
//! slots. With `snd.feed=slow` it queues one period every two period
//! times after START instead, so the device runs dry (an underrun).
//! An underrun is counted once per episode: an XRUN event, or the driver
//! finding every period it queued returned while the sequence goes on.
//! At the end (all returned, then `snd.drain_ms=<ms>` more, default the
//! buffer's time plus 20 ms, since a device may return a period before it
//! has played it) it sends STOP and RELEASE and idles.
//!
//! ```text
//! snd: device at 0x<base>
//! snd: config jacks=<n> streams=<n> chmaps=<n>
//! snd: pcm formats=0x<bits> rates=0x<bits> channels=<min>..<max>
//! snd: params channels=<c> rate=48000 period_bytes=<n> buffer_bytes=<n> cntfrq=<hz>
//! snd: tone <i> <hz> Hz at counter <ticks>   (i counts every tone played, repeats included)
//! snd: start at counter <ticks>              (CNTVCT read right before START was sent)
//! snd: late start: start_at_ms=<T> had passed
//! snd: first period returned at counter <ticks>   (seen by the driver, within 250 us)
//! snd: xrun                                  (each XRUN event)
//! snd: done periods=<returned> underruns=<episodes>
//! snd: error: <what>: <error>
//! snd: no device
//! ```
//!
//! The `tone` lines of the periods queued before START come before the
//! `start` line.
//!
//! With `snd.cycles=<n>` it plays the sequence n times (default 1), each
//! from its own START to its own STOP, `snd.gap_ms=<ms>` apart (default
//! 200): a chime that comes again and again, as the audio bench needs.
//!
//! With `snd.fault_at_ms=<T>` it reads unmapped memory once the counter
//! reaches T ms, mid-sequence, on its first boot only (so the hypervisor
//! stops or restarts it while its stream plays); after a restart it
//! plays normally and says so:
//!
//! ```text
//! snd: faulting at counter <ticks>
//! snd: restarts <n>
//! ```

#![no_std]
#![no_main]

use heapless::Vec;
use testkit::rt::virtio_snd::{self, PERIOD_MAX, Sound, TX_SLOTS};
use testkit::rt::{park, platform, timer};
use testkit::{args, println};

testkit::entry!("snd", main);

/// Frames per second.
const RATE: u32 = 48_000;
/// Most tones of a sequence.
const MAX_TONES: usize = 32;
/// Without a completion for this long, the device is taken as stuck.
const STUCK_MS: u64 = 1000;

/// Points of the sine table (one whole period), a power of two.
const TABLE_BITS: u32 = 10;
const TABLE: usize = 1 << TABLE_BITS;
/// The sine, in Q30, at 2πk/TABLE for k = 0..=TABLE (the last = the first,
/// for interpolation).
static SINE: [i32; TABLE + 1] = sine_table();

/// sin(x) for x in [0, π/2], x and the result in Q30 (Taylor series to the
/// x^15 term: error below 1e-9 there).
const fn sin_q30(x: i64) -> i64 {
    let x2 = (x * x) >> 30;
    let mut term = x;
    let mut sum = x;
    let mut n = 1;
    while n <= 7 {
        term = -((term * x2) >> 30) / ((2 * n) * (2 * n + 1));
        sum += term;
        n += 1;
    }
    sum
}

const fn sine_table() -> [i32; TABLE + 1] {
    /// π in Q30.
    const PI: i64 = 3_373_259_426;
    let quarter = TABLE / 4;
    let mut t = [0i32; TABLE + 1];
    let mut k = 0;
    while k <= TABLE {
        // Fold k into the first quadrant.
        let (q, negative) = match k / quarter {
            0 => (k, false),
            1 => (2 * quarter - k, false),
            2 => (k - 2 * quarter, true),
            3 => (4 * quarter - k, true),
            _ => (0, false),
        };
        let mut v = sin_q30(PI * q as i64 / (2 * quarter as i64));
        if v > 1 << 30 {
            v = 1 << 30;
        }
        t[k] = if negative { -v as i32 } else { v as i32 };
        k += 1;
    }
    t
}

/// sin(2π phase / 2^32) in Q30.
fn sine(phase: u32) -> i64 {
    let i = (phase >> (32 - TABLE_BITS)) as usize;
    let frac = i64::from((phase >> (32 - TABLE_BITS - 16)) & 0xffff);
    let (a, b) = (i64::from(SINE[i]), i64::from(SINE[i + 1]));
    a + (((b - a) * frac) >> 16)
}

#[derive(Clone, Copy)]
struct Tone {
    hz: u32,
    ms: u32,
}

/// The tone sequence as a stream of samples.
struct Generator {
    tones: Vec<Tone, MAX_TONES>,
    /// Passes through the sequence left (None: forever).
    passes_left: Option<u32>,
    /// The tone playing, its frames left, and how many tones began.
    tone: usize,
    frames_left: u64,
    begun: u64,
    phase: u32,
    step: u32,
    amp: i64,
    after_silence: bool,
    finished: bool,
}

impl Generator {
    fn new(tones: Vec<Tone, MAX_TONES>, passes: Option<u32>, amp: i64) -> Generator {
        let mut g = Generator {
            tones,
            passes_left: passes,
            tone: 0,
            frames_left: 0,
            begun: 0,
            phase: 0,
            step: 0,
            amp,
            after_silence: true,
            finished: passes == Some(0),
        };
        if !g.finished {
            g.begin(0);
        }
        g
    }

    /// Makes tone `i` of the sequence the current one.
    fn begin(&mut self, i: usize) {
        let t = self.tones[i];
        self.tone = i;
        self.frames_left = u64::from(t.ms) * u64::from(RATE) / 1000;
        self.step = (((u64::from(t.hz) << 32) + u64::from(RATE / 2)) / u64::from(RATE)) as u32;
        if t.hz == 0 {
            self.after_silence = true;
        } else if self.after_silence {
            self.phase = 0;
            self.after_silence = false;
        }
    }

    /// Moves on to the next tone with frames (false: the sequence ended).
    fn advance(&mut self) -> bool {
        loop {
            let mut next = self.tone + 1;
            if next == self.tones.len() {
                next = 0;
                if let Some(left) = self.passes_left.as_mut() {
                    *left -= 1;
                    if *left == 0 {
                        self.finished = true;
                        return false;
                    }
                }
            }
            self.begun += 1;
            self.begin(next);
            if self.frames_left > 0 {
                return true;
            }
        }
    }

    /// Fills `out` (interleaved, `channels` per frame) with the next
    /// frames, silence after the end; returns the tones that begin in it
    /// as (index among all tones begun, hz).
    fn fill(&mut self, out: &mut [i16], channels: usize) -> Vec<(u64, u32), 8> {
        let mut begun = Vec::new();
        for frame in out.chunks_mut(channels) {
            while !self.finished && self.frames_left == 0 {
                if !self.advance() {
                    break;
                }
            }
            if self.finished {
                frame.fill(0);
                continue;
            }
            if self.frames_left == u64::from(self.tones[self.tone].ms) * u64::from(RATE) / 1000 {
                let _ = begun.push((self.begun, self.tones[self.tone].hz));
            }
            let v = if self.step == 0 {
                0
            } else {
                ((self.amp * sine(self.phase) + (1 << 29)) >> 30) as i16
            };
            frame.fill(v);
            self.phase = self.phase.wrapping_add(self.step);
            self.frames_left -= 1;
            // Look ahead, so that the end is known with the last frame.
            while !self.finished && self.frames_left == 0 {
                if !self.advance() {
                    break;
                }
            }
        }
        begun
    }
}

fn parse_tones(text: &str) -> Option<Vec<Tone, MAX_TONES>> {
    let mut tones = Vec::new();
    for item in text.split(',').filter(|i| !i.is_empty()) {
        let (hz, ms) = item.split_once(':')?;
        let tone = Tone {
            hz: hz.parse().ok().filter(|&h| h < RATE / 2)?,
            ms: ms.parse().ok()?,
        };
        tones.push(tone).ok()?;
    }
    // A sequence of nothing would never end (with `snd.repeat=forever`).
    tones.iter().any(|t| t.ms > 0).then_some(tones)
}

fn fail(what: &str, e: virtio_snd::Error) -> ! {
    println!("snd: error: {}: {}", what, e);
    park()
}

fn main() -> ! {
    let bootargs = platform().bootargs;
    let number = |key: &str, default: u64| -> u64 {
        args::value(bootargs, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let tones_text = args::value(bootargs, "snd.tones").unwrap_or("440:200,0:100,880:200");
    let Some(tones) = parse_tones(tones_text) else {
        println!("snd: error: bad snd.tones '{}'", tones_text);
        park()
    };
    let passes = match args::value(bootargs, "snd.repeat") {
        Some("forever") => None,
        Some(n) => Some(n.parse().unwrap_or(1)),
        None => Some(1),
    };
    let channels = number("snd.channels", 2).clamp(1, 2) as usize;
    let period_ms = number("snd.period_ms", 10).max(1);
    let periods = number("snd.periods", 4).clamp(1, TX_SLOTS as u64) as u32;
    let amp = number("snd.amp", 8000).min(32767) as i64;
    let start_at_ms = args::value(bootargs, "snd.start_at_ms").and_then(|v| v.parse::<u64>().ok());
    let slow = args::value(bootargs, "snd.feed") == Some("slow");
    let drain_ms = number("snd.drain_ms", u64::from(periods) * period_ms + 20);
    let cycles = number("snd.cycles", 1).max(1);
    let gap_ms = number("snd.gap_ms", 200);
    let restarts = platform().restart_count;
    let fault_at = args::value(bootargs, "snd.fault_at_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| restarts == 0)
        .map(|ms| ms * timer::frequency() / 1000);
    if restarts > 0 {
        println!("snd: restarts {}", restarts);
    }

    let period_frames = period_ms as usize * RATE as usize / 1000;
    let period_samples = period_frames * channels;
    let period_bytes = period_samples * 2;
    if period_bytes > PERIOD_MAX {
        println!(
            "snd: error: snd.period_ms={} needs {} bytes a period, the driver holds {}",
            period_ms, period_bytes, PERIOD_MAX
        );
        park()
    }

    let Some(node) = virtio_snd::find() else {
        println!("snd: no device");
        park()
    };
    println!("snd: device at 0x{:x}", node.base);
    let mut sound = match Sound::open_at(node) {
        Ok(s) => s,
        Err(e) => fail("open", e),
    };
    let c = sound.config();
    println!(
        "snd: config jacks={} streams={} chmaps={}",
        c.jacks, c.streams, c.chmaps
    );
    let info = match sound.pcm_info() {
        Ok(i) => i,
        Err(e) => fail("pcm info", e),
    };
    println!(
        "snd: pcm formats=0x{:x} rates=0x{:x} channels={}..{}",
        info.formats, info.rates, info.channels_min, info.channels_max
    );
    if info.direction != virtio_snd::DIRECTION_OUTPUT {
        println!("snd: error: stream 0 is not an output stream");
        park()
    }
    let buffer_bytes = period_bytes as u32 * periods;
    if let Err(e) = sound.set_params(channels as u8, period_bytes as u32, buffer_bytes) {
        fail("set params", e)
    }
    println!(
        "snd: params channels={} rate={} period_bytes={} buffer_bytes={} cntfrq={}",
        channels,
        RATE,
        period_bytes,
        buffer_bytes,
        timer::frequency()
    );
    if let Err(e) = sound.prepare() {
        fail("prepare", e)
    }

    let mut generator = Generator::new(tones.clone(), passes, amp);
    let mut buffer = [0i16; PERIOD_MAX / 2];
    let period = &mut buffer[..period_samples];
    let mut queue_one = |sound: &mut Sound, generator: &mut Generator| {
        let begun = generator.fill(period, channels);
        let at = timer::counter();
        match sound.write(period) {
            Ok(()) => {}
            Err(e) => fail("write", e),
        }
        for (i, hz) in begun {
            println!("snd: tone {} {} Hz at counter {}", i, hz, at);
        }
    };

    let period_ticks = timer::ms_to_ticks(period_ms);
    let mut returned = 0usize;
    let mut underruns = 0u32;
    for cycle in 0..cycles {
        if cycle > 0 {
            // The next cycle: the sequence again, after a pause with the
            // stream stopped.
            timer::sleep_ms(gap_ms);
            generator = Generator::new(tones.clone(), passes, amp);
        }
        // Prefill, then START.
        while sound.free_slots() > 0 && !generator.finished {
            queue_one(&mut sound, &mut generator);
        }
        if let Some(ms) = start_at_ms.filter(|_| cycle == 0) {
            let target = ms * timer::frequency() / 1000;
            if timer::counter() > target {
                println!("snd: late start: start_at_ms={} had passed", ms);
            }
            timer::sleep_until(target);
        }
        let started = timer::counter();
        let start = sound.start();
        println!("snd: start at counter {}", started);
        if let Err(e) = start {
            fail("start", e)
        }

        let mut next_slow = started + 2 * period_ticks;
        let mut starved = false;
        let mut last_completion = timer::counter();
        let mut reported_errors = false;
        loop {
            let done = sound.reap();
            let now = timer::counter();
            if fault_at.is_some_and(|at| now >= at) {
                println!("snd: faulting at counter {}", now);
                // SAFETY: none needed: this read is meant to fault.
                let _ = unsafe { core::ptr::read_volatile(0x3000_0000 as *const u64) };
            }
            if done.count > 0 {
                if returned == 0 {
                    println!("snd: first period returned at counter {}", now);
                }
                returned += done.count;
                last_completion = now;
                if done.errors > 0 && !reported_errors {
                    reported_errors = true;
                    println!(
                        "snd: error: tx: {} period(s) returned with status 0x{:x} ({})",
                        done.errors,
                        done.status,
                        virtio_snd::status_name(done.status)
                    );
                }
            }
            let events = sound.events();
            for _ in 0..events.xrun {
                println!("snd: xrun");
            }
            if (events.xrun > 0 || sound.in_flight() == 0) && !generator.finished && !starved {
                starved = true;
                underruns += 1;
            }
            while sound.free_slots() > 0 && !generator.finished && (!slow || now >= next_slow) {
                queue_one(&mut sound, &mut generator);
                starved = false;
                next_slow += 2 * period_ticks;
            }
            if generator.finished && sound.in_flight() == 0 {
                break;
            }
            if sound.in_flight() > 0 && now - last_completion > timer::ms_to_ticks(STUCK_MS) {
                println!(
                    "snd: error: tx: nothing returned for {} ms ({} in flight)",
                    STUCK_MS,
                    sound.in_flight()
                );
                break;
            }
            // Closer looks until the first period comes back (its line times
            // the device's start).
            let pause = if returned == 0 {
                timer::frequency() / 4000
            } else {
                period_ticks / 4
            };
            timer::sleep_until(now + pause);
        }
        // A device may return a period before it has played it (QEMU's
        // returns it when it is in its mixing buffer): let the end play out.
        timer::sleep_ms(drain_ms);
        if let Err(e) = sound.stop() {
            println!("snd: error: stop: {}", e);
        }
    }
    if let Err(e) = sound.release() {
        println!("snd: error: release: {}", e);
    }
    println!("snd: done periods={} underruns={}", returned, underruns);
    park()
}
