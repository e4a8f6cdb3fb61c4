/* uart_irq: PLIC source 10 (UART) with priority/enable/threshold; RX interrupts; echo lines uppercased
   until "quit". */
#include "guest.h"

#define UART_IRQ 10
#define PLIC_PRIO(s) (PLIC_BASE + 4 * (s))
#define PLIC_PENDING (PLIC_BASE + 0x1000)
#define PLIC_ENABLE_M0 (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_M0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M0 (PLIC_BASE + 0x200004)

static char ring[256];
static volatile unsigned head, tail;
static volatile unsigned irqs, bad_claims;

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause != (CAUSE_INTR | 11)) {
        printf("unexpected trap: mcause=%lx mtval=%lx\n", f->cause, f->tval);
        exit(3);
    }
    uint32_t src = MMIO32(PLIC_CLAIM_M0);
    if (src == UART_IRQ) {
        int c;
        while ((c = uart_try_getc()) >= 0)
            ring[head++ & 255] = (char)c;
        irqs++;
    } else {
        bad_claims++;
    }
    if (src)
        MMIO32(PLIC_CLAIM_M0) = src;
}

static int getc_irq(void)
{
    while (tail == head)
        __asm__ volatile("wfi");
    return ring[tail++ & 255];
}

int main(void)
{
    uart_init();
    puts_("uart_irq\n");
    /* Register behaviour first (deterministic, independent of when input arrives). */
    MMIO32(PLIC_PRIO(UART_IRQ)) = 0xffffffff;
    printf("priority <- all ones reads %x\n", MMIO32(PLIC_PRIO(UART_IRQ)));
    MMIO32(PLIC_THRESHOLD_M0) = 0xffffffff;
    printf("threshold <- all ones reads %x\n", MMIO32(PLIC_THRESHOLD_M0));
    MMIO32(PLIC_ENABLE_M0) = 1u << UART_IRQ;
    printf("enable reads %x\n", MMIO32(PLIC_ENABLE_M0));
    MMIO32(PLIC_ENABLE_M0) = 0;
    printf("claim with nothing pending: %u\n", MMIO32(PLIC_CLAIM_M0));

    /* Source 10 at priority 2; threshold 2 masks it, threshold 1 lets it through. */
    MMIO32(PLIC_PRIO(UART_IRQ)) = 2;
    MMIO32(PLIC_THRESHOLD_M0) = 2;
    MMIO32(PLIC_ENABLE_M0) = 1u << UART_IRQ;
    MMIO8(UART_BASE + 1) = 0x01; /* IER: received data available */
    set_csr(mie, MIP_MEIP);
    set_csr(mstatus, MSTATUS_MIE);
    puts_("ready\n");
    /* Input may already be waiting; with the threshold masking it, no interrupt may be taken. */
    for (volatile int i = 0; i < 10000; i++)
        ;
    printf("irqs while masked by threshold: %u\n", irqs);
    MMIO32(PLIC_THRESHOLD_M0) = 1;

    char line[128];
    unsigned n = 0, lines = 0;
    for (;;) {
        int c = getc_irq();
        if (c == '\r')
            continue;
        if (c != '\n' && n < sizeof(line) - 1) {
            line[n++] = (char)c;
            continue;
        }
        line[n] = 0;
        if (strcmp(line, "quit") == 0)
            break;
        for (unsigned i = 0; i < n; i++)
            if (line[i] >= 'a' && line[i] <= 'z')
                line[i] = (char)(line[i] - 32);
        lines++;
        printf("echo %u: %s\n", lines, line);
        n = 0;
    }
    clear_csr(mstatus, MSTATUS_MIE);
    MMIO8(UART_BASE + 1) = 0;
    printf("lines %u, interrupts seen %s, spurious claims %u\n", lines, irqs > 0 ? "yes" : "no", bad_claims);
    puts_("uart_irq done\n");
    return 0;
}
