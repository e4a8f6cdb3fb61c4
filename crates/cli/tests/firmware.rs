//! Firmware we did not write: Debian's OpenSBI (`fw_jump`, `fw_dynamic`, as `.bin` and as the
//! position-independent `.elf` that QEMU refuses) boots our S-mode payload (`guests/firmware`),
//! and rewind's console output equals QEMU's byte for byte (banner, device probing, SBI calls,
//! timer interrupt, SBI shutdown).
//!
//! Needs the `opensbi` package and the RISC-V cross compiler; skips without them unless
//! `REWIND_REQUIRE_GUESTS` is set (CI sets it and installs both).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OPENSBI_DIR: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic";

/// QEMU options that make its default CPU expose exactly what rewind implements (RV64GC, no
/// hypervisor, no Sstc, no bit-manipulation or Svpbmt), so OpenSBI probes the same features.
const QEMU_CPU: &str =
    "rv64,h=false,sstc=false,zba=false,zbb=false,zbc=false,zbs=false,svpbmt=false";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required() -> bool {
    std::env::var_os("REWIND_REQUIRE_GUESTS").is_some()
}

/// Builds the payload ELF and raw image into the test's temp dir; `None` = skip.
fn payload() -> Option<(PathBuf, PathBuf)> {
    let have_gcc = Command::new("riscv64-unknown-elf-gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let have_opensbi = Path::new(OPENSBI_DIR).join("fw_jump.bin").exists();
    if !have_gcc || !have_opensbi {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but riscv64-unknown-elf-gcc or the opensbi package is missing"
        );
        eprintln!(
            "SKIPPING firmware tests: need riscv64-unknown-elf-gcc and Debian's opensbi package"
        );
        return None;
    }
    let src = repo_root().join("guests/firmware");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sbi_payload");
    std::fs::create_dir_all(&out).expect("temp dir");
    let elf = out.join("sbi_payload.elf");
    let bin = out.join("sbi_payload.bin");
    let status = Command::new("riscv64-unknown-elf-gcc")
        .args([
            "-march=rv64gc",
            "-mabi=lp64d",
            "-nostdlib",
            "-Wl,--no-warn-rwx-segments",
            "-T",
        ])
        .arg(src.join("sbi_payload.ld"))
        .arg("-o")
        .arg(&elf)
        .arg(src.join("sbi_payload.S"))
        .status()
        .expect("run riscv64-unknown-elf-gcc");
    assert!(status.success(), "building the SBI payload failed");
    let status = Command::new("riscv64-unknown-elf-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .status()
        .expect("run objcopy");
    assert!(status.success(), "objcopy of the SBI payload failed");
    Some((elf, bin))
}

fn rewind(bios: &Path, kernel: &Path) -> (String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args([
            "run",
            "--serial",
            "stdio",
            "--max-instructions",
            "2000000000",
            "--bios",
        ])
        .arg(bios)
        .arg("--kernel")
        .arg(kernel)
        .stdin(Stdio::null())
        .output()
        .expect("run rewind");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

fn qemu(bios: &Path, kernel: &Path) -> Option<String> {
    let out = Command::new("timeout")
        .args([
            "60",
            "qemu-system-riscv64",
            "-M",
            "virt",
            "-m",
            "256M",
            "-cpu",
            QEMU_CPU,
        ])
        .args(["-nographic", "-icount", "shift=0", "-bios"])
        .arg(bios)
        .arg("-kernel")
        .arg(kernel)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "QEMU failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
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
    let have_qemu = Command::new("qemu-system-riscv64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_qemu {
        let theirs = qemu(&qemu_bios, kernel).expect("QEMU ran");
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
