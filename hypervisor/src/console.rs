//! The physical console, shared by the hypervisor's log (`[hv] LEVEL
//! message`) and the partitions' output (`[name] line`).
//!
//! Output: every source (each partition, and the hypervisor) has a bounded
//! queue of whole lines (`shared_devices::console::OutputQueue`). Writers
//! only enqueue, so a guest's UART write never waits for the physical UART.
//! The queues are drained one line per source in turn, at the board's
//! console line rate, by the *service core* (a core in no partition, see
//! `Hv::service_cpu`): a partition that floods its console loses its own
//! lines (counted and reported) but cannot delay anyone else's beyond one
//! line per source. Without a service core, the writing core drains a
//! small bounded budget itself, unpaced.
//!
//! Input: bytes typed on the physical console go to the focused partition's
//! virtual UART (`InputRouter`: Ctrl-] 1..9 / n switches focus).

use crate::arch::{cpu, uart};
use crate::runtime::{self, hv};
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use log::{LevelFilter, Log, Metadata, Record};
use shared_devices::console::{Input, InputRouter, LINE_MAX, Line, OutputQueue};
use spin::{Mutex, Once};

/// Lines a writing core may drain itself when there is no service core.
const INLINE_BUDGET: usize = 4;

struct Mux {
    /// Partition queues by partition index, then the hypervisor's own.
    queues: Vec<Mutex<OutputQueue>>,
    tags: Vec<&'static str>,
    /// Held while writing to the physical UART.
    drain: Mutex<()>,
    cursor: AtomicUsize,
    /// Set when lines wait and the service core has been told.
    requested: AtomicBool,
    /// Per source: counter value before which its dropped lines are not
    /// reported again (one report a second, not one per lost line).
    next_drop_report: Vec<AtomicU64>,
    /// Counter value before which the UART is still busy (pacing).
    busy_until: AtomicU64,
    ticks_per_byte: u64,
    service_cpu: Option<usize>,
    router: Mutex<InputRouter>,
}

static MUX: Once<Mux> = Once::new();

/// Switches from direct writes (boot) to queued, paced output.
pub fn start(partition_names: &[&'static str], service_cpu: Option<usize>, baud: u64) {
    let mut tags = partition_names.to_vec();
    tags.push("hv");
    // 10 bit times per byte (start, 8 data, stop).
    let ticks_per_byte = (cpu::counter_frequency() * 10).div_ceil(baud.max(1));
    MUX.call_once(|| Mux {
        queues: tags
            .iter()
            .map(|_| Mutex::new(OutputQueue::new()))
            .collect(),
        next_drop_report: tags.iter().map(|_| AtomicU64::new(0)).collect(),
        tags,
        drain: Mutex::new(()),
        cursor: AtomicUsize::new(0),
        requested: AtomicBool::new(false),
        busy_until: AtomicU64::new(0),
        ticks_per_byte,
        service_cpu,
        router: Mutex::new(InputRouter::new(partition_names.len())),
    });
}

/// A finished line from partition `index`'s virtual UART.
pub fn partition_line(index: usize, line: Line) {
    enqueue(index, line);
}

fn enqueue(source: usize, line: Line) {
    let Some(mux) = MUX.get() else {
        write_direct(line.text);
        return;
    };
    let here = mux.service_cpu == Some(cpu::current());
    if here {
        // The service core's own log line (partitions' lines come from
        // their cores). The hypervisor's log never loses a line: with its
        // queue full, the service core writes lines at the line rate until
        // there is room (a burst at boot, not something a guest controls).
        while !mux.queues[source].lock().has_room_for_a_line() {
            match drain(mux, 1, true) {
                Some(ready_at) => {
                    while cpu::counter() < ready_at {
                        core::hint::spin_loop();
                    }
                }
                None => break,
            }
        }
    }
    mux.queues[source].lock().push(line);
    match mux.service_cpu {
        // Its idle loop drains.
        Some(_) if here => mux.requested.store(true, Ordering::Release),
        Some(service) => {
            if !mux.requested.swap(true, Ordering::AcqRel) {
                runtime::kick(service, 0);
            }
        }
        None => {
            drain(mux, INLINE_BUDGET, false);
        }
    }
}

/// Whether partition `index`'s queue can take another whole line; its
/// virtual UART shows a full transmit FIFO otherwise.
pub fn has_room(index: usize) -> bool {
    MUX.get()
        .is_none_or(|mux| mux.queues[index].lock().has_room_for_a_line())
}

/// Called by the service core whenever it is woken: writes the lines
/// whose turn has come at the line rate, never waiting for the UART.
/// Returns when it is ready for the next line (counter value) if lines
/// are still waiting.
pub fn service() -> Option<u64> {
    let mux = MUX.get()?;
    if mux.service_cpu != Some(cpu::current()) || !mux.requested.swap(false, Ordering::AcqRel) {
        return None;
    }
    let due = drain(mux, usize::MAX, true);
    if due.is_some() {
        mux.requested.store(true, Ordering::Release);
    }
    due
}

/// Writes up to `budget` lines, one per source in turn. Paced, it stops
/// at the first line the UART is not ready for (at the line rate) and
/// returns when it will be.
fn drain(mux: &Mux, budget: usize, paced: bool) -> Option<u64> {
    let Some(_guard) = mux.drain.try_lock() else {
        return None; // someone else is draining and will take our line too
    };
    let mut line: heapless::Vec<u8, { LINE_MAX + 1 }> = heapless::Vec::new();
    let mut written = 0;
    let mut idle_sources = 0;
    while written < budget && idle_sources < mux.queues.len() {
        let now = cpu::counter();
        let ready_at = mux.busy_until.load(Ordering::Relaxed);
        if paced && now < ready_at {
            return Some(ready_at);
        }
        let source = mux.cursor.fetch_add(1, Ordering::Relaxed) % mux.queues.len();
        let report_due = now >= mux.next_drop_report[source].load(Ordering::Relaxed);
        let (got, dropped) = {
            let mut q = mux.queues[source].lock();
            (
                q.pop(&mut line),
                if report_due { q.take_dropped() } else { 0 },
            )
        };
        if dropped > 0 {
            mux.next_drop_report[source].store(now + cpu::counter_frequency(), Ordering::Relaxed);
            let mut note = heapless::String::<96>::new();
            let _ = write!(
                note,
                "WARN  console: {}: {dropped} line(s) dropped, output too fast",
                mux.tags[source]
            );
            emit(mux, "hv", note.as_bytes());
        }
        if !got {
            idle_sources += 1;
            continue;
        }
        idle_sources = 0;
        emit(mux, mux.tags[source], &line);
        written += 1;
        if source < mux.queues.len() - 1 {
            runtime::console_room(source);
        }
    }
    None
}

/// Writes one tagged line; the UART is busy with it (at the line rate)
/// until `busy_until`.
fn emit(mux: &Mux, tag: &str, text: &[u8]) {
    let bytes = (tag.len() + text.len() + 4) as u64;
    write_tagged(tag, text);
    let start = cpu::counter().max(mux.busy_until.load(Ordering::Relaxed));
    mux.busy_until
        .store(start + bytes * mux.ticks_per_byte, Ordering::Relaxed);
}

fn write_tagged(tag: &str, text: &[u8]) {
    uart::write_bytes(b"[");
    uart::write_bytes(tag.as_bytes());
    uart::write_bytes(b"] ");
    uart::write_bytes(text);
    uart::write_bytes(b"\n");
}

/// Before the queues exist (boot): straight to the UART, one whole line
/// under a lock.
fn write_direct(text: &[u8]) {
    static BOOT: Mutex<()> = Mutex::new(());
    let _guard = BOOT.lock();
    write_tagged("hv", text);
}

/// Bytes typed on the physical console (its receive interrupt).
pub fn receive() {
    let Some(mux) = MUX.get() else { return };
    let mut dropped = (0usize, 0u32);
    while let Some(byte) = uart::read_byte() {
        let input = mux.router.lock().feed(byte);
        match input {
            Input::Byte { target, byte } => {
                let p = &hv().partitions[target];
                let raised = {
                    let mut u = p.uart.lock();
                    let before = u.interrupt();
                    if !u.receive(byte) {
                        dropped = (target, dropped.1 + 1);
                    }
                    u.interrupt() && !before
                };
                if raised {
                    runtime::raise_virtual_spi(p, config::layout::UART_INTID);
                }
            }
            Input::Focus { target } => {
                log::info!("console: input goes to partition {}", mux.tags[target]);
            }
            Input::Nothing => {}
        }
    }
    if dropped.1 > 0 {
        log::warn!(
            "console: {} input byte(s) to {} dropped: it is not reading",
            dropped.1,
            mux.tags[dropped.0]
        );
    }
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let mut text = heapless::String::<{ LINE_MAX }>::new();
        let _ = write!(text, "{:<5} {}", record.level(), record.args());
        let source = MUX.get().map_or(0, |m| m.queues.len() - 1);
        enqueue(
            source,
            Line {
                text: text.as_bytes(),
                cut: false,
            },
        );
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Last words before a core halts: no allocation, no lock that the dying
/// code could hold, no queue.
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
