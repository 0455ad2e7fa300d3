//! `heartbeat`: the partition that must never notice anything. Every
//! `period` ms (bootargs `period=<ms>`, default 20) of counter time it
//! prints a beat with a counter that increases by exactly one, the time
//! since the previous beat, and the worst such gap so far.
//!
//! ```text
//! heartbeat: first beat at counter <ticks> (<ms> ms)
//! heartbeat: n=<n> gap_ms=<ms> max_gap_ms=<ms>
//! heartbeat: LATE n=<n> gap_ms=<ms> bound_ms=<ms>    (gap over max_gap=<ms>)
//! ```
//! The first line timestamps the first beat on the machine-wide counter,
//! for boot-time measurements.

#![no_std]
#![no_main]

use testkit::rt::{platform, timer};
use testkit::{args, println};

testkit::entry!("heartbeat", main);

fn main() -> ! {
    let bootargs = platform().bootargs;
    let period = args::value(bootargs, "period")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // The worst gap the configuration promises; 0: no bound.
    let bound: u64 = args::value(bootargs, "max_gap")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut last = timer::counter();
    println!(
        "heartbeat: first beat at counter {} ({} ms)",
        last,
        timer::ticks_to_ms(last)
    );
    let mut worst = 0;
    timer::every(period, |n| {
        let now = timer::counter();
        let gap = timer::ticks_to_ms(now - last);
        last = now;
        worst = worst.max(gap);
        println!("heartbeat: n={} gap_ms={} max_gap_ms={}", n, gap, worst);
        if bound > 0 && gap > bound {
            println!("heartbeat: LATE n={} gap_ms={} bound_ms={}", n, gap, bound);
        }
    })
}
