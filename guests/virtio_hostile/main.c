/* virtio_hostile: programs every virtio-mmio device on the board wrongly, on purpose, driven by a
   seeded PRNG: random feature words (offered or not), random queue selections and sizes (0, not a
   power of two, past the maximum), rings and buffers inside a scratch area, misaligned or outside
   RAM, descriptor tables full of garbage (loops, indices past the table, huge lengths, nested
   indirect tables), available indices that jump, notifies of queues that do not exist, random
   configuration-space accesses of every width and random status writes, with short waits so
   devices that complete requests later (disk, sound) get to. Devices may write only into the
   scratch area (every address handed to them points there or outside RAM).
   It prints a checksum of everything it read and exits 0: the run must end, never crash the
   emulator, and replay identically (the test compares a recording with its replays). */
#include "guest.h"

#include "virtio.h"

#define SLOTS 8
#define ROUNDS 2000

#ifndef SEED
#define SEED 0x1234567UL
#endif

/* Everything a device may touch. */
#define SCRATCH_SIZE (64 * 1024)
static uint8_t scratch[SCRATCH_SIZE] __attribute__((aligned(4096)));

static uint64_t rng_state = SEED;
static uint64_t checksum;
static unsigned devices, needs_reset;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mix(uint64_t v) { checksum = (checksum ^ v) * 0x100000001b3UL; }

/* An address for the device: mostly in the scratch area (sometimes misaligned), sometimes
   outside RAM, never the guest's own code, data or stack. */
static uint64_t addr(void)
{
    uint64_t r = rnd();
    switch (r % 8) {
    case 0: return 0;
    case 1: return 0xfffffffffffff000UL;
    case 2: return 0x90000000UL + (r >> 40); /* past the end of a small RAM */
    case 3: return (uint64_t)(uintptr_t)scratch + ((r >> 16) % SCRATCH_SIZE);
    default: return (uint64_t)(uintptr_t)scratch + (((r >> 16) % (SCRATCH_SIZE - 4096)) & ~15UL);
    }
}

static uint32_t length(void)
{
    uint64_t r = rnd();
    switch (r % 6) {
    case 0: return 0;
    case 1: return 0xffffffffu;
    case 2: return (uint32_t)(r >> 32);
    default: return (uint32_t)((r >> 20) % 2048);
    }
}

/* Garbage descriptors (addr, len, flags, next) over part of the scratch area. */
static void scribble(void)
{
    uint64_t at = (uint64_t)(uintptr_t)scratch + ((rnd() % (SCRATCH_SIZE / 16 - 64)) * 16);
    for (int i = 0; i < 64; i++) {
        volatile uint64_t *d = (volatile uint64_t *)(uintptr_t)(at + 16 * i);
        d[0] = addr();
        d[1] = (uint64_t)length() | (rnd() & 0xffffffff00000000UL);
    }
    /* Available rings: random indices, random heads. */
    volatile uint16_t *a = (volatile uint16_t *)(uintptr_t)(at & ~1UL);
    for (int i = 0; i < 32; i++)
        a[i] = (uint16_t)rnd();
}

static void wait_a_little(void)
{
    uint64_t until = clint_mtime() + (rnd() % 200);
    while (clint_mtime() < until)
        ;
}

static void setup_queue(uint64_t base)
{
    uint32_t qmax = R(base, QUEUE_NUM_MAX);
    mix(qmax);
    static const uint32_t sizes[] = {0, 1, 2, 3, 4, 6, 8, 16, 64, 256, 1024, 2048, 7};
    uint32_t q = (uint32_t)(rnd() % 6); /* past the device's queues too */
    R(base, QUEUE_SEL) = q;
    R(base, QUEUE_NUM) = sizes[rnd() % (sizeof sizes / sizeof sizes[0])];
    uint64_t d = addr(), dr = addr(), dv = addr();
    R(base, QUEUE_DESC_LOW) = (uint32_t)d;
    R(base, QUEUE_DESC_HIGH) = (uint32_t)(d >> 32);
    R(base, QUEUE_DRIVER_LOW) = (uint32_t)dr;
    R(base, QUEUE_DRIVER_HIGH) = (uint32_t)(dr >> 32);
    R(base, QUEUE_DEVICE_LOW) = (uint32_t)dv;
    R(base, QUEUE_DEVICE_HIGH) = (uint32_t)(dv >> 32);
    R(base, QUEUE_READY) = (uint32_t)(rnd() % 4 != 0);
    mix(R(base, QUEUE_READY));
}

static void negotiate(uint64_t base)
{
    R(base, STATUS) = 0;
    R(base, STATUS) = 1 | 2;
    for (uint32_t sel = 0; sel < 3; sel++) {
        R(base, DEVICE_FEATURES_SEL) = sel;
        uint32_t offered = R(base, DEVICE_FEATURES);
        mix(offered);
        R(base, DRIVER_FEATURES_SEL) = sel;
        /* Mostly a subset of what is offered (VERSION_1 kept), sometimes anything. */
        uint32_t want = rnd() % 5 == 0 ? (uint32_t)rnd() : offered & (uint32_t)(rnd() | (sel == 1));
        R(base, DRIVER_FEATURES) = want;
    }
    R(base, STATUS) = 1 | 2 | 8;
    mix(R(base, STATUS));
}

static void round_on(uint64_t base)
{
    switch (rnd() % 10) {
    case 0: negotiate(base); break;
    case 1:
    case 2: setup_queue(base); break;
    case 3: R(base, STATUS) = (uint32_t)rnd() & 0xff; break;
    case 4: R(base, STATUS) = 1 | 2 | 4 | 8; break;
    case 5: scribble(); break;
    case 6: { /* configuration space, every width */
        uint64_t off = CONFIG + (rnd() % 0x100);
        switch (rnd() % 4) {
        case 0: if (rnd() & 1) MMIO8(base + off) = (uint8_t)rnd(); else mix(MMIO8(base + off)); break;
        case 1: off &= ~1UL; if (rnd() & 1) MMIO16(base + off) = (uint16_t)rnd(); else mix(MMIO16(base + off)); break;
        case 2: off &= ~3UL; if (rnd() & 1) MMIO32(base + off) = (uint32_t)rnd(); else mix(MMIO32(base + off)); break;
        default: off &= ~7UL; if (off + 8 <= 0x200) { if (rnd() & 1) MMIO64(base + off) = rnd(); else mix(MMIO64(base + off)); } break;
        }
        break;
    }
    case 7: R(base, QUEUE_NOTIFY) = (uint32_t)(rnd() % 8); wait_a_little(); break;
    case 8: R(base, INTERRUPT_ACK) = R(base, INTERRUPT_STATUS); break;
    default: wait_a_little(); break;
    }
    uint32_t st = R(base, STATUS);
    mix(st);
    mix(R(base, INTERRUPT_STATUS));
    mix(R(base, CONFIG_GENERATION));
    if (st & 0x40)
        needs_reset++;
}

int main(void)
{
    uint64_t bases[SLOTS];
    unsigned n = 0;
    for (unsigned i = 0; i < SLOTS; i++) {
        uint32_t id = R(SLOT(i), DEVICE_ID);
        if (id != 0) {
            printf("virtio_hostile: slot %u: device %u\n", i, id);
            bases[n++] = SLOT(i);
        }
    }
    devices = n;
    for (unsigned r = 0; r < ROUNDS * (n ? n : 1) && n; r++)
        round_on(bases[rnd() % n]);
    /* Leave every device reset. */
    for (unsigned i = 0; i < n; i++)
        R(bases[i], STATUS) = 0;
    printf("virtio_hostile: %u devices, %u rounds, needs-reset seen %u times\n", devices,
           ROUNDS * devices, needs_reset);
    printf("virtio_hostile: checksum %lx\n", checksum);
    exit(0);
}
