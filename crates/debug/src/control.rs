//! One session driven by several front-ends at once: the gdb stub and QMP monitor clients send
//! requests to the execution thread as [`Input`]s; the thread runs the machine in slices
//! between them, so a `stop` or Ctrl-C is seen within about a millisecond of guest time.
//!
//! The [`Controller`] holds the run state both front-ends share (QEMU's `RunState`): running
//! with a pending [`Action`], paused, or at the end of the guest's execution. It is also the
//! gdb stub's target (see [`crate::gdb`]).

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crate::session::{ReverseSearch, Session, SessionError, StopReason};

/// Instructions run between two looks at the front-ends' requests.
pub const SLICE: u64 = 1 << 20;

/// Instructions a step of one hart runs (one at a time) between two looks at the requests.
const STEP_SLICE: u64 = 1 << 16;

/// How long a paused session waits for a request before looking again.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// What the machine does while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run forward until something stops it.
    Continue,
    /// Run forward until this hart stops at a breakpoint or watchpoint (the other harts run
    /// too, without stopping).
    ContinueHart(usize),
    /// Execute one instruction.
    Step,
    /// Run until this hart has retired one instruction (the other harts take the turns they
    /// have before it).
    StepHart(usize),
    /// Go back one instruction (replay).
    ReverseStep,
    /// Go back to just before this hart's last retired instruction (replay).
    ReverseStepHart(usize),
    /// Go back to the previous breakpoint or watchpoint hit (replay).
    ReverseContinue,
}

/// Something monitor clients are told about (QMP events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineEvent {
    /// The machine stopped.
    Stop(StopReason),
    /// The machine started running.
    Resume,
    /// The machine will reset (QEMU's RESET event).
    Reset {
        /// True when the guest asked.
        guest: bool,
        /// QEMU's `ShutdownCause` name (`host-qmp-system-reset`).
        reason: &'static str,
    },
    /// A power-button press was requested (QEMU's POWERDOWN event).
    Powerdown,
    /// The guest's execution ended (`guest`: the guest asked) or the host quit it.
    Shutdown {
        /// True when the guest powered off or reset itself.
        guest: bool,
        /// QEMU's `ShutdownCause` name: `guest-shutdown`, `host-qmp-quit`, `host-signal`, ...
        reason: &'static str,
    },
}

/// A request to the execution thread.
#[derive(Debug)]
pub enum Input {
    /// A QMP command from a monitor client.
    Qmp(crate::qmp::QmpRequest),
    /// A gdb client connected.
    GdbConnected(std::net::TcpStream),
    /// Bytes from the gdb client.
    GdbData(Vec<u8>),
    /// The gdb client closed its connection.
    GdbClosed,
}

/// The shared run state of a debugged session.
pub struct Controller {
    session: Session,
    running: Option<Action>,
    /// The reverse-continue being carried out, one snapshot interval per `run_pending`.
    reverse_search: Option<ReverseSearch>,
    last_stop: Option<StopReason>,
    events: Vec<MachineEvent>,
    quit: bool,
    /// The last machine error (divergence, trace error); the session is paused after it.
    last_error: Option<String>,
    /// The hart gdb's next resume steps (`vCont;s:TID`), set while gdb lists its actions.
    pub(crate) gdb_step: Option<usize>,
    /// The one hart gdb's next resume continues (`vCont;c:TID` without a default action).
    pub(crate) gdb_continue: Option<usize>,
    /// gdb's next resume holds the threads it does not name (scheduler locking).
    pub(crate) gdb_locked: bool,
}

impl Controller {
    /// A controller for `session`, paused (`-S`) or running.
    pub fn new(session: Session, start_paused: bool) -> Self {
        Controller {
            session,
            running: (!start_paused).then_some(Action::Continue),
            reverse_search: None,
            last_stop: start_paused.then_some(StopReason::Requested),
            events: Vec::new(),
            quit: false,
            last_error: None,
            gdb_step: None,
            gdb_continue: None,
            gdb_locked: false,
        }
    }

    /// The session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session, mutably (breakpoints, memory, seeks while paused).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Give the session back (to finish a recording).
    pub fn into_session(self) -> Session {
        self.session
    }

    /// The action being carried out, if running.
    pub fn running(&self) -> Option<Action> {
        self.running
    }

    /// Why the machine last stopped.
    pub fn last_stop(&self) -> Option<&StopReason> {
        self.last_stop.as_ref()
    }

    /// The last machine error, if the session stopped on one.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// QEMU's run-state name: `running`, `paused` (stop request, `-S`), `debug` (breakpoint,
    /// step, seek) or `shutdown` (the guest's execution ended).
    pub fn status(&self) -> &'static str {
        if self.running.is_some() {
            "running"
        } else if self.session.ended().is_some() {
            "shutdown"
        } else {
            match self.last_stop {
                None | Some(StopReason::Requested) => "paused",
                Some(_) => "debug",
            }
        }
    }

    /// Start `action`. Reverse actions need a replay; forward ones a guest that has not ended.
    pub fn resume(&mut self, action: Action) -> Result<(), SessionError> {
        let reverse = matches!(
            action,
            Action::ReverseStep | Action::ReverseStepHart(_) | Action::ReverseContinue
        );
        if reverse && self.session.mode() != rewind_replay::Mode::Replay {
            return Err(SessionError::NotReplaying {
                what: "reverse execution",
                mode: mode_name(self.session.mode()),
            });
        }
        if self.running.is_none() {
            self.events.push(MachineEvent::Resume);
        }
        self.running = Some(action);
        self.reverse_search = None;
        Ok(())
    }

    /// Stop running (no effect when paused).
    pub fn pause(&mut self, reason: StopReason) {
        if self.running.take().is_some() {
            self.stopped(reason);
        }
    }

    /// Record a stop that already happened (the machine is not running).
    fn stopped(&mut self, reason: StopReason) {
        self.running = None;
        self.reverse_search = None;
        if let StopReason::Ended(outcome) = &reason {
            let (guest, why) = shutdown_cause(outcome);
            self.events
                .push(MachineEvent::Shutdown { guest, reason: why });
        }
        self.events.push(MachineEvent::Stop(reason.clone()));
        self.last_stop = Some(reason);
    }

    /// Replay: seek to `icount` (QMP `replay-seek`); the machine is paused there. Clients are
    /// told RESUME then STOP, as QEMU's asynchronous seek does.
    pub fn seek(&mut self, icount: u64) -> Result<StopReason, SessionError> {
        if self.session.mode() != rewind_replay::Mode::Replay {
            return Err(SessionError::NotReplaying {
                what: "replay-seek",
                mode: mode_name(self.session.mode()),
            });
        }
        self.running = None;
        self.events.push(MachineEvent::Resume);
        let r = self.session.seek(icount);
        let reason = match &r {
            Ok(reason) => reason.clone(),
            Err(_) => self
                .session
                .ended()
                .map(StopReason::Ended)
                .unwrap_or(StopReason::Requested),
        };
        self.events.push(MachineEvent::Stop(reason.clone()));
        self.last_stop = Some(reason);
        r
    }

    /// Tell the front-ends about `event`.
    pub fn notify(&mut self, event: MachineEvent) {
        self.events.push(event);
    }

    /// Ask the serving loop to end (QMP `quit`, gdb `kill`).
    pub fn request_quit(&mut self) {
        if !self.quit {
            self.quit = true;
            self.running = None;
            self.events.push(MachineEvent::Shutdown {
                guest: false,
                reason: "host-qmp-quit",
            });
        }
    }

    /// True once [`Controller::request_quit`] was called.
    pub fn quit_requested(&self) -> bool {
        self.quit
    }

    /// Events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<MachineEvent> {
        std::mem::take(&mut self.events)
    }

    /// Carry out a piece of the pending action. Returns the stop reason once it stopped.
    /// A machine error pauses the session and is returned (and kept as [`Self::last_error`]).
    pub fn run_pending(&mut self) -> Result<Option<StopReason>, SessionError> {
        let Some(action) = self.running else {
            return Ok(None);
        };
        let r = match action {
            Action::Continue => self.session.resume(SLICE),
            Action::ContinueHart(hart) => self.session.resume_hart(hart, SLICE),
            Action::Step => self.session.step().map(Some),
            // Instruction by instruction: a smaller slice keeps a stop request prompt.
            Action::StepHart(hart) => self.session.step_hart(hart, STEP_SLICE),
            Action::ReverseStep => self.session.reverse_step().map(Some),
            Action::ReverseStepHart(hart) => self.session.reverse_step_hart(hart).map(Some),
            // One snapshot interval at a time: a stop request can interrupt a long search.
            Action::ReverseContinue => {
                let search = match self.reverse_search.take() {
                    Some(s) => Ok(s),
                    None => self.session.start_reverse_search(),
                };
                search.and_then(|mut s| {
                    let r = self.session.continue_reverse_search(&mut s);
                    if matches!(r, Ok(None)) {
                        self.reverse_search = Some(s);
                    }
                    r
                })
            }
        };
        match r {
            Ok(Some(reason)) => {
                self.stopped(reason.clone());
                Ok(Some(reason))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.last_error = Some(e.to_string());
                self.stopped(StopReason::Requested);
                Err(e)
            }
        }
    }
}

/// The name of a session mode in messages.
pub fn mode_name(mode: rewind_replay::Mode) -> &'static str {
    match mode {
        rewind_replay::Mode::Run => "run",
        rewind_replay::Mode::Record => "record",
        rewind_replay::Mode::Replay => "replay",
    }
}

/// QEMU's SHUTDOWN event fields for an outcome.
fn shutdown_cause(outcome: &rewind_machine::RunOutcome) -> (bool, &'static str) {
    use rewind_machine::RunOutcome;
    match outcome {
        RunOutcome::Exited(_) => (true, "guest-shutdown"),
        RunOutcome::HostQuit(_) => (false, "host-signal"),
        RunOutcome::InstructionLimit | RunOutcome::Debug(_) => (false, "host-qmp-quit"),
    }
}

/// The front-ends a session is served to.
#[derive(Default)]
pub struct Frontends {
    /// The gdb server, if `--gdb` was given.
    pub gdb: Option<crate::gdb::GdbServer>,
    /// The QMP server, if `--qmp` was given.
    pub qmp: Option<crate::qmp::QmpServer>,
}

/// Serve `ctl` to the front-ends until a client quits (QMP `quit`, gdb `kill`) or, when gdb
/// detaches with no monitor configured, the guest runs to its end. Machine errors are reported
/// on stderr and to the clients; the session stays paused and usable.
pub fn serve(ctl: &mut Controller, mut frontends: Frontends) -> Result<(), crate::gdb::GdbError> {
    let (tx, rx): (Sender<Input>, Receiver<Input>) = channel();
    if let Some(q) = frontends.qmp.as_mut() {
        q.start(tx.clone());
    }
    if let Some(g) = frontends.gdb.as_mut() {
        g.start(tx.clone());
    }
    drop(tx);
    let mut gdb: Option<crate::gdb::GdbConnection> = None;
    // Run to the end without waiting once gdb detached and nobody else can stop us.
    let mut finish_alone = false;
    loop {
        // Requests: all that are queued while running; wait for one while paused.
        let first = if ctl.running().is_some() {
            rx.try_recv().ok()
        } else {
            match rx.recv_timeout(IDLE_POLL) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                // Every front-end thread is gone: nobody can resume us.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        let mut next = first;
        while let Some(input) = next {
            match input {
                Input::Qmp(req) => {
                    let r = crate::qmp::execute(ctl, &req.command, &req.arguments);
                    // A client that went away does not need its answer.
                    let _ = req.reply.send(r);
                }
                Input::GdbConnected(stream) => {
                    if gdb.is_some() {
                        // One debugger at a time, as QEMU.
                        drop(stream);
                    } else {
                        // QEMU stops the machine when gdb attaches.
                        ctl.pause(StopReason::Requested);
                        gdb = Some(crate::gdb::GdbConnection::new(stream, ctl)?);
                        finish_alone = false;
                    }
                }
                Input::GdbData(bytes) => {
                    if let Some(conn) = gdb.as_mut() {
                        if !conn.incoming(ctl, &bytes)? {
                            gdb = None;
                            finish_alone = gdb_gone(ctl, &frontends);
                        }
                    }
                }
                Input::GdbClosed => {
                    if gdb.take().is_some() {
                        finish_alone = gdb_gone(ctl, &frontends);
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        // SIGINT/SIGTERM/SIGHUP (run and record): a paused machine drains no host events, so
        // let it run into its next checkpoint, which takes the shutdown request before any
        // instruction (a recording logs it and ends replayable); then stop serving.
        let signalled = ctl.session().machine().boundary().host_signal_received();
        if signalled && ctl.session().ended().is_none() && ctl.running().is_none() {
            let _ = ctl.resume(Action::Continue);
        }
        if !ctl.quit_requested() {
            if let Err(e) = ctl.run_pending() {
                note!("rewind: {e}");
            }
        }
        for event in ctl.take_events() {
            if let Some(q) = frontends.qmp.as_ref() {
                q.broadcast(&event);
            }
            if let (MachineEvent::Stop(reason), Some(conn)) = (&event, gdb.as_mut()) {
                if !conn.machine_stopped(ctl, reason)? {
                    gdb = None;
                    finish_alone = gdb_gone(ctl, &frontends);
                }
            }
        }
        if ctl.quit_requested() {
            return Ok(());
        }
        if signalled && (ctl.session().ended().is_some() || ctl.last_error().is_some()) {
            return Ok(());
        }
        if finish_alone && ctl.running().is_none() && ctl.session().ended().is_some() {
            return Ok(());
        }
    }
}

/// gdb went away: with no monitor to take over, run the guest to its end (as QEMU does after
/// `detach`) and then stop serving.
fn gdb_gone(ctl: &mut Controller, frontends: &Frontends) -> bool {
    if frontends.qmp.is_some() {
        return false;
    }
    if ctl.session().ended().is_none() {
        let _ = ctl.resume(Action::Continue);
    }
    true
}
