//! Debian Linux on four harts (`-smp 4`): the kernel brings up every hart, a parallel workload
//! (four `sha256sum` loops, `scripts/linux-tests/smp.sh`) runs on them, and the recording
//! replays identically three times; replays started from a snapshot in the middle, and seeks
//! back and forth, reach the same states as the continuous replay. Skips like `linux.rs` when
//! the Linux assets cannot be made.

#[allow(dead_code)]
mod common;

use common::linux::{console_value, device_test_passed, linux_assets, record_device_test};
use common::{recorded_icount, replay_matched_line, run_rewind, Scratch};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(300);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

#[test]
fn linux_boots_on_four_harts_and_replays_identically() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("linux-smp");
    let trace = dir.path("smp4.rwtrace");
    let smp = vec![s("-smp"), s("4")];
    let rec = record_device_test(&assets, &trace, "smp", &smp, TIMEOUT);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    assert!(device_test_passed(&rec.stdout, "smp"), "{}", rec.describe());
    assert_eq!(
        console_value(&rec.stdout, "nproc: "),
        Some("4"),
        "{}",
        rec.describe()
    );
    assert_eq!(
        console_value(&rec.stdout, "processors: "),
        Some("4"),
        "{}",
        rec.describe()
    );
    assert_eq!(console_value(&rec.stdout, "online: "), Some("0-3"));
    for w in 1..=4 {
        let line = console_value(&rec.stdout, &format!("worker {w}: "));
        assert!(
            line.is_some_and(|h| h.len() == 64),
            "worker {w} did not finish: {}",
            rec.describe()
        );
    }
    let icount = recorded_icount(&rec.stderr).expect("recorded instruction count");

    // Three replays: the same console, instruction count and final state each time.
    let mut first = None;
    for i in 0..3 {
        let rep = run_rewind(&[s("replay"), s(&trace)], TIMEOUT);
        assert_eq!(rep.code, Some(0), "replay {i}: {}", rep.describe());
        assert_eq!(rep.stdout, rec.stdout, "replay {i} printed something else");
        let matched = replay_matched_line(&rep.stderr)
            .unwrap_or_else(|| panic!("replay {i}: no verdict: {}", rep.describe()));
        assert_eq!(matched.0, icount, "replay {i} ran another length");
        match &first {
            Some(f) => assert_eq!(&matched, f, "replay {i} vs replay 0"),
            None => first = Some(matched),
        }
    }

    // Seeks through the snapshots: the same state at an instruction reached forwards and
    // after seeking back from a later one; a replay started in the middle ends as the
    // continuous one.
    common::assert_seek_back_agrees(&trace, icount / 4 * 3 + 17, icount / 3 + 5, &[], TIMEOUT);
    assert_eq!(
        common::replay_from(&trace, icount / 2, TIMEOUT),
        first,
        "--from vs a full replay"
    );
}
