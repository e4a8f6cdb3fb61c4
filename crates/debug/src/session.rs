//! A debugging session over one machine: forward execution that stops at breakpoints,
//! watchpoints and a replay break; and, in replay, seeks and reverse execution built on the
//! machine's snapshots (restore the nearest earlier snapshot, run forward — design §7).
//!
//! Positions are instruction counts. A breakpoint "hit at icount i" means the hart is about to
//! execute the breakpoint's instruction with `icount == i`; a watchpoint "hit at icount i" means
//! the instruction executed at icount `i` (the `i+1`-th) makes the watched access. Both stop
//! before that instruction, forwards and backwards: gdb expects RISC-V watchpoints to fire
//! before the access (it then steps over the instruction itself and compares the values).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rewind_cpu::ram::PAGE_SIZE;
use rewind_cpu::{DebugHit, WatchKind, Watchpoint};
use rewind_machine::boot::{FW_DYNAMIC_INFO_ADDR, RESET_VEC_SIZE};
use rewind_machine::seek::{SeekResult, Seeker};
use rewind_machine::{Machine, MachineError, RunOutcome};
use rewind_replay::Mode;

/// Physical address of the boot ROM: it starts with the reset vector, which
/// `fw_dynamic_info` directly follows.
const BOOT_ROM: u64 = FW_DYNAMIC_INFO_ADDR - RESET_VEC_SIZE;

/// Which of gdb's two breakpoint kinds a breakpoint was set as (they behave the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakKind {
    /// `Z0`: software breakpoint.
    Software,
    /// `Z1`: hardware breakpoint.
    Hardware,
}

/// A reverse-continue in progress: the position before which the next snapshot interval is
/// searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReverseSearch {
    segment_end: u64,
}

/// Why the session's machine stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A stop was requested (monitor `stop`, gdb Ctrl-C, `-S`).
    Requested,
    /// A breakpoint at `pc` (the instruction there has not executed).
    Breakpoint {
        /// The breakpoint address.
        pc: u64,
        /// How it was set (the first kind set at that address).
        kind: BreakKind,
    },
    /// A watchpoint fired.
    Watchpoint {
        /// The watchpoint as it was set.
        watch: Watchpoint,
        /// The access (`Read` or `Write`).
        access: WatchKind,
        /// First byte the instruction accessed.
        addr: u64,
    },
    /// A single step (forwards or backwards) completed.
    Step,
    /// The replay break set with [`Session::set_replay_break`] was reached.
    ReplayBreak {
        /// Where.
        icount: u64,
    },
    /// A [`Session::seek`] reached its target.
    SeekDone {
        /// Where.
        icount: u64,
    },
    /// Reverse execution reached instruction 0: there is no earlier history.
    HistoryStart,
    /// The guest cannot go forward: it exited, the host quit it, or the recording ends here.
    /// In replay the session can still seek back.
    Ended(RunOutcome),
}

/// A request the session cannot carry out; the session stays usable.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A host action that would make a replay differ from its recording.
    #[error("{what} is not possible in a replay: the recording decides what the machine does")]
    InReplay {
        /// What was asked.
        what: &'static str,
    },
    /// Only replay can go backwards or seek.
    #[error("{what} is only possible when replaying a trace (this session is in {mode} mode)")]
    NotReplaying {
        /// What was asked.
        what: &'static str,
        /// The session's mode.
        mode: &'static str,
    },
    /// Writes would make the replay diverge from its recording.
    #[error(
        "cannot write {what} while {mode}: it would change the execution the trace describes \
         (writes are allowed with `rewind run`)"
    )]
    WriteRefused {
        /// "registers" or "memory".
        what: &'static str,
        /// "replaying" or "recording".
        mode: &'static str,
    },
    /// A seek beyond the end of the recording.
    #[error("instruction {target} is beyond the end of the recording (it ends at instruction {end}: {how})")]
    BeyondEnd {
        /// The requested icount.
        target: u64,
        /// Where the recording ends.
        end: u64,
        /// How it ends.
        how: String,
    },
    /// A replay break must lie ahead.
    #[error("replay break at instruction {target} is behind the current position {icount}")]
    BreakInPast {
        /// The requested icount.
        target: u64,
        /// The current icount.
        icount: u64,
    },
    /// A virtual address with no readable mapping (or outside RAM).
    #[error("cannot access memory at {addr:#x}: not mapped to RAM")]
    BadAddress {
        /// The address.
        addr: u64,
    },
    /// A hart the machine does not have.
    #[error("there is no hart {hart} (the machine has {harts})")]
    NoHart {
        /// The hart asked for.
        hart: usize,
        /// How many the machine has.
        harts: usize,
    },
    /// The machine failed (divergence, trace error): it cannot go on from here.
    #[error(transparent)]
    Machine(#[from] rewind_machine::MachineError),
    /// A snapshot could not be saved, loaded or applied.
    #[error(transparent)]
    Snapshot(#[from] rewind_machine::SnapshotError),
    /// A client named a file outside the directory file commands are confined to.
    #[error("{}: outside {} (the directory --sandbox confines file commands to)", path.display(), dir.display())]
    OutsideSandbox {
        /// The path the client gave.
        path: PathBuf,
        /// The sandbox directory.
        dir: PathBuf,
    },
}

/// A machine under the debugger's control, with its snapshots.
pub struct Session {
    seeker: Seeker,
    trace: Option<PathBuf>,
    /// The directory clients' file commands are confined to (`--sandbox`), canonical.
    sandbox: Option<PathBuf>,
    /// Breakpoint addresses with the kinds set there, in the order they were set.
    breakpoints: BTreeMap<u64, Vec<BreakKind>>,
    /// Watchpoints, no duplicates.
    watchpoints: Vec<Watchpoint>,
    /// The replay break (an icount at or after the current position).
    replay_break: Option<u64>,
    /// Set while the machine stands at the end of forward execution.
    ended: Option<RunOutcome>,
    /// How the recording ends, once the replay got there (a restore to the end position,
    /// where the outcome was already consumed, reports it again).
    end_outcome: Option<RunOutcome>,
    /// The end of the replay was checked against the trace's footer (done once: the check
    /// consumes the trace's `End` event).
    end_verified: bool,
    /// Position `(icount, pc)` of a watchpoint stop (before the access): resuming from it
    /// executes the instruction without stopping at its breakpoint or watchpoint again.
    watch_stop: Option<(u64, u64)>,
    /// The hart the last stop is about when it is not the current one (a step of another
    /// hart, a reverse search that landed on another hart's hit); see [`Session::stop_hart`].
    focus: Option<usize>,
    /// While set, only this hart stops at breakpoints and watchpoints (gdb's resume of one
    /// thread with the others held: they still run, unobserved).
    only: Option<usize>,
}

/// A hit found while scanning a stretch of history forward for `reverse_continue`.
struct Hit {
    /// Where reverse execution stops for it.
    icount: u64,
    /// What to report.
    reason: StopReason,
    /// The hart that hit.
    hart: usize,
}

impl Session {
    /// Wrap a machine (run, record or replay mode; `trace` is the trace file of record/replay)
    /// with snapshots every `snapshot_interval` instructions in record and replay.
    pub fn new(seeker: Seeker, trace: Option<PathBuf>) -> Self {
        Session {
            seeker,
            trace,
            sandbox: None,
            breakpoints: BTreeMap::new(),
            watchpoints: Vec::new(),
            replay_break: None,
            ended: None,
            end_outcome: None,
            end_verified: false,
            watch_stop: None,
            focus: None,
            only: None,
        }
    }

    /// The hart the last stop concerns (gdb's thread in its stop reply): the hart that hit a
    /// breakpoint or watchpoint, the hart a step was for, else the hart whose turn it is.
    pub fn stop_hart(&self) -> usize {
        self.focus.unwrap_or_else(|| self.machine().current_hart())
    }

    /// The machine's mode.
    pub fn mode(&self) -> Mode {
        self.seeker.machine().boundary().mode()
    }

    /// The trace file being recorded or replayed.
    pub fn trace_path(&self) -> Option<&Path> {
        self.trace.as_deref()
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        self.seeker.machine()
    }

    /// The seeker (snapshots).
    pub fn seeker(&self) -> &Seeker {
        &self.seeker
    }

    /// The seeker, mutably (e.g. to finish the recording).
    pub fn seeker_mut(&mut self) -> &mut Seeker {
        &mut self.seeker
    }

    /// Give the seeker back (to finish a recording, or keep its snapshots).
    pub fn into_seeker(self) -> Seeker {
        self.seeker
    }

    /// Current instruction count.
    pub fn icount(&self) -> u64 {
        self.seeker.machine().icount()
    }

    /// The outcome that ended forward execution, while the machine stands at the end (seeking
    /// back in replay clears it).
    pub fn ended(&self) -> Option<RunOutcome> {
        self.ended
    }

    /// The breakpoints set, by address, with the kinds set there.
    pub fn breakpoints(&self) -> impl Iterator<Item = (u64, &[BreakKind])> + '_ {
        self.breakpoints.iter().map(|(&pc, k)| (pc, k.as_slice()))
    }

    /// The watchpoints set.
    pub fn watchpoints(&self) -> &[Watchpoint] {
        &self.watchpoints
    }

    /// Run forward at most `budget` instructions. `Some(reason)` when the machine stopped for a
    /// reason (breakpoint, watchpoint, replay break, end); `None` when the budget ran out (call
    /// again to go on). A breakpoint at the current pc does not stop the first instruction, so
    /// resuming from a breakpoint moves on.
    pub fn resume(&mut self, budget: u64) -> Result<Option<StopReason>, SessionError> {
        self.focus = None;
        if let Some(stop) = self.check_at_end()? {
            return Ok(Some(stop));
        }
        let start = self.icount();
        let mut limit = budget;
        if let Some(at) = self.replay_break {
            if at <= start {
                self.replay_break = None;
                return Ok(Some(StopReason::ReplayBreak { icount: start }));
            }
            limit = limit.min(at - start);
        }
        if limit == 0 {
            return Ok(None);
        }
        self.install_hooks();
        let pc = self.machine().hart().pc;
        if self.watch_stop.take() == Some((start, pc)) {
            // We stopped before this instruction's watched access (after any breakpoint here
            // was reported): execute it.
            self.seeker.machine_mut().hart_mut().skip_debug_once();
        } else if self.breakpoints.contains_key(&pc) {
            // We stand on this breakpoint because we stopped here: move on.
            self.seeker.machine_mut().hart_mut().skip_breakpoint_once();
        }
        let end = start.saturating_add(limit);
        let outcome = self.run_until(end)?;
        if let Some(stop) = self.classify(outcome, end)? {
            self.note_stop(&stop);
            return Ok(Some(stop));
        }
        // The run stopped at `end` with nothing else to report.
        let now = self.icount();
        if self.replay_break == Some(now) {
            self.replay_break = None;
            return Ok(Some(StopReason::ReplayBreak { icount: now }));
        }
        let pc = self.machine().hart().pc;
        if self.breakpoints.contains_key(&pc) && self.observed(self.machine().current_hart()) {
            // The budget ran out just as the hart reached a breakpoint: this is its hit (the
            // next resume would step over it).
            return Ok(Some(StopReason::Breakpoint {
                pc,
                kind: self.kind_at(pc),
            }));
        }
        Ok(None)
    }

    /// [`Session::resume`] with the breakpoints and watchpoints on hart `hart` alone: the other
    /// harts take their turns too but do not stop (gdb continuing one thread of several, as it
    /// does to step a thread over a breakpoint).
    pub fn resume_hart(
        &mut self,
        hart: usize,
        budget: u64,
    ) -> Result<Option<StopReason>, SessionError> {
        let harts = self.machine().harts().len();
        if hart >= harts {
            return Err(SessionError::NoHart { hart, harts });
        }
        self.only = Some(hart);
        let r = self.resume(budget);
        self.only = None;
        r
    }

    /// Does `hart` stop at the hooks in the run under way?
    fn observed(&self, hart: usize) -> bool {
        self.only.is_none_or(|h| h == hart)
    }

    /// Execute one instruction (`Step`, or `Ended`): a breakpoint or watched access on it does
    /// not stop it.
    pub fn step(&mut self) -> Result<StopReason, SessionError> {
        self.focus = None;
        if let Some(stop) = self.check_at_end()? {
            return Ok(stop);
        }
        let start = self.icount();
        self.watch_stop = None;
        self.install_hooks();
        self.seeker.machine_mut().hart_mut().skip_debug_once();
        let end = start + 1;
        let outcome = self.run_until(end)?;
        let stop = self.classify(outcome, end)?.unwrap_or(StopReason::Step);
        self.note_stop(&stop);
        // A replay break at or behind the new position can no longer be reached.
        let now = self.icount();
        if self.replay_break.is_some_and(|b| b <= now) {
            self.replay_break = None;
        }
        Ok(stop)
    }

    /// Replay: go to instruction `target`, backwards or forwards, ignoring breakpoints on the
    /// way. Past the end of the recording: `BeyondEnd` (the machine is left at the end).
    pub fn seek(&mut self, target: u64) -> Result<StopReason, SessionError> {
        self.require_replay("seeking")?;
        let now = self.icount();
        if let Some(outcome) = self.ended {
            if target > now {
                return Err(beyond_end(target, now, outcome));
            }
        }
        self.seek_to(target)?;
        let at = self.icount();
        match self.ended {
            Some(outcome) if at < target => {
                // The recording ends first: say so, and stand where the seek started.
                let err = beyond_end(target, at, outcome);
                self.seek_to(now)?;
                Err(err)
            }
            _ => Ok(StopReason::SeekDone { icount: at }),
        }
    }

    /// Run and record: reset the machine (as the board's reset line does) at the next
    /// checkpoint, which is the current instruction when the machine runs on; a recording
    /// logs it, so its replay resets at the same instruction.
    pub fn request_reset(&mut self) -> Result<(), SessionError> {
        if self.mode() == Mode::Replay {
            return Err(SessionError::InReplay {
                what: "system_reset",
            });
        }
        self.seeker.machine_mut().request_host_reset();
        Ok(())
    }

    /// Replay: go back one instruction (`HistoryStart` at instruction 0).
    pub fn reverse_step(&mut self) -> Result<StopReason, SessionError> {
        self.require_replay("reverse execution")?;
        let now = self.icount();
        if now <= self.history_start() {
            return Ok(StopReason::HistoryStart);
        }
        self.seek_to(now - 1)?;
        Ok(StopReason::Step)
    }

    /// Execute instructions until hart `hart` has retired one (`Step`), letting the other harts
    /// take their turns before it as the scheduler says; they stop at breakpoints and
    /// watchpoints (then that is the stop). `None` when `budget` instructions ran without
    /// getting there (call again to go on). For the current hart this is [`Session::step`].
    pub fn step_hart(
        &mut self,
        hart: usize,
        budget: u64,
    ) -> Result<Option<StopReason>, SessionError> {
        if hart >= self.machine().harts().len() {
            return Err(SessionError::NoHart {
                hart,
                harts: self.machine().harts().len(),
            });
        }
        let own = self.machine().harts()[hart].icount;
        let mut left = budget;
        loop {
            if self.machine().harts()[hart].icount != own {
                self.focus = Some(hart);
                return Ok(Some(StopReason::Step));
            }
            if left == 0 {
                return Ok(None);
            }
            let stop = if self.machine().current_hart() == hart {
                // Its instruction, unless it waits in `wfi` (then another hart's runs).
                Some(self.step()?).filter(|s| *s != StopReason::Step)
            } else {
                // One instruction at a time: the hart's turn can begin after any of them (a
                // hart waiting in `wfi` ends its turn early).
                self.resume(1)?
            };
            if let Some(stop) = stop {
                return Ok(Some(stop));
            }
            left -= 1;
        }
    }

    /// Replay: go back to just before hart `hart` retired its last instruction (the other
    /// harts' later instructions are undone too). With one hart this is
    /// [`Session::reverse_step`].
    pub fn reverse_step_hart(&mut self, hart: usize) -> Result<StopReason, SessionError> {
        self.require_replay("reverse execution")?;
        let harts = self.machine().harts().len();
        if hart >= harts {
            return Err(SessionError::NoHart { hart, harts });
        }
        if harts == 1 {
            return self.reverse_step();
        }
        let now = self.icount();
        let own = self.machine().harts()[hart].icount;
        // The latest snapshot at which the hart had not retired that instruction yet.
        let mut start = None;
        for s in self.seeker.snapshot_icounts().into_iter().rev() {
            if s >= now {
                continue;
            }
            self.seek_to(s)?;
            if self.icount() == s && self.machine().harts()[hart].icount < own {
                start = Some(s);
                break;
            }
        }
        if start.is_none() {
            let first = self.history_start();
            if self.icount() != first {
                self.seek_to(first)?;
            }
            return Ok(StopReason::HistoryStart);
        }
        // Forward to where the hart's count reaches `own`: it grows by at most one per
        // instruction, so running the difference never overshoots.
        self.clear_hooks();
        loop {
            let got = self.machine().harts()[hart].icount;
            if got >= own || self.icount() >= now {
                break;
            }
            let before = self.icount();
            self.seeker.run(Some(own - got))?;
            if self.icount() == before {
                break;
            }
        }
        let after = self.icount();
        if self.machine().harts()[hart].icount != own || after == 0 {
            // Cannot happen in a replay that got here before: stay where the search ended.
            return Err(SessionError::Machine(MachineError::Config(format!(
                "internal error: hart {hart} did not retire instruction {own} again before \
                 instruction {now} (search stopped at {after})"
            ))));
        }
        self.seek_to(after - 1)?;
        self.focus = Some(hart);
        Ok(StopReason::Step)
    }

    /// After a seek to the position of `hit`: make its hart the current one if the seek stopped
    /// before the scheduler got to it (harts waiting in `wfi` at that instruction count end
    /// their turns without retiring anything), by running into the hit again.
    fn land_on(&mut self, hit: &Hit) -> Result<(), SessionError> {
        let harts = self.machine().harts().len();
        for _ in 0..harts {
            if self.machine().current_hart() == hit.hart || self.icount() != hit.icount {
                break;
            }
            self.install_hooks();
            match self.seeker.run(Some(1))? {
                RunOutcome::Debug(DebugHit::Breakpoint { .. }) if self.icount() == hit.icount => {
                    if self.machine().current_hart() != hit.hart {
                        // Another hart's hit at the same position (reported before this one
                        // in the scan): go past it.
                        self.seeker.machine_mut().hart_mut().skip_breakpoint_once();
                    }
                }
                RunOutcome::Debug(_) if self.icount() == hit.icount => {
                    if self.machine().current_hart() != hit.hart {
                        self.seeker.machine_mut().hart_mut().skip_debug_once();
                    }
                }
                _ => break,
            }
        }
        if self.icount() != hit.icount {
            // Ran past it: stand at the position again (the stop names the hart anyway).
            self.seek_to(hit.icount)?;
        }
        Ok(())
    }

    /// Replay: go back to the most recent breakpoint or watchpoint hit before the current
    /// position (searching snapshot interval by snapshot interval), or to instruction 0
    /// (`HistoryStart`) if there is none.
    pub fn reverse_continue(&mut self) -> Result<StopReason, SessionError> {
        let mut search = self.start_reverse_search()?;
        loop {
            if let Some(stop) = self.continue_reverse_search(&mut search)? {
                return Ok(stop);
            }
        }
    }

    /// Replay: begin a reverse-continue that [`Session::continue_reverse_search`] carries out
    /// one snapshot interval at a time (so a front-end can interrupt a long search).
    pub fn start_reverse_search(&mut self) -> Result<ReverseSearch, SessionError> {
        self.require_replay("reverse execution")?;
        Ok(ReverseSearch {
            segment_end: self.icount(),
        })
    }

    /// Search the snapshot interval before `search`'s position for the last breakpoint or
    /// watchpoint hit. `Some(stop)` when the search is over (the machine is at the hit, or at
    /// the start of history); `None` when the interval had no hit and the search goes on (the
    /// machine then stands at the interval's start, where an interrupted search stops).
    pub fn continue_reverse_search(
        &mut self,
        search: &mut ReverseSearch,
    ) -> Result<Option<StopReason>, SessionError> {
        let first = self.history_start();
        let segment_end = search.segment_end;
        if segment_end <= first {
            if self.icount() != first {
                self.seek_to(first)?;
            }
            return Ok(Some(StopReason::HistoryStart));
        }
        // Snapshots may have been added or thinned by the last scan: look again.
        let s = self
            .seeker
            .snapshot_icounts()
            .into_iter()
            .rev()
            .find(|&i| i < segment_end)
            .unwrap_or(first)
            .max(first);
        self.seek_to(s)?;
        if self.icount() != s {
            // Cannot happen: `s` lies before a position the replay already reached.
            return Err(SessionError::Machine(MachineError::Config(format!(
                "internal error: seeking back to instruction {s} stopped at {}",
                self.icount()
            ))));
        }
        if let Some(hit) = self.scan(segment_end)? {
            self.seek_to(hit.icount)?;
            self.land_on(&hit)?;
            self.note_stop(&hit.reason);
            self.focus = Some(hit.hart);
            return Ok(Some(hit.reason));
        }
        if s <= first {
            self.seek_to(first)?;
            return Ok(Some(StopReason::HistoryStart));
        }
        // Stand at the earliest instruction searched: an interrupted search stops there, with
        // no hit between it and where the search began.
        self.seek_to(s)?;
        search.segment_end = s;
        Ok(None)
    }

    /// Replay: stop when execution reaches instruction `icount` (QEMU's `replay-break`: one at
    /// a time, replaces the previous one, must not lie behind the current position).
    pub fn set_replay_break(&mut self, icount: Option<u64>) -> Result<(), SessionError> {
        self.require_replay("a replay break")?;
        if let Some(target) = icount {
            let now = self.icount();
            if target < now {
                return Err(SessionError::BreakInPast {
                    target,
                    icount: now,
                });
            }
        }
        self.replay_break = icount;
        Ok(())
    }

    /// The replay break, if set.
    pub fn replay_break(&self) -> Option<u64> {
        self.replay_break
    }

    /// Add a breakpoint; false if one of this kind is already there.
    pub fn add_breakpoint(&mut self, pc: u64, kind: BreakKind) -> bool {
        let kinds = self.breakpoints.entry(pc).or_default();
        if kinds.contains(&kind) {
            return false;
        }
        kinds.push(kind);
        true
    }

    /// Remove a breakpoint; false if there was none of this kind.
    pub fn remove_breakpoint(&mut self, pc: u64, kind: BreakKind) -> bool {
        let Some(kinds) = self.breakpoints.get_mut(&pc) else {
            return false;
        };
        let Some(i) = kinds.iter().position(|&k| k == kind) else {
            return false;
        };
        kinds.remove(i);
        if kinds.is_empty() {
            self.breakpoints.remove(&pc);
        }
        true
    }

    /// Add a watchpoint; false if the same one is already set.
    pub fn add_watchpoint(&mut self, watch: Watchpoint) -> bool {
        if self.watchpoints.contains(&watch) {
            return false;
        }
        self.watchpoints.push(watch);
        true
    }

    /// Remove a watchpoint; false if it was not set.
    pub fn remove_watchpoint(&mut self, watch: Watchpoint) -> bool {
        match self.watchpoints.iter().position(|w| *w == watch) {
            Some(i) => {
                self.watchpoints.remove(i);
                true
            }
            None => false,
        }
    }

    /// Read guest memory at a virtual address (translated as the hart would for a load, without
    /// side effects). Bytes outside RAM (and not ROM) are an error.
    pub fn read_memory(&self, addr: u64, buf: &mut [u8]) -> Result<(), SessionError> {
        self.read_memory_as(self.machine().current_hart(), addr, buf)
    }

    /// Read guest memory at a virtual address as hart `hart` sees it (its address space).
    pub fn read_memory_as(
        &self,
        hart: usize,
        addr: u64,
        buf: &mut [u8],
    ) -> Result<(), SessionError> {
        let m = self.machine();
        let harts = m.harts().len();
        let h = m
            .harts()
            .get(hart)
            .ok_or(SessionError::NoHart { hart, harts })?;
        let mut done = 0usize;
        while done < buf.len() {
            let vaddr = addr.wrapping_add(done as u64);
            let n = chunk_len(vaddr, buf.len() - done);
            let chunk = &mut buf[done..done + n];
            let paddr = h
                .debug_translate(m.ram(), vaddr)
                .ok_or(SessionError::BadAddress { addr: vaddr })?;
            if m.ram().read(paddr, chunk).is_err() {
                let rom = &m.bus().rom;
                let bytes = paddr
                    .checked_sub(BOOT_ROM)
                    .and_then(|off| usize::try_from(off).ok())
                    .and_then(|off| rom.get(off..off.checked_add(n)?))
                    .ok_or(SessionError::BadAddress { addr: vaddr })?;
                chunk.copy_from_slice(bytes);
            }
            done += n;
        }
        Ok(())
    }

    /// Write guest memory (run mode only; refused while recording or replaying).
    pub fn write_memory(&mut self, addr: u64, data: &[u8]) -> Result<(), SessionError> {
        self.write_memory_as(self.machine().current_hart(), addr, data)
    }

    /// Write guest memory at a virtual address as hart `hart` sees it (run mode only).
    pub fn write_memory_as(
        &mut self,
        hart: usize,
        addr: u64,
        data: &[u8],
    ) -> Result<(), SessionError> {
        self.require_writable("memory")?;
        // Translate every page first, so that a bad address changes nothing.
        let mut pieces = Vec::new();
        let mut done = 0usize;
        {
            let m = self.machine();
            let harts = m.harts().len();
            let h = m
                .harts()
                .get(hart)
                .ok_or(SessionError::NoHart { hart, harts })?;
            while done < data.len() {
                let vaddr = addr.wrapping_add(done as u64);
                let n = chunk_len(vaddr, data.len() - done);
                let paddr = h
                    .debug_translate(m.ram(), vaddr)
                    .filter(|&p| m.ram().offset(p, n as u64).is_some())
                    .ok_or(SessionError::BadAddress { addr: vaddr })?;
                pieces.push((paddr, done, n));
                done += n;
            }
        }
        let ram = self.seeker.machine_mut().ram_mut();
        for (paddr, from, n) in pieces {
            // `Ram::write` also drops decoded code on the pages written.
            ram.write(paddr, &data[from..from + n])
                .map_err(|_| SessionError::BadAddress {
                    addr: addr.wrapping_add(from as u64),
                })?;
        }
        // The debugger may have rewritten page tables.
        for h in self.seeker.machine_mut().harts_mut() {
            h.tlb.flush();
        }
        Ok(())
    }

    /// Write registers (run mode only): `f` is applied to the current hart.
    pub fn write_registers(
        &mut self,
        f: impl FnOnce(&mut rewind_cpu::Hart),
    ) -> Result<(), SessionError> {
        self.write_registers_of(self.machine().current_hart(), f)
    }

    /// Write registers of hart `hart` (run mode only): `f` is applied to it.
    pub fn write_registers_of(
        &mut self,
        hart: usize,
        f: impl FnOnce(&mut rewind_cpu::Hart),
    ) -> Result<(), SessionError> {
        self.require_writable("registers")?;
        let harts = self.machine().harts().len();
        let h = self
            .seeker
            .machine_mut()
            .harts_mut()
            .get_mut(hart)
            .ok_or(SessionError::NoHart { hart, harts })?;
        f(h);
        Ok(())
    }

    /// Confine clients' file commands to `dir` (`--sandbox`): their paths are then taken
    /// relative to it and must stay inside it (no `..`, no symlink leading out).
    pub fn set_sandbox(&mut self, dir: &Path) -> std::io::Result<()> {
        self.sandbox = Some(dir.canonicalize()?);
        Ok(())
    }

    /// The file a client's `path` names: itself, or with a sandbox, the path inside it (the
    /// directory holding it resolved, symlinks included, and checked to be inside).
    fn client_path(&self, path: &Path) -> Result<PathBuf, SessionError> {
        let Some(dir) = &self.sandbox else {
            return Ok(path.to_path_buf());
        };
        let outside = || SessionError::OutsideSandbox {
            path: path.to_path_buf(),
            dir: dir.clone(),
        };
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            dir.join(path)
        };
        let name = joined.file_name().ok_or_else(outside)?;
        let parent = joined.parent().ok_or_else(outside)?;
        let parent = parent.canonicalize().map_err(|_| outside())?;
        if !parent.starts_with(dir) {
            return Err(outside());
        }
        let file = parent.join(name);
        // The last component must not be a symlink (it could point anywhere).
        if std::fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(outside());
        }
        Ok(file)
    }

    /// Save a snapshot of the machine now to `path`, a new file unless `overwrite` (then a
    /// regular one); never the trace or its snapshot file (see
    /// [`rewind_machine::snapshot::save_file_checked`]).
    pub fn save_snapshot(&mut self, path: &Path, overwrite: bool) -> Result<(), SessionError> {
        let path = &self.client_path(path)?;
        let snap = self.seeker.machine_mut().snapshot(None)?;
        let protected: Vec<PathBuf> = match &self.trace {
            Some(t) => {
                let sidecar = rewind_machine::sidecar::sidecar_path(t);
                let mut tmp = sidecar.as_os_str().to_os_string();
                tmp.push(format!(".tmp-{}", std::process::id()));
                vec![t.clone(), sidecar, PathBuf::from(tmp)]
            }
            None => Vec::new(),
        };
        let protected: Vec<&Path> = protected.iter().map(PathBuf::as_path).collect();
        rewind_machine::snapshot::save_file_checked(path, &snap, overwrite, &protected)?;
        Ok(())
    }

    /// Replay: load a snapshot file taken on this trace and continue from its position.
    pub fn load_snapshot(&mut self, path: &Path) -> Result<(), SessionError> {
        self.require_replay("loading a snapshot")?;
        let path = &self.client_path(path)?;
        let snap = rewind_machine::snapshot::load_file(path)?;
        self.seeker.machine_mut().restore(&snap)?;
        self.moved();
        Ok(())
    }

    /// Refuse an operation outside replay.
    fn require_replay(&self, what: &'static str) -> Result<(), SessionError> {
        match self.mode() {
            Mode::Replay => Ok(()),
            Mode::Run => Err(SessionError::NotReplaying { what, mode: "run" }),
            Mode::Record => Err(SessionError::NotReplaying {
                what,
                mode: "record",
            }),
        }
    }

    /// Refuse a state change while recording or replaying.
    fn require_writable(&self, what: &'static str) -> Result<(), SessionError> {
        match self.mode() {
            Mode::Run => Ok(()),
            Mode::Record => Err(SessionError::WriteRefused {
                what,
                mode: "recording",
            }),
            Mode::Replay => Err(SessionError::WriteRefused {
                what,
                mode: "replaying",
            }),
        }
    }

    /// The earliest position reverse execution can reach (the first snapshot).
    fn history_start(&self) -> u64 {
        self.seeker.snapshot_icounts().first().copied().unwrap_or(0)
    }

    /// The kind reported for a breakpoint at `pc`.
    fn kind_at(&self, pc: u64) -> BreakKind {
        self.breakpoints
            .get(&pc)
            .and_then(|k| k.first().copied())
            .unwrap_or(BreakKind::Software)
    }

    /// Give every hart the session's breakpoints and watchpoints (set before each run, so a
    /// restore or seek that replaced the harts gets them too).
    fn install_hooks(&mut self) {
        let pcs: Vec<u64> = self.breakpoints.keys().copied().collect();
        let only = self.only;
        for (i, hart) in self.seeker.machine_mut().harts_mut().iter_mut().enumerate() {
            if only.is_none_or(|h| h == i) {
                hart.set_breakpoints(&pcs);
                hart.set_watchpoints(&self.watchpoints);
            } else {
                hart.set_breakpoints(&[]);
                hart.set_watchpoints(&[]);
            }
        }
    }

    /// Take the hooks off every hart (seeks must not stop at them).
    fn clear_hooks(&mut self) {
        for hart in self.seeker.machine_mut().harts_mut() {
            hart.set_breakpoints(&[]);
            hart.set_watchpoints(&[]);
        }
    }

    /// Replay: true when the machine stands where the recording ends (the next logged event is
    /// the trace's `End`, due now).
    fn at_trace_end(&self) -> bool {
        let b = self.machine().boundary();
        b.mode() == Mode::Replay
            && b.replay_at_end()
            && b.next_event_icount() == Some(self.icount())
    }

    /// Forward execution cannot go on: remember why and, the first time a replay gets to its
    /// end, check the end against the trace.
    fn mark_ended(&mut self, outcome: RunOutcome) -> Result<(), SessionError> {
        self.ended = Some(outcome);
        if self.mode() == Mode::Replay {
            self.end_outcome.get_or_insert(outcome);
            if !self.end_verified {
                self.end_verified = true;
                self.seeker.machine_mut().finish_replay()?;
            }
        }
        Ok(())
    }

    /// `Some(Ended)` when forward execution cannot go on from here (noticing a replay that
    /// reached its end by a seek or a restore).
    fn check_at_end(&mut self) -> Result<Option<StopReason>, SessionError> {
        if self.ended.is_none() && self.at_trace_end() {
            let outcome = self.end_outcome.unwrap_or(RunOutcome::InstructionLimit);
            self.mark_ended(outcome)?;
        }
        Ok(self.ended.map(StopReason::Ended))
    }

    /// The machine was put somewhere else (seek, restore): it is no longer known to be at the
    /// end (see [`Session::check_at_end`]), and a replay break behind it can never be reached.
    fn moved(&mut self) {
        self.ended = None;
        self.watch_stop = None;
        self.focus = None;
        let now = self.icount();
        if self.replay_break.is_some_and(|b| b < now) {
            self.replay_break = None;
        }
    }

    /// Seek with the hooks off. Reaching the end of the recording first marks the session
    /// ended there (the caller compares the position with its target).
    fn seek_to(&mut self, target: u64) -> Result<(), SessionError> {
        if self.ended.is_some() && target >= self.icount() {
            // Nothing to run: the machine already stands at the end.
            return Ok(());
        }
        self.clear_hooks();
        let r = self.seeker.seek(target);
        // Wherever the seek stopped, the machine moved (even on an error after a restore).
        self.moved();
        match r? {
            SeekResult::Reached => self.check_at_end().map(|_| ()),
            SeekResult::Ended(outcome) => self.mark_ended(outcome),
        }
    }

    /// After a stop: remember a watchpoint stop, so that resuming executes the instruction.
    fn note_stop(&mut self, stop: &StopReason) {
        self.watch_stop = match stop {
            StopReason::Watchpoint { .. } => Some((self.icount(), self.machine().hart().pc)),
            _ => None,
        };
    }

    /// Run forward until icount `end` unless the run stops earlier for another reason.
    fn run_until(&mut self, end: u64) -> Result<RunOutcome, SessionError> {
        loop {
            let before = self.icount();
            let outcome = self.seeker.run(Some(end.saturating_sub(before)))?;
            let now = self.icount();
            // The seeker may return between snapshots; go on unless the recording ended.
            if outcome == RunOutcome::InstructionLimit
                && now < end
                && now > before
                && !self.at_trace_end()
            {
                continue;
            }
            return Ok(outcome);
        }
    }

    /// The stop reason of a forward run that was to end at `end`; `None` when it simply got
    /// there.
    fn classify(
        &mut self,
        outcome: RunOutcome,
        end: u64,
    ) -> Result<Option<StopReason>, SessionError> {
        match outcome {
            RunOutcome::Debug(DebugHit::Breakpoint { pc }) => Ok(Some(StopReason::Breakpoint {
                pc,
                kind: self.kind_at(pc),
            })),
            RunOutcome::Debug(DebugHit::Watchpoint {
                watch,
                access,
                addr,
            }) => Ok(Some(StopReason::Watchpoint {
                watch,
                access,
                addr,
            })),
            RunOutcome::InstructionLimit if self.icount() >= end && !self.at_trace_end() => {
                Ok(None)
            }
            other => {
                self.mark_ended(other)?;
                if self.replay_break.is_some_and(|b| b <= self.icount()) {
                    self.replay_break = None;
                }
                Ok(Some(StopReason::Ended(other)))
            }
        }
    }

    /// Run forward from the current position (a snapshot) to `segment_end` with the hooks on,
    /// going on past every hit, and return the last hit that lies before `segment_end`.
    fn scan(&mut self, segment_end: u64) -> Result<Option<Hit>, SessionError> {
        self.install_hooks();
        let mut last = None;
        let mut last_break: Option<(u64, u64, usize)> = None;
        loop {
            let now = self.icount();
            if now >= segment_end {
                break;
            }
            let outcome = self.seeker.run(Some(segment_end - now))?;
            let at = self.icount();
            match outcome {
                RunOutcome::Debug(DebugHit::Breakpoint { pc }) => {
                    let hart = self.machine().current_hart();
                    if last_break == Some((at, pc, hart)) {
                        return Err(SessionError::Machine(MachineError::Config(format!(
                            "internal error: the hart stopped twice at the breakpoint at \
                             {pc:#x} (instruction {at}) without executing it"
                        ))));
                    }
                    last_break = Some((at, pc, hart));
                    if at < segment_end {
                        last = Some(Hit {
                            icount: at,
                            reason: StopReason::Breakpoint {
                                pc,
                                kind: self.kind_at(pc),
                            },
                            hart,
                        });
                    }
                    self.seeker.machine_mut().hart_mut().skip_breakpoint_once();
                }
                RunOutcome::Debug(DebugHit::Watchpoint {
                    watch,
                    access,
                    addr,
                }) => {
                    // The run stopped before the accessing instruction (never at `segment_end`:
                    // the run ends there first).
                    if at < segment_end {
                        last = Some(Hit {
                            icount: at,
                            reason: StopReason::Watchpoint {
                                watch,
                                access,
                                addr,
                            },
                            hart: self.machine().current_hart(),
                        });
                    }
                    self.seeker.machine_mut().hart_mut().skip_debug_once();
                }
                RunOutcome::InstructionLimit if at > now => {}
                // The end of the recording (only at `segment_end`, which was reached before)
                // or no progress: nothing more to scan.
                _ => break,
            }
        }
        Ok(last)
    }
}

/// Bytes from `vaddr` to the end of its page, at most `left`.
fn chunk_len(vaddr: u64, left: usize) -> usize {
    let in_page = PAGE_SIZE - (vaddr & (PAGE_SIZE - 1));
    usize::try_from(in_page).map_or(left, |p| p.min(left))
}

/// The error for a seek to `target` past a recording that ends at `end` with `outcome`.
fn beyond_end(target: u64, end: u64, outcome: RunOutcome) -> SessionError {
    let how = match outcome {
        RunOutcome::Exited(code) => format!("the guest exited with status {code}"),
        RunOutcome::HostQuit(cause) => format!("the recording was stopped by {cause}"),
        RunOutcome::InstructionLimit => "the recording stops there".to_string(),
        RunOutcome::Debug(_) => "it stopped there".to_string(),
    };
    SessionError::BeyondEnd { target, end, how }
}
