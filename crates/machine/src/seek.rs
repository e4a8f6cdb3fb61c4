//! Seeking in a replay: keep in-memory snapshots every `interval` instructions on the way, and
//! reach any instruction count by restoring the nearest snapshot at or before it and replaying
//! forward (design §7: `seek N`; reverse-stepi is `seek(icount - 1)`).

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
#[derive(Debug)]
pub struct Seeker {
    machine: Machine,
    interval: u64,
    /// Sorted by icount, at most one per icount.
    snapshots: Vec<Snapshot>,
}

impl Seeker {
    /// Wrap `machine` (usually a fresh replay), taking a snapshot every `interval` instructions
    /// (at least 1) and one now. Guest output is handed to the sink once, however often a
    /// stretch is re-executed.
    pub fn new(mut machine: Machine, interval: u64) -> Result<Self, MachineError> {
        machine.set_output_once(true);
        let first = machine.snapshot(None)?;
        Ok(Seeker {
            machine,
            interval: interval.max(1),
            snapshots: vec![first],
        })
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The machine, mutably (e.g. to finish the replay).
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.machine
    }

    /// Instruction counts of the snapshots held.
    pub fn snapshot_icounts(&self) -> Vec<u64> {
        self.snapshots.iter().map(Snapshot::icount).collect()
    }

    /// Bring the machine to instruction count `target`, backwards or forwards.
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
            let next_snap = (now / self.interval + 1).saturating_mul(self.interval);
            let stop = next_snap.min(target);
            let outcome = self.machine.run(Some(stop - now))?;
            let at = self.machine.icount();
            if outcome != RunOutcome::InstructionLimit || at != stop {
                return Ok(SeekResult::Ended(outcome));
            }
            if at == next_snap {
                self.take_snapshot()?;
            }
        }
    }

    /// Snapshot the machine now (kept sorted; pages shared with the snapshot before it).
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
        Ok(())
    }
}
