//! `rewind record`, `replay`, `dump` and `demo`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rewind_log::{dump as logdump, EventKind, LogError, TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::{
    CheckSettings, Machine, MachineConfig, MachineError, RunOutcome, SerialInput, SerialOutput,
};
use rewind_replay::{HostEvent, DEFAULT_REGISTERS_EVERY};

use crate::args::SerialSpec;
use crate::{
    embedded, exit_status, machine_config, DumpArgs, RecordArgs, ReplayArgs, BENCH_ELF, DEMO_ELF,
};

/// Instructions per progress-bar update during replay.
const PROGRESS_CHUNK: u64 = 50_000_000;

/// The images built into this binary, by name (traces refer to them as `embedded:NAME`).
pub fn embedded_image(name: &str) -> Option<Arc<[u8]>> {
    match name {
        "demo.elf" => Some(Arc::from(DEMO_ELF)),
        "bench.elf" => Some(Arc::from(BENCH_ELF)),
        _ => None,
    }
}

/// True when `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Create the trace file for `config` (refusing to replace one unless `force`).
pub fn create_trace(
    path: &Path,
    config: &mut MachineConfig,
    checks: CheckSettings,
    force: bool,
) -> anyhow::Result<TraceWriter> {
    let header = prepare_recording(config, checks)?;
    let w = if force {
        TraceWriter::create_overwrite(path, &header)
    } else {
        TraceWriter::create(path, &header)
    };
    match w {
        Err(LogError::AlreadyExists { .. }) => bail!(
            "{}: file already exists (use --force to replace it)",
            path.display()
        ),
        r => Ok(r?),
    }
}

/// `rewind record`.
pub fn record(a: RecordArgs) -> anyhow::Result<u8> {
    let mut config = machine_config(&a.machine);
    if let SerialOutput::File(p) = &config.serial_output {
        if p == &a.output || same_file(p, &a.output) {
            bail!(
                "{}: the serial output file cannot be the trace file",
                p.display()
            );
        }
    }
    let checks = CheckSettings {
        interval: a.check_interval,
        registers_every: DEFAULT_REGISTERS_EVERY,
    };
    let mut writer = create_trace(&a.output, &mut config, checks, a.force)?;
    if let Some(b) = a.block_size {
        writer.set_block_size(b);
    }
    let mut m = match Machine::record(config, writer, checks) {
        Ok(m) => m,
        Err(e) => {
            // Nothing was recorded: do not leave a header-only file behind.
            let _ = std::fs::remove_file(&a.output);
            return Err(e.into());
        }
    };
    let outcome = m.run(a.machine.max_instructions)?;
    let icount = m.icount();
    let bytes = m.finish_recording()?.unwrap_or(0);
    // Restore the terminal before printing.
    drop(m);
    let status = exit_status(outcome, icount);
    eprintln!(
        "rewind: recorded {icount} instructions to {} ({bytes} bytes)",
        a.output.display()
    );
    Ok(status)
}

/// Run a replay machine to its end, with a progress bar if `total` is given.
fn run_replay(
    m: &mut Machine,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<RunOutcome, MachineError> {
    let Some(bar) = bar else {
        return m.run(None);
    };
    loop {
        let o = m.run(Some(PROGRESS_CHUNK))?;
        bar.set_position(m.icount());
        // A chunk ending is not the end of the recording (the log says when that is).
        if o != RunOutcome::InstructionLimit || m.boundary().replay_at_end() {
            return Ok(o);
        }
    }
}

/// `rewind replay`.
pub fn replay(a: ReplayArgs) -> anyhow::Result<u8> {
    let reader = TraceReader::open(&a.file)?;
    let output = match a.serial {
        SerialSpec::Stdio => SerialOutput::Stdout,
        SerialSpec::Null => SerialOutput::Null,
        SerialSpec::File(p) => {
            if p == a.file || same_file(&p, &a.file) {
                bail!(
                    "{}: refusing to write serial output over the trace being replayed",
                    p.display()
                );
            }
            SerialOutput::File(p)
        }
        SerialSpec::Tcp(_) | SerialSpec::Unix(_) => bail!(
            "replay reads no serial input: use --serial stdio, null or file:PATH for the output"
        ),
    };
    let (config, _) = replay_config(reader.header(), &embedded_image)?;
    let total = reader.footer().map(|f| f.final_icount);
    let mut m = Machine::replay(config, reader, output)?;
    if !a.stop_at.is_empty() {
        let mut seeker = rewind_machine::seek::Seeker::new(m, a.snapshot_every)?;
        for &n in &a.stop_at {
            stop_at(&mut seeker, n)?;
        }
        if let Some(path) = &a.save_snapshot {
            let snap = seeker.machine_mut().snapshot(None)?;
            rewind_machine::snapshot::save_file(path, &snap)?;
        }
        return Ok(0);
    }
    let bar = match total {
        Some(t) if !a.quiet && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(t);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "replay [{bar:40}] {percent:>3}% {pos}/{len} instructions, eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            Some(bar)
        }
        _ => None,
    };
    let result = run_replay(&mut m, bar.as_ref()).and_then(|o| m.finish_replay().map(|()| o));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = result?;
    let icount = m.icount();
    let hash = m.state_hash();
    drop(m);
    let status = exit_status(outcome, icount);
    eprintln!("rewind: replay matched the recording: {icount} instructions, state {hash:016x}");
    Ok(status)
}

/// `rewind replay --stop-at N`: bring the replay to exactly instruction `n`, print the state.
fn stop_at(seeker: &mut rewind_machine::seek::Seeker, n: u64) -> anyhow::Result<()> {
    use rewind_machine::seek::SeekResult;
    let mut note = String::new();
    if let SeekResult::Ended(outcome) = seeker.seek(n)? {
        let m = seeker.machine_mut();
        let icount = m.icount();
        // Check that the recording really ends here, as a full replay does.
        m.finish_replay()?;
        let how = match outcome {
            RunOutcome::Exited(c) => format!("guest exit status {c}"),
            RunOutcome::HostQuit(c) => format!("stopped by {c}"),
            RunOutcome::InstructionLimit => "instruction limit".to_string(),
        };
        if icount != n {
            bail!("the recording ends at instruction {icount} ({how}), before instruction {n}");
        }
        note = format!("  (the recording ends here: {how})\n");
    }
    let m = seeker.machine();
    let icount = m.icount();
    let hart = m.hart();
    let mut text = format!(
        "rewind: stopped at instruction {icount}\n  pc        {:#018x}\n  privilege {}\n  state     {:016x}\n",
        hart.pc,
        rewind_machine::state::privilege_name(hart.prv),
        m.state_hash()
    );
    text.push_str(&note);
    let regs: Vec<(&str, u64)> = m
        .state_snapshot()
        .into_iter()
        .filter(|(name, _)| !matches!(*name, "pc" | "privilege" | "icount"))
        .collect();
    for row in regs.chunks(4) {
        text.push(' ');
        for (name, v) in row {
            text.push_str(&format!(" {name:>10} {v:#018x}"));
        }
        text.push('\n');
    }
    eprint!("{text}");
    Ok(())
}

/// `rewind dump`.
pub fn dump(a: DumpArgs) -> anyhow::Result<u8> {
    let mut reader = TraceReader::open(&a.file)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let r = if a.stats {
        logdump::stats(&mut reader).and_then(|st| {
            let text = if a.json {
                let kinds: serde_json::Map<String, serde_json::Value> = st
                    .kinds
                    .iter()
                    .filter(|(_, k)| k.count > 0)
                    .map(|(kind, k)| {
                        (
                            kind.name().to_string(),
                            serde_json::json!({"count": k.count, "raw_bytes": k.raw_bytes}),
                        )
                    })
                    .collect();
                format!(
                    "{}\n",
                    serde_json::json!({
                        "file_bytes": st.file_len,
                        "events": st.events,
                        "blocks": st.blocks,
                        "raw_bytes": st.raw_bytes,
                        "compressed_bytes": st.compressed_bytes,
                        "kinds": kinds,
                        "truncated": st.truncation.map(|t| t.to_string()),
                    })
                )
            } else {
                format!("{}\n", st.to_string().trim_end())
            };
            out.write_all(text.as_bytes()).map_err(LogError::Output)
        })
    } else if a.json {
        logdump::dump_json(&mut reader, &mut out)
    } else {
        logdump::dump_text(&mut reader, &mut out)
    };
    let flushed = out.flush().map_err(LogError::Output);
    match r.and(flushed) {
        Ok(()) => Ok(0),
        // `rewind dump FILE | head` is not an error.
        Err(LogError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Bytes the demo "types", with the delay before each chunk.
const DEMO_SCRIPT: [(u64, &[u8]); 4] = [
    (1, b"hello rewind\r"),
    (2, b"ls -l\r"),
    (1, b"\x1b[A"),
    (3, b"exit\r"),
];

/// `rewind demo`: record the demo guest with scripted input, replay it, compare.
pub fn demo() -> anyhow::Result<u8> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("demo.rwtrace");
    let mut config = MachineConfig {
        kernel: Some(embedded("demo.elf", DEMO_ELF)),
        serial_input: SerialInput::Null,
        serial_output: SerialOutput::Capture,
        handle_signals: false,
        ..MachineConfig::default()
    };
    // The demo is short: check state often so the trace shows some checks.
    let checks = CheckSettings {
        interval: 250_000,
        registers_every: 4,
    };
    let writer = create_trace(&trace, &mut config, checks, false)?;
    let mut rec = Machine::record(config, writer, checks)?;
    let tx = rec.boundary().sender();
    let typist = std::thread::spawn(move || {
        for (ms, bytes) in DEMO_SCRIPT {
            std::thread::sleep(Duration::from_millis(ms));
            if tx.send(HostEvent::Serial(bytes.to_vec())).is_err() {
                return;
            }
        }
    });
    let t0 = Instant::now();
    let rec_outcome = rec.run(None)?;
    let rec_wall = t0.elapsed();
    let rec_icount = rec.icount();
    let rec_hash = rec.state_hash();
    let rec_out = rec.captured_output().to_vec();
    let bytes = rec.finish_recording()?.unwrap_or(0);
    drop(rec);
    let _ = typist.join();

    let reader = TraceReader::open(&trace)?;
    let (events, counts) = reader
        .footer()
        .map(|f| {
            let n = |k| f.event_counts.get(&k).copied().unwrap_or(0);
            let counts = format!(
                "{} serial input, {} state checks, {} idle warps",
                n(EventKind::SerialInput),
                n(EventKind::StateHash),
                n(EventKind::IdleWarp)
            );
            (f.total_events, counts)
        })
        .unwrap_or_default();
    let (rconfig, _) = replay_config(reader.header(), &embedded_image)?;
    let mut rep = Machine::replay(rconfig, reader, SerialOutput::Capture)?;
    let t1 = Instant::now();
    let rep_result = rep.run(None).and_then(|o| rep.finish_replay().map(|()| o));
    let rep_wall = t1.elapsed();
    let rep_out = rep.captured_output().to_vec();

    print!("{}", String::from_utf8_lossy(&rec_out));
    let rec_status = exit_status(rec_outcome, rec_icount);
    let h = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    println!();
    println!("--- rewind demo: record with scripted serial input, then replay ---");
    println!(
        "record:  {rec_icount} instructions in {:.3} s, exit status {rec_status}, output blake3 {}",
        rec_wall.as_secs_f64(),
        h(&rec_out)
    );
    let verdict = match rep_result {
        Ok(o) => {
            let rep_icount = rep.icount();
            let rep_hash = rep.state_hash();
            let rep_status = exit_status(o, rep_icount);
            println!(
                "replay:  {rep_icount} instructions in {:.3} s, exit status {rep_status}, output blake3 {}",
                rep_wall.as_secs_f64(),
                h(&rep_out)
            );
            println!("state:   recorded {rec_hash:016x}, replayed {rep_hash:016x}");
            rep_icount == rec_icount
                && rep_out == rec_out
                && rep_hash == rec_hash
                && rep_status == rec_status
        }
        Err(e) => {
            println!(
                "replay:  failed: {}",
                e.to_string().lines().next().unwrap_or("")
            );
            eprintln!("rewind: {e}");
            false
        }
    };
    println!("trace:   {bytes} bytes, {events} events ({counts})");
    if verdict {
        println!("verdict: MATCH");
        Ok(0)
    } else {
        println!("verdict: MISMATCH");
        Ok(1)
    }
}
