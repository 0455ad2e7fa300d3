//! The simulated drive: a fixed cycle of phases (parked, reversing out,
//! accelerating through the gears, cruising, braking into turns with the
//! indicator on, stopping), repeated forever. Everything is a function of
//! the time since boot, so a run is the same every time and the distance
//! is exact (each phase's speed curve is integrated in closed form).

/// What the selector and gearbox show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gear {
    Park,
    Reverse,
    Neutral,
    /// Drive, in gear 1..=6.
    Drive(u8),
}

impl Gear {
    /// The big gear indicator: `P`, `R`, `N` or the gear's digit.
    pub fn symbol(&self) -> char {
        match self {
            Gear::Park => 'P',
            Gear::Reverse => 'R',
            Gear::Neutral => 'N',
            Gear::Drive(g) => char::from(b'0' + g.min(&9)),
        }
    }

    /// Which of `P R N D` the selector is in (0..=3).
    pub fn selector(&self) -> usize {
        match self {
            Gear::Park => 0,
            Gear::Reverse => 1,
            Gear::Neutral => 2,
            Gear::Drive(_) => 3,
        }
    }
}

/// Lamps a phase asks for.
pub mod lamp {
    pub const LEFT: u8 = 1 << 0;
    pub const RIGHT: u8 = 1 << 1;
    pub const HIGH_BEAM: u8 = 1 << 2;
    /// The driver's seat belt is not fastened.
    pub const BELT: u8 = 1 << 3;
    pub const ENGINE: u8 = 1 << 4;
    pub const PARKING_BRAKE: u8 = 1 << 5;
    /// Every lamp (the bulb check at ignition).
    pub const ALL: u8 = 0x3f;
}

/// The selector position of a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sel {
    P,
    R,
    N,
    D,
}

/// One piece of the cycle: the speed goes from `from` to `to` km/h over
/// `ms` along a smooth S-curve.
#[derive(Clone, Copy, Debug)]
struct Phase {
    ms: u32,
    from: f32,
    to: f32,
    sel: Sel,
    lamps: u8,
}

const fn p(ms: u32, from: f32, to: f32, sel: Sel, lamps: u8) -> Phase {
    Phase {
        ms,
        from,
        to,
        sel,
        lamps,
    }
}

use lamp::*;

/// The cycle (about two minutes).
const CYCLE: [Phase; 19] = [
    // Parked, belt still open, then buckled up; parking brake on.
    p(3000, 0.0, 0.0, Sel::P, BELT | PARKING_BRAKE),
    p(1000, 0.0, 0.0, Sel::P, PARKING_BRAKE),
    // Reverse out of the parking space.
    p(2500, 0.0, 7.0, Sel::R, 0),
    p(2500, 7.0, 0.0, Sel::R, 0),
    p(1000, 0.0, 0.0, Sel::N, 0),
    // Pull away, left turn out of the car park.
    p(6000, 0.0, 30.0, Sel::D, LEFT),
    // Up through the gears.
    p(14000, 30.0, 100.0, Sel::D, 0),
    // Country road at night: high beam; then the driver's belt comes
    // open for a while (warning).
    p(8000, 100.0, 100.0, Sel::D, HIGH_BEAM),
    p(4000, 100.0, 100.0, Sel::D, HIGH_BEAM | BELT),
    // Brake for a left bend.
    p(5000, 100.0, 55.0, Sel::D, LEFT),
    p(5000, 55.0, 55.0, Sel::D, LEFT),
    // Onto the motorway; the engine light comes on for a while.
    p(12000, 55.0, 125.0, Sel::D, ENGINE),
    p(6000, 125.0, 125.0, Sel::D, ENGINE),
    // Lane change to the right, then the exit.
    p(4000, 125.0, 125.0, Sel::D, RIGHT),
    p(10000, 125.0, 60.0, Sel::D, 0),
    // Right turn into town, slow down to a stop.
    p(6000, 60.0, 25.0, Sel::D, RIGHT),
    p(7000, 25.0, 0.0, Sel::D, 0),
    p(3000, 0.0, 0.0, Sel::D, 0),
    // Park, belt off.
    p(3000, 0.0, 0.0, Sel::P, BELT | PARKING_BRAKE),
];

/// Length of one cycle.
pub fn cycle_ms() -> u64 {
    CYCLE.iter().map(|p| u64::from(p.ms)).sum()
}

/// The bulb check: every lamp lit for this long after boot, engine off.
pub const BULB_CHECK_MS: u64 = 2000;

/// Turn indicators flash at 1.5 Hz, lit half of the time.
pub const BLINK_PERIOD_MS: u64 = 666;

/// The flasher at `t_ms`: whether a turn indicator that is switched on is
/// lit (the first half of each [`BLINK_PERIOD_MS`], counted from boot).
///
/// The one definition of the blink: the telltale strip draws it (through
/// [`Car::lit`]) and the turn-signal ticks (`chime`) sound at its edges.
pub fn flasher_lit(t_ms: u64) -> bool {
    t_ms % BLINK_PERIOD_MS < BLINK_PERIOD_MS / 2
}

/// Upshift speeds (km/h) in drive: gear g+1 from `SHIFT[g-1]` on.
const SHIFT: [f32; 5] = [18.0, 35.0, 55.0, 75.0, 95.0];
/// Engine rpm per km/h in each gear (1..=6), and in reverse.
const RATIO: [f32; 6] = [170.0, 95.0, 62.0, 47.0, 38.0, 31.0];
const RATIO_REVERSE: f32 = 160.0;
const IDLE_RPM: f32 = 800.0;

/// The car at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Car {
    pub speed_kmh: f32,
    pub rpm: f32,
    pub gear: Gear,
    /// `lamp::*` bits that are on (turn indicators: the switch, not the
    /// flashing; see [`Car::lit`]).
    pub lamps: u8,
    /// Metres driven since boot.
    pub metres: f64,
}

impl Car {
    /// The lamps lit at `t_ms`: indicators flash.
    pub fn lit(&self, t_ms: u64) -> u8 {
        if flasher_lit(t_ms) || t_ms < BULB_CHECK_MS {
            self.lamps
        } else {
            self.lamps & !(LEFT | RIGHT)
        }
    }

    /// The turn indicator lamps (`LEFT | RIGHT` bits) blinking at `t_ms`:
    /// those [`Car::lit`] lights, except during the bulb check, when they
    /// are lit steadily rather than blinking (0 here).
    pub fn blinking(&self, t_ms: u64) -> u8 {
        if t_ms < BULB_CHECK_MS {
            return 0;
        }
        self.lit(t_ms) & (LEFT | RIGHT)
    }
}

/// 3u² - 2u³: 0 at 0, 1 at 1, flat at both ends.
fn ease(u: f32) -> f32 {
    u * u * (3.0 - 2.0 * u)
}

/// Integral of `ease` from 0 to u.
fn ease_integral(u: f64) -> f64 {
    u * u * u - u * u * u * u / 2.0
}

impl Phase {
    fn speed(&self, ms: u64) -> f32 {
        let u = ms as f32 / self.ms as f32;
        self.from + (self.to - self.from) * ease(u.clamp(0.0, 1.0))
    }

    /// Metres driven in the first `ms` of the phase.
    fn metres(&self, ms: u64) -> f64 {
        let secs = f64::from(self.ms) / 1000.0;
        let u = (ms as f64 / f64::from(self.ms)).clamp(0.0, 1.0);
        let (a, b) = (f64::from(self.from), f64::from(self.to));
        // km/h * s / 3.6 = m
        secs * (a * u + (b - a) * ease_integral(u)) / 3.6
    }
}

/// Metres of one whole cycle.
pub fn cycle_metres() -> f64 {
    CYCLE.iter().map(|p| p.metres(u64::from(p.ms))).sum()
}

/// The gear in drive at `speed` km/h.
fn drive_gear(speed: f32) -> u8 {
    1 + SHIFT.iter().filter(|&&s| speed >= s).count() as u8
}

/// The car `t_ms` after boot.
pub fn at(t_ms: u64) -> Car {
    let cycle = cycle_ms();
    let laps = t_ms / cycle;
    let mut rest = t_ms % cycle;
    let mut metres = laps as f64 * cycle_metres();
    let mut phase = &CYCLE[CYCLE.len() - 1];
    for p in CYCLE.iter() {
        phase = p;
        if rest < u64::from(p.ms) {
            break;
        }
        rest -= u64::from(p.ms);
        metres += p.metres(u64::from(p.ms));
    }
    metres += phase.metres(rest);
    let speed = phase.speed(rest).max(0.0);
    let accelerating = phase.to > phase.from;
    let gear = match phase.sel {
        Sel::P => Gear::Park,
        Sel::R => Gear::Reverse,
        Sel::N => Gear::Neutral,
        Sel::D => Gear::Drive(drive_gear(speed)),
    };
    let engine = match gear {
        Gear::Drive(g) => speed * RATIO[usize::from(g) - 1],
        Gear::Reverse => speed * RATIO_REVERSE,
        Gear::Park | Gear::Neutral => 0.0,
    };
    // Pulling harder while accelerating.
    let load = if accelerating { 450.0 } else { 0.0 };
    let mut rpm = (engine + load).max(IDLE_RPM);
    let mut lamps = phase.lamps;
    if t_ms < BULB_CHECK_MS {
        // Ignition on, engine not started yet: every lamp lit.
        lamps = ALL;
        rpm = 0.0;
    }
    Car {
        speed_kmh: speed,
        rpm,
        gear,
        lamps,
        metres,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_parked_with_bulb_check() {
        let c = at(0);
        assert_eq!(c.gear, Gear::Park);
        assert_eq!(c.speed_kmh, 0.0);
        assert_eq!(c.rpm, 0.0);
        assert_eq!(c.lamps, lamp::ALL);
        assert_eq!(c.lit(400), lamp::ALL);
        let c = at(BULB_CHECK_MS);
        assert_eq!(c.lamps, BELT | PARKING_BRAKE);
        assert!(c.rpm >= IDLE_RPM);
    }

    #[test]
    fn deterministic_and_continuous() {
        let mut last = at(0);
        for t in (0..3 * cycle_ms()).step_by(17) {
            let c = at(t);
            assert_eq!(c, at(t));
            assert!((0.0..=130.0).contains(&c.speed_kmh), "{t}: {c:?}");
            assert!((0.0..8000.0).contains(&c.rpm), "{t}: {c:?}");
            // 17 ms apart: no jumps in speed or distance.
            assert!((c.speed_kmh - last.speed_kmh).abs() < 1.0, "{t}");
            assert!(
                c.metres >= last.metres && c.metres - last.metres < 1.0,
                "{t}"
            );
            last = c;
        }
    }

    #[test]
    fn distance_matches_numeric_integration() {
        let step = 5u64;
        let mut metres = 0.0f64;
        for t in (0..cycle_ms()).step_by(step as usize) {
            let v = (at(t).speed_kmh + at(t + step).speed_kmh) / 2.0;
            metres += f64::from(v) / 3.6 * step as f64 / 1000.0;
        }
        let exact = at(cycle_ms()).metres;
        assert!((metres - exact).abs() < 1.0, "{metres} vs {exact}");
        assert!((exact - cycle_metres()).abs() < 1e-6);
        // A few kilometres per cycle.
        assert!((1500.0..4000.0).contains(&exact), "{exact}");
        let two = at(2 * cycle_ms() + 1000).metres;
        assert!((two - (2.0 * exact + at(1000).metres)).abs() < 1e-6);
    }

    #[test]
    fn exercises_everything() {
        let mut gears = [false; 6];
        let mut seen = 0u8;
        let (mut park, mut reverse, mut neutral) = (false, false, false);
        let mut max_speed = 0.0f32;
        for t in (BULB_CHECK_MS..cycle_ms()).step_by(50) {
            let c = at(t);
            match c.gear {
                Gear::Drive(g) => gears[usize::from(g) - 1] = true,
                Gear::Park => park = true,
                Gear::Reverse => reverse = true,
                Gear::Neutral => neutral = true,
            }
            seen |= c.lamps;
            max_speed = max_speed.max(c.speed_kmh);
            // Indicators only in turns, i.e. while moving or about to.
            if c.lamps & (LEFT | RIGHT) != 0 {
                assert!(matches!(c.gear, Gear::Drive(_)));
            }
        }
        assert_eq!(gears, [true; 6]);
        assert!(park && reverse && neutral);
        assert_eq!(seen, ALL);
        assert!(max_speed > 120.0);
    }

    #[test]
    fn indicators_flash() {
        let c = Car {
            lamps: LEFT | BELT,
            ..at(5000)
        };
        let t = 10 * BLINK_PERIOD_MS;
        assert_eq!(c.lit(t), LEFT | BELT);
        assert_eq!(c.lit(t + BLINK_PERIOD_MS / 2), BELT);
        assert_eq!(Gear::Drive(3).symbol(), '3');
        assert_eq!(Gear::Reverse.symbol(), 'R');
        assert_eq!(Gear::Drive(6).selector(), 3);
    }

    #[test]
    fn gears_follow_speed() {
        assert_eq!(drive_gear(0.0), 1);
        assert_eq!(drive_gear(17.9), 1);
        assert_eq!(drive_gear(18.0), 2);
        assert_eq!(drive_gear(130.0), 6);
    }
}
