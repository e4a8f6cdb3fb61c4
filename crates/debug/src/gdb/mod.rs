//! The gdb remote stub (the `gdbstub` crate): the [`Controller`] is its target. Registers
//! (general, FP, main CSRs through a target description), memory, breakpoints, watchpoints,
//! single step, continue, Ctrl-C, and in replay reverse step and continue. With several harts
//! every hart is a thread (thread id = hart id + 1) and stop replies name the hart they are
//! about (see `docs/debugging.md`).
//!
//! The stub runs as gdbstub's non-blocking state machine on the execution thread: a reader
//! thread forwards the client's bytes as [`Input::GdbData`], resume packets set the
//! controller's pending action, and the serving loop calls [`GdbConnection::machine_stopped`]
//! for every stop so that each resume gets its stop reply.

pub mod arch;
mod target;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;

use gdbstub::common::Signal;
use gdbstub::common::Tid;
use gdbstub::conn::Connection;
use gdbstub::stub::state_machine::GdbStubStateMachine;
use gdbstub::stub::{
    BaseStopReason, DisconnectReason, GdbStub, MultiThreadStopReason, SingleThreadStopReason,
};
use gdbstub::target::ext::base::reverse_exec::ReplayLogPosition;
use gdbstub::target::ext::breakpoints::WatchKind as GdbWatchKind;
use rewind_cpu::WatchKind;
use rewind_machine::RunOutcome;
use rewind_replay::Mode;

use crate::control::{Controller, Input};
use crate::session::{BreakKind, StopReason};

pub use target::watch_kind;

/// A failure of the gdb connection that ends serving.
#[derive(Debug, thiserror::Error)]
pub enum GdbError {
    /// Reading or writing the socket.
    #[error("gdb connection: {0}")]
    Io(#[from] std::io::Error),
    /// The stub failed (protocol error, ...).
    #[error("gdb stub: {0}")]
    Stub(String),
}

/// A `--gdb` address that cannot be used.
fn bad_spec(spec: &str, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("--gdb {spec:?}: {why} (expected tcp:HOST:PORT, HOST:PORT or tcp::PORT)"),
    )
}

/// The socket address of a `--gdb` spec: `tcp:HOST:PORT`, `HOST:PORT`, or with an empty host
/// (`tcp::1234`, `:1234`) the loopback address, as QEMU's `-gdb tcp::1234`.
pub fn parse_spec(spec: &str) -> Result<SocketAddr, std::io::Error> {
    let rest = spec.strip_prefix("tcp:").unwrap_or(spec);
    if rest.starts_with("unix:") || spec.starts_with("unix:") {
        return Err(bad_spec(spec, "only TCP is supported for gdb"));
    }
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad_spec(spec, "no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad_spec(spec, "the port is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| bad_spec(spec, &format!("cannot resolve {host:?}: {e}")))?
        .next()
        .ok_or_else(|| bad_spec(spec, &format!("{host:?} has no address")))
}

/// A listening gdb socket.
pub struct GdbServer {
    listener: Option<TcpListener>,
    addr: SocketAddr,
}

impl GdbServer {
    /// Listen on `tcp:HOST:PORT` (or `HOST:PORT`; an empty host is 127.0.0.1).
    pub fn bind(spec: &str) -> Result<GdbServer, std::io::Error> {
        let want = parse_spec(spec)?;
        let listener = TcpListener::bind(want).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("--gdb {spec}: cannot listen on {want}: {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        Ok(GdbServer {
            listener: Some(listener),
            addr,
        })
    }

    /// The address the server listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accept connections on a background thread: `Input::GdbConnected`, then the client's
    /// bytes as `Input::GdbData` and `Input::GdbClosed` at its end.
    pub fn start(&mut self, inputs: Sender<Input>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("gdb-accept".into())
            .spawn(move || accept_loop(listener, inputs));
        if let Err(e) = spawned {
            note!("rewind: gdb: cannot start the server thread: {e}");
        }
    }
}

/// Serve one client after the other until the execution thread stops listening.
fn accept_loop(listener: TcpListener, inputs: Sender<Input>) {
    for stream in listener.incoming() {
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                note!("rewind: gdb: accept failed: {e}");
                continue;
            }
        };
        let for_stub = match stream.try_clone() {
            Ok(s) => s,
            Err(e) => {
                note!("rewind: gdb: cannot use the connection: {e}");
                continue;
            }
        };
        if inputs.send(Input::GdbConnected(for_stub)).is_err() {
            return;
        }
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if inputs.send(Input::GdbData(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if inputs.send(Input::GdbClosed).is_err() {
            return;
        }
    }
}

thread_local! {
    /// The reason for the error reply the stub is about to send (set by the target on the
    /// execution thread, which also sends the reply).
    static ERROR_TEXT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Give the next error reply this text.
pub(crate) fn set_error_text(text: String) {
    let _ = ERROR_TEXT.try_with(|t| *t.borrow_mut() = Some(text));
}

/// Replace an `Enn` reply packet in `out` by `E.text` (gdb 9 and later print the text as the
/// remote's failure reply). Characters the protocol reserves become spaces.
fn with_error_text(out: &mut Vec<u8>, text: &str) -> bool {
    let Some(start) = out.windows(2).position(|w| w == b"$E") else {
        return false;
    };
    let p = &out[start..];
    let is_enn = p.len() >= 7
        && p[2].is_ascii_hexdigit()
        && p[3].is_ascii_hexdigit()
        && p[4] == b'#'
        && p[5].is_ascii_hexdigit()
        && p[6].is_ascii_hexdigit();
    if !is_enn {
        return false;
    }
    let mut body = b"E.".to_vec();
    body.extend(text.bytes().map(|b| match b {
        b'$' | b'#' | b'}' | b'*' => b' ',
        b if b.is_ascii_graphic() || b == b' ' => b,
        _ => b'?',
    }));
    let sum = body.iter().fold(0u8, |s, &b| s.wrapping_add(b));
    let mut packet = vec![b'$'];
    packet.extend_from_slice(&body);
    packet.extend_from_slice(format!("#{sum:02x}").as_bytes());
    out.splice(start..start + 7, packet);
    true
}

/// The client's socket with the stub's output gathered into one write per packet (gdbstub
/// writes byte by byte).
pub struct BufferedStream {
    stream: TcpStream,
    out: Vec<u8>,
}

impl BufferedStream {
    /// Buffer writes to `stream`.
    pub fn new(stream: TcpStream) -> Self {
        BufferedStream {
            stream,
            out: Vec::with_capacity(4096),
        }
    }

    fn send(&mut self) -> Result<(), std::io::Error> {
        // `try_with`: a connection dropped while its thread's locals are destroyed (a fixture
        // kept in a thread-local) has no error to rewrite.
        if let Some(text) = ERROR_TEXT
            .try_with(|t| t.borrow_mut().take())
            .ok()
            .flatten()
        {
            with_error_text(&mut self.out, &text);
        }
        if !self.out.is_empty() {
            let r = Write::write_all(&mut self.stream, &self.out);
            self.out.clear();
            r?;
        }
        Ok(())
    }
}

impl Connection for BufferedStream {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.send()
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        // Packets are small and interactive.
        self.stream.set_nodelay(true)
    }
}

impl Drop for BufferedStream {
    fn drop(&mut self) {
        // Flush a last reply (`OK` to a detach) and end the connection: the reader thread then
        // sees the end too and the server can accept the next client.
        let _ = self.send();
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// The stub's state machine over a client.
type StateMachine = GdbStubStateMachine<'static, Controller, BufferedStream>;

/// One connected gdb client and its stub state.
pub struct GdbConnection {
    /// `None` only while a state transition is in progress (or after a stub failure).
    stub: Option<StateMachine>,
}

/// The stub's error type.
type StubError = gdbstub::stub::GdbStubError<crate::session::SessionError, std::io::Error>;

impl GdbConnection {
    /// Start serving a connected client (the machine is already paused).
    pub fn new(stream: TcpStream, ctl: &mut Controller) -> Result<GdbConnection, GdbError> {
        let stub = GdbStub::new(BufferedStream::new(stream))
            .run_state_machine(ctl)
            .map_err(|e| GdbError::Stub(e.to_string()))?;
        Ok(GdbConnection { stub: Some(stub) })
    }

    /// True while gdb waits for the reply to a resume packet.
    pub fn waiting_for_stop(&self) -> bool {
        matches!(self.stub, Some(GdbStubStateMachine::Running(_)))
    }

    /// Handle bytes from the client. False once the client detached or disconnected.
    pub fn incoming(&mut self, ctl: &mut Controller, data: &[u8]) -> Result<bool, GdbError> {
        for &byte in data {
            let Some(stub) = self.stub.take() else {
                return Ok(false);
            };
            let waiting = matches!(stub, GdbStubStateMachine::Running(_));
            let next = match stub {
                GdbStubStateMachine::Idle(s) => s.incoming_data(ctl, byte),
                GdbStubStateMachine::Running(s) => s.incoming_data(ctl, byte),
                // Not left in these states (handled right below).
                other => Ok(other),
            };
            match self.settle(ctl, next, waiting)? {
                true => {}
                false => return Ok(false),
            }
        }
        // A resume that did not start the machine (a refused request) would leave gdb waiting
        // forever: answer it with where the machine stands.
        if self.waiting_for_stop() && ctl.running().is_none() {
            let reason = ctl.last_stop().cloned().unwrap_or(StopReason::Requested);
            return self.report(ctl, &reason);
        }
        self.flush();
        Ok(self.stub.is_some())
    }

    /// The machine stopped: if gdb is waiting for a stop reply, send it. False once the client
    /// is gone.
    pub fn machine_stopped(
        &mut self,
        ctl: &mut Controller,
        reason: &StopReason,
    ) -> Result<bool, GdbError> {
        // A stop from before gdb's latest resume is not its answer: the serving loop hands
        // over a batch's events after all of its requests, so a stop made by an earlier
        // request (a Ctrl-C, a QMP `stop`) can come before the stop that ended gdb's resume.
        // That one is the last stop; an earlier one is stale when the machine runs again or
        // stopped since for another reason.
        let latest = ctl.running().is_none() && ctl.last_stop() == Some(reason);
        if !self.waiting_for_stop() || !latest {
            return Ok(self.stub.is_some());
        }
        self.report(ctl, reason)
    }

    /// Send the stop reply for `reason` (the stub is in the running state).
    fn report(&mut self, ctl: &mut Controller, reason: &StopReason) -> Result<bool, GdbError> {
        let Some(GdbStubStateMachine::Running(s)) = self.stub.take() else {
            return Ok(self.stub.is_some());
        };
        let stop = stop_reason(reason, ctl.session().mode());
        let next = match stop_thread(ctl) {
            Some(tid) => s.report_stop(ctl, with_thread(stop, tid)),
            None => s.report_stop(ctl, stop),
        };
        let alive = self.settle(ctl, next, false)?;
        self.flush();
        Ok(alive)
    }

    /// Put the stub's new state in place, handling the interrupt and disconnected states
    /// (`waiting`: gdb was waiting for a stop reply before this step). False once the client
    /// is gone.
    fn settle(
        &mut self,
        ctl: &mut Controller,
        next: Result<StateMachine, StubError>,
        waiting: bool,
    ) -> Result<bool, GdbError> {
        let mut state = match next {
            Ok(s) => s,
            Err(e) => {
                // A broken or misbehaving client ends its connection, not the session.
                note!("rewind: gdb: {e}; closing the connection");
                return Ok(false);
            }
        };
        loop {
            state = match state {
                GdbStubStateMachine::CtrlCInterrupt(s) => {
                    // Ctrl-C: stop where the machine is and answer the resume gdb waits on.
                    // (A Ctrl-C while stopped needs no reply: the stub would hold one back
                    // and send it after the next resume, answering that one wrongly.)
                    ctl.pause(StopReason::Requested);
                    let reason = SingleThreadStopReason::Signal(Signal::SIGINT);
                    let handled = match stop_thread(ctl) {
                        Some(tid) => {
                            s.interrupt_handled(ctl, waiting.then_some(with_thread(reason, tid)))
                        }
                        None => s.interrupt_handled(ctl, waiting.then_some(reason)),
                    };
                    match handled {
                        Ok(s) => s,
                        Err(e) => {
                            note!("rewind: gdb: {e}; closing the connection");
                            return Ok(false);
                        }
                    }
                }
                GdbStubStateMachine::Disconnected(mut s) => {
                    match s.get_reason() {
                        DisconnectReason::Kill => {
                            // gdb sends `vKill` and waits for its `OK` (which gdbstub does not
                            // send outside extended mode); after a plain `k` it reads nothing.
                            let _ = s.borrow_conn().write_all(b"$OK#9a");
                            ctl.request_quit();
                        }
                        // gdb saw the guest exit, or detached: the serving loop decides what
                        // happens to the machine.
                        DisconnectReason::Disconnect
                        | DisconnectReason::TargetExited(_)
                        | DisconnectReason::TargetTerminated(_) => {}
                    }
                    let _ = s.borrow_conn().flush();
                    return Ok(false);
                }
                other => {
                    self.stub = Some(other);
                    return Ok(true);
                }
            };
        }
    }

    /// Send what the stub wrote (acks are written without a flush of their own).
    fn flush(&mut self) {
        let r = match self.stub.as_mut() {
            Some(GdbStubStateMachine::Idle(s)) => s.borrow_conn().flush(),
            Some(GdbStubStateMachine::Running(s)) => s.borrow_conn().flush(),
            Some(GdbStubStateMachine::CtrlCInterrupt(s)) => s.borrow_conn().flush(),
            Some(GdbStubStateMachine::Disconnected(s)) => s.borrow_conn().flush(),
            None => Ok(()),
        };
        if let Err(e) = r {
            note!("rewind: gdb: {e}; closing the connection");
            self.stub = None;
        }
    }
}

/// With several harts, the gdb thread a stop reply names: the hart the stop is about (see
/// [`crate::session::Session::stop_hart`]). `None` with one hart (single-threaded stub).
fn stop_thread(ctl: &Controller) -> Option<Tid> {
    let s = ctl.session();
    (s.machine().harts().len() > 1).then(|| target::tid_of(s.stop_hart()))
}

/// A single-threaded stop reply as the multi-threaded one for thread `tid` (steps and signals
/// name their thread too: gdb then switches to it).
pub fn with_thread(stop: SingleThreadStopReason<u64>, tid: Tid) -> MultiThreadStopReason<u64> {
    match stop {
        BaseStopReason::DoneStep => BaseStopReason::SignalWithThread {
            tid,
            signal: Signal::SIGTRAP,
        },
        BaseStopReason::Signal(signal) | BaseStopReason::SignalWithThread { signal, .. } => {
            BaseStopReason::SignalWithThread { tid, signal }
        }
        BaseStopReason::SwBreak(()) => BaseStopReason::SwBreak(tid),
        BaseStopReason::HwBreak(()) => BaseStopReason::HwBreak(tid),
        BaseStopReason::Watch { kind, addr, .. } => BaseStopReason::Watch { tid, kind, addr },
        BaseStopReason::ReplayLog { pos, .. } => BaseStopReason::ReplayLog {
            tid: Some(tid),
            pos,
        },
        BaseStopReason::Exited(code) => BaseStopReason::Exited(code),
        BaseStopReason::Terminated(sig) => BaseStopReason::Terminated(sig),
        // Not produced by `stop_reason`.
        _ => BaseStopReason::SignalWithThread {
            tid,
            signal: Signal::SIGTRAP,
        },
    }
}

/// The stop reply for a stop in a session of `mode`.
pub fn stop_reason(reason: &StopReason, mode: Mode) -> SingleThreadStopReason<u64> {
    let replay = mode == Mode::Replay;
    match reason {
        StopReason::Requested => SingleThreadStopReason::Signal(Signal::SIGINT),
        StopReason::Breakpoint {
            kind: BreakKind::Software,
            ..
        } => SingleThreadStopReason::SwBreak(()),
        StopReason::Breakpoint {
            kind: BreakKind::Hardware,
            ..
        } => SingleThreadStopReason::HwBreak(()),
        StopReason::Watchpoint { watch, addr, .. } => {
            // gdb matches the address against its watchpoints' ranges: report a byte of the
            // watched range even when the access started before it.
            let last = watch.addr.saturating_add(watch.len.max(1) - 1);
            SingleThreadStopReason::Watch {
                tid: (),
                kind: match watch.kind {
                    WatchKind::Write => GdbWatchKind::Write,
                    WatchKind::Read => GdbWatchKind::Read,
                    WatchKind::Access => GdbWatchKind::ReadWrite,
                },
                addr: (*addr).clamp(watch.addr, last),
            }
        }
        StopReason::Step | StopReason::SeekDone { .. } | StopReason::ReplayBreak { .. } => {
            SingleThreadStopReason::DoneStep
        }
        StopReason::HistoryStart if replay => SingleThreadStopReason::ReplayLog {
            tid: None,
            pos: ReplayLogPosition::Begin,
        },
        StopReason::HistoryStart => SingleThreadStopReason::DoneStep,
        // A replay can still go back from its end: keep gdb attached.
        StopReason::Ended(_) if replay => SingleThreadStopReason::ReplayLog {
            tid: None,
            pos: ReplayLogPosition::End,
        },
        StopReason::Ended(RunOutcome::Exited(code)) => SingleThreadStopReason::Exited(*code as u8),
        StopReason::Ended(_) => SingleThreadStopReason::Signal(Signal::SIGTERM),
    }
}

#[cfg(test)]
mod tests;
