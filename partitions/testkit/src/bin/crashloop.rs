//! `crashloop`: a partition that dies as soon as it has booted, in turn by
//! PSCI SYSTEM_RESET, by a stage-2 fault and by an access to an
//! implementation-defined system register (which traps to the hypervisor
//! as an undefined instruction; run with `on_fault = "restart"`), until it has booted `boots=<n>`
//! times (bootargs, default 100); then it says so and idles. For crash-loop
//! soaks: the hypervisor's heap must stay flat and the partition beside it
//! must not notice. Its stage-2 fault is a load with [`MARK`] in x20 and
//! the boot number in x21, for the crash records' registers to show.
//!
//! ```text
//! crashloop: boot <n>            (boot 0 and every <every>th; bootargs
//!                                 every=<every>, default 100)
//! crashloop: done boots=<n>
//! ```

#![no_std]
#![no_main]

use core::arch::asm;
use testkit::rt::{platform, psci, timer};
use testkit::{args, println};

testkit::entry!("crashloop", main);

/// Unmapped in every partition (QEMU virt's PCIe window).
const UNMAPPED: u64 = 0x3000_0000;

/// In x20 when it faults.
const MARK: u64 = 0xc0ff_ee00_0000_0020;

fn main() -> ! {
    let p = platform();
    let boot = p.restart_count;
    let boots: u32 = args::value(p.bootargs, "boots")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if boot + 1 >= boots {
        println!("crashloop: done boots={}", boot + 1);
        loop {
            timer::sleep_ms(1000);
        }
    }
    let every: u32 = args::value(p.bootargs, "every")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100);
    if boot.is_multiple_of(every) {
        println!("crashloop: boot {}", boot);
    }
    match boot % 3 {
        0 => {
            psci::call(psci::SYSTEM_RESET, 0, 0, 0);
        }
        // SAFETY: none needed: this load is meant to fault.
        1 => unsafe {
            asm!(
                "ldr {v}, [{addr}]",
                addr = in(reg) UNMAPPED,
                v = out(reg) _,
                in("x20") MARK,
                in("x21") u64::from(boot),
                options(nostack, readonly),
            );
        },
        // SAFETY: reads an implementation-defined register (HCR_EL2.TIDCP
        // traps it: an undefined instruction as far as the partition goes).
        _ => unsafe { asm!("mrs {}, s3_0_c15_c0_0", out(reg) _, options(nomem, nostack)) },
    }
    println!("crashloop: still alive after dying at boot {}", boot);
    loop {
        timer::sleep_ms(1000);
    }
}
