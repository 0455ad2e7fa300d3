//! `trapbench`: what the hypervisor's traps cost a partition, measured on
//! the shared counter, for `cargo xtask bench traps`, which runs it under
//! the hypervisor and on QEMU without it. Under `-icount shift=0` one
//! instruction is one nanosecond of counter time, so the figures count
//! the instructions each path runs.
//!
//! The second vCPU waits in `wfi` whenever it is not handling an
//! interrupt, and vCPU 0 waits in `wfi` for its replies, so no spinning
//! vCPU inflates the other's time. Only the timer events spin (alone on
//! the machine): a machine whose cores all wait would let virtual time
//! follow the host's clock.
//!
//! ```text
//! trapbench: <what> n=<n> mean_ns=<ns> p50_ns=<ns>    (one line each)
//! trapbench: done
//! ```
//!
//! `what`: `load` (a load from memory, which never traps: the floor),
//! `hvc` (a null SMCCC call, SMCCC_VERSION, round trip), `mmio` (a read of
//! the console PL011's flag register), `vtimer` (virtual timer expiry to
//! the guest's handler), `sgi` (vCPU 0's SGI write to vCPU 1's handler).
//! The loops' means are per operation (p50 = mean); the interrupts' come
//! from `n` single events.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use testkit::println;
use testkit::rt::{cpu, gic, interrupts_enabled, mmio, park, platform, psci, timer};

testkit::entry!("trapbench", main);

/// Iterations of the loops (null call, MMIO read, load).
const LOOPS: u64 = 20_000;
/// Single events timed (timer interrupts, SGIs).
const EVENTS: usize = 500;
/// How far ahead each timer event is armed.
const TIMER_AHEAD_US: u64 = 200;
/// SMCCC_VERSION: answered by every SMCCC implementation, with no effect.
const SMCCC_VERSION: u32 = 0x8000_0000;
/// PL011 flag register.
const UARTFR: usize = 0x18;
/// vCPU 0 to vCPU 1, and vCPU 1's reply.
const SGI_PING: u32 = 1;
const SGI_PONG: u32 = 2;

/// Counter value when the timer handler ran; 0 while waiting.
static TIMER_SEEN: AtomicU64 = AtomicU64::new(0);
/// Counter value when vCPU 1's SGI handler ran; 0 while waiting.
static PING_SEEN: AtomicU64 = AtomicU64::new(0);
static PONG_SEEN: AtomicBool = AtomicBool::new(false);
static CPU1_READY: AtomicBool = AtomicBool::new(false);

fn timer_irq(_intid: u32) {
    TIMER_SEEN.store(timer::counter(), Ordering::Release);
    timer::disable();
}

fn ping_irq(_intid: u32) {
    PING_SEEN.store(timer::counter(), Ordering::Release);
    gic::send_sgi(SGI_PONG, platform().cpu_mpidr[0]);
}

fn pong_irq(_intid: u32) {
    PONG_SEEN.store(true, Ordering::Release);
}

/// Counter ticks to nanoseconds.
fn ns(ticks: u64) -> u64 {
    ticks * 1_000_000_000 / timer::frequency()
}

/// Runs `op` `LOOPS` times; its mean cost in ns.
fn per_op(mut op: impl FnMut()) -> u64 {
    let start = timer::counter();
    for _ in 0..LOOPS {
        op();
    }
    ns(timer::counter() - start) / LOOPS
}

fn report_loop(what: &str, mean: u64) {
    println!(
        "trapbench: {} n={} mean_ns={} p50_ns={}",
        what, LOOPS, mean, mean
    );
}

/// Prints the mean and median of `samples` (ns).
fn report_events(what: &str, samples: &mut [u64]) {
    samples.sort_unstable();
    let n = samples.len() as u64;
    let mean = samples.iter().sum::<u64>() / n.max(1);
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or(0);
    println!(
        "trapbench: {} n={} mean_ns={} p50_ns={}",
        what, n, mean, p50
    );
}

/// Sleeps in `wfi` (interrupts masked around the check, so none slips
/// between it and the `wfi`) until `done` says so.
fn wait_for(done: impl Fn() -> bool) {
    loop {
        cpu::mask_irqs();
        if done() {
            cpu::unmask_irqs();
            return;
        }
        cpu::wfi();
        cpu::unmask_irqs();
    }
}

/// Virtual timer expiry to its handler, `EVENTS` times.
fn timer_events() {
    let mut samples = [0u64; EVENTS];
    let ahead = timer::frequency() * TIMER_AHEAD_US / 1_000_000;
    for sample in samples.iter_mut() {
        TIMER_SEEN.store(0, Ordering::Release);
        let due = timer::counter() + ahead;
        timer::set_cval(due);
        timer::enable();
        // Spinning, not `wfi`: under `-icount` a machine whose cores all
        // wait lets virtual time follow the host's clock, which would
        // time the host, not the path to the handler.
        while TIMER_SEEN.load(Ordering::Acquire) == 0 {
            core::hint::spin_loop();
        }
        *sample = ns(TIMER_SEEN.load(Ordering::Acquire).saturating_sub(due));
    }
    report_events("vtimer", &mut samples);
}

/// vCPU 0's SGI write to vCPU 1's handler, `EVENTS` times; vCPU 1 answers
/// each with an SGI that wakes vCPU 0.
fn sgi_events() {
    let target = platform().cpu_mpidr[1];
    let mut samples = [0u64; EVENTS];
    for sample in samples.iter_mut() {
        PING_SEEN.store(0, Ordering::Release);
        PONG_SEEN.store(false, Ordering::Release);
        let sent = timer::counter();
        gic::send_sgi(SGI_PING, target);
        wait_for(|| PONG_SEEN.load(Ordering::Acquire));
        *sample = ns(PING_SEEN.load(Ordering::Acquire).saturating_sub(sent));
    }
    report_events("sgi", &mut samples);
}

fn secondary(_index: usize) -> ! {
    gic::enable(SGI_PING);
    CPU1_READY.store(true, Ordering::Release);
    loop {
        cpu::wfi();
    }
}

fn main() -> ! {
    if !interrupts_enabled() {
        println!("trapbench: needs interrupts (no GIC, or idle=poll)");
        park();
    }
    let Some(uart) = platform().uart else {
        println!("trapbench: no PL011 in the device tree");
        park();
    };
    gic::set_handler(platform().vtimer_intid, timer_irq);
    gic::set_handler(SGI_PING, ping_irq);
    gic::set_handler(SGI_PONG, pong_irq);
    gic::enable(SGI_PONG);

    let memory = AtomicU64::new(0);
    report_loop(
        "load",
        per_op(|| {
            core::hint::black_box(memory.load(Ordering::Relaxed));
        }),
    );
    report_loop(
        "hvc",
        per_op(|| {
            core::hint::black_box(psci::call(SMCCC_VERSION, 0, 0, 0));
        }),
    );
    report_loop(
        "mmio",
        per_op(|| {
            // SAFETY: the PL011's flag register, read-only.
            core::hint::black_box(unsafe { mmio::read32(uart + UARTFR) });
        }),
    );
    timer_events();

    if platform().cpu_count >= 2 {
        let ret = cpu::start(platform().cpu_mpidr[1], 1, secondary);
        let deadline = timer::counter() + timer::ms_to_ticks(2000);
        while ret == 0 && !CPU1_READY.load(Ordering::Acquire) && timer::counter() < deadline {
            timer::sleep_ms(1);
        }
        if CPU1_READY.load(Ordering::Acquire) {
            sgi_events();
        } else {
            println!("trapbench: cpu1 did not start (cpu_on = {})", ret);
        }
    } else {
        println!("trapbench: sgi skipped, one vCPU");
    }
    println!("trapbench: done");
    loop {
        timer::sleep_ms(1000);
    }
}
