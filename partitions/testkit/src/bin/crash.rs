//! `crash`: boots, waits 50 ms, then reads unmapped guest-physical
//! 0x3000_0000 without expecting to survive it (the hypervisor is supposed
//! to stop or restart the partition). `crash=<hex>` in the bootargs reads
//! another address instead (natively, QEMU's PCIe window at 0x3000_0000
//! reads as all-ones; 0xa800000 faults).
//!
//! ```text
//! crash: boot restarts=<restart-count>
//! crash: faulting now
//! crash: unexpected abort esr=0x<ESR_EL1>    (only if the abort reaches the guest)
//! ```

#![no_std]
#![no_main]

use testkit::rt::exceptions::{self, Fault};
use testkit::rt::{park, platform, timer};
use testkit::{args, println};

testkit::entry!("crash", main);

const UNMAPPED: u64 = 0x3000_0000;

fn main() -> ! {
    let p = platform();
    println!("crash: boot restarts={}", p.restart_count);
    let addr = args::value(p.bootargs, "crash")
        .and_then(args::parse_hex)
        .unwrap_or(UNMAPPED);
    exceptions::set_abort_hook(aborted);
    timer::sleep_ms(50);
    println!("crash: faulting now");
    // SAFETY: none needed: this read is meant to fault.
    let value = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    println!(
        "crash: read 0x{:x} did not fault, value=0x{:x}",
        addr, value
    );
    park()
}

fn aborted(fault: Fault) -> ! {
    println!("crash: unexpected abort esr=0x{:x}", fault.esr);
    park()
}
