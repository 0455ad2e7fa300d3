//! The guest-physical layout every partition sees. It mirrors QEMU's `virt`
//! machine, so images built for `virt` run unmodified: RAM where the config
//! puts it (usually 0x4000_0000), and emulated devices in a fixed window.
//! The validator keeps configs clear of it; the hypervisor implements it.

/// Emulated GICv3 distributor.
pub const GICD_BASE: u64 = 0x0800_0000;
pub const GICD_SIZE: u64 = 0x1_0000;
/// Emulated GICv3 redistributors: one 128 KiB frame (RD + SGI) per vCPU.
pub const GICR_BASE: u64 = 0x080a_0000;
pub const GICR_STRIDE: u64 = 0x2_0000;
/// Emulated PL011 console.
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// The console's interrupt: SPI 1, as on QEMU virt.
pub const UART_INTID: u32 = 33;
/// Virtual SP805 watchdog (only in partitions with `watchdog = true`).
pub const WATCHDOG_BASE: u64 = 0x0910_0000;
pub const WATCHDOG_SIZE: u64 = 0x1000;
/// The watchdog's interrupt: SPI 10.
pub const WATCHDOG_INTID: u32 = 42;
/// Interrupts of emulated devices; a passthrough device may not use them.
pub const EMULATED_INTIDS: [u32; 2] = [UART_INTID, WATCHDOG_INTID];
/// The fixed clock every partition's device tree provides for its PrimeCell
/// devices (UART, watchdog): the watchdog counts at this rate.
pub const APB_CLOCK_HZ: u32 = 24_000_000;
/// No guest memory may use this window. Passthrough devices may, as long
/// as they miss the emulated devices themselves.
pub const DEVICE_WINDOW_BASE: u64 = 0x0800_0000;
pub const DEVICE_WINDOW_SIZE: u64 = 0x0200_0000;

/// The generated device tree goes into the last 2 MiB of the partition's
/// first memory region; the kernel image must end below it.
pub const DTB_SLOT_SIZE: u64 = 0x20_0000;
/// The kernel's base (the first region's guest address) must be 2 MiB aligned.
pub const KERNEL_BASE_ALIGN: u64 = 0x20_0000;
/// Largest generated device tree.
pub const DTB_MAX_SIZE: usize = 0x1_0000;
/// The initrd starts on a boundary of this size.
pub const INITRD_ALIGN: u64 = 0x20_0000;

// How a partition's first memory region is filled at boot, lowest address
// first:
//
//   base + text_offset    the kernel image, `kernel_size` bytes
//   initrd_address(..)    the initrd, if any: first 2 MiB boundary at or
//                         after the kernel's end
//   end - DTB_SLOT_SIZE   the generated device tree
//
// The validator checks that each part ends at or before the next one
// starts; the hypervisor loads them there. Both compute the addresses with
// the functions below, so they cannot disagree.

/// Bytes the kernel takes from its load address (`base + text_offset`):
/// the header's `image_size`, or the file's length when the header says 0
/// ("unknown", older kernels). A header that claims less than the file
/// holds counts as the file's length, since all of the file is copied.
pub const fn kernel_size(image_size: u64, file_len: u64) -> u64 {
    if image_size > file_len {
        image_size
    } else {
        file_len
    }
}

/// Guest-physical address the initrd is loaded at: the first
/// [`INITRD_ALIGN`] (2 MiB) boundary at or after the end of the kernel,
/// which is loaded at `base + text_offset` and takes `image_size` bytes
/// (pass [`kernel_size`] of the header's value and the file's length).
///
/// `base` is the guest address of the partition's first memory region.
/// Only a corrupt header can make this overflow; the result then saturates
/// at `u64::MAX`, where nothing fits.
pub const fn initrd_address(base: u64, text_offset: u64, image_size: u64) -> u64 {
    let kernel_end = base.saturating_add(text_offset).saturating_add(image_size);
    match kernel_end.checked_add(INITRD_ALIGN - 1) {
        Some(end) => end & !(INITRD_ALIGN - 1),
        None => u64::MAX,
    }
}

/// Offsets within an arm64 `Image` header (Documentation/arch/arm64/booting.rst).
pub mod image {
    pub const TEXT_OFFSET: usize = 8;
    pub const IMAGE_SIZE: usize = 16;
    pub const MAGIC: usize = 56;
    pub const MAGIC_VALUE: u32 = 0x644d_5241; // "ARM\x64"
    pub const HEADER_SIZE: usize = 64;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn kernel_size_is_the_header_size_or_the_file_length() {
        assert_eq!(kernel_size(0x14_9000, 0x8398), 0x14_9000, "with .bss");
        assert_eq!(kernel_size(0, 0x8398), 0x8398, "0 means unknown");
        assert_eq!(kernel_size(0x100, 0x8398), 0x8398, "understated");
    }

    #[test]
    fn initrd_goes_at_the_next_2_mib_boundary_after_the_kernel() {
        let base = 0x4000_0000;
        // A kernel ending inside the first 2 MiB.
        assert_eq!(initrd_address(base, 0x8_0000, 0x14_9000), base + 2 * MIB);
        // Ending exactly on a boundary: the initrd starts right there.
        assert_eq!(initrd_address(base, 0x8_0000, 0x18_0000), base + 2 * MIB);
        // One byte more moves it to the next boundary.
        assert_eq!(initrd_address(base, 0x8_0000, 0x18_0001), base + 4 * MIB);
        // text_offset 0 and a 5 MiB kernel.
        assert_eq!(initrd_address(base, 0, 5 * MIB), base + 6 * MIB);
        // An empty kernel at an aligned base (degenerate, but well defined).
        assert_eq!(initrd_address(base, 0, 0), base);
    }

    #[test]
    fn initrd_address_saturates_on_overflow() {
        assert_eq!(initrd_address(0x4000_0000, u64::MAX, 1), u64::MAX);
        assert_eq!(
            initrd_address(0x4000_0000, 0, u64::MAX - 0x4000_0000),
            u64::MAX
        );
        assert_eq!(initrd_address(u64::MAX - 1, 0, 0), u64::MAX);
    }
}
