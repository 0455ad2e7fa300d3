//! The hypervisor heap: a buddy allocator over a fixed region in .bss,
//! grown at boot by the rest of the hypervisor's memory reservation (the
//! display mediator's framebuffers and partitions' resource arenas live
//! there). Used at boot and for restarts (device trees, tables); trap
//! handling on the hot path does not allocate.

use buddy_system_allocator::LockedHeap;

const HEAP_SIZE: usize = 16 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

#[unsafe(link_section = ".bss.heap")]
static mut SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Hands the heap region to the allocator; called once by the boot core.
pub fn init() {
    // SAFETY: SPACE is used by nothing but the allocator, and init runs
    // once, before any allocation.
    unsafe { HEAP.lock().init(&raw mut SPACE as usize, HEAP_SIZE) };
}

/// Bytes the allocator has handed out and not had back.
pub fn in_use() -> usize {
    HEAP.lock().stats_alloc_actual()
}

/// Gives the allocator `[start, end)` as well: the part of the
/// hypervisor's reservation after its image. Called once by the boot core,
/// after the configuration was checked against the platform (so the range
/// is RAM reserved for the hypervisor, mapped at EL2, and nothing else
/// uses it: partitions' memory never overlaps the reservation).
pub fn extend(start: usize, end: usize) {
    let start = start.next_multiple_of(4096);
    if end <= start {
        return;
    }
    // SAFETY: per the contract above, the range is unused RAM that stays
    // the allocator's for good.
    unsafe { HEAP.lock().add_to_heap(start, end) };
}

/// Bytes the allocator manages in all.
pub fn total() -> usize {
    HEAP.lock().stats_total_bytes()
}
