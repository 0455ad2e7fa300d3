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

    /// Copies `words` to `addr` as little-endian 32-bit values.
    pub fn write_words(&self, addr: u64, words: &[u32]) -> Result<(), MemoryError> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write(addr, &bytes)
    }

    /// Reads little-endian 32-bit values at `addr` into `words`.
    pub fn read_words(&self, addr: u64, words: &mut [u32]) -> Result<(), MemoryError> {
        let mut bytes = vec![0u8; words.len() * 4];
        self.read(addr, &mut bytes)?;
        for (w, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
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
