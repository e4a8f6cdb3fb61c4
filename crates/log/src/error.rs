//! Errors of the trace writer and reader.

use std::fmt;
use std::path::PathBuf;

/// Every failure of this crate; messages name the file and, where it matters, the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file does not start with `RWNDTRC\0`.
    #[error("{}: not a rewind trace (bad magic {}, expected \"RWNDTRC\\0\")", path.display(), hex(found))]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first bytes found (up to 8).
        found: Vec<u8>,
    },
    /// The format version is not the one this build reads.
    #[error("{}: unsupported trace format version {found} (this build reads {supported})", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version stored in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The CRC32 stored after the header record does not match the record.
    #[error("{}: header checksum mismatch at offset {offset} (stored {stored:#010x}, computed {computed:#010x})", path.display())]
    HeaderChecksum {
        /// The file.
        path: PathBuf,
        /// File offset of the stored checksum.
        offset: u64,
        /// Checksum stored in the file.
        stored: u32,
        /// Checksum computed over the header record.
        computed: u32,
    },
    /// The header record is not valid (bad length, bad JSON, missing field).
    #[error("{}: invalid trace header at offset {offset}: {what}", path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// File offset of the header record.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// The file ends before its header is complete (so no event can be read).
    #[error("{}: truncated trace: file is {len} bytes long, the header needs {needed}", path.display())]
    TruncatedHeader {
        /// The file.
        path: PathBuf,
        /// Length of the file.
        len: u64,
        /// Bytes needed to hold the header.
        needed: u64,
    },
    /// `TraceReader::seek_to` was given a position that is not one of this trace's.
    #[error("{}: cannot seek to block offset {block_file_offset} + {offset_in_block}: {detail}", path.display())]
    BadSeek {
        /// The file.
        path: PathBuf,
        /// File offset of the block the position names.
        block_file_offset: u64,
        /// Offset inside the decompressed block.
        offset_in_block: u64,
        /// Why the position does not fit.
        detail: String,
    },
    /// A block, event or the footer is damaged.
    #[error("{}: corrupt trace at offset {file_offset} (block {block_index}): {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// File offset of the damaged block (or footer / trailer).
        file_offset: u64,
        /// Index of the damaged block (for the footer: the number of blocks before it).
        block_index: u64,
        /// What is wrong.
        what: Corruption,
    },
    /// `TraceWriter::create` refuses to replace an existing file.
    #[error("{}: file already exists (refusing to overwrite a trace; use create_overwrite)", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },
    /// `push` was given an icount smaller than the previous event's.
    #[error("{}: icount went backwards: event at icount {got} after an event at {previous}", path.display())]
    IcountBackwards {
        /// The file.
        path: PathBuf,
        /// icount of the previous event.
        previous: u64,
        /// icount passed now.
        got: u64,
    },
    /// The writer cannot store this event (too large, or `End` pushed by hand).
    #[error("{}: cannot record event: {what}", path.display())]
    InvalidEvent {
        /// The file.
        path: PathBuf,
        /// Why.
        what: String,
    },
    /// A previous write failed, so the file may end with a partial block; nothing more is appended.
    #[error("{}: writer unusable after an earlier I/O error", path.display())]
    WriterFailed {
        /// The file.
        path: PathBuf,
    },
    /// The trace file cannot be opened (missing, a directory, too large, unreadable).
    #[error("{}: cannot open the trace: {problem}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: crate::hostfile::FileProblem,
    },
    /// Reading or writing the trace file failed.
    #[error("{}: I/O error at offset {offset}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// File offset of the operation.
        offset: u64,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Writing dump output (not the trace) failed.
    #[error("writing dump output: {0}")]
    Output(#[source] std::io::Error),
}

/// What exactly is damaged in a [`LogError::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// A block does not start with `RWBK` (nor is it the footer).
    BadBlockMagic {
        /// The 4 bytes found.
        found: [u8; 4],
    },
    /// The CRC32 of a block or of the footer does not match.
    Checksum {
        /// Checksum stored in the file.
        stored: u32,
        /// Checksum computed over the data.
        computed: u32,
    },
    /// A length field is zero, above its cap, or points past the data.
    BadLength {
        /// Which length.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The largest acceptable value.
        max: u64,
    },
    /// zstd refused the compressed bytes.
    Decompress {
        /// zstd's message.
        message: String,
    },
    /// The block decompressed to another size than its header says.
    SizeMismatch {
        /// Raw length stored in the block header.
        expected: u64,
        /// Bytes produced by decompression.
        got: u64,
    },
    /// A LEB128 varint is longer than 10 bytes or overflows 64 bits.
    BadVarint {
        /// Offset of the varint inside the decompressed block.
        offset_in_block: u32,
    },
    /// An event tag byte this build does not know.
    UnknownTag {
        /// The tag byte.
        tag: u8,
        /// Offset of the tag inside the decompressed block.
        offset_in_block: u32,
    },
    /// An event payload runs past the end of its block.
    EventOverrun {
        /// Offset of the event's tag inside the decompressed block.
        offset_in_block: u32,
    },
    /// icounts are inconsistent (a block starting before the previous one ended, a first event off its block).
    IcountInconsistent {
        /// Explanation.
        detail: String,
    },
    /// Data follows the `End` event in its block, or a block follows the `End` block.
    DataAfterEnd,
    /// The footer is missing, malformed or disagrees with the events.
    BadFooter {
        /// Explanation.
        detail: String,
    },
    /// The fixed-size trailer is damaged.
    BadTrailer {
        /// Explanation.
        detail: String,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::BadBlockMagic { found } => {
                write!(f, "bad block magic {} (expected \"RWBK\")", hex(found))
            }
            Corruption::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Corruption::BadLength { field, value, max } => {
                write!(f, "bad length: {field} = {value} (must be 1..={max})")
            }
            Corruption::Decompress { message } => write!(f, "zstd decompression failed: {message}"),
            Corruption::SizeMismatch { expected, got } => write!(
                f,
                "block decompressed to {got} bytes, header says {expected}"
            ),
            Corruption::BadVarint { offset_in_block } => {
                write!(f, "bad varint at byte {offset_in_block} of the block")
            }
            Corruption::UnknownTag {
                tag,
                offset_in_block,
            } => write!(
                f,
                "unknown event tag {tag:#04x} at byte {offset_in_block} of the block"
            ),
            Corruption::EventOverrun { offset_in_block } => write!(
                f,
                "event at byte {offset_in_block} of the block runs past the block end"
            ),
            Corruption::IcountInconsistent { detail } => write!(f, "inconsistent icount: {detail}"),
            Corruption::DataAfterEnd => write!(f, "data after the End event"),
            Corruption::BadFooter { detail } => write!(f, "bad footer: {detail}"),
            Corruption::BadTrailer { detail } => write!(f, "bad trailer: {detail}"),
        }
    }
}

/// Hex string of a short byte slice, for messages.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
