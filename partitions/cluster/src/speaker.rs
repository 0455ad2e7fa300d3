//! The binary's sound glue (not part of the library): the chimes
//! (`cluster::chime`) played on stream 0 of the virtio-snd device
//! (testkit's `rt::virtio_snd`), as `cluster::player` decides, from the
//! frame loop's waits.
//!
//! S16 at 48 kHz, stereo (mono if the stream has one channel only), in
//! periods of 10 ms with [`PERIODS`] of them queued at most. Frame 0 of
//! the chime timeline is the counter value the drive started at, so a
//! chime's START is sent when the counter reaches its first frame's time.
//! Control requests have a short time limit, so a device that stops
//! answering holds up drawing for [`CONTROL_TIMEOUT_MS`] at most; after
//! an error the device is reset and set up again (or, if that fails, once
//! a second), and the chimes due meanwhile are given up.
//!
//! ```text
//! cluster: audio: device at 0x<base> (<stereo|mono> 48000 Hz, 10 ms periods)
//! cluster: audio: frame 0 at counter <N>
//! cluster: chime <name> at counter <N> (frame <f>)                  N: right before the START
//! cluster: chime <name> at counter <N> (frame <f>, stream running)  N: when its first period was queued
//! cluster: chime <name> stopped at counter <N>                      N: right before the STOP
//! cluster: chime <name> missed at counter <N> (frame <f>)
//! cluster: audio: underrun at counter <N> (frame <f>)
//! cluster: audio: error: <what>: <error>
//! cluster: audio: no device
//! cluster: audio: off
//! ```

use cluster::chime::{Chimes, RATE, Triggers};
use cluster::player::{PERIOD_FRAMES, Player, Step};
use testkit::println;
use testkit::rt::timer;
use testkit::rt::virtio_snd::{self, Error, Sound, format, rate};

/// Periods queued at most (the stream's buffer: 60 ms).
pub const PERIODS: u32 = 6;
/// Time limit of a control request.
pub const CONTROL_TIMEOUT_MS: u64 = 20;
/// How long after a failed bring-up the next is tried.
const RETRY_MS: u64 = 1000;

/// The chime player and its device.
pub struct Speaker {
    sound: Sound,
    player: Player<Triggers>,
    channels: u8,
    /// The counter at frame 0.
    start: u64,
    buffer: [i16; 2 * PERIOD_FRAMES as usize],
    /// The device is down: when to try to bring it up again.
    retry_at: Option<u64>,
    /// When the last error was.
    last_failure: Option<u64>,
    /// Tx periods the device returned with an error status were reported.
    tx_errors_said: bool,
}

fn error(what: &str, e: Error) {
    println!("cluster: audio: error: {}: {}", what, e);
}

/// SET_PARAMS and PREPARE for `channels`.
fn setup(sound: &mut Sound, channels: u8) -> Result<(), (&'static str, Error)> {
    let period_bytes = PERIOD_FRAMES as u32 * u32::from(channels) * 2;
    sound
        .set_params(channels, period_bytes, PERIODS * period_bytes)
        .map_err(|e| ("set params", e))?;
    sound.prepare().map_err(|e| ("prepare", e))
}

impl Speaker {
    /// Finds the device and sets the stream up; None (having said why)
    /// without one, if it does not work, or if `enabled` is false.
    pub fn open(enabled: bool, triggers: Triggers) -> Option<Speaker> {
        if !enabled {
            println!("cluster: audio: off");
            return None;
        }
        let Some(node) = virtio_snd::find() else {
            println!("cluster: audio: no device");
            return None;
        };
        let mut sound = Sound::open_at(node).map_err(|e| error("open", e)).ok()?;
        let info = sound.pcm_info().map_err(|e| error("pcm info", e)).ok()?;
        if info.direction != virtio_snd::DIRECTION_OUTPUT
            || info.formats & 1 << format::S16 == 0
            || info.rates & 1 << rate::R48000 == 0
        {
            println!("cluster: audio: error: stream 0 does not play S16 at 48000 Hz");
            return None;
        }
        let channels = if info.channels_max >= 2 && info.channels_min <= 2 {
            2
        } else {
            1
        };
        sound.set_timeout_ms(CONTROL_TIMEOUT_MS);
        if let Err((what, e)) = setup(&mut sound, channels) {
            error(what, e);
            return None;
        }
        println!(
            "cluster: audio: device at 0x{:x} ({} {} Hz, {} ms periods)",
            sound.base(),
            if channels == 2 { "stereo" } else { "mono" },
            RATE,
            PERIOD_FRAMES * 1000 / RATE
        );
        Some(Speaker {
            sound,
            player: Player::new(Chimes::new(triggers), usize::from(channels)),
            channels,
            start: timer::counter(),
            buffer: [0; 2 * PERIOD_FRAMES as usize],
            retry_at: None,
            last_failure: None,
            tx_errors_said: false,
        })
    }

    /// Frame 0 is counter value `start` (the drive's start).
    pub fn begin(&mut self, start: u64) {
        self.start = start;
        println!("cluster: audio: frame 0 at counter {}", start);
    }

    fn frame_of(&self, counter: u64) -> u64 {
        let ticks = u128::from(counter.saturating_sub(self.start));
        (ticks * u128::from(RATE) / u128::from(timer::frequency())) as u64
    }

    fn counter_of(&self, frame: u64) -> u64 {
        self.start + (u128::from(frame) * u128::from(timer::frequency()) / u128::from(RATE)) as u64
    }

    /// Resets the device and sets the stream up again.
    fn reinit(&mut self) -> Result<(), (&'static str, Error)> {
        self.sound.init().map_err(|e| ("reset", e))?;
        setup(&mut self.sound, self.channels)
    }

    /// After an error: the device is reset and set up again (what it had
    /// is lost, and the chimes that were due with it); after a second
    /// error within [`RETRY_MS`], or if that fails, only [`RETRY_MS`]
    /// later.
    fn fail(&mut self, what: &str, e: Error) {
        error(what, e);
        let now = timer::counter();
        self.player.abort(self.frame_of(now));
        let retry = now + timer::ms_to_ticks(RETRY_MS);
        let recent = self
            .last_failure
            .is_some_and(|t| now - t < timer::ms_to_ticks(RETRY_MS));
        self.last_failure = Some(now);
        if recent {
            self.retry_at = Some(retry);
        } else if let Err((what, e)) = self.reinit() {
            error(what, e);
            self.retry_at = Some(retry);
        }
    }

    /// Does what is due for the chimes; returns the counter value at
    /// which it wants to be called again (the caller sleeps until then or
    /// until `deadline`, its own next task, whichever comes first).
    pub fn service(&mut self, deadline: u64) -> u64 {
        if let Some(at) = self.retry_at {
            let now = timer::counter();
            if now < at {
                return at;
            }
            self.retry_at = None;
            if let Err((what, e)) = self.reinit() {
                error(what, e);
                let retry = now + timer::ms_to_ticks(RETRY_MS);
                self.retry_at = Some(retry);
                return retry;
            }
            self.player.abort(self.frame_of(now));
        }
        // Keep the event buffers posted (nothing in them is needed).
        let _ = self.sound.events();
        let horizon = self.frame_of(deadline);
        loop {
            let done = self.sound.reap();
            if done.errors > 0 && !self.tx_errors_said {
                self.tx_errors_said = true;
                println!(
                    "cluster: audio: error: tx: {} period(s) returned with status 0x{:x} ({})",
                    done.errors,
                    done.status,
                    virtio_snd::status_name(done.status)
                );
            }
            let now = timer::counter();
            let step = self.player.step(
                self.frame_of(now),
                horizon,
                self.sound.free_slots(),
                self.sound.in_flight(),
                &mut self.buffer,
            );
            match step {
                Step::Write { started, .. } => {
                    let n = self.player.period_samples();
                    if let Err(e) = self.sound.write(&self.buffer[..n]) {
                        self.fail("write", e);
                        match self.retry_at {
                            Some(at) => return at,
                            None => continue,
                        }
                    }
                    for s in started.as_slice() {
                        println!(
                            "cluster: chime {} at counter {} (frame {}, stream running)",
                            s.chime.name(),
                            now,
                            s.frame
                        );
                    }
                }
                Step::Start { at, begins } => {
                    let due = self.counter_of(at);
                    if due > timer::counter() {
                        timer::sleep_until(due);
                    }
                    let sent = timer::counter();
                    let result = self.sound.start();
                    for s in begins.as_slice() {
                        println!(
                            "cluster: chime {} at counter {} (frame {})",
                            s.chime.name(),
                            sent,
                            s.frame
                        );
                    }
                    if let Err(e) = result {
                        self.fail("start", e);
                        if let Some(at) = self.retry_at {
                            return at;
                        }
                    }
                }
                Step::Stop { played } => {
                    let sent = timer::counter();
                    let result = self.sound.stop();
                    for chime in played.iter() {
                        println!(
                            "cluster: chime {} stopped at counter {}",
                            chime.name(),
                            sent
                        );
                    }
                    if let Err(e) = result {
                        self.fail("stop", e);
                        if let Some(at) = self.retry_at {
                            return at;
                        }
                    }
                }
                Step::Underrun { at } => {
                    println!("cluster: audio: underrun at counter {} (frame {})", now, at);
                }
                Step::Missed { at, chimes } => {
                    for s in chimes.as_slice() {
                        println!(
                            "cluster: chime {} missed at counter {} (frame {})",
                            s.chime.name(),
                            now,
                            at
                        );
                    }
                }
                // (The deadline's frame is rounded down: nothing to do
                // before it means nothing before the deadline.)
                Step::Wait { until } if until >= horizon => return deadline,
                Step::Wait { until } => return self.counter_of(until),
            }
        }
    }
}
