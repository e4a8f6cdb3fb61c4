/* jitfault: exceptions in the middle of long hot blocks. A straight-line routine is run often
 * enough to be translated, then called with an address that faults (load and store access
 * faults, a misaligned access) or reaches an illegal instruction; the handler prints mepc (as
 * an offset into the routine), mtval, mcause and how many instructions retired since the call
 * (minstret), which must be the same whichever engine runs it. */
#include "guest.h"

static volatile uint64_t cell[4];
static uint64_t start_ret;
static uint64_t traps;

/* Long block: ALU work, a load from p, more work, a store to q, more work. */
static uint64_t __attribute__((noinline, aligned(64))) work(volatile uint64_t *p, volatile uint64_t *q, uint64_t x)
{
    x = x * 3 + 1;
    x ^= x >> 7;
    x += x << 3;
    x ^= x >> 11;
    x = x * 5 + 9;
    x ^= x << 2;
    uint64_t v = *p;
    x += v;
    x ^= x >> 13;
    x = x * 7 + 3;
    x ^= x << 5;
    *q = x;
    x += x >> 3;
    x ^= 0x55aa;
    return x;
}

/* Long block ending in an illegal instruction (an all-zero word). */
static uint64_t __attribute__((noinline, aligned(64))) work_illegal(uint64_t x, int bad)
{
    x = x * 3 + 1;
    x ^= x >> 7;
    x += x << 3;
    if (bad)
        __asm__ volatile(".word 0x00000000");
    x ^= x >> 11;
    return x;
}

void mtrap_handler(struct trap_frame *f)
{
    uint64_t now = read_csr(minstret);
    traps++;
    printf("trap: mcause=%lx mepc=work+%lx mtval=%lx retired=%lu\n", f->cause,
           f->epc - (f->cause == 2 ? (uint64_t)(uintptr_t)work_illegal : (uint64_t)(uintptr_t)work),
           f->cause == 2 ? f->tval : f->tval - (f->tval >= 0x80000000UL ? (uint64_t)(uintptr_t)cell : 0),
           now - start_ret);
    f->epc += insn_len(f->epc);
}

static void call(const char *what, volatile uint64_t *p, volatile uint64_t *q)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 200; i++)
        x += work(&cell[0], &cell[1], i);
    start_ret = read_csr(minstret);
    x += work(p, q, 42);
    printf("%s: x=%lx traps=%lu\n", what, x, traps);
}

int main(void)
{
    uart_init();
    puts_("jitfault: traps in the middle of translated blocks\n");
    call("ok", &cell[0], &cell[1]);
    call("load access fault", (volatile uint64_t *)0x40, &cell[1]);
    call("store access fault", &cell[0], (volatile uint64_t *)0x48);
    call("both", (volatile uint64_t *)0x50, (volatile uint64_t *)0x58);
    call("misaligned", (volatile uint64_t *)((uintptr_t)&cell[0] + 3), (volatile uint64_t *)((uintptr_t)&cell[1] + 5));
    uint64_t x = 0;
    for (unsigned i = 0; i < 200; i++)
        x += work_illegal(i, 0);
    start_ret = read_csr(minstret);
    x += work_illegal(7, 1);
    printf("illegal: x=%lx traps=%lu\n", x, traps);
    puts_("jitfault finished: pass\n");
    exit(0);
}
