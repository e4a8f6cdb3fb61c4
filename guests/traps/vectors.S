/* Vectored mtvec table for the traps guest: exceptions share entry 0, interrupts get their own. */
    .file "vectors.S"
#include "trap_macros.h"
    .text
    .align 8
    .globl mvec_table
    .option push
    .option norvc
mvec_table:
    j mtrap_entry        /* 0: exceptions */
    j mvec_bad
    j mvec_bad
    j mvec3_entry        /* 3: machine software interrupt */
    j mvec_bad
    j mvec_bad
    j mvec_bad
    j mvec7_entry        /* 7: machine timer interrupt */
    j mvec_bad
    j mvec_bad
    j mvec_bad
    j mvec_bad
    .option pop
mvec_bad:
    li a0, 7
    call exit

    TRAP_ENTRY mvec3_entry, mvec3_handler, mscratch, mepc, mcause, mtval, mret
    TRAP_ENTRY mvec7_entry, mvec7_handler, mscratch, mepc, mcause, mtval, mret
