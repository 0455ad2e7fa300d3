//! Partition memory in the simulated machine's sparse physical memory,
//! reached exactly as on hardware: through the partition's memory map,
//! bounds-checked.

use super::with;
use crate::memory::guest_map::to_host;
use config::model::MemoryMap;
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};

/// The guest-physical address of a range outside the partition's memory.
#[derive(Debug)]
pub struct OutOfRange {
    /// Where the range starts.
    pub gpa: u64,
}

/// Copies `bytes` to guest-physical `gpa`.
pub fn write(map: &[MemoryMap], gpa: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
    let host = to_host(map, gpa, bytes.len() as u64).ok_or(OutOfRange { gpa })?;
    with(|m| m.write(host, bytes));
    Ok(())
}

/// Zeroes all of a partition's memory (drops its pages).
pub fn scrub(map: &[MemoryMap]) {
    with(|m| {
        for r in map {
            m.memory
                .retain(|&page, _| page < r.host || page >= r.host + r.size);
        }
    });
}

/// A partition's memory as the virtio device models see it.
pub struct PartitionMemory {
    /// The partition's memory map.
    pub map: &'static [MemoryMap],
}

impl GuestMemory for PartitionMemory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len() as u64;
        let host = to_host(self.map, gpa, len).ok_or(MemoryError { gpa, len })?;
        with(|m| m.read(host, buf));
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let len = data.len() as u64;
        let host = to_host(self.map, gpa, len).ok_or(MemoryError { gpa, len })?;
        with(|m| m.write(host, data));
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        to_host(self.map, gpa, len)
            .map(|_| ())
            .ok_or(MemoryError { gpa, len })
    }

    fn fence(&self, _fence: Fence) {}
}
