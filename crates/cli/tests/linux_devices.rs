//! Linux drives rewind's virtio devices: each device test boots the Debian guest with
//! `rewind.test=NAME` (the script `scripts/linux-tests/NAME.sh` runs in the guest), records it
//! and replays it. Skips like `linux.rs` when the Linux assets cannot be made.

#[allow(dead_code)]
mod common;

use common::linux::{console_value, device_test_passed, linux_assets, record_device_test};
use common::{run_rewind, Scratch};
use std::time::Duration;

/// One recording or replay of a device test.
const TIMEOUT: Duration = Duration::from_secs(300);

/// virtio-rng feeds Linux's `/dev/hwrng`: what the guest reads is logged, so a replay reads the
/// same 64 bytes, and a second recording reads other bytes.
#[test]
fn linux_hwrng_reads_replay_identically() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("hwrng");
    let rng = vec!["--device".to_string(), "virtio-rng-device".to_string()];
    let mut sums = Vec::new();
    for i in 0..2 {
        let trace = dir.path(&format!("rng{i}.rwtrace"));
        let rec = record_device_test(&assets, &trace, "rng", &rng, TIMEOUT);
        assert_eq!(rec.code, Some(0), "record {i}: {}", rec.describe());
        assert!(device_test_passed(&rec.stdout, "rng"), "{}", rec.describe());
        assert_eq!(
            console_value(&rec.stdout, "hwrng: "),
            Some("virtio_rng.0"),
            "{}",
            rec.describe()
        );
        let sum = console_value(&rec.stdout, "hwrng sha256: ")
            .unwrap_or_else(|| panic!("no hwrng line: {}", rec.describe()))
            .to_string();
        let rep = run_rewind(&["replay".as_ref(), trace.as_os_str()], TIMEOUT);
        assert_eq!(rep.code, Some(0), "replay {i}: {}", rep.describe());
        assert_eq!(rep.stdout, rec.stdout, "replay {i} printed something else");
        sums.push(sum);
    }
    assert_ne!(sums[0], sums[1], "two recordings read the same entropy");
}
