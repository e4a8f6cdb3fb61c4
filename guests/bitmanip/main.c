/* bitmanip: the unprivileged extensions of QEMU 10's default rv64: Zba, Zbb, Zbc, Zbs (operand
   tables), Zicond (off by default: illegal), Zfa (fli, fminm/fmaxm, fround/froundnx, fcvtmod.w.d,
   fleq/fltq with NaNs, infinities, subnormals, rounding modes and fflags), Zawrs, the hint
   extensions (Zihintntl, Zicbop, Zihintpause), and Zicbom/Zicboz (envcfg gating from S/U, page
   and PMP faults, cbo.zero on RAM, ROM, unmapped space and over code being executed).
   Built with -march=rv64gc_zba_zbb_zbc_zbs_zicbom_zicboz_zicbop_zawrs; Zfa and Zicond via .insn. */
#include "check.h"

/* ---- traps ---------------------------------------------------------------------------------- */

static volatile uint64_t trap_cause, trap_tval, trap_count, trap_insn;
static volatile uint64_t resume_at; /* nonzero: a trap resumes there instead of skipping */

static void note_trap(struct trap_frame *f)
{
    trap_cause = f->cause;
    trap_tval = f->tval;
    /* The bits of the trapping instruction (its page is mapped wherever a trap is taken here). */
    trap_insn = insn_len(f->epc) == 4 ? *(volatile uint32_t *)f->epc : *(volatile uint16_t *)f->epc;
    trap_count++;
    if (resume_at) {
        f->epc = resume_at;
        resume_at = 0;
    } else {
        f->epc += insn_len(f->epc);
    }
}

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    note_trap(f);
}

void strap_handler(struct trap_frame *f)
{
    if (f->cause == 8 && f->x[17] == LOWER_EXIT_MAGIC) {
        lower_exit_from_s();
        return;
    }
    note_trap(f);
}

static void trap_reset(void) { trap_cause = trap_tval = trap_count = trap_insn = 0; }

/* Illegal-instruction traps raised by QEMU 10's helpers (wrs.nto under TW, the CBO envcfg checks)
   leave tval 0, where rewind writes the instruction bits as Sstvala (which QEMU advertises)
   requires; with `lax_tval` both print as "insn|0" (crates/cpu/tests/extensions.rs checks the
   bits). */
static int lax_tval;

static void print_trap(const char *what)
{
    if (!trap_count)
        printf("%s: ok\n", what);
    else if (lax_tval && trap_cause == 2 && (trap_tval == 0 || trap_tval == trap_insn))
        printf("%s: trap cause=2 tval=insn|0\n", what);
    else
        printf("%s: trap cause=%lx tval=%lx\n", what, trap_cause, trap_tval);
    trap_reset();
}

/* ---- Zba / Zbb / Zbc / Zbs -------------------------------------------------------------------- */

#define ASM_R1(op, a) ({ uint64_t __r; __asm__ volatile(op " %0, %1" : "=r"(__r) : "r"((uint64_t)(a))); __r; })

#define TABLE_R1(name)                                                                   \
    do {                                                                                 \
        for (unsigned __i = 0; __i < NVALS; __i++)                                       \
            printf("%s %x: 0x%016lx\n", name, __i, ASM_R1(name, VALS[__i]));            \
    } while (0)

#define TABLE_RI(name, imm)                                                              \
    do {                                                                                 \
        for (unsigned __i = 0; __i < NVALS; __i++)                                       \
            printf("%s %x,%d: 0x%016lx\n", name, __i, imm, ASM_RI(name, VALS[__i], imm)); \
    } while (0)

/* Shift/bit-index operands beyond the register width (W forms use only 5 bits). */
static const uint64_t SHAMTS[] = {0, 1, 7, 31, 32, 33, 63, 64, 65, 95, 127, 0xffffffffffffffe1ULL};
#define NSH (sizeof(SHAMTS) / sizeof(SHAMTS[0]))

#define TABLE_SH(name)                                                                   \
    do {                                                                                 \
        for (unsigned __i = 0; __i < NVALS; __i += 3)                                    \
            for (unsigned __j = 0; __j < NSH; __j++)                                     \
                printf("%s %x s%x: 0x%016lx\n", name, __i, __j, ASM_RR(name, VALS[__i], SHAMTS[__j])); \
    } while (0)

static void bitmanip_tables(void)
{
    puts_("-- Zba\n");
    TABLE_RR("sh1add");
    TABLE_RR("sh2add");
    TABLE_RR("sh3add");
    TABLE_RR("add.uw");
    TABLE_RR("sh1add.uw");
    TABLE_RR("sh2add.uw");
    TABLE_RR("sh3add.uw");
    TABLE_RI("slli.uw", 0);
    TABLE_RI("slli.uw", 1);
    TABLE_RI("slli.uw", 31);
    TABLE_RI("slli.uw", 32);
    TABLE_RI("slli.uw", 63);
    printf("zext.w via add.uw zero: 0x%016lx\n", ASM_RR("add.uw", 0xfedcba9876543210ULL, 0));

    puts_("-- Zbb\n");
    TABLE_RR("andn");
    TABLE_RR("orn");
    TABLE_RR("xnor");
    TABLE_RR("max");
    TABLE_RR("maxu");
    TABLE_RR("min");
    TABLE_RR("minu");
    TABLE_R1("clz");
    TABLE_R1("clzw");
    TABLE_R1("ctz");
    TABLE_R1("ctzw");
    TABLE_R1("cpop");
    TABLE_R1("cpopw");
    TABLE_R1("sext.b");
    TABLE_R1("sext.h");
    TABLE_R1("zext.h");
    TABLE_R1("orc.b");
    TABLE_R1("rev8");
    TABLE_SH("rol");
    TABLE_SH("rolw");
    TABLE_SH("ror");
    TABLE_SH("rorw");
    TABLE_RI("rori", 0);
    TABLE_RI("rori", 1);
    TABLE_RI("rori", 32);
    TABLE_RI("rori", 63);
    TABLE_RI("roriw", 0);
    TABLE_RI("roriw", 1);
    TABLE_RI("roriw", 31);

    puts_("-- Zbc\n");
    TABLE_RR("clmul");
    TABLE_RR("clmulh");
    TABLE_RR("clmulr");

    puts_("-- Zbs\n");
    TABLE_SH("bclr");
    TABLE_SH("bext");
    TABLE_SH("binv");
    TABLE_SH("bset");
    TABLE_RI("bclri", 0);
    TABLE_RI("bclri", 31);
    TABLE_RI("bclri", 63);
    TABLE_RI("bexti", 0);
    TABLE_RI("bexti", 32);
    TABLE_RI("bexti", 63);
    TABLE_RI("binvi", 0);
    TABLE_RI("binvi", 31);
    TABLE_RI("binvi", 63);
    TABLE_RI("bseti", 0);
    TABLE_RI("bseti", 32);
    TABLE_RI("bseti", 63);
}

/* ---- Zicond (off in QEMU 10's default rv64) ------------------------------------------------- */

static void zicond(void)
{
    puts_("-- Zicond (off by default)\n");
    uint64_t r = 0x77;
    trap_reset();
    __asm__ volatile(".insn r 0x33, 5, 7, %0, %1, %2" : "+r"(r) : "r"(5UL), "r"(0UL));
    print_trap("czero.eqz");
    printf("czero.eqz rd (0x77 if it trapped): %lx\n", r);
    __asm__ volatile(".insn r 0x33, 7, 7, %0, %1, %2" : "+r"(r) : "r"(5UL), "r"(1UL));
    print_trap("czero.nez");
}

/* ---- Zfa ------------------------------------------------------------------------------------ */

static inline void clear_flags(void) { __asm__ volatile("csrw fflags, zero"); }
static inline uint64_t get_flags(void) { uint64_t f; __asm__ volatile("csrr %0, fflags" : "=r"(f)); return f; }
static inline void set_frm(uint64_t rm) { __asm__ volatile("fsrm %0" ::"r"(rm)); }

#define BOX(x) (0xffffffff00000000ULL | (uint32_t)(x))

static const uint64_t ZS[] = {
    BOX(0x00000000), BOX(0x80000000), BOX(0x3f800000), BOX(0xbf800000), BOX(0x3f000000), BOX(0xbf000000),
    BOX(0x3fc00000), BOX(0x40200000), BOX(0xc0200000), BOX(0x3effffff), BOX(0x4b7fffff), BOX(0x4affffff),
    BOX(0x00000001), BOX(0x80800000), BOX(0x7f7fffff), BOX(0x7f800000), BOX(0xff800000), BOX(0x7fc00000),
    BOX(0x7f800001), BOX(0xffc00001), BOX(0x3dcccccd), 0x000000003f800000ULL, /* not NaN-boxed */
};
static const uint64_t ZD[] = {
    0x0000000000000000ULL, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
    0x3fe0000000000000ULL, 0xbfe0000000000000ULL, 0x3ff8000000000000ULL, 0x4004000000000000ULL,
    0xc004000000000000ULL, 0x3fdfffffffffffffULL, 0x432fffffffffffffULL, 0x4330000000000000ULL,
    0x0000000000000001ULL, 0x8010000000000000ULL, 0x7fefffffffffffffULL, 0x7ff0000000000000ULL,
    0xfff0000000000000ULL, 0x7ff8000000000000ULL, 0x7ff0000000000001ULL, 0xfff8000000000001ULL,
    0x3fb999999999999aULL, 0x41dfffffffe00000ULL,
};
#define NZS (sizeof(ZS) / sizeof(ZS[0]))
#define NZD (sizeof(ZD) / sizeof(ZD[0]))

#define DEF_ZFA_FF2(fn, f3, f7)                                                             \
    static uint64_t fn(uint64_t a, uint64_t b)                                              \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n .insn r 0x53, " #f3 ", " #f7 ", ft2, ft0, ft1\n fmv.x.d %0, ft2" \
                         : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1", "ft2");                 \
        return r;                                                                           \
    }
#define DEF_ZFA_FX2(fn, f3, f7)                                                             \
    static uint64_t fn(uint64_t a, uint64_t b)                                              \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n .insn r 0x53, " #f3 ", " #f7 ", %0, ft0, ft1" \
                         : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1");                        \
        return r;                                                                           \
    }
/* fround (rs2 = 4) / froundnx (rs2 = 5) with a static rounding mode. */
#define DEF_ZFA_ROUND(fn, f7, rs2, rm)                                                      \
    static uint64_t fn(uint64_t a)                                                          \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n .insn r 0x53, " #rm ", " #f7 ", ft2, ft0, x" #rs2 "\n fmv.x.d %0, ft2" \
                         : "=r"(r) : "r"(a) : "ft0", "ft2");                                \
        return r;                                                                           \
    }

DEF_ZFA_FF2(fminm_s, 2, 0x14) DEF_ZFA_FF2(fmaxm_s, 3, 0x14) DEF_ZFA_FF2(fminm_d, 2, 0x15)
DEF_ZFA_FF2(fmaxm_d, 3, 0x15) DEF_ZFA_FX2(fleq_s, 4, 0x50) DEF_ZFA_FX2(fltq_s, 5, 0x50)
DEF_ZFA_FX2(fleq_d, 4, 0x51) DEF_ZFA_FX2(fltq_d, 5, 0x51)

#define ROUNDS(X, f7, rs2, pre)                                                             \
    X(pre##0, f7, rs2, 0) X(pre##1, f7, rs2, 1) X(pre##2, f7, rs2, 2) X(pre##3, f7, rs2, 3)  \
    X(pre##4, f7, rs2, 4) X(pre##7, f7, rs2, 7)
ROUNDS(DEF_ZFA_ROUND, 0x20, 4, fround_s_rm)
ROUNDS(DEF_ZFA_ROUND, 0x20, 5, froundnx_s_rm)
ROUNDS(DEF_ZFA_ROUND, 0x21, 4, fround_d_rm)
ROUNDS(DEF_ZFA_ROUND, 0x21, 5, froundnx_d_rm)

typedef uint64_t (*fn1)(uint64_t);
typedef uint64_t (*fn2)(uint64_t, uint64_t);
static const fn1 ROUND_FNS[4][6] = {
    {fround_s_rm0, fround_s_rm1, fround_s_rm2, fround_s_rm3, fround_s_rm4, fround_s_rm7},
    {froundnx_s_rm0, froundnx_s_rm1, froundnx_s_rm2, froundnx_s_rm3, froundnx_s_rm4, froundnx_s_rm7},
    {fround_d_rm0, fround_d_rm1, fround_d_rm2, fround_d_rm3, fround_d_rm4, fround_d_rm7},
    {froundnx_d_rm0, froundnx_d_rm1, froundnx_d_rm2, froundnx_d_rm3, froundnx_d_rm4, froundnx_d_rm7},
};
static const char *const ROUND_NAMES[4] = {"fround.s", "froundnx.s", "fround.d", "froundnx.d"};

static uint64_t fcvtmod_w_d(uint64_t a)
{
    uint64_t r;
    __asm__ volatile("fmv.d.x ft0, %1\n .insn r 0x53, 1, 0x61, %0, ft0, x8" : "=r"(r) : "r"(a) : "ft0");
    return r;
}

#define FLI_S(i) ({ uint64_t __r; __asm__ volatile(".insn r 0x53, 0, 0x78, ft2, x" #i ", x1\n fmv.x.d %0, ft2" : "=r"(__r) :: "ft2"); __r; })
#define FLI_D(i) ({ uint64_t __r; __asm__ volatile(".insn r 0x53, 0, 0x79, ft2, x" #i ", x1\n fmv.x.d %0, ft2" : "=r"(__r) :: "ft2"); __r; })
#define FLI_BOTH(i) printf("fli %d: s=%016lx d=%016lx\n", i, FLI_S(i), FLI_D(i));

static void table2(const char *name, fn2 f, const uint64_t *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < n; j++) {
            clear_flags();
            uint64_t r = f(v[i], v[j]);
            printf("%s %x %x: %016lx fl=%lx\n", name, i, j, r, get_flags());
        }
}

static void zfa(void)
{
    puts_("-- Zfa fli\n");
    FLI_BOTH(0) FLI_BOTH(1) FLI_BOTH(2) FLI_BOTH(3) FLI_BOTH(4) FLI_BOTH(5) FLI_BOTH(6) FLI_BOTH(7)
    FLI_BOTH(8) FLI_BOTH(9) FLI_BOTH(10) FLI_BOTH(11) FLI_BOTH(12) FLI_BOTH(13) FLI_BOTH(14)
    FLI_BOTH(15) FLI_BOTH(16) FLI_BOTH(17) FLI_BOTH(18) FLI_BOTH(19) FLI_BOTH(20) FLI_BOTH(21)
    FLI_BOTH(22) FLI_BOTH(23) FLI_BOTH(24) FLI_BOTH(25) FLI_BOTH(26) FLI_BOTH(27) FLI_BOTH(28)
    FLI_BOTH(29) FLI_BOTH(30) FLI_BOTH(31)

    puts_("-- Zfa fminm/fmaxm/fleq/fltq\n");
    table2("fminm.s", fminm_s, ZS, NZS);
    table2("fmaxm.s", fmaxm_s, ZS, NZS);
    table2("fleq.s", fleq_s, ZS, NZS);
    table2("fltq.s", fltq_s, ZS, NZS);
    table2("fminm.d", fminm_d, ZD, NZD);
    table2("fmaxm.d", fmaxm_d, ZD, NZD);
    table2("fleq.d", fleq_d, ZD, NZD);
    table2("fltq.d", fltq_d, ZD, NZD);

    puts_("-- Zfa fround/froundnx (rm 0-4 and dyn with frm 0-4)\n");
    for (unsigned k = 0; k < 4; k++) {
        const uint64_t *v = k < 2 ? ZS : ZD;
        unsigned n = k < 2 ? NZS : NZD;
        for (unsigned i = 0; i < n; i++)
            for (unsigned m = 0; m < 6; m++) {
                unsigned frms = m == 5 ? 5 : 1;
                for (unsigned frm = 0; frm < frms; frm++) {
                    set_frm(frm);
                    clear_flags();
                    uint64_t r = ROUND_FNS[k][m](v[i]);
                    printf("%s %x rm%u/%u: %016lx fl=%lx\n", ROUND_NAMES[k], i, m == 5 ? 7 : m, frm, r,
                           get_flags());
                }
            }
    }
    set_frm(0);

    puts_("-- Zfa fcvtmod.w.d\n");
    static const uint64_t M[] = {
        0x41dfffffffc00000ULL, /* 2^31 - 1 */
        0x41e0000000000000ULL, /* 2^31 */
        0xc1e0000000000000ULL, /* -2^31 */
        0xc1e0000000200000ULL, /* -2^31 - 1 */
        0x41dfffffffe00000ULL, /* 2^31 - 0.5 */
        0x41f0000000500000ULL, /* 2^32 + 5 */
        0xc1f0000000500000ULL, /* -(2^32 + 5) */
        0x43e0000000000000ULL, /* 2^63 */
        0x43f0000000000001ULL, /* 2^64 + 2^12 */
        0x4410000000000003ULL, /* above 2^66 */
        0x44b0000000000001ULL, /* 2^76 + ulp */
        0x7e37e43c8800759cULL, /* 1e300 */
        0xc00d99999999999aULL, /* -3.7 */
        0x3feccccccccccccdULL, /* 0.9 */
        0x800fffffffffffffULL, /* -subnormal */
    };
    for (unsigned i = 0; i < NZD; i++) {
        clear_flags();
        uint64_t r = fcvtmod_w_d(ZD[i]);
        printf("fcvtmod.w.d %x: %016lx fl=%lx\n", i, r, get_flags());
    }
    for (unsigned i = 0; i < sizeof(M) / sizeof(M[0]); i++) {
        clear_flags();
        uint64_t r = fcvtmod_w_d(M[i]);
        printf("fcvtmod.w.d m%x: %016lx fl=%lx\n", i, r, get_flags());
    }

    puts_("-- Zfa illegal forms and FS\n");
    trap_reset();
    __asm__ volatile(".insn r 0x53, 5, 0x20, ft2, ft0, x4" ::: "ft2"); /* fround.s rm=5 */
    print_trap("fround.s rm=5");
    set_frm(6);
    __asm__ volatile(".insn r 0x53, 7, 0x21, ft2, ft0, x5" ::: "ft2"); /* froundnx.d dyn, frm=6 */
    print_trap("froundnx.d dyn frm=6");
    set_frm(0);
    uint64_t x = 0;
    __asm__ volatile(".insn r 0x53, 0, 0x71, %0, ft0, x1" : "+r"(x)); /* fmvh.x.d: RV32 only */
    print_trap("fmvh.x.d");
    __asm__ volatile(".insn r 0x53, 0, 0x59, ft2, x5, x6" ::: "ft2"); /* fmvp.d.x: RV32 only */
    print_trap("fmvp.d.x");
    __asm__ volatile(".insn r 0x53, 0, 0x61, %0, ft0, x8" : "+r"(x)); /* fcvtmod.w.d rm != rtz */
    print_trap("fcvtmod.w.d rm=0");
    __asm__ volatile(".insn r 0x53, 0, 0x7a, ft2, x3, x1" ::: "ft2"); /* fli.h: no Zfh */
    print_trap("fli.h");
    __asm__ volatile(".insn r 0x53, 2, 0x16, ft2, ft0, ft1" ::: "ft2"); /* fminm.h */
    print_trap("fminm.h");
    /* FS: clean -> dirty on fli; off -> illegal. */
    clear_csr(mstatus, MSTATUS_FS);
    set_csr(mstatus, 2UL << 13);
    printf("FS before fli: %lx\n", (read_csr(mstatus) >> 13) & 3);
    (void)FLI_D(5);
    printf("FS after fli: %lx\n", (read_csr(mstatus) >> 13) & 3);
    /* Quiet compares of non-signaling operands change no FP state. */
    __asm__ volatile("fmv.d.x ft0, %0\n fmv.d.x ft1, zero" ::"r"(0x7ff8000000000000ULL) : "ft0", "ft1");
    clear_flags();
    clear_csr(mstatus, MSTATUS_FS);
    set_csr(mstatus, 2UL << 13);
    __asm__ volatile(".insn r 0x53, 5, 0x51, %0, ft0, ft1" : "=r"(x));
    printf("FS after fltq.d qNaN: %lx fl=%lx r=%lx\n", (read_csr(mstatus) >> 13) & 3, get_flags(), x);
    clear_csr(mstatus, MSTATUS_FS);
    __asm__ volatile(".insn r 0x53, 0, 0x78, ft2, x3, x1" ::: "ft2");
    print_trap("fli.s with FS=off");
    __asm__ volatile(".insn r 0x53, 1, 0x61, %0, ft0, x8" : "+r"(x));
    print_trap("fcvtmod.w.d with FS=off");
    set_csr(mstatus, 1UL << 13);
}

/* ---- Zawrs and hints ------------------------------------------------------------------------ */

static uint64_t wrs_nto(uint64_t arg)
{
    (void)arg;
    __asm__ volatile("wrs.nto");
    return 0;
}

static uint64_t wrs_sto(uint64_t arg)
{
    (void)arg;
    __asm__ volatile("wrs.sto");
    return 0;
}

static uint64_t hints(uint64_t arg)
{
    (void)arg;
    static uint64_t scratch[8] __attribute__((aligned(64)));
    uint64_t p = (uint64_t)scratch;
    __asm__ volatile("prefetch.i 0(%0)\n prefetch.r 64(%0)\n prefetch.w -64(%0)\n" ::"r"(p));
    __asm__ volatile(".insn r 0x33, 0, 0, x0, x0, x2\n" /* ntl.p1 */
                     ".insn r 0x33, 0, 0, x0, x0, x3\n" /* ntl.pall */
                     ".insn r 0x33, 0, 0, x0, x0, x4\n" /* ntl.s1 */
                     ".insn r 0x33, 0, 0, x0, x0, x5\n" /* ntl.all */
                     ".2byte 0x900a\n"                  /* c.ntl.p1 */
                     ".2byte 0x900e\n"                  /* c.ntl.pall */
                     ".2byte 0x9012\n"                  /* c.ntl.s1 */
                     ".2byte 0x9016\n"                  /* c.ntl.all */
                     "pause\n");
    return 0;
}

static void zawrs_and_hints(void)
{
    puts_("-- Zawrs\n");
    trap_reset();
    lax_tval = 1;
    wrs_nto(0);
    print_trap("wrs.nto M");
    wrs_sto(0);
    print_trap("wrs.sto M");
    run_lower(1, wrs_nto, 0);
    print_trap("wrs.nto S TW=0");
    run_lower(0, wrs_nto, 0);
    print_trap("wrs.nto U TW=0");
    set_csr(mstatus, 1UL << 21);
    wrs_nto(0);
    print_trap("wrs.nto M TW=1");
    run_lower(1, wrs_nto, 0);
    print_trap("wrs.nto S TW=1");
    run_lower(0, wrs_nto, 0);
    print_trap("wrs.nto U TW=1");
    run_lower(0, wrs_sto, 0);
    print_trap("wrs.sto U TW=1");
    clear_csr(mstatus, 1UL << 21);
    static uint64_t word;
    uint64_t sc;
    __asm__ volatile("lr.d t0, (%1)\n wrs.sto\n sc.d %0, t0, (%1)" : "=r"(sc) : "r"(&word) : "t0", "memory");
    lax_tval = 0;
    printf("sc.d after wrs.sto: %lu\n", sc);
    __asm__ volatile("lr.d t0, (%1)\n wrs.nto\n sc.d %0, t0, (%1)" : "=r"(sc) : "r"(&word) : "t0", "memory");
    printf("sc.d after wrs.nto: %lu\n", sc);
    __asm__ volatile("lr.d t0, (%1)\n sc.d %0, t0, (%1)" : "=r"(sc) : "r"(&word) : "t0", "memory");
    printf("sc.d without wrs: %lu\n", sc);

    puts_("-- hints (Zicbop, Zihintntl, Zihintpause)\n");
    hints(0);
    print_trap("hints M");
    run_lower(0, hints, 0);
    print_trap("hints U");
}

/* ---- Zicbom / Zicboz -------------------------------------------------------------------------- */

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE(pa, flags) ((((uint64_t)(pa)) >> 12) << 10 | (flags))
#define NAPOT(base, size) ((((uint64_t)(base)) >> 2) | (((size) >> 3) - 1))

typedef uint64_t page_t[512];
static page_t root __attribute__((aligned(4096)));
static page_t l1 __attribute__((aligned(4096)));
static page_t l0 __attribute__((aligned(4096)));
static page_t rw_page __attribute__((aligned(4096)));
static page_t ro_page __attribute__((aligned(4096)));
static page_t xo_page __attribute__((aligned(4096)));
static page_t u_page __attribute__((aligned(4096)));
static page_t pmp_page __attribute__((aligned(4096)));
static uint32_t code_page[1024] __attribute__((aligned(4096)));

#define VA_RW 0x40000000UL
#define VA_RO 0x40001000UL
#define VA_XO 0x40002000UL
#define VA_U 0x40003000UL
#define VA_UNMAPPED 0x40004000UL

#define CBO(op, p) __asm__ volatile(op " (%0)" ::"r"(p) : "memory")

/* Set the CBO enables of menvcfg only: QEMU 10 also keeps ADUE (hardware A/D updates) there. */
static void menv(uint64_t v)
{
    clear_csr(menvcfg, 0xf0);
    set_csr(menvcfg, v);
}


static uint64_t do_zero(uint64_t a) { CBO("cbo.zero", a); return 0; }
static uint64_t do_clean(uint64_t a) { CBO("cbo.clean", a); return 0; }
static uint64_t do_flush(uint64_t a) { CBO("cbo.flush", a); return 0; }
static uint64_t do_inval(uint64_t a) { CBO("cbo.inval", a); return 0; }

static const struct {
    const char *name;
    uint64_t (*fn)(uint64_t);
} CBOS[] = {{"cbo.zero", do_zero}, {"cbo.clean", do_clean}, {"cbo.flush", do_flush}, {"cbo.inval", do_inval}};

static void fill(uint64_t *p, unsigned n, uint64_t v)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = v + i;
}

static void dump_blocks(const char *what, const uint64_t *p)
{
    /* One digit per 8 bytes: 0 = zeroed, 1 = untouched, over 3 blocks of 64 bytes. */
    printf("%s: ", what);
    for (unsigned i = 0; i < 24; i++)
        uart_putc(p[i] == 0 ? '0' : '1');
    uart_putc('\n');
}

/* In S-mode with paging: every CBO on every kind of page. */
static uint64_t s_paging(uint64_t arg)
{
    (void)arg;
    static const struct {
        const char *name;
        uint64_t va;
    } T[] = {{"rw", VA_RW + 0x48}, {"ro", VA_RO + 0x7f}, {"xo", VA_XO + 0x40},
             {"u", VA_U + 0x1}, {"unmapped", VA_UNMAPPED + 0x99}};
    for (unsigned t = 0; t < sizeof(T) / sizeof(T[0]); t++)
        for (unsigned c = 0; c < 4; c++) {
            char buf[48];
            CBOS[c].fn(T[t].va);
            const char *a = CBOS[c].name, *b = T[t].name;
            unsigned k = 0;
            while (*a)
                buf[k++] = *a++;
            buf[k++] = ' ';
            while (*b)
                buf[k++] = *b++;
            buf[k] = 0;
            print_trap(buf);
        }
    set_csr(sstatus, MSTATUS_MXR);
    do_clean(VA_XO);
    print_trap("cbo.clean xo with MXR");
    do_zero(VA_XO);
    print_trap("cbo.zero xo with MXR");
    clear_csr(sstatus, MSTATUS_MXR);
    set_csr(sstatus, MSTATUS_SUM);
    do_zero(VA_U + 0x40);
    print_trap("cbo.zero u with SUM");
    clear_csr(sstatus, MSTATUS_SUM);
    return 0;
}

static void envcfg_matrix(void)
{
    puts_("-- CBO envcfg gating\n");
    lax_tval = 1;
    static uint64_t buf[24] __attribute__((aligned(64)));
    static const uint64_t MENV[] = {0, 0x10, 0x30, 0x40, 0x80, 0xf0};
    static const uint64_t SENV[] = {0, 0x10, 0x40, 0x80, 0xf0};
    for (unsigned m = 0; m < sizeof(MENV) / sizeof(MENV[0]); m++) {
        menv(MENV[m]);
        printf("menvcfg=%lx (reads %lx)\n", MENV[m], read_csr(menvcfg) & 0xf0);
        for (unsigned c = 0; c < 4; c++) {
            fill(buf, 24, 0x100);
            run_lower(1, CBOS[c].fn, (uint64_t)buf + 64 + 8);
            printf("  S ");
            print_trap(CBOS[c].name);
            if (c == 0)
                dump_blocks("  S zero", buf);
            for (unsigned s = 0; s < sizeof(SENV) / sizeof(SENV[0]); s++) {
                write_csr(senvcfg, SENV[s]);
                fill(buf, 24, 0x100);
                run_lower(0, CBOS[c].fn, (uint64_t)buf + 64 + 63);
                printf("  U senvcfg=%lx ", SENV[s]);
                print_trap(CBOS[c].name);
                if (c == 0)
                    dump_blocks("  U zero", buf);
            }
            write_csr(senvcfg, 0);
        }
    }
    printf("senvcfg reads %lx\n", swap_csr(senvcfg, 0xf0) & 0xf0);
    printf("senvcfg reads %lx\n", read_csr(senvcfg) & 0xf0);
    write_csr(senvcfg, 0);
    menv(0);
    /* M-mode ignores envcfg. */
    fill(buf, 24, 0x100);
    for (unsigned c = 0; c < 4; c++) {
        CBOS[c].fn((uint64_t)buf + 64);
        printf("M menvcfg=0 ");
        print_trap(CBOS[c].name);
    }
    dump_blocks("M zero", buf);
    lax_tval = 0;
}

static void paging(void)
{
    puts_("-- CBO with Sv39 from S\n");
    fill(rw_page, 512, 0x1000);
    fill(ro_page, 512, 0x2000);
    fill(u_page, 512, 0x3000);
    root[0] = PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D); /* devices (UART) */
    root[1] = PTE(l1, PTE_V);
    root[2] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    l1[0] = PTE(l0, PTE_V);
    l0[0] = PTE(rw_page, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    l0[1] = PTE(ro_page, PTE_V | PTE_R | PTE_A);
    l0[2] = PTE(xo_page, PTE_V | PTE_X | PTE_A);
    l0[3] = PTE(u_page, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    menv(0xf0);
    write_csr(medeleg, (1UL << 2) | (1UL << 5) | (1UL << 7) | (1UL << 12) | (1UL << 13) | (1UL << 15));
    write_csr(stvec, (uint64_t)strap_entry);
    write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
    __asm__ volatile("sfence.vma");
    run_lower(1, s_paging, 0);
    write_csr(satp, 0);
    __asm__ volatile("sfence.vma");
    write_csr(medeleg, 0);
    dump_blocks("rw page", rw_page);
    dump_blocks("ro page", ro_page);
    dump_blocks("u page", u_page);
    /* A/D: cbo.clean on a page without A is a load (A set); cbo.zero is a store (A and D). */
    l0[0] = PTE(rw_page, PTE_V | PTE_R | PTE_W);
    l0[1] = PTE(ro_page, PTE_V | PTE_R | PTE_W);
    write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
    __asm__ volatile("sfence.vma");
    write_csr(medeleg, (1UL << 12) | (1UL << 13) | (1UL << 15));
    run_lower(1, do_clean, VA_RW);
    print_trap("cbo.clean no-A page");
    run_lower(1, do_zero, VA_RO);
    print_trap("cbo.zero no-A page");
    write_csr(satp, 0);
    __asm__ volatile("sfence.vma");
    write_csr(medeleg, 0);
    printf("pte after clean: A=%lu D=%lu\n", (l0[0] >> 6) & 1, (l0[0] >> 7) & 1);
    printf("pte after zero: A=%lu D=%lu\n", (l0[1] >> 6) & 1, (l0[1] >> 7) & 1);
    /* MPRV from M: CBOs translate like the data accesses of MPP. */
    write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
    __asm__ volatile("sfence.vma");
    clear_csr(mstatus, MSTATUS_MPP);
    set_csr(mstatus, 1UL << 11);
    __asm__ volatile("csrs mstatus, %0\n cbo.zero (%1)\n csrc mstatus, %0" ::"r"(MSTATUS_MPRV), "r"(VA_UNMAPPED)
                     : "memory");
    clear_csr(mstatus, MSTATUS_MPRV);
    print_trap("M MPRV=1 cbo.zero unmapped");
    clear_csr(mstatus, MSTATUS_MPP);
    set_csr(mstatus, 1UL << 11);
    __asm__ volatile("csrs mstatus, %0\n cbo.zero (%1)\n csrc mstatus, %0" ::"r"(MSTATUS_MPRV), "r"(VA_RW + 0x80)
                     : "memory");
    clear_csr(mstatus, MSTATUS_MPRV);
    print_trap("M MPRV=1 cbo.zero rw");
    set_csr(mstatus, MSTATUS_MPP);
    write_csr(satp, 0);
    __asm__ volatile("sfence.vma");
    dump_blocks("rw page after MPRV zero", rw_page + 8);
    menv(0);
}

static void pmp(void)
{
    puts_("-- CBO and PMP\n");
    /* pmp_page: [0,64) no access, [64,128) R, [128,192) RW, [192,224) R + [224,256) RW. */
    write_csr(pmpaddr0, NAPOT(pmp_page, 64));
    write_csr(pmpaddr1, NAPOT((uint64_t)pmp_page + 64, 64));
    write_csr(pmpaddr2, NAPOT((uint64_t)pmp_page + 192, 32));
    write_csr(pmpaddr3, ~0ULL);
    write_csr(pmpcfg0, 0x18ULL | (0x19ULL << 8) | (0x19ULL << 16) | (0x1fULL << 24));
    menv(0xf0);
    __asm__ volatile("sfence.vma");
    for (unsigned blk = 0; blk < 4; blk++)
        for (unsigned c = 0; c < 4; c++) {
            fill(pmp_page, 32, 0x9000);
            run_lower(1, CBOS[c].fn, (uint64_t)pmp_page + blk * 64 + 5);
            printf("block %u ", blk);
            if (trap_count && trap_tval)
                trap_tval -= (uint64_t)pmp_page;
            print_trap(CBOS[c].name);
        }
    /* M-mode with a locked no-access entry. */
    write_csr(pmpcfg0, 0x98ULL | (0x19ULL << 8) | (0x19ULL << 16) | (0x1fULL << 24));
    for (unsigned c = 0; c < 4; c++) {
        CBOS[c].fn((uint64_t)pmp_page + 8);
        printf("M locked ");
        if (trap_count && trap_tval)
            trap_tval -= (uint64_t)pmp_page;
        print_trap(CBOS[c].name);
    }
    menv(0);
}

static void cbo_zero_special(void)
{
    puts_("-- cbo.zero on ROM, unmapped space, and code\n");
    volatile uint32_t *rom = (volatile uint32_t *)0x1000UL;
    uint32_t before = rom[0];
    CBO("cbo.zero", 0x1004UL);
    print_trap("cbo.zero rom");
    printf("rom word unchanged: %d\n", rom[0] == before);
    CBO("cbo.zero", 0x07000010UL);
    print_trap("cbo.zero unmapped");
    CBO("cbo.clean", 0x07000010UL);
    print_trap("cbo.clean unmapped");
    CBO("cbo.inval", 0x10000000UL);
    print_trap("cbo.inval uart");

    /* Code in its own page: 15 x addi a0,a0,1; ret, run once (so both emulators have it
       translated), then zeroed by cbo.zero from elsewhere and called again without fence.i: the
       translation must be dropped, the first parcel is now 0x0000 (illegal, tval 0). (Zeroing
       the block that is running is left out: QEMU finishes its stale translation block there.) */
    uint32_t *c = code_page + 16;
    for (unsigned i = 0; i < 15; i++)
        c[i] = 0x00150513; /* addi a0, a0, 1 */
    c[15] = 0x00008067;    /* ret */
    __asm__ volatile("fence.i");
    uint64_t (*f)(uint64_t) = (uint64_t(*)(uint64_t))(uintptr_t)c;
    printf("first call: %lu\n", f(0));
    CBO("cbo.zero", (uint64_t)c + 8);
    uint64_t ret_to;
    __asm__ volatile("la %0, 1f" : "=r"(ret_to));
    resume_at = ret_to;
    uint64_t r;
    __asm__ volatile("mv a0, zero\n jalr ra, 0(%1)\n 1: mv %0, a0" : "=r"(r) : "r"(c) : "a0", "ra", "memory");
    printf("second call: a0=%lu trap cause=%lx tval=%lx\n", r, trap_cause, trap_tval);
    resume_at = 0;
    trap_reset();
}

int main(void)
{
    puts_("bitmanip\n");
    bitmanip_tables();
    zicond();
    zfa();
    zawrs_and_hints();
    envcfg_matrix();
    paging();
    pmp();
    cbo_zero_special();
    puts_("bitmanip done\n");
    return 0;
}
