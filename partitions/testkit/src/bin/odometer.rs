//! `odometer`: keeps a boot counter on its virtio-blk disk.
//!
//! It finds the first virtio-mmio (version 2) block device of its device
//! tree, reads the record in sector 0 (see `testkit::odometer`; an invalid
//! one counts as zero), adds one boot and 100 km, writes it back, flushes,
//! reads it back and compares. Then it checks that the disk ends where it
//! says: a read and a write of sector `capacity` must fail. With
//! `odometer.reboot=<n>` in the bootargs it resets the system (PSCI
//! SYSTEM_RESET) while the boot count is below `n`; otherwise it ticks.
//!
//! ```text
//! odometer: disk <sectors> sectors id '<id>'
//! odometer: boot <boots> km <km>
//! odometer: read-back ok                     | odometer: read-back MISMATCH
//! odometer: read past end -> error <status>  | ... -> ok LEAK
//! odometer: write past end -> error <status> | ... -> ok LEAK
//! odometer: rebooting                        (odometer.reboot=<n>, boots < n)
//! odometer: tick=<n>                         (every 500 ms)
//! ```

#![no_std]
#![no_main]

use testkit::odometer::Record;
use testkit::rt::virtio_blk::{self, Found, VirtioBlk};
use testkit::rt::{platform, psci, timer};
use testkit::virtio::{BlkError, IdString, SECTOR};
use testkit::{args, println};

testkit::entry!("odometer", main);

fn main() -> ! {
    let node = match virtio_blk::find() {
        Found::Device(node) => node,
        Found::LegacyOnly(base) => {
            println!(
                "odometer: no virtio-blk device (a legacy one at 0x{:x}: QEMU needs -global virtio-mmio.force-legacy=false)",
                base
            );
            tick()
        }
        Found::Nothing(probed) => {
            println!(
                "odometer: no virtio-blk device ({} virtio-mmio transports)",
                probed
            );
            tick()
        }
    };
    let mut blk = match VirtioBlk::open(node) {
        Ok(blk) => blk,
        Err(e) => {
            println!("odometer: device at 0x{:x}: {}", node.base, e);
            tick()
        }
    };
    let id = blk.get_id().unwrap_or_else(|e| {
        println!("odometer: get-id -> error {}", e);
        recover(&mut blk, e);
        [0; testkit::virtio::ID_BYTES]
    });
    println!(
        "odometer: disk {} sectors id '{}'",
        blk.capacity(),
        IdString(&id)
    );

    let boots = match update(&mut blk) {
        Ok(record) => record.boots,
        Err(e) => {
            println!("odometer: {}", e);
            tick()
        }
    };

    let capacity = blk.capacity();
    let mut sector = [0u8; SECTOR];
    match blk.read(capacity, &mut sector) {
        Ok(()) => println!("odometer: read past end -> ok LEAK"),
        Err(e) => {
            println!("odometer: read past end -> error {}", e);
            recover(&mut blk, e);
        }
    }
    sector.fill(0x5a);
    match blk.write(capacity, &sector) {
        Ok(()) => println!("odometer: write past end -> ok LEAK"),
        Err(e) => {
            println!("odometer: write past end -> error {}", e);
            recover(&mut blk, e);
        }
    }

    let reboots: Option<u64> =
        args::value(platform().bootargs, "odometer.reboot").and_then(|v| v.parse().ok());
    if reboots.is_some_and(|limit| boots < limit) {
        println!("odometer: rebooting");
        let ret = psci::system_reset();
        println!("odometer: system_reset returned {}", ret);
    }
    tick()
}

/// Why the update failed, as the rest of a line.
struct Failed(&'static str, BlkError);

impl core::fmt::Display for Failed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} -> error {}", self.0, self.1)
    }
}

/// Reads, advances, writes, flushes and re-reads the record; returns the
/// record read back (or the one written, if what came back is not valid).
fn update(blk: &mut VirtioBlk) -> Result<Record, Failed> {
    let mut sector = [0u8; SECTOR];
    blk.read(0, &mut sector)
        .map_err(|e| Failed("read sector 0", e))?;
    let old = Record::decode(&sector).unwrap_or_default();
    let new = old.next();
    new.encode(&mut sector);
    blk.write(0, &sector)
        .map_err(|e| Failed("write sector 0", e))?;
    blk.flush().map_err(|e| Failed("flush", e))?;
    let mut back = [0u8; SECTOR];
    blk.read(0, &mut back)
        .map_err(|e| Failed("read-back of sector 0", e))?;
    let seen = Record::decode(&back);
    let shown = seen.unwrap_or(new);
    println!("odometer: boot {} km {}", shown.boots, shown.km);
    if seen == Some(new) && back == sector {
        println!("odometer: read-back ok");
    } else {
        println!("odometer: read-back MISMATCH");
    }
    Ok(shown)
}

/// After a failure that leaves the device unusable (no completion, needs
/// reset), starts it over.
fn recover(blk: &mut VirtioBlk, e: BlkError) {
    if matches!(e, BlkError::Timeout(_) | BlkError::NeedsReset(_)) {
        match blk.init() {
            Ok(()) => println!("odometer: re-init -> ok"),
            Err(e) => println!("odometer: re-init -> error {}", e),
        }
    }
}

fn tick() -> ! {
    timer::every(500, |n| println!("odometer: tick={}", n))
}
