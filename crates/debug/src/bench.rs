//! `rewind bench reverse`: how fast a [`Session`] seeks and steps backwards in a long
//! recording (design §7 asks for reverse steps in well under a second at 1e9 instructions).
//!
//! The benchmark replays the whole trace once (taking the periodic snapshots), then seeks to
//! random positions and times the seeks, then times one reverse step at random positions.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rewind_log::TraceReader;
use rewind_machine::record::replay_config;
use rewind_machine::seek::Seeker;
use rewind_machine::{Machine, MachineError, SerialOutput};

use crate::session::{BreakKind, Session, SessionError, StopReason};
use rewind_cpu::{WatchKind, Watchpoint};

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseBenchOptions {
    /// Instructions between two periodic snapshots.
    pub snapshot_interval: u64,
    /// Memory the snapshots may use (bytes; `None`: no limit).
    pub snapshot_budget: Option<u64>,
    /// Random positions to seek to.
    pub seeks: usize,
    /// Random positions to step back from.
    pub reverse_steps: usize,
    /// Seed of the position generator (the same seed gives the same positions).
    pub seed: u64,
    /// Also time `continue` from the start to the end with no hook, with a breakpoint and
    /// with a watchpoint set (neither ever hit).
    pub continues: bool,
    /// How many times each `continue` is timed (interleaved; the fastest counts: this
    /// machine's noise is larger than the effects measured).
    pub continue_rounds: usize,
    /// With `continues`, also time it with a watchpoint (never hit) on this address: a byte
    /// the guest never touches on a page its loads and stores keep using.
    pub hot_watch: Option<u64>,
}

impl Default for ReverseBenchOptions {
    fn default() -> Self {
        ReverseBenchOptions {
            snapshot_interval: 10_000_000,
            snapshot_budget: Some(1 << 30),
            seeks: 20,
            reverse_steps: 20,
            seed: 0x7e57_5eed,
            continues: true,
            continue_rounds: 2,
            hot_watch: None,
        }
    }
}

/// Latencies of one kind of operation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Operations timed.
    pub count: usize,
    /// Mean, in milliseconds.
    pub mean_ms: f64,
    /// Slowest, in milliseconds.
    pub max_ms: f64,
}

impl Latency {
    /// Summarise a set of durations.
    fn of(times: &[Duration]) -> Self {
        if times.is_empty() {
            return Latency::default();
        }
        let ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        Latency {
            count: ms.len(),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            max_ms: ms.iter().copied().fold(0.0, f64::max),
        }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mean {:.1} ms, max {:.1} ms ({} samples)",
            self.mean_ms, self.max_ms, self.count
        )
    }
}

/// The results of [`bench_reverse`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReverseBench {
    /// Instructions in the recording.
    pub instructions: u64,
    /// Time of the first replay to the end (taking the snapshots), in seconds.
    pub first_replay_secs: f64,
    /// Instructions between two periodic snapshots.
    pub snapshot_interval: u64,
    /// Snapshots held after the run.
    pub snapshots: usize,
    /// Memory the snapshots hold, in bytes.
    pub snapshot_memory: u64,
    /// Seeks to random positions (from wherever the previous one left the machine).
    pub seek: Latency,
    /// Reverse steps from random positions (the machine stands there before timing).
    pub reverse_step: Latency,
    /// `continue` from the start to the end (seconds): no hook, a breakpoint, a watchpoint.
    pub continues: Option<[f64; 3]>,
    /// `continue` from the start to the end with the watchpoint of
    /// [`ReverseBenchOptions::hot_watch`] (seconds).
    pub hot_watch_continue: Option<f64>,
}

impl std::fmt::Display for ReverseBench {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mips = self.instructions as f64 / self.first_replay_secs.max(1e-9) / 1e6;
        writeln!(f, "recording:       {} instructions", self.instructions)?;
        writeln!(
            f,
            "first replay:    {:.2} s ({mips:.0} MIPS, with snapshots)",
            self.first_replay_secs
        )?;
        writeln!(
            f,
            "snapshots:       {} (every {} instructions), {:.1} MiB",
            self.snapshots,
            self.snapshot_interval,
            self.snapshot_memory as f64 / (1024.0 * 1024.0)
        )?;
        writeln!(f, "seek:            {}", self.seek)?;
        write!(f, "reverse step:    {}", self.reverse_step)?;
        if let Some([plain, bp, watch]) = self.continues {
            let mips = |s: f64| self.instructions as f64 / s.max(1e-9) / 1e6;
            write!(
                f,
                "\ncontinue:        {plain:.2} s ({:.0} MIPS) with no hook, {bp:.2} s ({:.0} MIPS, {:.2}x) with a breakpoint, {watch:.2} s ({:.0} MIPS, {:.2}x) with a watchpoint",
                mips(plain),
                mips(bp),
                plain / bp.max(1e-9),
                mips(watch),
                plain / watch.max(1e-9)
            )?;
            if let Some(hot) = self.hot_watch_continue {
                write!(
                    f,
                    "\ncontinue:        {hot:.2} s ({:.0} MIPS, {:.2}x) with a watchpoint on a hot data page",
                    mips(hot),
                    plain / hot.max(1e-9)
                )?;
            }
        }
        Ok(())
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The trace cannot be opened or read.
    #[error(transparent)]
    Log(#[from] rewind_log::LogError),
    /// The replay machine failed.
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// A session operation failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The trace has no footer (it was cut short), so its length is unknown.
    #[error("{}: the trace has no footer (it was cut short): record it again", path.display())]
    NoFooter {
        /// The trace.
        path: std::path::PathBuf,
    },
    /// Too short to measure anything.
    #[error("{}: the recording has only {instructions} instructions", path.display())]
    TooShort {
        /// The trace.
        path: std::path::PathBuf,
        /// Its length.
        instructions: u64,
    },
    /// An operation did not end where it should have (a bug the benchmark reports rather
    /// than timing it).
    #[error("{what} ended at instruction {got} instead of {expected}")]
    WrongPosition {
        /// The operation.
        what: &'static str,
        /// Where it should have ended.
        expected: u64,
        /// Where it ended.
        got: u64,
    },
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    /// A number in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if hi <= lo {
            lo
        } else {
            lo + r % (hi - lo)
        }
    }
}

/// Measure seeks and reverse steps on the recording at `trace` (meant for traces of 1e9
/// instructions or more). `embedded` resolves the images the CLI carries inside it.
pub fn bench_reverse(
    trace: &Path,
    embedded: &dyn Fn(&str) -> Option<Arc<[u8]>>,
    opts: &ReverseBenchOptions,
) -> Result<ReverseBench, BenchError> {
    let reader = TraceReader::open(trace)?;
    let total = reader
        .footer()
        .map(|f| f.final_icount)
        .ok_or_else(|| BenchError::NoFooter {
            path: trace.to_path_buf(),
        })?;
    if total < 2 {
        return Err(BenchError::TooShort {
            path: trace.to_path_buf(),
            instructions: total,
        });
    }
    let (config, _) = replay_config(reader.header(), embedded)?;
    let machine = Machine::replay(config, reader, SerialOutput::Null)?;
    let mut seeker = Seeker::new(machine, opts.snapshot_interval)?;
    seeker.set_budget(opts.snapshot_budget);
    let mut session = Session::new(seeker, Some(trace.to_path_buf()));

    // The first pass: replay everything, taking the snapshots the later seeks use.
    let t = Instant::now();
    session.seek(total)?;
    let first_replay_secs = t.elapsed().as_secs_f64();
    expect_at(&session, "the first replay", total)?;

    let mut rng = Rng(opts.seed | 1);
    let mut seek_times = Vec::with_capacity(opts.seeks);
    for _ in 0..opts.seeks {
        let target = rng.range(0, total);
        let t = Instant::now();
        session.seek(target)?;
        seek_times.push(t.elapsed());
        expect_at(&session, "a seek", target)?;
    }

    let mut step_times = Vec::with_capacity(opts.reverse_steps);
    for _ in 0..opts.reverse_steps {
        let from = rng.range(1, total + 1);
        session.seek(from)?;
        let t = Instant::now();
        let stop = session.reverse_step()?;
        step_times.push(t.elapsed());
        if stop != StopReason::Step {
            return Err(BenchError::WrongPosition {
                what: "a reverse step",
                expected: from - 1,
                got: session.icount(),
            });
        }
        expect_at(&session, "a reverse step", from - 1)?;
    }

    let continues = if opts.continues {
        // Hooks that never fire, on a page the guest never executes or accesses (the last of
        // RAM): what setting them costs forward execution.
        let ram = session.machine().ram();
        let last = ram.base() + ram.size() - 8;
        let watch = Watchpoint {
            addr: last,
            len: 8,
            kind: WatchKind::Access,
        };
        let hot = opts.hot_watch.map(|addr| Watchpoint {
            addr,
            len: 8,
            kind: WatchKind::Access,
        });
        let mut best = [f64::INFINITY; 4];
        for _ in 0..opts.continue_rounds.max(1) {
            let t = time_continue(&mut session, total)?;
            best[0] = best[0].min(t);
            session.add_breakpoint(last, BreakKind::Software);
            let t = time_continue(&mut session, total);
            session.remove_breakpoint(last, BreakKind::Software);
            best[1] = best[1].min(t?);
            session.add_watchpoint(watch);
            let t = time_continue(&mut session, total);
            session.remove_watchpoint(watch);
            best[2] = best[2].min(t?);
            if let Some(w) = hot {
                session.add_watchpoint(w);
                let t = time_continue(&mut session, total);
                session.remove_watchpoint(w);
                best[3] = best[3].min(t?);
            }
        }
        Some(best)
    } else {
        None
    };
    let hot_watch_continue = continues.and_then(|b| opts.hot_watch.map(|_| b[3]));
    let continues = continues.map(|[plain, bp, w, _]| [plain, bp, w]);

    let seeker = session.seeker();
    Ok(ReverseBench {
        instructions: total,
        first_replay_secs,
        snapshot_interval: seeker.interval(),
        snapshots: seeker.snapshot_icounts().len(),
        snapshot_memory: seeker.snapshot_memory(),
        seek: Latency::of(&seek_times),
        reverse_step: Latency::of(&step_times),
        continues,
        hot_watch_continue,
    })
}

/// Seconds a `continue` from instruction 0 takes to reach the end (`total`).
fn time_continue(session: &mut Session, total: u64) -> Result<f64, BenchError> {
    session.seek(0)?;
    let t = Instant::now();
    loop {
        match session.resume(u64::MAX)? {
            None => continue,
            Some(StopReason::Ended(_)) => break,
            Some(_) => {
                return Err(BenchError::WrongPosition {
                    what: "a continue",
                    expected: total,
                    got: session.icount(),
                })
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    expect_at(session, "a continue", total)?;
    Ok(secs)
}

/// Check that an operation left the session at `expected`.
fn expect_at(session: &Session, what: &'static str, expected: u64) -> Result<(), BenchError> {
    let got = session.icount();
    if got == expected {
        Ok(())
    } else {
        Err(BenchError::WrongPosition {
            what,
            expected,
            got,
        })
    }
}
