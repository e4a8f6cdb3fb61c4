//! `rewind bench reverse`: the cost of snapshots while recording, and how fast a replay of a
//! long recording (the built-in benchmark guest, 1.6e9 instructions) seeks and steps backwards.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rewind_debug::bench::{bench_reverse, ReverseBenchOptions};
use rewind_log::TraceReader;
use rewind_machine::seek::Seeker;
use rewind_machine::sidecar::{self, DEFAULT_SNAPSHOT_INTERVAL};
use rewind_machine::snapshot::trace_id;
use rewind_machine::{CheckSettings, Machine, MachineConfig, SerialOutput};

use crate::commands::{create_trace, embedded_image};
use crate::{embedded, BENCH_ELF};

/// Default `--snapshot-budget` of `rewind record`, in bytes.
const SNAPSHOT_BUDGET: u64 = 512 << 20;

/// One recording of the benchmark guest.
pub(crate) struct Recording {
    wall: Duration,
    pub(crate) instructions: u64,
    pub(crate) snapshots: usize,
    snapshot_memory: u64,
    sidecar_bytes: u64,
    sidecar_write: Duration,
}

/// Record the benchmark guest to `trace`, with periodic snapshots every `interval`
/// instructions (`None`: none) and their sidecar file.
fn record(trace: &Path, interval: Option<u64>) -> anyhow::Result<Recording> {
    let config = MachineConfig {
        kernel: Some(embedded("bench.elf", BENCH_ELF)),
        serial_output: SerialOutput::Null,
        ..MachineConfig::default()
    };
    record_config(config, trace, interval)
}

/// Record the machine `config` to `trace` with snapshots every `interval` instructions
/// (saved to its snapshot file; `None`: none); `rewind bench analysis` records with it too.
pub(crate) fn record_config(
    mut config: MachineConfig,
    trace: &Path,
    interval: Option<u64>,
) -> anyhow::Result<Recording> {
    let checks = CheckSettings::default();
    let (writer, _) = create_trace(trace, &mut config, checks, true)?;
    let machine = Machine::record(config, writer, checks)?;
    let mut seeker = Seeker::new(machine, interval.unwrap_or(u64::MAX))?;
    seeker.set_budget(Some(SNAPSHOT_BUDGET));
    let start = Instant::now();
    seeker.run(None)?;
    let wall = start.elapsed();
    let snapshot_memory = seeker.snapshot_memory();
    let (mut m, snaps) = seeker.into_parts();
    let instructions = m.icount();
    m.finish_recording()?;
    drop(m);
    let mut rec = Recording {
        wall,
        instructions,
        snapshots: 0,
        snapshot_memory,
        sidecar_bytes: 0,
        sidecar_write: Duration::ZERO,
    };
    if interval.is_some() {
        let id = trace_id(TraceReader::open(trace)?.header());
        let t = Instant::now();
        let saved = sidecar::save(&sidecar::sidecar_path(trace), &id, &snaps)?;
        rec.sidecar_write = t.elapsed();
        rec.snapshots = saved.snapshots;
        rec.sidecar_bytes = saved.bytes;
    }
    Ok(rec)
}

/// `rewind bench reverse` (unless `traces_only`), then the same seeks and reverse steps in
/// each of `traces`.
pub fn run(traces: &[std::path::PathBuf], traces_only: bool) -> anyhow::Result<u8> {
    if !traces_only {
        builtin()?;
    }
    for t in traces {
        println!("--- {} ---", t.display());
        let before = crate::jit_counters();
        let r = bench_reverse(t, &embedded_image, &ReverseBenchOptions::default())
            .with_context(|| format!("bench reverse of {}", t.display()))?;
        println!("{r}");
        print_translations(before);
    }
    Ok(0)
}

/// The built-in benchmark guest: snapshot overhead while recording, then seeks, reverse steps
/// and `continue` with hooks in its replay.
fn builtin() -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let plain = dir.path().join("plain.rwtrace");
    let snapped = dir.path().join("snapshots.rwtrace");
    // Alternate the two kinds and keep the fastest of each: this machine's noise is larger
    // than the effect measured.
    let mut best_plain: Option<Recording> = None;
    let mut best_snap: Option<Recording> = None;
    for _ in 0..2 {
        let p = record(&plain, None)?;
        if best_plain.as_ref().is_none_or(|b| p.wall < b.wall) {
            best_plain = Some(p);
        }
        let s = record(&snapped, Some(DEFAULT_SNAPSHOT_INTERVAL))?;
        if best_snap.as_ref().is_none_or(|b| s.wall < b.wall) {
            best_snap = Some(s);
        }
    }
    let (Some(p), Some(s)) = (best_plain, best_snap) else {
        anyhow::bail!("no recording was made");
    };
    let overhead = (s.wall.as_secs_f64() / p.wall.as_secs_f64().max(1e-9) - 1.0) * 100.0;
    println!("--- rewind bench reverse ---");
    println!(
        "recording:       {} instructions of the benchmark guest",
        s.instructions
    );
    println!(
        "record:          {:.3} s without snapshots, {:.3} s with one every {} instructions ({overhead:+.1}%)",
        p.wall.as_secs_f64(),
        s.wall.as_secs_f64(),
        DEFAULT_SNAPSHOT_INTERVAL
    );
    println!(
        "record snapshots: {} kept, {:.1} MiB in memory; sidecar {} bytes written in {:.3} s",
        s.snapshots,
        s.snapshot_memory as f64 / (1024.0 * 1024.0),
        s.sidecar_bytes,
        s.sidecar_write.as_secs_f64()
    );
    // A watchpoint that never fires on a page the guest's loads and stores keep using: the
    // first byte after its .bss shares a page with the end of the buffer it works on.
    let hot_watch = rewind_machine::analysis::elf_symbol(BENCH_ELF, "__bss_end");
    let opts = ReverseBenchOptions {
        hot_watch,
        ..ReverseBenchOptions::default()
    };
    let before = crate::jit_counters();
    let r = bench_reverse(&snapped, &embedded_image, &opts)?;
    println!("{r}");
    print_translations(before);
    Ok(())
}

/// What the JIT translated, and found in its translation cache, since the counters `before`
/// (every replay, seek and continue of one trace; nothing under the interpreter).
fn print_translations(before: Option<[u64; 6]>) {
    if let (Some(a), Some(b)) = (crate::jit_counters(), before) {
        println!(
            "translations:    {} regions translated ({:.2} s on the compile thread), {} reused from the translation cache",
            a[0] - b[0],
            (a[3] - b[3]) as f64 / 1e9,
            a[5] - b[5]
        );
    }
}
