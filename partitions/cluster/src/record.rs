//! The odometer on disk, and when to write it.
//!
//! Two copies of one 48-byte record, in sectors 0 and 1, written in turn
//! (sequence number even: sector 0, odd: sector 1), so a write torn by a
//! power cut leaves the other copy; at boot the valid copy with the higher
//! sequence number wins. Little-endian, the rest of the sector zero:
//!
//! | bytes  | field                                      |
//! | ------ | ------------------------------------------ |
//! | 0..8   | magic `CLUSTODO`                           |
//! | 8..12  | version (1)                                |
//! | 12..20 | sequence number                            |
//! | 20..28 | odometer, metres                           |
//! | 28..36 | boots                                      |
//! | 36..44 | zero (reserved)                            |
//! | 44..48 | CRC-32 (IEEE, as zlib) of bytes 0..44      |
//!
//! A disk that holds testkit's `odometer` record in sector 0 instead (and
//! no valid copy of this one) starts from its kilometres and boots.

use testkit::odometer::{self, crc32};

pub const MAGIC: [u8; 8] = *b"CLUSTODO";
pub const VERSION: u32 = 1;
pub const BYTES: usize = 48;
/// The sectors the two copies live in.
pub const SLOTS: [u64; 2] = [0, 1];

/// Write at least every this many metres...
pub const SAVE_EVERY_M: u64 = 1000;
/// ... and after this much driving (moving) time.
pub const SAVE_EVERY_MS: u64 = 10_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub metres: u64,
    pub boots: u64,
}

fn u64_at(r: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&r[i..i + 8]);
    u64::from_le_bytes(b)
}

impl Record {
    /// The record in `sector` if magic, version and CRC are right.
    pub fn decode(sector: &[u8]) -> Option<Record> {
        let r = sector.get(..BYTES)?;
        let version = u32::from_le_bytes([r[8], r[9], r[10], r[11]]);
        let crc = u32::from_le_bytes([r[44], r[45], r[46], r[47]]);
        (r[..8] == MAGIC && version == VERSION && crc == crc32(&r[..44])).then(|| Record {
            seq: u64_at(r, 12),
            metres: u64_at(r, 20),
            boots: u64_at(r, 28),
        })
    }

    /// Writes the record over the start of `sector` and zeroes the rest.
    pub fn encode(&self, sector: &mut [u8]) {
        sector.fill(0);
        sector[..8].copy_from_slice(&MAGIC);
        sector[8..12].copy_from_slice(&VERSION.to_le_bytes());
        sector[12..20].copy_from_slice(&self.seq.to_le_bytes());
        sector[20..28].copy_from_slice(&self.metres.to_le_bytes());
        sector[28..36].copy_from_slice(&self.boots.to_le_bytes());
        let crc = crc32(&sector[..44]);
        sector[44..48].copy_from_slice(&crc.to_le_bytes());
    }

    /// The sector this record goes to.
    pub fn slot(&self) -> u64 {
        SLOTS[(self.seq % 2) as usize]
    }

    /// What the disk says, from the contents of its two slots: the newer
    /// valid copy, else testkit's record in sector 0, else nothing.
    pub fn load(slot0: &[u8], slot1: &[u8]) -> Option<Record> {
        match (Record::decode(slot0), Record::decode(slot1)) {
            (Some(a), Some(b)) => Some(if b.seq > a.seq { b } else { a }),
            (Some(a), None) | (None, Some(a)) => Some(a),
            (None, None) => odometer::Record::decode(slot0).map(|r| Record {
                seq: 0,
                metres: r.km.saturating_mul(1000),
                boots: r.boots,
            }),
        }
    }

    /// The next copy to write: one more in sequence, with `metres`.
    pub fn next(&self, metres: u64) -> Record {
        Record {
            seq: self.seq.wrapping_add(1),
            metres,
            boots: self.boots,
        }
    }

    pub fn km(&self) -> u64 {
        self.metres / 1000
    }
}

/// When to write: on every new kilometre and after every 10 s of driving
/// (time spent moving since the last write), never while standing still
/// with nothing new.
#[derive(Clone, Copy, Debug)]
pub struct SavePolicy {
    saved_m: u64,
    driving_ms: u64,
}

impl SavePolicy {
    pub fn new(saved_m: u64) -> SavePolicy {
        SavePolicy {
            saved_m,
            driving_ms: 0,
        }
    }

    /// `dt_ms` passed, moving or not, and the odometer now reads `metres`:
    /// whether to write it now.
    pub fn due(&mut self, dt_ms: u64, moving: bool, metres: u64) -> bool {
        if moving {
            self.driving_ms += dt_ms;
        }
        if metres == self.saved_m {
            return false;
        }
        metres / SAVE_EVERY_M != self.saved_m / SAVE_EVERY_M || self.driving_ms >= SAVE_EVERY_MS
    }

    /// `metres` were written.
    pub fn saved(&mut self, metres: u64) {
        self.saved_m = metres;
        self.driving_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let r = Record {
            seq: 7,
            metres: 12_345_678,
            boots: 3,
        };
        let mut s = [0xaau8; 512];
        r.encode(&mut s);
        assert_eq!(&s[..8], b"CLUSTODO");
        assert!(s[BYTES..].iter().all(|&b| b == 0));
        assert_eq!(Record::decode(&s), Some(r));
        assert_eq!(r.slot(), 1);
        assert_eq!(r.km(), 12_345);
        for i in 0..BYTES {
            let mut bad = s;
            bad[i] ^= 4;
            assert_eq!(Record::decode(&bad), None, "byte {i}");
        }
        assert_eq!(Record::decode(&s[..20]), None);
    }

    #[test]
    fn newer_copy_wins_and_torn_copy_is_ignored() {
        let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
        let old = Record {
            seq: 4,
            metres: 1000,
            boots: 2,
        };
        let new = old.next(2500);
        assert_eq!(new.slot(), 1);
        old.encode(&mut a);
        new.encode(&mut b);
        assert_eq!(Record::load(&a, &b), Some(new));
        assert_eq!(Record::load(&b, &a), Some(new));
        // Half of the newer write landed.
        b[20] ^= 0xff;
        assert_eq!(Record::load(&a, &b), Some(old));
        assert_eq!(Record::load(&[0; 512], &[0; 512]), None);
    }

    #[test]
    fn reads_testkit_odometer_record() {
        let mut s = [0u8; 512];
        odometer::Record { km: 300, boots: 3 }.encode(&mut s);
        assert_eq!(
            Record::load(&s, &[0; 512]),
            Some(Record {
                seq: 0,
                metres: 300_000,
                boots: 3
            })
        );
    }

    #[test]
    fn saves_per_km_and_per_10s_of_driving() {
        let mut p = SavePolicy::new(500);
        // Standing still: never.
        assert!(!p.due(60_000, false, 500));
        // Driving 9.9 s without crossing a kilometre: not yet.
        assert!(!p.due(9_900, true, 900));
        assert!(p.due(100, true, 910));
        p.saved(910);
        // Crossing a kilometre: at once.
        assert!(!p.due(16, true, 990));
        assert!(p.due(16, true, 1001));
        p.saved(1001);
        // Time stood still does not count.
        assert!(!p.due(20_000, false, 1001));
        assert!(!p.due(5_000, true, 1050));
        assert!(p.due(5_000, true, 1100));
    }
}
