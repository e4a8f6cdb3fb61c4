//! Debian's OpenSBI + Linux 6.12 + our busybox initramfs, recorded over a TCP serial socket while
//! the test types shell commands at random host moments, then replayed three times.
//!
//! The guest assets come from `scripts/linux-guest.sh` (Debian packages fetched with apt; see
//! `docs/linux.md`). When they are missing the test runs the script; if that fails, the test skips
//! with a notice, unless `REWIND_REQUIRE_LINUX` is set (CI sets it), which makes it a failure.

#[allow(dead_code)]
mod common;

use common::linux::{boot_args, linux_assets, APPEND};
use common::{assert_same_output, repo_root, rewind_proc, run_rewind, Done, Proc, Scratch};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one boot (record or replay) may take before the test gives up: a boot to the shell
/// is about 1e9 instructions, a few seconds in the test profile; this leaves room for slow CI.
const TIMEOUT: Duration = Duration::from_secs(240);

/// How long the guest may take to print something the test waits for (the first prompt needs
/// the whole boot).
const WAIT: Duration = Duration::from_secs(180);

/// busybox ash's prompt for root in `/` (`\w \$ `; `/init` runs with HOME=/, so `\w` is `~`).
const PROMPT: &str = "~ # ";

/// SHA-256 of `"hello\n"`.
const HELLO_SHA256: &str = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// Small deterministic PRNG (xorshift64*) for the typing moments; the seed is printed.
struct Rng(u64);

impl Rng {
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

/// A recording in progress with the test attached to its serial socket.
struct Session {
    proc: Proc,
    conn: TcpStream,
    /// Every byte received from the socket, in order.
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Session {
    /// Starts `rewind ARGS` (which listens on 127.0.0.1:`port`) and connects to it.
    fn start(args: &[String], port: u16) -> Session {
        let mut proc = rewind_proc(args);
        let start = Instant::now();
        let conn = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                // A connect to a port in the ephemeral range with no listener yet can connect
                // the socket to itself (TCP simultaneous open): that is not rewind.
                Ok(c) if c.local_addr().ok() == c.peer_addr().ok() => {
                    drop(c);
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(c) => break c,
                Err(e) => {
                    if proc.exited() || start.elapsed() > Duration::from_secs(30) {
                        let done = proc.finish(TIMEOUT);
                        panic!("cannot connect to port {port}: {e}\n{}", done.describe());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        conn.set_nodelay(true).expect("TCP_NODELAY");
        let (output, reader) =
            common::collect_in_background(conn.try_clone().expect("clone socket"));
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

    /// Waits until `needle` has appeared `count` times in the socket output.
    fn wait_for(&mut self, needle: &str, count: usize) {
        let start = Instant::now();
        while self.output().matches(needle).count() < count {
            if start.elapsed() > WAIT || self.proc.exited() {
                let out = self.output();
                let _ = self.proc.kill();
                panic!(
                    "guest never printed {needle:?} {count} times; socket output (tail):\n{}\nrecorder: {}",
                    common::tail(&out, 30),
                    self.proc.finish_mut(TIMEOUT).describe()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.conn
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("sending {:?}: {e}", String::from_utf8_lossy(bytes)));
    }

    /// Waits for the recorder to exit; returns its result and the raw bytes it sent to the socket.
    fn finish(mut self) -> (Done, Vec<u8>) {
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
        let out = self.output.lock().expect("output lock").clone();
        (done, out)
    }
}

/// A finished replay: stdout as raw bytes (compared exactly) and as text, stderr, exit status.
struct Replay {
    raw_stdout: Vec<u8>,
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

impl Replay {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout (tail) ---\n{}\n--- stderr ---\n{}",
            self.code,
            common::tail(&self.stdout, 20),
            self.stderr
        )
    }
}

/// `rewind replay TRACE` with its stdout kept byte for byte; killed after [`TIMEOUT`].
fn replay_raw(trace: &Path) -> Replay {
    let mut child = common::rewind_cmd()
        .arg("replay")
        .arg(trace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rewind replay");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for rewind replay") {
            break st;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("rewind replay timed out after {TIMEOUT:?}\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let raw_stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    Replay {
        stdout: String::from_utf8_lossy(&raw_stdout).into_owned(),
        raw_stdout,
        stderr,
        code: status.code(),
    }
}

/// What rewind says when the kernel image does not exist: exit 2 naming the file, and the docs
/// say which script makes the assets. Needs no assets.
#[test]
fn missing_linux_assets_are_named() {
    let missing = repo_root().join("assets/linux/does-not-exist");
    let d = run_rewind(
        &[s("run"), s("--kernel"), s(&missing)],
        Duration::from_secs(30),
    );
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr.contains("assets/linux/does-not-exist"),
        "the error does not name the file:\n{}",
        d.describe()
    );
    let doc = std::fs::read_to_string(repo_root().join("docs/linux.md")).expect("docs/linux.md");
    assert!(
        doc.contains("scripts/linux-guest.sh") && doc.contains("assets/linux/"),
        "docs/linux.md must say that scripts/linux-guest.sh makes assets/linux/"
    );
}

/// `rewind bench linux` where there is no `assets/linux/`: exit 2, naming the missing files and
/// the script that makes them. Needs no assets.
#[test]
fn bench_linux_without_assets_names_the_script() {
    let scratch = Scratch::new("bench-missing");
    let out = common::rewind_cmd()
        .args(["bench", "linux", "--no-qemu"])
        .current_dir(scratch.path(""))
        .stdin(Stdio::null())
        .output()
        .expect("run rewind bench linux");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("scripts/linux-guest.sh") && stderr.contains("assets/linux/Image"),
        "the error does not name the script and the missing file:\n{stderr}"
    );
}

/// Boot Linux to the shell while recording, type commands at random moments, power off; then
/// three replays reproduce the socket output byte for byte with the same final state.
#[test]
fn linux_shell_session_replays_exactly() {
    let Some(assets) = linux_assets() else { return };
    let scratch = Scratch::new("shell");
    let trace = scratch.path("linux.rwtrace");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port();
    // REWIND_LINUX_SEED=<hex> repeats a printed seed's choices (the host's timing still varies).
    let seed = std::env::var("REWIND_LINUX_SEED")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x11_4e75 ^ u64::from(std::process::id()) ^ u64::from(port) << 20);
    let mut rng = Rng(seed.max(1));
    eprintln!("linux: seed {seed:#x}");

    let mut args = vec![s("record"), s("-o"), s(&trace)];
    args.extend(boot_args(&assets));
    args.extend([s("--append"), s(APPEND), s("--serial")]);
    args.push(format!("tcp:127.0.0.1:{port},server"));

    let commands = [
        "for i in 1 2 3; do echo loop $i; done",
        "date",
        "cat /proc/interrupts",
        "echo hello > /tmp/f; sha256sum /tmp/f",
        "dmesg | tail -3",
        "echo hello-rewind",
        "poweroff -f",
    ];

    let t0 = Instant::now();
    let mut sess = Session::start(&args, port);
    sess.wait_for("type 'poweroff -f' to stop", 1);
    for (i, cmd) in commands.iter().enumerate() {
        // Type only at a prompt: input sent before the shell has set up the tty can be lost
        // (docs/linux.md), and then the recording would not show the command at all.
        sess.wait_for(PROMPT, i + 1);
        let line = format!("{cmd}\n");
        let bytes = line.as_bytes();
        // A random pause, then the line in one to three pieces with random gaps.
        let pause = rng.below(400);
        let cut1 = rng.below(bytes.len() as u64 + 1) as usize;
        let cut2 = cut1 + rng.below((bytes.len() - cut1) as u64 + 1) as usize;
        let gaps = [rng.below(60), rng.below(60)];
        eprintln!("linux: {pause} ms, then {cmd:?} cut at {cut1}/{cut2}, gaps {gaps:?} ms");
        std::thread::sleep(Duration::from_millis(pause));
        sess.send(&bytes[..cut1]);
        std::thread::sleep(Duration::from_millis(gaps[0]));
        sess.send(&bytes[cut1..cut2]);
        std::thread::sleep(Duration::from_millis(gaps[1]));
        sess.send(&bytes[cut2..]);
    }
    let (rec, recorded) = sess.finish();
    let rec_wall = t0.elapsed();
    let text = String::from_utf8_lossy(&recorded).into_owned();
    assert_eq!(
        rec.code,
        Some(0),
        "record: {}\nsocket output (tail):\n{}",
        rec.describe(),
        common::tail(&text, 40)
    );
    let icount = common::recorded_icount(&rec.stderr)
        .unwrap_or_else(|| panic!("record printed no icount line\n{}", rec.describe()));
    eprintln!(
        "linux: record: {icount} instructions, {} bytes of console output, {:.1?} wall",
        recorded.len(),
        rec_wall
    );

    // The session from the first prompt on, for the test log (escape sequences made visible).
    let session = text.find(PROMPT).map_or("", |i| &text[i..]);
    eprintln!(
        "linux: shell session:\n{}",
        session.escape_debug().to_string().replace("\\r\\n", "\n")
    );

    // What the commands must have printed. Typed lines are echoed too ("echo loop $i"), so the
    // loop lines are looked for as whole lines.
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    for want in ["loop 1", "loop 2", "loop 3"] {
        assert!(
            lines.contains(&want),
            "no line {want:?} in the output:\n{text}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(HELLO_SHA256) && l.ends_with("/tmp/f")),
        "no `{HELLO_SHA256}  /tmp/f` line in the output:\n{text}"
    );
    assert!(
        lines.iter().any(|l| l.trim() == "CPU0"),
        "no /proc/interrupts header (`CPU0`) in the output:\n{text}"
    );
    assert!(
        text.contains("reboot: Power down"),
        "the kernel did not power down:\n{}",
        common::tail(&text, 20)
    );

    let mut first: Option<(u64, String)> = None;
    for i in 1..=3 {
        let t = Instant::now();
        let rep = replay_raw(&trace);
        let wall = t.elapsed();
        assert_eq!(rep.code, Some(0), "replay {i}: {}", rep.describe());
        let (n, hash) = common::replay_matched_line(&rep.stderr).unwrap_or_else(|| {
            panic!(
                "replay {i} did not print `rewind: replay matched the recording: <N> instructions, state <hash>`\n{}",
                rep.describe()
            )
        });
        eprintln!("linux: replay {i}: {n} instructions, state {hash}, {wall:.1?} wall");
        if rep.raw_stdout != recorded {
            // Show where, as text, then fail on the bytes in any case.
            assert_same_output(
                &format!("replay {i} stdout vs the socket stream while recording"),
                &text,
                &rep.stdout,
            );
            panic!(
                "replay {i} stdout differs from the socket stream in its bytes ({} vs {} bytes)",
                rep.raw_stdout.len(),
                recorded.len()
            );
        }
        assert_eq!(n, icount, "replay {i}: icount vs the recording's");
        match &first {
            Some(f) => assert_eq!(&(n, hash), f, "replay {i} vs replay 1"),
            None => first = Some((n, hash)),
        }
    }

    // Seeking in the Linux recording through its snapshots: the same state at the same
    // instruction whichever way it is reached, and a replay started late ends the same.
    let (a, b) = (icount / 4 * 3 + 17, icount / 3);
    common::assert_seek_back_agrees(&trace, a, b, &[], TIMEOUT);
    assert_eq!(
        common::replay_from(&trace, icount / 10 * 9, TIMEOUT),
        first,
        "--from vs a full replay"
    );

    let stats = run_rewind(&[s("dump"), s("--stats"), s(&trace)], TIMEOUT);
    assert_eq!(stats.code, Some(0), "dump --stats: {}", stats.describe());
    let serial_events: u64 = stats
        .stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("SerialInput")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no SerialInput row in dump --stats:\n{}", stats.stdout));
    assert!(
        serial_events > 0,
        "no SerialInput events:\n{}",
        stats.stdout
    );
    eprintln!("linux: dump --stats:\n{}", stats.stdout);

    typed_commands_show_in_the_strace(&trace, &commands);
}

/// `rewind analyze syscalls` of the typed session: after the serial input that typed
/// `echo hello-rewind` (and before the next command), the shell's `write(1, ..., 13)` of
/// "hello-rewind\n" returns 13; the loop's three "loop N\n" are three writes of 7 bytes.
fn typed_commands_show_in_the_strace(trace: &Path, commands: &[&str]) {
    // Where each command's last byte (its newline) was typed, from the log.
    let mut r = rewind_log::TraceReader::open(trace).expect("open the trace");
    let mut typed: Vec<u8> = Vec::new();
    let mut at: Vec<u64> = Vec::new();
    while let Some(e) = r.next_event().expect("read the trace") {
        if let rewind_log::Event::SerialInput { bytes, .. } = e.event {
            at.extend(std::iter::repeat_n(e.icount, bytes.len()));
            typed.extend(bytes);
        }
    }
    let text = String::from_utf8_lossy(&typed).into_owned();
    let mut from = 0;
    let mut entered = Vec::new();
    for cmd in commands {
        let line = format!("{cmd}\n");
        let i = text[from..]
            .find(&line)
            .unwrap_or_else(|| panic!("{cmd:?} was not typed: {text:?}"))
            + from;
        from = i + line.len();
        entered.push(at[from - 1]);
    }
    let d = run_rewind(
        &[
            s("analyze"),
            s("syscalls"),
            s(trace),
            s("--json"),
            s("-j"),
            s("2"),
        ],
        TIMEOUT,
    );
    assert_eq!(d.code, Some(0), "analyze syscalls: {}", d.describe());
    let calls: Vec<serde_json::Value> = d
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    // Writes to fd 1 of `len` bytes between the typing of command `k` and the next.
    let writes = |k: usize, len: u64| -> Vec<&serde_json::Value> {
        let (lo, hi) = (entered[k], entered.get(k + 1).copied().unwrap_or(u64::MAX));
        calls
            .iter()
            .filter(|c| {
                let i = c["icount"].as_u64().unwrap_or(0);
                c["name"] == "write" && c["args"][0] == 1 && c["args"][2] == len && lo < i && i < hi
            })
            .collect()
    };
    let hello = commands
        .iter()
        .position(|c| *c == "echo hello-rewind")
        .expect("the command");
    let w = writes(hello, 13);
    assert_eq!(w.len(), 1, "write(1, ..., 13) of echo hello-rewind: {w:?}");
    assert_eq!(w[0]["ret"], 13, "{}", w[0]);
    eprintln!("linux: echo hello-rewind: {}", w[0]);
    let w = writes(0, 7);
    assert_eq!(w.len(), 3, "the loop's writes: {w:?}");
    assert!(w.iter().all(|c| c["ret"] == 7), "{w:?}");
}

/// `reboot -f` resets the machine as QEMU's `virt` does (OpenSBI asks the syscon/test device for
/// a reset): firmware and kernel boot a second time, and `poweroff -f` then ends the run with 0.
#[test]
fn linux_reboot_boots_again() {
    let Some(assets) = linux_assets() else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port();
    let mut args = vec![s("run")];
    args.extend(boot_args(&assets));
    args.extend([s("--append"), s(APPEND), s("--serial")]);
    args.push(format!("tcp:127.0.0.1:{port},server"));

    let t0 = Instant::now();
    let mut sess = Session::start(&args, port);
    sess.wait_for("type 'poweroff -f' to stop", 1);
    sess.wait_for(PROMPT, 1);
    // Let ash finish its cursor-position query after the prompt: bytes typed into that
    // exchange can be swallowed, as with a person typing too fast.
    std::thread::sleep(Duration::from_millis(500));
    sess.send(b"reboot -f\n");
    // The second boot: the kernel and /init start over, up to a new prompt.
    sess.wait_for("type 'poweroff -f' to stop", 2);
    sess.wait_for(PROMPT, 2);
    // Let ash finish its cursor-position query after the prompt: bytes typed into that
    // exchange can be swallowed, as with a person typing too fast.
    std::thread::sleep(Duration::from_millis(500));
    sess.send(b"poweroff -f\n");
    let (done, out) = sess.finish();
    let text = String::from_utf8_lossy(&out).into_owned();
    eprintln!("linux: reboot test took {:.1?}", t0.elapsed());
    assert_eq!(
        done.code,
        Some(0),
        "run: {}\nsocket output (tail):\n{}",
        done.describe(),
        common::tail(&text, 30)
    );
    assert!(
        text.contains("reboot: Restarting system"),
        "the kernel did not restart:\n{}",
        common::tail(&text, 40)
    );
    for (what, n) in [
        ("OpenSBI v", 2),
        ("Linux version ", 2),
        ("=== rewind linux guest:", 2),
        ("reboot: Power down", 1),
    ] {
        assert_eq!(
            text.matches(what).count(),
            n,
            "{what:?} should appear {n} times in the console output:\n{}",
            common::tail(&text, 40)
        );
    }
}

/// The lines of `/proc/cpuinfo` the scripted `/init` prints (`cat /proc/cpuinfo | head`).
fn cpuinfo_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| !l.starts_with("processor"))
        .take_while(|l| l.contains(':'))
        .map(str::to_string)
        .collect()
}

/// `rewind run --stats` of the scripted Linux boot with CPU `cpu`: (console, SBI timer calls).
fn scripted_boot(assets: &Path, cpu: &str) -> (String, u64) {
    let mut args = vec![s("run"), s("--cpu"), s(cpu), s("--stats")];
    args.extend(boot_args(assets));
    args.extend([s("--append"), format!("{APPEND} rewind.test=1")]);
    args.extend([s("--serial"), s("stdio")]);
    let done = run_rewind(&args, TIMEOUT);
    assert_eq!(done.code, Some(0), "--cpu {cpu}: {}", done.describe());
    assert!(
        done.stdout.contains("--- rewind.test end ---"),
        "--cpu {cpu}: the scripted test did not finish\n{}",
        common::tail(&done.stdout, 30)
    );
    let calls = done
        .stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("sbi timer calls (all kinds)")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("--cpu {cpu}: no SBI timer line in\n{}", done.stderr));
    (done.stdout, calls)
}

/// Linux sees the CPU QEMU 10 shows it (`/proc/cpuinfo` line for line, ISA extensions
/// included), and with Sstc it programs its timer through `stimecmp`: no SBI `set_timer` calls,
/// where the same boot without Sstc makes one per timer tick.
#[test]
fn linux_sees_qemu10s_cpu_and_uses_sstc() {
    let Some(assets) = linux_assets() else { return };
    let (ours, with_sstc) = scripted_boot(&assets, "rv64");
    let (_, without_sstc) = scripted_boot(&assets, "rv64,sstc=off");
    eprintln!("linux: SBI timer calls: {with_sstc} with Sstc, {without_sstc} without");
    assert_eq!(
        with_sstc, 0,
        "Linux made SBI timer calls although the CPU has Sstc"
    );
    assert!(
        without_sstc > 50,
        "without Sstc Linux should program its timer through SBI ({without_sstc} calls)"
    );
    let info = cpuinfo_lines(&ours);
    let isa = info
        .iter()
        .find(|l| l.starts_with("isa"))
        .unwrap_or_else(|| panic!("no isa line in /proc/cpuinfo:\n{}", info.join("\n")));
    for ext in ["zba", "zbb", "zbs", "zicboz", "zfa", "sstc"] {
        assert!(isa.contains(ext), "{ext} missing from {isa}");
    }
    if !common::have_tool("qemu-system-riscv64") {
        return;
    }
    let mut cmd = Command::new("qemu-system-riscv64");
    cmd.args(["-M", "virt", "-m", "512M", "-cpu", common::QEMU_CPU])
        .args(["-nographic", "-icount", "shift=0", "-bios"])
        .arg(assets.join("fw_jump.bin"))
        .arg("-kernel")
        .arg(assets.join("Image"))
        .arg("-initrd")
        .arg(assets.join("initrd.cpio.gz"))
        .arg("-append")
        .arg(format!("{APPEND} rewind.test=1"));
    let q = Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(q.code, Some(0), "QEMU: {}", q.describe());
    assert_eq!(
        info,
        cpuinfo_lines(&q.stdout),
        "/proc/cpuinfo under rewind vs QEMU 10"
    );
}
