/* hostile: a guest that, driven by a seeded PRNG (SEED, a build-time define), hammers every device region
   of the virt board with random loads/stores of every width, AMOs and LR/SC, jumps into MMIO and the mask
   ROM, from M, S (through Sv39 page tables whose leaves and non-leaves point into MMIO) and U. Every trap
   goes to M, is counted by cause and skipped. At the end it prints a checksum of everything it read and
   the trap counts, and exits through the finisher. Its output is deterministic only within one emulator
   (it reads mtime and the RTC), so the test compares replays with their recording, not with QEMU. */
#include "guest.h"

#ifndef SEED
#define SEED 1
#endif
#define ROUNDS 3000
#define MAX_TRAPS 200000UL

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

static uint64_t rng_state = SEED;
static volatile uint64_t checksum;
static volatile uint64_t traps[64];
static volatile uint64_t interrupts;
static volatile uint64_t total_traps;
extern char _start[], _end[];

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mix(uint64_t v)
{
    uint64_t c = checksum;
    c = (c << 7 | c >> 57) ^ v;
    checksum = c * 0x9e3779b97f4a7c15UL;
}

struct region {
    uint64_t base, size;
};

/* Device regions and unmapped holes. */
static const struct region regions[] = {
    {0x2000000, 0x10000},  /* CLINT */
    {0xc000000, 0x600000}, /* PLIC */
    {0x10000000, 0x100},   /* UART */
    {0x10001000, 0x8000},  /* virtio-mmio slots */
    {0x100000, 0x1000},    /* SiFive test finisher */
    {0x101000, 0x1000},    /* Goldfish RTC */
    {0x1000, 0xf000},      /* mask ROM */
    {0x0, 0x1000},         /* holes */
    {0x3000000, 0x1000},
    {0x10009000, 0x7000},
    {0x20000000, 0x1000},
    {0x40000000, 0x1000},
};
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

/* A random address in a random region; mostly aligned to `width`, sometimes not. */
static uint64_t pick_addr(unsigned width, unsigned *which)
{
    unsigned r = rnd() % NREGIONS;
    uint64_t off = rnd() % regions[r].size;
    /* PLIC: favour the interesting low registers and the context blocks. */
    if (r == 1 && (rnd() & 1))
        off = (rnd() & 1) ? off % 0x2000 : 0x200000 + off % 0x2000;
    if (rnd() % 8)
        off &= ~(uint64_t)(width - 1);
    *which = r;
    return regions[r].base + off;
}

/* Whether [a, a + w) overlaps [b, b + n). */
static int overlaps(uint64_t a, unsigned w, uint64_t b, uint64_t n)
{
    return a < b + n && b < a + w;
}

/* Makes a store of `width` bytes at `a` harmless: never the finisher's codes, never a byte that reaches
   the UART's THR, LCR or MCR (garbage output, divisor latch, loopback), never a virtio QueueNotify or
   Status (no DMA into our own RAM). Returns 0 when the store must be skipped. */
static int tame(uint64_t a, unsigned width, uint64_t *v)
{
    if (overlaps(a, width, 0x100000, 0x1000))
        *v &= 0x0f0f0f0f0f0f0f0fUL; /* no byte is 0x33, 0x55 or 0x77 */
    if (overlaps(a, width, 0x10000000, 1) || overlaps(a, width, 0x10000003, 2))
        return 0;
    for (uint64_t slot = 0x10001000; slot < 0x10009000; slot += 0x1000)
        if (overlaps(a, width, slot + 0x50, 4) || overlaps(a, width, slot + 0x70, 4))
            return 0;
    return 1;
}

static void do_load(uint64_t a, unsigned kind)
{
    uint64_t v = 0;
    switch (kind) {
    case 0: __asm__ volatile("lb %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    case 1: __asm__ volatile("lbu %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    case 2: __asm__ volatile("lh %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    case 3: __asm__ volatile("lhu %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    case 4: __asm__ volatile("lw %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    case 5: __asm__ volatile("lwu %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    default: __asm__ volatile("ld %0, 0(%1)" : "=r"(v) : "r"(a) : "memory"); break;
    }
    mix(v);
}

static void do_store(uint64_t a, unsigned width, uint64_t v)
{
    switch (width) {
    case 1: __asm__ volatile("sb %0, 0(%1)" ::"r"(v), "r"(a) : "memory"); break;
    case 2: __asm__ volatile("sh %0, 0(%1)" ::"r"(v), "r"(a) : "memory"); break;
    case 4: __asm__ volatile("sw %0, 0(%1)" ::"r"(v), "r"(a) : "memory"); break;
    default: __asm__ volatile("sd %0, 0(%1)" ::"r"(v), "r"(a) : "memory"); break;
    }
}

/* AMOs and LR/SC; the finisher is left out (an AMO's result is not a value we chose). */
static void do_amo(uint64_t a, unsigned kind, uint64_t v)
{
    uint64_t old = 0;
    switch (kind) {
    case 0: __asm__ volatile("amoswap.w %0, %2, (%1)" : "=r"(old) : "r"(a), "r"(v) : "memory"); break;
    case 1: __asm__ volatile("amoadd.d %0, %2, (%1)" : "=r"(old) : "r"(a), "r"(v) : "memory"); break;
    case 2: __asm__ volatile("amoor.w %0, %2, (%1)" : "=r"(old) : "r"(a), "r"(v) : "memory"); break;
    case 3: __asm__ volatile("amomaxu.d %0, %2, (%1)" : "=r"(old) : "r"(a), "r"(v) : "memory"); break;
    case 4: __asm__ volatile("lr.w %0, (%1)" : "=r"(old) : "r"(a) : "memory"); break;
    case 5: __asm__ volatile("lr.d %0, (%1)" : "=r"(old) : "r"(a) : "memory"); break;
    case 6: __asm__ volatile("sc.w %0, %2, (%1)" : "=r"(old) : "r"(a), "r"(v) : "memory"); break;
    default:
        __asm__ volatile("lr.d %0, (%1)\n\tsc.d %0, %2, (%1)" : "=&r"(old) : "r"(a), "r"(v) : "memory");
        break;
    }
    mix(old);
}

/* A call into `target`; the trap handler returns to ra when the trap's pc lies outside our image. */
static void do_jump(uint64_t target)
{
    register uint64_t t __asm__("s1") = target;
    __asm__ volatile("jalr ra, 0(%0)"
                     : "+r"(t)
                     :
                     : "ra", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a0", "a1", "a2", "a3", "a4",
                       "a5", "a6", "a7", "memory");
}

static int outside_image(uint64_t pc)
{
    return pc < (uint64_t)_start || pc >= (uint64_t)_end;
}

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    total_traps++;
    if (total_traps > MAX_TRAPS) {
        printf("hostile: too many traps (last mcause=%lx mepc=%lx)\n", f->cause, f->epc);
        exit(5);
    }
    if (f->cause & CAUSE_INTR) {
        /* mie stays 0, so none should arrive; count and stop it from repeating. */
        interrupts++;
        write_csr(mie, 0);
        return;
    }
    traps[f->cause & 63]++;
    mix(f->cause);
    if (outside_image(f->epc))
        f->epc = f->x[1]; /* a jump probe: back to its caller */
    else
        f->epc += insn_len(f->epc);
}

static page_t l1 __attribute__((aligned(4096)));

/* One random action; `va_base` relocates the device addresses (for S-mode through the page tables). */
static void action(uint64_t va_base, int allow_jump)
{
    unsigned which;
    unsigned kind = rnd() % 16;
    /* Through the random tables a store could land anywhere (the finisher, the THR): those bases only
       load and jump; stores and AMOs use the identity gigapage, where tame() knows the target. */
    if (va_base != 0 && kind >= 6 && kind < 15)
        kind = rnd() % 6;
    if (kind < 6) {
        unsigned lk = rnd() % 7;
        static const unsigned widths[] = {1, 1, 2, 2, 4, 4, 8};
        do_load(va_base + pick_addr(widths[lk], &which), lk);
    } else if (kind < 12) {
        unsigned w = 1u << (rnd() % 4);
        uint64_t a = pick_addr(w, &which), v = rnd();
        if (tame(a, w, &v))
            do_store(va_base + a, w, v);
    } else if (kind < 15) {
        uint64_t a = pick_addr((rnd() & 1) ? 4 : 8, &which), v = rnd();
        if (which != 4 && tame(a, 8, &v))
            do_amo(va_base + a, rnd() % 8, v);
    } else if (allow_jump) {
        uint64_t a = pick_addr(4, &which);
        /* The ROM's first 0x100 bytes hold the real reset vector (it would restart us) and data. */
        if (which == 6 && (a & 0xfff) < 0x100 && a < 0x2000)
            a += 0x100;
        /* Through l1 only into our own leaves: a non-leaf in MMIO yields device words as PTEs, which
           may map RAM, where the probe would run our own code from a random point. */
        if (va_base == 0xc0000000UL && !(l1[(a >> 21) & 511] & (PTE_R | PTE_W | PTE_X)))
            return;
        do_jump(va_base + (a & ~1UL));
    }
}

static uint64_t hammer(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        action(0, 1);
    return 0;
}

/* S-mode under Sv39: VA 0..1G is a gigapage onto the devices with random permissions (never X, as the
   ROM lies there); VA 1G..2G is a non-leaf whose next level is a device page; VA 3G.. goes through l1,
   whose entries are random leaves and non-leaves pointing into MMIO. RAM is identity mapped at 2G. */
static uint64_t hammer_s(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        static const uint64_t bases[] = {0, 0x40000000UL, 0xc0000000UL};
        uint64_t b = bases[rnd() % 3];
        action(b, b == 0xc0000000UL);
    }
    return 0;
}

static void randomize_tables(void)
{
    static const uint64_t dev_pages[] = {0x2000000, 0xc000000, 0xc200000, 0x10000000, 0x10001000,
                                         0x101000, 0x1000, 0x3000000};
    uint64_t flags = PTE_V | PTE_A | (rnd() & (PTE_R | PTE_W | PTE_D | PTE_U | PTE_A));
    if ((flags & PTE_W) && !(flags & PTE_R))
        flags &= ~PTE_W;
    root[0] = (rnd() % 8) ? PTE(0, flags | PTE_R) : PTE(0, flags);
    root[1] = PTE(dev_pages[rnd() % 8], PTE_V); /* non-leaf into MMIO */
    root[2] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    root[3] = PTE((uint64_t)l1, PTE_V);
    for (unsigned i = 0; i < 512; i++) {
        uint64_t pa = dev_pages[rnd() % 8] & ~0x1fffffUL; /* megapage frame */
        if (rnd() & 1)
            pa |= (rnd() & 0x1ff) << 12; /* misaligned superpage: a page fault */
        uint64_t fl = PTE_V | (rnd() & (PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D));
        if (pa < 0x200000)
            fl &= ~PTE_X; /* the ROM's reset vector must never run */
        if (rnd() % 4 == 0)
            fl = PTE_V; /* non-leaf into MMIO */
        l1[i] = PTE(pa, fl);
    }
    __asm__ volatile("sfence.vma" ::: "memory");
}

int main(void)
{
    printf("hostile: seed %lx\n", (uint64_t)SEED);
    for (unsigned round = 0; round < 6; round++) {
        hammer(ROUNDS);
        run_lower(0, hammer, ROUNDS / 2);
        randomize_tables();
        write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
        __asm__ volatile("sfence.vma" ::: "memory");
        run_lower(1, hammer_s, ROUNDS / 2);
        write_csr(satp, 0);
        __asm__ volatile("sfence.vma" ::: "memory");
        write_csr(mie, 0);
    }
    uart_init();
    printf("hostile: checksum %lx\n", checksum);
    printf("hostile: traps %lu interrupts %lu\n", total_traps, interrupts);
    for (unsigned c = 0; c < 64; c++)
        if (traps[c])
            printf("hostile: cause %u: %lu\n", c, traps[c]);
    printf("hostile: done\n");
    return 0;
}
