//! Why a replay stopped before the end of its trace: a divergence (the guest did not do what the
//! recording says), a trace cut short, or a trace that cannot be read.

use std::fmt;
use std::path::PathBuf;

use rewind_log::{dump, EventAt, EventKind, LogError};

/// A logged event as shown in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Instruction count of the event.
    pub icount: u64,
    /// Its kind.
    pub kind: EventKind,
    /// One-line payload summary.
    pub summary: String,
    /// File offset of its block.
    pub block_offset: u64,
    /// Offset of the event inside the decompressed block.
    pub offset_in_block: u32,
}

impl LoggedEvent {
    /// Describe an event read from a trace.
    pub fn from_event(e: &EventAt) -> Self {
        LoggedEvent {
            icount: e.icount,
            kind: e.event.kind(),
            summary: dump::summary(&e.event),
            block_offset: e.position.block_file_offset,
            offset_in_block: e.position.offset_in_block,
        }
    }
}

impl fmt::Display for LoggedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at instruction {} (file offset {:#x}+{})",
            self.kind, self.icount, self.block_offset, self.offset_in_block
        )?;
        if !self.summary.is_empty() {
            write!(f, ": {}", self.summary)?;
        }
        Ok(())
    }
}

/// One register whose recorded and replayed values differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterDiff {
    /// Register name (`pc`, `a0`, `f3`, `mstatus`...).
    pub name: String,
    /// Value in the recording.
    pub recorded: u64,
    /// Value during replay.
    pub replayed: u64,
}

/// The first point where replay and recording disagree (DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The trace being replayed.
    pub trace: PathBuf,
    /// Instruction count at which the disagreement was seen.
    pub icount: u64,
    /// Program counter of the hart (filled in by the machine).
    pub pc: Option<u64>,
    /// Privilege mode of the hart (filled in by the machine).
    pub privilege: Option<String>,
    /// What the guest did or asked for.
    pub asked: String,
    /// The next event the log holds (`None`: the log has nothing more).
    pub log_next: Option<LoggedEvent>,
    /// The last events replayed, oldest first.
    pub recent: Vec<LoggedEvent>,
    /// Registers that differ at a failed state check (empty if none were recorded there).
    pub register_diff: Vec<RegisterDiff>,
    /// Extra explanation (e.g. why no register diff is available).
    pub note: Option<String>,
    /// rewind version that recorded the trace.
    pub recorded_by: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "replay diverged at instruction {}", self.icount)?;
        writeln!(f, "  trace:        {}", self.trace.display())?;
        match (self.pc, &self.privilege) {
            (Some(pc), Some(p)) => writeln!(f, "  guest:        pc {pc:#x}, privilege {p}")?,
            (Some(pc), None) => writeln!(f, "  guest:        pc {pc:#x}")?,
            _ => {}
        }
        writeln!(f, "  guest did:    {}", self.asked)?;
        match &self.log_next {
            Some(e) => writeln!(f, "  log holds:    {e}")?,
            None => writeln!(f, "  log holds:    nothing more (end of the recording)")?,
        }
        if self.recent.is_empty() {
            writeln!(f, "  last events replayed: none")?;
        } else {
            writeln!(f, "  last events replayed (oldest first):")?;
            for e in &self.recent {
                writeln!(f, "    {e}")?;
            }
        }
        if !self.register_diff.is_empty() {
            writeln!(f, "  registers that differ (recorded -> replayed):")?;
            for r in &self.register_diff {
                writeln!(
                    f,
                    "    {:<9} {:#018x} -> {:#018x}",
                    r.name, r.recorded, r.replayed
                )?;
            }
        }
        if let Some(n) = &self.note {
            writeln!(f, "  note: {n}")?;
        }
        let this = env!("CARGO_PKG_VERSION");
        let version = if self.recorded_by == this {
            format!("the trace was recorded by rewind {this}, the same version")
        } else {
            format!(
                "the trace was recorded by rewind {}, this is {this}: a different version may \
                 execute differently",
                self.recorded_by
            )
        };
        writeln!(f, "  likely causes:")?;
        writeln!(
            f,
            "    - an image changed since recording (the header's blake3 hashes were checked, \
             but not files the guest reads by other means)"
        )?;
        writeln!(f, "    - {version}")?;
        write!(
            f,
            "    - a different machine configuration, or an edited or mixed-up trace file"
        )
    }
}

/// Why replay stopped before reaching the end of the recording.
#[derive(Debug, thiserror::Error)]
pub enum ReplayStop {
    /// The guest did not do what the recording says.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// The trace ends early (the recorder was killed); replay ran up to its last event.
    #[error("{}: recording was cut short at instruction {icount} ({detail})", path.display())]
    CutShort {
        /// The trace.
        path: PathBuf,
        /// Where replay stopped: the last event of the trace.
        icount: u64,
        /// What the reader found at the cut.
        detail: String,
    },
    /// The trace cannot be read (corrupt block, unknown tag...).
    #[error(transparent)]
    Log(#[from] LogError),
}

impl ReplayStop {
    /// Fill in the hart's pc and privilege mode in a divergence report.
    pub fn set_cpu(&mut self, pc: u64, privilege: &str) {
        if let ReplayStop::Diverged(d) = self {
            d.pc.get_or_insert(pc);
            d.privilege.get_or_insert_with(|| privilege.to_string());
        }
    }
}
