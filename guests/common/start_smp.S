/* Entry for the SMP guests (guests/smp_*; start.S, used by every other guest, parks all harts
   but 0). Every hart with id < SMP_MAX_HARTS runs main(hartid, fdt); the others park.
   Per-hart stacks (SMP_HART_AREA bytes each: main stack, then M trap stack via mscratch) lie after
   _end, outside .bss, so hart 0 can zero .bss while the others already have a stack.
   Hart 0 zeroes .bss and then releases the others through smp_boot_go (in .data, so the zeroing
   cannot clear it). Hart 0's return from main exits with its value; the others park in wfi. */
    .file "start_smp.S"
#include "trap_macros.h"
#include "smp_layout.h"

    .section .text.init, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    csrr s0, mhartid
    mv s1, a1
    li t0, SMP_MAX_HARTS
    bgeu s0, t0, park
    /* Area of hart h: [base + h * AREA, base + (h + 1) * AREA), base = _end rounded up to a page. */
    la t0, _end
    li t1, 4095
    add t0, t0, t1
    not t1, t1
    and t0, t0, t1
    addi t1, s0, 1
    li t2, SMP_HART_AREA
    mul t1, t1, t2
    add t0, t0, t1
    csrw mscratch, t0
    li t1, SMP_TRAP_STACK
    sub sp, t0, t1
    /* No S-mode trap stack: sscratch is left alone (the SMP guests stay in M). */
    la t0, mtrap_entry
    csrw mtvec, t0
    /* One PMP entry covering everything, as start.S does. */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    /* FPU on (mstatus.FS = Initial), fcsr cleared. */
    li t0, (1 << 13)
    csrs mstatus, t0
    fscsr zero
    bnez s0, wait_boot
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:  la t0, smp_boot_go
    li t1, 1
    /* Release: .bss is zero before any other hart sees the flag. */
    amoswap.w.rl zero, t1, (t0)
    mv a0, s0
    mv a1, s1
    call main
    call exit
wait_boot:
    la t0, smp_boot_go
3:  lw t1, 0(t0)
    bnez t1, 4f
    .insn i MISC_MEM, 0, x0, x0, 0x10  /* pause (Zihintpause; a fence hint elsewhere) */
    j 3b
4:  fence r, rw
    mv a0, s0
    mv a1, s1
    call main
park:
    csrci mstatus, 8
    csrw mie, zero
5:  wfi
    j 5b

    .text
    TRAP_ENTRY mtrap_entry, mtrap_handler, mscratch, mepc, mcause, mtval, mret

    .data
    .align 2
    .globl smp_boot_go
smp_boot_go:
    .word 0
