use super::*;
use crate::device::{Device, DeviceCtx, DeviceTime, HostIo, Persist};
use crate::virtio::{reg, VirtioMmio, INT_CONFIG, INT_VRING, STATUS_DRIVER_OK, STATUS_FEATURES_OK};
use rewind_cpu::Ram;

const BASE: u64 = 0x8000_0000;
/// Rings of queue q at BASE + 0x10000 * (q + 1).
const fn ring(q: u64) -> u64 {
    BASE + 0x10000 * (q + 1)
}
const BUF: u64 = BASE + 0x80000;
const QSIZE: u32 = 8;

struct NoHost;
impl HostIo for NoHost {
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
}

fn w(d: &mut VirtioMmio, ram: &mut Ram, off: u64, size: u8, v: u64) {
    d.write(off, size, v, &DeviceTime::default(), ram).unwrap();
}

fn r(d: &mut VirtioMmio, off: u64, size: u8) -> u64 {
    d.read(off, size, &DeviceTime::default()).unwrap()
}

fn device(kind: InputKind) -> VirtioMmio {
    VirtioMmio::new(Box::new(Input::new(kind)))
}

/// Select `select`/`subsel` as Linux does (two byte writes) and read the entry: size, payload.
fn query(d: &mut VirtioMmio, ram: &mut Ram, select: u8, subsel: u8) -> Vec<u8> {
    w(d, ram, reg::CONFIG, 1, u64::from(select));
    w(d, ram, reg::CONFIG + 1, 1, u64::from(subsel));
    let size = r(d, reg::CONFIG + 2, 1) as usize;
    (0..size)
        .map(|i| r(d, reg::CONFIG + 8 + i as u64, 1) as u8)
        .collect()
}

/// The driver's initialisation with both queues of QSIZE entries.
fn init(kind: InputKind, ram: &mut Ram) -> VirtioMmio {
    let mut d = device(kind);
    w(&mut d, ram, reg::STATUS, 4, 3);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 4, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES, 4, 1);
    w(
        &mut d,
        ram,
        reg::STATUS,
        4,
        3 | u64::from(STATUS_FEATURES_OK),
    );
    for q in 0..2u64 {
        w(&mut d, ram, reg::QUEUE_SEL, 4, q);
        w(&mut d, ram, reg::QUEUE_NUM, 4, u64::from(QSIZE));
        w(&mut d, ram, reg::QUEUE_DESC_LOW, 4, ring(q));
        w(&mut d, ram, reg::QUEUE_DRIVER_LOW, 4, ring(q) + 0x1000);
        w(&mut d, ram, reg::QUEUE_DEVICE_LOW, 4, ring(q) + 0x2000);
        w(&mut d, ram, reg::QUEUE_READY, 4, 1);
    }
    w(
        &mut d,
        ram,
        reg::STATUS,
        4,
        u64::from(3 | STATUS_FEATURES_OK | STATUS_DRIVER_OK),
    );
    assert_eq!(r(&mut d, reg::STATUS, 4) & 0x40, 0);
    d
}

/// Offer `n` 8-byte buffers on queue `q` (device-writable for the event queue, readable with
/// `data` for the status queue); `avail` is the available index so far.
fn offer(ram: &mut Ram, q: u64, avail: &mut u16, n: u16, data: Option<[u8; 8]>) {
    for _ in 0..n {
        let head = *avail % QSIZE as u16;
        let buf = BUF + 0x1000 * q + 8 * u64::from(head);
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&buf.to_le_bytes());
        b[8..12].copy_from_slice(&8u32.to_le_bytes());
        let flags: u16 = if data.is_some() { 0 } else { 2 };
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        ram.write(ring(q) + 16 * u64::from(head), &b).unwrap();
        match data {
            Some(bytes) => ram.write(buf, &bytes).unwrap(),
            None => ram.write(buf, &[0xee; 8]).unwrap(),
        }
        ram.write(
            ring(q) + 0x1000 + 4 + 2 * u64::from(head),
            &head.to_le_bytes(),
        )
        .unwrap();
        *avail = avail.wrapping_add(1);
    }
    ram.write(ring(q) + 0x1000 + 2, &avail.to_le_bytes())
        .unwrap();
}

fn used_idx(ram: &Ram, q: u64) -> u16 {
    let mut b = [0u8; 2];
    ram.read(ring(q) + 0x2000 + 2, &mut b).unwrap();
    u16::from_le_bytes(b)
}

/// The event in used entry `i` of the event queue (its buffer, and the length returned).
fn used_event(ram: &Ram, i: u16) -> ((u16, u16, i32), u32) {
    let mut e = [0u8; 8];
    ram.read(
        ring(0) + 0x2000 + 4 + 8 * u64::from(i % QSIZE as u16),
        &mut e,
    )
    .unwrap();
    let head = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
    let len = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
    let mut b = [0u8; 8];
    ram.read(BUF + 8 * u64::from(head), &mut b).unwrap();
    (
        (
            u16::from_le_bytes([b[0], b[1]]),
            u16::from_le_bytes([b[2], b[3]]),
            i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        ),
        len,
    )
}

fn send(d: &mut VirtioMmio, ram: &mut Ram, kind: u16, code: u16, value: i32) {
    d.host_input(
        DeviceInput::Input { kind, code, value },
        &mut DeviceCtx {
            t: DeviceTime::default(),
            ram,
            host: &mut NoHost,
            slot: 7,
        },
    );
}

fn serve(d: &mut VirtioMmio, ram: &mut Ram) {
    let t = DeviceTime::default();
    if d.wants_service(&t) {
        d.service(&mut DeviceCtx {
            t,
            ram,
            host: &mut NoHost,
            slot: 7,
        });
    }
}

fn bits(bytes: &[u8]) -> Vec<u16> {
    (0..bytes.len() * 8)
        .filter(|&i| bytes[i / 8] & 1 << (i % 8) != 0)
        .map(|i| i as u16)
        .collect()
}

#[test]
fn identity_and_config_answers_are_qemus() {
    let mut ram = Ram::new(BASE, 1 << 20);
    // (kind, name, product, version, config space size)
    for (kind, name, product, version, size) in [
        (
            InputKind::Keyboard,
            "QEMU Virtio Keyboard",
            1u16,
            1u16,
            37usize,
        ),
        (InputKind::Mouse, "QEMU Virtio Mouse", 2, 2, 51),
        (InputKind::Tablet, "QEMU Virtio Tablet", 3, 2, 51),
    ] {
        let mut d = device(kind);
        assert_eq!(r(&mut d, reg::DEVICE_ID, 4), 18);
        assert_eq!(kind.config_size(), size);
        let mut want_name = name.as_bytes().to_vec();
        want_name.push(0);
        assert_eq!(query(&mut d, &mut ram, cfg::ID_NAME, 0), want_name);
        let ids = query(&mut d, &mut ram, cfg::ID_DEVIDS, 0);
        let mut want = Vec::new();
        for v in [6u16, 0x0627, product, version] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(ids, want, "{name} devids");
        // No serial, no properties, nothing for an unknown selector.
        assert!(query(&mut d, &mut ram, cfg::ID_SERIAL, 0).is_empty());
        assert!(query(&mut d, &mut ram, cfg::PROP_BITS, 0).is_empty());
        assert!(query(&mut d, &mut ram, 0x7f, 3).is_empty());
        // Past the space: all ones; inside it after the entry: zeros.
        let past = reg::CONFIG + size as u64;
        assert_eq!(r(&mut d, past, 1), 0xff);
        assert_eq!(r(&mut d, (past - 1) & !3, 4), 0xffff_ffff);
        assert_eq!(r(&mut d, past - 1, 1), 0);
    }
    let mut kbd = device(InputKind::Keyboard);
    let keys = bits(&query(&mut kbd, &mut ram, cfg::EV_BITS, ev::KEY as u8));
    // Every code QEMU maps, no more: 1 (ESC) ..= 226 (KEY_MEDIA), not 0.
    let mut want: Vec<u16> = keymap::QCODES
        .iter()
        .map(|&(_, c)| c)
        .filter(|&c| c != 0)
        .collect();
    want.sort_unstable();
    want.dedup();
    assert_eq!(keys, want);
    assert_eq!(keys.first(), Some(&1));
    assert_eq!(keys.last(), Some(&226));
    assert!(keys.contains(&30) && keys.contains(&88) && keys.contains(&103));
    assert_eq!(
        query(&mut kbd, &mut ram, cfg::EV_BITS, ev::LED as u8),
        vec![7]
    );
    assert_eq!(
        query(&mut kbd, &mut ram, cfg::EV_BITS, ev::REP as u8),
        vec![0]
    );
    assert!(query(&mut kbd, &mut ram, cfg::EV_BITS, ev::REL as u8).is_empty());
    let mut mouse = device(InputKind::Mouse);
    assert_eq!(
        bits(&query(&mut mouse, &mut ram, cfg::EV_BITS, ev::REL as u8)),
        vec![0, 1, 8]
    );
    let buttons = vec![0x110, 0x111, 0x112, 0x113, 0x114, 0x14a, 0x150, 0x151];
    assert_eq!(
        bits(&query(&mut mouse, &mut ram, cfg::EV_BITS, ev::KEY as u8)),
        buttons
    );
    assert!(query(&mut mouse, &mut ram, cfg::EV_BITS, ev::ABS as u8).is_empty());
    let mut tablet = device(InputKind::Tablet);
    assert_eq!(
        bits(&query(&mut tablet, &mut ram, cfg::EV_BITS, ev::ABS as u8)),
        vec![0, 1]
    );
    assert_eq!(
        bits(&query(&mut tablet, &mut ram, cfg::EV_BITS, ev::REL as u8)),
        vec![8]
    );
    assert_eq!(
        bits(&query(&mut tablet, &mut ram, cfg::EV_BITS, ev::KEY as u8)),
        buttons
    );
    for axis in [0u8, 1] {
        let info = query(&mut tablet, &mut ram, cfg::ABS_INFO, axis);
        let mut want = Vec::new();
        for v in [0i32, 32767, 0, 0, 0] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(info, want);
    }
    assert!(query(&mut tablet, &mut ram, cfg::ABS_INFO, 2).is_empty());
    // The header reads back the entry's select/subsel/size (4-byte read), as QEMU's copy.
    w(&mut tablet, &mut ram, reg::CONFIG, 2, 0x0012);
    assert_eq!(r(&mut tablet, reg::CONFIG, 4), 0x0014_0012);
    // An 8-byte read is two 4-byte ones.
    assert_eq!(
        r(&mut tablet, reg::CONFIG + 8, 8),
        u64::from(32767u32) << 32
    );
}

#[test]
fn config_writes_follow_qemus_copy_of_the_space() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = device(InputKind::Keyboard);
    // select=EV_BITS, then a read of a missing entry (subsel 0x30) zeroes QEMU's copy, so a
    // later write of subsel alone combines with select 0.
    w(&mut d, &mut ram, reg::CONFIG, 2, 0x3011);
    assert_eq!(r(&mut d, reg::CONFIG + 2, 1), 0);
    assert_eq!(r(&mut d, reg::CONFIG, 1), 0);
    w(&mut d, &mut ram, reg::CONFIG + 1, 1, 0x01);
    assert_eq!(r(&mut d, reg::CONFIG + 2, 1), 0);
    // Without a read in between, the written select stays.
    w(&mut d, &mut ram, reg::CONFIG, 1, 0x11);
    w(&mut d, &mut ram, reg::CONFIG + 1, 1, u64::from(ev::LED));
    assert_eq!(r(&mut d, reg::CONFIG + 2, 1), 1);
    // Writes past the space are ignored; writes to the payload change nothing visible.
    w(&mut d, &mut ram, reg::CONFIG + 0x80, 4, u64::MAX);
    w(&mut d, &mut ram, reg::CONFIG + 8, 4, 0xffff_ffff);
    assert_eq!(r(&mut d, reg::CONFIG + 8, 1), 7);
    // Before DRIVER_OK a config write raises nothing; after it, both ISR bits and a new
    // generation, as QEMU's virtio_notify_config.
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS, 4), 0);
    let mut d = init(InputKind::Keyboard, &mut ram);
    let generation = r(&mut d, reg::CONFIG_GENERATION, 4);
    w(&mut d, &mut ram, reg::CONFIG, 1, 1);
    assert_eq!(
        r(&mut d, reg::INTERRUPT_STATUS, 4),
        u64::from(INT_VRING | INT_CONFIG)
    );
    assert_eq!(r(&mut d, reg::CONFIG_GENERATION, 4), generation + 1);
}

#[test]
fn hostile_config_accesses_never_panic() {
    let mut ram = Ram::new(BASE, 1 << 20);
    for kind in [InputKind::Keyboard, InputKind::Mouse, InputKind::Tablet] {
        let mut d = device(kind);
        let t = DeviceTime::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = [1u8, 2, 4, 8][(x & 3) as usize];
            let off = (0x100 + ((x >> 8) & 0xff)) & !(u64::from(size) - 1);
            if x & 0x10 != 0 {
                let _ = d.read(off, size, &t);
            } else {
                let _ = d.write(off, size, x >> 20, &t, &mut ram);
            }
        }
        // Still a consistent state that restores.
        let saved = d.save_state();
        let mut e = device(kind);
        e.restore_state(&saved).unwrap();
        assert_eq!(e.save_state(), saved);
    }
}

#[test]
fn events_reach_the_event_queue_at_syn_report() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(InputKind::Keyboard, &mut ram);
    let mut avail = 0;
    offer(&mut ram, 0, &mut avail, 4, None);
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 4, 0);
    serve(&mut d, &mut ram);
    assert_eq!(used_idx(&ram, 0), 0, "buffers wait for events");
    send(&mut d, &mut ram, ev::KEY, 30, 1);
    assert_eq!(used_idx(&ram, 0), 0, "held until SYN_REPORT");
    send(&mut d, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_idx(&ram, 0), 2);
    assert_eq!(used_event(&ram, 0), ((1, 30, 1), 8));
    assert_eq!(used_event(&ram, 1), ((0, 0, 0), 8));
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS, 4), u64::from(INT_VRING));
    // A report of 3 events with 2 buffers left: dropped whole, the buffers stay available.
    w(
        &mut d,
        &mut ram,
        reg::INTERRUPT_ACK,
        4,
        u64::from(INT_VRING),
    );
    send(&mut d, &mut ram, ev::KEY, 30, 0);
    send(&mut d, &mut ram, ev::KEY, 31, 1);
    send(&mut d, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_idx(&ram, 0), 2);
    assert_eq!(r(&mut d, reg::INTERRUPT_STATUS, 4), 0);
    // The next report that fits goes through, in the buffers left.
    send(&mut d, &mut ram, ev::KEY, 32, 1);
    send(&mut d, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_idx(&ram, 0), 4);
    assert_eq!(used_event(&ram, 2), ((1, 32, 1), 8));
    // Negative values keep their bits.
    offer(&mut ram, 0, &mut avail, 2, None);
    send(&mut d, &mut ram, ev::REL, ev::REL_WHEEL, -1);
    send(&mut d, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_event(&ram, 4), ((2, 8, -1), 8));
    // Before DRIVER_OK (after a reset) input is dropped.
    w(&mut d, &mut ram, reg::STATUS, 4, 0);
    let before = d.save_state();
    send(&mut d, &mut ram, ev::KEY, 30, 1);
    assert_eq!(d.save_state(), before);
}

#[test]
fn pending_events_are_bounded() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(InputKind::Tablet, &mut ram);
    let mut avail = 0;
    offer(&mut ram, 0, &mut avail, 2, None);
    for i in 0..MAX_PENDING + 1 {
        send(&mut d, &mut ram, ev::ABS, 0, i as i32);
    }
    // The first MAX_PENDING were dropped when the next came; one ABS + SYN fit in 2 buffers.
    send(&mut d, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_idx(&ram, 0), 2);
    assert_eq!(used_event(&ram, 0).0, (3, 0, MAX_PENDING as i32));
}

#[test]
fn status_queue_takes_led_state() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(InputKind::Keyboard, &mut ram);
    let mut avail = 0;
    let led = |code: u16, value: i32| {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&ev::LED.to_le_bytes());
        b[2..4].copy_from_slice(&code.to_le_bytes());
        b[4..].copy_from_slice(&value.to_le_bytes());
        b
    };
    offer(&mut ram, 1, &mut avail, 1, Some(led(ev::LED_CAPSL, 1)));
    offer(&mut ram, 1, &mut avail, 1, Some(led(ev::LED_NUML, 1)));
    offer(&mut ram, 1, &mut avail, 1, Some(led(ev::LED_CAPSL, 0)));
    w(&mut d, &mut ram, reg::QUEUE_NOTIFY, 4, 1);
    serve(&mut d, &mut ram);
    assert_eq!(used_idx(&ram, 1), 3);
    let saved = d.save_state();
    let transport: crate::virtio::SavedTransport = postcard::from_bytes(&saved).unwrap();
    let state: State = postcard::from_bytes(&transport.model).unwrap();
    assert_eq!(state.leds, 1 << ev::LED_NUML);
    let mut t = device(InputKind::Keyboard);
    t.restore_state(&saved).unwrap();
    assert_eq!(t.save_state(), saved);
}

#[test]
fn state_round_trips_and_bad_states_are_refused() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(InputKind::Mouse, &mut ram);
    let mut avail = 0;
    offer(&mut ram, 0, &mut avail, 1, None);
    // A report in progress and a selection are part of the state.
    w(&mut d, &mut ram, reg::CONFIG, 2, 0x0211);
    send(&mut d, &mut ram, ev::REL, ev::REL_X, 5);
    let saved = d.save_state();
    let mut e = device(InputKind::Mouse);
    e.restore_state(&saved).unwrap();
    assert_eq!(e.save_state(), saved);
    assert_eq!(r(&mut e, reg::CONFIG + 2, 1), 2);
    // The restored device finishes the report: 2 events, 1 buffer: dropped; with 2, delivered.
    send(&mut e, &mut ram, ev::SYN, ev::SYN_REPORT, 0);
    assert_eq!(used_idx(&ram, 0), 0);
    let mut model = Input::new(InputKind::Mouse);
    let good = model.save_state();
    model.restore_state(&good).unwrap();
    for bad in [
        State {
            shadow: vec![0; 3],
            ..State::default()
        },
        State {
            shadow: vec![0; 51],
            pending: vec![
                Event {
                    kind: 0,
                    code: 0,
                    value: 0
                };
                MAX_PENDING + 1
            ],
            ..State::default()
        },
        State {
            shadow: vec![0; 51],
            leds: 0x80,
            ..State::default()
        },
    ] {
        let bytes = postcard::to_allocvec(&bad).unwrap();
        assert!(model.restore_state(&bytes).is_err());
    }
    assert!(model.restore_state(&[0xff, 0xff]).is_err());
    assert_eq!(model.save_state(), good);
    // Another kind's state does not fit (its configuration space has another size).
    assert!(Input::new(InputKind::Keyboard)
        .restore_state(&good)
        .is_err());
}

#[test]
fn keymaps_match_linux_codes() {
    for (q, linux) in [
        ("a", 30),
        ("z", 44),
        ("0", 11),
        ("1", 2),
        ("esc", 1),
        ("f1", 59),
        ("f12", 88),
        ("ctrl", 29),
        ("shift", 42),
        ("alt", 56),
        ("meta_r", 126),
        ("up", 103),
        ("down", 108),
        ("left", 105),
        ("right", 106),
        ("ret", 28),
        ("spc", 57),
        ("tab", 15),
        ("backspace", 14),
        ("kp_multiply", 55),
        ("print", 99),
        ("sysrq", 99),
        ("unmapped", 0),
    ] {
        assert_eq!(qcode_to_linux(q), Some(linux), "{q}");
    }
    assert_eq!(qcode_to_linux("nosuchkey"), None);
    // qnum: XT scan codes, 0x80 | code for the 0xe0 ones.
    assert_eq!(qnum_to_linux(0x1e), 30);
    assert_eq!(qnum_to_linux(0x1c), 28);
    assert_eq!(qnum_to_linux(0xc8), 103);
    assert_eq!(qnum_to_linux(0x9d), 97);
    assert_eq!(qnum_to_linux(0xb7), 99);
    assert_eq!(qnum_to_linux(0), 0);
    assert_eq!(qnum_to_linux(-1), 0);
    assert_eq!(qnum_to_linux(4096), 0);
    // QEMU's device translation of buttons and the wheel.
    assert_eq!(
        translate(HostEvent::Btn {
            button: 0,
            down: true
        }),
        Some((ev::KEY, ev::BTN_LEFT, 1))
    );
    assert_eq!(
        translate(HostEvent::Btn {
            button: 3,
            down: true
        }),
        Some((ev::REL, ev::REL_WHEEL, 1))
    );
    assert_eq!(
        translate(HostEvent::Btn {
            button: 4,
            down: false
        }),
        Some((ev::KEY, ev::BTN_GEAR_DOWN, 0))
    );
    assert_eq!(
        translate(HostEvent::Btn {
            button: 7,
            down: true
        }),
        None
    );
    assert_eq!(
        translate(HostEvent::Key {
            code: 0,
            down: true
        }),
        None
    );
}

#[test]
fn random_programming_and_input_never_panic() {
    let t = DeviceTime::default();
    for kind in [InputKind::Keyboard, InputKind::Tablet] {
        let mut ram = Ram::new(BASE, 1 << 16);
        let mut d = device(kind);
        let mut x: u64 = 0x0123_4567_89ab_cdef ^ kind as u64;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = [1u8, 2, 4, 8][(x & 3) as usize];
            let off = ((x >> 8) & 0x1ff) & !(u64::from(size) - 1);
            let v = if x & 0x10 != 0 {
                x >> 32
            } else {
                (x >> 40) & 0xff
            };
            match (x >> 4) & 3 {
                0 => {
                    let _ = d.read(off, size, &t);
                }
                1 => {
                    let _ = d.write(off, size, v, &t, &mut ram);
                }
                2 => send(
                    &mut d,
                    &mut ram,
                    (x >> 50) as u16 & 3,
                    (x >> 52) as u16 & 1,
                    (x >> 20) as i32,
                ),
                _ => {
                    // Bring the device up now and then, so input meets live queues.
                    if i % 64 == 0 {
                        w(&mut d, &mut ram, reg::STATUS, 4, 0xf);
                    }
                    ram.write(BASE + ((x >> 20) & 0xfff8), &x.to_le_bytes())
                        .unwrap();
                    serve(&mut d, &mut ram);
                }
            }
        }
        let saved = d.save_state();
        let mut e = device(kind);
        e.restore_state(&saved).unwrap();
        assert_eq!(e.save_state(), saved);
    }
}

#[test]
fn device_names_and_ids_parse_and_round_trip() {
    use crate::virtio::Backend;
    for (spec, kind) in [
        ("virtio-keyboard-device", InputKind::Keyboard),
        ("virtio-keyboard", InputKind::Keyboard),
        ("virtio-mouse-device", InputKind::Mouse),
        ("virtio-mouse", InputKind::Mouse),
        ("virtio-tablet-device", InputKind::Tablet),
        ("virtio-tablet", InputKind::Tablet),
    ] {
        let b = Backend::parse(spec).unwrap();
        assert_eq!(b, Backend::Input(kind, None));
        assert_eq!(Backend::parse(&b.spec()), Some(b.clone()));
        assert!(b.qemu_name().ends_with("-device"));
        assert_eq!(b.build().unwrap().device_id(), DEVICE_ID);
    }
    let b = Backend::parse("virtio-tablet,id=tab0").unwrap();
    assert_eq!(
        b,
        Backend::Input(InputKind::Tablet, Some("tab0".to_string()))
    );
    assert_eq!(b.spec(), "virtio-tablet-device,id=tab0");
    assert_eq!(Backend::parse(&b.spec()), Some(b));
    // Options a device does not use are ignored, as for the other devices.
    assert_eq!(
        Backend::parse("virtio-mouse-device,bus=virtio-mmio-bus.0"),
        Some(Backend::Input(InputKind::Mouse, None))
    );
    for bad in [
        "virtio-keyboard,wheel-axis=off",
        "virtio-keyboard,serial=abc",
        "virtio-mouse,id=",
        "virtio-mouse,id=0abc",
        "virtio-mouse,id=a b",
        "virtio-keyboards",
    ] {
        assert_eq!(Backend::parse(bad), None, "{bad}");
    }
}

fn at(ns: u64) -> DeviceTime {
    DeviceTime {
        ns,
        ..DeviceTime::default()
    }
}

fn send_at(d: &mut VirtioMmio, ram: &mut Ram, ns: u64, kind: u16, code: u16, value: i32) {
    d.host_input(
        DeviceInput::Input { kind, code, value },
        &mut DeviceCtx {
            t: at(ns),
            ram,
            host: &mut NoHost,
            slot: 7,
        },
    );
}

#[test]
fn holds_wait_in_virtual_time_and_survive_snapshots() {
    let mut ram = Ram::new(BASE, 1 << 20);
    let mut d = init(InputKind::Keyboard, &mut ram);
    let mut avail = 0;
    offer(&mut ram, 0, &mut avail, 8, None);
    // press a, hold 10 ms, release a, hold 10 ms: all arrive at t = 1000 ns.
    for (kind, code, value) in [
        (ev::KEY | QUEUED, 30, 1),
        (ev::SYN | QUEUED, 0, 0),
        (HOLD, 0, 10),
        (ev::KEY | QUEUED, 30, 0),
        (ev::SYN | QUEUED, 0, 0),
        (HOLD, 0, 10),
    ] {
        send_at(&mut d, &mut ram, 1000, kind, code, value);
    }
    assert_eq!(used_idx(&ram, 0), 2, "the press goes at once");
    let release = 1000 + 10_000_000;
    assert_eq!(d.next_deadline_ns(&at(1000)), Some(release));
    assert!(!d.wants_service(&at(release - 1)));
    // A snapshot in the hold restores it.
    let saved = d.save_state();
    let mut e = device(InputKind::Keyboard);
    e.restore_state(&saved).unwrap();
    assert_eq!(e.next_deadline_ns(&at(1000)), Some(release));
    assert!(e.wants_service(&at(release)));
    e.service(&mut DeviceCtx {
        t: at(release),
        ram: &mut ram,
        host: &mut NoHost,
        slot: 7,
    });
    assert_eq!(used_idx(&ram, 0), 4);
    assert_eq!(used_event(&ram, 2).0, (1, 30, 0));
    // The trailing hold keeps a later queued key behind it, then lets it through; an event
    // sent past the queue goes at once.
    let end = release + 10_000_000;
    assert_eq!(e.next_deadline_ns(&at(release)), Some(end));
    send_at(&mut e, &mut ram, release + 5, ev::KEY | QUEUED, 31, 1);
    send_at(&mut e, &mut ram, release + 5, ev::SYN | QUEUED, 0, 0);
    assert_eq!(used_idx(&ram, 0), 4);
    send_at(&mut e, &mut ram, release + 6, ev::KEY, 59, 1);
    send_at(&mut e, &mut ram, release + 6, ev::SYN, 0, 0);
    assert_eq!(used_idx(&ram, 0), 6);
    assert_eq!(used_event(&ram, 4).0, (1, 59, 1));
    e.service(&mut DeviceCtx {
        t: at(end),
        ram: &mut ram,
        host: &mut NoHost,
        slot: 7,
    });
    assert_eq!(used_idx(&ram, 0), 8);
    assert_eq!(used_event(&ram, 6).0, (1, 31, 1));
    assert_eq!(e.next_deadline_ns(&at(end)), None);
    assert!(!e.wants_service(&at(end + 1)));
    // A reset forgets what waits.
    send_at(&mut e, &mut ram, end, HOLD, 0, 5);
    send_at(&mut e, &mut ram, end, ev::KEY | QUEUED, 32, 1);
    w(&mut e, &mut ram, reg::STATUS, 4, 0);
    assert_eq!(e.next_deadline_ns(&at(end)), None);
    let transport: crate::virtio::SavedTransport = postcard::from_bytes(&e.save_state()).unwrap();
    let state: State = postcard::from_bytes(&transport.model).unwrap();
    assert!(state.backlog.is_empty() && state.hold_until.is_none());
}
