/* smp_hello: every hart comes up and prints in hart order (hart 0 releases them one by one), takes a
   CLINT software interrupt sent by hart 0 and a timer interrupt from its own mtimecmp, then hart 0
   prints the hart count from the device tree. Prints are serialized by turn-taking, so the output is
   the same on any schedule. */
#include "smp.h"

static volatile uint32_t nharts;       /* published by hart 0 before any release */
static volatile uint32_t release_hart; /* up phase: hart 0 writes i to let hart i print */
static volatile uint32_t up_done;      /* hart i writes i once it has printed */
static volatile uint32_t ipi_done;     /* number of harts that reported their IPI */
static volatile uint32_t timer_done;   /* number of harts that reported their timer */
static volatile uint32_t ipis[SMP_MAX_HARTS], spurious_ipis[SMP_MAX_HARTS];
static volatile uint32_t timers[SMP_MAX_HARTS], early_timers[SMP_MAX_HARTS];
static volatile uint64_t deadline[SMP_MAX_HARTS];
static volatile uint32_t failures;
static struct smp_barrier bar;

void mtrap_handler(struct trap_frame *f)
{
    uint64_t h = read_csr(mhartid);
    if (f->cause == (CAUSE_INTR | 3)) {
        /* Only this hart's msip may raise its MSIP. */
        if (!(MMIO32(CLINT_MSIP_HART(h)) & 1))
            spurious_ipis[h]++;
        MMIO32(CLINT_MSIP_HART(h)) = 0;
        ipis[h]++;
        return;
    }
    if (f->cause == (CAUSE_INTR | 7)) {
        /* Deadlines differ per hart: another hart's comparator firing here would be early. */
        if (clint_mtime() < deadline[h])
            early_timers[h]++;
        MMIO64(CLINT_MTIMECMP_HART(h)) = ~0ULL;
        timers[h]++;
        return;
    }
    printf("hart %lu: unexpected trap: mcause=%lx mepc=%lx mtval=%lx\n", h, f->cause, f->epc, f->tval);
    exit(3);
}

static void fail(void) { fetch_add(&failures, 1); }

/* Called in the hart's printing turn: exactly one IPI, from its own msip, now cleared. */
static void check_ipi(unsigned long hart)
{
    if (ipis[hart] != 1 || spurious_ipis[hart] || MMIO32(CLINT_MSIP_HART(hart)) || (read_csr(mip) & MIP_MSIP)) {
        printf("hart %lu: BAD ipi: taken %u, spurious %u, msip %u\n", hart, ipis[hart], spurious_ipis[hart],
               MMIO32(CLINT_MSIP_HART(hart)));
        fail();
    }
}

int main(unsigned long hart, const void *fdt)
{
    MMIO64(CLINT_MTIMECMP_HART(hart)) = ~0ULL;
    unsigned n;
    /* Up: in hart order, each released by hart 0. */
    if (hart == 0) {
        uart_init();
        n = smp_hart_count(fdt);
        puts_("smp_hello\n");
        puts_("hart 0 up\n");
        store_release(&nharts, n);
        for (unsigned i = 1; i < n; i++) {
            store_release(&release_hart, i);
            wait_eq(&up_done, i);
        }
    } else {
        wait_eq(&release_hart, (uint32_t)hart);
        n = load_acquire(&nharts);
        printf("hart %lu up\n", hart);
        store_release(&up_done, (uint32_t)hart);
    }

    /* IPIs: hart 0 raises msip of hart 0, 1, ... in turn; each hart reports once it took it. */
    set_csr(mie, MIP_MSIP);
    set_csr(mstatus, MSTATUS_MIE);
    if (hart == 0) {
        for (unsigned i = 0; i < n; i++) {
            MMIO32(CLINT_MSIP_HART(i)) = 1;
            if (i == 0) {
                while (!ipis[0])
                    __asm__ volatile("wfi");
                puts_("hart 0 ipi\n");
                check_ipi(0);
                store_release(&ipi_done, 1);
            }
            wait_eq(&ipi_done, i + 1);
        }
    } else {
        while (!ipis[hart])
            __asm__ volatile("wfi");
        wait_eq(&ipi_done, (uint32_t)hart);
        printf("hart %lu ipi\n", hart);
        check_ipi(hart);
        store_release(&ipi_done, (uint32_t)hart + 1);
    }
    clear_csr(mie, MIP_MSIP);

    /* Timers: all harts at once, each on its own mtimecmp, the highest hart's deadline first. */
    smp_barrier_wait(&bar, n);
    deadline[hart] = clint_mtime() + 1000 + 500 * (n - 1 - hart);
    MMIO64(CLINT_MTIMECMP_HART(hart)) = deadline[hart];
    set_csr(mie, MIP_MTIP);
    while (!timers[hart])
        __asm__ volatile("wfi");
    clear_csr(mie, MIP_MTIP);
    wait_eq(&timer_done, (uint32_t)hart);
    printf("hart %lu timer\n", hart);
    if (timers[hart] != 1 || early_timers[hart] || (read_csr(mip) & MIP_MTIP)) {
        printf("hart %lu: BAD timer: taken %u, early %u\n", hart, timers[hart], early_timers[hart]);
        fail();
    }
    store_release(&timer_done, (uint32_t)hart + 1);
    if (hart != 0)
        return 0;

    wait_eq(&timer_done, n);
    printf("harts: %u\n", n);
    return load_acquire(&failures) ? 1 : 0;
}
