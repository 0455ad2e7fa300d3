//! Raw access to partition memory from EL2.
//!
//! EL2 identity-maps all RAM, so a host-physical address is also the EL2
//! virtual address. Every access goes through `guest_map::to_host` first,
//! which bounds-checks the guest-physical range against the partition's
//! memory map: this module never writes outside a partition's own memory,
//! which the config validator and the boot check keep disjoint from the
//! hypervisor and from every other partition.

use super::cpu::clean_dcache;
use config::model::MemoryMap;
use hypervisor::guest_map::to_host;

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
        // SAFETY: the region is the partition's own RAM (see module docs).
        unsafe { core::ptr::write_bytes(m.host as *mut u8, 0, m.size as usize) };
        clean_dcache(m.host, m.size);
    }
}
