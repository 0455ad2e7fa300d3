//! `timer`: the virtual timer at 100 Hz for one second on each of two vCPUs,
//! while vCPU 0 sends 50 SGIs to vCPU 1; every interrupt handler checks it
//! runs on the vCPU it was meant for.
//!
//! ```text
//! timer: cpu<i> ticks=<n> expected=100 elapsed_ms=<ms>   (each vCPU)
//! sgi: cpu1 received=<n> sent=50                         (from vCPU 1)
//! timer: misrouted=<n>
//! timer: done
//! ```

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use testkit::println;
use testkit::rt::cpu::{self, MPIDR_AFFINITY_MASK};
use testkit::rt::{gic, interrupts_enabled, park, platform, timer};

testkit::entry!("timer", main);

const CPUS: usize = 2;
const HZ: u64 = 100;
const SGI: u32 = 1;
const SGI_COUNT: u32 = 50;
const SGI_SPACING_MS: u64 = 2;
/// How long vCPU 0 waits for one SGI to be received before sending the next.
const SGI_TIMEOUT_MS: u64 = 100;
/// How long each vCPU waits for the other's part before reporting anyway
/// (covers 50 SGIs that each time out).
const REPORT_WAIT_MS: u64 = 6000;
/// How long past the second a vCPU waits for overdue ticks.
const GRACE_MS: u64 = 200;

/// Per vCPU: measuring (ticks count and re-arm), ticks, next deadline, last
/// deadline to arm, time of the last tick.
static ACTIVE: [AtomicBool; CPUS] = [const { AtomicBool::new(false) }; CPUS];
static TICKS: [AtomicU32; CPUS] = [const { AtomicU32::new(0) }; CPUS];
static NEXT: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static STOP: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static LAST: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];
static PERIOD: AtomicU64 = AtomicU64::new(0);

static SGI_SENT: AtomicU32 = AtomicU32::new(0);
static SGI_RECEIVED: AtomicU32 = AtomicU32::new(0);
static SGI_DONE: AtomicBool = AtomicBool::new(false);
static MISROUTED: AtomicU32 = AtomicU32::new(0);
static CPU1_READY: AtomicBool = AtomicBool::new(false);
static CPU1_DONE: AtomicBool = AtomicBool::new(false);

/// Whether the running vCPU's MPIDR is the one the device tree gives vCPU
/// `index`.
fn on_vcpu(index: usize) -> bool {
    let expected = platform().cpu_mpidr[index];
    cpu::mpidr() & MPIDR_AFFINITY_MASK == expected & MPIDR_AFFINITY_MASK
}

fn timer_irq(intid: u32) {
    let me = cpu::index();
    if me >= CPUS || !ACTIVE[me].load(Ordering::Relaxed) {
        // Not measuring here: a sleeper's wake-up.
        timer::wake_irq(intid);
        return;
    }
    if !on_vcpu(me) {
        MISROUTED.fetch_add(1, Ordering::Relaxed);
    }
    TICKS[me].fetch_add(1, Ordering::Relaxed);
    LAST[me].store(timer::counter(), Ordering::Relaxed);
    let next = NEXT[me].load(Ordering::Relaxed) + PERIOD.load(Ordering::Relaxed);
    NEXT[me].store(next, Ordering::Relaxed);
    if next <= STOP[me].load(Ordering::Relaxed) {
        timer::set_cval(next);
    } else {
        timer::disable(); // the second is over; extra interrupts still count
    }
}

fn sgi_irq(_intid: u32) {
    if cpu::index() == 1 && on_vcpu(1) {
        SGI_RECEIVED.fetch_add(1, Ordering::Release);
    } else {
        MISROUTED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts 100 Hz ticks on this vCPU for one second; returns the start time.
fn start_ticks() -> u64 {
    let me = cpu::index();
    let start = timer::counter();
    let period = PERIOD.load(Ordering::Relaxed);
    NEXT[me].store(start + period, Ordering::Relaxed);
    STOP[me].store(start + timer::frequency(), Ordering::Relaxed);
    ACTIVE[me].store(true, Ordering::Relaxed);
    timer::set_cval(start + period);
    timer::enable();
    start
}

/// Waits out one second of counter time from `start` (plus half a period so
/// the tick due at exactly one second lands), stops and reports. A vCPU
/// that was held up gets up to `GRACE_MS` more for the deadlines it missed
/// to fire (an overdue deadline fires at once when armed).
fn finish_ticks(start: u64) {
    let me = cpu::index();
    let stop = STOP[me].load(Ordering::Relaxed);
    let end = stop + PERIOD.load(Ordering::Relaxed) / 2;
    let give_up = end + timer::ms_to_ticks(GRACE_MS);
    loop {
        // IRQs masked between the checks and `wfi` (which a pending interrupt
        // still ends): sleep only while a tick is due to wake us.
        cpu::mask_irqs();
        let now = timer::counter();
        let due = NEXT[me].load(Ordering::Relaxed) <= stop;
        if (now >= end && !due) || now >= give_up {
            break;
        }
        if due {
            cpu::wfi();
        }
        cpu::unmask_irqs();
    }
    timer::disable();
    ACTIVE[me].store(false, Ordering::Relaxed);
    cpu::unmask_irqs();
    let ticks = TICKS[me].load(Ordering::Relaxed);
    let last = if ticks > 0 {
        LAST[me].load(Ordering::Relaxed)
    } else {
        timer::counter()
    };
    println!(
        "timer: cpu{} ticks={} expected={} elapsed_ms={}",
        me,
        ticks,
        HZ,
        timer::ticks_to_ms(last - start)
    );
}

fn send_sgis() {
    let target = platform().cpu_mpidr[1];
    for _ in 0..SGI_COUNT {
        let before = SGI_RECEIVED.load(Ordering::Acquire);
        gic::send_sgi(SGI, target);
        SGI_SENT.fetch_add(1, Ordering::Relaxed);
        let timeout = timer::counter() + timer::ms_to_ticks(SGI_TIMEOUT_MS);
        while SGI_RECEIVED.load(Ordering::Acquire) == before && timer::counter() < timeout {
            core::hint::spin_loop();
        }
        let next = timer::counter() + timer::ms_to_ticks(SGI_SPACING_MS);
        while timer::counter() < next {
            core::hint::spin_loop();
        }
    }
    SGI_DONE.store(true, Ordering::Release);
}

fn main() -> ! {
    if !interrupts_enabled() {
        println!("timer: needs interrupts (no GIC, or idle=poll)");
        park();
    }
    PERIOD.store(timer::frequency() / HZ, Ordering::Relaxed);
    gic::set_handler(platform().vtimer_intid, timer_irq);
    gic::set_handler(SGI, sgi_irq);
    gic::enable(SGI); // an SGI here is counted as misrouted

    let two = platform().cpu_count >= 2;
    if two {
        let ret = cpu::start(platform().cpu_mpidr[1], 1, secondary);
        let deadline = timer::counter() + timer::ms_to_ticks(2000);
        while ret == 0 && !CPU1_READY.load(Ordering::Acquire) && timer::counter() < deadline {
            core::hint::spin_loop();
        }
        if !CPU1_READY.load(Ordering::Acquire) {
            println!("timer: cpu1 did not start (cpu_on = {})", ret);
        }
    }

    let start = start_ticks();
    if two && CPU1_READY.load(Ordering::Acquire) {
        send_sgis();
    } else {
        println!("sgi: skipped, no second vCPU");
    }
    finish_ticks(start);

    if two {
        let deadline = timer::counter() + timer::ms_to_ticks(REPORT_WAIT_MS);
        while !CPU1_DONE.load(Ordering::Acquire) && timer::counter() < deadline {
            timer::sleep_ms(1);
        }
    }
    println!("timer: misrouted={}", MISROUTED.load(Ordering::Relaxed));
    println!("timer: done");
    loop {
        timer::sleep_ms(1000);
    }
}

fn secondary(_index: usize) -> ! {
    gic::enable(SGI);
    CPU1_READY.store(true, Ordering::Release);
    let start = start_ticks();
    finish_ticks(start);
    // Report once vCPU 0 has sent everything (or given up).
    let deadline = timer::counter() + timer::ms_to_ticks(REPORT_WAIT_MS);
    while !SGI_DONE.load(Ordering::Acquire) && timer::counter() < deadline {
        timer::sleep_ms(1);
    }
    println!(
        "sgi: cpu1 received={} sent={}",
        SGI_RECEIVED.load(Ordering::Relaxed),
        SGI_SENT.load(Ordering::Relaxed)
    );
    CPU1_DONE.store(true, Ordering::Release);
    loop {
        timer::sleep_ms(1000);
    }
}
