//! `smp`: PSCI CPU_ON / AFFINITY_INFO / CPU_OFF on a second vCPU.
//!
//! ```text
//! smp: cpu0 up
//! smp: cpu_on(1) = <ret>
//! smp: cpu1 up mpidr=0x<MPIDR_EL1 & 0xffffff>      (from vCPU 1)
//! smp: affinity_info(1) = <ret>
//! smp: cpu_on(1) again = <ret>                     (-4, ALREADY_ON)
//! smp: cpu_on(2) = <ret>                           (-2 with 2 vCPUs)
//! smp: cpu1 off
//! smp: done
//! smp: idle tick=<n>                               (every 500 ms)
//! ```

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, Ordering};
use testkit::println;
use testkit::rt::{cpu, park, psci, timer};

testkit::entry!("smp", main);

/// Set by the primary once it has printed the CPU_ON result, so that the
/// secondary's line always comes after it.
static GO: AtomicBool = AtomicBool::new(false);
/// Set by the secondary once it has printed its line.
static UP: AtomicBool = AtomicBool::new(false);
/// Set by the primary when the secondary may turn itself off.
static RELEASE: AtomicBool = AtomicBool::new(false);

/// Polls `done` every millisecond for at most `ms`; returns whether it held.
fn wait_for(ms: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = timer::counter() + timer::ms_to_ticks(ms);
    while !done() {
        if timer::counter() >= deadline {
            return false;
        }
        timer::sleep_ms(1);
    }
    true
}

fn main() -> ! {
    println!("smp: cpu0 up");
    let ret = cpu::start(1, 1, secondary);
    println!("smp: cpu_on(1) = {}", ret);
    GO.store(true, Ordering::Release);
    if ret == psci::SUCCESS && !wait_for(2000, || UP.load(Ordering::Acquire)) {
        println!("smp: cpu1 did not come up");
    }
    println!("smp: affinity_info(1) = {}", psci::affinity_info(1));
    println!("smp: cpu_on(1) again = {}", cpu::start(1, 1, secondary));
    println!("smp: cpu_on(2) = {}", cpu::start(2, 2, secondary));

    RELEASE.store(true, Ordering::Release);
    let mut state = psci::AFFINITY_ON;
    if wait_for(2000, || {
        state = psci::affinity_info(1);
        state == psci::AFFINITY_OFF
    }) {
        println!("smp: cpu1 off");
    } else {
        println!("smp: cpu1 still not off, affinity_info(1) = {}", state);
    }
    println!("smp: done");

    timer::every(500, |tick| println!("smp: idle tick={}", tick))
}

fn secondary(index: usize) -> ! {
    while !GO.load(Ordering::Acquire) {
        timer::sleep_ms(1);
    }
    println!(
        "smp: cpu{} up mpidr=0x{:x}",
        index,
        cpu::mpidr() & 0xff_ffff
    );
    UP.store(true, Ordering::Release);
    while !RELEASE.load(Ordering::Acquire) {
        timer::sleep_ms(1);
    }
    cpu::mask_irqs();
    let ret = psci::cpu_off();
    println!("smp: cpu{} cpu_off returned {}", index, ret);
    park()
}
