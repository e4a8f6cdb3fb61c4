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
//! [`device`] (block, network, input events), [`lifecycle`] (shutdown, guest exit, end of
//! trace), [`checks`] (state checks); this file holds the boundary itself and the log
//! plumbing every family shares; host backends are in [`host`].

pub mod checks;
pub mod device;
pub mod divergence;
pub mod host;
pub mod lifecycle;
pub mod random;
pub mod serial;
pub mod time;

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

pub use checks::{CheckSettings, DEFAULT_CHECK_INTERVAL, DEFAULT_REGISTERS_EVERY};
pub use device::DeviceEvent;
pub use divergence::{Divergence, LoggedEvent, RegisterDiff, ReplayStop};
pub use host::output::OutputSink;
pub use host::{escape, output, terminal};
pub use lifecycle::{GuestRequest, ShutdownCause};
pub use rewind_log;

use rewind_log::{Event, EventAt, ReaderCursor, TraceHeader, TraceReader, TraceWriter};

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

    pub(crate) fn fail(&mut self, stop: ReplayStop) {
        self.failure.get_or_insert(stop);
    }

    /// Record mode: append one event; a write error becomes the boundary's failure.
    pub(crate) fn log_event(&mut self, icount: u64, event: &Event) {
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

    pub(crate) fn replayer(&self) -> Option<&Replayer> {
        match &self.log {
            Log::Replay(r) => Some(r),
            _ => None,
        }
    }

    /// Read the next event of the trace into the look-ahead slot, passing over snapshot
    /// marks (they carry no input; [`mark_positions`] relies on this exact rule).
    pub(crate) fn read_ahead(&mut self) {
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
    pub(crate) fn peek_at(&self, icount: u64, want: impl Fn(&Event) -> bool) -> Option<&Event> {
        let r = self.replayer()?;
        let e = r.next.as_ref()?;
        (e.icount == icount && want(&e.event)).then_some(&e.event)
    }

    /// Consume the look-ahead event and read the next one.
    pub(crate) fn consume(&mut self) -> Option<Event> {
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
    pub(crate) fn divergence(&self, icount: u64, asked: String) -> Divergence {
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

    pub(crate) fn diverge(&mut self, icount: u64, asked: String) {
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
    pub(crate) fn expect(
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

    pub(crate) fn accept(&mut self, ev: HostEvent) {
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
