//! The snapshot sidecar file of a recording (`<trace>.snapshots`): the snapshots taken while
//! recording, so a replay can start near any instruction instead of from reset.
//!
//! A snapshot taken while recording has no replay position; the recorder writes a
//! `SnapshotMark { seq }` event into the trace when it takes one, and a log-only scan of the
//! trace ([`rewind_replay::mark_positions`]) gives each sidecar snapshot the position a replay
//! has there.
//!
//! Layout (all integers little-endian; CRC32 = IEEE, as `crc32fast`):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RWNDSIDE` |
//! | 8 | 2 | format version (2) |
//! | 10 | 2 | flags: bit 0 = the snapshot at instruction 0 is not stored, the first record's RAM pages are relative to the machine's RAM at reset (which the replay rebuilds from the trace: the loaded images); other bits 0 |
//! | 12 | 64 | trace id: BLAKE3 of the trace header, 64 lowercase hex digits |
//! | 76 | 4 | CRC32 of bytes 0..76 |
//!
//! then one record per snapshot (but the one at instruction 0 when flag bit 0 is set), oldest
//! first: magic `RWSR`, u32 compressed length C, u64 raw
//! length R, u32 CRC32 of bytes 4..16 of the record followed by the C bytes, then C bytes of
//! zstd which decompress to R bytes: u32 length M, M bytes of postcard metadata (sequence
//! number, hart, devices, output hash and length, RAM layout, the indices of the RAM pages that
//! differ from the previous record's, each with a flag "non-zero"), then 4096 bytes for each
//! changed non-zero page, in order. Then the index: magic `RWSI`, u32 length L, L bytes of
//! postcard `[(seq, icount, record offset, record length)]`, u32 CRC32 of the L bytes; then
//! the trailer: u64 offset of the index, magic `RWSCEND\0` (end of file).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_cpu::ram::{PageData, RamImage, PAGE_SIZE};
use rewind_log::TraceReader;
use serde::{Deserialize, Serialize};

use crate::snapshot::{trace_id, MachineState, Snapshot};

/// Default instructions between two snapshots taken while recording: at rewind's few hundred
/// MIPS, any instruction of a replay is then a fraction of a second of replay away from a
/// snapshot, while one snapshot (a scan of RAM's dirty pages, copies of those written since
/// the last one) every ~0.1-0.2 s of recording costs well under 5% (docs/snapshots.md).
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 50_000_000;

/// First 8 bytes of a sidecar file.
pub const SIDECAR_MAGIC: [u8; 8] = *b"RWNDSIDE";
/// Sidecar format version written and read by this build.
/// (2: the machine state of snapshot format 4, with the device encoding; 3: chain checks;
/// 4: the machine state of snapshot format 5; 5: of format 6, every hart and the scheduler.)
pub const SIDECAR_VERSION: u16 = 5;
/// First 4 bytes of a record.
const RECORD_MAGIC: [u8; 4] = *b"RWSR";
/// First 4 bytes of the index.
const INDEX_MAGIC: [u8; 4] = *b"RWSI";
/// Last 8 bytes of the file.
const TRAILER_MAGIC: [u8; 8] = *b"RWSCEND\0";
/// Header flag: deltas start from the machine's RAM at reset.
const FLAG_RESET_BASE: u16 = 1;
/// Bytes of the file header.
const HEADER_LEN: u64 = 80;
/// Bytes of a record header.
const RECORD_HEADER_LEN: u64 = 20;
/// Bytes of the trailer.
const TRAILER_LEN: u64 = 16;
/// Length of a trace id.
const TRACE_ID_LEN: usize = 64;
/// Largest RAM a record may describe (as the machine's limit, 64 GiB).
const MAX_RAM_PAGES: u64 = (64 << 30) / PAGE_SIZE;
/// Largest metadata block of a record (hart, devices, changed-page list of a full RAM).
const MAX_META: u64 = 16 * MAX_RAM_PAGES + (16 << 20);
/// zstd level: writing happens when the recording ends, so favour speed.
const ZSTD_LEVEL: i32 = 1;

/// The sidecar file that belongs to `trace`: the same path with `.snapshots` appended.
pub fn sidecar_path(trace: &Path) -> PathBuf {
    let mut p = trace.as_os_str().to_os_string();
    p.push(".snapshots");
    PathBuf::from(p)
}

/// A sidecar that cannot be written, read, or applied to a trace.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// Reading or writing the file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a sidecar, or is damaged.
    #[error("{}: corrupt snapshot file at offset {offset}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the damaged structure.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A format version this build does not read.
    #[error("{}: unsupported snapshot file version {found} (this build reads {SIDECAR_VERSION})", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u16,
    },
    /// The sidecar was written for another recording.
    #[error(
        "{}: the snapshots belong to another recording (trace id {sidecar}), not to {} \
         (trace id {trace})",
        path.display(),
        trace_path.display()
    )]
    WrongTrace {
        /// The sidecar file.
        path: PathBuf,
        /// Its trace id.
        sidecar: String,
        /// The trace.
        trace_path: PathBuf,
        /// The trace's id.
        trace: String,
    },
    /// A snapshot has no matching `SnapshotMark` in the trace.
    #[error("{}: snapshot {seq} (instruction {icount}) {problem} in {}", path.display(), trace_path.display())]
    Unplaced {
        /// The sidecar file.
        path: PathBuf,
        /// The trace.
        trace_path: PathBuf,
        /// Sequence number of the snapshot.
        seq: u64,
        /// Its instruction count.
        icount: u64,
        /// What does not match.
        problem: String,
    },
    /// A snapshot cannot be written to a sidecar.
    #[error("cannot write snapshot at instruction {icount}: {problem}")]
    Unwritable {
        /// Its instruction count.
        icount: u64,
        /// Why.
        problem: String,
    },
    /// The trace cannot be read.
    #[error(transparent)]
    Trace(#[from] rewind_log::LogError),
}

/// What [`save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Snapshots stored in the file (one at instruction 0 is not: the replay starts there).
    pub snapshots: usize,
    /// File size in bytes.
    pub bytes: u64,
}

/// One entry of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The snapshot's mark sequence number.
    pub seq: u64,
    /// Its instruction count.
    pub icount: u64,
    /// File offset of its record.
    pub offset: u64,
    /// Length of its record (header included).
    pub len: u64,
}

/// Record metadata (postcard).
#[derive(Serialize, Deserialize)]
struct Meta {
    seq: u64,
    state: MachineState,
    ram_base: u64,
    ram_pages: u64,
    /// Pages that differ from the previous record: (index, non-zero).
    changed: Vec<(u64, bool)>,
    /// The mark of the record this one is a change from (`None`: the first record, from the
    /// reset image or from nothing), so a broken chain (a record deleted, the index rebuilt)
    /// is a damaged file, not wrong RAM found later as a divergence.
    base: Option<u64>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SidecarError + '_ {
    move |source| SidecarError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The bytes of a sidecar file: a regular file (never a device or FIFO, which could read
/// without end or block).
fn read_sidecar(path: &Path) -> Result<Vec<u8>, SidecarError> {
    rewind_log::hostfile::read_regular(path, u64::MAX).map_err(|p| io_err(path)(p.into_io_error()))
}

/// Write `snaps` (taken while recording the trace with id `trace_id`, oldest first) to `path`,
/// atomically: a temporary file in the same directory, then renamed over `path`.
pub fn save(path: &Path, trace_id: &str, snaps: &[Snapshot]) -> Result<Saved, SidecarError> {
    check_trace_id(trace_id)?;
    let tmp = temp_path(path);
    let result = write_file(&tmp, trace_id, snaps).and_then(|saved| {
        std::fs::rename(&tmp, path).map_err(io_err(path))?;
        Ok(saved)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A trace id must be the 64 hex digits of [`trace_id`].
fn check_trace_id(trace_id: &str) -> Result<(), SidecarError> {
    if trace_id.len() != TRACE_ID_LEN || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SidecarError::Unwritable {
            icount: 0,
            problem: format!("bad trace id {trace_id:?}"),
        });
    }
    Ok(())
}

/// Remove the temporary files (`PATH.tmp-PID`, see [`temp_path`]) that writers of `path`
/// killed before finishing left behind: only regular files whose process no longer runs
/// (checked in `/proc`; without `/proc` nothing is removed). Returns how many were removed.
pub fn remove_stale_temporaries(path: &Path) -> usize {
    use std::os::unix::ffi::OsStrExt;
    let Some(name) = path.file_name() else {
        return 0;
    };
    if !Path::new("/proc/self").exists() {
        return 0;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut prefix = name.as_bytes().to_vec();
    prefix.extend_from_slice(b".tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.as_bytes().strip_prefix(prefix.as_slice()) else {
            continue;
        };
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists();
        // Never follow a symlink planted under that name, never remove a directory.
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if !alive && regular && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The temporary file a sidecar is written to before it is renamed to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(tmp_name)
}

fn write_file(tmp: &Path, trace_id: &str, snaps: &[Snapshot]) -> Result<Saved, SidecarError> {
    // The snapshot at reset is what the replay builds by itself (the images loaded into RAM):
    // not stored, only used as the base of the first delta. Saves writing the images.
    let (reset, snaps) = match snaps.split_first() {
        Some((first, rest)) if first.icount() == 0 => (Some(first), rest),
        _ => (None, snaps),
    };
    let mut file = SidecarFile::create(tmp, trace_id, reset)?;
    // Check the order first, then encode the records (each a delta from the one before, so
    // independent of each other) on all cores: this runs while the user waits at the end of
    // the recording.
    let mut jobs = Vec::with_capacity(snaps.len());
    for (k, s) in snaps.iter().enumerate() {
        let seq = file.check_order(s)?;
        let prev = if k == 0 { reset } else { Some(&snaps[k - 1]) };
        let base = k.checked_sub(1).and_then(|j| snaps[j].mark);
        jobs.push((seq, s, prev, base));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = jobs.len().div_ceil(threads).max(1);
    let records: Vec<Result<Vec<u8>, SidecarError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(seq, s, prev, base)| encode_record(seq, s, prev, base))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![Err(SidecarError::Unwritable {
                        icount: 0,
                        problem: "a snapshot encoder thread panicked".into(),
                    })]
                })
            })
            .collect()
    });
    for ((seq, s, _, _), record) in jobs.iter().zip(records) {
        file.append(*seq, s.icount(), &record?)?;
    }
    file.finish()
}

/// A sidecar file being written: header, records, then index and trailer.
struct SidecarFile {
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    index: Vec<IndexEntry>,
    last_seq: Option<u64>,
}

impl SidecarFile {
    /// Create `path` and write the header (`reset`: the snapshot at instruction 0 the first
    /// record is a delta from, not stored).
    fn create(path: &Path, trace_id: &str, reset: Option<&Snapshot>) -> Result<Self, SidecarError> {
        let file = File::create(path).map_err(io_err(path))?;
        let mut out = BufWriter::new(file);
        let flags = if reset.is_some() { FLAG_RESET_BASE } else { 0 };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(&SIDECAR_MAGIC);
        header.extend_from_slice(&SIDECAR_VERSION.to_le_bytes());
        header.extend_from_slice(&flags.to_le_bytes());
        header.extend_from_slice(trace_id.as_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        out.write_all(&header).map_err(io_err(path))?;
        Ok(SidecarFile {
            path: path.to_path_buf(),
            out,
            offset: HEADER_LEN,
            index: Vec::new(),
            last_seq: reset.and_then(|r| r.mark),
        })
    }

    /// The trace mark of `s`, which must come after the last one checked.
    fn check_order(&mut self, s: &Snapshot) -> Result<u64, SidecarError> {
        let Some(seq) = s.mark else {
            return Err(SidecarError::Unwritable {
                icount: s.icount(),
                problem: "it was not taken while recording (no trace mark)".into(),
            });
        };
        if self.last_seq.is_some_and(|l| seq <= l) {
            return Err(SidecarError::Unwritable {
                icount: s.icount(),
                problem: "snapshots are not in recording order".into(),
            });
        }
        self.last_seq = Some(seq);
        Ok(seq)
    }

    /// Write one encoded record.
    fn append(&mut self, seq: u64, icount: u64, record: &[u8]) -> Result<(), SidecarError> {
        self.out.write_all(record).map_err(io_err(&self.path))?;
        self.index.push(IndexEntry {
            seq,
            icount,
            offset: self.offset,
            len: record.len() as u64,
        });
        self.offset += record.len() as u64;
        Ok(())
    }

    /// Write the index and trailer.
    fn finish(mut self) -> Result<Saved, SidecarError> {
        let body = postcard::to_allocvec(&self.index).map_err(|e| SidecarError::Unwritable {
            icount: 0,
            problem: e.to_string(),
        })?;
        let mut tail = Vec::with_capacity(body.len() + 32);
        tail.extend_from_slice(&INDEX_MAGIC);
        tail.extend_from_slice(&(body.len() as u32).to_le_bytes());
        tail.extend_from_slice(&body);
        tail.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        tail.extend_from_slice(&self.offset.to_le_bytes());
        tail.extend_from_slice(&TRAILER_MAGIC);
        self.out.write_all(&tail).map_err(io_err(&self.path))?;
        // No fsync: the file is an index the loader validates (a torn one after a host crash
        // is refused with a warning and the replay starts from reset); syncing 10+ MB would
        // add hundreds of milliseconds to the end of every recording.
        self.out
            .into_inner()
            .map_err(|e| io_err(&self.path)(e.into_error()))?;
        Ok(Saved {
            snapshots: self.index.len(),
            bytes: self.offset + tail.len() as u64,
        })
    }
}

/// Writes a recording's snapshots to its sidecar file while the recording runs: each
/// snapshot is encoded (a delta from the one before, zstd) on a background thread as it is
/// taken, so the recording's own thread only copies pages. [`SidecarWriter::finish`] writes
/// the index and renames the file into place.
pub struct SidecarWriter {
    tx: Option<std::sync::mpsc::Sender<Snapshot>>,
    worker: Option<std::thread::JoinHandle<Result<Saved, SidecarError>>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl SidecarWriter {
    /// Start writing `path` for the trace `trace_id`; `reset` is the recording's snapshot at
    /// instruction 0 (the base of the first delta, not stored).
    pub fn start(path: &Path, trace_id: &str, reset: &Snapshot) -> Result<Self, SidecarError> {
        check_trace_id(trace_id)?;
        let tmp = temp_path(path);
        let reset = (reset.icount() == 0).then(|| reset.clone());
        let mut file = SidecarFile::create(&tmp, trace_id, reset.as_ref())?;
        let (tx, rx) = std::sync::mpsc::channel::<Snapshot>();
        let worker = std::thread::Builder::new()
            .name("sidecar".into())
            .spawn(move || {
                let mut prev = reset;
                let mut base = None;
                for s in rx {
                    let seq = file.check_order(&s)?;
                    let record = encode_record(seq, &s, prev.as_ref(), base)?;
                    file.append(seq, s.icount(), &record)?;
                    prev = Some(s);
                    base = Some(seq);
                }
                file.finish()
            })
            .map_err(io_err(&tmp))?;
        Ok(SidecarWriter {
            tx: Some(tx),
            worker: Some(worker),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// A sink for [`crate::seek::Seeker::set_snapshot_sink`] feeding this writer (a snapshot
    /// is a set of shared pages: sending it copies no RAM).
    pub fn sink(&self) -> crate::seek::SnapshotSink {
        let tx = self.tx.clone();
        Box::new(move |s: &Snapshot| {
            if let Some(tx) = &tx {
                // A failed writer reports its error at `finish`.
                let _ = tx.send(s.clone());
            }
        })
    }

    /// Wait for the snapshots sent so far (every sink must have been dropped), write the
    /// index, and move the file into place.
    pub fn finish(mut self) -> Result<Saved, SidecarError> {
        self.tx = None;
        let r = match self.worker.take().map(|w| w.join()) {
            Some(Ok(r)) => r,
            _ => Err(SidecarError::Unwritable {
                icount: 0,
                problem: "the snapshot writer thread failed".into(),
            }),
        };
        let r = r.and_then(|saved| {
            std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))?;
            Ok(saved)
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        r
    }
}

impl Drop for SidecarWriter {
    fn drop(&mut self) {
        // Not finished (the recording failed): leave no temporary file behind.
        if let Some(w) = self.worker.take() {
            self.tx = None;
            let _ = w.join();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// One record: `s`'s state and the RAM pages that differ from `prev`'s.
fn encode_record(
    seq: u64,
    s: &Snapshot,
    prev: Option<&Snapshot>,
    base: Option<u64>,
) -> Result<Vec<u8>, SidecarError> {
    let unwritable = |problem: String| SidecarError::Unwritable {
        icount: s.icount(),
        problem,
    };
    let pages = s.ram.pages();
    let prev_pages = match prev {
        Some(p) if p.ram.base() != s.ram.base() || p.ram.pages().len() != pages.len() => {
            return Err(unwritable(
                "its RAM layout differs from the snapshot before".into(),
            ));
        }
        Some(p) => Some(p.ram.pages()),
        None => None,
    };
    let mut changed = Vec::new();
    let mut data = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let before = prev_pages.and_then(|p| p[i].as_ref());
        let same = match (page, before) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
            _ => false,
        };
        if !same {
            changed.push((i as u64, page.is_some()));
            if let Some(p) = page {
                data.extend_from_slice(&p[..]);
            }
        }
    }
    let meta = Meta {
        seq,
        state: MachineState::of(s),
        ram_base: s.ram.base(),
        ram_pages: pages.len() as u64,
        changed,
        base,
    };
    let meta = postcard::to_allocvec(&meta).map_err(|e| unwritable(e.to_string()))?;
    let mut raw = Vec::with_capacity(4 + meta.len() + data.len());
    raw.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    raw.extend_from_slice(&meta);
    raw.extend_from_slice(&data);
    drop(data);
    let comp = zstd::bulk::compress(&raw, ZSTD_LEVEL).map_err(|e| unwritable(e.to_string()))?;
    let clen = u32::try_from(comp.len())
        .map_err(|_| unwritable(format!("record of {} bytes is too large", comp.len())))?;
    let mut rec = Vec::with_capacity(RECORD_HEADER_LEN as usize + comp.len());
    rec.extend_from_slice(&RECORD_MAGIC);
    rec.extend_from_slice(&clen.to_le_bytes());
    rec.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&rec[4..16]);
    h.update(&comp);
    rec.extend_from_slice(&h.finalize().to_le_bytes());
    rec.extend_from_slice(&comp);
    Ok(rec)
}

/// A sidecar file read into memory, with checked bounds.
struct Reader<'a> {
    path: &'a Path,
    data: Vec<u8>,
}

impl Reader<'_> {
    fn corrupt(&self, offset: u64, what: impl Into<String>) -> SidecarError {
        SidecarError::Corrupt {
            path: self.path.to_path_buf(),
            offset,
            what: what.into(),
        }
    }

    /// `len` bytes at `offset`, or a "file ends" error naming `what`.
    fn bytes(&self, offset: u64, len: u64, what: &str) -> Result<&[u8], SidecarError> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.data.len() as u64);
        match end {
            Some(end) => Ok(&self.data[offset as usize..end as usize]),
            None => Err(self.corrupt(
                offset,
                format!(
                    "{what} of {len} bytes runs past the end of the file ({} bytes)",
                    self.data.len()
                ),
            )),
        }
    }

    fn u32_at(&self, offset: u64, what: &str) -> Result<u32, SidecarError> {
        let b = self.bytes(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64_at(&self, offset: u64, what: &str) -> Result<u64, SidecarError> {
        let b = self.bytes(offset, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Check the header and the index of a sidecar; returns the trace id, the index and the
/// offset where the index starts.
fn read_structure(r: &Reader<'_>) -> Result<(String, Vec<IndexEntry>, u64, u16), SidecarError> {
    let m = r.data.len().min(8);
    if r.data[..m] != SIDECAR_MAGIC[..m] {
        return Err(r.corrupt(
            0,
            format!(
                "not a recording's snapshot file: {}",
                crate::file_kind::describe(&r.data[..m])
            ),
        ));
    }
    let head = r.bytes(0, HEADER_LEN, "the file header")?;
    let version = u16::from_le_bytes([head[8], head[9]]);
    if version != SIDECAR_VERSION {
        return Err(SidecarError::UnsupportedVersion {
            path: r.path.to_path_buf(),
            found: version,
        });
    }
    let stored = r.u32_at(76, "the header checksum")?;
    let computed = crc32fast::hash(&head[..76]);
    if stored != computed {
        return Err(r.corrupt(
            76,
            format!("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    let id = &head[12..76];
    if !id.iter().all(|b| b.is_ascii_hexdigit()) {
        return Err(r.corrupt(12, "the trace id is not hexadecimal"));
    }
    let id = String::from_utf8_lossy(id).into_owned();
    let flags = u16::from_le_bytes([head[10], head[11]]);
    if flags & !FLAG_RESET_BASE != 0 {
        return Err(r.corrupt(10, format!("unknown flags {flags:#06x}")));
    }
    let len = r.data.len() as u64;
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(r.corrupt(len, "the file ends before its trailer (cut short?)"));
    }
    let trailer_at = len - TRAILER_LEN;
    if r.bytes(trailer_at + 8, 8, "the trailer")? != TRAILER_MAGIC {
        return Err(r.corrupt(
            trailer_at,
            "no trailer at the end of the file (cut short or damaged)",
        ));
    }
    let index_at = r.u64_at(trailer_at, "the trailer")?;
    if index_at < HEADER_LEN || index_at.saturating_add(12) > trailer_at {
        return Err(r.corrupt(
            trailer_at,
            format!("index offset {index_at} lies outside the file's records"),
        ));
    }
    if r.bytes(index_at, 4, "the index")? != INDEX_MAGIC {
        return Err(r.corrupt(index_at, "bad index magic (expected \"RWSI\")"));
    }
    let body_len = u64::from(r.u32_at(index_at + 4, "the index length")?);
    if index_at + 8 + body_len + 4 != trailer_at {
        return Err(r.corrupt(
            index_at + 4,
            format!("index length {body_len} does not end at the trailer"),
        ));
    }
    let body = r.bytes(index_at + 8, body_len, "the index")?;
    let stored = r.u32_at(index_at + 8 + body_len, "the index checksum")?;
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(r.corrupt(
            index_at + 8 + body_len,
            format!("index checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    let index: Vec<IndexEntry> = postcard::from_bytes(body)
        .map_err(|e| r.corrupt(index_at + 8, format!("cannot decode the index: {e}")))?;
    Ok((id, index, index_at, flags))
}

/// The trace id and index of a sidecar file (header, index and trailer checked; the records
/// are not read).
pub fn read_index(path: &Path) -> Result<(String, Vec<IndexEntry>), SidecarError> {
    let data = read_sidecar(path)?;
    let r = Reader { path, data };
    let (id, index, _, _) = read_structure(&r)?;
    Ok((id, index))
}

/// Which snapshots [`load`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// All of them.
    All,
    /// Only the last one at or before this icount (none if there is none); later records are
    /// not read.
    LastAtOrBefore(u64),
}

/// Read the snapshots of the sidecar at `path`, which must belong to the trace with id
/// `trace` (named `trace_path` in errors). Everything read is checked: magic, version,
/// checksums, lengths, the index against the records, the trace id. The snapshots have no
/// replay position yet (see [`place`]). `reset` is the RAM of the trace's replay machine at
/// reset (before it ran), the base of the stored deltas.
pub fn load(
    path: &Path,
    trace: &str,
    trace_path: &Path,
    select: Select,
    reset: &RamImage,
) -> Result<Vec<Snapshot>, SidecarError> {
    let data = read_sidecar(path)?;
    let r = Reader { path, data };
    let (id, index, index_at, flags) = read_structure(&r)?;
    if id != trace {
        return Err(SidecarError::WrongTrace {
            path: path.to_path_buf(),
            sidecar: id,
            trace_path: trace_path.to_path_buf(),
            trace: trace.to_string(),
        });
    }
    // Records are deltas: every record up to the last one wanted is decoded.
    let wanted = match select {
        Select::All => index.len(),
        Select::LastAtOrBefore(n) => index.iter().take_while(|e| e.icount <= n).count(),
    };
    let mut snaps = Vec::with_capacity(index.len().min(1 << 16));
    let mut offset = HEADER_LEN;
    let (mut pages, mut layout) = if flags & FLAG_RESET_BASE != 0 {
        let n = reset.pages().len() as u64;
        (reset.pages().to_vec(), Some((reset.base(), n)))
    } else {
        (Vec::new(), None)
    };
    for (i, entry) in index.iter().enumerate() {
        if entry.offset != offset {
            return Err(r.corrupt(
                index_at,
                format!(
                    "index entry {i} puts a record at offset {}, the records give {offset}",
                    entry.offset
                ),
            ));
        }
        if i >= wanted {
            // Not decoded, but its checksum is verified: a damaged file is refused whole.
            offset += check_record(&r, offset)?.1;
            continue;
        }
        let base = i.checked_sub(1).map(|j| index[j].seq);
        let (s, len) = read_record(&r, offset, &mut pages, &mut layout, base)?;
        if s.mark != Some(entry.seq) || s.icount() != entry.icount || len != entry.len {
            return Err(r.corrupt(offset, format!("record {i} does not match its index entry")));
        }
        if i > 0 && entry.seq <= index[i - 1].seq {
            return Err(r.corrupt(offset, format!("record {i} is out of order")));
        }
        if select == Select::All || i + 1 == wanted {
            snaps.push(Snapshot {
                trace_id: Some(id.clone()),
                ..s
            });
        }
        offset += len;
    }
    if offset != index_at {
        return Err(r.corrupt(
            offset,
            format!(
                "{} bytes between the last record and the index",
                index_at.saturating_sub(offset)
            ),
        ));
    }
    Ok(snaps)
}

/// Decode the record at `offset` on top of the previous record's RAM pages; returns the
/// snapshot and the record's length.
fn read_record(
    r: &Reader<'_>,
    offset: u64,
    pages: &mut Vec<Option<PageData>>,
    layout: &mut Option<(u64, u64)>,
    base: Option<u64>,
) -> Result<(Snapshot, u64), SidecarError> {
    let (comp, len) = check_record(r, offset)?;
    let raw_len = r.u64_at(offset + 8, "a record header")?;
    let max_raw = 4 + MAX_META + MAX_RAM_PAGES * PAGE_SIZE;
    if raw_len > max_raw {
        return Err(r.corrupt(offset + 8, format!("raw length {raw_len} is too large")));
    }
    // Streamed, so a wrong declared length never drives a large allocation by itself.
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(comp)
        .and_then(|d| {
            std::io::Read::read_to_end(&mut std::io::Read::take(d, raw_len + 1), &mut raw)
        })
        .map_err(|e| {
            r.corrupt(
                offset + RECORD_HEADER_LEN,
                format!("cannot decompress: {e}"),
            )
        })?;
    let bad = |what: String| r.corrupt(offset + RECORD_HEADER_LEN, what);
    if raw.len() as u64 != raw_len {
        return Err(bad(format!(
            "record holds {} bytes, its header says {raw_len}",
            raw.len()
        )));
    }
    let meta_len = raw
        .get(..4)
        .map(|b| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .filter(|&m| 4 + m <= raw_len)
        .ok_or_else(|| bad("bad metadata length".into()))?;
    let meta: Meta = postcard::from_bytes(&raw[4..4 + meta_len as usize])
        .map_err(|e| bad(format!("cannot decode the metadata: {e}")))?;
    if meta.base != base {
        let name = |b: Option<u64>| b.map_or("the start".to_string(), |b| format!("snapshot {b}"));
        return Err(bad(format!(
            "the chain of records is broken: snapshot {} is stored as a change from {}, but \
             follows {} (a record is missing or out of place)",
            meta.seq,
            name(meta.base),
            name(base)
        )));
    }
    if meta.ram_pages > MAX_RAM_PAGES || meta.ram_pages == 0 {
        return Err(bad(format!("{} RAM pages", meta.ram_pages)));
    }
    match layout {
        Some(l) if *l != (meta.ram_base, meta.ram_pages) => {
            return Err(bad(format!(
                "the RAM layout ({} pages at {:#x}) differs from the record before or the \
                 machine's ({} pages at {:#x})",
                meta.ram_pages, meta.ram_base, l.1, l.0
            )));
        }
        Some(_) => {}
        None => {
            *layout = Some((meta.ram_base, meta.ram_pages));
            *pages = vec![None; meta.ram_pages as usize];
        }
    }
    let mut data = &raw[4 + meta_len as usize..];
    let mut last = None;
    for &(i, nonzero) in &meta.changed {
        if last.is_some_and(|l| i <= l) || i >= meta.ram_pages {
            return Err(bad(format!("bad changed page index {i}")));
        }
        last = Some(i);
        pages[i as usize] = if nonzero {
            let Some((page, rest)) = data.split_first_chunk::<{ PAGE_SIZE as usize }>() else {
                return Err(bad("the page data ends early".into()));
            };
            data = rest;
            Some(Arc::new(*page))
        } else {
            None
        };
    }
    if !data.is_empty() {
        return Err(bad(format!("{} bytes of page data left over", data.len())));
    }
    let ram = RamImage::from_pages(meta.ram_base, pages.clone());
    let snap = meta.state.into_snapshot(ram, None, None, Some(meta.seq));
    Ok((snap, len))
}

/// Check the magic and checksum of the record at `offset`; returns its compressed bytes and
/// its length.
fn check_record<'a>(r: &'a Reader<'_>, offset: u64) -> Result<(&'a [u8], u64), SidecarError> {
    let head = r.bytes(offset, RECORD_HEADER_LEN, "a record header")?;
    if head[..4] != RECORD_MAGIC {
        return Err(r.corrupt(offset, "bad record magic (expected \"RWSR\")"));
    }
    let clen = u64::from(r.u32_at(offset + 4, "a record header")?);
    let stored = r.u32_at(offset + 16, "a record header")?;
    let comp = r.bytes(offset + RECORD_HEADER_LEN, clen, "a record")?;
    let mut h = crc32fast::Hasher::new();
    h.update(&head[4..16]);
    h.update(comp);
    let computed = h.finalize();
    if stored != computed {
        return Err(r.corrupt(
            offset,
            format!("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    Ok((comp, RECORD_HEADER_LEN + clen))
}

/// Give each snapshot of a recording its replay position in that recording's trace
/// (`reader`, freshly opened on `trace_path`) by scanning the trace for their marks. A
/// snapshot whose mark is missing, or at another instruction, is an error.
pub fn place(
    snaps: &mut [Snapshot],
    reader: &mut TraceReader,
    path: &Path,
) -> Result<(), SidecarError> {
    let trace_path = reader.path().to_path_buf();
    let marks = rewind_replay::mark_positions(reader)?;
    for s in snaps.iter_mut() {
        let unplaced = |problem: String| SidecarError::Unplaced {
            path: path.to_path_buf(),
            trace_path: trace_path.clone(),
            seq: s.mark.unwrap_or(0),
            icount: s.icount(),
            problem,
        };
        let Some(seq) = s.mark else {
            return Err(unplaced("was not taken while recording".into()));
        };
        let found = marks
            .binary_search_by_key(&seq, |m| m.seq)
            .ok()
            .map(|i| &marks[i]);
        match found {
            None => return Err(unplaced("has no mark".into())),
            Some(m) if m.icount != s.icount() => {
                return Err(unplaced(format!("is marked at instruction {}", m.icount)))
            }
            Some(m) => s.replay = Some(m.position.clone()),
        }
    }
    Ok(())
}

/// Load the sidecar at `path` for a replay of the trace at `trace_path` whose machine had the
/// RAM `reset` before it ran (e.g. the first snapshot of a [`crate::seek::Seeker`] made on the
/// fresh replay machine): checked, and every snapshot placed in the trace (ready for
/// [`crate::Machine::restore`] on that replay).
pub fn load_for_replay(
    path: &Path,
    trace_path: &Path,
    reset: &RamImage,
) -> Result<Vec<Snapshot>, SidecarError> {
    load_for_replay_selected(path, trace_path, Select::All, reset)
}

/// [`load_for_replay`] of the snapshots `select` names.
pub fn load_for_replay_selected(
    path: &Path,
    trace_path: &Path,
    select: Select,
    reset: &RamImage,
) -> Result<Vec<Snapshot>, SidecarError> {
    let mut reader = TraceReader::open(trace_path)?;
    let id = trace_id(reader.header());
    let mut snaps = load(path, &id, trace_path, select, reset)?;
    place(&mut snaps, &mut reader, path)?;
    Ok(snaps)
}
