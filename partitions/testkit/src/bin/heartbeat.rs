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
//!
//! With `disk` in the bootargs it also reads one sector of its virtio-blk
//! disk (the first version 2 one of its device tree, as `odometer` finds
//! it) at each beat, timed on the counter from submission to completion,
//! and every 50 beats reports the worst of those reads and of all so far:
//!
//! ```text
//! heartbeat: disk <sectors> sectors                 | heartbeat: disk: <why not>
//! heartbeat: disk reads=<n> worst_us=<us> max_us=<us> errors=<n>
//! heartbeat: disk read <n> -> error <status>        (not timed)
//! ```
//! The sectors read walk the disk; nothing is written.

#![no_std]
#![no_main]

use testkit::rt::virtio_blk::{self, Found, VirtioBlk};
use testkit::rt::{platform, timer};
use testkit::virtio::{BlkError, SECTOR};
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
    let mut disk = args::flag(bootargs, "disk").then(Disk::open).flatten();
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
        if let Some(disk) = disk.as_mut() {
            disk.read_one(n);
        }
    })
}

/// The disk the beats read from, and what the reads took.
struct Disk {
    blk: VirtioBlk,
    reads: u64,
    errors: u64,
    /// Worst read of the current group of 50 beats, and of all, in µs.
    group_worst: u64,
    worst: u64,
}

/// Beats a disk report covers.
const REPORT_EVERY: u64 = 50;

impl Disk {
    fn open() -> Option<Disk> {
        let node = match virtio_blk::find() {
            Found::Device(node) => node,
            Found::LegacyOnly(base) => {
                println!("heartbeat: disk: only a legacy one at 0x{:x}", base);
                return None;
            }
            Found::Nothing(probed) => {
                println!("heartbeat: disk: none ({} virtio-mmio transports)", probed);
                return None;
            }
        };
        match VirtioBlk::open(node) {
            Ok(blk) => {
                println!("heartbeat: disk {} sectors", blk.capacity());
                Some(Disk {
                    blk,
                    reads: 0,
                    errors: 0,
                    group_worst: 0,
                    worst: 0,
                })
            }
            Err(e) => {
                println!("heartbeat: disk: device at 0x{:x}: {}", node.base, e);
                None
            }
        }
    }

    /// Beat `n`'s read; every `REPORT_EVERY` beats, the report.
    fn read_one(&mut self, n: u64) {
        let mut sector = [0u8; SECTOR];
        let at = n.wrapping_mul(7919) % self.blk.capacity().max(1);
        let start = timer::counter();
        match self.blk.read(at, &mut sector) {
            Ok(()) => {
                let us = timer::ticks_to_us(timer::counter() - start);
                self.reads += 1;
                self.group_worst = self.group_worst.max(us);
                self.worst = self.worst.max(us);
            }
            Err(e) => {
                self.errors += 1;
                println!("heartbeat: disk read {} -> error {}", n, e);
                if matches!(e, BlkError::Timeout(_) | BlkError::NeedsReset(_)) {
                    let _ = self.blk.init();
                }
            }
        }
        if n.is_multiple_of(REPORT_EVERY) {
            println!(
                "heartbeat: disk reads={} worst_us={} max_us={} errors={}",
                self.reads, self.group_worst, self.worst, self.errors
            );
            self.group_worst = 0;
        }
    }
}
