//! virtio-sound (virtio 1.2 §5.14) as QEMU 10's `virtio-sound-device` presents it: no jacks,
//! no channel maps, two PCM streams (0 plays, 1 captures), every QEMU format and rate.
//!
//! Time is virtual: a running stream consumes its buffers at the prepared rate, one after the
//! other, and each buffer completes when its last frame has been played (or captured) in
//! virtual time. Played samples go to the host as derived output; captured samples are a host
//! input, fetched through the replay boundary when the buffer completes (logged in record,
//! taken from the log in replay). Nothing depends on host timing.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::queue::{Chain, QueueError, Segment, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use super::{DeviceModel, VirtioIo};
use crate::device::{PcmFormat, SampleFormat, StateError};

/// virtio device id of a sound card.
pub const DEVICE_ID: u32 = 25;

/// Control queue.
pub const Q_CONTROL: usize = 0;
/// Event queue (no events are ever sent: no jacks).
pub const Q_EVENT: usize = 1;
/// Playback buffers.
pub const Q_TX: usize = 2;
/// Capture buffers.
pub const Q_RX: usize = 3;

/// Number of PCM streams (QEMU's default `streams=2`).
pub const STREAMS: u32 = 2;
/// The playback stream.
pub const STREAM_OUT: u32 = 0;
/// The capture stream.
pub const STREAM_IN: u32 = 1;

/// Request codes.
pub mod code {
    /// Jack information.
    pub const JACK_INFO: u32 = 1;
    /// Jack remapping.
    pub const JACK_REMAP: u32 = 2;
    /// PCM stream information.
    pub const PCM_INFO: u32 = 0x100;
    /// Set stream parameters.
    pub const PCM_SET_PARAMS: u32 = 0x101;
    /// Prepare a stream.
    pub const PCM_PREPARE: u32 = 0x102;
    /// Release a stream.
    pub const PCM_RELEASE: u32 = 0x103;
    /// Start a stream.
    pub const PCM_START: u32 = 0x104;
    /// Stop a stream.
    pub const PCM_STOP: u32 = 0x105;
    /// Channel map information.
    pub const CHMAP_INFO: u32 = 0x200;
}

/// Status codes.
pub mod status {
    /// Success.
    pub const OK: u32 = 0x8000;
    /// A malformed request.
    pub const BAD_MSG: u32 = 0x8001;
    /// A valid request the device does not support.
    pub const NOT_SUPP: u32 = 0x8002;
}

/// Stream direction: output.
pub const D_OUTPUT: u8 = 0;
/// Stream direction: input.
pub const D_INPUT: u8 = 1;

/// `VIRTIO_SND_PCM_FMT_*` numbers of the formats offered, in QEMU's set.
const FORMATS: [(u8, SampleFormat); 7] = [
    (3, SampleFormat::S8),
    (4, SampleFormat::U8),
    (5, SampleFormat::S16),
    (6, SampleFormat::U16),
    (17, SampleFormat::S32),
    (18, SampleFormat::U32),
    (19, SampleFormat::F32),
];
/// `VIRTIO_SND_PCM_RATE_*` index → frames per second (all offered, as QEMU does).
const RATES: [u32; 14] = [
    5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000,
    384000,
];
/// `VIRTIO_SND_PCM_FMT_S16`.
pub const FMT_S16: u8 = 5;
/// `VIRTIO_SND_PCM_RATE_44100`.
pub const RATE_44100: u8 = 6;
/// `VIRTIO_SND_PCM_RATE_48000`.
pub const RATE_48000: u8 = 7;
/// Most channels a stream may be set to (QEMU's `AUDIO_MAX_CHANNELS`).
pub const MAX_CHANNELS: u8 = 16;
/// `channels_max` reported by PCM_INFO (QEMU's value for its default parameters).
pub const INFO_CHANNELS_MAX: u8 = 2;

/// Largest PCM payload of one I/O buffer: a larger one is answered BAD_MSG, so a hostile
/// driver cannot make the host copy (or the trace log) gigabytes per request.
pub const MAX_XFER: u64 = 4 << 20;

/// Size of `virtio_snd_pcm_info`.
const PCM_INFO_SIZE: usize = 32;
/// Size of `virtio_snd_pcm_status`.
const PCM_STATUS_SIZE: u64 = 8;
/// Largest item size a PCM_INFO request may ask for (BAD_MSG beyond).
const MAX_INFO_SIZE: u64 = 4096;
/// Largest control request read (the longest, SET_PARAMS, has 24 bytes).
const MAX_REQUEST: usize = 64;

/// Bit mask of the formats offered.
fn formats_mask() -> u64 {
    FORMATS.iter().fold(0, |m, (n, _)| m | 1 << n)
}

/// Bit mask of the rates offered.
fn rates_mask() -> u64 {
    (1 << RATES.len()) - 1
}

/// `virtio_snd_pcm_set_params` without its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Size of the driver's ring buffer.
    pub buffer_bytes: u32,
    /// Size of one period.
    pub period_bytes: u32,
    /// Stream features (none offered).
    pub features: u32,
    /// Channels.
    pub channels: u8,
    /// `VIRTIO_SND_PCM_FMT_*`.
    pub format: u8,
    /// `VIRTIO_SND_PCM_RATE_*`.
    pub rate: u8,
}

impl Default for Params {
    /// QEMU's defaults: 48 kHz, 2 channels, S16, 8 KiB buffer of 2 KiB periods.
    fn default() -> Self {
        Params {
            buffer_bytes: 8192,
            period_bytes: 2048,
            features: 0,
            channels: 2,
            format: FMT_S16,
            rate: RATE_48000,
        }
    }
}

impl Params {
    /// The stream format, if the parameters are supported.
    pub fn pcm_format(&self) -> Option<PcmFormat> {
        let sample = FORMATS.iter().find(|(n, _)| *n == self.format)?.1;
        let rate = *RATES.get(usize::from(self.rate))?;
        (1..=MAX_CHANNELS)
            .contains(&self.channels)
            .then_some(PcmFormat {
                rate,
                channels: self.channels,
                sample,
            })
    }

    /// Status of SET_PARAMS with these parameters (QEMU's checks: channels, format, rate).
    fn check(&self) -> u32 {
        if self.pcm_format().is_some() {
            status::OK
        } else {
            status::NOT_SUPP
        }
    }
}

/// One guest buffer held by a stream: the chain to return, and its PCM payload size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    head: u16,
    /// (address, length, device-writable) of each segment.
    segments: Vec<(u64, u32, bool)>,
    /// PCM bytes: played (tx) or to capture (rx).
    pcm: u32,
}

impl Pending {
    fn from_chain(chain: &Chain, pcm: u32) -> Self {
        Pending {
            head: chain.head,
            segments: chain
                .segments
                .iter()
                .map(|s| (s.addr, s.len, s.write))
                .collect(),
            pcm,
        }
    }

    fn chain(&self) -> Chain {
        Chain {
            head: self.head,
            segments: self
                .segments
                .iter()
                .map(|&(addr, len, write)| Segment { addr, len, write })
                .collect(),
        }
    }
}

/// One PCM stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stream {
    /// Parameters set by the driver (SET_PARAMS).
    set: Params,
    /// Parameters in force since the last PREPARE (QEMU prepares every stream at start).
    prepared: Params,
    /// Started and not stopped.
    running: bool,
    /// Buffers not completed yet, oldest first.
    queue: VecDeque<Pending>,
    /// Virtual ns at which the stream's current run of back-to-back buffers started.
    epoch_ns: u64,
    /// PCM bytes of the buffers completed since `epoch_ns`.
    done_bytes: u64,
}

impl Stream {
    fn format(&self) -> PcmFormat {
        // Validated at PREPARE and at restore; QEMU's default otherwise.
        self.prepared.pcm_format().unwrap_or(PcmFormat {
            rate: 48000,
            channels: 2,
            sample: SampleFormat::S16,
        })
    }

    /// Virtual ns at which `bytes` PCM bytes after the epoch have been consumed.
    fn time_of(&self, bytes: u64) -> u64 {
        let f = self.format();
        let per_sec = u128::from(f.rate) * u128::from(f.frame_bytes());
        let ns = (u128::from(bytes) * 1_000_000_000).div_ceil(per_sec.max(1));
        self.epoch_ns
            .saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// When the oldest buffer completes, if the stream is running.
    fn deadline(&self) -> Option<u64> {
        let head = self.queue.front().filter(|_| self.running)?;
        Some(self.time_of(self.done_bytes.saturating_add(u64::from(head.pcm))))
    }

    /// A buffer arrives or the stream (re)starts at `now`: a stream that ran dry starts a
    /// new run of buffers now.
    fn rebase_if_idle(&mut self, now: u64) {
        if self.queue.is_empty() || now >= self.time_of(self.done_bytes) {
            self.epoch_ns = now;
            self.done_bytes = 0;
        }
    }

    /// Bytes held in buffers behind the oldest one.
    fn queued_behind(&self) -> u64 {
        self.queue.iter().skip(1).map(|p| u64::from(p.pcm)).sum()
    }
}

/// The sound device's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    streams: [Stream; STREAMS as usize],
    /// PCM bytes played since the machine started (not cleared by a device reset): the host
    /// writes each position of the output once.
    played: u64,
}

/// The virtio-sound device.
#[derive(Debug, Default)]
pub struct Sound {
    state: State,
}

impl Sound {
    /// A sound card in reset state.
    pub fn new() -> Self {
        Sound::default()
    }
}

/// Little-endian u32 at `off` of `b` (0 past the end).
fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Write `data` at `offset` of the chain's device-writable area.
fn write_at(
    chain: &Chain,
    ram: &mut rewind_cpu::Ram,
    offset: u64,
    data: &[u8],
) -> Result<(), QueueError> {
    let mut skip = offset;
    let mut rest = data;
    for s in chain.segments.iter().filter(|s| s.write) {
        if rest.is_empty() {
            break;
        }
        let len = u64::from(s.len);
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = rest.len().min((len - skip) as usize);
        ram.write(s.addr.wrapping_add(skip), &rest[..n])
            .map_err(|_| QueueError::BadBuffer {
                addr: s.addr,
                len: s.len,
            })?;
        rest = &rest[n..];
        skip = 0;
    }
    Ok(())
}

/// `virtio_snd_pcm_status`.
fn pcm_status(code: u32, latency: u64) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&code.to_le_bytes());
    b[4..].copy_from_slice(&(latency.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    b
}

impl Sound {
    fn stream(&mut self, id: u32) -> Option<&mut Stream> {
        self.state.streams.get_mut(id as usize)
    }

    /// Answer one control request: (status, payload).
    fn control(
        &mut self,
        req: &[u8],
        room: u64,
        now: u64,
        io: &mut VirtioIo,
    ) -> Result<(u32, Vec<u8>), QueueError> {
        if req.len() < 4 {
            return Ok((status::BAD_MSG, Vec::new()));
        }
        let stream_id = le32(req, 4);
        let bad = (status::BAD_MSG, Vec::new());
        Ok(match le32(req, 0) {
            code::JACK_INFO | code::JACK_REMAP | code::CHMAP_INFO => (status::NOT_SUPP, Vec::new()),
            code::PCM_INFO => {
                if req.len() < 16 {
                    return Ok(bad);
                }
                let (start, count, size) = (
                    u64::from(le32(req, 4)),
                    u64::from(le32(req, 8)),
                    u64::from(le32(req, 12)),
                );
                if size > MAX_INFO_SIZE
                    || room < 4 + size * count
                    || start + count > u64::from(STREAMS)
                {
                    return Ok(bad);
                }
                let mut out = Vec::new();
                for id in start..start + count {
                    let mut info = [0u8; PCM_INFO_SIZE];
                    // hda_fn_nid 0, features 0.
                    info[8..16].copy_from_slice(&formats_mask().to_le_bytes());
                    info[16..24].copy_from_slice(&rates_mask().to_le_bytes());
                    info[24] = if id == u64::from(STREAM_OUT) {
                        D_OUTPUT
                    } else {
                        D_INPUT
                    };
                    info[25] = 1;
                    info[26] = INFO_CHANNELS_MAX;
                    // Each item takes `size` bytes, as the driver asked (zero-padded).
                    let mut item = info.to_vec();
                    item.resize(size as usize, 0);
                    out.extend_from_slice(&item);
                }
                (status::OK, out)
            }
            code::PCM_SET_PARAMS => {
                if req.len() < 24 {
                    return Ok(bad);
                }
                let params = Params {
                    buffer_bytes: le32(req, 8),
                    period_bytes: le32(req, 12),
                    features: le32(req, 16),
                    channels: req[20],
                    format: req[21],
                    rate: req[22],
                };
                let Some(s) = self.stream(stream_id) else {
                    return Ok(bad);
                };
                let st = params.check();
                if st == status::OK {
                    s.set = params;
                }
                (st, Vec::new())
            }
            op @ (code::PCM_PREPARE | code::PCM_RELEASE | code::PCM_START | code::PCM_STOP) => {
                if req.len() < 8 || stream_id >= STREAMS {
                    return Ok(bad);
                }
                match op {
                    code::PCM_PREPARE => {
                        let s = &mut self.state.streams[stream_id as usize];
                        s.prepared = s.set;
                        // A stream re-prepared while running restarts its current buffer.
                        s.epoch_ns = now;
                        s.done_bytes = 0;
                    }
                    code::PCM_START => {
                        let s = &mut self.state.streams[stream_id as usize];
                        if !s.running {
                            s.running = true;
                            s.epoch_ns = now;
                            s.done_bytes = 0;
                        }
                    }
                    _ => {
                        // STOP and RELEASE hand back every buffer the stream holds (as QEMU).
                        self.state.streams[stream_id as usize].running = false;
                        self.flush(stream_id, io)?;
                    }
                }
                (status::OK, Vec::new())
            }
            _ => bad,
        })
    }

    /// Return every buffer of stream `id` unplayed / uncaptured.
    fn flush(&mut self, id: u32, io: &mut VirtioIo) -> Result<(), QueueError> {
        let s = &mut self.state.streams[id as usize];
        let queue = std::mem::take(&mut s.queue);
        s.done_bytes = 0;
        for p in queue {
            let chain = p.chain();
            if id == STREAM_OUT {
                write_at(
                    &chain,
                    io.ram,
                    chain.writable_len().saturating_sub(PCM_STATUS_SIZE),
                    &pcm_status(status::OK, u64::from(p.pcm)),
                )?;
                io.push_used(Q_TX, p.head, PCM_STATUS_SIZE as u32)?;
            } else {
                // Silence, then the status.
                let mut data = vec![0u8; p.pcm as usize];
                data.extend_from_slice(&pcm_status(status::OK, 0));
                write_at(&chain, io.ram, 0, &data)?;
                io.push_used(Q_RX, p.head, data.len() as u32)?;
            }
        }
        Ok(())
    }

    fn serve_control(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        let size = io.queues.get(Q_CONTROL).map_or(0, |q| q.size);
        for _ in 0..size {
            let Some(chain) = io.pop(Q_CONTROL)? else {
                break;
            };
            let room = chain.writable_len();
            if room < 4 {
                // Nowhere to put the answer: the driver broke the protocol.
                return Err(QueueError::BadBuffer {
                    addr: chain.segments.first().map_or(0, |s| s.addr),
                    len: room as u32,
                });
            }
            let req = chain.read_bytes(io.ram, MAX_REQUEST)?;
            let now = io.t.ns;
            let (st, payload) = self.control(&req, room, now, io)?;
            let mut answer = st.to_le_bytes().to_vec();
            answer.extend_from_slice(&payload);
            write_at(&chain, io.ram, 0, &answer)?;
            io.push_used(Q_CONTROL, chain.head, answer.len() as u32)?;
        }
        Ok(())
    }

    /// Take the I/O buffers of queue `q` (tx: stream 0, rx: stream 1).
    fn serve_xfer(&mut self, q: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        let (want, out) = if q == Q_TX {
            (STREAM_OUT, true)
        } else {
            (STREAM_IN, false)
        };
        let size = io.queues.get(q).map_or(0, |q| q.size);
        for _ in 0..size {
            let Some(chain) = io.pop(q)? else {
                break;
            };
            let room = chain.writable_len();
            if room < PCM_STATUS_SIZE {
                // No room for the status: the driver broke the protocol.
                return Err(QueueError::BadBuffer {
                    addr: chain.segments.first().map_or(0, |s| s.addr),
                    len: room as u32,
                });
            }
            let hdr = chain.read_bytes(io.ram, 4)?;
            let pcm = if out {
                chain.readable_len().saturating_sub(4)
            } else {
                room - PCM_STATUS_SIZE
            };
            let valid = hdr.len() == 4 && le32(&hdr, 0) == want && pcm <= MAX_XFER;
            if !valid {
                // QEMU answers a bad I/O message at once with BAD_MSG and the status only.
                let at = if out { room - PCM_STATUS_SIZE } else { 0 };
                write_at(&chain, io.ram, at, &pcm_status(status::BAD_MSG, 0))?;
                io.push_used(q, chain.head, PCM_STATUS_SIZE as u32)?;
                continue;
            }
            let now = io.t.ns;
            let s = &mut self.state.streams[want as usize];
            if s.running {
                s.rebase_if_idle(now);
            }
            s.queue.push_back(Pending::from_chain(&chain, pcm as u32));
        }
        Ok(())
    }

    /// Complete every buffer whose last frame is due by now.
    fn complete_due(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        let now = io.t.ns;
        for id in [STREAM_OUT, STREAM_IN] {
            loop {
                let s = &self.state.streams[id as usize];
                match s.deadline() {
                    Some(d) if d <= now => {}
                    _ => break,
                }
                let format = s.format();
                let latency = s.queued_behind();
                let s = &mut self.state.streams[id as usize];
                let Some(p) = s.queue.pop_front() else { break };
                s.done_bytes = s.done_bytes.saturating_add(u64::from(p.pcm));
                let chain = p.chain();
                if id == STREAM_OUT {
                    let bytes = chain.read_bytes(io.ram, 4 + p.pcm as usize)?;
                    let pcm = bytes.get(4..).unwrap_or(&[]);
                    io.host
                        .audio_playback(io.slot, format, self.state.played, pcm);
                    self.state.played = self.state.played.saturating_add(pcm.len() as u64);
                    let room = chain.writable_len();
                    write_at(
                        &chain,
                        io.ram,
                        room.saturating_sub(PCM_STATUS_SIZE),
                        &pcm_status(status::OK, latency),
                    )?;
                    io.push_used(Q_TX, p.head, PCM_STATUS_SIZE as u32)?;
                } else {
                    let mut data = vec![0u8; p.pcm as usize];
                    io.host.audio_capture(io.slot, format, &mut data);
                    data.extend_from_slice(&pcm_status(status::OK, 0));
                    write_at(&chain, io.ram, 0, &data)?;
                    io.push_used(Q_RX, p.head, data.len() as u32)?;
                }
            }
        }
        Ok(())
    }
}

impl State {
    fn validate(&self) -> Result<(), String> {
        for (i, s) in self.streams.iter().enumerate() {
            if s.prepared.pcm_format().is_none() || s.set.pcm_format().is_none() {
                return Err(format!("stream {i}: unsupported parameters"));
            }
            if s.queue.len() > super::queue::QUEUE_SIZE_MAX as usize {
                return Err(format!("stream {i}: {} buffers queued", s.queue.len()));
            }
            let bad = |p: &Pending| {
                let room: u64 = p
                    .segments
                    .iter()
                    .filter(|s| s.2)
                    .map(|s| u64::from(s.1))
                    .sum();
                let need = if i == STREAM_OUT as usize {
                    0
                } else {
                    u64::from(p.pcm)
                };
                u64::from(p.pcm) > MAX_XFER || room < need + PCM_STATUS_SIZE
            };
            if s.queue.iter().any(bad) {
                return Err(format!("stream {i}: bad buffer"));
            }
        }
        Ok(())
    }
}

impl DeviceModel for Sound {
    fn name(&self) -> &'static str {
        "virtio-sound"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX
    }

    fn queue_count(&self) -> usize {
        4
    }

    /// `virtio_snd_config`: jacks 0, streams 2, chmaps 0.
    fn read_config(&self, offset: u64, size: u8) -> u64 {
        let mut cfg = [0u8; 12];
        cfg[4..8].copy_from_slice(&STREAMS.to_le_bytes());
        let mut v = 0u64;
        for i in 0..u64::from(size) {
            let b = cfg.get((offset + i) as usize).copied().unwrap_or(0);
            v |= u64::from(b) << (8 * i);
        }
        v
    }

    fn reset(&mut self) {
        self.state = State {
            played: self.state.played,
            ..State::default()
        };
    }

    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        match queue {
            Q_CONTROL => self.serve_control(io),
            Q_TX | Q_RX => self.serve_xfer(queue, io),
            // Event buffers wait for events that never come (no jacks).
            _ => Ok(()),
        }
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.state.streams.iter().filter_map(Stream::deadline).min()
    }

    fn on_time(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        self.complete_due(io)
    }

    fn save_state(&self) -> Vec<u8> {
        // Serialising plain structs into a Vec cannot fail.
        postcard::to_allocvec(&self.state).unwrap_or_default()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: State = postcard::from_bytes(bytes).map_err(|e| StateError::Decode {
            device: "virtio-sound",
            problem: e.to_string(),
        })?;
        state.validate().map_err(|problem| StateError::Invalid {
            device: "virtio-sound",
            problem,
        })?;
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
