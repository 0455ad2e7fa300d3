//! A small, allocation-free set of physical ranges (the platform's RAM),
//! usable before the heap exists.

use config::model::Region;

pub const MAX_RANGES: usize = 16;

#[derive(Default, Debug)]
pub struct Ranges {
    items: heapless::Vec<Region, MAX_RANGES>,
}

impl Ranges {
    /// Adds a range, keeping the set sorted; false if full.
    pub fn insert(&mut self, region: Region) -> bool {
        if region.size == 0 {
            return true;
        }
        let at = self
            .items
            .iter()
            .position(|r| r.base > region.base)
            .unwrap_or(self.items.len());
        self.items.insert(at, region).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Region> {
        self.items.iter()
    }

    /// The holes between the ranges, below `limit`, page aligned outward
    /// from the ranges.
    pub fn gaps(&self, limit: u64) -> impl Iterator<Item = Region> + '_ {
        let mut cursor = 0u64;
        let mut items = self.items.iter();
        core::iter::from_fn(move || {
            loop {
                match items.next() {
                    Some(r) => {
                        let start = cursor;
                        cursor = cursor.max(r.base + r.size);
                        if r.base > start {
                            return Some(Region {
                                base: start,
                                size: r.base.min(limit) - start,
                            });
                        }
                    }
                    None if cursor < limit => {
                        let start = cursor;
                        cursor = limit;
                        return Some(Region {
                            base: start,
                            size: limit - start,
                        });
                    }
                    None => return None,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn gaps_cover_everything_but_the_ranges() {
        let mut r = Ranges::default();
        r.insert(Region {
            base: 0x8000_0000,
            size: 0x1000_0000,
        });
        r.insert(Region {
            base: 0x4000_0000,
            size: 0x2000_0000,
        });
        let gaps: Vec<Region> = r.gaps(0x1_0000_0000).collect();
        assert_eq!(
            gaps,
            [
                Region {
                    base: 0,
                    size: 0x4000_0000
                },
                Region {
                    base: 0x6000_0000,
                    size: 0x2000_0000
                },
                Region {
                    base: 0x9000_0000,
                    size: 0x7000_0000
                },
            ]
        );
    }

    #[test]
    fn range_at_zero_and_at_the_limit() {
        let mut r = Ranges::default();
        r.insert(Region {
            base: 0,
            size: 0x1000,
        });
        let gaps: Vec<Region> = r.gaps(0x1000).collect();
        assert!(gaps.is_empty());
    }
}
