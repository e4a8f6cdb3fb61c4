/* SMP support for guests/smp_* (entered through start_smp.S: every hart runs main(hartid, fdt)). */
#ifndef SMP_H
#define SMP_H
#include "guest.h"
#include "smp_layout.h"
#include "fdt.h"

/* The QEMU virt CLINT: one msip word and one mtimecmp per hart. */
#define CLINT_MSIP_HART(h) (CLINT_BASE + 4UL * (h))
#define CLINT_MTIMECMP_HART(h) (CLINT_MTIMECMP + 8UL * (h))

/* pause (Zihintpause) in spin loops: a hint an emulator may use to switch harts; a no-op elsewhere. */
static inline void cpu_relax(void) { __asm__ volatile(".insn i MISC_MEM, 0, x0, x0, 0x10" ::: "memory"); }

static inline uint32_t load_acquire(volatile uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_release(volatile uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t fetch_add(volatile uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }

/* Spin until *p == v (acquire). */
static inline void wait_eq(volatile uint32_t *p, uint32_t v)
{
    while (load_acquire(p) != v)
        cpu_relax();
}

/* The number of harts from the device tree; exits 2 unless they are harts 0..n-1 with
   1 <= n <= SMP_MAX_HARTS (hart 0 calls this; the guests pass the result on to the others). */
static inline unsigned smp_hart_count(const void *fdt)
{
    uint64_t mask;
    int n = fdt_count_cpus(fdt, &mask);
    if (n < 1 || n > SMP_MAX_HARTS || mask != (1ull << n) - 1) {
        printf("bad device tree: %d cpus, hart mask %lx\n", n, mask);
        exit(2);
    }
    return (unsigned)n;
}

/* A reusable barrier for n harts: the last one to arrive opens the next generation. */
struct smp_barrier {
    volatile uint32_t count;
    volatile uint32_t gen;
};

static inline void smp_barrier_wait(struct smp_barrier *b, unsigned n)
{
    uint32_t gen = load_acquire(&b->gen);
    if (fetch_add(&b->count, 1) + 1 == n) {
        b->count = 0;
        store_release(&b->gen, gen + 1);
    } else {
        while (load_acquire(&b->gen) == gen)
            cpu_relax();
    }
}

#endif
