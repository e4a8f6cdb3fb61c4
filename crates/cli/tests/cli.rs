//! The `rewind` command line: usage errors, bad images, the demo, and record / replay / dump
//! of the demo guest (overwrite refusal, corrupt, cut and changed-image traces).

#[allow(dead_code)]
mod common;

use common::{repo_root, rewind_proc, run_rewind, Done, Scratch};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one `rewind` command may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(120);

fn rewind(args: &[&str]) -> Done {
    run_rewind(args, TIMEOUT)
}

/// Asserts that `o` exited with `code`, showing its stderr otherwise.
#[track_caller]
fn assert_exit(o: &Done, code: i32) {
    assert_eq!(o.code, Some(code), "{}", o.stderr);
}

/// Asserts that `o` exited with `code` and said `needle` on stderr.
#[track_caller]
fn assert_error(o: &Done, code: i32, needle: &str) {
    assert_exit(o, code);
    assert!(o.stderr.contains(needle), "{}", o.stderr);
}

/// The prebuilt demo guest (the one embedded in the binary).
fn demo_elf() -> PathBuf {
    repo_root().join("guests/prebuilt/demo.elf")
}

/// A minimal RISC-V ELF64 executable with one PT_LOAD segment at `paddr`.
fn elf_with_segment(paddr: u64, data: &[u8], memsz: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&paddr.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&7u32.to_le_bytes());
    out.extend_from_slice(&120u64.to_le_bytes()); // offset of the data
    out.extend_from_slice(&paddr.to_le_bytes());
    out.extend_from_slice(&paddr.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&memsz.to_le_bytes());
    out.extend_from_slice(&8u64.to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn version_is_printed() {
    let o = rewind(&["--version"]);
    assert_exit(&o, 0);
    assert_eq!(
        o.stdout.trim(),
        format!("rewind {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_error(&rewind(&["run", "--bogus"]), 2, "--bogus");
    let o = rewind(&["run", "-m", "lots", "--kernel", "x.elf"]);
    assert_error(&o, 2, "invalid size 'lots'");
    assert_exit(
        &rewind(&["run", "--serial", "tcp:1", "--kernel", "x.elf"]),
        2,
    );
    assert_exit(
        &rewind(&["run", "--icount-shift", "11", "--kernel", "x.elf"]),
        2,
    );
    assert_exit(&rewind(&[]), 2);
}

#[test]
fn nothing_to_run_is_an_error() {
    let o = rewind(&["run"]);
    assert_exit(&o, 2);
    assert!(
        o.stderr.starts_with("rewind: nothing to run"),
        "{}",
        o.stderr
    );
}

#[test]
fn missing_file_is_named() {
    for (option, path) in [
        ("--kernel", "/nonexistent/guest.elf"),
        ("--bios", "/nonexistent/fw.bin"),
    ] {
        let o = rewind(&["run", option, path]);
        assert_exit(&o, 2);
        assert_eq!(o.stderr, format!("rewind: {path}: no such file\n"));
    }
}

#[test]
fn non_elf_kernel_is_rejected() {
    let dir = Scratch::new("non-elf");
    let p = dir.write("notes.txt", b"just some text\n");
    let o = rewind(&["run", "--kernel", s(&p)]);
    assert_exit(&o, 2);
    let e = &o.stderr;
    assert!(
        e.starts_with(&format!("rewind: {}: not an ELF file", p.display())),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn foreign_elf_is_rejected() {
    // The rewind binary itself is an ELF for the host, not for RISC-V.
    let exe = env!("CARGO_BIN_EXE_rewind");
    let o = rewind(&["run", "--kernel", exe]);
    assert_exit(&o, 2);
    let e = &o.stderr;
    assert!(
        e.starts_with(&format!("rewind: {exe}: not a RISC-V 64-bit ELF")),
        "{e}"
    );
}

#[test]
fn image_larger_than_ram_is_rejected() {
    let dir = Scratch::new("big");
    let nop = [0x13, 0, 0, 0];
    let p = dir.write("big.elf", elf_with_segment(0x8000_0000, &nop, 64 << 20));
    let o = rewind(&["run", "-m", "16M", "--kernel", s(&p)]);
    let expected = format!(
        "rewind: {}: image needs 67108864 bytes, larger than RAM",
        p.display()
    );
    assert_exit(&o, 2);
    assert!(o.stderr.starts_with(&expected), "{}", o.stderr);

    let p = dir.write("low.elf", elf_with_segment(0x1000_0000, &nop, 4));
    assert_error(&rewind(&["run", "--kernel", s(&p)]), 2, "is outside RAM");
}

#[test]
fn demo_runs_and_passes() {
    let o = rewind(&["demo"]);
    let out = &o.stdout;
    assert_eq!(o.code, Some(0), "stdout:\n{out}\nstderr:\n{}", o.stderr);
    assert!(out.contains("this is the demo guest"), "{out}");
    assert!(out.contains("primes below 100: 2 3 5 7 11 13"), "{out}");
    assert!(out.contains("device tree found"), "{out}");
    assert!(
        out.contains("--- rewind demo: record with scripted serial input, then replay ---"),
        "{out}"
    );
    assert!(out.contains("exit status 0, output blake3"), "{out}");
    assert!(out.contains("verdict: MATCH"), "{out}");
    // Seeking: the middle state is the same forwards and after going to the end and back,
    // and a step back lands on the state one instruction earlier.
    let seek = out.lines().find(|l| l.starts_with("seek:")).unwrap();
    let hashes: Vec<&str> = seek
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 16)
        .collect();
    assert_eq!(hashes.len(), 4, "{seek}");
    assert_eq!(hashes[0], hashes[1], "{seek}");
    assert_eq!(hashes[2], hashes[3], "{seek}");
    assert_ne!(hashes[0], hashes[2], "{seek}");
    // Both runs report the same instruction count and output hash.
    let field = |prefix: &str| {
        let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
        let icount = line.split_whitespace().nth(1).unwrap().to_string();
        let hash = line.rsplit(' ').next().unwrap().to_string();
        (icount, hash)
    };
    assert_eq!(field("record:"), field("replay:"));
}

#[test]
fn run_writes_serial_output_to_a_file() {
    let dir = Scratch::new("serial-file");
    let out = dir.path("serial.txt");
    let demo = demo_elf();
    let o = rewind(&["run", "--kernel", s(&demo), "--serial", &file_spec(&out)]);
    assert_exit(&o, 0);
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("primes below 100: 2 3 5 7"), "{text}");
}

#[test]
fn instruction_limit_exits_124() {
    let demo = demo_elf();
    let o = rewind(&[
        "run",
        "--kernel",
        s(&demo),
        "--serial",
        "null",
        "--max-instructions",
        "1000",
    ]);
    assert_error(&o, 124, "after 1000 instructions");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `--serial file:PATH`'s argument.
fn file_spec(p: &Path) -> String {
    format!("file:{}", p.display())
}

/// A scratch directory for a trace test, the path of trace `name` in it and the demo guest.
fn trace_setup(name: &str) -> (Scratch, PathBuf, PathBuf) {
    let dir = Scratch::new(name);
    let trace = dir.path(name);
    (dir, trace, demo_elf())
}

/// `rewind replay TRACE`.
fn replay(trace: &Path) -> Done {
    rewind(&["replay", s(trace)])
}

/// `rewind record` of the demo guest into `trace` with extra options.
fn record_demo(trace: &Path, kernel: &Path, extra: &[&str]) -> Done {
    let mut args = vec![
        "record",
        "-o",
        s(trace),
        "--kernel",
        s(kernel),
        "--serial",
        "null",
    ];
    args.extend_from_slice(extra);
    rewind(&args)
}

#[test]
fn record_replay_and_dump_the_demo() {
    let (dir, trace, demo) = trace_setup("demo.rwtrace");
    let o = record_demo(&trace, &demo, &["--check-interval", "100000"]);
    assert_exit(&o, 0);
    let err = &o.stderr;
    let size = std::fs::metadata(&trace).unwrap().len();
    let line = err
        .lines()
        .find(|l| l.starts_with("rewind: recorded "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.ends_with(&format!("to {} ({size} bytes)", trace.display())),
        "{line}"
    );
    let icount: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();

    // Recording again without --force is refused and leaves the trace alone.
    assert_error(&record_demo(&trace, &demo, &[]), 2, "already exists");
    assert_eq!(std::fs::metadata(&trace).unwrap().len(), size);

    // Replay needs nothing but the trace; output goes to stdout.
    let o = replay(&trace);
    assert_exit(&o, 0);
    assert!(o.stdout.contains("demo finished: pass"), "{}", o.stdout);
    let err = &o.stderr;
    let prefix = format!("rewind: replay matched the recording: {icount} instructions, state ");
    let ok = err
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{err}"));
    let hash = &ok[prefix.len()..];
    assert!(
        hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{ok}"
    );

    // Output to a file, but never over the trace itself.
    let out = dir.path("out.txt");
    assert_exit(
        &rewind(&["replay", s(&trace), "--serial", &file_spec(&out)]),
        0,
    );
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("demo finished: pass"));
    let o = rewind(&["replay", s(&trace), "--serial", &file_spec(&trace)]);
    assert_error(&o, 2, "refusing");
    assert_eq!(std::fs::metadata(&trace).unwrap().len(), size);

    // Dump: every event with icount, offset and payload.
    let o = rewind(&["dump", s(&trace)]);
    assert_exit(&o, 0);
    let text = &o.stdout;
    for needle in [
        "ClockRead",
        "StateHash",
        "StateRegisters",
        "GuestExit      kind=Pass code=0",
    ] {
        assert!(text.contains(needle), "{text}");
    }
    assert!(text.lines().last().unwrap().contains(" End"), "{text}");
    let o = rewind(&["dump", "--json", s(&trace)]);
    assert_exit(&o, 0);
    for l in o.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["type"].is_string());
    }
    let o = rewind(&["dump", "--stats", s(&trace)]);
    assert_exit(&o, 0);
    for needle in ["StateHash", "total events"] {
        assert!(o.stdout.contains(needle), "{}", o.stdout);
    }
}

#[test]
fn record_exit_status_and_instruction_limit() {
    let (_dir, trace, demo) = trace_setup("limit.rwtrace");
    let o = record_demo(&trace, &demo, &["--max-instructions", "5000"]);
    assert_error(&o, 124, "recorded 5000 instructions");
    let o = rewind(&["replay", s(&trace), "--serial", "null"]);
    assert_error(&o, 124, "replay matched the recording: 5000 instructions");
}

#[test]
fn corrupt_trace_is_rejected_with_its_offset() {
    let (_dir, trace, demo) = trace_setup("c.rwtrace");
    assert_exit(&record_demo(&trace, &demo, &[]), 0);
    let mut bytes = std::fs::read(&trace).unwrap();
    // Flip a byte in the middle of the first block's compressed data.
    let block = bytes.windows(4).position(|w| w == b"RWBK").unwrap();
    bytes[block + 40] ^= 0x20;
    std::fs::write(&trace, &bytes).unwrap();
    let o = replay(&trace);
    assert_error(&o, 2, s(&trace));
    assert!(
        o.stderr.contains(&format!("offset {block}")),
        "{}",
        o.stderr
    );
    // Not a trace at all.
    assert_error(&replay(&demo), 2, "not a rewind trace");
}

#[test]
fn trace_cut_short_replays_then_exits_4() {
    let (_dir, trace, demo) = trace_setup("cut.rwtrace");
    let o = record_demo(
        &trace,
        &demo,
        &["--check-interval", "50000", "--block-size", "16"],
    );
    assert_exit(&o, 0);
    let bytes = std::fs::read(&trace).unwrap();
    std::fs::write(&trace, &bytes[..bytes.len() / 2]).unwrap();
    let o = replay(&trace);
    assert_error(&o, 4, "recording was cut short at instruction ");
    // The guest output up to the cut was produced.
    assert!(o.stdout.contains("this is the demo guest"), "{}", o.stdout);
}

#[test]
fn changed_or_missing_image_is_named() {
    let (dir, trace, demo) = trace_setup("img.rwtrace");
    let kernel = dir.path("guest.elf");
    std::fs::copy(demo, &kernel).unwrap();
    assert_exit(&record_demo(&trace, &kernel, &[]), 0);
    let mut bytes = std::fs::read(&kernel).unwrap();
    bytes[3000] ^= 1;
    std::fs::write(&kernel, &bytes).unwrap();
    let o = replay(&trace);
    assert_error(&o, 2, "guest.elf");
    assert!(
        o.stderr.contains("changed since the recording"),
        "{}",
        o.stderr
    );
    std::fs::remove_file(&kernel).unwrap();
    assert_error(&replay(&trace), 2, "guest.elf: image missing");
}

#[test]
fn unix_socket_serial_carries_output_and_is_removed() {
    use std::io::Read;
    let (dir, trace, demo) = trace_setup("sock.rwtrace");
    let sock = dir.path("console.sock");
    let serial = format!("unix:{},server", sock.display());
    let child = rewind_proc(&[
        "record",
        "-o",
        s(&trace),
        "--kernel",
        s(&demo),
        "--serial",
        &serial,
    ]);
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(st) = std::os::unix::net::UnixStream::connect(&sock) {
            stream = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut stream = stream.expect("rewind never listened on the socket");
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let o = child.finish(TIMEOUT);
    assert_exit(&o, 0);
    assert!(out.contains("demo finished: pass"), "{out}");
    // Guest output went to the socket, not to stdout; the socket file is gone.
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    assert!(!sock.exists());
    let o = replay(&trace);
    assert_exit(&o, 0);
    assert_eq!(o.stdout, out);
}

/// The state line `--stop-at` prints for each stop, in order.
fn stop_states(o: &Done) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut at = None;
    for l in o.stderr.lines() {
        if let Some(n) = l.strip_prefix("rewind: stopped at instruction ") {
            at = n.trim().parse::<u64>().ok();
        } else if let (Some(n), Some(h)) = (at, l.trim().strip_prefix("state ")) {
            out.push((n, h.trim().to_string()));
            at = None;
        }
    }
    out
}

#[test]
fn stop_at_gives_the_same_state_forwards_and_after_seeking_back() {
    let (_dir, trace, demo) = trace_setup("stop.rwtrace");
    assert_exit(&record_demo(&trace, &demo, &[]), 0);
    let direct = rewind(&[
        "replay",
        s(&trace),
        "--serial",
        "null",
        "--stop-at",
        "500000",
    ]);
    assert_exit(&direct, 0);
    let via_seek = rewind(&[
        "replay",
        s(&trace),
        "--serial",
        "null",
        "--snapshot-every",
        "100000",
        "--stop-at",
        "900000,500000",
    ]);
    assert_exit(&via_seek, 0);
    let a = stop_states(&direct);
    let b = stop_states(&via_seek);
    assert_eq!(a.len(), 1, "{}", direct.stderr);
    assert_eq!(b.len(), 2, "{}", via_seek.stderr);
    assert_eq!(b[1], a[0], "seeking back to 500000 gives another state");
    assert_ne!(b[0].1, b[1].1, "states at 900000 and 500000 should differ");
    // Beyond the end of the recording: a clear error, not a hang.
    assert_error(
        &rewind(&[
            "replay",
            s(&trace),
            "--serial",
            "null",
            "--stop-at",
            "999999999999",
        ]),
        2,
        "end",
    );
}

/// The events a text dump printed: (icount, kind).
fn dumped_events(o: &Done) -> Vec<(u64, String)> {
    o.stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let icount = w.next()?.parse().ok()?;
            let _position = w.next()?;
            Some((icount, w.next()?.to_string()))
        })
        .collect()
}

#[test]
fn dump_filters_by_kind_and_instruction_range() {
    let (_dir, trace, demo) = trace_setup("filter.rwtrace");
    assert_exit(
        &record_demo(&trace, &demo, &["--check-interval", "100000"]),
        0,
    );
    let all = dumped_events(&rewind(&["dump", s(&trace)]));
    let hashes = all.iter().filter(|(_, k)| k == "StateHash").count();
    assert!(hashes > 5, "{all:?}");
    assert!(all.iter().any(|(_, k)| k == "StateRegisters"));
    let state = rewind(&["dump", s(&trace), "--kind", "state"]);
    assert_exit(&state, 0);
    let want: Vec<_> = all
        .iter()
        .filter(|(_, k)| k == "StateHash" || k == "StateRegisters")
        .cloned()
        .collect();
    assert_eq!(dumped_events(&state), want);
    let (lo, hi) = (all[3].0, all[all.len() - 4].0);
    let ranged = dumped_events(&rewind(&[
        "dump",
        s(&trace),
        "--from",
        &lo.to_string(),
        "--to",
        &hi.to_string(),
        "--kind",
        "StateHash,exit,end",
    ]));
    let want: Vec<_> = all
        .iter()
        .filter(|(i, k)| {
            (lo..=hi).contains(i) && matches!(k.as_str(), "StateHash" | "GuestExit" | "End")
        })
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ranged, want);
    let bad = rewind(&["dump", s(&trace), "--kind", "sreial"]);
    assert_error(&bad, 2, "unknown event kind 'sreial'");
}

/// `dump --follow` prints a recording's events while it is written and stops at its end.
#[test]
fn dump_follow_tracks_a_recording_in_progress() {
    use std::io::Write;
    let Some(elf) = common::guest_elf("interactive") else {
        return;
    };
    let dir = Scratch::new("follow");
    let trace = dir.path("live.rwtrace");
    let mut rec = common::rewind_cmd()
        .args([
            "record",
            "-o",
            s(&trace),
            "--bios",
            "none",
            "--kernel",
            s(&elf),
        ])
        .args(["--serial", "stdio"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start rewind record");
    let mut stdin = rec.stdin.take().expect("stdin");
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !trace.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let follow = common::rewind_proc(&["dump", s(&trace), "--follow", "--kind", "serial,exit"]);
    // Input while the dump is following, then the guest's own exit.
    std::thread::sleep(Duration::from_millis(600));
    stdin.write_all(b"first line\n").expect("type");
    std::thread::sleep(Duration::from_millis(600));
    stdin.write_all(b"quit\n").expect("type");
    drop(stdin);
    let status = loop {
        if let Some(st) = rec.try_wait().expect("record status") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = rec.kill();
            panic!("the recording did not end after 'quit'");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let o = follow.finish(TIMEOUT);
    assert_exit(&o, 0);
    let events = dumped_events(&o);
    let kinds: Vec<&str> = events.iter().map(|(_, k)| k.as_str()).collect();
    assert!(kinds.contains(&"SerialInput"), "{}", o.stdout);
    assert_eq!(kinds.last(), Some(&"GuestExit"), "{}", o.stdout);
    assert_eq!(
        o.stdout
            .lines()
            .filter(|l| l.starts_with("# rewind trace"))
            .count(),
        1,
        "one header: {}",
        o.stdout
    );
    assert!(!o.stdout.contains("TRUNCATED"), "{}", o.stdout);
}

/// The two snapshot files are told apart: a single snapshot given to `--snapshots` (which takes
/// the recording's snapshot file) says what it is and what takes it.
#[test]
fn snapshot_files_of_the_wrong_kind_are_explained() {
    let (dir, trace, demo) = trace_setup("kinds.rwtrace");
    assert_exit(&record_demo(&trace, &demo, &[]), 0);
    let single = dir.path("at1000.snap");
    assert_exit(
        &rewind(&[
            "replay",
            s(&trace),
            "--serial",
            "null",
            "--stop-at",
            "1000",
            "--save-snapshot",
            s(&single),
        ]),
        0,
    );
    let o = rewind(&[
        "replay",
        s(&trace),
        "--snapshots",
        s(&single),
        "--from",
        "1000",
    ]);
    assert_error(&o, 2, "it is a single machine snapshot");
    assert!(o.stderr.contains("x-rewind-load-snapshot"), "{}", o.stderr);
    // A trace given as the snapshot file.
    let o = rewind(&[
        "replay",
        s(&trace),
        "--snapshots",
        s(&trace),
        "--from",
        "1000",
    ]);
    assert_error(&o, 2, "it is a trace");
}

/// `record` shows a progress line on a terminal (through `script`'s pseudo-terminal) and none
/// when standard error is a pipe or with `--quiet`.
#[test]
fn record_shows_progress_only_on_a_terminal() {
    if !common::have_tool("script") {
        common::skip_because("util-linux `script` is not installed");
        return;
    }
    let dir = Scratch::new("progress");
    let trace = dir.path("p.rwtrace");
    let bench = repo_root().join("guests/prebuilt/bench.elf");
    let line = |quiet: &str| {
        format!(
            "{} record {quiet} -o {} --force --kernel {} --serial null --max-instructions 120000000",
            env!("CARGO_BIN_EXE_rewind"),
            trace.display(),
            bench.display()
        )
    };
    let on_tty = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run script");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_tty(line(""));
    assert!(
        shown.contains("instructions, guest") && shown.contains("MIPS"),
        "{shown}"
    );
    assert!(!on_tty(line("--quiet")).contains("MIPS"));
    let piped = rewind(&[
        "record",
        "-o",
        s(&trace),
        "--force",
        "--kernel",
        s(&bench),
        "--serial",
        "null",
        "--max-instructions",
        "120000000",
    ]);
    assert_exit(&piped, 124);
    assert!(!piped.stderr.contains("MIPS"), "{}", piped.stderr);
}
