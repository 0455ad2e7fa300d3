//! Latency windows: a mediator records how long each of the safety
//! partition's requests waited, and every `N` samples gets their median,
//! 99th percentile and maximum to report. A platform engineer reads the
//! reports in the log; the scenarios check them.

/// What one full window of samples looked like (microseconds; nearest-rank
/// percentiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub samples: usize,
    pub p50: u32,
    pub p99: u32,
    pub max: u32,
}

/// `N` samples at a time.
pub struct LatencyWindow<const N: usize> {
    samples: [u32; N],
    len: usize,
}

impl<const N: usize> Default for LatencyWindow<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LatencyWindow<N> {
    pub const fn new() -> Self {
        Self {
            samples: [0; N],
            len: 0,
        }
    }

    /// Adds a sample; when it fills the window, returns the window's
    /// summary and starts a new one.
    pub fn record(&mut self, us: u32) -> Option<Summary> {
        if N == 0 {
            return None;
        }
        self.samples[self.len] = us;
        self.len += 1;
        if self.len < N {
            return None;
        }
        self.len = 0;
        let sorted = &mut self.samples;
        sorted.sort_unstable();
        let rank = |p: usize| sorted[(p * N).div_ceil(100).max(1) - 1];
        Some(Summary {
            samples: N,
            p50: rank(50),
            p99: rank(99),
            max: sorted[N - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_each_full_window() {
        let mut w = LatencyWindow::<100>::new();
        // 1..=100 in a scrambled order.
        for i in 0..99u32 {
            assert_eq!(w.record((i * 37) % 100 + 1), None);
        }
        assert_eq!(
            w.record((99 * 37) % 100 + 1),
            Some(Summary {
                samples: 100,
                p50: 50,
                p99: 99,
                max: 100
            })
        );
        // The next window starts empty.
        for _ in 0..99 {
            assert_eq!(w.record(7), None);
        }
        assert_eq!(
            w.record(7000).map(|s| (s.p50, s.p99, s.max)),
            Some((7, 7, 7000))
        );
        assert_eq!(LatencyWindow::<0>::new().record(1), None);
    }
}
