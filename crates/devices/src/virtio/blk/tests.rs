use super::*;
use crate::device::{Device, DeviceCtx, DeviceTime, HostIo, Persist};
use crate::virtio::{reg, VirtioMmio, INT_CONFIG, STATUS_DRIVER_OK, STATUS_FEATURES_OK};
use crate::virtio::{Backend, STATUS_NEEDS_RESET};

const BASE: u64 = 0x8000_0000;
const DESC: u64 = BASE + 0x1000;
const AVAIL: u64 = BASE + 0x2000;
const USED: u64 = BASE + 0x3000;
/// Request headers, one 0x100 slot per descriptor head.
const HDR: u64 = BASE + 0x4000;
/// Data buffers, 64 KiB per head.
const DATA: u64 = BASE + 0x10_0000;
const QSIZE: u32 = 64;

struct NoHost;

impl HostIo for NoHost {
    fn random(&mut self, _buf: &mut [u8]) {
        panic!("virtio-blk asked for entropy");
    }
}

/// An image of `sectors` sectors whose byte i is `i / 512` (mod 251) and the device on it.
fn image(len: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
    let f = tempfile::NamedTempFile::new().unwrap();
    let bytes: Vec<u8> = (0..len)
        .map(|i| ((i / 512) % 251) as u8 ^ (i as u8))
        .collect();
    std::fs::write(f.path(), &bytes).unwrap();
    (f, bytes)
}

fn drive(path: &std::path::Path, readonly: bool, overlay: bool) -> DriveConfig {
    DriveConfig {
        file: path.to_path_buf(),
        readonly,
        overlay,
        id: None,
        serial: None,
    }
}

fn w(d: &mut VirtioMmio, ram: &mut Ram, off: u64, v: u32) {
    d.write(off, 4, u64::from(v), &DeviceTime::default(), ram)
        .unwrap();
}

fn r(d: &mut VirtioMmio, off: u64) -> u32 {
    d.read(off, 4, &DeviceTime::default()).unwrap() as u32
}

fn init(ram: &mut Ram, model: Blk) -> VirtioMmio {
    let mut d = VirtioMmio::new(Box::new(model));
    w(&mut d, ram, reg::STATUS, 3);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES, 1);
    w(&mut d, ram, reg::DRIVER_FEATURES_SEL, 0);
    let f = (F_INDIRECT_DESC | F_EVENT_IDX | F_FLUSH | F_DISCARD | F_WRITE_ZEROES) as u32;
    w(&mut d, ram, reg::DRIVER_FEATURES, f);
    w(&mut d, ram, reg::STATUS, 3 | STATUS_FEATURES_OK);
    assert_eq!(
        r(&mut d, reg::STATUS) & STATUS_FEATURES_OK,
        STATUS_FEATURES_OK
    );
    w(&mut d, ram, reg::QUEUE_SEL, 0);
    w(&mut d, ram, reg::QUEUE_NUM, QSIZE);
    w(&mut d, ram, reg::QUEUE_DESC_LOW, DESC as u32);
    w(&mut d, ram, reg::QUEUE_DRIVER_LOW, AVAIL as u32);
    w(&mut d, ram, reg::QUEUE_DEVICE_LOW, USED as u32);
    w(&mut d, ram, reg::QUEUE_READY, 1);
    w(
        &mut d,
        ram,
        reg::STATUS,
        3 | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
    d
}

fn desc(ram: &mut Ram, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&addr.to_le_bytes());
    b[8..12].copy_from_slice(&len.to_le_bytes());
    b[12..14].copy_from_slice(&flags.to_le_bytes());
    b[14..].copy_from_slice(&next.to_le_bytes());
    ram.write(DESC + 16 * u64::from(i), &b).unwrap();
}

/// Descriptor heads used by request `n`: 3n, 3n+1, 3n+2 (header, data, status).
struct Req {
    kind: u32,
    sector: u64,
    /// Data buffer length (0: no data descriptor).
    len: u32,
    /// Data is device-writable.
    write: bool,
}

/// Offer request number `n` (descriptors 3n..3n+2) as available entry `avail_idx - 1`.
fn offer(ram: &mut Ram, n: u16, req: &Req, avail_idx: u16) {
    let h = 3 * n;
    let hdr = HDR + 0x100 * u64::from(n);
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&req.kind.to_le_bytes());
    b[8..].copy_from_slice(&req.sector.to_le_bytes());
    ram.write(hdr, &b).unwrap();
    let status = hdr + 0x80;
    ram.write(status, &[0xee]).unwrap();
    if req.len > 0 {
        desc(ram, h, hdr, 16, 1, h + 1);
        let flags = 1 | if req.write { 2 } else { 0 };
        desc(ram, h + 1, data(n), req.len, flags, h + 2);
    } else {
        desc(ram, h, hdr, 16, 1, h + 2);
    }
    desc(ram, h + 2, status, 1, 2, 0);
    let slot = u64::from(avail_idx.wrapping_sub(1)) % u64::from(QSIZE);
    ram.write(AVAIL + 4 + 2 * slot, &h.to_le_bytes()).unwrap();
    ram.write(AVAIL + 2, &avail_idx.to_le_bytes()).unwrap();
}

fn data(n: u16) -> u64 {
    DATA + 0x1_0000 * u64::from(n)
}

fn status(ram: &Ram, n: u16) -> u8 {
    let mut b = [0u8];
    ram.read(HDR + 0x100 * u64::from(n) + 0x80, &mut b).unwrap();
    b[0]
}

fn used_idx(ram: &Ram) -> u16 {
    let mut b = [0u8; 2];
    ram.read(USED + 2, &mut b).unwrap();
    u16::from_le_bytes(b)
}

/// The used ring element `i`: (head, len).
fn used(ram: &Ram, i: u64) -> (u32, u32) {
    let mut b = [0u8; 8];
    ram.read(USED + 4 + 8 * i, &mut b).unwrap();
    (
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
    )
}

fn at(ns: u64) -> DeviceTime {
    DeviceTime {
        ns,
        icount: ns,
        ..DeviceTime::default()
    }
}

fn serve(d: &mut VirtioMmio, ram: &mut Ram, ns: u64) {
    let t = at(ns);
    if d.wants_service(&t) {
        d.service(&mut DeviceCtx {
            t,
            ram,
            host: &mut NoHost,
            slot: 0,
        });
    }
}

/// Serve until nothing is in flight; returns the time of the last completion.
fn finish(d: &mut VirtioMmio, ram: &mut Ram) -> u64 {
    let mut last = 0;
    while let Some(ns) = d.next_deadline_ns(&at(last)) {
        serve(d, ram, ns);
        last = ns;
    }
    last
}

fn notify(d: &mut VirtioMmio, ram: &mut Ram, ns: u64) {
    w(d, ram, reg::QUEUE_NOTIFY, 0);
    serve(d, ram, ns);
}

#[test]
fn config_space_is_qemus() {
    let (f, _) = image(3 * 512 + 100);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = VirtioMmio::new(Box::new(Blk::open(&drive(f.path(), false, true)).unwrap()));
    let t = DeviceTime::default();
    assert_eq!(r(&mut d, reg::DEVICE_ID), 2);
    let feats = r(&mut d, reg::DEVICE_FEATURES);
    assert_eq!(
        u64::from(feats),
        (F_INDIRECT_DESC
            | F_EVENT_IDX
            | F_SEG_MAX
            | F_BLK_SIZE
            | F_FLUSH
            | F_TOPOLOGY
            | F_CONFIG_WCE
            | F_DISCARD
            | F_WRITE_ZEROES)
            & 0xffff_ffff
    );
    // Capacity rounds a partial last sector up, as QEMU's block layer.
    assert_eq!(d.read(0x100, 8, &t), Some(4));
    assert_eq!(d.read(0x100 + 12, 4, &t), Some(254));
    assert_eq!(d.read(0x100 + 20, 4, &t), Some(512));
    assert_eq!(d.read(0x100 + 32, 1, &t), Some(1));
    assert_eq!(d.read(0x100 + 34, 2, &t), Some(1));
    assert_eq!(d.read(0x100 + 36, 4, &t), Some(0x3f_ffff));
    assert_eq!(d.read(0x100 + 40, 4, &t), Some(1));
    assert_eq!(d.read(0x100 + 44, 4, &t), Some(1));
    assert_eq!(d.read(0x100 + 48, 4, &t), Some(0x3f_ffff));
    assert_eq!(d.read(0x100 + 56, 1, &t), Some(1));
    // Past the config QEMU exposes: all ones.
    assert_eq!(d.read(0x100 + 56, 4, &t), Some(0xffff_ffff));
    assert_eq!(d.read(0x100 + 60, 1, &t), Some(0xff));
    // writeback is writable.
    d.write(0x100 + 32, 1, 0, &t, &mut ram).unwrap();
    assert_eq!(d.read(0x100 + 32, 1, &t), Some(0));
    // Read-only drives offer RO.
    let ro = Blk::open(&drive(f.path(), true, false)).unwrap();
    assert_ne!(ro.features() & F_RO, 0);
}

#[test]
fn requests_complete_at_their_virtual_time() {
    let (f, bytes) = image(64 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    // Read 8 KiB at sector 4.
    let rd = Req {
        kind: T_IN,
        sector: 4,
        len: 8192,
        write: true,
    };
    offer(&mut ram, 0, &rd, 1);
    notify(&mut d, &mut ram, 1000);
    // Data moved at pop; nothing is used before the completion time.
    let want = 1000 + LATENCY_NS + 8192 * 1_000_000_000 / BYTES_PER_SEC;
    assert_eq!(d.next_deadline_ns(&at(1000)), Some(want));
    assert_eq!(status(&ram, 0), 0xee);
    assert_eq!(used_idx(&ram), 0);
    serve(&mut d, &mut ram, want - 1);
    assert_eq!(used_idx(&ram), 0);
    serve(&mut d, &mut ram, want);
    assert_eq!(used_idx(&ram), 1);
    assert_eq!(status(&ram, 0), S_OK);
    assert_eq!(used(&ram, 0), (0, 8193));
    let mut got = vec![0u8; 8192];
    ram.read(data(0), &mut got).unwrap();
    assert_eq!(got, bytes[2048..2048 + 8192]);
    assert_eq!(d.next_deadline_ns(&at(want)), None);

    // Two requests at once: transfers are serialised, latencies overlap.
    let wr = Req {
        kind: T_OUT,
        sector: 0,
        len: 4096,
        write: false,
    };
    ram.write(data(1), &[0x5a; 4096]).unwrap();
    offer(&mut ram, 1, &wr, 2);
    offer(&mut ram, 2, &rd, 3);
    notify(&mut d, &mut ram, 100_000);
    let first = 100_000 + LATENCY_NS + 4096 * 1_000_000_000 / BYTES_PER_SEC;
    let second = first + 8192 * 1_000_000_000 / BYTES_PER_SEC;
    assert_eq!(d.next_deadline_ns(&at(100_000)), Some(first));
    serve(&mut d, &mut ram, first);
    assert_eq!(
        (used_idx(&ram), status(&ram, 1), status(&ram, 2)),
        (2, S_OK, 0xee)
    );
    assert_eq!(d.next_deadline_ns(&at(first)), Some(second));
    serve(&mut d, &mut ram, second);
    assert_eq!((used_idx(&ram), status(&ram, 2)), (3, S_OK));
    assert_eq!(used(&ram, 1), (3, 1));
}

#[test]
fn every_request_type() {
    let (f, bytes) = image(64 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut cfg = drive(f.path(), false, true);
    cfg.serial = Some("rewind-disk-serial-0123".into());
    let mut d = init(&mut ram, Blk::open(&cfg).unwrap());
    let reqs = [
        // 0: write 1 KiB at sector 1.
        Req {
            kind: T_OUT,
            sector: 1,
            len: 1024,
            write: false,
        },
        // 1: read it back (and the sectors around it).
        Req {
            kind: T_IN,
            sector: 0,
            len: 4096,
            write: true,
        },
        // 2: flush.
        Req {
            kind: T_FLUSH,
            sector: 0,
            len: 0,
            write: false,
        },
        // 3: get id into a 32-byte buffer.
        Req {
            kind: T_GET_ID,
            sector: 0,
            len: 32,
            write: true,
        },
        // 4: an unknown type.
        Req {
            kind: 99,
            sector: 0,
            len: 0,
            write: false,
        },
        // 5: read past the end.
        Req {
            kind: T_IN,
            sector: 127,
            len: 1024,
            write: true,
        },
        // 6: a length that is not whole sectors.
        Req {
            kind: T_IN,
            sector: 0,
            len: 100,
            write: true,
        },
        // 7: write zeroes, sectors 8..16 (the data is the 16-byte segment).
        Req {
            kind: T_WRITE_ZEROES,
            sector: 0,
            len: 16,
            write: false,
        },
        // 8: discard sectors 16..24 (data stays, as QEMU's discard=ignore).
        Req {
            kind: T_DISCARD,
            sector: 0,
            len: 16,
            write: false,
        },
        // 9: discard with the unmap flag: unsupported.
        Req {
            kind: T_DISCARD,
            sector: 0,
            len: 16,
            write: false,
        },
    ];
    ram.write(data(0), &[0xa5; 1024]).unwrap();
    let seg = |sector: u64, count: u32, flags: u32| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&sector.to_le_bytes());
        b[8..12].copy_from_slice(&count.to_le_bytes());
        b[12..].copy_from_slice(&flags.to_le_bytes());
        b
    };
    ram.write(data(7), &seg(8, 8, 0)).unwrap();
    ram.write(data(8), &seg(16, 8, 0)).unwrap();
    ram.write(data(9), &seg(16, 8, 1)).unwrap();
    for (n, req) in reqs.iter().enumerate() {
        offer(&mut ram, n as u16, req, n as u16 + 1);
        notify(&mut d, &mut ram, 0);
    }
    finish(&mut d, &mut ram);
    let got: Vec<u8> = (0..reqs.len() as u16).map(|n| status(&ram, n)).collect();
    assert_eq!(
        got,
        [S_OK, S_OK, S_OK, S_OK, S_UNSUPP, S_IOERR, S_IOERR, S_OK, S_OK, S_UNSUPP]
    );
    let mut rd = vec![0u8; 4096];
    ram.read(data(1), &mut rd).unwrap();
    assert_eq!(rd[..512], bytes[..512]);
    assert_eq!(rd[512..1536], [0xa5; 1024]);
    assert_eq!(rd[1536..], bytes[1536..4096]);
    let mut id = [0u8; 32];
    ram.read(data(3), &mut id).unwrap();
    assert_eq!(&id[..20], b"rewind-disk-serial-0");
    assert_eq!(id[20..], [0; 12]);
    // Write zeroes and discard, seen by a read of sectors 8..24.
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_IN,
            sector: 8,
            len: 8192,
            write: true,
        },
        11,
    );
    notify(&mut d, &mut ram, 0);
    finish(&mut d, &mut ram);
    ram.read(data(0), &mut rd).unwrap();
    assert_eq!(rd, [0; 4096]);
    ram.read(data(0) + 4096, &mut rd).unwrap();
    assert_eq!(rd, bytes[8192..12288]);
    // The used length is every device-writable byte, status included (as QEMU).
    assert_eq!(used(&ram, 1), (3, 4097));
    assert_eq!(used(&ram, 2), (6, 1));
    // The base image was never written.
    assert_eq!(std::fs::read(f.path()).unwrap(), bytes);
}

#[test]
fn get_id_without_serial_is_one_nul() {
    let (f, _) = image(4096);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    ram.write(data(0), &[0x77; 20]).unwrap();
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_GET_ID,
            sector: 0,
            len: 20,
            write: true,
        },
        1,
    );
    notify(&mut d, &mut ram, 0);
    finish(&mut d, &mut ram);
    let mut id = [0u8; 20];
    ram.read(data(0), &mut id).unwrap();
    assert_eq!(id[0], 0);
    assert_eq!(id[1..], [0x77; 19]);
}

#[test]
fn read_only_drives_refuse_writes() {
    let (f, bytes) = image(16 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), true, false)).unwrap());
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_OUT,
            sector: 0,
            len: 512,
            write: false,
        },
        1,
    );
    offer(
        &mut ram,
        1,
        &Req {
            kind: T_WRITE_ZEROES,
            sector: 0,
            len: 16,
            write: false,
        },
        2,
    );
    ram.write(data(1), &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    offer(
        &mut ram,
        2,
        &Req {
            kind: T_IN,
            sector: 0,
            len: 512,
            write: true,
        },
        3,
    );
    notify(&mut d, &mut ram, 0);
    finish(&mut d, &mut ram);
    assert_eq!(
        (status(&ram, 0), status(&ram, 1), status(&ram, 2)),
        (S_IOERR, S_IOERR, S_OK)
    );
    assert_eq!(std::fs::read(f.path()).unwrap(), bytes);
}

#[test]
fn write_through_drives_write_the_image() {
    let (f, mut bytes) = image(16 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, false)).unwrap());
    ram.write(data(0), &[0x3c; 1024]).unwrap();
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_OUT,
            sector: 3,
            len: 1024,
            write: false,
        },
        1,
    );
    notify(&mut d, &mut ram, 0);
    finish(&mut d, &mut ram);
    assert_eq!(status(&ram, 0), S_OK);
    bytes[1536..2560].fill(0x3c);
    assert_eq!(std::fs::read(f.path()).unwrap(), bytes);
}

#[test]
fn malformed_chains_need_a_reset() {
    let (f, _) = image(16 << 10);
    // No status descriptor: the header alone.
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    desc(&mut ram, 0, HDR, 16, 0, 0);
    ram.write(AVAIL + 4, &0u16.to_le_bytes()).unwrap();
    ram.write(AVAIL + 2, &1u16.to_le_bytes()).unwrap();
    notify(&mut d, &mut ram, 0);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.interrupt_status() & INT_CONFIG, INT_CONFIG);
    // A header of 8 bytes.
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    desc(&mut ram, 0, HDR, 8, 1, 1);
    desc(&mut ram, 1, HDR + 0x80, 1, 2, 0);
    ram.write(AVAIL + 2, &1u16.to_le_bytes()).unwrap();
    notify(&mut d, &mut ram, 0);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    // A zero-length status buffer.
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    desc(&mut ram, 0, HDR, 16, 1, 1);
    desc(&mut ram, 1, HDR + 0x80, 0, 2, 0);
    ram.write(AVAIL + 2, &1u16.to_le_bytes()).unwrap();
    notify(&mut d, &mut ram, 0);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    // A discard whose 16-byte segment is cut short.
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_DISCARD,
            sector: 0,
            len: 8,
            write: false,
        },
        1,
    );
    notify(&mut d, &mut ram, 0);
    assert_eq!(d.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.next_deadline_ns(&at(0)), None);
}

#[test]
fn overlay_is_copy_on_write_and_survives_resets() {
    let (f, bytes) = image(64 << 10);
    let mut blk = Blk::open(&drive(f.path(), false, true)).unwrap();
    // A partial chunk write keeps the rest of the chunk from the base.
    blk.write_disk(4096 + 100, Some(&[1, 2, 3]), 3).unwrap();
    // Zeroes over a whole chunk are a zero chunk; partially, data.
    blk.write_disk(8192, None, 4096 + 10).unwrap();
    let mut got = vec![0u8; 16384];
    blk.read_disk(0, &mut got).unwrap();
    let mut want = bytes[..16384].to_vec();
    want[4196..4199].copy_from_slice(&[1, 2, 3]);
    want[8192..8192 + 4106].fill(0);
    assert_eq!(got, want);
    assert_eq!(blk.overlay.len(), 3);
    assert_eq!(blk.overlay_bytes(), 2 * CHUNK);
    // Data that happens to be zeroes is kept as a zero chunk.
    blk.write_disk(12288, Some(&[0; 4096]), 4096).unwrap();
    blk.write_disk(
        4096,
        Some(&bytes[4096..8192].iter().map(|_| 0).collect::<Vec<u8>>()),
        4096,
    )
    .unwrap();
    want[12288..16384].fill(0);
    want[4096..8192].fill(0);
    blk.read_disk(0, &mut got).unwrap();
    assert_eq!(got, want);
    assert_eq!((blk.overlay.len(), blk.overlay_bytes()), (3, 0));
    // A reset keeps the disk's content.
    blk.reset();
    let mut again = vec![0u8; 16384];
    blk.read_disk(0, &mut again).unwrap();
    assert_eq!(again, want);
    assert_eq!(std::fs::read(f.path()).unwrap(), bytes);
}

#[test]
fn state_round_trips_with_requests_in_flight() {
    let (f, bytes) = image(64 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    ram.write(data(0), &[0x42; 4096]).unwrap();
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_OUT,
            sector: 8,
            len: 4096,
            write: false,
        },
        1,
    );
    offer(
        &mut ram,
        1,
        &Req {
            kind: T_IN,
            sector: 8,
            len: 4096,
            write: true,
        },
        2,
    );
    notify(&mut d, &mut ram, 500);
    let saved = d.save_state();
    let mut ram_saved = vec![0u8; 4 << 20];
    ram.read(BASE, &mut ram_saved).unwrap();

    // Complete in the original.
    let end = finish(&mut d, &mut ram);
    // Restore into a fresh device on the same image and complete there.
    let mut e = VirtioMmio::new(Box::new(Blk::open(&drive(f.path(), false, true)).unwrap()));
    e.restore_state(&saved).unwrap();
    assert_eq!(e.save_state(), saved);
    let mut ram2 = Ram::new(BASE, 4 << 20);
    ram2.write(BASE, &ram_saved).unwrap();
    assert_eq!(finish(&mut e, &mut ram2), end);
    let (mut a, mut b) = (vec![0u8; 0x20_0000], vec![0u8; 0x20_0000]);
    ram.read(BASE, &mut a).unwrap();
    ram2.read(BASE, &mut b).unwrap();
    assert!(
        a == b,
        "guest memory differs after completing the restored requests"
    );
    assert_eq!(e.save_state(), d.save_state());
    assert_eq!((status(&ram2, 0), status(&ram2, 1)), (S_OK, S_OK));
    assert_eq!(std::fs::read(f.path()).unwrap(), bytes);
}

#[test]
fn inconsistent_states_are_refused_and_change_nothing() {
    let (f, _) = image(64 << 10);
    let mut model = Blk::open(&drive(f.path(), false, true)).unwrap();
    model.write_disk(4096, Some(&[9; 600]), 600).unwrap();
    model.write_disk(16384, None, 4096).unwrap();
    model.in_flight.push_back(InFlight {
        head: 3,
        status_addr: BASE,
        status: S_OK,
        used_len: 1,
        done_ns: 77,
    });
    let good = model.save_state();
    let header = postcard::to_allocvec(&model.saved()).unwrap();
    assert_eq!(good.len(), header.len() + CHUNK as usize);
    let with = |change: &dyn Fn(&mut Saved)| {
        let mut s = model.saved();
        change(&mut s);
        let mut b = postcard::to_allocvec(&s).unwrap();
        b.extend_from_slice(&good[header.len()..]);
        b
    };
    let mut fresh = Blk::open(&drive(f.path(), false, true)).unwrap();
    let empty = fresh.save_state();
    for bad in [
        with(&|s| s.chunks.push((16, false))),
        with(&|s| s.chunks[1].0 = 1 << 40),
        with(&|s| s.chunks.swap(0, 1)),
        with(&|s| s.sectors += 1),
        with(&|s| s.readonly = true),
        with(&|s| s.in_flight[0].head = 5000),
        with(&|s| s.in_flight[0].status = 7),
        with(&|s| {
            let r = s.in_flight[0].clone();
            s.in_flight.push_back(InFlight { done_ns: 1, ..r });
        }),
        good[..good.len() - 1].to_vec(),
        [good.as_slice(), &[0]].concat(),
        vec![1, 2, 3],
    ] {
        assert!(fresh.restore_state(&bad).is_err());
        assert_eq!(fresh.save_state(), empty);
    }
    fresh.restore_state(&good).unwrap();
    assert_eq!(fresh.save_state(), good);
    // A drive written in place has no overlay to restore.
    let mut wt = Blk::open(&drive(f.path(), false, false)).unwrap();
    assert!(wt.restore_state(&good).is_err());
}

#[test]
fn drive_options_parse_as_qemus() {
    let (cfg, i) =
        DriveConfig::parse_drive("file=/a,,b.img,format=raw,readonly=on,id=d0,if=none").unwrap();
    assert_eq!(cfg.file, PathBuf::from("/a,b.img"));
    assert!(cfg.readonly && !cfg.overlay);
    assert_eq!((cfg.id.as_deref(), i), (Some("d0"), DriveInterface::None));
    let back = DriveConfig::from_spec(&cfg.spec()).unwrap();
    assert_eq!(back.file, cfg.file);
    assert!(back.readonly && back.overlay);
    assert_eq!(Backend::parse(&cfg.spec()), Some(Backend::Blk(back)));
    for bad in [
        "format=qcow2,file=x",
        "readonly=on",
        "file=x,if=ide",
        "file=x,if=none",
        "file=x,cache=none,bogus",
        "file=x,discard=unmap",
        "file=x,readonly=maybe",
    ] {
        assert!(DriveConfig::parse_drive(bad).is_err(), "{bad}");
    }
    assert!(Blk::open(&drive(
        std::path::Path::new("/nonexistent.img"),
        false,
        true
    ))
    .unwrap_err()
    .to_string()
    .contains("no such file"));
}

#[test]
fn transfers_share_one_channel_and_wild_sectors_fail() {
    let (f, _) = image(1 << 20);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    // Five reads at once: one latency, five transfers back to back.
    for n in 0..5u16 {
        offer(
            &mut ram,
            n,
            &Req {
                kind: T_IN,
                sector: u64::from(n),
                len: 512,
                write: true,
            },
            n + 1,
        );
    }
    notify(&mut d, &mut ram, 0);
    let end = finish(&mut d, &mut ram);
    assert_eq!(used_idx(&ram), 5);
    // Each transfer rounds down to whole ns on its own.
    assert_eq!(end, LATENCY_NS + 5 * (512 * 1_000_000_000 / BYTES_PER_SEC));
    // A sector far past the end (the range check must not overflow).
    let (f, _) = image(4096);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    offer(
        &mut ram,
        0,
        &Req {
            kind: T_IN,
            sector: u64::MAX / 512,
            len: 512,
            write: true,
        },
        1,
    );
    notify(&mut d, &mut ram, 0);
    finish(&mut d, &mut ram);
    assert_eq!(status(&ram, 0), S_IOERR);
}

/// With event-idx, taking a request publishes `avail_event` at once: the driver's next request
/// (made while this one is in flight) is notified. Found by Linux O_DIRECT writes, which split
/// a 1 MiB write into two requests and waited forever for the second.
#[test]
fn event_idx_asks_for_the_next_notify_while_requests_are_in_flight() {
    let (f, _) = image(64 << 10);
    let mut ram = Ram::new(BASE, 4 << 20);
    let mut d = init(&mut ram, Blk::open(&drive(f.path(), false, true)).unwrap());
    let avail_event = |ram: &Ram| {
        let mut b = [0u8; 2];
        ram.read(USED + 4 + 8 * u64::from(QSIZE), &mut b).unwrap();
        u16::from_le_bytes(b)
    };
    let rd = |sector| Req {
        kind: T_IN,
        sector,
        len: 512,
        write: true,
    };
    offer(&mut ram, 0, &rd(0), 1);
    notify(&mut d, &mut ram, 0);
    assert_eq!((used_idx(&ram), avail_event(&ram)), (0, 1));
    offer(&mut ram, 1, &rd(1), 2);
    notify(&mut d, &mut ram, 10);
    assert_eq!((used_idx(&ram), avail_event(&ram)), (0, 2));
    finish(&mut d, &mut ram);
    assert_eq!(used_idx(&ram), 2);
}
