//! Crash-record slots read from a disk (`cargo xtask records`, and the
//! hypervisor's scan of its records area at boot): a disk is untrusted
//! input. Whatever a slot holds, decoding returns; a slot that decodes
//! encodes back to the same bytes' record, and its dump lines are bounded
//! and free of control characters. The console tail keeps at most its
//! capacity of whole lines, whatever lines come in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared_devices::crash_record::{RECORD_BYTES, Record, TAIL_BYTES, Tail};
use shared_devices::gpt::crc32;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut slot = [0u8; RECORD_BYTES];
    let n = rest.len().min(RECORD_BYTES);
    slot[..n].copy_from_slice(&rest[..n]);
    if flags & 1 != 0 {
        // A slot with a valid header and CRC, so the fields behind them
        // are reached.
        slot[..8].copy_from_slice(b"HVRECORD");
        slot[8..10].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32(&slot[16..]);
        slot[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(record) = Record::decode(&slot) {
        let mut again = [0u8; RECORD_BYTES];
        record.encode(&mut again);
        assert_eq!(Record::decode(&again).as_ref(), Ok(&record));
        let mut lines = 0usize;
        record.write_lines(&mut |args| {
            let line = args.to_string();
            assert!(!line.chars().any(|c| c.is_control() && c != '\t'), "{line:?}");
            lines += 1;
        });
        assert!(lines <= 16 + TAIL_BYTES);
    }
    let mut tail = Tail::new();
    for line in rest.split(|&b| b == b'\n') {
        tail.push(line);
    }
    let mut out = heapless::Vec::new();
    tail.copy_to(&mut out);
    assert!(out.len() <= TAIL_BYTES);
    assert!(out.is_empty() || out.last() == Some(&b'\n'));
});
