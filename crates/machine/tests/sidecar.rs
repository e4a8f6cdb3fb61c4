//! Snapshots taken while recording, kept in the sidecar file: each is placed in the trace at
//! exactly the position a replay has there, restores to exactly the replay's state, and the
//! file is checked (corruption, another recording's trace). The memory budget thins them.

#[allow(dead_code)]
mod common;
use common::{image_matches_ram, Rng};

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::seek::Seeker;
use rewind_machine::sidecar::{self, SidecarError};
use rewind_machine::snapshot::trace_id;
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, RunOutcome, SerialOutput, Snapshot,
};
use rewind_replay::HostEvent;

static DEMO: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");
static BENCH: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

fn config(name: &str, bytes: &'static [u8]) -> MachineConfig {
    MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: name.into(),
            bytes: Arc::from(bytes),
        }),
        serial_output: SerialOutput::Capture,
        ram_size: 16 << 20,
        ..MachineConfig::default()
    }
}

fn embedded(name: &str) -> Option<Arc<[u8]>> {
    match name {
        "demo.elf" => Some(Arc::from(DEMO)),
        "bench.elf" => Some(Arc::from(BENCH)),
        _ => None,
    }
}

const CHECKS: CheckSettings = CheckSettings {
    interval: 100_000,
    registers_every: 2,
};

/// A recording machine on `guest` writing `path` (small blocks, so marks fall in many blocks).
fn recorder(path: &Path, guest: (&str, &'static [u8])) -> Machine {
    let mut config = config(guest.0, guest.1);
    let header = prepare_recording(&mut config, CHECKS).unwrap();
    let mut w = TraceWriter::create(path, &header).unwrap();
    w.set_block_size(256);
    Machine::record(config, w, CHECKS).unwrap()
}

/// Record the demo with typed input and snapshots every `interval`, up to `limit`
/// instructions; write the sidecar. Returns the snapshots as taken.
fn record_demo(path: &Path, interval: u64, limit: u64) -> Vec<Snapshot> {
    let m = recorder(path, ("demo.elf", DEMO));
    // The UART takes the input as room allows: serial input events at several icounts.
    m.boundary()
        .sender()
        .send(HostEvent::Serial(
            b"hello rewind\rls -l\r\x1b[Aexit\r".to_vec(),
        ))
        .unwrap();
    let mut s = Seeker::new(m, interval).unwrap();
    let outcome = s.run(Some(limit)).unwrap();
    if outcome == RunOutcome::InstructionLimit {
        s.machine_mut().log_end_of_recording().unwrap();
    }
    let (mut m, snaps) = s.into_parts();
    m.finish_recording().unwrap();
    drop(m);
    let id = trace_id(TraceReader::open(path).unwrap().header());
    let saved = sidecar::save(&sidecar::sidecar_path(path), &id, &snaps).unwrap();
    // The snapshot at reset is not stored (the replay rebuilds it).
    assert_eq!(saved.snapshots, snaps.len() - 1);
    snaps
}

fn replayer(path: &Path) -> Machine {
    let reader = TraceReader::open(path).unwrap();
    let (config, _) = replay_config(reader.header(), &embedded).unwrap();
    Machine::replay(config, reader, SerialOutput::Capture).unwrap()
}

/// The RAM of the trace's replay machine at reset (the base of the sidecar's deltas).
fn reset_ram(trace: &Path) -> rewind_cpu::ram::RamImage {
    replayer(trace).snapshot(None).unwrap().ram
}

/// Load `path` for replaying `trace`, with `select`.
fn load_sel(
    path: &Path,
    trace: &Path,
    select: sidecar::Select,
) -> Result<Vec<Snapshot>, SidecarError> {
    sidecar::load_for_replay_selected(path, trace, select, &reset_ram(trace))
}

/// Load `path` for replaying `trace`.
fn load(path: &Path, trace: &Path) -> Result<Vec<Snapshot>, SidecarError> {
    load_sel(path, trace, sidecar::Select::All)
}

#[derive(Debug, PartialEq, Eq)]
struct End {
    outcome: RunOutcome,
    icount: u64,
    hash: u64,
}

fn finish(m: &mut Machine) -> End {
    let outcome = m.run(None).unwrap();
    m.finish_replay().unwrap();
    End {
        outcome,
        icount: m.icount(),
        hash: m.state_hash(),
    }
}

#[test]
fn sidecar_snapshots_sit_exactly_where_the_replay_stands() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    let taken = record_demo(&trace, 50_000, 50_000_000);
    let loaded = load(&sidecar::sidecar_path(&trace), &trace).unwrap();
    let id = trace_id(TraceReader::open(&trace).unwrap().header());

    // The first was taken before the recording ran: it is the replay machine at reset (the
    // base of the file's deltas), so it is not stored.
    let fresh = replayer(&trace);
    assert_eq!(taken[0].icount(), 0);
    assert!(image_matches_ram(&taken[0].ram, &fresh));
    assert!(taken[0].ram.nonzero_pages() > 0);
    assert_eq!(loaded.len(), taken.len() - 1);
    assert!(loaded.len() > 10, "{} snapshots", loaded.len());

    // Every other one: where a replay stands after `Machine::run` returned at its icount.
    let mut m = replayer(&trace);
    for (t, s) in taken.iter().skip(1).zip(&loaded) {
        assert_eq!(t.icount(), s.icount());
        assert_eq!(s.trace_id.as_deref(), Some(id.as_str()));
        let outcome = m.run(Some(s.icount() - m.icount())).unwrap();
        assert_eq!(outcome, RunOutcome::InstructionLimit, "at {}", s.icount());
        assert_eq!(m.icount(), s.icount());
        assert_eq!(
            m.boundary().replay_position(),
            s.replay,
            "position at {}",
            s.icount()
        );
        let now = m.snapshot(None).unwrap();
        assert_eq!(now.harts, s.harts, "harts at {}", s.icount());
        assert_eq!(now.bus, s.bus, "devices at {}", s.icount());
        assert_eq!((now.out_hash, now.output_len), (s.out_hash, s.output_len));
        assert!(image_matches_ram(&s.ram, &m), "RAM at {}", s.icount());
        // The file kept the recording's state exactly.
        assert_eq!((&t.harts, &t.sched), (&s.harts, &s.sched));
        assert_eq!(t.bus, s.bus);
        assert!(t.ram.pages() == s.ram.pages());
    }
    let reference = finish(&mut m);
    let full_output = m.captured_output().to_vec();
    assert!(reference.icount > loaded.last().unwrap().icount());

    // Restored into fresh replays, random snapshots run on to the same states and end.
    let mut rng = Rng(0x51de_ca75 ^ reference.icount);
    for _ in 0..6 {
        let s = &loaded[rng.below(loaded.len() as u64) as usize];
        let mut r = replayer(&trace);
        r.restore(s).unwrap();
        assert_eq!(r.icount(), s.icount());
        let later = s.icount() + 1 + rng.below(reference.icount - s.icount());
        let mut c = replayer(&trace);
        c.run(Some(later)).unwrap();
        r.run(Some(later - s.icount())).unwrap();
        assert_eq!(r.icount(), c.icount(), "from {} to {later}", s.icount());
        assert_eq!(
            r.state_hash(),
            c.state_hash(),
            "from {} to {later}",
            s.icount()
        );
        assert!(r.ram().as_slice() == c.ram().as_slice());
        assert_eq!(finish(&mut r), reference, "from {}", s.icount());
        let from = usize::try_from(s.output_len).unwrap();
        assert_eq!(r.captured_output(), &full_output[from..]);
    }
}

/// The recorded end falls exactly on a snapshot stop: the end of the recording is logged after
/// the mark, and both a full replay and one from that last snapshot end there.
#[test]
fn a_recording_ending_on_a_snapshot_replays_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record_demo(&trace, 100_000, 400_000);
    let loaded = load(&sidecar::sidecar_path(&trace), &trace).unwrap();
    assert_eq!(
        loaded.iter().map(Snapshot::icount).collect::<Vec<_>>(),
        [100_000, 200_000, 300_000, 400_000]
    );
    let mut m = replayer(&trace);
    let reference = finish(&mut m);
    assert_eq!(reference.outcome, RunOutcome::InstructionLimit);
    assert_eq!(reference.icount, 400_000);
    let mut r = replayer(&trace);
    r.restore(&loaded[3]).unwrap();
    assert_eq!(finish(&mut r), reference);
}

#[test]
fn a_damaged_sidecar_is_refused_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record_demo(&trace, 100_000, 50_000_000);
    let path = sidecar::sidecar_path(&trace);
    let good = std::fs::read(&path).unwrap();
    load(&path, &trace).unwrap();
    let bad_path = dir.path().join("bad.snapshots");
    // Every byte of the header and the tail, a spread of bytes in the records.
    let n = good.len();
    let stride = (n / 1500).max(1);
    let offsets: Vec<usize> = (0..n)
        .filter(|&i| i < 100 || i + 200 > n || i % stride == 0)
        .collect();
    for &i in &offsets {
        let mut b = good.clone();
        b[i] ^= 0x5a;
        std::fs::write(&bad_path, &b).unwrap();
        let err = load(&bad_path, &trace).unwrap_err();
        match (i, &err) {
            (8..=9, SidecarError::UnsupportedVersion { .. }) => {}
            (_, SidecarError::Corrupt { offset, .. }) => {
                assert!(*offset as usize <= n, "byte {i}: {err}");
                let msg = err.to_string();
                assert!(
                    msg.contains(&format!("corrupt snapshot file at offset {offset}"))
                        && msg.starts_with(&bad_path.display().to_string()),
                    "byte {i}: {msg}"
                );
            }
            _ => panic!("byte {i}: unexpected error {err}"),
        }
    }
    // A file cut anywhere is refused too.
    for cut in [0, 7, 79, 80, 81, n / 2, n - 17, n - 1] {
        std::fs::write(&bad_path, &good[..cut]).unwrap();
        let err = load(&bad_path, &trace).unwrap_err();
        assert!(
            matches!(err, SidecarError::Corrupt { .. }),
            "cut at {cut}: {err}"
        );
    }
    // Loading only the first snapshot still verifies every record's checksum.
    let mut b = good.clone();
    b[n - 300] ^= 1;
    std::fs::write(&bad_path, &b).unwrap();
    let err = load_sel(&bad_path, &trace, sidecar::Select::LastAtOrBefore(0)).unwrap_err();
    assert!(matches!(err, SidecarError::Corrupt { .. }), "{err}");
    assert!(
        load_sel(&path, &trace, sidecar::Select::LastAtOrBefore(99_999))
            .unwrap()
            .is_empty()
    );
    let first = load_sel(&path, &trace, sidecar::Select::LastAtOrBefore(150_000)).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].icount(), 100_000);
    // A flipped record byte names the record's offset (records start after the 80-byte header).
    let mut b = good.clone();
    b[100] ^= 1;
    std::fs::write(&bad_path, &b).unwrap();
    let msg = load(&bad_path, &trace).unwrap_err().to_string();
    assert!(
        msg.contains("at offset 80: record checksum mismatch"),
        "{msg}"
    );
}

#[test]
fn the_sidecar_of_another_recording_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.rwtrace");
    let b = dir.path().join("b.rwtrace");
    record_demo(&a, 200_000, 1_000_000);
    std::thread::sleep(std::time::Duration::from_millis(5));
    record_demo(&b, 200_000, 1_000_000);
    let id_a = trace_id(TraceReader::open(&a).unwrap().header());
    let id_b = trace_id(TraceReader::open(&b).unwrap().header());
    assert_ne!(id_a, id_b);
    let side_a = sidecar::sidecar_path(&a);
    let err = load(&side_a, &b).unwrap_err();
    assert!(matches!(err, SidecarError::WrongTrace { .. }), "{err}");
    let msg = err.to_string();
    for part in [
        side_a.display().to_string(),
        b.display().to_string(),
        id_a,
        id_b,
    ] {
        assert!(msg.contains(&part), "{msg} lacks {part}");
    }
    // Not a sidecar at all.
    let err = load(&a, &a).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a recording's snapshot file: it is a trace"),
        "{err}"
    );
}

/// Bytes held by `snaps`, every page counted once (an independent count).
fn held(snaps: &[Snapshot]) -> u64 {
    let mut pages = HashSet::new();
    for s in snaps {
        for p in s.ram.pages().iter().flatten() {
            pages.insert(Arc::as_ptr(p));
        }
    }
    pages.len() as u64 * 4096
}

#[test]
fn the_budget_thins_old_snapshots_and_keeps_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bench.rwtrace");
    let m = recorder(&trace, ("bench.elf", BENCH));
    let mut s = Seeker::new(m, 100_000).unwrap();
    // Unlimited first: what 60 snapshots cost.
    s.run(Some(6_000_000)).unwrap();
    assert_eq!(s.snapshot_icounts().len(), 61);
    let full = s.snapshot_memory();
    assert!(full >= held(s.snapshots()), "{full}");
    let budget = full / 3;
    s.set_budget(Some(budget));
    assert!(s.snapshot_memory() <= budget);
    let mut previous = s.snapshot_icounts();
    for _ in 0..30 {
        s.run(Some(500_000)).unwrap();
        let icounts = s.snapshot_icounts();
        assert!(
            s.snapshot_memory() <= budget,
            "{} > {budget}",
            s.snapshot_memory()
        );
        assert_eq!(icounts[0], 0, "the first snapshot is kept");
        assert!(icounts.windows(2).all(|w| w[0] < w[1]));
        // The newest is the last multiple of the interval reached.
        assert_eq!(*icounts.last().unwrap(), s.machine().icount());
        assert!(icounts.len() >= 4, "{icounts:?}");
        previous = icounts;
    }
    // Old history is coarse, recent history dense.
    let gaps: Vec<u64> = previous.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.first() > gaps.last(), "{gaps:?}");
    assert_eq!(*gaps.last().unwrap(), 100_000, "{gaps:?}");
    // The running count equals a recount (page table, ROM and structure on top of the pages).
    let pages = held(s.snapshots());
    let per = s.snapshot_memory() - pages;
    assert_eq!(per % s.snapshots().len() as u64, 0);
    assert!(per / (s.snapshots().len() as u64) < 256 << 10);
    // The recording is intact: thinned snapshots' marks are skipped by the replay.
    s.machine_mut().log_end_of_recording().unwrap();
    let (mut m, snaps) = s.into_parts();
    let end = m.icount();
    m.finish_recording().unwrap();
    drop(m);
    let id = trace_id(TraceReader::open(&trace).unwrap().header());
    sidecar::save(&sidecar::sidecar_path(&trace), &id, &snaps).unwrap();
    let loaded = load(&sidecar::sidecar_path(&trace), &trace).unwrap();
    let mut r = replayer(&trace);
    r.restore(loaded.last().unwrap()).unwrap();
    let e = finish(&mut r);
    assert_eq!(e.icount, end);
    let mut full = replayer(&trace);
    assert_eq!(finish(&mut full), e);
}

/// Temporary files of killed recordings (`PATH.tmp-PID`) are removed when their process is
/// gone; a live process's, other names, directories and symlinks are left alone.
#[test]
fn stale_temporaries_of_dead_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rwtrace.snapshots");
    let tmp = |suffix: &str| dir.path().join(format!("t.rwtrace.snapshots.tmp-{suffix}"));
    // Above any Linux pid_max (4,194,304): no such process.
    let dead = tmp("4294967295");
    let dead2 = tmp("4194305");
    let mine = tmp(&std::process::id().to_string());
    let other_trace = dir.path().join("u.rwtrace.snapshots.tmp-4294967295");
    let not_a_pid = tmp("12ab");
    let a_dir = tmp("4194306");
    let target = dir.path().join("precious");
    let link = tmp("4194307");
    for f in [&dead, &dead2, &mine, &other_trace, &not_a_pid, &target] {
        std::fs::write(f, b"x").unwrap();
    }
    std::fs::create_dir(&a_dir).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let removed = sidecar::remove_stale_temporaries(&path);
    if !Path::new("/proc/self").exists() {
        assert_eq!(removed, 0);
        return;
    }
    assert_eq!(removed, 2);
    assert!(!dead.exists() && !dead2.exists());
    for kept in [&mine, &other_trace, &not_a_pid, &a_dir, &target] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(link.symlink_metadata().is_ok(), "the symlink was removed");
}

/// `good` (a sidecar) without its record `k`: the records after it moved up, the index
/// rebuilt to match, every checksum valid. Only the chain of deltas is wrong.
fn without_record(good: &[u8], path: &Path, k: usize) -> Vec<u8> {
    let (_, index) = sidecar::read_index(path).unwrap();
    let n = good.len();
    let index_at = u64::from_le_bytes(good[n - 16..n - 8].try_into().unwrap()) as usize;
    let gone = index[k];
    let mut out = good[..gone.offset as usize].to_vec();
    out.extend_from_slice(&good[(gone.offset + gone.len) as usize..index_at]);
    let entries: Vec<sidecar::IndexEntry> = index
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != k)
        .map(|(i, e)| sidecar::IndexEntry {
            offset: if i > k { e.offset - gone.len } else { e.offset },
            ..*e
        })
        .collect();
    let body = postcard::to_allocvec(&entries).unwrap();
    let new_index_at = out.len() as u64;
    out.extend_from_slice(b"RWSI");
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&new_index_at.to_le_bytes());
    out.extend_from_slice(&good[n - 8..]);
    out
}

/// A sidecar whose chain of incremental records is broken (one record deleted, the index
/// rebuilt, all checksums valid) is a damaged file naming the record, not a replay that
/// diverges later on wrong RAM; the first record removed is caught too.
#[test]
fn a_broken_chain_of_records_is_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.rwtrace");
    record_demo(&trace, 100_000, 50_000_000);
    let path = sidecar::sidecar_path(&trace);
    let good = std::fs::read(&path).unwrap();
    let all = load(&path, &trace).unwrap();
    assert!(all.len() >= 4, "{} snapshots", all.len());
    let bad_path = dir.path().join("broken.snapshots");
    for k in [1, 0, all.len() - 1] {
        std::fs::write(&bad_path, without_record(&good, &path, k)).unwrap();
        let r = load(&bad_path, &trace);
        if k == all.len() - 1 {
            // The last record removed leaves a consistent, shorter chain.
            assert_eq!(r.unwrap().len(), all.len() - 1);
            continue;
        }
        let err = r.unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, SidecarError::Corrupt { .. })
                && msg.contains("chain of records is broken"),
            "record {k} removed: {msg}"
        );
    }
}
