//! The EL1 virtual timer and counter, and sleeping on it.

use super::{cpu, interrupts_enabled};
use core::arch::asm;

const CTL_ENABLE: u64 = 1 << 0;
const CTL_IMASK: u64 = 1 << 1;

/// CNTFRQ_EL0: counter ticks per second.
pub fn frequency() -> u64 {
    let value: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// CNTVCT_EL0, read after an `isb` so it is not taken early.
pub fn counter() -> u64 {
    let value: u64;
    // SAFETY: reads a register.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

pub fn ms_to_ticks(ms: u64) -> u64 {
    frequency() * ms / 1000
}

pub fn ticks_to_ms(ticks: u64) -> u64 {
    ticks * 1000 / frequency()
}

/// Counter ticks in whole microseconds (rounded to nearest).
pub fn ticks_to_us(ticks: u64) -> u64 {
    let hz = frequency().max(1);
    (ticks * 1_000_000 + hz / 2) / hz
}

/// Fires when the counter reaches `deadline` (CNTV_CVAL_EL0).
pub fn set_cval(deadline: u64) {
    // SAFETY: programs this vCPU's virtual timer.
    unsafe { asm!("msr cntv_cval_el0, {}", "isb", in(reg) deadline, options(nostack)) };
}

/// Fires `ticks` from now (CNTV_TVAL_EL0).
pub fn set_tval(ticks: u32) {
    // SAFETY: programs this vCPU's virtual timer.
    unsafe { asm!("msr cntv_tval_el0, {}", "isb", in(reg) u64::from(ticks), options(nostack)) };
}

/// CNTV_CTL_EL0 (bit 0 enable, bit 1 mask, bit 2 status).
pub fn ctl() -> u64 {
    let value: u64;
    // SAFETY: reads a register.
    unsafe {
        asm!("mrs {}, cntv_ctl_el0", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

fn set_ctl(value: u64) {
    // SAFETY: programs this vCPU's virtual timer.
    unsafe { asm!("msr cntv_ctl_el0, {}", "isb", in(reg) value, options(nostack)) };
}

/// Enables the timer with its interrupt unmasked.
pub fn enable() {
    set_ctl(CTL_ENABLE);
}

/// Disables the timer (its interrupt line drops).
pub fn disable() {
    set_ctl(0);
}

/// Masks the timer's interrupt output, leaving it enabled.
pub fn mask() {
    set_ctl(CTL_ENABLE | CTL_IMASK);
}

/// The runtime's virtual timer handler: a sleeper woke up, stop the timer.
pub fn wake_irq(_intid: u32) {
    disable();
}

/// Waits until the virtual counter reaches `deadline`: with interrupts, the
/// timer interrupt wakes the vCPU from `wfi`; with `idle=poll`, by polling.
/// Needs the runtime's handler on the timer interrupt (`wake_irq`) or one
/// that also stops the timer when it is not its own.
pub fn sleep_until(deadline: u64) {
    if !interrupts_enabled() {
        while counter() < deadline {
            core::hint::spin_loop();
        }
        return;
    }
    loop {
        // Check and sleep with IRQs masked: a pending interrupt still ends
        // `wfi`, and cannot slip in between the check and the `wfi`.
        cpu::mask_irqs();
        if counter() >= deadline {
            cpu::unmask_irqs();
            break;
        }
        set_cval(deadline);
        enable();
        cpu::wfi();
        cpu::unmask_irqs();
    }
    disable();
}

/// Waits `ms` milliseconds of counter time.
pub fn sleep_ms(ms: u64) {
    sleep_until(counter() + ms_to_ticks(ms));
}

/// Calls `f(1)`, `f(2)`, ... every `ms` milliseconds of counter time,
/// forever, without drift: the n-th call is due n periods after the start.
pub fn every(ms: u64, mut f: impl FnMut(u64)) -> ! {
    let period = ms_to_ticks(ms);
    let mut deadline = counter();
    let mut tick = 0;
    loop {
        deadline += period;
        sleep_until(deadline);
        tick += 1;
        f(tick);
    }
}
