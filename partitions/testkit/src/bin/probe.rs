//! `probe`: touches the addresses of `probe=<hex>,<hex>,...` in the bootargs
//! and reports whether each 64-bit read and write faulted or got through.
//! Addresses are printed with at least 8 hex digits (`0x09030000`).
//!
//! ```text
//! probe: read 0x<A> fault esr=0x<ESR_EL1>   |  probe: read 0x<A> LEAK value=0x<v>
//! probe: write 0x<A> fault esr=0x<ESR_EL1>  |  probe: write 0x<A> LEAK
//! probe: done faults=<n> leaks=<n>
//! probe: tick=<n>                             (every 100 ms)
//! ```

#![no_std]
#![no_main]

use testkit::args;
use testkit::println;
use testkit::rt::exceptions::{read_u64, write_u64};
use testkit::rt::{platform, timer};

testkit::entry!("probe", main);

const WRITE_VALUE: u64 = 0xdead_beef_dead_beef;

fn main() -> ! {
    let mut faults = 0u32;
    let mut leaks = 0u32;
    for item in args::hex_list(platform().bootargs, "probe") {
        let addr = match item {
            Ok(addr) => addr,
            Err(text) => {
                println!("probe: bad address '{}'", text);
                continue;
            }
        };
        match read_u64(addr) {
            Ok(value) => {
                leaks += 1;
                println!("probe: read 0x{:08x} LEAK value=0x{:x}", addr, value);
            }
            Err(fault) => {
                faults += 1;
                println!("probe: read 0x{:08x} fault esr=0x{:x}", addr, fault.esr);
            }
        }
        match write_u64(addr, WRITE_VALUE) {
            Ok(()) => {
                leaks += 1;
                println!("probe: write 0x{:08x} LEAK", addr);
            }
            Err(fault) => {
                faults += 1;
                println!("probe: write 0x{:08x} fault esr=0x{:x}", addr, fault.esr);
            }
        }
    }
    println!("probe: done faults={} leaks={}", faults, leaks);

    timer::every(100, |tick| println!("probe: tick={}", tick))
}
