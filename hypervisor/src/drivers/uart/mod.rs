//! The console UART: the physical serial port that carries the
//! hypervisor's log and the partitions' tagged console lines, and brings
//! the operator's input. A board's UART is one of the drivers here, picked
//! by the `compatible` of the DT's console node (before the DT is read, by
//! the board's `early_uart`); nothing else knows which one it is.
//!
//! Output is polled and callers serialize through the console lock in
//! `mediators::console`; `emergency` bypasses both for a core's last words.

pub mod imx;
pub mod pl011;

use config::model::UartKind;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// What a console UART driver does (each also has an `open(base)`, which
/// is `None` where `base` is not device memory).
pub trait ConsoleUart {
    /// Makes it able to send and receive, keeping what the boot loader set
    /// up (baud rate, clocks).
    fn init(&self);
    /// Sends one byte, waiting while the transmit FIFO is full.
    fn put(&self, byte: u8);
    /// A received byte, if one is waiting (popping it).
    fn get(&self) -> Option<u8>;
    /// Asks for an interrupt while received bytes wait.
    fn enable_receive_interrupt(&self);
}

fn kind_code(kind: UartKind) -> u8 {
    match kind {
        UartKind::Pl011 => 1,
        UartKind::Imx => 2,
    }
}

fn kind_of(code: u8) -> Option<UartKind> {
    match code {
        1 => Some(UartKind::Pl011),
        2 => Some(UartKind::Imx),
        _ => None,
    }
}

/// The selected console: its kind and base (0: none yet). Plain atomics,
/// so the emergency path needs no lock.
static KIND: AtomicU8 = AtomicU8::new(0);
static BASE: AtomicU64 = AtomicU64::new(0);

/// Runs `f` on the selected UART's driver, if there is one.
fn with<R>(f: impl FnOnce(&dyn ConsoleUart) -> R) -> Option<R> {
    let base = BASE.load(Ordering::Acquire);
    match kind_of(KIND.load(Ordering::Acquire))? {
        UartKind::Pl011 => pl011::Pl011::open(base).map(|u| f(&u)),
        UartKind::Imx => imx::ImxUart::open(base).map(|u| f(&u)),
    }
}

/// Selects the console UART (the board's early UART first, the DT's
/// later) and makes it ready to send and receive.
pub fn select(kind: UartKind, base: u64) {
    KIND.store(kind_code(kind), Ordering::Release);
    BASE.store(base, Ordering::Release);
    with(|u| u.init());
}

/// No console (tests).
#[cfg(test)]
pub fn deselect() {
    BASE.store(0, Ordering::Release);
    KIND.store(0, Ordering::Release);
}

/// Sends `bytes`, a newline as CR LF.
pub fn write_bytes(bytes: &[u8]) {
    with(|u| {
        for &b in bytes {
            if b == b'\n' {
                u.put(b'\r');
            }
            u.put(b);
        }
    });
}

/// Enables the receive interrupt.
pub fn enable_receive_interrupt() {
    with(|u| u.enable_receive_interrupt());
}

/// A received byte, if one is waiting. Reading pops the receive FIFO,
/// which only the console input path does.
pub fn read_byte() -> Option<u8> {
    with(|u| u.get()).flatten()
}

/// Last words before a core halts: straight to the UART, with no
/// allocation, no lock the dying code could hold, and no queue.
pub fn emergency(args: core::fmt::Arguments) {
    struct Raw;
    impl core::fmt::Write for Raw {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            write_bytes(s.as_bytes());
            Ok(())
        }
    }
    let _ = core::fmt::Write::write_fmt(&mut Raw, args);
}
