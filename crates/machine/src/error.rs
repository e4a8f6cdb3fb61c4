//! Errors of building and running a machine. Messages name the file and the problem, so the
//! CLI can print them as one line.

use std::path::PathBuf;

/// What is wrong with an image file (firmware, kernel, initrd).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    /// The file does not exist.
    #[error("no such file")]
    NotFound,
    /// The file exists but cannot be read.
    #[error("cannot read: {0}")]
    Unreadable(String),
    /// The file is empty.
    #[error("file is empty")]
    Empty,
    /// Not an ELF file where only ELF is accepted.
    #[error("not an ELF file{0}")]
    NotElf(&'static str),
    /// An ELF file for another class or architecture.
    #[error("not a RISC-V 64-bit ELF ({0})")]
    WrongArch(String),
    /// The ELF structure is broken.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// The ELF has nothing to load.
    #[error("ELF has no loadable segments")]
    NoSegments,
    /// Two loadable segments share addresses.
    #[error("ELF segments overlap at {0:#x}")]
    OverlappingSegments(u64),
    /// The image cannot fit in RAM at all.
    #[error("image needs {needed} bytes, larger than RAM ({ram} bytes)")]
    LargerThanRam {
        /// Bytes the image spans.
        needed: u64,
        /// RAM size.
        ram: u64,
    },
    /// Part of the image lies outside RAM.
    #[error("image range {start:#x}..{end:#x} is outside RAM ({ram_start:#x}..{ram_end:#x})")]
    OutsideRam {
        /// First byte of the image.
        start: u64,
        /// End (exclusive) of the image.
        end: u64,
        /// RAM start.
        ram_start: u64,
        /// RAM end (exclusive).
        ram_end: u64,
    },
    /// The image overlaps another one loaded before it.
    #[error(
        "image range {start:#x}..{end:#x} overlaps {other} ({other_start:#x}..{other_end:#x})"
    )]
    Overlaps {
        /// First byte of this image.
        start: u64,
        /// End (exclusive) of this image.
        end: u64,
        /// The other image (its file name, or "the device tree").
        other: String,
        /// First byte of the other image.
        other_start: u64,
        /// End (exclusive) of the other image.
        other_end: u64,
    },
}

/// Why a machine could not be built or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// A problem with an image file.
    #[error("{}: {problem}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: ImageProblem,
    },
    /// The configuration makes no sense.
    #[error("{0}")]
    Config(String),
    /// A host backend could not be opened.
    #[error(transparent)]
    Host(#[from] rewind_replay::BoundaryError),
    /// Writing guest output failed.
    #[error("{}: cannot write serial output: {source}", path.display())]
    Output {
        /// Where the output was going.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The guest idles and nothing can ever wake it.
    #[error(
        "guest is waiting for an interrupt that can never arrive (pc {pc:#x}, icount {icount}): \
         no timer is armed and there is no serial input"
    )]
    GuestStuck {
        /// Program counter of the waiting hart.
        pc: u64,
        /// Instructions retired so far.
        icount: u64,
    },
    /// An image differs from (or is missing compared with) the one a trace was recorded with.
    #[error("{}: {what}", path.display())]
    ImageChanged {
        /// The image file.
        path: PathBuf,
        /// What changed.
        what: String,
    },
    /// Replay stopped early (divergence, trace cut short or unreadable) or the trace could not
    /// be written while recording.
    #[error(transparent)]
    Replay(#[from] rewind_replay::ReplayStop),
    /// A snapshot cannot be read or applied.
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// The JIT's lockstep self-check (`--accel jit,check=interp`) found translated code and
    /// the interpreter disagreeing.
    #[error(
        "JIT self-check failed on hart {hart}: the region entered at pc {pc:#x}, icount {icount}, \
         differs from the interpreter: {what}"
    )]
    JitCheck {
        /// The hart.
        hart: usize,
        /// Where the region was entered.
        pc: u64,
        /// Instructions retired (all harts) when it was entered.
        icount: u64,
        /// What differs, translated code's value first.
        what: String,
    },
    /// The guest traps endlessly without retiring any instruction.
    #[error("guest makes no progress: every instruction traps (pc {pc:#x}, icount {icount})")]
    NoProgress {
        /// Program counter of the hart.
        pc: u64,
        /// Instructions retired so far.
        icount: u64,
    },
}

impl MachineError {
    /// An [`MachineError::Image`] for `path`.
    pub fn image(path: impl Into<PathBuf>, problem: ImageProblem) -> Self {
        MachineError::Image {
            path: path.into(),
            problem,
        }
    }
}
