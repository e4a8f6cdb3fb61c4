//! Firmware we did not write: Debian's OpenSBI (`fw_jump`, `fw_dynamic`, as `.bin` and as the
//! position-independent `.elf` that QEMU refuses) boots our S-mode payload (`guests/firmware`),
//! and rewind's console output equals QEMU's byte for byte (banner, device probing, SBI calls,
//! timer interrupt, SBI shutdown).
//!
//! Needs the `opensbi` package and the RISC-V cross compiler; skips without them unless
//! `REWIND_REQUIRE_GUESTS` is set (CI sets it and installs both).

#[allow(dead_code)]
mod common;

use common::{have_tool, repo_root, required, rewind_cmd, run_ok, skip_because, Proc, QEMU_CPU};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one boot may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);

const OPENSBI_DIR: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic";

/// The payload ELF and raw image, built once per test process (tests run in parallel and
/// must not rewrite the files while another test's QEMU reads them); `None` = skip.
fn payload() -> Option<(PathBuf, PathBuf)> {
    static BUILT: std::sync::OnceLock<Option<(PathBuf, PathBuf)>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_payload).clone()
}

/// Builds the payload ELF and raw image into the test's temp dir; `None` = skip.
fn build_payload() -> Option<(PathBuf, PathBuf)> {
    let have_gcc = have_tool("riscv64-unknown-elf-gcc");
    let have_opensbi = Path::new(OPENSBI_DIR).join("fw_jump.bin").exists();
    if !have_gcc || !have_opensbi {
        skip_because("riscv64-unknown-elf-gcc or Debian's opensbi package is missing");
        return None;
    }
    let src = repo_root().join("guests/firmware");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbi_payload");
    std::fs::create_dir_all(&out).expect("temp dir");
    let elf = out.join("sbi_payload.elf");
    let bin = out.join("sbi_payload.bin");
    let mut gcc = Command::new("riscv64-unknown-elf-gcc");
    gcc.args([
        "-march=rv64gc",
        "-mabi=lp64d",
        "-nostdlib",
        "-Wl,--no-warn-rwx-segments",
        "-T",
    ])
    .arg(src.join("sbi_payload.ld"))
    .arg("-o")
    .arg(&elf)
    .arg(src.join("sbi_payload.S"));
    run_ok(&mut gcc, "building the SBI payload");
    let mut objcopy = Command::new("riscv64-unknown-elf-objcopy");
    objcopy.args(["-O", "binary"]).arg(&elf).arg(&bin);
    run_ok(&mut objcopy, "objcopy of the SBI payload");
    Some((elf, bin))
}

fn rewind(bios: &Path, kernel: &Path) -> (String, Option<i32>) {
    let mut cmd = rewind_cmd();
    cmd.args([
        "run",
        "--serial",
        "stdio",
        "--max-instructions",
        "2000000000",
    ])
    .arg("--bios")
    .arg(bios)
    .arg("--kernel")
    .arg(kernel);
    let out = Proc::spawn(cmd, None).finish(TIMEOUT);
    (out.stdout, out.code)
}

fn qemu(bios: &Path, kernel: &Path) -> String {
    let mut cmd = Command::new("qemu-system-riscv64");
    cmd.args(["-M", "virt", "-m", "256M", "-cpu", QEMU_CPU])
        .args(["-nographic", "-icount", "shift=0", "-bios"])
        .arg(bios)
        .arg("-kernel")
        .arg(kernel);
    let out = Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(out.code, Some(0), "QEMU failed: {}", out.stderr);
    out.stdout
}

fn check(firmware: &str, use_elf_payload: bool) {
    let Some((elf, bin)) = payload() else { return };
    let bios = Path::new(OPENSBI_DIR).join(firmware);
    let kernel = if use_elf_payload { &elf } else { &bin };
    let (ours, code) = rewind(&bios, kernel);
    assert_eq!(code, Some(0), "rewind exit status; output:\n{ours}");
    assert!(ours.contains("OpenSBI v"), "no OpenSBI banner:\n{ours}");
    assert!(
        ours.contains("Boot HART Base ISA        : rv64imafdc"),
        "{ours}"
    );
    // OpenSBI's console turns "\n" into "\r\n".
    assert!(
        ours.contains("hello from S-mode payload\r\ntimer interrupt via SBI, shutting down\r\n"),
        "{ours}"
    );
    // QEMU refuses the position-independent .elf firmware: compare against its .bin twin.
    let qemu_bios = Path::new(OPENSBI_DIR).join(firmware.replace(".elf", ".bin"));
    if have_tool("qemu-system-riscv64") {
        let theirs = qemu(&qemu_bios, kernel);
        assert_eq!(
            ours, theirs,
            "rewind and QEMU console output differ for {firmware}"
        );
    } else {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but qemu-system-riscv64 is missing"
        );
    }
}

#[test]
fn opensbi_fw_jump_bin_matches_qemu() {
    check("fw_jump.bin", false);
}

#[test]
fn opensbi_fw_dynamic_bin_matches_qemu() {
    check("fw_dynamic.bin", false);
}

#[test]
fn opensbi_fw_dynamic_elf_with_elf_payload_matches_qemu() {
    check("fw_dynamic.elf", true);
}

#[test]
fn opensbi_fw_jump_elf_matches_qemu() {
    check("fw_jump.elf", false);
}
