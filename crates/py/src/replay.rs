//! `Trace.replay(start=N)`: a replay machine driven from Python, with PANDA-style hooks.
//!
//! Hooks cost nothing while none is set: the machine runs in long slices. Breakpoints and
//! watchpoints are the hart's own (a stop before the instruction); a per-instruction hook on a
//! pc range of at most [`MAX_RANGE_BREAKPOINTS`] instruction slots becomes breakpoints on it; a
//! trap hook becomes breakpoints on the trap vectors (re-read before every slice). Block hooks,
//! and instruction hooks on larger ranges, single-step the machine (slow: one `run` per
//! instruction). Console output is seen after each slice (slices are short while a console
//! hook is set).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use rewind_cpu::{DebugHit, WatchKind, Watchpoint};
use rewind_machine::{Machine, RunOutcome, SerialOutput};

use crate::{machine_err, to_py, Opened, RequestError, StopReplay};

/// Instructions per slice with no hook that needs short ones.
const SLICE: u64 = 1 << 22;
/// Instructions per slice while a console hook is set (its output is seen after each).
const CONSOLE_SLICE: u64 = 1_000;
/// Instructions per slice while a trap hook is set (the trap vectors are re-read after each).
const TRAP_SLICE: u64 = 10_000;
/// Largest pc range (in 2-byte instruction slots) an instruction hook covers with breakpoints.
const MAX_RANGE_BREAKPOINTS: u64 = 1 << 16;
/// Largest `read_mem`.
const MAX_READ: u64 = 64 << 20;

/// ABI names of x0..x31.
const ABI: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// What a hook watches.
#[derive(Debug, Clone)]
enum HookKind {
    Breakpoint(u64),
    Watch(Watchpoint),
    Instruction { start: u64, end: u64 },
    Block,
    Trap,
    Console,
}

struct Hook {
    id: u64,
    kind: HookKind,
    callback: Option<Py<PyAny>>,
}

/// Output seen by the observer: all of it since the replay's start, and what hooks have not
/// been shown yet.
#[derive(Default)]
struct ConsoleState {
    all: Vec<u8>,
    first_offset: Option<u64>,
    pending: Vec<(u64, u64, Vec<u8>)>,
    keep_pending: bool,
}

/// Something a hook is told about (turned into the dict its callback gets).
#[derive(Debug, Clone)]
enum Happened {
    Breakpoint {
        pc: u64,
    },
    Watch {
        addr: u64,
        access: WatchKind,
        watch: Watchpoint,
    },
    Instruction {
        pc: u64,
    },
    Block {
        pc: u64,
    },
    Trap {
        cause: u64,
        interrupt: bool,
        epc: u64,
        tval: u64,
        handler: u64,
        late: bool,
    },
    Console {
        icount: u64,
        offset: u64,
        data: Vec<u8>,
    },
}

impl Happened {
    fn reason(&self) -> &'static str {
        match self {
            Happened::Breakpoint { .. } => "breakpoint",
            Happened::Watch { .. } => "watchpoint",
            Happened::Instruction { .. } => "instruction",
            Happened::Block { .. } => "block",
            Happened::Trap { .. } => "trap",
            Happened::Console { .. } => "console",
        }
    }

    fn to_dict<'py>(
        &self,
        py: Python<'py>,
        hook: u64,
        icount: u64,
        hart: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("kind", self.reason())?;
        d.set_item("hook", hook)?;
        d.set_item("icount", icount)?;
        d.set_item("hart", hart)?;
        match self {
            Happened::Breakpoint { pc } | Happened::Instruction { pc } | Happened::Block { pc } => {
                d.set_item("pc", pc)?;
            }
            Happened::Watch {
                addr,
                access,
                watch,
            } => {
                d.set_item("addr", addr)?;
                d.set_item("access", kind_name(*access))?;
                d.set_item("watch_addr", watch.addr)?;
                d.set_item("watch_len", watch.len)?;
            }
            Happened::Trap {
                cause,
                interrupt,
                epc,
                tval,
                handler,
                late,
            } => {
                d.set_item("cause", cause)?;
                d.set_item("interrupt", interrupt)?;
                d.set_item("epc", epc)?;
                d.set_item("tval", tval)?;
                d.set_item("pc", handler)?;
                d.set_item("late", late)?;
            }
            Happened::Console {
                icount,
                offset,
                data,
            } => {
                d.set_item("icount", icount)?;
                d.set_item("offset", offset)?;
                d.set_item("data", PyBytes::new(py, data))?;
            }
        }
        Ok(d)
    }
}

fn kind_name(k: WatchKind) -> &'static str {
    match k {
        WatchKind::Read => "read",
        WatchKind::Write => "write",
        WatchKind::Access => "access",
    }
}

/// Why `run_until` / `step` returned.
#[pyclass(module = "rewind._native", unsendable)]
pub struct Stop {
    /// `"limit"` (the instruction asked for), `"end"` (the recording ended), or the hook kind
    /// that stopped it: `"breakpoint"`, `"watchpoint"`, `"instruction"`, `"block"`, `"trap"`,
    /// `"console"`.
    #[pyo3(get)]
    reason: String,
    /// The instruction count there.
    #[pyo3(get)]
    icount: u64,
    /// The current hart's pc there.
    #[pyo3(get)]
    pc: u64,
    /// The hart that stopped.
    #[pyo3(get)]
    hart: usize,
    /// The event of the hook that stopped the replay (as its callback saw it).
    #[pyo3(get)]
    event: Option<Py<PyAny>>,
    /// For `"end"`: how the recording ended (as `rewind replay` says it).
    #[pyo3(get)]
    outcome: Option<String>,
}

#[pymethods]
impl Stop {
    fn __repr__(&self) -> String {
        format!(
            "<rewind.Stop {} at instruction {} (pc {:#x}){}>",
            self.reason,
            self.icount,
            self.pc,
            self.outcome
                .as_ref()
                .map_or_else(String::new, |o| format!(": {o}"))
        )
    }
}

/// Trap counters of a hart (exceptions, interrupts by cause).
type TrapCounts = ([u64; 16], [u64; 16]);

/// A replay (`Trace.replay`).
#[pyclass(module = "rewind._native", unsendable)]
pub struct Replay {
    m: Machine,
    _unpacked: Option<Arc<tempfile::TempDir>>,
    trace: PathBuf,
    /// How the recording ended, once it has.
    ended: Option<String>,
    console: Arc<Mutex<ConsoleState>>,
    hooks: Vec<Hook>,
    next_id: u64,
    /// Let the current hart's next instruction go past its breakpoint (and watchpoints, when
    /// true) if it is still at this pc.
    skip: Option<(usize, u64, bool)>,
    /// The position (icount, hart, pc) whose block/instruction hooks were called (step mode).
    dispatched: Option<(u64, usize, u64)>,
    /// The last position stepped from, for block starts (step mode).
    prev: Option<(u64, usize, u64)>,
    /// Trap counters when last looked at, per hart.
    traps_seen: Vec<TrapCounts>,
    /// Trap vector entries per hart, with the breakpoints installed from them.
    installed: Option<(u64, Vec<Vec<u64>>)>,
    /// Bumped on every hook change.
    generation: u64,
}

fn trap_counts(m: &Machine) -> Vec<TrapCounts> {
    m.harts()
        .iter()
        .map(|h| (h.stats.exceptions, h.stats.interrupts))
        .collect()
}

fn tvec_entries(m: &Machine) -> Vec<Vec<u64>> {
    m.harts()
        .iter()
        .map(|h| {
            let mut v = Vec::new();
            for tvec in [h.csr.mtvec, h.csr.stvec] {
                let base = tvec & !3;
                v.push(base);
                if tvec & 3 == 1 {
                    v.extend((1..16).map(|i| base.wrapping_add(4 * i)));
                }
            }
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect()
}

impl Replay {
    /// A replay of `opened` at instruction `start`.
    pub(crate) fn start(opened: &mut Opened, start: u64) -> PyResult<Replay> {
        let (started, _warning) = opened
            .session
            .start_at(start, SerialOutput::Null)
            .map_err(to_py)?;
        let mut m = started.machine;
        let console = Arc::new(Mutex::new(ConsoleState::default()));
        let sink = Arc::clone(&console);
        m.set_output_observer(Some(Box::new(move |icount, offset, bytes| {
            if let Ok(mut c) = sink.lock() {
                c.first_offset.get_or_insert(offset);
                c.all.extend_from_slice(bytes);
                if c.keep_pending {
                    c.pending.push((icount, offset, bytes.to_vec()));
                }
            }
        })));
        let traps_seen = trap_counts(&m);
        Ok(Replay {
            ended: started.ended.map(|o| o.to_string()),
            m,
            _unpacked: opened.unpacked.clone(),
            trace: opened.session.trace().to_path_buf(),
            console,
            hooks: Vec::new(),
            next_id: 1,
            skip: None,
            dispatched: None,
            prev: None,
            traps_seen,
            installed: None,
            generation: 0,
        })
    }

    fn add_hook(&mut self, kind: HookKind, callback: Option<Py<PyAny>>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.hooks.push(Hook { id, kind, callback });
        self.hooks_changed();
        id
    }

    fn hooks_changed(&mut self) {
        self.generation += 1;
        self.installed = None;
        let want = self
            .hooks
            .iter()
            .any(|h| matches!(h.kind, HookKind::Console));
        if let Ok(mut c) = self.console.lock() {
            c.keep_pending = want;
            if !want {
                c.pending.clear();
            }
        }
        // Trap counters start from now.
        self.traps_seen = trap_counts(&self.m);
    }

    fn has(&self, f: impl Fn(&HookKind) -> bool) -> bool {
        self.hooks.iter().any(|h| f(&h.kind))
    }

    /// Whether the hooks need the machine run one instruction at a time.
    fn step_mode(&self) -> bool {
        self.hooks.iter().any(|h| match h.kind {
            HookKind::Block => true,
            HookKind::Instruction { start, end } => {
                end.saturating_sub(start).div_ceil(2) > MAX_RANGE_BREAKPOINTS
            }
            _ => false,
        })
    }

    /// Set every hart's breakpoints and watchpoints from the hooks (and the trap vectors).
    fn install(&mut self, step_mode: bool) {
        let tvecs = if self.has(|k| matches!(k, HookKind::Trap)) {
            tvec_entries(&self.m)
        } else {
            Vec::new()
        };
        if let Some((g, t)) = &self.installed {
            if *g == self.generation && *t == tvecs {
                return;
            }
        }
        let mut pcs = Vec::new();
        let mut watches = Vec::new();
        for h in &self.hooks {
            match h.kind {
                HookKind::Breakpoint(pc) => pcs.push(pc),
                HookKind::Watch(w) => watches.push(w),
                HookKind::Instruction { start, end } if !step_mode => {
                    let mut pc = start & !1;
                    while pc < end {
                        pcs.push(pc);
                        pc += 2;
                    }
                }
                _ => {}
            }
        }
        let n = self.m.harts().len();
        for k in 0..n {
            let mut mine = pcs.clone();
            if let Some(t) = tvecs.get(k) {
                mine.extend_from_slice(t);
            }
            let h = &mut self.m.harts_mut()[k];
            h.set_breakpoints(&mine);
            h.set_watchpoints(&watches);
        }
        self.installed = Some((self.generation, tvecs));
    }

    /// The hooks to call before the instruction at the current position (step mode).
    fn before_instruction(&mut self) -> Vec<(u64, Option<Py<PyAny>>, Happened)> {
        let hart = self.m.current_hart();
        let pc = self.m.hart().pc;
        let here = (self.m.icount(), hart, pc);
        if self.dispatched == Some(here) {
            return Vec::new();
        }
        self.dispatched = Some(here);
        // A block starts where the pc is not the previous instruction's next one.
        let block_start = match self.prev {
            Some((_, h, p)) if h == hart => {
                let d = pc.wrapping_sub(p);
                d != 2 && d != 4
            }
            _ => true,
        };
        Python::attach(|py| {
            let mut out = Vec::new();
            for h in &self.hooks {
                let ev = match h.kind {
                    HookKind::Block if block_start => Happened::Block { pc },
                    HookKind::Instruction { start, end } if pc >= start && pc < end => {
                        Happened::Instruction { pc }
                    }
                    _ => continue,
                };
                out.push((h.id, h.callback.as_ref().map(|c| c.clone_ref(py)), ev));
            }
            out
        })
    }

    /// Hooks for a debugger stop of the current hart.
    fn on_debug_stop(&mut self, hit: DebugHit) -> Vec<(u64, Option<Py<PyAny>>, Happened)> {
        let hart = self.m.current_hart();
        let pc = self.m.hart().pc;
        let mut out: Vec<(u64, Option<Py<PyAny>>, Happened)> = Vec::new();
        let step_mode = self.step_mode();
        Python::attach(|py| {
            let cb = |h: &Hook| h.callback.as_ref().map(|c| c.clone_ref(py));
            match hit {
                DebugHit::Breakpoint { .. } => {
                    self.skip = Some((hart, pc, false));
                    for ev in self.new_traps(hart, false) {
                        for h in self
                            .hooks
                            .iter()
                            .filter(|h| matches!(h.kind, HookKind::Trap))
                        {
                            out.push((h.id, cb(h), ev.clone()));
                        }
                    }
                    for h in &self.hooks {
                        match h.kind {
                            HookKind::Instruction { start, end }
                                if !step_mode && pc >= start && pc < end =>
                            {
                                out.push((h.id, cb(h), Happened::Instruction { pc }));
                            }
                            HookKind::Breakpoint(b) if b == pc => {
                                out.push((h.id, cb(h), Happened::Breakpoint { pc }));
                            }
                            _ => {}
                        }
                    }
                }
                DebugHit::Watchpoint {
                    watch,
                    access,
                    addr,
                } => {
                    self.skip = Some((hart, pc, true));
                    for h in &self.hooks {
                        if let HookKind::Watch(w) = h.kind {
                            if w == watch {
                                out.push((
                                    h.id,
                                    cb(h),
                                    Happened::Watch {
                                        addr,
                                        access,
                                        watch,
                                    },
                                ));
                            }
                        }
                    }
                }
            }
        });
        out
    }

    /// Traps hart `hart` took since the counters were last read (`late`: not seen at the
    /// handler's first instruction).
    fn new_traps(&mut self, hart: usize, late: bool) -> Vec<Happened> {
        let now = trap_counts(&self.m);
        let mut out = Vec::new();
        if let (Some(before), Some(after)) = (self.traps_seen.get(hart), now.get(hart)) {
            let h = &self.m.harts()[hart];
            let to_m = h.prv == rewind_cpu::Priv::M;
            let (epc, tval) = if to_m {
                (h.csr.mepc, h.csr.mtval)
            } else {
                (h.csr.sepc, h.csr.stval)
            };
            for (interrupt, (b, a)) in [
                (false, (&before.0, &after.0)),
                (true, (&before.1, &after.1)),
            ] {
                for cause in 0..16 {
                    for _ in b[cause]..a[cause] {
                        out.push(Happened::Trap {
                            cause: cause as u64,
                            interrupt,
                            epc,
                            tval,
                            handler: h.pc,
                            late,
                        });
                    }
                }
            }
        }
        if let (Some(seen), Some(n)) = (self.traps_seen.get_mut(hart), now.get(hart)) {
            *seen = *n;
        }
        out
    }

    fn ended_stop(&self) -> Stop {
        Stop {
            reason: "end".into(),
            icount: self.m.icount(),
            pc: self.m.hart().pc,
            hart: self.m.current_hart(),
            event: None,
            outcome: self.ended.clone(),
        }
    }

    fn plain_stop(&self, reason: &str) -> Stop {
        Stop {
            reason: reason.into(),
            icount: self.m.icount(),
            pc: self.m.hart().pc,
            hart: self.m.current_hart(),
            event: None,
            outcome: None,
        }
    }
}

/// What one slice of the run loop found.
enum Slice {
    Return(Stop),
    Call(Vec<(u64, Option<Py<PyAny>>, Happened)>),
}

/// Run `slf` until instruction `target` (`None`: the end), a hook that stops it, or the end of
/// the recording.
fn advance(slf: &Bound<'_, Replay>, target: Option<u64>) -> PyResult<Stop> {
    let py = slf.py();
    {
        let me = slf.borrow();
        if let Some(t) = target {
            if t < me.m.icount() && me.ended.is_none() {
                return Err(RequestError::new_err(format!(
                    "the replay is at instruction {}, past {t}: a replay runs forwards (open \
                     another one with replay(start={t}))",
                    me.m.icount()
                )));
            }
        }
    }
    let mut slices = 0u64;
    loop {
        slices += 1;
        if slices.is_multiple_of(64) {
            py.check_signals()?;
        }
        let slice = {
            let mut me = slf.borrow_mut();
            one_slice(&mut me, target)?
        };
        let calls = match slice {
            Slice::Return(s) => return Ok(s),
            Slice::Call(c) => c,
        };
        if calls.is_empty() {
            continue;
        }
        // The callbacks run with the replay not borrowed: they may read it (or drive it).
        let (icount, hart, pc) = {
            let me = slf.borrow();
            (me.m.icount(), me.m.current_hart(), me.m.hart().pc)
        };
        let mut stop: Option<(String, Py<PyAny>)> = None;
        let mut ended = false;
        let mut calls = calls.into_iter();
        for (id, cb, ev) in calls.by_ref() {
            let d = ev.to_dict(py, id, icount, hart)?;
            if let Happened::Console { icount: at, .. } = ev {
                d.set_item("icount", at)?;
            }
            let stops = match cb {
                None => true,
                Some(cb) => match cb.call1(py, (slf.clone(), d.clone())) {
                    Ok(v) => v.bind(py).is_truthy()?,
                    Err(e) if e.is_instance_of::<StopReplay>(py) => true,
                    Err(e) => return Err(e),
                },
            };
            if stops {
                stop = Some((ev.reason().to_string(), d.into_any().unbind()));
                break;
            }
        }
        if stop.is_some() {
            // Output not shown yet is shown when the replay goes on.
            let rest: Vec<(u64, u64, Vec<u8>)> = calls
                .filter_map(|(_, _, ev)| match ev {
                    Happened::Console {
                        icount,
                        offset,
                        data,
                    } => Some((icount, offset, data)),
                    _ => None,
                })
                .collect();
            let console = Arc::clone(&slf.borrow().console);
            if let Ok(mut c) = console.lock() {
                let later = std::mem::take(&mut c.pending);
                let mut seen = std::collections::HashSet::new();
                c.pending = rest
                    .into_iter()
                    .filter(|e| seen.insert(e.1))
                    .chain(later)
                    .collect();
            };
        }
        {
            let me = slf.borrow();
            if me.ended.is_some() {
                ended = true;
            }
        }
        if let Some((reason, event)) = stop {
            return Ok(Stop {
                reason,
                icount,
                pc,
                hart,
                event: Some(event),
                outcome: None,
            });
        }
        if ended {
            return Ok(slf.borrow().ended_stop());
        }
    }
}

/// One slice: the hooks due before it, or a run of the machine.
fn one_slice(me: &mut Replay, target: Option<u64>) -> PyResult<Slice> {
    if me.ended.is_some() {
        return Ok(Slice::Return(me.ended_stop()));
    }
    let icount = me.m.icount();
    if target.is_some_and(|t| icount >= t) {
        return Ok(Slice::Return(me.plain_stop("limit")));
    }
    let step_mode = me.step_mode();
    if step_mode {
        let calls = me.before_instruction();
        if !calls.is_empty() {
            return Ok(Slice::Call(calls));
        }
    }
    // Output a stopping hook left unshown is shown before the machine runs on.
    let left = me.console_events();
    if !left.is_empty() {
        return Ok(Slice::Call(left));
    }
    me.install(step_mode);
    let hart = me.m.current_hart();
    let pc = me.m.hart().pc;
    if let Some((h, p, watch)) = me.skip.take() {
        if h == hart && p == pc {
            let hm = me.m.hart_mut();
            if watch {
                hm.skip_debug_once();
            } else {
                hm.skip_breakpoint_once();
            }
        }
    }
    let mut limit = if step_mode {
        1
    } else if me.has(|k| matches!(k, HookKind::Console)) {
        CONSOLE_SLICE
    } else if me.has(|k| matches!(k, HookKind::Trap)) {
        TRAP_SLICE
    } else {
        SLICE
    };
    if let Some(t) = target {
        limit = limit.min(t - icount);
    }
    me.prev = Some((icount, hart, pc));
    me.m.set_pause_at_limit(true);
    let r = me.m.run(Some(limit));
    me.m.set_pause_at_limit(false);
    let outcome = r.map_err(machine_err)?;
    let mut calls = Vec::new();
    let mut ended = false;
    match outcome {
        RunOutcome::Debug(hit) => calls.extend(me.on_debug_stop(hit)),
        RunOutcome::InstructionLimit
            if !(me.m.boundary().replay_at_end()
                && me.m.boundary().next_event_icount() == Some(me.m.icount())) => {}
        o => {
            me.m.finish_replay().map_err(machine_err)?;
            me.ended = Some(o.to_string());
            ended = true;
        }
    }
    if me.has(|k| matches!(k, HookKind::Trap)) && !matches!(outcome, RunOutcome::Debug(_)) {
        // Traps not seen at a vector (it moved within the slice): told late.
        let n = me.m.harts().len();
        for k in 0..n {
            for ev in me.new_traps(k, true) {
                Python::attach(|py| {
                    for h in me.hooks.iter().filter(|h| matches!(h.kind, HookKind::Trap)) {
                        calls.push((
                            h.id,
                            h.callback.as_ref().map(|c| c.clone_ref(py)),
                            ev.clone(),
                        ));
                    }
                });
            }
        }
    }
    calls.extend(me.console_events());
    if ended && calls.is_empty() {
        return Ok(Slice::Return(me.ended_stop()));
    }
    Ok(Slice::Call(calls))
}

fn parse_kind(kind: &str) -> PyResult<WatchKind> {
    match kind {
        "write" => Ok(WatchKind::Write),
        "read" => Ok(WatchKind::Read),
        "access" => Ok(WatchKind::Access),
        other => Err(RequestError::new_err(format!(
            "watchpoint kind '{other}': use 'write', 'read' or 'access'"
        ))),
    }
}

#[pymethods]
impl Replay {
    /// Instructions retired so far (all harts).
    #[getter]
    fn icount(&self) -> u64 {
        self.m.icount()
    }

    /// The current hart's pc.
    #[getter]
    fn pc(&self) -> u64 {
        self.m.hart().pc
    }

    /// The hart whose turn it is.
    #[getter]
    fn hart(&self) -> usize {
        self.m.current_hart()
    }

    /// Number of harts.
    #[getter]
    fn harts(&self) -> usize {
        self.m.harts().len()
    }

    /// The current hart's privilege level: "M", "S" or "U".
    #[getter]
    fn privilege(&self) -> &'static str {
        match self.m.hart().prv {
            rewind_cpu::Priv::M => "M",
            rewind_cpu::Priv::S => "S",
            rewind_cpu::Priv::U => "U",
        }
    }

    /// The current hart's integer registers by ABI name (`zero`, `ra`, `sp`, ..., `t6`) and
    /// `pc`.
    #[getter]
    fn regs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.regs_of(py, self.m.current_hart())
    }

    /// Hart `hart`'s integer registers (as `regs`).
    fn regs_of<'py>(&self, py: Python<'py>, hart: usize) -> PyResult<Bound<'py, PyDict>> {
        let h = self
            .m
            .harts()
            .get(hart)
            .ok_or_else(|| RequestError::new_err(format!("no hart {hart}")))?;
        let d = PyDict::new(py);
        for (i, name) in ABI.iter().enumerate() {
            d.set_item(*name, h.x[i])?;
        }
        d.set_item("pc", h.pc)?;
        Ok(d)
    }

    /// One register of the current hart: `x0`..`x31`, an ABI name, `f0`..`f31` (raw bits) or
    /// `pc`.
    fn reg(&self, name: &str) -> PyResult<u64> {
        let h = self.m.hart();
        if name == "pc" {
            return Ok(h.pc);
        }
        if let Some(i) = ABI.iter().position(|n| *n == name) {
            return Ok(h.x[i]);
        }
        if name == "fp" {
            return Ok(h.x[8]);
        }
        let num = |p: &str| {
            name.strip_prefix(p)
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|&n| n < 32)
        };
        if let Some(i) = num("x") {
            return Ok(h.x[i]);
        }
        if let Some(i) = num("f") {
            return Ok(h.f[i]);
        }
        Err(RequestError::new_err(format!("unknown register '{name}'")))
    }

    /// A CSR of the current hart by name (`"mstatus"`) or number, as a debugger reads it.
    fn csr(&self, name: &Bound<'_, PyAny>) -> PyResult<u64> {
        let n: u16 = if let Ok(n) = name.extract::<u16>() {
            n
        } else {
            let s: String = name.extract()?;
            rewind_debug::gdb::arch::CSRS
                .iter()
                .find(|(c, _)| *c == s)
                .map(|(_, n)| *n)
                .ok_or_else(|| RequestError::new_err(format!("unknown CSR '{s}'")))?
        };
        rewind_debug::gdb::arch::read_csr(self.m.hart(), n)
            .ok_or_else(|| RequestError::new_err(format!("CSR {n:#x} is not implemented")))
    }

    /// `n` bytes of memory at `addr`: virtual (as the current hart sees it, without side
    /// effects) or physical. Raises if a byte is not mapped or not RAM.
    #[pyo3(signature = (addr, n, r#virtual=true))]
    fn read_mem<'py>(
        &self,
        py: Python<'py>,
        addr: u64,
        n: u64,
        r#virtual: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if n > MAX_READ {
            return Err(RequestError::new_err(format!(
                "read_mem: {n} bytes is more than the {MAX_READ} a read may take"
            )));
        }
        let h = self.m.hart();
        let ram = self.m.ram();
        let mut out = vec![0u8; n as usize];
        let mut done = 0u64;
        while done < n {
            let va = addr.wrapping_add(done);
            let in_page = (4096 - (va & 4095)).min(n - done);
            let pa = if r#virtual {
                h.debug_translate(ram, va).ok_or_else(|| {
                    RequestError::new_err(format!(
                        "cannot read {n} bytes at {addr:#x}: {va:#x} is not mapped (hart {}, {} mode)",
                        self.m.current_hart(),
                        self.privilege()
                    ))
                })?
            } else {
                va
            };
            let buf = &mut out[done as usize..(done + in_page) as usize];
            ram.read(pa, buf).map_err(|_| {
                RequestError::new_err(format!(
                    "cannot read {n} bytes at {addr:#x}: {pa:#x} is not RAM"
                ))
            })?;
            done += in_page;
        }
        Ok(PyBytes::new(py, &out))
    }

    /// The serial output since the replay's start, as text (invalid UTF-8 replaced).
    fn console(&self) -> String {
        String::from_utf8_lossy(&self.console_bytes_vec()).into_owned()
    }

    /// The serial output since the replay's start, as bytes.
    fn console_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.console_bytes_vec())
    }

    /// The state hash the recording's checks compare.
    #[getter]
    fn state_hash(&self) -> u64 {
        self.m.state_hash()
    }

    /// How the recording ended, once the replay reached its end (`None` before).
    #[getter]
    fn ended(&self) -> Option<String> {
        self.ended.clone()
    }

    /// The trace replayed.
    #[getter]
    fn trace_path(&self) -> PathBuf {
        self.trace.clone()
    }

    /// Run to instruction `icount` (or a hook that stops, or the end of the recording).
    fn run_until(slf: &Bound<'_, Self>, icount: u64) -> PyResult<Stop> {
        advance(slf, Some(icount))
    }

    /// Run `n` instructions (or to a hook that stops, or the end).
    #[pyo3(signature = (n=1))]
    fn step(slf: &Bound<'_, Self>, n: u64) -> PyResult<Stop> {
        let at = slf.borrow().m.icount();
        advance(slf, Some(at.saturating_add(n)))
    }

    /// Run to the end of the recording (or a hook that stops); the end is checked.
    fn run(slf: &Bound<'_, Self>) -> PyResult<Stop> {
        advance(slf, None)
    }

    /// Stop before the instruction at virtual `pc` executes (or call `callback(replay,
    /// event)`, which stops the replay by returning True or raising StopReplay). Returns the
    /// hook's id.
    #[pyo3(signature = (pc, callback=None))]
    fn add_breakpoint(&mut self, pc: u64, callback: Option<Py<PyAny>>) -> u64 {
        self.add_hook(HookKind::Breakpoint(pc), callback)
    }

    /// Stop before an instruction accesses `[addr, addr+len)` (virtual): `kind` is "write",
    /// "read" or "access". The stop is before the access: the instruction has not executed.
    #[pyo3(signature = (addr, len=1, kind="write", callback=None))]
    fn add_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: &str,
        callback: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let w = Watchpoint {
            addr,
            len: len.max(1),
            kind: parse_kind(kind)?,
        };
        Ok(self.add_hook(HookKind::Watch(w), callback))
    }

    /// Call `callback(replay, event)` before every instruction whose pc is in `[start, end)`.
    #[pyo3(signature = (callback, start=0, end=u64::MAX))]
    fn on_instruction(&mut self, callback: Py<PyAny>, start: u64, end: u64) -> PyResult<u64> {
        if end <= start {
            return Err(RequestError::new_err(format!(
                "on_instruction: empty range {start:#x}..{end:#x}"
            )));
        }
        Ok(self.add_hook(HookKind::Instruction { start, end }, Some(callback)))
    }

    /// Call `callback(replay, event)` before the first instruction of every block (after any
    /// jump, taken branch, trap or return). Single-steps the machine.
    fn on_block(&mut self, callback: Py<PyAny>) -> u64 {
        self.add_hook(HookKind::Block, Some(callback))
    }

    /// Call `callback(replay, event)` at every trap (exception or interrupt), stopped before
    /// the handler's first instruction: `event` has cause, interrupt, epc, tval, pc (handler).
    fn on_trap(&mut self, callback: Py<PyAny>) -> u64 {
        self.add_hook(HookKind::Trap, Some(callback))
    }

    /// Call `callback(replay, event)` with the serial output as the UART hands it over
    /// (`event["data"]`, `event["icount"]`: the checkpoint that drained it).
    fn on_console(&mut self, callback: Py<PyAny>) -> u64 {
        self.add_hook(HookKind::Console, Some(callback))
    }

    /// Remove the hook `id`; False if there is none.
    fn remove_hook(&mut self, id: u64) -> bool {
        let before = self.hooks.len();
        self.hooks.retain(|h| h.id != id);
        let removed = self.hooks.len() != before;
        if removed {
            self.hooks_changed();
        }
        removed
    }

    /// Remove every hook.
    fn clear_hooks(&mut self) {
        self.hooks.clear();
        self.hooks_changed();
    }

    fn __repr__(&self) -> String {
        format!(
            "<rewind.Replay {} at instruction {} (pc {:#x})>",
            self.trace.display(),
            self.m.icount(),
            self.m.hart().pc
        )
    }
}

impl Replay {
    /// The console hooks' calls for the output not shown yet.
    fn console_events(&mut self) -> Vec<(u64, Option<Py<PyAny>>, Happened)> {
        let pending: Vec<(u64, u64, Vec<u8>)> = match self.console.lock() {
            Ok(mut c) => std::mem::take(&mut c.pending),
            Err(_) => Vec::new(),
        };
        if pending.is_empty() {
            return Vec::new();
        }
        Python::attach(|py| {
            let mut calls = Vec::new();
            for (at, offset, data) in pending {
                for h in self
                    .hooks
                    .iter()
                    .filter(|h| matches!(h.kind, HookKind::Console))
                {
                    calls.push((
                        h.id,
                        h.callback.as_ref().map(|c| c.clone_ref(py)),
                        Happened::Console {
                            icount: at,
                            offset,
                            data: data.clone(),
                        },
                    ));
                }
            }
            calls
        })
    }

    fn console_bytes_vec(&self) -> Vec<u8> {
        self.console
            .lock()
            .map(|c| c.all.clone())
            .unwrap_or_default()
    }
}
