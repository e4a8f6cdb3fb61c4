//! A minimal QMP client for the input tests (one JSON message per line), included with
//! `#[path]` by the test files that drive `send-key` and `input-send-event`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A connected, negotiated QMP client.
pub struct Qmp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Qmp {
    /// Connect to `addr` (retrying while the server starts, up to `wait`) and negotiate.
    pub fn connect(addr: &str, wait: Duration) -> Qmp {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(addr) {
                // A self-connected socket (TCP simultaneous open on a port nobody listens on
                // yet) is not the server.
                Ok(s) if s.local_addr().ok() == s.peer_addr().ok() => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(s) => break s,
                Err(e) if start.elapsed() > wait => panic!("QMP {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let mut q = Qmp {
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
        };
        let greeting = q.message();
        assert!(greeting.get("QMP").is_some(), "greeting: {greeting}");
        q.ok("qmp_capabilities", json!({}));
        q
    }

    fn message(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from QMP");
        assert!(!line.is_empty(), "QMP connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("QMP message {line:?}: {e}"))
    }

    /// Run `command`; its reply (`return` or `error`), events skipped.
    pub fn cmd(&mut self, command: &str, arguments: Value) -> Value {
        let msg = json!({"execute": command, "arguments": arguments});
        self.writer
            .write_all(format!("{msg}\n").as_bytes())
            .expect("write to QMP");
        loop {
            let m = self.message();
            if m.get("event").is_none() {
                return m;
            }
        }
    }

    /// The `return` value of a command that must succeed.
    pub fn ok(&mut self, command: &str, arguments: Value) -> Value {
        let r = self.cmd(command, arguments.clone());
        assert!(r.get("return").is_some(), "{command} {arguments}: {r}");
        r["return"].clone()
    }

    /// The error (class, desc) of a command that must fail.
    pub fn err(&mut self, command: &str, arguments: Value) -> (String, String) {
        let r = self.cmd(command, arguments.clone());
        let e = &r["error"];
        assert!(e.is_object(), "{command} {arguments} should fail: {r}");
        (
            e["class"].as_str().unwrap_or_default().to_string(),
            e["desc"].as_str().unwrap_or_default().to_string(),
        )
    }
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `rewind dump`'s InputEvent lines of `trace` as (device, type, code, value).
pub fn logged_input_events(dump: &str) -> Vec<(u8, u16, u16, i32)> {
    dump.lines()
        .filter(|l| l.contains("InputEvent"))
        .map(|l| {
            let field = |name: &str| -> i64 {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name}= in {l:?}"))
            };
            (
                field("device") as u8,
                field("type") as u16,
                field("code") as u16,
                field("value") as i32,
            )
        })
        .collect()
}
