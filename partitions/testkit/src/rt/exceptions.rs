//! EL1 exception vectors, fault catching for probes, and the report of
//! anything unexpected.
//!
//! Every vector saves the full integer and FP/SIMD state in a [`TrapFrame`]
//! on the current stack and calls [`trap`]. IRQs go to the GIC dispatcher.
//! A synchronous data abort (or an SError) taken while this vCPU is inside
//! [`read_u64`]/[`write_u64`] is recorded and the access skipped; any other
//! exception prints `<bin>: unexpected exception esr=.. elr=.. far=..` and
//! stops the vCPU.

use super::{cpu, gic, name, park};
use crate::MAX_CPUS;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Registers saved on exception entry; `elr` may be changed to resume
/// elsewhere.
#[repr(C)]
pub struct TrapFrame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub fpsr: u64,
    pub fpcr: u64,
    _pad: u64,
    pub q: [u128; 32],
}

const FRAME_SIZE: usize = 800;
const _: () = assert!(core::mem::size_of::<TrapFrame>() == FRAME_SIZE);

/// Vector kinds (entry index in the table).
const CURRENT_SPX_SYNC: u64 = 4;
const CURRENT_SPX_IRQ: u64 = 5;
const CURRENT_SPX_SERROR: u64 = 7;
const LOWER_AARCH64_IRQ: u64 = 9;
const LOWER_AARCH32_IRQ: u64 = 13;

global_asm!(
    r#"
    .section .text.vectors, "ax"
    .balign 0x800
    .global __testkit_vectors
__testkit_vectors:
    .irp kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp]
    mov     x0, #\kind
    b       __testkit_trap_common
    .endr

__testkit_trap_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x1, elr_el1
    stp     x30, x1, [sp, #240]
    mrs     x1, spsr_el1
    mrs     x2, fpsr
    stp     x1, x2, [sp, #256]
    mrs     x1, fpcr
    str     x1, [sp, #272]
    add     x1, sp, #288
    stp     q0, q1, [x1, #0]
    stp     q2, q3, [x1, #32]
    stp     q4, q5, [x1, #64]
    stp     q6, q7, [x1, #96]
    stp     q8, q9, [x1, #128]
    stp     q10, q11, [x1, #160]
    stp     q12, q13, [x1, #192]
    stp     q14, q15, [x1, #224]
    stp     q16, q17, [x1, #256]
    stp     q18, q19, [x1, #288]
    stp     q20, q21, [x1, #320]
    stp     q22, q23, [x1, #352]
    stp     q24, q25, [x1, #384]
    stp     q26, q27, [x1, #416]
    stp     q28, q29, [x1, #448]
    stp     q30, q31, [x1, #480]

    mov     x1, x0
    mov     x0, sp
    bl      {trap}

    add     x1, sp, #288
    ldp     q0, q1, [x1, #0]
    ldp     q2, q3, [x1, #32]
    ldp     q4, q5, [x1, #64]
    ldp     q6, q7, [x1, #96]
    ldp     q8, q9, [x1, #128]
    ldp     q10, q11, [x1, #160]
    ldp     q12, q13, [x1, #192]
    ldp     q14, q15, [x1, #224]
    ldp     q16, q17, [x1, #256]
    ldp     q18, q19, [x1, #288]
    ldp     q20, q21, [x1, #320]
    ldp     q22, q23, [x1, #352]
    ldp     q24, q25, [x1, #384]
    ldp     q26, q27, [x1, #416]
    ldp     q28, q29, [x1, #448]
    ldp     q30, q31, [x1, #480]
    ldr     x1, [sp, #272]
    msr     fpcr, x1
    ldp     x1, x2, [sp, #256]
    msr     spsr_el1, x1
    msr     fpsr, x2
    ldp     x30, x1, [sp, #240]
    msr     elr_el1, x1
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    trap = sym trap,
);

/// A caught abort: the syndrome and fault address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub esr: u64,
    pub far: u64,
}

/// Per vCPU: 0 = not catching, `ARMED` = catching and nothing caught yet,
/// else the caught ESR with `CAUGHT` set.
static CATCH_ESR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static CATCH_FAR: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
const ARMED: u64 = 1 << 63;
const CAUGHT: u64 = 1 << 62;

/// Called for an uncaught synchronous abort instead of the generic report.
static ABORT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// ESR_EL1 exception classes.
const EC_DATA_ABORT_LOWER: u64 = 0x24;
const EC_DATA_ABORT_SAME: u64 = 0x25;

fn esr() -> u64 {
    let value: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mrs {}, esr_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

fn far() -> u64 {
    let value: u64;
    // SAFETY: reads a register.
    unsafe { asm!("mrs {}, far_el1", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Exception class of an ESR value.
pub fn exception_class(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

fn arm() -> usize {
    let cpu = cpu::index();
    CATCH_ESR[cpu].store(ARMED, Ordering::Relaxed);
    cpu
}

fn disarm(cpu: usize) -> Result<(), Fault> {
    let state = CATCH_ESR[cpu].swap(0, Ordering::Relaxed);
    if state & CAUGHT != 0 {
        Err(Fault {
            esr: state & !CAUGHT,
            far: CATCH_FAR[cpu].load(Ordering::Relaxed),
        })
    } else {
        Ok(())
    }
}

/// One 64-bit load from `addr`; an abort it raises is caught and returned.
pub fn read_u64(addr: u64) -> Result<u64, Fault> {
    let cpu = arm();
    let value: u64;
    // SAFETY: a single load instruction; if it aborts, `trap` skips it (and
    // `value` is then meaningless). The address may be anything: that is the
    // point of a probe.
    unsafe {
        asm!("ldr {v}, [{a}]", "dsb sy", "isb", a = in(reg) addr, v = out(reg) value, options(nostack));
    }
    disarm(cpu).map(|()| value)
}

/// One 64-bit store of `value` to `addr`; an abort it raises is caught and
/// returned. The barriers give an asynchronous SError the chance to arrive
/// while the catcher is armed.
pub fn write_u64(addr: u64, value: u64) -> Result<(), Fault> {
    let cpu = arm();
    // SAFETY: as for `read_u64`; this writes to memory nobody else uses or to
    // a device on purpose.
    unsafe {
        asm!("str {v}, [{a}]", "dsb sy", "isb", a = in(reg) addr, v = in(reg) value, options(nostack));
    }
    disarm(cpu)
}

/// An instruction form for [`access`]: every size, sign-extending loads,
/// pairs, exclusives, acquire/release, and writeback addressing (the last
/// three give the hypervisor no instruction syndrome to emulate from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Ldrb,
    Ldrh,
    LdrW,
    LdrX,
    Ldrsb,
    Ldrsh,
    Ldrsw,
    Strb,
    Strh,
    StrW,
    StrX,
    Ldp,
    Stp,
    LdrPostIndex,
    StrPreIndex,
    Ldxr,
    Ldar,
    Stlr,
}

impl Form {
    /// Every form, in a fixed order.
    pub const ALL: [Form; 18] = [
        Form::Ldrb,
        Form::Ldrh,
        Form::LdrW,
        Form::LdrX,
        Form::Ldrsb,
        Form::Ldrsh,
        Form::Ldrsw,
        Form::Strb,
        Form::Strh,
        Form::StrW,
        Form::StrX,
        Form::Ldp,
        Form::Stp,
        Form::LdrPostIndex,
        Form::StrPreIndex,
        Form::Ldxr,
        Form::Ldar,
        Form::Stlr,
    ];

    /// Bytes it touches from `addr` (an access of these must be naturally
    /// aligned to `alignment`).
    pub fn alignment(self) -> u64 {
        match self {
            Form::Ldrb | Form::Strb | Form::Ldrsb => 1,
            Form::Ldrh | Form::Strh | Form::Ldrsh => 2,
            Form::LdrW | Form::StrW | Form::Ldrsw => 4,
            _ => 8,
        }
    }
}

/// One access of `form` at `addr` (stores write `value`); an abort it
/// raises is caught and returned. Returns what a load read (for a pair,
/// the first register).
pub fn access(form: Form, addr: u64, value: u64) -> Result<u64, Fault> {
    let cpu = arm();
    let mut v: u64 = 0;
    let mut base = addr;
    // SAFETY: a single load or store on purpose at any address (a probe);
    // if it aborts, `trap` skips it. Writeback forms only change `base`,
    // a local.
    unsafe {
        match form {
            Form::Ldrb => asm!("ldrb {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Ldrh => asm!("ldrh {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::LdrW => asm!("ldr {v:w}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::LdrX => asm!("ldr {v}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Ldrsb => asm!("ldrsb {v}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Ldrsh => asm!("ldrsh {v}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Ldrsw => asm!("ldrsw {v}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Strb => asm!("strb {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value),
            Form::Strh => asm!("strh {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value),
            Form::StrW => asm!("str {v:w}, [{a}]", a = in(reg) addr, v = in(reg) value),
            Form::StrX => asm!("str {v}, [{a}]", a = in(reg) addr, v = in(reg) value),
            Form::Ldp => {
                asm!("ldp {v}, {w}, [{a}]", a = in(reg) addr, v = out(reg) v, w = out(reg) _)
            }
            Form::Stp => asm!("stp {v}, {v}, [{a}]", a = in(reg) addr, v = in(reg) value),
            Form::LdrPostIndex => asm!("ldr {v}, [{a}], #8", a = inout(reg) base, v = out(reg) v),
            Form::StrPreIndex => {
                asm!("str {v}, [{a}, #0]!", a = inout(reg) base, v = in(reg) value)
            }
            Form::Ldxr => asm!("ldxr {v}, [{a}]", "clrex", a = in(reg) addr, v = out(reg) v),
            Form::Ldar => asm!("ldar {v}, [{a}]", a = in(reg) addr, v = out(reg) v),
            Form::Stlr => asm!("stlr {v}, [{a}]", a = in(reg) addr, v = in(reg) value),
        }
        asm!("dsb sy", "isb", options(nostack));
    }
    let _ = base;
    disarm(cpu).map(|()| v)
}

/// Makes uncaught synchronous aborts (data or instruction) call `hook`
/// instead of printing the generic report.
pub fn set_abort_hook(hook: fn(Fault) -> !) {
    ABORT_HOOK.store(hook as usize, Ordering::Release);
}

extern "C" fn trap(frame: &mut TrapFrame, kind: u64) {
    match kind {
        // From this kernel, or from user code it runs (`aarch32`).
        CURRENT_SPX_IRQ | LOWER_AARCH64_IRQ | LOWER_AARCH32_IRQ => gic::handle_irq(),
        CURRENT_SPX_SYNC => synchronous(frame),
        CURRENT_SPX_SERROR if caught(esr()) => {}
        _ => unexpected(frame),
    }
}

/// Records the fault if this vCPU is catching; returns whether it was.
fn caught(esr: u64) -> bool {
    let cpu = cpu::index();
    let Some(slot) = CATCH_ESR.get(cpu) else {
        return false;
    };
    if slot.load(Ordering::Relaxed) != ARMED {
        return false;
    }
    CATCH_FAR[cpu].store(far(), Ordering::Relaxed);
    slot.store(esr | CAUGHT, Ordering::Relaxed);
    true
}

fn synchronous(frame: &mut TrapFrame) {
    let esr = esr();
    let class = exception_class(esr);
    if class == EC_DATA_ABORT_SAME && caught(esr) {
        frame.elr += 4;
        return;
    }
    let hook = ABORT_HOOK.load(Ordering::Acquire);
    if hook != 0
        && matches!(
            class,
            EC_DATA_ABORT_LOWER | EC_DATA_ABORT_SAME | 0x20 | 0x21
        )
    {
        // SAFETY: only `set_abort_hook` stores into ABORT_HOOK.
        let hook: fn(Fault) -> ! = unsafe { core::mem::transmute::<usize, fn(Fault) -> !>(hook) };
        hook(Fault { esr, far: far() });
    }
    unexpected(frame)
}

fn unexpected(frame: &TrapFrame) -> ! {
    crate::println!(
        "{}: unexpected exception esr=0x{:x} elr=0x{:x} far=0x{:x}",
        name(),
        esr(),
        frame.elr,
        far()
    );
    park()
}
