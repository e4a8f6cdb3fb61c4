/* debugme: a small, deterministic guest for the gdb stub and QMP monitor tests
   (crates/cli/tests/gdb.rs, qmp.rs). Built with -Og (see guests/build.sh) so gdb sees `i`, `counter`
   and the call chain main -> tick -> leaf; the tests rely on these names, not on line numbers.
   Expected output: "tick I: counter=C leaf=L" for I = 1..10, then the checksum line. */
#include "guest.h"

#define TICKS 10

/* Watched by the tests: every tick() stores it exactly once (counter = counter * 3 + i). */
volatile unsigned long counter;
/* Written by leaf() only, so a watchpoint on `counter` never fires in leaf(). */
volatile unsigned long leaf_sum;

/* A callee of tick() for finish / reverse-finish; noinline keeps its frame visible to gdb. */
__attribute__((noinline)) unsigned long leaf(unsigned long x)
{
    leaf_sum += x * x;
    return leaf_sum ^ 0x55;
}

__attribute__((noinline)) void tick(int i)
{
    unsigned long l = leaf((unsigned long)i);
    counter = counter * 3 + (unsigned long)i;
    printf("tick %d: counter=%lu leaf=%lu\n", i, counter, l);
}

int main(void)
{
    uart_init();
    puts_("debugme start\n");
    for (int i = 1; i <= TICKS; i++)
        tick(i);
    /* FNV-1a over the final values: one line that changes if any tick went wrong. */
    uint64_t h = 0xcbf29ce484222325ULL;
    h = (h ^ counter) * 0x100000001b3ULL;
    h = (h ^ leaf_sum) * 0x100000001b3ULL;
    printf("debugme checksum 0x%016lx\n", h);
    puts_("debugme finished: pass\n");
    return 0;
}
