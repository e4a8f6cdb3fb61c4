//! The `rewind` command line: usage errors, bad images, and the demo.

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
    assert!(out.contains("--- rewind demo summary ---"), "{out}");
    assert!(out.contains("exit status:        0"), "{out}");
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
