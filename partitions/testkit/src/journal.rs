//! The block format of the `journal` test partition, shared with the host
//! side of the power-cut test (xtask), which checks the disk image.

use crate::virtio::SECTOR;

/// Sectors in the journal ring (the first ones of the disk).
pub const BLOCKS: u64 = 64;
/// What every journal block starts with.
pub const MAGIC: [u8; 8] = *b"JOURNAL1";

/// The content of journal block `seq`.
pub fn block(seq: u64) -> [u8; SECTOR] {
    let mut b = [0u8; SECTOR];
    b[..8].copy_from_slice(&MAGIC);
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    for (i, byte) in b.iter_mut().enumerate().skip(16) {
        *byte = (seq as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    b
}

/// The sequence number of an intact journal block (`None` for anything
/// else: never written, torn, or garbage).
pub fn seq_of(sector: &[u8]) -> Option<u64> {
    if sector.len() != SECTOR || sector[..8] != MAGIC {
        return None;
    }
    let seq = u64::from_le_bytes(sector[8..16].try_into().ok()?);
    (sector == block(seq)).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_damage_is_noticed() {
        let b = block(1234);
        assert_eq!(seq_of(&b), Some(1234));
        let mut torn = b;
        torn[300] ^= 1;
        assert_eq!(seq_of(&torn), None);
        assert_eq!(seq_of(&[0u8; SECTOR]), None);
    }
}
