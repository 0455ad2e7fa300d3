//! `watchdog`: drives its SP805 watchdog the way a guest OS driver does.
//! It arms the watchdog for about 200 ms, feeds it for `feed=<n>` rounds
//! of 50 ms (default 10), then stops feeding: the hypervisor must then
//! reset the partition (per its `on_fault`), so the next boot reports a
//! higher restart count.
//!
//! ```text
//! watchdog: boot restarts=<n>
//! watchdog: armed load=<ticks>
//! watchdog: fed <i>
//! watchdog: stopped feeding
//! watchdog: still alive after <ms> ms      (only if no reset came)
//! ```

#![no_std]
#![no_main]

use testkit::rt::mmio::{read32, write32};
use testkit::rt::{park, platform, timer};
use testkit::{args, println};

testkit::entry!("watchdog", main);

const LOAD: usize = 0x000;
const CONTROL: usize = 0x008;
const INTCLR: usize = 0x00c;
const LOCK: usize = 0xc00;
const UNLOCK: u32 = 0x1acc_e551;
/// The SP805 clock in the partition's device tree (apb-pclk).
const CLOCK_HZ: u32 = 24_000_000;

fn main() -> ! {
    let p = platform();
    println!("watchdog: boot restarts={}", p.restart_count);
    let Some(base) = p.watchdog else {
        println!("watchdog: no arm,sp805 in the device tree");
        park()
    };
    let rounds = args::value(p.bootargs, "feed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // It counts the load value down twice (interrupt, then reset): 100 ms each.
    let load = CLOCK_HZ / 10;
    // SAFETY: `base` is the watchdog's register frame from the device tree.
    unsafe {
        write32(base + LOCK, UNLOCK);
        write32(base + LOAD, load);
        write32(base + CONTROL, 0b11); // interrupt and reset enabled
        write32(base + LOCK, 0);
    }
    println!("watchdog: armed load={}", load);
    for i in 1..=rounds {
        timer::sleep_ms(50);
        // SAFETY: as above; writing INTCLR reloads the counter.
        unsafe {
            write32(base + LOCK, UNLOCK);
            write32(base + INTCLR, 1);
            write32(base + LOCK, 0);
        }
        println!("watchdog: fed {}", i);
    }
    println!("watchdog: stopped feeding");
    let start = timer::counter();
    loop {
        timer::sleep_ms(500);
        // SAFETY: as above; reading CONTROL has no side effect.
        let control = unsafe { read32(base + CONTROL) };
        println!(
            "watchdog: still alive after {} ms (control=0x{:x})",
            timer::ticks_to_ms(timer::counter() - start),
            control
        );
    }
}
