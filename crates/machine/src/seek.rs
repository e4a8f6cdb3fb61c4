//! Seeking: keep in-memory snapshots every `interval` instructions while the machine runs
//! (recording or replaying), and reach any instruction count of a replay by restoring the
//! nearest snapshot at or before it and replaying forward (design §7: `seek N`; reverse-stepi
//! is `seek(icount - 1)`). A memory budget thins old snapshots.

use std::collections::HashSet;
use std::sync::Arc;

use rewind_cpu::ram::PAGE_SIZE;
use rewind_replay::Mode;

use crate::snapshot::Snapshot;
use crate::{Machine, MachineError, RunOutcome};

/// Where a [`Seeker::seek`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekResult {
    /// The machine is at exactly the instruction count asked for.
    Reached,
    /// The recording ends before it: the machine stopped there with this outcome.
    Ended(RunOutcome),
}

/// A machine plus the snapshots taken while it ran.
pub struct Seeker {
    machine: Machine,
    interval: u64,
    /// Sorted by icount, at most one per icount.
    snapshots: Vec<Snapshot>,
    /// Most bytes the snapshots may hold (`None`: no limit).
    budget: Option<u64>,
    /// Bytes the snapshots hold now (see [`Seeker::snapshot_memory`]).
    memory: u64,
    /// Told of every periodic snapshot taken (e.g. to write the recording's sidecar while
    /// the recording runs).
    sink: Option<SnapshotSink>,
}

/// Receives each snapshot a [`Seeker`] takes.
pub type SnapshotSink = Box<dyn FnMut(&Snapshot) + Send>;

/// Bytes a snapshot holds besides its RAM pages: the structure, its page table, the ROM.
fn fixed_cost(s: &Snapshot) -> u64 {
    let table = std::mem::size_of_val(s.ram.pages());
    let id = s.trace_id.as_ref().map_or(0, String::len);
    (std::mem::size_of::<Snapshot>() + table + s.bus.rom.len() + id) as u64
}

/// Bytes of the pages only `s` holds. Exact when nothing outside the seeker holds a clone of
/// its pages (a clone held elsewhere only makes the count higher, never lower, at insertion).
fn own_pages_cost(s: &Snapshot, ram: &rewind_cpu::Ram) -> u64 {
    // RAM keeps the image it last matched, sharing its pages: that reference is not a holder.
    let clean = ram
        .clean_image()
        .map(|c| c.pages())
        .filter(|c| c.len() == s.ram.pages().len());
    let own = s
        .ram
        .pages()
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        .filter(|(i, p)| {
            let by_ram = clean
                .and_then(|c| c[*i].as_ref())
                .is_some_and(|c| Arc::ptr_eq(c, p));
            Arc::strong_count(p) - usize::from(by_ram) == 1
        })
        .count();
    own as u64 * PAGE_SIZE
}

impl std::fmt::Debug for Seeker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seeker")
            .field("machine", &self.machine)
            .field("interval", &self.interval)
            .field("snapshots", &self.snapshots.len())
            .field("budget", &self.budget)
            .field("memory", &self.memory)
            .finish_non_exhaustive()
    }
}

impl Seeker {
    /// Hand every snapshot taken from now on to `sink` (after it is counted, before thinning).
    pub fn set_snapshot_sink(&mut self, sink: SnapshotSink) {
        self.sink = Some(sink);
    }

    /// Wrap `machine` (a fresh replay, or a recording machine before its first run), taking a
    /// snapshot every `interval` instructions (at least 1) and one now. Guest output is handed
    /// to the sink once, however often a stretch is re-executed. No memory budget at first.
    pub fn new(mut machine: Machine, interval: u64) -> Result<Self, MachineError> {
        machine.set_output_once(true);
        let first = machine.snapshot(None)?;
        let mut s = Seeker {
            machine,
            interval: interval.max(1),
            snapshots: vec![first],
            budget: None,
            memory: 0,
            sink: None,
        };
        s.memory = fixed_cost(&s.snapshots[0]) + own_pages_cost(&s.snapshots[0], s.machine.ram());
        Ok(s)
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The machine, mutably (e.g. to finish the replay).
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.machine
    }

    /// The snapshots held, oldest first (e.g. to write them to a sidecar file).
    pub fn snapshots(&self) -> &[Snapshot] {
        &self.snapshots
    }

    /// The machine and the snapshots, oldest first.
    pub fn into_parts(self) -> (Machine, Vec<Snapshot>) {
        (self.machine, self.snapshots)
    }

    /// Run forward like [`Machine::run`], stopping every `interval` instructions to take a
    /// snapshot (record and replay modes; none in `run` mode), thinning old snapshots to stay
    /// within the memory budget. Returns the machine's outcome (including
    /// [`RunOutcome::Debug`] when a hook on the hart fires).
    ///
    /// Returns only when the machine's run stops for a reason of its own or at `limit`. While
    /// recording, every stop at an instruction limit, `limit` included, is a pause that logs
    /// nothing (a debugger may step on); to end the recording there, call
    /// [`Machine::log_end_of_recording`] before finishing it.
    pub fn run(&mut self, limit: Option<u64>) -> Result<RunOutcome, MachineError> {
        let mode = self.machine.boundary().mode();
        if mode == Mode::Run {
            return self.machine.run(limit);
        }
        let end = limit.map(|l| self.machine.icount().saturating_add(l));
        loop {
            let now = self.machine.icount();
            let next_snap = self.next_snapshot_icount(now);
            let stop = end.map_or(next_snap, |e| e.min(next_snap));
            let outcome = self.run_paused(stop - now)?;
            let at = self.machine.icount();
            if outcome != RunOutcome::InstructionLimit || at != stop || self.recording_ended() {
                return Ok(outcome);
            }
            if at == next_snap {
                self.take_snapshot()?;
            }
            if Some(at) == end {
                return Ok(outcome);
            }
        }
    }

    /// Bytes of memory the snapshots hold (RAM pages counted once however many snapshots share
    /// them, plus hart/device state).
    pub fn snapshot_memory(&self) -> u64 {
        self.memory
    }

    /// Keep the snapshots within `bytes` (None: no limit) by thinning old ones (the first is
    /// always kept).
    pub fn set_budget(&mut self, bytes: Option<u64>) {
        self.budget = bytes;
        self.thin();
    }

    /// The memory budget (see [`Seeker::set_budget`]).
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    /// Add snapshots taken elsewhere (e.g. loaded from a recording's sidecar file, see
    /// [`crate::sidecar`]); one at an icount already held is ignored. The budget applies.
    /// They are checked when restored ([`Machine::restore`]).
    pub fn add_snapshots(&mut self, snaps: impl IntoIterator<Item = Snapshot>) {
        for snap in snaps {
            let at = snap.icount();
            let pos = self.snapshots.partition_point(|s| s.icount() < at);
            if self.snapshots.get(pos).is_some_and(|s| s.icount() == at) {
                continue;
            }
            self.snapshots.insert(pos, snap);
        }
        self.memory = self.count_memory();
        self.thin();
    }

    /// Instructions between two periodic snapshots.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Instruction counts of the snapshots held.
    pub fn snapshot_icounts(&self) -> Vec<u64> {
        self.snapshots.iter().map(Snapshot::icount).collect()
    }

    /// Bring the machine to instruction count `target`, backwards or forwards. Backwards (or
    /// to a snapshot ahead of the machine) works in replay only: a recording cannot go back.
    pub fn seek(&mut self, target: u64) -> Result<SeekResult, MachineError> {
        let now = self.machine.icount();
        // The last snapshot at or before the target.
        let best = self
            .snapshots
            .iter()
            .rposition(|s| s.icount() <= target)
            .unwrap_or(0);
        let snap_icount = self.snapshots[best].icount();
        if target < now || snap_icount > now {
            let snap = &self.snapshots[best];
            self.machine.restore(snap)?;
        }
        loop {
            let now = self.machine.icount();
            if now >= target {
                return Ok(SeekResult::Reached);
            }
            let next_snap = self.next_snapshot_icount(now);
            let stop = next_snap.min(target);
            let outcome = self.run_paused(stop - now)?;
            let at = self.machine.icount();
            if outcome != RunOutcome::InstructionLimit || at != stop || self.recording_ended() {
                if at == target && outcome == RunOutcome::InstructionLimit {
                    // The recording ends exactly at the target: the machine is there.
                    return Ok(SeekResult::Reached);
                }
                return Ok(SeekResult::Ended(outcome));
            }
            if at == next_snap {
                self.take_snapshot()?;
            }
        }
    }

    /// The first multiple of the interval after `now`.
    fn next_snapshot_icount(&self, now: u64) -> u64 {
        (now / self.interval + 1).saturating_mul(self.interval)
    }

    /// `Machine::run(Some(n))` where reaching the limit is a pause, not the end of a recording.
    fn run_paused(&mut self, n: u64) -> Result<RunOutcome, MachineError> {
        self.machine.set_pause_at_limit(true);
        let r = self.machine.run(Some(n));
        self.machine.set_pause_at_limit(false);
        r
    }

    /// Replay: the instruction limit just reached is where the recording ends (the next
    /// logged event is its `End`), so nothing can run on from here.
    fn recording_ended(&self) -> bool {
        let b = self.machine.boundary();
        b.mode() == Mode::Replay && b.replay_at_end()
    }

    /// Snapshot the machine now (kept sorted; pages shared with the snapshot before it), then
    /// thin to the budget.
    fn take_snapshot(&mut self) -> Result<(), MachineError> {
        let at = self.machine.icount();
        let pos = self.snapshots.partition_point(|s| s.icount() < at);
        if self.snapshots.get(pos).is_some_and(|s| s.icount() == at) {
            return Ok(());
        }
        let snap = self
            .machine
            .snapshot(pos.checked_sub(1).map(|p| &self.snapshots[p]))?;
        self.snapshots.insert(pos, snap);
        // Pages new in this snapshot are held by it alone.
        self.memory += fixed_cost(&self.snapshots[pos])
            + own_pages_cost(&self.snapshots[pos], self.machine.ram());
        if let Some(sink) = self.sink.as_mut() {
            sink(&self.snapshots[pos]);
        }
        self.thin();
        Ok(())
    }

    /// Drop the snapshot at `index` (never the first), keeping the memory count.
    fn remove(&mut self, index: usize) {
        let s = &self.snapshots[index];
        let freed = fixed_cost(s) + own_pages_cost(s, self.machine.ram());
        self.snapshots.remove(index);
        self.memory = self.memory.saturating_sub(freed);
    }

    /// Recount the memory held from scratch (after snapshots came from elsewhere).
    fn count_memory(&self) -> u64 {
        let mut seen = HashSet::new();
        let mut total = 0;
        for s in &self.snapshots {
            total += fixed_cost(s);
            for p in s.ram.pages().iter().flatten() {
                if seen.insert(Arc::as_ptr(p)) {
                    total += PAGE_SIZE;
                }
            }
        }
        total
    }

    /// While over budget, drop every other snapshot of the older half, oldest first: the
    /// first is kept, and the spacing stays even (it doubles in the older half at each pass),
    /// so recent history stays dense and old history coarse.
    fn thin(&mut self) {
        let Some(budget) = self.budget else {
            return;
        };
        while self.memory > budget && self.snapshots.len() > 1 {
            let n = self.snapshots.len();
            let half = (n / 2).max(2);
            let victims: Vec<usize> = (1..half).step_by(2).collect();
            for (done, &i) in victims.iter().enumerate() {
                if self.memory <= budget {
                    return;
                }
                self.remove(i - done);
            }
        }
    }
}
