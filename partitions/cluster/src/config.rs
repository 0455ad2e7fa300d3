//! The cluster's bootargs.
//!
//! - `cluster.fps=<n>`: frames per second, 1..=240 (default 60)
//! - `cluster.telltales=<px>`: height of the telltale strip (default 80)
//! - `cluster.window=<x>,<y>,<w>,<h>`: the transparent window in scanout
//!   0 coordinates (default none)
//! - `cluster.stall=<after_frames>,<ms>`: stop drawing after that many
//!   frames for that long (a test hook)

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
                stall: None
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
