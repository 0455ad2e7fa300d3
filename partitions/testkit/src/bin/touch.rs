//! `touch`: reads its virtio-input touchscreen and prints every contact
//! change, frame by frame, as Linux's multi-touch protocol B gives them.
//!
//! ```text
//! touch: device at 0x<base> "<name>" x 0..<max> y 0..<max> slots 0..<max> restarts <n>
//! touch: frame <n>: slot <s> down id <id> at <x>,<y>
//! touch: frame <n>: slot <s> at <x>,<y>
//! touch: frame <n>: slot <s> up
//! touch: frame <n>: button <0|1> pointer <x>,<y>
//! touch: not reading any more                  (touch.stop=<frames>)
//! touch: faulting with a contact down          (touch.fault=<frames>)
//! touch: no device
//! touch: frame <n>: latency <us> us                     (touch.latency=<frames>)
//! touch: latency n=<n> p50_us=<us> p99_us=<us> max_us=<us> min_us=<us>
//! ```
//!
//! With `touch.stop=<n>` it stops posting event buffers after its n-th
//! frame (a partition that no longer reads its events), and says every
//! second that it is alive. With `touch.fault=<n>` it reads unmapped
//! memory after its n-th frame if a contact is down then (so the
//! hypervisor stops or restarts it mid-contact); after a restart it reads
//! normally.
//!
//! With `touch.latency=<n>` it measures how long each frame took to reach
//! it: the hypervisor stamps every frame with when the panel's report
//! reached it (`MSC_TIMESTAMP`, µs of the counter the partitions share),
//! and the device's interrupt handler here notes when the frame arrived.
//! After n stamped frames it prints their percentiles (`cargo xtask bench
//! touch`). The handler keeps the time only: waiting by interrupt rather
//! than by polling, the program takes no time from the other cores under
//! `-icount` and adds no polling delay to what it measures.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use testkit::args;
use testkit::println;
use testkit::rt::virtio_input::{self, Event, VirtioInput};
use testkit::rt::{gic, park, platform, timer};

testkit::entry!("touch", main);

const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const EV_ABS: u16 = 3;
const EV_MSC: u16 = 4;
const MSC_TIMESTAMP: u16 = 0x05;
const BTN_TOUCH: u16 = 0x14a;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
const ABS_MT_SLOT: u16 = 0x2f;
const ABS_MT_POSITION_X: u16 = 0x35;
const ABS_MT_POSITION_Y: u16 = 0x36;
const ABS_MT_TRACKING_ID: u16 = 0x39;
const SLOTS: usize = 16;
/// Frames measured at most.
const MEASURED: usize = 1024;

/// The device's registers, for its interrupt handler.
static DEVICE: AtomicUsize = AtomicUsize::new(0);
/// The counter when the device last interrupted with nothing read since
/// (0: no interrupt since).
static ARRIVED: AtomicU64 = AtomicU64::new(0);

/// The device's interrupt: notes when, lowers the line.
fn on_input(_intid: u32) {
    let _ = ARRIVED.compare_exchange(0, timer::counter(), Ordering::AcqRel, Ordering::Relaxed);
    virtio_input::ack_interrupt(DEVICE.load(Ordering::Acquire));
}

/// Counter value `at` as `MSC_TIMESTAMP` microseconds (wrapping at 2^32),
/// as the hypervisor computes them.
fn timestamp_us(at: u64) -> u32 {
    let hz = timer::frequency().max(1);
    (at / hz * 1_000_000 + at % hz * 1_000_000 / hz) as u32
}

/// The measured frames' latencies (µs), sorted, as one line.
fn report(latencies: &mut [u32]) {
    latencies.sort_unstable();
    let n = latencies.len();
    let at = |p: usize| latencies[((n * p).div_ceil(100)).clamp(1, n) - 1];
    println!(
        "touch: latency n={} p50_us={} p99_us={} max_us={} min_us={}",
        n,
        at(50),
        at(99),
        latencies[n - 1],
        latencies[0]
    );
}

#[derive(Clone, Copy, Default)]
struct Slot {
    id: Option<i32>,
    x: u32,
    y: u32,
    changed: bool,
    began: bool,
    ended: bool,
}

fn main() -> ! {
    let bootargs = platform().bootargs;
    let stop: Option<u64> = args::value(bootargs, "touch.stop").and_then(|v| v.parse().ok());
    let restarts = platform().restart_count;
    let fault: Option<u64> = args::value(bootargs, "touch.fault")
        .and_then(|v| v.parse().ok())
        .filter(|_| restarts == 0);
    let measure: Option<usize> = args::value(bootargs, "touch.latency")
        .and_then(|v| v.parse().ok())
        .map(|n: usize| n.clamp(1, MEASURED));
    let Some(node) = virtio_input::find() else {
        println!("touch: no device");
        park();
    };
    let base = node.base;
    let Some(mut dev) = VirtioInput::open(node) else {
        println!("touch: device at {:#x} does not come up", base);
        park();
    };
    let (size, raw) = dev.config(virtio_input::CFG_ID_NAME, 0);
    let name = core::str::from_utf8(&raw[..usize::from(size).min(128)]).unwrap_or("?");
    let range = |axis| dev.abs_range(axis).map_or((0, -1), |r| r);
    let (x, y, s) = (
        range(ABS_MT_POSITION_X),
        range(ABS_MT_POSITION_Y),
        range(ABS_MT_SLOT),
    );
    println!(
        "touch: device at {:#x} \"{}\" x {}..{} y {}..{} slots {}..{} restarts {}",
        base, name, x.0, x.1, y.0, y.1, s.0, s.1, restarts
    );
    dev.post(64);
    let node = dev.node();
    let mut latencies = [0u32; MEASURED];
    let mut measured = 0usize;
    let mut stamp: Option<u32> = None;
    if measure.is_some() {
        match node.intid {
            Some(intid) => {
                DEVICE.store(node.base, Ordering::Release);
                gic::set_handler(intid, on_input);
                gic::enable_spi(intid);
            }
            None => println!("touch: error: no interrupt to measure with"),
        }
    }
    let mut slots = [Slot::default(); SLOTS];
    let mut current = 0usize;
    let mut frame = 0u64;
    let mut reading = true;
    let mut button: Option<u32> = None;
    let mut pointer: (Option<u32>, Option<u32>) = (None, None);
    let mut last_alive = timer::counter();
    loop {
        let mut got = 0;
        while let Some(Event { kind, code, value }) = dev.next_event() {
            got += 1;
            match (kind, code) {
                (EV_ABS, ABS_MT_SLOT) => current = value as usize,
                (EV_ABS, ABS_MT_TRACKING_ID) => {
                    if let Some(s) = slots.get_mut(current) {
                        let id = value as i32;
                        if id >= 0 {
                            s.id = Some(id);
                            s.began = true;
                        } else {
                            s.ended = true;
                        }
                        s.changed = true;
                    }
                }
                (EV_ABS, ABS_MT_POSITION_X) => {
                    if let Some(s) = slots.get_mut(current) {
                        s.x = value;
                        s.changed = true;
                    }
                }
                (EV_ABS, ABS_MT_POSITION_Y) => {
                    if let Some(s) = slots.get_mut(current) {
                        s.y = value;
                        s.changed = true;
                    }
                }
                (EV_KEY, BTN_TOUCH) => button = Some(value),
                (EV_ABS, ABS_X) => pointer.0 = Some(value),
                (EV_ABS, ABS_Y) => pointer.1 = Some(value),
                (EV_MSC, MSC_TIMESTAMP) => stamp = Some(value),
                (EV_SYN, 0) => {
                    frame += 1;
                    let arrived = ARRIVED.load(Ordering::Acquire);
                    let sent = stamp.take();
                    if let (Some(n), Some(sent)) = (measure, sent)
                        && arrived != 0
                        && measured < n
                    {
                        let us = timestamp_us(arrived).wrapping_sub(sent);
                        println!("touch: frame {}: latency {} us", frame, us);
                        latencies[measured] = us;
                        measured += 1;
                        if measured == n {
                            report(&mut latencies[..n]);
                        }
                    }
                    for (i, s) in slots.iter_mut().enumerate().filter(|(_, s)| s.changed) {
                        if s.began {
                            println!(
                                "touch: frame {}: slot {} down id {} at {},{}",
                                frame,
                                i,
                                s.id.unwrap_or(-1),
                                s.x,
                                s.y
                            );
                        } else if !s.ended {
                            println!("touch: frame {}: slot {} at {},{}", frame, i, s.x, s.y);
                        }
                        if s.ended {
                            println!("touch: frame {}: slot {} up", frame, i);
                            s.id = None;
                        }
                        s.changed = false;
                        s.began = false;
                        s.ended = false;
                    }
                    if let Some(b) = button.take() {
                        println!(
                            "touch: frame {}: button {} pointer {},{}",
                            frame,
                            b,
                            pointer.0.unwrap_or(0),
                            pointer.1.unwrap_or(0)
                        );
                    }
                    pointer = (None, None);
                    let down = slots.iter().any(|s| s.id.is_some());
                    if down && fault.is_some_and(|n| frame >= n) {
                        println!("touch: faulting with a contact down");
                        // SAFETY: none needed: this read is meant to fault.
                        let _ = unsafe { core::ptr::read_volatile(0x3000_0000 as *const u64) };
                    }
                    if reading && stop.is_some_and(|n| frame >= n) {
                        reading = false;
                        println!("touch: not reading any more");
                    }
                }
                _ => {}
            }
        }
        if got > 0 {
            // The next frame's interrupt is a new arrival.
            ARRIVED.store(0, Ordering::Release);
            if reading {
                dev.post(got);
            }
        }
        if !reading && timer::counter() - last_alive > timer::ms_to_ticks(1000) {
            last_alive = timer::counter();
            println!("touch: alive, frame {}", frame);
        }
        timer::sleep_ms(1);
    }
}
