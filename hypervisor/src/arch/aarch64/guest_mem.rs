//! Raw access to partition memory from EL2.
//!
//! EL2 identity-maps all RAM, so a host-physical address is also the EL2
//! virtual address. Every access goes through `guest_map::to_host` first,
//! which bounds-checks the guest-physical range against the partition's
//! memory map: this module never writes outside a partition's own memory,
//! which the config validator and the boot check keep disjoint from the
//! hypervisor and from every other partition.

use super::cpu::clean_dcache;
use crate::memory::guest_map::to_host;
use aarch64_cpu::asm::barrier;
use config::model::MemoryMap;
use shared_devices::virtio::memory::{Fence, MemoryError};

/// The guest-physical address of a range outside the partition's memory.
#[derive(Debug)]
pub struct OutOfRange {
    pub gpa: u64,
}

/// Copies `bytes` to guest-physical `gpa`.
pub fn write(map: &[MemoryMap], gpa: u64, bytes: &[u8]) -> Result<(), OutOfRange> {
    let len = bytes.len() as u64;
    let host = to_host(map, gpa, len).ok_or(OutOfRange { gpa })?;
    // SAFETY: [host, host+len) lies inside one of the partition's regions
    // (checked above), which is RAM mapped at EL2 and owned by no one else.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), host as *mut u8, bytes.len()) };
    clean_dcache(host, len);
    Ok(())
}

/// Zeroes all of a partition's memory, so nothing of a previous run (or of
/// whatever the memory held before boot) survives into the next.
pub fn scrub(map: &[MemoryMap]) {
    for m in map {
        // SAFETY: the region is the partition's own RAM (see module docs),
        // Normal memory mapped at EL2; the partition is not running.
        unsafe { super::cpu::zero(m.host, m.size) };
        clean_dcache(m.host, m.size);
    }
}

/// A partition's memory as the virtio device models see it: every access
/// bounds-checked against its memory map.
pub struct PartitionMemory {
    pub map: &'static [MemoryMap],
}

impl shared_devices::virtio::memory::GuestMemory for PartitionMemory {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len() as u64;
        let host = to_host(self.map, gpa, len).ok_or(MemoryError { gpa, len })?;
        // SAFETY: [host, host+len) is inside the partition's own RAM (checked
        // above), identity mapped at EL2.
        unsafe { core::ptr::copy_nonoverlapping(host as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let len = data.len() as u64;
        let host = to_host(self.map, gpa, len).ok_or(MemoryError { gpa, len })?;
        // SAFETY: as for `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), host as *mut u8, data.len()) };
        Ok(())
    }

    fn check(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        to_host(self.map, gpa, len)
            .map(|_| ())
            .ok_or(MemoryError { gpa, len })
    }

    fn read_u16(&self, gpa: u64) -> Result<u16, MemoryError> {
        let host = to_host(self.map, gpa, 2)
            .filter(|h| h % 2 == 0)
            .ok_or(MemoryError { gpa, len: 2 })?;
        // SAFETY: aligned, inside the partition's RAM; one 16-bit access so
        // ring indices are never torn.
        Ok(unsafe { core::ptr::read_volatile(host as *const u16) })
    }

    fn write_u16(&self, gpa: u64, value: u16) -> Result<(), MemoryError> {
        let host = to_host(self.map, gpa, 2)
            .filter(|h| h % 2 == 0)
            .ok_or(MemoryError { gpa, len: 2 })?;
        // SAFETY: as for `read_u16`.
        unsafe { core::ptr::write_volatile(host as *mut u16, value) };
        Ok(())
    }

    fn fence(&self, fence: Fence) {
        match fence {
            Fence::Acquire => barrier::dmb(barrier::ISHLD),
            Fence::Release | Fence::Full => barrier::dmb(barrier::ISH),
        }
    }
}
