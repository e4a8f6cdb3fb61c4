//! Snapshots taken while recording (`rewind record`, the `TRACE.snapshots` sidecar) and replays
//! that start from them (`rewind replay --from N`, `--stop-at`, `--snapshots FILE`), with the
//! `compute_timer` guest (sources in `guests/`). Without `riscv64-unknown-elf-gcc` the tests
//! skip, unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{guests_dir, run_rewind, Done, Scratch};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one emulator process may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Instructions between snapshots in these recordings (compute_timer runs ~300 million).
const EVERY: u64 = 20_000_000;

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

/// Record compute_timer to `trace` with `extra` options; returns the run and its icount.
fn record(trace: &Path, extra: &[&str]) -> (Done, u64) {
    let dir = guests_dir().expect("guests");
    let elf = dir.join("build/compute_timer.elf");
    let mut args = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(elf),
        s("--serial"),
        s("stdio"),
    ];
    args.extend(extra.iter().map(s));
    let d = rewind(&args);
    assert_eq!(d.code, Some(0), "record: {}", d.describe());
    let n =
        common::recorded_icount(&d.stderr).unwrap_or_else(|| panic!("no icount: {}", d.describe()));
    (d, n)
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

fn replay(trace: &Path, extra: &[&str]) -> Done {
    let mut args = vec![s("replay"), s(trace), s("-q")];
    args.extend(extra.iter().map(s));
    rewind(&args)
}

#[test]
fn replay_from_any_instruction_matches_the_full_replay() {
    if guests_dir().is_none() {
        return;
    }
    let scratch = Scratch::new("from");
    let trace = scratch.path("c.rwd");
    let every = EVERY.to_string();
    let (rec, n) = record(&trace, &["--snapshot-every", &every]);
    let sidecar = PathBuf::from(format!("{}.snapshots", trace.display()));
    let side_bytes = std::fs::read(&sidecar).expect("record wrote the sidecar");
    // Not the one at instruction 0: a replay starts there anyway.
    let expected_count = n / EVERY;
    let line = format!(
        "rewind: {expected_count} snapshots in {} ({} bytes)",
        sidecar.display(),
        side_bytes.len()
    );
    assert!(rec.stderr.contains(&line), "{line}\n{}", rec.describe());

    let full = replay(&trace, &[]);
    assert_eq!(full.code, Some(0), "{}", full.describe());
    let (icount, state) = matched(&full).expect("full replay matched");
    assert_eq!(icount, n);
    assert_eq!(full.stdout, rec.stdout);
    assert!(
        full.stdout.starts_with("compute_timer: "),
        "{}",
        full.stdout
    );

    // From reset, exactly at a snapshot, between snapshots, just before the end, at the end.
    let targets = [0, 3 * EVERY, 7 * EVERY + 12_345, n - 1_000, n];
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
            d.stderr.trim_end().ends_with(&format!("state {state}")),
            "--from {from}: {}",
            d.describe()
        );
        // Output from N on only: a suffix of the full output.
        assert!(
            full.stdout.ends_with(&d.stdout),
            "--from {from}: {}",
            d.stdout
        );
        if from == 0 {
            assert_eq!(d.stdout, full.stdout);
        } else {
            assert!(
                !d.stdout.contains("compute_timer: "),
                "--from {from}: {}",
                d.stdout
            );
        }
        if from < n - 1_000 {
            assert!(
                d.stdout.contains("finished: pass"),
                "--from {from}: {}",
                d.stdout
            );
        }
    }
    assert_eq!(replay(&trace, &["--from", &n.to_string()]).stdout, "");

    // --stop-at with the sidecar gives the same states as without it (a copy of the trace
    // without its sidecar replays from reset).
    let bare = scratch.path("bare.rwd");
    std::fs::copy(&trace, &bare).unwrap();
    let stops = format!("{},{},{}", 9 * EVERY + 7, EVERY / 2, n - 5);
    let with = replay(&trace, &["--stop-at", &stops, "--serial", "null"]);
    let without = replay(&bare, &["--stop-at", &stops, "--serial", "null"]);
    assert_eq!(with.code, Some(0), "{}", with.describe());
    assert_eq!(without.code, Some(0), "{}", without.describe());
    assert!(
        with.stderr
            .contains(&format!("stopped at instruction {}", n - 5)),
        "{}",
        with.describe()
    );
    assert_eq!(with.stderr, without.stderr);

    // Replays never touch the sidecar.
    assert_eq!(std::fs::read(&sidecar).unwrap(), side_bytes);
}

#[test]
fn bad_starts_and_bad_snapshot_files_are_clear_errors() {
    if guests_dir().is_none() {
        return;
    }
    let scratch = Scratch::new("bad");
    let trace = scratch.path("c.rwd");
    let every = EVERY.to_string();
    let (_, n) = record(
        &trace,
        &["--snapshot-every", &every, "--snapshot-budget", "64"],
    );
    let sidecar = PathBuf::from(format!("{}.snapshots", trace.display()));

    // Past the end.
    let d = replay(&trace, &["--from", &(n + 1).to_string()]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    let want = format!("--from {}: the recording ends at instruction {n}", n + 1);
    assert!(d.stderr.contains(&want), "{}", d.describe());
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.describe());

    // A named snapshot file that is not one, damaged, or another recording's.
    let junk = scratch.write("junk", b"not a snapshot file at all, just text\n");
    let d = replay(&trace, &["--from", "5", "--snapshots", &s(&junk)]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr.contains(&format!(
            "{}: corrupt snapshot file at offset 0",
            junk.display()
        )),
        "{}",
        d.describe()
    );
    let mut bytes = std::fs::read(&sidecar).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let damaged = scratch.write("damaged.snapshots", &bytes);
    let d = replay(&trace, &["--from", "5", "--snapshots", &s(&damaged)]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr.contains("corrupt snapshot file at offset "),
        "{}",
        d.describe()
    );
    let other = scratch.path("other.rwd");
    record(&other, &["--snapshot-every", &every]);
    let other_side = format!("{}.snapshots", other.display());
    let d = replay(&trace, &["--from", "5", "--snapshots", &other_side]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr.contains("belong to another recording") && d.stderr.contains(&s(&trace)),
        "{}",
        d.describe()
    );

    // A damaged sidecar found next to the trace is only a warning: the replay starts from
    // reset, and the file is left as it is.
    std::fs::write(&sidecar, &bytes).unwrap();
    let from = (n / 2).to_string();
    let d = replay(&trace, &["--from", &from]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    assert!(d.stderr.contains("rewind: warning: "), "{}", d.describe());
    assert!(matched(&d).is_some(), "{}", d.describe());
    assert_eq!(std::fs::read(&sidecar).unwrap(), bytes);

    // --no-snapshots writes none, and a new recording removes a stale one.
    let (_, _) = record(&trace, &["--no-snapshots", "--force"]);
    assert!(
        !sidecar.exists(),
        "a stale sidecar was left next to a new trace"
    );
    let d = replay(&trace, &["--from", &from]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    assert!(!d.stderr.contains("warning"), "{}", d.describe());
}
