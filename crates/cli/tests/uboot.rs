//! Firmware we did not write, interactive: Debian's U-Boot (`u-boot-qemu`, the S-mode build for
//! QEMU's virt board) on Debian's OpenSBI boots to its prompt, is driven through the serial
//! console (stop the autoboot, `version`, `setexpr`/`echo`, `sleep` on the SBI timer,
//! `poweroff` through SBI), and the transcript from the first prompt on is the same under the
//! JIT, under the interpreter and under QEMU 10. A recording made with the JIT replays with the
//! interpreter to the same output and instruction count.
//!
//! Needs the `u-boot-qemu` and `opensbi` packages (installed by scripts/install-deps.sh); skips
//! without them unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{have_tool, recorded_icount, replay_matched_line, required, rewind_cmd, skip_because};
use common::{Scratch, QEMU_CPU};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OPENSBI: &str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
const UBOOT: &str = "/usr/lib/u-boot/qemu-riscv64_smode/uboot.elf";
/// How long one wait for console output may take.
const STEP: Duration = Duration::from_secs(120);

/// The commands typed at the prompt, in order (the last one powers the machine off).
const COMMANDS: &[&str] = &[
    "version",
    "setexpr v 0x1234 * 0x10",
    "echo v=$v",
    "sleep 1",
    "poweroff",
];

/// Run `cmd` (a machine booting U-Boot with its console on stdio) and type: a key when the
/// autoboot countdown shows, then each command once the prompt is back. Returns the console
/// output and the exit status; stderr is returned too (rewind reports the icount there).
fn drive(mut cmd: Command) -> (String, String, Option<i32>) {
    let mut out = tempfile::tempfile().expect("a temporary file for stdout");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone().expect("stdout handle")))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let err = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = e.read_to_string(&mut s);
            s
        })
    });
    let mut text = || {
        let mut v = Vec::new();
        let _ = out.seek(SeekFrom::Start(0));
        let _ = out.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    };
    let mut wait_for = |what: &str, count: usize, child: &mut std::process::Child| {
        let start = Instant::now();
        loop {
            let t = text();
            if t.matches(what).count() >= count {
                return;
            }
            if start.elapsed() > STEP || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!("{cmd:?}: no {what:?} (#{count}) on the console:\n{t}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("Hit any key to stop autoboot", 1, &mut child);
    stdin.write_all(b"x").expect("type a key");
    wait_for("=> ", 1, &mut child);
    for (i, c) in COMMANDS.iter().enumerate() {
        stdin
            .write_all(format!("{c}\r").as_bytes())
            .expect("type a command");
        if i + 1 < COMMANDS.len() {
            wait_for("=> ", i + 2, &mut child);
        }
    }
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s.code();
        }
        if start.elapsed() > STEP {
            let _ = child.kill();
            panic!("{cmd:?}: did not power off:\n{}", text());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    (text(), stderr, status)
}

/// The console from the first prompt on (what comes before holds timing- and device-tree-
/// dependent text: the countdown digits, the address the FDT was moved to).
fn transcript(console: &str) -> &str {
    console.find("=> ").map_or("", |i| &console[i..])
}

fn rewind_args(cmd: &mut Command, accel: &str) {
    cmd.args([
        "--accel", accel, "-m", "256M", "-bios", OPENSBI, "-kernel", UBOOT,
    ])
    .args(["-nographic"]);
}

#[test]
fn uboot_on_opensbi_is_driven_alike_under_both_engines_and_qemu() {
    if !Path::new(UBOOT).exists() || !Path::new(OPENSBI).exists() {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but u-boot-qemu or opensbi is missing"
        );
        skip_because("Debian's u-boot-qemu or opensbi package is missing");
        return;
    }
    let dir = Scratch::new("uboot");
    let trace = dir.path("uboot.rwd");
    let mut rec = rewind_cmd();
    rec.arg("record").arg("-o").arg(&trace);
    rewind_args(&mut rec, "jit");
    let (recorded, rec_err, code) = drive(rec);
    assert_eq!(code, Some(0), "record: {rec_err}\n{recorded}");
    let t = transcript(&recorded);
    for want in [
        "=> version\r\nU-Boot 2023.01",
        "=> echo v=$v\r\nv=12340\r\n",
        "=> sleep 1\r\n=> poweroff\r\npoweroff ...",
    ] {
        assert!(t.contains(want), "no {want:?} in:\n{recorded}");
    }

    let mut run = rewind_cmd();
    run.arg("run");
    rewind_args(&mut run, "interp");
    let (interp, err, code) = drive(run);
    assert_eq!(code, Some(0), "interp run: {err}\n{interp}");
    assert_eq!(
        transcript(&interp),
        t,
        "interpreter and JIT transcripts differ"
    );

    // The recording replays with the other engine: no input needed, the same output.
    let mut rep = rewind_cmd();
    rep.args(["replay", "--accel", "interp"]).arg(&trace);
    let out = rep.stdin(Stdio::null()).output().expect("replay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "replay: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), recorded);
    let (n, _) = replay_matched_line(&stderr).expect("a matched line");
    assert_eq!(Some(n), recorded_icount(&rec_err), "{stderr}");

    if have_tool("qemu-system-riscv64") {
        let mut q = Command::new("qemu-system-riscv64");
        q.args(["-M", "virt", "-m", "256M", "-cpu", QEMU_CPU])
            .args([
                "-nographic",
                "-icount",
                "shift=0",
                "-bios",
                OPENSBI,
                "-kernel",
                UBOOT,
            ]);
        let (theirs, err, code) = drive(q);
        assert_eq!(code, Some(0), "QEMU: {err}\n{theirs}");
        assert_eq!(t, transcript(&theirs), "rewind and QEMU transcripts differ");
    } else {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but qemu-system-riscv64 is missing"
        );
    }
}
