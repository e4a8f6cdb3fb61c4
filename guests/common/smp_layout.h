/* Per-hart memory of the SMP guests (shared by start_smp.S and C). */
#ifndef SMP_LAYOUT_H
#define SMP_LAYOUT_H
#define SMP_MAX_HARTS 8
/* Each hart: SMP_HART_AREA bytes after _end; the top SMP_TRAP_STACK bytes are its M trap stack. */
#define SMP_HART_AREA 0x8000
#define SMP_TRAP_STACK 0x2000
#endif
