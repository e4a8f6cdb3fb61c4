/* csr: identification CSRs, WARL behaviour, counters, illegal CSR accesses (trap with mcause/mtval). */
#include "guest.h"

static volatile uint64_t traps;

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    printf("trap mcause=%lx mtval=%lx mpp=%lx\n", f->cause, f->tval, (read_csr(mstatus) >> 11) & 3);
    traps++;
    f->epc += 4;
}

static uint64_t s_read_mstatus(uint64_t arg)
{
    (void)arg;
    return read_csr(mstatus); /* illegal from S */
}

static uint64_t s_sstatus(uint64_t arg)
{
    uint64_t old = read_csr(sstatus);
    write_csr(sstatus, arg);
    uint64_t r = read_csr(sstatus);
    write_csr(sstatus, old);
    return r;
}

static uint64_t u_counters(uint64_t arg)
{
    uint64_t a, b;
    __asm__ volatile("rdinstret %0\n nop\n nop\n nop\n rdinstret %1" : "=r"(a), "=r"(b));
    (void)arg;
    return b - a;
}

static uint64_t u_cycle(uint64_t arg)
{
    (void)arg;
    uint64_t c;
    __asm__ volatile("rdcycle %0" : "=r"(c));
    return c != 0;
}

/* Write, read back (masked to the architectural fields of RV64GC + S + U, so that extensions QEMU
   enables by default, like H, and its QEMU-specific leniencies do not show) and restore. */
#define WARL(name, val, mask)                                                                 \
    do {                                                                                      \
        uint64_t __old = read_csr(name);                                                      \
        write_csr(name, val);                                                                 \
        printf("%s <- %lx reads %lx\n", #name, (uint64_t)(val), read_csr(name) & (mask));    \
        write_csr(name, __old);                                                               \
    } while (0)
#define ALL 0xffffffffffffffffULL
#define MSTATUS_STD 0x8000000c007ff9aaULL /* UXL left out: QEMU 7.2 lets it be written */

int main(void)
{
    puts_("csr known answers\n");
    print_hex("misa (H hidden)", read_csr(misa) & ~(1UL << 7));
    print_hex("mhartid", read_csr(mhartid));
    print_hex("mvendorid", read_csr(mvendorid));
    print_hex("mstatus at reset (FS set by start)", read_csr(mstatus));
    print_hex("mie at reset", read_csr(mie));
    print_hex("medeleg at reset", read_csr(medeleg));
    print_hex("mideleg at reset", read_csr(mideleg));
    print_hex("satp at reset", read_csr(satp));

    WARL(mstatus, ALL & ~MSTATUS_MIE & ~MSTATUS_MPRV & ~(3UL << 11), MSTATUS_STD);
    WARL(mstatus, 0, MSTATUS_STD);
    WARL(mstatus, 1UL << 11, MSTATUS_STD);
    WARL(mie, ALL, 0xaaa);
    WARL(mip, ALL, 0x222);
    WARL(mideleg, ALL, 0x222);
    WARL(medeleg, ALL, 0xf3ff);
    WARL(mtvec, 0x80001001ULL, ALL);
    WARL(stvec, 0x80002001ULL, ALL);
    WARL(stvec, 0x80002100ULL, ALL);
    WARL(sepc, 0x80000ffeULL, ALL);
    WARL(mscratch, 0x0123456789abcdefULL, ALL);
    WARL(sscratch, 0xfedcba9876543210ULL, ALL);
    WARL(mcause, 0x800000000000000bULL, ALL);
    WARL(scause, 0x8000000000000009ULL, ALL);
    WARL(mtval, ALL, ALL);
    WARL(stval, 0x1234, ALL);
    WARL(mcounteren, ALL, 7);
    WARL(scounteren, ALL, 7);
    WARL(satp, 0x8000000000080001ULL, ALL);
    WARL(satp, 0xf000000000080001ULL, ALL); /* unsupported mode: write ignored */
    WARL(sie, ALL, ALL);
    WARL(sip, ALL, ALL);
    WARL(misa, 0, ~(1UL << 7));
    WARL(pmpaddr1, 0x123456789aULL, ALL);
    write_csr(mideleg, 0x222);
    WARL(sie, ALL, ALL);
    WARL(sip, ALL, ALL);
    WARL(sstatus, ALL & ~MSTATUS_SIE, MSTATUS_STD);
    write_csr(mideleg, 0);

    /* Counters advance; minstret counts retired instructions exactly. */
    uint64_t c0 = read_csr(mcycle), i0 = read_csr(minstret), t0 = read_csr(time);
    for (volatile int k = 0; k < 100; k++)
        ;
    uint64_t c1 = read_csr(mcycle), i1 = read_csr(minstret), t1 = read_csr(time);
    printf("mcycle increased %d, minstret increased %d, time increased %d\n", c1 > c0, i1 > i0, t1 > t0);
    uint64_t a, b;
    __asm__ volatile("csrr %0, minstret\n nop\n nop\n nop\n nop\n nop\n csrr %1, minstret" : "=r"(a), "=r"(b));
    print_hex("minstret delta over 5 nops", b - a);
    __asm__ volatile("csrr %0, instret\n addi x0, x0, 0\n csrr %1, instret" : "=r"(a), "=r"(b));
    print_hex("instret delta over 1 nop", b - a);

    puts_("illegal accesses:\n");
    uint64_t r;
    __asm__ volatile("csrr %0, 0x3ff" : "=r"(r)); /* unallocated */
    __asm__ volatile("csrw mhartid, %0" ::"r"(1ULL)); /* read-only */
    __asm__ volatile("csrrs %0, mhartid, zero" : "=r"(r)); /* legal: no write */
    __asm__ volatile("csrrsi %0, mvendorid, 0" : "=r"(r)); /* legal */
    __asm__ volatile("csrrci %0, marchid, 1" : "=r"(r)); /* write attempt: illegal */
    __asm__ volatile("csrw cycle, %0" ::"r"(1ULL)); /* user counters are read-only */
    print_hex("traps so far", traps);

    puts_("from S-mode:\n");
    run_lower(1, s_read_mstatus, 0);
    print_hex("S: sstatus <- all ones reads", run_lower(1, s_sstatus, ALL & ~MSTATUS_SIE) & MSTATUS_STD);

    puts_("from U-mode:\n");
    write_csr(mcounteren, 0);
    write_csr(scounteren, 0);
    run_lower(0, u_cycle, 0);
    write_csr(mcounteren, 7);
    print_hex("U rdcycle with mcounteren only", run_lower(0, u_cycle, 0));
    write_csr(scounteren, 7);
    print_hex("U rdcycle allowed", run_lower(0, u_cycle, 0));
    print_hex("U instret delta over 3 nops", run_lower(0, u_counters, 0));
    print_hex("traps", traps);
    puts_("csr done\n");
    return 0;
}
