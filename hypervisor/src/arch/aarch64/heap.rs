//! The hypervisor heap: a buddy allocator over a fixed region of the
//! image (`.heap`, not zeroed at entry: nothing reads it before it is
//! allocated, and what needs zeros asks for them), grown at boot by the rest of the hypervisor's memory reservation (the
//! display mediator's framebuffers and partitions' resource arenas live
//! there). Used at boot and for restarts (device trees, tables); trap
//! handling on the hot path does not allocate.

use buddy_system_allocator::LockedHeap;
use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the heap region in the image (more is added at boot, see
/// [`extend`]).
pub const HEAP_SIZE: usize = 16 * 1024 * 1024;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

#[unsafe(link_section = ".bss.heap")]
static mut SPACE: MaybeUninit<HeapSpace> = MaybeUninit::uninit();

#[global_allocator]
static ALLOCATOR: Tracked = Tracked;

static HEAP: LockedHeap<32> = LockedHeap::empty();

/// The most bytes the allocator has had handed out at once.
static HIGH_WATER: AtomicUsize = AtomicUsize::new(0);

/// The buddy allocator, with its high-water mark kept (the crate counts
/// what is in use, not the most that ever was).
struct Tracked;

// SAFETY: every call goes to `HEAP`, a `GlobalAlloc`, unchanged; the mark
// is only read from its statistics.
unsafe impl GlobalAlloc for Tracked {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { HEAP.alloc(layout) };
        if !ptr.is_null() {
            HIGH_WATER.fetch_max(HEAP.lock().stats_alloc_actual(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { HEAP.dealloc(ptr, layout) }
    }
}

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

/// The most bytes the allocator has had handed out at once since boot.
pub fn high_water() -> usize {
    HIGH_WATER.load(Ordering::Relaxed)
}

/// Bytes the allocator manages in all.
pub fn total() -> usize {
    HEAP.lock().stats_total_bytes()
}
