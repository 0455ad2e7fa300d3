//! `hello`: reports what its device tree says, then keeps a 1 MiB pattern in
//! memory and re-checks it every 100 ms of counter time.
//!
//! ```text
//! hello: cpus=<n> memory=<MiB>MiB restarts=<restart-count>
//! hello: tick=<n> pattern=ok                 (n = 1, 2, ...)
//! hello: tick=<n> pattern=BAD at 0x<addr>
//! hello: parked                             (with `hello.park`: after the
//!                                            first line it stops for good,
//!                                            interrupts masked, never trapping)
//! ```

#![no_std]
#![no_main]

use testkit::println;
use testkit::rt::{self, platform, timer};
use testkit::{args, pattern};

testkit::entry!("hello", main);

const BUFFER_WORDS: usize = (1 << 20) / 8;
static mut BUFFER: [u64; BUFFER_WORDS] = [0; BUFFER_WORDS];

fn main() -> ! {
    let p = platform();
    println!(
        "hello: cpus={} memory={}MiB restarts={}",
        p.cpu_count,
        p.memory_bytes >> 20,
        p.restart_count
    );
    if args::flag(p.bootargs, "hello.park") {
        println!("hello: parked");
        rt::park();
    }

    // SAFETY: only this vCPU touches the buffer, and only through this borrow.
    let buffer =
        unsafe { core::slice::from_raw_parts_mut((&raw mut BUFFER).cast::<u64>(), BUFFER_WORDS) };
    pattern::fill(buffer);

    timer::every(100, |tick| match pattern::first_mismatch(buffer) {
        None => println!("hello: tick={} pattern=ok", tick),
        Some(i) => println!(
            "hello: tick={} pattern=BAD at 0x{:x}",
            tick,
            buffer.as_ptr() as usize + 8 * i
        ),
    })
}
