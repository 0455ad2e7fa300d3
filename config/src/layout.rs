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

/// Virtual virtio-mmio transports (virtio spec 1.x, "Virtio Over MMIO"),
/// one slot every `VIRTIO_STRIDE` bytes from `VIRTIO_BASE`, as QEMU lays
/// out its own. A partition's disks take slots 0, 1, ... in config order,
/// its virtio-gpu device, if it has views, the slot after them
/// (`config::model::Partition::gpu_slot`), and its touch input devices, if
/// it has `touch`, the slots after that (`config::model::Partition::inputs`).
/// The whole window is kept clear of guest memory and passthrough devices
/// in every partition, however many slots it uses.
pub const VIRTIO_BASE: u64 = 0x0b00_0000;
pub const VIRTIO_STRIDE: u64 = 0x200;
pub const VIRTIO_SLOTS: usize = 16;
/// Bytes the window takes: 8 KiB, two 4 KiB pages.
pub const VIRTIO_WINDOW_SIZE: u64 = VIRTIO_STRIDE * VIRTIO_SLOTS as u64;
/// Slot n raises INTID `VIRTIO_FIRST_INTID + n` (SPI 64 + n).
pub const VIRTIO_FIRST_INTID: u32 = 96;

// The virtio window lies above the emulated device window and is made of
// whole 4 KiB pages, which stage 2 maps (or leaves unmapped, to trap).
const _: () = {
    assert!(VIRTIO_BASE >= DEVICE_WINDOW_BASE + DEVICE_WINDOW_SIZE);
    assert!(VIRTIO_BASE.is_multiple_of(0x1000) && VIRTIO_WINDOW_SIZE.is_multiple_of(0x1000));
};

/// Guest-physical base of virtio-mmio slot `slot` (`< VIRTIO_SLOTS`).
pub const fn virtio_slot_base(slot: usize) -> u64 {
    VIRTIO_BASE + slot as u64 * VIRTIO_STRIDE
}

/// The INTID virtio-mmio slot `slot` (`< VIRTIO_SLOTS`) raises.
pub const fn virtio_slot_intid(slot: usize) -> u32 {
    VIRTIO_FIRST_INTID + slot as u32
}

/// Whether `intid` belongs to an emulated device in every partition: one of
/// [`EMULATED_INTIDS`] or a virtio-mmio slot's. A passthrough device may
/// not use it.
pub const fn is_reserved_intid(intid: u32) -> bool {
    let mut i = 0;
    while i < EMULATED_INTIDS.len() {
        if EMULATED_INTIDS[i] == intid {
            return true;
        }
        i += 1;
    }
    intid >= VIRTIO_FIRST_INTID && intid < VIRTIO_FIRST_INTID + VIRTIO_SLOTS as u32
}

/// Scanouts of a virtio-gpu device (the virtio spec's
/// `VIRTIO_GPU_MAX_SCANOUTS`): a partition has at most this many views.
pub const GPU_MAX_SCANOUTS: usize = 16;

/// Bytes in a disk sector: `lba` and `sectors` in a config count these.
pub const SECTOR_SIZE: u64 = 512;
/// Longest GPT partition name, in UTF-16 code units (72 bytes, UEFI spec).
pub const GPT_NAME_MAX: usize = 36;

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
    fn virtio_slots() {
        assert_eq!(virtio_slot_base(0), 0x0b00_0000);
        assert_eq!(virtio_slot_base(3), 0x0b00_0600);
        assert_eq!(
            virtio_slot_base(VIRTIO_SLOTS - 1) + VIRTIO_STRIDE,
            VIRTIO_BASE + VIRTIO_WINDOW_SIZE
        );
        assert_eq!(virtio_slot_intid(0), 96, "SPI 64");
        assert_eq!(virtio_slot_intid(15), 111, "SPI 79");
    }

    #[test]
    fn reserved_intids() {
        for intid in EMULATED_INTIDS {
            assert!(is_reserved_intid(intid));
        }
        for slot in 0..VIRTIO_SLOTS {
            assert!(is_reserved_intid(virtio_slot_intid(slot)));
        }
        for intid in [32, 34, 41, 43, 95, 112, 1019] {
            assert!(!is_reserved_intid(intid), "{intid}");
        }
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
