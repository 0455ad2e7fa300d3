//! The guest runtime: boot code, exception vectors, console, GICv3, virtual
//! timer, PSCI and per-vCPU bookkeeping. Only built for `target_os = "none"`.
//!
//! A binary provides its entry point with [`entry!`](crate::entry); the boot
//! code parses the device tree, sets up the console and interrupts on the
//! boot vCPU and then calls it.

pub mod boot;
pub mod cache;
pub mod console;
pub mod cpu;
pub mod exceptions;
pub mod gic;
pub mod mmio;
pub mod psci;
pub mod timer;
pub mod virtio_blk;
pub mod virtio_gpu;
pub mod virtio_input;
pub mod virtio_snd;

use crate::args;
use crate::dt::Platform;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

unsafe extern "Rust" {
    /// The binary's `main`, defined by [`entry!`](crate::entry).
    safe fn __testkit_main() -> !;
    /// The binary's name, the prefix of the runtime's own messages.
    safe static __TESTKIT_NAME: &'static str;
}

/// Declares the binary's name (the prefix of runtime messages such as
/// `<name>: unexpected exception ...`) and its `fn() -> !` entry point, which
/// runs on vCPU 0 once the runtime is up.
#[macro_export]
macro_rules! entry {
    ($name:literal, $main:path) => {
        #[unsafe(no_mangle)]
        fn __testkit_main() -> ! {
            let main: fn() -> ! = $main;
            main()
        }

        #[unsafe(no_mangle)]
        static __TESTKIT_NAME: &str = $name;
    };
}

/// Prints one whole line (a newline is added) on the partition's PL011.
/// Lines from different vCPUs never interleave.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::rt::console::print_line(::core::format_args!($($arg)*))
    };
}

/// The binary's name as given to [`entry!`](crate::entry).
pub fn name() -> &'static str {
    __TESTKIT_NAME
}

static mut PLATFORM: MaybeUninit<Platform<'static>> = MaybeUninit::uninit();
static PLATFORM_READY: AtomicBool = AtomicBool::new(false);
/// The device tree's address, for what `Platform` does not keep.
static DTB: AtomicUsize = AtomicUsize::new(0);
static INTERRUPTS: AtomicBool = AtomicBool::new(false);

/// What the device tree said. Valid from the binary's `main` on.
pub fn platform() -> &'static Platform<'static> {
    assert!(
        PLATFORM_READY.load(Ordering::Acquire),
        "platform() before the device tree was parsed"
    );
    // SAFETY: written once by the boot vCPU before PLATFORM_READY was set
    // (and before any other vCPU started); only read afterwards.
    unsafe { &*(&raw const PLATFORM).cast::<Platform<'static>>() }
}

/// The device tree itself (for devices `Platform` does not describe, such
/// as the `virtio,mmio` transports). Valid from the binary's `main` on.
pub fn device_tree() -> fdt::Fdt<'static> {
    let dtb = DTB.load(Ordering::Acquire);
    // SAFETY: the boot vCPU parsed this very tree successfully before
    // storing its address, and nothing overwrites it.
    unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.expect("device tree parsed at boot")
}

/// The device tree's address (what the loader passed in `x0`), for code
/// that hands out RAM and must keep clear of it. Valid from `main` on.
pub fn device_tree_address() -> usize {
    DTB.load(Ordering::Acquire)
}

/// Whether the GIC is in use. `idle=poll` in the bootargs leaves it alone:
/// no interrupts, and sleeping polls the counter (for bring-up of a
/// hypervisor without a virtual GIC).
pub fn interrupts_enabled() -> bool {
    INTERRUPTS.load(Ordering::Relaxed)
}

/// Stops this vCPU for good (interrupts masked, `wfe` forever).
pub fn park() -> ! {
    cpu::mask_irqs();
    loop {
        cpu::wfe();
    }
}

/// Sets up this vCPU's GIC CPU interface and redistributor (when interrupts
/// are in use) and unmasks IRQs and SErrors.
fn enable_interrupts_here() {
    if interrupts_enabled() {
        gic::init_cpu();
        gic::enable(platform().vtimer_intid);
        cpu::unmask_irqs();
    }
    cpu::unmask_serror();
}

/// Rust entry of the boot vCPU (called by `boot.rs` with bss zeroed).
fn boot_primary(dtb: usize) -> ! {
    // SAFETY: x0 at entry is the device tree, which nothing overwrites.
    let fdt = match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(fdt) => fdt,
        Err(e) => {
            println!("{}: no usable device tree at 0x{:x}: {:?}", name(), dtb, e);
            park();
        }
    };
    let platform = Platform::parse(&fdt);
    // SAFETY: single writer, before anyone reads (see `platform`).
    unsafe {
        (&raw mut PLATFORM)
            .cast::<Platform<'static>>()
            .write(platform)
    };
    DTB.store(dtb, Ordering::Release);
    PLATFORM_READY.store(true, Ordering::Release);

    if let Some(uart) = platform.uart {
        console::set_base(uart);
    }
    psci::set_conduit(platform.psci);
    let poll = args::value(platform.bootargs, "idle") == Some("poll");
    if !poll && platform.gicd.is_some() && platform.gicr.is_some() {
        gic::init_distributor();
        gic::set_handler(platform.vtimer_intid, timer::wake_irq);
        INTERRUPTS.store(true, Ordering::Release);
    }
    enable_interrupts_here();
    __testkit_main()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => println!(
            "{}: panic on cpu{} at {}:{}: {}",
            name(),
            cpu::index(),
            at.file(),
            at.line(),
            info.message()
        ),
        None => println!(
            "{}: panic on cpu{}: {}",
            name(),
            cpu::index(),
            info.message()
        ),
    }
    park()
}
