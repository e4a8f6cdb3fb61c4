/* priv10 sections after the CSR scans (included by main.c: they share its trap bookkeeping). */

/* Does CSR `csr` exist (readable in M)? The sections of an extension switched off (-cpu ...=off) are
   skipped. */
static int have_csr(unsigned csr)
{
    uint64_t b = ntraps;
    prep_read(csr);
    call_dyn(0);
    if (ntraps == b)
        return 1;
    ntraps = b;
    printf("csr %x absent: section skipped\n", csr);
    return 0;
}

/* Run `insn` (an asm string) in M, report the trap it raised (or that it did not). */
#define PROBE(label, insn)                                                                  \
    do {                                                                                    \
        uint64_t __b = ntraps;                                                              \
        __asm__ volatile(insn ::: "memory", "t0", "a7");                                    \
        report(label, __b);                                                                 \
    } while (0)

/* Set to hide what differs from QEMU 10 where rewind follows the spec (see the departures notes):
   1 = xtval of an illegal mret (QEMU reports a stale instruction), 2 = the cause of a misaligned AMO
   (QEMU: load misaligned 4; spec: store/AMO misaligned 6). */
static int hide;

static void report(const char *label, uint64_t before)
{
    if (ntraps == before) {
        printf("%s: no trap\n", label);
        return;
    }
    if (hide == 2 && (last_cause == 4 || last_cause == 6))
        printf("%s: cause=misaligned tval=", label);
    else
        printf("%s: cause=%lx tval=", label, last_cause);
    if (hide == 1)
        puts_("(not compared)");
    else if (last_tval && last_tval == last_epc)
        puts_("epc");
    else
        printf("%lx", last_tval);
    if ((last_status >> 62) & 1)
        printf(" (S) spp=%lx spie=%lx\n", (last_status >> 8) & 1, (last_status >> 5) & 1);
    else
        printf(" mpp=%lx mpie=%lx\n", (last_status >> 11) & 3, (last_status >> 7) & 1);
}

/* Lower-mode probes: each is a function run through run_lower. */
#define LOWER_FN(name, insn)                                                                \
    static uint64_t name(uint64_t a) { __asm__ volatile(insn ::: "memory", "t0", "a7"); return a; }
LOWER_FN(l_mret, "mret")
LOWER_FN(l_sret, "sret")
LOWER_FN(l_wfi, "wfi")
LOWER_FN(l_sfence, "sfence.vma a0, a1")
LOWER_FN(l_sfence0, "sfence.vma")
LOWER_FN(l_satp, "csrr t0, satp")
LOWER_FN(l_ebreak, ".option push\n .option norvc\n ebreak\n .option pop")
LOWER_FN(l_cebreak, ".option push\n .option rvc\n c.ebreak\n .option pop")
LOWER_FN(l_ecall, "li a7, 0\n ecall")
LOWER_FN(l_illegal16, ".insn 2, 0x0000")
LOWER_FN(l_illegal32, ".insn 4, 0x0000000b")
LOWER_FN(l_mstatus_w, "csrw mstatus, zero")
LOWER_FN(l_cycle, "rdcycle t0")

static void lower(const char *label, unsigned mode, uint64_t (*fn)(uint64_t))
{
    uint64_t b = ntraps;
    run_lower(mode, fn, 0);
    report(label, b);
}

static void tval_tests(void)
{
    puts_("== tval\n");
    PROBE("M ebreak", ".option push\n .option norvc\n ebreak\n .option pop");
    PROBE("M c.ebreak", ".option push\n .option rvc\n c.ebreak\n .option pop");
    PROBE("M illegal16 0000", ".insn 2, 0x0000");
    PROBE("M illegal16 c.addi4spn 0", ".insn 2, 0x0004");
    PROBE("M illegal32 custom0", ".insn 4, 0x0000000b");
    PROBE("M csrw mhartid", "csrw mhartid, zero");
    PROBE("M csrs cycle", "csrs cycle, t0");
    PROBE("M csrr 0x7ff", "csrr t0, 0x7ff");
    PROBE("M csrrs mhartid, rs1=0 value", "li t0, 0\n csrrs t0, mhartid, t0");
    PROBE("M csrrc mconfigptr, rs1=0 value", "li t0, 0\n csrrc t0, mconfigptr, t0");
    PROBE("M csrrsi mhartid, 0", "csrrsi t0, mhartid, 0");
    PROBE("M lw unmapped misaligned", "li t0, 0x18000bbf\n lw t0, 0(t0)");
    PROBE("M sw unmapped misaligned", "li t0, 0x18000bbf\n sw t0, 0(t0)");
    PROBE("M lh unmapped", "li t0, 0x18000bbe\n lh t0, 0(t0)");
    clear_csr(mstatus, MSTATUS_FS);
    PROBE("M frflags FS=0", "frflags t0");
    PROBE("M fadd FS=0", "fadd.d f0, f1, f2");
    PROBE("M c.fld FS=0", ".option push\n .option rvc\n c.fldsp f8, 0(sp)\n .option pop");
    set_csr(mstatus, 1UL << 13);
    PROBE("M ecall", "li a7, 0\n ecall");
    PROBE("M mret MPP=M", "la t0, 1f\n csrw mepc, t0\n li t0, 0x1800\n csrs mstatus, t0\n mret\n 1:");
    hide = 1;
    lower("S mret", 1, l_mret);
    lower("U mret", 0, l_mret);
    hide = 0;
    lower("U sret", 0, l_sret);
    set_csr(mstatus, 1UL << 22);
    lower("S sret TSR", 1, l_sret);
    clear_csr(mstatus, 1UL << 22);
    lower("U wfi", 0, l_wfi);
    set_csr(mstatus, 1UL << 21);
    lower("S wfi TW", 1, l_wfi);
    clear_csr(mstatus, 1UL << 21);
    lower("U sfence.vma", 0, l_sfence);
    set_csr(mstatus, 1UL << 20);
    lower("S sfence.vma TVM", 1, l_sfence);
    lower("S sfence.vma x0 TVM", 1, l_sfence0);
    lower("S csrr satp TVM", 1, l_satp);
    clear_csr(mstatus, 1UL << 20);
    lower("S sfence.vma", 1, l_sfence);
    lower("U csrr satp", 0, l_satp);
    lower("S ebreak", 1, l_ebreak);
    lower("U c.ebreak", 0, l_cebreak);
    lower("S ecall", 1, l_ecall);
    lower("U ecall", 0, l_ecall);
    lower("U illegal16", 0, l_illegal16);
    lower("S illegal32", 1, l_illegal32);
    lower("S csrw mstatus", 1, l_mstatus_w);
    write_csr(mcounteren, 0);
    lower("S rdcycle", 1, l_cycle);
    /* Delegated to S: stval gets the same values. */
    write_csr(medeleg, (1 << 2) | (1 << 3));
    lower("U illegal32 deleg", 0, l_illegal32);
    lower("U ebreak deleg", 0, l_ebreak);
    lower("U rdcycle deleg", 0, l_cycle);
    write_csr(medeleg, 0);
}

static uint64_t abuf[4] __attribute__((aligned(64)));

/* Atomic with address in a0, result in a1: reports trap and a1. */
#define AMO(label, insn, addr)                                                              \
    do {                                                                                    \
        uint64_t __b = ntraps;                                                              \
        register uint64_t a0 __asm__("a0") = (uint64_t)(addr);                              \
        register uint64_t a1 __asm__("a1") = 0x55;                                          \
        __asm__ volatile(insn : "+r"(a1) : "r"(a0) : "memory", "t0");                        \
        uint64_t __r = a1;                                                                  \
        report(label, __b);                                                                 \
        printf("  rd=%lx\n", __r);                                                          \
    } while (0)

static void amo_tests(void)
{
    puts_("== amo\n");
    uint8_t *b = (uint8_t *)abuf;
    abuf[0] = 0x1111111111111111ULL;
    abuf[1] = 0x2222222222222222ULL;
    hide = 2;
    AMO("amoadd.w +1", "amoadd.w a1, a1, (a0)", b + 1);
    AMO("amoswap.d +4", "amoswap.d a1, a1, (a0)", b + 4);
    AMO("amomax.w +2", "amomax.w a1, a1, (a0)", b + 2);
    AMO("amoor.w MMIO uart", "amoor.w a1, a1, (a0)", 0x10000007UL);
    hide = 0;
    AMO("lr.w +2", "lr.w a1, (a0)", b + 2);
    AMO("lr.d +4", "lr.d a1, (a0)", b + 4);
    /* A misaligned SC without a reservation is not printed: QEMU 10 fails it quietly, rewind
       raises store/AMO misaligned as the spec says (see the departures notes). */
    AMO("sc.d +0 no reservation", "sc.d a1, a1, (a0)", b);
    AMO("lr.d then sc.d", "lr.d t0, (a0)\n sc.d a1, a1, (a0)", b);
    AMO("lr.d, sd other value, sc.d", "lr.d t0, (a0)\n addi t0, t0, 1\n sd t0, 0(a0)\n sc.d a1, a1, (a0)", b);
    AMO("lr.d, sd same value, sc.d", "lr.d t0, (a0)\n sd t0, 0(a0)\n sc.d a1, a1, (a0)", b);
    AMO("lr.w, sw to other word, sc.w", "lr.w t0, (a0)\n sw t0, 4(a0)\n sc.w a1, a1, (a0)", b);
    printf("abuf %lx %lx\n", abuf[0], abuf[1]);
    /* Aligned atomics on a device register (CLINT msip): QEMU performs them as load + store. */
    AMO("amoor.w CLINT msip", "li a1, 1\n amoor.w a1, a1, (a0)", CLINT_MSIP);
    printf("  mip.MSIP %lx\n", (read_csr(mip) >> 3) & 1);
    AMO("amoswap.w CLINT msip", "li a1, 0\n amoswap.w a1, a1, (a0)", CLINT_MSIP);
    printf("  mip.MSIP %lx\n", (read_csr(mip) >> 3) & 1);
    AMO("lr.w CLINT msip", "lr.w a1, (a0)", CLINT_MSIP);
    AMO("sc.w CLINT msip", "li a1, 1\n sc.w a1, a1, (a0)", CLINT_MSIP);
    printf("  mip.MSIP %lx\n", (read_csr(mip) >> 3) & 1);
    MMIO32(CLINT_MSIP) = 0;
    AMO("amoadd.d unmapped", "amoadd.d a1, a1, (a0)", 0x18000000UL);
    AMO("lr.d unmapped", "lr.d a1, (a0)", 0x18000000UL);
    /* Misaligned plain accesses to RAM do not trap (QEMU 10). */
    uint64_t v;
    __asm__ volatile("ld %0, 3(%1)" : "=r"(v) : "r"(b) : "memory");
    printf("ld +3: %lx\n", v);
    __asm__ volatile("sw %0, 5(%1)" ::"r"(0xaabbccddUL), "r"(b) : "memory");
    printf("sw +5: %lx %lx\n", abuf[0], abuf[1]);
}

/* ---- Sv39 ---- */
#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE(pa, flags) ((((uint64_t)(pa)) >> 12) << 10 | (flags))
typedef uint64_t page_t[512];
static page_t root __attribute__((aligned(4096)));
static page_t l1 __attribute__((aligned(4096)));
static page_t l0 __attribute__((aligned(4096)));
static page_t data[11] __attribute__((aligned(4096)));
#define VA(i) (0x40000000UL + 0x1000UL * (i))

static volatile uint64_t s_addr, s_val;
static uint64_t s_load(uint64_t a) { uint64_t v; __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); return v; }
static uint64_t s_store(uint64_t a) { __asm__ volatile("sd %0, 0(%1)" ::"r"(s_val), "r"(a) : "memory"); return 0; }
static uint64_t s_amo(uint64_t a) { uint64_t v = 1; __asm__ volatile("amoadd.d %0, %0, (%1)" : "+r"(v) : "r"(a) : "memory"); return v; }
static uint64_t s_lr(uint64_t a) { uint64_t v; __asm__ volatile("lr.d %0, (%1)" : "=r"(v) : "r"(a) : "memory"); return v; }
static uint64_t s_lrsc(uint64_t a) { uint64_t v = 7; __asm__ volatile("lr.d t0, (%1)\n sc.d %0, %0, (%1)" : "+r"(v) : "r"(a) : "t0", "memory"); return v; }
/* LR at a, SC to the invalid page: QEMU 10 compares the SC's address with the LR's first. */
static uint64_t s_lrsc_other(uint64_t a) { uint64_t v = 7; __asm__ volatile("lr.d t0, (%1)\n sc.d %0, %0, (%2)" : "+r"(v) : "r"(a), "r"(VA(3)) : "t0", "memory"); return v; }
static uint64_t s_sc(uint64_t a) { uint64_t v = 7; __asm__ volatile("sc.d %0, %0, (%1)" : "+r"(v) : "r"(a) : "memory"); return v; }

static void s_run(const char *label, uint64_t (*fn)(uint64_t), uint64_t a)
{
    uint64_t b = ntraps;
    uint64_t r = run_lower(1, fn, a);
    report(label, b);
    if (ntraps == b)
        printf("  r=%lx\n", r);
}

static void map_pages(void)
{
    root[2] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    root[1] = PTE(l1, PTE_V);
    l1[0] = PTE(l0, PTE_V);
    for (int i = 0; i < 10; i++)
        for (int j = 0; j < 512; j++)
            data[i][j] = 0x1000 * i + j;
    l0[0] = PTE(data[0], PTE_V | PTE_R | PTE_A);                  /* read-only */
    l0[1] = PTE(data[1], PTE_V | PTE_R | PTE_W);                  /* A=0 D=0 */
    l0[2] = PTE(data[2], PTE_V | PTE_R | PTE_W | PTE_A);          /* D=0 */
    l0[3] = 0;                                                    /* invalid */
    l0[4] = PTE(data[4], PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) | (1UL << 61); /* PBMT=NC */
    l0[5] = PTE(data[5], PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) | (1UL << 63); /* N */
    l0[6] = PTE(data[6], PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) | (1UL << 54); /* reserved */
    l0[7] = PTE(data[7], PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    l0[8] = 0;
    l0[9] = PTE(data[9], PTE_V | PTE_R | PTE_W);                  /* A=0 D=0 (for misaligned) */
    l0[10] = PTE(data[10], PTE_V | PTE_R | PTE_X | PTE_A);        /* code, next page invalid */
    l0[11] = 0;
    __asm__ volatile("sfence.vma" ::: "memory");
}

static void vm_tests(void)
{
    puts_("== vm\n");
    map_pages();
    write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
    s_run("S ld ro", s_load, VA(0));
    s_run("S sd ro", s_store, VA(0));
    s_run("S amoadd ro", s_amo, VA(0));
    s_run("S lr ro", s_lr, VA(0));
    s_run("S lr+sc ro", s_lrsc, VA(0));
    s_run("S sc ro no reservation", s_sc, VA(0));
    s_run("S amoadd invalid", s_amo, VA(3));
    s_run("S lr invalid", s_lr, VA(3));
    s_run("S sc invalid no reservation", s_sc, VA(3));
    s_run("S lr ok, sc invalid", s_lrsc_other, VA(7));
    s_run("S ld pbmt", s_load, VA(4));
    s_run("S ld N", s_load, VA(5));
    s_run("S ld reserved54", s_load, VA(6) + 8);
    s_run("S ld ok", s_load, VA(7) + 16);
    printf("menvcfg %lx\n", read_csr(0x30a));
    /* ADUE = 1 (reset): hardware sets A and D. */
    s_run("S ld A=0 adue", s_load, VA(1));
    printf("  pte1 %lx\n", l0[1] & 0xff);
    s_val = 0x77;
    s_run("S sd D=0 adue", s_store, VA(2));
    printf("  pte2 %lx\n", l0[2] & 0xff);
    s_run("S amo A=0 adue", s_amo, VA(9));
    printf("  pte9 %lx\n", l0[9] & 0xff);
    /* An AMO on a read-only page with A=0: QEMU 10's load half sets A before the store fault. */
    l0[0] = PTE(data[0], PTE_V | PTE_R);
    __asm__ volatile("sfence.vma" ::: "memory");
    s_run("S amo ro A=0 adue", s_amo, VA(0));
    printf("  pte0 %lx\n", l0[0] & 0xff);
    l0[0] = PTE(data[0], PTE_V | PTE_R | PTE_A);
    /* ADUE = 0: clear A or D faults. */
    l0[1] = PTE(data[1], PTE_V | PTE_R | PTE_W);
    l0[2] = PTE(data[2], PTE_V | PTE_R | PTE_W | PTE_A);
    l0[9] = PTE(data[9], PTE_V | PTE_R | PTE_W | PTE_A);
    clear_csr(0x30a, 1UL << 61);
    __asm__ volatile("sfence.vma" ::: "memory");
    s_run("S ld A=0 svade", s_load, VA(1));
    s_run("S sd A=0 svade", s_store, VA(1));
    s_run("S ld D=0 svade", s_load, VA(2));
    s_run("S sd D=0 svade", s_store, VA(2));
    s_run("S amo D=0 svade", s_amo, VA(9));
    s_run("S lr D=0 svade", s_lr, VA(9));
    printf("  pte1 %lx pte2 %lx pte9 %lx\n", l0[1] & 0xff, l0[2] & 0xff, l0[9] & 0xff);
    set_csr(0x30a, 1UL << 61);
    __asm__ volatile("sfence.vma" ::: "memory");
    /* Misaligned store crossing into an invalid page: nothing written. */
    s_val = 0x1122334455667788ULL;
    s_run("S sd cross into invalid", s_store, VA(7) + 0xffc);
    printf("  last word %lx\n", data[7][511]);
    s_run("S ld cross into invalid", s_load, VA(7) + 0xffa);
    /* Crossing from an invalid page into a valid one. */
    s_run("S sd cross from invalid", s_store, VA(9) - 4 + 0x1000 * 0 - 0x1000 * 6 + 0x1000 * 5);
    /* Misaligned store crossing into a D=0 page with ADUE=1: both parts, D set. */
    l0[9] = PTE(data[9], PTE_V | PTE_R | PTE_W | PTE_A);
    __asm__ volatile("sfence.vma" ::: "memory");
    s_run("S sd cross 8->9", s_store, VA(9) - 4);
    printf("  data9[0] %lx pte9 %lx\n", data[9][0], l0[9] & 0xff);
    /* Crossing from a clean writable page (A=D=0) into a read-only one: the fault leaves the first
       page unwritten; are its A/D bits updated? */
    l0[9] = PTE(data[9], PTE_V | PTE_R | PTE_W);
    __asm__ volatile("sfence.vma" ::: "memory");
    s_run("S sd cross 9->10 (10 not writable)", s_store, VA(9) + 0xffc);
    printf("  data9 last %lx pte9 %lx\n", data[9][511], l0[9] & 0xff);
    s_run("S ld cross 9->10", s_load, VA(9) + 0xffc);
    /* Fetch of a 4-byte instruction straddling into an invalid page, and of a compressed one
       whose successor is there. */
    extern char lower_exit[];
    ((volatile uint16_t *)data[10])[2047] = 0x0013; /* low half of addi x0, x0, 0 */
    __asm__ volatile("fence.i" ::: "memory");
    resume_at = (uint64_t)lower_exit;
    s_run("S fetch straddling", (uint64_t(*)(uint64_t))(VA(10) + 0xffe), 0);
    printf("  epc=%lx\n", last_epc);
    resume_at = 0;
    ((volatile uint16_t *)data[10])[2047] = 0x0001; /* c.nop */
    __asm__ volatile("fence.i" ::: "memory");
    resume_at = (uint64_t)lower_exit;
    s_run("S fetch after c.nop", (uint64_t(*)(uint64_t))(VA(10) + 0xffe), 0);
    printf("  epc=%lx\n", last_epc);
    resume_at = 0;
    write_csr(satp, 0);
}

/* ---- Sstc ---- */
static uint64_t s_stimecmp(uint64_t a) { return read_csr(0x14d) == a; }
static uint64_t s_timer_wait(uint64_t a)
{
    uint64_t t = read_csr(time);
    write_csr(0x14d, t + a);
    set_csr(sie, MIP_STIP);
    set_csr(sstatus, MSTATUS_SIE);
    while (!s_irqs)
        __asm__ volatile("wfi");
    clear_csr(sstatus, MSTATUS_SIE);
    return read_csr(time) >= t + a;
}

static void sstc_tests(void)
{
    puts_("== sstc\n");
    if (!have_csr(0x14d))
        return;
    clear_csr(mstatus, MSTATUS_MIE);
    write_csr(mie, 0);
    printf("mip %lx\n", read_csr(mip));
    set_csr(0x30a, 1UL << 63);
    write_csr(0x14d, ~0ULL);
    printf("STCE=1 stimecmp=max: mip.STIP=%lx\n", (read_csr(mip) >> 5) & 1);
    write_csr(0x14d, 0);
    printf("stimecmp=0: mip.STIP=%lx\n", (read_csr(mip) >> 5) & 1);
    clear_csr(mip, MIP_STIP);
    printf("after csrc mip.STIP: %lx\n", (read_csr(mip) >> 5) & 1);
    uint64_t future = read_csr(time) + 100000;
    write_csr(0x14d, future);
    printf("stimecmp=future: mip.STIP=%lx\n", (read_csr(mip) >> 5) & 1);
    set_csr(mip, MIP_STIP);
    printf("after csrs mip.STIP: %lx\n", (read_csr(mip) >> 5) & 1);
    write_csr(mcounteren, 0);
    s_run("S stimecmp TM=0", s_stimecmp, future);
    write_csr(mcounteren, 2);
    s_run("S stimecmp TM=1", s_stimecmp, future);
    /* M waits in wfi for STIP (enabled in mie, not taken: MIE=0). */
    write_csr(0x14d, read_csr(time) + 300);
    write_csr(mie, MIP_STIP);
    /* minstret/mcycle across a wfi that waits are not printed: QEMU 10 counts such a wfi twice
       in minstret, and its mcycle includes host-timed idle (see the departures notes). */
    clear_csr(mstatus, MSTATUS_MIE);
    uint64_t t0 = read_csr(time);
    __asm__ volatile("wfi");
    uint64_t t1 = read_csr(time);
    printf("M wfi woke by STIP: %d, waited >= 300 ticks: %d\n", (int)((read_csr(mip) >> 5) & 1),
           t1 - t0 >= 290);
    write_csr(mie, 0);
    /* S timer interrupt delegated to S. */
    write_csr(mideleg, MIP_STIP);
    uint64_t r = run_lower(1, s_timer_wait, 2000);
    printf("S timer irqs %lx, late enough %lx\n", s_irqs, r);
    write_csr(mideleg, 0);
    write_csr(0x14d, ~0ULL);
    clear_csr(0x30a, 1UL << 63);
    printf("STCE=0: mip.STIP=%lx\n", (read_csr(mip) >> 5) & 1);
    set_csr(mip, MIP_STIP);
    printf("STCE=0 csrs: mip.STIP=%lx\n", (read_csr(mip) >> 5) & 1);
    clear_csr(mip, MIP_STIP);
    write_csr(mcounteren, 0);
}

/* ---- Sdtrig ---- */
extern char trig_fn[], trig_fn2[];
__asm__(".text\n .align 2\n trig_fn: nop\n nop\n li a0, 42\n ret\n trig_fn2: nop\n li a0, 43\n ret\n");
static volatile uint64_t tvar[2];
static uint64_t call_trig(uint64_t a) { return ((uint64_t(*)(uint64_t))(uintptr_t)trig_fn)(a); }
static uint64_t load_tvar(uint64_t a) { return tvar[a]; }
static uint64_t store_tvar(uint64_t a) { tvar[a] = 5; return 0; }
static uint64_t store_tvar_w(uint64_t a) { ((volatile uint32_t *)tvar)[a] = 6; return 0; }
static uint64_t amo_tvar(uint64_t a) { uint64_t v = 1; __asm__ volatile("amoadd.d %0, %0, (%1)" : "+r"(v) : "r"(&tvar[a]) : "memory"); return v; }

static void trig(unsigned i, uint64_t t1, uint64_t t2)
{
    write_csr(0x7a0, i);
    write_csr(0x7a1, 0); /* type 0: ignored, keeps the old type */
    write_csr(0x7a2, t2);
    write_csr(0x7a1, t1);
}

static void trig_run(const char *label, unsigned mode, uint64_t (*fn)(uint64_t), uint64_t a)
{
    uint64_t b = ntraps;
    uint64_t r = mode == 3 ? fn(a) : run_lower(mode, fn, a);
    report(label, b);
    printf("  r=%lx\n", r);
}

#define T2 (2UL << 60)
#define T6 (6UL << 60)
#define TM (1UL << 6)
#define TS (1UL << 4)
#define TU (1UL << 3)
#define TX (1UL << 2)
#define TST (1UL << 1)
#define TLD (1UL << 0)

static void trigger_tests(void)
{
    puts_("== triggers\n");
    if (!have_csr(0x7a0))
        return;
    for (uint64_t i = 0; i < 4; i++) {
        write_csr(0x7a0, i);
        printf("tselect <- %lx reads %lx, tinfo %lx\n", i, read_csr(0x7a0), read_csr(0x7a4));
    }
    write_csr(0x7a0, 0);
    static const uint64_t t1vals[] = {ALL, 0x2fffffffffffffffULL, 0x6fffffffffffffffULL, 0x6000000000040000ULL,
                                      0x2000000000010000ULL, 0x2000000000200000ULL, 
                                      0x5000000000000041ULL, 0xf000000000000000ULL, 0};
    for (unsigned i = 0; i < sizeof(t1vals) / sizeof(t1vals[0]); i++) {
        warl(0x7a1, t1vals[i]);
    }
    warl(0x7a2, ALL);
    warl(0x7a3, ALL);
    warl(0x7a3, 0x0003000000000000ULL);
    warl(0x7a3, 0x0005000000000000ULL);
    warl(0x7a8, ALL);
    warl(0x7a4, 0);
    /* Execute trigger in S. */
    trig(0, T2 | TS | TX, (uint64_t)trig_fn);
    trig_run("exec S", 1, call_trig, 0);
    printf("  epc=trig_fn %d\n", last_epc == (uint64_t)trig_fn);
    trig_run("exec U (S only)", 0, call_trig, 0);
    trig(0, T6 | TU | TX, (uint64_t)trig_fn + 4);
    trig_run("exec6 U +4", 0, call_trig, 0);
    trig(0, T2 | TM | TX, (uint64_t)trig_fn2);
    trig_run("exec M", 3, (uint64_t(*)(uint64_t))(uintptr_t)trig_fn2, 0);
    /* An execute trigger outranks the fetch fault at its address. */
    extern char lower_exit[];
    trig(0, T2 | TS | TX, 0x18000000UL);
    resume_at = (uint64_t)lower_exit;
    trig_run("exec S at unfetchable address", 1, (uint64_t(*)(uint64_t))0x18000000UL, 0);
    resume_at = 0;
    trig(0, T2, 0);
    resume_at = (uint64_t)lower_exit;
    trig_run("fetch S at unfetchable address", 1, (uint64_t(*)(uint64_t))0x18000000UL, 0);
    resume_at = 0;
    /* Load/store triggers. */
    trig(1, T6 | TS | TU | TLD, (uint64_t)&tvar[0]);
    trig_run("load S", 1, load_tvar, 0);
    trig_run("load S other", 1, load_tvar, 1);
    trig_run("store S (load trigger)", 1, store_tvar, 0);
    trig_run("amo S (load trigger)", 1, amo_tvar, 0);
    trig(1, T2 | TS | TST | (3UL << 16), (uint64_t)&tvar[0]);
    trig_run("store S size4", 1, store_tvar, 0);
    trig_run("store.w S +4 size4", 1, store_tvar_w, 1);
    trig_run("store.w S +0 size4", 1, store_tvar_w, 0);
    trig(1, T2 | TS | TST, (uint64_t)&tvar[0] + 4);
    trig_run("store.d S covering trigger+4", 1, store_tvar, 0);
    trig(1, T2 | TM | TLD, (uint64_t)&tvar[1]);
    trig_run("load M", 3, load_tvar, 1);
    trig(1, T2, 0);
    /* textra: mhselect 4 matches mcontext. */
    write_csr(0x7a8, 5);
    trig(0, T2 | TS | TX, (uint64_t)trig_fn);
    write_csr(0x7a3, (5UL << 51) | (4UL << 48));
    trig_run("exec S mcontext match", 1, call_trig, 0);
    write_csr(0x7a3, (6UL << 51) | (4UL << 48));
    trig_run("exec S mcontext mismatch", 1, call_trig, 0);
    write_csr(0x7a3, 0);
    trig(0, T2, 0);
    write_csr(0x7a8, 0);
}

/* ---- nested traps ---- */
/* In the handler of an ecall (a7 = 0x77): raise an illegal instruction (same level), then (for S)
   an ecall to M; print the status fields each trap left, restore the outer trap's state, return. */
static void nested(const char *who, struct trap_frame *f, int s_level)
{
    uint64_t st0 = s_level ? read_csr(sstatus) : read_csr(mstatus);
    uint64_t epc0 = s_level ? read_csr(sepc) : read_csr(mepc);
    printf("%s outer: cause=%lx pp=%lx pie=%lx\n", who, f->cause,
           s_level ? (st0 >> 8) & 1 : (st0 >> 11) & 3, s_level ? (st0 >> 5) & 1 : (st0 >> 7) & 1);
    uint64_t b = ntraps;
    __asm__ volatile(".insn 4, 0x0000000b" ::: "memory");
    /* The status the inner trap left (as its handler saw it), then what its xRET left. */
    uint64_t st1 = last_status, st2 = s_level ? read_csr(sstatus) : read_csr(mstatus);
    printf("%s inner illegal: traps %lx cause=%lx pp=%lx pie=%lx, after xret pp=%lx pie=%lx, epc moved %d\n", who,
           ntraps - b, last_cause, s_level ? (st1 >> 8) & 1 : (st1 >> 11) & 3,
           s_level ? (st1 >> 5) & 1 : (st1 >> 7) & 1, s_level ? (st2 >> 8) & 1 : (st2 >> 11) & 3,
           s_level ? (st2 >> 5) & 1 : (st2 >> 7) & 1, (s_level ? read_csr(sepc) : read_csr(mepc)) != epc0);
    if (s_level) {
        /* ecall from the S handler to M (not delegated). */
        b = ntraps;
        __asm__ volatile("li a7, 0\n ecall" ::: "a7", "memory");
        printf("S inner ecall: traps %lx cause=%lx mpp=%lx sstatus.spp=%lx\n", ntraps - b, last_cause,
               (last_status >> 11) & 3, (read_csr(sstatus) >> 8) & 1);
        write_csr(sstatus, st0);
        write_csr(sepc, epc0);
    } else {
        write_csr(mstatus, st0);
        write_csr(mepc, epc0);
    }
    f->epc += 4;
}

static uint64_t u_nest_ecall(uint64_t a)
{
    register uint64_t a7 __asm__("a7") = 0x77;
    __asm__ volatile("ecall" : "+r"(a7)::"memory");
    return a;
}

/* LCOFI (13) set by software in mip: taken like the standard interrupts, after STI. */
static void lcofi_tests(void)
{
    puts_("== lcofi\n");
    write_csr(mie, 0);
    clear_csr(mstatus, MSTATUS_MIE);
    set_csr(mip, 1UL << 13);
    printf("mip %lx\n", read_csr(mip) & ~MIP_MTIP);
    write_csr(mie, (1UL << 13) | MIP_SSIP);
    set_csr(mip, MIP_SSIP);
    set_csr(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop\n nop");
    clear_csr(mstatus, MSTATUS_MIE);
    printf("after MIE: mie %lx mip %lx\n", read_csr(mie), read_csr(mip) & ~MIP_MTIP);
    clear_csr(mip, (1UL << 13) | MIP_SSIP);
    write_csr(mie, 0);
}

static void nested_tests(void)
{
    puts_("== nested\n");
    nest = 1;
    run_lower(0, u_nest_ecall, 0);
    run_lower(1, u_nest_ecall, 0);
    write_csr(medeleg, (1 << 8) | (1 << 2));
    run_lower(0, u_nest_ecall, 0);
    write_csr(medeleg, 0);
    nest = 0;
    printf("mstatus after: mpp=%lx mpie=%lx spp=%lx spie=%lx\n", (read_csr(mstatus) >> 11) & 3,
           (read_csr(mstatus) >> 7) & 1, (read_csr(mstatus) >> 8) & 1, (read_csr(mstatus) >> 5) & 1);
}

/* ---- counters ---- */
static uint64_t s_scountovf(uint64_t a) { (void)a; return read_csr(0xda0); }

static void counter_tests(void)
{
    puts_("== counters\n");
    if (have_csr(0xda0)) {
        /* Sscofpmf: scountovf shows OF of the counters mcounteren lets S see (S reads it too). */
        write_csr(0x324, 1UL << 63);
        write_csr(0x325, 1UL << 63);
        write_csr(mcounteren, (1UL << 4) | (1UL << 5));
        printf("scountovf %lx\n", read_csr(0xda0));
        write_csr(mcounteren, 1UL << 4);
        printf("scountovf %lx\n", read_csr(0xda0));
        s_run("S scountovf", s_scountovf, 0);
        write_csr(mcounteren, 0);
        s_run("S scountovf mcounteren=0", s_scountovf, 0);
        write_csr(mcounteren, 0);
        write_csr(0x324, 0);
        write_csr(0x325, 0);
    }
    if (!have_csr(0xb03))
        return;
    if (have_csr(0xda0)) {
        /* Sscofpmf overflow: counter 3 counts instructions from -20; LCOFI (M, not delegated)
           is taken after exactly 20 of them: t1 counts the addis that retired before it. */
        write_csr(0x323, 2);
        write_csr(mie, 1UL << 13);
        irq_t1 = 0;
        __asm__ volatile("li t1, 0\n"
                         "csrs mstatus, 8\n"
                         "csrw 0xb03, %0\n"
                         ".rept 40\n addi t1, t1, 1\n .endr\n"
                         "csrc mstatus, 8\n" ::"r"(-20L)
                         : "t1", "memory");
        printf("lcofi after %ld addis, OF %lx, mip.LCOFIP %lx\n", (long)irq_t1, read_csr(0x323) >> 63,
               (read_csr(mip) >> 13) & 1);
        /* With OF set no new interrupt: the counter wraps silently. */
        clear_csr(mip, 1UL << 13);
        write_csr(mie, 1UL << 13);
        irq_t1 = 0;
        __asm__ volatile("li t1, 0\n"
                         "csrs mstatus, 8\n"
                         "csrw 0xb03, %0\n"
                         ".rept 30\n addi t1, t1, 1\n .endr\n"
                         "csrc mstatus, 8\n" ::"r"(-10L)
                         : "t1", "memory");
        printf("with OF set: irq t1 %ld, counter %lx\n", (long)irq_t1, read_csr(0xb03) < 100);
        write_csr(mie, 0);
        write_csr(0x323, 0);
        clear_csr(mip, 1UL << 13);
    }
    uint64_t a, b;
    write_csr(0x323, 2);
    __asm__ volatile("csrr %0, 0xb03\n nop\n nop\n nop\n nop\n nop\n csrr %1, 0xb03" : "=r"(a), "=r"(b));
    printf("hpm3 event 2 delta %lx\n", b - a);
    write_csr(0x324, 1);
    __asm__ volatile("csrr %0, 0xb04\n nop\n nop\n nop\n csrr %1, 0xb04" : "=r"(a), "=r"(b));
    printf("hpm4 event 1 delta %lx\n", b - a);
    write_csr(0x325, 3);
    __asm__ volatile("csrr %0, 0xb05\n nop\n nop\n nop\n csrr %1, 0xb05" : "=r"(a), "=r"(b));
    printf("hpm5 event 3 delta %lx\n", b - a);
    write_csr(0x320, 1UL << 3);
    __asm__ volatile("csrr %0, 0xb03\n nop\n nop\n nop\n csrr %1, 0xb03" : "=r"(a), "=r"(b));
    printf("hpm3 inhibited delta %lx\n", b - a);
    write_csr(0x320, 0);
    write_csr(0xb03, 100);
    __asm__ volatile("csrr %0, 0xb03" : "=r"(a));
    printf("hpm3 after write 100: %lx\n", a);
    write_csr(0x323, 0);
    write_csr(0x324, 0);
    write_csr(0x325, 0);
    /* QEMU 10's event map: each event counts on the first counter that selected it; a newly
       mapped counter reads icount - prev + value (prev = its value if written while not
       counting), i.e. it jumps to the instruction count. */
    write_csr(0xb06, 1000);
    write_csr(0x326, 2);
    __asm__ volatile("csrr %0, 0xb06\n csrr %1, minstret" : "=r"(a), "=r"(b));
    printf("hpm6 mapped after write 1000: minstret - hpm6 = %ld\n", (int64_t)(b - a));
    write_csr(0x327, 2);
    __asm__ volatile("csrr %0, 0xb07\n nop\n nop\n csrr %1, 0xb07" : "=r"(a), "=r"(b));
    printf("hpm7 same event: delta %lx\n", b - a);
    write_csr(0x326, 1);
    __asm__ volatile("csrr %0, 0xb06\n nop\n nop\n csrr %1, 0xb06" : "=r"(a), "=r"(b));
    printf("hpm6 event 1 (still mapped to 2 too): delta %lx\n", b - a);
    write_csr(0x320, 1UL << 6);
    __asm__ volatile("csrr %0, 0xb06\n nop\n nop\n csrr %1, 0xb06" : "=r"(a), "=r"(b));
    printf("hpm6 inhibited: delta %lx\n", b - a);
    write_csr(0x320, 0);
    __asm__ volatile("csrr %0, 0xb06\n nop\n nop\n csrr %1, 0xb06" : "=r"(a), "=r"(b));
    printf("hpm6 resumed: delta %lx\n", b - a);
    write_csr(0x326, 0);
    write_csr(0x327, 3);
    write_csr(0x327, 2);
    __asm__ volatile("csrr %0, 0xb07\n csrr %1, minstret" : "=r"(a), "=r"(b));
    printf("hpm7 mapped after 6 released: minstret - hpm7 = %ld\n", (int64_t)(b - a));
    write_csr(0x327, 0);
    __asm__ volatile("csrr %0, minstret\n nop\n nop\n csrr %1, minstret" : "=r"(a), "=r"(b));
    printf("minstret delta %lx\n", b - a);
    write_csr(0x320, 4);
    __asm__ volatile("csrr %0, minstret\n nop\n nop\n csrr %1, minstret" : "=r"(a), "=r"(b));
    printf("minstret inhibited delta %lx\n", b - a);
    write_csr(0x320, 0);
}
