//! The QMP monitor: QEMU's JSON protocol (greeting, `qmp_capabilities`, commands with `id`,
//! asynchronous events) on a unix socket or TCP, so existing QMP clients work.
//!
//! Each client has a thread that reads and frames its JSON objects, does the capabilities
//! negotiation itself and forwards every other command as an [`Input::Qmp`] to the execution
//! thread, which answers through [`execute`]. Events are written by [`QmpServer::broadcast`]
//! on the execution thread. While a client waits for an answer, events for it are held back and
//! written right after the answer, so a command's reply always precedes the events it caused
//! (`cont` → `{"return": {}}`, then `RESUME`).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

pub mod input;

use crate::control::{mode_name, Action, Controller, Input, MachineEvent};
use crate::session::{SessionError, StopReason};

/// The QEMU version announced in the greeting (the one whose protocol is implemented).
const QEMU_VERSION: (u64, u64, u64) = (7, 2, 0);

/// Largest JSON message accepted from a client.
const MAX_MESSAGE: usize = 1 << 20;

/// Deepest nesting accepted (QEMU's limit).
const MAX_NESTING: usize = 1024;

/// A client that does not read its socket for this long is dropped, so a stuck client cannot
/// stall the machine.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the accept thread looks for new clients and for the server's end.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// How long a server being dropped waits for answered clients to write their answer (`quit`).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// A command from a client, answered through `reply` by the execution thread.
#[derive(Debug)]
pub struct QmpRequest {
    /// The command name (`execute`).
    pub command: String,
    /// Its `arguments` (an object; `{}` when absent).
    pub arguments: serde_json::Value,
    /// Where the answer goes.
    pub reply: Sender<Result<serde_json::Value, QmpError>>,
}

/// A QMP error answer: `{"error": {"class": ..., "desc": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpError {
    /// QEMU's error class (`GenericError`, `CommandNotFound`, ...).
    pub class: &'static str,
    /// What went wrong, for a person.
    pub desc: String,
}

impl QmpError {
    /// A `GenericError` (QEMU's class for nearly every failure).
    pub fn generic(desc: impl Into<String>) -> Self {
        QmpError {
            class: "GenericError",
            desc: desc.into(),
        }
    }

    /// A `CommandNotFound` error (unknown command, or one not allowed in this state).
    pub fn command_not_found(desc: impl Into<String>) -> Self {
        QmpError {
            class: "CommandNotFound",
            desc: desc.into(),
        }
    }
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

impl From<SessionError> for QmpError {
    fn from(e: SessionError) -> Self {
        QmpError::generic(e.to_string())
    }
}

/// A listening QMP socket and its clients.
pub struct QmpServer {
    /// Taken by [`QmpServer::start`].
    listener: Option<Listener>,
    /// The address as `unix:PATH` or `tcp:HOST:PORT` (with the port actually bound).
    address: String,
    /// The socket file we created, removed when the server goes away.
    socket_file: Option<PathBuf>,
    shared: Arc<Shared>,
}

impl QmpServer {
    /// Listen on `unix:PATH` or `tcp:HOST:PORT` (loopback unless the user names another
    /// address).
    pub fn bind(spec: &str) -> Result<QmpServer, std::io::Error> {
        let address =
            parse_address(spec).map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))?;
        let context = |e: io::Error, what: &str| {
            io::Error::new(
                e.kind(),
                format!("cannot listen for QMP clients on '{spec}': {what}{e}"),
            )
        };
        match address {
            Address::Unix(path) => {
                remove_stale_socket(&path).map_err(|e| context(e, ""))?;
                let listener = UnixListener::bind(&path).map_err(|e| context(e, ""))?;
                if let Err(e) = listener.set_nonblocking(true) {
                    // Do not leave a socket file nobody serves.
                    let _ = std::fs::remove_file(&path);
                    return Err(context(e, "non-blocking accept: "));
                }
                Ok(QmpServer {
                    listener: Some(Listener::Unix(listener)),
                    address: format!("unix:{}", path.display()),
                    socket_file: Some(path),
                    shared: Arc::default(),
                })
            }
            Address::Tcp { host, port } => {
                let listener =
                    TcpListener::bind((host.as_str(), port)).map_err(|e| context(e, ""))?;
                let local = listener
                    .local_addr()
                    .map_err(|e| context(e, "local address: "))?;
                listener
                    .set_nonblocking(true)
                    .map_err(|e| context(e, "non-blocking accept: "))?;
                Ok(QmpServer {
                    listener: Some(Listener::Tcp(listener)),
                    address: format!("tcp:{local}"),
                    socket_file: None,
                    shared: Arc::default(),
                })
            }
        }
    }

    /// The address listened on, as `unix:PATH` or `tcp:HOST:PORT` (the real port when 0 was
    /// asked for).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Accept clients on a background thread; their commands go to `inputs`.
    pub fn start(&mut self, inputs: Sender<Input>) {
        let Some(listener) = self.listener.take() else {
            // Already started: the accept thread owns the listener.
            return;
        };
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("qmp-accept".into())
            .spawn(move || accept_loop(listener, shared, inputs));
        if let Err(e) = spawned {
            note!(
                "rewind: cannot start the QMP monitor on {}: {e}",
                self.address
            );
        }
    }

    /// Send an event to every client that finished capabilities negotiation.
    pub fn broadcast(&self, event: &MachineEvent) {
        let text = event_message(event, SystemTime::now()).to_string();
        let clients: Vec<Arc<Client>> = lock(&self.shared.clients).clone();
        for client in clients {
            let mut out = lock(&client.out);
            if !out.negotiated || out.closed {
                continue;
            }
            if out.in_flight {
                out.deferred.push(text.clone());
            } else {
                // A client that cannot take it is closed; its thread then removes it.
                out.send(&text);
            }
        }
    }
}

impl Drop for QmpServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Let clients whose last command was just answered (`quit`) write their answer.
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while Instant::now() < deadline
            && lock(&self.shared.clients)
                .iter()
                .any(|c| lock(&c.out).in_flight)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        for client in lock(&self.shared.clients).iter() {
            lock(&client.out).close();
        }
        if let Some(path) = &self.socket_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// State shared by the server, its accept thread and its client threads.
#[derive(Default)]
struct Shared {
    clients: Mutex<Vec<Arc<Client>>>,
    stopping: AtomicBool,
    next_id: AtomicU64,
}

/// One connected client, as seen by the writers.
struct Client {
    id: u64,
    out: Mutex<Outbox>,
}

/// The writing side of a client connection.
struct Outbox {
    stream: Stream,
    /// Events go only to clients past `qmp_capabilities`.
    negotiated: bool,
    /// The client waits for an answer from the execution thread: events wait for it.
    in_flight: bool,
    /// Events held back while `in_flight`.
    deferred: Vec<String>,
    /// A write failed or the server closed it.
    closed: bool,
}

impl Outbox {
    /// Write one message (QEMU ends each with `\r\n`). False, and the connection closed, if the
    /// client cannot take it.
    fn send(&mut self, text: &str) -> bool {
        if self.closed {
            return false;
        }
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let ok = self
            .stream
            .write_all(&bytes)
            .and_then(|()| self.stream.flush())
            .is_ok();
        if !ok {
            self.close();
        }
        ok
    }

    /// Write an answer, then the events held back while it was awaited.
    fn answer(&mut self, text: &str) -> bool {
        self.in_flight = false;
        let mut ok = self.send(text);
        for event in std::mem::take(&mut self.deferred) {
            ok = ok && self.send(&event);
        }
        ok
    }

    /// End the connection (the client's reader then sees its end too).
    fn close(&mut self) {
        self.closed = true;
        self.in_flight = false;
        self.deferred.clear();
        self.stream.shutdown();
    }
}

/// Lock a mutex, even one a panicking thread left poisoned (the data stay consistent: every
/// critical section here only writes whole messages or flags).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A listening socket of either kind.
enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                // Small request/answer messages: do not wait to fill segments.
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
        }
    }
}

/// A client connection of either kind.
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
        }
    }

    /// Blocking reads, and writes that give up after [`WRITE_TIMEOUT`].
    fn configure(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => {
                s.set_nonblocking(false)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))
            }
            Stream::Tcp(s) => {
                s.set_nonblocking(false)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))
            }
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// Accept clients until the server is dropped.
fn accept_loop(listener: Listener, shared: Arc<Shared>, inputs: Sender<Input>) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok(stream) => {
                if let Err(e) = add_client(stream, &shared, &inputs) {
                    tracing::warn!("QMP client not served: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    // E.g. out of file descriptors: try again later rather than spin.
                    tracing::warn!("QMP accept: {e}");
                }
                std::thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// Greet a new client and start its thread.
fn add_client(stream: Stream, shared: &Arc<Shared>, inputs: &Sender<Input>) -> io::Result<()> {
    stream.configure()?;
    let writer = stream.try_clone()?;
    let client = Arc::new(Client {
        id: shared.next_id.fetch_add(1, Ordering::SeqCst),
        out: Mutex::new(Outbox {
            stream: writer,
            negotiated: false,
            in_flight: false,
            deferred: Vec::new(),
            closed: false,
        }),
    });
    if !lock(&client.out).send(&greeting().to_string()) {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the client went away before the greeting",
        ));
    }
    lock(&shared.clients).push(Arc::clone(&client));
    let (thread_shared, thread_inputs) = (Arc::clone(shared), inputs.clone());
    let thread_client = Arc::clone(&client);
    let spawned = std::thread::Builder::new()
        .name("qmp-client".into())
        .spawn(move || serve_client(stream, thread_client, thread_shared, thread_inputs));
    if let Err(e) = spawned {
        lock(&client.out).close();
        remove_client(shared, client.id);
        return Err(e);
    }
    Ok(())
}

fn remove_client(shared: &Shared, id: u64) {
    lock(&shared.clients).retain(|c| c.id != id);
}

/// Read, frame and answer one client's messages until it goes away.
fn serve_client(
    mut reader: Stream,
    client: Arc<Client>,
    shared: Arc<Shared>,
    inputs: Sender<Input>,
) {
    let mut framer = Framer::default();
    let mut negotiated = false;
    let mut buf = [0u8; 4096];
    'read: loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for frame in framer.push(&buf[..n]) {
            let ok = match client_step(negotiated, &frame) {
                Step::Reply(reply) => lock(&client.out).send(&reply.to_string()),
                Step::Negotiated(reply) => {
                    negotiated = true;
                    // The answer goes out before any event can.
                    let mut out = lock(&client.out);
                    let ok = out.send(&reply.to_string());
                    out.negotiated = true;
                    ok
                }
                Step::Forward(envelope) => forward(&client, &inputs, envelope),
            };
            if !ok {
                break 'read;
            }
        }
    }
    lock(&client.out).close();
    remove_client(&shared, client.id);
}

/// Have the execution thread carry out a command and write its answer.
fn forward(client: &Client, inputs: &Sender<Input>, envelope: Envelope) -> bool {
    let (tx, rx) = channel();
    lock(&client.out).in_flight = true;
    let request = QmpRequest {
        command: envelope.command,
        arguments: envelope.arguments,
        reply: tx,
    };
    let gone = || {
        Err(QmpError::generic(
            "the machine is no longer being served (it quit)",
        ))
    };
    let result = if inputs.send(Input::Qmp(request)).is_err() {
        gone()
    } else {
        rx.recv().unwrap_or_else(|_| gone())
    };
    let reply = response(result, envelope.id);
    lock(&client.out).answer(&reply.to_string())
}

/// The greeting sent to every new client.
fn greeting() -> Value {
    json!({
        "QMP": {
            "version": version_info(),
            "capabilities": [],
        }
    })
}

/// QEMU's `VersionInfo` (greeting and `query-version`).
fn version_info() -> Value {
    let (major, minor, micro) = QEMU_VERSION;
    json!({
        "qemu": {"micro": micro, "minor": minor, "major": major},
        "package": format!("rewind {}", env!("CARGO_PKG_VERSION")),
    })
}

/// The answer message to a command.
fn response(result: Result<Value, QmpError>, id: Option<Value>) -> Value {
    let mut msg = Map::new();
    match result {
        Ok(value) => {
            msg.insert("return".into(), value);
        }
        Err(e) => {
            msg.insert("error".into(), json!({"class": e.class, "desc": e.desc}));
        }
    }
    if let Some(id) = id {
        msg.insert("id".into(), id);
    }
    Value::Object(msg)
}

/// QEMU's event timestamp.
fn timestamp(now: SystemTime) -> Value {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    json!({"seconds": since.as_secs(), "microseconds": since.subsec_micros()})
}

/// The event message for `event` (QEMU's `STOP`, `RESUME` and `SHUTDOWN`).
fn event_message(event: &MachineEvent, now: SystemTime) -> Value {
    let (name, data) = match event {
        // QEMU's STOP carries no data; clients ask `x-rewind-state` for the reason.
        MachineEvent::Stop(_) => ("STOP", json!({})),
        MachineEvent::Resume => ("RESUME", json!({})),
        MachineEvent::Shutdown { guest, reason } => {
            ("SHUTDOWN", json!({"guest": guest, "reason": reason}))
        }
        MachineEvent::Reset { guest, reason } => {
            ("RESET", json!({"guest": guest, "reason": reason}))
        }
        MachineEvent::Powerdown => ("POWERDOWN", json!({})),
    };
    json!({"event": name, "data": data, "timestamp": timestamp(now)})
}

/// A stop reason for a person (`x-rewind-state`'s `last-stop`).
pub fn describe_stop(reason: &StopReason) -> String {
    match reason {
        StopReason::Requested => "stop requested".into(),
        StopReason::Breakpoint { pc, .. } => format!("breakpoint at {pc:#x}"),
        StopReason::Watchpoint {
            watch,
            access,
            addr,
        } => format!(
            "watchpoint on {:#x}+{}: {} at {addr:#x}",
            watch.addr,
            watch.len,
            match access {
                rewind_cpu::WatchKind::Read => "read",
                rewind_cpu::WatchKind::Write => "write",
                rewind_cpu::WatchKind::Access => "access",
            }
        ),
        StopReason::Step => "single step".into(),
        StopReason::ReplayBreak { icount } => format!("replay break at instruction {icount}"),
        StopReason::SeekDone { icount } => format!("seek reached instruction {icount}"),
        StopReason::HistoryStart => "start of the recorded history (instruction 0)".into(),
        StopReason::Ended(outcome) => format!("end of execution: {outcome}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses.

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

/// Parse `unix:PATH` or `tcp:HOST:PORT`, with QEMU's `,server`, `,server=on`, `,wait=off` and
/// `,nowait` options (rewind always listens and never waits for a client). A comma in a path is
/// written `,,` as in QEMU.
fn parse_address(spec: &str) -> Result<Address, String> {
    let mut parts = split_options(spec).into_iter();
    let main = parts.next().unwrap_or_default();
    for option in parts {
        match option.as_str() {
            "server" | "server=on" | "wait=off" | "nowait" => {}
            "wait=on" | "wait" => {
                return Err(format!(
                    "QMP address '{spec}': '{option}' is not supported (rewind starts without \
                     waiting for a monitor client; use -S to start paused)"
                ))
            }
            _ => {
                return Err(format!(
                    "QMP address '{spec}': unknown option '{option}' (accepted: server, \
                     wait=off)"
                ))
            }
        }
    }
    if let Some(path) = main.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!(
                "QMP address '{spec}': the unix socket path is empty"
            ));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = main.strip_prefix("tcp:") {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(format!(
                "QMP address '{spec}': expected tcp:HOST:PORT (e.g. tcp:127.0.0.1:4444)"
            ));
        };
        let port = port.parse::<u16>().map_err(|_| {
            format!("QMP address '{spec}': '{port}' is not a port number (0 to 65535)")
        })?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        // Only the local machine may drive the emulator unless the user names an address.
        let host = if host.is_empty() { "127.0.0.1" } else { host };
        return Ok(Address::Tcp {
            host: host.to_string(),
            port,
        });
    }
    Err(format!(
        "QMP address '{spec}' must be unix:PATH or tcp:HOST:PORT (optionally followed by \
         ,server,wait=off)"
    ))
}

/// Split at single commas; `,,` stands for a comma.
fn split_options(spec: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ',' {
            current.push(c);
        } else if chars.next_if_eq(&',').is_some() {
            current.push(',');
        } else {
            parts.push(std::mem::take(&mut current));
        }
    }
    parts.push(current);
    parts
}

/// Make room for a unix socket at `path`: a socket left by an earlier run is removed, but not
/// one a live server still listens on, and never anything that is not a socket.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another program is listening on {}", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

// ---------------------------------------------------------------------------------------------
// Framing and the message envelope.

/// One unit cut from a client's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    /// The bytes of one top-level JSON value (or of a stray token, which then fails to parse).
    Json(Vec<u8>),
    /// Input that cannot be a message (too large, too deep).
    Error(String),
}

/// Cuts a byte stream into top-level JSON values: objects and arrays by bracket depth outside
/// strings, anything else up to the next whitespace or bracket. Values may be split across reads
/// or share one.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
    depth: usize,
    in_string: bool,
    escape: bool,
    /// Collecting a stray token at top level.
    stray: bool,
    /// After an oversized or too deep message: drop everything up to the next newline.
    discard_line: bool,
}

impl Framer {
    fn push(&mut self, data: &[u8]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for &b in data {
            self.byte(b, &mut frames);
        }
        frames
    }

    fn byte(&mut self, b: u8, frames: &mut Vec<Frame>) {
        if self.discard_line {
            self.discard_line = b != b'\n';
            return;
        }
        if self.stray {
            if !(b.is_ascii_whitespace() || b == b'{' || b == b'[') {
                self.buf.push(b);
                self.check_size(frames);
                return;
            }
            self.stray = false;
            frames.push(Frame::Json(std::mem::take(&mut self.buf)));
        }
        if self.depth == 0 {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => {}
                b'{' | b'[' => {
                    self.buf.push(b);
                    self.depth = 1;
                }
                _ => {
                    self.buf.push(b);
                    self.stray = true;
                }
            }
            return;
        }
        self.buf.push(b);
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
            }
        } else {
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > MAX_NESTING {
                        self.reject(
                            frames,
                            format!("JSON parse error, nesting deeper than {MAX_NESTING} levels"),
                        );
                        return;
                    }
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        frames.push(Frame::Json(std::mem::take(&mut self.buf)));
                        return;
                    }
                }
                _ => {}
            }
        }
        self.check_size(frames);
    }

    fn check_size(&mut self, frames: &mut Vec<Frame>) {
        if self.buf.len() > MAX_MESSAGE {
            self.reject(
                frames,
                format!("JSON parse error, message longer than {MAX_MESSAGE} bytes"),
            );
        }
    }

    /// Give up on the message being collected.
    fn reject(&mut self, frames: &mut Vec<Frame>, desc: String) {
        *self = Framer {
            discard_line: true,
            ..Framer::default()
        };
        frames.push(Frame::Error(desc));
    }
}

/// A well-formed command message.
#[derive(Debug, Clone, PartialEq)]
struct Envelope {
    command: String,
    arguments: Value,
    id: Option<Value>,
}

/// Check a message's envelope as QEMU does (`execute`, `arguments`, `id`, nothing else). An
/// error comes with the message's `id`, if it had one.
fn parse_envelope(frame: &[u8]) -> Result<Envelope, (QmpError, Option<Value>)> {
    let value: Value = serde_json::from_slice(frame)
        .map_err(|e| (QmpError::generic(format!("JSON parse error, {e}")), None))?;
    let Value::Object(mut obj) = value else {
        return Err((QmpError::generic("QMP input must be a JSON object"), None));
    };
    let id = obj.remove("id");
    let fail = |desc: String| Err((QmpError::generic(desc), id.clone()));
    if let Some(key) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "execute" | "arguments"))
    {
        return fail(format!("QMP input member '{key}' is unexpected"));
    }
    let arguments = match obj.remove("arguments") {
        None => Value::Object(Map::new()),
        Some(args @ Value::Object(_)) => args,
        Some(_) => return fail("QMP input member 'arguments' must be an object".into()),
    };
    let command = match obj.remove("execute") {
        None => return fail("QMP input lacks member 'execute'".into()),
        Some(Value::String(c)) => c,
        Some(_) => return fail("QMP input member 'execute' must be a string".into()),
    };
    Ok(Envelope {
        command,
        arguments,
        id,
    })
}

/// What a client thread does with a frame.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// Answer it directly.
    Reply(Value),
    /// Answer it directly; the client is now past capabilities negotiation.
    Negotiated(Value),
    /// Have the execution thread carry it out.
    Forward(Envelope),
}

/// Handle a frame in the client thread: errors in the message itself and capabilities
/// negotiation (per client) are answered here, commands are forwarded.
fn client_step(negotiated: bool, frame: &Frame) -> Step {
    let bytes = match frame {
        Frame::Error(desc) => return Step::Reply(response(Err(QmpError::generic(desc)), None)),
        Frame::Json(bytes) => bytes,
    };
    let envelope = match parse_envelope(bytes) {
        Ok(envelope) => envelope,
        Err((e, id)) => return Step::Reply(response(Err(e), id)),
    };
    if envelope.command == "qmp_capabilities" {
        let result = negotiate(negotiated, &envelope.arguments);
        let ok = result.is_ok();
        let reply = response(result, envelope.id);
        return if ok {
            Step::Negotiated(reply)
        } else {
            Step::Reply(reply)
        };
    }
    if !negotiated {
        return Step::Reply(response(
            Err(QmpError::command_not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            )),
            envelope.id,
        ));
    }
    Step::Forward(envelope)
}

/// `qmp_capabilities`: no capability is offered, so none can be enabled.
fn negotiate(negotiated: bool, arguments: &Value) -> Result<Value, QmpError> {
    if negotiated {
        return Err(already_negotiated());
    }
    check_arguments(QMP_CAPABILITIES_PARAMS, arguments)?;
    if let Some(first) = arguments
        .get("enable")
        .and_then(Value::as_array)
        .and_then(|caps| caps.first())
    {
        let name = first.as_str().unwrap_or_default();
        return Err(QmpError::generic(format!(
            "Capability '{name}' not available"
        )));
    }
    Ok(json!({}))
}

fn already_negotiated() -> QmpError {
    QmpError::command_not_found("Capabilities negotiation is already complete, command ignored")
}

// ---------------------------------------------------------------------------------------------
// Arguments.

/// A parameter's JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    /// A non-negative integer (instruction counts).
    Uint,
    /// A string.
    Str,
    /// An array of strings.
    StrList,
    /// `true` or `false`.
    Bool,
    /// An integer, negative or not.
    Int,
    /// An array (its elements are checked by the command).
    Array,
}

/// One parameter of a command.
#[derive(Debug, Clone, Copy)]
struct Param {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const ICOUNT: &[Param] = &[Param {
    name: "icount",
    ty: Ty::Uint,
    required: true,
}];

const PATH: &[Param] = &[Param {
    name: "path",
    ty: Ty::Str,
    required: true,
}];

/// A file to write: `path`, and `force` to replace an existing regular file.
const PATH_FORCE: &[Param] = &[
    Param {
        name: "path",
        ty: Ty::Str,
        required: true,
    },
    Param {
        name: "force",
        ty: Ty::Bool,
        required: false,
    },
];

const INPUT_SEND_EVENT_PARAMS: &[Param] = &[
    Param {
        name: "device",
        ty: Ty::Str,
        required: false,
    },
    Param {
        name: "head",
        ty: Ty::Int,
        required: false,
    },
    Param {
        name: "events",
        ty: Ty::Array,
        required: true,
    },
];

const SEND_KEY_PARAMS: &[Param] = &[
    Param {
        name: "keys",
        ty: Ty::Array,
        required: true,
    },
    Param {
        name: "hold-time",
        ty: Ty::Int,
        required: false,
    },
];

const HMP_PARAMS: &[Param] = &[
    Param {
        name: "command-line",
        ty: Ty::Str,
        required: true,
    },
    Param {
        name: "cpu-index",
        ty: Ty::Uint,
        required: false,
    },
];

const QMP_CAPABILITIES_PARAMS: &[Param] = &[Param {
    name: "enable",
    ty: Ty::StrList,
    required: false,
}];

/// Check `arguments` against `params` with QEMU's messages.
fn check_arguments(params: &[Param], arguments: &Value) -> Result<(), QmpError> {
    let empty = Map::new();
    let args = match arguments {
        Value::Null => &empty,
        Value::Object(map) => map,
        _ => {
            return Err(QmpError::generic(
                "QMP input member 'arguments' must be an object",
            ))
        }
    };
    for p in params {
        let Some(value) = args.get(p.name) else {
            if p.required {
                return Err(QmpError::generic(format!(
                    "Parameter '{}' is missing",
                    p.name
                )));
            }
            continue;
        };
        let wrong = |name: String, expected: &str| {
            Err(QmpError::generic(format!(
                "Invalid parameter type for '{name}', expected: {expected}"
            )))
        };
        match p.ty {
            Ty::Uint => {
                if value.as_u64().is_none() {
                    if value.as_i64().is_some() {
                        return Err(QmpError::generic(format!(
                            "Parameter '{}' must not be negative",
                            p.name
                        )));
                    }
                    return wrong(p.name.to_string(), "integer");
                }
            }
            Ty::Str => {
                if !value.is_string() {
                    return wrong(p.name.to_string(), "string");
                }
            }
            Ty::Bool => {
                if !value.is_boolean() {
                    return wrong(p.name.to_string(), "boolean");
                }
            }
            Ty::Int => {
                if value.as_i64().is_none() {
                    return wrong(p.name.to_string(), "integer");
                }
            }
            Ty::Array => {
                if !value.is_array() {
                    return wrong(p.name.to_string(), "array");
                }
            }
            Ty::StrList => {
                let Some(items) = value.as_array() else {
                    return wrong(p.name.to_string(), "array");
                };
                if let Some(i) = items.iter().position(|v| !v.is_string()) {
                    return wrong(format!("{}[{i}]", p.name), "string");
                }
            }
        }
    }
    if let Some(key) = args.keys().find(|k| params.iter().all(|p| p.name != *k)) {
        return Err(QmpError::generic(format!(
            "Parameter '{key}' is unexpected"
        )));
    }
    Ok(())
}

/// An integer argument (already checked by [`check_arguments`]).
fn arg_u64(arguments: &Value, name: &str) -> Result<u64, QmpError> {
    arguments.get(name).and_then(Value::as_u64).ok_or_else(|| {
        QmpError::generic(format!(
            "Invalid parameter type for '{name}', expected: integer"
        ))
    })
}

/// A string argument (already checked by [`check_arguments`]).
fn arg_str<'a>(arguments: &'a Value, name: &str) -> Result<&'a str, QmpError> {
    arguments.get(name).and_then(Value::as_str).ok_or_else(|| {
        QmpError::generic(format!(
            "Invalid parameter type for '{name}', expected: string"
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Commands.

type Handler = fn(&mut Controller, &Value) -> Result<Value, QmpError>;

/// A command the execution thread carries out.
struct Command {
    name: &'static str,
    params: &'static [Param],
    run: Handler,
}

/// Every command (also the answer to `query-commands`).
const COMMANDS: &[Command] = &[
    Command {
        name: "qmp_capabilities",
        params: QMP_CAPABILITIES_PARAMS,
        // Negotiation is per client and done in its thread; here it is always complete.
        run: |_, _| Err(already_negotiated()),
    },
    Command {
        name: "query-commands",
        params: &[],
        run: |_, _| {
            Ok(Value::Array(
                COMMANDS.iter().map(|c| json!({"name": c.name})).collect(),
            ))
        },
    },
    Command {
        name: "query-version",
        params: &[],
        run: |_, _| Ok(version_info()),
    },
    Command {
        name: "query-status",
        params: &[],
        run: |ctl, _| {
            Ok(json!({
                "running": ctl.running().is_some(),
                "singlestep": false,
                "status": ctl.status(),
            }))
        },
    },
    Command {
        name: "query-cpus-fast",
        params: &[],
        run: |ctl, _| Ok(query_cpus_fast(ctl)),
    },
    Command {
        name: "stop",
        params: &[],
        run: |ctl, _| {
            ctl.pause(StopReason::Requested);
            Ok(json!({}))
        },
    },
    Command {
        name: "cont",
        params: &[],
        run: cont,
    },
    Command {
        name: "quit",
        params: &[],
        run: |ctl, _| {
            ctl.request_quit();
            Ok(json!({}))
        },
    },
    Command {
        name: "query-replay",
        params: &[],
        run: query_replay,
    },
    Command {
        name: "replay-break",
        params: ICOUNT,
        run: |ctl, args| {
            let icount = arg_u64(args, "icount")?;
            require_replay(ctl, "replay-break")?;
            ctl.session_mut().set_replay_break(Some(icount))?;
            Ok(json!({}))
        },
    },
    Command {
        name: "replay-delete-break",
        params: &[],
        run: |ctl, _| {
            require_replay(ctl, "replay-delete-break")?;
            ctl.session_mut().set_replay_break(None)?;
            Ok(json!({}))
        },
    },
    Command {
        name: "replay-seek",
        params: ICOUNT,
        run: |ctl, args| {
            let icount = arg_u64(args, "icount")?;
            ctl.seek(icount)?;
            Ok(json!({}))
        },
    },
    Command {
        name: "system_reset",
        params: &[],
        run: |ctl, _| {
            ctl.session_mut().request_reset()?;
            ctl.notify(MachineEvent::Reset {
                guest: false,
                reason: "host-qmp-system-reset",
            });
            Ok(json!({}))
        },
    },
    Command {
        name: "system_powerdown",
        // QEMU's RISC-V virt board has no power button: QEMU answers and emits POWERDOWN,
        // and the guest sees nothing. So does rewind.
        params: &[],
        run: |ctl, _| {
            ctl.notify(MachineEvent::Powerdown);
            Ok(json!({}))
        },
    },
    Command {
        name: "human-monitor-command",
        params: HMP_PARAMS,
        run: |ctl, args| {
            let line = arg_str(args, "command-line")?;
            crate::hmp::execute(ctl, line).map(Value::String)
        },
    },
    Command {
        name: "x-rewind-state",
        params: &[],
        run: rewind_state,
    },
    Command {
        name: "x-rewind-snapshot",
        params: PATH_FORCE,
        run: |ctl, args| {
            let path = nonempty_path(args)?;
            // A client may not replace a file (or reach a device) unless it says so.
            let force = args.get("force").and_then(Value::as_bool).unwrap_or(false);
            ctl.session_mut().save_snapshot(path, force)?;
            Ok(json!({"icount": ctl.session().icount()}))
        },
    },
    Command {
        name: "x-rewind-load-snapshot",
        params: PATH,
        run: |ctl, args| {
            let path = nonempty_path(args)?;
            require_replay(ctl, "x-rewind-load-snapshot")?;
            ctl.session_mut().load_snapshot(path)?;
            Ok(json!({"icount": ctl.session().icount()}))
        },
    },
    Command {
        name: "input-send-event",
        params: INPUT_SEND_EVENT_PARAMS,
        run: input::input_send_event,
    },
    Command {
        name: "send-key",
        params: SEND_KEY_PARAMS,
        run: input::send_key,
    },
];

/// Fuzzing entry point (`crates/fuzz`): `bytes` as received from one client, framed, parsed
/// and answered as the server does, every command carried out on `ctl` except the file
/// commands (their path checks have tests of their own; a fuzzer must not write files).
/// Returns the answers, as they would be sent.
#[doc(hidden)]
pub fn fuzz_client_bytes(ctl: &mut Controller, bytes: &[u8]) -> Vec<String> {
    let mut framer = Framer::default();
    let mut negotiated = false;
    let mut answers = Vec::new();
    for frame in framer.push(bytes) {
        let reply = match client_step(negotiated, &frame) {
            Step::Reply(reply) => reply,
            Step::Negotiated(reply) => {
                negotiated = true;
                reply
            }
            Step::Forward(envelope) => {
                let result = if envelope.command.contains("snapshot") {
                    Err(QmpError::generic("file commands are not fuzzed"))
                } else {
                    execute(ctl, &envelope.command, &envelope.arguments)
                };
                response(result, envelope.id)
            }
        };
        answers.push(reply.to_string());
    }
    answers
}

/// Carry out one command on the execution thread.
pub fn execute(
    ctl: &mut Controller,
    command: &str,
    arguments: &serde_json::Value,
) -> Result<serde_json::Value, QmpError> {
    let Some(cmd) = COMMANDS.iter().find(|c| c.name == command) else {
        return Err(QmpError::command_not_found(format!(
            "The command {command} has not been found"
        )));
    };
    check_arguments(cmd.params, arguments)?;
    (cmd.run)(ctl, arguments)
}

/// The names of the commands [`execute`] knows.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name)
}

fn cont(ctl: &mut Controller, _: &Value) -> Result<Value, QmpError> {
    if let Some(outcome) = ctl.session().ended() {
        let hint = if ctl.session().mode() == rewind_replay::Mode::Replay {
            "the replay is at the end of the recording; use replay-seek to go back first"
        } else {
            "there is nothing more to run"
        };
        return Err(QmpError::generic(format!(
            "cannot continue: the guest's execution has ended ({outcome}); {hint}"
        )));
    }
    ctl.resume(Action::Continue)?;
    Ok(json!({}))
}

fn query_replay(ctl: &mut Controller, _: &Value) -> Result<Value, QmpError> {
    let session = ctl.session();
    let mode = match session.mode() {
        rewind_replay::Mode::Run => "none",
        rewind_replay::Mode::Record => "record",
        rewind_replay::Mode::Replay => "play",
    };
    let mut info = Map::new();
    info.insert("mode".into(), json!(mode));
    if let (false, Some(path)) = (mode == "none", session.trace_path()) {
        info.insert("filename".into(), json!(path.display().to_string()));
    }
    info.insert("icount".into(), json!(session.icount()));
    Ok(Value::Object(info))
}

/// The host thread id `query-cpus-fast` gives every hart: they all run on the execution
/// thread, whose id is stable for the session; the process id stands for it (QEMU's `-icount`
/// and `thread=single` TCG also run all CPUs on one thread and give them one id).
pub fn cpu_thread_id() -> u32 {
    std::process::id()
}

/// `query-cpus-fast` as QEMU 10 answers it for `-M virt -smp N`: one entry per hart.
fn query_cpus_fast(ctl: &Controller) -> Value {
    let harts = ctl.session().machine().harts().len();
    let tid = cpu_thread_id();
    Value::Array(
        (0..harts)
            .map(|i| {
                json!({
                    "thread-id": tid,
                    "props": {"core-id": i},
                    "qom-path": format!("/machine/soc0/harts[{i}]"),
                    "cpu-index": i,
                    "target": "riscv64",
                })
            })
            .collect(),
    )
}

fn rewind_state(ctl: &mut Controller, _: &Value) -> Result<Value, QmpError> {
    let session = ctl.session();
    let machine = session.machine();
    let hart = machine.hart();
    let privilege = match hart.prv {
        rewind_cpu::Priv::M => "M",
        rewind_cpu::Priv::S => "S",
        rewind_cpu::Priv::U => "U",
    };
    Ok(json!({
        "icount": session.icount(),
        "pc": hart.pc,
        "privilege": privilege,
        "state-hash": format!("{:016x}", machine.state_hash()),
        "status": ctl.status(),
        "mode": mode_name(session.mode()),
        "last-stop": ctl.last_stop().map(describe_stop),
        "last-error": ctl.last_error(),
        "ended": session.ended().map(|o| o.to_string()),
        "snapshots": session.seeker().snapshot_icounts().len(),
        "snapshot-memory": session.seeker().snapshot_memory(),
        "replay-break": session.replay_break(),
    }))
}

/// Replay-only commands fail clearly in other modes (QEMU: "replay must be enabled").
fn require_replay(ctl: &Controller, what: &'static str) -> Result<(), QmpError> {
    let mode = ctl.session().mode();
    if mode == rewind_replay::Mode::Replay {
        Ok(())
    } else {
        Err(SessionError::NotReplaying {
            what,
            mode: mode_name(mode),
        }
        .into())
    }
}

fn nonempty_path(arguments: &Value) -> Result<&Path, QmpError> {
    let path = arg_str(arguments, "path")?;
    if path.is_empty() {
        return Err(QmpError::generic("Parameter 'path' must not be empty"));
    }
    Ok(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut f = Framer::default();
        chunks.iter().flat_map(|c| f.push(c)).collect()
    }

    fn json_frame(s: &str) -> Frame {
        Frame::Json(s.as_bytes().to_vec())
    }

    #[test]
    fn framer_cuts_messages_sharing_a_read_or_split_across_reads() {
        let got = frames(&[
            b"{\"execute\":\"a\"}{\"execute\":\"b\"}\r\n  {\"exe",
            b"cute\":",
            b"\"c\", \"arguments\": {\"x\": [1, {\"y\": 2}]}}\n",
        ]);
        assert_eq!(
            got,
            vec![
                json_frame("{\"execute\":\"a\"}"),
                json_frame("{\"execute\":\"b\"}"),
                json_frame("{\"execute\":\"c\", \"arguments\": {\"x\": [1, {\"y\": 2}]}}"),
            ]
        );
    }

    #[test]
    fn framer_ignores_brackets_and_escaped_quotes_inside_strings() {
        let msg = r#"{"execute":"x","id":"a}\"{[b\\"}"#;
        assert_eq!(
            frames(&[msg.as_bytes(), b"{}"]),
            vec![json_frame(msg), json_frame("{}")]
        );
        // Split inside the escape.
        let (a, b) = msg.split_at(msg.find('\\').unwrap() + 1);
        assert_eq!(frames(&[a.as_bytes(), b.as_bytes()]), vec![json_frame(msg)]);
    }

    #[test]
    fn framer_turns_stray_tokens_into_frames_that_fail_to_parse() {
        let got = frames(&[b"hello 42\n{\"execute\":\"a\"}"]);
        assert_eq!(
            got,
            vec![
                json_frame("hello"),
                json_frame("42"),
                json_frame("{\"execute\":\"a\"}")
            ]
        );
        // A stray token directly followed by a message.
        assert_eq!(frames(&[b"x{}"]), vec![json_frame("x"), json_frame("{}")]);
        // A closing bracket with nothing open is a stray token too.
        assert_eq!(frames(&[b"} {}"]), vec![json_frame("}"), json_frame("{}")]);
    }

    #[test]
    fn framer_rejects_oversized_and_too_deep_messages_then_recovers_at_the_next_line() {
        let mut big = b"{\"execute\":\"".to_vec();
        big.resize(MAX_MESSAGE + 10, b'a');
        big.extend_from_slice(b"\"}\n{\"execute\":\"ok\"}");
        let got = frames(&[&big]);
        assert_eq!(got.len(), 2, "{:?}", &got[..got.len().min(3)]);
        assert!(matches!(&got[0], Frame::Error(d) if d.contains("longer than")));
        assert_eq!(got[1], json_frame("{\"execute\":\"ok\"}"));

        let mut deep = vec![b'['; MAX_NESTING + 1];
        deep.extend_from_slice(b"\n{}");
        let got = frames(&[&deep]);
        assert!(
            matches!(&got[0], Frame::Error(d) if d.contains("nesting")),
            "{got:?}"
        );
        assert_eq!(got[1..], [json_frame("{}")]);
    }

    fn step(negotiated: bool, msg: &str) -> Step {
        client_step(negotiated, &json_frame(msg))
    }

    fn error_of(step: &Step) -> (String, String, Option<Value>) {
        let Step::Reply(v) = step else {
            panic!("expected an error reply, got {step:?}")
        };
        (
            v["error"]["class"].as_str().unwrap().to_string(),
            v["error"]["desc"].as_str().unwrap().to_string(),
            v.get("id").cloned(),
        )
    }

    #[test]
    fn envelope_errors_match_qemu() {
        let (class, desc, id) = error_of(&step(true, "{\"execute\": }"));
        assert_eq!(class, "GenericError");
        assert!(desc.starts_with("JSON parse error, "), "{desc}");
        assert_eq!(id, None);

        let (class, desc, id) = error_of(&step(true, r#"{"id": 5}"#));
        assert_eq!(
            (class.as_str(), desc.as_str(), id),
            (
                "GenericError",
                "QMP input lacks member 'execute'",
                Some(json!(5))
            )
        );
        let (_, desc, _) = error_of(&step(true, r#"{"execute": 3}"#));
        assert_eq!(desc, "QMP input member 'execute' must be a string");
        let (_, desc, id) = error_of(&step(
            true,
            r#"{"execute": "stop", "arguments": [], "id": [1]}"#,
        ));
        assert_eq!(desc, "QMP input member 'arguments' must be an object");
        assert_eq!(id, Some(json!([1])));
        let (_, desc, _) = error_of(&step(true, r#"{"execute": "stop", "control": {}}"#));
        assert_eq!(desc, "QMP input member 'control' is unexpected");
        let (_, desc, _) = error_of(&step(true, r#"[1, 2]"#));
        assert_eq!(desc, "QMP input must be a JSON object");
        let (_, desc, _) = error_of(&step(true, "hello"));
        assert!(desc.starts_with("JSON parse error, "), "{desc}");
        let (_, desc, _) = error_of(&client_step(true, &Frame::Error("too big".into())));
        assert_eq!(desc, "too big");
    }

    #[test]
    fn negotiation_is_required_once_and_only_once() {
        let (class, desc, id) = error_of(&step(false, r#"{"execute": "query-status", "id": "q"}"#));
        assert_eq!(class, "CommandNotFound");
        assert_eq!(
            desc,
            "Expecting capabilities negotiation with 'qmp_capabilities'"
        );
        assert_eq!(id, Some(json!("q")));
        // Unknown commands get the same answer before negotiation, as in QEMU.
        let (_, desc, _) = error_of(&step(false, r#"{"execute": "nope"}"#));
        assert_eq!(
            desc,
            "Expecting capabilities negotiation with 'qmp_capabilities'"
        );

        assert_eq!(
            step(false, r#"{"execute": "qmp_capabilities", "id": 1}"#),
            Step::Negotiated(json!({"return": {}, "id": 1}))
        );
        // qemu.qmp sends an empty `arguments`.
        assert_eq!(
            step(false, r#"{"execute": "qmp_capabilities", "arguments": {}}"#),
            Step::Negotiated(json!({"return": {}}))
        );
        let (_, desc, _) = error_of(&step(
            false,
            r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#,
        ));
        assert_eq!(desc, "Capability 'oob' not available");
        let (_, desc, _) = error_of(&step(
            false,
            r#"{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}"#,
        ));
        assert_eq!(
            desc,
            "Invalid parameter type for 'enable[0]', expected: string"
        );

        let (class, desc, _) = error_of(&step(true, r#"{"execute": "qmp_capabilities"}"#));
        assert_eq!(class, "CommandNotFound");
        assert_eq!(
            desc,
            "Capabilities negotiation is already complete, command ignored"
        );

        assert_eq!(
            step(
                true,
                r#"{"execute": "replay-seek", "arguments": {"icount": 7}, "id": "s"}"#
            ),
            Step::Forward(Envelope {
                command: "replay-seek".into(),
                arguments: json!({"icount": 7}),
                id: Some(json!("s")),
            })
        );
        // Missing arguments are forwarded as an empty object.
        assert_eq!(
            step(true, r#"{"execute": "stop"}"#),
            Step::Forward(Envelope {
                command: "stop".into(),
                arguments: json!({}),
                id: None,
            })
        );
    }

    #[test]
    fn arguments_are_checked_with_qemu_messages() {
        let err = |args: Value| check_arguments(ICOUNT, &args).unwrap_err().desc;
        assert_eq!(err(json!({})), "Parameter 'icount' is missing");
        assert_eq!(err(Value::Null), "Parameter 'icount' is missing");
        assert_eq!(
            err(json!({"icount": "5"})),
            "Invalid parameter type for 'icount', expected: integer"
        );
        assert_eq!(
            err(json!({"icount": 1.5})),
            "Invalid parameter type for 'icount', expected: integer"
        );
        assert_eq!(
            err(json!({"icount": -1})),
            "Parameter 'icount' must not be negative"
        );
        assert_eq!(
            err(json!({"icount": 1, "x": 2})),
            "Parameter 'x' is unexpected"
        );
        assert_eq!(
            err(json!([1])),
            "QMP input member 'arguments' must be an object"
        );
        assert!(check_arguments(ICOUNT, &json!({"icount": u64::MAX})).is_ok());
        assert_eq!(
            arg_u64(&json!({"icount": u64::MAX}), "icount"),
            Ok(u64::MAX)
        );

        let err = |args: Value| check_arguments(PATH, &args).unwrap_err().desc;
        assert_eq!(
            err(json!({"path": 1})),
            "Invalid parameter type for 'path', expected: string"
        );
        assert!(check_arguments(PATH, &json!({"path": "/x"})).is_ok());
        assert_eq!(
            check_arguments(&[], &json!({"a": 1})).unwrap_err().desc,
            "Parameter 'a' is unexpected"
        );
        assert!(check_arguments(&[], &json!({})).is_ok());
    }

    #[test]
    fn every_command_is_listed_once() {
        let names: Vec<_> = command_names().collect();
        for name in [
            "qmp_capabilities",
            "query-commands",
            "query-status",
            "query-cpus-fast",
            "stop",
            "cont",
            "quit",
            "query-replay",
            "replay-break",
            "replay-delete-break",
            "replay-seek",
            "x-rewind-state",
            "x-rewind-snapshot",
            "x-rewind-load-snapshot",
            "input-send-event",
            "send-key",
        ] {
            assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{name}");
        }
    }

    #[test]
    fn responses_and_events_have_qemu_shapes() {
        assert_eq!(response(Ok(json!({})), None), json!({"return": {}}));
        assert_eq!(
            response(Err(QmpError::generic("bad")), Some(json!("x"))),
            json!({"error": {"class": "GenericError", "desc": "bad"}, "id": "x"})
        );
        let g = greeting();
        assert_eq!(
            g["QMP"]["version"]["qemu"],
            json!({"micro": 0, "minor": 2, "major": 7})
        );
        assert_eq!(g["QMP"]["capabilities"], json!([]));
        assert!(g["QMP"]["version"]["package"]
            .as_str()
            .unwrap()
            .starts_with("rewind "));

        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            event_message(&MachineEvent::Stop(StopReason::Step), at),
            json!({"event": "STOP", "data": {},
                   "timestamp": {"seconds": 1_700_000_000u64, "microseconds": 123_456}})
        );
        assert_eq!(event_message(&MachineEvent::Resume, at)["event"], "RESUME");
        assert_eq!(
            event_message(
                &MachineEvent::Shutdown {
                    guest: true,
                    reason: "guest-shutdown"
                },
                at
            )["data"],
            json!({"guest": true, "reason": "guest-shutdown"})
        );
    }

    #[test]
    fn addresses_parse_as_qemu_users_type_them() {
        assert_eq!(
            parse_address("unix:/tmp/q.sock"),
            Ok(Address::Unix("/tmp/q.sock".into()))
        );
        assert_eq!(
            parse_address("unix:/tmp/q.sock,server,wait=off"),
            Ok(Address::Unix("/tmp/q.sock".into()))
        );
        assert_eq!(
            parse_address("unix:/tmp/a,,b.sock,server=on,nowait"),
            Ok(Address::Unix("/tmp/a,b.sock".into()))
        );
        let tcp = |host: &str, port| {
            Ok(Address::Tcp {
                host: host.into(),
                port,
            })
        };
        assert_eq!(
            parse_address("tcp:localhost:4444,server"),
            tcp("localhost", 4444)
        );
        assert_eq!(parse_address("tcp::4444"), tcp("127.0.0.1", 4444));
        assert_eq!(parse_address("tcp:[::1]:0"), tcp("::1", 0));
        assert_eq!(parse_address("tcp:0.0.0.0:1"), tcp("0.0.0.0", 1));

        for (bad, says) in [
            ("unix:", "path is empty"),
            ("tcp:host", "expected tcp:HOST:PORT"),
            ("tcp:host:99999", "'99999' is not a port"),
            ("/tmp/q.sock", "must be unix:PATH or tcp:HOST:PORT"),
            ("unix:/q,server,bogus", "unknown option 'bogus'"),
            ("unix:/q,wait=on", "'wait=on' is not supported"),
        ] {
            let e = parse_address(bad).unwrap_err();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn bind_refuses_to_clobber_files_and_live_sockets_but_replaces_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("regular");
        std::fs::write(&file, b"keep me").unwrap();
        let e = QmpServer::bind(&format!("unix:{}", file.display()))
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

        let sock = dir.path().join("q.sock");
        let spec = format!("unix:{},server,wait=off", sock.display());
        let live = QmpServer::bind(&spec).unwrap();
        assert_eq!(live.address(), format!("unix:{}", sock.display()));
        let e = QmpServer::bind(&spec).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains(&spec), "{e}");
        drop(live);
        assert!(!sock.exists(), "the socket file is removed with the server");

        // A socket file nobody listens on (a crashed run) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        let again = QmpServer::bind(&spec).unwrap();
        drop(again);

        let e = QmpServer::bind("tcp:256.1.1.1:0").err().unwrap();
        assert!(e.to_string().contains("tcp:256.1.1.1:0"), "{e}");
        let tcp = QmpServer::bind("tcp:127.0.0.1:0").unwrap();
        assert!(tcp.address().starts_with("tcp:127.0.0.1:"));
        assert!(!tcp.address().ends_with(":0"));
    }

    #[test]
    fn stop_reasons_read_well() {
        assert_eq!(
            describe_stop(&StopReason::ReplayBreak { icount: 7 }),
            "replay break at instruction 7"
        );
        assert_eq!(
            describe_stop(&StopReason::Breakpoint {
                pc: 0x8000_0000,
                kind: crate::session::BreakKind::Software
            }),
            "breakpoint at 0x80000000"
        );
        assert_eq!(
            describe_stop(&StopReason::Ended(rewind_machine::RunOutcome::Exited(3))),
            "end of execution: guest exit status 3"
        );
    }
}
