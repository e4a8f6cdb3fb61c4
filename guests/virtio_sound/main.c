/* virtio_sound: a virtio-sound device (virtio 1.2 section 5.14) driven by hand through the modern
   virtio-mmio transport: configuration, PCM_INFO of both streams, the requests QEMU does not support,
   then stream 0 plays a 440 Hz square wave (44100 Hz, S16, stereo; 20 periods of 441 frames, four
   buffers in flight) and stream 1 captures 8 periods; the captured bytes' FNV-1a hash is printed.
   Lines starting "capture:" depend on the capture source and "elapsed:" on the audio clock. QEMU's
   wav audiodev has no capture: there the guest gives up after a second of virtual time (exit 5).
   QEMU: -device virtio-sound-device,audiodev=a0 -audiodev wav,id=a0,path=q.wav
         -global virtio-mmio.force-legacy=false */
#include "guest.h"

#include "virtio.h"

#define QSIZE 16
#define NQ 4
#define Q_CTL 0
#define Q_EVT 1
#define Q_TX 2
#define Q_RX 3

/* Requests and statuses. */
#define R_JACK_INFO 1
#define R_PCM_INFO 0x100
#define R_PCM_SET_PARAMS 0x101
#define R_PCM_PREPARE 0x102
#define R_PCM_RELEASE 0x103
#define R_PCM_START 0x104
#define R_PCM_STOP 0x105
#define R_CHMAP_INFO 0x200
#define FMT_S16 5
#define RATE_44100 6

#define RATE 44100
#define CHANNELS 2
#define FRAMES 441 /* 10 ms */
#define PERIOD (FRAMES * CHANNELS * 2)
#define PLAY_PERIODS 20
#define CAPTURE_PERIODS 8
#define INFLIGHT 4

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct queue {
    struct desc d[QSIZE] __attribute__((aligned(16)));
    struct {
        uint16_t flags, idx, ring[QSIZE], used_event;
    } avail __attribute__((aligned(2)));
    struct {
        uint16_t flags, idx;
        struct {
            uint32_t id, len;
        } ring[QSIZE];
        uint16_t avail_event;
    } used __attribute__((aligned(4)));
    uint16_t seen; /* used entries consumed */
};

static struct queue qs[NQ] __attribute__((aligned(16)));
static unsigned long dev;
static unsigned irq;

#define PLIC_PRIO(s) (PLIC_BASE + 4 * (s))
#define PLIC_ENABLE_M0 (PLIC_BASE + 0x2000)
#define PLIC_THRESHOLD_M0 (PLIC_BASE + 0x200000)
#define PLIC_CLAIM_M0 (PLIC_BASE + 0x200004)

static volatile int timed_out;

void mtrap_handler(struct trap_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        /* The capture deadline passed (QEMU's wav audiodev captures nothing). */
        clint_set_mtimecmp(~0UL);
        timed_out = 1;
        return;
    }
    if (f->cause != (CAUSE_INTR | 11)) {
        printf("unexpected trap: mcause=%lx mtval=%lx\n", f->cause, f->tval);
        exit(3);
    }
    uint32_t src = MMIO32(PLIC_CLAIM_M0);
    if (src == irq)
        R(dev, INTERRUPT_ACK) = R(dev, INTERRUPT_STATUS);
    if (src)
        MMIO32(PLIC_CLAIM_M0) = src;
}

static void fence(void) { __asm__ volatile("fence rw, rw" ::: "memory"); }

/* Offer a chain of `n` buffers on queue `q` (descriptors from slot `first`), notify. */
static void offer(int q, unsigned first, unsigned n, const uint64_t *addr, const uint32_t *len,
                  const int *write)
{
    struct queue *Q = &qs[q];
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (first + i) % QSIZE;
        Q->d[k] = (struct desc){addr[i], len[i], (uint16_t)((write[i] ? D_WRITE : 0) | (i + 1 < n ? D_NEXT : 0)),
                                (uint16_t)((k + 1) % QSIZE)};
    }
    Q->avail.ring[Q->avail.idx % QSIZE] = first;
    fence();
    Q->avail.idx++;
    fence();
    R(dev, QUEUE_NOTIFY) = q;
}

/* Wait for the next used entry of queue `q`; returns its length. */
static uint32_t wait_used(int q)
{
    struct queue *Q = &qs[q];
    for (unsigned long spin = 0;; spin++) {
        /* Check and sleep with interrupts masked: an interrupt taken between the check and
           the wfi would otherwise be the wake-up wfi then waits for in vain (QEMU completes
           requests asynchronously, so it happens there). wfi wakes on the pending interrupt;
           unmasking takes it. */
        clear_csr(mstatus, MSTATUS_MIE);
        if (*(volatile uint16_t *)&Q->used.idx != Q->seen) {
            set_csr(mstatus, MSTATUS_MIE);
            break;
        }
        if (timed_out) {
            printf("capture: nothing captured within a second on queue %d\n", q);
            exit(5);
        }
        if (spin > 50000000) {
            printf("timeout waiting on queue %d\n", q);
            exit(4);
        }
        __asm__ volatile("wfi");
        set_csr(mstatus, MSTATUS_MIE);
    }
    fence();
    uint32_t len = Q->used.ring[Q->seen % QSIZE].len;
    Q->seen++;
    return len;
}

static uint8_t req[64], resp[128];

/* One control request: `n` bytes of `req`, `room` bytes of answer in `resp`; returns the status. */
static uint32_t control(unsigned n, unsigned room, uint32_t *used_len)
{
    uint64_t a[2] = {(uintptr_t)req, (uintptr_t)resp};
    uint32_t l[2] = {n, room};
    int w[2] = {0, 1};
    memset(resp, 0xee, sizeof resp);
    offer(Q_CTL, 0, 2, a, l, w);
    uint32_t u = wait_used(Q_CTL);
    if (used_len)
        *used_len = u;
    return *(volatile uint32_t *)resp;
}

static void put32(unsigned off, uint32_t v) { memcpy(req + off, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint32_t simple(uint32_t code, uint32_t stream)
{
    put32(0, code);
    put32(4, stream);
    return control(8, 4, 0);
}

static uint32_t set_params(uint32_t stream)
{
    put32(0, R_PCM_SET_PARAMS);
    put32(4, stream);
    put32(8, PERIOD * INFLIGHT); /* buffer_bytes */
    put32(12, PERIOD);           /* period_bytes */
    put32(16, 0);                /* features */
    req[20] = CHANNELS;
    req[21] = FMT_S16;
    req[22] = RATE_44100;
    req[23] = 0;
    return control(24, 4, 0);
}

static int16_t pcm[INFLIGHT][PERIOD / 2];
static uint8_t cap[INFLIGHT][PERIOD];
static struct {
    uint32_t stream;
} xfer_hdr[INFLIGHT];
static struct {
    uint32_t status, latency;
} xfer_status[INFLIGHT];

/* Frame n of the tone: a 440 Hz square wave, +-8000, right channel inverted. */
static void fill_tone(int16_t *out, unsigned first_frame)
{
    for (unsigned i = 0; i < FRAMES; i++) {
        unsigned n = first_frame + i;
        int16_t v = ((unsigned long)n * 440 * 2 / RATE) % 2 ? -8000 : 8000;
        out[2 * i] = v;
        out[2 * i + 1] = (int16_t)-v;
    }
}

static void tx_buffer(unsigned slot)
{
    uint64_t a[3] = {(uintptr_t)&xfer_hdr[slot], (uintptr_t)pcm[slot], (uintptr_t)&xfer_status[slot]};
    uint32_t l[3] = {4, PERIOD, 8};
    int w[3] = {0, 0, 1};
    xfer_hdr[slot].stream = 0;
    xfer_status[slot].status = 0xeeee;
    offer(Q_TX, 3 * slot, 3, a, l, w);
}

static void rx_buffer(unsigned slot)
{
    uint64_t a[3] = {(uintptr_t)&xfer_hdr[slot], (uintptr_t)cap[slot], (uintptr_t)&xfer_status[slot]};
    uint32_t l[3] = {4, PERIOD, 8};
    int w[3] = {0, 1, 1};
    xfer_hdr[slot].stream = 1;
    xfer_status[slot].status = 0xeeee;
    offer(Q_RX, 3 * slot, 3, a, l, w);
}

int main(void)
{
    uart_init();
    puts_("virtio_sound\n");
    int found = -1;
    for (int i = 0; i < 8; i++)
        if (R(SLOT(i), DEVICE_ID) == 25 && found < 0)
            found = i;
    if (found < 0) {
        puts_("no virtio-sound\n");
        exit(2);
    }
    dev = SLOT(found);
    irq = 1 + found;
    printf("sound in slot %d, irq %u\n", found, irq);
    R(dev, DEVICE_FEATURES_SEL) = 1;
    printf("features: version_1 %u\n", R(dev, DEVICE_FEATURES) & 1);
    printf("config: jacks %u streams %u chmaps %u\n", R(dev, CONFIG), R(dev, CONFIG + 4), R(dev, CONFIG + 8));

    MMIO32(PLIC_PRIO(irq)) = 1;
    MMIO32(PLIC_THRESHOLD_M0) = 0;
    MMIO32(PLIC_ENABLE_M0) = 1u << irq;
    set_csr(mie, MIP_MEIP);
    set_csr(mstatus, MSTATUS_MIE);

    R(dev, STATUS) = 0;
    R(dev, STATUS) = S_ACK;
    R(dev, STATUS) = S_ACK | S_DRIVER;
    R(dev, DRIVER_FEATURES_SEL) = 0;
    R(dev, DRIVER_FEATURES) = 0;
    R(dev, DRIVER_FEATURES_SEL) = 1;
    R(dev, DRIVER_FEATURES) = 1; /* VERSION_1 */
    R(dev, STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK;
    for (int q = 0; q < NQ; q++) {
        R(dev, QUEUE_SEL) = q;
        R(dev, QUEUE_NUM) = QSIZE;
        R(dev, QUEUE_DESC_LOW) = (uint32_t)(uintptr_t)qs[q].d;
        R(dev, QUEUE_DESC_HIGH) = 0;
        R(dev, QUEUE_DRIVER_LOW) = (uint32_t)(uintptr_t)&qs[q].avail;
        R(dev, QUEUE_DRIVER_HIGH) = 0;
        R(dev, QUEUE_DEVICE_LOW) = (uint32_t)(uintptr_t)&qs[q].used;
        R(dev, QUEUE_DEVICE_HIGH) = 0;
        R(dev, QUEUE_READY) = 1;
    }
    R(dev, STATUS) = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
    printf("status %x\n", R(dev, STATUS));

    /* PCM_INFO of both streams. */
    uint32_t used_len;
    put32(0, R_PCM_INFO);
    put32(4, 0);
    put32(8, 2);
    put32(12, 32);
    uint32_t st = control(16, 4 + 64, &used_len);
    printf("pcm_info: status %x used %u\n", st, used_len);
    for (int s = 0; s < 2; s++) {
        const uint8_t *p = resp + 4 + 32 * s;
        printf("stream %d: nid %u features %x formats %lx rates %lx direction %u channels %u..%u\n", s, get32(p),
               get32(p + 4), get64(p + 8), get64(p + 16), p[24], p[25], p[26]);
    }
    put32(0, R_PCM_INFO);
    put32(4, 1);
    put32(8, 2);
    printf("pcm_info past the streams: %x\n", control(16, 4 + 64, 0));
    put32(0, R_JACK_INFO);
    put32(4, 0);
    put32(8, 1);
    put32(12, 24);
    printf("jack_info: %x\n", control(16, 4 + 24, 0));
    put32(0, R_CHMAP_INFO);
    printf("chmap_info: %x\n", control(16, 4 + 24, 0));
    put32(0, 0x7777);
    printf("unknown request: %x\n", control(16, 4, 0));
    put32(0, R_PCM_SET_PARAMS);
    put32(4, 0);
    req[20] = 2;
    req[21] = 2; /* A_LAW: not offered */
    req[22] = RATE_44100;
    printf("set_params a-law: %x\n", control(24, 4, 0));
    req[21] = FMT_S16;
    req[22] = 14;
    printf("set_params bad rate: %x\n", control(24, 4, 0));

    /* Playback. */
    printf("play: set_params %x prepare %x\n", set_params(0), simple(R_PCM_PREPARE, 0));
    unsigned frames = 0;
    for (unsigned i = 0; i < INFLIGHT; i++, frames += FRAMES) {
        fill_tone(pcm[i], frames);
        tx_buffer(i);
    }
    printf("play: start %x\n", simple(R_PCM_START, 0));
    uint64_t t0 = clint_mtime();
    unsigned bad = 0, used_bad = 0;
    for (unsigned done = 0; done < PLAY_PERIODS; done++) {
        unsigned slot = done % INFLIGHT;
        used_bad += wait_used(Q_TX) != 8;
        bad += xfer_status[slot].status != 0x8000;
        if (done + INFLIGHT < PLAY_PERIODS) {
            fill_tone(pcm[slot], frames);
            frames += FRAMES;
            tx_buffer(slot);
        }
    }
    uint64_t t1 = clint_mtime();
    printf("play: %u periods, bad status %u, bad used len %u\n", PLAY_PERIODS, bad, used_bad);
    printf("elapsed: %lu ms\n", (unsigned long)((t1 - t0) / 10000));
    printf("play: stop %x release %x\n", simple(R_PCM_STOP, 0), simple(R_PCM_RELEASE, 0));

    /* Capture. */
    printf("capture params: set_params %x prepare %x\n", set_params(1), simple(R_PCM_PREPARE, 1));
    for (unsigned i = 0; i < INFLIGHT; i++)
        rx_buffer(i);
    printf("capture start: %x\n", simple(R_PCM_START, 1));
    /* A second of virtual time for the whole capture. */
    clint_set_mtimecmp(clint_mtime() + 10000000);
    set_csr(mie, MIP_MTIP);
    uint64_t hash = 0xcbf29ce484222325UL;
    unsigned total = 0;
    bad = used_bad = 0;
    for (unsigned done = 0; done < CAPTURE_PERIODS; done++) {
        unsigned slot = done % INFLIGHT;
        used_bad += wait_used(Q_RX) != PERIOD + 8;
        bad += xfer_status[slot].status != 0x8000;
        for (unsigned i = 0; i < PERIOD; i++) {
            hash ^= cap[slot][i];
            hash *= 0x100000001b3UL;
        }
        total += PERIOD;
        if (done + INFLIGHT < CAPTURE_PERIODS)
            rx_buffer(slot);
    }
    printf("capture periods %u, bad status %u, bad used len %u\n", CAPTURE_PERIODS, bad, used_bad);
    printf("capture: %u bytes fnv1a %lx\n", total, hash);
    printf("capture stop: %x release %x\n", simple(R_PCM_STOP, 1), simple(R_PCM_RELEASE, 1));
    puts_("done\n");
    exit(0);
}
