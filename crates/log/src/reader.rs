//! Reading traces.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::Corruption;
use crate::event::{decode_event, Event, EventKind};
use crate::header::{Footer, TraceHeader};
use crate::{
    block_crc, LogError, BLOCK_HEADER_LEN, BLOCK_MAGIC, FILE_MAGIC, FILE_PREFIX_LEN, FOOTER_MAGIC,
    FORMAT_VERSION, MAX_BLOCK_COMPRESSED, MAX_BLOCK_RAW, MAX_FOOTER_LEN, MAX_HEADER_LEN,
    TRAILER_LEN, TRAILER_MAGIC,
};

/// Where an event is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Index of its block (0 = first block).
    pub block_index: u64,
    /// File offset of its block's header.
    pub block_file_offset: u64,
    /// Offset of its tag byte inside the decompressed block.
    pub offset_in_block: u32,
}

/// An event with its icount and location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAt {
    /// Instruction count at which the event happens.
    pub icount: u64,
    /// The event.
    pub event: Event,
    /// Where it is stored.
    pub position: Position,
    /// Size of its encoding (tag, delta, payload) inside the decompressed block.
    pub encoded_len: u32,
}

/// Where a trace cut short (writer crashed or killed) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Truncation {
    /// File offset of the first incomplete block or record (= end of the usable data).
    pub file_offset: u64,
    /// Bytes present after `file_offset` that could not be used.
    pub bytes_lost: u64,
    /// icount of the last event read, if any.
    pub last_icount: Option<u64>,
    /// True if the `End` event was read and only the footer or trailer is missing.
    pub events_complete: bool,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.events_complete {
            write!(f, "trace is complete but its footer is cut")?;
        } else {
            match self.last_icount {
                Some(n) => write!(f, "recording was cut at instruction {n}")?,
                None => write!(f, "recording was cut before its first event")?,
            }
        }
        write!(
            f,
            " (file ends at offset {} with {} unusable bytes)",
            self.file_offset, self.bytes_lost
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum State {
    /// Reading events.
    Events,
    /// `End` was returned; the footer remains to be checked.
    AfterEnd,
    /// Nothing more to return (finished, cut, or after an error).
    Done,
}

/// A reading position of a [`TraceReader`] (everything its next read depends on), taken with
/// [`TraceReader::cursor`] and returned to with [`TraceReader::seek_to`]. Small: the
/// decompressed block is not kept, it is read again from the file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReaderCursor {
    /// File offset of the block being read (`None`: no block loaded yet).
    block_file_offset: Option<u64>,
    /// Offset of the next event inside that block.
    block_pos: u64,
    next_offset: u64,
    block_index: u64,
    blocks_read: u64,
    compressed_bytes: u64,
    raw_bytes: u64,
    icount: u64,
    last_icount: Option<u64>,
    counts: Vec<u64>,
    state: State,
    truncation: Option<Truncation>,
}

impl ReaderCursor {
    /// icount of the last event read before this position (`None`: none yet).
    pub fn last_icount(&self) -> Option<u64> {
        self.last_icount
    }

    /// File offset of the block being read and the offset of the next event inside it.
    pub fn block_position(&self) -> Option<(u64, u64)> {
        self.block_file_offset.map(|b| (b, self.block_pos))
    }
}

/// Reads a trace sequentially, verifying every checksum and length.
pub struct TraceReader {
    path: PathBuf,
    file: File,
    file_len: u64,
    header: TraceHeader,
    footer: Option<Footer>,
    /// File offset of the footer (if found through the trailer) or the file length.
    limit: u64,
    /// File offset of the next block or record.
    next_offset: u64,
    block: Vec<u8>,
    block_pos: usize,
    block_index: u64,
    block_offset: u64,
    blocks_read: u64,
    compressed_bytes: u64,
    raw_bytes: u64,
    /// icount of the last decoded event (or of the current block's start).
    icount: u64,
    last_icount: Option<u64>,
    counts: [u64; EventKind::ALL.len()],
    state: State,
    truncation: Option<Truncation>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl TraceReader {
    /// Opens a trace: checks magic, version and header checksum, and locates the footer.
    pub fn open(path: impl AsRef<Path>) -> Result<TraceReader, LogError> {
        let path = path.as_ref().to_path_buf();
        let io = |source, offset| LogError::Io {
            path: path.clone(),
            offset,
            source,
        };
        // A trace is a regular file (it is read from both ends): never a device or FIFO.
        let (file, file_len) =
            crate::hostfile::open_regular(&path, u64::MAX).map_err(|problem| LogError::Open {
                path: path.clone(),
                problem,
            })?;
        let decompressor = zstd::bulk::Decompressor::new().map_err(|e| io(e, 0))?;
        let mut r = TraceReader {
            path,
            file,
            file_len,
            header: TraceHeader::new("", serde_json::Value::Null, 0, Vec::new(), 0),
            footer: None,
            limit: file_len,
            next_offset: 0,
            block: Vec::new(),
            block_pos: 0,
            block_index: 0,
            block_offset: 0,
            blocks_read: 0,
            compressed_bytes: 0,
            raw_bytes: 0,
            icount: 0,
            last_icount: None,
            counts: [0; EventKind::ALL.len()],
            state: State::Events,
            truncation: None,
            decompressor,
        };
        r.read_header()?;
        r.read_trailer()?;
        Ok(r)
    }

    fn io_err(&self, offset: u64, source: std::io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            offset,
            source,
        }
    }

    fn corrupt(&self, file_offset: u64, what: Corruption) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            file_offset,
            block_index: self.blocks_read,
            what,
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), LogError> {
        let r = self
            .file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(buf));
        r.map_err(|e| self.io_err(offset, e))
    }

    fn truncated_header(&self, needed: u64) -> LogError {
        LogError::TruncatedHeader {
            path: self.path.clone(),
            len: self.file_len,
            needed,
        }
    }

    fn read_header(&mut self) -> Result<(), LogError> {
        let mut prefix = [0u8; FILE_PREFIX_LEN as usize];
        let have = self.file_len.min(FILE_PREFIX_LEN) as usize;
        self.read_at(0, &mut prefix[..have])?;
        let magic_have = have.min(8);
        if prefix[..magic_have] != FILE_MAGIC[..magic_have] {
            return Err(LogError::BadMagic {
                path: self.path.clone(),
                found: prefix[..magic_have].to_vec(),
            });
        }
        if have < 10 {
            return Err(self.truncated_header(FILE_PREFIX_LEN));
        }
        let version = u16::from_le_bytes([prefix[8], prefix[9]]);
        if version != FORMAT_VERSION {
            return Err(LogError::UnsupportedVersion {
                path: self.path.clone(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if have < FILE_PREFIX_LEN as usize {
            return Err(self.truncated_header(FILE_PREFIX_LEN));
        }
        let len = u64::from(u32::from_le_bytes([
            prefix[10], prefix[11], prefix[12], prefix[13],
        ]));
        if len > MAX_HEADER_LEN {
            return Err(LogError::BadHeader {
                path: self.path.clone(),
                offset: 10,
                what: format!("header record length {len} exceeds the limit of {MAX_HEADER_LEN}"),
            });
        }
        let end = FILE_PREFIX_LEN + len + 4;
        if self.file_len < end {
            return Err(self.truncated_header(end));
        }
        let mut rec = vec![0u8; len as usize + 4];
        self.read_at(FILE_PREFIX_LEN, &mut rec)?;
        let (json, crc) = rec.split_at(len as usize);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32fast::hash(json);
        if stored != computed {
            return Err(LogError::HeaderChecksum {
                path: self.path.clone(),
                offset: FILE_PREFIX_LEN + len,
                stored,
                computed,
            });
        }
        self.header = serde_json::from_slice(json).map_err(|e| LogError::BadHeader {
            path: self.path.clone(),
            offset: FILE_PREFIX_LEN,
            what: e.to_string(),
        })?;
        self.next_offset = end;
        Ok(())
    }

    /// Looks for the trailer at the end of the file; if present, the footer it points at must be valid.
    fn read_trailer(&mut self) -> Result<(), LogError> {
        let data_start = self.next_offset;
        if self.file_len < data_start + 12 + TRAILER_LEN {
            return Ok(());
        }
        let trailer_at = self.file_len - TRAILER_LEN;
        let mut t = [0u8; TRAILER_LEN as usize];
        self.read_at(trailer_at, &mut t)?;
        if t[8..] != TRAILER_MAGIC {
            // No trailer: the file was cut (or the trailer is damaged, found by the scan).
            return Ok(());
        }
        let mut off = [0u8; 8];
        off.copy_from_slice(&t[..8]);
        let footer_offset = u64::from_le_bytes(off);
        if footer_offset < data_start || footer_offset > trailer_at - 12 {
            return Err(self.corrupt(
                trailer_at,
                Corruption::BadTrailer {
                    detail: format!("footer offset {footer_offset} is outside the data"),
                },
            ));
        }
        let footer = self
            .read_footer_at(footer_offset)?
            .map_err(|e| self.corrupt(footer_offset, e))?;
        self.footer = Some(footer);
        self.limit = footer_offset;
        Ok(())
    }

    /// Parses the footer at `offset` of a file known to end with a trailer. Outer error: I/O;
    /// inner: the footer is damaged (a cut cannot happen here, so it counts as damage too).
    fn read_footer_at(&mut self, offset: u64) -> Result<Result<Footer, Corruption>, LogError> {
        match self.footer_status(offset)? {
            FooterStatus::Ok(f) => Ok(Ok(f)),
            FooterStatus::Cut => Ok(Err(Corruption::BadFooter {
                detail: "footer record runs past the trailer".into(),
            })),
            FooterStatus::Bad(c) => Ok(Err(c)),
        }
    }

    /// Classifies what lies at `offset`: an intact footer + trailer, a cut one, or garbage.
    fn footer_status(&mut self, offset: u64) -> Result<FooterStatus, LogError> {
        let avail = self.file_len - offset;
        let mut head = [0u8; 8];
        let have = avail.min(8) as usize;
        self.read_at(offset, &mut head[..have])?;
        let m = have.min(4);
        if head[..m] != FOOTER_MAGIC[..m] {
            let mut found = [0u8; 4];
            found[..m].copy_from_slice(&head[..m]);
            return Ok(FooterStatus::Bad(Corruption::BadFooter {
                detail: format!("expected footer magic \"RWFT\", found {found:02x?}"),
            }));
        }
        if have < 8 {
            return Ok(FooterStatus::Cut);
        }
        let len = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        if len > MAX_FOOTER_LEN {
            return Ok(FooterStatus::Bad(Corruption::BadLength {
                field: "footer length",
                value: len,
                max: MAX_FOOTER_LEN,
            }));
        }
        let rec_end = offset + 8 + len + 4;
        if rec_end > self.file_len {
            return Ok(FooterStatus::Cut);
        }
        let mut rec = vec![0u8; len as usize + 4];
        self.read_at(offset + 8, &mut rec)?;
        let (json, crc) = rec.split_at(len as usize);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let computed = crc32fast::hash(json);
        if stored != computed {
            return Ok(FooterStatus::Bad(Corruption::Checksum { stored, computed }));
        }
        let footer: Footer = match serde_json::from_slice(json) {
            Ok(f) => f,
            Err(e) => {
                return Ok(FooterStatus::Bad(Corruption::BadFooter {
                    detail: e.to_string(),
                }))
            }
        };
        // The trailer must follow immediately and end the file.
        let mut expect = [0u8; TRAILER_LEN as usize];
        expect[..8].copy_from_slice(&offset.to_le_bytes());
        expect[8..].copy_from_slice(&TRAILER_MAGIC);
        let rest = self.file_len - rec_end;
        let have = rest.min(TRAILER_LEN) as usize;
        let mut t = [0u8; TRAILER_LEN as usize];
        self.read_at(rec_end, &mut t[..have])?;
        if t[..have] != expect[..have] {
            return Ok(FooterStatus::Bad(Corruption::BadTrailer {
                detail: format!("trailer at offset {rec_end} does not point back at the footer"),
            }));
        }
        if rest > TRAILER_LEN {
            return Ok(FooterStatus::Bad(Corruption::BadTrailer {
                detail: format!("{} bytes after the trailer", rest - TRAILER_LEN),
            }));
        }
        if rest < TRAILER_LEN {
            return Ok(FooterStatus::Cut);
        }
        Ok(FooterStatus::Ok(footer))
    }

    /// The verified header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The footer, found in O(1) through the trailer; `None` if the file was cut short.
    pub fn footer(&self) -> Option<&Footer> {
        self.footer.as_ref()
    }

    /// Where the file is cut, once reading has reached the cut; `None` for an intact file.
    pub fn truncated(&self) -> Option<Truncation> {
        self.truncation
    }

    /// The trace file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the trace file.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Number of blocks read so far.
    pub fn blocks_read(&self) -> u64 {
        self.blocks_read
    }

    /// Compressed payload bytes of the blocks read so far (block headers excluded).
    pub fn compressed_bytes_read(&self) -> u64 {
        self.compressed_bytes
    }

    /// Raw (decompressed) bytes of the blocks read so far.
    pub fn raw_bytes_read(&self) -> u64 {
        self.raw_bytes
    }

    /// The current reading position: [`TraceReader::seek_to`] with it makes the reader return
    /// the same events from here on.
    pub fn cursor(&self) -> ReaderCursor {
        ReaderCursor {
            block_file_offset: (self.blocks_read > 0).then_some(self.block_offset),
            block_pos: self.block_pos as u64,
            next_offset: self.next_offset,
            block_index: self.block_index,
            blocks_read: self.blocks_read,
            compressed_bytes: self.compressed_bytes,
            raw_bytes: self.raw_bytes,
            icount: self.icount,
            last_icount: self.last_icount,
            counts: self.counts.to_vec(),
            state: self.state,
            truncation: self.truncation,
        }
    }

    /// Go back (or forward) to a position taken with [`TraceReader::cursor`] on this trace:
    /// the block it names is read again (checksum verified) and decoding resumes inside it.
    pub fn seek_to(&mut self, cursor: &ReaderCursor) -> Result<(), LogError> {
        let path = self.path.clone();
        let bad = |detail: &str| LogError::BadSeek {
            path: path.clone(),
            block_file_offset: cursor.block_file_offset.unwrap_or(0),
            offset_in_block: cursor.block_pos,
            detail: detail.to_string(),
        };
        if cursor.counts.len() != self.counts.len() {
            return Err(bad("the position has a different number of event kinds"));
        }
        if cursor.next_offset > self.limit {
            return Err(bad("the position lies past the end of the trace's events"));
        }
        match cursor.block_file_offset {
            Some(off) => {
                if off >= cursor.next_offset || cursor.blocks_read == 0 {
                    return Err(bad("inconsistent block offsets"));
                }
                self.next_offset = off;
                self.last_icount = None;
                self.state = State::Events;
                let loaded = self.load_block();
                if !matches!(loaded, Ok(true)) {
                    self.state = State::Done;
                    loaded?;
                    return Err(bad("no complete block there"));
                }
                if self.next_offset != cursor.next_offset
                    || cursor.block_pos > self.block.len() as u64
                {
                    self.state = State::Done;
                    return Err(bad("the block there does not match the position"));
                }
            }
            None => {
                if cursor.blocks_read != 0 || cursor.block_pos != 0 {
                    return Err(bad("inconsistent block offsets"));
                }
                self.block.clear();
            }
        }
        self.block_pos = cursor.block_pos as usize;
        self.next_offset = cursor.next_offset;
        self.block_index = cursor.block_index;
        self.block_offset = cursor.block_file_offset.unwrap_or(0);
        self.blocks_read = cursor.blocks_read;
        self.compressed_bytes = cursor.compressed_bytes;
        self.raw_bytes = cursor.raw_bytes;
        self.icount = cursor.icount;
        self.last_icount = cursor.last_icount;
        self.counts.copy_from_slice(&cursor.counts);
        self.state = cursor.state;
        self.truncation = cursor.truncation;
        Ok(())
    }

    /// Returns the next event; `Ok(None)` after `End` (footer verified) or at the cut of a
    /// truncated file (see [`truncated`](Self::truncated)). After an error it returns `Ok(None)`.
    pub fn next_event(&mut self) -> Result<Option<EventAt>, LogError> {
        let r = self.next_inner();
        if r.is_err() {
            self.state = State::Done;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<EventAt>, LogError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::AfterEnd => {
                    self.check_tail()?;
                    self.state = State::Done;
                    return Ok(None);
                }
                State::Events => {}
            }
            if self.block_pos < self.block.len() {
                return self.decode_next().map(Some);
            }
            if !self.load_block()? {
                self.state = State::Done;
                return Ok(None);
            }
        }
    }

    fn decode_next(&mut self) -> Result<EventAt, LogError> {
        let pos = self.block_pos;
        let at = self.block_offset;
        let (delta, event, len) =
            decode_event(&self.block, pos).map_err(|c| self.block_err(at, c))?;
        if pos == 0 && delta != 0 {
            return Err(self.block_err(
                at,
                Corruption::IcountInconsistent {
                    detail: format!("first event of the block has delta {delta}, expected 0"),
                },
            ));
        }
        let icount = self.icount.checked_add(delta).ok_or_else(|| {
            self.block_err(
                at,
                Corruption::IcountInconsistent {
                    detail: format!("icount overflows at byte {pos} of the block"),
                },
            )
        })?;
        if let Some(f) = &self.footer {
            // The footer bounds every event: a delta past it would make replay run the guest
            // toward an icount the recording never reached.
            if icount > f.final_icount {
                return Err(self.block_err(
                    at,
                    Corruption::IcountInconsistent {
                        detail: format!(
                            "event at byte {pos} of the block is at icount {icount}, past the \
                             footer's final icount {}",
                            f.final_icount
                        ),
                    },
                ));
            }
        }
        self.block_pos = pos + len;
        if let Event::End = event {
            if self.block_pos != self.block.len() {
                return Err(self.block_err(at, Corruption::DataAfterEnd));
            }
            self.state = State::AfterEnd;
        }
        self.icount = icount;
        self.last_icount = Some(icount);
        self.counts[event.kind() as usize] += 1;
        Ok(EventAt {
            icount,
            event,
            position: Position {
                block_index: self.block_index,
                block_file_offset: at,
                offset_in_block: pos as u32,
            },
            encoded_len: len as u32,
        })
    }

    fn block_err(&self, file_offset: u64, what: Corruption) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            file_offset,
            block_index: self.block_index,
            what,
        }
    }

    fn cut(&mut self, at: u64, events_complete: bool) {
        self.truncation = Some(Truncation {
            file_offset: at,
            bytes_lost: self.file_len - at,
            last_icount: self.last_icount,
            events_complete,
        });
    }

    /// Loads the block at `next_offset`; `Ok(false)` at a cut (truncation recorded).
    fn load_block(&mut self) -> Result<bool, LogError> {
        let off = self.next_offset;
        let complete = self.footer.is_some();
        let avail = self.limit - off;
        if avail == 0 {
            if complete {
                return Err(self.corrupt(
                    off,
                    Corruption::BadFooter {
                        detail: "trace has a footer but no End event".into(),
                    },
                ));
            }
            self.cut(off, false);
            return Ok(false);
        }
        let mut head = [0u8; BLOCK_HEADER_LEN as usize];
        let have = avail.min(BLOCK_HEADER_LEN) as usize;
        self.read_at(off, &mut head[..have])?;
        let m = have.min(4);
        if head[..m] != BLOCK_MAGIC[..m] {
            let mut found = [0u8; 4];
            found[..m].copy_from_slice(&head[..m]);
            let what = if found == FOOTER_MAGIC {
                Corruption::BadFooter {
                    detail: "footer found before the End event".into(),
                }
            } else {
                Corruption::BadBlockMagic { found }
            };
            return Err(self.corrupt(off, what));
        }
        if have < BLOCK_HEADER_LEN as usize {
            return self.cut_or_corrupt(off, complete, "block header runs past the footer");
        }
        let u32_at = |i: usize| {
            u64::from(u32::from_le_bytes([
                head[i],
                head[i + 1],
                head[i + 2],
                head[i + 3],
            ]))
        };
        let comp_len = u32_at(4);
        let raw_len = u32_at(8);
        let mut ic = [0u8; 8];
        ic.copy_from_slice(&head[12..20]);
        let first_icount = u64::from_le_bytes(ic);
        let stored = u32_at(20) as u32;
        if raw_len == 0 || raw_len > MAX_BLOCK_RAW {
            return Err(self.corrupt(
                off,
                Corruption::BadLength {
                    field: "block raw length",
                    value: raw_len,
                    max: MAX_BLOCK_RAW,
                },
            ));
        }
        if comp_len == 0 || comp_len > MAX_BLOCK_COMPRESSED {
            return Err(self.corrupt(
                off,
                Corruption::BadLength {
                    field: "block compressed length",
                    value: comp_len,
                    max: MAX_BLOCK_COMPRESSED,
                },
            ));
        }
        if BLOCK_HEADER_LEN + comp_len > avail {
            if complete {
                return Err(self.corrupt(
                    off,
                    Corruption::BadLength {
                        field: "block compressed length",
                        value: comp_len,
                        max: avail - BLOCK_HEADER_LEN,
                    },
                ));
            }
            self.cut(off, false);
            return Ok(false);
        }
        // Length checked against the cap and the file size above: safe to allocate.
        let mut comp = vec![0u8; comp_len as usize];
        self.read_at(off + BLOCK_HEADER_LEN, &mut comp)?;
        let computed = block_crc(&head[4..20], &comp);
        if computed != stored {
            return Err(self.corrupt(off, Corruption::Checksum { stored, computed }));
        }
        let mut raw = std::mem::take(&mut self.block);
        raw.clear();
        // One spare byte so a block that inflates past its declared size shows as a mismatch.
        raw.reserve_exact(raw_len as usize + 1);
        let n = match self.decompressor.decompress_to_buffer(&comp, &mut raw) {
            Ok(n) => n as u64,
            Err(e) => {
                return Err(self.corrupt(
                    off,
                    Corruption::Decompress {
                        message: e.to_string(),
                    },
                ))
            }
        };
        if n != raw_len {
            return Err(self.corrupt(
                off,
                Corruption::SizeMismatch {
                    expected: raw_len,
                    got: n,
                },
            ));
        }
        if let Some(last) = self.last_icount {
            if first_icount < last {
                return Err(self.corrupt(
                    off,
                    Corruption::IcountInconsistent {
                        detail: format!("block starts at icount {first_icount}, before the previous event at {last}"),
                    },
                ));
            }
        }
        if let Some(f) = &self.footer {
            if first_icount > f.final_icount {
                return Err(self.corrupt(
                    off,
                    Corruption::IcountInconsistent {
                        detail: format!(
                            "block starts at icount {first_icount}, past the footer's final \
                             icount {}",
                            f.final_icount
                        ),
                    },
                ));
            }
        }
        self.block = raw;
        self.block_pos = 0;
        self.block_index = self.blocks_read;
        self.block_offset = off;
        self.blocks_read += 1;
        self.compressed_bytes += comp_len;
        self.raw_bytes += raw_len;
        self.icount = first_icount;
        self.next_offset = off + BLOCK_HEADER_LEN + comp_len;
        Ok(true)
    }

    fn cut_or_corrupt(&mut self, off: u64, complete: bool, detail: &str) -> Result<bool, LogError> {
        if complete {
            return Err(self.corrupt(
                off,
                Corruption::BadFooter {
                    detail: detail.into(),
                },
            ));
        }
        self.cut(off, false);
        Ok(false)
    }

    /// After `End`: the footer must follow and agree with the events read.
    fn check_tail(&mut self) -> Result<(), LogError> {
        let off = self.next_offset;
        let footer = if let Some(f) = &self.footer {
            if off != self.limit {
                return Err(self.corrupt(off, Corruption::DataAfterEnd));
            }
            f.clone()
        } else {
            if off == self.file_len {
                self.cut(off, true);
                return Ok(());
            }
            match self.footer_status(off)? {
                FooterStatus::Ok(_) => {
                    // Intact footer + trailer but `open` found no trailer: impossible unless the
                    // file changed under us.
                    return Err(self.corrupt(
                        off,
                        Corruption::BadTrailer {
                            detail: "trailer changed while reading".into(),
                        },
                    ));
                }
                FooterStatus::Cut => {
                    self.cut(off, true);
                    return Ok(());
                }
                FooterStatus::Bad(c) => return Err(self.corrupt(off, c)),
            }
        };
        let mismatch = |detail: String| Corruption::BadFooter { detail };
        if Some(footer.final_icount) != self.last_icount {
            return Err(self.corrupt(
                off,
                mismatch(format!(
                    "footer says final icount {}, End event is at {}",
                    footer.final_icount,
                    self.last_icount
                        .map_or_else(|| "no icount".to_string(), |n| n.to_string())
                )),
            ));
        }
        let total: u64 = self.counts.iter().sum();
        if footer.total_events != total {
            return Err(self.corrupt(
                off,
                mismatch(format!(
                    "footer counts {} events, read {total}",
                    footer.total_events
                )),
            ));
        }
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            let stored = footer.event_counts.get(kind).copied().unwrap_or(0);
            if stored != self.counts[i] {
                return Err(self.corrupt(
                    off,
                    mismatch(format!(
                        "footer counts {stored} {kind} events, read {}",
                        self.counts[i]
                    )),
                ));
            }
        }
        Ok(())
    }
}

/// What lies where a footer is expected.
enum FooterStatus {
    /// Intact footer and trailer ending the file.
    Ok(Footer),
    /// A consistent prefix of a footer + trailer: the file was cut there.
    Cut,
    /// Something else.
    Bad(Corruption),
}
