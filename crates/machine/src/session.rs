//! Replays as a library (design §10): one type, [`ReplaySession`], opened from a trace path,
//! that finds the trace's images by content, builds replay machines, loads the recording's
//! snapshots once, starts replays at any instruction and stops them at any instruction. The
//! `rewind` CLI, and the analyses in [`crate::analysis`], are clients of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_log::{TraceHeader, TraceReader};
use rewind_replay::CheckSettings;

use crate::record::{replay_config_with, ImageSearch};
use crate::seek::{SeekResult, Seeker};
use crate::sidecar::{self, Select, SidecarError};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::{Machine, MachineConfig, MachineError, RunOutcome, SerialOutput};

/// Resolves the `embedded:NAME` images a trace may name (the images built into a binary).
pub type EmbeddedImages = Arc<dyn Fn(&str) -> Option<Arc<[u8]>> + Send + Sync>;

/// Anything a session can fail with; each variant keeps the error of the layer that failed,
/// with its message.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Building or running a machine (a divergence, a missing image, ...).
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// The recording's snapshot file.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// The trace file.
    #[error(transparent)]
    Trace(#[from] rewind_log::LogError),
    /// A snapshot that cannot be restored.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A request that does not fit the recording (e.g. a start past its end).
    #[error("{0}")]
    Request(String),
}

/// How to open a trace.
#[derive(Clone, Default)]
pub struct OpenOptions {
    /// `--image NAME=PATH` remaps (a path that must hold exactly the recorded image).
    pub remap: Vec<(String, PathBuf)>,
    /// A directory searched for images by content (default: the trace's own directory).
    pub image_dir: Option<PathBuf>,
    /// Images built into the program.
    pub embedded: Option<EmbeddedImages>,
    /// The recording's snapshot file, when not `TRACE.snapshots` (errors in it are errors;
    /// errors in the default one are warnings).
    pub snapshots: Option<PathBuf>,
}

/// Snapshots of a recording, loaded from its snapshot file, with a problem that made a
/// default snapshot file unusable (a replay from reset still works).
#[derive(Debug, Default)]
pub struct Loaded {
    /// The snapshots, oldest first, placed in the trace.
    pub snapshots: Vec<Snapshot>,
    /// Why the default snapshot file was not used.
    pub warning: Option<SidecarError>,
}

/// Where [`ReplaySession::start_at`] left the replay.
#[derive(Debug)]
pub struct Started {
    /// The machine at the instruction asked for (or where the recording ended).
    pub machine: Machine,
    /// The recording ended there, with this outcome (its end was checked).
    pub ended: Option<RunOutcome>,
    /// The replay machine at reset (before it ran).
    pub reset: Snapshot,
}

/// The machine state [`ReplaySession::stop_at`] reached.
#[derive(Debug, Clone)]
pub struct StopState {
    /// Instructions retired.
    pub icount: u64,
    /// The current hart's pc.
    pub pc: u64,
    /// Its privilege level, by name.
    pub privilege: &'static str,
    /// [`Machine::state_hash`].
    pub state_hash: u64,
    /// The registers of a state check (pc, privilege and icount left out), with their names.
    pub registers: Vec<(&'static str, u64)>,
    /// The recording ends here, with this outcome.
    pub ended: Option<RunOutcome>,
}

/// One trace opened for replay: its configuration and images (checked), and its snapshots.
pub struct ReplaySession {
    trace: PathBuf,
    header: TraceHeader,
    config: MachineConfig,
    checks: CheckSettings,
    total: Option<u64>,
    snapshots_file: Option<PathBuf>,
    /// The snapshots of the whole recording, once loaded.
    all: Option<Arc<Vec<Snapshot>>>,
    /// The problem with the default snapshot file, once seen.
    warning_seen: bool,
}

impl std::fmt::Debug for ReplaySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplaySession")
            .field("trace", &self.trace)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl ReplaySession {
    /// Open `trace`: read its header, find every image it names by content (see
    /// [`ImageSearch`]) and check it.
    pub fn open(trace: &Path, opts: OpenOptions) -> Result<Self, SessionError> {
        let reader = TraceReader::open(trace)?;
        let search = ImageSearch {
            dir: Some(opts.image_dir.clone().unwrap_or_else(|| dir_of(trace))),
            remap: opts.remap.clone(),
        };
        let none = |_: &str| None;
        let (config, checks) = match &opts.embedded {
            Some(e) => replay_config_with(reader.header(), &**e, &search)?,
            None => replay_config_with(reader.header(), &none, &search)?,
        };
        Ok(ReplaySession {
            trace: trace.to_path_buf(),
            header: reader.header().clone(),
            total: reader.footer().map(|f| f.final_icount),
            config,
            checks,
            snapshots_file: opts.snapshots,
            all: None,
            warning_seen: false,
        })
    }

    /// The trace file.
    pub fn trace(&self) -> &Path {
        &self.trace
    }

    /// The trace header.
    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    /// The replay configuration (images held as checked bytes).
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// The state-check settings of the recording.
    pub fn checks(&self) -> CheckSettings {
        self.checks
    }

    /// Instructions in the recording, from its footer (`None`: the trace was cut short).
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Write the playback of audiodev `given.id` where `given` says (see
    /// [`crate::record::set_replay_audio`]).
    pub fn set_replay_audio(&mut self, given: &crate::AudioDevConfig) -> Result<(), SessionError> {
        Ok(crate::record::set_replay_audio(&mut self.config, given)?)
    }

    /// The snapshot file in use: the one given, else `TRACE.snapshots`.
    pub fn snapshots_path(&self) -> PathBuf {
        self.snapshots_file
            .clone()
            .unwrap_or_else(|| sidecar::sidecar_path(&self.trace))
    }

    /// Files a replay must never write: the trace, its snapshot files.
    pub fn protected_files(&self) -> Vec<PathBuf> {
        let mut p = vec![self.trace.clone(), sidecar::sidecar_path(&self.trace)];
        p.extend(self.snapshots_file.clone());
        p
    }

    /// A fresh replay machine at reset, its output going to `output`.
    pub fn machine(&self, output: SerialOutput) -> Result<Machine, SessionError> {
        let reader = TraceReader::open(&self.trace)?;
        Ok(Machine::replay(self.config.clone(), reader, output)?)
    }

    /// The recording's snapshots that `select` names, loaded once for the session (`reset`:
    /// a snapshot of a replay machine before it ran, the base of the stored deltas). A
    /// problem with a named snapshot file is an error; with the default one, a warning
    /// (reported once).
    pub fn snapshots(&mut self, select: Select, reset: &Snapshot) -> Result<Loaded, SessionError> {
        if let Some(all) = &self.all {
            return Ok(Loaded {
                snapshots: pick(all, select),
                warning: None,
            });
        }
        let path = self.snapshots_path();
        if self.snapshots_file.is_none() && !path.exists() {
            return Ok(Loaded::default());
        }
        match sidecar::load_for_replay_selected(&path, &self.trace, select, &reset.ram) {
            Ok(s) => {
                if select == Select::All {
                    self.all = Some(Arc::new(s.clone()));
                }
                Ok(Loaded {
                    snapshots: s,
                    warning: None,
                })
            }
            Err(e) if self.snapshots_file.is_some() => Err(e.into()),
            Err(e) => {
                let warning = (!self.warning_seen).then_some(e);
                self.warning_seen = true;
                Ok(Loaded {
                    snapshots: Vec::new(),
                    warning,
                })
            }
        }
    }

    /// Check the named snapshot file, if one was given (a replay that does not start from it
    /// still refuses a bad one).
    pub fn check_snapshots(&mut self, reset: &Snapshot) -> Result<(), SessionError> {
        if self.snapshots_file.is_some() {
            self.snapshots(Select::All, reset)?;
        }
        Ok(())
    }

    /// A replay machine brought to instruction `n` from the recording's nearest snapshot at or
    /// before it, its output silent up to `n` (from there on it goes to `output`). When the
    /// recording ends at `n`, its end is checked as a full replay checks it. Returns the
    /// warning about an unusable default snapshot file with it.
    pub fn start_at(
        &mut self,
        n: u64,
        output: SerialOutput,
    ) -> Result<(Started, Option<SidecarError>), SessionError> {
        if let Some(t) = self.total {
            if n > t {
                return Err(SessionError::Request(format!(
                    "{}: --from {n}: the recording ends at instruction {t}",
                    self.trace.display()
                )));
            }
        }
        let mut m = self.machine(output)?;
        let reset = m.snapshot(None)?;
        let loaded = self.snapshots(Select::LastAtOrBefore(n), &reset)?;
        // No periodic snapshots: the run to N is made once.
        let mut seeker = Seeker::new(m, u64::MAX)?;
        seeker.add_snapshots(loaded.snapshots);
        seeker.machine_mut().set_output_written(u64::MAX);
        let ended = match seeker.seek(n)? {
            SeekResult::Ended(outcome) => Some(outcome),
            // A recording cut by its instruction limit at N: the run to N took that end.
            SeekResult::Reached
                if seeker.machine().boundary().replay_at_end()
                    && seeker.machine().boundary().next_event_icount() == Some(n) =>
            {
                Some(RunOutcome::InstructionLimit)
            }
            SeekResult::Reached => None,
        };
        let (machine, _) = seeker.into_parts();
        m = machine;
        let len = m.output_len();
        m.set_output_written(len);
        if let Some(outcome) = ended {
            // The end is checked as in a full replay, whether or not it is N.
            m.finish_replay()?;
            let icount = m.icount();
            if icount != n {
                return Err(SessionError::Request(format!(
                    "--from {n}: the recording ends at instruction {icount} ({outcome}), before it"
                )));
            }
        }
        Ok((
            Started {
                machine: m,
                ended,
                reset,
            },
            loaded.warning,
        ))
    }

    /// A seeker over `m` (a fresh replay machine, `reset` its snapshot before it ran) that
    /// keeps a snapshot every `interval` instructions and knows the recording's snapshots
    /// `select` names.
    pub fn seeker(
        &mut self,
        m: Machine,
        interval: u64,
        select: Select,
        reset: &Snapshot,
    ) -> Result<(Seeker, Option<SidecarError>), SessionError> {
        let mut seeker = Seeker::new(m, interval)?;
        let loaded = self.snapshots(select, reset)?;
        seeker.add_snapshots(loaded.snapshots);
        Ok((seeker, loaded.warning))
    }

    /// Bring the seeker's replay to exactly instruction `n` (backwards too) and describe the
    /// state there. When the recording ends before `n` that is an error; when it ends at `n`,
    /// its end is checked.
    pub fn stop_at(seeker: &mut Seeker, n: u64) -> Result<StopState, SessionError> {
        let mut ended = None;
        if let SeekResult::Ended(outcome) = seeker.seek(n)? {
            let m = seeker.machine_mut();
            let icount = m.icount();
            // Check that the recording really ends here, as a full replay does.
            m.finish_replay()?;
            if icount != n {
                return Err(SessionError::Request(format!(
                    "the recording ends at instruction {icount} ({outcome}), before instruction {n}"
                )));
            }
            ended = Some(outcome);
        }
        let m = seeker.machine();
        let hart = m.hart();
        Ok(StopState {
            icount: m.icount(),
            pc: hart.pc,
            privilege: crate::state::privilege_name(hart.prv),
            state_hash: m.state_hash(),
            registers: m
                .state_snapshot()
                .into_iter()
                .filter(|(name, _)| !matches!(*name, "pc" | "privilege" | "icount"))
                .collect(),
            ended,
        })
    }

    /// Write a snapshot of `m` to `path` (it may replace a regular file named by the user;
    /// never the trace or its snapshot file).
    pub fn save_snapshot(&self, m: &mut Machine, path: &Path) -> Result<(), SessionError> {
        let snap = m.snapshot(None)?;
        let sidecar = sidecar::sidecar_path(&self.trace);
        crate::snapshot::save_file_checked(
            path,
            &snap,
            true,
            &[self.trace.as_path(), sidecar.as_path()],
        )?;
        Ok(())
    }

    /// Run a fresh replay to its end and check it ended as recorded; `progress` is called
    /// with the icount every `chunk` instructions (`None`: one run).
    pub fn run_to_end(
        m: &mut Machine,
        chunk: Option<u64>,
        mut progress: impl FnMut(u64),
    ) -> Result<RunOutcome, SessionError> {
        let outcome = match chunk {
            None => m.run(None)?,
            Some(c) => loop {
                let o = m.run(Some(c))?;
                progress(m.icount());
                // A chunk ending is not the end of the recording (the log says when that is).
                if o != RunOutcome::InstructionLimit || m.boundary().replay_at_end() {
                    break o;
                }
            },
        };
        m.finish_replay()?;
        Ok(outcome)
    }
}

/// The directory images are looked for in by default: the trace's.
fn dir_of(trace: &Path) -> PathBuf {
    match trace.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The snapshots of `all` that `select` names.
fn pick(all: &[Snapshot], select: Select) -> Vec<Snapshot> {
    match select {
        Select::All => all.to_vec(),
        Select::LastAtOrBefore(n) => all
            .iter()
            .rev()
            .find(|s| s.icount() <= n)
            .cloned()
            .into_iter()
            .collect(),
    }
}
