/* virtio_rng: the virtio-mmio transports (modern interface) and a virtio-rng device driven by hand:
   slot scan, feature negotiation, one split queue with direct, chained and indirect buffers,
   interrupts through the PLIC, then hostile programming (a descriptor loop, an index past the
   table, a ring outside RAM, random register writes) that must end in DEVICE_NEEDS_RESET and a
   configuration interrupt, never a crash. Lines starting "entropy:" hold the random bytes (they
   differ between runs; the rest of the output does not).
   QEMU: -device virtio-rng-device -global virtio-mmio.force-legacy=false */
#include "guest.h"

#include "virtio.h"

#define QSIZE 8

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

static struct desc descs[QSIZE] __attribute__((aligned(16)));
static struct {
    uint16_t flags, idx, ring[QSIZE], used_event;
} avail __attribute__((aligned(2)));
static struct {
    uint16_t flags, idx;
    struct {
        uint32_t id, len;
    } ring[QSIZE];
    uint16_t avail_event;
} used __attribute__((aligned(4)));
static struct desc itable[4] __attribute__((aligned(16)));
static uint8_t bufs[4][64];

static unsigned long dev;
static unsigned irq;
static volatile unsigned irqs, vring_irqs, config_irqs;

#define PLIC_PRIO(s) (PLIC_BASE + 4 * (s))
#define PLIC_ENABLE_M0 (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_M0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M0 (PLIC_BASE + 0x200004)

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause != (CAUSE_INTR | 11)) {
        printf("unexpected trap: mcause=%lx mtval=%lx\n", f->cause, f->tval);
        exit(3);
    }
    uint32_t src = MMIO32(PLIC_CLAIM_M0);
    if (src == irq) {
        uint32_t isr = R(dev, INTERRUPT_STATUS);
        if (isr & 1)
            vring_irqs++;
        if (isr & 2)
            config_irqs++;
        R(dev, INTERRUPT_ACK) = isr;
        irqs++;
    }
    if (src)
        MMIO32(PLIC_CLAIM_M0) = src;
}

static void fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

/* Reset, negotiate VERSION_1 + `features`, set up queue 0; returns the status read back. */
static uint32_t init(uint32_t features)
{
    R(dev, STATUS) = 0;
    memset(descs, 0, sizeof descs);
    memset(&avail, 0, sizeof avail);
    memset(&used, 0, sizeof used);
    R(dev, STATUS) = S_ACK;
    R(dev, STATUS) = S_ACK | S_DRIVER;
    R(dev, DRIVER_FEATURES_SEL) = 0;
    R(dev, DRIVER_FEATURES) = features;
    R(dev, DRIVER_FEATURES_SEL) = 1;
    R(dev, DRIVER_FEATURES) = 1; /* VERSION_1 */
    R(dev, STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK;
    if (!(R(dev, STATUS) & S_FEATURES_OK))
        return R(dev, STATUS);
    R(dev, QUEUE_SEL) = 0;
    R(dev, QUEUE_NUM) = QSIZE;
    R(dev, QUEUE_DESC_LOW) = (uint32_t)(uintptr_t)descs;
    R(dev, QUEUE_DESC_HIGH) = 0;
    R(dev, QUEUE_DRIVER_LOW) = (uint32_t)(uintptr_t)&avail;
    R(dev, QUEUE_DRIVER_HIGH) = 0;
    R(dev, QUEUE_DEVICE_LOW) = (uint32_t)(uintptr_t)&used;
    R(dev, QUEUE_DEVICE_HIGH) = 0;
    R(dev, QUEUE_READY) = 1;
    R(dev, STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    return R(dev, STATUS);
}

/* Offer chain `head`, notify, wait for the used index to move (or for a configuration interrupt). */
static void submit(uint16_t head)
{
    avail.ring[avail.idx % QSIZE] = head;
    fence();
    avail.idx++;
    fence();
    uint16_t before = used.idx;
    unsigned cfg = config_irqs;
    R(dev, QUEUE_NOTIFY) = 0;
    for (unsigned spin = 0;; spin++) {
        /* Check and sleep with interrupts masked, so an interrupt between the check and the wfi
           is not lost (wfi wakes on it while pending; unmasking takes it). */
        clear_csr(mstatus, MSTATUS_MIE);
        if (*(volatile uint16_t *)&used.idx != before || config_irqs != cfg) {
            set_csr(mstatus, MSTATUS_MIE);
            break;
        }
        if (spin > 2000000) {
            puts_("timeout waiting for the device\n");
            exit(4);
        }
        __asm__ volatile("wfi");
        set_csr(mstatus, MSTATUS_MIE);
    }
}

static void show_entropy(const char *what, const uint8_t *b, unsigned n)
{
    unsigned nonzero = 0;
    for (unsigned i = 0; i < n; i++)
        nonzero += b[i] != 0;
    printf("%s: used len %u, %s\n", what, used.ring[(used.idx - 1) % QSIZE].len,
           nonzero > n / 2 ? "random-looking" : "MOSTLY ZERO");
    puts_("entropy:");
    for (unsigned i = 0; i < n; i++)
        printf(" %02x", b[i]);
    puts_("\n");
}

static uint64_t rnd = 0x9e3779b97f4a7c15UL;
static uint64_t next_rnd(void)
{
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;
    return rnd;
}

static uint8_t scratch[0x4000] __attribute__((aligned(4096)));

int main(void)
{
    uart_init();
    puts_("virtio_rng\n");
    int found = -1;
    for (int i = 0; i < 8; i++) {
        unsigned long b = SLOT(i);
        printf("slot %d: magic %x version %u device %u vendor %x\n", i, R(b, MAGIC), R(b, VERSION),
               R(b, DEVICE_ID), R(b, VENDOR_ID));
        if (R(b, DEVICE_ID) == 4 && found < 0)
            found = i;
    }
    if (found < 0) {
        puts_("no virtio-rng\n");
        exit(2);
    }
    dev = SLOT(found);
    irq = 1 + found;
    printf("rng in slot %d, irq %u\n", found, irq);

    R(dev, DEVICE_FEATURES_SEL) = 0;
    uint32_t lo = R(dev, DEVICE_FEATURES);
    R(dev, DEVICE_FEATURES_SEL) = 1;
    uint32_t hi = R(dev, DEVICE_FEATURES);
    printf("features: indirect %u event_idx %u version_1 %u\n", !!(lo & F_INDIRECT), !!(lo & F_EVENT_IDX), hi & 1);
    R(dev, QUEUE_SEL) = 0;
    printf("queue 0 max %u; queue 1 max %u\n", R(dev, QUEUE_NUM_MAX),
           (R(dev, QUEUE_SEL) = 1, R(dev, QUEUE_NUM_MAX)));

    MMIO32(PLIC_PRIO(irq)) = 1;
    MMIO32(PLIC_THRESHOLD_M0) = 0;
    MMIO32(PLIC_ENABLE_M0) = 1u << irq;
    set_csr(mie, MIP_MEIP);
    set_csr(mstatus, MSTATUS_MIE);

    printf("status after init: %x\n", init(F_INDIRECT | F_EVENT_IDX));
    avail.used_event = 0xffff; /* event-idx: interrupt after every buffer below (used_event follows) */

    /* One direct buffer. */
    descs[0] = (struct desc){(uintptr_t)bufs[0], 32, D_WRITE, 0};
    avail.used_event = used.idx;
    submit(0);
    show_entropy("direct 32", bufs[0], 32);
    /* A chain of two writable buffers. */
    descs[1] = (struct desc){(uintptr_t)bufs[1], 8, D_WRITE | D_NEXT, 2};
    descs[2] = (struct desc){(uintptr_t)bufs[2], 8, D_WRITE, 0};
    avail.used_event = used.idx;
    submit(1);
    show_entropy("chain 8+8 (first)", bufs[1], 8);
    /* An indirect table of two buffers. */
    itable[0] = (struct desc){(uintptr_t)bufs[3], 16, D_WRITE | D_NEXT, 1};
    itable[1] = (struct desc){(uintptr_t)bufs[3] + 16, 16, D_WRITE, 0};
    descs[3] = (struct desc){(uintptr_t)itable, 2 * sizeof(struct desc), D_INDIRECT, 0};
    avail.used_event = used.idx;
    submit(3);
    show_entropy("indirect 16+16", bufs[3], 32);
    printf("used idx %u, avail_event %u, vring irqs %u, config irqs %u\n", used.idx, used.avail_event,
           vring_irqs, config_irqs);
    printf("status: %x\n", R(dev, STATUS));

    /* Hostile: a descriptor loop. */
    descs[4] = (struct desc){(uintptr_t)bufs[0], 8, D_WRITE | D_NEXT, 5};
    descs[5] = (struct desc){(uintptr_t)bufs[0], 8, D_WRITE | D_NEXT, 4};
    submit(4);
    printf("loop: needs_reset %u, config irqs %u\n", !!(R(dev, STATUS) & S_NEEDS_RESET), config_irqs);

    /* Hostile: a next index past the table. */
    init(F_INDIRECT | F_EVENT_IDX);
    descs[0] = (struct desc){(uintptr_t)bufs[0], 8, D_WRITE | D_NEXT, 200};
    submit(0);
    printf("bad index: needs_reset %u, config irqs %u\n", !!(R(dev, STATUS) & S_NEEDS_RESET), config_irqs);

    /* Recovery after a reset. */
    printf("status after reinit: %x\n", init(F_INDIRECT | F_EVENT_IDX));
    memset(bufs[0], 0, 32);
    descs[0] = (struct desc){(uintptr_t)bufs[0], 24, D_WRITE, 0};
    avail.used_event = used.idx;
    submit(0);
    show_entropy("after reset 24", bufs[0], 24);

    /* Hostile: random register writes to every transport (ring addresses kept in a scratch area so
       the device never writes over this program), with random ring contents. */
    clear_csr(mstatus, MSTATUS_MIE);
    static const unsigned regs[] = {DEVICE_FEATURES_SEL, DRIVER_FEATURES, DRIVER_FEATURES_SEL, QUEUE_SEL,
                                    QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY, INTERRUPT_ACK, STATUS,
                                    QUEUE_DESC_LOW, QUEUE_DRIVER_LOW, QUEUE_DEVICE_LOW, QUEUE_DESC_HIGH};
    for (int i = 0; i < 20000; i++) {
        uint64_t x = next_rnd();
        unsigned long b = SLOT(x % 8);
        unsigned r = regs[(x >> 8) % (sizeof regs / sizeof regs[0])];
        uint32_t v = (uint32_t)(x >> 32);
        if (r == QUEUE_DESC_LOW || r == QUEUE_DRIVER_LOW || r == QUEUE_DEVICE_LOW)
            v = (uint32_t)(uintptr_t)scratch + (v & 0x1ff0);
        if (r == QUEUE_DESC_HIGH)
            v = 0;
        if (r == QUEUE_SEL)
            v &= 3;
        if (r == QUEUE_NUM)
            v = (x >> 16) & 1 ? 1u << (v % 12) : v % 2048;
        if (r == STATUS && (x >> 20) % 4 == 0)
            v = 0xf;
        R(b, r) = v;
        ((volatile uint64_t *)scratch)[(x >> 40) % (sizeof scratch / 8)] = next_rnd() & 0x0000ffff0000ffffUL;
        (void)R(b, (x >> 24) % 0x80 * 4);
    }
    puts_("random writes survived\n");
    exit(0);
}
