//! `rewind bench analysis`: how analyses scale over segments. On the benchmark guest's
//! recording (1.6e9 instructions, a snapshot every 100 million) and, with `assets/linux`, the
//! scripted Linux boot: `analyze coverage` with 1 job, 2, all cores and the Ray engine, and
//! `last-write` latency for a write near the end, the middle and the start. Each row runs
//! this binary as a user would (`rewind analyze ...`), so it includes opening the trace.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rewind_machine::{MachineConfig, SerialOutput};

use crate::{embedded, BENCH_ELF};

/// Snapshot interval of the benchmark recordings.
const INTERVAL: u64 = 100_000_000;

/// Run `rewind ARGS`, its wall time (an error with its last line when it fails).
fn timed(args: &[String]) -> anyhow::Result<Duration> {
    let exe = std::env::current_exe().context("cannot find the rewind binary")?;
    let t = Instant::now();
    let out = Command::new(exe)
        .args(args)
        .output()
        .context("cannot run rewind")?;
    let wall = t.elapsed();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "rewind {}: {}",
            args.join(" "),
            err.lines().last().unwrap_or("failed")
        );
    }
    Ok(wall)
}

/// The rows of one recording: coverage by jobs and engine, last-write by position.
fn rows(
    name: &str,
    trace: &Path,
    instructions: u64,
    segments: usize,
    watch: Option<u64>,
) -> anyhow::Result<()> {
    let t = trace.display().to_string();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = trace.with_extension("cov.json").display().to_string();
    let cov = |extra: &[&str]| {
        let mut a: Vec<String> = ["analyze", "coverage", &t, "--out", &out]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        timed(&a)
    };
    println!(
        "{name}: {instructions} instructions, {segments} segments (a snapshot every {INTERVAL})"
    );
    let one = cov(&["--jobs", "1"])?;
    let row = |what: &str, d: Duration| {
        println!(
            "  analyze coverage, {what:<34} {:>8.2} s   speed-up {:>5.2}",
            d.as_secs_f64(),
            one.as_secs_f64() / d.as_secs_f64().max(1e-9)
        );
    };
    row("1 job", one);
    row("2 jobs", cov(&["--jobs", "2"])?);
    if cores > 2 {
        row(
            &format!("{cores} jobs (all cores)"),
            cov(&["--jobs", &cores.to_string()])?,
        );
    }
    // A running cluster (REWIND_BENCH_RAY=ADDRESS), or a local instance the driver starts
    // and stops (its start-up, a few seconds, is in the figure).
    let engine = match std::env::var("REWIND_BENCH_RAY") {
        Ok(a) => format!("ray:{a}"),
        Err(_) => "ray".to_string(),
    };
    match cov(&["--engine", &engine]) {
        Ok(d) => row(&format!("--engine {engine}"), d),
        Err(e) => println!("  analyze coverage, --engine {engine}: not run: {e:#}"),
    }
    let Some(addr) = watch else {
        return Ok(());
    };
    for (pos, frac) in [("end", 0.99), ("middle", 0.5), ("start", 0.01)] {
        let before = (instructions as f64 * frac) as u64;
        let d = timed(&[
            "analyze".into(),
            "last-write".into(),
            t.clone(),
            "--addr".into(),
            format!("{addr:#x}"),
            "--len".into(),
            "8".into(),
            "--before".into(),
            before.to_string(),
            "--jobs".into(),
            cores.to_string(),
        ])?;
        println!(
            "  last-write, a write near the {pos:<6} (before {before:>10}) {:>8.2} s",
            d.as_secs_f64()
        );
    }
    Ok(())
}

/// `rewind bench analysis`.
pub fn run() -> anyhow::Result<u8> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("bench.rwtrace");
    eprintln!("rewind bench analysis: recording the benchmark guest...");
    let config = MachineConfig {
        kernel: Some(embedded("bench.elf", BENCH_ELF)),
        serial_output: SerialOutput::Null,
        ..MachineConfig::default()
    };
    let rec = crate::bench_reverse::record_config(config, &trace, Some(INTERVAL))?;
    // The timer handler's tick counter: written every millisecond of guest time.
    let ticks = rewind_machine::analysis::elf_symbol(BENCH_ELF, "ticks");
    rows(
        "bench guest",
        &trace,
        rec.instructions,
        rec.snapshots + 1,
        ticks,
    )?;
    match crate::commands::linux_assets() {
        Ok(files) => {
            eprintln!("rewind bench analysis: recording the scripted Linux boot...");
            let config = crate::commands::linux_bench_config(&files, crate::commands::LINUX_APPEND);
            let trace = dir.path().join("linux.rwtrace");
            let rec = crate::bench_reverse::record_config(config, &trace, Some(INTERVAL))?;
            rows(
                "scripted Linux boot",
                &trace,
                rec.instructions,
                rec.snapshots + 1,
                None,
            )?;
        }
        Err(e) => println!("scripted Linux boot: not run: {e:#}"),
    }
    Ok(0)
}
