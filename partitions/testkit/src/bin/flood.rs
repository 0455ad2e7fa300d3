//! `flood`: writes console lines as fast as it can, forever: the partition
//! that must not be able to drown out anyone else's console output.
//!
//! ```text
//! flood: n=<n> <filler>
//! ```

#![no_std]
#![no_main]

use testkit::println;

testkit::entry!("flood", main);

fn main() -> ! {
    let mut n: u64 = 0;
    loop {
        n += 1;
        println!(
            "flood: n={} the quick brown fox jumps over the lazy dog, again and again and again",
            n
        );
    }
}
