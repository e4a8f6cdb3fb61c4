//! The hostile guest (`guests/hostile`, built once per PRNG seed) hammers every device region of the
//! virt board with random loads, stores, AMOs, LR/SC and jumps, from M, S (through Sv39 tables that
//! point into MMIO) and U, and counts the traps; a virtio-rng device sits in the first transport.
//! rewind must not panic or hang on it, and every replay must reproduce the recording: same console
//! output, same instruction count, same state hash.
//!
//! Not compared with QEMU: the guest reads the Goldfish RTC (wall clock), so its checksum is only
//! deterministic within one recording and its replays; and QEMU 10 does not finish the guest: its
//! virt board maps pflash at 0x2000_0000, where rewind has a hole, and a jump probe there runs on
//! through the flash contents as 2-byte instructions instead of faulting (seen with `-d exec`).
//! Device corner cases are out of this test's scope.
//! Without `riscv64-unknown-elf-gcc` the test skips, unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, guest_elf, replay_matched_line, rewind_run_cmd, run_rewind, Done, Proc,
    Scratch,
};
use std::path::Path;
use std::time::Duration;

/// How long one emulator process may run (the guest takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// The seeds `guests/build.sh` builds the guest with (`hostile_<seed>.elf`).
const SEEDS: [&str; 3] = ["0x1", "0x5eed", "0xdeadbeef"];

/// Replays of each recording.
const REPLAYS: usize = 3;

/// The output lines every complete run ends with, and a sanity check on the trap counts.
fn check_output(what: &str, d: &Done) {
    assert!(
        !d.stderr.contains("panicked"),
        "{what}: rewind panicked\n{}",
        d.describe()
    );
    assert_eq!(d.code, Some(0), "{what}: exit status\n{}", d.describe());
    let lines: Vec<&str> = d.stdout.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("hostile: seed ")),
        "{what}: no banner\n{}",
        d.describe()
    );
    assert_eq!(
        lines.last().copied(),
        Some("hostile: done"),
        "{what}: did not finish\n{}",
        d.describe()
    );
    assert!(
        lines.iter().any(|l| l.starts_with("hostile: checksum ")),
        "{what}: no checksum\n{}",
        d.describe()
    );
    // Every kind of probe must have trapped at least once: access faults on loads, stores/AMOs and
    // fetches, and page faults from the S-mode phase.
    for cause in [1, 5, 7, 13] {
        let prefix = format!("hostile: cause {cause}: ");
        let n: u64 = lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            n > 0,
            "{what}: no trap with cause {cause}\n{}",
            d.describe()
        );
    }
}

fn record(trace: &Path, elf: &Path) -> Done {
    let args = [
        "record".as_ref(),
        "-o".as_ref(),
        trace.as_os_str(),
        "--bios".as_ref(),
        "none".as_ref(),
        "--kernel".as_ref(),
        elf.as_os_str(),
        "--serial".as_ref(),
        "stdio".as_ref(),
        "--device".as_ref(),
        "virtio-rng-device".as_ref(),
    ];
    run_rewind(&args, TIMEOUT)
}

/// `rewind run` of every seed finishes (within the timeout) with exit status 0 and the full output.
#[test]
fn hostile_guest_runs_to_the_end() {
    for seed in SEEDS {
        let Some(elf) = guest_elf(&format!("hostile_{seed}")) else {
            return;
        };
        let mut cmd = rewind_run_cmd(&elf);
        cmd.args(["--device", "virtio-rng-device"]);
        let d = Proc::spawn(cmd, None).finish(TIMEOUT);
        assert!(
            !d.timed_out,
            "seed {seed}: rewind run hung\n{}",
            d.describe()
        );
        check_output(&format!("run, seed {seed}"), &d);
    }
}

/// Each seed records, and replays three times with the recorded output, instruction count and state
/// hash every time.
#[test]
fn hostile_guest_replays_identically() {
    for seed in SEEDS {
        let Some(elf) = guest_elf(&format!("hostile_{seed}")) else {
            return;
        };
        let scratch = Scratch::new(&format!("hostile-{seed}"));
        let trace = scratch.path("hostile.rwtrace");
        let rec = record(&trace, &elf);
        assert!(
            !rec.timed_out,
            "seed {seed}: record hung\n{}",
            rec.describe()
        );
        check_output(&format!("record, seed {seed}"), &rec);

        let mut first: Option<(u64, String)> = None;
        for i in 0..REPLAYS {
            let what = format!("replay {i}, seed {seed}");
            let rep = run_rewind(&["replay".as_ref(), trace.as_os_str()], TIMEOUT);
            assert!(!rep.timed_out, "{what}: hung\n{}", rep.describe());
            check_output(&what, &rep);
            assert_same_output(&what, &rec.stdout, &rep.stdout);
            let matched = replay_matched_line(&rep.stderr).unwrap_or_else(|| {
                panic!(
                    "{what}: no `rewind: replay matched the recording` line\n{}",
                    rep.describe()
                )
            });
            match &first {
                None => first = Some(matched),
                Some(f) => assert_eq!(&matched, f, "{what}: icount/state hash differ"),
            }
        }
    }
}

/// The virtio devices the hostile virtio guest meets: every kind rewind models, each in its
/// own transport.
fn virtio_devices(scratch: &Scratch) -> Vec<String> {
    // A small disk image of a known pattern (the guest may write it: record and replay keep
    // its writes in an overlay).
    let disk = scratch.path("disk.img");
    let pattern: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&disk, pattern).expect("write the disk image");
    let mut v: Vec<String> = [
        "--device",
        "virtio-rng-device",
        "--device",
        "virtio-sound-device",
        "--device",
        "virtio-keyboard-device",
        "--device",
        "virtio-tablet-device",
        // virtio-net on a user-mode network (nothing answers a guest that never sends a
        // valid frame; replay opens nothing).
        "--nic",
        "user",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("--drive".into());
    v.push(format!("file={},format=raw", disk.display()));
    v
}

/// `guests/virtio_hostile` programs every virtio device wrongly (garbage rings and chains,
/// sizes that are not powers of two, rings outside RAM, random configuration and status
/// writes): rewind neither panics nor hangs, the devices end up in DEVICE_NEEDS_RESET, and the
/// recording replays with the same output, instruction count and state.
#[test]
fn hostile_virtio_programming_records_and_replays() {
    let Some(elf) = guest_elf("virtio_hostile") else {
        return;
    };
    let scratch = Scratch::new("virtio-hostile");
    let trace = scratch.path("virtio.rwtrace");
    let mut args: Vec<String> = vec!["record".into(), "-o".into(), trace.display().to_string()];
    args.extend(["--bios", "none", "--kernel"].map(String::from));
    args.push(elf.display().to_string());
    args.extend(["--serial", "stdio"].map(String::from));
    args.extend(virtio_devices(&scratch));
    let rec = run_rewind(&args, TIMEOUT);
    assert!(!rec.stderr.contains("panicked"), "{}", rec.describe());
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    let line = |d: &Done, prefix: &str| -> String {
        d.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' line\n{}", d.describe()))
            .to_string()
    };
    let devices = rec.stdout.matches(": device ").count();
    assert_eq!(
        devices * 2,
        virtio_devices(&scratch).len(),
        "{}",
        rec.stdout
    );
    let summary = line(&rec, &format!("virtio_hostile: {devices} devices"));
    let resets: u64 = summary
        .rsplit("seen ")
        .next()
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(resets > 0, "no device ever needed a reset: {summary}");
    for i in 0..2 {
        let rep = run_rewind(&["replay".as_ref(), trace.as_os_str()], TIMEOUT);
        assert_eq!(rep.code, Some(0), "replay {i}\n{}", rep.describe());
        assert_same_output(&format!("replay {i}"), &rec.stdout, &rep.stdout);
        assert!(
            replay_matched_line(&rep.stderr).is_some(),
            "replay {i}\n{}",
            rep.describe()
        );
    }
}
