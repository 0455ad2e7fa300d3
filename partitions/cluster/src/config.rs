//! The cluster's bootargs.
//!
//! - `cluster.fps=<n>`: frames per second, 1..=240 (default 60)
//! - `cluster.telltales=<px>`: height of the telltale strip (default 80)
//! - `cluster.window=<x>,<y>,<w>,<h>`: the transparent window in scanout
//!   0 coordinates (default none)
//! - `cluster.stall=<after_frames>,<ms>`: stop drawing after that many
//!   frames for that long (a test hook)
//! - `cluster.audio=off`: no chimes (the sound device is left alone)
//! - `cluster.chime_test=<ms>`: instead of the drive's chimes, each chime
//!   once from that time on (`chime::test_schedule`)
//! - `cluster.warn_at_ms=<ms>[,<ms>...]`: the warning chime at these times
//!   too (at most `chime::MAX_WARN_AT`)

use crate::chime::{MAX_WARN_AT, Triggers};
use crate::damage::Rect;
use testkit::args;

pub const DEFAULT_FPS: u32 = 60;
pub const MAX_FPS: u32 = 240;
pub const DEFAULT_TELLTALES: u32 = 80;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub fps: u32,
    pub telltales: u32,
    pub window: Option<Rect>,
    /// (after_frames, ms)
    pub stall: Option<(u64, u64)>,
    /// The chimes are played (`cluster.audio` is not `off`).
    pub audio: bool,
    /// What the chimes are computed from.
    pub chimes: Triggers,
}

/// The comma-separated decimal numbers of `key`, exactly `N` of them.
fn numbers<const N: usize>(bootargs: &str, key: &str) -> Option<[u64; N]> {
    let mut out = [0u64; N];
    let mut items = args::value(bootargs, key)?.split(',');
    for slot in out.iter_mut() {
        *slot = items.next()?.trim().parse().ok()?;
    }
    items.next().is_none().then_some(out)
}

/// `cluster.warn_at_ms`: up to [`MAX_WARN_AT`] times (the rest, and
/// anything that is not a number, ignored).
fn warn_at(bootargs: &str) -> [Option<u64>; MAX_WARN_AT] {
    let mut out = [None; MAX_WARN_AT];
    let items = args::value(bootargs, "cluster.warn_at_ms").unwrap_or("");
    let times = items.split(',').filter_map(|t| t.trim().parse().ok());
    for (slot, t) in out.iter_mut().zip(times) {
        *slot = Some(t);
    }
    out
}

impl Config {
    pub fn parse(bootargs: &str) -> Config {
        let number = |key| args::value(bootargs, key).and_then(|v| v.parse::<u32>().ok());
        let window = numbers::<4>(bootargs, "cluster.window").and_then(|[x, y, w, h]| {
            let fit = |v: u64| u32::try_from(v).ok().filter(|&v| v <= 1 << 16);
            let r = Rect::new(fit(x)? as i32, fit(y)? as i32, fit(w)?, fit(h)?);
            (!r.is_empty()).then_some(r)
        });
        Config {
            fps: number("cluster.fps")
                .filter(|f| (1..=MAX_FPS).contains(f))
                .unwrap_or(DEFAULT_FPS),
            telltales: number("cluster.telltales").unwrap_or(DEFAULT_TELLTALES),
            window,
            stall: numbers::<2>(bootargs, "cluster.stall").map(|[a, b]| (a, b)),
            audio: args::value(bootargs, "cluster.audio") != Some("off"),
            chimes: Triggers {
                test_at: args::value(bootargs, "cluster.chime_test").and_then(|v| v.parse().ok()),
                warn_at: warn_at(bootargs),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::parse("console=ttyAMA0");
        assert_eq!(
            c,
            Config {
                fps: 60,
                telltales: 80,
                window: None,
                stall: None,
                audio: true,
                chimes: Triggers::default(),
            }
        );
    }

    #[test]
    fn parses_everything() {
        let c = Config::parse(
            "cluster.fps=30 cluster.telltales=96 cluster.window=560,80,800,320 cluster.stall=120,3000",
        );
        assert_eq!(c.fps, 30);
        assert_eq!(c.telltales, 96);
        assert_eq!(c.window, Some(Rect::new(560, 80, 800, 320)));
        assert_eq!(c.stall, Some((120, 3000)));
    }

    #[test]
    fn parses_the_chime_words() {
        let c =
            Config::parse("cluster.audio=off cluster.chime_test=3000 cluster.warn_at_ms=5000,7000");
        assert!(!c.audio);
        assert_eq!(c.chimes.test_at, Some(3000));
        assert_eq!(c.chimes.warn_at, [Some(5000), Some(7000), None, None]);
        assert!(Config::parse("cluster.audio=on").audio);
        let c = Config::parse("cluster.warn_at_ms=1,x,2,3,4,5 cluster.chime_test=soon");
        assert_eq!(c.chimes.warn_at, [Some(1), Some(2), Some(3), Some(4)]);
        assert_eq!(c.chimes.test_at, None);
    }

    #[test]
    fn rejects_nonsense() {
        let c =
            Config::parse("cluster.fps=0 cluster.window=1,2,3 cluster.stall=5 cluster.telltales=x");
        assert_eq!(c, Config::parse(""));
        assert_eq!(Config::parse("cluster.fps=1000").fps, 60);
        assert_eq!(Config::parse("cluster.window=1,2,0,5").window, None);
        assert_eq!(Config::parse("cluster.window=1,2,3,4,5").window, None);
        assert_eq!(Config::parse("cluster.window=-1,2,3,4").window, None);
    }
}
