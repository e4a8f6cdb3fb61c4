/* Common entry for every guest: M-mode, a0 = hartid, a1 = fdt. */
    .file "start.S"
#include "trap_macros.h"

    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    /* Only hart 0 runs the guest; other harts park. */
    bnez a0, park
    la sp, _stack_top
    /* Zero .bss. */
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    /* Trap stacks are swapped in through the scratch CSRs. */
    la t0, _mtrap_stack_top
    csrw mscratch, t0
    la t0, _strap_stack_top
    csrw sscratch, t0
    la t0, mtrap_entry
    csrw mtvec, t0
    /* One PMP entry covering everything, so S and U mode may access memory (guests may override). */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    /* Enable the FPU (mstatus.FS = Initial) and clear fcsr. */
    li t0, (1 << 13)
    csrs mstatus, t0
    fscsr zero
    call main
    call exit
park:
    wfi
    j park

    .text
    TRAP_ENTRY mtrap_entry, mtrap_handler, mscratch, mepc, mcause, mtval, mret
    TRAP_ENTRY strap_entry, strap_handler, sscratch, sepc, scause, stval, sret

/* run_lower(mode, fn, arg): run fn(arg) in mode (0 = U, 1 = S) until it returns (or calls lower_exit);
   returns fn's result in M-mode. Callee-saved state is kept in lower_ctx and restored by lower_return(). */
    .globl run_lower
run_lower:
    la t0, lower_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd s2, 32(t0)
    sd s3, 40(t0)
    sd s4, 48(t0)
    sd s5, 56(t0)
    sd s6, 64(t0)
    sd s7, 72(t0)
    sd s8, 80(t0)
    sd s9, 88(t0)
    sd s10, 96(t0)
    sd s11, 104(t0)
    sd gp, 112(t0)
    sd tp, 120(t0)
    li t0, (3 << 11)
    csrc mstatus, t0
    slli a0, a0, 11
    csrs mstatus, a0
    csrw mepc, a1
    mv a0, a2
    la ra, lower_exit
    mret
    .globl lower_exit
lower_exit:
    li a7, LOWER_EXIT_MAGIC
    ecall
1:  j 1b
