//! When the chime stream runs: what to queue, when to START and when to
//! STOP, decided from the timeline of [`Chimes`] and what the device has
//! in flight.
//!
//! The stream runs only while a chime sounds, plus its tail: under the
//! hypervisor a running stream of the cluster ducks the IVI's media.
//!
//! - **Idle** (stopped): nothing is queued. [`PREP_MS`] before the next
//!   chime's first frame the player begins a run there.
//! - **Filling**: the run's first periods are queued ([`PREFILL`] at
//!   most, while needed), the first one beginning with the chime's first
//!   frame; then START, sent when the counter reaches that frame's time,
//!   so the stream plays in step with the drive's time (the picture's).
//! - **Running**: as periods come back, the following ones are queued,
//!   while the stream is needed ([`crate::chime::Period::needed`]); once
//!   a period is not needed and every queued one has come back (the tail
//!   has played out), STOP, and Idle again.
//!
//! A chime whose start went by before the player saw it (the loop was
//! held up) is played late, from its beginning, unless that was longer
//! ago than its length or [`LATE_MS`], whichever is longer: then it is
//! skipped ([`Step::Missed`]), so a stall is not followed by a burst of
//! stale ticks. The device running dry while the
//! stream is needed is an underrun ([`Step::Underrun`], once per
//! episode): the run goes on, later than the drive by that much, until
//! the next START.
//!
//! The caller does what each [`Player::step`] says and asks again, until
//! it says [`Step::Wait`].

use crate::chime::{Chime, Chimes, FRAMES_PER_MS, Source, Starts};

/// Length of a period.
pub const PERIOD_MS: u64 = 10;
pub const PERIOD_FRAMES: u64 = PERIOD_MS * FRAMES_PER_MS;
/// How long before a chime's first frame its run is prepared.
pub const PREP_MS: u64 = 5;
pub const PREP_FRAMES: u64 = PREP_MS * FRAMES_PER_MS;
/// A chime is skipped once it is this late (or its length, if longer).
pub const LATE_MS: u64 = 50;
/// Periods queued before START at most (the rest of the ring is filled
/// right after it): little work between the chime's time and its START.
pub const PREFILL: usize = 3;

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Queue the period in `out`, which begins at frame `first`. While
    /// running, `started` are the chimes that begin in it.
    Write { first: u64, started: Starts },
    /// Send START when the counter reaches frame `at` (at once if it has
    /// passed); it begins the chimes `begins`.
    Start { at: u64, begins: Starts },
    /// Send STOP: the run, which played `played`, is over.
    Stop { played: Played },
    /// The device ran dry before the period from `at` was queued.
    Underrun { at: u64 },
    /// The chimes that start at frame `at` were skipped: too late.
    Missed { at: u64, chimes: Starts },
    /// Nothing to do before frame `until` (or the caller's next look).
    Wait { until: u64 },
}

/// The chimes a run played, each once, in the order they began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Played {
    items: [Option<Chime>; 4],
}

impl Played {
    pub fn add(&mut self, chime: Chime) {
        if self.items.contains(&Some(chime)) {
            return;
        }
        if let Some(slot) = self.items.iter_mut().find(|c| c.is_none()) {
            *slot = Some(chime);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Chime> + '_ {
        self.items.iter().flatten().copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Filling,
    Running,
}

/// The stream's controller (see the module's documentation).
pub struct Player<S> {
    pub chimes: Chimes<S>,
    channels: usize,
    state: State,
    /// Idle: the chimes before this frame have been dealt with.
    from: u64,
    /// Filling, Running: the first frame of the next period to queue.
    write: u64,
    /// The run's first frame.
    run_first: u64,
    begins: Starts,
    played: Played,
    /// An underrun was reported and no period queued since.
    dry: bool,
    /// Periods queued before START.
    prefilled: usize,
}

impl<S: Source> Player<S> {
    pub fn new(chimes: Chimes<S>, channels: usize) -> Player<S> {
        Player {
            chimes,
            channels: channels.max(1),
            state: State::Idle,
            from: 0,
            write: 0,
            run_first: 0,
            begins: Starts::new(),
            played: Played::default(),
            dry: false,
            prefilled: 0,
        }
    }

    /// Samples in a period.
    pub fn period_samples(&self) -> usize {
        PERIOD_FRAMES as usize * self.channels
    }

    /// Whether the stream is started (or about to be).
    pub fn running(&self) -> bool {
        self.state == State::Running
    }

    /// The device lost what was queued (reset): idle, with the chimes
    /// before frame `now`, and those queued, given up (never a step back
    /// on the timeline, which would start the scan of [`Chimes`] over).
    pub fn abort(&mut self, now: u64) {
        self.state = State::Idle;
        self.from = self.from.max(now).max(self.write);
    }

    /// The next thing to do, at frame `now`, if the caller next looks at
    /// frame `horizon` (its sleep ends there); `free_slots` and
    /// `in_flight` are the device's. A `Write` leaves its samples in
    /// `out` ([`Player::period_samples`] of them).
    pub fn step(
        &mut self,
        now: u64,
        horizon: u64,
        free_slots: usize,
        in_flight: usize,
        out: &mut [i16],
    ) -> Step {
        let out = &mut out[..self.period_samples()];
        if self.state == State::Idle {
            let look = horizon.max(now) + PREP_FRAMES;
            let Some(s) = self.chimes.next_start(self.from, look) else {
                self.from = self.from.max(look);
                return Step::Wait { until: horizon };
            };
            let chimes = self.chimes.starts_at(s.frame);
            let longest = chimes.as_slice().iter().map(|c| c.chime.frames()).max();
            let late = longest.unwrap_or(0).max(LATE_MS * FRAMES_PER_MS);
            if now >= s.frame + late {
                self.from = s.frame + 1;
                return Step::Missed {
                    at: s.frame,
                    chimes,
                };
            }
            if s.frame > now + PREP_FRAMES {
                return Step::Wait {
                    until: s.frame - PREP_FRAMES,
                };
            }
            self.state = State::Filling;
            self.write = s.frame;
            self.run_first = s.frame;
            self.begins.clear();
            self.played = Played::default();
            self.dry = false;
            self.prefilled = 0;
        }
        let needed = self.chimes.needed(self.write, PERIOD_FRAMES);
        if self.state == State::Filling {
            if free_slots > 0 && needed && self.prefilled < PREFILL {
                let first = self.write;
                let p = self.chimes.render(first, out, self.channels);
                self.write += PERIOD_FRAMES;
                self.prefilled += 1;
                for s in p.started.as_slice() {
                    self.begins.push(*s);
                    self.played.add(s.chime);
                }
                return Step::Write {
                    first,
                    started: Starts::new(),
                };
            }
            self.state = State::Running;
            return Step::Start {
                at: self.run_first,
                begins: self.begins,
            };
        }
        // Running.
        if needed && in_flight == 0 && !self.dry {
            self.dry = true;
            return Step::Underrun { at: self.write };
        }
        if needed && free_slots > 0 {
            let first = self.write;
            let p = self.chimes.render(first, out, self.channels);
            self.write += PERIOD_FRAMES;
            self.dry = false;
            for s in p.started.as_slice() {
                self.played.add(s.chime);
            }
            return Step::Write {
                first,
                started: p.started,
            };
        }
        if !needed && in_flight == 0 {
            self.state = State::Idle;
            self.from = self.write;
            return Step::Stop {
                played: self.played,
            };
        }
        let until = if needed {
            // Keep the ring topped up.
            now + PERIOD_FRAMES / 2
        } else if self.write > now {
            // The last period should be back once it has played (when
            // the stream is in step): STOP then.
            self.write + 1
        } else {
            now + PERIOD_FRAMES / 4
        };
        Step::Wait {
            until: until.min(horizon.max(now + 1)),
        }
    }
}

#[cfg(test)]
mod tests;
