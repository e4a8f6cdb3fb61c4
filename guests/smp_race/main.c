/* smp_race: every hart increments one shared counter ITERS times with a plain load, add, store (no
   atomics), doing WORK rounds of private arithmetic between increments; hart 0 reports how many
   increments were lost to interleaving. WINDOW nops between the load and the store widen the race.
   Built twice (guests/build.sh): smp_race just reports; smp_race_assert (-DRACE_ASSERT, few
   iterations, long private work, no window) fails with exit 1 if any update was lost. */
#include "smp.h"

#ifndef ITERS
#define ITERS 20000
#endif
#ifndef WORK
#define WORK 20
#endif
#ifndef WINDOW
#define WINDOW 2
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

static volatile uint32_t nharts;   /* published by hart 0, 0 until then */
static volatile uint32_t finished; /* harts done incrementing */
static struct smp_barrier start;
/* Alone in its 64-byte block, away from the flags the harts spin on. */
static volatile uint64_t counter __attribute__((aligned(64)));
static volatile uint64_t sink[SMP_MAX_HARTS * 8] __attribute__((aligned(64)));

/* Private work: an LCG the compiler cannot drop (its result is stored per hart). */
static uint64_t work(uint64_t x)
{
    for (unsigned j = 0; j < WORK; j++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

static void race(unsigned long hart)
{
    uint64_t x = hart + 1;
    for (unsigned i = 0; i < ITERS; i++) {
        x = work(x);
        uint64_t tmp;
        /* The non-atomic increment: nothing stops another hart's store between ld and sd. */
        __asm__ volatile("ld %0, 0(%1)\n"
                         ".rept " STR(WINDOW) "\n nop\n .endr\n"
                         "addi %0, %0, 1\n"
                         "sd %0, 0(%1)"
                         : "=&r"(tmp)
                         : "r"(&counter)
                         : "memory");
    }
    sink[hart * 8] = x;
}

int main(unsigned long hart, const void *fdt)
{
    unsigned n;
    if (hart == 0) {
        uart_init();
        n = smp_hart_count(fdt);
        if (n < 2) {
            printf("race: needs at least 2 harts, have %u\n", n);
            return 2;
        }
        store_release(&nharts, n);
    } else {
        while ((n = load_acquire(&nharts)) == 0)
            cpu_relax();
    }
    smp_barrier_wait(&start, n);
    race(hart);
    fetch_add(&finished, 1);
    if (hart != 0)
        return 0;
    wait_eq(&finished, n);
    uint64_t count = counter, want = (uint64_t)n * ITERS;
#ifdef RACE_ASSERT
    if (count != want) {
        printf("ASSERTION FAILED: lost %lu updates\n", want - count);
        return 1;
    }
    puts_("race: no lost updates\n");
#else
    printf("race: harts=%u iters=%u count=%lu lost=%lu\n", n, ITERS, count, want - count);
#endif
    return 0;
}
