/* bench: CPU-bound integer work (~1.5e9 instructions) under a 1 kHz machine-timer interrupt. */
#include "guest.h"

#define TICK 10000 /* 1 ms at the 10 MHz timebase */
#define ROUNDS 2000
#define BUF_WORDS 1024
/* ROUNDS x ROUND_SETS rounds: 25 sets are ~1.6e9 instructions; guests/build.sh also builds
 * bench_long with 154 (~1.0e10, for seek and reverse-step latency on a long recording). */
#ifndef ROUND_SETS
#define ROUND_SETS 25
#endif

static volatile uint64_t ticks;
static uint64_t next_deadline;
static uint64_t buf[BUF_WORDS];

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        ticks++;
        /* Fixed period: deadlines do not drift with handler latency. */
        next_deadline += TICK;
        clint_set_mtimecmp(next_deadline);
        return;
    }
    printf("unexpected trap: mcause=%lx mepc=%lx mtval=%lx\n", f->cause, f->epc, f->tval);
    exit(3);
}

/* One round: a mix of arithmetic, multiplies, memory traffic and data-dependent branches. */
static uint64_t __attribute__((noinline)) round_work(uint64_t seed)
{
    uint64_t x = seed, acc = 0;
    for (unsigned i = 0; i < BUF_WORDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t *p = &buf[x & (BUF_WORDS - 1)];
        uint64_t v = *p;
        if (v & 1)
            acc += v * 0x9e3779b97f4a7c15ULL;
        else
            acc ^= (v >> 3) + i;
        if ((x >> 5) & 3)
            acc = (acc << 1) | (acc >> 63);
        *p = v + x + acc;
        buf[i] ^= acc;
    }
    return acc;
}

int main(void)
{
    uart_init();
    puts_("bench: integer mix, 1 kHz timer\n");
    for (unsigned i = 0; i < BUF_WORDS; i++)
        buf[i] = i * 0x0123456789abcdefULL;

    next_deadline = clint_mtime() + TICK;
    clint_set_mtimecmp(next_deadline);
    set_csr(mie, MIP_MTIP);
    set_csr(mstatus, MSTATUS_MIE);

    uint64_t sum = 0;
    for (unsigned r = 0; r < ROUNDS * ROUND_SETS; r++)
        sum = sum * 31 + round_work(sum + r + 1);

    clear_csr(mstatus, MSTATUS_MIE);
    uint64_t t = ticks;
    printf("bench checksum 0x%016lx\n", sum);
    /* The tick count is deterministic on rewind; QEMU's virtual clock may differ by a tick. */
    printf("bench ticks %lu\n", t);
    puts_("bench finished: pass\n");
    return 0;
}
