//! Helpers shared by rewind's CLI integration tests: the repository, tool detection, building the
//! guests, running processes with input and a timeout, comparing outputs, scratch directories.
//!
//! Each test file includes this with `#[allow(dead_code)] mod common;` (not every file uses all of it).

pub mod linux;
pub mod rng;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The test binary's name (`guests`, `record_replay`, ...), for skip notices and scratch dirs.
const TEST_NAME: &str = env!("CARGO_CRATE_NAME");

// ---------------------------------------------------------------------------------------------
// Repository, tools, guests

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Whether `name --version` runs and succeeds.
pub fn have_tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `REWIND_REQUIRE_GUESTS` is set (CI sets it): missing tools then fail instead of skipping.
pub fn required() -> bool {
    std::env::var_os("REWIND_REQUIRE_GUESTS").is_some()
}

/// Reports a missing prerequisite (`missing` completes "… is set but "): a failure when
/// [`required`], otherwise a skip notice.
pub fn skip_because(missing: &str) {
    assert!(!required(), "REWIND_REQUIRE_GUESTS is set but {missing}");
    eprintln!(
        "SKIPPING {TEST_NAME} tests: {missing} (set REWIND_REQUIRE_GUESTS=1 to make this an error)"
    );
}

/// Whether every one of `tools` is installed; the first missing one goes to [`skip_because`].
pub fn have_tools(tools: &[&str]) -> bool {
    match tools.iter().find(|t| !have_tool(t)) {
        Some(t) => {
            skip_because(&format!("{t} is not on PATH"));
            false
        }
        None => true,
    }
}

/// Builds all guests once per test process; `None` means "skip" (no toolchain, not required).
pub fn guests_dir() -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !have_tools(&["riscv64-unknown-elf-gcc"]) {
                return None;
            }
            let root = repo_root();
            let mut build = Command::new("bash");
            build.arg(root.join("guests/build.sh"));
            run_ok(&mut build, "guests/build.sh");
            Some(root.join("guests"))
        })
        .clone()
}

/// `guests/build/NAME.elf`, if the guests could be built.
pub fn guest_elf(name: &str) -> Option<PathBuf> {
    guests_dir().map(|d| d.join("build").join(format!("{name}.elf")))
}

/// The QEMU-generated reference output `expected/NAME.txt` of the guests in `dir`.
pub fn expected_output(dir: &Path, name: &str) -> String {
    let path = dir.join("expected").join(format!("{name}.txt"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Runs a build step to completion; `what` names it in the failure message, which shows its output.
#[track_caller]
pub fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The number after `prefix` on the first line of `text` that starts with it.
pub fn number_after(text: &str, prefix: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|t| t.parse().ok())
}

/// `(N, hash)` from `rewind: replay matched the recording: <N> instructions, state <16 hex>`, the
/// hash in lowercase.
pub fn replay_matched_line(stderr: &str) -> Option<(u64, String)> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("rewind: replay matched the recording: ")?;
        let (n, rest) = rest.split_once(" instructions, state ")?;
        let hash = rest.trim();
        let n = n.parse().ok()?;
        (hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| (n, hash.to_ascii_lowercase()))
    })
}

/// Output and exit status of a finished process.
#[derive(Debug, Clone)]
pub struct Done {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    /// The process was killed for running too long.
    pub timed_out: bool,
}

impl Done {
    /// Exit status, the tail of stdout and all of stderr, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout (tail) ---\n{}\n--- stderr ---\n{}",
            self.code,
            tail(&self.stdout, 20),
            self.stderr
        )
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

fn joined(h: Option<JoinHandle<Vec<u8>>>) -> String {
    let bytes = h.and_then(|h| h.join().ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A running process: its stdin fed from a buffer (or null), its stdout going to an unnamed
/// temporary file and its stderr being collected.
///
/// stdout is a file, not a pipe: QEMU's UART drops a character after a few failed writes to a
/// full pipe, so on a loaded machine a slow reader made the oracle's output lose lines.
pub struct Proc {
    child: Child,
    writer: Option<JoinHandle<()>>,
    out: Option<std::fs::File>,
    err: Option<JoinHandle<Vec<u8>>>,
    what: String,
}

impl Proc {
    /// Starts `cmd` with `input` written to its stdin (then closed), or with a null stdin.
    pub fn spawn(mut cmd: Command, input: Option<&[u8]>) -> Proc {
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let out_file = tempfile::tempfile().expect("a temporary file for stdout");
        let child_out = out_file
            .try_clone()
            .expect("a second handle to stdout's file");
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::from(child_out))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let writer = match (child.stdin.take(), input) {
            (Some(mut stdin), Some(input)) => {
                let input = input.to_vec();
                Some(std::thread::spawn(move || {
                    // The guest may exit before reading everything: a broken pipe is fine.
                    let _ = stdin.write_all(&input);
                }))
            }
            _ => None,
        };
        let err = child.stderr.take().map(read_all);
        Proc {
            child,
            writer,
            out: Some(out_file),
            err,
            what: format!("{cmd:?}"),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills the process (SIGKILL).
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }

    /// Waits for the process, killing it after `timeout` (then `timed_out` is set), and returns
    /// what it printed.
    pub fn wait(&mut self, timeout: Duration) -> Done {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break Some(s);
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        let mut stdout = Vec::new();
        if let Some(mut f) = self.out.take() {
            use std::io::{Seek, SeekFrom};
            let _ = f.seek(SeekFrom::Start(0));
            let _ = f.read_to_end(&mut stdout);
        }
        Done {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: joined(self.err.take()),
            code: status.and_then(|s| s.code()),
            timed_out: status.is_none(),
        }
    }

    /// Like [`Proc::wait`], but running longer than `timeout` fails the test.
    pub fn finish_mut(&mut self, timeout: Duration) -> Done {
        let done = self.wait(timeout);
        assert!(
            !done.timed_out,
            "{} timed out after {timeout:?}\n{}",
            self.what,
            done.describe()
        );
        done
    }

    /// [`Proc::finish_mut`] for a process that is no longer needed.
    pub fn finish(mut self, timeout: Duration) -> Done {
        self.finish_mut(timeout)
    }
}

/// Runs `cmd` with `input` on its stdin (then closed); running longer than `timeout` fails the test.
pub fn run_with_input(cmd: Command, input: &[u8], timeout: Duration) -> Done {
    Proc::spawn(cmd, Some(input)).finish(timeout)
}

/// A command for the `rewind` binary under test.
pub fn rewind_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
}

/// Starts `rewind ARGS` with a null stdin.
pub fn rewind_proc<S: AsRef<OsStr>>(args: &[S]) -> Proc {
    let mut cmd = rewind_cmd();
    cmd.args(args);
    Proc::spawn(cmd, None)
}

/// Runs `rewind ARGS` with a null stdin; running longer than `timeout` fails the test.
pub fn run_rewind<S: AsRef<OsStr>>(args: &[S], timeout: Duration) -> Done {
    rewind_proc(args).finish(timeout)
}

/// `rewind run --bios none --kernel ELF --serial stdio`.
pub fn rewind_run_cmd(elf: &Path) -> Command {
    let mut cmd = rewind_cmd();
    cmd.args(["run", "--bios", "none", "--kernel"])
        .arg(elf)
        .args(["--serial", "stdio"]);
    cmd
}

/// The oracle's CPU: QEMU 10's default `rv64` without the hypervisor extension, which is what
/// rewind's default CPU implements (`CpuFeatures::qemu10_rv64`).
pub const QEMU_CPU: &str = "rv64,h=false";

/// QEMU's `virt` machine running `elf` without firmware at one instruction per ns.
/// `-serial stdio -monitor none` passes piped stdin through without the `-nographic` mux (which
/// did not deliver piped input to the UART in our checks).
pub fn qemu_cmd(elf: &Path) -> Command {
    qemu_cmd_cpu(elf, QEMU_CPU)
}

/// [`qemu_cmd`] with the CPU `cpu` (QEMU's `-cpu` spelling, which rewind's `--cpu` shares).
pub fn qemu_cmd_cpu(elf: &Path, cpu: &str) -> Command {
    let mut cmd = Command::new("qemu-system-riscv64");
    cmd.args([
        "-machine", "virt", "-cpu", cpu, "-bios", "none", "-serial", "stdio",
    ])
    .args(["-monitor", "none", "-display", "none", "-icount", "shift=0"])
    .arg("-kernel")
    .arg(elf);
    cmd
}

/// Asserts two outputs are equal, reporting the first differing line with context.
pub fn assert_same_output(what: &str, expected: &str, actual: &str) {
    if expected == actual {
        return;
    }
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(a.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(3);
    let ctx = |v: &[&str]| -> String {
        v.iter()
            .enumerate()
            .skip(from)
            .take(8)
            .map(|(i, l)| format!("{:6}: {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what}: outputs differ at line {} ({} vs {} lines, {} vs {} bytes)\n--- expected ---\n{}\n--- actual ---\n{}",
        first + 1,
        e.len(),
        a.len(),
        expected.len(),
        actual.len(),
        ctx(&e),
        ctx(&a)
    );
}

// ---------------------------------------------------------------------------------------------
// Scratch files

/// A scratch directory unique to one test, removed when dropped.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    /// Creates `$TMPDIR/rewind-<test binary>-<name>-<random>`.
    pub fn new(name: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("rewind-{TEST_NAME}-{name}-"))
            .tempdir()
            .expect("create scratch dir");
        Scratch(dir)
    }

    /// The path of `file` inside the directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.0.path().join(file)
    }

    /// Writes `bytes` to `file` inside the directory and returns its path.
    pub fn write(&self, file: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

/// Bytes a background thread collects from a socket (or any reader) until it closes.
pub type Collected = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Start a thread that appends everything `r` yields to the returned buffer until EOF or error.
pub fn collect_in_background(mut r: impl Read + Send + 'static) -> (Collected, JoinHandle<()>) {
    let output: Collected = Default::default();
    let sink = std::sync::Arc::clone(&output);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .expect("output lock")
                    .extend_from_slice(&buf[..n]),
            }
        }
    });
    (output, reader)
}

/// A server process (a debuggee) killed when the test ends, even by a failed assertion.
pub struct Server(pub Option<Proc>);

impl Server {
    /// Waits for `client` to finish (killed after `timeout`). When the server exits first (it
    /// failed to start, or crashed), the client gets a few seconds rather than the full timeout.
    pub fn wait_for(&mut self, mut client: Proc, timeout: Duration) -> Done {
        let start = Instant::now();
        while !client.exited() && start.elapsed() < timeout {
            if self.0.as_mut().is_some_and(|p| p.exited()) {
                return client.wait(Duration::from_secs(5));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        client.wait(timeout.saturating_sub(start.elapsed()))
    }

    /// Waits for the process to exit by itself, killing it after `timeout`.
    pub fn finish(mut self, timeout: Duration) -> Done {
        self.0.take().expect("server process").wait(timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(p) = &mut self.0 {
            let _ = p.kill();
        }
    }
}

/// The instruction count of `rewind: recorded N instructions to FILE (...)` on a recording's
/// stderr.
pub fn recorded_icount(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = l.strip_prefix("rewind: recorded ")?;
        let (n, rest) = rest.split_once(' ')?;
        rest.starts_with("instructions to ")
            .then(|| n.parse().ok())?
    })
}

/// The `state` lines `rewind replay --stop-at` prints, in order.
pub fn stop_states(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("state "))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Replays `trace` stopping at `a`, then `b`, then `a` again (`--stop-at a,b,a`, plus `extra`
/// replay options) and asserts the state at `a` is the same reached forwards and after seeking
/// back from `b`, and differs at `b`.
pub fn assert_seek_back_agrees(trace: &Path, a: u64, b: u64, extra: &[&str], timeout: Duration) {
    let mut args: Vec<OsString> = vec!["replay".into(), trace.into()];
    args.extend(["--serial", "null"].map(OsString::from));
    args.extend(extra.iter().map(OsString::from));
    args.extend(["--stop-at".into(), format!("{a},{b},{a}").into()]);
    let stops = run_rewind(&args, timeout);
    assert_eq!(stops.code, Some(0), "--stop-at: {}", stops.describe());
    let states = stop_states(&stops.stderr);
    assert_eq!(states.len(), 3, "{}", stops.describe());
    assert_eq!(
        states[0], states[2],
        "instruction {a} forwards vs back from {b}"
    );
    assert_ne!(states[0], states[1], "{}", stops.describe());
}

/// `rewind replay TRACE --serial null --from N`: its verdict line as [`replay_matched_line`]
/// reads it (asserting the replay succeeded).
pub fn replay_from(trace: &Path, from: u64, timeout: Duration) -> Option<(u64, String)> {
    let mut args: Vec<OsString> = vec!["replay".into(), trace.into()];
    args.extend(["--serial", "null", "--from"].map(OsString::from));
    args.push(from.to_string().into());
    let late = run_rewind(&args, timeout);
    assert_eq!(late.code, Some(0), "--from {from}: {}", late.describe());
    replay_matched_line(&late.stderr)
}
