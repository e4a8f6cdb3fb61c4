//! End-to-end record/replay tests (`rewind record`, `rewind replay`, `rewind dump`) with the
//! `interactive` and `compute_timer` guests (sources in `guests/`).
//!
//! Recordings are driven the way a user would: input typed over a TCP or unix socket at random host
//! moments, files, signals, a recorder killed with SIGKILL. Every replay must reproduce the recorded
//! output byte for byte, end at the same instruction count with the same state hash, and exit with the
//! recorded status; damaged traces must be refused with a message naming the file.
//! Without `riscv64-unknown-elf-gcc` the tests skip, unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, expected_output, guest_elf, guests_dir, have_tool, number_after, qemu_cmd,
    rewind_proc, rewind_run_cmd, run_with_input, Done, Proc, Scratch,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one emulator process may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Exit status of `rewind replay` when the trace is cut short.
const EXIT_CUT_SHORT: i32 = 4;
/// Exit status for an invalid trace or usage error.
const EXIT_INVALID: i32 = 2;

// ---------------------------------------------------------------------------------------------
// Processes

fn run(args: &[String]) -> Done {
    rewind_proc(args).finish(TIMEOUT)
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// `rewind record -o TRACE --bios none --kernel ELF --serial SERIAL EXTRA...`
fn record_args(trace: &Path, elf: &Path, serial: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(elf),
        s("--serial"),
        s(serial),
    ];
    v.extend(extra.iter().map(s));
    v
}

/// `<N>` from `rewind: recorded <N> instructions to <FILE> (<B> bytes)`.
fn recorded_icount(d: &Done) -> u64 {
    d.stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("rewind: recorded ")?;
            let (n, rest) = rest.split_once(' ')?;
            rest.starts_with("instructions to ")
                .then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| {
            panic!(
                "record did not print `rewind: recorded <N> instructions to ...`\n{}",
                d.describe()
            )
        })
}

/// A replay and what its success line said.
#[derive(Debug, Clone)]
struct Replayed {
    done: Done,
    icount: u64,
    hash: String,
}

/// `(N, hash)` from `rewind: replay matched the recording: <N> instructions, state <16 hex>`.
fn matched_line(stderr: &str) -> Option<(u64, String)> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("rewind: replay matched the recording: ")?;
        let (n, rest) = rest.split_once(" instructions, state ")?;
        let hash = rest.trim();
        (hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| (n.parse().ok(), hash.to_ascii_lowercase()))
            .and_then(|(n, h)| Some((n?, h)))
    })
}

fn replay_raw(trace: &Path) -> Done {
    run(&[s("replay"), s(trace)])
}

/// Replays `trace` and checks it succeeded with exit status `code`.
fn replay_ok(trace: &Path, code: i32) -> Replayed {
    let done = replay_raw(trace);
    assert_eq!(
        done.code,
        Some(code),
        "replay of {} exit status\n{}",
        trace.display(),
        done.describe()
    );
    let (icount, hash) = matched_line(&done.stderr).unwrap_or_else(|| {
        panic!(
            "replay did not print `rewind: replay matched the recording: <N> instructions, state <hash>`\n{}",
            done.describe()
        )
    });
    Replayed { done, icount, hash }
}

fn dump(trace: &Path, flags: &[&str]) -> Done {
    let mut args = vec![s("dump"), s(trace)];
    args.extend(flags.iter().map(s));
    let d = run(&args);
    assert_eq!(d.code, Some(0), "rewind dump {flags:?}\n{}", d.describe());
    d
}

/// The `rewind dump --json` lines, parsed.
fn dump_json(trace: &Path) -> Vec<serde_json::Value> {
    dump(trace, &["--json"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("dump --json line {l:?}: {e}")))
        .collect()
}

/// `(icount, kind)` of every event of kind `kind` (all kinds if empty).
fn events_of(json: &[serde_json::Value], kind: &str) -> Vec<(u64, String)> {
    json.iter()
        .filter(|v| v["type"] == "event")
        .filter(|v| kind.is_empty() || v["kind"] == kind)
        .map(|v| {
            (
                v["icount"].as_u64().expect("event icount"),
                v["kind"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// The footer's final state hash as 16 lowercase hex digits, if the trace has one.
fn footer_hash(json: &[serde_json::Value]) -> Option<String> {
    json.iter()
        .find(|v| v["type"] == "footer")
        .and_then(|v| v["footer"]["final_state_hash"].as_u64())
        .map(|h| format!("{h:016x}"))
}

/// Small deterministic PRNG (xorshift64*) for input timing; the seed is printed by each test.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// The interactive guest: what it must print for a given input

/// One expected line of the interactive guest's output.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Exact(String),
    /// A line whose tail depends on timing (tick count, raw RTC time).
    Prefix(String),
}

const BANNER: [&str; 4] = [
    "interactive: commands ticks, rtc, quit, fail N",
    "rtc plausible: 1",
    "rtc monotonic: 1",
    "ready",
];

/// What the interactive guest prints for these input lines (each sent with a trailing `\n`), up to
/// and including its exit line; the second value is the exit code if a line makes it exit.
fn interactive_model(lines: &[String]) -> (Vec<Expect>, Option<i32>) {
    let mut out: Vec<Expect> = BANNER
        .iter()
        .map(|l| Expect::Exact(l.to_string()))
        .collect();
    let mut sum: u32 = 2_166_136_261;
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        for &b in line.as_bytes().iter().chain(b"\n") {
            sum = (sum ^ u32::from(b)).wrapping_mul(16_777_619);
        }
        if line == "quit" {
            out.push(Expect::Exact(format!("line {n}: quit, sum {sum:08x}")));
            out.push(Expect::Exact("bye".into()));
            return (out, Some(0));
        }
        if let Some(code) = line
            .strip_prefix("fail ")
            .filter(|c| !c.is_empty() && c.len() <= 5 && c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<i32>().ok())
        {
            out.push(Expect::Exact(format!(
                "line {n}: fail {code}, sum {sum:08x}"
            )));
            return (out, Some(code & 0xffff));
        }
        match line.as_str() {
            "ticks" => out.push(Expect::Prefix(format!("line {n}: ticks "))),
            "rtc" => out.push(Expect::Prefix(format!("line {n}: RTC-RAW "))),
            _ => out.push(Expect::Exact(format!("line {n}: [{line}] sum {sum:08x}"))),
        }
    }
    (out, None)
}

/// Checks `output` against the model: every line as predicted (a prefix of the model if the guest
/// was stopped early), tick counts never decreasing, raw RTC times plausible and increasing.
fn check_interactive_output(output: &str, model: &[Expect], complete: bool) {
    let got: Vec<&str> = output.lines().collect();
    if complete {
        assert_eq!(
            got.len(),
            model.len(),
            "interactive output has {} lines, expected {}:\n{output}",
            got.len(),
            model.len()
        );
    } else {
        assert!(got.len() <= model.len(), "too many lines:\n{output}");
    }
    let (mut last_ticks, mut last_rtc) = (0u64, 0u64);
    for (i, (g, m)) in got.iter().zip(model).enumerate() {
        match m {
            Expect::Exact(e) => assert_eq!(g, e, "line {} of output:\n{output}", i + 1),
            Expect::Prefix(p) => {
                let v: u64 = g
                    .strip_prefix(p.as_str())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("line {} {g:?} is not {p:?}<number>:\n{output}", i + 1)
                    });
                if p.contains("ticks") {
                    assert!(v >= last_ticks, "tick count went backwards:\n{output}");
                    last_ticks = v;
                } else {
                    assert!(
                        v > 1_577_836_800_000_000_000 && v > last_rtc,
                        "implausible RTC time {v}:\n{output}"
                    );
                    last_rtc = v;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recording over a socket

/// Where the recorder listens for its serial client.
#[derive(Debug, Clone)]
enum Sock {
    Tcp(u16),
    Unix(PathBuf),
}

impl Sock {
    fn tcp() -> Sock {
        // Ask the OS for a free port, then release it for rewind (a small race we accept).
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        Sock::Tcp(l.local_addr().expect("local addr").port())
    }

    fn spec(&self) -> String {
        match self {
            Sock::Tcp(p) => format!("tcp:127.0.0.1:{p},server"),
            Sock::Unix(p) => format!("unix:{},server", p.display()),
        }
    }

    fn try_connect(&self) -> std::io::Result<Conn> {
        Ok(match self {
            Sock::Tcp(p) => {
                let t = TcpStream::connect(("127.0.0.1", *p))?;
                t.set_nodelay(true)?;
                Conn::Tcp(t)
            }
            Sock::Unix(p) => Conn::Unix(UnixStream::connect(p)?),
        })
    }
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn reader(&self) -> Box<dyn Read + Send> {
        match self {
            Conn::Tcp(t) => Box::new(t.try_clone().expect("clone socket")),
            Conn::Unix(u) => Box::new(u.try_clone().expect("clone socket")),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(t) => t.write_all(b),
            Conn::Unix(u) => u.write_all(b),
        }
    }
}

/// Sends `SIG<sig>` to the process with `kill`.
fn send_signal(proc: &Proc, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(proc.pid().to_string())
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -{sig} failed");
}

/// A recording in progress with a socket client attached.
struct Session {
    proc: Proc,
    conn: Conn,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Session {
    /// Starts `rewind record` with the serial port on `sock` and connects to it.
    fn start(trace: &Path, elf: &Path, sock: &Sock, extra: &[&str]) -> Session {
        let mut proc = rewind_proc(&record_args(trace, elf, &sock.spec(), extra));
        let start = Instant::now();
        let conn = loop {
            match sock.try_connect() {
                Ok(c) => break c,
                Err(e) => {
                    if proc.exited() || start.elapsed() > Duration::from_secs(20) {
                        let done = proc.finish(TIMEOUT);
                        panic!(
                            "cannot connect to {}: {e}\n{}",
                            sock.spec(),
                            done.describe()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        let (output, reader) = common::collect_in_background(conn.reader());
        Session {
            proc,
            conn,
            output,
            reader: Some(reader),
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("output lock")).into_owned()
    }

    /// Waits until the guest has printed `needle`.
    fn wait_for(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.output().contains(needle) {
            if start.elapsed() > Duration::from_secs(20) || self.proc.exited() {
                let out = self.output();
                let _ = self.proc.kill();
                panic!(
                    "guest never printed {needle:?}; socket output:\n{out}\nrecorder: {}",
                    self.proc.finish_mut(TIMEOUT).describe()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn send_line(&mut self, line: &str) {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\n');
        self.conn
            .write_all(&b)
            .unwrap_or_else(|e| panic!("sending {line:?} to the recorder: {e}"));
    }

    fn signal(&self, sig: &str) {
        send_signal(&self.proc, sig);
    }

    fn kill9(&mut self) {
        self.proc.kill().expect("SIGKILL the recorder");
    }

    /// Waits for the recorder to exit; returns its result and everything the guest sent to the socket.
    fn finish(mut self) -> (Done, String) {
        let done = self.proc.finish_mut(TIMEOUT);
        // The recorder's exit closes the connection; do not hang if it somehow stays open.
        if let Some(h) = self.reader.take() {
            let start = Instant::now();
            while !h.is_finished() && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        let out = self.output();
        (done, out)
    }
}

/// Records the interactive guest over `sock`, sending each line after its delay (ms) once the guest
/// is ready; returns the recorder's result and the socket output.
fn record_interactive_socket(
    trace: &Path,
    sock: &Sock,
    schedule: &[(u64, String)],
) -> (Done, String) {
    let elf = guest_elf("interactive").expect("guests built");
    let mut sess = Session::start(trace, &elf, sock, &[]);
    sess.wait_for("ready\n");
    for (delay, line) in schedule {
        std::thread::sleep(Duration::from_millis(*delay));
        sess.send_line(line);
    }
    sess.finish()
}

/// A random schedule of input lines ending with "quit"; delays up to `max_delay_ms`.
fn random_schedule(rng: &mut Rng, max_delay_ms: u64) -> Vec<(u64, String)> {
    let words = [
        "hello",
        "ticks",
        "rtc",
        "record me",
        "",
        "ticks",
        "Rewind 123",
        "x y z",
    ];
    let n = 4 + rng.below(4);
    let mut v: Vec<(u64, String)> = (0..n)
        .map(|_| {
            let w = words[rng.below(words.len() as u64) as usize];
            (rng.below(max_delay_ms + 1), w.to_string())
        })
        .collect();
    v.push((rng.below(max_delay_ms + 1), "quit".to_string()));
    v
}

/// Records one socket session with the schedule from `seed`, checks it against the model and
/// replays it `replays` times; returns (recorded icount, SerialInput events, output).
fn socket_roundtrip(
    scratch: &Scratch,
    name: &str,
    sock: &Sock,
    seed: u64,
    replays: usize,
) -> (u64, Vec<(u64, String)>, String) {
    let mut rng = Rng::new(seed);
    let schedule = random_schedule(&mut rng, 150);
    eprintln!("{name}: seed {seed:#x}, schedule (delay ms, line) {schedule:?}");
    let trace = scratch.path(&format!("{name}.rwtrace"));
    let (rec, output) = record_interactive_socket(&trace, sock, &schedule);
    assert_eq!(
        rec.code,
        Some(0),
        "record {name}: {}\nsocket output:\n{output}",
        rec.describe()
    );
    let lines: Vec<String> = schedule.iter().map(|(_, l)| l.clone()).collect();
    let (model, _) = interactive_model(&lines);
    check_interactive_output(&output, &model, true);
    let icount = recorded_icount(&rec);

    let json = dump_json(&trace);
    let mut first: Option<Replayed> = None;
    for i in 0..replays {
        let r = replay_ok(&trace, 0);
        assert_same_output(
            &format!(
                "{name}: replay {} vs the output seen while recording",
                i + 1
            ),
            &output,
            &r.done.stdout,
        );
        assert_eq!(r.icount, icount, "{name}: replay icount vs recorded icount");
        if let Some(f) = &first {
            assert_eq!(
                (r.icount, &r.hash),
                (f.icount, &f.hash),
                "{name}: replays disagree"
            );
        } else if let Some(h) = footer_hash(&json) {
            assert_eq!(r.hash, h, "{name}: replay state hash vs the trace footer's");
        }
        first.get_or_insert(r);
    }
    (icount, events_of(&json, "SerialInput"), output)
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The new guests behave on rewind (`run`) exactly as on QEMU (reference files and, when
/// installed, a live `qemu-system-riscv64 -icount shift=0`).
#[test]
fn new_guests_match_qemu() {
    let Some(dir) = guests_dir() else { return };
    let input = b"hello world\nRewind 123\n\nfail x\n\r\nquit\n";
    let qemu = have_tool("qemu-system-riscv64");
    for (name, input) in [("interactive", &input[..]), ("compute_timer", &b""[..])] {
        let elf = dir.join(format!("build/{name}.elf"));
        let expected = expected_output(&dir, name);
        let rw = run_with_input(rewind_run_cmd(&elf), input, TIMEOUT);
        assert_eq!(rw.code, Some(0), "{name}: {}", rw.stderr);
        assert_same_output(
            &format!("{name}: guests/expected (QEMU) vs rewind run"),
            &expected,
            &rw.stdout,
        );
        if qemu {
            let q = run_with_input(qemu_cmd(&elf), input, TIMEOUT);
            assert_eq!(q.code, Some(0), "{name} on QEMU: {}", q.stderr);
            assert_same_output(
                &format!("{name}: live QEMU vs rewind run"),
                &q.stdout,
                &rw.stdout,
            );
        }
    }
}

/// Test 1: input typed over TCP at random host moments; three exact replays; different timing gives
/// a different trace which also replays exactly.
#[test]
fn interactive_over_tcp_replays_exactly() {
    if guests_dir().is_none() {
        return;
    }
    let scratch = Scratch::new("tcp");
    let seed_a = 0x5eed_0001 ^ u64::from(std::process::id());
    let (n_a, ev_a, out_a) = socket_roundtrip(&scratch, "tcp-a", &Sock::tcp(), seed_a, 3);
    let (n_b, ev_b, out_b) =
        socket_roundtrip(&scratch, "tcp-b", &Sock::tcp(), seed_a ^ 0xabcdef, 1);
    assert!(
        !ev_a.is_empty() && !ev_b.is_empty(),
        "no SerialInput events logged"
    );
    assert!(
        n_a != n_b || ev_a != ev_b,
        "two recordings with different input timing gave the same instruction count ({n_a}) and \
         the same SerialInput icounts {ev_a:?}\n--- a ---\n{out_a}\n--- b ---\n{out_b}"
    );
}

/// Test 1 over a unix socket.
#[test]
fn interactive_over_unix_socket_replays_exactly() {
    if guests_dir().is_none() {
        return;
    }
    let scratch = Scratch::new("unix");
    let seed = 0x5eed_0002 ^ u64::from(std::process::id());
    let sock_a = Sock::Unix(scratch.path("a.sock"));
    let sock_b = Sock::Unix(scratch.path("b.sock"));
    let (n_a, ev_a, _) = socket_roundtrip(&scratch, "unix-a", &sock_a, seed, 3);
    let (n_b, ev_b, _) = socket_roundtrip(&scratch, "unix-b", &sock_b, seed.rotate_left(17), 1);
    assert!(
        n_a != n_b || ev_a != ev_b,
        "two recordings with different input timing gave identical traces ({n_a} instructions, {ev_a:?})"
    );
}

/// Test 2: a CPU-bound guest with a 1 kHz timer records and replays identically, and the trace logs
/// nothing for its ~300 timer interrupts.
#[test]
fn compute_timer_replays_without_timer_events() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("compute");
    let trace = scratch.path("compute.rwtrace");
    let elf = dir.join("build/compute_timer.elf");
    let rec = run(&record_args(&trace, &elf, "stdio", &[]));
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let expected = expected_output(&dir, "compute_timer");
    assert_same_output(
        "compute_timer: recording vs QEMU reference",
        &expected,
        &rec.stdout,
    );
    let n = recorded_icount(&rec);
    assert!(
        (250_000_000..400_000_000).contains(&n),
        "compute_timer ran {n} instructions"
    );

    let r1 = replay_ok(&trace, 0);
    assert_same_output(
        "compute_timer: replay vs recording",
        &rec.stdout,
        &r1.done.stdout,
    );
    assert_eq!(r1.icount, n, "replay icount vs recorded");
    let r2 = replay_ok(&trace, 0);
    assert_eq!(
        (r2.icount, &r2.hash),
        (r1.icount, &r1.hash),
        "two replays disagree"
    );
    assert_eq!(r2.done.stdout, r1.done.stdout);
    let json = dump_json(&trace);
    if let Some(h) = footer_hash(&json) {
        assert_eq!(r1.hash, h, "replay state hash vs the trace footer's");
    }

    let stats = dump(&trace, &["--stats"]);
    let known = [
        "SerialInput",
        "HostShutdown",
        "GuestExit",
        "ClockRead",
        "Random",
        "IdleWarp",
        "StateHash",
        "NetSent",
        "NetPacket",
        "InputEvent",
        "StateRegisters",
        "End",
        "Timer",
        "TimerInterrupt",
    ];
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in stats.stdout.lines() {
        let mut t = line.split_whitespace();
        if let (Some(k), Some(c)) = (t.next(), t.next()) {
            if let (true, Ok(c)) = (known.contains(&k), c.parse::<u64>()) {
                counts.insert(k.to_string(), c);
            }
        }
    }
    assert!(
        counts.contains_key("End"),
        "dump --stats shows no per-kind table:\n{}",
        stats.stdout
    );
    for k in ["IdleWarp", "SerialInput", "Timer", "TimerInterrupt"] {
        assert!(
            !counts.contains_key(k),
            "compute_timer logged {k} events:\n{}",
            stats.stdout
        );
    }
    // Besides periodic state checks, only start-up and exit events: far fewer than the ~300 ticks.
    let other: u64 = counts
        .iter()
        .filter(|(k, _)| k.as_str() != "StateHash" && k.as_str() != "StateRegisters")
        .map(|(_, c)| c)
        .sum();
    assert!(
        other <= 4,
        "compute_timer logged {other} non-hash events:\n{}",
        stats.stdout
    );
    let ticks = number_after(&rec.stdout, "compute_timer ticks ").expect("tick line");
    assert!(ticks > 250, "only {ticks} timer interrupts");
}

/// Test 3: the finisher's exit code is the recorder's and the replayer's exit status.
#[test]
fn finisher_codes_are_exit_statuses() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("codes");
    for (name, code) in [("exit_0", 0), ("exit_1", 1), ("exit_42", 42)] {
        let trace = scratch.path(&format!("{name}.rwtrace"));
        let rec = run(&record_args(
            &trace,
            &dir.join(format!("build/{name}.elf")),
            "stdio",
            &[],
        ));
        assert_eq!(rec.code, Some(code), "record {name}: {}", rec.describe());
        assert!(
            rec.stdout.contains(&format!("exiting with code {code}")),
            "{}",
            rec.describe()
        );
        let r = replay_ok(&trace, code);
        assert_same_output(&format!("{name}: replay"), &rec.stdout, &r.done.stdout);
        assert_eq!(r.icount, recorded_icount(&rec));
    }
    // The replayer's output backends: a file gets exactly the bytes, null gets nothing.
    let trace = scratch.path("exit_42.rwtrace");
    let out = scratch.path("replay-out.txt");
    let d = run(&[
        s("replay"),
        s(&trace),
        s("--serial"),
        format!("file:{}", out.display()),
        s("--quiet"),
    ]);
    assert_eq!(d.code, Some(42), "replay --serial file: {}", d.describe());
    assert_eq!(
        std::fs::read_to_string(&out).expect("replay output file"),
        "exiting with code 42\n"
    );
    assert!(matched_line(&d.stderr).is_some(), "{}", d.describe());
    let d = run(&[s("replay"), s(&trace), s("--serial"), s("null")]);
    assert_eq!(d.code, Some(42), "replay --serial null: {}", d.describe());
    assert_eq!(d.stdout, "", "replay --serial null printed guest output");

    // The instruction budget ends the recording with status 124; replay stops at the same point.
    let trace = scratch.path("budget.rwtrace");
    let rec = run(&record_args(
        &trace,
        &dir.join("build/compute_timer.elf"),
        "stdio",
        &["--max-instructions", "2000000"],
    ));
    assert_eq!(
        rec.code,
        Some(124),
        "record --max-instructions: {}",
        rec.describe()
    );
    assert_eq!(recorded_icount(&rec), 2_000_000, "{}", rec.describe());
    let r = replay_ok(&trace, 124);
    assert_eq!(r.icount, 2_000_000);
    assert_same_output("budget: replay", &rec.stdout, &r.done.stdout);

    // The interactive guest told to fail, with its input from a file.
    let elf = dir.join("build/interactive.elf");
    for code in [0, 1, 42, 200] {
        let input = scratch.path(&format!("in-{code}.txt"));
        let cmd = if code == 0 {
            "quit".to_string()
        } else {
            format!("fail {code}")
        };
        std::fs::write(&input, format!("first\n{cmd}\nnever read\n")).expect("write input");
        let out = scratch.path(&format!("out-{code}.txt"));
        let trace = scratch.path(&format!("fail-{code}.rwtrace"));
        let rec = run(&record_args(
            &trace,
            &elf,
            &format!("file:{}", out.display()),
            &["--serial-input", &s(&input)],
        ));
        assert_eq!(
            rec.code,
            Some(code),
            "record interactive {cmd}: {}",
            rec.describe()
        );
        let seen = std::fs::read_to_string(&out).expect("serial output file");
        let (model, mcode) = interactive_model(&["first".to_string(), cmd.clone()]);
        assert_eq!(mcode, Some(code));
        check_interactive_output(&seen, &model, true);
        let r = replay_ok(&trace, code);
        assert_same_output(&format!("interactive {cmd}: replay"), &seen, &r.done.stdout);
    }
}

/// Records the interactive guest with its input from a file (output to a file); returns the output.
fn record_with_input_file(
    scratch: &Scratch,
    trace: &Path,
    elf: &Path,
    input: &str,
    extra: &[&str],
) -> (Done, String) {
    let inp = scratch.path("input.txt");
    let out = scratch.path("serial-out.txt");
    std::fs::write(&inp, input).expect("write input");
    let mut ex = vec!["--serial-input", inp.to_str().expect("utf-8 path")];
    ex.extend_from_slice(extra);
    let rec = run(&record_args(
        trace,
        elf,
        &format!("file:{}", out.display()),
        &ex,
    ));
    let seen = std::fs::read_to_string(&out).unwrap_or_default();
    (rec, seen)
}

/// Replays `trace`, which must be refused as invalid (exit 2) with a message containing every one
/// of `needles` (the file's name among them).
#[track_caller]
fn assert_refused(trace: &Path, what: &str, needles: &[&str]) {
    let d = replay_raw(trace);
    assert_eq!(d.code, Some(EXIT_INVALID), "{what}: {}", d.describe());
    for needle in needles {
        assert!(
            d.stderr.contains(needle),
            "{what}: the message must contain {needle:?}\n{}",
            d.describe()
        );
    }
}

/// Test 4: damaged, cut, foreign and stale traces are refused (or replayed to the cut) with a clear
/// message; an existing trace is not overwritten without --force.
#[test]
fn bad_traces_are_refused() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("bad");

    // A multi-block trace: frequent state hashes over ~3e8 instructions.
    let good = scratch.path("good.rwtrace");
    let rec = run(&record_args(
        &good,
        &dir.join("build/compute_timer.elf"),
        "stdio",
        &["--check-interval", "20000"],
    ));
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let bytes = std::fs::read(&good).expect("read trace");
    let json = dump_json(&good);
    let mut blocks: Vec<u64> = json
        .iter()
        .filter(|v| v["type"] == "event")
        .filter_map(|v| v["block_offset"].as_u64())
        .collect();
    blocks.dedup();
    assert!(
        blocks.len() >= 3,
        "expected a multi-block trace, got blocks at {blocks:?}"
    );

    // One flipped byte in the middle of a middle block's compressed events.
    let off = blocks[blocks.len() / 2];
    let c = u32::from_le_bytes(
        bytes[off as usize + 4..off as usize + 8]
            .try_into()
            .expect("4 bytes"),
    );
    let mut bad = bytes.clone();
    bad[off as usize + 24 + c as usize / 2] ^= 0x10;
    let flipped = scratch.write("flipped.rwtrace", &bad);
    assert_refused(
        &flipped,
        &format!("flipped byte in the block at offset {off}"),
        &["flipped.rwtrace", &format!("offset {off}")],
    );

    // Cut in half: inside the blocks, so replay runs to the cut and says so.
    let header_len = 18 + u32::from_le_bytes(bytes[10..14].try_into().expect("4 bytes")) as usize;
    let half = bytes.len() / 2;
    assert!(
        half > header_len,
        "trace too small to cut inside the blocks"
    );
    let cut = scratch.write("half.rwtrace", &bytes[..half]);
    let d = replay_raw(&cut);
    assert_eq!(
        d.code,
        Some(EXIT_CUT_SHORT),
        "trace cut in half: {}",
        d.describe()
    );
    let at = cut_short_at(&d);
    assert!(
        at > 0 && at < recorded_icount(&rec),
        "cut at instruction {at}"
    );
    assert!(
        rec.stdout.starts_with(&d.stdout),
        "cut replay output is not a prefix: {}",
        d.describe()
    );

    // Cut inside the header: not replayable at all.
    let cut = scratch.write("header-cut.rwtrace", &bytes[..header_len / 2]);
    assert_refused(
        &cut,
        "trace cut inside its header",
        &["header-cut.rwtrace", "truncated"],
    );

    // Not a trace at all.
    let mut rng = Rng::new(0xbad_f11e);
    let junk: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    let junk_path = scratch.write("junk.rwtrace", &junk);
    assert_refused(
        &junk_path,
        "random bytes",
        &["junk.rwtrace", "not a rewind trace"],
    );
    let d = run(&[s("dump"), s(&junk_path)]);
    assert_eq!(
        d.code,
        Some(EXIT_INVALID),
        "dump of random bytes: {}",
        d.describe()
    );

    // A future format version.
    let mut v2 = bytes.clone();
    v2[8] = 2;
    let v2_path = scratch.write("v2.rwtrace", &v2);
    assert_refused(&v2_path, "version 2", &["v2.rwtrace", "version"]);

    // The guest ELF changed (or vanished) after recording.
    let elf = scratch.path("guest-copy.elf");
    std::fs::copy(dir.join("build/interactive.elf"), &elf).expect("copy ELF");
    let trace = scratch.path("elf.rwtrace");
    let (rec, _) = record_with_input_file(&scratch, &trace, &elf, "hi\nquit\n", &[]);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    replay_ok(&trace, 0);
    let mut e = std::fs::read(&elf).expect("read ELF");
    let mid = e.len() / 2;
    e[mid] ^= 1;
    std::fs::write(&elf, &e).expect("write ELF");
    assert_refused(&trace, "modified ELF", &["guest-copy.elf"]);
    std::fs::remove_file(&elf).expect("remove ELF");
    assert_refused(&trace, "missing ELF", &["guest-copy.elf"]);

    // An existing file is not overwritten without --force.
    let existing = scratch.write("existing.rwtrace", b"precious");
    let exit42 = dir.join("build/exit_42.elf");
    let d = run(&record_args(&existing, &exit42, "null", &[]));
    assert_eq!(
        d.code,
        Some(EXIT_INVALID),
        "overwrite without --force: {}",
        d.describe()
    );
    assert_eq!(
        std::fs::read(&existing).expect("read"),
        b"precious",
        "file was modified"
    );
    assert!(d.stderr.contains("existing.rwtrace"), "{}", d.describe());
    let d = run(&record_args(&existing, &exit42, "null", &["--force"]));
    assert_eq!(d.code, Some(42), "overwrite with --force: {}", d.describe());
    let r = replay_ok(&existing, 42);
    assert!(
        r.done.stdout.contains("exiting with code 42"),
        "{}",
        r.done.describe()
    );
}

/// Records the interactive guest over TCP, sends `lines` (waiting for each echo), waits `linger`,
/// kills the recorder with SIGKILL and replays the trace; returns (socket output, replay).
fn kill9_session(name: &str, lines: &[&str], linger: Duration) -> (String, Done, Done) {
    let scratch = Scratch::new(name);
    let trace = scratch.path("killed.rwtrace");
    let elf = guest_elf("interactive").expect("guest");
    let mut sess = Session::start(&trace, &elf, &Sock::tcp(), &[]);
    sess.wait_for("ready\n");
    for (i, line) in lines.iter().enumerate() {
        sess.send_line(line);
        sess.wait_for(&format!("line {}: ", i + 1));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(linger);
    sess.kill9();
    let (_, seen) = sess.finish();
    let d = replay_raw(&trace);
    let stats = run(&[s("dump"), s(&trace), s("--stats")]);
    (seen, d, stats)
}

/// `<N>` from `recording was cut short at instruction <N>`.
fn cut_short_at(d: &Done) -> u64 {
    d.stderr
        .split("recording was cut short at instruction ")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no `recording was cut short at instruction <N>`: {}",
                d.describe()
            )
        })
}

fn assert_cut_short(seen: &str, d: &Done, stats: &Done) -> u64 {
    assert_eq!(
        d.code,
        Some(EXIT_CUT_SHORT),
        "replay of a recording killed with SIGKILL: {}",
        d.describe()
    );
    let at = cut_short_at(d);
    assert!(
        seen.starts_with(&d.stdout),
        "replayed output is not a prefix of the recorded output\n--- recorded ---\n{seen}\n--- replayed ---\n{}",
        d.stdout
    );
    assert!(
        format!("{}{}", stats.stdout, stats.stderr).contains("TRUNCATED"),
        "dump --stats of a killed recording: {}",
        stats.describe()
    );
    at
}

/// Test 5: a recorder killed with SIGKILL well after its last input leaves a trace that replays to
/// the cut, including every line typed (the recorder hands events to the OS at least once a second).
#[test]
fn sigkill_leaves_a_replayable_prefix() {
    if guests_dir().is_none() {
        return;
    }
    let (seen, d, stats) = kill9_session(
        "kill9",
        &["one", "ticks", "three"],
        Duration::from_millis(1600),
    );
    let at = assert_cut_short(&seen, &d, &stats);
    assert!(at > 0, "cut at instruction {at}");
    assert!(
        d.stdout.contains("line 3: [three] sum "),
        "input typed 1.6 s before the SIGKILL is missing from the trace\n{}",
        d.describe()
    );
}

/// Test 5b: killed before anything but the header reached the file: still "cut short", not a
/// divergence (nothing in the trace contradicts the guest).
#[test]
fn sigkill_before_first_flush_is_cut_short() {
    if guests_dir().is_none() {
        return;
    }
    let (seen, d, stats) = kill9_session("kill9-early", &["one"], Duration::from_millis(0));
    assert_cut_short(&seen, &d, &stats);
}

/// Test 6: SIGINT (130) and SIGTERM (143) end the recording cleanly; the trace replays to the same
/// status and output.
#[test]
fn sigint_and_sigterm_end_recording_cleanly() {
    if guests_dir().is_none() {
        return;
    }
    let scratch = Scratch::new("sigint");
    let elf = guest_elf("interactive").expect("guest");
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let trace = scratch.path(&format!("{sig}.rwtrace"));
        let mut sess = Session::start(&trace, &elf, &Sock::tcp(), &[]);
        sess.wait_for("ready\n");
        sess.send_line("before the signal");
        sess.wait_for("line 1: ");
        sess.send_line("ticks");
        sess.wait_for("line 2: ticks");
        std::thread::sleep(Duration::from_millis(100));
        sess.signal(sig);
        let (rec, seen) = sess.finish();
        assert_eq!(
            rec.code,
            Some(code),
            "record ended by SIG{sig}: {}",
            rec.describe()
        );
        let lines = ["before the signal".to_string(), "ticks".to_string()];
        let (model, _) = interactive_model(&lines);
        check_interactive_output(&seen, &model, true);
        let r = replay_ok(&trace, code);
        assert_same_output(&format!("SIG{sig}: replay"), &seen, &r.done.stdout);
        assert_eq!(r.icount, recorded_icount(&rec), "SIG{sig}: replay icount");
        let json = dump_json(&trace);
        assert!(
            !events_of(&json, "HostShutdown").is_empty(),
            "SIG{sig}: no HostShutdown event in the trace"
        );
    }
    // Interrupted in the middle of pure computation (not while idle).
    let trace = scratch.path("compute-int.rwtrace");
    let mut p = rewind_proc(&record_args(
        &trace,
        &guests_dir()
            .expect("guests")
            .join("build/compute_timer.elf"),
        "stdio",
        &[],
    ));
    // Early enough even for a release build (the whole run is ~3e8 instructions).
    std::thread::sleep(Duration::from_millis(100));
    send_signal(&p, "INT");
    let rec = p.finish_mut(TIMEOUT);
    assert_eq!(
        rec.code,
        Some(130),
        "compute_timer + SIGINT: {}",
        rec.describe()
    );
    let n = recorded_icount(&rec);
    assert!(n > 0 && n < 299_000_000, "interrupted at instruction {n}");
    let r = replay_ok(&trace, 130);
    assert_eq!(r.icount, n, "replay of compute_timer + SIGINT");
    assert_same_output(
        "compute_timer + SIGINT: replay",
        &rec.stdout,
        &r.done.stdout,
    );
}

/// Connects to the QMP monitor on the unix socket `sock` of `proc` and completes the
/// handshake: once it answers, the machine exists and is being served.
fn qmp_handshake(proc: &mut Proc, sock: &Path) -> UnixStream {
    use std::io::{BufRead, BufReader};
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(sock) {
            Ok(c) => break c,
            Err(e) => {
                assert!(
                    !proc.exited() && start.elapsed() < Duration::from_secs(20),
                    "cannot connect to the QMP socket {}: {e}\n{}",
                    sock.display(),
                    proc.finish_mut(TIMEOUT).describe()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone socket"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("QMP greeting");
    assert!(line.contains("\"QMP\""), "QMP greeting: {line:?}");
    (&stream)
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .expect("send qmp_capabilities");
    line.clear();
    reader
        .read_line(&mut line)
        .expect("qmp_capabilities answer");
    assert!(line.contains("\"return\""), "qmp_capabilities: {line:?}");
    stream
}

/// SIGTERM and SIGINT end a paused (`-S`) machine served to a QMP client or gdb: the recording
/// ends with the signal's status at instruction 0 and replays; a paused run exits too.
#[test]
fn signals_end_a_paused_machine() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("paused-signal");
    let elf = dir.join("build/interactive.elf");
    for (sig, code) in [("TERM", 143), ("INT", 130)] {
        let trace = scratch.path(&format!("paused-{sig}.rwtrace"));
        let sock = scratch.path(&format!("qmp-{sig}.sock"));
        let qmp = format!("unix:{}", sock.display());
        let mut p = rewind_proc(&record_args(&trace, &elf, "null", &["--qmp", &qmp, "-S"]));
        let _client = qmp_handshake(&mut p, &sock);
        send_signal(&p, sig);
        let rec = p.finish_mut(Duration::from_secs(10));
        assert_eq!(
            rec.code,
            Some(code),
            "paused record + SIG{sig}: {}",
            rec.describe()
        );
        assert_eq!(recorded_icount(&rec), 0, "paused: no instruction ran");
        let r = replay_ok(&trace, code);
        assert_eq!(r.icount, 0);
        assert!(
            !scratch
                .path(&format!("paused-{sig}.rwtrace.snapshots.tmp-{}", p.pid()))
                .exists(),
            "temporary snapshot file left behind"
        );
    }
    // A paused run with gdb and QMP listening (no gdb client).
    let sock = scratch.path("qmp-run.sock");
    let qmp = format!("unix:{}", sock.display());
    let mut run_cmd = rewind_run_cmd(&elf);
    run_cmd.args(["--qmp", &qmp, "--gdb", "tcp:127.0.0.1:0", "-S"]);
    let mut p = Proc::spawn(run_cmd, None);
    let _client = qmp_handshake(&mut p, &sock);
    send_signal(&p, "TERM");
    let d = p.finish_mut(Duration::from_secs(10));
    assert_eq!(d.code, Some(143), "paused run + SIGTERM: {}", d.describe());
}

/// A closed stderr or stdout (`rewind replay T 2>&1 | head -c 10`) ends nothing but the
/// messages: no panic, the replay's own exit status; a killed recording's temporary snapshot
/// file is removed by the next recording at that path.
#[test]
fn closed_pipes_and_stale_temporaries() {
    use std::process::Stdio;
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("pipes");
    let trace = scratch.path("t.rwtrace");
    let rec = run(&record_args(
        &trace,
        &dir.join("build/exit_42.elf"),
        "stdio",
        &[],
    ));
    assert_eq!(rec.code, Some(42), "record: {}", rec.describe());
    for (what, args) in [
        ("replay", vec![s("replay"), s(&trace)]),
        ("dump", vec![s("dump"), s(&trace)]),
        (
            "replay of a missing file",
            vec![s("replay"), s(scratch.path("nope"))],
        ),
    ] {
        for closed in ["stderr", "stdout", "both"] {
            let mut cmd = common::rewind_cmd();
            cmd.args(&args).stdin(Stdio::null());
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("start rewind");
            // Close the read ends at once: every write to them gets EPIPE.
            let keep_out = child.stdout.take().filter(|_| closed == "stderr");
            let keep_err = child.stderr.take().filter(|_| closed == "stdout");
            let drain = |r: Option<Box<dyn Read + Send>>| {
                std::thread::spawn(move || {
                    let mut v = Vec::new();
                    if let Some(mut r) = r {
                        let _ = r.read_to_end(&mut v);
                    }
                    String::from_utf8_lossy(&v).into_owned()
                })
            };
            let o = drain(keep_out.map(|r| Box::new(r) as Box<dyn Read + Send>));
            let e = drain(keep_err.map(|r| Box::new(r) as Box<dyn Read + Send>));
            let status = child.wait().expect("wait");
            let (o, e) = (o.join().unwrap_or_default(), e.join().unwrap_or_default());
            let expected = match what {
                "replay" => 42,
                "dump" => 0,
                _ => EXIT_INVALID,
            };
            assert_eq!(
                status.code(),
                Some(expected),
                "{what} with {closed} closed: {status:?}\nstdout: {o}\nstderr: {e}"
            );
            assert!(!e.contains("panicked"), "{what} with {closed} closed: {e}");
        }
    }

    // A recording killed with SIGKILL leaves its temporary snapshot file...
    let elf = guest_elf("interactive").expect("guest");
    let killed = scratch.path("killed.rwtrace");
    let mut sess = Session::start(&killed, &elf, &Sock::tcp(), &[]);
    sess.wait_for("ready\n");
    let pid = sess.proc.pid();
    sess.kill9();
    sess.finish();
    let tmp = scratch.path(&format!("killed.rwtrace.snapshots.tmp-{pid}"));
    assert!(
        tmp.exists(),
        "no temporary file {} to clean up",
        tmp.display()
    );
    // ...which the next recording at that path removes (the pid is gone, or reused by a
    // process that is not this recording: then it stays, which this test cannot tell apart).
    let rec = run(&record_args(
        &killed,
        &dir.join("build/exit_42.elf"),
        "null",
        &["--force"],
    ));
    assert_eq!(rec.code, Some(42), "record: {}", rec.describe());
    assert!(
        !tmp.exists() || Path::new(&format!("/proc/{pid}")).exists(),
        "stale {} kept",
        tmp.display()
    );
}

/// Rewrites `src` into `dst` with the same header and footer and the events (End excluded) passed
/// through `edit`: valid checksums, so only replay itself can notice a change.
fn rewrite_trace(src: &Path, dst: &Path, edit: impl FnOnce(&mut Vec<(u64, rewind_log::Event)>)) {
    use rewind_log::{Event, Footer, TraceReader, TraceWriter};
    let mut r = TraceReader::open(src).expect("open trace");
    let header = r.header().clone();
    let footer = r.footer().cloned().expect("finished trace");
    let mut events = Vec::new();
    while let Some(e) = r.next_event().expect("read event") {
        if e.event != Event::End {
            events.push((e.icount, e.event));
        }
    }
    edit(&mut events);
    let mut w = TraceWriter::create_overwrite(dst, &header).expect("create trace");
    for (icount, e) in &events {
        w.push(*icount, e).expect("push event");
    }
    w.finish(&Footer::new(footer.final_icount, footer.final_state_hash))
        .expect("finish trace");
}

/// `<N>` from a divergence report, checking the report's first line.
fn diverged_at(d: &Done) -> u64 {
    assert_eq!(d.code, Some(3), "expected a divergence: {}", d.describe());
    d.stderr
        .lines()
        .find_map(|l| l.strip_prefix("rewind: replay diverged at instruction "))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no `rewind: replay diverged at instruction <N>` line: {}",
                d.describe()
            )
        })
}

/// A trace whose events were changed (with valid checksums) no longer matches the guest: replay
/// reports a divergence (exit 3) at or after the changed event, exactly at a falsified state hash.
#[test]
fn tampered_events_are_divergences() {
    use rewind_log::Event;
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("tamper");
    let good = scratch.path("good.rwtrace");
    let (rec, seen) = record_with_input_file(
        &scratch,
        &good,
        &dir.join("build/interactive.elf"),
        "hello\nrtc\nticks\nquit\n",
        &["--check-interval", "1000"],
    );
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let base = replay_ok(&good, 0);
    assert_eq!(base.done.stdout, seen);

    // The rewriting itself changes nothing.
    let same = scratch.path("same.rwtrace");
    rewrite_trace(&good, &same, |_| {});
    let r = replay_ok(&same, 0);
    assert_eq!((r.icount, &r.hash), (base.icount, &base.hash));

    // A typed character changed: the echo (and the checksum) differ from the recording.
    let t = scratch.path("char.rwtrace");
    let mut at = 0;
    rewrite_trace(&good, &t, |ev| {
        let (i, e) = ev
            .iter_mut()
            .find(|(_, e)| matches!(e, Event::SerialInput { bytes, .. } if bytes.contains(&b'h')))
            .expect("the 'h' of hello");
        at = *i;
        if let Event::SerialInput { bytes, .. } = e {
            for b in bytes.iter_mut().filter(|b| **b == b'h') {
                *b = b'j';
            }
        }
    });
    let n = diverged_at(&replay_raw(&t));
    assert!(
        n >= at && n <= base.icount,
        "changed input at {at}, divergence reported at {n}"
    );

    // A falsified state hash: caught exactly there.
    let t = scratch.path("hash.rwtrace");
    let mut at = 0;
    rewrite_trace(&good, &t, |ev| {
        let hashes: Vec<usize> = ev
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| matches!(e, Event::StateHash { .. }))
            .map(|(k, _)| k)
            .collect();
        assert!(hashes.len() >= 3, "too few state hashes: {}", hashes.len());
        let k = hashes[hashes.len() / 2];
        at = ev[k].0;
        if let Event::StateHash { hash } = &mut ev[k].1 {
            *hash ^= 1;
        }
    });
    assert_eq!(diverged_at(&replay_raw(&t)), at, "falsified state hash");

    // A different RTC reading at start-up (the guest prints it on "rtc").
    let t = scratch.path("clock.rwtrace");
    rewrite_trace(&good, &t, |ev| {
        let (_, e) = ev
            .iter_mut()
            .find(|(_, e)| matches!(e, Event::ClockRead { .. }))
            .expect("a clock read");
        if let Event::ClockRead { value_ns, .. } = e {
            *value_ns += 1_000_000_000;
        }
    });
    diverged_at(&replay_raw(&t));

    // The guest's exit removed from the log.
    let t = scratch.path("noexit.rwtrace");
    rewrite_trace(&good, &t, |ev| {
        ev.retain(|(_, e)| !matches!(e, Event::GuestExit { .. }));
    });
    diverged_at(&replay_raw(&t));
}

/// Replaces the footer JSON of a finished trace with `edit(footer)`, fixing its checksum and the
/// trailer, so only the footer's content is wrong.
fn with_footer(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = bytes.len();
    let at = u64::from_le_bytes(bytes[n - 16..n - 8].try_into().expect("8 bytes")) as usize;
    let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
    let mut json: serde_json::Value =
        serde_json::from_slice(&bytes[at + 8..at + 8 + len]).expect("footer JSON");
    edit(&mut json);
    let json = serde_json::to_vec(&json).expect("footer JSON");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(b"RWFT");
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&(at as u64).to_le_bytes());
    out.extend_from_slice(b"RWNDEND\0");
    out
}

/// Replay and dump of `trace` both exit with `code`, and replay's message (and dump's, when
/// it fails) contains each of `needles`.
#[track_caller]
fn replay_and_dump_agree(trace: &Path, what: &str, code: i32, needles: &[&str]) {
    let started = Instant::now();
    let r = replay_raw(trace);
    let d = run(&[s("dump"), s(trace)]);
    assert_eq!(r.code, Some(code), "{what}: replay: {}", r.describe());
    assert_eq!(d.code, Some(code), "{what}: dump: {}", d.describe());
    for needle in needles {
        assert!(
            r.stderr.contains(needle),
            "{what}: replay must say {needle:?}: {}",
            r.describe()
        );
        if code == EXIT_INVALID {
            assert!(
                d.stderr.contains(needle),
                "{what}: dump must say {needle:?}: {}",
                d.describe()
            );
        }
    }
    assert!(
        !r.stderr.contains("replay matched"),
        "{what}: replay claims a match: {}",
        r.describe()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{what}: took {:?}",
        started.elapsed()
    );
}

/// Replay verifies the whole trace: a footer that is missing (cut short, 4), zeroed,
/// contradicting the events, preceded by stray data, or an event beyond the footer's final
/// instruction count (corrupt, 2, with the offset). `replay` and `dump` agree on each file.
#[test]
fn replay_verifies_the_footer_like_dump() {
    use rewind_log::{Event, Footer, TraceReader, TraceWriter};
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("footer");
    let good = scratch.path("good.rwtrace");
    let rec = run(&record_args(
        &good,
        &dir.join("build/exit_42.elf"),
        "null",
        &["--check-interval", "100"],
    ));
    assert_eq!(rec.code, Some(42), "record: {}", rec.describe());
    replay_ok(&good, 42);
    let bytes = std::fs::read(&good).expect("read trace");
    let n = bytes.len();
    let footer_at = u64::from_le_bytes(bytes[n - 16..n - 8].try_into().expect("8 bytes"));
    let at = format!("offset {footer_at}");
    let final_icount = recorded_icount(&rec);

    let t = scratch.write("nofooter.rwtrace", &bytes[..footer_at as usize]);
    replay_and_dump_agree(
        &t,
        "footer missing",
        EXIT_CUT_SHORT,
        &["nofooter.rwtrace", "cut short"],
    );
    assert!(
        cut_short_at(&replay_raw(&t)) == final_icount,
        "a trace missing only its footer replays to its End"
    );

    let mut z = bytes.clone();
    z[footer_at as usize..].fill(0);
    let t = scratch.write("zeroed.rwtrace", &z);
    replay_and_dump_agree(
        &t,
        "zeroed footer",
        EXIT_INVALID,
        &["zeroed.rwtrace", &at, "footer"],
    );

    let t = scratch.write(
        "contra.rwtrace",
        with_footer(&bytes, |f| f["final_icount"] = (final_icount + 1).into()),
    );
    replay_and_dump_agree(
        &t,
        "final icount + 1",
        EXIT_INVALID,
        &["contra.rwtrace", &at, "footer"],
    );
    let t = scratch.write(
        "counts.rwtrace",
        with_footer(&bytes, |f| f["total_events"] = 1000.into()),
    );
    replay_and_dump_agree(
        &t,
        "event count",
        EXIT_INVALID,
        &["counts.rwtrace", &at, "footer"],
    );

    let mut after = bytes[..footer_at as usize].to_vec();
    after.extend_from_slice(b"garbage");
    after.extend_from_slice(&bytes[footer_at as usize..n - 16]);
    after.extend_from_slice(&(footer_at + 7).to_le_bytes());
    after.extend_from_slice(b"RWNDEND\0");
    let t = scratch.write("after.rwtrace", &after);
    replay_and_dump_agree(
        &t,
        "data after End",
        EXIT_INVALID,
        &["after.rwtrace", &at, "after the End"],
    );

    // Another final state hash: only a replay can tell (a divergence at the end).
    let t = scratch.write(
        "hash.rwtrace",
        with_footer(&bytes, |f| f["final_state_hash"] = 12345.into()),
    );
    assert_eq!(
        diverged_at(&replay_raw(&t)),
        final_icount,
        "final state hash"
    );

    // A state hash at 10^12 in a recording whose footer ends it at ~400 instructions.
    let far = 1_000_000_000_000u64;
    let t = scratch.path("far.rwtrace");
    let mut r = TraceReader::open(&good).expect("open trace");
    let mut w = TraceWriter::create(&t, r.header()).expect("create trace");
    while let Some(e) = r.next_event().expect("read event") {
        if e.event != Event::End {
            w.push(e.icount, &e.event).expect("push event");
        }
    }
    w.flush().expect("flush");
    // The far event starts a block of its own, right after the flushed ones.
    let far_block = std::fs::metadata(&t).expect("stat").len();
    w.push(far, &Event::StateHash { hash: 0 })
        .expect("push event");
    w.finish(&Footer::new(far, None)).expect("finish trace");
    let far_bytes = std::fs::read(&t).expect("read trace");
    std::fs::write(
        &t,
        with_footer(&far_bytes, |f| f["final_icount"] = final_icount.into()),
    )
    .expect("write trace");
    replay_and_dump_agree(
        &t,
        "state hash at 10^12",
        EXIT_INVALID,
        &[
            "far.rwtrace",
            &format!("offset {far_block}"),
            "past the footer's final icount",
        ],
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[a-zA-Z0-9 ,.!]{0,30}".prop_map(|t| format!("m {t}")),
            1 => Just("ticks".to_string()),
            1 => Just("rtc".to_string()),
            1 => Just(String::new()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 8,
            max_shrink_iters: 8,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Test 7: random input schedules, over the socket (timing matters) or from a file, replay to
        /// the same output, instruction count and state hash.
        #[test]
        fn random_schedules_replay_exactly(
            steps in proptest::collection::vec((0u64..40, line()), 1..7),
            end in prop_oneof![Just(0i32), Just(0i32), 1i32..100],
            via_socket in any::<bool>(),
        ) {
            if guests_dir().is_none() {
                return Ok(());
            }
            let scratch = Scratch::new("prop");
            let trace = scratch.path("p.rwtrace");
            let mut schedule = steps.clone();
            let last = if end == 0 { "quit".to_string() } else { format!("fail {end}") };
            schedule.push((5, last));
            let lines: Vec<String> = schedule.iter().map(|(_, l)| l.clone()).collect();
            let (model, code) = interactive_model(&lines);
            let (rec, seen) = if via_socket {
                record_interactive_socket(&trace, &Sock::tcp(), &schedule)
            } else {
                let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
                let elf = guest_elf("interactive").expect("guest");
                record_with_input_file(&scratch, &trace, &elf, &input, &[])
            };
            prop_assert_eq!(rec.code, code, "record: {}", rec.describe());
            check_interactive_output(&seen, &model, true);
            let r1 = replay_ok(&trace, end);
            prop_assert_eq!(&r1.done.stdout, &seen);
            prop_assert_eq!(r1.icount, recorded_icount(&rec));
            let r2 = replay_ok(&trace, end);
            prop_assert_eq!(&r2.done.stdout, &seen);
            prop_assert_eq!((r2.icount, &r2.hash), (r1.icount, &r1.hash));
            if let Some(h) = footer_hash(&dump_json(&trace)) {
                prop_assert_eq!(&r1.hash, &h);
            }
        }
    }
}
