//! Snapshots in replay: restoring a snapshot (into the same machine or a fresh one, from memory
//! or from its file encoding) and running on gives exactly the uninterrupted replay's states.

#[allow(dead_code)]
mod common;
use common::{image_matches_ram, Rng};

use std::path::Path;
use std::sync::Arc;

use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::snapshot::{self, SnapshotError};
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, RunOutcome, SerialOutput, Snapshot,
};
use rewind_replay::HostEvent;

static DEMO: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");

fn demo_config() -> MachineConfig {
    MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: "demo.elf".into(),
            bytes: Arc::from(DEMO),
        }),
        serial_output: SerialOutput::Capture,
        ram_size: 16 << 20,
        ..MachineConfig::default()
    }
}

fn embedded(name: &str) -> Option<Arc<[u8]>> {
    (name == "demo.elf").then(|| Arc::from(DEMO))
}

/// Record the demo with typed input; small blocks so snapshots fall in many trace blocks.
fn record(path: &Path, checks: CheckSettings) {
    let mut config = demo_config();
    let header = prepare_recording(&mut config, checks).unwrap();
    let mut w = TraceWriter::create(path, &header).unwrap();
    w.set_block_size(128);
    let mut m = Machine::record(config, w, checks).unwrap();
    // The demo does not read its input, but the UART takes it as room allows: serial input
    // events at several icounts.
    m.boundary()
        .sender()
        .send(HostEvent::Serial(
            b"hello rewind\rls -l\r\x1b[Aexit\r".to_vec(),
        ))
        .unwrap();
    m.run(Some(50_000_000)).unwrap();
    m.finish_recording().unwrap();
}

fn replayer(path: &Path) -> Machine {
    let reader = TraceReader::open(path).unwrap();
    let (config, _) = replay_config(reader.header(), &embedded).unwrap();
    Machine::replay(config, reader, SerialOutput::Capture).unwrap()
}

#[derive(Debug, PartialEq, Eq)]
struct End {
    outcome: RunOutcome,
    icount: u64,
    hash: u64,
    output_len: u64,
}

/// Run to the end of the trace and check the trace ends there.
fn finish(m: &mut Machine) -> End {
    let outcome = m.run(None).unwrap();
    m.finish_replay().unwrap();
    End {
        outcome,
        icount: m.icount(),
        hash: m.state_hash(),
        output_len: m.output_len(),
    }
}

const CHECKS: CheckSettings = CheckSettings {
    interval: 100_000,
    registers_every: 2,
};

#[test]
fn restored_snapshots_replay_to_the_same_end_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record(&trace, CHECKS);

    // The uninterrupted replay.
    let mut m = replayer(&trace);
    let reference = finish(&mut m);
    let full_output = m.captured_output().to_vec();
    assert!(reference.icount > 100_000, "{reference:?}");
    assert!(!full_output.is_empty());

    // Snapshots at random icounts on the way (the run is split there, nothing else changes).
    let seed = 0x5eed_0001 ^ reference.icount;
    let mut rng = Rng(seed);
    let mut stops: Vec<u64> = (0..3)
        .map(|_| 1 + rng.below(reference.icount - 1))
        .collect();
    // The demo writes RAM only in its first and last ~10,000 instructions (banner; printf,
    // timer ticks): several stops there, and exactly at logged events (serial input, state
    // checks), where the look-ahead event is due at the snapshot's icount.
    let last = reference.icount - 1;
    stops.extend((0..3).map(|_| 1 + rng.below(10_000)));
    stops.extend((0..3).map(|_| last - rng.below(10_000)));
    let mut r = TraceReader::open(&trace).unwrap();
    let mut logged = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        if e.icount > 0 && e.icount < reference.icount {
            logged.push(e.icount);
        }
    }
    assert!(logged.len() > 4, "{logged:?}");
    stops.extend([logged[0], logged[logged.len() / 2], CHECKS.interval * 3]);
    stops.sort_unstable();
    stops.dedup();
    let mut m = replayer(&trace);
    let mut snaps: Vec<Snapshot> = Vec::new();
    for &s in &stops {
        let now = m.icount();
        assert_eq!(m.run(Some(s - now)).unwrap(), RunOutcome::InstructionLimit);
        assert_eq!(m.icount(), s, "seed {seed:#x}");
        let snap = m.snapshot(snaps.last()).unwrap();
        assert_eq!(snap.icount(), s);
        assert!(image_matches_ram(&snap.ram, &m), "RAM image wrong at {s}");
        if let Some(prev) = snaps.last() {
            // Unchanged pages are shared, not copied.
            assert!(
                snap.ram.shared_pages_with(&prev.ram) > 0,
                "no page shared between snapshots"
            );
        }
        snaps.push(snap);
    }
    assert_eq!(finish(&mut m), reference, "seed {seed:#x}");

    // Back to every snapshot, latest first, in the same machine: same end, same output.
    // Each one twice: the second restore copies only the pages written since the first.
    for snap in snaps.iter().rev().flat_map(|s| [s, s]) {
        let before = m.captured_output().len();
        m.restore(snap).unwrap();
        assert_eq!(m.icount(), snap.icount());
        assert!(image_matches_ram(&snap.ram, &m));
        assert_eq!(
            finish(&mut m),
            reference,
            "from {} (seed {seed:#x})",
            snap.icount()
        );
        let out = &m.captured_output()[before..];
        assert_eq!(out, &full_output[snap.output_len as usize..]);
    }

    // Into a fresh machine, through the file encoding; then a random icount M after the
    // snapshot has the continuous replay's state hash.
    for snap in &snaps {
        let decoded = snapshot::decode(&snapshot::encode(snap).unwrap()).unwrap();
        assert_eq!(decoded.harts, snap.harts);
        assert_eq!(decoded.bus, snap.bus);
        assert_eq!(decoded.ram.pages(), snap.ram.pages());
        let mut fresh = replayer(&trace);
        fresh.restore(&decoded).unwrap();
        let target = snap.icount() + 1 + rng.below(reference.icount - snap.icount());
        let target = target.min(reference.icount);
        fresh.run(Some(target - snap.icount())).unwrap();
        let mut cont = replayer(&trace);
        cont.run(Some(target)).unwrap();
        assert_eq!(
            (fresh.icount(), fresh.state_hash()),
            (cont.icount(), cont.state_hash()),
            "at {target} from {} (seed {seed:#x})",
            snap.icount()
        );
        assert!(
            fresh.ram().as_slice() == cont.ram().as_slice(),
            "RAM differs at {target}"
        );
        assert_eq!(finish(&mut fresh), reference);
    }
}

#[test]
fn bad_snapshots_are_refused_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rwtrace");
    let b = dir.path().join("b.rwtrace");
    record(&a, CHECKS);
    // Another recording (its header differs at least in the check interval).
    record(
        &b,
        CheckSettings {
            interval: 150_000,
            ..CHECKS
        },
    );
    let mut m = replayer(&a);
    m.run(Some(123_457)).unwrap();
    let snap = m.snapshot(None).unwrap();
    let bytes = snapshot::encode(&snap).unwrap();
    let path = dir.path().join("s.rwsnap");
    snapshot::save_file(&path, &snap).unwrap();
    assert_eq!(snapshot::load_file(&path).unwrap().harts, snap.harts);

    // A flipped byte anywhere in the payload: checksum error, not a panic.
    for at in [30, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let err = snapshot::decode(&bad).unwrap_err();
        assert!(matches!(err, SnapshotError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(
        snapshot::decode(&bad),
        Err(SnapshotError::BadMagic(_))
    ));
    let mut bad = bytes.clone();
    bad[8] = 99;
    let err = snapshot::decode(&bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported snapshot format version 99"),
        "{err}"
    );
    assert!(matches!(
        snapshot::decode(&bytes[..20]),
        Err(SnapshotError::Truncated { .. })
    ));

    // Another recording's replay refuses it and is left untouched.
    let mut other = replayer(&b);
    other.run(Some(1000)).unwrap();
    let hash = other.state_hash();
    let err = other.restore(&snap).unwrap_err();
    assert!(matches!(err, SnapshotError::DifferentTrace { .. }), "{err}");
    assert!(err.to_string().contains("different trace"), "{err}");
    assert_eq!((other.icount(), other.state_hash()), (1000, hash));

    // A machine outside replay refuses a replay snapshot.
    let mut run = Machine::new(demo_config()).unwrap();
    let err = run.restore(&snap).unwrap_err();
    assert!(matches!(err, SnapshotError::DifferentTrace { .. }), "{err}");
}

#[test]
fn run_mode_snapshots_restore_too() {
    let mut m = Machine::new(demo_config()).unwrap();
    m.run(Some(5_000)).unwrap();
    let snap = m.snapshot(None).unwrap();
    assert_eq!(snap.replay, None);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    let (icount, hash) = (m.icount(), m.state_hash());
    m.restore(&snap).unwrap();
    assert_eq!(m.icount(), 5_000);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    assert_eq!((m.icount(), m.state_hash()), (icount, hash));
}

#[test]
fn seeking_backwards_and_forwards_reaches_the_continuous_states() {
    use rewind_machine::seek::{SeekResult, Seeker};
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record(&trace, CHECKS);
    let mut m = replayer(&trace);
    let reference = finish(&mut m);
    let full_output = m.captured_output().to_vec();

    // Targets: random ones, and reverse-stepi runs (N, N-1, N-2...) early and late.
    let mut rng = Rng(0x5eed_0002 ^ reference.icount);
    let mut targets: Vec<u64> = (0..12).map(|_| rng.below(reference.icount)).collect();
    for base in [
        1 + rng.below(5_000),
        reference.icount - 1 - rng.below(5_000),
    ] {
        targets.extend((0..4).map(|k| base - k));
    }
    // The continuous replay's state at each target (one machine, run in pieces).
    let mut sorted = targets.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let mut cont = replayer(&trace);
    let mut expect = std::collections::HashMap::new();
    for &t in &sorted {
        cont.run(Some(t - cont.icount())).unwrap();
        assert_eq!(cont.icount(), t);
        let ram = blake3::hash(cont.ram().as_slice());
        expect.insert(t, (cont.state_hash(), ram));
    }

    let mut s = Seeker::new(replayer(&trace), 100_000).unwrap();
    for &t in &targets {
        assert_eq!(s.seek(t).unwrap(), SeekResult::Reached, "seek {t}");
        let m = s.machine();
        assert_eq!(m.icount(), t);
        let got = (m.state_hash(), blake3::hash(m.ram().as_slice()));
        assert_eq!(got, expect[&t], "state after seeking to {t}");
    }
    assert!(
        s.snapshot_icounts().len() > 10,
        "{:?}",
        s.snapshot_icounts()
    );
    // Past the end: stops where the recording ends; the output was written once.
    assert_eq!(
        s.seek(u64::MAX).unwrap(),
        SeekResult::Ended(reference.outcome)
    );
    let m = s.machine_mut();
    m.finish_replay().unwrap();
    assert_eq!(
        (m.icount(), m.state_hash()),
        (reference.icount, reference.hash)
    );
    assert_eq!(m.captured_output(), &full_output[..]);
}
