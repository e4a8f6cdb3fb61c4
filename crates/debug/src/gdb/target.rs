//! The [`Controller`] as gdbstub's target: registers and memory go to the session, resume
//! requests become the controller's pending [`Action`] (the serving loop carries them out and
//! reports the stop), breakpoints and watchpoints go to the session.
//!
//! With one hart the target is single-threaded (the packets are those of a plain stub); with
//! several it is multi-threaded: gdb thread `N` is hart `N - 1`.

use gdbstub::common::{Signal, Tid};
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadResume, MultiThreadResumeOps, MultiThreadSchedulerLocking,
    MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::reverse_exec::{
    ReverseCont, ReverseContOps, ReverseStep, ReverseStepOps,
};
use gdbstub::target::ext::base::single_register_access::{
    SingleRegisterAccess, SingleRegisterAccessOps,
};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep,
    SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps,
    SwBreakpoint, SwBreakpointOps, WatchKind as GdbWatchKind,
};
use gdbstub::target::ext::monitor_cmd::{outputln, ConsoleOutput, MonitorCmd, MonitorCmdOps};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use rewind_cpu::{WatchKind, Watchpoint};
use rewind_replay::Mode;

use super::arch::{self, Rv64, Rv64RegId, Rv64Regs};
use crate::control::{mode_name, Action, Controller};
use crate::session::{BreakKind, SessionError};

/// `EPERM`: the error code gdb gets for a refused write.
const EPERM: u8 = 1;
/// `EFAULT`: the error code gdb gets for unreadable memory.
const EFAULT: u8 = 14;
/// `EINVAL`: a register rewind does not have or a value it cannot take.
const EINVAL: u8 = 22;

/// An error reply: gdb gets the number, and the text in place of it (`E.text`, which gdb
/// prints as the remote's failure reply); rewind's stderr says it too.
fn refused<T>(e: impl std::fmt::Display, code: u8) -> TargetResult<T, Controller> {
    note!("rewind: gdb: {e}");
    super::set_error_text(e.to_string());
    Err(TargetError::Errno(code))
}

/// A session error as gdb's error reply (a write refused while replaying or recording is
/// `EPERM`, anything else `EFAULT`).
fn session_refused<T>(e: SessionError) -> TargetResult<T, Controller> {
    let code = match e {
        SessionError::WriteRefused { .. } | SessionError::NotReplaying { .. } => EPERM,
        _ => EFAULT,
    };
    refused(e, code)
}

impl Target for Controller {
    type Arch = Rv64;
    // Only a broken session is fatal to the stub; requests that fail are error replies.
    type Error = SessionError;

    fn base_ops(&mut self) -> BaseOps<'_, Rv64, SessionError> {
        if self.session().machine().harts().len() > 1 {
            BaseOps::MultiThread(self)
        } else {
            BaseOps::SingleThread(self)
        }
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<MonitorCmdOps<'_, Self>> {
        Some(self)
    }
}

impl SingleThreadBase for Controller {
    fn read_registers(&mut self, regs: &mut Rv64Regs) -> TargetResult<(), Self> {
        *regs = Rv64Regs::from_hart(self.session().machine().hart());
        Ok(())
    }

    fn write_registers(&mut self, regs: &Rv64Regs) -> TargetResult<(), Self> {
        match self.session_mut().write_registers(|h| regs.apply(h)) {
            Ok(()) => Ok(()),
            Err(e) => session_refused(e),
        }
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, (), Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start_addr: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        let hart = self.session().machine().current_hart();
        read_addrs(self, hart, start_addr, data)
    }

    fn write_addrs(&mut self, start_addr: u64, data: &[u8]) -> TargetResult<(), Self> {
        match self.session_mut().write_memory(start_addr, data) {
            Ok(()) => Ok(()),
            Err(e) => session_refused(e),
        }
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

/// gdb's `m` packet as hart `hart` sees memory.
fn read_addrs(
    ctl: &Controller,
    hart: usize,
    addr: u64,
    data: &mut [u8],
) -> TargetResult<usize, Controller> {
    let n = read_prefix(ctl, hart, addr, data);
    if n == 0 && !data.is_empty() {
        // gdb prints "Cannot access memory at address ..." for an error reply.
        return Err(TargetError::Errno(EFAULT));
    }
    Ok(n)
}

/// Read as much of `data` as is readable from `addr` on, page by page (gdb reads across the
/// end of RAM when it shows memory); the number of bytes read.
fn read_prefix(ctl: &Controller, hart: usize, addr: u64, data: &mut [u8]) -> usize {
    if ctl.session().read_memory_as(hart, addr, data).is_ok() {
        return data.len();
    }
    const PAGE: u64 = 4096;
    let mut done = 0usize;
    while done < data.len() {
        let a = addr.wrapping_add(done as u64);
        let chunk = ((PAGE - a % PAGE) as usize).min(data.len() - done);
        if ctl
            .session()
            .read_memory_as(hart, a, &mut data[done..done + chunk])
            .is_err()
        {
            break;
        }
        done += chunk;
    }
    done
}

impl SingleRegisterAccess<()> for Controller {
    fn read_register(
        &mut self,
        _tid: (),
        reg: Rv64RegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let hart = self.session().machine().current_hart();
        read_register(self, hart, reg, buf)
    }

    fn write_register(&mut self, _tid: (), reg: Rv64RegId, val: &[u8]) -> TargetResult<(), Self> {
        let hart = self.session().machine().current_hart();
        write_register(self, hart, reg, val)
    }
}

/// The hart of gdb thread `tid` (thread ids start at 1).
pub(crate) fn hart_of(tid: Tid) -> usize {
    tid.get() - 1
}

/// The gdb thread id of hart `hart`.
pub(crate) fn tid_of(hart: usize) -> Tid {
    Tid::new(hart + 1).unwrap_or(Tid::MIN)
}

/// An error reply for a thread that names no hart.
fn no_hart<T>(ctl: &Controller, hart: usize) -> TargetResult<T, Controller> {
    let harts = ctl.session().machine().harts().len();
    refused(SessionError::NoHart { hart, harts }, EINVAL)
}

/// Read register `reg` of hart `hart` into `buf`; the bytes written.
fn read_register(
    ctl: &Controller,
    hart: usize,
    reg: Rv64RegId,
    buf: &mut [u8],
) -> TargetResult<usize, Controller> {
    let Some(hart) = ctl.session().machine().harts().get(hart) else {
        return no_hart(ctl, hart);
    };
    let v = match reg {
        Rv64RegId::Gpr(i) => hart.x[i as usize & 31],
        Rv64RegId::Pc => hart.pc,
        Rv64RegId::Fpr(i) => hart.f[i as usize & 31],
        Rv64RegId::Priv => hart.prv as u64,
        Rv64RegId::Csr(n) => match arch::read_csr(hart, n) {
            Some(v) => v,
            // gdb shows `<unavailable>` for an "xx" value.
            None => return Ok(0),
        },
    };
    let bytes = v.to_le_bytes();
    let n = reg.size().min(buf.len());
    buf[..n].copy_from_slice(&bytes[..n]);
    Ok(n)
}

/// Write register `reg` of hart `hart` (run mode only).
fn write_register(
    ctl: &mut Controller,
    hart: usize,
    reg: Rv64RegId,
    val: &[u8],
) -> TargetResult<(), Controller> {
    let mut b = [0u8; 8];
    let n = val.len().min(8);
    b[..n].copy_from_slice(&val[..n]);
    let v = u64::from_le_bytes(b);
    let mut bad = None;
    let r = ctl.session_mut().write_registers_of(hart, |h| match reg {
        Rv64RegId::Gpr(0) => {}
        Rv64RegId::Gpr(i) => h.x[i as usize & 31] = v,
        Rv64RegId::Pc => h.pc = v,
        Rv64RegId::Fpr(i) => {
            h.f[i as usize & 31] = v;
            h.set_fs_dirty();
        }
        Rv64RegId::Csr(n) => bad = arch::write_csr(h, n, v).err(),
        Rv64RegId::Priv => bad = arch::write_priv(h, v).err(),
    });
    match (r, bad) {
        (Err(e), _) => session_refused(e),
        (Ok(()), Some(msg)) => refused(msg, EINVAL),
        (Ok(()), None) => Ok(()),
    }
}

/// Start `action`; a refusal is reported on stderr and the machine stays stopped (the
/// connection then answers gdb with the current stop, see `GdbConnection::incoming`).
fn start(ctl: &mut Controller, action: Action) {
    if let Err(e) = ctl.resume(action) {
        note!("rewind: gdb: {e}");
    }
}

impl SingleThreadResume for Controller {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), SessionError> {
        // A signal gdb passes on means nothing to a bare machine: continue without it.
        start(self, Action::Continue);
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, (), Self>> {
        (self.session().mode() == Mode::Replay).then_some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, (), Self>> {
        (self.session().mode() == Mode::Replay).then_some(self)
    }
}

impl SingleThreadSingleStep for Controller {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), SessionError> {
        start(self, Action::Step);
        Ok(())
    }
}

impl ReverseStep<()> for Controller {
    fn reverse_step(&mut self, _tid: ()) -> Result<(), SessionError> {
        start(self, Action::ReverseStep);
        Ok(())
    }
}

impl ReverseCont<()> for Controller {
    fn reverse_cont(&mut self) -> Result<(), SessionError> {
        start(self, Action::ReverseContinue);
        Ok(())
    }
}

impl MultiThreadBase for Controller {
    fn read_registers(&mut self, regs: &mut Rv64Regs, tid: Tid) -> TargetResult<(), Self> {
        let hart = hart_of(tid);
        match self.session().machine().harts().get(hart) {
            Some(h) => {
                *regs = Rv64Regs::from_hart(h);
                Ok(())
            }
            None => no_hart(self, hart),
        }
    }

    fn write_registers(&mut self, regs: &Rv64Regs, tid: Tid) -> TargetResult<(), Self> {
        match self
            .session_mut()
            .write_registers_of(hart_of(tid), |h| regs.apply(h))
        {
            Ok(()) => Ok(()),
            Err(e) => session_refused(e),
        }
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, Tid, Self>> {
        Some(self)
    }

    fn read_addrs(
        &mut self,
        start_addr: u64,
        data: &mut [u8],
        tid: Tid,
    ) -> TargetResult<usize, Self> {
        read_addrs(self, hart_of(tid), start_addr, data)
    }

    fn write_addrs(&mut self, start_addr: u64, data: &[u8], tid: Tid) -> TargetResult<(), Self> {
        match self
            .session_mut()
            .write_memory_as(hart_of(tid), start_addr, data)
        {
            Ok(()) => Ok(()),
            Err(e) => session_refused(e),
        }
    }

    fn list_active_threads(
        &mut self,
        thread_is_active: &mut dyn FnMut(Tid),
    ) -> Result<(), SessionError> {
        for hart in 0..self.session().machine().harts().len() {
            thread_is_active(tid_of(hart));
        }
        Ok(())
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<Tid> for Controller {
    fn read_register(
        &mut self,
        tid: Tid,
        reg: Rv64RegId,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        read_register(self, hart_of(tid), reg, buf)
    }

    fn write_register(&mut self, tid: Tid, reg: Rv64RegId, val: &[u8]) -> TargetResult<(), Self> {
        write_register(self, hart_of(tid), reg, val)
    }
}

impl ThreadExtraInfo for Controller {
    fn thread_extra_info(&self, tid: Tid, buf: &mut [u8]) -> Result<usize, SessionError> {
        // gdb's `info threads` shows it in parentheses after the thread.
        let hart = hart_of(tid);
        let turn = if self.session().machine().current_hart() == hart {
            ", current"
        } else {
            ""
        };
        let text = format!("hart {hart}{turn}");
        let n = text.len().min(buf.len());
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
        Ok(n)
    }
}

// All harts run whenever one does (they take turns on one thread). A continue of all threads
// stops at the first hart's hit; a continue of thread N alone (gdb holding the others) runs all
// harts but only hart N stops. A step of thread N runs until hart N retired one instruction,
// the others taking the turns they have before it.
impl MultiThreadResume for Controller {
    fn resume(&mut self) -> Result<(), SessionError> {
        let locked = std::mem::take(&mut self.gdb_locked);
        let action = match (self.gdb_step.take(), self.gdb_continue.take()) {
            (Some(hart), _) => Action::StepHart(hart),
            (None, Some(hart)) if locked => Action::ContinueHart(hart),
            _ => Action::Continue,
        };
        start(self, action);
        Ok(())
    }

    fn clear_resume_actions(&mut self) -> Result<(), SessionError> {
        self.gdb_step = None;
        self.gdb_continue = None;
        self.gdb_locked = false;
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), SessionError> {
        self.gdb_continue = Some(hart_of(tid));
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_reverse_step(&mut self) -> Option<ReverseStepOps<'_, Tid, Self>> {
        (self.session().mode() == Mode::Replay).then_some(self)
    }

    fn support_reverse_cont(&mut self) -> Option<ReverseContOps<'_, Tid, Self>> {
        (self.session().mode() == Mode::Replay).then_some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadSingleStep for Controller {
    fn set_resume_action_step(
        &mut self,
        tid: Tid,
        _signal: Option<Signal>,
    ) -> Result<(), SessionError> {
        // gdb steps one thread per resume.
        self.gdb_step = Some(hart_of(tid));
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for Controller {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), SessionError> {
        // The other harts cannot be held (their turns are part of the execution a replay
        // reproduces): they run, but only the resumed thread stops at breakpoints.
        self.gdb_locked = true;
        Ok(())
    }
}

impl ReverseStep<Tid> for Controller {
    fn reverse_step(&mut self, tid: Tid) -> Result<(), SessionError> {
        start(self, Action::ReverseStepHart(hart_of(tid)));
        Ok(())
    }
}

impl ReverseCont<Tid> for Controller {
    fn reverse_cont(&mut self) -> Result<(), SessionError> {
        start(self, Action::ReverseContinue);
        Ok(())
    }
}

impl Breakpoints for Controller {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

// gdb inserts each breakpoint once; one it already set counts as set (the state gdb asked for).
impl SwBreakpoint for Controller {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.session_mut().add_breakpoint(addr, BreakKind::Software);
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.session_mut()
            .remove_breakpoint(addr, BreakKind::Software);
        Ok(true)
    }
}

impl HwBreakpoint for Controller {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.session_mut().add_breakpoint(addr, BreakKind::Hardware);
        Ok(true)
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        self.session_mut()
            .remove_breakpoint(addr, BreakKind::Hardware);
        Ok(true)
    }
}

/// gdb's watchpoint kind as rewind's.
pub fn watch_kind(kind: GdbWatchKind) -> WatchKind {
    match kind {
        GdbWatchKind::Write => WatchKind::Write,
        GdbWatchKind::Read => WatchKind::Read,
        GdbWatchKind::ReadWrite => WatchKind::Access,
    }
}

/// The watchpoint gdb's `Z2`/`Z3`/`Z4` packet describes.
fn watchpoint(addr: u64, len: u64, kind: GdbWatchKind) -> Watchpoint {
    Watchpoint {
        addr,
        len: len.max(1),
        kind: watch_kind(kind),
    }
}

impl HwWatchpoint for Controller {
    fn add_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        self.session_mut()
            .add_watchpoint(watchpoint(addr, len, kind));
        Ok(true)
    }

    fn remove_hw_watchpoint(
        &mut self,
        addr: u64,
        len: u64,
        kind: GdbWatchKind,
    ) -> TargetResult<bool, Self> {
        self.session_mut()
            .remove_watchpoint(watchpoint(addr, len, kind));
        Ok(true)
    }
}

/// HMP commands that start or stop the machine (or end the session) behind gdb's back.
fn is_run_control(line: &str) -> bool {
    let word = line.split_whitespace().next().unwrap_or("");
    let word = word.split('|').next().unwrap_or(word);
    matches!(word, "stop" | "cont" | "c" | "quit" | "q")
}

impl MonitorCmd for Controller {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), SessionError> {
        let cmd = String::from_utf8_lossy(cmd);
        let mut words = cmd.split_whitespace();
        match words.next() {
            Some("icount") => outputln!(out, "{}", self.session().icount()),
            Some("status") => {
                let s = self.session();
                outputln!(
                    out,
                    "mode {}, instruction {}, pc {:#x}, {}",
                    mode_name(s.mode()),
                    s.icount(),
                    s.machine().hart().pc,
                    self.status()
                );
                if let Some(path) = s.trace_path() {
                    outputln!(out, "trace {}", path.display());
                }
                if let Some(outcome) = s.ended() {
                    outputln!(out, "the guest's execution ended here: {outcome}");
                }
                if let Some(e) = self.last_error() {
                    outputln!(out, "last error: {e}");
                }
            }
            Some("help") | None => {
                outputln!(out, "rewind monitor commands:");
                outputln!(
                    out,
                    "  icount   the instruction count (position in the trace)"
                );
                outputln!(out, "  status   mode, position, pc and run state");
                outputln!(out, "  snapshots          the snapshots a seek starts from");
                outputln!(out, "and the human monitor's (QEMU HMP):");
                if let Ok(text) = crate::hmp::execute(self, "help") {
                    for line in text.lines().filter(|l| !is_run_control(l)) {
                        outputln!(out, "  {line}");
                    }
                }
            }
            // gdb itself stops, continues and kills the machine: its view would go stale.
            Some(word) if is_run_control(word) => {
                outputln!(
                    out,
                    "'{word}' is gdb's to do here (continue, Ctrl-C, kill); use QMP for it otherwise"
                )
            }
            Some(_) => {
                let line = match cmd.trim() {
                    "snapshots" => "info snapshots",
                    other => other,
                };
                let seeking = line.starts_with("replay_seek");
                if let Ok(text) = crate::hmp::execute(self, line) {
                    for l in text.lines() {
                        outputln!(out, "{l}");
                    }
                    if seeking && !text.starts_with("Error") {
                        outputln!(
                            out,
                            "now at instruction {} (gdb: 'flushregs' shows the new state)",
                            self.session().icount()
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
