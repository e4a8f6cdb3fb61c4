//! The header and footer records (JSON, protected by CRC32).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::LogError;

/// What a loaded image is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageRole {
    /// Firmware (OpenSBI, our bare-metal guests).
    Bios,
    /// Kernel image.
    Kernel,
    /// Initial ramdisk.
    Initrd,
    /// Device tree blob given by the user.
    Dtb,
    /// Disk image behind a block device.
    Disk,
    /// Anything else.
    Other,
}

/// One file the machine loaded, identified by content hash so replay can refuse a different one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// What the image is used for.
    pub role: ImageRole,
    /// File name as given on the command line.
    pub file_name: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hash of the content, 64 lowercase hex digits.
    pub blake3: String,
}

impl ImageInfo {
    /// Describes an image held in memory.
    pub fn from_bytes(role: ImageRole, file_name: impl Into<String>, data: &[u8]) -> ImageInfo {
        ImageInfo {
            role,
            file_name: file_name.into(),
            size: data.len() as u64,
            blake3: blake3::hash(data).to_hex().to_string(),
        }
    }

    /// Describes an image file, hashing it in streaming fashion (disk images can be large).
    pub fn from_file(role: ImageRole, path: &Path) -> Result<ImageInfo, LogError> {
        let io = |source, offset| LogError::Io {
            path: path.to_path_buf(),
            offset,
            source,
        };
        let mut f = std::fs::File::open(path).map_err(|e| io(e, 0))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| io(e, size))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(ImageInfo {
            role,
            file_name: path.display().to_string(),
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }
}

/// Everything needed to replay a trace without other options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Version of rewind that recorded the trace.
    pub rewind_version: String,
    /// Full machine configuration, opaque to this crate.
    pub machine_config: serde_json::Value,
    /// Virtual time per instruction is 2^icount_shift ns.
    pub icount_shift: u32,
    /// Images loaded at start.
    pub images: Vec<ImageInfo>,
    /// Creation time, milliseconds since the Unix epoch (informational only).
    pub created_unix_ms: u64,
    /// Instructions between two `StateHash` events (0 = none recorded).
    pub state_hash_interval: u64,
}

impl TraceHeader {
    /// A header stamped with the current time.
    pub fn new(
        rewind_version: impl Into<String>,
        machine_config: serde_json::Value,
        icount_shift: u32,
        images: Vec<ImageInfo>,
        state_hash_interval: u64,
    ) -> TraceHeader {
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        TraceHeader {
            rewind_version: rewind_version.into(),
            machine_config,
            icount_shift,
            images,
            created_unix_ms,
            state_hash_interval,
        }
    }
}

/// Summary written at the end of a finished trace; readable in O(1) through the trailer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footer {
    /// icount at which recording ended (the `End` event's icount).
    pub final_icount: u64,
    /// State hash at the end of recording, if the machine computed one.
    pub final_state_hash: Option<u64>,
    /// Number of events in the trace, `End` included (filled in by the writer).
    pub total_events: u64,
    /// Number of events per kind, `End` included (filled in by the writer).
    pub event_counts: BTreeMap<EventKind, u64>,
}

impl Footer {
    /// The caller's part of a footer; the writer fills in the counts.
    pub fn new(final_icount: u64, final_state_hash: Option<u64>) -> Footer {
        Footer {
            final_icount,
            final_state_hash,
            ..Footer::default()
        }
    }
}
