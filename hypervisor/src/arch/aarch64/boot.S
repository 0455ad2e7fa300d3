// Entry points, exception vectors and guest entry/exit.
//
// The image starts with an arm64 Linux `Image` header so that QEMU's
// -kernel loader and U-Boot's `booti` accept it. The primary core arrives
// here with x0 = physical address of the platform DTB, MMU off.
//
// Constants supplied by global_asm!: {stack_size}, {max_cpus}, {frame_size}.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry               // code0
    .long   0                           // code1
    .quad   __text_offset               // text_offset
    .quad   __image_size                // image_size, including bss
    .quad   0x2                         // flags: little endian, 4 KiB pages
    .quad   0, 0, 0                     // reserved
    .ascii  "ARM\x64"                   // magic
    .long   0                           // reserved (PE header offset)

.section .text
primary_entry:
    mov     x19, x0                     // keep the DTB pointer
    adrp    x1, __boot_stack_top
    add     x1, x1, :lo12:__boot_stack_top
    mov     sp, x1

    mrs     x1, CurrentEL
    lsr     x1, x1, #2
    cmp     x1, #2
    b.ne    1f

    // The image is not position independent: refuse to run elsewhere.
    adr     x2, _start
    ldr     x3, =_start
    cmp     x2, x3
    b.ne    2f

    // Zero .bss (stacks, page tables, statics; the heap region is
    // apart) before any Rust code runs: 16 bytes a store (both ends are
    // 16-byte aligned).
    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
3:  cmp     x1, x2
    b.hs    4f
    stp     xzr, xzr, [x1], #16
    b       3b
4:  mov     x0, x19
    bl      primary_main                // does not return

1:  mov     x0, x1                      // wrong exception level
    bl      wrong_exception_level       // does not return
2:  mov     x0, x2                      // wrong load address
    mov     x1, x3
    bl      wrong_load_address          // does not return

// Secondary cores, started through firmware PSCI CPU_ON with
// x0 = the hypervisor's logical CPU number.
.global secondary_entry
secondary_entry:
    mov     x19, x0
    adrp    x1, __stacks
    add     x1, x1, :lo12:__stacks
    add     x2, x0, #1
    mov     x3, #{stack_size}
    madd    x1, x2, x3, x1              // top of this core's stack
    mov     sp, x1
    mov     x0, x19
    bl      secondary_main              // does not return

// reset_stack_and_run(stack_top, f): abandon the current stack and run f.
.global reset_stack_and_run
reset_stack_and_run:
    mov     sp, x0
    mov     x29, xzr
    mov     x30, xzr
    br      x1

// ---------------------------------------------------------------- vectors

.macro SAVE_FRAME
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #16 * 0]
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    mrs     x0, elr_el2
    stp     x30, x0, [sp, #16 * 15]
    mrs     x0, spsr_el2
    str     x0, [sp, #16 * 16]
.endm

.macro VECTOR handler
    .balign 0x80
    b       \handler
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VECTOR  hv_exception_stub           // current EL with SP_EL0
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub           // current EL with SP_EL2: a hypervisor bug
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub
    VECTOR  lower_sync_stub             // lower EL, AArch64
    VECTOR  lower_irq_stub
    VECTOR  hv_exception_stub           // FIQ: not used
    VECTOR  lower_serror_stub
    VECTOR  hv_exception_stub           // lower EL, AArch32: only if EL1 ran
                                        // AArch32, which HCR_EL2.RW forbids; a
                                        // partition's AArch32 user code (EL0)
                                        // traps through the entries above
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub
    VECTOR  hv_exception_stub

.section .text
lower_sync_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      handle_lower_sync
    b       exit_to_guest

lower_irq_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      handle_lower_irq
    b       exit_to_guest

lower_serror_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      handle_lower_serror
    b       exit_to_guest

hv_exception_stub:
    SAVE_FRAME
    mov     x0, sp
    bl      handle_hv_exception         // does not return

exit_to_guest:
    mov     x0, sp
    add     x1, sp, #{frame_size}
    // fall through

// restore_and_eret(frame, stack_top): load the guest registers from
// `frame`, leave SP_EL2 at `stack_top` (where the next trap builds its
// frame) and return to the guest.
.global restore_and_eret
restore_and_eret:
    mov     sp, x1
    ldp     x30, x2, [x0, #16 * 15]
    msr     elr_el2, x2
    ldr     x2, [x0, #16 * 16]
    msr     spsr_el2, x2
    ldp     x2, x3, [x0, #16 * 1]
    ldp     x4, x5, [x0, #16 * 2]
    ldp     x6, x7, [x0, #16 * 3]
    ldp     x8, x9, [x0, #16 * 4]
    ldp     x10, x11, [x0, #16 * 5]
    ldp     x12, x13, [x0, #16 * 6]
    ldp     x14, x15, [x0, #16 * 7]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x18, x19, [x0, #16 * 9]
    ldp     x20, x21, [x0, #16 * 10]
    ldp     x22, x23, [x0, #16 * 11]
    ldp     x24, x25, [x0, #16 * 12]
    ldp     x26, x27, [x0, #16 * 13]
    ldp     x28, x29, [x0, #16 * 14]
    ldp     x0, x1, [x0, #16 * 0]
    eret

// ---------------------------------------------------------------- memory

.section .bss.stacks, "aw", @nobits
.balign 4096
.global __stacks
__stacks:
    .space  {stack_size} * {max_cpus}
.balign 16
    .space  {stack_size}                // the boot core's stack until it has a core number
__boot_stack_top:
