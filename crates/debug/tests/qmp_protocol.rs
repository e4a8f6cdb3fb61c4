//! The QMP monitor on the wire, as a raw client sees it: greeting, negotiation, framing, `id`
//! echo, reply-before-event ordering and events to every client (against a stand-in execution
//! thread), then the real commands driving a replay of the demo guest (breaks, seeks, snapshots,
//! errors) and a run-mode session over TCP.

#[allow(dead_code)]
mod common;
use common::{demo_config, record_demo, replayer};

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rewind_debug::control::{serve, Controller, Frontends, Input, MachineEvent};
use rewind_debug::qmp::QmpServer;
use rewind_debug::Session;
use rewind_machine::seek::Seeker;
use rewind_machine::{Machine, RunOutcome};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A raw QMP client: one JSON message per `\r\n`-terminated line.
struct Client {
    reader: BufReader<Box<dyn Read + Send>>,
    writer: Box<dyn Write + Send>,
    /// Events read while waiting for replies.
    events: VecDeque<Value>,
    next_id: u64,
}

impl Client {
    fn unix(path: &Path) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client::new(Box::new(s.try_clone().unwrap()), Box::new(s))
    }

    fn tcp(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Client::new(Box::new(s.try_clone().unwrap()), Box::new(s))
    }

    fn new(reader: Box<dyn Read + Send>, writer: Box<dyn Write + Send>) -> Client {
        Client {
            reader: BufReader::new(reader),
            writer,
            events: VecDeque::new(),
            next_id: 0,
        }
    }

    /// The next line, with its terminator; empty at the end of the connection.
    fn raw_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    fn message(&mut self) -> Value {
        let line = self.raw_line();
        assert!(
            line.ends_with("\r\n"),
            "QEMU ends messages with CRLF: {line:?}"
        );
        serde_json::from_str(&line).unwrap()
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// The next reply (`return` or `error`), keeping events that come first.
    fn reply(&mut self) -> Value {
        loop {
            let m = self.message();
            if m.get("event").is_some() {
                self.events.push_back(m);
            } else {
                assert!(m.get("return").is_some() || m.get("error").is_some(), "{m}");
                return m;
            }
        }
    }

    /// Run a command (with a fresh `id`, checked in the reply); the reply without its `id`.
    fn cmd(&mut self, command: &str, arguments: Value) -> Value {
        self.next_id += 1;
        let id = format!("t{}", self.next_id);
        let msg = json!({"execute": command, "arguments": arguments, "id": id});
        self.send(&msg.to_string());
        let mut reply = self.reply();
        assert_eq!(reply["id"], json!(id), "{reply}");
        reply.as_object_mut().unwrap().remove("id");
        reply
    }

    /// The `return` value of a command that must succeed.
    fn ok(&mut self, command: &str, arguments: Value) -> Value {
        let reply = self.cmd(command, arguments);
        assert!(reply.get("return").is_some(), "{command}: {reply}");
        reply["return"].clone()
    }

    /// The error of a command that must fail: (class, desc).
    fn err(&mut self, command: &str, arguments: Value) -> (String, String) {
        let reply = self.cmd(command, arguments);
        let e = &reply["error"];
        assert!(e.is_object(), "{command} should fail: {reply}");
        (
            e["class"].as_str().unwrap().to_string(),
            e["desc"].as_str().unwrap().to_string(),
        )
    }

    /// Events up to and including the first `name` event.
    fn until_event(&mut self, name: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let e = match self.events.pop_front() {
                Some(e) => e,
                None => {
                    let m = self.message();
                    assert!(m.get("event").is_some(), "expected an event, got {m}");
                    m
                }
            };
            let ts = &e["timestamp"];
            assert!(ts["seconds"].as_u64().unwrap() > 1_600_000_000, "{e}");
            assert!(ts["microseconds"].as_u64().unwrap() < 1_000_000, "{e}");
            let done = e["event"] == name;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    fn greeting(&mut self) -> Value {
        let g = self.message();
        assert_eq!(
            g["QMP"]["version"]["qemu"],
            json!({"micro": 0, "minor": 2, "major": 7})
        );
        assert_eq!(g["QMP"]["capabilities"], json!([]));
        g
    }

    fn negotiate(&mut self) {
        self.greeting();
        assert_eq!(self.ok("qmp_capabilities", json!({})), json!({}));
    }

    /// The connection is closed by the server.
    fn assert_closed(&mut self) {
        assert_eq!(self.raw_line(), "", "the server closes the connection");
    }
}

fn event_names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// A stand-in execution thread: answers `echo` with its arguments and `emit` with `{}` followed
/// by a RESUME event; `quit` answers, sends SHUTDOWN and ends (dropping the server).
fn fake_machine(mut server: QmpServer) -> thread::JoinHandle<Vec<String>> {
    let (tx, rx) = channel();
    server.start(tx);
    thread::spawn(move || {
        let mut commands = Vec::new();
        loop {
            let input = match rx.recv_timeout(TIMEOUT) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => panic!("no quit within {TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the QMP server went away"),
            };
            let Input::Qmp(req) = input else {
                panic!("unexpected input {input:?}")
            };
            commands.push(req.command.clone());
            match req.command.as_str() {
                "echo" => req.reply.send(Ok(req.arguments.clone())).unwrap(),
                "emit" => {
                    req.reply.send(Ok(json!({}))).unwrap();
                    server.broadcast(&MachineEvent::Resume);
                }
                "quit" => {
                    req.reply.send(Ok(json!({}))).unwrap();
                    server.broadcast(&MachineEvent::Shutdown {
                        guest: false,
                        reason: "host-qmp-quit",
                    });
                    return commands;
                }
                other => panic!("unexpected command {other}"),
            }
        }
    })
}

#[test]
fn wire_protocol_framing_negotiation_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("qmp.sock");
    let server = QmpServer::bind(&format!("unix:{},server=on,wait=off", sock.display())).unwrap();
    let machine = fake_machine(server);

    let mut a = Client::unix(&sock);
    let g = a.greeting();
    assert!(g["QMP"]["version"]["package"]
        .as_str()
        .unwrap()
        .starts_with("rewind "));

    // Before negotiation: commands are refused, events are not sent.
    let mut b = Client::unix(&sock);
    b.negotiate();
    assert_eq!(
        a.err("echo", json!({})),
        (
            "CommandNotFound".into(),
            "Expecting capabilities negotiation with 'qmp_capabilities'".into()
        )
    );
    assert_eq!(b.ok("emit", json!({})), json!({}));
    assert_eq!(event_names(&b.until_event("RESUME")), ["RESUME"]);

    // Malformed input, answered in order; the connection stays usable.
    a.send("{\"execute\": }\r\n");
    let r = a.reply();
    assert_eq!(r["error"]["class"], "GenericError");
    assert!(r["error"]["desc"]
        .as_str()
        .unwrap()
        .starts_with("JSON parse error, "));
    a.send(r#"{"id": {"n": 1}}"#);
    assert_eq!(
        a.reply(),
        json!({"error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"},
               "id": {"n": 1}})
    );

    assert_eq!(a.ok("qmp_capabilities", json!({})), json!({}));
    // No event reached `a` before it negotiated.
    assert!(a.events.is_empty(), "{:?}", a.events);
    assert_eq!(
        a.err("qmp_capabilities", json!({})),
        (
            "CommandNotFound".into(),
            "Capabilities negotiation is already complete, command ignored".into()
        )
    );

    // Several messages in one write, one message over several writes: answered in order.
    a.send(r#"{"execute":"echo","arguments":{"n":1},"id":1}{"execute":"echo","id":2}"#);
    a.send("\n{\"execute\":\"ec");
    thread::sleep(Duration::from_millis(50));
    a.send("ho\",\"arguments\":{\"s\":\"}{\\\"\"},\"id\":3}\r\n");
    assert_eq!(a.reply(), json!({"return": {"n": 1}, "id": 1}));
    assert_eq!(a.reply(), json!({"return": {}, "id": 2}));
    assert_eq!(a.reply(), json!({"return": {"s": "}{\""}, "id": 3}));

    // A command's answer comes before the events it caused; every negotiated client gets them.
    a.send(r#"{"execute":"emit","id":"e"}"#);
    let first = a.message();
    assert_eq!(first, json!({"return": {}, "id": "e"}));
    let resume = a.until_event("RESUME");
    assert_eq!(resume[0]["data"], json!({}));
    assert_eq!(event_names(&b.until_event("RESUME")), ["RESUME"]);

    // A client vanishing does not disturb the others.
    let mut c = Client::unix(&sock);
    c.negotiate();
    drop(c);
    assert_eq!(b.ok("emit", json!({})), json!({}));
    assert_eq!(event_names(&a.until_event("RESUME")), ["RESUME"]);
    assert_eq!(event_names(&b.until_event("RESUME")), ["RESUME"]);

    // Quit: the answer, SHUTDOWN, then the server closes every connection.
    assert_eq!(b.ok("quit", json!({})), json!({}));
    let commands = machine.join().unwrap();
    assert_eq!(event_names(&b.until_event("SHUTDOWN")), ["SHUTDOWN"]);
    assert_eq!(
        a.until_event("SHUTDOWN")[0]["data"],
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    a.assert_closed();
    b.assert_closed();
    assert!(!sock.exists(), "the socket file is removed");
    // Only negotiated, well-formed commands reached the execution thread.
    assert_eq!(
        commands,
        ["emit", "echo", "echo", "echo", "emit", "emit", "quit"]
    );
}

// ---------------------------------------------------------------------------------------------
// A real session.

/// The state hash of an uninterrupted replay after `icount` instructions.
fn hash_at(path: &Path, icount: u64) -> String {
    let mut m = replayer(path);
    assert_eq!(m.run(Some(icount)).unwrap(), RunOutcome::InstructionLimit);
    assert_eq!(m.icount(), icount);
    format!("{:016x}", m.state_hash())
}

/// Serve a session built on the serving thread; the thread returns the final icount.
fn serve_session(
    server: QmpServer,
    build: impl FnOnce() -> Session + Send + 'static,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut ctl = Controller::new(build(), true);
        let frontends = Frontends {
            qmp: Some(server),
            gdb: None,
        };
        serve(&mut ctl, frontends).unwrap();
        ctl.session().icount()
    })
}

#[test]
fn qmp_drives_a_replay_breaks_seeks_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record_demo(&trace);
    let total = {
        let mut m = replayer(&trace);
        assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
        m.icount()
    };
    let (n, back) = (total / 3, total / 10);
    assert!(back > 10, "the demo runs {total} instructions");

    let sock = dir.path().join("qmp.sock");
    let server = QmpServer::bind(&format!("unix:{}", sock.display())).unwrap();
    let path = trace.clone();
    let serving = serve_session(server, move || {
        let seeker = Seeker::new(replayer(&path), (total / 8).max(1)).unwrap();
        Session::new(seeker, Some(path))
    });

    let mut c = Client::unix(&sock);
    c.greeting();
    let (class, _) = c.err("query-status", json!({}));
    assert_eq!(class, "CommandNotFound");
    assert_eq!(c.ok("qmp_capabilities", json!({})), json!({}));

    assert_eq!(
        c.ok("query-status", json!({})),
        json!({"running": false, "singlestep": false, "status": "paused"})
    );
    assert_eq!(
        c.ok("query-replay", json!({})),
        json!({"mode": "play", "filename": trace.display().to_string(), "icount": 0})
    );
    let names = c.ok("query-commands", json!({}));
    for name in [
        "replay-seek",
        "replay-break",
        "cont",
        "stop",
        "x-rewind-state",
    ] {
        assert!(
            names.as_array().unwrap().contains(&json!({"name": name})),
            "{name}"
        );
    }
    assert_eq!(
        c.err("no-such-command", json!({})),
        (
            "CommandNotFound".into(),
            "The command no-such-command has not been found".into()
        )
    );

    // Argument checking.
    let generic = |desc: &str| ("GenericError".to_string(), desc.to_string());
    assert_eq!(
        c.err("replay-break", json!({})),
        generic("Parameter 'icount' is missing")
    );
    assert_eq!(
        c.err("replay-break", json!({"icount": "12"})),
        generic("Invalid parameter type for 'icount', expected: integer")
    );
    assert_eq!(
        c.err("replay-break", json!({"icount": 12, "bogus": 1})),
        generic("Parameter 'bogus' is unexpected")
    );
    assert_eq!(
        c.err("stop", json!({"now": true})),
        generic("Parameter 'now' is unexpected")
    );

    // replay-break + cont: RESUME, then STOP exactly at the break.
    assert_eq!(c.ok("replay-break", json!({"icount": n})), json!({}));
    assert_eq!(c.ok("x-rewind-state", json!({}))["replay-break"], json!(n));
    assert_eq!(c.ok("cont", json!({})), json!({}));
    assert_eq!(event_names(&c.until_event("STOP")), ["RESUME", "STOP"]);
    assert_eq!(c.ok("query-replay", json!({}))["icount"], json!(n));
    assert_eq!(
        c.ok("query-status", json!({})),
        json!({"running": false, "singlestep": false, "status": "debug"})
    );
    let at_n = c.ok("x-rewind-state", json!({}));
    assert_eq!(at_n["icount"], json!(n));
    assert_eq!(at_n["state-hash"], json!(hash_at(&trace, n)));
    assert_eq!(at_n["mode"], "replay");
    assert_eq!(at_n["status"], "debug");
    assert!(["M", "S", "U"].contains(&at_n["privilege"].as_str().unwrap()));
    assert!(at_n["pc"].as_u64().unwrap() >= 0x8000_0000, "{at_n}");
    assert_eq!(
        at_n["last-stop"],
        json!(format!("replay break at instruction {n}"))
    );
    assert!(at_n["snapshots"].as_u64().unwrap() >= 1);
    assert!(at_n["snapshot-memory"].as_u64().unwrap() > 0);

    // A break behind the current position is refused with the session's explanation.
    let (class, desc) = c.err("replay-break", json!({"icount": 10}));
    assert_eq!(class, "GenericError");
    assert!(desc.contains("behind the current position"), "{desc}");
    assert_eq!(c.ok("replay-delete-break", json!({})), json!({}));
    assert_eq!(
        c.ok("x-rewind-state", json!({}))["replay-break"],
        Value::Null
    );

    // Seek back: RESUME and STOP as QEMU's asynchronous seek; the state is the replay's.
    assert_eq!(c.ok("replay-seek", json!({"icount": back})), json!({}));
    assert_eq!(event_names(&c.until_event("STOP")), ["RESUME", "STOP"]);
    assert_eq!(c.ok("query-replay", json!({}))["icount"], json!(back));
    let at_back = c.ok("x-rewind-state", json!({}));
    assert_eq!(at_back["state-hash"], json!(hash_at(&trace, back)));

    // A snapshot file taken here loads back after moving elsewhere.
    let snap = dir.path().join("at-back.snap");
    let saved = c.ok(
        "x-rewind-snapshot",
        json!({"path": snap.display().to_string()}),
    );
    assert_eq!(saved, json!({"icount": back}));
    assert!(snap.exists());
    assert_eq!(c.ok("replay-seek", json!({"icount": n})), json!({}));
    c.until_event("STOP");
    assert_eq!(
        c.ok("x-rewind-state", json!({}))["state-hash"],
        at_n["state-hash"]
    );
    let loaded = c.ok(
        "x-rewind-load-snapshot",
        json!({"path": snap.display().to_string()}),
    );
    assert_eq!(loaded, json!({"icount": back}));
    assert_eq!(
        c.ok("x-rewind-state", json!({}))["state-hash"],
        at_back["state-hash"]
    );
    let (_, desc) = c.err("x-rewind-snapshot", json!({"path": ""}));
    assert_eq!(desc, "Parameter 'path' must not be empty");
    let missing = dir.path().join("none.snap").display().to_string();
    let (class, _) = c.err("x-rewind-load-snapshot", json!({"path": missing}));
    assert_eq!(class, "GenericError");

    // Monitor safety: an existing file is replaced only with "force": true; the trace and its
    // snapshot file never; device nodes and FIFOs are neither written nor read.
    let (_, desc) = c.err(
        "x-rewind-snapshot",
        json!({"path": snap.display().to_string()}),
    );
    assert!(
        desc.contains("file exists") && desc.contains("force"),
        "{desc}"
    );
    let (_, desc) = c.err(
        "x-rewind-snapshot",
        json!({"path": snap.display().to_string(), "force": 1}),
    );
    assert_eq!(
        desc,
        "Invalid parameter type for 'force', expected: boolean"
    );
    let before = std::fs::read(&snap).unwrap();
    assert_eq!(c.ok("replay-seek", json!({"icount": n})), json!({}));
    c.until_event("STOP");
    assert_eq!(
        c.ok(
            "x-rewind-snapshot",
            json!({"path": snap.display().to_string(), "force": true})
        ),
        json!({"icount": n})
    );
    assert_ne!(
        std::fs::read(&snap).unwrap(),
        before,
        "force did not replace the file"
    );
    let trace_bytes = std::fs::read(&trace).unwrap();
    let sidecar = rewind_machine::sidecar::sidecar_path(&trace);
    std::fs::write(&sidecar, b"sidecar").unwrap();
    for (target, says) in [
        (trace.clone(), "refusing to overwrite"),
        (sidecar.clone(), "refusing to overwrite"),
        (PathBuf::from("/dev/null"), "not a regular file"),
    ] {
        let (_, desc) = c.err(
            "x-rewind-snapshot",
            json!({"path": target.display().to_string(), "force": true}),
        );
        assert!(desc.contains(says), "{}: {desc}", target.display());
    }
    assert_eq!(
        std::fs::read(&trace).unwrap(),
        trace_bytes,
        "the trace was modified"
    );
    assert_eq!(std::fs::read(&sidecar).unwrap(), b"sidecar");
    std::fs::remove_file(&sidecar).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = std::time::Instant::now();
    for bad in [PathBuf::from("/dev/zero"), fifo.clone()] {
        let (_, desc) = c.err(
            "x-rewind-load-snapshot",
            json!({"path": bad.display().to_string()}),
        );
        assert!(
            desc.contains("not a regular file"),
            "{}: {desc}",
            bad.display()
        );
        let (_, desc) = c.err(
            "x-rewind-snapshot",
            json!({"path": bad.display().to_string(), "force": true}),
        );
        assert!(
            desc.contains("not a regular file"),
            "{}: {desc}",
            bad.display()
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // Beyond the end: an error naming the end, and the position is where it was.
    let before = c.ok("query-replay", json!({}))["icount"].clone();
    let (class, desc) = c.err("replay-seek", json!({"icount": total + 1000}));
    assert_eq!(class, "GenericError");
    assert!(desc.contains("beyond the end"), "{desc}");
    assert!(desc.contains(&total.to_string()), "{desc}");
    c.until_event("STOP");
    assert_eq!(c.ok("query-replay", json!({}))["icount"], before);
    assert_ne!(c.ok("query-status", json!({}))["status"], "shutdown");
    // At the end, cont has nothing more to run and says how to go back.
    assert_eq!(c.ok("replay-seek", json!({"icount": total})), json!({}));
    c.until_event("STOP");
    let (class, desc) = c.err("cont", json!({}));
    assert_eq!(class, "GenericError");
    assert!(desc.contains("replay-seek"), "{desc}");

    // Two clients: both see the events a command of one of them causes.
    assert_eq!(c.ok("replay-seek", json!({"icount": back})), json!({}));
    c.until_event("STOP");
    let mut d = Client::unix(&sock);
    d.negotiate();
    assert_eq!(d.ok("query-replay", json!({}))["icount"], json!(back));
    assert_eq!(c.ok("cont", json!({})), json!({}));
    // The guest either is stopped by the request or reaches its end first: a STOP either way.
    assert_eq!(c.ok("stop", json!({})), json!({}));
    assert_eq!(c.until_event("STOP")[0]["event"], "RESUME");
    assert_eq!(d.until_event("STOP")[0]["event"], "RESUME");
    let stopped_at = c.ok("query-replay", json!({}))["icount"].as_u64().unwrap();
    // (`stop` may even arrive before the first slice ran.)
    assert!(stopped_at >= back && stopped_at <= total, "{stopped_at}");

    // Quit ends serving and closes both connections.
    assert_eq!(d.ok("quit", json!({})), json!({}));
    assert_eq!(serving.join().unwrap(), stopped_at);
    let shutdown = d.until_event("SHUTDOWN");
    assert_eq!(
        shutdown.last().unwrap()["data"],
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    c.until_event("SHUTDOWN");
    c.assert_closed();
    d.assert_closed();
    assert!(!sock.exists());
}

#[test]
fn qmp_over_tcp_in_run_mode_refuses_replay_commands_and_reports_the_guest_end() {
    let server = QmpServer::bind("tcp:127.0.0.1:0,server,wait=off").unwrap();
    let addr = server.address().strip_prefix("tcp:").unwrap().to_string();
    let serving = serve_session(server, || {
        let machine = Machine::new(demo_config()).unwrap();
        Session::new(Seeker::new(machine, 1 << 20).unwrap(), None::<PathBuf>)
    });
    let mut c = Client::tcp(&addr);
    c.negotiate();
    assert_eq!(
        c.ok("query-replay", json!({})),
        json!({"mode": "none", "icount": 0})
    );
    for (command, args) in [
        ("replay-break", json!({"icount": 5})),
        ("replay-delete-break", json!({})),
        ("replay-seek", json!({"icount": 5})),
        ("x-rewind-load-snapshot", json!({"path": "/nonexistent"})),
    ] {
        let (class, desc) = c.err(command, args);
        assert_eq!(class, "GenericError");
        assert!(
            desc.contains(command) && desc.contains("only possible when replaying"),
            "{command}: {desc}"
        );
    }
    assert_eq!(c.ok("query-status", json!({}))["status"], "paused");
    // `stop` while paused changes nothing and sends no event.
    assert_eq!(c.ok("stop", json!({})), json!({}));

    // Run to the guest's own end: SHUTDOWN (by the guest), then STOP.
    assert_eq!(c.ok("cont", json!({})), json!({}));
    let events = c.until_event("STOP");
    assert_eq!(event_names(&events), ["RESUME", "SHUTDOWN", "STOP"]);
    assert_eq!(
        events[1]["data"],
        json!({"guest": true, "reason": "guest-shutdown"})
    );
    assert_eq!(c.ok("query-status", json!({}))["status"], "shutdown");
    let state = c.ok("x-rewind-state", json!({}));
    assert_eq!(state["ended"], "guest exit status 0");
    assert_eq!(state["mode"], "run");
    let (_, desc) = c.err("cont", json!({}));
    assert!(desc.contains("has ended"), "{desc}");

    assert_eq!(c.ok("quit", json!({})), json!({}));
    assert_eq!(json!(serving.join().unwrap()), state["icount"]);
    let events = c.until_event("SHUTDOWN");
    assert_eq!(
        events.last().unwrap()["data"],
        json!({"guest": false, "reason": "host-qmp-quit"})
    );
    c.assert_closed();
}
