//! `rewind hunt`: record a guest again and again under chaos scheduling, each try with a fresh
//! seed, until a condition shows up (a console pattern, a non-zero guest exit); keep only the
//! recording where it did. rr's `--chaos` workflow, for a whole machine: the kept trace
//! replays the failure exactly, as often as needed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use rewind_machine::{sidecar, RunOutcome, ShutdownCause};

use crate::engine::{Engine, EngineTask, RayRunner};
use crate::{Cli, Cmd};

/// One try's result: the guest's outcome (as text), its length, whether it showed the
/// condition, whether the host interrupted it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TryResult {
    outcome: String,
    icount: u64,
    hit: bool,
    interrupted: bool,
}

impl TryResult {
    fn new(outcome: RunOutcome, icount: u64, hit: bool) -> Self {
        TryResult {
            interrupted: matches!(
                outcome,
                RunOutcome::HostQuit(
                    ShutdownCause::Sigint | ShutdownCause::Sigterm | ShutdownCause::Sighup
                )
            ),
            outcome: outcome.to_string(),
            icount,
            hit,
        }
    }
}

/// `rewind hunt-task` (hidden): one try of a hunt on a Ray worker.
#[derive(clap::Args, Debug)]
pub struct HuntTaskArgs {
    /// The try's chaos seed.
    #[arg(long, value_name = "SEED")]
    pub seed: u64,
    /// The condition (as `rewind hunt --until`).
    #[arg(long, value_parser = parse_until)]
    pub until: Until,
    /// Where to write the try's pack when it shows the condition.
    #[arg(long, value_name = "FILE")]
    pub artifact: PathBuf,
    /// The record options.
    #[arg(last = true, value_name = "RECORD OPTIONS", required = true)]
    pub record: Vec<String>,
}

/// Record one try with `seed` into `files`.
fn one_try(
    until: &Until,
    args: &HuntArgs,
    seed: u64,
    files: &TryFiles,
) -> anyhow::Result<TryResult> {
    let argv = try_args(args, files, seed)?;
    let cli = Cli::try_parse_from(&argv)?;
    let Cmd::Record(rec) = cli.command else {
        bail!("hunt: internal error: not a record command");
    };
    let (outcome, icount) = crate::commands::record_quietly(rec)?;
    let console = std::fs::read(&files.console).unwrap_or_default();
    let hit = match until {
        Until::ExitNonzero => matches!(outcome, RunOutcome::Exited(c) if c != 0),
        Until::Console(p) => console.windows(p.len()).any(|w| w == p.as_bytes()),
    };
    Ok(TryResult::new(outcome, icount, hit))
}

/// `rewind hunt-task`: record one try in a temporary directory; pack it to `--artifact`
/// when it shows the condition; its [`TryResult`] as JSON on standard output.
pub fn hunt_task(a: HuntTaskArgs) -> anyhow::Result<u8> {
    let dir = tempfile::tempdir().context("hunt: cannot create a temporary directory")?;
    let args = HuntArgs {
        chaos: true,
        until: a.until.clone(),
        tries: 1,
        seed: Some(a.seed),
        output: dir.path().join("try.rwd"),
        force: true,
        jobs: 1,
        engine: Engine::Local,
        record: a.record.clone(),
    };
    let files = TryFiles::new(&args.output);
    let r = one_try(&a.until, &args, a.seed, &files)?;
    if r.hit {
        let trace = crate::analyze::TraceArgs {
            file: files.trace.clone(),
            snapshots: None,
            image: Vec::new(),
        };
        crate::engine::pack_recording(&trace, &a.artifact)?;
    }
    files.remove();
    println!("{}", serde_json::to_string(&r)?);
    Ok(0)
}

/// What ends the hunt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// The console output contains this text.
    Console(String),
    /// The guest exits with a non-zero status.
    ExitNonzero,
}

/// Parse `--until`: `console:PATTERN` or `exit-nonzero`.
pub fn parse_until(s: &str) -> Result<Until, String> {
    if let Some(p) = s.strip_prefix("console:") {
        if p.is_empty() {
            return Err("console: needs a pattern (console:TEXT)".into());
        }
        return Ok(Until::Console(p.to_string()));
    }
    match s {
        "exit-nonzero" => Ok(Until::ExitNonzero),
        _ => Err(format!(
            "'{s}' is not a condition: use console:TEXT or exit-nonzero"
        )),
    }
}

/// Options of `rewind hunt`.
#[derive(clap::Args, Debug)]
pub struct HuntArgs {
    /// Vary the schedule with chaos seeds (the only way hunt varies a run; may be omitted).
    #[arg(long)]
    pub chaos: bool,
    /// When to stop: `console:TEXT` (the guest printed TEXT) or `exit-nonzero` (the guest
    /// exited with a non-zero status).
    #[arg(long, value_name = "console:TEXT|exit-nonzero", value_parser = parse_until)]
    pub until: Until,
    /// Give up after this many recordings.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub tries: u64,
    /// Seed of the first try (the next tries use the following seeds); default: drawn from
    /// the clock and printed, so a hunt can be repeated.
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Where to keep the recording that shows the condition (with its `.snapshots`).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "hunt.rwd"
    )]
    pub output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Tries recorded at once, on threads (each its own machine and files). The result is
    /// the same as with one: the first seed, in order, that shows the condition.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub jobs: u64,
    /// Where tries run: `local` (threads, `--jobs`) or a Ray cluster (`ray`, `ray:auto`,
    /// `ray:HOST:PORT`; as many tries at once as it has CPUs). With Ray the kept recording
    /// is a pack (`rewind replay FILE` replays it, `rewind unpack` restores the trace); the
    /// images named in the record options must be at the same paths on the workers.
    #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
    pub engine: Engine,
    /// `rewind record` options for every try (machine, images, devices): everything after
    /// `--`. Serial input comes from nowhere (a hunt runs unattended) unless
    /// `--serial-input FILE` is given; the console is watched, not shown.
    #[arg(last = true, value_name = "RECORD OPTIONS", required = true)]
    pub record: Vec<String>,
}

/// One try's files, next to the output.
struct TryFiles {
    trace: PathBuf,
    console: PathBuf,
}

impl TryFiles {
    fn new(output: &Path) -> Self {
        TryFiles::for_job(output, 0)
    }

    /// The files of job `k` (of `--jobs`).
    fn for_job(output: &Path, k: u64) -> Self {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "hunt.rwd".into());
        let dir = output.parent().filter(|p| !p.as_os_str().is_empty());
        let job = if k == 0 {
            String::new()
        } else {
            format!("-{k}")
        };
        let at = |suffix: &str| {
            let f = format!(".{name}.try-{}{job}{suffix}", std::process::id());
            dir.map_or_else(|| PathBuf::from(&f), |d| d.join(&f))
        };
        TryFiles {
            trace: at(".rwd"),
            console: at(".console"),
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.trace);
        let _ = std::fs::remove_file(sidecar::sidecar_path(&self.trace));
        let _ = std::fs::remove_file(&self.console);
    }
}

/// The record command line of one try: the user's options without a console backend or a
/// chaos seed of their own.
fn try_args(a: &HuntArgs, files: &TryFiles, seed: u64) -> anyhow::Result<Vec<String>> {
    let mut v: Vec<String> = ["rewind", "record", "--quiet", "--force", "-o"]
        .into_iter()
        .map(String::from)
        .collect();
    v.push(files.trace.display().to_string());
    // QEMU's spelling (-smp 4, -kernel ...) works here as it does after `rewind record`.
    let mut qemu_line: Vec<std::ffi::OsString> = vec!["record".into()];
    qemu_line.extend(a.record.iter().map(std::ffi::OsString::from));
    let translated: Vec<String> = crate::qemu::translate(qemu_line)
        .map_err(|e| anyhow::anyhow!("hunt: {e}"))?
        .into_iter()
        .skip(1)
        .map(|o| o.to_string_lossy().into_owned())
        .collect();
    let mut it = translated.iter().peekable();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--chaos" | "-o" | "--output" => {
                bail!("hunt: `{arg}` is hunt's to choose; leave it out of the record options")
            }
            s if s.starts_with("--chaos=") || s.starts_with("--output=") => {
                bail!("hunt: `{s}` is hunt's to choose; leave it out of the record options")
            }
            // The console goes to a file hunt reads.
            "--serial" => {
                it.next();
            }
            s if s.starts_with("--serial=") => {}
            _ => v.push(arg.clone()),
        }
    }
    v.push("--serial".into());
    v.push(format!("file:{}", files.console.display()));
    v.push("--chaos".into());
    v.push(seed.to_string());
    Ok(v)
}

/// `rewind hunt`.
pub fn hunt(a: HuntArgs) -> anyhow::Result<u8> {
    if a.output.exists() && !a.force {
        bail!(
            "{}: exists; choose another -o FILE or pass --force to replace it",
            a.output.display()
        );
    }
    let first = a.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()) << 32
    });
    let files = TryFiles::new(&a.output);
    // Check the record options once before the first try, with a clear message.
    let args = try_args(&a, &files, first)?;
    Cli::try_parse_from(&args).context("hunt: the record options after `--` are not valid")?;
    eprintln!(
        "hunt: up to {} tries from seed {first}, until {}",
        a.tries,
        describe(&a.until)
    );
    let started = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(a.tries);
        bar.set_style(
            indicatif::ProgressStyle::with_template("hunt [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut seen: std::collections::BTreeMap<String, u64> = Default::default();
    let jobs = a.jobs.max(1);
    let all_files: Vec<TryFiles> = (0..jobs).map(|k| TryFiles::for_job(&a.output, k)).collect();
    let mut ray = match &a.engine {
        Engine::Local => None,
        Engine::Ray(address) => Some(RayRunner::start(address.as_deref(), None)?),
    };
    let jobs = ray.as_ref().map_or(jobs, |r| r.cpus() as u64);
    // With Ray, the pack of job k's try (written when it shows the condition).
    let packs: Vec<PathBuf> = match ray {
        Some(_) => (0..jobs)
            .map(|k| {
                TryFiles::for_job(&a.output, k)
                    .trace
                    .with_extension("rwpack")
            })
            .collect(),
        None => Vec::new(),
    };
    // A round of tries from seed `from`, `round` of them; results in seed order.
    let mut run_round = |from: u64, round: u64| -> Vec<anyhow::Result<TryResult>> {
        if let Some(ray) = ray.as_mut() {
            let tasks: Vec<EngineTask> = (0..round)
                .map(|k| {
                    let mut args = vec![
                        "hunt-task".to_string(),
                        "--seed".into(),
                        from.wrapping_add(k).to_string(),
                        "--until".into(),
                        until_text(&a.until),
                        "--artifact".into(),
                        "{artifact}".into(),
                        "--".into(),
                    ];
                    args.extend(a.record.iter().cloned());
                    EngineTask {
                        args,
                        artifact: Some(packs[k as usize].clone()),
                    }
                })
                .collect();
            return match ray.run_tasks(&tasks) {
                Ok(results) => results
                    .into_iter()
                    .map(|r| {
                        let out = r
                            .output
                            .map_err(|e| anyhow::anyhow!("hunt: a try failed: {e}"))?;
                        let t = serde_json::from_str::<TryResult>(out.trim())
                            .map_err(|e| anyhow::anyhow!("hunt: a try answered {out:?}: {e}"))?;
                        if t.hit && !r.artifact {
                            bail!(
                                "hunt: a try showed the condition but its pack did not come back"
                            );
                        }
                        Ok(t)
                    })
                    .collect(),
                Err(e) => vec![Err(e)],
            };
        }
        if round == 1 {
            return vec![one_try(&a.until, &a, from, &all_files[0])];
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..round)
                .map(|k| {
                    let seed = from.wrapping_add(k);
                    let files = &all_files[k as usize];
                    let a = &a;
                    scope.spawn(move || one_try(&a.until, a, seed, files))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("hunt: a try panicked")))
                })
                .collect()
        })
    };
    let result = (|| -> anyhow::Result<Option<(u64, u64, String, usize)>> {
        let mut i = 0;
        while i < a.tries {
            // A round of up to `jobs` tries at once, then their results in seed order.
            let round = jobs.min(a.tries - i);
            let results = run_round(first.wrapping_add(i), round);
            for (k, r) in results.into_iter().enumerate() {
                let seed = first.wrapping_add(i);
                let TryResult {
                    outcome,
                    icount,
                    hit,
                    interrupted,
                } = r?;
                if interrupted {
                    bail!("hunt: interrupted after {i} tries");
                }
                *seen.entry(outcome.clone()).or_default() += 1;
                let summary = seen
                    .iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                match &bar {
                    Some(b) => {
                        b.set_position(i + 1);
                        b.set_message(format!(
                            "{:.1} s, seed {seed}: {outcome}; so far {summary}",
                            started.elapsed().as_secs_f64()
                        ));
                    }
                    None => eprintln!(
                        "hunt: try {}/{} seed {seed}: {outcome}, {icount} instructions ({:.1} s; so far {summary})",
                        i + 1,
                        a.tries,
                        started.elapsed().as_secs_f64()
                    ),
                }
                i += 1;
                if hit {
                    return Ok(Some((i, seed, outcome, k)));
                }
            }
        }
        Ok(None)
    })();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    drop(ray);
    let remove_packs = |keep: Option<usize>| {
        for (k, p) in packs.iter().enumerate() {
            if Some(k) != keep {
                let _ = std::fs::remove_file(p);
            }
        }
    };
    let found = match result {
        Ok(f) => f,
        Err(e) => {
            all_files.iter().for_each(TryFiles::remove);
            remove_packs(None);
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let Some((tries, seed, outcome, job)) = found else {
        all_files.iter().for_each(TryFiles::remove);
        remove_packs(None);
        eprintln!(
            "hunt: not found in {} tries ({secs:.1} s); try more (--tries) or other seeds (--seed {})",
            a.tries,
            first.wrapping_add(a.tries)
        );
        return Ok(1);
    };
    if a.engine != Engine::Local {
        remove_packs(Some(job));
        let side = sidecar::sidecar_path(&a.output);
        let _ = std::fs::remove_file(&side);
        std::fs::rename(&packs[job], &a.output).with_context(|| {
            format!(
                "hunt: cannot move the packed recording to {}",
                a.output.display()
            )
        })?;
        eprintln!(
            "hunt: found after {tries} tries ({secs:.1} s): chaos seed {seed}, {outcome}; kept {} (a pack)\n\
             hunt: replay it with `rewind replay {}`",
            a.output.display(),
            a.output.display()
        );
        return Ok(0);
    }
    let files = &all_files[job];
    keep(files, &a.output)?;
    let _ = std::fs::remove_file(&files.console);
    // The other jobs' tries of that round are not kept.
    for (k, f) in all_files.iter().enumerate() {
        if k != job {
            f.remove();
        }
    }
    eprintln!(
        "hunt: found after {tries} tries ({secs:.1} s): chaos seed {seed}, {outcome}; kept {}\n\
         hunt: replay it with `rewind replay {}`",
        a.output.display(),
        a.output.display()
    );
    Ok(0)
}

/// `--until`'s spelling of `u`.
fn until_text(u: &Until) -> String {
    match u {
        Until::Console(p) => format!("console:{p}"),
        Until::ExitNonzero => "exit-nonzero".into(),
    }
}

fn describe(u: &Until) -> String {
    match u {
        Until::Console(p) => format!("the console shows {p:?}"),
        Until::ExitNonzero => "the guest exits with a non-zero status".into(),
    }
}

/// Move the try's trace and snapshots to `output` (replacing them: `--force` was checked).
fn keep(files: &TryFiles, output: &Path) -> anyhow::Result<()> {
    let side = sidecar::sidecar_path(output);
    let _ = std::fs::remove_file(&side);
    std::fs::rename(&files.trace, output)
        .with_context(|| format!("hunt: cannot move the recording to {}", output.display()))?;
    let try_side = sidecar::sidecar_path(&files.trace);
    if try_side.exists() {
        std::fs::rename(&try_side, &side)
            .with_context(|| format!("hunt: cannot move the snapshots to {}", side.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_until("console:FAIL"),
            Ok(Until::Console("FAIL".into()))
        );
        assert_eq!(parse_until("exit-nonzero"), Ok(Until::ExitNonzero));
        assert!(parse_until("console:").unwrap_err().contains("pattern"));
        assert!(parse_until("crash").unwrap_err().contains("console:TEXT"));
    }

    #[test]
    fn try_args_replace_the_console_and_refuse_a_seed() {
        let a = HuntArgs {
            chaos: true,
            until: Until::ExitNonzero,
            tries: 1,
            seed: None,
            output: PathBuf::from("out/h.rwd"),
            force: false,
            jobs: 1,
            engine: Engine::Local,
            record: ["--smp", "2", "--serial", "stdio", "--kernel", "k.elf"]
                .map(String::from)
                .to_vec(),
        };
        let f = TryFiles::new(&a.output);
        let v = try_args(&a, &f, 9).unwrap();
        assert!(!v.contains(&"stdio".to_string()), "{v:?}");
        assert!(v.ends_with(&["--chaos".into(), "9".into()]), "{v:?}");
        assert!(f.trace.starts_with("out"));
        let bad = HuntArgs {
            record: vec!["--chaos".into(), "3".into()],
            ..a
        };
        assert!(try_args(&bad, &f, 1)
            .unwrap_err()
            .to_string()
            .contains("hunt's to choose"));
    }
}
