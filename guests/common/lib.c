/* UART, printf, finisher and default trap handlers shared by all guests. */
#include <stdarg.h>
#include "guest.h"

#define UART_RBR 0
#define UART_THR 0
#define UART_IER 1
#define UART_LCR 3
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

void uart_init(void)
{
    /* 8N1 only: touching FCR would reset the FIFOs and drop input that arrived early (timing-dependent). */
    MMIO8(UART_BASE + UART_LCR) = 0x03;
}

void uart_putc(char c)
{
    while (!(MMIO8(UART_BASE + UART_LSR) & LSR_THRE))
        ;
    MMIO8(UART_BASE + UART_THR) = (uint8_t)c;
}

int uart_try_getc(void)
{
    if (MMIO8(UART_BASE + UART_LSR) & LSR_DR)
        return MMIO8(UART_BASE + UART_RBR);
    return -1;
}

int uart_getc(void)
{
    int c;
    while ((c = uart_try_getc()) < 0)
        ;
    return c;
}

void puts_(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

static void put_num(uint64_t v, int base, int width, int zero, int neg)
{
    char buf[24];
    int n = 0;
    do {
        int d = (int)(v % (uint64_t)base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= (uint64_t)base;
    } while (v);
    int len = n + (neg ? 1 : 0);
    if (neg && zero)
        uart_putc('-');
    for (; len < width; len++)
        uart_putc(zero ? '0' : ' ');
    if (neg && !zero)
        uart_putc('-');
    while (n)
        uart_putc(buf[--n]);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            uart_putc(*fmt);
            continue;
        }
        fmt++;
        int zero = 0, width = 0, lng = 0;
        if (*fmt == '0') {
            zero = 1;
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 'c':
            uart_putc((char)va_arg(ap, int));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            int l = (int)strlen(s);
            for (; l < width; l++)
                uart_putc(' ');
            puts_(s);
            break;
        }
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, zero, v < 0);
            break;
        }
        case 'u': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_num(v, 10, width, zero, 0);
            break;
        }
        case 'x': {
            uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_num(v, 16, width, zero, 0);
            break;
        }
        case 'p':
            puts_("0x");
            put_num((uint64_t)va_arg(ap, void *), 16, 16, 1, 0);
            break;
        case '%':
            uart_putc('%');
            break;
        case 0:
            fmt--;
            break;
        default:
            uart_putc('%');
            uart_putc(*fmt);
        }
    }
    va_end(ap);
    return 0;
}

void put_hex(uint64_t v)
{
    puts_("0x");
    put_num(v, 16, 16, 1, 0);
}

void print_hex(const char *label, uint64_t v)
{
    puts_(label);
    puts_(": ");
    put_hex(v);
    uart_putc('\n');
}

void exit(int code)
{
    uint32_t v = code == 0 ? 0x5555 : (0x3333 | ((uint32_t)code << 16));
    MMIO32(FINISHER_BASE) = v;
    for (;;)
        __asm__ volatile("wfi");
}

__attribute__((weak)) void mtrap_handler(struct trap_frame *f)
{
    if (lower_return(f))
        return;
    printf("unexpected M trap: mcause=%lx mepc=%lx mtval=%lx\n", f->cause, f->epc, f->tval);
    exit(3);
}

__attribute__((weak)) void strap_handler(struct trap_frame *f)
{
    printf("unexpected S trap: scause=%lx sepc=%lx stval=%lx\n", f->cause, f->epc, f->tval);
    exit(3);
}

void *memset(void *d, int c, size_t n)
{
    volatile uint8_t *p = d; /* volatile: keep gcc from turning this into a call to memset */
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    volatile uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

uint64_t lower_ctx[16];
extern char _strap_stack_top[];

int lower_return(struct trap_frame *f)
{
    if ((f->cause != 8 && f->cause != 9 && f->cause != 11) || f->x[17] != LOWER_EXIT_MAGIC)
        return 0;
    static const int regs[] = {1, 2, 8, 9, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 3, 4};
    for (unsigned i = 0; i < 16; i++)
        f->x[regs[i]] = lower_ctx[i];
    f->epc = lower_ctx[0];
    /* Back to M-mode; the S trap stack is reset in case we came through an S handler. */
    set_csr(mstatus, MSTATUS_MPP);
    write_csr(sscratch, (uint64_t)_strap_stack_top);
    return 1;
}

void lower_exit_from_s(void)
{
    register uint64_t a7 __asm__("a7") = LOWER_EXIT_MAGIC;
    __asm__ volatile("ecall" ::"r"(a7));
}
