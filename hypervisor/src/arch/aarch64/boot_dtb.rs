//! The platform DTB as handed over by the boot loader.

/// Largest platform DTB accepted (QEMU's is padded to 1 MiB).
const MAX_DTB: usize = 2 * 1024 * 1024;

/// The DTB at physical address `pa`, if its header looks sane.
pub fn borrow(pa: u64) -> Option<&'static [u8]> {
    if pa == 0 || !pa.is_multiple_of(8) {
        return None;
    }
    // SAFETY: the boot protocol passes the DTB's address in x0; the first
    // 8 bytes (magic and size) are read to find its length, which is then
    // bounded before the slice is formed. The memory stays untouched until
    // the hypervisor has copied it to the heap.
    unsafe {
        let header = core::slice::from_raw_parts(pa as *const u8, 8);
        if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
            return None;
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        (size <= MAX_DTB).then(|| core::slice::from_raw_parts(pa as *const u8, size))
    }
}
