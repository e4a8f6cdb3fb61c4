//! Traces, their images and the files the command line names as untrusted or unusual input
//! (docs/security.md): images are found by content and never read from device nodes or FIFOs,
//! a file that does not match is only said to differ, inputs are bounded.
//! Without `riscv64-unknown-elf-gcc` the guest-based tests skip, unless `REWIND_REQUIRE_GUESTS`
//! is set.

#[allow(dead_code)]
mod common;

use common::{guests_dir, run_rewind, Done, Scratch};
use rewind_log::{TraceHeader, TraceReader, TraceWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one rewind process may run: everything here is refused or finishes in well under
/// a second, so a hang (a FIFO opened, `/dev/zero` read) shows as a timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    let start = Instant::now();
    let d = run_rewind(args, TIMEOUT);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "rewind {args:?} took {:?}",
        start.elapsed()
    );
    d
}

/// Records `elf` (copied to `scratch/NAME`) into `scratch/t.rwtrace`; returns the trace and
/// the copy's path.
fn record_copy(scratch: &Scratch, elf: &Path, name: &str) -> (PathBuf, PathBuf) {
    let copy = scratch.path(name);
    std::fs::copy(elf, &copy).expect("copy ELF");
    let trace = scratch.path("t.rwtrace");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(&copy),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(42), "record: {}", d.describe());
    (trace, copy)
}

/// Writes `dst`: the trace `src` with the kernel's recorded path replaced by `kernel` (size
/// and hash kept), events and footer unchanged.
fn with_kernel_path(src: &Path, dst: &Path, kernel: &str) {
    use rewind_log::{Event, Footer};
    let mut r = TraceReader::open(src).expect("open trace");
    let mut header: TraceHeader = r.header().clone();
    header.machine_config["kernel"] = kernel.into();
    for i in &mut header.images {
        i.file_name = kernel.to_string();
    }
    let footer = r.footer().cloned().expect("finished trace");
    let mut w = TraceWriter::create_overwrite(dst, &header).expect("create trace");
    while let Some(e) = r.next_event().expect("read event") {
        if e.event != Event::End {
            w.push(e.icount, &e.event).expect("push event");
        }
    }
    w.finish(&Footer::new(footer.final_icount, footer.final_state_hash))
        .expect("finish trace");
}

fn replay(trace: &Path, extra: &[String]) -> Done {
    let mut args = vec![s("replay"), s(trace)];
    args.extend_from_slice(extra);
    rewind(&args)
}

#[track_caller]
fn assert_refused(d: &Done, what: &str, needles: &[&str]) {
    assert_eq!(d.code, Some(2), "{what}: {}", d.describe());
    for n in needles {
        assert!(
            d.stderr.contains(n),
            "{what}: must say {n:?}: {}",
            d.describe()
        );
    }
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo failed");
}

/// A trace header naming `/dev/zero`, a FIFO or an unrelated file as its kernel: refused at
/// once, the FIFO never opened, nothing said about the unrelated file but that it differs.
#[test]
fn images_named_by_a_trace_are_never_devices_fifos_or_strangers() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("trust-images");
    let (trace, _) = record_copy(&scratch, &dir.join("build/exit_42.elf"), "guest.elf");
    let sub = scratch.path("elsewhere");
    std::fs::create_dir_all(&sub).expect("mkdir");

    let t = sub.join("zero.rwtrace");
    with_kernel_path(&trace, &t, "/dev/zero");
    let d = replay(&t, &[]);
    assert_refused(&d, "/dev/zero", &["/dev/zero", "not a regular file"]);

    let fifo = scratch.path("fifo");
    mkfifo(&fifo);
    let t = sub.join("fifo.rwtrace");
    with_kernel_path(&trace, &t, &s(&fifo));
    let d = replay(&t, &[]);
    assert_refused(&d, "FIFO", &["fifo", "not a regular file"]);

    // An unrelated file: its size and hash stay private.
    let secret = scratch.write("secret.txt", b"the quick brown fox, 31 bytes..");
    let secret_hash = blake3::hash(&std::fs::read(&secret).expect("read"))
        .to_hex()
        .to_string();
    let t = sub.join("stranger.rwtrace");
    with_kernel_path(&trace, &t, &s(&secret));
    let d = replay(&t, &[]);
    assert_refused(&d, "unrelated file", &["secret.txt", "differs"]);
    for leak in [&secret_hash[..16], "31 bytes", "31-byte"] {
        assert!(
            !d.stderr.contains(leak),
            "the message describes the unrelated file ({leak}): {}",
            d.describe()
        );
    }
    // The same with an unrelated file of exactly the recorded size.
    let recorded = std::fs::metadata(scratch.path("guest.elf"))
        .expect("stat")
        .len() as usize;
    let same_size = scratch.write("same-size.bin", vec![0x5au8; recorded]);
    let t = sub.join("same-size.rwtrace");
    with_kernel_path(&trace, &t, &s(&same_size));
    let d = replay(&t, &[]);
    assert_refused(&d, "same-size file", &["same-size.bin", "differs"]);
    let h = blake3::hash(&vec![0x5au8; recorded]).to_hex().to_string();
    assert!(
        !d.stderr.contains(&h[..16]),
        "hash of the local file printed: {}",
        d.describe()
    );
}

/// An image is found by content next to the trace when its recorded path is gone or holds
/// something else; `--image NAME=PATH` names it explicitly and must match.
#[test]
fn images_are_found_by_content_or_remapped() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("trust-find");
    let (trace, copy) = record_copy(&scratch, &dir.join("build/exit_42.elf"), "guest.elf");
    let ok = |d: &Done, what: &str| {
        assert_eq!(d.code, Some(42), "{what}: {}", d.describe());
        assert!(
            d.stderr.contains("replay matched the recording"),
            "{what}: {}",
            d.describe()
        );
    };
    ok(&replay(&trace, &[]), "recorded path");

    // The trace and its image moved to another directory under another name.
    let moved = scratch.path("moved");
    std::fs::create_dir_all(&moved).expect("mkdir");
    let moved_trace = moved.join("t.rwtrace");
    std::fs::copy(&trace, &moved_trace).expect("copy trace");
    std::fs::rename(&copy, moved.join("renamed-kernel.bin")).expect("move ELF");
    ok(&replay(&moved_trace, &[]), "image next to the trace");

    // The recorded path now holds something else: still found next to the trace.
    std::fs::write(&copy, b"something else").expect("write");
    ok(&replay(&moved_trace, &[]), "recorded path differs");
    // Not found anywhere: the message says where it looked and how to name it.
    std::fs::rename(moved.join("renamed-kernel.bin"), scratch.path("hidden.bin")).expect("move");
    let d = replay(&moved_trace, &[]);
    assert_refused(
        &d,
        "nowhere",
        &[
            "guest.elf",
            "changed since the recording",
            "--image kernel=",
        ],
    );

    // Named explicitly (by role and by recorded file name).
    let hidden = scratch.path("hidden.bin");
    for name in ["kernel", "guest.elf"] {
        let d = replay(
            &moved_trace,
            &[s("--image"), format!("{name}={}", hidden.display())],
        );
        ok(&d, &format!("--image {name}=..."));
    }
    // A remap to another file is refused as differing; to a device as not a regular file.
    let d = replay(
        &moved_trace,
        &[s("--image"), format!("kernel={}", copy.display())],
    );
    assert_refused(&d, "--image to another file", &["guest.elf", "differs"]);
    let d = replay(&moved_trace, &[s("--image"), s("kernel=/dev/zero")]);
    assert_refused(
        &d,
        "--image /dev/zero",
        &["/dev/zero", "not a regular file"],
    );
}

/// Device nodes and FIFOs named on the command line as images or serial input are refused at
/// once instead of being read without end (or blocking).
#[test]
fn command_line_inputs_are_regular_files() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("trust-cli");
    let elf = dir.join("build/exit_42.elf");
    let fifo = scratch.path("fifo");
    mkfifo(&fifo);
    for (opt, bad) in [
        ("--kernel", s("/dev/zero")),
        ("--kernel", s(&fifo)),
        ("--bios", s("/dev/zero")),
        ("--initrd", s("/dev/urandom")),
    ] {
        let mut args = vec![s("run"), s("--bios"), s("none"), s("--kernel"), s(&elf)];
        match opt {
            "--kernel" => args[4] = bad.clone(),
            "--bios" => args[2] = bad.clone(),
            _ => args.extend([s(opt), bad.clone()]),
        }
        args.extend([s("--serial"), s("null")]);
        let d = rewind(&args);
        assert_refused(
            &d,
            &format!("run {opt} {bad}"),
            &[&bad, "not a regular file"],
        );
    }
    let trace = scratch.path("t.rwtrace");
    for bad in [s("/dev/zero"), s(&fifo)] {
        let d = rewind(&[
            s("record"),
            s("-o"),
            s(&trace),
            s("--force"),
            s("--bios"),
            s("none"),
            s("--kernel"),
            s(&elf),
            s("--serial"),
            s("null"),
            s("--serial-input"),
            bad.clone(),
        ]);
        assert_refused(
            &d,
            &format!("--serial-input {bad}"),
            &[&bad, "not a regular file"],
        );
    }
    // A trace that is a device or FIFO is not opened either.
    for bad in [s("/dev/zero"), s(&fifo)] {
        let d = rewind(&[s("replay"), bad.clone()]);
        assert_refused(&d, &format!("replay {bad}"), &[&bad, "not a regular file"]);
        let d = rewind(&[s("dump"), bad.clone()]);
        assert_refused(&d, &format!("dump {bad}"), &[&bad, "not a regular file"]);
    }
}

/// `-m 64G` works on a host with less memory for a guest that touches little of it: RAM is
/// reserved, not committed. A recording made so replays (the header's RAM size is 64 GiB).
#[test]
fn sixty_four_gib_of_ram_is_reserved_not_committed() {
    let scratch = Scratch::new("trust-64g");
    let demo = common::repo_root().join("guests/prebuilt/demo.elf");
    let d = rewind(&[
        s("run"),
        s("-m"),
        s("64G"),
        s("--kernel"),
        s(&demo),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(0), "run -m 64G: {}", d.describe());
    let trace = scratch.path("big.rwtrace");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("-m"),
        s("64G"),
        s("--kernel"),
        s(&demo),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(0), "record -m 64G: {}", d.describe());
    let d = replay(&trace, &[]);
    assert_eq!(
        d.code,
        Some(0),
        "replay of a 64 GiB recording: {}",
        d.describe()
    );
    assert!(
        d.stderr.contains("replay matched the recording"),
        "{}",
        d.describe()
    );
}

/// Where the host cannot even reserve the address space (`ulimit -v`), `-m 64G` and the replay
/// of a 64 GiB recording are clear errors (exit 2), not a crash.
#[test]
fn unreservable_ram_is_a_clear_error() {
    let scratch = Scratch::new("trust-ulimit");
    let demo = common::repo_root().join("guests/prebuilt/demo.elf");
    let trace = scratch.path("big.rwtrace");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("-m"),
        s("64G"),
        s("--kernel"),
        s(&demo),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(0), "record -m 64G: {}", d.describe());
    let bin = env!("CARGO_BIN_EXE_rewind");
    for args in [
        format!("run -m 64G --kernel '{}' --serial null", demo.display()),
        format!("replay '{}'", trace.display()),
    ] {
        // 4 GB of address space: plenty for rewind itself, not for 64 GiB of RAM.
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-c", &format!("ulimit -v 4000000 && exec '{bin}' {args}")]);
        let d = common::run_with_input(cmd, b"", TIMEOUT);
        assert_refused(&d, &args, &["cannot reserve", "guest RAM of 65536 MiB"]);
        assert!(!d.stderr.contains("panicked"), "{}", d.describe());
    }
}
