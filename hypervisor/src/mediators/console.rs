//! The console mediator: one physical UART shared by the hypervisor's log
//! (`[hv] LEVEL message`) and the partitions' virtual PL011s (`[name]
//! line`).
//!
//! Output: every source (each partition, and the hypervisor) has a bounded
//! queue of whole lines (`shared_devices::console::OutputQueue`). Writers
//! only enqueue, so a guest's UART write never waits for the physical UART.
//! The queues are drained one line per source in turn, at the board's
//! console line rate, by the *service core* (a core in no partition): a
//! partition that floods its console loses its own lines (counted and
//! reported) but cannot delay anyone else's beyond one line per source.
//! Without a service core, the writing core drains a small bounded budget
//! itself, unpaced.
//!
//! Input: bytes typed on the physical console go to the focused partition's
//! virtual UART (`InputRouter`: Ctrl-] 1..9 / n switches focus, Ctrl-] r
//! shows the crash records); none in the production build
//! ([`crate::PRODUCTION`]).
//!
//! Crash records: the console keeps each partition's last lines
//! (`shared_devices::crash_record::Tail`), which go into its records
//! ([`Mediator::add_to_record`]); a new life starts with none.
//!
//! Toward the partitions the console is one [`EmulatedDevice`] (each
//! partition's UART window, told apart by the partition's index) and a
//! [`Mediator`] (draining on the service core, the receive interrupt).

use crate::arch::cpu;
use crate::drivers::uart;
use crate::partition::{self, Access, Actions, EmulatedDevice, Mediator, Partition, crash};
use alloc::vec::Vec;
use config::layout;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use log::{LevelFilter, Log, Metadata, Record};
use shared_devices::console::{
    Input, InputRouter, LINE_MAX, Line, MAX_QUEUE_BYTES, OutputQueue, escape_controls, escaped_len,
};
use shared_devices::crash_record::{self, Tail};
use shared_devices::mmio::RegisterFile;
use shared_devices::pl011::{Pl011, Pl011Effects};
use spin::{Mutex, Once};

/// Lines a writing core may drain itself when there is no service core.
const INLINE_BUDGET: usize = 4;

/// The console mediator. See the module docs.
pub struct Console {
    /// Partition queues by partition index, then the hypervisor's own.
    queues: Vec<Mutex<OutputQueue>>,
    tags: Vec<&'static str>,
    /// Each partition's virtual PL011, by partition index.
    uarts: Vec<Mutex<Pl011>>,
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
    /// Each partition's last lines, by partition index.
    tails: Vec<Mutex<Tail>>,
    /// The crash-record dump under way: the sequence number of the last
    /// record shown (see [`Console::continue_dump`]).
    dump: Mutex<Option<u64>>,
}

/// Free bytes the hypervisor's queue needs before the dump adds a record
/// (its lines are at most about this long; a longer one loses lines,
/// counted as any dropped output).
const DUMP_ROOM: usize = 12 * 1024;

/// The console, once started: where the `log` crate's records go.
static CONSOLE: Once<&'static Console> = Once::new();

impl Console {
    /// The console with one virtual UART per partition. The log keeps
    /// going straight to the UART until [`Console::start`].
    pub fn new(
        partition_names: &[&'static str],
        service_cpu: Option<usize>,
        baud: u64,
    ) -> &'static Console {
        let mut tags = partition_names.to_vec();
        tags.push("hv");
        // 10 bit times per byte (start, 8 data, stop).
        let ticks_per_byte = (cpu::counter_frequency() * 10).div_ceil(baud.max(1));
        let console = Console {
            queues: partition_names
                .iter()
                .map(|_| Mutex::new(OutputQueue::new()))
                .chain([Mutex::new(OutputQueue::with_capacity(MAX_QUEUE_BYTES))])
                .collect(),
            next_drop_report: tags.iter().map(|_| AtomicU64::new(0)).collect(),
            uarts: partition_names
                .iter()
                .map(|_| Mutex::new(Pl011::new()))
                .collect(),
            tags,
            drain: Mutex::new(()),
            cursor: AtomicUsize::new(0),
            requested: AtomicBool::new(false),
            busy_until: AtomicU64::new(0),
            ticks_per_byte,
            service_cpu,
            router: Mutex::new(InputRouter::new(partition_names.len())),
            tails: partition_names
                .iter()
                .map(|_| Mutex::new(Tail::new()))
                .collect(),
            dump: Mutex::new(None),
        };
        alloc::boxed::Box::leak(alloc::boxed::Box::new(console))
    }

    /// Switches the log from direct writes (boot) to queued, paced output;
    /// once the hypervisor's state is installed (queuing kicks cores).
    pub fn start(&'static self) {
        CONSOLE.call_once(|| self);
    }

    fn hv_source(&self) -> usize {
        self.queues.len() - 1
    }

    /// Queues a line; nobody ever waits for the UART here. A full queue
    /// loses the line (counted and reported): the hypervisor's own queue
    /// is big enough for its bursts at boot, and what partitions make it
    /// say is rate-limited (`partition::report`).
    fn enqueue(&self, source: usize, line: Line) {
        let here = self.service_cpu == Some(cpu::current());
        self.queues[source].lock().push(line);
        match self.service_cpu {
            // Its idle loop drains.
            Some(_) if here => self.requested.store(true, Ordering::Release),
            Some(service) => {
                if !self.requested.swap(true, Ordering::AcqRel) {
                    partition::kick(service, 0);
                }
            }
            None => {
                self.drain(INLINE_BUDGET, false);
            }
        }
    }

    /// Whether partition `index`'s queue can take another whole line; its
    /// virtual UART shows a full transmit FIFO otherwise.
    fn has_room(&self, index: usize) -> bool {
        self.queues[index].lock().has_room_for_a_line()
    }

    /// Writes up to `budget` lines, one per source in turn. Paced, it stops
    /// at the first line the UART is not ready for (at the line rate) and
    /// returns when it will be.
    fn drain(&self, budget: usize, paced: bool) -> Option<u64> {
        let Some(_guard) = self.drain.try_lock() else {
            return None; // someone else is draining and will take our line too
        };
        let mut line: heapless::Vec<u8, { LINE_MAX + 1 }> = heapless::Vec::new();
        let mut written = 0;
        let mut idle_sources = 0;
        while written < budget && idle_sources < self.queues.len() {
            let now = cpu::counter();
            let ready_at = self.busy_until.load(Ordering::Relaxed);
            if paced && now < ready_at {
                return Some(ready_at);
            }
            let source = self.cursor.fetch_add(1, Ordering::Relaxed) % self.queues.len();
            let report_due = now >= self.next_drop_report[source].load(Ordering::Relaxed);
            let (got, dropped) = {
                let mut q = self.queues[source].lock();
                (
                    q.pop(&mut line),
                    if report_due { q.take_dropped() } else { 0 },
                )
            };
            if dropped > 0 {
                self.next_drop_report[source]
                    .store(now + cpu::counter_frequency(), Ordering::Relaxed);
                let mut note = heapless::String::<96>::new();
                let _ = write!(
                    note,
                    "WARN  console: {}: {dropped} line(s) dropped, output too fast",
                    self.tags[source]
                );
                self.emit("hv", note.as_bytes());
            }
            if !got {
                idle_sources += 1;
                continue;
            }
            idle_sources = 0;
            self.emit(self.tags[source], &line);
            written += 1;
            if source < self.hv_source() {
                self.room(source);
            }
        }
        None
    }

    /// Partition `index`'s queue has room again: its UART's transmit FIFO
    /// stops being full, which may raise its transmit interrupt.
    fn room(&self, index: usize) {
        let raised = {
            // Busy: the core holding it is writing to this UART and updates
            // the transmit state itself when it is done (and this may be
            // that core, draining inline).
            let Some(mut uart) = self.uarts[index].try_lock() else {
                return;
            };
            let before = uart.interrupt();
            uart.set_tx_full(!self.has_room(index));
            uart.interrupt() && !before
        };
        if raised {
            partition::raise_virtual_spi(&partition::hv().partitions[index], layout::UART_INTID);
        }
    }

    /// Writes one tagged line; the UART is busy with it (at the line rate)
    /// until `busy_until`.
    fn emit(&self, tag: &str, text: &[u8]) {
        let bytes = (tag.len() + escaped_len(text) + 4) as u64;
        write_tagged(tag, text);
        let start = cpu::counter().max(self.busy_until.load(Ordering::Relaxed));
        self.busy_until
            .store(start + bytes * self.ticks_per_byte, Ordering::Relaxed);
    }

    /// Bytes typed on the physical console (its receive interrupt).
    fn receive(&self) {
        if crate::PRODUCTION {
            // No input in production (the interrupt is never enabled; this
            // is the second line): drain and drop.
            while uart::read_byte().is_some() {}
            return;
        }
        let mut dropped = (0usize, 0u32);
        while let Some(byte) = uart::read_byte() {
            let input = self.router.lock().feed(byte);
            match input {
                Input::Byte { target, byte } => {
                    let raised = {
                        let mut u = self.uarts[target].lock();
                        let before = u.interrupt();
                        if !u.receive(byte) {
                            dropped = (target, dropped.1 + 1);
                        }
                        u.interrupt() && !before
                    };
                    if raised {
                        let p = &partition::hv().partitions[target];
                        partition::raise_virtual_spi(p, layout::UART_INTID);
                    }
                }
                Input::Focus { target } => {
                    log::info!("console: input goes to partition {}", self.tags[target]);
                }
                Input::Records => {
                    log::info!("console: crash records in hypervisor memory, oldest first:");
                    *self.dump.lock() = Some(0);
                }
                Input::Nothing => {}
            }
        }
        if dropped.1 > 0 {
            log::warn!(
                "console: {} input byte(s) to {} dropped: it is not reading",
                dropped.1,
                self.tags[dropped.0]
            );
        }
        self.continue_dump();
    }

    /// Adds the next crash records to the hypervisor's queue while it has
    /// room for a whole one ([`DUMP_ROOM`]): the dump is paced by the
    /// UART, and the log's other lines are not lost to it.
    fn continue_dump(&self) {
        let mut dump = self.dump.lock();
        while let Some(after) = *dump {
            if self.queues[self.hv_source()].lock().free() < DUMP_ROOM {
                return;
            }
            let shown = crash::with_next_after(after, |r| {
                r.write_lines(&mut |args| {
                    let mut text = Truncated::<LINE_MAX>(heapless::String::new());
                    let _ = text.write_fmt(args);
                    let line = Line {
                        text: text.0.as_bytes(),
                        cut: false,
                    };
                    self.enqueue(self.hv_source(), line);
                })
            });
            if shown.is_none() {
                let what = if after == 0 {
                    "no crash records"
                } else {
                    "end of crash records"
                };
                log::info!("console: {what}");
            }
            *dump = shown;
        }
    }
}

/// Each partition's UART window (`layout::UART_BASE`).
impl EmulatedDevice for Console {
    fn read(&'static self, a: &Access, actions: &mut Actions) -> u64 {
        let Some(uart) = self.uarts.get(a.partition.index) else {
            return 0;
        };
        let mut uart = uart.lock();
        let before = uart.interrupt();
        let value = uart.read(a.offset, a.width, &mut Pl011Effects::default());
        actions.raise_line = uart.interrupt() && !before;
        value
    }

    fn write(&'static self, a: &Access, value: u64, actions: &mut Actions) {
        let index = a.partition.index;
        let Some(uart) = self.uarts.get(index) else {
            return;
        };
        let mut uart = uart.lock();
        let before = uart.interrupt();
        let mut out = Pl011Effects::default();
        uart.write(a.offset, a.width, value, &mut out);
        if let Some(line) = out.line {
            if let Some(tail) = self.tails.get(index) {
                tail.lock().push(&line.text);
            }
            self.enqueue(index, line.as_line());
        }
        uart.set_tx_full(!self.has_room(index));
        // A rising line raises the SPI; a line that stays high after the
        // guest's EOI is raised again by the EOI maintenance interrupt.
        actions.raise_line = uart.interrupt() && !before;
    }

    fn line_high(&self, p: &Partition) -> bool {
        self.uarts
            .get(p.index)
            .is_some_and(|u| u.lock().interrupt())
    }

    /// A partial line is dropped, and typed input not yet read; the last
    /// lines kept for crash records are forgotten (they are in the record
    /// of what stopped it).
    fn reset(&self, p: &Partition) {
        if let Some(u) = self.uarts.get(p.index) {
            u.lock().reset();
        }
        if let Some(t) = self.tails.get(p.index) {
            t.lock().clear();
        }
    }
}

impl Mediator for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    /// On the service core, whenever it is woken: writes the lines whose
    /// turn has come at the line rate, never waiting for the UART. Returns
    /// when it is ready for the next line if lines are still waiting.
    fn service(&self) -> Option<u64> {
        if self.service_cpu != Some(cpu::current()) || !self.requested.swap(false, Ordering::AcqRel)
        {
            return None;
        }
        self.continue_dump();
        let due = self.drain(usize::MAX, true);
        if due.is_some() {
            self.requested.store(true, Ordering::Release);
        }
        due
    }

    fn interrupt(&self, _intid: u32) {
        self.receive();
    }

    /// Nothing of the console touches partition memory.
    fn quiesce(&self, _p: &Partition) {}

    /// The partition's last console lines.
    fn add_to_record(&self, p: &Partition, record: &mut crash_record::Record) {
        if let Some(tail) = self.tails.get(p.index) {
            tail.lock().copy_to(&mut record.tail);
        }
    }
}

/// A `fmt::Write` that keeps what fits in `N` bytes and drops the rest
/// (a dump line longer than a console line is cut, not lost).
struct Truncated<const N: usize>(heapless::String<N>);

impl<const N: usize> Write for Truncated<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// One line on the physical UART: `[tag] text`, with the text's control
/// characters made visible (a partition cannot rewrite what is on the
/// terminal, see `escape_controls`).
fn write_tagged(tag: &str, text: &[u8]) {
    uart::write_bytes(b"[");
    uart::write_bytes(tag.as_bytes());
    uart::write_bytes(b"] ");
    escape_controls(text, &mut |piece| uart::write_bytes(piece));
    uart::write_bytes(b"\n");
}

/// Before the console starts (boot): straight to the UART, one whole line
/// under a lock.
fn write_direct(text: &[u8]) {
    static BOOT: Mutex<()> = Mutex::new(());
    let _guard = BOOT.lock();
    write_tagged("hv", text);
}

struct Logger;

impl Log for Logger {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        let mut text = heapless::String::<{ LINE_MAX }>::new();
        let _ = write!(text, "{:<5} {}", record.level(), record.args());
        let line = Line {
            text: text.as_bytes(),
            cut: false,
        };
        match CONSOLE.get() {
            Some(console) => console.enqueue(console.hv_source(), line),
            None => write_direct(line.text),
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Sends the `log` crate's records to the console (directly until
/// [`Console::start`]).
pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if crate::PRODUCTION {
        LevelFilter::Warn
    } else {
        LevelFilter::Info
    });
}
