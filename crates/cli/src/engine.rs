//! `--engine ray[:ADDRESS]`: segment tasks (and hunt tries) on a Ray cluster. The driver is
//! Python (crates/py/python/rewind/ray_engine.py, embedded here and run with `python3` or
//! `$REWIND_PYTHON`); it speaks JSON lines on its standard input and output. Each task runs
//! this binary's hidden `segment-task` / `hunt-task` commands on a worker, on the recording
//! handed over as its pack through Ray's object store; the partial results come back as
//! JSON and are merged here by the same code as `--jobs N`.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context};
use rewind_machine::analysis::Segment;
use rewind_machine::task::{self, AnalysisSpec, Failure, Partial, Runner, TaskResult};

/// The Ray driver, shipped inside the binary.
static DRIVER: &str = include_str!("../../py/python/rewind/ray_engine.py");

/// Where tasks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// Threads of this process (`--jobs`).
    Local,
    /// A Ray cluster: `None` starts a local one (or uses `$RAY_ADDRESS`), `auto` finds a
    /// running one, `HOST:PORT` connects to that head node.
    Ray(Option<String>),
}

/// Parse `--engine`: `local`, `ray` or `ray:ADDRESS`.
pub fn parse_engine(s: &str) -> Result<Engine, String> {
    match s {
        "local" => Ok(Engine::Local),
        "ray" => Ok(Engine::Ray(None)),
        _ => match s.strip_prefix("ray:") {
            Some(a) if !a.is_empty() => Ok(Engine::Ray(Some(a.to_string()))),
            _ => Err(format!(
                "'{s}' is not an engine: use local, ray, ray:auto or ray:HOST:PORT"
            )),
        },
    }
}

/// A running Ray driver.
pub struct RayRunner {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// The driver's standard error (Ray's logs), shown when it fails.
    log: PathBuf,
    cpus: usize,
    /// The driver script and the pack, when made here.
    _dir: tempfile::TempDir,
}

/// One task for the driver: arguments of this binary on a worker (`{pack}` stands for the
/// worker's copy of the pack, `{artifact}` for a file the task may write, which the driver
/// then copies to `artifact`).
#[derive(serde::Serialize)]
pub struct EngineTask {
    /// The rewind command line, without the binary.
    pub args: Vec<String>,
    /// Where to put the file the task wrote at `{artifact}`, if it wrote one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact: Option<PathBuf>,
}

/// A task's answer: its standard output, or why it failed.
#[derive(Debug)]
pub struct EngineResult {
    /// Standard output, or the failure's one-line message.
    pub output: Result<String, String>,
    /// The task wrote its artifact (now at the task's `artifact` path).
    pub artifact: bool,
}

fn python() -> String {
    std::env::var("REWIND_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The binary workers run: `$REWIND_RAY_BIN`, or this one.
fn worker_binary() -> anyhow::Result<PathBuf> {
    match std::env::var_os("REWIND_RAY_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => std::env::current_exe().context("cannot find the rewind binary for the workers"),
    }
}

impl RayRunner {
    /// Start the driver, connect it to the cluster at `address` and hand it `pack` (put in
    /// the object store once, for every task).
    pub fn start(address: Option<&str>, pack: Option<&Path>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let script = dir.path().join("ray_engine.py");
        std::fs::write(&script, DRIVER)
            .with_context(|| format!("{}: cannot write", script.display()))?;
        let log = dir.path().join("driver.log");
        let err = std::fs::File::create(&log)
            .with_context(|| format!("{}: cannot create", log.display()))?;
        let py = python();
        let mut child = Command::new(&py)
            .arg(&script)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .with_context(|| {
                format!(
                    "the Ray engine needs Python 3 with the `ray` package: cannot run {py} \
                     (set REWIND_PYTHON to another interpreter)"
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("cannot talk to the Ray driver");
        };
        let mut r = RayRunner {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            log,
            cpus: 1,
            _dir: dir,
        };
        let hello = serde_json::json!({
            "address": address,
            "bin": worker_binary()?,
            "pack": pack,
        });
        let reply = r.request(&hello)?;
        r.cpus = reply["cpus"].as_u64().unwrap_or(1).max(1) as usize;
        Ok(r)
    }

    /// CPUs of the cluster (tasks that run at once).
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// Send one request line, read one reply line; a reply `{"error": ...}` is an error.
    fn request(&mut self, req: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let sent = match self.stdin.as_mut() {
            Some(w) => writeln!(w, "{req}").and_then(|()| w.flush()).is_ok(),
            None => false,
        };
        let mut line = String::new();
        let got = sent && self.stdout.read_line(&mut line).is_ok_and(|n| n > 0);
        if !got {
            let _ = self.child.wait();
            bail!("the Ray driver stopped: {}", self.last_log_line());
        }
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .with_context(|| format!("the Ray driver answered {:?}", line.trim()))?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            bail!("{e}");
        }
        Ok(v)
    }

    fn last_log_line(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(
                || "it printed nothing".to_string(),
                |l| l.trim().to_string(),
            )
    }

    /// Run `tasks` on the cluster; results in their order.
    pub fn run_tasks(&mut self, tasks: &[EngineTask]) -> anyhow::Result<Vec<EngineResult>> {
        let reply = self.request(&serde_json::json!({ "tasks": tasks }))?;
        let Some(results) = reply["results"].as_array() else {
            bail!("the Ray driver answered without results");
        };
        if results.len() != tasks.len() {
            bail!(
                "the Ray driver answered {} results for {} tasks",
                results.len(),
                tasks.len()
            );
        }
        Ok(results
            .iter()
            .map(|r| EngineResult {
                output: match (r["ok"].as_str(), r["error"].as_str()) {
                    (Some(o), _) => Ok(o.to_string()),
                    (None, Some(e)) => Err(e.to_string()),
                    _ => Err("a task answered nothing".to_string()),
                },
                artifact: r["artifact"].as_bool().unwrap_or(false),
            })
            .collect())
    }
}

impl Drop for RayRunner {
    fn drop(&mut self) {
        // End of input: the driver disconnects (and stops a cluster it started).
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Segment tasks on a Ray cluster, for [`task::analyze`].
pub struct RaySegments {
    /// The driver.
    pub ray: RayRunner,
}

impl Runner for RaySegments {
    fn parallelism(&self) -> usize {
        self.ray.cpus()
    }

    fn run(
        &mut self,
        spec: &AnalysisSpec,
        segs: &[Segment],
    ) -> Result<Vec<Result<Partial, Failure>>, String> {
        let spec_text = serde_json::to_string(spec).map_err(|e| e.to_string())?;
        let tasks: Vec<EngineTask> = segs
            .iter()
            .map(|seg| EngineTask {
                args: vec![
                    "segment-task".into(),
                    "{pack}".into(),
                    "--spec".into(),
                    spec_text.clone(),
                    "--segment".into(),
                    seg.index.to_string(),
                ],
                artifact: None,
            })
            .collect();
        let results = self.ray.run_tasks(&tasks).map_err(|e| format!("{e:#}"))?;
        Ok(segs
            .iter()
            .zip(results)
            .map(|(seg, r)| {
                let out = r
                    .output
                    .map_err(|e| Failure::other(format!("its task failed: {e}")))?;
                let t: TaskResult = serde_json::from_str(out.trim()).map_err(|e| {
                    Failure::other(format!(
                        "its task answered something else than a result ({e})"
                    ))
                })?;
                if t.segment != *seg {
                    return Err(Failure::other(format!(
                        "the worker's copy of the recording has {} there (another snapshot file?)",
                        t.segment
                    )));
                }
                t.partial
            })
            .collect())
    }
}

/// `rewind segment-task PACK --spec JSON --segment K` (hidden): one segment task, its
/// [`TaskResult`] on standard output (a failing segment is a result, not an error).
#[derive(clap::Args, Debug)]
pub struct SegmentTaskArgs {
    /// The recording (a pack, as the engine hands it over, or a trace).
    #[arg(value_name = "PACK")]
    pub pack: PathBuf,
    /// The analysis (rewind_machine::task::AnalysisSpec as JSON).
    #[arg(long, value_name = "JSON")]
    pub spec: String,
    /// The segment's number.
    #[arg(long, value_name = "K")]
    pub segment: usize,
}

/// `rewind segment-task`.
pub fn segment_task(a: SegmentTaskArgs) -> anyhow::Result<u8> {
    let spec: AnalysisSpec = serde_json::from_str(&a.spec)
        .with_context(|| format!("'{}' is not an analysis", a.spec))?;
    let mut opened = crate::commands::open_session(&a.pack, &[], None)?;
    let segs = rewind_machine::analysis::Segments::new(&mut opened.session)
        .map_err(crate::commands::session_error)?;
    let r = task::run_task_at(&segs, &spec, a.segment);
    println!("{}", serde_json::to_string(&r)?);
    Ok(0)
}

/// Pack the recording `trace` (found as `rewind pack` finds it) into `out`.
pub fn pack_recording(
    trace: &crate::analyze::TraceArgs,
    out: &Path,
) -> anyhow::Result<Vec<rewind_machine::pack::PackEntry>> {
    let opened =
        crate::commands::open_session(&trace.file, &trace.image, trace.snapshots.as_deref())?;
    let session = &opened.session;
    let snaps = session.snapshots_path();
    let snaps = snaps.exists().then_some(snaps);
    let files = rewind_machine::pack::sources(
        session.trace(),
        snaps.as_deref(),
        session.config(),
        &session.header().images,
    );
    Ok(rewind_machine::pack::write(out, &files, true)?)
}

/// A Ray driver with the recording `trace` handed over as its pack (made in a temporary
/// directory unless `trace` is one).
pub fn ray_for(
    address: Option<&str>,
    trace: &crate::analyze::TraceArgs,
) -> anyhow::Result<RaySegments> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let pack = if rewind_machine::pack::is_pack(&trace.file) {
        trace.file.clone()
    } else {
        let p = dir.path().join("recording.rwpack");
        pack_recording(trace, &p)?;
        p
    };
    let ray = RayRunner::start(address, Some(&pack))?;
    // The pack is in the object store now.
    drop(dir);
    Ok(RaySegments { ray })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_parse_or_say_what_is_wrong() {
        assert_eq!(parse_engine("local"), Ok(Engine::Local));
        assert_eq!(parse_engine("ray"), Ok(Engine::Ray(None)));
        assert_eq!(
            parse_engine("ray:127.0.0.1:6379"),
            Ok(Engine::Ray(Some("127.0.0.1:6379".into())))
        );
        assert!(parse_engine("ray:").unwrap_err().contains("ray:auto"));
        assert!(parse_engine("dask").unwrap_err().contains("not an engine"));
    }
}
