/* smc: self-modifying code in a hot loop. A routine in RAM is executed often enough to be
 * translated by the JIT, then one of its instructions is patched (with and without fence.i, from
 * a different page and from the same page), and the new behaviour must show at once: stores into
 * code invalidate decoded and translated blocks (rewind keeps icount exact either way). */
#include "guest.h"

/* addi a0, a0, IMM (I-type, rd = rs1 = a0 = x10). */
#define ADDI_A0(imm) ((((uint32_t)(imm) & 0xfff) << 20) | (10u << 15) | (10u << 7) | 0x13u)
#define RET 0x00008067u

/* The patched routine: a few ALU ops, one patchable addi, ret. Aligned to its own page so the
 * patching code below (another page) stores into a page it is not running from. */
static uint32_t code[1024] __attribute__((aligned(4096)));

typedef uint64_t (*fn_t)(uint64_t);

static void emit(uint32_t k)
{
    code[0] = 0x00150513u; /* addi a0, a0, 1 */
    code[1] = 0x00a50533u; /* add a0, a0, a0 */
    code[2] = ADDI_A0(k);  /* addi a0, a0, k  <- patched */
    code[3] = 0x00350513u; /* addi a0, a0, 3 */
    code[4] = RET;
    __asm__ volatile("fence.i" ::: "memory");
}

static uint64_t hot(unsigned iters, uint64_t x)
{
    fn_t f = (fn_t)(uintptr_t)code;
    for (unsigned i = 0; i < iters; i++)
        x = f(x) & 0xffff;
    return x;
}

/* A loop on its own page that patches the instruction it executes next time round: the store
 * hits the page the loop runs from (the translated region must stop and see the new code). */
static uint32_t self_page[1024] __attribute__((aligned(4096)));

static uint64_t run_self_patching(void)
{
    /* loop: addi a0,a0,1 ; sw a2,12(a1) ; addi a3,a3,-1 ; <patched slot> ; bnez a3,loop ; ret
     * a1 = &self_page, a2 = the replacement word for slot 3 (addi a0,a0,100). Slot 3 starts as
     * addi a0,a0,1000: executed once before the first store lands; afterwards it is +100. */
    self_page[0] = 0x00150513u;          /* addi a0, a0, 1 */
    self_page[1] = 0x00c5a623u;          /* sw a2, 12(a1) */
    self_page[2] = 0xfff68693u;          /* addi a3, a3, -1 */
    self_page[3] = ADDI_A0(1000);        /* patched to addi a0, a0, 100 by slot 1 */
    self_page[4] = 0xfe0698e3u;          /* bnez a3, -16 (to slot 0) */
    self_page[5] = RET;
    __asm__ volatile("fence.i" ::: "memory");
    register uint64_t a0 __asm__("a0") = 0;
    register uint64_t a1 __asm__("a1") = (uint64_t)(uintptr_t)self_page;
    register uint64_t a2 __asm__("a2") = ADDI_A0(100);
    register uint64_t a3 __asm__("a3") = 50;
    __asm__ volatile("jalr ra, 0(%[f])"
                     : "+r"(a0), "+r"(a3)
                     : [f] "r"(self_page), "r"(a1), "r"(a2)
                     : "ra", "memory");
    return a0;
}

int main(void)
{
    uart_init();
    puts_("smc: patching hot code\n");
    emit(5);
    uint64_t x = hot(1000, 1);
    printf("k=5 no fence: %lx\n", x);
    /* Patch without fence.i: a single hart's stores are seen by its later fetches in rewind and
     * in QEMU (both invalidate on the store). */
    code[2] = ADDI_A0(7);
    x = hot(1000, 1);
    printf("k=7 no fence: %lx\n", x);
    code[2] = ADDI_A0(-9);
    __asm__ volatile("fence.i" ::: "memory");
    x = hot(1000, 1);
    printf("k=-9 fence.i: %lx\n", x);
    /* Patch in the middle of a hot stretch, every 100 iterations. */
    fn_t f = (fn_t)(uintptr_t)code;
    x = 1;
    for (unsigned i = 0; i < 2000; i++) {
        if (i % 100 == 0)
            code[2] = ADDI_A0(i / 100);
        x = f(x) & 0xffff;
    }
    printf("rolling patch: %lx\n", x);
    uint64_t s = 0;
    for (unsigned i = 0; i < 40; i++)
        s += run_self_patching();
    printf("same-page patch: %lu\n", s);
    puts_("smc finished: pass\n");
    exit(0);
}
