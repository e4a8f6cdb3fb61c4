//! What kind of rewind file a byte string starts like, and which command or option takes it:
//! the message when a file is given where another kind was expected (a single snapshot where
//! the recording's snapshot file goes, a trace where a snapshot goes, ...).

use crate::sidecar::SIDECAR_MAGIC;
use crate::snapshot::SNAPSHOT_MAGIC;

/// The kinds of file rewind reads, by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A trace (`rewind record -o FILE`).
    Trace,
    /// A single machine snapshot (`replay --stop-at N --save-snapshot FILE`, QMP
    /// `x-rewind-snapshot`).
    Snapshot,
    /// A recording's snapshot file (`TRACE.snapshots`, written by `record`).
    RecordingSnapshots,
    /// An ELF file (a guest image).
    Elf,
}

impl FileKind {
    /// The kind `head` (a file's first bytes) starts like.
    pub fn of(head: &[u8]) -> Option<FileKind> {
        let starts = |magic: &[u8]| head.len() >= magic.len() && head[..magic.len()] == *magic;
        if starts(&rewind_log::FILE_MAGIC) {
            Some(FileKind::Trace)
        } else if starts(&SNAPSHOT_MAGIC) {
            Some(FileKind::Snapshot)
        } else if starts(&SIDECAR_MAGIC) {
            Some(FileKind::RecordingSnapshots)
        } else if starts(b"\x7fELF") {
            Some(FileKind::Elf)
        } else {
            None
        }
    }

    /// What the file is and what takes it.
    pub fn explain(self) -> &'static str {
        match self {
            FileKind::Trace => "it is a trace; replay it with `rewind replay FILE`",
            FileKind::Snapshot => {
                "it is a single machine snapshot (from --save-snapshot or QMP x-rewind-snapshot); \
                 load it with QMP x-rewind-load-snapshot"
            }
            FileKind::RecordingSnapshots => {
                "it is a recording's snapshot file (TRACE.snapshots); give it to \
                 `rewind replay TRACE --snapshots FILE`"
            }
            FileKind::Elf => "it is an ELF image (a guest program: --kernel or --bios)",
        }
    }
}

/// A sentence on a file that starts with `head`, for a "not a … file" error.
pub fn describe(head: &[u8]) -> String {
    match FileKind::of(head) {
        Some(k) => k.explain().to_string(),
        None if head.is_empty() => "the file is empty".to_string(),
        None => "it is no rewind file (unknown first bytes)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_told_apart_by_their_first_bytes() {
        assert_eq!(FileKind::of(b"RWNDSNAP\x05\0"), Some(FileKind::Snapshot));
        assert_eq!(
            FileKind::of(b"RWNDSIDE\x04\0"),
            Some(FileKind::RecordingSnapshots)
        );
        assert_eq!(FileKind::of(b"RWNDTRC\0\x01"), Some(FileKind::Trace));
        assert_eq!(FileKind::of(b"\x7fELF\x02"), Some(FileKind::Elf));
        assert_eq!(FileKind::of(b"RWND"), None);
        assert!(describe(b"RWNDSNAP").contains("x-rewind-load-snapshot"));
        assert!(describe(b"RWNDSIDE").contains("--snapshots"));
        assert!(describe(b"").contains("empty"));
    }
}
