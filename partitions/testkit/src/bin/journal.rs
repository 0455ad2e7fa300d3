//! `journal`: writes numbered blocks to its virtio-blk disk as fast as a
//! journal would, flushing every few, and says which ones are durable, so
//! that a test can cut the power (kill QEMU) at any moment and check that
//! every block flushed before the cut is on the disk.
//!
//! The journal is the first `BLOCKS` sectors of the disk, a ring: block
//! `seq` goes to sector `seq % BLOCKS` and holds `JOURNAL1`, `seq` (u64,
//! little endian) and 496 bytes derived from `seq` (`testkit::journal`). At
//! boot it finds the highest intact `seq` and goes on from there, so it
//! survives any number of cuts.
//!
//! ```text
//! journal: recovered seq=<s>
//! journal: flushed seq=<s>        (every FLUSH_REPORT-th flush; every write
//!                                  up to <s> completed before that flush)
//! ```

#![no_std]
#![no_main]

use testkit::journal::{BLOCKS, block, seq_of};
use testkit::println;
use testkit::rt::virtio_blk::{self, Found, VirtioBlk};
use testkit::rt::{park, timer};
use testkit::virtio::SECTOR;

testkit::entry!("journal", main);

/// Writes per flush.
const WRITES_PER_FLUSH: u64 = 4;
/// Flushes per report line (the console is slower than the disk).
const FLUSH_REPORT: u64 = 4;

fn main() -> ! {
    let Found::Device(node) = virtio_blk::find() else {
        println!("journal: no virtio-blk device");
        park()
    };
    let mut blk = match VirtioBlk::open(node) {
        Ok(blk) => blk,
        Err(e) => {
            println!("journal: device at 0x{:x}: {}", node.base, e);
            park()
        }
    };
    let mut sector = [0u8; SECTOR];
    let mut last = 0u64;
    for i in 0..BLOCKS {
        if blk.read(i, &mut sector).is_ok()
            && let Some(seq) = seq_of(&sector)
        {
            last = last.max(seq);
        }
    }
    println!("journal: recovered seq={}", last);
    let mut flushes = 0u64;
    let mut seq = last;
    loop {
        for _ in 0..WRITES_PER_FLUSH {
            seq += 1;
            if let Err(e) = blk.write(seq % BLOCKS, &block(seq)) {
                println!("journal: write seq={} -> error {}", seq, e);
                park()
            }
        }
        if let Err(e) = blk.flush() {
            println!("journal: flush -> error {}", e);
            park()
        }
        flushes += 1;
        if flushes.is_multiple_of(FLUSH_REPORT) {
            println!("journal: flushed seq={}", seq);
        }
        timer::sleep_ms(2);
    }
}
