//! The memory pattern `hello` keeps in its buffer and re-checks.

/// The word stored at index `i` (distinct per index, both halves varying).
pub const fn word(i: usize) -> u64 {
    let x = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29) ^ 0xa5a5_0000_0000_5a5a
}

/// Fills `buf` with the pattern.
pub fn fill(buf: &mut [u64]) {
    for (i, w) in buf.iter_mut().enumerate() {
        *w = word(i);
    }
}

/// Index of the first word that does not hold the pattern. The words are
/// read with volatile loads: the point is to look at what memory holds now.
pub fn first_mismatch(buf: &[u64]) -> Option<usize> {
    // SAFETY: every pointer comes from iterating the borrowed slice.
    buf.iter()
        .enumerate()
        .position(|(i, w)| unsafe { core::ptr::read_volatile(w) } != word(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_corruption() {
        let mut buf = vec![0u64; 4096];
        fill(&mut buf);
        assert_eq!(first_mismatch(&buf), None);
        buf[1234] ^= 1 << 40;
        assert_eq!(first_mismatch(&buf), Some(1234));
    }

    #[test]
    fn words_differ() {
        assert_ne!(word(0), 0);
        assert!((1..1000).all(|i| word(i) != word(i - 1)));
    }
}
