//! `leftovers`: does the virtual machine match its device tree, and does a
//! restarted partition find the state of its first boot?
//!
//! Boot 0 uses the EL1 physical timer, which its device tree advertises
//! beside the virtual one (10 ticks at 10 ms, by interrupt), reads the PMU
//! (it has none: PMCR_EL0 reads 0), then leaves values in registers a
//! guest owns (FP/SIMD, FPCR, the physical timer, a breakpoint, the debug
//! control, PAR, AFSR0, CONTEXTIDR) and resets itself (PSCI SYSTEM_RESET).
//! Boot 1 reads them back: all must be zero.
//!
//! ```text
//! leftovers: boot 0 ptimer ticks=10 pmcr=0x<v>
//! leftovers: boot 1 q0=0x.. fpcr=0x.. cntp_ctl=0x.. cntp_cval=0x.. dbgbvr0=0x.. dbgbcr0=0x.. mdscr=0x.. par=0x.. afsr0=0x.. contextidr=0x..
//! leftovers: clean | leftovers: LEFT <names>
//! ```

#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};
use testkit::println;
use testkit::rt::{gic, park, platform, psci, timer};

testkit::entry!("leftovers", main);

const TICKS: u32 = 10;
static PTIMER_TICKS: AtomicU32 = AtomicU32::new(0);

macro_rules! mrs {
    ($reg:literal) => {{
        let value: u64;
        // SAFETY: reads a system register of this EL1 context.
        unsafe { asm!(concat!("mrs {}, ", $reg), out(reg) value, options(nomem, nostack)) };
        value
    }};
}

macro_rules! msr {
    ($reg:literal, $value:expr) => {{
        let value: u64 = $value;
        // SAFETY: writes a register of this EL1 context that nothing else
        // in this program uses.
        unsafe { asm!(concat!("msr ", $reg, ", {}"), "isb", in(reg) value, options(nostack)) };
    }};
}

fn main() -> ! {
    match platform().restart_count {
        0 => first_life(),
        _ => second_life(),
    }
}

fn ptimer_tick(_intid: u32) {
    let n = PTIMER_TICKS.fetch_add(1, Ordering::Relaxed) + 1;
    if n < TICKS {
        msr!("cntp_tval_el0", timer::ms_to_ticks(10));
    } else {
        msr!("cntp_ctl_el0", 0);
    }
}

fn first_life() -> ! {
    let p = platform();
    gic::set_handler(p.ptimer_intid, ptimer_tick);
    gic::enable(p.ptimer_intid);
    msr!("cntp_tval_el0", timer::ms_to_ticks(10));
    msr!("cntp_ctl_el0", 1);
    let deadline = timer::counter() + timer::ms_to_ticks(2000);
    while PTIMER_TICKS.load(Ordering::Relaxed) < TICKS && timer::counter() < deadline {
        timer::sleep_ms(5);
    }
    let pmcr = mrs!("pmcr_el0");
    println!(
        "leftovers: boot 0 ptimer ticks={} pmcr=0x{:x}",
        PTIMER_TICKS.load(Ordering::Relaxed),
        pmcr
    );
    gic::disable(p.ptimer_intid);
    // Leave traces everywhere a guest may.
    let pattern = 0x5a5a_a5a5_1234_5678u64;
    // SAFETY: loads FP/SIMD register v0 (nothing else uses it now).
    unsafe { asm!(".arch_extension fp", "fmov d0, {}", in(reg) pattern, options(nomem, nostack)) };
    msr!("fpcr", 0x0300_0000); // RMode: towards zero
    msr!("cntp_cval_el0", u64::MAX / 2);
    msr!("cntp_ctl_el0", 0b10); // disabled, masked
    msr!("dbgbvr0_el1", 0x4008_0000);
    msr!("dbgbcr0_el1", 0b1_1110_0000); // BAS, not enabled
    msr!("mdscr_el1", 1 << 15); // MDE, no effect without a breakpoint on
    msr!("par_el1", pattern & !1);
    msr!("afsr0_el1", 0x1);
    msr!("contextidr_el1", 0x42);
    psci::call(psci::SYSTEM_RESET, 0, 0, 0);
    println!("leftovers: SYSTEM_RESET returned");
    park()
}

fn second_life() -> ! {
    let q0: u64;
    // SAFETY: reads FP/SIMD register v0.
    unsafe { asm!(".arch_extension fp", "fmov {}, d0", out(reg) q0, options(nomem, nostack)) };
    let values = [
        ("q0", q0),
        ("fpcr", mrs!("fpcr")),
        ("cntp_ctl", mrs!("cntp_ctl_el0")),
        ("cntp_cval", mrs!("cntp_cval_el0")),
        ("dbgbvr0", mrs!("dbgbvr0_el1")),
        ("dbgbcr0", mrs!("dbgbcr0_el1")),
        ("mdscr", mrs!("mdscr_el1")),
        ("par", mrs!("par_el1")),
        ("afsr0", mrs!("afsr0_el1")),
        ("contextidr", mrs!("contextidr_el1")),
    ];
    let mut line = Line::new();
    for (name, value) in values {
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {name}=0x{value:x}"));
    }
    println!("leftovers: boot 1{}", line.as_str());
    let mut left = Line::new();
    for (name, value) in values {
        if value != 0 {
            let _ = core::fmt::Write::write_fmt(&mut left, format_args!(" {name}"));
        }
    }
    if left.as_str().is_empty() {
        println!("leftovers: clean");
    } else {
        println!("leftovers: LEFT{}", left.as_str());
    }
    park()
}

/// A small fixed buffer for building a line.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            bytes: [0; 256],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(core::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
