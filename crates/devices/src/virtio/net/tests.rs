//! virtio-net against a hand-driven transport: config space, transmit, receive with and
//! without buffers, the FIFO bound, snapshots, and broken chains.

use rewind_cpu::Ram;

use super::*;
use crate::device::{Device, DeviceCtx, DeviceTime, HostIo, Persist};
use crate::virtio::{
    reg, VirtioMmio, INT_CONFIG, INT_VRING, STATUS_DRIVER_OK, STATUS_FEATURES_OK,
    STATUS_NEEDS_RESET,
};

const BASE: u64 = 0x8000_0000;
/// Queue q's rings: descriptors, available, used.
const fn ring(q: u64) -> (u64, u64, u64) {
    let b = BASE + 0x1_0000 * (q + 1);
    (b, b + 0x1000, b + 0x2000)
}
const BUF: u64 = BASE + 0x8_0000;
const QSIZE: u32 = 8;

/// Frames the device sent.
#[derive(Default)]
struct Host(Vec<(u8, Vec<u8>)>);

impl HostIo for Host {
    fn random(&mut self, _buf: &mut [u8]) {}
    fn net_transmit(&mut self, slot: u8, frame: &[u8]) {
        self.0.push((slot, frame.to_vec()));
    }
}

fn net() -> VirtioMmio {
    VirtioMmio::new(Box::new(VirtioNet::new(DEFAULT_MAC)))
}

fn w(d: &mut VirtioMmio, ram: &mut Ram, off: u64, v: u32) {
    d.write(off, 4, u64::from(v), &DeviceTime::default(), ram)
        .unwrap();
}

fn r(d: &mut VirtioMmio, off: u64) -> u32 {
    d.read(off, 4, &DeviceTime::default()).unwrap() as u32
}

/// The driver's initialisation with both queues.
fn init(ram: &mut Ram) -> VirtioMmio {
    let mut d = net();
    w(&mut d, ram, reg::STATUS, 1 | 2);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 0);
    w(&mut d, ram, reg::DRIVER_FEATURES, (F_MAC | F_STATUS) as u32);
    w(&mut d, ram, reg::STATUS, 1 | 2 | STATUS_FEATURES_OK);
    for q in 0..2u32 {
        let (desc, avail, used) = ring(u64::from(q));
        w(&mut d, ram, reg::QUEUE_SEL, q);
        w(&mut d, ram, reg::QUEUE_NUM, QSIZE);
        w(&mut d, ram, reg::QUEUE_DESC_LOW, desc as u32);
        w(&mut d, ram, reg::QUEUE_DRIVER_LOW, avail as u32);
        w(&mut d, ram, reg::QUEUE_DEVICE_LOW, used as u32);
        w(&mut d, ram, reg::QUEUE_READY, 1);
    }
    w(
        &mut d,
        ram,
        reg::STATUS,
        1 | 2 | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    d
}

/// Writes descriptor `i` of queue `q`.
fn desc(ram: &mut Ram, q: u64, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..16].copy_from_slice(&next.to_le_bytes());
    ram.write(ring(q).0 + 16 * u64::from(i), &b).unwrap();
}

/// Makes chain `head` available as entry `idx - 1` of queue `q`.
fn avail(ram: &mut Ram, q: u64, head: u16, idx: u16) {
    let a = ring(q).1;
    let slot = u64::from(idx.wrapping_sub(1)) % u64::from(QSIZE);
    ram.write(a + 4 + 2 * slot, &head.to_le_bytes()).unwrap();
    ram.write(a + 2, &idx.to_le_bytes()).unwrap();
}

/// Used ring entry `n` of queue `q`: (head, len), and the used index.
fn used(ram: &Ram, q: u64, n: u64) -> (u32, u32, u16) {
    let u = ring(q).2;
    let mut b = [0u8; 8];
    ram.read(u + 4 + 8 * n, &mut b).unwrap();
    let mut i = [0u8; 2];
    ram.read(u + 2, &mut i).unwrap();
    (
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        u16::from_le_bytes(i),
    )
}

fn serve(d: &mut VirtioMmio, ram: &mut Ram, host: &mut Host) {
    let t = DeviceTime::default();
    if d.wants_service(&t) {
        d.service(&mut DeviceCtx {
            t,
            ram,
            host,
            slot: 7,
        });
    }
}

fn deliver(d: &mut VirtioMmio, ram: &mut Ram, host: &mut Host, frame: Vec<u8>) {
    d.host_input(
        DeviceInput::NetFrame(frame),
        &mut DeviceCtx {
            t: DeviceTime::default(),
            ram,
            host,
            slot: 7,
        },
    );
}

fn frame(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| n.wrapping_add(i as u8)).collect()
}

#[test]
fn identity_and_config_space_are_qemus() {
    let mut d = net();
    assert_eq!(r(&mut d, reg::DEVICE_ID), 1);
    let lo = r(&mut d, reg::DEVICE_FEATURES);
    assert_eq!(u64::from(lo) & (F_MAC | F_STATUS), F_MAC | F_STATUS);
    let t = DeviceTime::default();
    let mac: Vec<u8> = (0..6)
        .map(|i| d.read(reg::CONFIG + i, 1, &t).unwrap() as u8)
        .collect();
    assert_eq!(mac, DEFAULT_MAC);
    assert_eq!(d.read(reg::CONFIG + 6, 2, &t), Some(u64::from(S_LINK_UP)));
    assert_eq!(d.read(reg::CONFIG, 4, &t), Some(0x1200_5452));
    assert_eq!(d.read(reg::CONFIG + 8, 4, &t), Some(0));
}

#[test]
fn transmit_strips_the_header_and_returns_the_chain() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    let mut host = Host::default();
    // Header in one descriptor, the frame in two more.
    let f = frame(1, 60);
    ram.write(BUF, &[0u8; HDR_LEN]).unwrap();
    ram.write(BUF + 0x100, &f[..20]).unwrap();
    ram.write(BUF + 0x200, &f[20..]).unwrap();
    desc(&mut ram, 1, 0, BUF, HDR_LEN as u32, 1, 1);
    desc(&mut ram, 1, 1, BUF + 0x100, 20, 1, 2);
    desc(&mut ram, 1, 2, BUF + 0x200, 40, 0, 0);
    avail(&mut ram, 1, 0, 1);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 1);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(host.0, vec![(7, f)]);
    assert_eq!(used(&ram, 1, 0), (0, 0, 1));
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS), INT_VRING);
    // A chain shorter than a header sends nothing but is still returned.
    desc(&mut ram, 1, 3, BUF, 4, 0, 0);
    avail(&mut ram, 1, 3, 2);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 1);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(host.0.len(), 1);
    assert_eq!(used(&ram, 1, 1), (3, 0, 2));
}

#[test]
fn receive_waits_for_buffers_then_fills_them_in_order() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    let mut host = Host::default();
    deliver(&mut d, &mut ram, &mut host, frame(10, 100));
    deliver(&mut d, &mut ram, &mut host, frame(20, 1514));
    assert_eq!(used(&ram, 0, 0).2, 0);
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS), 0);
    // Two receive buffers, as Linux gives them (header + 1518 bytes, one descriptor).
    for i in 0..2u16 {
        desc(&mut ram, 0, i, BUF + 0x1000 * u64::from(i), 1530, 2, 0);
        avail(&mut ram, 0, i, i + 1);
    }
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 0);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(used(&ram, 0, 0), (0, (HDR_LEN + 100) as u32, 2));
    assert_eq!(used(&ram, 0, 1), (1, (HDR_LEN + 1514) as u32, 2));
    let mut hdr = [0xffu8; HDR_LEN];
    ram.read(BUF, &mut hdr).unwrap();
    assert_eq!(hdr, rx_header());
    assert_eq!(u16::from_le_bytes([hdr[10], hdr[11]]), 1);
    let mut got = vec![0u8; 1514];
    ram.read(BUF + 0x1000 + HDR_LEN as u64, &mut got).unwrap();
    assert_eq!(got, frame(20, 1514));
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS), INT_VRING);
    assert!(host.0.is_empty());
    // With a buffer waiting, a frame goes straight in.
    desc(&mut ram, 0, 2, BUF + 0x3000, 1530, 2, 0);
    avail(&mut ram, 0, 2, 3);
    deliver(&mut d, &mut ram, &mut host, frame(30, 42));
    assert_eq!(used(&ram, 0, 2), (2, (HDR_LEN + 42) as u32, 3));
}

#[test]
fn receive_fifo_is_bounded_and_in_snapshots() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    let mut host = Host::default();
    for i in 0..RX_FIFO_MAX + 10 {
        deliver(&mut d, &mut ram, &mut host, frame(i as u8, 64));
    }
    // An oversized frame is dropped too.
    deliver(&mut d, &mut ram, &mut host, vec![0; MAX_FRAME + 1]);
    let saved = d.save_state();
    let mut e = net();
    e.restore_state(&saved).unwrap();
    assert_eq!(e.save_state(), saved);
    // The restored device delivers the first waiting frame.
    desc(&mut ram, 0, 0, BUF, 1530, 2, 0);
    avail(&mut ram, 0, 0, 1);
    w(&mut e, &mut ram, reg::QUEUE_NOTIFY, 0);
    serve(&mut e, &mut ram, &mut host);
    let mut got = vec![0u8; 64];
    ram.read(BUF + HDR_LEN as u64, &mut got).unwrap();
    assert_eq!(got, frame(0, 64));
    // The FIFO kept RX_FIFO_MAX and counted the rest (11 frames).
    let t: crate::virtio::SavedTransport = postcard::from_bytes(&saved).unwrap();
    let mut m = VirtioNet::new(DEFAULT_MAC);
    m.restore_state(&t.model).unwrap();
    assert_eq!((m.rx_pending(), m.rx_dropped()), (RX_FIFO_MAX, 11));
    // A state with too many frames is refused.
    let s = State {
        rx_fifo: (0..=RX_FIFO_MAX).map(|_| vec![1]).collect(),
        ..State::default()
    };
    let bad = postcard::to_allocvec(&s).unwrap();
    assert!(m.restore_state(&bad).is_err());
    assert!(m.restore_state(&[0xff, 0xff, 0xff]).is_err());
    assert_eq!(m.rx_pending(), RX_FIFO_MAX);
}

#[test]
fn broken_transmit_chain_needs_reset() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    let mut host = Host::default();
    // A descriptor that points at itself.
    desc(&mut ram, 1, 0, BUF, 64, 1, 0);
    avail(&mut ram, 1, 0, 1);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 1);
    serve(&mut d, &mut ram, &mut host);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.interrupt_status() & INT_CONFIG, INT_CONFIG);
    assert!(host.0.is_empty());
    // Input while the device needs a reset is not taken.
    deliver(&mut d, &mut ram, &mut host, frame(1, 60));
    // A receive buffer outside RAM, found when a frame arrives.
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    desc(&mut ram, 0, 0, BASE + (1 << 20) - 8, 1530, 2, 0);
    avail(&mut ram, 0, 0, 1);
    deliver(&mut d, &mut ram, &mut host, frame(1, 60));
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
}

#[test]
fn spec_round_trips() {
    let n = NetSpec {
        mac: [0x52, 0x54, 0, 0x12, 0x34, 0x57],
        hostfwd: vec!["tcp:127.0.0.1:5555-:22".into()],
    };
    assert_eq!(
        n.spec(),
        "virtio-net-device,mac=52:54:00:12:34:57,netdev=user,hostfwd=tcp:127.0.0.1:5555-:22"
    );
    assert_eq!(NetSpec::parse(&n.spec()), Some(n));
    assert_eq!(
        NetSpec::parse("virtio-net-device").map(|n| n.mac),
        Some(DEFAULT_MAC)
    );
    assert_eq!(NetSpec::parse("virtio-net-device,mac=52:54:00"), None);
    assert_eq!(NetSpec::parse("virtio-net-device,netdev=tap"), None);
    assert_eq!(NetSpec::parse("virtio-rng-device"), None);
}

#[test]
fn random_register_and_ring_writes_never_panic() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(&mut ram);
    let mut host = Host::default();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let t = DeviceTime::default();
    for i in 0..100_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [1u8, 2, 4, 8][(x & 3) as usize];
        let off = ((x >> 8) & 0x1fc) & !(u64::from(size) - 1);
        if x & 0x20 != 0 {
            let _ = d.read(off, size, &t);
        } else if x & 0x40 != 0 {
            // Mostly kicks and status writes: the paths that walk the rings.
            let v = (x >> 40) & 1;
            let _ = d.write(reg::QUEUE_NOTIFY, 4, v, &t, &mut ram);
        } else {
            let _ = d.write(off, size, x >> 32, &t, &mut ram);
        }
        ram.write(BASE + 0x1_0000 + ((x >> 20) & 0x3fff8), &x.to_le_bytes())
            .unwrap();
        if i % 7 == 0 {
            deliver(
                &mut d,
                &mut ram,
                &mut host,
                frame(i as u8, (x >> 50) as usize),
            );
        }
        serve(&mut d, &mut ram, &mut host);
        if d.status() & STATUS_NEEDS_RESET != 0 && i % 1000 == 0 {
            d = init(&mut ram);
        }
    }
}
