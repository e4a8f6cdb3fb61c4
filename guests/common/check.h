/* Helpers for known-answer guests: inline-asm wrappers that run one instruction. */
#ifndef CHECK_H
#define CHECK_H
#include "guest.h"

#define ASM_RR(op, a, b) ({ uint64_t __r; __asm__ volatile(op " %0, %1, %2" : "=r"(__r) : "r"((uint64_t)(a)), "r"((uint64_t)(b))); __r; })
#define ASM_RI(op, a, imm) ({ uint64_t __r; __asm__ volatile(op " %0, %1, %2" : "=r"(__r) : "r"((uint64_t)(a)), "i"(imm)); __r; })

/* Interesting 64-bit operands shared by the integer guests. */
static const uint64_t VALS[] = {
    0x0000000000000000ULL, 0x0000000000000001ULL, 0xffffffffffffffffULL, 0x7fffffffffffffffULL,
    0x8000000000000000ULL, 0x000000007fffffffULL, 0x0000000080000000ULL, 0x00000000ffffffffULL,
    0xffffffff80000000ULL, 0x123456789abcdef0ULL, 0x000000000000003fULL, 0xfedcba9876543210ULL,
};
#define NVALS (sizeof(VALS) / sizeof(VALS[0]))

/* Print "op a b -> r" for every operand pair. */
#define TABLE_RR(name)                                                                   \
    do {                                                                                 \
        for (unsigned __i = 0; __i < NVALS; __i++)                                       \
            for (unsigned __j = 0; __j < NVALS; __j++)                                   \
                printf("%s %x %x: 0x%016lx\n", name, __i, __j, ASM_RR(name, VALS[__i], VALS[__j])); \
    } while (0)

#endif
