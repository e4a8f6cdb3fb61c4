/* interactive: line-oriented console over UART RX interrupts (PLIC source 10), a 1 kHz CLINT tick and the
   Goldfish RTC, sleeping in wfi between inputs. Built for record/replay tests: its output depends on what
   arrives and when, yet every line it prints without being asked is deterministic for a given input text.
   Commands (one per line): "ticks" prints the tick count, "rtc" prints the raw RTC time (timing-dependent,
   never used in QEMU references), "quit" exits 0, "fail N" exits N; any other line is echoed with its
   number and an FNV-1a checksum of every byte read so far. */
#include "guest.h"

#define UART_IRQ 10
#define PLIC_PRIO(s) (PLIC_BASE + 4 * (s))
#define PLIC_ENABLE_M0 (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_M0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M0 (PLIC_BASE + 0x200004)
#define RTC_BASE 0x101000UL
#define TICK 10000 /* 1 ms at the 10 MHz timebase */

static char ring[4096];
static volatile unsigned head, tail;
static volatile int rx_paused;
static volatile uint64_t ticks;
static uint64_t next_deadline;

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        ticks++;
        /* Fixed period, so deadlines do not drift with handler latency. */
        next_deadline += TICK;
        clint_set_mtimecmp(next_deadline);
        return;
    }
    if (f->cause == (CAUSE_INTR | 11)) {
        uint32_t src = MMIO32(PLIC_CLAIM_M0);
        if (src == UART_IRQ) {
            int c;
            while (head - tail < sizeof(ring) && (c = uart_try_getc()) >= 0)
                ring[head++ % sizeof(ring)] = (char)c;
            /* Ring full: stop RX interrupts (the UART then holds further input back) until main drains it. */
            if (head - tail == sizeof(ring)) {
                MMIO8(UART_BASE + 1) = 0;
                rx_paused = 1;
            }
        }
        if (src)
            MMIO32(PLIC_CLAIM_M0) = src;
        return;
    }
    printf("unexpected trap: mcause=%lx mepc=%lx mtval=%lx\n", f->cause, f->epc, f->tval);
    exit(3);
}

static int getc_irq(void)
{
    for (;;) {
        clear_csr(mstatus, MSTATUS_MIE);
        if (tail != head) {
            int c = (unsigned char)ring[tail++ % sizeof(ring)];
            if (rx_paused) {
                rx_paused = 0;
                MMIO8(UART_BASE + 1) = 0x01;
            }
            set_csr(mstatus, MSTATUS_MIE);
            return c;
        }
        /* Checked with interrupts off so a byte arriving now still wakes the wfi (mip is level). */
        __asm__ volatile("wfi");
        set_csr(mstatus, MSTATUS_MIE);
    }
}

static uint64_t rtc_now(void)
{
    uint32_t lo = MMIO32(RTC_BASE + 0x00); /* latches TIME_HIGH */
    uint32_t hi = MMIO32(RTC_BASE + 0x04);
    return ((uint64_t)hi << 32) | lo;
}

static int parse_uint(const char *s, int *out)
{
    int v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000)
            return 0;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 1;
}

int main(void)
{
    uart_init();
    puts_("interactive: commands ticks, rtc, quit, fail N\n");

    /* 2020-01-01 .. 2100-01-01 in ns. */
    uint64_t t = rtc_now();
    printf("rtc plausible: %d\n", t > 1577836800ULL * 1000000000ULL && t < 4102444800ULL * 1000000000ULL);
    uint64_t t2 = rtc_now();
    printf("rtc monotonic: %d\n", t2 >= t);

    MMIO32(PLIC_PRIO(UART_IRQ)) = 1;
    MMIO32(PLIC_THRESHOLD_M0) = 0;
    MMIO32(PLIC_ENABLE_M0) = 1u << UART_IRQ;
    MMIO8(UART_BASE + 1) = 0x01; /* IER: received data available */
    next_deadline = clint_mtime() + TICK;
    clint_set_mtimecmp(next_deadline);
    set_csr(mie, MIP_MEIP | MIP_MTIP);
    set_csr(mstatus, MSTATUS_MIE);
    puts_("ready\n");

    char line[128];
    unsigned n = 0, lines = 0;
    uint32_t sum = 2166136261u; /* FNV-1a over every byte read */
    for (;;) {
        int c = getc_irq();
        sum = (sum ^ (uint8_t)c) * 16777619u;
        if (c == '\r')
            continue;
        if (c != '\n') {
            if (n < sizeof(line) - 1)
                line[n++] = (char)c;
            continue;
        }
        line[n] = 0;
        n = 0;
        lines++;
        int code;
        if (strcmp(line, "quit") == 0) {
            printf("line %u: quit, sum %08x\n", lines, sum);
            puts_("bye\n");
            exit(0);
        } else if (line[0] == 'f' && line[1] == 'a' && line[2] == 'i' && line[3] == 'l' && line[4] == ' ' &&
                   parse_uint(line + 5, &code)) {
            printf("line %u: fail %d, sum %08x\n", lines, code, sum);
            exit(code & 0xffff);
        } else if (strcmp(line, "ticks") == 0) {
            printf("line %u: ticks %lu\n", lines, (uint64_t)ticks);
        } else if (strcmp(line, "rtc") == 0) {
            /* Raw host-derived time: only for rewind's record/replay tests. */
            printf("line %u: RTC-RAW %lu\n", lines, rtc_now());
        } else {
            printf("line %u: [%s] sum %08x\n", lines, line, sum);
        }
    }
}
