/* fpu: F and D known answers: rounding modes, fflags, NaN boxing, conversions, fclass, fma, sqrt, div. */
#include "guest.h"

#define BOX(x) (0xffffffff00000000ULL | (uint32_t)(x))

static const uint32_t SV[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x3f800001, 0x7f7fffff, 0x00800000,
    0x00000001, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x40400000, 0x3dcccccd, 0xcf000000,
};
static const uint64_t DV[] = {
    0x0000000000000000ULL, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
    0x3ff8000000000000ULL, 0x3ff0000000000001ULL, 0x7fefffffffffffffULL, 0x0010000000000000ULL,
    0x0000000000000001ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL, 0x7ff8000000000000ULL,
    0x7ff0000000000001ULL, 0x4008000000000000ULL, 0x3fb999999999999aULL, 0xc1e0000000000000ULL,
};
#define NS (sizeof(SV) / sizeof(SV[0]))
#define ND (sizeof(DV) / sizeof(DV[0]))
/* The subset used for the rounding-mode tables (rounding matters, output stays readable). */
static const unsigned RIDX[] = {2, 3, 5, 6, 7, 8, 13, 14};
#define NR (sizeof(RIDX) / sizeof(RIDX[0]))

static inline void clear_flags(void) { __asm__ volatile("csrw fflags, zero"); }
static inline uint64_t flags(void) { uint64_t f; __asm__ volatile("csrr %0, fflags" : "=r"(f)); return f; }
static inline void set_rm(unsigned rm) { __asm__ volatile("fsrm %0" ::"r"((uint64_t)rm)); }

/* Binary op f->f */
#define DEF_FF2(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a, uint64_t b)                                              \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n " insn " ft2, ft0, ft1\n fmv.x.d %0, ft2" \
                         : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1", "ft2");                 \
        return r;                                                                           \
    }
/* Binary op f->x */
#define DEF_FX2(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a, uint64_t b)                                              \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n " insn " %0, ft0, ft1"        \
                         : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1");                        \
        return r;                                                                           \
    }
/* Unary op f->f */
#define DEF_FF1(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a)                                                          \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n " insn " ft2, ft0\n fmv.x.d %0, ft2" : "=r"(r) : "r"(a) : "ft0", "ft2"); \
        return r;                                                                           \
    }
/* Unary op f->x */
#define DEF_FX1(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a)                                                          \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n " insn " %0, ft0" : "=r"(r) : "r"(a) : "ft0");  \
        return r;                                                                           \
    }
/* Unary op x->f */
#define DEF_XF1(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a)                                                          \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile(insn " ft2, %1\n fmv.x.d %0, ft2" : "=r"(r) : "r"(a) : "ft2");     \
        return r;                                                                           \
    }
/* Ternary f->f */
#define DEF_FF3(fn, insn)                                                                   \
    static uint64_t fn(uint64_t a, uint64_t b, uint64_t c)                                  \
    {                                                                                       \
        uint64_t r;                                                                         \
        __asm__ volatile("fmv.d.x ft0, %1\n fmv.d.x ft1, %2\n fmv.d.x ft3, %3\n " insn " ft2, ft0, ft1, ft3\n fmv.x.d %0, ft2" \
                         : "=r"(r) : "r"(a), "r"(b), "r"(c) : "ft0", "ft1", "ft2", "ft3");  \
        return r;                                                                           \
    }

DEF_FF2(fadd_s, "fadd.s") DEF_FF2(fsub_s, "fsub.s") DEF_FF2(fmul_s, "fmul.s") DEF_FF2(fdiv_s, "fdiv.s")
DEF_FF2(fmin_s, "fmin.s") DEF_FF2(fmax_s, "fmax.s") DEF_FF2(fsgnj_s, "fsgnj.s") DEF_FF2(fsgnjn_s, "fsgnjn.s")
DEF_FF2(fsgnjx_s, "fsgnjx.s") DEF_FX2(feq_s, "feq.s") DEF_FX2(flt_s, "flt.s") DEF_FX2(fle_s, "fle.s")
DEF_FF2(fadd_d, "fadd.d") DEF_FF2(fsub_d, "fsub.d") DEF_FF2(fmul_d, "fmul.d") DEF_FF2(fdiv_d, "fdiv.d")
DEF_FF2(fmin_d, "fmin.d") DEF_FF2(fmax_d, "fmax.d") DEF_FF2(fsgnj_d, "fsgnj.d") DEF_FF2(fsgnjn_d, "fsgnjn.d")
DEF_FF2(fsgnjx_d, "fsgnjx.d") DEF_FX2(feq_d, "feq.d") DEF_FX2(flt_d, "flt.d") DEF_FX2(fle_d, "fle.d")
DEF_FF1(fsqrt_s, "fsqrt.s") DEF_FF1(fsqrt_d, "fsqrt.d") DEF_FX1(fclass_s, "fclass.s") DEF_FX1(fclass_d, "fclass.d")
DEF_FF1(fcvt_d_s, "fcvt.d.s") DEF_FF1(fcvt_s_d, "fcvt.s.d")
DEF_FX1(fcvt_w_s, "fcvt.w.s") DEF_FX1(fcvt_wu_s, "fcvt.wu.s") DEF_FX1(fcvt_l_s, "fcvt.l.s") DEF_FX1(fcvt_lu_s, "fcvt.lu.s")
DEF_FX1(fcvt_w_d, "fcvt.w.d") DEF_FX1(fcvt_wu_d, "fcvt.wu.d") DEF_FX1(fcvt_l_d, "fcvt.l.d") DEF_FX1(fcvt_lu_d, "fcvt.lu.d")
DEF_XF1(fcvt_s_w, "fcvt.s.w") DEF_XF1(fcvt_s_wu, "fcvt.s.wu") DEF_XF1(fcvt_s_l, "fcvt.s.l") DEF_XF1(fcvt_s_lu, "fcvt.s.lu")
DEF_XF1(fcvt_d_w, "fcvt.d.w") DEF_XF1(fcvt_d_wu, "fcvt.d.wu") DEF_XF1(fcvt_d_l, "fcvt.d.l") DEF_XF1(fcvt_d_lu, "fcvt.d.lu")
DEF_FX1(fmv_x_w, "fmv.x.w") DEF_XF1(fmv_w_x, "fmv.w.x")
DEF_FF3(fmadd_s, "fmadd.s") DEF_FF3(fmsub_s, "fmsub.s") DEF_FF3(fnmadd_s, "fnmadd.s") DEF_FF3(fnmsub_s, "fnmsub.s")
DEF_FF3(fmadd_d, "fmadd.d") DEF_FF3(fmsub_d, "fmsub.d") DEF_FF3(fnmadd_d, "fnmadd.d") DEF_FF3(fnmsub_d, "fnmsub.d")

typedef uint64_t (*op2_t)(uint64_t, uint64_t);
typedef uint64_t (*op1_t)(uint64_t);
typedef uint64_t (*op3_t)(uint64_t, uint64_t, uint64_t);

static uint64_t sval(unsigned i) { return BOX(SV[i]); }
static uint64_t dval(unsigned i) { return DV[i]; }

static void table2(const char *name, op2_t op, int dbl, int rounding)
{
    unsigned n = rounding ? NR : NS;
    for (unsigned rm = 0; rm < (rounding ? 5u : 1u); rm++) {
        set_rm(rm);
        for (unsigned i = 0; i < n; i++)
            for (unsigned j = 0; j < n; j++) {
                unsigned a = rounding ? RIDX[i] : i, b = rounding ? RIDX[j] : j;
                clear_flags();
                uint64_t r = op(dbl ? dval(a) : sval(a), dbl ? dval(b) : sval(b));
                printf("%s %u %x %x: %lx %lx\n", name, rm, a, b, r, flags());
            }
    }
    set_rm(0);
}

static void table1(const char *name, op1_t op, int dbl, int rounding)
{
    for (unsigned rm = 0; rm < (rounding ? 5u : 1u); rm++) {
        set_rm(rm);
        for (unsigned i = 0; i < NS; i++) {
            clear_flags();
            uint64_t r = op(dbl ? dval(i) : sval(i));
            printf("%s %u %x: %lx %lx\n", name, rm, i, r, flags());
        }
    }
    set_rm(0);
}

/* Values that exercise conversion saturation: NaN, infinities, just out of range, negatives. */
static const uint64_t CVT_D[] = {
    0x7ff8000000000000ULL, 0x7ff0000000000001ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
    0x41e0000000000000ULL /* 2^31 */, 0xc1e0000000200000ULL /* -2^31-1 */, 0x41dfffffffc00000ULL /* 2^31-1 */,
    0x41f0000000000000ULL /* 2^32 */, 0xbff0000000000000ULL /* -1 */, 0xbfe0000000000000ULL /* -0.5 */,
    0xbfe8000000000000ULL /* -0.75 */, 0x43e0000000000000ULL /* 2^63 */, 0xc3e0000000000000ULL /* -2^63 */,
    0x43f0000000000000ULL /* 2^64 */, 0x3ff8000000000000ULL /* 1.5 */, 0x4004000000000000ULL /* 2.5 */,
    0x8000000000000000ULL, 0x41efffffffe00000ULL /* 2^32-1 */,
};
static const uint64_t CVT_I[] = {
    0, 1, 0xffffffffffffffffULL, 0x7fffffffULL, 0x80000000ULL, 0xffffffff80000000ULL, 0x7fffffffffffffffULL,
    0x8000000000000000ULL, 0x123456789abcdefULL, 0x1000001ULL, 0x20000000000001ULL, 0xffffffffULL,
};
#define N_CD (sizeof(CVT_D) / sizeof(CVT_D[0]))
#define N_CI (sizeof(CVT_I) / sizeof(CVT_I[0]))

static volatile uint64_t illegal_traps;

void mtrap_handler(struct trap_frame *f)
{
    printf("trap mcause=%lx mtval=%lx\n", f->cause, f->tval);
    illegal_traps++;
    f->epc += insn_len(f->epc);
}

static void conversions(void)
{
    static const struct { const char *n; op1_t f; } FROM_D[] = {
        {"fcvt.w.d", fcvt_w_d}, {"fcvt.wu.d", fcvt_wu_d}, {"fcvt.l.d", fcvt_l_d}, {"fcvt.lu.d", fcvt_lu_d},
        {"fcvt.s.d", fcvt_s_d},
    };
    static const struct { const char *n; op1_t f; } FROM_S[] = {
        {"fcvt.w.s", fcvt_w_s}, {"fcvt.wu.s", fcvt_wu_s}, {"fcvt.l.s", fcvt_l_s}, {"fcvt.lu.s", fcvt_lu_s},
        {"fcvt.d.s", fcvt_d_s},
    };
    static const struct { const char *n; op1_t f; } FROM_I[] = {
        {"fcvt.s.w", fcvt_s_w}, {"fcvt.s.wu", fcvt_s_wu}, {"fcvt.s.l", fcvt_s_l}, {"fcvt.s.lu", fcvt_s_lu},
        {"fcvt.d.w", fcvt_d_w}, {"fcvt.d.wu", fcvt_d_wu}, {"fcvt.d.l", fcvt_d_l}, {"fcvt.d.lu", fcvt_d_lu},
    };
    for (unsigned rm = 0; rm < 5; rm++) {
        set_rm(rm);
        for (unsigned k = 0; k < 5; k++)
            for (unsigned i = 0; i < N_CD; i++) {
                clear_flags();
                uint64_t r = FROM_D[k].f(CVT_D[i]);
                printf("%s %u %lx: %lx %lx\n", FROM_D[k].n, rm, CVT_D[i], r, flags());
            }
        for (unsigned k = 0; k < 5; k++)
            for (unsigned i = 0; i < N_CD; i++) {
                /* Same values narrowed to single (the narrowing itself is tested above). */
                set_rm(0);
                uint64_t s = fcvt_s_d(CVT_D[i]);
                set_rm(rm);
                clear_flags();
                uint64_t r = FROM_S[k].f(s);
                printf("%s %u %lx: %lx %lx\n", FROM_S[k].n, rm, s, r, flags());
            }
        for (unsigned k = 0; k < 8; k++)
            for (unsigned i = 0; i < N_CI; i++) {
                clear_flags();
                uint64_t r = FROM_I[k].f(CVT_I[i]);
                printf("%s %u %lx: %lx %lx\n", FROM_I[k].n, rm, CVT_I[i], r, flags());
            }
    }
    set_rm(0);
}

static void fma_tables(void)
{
    static const struct { const char *n; op3_t f; int d; } OPS[] = {
        {"fmadd.s", fmadd_s, 0}, {"fmsub.s", fmsub_s, 0}, {"fnmadd.s", fnmadd_s, 0}, {"fnmsub.s", fnmsub_s, 0},
        {"fmadd.d", fmadd_d, 1}, {"fmsub.d", fmsub_d, 1}, {"fnmadd.d", fnmadd_d, 1}, {"fnmsub.d", fnmsub_d, 1},
    };
    static const unsigned T[][3] = {
        {2, 2, 2}, {5, 5, 3}, {6, 6, 10}, {0, 9, 2}, {0, 9, 11}, {11, 0, 9}, {12, 2, 2}, {8, 8, 0},
        {14, 13, 3}, {1, 2, 0}, {0, 1, 1}, {7, 7, 8}, {6, 13, 6}, {3, 5, 2},
    };
    for (unsigned rm = 0; rm < 5; rm++) {
        set_rm(rm);
        for (unsigned k = 0; k < 8; k++)
            for (unsigned t = 0; t < sizeof(T) / sizeof(T[0]); t++) {
                const unsigned *x = T[t];
                uint64_t a = OPS[k].d ? dval(x[0]) : sval(x[0]), b = OPS[k].d ? dval(x[1]) : sval(x[1]);
                uint64_t c = OPS[k].d ? dval(x[2]) : sval(x[2]);
                clear_flags();
                uint64_t r = OPS[k].f(a, b, c);
                printf("%s %u %x %x %x: %lx %lx\n", OPS[k].n, rm, x[0], x[1], x[2], r, flags());
            }
    }
    set_rm(0);
}

static void static_rounding(void)
{
    uint64_t a = BOX(0x3f800000), b = BOX(0x33ffffff); /* 1 + just under half an ulp... */
    uint64_t r[6];
    __asm__ volatile("fmv.d.x ft0, %6\n fmv.d.x ft1, %7\n"
                     "fadd.s ft2, ft0, ft1, rne\n fmv.x.d %0, ft2\n"
                     "fadd.s ft2, ft0, ft1, rtz\n fmv.x.d %1, ft2\n"
                     "fadd.s ft2, ft0, ft1, rdn\n fmv.x.d %2, ft2\n"
                     "fadd.s ft2, ft0, ft1, rup\n fmv.x.d %3, ft2\n"
                     "fadd.s ft2, ft0, ft1, rmm\n fmv.x.d %4, ft2\n"
                     "fadd.s ft2, ft0, ft1, dyn\n fmv.x.d %5, ft2\n"
                     : "=&r"(r[0]), "=&r"(r[1]), "=&r"(r[2]), "=&r"(r[3]), "=&r"(r[4]), "=&r"(r[5])
                     : "r"(a), "r"(b) : "ft0", "ft1", "ft2");
    printf("static rm fadd.s: %lx %lx %lx %lx %lx %lx\n", r[0], r[1], r[2], r[3], r[4], r[5]);
    uint64_t d = 0xc004000000000000ULL; /* -2.5 */
    __asm__ volatile("fmv.d.x ft0, %6\n"
                     "fcvt.l.d %0, ft0, rne\n fcvt.l.d %1, ft0, rtz\n fcvt.l.d %2, ft0, rdn\n"
                     "fcvt.l.d %3, ft0, rup\n fcvt.l.d %4, ft0, rmm\n fcvt.w.d %5, ft0, dyn\n"
                     : "=&r"(r[0]), "=&r"(r[1]), "=&r"(r[2]), "=&r"(r[3]), "=&r"(r[4]), "=&r"(r[5])
                     : "r"(d) : "ft0");
    printf("static rm fcvt.l.d -2.5: %lx %lx %lx %lx %lx %lx\n", r[0], r[1], r[2], r[3], r[4], r[5]);
    puts_("reserved rounding modes (illegal):\n");
    __asm__ volatile(".insn r 0x53, 5, 0, ft2, ft0, ft1"); /* fadd.s with rm=5 */
    __asm__ volatile(".insn r 0x53, 6, 1, ft2, ft0, ft1"); /* fadd.d with rm=6 */
    set_rm(5);
    __asm__ volatile("fadd.s ft2, ft0, ft1, dyn"); /* dynamic rm with frm=5 */
    set_rm(7);
    __asm__ volatile("fadd.d ft2, ft0, ft1, dyn");
    __asm__ volatile("fsgnj.s ft2, ft0, ft1"); /* no rounding: legal even with a bad frm */
    set_rm(0);
    print_hex("illegal traps", illegal_traps);
}

static void nan_boxing(void)
{
    uint64_t r;
    __asm__ volatile("fmv.d.x ft0, %1\n fadd.s ft1, ft0, ft0\n fmv.x.d %0, ft1" : "=r"(r) : "r"(0x000000003f800000ULL) : "ft0", "ft1");
    print_hex("fadd.s of unboxed", r);
    __asm__ volatile("fmv.d.x ft0, %1\n fsgnj.s ft1, ft0, ft0\n fmv.x.d %0, ft1" : "=r"(r) : "r"(0xfffffffe3f800000ULL) : "ft0", "ft1");
    print_hex("fsgnj.s of unboxed", r);
    __asm__ volatile("fmv.d.x ft0, %1\n fmv.x.w %0, ft0" : "=r"(r) : "r"(0x12345678bf800000ULL) : "ft0");
    print_hex("fmv.x.w of unboxed", r);
    __asm__ volatile("fmv.d.x ft0, %1\n fclass.s %0, ft0" : "=r"(r) : "r"(0x000000003f800000ULL) : "ft0");
    print_hex("fclass.s of unboxed", r);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.d.s ft1, ft0\n fmv.x.d %0, ft1" : "=r"(r) : "r"(0x7fffffff3f800000ULL) : "ft0", "ft1");
    print_hex("fcvt.d.s of unboxed", r);
    __asm__ volatile("fmv.w.x ft0, %1\n fmv.x.d %0, ft0" : "=r"(r) : "r"(0x123456789abcdef0ULL) : "ft0");
    print_hex("fmv.w.x boxes", r);
    static volatile uint64_t m[2] = {0x1122334455667788ULL, 0};
    __asm__ volatile("flw ft0, 0(%1)\n fmv.x.d %0, ft0" : "=r"(r) : "r"(m) : "ft0", "memory");
    print_hex("flw boxes", r);
    __asm__ volatile("fmv.d.x ft0, %0\n fsw ft0, 8(%1)" ::"r"(0xaaaaaaaabbbbbbbbULL), "r"(m) : "ft0", "memory");
    print_hex("fsw stores low word", m[1]);
    __asm__ volatile("fmv.d.x ft0, %1\n fmin.s ft1, ft0, ft0\n fmv.x.d %0, ft1" : "=r"(r) : "r"(0x000000003f800000ULL) : "ft0", "ft1");
    print_hex("fmin.s of unboxed", r);
    __asm__ volatile("fmv.d.x ft0, %1\n fcvt.w.s %0, ft0" : "=r"(r) : "r"(0x0000000040000000ULL) : "ft0");
    print_hex("fcvt.w.s of unboxed", r);
}

static void fcsr_tests(void)
{
    uint64_t r;
    __asm__ volatile("csrw fcsr, %0" ::"r"(0xffffffffULL));
    print_hex("fcsr after writing all ones", read_csr(fcsr));
    print_hex("frm", read_csr(frm));
    print_hex("fflags", read_csr(fflags));
    __asm__ volatile("csrrw %0, frm, %1" : "=r"(r) : "r"(2ULL));
    print_hex("old frm", r);
    __asm__ volatile("csrrw %0, fflags, %1" : "=r"(r) : "r"(0x3ULL));
    print_hex("old fflags", r);
    print_hex("fcsr", read_csr(fcsr));
    __asm__ volatile("fscsr %0, zero" : "=r"(r));
    print_hex("fscsr old", r);
    /* mstatus.FS becomes Dirty after an FP write; with FS=Off every FP instruction is illegal. */
    clear_csr(mstatus, MSTATUS_FS);
    set_csr(mstatus, 1UL << 13);
    __asm__ volatile("fmv.w.x ft0, zero");
    print_hex("mstatus.FS after fp write", (read_csr(mstatus) >> 13) & 3);
    print_hex("mstatus.SD", read_csr(mstatus) >> 63);
    clear_csr(mstatus, MSTATUS_FS);
    set_csr(mstatus, 1UL << 13);
    __asm__ volatile("fmv.x.w %0, ft0" : "=r"(r));
    print_hex("mstatus.FS after fp read only", (read_csr(mstatus) >> 13) & 3);
    clear_csr(mstatus, MSTATUS_FS);
    puts_("FS=Off:\n");
    __asm__ volatile("fadd.d ft0, ft0, ft0");
    __asm__ volatile("csrr %0, fcsr" : "=r"(r));
    set_csr(mstatus, 1UL << 13);
}

int main(void)
{
    puts_("fpu known answers\n");
    fcsr_tests();
    nan_boxing();
    static_rounding();
    table2("fadd.s", fadd_s, 0, 1);
    table2("fsub.s", fsub_s, 0, 1);
    table2("fmul.s", fmul_s, 0, 1);
    table2("fdiv.s", fdiv_s, 0, 1);
    table2("fadd.d", fadd_d, 1, 1);
    table2("fsub.d", fsub_d, 1, 1);
    table2("fmul.d", fmul_d, 1, 1);
    table2("fdiv.d", fdiv_d, 1, 1);
    table2("fadd.s", fadd_s, 0, 0);
    table2("fmul.s", fmul_s, 0, 0);
    table2("fdiv.s", fdiv_s, 0, 0);
    table2("fdiv.d", fdiv_d, 1, 0);
    table2("fmul.d", fmul_d, 1, 0);
    table2("fmin.s", fmin_s, 0, 0);
    table2("fmax.s", fmax_s, 0, 0);
    table2("fmin.d", fmin_d, 1, 0);
    table2("fmax.d", fmax_d, 1, 0);
    table2("fsgnj.s", fsgnj_s, 0, 0);
    table2("fsgnjn.s", fsgnjn_s, 0, 0);
    table2("fsgnjx.d", fsgnjx_d, 1, 0);
    table2("fsgnj.d", fsgnj_d, 1, 0);
    table2("fsgnjn.d", fsgnjn_d, 1, 0);
    table2("fsgnjx.s", fsgnjx_s, 0, 0);
    table2("feq.s", feq_s, 0, 0);
    table2("flt.s", flt_s, 0, 0);
    table2("fle.s", fle_s, 0, 0);
    table2("feq.d", feq_d, 1, 0);
    table2("flt.d", flt_d, 1, 0);
    table2("fle.d", fle_d, 1, 0);
    table1("fsqrt.s", fsqrt_s, 0, 1);
    table1("fsqrt.d", fsqrt_d, 1, 1);
    table1("fclass.s", fclass_s, 0, 0);
    table1("fclass.d", fclass_d, 1, 0);
    table1("fcvt.d.s", fcvt_d_s, 0, 0);
    table1("fcvt.s.d", fcvt_s_d, 1, 1);
    table1("fmv.x.w", fmv_x_w, 0, 0);
    table1("fmv.w.x", fmv_w_x, 1, 0);
    conversions();
    fma_tables();
    puts_("fpu done\n");
    return 0;
}
