/* traps: ecall from M/S/U with delegation, ebreak, illegal instruction mtval, vectored mtvec,
   mret/sret transitions, epc values. */
#include "guest.h"

extern char mvec_table[];
static uint64_t expect_epc;
/* Set while an illegal mret runs: its xtval is not printed (QEMU 10 reports a stale instruction
   there; rewind reports the mret bits, as the spec says: see the priv spec-departures notes). */
static int hide_tval;

static void report(const char *who, struct trap_frame *f, uint64_t status)
{
    printf("%s: cause=%lx epc_ok=%d ", who, f->cause, f->epc == expect_epc);
    if (hide_tval)
        puts_("tval=(not compared)");
    else if (f->tval && f->tval == f->epc)
        puts_("tval=epc");
    else
        printf("tval=%lx", f->tval);
    printf(" status.PP=%lx status.PIE=%lx\n", who[0] == 'M' ? (status >> 11) & 3 : (status >> 8) & 1,
           who[0] == 'M' ? (status >> 7) & 1 : (status >> 5) & 1);
}

void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    report("M", f, read_csr(mstatus));
    f->epc += insn_len(f->epc);
}

void strap_handler(struct trap_frame *f)
{
    if (f->cause == 8 && f->x[17] == LOWER_EXIT_MAGIC) {
        lower_exit_from_s();
        return;
    }
    if (f->cause == (CAUSE_INTR | 1)) {
        printf("S: supervisor software interrupt, sepc_ok=%d\n", f->epc == expect_epc);
        clear_csr(sip, MIP_SSIP);
        return;
    }
    report("S", f, read_csr(sstatus));
    f->epc += insn_len(f->epc);
}

static volatile unsigned vec3, vec7;

void mvec3_handler(struct trap_frame *f)
{
    vec3++;
    printf("vector 3: cause=%lx\n", f->cause);
    MMIO32(CLINT_MSIP) = 0;
}

void mvec7_handler(struct trap_frame *f)
{
    vec7++;
    printf("vector 7: cause=%lx\n", f->cause);
    clint_set_mtimecmp(~0ULL);
}

/* Each helper records the address of its trapping instruction in expect_epc first. */
#define TRAP_AT(insn) __asm__ volatile("li a7, 0\n la t0, 1f\n sd t0, %0\n 1: " insn ::"m"(expect_epc) : "t0", "a7", "memory")

static uint64_t do_ecall(uint64_t arg)
{
    (void)arg;
    TRAP_AT("ecall");
    return 0;
}

static uint64_t do_ebreak(uint64_t arg)
{
    (void)arg;
    TRAP_AT("ebreak");
    return 0;
}

static uint64_t do_illegal(uint64_t arg)
{
    (void)arg;
    TRAP_AT(".4byte 0xffffffff");
    return 0;
}

static uint64_t do_mret_in_s(uint64_t arg)
{
    (void)arg;
    TRAP_AT("mret");
    return 0;
}

static uint64_t do_sret_in_u(uint64_t arg)
{
    (void)arg;
    TRAP_AT("sret");
    return 0;
}

static uint64_t do_wfi_in_u(uint64_t arg)
{
    (void)arg;
    TRAP_AT("wfi");
    return 0;
}

static uint64_t s_soft_interrupt(uint64_t arg)
{
    (void)arg;
    set_csr(sie, MIP_SSIP);
    __asm__ volatile("la t0, 1f\n sd t0, %0\n csrs sstatus, %1\n 1: nop" ::"m"(expect_epc), "r"(MSTATUS_SIE) : "t0", "memory");
    clear_csr(sstatus, MSTATUS_SIE);
    return 0;
}

static void do_ecall_u_then_exit(void)
{
    TRAP_AT("ecall");
    __asm__ volatile("li a7, %0\n ecall" ::"i"(LOWER_EXIT_MAGIC) : "a7");
}

/* In S-mode: drop to U with sret, run an ecall there (delegated back to S), then return to M. */
static uint64_t s_to_u(uint64_t arg)
{
    (void)arg;
    clear_csr(sstatus, MSTATUS_SPP);
    set_csr(sstatus, MSTATUS_SPIE);
    write_csr(sepc, (uint64_t)do_ecall_u_then_exit);
    __asm__ volatile("sret");
    return 0;
}

int main(void)
{
    puts_("traps\n");
    write_csr(stvec, (uint64_t)strap_entry);

    puts_("-- ecall from M, S, U without delegation\n");
    do_ecall(0);
    run_lower(1, do_ecall, 0);
    run_lower(0, do_ecall, 0);
    puts_("-- ebreak and illegal instruction\n");
    do_ebreak(0);
    run_lower(0, do_ebreak, 0);
    do_illegal(0);
    run_lower(1, do_illegal, 0);
    puts_("-- privileged instructions from lower modes\n");
    hide_tval = 1;
    run_lower(1, do_mret_in_s, 0);
    hide_tval = 0;
    run_lower(0, do_sret_in_u, 0);
    run_lower(0, do_wfi_in_u, 0);
    set_csr(mstatus, 1UL << 21); /* TW: wfi in S traps */
    run_lower(1, do_wfi_in_u, 0);
    clear_csr(mstatus, 1UL << 21);
    set_csr(mstatus, 1UL << 22); /* TSR: sret in S traps */
    run_lower(1, do_sret_in_u, 0);
    clear_csr(mstatus, 1UL << 22);

    puts_("-- with medeleg: U ecall, breakpoints and illegal instructions go to S\n");
    write_csr(medeleg, (1UL << 8) | (1UL << 3) | (1UL << 2));
    run_lower(0, do_ecall, 0);
    run_lower(0, do_ebreak, 0);
    run_lower(0, do_illegal, 0);
    run_lower(1, do_ecall, 0);  /* ecall from S is not delegated */
    run_lower(1, do_illegal, 0); /* delegated exceptions from S stay in S */
    do_illegal(0);              /* never delegated from M */
    run_lower(1, s_to_u, 0);
    write_csr(medeleg, 0);

    puts_("-- delegated supervisor software interrupt\n");
    write_csr(mideleg, MIP_SSIP);
    set_csr(mip, MIP_SSIP);
    run_lower(1, s_soft_interrupt, 0);
    write_csr(mideleg, 0);

    puts_("-- vectored mtvec\n");
    write_csr(mtvec, (uint64_t)mvec_table | 1);
    print_hex("mtvec mode", read_csr(mtvec) & 3);
    clint_set_mtimecmp(~0ULL); /* mtimecmp resets to 0: keep the timer quiet until wanted */
    set_csr(mie, MIP_MSIP | MIP_MTIP);
    MMIO32(CLINT_MSIP) = 1;
    set_csr(mstatus, MSTATUS_MIE);
    while (!vec3)
        ;
    clear_csr(mstatus, MSTATUS_MIE);
    clint_set_mtimecmp(clint_mtime() + 100);
    set_csr(mstatus, MSTATUS_MIE);
    while (!vec7)
        __asm__ volatile("wfi");
    clear_csr(mstatus, MSTATUS_MIE);
    do_ecall(0); /* exceptions use the base address */
    write_csr(mtvec, (uint64_t)mtrap_entry);
    printf("vectors taken: 3 x%u, 7 x%u\n", vec3, vec7);

    puts_("-- mret with MPIE/MPP\n");
    clear_csr(mstatus, MSTATUS_MPIE);
    print_hex("mstatus.MPP after U round trip", (read_csr(mstatus) >> 11) & 3);
    __asm__ volatile("la t0, 1f\n csrw mepc, t0\n li t0, 0x1880\n csrs mstatus, t0\n mret\n 1:" ::: "t0");
    print_hex("after mret to M: MIE", (read_csr(mstatus) >> 3) & 1);
    print_hex("after mret to M: MPIE", (read_csr(mstatus) >> 7) & 1);
    print_hex("after mret to M: MPP", (read_csr(mstatus) >> 11) & 3);
    clear_csr(mstatus, MSTATUS_MIE);
    puts_("traps done\n");
    return 0;
}
