//! Entry points: the arm64 `Image` header with the boot vCPU's entry, and
//! the entry that PSCI `CPU_ON` starts secondary vCPUs at.
//!
//! Both end in the same path: stack for the vCPU (index in `tpidr_el1`),
//! FP/SIMD enabled, `VBAR_EL1` installed, then Rust.

use crate::MAX_CPUS;
use core::arch::global_asm;

/// Stack of each vCPU.
pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stacks([[u8; STACK_SIZE]; MAX_CPUS]);

/// In .bss (zeroed by the boot vCPU before anything runs on it).
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);

unsafe extern "C" {
    /// Where secondary vCPUs start (PSCI `CPU_ON` entry point; the context id
    /// in x0 is the vCPU index).
    pub fn __testkit_secondary_entry() -> !;
}

/// SCTLR_EL1 with the MMU and caches off, alignment checks off, little-endian
/// and the RES1 bits of ARMv8.0 set.
const SCTLR_EL1_MMU_OFF: u64 = 0x30d0_0800;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    /* arm64 Image header (64 bytes) */
    b       1f                  /* code0 */
    .long   0                   /* code1 */
    .quad   0x80000             /* text_offset */
    .quad   __image_size        /* image_size, bss included */
    .quad   0x2                 /* flags: little-endian, 4K pages */
    .quad   0                   /* res2 */
    .quad   0                   /* res3 */
    .quad   0                   /* res4 */
    .long   0x644d5241          /* magic "ARM\x64" */
    .long   0                   /* res5 */

1:  msr     daifset, #0xf
    mov     x19, x0             /* device tree */
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
2:  cmp     x1, x2
    b.hs    3f
    stp     xzr, xzr, [x1], #16
    b       2b
3:  mov     x0, #0              /* vCPU index */
    mov     x1, x19
    b       __testkit_cpu_start

    .section .text.testkit_boot, "ax"
    .global __testkit_secondary_entry
__testkit_secondary_entry:
    msr     daifset, #0xf       /* x0 = context id = vCPU index */
    mov     x1, #0
    /* fall through */

__testkit_cpu_start:
    cmp     x0, #{max_cpus}
    b.hs    9f
    msr     tpidr_el1, x0
    mov     x2, #{sctlr_lo}
    movk    x2, #{sctlr_hi}, lsl #16
    msr     sctlr_el1, x2
    isb
    adrp    x2, {stacks}
    add     x2, x2, :lo12:{stacks}
    add     x3, x0, #1
    mov     x4, #{stack_size}
    madd    x2, x3, x4, x2      /* top of this vCPU's stack */
    mov     sp, x2
    mov     x2, #(3 << 20)      /* CPACR_EL1.FPEN: no FP/SIMD traps */
    msr     cpacr_el1, x2
    adrp    x2, __testkit_vectors
    add     x2, x2, :lo12:__testkit_vectors
    msr     vbar_el1, x2
    isb
    mov     x29, xzr
    mov     x30, xzr
    bl      {rust_entry}
9:  wfe
    b       9b
"#,
    max_cpus = const MAX_CPUS,
    sctlr_lo = const SCTLR_EL1_MMU_OFF & 0xffff,
    sctlr_hi = const SCTLR_EL1_MMU_OFF >> 16,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    rust_entry = sym rust_entry,
);

/// First Rust code of every vCPU.
extern "C" fn rust_entry(index: usize, dtb: usize) -> ! {
    if index == 0 {
        super::boot_primary(dtb)
    } else {
        super::cpu::boot_secondary(index)
    }
}
