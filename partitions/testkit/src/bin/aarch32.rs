//! `aarch32`: runs 32-bit user code (T32, EL0) the way a Linux partition
//! runs an armhf binary, while its virtual timer interrupts it 50 times a
//! second. The user code loops over a 16-bit load from the partition's
//! emulated UART (a trap to the hypervisor from AArch32 state, emulated and
//! stepped over: by 2 bytes, not 4), a counter increment and a store of
//! the counter. Each tick is taken from EL0 AArch32: first by the
//! hypervisor (a physical interrupt), then, as a virtual interrupt, by
//! this kernel, which reports the user code's progress.
//!
//! ```text
//! aarch32: entering EL0 AArch32 at 0x<addr>
//! aarch32: tick=<n> from=el0-aarch32 loops=<n>   (every 10th tick; "elsewhere"
//!                                                  if any tick so far was not)
//! aarch32: done ticks=<n>
//! ```

#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use testkit::println;
use testkit::rt::{gic, park, platform, timer};

testkit::entry!("aarch32", main);

const HZ: u64 = 50;
const TICKS: u32 = 100;

/// T32 user code, four 16-bit instructions:
/// `1: ldr r1, [r2, #0x18]; adds r0, #1; str r0, [r3]; b 1b`.
/// Stepped over by 4 bytes, the trapped load would skip the increment.
#[repr(C, align(8))]
struct Code([u16; 4]);
static USER_CODE: Code = Code([0x6991, 0x3001, 0x6018, 0xe7fb]);

/// Where the user code stores its loop count (r3).
static LOOPS: AtomicU32 = AtomicU32::new(0);

static TICK_COUNT: AtomicU32 = AtomicU32::new(0);
static FROM_EL0_AARCH32: AtomicU32 = AtomicU32::new(0);
static PERIOD: AtomicU64 = AtomicU64::new(0);

fn main() -> ! {
    let p = platform();
    let Some(uart) = p.uart else {
        println!("aarch32: no UART in the device tree");
        park()
    };
    PERIOD.store(timer::frequency() / HZ, Ordering::Relaxed);
    gic::set_handler(p.vtimer_intid, tick);
    timer::set_tval(PERIOD.load(Ordering::Relaxed) as u32);
    timer::enable();
    let entry = USER_CODE.0.as_ptr() as u64;
    println!("aarch32: entering EL0 AArch32 at 0x{:x}", entry);
    // SAFETY: drops to EL0 in AArch32 user mode, T32 state (SPSR M =
    // 0b1_0000, T, IRQs unmasked) at the user code, with r2 = the UART base
    // for its loads and r3 = LOOPS for its stores (the MMU is off: EL0
    // reaches all of the partition's memory); it never returns: the tick
    // handler parks the vCPU when done.
    unsafe {
        asm!(
            "msr spsr_el1, {spsr}",
            "msr elr_el1, {entry}",
            "eret",
            spsr = in(reg) 0x30u64,
            entry = in(reg) entry,
            in("x0") 0u64,
            in("x2") uart as u64,
            in("x3") LOOPS.as_ptr() as u64,
            options(noreturn)
        )
    }
}

/// The virtual timer's interrupt, taken from the user code.
fn tick(_intid: u32) {
    let spsr: u64;
    // SAFETY: reads registers; the interrupted context's PSTATE is in
    // SPSR_EL1 (no exception has been taken since).
    unsafe { asm!("mrs {}, spsr_el1", out(reg) spsr, options(nomem, nostack)) };
    if spsr & 0x1f == 0x10 {
        FROM_EL0_AARCH32.fetch_add(1, Ordering::Relaxed);
    }
    let n = TICK_COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_multiple_of(10) {
        let from = if FROM_EL0_AARCH32.load(Ordering::Relaxed) == n {
            "el0-aarch32"
        } else {
            "elsewhere"
        };
        let loops = LOOPS.load(Ordering::Relaxed);
        println!("aarch32: tick={} from={} loops={}", n, from, loops);
    }
    if n >= TICKS {
        timer::disable();
        println!("aarch32: done ticks={}", n);
        park()
    }
    timer::set_tval(PERIOD.load(Ordering::Relaxed) as u32);
}
