//! The gdb stub (`--gdb`) end to end: `gdb-multiarch` runs the command scripts in
//! `tests/scripts/gdb_*.gdb` against `rewind replay` (reverse execution; memory and registers are
//! read-only) and `rewind run` (writes allowed), debugging the `guests/debugme` guest.
//!
//! The scripts print `MARK NAME key=value ...` lines at each point of interest; these tests parse
//! them and check the values against what the guest really computes (`counter` is 0, 1, 5, 18, ...
//! on entry to tick(1), tick(2), tick(3), tick(4): see `debugme_runs_like_qemu`).
//!
//! Without the RISC-V toolchain or `gdb-multiarch` the tests skip, unless `REWIND_REQUIRE_GUESTS`
//! is set. Run them with `cargo test -p rewind --test gdb`.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, guest_elf, have_tool, have_tools, qemu_cmd, repo_root, rewind_run_cmd,
    run_rewind, run_with_input, Done, Proc, Scratch, Server,
};
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GDB: &str = "gdb-multiarch";
/// How long one gdb script may take (they take a second or two).
const GDB_TIMEOUT: Duration = Duration::from_secs(60);
/// How long rewind may take to exit after gdb's `kill`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// `guests/build/debugme.elf` when it and gdb are available (`None`: skip).
fn debugme() -> Option<PathBuf> {
    let elf = guest_elf("debugme")?;
    have_tools(&[GDB]).then_some(elf)
}

/// A TCP port that was free a moment ago (bind port 0, read it, let it go).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Records debugme into `scratch` and returns the trace.
fn record(elf: &Path, scratch: &Scratch) -> PathBuf {
    record_harts(elf, scratch, 1)
}

/// Records `elf` on a machine with `harts` harts into `scratch` and returns the trace.
fn record_harts(elf: &Path, scratch: &Scratch, harts: u32) -> PathBuf {
    let trace = scratch.path("debugme.trace");
    let args: Vec<OsString> = vec![
        "record".into(),
        "--smp".into(),
        harts.to_string().into(),
        "-o".into(),
        trace.clone().into(),
        "--bios".into(),
        "none".into(),
        "--kernel".into(),
        elf.into(),
        "--serial".into(),
        "null".into(),
    ];
    let done = run_rewind(&args, Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "rewind record\n{}", done.describe());
    trace
}

/// What one gdb script printed, and what the debuggee did.
struct Debugged {
    gdb: Done,
    server: Done,
    /// (name, rest of the line) for every `MARK name rest` line gdb printed, in order.
    marks: Vec<(String, String)>,
}

impl Debugged {
    /// Everything printed, for failure messages.
    fn describe(&self) -> String {
        format!(
            "--- gdb (exit {:?}, timed out: {}) stdout ---\n{}\n--- gdb stderr ---\n{}\n\
             --- debuggee (exit {:?}, killed after timeout: {}) stdout (tail) ---\n{}\n--- debuggee stderr ---\n{}",
            self.gdb.code,
            self.gdb.timed_out,
            self.gdb.stdout,
            self.gdb.stderr,
            self.server.code,
            self.server.timed_out,
            common::tail(&self.server.stdout, 20),
            self.server.stderr
        )
    }

    /// The rest of the line of mark `name` (the first one).
    #[track_caller]
    fn mark(&self, name: &str) -> &str {
        match self.marks.iter().find(|(n, _)| n == name) {
            Some((_, rest)) => rest,
            None => panic!("gdb printed no MARK {name}\n{}", self.describe()),
        }
    }

    /// The value of `key=value` in mark `name`.
    #[track_caller]
    fn val(&self, name: &str, key: &str) -> &str {
        let rest = self.mark(name);
        let prefix = format!("{key}=");
        match rest
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&prefix))
        {
            Some(v) => v,
            None => panic!("MARK {name} has no {key}= ({rest:?})\n{}", self.describe()),
        }
    }

    /// A number `key=0xHEX` or `key=DECIMAL` in mark `name`.
    #[track_caller]
    fn num(&self, name: &str, key: &str) -> u64 {
        let v = self.val(name, key);
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        };
        parsed.unwrap_or_else(|e| panic!("MARK {name} {key}={v}: {e}\n{}", self.describe()))
    }

    /// gdb's output from the line of mark `from` up to the line of mark `to`.
    #[track_caller]
    fn between(&self, from: &str, to: &str) -> &str {
        let out = &self.gdb.stdout;
        // Byte offset of the line of mark `name` (the whole name: `rev` must not match `revsym`).
        let line_of = |name: &str, after: usize| -> Option<usize> {
            let mut pos = 0;
            for line in out.split_inclusive('\n') {
                let rest = line.trim_end().strip_prefix("MARK ");
                if pos >= after && rest.is_some_and(|r| r.split(' ').next() == Some(name)) {
                    return Some(pos);
                }
                pos += line.len();
            }
            None
        };
        let start =
            line_of(from, 0).unwrap_or_else(|| panic!("no MARK {from}\n{}", self.describe()));
        let end = line_of(to, start)
            .unwrap_or_else(|| panic!("no MARK {to} after MARK {from}\n{}", self.describe()));
        &out[start..end]
    }

    /// Asserts that `cond` holds, showing everything printed when not.
    #[track_caller]
    fn check(&self, cond: bool, what: &str) {
        assert!(cond, "{what}\n{}", self.describe());
    }

    /// Asserts that the script ran to its end (`MARK done`) without gdb hanging.
    #[track_caller]
    fn completed(&self) {
        self.check(
            !self.gdb.timed_out,
            "gdb did not finish (hung, or killed after the debuggee exited)",
        );
        self.check(
            self.marks.iter().any(|(n, _)| n == "done"),
            "the gdb script stopped early (a command failed)",
        );
    }
}

/// Starts `debuggee` (which must be told to listen for gdb on `port`, paused), runs gdb script
/// `tests/scripts/SCRIPT` against it, then gives the debuggee [`EXIT_TIMEOUT`] to exit.
fn debug(debuggee: Command, port: u16, elf: &Path, script: &str) -> Debugged {
    let mut server = Server(Some(Proc::spawn(debuggee, None)));
    let root = repo_root();
    let mut gdb = Command::new(GDB);
    // From the repository root, where the ELF's relative source paths (guests/...) resolve.
    gdb.current_dir(&root)
        .args(["-nx", "-batch"])
        .args(["-ex", "set architecture riscv:rv64"])
        // The server may still be starting: gdb retries connecting for this long.
        .args(["-ex", "set tcp connect-timeout 30"])
        .args(["-ex", "set remotetimeout 30"])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .arg("-x")
        .arg(root.join("tests/scripts").join(script))
        .arg(elf);
    let gdb = server.wait_for(Proc::spawn(gdb, None), GDB_TIMEOUT);
    let server = server.finish(EXIT_TIMEOUT);
    let marks = gdb
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("MARK "))
        .map(|rest| match rest.split_once(' ') {
            Some((name, rest)) => (name.to_string(), rest.to_string()),
            None => (rest.to_string(), String::new()),
        })
        .collect();
    Debugged { gdb, server, marks }
}

/// `rewind replay TRACE --serial null --gdb tcp:127.0.0.1:PORT -S` debugged with `script`.
fn debug_replay(elf: &Path, script: &str) -> Debugged {
    debug_replay_with(elf, script, "interp")
}

/// [`debug_replay`] with the engine `accel`; with the JIT, blocks are translated after 16
/// executions (debugme is short), so breakpoints and watchpoints meet translated code.
fn debug_replay_with(elf: &Path, script: &str, accel: &str) -> Debugged {
    let scratch = Scratch::new(&format!("{}-{accel}", script.trim_end_matches(".gdb")));
    let trace = record(elf, &scratch);
    let port = free_port();
    let mut cmd = common::rewind_cmd();
    cmd.env("REWIND_JIT_HOT", "16");
    cmd.env("REWIND_JIT_BACKGROUND", "0");
    cmd.arg("replay").arg(&trace).args([
        "--accel",
        accel,
        "--serial",
        "null",
        "--gdb",
        &format!("tcp:127.0.0.1:{port}"),
        "-S",
    ]);
    debug(cmd, port, elf, script)
}

#[test]
fn debugme_runs_like_qemu() {
    let Some(elf) = guest_elf("debugme") else {
        return;
    };
    let rw = run_with_input(rewind_run_cmd(&elf), b"", Duration::from_secs(60));
    assert_eq!(rw.code, Some(0), "rewind run debugme\n{}", rw.describe());
    // The values the gdb scripts' expectations are built on.
    for line in [
        "tick 1: counter=1 leaf=84",
        "tick 2: counter=5 leaf=80",
        "tick 3: counter=18 leaf=91",
        "tick 10: counter=44281 leaf=468",
        "debugme finished: pass",
    ] {
        assert!(
            rw.stdout.lines().any(|l| l == line),
            "debugme output lacks {line:?}\n{}",
            rw.describe()
        );
    }
    if have_tool("qemu-system-riscv64") {
        let q = run_with_input(qemu_cmd(&elf), b"", Duration::from_secs(60));
        assert_eq!(q.code, Some(0), "QEMU exit status: {}", q.stderr);
        assert_same_output("debugme: QEMU vs rewind", &q.stdout, &rw.stdout);
    }
}

/// (a) Breakpoint hits going forward; reverse-continue returns to the previous hits with the
/// same pc, `i` and `counter`; continuing forward again reaches the same hits.
#[test]
fn gdb_replay_breakpoints_and_reverse_continue() {
    gdb_replay_breakpoints_and_reverse_continue_with("interp");
}

/// The same under the JIT: translated code stops at the same hits.
#[test]
fn gdb_replay_breakpoints_and_reverse_continue_jit() {
    gdb_replay_breakpoints_and_reverse_continue_with("jit");
}

fn gdb_replay_breakpoints_and_reverse_continue_with(accel: &str) {
    let Some(elf) = debugme() else { return };
    let d = debug_replay_with(&elf, "gdb_replay_breakpoints.gdb", accel);
    d.completed();
    for (hit, i, counter) in [("fwd1", 1, 0), ("fwd2", 2, 1), ("fwd3", 3, 5)] {
        d.check(
            d.num(hit, "i") == i && d.num(hit, "counter") == counter,
            &format!("{hit}: tick({i}) is entered with counter {counter}"),
        );
        d.check(
            d.val(hit, "pc") == d.val("fwd1", "pc"),
            &format!("{hit}: every hit is at the same breakpoint pc"),
        );
    }
    for (back, fwd) in [
        ("rev2", "fwd2"),
        ("rev1", "fwd1"),
        ("again2", "fwd2"),
        ("again3", "fwd3"),
    ] {
        d.check(
            d.mark(back) == d.mark(fwd),
            &format!("{back} shows the same state as {fwd}"),
        );
    }
    d.check(
        d.gdb.stdout.matches("Breakpoint 1, tick (i=").count() == 7,
        "gdb reports all 7 stops as hits of breakpoint 1",
    );
}

/// (b) stepi / reverse-stepi, across the call from tick into leaf, restoring a0 too.
#[test]
fn gdb_replay_stepi_and_reverse_stepi() {
    gdb_replay_stepi_and_reverse_stepi_with("interp");
}

/// The same under the JIT: translated code stops at the same hits.
#[test]
fn gdb_replay_stepi_and_reverse_stepi_jit() {
    gdb_replay_stepi_and_reverse_stepi_with("jit");
}

fn gdb_replay_stepi_and_reverse_stepi_with(accel: &str) {
    let Some(elf) = debugme() else { return };
    let d = debug_replay_with(&elf, "gdb_replay_stepi.gdb", accel);
    d.completed();
    d.check(d.num("entry", "a0") == 2, "stopped in leaf(2)");
    d.check(
        d.val("one", "pc") != d.val("entry", "pc"),
        "stepi moves the pc",
    );
    d.check(
        d.mark("back") == d.mark("entry"),
        "reverse-stepi returns to the previous pc and registers",
    );
    d.check(
        d.mark("s0sym").starts_with("tick + "),
        "reverse-stepi from leaf's first instruction goes back to the call in tick",
    );
    d.check(
        d.mark("s1") == d.mark("entry"),
        "stepi over the call enters leaf again",
    );
    let steps = ["s0", "s1", "s2", "s3", "s4", "s5"];
    for w in steps.windows(2) {
        d.check(
            d.val(w[0], "pc") != d.val(w[1], "pc"),
            &format!("{} and {} are different instructions", w[0], w[1]),
        );
    }
    d.check(
        steps[1..]
            .iter()
            .any(|s| d.num(s, "a0") != d.num("s0", "a0")),
        "a0 changes during the steps (so reverse steps must restore it)",
    );
    for (back, fwd) in [
        ("r4", "s4"),
        ("r3", "s3"),
        ("r2", "s2"),
        ("r1", "s1"),
        ("r0", "s0"),
    ] {
        d.check(
            d.mark(back) == d.mark(fwd),
            &format!("reverse-stepi visits {fwd} again ({back})"),
        );
    }
}

/// (c) Watchpoints: `watch counter` + reverse-continue from tick(3) stops at tick(2)'s store,
/// continuing forward hits it again; rwatch forward, awatch backwards.
#[test]
fn gdb_replay_watchpoints_backwards_and_forwards() {
    gdb_replay_watchpoints_backwards_and_forwards_with("interp");
}

/// The same under the JIT: translated code stops at the same hits.
#[test]
fn gdb_replay_watchpoints_backwards_and_forwards_jit() {
    gdb_replay_watchpoints_backwards_and_forwards_with("jit");
}

fn gdb_replay_watchpoints_backwards_and_forwards_with(accel: &str) {
    let Some(elf) = debugme() else { return };
    let d = debug_replay_with(&elf, "gdb_replay_watch.gdb", accel);
    d.completed();
    d.check(
        d.num("at3", "i") == 3 && d.num("at3", "counter") == 5,
        "at tick(3), counter is 5",
    );
    let back = d.between("reverse", "wrev");
    d.check(
        back.contains("Hardware watchpoint 2: counter")
            && back.contains("Old value = 5")
            && back.contains("New value = 1"),
        "reverse-continue reports the watchpoint: counter was 1 before tick(2) stored 5",
    );
    d.check(
        d.num("wrev", "counter") == 1,
        "after reverse-continue counter is back to 1",
    );
    d.check(
        d.mark("wrevsym").starts_with("tick + "),
        "the reverse watchpoint stop is inside tick (the store)",
    );
    let fwd = d.between("forward", "wfwd");
    d.check(
        fwd.contains("Hardware watchpoint 2: counter")
            && fwd.contains("Old value = 1")
            && fwd.contains("New value = 5"),
        "continuing forward hits the same store again",
    );
    d.check(
        d.num("wfwd", "counter") == 5 && d.num("wfwd", "i") == 2,
        "counter is 5 again, in tick(2)",
    );
    d.check(
        d.num("wstore", "counter") == 1 && d.num("wagain", "counter") == 5,
        "the forward stop is right after the store (one reverse-stepi undoes it)",
    );
    d.check(
        d.mark("wfwdsym").starts_with("tick + "),
        "the forward watchpoint stop is inside tick",
    );
    d.check(
        d.num("wrev", "pc") < d.num("wfwd", "pc"),
        "the reverse stop is before the store, the forward stop after it",
    );
    let read = d.between("rforward", "rfwd");
    d.check(
        read.contains("Hardware read watchpoint 3: counter") && read.contains("Value = 5"),
        "rwatch stops at a read of counter",
    );
    d.check(
        d.num("rfwd", "i") == 2,
        "rwatch stops at the very next read, printf's argument in tick(2), not a later one",
    );
    d.check(
        d.mark("rfwdsym").starts_with("tick + "),
        "the read is in tick",
    );
    let access = d.between("areverse", "arev");
    d.check(
        access.contains("watchpoint 4: counter"),
        "awatch + reverse-continue stops at an access to counter",
    );
    d.check(
        d.mark("arevsym").starts_with("tick + ") && d.num("arev", "i") == 2,
        "the access found backwards is in tick(2)",
    );
}

/// (d) Source-level reverse execution: reverse-next, reverse-step into leaf, reverse-finish out
/// of leaf back to the call in tick.
#[test]
fn gdb_replay_reverse_next_step_finish() {
    gdb_replay_reverse_next_step_finish_with("interp");
}

/// The same under the JIT: translated code stops at the same hits.
#[test]
fn gdb_replay_reverse_next_step_finish_jit() {
    gdb_replay_reverse_next_step_finish_with("jit");
}

fn gdb_replay_reverse_next_step_finish_with(accel: &str) {
    let Some(elf) = debugme() else { return };
    let d = debug_replay_with(&elf, "gdb_replay_finish.gdb", accel);
    d.completed();
    let line = |m: &str| d.num(m, "line");
    for m in ["at3", "n1", "n2", "n3", "rn", "rf1", "rf2"] {
        d.check(d.val(m, "func") == "tick", &format!("{m} is in tick"));
    }
    d.check(
        line("at3") < line("n1") && line("n1") < line("n2") && line("n2") < line("n3"),
        "next moves down tick's lines",
    );
    d.check(
        d.num("n2c", "counter") == 5 && d.num("n3c", "counter") == 18,
        "tick(3) stores counter = 5 * 3 + 3 on the line after the call of leaf",
    );
    d.check(
        line("rn") == line("n2") && d.num("rnc", "counter") == 5,
        "reverse-next goes back one line, undoing the store",
    );
    d.check(
        d.val("rs", "func") == "leaf",
        "reverse-step goes back into leaf",
    );
    d.check(
        line("rf1") == line("n1") && d.num("rf1pc", "i") == 3,
        "reverse-finish returns to the line in tick(3) that calls leaf",
    );
    d.check(
        d.mark("rf1insn").contains("<leaf>"),
        "reverse-finish stops at the call instruction",
    );
    d.check(
        d.val("leaf", "func") == "leaf" && d.num("leafx", "x") == 3,
        "continue from the call enters leaf(3)",
    );
    d.check(
        d.mark("rf2pc") == d.mark("rf1pc"),
        "reverse-finish from leaf's entry returns to the same call",
    );
}

/// (e) writes refused in replay, (f) registers and CSRs readable, (g) `kill` ends rewind.
#[test]
fn gdb_replay_registers_read_only_and_kill() {
    let Some(elf) = debugme() else { return };
    let d = debug_replay(&elf, "gdb_replay_regs.gdb");
    d.check(
        !d.gdb.timed_out,
        "gdb did not finish (hung, or killed after the debuggee exited)",
    );
    d.check(
        d.marks.iter().any(|(n, _)| n == "kill"),
        "the gdb script stopped early (a command failed)",
    );
    // (f)
    let pc = d.num("regs", "pc");
    d.check(
        d.mark("inforeg").starts_with("pc")
            && d.mark("inforeg").contains(&format!("{pc:#x}"))
            && d.mark("inforeg").contains("<tick"),
        "info registers pc shows the pc at tick",
    );
    d.check(
        d.num("regs", "sp") == d.num("regs", "x2") && d.num("regs", "sp") != 0,
        "$sp is $x2",
    );
    d.check(
        d.num("regs", "a0") == 1 && d.num("regs", "x10") == 1,
        "$a0 and $x10 hold tick's argument 1",
    );
    let reg = |name: &str| -> u64 {
        let (_, rest) = d
            .marks
            .iter()
            .find(|(n, rest)| n == "reg" && rest.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no value for ${name}\n{}", d.describe()));
        let hex = rest[name.len() + 1..].trim_start_matches("0x");
        u64::from_str_radix(hex, 16).expect("hex register value")
    };
    d.check(reg("fcsr") == 0, "fcsr is 0 (start.S clears it)");
    let mstatus = reg("mstatus");
    d.check(
        (mstatus >> 13) & 3 != 0,
        "mstatus.FS is on (start.S enables the FPU)",
    );
    let misa = reg("misa");
    let imafdc = 0x112d; // bits A, C, D, F, I, M
    d.check(
        misa >> 62 == 2 && misa & imafdc == imafdc,
        "misa says RV64IMAFDC",
    );
    d.check(reg("mtvec") >= 0x8000_0000, "mtvec points into RAM");
    for f in ["f0", "ft0", "fa0"] {
        d.check(
            d.marks
                .iter()
                .any(|(n, r)| n == "reg" && r == &format!("{f} present")),
            &format!("${f} exists"),
        );
    }
    d.check(
        d.mark("infomstatus").starts_with("mstatus"),
        "info registers mstatus works",
    );
    // (e)
    d.check(d.num("counter0", "counter") == 0, "counter is 0 at tick(1)");
    d.check(
        d.mark("writemem").starts_with("refused"),
        "set var counter = 5 is refused in replay",
    );
    d.check(
        d.num("counter1", "counter") == 0,
        "counter is unchanged after the refused write",
    );
    d.check(
        d.mark("writereg").starts_with("refused"),
        "set $a0 is refused in replay",
    );
    d.check(
        d.num("a0after", "a0") == 1,
        "a0 is unchanged after the refused write",
    );
    let says_replay = |s: &str| s.to_lowercase().contains("replay");
    d.check(
        says_replay(d.mark("writereg")),
        "gdb's error for the refused register write says why (E.text reply)",
    );
    d.check(
        says_replay(&d.server.stderr),
        "rewind's stderr says why the writes were refused",
    );
    d.check(
        d.mark("monreplay").starts_with("Replaying execution")
            && d.mark("monreplay").contains("instruction count ="),
        "monitor info replay answers as QEMU's HMP",
    );
    d.check(
        d.mark("monsnap").contains("ICOUNT") || d.mark("monsnap").contains("no snapshot"),
        "monitor snapshots lists the snapshots",
    );
    d.check(
        d.mark("moncont").contains("gdb's to do"),
        "monitor cont is refused: gdb continues the machine itself",
    );
    d.check(
        d.num("hit2", "i") == 2 && d.num("hit2", "counter") == 1,
        "the replay goes on unchanged: tick(2) sees counter 1",
    );
    // (g)
    d.check(
        !d.server.timed_out,
        "rewind exits after gdb's kill (it had to be killed)",
    );
    d.check(
        d.gdb.code == Some(0),
        "gdb exits 0 (its last command, kill, succeeded)",
    );
}

/// `rewind run --gdb`: breakpoints, continue, finish, and writes to memory and registers work;
/// the guest sees the written value. The same script against QEMU's gdbstub gives the same marks.
#[test]
fn gdb_run_mode_writes() {
    let Some(elf) = debugme() else { return };
    let port = free_port();
    let mut cmd = rewind_run_cmd(&elf);
    cmd.args(["--gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
    let d = debug(cmd, port, &elf, "gdb_run.gdb");
    d.completed();
    d.check(
        d.num("hit2", "i") == 2 && d.num("hit2", "counter") == 1,
        "at tick(2) counter is 1",
    );
    d.check(
        d.num("set", "counter") == 100,
        "set var counter = 100 works",
    );
    d.check(
        d.num("t0", "t0") == 0x1234,
        "set $t0 works (read back from the target)",
    );
    d.check(
        d.num("after", "counter") == 302,
        "tick(2) computed 100 * 3 + 2 from the written value",
    );
    d.check(
        d.server.stdout.contains("tick 2: counter=302 leaf=80\n"),
        "the guest printed the value computed from the write",
    );
    d.check(
        d.num("watch", "i") == 3 && d.num("watch", "counter") == 909,
        "watch counter stops at tick(3)'s store of 302 * 3 + 3",
    );
    d.check(
        d.num("rwatch", "i") == 3 && d.num("rwatch", "pc") > d.num("watch", "pc"),
        "rwatch stops at the next read, printf's argument in tick(3)",
    );
    d.check(!d.server.timed_out, "rewind exits after gdb's kill");

    if have_tool("qemu-system-riscv64") {
        let port = free_port();
        let mut q = qemu_cmd(&elf);
        q.args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
        let qd = debug(q, port, &elf, "gdb_run.gdb");
        qd.completed();
        assert_eq!(
            qd.marks,
            d.marks,
            "the same gdb script against QEMU and rewind\n--- QEMU ---\n{}\n--- rewind ---\n{}",
            qd.describe(),
            d.describe()
        );
    }
}

/// `rewind record --gdb`: breakpoints work while recording, reading memory that does not exist
/// is an error (not a hang or a crash), and `kill` ends rewind.
#[test]
fn gdb_record_mode_kill() {
    let Some(elf) = debugme() else { return };
    let scratch = Scratch::new("record-kill");
    let trace = scratch.path("debugme.trace");
    let port = free_port();
    let mut cmd = common::rewind_cmd();
    cmd.args(["record", "-o"])
        .arg(&trace)
        .args(["--bios", "none", "--kernel"])
        .arg(&elf)
        .args([
            "--serial",
            "null",
            "--gdb",
            &format!("tcp:127.0.0.1:{port}"),
            "-S",
        ]);
    let d = debug(cmd, port, &elf, "gdb_record.gdb");
    d.completed();
    d.check(
        d.num("hit3", "i") == 3 && d.num("hit3", "counter") == 5,
        "breakpoints work while recording",
    );
    d.check(
        d.mark("badread").starts_with("error"),
        "reading unmapped memory is an error",
    );
    d.check(!d.server.timed_out, "rewind exits after gdb's kill");
}

/// After gdb detaches, the replay runs to the end of the recording and says it matched (as a
/// replay without a debugger does), and exits with the recorded status.
#[test]
fn gdb_detach_ends_with_the_replay_verdict() {
    let Some(elf) = debugme() else { return };
    let d = debug_replay(&elf, "gdb_replay_detach.gdb");
    d.check(!d.gdb.timed_out, "gdb did not finish");
    d.check(
        d.marks.iter().any(|(n, _)| n == "detached"),
        "the gdb script did not get to detach",
    );
    d.check(!d.server.timed_out, "rewind did not exit after the detach");
    d.check(
        d.server.code == Some(0),
        "rewind exits with the recorded status 0",
    );
    d.check(
        d.server
            .stderr
            .contains("rewind: replay matched the recording: "),
        "the replay prints its verdict after the detach",
    );
}

/// Several harts: `info threads` lists one thread per hart; a breakpoint only hart 2 reaches
/// stops thread 3 (while thread 1 is selected) with hart 2's registers; stepi / reverse-stepi of
/// thread 1 move hart 0 by one instruction; reverse-continue goes back to hits on the hart that
/// made them, also from a position where another hart is running.
#[test]
fn gdb_replay_several_harts() {
    let Some(elf) = guest_elf("smp_debug") else {
        return;
    };
    if !have_tools(&[GDB]) {
        return;
    }
    let scratch = Scratch::new("gdb_smp");
    let trace = record_harts(&elf, &scratch, 4);
    let port = free_port();
    let mut cmd = common::rewind_cmd();
    cmd.arg("replay").arg(&trace).args([
        "--serial",
        "null",
        "--gdb",
        &format!("tcp:127.0.0.1:{port}"),
        "-S",
    ]);
    let d = debug(cmd, port, &elf, "gdb_smp.gdb");
    d.completed();
    let threads = d.between("threads", "threads-end");
    for (id, hart) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
        d.check(
            threads.contains(&format!("Thread 1.{id} (hart {hart}")),
            &format!("info threads lists thread {id} as hart {hart}"),
        );
    }
    d.check(
        !threads.contains("Thread 1.5"),
        "info threads lists 4 threads",
    );
    // hart2_round(round) is only called by hart 2.
    for (mark, round) in [("hit0", 0), ("hit1", 1)] {
        d.check(
            d.num(mark, "thread") == 3 && d.num(mark, "hartid") == 2,
            &format!("{mark}: the stop names thread 3, with hart 2's registers"),
        );
        d.check(
            d.num(mark, "round") == round,
            &format!("{mark}: hart2_round({round})"),
        );
    }
    d.check(
        d.gdb
            .stdout
            .contains("Thread 3 hit Breakpoint 1, hart2_round"),
        "gdb reports the hit in thread 3",
    );
    d.check(
        d.num("t1", "hartid") == 0 && d.num("t3", "hartid") == 2,
        "per-thread registers: mhartid",
    );
    d.check(
        d.val("t1", "sp") != d.val("t3", "sp"),
        "per-thread registers: each hart has its own stack",
    );
    d.check(
        d.num("before", "thread") == 1 && d.num("after", "thread") == 1,
        "stepi of thread 1 stops in thread 1",
    );
    d.check(
        d.num("after", "minstret") == d.num("before", "minstret") + 1,
        "stepi of thread 1 retires one instruction on hart 0",
    );
    d.check(
        d.mark("back") == d.mark("before"),
        "reverse-stepi of thread 1 undoes that instruction",
    );
    d.check(
        d.mark("rev1") == d.mark("hit1") && d.mark("rev0") == d.mark("hit0"),
        "reverse-continue from hart 0's position returns to hart 2's hits",
    );
    // visit(hart, round) is called by every hart: a0 is the caller's hart.
    for mark in ["v1", "v2", "v3", "rv2", "rv1"] {
        d.check(
            d.num(mark, "hart") == d.num(mark, "hartid")
                && d.num(mark, "thread") == d.num(mark, "hart") + 1,
            &format!("{mark}: the stop names the hart that called visit, with its registers"),
        );
    }
    d.check(
        d.num("v1", "thread") != d.num("v2", "thread"),
        "visit hits come from several harts",
    );
    d.check(
        d.mark("rv2") == d.mark("v2") && d.mark("rv1") == d.mark("v1"),
        "reverse-continue returns to the earlier hits, on the harts that made them",
    );
    // work[2] grows by round + 1 in hart 2's visit(2, round): 1, 3, 6, ...
    for (mark, value) in [("w1", 3), ("w2", 6), ("rw1", 3)] {
        d.check(
            d.num(mark, "thread") == 3 && d.num(mark, "hartid") == 2,
            &format!("{mark}: the watchpoint fires in thread 3 (hart 2 writes work[2])"),
        );
        d.check(
            d.num(mark, "value") == value,
            &format!("{mark}: work[2] is {value}"),
        );
    }
}
