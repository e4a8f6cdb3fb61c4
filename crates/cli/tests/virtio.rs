//! virtio-mmio and virtio-rng end to end, with the `virtio_rng` guest (sources in `guests/`):
//! the guest's view of the transports and the device matches QEMU 10 (`-device
//! virtio-rng-device` on the modern transport), the entropy goes through the replay boundary
//! (replays are identical, recordings differ), and replays started from snapshots taken in the
//! middle of the device's I/O end in the recording's state. Without `riscv64-unknown-elf-gcc`
//! the tests skip, unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, expected_output, guests_dir, have_tool, qemu_cmd, run_rewind,
    run_with_input, Done, Scratch,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn elf() -> Option<PathBuf> {
    guests_dir().map(|d| d.join("build/virtio_rng.elf"))
}

/// The output without the random bytes.
fn without_entropy(out: &str) -> String {
    out.lines()
        .filter(|l| !l.starts_with("entropy:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn entropy(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("entropy:")).collect()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

/// Record the guest to `trace`; returns the run and its icount.
fn record(trace: &Path, extra: &[&str]) -> (Done, u64) {
    let mut args = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--device"),
        s("virtio-rng-device"),
    ];
    args.extend(["--kernel", "--serial", "stdio"].iter().map(s));
    args.insert(args.len() - 2, s(elf().expect("guests")));
    args.extend(extra.iter().map(s));
    let d = rewind(&args);
    assert_eq!(d.code, Some(0), "record: {}", d.describe());
    let n =
        common::recorded_icount(&d.stderr).unwrap_or_else(|| panic!("no icount: {}", d.describe()));
    (d, n)
}

fn replay(trace: &Path, extra: &[&str]) -> Done {
    let mut args = vec![s("replay"), s(trace), s("-q")];
    args.extend(extra.iter().map(s));
    rewind(&args)
}

/// `(icount, state)` from `rewind: replay matched the recording: N instructions, state H`.
fn matched(d: &Done) -> Option<(u64, String)> {
    let line = d
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("rewind: replay matched the recording: "))?;
    let (n, rest) = line.split_once(" instructions, state ")?;
    Some((n.parse().ok()?, rest.trim().to_string()))
}

#[test]
fn guest_sees_the_transports_and_rng_as_on_qemu() {
    let Some(elf) = elf() else { return };
    let dir = guests_dir().expect("guests");
    let mut cmd = common::rewind_run_cmd(&elf);
    cmd.args(["--device", "virtio-rng-device"]);
    let rw = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(rw.code, Some(0), "{}", rw.describe());
    for key in [
        "slot 7: magic 74726976 version 2 device 4 vendor 554d4551",
        "rng in slot 7, irq 8",
        "loop: needs_reset 1, config irqs 1",
        "bad index: needs_reset 1, config irqs 2",
        "random writes survived",
    ] {
        assert!(
            rw.stdout.lines().any(|l| l == key),
            "{key:?}\n{}",
            rw.describe()
        );
    }
    assert!(!rw.stdout.contains("MOSTLY ZERO"), "{}", rw.stdout);
    assert_eq!(entropy(&rw.stdout).len(), 4, "{}", rw.stdout);
    assert_same_output(
        "virtio_rng: guests/expected/virtio_rng.txt (QEMU reference) vs rewind",
        &expected_output(&dir, "virtio_rng"),
        &without_entropy(&rw.stdout),
    );
    // Without the device every transport is empty and the guest says so.
    let bare = run_with_input(common::rewind_run_cmd(&elf), b"", TIMEOUT);
    assert_eq!(bare.code, Some(2), "{}", bare.describe());
    assert!(bare
        .stdout
        .contains("slot 7: magic 74726976 version 2 device 0"));
    assert!(bare.stdout.ends_with("no virtio-rng\n"), "{}", bare.stdout);

    if !have_tool("qemu-system-riscv64") {
        eprintln!(
            "qemu-system-riscv64 not installed: virtio_rng compared with guests/expected only"
        );
        return;
    }
    let mut q = qemu_cmd(&elf);
    q.args([
        "-device",
        "virtio-rng-device",
        "-global",
        "virtio-mmio.force-legacy=false",
    ]);
    let q = run_with_input(q, b"", TIMEOUT);
    assert_eq!(q.code, Some(0), "QEMU: {}", q.stderr);
    assert_same_output(
        "virtio_rng: live QEMU vs rewind (without the random bytes)",
        &without_entropy(&q.stdout),
        &without_entropy(&rw.stdout),
    );
}

#[test]
fn entropy_is_recorded_and_replayed() {
    if elf().is_none() {
        return;
    }
    let scratch = Scratch::new("rng");
    let a = scratch.path("a.rwd");
    let b = scratch.path("b.rwd");
    let (ra, na) = record(&a, &[]);
    let (rb, _) = record(&b, &[]);
    assert_eq!(entropy(&ra.stdout).len(), 4, "{}", ra.stdout);
    // Fresh entropy in every recording.
    for (x, y) in entropy(&ra.stdout).iter().zip(entropy(&rb.stdout)) {
        assert_ne!(*x, y);
    }
    assert_eq!(without_entropy(&ra.stdout), without_entropy(&rb.stdout));
    // Every replay hands the guest the recorded bytes.
    for _ in 0..3 {
        let r = replay(&a, &[]);
        assert_eq!(r.code, Some(0), "{}", r.describe());
        assert_eq!(r.stdout, ra.stdout);
        assert_eq!(matched(&r).map(|m| m.0), Some(na), "{}", r.describe());
    }
    // The log holds the device tree's seed and the four requests (32 + 16 + 32 + 24 bytes).
    let dump = rewind(&[s("dump"), s(&a)]);
    assert_eq!(dump.code, Some(0), "{}", dump.describe());
    let lens: Vec<&str> = dump
        .stdout
        .lines()
        .filter(|l| l.contains(" Random "))
        .filter_map(|l| l.split("len=").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(lens, ["32", "32", "16", "32", "24"], "{}", dump.stdout);
}

#[test]
fn replays_from_snapshots_in_the_middle_of_io_end_in_the_recorded_state() {
    if elf().is_none() {
        return;
    }
    let scratch = Scratch::new("rng-from");
    let trace = scratch.path("c.rwd");
    // Snapshots every 2,000 instructions: several fall between the queue set-up, the
    // notifications and the guest reading the used ring.
    let (rec, n) = record(&trace, &["--snapshot-every", "2000"]);
    let full = replay(&trace, &[]);
    assert_eq!(full.code, Some(0), "{}", full.describe());
    assert_eq!(full.stdout, rec.stdout);
    let (icount, state) = matched(&full).expect("full replay matched");
    assert_eq!(icount, n);
    // Around the entropy requests (the dump gives their icounts) and in the hostile part.
    let dump = rewind(&[s("dump"), s(&trace)]);
    let at: Vec<u64> = dump
        .stdout
        .lines()
        .filter(|l| l.contains(" Random "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .filter(|&i| i > 0)
        .collect();
    assert_eq!(at.len(), 4, "{}", dump.stdout);
    let mut targets = vec![n / 2, n - 10];
    for &i in &at {
        targets.extend([i - 1, i, i + 1, i + 700]);
    }
    for &from in &targets {
        let d = replay(&trace, &["--from", &from.to_string()]);
        assert_eq!(d.code, Some(0), "--from {from}: {}", d.describe());
        assert_eq!(
            matched(&d),
            Some((icount, state.clone())),
            "--from {from}: {}",
            d.describe()
        );
        assert!(
            full.stdout.ends_with(&d.stdout),
            "--from {from}: {}",
            d.stdout
        );
    }
    // Seeking backwards and forwards across the I/O gives the states of a replay from reset.
    let bare = scratch.path("bare.rwd");
    std::fs::copy(&trace, &bare).unwrap();
    let stops = format!("{},{},{},{}", at[3] + 5, at[0] + 1, at[2], n - 1);
    let with = replay(&trace, &["--stop-at", &stops, "--serial", "null"]);
    let without = replay(&bare, &["--stop-at", &stops, "--serial", "null"]);
    assert_eq!(with.code, Some(0), "{}", with.describe());
    assert_eq!(without.code, Some(0), "{}", without.describe());
    assert_eq!(with.stderr, without.stderr);
}

/// The `/soc` nodes of a device tree blob from the RTC to the PLIC (the devices the bus
/// describes), as dtc prints them.
fn soc_devices(dtb: &Path) -> String {
    let mut cmd = std::process::Command::new("dtc");
    cmd.args(["-I", "dtb", "-O", "dts"]).arg(dtb);
    let out = common::Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(out.code, Some(0), "dtc failed: {}", out.stderr);
    let start = out.stdout.find("rtc@101000 {").expect("rtc node");
    let end = out.stdout.find("plic@c000000 {").expect("plic node");
    out.stdout[start..end].to_string()
}

#[test]
fn device_tree_lists_the_transports_in_qemus_order() {
    if !have_tool("qemu-system-riscv64") || !have_tool("dtc") {
        eprintln!("qemu-system-riscv64 or dtc not installed: skipped");
        return;
    }
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("virtio-dtb");
    let ours = scratch.path("rewind.dtb");
    let theirs = scratch.path("qemu.dtb");
    let d = rewind(&[
        s("run"),
        s("--device"),
        s("virtio-rng-device"),
        s("--dump-dtb"),
        s(&ours),
        s("--kernel"),
        s(dir.join("prebuilt/demo.elf")),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let mut q = std::process::Command::new("qemu-system-riscv64");
    q.arg("-M")
        .arg(format!("virt,dumpdtb={}", theirs.display()))
        .args(["-cpu", "rv64,h=false", "-display", "none"])
        .args(["-device", "virtio-rng-device"]);
    let q = common::Proc::spawn(q, None).finish(TIMEOUT);
    assert_eq!(q.code, Some(0), "QEMU: {}", q.stderr);
    let (a, b) = (soc_devices(&ours), soc_devices(&theirs));
    assert_eq!(a.matches("virtio_mmio@").count(), 8, "{a}");
    assert_eq!(a, b, "rewind's /soc devices differ from QEMU's");
}
