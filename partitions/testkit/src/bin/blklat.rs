//! `blklat`: measures the latency of single virtio-blk requests.
//!
//! It finds its disk like `odometer` (the first virtio-mmio version 2 block
//! device of its device tree), waits `blklat.delay_ms=<ms>` (default 0) of
//! counter time, then times `blklat.n=<n>` requests (default 200, at most
//! 1000), one at a time: a one-sector read of a pseudo-random sector, then
//! a one-sector write of the same data back to the same sector, and so on,
//! so the disk's contents stay as they were. Each request is timed on the
//! virtual counter (CNTVCT) from just before it is submitted until its
//! completion has been seen.
//!
//! How it waits for a completion (`blklat.wait=`):
//!
//! - `yield` (the default): it looks at the used ring once, then executes
//!   `yield`, and again. On hardware `yield` is only a hint, so this is a
//!   busy poll; QEMU's single-threaded round-robin TCG (what `-icount`
//!   uses) takes it as "let another vCPU run", so the cores the request
//!   needs (the hypervisor's storage core) get to run at once rather than
//!   when the poller's time slice ends.
//! - `spin`: the testkit driver's own polling loop, which never yields.
//!   Under `-icount` the latencies then mostly show QEMU's time slices.
//!
//! ```text
//! blklat: disk <sectors> sectors, n=<n> delay_ms=<ms> wait=<yield|spin>
//! blklat: measuring from counter <ticks>
//! blklat: request <i> <read|write> sector <s> -> error <status>   (not counted)
//! blklat: measured until counter <ticks>
//! blklat: n=<n> p50_us=<us> p99_us=<us> max_us=<us>
//! blklat: reads p50_us=<us> p99_us=<us> writes p50_us=<us> p99_us=<us>
//! blklat: done
//! ```
//! `n` in the result line counts the requests that succeeded; percentiles
//! are nearest-rank, microseconds are rounded. With `blklat.dump` the
//! latencies in request order follow the result lines, 20 a line
//! (`blklat: seq [<us>, ...]`). Then it idles. Failure lines as
//! `odometer`'s: `blklat: no virtio-blk device (...)`, `blklat: device at
//! 0x<base>: <why>`.

#![no_std]
#![no_main]

use core::arch::asm;
use testkit::rt::virtio_blk::{self, Desc, Found, TIMEOUT_MS, VirtioBlk};
use testkit::rt::{platform, timer};
use testkit::virtio::{self, BlkError, SECTOR, blk_status, desc, req};
use testkit::{args, println};

testkit::entry!("blklat", main);

/// Most requests one run can time (the samples live on the stack).
const MAX_N: usize = 1000;
const DEFAULT_N: usize = 200;
/// The status byte before the device writes one.
const STATUS_UNWRITTEN: u8 = 0xff;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    Yield,
    Spin,
}

fn main() -> ! {
    let bootargs = platform().bootargs;
    let n = args::value(bootargs, "blklat.n")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_N)
        .clamp(1, MAX_N);
    let delay_ms: u64 = args::value(bootargs, "blklat.delay_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let wait = match args::value(bootargs, "blklat.wait") {
        Some("spin") => Wait::Spin,
        _ => Wait::Yield,
    };
    let dump =
        args::value(bootargs, "blklat.dump").is_some() || args::flag(bootargs, "blklat.dump");

    let node = match virtio_blk::find() {
        Found::Device(node) => node,
        Found::LegacyOnly(base) => {
            println!(
                "blklat: no virtio-blk device (a legacy one at 0x{:x}: QEMU needs -global virtio-mmio.force-legacy=false)",
                base
            );
            idle()
        }
        Found::Nothing(probed) => {
            println!(
                "blklat: no virtio-blk device ({} virtio-mmio transports)",
                probed
            );
            idle()
        }
    };
    let mut blk = match VirtioBlk::open(node) {
        Ok(blk) => blk,
        Err(e) => {
            println!("blklat: device at 0x{:x}: {}", node.base, e);
            idle()
        }
    };
    let capacity = blk.capacity();
    println!(
        "blklat: disk {} sectors, n={} delay_ms={} wait={}",
        capacity,
        n,
        delay_ms,
        if wait == Wait::Spin { "spin" } else { "yield" }
    );
    if capacity == 0 {
        println!("blklat: empty disk, nothing to measure");
        idle()
    }
    timer::sleep_ms(delay_ms);

    // Latencies in counter ticks, in request order; reads at even indices.
    let mut samples = [0u32; MAX_N];
    let mut ok = [false; MAX_N];
    let mut rng = testkit::rng::XorShift64(0x2545_f491_4f6c_dd1d);
    let mut sector_no = 0;
    let mut data = [0u8; SECTOR];
    let mut have_data = false;
    println!("blklat: measuring from counter {}", timer::counter());
    for i in 0..n {
        let write = i % 2 == 1;
        if write && !have_data {
            // The read before failed: nothing to write back.
            continue;
        }
        if !write {
            sector_no = rng.next_u64() % capacity;
        }
        let start = timer::counter();
        let result = match (wait, write) {
            (Wait::Yield, false) => request(&mut blk, req::IN, sector_no),
            (Wait::Yield, true) => request(&mut blk, req::OUT, sector_no),
            (Wait::Spin, false) => blk.read(sector_no, &mut data),
            (Wait::Spin, true) => blk.write(sector_no, &data),
        };
        let ticks = timer::counter() - start;
        match result {
            Ok(()) => {
                samples[i] = u32::try_from(ticks).unwrap_or(u32::MAX);
                ok[i] = true;
                have_data = !write;
            }
            Err(e) => {
                println!(
                    "blklat: request {} {} sector {} -> error {}",
                    i,
                    if write { "write" } else { "read" },
                    sector_no,
                    e
                );
                have_data = false;
                recover(&mut blk, e);
            }
        }
    }
    println!("blklat: measured until counter {}", timer::counter());

    let mut all = [0u32; MAX_N];
    let mut reads = [0u32; MAX_N];
    let mut writes = [0u32; MAX_N];
    let (mut na, mut nr, mut nw) = (0, 0, 0);
    for i in (0..n).filter(|&i| ok[i]) {
        all[na] = samples[i];
        na += 1;
        if i % 2 == 0 {
            reads[nr] = samples[i];
            nr += 1;
        } else {
            writes[nw] = samples[i];
            nw += 1;
        }
    }
    let (all, reads, writes) = (&mut all[..na], &mut reads[..nr], &mut writes[..nw]);
    all.sort_unstable();
    reads.sort_unstable();
    writes.sort_unstable();
    println!(
        "blklat: n={} p50_us={} p99_us={} max_us={}",
        all.len(),
        us(percentile(all, 50)),
        us(percentile(all, 99)),
        us(all.last().copied().unwrap_or(0))
    );
    println!(
        "blklat: reads p50_us={} p99_us={} writes p50_us={} p99_us={}",
        us(percentile(reads, 50)),
        us(percentile(reads, 99)),
        us(percentile(writes, 50)),
        us(percentile(writes, 99))
    );
    if dump {
        for chunk in samples[..n].chunks(20) {
            let mut line = [0u64; 20];
            for (out, ticks) in line.iter_mut().zip(chunk) {
                *out = us(*ticks);
            }
            println!("blklat: seq {:?}", &line[..chunk.len()]);
        }
    }
    println!("blklat: done");
    idle()
}

/// A one-sector read (`req::IN`) into, or write (`req::OUT`) from, the
/// driver's data buffer, through its raw interface: a write after a read
/// writes back what the read brought. Waits as `blklat.wait=yield` says.
fn request(blk: &mut VirtioBlk, kind: u32, sector: u64) -> Result<(), BlkError> {
    blk.raw_header(&virtio::request_header(kind, sector));
    blk.raw_set_status(STATUS_UNWRITTEN);
    let data_flags = if kind == req::IN { desc::WRITE } else { 0 };
    blk.raw_desc(
        0,
        Desc {
            addr: blk.header_addr(),
            len: 16,
            flags: desc::NEXT,
            next: 1,
        },
    );
    blk.raw_desc(
        1,
        Desc {
            addr: blk.data_addr(),
            len: SECTOR as u32,
            flags: data_flags | desc::NEXT,
            next: 2,
        },
    );
    blk.raw_desc(
        2,
        Desc {
            addr: blk.status_addr(),
            len: 1,
            flags: desc::WRITE,
            next: 0,
        },
    );
    blk.raw_publish(0);
    let deadline = timer::counter() + timer::ms_to_ticks(TIMEOUT_MS);
    let used = loop {
        // A time limit of 0: one look at the used ring (and the status).
        match blk.raw_wait(0) {
            Ok(used) => break used,
            Err(BlkError::Timeout(_)) if timer::counter() <= deadline => {
                // SAFETY: a hint instruction; no effect on memory.
                unsafe { asm!("yield", options(nomem, nostack, preserves_flags)) };
            }
            Err(BlkError::Timeout(_)) => return Err(BlkError::Timeout(TIMEOUT_MS)),
            Err(e) => return Err(e),
        }
    };
    if used.id != 0 {
        return Err(BlkError::WrongChain(used.id));
    }
    match blk.raw_status() {
        blk_status::OK => Ok(()),
        STATUS_UNWRITTEN => Err(BlkError::NoStatus),
        s => Err(BlkError::Status(s)),
    }
}

/// The nearest-rank `p`-th percentile of `sorted` (0 when empty).
fn percentile(sorted: &[u32], p: usize) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn us(ticks: u32) -> u64 {
    timer::ticks_to_us(u64::from(ticks))
}

/// After a failure that leaves the device unusable (no completion, needs
/// reset), starts it over.
fn recover(blk: &mut VirtioBlk, e: BlkError) {
    if matches!(e, BlkError::Timeout(_) | BlkError::NeedsReset(_)) {
        match blk.init() {
            Ok(()) => println!("blklat: re-init -> ok"),
            Err(e) => println!("blklat: re-init -> error {}", e),
        }
    }
}

fn idle() -> ! {
    loop {
        timer::sleep_ms(1000);
    }
}
