//! The physical console: the hypervisor's log (`[hv] LEVEL message`) and
//! the partitions' output (`[name] line`), one whole line at a time under
//! one lock, so lines never interleave.

use crate::arch::uart;
use core::fmt::Write;
use log::{LevelFilter, Log, Metadata, Record};
use shared_devices::console::Line;
use spin::Mutex;

static CONSOLE: Mutex<()> = Mutex::new(());

/// Writes one tagged line.
pub fn write_line(tag: &str, text: &[u8], cut: bool) {
    let _guard = CONSOLE.lock();
    uart::write_bytes(b"[");
    uart::write_bytes(tag.as_bytes());
    uart::write_bytes(b"] ");
    uart::write_bytes(text);
    if cut {
        uart::write_bytes(b"\\");
    }
    uart::write_bytes(b"\n");
}

/// A partition's console line, as produced by its virtual UART.
pub fn partition_line(name: &str, line: Line) {
    write_line(name, line.text, line.cut);
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let mut text = alloc::string::String::new();
        let _ = write!(text, "{:<5} {}", record.level(), record.args());
        write_line("hv", text.as_bytes(), false);
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Last words before a core halts: no allocation, no lock that the dying
/// code could hold.
pub fn emergency(args: core::fmt::Arguments) {
    struct Raw;
    impl Write for Raw {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            uart::write_bytes(s.as_bytes());
            Ok(())
        }
    }
    let _ = Raw.write_fmt(args);
}
