//! `hostile`: a partition that attacks the hypervisor through every door it
//! has, as a guest we did not write might, while the scenario checks that
//! the partition beside it never notices. Run with `on_fault = "inject"`
//! (every abort comes back to it) and two vCPUs. Its own interrupts are
//! not needed (it polls), because it wrecks its own vGIC on purpose.
//!
//! Phases, each ending with a line:
//! 1. `mmio`: every instruction form (all sizes, sign-extending, pairs,
//!    exclusive, acquire/release, writeback) at every offset of the start
//!    and end of each emulated window (vGIC distributor and redistributor
//!    frames, UART, virtio-mmio slots) and just past them, loads and stores
//!    of changing values (but the UART's data register, which would only
//!    flood its own console);
//! 2. `firmware`: HVC and SMC with random function ids and arguments,
//!    checking x4-x17 come back as they went (SMCCC 1.1);
//! 3. `psci`: CPU_ON and AFFINITY_INFO of cores it does not own, entry
//!    points outside its memory, strange affinity levels;
//! 4. `sgi`: ICC_SGI1R_EL1 with every routing mode and target form;
//! 5. `race`: its second vCPU keeps calling PSCI and sending SGIs while the
//!    first resets the partition (PSCI SYSTEM_RESET), `boots=<n>` times
//!    (bootargs, default 5).
//!
//! ```text
//! hostile: boot <restarts>
//! hostile: mmio windows=<n> accesses=<n> faults=<n>
//! hostile: firmware calls=<n> clobbered=<n>
//! hostile: psci calls=<n> accepted=<n>
//! hostile: sgi writes=<n>
//! hostile: race reset
//! hostile: done boots=<n>
//! ```

#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use testkit::rt::exceptions::{Form, access};
use testkit::rt::{cpu, platform, psci, timer};
use testkit::{args, dt, println};

testkit::entry!("hostile", main);

/// Bytes swept at the start and at the end of each window, and past it.
const EDGE: u64 = 0x40;
/// The redistributor's SGI/PPI frame, swept too.
const SGI_FRAME: u64 = 0x1_0000;

fn main() -> ! {
    let p = platform();
    let boot = p.restart_count;
    println!("hostile: boot {}", boot);
    let boots: u32 = args::value(p.bootargs, "boots")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if boot + 1 >= boots {
        println!("hostile: done boots={}", boot + 1);
        loop {
            timer::sleep_ms(1000);
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(boot));
    mmio(&mut rng);
    firmware(&mut rng);
    psci_abuse();
    sgi(&mut rng);
    race()
}

/// xorshift64*: reproducible junk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn mmio(rng: &mut Rng) {
    let p = platform();
    let dt = testkit::rt::device_tree();
    let mut windows = [(0u64, 0u64, ""); 8];
    let mut count = 0;
    let mut add = |window: (u64, u64, &'static str)| {
        if let Some(slot) = windows.get_mut(count) {
            *slot = window;
            count += 1;
        }
    };
    if let Some(gicd) = p.gicd {
        add((gicd as u64, 0x1_0000, "gicd"));
    }
    if let Some((base, size)) = p.gicr {
        add((base as u64, size as u64, "gicr"));
    }
    if let Some(uart) = p.uart {
        add((uart as u64, 0x1000, "uart"));
    }
    for v in dt::virtio_mmio(&dt) {
        add((v.base as u64, v.size.max(0x200) as u64, "virtio"));
    }
    let (mut accesses, mut faults) = (0u32, 0u32);
    for &(base, size, name) in &windows[..count] {
        // The start, the end and just past it; in a redistributor also
        // its SGI/PPI frame and the last priority bytes (the review's
        // `ldrb` at 0x1041d) and beyond.
        let gicr = if name == "gicr" { 1 } else { 0 };
        let offsets = (0..EDGE).chain(size - EDGE..size + EDGE).chain(
            (SGI_FRAME..SGI_FRAME + EDGE * gicr)
                .chain(SGI_FRAME + 0x418..SGI_FRAME + 0x418 + 0x10 * gicr),
        );
        for offset in offsets {
            for form in Form::ALL {
                let store = matches!(
                    form,
                    Form::Strb
                        | Form::Strh
                        | Form::StrW
                        | Form::StrX
                        | Form::Stp
                        | Form::StrPreIndex
                        | Form::Stlr
                );
                if store && name == "uart" && offset < 4 {
                    continue;
                }
                accesses += 1;
                if access(form, base + offset, rng.next()).is_err() {
                    faults += 1;
                }
            }
        }
    }
    println!(
        "hostile: mmio windows={} accesses={} faults={}",
        count, accesses, faults
    );
}

/// PSCI calls that would end the attack early, or that phase 3 makes on
/// purpose.
fn harmless(fid: u32) -> bool {
    !matches!(
        fid,
        0x8400_0002 | 0x8400_0008 | 0x8400_0009 | 0x8400_0003 | 0xc400_0003
    )
}

fn firmware(rng: &mut Rng) {
    let (mut calls, mut clobbered) = (0u32, 0u32);
    for i in 0..2000 {
        let fid = match rng.next() % 4 {
            // Around the PSCI and SMCCC ranges, and anywhere.
            0 => 0x8400_0000 | (rng.next() as u32 & 0x1f),
            1 => 0xc400_0000 | (rng.next() as u32 & 0x1f),
            2 => 0x8000_0000 | (rng.next() as u32 & 0xffff),
            _ => rng.next() as u32,
        };
        if !harmless(fid) {
            continue;
        }
        let args = [rng.next(), rng.next(), rng.next()];
        calls += 1;
        if !call_preserves(i % 2 == 0, u64::from(fid) | (rng.next() << 32), args) {
            clobbered += 1;
        }
    }
    println!("hostile: firmware calls={} clobbered={}", calls, clobbered);
}

/// An HVC (or SMC) with x4-x17 set to known values; whether they came back
/// unchanged.
fn call_preserves(hvc: bool, x0: u64, a: [u64; 3]) -> bool {
    let mut out = [0u64; 14];
    let pattern = 0x5a5a_0000_0000_0000u64;
    // One asm block per conduit (the instruction is part of the template).
    macro_rules! call {
        ($instruction:literal) => {
            // SAFETY: a call to the hypervisor with every register it may
            // touch declared; x4-x17 are loaded with a pattern and stored
            // back.
            unsafe {
                asm!(
                    "mov x4, {p}", "add x5, x4, #1", "add x6, x4, #2", "add x7, x4, #3",
                    "add x8, x4, #4", "add x9, x4, #5", "add x10, x4, #6", "add x11, x4, #7",
                    "add x12, x4, #8", "add x13, x4, #9", "add x14, x4, #10",
                    "add x15, x4, #11", "add x16, x4, #12", "add x17, x4, #13",
                    $instruction,
                    "stp x4, x5, [{o}]", "stp x6, x7, [{o}, #16]", "stp x8, x9, [{o}, #32]",
                    "stp x10, x11, [{o}, #48]", "stp x12, x13, [{o}, #64]",
                    "stp x14, x15, [{o}, #80]", "stp x16, x17, [{o}, #96]",
                    p = in(reg) pattern, o = in(reg) out.as_mut_ptr(),
                    inout("x0") x0 => _, inout("x1") a[0] => _, inout("x2") a[1] => _,
                    inout("x3") a[2] => _,
                    out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _,
                    out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
                    out("x14") _, out("x15") _, out("x16") _, out("x17") _,
                )
            }
        };
    }
    if hvc {
        call!("hvc #0");
    } else {
        call!("smc #0");
    }
    out.iter()
        .enumerate()
        .all(|(i, &v)| v == pattern + i as u64)
}

fn psci_abuse() {
    let p = platform();
    let memory_end = 0x4000_0000 + p.memory_bytes;
    let targets = [
        2u64,
        3,
        0xff,
        0x100,
        0x1_0000,
        0xff_00ff_ffff,
        u64::MAX,
        1 << 40,
    ];
    let entries = [0u64, 0x4000_0000 - 4, memory_end, 0x4800_0000, u64::MAX];
    let (mut calls, mut accepted) = (0u32, 0u32);
    for &target in &targets {
        for &entry in &entries {
            calls += 1;
            if psci::cpu_on(target, entry, 0) == psci::SUCCESS {
                accepted += 1;
            }
        }
        for level in [0u64, 1, 2, 3, 4, u64::MAX] {
            calls += 1;
            psci::call(psci::AFFINITY_INFO, target, level, 0);
        }
    }
    // Its own second vCPU, but at an entry outside its memory.
    for &entry in &entries {
        calls += 1;
        if psci::cpu_on(1, entry, 0) == psci::SUCCESS {
            accepted += 1;
        }
    }
    // Calls that are not emulated.
    for fid in [
        0x8400_0001u32,
        0xc400_0001,
        0x8400_0005,
        0x8400_0006,
        0x8400_000c,
    ] {
        calls += 1;
        psci::call(fid, u64::MAX, u64::MAX, u64::MAX);
    }
    println!("hostile: psci calls={} accepted={}", calls, accepted);
}

fn sgi(rng: &mut Rng) {
    let mut writes = 0u32;
    for _ in 0..2000 {
        let value = match rng.next() % 4 {
            // Broadcast to all but self.
            0 => (1 << 40) | (rng.next() & (0xf << 24)),
            // Target lists with every range selector and affinity.
            1 => rng.next() & 0x00ff_ffff_0fff_ffff,
            // Its own vCPUs.
            2 => (rng.next() & (0xf << 24)) | (rng.next() & 0b11),
            _ => rng.next(),
        };
        // SAFETY: writing the SGI register only sends SGIs.
        unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack)) };
        writes += 1;
    }
    println!("hostile: sgi writes={}", writes);
}

static RACING: AtomicBool = AtomicBool::new(false);

/// The second vCPU: PSCI calls and SGIs as fast as it can, until the
/// partition is reset under it.
fn racer(_index: usize) -> ! {
    RACING.store(true, Ordering::Release);
    let mut n = 0u64;
    loop {
        n += 1;
        psci::affinity_info(0);
        psci::cpu_on(0, 0x4008_0000, n);
        psci::cpu_on(1, 0x4008_0000, n);
        // SAFETY: sends SGI 1 to vCPU 0.
        unsafe { asm!("msr icc_sgi1r_el1, {}", in(reg) (1u64 << 24) | 1, options(nostack)) };
    }
}

fn race() -> ! {
    let p = platform();
    let second = p.cpu_mpidr.get(1).copied().unwrap_or(1);
    if cpu::start(second, 1, racer) == psci::SUCCESS {
        while !RACING.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }
    timer::sleep_ms(20);
    println!("hostile: race reset");
    psci::call(psci::SYSTEM_RESET, 0, 0, 0);
    println!("hostile: SYSTEM_RESET returned");
    loop {
        timer::sleep_ms(1000);
    }
}
