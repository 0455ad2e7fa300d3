//! Device-shared memory in the simulated machine: the machine's sparse
//! memory.

use super::with;
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};
use std::sync::atomic::{AtomicU64, Ordering};

/// Nothing to order in the simulation.
pub fn publish() {}

/// Memory shared with a device.
pub struct DmaRegion {
    base: u64,
    len: u64,
}

/// Where simulated DMA allocations start.
static NEXT: AtomicU64 = AtomicU64::new(0x80_0000_0000);

impl DmaRegion {
    /// `len` bytes, page aligned.
    pub fn alloc(len: usize) -> Option<Self> {
        let len = (len as u64).max(1).next_multiple_of(4096);
        let base = NEXT.fetch_add(len, Ordering::Relaxed);
        Some(Self { base, len })
    }

    /// Its bus address.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn check_range(&self, addr: u64, len: u64) -> Result<(), MemoryError> {
        let end = addr.checked_add(len);
        if addr < self.base || end.is_none_or(|e| e > self.base + self.len) {
            return Err(MemoryError { gpa: addr, len });
        }
        Ok(())
    }
}

impl GuestMemory for DmaRegion {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.check_range(addr, buf.len() as u64)?;
        with(|m| m.read(addr, buf));
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.check_range(addr, data.len() as u64)?;
        with(|m| m.write(addr, data));
        Ok(())
    }

    fn check(&self, addr: u64, len: u64) -> Result<(), MemoryError> {
        self.check_range(addr, len)
    }

    fn fence(&self, _fence: Fence) {}
}
