//! `rewind-log`: the on-disk replay trace format of rewind.
//!
//! A trace is a header (magic, version, JSON record with the machine configuration and image
//! hashes, CRC32), then the event stream cut into zstd-compressed, CRC-protected blocks, then a
//! footer (JSON summary, CRC32) and a fixed 16-byte trailer pointing at the footer. Every byte
//! is described in `docs/log-format.md`.
//!
//! Design points (learned from QEMU's log, which has none of them): every block is checksummed
//! and length-prefixed so corruption is reported with a file offset; each block is written with
//! one `write` so a writer killed mid-run leaves a file whose complete blocks are readable; the
//! trailer gives the final icount without scanning; no length read from the file drives an
//! allocation before it is checked against a cap and against the file size.
//!
//! ```no_run
//! use rewind_log::{Event, Footer, TraceHeader, TraceReader, TraceWriter};
//! # fn main() -> Result<(), rewind_log::LogError> {
//! let header = TraceHeader::new("0.1.0", serde_json::json!({"ram_mb": 128}), 0, vec![], 0);
//! let mut w = TraceWriter::create("run.rwtrace", &header)?;
//! w.push(1000, &Event::SerialInput { port: 0, bytes: b"ls\n".to_vec() })?;
//! w.finish(&Footer::new(5000, None))?;
//! let mut r = TraceReader::open("run.rwtrace")?;
//! while let Some(ev) = r.next_event()? {
//!     println!("{} {:?}", ev.icount, ev.event);
//! }
//! # Ok(()) }
//! ```

pub mod dump;
mod error;
pub mod evdev;
mod event;
mod header;
pub mod hostfile;
mod reader;
mod writer;

pub use error::{Corruption, LogError};
pub use event::{
    Event, EventKind, GuestExitKind, ShutdownCause, MAX_EVENT_BLOB, MAX_STATE_REGISTERS,
};
pub use header::{Footer, ImageInfo, ImageRole, TraceHeader};
pub use reader::{EventAt, Position, ReaderCursor, TraceReader, Truncation};
pub use writer::TraceWriter;

/// First 8 bytes of every trace.
pub const FILE_MAGIC: [u8; 8] = *b"RWNDTRC\0";
/// Format version written by this build, and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// First 4 bytes of every block.
pub const BLOCK_MAGIC: [u8; 4] = *b"RWBK";
/// First 4 bytes of the footer record.
pub const FOOTER_MAGIC: [u8; 4] = *b"RWFT";
/// Last 8 bytes of a finished trace.
pub const TRAILER_MAGIC: [u8; 8] = *b"RWNDEND\0";
/// Default amount of raw (uncompressed) event bytes per block.
pub const DEFAULT_BLOCK_SIZE: usize = 64 << 10;

/// Bytes before the header JSON: magic, version, u32 length.
pub(crate) const FILE_PREFIX_LEN: u64 = 14;
/// Bytes of a block header: magic, u32 compressed length, u32 raw length, u64 first icount, u32 CRC.
pub(crate) const BLOCK_HEADER_LEN: u64 = 24;
/// Bytes of the trailer: u64 footer offset, magic.
pub(crate) const TRAILER_LEN: u64 = 16;
/// Largest accepted block block size setting (an event may make one block larger).
pub(crate) const MAX_BLOCK_TARGET: usize = 4 << 20;
/// Largest raw block: the target plus one maximal event, rounded up.
pub(crate) const MAX_BLOCK_RAW: u64 = 16 << 20;
/// Largest compressed block (zstd's worst-case expansion of a maximal block is far below this).
pub(crate) const MAX_BLOCK_COMPRESSED: u64 = MAX_BLOCK_RAW + (MAX_BLOCK_RAW >> 7) + 4096;
/// Largest header JSON record.
pub(crate) const MAX_HEADER_LEN: u64 = 16 << 20;
/// Largest footer JSON record.
pub(crate) const MAX_FOOTER_LEN: u64 = 1 << 20;
/// zstd level: fast, and the event stream is highly repetitive anyway.
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// CRC32 protecting a block: covers the three header fields after the magic and the payload,
/// so a flipped length or first-icount byte is caught too.
pub(crate) fn block_crc(header_fields: &[u8], compressed: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header_fields);
    h.update(compressed);
    h.finalize()
}
