//! `rewind.open(path)`: a trace (or pack) with its header facts, its events, and replays.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use rewind_log::{Event, TraceReader};
use rewind_machine::sidecar;

use crate::{chain_message, open_session, Opened, TraceError};

/// JSON text as Python objects (through the standard `json` module).
pub(crate) fn json_to_py<'py>(
    py: Python<'py>,
    v: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (v.to_string(),))
}

fn log_err(e: rewind_log::LogError) -> PyErr {
    TraceError::new_err(chain_message(&e))
}

/// A recording opened for questions (`rewind.open`).
#[pyclass(module = "rewind._native", unsendable)]
pub struct Trace {
    pub(crate) opened: Opened,
    /// The path as given (a trace or a pack).
    given: PathBuf,
    /// The exit found in the events, once looked for.
    exit: Option<Option<serde_json::Value>>,
}

/// `rewind.open(path, snapshots=None, images=None)`: open a trace or a pack; images are found
/// as `rewind replay` finds them (`images`: {NAME: PATH} remaps, as `--image NAME=PATH`).
#[pyfunction]
#[pyo3(signature = (path, snapshots=None, images=None))]
pub fn open(
    path: PathBuf,
    snapshots: Option<PathBuf>,
    images: Option<std::collections::BTreeMap<String, PathBuf>>,
) -> PyResult<Trace> {
    let remap = images.unwrap_or_default().into_iter().collect();
    let opened = open_session(&path, remap, snapshots)?;
    Ok(Trace {
        opened,
        given: path,
        exit: None,
    })
}

/// An event's payload as a dict.
fn payload<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match e {
        Event::SerialInput { port, bytes } => {
            d.set_item("port", port)?;
            d.set_item("bytes", PyBytes::new(py, bytes))?;
        }
        Event::HostShutdown { cause } => d.set_item("cause", format!("{cause:?}"))?,
        Event::GuestExit { kind, code } => {
            d.set_item("exit", format!("{kind:?}").to_lowercase())?;
            d.set_item("code", code)?;
        }
        Event::ClockRead { kind, value_ns } => {
            d.set_item("clock", kind)?;
            d.set_item("value_ns", value_ns)?;
        }
        Event::Random { bytes } => d.set_item("bytes", PyBytes::new(py, bytes))?,
        Event::IdleWarp { ns } => d.set_item("ns", ns)?,
        Event::StateHash { hash } => d.set_item("hash", hash)?,
        Event::NetSent { device, len, hash } => {
            d.set_item("device", device)?;
            d.set_item("len", len)?;
            d.set_item("hash", hash)?;
        }
        Event::NetPacket { device, bytes } | Event::AudioCapture { device, bytes } => {
            d.set_item("device", device)?;
            d.set_item("bytes", PyBytes::new(py, bytes))?;
        }
        Event::InputEvent {
            device,
            kind,
            code,
            value,
        } => {
            d.set_item("device", device)?;
            d.set_item("type", kind)?;
            d.set_item("code", code)?;
            d.set_item("value", value)?;
        }
        Event::StateRegisters { regs } => d.set_item("regs", regs)?,
        Event::SnapshotMark { seq } => d.set_item("seq", seq)?,
        Event::End => {}
    }
    Ok(d)
}

/// The run's end as the events say: the last guest exit or host shutdown.
fn exit_of(e: &Event, icount: u64) -> Option<serde_json::Value> {
    match e {
        Event::GuestExit { kind, code } => Some(serde_json::json!({
            "kind": format!("{kind:?}").to_lowercase(),
            "code": code,
            "icount": icount,
        })),
        Event::HostShutdown { cause } if *cause != rewind_log::ShutdownCause::HostReset => {
            Some(serde_json::json!({
                "kind": "shutdown",
                "cause": format!("{cause:?}"),
                "icount": icount,
            }))
        }
        _ => None,
    }
}

#[pymethods]
impl Trace {
    /// The path given to `open`.
    #[getter]
    fn path(&self) -> PathBuf {
        self.given.clone()
    }

    /// The trace file replayed (inside the unpacked pack for a pack).
    #[getter]
    fn trace_path(&self) -> PathBuf {
        self.opened.session.trace().to_path_buf()
    }

    /// The whole header: rewind version, machine configuration, images, icount shift...
    #[getter]
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(self.opened.session.header())
            .map_err(|e| TraceError::new_err(e.to_string()))?;
        json_to_py(py, &v)
    }

    /// The recorded machine configuration.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.opened.session.header().machine_config)
    }

    /// The images the recording loaded: role, file name, size, BLAKE3.
    #[getter]
    fn images<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(&self.opened.session.header().images)
            .map_err(|e| TraceError::new_err(e.to_string()))?;
        json_to_py(py, &v)
    }

    /// Instructions in the recording (`None`: the trace was cut short, it has no footer).
    #[getter]
    fn instructions(&self) -> Option<u64> {
        self.opened.session.total()
    }

    /// Events in the trace (`End` included), from its footer.
    #[getter]
    fn events_count(&self) -> PyResult<Option<u64>> {
        let r = TraceReader::open(self.opened.session.trace()).map_err(log_err)?;
        Ok(r.footer().map(|f| f.total_events))
    }

    /// Events by kind name, from the footer.
    #[getter]
    fn event_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = TraceReader::open(self.opened.session.trace()).map_err(log_err)?;
        let d = PyDict::new(py);
        if let Some(f) = r.footer() {
            for (k, n) in &f.event_counts {
                d.set_item(k.name(), n)?;
            }
        }
        Ok(d)
    }

    /// The state hash at the end of the recording, when it has one.
    #[getter]
    fn final_state_hash(&self) -> PyResult<Option<u64>> {
        let r = TraceReader::open(self.opened.session.trace()).map_err(log_err)?;
        Ok(r.footer().and_then(|f| f.final_state_hash))
    }

    /// How the run ended: `{"kind": "pass"|"fail"|"reset", "code": N, "icount": N}` or
    /// `{"kind": "shutdown", "cause": ..., "icount": N}`; `None` without such an event. Found
    /// by reading the events (once).
    #[getter]
    fn exit<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.exit.is_none() {
            let mut r = TraceReader::open(self.opened.session.trace()).map_err(log_err)?;
            let mut last = None;
            while let Some(ev) = r.next_event().map_err(log_err)? {
                if let Some(x) = exit_of(&ev.event, ev.icount) {
                    last = Some(x);
                }
            }
            self.exit = Some(last);
        }
        match self.exit.as_ref().and_then(|x| x.as_ref()) {
            Some(v) => json_to_py(py, v),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The instruction counts of the recording's snapshots (from its snapshot file's index;
    /// empty without one). Replays start from the last one at or before their start.
    #[getter]
    fn snapshots(&self) -> PyResult<Vec<u64>> {
        let path = self.opened.session.snapshots_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let (_, index) =
            sidecar::read_index(&path).map_err(|e| TraceError::new_err(chain_message(&e)))?;
        Ok(index.into_iter().map(|e| e.icount).collect())
    }

    /// The log's events in order, without replaying: `(kind, icount, payload)` tuples;
    /// `kinds`: only these kind names (e.g. `["SerialInput", "GuestExit"]`).
    #[pyo3(signature = (kinds=None))]
    fn events(&self, kinds: Option<Vec<String>>) -> PyResult<Events> {
        let reader = TraceReader::open(self.opened.session.trace()).map_err(log_err)?;
        Ok(Events { reader, kinds })
    }

    /// A replay brought to instruction `start` (from the recording's last snapshot at or before
    /// it, then run forward; its end checked if the recording ends there).
    #[pyo3(signature = (start=0))]
    fn replay(&mut self, start: u64) -> PyResult<crate::replay::Replay> {
        crate::replay::Replay::start(&mut self.opened, start)
    }

    fn __repr__(&self) -> String {
        format!(
            "<rewind.Trace {} ({} instructions)>",
            self.given.display(),
            self.opened
                .session
                .total()
                .map_or_else(|| "?".to_string(), |t| t.to_string())
        )
    }
}

/// The iterator `Trace.events()` returns.
#[pyclass(module = "rewind._native", unsendable)]
pub struct Events {
    reader: TraceReader,
    kinds: Option<Vec<String>>,
}

#[pymethods]
impl Events {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyTuple>>> {
        loop {
            let Some(ev) = self.reader.next_event().map_err(log_err)? else {
                return Ok(None);
            };
            let name = ev.event.kind().name();
            if self
                .kinds
                .as_ref()
                .is_some_and(|k| !k.iter().any(|k| k == name))
            {
                continue;
            }
            let items: Vec<Bound<'py, PyAny>> = vec![
                name.into_pyobject(py)?.into_any(),
                ev.icount.into_pyobject(py)?.into_any(),
                payload(py, &ev.event)?.into_any(),
            ];
            return Ok(Some(PyTuple::new(py, items)?));
        }
    }
}
