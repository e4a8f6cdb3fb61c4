//! The `rewind` Python package's native part (`rewind._native`): traces opened through the
//! library's [`ReplaySession`], their events read without replaying, replays driven step by step
//! with hooks, and the built-in analyses of `rewind_machine::analysis` (the code the CLI runs).
//! `python/rewind/__init__.py` is the public face; `docs/analysis.md` has the tutorial.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use rewind_machine::session::{OpenOptions, ReplaySession, SessionError};
use rewind_machine::MachineError;
use rewind_replay::ReplayStop;

mod analyze;
mod replay;
mod trace;

create_exception!(rewind, Error, PyException, "Every error rewind raises.");
create_exception!(
    rewind,
    TraceError,
    Error,
    "A trace, pack, snapshot file or image that cannot be used."
);
create_exception!(
    rewind,
    DivergenceError,
    Error,
    "The replay did not do what the recording says (the message is the divergence report)."
);
create_exception!(
    rewind,
    CutShortError,
    Error,
    "The trace ends early (its recorder was killed); the replay ran to its last event."
);
create_exception!(
    rewind,
    RequestError,
    Error,
    "A request that does not fit the recording (a start past its end, a bad option)."
);
create_exception!(
    rewind,
    StopReplay,
    PyException,
    "Raise it in a hook to stop the replay there (returning True does the same)."
);

/// The prebuilt guests the `rewind` binary embeds: traces of `rewind record` without
/// `--kernel` name them `embedded:demo.elf` / `embedded:bench.elf`.
static DEMO_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");
static BENCH_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

fn embedded_image(name: &str) -> Option<Arc<[u8]>> {
    match name {
        "demo.elf" => Some(Arc::from(DEMO_ELF)),
        "bench.elf" => Some(Arc::from(BENCH_ELF)),
        _ => None,
    }
}

/// An error and its causes on one line, `: `-separated, leaving out a cause whose text the
/// message already ends with: the text the CLI prints after `rewind: `.
pub(crate) fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        let text = c.to_string();
        let text = text.trim_end();
        if msg.is_empty() {
            msg.push_str(text);
        } else if !msg.ends_with(text) {
            msg.push_str(": ");
            msg.push_str(text);
        }
        cur = c.source();
    }
    msg
}

/// The replay stop (divergence, cut trace) somewhere in `e`'s chain.
fn replay_stop<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a ReplayStop> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(MachineError::Replay(s)) = c.downcast_ref::<MachineError>() {
            return Some(s);
        }
        if let Some(s) = c.downcast_ref::<ReplayStop>() {
            return Some(s);
        }
        cur = c.source();
    }
    None
}

/// A library error as the Python exception of its kind, with the CLI's message.
pub(crate) fn to_py(e: SessionError) -> PyErr {
    // The error of the layer that failed (SessionError is transparent: its own source is
    // that error's source, so the chain must start at the error itself).
    let inner: Option<&(dyn std::error::Error + 'static)> = match &e {
        SessionError::Machine(m) => Some(m),
        SessionError::Sidecar(s) => Some(s),
        SessionError::Trace(t) => Some(t),
        SessionError::Snapshot(s) => Some(s),
        SessionError::Request(_) => None,
    };
    let msg = match (&e, inner) {
        (SessionError::Request(s), _) => s.clone(),
        (_, Some(i)) => chain_message(i),
        (other, None) => other.to_string(),
    };
    match (&e, inner.and_then(replay_stop)) {
        (_, Some(ReplayStop::Diverged(_))) => DivergenceError::new_err(msg),
        (_, Some(ReplayStop::CutShort { .. })) => CutShortError::new_err(msg),
        (SessionError::Request(_), _) => RequestError::new_err(msg),
        _ => TraceError::new_err(msg),
    }
}

/// A machine error (from a run) as a Python exception.
pub(crate) fn machine_err(e: MachineError) -> PyErr {
    to_py(SessionError::Machine(e))
}

/// A trace opened for replay, and the temporary directory a pack was unpacked into (removed
/// when the last user is dropped).
pub(crate) struct Opened {
    pub session: ReplaySession,
    pub unpacked: Option<Arc<tempfile::TempDir>>,
}

/// Open `trace` as `rewind replay` does: a pack is unpacked into a temporary directory first;
/// images are found by content (`remap`, the recorded path, next to the trace).
pub(crate) fn open_session(
    trace: &Path,
    remap: Vec<(String, PathBuf)>,
    snapshots: Option<PathBuf>,
) -> PyResult<Opened> {
    let (trace, unpacked) = if rewind_machine::pack::is_pack(trace) {
        let dir = tempfile::tempdir().map_err(|e| {
            TraceError::new_err(format!("cannot create a temporary directory: {e}"))
        })?;
        let u = rewind_machine::pack::unpack(trace, dir.path())
            .map_err(|e| TraceError::new_err(chain_message(&e)))?;
        (u.trace, Some(Arc::new(dir)))
    } else {
        (trace.to_path_buf(), None)
    };
    let opts = OpenOptions {
        remap,
        image_dir: None,
        embedded: Some(Arc::new(embedded_image)),
        snapshots,
    };
    let session = ReplaySession::open(&trace, opts).map_err(to_py)?;
    Ok(Opened { session, unpacked })
}

/// The native module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("TraceError", py.get_type::<TraceError>())?;
    m.add("DivergenceError", py.get_type::<DivergenceError>())?;
    m.add("CutShortError", py.get_type::<CutShortError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add("StopReplay", py.get_type::<StopReplay>())?;
    m.add_class::<trace::Trace>()?;
    m.add_class::<trace::Events>()?;
    m.add_class::<replay::Replay>()?;
    m.add_class::<replay::Stop>()?;
    m.add_function(wrap_pyfunction!(trace::open, m)?)?;
    m.add_function(wrap_pyfunction!(analyze::analyze, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
