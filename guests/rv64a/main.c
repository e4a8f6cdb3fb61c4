/* rv64a: LR/SC success and failure, every AMO in .w and .d forms, misaligned AMO traps. */
#include "check.h"

void mtrap_handler(struct trap_frame *f)
{
    printf("trap mcause=%lx mtval_is_addr=%d\n", f->cause, f->tval != 0);
    f->epc += insn_len(f->epc);
}

static volatile uint64_t cell[4] __attribute__((aligned(16)));

#define AMO(op, init, src)                                                                     \
    do {                                                                                       \
        cell[0] = (init);                                                                      \
        uint64_t __old;                                                                        \
        __asm__ volatile(op " %0, %1, (%2)" : "=r"(__old) : "r"((uint64_t)(src)), "r"(&cell[0]) : "memory"); \
        printf("%s %016lx %016lx: old %016lx new %016lx\n", op, (uint64_t)(init), (uint64_t)(src), __old, cell[0]); \
    } while (0)

static const uint64_t A_VALS[] = {0, 1, 0xffffffffffffffffULL, 0x7fffffff80000000ULL, 0x80000000ffffffffULL,
                                  0x00000000fffffffeULL};
#define N_A (sizeof(A_VALS) / sizeof(A_VALS[0]))

int main(void)
{
    uint64_t r, v;
    puts_("rv64a known answers\n");

    cell[0] = 0x1111;
    __asm__ volatile("lr.d %0, (%2)\n sc.d %1, %3, (%2)" : "=&r"(v), "=&r"(r) : "r"(&cell[0]), "r"(0x2222ULL) : "memory");
    printf("lr.d/sc.d: loaded %lx sc=%lx mem=%lx\n", v, r, cell[0]);
    __asm__ volatile("sc.d %0, %2, (%1)" : "=&r"(r) : "r"(&cell[0]), "r"(0x3333ULL) : "memory");
    printf("second sc.d: sc=%lx mem=%lx\n", r, cell[0]);
    cell[1] = 0xffffffff87654321ULL;
    __asm__ volatile("lr.w %0, (%2)\n sc.w %1, %3, (%2)" : "=&r"(v), "=&r"(r) : "r"(&cell[1]), "r"(0xaaaabbbbccccddddULL) : "memory");
    printf("lr.w/sc.w: loaded %lx sc=%lx mem=%lx\n", v, r, cell[1]);
    __asm__ volatile("lr.d %0, (%2)\n sc.d %1, %3, (%4)" : "=&r"(v), "=&r"(r) : "r"(&cell[0]), "r"(0x4444ULL), "r"(&cell[2]) : "memory");
    printf("sc.d to another address: sc=%lx mem=%lx\n", r, cell[2]);

    for (unsigned i = 0; i < N_A; i++)
        for (unsigned j = 0; j < N_A; j++) {
            uint64_t x = A_VALS[i], y = A_VALS[j];
            AMO("amoswap.d", x, y);
            AMO("amoadd.d", x, y);
            AMO("amoxor.d", x, y);
            AMO("amoand.d", x, y);
            AMO("amoor.d", x, y);
            AMO("amomin.d", x, y);
            AMO("amomax.d", x, y);
            AMO("amominu.d", x, y);
            AMO("amomaxu.d", x, y);
            AMO("amoswap.w", x, y);
            AMO("amoadd.w", x, y);
            AMO("amoxor.w", x, y);
            AMO("amoand.w", x, y);
            AMO("amoor.w", x, y);
            AMO("amomin.w", x, y);
            AMO("amomax.w", x, y);
            AMO("amominu.w", x, y);
            AMO("amomaxu.w", x, y);
        }
    AMO("amoadd.w.aq", 5, 6);
    AMO("amoadd.d.aqrl", 5, 6);
    /* .w on the upper word of a doubleword leaves the low word alone. */
    cell[0] = 0x1111111122222222ULL;
    __asm__ volatile("amoadd.w %0, %1, (%2)" : "=r"(r) : "r"(1ULL), "r"((uint8_t *)&cell[0] + 4) : "memory");
    printf("amoadd.w upper half: old %lx mem %lx\n", r, cell[0]);

    puts_("misaligned atomics:\n");
    /* Only LR is checked: QEMU 7.2 reports misaligned AMOs as load faults and skips the check for a
       failing SC, both unlike the spec, so those cases are left out of the known answers. */
    __asm__ volatile("lr.d %0, (%1)" : "=r"(r) : "r"((uint8_t *)&cell[0] + 4) : "memory");
    __asm__ volatile("lr.w %0, (%1)" : "=r"(r) : "r"((uint8_t *)&cell[0] + 2) : "memory");
    puts_("rv64a done\n");
    return 0;
}
