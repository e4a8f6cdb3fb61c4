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

/// A message on stderr that ignores write errors: std's `eprintln!` panics when stderr is a
/// closed pipe (`rewind ... 2>&1 | head`), and a lost message is no reason to stop.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod divergence;
pub mod escape;
pub mod output;
mod socket;
pub mod terminal;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use divergence::{Divergence, LoggedEvent, RegisterDiff, ReplayStop};
pub use output::OutputSink;
pub use rewind_log;

use rewind_log::{
    Event, EventAt, GuestExitKind, ReaderCursor, TraceHeader, TraceReader, TraceWriter,
};

use escape::{EscapeParser, Key};

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

/// Why the host asked the machine to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCause {
    /// The user typed `Ctrl-A x` on the console.
    QuitKey,
    /// SIGINT.
    Sigint,
    /// SIGTERM.
    Sigterm,
    /// SIGHUP (the terminal went away).
    Sighup,
    /// The recording reached its instruction limit (`--max-instructions`).
    EndOfRecording,
}

impl std::fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShutdownCause::QuitKey => "Ctrl-A x",
            ShutdownCause::Sigint => "SIGINT",
            ShutdownCause::Sigterm => "SIGTERM",
            ShutdownCause::Sighup => "SIGHUP",
            ShutdownCause::EndOfRecording => "the end of the recording",
        })
    }
}

impl ShutdownCause {
    /// The cause as stored in a trace.
    pub fn to_log(self) -> rewind_log::ShutdownCause {
        use rewind_log::ShutdownCause as L;
        match self {
            ShutdownCause::QuitKey => L::CtrlAX,
            ShutdownCause::Sigint => L::SigInt,
            ShutdownCause::Sigterm => L::SigTerm,
            ShutdownCause::Sighup => L::SigHup,
            ShutdownCause::EndOfRecording => L::EndOfRecording,
        }
    }

    /// The cause stored in a trace (a monitor `quit` counts as a console quit).
    pub fn from_log(c: rewind_log::ShutdownCause) -> Self {
        use rewind_log::ShutdownCause as L;
        match c {
            L::CtrlAX | L::Monitor => ShutdownCause::QuitKey,
            L::SigInt => ShutdownCause::Sigint,
            L::SigTerm => ShutdownCause::Sigterm,
            L::SigHup => ShutdownCause::Sighup,
            L::EndOfRecording => ShutdownCause::EndOfRecording,
        }
    }
}

impl ShutdownCause {
    /// The exit status a process conventionally reports for this cause (128 + signal number;
    /// 0 for a quit the user asked for on the console, as QEMU does).
    pub fn exit_status(self) -> i32 {
        match self {
            ShutdownCause::QuitKey => 0,
            ShutdownCause::Sigint => 128 + libc::SIGINT,
            ShutdownCause::Sigterm => 128 + libc::SIGTERM,
            ShutdownCause::Sighup => 128 + libc::SIGHUP,
            ShutdownCause::EndOfRecording => 124,
        }
    }
}

/// A shutdown or reset the guest asked for (through the test finisher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestRequest {
    /// Power off with this exit status.
    Exit(i32),
    /// Reset the machine.
    Reset,
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

/// An asynchronous input for a device (block/network completions, keyboard and mouse). Host
/// backends send them as [`HostEvent::Device`]; the machine takes them with
/// [`Boundary::take_device_event`] at checkpoints, in all three modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A block request completed.
    BlockComplete {
        /// Block device index.
        device: u8,
        /// Request identifier.
        request: u64,
        /// Completion status.
        status: u8,
    },
    /// A network frame arrived.
    NetPacket {
        /// Network device index.
        device: u8,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A keyboard / pointer event.
    Input {
        /// Input device index.
        device: u8,
        /// evdev type.
        kind: u16,
        /// evdev code.
        code: u16,
        /// evdev value.
        value: i32,
    },
}

impl DeviceEvent {
    fn to_log(&self) -> Event {
        match self.clone() {
            DeviceEvent::BlockComplete {
                device,
                request,
                status,
            } => Event::BlockComplete {
                device,
                request,
                status,
            },
            DeviceEvent::NetPacket { device, bytes } => Event::NetPacket { device, bytes },
            DeviceEvent::Input {
                device,
                kind,
                code,
                value,
            } => Event::InputEvent {
                device,
                kind,
                code,
                value,
            },
        }
    }

    fn from_log(e: &Event) -> Option<Self> {
        Some(match e.clone() {
            Event::BlockComplete {
                device,
                request,
                status,
            } => DeviceEvent::BlockComplete {
                device,
                request,
                status,
            },
            Event::NetPacket { device, bytes } => DeviceEvent::NetPacket { device, bytes },
            Event::InputEvent {
                device,
                kind,
                code,
                value,
            } => DeviceEvent::Input {
                device,
                kind,
                code,
                value,
            },
            _ => return None,
        })
    }
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
    /// A serial socket could not be opened or accepted no client.
    #[error("serial socket {what}: {source}")]
    Socket {
        /// The socket address or path.
        what: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// How often record mode checks the machine state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSettings {
    /// Instructions between two state hashes (0: none).
    pub interval: u64,
    /// Log the registers themselves at every `registers_every`-th check (0: never).
    pub registers_every: u64,
}

/// Default instructions between state checks: 10 checks per guest second at icount shift 0.
pub const DEFAULT_CHECK_INTERVAL: u64 = 100_000_000;
/// Default: registers logged at every 16th check (and at the first one).
pub const DEFAULT_REGISTERS_EVERY: u64 = 16;

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            interval: DEFAULT_CHECK_INTERVAL,
            registers_every: DEFAULT_REGISTERS_EVERY,
        }
    }
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

impl Boundary {
    /// A run-mode boundary with the given host backends started.
    pub fn new(config: &BoundaryConfig) -> Result<Self, BoundaryError> {
        let mut b = Boundary::detached();
        b.open_backends(config)?;
        Ok(b)
    }

    /// A record-mode boundary: host backends as in run mode, and every input logged to
    /// `writer` (the trace header is already written).
    pub fn record(
        config: &BoundaryConfig,
        writer: TraceWriter,
        checks: CheckSettings,
    ) -> Result<Self, BoundaryError> {
        let mut b = Boundary::detached();
        b.mode = Mode::Record;
        b.log = Log::Record(Box::new(Recorder {
            writer: Some(writer),
            checks,
            next_check: checks.interval,
            checks_done: 0,
            last_drain: None,
            warped: false,
            implied_warps: Vec::new(),
            last_flush: Instant::now(),
            marks: 0,
        }));
        b.open_backends(config)?;
        Ok(b)
    }

    /// A replay-mode boundary reading `reader`. No host backend is opened.
    pub fn replay(reader: TraceReader) -> Self {
        let mut b = Boundary::detached();
        b.mode = Mode::Replay;
        let recorded_by = reader.header().rewind_version.clone();
        let next_cursor = reader.cursor();
        b.log = Log::Replay(Box::new(Replayer {
            reader,
            next: None,
            next_cursor,
            recent: VecDeque::new(),
            last_icount: 0,
            last_good_check: None,
            recorded_by,
        }));
        b.read_ahead();
        b
    }

    fn open_backends(&mut self, config: &BoundaryConfig) -> Result<(), BoundaryError> {
        match &config.serial {
            SerialInput::Null => {}
            SerialInput::File(path) => {
                // Queued whole: a regular file of bounded size, never a device or FIFO.
                let bytes = rewind_log::hostfile::read_regular(path, MAX_SERIAL_INPUT_FILE)
                    .map_err(|p| BoundaryError::SerialFile {
                        path: path.clone(),
                        source: p.into_io_error(),
                    })?;
                self.serial_queue.extend(bytes);
            }
            SerialInput::Stdio => {
                self.raw_mode = terminal::enter_raw_mode().map_err(BoundaryError::Terminal)?;
                self.interactive = true;
                let tx = self.tx.clone();
                std::thread::Builder::new()
                    .name("rewind-stdin".into())
                    .spawn(move || stdin_reader(tx))
                    .map_err(BoundaryError::Terminal)?;
            }
            SerialInput::TcpServer(addr) => {
                let (reader, writer) = socket::accept_tcp(addr)?;
                self.start_socket(reader, writer)?;
            }
            SerialInput::UnixServer(path) => {
                let (reader, writer) = socket::accept_unix(path)?;
                self.socket_path = Some(path.clone());
                self.start_socket(reader, writer)?;
            }
        }
        if config.signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(BoundaryError::Signals)?;
            self.signals = Some(signals.handle());
            let tx = self.tx.clone();
            let signalled = Arc::clone(&self.signalled);
            std::thread::Builder::new()
                .name("rewind-signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        let cause = match sig {
                            SIGINT => ShutdownCause::Sigint,
                            SIGHUP => ShutdownCause::Sighup,
                            _ => ShutdownCause::Sigterm,
                        };
                        signalled.store(true, Ordering::SeqCst);
                        if tx.send(HostEvent::Shutdown(cause)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(BoundaryError::Signals)?;
        }
        Ok(())
    }

    fn start_socket(
        &mut self,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
    ) -> Result<(), BoundaryError> {
        self.interactive = true;
        self.socket_output = Some(writer);
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("rewind-serial-socket".into())
            .spawn(move || socket::reader_thread(reader, tx))
            .map_err(|source| BoundaryError::Socket {
                what: "reader thread".into(),
                source,
            })?;
        Ok(())
    }

    /// A run-mode boundary with no host backend: no serial input, no signal handling. Events
    /// can still be injected through [`Boundary::sender`].
    pub fn detached() -> Self {
        let (tx, rx) = mpsc::channel();
        Boundary {
            mode: Mode::Run,
            rx,
            tx,
            serial_queue: VecDeque::new(),
            interactive: false,
            shutdown: None,
            raw_mode: None,
            signals: None,
            signalled: Arc::new(AtomicBool::new(false)),
            device_queue: VecDeque::new(),
            log: Log::None,
            failure: None,
            socket_output: None,
            socket_path: None,
            pause_at_limit: false,
        }
    }

    /// Replay: the trace's header (identifies the recording a snapshot belongs to).
    pub fn replay_header(&self) -> Option<&TraceHeader> {
        self.replayer().map(|r| r.reader.header())
    }

    /// Replay: where the replay stands, for a snapshot; `None` in the other modes.
    pub fn replay_position(&self) -> Option<ReplayPosition> {
        self.replayer().map(|r| ReplayPosition {
            cursor: r.next_cursor.clone(),
            last_icount: r.last_icount,
            last_good_check: r.last_good_check,
        })
    }

    /// Replay: go back (or forward) to a position from [`Boundary::replay_position`] of the
    /// same trace. Any pending failure is dropped: the machine state is being replaced too.
    pub fn seek_replay(&mut self, pos: &ReplayPosition) -> Result<(), rewind_log::LogError> {
        let Log::Replay(r) = &mut self.log else {
            return Ok(());
        };
        r.reader.seek_to(&pos.cursor)?;
        r.last_icount = pos.last_icount;
        r.last_good_check = pos.last_good_check;
        r.recent.clear();
        r.next = None;
        self.failure = None;
        self.shutdown = None;
        self.read_ahead();
        Ok(())
    }

    /// The boundary's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Record: log a `SnapshotMark` at `icount` (after any implied idle warp at that icount,
    /// as for every event) and return its sequence number; `None` in the other modes or when
    /// the trace can no longer be written (the write error is the boundary's failure).
    pub fn snapshot_mark(&mut self, icount: u64) -> Option<u64> {
        let Log::Record(r) = &mut self.log else {
            return None;
        };
        let seq = r.marks;
        r.writer.as_ref()?;
        self.log_event(icount, &Event::SnapshotMark { seq });
        let Log::Record(r) = &mut self.log else {
            return None;
        };
        r.writer.as_ref()?;
        r.marks += 1;
        Some(seq)
    }

    /// Record: with `true`, reaching a run's instruction limit is a pause (the machine stops
    /// to take a snapshot and goes on), so [`Boundary::end_of_recording`] logs nothing.
    pub fn set_pause_at_limit(&mut self, pause: bool) {
        self.pause_at_limit = pause;
    }

    /// A handle host backends use to push events; they are seen at the next checkpoint.
    pub fn sender(&self) -> Sender<HostEvent> {
        self.tx.clone()
    }

    /// The output half of a serial socket backend (taken once, by the machine's output sink).
    pub fn take_socket_output(&mut self) -> Option<OutputSink> {
        self.socket_output.take().map(OutputSink::Stream)
    }

    /// The first failure: a replay divergence, a trace cut short or unreadable, or a trace
    /// write error in record mode. The machine stops when it sees one.
    pub fn take_failure(&mut self) -> Option<ReplayStop> {
        self.failure.take()
    }

    /// True when a failure is waiting in [`Boundary::take_failure`].
    pub fn has_failure(&self) -> bool {
        self.failure.is_some()
    }

    fn fail(&mut self, stop: ReplayStop) {
        self.failure.get_or_insert(stop);
    }

    /// Record mode: append one event; a write error becomes the boundary's failure.
    fn log_event(&mut self, icount: u64, event: &Event) {
        let Log::Record(r) = &mut self.log else {
            return;
        };
        let implied = std::mem::take(&mut r.implied_warps);
        let Some(w) = r.writer.as_mut() else {
            return;
        };
        let warps = implied.into_iter().filter(|&(at, _)| at == icount);
        let pushed = warps
            .map(|(at, ns)| w.push(at, &Event::IdleWarp { ns }))
            .collect::<Result<Vec<()>, _>>()
            .and_then(|_| w.push(icount, event));
        if let Err(e) = pushed {
            r.writer = None;
            self.failure.get_or_insert(ReplayStop::Log(e));
        }
    }

    // --- replay-side helpers -----------------------------------------------------------------

    fn replayer(&self) -> Option<&Replayer> {
        match &self.log {
            Log::Replay(r) => Some(r),
            _ => None,
        }
    }

    /// Read the next event of the trace into the look-ahead slot, passing over snapshot
    /// marks (they carry no input; [`mark_positions`] relies on this exact rule).
    fn read_ahead(&mut self) {
        let Log::Replay(r) = &mut self.log else {
            return;
        };
        loop {
            r.next_cursor = r.reader.cursor();
            match r.reader.next_event() {
                Ok(Some(e)) if matches!(e.event, Event::SnapshotMark { .. }) => {}
                Ok(next) => {
                    r.next = next;
                    return;
                }
                Err(e) => {
                    r.next = None;
                    self.failure.get_or_insert(ReplayStop::Log(e));
                    return;
                }
            }
        }
    }

    /// The next logged event, if it is at `icount` and `want` accepts it.
    fn peek_at(&self, icount: u64, want: impl Fn(&Event) -> bool) -> Option<&Event> {
        let r = self.replayer()?;
        let e = r.next.as_ref()?;
        (e.icount == icount && want(&e.event)).then_some(&e.event)
    }

    /// Consume the look-ahead event and read the next one.
    fn consume(&mut self) -> Option<Event> {
        let Log::Replay(r) = &mut self.log else {
            return None;
        };
        let e = r.next.take()?;
        r.last_icount = e.icount;
        let event = e.event.clone();
        if r.recent.len() == RECENT_EVENTS {
            r.recent.pop_front();
        }
        r.recent.push_back(e);
        self.read_ahead();
        Some(event)
    }

    /// Build a divergence report (the machine adds pc and privilege).
    fn divergence(&self, icount: u64, asked: String) -> Divergence {
        let (trace, log_next, recent, recorded_by) = match self.replayer() {
            Some(r) => (
                r.reader.path().to_path_buf(),
                r.next.as_ref().map(LoggedEvent::from_event),
                r.recent.iter().map(LoggedEvent::from_event).collect(),
                r.recorded_by.clone(),
            ),
            None => (PathBuf::new(), None, Vec::new(), String::new()),
        };
        Divergence {
            trace,
            icount,
            pc: None,
            privilege: None,
            asked,
            log_next,
            recent,
            register_diff: Vec::new(),
            note: None,
            recorded_by,
        }
    }

    fn diverge(&mut self, icount: u64, asked: String) {
        // Running out of a trace that was cut short is not a divergence: say where it ends.
        if let Some(r) = self.replayer() {
            if r.next.is_none() && r.reader.truncated().is_some() {
                let last = r.last_icount;
                self.check_position(icount.max(last));
                return;
            }
        }
        if self.failure.is_none() {
            let d = self.divergence(icount, asked);
            self.fail(ReplayStop::Diverged(Box::new(d)));
        }
    }

    /// Replay: a synchronous request the next event must answer; records a divergence and
    /// returns `None` otherwise.
    fn expect(
        &mut self,
        icount: u64,
        asked: String,
        want: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        if self.failure.is_some() {
            return None;
        }
        if self.peek_at(icount, want).is_some() {
            return self.consume();
        }
        self.diverge(icount, asked);
        None
    }

    // --- the boundary API ----------------------------------------------------------------------

    /// Checkpoint: take every event the backends have produced so far (never blocks). Replay
    /// reads nothing from the host.
    pub fn checkpoint(&mut self, icount: u64) {
        match &mut self.log {
            Log::Replay(_) => return,
            Log::Record(r) => {
                if r.last_flush.elapsed() >= FLUSH_EVERY {
                    r.last_flush = Instant::now();
                    // Write out implied warps too, so a trace cut by SIGKILL while the guest
                    // idles still shows how far the guest got (replay stops at the last event).
                    let implied = std::mem::take(&mut r.implied_warps);
                    if let Some(w) = r.writer.as_mut() {
                        let written = implied
                            .into_iter()
                            .try_for_each(|(at, ns)| w.push(at, &Event::IdleWarp { ns }));
                        if let Err(e) = written.and_then(|()| w.flush()) {
                            r.writer = None;
                            self.failure.get_or_insert(ReplayStop::Log(e));
                        }
                    }
                }
                // A second checkpoint at the same icount without a warp in between takes no
                // new host events: replay delivers logged events at the first checkpoint at
                // their icount, so the recording must not deliver any at a later one.
                if r.last_drain == Some(icount) && !r.warped {
                    return;
                }
                r.last_drain = Some(icount);
                r.warped = false;
            }
            Log::None => {}
        }
        while let Ok(ev) = self.rx.try_recv() {
            self.accept(ev);
        }
    }

    fn accept(&mut self, ev: HostEvent) {
        match ev {
            HostEvent::Serial(bytes) => self.serial_queue.extend(bytes),
            HostEvent::SerialClosed => self.interactive = false,
            HostEvent::Shutdown(cause) => {
                // The first request wins; later ones add nothing.
                self.shutdown.get_or_insert(cause);
            }
            HostEvent::Device(d) => self.device_queue.push_back(d),
        }
    }

    /// Deliver serial input: append to `out` at most `room` of the queued bytes (the rest stay
    /// queued until the guest's UART has room). Returns the number of bytes appended.
    pub fn take_serial_input(&mut self, icount: u64, room: usize, out: &mut Vec<u8>) -> usize {
        if self.mode == Mode::Replay {
            let mut n = 0;
            while let Some(Event::SerialInput { bytes, .. }) =
                self.peek_at(icount, |e| matches!(e, Event::SerialInput { port: 0, .. }))
            {
                if bytes.len() > room - n {
                    let asked = format!(
                        "accept serial input with room for {} bytes in the UART",
                        room - n
                    );
                    self.diverge(icount, asked);
                    return n;
                }
                n += bytes.len();
                out.extend_from_slice(bytes);
                self.consume();
            }
            return n;
        }
        let n = room.min(self.serial_queue.len());
        if n == 0 {
            return 0;
        }
        let start = out.len();
        out.extend(self.serial_queue.drain(..n));
        if self.mode == Mode::Record {
            let bytes = out[start..].to_vec();
            self.log_event(icount, &Event::SerialInput { port: 0, bytes });
        }
        n
    }

    /// Serial bytes waiting for room in the guest's UART (replay: those of the next logged
    /// serial event).
    pub fn queued_serial_input(&self) -> usize {
        match self.replayer() {
            Some(r) => match r.next.as_ref().map(|e| &e.event) {
                Some(Event::SerialInput { bytes, .. }) => bytes.len().max(1),
                _ => 0,
            },
            None => self.serial_queue.len(),
        }
    }

    /// A pending host shutdown request, handed over once.
    pub fn take_shutdown_request(&mut self, icount: u64) -> Option<ShutdownCause> {
        match self.mode {
            Mode::Replay => {
                let cause = match self.peek_at(icount, |e| matches!(e, Event::HostShutdown { .. }))
                {
                    Some(Event::HostShutdown { cause }) => ShutdownCause::from_log(*cause),
                    _ => return None,
                };
                self.consume();
                Some(cause)
            }
            Mode::Record => {
                let cause = self.shutdown.take()?;
                self.log_event(
                    icount,
                    &Event::HostShutdown {
                        cause: cause.to_log(),
                    },
                );
                Some(cause)
            }
            Mode::Run => self.shutdown.take(),
        }
    }

    /// The recording ends here (instruction limit): record mode logs
    /// `HostShutdown(EndOfRecording)` (unless [`Boundary::set_pause_at_limit`] is on); the other
    /// modes do nothing.
    pub fn end_of_recording(&mut self, icount: u64) {
        if self.mode == Mode::Record && !self.pause_at_limit {
            self.log_event(
                icount,
                &Event::HostShutdown {
                    cause: rewind_log::ShutdownCause::EndOfRecording,
                },
            );
        }
    }

    /// A completion or input event for a device, if one is due now.
    pub fn take_device_event(&mut self, icount: u64) -> Option<DeviceEvent> {
        match self.mode {
            Mode::Replay => {
                let d = self
                    .peek_at(icount, |e| DeviceEvent::from_log(e).is_some())
                    .and_then(DeviceEvent::from_log)?;
                self.consume();
                Some(d)
            }
            Mode::Record => {
                let d = self.device_queue.pop_front()?;
                self.log_event(icount, &d.to_log());
                Some(d)
            }
            Mode::Run => self.device_queue.pop_front(),
        }
    }

    /// Wall-clock time in ns since the Unix epoch (devices read it once, for their base).
    pub fn host_clock_ns(&mut self, icount: u64) -> u64 {
        match self.mode {
            Mode::Replay => {
                match self.expect(icount, "read the host clock".into(), |e| {
                    matches!(e, Event::ClockRead { kind: 0, .. })
                }) {
                    Some(Event::ClockRead { value_ns, .. }) => value_ns,
                    _ => 0,
                }
            }
            Mode::Record => {
                let value_ns = host_now_ns();
                self.log_event(icount, &Event::ClockRead { kind: 0, value_ns });
                value_ns
            }
            Mode::Run => host_now_ns(),
        }
    }

    /// Fill `buf` with random bytes from the host.
    pub fn random(&mut self, icount: u64, buf: &mut [u8]) {
        if self.mode == Mode::Replay {
            let len = buf.len();
            let asked = format!("{len} random bytes");
            if let Some(Event::Random { bytes }) = self.expect(
                icount,
                asked,
                |e| matches!(e, Event::Random { bytes } if bytes.len() == len),
            ) {
                buf.copy_from_slice(&bytes);
            }
            return;
        }
        host_random(buf);
        if self.mode == Mode::Record {
            self.log_event(
                icount,
                &Event::Random {
                    bytes: buf.to_vec(),
                },
            );
        }
    }

    /// True once SIGINT, SIGTERM or SIGHUP arrived (signal handling on). Its shutdown request
    /// waits in the host event queue for the machine's next checkpoint: a caller that keeps
    /// the machine paused (a debugger) must run it to that checkpoint so it ends cleanly.
    pub fn host_signal_received(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }

    /// True while the serial backend can still produce bytes by itself (a live stdin or
    /// socket). Always false in replay.
    pub fn is_interactive(&self) -> bool {
        self.interactive && self.mode != Mode::Replay
    }

    /// Block up to `timeout` (forever with `None`) for a host event; true if one arrived.
    /// Replay never waits.
    pub fn wait_for_input(&mut self, timeout: Option<Duration>) -> bool {
        if self.mode == Mode::Replay {
            return false;
        }
        let ev = match timeout {
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return false
                }
            },
            None => match self.rx.recv() {
                Ok(ev) => ev,
                Err(_) => return false,
            },
        };
        self.accept(ev);
        true
    }

    /// The guest idles (all harts in WFI) with the next timer deadline `deadline_ns` virtual ns
    /// away (`None`: no timer armed). Returns how many virtual ns to warp time forward, or
    /// `None` when nothing can ever wake the guest (or, in replay, on a divergence).
    ///
    /// Run and record: with a live console, wait real time up to the deadline (forever without
    /// one) so an idle interactive guest does not spin, and warp by the time waited; otherwise
    /// jump straight to the deadline. Record logs a warp only when host input cut it short;
    /// replay applies the logged one without waiting, or warps to the deadline when none is logged.
    pub fn idle(&mut self, icount: u64, deadline_ns: Option<u64>) -> Option<u64> {
        if self.mode == Mode::Replay {
            let asked = match deadline_ns {
                Some(d) => format!("wait for an interrupt (next timer deadline in {d} ns)"),
                None => "wait for an interrupt (no timer armed)".to_string(),
            };
            // A recorded warp never goes past the timer deadline the guest set.
            let fits = |e: &Event| matches!(e, Event::IdleWarp { ns } if deadline_ns.is_none_or(|d| *ns <= d));
            // Record logs only warps cut short by host input: no logged warp here means the
            // recording slept all the way to the deadline, which follows from guest state.
            if let Some(d) = deadline_ns {
                if self.peek_at(icount, fits).is_none() {
                    return Some(d);
                }
            }
            return match self.expect(icount, asked, fits) {
                Some(Event::IdleWarp { ns }) => Some(ns),
                _ => None,
            };
        }
        let warp = if self.interactive {
            let start = Instant::now();
            self.wait_for_input(deadline_ns.map(Duration::from_nanos));
            let waited = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            Some(deadline_ns.map_or(waited, |d| waited.min(d)))
        } else {
            deadline_ns
        };
        if let (Some(ns), Log::Record(r)) = (warp, &mut self.log) {
            r.warped = true;
            // A warp to the deadline is implied by guest state (replay recomputes it): log only
            // the ones host input cut short, so an idle guest's timer ticks cost nothing.
            if deadline_ns != Some(ns) {
                self.log_event(icount, &Event::IdleWarp { ns });
            } else {
                r.implied_warps.retain(|&(at, _)| at == icount);
                r.implied_warps.push((icount, ns));
            }
        }
        warp
    }

    /// The guest asked to power off or reset: record mode logs it; replay checks it against
    /// the log (a mismatch is a divergence).
    pub fn guest_request(&mut self, icount: u64, request: GuestRequest) {
        let (kind, code) = match request {
            GuestRequest::Exit(0) => (GuestExitKind::Pass, 0),
            GuestRequest::Exit(c) => (GuestExitKind::Fail, c as u16),
            GuestRequest::Reset => (GuestExitKind::Reset, 0),
        };
        match self.mode {
            Mode::Record => self.log_event(icount, &Event::GuestExit { kind, code }),
            Mode::Replay => {
                let asked = match request {
                    GuestRequest::Exit(c) => format!("power off with exit status {c}"),
                    GuestRequest::Reset => "reset the machine".to_string(),
                };
                self.expect(icount, asked, |e| *e == Event::GuestExit { kind, code });
            }
            Mode::Run => {}
        }
    }

    /// Whether the machine must compute a state check now: record when the check interval has
    /// passed, replay when the log holds a `StateHash` at this icount.
    pub fn state_check_due(&self, icount: u64) -> bool {
        match &self.log {
            Log::Record(r) => r.checks.interval > 0 && r.writer.is_some() && icount >= r.next_check,
            Log::Replay(_) => self
                .peek_at(icount, |e| matches!(e, Event::StateHash { .. }))
                .is_some(),
            Log::None => false,
        }
    }

    /// A state check: record logs `hash` (and every few checks the registers); replay compares
    /// them with the log, and on a mismatch builds a divergence with a register diff.
    pub fn state_check(&mut self, icount: u64, hash: u64, regs: &[(&str, u64)]) {
        match &mut self.log {
            Log::Record(r) => {
                let every = r.checks.registers_every;
                let with_regs = every > 0 && r.checks_done % every == 0;
                r.checks_done += 1;
                let interval = r.checks.interval.max(1);
                r.next_check = (icount / interval + 1).saturating_mul(interval);
                self.log_event(icount, &Event::StateHash { hash });
                if with_regs {
                    let regs = regs.iter().map(|&(_, v)| v).collect();
                    self.log_event(icount, &Event::StateRegisters { regs });
                }
            }
            Log::Replay(_) => {
                let Some(Event::StateHash { hash: recorded }) = self.consume() else {
                    return;
                };
                let recorded_regs =
                    match self.peek_at(icount, |e| matches!(e, Event::StateRegisters { .. })) {
                        Some(Event::StateRegisters { regs }) => Some(regs.clone()),
                        _ => None,
                    };
                let diff: Vec<RegisterDiff> = recorded_regs
                    .as_ref()
                    .map(|rec| {
                        regs.iter()
                            .zip(rec.iter().copied().chain(std::iter::repeat(0)))
                            .filter(|((_, now), was)| now != was)
                            .map(|(&(name, now), was)| RegisterDiff {
                                name: name.to_string(),
                                recorded: was,
                                replayed: now,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let layout_differs = recorded_regs
                    .as_ref()
                    .is_some_and(|r| r.len() != regs.len());
                if recorded != hash || !diff.is_empty() || layout_differs {
                    let asked = if recorded == hash {
                        format!(
                            "state check: hash {hash:#018x} matches, but the recorded registers \
                             differ"
                        )
                    } else {
                        format!(
                            "state check: hash {hash:#018x}, the recording has {recorded:#018x}"
                        )
                    };
                    let mut d = self.divergence(icount, asked);
                    d.register_diff = diff;
                    let last_good = self.replayer().and_then(|r| r.last_good_check);
                    let since = match last_good {
                        Some(g) => format!("the previous check at instruction {g} matched"),
                        None => "this is the first state check".to_string(),
                    };
                    d.note = Some(if recorded_regs.is_none() {
                        format!(
                            "registers were not recorded at this check (only every few \
                             checks carry them); {since}, so the guest went astray in between"
                        )
                    } else if d.register_diff.is_empty() {
                        format!(
                            "all registers match: the difference is in CSRs not recorded or in \
                             the serial output so far; {since}"
                        )
                    } else {
                        since
                    });
                    self.fail(ReplayStop::Diverged(Box::new(d)));
                    return;
                }
                if recorded_regs.is_some() {
                    self.consume();
                }
                if let Log::Replay(r) = &mut self.log {
                    r.last_good_check = Some(icount);
                }
            }
            Log::None => {}
        }
    }

    /// Record: the icount at which the next state check is due (the machine ends a slice
    /// there so checks fall at exact multiples of the interval); `None` otherwise.
    pub fn next_check_icount(&self) -> Option<u64> {
        match &self.log {
            Log::Record(r) if r.checks.interval > 0 && r.writer.is_some() => Some(r.next_check),
            _ => None,
        }
    }

    /// Icount of the next logged event the machine must stop at (replay); `None` in run and
    /// record mode. For a trace cut short, the icount of its last event.
    pub fn next_event_icount(&self) -> Option<u64> {
        let r = self.replayer()?;
        Some(match &r.next {
            Some(e) => e.icount,
            None => r.last_icount,
        })
    }

    /// Replay: true when the next logged event is the `End` of the recording.
    pub fn replay_at_end(&self) -> bool {
        self.replayer()
            .and_then(|r| r.next.as_ref())
            .is_some_and(|e| matches!(e.event, Event::End))
    }

    /// Replay, at the end of a checkpoint from which the guest goes on running: checks that no
    /// logged event was left behind, that the log does not end here, and stops at the cut of a
    /// truncated trace.
    pub fn check_position(&mut self, icount: u64) {
        if self.failure.is_some() {
            return;
        }
        let Some(r) = self.replayer() else {
            return;
        };
        match &r.next {
            Some(e) if matches!(e.event, Event::End) && e.icount <= icount => {
                let asked =
                    format!("to run on past instruction {icount}, where the recording ended");
                self.diverge(icount, asked);
            }
            Some(e) if e.icount < icount => {
                let asked = format!(
                    "to run on to instruction {icount} without the {} logged at instruction {}",
                    e.event.kind(),
                    e.icount
                );
                self.diverge(icount, asked);
            }
            Some(_) => {}
            None => {
                if icount >= r.last_icount {
                    let path = r.reader.path().to_path_buf();
                    let detail = match r.reader.truncated() {
                        Some(t) => format!(
                            "replayed up to its last complete block; the file ends at offset {} \
                             with {} unusable bytes",
                            t.file_offset, t.bytes_lost
                        ),
                        None => "the trace has no End event".to_string(),
                    };
                    self.fail(ReplayStop::CutShort {
                        path,
                        icount: r.last_icount,
                        detail,
                    });
                }
            }
        }
    }

    /// Record: write the `End` event and the footer; returns the trace size in bytes. Other
    /// modes: `Ok(None)`.
    pub fn finish_recording(
        &mut self,
        icount: u64,
        final_state_hash: u64,
    ) -> Result<Option<u64>, ReplayStop> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        let Log::Record(r) = &mut self.log else {
            return Ok(None);
        };
        let Some(w) = r.writer.take() else {
            return Ok(None);
        };
        let footer = rewind_log::Footer::new(icount, Some(final_state_hash));
        Ok(Some(w.finish(&footer)?))
    }

    /// Replay: the machine stopped at `icount` with `final_state_hash`; the log must end right
    /// here with the same final state.
    pub fn finish_replay(&mut self, icount: u64, final_state_hash: u64) -> Result<(), ReplayStop> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        let Some(r) = self.replayer() else {
            return Ok(());
        };
        let footer_hash = r.reader.footer().and_then(|f| f.final_state_hash);
        match &r.next {
            Some(e) if matches!(e.event, Event::End) && e.icount == icount => {}
            None if r.reader.truncated().is_some() => {
                self.check_position(icount);
                return match self.failure.take() {
                    Some(f) => Err(f),
                    None => Ok(()),
                };
            }
            _ => {
                self.diverge(icount, "to stop the machine here".into());
                return Err(self.failure.take().unwrap_or_else(|| {
                    ReplayStop::Diverged(Box::new(self.divergence(icount, String::new())))
                }));
            }
        }
        // Consuming End reads past it, which verifies the footer against the events read:
        // data after End or a footer that is zeroed or disagrees is a corrupt trace.
        self.consume();
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        if let Log::Replay(r) = &mut self.log {
            r.reader.next_event()?;
            // Every event is there but the footer is not: the recorder was killed while
            // finishing, so the final state hash cannot be checked.
            if let Some(t) = r.reader.truncated() {
                return Err(ReplayStop::CutShort {
                    path: r.reader.path().to_path_buf(),
                    icount,
                    detail: format!(
                        "every event replayed, but the footer with the final state hash is \
                         missing; the file ends at offset {} with {} unusable bytes",
                        t.file_offset, t.bytes_lost
                    ),
                });
            }
        }
        if let Some(h) = footer_hash {
            if h != final_state_hash {
                let mut d = self.divergence(
                    icount,
                    format!("to stop with state hash {final_state_hash:#018x}"),
                );
                d.note = Some(format!("the recording ended with state hash {h:#018x}"));
                return Err(ReplayStop::Diverged(Box::new(d)));
            }
        }
        Ok(())
    }
}

/// Where a snapshot taken while recording stands in its trace: the mark's sequence number and
/// icount, and the replay position a replaying machine has when it stands there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkPosition {
    /// The mark's sequence number.
    pub seq: u64,
    /// The mark's icount.
    pub icount: u64,
    /// What [`Boundary::replay_position`] gives on a replay standing at this snapshot.
    pub position: ReplayPosition,
}

/// Read the whole trace (log only, no machine) and give every `SnapshotMark` the position a
/// replay has there. Replay skips marks when it reads ahead, so its reader stands just before
/// the first event after the mark that is not a mark; the last consumed icount and the last
/// matched state check are those of the events before it (a replay that got there matched
/// every check on the way).
pub fn mark_positions(reader: &mut TraceReader) -> Result<Vec<MarkPosition>, rewind_log::LogError> {
    let mut out = Vec::new();
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let mut last_icount = 0;
    let mut last_good_check = None;
    loop {
        let cursor = reader.cursor();
        match reader.next_event()? {
            Some(EventAt {
                event: Event::SnapshotMark { seq },
                icount,
                ..
            }) => pending.push((seq, icount)),
            next => {
                for (seq, icount) in pending.drain(..) {
                    out.push(MarkPosition {
                        seq,
                        icount,
                        position: ReplayPosition {
                            cursor: cursor.clone(),
                            last_icount,
                            last_good_check,
                        },
                    });
                }
                let Some(e) = next else {
                    return Ok(out);
                };
                last_icount = e.icount;
                if matches!(e.event, Event::StateHash { .. }) {
                    last_good_check = Some(e.icount);
                }
            }
        }
    }
}

/// Host wall-clock time in ns since the Unix epoch.
fn host_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Fill `buf` from the kernel's entropy source.
fn host_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe a writable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No kernel entropy interface: fall back to a time-seeded generator (the value is
            // logged in record mode anyway).
            let mut x = host_now_ns() | 1;
            for b in rest.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            break;
        }
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

/// The stdin backend thread: escape processing, then one event per read.
fn stdin_reader(tx: Sender<HostEvent>) {
    let mut parser = EscapeParser::new();
    let mut buf = [0u8; 256];
    let mut stdin = std::io::stdin();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut bytes = Vec::with_capacity(n);
        let mut quit = false;
        for &b in &buf[..n] {
            match parser.feed(b) {
                Key::Byte(b) => bytes.push(b),
                Key::Quit => {
                    quit = true;
                    break;
                }
                Key::Help => {
                    let _ = std::io::stderr().write_all(escape::HELP.as_bytes());
                }
                Key::None => {}
            }
        }
        if !bytes.is_empty() && tx.send(HostEvent::Serial(bytes)).is_err() {
            return;
        }
        if quit {
            let _ = tx.send(HostEvent::Shutdown(ShutdownCause::QuitKey));
            return;
        }
    }
    let _ = tx.send(HostEvent::SerialClosed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_log::TraceHeader;

    fn writer(dir: &tempfile::TempDir) -> (PathBuf, TraceWriter) {
        let p = dir.path().join("t.rwtrace");
        let h = TraceHeader::new("0.1.0", serde_json::Value::Null, 0, vec![], 0);
        let w = TraceWriter::create(&p, &h).unwrap();
        (p, w)
    }

    /// Record a session with serial input, a warp, a device event, a state check and a guest
    /// exit; replay must hand back the same values at the same icounts, without waiting.
    #[test]
    fn record_then_replay_gives_the_same_inputs_at_the_same_icounts() {
        let dir = tempfile::tempdir().unwrap();
        let (p, w) = writer(&dir);
        let checks = CheckSettings {
            interval: 1000,
            registers_every: 1,
        };
        let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
        assert_eq!(b.mode(), Mode::Record);
        let t0 = b.host_clock_ns(0);
        let mut seed = [0u8; 8];
        b.random(0, &mut seed);
        let tx = b.sender();
        tx.send(HostEvent::Serial(b"abc".to_vec())).unwrap();
        tx.send(HostEvent::Device(DeviceEvent::BlockComplete {
            device: 1,
            request: 9,
            status: 0,
        }))
        .unwrap();
        b.checkpoint(100);
        let mut out = Vec::new();
        assert_eq!(b.take_serial_input(100, 2, &mut out), 2);
        assert!(b.take_device_event(100).is_some());
        // A second checkpoint at the same icount takes no new host events.
        tx.send(HostEvent::Shutdown(ShutdownCause::Sigterm))
            .unwrap();
        b.checkpoint(100);
        assert_eq!(b.take_shutdown_request(100), None);
        assert_eq!(b.idle(100, Some(5_000_000_000)), Some(5_000_000_000));
        b.checkpoint(100);
        assert_eq!(b.take_serial_input(100, 16, &mut out), 1);
        assert_eq!(out, b"abc");
        assert_eq!(b.next_check_icount(), Some(1000));
        assert!(!b.state_check_due(999));
        assert!(b.state_check_due(1000));
        b.state_check(1000, 0x1234, &[("pc", 0x8000_0000), ("a0", 7)]);
        b.guest_request(1200, GuestRequest::Exit(3));
        assert!(b.finish_recording(1200, 0x99).unwrap().unwrap() > 0);
        drop(b);

        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        assert_eq!(r.mode(), Mode::Replay);
        assert!(!r.is_interactive());
        assert_eq!(r.host_clock_ns(0), t0);
        let mut seed2 = [0u8; 8];
        r.random(0, &mut seed2);
        assert_eq!(seed, seed2);
        assert_eq!(r.next_event_icount(), Some(100));
        r.checkpoint(50);
        let mut out2 = Vec::new();
        // Nothing is delivered before the logged icount.
        assert_eq!(r.take_serial_input(50, 16, &mut out2), 0);
        r.check_position(50);
        assert!(!r.has_failure());
        r.checkpoint(100);
        assert_eq!(r.take_shutdown_request(100), None);
        assert_eq!(r.take_serial_input(100, 16, &mut out2), 2);
        assert_eq!(
            r.take_device_event(100),
            Some(DeviceEvent::BlockComplete {
                device: 1,
                request: 9,
                status: 0
            })
        );
        // The 5 s warp is applied at once.
        let start = Instant::now();
        assert_eq!(r.idle(100, Some(5_000_000_000)), Some(5_000_000_000));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(r.take_serial_input(100, 16, &mut out2), 1);
        assert_eq!(out2, b"abc");
        r.check_position(100);
        assert_eq!(r.next_event_icount(), Some(1000));
        assert!(r.state_check_due(1000));
        r.state_check(1000, 0x1234, &[("pc", 0x8000_0000), ("a0", 7)]);
        assert!(!r.has_failure());
        r.guest_request(1200, GuestRequest::Exit(3));
        r.finish_replay(1200, 0x99).unwrap();
    }

    /// Warps to the timer deadline follow from guest state: they cost no log bytes unless an
    /// event follows at the same icount, and replay derives them.
    #[test]
    fn warps_to_the_deadline_are_implied_not_logged() {
        let dir = tempfile::tempdir().unwrap();
        let (p, w) = writer(&dir);
        let checks = CheckSettings {
            interval: 0,
            registers_every: 1,
        };
        let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
        for i in 1..=1000u64 {
            b.checkpoint(i * 10);
            assert_eq!(b.idle(i * 10, Some(1_000_000)), Some(1_000_000));
        }
        b.guest_request(20_000, GuestRequest::Exit(0));
        b.finish_recording(20_000, 1).unwrap();
        drop(b);
        let mut reader = TraceReader::open(&p).unwrap();
        let mut warps = 0;
        while let Some(e) = reader.next_event().unwrap() {
            warps += usize::from(matches!(e.event, Event::IdleWarp { .. }));
        }
        assert_eq!(warps, 0, "implied warps were logged");

        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        for i in 1..=1000u64 {
            r.checkpoint(i * 10);
            assert_eq!(r.idle(i * 10, Some(1_000_000)), Some(1_000_000));
        }
        assert!(!r.has_failure());
        r.guest_request(20_000, GuestRequest::Exit(0));
        r.finish_replay(20_000, 1).unwrap();
    }

    #[test]
    fn a_request_the_log_does_not_hold_is_a_divergence() {
        let dir = tempfile::tempdir().unwrap();
        let (p, w) = writer(&dir);
        let mut b =
            Boundary::record(&BoundaryConfig::default(), w, CheckSettings::default()).unwrap();
        b.host_clock_ns(0);
        b.guest_request(500, GuestRequest::Exit(0));
        b.finish_recording(500, 1).unwrap();
        drop(b);

        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        r.host_clock_ns(0);
        // The guest asks for random bytes the recording never gave it.
        let mut buf = [0u8; 4];
        r.random(10, &mut buf);
        let Some(ReplayStop::Diverged(d)) = r.take_failure() else {
            panic!("no divergence");
        };
        assert_eq!(d.icount, 10);
        assert_eq!(d.asked, "4 random bytes");
        let next = d.log_next.as_ref().unwrap();
        assert_eq!(
            (next.kind, next.icount),
            (rewind_log::EventKind::GuestExit, 500)
        );
        assert_eq!(d.recent.len(), 1);
        assert_eq!(d.recent[0].kind, rewind_log::EventKind::ClockRead);
        let text = d.to_string();
        assert!(
            text.starts_with("replay diverged at instruction 10\n"),
            "{text}"
        );
        assert!(
            text.contains("GuestExit at instruction 500 (file offset 0x"),
            "{text}"
        );

        // Running past the logged exit is caught at the next checkpoint.
        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        r.host_clock_ns(0);
        r.check_position(499);
        assert!(!r.has_failure());
        r.check_position(501);
        assert!(matches!(r.take_failure(), Some(ReplayStop::Diverged(_))));
    }

    /// Snapshot marks are invisible to replay, and [`mark_positions`] gives each the position
    /// a replay has once it has consumed every event before the mark.
    #[test]
    fn snapshot_marks_are_skipped_and_located() {
        let dir = tempfile::tempdir().unwrap();
        let (p, w) = writer(&dir);
        let checks = CheckSettings {
            interval: 100,
            registers_every: 0,
        };
        let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
        b.host_clock_ns(0);
        assert_eq!(b.snapshot_mark(0), Some(0));
        b.state_check(100, 7, &[]);
        assert_eq!(b.snapshot_mark(100), Some(1));
        // Two marks in a row, then an implied warp written before a later event at 300.
        assert_eq!(b.snapshot_mark(200), Some(2));
        b.checkpoint(300);
        assert_eq!(b.idle(300, Some(50)), Some(50));
        assert_eq!(b.snapshot_mark(300), Some(3));
        b.set_pause_at_limit(true);
        b.end_of_recording(300);
        b.set_pause_at_limit(false);
        b.guest_request(400, GuestRequest::Exit(0));
        b.finish_recording(400, 1).unwrap();
        drop(b);

        let marks = mark_positions(&mut TraceReader::open(&p).unwrap()).unwrap();
        assert_eq!(
            marks.iter().map(|m| (m.seq, m.icount)).collect::<Vec<_>>(),
            [(0, 0), (1, 100), (2, 200), (3, 300)]
        );
        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        r.host_clock_ns(0);
        assert_eq!(r.replay_position().unwrap(), marks[0].position);
        assert!(r.state_check_due(100));
        r.state_check(100, 7, &[]);
        let at_100 = r.replay_position().unwrap();
        assert_eq!(at_100, marks[1].position);
        assert_eq!(at_100.last_good_check, Some(100));
        // Nothing is logged between 100 and 300 but marks: both stand before the warp.
        assert_eq!(marks[2].position, at_100);
        assert_eq!(r.idle(300, Some(50)), Some(50));
        assert_eq!(r.replay_position().unwrap(), marks[3].position);
        // The paused limit logged no end of recording.
        assert_eq!(r.take_shutdown_request(300), None);
        r.guest_request(400, GuestRequest::Exit(0));
        assert!(!r.has_failure());
        r.finish_replay(400, 1).unwrap();
        // A replay resumed at any mark reads the same events on.
        let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
        r.seek_replay(&marks[1].position).unwrap();
        assert_eq!(r.idle(300, Some(50)), Some(50));
        r.guest_request(400, GuestRequest::Exit(0));
        r.finish_replay(400, 1).unwrap();
    }

    #[test]
    fn serial_input_is_delivered_only_as_room_allows() {
        let mut b = Boundary::detached();
        b.sender()
            .send(HostEvent::Serial(b"hello".to_vec()))
            .unwrap();
        let mut out = Vec::new();
        // Not seen before a checkpoint.
        assert_eq!(b.take_serial_input(0, 16, &mut out), 0);
        b.checkpoint(10);
        assert_eq!(b.take_serial_input(10, 2, &mut out), 2);
        assert_eq!(out, b"he");
        assert_eq!(b.queued_serial_input(), 3);
        assert_eq!(b.take_serial_input(20, 16, &mut out), 3);
        assert_eq!(out, b"hello");
    }

    #[test]
    fn file_backend_queues_the_whole_file() {
        let path = std::env::temp_dir().join(format!("rewind-serial-in-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let mut b = Boundary::new(&BoundaryConfig {
            serial: SerialInput::File(path.clone()),
            signals: false,
        })
        .unwrap();
        assert!(!b.is_interactive());
        let mut out = Vec::new();
        b.take_serial_input(0, 100, &mut out);
        assert_eq!(out, b"abc");
        let _ = std::fs::remove_file(&path);
        let missing = PathBuf::from("/nonexistent/rewind-input");
        let err = Boundary::new(&BoundaryConfig {
            serial: SerialInput::File(missing),
            signals: false,
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/rewind-input: "),
            "{err}"
        );
    }

    #[test]
    fn first_shutdown_request_wins_and_is_taken_once() {
        let mut b = Boundary::detached();
        let tx = b.sender();
        tx.send(HostEvent::Shutdown(ShutdownCause::QuitKey))
            .unwrap();
        tx.send(HostEvent::Shutdown(ShutdownCause::Sigterm))
            .unwrap();
        b.checkpoint(5);
        assert_eq!(b.take_shutdown_request(5), Some(ShutdownCause::QuitKey));
        assert_eq!(b.take_shutdown_request(6), None);
    }

    #[test]
    fn idle_without_live_input_jumps_to_the_deadline_or_gives_up() {
        let mut b = Boundary::detached();
        assert_eq!(b.idle(0, Some(1_000_000_000)), Some(1_000_000_000));
        assert_eq!(b.idle(0, None), None);
    }

    #[test]
    fn idle_with_live_input_waits_for_it() {
        let mut b = Boundary::detached();
        b.interactive = true;
        let tx = b.sender();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(HostEvent::Serial(b"x".to_vec())).unwrap();
        });
        let warp = b.idle(0, Some(10_000_000_000)).unwrap();
        t.join().unwrap();
        assert!((15_000_000..5_000_000_000).contains(&warp), "warp {warp}");
        assert_eq!(b.queued_serial_input(), 1);
        // A deadline that passes with no input warps exactly to it.
        assert_eq!(b.idle(0, Some(1_000_000)), Some(1_000_000));
        // End of input makes the console non-interactive.
        b.sender().send(HostEvent::SerialClosed).unwrap();
        b.checkpoint(0);
        assert!(!b.is_interactive());
    }

    #[test]
    fn random_fills_the_buffer() {
        let mut b = Boundary::detached();
        let mut x = [0u8; 64];
        b.random(0, &mut x);
        assert!(x.iter().any(|&v| v != 0));
        assert!(b.host_clock_ns(0) > 1_600_000_000_000_000_000);
    }
}
