/* priv10: privileged architecture as QEMU 10 (-cpu rv64,h=false) implements it: CSR existence and WARL
   masks from M/S/U, xtval of every illegal-instruction and breakpoint case, AMO/LR/SC fault causes,
   Sstc, Svadu/Svade, Svpbmt/reserved PTE bits, Sdtrig triggers, counters, misaligned accesses. */
#include "guest.h"

static volatile uint64_t ntraps, last_cause, last_tval, last_epc, last_status;
static volatile uint64_t resume_at;
static volatile uint64_t irq_t1; /* t1 when the last M interrupt was taken */ /* when set, the next trap resumes there instead of skipping */

static void record(struct trap_frame *f, uint64_t status)
{
    ntraps++;
    last_cause = f->cause;
    last_tval = f->tval;
    last_epc = f->epc;
    last_status = status;
    if (resume_at) {
        f->epc = resume_at;
        resume_at = 0;
    } else {
        f->epc += insn_len(f->epc);
    }
}

/* Nested traps: 1 = the next ecall trap (a7 = 0x77) makes a nested trap in its handler. */
static volatile int nest;
static void nested(const char *who, struct trap_frame *f, int s_level);

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    if (nest && (f->cause == 8 || f->cause == 9) && f->x[17] == 0x77) {
        nested("M", f, 0);
        return;
    }
    if (f->cause & CAUSE_INTR) {
        irq_t1 = f->x[6];
        printf("M interrupt %lx\n", f->cause & 0xff);
        /* Disable just this one: the others stay pending and come next, in priority order. */
        clear_csr(mie, 1UL << (f->cause & 0x3f));
        return;
    }
    record(f, read_csr(mstatus));
}

static volatile uint64_t s_irqs;

void strap_handler(struct trap_frame *f)
{
    if (f->cause == 8 && f->x[17] == LOWER_EXIT_MAGIC) {
        lower_exit_from_s();
        return;
    }
    if (nest && f->cause == 8 && f->x[17] == 0x77) {
        nested("S", f, 1);
        return;
    }
    if (f->cause == (CAUSE_INTR | 5)) {
        s_irqs++;
        write_csr(0x14d, ~0ULL); /* stimecmp: no more timer interrupts */
        return;
    }
    record(f, read_csr(sstatus) | (1UL << 62));
}

/* Print the outcome of the last probe: "ok VALUE" or "trap c=CAUSE tval=TVAL". */
static void outcome(const char *what, uint64_t before, uint64_t v, int show)
{
    if (ntraps != before)
        printf("%s: trap c=%lx tval=%lx%s\n", what, last_cause, last_tval,
               (last_status >> 62) & 1 ? " (S)" : "");
    else if (show)
        printf("%s: %lx\n", what, v);
    else
        printf("%s: ok\n", what);
}

/* Code buffer for CSR instructions built at run time. */
static uint32_t dyn[8] __attribute__((aligned(64)));
typedef uint64_t (*dyn_fn)(uint64_t a0, uint64_t a1);

#define CSRRW(rd, csr, rs1) (((uint32_t)(csr) << 20) | ((rs1) << 15) | (1 << 12) | ((rd) << 7) | 0x73)
#define CSRRS(rd, csr, rs1) (((uint32_t)(csr) << 20) | ((rs1) << 15) | (2 << 12) | ((rd) << 7) | 0x73)
#define CSRRC(rd, csr, rs1) (((uint32_t)(csr) << 20) | ((rs1) << 15) | (3 << 12) | ((rd) << 7) | 0x73)
#define RET 0x00008067u

static void dyn_set(uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
    dyn[0] = a;
    dyn[1] = b;
    dyn[2] = c;
    dyn[3] = d;
    __asm__ volatile("fence.i" ::: "memory");
}

/* Read csr (csrrs a0, csr, x0). */
static void prep_read(unsigned csr) { dyn_set(CSRRS(10, csr, 0), RET, RET, RET); }
/* Write a1, read back, restore: csrrw t0, csr, a1; csrrs a0, csr, x0; csrrw x0, csr, t0. */
static void prep_warl(unsigned csr) { dyn_set(CSRRW(5, csr, 11), CSRRS(10, csr, 0), CSRRW(0, csr, 5), RET); }

static uint64_t call_dyn(uint64_t a1) { return ((dyn_fn)(uintptr_t)dyn)(0, a1); }

static void probe_read(const char *mode, unsigned csr, int show)
{
    char what[32];
    uint64_t b = ntraps;
    prep_read(csr);
    uint64_t v;
    if (mode[0] == 'M')
        v = call_dyn(0);
    else
        v = run_lower(mode[0] == 'S', call_dyn, 0);
    const char *hex = "0123456789abcdef";
    what[0] = mode[0];
    what[1] = ' ';
    what[2] = hex[(csr >> 8) & 15];
    what[3] = hex[(csr >> 4) & 15];
    what[4] = hex[csr & 15];
    what[5] = 0;
    outcome(what, b, v, show);
}

/* Bits where rewind follows the ratified spec and QEMU 10 does not (see
   /work/notes/priv-spec-departures.md): mstatus/sstatus.UXL (read-only 2 in rewind, writable in QEMU),
   mepc/sepc bit 0 (always zero), menvcfg.CDE (bit 60, no Smcdeleg). */
static uint64_t departures(unsigned csr)
{
    switch (csr) {
    case 0x300:
    case 0x100:
        return 3UL << 32;
    case 0x341:
    case 0x141:
        return 1;
    case 0x30a:
        return 1UL << 60;
    }
    return 0;
}

static void warl(unsigned csr, uint64_t val)
{
    uint64_t b = ntraps;
    prep_warl(csr);
    uint64_t v = call_dyn(val) & ~departures(csr);
    if (ntraps != b)
        printf("warl %x <- %lx: trap c=%lx\n", csr, val, last_cause);
    else
        printf("warl %x <- %lx reads %lx\n", csr, val, v);
}

/* CSRs whose value changes with time: only their existence is printed. */
static int volatile_csr(unsigned c)
{
    return (c >= 0xb00 && c <= 0xb1f) || (c >= 0xc00 && c <= 0xc1f);
}

static const uint16_t scan_list[] = {
    0x001, 0x002, 0x003, 0x008, 0x009, 0x00a, 0x00f, 0x015, 0x017, 0x018,
    0x100, 0x104, 0x105, 0x106, 0x10a, 0x10c, 0x140, 0x141, 0x142, 0x143, 0x144, 0x14d, 0x15d, 0x180, 0x5a8,
    0x300, 0x301, 0x302, 0x303, 0x304, 0x305, 0x306, 0x30a, 0x30c, 0x310, 0x312, 0x31a, 0x320, 0x321, 0x322,
    0x323, 0x324, 0x332, 0x333, 0x33f, 0x340, 0x341, 0x342, 0x343, 0x344, 0x34a, 0x34b, 0x35c, 0x3a0, 0x3a1,
    0x3a2, 0x3a3, 0x3af, 0x3b0, 0x3bf, 0x3c0, 0x3ef, 0x747, 0x757,
    0x7a0, 0x7a1, 0x7a2, 0x7a3, 0x7a4, 0x7a5, 0x7a8, 0x7aa, 0x7b0, 0x7b1, 0x7b2,
    0xb00, 0xb01, 0xb02, 0xb03, 0xb04, 0xb10, 0xb11, 0xb12, 0xb13, 0xb1f,
    0xc00, 0xc01, 0xc02, 0xc03, 0xc04, 0xc10, 0xc11, 0xc12, 0xc13, 0xc1f, 0xc80,
    0xda0, 0xdb0, 0xfb0, 0xf11, 0xf12, 0xf13, 0xf14, 0xf15,
};
#define NSCAN (sizeof(scan_list) / sizeof(scan_list[0]))

static void scan(const char *mode)
{
    for (unsigned i = 0; i < NSCAN; i++)
        probe_read(mode, scan_list[i], mode[0] == 'M' && !volatile_csr(scan_list[i]));
}

#define ALL 0xffffffffffffffffULL
#include "tests.h"

static void warl_tests(void)
{
    puts_("== warl\n");
    static const uint16_t l[] = {0x300, 0x301, 0x302, 0x303, 0x304, 0x306, 0x30a, 0x320, 0x100, 0x104, 0x106,
                                 0x10a, 0x180, 0x323, 0x33f, 0x3a0, 0x747};
    for (unsigned i = 0; i < sizeof(l) / sizeof(l[0]); i++) {
        uint64_t v = l[i] == 0x3a0 ? 0x1f1f1f1f1f1f1f1fULL : ALL;
        if (l[i] == 0x300)
            v &= ~(MSTATUS_MIE | MSTATUS_SIE);
        warl(l[i], v);
        warl(l[i], 0);
    }
    /* mstatus fields one by one. */
    warl(0x300, 2UL << 11);  /* MPP = 2 (reserved) */
    warl(0x300, 1UL << 11);
    warl(0x300, 1UL << 34);  /* SXL */
    warl(0x300, 1UL << 39);  /* MPV */
    warl(0x300, 1UL << 38);  /* GVA */
    warl(0x300, 3UL << 9);   /* VS */
    warl(0x300, 3UL << 15);  /* XS */
    warl(0x300, 1UL << 24);  /* SDT */
    warl(0x300, 1UL << 23);  /* SPELP */
    warl(0x300, 1UL << 41);  /* MPELP */
    warl(0x300, 1UL << 42);  /* MDT */
    warl(0x300, 1UL << 6);   /* UBE */
    warl(0x300, 1UL << 36);  /* SBE */
    warl(0x300, 1UL << 37);  /* MBE */
    /* mip bits with and without delegation. */
    warl(0x344, ALL);
    write_csr(mideleg, ALL);
    warl(0x144, ALL);
    warl(0x104, ALL);
    write_csr(mideleg, 0);
    warl(0x144, ALL);
    warl(0x104, ALL);
    /* trap vectors */
    warl(0x305, 0x80001000);
    warl(0x305, 0x80001001);
    warl(0x305, 0x80001002);
    warl(0x305, 0x80001003);
    warl(0x305, 0x80001004);
    warl(0x305, 0x80001005);
    warl(0x105, 0x80001001);
    warl(0x105, 0x80001002);
    warl(0x105, 0x80001003);
    warl(0x105, 0x80001006);
    write_csr(stvec, (uint64_t)strap_entry);
    /* epc alignment */
    warl(0x341, ALL);
    warl(0x141, ALL);
    /* satp modes */
    for (uint64_t m = 0; m < 16; m++)
        warl(0x180, (m << 60) | (0xffffULL << 44) | 0x80123);
    warl(0x180, ALL);
    /* counters */
    warl(0x320, ALL);
    warl(0x320, 2);
    warl(0x306, ALL);
    warl(0x106, ALL);
    warl(0xb03, 0x1234);
    warl(0xb1f, 0x1234);
    warl(0x323, 0x1234);
    warl(0x323, 5);
    warl(0x33f, 0x12345678);
    /* fields of cause registers */
    warl(0x342, ALL);
    warl(0x142, ALL);
    warl(0x342, 0x8000000000000000ULL | 13);
    warl(0x142, 0x8000000000000000ULL | 13);
    warl(0x342, 63);
    /* envcfg */
    warl(0x30a, 1);
    warl(0x30a, 3UL << 4);
    warl(0x30a, 1UL << 6);
    warl(0x30a, 1UL << 7);
    warl(0x30a, 1UL << 61);
    warl(0x30a, 1UL << 62);
    warl(0x30a, 1UL << 63);
    /* CBIE = 2 is reserved: not printed (QEMU stores it, rewind keeps the old value). */
    warl(0x10a, ALL);
    warl(0x301, 0);
    warl(0x301, ALL & ~(1UL << 2));
}

int main(void)
{
    puts_("priv10\n");
    write_csr(stvec, (uint64_t)strap_entry);
    puts_("== reset values\n");
    static const uint16_t rst[] = {0x300, 0x301, 0x302, 0x303, 0x304, 0x344, 0x306, 0x106, 0x30a, 0x10a,
                                   0x320, 0x180, 0xf11, 0xf12, 0xf13, 0xf15};
    for (unsigned i = 0; i < sizeof(rst) / sizeof(rst[0]); i++)
        probe_read("M", rst[i], 1);
    warl_tests();
    puts_("== scan M\n");
    scan("M");
    puts_("== scan S, counteren 0\n");
    write_csr(mcounteren, 0);
    write_csr(scounteren, 0);
    scan("S");
    puts_("== scan U, counteren 0\n");
    scan("U");
    puts_("== scan S, mcounteren all\n");
    write_csr(mcounteren, ALL);
    scan("S");
    puts_("== scan U, mcounteren all\n");
    scan("U");
    puts_("== scan U, both all\n");
    write_csr(scounteren, ALL);
    scan("U");
    write_csr(mcounteren, 0);
    write_csr(scounteren, 0);
    tval_tests();
    amo_tests();
    vm_tests();
    sstc_tests();
    trigger_tests();
    counter_tests();
    nested_tests();
    lcofi_tests();
    printf("traps %lx\n", ntraps);
    puts_("priv10 done\n");
    return 0;
}
