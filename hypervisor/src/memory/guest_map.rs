//! Translation of guest-physical ranges to host-physical ones through a
//! partition's memory map. Every guest address the hypervisor touches goes
//! through here first, so a guest can never name memory it does not own.

use config::model::MemoryMap;

/// The host-physical address of `len` bytes at guest-physical `gpa`, if the
/// whole range lies inside one of the partition's memory regions.
pub fn to_host(map: &[MemoryMap], gpa: u64, len: u64) -> Option<u64> {
    let end = gpa.checked_add(len)?;
    map.iter()
        .find(|m| gpa >= m.guest && end <= m.guest + m.size)
        .map(|m| m.host + (gpa - m.guest))
}

/// The host-physical pieces of `len` bytes at guest-physical `gpa`: calls
/// `piece(host, len)` for each, in order, one per memory region the range
/// runs through (regions that are adjacent in guest-physical space need
/// not be on the host). `None` if any byte is outside the partition's
/// memory, or `piece` said stop. No list is built: a disk request hands a
/// hundred-odd segments on this way, and copying lists cost more than the
/// translation.
pub fn for_each_host_range(
    map: &[MemoryMap],
    gpa: u64,
    len: u64,
    mut piece: impl FnMut(u64, u64) -> Option<()>,
) -> Option<()> {
    let end = gpa.checked_add(len)?;
    let mut at = gpa;
    while at < end {
        let m = map
            .iter()
            .find(|m| at >= m.guest && at < m.guest + m.size)?;
        let n = end.min(m.guest + m.size) - at;
        piece(m.host + (at - m.guest), n)?;
        at += n;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: [MemoryMap; 2] = [
        MemoryMap {
            guest: 0x4000_0000,
            host: 0x4800_0000,
            size: 0x10_0000,
        },
        MemoryMap {
            guest: 0x8000_0000,
            host: 0x6000_0000,
            size: 0x1000,
        },
    ];

    /// The pieces as a list.
    fn host_ranges(map: &[MemoryMap], gpa: u64, len: u64) -> Option<Vec<(u64, u64)>> {
        let mut pieces = Vec::new();
        for_each_host_range(map, gpa, len, |host, n| {
            pieces.push((host, n));
            Some(())
        })?;
        Some(pieces)
    }

    #[test]
    fn stops_when_told() {
        let mut seen = 0;
        let map = [MAP[0]];
        assert_eq!(
            for_each_host_range(&map, 0x4000_0000, 16, |_, _| {
                seen += 1;
                None
            }),
            None
        );
        assert_eq!(seen, 1);
    }

    #[test]
    fn splits_ranges_at_region_ends() {
        let map = [
            MemoryMap {
                guest: 0x1000,
                host: 0x9000,
                size: 0x1000,
            },
            MemoryMap {
                guest: 0x2000,
                host: 0x5000,
                size: 0x1000,
            },
        ];
        assert_eq!(
            host_ranges(&map, 0x1f00, 0x200).unwrap()[..],
            [(0x9f00, 0x100), (0x5000, 0x100)]
        );
        assert_eq!(
            host_ranges(&map, 0x1000, 0x10).unwrap()[..],
            [(0x9000, 0x10)]
        );
        assert_eq!(
            host_ranges(&map, 0x2f00, 0x200),
            None,
            "runs past the last region"
        );
        assert_eq!(host_ranges(&map, 0x800, 0x900), None, "starts before");
        assert_eq!(host_ranges(&map, u64::MAX, 2), None, "wraps");
        assert_eq!(host_ranges(&map, 0x1000, 0).unwrap().len(), 0);
    }

    #[test]
    fn translates_inside_regions_only() {
        assert_eq!(to_host(&MAP, 0x4000_0000, 0x10_0000), Some(0x4800_0000));
        assert_eq!(to_host(&MAP, 0x400f_fff0, 16), Some(0x480f_fff0));
        assert_eq!(to_host(&MAP, 0x400f_fff0, 17), None, "runs off the end");
        assert_eq!(to_host(&MAP, 0x8000_0800, 8), Some(0x6000_0800));
        assert_eq!(to_host(&MAP, 0x3fff_ffff, 2), None, "starts before");
        assert_eq!(to_host(&MAP, u64::MAX - 1, 4), None, "wraps");
        assert_eq!(
            to_host(&MAP, 0x4010_0000, 0x7000_0000),
            None,
            "spans a hole"
        );
    }
}
