//! `crash`: boots, waits 50 ms, then reads unmapped guest-physical
//! 0x3000_0000 without expecting to survive it (the hypervisor is supposed
//! to stop or restart the partition). `crash=<hex>` in the bootargs reads
//! another address instead (natively, QEMU's PCIe window at 0x3000_0000
//! reads as all-ones; 0xa800000 faults).
//!
//! Before it faults it checks that a MiB of its RAM that nothing of the
//! program lies in (16 MiB in) is all zeros, then fills it: after a
//! restart, the hypervisor must have scrubbed what the last life left.
//!
//! ```text
//! crash: boot restarts=<restart-count>
//! crash: memory clean | crash: memory LEFT <n> nonzero words
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
    check_and_fill(p.memory_base, p.memory_bytes);
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

/// Where the scrub is checked: from this far into RAM, this many bytes
/// (beyond the program, its stack and its data; before the device tree at
/// the end of RAM).
const WINDOW_OFFSET: u64 = 16 << 20;
const WINDOW_WORDS: usize = (1 << 20) / 8;

/// Counts the nonzero words of the window, then fills it.
fn check_and_fill(base: u64, bytes: u64) {
    if bytes < WINDOW_OFFSET + (4 << 20) {
        println!("crash: memory too small for the scrub check");
        return;
    }
    let window = (base + WINDOW_OFFSET) as usize as *mut u64;
    let mut left = 0;
    for i in 0..WINDOW_WORDS {
        // SAFETY: inside the partition's RAM (checked above), which nothing
        // else of this program uses.
        if unsafe { core::ptr::read_volatile(window.add(i)) } != 0 {
            left += 1;
        }
    }
    if left == 0 {
        println!("crash: memory clean");
    } else {
        println!("crash: memory LEFT {} nonzero words", left);
    }
    for i in 0..WINDOW_WORDS {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(window.add(i), 0x5afe_0000_0000_0000 | i as u64) };
    }
}

fn aborted(fault: Fault) -> ! {
    println!("crash: unexpected abort esr=0x{:x}", fault.esr);
    park()
}
