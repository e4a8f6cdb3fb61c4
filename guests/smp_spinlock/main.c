/* smp_spinlock: all harts contend, ITERS times each, for (a) an amoswap.w.aq spinlock and (b) an
   lr.d/sc.d spinlock, each guarding a counter incremented without atomics; then (c) amoadd.d and (d)
   an lr.d/sc.d compare-and-swap loop increment counters directly. Hart 0 checks every total is
   harts * ITERS. Then two deterministic cross-hart LR/SC checks (harts 0 and 1): hart 0 holds a
   reservation on X while hart 1 stores to X the value X already holds (lrsc-aba) or another value
   (lrsc-diff); the RISC-V spec requires both SCs to fail. QEMU 10 implements SC as a compare-and-swap
   against the value LR read, so its lrsc-aba SC succeeds: that line does not decide the exit status. */
#include "smp.h"

#ifndef ITERS
#define ITERS 2000
#endif
#ifndef WORK
#define WORK 10
#endif

static volatile uint32_t nharts;
static struct smp_barrier bar;
/* Each lock and counter in its own 64-byte block, so a reservation on one is not disturbed by the others. */
static volatile uint32_t amo_lock_word __attribute__((aligned(64)));
static volatile uint64_t amo_count __attribute__((aligned(64)));
static volatile uint64_t lrsc_lock_word __attribute__((aligned(64)));
static volatile uint64_t lrsc_count __attribute__((aligned(64)));
static volatile uint64_t amoadd_count __attribute__((aligned(64)));
static volatile uint64_t cas_count __attribute__((aligned(64)));
static volatile uint64_t sink[SMP_MAX_HARTS * 8] __attribute__((aligned(64)));
/* The LR/SC target has a page of its own: whatever the reservation granule, no flag shares it. */
static volatile uint64_t aba_x __attribute__((aligned(4096)));
static volatile uint32_t aba_go __attribute__((aligned(4096)));
static volatile uint32_t aba_done __attribute__((aligned(64)));

static uint64_t work(uint64_t x)
{
    for (unsigned j = 0; j < WORK; j++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

/* A non-atomic increment with a window: only the lock around it keeps updates from being lost. */
static inline void plain_inc(volatile uint64_t *p)
{
    uint64_t t;
    __asm__ volatile("ld %0, 0(%1)\n nop\n nop\n addi %0, %0, 1\n sd %0, 0(%1)" : "=&r"(t) : "r"(p) : "memory");
}

static inline void amo_lock(volatile uint32_t *l)
{
    for (;;) {
        uint32_t old;
        __asm__ volatile("amoswap.w.aq %0, %2, %1" : "=r"(old), "+A"(*l) : "r"(1) : "memory");
        if (!old)
            return;
        while (*l)
            cpu_relax();
    }
}

static inline void amo_unlock(volatile uint32_t *l) { __asm__ volatile("amoswap.w.rl zero, zero, %0" : "+A"(*l)::"memory"); }

static inline void lrsc_lock(volatile uint64_t *l)
{
    uint64_t old, fail;
    __asm__ volatile("1: lr.d.aq %0, %2\n"
                     "   bnez %0, 2f\n"
                     "   sc.d %1, %3, %2\n"
                     "   bnez %1, 1b\n"
                     "   j 3f\n"
                     /* held: spin on plain loads (and pause) until it looks free */
                     "2: .insn i MISC_MEM, 0, x0, x0, 0x10\n"
                     "   ld %0, %2\n"
                     "   bnez %0, 2b\n"
                     "   j 1b\n"
                     "3:"
                     : "=&r"(old), "=&r"(fail), "+A"(*l)
                     : "r"(1ul)
                     : "memory");
}

static inline void lrsc_unlock(volatile uint64_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static inline void amoadd_inc(volatile uint64_t *p) { __asm__ volatile("amoadd.d zero, %1, %0" : "+A"(*p) : "r"(1ul) : "memory"); }

/* Strong CAS with lr.d/sc.d: 1 if *p was expect and is now desired. */
static inline int cas64(volatile uint64_t *p, uint64_t expect, uint64_t desired)
{
    uint64_t old, fail;
    __asm__ volatile("1: lr.d.aqrl %0, %2\n"
                     "   bne %0, %3, 2f\n"
                     "   sc.d.rl %1, %4, %2\n"
                     "   bnez %1, 1b\n"
                     "2:"
                     : "=&r"(old), "=&r"(fail), "+A"(*p)
                     : "r"(expect), "r"(desired)
                     : "memory");
    return old == expect;
}

static inline void cas_inc(volatile uint64_t *p)
{
    uint64_t old;
    do
        old = *p;
    while (!cas64(p, old, old + 1));
}

/* One contended round per primitive, the harts lined up by a barrier before each. */
static void contend(unsigned long hart, unsigned n)
{
    uint64_t x = hart + 1;
    smp_barrier_wait(&bar, n);
    for (unsigned i = 0; i < ITERS; i++) {
        amo_lock(&amo_lock_word);
        plain_inc(&amo_count);
        amo_unlock(&amo_lock_word);
        x = work(x);
    }
    smp_barrier_wait(&bar, n);
    for (unsigned i = 0; i < ITERS; i++) {
        lrsc_lock(&lrsc_lock_word);
        plain_inc(&lrsc_count);
        lrsc_unlock(&lrsc_lock_word);
        x = work(x);
    }
    smp_barrier_wait(&bar, n);
    for (unsigned i = 0; i < ITERS; i++) {
        amoadd_inc(&amoadd_count);
        x = work(x);
    }
    smp_barrier_wait(&bar, n);
    for (unsigned i = 0; i < ITERS; i++) {
        cas_inc(&cas_count);
        x = work(x);
    }
    sink[hart * 8] = x;
    smp_barrier_wait(&bar, n);
}

/* Hart 0: lr.d X, let hart 1 store to X (round r), wait for it, sc.d X. Returns sc.d's result
   (0 = the store succeeded). All in one asm block so that nothing the compiler adds sits between. */
static uint64_t lrsc_cross(uint32_t round)
{
    uint64_t old, fail, t;
    __asm__ volatile("lr.d %[old], (%[x])\n"
                     "fence rw, w\n"
                     "sw %[round], 0(%[go])\n"
                     "1: lw %[t], 0(%[done])\n"
                     "bne %[t], %[round], 1b\n"
                     "fence r, rw\n"
                     "sc.d %[fail], %[new], (%[x])\n"
                     : [old] "=&r"(old), [fail] "=&r"(fail), [t] "=&r"(t)
                     : [x] "r"(&aba_x), [go] "r"(&aba_go), [done] "r"(&aba_done), [round] "r"(round),
                       [new] "r"(0x777ul)
                     : "memory");
    return fail;
}

/* Hart 1's side: wait for round r, store value to X, report. */
static void lrsc_cross_peer(uint32_t round, uint64_t value)
{
    wait_eq(&aba_go, round);
    aba_x = value;
    store_release(&aba_done, round);
}

int main(unsigned long hart, const void *fdt)
{
    unsigned n;
    if (hart == 0) {
        uart_init();
        n = smp_hart_count(fdt);
        aba_x = 5;
        store_release(&nharts, n);
    } else {
        while ((n = load_acquire(&nharts)) == 0)
            cpu_relax();
    }
    contend(hart, n);
    if (hart == 1) {
        lrsc_cross_peer(1, 5); /* the value hart 0's LR read */
        lrsc_cross_peer(2, 6);
    }
    if (hart != 0)
        return 0;

    uint64_t want = (uint64_t)n * ITERS;
    int ok = amo_count == want && lrsc_count == want && amoadd_count == want && cas_count == want;
    printf("spinlock: harts=%u amoswap=%lu lrsc=%lu amoadd=%lu cas=%lu %s\n", n, amo_count, lrsc_count,
           amoadd_count, cas_count, ok ? "ok" : "FAILED");
    if (n < 2) {
        puts_("lrsc-aba: skipped (needs 2 harts)\n");
        return ok ? 0 : 1;
    }
    uint64_t same = lrsc_cross(1);
    printf("lrsc-aba: sc %s\n", same ? "failed" : "succeeded");
    aba_x = 5;
    uint64_t diff = lrsc_cross(2);
    printf("lrsc-diff: sc %s, x=%lu\n", diff ? "failed" : "succeeded", aba_x);
    return ok && diff ? 0 : 1;
}
