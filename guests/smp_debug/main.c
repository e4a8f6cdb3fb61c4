/* smp_debug: the guest of the gdb tests with several harts (crates/cli/tests/gdb.rs, built -Og so
   that arguments and frames are as written). Every hart runs ROUNDS rounds; each round spins a
   while (longer on higher harts, so rounds span scheduler turns), then calls visit(hart, round) and,
   on hart 2 only, hart2_round(round). Hart 0 waits for the others and prints what they did. */
#include "smp.h"

#define ROUNDS 4

static volatile uint32_t nharts;   /* published by hart 0 */
static volatile uint32_t finished; /* harts done with their rounds */
static volatile uint64_t work[SMP_MAX_HARTS];
static volatile uint64_t hart2_last = ~0ULL;

/* A breakpoint here stops on every hart. */
__attribute__((noinline)) void visit(unsigned long hart, unsigned long round)
{
    work[hart] += round + 1;
}

/* Called by hart 2 only. */
__attribute__((noinline)) void hart2_round(unsigned long round)
{
    hart2_last = round;
}

static void spin(unsigned long n)
{
    for (volatile unsigned long i = 0; i < n; i++)
        ;
}

int main(unsigned long hart, const void *fdt)
{
    unsigned n;
    if (hart == 0) {
        uart_init();
        n = smp_hart_count(fdt);
        puts_("smp_debug\n");
        store_release(&nharts, n);
    } else {
        while (!(n = load_acquire(&nharts)))
            cpu_relax();
    }
    for (unsigned long r = 0; r < ROUNDS; r++) {
        spin(2000 + 700 * hart);
        visit(hart, r);
        if (hart == 2)
            hart2_round(r);
    }
    fetch_add(&finished, 1);
    if (hart != 0)
        return 0;
    wait_eq(&finished, n);
    for (unsigned h = 0; h < n; h++)
        printf("hart %u: work=%lu\n", h, (unsigned long)work[h]);
    printf("hart2_last=%ld\n", (long)hart2_last);
    return 0;
}
