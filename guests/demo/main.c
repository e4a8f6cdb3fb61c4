/* demo: the guest `rewind demo` runs. Banner, a visible computation, a few timer interrupts, pass. */
#include "guest.h"

#define TICK 10000 /* 1 ms at the 10 MHz timebase */

static volatile unsigned ticks;

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        ticks++;
        clint_set_mtimecmp(clint_mtime() + TICK);
        return;
    }
    printf("unexpected trap: mcause=%lx mepc=%lx mtval=%lx\n", f->cause, f->epc, f->tval);
    exit(3);
}

static int is_prime(unsigned n)
{
    if (n < 2)
        return 0;
    for (unsigned d = 2; d * d <= n; d++)
        if (n % d == 0)
            return 0;
    return 1;
}

int main(unsigned long hartid, unsigned long fdt)
{
    uart_init();
    puts_("\n");
    puts_("  rewind -- deterministic record & replay for RISC-V\n");
    puts_("  this is the demo guest, running bare-metal in M-mode\n\n");
    /* The boot ROM hands over a flattened device tree in a1: check its magic. */
    uint32_t magic = fdt ? __builtin_bswap32(*(volatile uint32_t *)fdt) : 0;
    printf("hart %lu, device tree %s\n", hartid, magic == 0xd00dfeed ? "found" : "missing");

    puts_("primes below 100:");
    for (unsigned n = 0; n < 100; n++)
        if (is_prime(n))
            printf(" %u", n);
    puts_("\n");

    /* FNV-1a over the first 2000 primes: a checksum anyone can verify. */
    uint64_t h = 0xcbf29ce484222325ULL;
    unsigned count = 0, n = 2, last = 0;
    while (count < 2000) {
        if (is_prime(n)) {
            h = (h ^ n) * 0x100000001b3ULL;
            count++;
            last = n;
        }
        n++;
    }
    printf("the 2000th prime is %u, checksum 0x%016lx\n", last, h);

    /* Take a few machine-timer interrupts, sleeping in wfi between them. */
    ticks = 0;
    clint_set_mtimecmp(clint_mtime() + TICK);
    set_csr(mie, MIP_MTIP);
    set_csr(mstatus, MSTATUS_MIE);
    for (unsigned want = 1; want <= 3; want++) {
        while (ticks < want)
            __asm__ volatile("wfi");
        printf("timer tick %u\n", want);
    }
    clear_csr(mie, MIP_MTIP);
    clear_csr(mstatus, MSTATUS_MIE);

    puts_("demo finished: pass\n");
    return 0;
}
