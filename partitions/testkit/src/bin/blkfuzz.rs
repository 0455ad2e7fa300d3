//! `blkfuzz`: a hostile virtio-blk driver. It brings its block device up
//! normally, then puts malformed requests in front of it, one at a time,
//! and reports what the device did with each within 100 ms. A device that
//! set DEVICE_NEEDS_RESET, reset itself or did not answer is reset and
//! initialised again before the next case. At the end one valid write and
//! read of sector 1 (restored afterwards) must still work.
//!
//! ```text
//! blkfuzz: device at 0x<base> queue <n> sectors <n>
//! blkfuzz: <case> -> completed status <s> (<name>) len=<n>
//! blkfuzz: <case> -> completed without a status byte len=<n>
//! blkfuzz: <case> -> device reset/needs-reset (status 0x<s>)
//! blkfuzz: <case> -> no completion within 100 ms
//! blkfuzz: re-init -> ok                        (after any but a clean completion)
//! blkfuzz: valid request after abuse -> ok      | -> failed: <what>
//! blkfuzz: write-zeroes whole disk in one request -> ok | -> error <status>
//! blkfuzz: write-zeroes whole disk in <n>-sector requests -> ok, zeros read back | -> <what>
//! blkfuzz: write-zeroes past end -> error <status>        | -> ok LEAK
//! blkfuzz: discard whole disk in one request -> ok | -> error <status>
//! blkfuzz: discard whole disk in <n>-sector requests -> ok, zeros read back | ...
//! blkfuzz: done
//! blkfuzz: tick=<n>                             (every 500 ms)
//! ```
//! The cases, in order: `looping-chain`, `head-out-of-range`,
//! `next-out-of-range`, `buffer-outside-ram`, `huge-length`,
//! `wrong-direction`, `short-header`, `avail-idx-jump`. Then valid but
//! large requests: WRITE_ZEROES and DISCARD of the whole disk (a device
//! that buffered them whole would run out of memory).

#![no_std]
#![no_main]

use testkit::println;
use testkit::rt::timer;
use testkit::rt::virtio_blk::{self, Desc, Found, VirtioBlk};
use testkit::virtio::{BlkError, SECTOR, blk_status, desc, req, request_header, status};

testkit::entry!("blkfuzz", main);

/// How long each malformed request gets.
const CASE_MS: u64 = 100;
/// Guest-physical address that is no partition's RAM.
const OUTSIDE_RAM: u64 = 0x1_0000_0000;

fn main() -> ! {
    let node = match virtio_blk::find() {
        Found::Device(node) => node,
        Found::LegacyOnly(base) => {
            println!(
                "blkfuzz: no virtio-blk device (a legacy one at 0x{:x}: QEMU needs -global virtio-mmio.force-legacy=false)",
                base
            );
            tick()
        }
        Found::Nothing(probed) => {
            println!(
                "blkfuzz: no virtio-blk device ({} virtio-mmio transports)",
                probed
            );
            tick()
        }
    };
    let mut blk = match VirtioBlk::open(node) {
        Ok(blk) => blk,
        Err(e) => {
            println!("blkfuzz: device at 0x{:x}: {}", node.base, e);
            tick()
        }
    };
    println!(
        "blkfuzz: device at 0x{:x} queue {} sectors {}",
        node.base,
        blk.queue_size(),
        blk.capacity()
    );

    let cases: [(&str, Submit); 8] = [
        ("looping-chain", looping_chain),
        ("head-out-of-range", head_out_of_range),
        ("next-out-of-range", next_out_of_range),
        ("buffer-outside-ram", buffer_outside_ram),
        ("huge-length", huge_length),
        ("wrong-direction", wrong_direction),
        ("short-header", short_header),
        ("avail-idx-jump", avail_idx_jump),
    ];
    for (name, submit) in cases {
        run(&mut blk, name, submit);
    }

    match round_trip(&mut blk) {
        Ok(()) => println!("blkfuzz: valid request after abuse -> ok"),
        Err(what) => println!("blkfuzz: valid request after abuse -> failed: {}", what),
    }
    whole_disk(&mut blk);
    println!("blkfuzz: done");
    tick()
}

/// Puts one malformed request in front of the device.
type Submit = fn(&mut VirtioBlk);

/// Submits one malformed request, reports, and re-initialises the device
/// unless it completed the request cleanly.
fn run(blk: &mut VirtioBlk, name: &str, submit: Submit) {
    blk.raw_header(&request_header(req::IN, 0));
    blk.raw_set_status(0xff);
    submit(blk);
    let mut reinit = name == "avail-idx-jump"; // the indices are out of step
    match blk.raw_wait(CASE_MS) {
        Ok(used) => {
            let s = blk.raw_status();
            if s == 0xff {
                println!(
                    "blkfuzz: {} -> completed without a status byte len={}",
                    name, used.len
                );
            } else {
                println!(
                    "blkfuzz: {} -> completed status {} ({}) len={}",
                    name,
                    s,
                    status_name(s),
                    used.len
                );
            }
            let device = blk.device_status();
            if device & (status::DEVICE_NEEDS_RESET | status::FAILED) != 0 {
                println!(
                    "blkfuzz: {} -> then device needs-reset (status 0x{:x})",
                    name, device
                );
                reinit = true;
            }
        }
        Err(BlkError::NeedsReset(s)) => {
            println!(
                "blkfuzz: {} -> device reset/needs-reset (status 0x{:x})",
                name, s
            );
            reinit = true;
        }
        Err(_) => {
            println!("blkfuzz: {} -> no completion within {} ms", name, CASE_MS);
            reinit = true;
        }
    }
    if reinit {
        match blk.init() {
            Ok(()) => println!("blkfuzz: re-init -> ok"),
            Err(e) => println!("blkfuzz: re-init -> error {}", e),
        }
    }
}

fn status_name(s: u8) -> &'static str {
    match s {
        blk_status::OK => "OK",
        blk_status::IOERR => "IOERR",
        blk_status::UNSUPP => "UNSUPP",
        _ => "?",
    }
}

fn header(blk: &VirtioBlk, next: u16) -> Desc {
    Desc {
        addr: blk.header_addr(),
        len: 16,
        flags: desc::NEXT,
        next,
    }
}

fn data(addr: u64, len: u32, flags: u16) -> Desc {
    Desc {
        addr,
        len,
        flags: flags | desc::NEXT,
        next: 2,
    }
}

fn status_desc(blk: &VirtioBlk) -> Desc {
    Desc {
        addr: blk.status_addr(),
        len: 1,
        flags: desc::WRITE,
        next: 0,
    }
}

/// A chain that never ends: header (0) → a device-readable buffer (1) →
/// header (0) → ... (all readable, so only loop detection can stop it).
fn looping_chain(blk: &mut VirtioBlk) {
    blk.raw_desc(0, header(blk, 1));
    blk.raw_desc(
        1,
        Desc {
            next: 0,
            ..data(blk.data_addr(), SECTOR as u32, 0)
        },
    );
    blk.raw_publish(0);
}

/// A valid read chain, but the available ring names descriptor
/// `queue_size`.
fn head_out_of_range(blk: &mut VirtioBlk) {
    valid_read(blk);
    let head = blk.queue_size();
    blk.raw_publish(head);
}

/// The header's `next` names a descriptor beyond the table.
fn next_out_of_range(blk: &mut VirtioBlk) {
    blk.raw_desc(0, header(blk, 200));
    blk.raw_publish(0);
}

/// A read into memory that is not the partition's.
fn buffer_outside_ram(blk: &mut VirtioBlk) {
    blk.raw_desc(0, header(blk, 1));
    blk.raw_desc(1, data(OUTSIDE_RAM, SECTOR as u32, desc::WRITE));
    blk.raw_desc(2, status_desc(blk));
    blk.raw_publish(0);
}

/// A write of 4 GiB - 1 bytes from the data buffer on (device-readable,
/// so a device that went ahead would read, not overwrite, the guest).
fn huge_length(blk: &mut VirtioBlk) {
    blk.raw_header(&request_header(req::OUT, 0));
    blk.raw_desc(0, header(blk, 1));
    blk.raw_desc(1, data(blk.data_addr(), u32::MAX, 0));
    blk.raw_desc(2, status_desc(blk));
    blk.raw_publish(0);
}

/// A read whose data buffer is device-readable.
fn wrong_direction(blk: &mut VirtioBlk) {
    blk.raw_desc(0, header(blk, 1));
    blk.raw_desc(1, data(blk.data_addr(), SECTOR as u32, 0));
    blk.raw_desc(2, status_desc(blk));
    blk.raw_publish(0);
}

/// A read whose header buffer is 8 bytes (type and reserved, no sector).
fn short_header(blk: &mut VirtioBlk) {
    blk.raw_desc(
        0,
        Desc {
            len: 8,
            ..header(blk, 1)
        },
    );
    blk.raw_desc(1, data(blk.data_addr(), SECTOR as u32, desc::WRITE));
    blk.raw_desc(2, status_desc(blk));
    blk.raw_publish(0);
}

/// A valid read chain in the available ring, but `avail.idx` claims
/// queue size + 1 new entries (one notification, after both writes).
fn avail_idx_jump(blk: &mut VirtioBlk) {
    valid_read(blk);
    blk.raw_offer(0);
    let idx = blk.avail_idx().wrapping_add(blk.queue_size());
    blk.raw_avail_idx(idx);
    blk.raw_notify();
}

fn valid_read(blk: &mut VirtioBlk) {
    blk.raw_desc(0, header(blk, 1));
    blk.raw_desc(1, data(blk.data_addr(), SECTOR as u32, desc::WRITE));
    blk.raw_desc(2, status_desc(blk));
}

/// Writes a pattern to sector 1, flushes, reads it back, and puts the old
/// contents back.
fn round_trip(blk: &mut VirtioBlk) -> Result<(), Failure> {
    let op = |what| move |e| Failure::Op(what, e);
    let mut saved = [0u8; SECTOR];
    blk.read(1, &mut saved).map_err(op("read"))?;
    let mut pattern = [0u8; SECTOR];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7) ^ 0xb1;
    }
    blk.write(1, &pattern).map_err(op("write"))?;
    blk.flush().map_err(op("flush"))?;
    let mut back = [0u8; SECTOR];
    blk.read(1, &mut back).map_err(op("read-back"))?;
    blk.write(1, &saved).map_err(op("restore"))?;
    if back != pattern {
        return Err(Failure::Differs);
    }
    Ok(())
}

/// Valid requests as big as the disk: WRITE_ZEROES of every sector in
/// one request (over the device's limit: refused), then in requests of
/// the limit (markers in the first and last sector must read back as
/// zeros), one past the end, and DISCARD of every sector.
fn whole_disk(blk: &mut VirtioBlk) {
    blk.set_timeout_ms(30_000);
    let sectors = blk.capacity();
    match blk.write_zeroes(0, sectors as u32) {
        Ok(()) => println!("blkfuzz: write-zeroes whole disk in one request -> ok"),
        Err(e) => println!(
            "blkfuzz: write-zeroes whole disk in one request -> error {}",
            e
        ),
    }
    let step = u64::from(blk.max_write_zeroes_sectors().max(1));
    let last = sectors - 1;
    let marker = [0x5au8; SECTOR];
    let zeroed = (|| -> Result<bool, Failure> {
        let op = |what| move |e| Failure::Op(what, e);
        blk.write(0, &marker).map_err(op("write"))?;
        blk.write(last, &marker).map_err(op("write"))?;
        in_steps(sectors, step, |at, n| blk.write_zeroes(at, n)).map_err(op("write-zeroes"))?;
        let (mut first, mut end) = ([1u8; SECTOR], [1u8; SECTOR]);
        blk.read(0, &mut first).map_err(op("read"))?;
        blk.read(last, &mut end).map_err(op("read"))?;
        Ok(first.iter().chain(end.iter()).all(|&b| b == 0))
    })();
    match zeroed {
        Ok(true) => println!(
            "blkfuzz: write-zeroes whole disk in {}-sector requests -> ok, zeros read back",
            step
        ),
        Ok(false) => println!("blkfuzz: write-zeroes whole disk -> ok, but data read back"),
        Err(what) => println!("blkfuzz: write-zeroes whole disk -> {}", what),
    }
    match blk.write_zeroes(sectors, 1) {
        Ok(()) => println!("blkfuzz: write-zeroes past end -> ok LEAK"),
        Err(e) => println!("blkfuzz: write-zeroes past end -> error {}", e),
    }
    match blk.discard(0, sectors as u32) {
        Ok(()) => println!("blkfuzz: discard whole disk in one request -> ok"),
        Err(e) => println!("blkfuzz: discard whole disk in one request -> error {}", e),
    }
    // Discarded sectors read back as anything; on a disk image that turns
    // them into holes (QEMU discard=unmap), as zeros.
    let step = u64::from(blk.max_discard_sectors().max(1));
    let discarded = (|| -> Result<bool, Failure> {
        let op = |what| move |e| Failure::Op(what, e);
        blk.write(last, &marker).map_err(op("write"))?;
        in_steps(sectors, step, |at, n| blk.discard(at, n)).map_err(op("discard"))?;
        let mut end = [1u8; SECTOR];
        blk.read(last, &mut end).map_err(op("read"))?;
        Ok(end.iter().all(|&b| b == 0))
    })();
    match discarded {
        Ok(true) => println!(
            "blkfuzz: discard whole disk in {}-sector requests -> ok, zeros read back",
            step
        ),
        Ok(false) => println!(
            "blkfuzz: discard whole disk in {}-sector requests -> ok, data still there",
            step
        ),
        Err(what) => println!("blkfuzz: discard whole disk -> {}", what),
    }
}

/// Calls `f(first, count)` for `sectors` sectors in pieces of `step`.
fn in_steps(
    sectors: u64,
    step: u64,
    mut f: impl FnMut(u64, u32) -> Result<(), BlkError>,
) -> Result<(), BlkError> {
    let mut at = 0;
    while at < sectors {
        let n = step.min(sectors - at);
        f(at, n as u32)?;
        at += n;
    }
    Ok(())
}

enum Failure {
    Op(&'static str, BlkError),
    Differs,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::Op(what, e) => write!(f, "{} -> error {}", what, e),
            Failure::Differs => f.write_str("data read back differs"),
        }
    }
}

fn tick() -> ! {
    timer::every(500, |n| println!("blkfuzz: tick={}", n))
}
