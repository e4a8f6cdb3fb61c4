//! virtio-blk (virtio 1.2 §5.2): one request queue in front of a raw disk image.
//!
//! Deterministic by construction: nothing about block I/O goes through the replay boundary.
//! - Completions happen at a virtual time derived from the request alone: a request popped at
//!   `t` completes at `max(t + LATENCY, busy_until) + bytes / BANDWIDTH` (one channel: transfers
//!   are serialised, latencies overlap). The guest waits for a slow host disk instead of seeing
//!   host timing.
//! - The data moves when the request is popped (reads fill guest memory, writes update the
//!   storage); the status byte and the used ring are written at completion, and the driver looks
//!   at neither buffer before the used ring says so.
//! - In `record` and `replay` (and with `snapshot=on`) guest writes go to a copy-on-write
//!   overlay of 4 KiB chunks held here; the base image is only read. The overlay and the
//!   requests in flight are part of the device state, so snapshots carry them.
//! - Otherwise (`run` mode), writes go to the image file, as QEMU's do.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::queue::{
    Chain, QueueError, Segment, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, QUEUE_SIZE_MAX,
};
use super::{DeviceModel, VirtioIo};
use crate::device::StateError;
use rewind_cpu::Ram;

/// virtio device id of a block device.
pub const DEVICE_ID: u32 = 2;
/// Bytes in a sector (the unit of `capacity` and request sectors).
pub const SECTOR: u64 = 512;
/// Bytes of the serial number GET_ID returns.
pub const ID_BYTES: usize = 20;

/// Feature: `seg_max` is valid.
pub const F_SEG_MAX: u64 = 1 << 2;
/// Feature: the disk is read-only.
pub const F_RO: u64 = 1 << 5;
/// Feature: `blk_size` is valid.
pub const F_BLK_SIZE: u64 = 1 << 6;
/// Feature: FLUSH requests (legacy name WCE).
pub const F_FLUSH: u64 = 1 << 9;
/// Feature: topology fields are valid.
pub const F_TOPOLOGY: u64 = 1 << 10;
/// Feature: the `writeback` config field is writable.
pub const F_CONFIG_WCE: u64 = 1 << 11;
/// Feature: DISCARD requests.
pub const F_DISCARD: u64 = 1 << 13;
/// Feature: WRITE_ZEROES requests.
pub const F_WRITE_ZEROES: u64 = 1 << 14;

/// Request type: read.
pub const T_IN: u32 = 0;
/// Request type: write.
pub const T_OUT: u32 = 1;
/// Request type: flush.
pub const T_FLUSH: u32 = 4;
/// Request type: device id.
pub const T_GET_ID: u32 = 8;
/// Request type: discard.
pub const T_DISCARD: u32 = 11;
/// Request type: write zeroes.
pub const T_WRITE_ZEROES: u32 = 13;
/// Legacy barrier flag, ignored as QEMU does.
const T_BARRIER: u32 = 0x8000_0000;
/// Discard / write-zeroes flag: the device may unmap.
const WZ_FLAG_UNMAP: u32 = 1;

/// Status: success.
pub const S_OK: u8 = 0;
/// Status: I/O error (out of range, read-only, host error).
pub const S_IOERR: u8 = 1;
/// Status: unsupported request.
pub const S_UNSUPP: u8 = 2;

/// QEMU's default queue size for virtio-blk is 256 and `seg_max` is that minus 2.
pub const SEG_MAX: u32 = 254;
/// QEMU's `BDRV_REQUEST_MAX_SECTORS`: the largest request, and the discard / write-zeroes limit.
pub const MAX_REQUEST_SECTORS: u64 = (i32::MAX as u64) >> 9;
/// Bytes of the configuration space QEMU exposes with DISCARD and WRITE_ZEROES (up to
/// `write_zeroes_may_unmap`); reads past it give all ones.
pub const CONFIG_LEN: u64 = 57;

/// Virtual latency of every request, in ns (a fast SSD's).
pub const LATENCY_NS: u64 = 20_000;
/// Virtual transfer rate of the disk, bytes per second (1 GiB/s).
pub const BYTES_PER_SEC: u64 = 1 << 30;

/// Bytes of an overlay chunk.
pub const CHUNK: u64 = 4096;
/// Requests held in flight at most; a driver that offers more waits for completions.
pub const MAX_IN_FLIGHT: usize = QUEUE_SIZE_MAX as usize;
/// Bytes moved between the image and guest memory per copy step.
const COPY_STEP: usize = 64 << 10;

/// How the drive is set up (from `--drive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveConfig {
    /// The raw image file.
    pub file: PathBuf,
    /// `readonly=on`: the guest sees a read-only disk.
    pub readonly: bool,
    /// Writes go to rewind's overlay, never to the file (`snapshot=on`; always in record and
    /// replay).
    pub overlay: bool,
    /// The drive's `id` (QEMU: the name a `-device ...,drive=ID` refers to).
    pub id: Option<String>,
    /// The device's `serial` property, returned by GET_ID (QEMU's default: empty).
    pub serial: Option<String>,
}

/// QEMU's option lists: `key=value` items split at commas, `,,` standing for a comma.
pub fn split_options(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                cur.push(',');
            }
            ',' => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
}

/// A value written back into an option list (commas doubled).
fn escape(v: &str) -> String {
    v.replace(',', ",,")
}

/// QEMU's boolean spellings.
fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("{key}={v}: expected on or off")),
    }
}

/// Where a `--drive` goes (QEMU's `if=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveInterface {
    /// `if=virtio` (the default here): a virtio-blk-device of its own.
    Virtio,
    /// `if=none`: only through `--device virtio-blk-device,drive=ID`.
    None,
}

impl DriveConfig {
    /// The options of `--drive` in QEMU's spelling:
    /// `file=IMG[,format=raw][,readonly=on][,id=NAME][,if=virtio|none][,snapshot=on][,serial=S]`.
    pub fn parse_drive(s: &str) -> Result<(DriveConfig, DriveInterface), String> {
        let mut cfg = DriveConfig {
            file: PathBuf::new(),
            readonly: false,
            overlay: false,
            id: None,
            serial: None,
        };
        let mut file = None;
        let mut interface = DriveInterface::Virtio;
        for item in split_options(s) {
            if item.is_empty() {
                continue;
            }
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}': expected KEY=VALUE"))?;
            match k {
                "file" if !v.is_empty() => file = Some(PathBuf::from(v)),
                "format" if v == "raw" => {}
                "format" => return Err(format!("format={v}: only raw images are supported")),
                "readonly" => cfg.readonly = parse_bool(k, v)?,
                "snapshot" => cfg.overlay = parse_bool(k, v)?,
                "id" if !v.is_empty() => cfg.id = Some(v.to_string()),
                "serial" => cfg.serial = Some(v.to_string()),
                "if" if v == "virtio" => interface = DriveInterface::Virtio,
                "if" if v == "none" => interface = DriveInterface::None,
                "if" => return Err(format!("if={v}: only if=virtio and if=none exist here")),
                "media" if v == "disk" => {}
                // Host caching modes change nothing the guest sees here.
                "cache" | "aio" => {}
                "discard" if matches!(v, "ignore" | "off") => {}
                _ => return Err(format!("'{item}': unknown or invalid drive option")),
            }
        }
        cfg.file = file.ok_or("a drive needs file=IMAGE")?;
        if interface == DriveInterface::None && cfg.id.is_none() {
            return Err("if=none needs id=NAME (for --device virtio-blk-device,drive=NAME)".into());
        }
        Ok((cfg, interface))
    }

    /// As a trace header stores it: `virtio-blk-device,file=PATH[,readonly=on][,id=..][,serial=..]`.
    pub fn spec(&self) -> String {
        let mut s = format!(
            "virtio-blk-device,file={}",
            escape(&self.file.to_string_lossy())
        );
        if self.readonly {
            s.push_str(",readonly=on");
        }
        if let Some(id) = &self.id {
            s.push_str(&format!(",id={}", escape(id)));
        }
        if let Some(serial) = &self.serial {
            s.push_str(&format!(",serial={}", escape(serial)));
        }
        s
    }

    /// Reads back [`DriveConfig::spec`] (writes go to the overlay: see [`DriveConfig::overlay`]).
    pub fn from_spec(spec: &str) -> Option<DriveConfig> {
        let rest = spec.strip_prefix("virtio-blk-device,")?;
        let (mut cfg, interface) = DriveConfig::parse_drive(rest).ok()?;
        cfg.overlay = true;
        (interface == DriveInterface::Virtio).then_some(cfg)
    }
}

/// A request popped and not completed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    /// Chain head (goes to the used ring).
    head: u16,
    /// Guest address of the status byte.
    status_addr: u64,
    /// Status to write.
    status: u8,
    /// Length for the used ring (all device-writable bytes, as QEMU reports).
    used_len: u32,
    /// Virtual ns of completion.
    done_ns: u64,
}

/// One overlay chunk: written data, or zeroes (write-zeroes of a whole chunk).
type Chunk = Option<Box<[u8]>>;

/// The guest-visible state besides the overlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// Capacity in sectors (checked against the image on restore).
    sectors: u64,
    /// Read-only (checked on restore).
    readonly: bool,
    /// The `writeback` config field.
    wce: u8,
    /// When the disk's channel is free again.
    busy_until: u64,
    /// Requests waiting for their completion time, in completion order.
    in_flight: VecDeque<InFlight>,
    /// Requests were left in the ring because [`MAX_IN_FLIGHT`] was reached.
    backlog: bool,
    /// Indices of the overlay chunks that follow, in order; `true` = data chunk.
    chunks: Vec<(u64, bool)>,
}

/// The block device.
#[derive(Debug)]
pub struct Blk {
    /// The base image (a host handle: kept across restores).
    image: Arc<File>,
    /// Bytes in the image file when opened.
    image_len: u64,
    /// Capacity in sectors: the image size rounded up, as QEMU's block layer does.
    sectors: u64,
    readonly: bool,
    /// Writes go to the file instead of the overlay.
    write_through: bool,
    serial: Vec<u8>,
    wce: u8,
    busy_until: u64,
    in_flight: VecDeque<InFlight>,
    backlog: bool,
    overlay: BTreeMap<u64, Chunk>,
}

/// Why a drive's image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// Opening failed.
    #[error("{path}: {problem}")]
    Open {
        /// The image.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl Blk {
    /// Open the image of `cfg` (read-only unless writes go to it).
    pub fn open(cfg: &DriveConfig) -> Result<Self, DriveError> {
        let err = |problem: String| DriveError::Open {
            path: cfg.file.clone(),
            problem,
        };
        let meta = std::fs::metadata(&cfg.file).map_err(|e| {
            err(if e.kind() == std::io::ErrorKind::NotFound {
                "no such file".into()
            } else {
                e.to_string()
            })
        })?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        let write_through = !cfg.readonly && !cfg.overlay;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(write_through)
            .open(&cfg.file)
            .map_err(|e| err(format!("cannot open: {e}")))?;
        let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
        Ok(Self::with_file(
            Arc::new(file),
            len,
            cfg.readonly,
            write_through,
            cfg.serial.as_deref().unwrap_or(""),
        ))
    }

    /// A device on an open image of `len` bytes.
    pub fn with_file(
        image: Arc<File>,
        len: u64,
        readonly: bool,
        write_through: bool,
        serial: &str,
    ) -> Self {
        Blk {
            image,
            image_len: len,
            sectors: len.div_ceil(SECTOR),
            readonly,
            write_through,
            serial: serial.as_bytes().to_vec(),
            wce: 1,
            busy_until: 0,
            in_flight: VecDeque::new(),
            backlog: false,
            overlay: BTreeMap::new(),
        }
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes held by the overlay's data chunks.
    pub fn overlay_bytes(&self) -> u64 {
        self.overlay.values().flatten().count() as u64 * CHUNK
    }

    fn config_bytes(&self) -> [u8; 64] {
        let mut c = [0u8; 64];
        c[0..8].copy_from_slice(&self.sectors.to_le_bytes());
        c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        c[32] = self.wce;
        c[34..36].copy_from_slice(&1u16.to_le_bytes());
        let max = MAX_REQUEST_SECTORS as u32;
        c[36..40].copy_from_slice(&max.to_le_bytes());
        c[40..44].copy_from_slice(&1u32.to_le_bytes());
        c[44..48].copy_from_slice(&1u32.to_le_bytes());
        c[48..52].copy_from_slice(&max.to_le_bytes());
        c[52..56].copy_from_slice(&1u32.to_le_bytes());
        c[56] = 1;
        c
    }

    /// Read `buf.len()` bytes of the disk at byte `offset` (inside the capacity).
    fn read_disk(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let index = at / CHUNK;
            let within = (at % CHUNK) as usize;
            let n = (CHUNK as usize - within).min(buf.len() - done);
            match self.overlay.get(&index) {
                Some(Some(data)) => buf[done..done + n].copy_from_slice(&data[within..within + n]),
                Some(None) => buf[done..done + n].fill(0),
                None => {
                    // A run of chunks not in the overlay: one read from the base image.
                    let mut end = done + n;
                    while end < buf.len() {
                        let next = (offset + end as u64) / CHUNK;
                        if self.overlay.contains_key(&next) {
                            break;
                        }
                        end = (end + CHUNK as usize).min(buf.len());
                    }
                    self.read_base(at, &mut buf[done..end])?;
                    done = end;
                    continue;
                }
            }
            done += n;
        }
        Ok(())
    }

    /// Read the image file; bytes past its end (the last partial sector) read as zeroes.
    fn read_base(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let avail = self.image_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        self.image.read_exact_at(&mut buf[..avail], offset)?;
        buf[avail..].fill(0);
        Ok(())
    }

    /// Write `data` at byte `offset` (`None`: zeroes of length `len`).
    fn write_disk(&mut self, offset: u64, data: Option<&[u8]>, len: u64) -> std::io::Result<()> {
        if self.write_through {
            return match data {
                Some(d) => self.image.write_all_at(d, offset),
                None => {
                    let zeros = vec![0u8; COPY_STEP.min(len as usize)];
                    let mut done = 0u64;
                    while done < len {
                        let n = (len - done).min(zeros.len() as u64) as usize;
                        self.image.write_all_at(&zeros[..n], offset + done)?;
                        done += n as u64;
                    }
                    Ok(())
                }
            };
        }
        let mut done = 0u64;
        while done < len {
            let at = offset + done;
            let index = at / CHUNK;
            let within = (at % CHUNK) as usize;
            let n = (CHUNK - within as u64).min(len - done) as usize;
            let whole = n == CHUNK as usize;
            match data {
                None if whole => {
                    self.overlay.insert(index, None);
                }
                _ => {
                    if !matches!(self.overlay.get(&index), Some(Some(_))) {
                        // A new data chunk: from the base image unless wholly overwritten
                        // or zeroed before.
                        let zero = self.overlay.contains_key(&index);
                        let mut c = vec![0u8; CHUNK as usize].into_boxed_slice();
                        if !zero && !whole {
                            self.read_base(index * CHUNK, &mut c)?;
                        }
                        self.overlay.insert(index, Some(c));
                    }
                    let Some(Some(chunk)) = self.overlay.get_mut(&index) else {
                        return Err(std::io::Error::other("overlay chunk missing"));
                    };
                    match data {
                        Some(d) => chunk[within..within + n]
                            .copy_from_slice(&d[done as usize..done as usize + n]),
                        None => chunk[within..within + n].fill(0),
                    }
                    // Chunks of zeroes (fresh file systems, `dd if=/dev/zero`) cost nothing
                    // in memory or in snapshots.
                    if chunk.iter().all(|&b| b == 0) {
                        self.overlay.insert(index, None);
                    }
                }
            }
            done += n as u64;
        }
        Ok(())
    }

    /// The completion time of a request popped at `now` moving `bytes`.
    fn schedule(&mut self, now: u64, bytes: u64) -> u64 {
        let transfer = (u128::from(bytes) * 1_000_000_000 / u128::from(BYTES_PER_SEC)) as u64;
        let start = now.saturating_add(LATENCY_NS).max(self.busy_until);
        let done = start.saturating_add(transfer);
        self.busy_until = done;
        done
    }

    /// Take requests from the queue while there is room in flight.
    fn drain(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        self.backlog = false;
        let size = io.queues.get(queue).map_or(0, |q| q.size);
        for _ in 0..size {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.backlog = true;
                break;
            }
            let Some(chain) = io.pop(queue)? else { break };
            let (status_addr, status, bytes) = self.execute(&chain, io.ram)?;
            let done_ns = self.schedule(io.t.ns, bytes);
            self.in_flight.push_back(InFlight {
                head: chain.head,
                status_addr,
                status,
                used_len: chain.writable_len().min(u64::from(u32::MAX)) as u32,
                done_ns,
            });
        }
        Ok(())
    }

    /// Carry out one request: returns where its status byte goes, the status, and the bytes
    /// moved (for its completion time). A malformed chain is a [`QueueError`].
    fn execute(&mut self, chain: &Chain, ram: &mut Ram) -> Result<(u64, u8, u64), QueueError> {
        let readable: Vec<Segment> = chain
            .segments
            .iter()
            .filter(|s| !s.write)
            .copied()
            .collect();
        let mut writable: Vec<Segment> =
            chain.segments.iter().filter(|s| s.write).copied().collect();
        if readable.is_empty() || writable.is_empty() {
            return Err(QueueError::Request("missing headers"));
        }
        let header = chain.read_bytes(ram, 16)?;
        if header.len() < 16 {
            return Err(QueueError::Request("request header too short"));
        }
        let Some(last) = writable.last_mut() else {
            return Err(QueueError::Request("missing headers"));
        };
        if last.len == 0 {
            return Err(QueueError::Request("status byte missing"));
        }
        last.len -= 1;
        let status_addr = last.addr + u64::from(last.len);
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sector = u64::from_le_bytes([
            header[8], header[9], header[10], header[11], header[12], header[13], header[14],
            header[15],
        ]);
        // The payload: readable bytes after the header, writable bytes before the status.
        let out = skip(&readable, 16);
        let in_len: u64 = writable.iter().map(|s| u64::from(s.len)).sum();
        let out_len: u64 = out.iter().map(|s| u64::from(s.len)).sum();
        let (status, bytes) = match kind & !(T_OUT | T_BARRIER) {
            T_IN if kind & T_OUT == 0 => {
                (self.read_request(sector, &writable, in_len, ram), in_len)
            }
            T_IN => (self.write_request(sector, &out, out_len, ram), out_len),
            T_FLUSH => {
                if self.write_through && self.image.sync_data().is_err() {
                    (S_IOERR, 0)
                } else {
                    (S_OK, 0)
                }
            }
            T_GET_ID => {
                // As QEMU: the serial and its NUL, cut to the buffer and to 20 bytes.
                let mut id = self.serial.clone();
                id.push(0);
                id.truncate(ID_BYTES.min(in_len as usize));
                write_segments(&writable, &id, ram)?;
                (S_OK, 0)
            }
            k if k == T_DISCARD & !T_OUT || k == T_WRITE_ZEROES & !T_OUT => {
                let zeroes = kind & !T_BARRIER == T_WRITE_ZEROES;
                if kind & T_OUT == 0 || out_len > 16 {
                    (S_UNSUPP, 0)
                } else {
                    let seg = read_segments(&out, 16, ram)?;
                    if seg.len() < 16 {
                        return Err(QueueError::Request("discard/write-zeroes header too short"));
                    }
                    (self.discard_or_zero(&seg, zeroes), 0)
                }
            }
            _ => (S_UNSUPP, 0),
        };
        Ok((status_addr, status, bytes))
    }

    /// Whether `len` bytes at `sector` are a valid request range (QEMU's `sect_range_ok`).
    fn range_ok(&self, sector: u64, len: u64) -> bool {
        let n = len / SECTOR;
        len & (SECTOR - 1) == 0
            && n <= MAX_REQUEST_SECTORS
            && sector <= self.sectors
            && n <= self.sectors - sector
    }

    fn read_request(&mut self, sector: u64, segs: &[Segment], len: u64, ram: &mut Ram) -> u8 {
        if !self.range_ok(sector, len) {
            return S_IOERR;
        }
        let mut at = sector * SECTOR;
        let mut buf = Vec::new();
        for s in segs {
            let mut done = 0u64;
            while done < u64::from(s.len) {
                let n = (u64::from(s.len) - done).min(COPY_STEP as u64) as usize;
                buf.resize(n, 0);
                if self.read_disk(at, &mut buf).is_err() {
                    return S_IOERR;
                }
                // Segments were checked to lie in RAM when the chain was walked.
                if ram.write(s.addr + done, &buf).is_err() {
                    return S_IOERR;
                }
                at += n as u64;
                done += n as u64;
            }
        }
        S_OK
    }

    fn write_request(&mut self, sector: u64, segs: &[Segment], len: u64, ram: &mut Ram) -> u8 {
        if !self.range_ok(sector, len) || self.readonly {
            return S_IOERR;
        }
        let mut at = sector * SECTOR;
        let mut buf = Vec::new();
        for s in segs {
            let mut done = 0u64;
            while done < u64::from(s.len) {
                let n = (u64::from(s.len) - done).min(COPY_STEP as u64) as usize;
                buf.resize(n, 0);
                if ram.read(s.addr + done, &mut buf).is_err()
                    || self.write_disk(at, Some(&buf), n as u64).is_err()
                {
                    return S_IOERR;
                }
                at += n as u64;
                done += n as u64;
            }
        }
        S_OK
    }

    fn discard_or_zero(&mut self, seg: &[u8], zeroes: bool) -> u8 {
        let sector = u64::from_le_bytes([
            seg[0], seg[1], seg[2], seg[3], seg[4], seg[5], seg[6], seg[7],
        ]);
        let count = u64::from(u32::from_le_bytes([seg[8], seg[9], seg[10], seg[11]]));
        let flags = u32::from_le_bytes([seg[12], seg[13], seg[14], seg[15]]);
        if count > MAX_REQUEST_SECTORS || !self.range_ok(sector, count * SECTOR) {
            return S_IOERR;
        }
        if flags & !WZ_FLAG_UNMAP != 0 || (!zeroes && flags & WZ_FLAG_UNMAP != 0) {
            return S_UNSUPP;
        }
        if self.readonly {
            return S_IOERR;
        }
        if !zeroes {
            // QEMU's default `discard=ignore`: the data stays.
            return S_OK;
        }
        match self.write_disk(sector * SECTOR, None, count * SECTOR) {
            Ok(()) => S_OK,
            Err(_) => S_IOERR,
        }
    }

    /// Complete the requests whose time has come.
    fn complete_due(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        while let Some(r) = self.in_flight.front() {
            if r.done_ns > io.t.ns {
                break;
            }
            let r = r.clone();
            self.in_flight.pop_front();
            io.ram
                .write(r.status_addr, &[r.status])
                .map_err(|_| QueueError::BadBuffer {
                    addr: r.status_addr,
                    len: 1,
                })?;
            io.push_used(0, r.head, r.used_len)?;
        }
        if self.backlog {
            self.drain(0, io)?;
        }
        Ok(())
    }

    fn saved(&self) -> Saved {
        Saved {
            sectors: self.sectors,
            readonly: self.readonly,
            wce: self.wce,
            busy_until: self.busy_until,
            in_flight: self.in_flight.clone(),
            backlog: self.backlog,
            chunks: self
                .overlay
                .iter()
                .map(|(i, c)| (*i, c.is_some()))
                .collect(),
        }
    }
}

/// Requests in flight in a saved virtio-blk state (see [`super::saved_model_state`]).
pub fn saved_in_flight(model: &[u8]) -> Option<usize> {
    postcard::take_from_bytes::<Saved>(model)
        .ok()
        .map(|(s, _)| s.in_flight.len())
}

/// The segments after the first `n` bytes.
fn skip(segs: &[Segment], mut n: u64) -> Vec<Segment> {
    let mut out = Vec::new();
    for s in segs {
        let len = u64::from(s.len);
        if n >= len {
            n -= len;
            continue;
        }
        out.push(Segment {
            addr: s.addr + n,
            len: (len - n) as u32,
            write: s.write,
        });
        n = 0;
    }
    out
}

/// Up to `max` bytes of `segs`.
fn read_segments(segs: &[Segment], max: usize, ram: &Ram) -> Result<Vec<u8>, QueueError> {
    let mut out = Vec::new();
    for s in segs {
        let n = (s.len as usize).min(max - out.len());
        if n == 0 {
            break;
        }
        let start = out.len();
        out.resize(start + n, 0);
        ram.read(s.addr, &mut out[start..])
            .map_err(|_| QueueError::BadBuffer {
                addr: s.addr,
                len: s.len,
            })?;
    }
    Ok(out)
}

/// Copy `data` into `segs`, in order.
fn write_segments(segs: &[Segment], data: &[u8], ram: &mut Ram) -> Result<(), QueueError> {
    let mut rest = data;
    for s in segs {
        if rest.is_empty() {
            break;
        }
        let n = rest.len().min(s.len as usize);
        ram.write(s.addr, &rest[..n])
            .map_err(|_| QueueError::BadBuffer {
                addr: s.addr,
                len: s.len,
            })?;
        rest = &rest[n..];
    }
    Ok(())
}

impl DeviceModel for Blk {
    fn name(&self) -> &'static str {
        "virtio-blk"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        let ro = if self.readonly { F_RO } else { 0 };
        F_VERSION_1
            | F_INDIRECT_DESC
            | F_EVENT_IDX
            | F_SEG_MAX
            | F_BLK_SIZE
            | F_FLUSH
            | F_TOPOLOGY
            | F_CONFIG_WCE
            | F_DISCARD
            | F_WRITE_ZEROES
            | ro
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn read_config(&self, offset: u64, size: u8) -> u64 {
        let n = u64::from(size);
        if offset + n > CONFIG_LEN {
            return u64::MAX >> (64 - 8 * n);
        }
        let c = self.config_bytes();
        let mut b = [0u8; 8];
        b[..size as usize].copy_from_slice(&c[offset as usize..(offset + n) as usize]);
        u64::from_le_bytes(b)
    }

    fn write_config(&mut self, offset: u64, size: u8, value: u64) {
        // Only `writeback` is writable (CONFIG_WCE); it changes nothing else here.
        if offset == 32 && size == 1 {
            self.wce = u8::from(value & 0xff != 0);
        }
    }

    fn reset(&mut self) {
        // The disk's content (the overlay) survives a device reset; requests do not.
        self.in_flight.clear();
        self.backlog = false;
        self.busy_until = 0;
        self.wce = 1;
    }

    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        self.drain(queue, io)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.in_flight.front().map(|r| r.done_ns)
    }

    fn on_time(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        self.complete_due(io)
    }

    /// postcard of the state, then the data chunks back to back (4 KiB each).
    fn save_state(&self) -> Vec<u8> {
        let saved = self.saved();
        // Serialising plain structs into a Vec cannot fail; an empty state would fail to restore.
        let mut out = postcard::to_allocvec(&saved).unwrap_or_default();
        out.reserve(self.overlay_bytes() as usize);
        for data in self.overlay.values().flatten() {
            out.extend_from_slice(data);
        }
        out
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let invalid = |problem: String| StateError::Invalid {
            device: "virtio-blk",
            problem,
        };
        let (saved, mut rest): (Saved, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|e| StateError::Decode {
                device: "virtio-blk",
                problem: e.to_string(),
            })?;
        if saved.sectors != self.sectors || saved.readonly != self.readonly {
            return Err(invalid(format!(
                "saved for a {}-sector{} disk, this one has {} sectors{}",
                saved.sectors,
                if saved.readonly { " read-only" } else { "" },
                self.sectors,
                if self.readonly { " (read-only)" } else { "" }
            )));
        }
        if saved.in_flight.len() > MAX_IN_FLIGHT {
            return Err(invalid(format!(
                "{} requests in flight",
                saved.in_flight.len()
            )));
        }
        if saved
            .in_flight
            .iter()
            .any(|r| u32::from(r.head) >= QUEUE_SIZE_MAX || r.status > S_UNSUPP)
        {
            return Err(invalid("bad request in flight".into()));
        }
        if saved
            .in_flight
            .iter()
            .zip(saved.in_flight.iter().skip(1))
            .any(|(a, b)| a.done_ns > b.done_ns)
        {
            return Err(invalid("requests in flight out of order".into()));
        }
        if self.write_through && !saved.chunks.is_empty() {
            return Err(invalid("overlay chunks for a disk written in place".into()));
        }
        let limit = (self.sectors * SECTOR).div_ceil(CHUNK);
        let mut overlay = BTreeMap::new();
        let mut prev = None;
        for &(index, data) in &saved.chunks {
            if index >= limit || prev.is_some_and(|p| p >= index) {
                return Err(invalid(format!(
                    "overlay chunk {index} out of range or order"
                )));
            }
            prev = Some(index);
            let chunk = if data {
                if rest.len() < CHUNK as usize {
                    return Err(invalid("overlay data cut short".into()));
                }
                let (c, r) = rest.split_at(CHUNK as usize);
                rest = r;
                Some(Box::from(c))
            } else {
                None
            };
            overlay.insert(index, chunk);
        }
        if !rest.is_empty() {
            return Err(invalid(format!("{} bytes after the overlay", rest.len())));
        }
        self.wce = saved.wce;
        self.busy_until = saved.busy_until;
        self.in_flight = saved.in_flight;
        self.backlog = saved.backlog;
        self.overlay = overlay;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
