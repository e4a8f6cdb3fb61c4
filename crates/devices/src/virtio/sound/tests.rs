use super::*;
use crate::device::{Device, DeviceCtx, DeviceTime, HostIo, Persist};
use crate::virtio::{reg, VirtioMmio, STATUS_DRIVER_OK, STATUS_FEATURES_OK, STATUS_NEEDS_RESET};
use rewind_cpu::Ram;

const F_EVENT_IDX_LO: u32 = crate::virtio::queue::F_EVENT_IDX as u32;

const BASE: u64 = 0x8000_0000;
const QSIZE: u32 = 16;
/// Data buffers.
const DATA: u64 = BASE + 0x10_0000;

fn qbase(q: usize) -> u64 {
    BASE + 0x1_0000 * (q as u64 + 1)
}
fn desc_addr(q: usize) -> u64 {
    qbase(q)
}
fn avail_addr(q: usize) -> u64 {
    qbase(q) + 0x1000
}
fn used_addr(q: usize) -> u64 {
    qbase(q) + 0x2000
}

/// Host side: records what was played, captures a counting byte pattern.
#[derive(Default)]
struct TestHost {
    played: Vec<(PcmFormat, u64, Vec<u8>)>,
    captured: Vec<(PcmFormat, usize)>,
    next: u8,
}

impl HostIo for TestHost {
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(0);
    }
    fn audio_capture(&mut self, _slot: u8, format: PcmFormat, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            self.next = self.next.wrapping_add(1);
            *b = self.next;
        }
        self.captured.push((format, buf.len()));
    }
    fn audio_playback(&mut self, _slot: u8, format: PcmFormat, pos: u64, pcm: &[u8]) {
        self.played.push((format, pos, pcm.to_vec()));
    }
}

/// The driver side of a test: RAM, the device, and each queue's next descriptor / avail index.
struct Driver {
    ram: Ram,
    dev: VirtioMmio,
    host: TestHost,
    next_desc: [u16; 4],
    avail: [u16; 4],
    used_seen: [u16; 4],
    next_buf: u64,
    now: u64,
}

fn w(d: &mut VirtioMmio, ram: &mut Ram, off: u64, v: u32) {
    d.write(off, 4, u64::from(v), &DeviceTime::default(), ram)
        .unwrap();
}

/// Reset the device and run the driver's initialisation (virtio 1.2 §3.1.1) for all queues.
fn bring_up(d: &mut VirtioMmio, ram: &mut Ram, features: u32) {
    w(d, ram, reg::STATUS, 0);
    w(d, ram, reg::STATUS, 3);
    w(d, ram, reg::DRIVER_FEATURES, features);
    w(d, ram, reg::DRIVER_FEATURES_SEL, 1);
    w(d, ram, reg::DRIVER_FEATURES, 1);
    w(d, ram, reg::STATUS, 3 | STATUS_FEATURES_OK);
    for q in 0..4 {
        w(d, ram, reg::QUEUE_SEL, q as u32);
        w(d, ram, reg::QUEUE_NUM, QSIZE);
        w(d, ram, reg::QUEUE_DESC_LOW, desc_addr(q) as u32);
        w(d, ram, reg::QUEUE_DRIVER_LOW, avail_addr(q) as u32);
        w(d, ram, reg::QUEUE_DEVICE_LOW, used_addr(q) as u32);
        w(d, ram, reg::QUEUE_READY, 1);
    }
    w(
        d,
        ram,
        reg::STATUS,
        3 | STATUS_FEATURES_OK | STATUS_DRIVER_OK,
    );
}

impl Driver {
    fn new() -> Self {
        Driver::with_features(0)
    }

    /// A driver that negotiated `features` (low word) besides VERSION_1.
    fn with_features(features: u32) -> Self {
        let mut ram = Ram::new(BASE, 16 << 20);
        let mut d = VirtioMmio::new(Box::new(Sound::new()));
        bring_up(&mut d, &mut ram, features);
        Driver {
            ram,
            dev: d,
            host: TestHost::default(),
            next_desc: [0; 4],
            avail: [0; 4],
            used_seen: [0; 4],
            next_buf: DATA,
            now: 0,
        }
    }

    /// A buffer of `len` bytes holding `data` (rest zero).
    fn buf(&mut self, data: &[u8], len: u32) -> u64 {
        let a = self.next_buf;
        self.next_buf += u64::from(len).next_multiple_of(64).max(64);
        self.ram.write(a, data).unwrap();
        a
    }

    /// Offer a chain of (address, length, writable) on queue `q` and notify; returns its head.
    fn offer(&mut self, q: usize, segs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc[q];
        for (i, &(addr, len, write)) in segs.iter().enumerate() {
            let idx = (head + i as u16) % QSIZE as u16;
            let last = i + 1 == segs.len();
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&addr.to_le_bytes());
            b[8..12].copy_from_slice(&len.to_le_bytes());
            let flags = u16::from(!last) | if write { 2 } else { 0 };
            b[12..14].copy_from_slice(&flags.to_le_bytes());
            b[14..].copy_from_slice(&((idx + 1) % QSIZE as u16).to_le_bytes());
            self.ram
                .write(desc_addr(q) + 16 * u64::from(idx), &b)
                .unwrap();
        }
        self.next_desc[q] = (head + segs.len() as u16) % QSIZE as u16;
        let slot = u64::from(self.avail[q] % QSIZE as u16);
        self.ram
            .write(avail_addr(q) + 4 + 2 * slot, &head.to_le_bytes())
            .unwrap();
        self.avail[q] = self.avail[q].wrapping_add(1);
        self.ram
            .write(avail_addr(q) + 2, &self.avail[q].to_le_bytes())
            .unwrap();
        w(&mut self.dev, &mut self.ram, reg::QUEUE_NOTIFY, q as u32);
        head
    }

    fn time(&self) -> DeviceTime {
        DeviceTime {
            ns: self.now,
            ..DeviceTime::default()
        }
    }

    /// Serve the device at `self.now` if it wants it.
    fn serve(&mut self) {
        let t = self.time();
        if self.dev.wants_service(&t) {
            self.dev.service(&mut DeviceCtx {
                t,
                ram: &mut self.ram,
                host: &mut self.host,
                slot: 3,
            });
        }
    }

    /// New used entries of queue `q`: (head, len).
    fn used(&mut self, q: usize) -> Vec<(u16, u32)> {
        let mut b = [0u8; 2];
        self.ram.read(used_addr(q) + 2, &mut b).unwrap();
        let idx = u16::from_le_bytes(b);
        let mut out = Vec::new();
        while self.used_seen[q] != idx {
            let slot = u64::from(self.used_seen[q] % QSIZE as u16);
            let mut e = [0u8; 8];
            self.ram.read(used_addr(q) + 4 + 8 * slot, &mut e).unwrap();
            out.push((
                u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as u16,
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            ));
            self.used_seen[q] = self.used_seen[q].wrapping_add(1);
        }
        out
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.ram.read(addr, &mut v).unwrap();
        v
    }

    /// Send a control request; returns the response (`resp_len` bytes) and the used length.
    fn control(&mut self, req: &[u8], resp_len: u32) -> (Vec<u8>, u32) {
        let r = self.buf(req, req.len() as u32);
        let a = self.buf(&vec![0xee; resp_len as usize], resp_len);
        let head = self.offer(
            Q_CONTROL,
            &[(r, req.len() as u32, false), (a, resp_len, true)],
        );
        self.serve();
        let used = self.used(Q_CONTROL);
        assert_eq!(used.len(), 1, "one control answer");
        assert_eq!(used[0].0, head);
        (self.read(a, resp_len as usize), used[0].1)
    }

    fn status_of(&mut self, req: &[u8]) -> u32 {
        le32(&self.control(req, 4).0, 0)
    }
}

fn req(code: u32, words: &[u32]) -> Vec<u8> {
    let mut v = code.to_le_bytes().to_vec();
    for w in words {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

fn set_params(
    stream: u32,
    buffer: u32,
    period: u32,
    channels: u8,
    format: u8,
    rate: u8,
) -> Vec<u8> {
    let mut v = req(code::PCM_SET_PARAMS, &[stream, buffer, period, 0]);
    v.extend_from_slice(&[channels, format, rate, 0]);
    v
}

#[test]
fn identity_and_config() {
    let mut d = Driver::new();
    let t = DeviceTime::default();
    assert_eq!(d.dev.read(reg::DEVICE_ID, 4, &t), Some(25));
    // virtio_snd_config: jacks, streams, chmaps.
    assert_eq!(d.dev.read(reg::CONFIG, 4, &t), Some(0));
    assert_eq!(d.dev.read(reg::CONFIG + 4, 4, &t), Some(2));
    assert_eq!(d.dev.read(reg::CONFIG + 8, 4, &t), Some(0));
    assert_eq!(d.dev.read(reg::CONFIG + 4, 1, &t), Some(2));
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, 0);
    // Event buffers are kept, never used.
    let e = d.buf(&[], 8);
    d.offer(Q_EVENT, &[(e, 8, true)]);
    d.serve();
    assert!(d.used(Q_EVENT).is_empty());
}

#[test]
fn pcm_info_answers_as_qemu() {
    let mut d = Driver::new();
    let (resp, len) = d.control(&req(code::PCM_INFO, &[0, 2, 32]), 4 + 64);
    assert_eq!(len, 4 + 64);
    assert_eq!(le32(&resp, 0), status::OK);
    for (i, dir) in [(0usize, D_OUTPUT), (1, D_INPUT)] {
        let info = &resp[4 + 32 * i..4 + 32 * (i + 1)];
        assert_eq!(le32(info, 0), 0, "hda_fn_nid");
        assert_eq!(le32(info, 4), 0, "features");
        let formats = u64::from_le_bytes(info[8..16].try_into().unwrap());
        // S8 U8 S16 U16 S32 U32 FLOAT.
        assert_eq!(
            formats,
            1 << 3 | 1 << 4 | 1 << 5 | 1 << 6 | 1 << 17 | 1 << 18 | 1 << 19
        );
        let rates = u64::from_le_bytes(info[16..24].try_into().unwrap());
        assert_eq!(rates, 0x3fff, "5512 .. 384000 Hz");
        assert_eq!(info[24], dir);
        assert_eq!((info[25], info[26]), (1, 2), "channels");
        assert_eq!(&info[27..32], &[0; 5], "padding");
    }
    // One item from stream 1.
    let (resp, _) = d.control(&req(code::PCM_INFO, &[1, 1, 32]), 36);
    assert_eq!(le32(&resp, 0), status::OK);
    assert_eq!(resp[4 + 24], D_INPUT);
    // Past the streams, too little room, a short request: BAD_MSG.
    assert_eq!(
        d.status_of(&req(code::PCM_INFO, &[1, 2, 32])),
        status::BAD_MSG
    );
    let (resp, _) = d.control(&req(code::PCM_INFO, &[0, 2, 32]), 40);
    assert_eq!(le32(&resp, 0), status::BAD_MSG);
    assert_eq!(d.status_of(&req(code::PCM_INFO, &[0, 2])), status::BAD_MSG);
    assert_eq!(d.status_of(&[0x00, 0x01]), status::BAD_MSG);
}

#[test]
fn control_requests_and_bad_ones() {
    let mut d = Driver::new();
    assert_eq!(
        d.status_of(&req(code::JACK_INFO, &[0, 0, 0])),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&req(code::JACK_REMAP, &[0, 0, 0])),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&req(code::CHMAP_INFO, &[0, 1, 24])),
        status::NOT_SUPP
    );
    assert_eq!(d.status_of(&req(0x999, &[0])), status::BAD_MSG);
    // SET_PARAMS: supported → OK; bad channels / format / rate → NOT_SUPP; bad stream or
    // short request → BAD_MSG.
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 2, FMT_S16, RATE_44100)),
        status::OK
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 0, FMT_S16, RATE_44100)),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 17, FMT_S16, RATE_44100)),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 2, 0, RATE_44100)),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 2, 20, RATE_44100)),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 2, FMT_S16, 14)),
        status::NOT_SUPP
    );
    assert_eq!(
        d.status_of(&set_params(2, 4096, 1024, 2, FMT_S16, RATE_44100)),
        status::BAD_MSG
    );
    assert_eq!(
        d.status_of(&set_params(0, 4096, 1024, 2, FMT_S16, RATE_44100)[..20]),
        status::BAD_MSG
    );
    for op in [
        code::PCM_PREPARE,
        code::PCM_START,
        code::PCM_STOP,
        code::PCM_RELEASE,
    ] {
        assert_eq!(d.status_of(&req(op, &[0])), status::OK);
        assert_eq!(d.status_of(&req(op, &[1])), status::OK);
        assert_eq!(d.status_of(&req(op, &[2])), status::BAD_MSG);
        assert_eq!(d.status_of(&req(op, &[])), status::BAD_MSG);
    }
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, 0);
    // A control request with no room for the answer breaks the device.
    let r = d.buf(&req(code::PCM_START, &[0]), 8);
    d.offer(Q_CONTROL, &[(r, 8, false)]);
    d.serve();
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
}

/// Prepare and start stream `id` at 48 kHz, S16, stereo (192000 bytes per second).
fn start(d: &mut Driver, id: u32) {
    assert_eq!(
        d.status_of(&set_params(id, 7680, 1920, 2, FMT_S16, RATE_48000)),
        status::OK
    );
    assert_eq!(d.status_of(&req(code::PCM_PREPARE, &[id])), status::OK);
    assert_eq!(d.status_of(&req(code::PCM_START, &[id])), status::OK);
}

/// A tx buffer: header, `pcm`, status; returns (head, status address).
fn tx(d: &mut Driver, stream: u32, pcm: &[u8]) -> (u16, u64) {
    let h = d.buf(&stream.to_le_bytes(), 4);
    let p = d.buf(pcm, pcm.len() as u32);
    let s = d.buf(&[0xee; 8], 8);
    let head = d.offer(
        Q_TX,
        &[(h, 4, false), (p, pcm.len() as u32, false), (s, 8, true)],
    );
    (head, s)
}

/// An rx buffer: header, `len` bytes of data and the status; returns (head, data address).
fn rx(d: &mut Driver, stream: u32, len: u32) -> (u16, u64) {
    let h = d.buf(&stream.to_le_bytes(), 4);
    let p = d.buf(&[], len);
    let s = d.buf(&[0xee; 8], 8);
    let head = d.offer(Q_RX, &[(h, 4, false), (p, len, true), (s, 8, true)]);
    (head, p)
}

#[test]
fn playback_completes_each_period_in_virtual_time() {
    let mut d = Driver::new();
    d.now = 1000;
    start(&mut d, STREAM_OUT);
    // Three periods of 1920 bytes = 480 frames = 10 ms each.
    let tone: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 1920]).collect();
    let bufs: Vec<_> = tone.iter().map(|t| tx(&mut d, STREAM_OUT, t)).collect();
    d.serve();
    assert!(d.used(Q_TX).is_empty());
    for (i, (head, status_at)) in bufs.iter().enumerate() {
        let due = 1000 + 10_000_000 * (i as u64 + 1);
        assert_eq!(d.dev.next_deadline_ns(&d.time()), Some(due));
        d.now = due - 1;
        d.serve();
        assert!(
            d.used(Q_TX).is_empty(),
            "buffer {i} not before its period ends"
        );
        d.now = due;
        d.serve();
        assert_eq!(d.used(Q_TX), vec![(*head, 8)]);
        let st = d.read(*status_at, 8);
        assert_eq!(le32(&st, 0), status::OK);
        // latency_bytes: what is still queued behind it.
        assert_eq!(le32(&st, 4), 1920 * (2 - i as u32));
        let (f, pos, pcm) = &d.host.played[i];
        assert_eq!(*pos, 1920 * i as u64);
        assert_eq!(
            *f,
            PcmFormat {
                rate: 48000,
                channels: 2,
                sample: SampleFormat::S16
            }
        );
        assert_eq!(pcm, &tone[i]);
    }
    assert_eq!(d.dev.next_deadline_ns(&d.time()), None);
    // A buffer after the stream ran dry starts a new period now.
    d.now = 50_000_000;
    tx(&mut d, STREAM_OUT, &[7; 192]);
    d.serve();
    assert_eq!(d.dev.next_deadline_ns(&d.time()), Some(51_000_000));
    // STOP hands back what is queued, unplayed.
    assert_eq!(d.status_of(&req(code::PCM_STOP, &[0])), status::OK);
    assert_eq!(d.used(Q_TX).len(), 1);
    assert_eq!(d.host.played.len(), 3);
    assert_eq!(d.dev.next_deadline_ns(&d.time()), None);
}

#[test]
fn buffers_wait_for_start() {
    let mut d = Driver::new();
    tx(&mut d, STREAM_OUT, &[1; 400]);
    d.now = 5_000;
    d.serve();
    assert_eq!(d.dev.next_deadline_ns(&d.time()), None);
    // Default parameters (48 kHz, S16, stereo): 400 bytes = 100 frames.
    assert_eq!(d.status_of(&req(code::PCM_START, &[0])), status::OK);
    assert_eq!(
        d.dev.next_deadline_ns(&d.time()),
        Some(5_000 + (100 * 1_000_000_000u64).div_ceil(48000))
    );
}

#[test]
fn capture_fills_from_the_host_at_period_end() {
    let mut d = Driver::new();
    start(&mut d, STREAM_IN);
    let (h0, p0) = rx(&mut d, STREAM_IN, 1920);
    let (h1, p1) = rx(&mut d, STREAM_IN, 1920);
    d.serve();
    assert!(
        d.host.captured.is_empty(),
        "nothing captured before the period ends"
    );
    d.now = 10_000_000;
    d.serve();
    assert_eq!(d.used(Q_RX), vec![(h0, 1928)]);
    assert_eq!(d.host.captured.len(), 1);
    assert_eq!(d.host.captured[0].1, 1920);
    let data = d.read(p0, 1928);
    assert_eq!(&data[..4], &[1, 2, 3, 4]);
    assert_eq!(le32(&data, 1920), status::OK);
    d.now = 20_000_000;
    d.serve();
    assert_eq!(d.used(Q_RX), vec![(h1, 1928)]);
    assert_eq!(d.read(p1, 1)[0], (1920 % 256 + 1) as u8);
    // A capture buffer on the playback queue and vice versa: BAD_MSG at once.
    let (_, s) = tx(&mut d, STREAM_IN, &[0; 16]);
    d.serve();
    assert_eq!(d.used(Q_TX).len(), 1);
    assert_eq!(le32(&d.read(s, 4), 0), status::BAD_MSG);
    let (_, p) = rx(&mut d, STREAM_OUT, 64);
    d.serve();
    assert_eq!(
        d.used(Q_RX),
        vec![(d.next_desc[Q_RX].wrapping_sub(3) % 16, 8)]
    );
    assert_eq!(le32(&d.read(p, 4), 0), status::BAD_MSG);
    assert_eq!(d.host.captured.len(), 2);
}

#[test]
fn malformed_io_chains_need_reset() {
    // A playback buffer without room for its status.
    let mut d = Driver::new();
    let h = d.buf(&0u32.to_le_bytes(), 4);
    let s = d.buf(&[], 4);
    d.offer(Q_TX, &[(h, 4, false), (s, 4, true)]);
    d.serve();
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    // A capture buffer with no device-writable part at all.
    let mut d = Driver::new();
    let h = d.buf(&1u32.to_le_bytes(), 4);
    d.offer(Q_RX, &[(h, 4, false)]);
    d.serve();
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    // A buffer larger than MAX_XFER: BAD_MSG, nothing read.
    let mut d = Driver::new();
    start(&mut d, STREAM_IN);
    let h = d.buf(&1u32.to_le_bytes(), 4);
    let s = d.buf(&[], 8);
    d.offer(
        Q_RX,
        &[
            (h, 4, false),
            (BASE, MAX_XFER as u32 + 1, true),
            (s, 8, true),
        ],
    );
    d.serve();
    assert_eq!(
        d.used(Q_RX),
        vec![(d.next_desc[Q_RX].wrapping_sub(3) % 16, 8)]
    );
    assert!(d.host.captured.is_empty());
    assert_eq!(d.dev.status() & STATUS_NEEDS_RESET, 0);
}

#[test]
fn state_round_trips_with_buffers_in_flight() {
    let mut d = Driver::new();
    d.now = 777;
    start(&mut d, STREAM_OUT);
    start(&mut d, STREAM_IN);
    tx(&mut d, STREAM_OUT, &[9; 1920]);
    tx(&mut d, STREAM_OUT, &[8; 960]);
    rx(&mut d, STREAM_IN, 960);
    d.serve();
    let saved = d.dev.save_state();
    let ram = d.read(BASE, 4 << 20);
    let mut e = Driver::new();
    e.dev.restore_state(&saved).unwrap();
    assert_eq!(e.dev.save_state(), saved);
    e.ram.write(BASE, &ram).unwrap();
    e.now = d.now;
    e.used_seen = d.used_seen;
    // Both complete the same buffers at the same virtual times.
    for t in [5_000_000, 10_000_777, 15_000_777, 20_000_000] {
        d.now = t;
        e.now = t;
        d.serve();
        e.serve();
        assert_eq!(d.used(Q_TX), e.used(Q_TX), "tx at {t}");
        assert_eq!(d.used(Q_RX), e.used(Q_RX), "rx at {t}");
        assert_eq!(d.dev.save_state(), e.dev.save_state());
    }
    assert_eq!(d.host.played, e.host.played);
    assert_eq!(d.host.played.len(), 2);
    assert_eq!(d.host.captured, e.host.captured);
    // An inconsistent state is refused, and leaves the device as it was.
    let mut bad = Sound::new();
    bad.state.streams[0].prepared.rate = 99;
    let m = Sound::new();
    assert!(DeviceModel::restore_state(&mut Sound::new(), &DeviceModel::save_state(&bad)).is_err());
    assert!(DeviceModel::restore_state(&mut Sound::new(), &[0xff, 0xff]).is_err());
    assert!(DeviceModel::restore_state(&mut Sound::new(), &DeviceModel::save_state(&m)).is_ok());
}

#[test]
fn reset_forgets_streams() {
    let mut d = Driver::new();
    start(&mut d, STREAM_OUT);
    tx(&mut d, STREAM_OUT, &[1; 64]);
    d.serve();
    assert!(d.dev.next_deadline_ns(&d.time()).is_some());
    d.now = 1_000_000;
    d.serve();
    assert_eq!(d.host.played.len(), 1);
    tx(&mut d, STREAM_OUT, &[1; 64]);
    d.serve();
    w(&mut d.dev, &mut d.ram, reg::STATUS, 0);
    assert_eq!(d.dev.next_deadline_ns(&d.time()), None);
    // Everything but the count of bytes played is back to the start.
    let mut fresh = Sound::new();
    fresh.state.played = 64;
    assert_eq!(
        d.dev.save_state(),
        VirtioMmio::new(Box::new(fresh)).save_state()
    );
}

#[test]
fn buffers_held_for_later_still_publish_avail_event() {
    // With event-idx the driver kicks only when its new index passes avail_event: a buffer
    // the device takes and holds (playback waiting for its period) must move it on, or the
    // driver's next buffer is never notified.
    let mut d = Driver::with_features(crate::virtio::queue::F_EVENT_IDX as u32);
    start(&mut d, STREAM_OUT);
    for i in 1..=3u16 {
        tx(&mut d, STREAM_OUT, &[0; 64]);
        d.serve();
        let avail_event = le32(&d.read(used_addr(Q_TX) + 4 + 8 * u64::from(QSIZE), 4), 0) as u16;
        assert_eq!(avail_event, i);
    }
    assert!(d.used(Q_TX).is_empty());
}

#[test]
fn random_programming_never_panics() {
    // Random register writes, random ring contents and buffers for either stream, time moving
    // on: the device may end in DEVICE_NEEDS_RESET (then the driver starts over), never panic
    // or loop.
    let mut d = Driver::with_features(crate::virtio::queue::F_EVENT_IDX as u32);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut restarts = 0;
    for i in 0..50_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = DeviceTime::default();
        if i % 200 == 0 && (d.dev.status() & STATUS_NEEDS_RESET != 0 || i == 0) {
            // Start over: reset, clean rings, both streams running.
            for q in 0..4 {
                d.ram.write(qbase(q), &[0u8; 0x3000]).unwrap();
            }
            bring_up(
                &mut d.dev,
                &mut d.ram,
                (x & u64::from(F_EVENT_IDX_LO)) as u32,
            );
            d.next_desc = [0; 4];
            d.avail = [0; 4];
            d.used_seen = [0; 4];
            start(&mut d, STREAM_OUT);
            start(&mut d, STREAM_IN);
            restarts += 1;
        }
        match x % 64 {
            0 => {
                let off = (x >> 8) & 0x1fc;
                let _ = d.dev.write(off, 4, x >> 32, &t, &mut d.ram);
            }
            1 => {
                let _ = d.dev.read((x >> 8) & 0x1fc, 4, &t);
            }
            2..=4 => {
                // A random word in a ring, then a notify.
                let q = ((x >> 8) % 4) as usize;
                let at = qbase(q) + ((x >> 12) & 0x2ff8);
                d.ram.write(at, &(x >> 3).to_le_bytes()).unwrap();
                w(&mut d.dev, &mut d.ram, reg::QUEUE_NOTIFY, q as u32);
            }
            5..=8 => {
                // A control request of random bytes.
                let mut req = vec![0u8; ((x >> 8) % 40) as usize];
                for (k, b) in req.iter_mut().enumerate() {
                    *b = (x >> (k % 56)) as u8;
                }
                if let Some(c) = req.get_mut(1) {
                    *c &= 0x03;
                }
                let r = d.buf(&req, req.len() as u32);
                let a = d.buf(&[], 96);
                d.offer(Q_CONTROL, &[(r, req.len() as u32, false), (a, 96, true)]);
            }
            _ => {
                if (x >> 20) & 3 != 0 {
                    let stream = ((x >> 9) & 1) as u32;
                    let len = ((x >> 16) % 3000) as u32;
                    if x & 0x100 != 0 {
                        tx(&mut d, stream, &vec![x as u8; len as usize]);
                    } else {
                        rx(&mut d, stream, len);
                    }
                }
            }
        }
        if d.next_buf > DATA + (8 << 20) {
            d.next_buf = DATA;
        }
        d.now += (x >> 40) % 3_000_000;
        d.serve();
    }
    assert!(restarts > 1);
    assert!(d.host.played.len() > 100, "{} played", d.host.played.len());
    assert!(
        d.host.captured.len() > 100,
        "{} captured",
        d.host.captured.len()
    );
}
