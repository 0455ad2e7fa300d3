//! The GPT reader on arbitrary disk contents: a disk is untrusted input,
//! and reading its partition table must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|disk: &[u8]| {
    let _ = shared_devices::gpt::parse_all(disk);
});
