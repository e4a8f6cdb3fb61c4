//! Writing traces.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::event::{encode_event, Event, EventKind, MAX_EVENT_BLOB};
use crate::header::{Footer, TraceHeader};
use crate::{
    block_crc, LogError, BLOCK_MAGIC, DEFAULT_BLOCK_SIZE, FILE_MAGIC, FOOTER_MAGIC, FORMAT_VERSION,
    MAX_BLOCK_TARGET, MAX_HEADER_LEN, TRAILER_MAGIC, ZSTD_LEVEL,
};

/// Appends events to a new trace file.
///
/// Events are buffered until the current block reaches the block size or [`flush`] is called;
/// each block then goes to the file in a single `write`, so a process killed at any moment
/// leaves only complete blocks plus at most one partial one that readers report as a cut.
/// Dropping the writer without [`finish`] writes the pending block (best effort) but no footer.
///
/// [`flush`]: TraceWriter::flush
/// [`finish`]: TraceWriter::finish
pub struct TraceWriter {
    path: PathBuf,
    /// `None` once finished, so `Drop` does nothing.
    file: Option<File>,
    /// Bytes written to the file so far.
    offset: u64,
    /// Raw events of the open block.
    raw: Vec<u8>,
    /// icount of the first event of the open block.
    block_first_icount: u64,
    /// icount of the last pushed event.
    last_icount: Option<u64>,
    block_size: usize,
    counts: [u64; EventKind::ALL.len()],
    compressor: zstd::bulk::Compressor<'static>,
    /// Set after a failed write: the file may end in a partial block, append nothing more.
    failed: bool,
}

impl TraceWriter {
    /// Creates a new trace; fails with [`LogError::AlreadyExists`] if `path` exists.
    pub fn create(path: impl AsRef<Path>, header: &TraceHeader) -> Result<TraceWriter, LogError> {
        Self::create_with(path.as_ref(), header, false)
    }

    /// Creates a trace, replacing any existing file at `path`.
    pub fn create_overwrite(
        path: impl AsRef<Path>,
        header: &TraceHeader,
    ) -> Result<TraceWriter, LogError> {
        Self::create_with(path.as_ref(), header, true)
    }

    fn create_with(
        path: &Path,
        header: &TraceHeader,
        overwrite: bool,
    ) -> Result<TraceWriter, LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            offset: 0,
            source,
        };
        let json = serde_json::to_vec(header).map_err(|e| LogError::BadHeader {
            path: path.to_path_buf(),
            offset: 0,
            what: e.to_string(),
        })?;
        if json.len() as u64 > MAX_HEADER_LEN {
            return Err(LogError::BadHeader {
                path: path.to_path_buf(),
                offset: 0,
                what: format!(
                    "header record is {} bytes, limit {MAX_HEADER_LEN}",
                    json.len()
                ),
            });
        }
        let mut opts = OpenOptions::new();
        opts.write(true);
        if overwrite {
            opts.create(true).truncate(true);
        } else {
            opts.create_new(true);
        }
        let mut file = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                LogError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io(e)
            }
        })?;
        let mut buf = Vec::with_capacity(json.len() + 18);
        buf.extend_from_slice(&FILE_MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        buf.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        file.write_all(&buf).map_err(io)?;
        let compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(io)?;
        Ok(TraceWriter {
            path: path.to_path_buf(),
            file: Some(file),
            offset: buf.len() as u64,
            raw: Vec::with_capacity(DEFAULT_BLOCK_SIZE + 256),
            block_first_icount: 0,
            last_icount: None,
            block_size: DEFAULT_BLOCK_SIZE,
            counts: [0; EventKind::ALL.len()],
            compressor,
            failed: false,
        })
    }

    /// Sets the raw bytes per block (clamped to 1 byte ..= 4 MiB); takes effect from the next event.
    pub fn set_block_size(&mut self, raw_bytes: usize) {
        self.block_size = raw_bytes.clamp(1, MAX_BLOCK_TARGET);
    }

    /// The icount of the last pushed event.
    pub fn last_icount(&self) -> Option<u64> {
        self.last_icount
    }

    /// Records `event` at `icount`; icounts must never decrease, and `End` is reserved to `finish`.
    pub fn push(&mut self, icount: u64, event: &Event) -> Result<(), LogError> {
        if matches!(event, Event::End) {
            return Err(LogError::InvalidEvent {
                path: self.path.clone(),
                what: "End is written by finish(), not push()".into(),
            });
        }
        self.push_inner(icount, event)
    }

    fn push_inner(&mut self, icount: u64, event: &Event) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::WriterFailed {
                path: self.path.clone(),
            });
        }
        if let Some(blob) = event.blob() {
            if blob.len() > MAX_EVENT_BLOB {
                return Err(LogError::InvalidEvent {
                    path: self.path.clone(),
                    what: format!(
                        "{} payload of {} bytes exceeds the limit of {MAX_EVENT_BLOB}",
                        event.kind(),
                        blob.len()
                    ),
                });
            }
        }
        if let Some(previous) = self.last_icount {
            if icount < previous {
                return Err(LogError::IcountBackwards {
                    path: self.path.clone(),
                    previous,
                    got: icount,
                });
            }
        }
        // Deltas are relative to the previous event of the same block, so a block decodes alone.
        let prev = if self.raw.is_empty() {
            self.block_first_icount = icount;
            icount
        } else {
            self.last_icount.unwrap_or(icount)
        };
        encode_event(&mut self.raw, icount - prev, event);
        self.last_icount = Some(icount);
        self.counts[event.kind() as usize] += 1;
        if self.raw.len() >= self.block_size {
            self.write_block()?;
        }
        Ok(())
    }

    /// Closes the current block and writes it out (no-op if no event is pending).
    pub fn flush(&mut self) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::WriterFailed {
                path: self.path.clone(),
            });
        }
        self.write_block()
    }

    fn write_block(&mut self) -> Result<(), LogError> {
        if self.raw.is_empty() {
            return Ok(());
        }
        let at = self.offset;
        let compressed = self
            .compressor
            .compress(&self.raw)
            .map_err(|source| LogError::Io {
                path: self.path.clone(),
                offset: at,
                source,
            })?;
        let mut fields = [0u8; 16];
        fields[0..4].copy_from_slice(&(compressed.len() as u32).to_le_bytes());
        fields[4..8].copy_from_slice(&(self.raw.len() as u32).to_le_bytes());
        fields[8..16].copy_from_slice(&self.block_first_icount.to_le_bytes());
        let mut buf = Vec::with_capacity(compressed.len() + 24);
        buf.extend_from_slice(&BLOCK_MAGIC);
        buf.extend_from_slice(&fields);
        buf.extend_from_slice(&block_crc(&fields, &compressed).to_le_bytes());
        buf.extend_from_slice(&compressed);
        self.write_all(&buf)?;
        self.raw.clear();
        Ok(())
    }

    /// One `write` of a complete unit; on failure the writer refuses further appends.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), LogError> {
        let at = self.offset;
        let Some(file) = self.file.as_mut() else {
            return Err(LogError::WriterFailed {
                path: self.path.clone(),
            });
        };
        match file.write_all(buf).and_then(|()| file.flush()) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                Err(LogError::Io {
                    path: self.path.clone(),
                    offset: at,
                    source,
                })
            }
        }
    }

    /// Writes the `End` event at `footer.final_icount`, the footer (counts filled in by the
    /// writer) and the trailer, syncs the file, and returns its total size in bytes.
    pub fn finish(mut self, footer: &Footer) -> Result<u64, LogError> {
        self.push_inner(footer.final_icount, &Event::End)?;
        self.write_block()?;
        let mut footer = footer.clone();
        footer.total_events = self.counts.iter().sum();
        footer.event_counts = EventKind::ALL
            .iter()
            .zip(self.counts)
            .filter(|&(_, n)| n > 0)
            .map(|(&k, n)| (k, n))
            .collect();
        let json = serde_json::to_vec(&footer).map_err(|e| LogError::InvalidEvent {
            path: self.path.clone(),
            what: format!("footer: {e}"),
        })?;
        let footer_offset = self.offset;
        let mut buf = Vec::with_capacity(json.len() + 28);
        buf.extend_from_slice(&FOOTER_MAGIC);
        buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
        buf.extend_from_slice(&json);
        buf.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        buf.extend_from_slice(&footer_offset.to_le_bytes());
        buf.extend_from_slice(&TRAILER_MAGIC);
        self.write_all(&buf)?;
        let total = self.offset;
        if let Some(file) = self.file.take() {
            file.sync_all().map_err(|source| LogError::Io {
                path: self.path.clone(),
                offset: total,
                source,
            })?;
        }
        Ok(total)
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // Best effort: keep the buffered events of an unfinished trace (reads as a cut file).
        if self.file.is_some() && !self.failed {
            let _ = self.write_block();
        }
    }
}
