//! `rewind record`, `replay`, `dump` and `demo`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rewind_log::{dump as logdump, EventKind, LogError, TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::seek::{SeekResult, Seeker};
use rewind_machine::session::{OpenOptions, ReplaySession, SessionError, StopState};
use rewind_machine::sidecar;
use rewind_machine::snapshot::trace_id;
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
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Create the trace file for `config` (refusing to replace one unless `force`); also returns
/// the recording's trace id (see [`trace_id`]).
pub fn create_trace(
    path: &Path,
    config: &mut MachineConfig,
    checks: CheckSettings,
    force: bool,
) -> anyhow::Result<(TraceWriter, String)> {
    if path.is_dir() {
        bail!(
            "{}: is a directory; -o takes the trace file to write (e.g. {}/run.rwtrace)",
            path.display(),
            path.display()
        );
    }
    let header = prepare_recording(config, checks)?;
    let id = trace_id(&header);
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
        r => Ok((r?, id)),
    }
}

/// `rewind record`.
pub fn record(a: RecordArgs) -> anyhow::Result<u8> {
    let (outcome, icount) = record_run(a, true)?;
    Ok(exit_status(outcome, icount))
}

/// `rewind record` without its closing lines on standard error: how the recording ended and
/// its length (`rewind hunt` records many times).
pub fn record_quietly(a: RecordArgs) -> anyhow::Result<(RunOutcome, u64)> {
    record_run(a, false)
}

fn record_run(a: RecordArgs, report: bool) -> anyhow::Result<(RunOutcome, u64)> {
    let debug = a.debug.bind(a.machine.max_instructions)?;
    let mut config = machine_config(&a.machine)?;
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
    rewind_machine::record::check_audio_outputs(
        &config,
        &[a.output.clone(), sidecar::sidecar_path(&a.output)],
    )?;
    let (mut writer, id) = create_trace(&a.output, &mut config, checks, a.force)?;
    if let Some(b) = a.block_size {
        writer.set_block_size(b);
    }
    // Snapshots of an earlier recording at this path belong to a trace that is gone.
    let sidecar = sidecar::sidecar_path(&a.output);
    let _ = std::fs::remove_file(&sidecar);
    // And the half-written snapshot files of recordings killed before they finished.
    sidecar::remove_stale_temporaries(&sidecar);
    let m = match Machine::record(config, writer, checks) {
        Ok(m) => m,
        Err(e) => {
            // Nothing was recorded: do not leave a header-only file behind.
            let _ = std::fs::remove_file(&a.output);
            return Err(e.into());
        }
    };
    let interval = if a.no_snapshots {
        u64::MAX
    } else {
        a.snapshot_every
    };
    let mut seeker = Seeker::new(m, interval)?;
    seeker.set_budget(Some(a.snapshot_budget.saturating_mul(1 << 20)));
    // Snapshots are encoded into the sidecar on another thread as they are taken.
    let sidecar_writer = if a.no_snapshots {
        None
    } else {
        let w = sidecar::SidecarWriter::start(&sidecar, &id, &seeker.snapshots()[0])?;
        seeker.set_snapshot_sink(w.sink());
        Some(w)
    };
    let (mut seeker, outcome, error) = match debug {
        Some(debugging) => {
            let mut served = debugging.serve(seeker, Some(a.output.clone()));
            // A monitor quit before the guest ended ends the recording there, with status 0
            // (as QEMU's quit); its replay ends at the same instruction with the same status.
            let outcome = match served.ended {
                Some(o) => o,
                None if served.error.is_none() => served.seeker.machine_mut().log_monitor_quit()?,
                None => RunOutcome::InstructionLimit,
            };
            (served.seeker, outcome, served.error)
        }
        None => {
            let progress = (!a.quiet && std::io::stderr().is_terminal())
                .then(|| RecordProgress::new(&a.output));
            let outcome = match &progress {
                Some(p) => record_with_progress(&mut seeker, a.machine.max_instructions, p)?,
                None => seeker.run(a.machine.max_instructions)?,
            };
            if let Some(p) = progress {
                p.bar.finish_and_clear();
            }
            (seeker, outcome, None)
        }
    };
    if outcome == RunOutcome::InstructionLimit {
        // The seeker's stops are pauses: say that the recording ends here.
        seeker.machine_mut().log_end_of_recording()?;
    }
    // Dropping the seeker closes the sidecar writer's input.
    let (mut m, _) = seeker.into_parts();
    let icount = m.icount();
    let bytes = m.finish_recording()?.unwrap_or(0);
    let stats = a.machine.stats.then(|| crate::stats_report(&m));
    // Restore the terminal before printing.
    drop(m);
    if let Some(r) = stats {
        eprint!("{r}");
    }
    if report {
        eprintln!(
            "rewind: recorded {icount} instructions to {} ({bytes} bytes)",
            a.output.display()
        );
    }
    if let Some(w) = sidecar_writer {
        let saved = w.finish()?;
        if report {
            eprintln!(
                "rewind: {} snapshots in {} ({} bytes)",
                saved.snapshots,
                sidecar.display(),
                saved.bytes
            );
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok((outcome, icount)),
    }
}

/// The progress line of a recording on a terminal.
struct RecordProgress {
    bar: indicatif::ProgressBar,
    trace: std::path::PathBuf,
    started: Instant,
}

impl RecordProgress {
    fn new(trace: &Path) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("record {spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        RecordProgress {
            bar,
            trace: trace.to_path_buf(),
            started: Instant::now(),
        }
    }

    /// Guest instructions, guest time, log bytes so far and speed.
    fn update(&self, m: &Machine) {
        let icount = m.icount();
        let guest_s = m.bus().clock.ns(icount) as f64 / 1e9;
        let log = std::fs::metadata(&self.trace).map_or(0, |md| md.len());
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{icount} instructions, guest {guest_s:.2} s, log {log} bytes, {:.0} MIPS",
            icount as f64 / secs / 1e6
        ));
        self.bar.tick();
    }
}

/// Record in chunks of [`PROGRESS_CHUNK`] instructions, updating the progress line between
/// them; a chunk's end is a pause, not the end of the recording.
fn record_with_progress(
    seeker: &mut Seeker,
    max: Option<u64>,
    progress: &RecordProgress,
) -> Result<RunOutcome, MachineError> {
    let start = seeker.machine().icount();
    loop {
        let done = seeker.machine().icount() - start;
        let chunk = max.map_or(PROGRESS_CHUNK, |m| PROGRESS_CHUNK.min(m - done));
        let o = seeker.run(Some(chunk))?;
        progress.update(seeker.machine());
        let reached_max = max.is_some_and(|m| seeker.machine().icount() - start >= m);
        if o != RunOutcome::InstructionLimit || reached_max {
            return Ok(o);
        }
    }
}

/// A session error as the error of the layer that failed, so the CLI's exit status (3 for a
/// divergence, 4 for a cut trace) and message stay those of that error.
pub(crate) fn session_error(e: SessionError) -> anyhow::Error {
    match e {
        SessionError::Machine(e) => e.into(),
        SessionError::Sidecar(e) => e.into(),
        SessionError::Trace(e) => e.into(),
        SessionError::Snapshot(e) => e.into(),
        SessionError::Request(s) => anyhow::anyhow!(s),
    }
}

/// Print the warning about an unusable default snapshot file.
fn warn_snapshots(w: Option<sidecar::SidecarError>) {
    if let Some(e) = w {
        eprintln!("rewind: warning: {e}; going on without these snapshots");
    }
}

/// A trace opened for replay, and the temporary directory a pack was unpacked into (removed
/// when this is dropped).
pub(crate) struct Opened {
    /// The session.
    pub session: ReplaySession,
    /// Where the pack's files are.
    _unpacked: Option<tempfile::TempDir>,
}

/// Open `trace` for replay, images found by content (`--image` remaps, the recorded path,
/// next to the trace). A pack (`rewind pack`) is unpacked into a temporary directory first
/// and replayed from there: its images are found there by content.
pub(crate) fn open_session(
    trace: &Path,
    remap: &[(String, std::path::PathBuf)],
    snapshots: Option<&Path>,
) -> anyhow::Result<Opened> {
    let (trace, unpacked) = if rewind_machine::pack::is_pack(trace) {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let u = rewind_machine::pack::unpack(trace, dir.path())?;
        (u.trace, Some(dir))
    } else {
        (trace.to_path_buf(), None)
    };
    let opts = OpenOptions {
        remap: remap.to_vec(),
        image_dir: None,
        embedded: Some(Arc::new(embedded_image)),
        snapshots: snapshots.map(Path::to_path_buf),
    };
    let session = ReplaySession::open(&trace, opts).map_err(session_error)?;
    Ok(Opened {
        session,
        _unpacked: unpacked,
    })
}

/// `rewind replay`.
pub fn replay(a: ReplayArgs) -> anyhow::Result<u8> {
    let debug = a.debug.bind(None)?;
    // The trace is opened (and refused when it is not one) before anything else is looked at.
    if !rewind_machine::pack::is_pack(&a.file) {
        TraceReader::open(&a.file)?;
    }
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
    let mut opened = open_session(&a.file, &a.image, a.snapshots.as_deref())?;
    let session = &mut opened.session;
    for given in &a.audiodev {
        session.set_replay_audio(given).map_err(session_error)?;
    }
    rewind_machine::record::check_audio_outputs(session.config(), &session.protected_files())?;
    let total = session.total();
    let (mut m, reset) = match a.from {
        Some(n) => {
            let (started, warning) = session.start_at(n, output).map_err(session_error)?;
            warn_snapshots(warning);
            if let Some(outcome) = started.ended {
                let m = started.machine;
                let (icount, hash) = (m.icount(), m.state_hash());
                drop(m);
                let status = exit_status(outcome, icount);
                eprintln!(
                    "rewind: replay matched the recording: {icount} instructions, state {hash:016x}"
                );
                return Ok(status);
            }
            (started.machine, started.reset)
        }
        None => {
            let mut m = session.machine(output).map_err(session_error)?;
            // The machine at reset: the recording's snapshots are stored as changes from it.
            let reset = m.snapshot(None)?;
            if a.stop_at.is_empty() {
                // Nothing starts from it, but a named file is checked.
                session.check_snapshots(&reset).map_err(session_error)?;
            }
            (m, reset)
        }
    };
    if let Some(debugging) = debug {
        // Reverse execution can go back to the recording's snapshots and to the reset state
        // (before a --from start).
        let (mut seeker, warning) = session
            .seeker(
                m,
                crate::debugging::SNAPSHOT_INTERVAL,
                sidecar::Select::All,
                &reset,
            )
            .map_err(session_error)?;
        warn_snapshots(warning);
        seeker.add_snapshots([reset]);
        let served = debugging.serve(seeker, Some(a.file.clone()));
        // The verdict, as a replay without a debugger prints it: a session that ran to the
        // end of the recording was checked against it there.
        let m = served.seeker.machine();
        match (served.ended, &served.error) {
            (Some(_), None) => eprintln!(
                "rewind: replay matched the recording: {} instructions, state {:016x}",
                m.icount(),
                m.state_hash()
            ),
            (None, None) => eprintln!(
                "rewind: replay left at instruction {} of {}: not verified past it",
                m.icount(),
                total.map_or_else(|| "?".to_string(), |t| t.to_string())
            ),
            _ => {}
        }
        return served.status();
    }
    if !a.stop_at.is_empty() {
        let (mut seeker, warning) = session
            .seeker(m, a.snapshot_every, sidecar::Select::All, &reset)
            .map_err(session_error)?;
        warn_snapshots(warning);
        for &n in &a.stop_at {
            let st = ReplaySession::stop_at(&mut seeker, n).map_err(session_error)?;
            eprint!("{}", stop_text(&st));
        }
        if let Some(path) = &a.save_snapshot {
            session
                .save_snapshot(seeker.machine_mut(), path)
                .map_err(session_error)?;
        }
        return Ok(0);
    }
    let bar = match total {
        Some(t) if !a.quiet && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(t);
            bar.set_position(m.icount());
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
    let chunk = bar.as_ref().map(|_| PROGRESS_CHUNK);
    let result = ReplaySession::run_to_end(&mut m, chunk, |i| {
        if let Some(bar) = &bar {
            bar.set_position(i);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let outcome = result.map_err(session_error)?;
    let icount = m.icount();
    let hash = m.state_hash();
    let report = a.stats.then(|| crate::stats_report(&m));
    drop(m);
    if let Some(r) = report {
        eprint!("{r}");
    }
    let status = exit_status(outcome, icount);
    eprintln!("rewind: replay matched the recording: {icount} instructions, state {hash:016x}");
    Ok(status)
}

/// What `rewind replay --stop-at N` prints about the state at N.
fn stop_text(st: &StopState) -> String {
    let mut text = format!(
        "rewind: stopped at instruction {}\n  pc        {:#018x}\n  privilege {}\n  state     {:016x}\n",
        st.icount, st.pc, st.privilege, st.state_hash
    );
    if let Some(outcome) = st.ended {
        text.push_str(&format!("  (the recording ends here: {outcome})\n"));
    }
    for row in st.registers.chunks(4) {
        text.push(' ');
        for (name, v) in row {
            text.push_str(&format!(" {name:>10} {v:#018x}"));
        }
        text.push('\n');
    }
    text
}

/// `rewind dump`.
pub fn dump(a: DumpArgs) -> anyhow::Result<u8> {
    if let Some(pcap) = &a.pcap {
        return dump_pcap(&a.file, pcap);
    }
    let kinds = match &a.kind {
        Some(spec) => {
            Some(logdump::Filter::parse_kinds(spec).map_err(|e| anyhow::anyhow!("--kind: {e}"))?)
        }
        None => None,
    };
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
    } else {
        let filter = logdump::Filter {
            kinds,
            from: a.from,
            to: a.to,
            ..Default::default()
        };
        dump_events(&mut reader, &mut out, &a, filter).map(|latest| {
            if let Some(r) = latest {
                reader = r;
            }
        })
    };
    let flushed = out.flush().map_err(LogError::Output);
    match r.and(flushed) {
        // A cut trace is dumped up to the cut but exits as its replay does, so scripts can
        // tell an intact trace from a partial one by the status alone.
        Ok(()) => Ok(match reader.truncated() {
            Some(t) => {
                eprintln!("rewind: {}: recording was cut short: {t}", a.file.display());
                crate::EXIT_CUT_SHORT
            }
            None => 0,
        }),
        // `rewind dump FILE | head` is not an error.
        Err(LogError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// `rewind dump --pcap PCAP TRACE`: replay the trace (output discarded) and write every
/// network frame crossing the boundary, received ones from the log and sent ones as the guest
/// sends them again, stamped with virtual time. Exits as the replay would.
fn dump_pcap(trace: &Path, pcap: &Path) -> anyhow::Result<u8> {
    use rewind_replay::pcap::PcapWriter;
    let reader = TraceReader::open(trace)?;
    let search = rewind_machine::record::ImageSearch {
        dir: Some(match trace.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }),
        remap: Vec::new(),
    };
    let (config, _) =
        rewind_machine::record::replay_config_with(reader.header(), &embedded_image, &search)?;
    if pcap == trace || same_file(pcap, trace) {
        bail!(
            "{}: refusing to write the pcap over the trace",
            pcap.display()
        );
    }
    let file = std::fs::File::create(pcap)
        .with_context(|| format!("{}: cannot create", pcap.display()))?;
    let writer = PcapWriter::new(std::io::BufWriter::new(file))
        .with_context(|| format!("{}: cannot write", pcap.display()))?;
    let shared = Arc::new(std::sync::Mutex::new((writer, None::<std::io::Error>)));
    let mut m = Machine::replay(config, reader, SerialOutput::Null)?;
    let sink = Arc::clone(&shared);
    m.set_net_capture(Some(Box::new(move |_dir, _slot, ns, frame| {
        if let Ok(mut g) = sink.lock() {
            if g.1.is_none() {
                if let Err(e) = g.0.frame(ns, frame) {
                    g.1 = Some(e);
                }
            }
        }
    })));
    let result = m.run(None).and_then(|o| m.finish_replay().map(|()| o));
    let icount = m.icount();
    drop(m);
    let (writer, err) = match Arc::try_unwrap(shared).map(|m| m.into_inner()) {
        Ok(Ok(inner)) => inner,
        _ => bail!("{}: the capture is still in use", pcap.display()),
    };
    let frames = writer.frames();
    let flushed = writer.finish().map(|_| ());
    if let Some(e) = err.map(Err).unwrap_or(flushed).err() {
        bail!("{}: cannot write: {e}", pcap.display());
    }
    let outcome = result?;
    eprintln!(
        "rewind: {frames} frames to {} (replayed {icount} instructions, {outcome})",
        pcap.display()
    );
    Ok(0)
}

/// A benchmark's verdict on its replay: the note to print, and whether it matched (`same`:
/// the replay ended in the recording's state).
pub(crate) fn replay_verdict(replayed: Result<(), MachineError>, same: bool) -> (String, bool) {
    match replayed {
        Ok(()) if same => ("matched the recording".to_string(), true),
        Ok(()) => ("differs from the recording!".to_string(), false),
        Err(e) => (
            format!("failed: {}", e.to_string().lines().next().unwrap_or("")),
            false,
        ),
    }
}

/// How often `dump --follow` looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Print the events `filter` picks; with `--follow`, keep reading the trace as its recording
/// writes it (each look reopens the file and prints the events after the last one seen) until
/// its footer shows the recording ended, or the range asked for is complete.
fn dump_events(
    reader: &mut TraceReader,
    out: &mut impl Write,
    a: &DumpArgs,
    mut filter: logdump::Filter,
) -> Result<Option<TraceReader>, LogError> {
    let mut print = |r: &mut TraceReader, f: &logdump::Filter| {
        let end = if a.json {
            logdump::dump_json(r, &mut *out, f)
        } else {
            logdump::dump_text(r, &mut *out, f)
        };
        out.flush().map_err(LogError::Output)?;
        end
    };
    if !a.follow {
        return print(reader, &filter).map(|_| None);
    }
    // A recording in progress is "cut short" at its last complete block: no trailer until the
    // footer is there.
    filter.no_trailer = reader.footer().is_none();
    let mut end = print(reader, &filter)?;
    let mut done = reader.footer().is_some() || end.range_over;
    filter.no_header = true;
    // The reader of the last look: its state (complete or cut) decides the exit status.
    let mut latest = None;
    while !done {
        std::thread::sleep(FOLLOW_POLL);
        let mut r = TraceReader::open(&a.file)?;
        filter.after = end.last;
        filter.no_trailer = r.footer().is_none();
        let now = print(&mut r, &filter)?;
        end.last = now.last.or(end.last);
        done = r.footer().is_some() || now.range_over;
        latest = Some(r);
    }
    Ok(latest)
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
    let (writer, _) = create_trace(&trace, &mut config, checks, false)?;
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
    let verdict = verdict && demo_seek(&trace, rec_icount)?;
    if verdict {
        println!("verdict: MATCH");
        Ok(0)
    } else {
        println!("verdict: MISMATCH");
        Ok(1)
    }
}

/// The demo's reverse-execution check: in a fresh replay of `trace` (`total` instructions),
/// the state at the middle is the same reached going forwards and after running to the end
/// and coming back through snapshots, and one instruction back from it equals the state there.
fn demo_seek(trace: &Path, total: u64) -> anyhow::Result<bool> {
    let reader = TraceReader::open(trace)?;
    let (config, _) = replay_config(reader.header(), &embedded_image)?;
    let m = Machine::replay(config, reader, SerialOutput::Null)?;
    let mut seeker = Seeker::new(m, (total / 16).max(1))?;
    let mid = total / 2;
    let mut state_at = |n: u64| -> anyhow::Result<u64> {
        match seeker.seek(n)? {
            SeekResult::Reached => Ok(seeker.machine().state_hash()),
            SeekResult::Ended(o) => {
                bail!("the replay ended at {} ({o})", seeker.machine().icount())
            }
        }
    };
    let before = state_at(mid - 1)?;
    let forwards = state_at(mid)?;
    state_at(total - 1)?;
    let back = state_at(mid)?;
    let step_back = state_at(mid - 1)?;
    let ok = forwards == back && before == step_back;
    println!(
        "seek:    instruction {mid} state {forwards:016x} forwards, {back:016x} after the end and \
         back; one step back {step_back:016x} (forwards {before:016x})"
    );
    Ok(ok)
}

/// Where `scripts/linux-guest.sh` puts the Linux guest.
const LINUX_ASSETS: &str = "assets/linux";
/// The kernel command line of `rewind bench linux` (scripted `/init` run, then poweroff).
pub(crate) const LINUX_APPEND: &str = "console=ttyS0 earlycon rdinit=/init rewind.test=1";
/// RAM of `rewind bench linux`.
pub(crate) const LINUX_RAM: u64 = 512 << 20;
/// The first line `/init` prints: the boot milestone the bench times.
const LINUX_MARKER: &[u8] = b"=== rewind linux guest:";
/// Longest a QEMU comparison run may take before the bench gives up on it.
const QEMU_TIMEOUT: Duration = Duration::from_secs(300);

/// One row of the `rewind bench linux` table.
struct BenchRow {
    name: String,
    /// Instructions and wall time to the `/init` banner, when known.
    marker: Option<(Option<u64>, Duration)>,
    /// Instructions (when known) and wall time to the end of the run.
    total: (Option<u64>, Duration),
    /// Trace or log size in bytes.
    size: Option<u64>,
    note: String,
}

impl BenchRow {
    fn print(&self) {
        let n = |i: Option<u64>| i.map_or("-".to_string(), |i| i.to_string());
        let (mi, mw) = match self.marker {
            Some((i, w)) => (n(i), format!("{:.3} s", w.as_secs_f64())),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<22} {:>14} {:>10} {:>14} {:>10} {:>12}  {}",
            self.name,
            mi,
            mw,
            n(self.total.0),
            format!("{:.3} s", self.total.1.as_secs_f64()),
            self.size.map_or("-".to_string(), |s| s.to_string()),
            self.note
        );
    }
}

/// The Linux guest files, or an error naming the script that makes them.
pub(crate) fn linux_assets() -> anyhow::Result<[std::path::PathBuf; 3]> {
    let dir = Path::new(LINUX_ASSETS);
    let files = ["fw_jump.bin", "Image", "initrd.cpio.gz"].map(|f| dir.join(f));
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !f.is_file())
        .map(|f| f.display().to_string())
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing Linux guest files: {} (run `bash scripts/linux-guest.sh` from the \
             repository root to create them)",
            missing.join(", ")
        );
    }
    Ok(files)
}

/// The marker position of a finished machine as (icount, time since `start`).
fn marker_since(m: &Machine, start: Instant) -> Option<(Option<u64>, Duration)> {
    m.output_marker()
        .map(|(i, t)| (Some(i), t.saturating_duration_since(start)))
}

/// A one-word description of how a run ended.
fn outcome_note(outcome: &RunOutcome) -> String {
    match outcome {
        RunOutcome::Exited(c) => format!("exit {c}"),
        other => other.to_string(),
    }
}

/// Run QEMU on the Linux guest (with extra `-icount` options if given): wall time to the
/// marker and to exit. `None` when QEMU is not installed.
fn qemu_linux(
    files: &[std::path::PathBuf; 3],
    cpu: &str,
    icount: Option<&str>,
) -> anyhow::Result<Option<(Option<Duration>, Duration, String)>> {
    use std::process::Command;
    let Some(qemu) = crate::find_qemu() else {
        return Ok(None);
    };
    let mut cmd = Command::new(&qemu);
    cmd.args(["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"])
        .args(["-cpu", cpu, "-bios"])
        .arg(&files[0])
        .arg("-kernel")
        .arg(&files[1])
        .arg("-initrd")
        .arg(&files[2])
        .args(["-append", LINUX_APPEND]);
    if let Some(opts) = icount {
        cmd.args(["-icount", opts]);
    }
    let run = watch_console(&qemu, &mut cmd, &[LINUX_MARKER], QEMU_TIMEOUT)?;
    let powered_off = String::from_utf8_lossy(&run.output).contains("reboot: Power down");
    let note = match run.exit {
        None => "timed out".to_string(),
        Some(st) if st.success() && powered_off => "exit 0".to_string(),
        Some(st) => format!("{st}{}", if powered_off { "" } else { ", no power down" }),
    };
    let (hit, wall) = (run.hits[0], run.wall);
    Ok(Some((hit, wall, note)))
}

/// A QEMU process run by [`watch_console`]: how it ended, when each marker first appeared on
/// its console, and the console itself.
pub(crate) struct WatchedRun {
    /// Its exit status; `None` when it was killed at the deadline.
    pub exit: Option<std::process::ExitStatus>,
    /// Per marker, the time from start to its first appearance.
    pub hits: Vec<Option<Duration>>,
    /// Start to exit.
    pub wall: Duration,
    /// Everything it wrote to standard output.
    pub output: Vec<u8>,
}

/// Run `cmd` (the QEMU at `qemu`) with its console read on a thread, so a hung QEMU can be
/// killed after `timeout`, noting when each of `markers` first appears.
pub(crate) fn watch_console(
    qemu: &Path,
    cmd: &mut std::process::Command,
    markers: &[&[u8]],
    timeout: Duration,
) -> anyhow::Result<WatchedRun> {
    use std::io::Read;
    use std::process::Stdio;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("{}: cannot start", qemu.display()))?;
    let Some(mut out) = child.stdout.take() else {
        bail!("{}: no output pipe", qemu.display());
    };
    let wanted: Vec<Vec<u8>> = markers.iter().map(|m| m.to_vec()).collect();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut hits = vec![None; wanted.len()];
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            for (hit, m) in hits.iter_mut().zip(&wanted) {
                if hit.is_none() && seen.windows(m.len()).any(|w| w == m.as_slice()) {
                    *hit = Some(start.elapsed());
                }
            }
        }
        (hits, seen)
    });
    let exit = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let (hits, output) = reader
        .join()
        .unwrap_or_else(|_| (vec![None; markers.len()], Vec::new()));
    Ok(WatchedRun {
        exit,
        hits,
        wall,
        output,
    })
}

/// `rewind bench linux`: boot Debian's kernel to the scripted `/init` test and poweroff in
/// run, record and replay modes (and QEMU 7.2 plain and `rr=record`), and print the times.
/// The machine of the Linux benchmarks: the guest `files` (firmware, kernel, initrd) with
/// [`LINUX_RAM`] and the command line `append`, no console input, output captured.
pub(crate) fn linux_bench_config(files: &[std::path::PathBuf; 3], append: &str) -> MachineConfig {
    MachineConfig {
        ram_size: LINUX_RAM,
        bios: Some(rewind_machine::ImageSource::File(files[0].clone())),
        kernel: Some(rewind_machine::ImageSource::File(files[1].clone())),
        initrd: Some(rewind_machine::ImageSource::File(files[2].clone())),
        append: Some(append.into()),
        serial_input: SerialInput::Null,
        serial_output: SerialOutput::Capture,
        handle_signals: false,
        ..MachineConfig::default()
    }
}

pub fn bench_linux(no_qemu: bool, cpu: rewind_machine::CpuFeatures) -> anyhow::Result<u8> {
    let files = linux_assets()?;
    let config = MachineConfig {
        cpu,
        ..linux_bench_config(&files, LINUX_APPEND)
    };
    let mut rows = Vec::new();
    let mut status = 0;
    println!("rewind bench linux: cpu {}", cpu.qemu_cpu_arg());
    eprintln!("rewind bench linux: run...");
    let mut m = Machine::new(config.clone())?;
    m.watch_output(LINUX_MARKER);
    let jit_before = crate::jit_counters();
    let start = Instant::now();
    let outcome = m.run(None)?;
    let wall = start.elapsed();
    crate::print_jit_cost(jit_before, wall);
    print!("{}", crate::jit_share(&m));
    let icount = m.icount();
    let out = String::from_utf8_lossy(m.captured_output()).into_owned();
    let mut note = outcome_note(&outcome);
    if !out.contains("--- rewind.test end ---") {
        note.push_str(", scripted test did not finish");
        status = 1;
    }
    if outcome != RunOutcome::Exited(0) {
        status = 1;
    }
    note.push_str(&format!(
        ", {:.0} MIPS, {} SBI timer calls",
        crate::mips(icount, wall),
        m.hart().stats.sbi_timer_calls()
    ));
    rows.push(BenchRow {
        name: "rewind run".into(),
        marker: marker_since(&m, start),
        total: (Some(icount), wall),
        size: None,
        note,
    });
    drop(m);

    eprintln!("rewind bench linux: record...");
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("linux.rwtrace");
    let mut rconfig = config;
    let checks = CheckSettings::default();
    let (writer, _) = create_trace(&trace, &mut rconfig, checks, false)?;
    let mut rec = Machine::record(rconfig, writer, checks)?;
    rec.watch_output(LINUX_MARKER);
    let start = Instant::now();
    let outcome = rec.run(None)?;
    let rec_wall = start.elapsed();
    let rec_icount = rec.icount();
    let rec_hash = rec.state_hash();
    let rec_marker = marker_since(&rec, start);
    let bytes = rec.finish_recording()?.unwrap_or(0);
    drop(rec);
    rows.push(BenchRow {
        name: "rewind record".into(),
        marker: rec_marker,
        total: (Some(rec_icount), rec_wall),
        size: Some(bytes),
        note: outcome_note(&outcome),
    });

    eprintln!("rewind bench linux: replay...");
    let reader = TraceReader::open(&trace)?;
    let (pconfig, _) = replay_config(reader.header(), &embedded_image)?;
    let mut rep = Machine::replay(pconfig, reader, SerialOutput::Null)?;
    rep.watch_output(LINUX_MARKER);
    let start = Instant::now();
    let replayed = rep.run(None).and_then(|_| rep.finish_replay());
    let rep_wall = start.elapsed();
    let (note, ok) = replay_verdict(
        replayed,
        rep.state_hash() == rec_hash && rep.icount() == rec_icount,
    );
    if !ok {
        status = 1;
    }
    rows.push(BenchRow {
        name: "rewind replay".into(),
        marker: marker_since(&rep, start),
        total: (Some(rep.icount()), rep_wall),
        size: None,
        note,
    });
    drop(rep);

    let mut qemu_missing = false;
    if !no_qemu {
        let log = dir.path().join("qemu-rr.bin");
        let rr = format!("shift=0,rr=record,rrfile={}", log.display());
        let qemu_cpu = cpu.qemu_cpu_arg();
        for (name, icount) in [("qemu", None), ("qemu -icount rr=record", Some(rr))] {
            eprintln!("rewind bench linux: {name}...");
            match qemu_linux(&files, &qemu_cpu, icount.as_deref())? {
                None => {
                    qemu_missing = true;
                    break;
                }
                Some((hit, wall, note)) => rows.push(BenchRow {
                    name: name.into(),
                    marker: hit.map(|h| (None, h)),
                    total: (None, wall),
                    size: icount
                        .is_some()
                        .then(|| std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)),
                    note,
                }),
            }
        }
    }

    println!(
        "--- rewind bench linux: Debian OpenSBI + Linux + busybox, -m 512M, scripted /init ---"
    );
    println!(
        "{:<22} {:>14} {:>10} {:>14} {:>10} {:>12}  notes",
        "", "instr to /init", "wall", "instr total", "wall", "trace bytes"
    );
    for r in &rows {
        r.print();
    }
    println!(
        "(/init = first serial line '{}'; total = to poweroff)",
        String::from_utf8_lossy(LINUX_MARKER)
    );
    if qemu_missing {
        println!("qemu-system-riscv64 not found: no comparison");
    }
    Ok(status)
}
