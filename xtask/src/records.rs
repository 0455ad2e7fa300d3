//! `cargo xtask records`: the crash records the hypervisor left in a disk
//! image's records area (`records = "<GPT name>"` of a `[[storage]]`
//! entry; see docs/debugging.md), oldest first, each as the hypervisor's
//! console dump shows it.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use shared_devices::crash_record::{DecodeError, RECORD_BYTES, Record, slots_in};

use crate::cli::Options;
use crate::{disk, paths};

const USAGE: &str = "usage: cargo xtask records [--disk IMAGE] [--area NAME]
  IMAGE: a disk image (default: the one `cargo xtask run` attaches,
         target/disk/<board>.img) or an SD-card image from `cargo xtask image`
  NAME:  the records area's GPT partition (default hv-records)";

/// The records area's name in the boards' disk layouts.
pub const DEFAULT_AREA: &str = "hv-records";

/// `cargo xtask records [--disk IMAGE] [--area NAME]`.
pub fn command(args: &[String]) -> Result<()> {
    let mut image: Option<PathBuf> = None;
    let mut area = DEFAULT_AREA.to_owned();
    let mut options = Options::new(args, USAGE);
    while let Some(option) = options.next_option() {
        match option {
            "--disk" => image = Some(PathBuf::from(options.value(option)?)),
            "--area" => area = options.value(option)?.to_owned(),
            _ => return Err(options.unexpected(option)),
        }
    }
    let image = match image {
        Some(image) => image,
        None => {
            let board = crate::board::name_for_config(&paths::root().join(paths::DEFAULT_CONFIG))?;
            disk::disks_dir().join(format!("{board}.img"))
        }
    };
    print!("{}", report(&image, &area)?);
    Ok(())
}

/// What the records area `area` of `image` holds, as `records` prints it.
pub fn report(image: &Path, area: &str) -> Result<String> {
    if !image.is_file() {
        bail!("{}: no such disk image", paths::display(image));
    }
    let extent = disk::partition_extent(image, area)?;
    let len = (extent.bytes() / RECORD_BYTES as u64 * RECORD_BYTES as u64) as usize;
    let bytes = disk::read_partition(image, area, 0, len)?;
    let (mut records, damaged) = read_area(&bytes);
    records.sort_by_key(|r| r.seq);
    let boots: Vec<u32> = {
        let mut b: Vec<u32> = records.iter().map(|r| r.boot).collect();
        b.dedup();
        b
    };
    let mut out = format!(
        "{}: records area {area}: {} record(s){}{}\n",
        paths::display(image),
        records.len(),
        match (boots.first(), boots.last()) {
            (Some(first), Some(last)) if first == last => format!(" from boot {first}"),
            (Some(first), Some(last)) => format!(" from boots {first} to {last}"),
            _ => String::new(),
        },
        if damaged.is_empty() {
            String::new()
        } else {
            format!(
                ", {} slot(s) unreadable ({})",
                damaged.len(),
                damaged.join("; ")
            )
        }
    );
    for r in &records {
        r.write_lines(&mut |line| {
            out.push_str(&line.to_string());
            out.push('\n');
        });
    }
    Ok(out)
}

/// The records of an area's bytes, and why each unreadable slot is.
fn read_area(bytes: &[u8]) -> (Vec<Record>, Vec<String>) {
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    for slot in slots_in(bytes) {
        match slot {
            Ok(r) => records.push(r),
            Err(DecodeError::Empty) => {}
            Err(e) => damaged.push(e.to_string()),
        }
    }
    (records, damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_devices::crash_record::{Action, Cause};

    #[test]
    fn an_area_is_read_oldest_first_and_torn_slots_are_named() {
        let mut area = vec![0u8; 4 * RECORD_BYTES];
        for (slot, seq, boot) in [(2usize, 6u64, 2u32), (1, 5, 1), (0, 4, 1)] {
            let mut r = Record {
                seq,
                boot,
                cause: Cause::Watchdog,
                action: Action::Restart,
                ..Record::default()
            };
            r.partition.push_str("ivi").unwrap();
            let out: &mut [u8; RECORD_BYTES] = (&mut area[slot * RECORD_BYTES..][..RECORD_BYTES])
                .try_into()
                .unwrap();
            r.encode(out);
        }
        area[100] ^= 0xff; // slot 0 torn
        let (records, damaged) = read_area(&area);
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [5, 6]);
        assert_eq!(damaged, ["CRC mismatch (torn or partly overwritten)"]);
    }
}
