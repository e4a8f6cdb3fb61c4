//! `rewind verify` and `rewind analyze`: questions asked of a recording through the library's
//! segments (rewind_machine::analysis); this file parses options and prints.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rewind_machine::analysis::{self, Segments};
use rewind_machine::task::{self, AnalysisSpec, Merged, TaskError};

use crate::engine::Engine;

use crate::commands::{open_session, session_error};

/// The options every command that opens a trace for analysis takes.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The trace.
    #[arg(value_name = "TRACE")]
    pub file: PathBuf,
    /// The recording's snapshot file (default: TRACE.snapshots).
    #[arg(long, value_name = "SNAPSHOTS")]
    pub snapshots: Option<PathBuf>,
    /// Use PATH for the trace's image NAME (as `rewind replay --image`).
    #[arg(long, value_name = "NAME=PATH", value_parser = crate::args::parse_image_remap)]
    pub image: Vec<(String, PathBuf)>,
}

/// `rewind verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// Segments replayed at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
    /// Where segments run: `local` (threads, `--jobs`), `ray` (a local Ray instance),
    /// `ray:auto` or `ray:HOST:PORT` (a Ray cluster; see docs/analysis.md).
    #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
    pub engine: Engine,
    #[command(flatten)]
    pub accel: crate::EngineArgs,
}

/// `rewind analyze`.
#[derive(clap::Subcommand, Debug)]
pub enum AnalyzeCmd {
    /// The serial output line by line, each with the instruction count that wrote it.
    Console {
        #[command(flatten)]
        trace: TraceArgs,
        /// One JSON object per line: {"icount": N, "offset": BYTE, "text": "..."}.
        #[arg(long)]
        json: bool,
        /// Segments replayed at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Where segments run: `local` (threads, `--jobs`), `ray` (a local Ray instance),
        /// `ray:auto` or `ray:HOST:PORT` (a Ray cluster; see docs/analysis.md).
        #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
        engine: Engine,
    },
    /// The pcs executed, with hits per privilege level (JSON).
    Coverage {
        #[command(flatten)]
        trace: TraceArgs,
        /// Write the JSON to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print a per-function table (hits, distinct pcs, name) from this ELF's symbols
        /// (e.g. the guest, or a kernel's vmlinux) instead of the JSON on standard output.
        #[arg(long, value_name = "ELF")]
        symbols: Option<PathBuf>,
        /// Write an lcov tracefile to FILE (needs --symbols: per source line with the ELF's
        /// DWARF line table, else per function).
        #[arg(long, value_name = "FILE")]
        lcov: Option<PathBuf>,
        /// Segments replayed at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Where segments run: `local` (threads, `--jobs`), `ray` (a local Ray instance),
        /// `ray:auto` or `ray:HOST:PORT` (a Ray cluster; see docs/analysis.md).
        #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
        engine: Engine,
    },
    /// Every system call a U-mode program made (Linux guests): number, arguments, result and
    /// the instruction counts of the call and the return (a strace of the recording).
    Syscalls {
        #[command(flatten)]
        trace: TraceArgs,
        /// One JSON object per call.
        #[arg(long)]
        json: bool,
        /// Segments replayed at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Where segments run: `local` (threads, `--jobs`), `ray` (a local Ray instance),
        /// `ray:auto` or `ray:HOST:PORT` (a Ray cluster; see docs/analysis.md).
        #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
        engine: Engine,
    },
    /// The last instruction that wrote an address range before an instruction count.
    LastWrite {
        #[command(flatten)]
        trace: TraceArgs,
        /// First byte of the range (virtual, as the guest sees it, unless --phys; 0x... for
        /// hex).
        #[arg(long, value_name = "ADDR", value_parser = parse_number)]
        addr: u64,
        /// ADDR is a physical address: catch stores to that RAM whatever virtual address
        /// they used.
        #[arg(long)]
        phys: bool,
        /// Bytes in the range.
        #[arg(long, value_name = "N", default_value = "1", value_parser = parse_number)]
        len: u64,
        /// Only writes by instructions before this instruction count (default: the end).
        #[arg(long, value_name = "ICOUNT", value_parser = parse_number)]
        before: Option<u64>,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
        /// Segments scanned at once (default: the number of cores).
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: Option<u64>,
        /// Where segments run: `local` (threads, `--jobs`), `ray` (a local Ray instance),
        /// `ray:auto` or `ray:HOST:PORT` (a Ray cluster; see docs/analysis.md).
        #[arg(long, value_name = "ENGINE", default_value = "local", value_parser = crate::engine::parse_engine)]
        engine: Engine,
    },
}

/// A decimal number, or hexadecimal after `0x`.
fn parse_number(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("invalid number '{s}' (examples: 4096, 0x80001000)"))
}

pub(crate) fn jobs(j: Option<u64>) -> usize {
    j.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    )
}

fn open(t: &TraceArgs) -> anyhow::Result<crate::commands::Opened> {
    open_session(&t.file, &t.image, t.snapshots.as_deref())
}

fn segments(session: &mut rewind_machine::session::ReplaySession) -> anyhow::Result<Segments<'_>> {
    let segs = Segments::new(session).map_err(session_error)?;
    if let Some(w) = &segs.warning {
        eprintln!("rewind: warning: {w}; going on without these snapshots");
    }
    Ok(segs)
}

/// A segment whose replay diverged from the recording (exit status 3).
#[derive(Debug)]
pub struct SegmentDiverged(pub String);

impl std::fmt::Display for SegmentDiverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SegmentDiverged {}

/// Run `spec` over the segments of `trace` (opened as `segs`) on `engine`, merged.
fn run_analysis(
    trace: &TraceArgs,
    segs: &Segments<'_>,
    spec: &AnalysisSpec,
    j: Option<u64>,
    engine: &Engine,
) -> anyhow::Result<Merged> {
    let list = segs.list();
    let r = match engine {
        Engine::Local => {
            let mut local = task::Local {
                segments: segs,
                jobs: jobs(j),
            };
            task::analyze(&list, spec, &mut local)
        }
        Engine::Ray(address) => {
            let mut ray = crate::engine::ray_for(address.as_deref(), trace)?;
            task::analyze(&list, spec, &mut ray)
        }
    };
    match r {
        Ok(m) => Ok(m),
        Err(e @ TaskError::Segment { .. }) => {
            let diverged = matches!(&e, TaskError::Segment { failure, .. } if failure.diverged);
            if diverged {
                Err(SegmentDiverged(e.to_string()).into())
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// `rewind verify TRACE`: every segment replayed on its own and checked.
pub fn verify(a: VerifyArgs) -> anyhow::Result<u8> {
    let mut opened = open(&a.trace)?;
    let segs = segments(&mut opened.session)?;
    let Merged::Verify(checks) =
        run_analysis(&a.trace, &segs, &AnalysisSpec::Verify, a.jobs, &a.engine)?
    else {
        bail!("verify: the analysis answered something else");
    };
    let mut bad = None;
    for c in &checks {
        match &c.result {
            Ok(hash) => println!("{}: ok, state {hash:016x}", c.segment),
            Err(e) => {
                let first = e.lines().next().unwrap_or("");
                println!("{}: FAILED: {first}", c.segment);
                bad = bad.or(Some(c));
            }
        }
    }
    let total = segs.session().total();
    match bad {
        Some(c) => {
            eprintln!(
                "rewind: {} differs from the recording: {}",
                c.segment,
                c.result.as_ref().err().map_or("", |e| e.as_str())
            );
            Ok(crate::EXIT_DIVERGED)
        }
        None => {
            eprintln!(
                "rewind: verified {} segments ({} instructions): every segment matches the \
                 recording",
                checks.len(),
                total.map_or_else(|| "?".to_string(), |t| t.to_string())
            );
            Ok(0)
        }
    }
}

/// `rewind analyze ...`.
pub fn analyze(cmd: AnalyzeCmd) -> anyhow::Result<u8> {
    match cmd {
        AnalyzeCmd::Console {
            trace,
            json,
            jobs: j,
            engine,
        } => {
            let mut opened = open(&trace)?;
            let segs = segments(&mut opened.session)?;
            let Merged::Console(lines) =
                run_analysis(&trace, &segs, &AnalysisSpec::Console, j, &engine)?
            else {
                bail!("console: the analysis answered something else");
            };
            for l in &lines {
                if json {
                    println!("{}", l.to_json());
                } else {
                    println!("{:>14}  {}", l.icount, l.text);
                }
            }
            Ok(0)
        }
        AnalyzeCmd::Coverage {
            trace,
            out,
            symbols,
            lcov,
            jobs: j,
            engine,
        } => {
            if lcov.is_some() && symbols.is_none() {
                bail!(
                    "--lcov needs --symbols ELF: the guest (or vmlinux) whose symbols and line \
                     table name the pcs"
                );
            }
            // The symbol file is read first: a wrong path fails before the replays.
            let elf = match &symbols {
                Some(p) => Some(
                    std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?,
                ),
                None => None,
            };
            let mut opened = open(&trace)?;
            let session = &mut opened.session;
            for o in out.iter().chain(&lcov) {
                let protected = session.protected_files();
                if protected
                    .iter()
                    .any(|p| crate::commands::same_file(p, o) || p == o)
                {
                    bail!(
                        "{}: refusing to write coverage over the recording",
                        o.display()
                    );
                }
            }
            let segs = segments(session)?;
            let Merged::Coverage(cov) =
                run_analysis(&trace, &segs, &AnalysisSpec::Coverage, j, &engine)?
            else {
                bail!("coverage: the analysis answered something else");
            };
            let text = cov.to_json();
            match &out {
                Some(o) => {
                    std::fs::write(o, &text)
                        .with_context(|| format!("{}: cannot write", o.display()))?;
                }
                None if elf.is_none() => print!("{text}"),
                None => {}
            }
            if let (Some(elf), Some(p), Some(l)) = (&elf, &symbols, &lcov) {
                let name = p.display().to_string();
                let info = rewind_machine::lcov::lcov(&cov, elf, &name)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                std::fs::write(l, info)
                    .with_context(|| format!("{}: cannot write", l.display()))?;
            }
            if let (Some(elf), Some(p)) = (&elf, &symbols) {
                let table = analysis::coverage_by_function(&cov, elf)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                println!("{:>14} {:>8}  function", "instructions", "pcs");
                for f in &table {
                    println!("{:>14} {:>8}  {}", f.hits, f.pcs, f.name);
                }
            }
            let per_mode: Vec<String> = cov
                .counts
                .iter()
                .map(|(m, pcs)| format!("{m}: {}", pcs.len()))
                .collect();
            eprintln!(
                "rewind: {} instructions, {} distinct pcs ({})",
                cov.instructions(),
                cov.counts.values().map(|p| p.len()).sum::<usize>(),
                per_mode.join(", ")
            );
            Ok(0)
        }
        AnalyzeCmd::Syscalls {
            trace,
            json,
            jobs: j,
            engine,
        } => {
            let mut opened = open(&trace)?;
            let segs = segments(&mut opened.session)?;
            let Merged::Syscalls(calls) =
                run_analysis(&trace, &segs, &AnalysisSpec::Syscalls, j, &engine)?
            else {
                bail!("syscalls: the analysis answered something else");
            };
            for c in &calls {
                let name = analysis::syscall_name(c.nr);
                if json {
                    println!("{}", c.to_json());
                } else {
                    let args: Vec<String> = c.args.iter().map(|a| format!("{a:#x}")).collect();
                    let ret = c
                        .ret
                        .map_or_else(|| "?".to_string(), |(v, _)| (v as i64).to_string());
                    let name = name.map_or_else(|| format!("syscall_{}", c.nr), str::to_string);
                    println!(
                        "{:>14}  hart {}  {name}({}) = {ret}",
                        c.icount,
                        c.hart,
                        args.join(", ")
                    );
                }
            }
            eprintln!("rewind: {} system calls", calls.len());
            Ok(0)
        }
        AnalyzeCmd::LastWrite {
            trace,
            addr,
            phys,
            len,
            before,
            json,
            jobs: j,
            engine,
        } => {
            let mut opened = open(&trace)?;
            let segs = segments(&mut opened.session)?;
            let spec = AnalysisSpec::LastWrite {
                addr,
                len,
                before,
                physical: phys,
            };
            let Merged::LastWrite(w) = run_analysis(&trace, &segs, &spec, j, &engine)? else {
                bail!("last-write: the analysis answered something else");
            };
            let range = format!(
                "{}{addr:#x}..{:#x}",
                if phys { "physical " } else { "" },
                addr.wrapping_add(len.max(1))
            );
            let when = before.map_or_else(|| "the end".to_string(), |b| format!("instruction {b}"));
            let Some(w) = w else {
                eprintln!("rewind: no instruction wrote {range} before {when}");
                return Ok(1);
            };
            let hex = w.bytes_hex();
            // The range read as a little-endian integer, when it is one.
            let value = w.value_le();
            if json {
                println!("{}", w.to_json());
            } else {
                let value = value.map_or_else(String::new, |v| format!(" = {v}"));
                let via = if phys { " (virtual)" } else { "" };
                println!(
                    "instruction {} (hart {}, pc {:#x}, {} mode) wrote {:#x}{via}; {range} then \
                     held {hex}{value}",
                    w.icount, w.hart, w.pc, w.mode, w.addr
                );
            }
            Ok(0)
        }
    }
}
