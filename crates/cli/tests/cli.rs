//! The `rewind` command line: usage errors, bad images, the demo, and record / replay / dump
//! of the demo guest (overwrite refusal, corrupt, cut and changed-image traces).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn rewind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot start rewind")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// A scratch file unique to this test process.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rewind-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
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
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("rewind {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = rewind(&["run", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));

    let o = rewind(&["run", "-m", "lots", "--kernel", "x.elf"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("invalid size 'lots'"), "{}", stderr(&o));

    let o = rewind(&["run", "--serial", "tcp:1", "--kernel", "x.elf"]);
    assert_eq!(o.status.code(), Some(2));

    let o = rewind(&["run", "--icount-shift", "11", "--kernel", "x.elf"]);
    assert_eq!(o.status.code(), Some(2));

    let o = rewind(&[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn nothing_to_run_is_an_error() {
    let o = rewind(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("rewind: nothing to run"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_file_is_named() {
    let o = rewind(&["run", "--kernel", "/nonexistent/guest.elf"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "rewind: /nonexistent/guest.elf: no such file\n");

    let o = rewind(&["run", "--bios", "/nonexistent/fw.bin"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "rewind: /nonexistent/fw.bin: no such file\n");
}

#[test]
fn non_elf_kernel_is_rejected() {
    let p = temp_file("notes.txt", b"just some text\n");
    let o = rewind(&["run", "--kernel", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("rewind: {}: not an ELF file", p.display())),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let _ = std::fs::remove_file(p);
}

#[test]
fn foreign_elf_is_rejected() {
    // The rewind binary itself is an ELF for the host, not for RISC-V.
    let exe = env!("CARGO_BIN_EXE_rewind");
    let o = rewind(&["run", "--kernel", exe]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("rewind: {exe}: not a RISC-V 64-bit ELF")),
        "{e}"
    );
}

#[test]
fn image_larger_than_ram_is_rejected() {
    let p = temp_file(
        "big.elf",
        &elf_with_segment(0x8000_0000, &[0x13, 0, 0, 0], 64 << 20),
    );
    let o = rewind(&["run", "-m", "16M", "--kernel", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!(
            "rewind: {}: image needs 67108864 bytes, larger than RAM",
            p.display()
        )),
        "{e}"
    );
    let _ = std::fs::remove_file(p);

    let p = temp_file(
        "low.elf",
        &elf_with_segment(0x1000_0000, &[0x13, 0, 0, 0], 4),
    );
    let o = rewind(&["run", "--kernel", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is outside RAM"), "{}", stderr(&o));
    let _ = std::fs::remove_file(p);
}

#[test]
fn demo_runs_and_passes() {
    let o = rewind(&["demo"]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{out}\nstderr:\n{}",
        stderr(&o)
    );
    assert!(out.contains("this is the demo guest"), "{out}");
    assert!(out.contains("primes below 100: 2 3 5 7 11 13"), "{out}");
    assert!(out.contains("device tree found"), "{out}");
    assert!(
        out.contains("--- rewind demo: record with scripted serial input, then replay ---"),
        "{out}"
    );
    assert!(out.contains("exit status 0, output blake3"), "{out}");
    assert!(out.contains("verdict: MATCH"), "{out}");
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
    let out = std::env::temp_dir().join(format!("rewind-cli-{}-serial.txt", std::process::id()));
    let demo = repo_file("guests/prebuilt/demo.elf");
    let o = rewind(&[
        "run",
        "--kernel",
        demo.to_str().unwrap(),
        "--serial",
        &format!("file:{}", out.display()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("primes below 100: 2 3 5 7"), "{text}");
    let _ = std::fs::remove_file(out);
}

#[test]
fn instruction_limit_exits_124() {
    let demo = repo_file("guests/prebuilt/demo.elf");
    let o = rewind(&[
        "run",
        "--kernel",
        demo.to_str().unwrap(),
        "--serial",
        "null",
        "--max-instructions",
        "1000",
    ]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("after 1000 instructions"),
        "{}",
        stderr(&o)
    );
}

/// A scratch directory for trace tests.
fn trace_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `rewind record` of the demo guest into `trace` with extra options.
fn record_demo(trace: &Path, kernel: &Path, extra: &[&str]) -> Output {
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
    let dir = trace_dir();
    let trace = dir.path().join("demo.rwtrace");
    let demo = repo_file("guests/prebuilt/demo.elf");
    let o = record_demo(&trace, &demo, &["--check-interval", "100000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
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
    let o = record_demo(&trace, &demo, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&trace).unwrap().len(), size);

    // Replay needs nothing but the trace; output goes to stdout.
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("demo finished: pass"), "{}", stdout(&o));
    let err = stderr(&o);
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
    let out = dir.path().join("out.txt");
    let o = rewind(&[
        "replay",
        s(&trace),
        "--serial",
        &format!("file:{}", out.display()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("demo finished: pass"));
    let o = rewind(&[
        "replay",
        s(&trace),
        "--serial",
        &format!("file:{}", trace.display()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refusing"), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&trace).unwrap().len(), size);

    // Dump: every event with icount, offset and payload.
    let o = rewind(&["dump", s(&trace)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("ClockRead"), "{text}");
    assert!(text.contains("StateHash"), "{text}");
    assert!(text.contains("StateRegisters"), "{text}");
    assert!(text.contains("GuestExit      kind=Pass code=0"), "{text}");
    assert!(text.lines().last().unwrap().contains(" End"), "{text}");
    let o = rewind(&["dump", "--json", s(&trace)]);
    assert_eq!(o.status.code(), Some(0));
    for l in stdout(&o).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["type"].is_string());
    }
    let o = rewind(&["dump", "--stats", s(&trace)]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("StateHash"), "{}", stdout(&o));
    assert!(stdout(&o).contains("total events"), "{}", stdout(&o));
}

#[test]
fn record_exit_status_and_instruction_limit() {
    let dir = trace_dir();
    let trace = dir.path().join("limit.rwtrace");
    let demo = repo_file("guests/prebuilt/demo.elf");
    let o = record_demo(&trace, &demo, &["--max-instructions", "5000"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("recorded 5000 instructions"),
        "{}",
        stderr(&o)
    );
    let o = rewind(&["replay", s(&trace), "--serial", "null"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("replay matched the recording: 5000 instructions"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corrupt_trace_is_rejected_with_its_offset() {
    let dir = trace_dir();
    let trace = dir.path().join("c.rwtrace");
    let demo = repo_file("guests/prebuilt/demo.elf");
    assert_eq!(record_demo(&trace, &demo, &[]).status.code(), Some(0));
    let mut bytes = std::fs::read(&trace).unwrap();
    // Flip a byte in the middle of the first block's compressed data.
    let block = bytes.windows(4).position(|w| w == b"RWBK").unwrap();
    bytes[block + 40] ^= 0x20;
    std::fs::write(&trace, &bytes).unwrap();
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(s(&trace)), "{err}");
    assert!(err.contains(&format!("offset {block}")), "{err}");
    // Not a trace at all.
    let o = rewind(&["replay", s(&demo)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a rewind trace"), "{}", stderr(&o));
}

#[test]
fn trace_cut_short_replays_then_exits_4() {
    let dir = trace_dir();
    let trace = dir.path().join("cut.rwtrace");
    let demo = repo_file("guests/prebuilt/demo.elf");
    let o = record_demo(
        &trace,
        &demo,
        &["--check-interval", "50000", "--block-size", "16"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&trace).unwrap();
    std::fs::write(&trace, &bytes[..bytes.len() / 2]).unwrap();
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("recording was cut short at instruction "),
        "{err}"
    );
    // The guest output up to the cut was produced.
    assert!(
        stdout(&o).contains("this is the demo guest"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn changed_or_missing_image_is_named() {
    let dir = trace_dir();
    let trace = dir.path().join("img.rwtrace");
    let kernel = dir.path().join("guest.elf");
    std::fs::copy(repo_file("guests/prebuilt/demo.elf"), &kernel).unwrap();
    assert_eq!(record_demo(&trace, &kernel, &[]).status.code(), Some(0));
    let mut bytes = std::fs::read(&kernel).unwrap();
    bytes[3000] ^= 1;
    std::fs::write(&kernel, &bytes).unwrap();
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("guest.elf") && err.contains("changed since the recording"),
        "{err}"
    );
    std::fs::remove_file(&kernel).unwrap();
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("guest.elf: image missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unix_socket_serial_carries_output_and_is_removed() {
    use std::io::Read;
    let dir = trace_dir();
    let sock = dir.path().join("console.sock");
    let trace = dir.path().join("sock.rwtrace");
    let demo = repo_file("guests/prebuilt/demo.elf");
    let child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["record", "-o", s(&trace), "--kernel", s(&demo), "--serial"])
        .arg(format!("unix:{},server", sock.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(st) = std::os::unix::net::UnixStream::connect(&sock) {
            stream = Some(st);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let mut stream = stream.expect("rewind never listened on the socket");
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.contains("demo finished: pass"), "{out}");
    // Guest output went to the socket, not to stdout; the socket file is gone.
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(!sock.exists());
    let o = rewind(&["replay", s(&trace)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), out);
}
