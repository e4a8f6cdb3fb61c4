use super::*;
use crate::device::Persist;

const BASE: u64 = 0x8000_0000;
const DESC: u64 = BASE + 0x1000;
const AVAIL: u64 = BASE + 0x2000;
const USED: u64 = BASE + 0x3000;
const BUF: u64 = BASE + 0x8000;

/// Entropy that counts up, and how many bytes were asked for.
struct Counter(u8, usize);

impl HostIo for Counter {
    fn random(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
        self.1 += buf.len();
    }
}

fn rng_device() -> VirtioMmio {
    VirtioMmio::new(Box::new(rng::Rng))
}

fn w(d: &mut VirtioMmio, ram: &mut Ram, off: u64, v: u32) {
    d.write(off, 4, u64::from(v), &DeviceTime::default(), ram)
        .unwrap();
}

fn r(d: &mut VirtioMmio, off: u64) -> u32 {
    d.read(off, 4, &DeviceTime::default()).unwrap() as u32
}

/// The driver's initialisation sequence (virtio 1.2 §3.1.1) with a queue of `size`.
fn init(ram: &mut Ram, size: u32) -> VirtioMmio {
    let mut d = rng_device();
    w(&mut d, ram, reg::STATUS, 1 | 2);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 0);
    w(
        &mut d,
        ram,
        reg::DRIVER_FEATURES,
        (F_INDIRECT_DESC | F_EVENT_IDX) as u32,
    );
    w(&mut d, ram, reg::STATUS, 1 | 2 | STATUS_FEATURES_OK);
    assert_eq!(
        r(&mut d, reg::STATUS) & STATUS_FEATURES_OK,
        STATUS_FEATURES_OK
    );
    w(&mut d, ram, reg::QUEUE_SEL, 0);
    assert_eq!(r(&mut d, reg::QUEUE_NUM_MAX), 1024);
    w(&mut d, ram, reg::QUEUE_NUM, size);
    w(&mut d, ram, reg::QUEUE_DESC_LOW, DESC as u32);
    w(&mut d, ram, reg::QUEUE_DESC_HIGH, 0);
    w(&mut d, ram, reg::QUEUE_DRIVER_LOW, AVAIL as u32);
    w(&mut d, ram, reg::QUEUE_DEVICE_LOW, USED as u32);
    w(&mut d, ram, reg::QUEUE_READY, 1);
    w(
        &mut d,
        ram,
        reg::STATUS,
        1 | 2 | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    d
}

fn offer(ram: &mut Ram, head: u16, avail_idx: u16, len: u32) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(BUF + 0x100 * u64::from(head)).to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&2u16.to_le_bytes());
    ram.write(DESC + 16 * u64::from(head), &b).unwrap();
    let slot = u64::from(avail_idx.wrapping_sub(1)) % 8;
    ram.write(AVAIL + 4 + 2 * slot, &head.to_le_bytes())
        .unwrap();
    ram.write(AVAIL + 2, &avail_idx.to_le_bytes()).unwrap();
}

fn serve(d: &mut VirtioMmio, ram: &mut Ram, host: &mut Counter) {
    let t = DeviceTime::default();
    if d.wants_service(&t) {
        d.service(&mut DeviceCtx {
            t,
            ram,
            host,
            slot: 0,
        });
    }
}

#[test]
fn identity_registers() {
    let mut d = rng_device();
    assert_eq!(r(&mut d, reg::MAGIC), MAGIC);
    assert_eq!(r(&mut d, reg::VERSION), 2);
    assert_eq!(r(&mut d, reg::DEVICE_ID), 4);
    assert_eq!(r(&mut d, reg::VENDOR_ID), VENDOR);
    assert_eq!(
        r(&mut d, reg::DEVICE_FEATURES),
        (F_INDIRECT_DESC | F_EVENT_IDX) as u32
    );
    // Two-byte register reads give 0; an 8-byte read is two 4-byte ones.
    assert_eq!(d.read(reg::MAGIC, 2, &DeviceTime::default()), Some(0));
    assert_eq!(
        d.read(reg::MAGIC, 8, &DeviceTime::default()),
        Some(u64::from(MAGIC) | 2 << 32)
    );
    // Past the mapped 0x200 bytes, and misaligned: access faults.
    assert_eq!(d.read(0x200, 4, &DeviceTime::default()), None);
    assert_eq!(d.read(0x2, 4, &DeviceTime::default()), None);
}

#[test]
fn rng_fills_buffers_and_interrupts() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram, 8);
    let mut host = Counter(0, 0);
    offer(&mut ram, 0, 1, 16);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 0);
    assert!(d.wants_service(&DeviceTime::default()));
    serve(&mut d, &mut ram, &mut host);
    assert!(!d.wants_service(&DeviceTime::default()));
    let mut got = [0u8; 17];
    ram.read(BUF, &mut got).unwrap();
    assert_eq!(&got[..16], &(1..=16).collect::<Vec<u8>>()[..]);
    assert_eq!(got[16], 0);
    let mut used = [0u8; 12];
    ram.read(USED, &mut used).unwrap();
    assert_eq!(u16::from_le_bytes([used[2], used[3]]), 1);
    assert_eq!(
        u32::from_le_bytes([used[8], used[9], used[10], used[11]]),
        16
    );
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS), INT_VRING);
    assert!(d.irq_level(&DeviceTime::default()));
    w(&mut d, &mut ram, reg::INTERRUPT_ACK, INT_VRING);
    assert!(!d.irq_level(&DeviceTime::default()));
    // A huge buffer gets at most MAX_BYTES_PER_REQUEST bytes.
    offer(&mut ram, 1, 2, 1 << 19);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 0);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(host.1, 16 + rng::MAX_BYTES_PER_REQUEST as usize);
}

#[test]
fn state_round_trips_with_work_in_flight() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram, 8);
    offer(&mut ram, 0, 1, 8);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 0);
    let saved = d.save_state();
    let mut e = rng_device();
    e.restore_state(&saved).unwrap();
    assert_eq!(e.save_state(), saved);
    assert!(e.wants_service(&DeviceTime::default()));
    // Inconsistent states are refused and leave the device unchanged.
    let mut bad = rng_device();
    bad.restore_state(&saved).unwrap();
    bad.regs.queues.clear();
    assert!(e.restore_state(&bad.save_state()).is_err());
    bad.restore_state(&saved).unwrap();
    bad.regs.notified = 1 << 5;
    assert!(e.restore_state(&bad.save_state()).is_err());
    assert!(e.restore_state(&[1, 2]).is_err());
    assert_eq!(e.save_state(), saved);
}

#[test]
fn misprogramming_sets_needs_reset_with_a_config_interrupt() {
    let t = DeviceTime::default();
    // A queue size that is not a power of two, at QueueReady.
    let mut ram = Ram::new(BASE, 1 << 20);
    let d = init(&mut ram, 6);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.interrupt_status(), INT_CONFIG);
    assert!(d.irq_level(&t));
    // A descriptor loop, found when the queue is served; nothing more is served until reset.
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram, 8);
    let mut host = Counter(0, 0);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&BUF.to_le_bytes());
    b[8..12].copy_from_slice(&8u32.to_le_bytes());
    b[12..14].copy_from_slice(&3u16.to_le_bytes());
    ram.write(DESC, &b).unwrap();
    ram.write(AVAIL + 2, &1u16.to_le_bytes()).unwrap();
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 0);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.interrupt_status() & INT_CONFIG, INT_CONFIG);
    assert_eq!(host.1, 0);
    // Writing status 0 resets the device.
    w(&mut d, &mut ram, reg::STATUS, 0);
    assert_eq!(d.save_state(), rng_device().save_state());
    // Features the device does not offer: FEATURES_OK does not stick.
    let mut d = rng_device();
    w(&mut d, &mut ram, reg::DRIVER_FEATURES, 1 << 5);
    w(&mut d, &mut ram, reg::STATUS, STATUS_FEATURES_OK | 3);
    assert_eq!(r(&mut d, reg::STATUS), 3);
}

#[test]
fn random_register_writes_never_panic() {
    let mut ram = Ram::new(BASE, 1 << 16);
    let mut d = rng_device();
    let mut host = Counter(0, 0);
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let t = DeviceTime::default();
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x >> 8) & 0x1fc;
        let size = [1u8, 2, 4, 8][(x & 3) as usize];
        let off = off & !(u64::from(size) - 1);
        let v = if x & 0x10 != 0 {
            x >> 32
        } else {
            (x >> 40) & 0xff
        };
        if x & 0x20 != 0 {
            let _ = d.read(off, size, &t);
        } else {
            let _ = d.write(off, size, v, &t, &mut ram);
        }
        // Random ring contents too.
        ram.write(BASE + ((x >> 20) & 0xfff8), &x.to_le_bytes())
            .unwrap();
        serve(&mut d, &mut ram, &mut Counter(host.0, 0));
        host.0 = host.0.wrapping_add(1);
    }
}
