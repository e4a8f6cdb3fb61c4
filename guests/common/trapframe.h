/* Trap frame layout shared by start.S and C code. */
#ifndef TRAPFRAME_H
#define TRAPFRAME_H
#define TF_EPC (32 * 8)
#define TF_CAUSE (33 * 8)
#define TF_TVAL (34 * 8)
#define TF_SIZE (36 * 8)
#define LOWER_EXIT_MAGIC 0x5eed
#ifndef __ASSEMBLER__
#include <stdint.h>
struct trap_frame {
    uint64_t x[32]; /* x[0] unused; x[2] is the interrupted sp */
    uint64_t epc;
    uint64_t cause;
    uint64_t tval;
    uint64_t pad;
};
#endif
#endif
