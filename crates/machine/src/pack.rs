//! Packs: one file holding a recording and everything its replay needs (the trace, its
//! snapshot file, every image it names: firmware, kernel, initrd, disk base images), each
//! stored once by content (BLAKE3) and zstd-compressed, so the replay works on a machine with
//! none of the original files. A pack is untrusted input: every length is bounded, every file
//! is checked against its size and hash as it is unpacked, and names never leave the target
//! directory.
//!
//! Layout (integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RWNDPACK` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | flags (0) |
//! | 12 | 4 | index length L (at most 1 MiB) |
//! | 16 | 4 | CRC32 of the index |
//! | 20 | L | the index: JSON `{"files": [{"name", "role", "size", "blake3", "stored"}]}` |
//!
//! then each file's zstd frame of `stored` bytes, in index order, to the end of the file: a
//! reader can unpack it front to back as it arrives.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rewind_log::hostfile;
use rewind_log::ImageRole;
use serde::{Deserialize, Serialize};

use crate::{ImageSource, MachineConfig};

/// First 8 bytes of a pack.
pub const PACK_MAGIC: [u8; 8] = *b"RWNDPACK";
/// Pack format version written and read by this build.
pub const PACK_VERSION: u16 = 1;
/// Bytes before the index.
const PREFIX_LEN: u64 = 20;
/// Largest index accepted.
const MAX_INDEX: u64 = 1 << 20;
/// Largest file a pack may hold (as the largest RAM, or a large disk).
const MAX_FILE: u64 = 1 << 40;
/// Most files a pack may hold.
const MAX_FILES: usize = 4096;
/// zstd level of the stored files.
const ZSTD_LEVEL: i32 = 3;

/// What a file in a pack is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The trace.
    Trace,
    /// Its snapshot file.
    Snapshots,
    /// An image the trace names (firmware, kernel, initrd, disk).
    Image,
}

/// One file of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    /// Its file name when unpacked (no directory part).
    pub name: String,
    /// What it is.
    pub role: Role,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its bytes, 64 lowercase hex digits.
    pub blake3: String,
    /// Bytes of its zstd frame in the pack.
    pub stored: u64,
}

#[derive(Serialize, Deserialize)]
struct Index {
    files: Vec<PackEntry>,
}

/// A pack that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The pack is not one, or is damaged.
    #[error("{}: corrupt pack at offset {offset}: {what}", path.display())]
    Corrupt {
        /// The pack.
        path: PathBuf,
        /// Offset of the damaged structure.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A pack cannot be made (a file missing, a refused output).
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Is the file at `path` a pack (by its first bytes)?
pub fn is_pack(path: &Path) -> bool {
    let mut head = [0u8; 8];
    hostfile::regular_file_size(path).is_ok()
        && std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
        && head == PACK_MAGIC
}

/// A file to pack: where it is now, its name in the pack, what it is.
#[derive(Debug, Clone)]
pub struct PackSource {
    /// The file's bytes, or where to read them.
    pub data: SourceData,
    /// Its name when unpacked.
    pub name: String,
    /// What it is.
    pub role: Role,
}

/// Where a packed file's bytes come from.
#[derive(Debug, Clone)]
pub enum SourceData {
    /// A file on the host (read when the pack is written).
    File(PathBuf),
    /// Bytes in memory (an image already read and checked).
    Bytes(std::sync::Arc<[u8]>),
}

/// The files a replay of the trace at `trace` (opened as `config`, the replay configuration
/// with its images checked, and `images`, the trace header's image list) needs: the trace,
/// its snapshot file when there is one, every image that is not built into rewind.
pub fn sources(
    trace: &Path,
    snapshots: Option<&Path>,
    config: &MachineConfig,
    images: &[rewind_log::ImageInfo],
) -> Vec<PackSource> {
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or_else(|| "image".to_string(), |b| b.to_string_lossy().into_owned())
    };
    let mut out = vec![PackSource {
        data: SourceData::File(trace.to_path_buf()),
        name: base(&trace.to_string_lossy()),
        role: Role::Trace,
    }];
    if let Some(s) = snapshots {
        out.push(PackSource {
            data: SourceData::File(s.to_path_buf()),
            name: format!("{}.snapshots", out[0].name),
            role: Role::Snapshots,
        });
    }
    let mut disks = config.virtio.iter().filter_map(|d| match d {
        crate::VirtioDevice::Blk(drive) => Some(drive.file.clone()),
        _ => None,
    });
    for info in images {
        if info.file_name.starts_with(crate::record::EMBEDDED_PREFIX) {
            continue;
        }
        let data = match info.role {
            ImageRole::Disk => disks.next().map(SourceData::File),
            role => {
                let src = match role {
                    ImageRole::Bios => &config.bios,
                    ImageRole::Kernel => &config.kernel,
                    ImageRole::Initrd => &config.initrd,
                    _ => &None,
                };
                match src {
                    Some(ImageSource::Embedded { bytes, .. }) => {
                        Some(SourceData::Bytes(bytes.clone()))
                    }
                    Some(ImageSource::File(p)) => Some(SourceData::File(p.clone())),
                    None => None,
                }
            }
        };
        if let Some(data) = data {
            out.push(PackSource {
                data,
                name: base(&info.file_name),
                role: Role::Image,
            });
        }
    }
    out
}

/// Write the pack `out` (created: an existing file is refused unless `overwrite`) holding
/// `files`, each stored once by content. Files are compressed as streams into temporary files
/// next to `out` (memory stays small whatever the size of a disk image), then put together
/// behind the index. Returns the entries written.
pub fn write(
    out: &Path,
    files: &[PackSource],
    overwrite: bool,
) -> Result<Vec<PackEntry>, PackError> {
    let mut base = out.as_os_str().to_os_string();
    base.push(format!(".tmp-{}", std::process::id()));
    let tmp = |k: usize| {
        let mut p = base.clone();
        p.push(format!(".{k}"));
        PathBuf::from(p)
    };
    let final_tmp = PathBuf::from(base.clone());
    let mut frames: Vec<PathBuf> = Vec::new();
    let result = (|| {
        let mut entries: Vec<PackEntry> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (k, f) in files.iter().enumerate() {
            let frame = tmp(k);
            let (size, hash) = compress_source(&f.data, &frame)?;
            // Content-addressed: an image named twice (or equal to another) is stored once.
            if f.role == Role::Image && entries.iter().any(|e| e.blake3 == hash) {
                let _ = std::fs::remove_file(&frame);
                continue;
            }
            let stored = std::fs::metadata(&frame).map_err(io(&frame))?.len();
            frames.push(frame);
            // Two different images with one base name: the later one's name gets its hash.
            let name = if names.contains(&f.name) {
                format!("{}-{}", &hash[..16], f.name)
            } else {
                f.name.clone()
            };
            names.insert(name.clone());
            entries.push(PackEntry {
                name,
                role: f.role,
                size,
                blake3: hash,
                stored,
            });
        }
        let index = serde_json::to_vec(&Index {
            files: entries.clone(),
        })
        .map_err(|e| PackError::Refused(format!("cannot encode the index: {e}")))?;
        let mut head = Vec::with_capacity(PREFIX_LEN as usize);
        head.extend_from_slice(&PACK_MAGIC);
        head.extend_from_slice(&PACK_VERSION.to_le_bytes());
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&(index.len() as u32).to_le_bytes());
        head.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
        // Written to a temporary file and renamed: a pack is never seen half-written.
        let assembled = (|| -> std::io::Result<()> {
            let mut w = std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&final_tmp)?,
            );
            w.write_all(&head)?;
            w.write_all(&index)?;
            for fr in &frames {
                std::io::copy(&mut std::fs::File::open(fr)?, &mut w)?;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            if !overwrite && std::fs::symlink_metadata(out).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "file already exists (use --force to replace it)",
                ));
            }
            std::fs::rename(&final_tmp, out)
        })();
        assembled.map_err(io(out))?;
        Ok(entries)
    })();
    for fr in &frames {
        let _ = std::fs::remove_file(fr);
    }
    if result.is_err() {
        let _ = std::fs::remove_file(&final_tmp);
        for k in 0..files.len() {
            let _ = std::fs::remove_file(tmp(k));
        }
    }
    result
}

/// Compress `data` as one zstd frame into the new file `frame`; returns the size and BLAKE3
/// of the data.
fn compress_source(data: &SourceData, frame: &Path) -> Result<(u64, String), PackError> {
    let what = match data {
        SourceData::File(p) => p.display().to_string(),
        SourceData::Bytes(_) => "an image in memory".to_string(),
    };
    let (mut reader, expected): (Box<dyn Read>, u64) = match data {
        SourceData::Bytes(b) => (Box::new(std::io::Cursor::new(b.clone())), b.len() as u64),
        SourceData::File(p) => {
            // A regular file only (never a device or FIFO), of a bounded size.
            let size = hostfile::regular_file_size(p)
                .map_err(|e| PackError::Refused(format!("{}: {e}", p.display())))?;
            if size > MAX_FILE {
                return Err(PackError::Refused(format!(
                    "{}: {size} bytes is more than a pack holds",
                    p.display()
                )));
            }
            let f = std::fs::File::open(p).map_err(io(p))?;
            (Box::new(f.take(MAX_FILE + 1)), size)
        }
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(frame)
        .map_err(io(frame))?;
    let mut enc = zstd::stream::write::Encoder::new(std::io::BufWriter::new(file), ZSTD_LEVEL)
        .map_err(io(frame))?;
    // The size up front: the frame then says it, and its window is no larger than the data
    // (a small file does not make the unpacker allocate a large window).
    enc.set_pledged_src_size(Some(expected))
        .and_then(|()| enc.include_contentsize(true))
        .map_err(io(frame))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(PackError::Refused(format!("{what}: cannot read: {e}"))),
        };
        size += n as u64;
        hasher.update(&buf[..n]);
        enc.write_all(&buf[..n]).map_err(io(frame))?;
    }
    if size > MAX_FILE {
        return Err(PackError::Refused(format!(
            "{what}: more than {MAX_FILE} bytes cannot be packed"
        )));
    }
    // Only the assembled pack is synced: the frames are temporary.
    let w = enc.finish().map_err(io(frame))?;
    w.into_inner().map_err(|e| io(frame)(e.into_error()))?;
    Ok((size, hasher.finalize().to_hex().to_string()))
}

/// An open pack: its index checked, its data not yet read.
#[derive(Debug)]
pub struct PackReader {
    path: PathBuf,
    file: std::fs::File,
    len: u64,
    data_start: u64,
    entries: Vec<PackEntry>,
}

impl PackReader {
    /// Open the pack at `path` and check its header and index (names, sizes, that the
    /// stored files fill the rest of the file exactly).
    pub fn open(path: &Path) -> Result<Self, PackError> {
        let len = hostfile::regular_file_size(path).map_err(|e| io(path)(e.into_io_error()))?;
        let mut file = std::fs::File::open(path).map_err(io(path))?;
        let corrupt = |offset: u64, what: String| PackError::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let mut head = [0u8; PREFIX_LEN as usize];
        let got = read_up_to(&mut file, &mut head).map_err(io(path))?;
        let m = got.min(8);
        if head[..m] != PACK_MAGIC[..m] || got == 0 {
            return Err(corrupt(
                0,
                format!(
                    "not a rewind pack: {}",
                    crate::file_kind::describe(&head[..m])
                ),
            ));
        }
        if got < PREFIX_LEN as usize {
            return Err(corrupt(
                got as u64,
                format!("the file ends inside the header ({len} bytes)"),
            ));
        }
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != PACK_VERSION {
            return Err(corrupt(
                8,
                format!("unsupported pack version {version} (this build reads {PACK_VERSION})"),
            ));
        }
        let flags = u16::from_le_bytes([head[10], head[11]]);
        if flags != 0 {
            return Err(corrupt(10, format!("unknown flags {flags:#06x}")));
        }
        let ilen = u64::from(u32::from_le_bytes([head[12], head[13], head[14], head[15]]));
        let crc = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        if ilen > MAX_INDEX {
            return Err(corrupt(12, format!("index length {ilen} is too large")));
        }
        if PREFIX_LEN + ilen > len {
            return Err(corrupt(
                PREFIX_LEN,
                format!("the index of {ilen} bytes runs past the end of the file ({len} bytes)"),
            ));
        }
        let mut index = vec![0u8; ilen as usize];
        file.read_exact(&mut index).map_err(io(path))?;
        let computed = crc32fast::hash(&index);
        if computed != crc {
            return Err(corrupt(
                16,
                format!("index checksum mismatch (stored {crc:#010x}, computed {computed:#010x})"),
            ));
        }
        let idx: Index = serde_json::from_slice(&index)
            .map_err(|e| corrupt(PREFIX_LEN, format!("cannot decode the index: {e}")))?;
        let data_start = PREFIX_LEN + ilen;
        check_entries(&idx.files, len - data_start).map_err(|what| corrupt(PREFIX_LEN, what))?;
        Ok(PackReader {
            path: path.to_path_buf(),
            file,
            len,
            data_start,
            entries: idx.files,
        })
    }

    /// The files in the pack.
    pub fn entries(&self) -> &[PackEntry] {
        &self.entries
    }

    /// The pack's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the pack holds nothing (never true of an opened pack: it has a trace).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Unpack every file into `dir` (created if missing; existing files there are never
    /// replaced), checking each file's size and hash as it is written; a file that does not
    /// match is removed and is an error naming its offset in the pack. Returns the paths.
    pub fn unpack(&mut self, dir: &Path) -> Result<Vec<PathBuf>, PackError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut offset = self.data_start;
        let mut written = Vec::new();
        for e in self.entries.clone() {
            let target = dir.join(&e.name);
            self.unpack_one(&e, offset, &target)?;
            written.push(target);
            offset += e.stored;
        }
        Ok(written)
    }

    fn unpack_one(&mut self, e: &PackEntry, offset: u64, target: &Path) -> Result<(), PackError> {
        use std::io::Seek;
        let corrupt = |what: String| PackError::Corrupt {
            path: self.path.clone(),
            offset,
            what,
        };
        self.file
            .seek(std::io::SeekFrom::Start(offset))
            .map_err(io(&self.path))?;
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(io(target))?;
        let result = (|| {
            let mut out = std::io::BufWriter::new(out);
            let frame = (&mut self.file).take(e.stored);
            let mut dec = zstd::stream::read::Decoder::new(frame)
                .map_err(|err| corrupt(format!("{}: cannot decompress: {err}", e.name)))?
                .single_frame();
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut total = 0u64;
            loop {
                let n = match dec.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(err) => {
                        return Err(corrupt(format!("{}: cannot decompress: {err}", e.name)))
                    }
                };
                total += n as u64;
                if total > e.size {
                    return Err(corrupt(format!(
                        "{}: holds more than the {} bytes its index entry says",
                        e.name, e.size
                    )));
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io(target))?;
            }
            if total != e.size {
                return Err(corrupt(format!(
                    "{}: holds {total} bytes, its index entry says {}",
                    e.name, e.size
                )));
            }
            let hash = hasher.finalize().to_hex().to_string();
            if hash != e.blake3 {
                return Err(corrupt(format!(
                    "{}: content hash {hash} differs from its index entry's {}",
                    e.name, e.blake3
                )));
            }
            out.flush().map_err(io(target))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(target);
        }
        result
    }
}

/// Reads as much of `buf` as the file holds.
fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The index's entries make sense: safe unique names, one trace, at most one snapshot file,
/// sizes bounded, the stored frames filling `data_len` bytes exactly.
fn check_entries(files: &[PackEntry], data_len: u64) -> Result<(), String> {
    if files.len() > MAX_FILES {
        return Err(format!("{} files (at most {MAX_FILES})", files.len()));
    }
    let mut names = std::collections::HashSet::new();
    let mut sum = 0u64;
    for (i, e) in files.iter().enumerate() {
        let safe = !e.name.is_empty()
            && e.name.len() <= 255
            && e.name != "."
            && e.name != ".."
            && !e.name.contains(['/', '\\', '\0']);
        if !safe {
            return Err(format!("file {i} has an unsafe name {:?}", e.name));
        }
        if !names.insert(e.name.as_str()) {
            return Err(format!("two files are named {:?}", e.name));
        }
        if e.size > MAX_FILE {
            return Err(format!("{}: size {} is too large", e.name, e.size));
        }
        if e.blake3.len() != 64 || !e.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{}: bad hash {:?}", e.name, e.blake3));
        }
        sum = sum
            .checked_add(e.stored)
            .ok_or_else(|| "stored sizes overflow".to_string())?;
    }
    let count = |r: Role| files.iter().filter(|e| e.role == r).count();
    if count(Role::Trace) != 1 {
        return Err(format!("{} traces (a pack holds one)", count(Role::Trace)));
    }
    if count(Role::Snapshots) > 1 {
        return Err("more than one snapshot file".into());
    }
    if sum != data_len {
        return Err(format!(
            "the files' stored sizes add up to {sum} bytes, the pack holds {data_len} after its \
             index (cut short or damaged)"
        ));
    }
    Ok(())
}

/// Where an unpacked recording is: its trace and its snapshot file.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// The trace.
    pub trace: PathBuf,
    /// Its snapshot file, when the pack has one.
    pub snapshots: Option<PathBuf>,
    /// Every file written.
    pub files: Vec<PathBuf>,
}

/// Unpack the pack at `pack` into `dir`; see [`PackReader::unpack`].
pub fn unpack(pack: &Path, dir: &Path) -> Result<Unpacked, PackError> {
    let mut r = PackReader::open(pack)?;
    let files = r.unpack(dir)?;
    let find = |role: Role| {
        r.entries()
            .iter()
            .find(|e| e.role == role)
            .map(|e| dir.join(&e.name))
    };
    let trace = find(Role::Trace).ok_or_else(|| PackError::Refused("no trace".into()))?;
    Ok(Unpacked {
        snapshots: find(Role::Snapshots),
        trace,
        files,
    })
}
