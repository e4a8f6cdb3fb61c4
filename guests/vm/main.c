/* vm: Sv39 with an S-mode kernel and a U-mode process: page faults (load/store/fetch) with scause/stval,
   A/D bits, SUM, MXR, MPRV from M-mode, super pages. */
#include "guest.h"

#define PTE_V (1UL << 0)
#define PTE_R (1UL << 1)
#define PTE_W (1UL << 2)
#define PTE_X (1UL << 3)
#define PTE_U (1UL << 4)
#define PTE_G (1UL << 5)
#define PTE_A (1UL << 6)
#define PTE_D (1UL << 7)
#define PTE(pa, flags) ((((uint64_t)(pa)) >> 12) << 10 | (flags))

typedef uint64_t page_t[512];
static page_t root __attribute__((aligned(4096)));
static page_t l1 __attribute__((aligned(4096)));
static page_t l0 __attribute__((aligned(4096)));
static page_t user_data __attribute__((aligned(4096)));
static page_t kernel_ro __attribute__((aligned(4096)));
static page_t ad_page __attribute__((aligned(4096)));
static page_t xonly_page __attribute__((aligned(4096)));
static page_t sum_page __attribute__((aligned(4096)));
extern char __user_page[];
extern char user_start[], user_ret[];

#define VA_USER_CODE 0x40000000UL
#define VA_USER_DATA 0x40001000UL
#define VA_KERNEL_RO 0x40002000UL
#define VA_AD 0x40003000UL
#define VA_XONLY 0x40004000UL
#define VA_SUM 0x40005000UL
#define VA_UNMAPPED 0x40006000UL
#define VA_NOEXEC 0x40007000UL
#define VA_MEGA 0x40200000UL
#define VA_BAD_MEGA 0x40400000UL
#define PA_MEGA 0x80200000UL

static volatile unsigned faults;

void strap_handler(struct trap_frame *f)
{
    uint64_t from_u = !(read_csr(sstatus) & MSTATUS_SPP);
    if (f->cause == 8) {
        if (f->x[17] == 1) {
            printf("user syscall print: %lx\n", f->x[10]);
            f->epc += 4;
            return;
        }
        puts_("user exit\n");
        lower_exit_from_s();
        return;
    }
    if (f->cause == 12 || f->cause == 13 || f->cause == 15) {
        faults++;
        printf("page fault from %s: scause=%lx stval=%lx\n", from_u ? "U" : "S", f->cause, f->tval);
        if (f->cause == 12) {
            f->epc = f->x[1]; /* fetch probes are calls: resume at the return address */
        } else {
            uint64_t old = read_csr(sstatus);
            set_csr(sstatus, MSTATUS_SUM);
            f->epc += insn_len(f->epc);
            write_csr(sstatus, old);
        }
        return;
    }
    printf("unexpected S trap: scause=%lx stval=%lx\n", f->cause, f->tval);
    exit(3);
}

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    /* Only the MPRV probe faults in M-mode; mret to M keeps MPRV, so drop it here. */
    clear_csr(mstatus, MSTATUS_MPRV);
    printf("M trap: mcause=%lx mtval=%lx\n", f->cause, f->tval);
    f->epc += insn_len(f->epc);
}

static uint64_t load(uint64_t va)
{
    uint64_t v = 0xdead;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(va) : "memory");
    return v;
}

static void store(uint64_t va, uint64_t v) { __asm__ volatile("sd %0, 0(%1)" ::"r"(v), "r"(va) : "memory"); }

static void fetch(uint64_t va)
{
    __asm__ volatile("jalr ra, 0(%0)" ::"r"(va) : "ra", "memory");
}

static uint64_t kernel_main(uint64_t arg)
{
    (void)arg;
    puts_("S-mode kernel running with paging\n");
    printf("kernel_ro through mapping: %lx\n", load(VA_KERNEL_RO));
    printf("megapage read: %lx\n", load(VA_MEGA + 0x10));
    puts_("-- faults\n");
    printf("unmapped load -> %lx\n", load(VA_UNMAPPED + 8));
    store(VA_KERNEL_RO, 1);
    store(VA_UNMAPPED, 1);
    fetch(VA_NOEXEC);
    fetch(VA_USER_CODE); /* S may never execute U pages */
    printf("misaligned megapage load -> %lx\n", load(VA_BAD_MEGA));
    puts_("-- accessed/dirty\n");
    uint64_t *pte = &l0[(VA_AD >> 12) & 511];
    printf("before: A=%lu D=%lu\n", (*pte >> 6) & 1, (*pte >> 7) & 1);
    load(VA_AD);
    printf("after load: A=%lu D=%lu\n", (*pte >> 6) & 1, (*pte >> 7) & 1);
    store(VA_AD, 5);
    printf("after store: A=%lu D=%lu\n", (*pte >> 6) & 1, (*pte >> 7) & 1);
    puts_("-- SUM\n");
    printf("U page with SUM=0 -> %lx\n", load(VA_SUM));
    set_csr(sstatus, MSTATUS_SUM);
    printf("U page with SUM=1 -> %lx\n", load(VA_SUM));
    store(VA_SUM + 8, 0x77);
    clear_csr(sstatus, MSTATUS_SUM);
    puts_("-- MXR\n");
    printf("X-only page with MXR=0 -> %lx\n", load(VA_XONLY));
    set_csr(sstatus, MSTATUS_MXR);
    printf("X-only page with MXR=1 -> %lx\n", load(VA_XONLY));
    clear_csr(sstatus, MSTATUS_MXR);
    puts_("-- user process\n");
    clear_csr(sstatus, MSTATUS_SPP);
    write_csr(sepc, VA_USER_CODE);
    __asm__ volatile("li sp, %0\n li ra, %1\n sret" ::"i"(VA_USER_DATA + 4096), "i"(VA_USER_CODE + 0) : "memory");
    return 0;
}

int main(void)
{
    puts_("vm: Sv39\n");
    for (unsigned i = 0; i < 512; i++) {
        user_data[i] = 0x1000 + i;
        kernel_ro[i] = 0x2000 + i;
        ad_page[i] = 0x3000 + i;
        xonly_page[i] = 0x4000 + i;
        sum_page[i] = 0x5000 + i;
    }
    MMIO64(PA_MEGA + 0x10) = 0x6d656761; /* "mega" */
    root[0] = PTE(0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    root[1] = PTE(l1, PTE_V);
    root[2] = PTE(0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D); /* 1 GiB kernel identity */
    l1[0] = PTE(l0, PTE_V);
    l1[1] = PTE(PA_MEGA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    l1[2] = PTE(PA_MEGA + 0x1000, PTE_V | PTE_R | PTE_A); /* misaligned super page */
    l0[0] = PTE(__user_page, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
    l0[1] = PTE(user_data, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    l0[2] = PTE(kernel_ro, PTE_V | PTE_R | PTE_A);
    l0[3] = PTE(ad_page, PTE_V | PTE_R | PTE_W);
    l0[4] = PTE(xonly_page, PTE_V | PTE_X | PTE_A);
    l0[5] = PTE(sum_page, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    l0[7] = PTE(__user_page, PTE_V | PTE_R | PTE_A);
    printf("user entry offset %lx, ret offset %lx\n", (uint64_t)(user_start - __user_page),
           (uint64_t)(user_ret - __user_page));

    write_csr(medeleg, (1UL << 8) | (1UL << 12) | (1UL << 13) | (1UL << 15));
    write_csr(stvec, (uint64_t)strap_entry);
    write_csr(satp, (8UL << 60) | ((uint64_t)root >> 12));
    __asm__ volatile("sfence.vma");
    run_lower(1, kernel_main, 0);
    printf("back in M: faults=%u user_data[1]=%lx sum_page[1]=%lx\n", faults, user_data[1], sum_page[1]);

    puts_("-- MPRV from M-mode\n");
    uint64_t v = 0;
    clear_csr(mstatus, MSTATUS_MPP);
    set_csr(mstatus, 1UL << 11); /* MPP = S */
    __asm__ volatile("csrs mstatus, %1\n ld %0, 0(%2)\n csrc mstatus, %1" : "+r"(v) : "r"(MSTATUS_MPRV), "r"(VA_MEGA + 0x10) : "memory");
    printf("MPRV load through S translation: %lx\n", v);
    v = 0;
    __asm__ volatile("csrs mstatus, %1\n ld %0, 0(%2)\n csrc mstatus, %1" : "+r"(v) : "r"(MSTATUS_MPRV), "r"(VA_UNMAPPED) : "memory");
    printf("MPRV load of unmapped page -> %lx\n", v);
    clear_csr(mstatus, MSTATUS_MPP);
    __asm__ volatile("csrs mstatus, %1\n ld %0, 0(%2)\n csrc mstatus, %1" : "+r"(v) : "r"(MSTATUS_MPRV), "r"(VA_SUM) : "memory");
    printf("MPRV with MPP=U load of U page -> %lx\n", v);
    printf("M-mode ignores satp: %lx\n", *(volatile uint64_t *)(PA_MEGA + 0x10));
    write_csr(satp, 0);
    puts_("vm done\n");
    return 0;
}
