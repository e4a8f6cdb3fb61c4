//! `rewind.analyze(trace, kind, ...)`: the analyses of `rewind_machine::analysis`, the code
//! `rewind verify` / `rewind analyze` run, with Python objects out (or the CLI's JSON text).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use rewind_machine::analysis::{self, Segments};
use rewind_machine::session::ReplaySession;

use crate::trace::Trace;
use crate::{open_session, to_py, RequestError, TraceError};

/// Options an analysis kind takes (besides jobs and json).
fn known_options(kind: &str) -> PyResult<&'static [&'static str]> {
    Ok(match kind {
        "coverage" => &["symbols"],
        "console" => &[],
        "last-write" => &["addr", "len", "before"],
        "syscalls" => &[],
        "verify" => &[],
        other => {
            return Err(RequestError::new_err(format!(
                "unknown analysis '{other}': use 'coverage', 'console', 'last-write', \
                 'syscalls' or 'verify'"
            )))
        }
    })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn segments<'a>(py: Python<'_>, session: &'a mut ReplaySession) -> PyResult<Segments<'a>> {
    let segs = Segments::new(session).map_err(to_py)?;
    if let Some(w) = &segs.warning {
        let msg = format!("{w}; going on without these snapshots");
        py.import("warnings")?.call_method1("warn", (msg,))?;
    }
    Ok(segs)
}

fn opt<'py, T: for<'a> FromPyObject<'a, 'py>>(
    options: &BTreeMap<String, Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Option<T>> {
    match options.get(name) {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v
            .extract::<T>()
            .map(Some)
            .map_err(|_| RequestError::new_err(format!("option {name}: wrong type"))),
    }
}

/// Run analysis `kind` on `session`.
fn run<'py>(
    py: Python<'py>,
    session: &mut ReplaySession,
    kind: &str,
    jobs: usize,
    json: bool,
    options: &BTreeMap<String, Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    match kind {
        "console" => {
            // By segments, as `rewind analyze console` does (the same lines for any `jobs`).
            let segs = segments(py, session)?;
            let lines = analysis::console_segments(&segs, jobs).map_err(to_py)?;
            if json {
                let text: String = lines.iter().map(|l| l.to_json() + "\n").collect();
                return Ok(text.into_pyobject(py)?.into_any());
            }
            let out = PyList::empty(py);
            for l in &lines {
                let d = PyDict::new(py);
                d.set_item("icount", l.icount)?;
                d.set_item("offset", l.offset)?;
                d.set_item("text", &l.text)?;
                out.append(d)?;
            }
            Ok(out.into_any())
        }
        "coverage" => {
            let symbols: Option<PathBuf> = opt(options, "symbols")?;
            // The symbol file is read first: a wrong path fails before the replays.
            let elf = match &symbols {
                Some(p) => Some(std::fs::read(p).map_err(|e| {
                    TraceError::new_err(format!("{}: cannot read: {e}", p.display()))
                })?),
                None => None,
            };
            let segs = segments(py, session)?;
            let cov = analysis::coverage(&segs, jobs).map_err(to_py)?;
            if json {
                return Ok(cov.to_json().into_pyobject(py)?.into_any());
            }
            let d = PyDict::new(py);
            d.set_item("instructions", cov.instructions())?;
            let modes = PyDict::new(py);
            for (mode, pcs) in &cov.counts {
                let m = PyDict::new(py);
                for (pc, n) in pcs {
                    m.set_item(pc, n)?;
                }
                modes.set_item(*mode, m)?;
            }
            d.set_item("modes", modes)?;
            if let (Some(elf), Some(p)) = (&elf, &symbols) {
                let table = analysis::coverage_by_function(&cov, elf)
                    .map_err(|e| TraceError::new_err(format!("{}: {e}", p.display())))?;
                let funcs = PyList::empty(py);
                for f in &table {
                    let fd = PyDict::new(py);
                    fd.set_item("name", &f.name)?;
                    fd.set_item("addr", f.addr)?;
                    fd.set_item("size", f.size)?;
                    fd.set_item("hits", f.hits)?;
                    fd.set_item("pcs", f.pcs)?;
                    funcs.append(fd)?;
                }
                d.set_item("functions", funcs)?;
            }
            Ok(d.into_any())
        }
        "syscalls" => {
            let segs = segments(py, session)?;
            let calls = analysis::syscalls(&segs, jobs).map_err(to_py)?;
            if json {
                let text: String = calls.iter().map(|c| c.to_json() + "\n").collect();
                return Ok(text.into_pyobject(py)?.into_any());
            }
            let out = PyList::empty(py);
            for c in &calls {
                let d = PyDict::new(py);
                d.set_item("icount", c.icount)?;
                d.set_item("hart", c.hart)?;
                d.set_item("pc", c.pc)?;
                d.set_item("satp", c.satp)?;
                d.set_item("nr", c.nr)?;
                d.set_item("name", analysis::syscall_name(c.nr))?;
                d.set_item("args", c.args.to_vec())?;
                d.set_item("ret", c.ret.map(|r| r.0 as i64))?;
                d.set_item("ret_icount", c.ret.map(|r| r.1))?;
                out.append(d)?;
            }
            Ok(out.into_any())
        }
        "last-write" => {
            let addr: u64 = opt(options, "addr")?.ok_or_else(|| {
                RequestError::new_err("last-write needs addr= (the first byte of the range)")
            })?;
            let len: u64 = opt(options, "len")?.unwrap_or(1);
            let before: Option<u64> = opt(options, "before")?;
            let segs = segments(py, session)?;
            let w = analysis::last_write(&segs, addr, len, before, jobs).map_err(to_py)?;
            let Some(w) = w else {
                return Ok(py.None().into_bound(py));
            };
            if json {
                return Ok((w.to_json() + "\n").into_pyobject(py)?.into_any());
            }
            let d = PyDict::new(py);
            d.set_item("icount", w.icount)?;
            d.set_item("pc", w.pc)?;
            d.set_item("mode", w.mode)?;
            d.set_item("hart", w.hart)?;
            d.set_item("addr", w.addr)?;
            d.set_item("bytes", PyBytes::new(py, &w.value))?;
            d.set_item("value", w.value_le())?;
            Ok(d.into_any())
        }
        "verify" => {
            let segs = segments(py, session)?;
            let checks = analysis::verify(&segs, jobs);
            let out = PyList::empty(py);
            for c in &checks {
                let d = PyDict::new(py);
                d.set_item("segment", c.segment.index)?;
                d.set_item("start", c.segment.start)?;
                d.set_item("end", c.segment.end)?;
                match &c.result {
                    Ok(h) => {
                        d.set_item("ok", true)?;
                        d.set_item("state", h)?;
                    }
                    Err(e) => {
                        d.set_item("ok", false)?;
                        d.set_item("error", e)?;
                    }
                }
                out.append(d)?;
            }
            Ok(out.into_any())
        }
        _ => Err(RequestError::new_err(format!("unknown analysis '{kind}'"))),
    }
}

/// `analyze(trace, kind, jobs=None, json=False, snapshots=None, images=None, **options)`:
/// `trace` is a path (trace or pack) or a `Trace`.
#[pyfunction]
#[pyo3(signature = (trace, kind, jobs=None, json=false, snapshots=None, images=None, **options))]
#[allow(clippy::too_many_arguments)]
pub fn analyze<'py>(
    py: Python<'py>,
    trace: &Bound<'py, PyAny>,
    kind: &str,
    jobs: Option<usize>,
    json: bool,
    snapshots: Option<PathBuf>,
    images: Option<BTreeMap<String, PathBuf>>,
    options: Option<BTreeMap<String, Bound<'py, PyAny>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = options.unwrap_or_default();
    let known = known_options(kind)?;
    if let Some(bad) = options.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(RequestError::new_err(format!(
            "analysis '{kind}' takes no option '{bad}' (it takes: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    if jobs == Some(0) {
        return Err(RequestError::new_err("jobs must be at least 1"));
    }
    let jobs = jobs.unwrap_or_else(default_jobs);
    if let Ok(t) = trace.cast::<Trace>() {
        if snapshots.is_some() || images.is_some() {
            return Err(RequestError::new_err(
                "snapshots= and images= are for a path: a Trace was opened with its own",
            ));
        }
        let mut t = t.borrow_mut();
        return run(py, &mut t.opened.session, kind, jobs, json, &options);
    }
    let path: PathBuf = trace
        .extract()
        .map_err(|_| RequestError::new_err("analyze: trace must be a path or a rewind.Trace"))?;
    let remap = images.unwrap_or_default().into_iter().collect();
    let mut opened = open_session(&path, remap, snapshots)?;
    run(py, &mut opened.session, kind, jobs, json, &options)
}
