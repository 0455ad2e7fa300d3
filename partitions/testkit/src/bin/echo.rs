//! `echo`: reads its console and prints back each line it receives, so a
//! test can tell which partition the physical console's input reached.
//!
//! ```text
//! echo: ready
//! echo: got '<line>'
//! ```

#![no_std]
#![no_main]

use testkit::println;
use testkit::rt::console::read_byte;
use testkit::rt::timer;

testkit::entry!("echo", main);

fn main() -> ! {
    println!("echo: ready");
    let mut line = [0u8; 80];
    let mut len = 0;
    loop {
        let Some(byte) = read_byte() else {
            timer::sleep_ms(5);
            continue;
        };
        match byte {
            b'\r' | b'\n' => {
                let text = core::str::from_utf8(&line[..len]).unwrap_or("<not utf-8>");
                println!("echo: got '{}'", text);
                len = 0;
            }
            _ if len < line.len() => {
                line[len] = byte;
                len += 1;
            }
            _ => {}
        }
    }
}
