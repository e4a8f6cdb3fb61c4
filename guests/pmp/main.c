/* pmp: NAPOT and TOR regions; S/U accesses denied -> access faults; locked entries bind M-mode. */
#include "guest.h"

static uint64_t page_a[512] __attribute__((aligned(4096)));
static uint64_t page_b[512] __attribute__((aligned(4096)));
static uint32_t page_c[1024] __attribute__((aligned(4096)));

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    const char *which = (f->tval >= (uint64_t)page_a && f->tval < (uint64_t)page_a + 4096) ? "A"
                        : (f->tval >= (uint64_t)page_b && f->tval < (uint64_t)page_b + 4096) ? "B"
                        : (f->tval >= (uint64_t)page_c && f->tval < (uint64_t)page_c + 4096) ? "C" : "?";
    printf("access fault: mcause=%lx page %s offset %lx from mode %lx\n", f->cause, which, f->tval & 0xfff,
           (read_csr(mstatus) >> 11) & 3);
    if (f->cause == 1)
        f->epc = f->x[1];
    else
        f->epc += insn_len(f->epc);
}

static uint64_t load(uint64_t *p)
{
    uint64_t v = 0xdead;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(p) : "memory");
    return v;
}

static void store(uint64_t *p, uint64_t v) { __asm__ volatile("sd %0, 0(%1)" ::"r"(v), "r"(p) : "memory"); }

static uint64_t probes(uint64_t mode)
{
    printf("[%s] load A -> %lx\n", mode ? "S" : "U", load(&page_a[1]));
    store(&page_a[2], 0x22);
    printf("[%s] load B -> %lx\n", mode ? "S" : "U", load(&page_b[3]));
    store(&page_b[4], 0x44);
    printf("[%s] load C -> %lx\n", mode ? "S" : "U", load((uint64_t *)&page_c[0]));
    __asm__ volatile("jalr ra, 0(%0)" ::"r"(page_c) : "ra", "memory");
    return 0;
}

#define NAPOT(base, size) ((((uint64_t)(base)) >> 2) | (((size) >> 3) - 1))

int main(void)
{
    puts_("pmp\n");
    for (unsigned i = 0; i < 512; i++) {
        page_a[i] = 0xa000 + i;
        page_b[i] = 0xb000 + i;
    }
    page_c[0] = 0x00008067; /* ret */
    __asm__ volatile("fence.i");

    write_csr(pmpaddr0, NAPOT(page_a, 4096));
    write_csr(pmpaddr1, (uint64_t)page_b >> 2);
    write_csr(pmpaddr2, ((uint64_t)page_b + 4096) >> 2);
    write_csr(pmpaddr3, NAPOT(page_c, 4096));
    write_csr(pmpaddr4, ~0ULL);
    uint64_t cfg = 0x19ULL | (0x00ULL << 8) | (0x08ULL << 16) | (0x1bULL << 24) | (0x1fULL << 32);
    write_csr(pmpcfg0, cfg);
    printf("pmpcfg0 %lx\n", read_csr(pmpcfg0));
    printf("pmpaddr0 %lx (offset from page A: %lx)\n", read_csr(pmpaddr0) & 0x1ff,
           (read_csr(pmpaddr0) << 2) - (uint64_t)page_a);
    printf("pmpaddr2-pmpaddr1 %lx\n", read_csr(pmpaddr2) - read_csr(pmpaddr1));

    run_lower(1, probes, 1);
    run_lower(0, probes, 0);

    puts_("M-mode ignores unlocked entries:\n");
    store(&page_a[5], 0x55);
    printf("[M] load B -> %lx, page_a[5]=%lx\n", load(&page_b[3]), page_a[5]);

    puts_("locked entry 0 binds M-mode:\n");
    write_csr(pmpcfg0, cfg | 0x80);
    store(&page_a[6], 0x66);
    printf("[M] load A -> %lx, page_a[6]=%lx\n", load(&page_a[1]), page_a[6]);
    write_csr(pmpaddr0, 0);
    write_csr(pmpcfg0, 0x1f);
    printf("locked entry ignores writes: pmpcfg0 %lx, pmpaddr0 unchanged %d\n", read_csr(pmpcfg0) & 0xff,
           read_csr(pmpaddr0) == NAPOT(page_a, 4096));
    puts_("pmp done\n");
    return 0;
}
