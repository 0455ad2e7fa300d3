//! What the hypervisor's own device drivers (the physical disk) need from
//! the machine besides their registers (`mmio`): memory shared with a
//! device, and the barrier that publishes it.
//!
//! EL2 identity-maps RAM, so a heap address is also the bus address the
//! device uses; devices on the supported boards are cache coherent
//! (`dma-coherent`), so sharing memory needs barriers but no cache
//! maintenance.

use aarch64_cpu::asm::barrier;
use alloc::alloc::{Layout, alloc_zeroed};
use shared_devices::virtio::memory::{Fence, GuestMemory, MemoryError};

/// Makes every memory write before it (rings, request headers, status
/// bytes) visible to devices before any device register write after it
/// (`dsb st`). Register writes themselves carry no barrier
/// ([`super::mmio::Registers`]): call this right before one that tells a
/// device to look at memory, or that changes its state.
pub fn publish() {
    barrier::dsb(barrier::ST);
}

/// Memory shared with a device: allocated once, zeroed, never freed (it
/// lives as long as the device), and reached only through bounds-checked
/// accesses, as [`GuestMemory`] (addresses are bus addresses).
pub struct DmaRegion {
    base: u64,
    len: u64,
}

impl DmaRegion {
    /// `len` bytes, page aligned; `None` if the heap cannot give them.
    pub fn alloc(len: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.max(1), 4096).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(Self {
            base: ptr as usize as u64,
            len: len as u64,
        })
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    fn host(&self, addr: u64, len: u64) -> Result<*mut u8, MemoryError> {
        let end = addr.checked_add(len);
        if addr < self.base || end.is_none_or(|e| e > self.base + self.len) {
            return Err(MemoryError { gpa: addr, len });
        }
        Ok(addr as usize as *mut u8)
    }
}

impl DmaRegion {
    /// Copies `words` to `addr` as little-endian 32-bit values (a
    /// framebuffer's pixels): one bulk copy, where going through bytes
    /// would cost a call per pixel.
    pub fn write_words(&self, addr: u64, words: &[u32]) -> Result<(), MemoryError> {
        let to = self.host(addr, core::mem::size_of_val(words) as u64)?;
        // SAFETY: inside the allocation (checked above); this target is
        // little-endian, so the words' bytes are their little-endian form.
        unsafe {
            core::ptr::copy_nonoverlapping(
                words.as_ptr() as *const u8,
                to,
                core::mem::size_of_val(words),
            )
        };
        Ok(())
    }

    /// Reads little-endian 32-bit values at `addr` into `words`.
    pub fn read_words(&self, addr: u64, words: &mut [u32]) -> Result<(), MemoryError> {
        let from = self.host(addr, core::mem::size_of_val(words) as u64)?;
        // SAFETY: as for `write_words`; any bit pattern is a valid `u32`.
        unsafe {
            core::ptr::copy_nonoverlapping(
                from,
                words.as_mut_ptr() as *mut u8,
                core::mem::size_of_val(words),
            )
        };
        Ok(())
    }
}

const _: () = assert!(cfg!(target_endian = "little"));

impl GuestMemory for DmaRegion {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let from = self.host(addr, buf.len() as u64)?;
        // SAFETY: inside the allocation (checked above); the device may
        // write it concurrently, which a byte copy tolerates.
        unsafe { core::ptr::copy_nonoverlapping(from, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<(), MemoryError> {
        let to = self.host(addr, data.len() as u64)?;
        // SAFETY: as for `read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), to, data.len()) };
        Ok(())
    }

    fn check(&self, addr: u64, len: u64) -> Result<(), MemoryError> {
        self.host(addr, len).map(|_| ())
    }

    fn fence(&self, fence: Fence) {
        // Ordering against a device, not another core: outer shareable.
        match fence {
            Fence::Acquire => barrier::dmb(barrier::OSHLD),
            Fence::Release | Fence::Full => barrier::dmb(barrier::OSH),
        }
    }

    fn read_u16(&self, addr: u64) -> Result<u16, MemoryError> {
        let at = self.host(addr, 2)?;
        if !addr.is_multiple_of(2) {
            return Err(MemoryError { gpa: addr, len: 2 });
        }
        // SAFETY: aligned, inside the allocation; one 16-bit load.
        Ok(unsafe { core::ptr::read_volatile(at as *const u16) })
    }

    fn write_u16(&self, addr: u64, value: u16) -> Result<(), MemoryError> {
        let at = self.host(addr, 2)?;
        if !addr.is_multiple_of(2) {
            return Err(MemoryError { gpa: addr, len: 2 });
        }
        // SAFETY: as for `read_u16`; one 16-bit store.
        unsafe { core::ptr::write_volatile(at as *mut u16, value) };
        Ok(())
    }

    fn read_u32(&self, addr: u64) -> Result<u32, MemoryError> {
        let at = self.host(addr, 4)?;
        if !addr.is_multiple_of(4) {
            return Err(MemoryError { gpa: addr, len: 4 });
        }
        // SAFETY: aligned, inside the allocation; one 32-bit load.
        Ok(unsafe { core::ptr::read_volatile(at as *const u32) })
    }
}
