//! The log plumbing every input family shares: building the boundary in each mode, writing
//! events (record), the look-ahead event and divergence reports (replay), checkpoints, the
//! replay position saved in snapshots, and the positions of a recording's snapshot marks.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Instant;

use rewind_log::{Event, EventAt, TraceHeader, TraceReader, TraceWriter};

use crate::{
    Boundary, BoundaryConfig, BoundaryError, CheckSettings, Divergence, HostEvent, Log,
    LoggedEvent, Mode, OutputSink, Recorder, ReplayPosition, ReplayStop, Replayer, FLUSH_EVERY,
    RECENT_EVENTS,
};

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
            reset_requested: false,
            raw_mode: None,
            signals: None,
            signalled: Arc::new(AtomicBool::new(false)),
            device_queue: VecDeque::new(),
            log: Log::None,
            failure: None,
            socket_output: None,
            socket_path: None,
            pause_at_limit: false,
            net: Vec::new(),
            net_sent: 0,
            audio: Vec::new(),
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
