//! A small deterministic pseudo-random sequence (xorshift64) for test
//! programs that need reproducible data or timing patterns: the same seed
//! gives the same numbers on every run, with or without the hypervisor.

/// xorshift64 (13, 7, 17): never 0 for a seed other than 0.
pub struct XorShift64(pub u64);

impl XorShift64 {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
