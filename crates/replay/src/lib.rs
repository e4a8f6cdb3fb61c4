//! The replay boundary: every input the machine receives from the host passes through one
//! [`Boundary`] value owned by the execution thread.
//!
//! Host backends (stdin reader, socket reader, signal watcher) are threads that push
//! [`HostEvent`]s into a channel; the machine drains them only at checkpoints (slice boundaries),
//! passing the current instruction count, so every input has an exact position in the
//! instruction stream. Synchronous host reads (clock, random bytes), idle-time warps, guest exit
//! requests and state checks also go through here.
//!
//! The three [`Mode`]s share one API, so the machine cannot tell them apart:
//! - run: inputs pass through, nothing is logged;
//! - record: every value handed to the machine is also written to the trace with its icount;
//! - replay: values come from the trace; no host backend is opened and nothing on the host is
//!   read. A request that does not match the next logged event is a divergence, kept in
//!   [`Boundary::take_failure`] for the machine to stop with.

//!
//! One module per input family, as QEMU's `replay/` is: [`serial`], [`time`], [`random`],
//! [`audio`] (capture logged, playback written), [`device`] (network, input events), [`lifecycle`] (shutdown, guest exit, end of
//! trace), [`checks`] (state checks); [`log`] is the plumbing they share (modes, event
//! writing, the replay look-ahead, divergence reports); this file holds the boundary's types;
//! host backends are in [`host`].

/// A message on stderr that ignores write errors: std's `eprintln!` panics when stderr is a
/// closed pipe (`rewind ... 2>&1 | head`), and a lost message is no reason to stop.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod audio;
pub mod checks;
pub mod device;
pub mod divergence;
pub mod host;
pub mod lifecycle;
pub mod log;
pub mod net;
pub mod pcap;
pub mod random;
pub mod serial;
pub mod time;

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checks::{CheckSettings, DEFAULT_CHECK_INTERVAL, DEFAULT_REGISTERS_EVERY};
pub use device::DeviceEvent;
pub use divergence::{Divergence, LoggedEvent, RegisterDiff, ReplayStop};
pub use host::audio::{AudioDevConfig, AudioError, AudioFormat, AudioSample};
pub use host::output::OutputSink;
pub use host::{escape, output, terminal};
pub use lifecycle::{GuestRequest, ShutdownCause};
pub use log::{mark_positions, MarkPosition};
pub use rewind_log;

use rewind_log::{EventAt, ReaderCursor, TraceReader, TraceWriter};

/// How the boundary treats host inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass host inputs through; log nothing.
    Run,
    /// Pass host inputs through and log each one with its icount.
    Record,
    /// Take inputs from a trace; never touch the host.
    Replay,
}

/// Where serial (UART 0) input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialInput {
    /// The process's standard input (raw mode on a terminal; `Ctrl-A x` quits).
    Stdio,
    /// The bytes of a file, delivered as fast as the guest's UART accepts them.
    File(PathBuf),
    /// No input at all.
    Null,
    /// A TCP server socket (`HOST:PORT`): wait for one client before starting; bytes from the
    /// client are input, guest output goes back to it.
    TcpServer(String),
    /// A unix-domain server socket, same as [`SerialInput::TcpServer`]; the socket file is
    /// removed when the boundary is dropped.
    UnixServer(PathBuf),
}

/// Settings of the host side of the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryConfig {
    /// Serial input backend.
    pub serial: SerialInput,
    /// Turn SIGINT/SIGTERM/SIGHUP into shutdown requests (instead of killing the process).
    pub signals: bool,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        BoundaryConfig {
            serial: SerialInput::Null,
            signals: false,
        }
    }
}

/// An asynchronous input produced by a host backend thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Bytes typed or read for UART 0.
    Serial(Vec<u8>),
    /// The serial input reached its end: no more bytes will come.
    SerialClosed,
    /// The host asks the machine to stop.
    Shutdown(ShutdownCause),
    /// A completion or input for a device other than the UART.
    Device(DeviceEvent),
}

/// Failure to open a host backend.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    /// The serial input file cannot be read.
    #[error("{}: {source}", path.display())]
    SerialFile {
        /// The file named on the command line.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The terminal could not be put into raw mode.
    #[error("standard input: cannot switch the terminal to raw mode: {0}")]
    Terminal(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The user-mode network could not be started.
    #[error("user-mode network: {0}")]
    Net(#[from] net::NetError),
    /// An audio file could not be opened.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// A serial socket could not be opened or accepted no client.
    #[error("serial socket {what}: {source}")]
    Socket {
        /// The socket address or path.
        what: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Record-mode state: the trace writer and the state-check schedule.
struct Recorder {
    writer: Option<TraceWriter>,
    checks: CheckSettings,
    next_check: u64,
    checks_done: u64,
    /// icount of the last checkpoint that took host events.
    last_drain: Option<u64>,
    /// An idle warp happened since that checkpoint (time moved, so events may be taken again).
    warped: bool,
    /// Warps to the timer deadline not written yet, all at one icount: replay derives them from
    /// guest state, so they are logged only if another event follows at that same icount
    /// (which replay must then see after the warp, not before it).
    implied_warps: Vec<(u64, u64)>,
    /// When the writer last handed its block to the OS.
    last_flush: Instant,
    /// `SnapshotMark` events written so far (the next mark's sequence number).
    marks: u64,
}

/// Record mode hands buffered events to the OS at least this often, so a recording killed
/// with SIGKILL loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Replay-mode state: the trace reader, the next event, and the recent history.
struct Replayer {
    reader: TraceReader,
    /// The next logged event (read ahead so its icount bounds the machine's slices).
    next: Option<EventAt>,
    /// The reader's position just before `next` was read (where a snapshot resumes).
    next_cursor: ReaderCursor,
    recent: VecDeque<EventAt>,
    /// icount of the last event consumed.
    last_icount: u64,
    /// icount of the last state check that matched.
    last_good_check: Option<u64>,
    recorded_by: String,
}

/// Where a replay stands: the trace position of the next event to deliver, and the history
/// the divergence reports use. Saved in machine snapshots.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayPosition {
    /// The reader's position before the look-ahead event.
    pub cursor: ReaderCursor,
    /// icount of the last event consumed.
    pub last_icount: u64,
    /// icount of the last state check that matched.
    pub last_good_check: Option<u64>,
}

/// Events kept for divergence reports.
const RECENT_EVENTS: usize = 8;

enum Log {
    None,
    Record(Box<Recorder>),
    Replay(Box<Replayer>),
}

/// Largest `--serial-input` file (it is queued in memory whole).
pub const MAX_SERIAL_INPUT_FILE: u64 = 256 << 20;

/// The single entry point of host inputs into the machine.
pub struct Boundary {
    mode: Mode,
    rx: Receiver<HostEvent>,
    tx: Sender<HostEvent>,
    /// Serial bytes received from the host and not yet delivered to the guest.
    serial_queue: VecDeque<u8>,
    /// The serial backend is a live source (stdin) that has not reached its end.
    interactive: bool,
    /// A shutdown request not yet handed to the machine.
    shutdown: Option<ShutdownCause>,
    /// A monitor `system_reset` not yet carried out.
    reset_requested: bool,
    raw_mode: Option<terminal::RawModeGuard>,
    signals: Option<signal_hook::iterator::Handle>,
    /// Set by the signal thread: a paused machine drains no host events, so whoever keeps it
    /// paused looks here (see [`Boundary::host_signal_received`]).
    signalled: Arc<AtomicBool>,
    /// Device events received from the host and not yet taken.
    device_queue: VecDeque<DeviceEvent>,
    log: Log,
    /// First replay failure (divergence, cut, unreadable trace) or record write error.
    failure: Option<ReplayStop>,
    /// Output half of a serial socket, until the machine takes it.
    socket_output: Option<Box<dyn Write + Send>>,
    /// Unix socket file to remove on drop.
    socket_path: Option<PathBuf>,
    /// Record: an instruction limit is a pause (a snapshot stop), not the end of the recording.
    pause_at_limit: bool,
    /// User-mode networks (run and record only).
    net: Vec<net::NetBackend>,
    /// Frames the guest sent since this boundary was made (numbers them in divergence reports;
    /// not part of snapshots, so after `--from` it counts from there).
    net_sent: u64,
    /// Audio backends of the sound devices, by virtio transport index.
    audio: Vec<(u8, host::audio::AudioHost)>,
}

impl std::fmt::Debug for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("mode", &self.mode)
            .field("queued_serial", &self.serial_queue.len())
            .field("interactive", &self.interactive)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl Drop for Boundary {
    fn drop(&mut self) {
        if let Some(h) = self.signals.take() {
            h.close();
        }
        if let Some(p) = self.socket_path.take() {
            let _ = std::fs::remove_file(p);
        }
        // Dropping the guard restores the terminal.
        self.raw_mode.take();
    }
}

#[cfg(test)]
mod tests;
