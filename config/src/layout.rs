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

/// Offsets within an arm64 `Image` header (Documentation/arch/arm64/booting.rst).
pub mod image {
    pub const TEXT_OFFSET: usize = 8;
    pub const IMAGE_SIZE: usize = 16;
    pub const MAGIC: usize = 56;
    pub const MAGIC_VALUE: u32 = 0x644d_5241; // "ARM\x64"
    pub const HEADER_SIZE: usize = 64;
}
