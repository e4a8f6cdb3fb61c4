//! The QMP monitor (`--qmp`) end to end, driven by QEMU's own Python client library (`qemu.qmp`):
//! `tests/scripts/qmp_replay.py` against `rewind replay` (replay-break, replay-seek, query-replay,
//! events, errors, quit) and `tests/scripts/qmp_run.py` against `rewind run` (stop/cont, replay
//! commands refused). The scripts print one `ok:` line per check and `FAIL:` on the first failure.
//!
//! Without the RISC-V toolchain or `python3` with `qemu.qmp` the tests skip, unless
//! `REWIND_REQUIRE_GUESTS` is set. Run them with `cargo test -p rewind --test qmp`.

#[allow(dead_code)]
mod common;

use common::{guest_elf, repo_root, rewind_cmd, run_rewind, skip_because, Proc, Scratch, Server};
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one client script may take (they take about a second).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long rewind may take to exit after `quit`.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `python3` can import `qemu.qmp` (otherwise [`skip_because`]).
fn have_qmp_client() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import qemu.qmp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip_because("python3 with the qemu.qmp package (pip install qemu.qmp) is not available");
    }
    ok
}

/// `guests/build/NAME.elf` when it and the QMP client are available (`None`: skip).
fn guest(name: &str) -> Option<PathBuf> {
    let elf = guest_elf(name)?;
    have_qmp_client().then_some(elf)
}

/// A TCP port that was free a moment ago (bind port 0, read it, let it go).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Records `elf` into `scratch`; returns the trace and its instruction count.
fn record(elf: &Path, scratch: &Scratch) -> (PathBuf, u64) {
    record_harts(elf, scratch, 1)
}

/// Records `elf` on a machine with `harts` harts; returns the trace and its instruction count.
fn record_harts(elf: &Path, scratch: &Scratch, harts: u32) -> (PathBuf, u64) {
    let trace = scratch.path("guest.trace");
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
    // "rewind: recorded N instructions to FILE (...)"
    let count = done
        .stderr
        .split("recorded ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instruction count in\n{}", done.describe()));
    (trace, count)
}

/// Runs `tests/scripts/SCRIPT ARGS` against the rewind started as `server`, then checks that
/// the script passed and that rewind exited 0 by itself after the script's `quit`.
fn run_script(server: Command, script: &str, args: &[OsString]) {
    let mut server = Server(Some(Proc::spawn(server, None)));
    let mut py = Command::new("python3");
    py.arg(repo_root().join("tests/scripts").join(script))
        .args(args);
    let client = server.wait_for(Proc::spawn(py, None), SCRIPT_TIMEOUT);
    let server = server.finish(EXIT_TIMEOUT);
    let describe = || {
        format!(
            "--- {script} (exit {:?}, timed out: {}) ---\n{}{}\n--- rewind (exit {:?}, killed after timeout: {}) stderr ---\n{}",
            client.code,
            client.timed_out,
            client.stdout,
            client.stderr,
            server.code,
            server.timed_out,
            server.stderr
        )
    };
    assert!(
        client.code == Some(0) && client.stdout.contains("all checks passed"),
        "{script} failed\n{}",
        describe()
    );
    assert!(
        !server.timed_out,
        "rewind did not exit after quit\n{}",
        describe()
    );
    assert_eq!(
        server.code,
        Some(0),
        "rewind's exit status after quit\n{}",
        describe()
    );
}

/// Replay over a unix socket: replay-break stops at exactly the instruction asked, replay-seek
/// goes backwards and forwards exactly, errors leave the session usable, quit exits 0.
#[test]
fn qmp_replay_break_seek_quit() {
    let Some(elf) = guest("debugme") else { return };
    let scratch = Scratch::new("replay");
    let (trace, count) = record(&elf, &scratch);
    let socket = scratch.path("qmp.sock");
    let mut cmd = rewind_cmd();
    cmd.arg("replay")
        .arg(&trace)
        .args(["--serial", "null", "--qmp"])
        .arg(format!("unix:{}", socket.display()))
        .arg("-S");
    let args: Vec<OsString> = vec![
        "--unix".into(),
        socket.into(),
        "--trace".into(),
        trace.into(),
        "--total".into(),
        count.to_string().into(),
    ];
    run_script(cmd, "qmp_replay.py", &args);
}

/// `rewind run` over TCP with a guest that never ends by itself: stop/cont and their events,
/// replay commands refused, quit exits 0.
#[test]
fn qmp_run_stop_cont_quit() {
    let Some(elf) = guest("interactive") else {
        return;
    };
    let port = free_port();
    let mut cmd = rewind_cmd();
    cmd.args(["run", "--bios", "none", "--kernel"])
        .arg(&elf)
        .args([
            "--serial",
            "null",
            "--qmp",
            &format!("tcp:127.0.0.1:{port}"),
            "-S",
        ]);
    let args: Vec<OsString> = vec!["--tcp".into(), format!("127.0.0.1:{port}").into()];
    run_script(cmd, "qmp_run.py", &args);
}

/// `system_reset` while recording: the guest boots again, the reset is in the trace, and the
/// replay resets at the same instruction (its console shows both boots, and it matches).
#[test]
fn qmp_system_reset_is_recorded_and_replayed() {
    // A CPU-bound guest: the guest boots twice whenever the reset lands.
    let Some(elf) = guest("bench") else {
        return;
    };
    let scratch = Scratch::new("reset");
    let trace = scratch.path("reset.rwtrace");
    let out = scratch.path("console.txt");
    let socket = scratch.path("qmp.sock");
    let mut cmd = rewind_cmd();
    cmd.arg("record")
        .arg("-o")
        .arg(&trace)
        .args(["--bios", "none", "--kernel"])
        .arg(&elf)
        .arg("--serial")
        .arg(format!("file:{}", out.display()))
        .arg("--qmp")
        .arg(format!("unix:{}", socket.display()))
        .arg("-S");
    let args: Vec<OsString> = vec!["--unix".into(), socket.into()];
    run_script(cmd, "qmp_record_reset.py", &args);
    let recorded = std::fs::read_to_string(&out).expect("console file");
    assert_eq!(
        recorded.matches("bench: integer mix").count(),
        2,
        "the guest should have booted twice:\n{recorded}"
    );
    let dump = run_rewind(
        &["dump".as_ref(), trace.as_os_str()],
        Duration::from_secs(30),
    );
    assert!(dump.stdout.contains("HostReset"), "{}", dump.stdout);
    let rep = run_rewind(
        &[
            "replay".as_ref(),
            trace.as_os_str(),
            "--serial".as_ref(),
            "stdio".as_ref(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(rep.code, Some(0), "{}", rep.describe());
    assert_eq!(rep.stdout, recorded);
    assert!(rep.stderr.contains("replay matched"), "{}", rep.describe());
}

/// A QMP `quit` while the recorded guest idles in `wfi` (waiting for console input, a timer
/// ticking) ends the recording in a state its replay reaches: the quit is taken at a
/// checkpoint in both. Three times, as the moment the quit lands varies.
#[test]
fn qmp_quit_while_the_guest_idles_replays_to_the_same_state() {
    let Some(elf) = guest("interactive") else {
        return;
    };
    let scratch = Scratch::new("quit-idle");
    for i in 0..3 {
        let trace = scratch.path(&format!("idle{i}.rwtrace"));
        let socket = scratch.path(&format!("qmp{i}.sock"));
        let mut cmd = rewind_cmd();
        cmd.arg("record")
            .arg("-o")
            .arg(&trace)
            .args(["--bios", "none", "--kernel"])
            .arg(&elf)
            .args(["--serial", "null", "--qmp"])
            .arg(format!("unix:{}", socket.display()))
            .arg("-S");
        let args: Vec<OsString> = vec!["--unix".into(), socket.into()];
        run_script(cmd, "qmp_record_quit.py", &args);
        let rep = run_rewind(
            &[
                "replay".as_ref(),
                trace.as_os_str(),
                "--serial".as_ref(),
                "null".as_ref(),
            ],
            Duration::from_secs(60),
        );
        assert_eq!(rep.code, Some(0), "replay {i}: {}", rep.describe());
        assert!(
            rep.stderr.contains("replay matched"),
            "replay {i}: {}",
            rep.describe()
        );
    }
}

/// `query-cpus-fast` and HMP `info cpus` with 4 harts, compared with QEMU 10's answer for
/// `-M virt -smp 4` when QEMU is installed.
#[test]
fn qmp_query_cpus_fast_with_several_harts() {
    let Some(elf) = guest("smp_debug") else {
        return;
    };
    let scratch = Scratch::new("cpus");
    let (trace, _) = record_harts(&elf, &scratch, 4);
    let socket = scratch.path("qmp.sock");
    let mut cmd = rewind_cmd();
    cmd.arg("replay")
        .arg(&trace)
        .args(["--serial", "null", "--qmp"])
        .arg(format!("unix:{}", socket.display()))
        .arg("-S");
    let mut args: Vec<OsString> =
        vec!["--unix".into(), socket.into(), "--harts".into(), "4".into()];
    // QEMU as the reference, paused, until the script is done with it.
    let _qemu = common::have_tool("qemu-system-riscv64").then(|| {
        let reference = scratch.path("qemu-qmp.sock");
        let mut q = Command::new("qemu-system-riscv64");
        q.args([
            "-M", "virt", "-smp", "4", "-display", "none", "-bios", "none", "-S",
        ])
        .args(["-serial", "null", "-monitor", "none", "-qmp"])
        .arg(format!("unix:{},server,wait=off", reference.display()));
        args.push("--reference".into());
        args.push(reference.into());
        Server(Some(Proc::spawn(q, None)))
    });
    run_script(cmd, "qmp_cpus.py", &args);
}
