//! DMA memory for the hypervisor's own (physical-side) device drivers, as
//! the `virtio-drivers` crate's `Hal`. EL2 identity-maps RAM, so a heap
//! address is the bus address; devices on the supported boards are cache
//! coherent (`dma-coherent`), so sharing a buffer needs no copy.

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::ptr::NonNull;
use virtio_drivers::transport::mmio::{MmioError, MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PAGE_SIZE, PhysAddr};

pub struct El2Hal;

fn layout(pages: usize) -> Layout {
    Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("DMA allocation size")
}

// SAFETY: allocations are page aligned, zeroed, owned until `dma_dealloc`;
// physical == virtual under the EL2 identity map.
unsafe impl Hal for El2Hal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // SAFETY: the layout has a non-zero size (pages >= 1 per the trait).
        let ptr = unsafe { alloc_zeroed(layout(pages)) };
        let ptr = NonNull::new(ptr).expect("out of heap for DMA");
        (ptr.as_ptr() as usize as PhysAddr, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the caller passes what `dma_alloc` returned, with its size.
        unsafe { dealloc(vaddr.as_ptr(), layout(pages)) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The virtio-mmio transport of the physical device at `base` (non-zero).
pub fn mmio_transport(base: u64, size: u64) -> Result<MmioTransport<'static>, MmioError> {
    let header =
        NonNull::new(base as usize as *mut VirtIOHeader).expect("virtio-mmio frame at address 0");
    // SAFETY: `base` is a virtio-mmio register frame from the platform DT,
    // identity mapped as device memory at EL2, used by the hypervisor only
    // (the config validator keeps it out of every partition).
    unsafe { MmioTransport::new(header, size as usize) }
}
