/* timer: CLINT mtimecmp with a wfi loop, mip.MTIP behaviour, msip software interrupts. */
#include "guest.h"

static volatile unsigned timer_irqs, soft_irqs;

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        timer_irqs++;
        clint_set_mtimecmp(~0ULL);
        return;
    }
    if (f->cause == (CAUSE_INTR | 3)) {
        soft_irqs++;
        MMIO32(CLINT_MSIP) = 0;
        return;
    }
    printf("unexpected trap: mcause=%lx mtval=%lx\n", f->cause, f->tval);
    exit(3);
}

int main(void)
{
    puts_("timer\n");
    uint64_t t0 = clint_mtime(), t1 = clint_mtime();
    printf("mtime monotonic: %d\n", t1 >= t0);
    uint64_t r0 = read_csr(time);
    printf("time csr tracks mtime: %d\n", r0 >= t1 && r0 - t1 < 1000);

    /* mtimecmp in the past: MTIP pending at once; far future: clear. */
    clint_set_mtimecmp(0);
    printf("mtimecmp=0: MTIP=%lu\n", (read_csr(mip) >> 7) & 1);
    clint_set_mtimecmp(~0ULL);
    printf("mtimecmp=max: MTIP=%lu\n", (read_csr(mip) >> 7) & 1);
    MMIO32(CLINT_MTIMECMP + 4) = 0; /* 32-bit halves are writable separately */
    printf("mtimecmp high word 0: MTIP=%lu, mtimecmp=%lx\n", (read_csr(mip) >> 7) & 1, MMIO64(CLINT_MTIMECMP));
    clint_set_mtimecmp(~0ULL);

    /* A deadline 500 ticks ahead: polling sees MTIP appear only once mtime has passed it. */
    uint64_t deadline = clint_mtime() + 500;
    clint_set_mtimecmp(deadline);
    unsigned early = 0;
    while (!((read_csr(mip) >> 7) & 1))
        if (clint_mtime() >= deadline + 1)
            early++;
    printf("MTIP rose after deadline: %d, mtime >= deadline: %d\n", early == 0, clint_mtime() >= deadline);
    clint_set_mtimecmp(~0ULL);

    /* wfi loop: five timer interrupts, each one deadline apart. */
    set_csr(mie, MIP_MTIP | MIP_MSIP);
    set_csr(mstatus, MSTATUS_MIE);
    for (unsigned i = 1; i <= 5; i++) {
        uint64_t d = clint_mtime() + 2000;
        clint_set_mtimecmp(d);
        while (timer_irqs < i)
            __asm__ volatile("wfi");
        printf("timer interrupt %u, mtime past deadline: %d\n", i, clint_mtime() >= d);
    }

    /* wfi with interrupts globally disabled still wakes up on a pending enabled interrupt. */
    clear_csr(mstatus, MSTATUS_MIE);
    clint_set_mtimecmp(clint_mtime() + 1000);
    __asm__ volatile("wfi");
    printf("woke from wfi with MIE=0: MTIP=%lu, handled=%u\n", (read_csr(mip) >> 7) & 1, timer_irqs);
    set_csr(mstatus, MSTATUS_MIE);
    printf("after enabling MIE: handled=%u\n", timer_irqs);

    /* Software interrupts through msip. */
    for (unsigned i = 1; i <= 3; i++) {
        MMIO32(CLINT_MSIP) = 1;
        while (soft_irqs < i)
            ;
        printf("software interrupt %u, msip now %u\n", i, MMIO32(CLINT_MSIP));
    }
    clear_csr(mstatus, MSTATUS_MIE);
    MMIO32(CLINT_MSIP) = 0xffffffff; /* only bit 0 is writable */
    printf("msip <- all ones reads %x, MSIP pending %lu\n", MMIO32(CLINT_MSIP), (read_csr(mip) >> 3) & 1);
    MMIO32(CLINT_MSIP) = 0;
    printf("msip cleared, MSIP pending %lu\n", (read_csr(mip) >> 3) & 1);
    clear_csr(mie, MIP_MTIP | MIP_MSIP);
    puts_("timer done\n");
    return 0;
}
