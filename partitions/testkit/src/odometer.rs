//! The record `odometer` keeps in sector 0 of its disk.
//!
//! Little-endian, 32 bytes, the rest of the sector zero:
//!
//! | bytes  | field                                  |
//! | ------ | -------------------------------------- |
//! | 0..8   | magic `ODOMETER`                       |
//! | 8..12  | version (1)                            |
//! | 12..20 | km                                     |
//! | 20..28 | boots                                  |
//! | 28..32 | CRC-32 (IEEE, as zlib) of bytes 0..28  |

pub const MAGIC: [u8; 8] = *b"ODOMETER";
pub const VERSION: u32 = 1;
/// Bytes the record occupies at the start of the sector.
pub const BYTES: usize = 32;
/// What each boot adds to `km`.
pub const KM_PER_BOOT: u64 = 100;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub km: u64,
    pub boots: u64,
}

/// CRC-32 with the IEEE polynomial, reflected, as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

impl Record {
    /// The record in `sector` (at least [`BYTES`] long), if its magic,
    /// version and CRC are right.
    pub fn decode(sector: &[u8]) -> Option<Record> {
        let r = sector.get(..BYTES)?;
        let u32_at = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
        let u64_at = |i: usize| u64::from(u32_at(i)) | u64::from(u32_at(i + 4)) << 32;
        (r[..8] == MAGIC && u32_at(8) == VERSION && u32_at(28) == crc32(&r[..28])).then(|| Record {
            km: u64_at(12),
            boots: u64_at(20),
        })
    }

    /// Writes the record over the start of `sector` and zeroes the rest.
    pub fn encode(&self, sector: &mut [u8]) {
        sector.fill(0);
        sector[..8].copy_from_slice(&MAGIC);
        sector[8..12].copy_from_slice(&VERSION.to_le_bytes());
        sector[12..20].copy_from_slice(&self.km.to_le_bytes());
        sector[20..28].copy_from_slice(&self.boots.to_le_bytes());
        let crc = crc32(&sector[..28]);
        sector[28..32].copy_from_slice(&crc.to_le_bytes());
    }

    /// The record after one more boot.
    pub fn next(&self) -> Record {
        Record {
            km: self.km.wrapping_add(KM_PER_BOOT),
            boots: self.boots.wrapping_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn round_trip() {
        let mut sector = [0xffu8; 512];
        let r = Record {
            km: 0x1_0000_0064,
            boots: 3,
        };
        r.encode(&mut sector);
        assert_eq!(&sector[..8], b"ODOMETER");
        assert!(sector[BYTES..].iter().all(|&b| b == 0));
        assert_eq!(Record::decode(&sector), Some(r));
        assert_eq!(
            r.next(),
            Record {
                km: 0x1_0000_00c8,
                boots: 4
            }
        );
    }

    #[test]
    fn rejects_damage() {
        assert_eq!(Record::decode(&[0u8; 512]), None);
        assert_eq!(Record::decode(&[0u8; 16]), None);
        let mut sector = [0u8; 512];
        Record { km: 100, boots: 1 }.encode(&mut sector);
        for i in 0..BYTES {
            let mut bad = sector;
            bad[i] ^= 0x10;
            assert_eq!(Record::decode(&bad), None, "byte {i}");
        }
        // Beyond the record nothing is checked.
        sector[100] = 1;
        assert!(Record::decode(&sector).is_some());
    }
}
