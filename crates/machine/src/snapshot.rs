//! Machine snapshots: the whole machine (hart, RAM, devices, virtual clock, output hash) plus
//! the replay position, in memory (RAM pages shared between snapshots while unchanged) and as
//! a versioned file (postcard, zstd, CRC32).
//!
//! File layout: magic `RWNDSNAP`, u16 format version, u16 reserved (0), u32 CRC32 of the
//! compressed payload, u64 payload length, then the zstd-compressed postcard encoding of
//! [`SnapshotFile`]. All integers little-endian.

use std::sync::Arc;

use rewind_cpu::hart::HartState;
use rewind_cpu::ram::{PageData, RamImage, PAGE_SIZE};
use rewind_log::TraceHeader;
use rewind_replay::ReplayPosition;
use serde::{Deserialize, Serialize};

use crate::bus::BusState;
use crate::sched::SchedState;

/// First 8 bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RWNDSNAP";
/// Snapshot format version written and read by this build (3: the hart's CSRs gained stimecmp,
/// the Sdtrig triggers and mcontext; 4: devices saved per slot through `Persist`, virtio-mmio
/// transports; 5: a virtio transport's registers and its device model's state saved apart;
/// 6: every hart and the hart scheduler).
pub const SNAPSHOT_VERSION: u16 = 6;
/// Bytes before the payload.
const PREFIX_LEN: usize = 24;
/// Largest accepted decompressed payload (64 GiB of RAM plus state).
const MAX_PAYLOAD_RAW: u64 = (64 << 30) + (64 << 20);

/// The whole machine at one instruction boundary (taken at a checkpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Every hart, by hart id.
    pub harts: Vec<HartState>,
    /// Whose turn it is.
    pub sched: SchedState,
    /// All of RAM.
    pub ram: RamImage,
    /// Devices, clock, ROM.
    pub bus: BusState,
    /// Running hash of the serial output so far.
    pub out_hash: u64,
    /// Bytes of serial output so far.
    pub output_len: u64,
    /// Where the replay stands (replay mode only).
    pub replay: Option<ReplayPosition>,
    /// [`trace_id`] of the trace being replayed (replay mode only; set for a recording's
    /// snapshot when it is loaded from the sidecar file).
    pub trace_id: Option<String>,
    /// Record mode: sequence number of the `SnapshotMark` written to the trace when it was
    /// taken (how the sidecar file finds its replay position).
    pub mark: Option<u64>,
}

impl Snapshot {
    /// Instruction count at which it was taken.
    pub fn icount(&self) -> u64 {
        self.harts
            .iter()
            .fold(0u64, |sum, h| sum.wrapping_add(h.icount))
    }
}

/// Identity of a recording: the BLAKE3 of its header (which holds the configuration, image
/// hashes and creation time), so a snapshot cannot be applied to another recording's replay.
pub fn trace_id(header: &TraceHeader) -> String {
    let json = serde_json::to_vec(header).unwrap_or_default();
    blake3::hash(&json).to_hex().to_string()
}

/// The machine's state (everything but RAM and the replay position) as every snapshot
/// encoding stores it: the snapshot file and the sidecar's records share this one field list.
#[derive(Serialize, Deserialize)]
pub(crate) struct MachineState {
    pub(crate) harts: Vec<HartState>,
    pub(crate) sched: SchedState,
    pub(crate) bus: BusState,
    pub(crate) out_hash: u64,
    pub(crate) output_len: u64,
}

impl MachineState {
    /// The state part of `s`.
    pub(crate) fn of(s: &Snapshot) -> Self {
        MachineState {
            harts: s.harts.clone(),
            sched: s.sched.clone(),
            bus: s.bus.clone(),
            out_hash: s.out_hash,
            output_len: s.output_len,
        }
    }

    /// A snapshot of this state with the other components.
    pub(crate) fn into_snapshot(
        self,
        ram: RamImage,
        replay: Option<ReplayPosition>,
        trace_id: Option<String>,
        mark: Option<u64>,
    ) -> Snapshot {
        Snapshot {
            harts: self.harts,
            sched: self.sched,
            ram,
            bus: self.bus,
            out_hash: self.out_hash,
            output_len: self.output_len,
            replay,
            trace_id,
            mark,
        }
    }
}

/// What a snapshot file holds (RAM as its non-zero pages).
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    state: MachineState,
    replay: Option<ReplayPosition>,
    trace_id: Option<String>,
    mark: Option<u64>,
    ram_base: u64,
    ram_pages: u64,
    pages: Vec<(u64, Vec<u8>)>,
}

/// A snapshot that cannot be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The data does not start with `RWNDSNAP`.
    #[error("not a rewind snapshot: {}", crate::file_kind::describe(.0))]
    BadMagic(Vec<u8>),
    /// A format version this build does not read.
    #[error("unsupported snapshot format version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The data ends early.
    #[error("snapshot is truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes present.
        len: u64,
        /// Bytes needed.
        needed: u64,
    },
    /// The payload's CRC32 does not match.
    #[error("snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Stored CRC32.
        stored: u32,
        /// Computed CRC32.
        computed: u32,
    },
    /// The payload cannot be decoded.
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
    /// The snapshot was taken while replaying another recording (or outside replay).
    #[error("snapshot belongs to a different trace (snapshot: {snapshot}, trace: {trace})")]
    DifferentTrace {
        /// The snapshot's trace id (or "none").
        snapshot: String,
        /// The machine's trace id (or "none").
        trace: String,
    },
    /// A recording machine cannot go back: its trace already holds what came after.
    #[error("cannot restore a snapshot while recording")]
    Recording,
    /// The snapshot holds another number of harts than the machine has.
    #[error("the snapshot holds {saved} harts, the machine has {machine}")]
    Harts {
        /// Harts in the snapshot.
        saved: usize,
        /// Harts of the machine.
        machine: usize,
    },
    /// The saved scheduler state does not fit this machine.
    #[error("the snapshot's hart scheduler state is invalid: {0}")]
    Scheduler(String),
    /// The RAM layout differs from the machine's.
    #[error(transparent)]
    RamLayout(#[from] rewind_cpu::ram::RamLayoutMismatch),
    /// The saved device state does not fit this machine or breaks an invariant.
    #[error(transparent)]
    State(#[from] rewind_devices::StateError),
    /// The trace cannot be positioned where the snapshot was taken.
    #[error(transparent)]
    Seek(#[from] rewind_log::LogError),
    /// A snapshot file may not be written there (it exists, it is not a regular file, or it
    /// is a file the session must not overwrite).
    #[error("{}: {why}", path.display())]
    Refused {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// Reading or writing a snapshot file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Encode a snapshot in the file format.
pub fn encode(s: &Snapshot) -> Result<Vec<u8>, SnapshotError> {
    let pages = s
        .ram
        .pages()
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i as u64, p.to_vec())))
        .collect();
    let file = SnapshotFile {
        state: MachineState::of(s),
        replay: s.replay.clone(),
        trace_id: s.trace_id.clone(),
        mark: s.mark,
        ram_base: s.ram.base(),
        ram_pages: s.ram.pages().len() as u64,
        pages,
    };
    let raw = postcard::to_allocvec(&file).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    let comp = zstd::bulk::compress(&raw, 3).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    let mut out = Vec::with_capacity(PREFIX_LEN + comp.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&comp).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&comp);
    Ok(out)
}

/// Decode a snapshot written by [`encode`], checking magic, version and checksum.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let m = bytes.len().min(8);
    if bytes[..m] != SNAPSHOT_MAGIC[..m] {
        return Err(SnapshotError::BadMagic(bytes[..m].to_vec()));
    }
    if bytes.len() < PREFIX_LEN {
        return Err(SnapshotError::Truncated {
            len: bytes.len() as u64,
            needed: PREFIX_LEN as u64,
        });
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::UnsupportedVersion {
            found: version,
            supported: SNAPSHOT_VERSION,
        });
    }
    let stored = u32_at(12);
    let raw_len = u64::from(u32_at(16)) | u64::from(u32_at(20)) << 32;
    let comp = &bytes[PREFIX_LEN..];
    let computed = crc32fast::hash(comp);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    if raw_len > MAX_PAYLOAD_RAW {
        return Err(SnapshotError::Corrupt(format!(
            "payload length {raw_len} exceeds the limit of {MAX_PAYLOAD_RAW}"
        )));
    }
    // Streamed, so a wrong declared length never drives a large allocation by itself.
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(comp)
        .and_then(|d| {
            std::io::Read::read_to_end(&mut std::io::Read::take(d, raw_len + 1), &mut raw)
        })
        .map_err(|e| SnapshotError::Corrupt(format!("cannot decompress: {e}")))?;
    if raw.len() as u64 != raw_len {
        return Err(SnapshotError::Corrupt(format!(
            "payload is {} bytes, the header says {raw_len}",
            raw.len()
        )));
    }
    let file: SnapshotFile =
        postcard::from_bytes(&raw).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    let n = usize::try_from(file.ram_pages)
        .ok()
        .filter(|&n| n as u64 <= MAX_PAYLOAD_RAW / PAGE_SIZE)
        .ok_or_else(|| SnapshotError::Corrupt(format!("{} RAM pages", file.ram_pages)))?;
    let mut pages: Vec<Option<PageData>> = vec![None; n];
    for (i, data) in file.pages {
        let slot = usize::try_from(i)
            .ok()
            .and_then(|i| pages.get_mut(i))
            .ok_or_else(|| SnapshotError::Corrupt(format!("RAM page {i} out of range")))?;
        let page: [u8; PAGE_SIZE as usize] = data
            .try_into()
            .map_err(|_| SnapshotError::Corrupt(format!("RAM page {i} has a wrong size")))?;
        *slot = Some(Arc::new(page));
    }
    let ram = RamImage::from_pages(file.ram_base, pages);
    Ok(file
        .state
        .into_snapshot(ram, file.replay, file.trace_id, file.mark))
}

/// Write a snapshot file.
pub fn save_file(path: &std::path::Path, s: &Snapshot) -> Result<(), SnapshotError> {
    let bytes = encode(s)?;
    std::fs::write(path, bytes).map_err(|source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Write a snapshot file for a client that is not trusted with the file system (a monitor
/// client): `path` must not exist unless `overwrite`, and even then must be a regular file
/// and none of `protected` (the trace, its snapshot file). A new file is created exclusively
/// (no race with another writer); an overwrite goes through a temporary file in the same
/// directory and a rename, so a device node or FIFO is never opened.
pub fn save_file_checked(
    path: &std::path::Path,
    s: &Snapshot,
    overwrite: bool,
    protected: &[&std::path::Path],
) -> Result<(), SnapshotError> {
    use std::io::Write;
    let refused = |why: String| SnapshotError::Refused {
        path: path.to_path_buf(),
        why,
    };
    let io = |source| SnapshotError::Io {
        path: path.to_path_buf(),
        source,
    };
    for p in protected {
        if same_file(path, p) {
            return Err(refused(format!(
                "refusing to overwrite {}, which this session is using",
                p.display()
            )));
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) if !overwrite => {
            return Err(refused(
                "file exists (say \"force\": true to replace it)".into(),
            ))
        }
        Ok(_) => {
            let meta = std::fs::metadata(path).map_err(io)?;
            if !meta.file_type().is_file() {
                return Err(refused("not a regular file: never replaced".into()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let bytes = encode(s)?;
    if !overwrite {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        return f.write_all(&bytes).map_err(io);
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Whether `a` and `b` name the same file (same path, or the same inode when both exist).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if a == b {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

/// Read a snapshot file.
pub fn load_file(path: &std::path::Path) -> Result<Snapshot, SnapshotError> {
    // A regular file no larger than the largest snapshot (compressed data is never much
    // larger than its payload): never a device node or FIFO.
    let max = PREFIX_LEN as u64 + MAX_PAYLOAD_RAW + (MAX_PAYLOAD_RAW >> 7) + 4096;
    let bytes = rewind_log::hostfile::read_regular(path, max).map_err(|p| SnapshotError::Io {
        path: path.to_path_buf(),
        source: p.into_io_error(),
    })?;
    decode(&bytes)
}
