//! Debugger hooks: breakpoints on the program counter and watchpoints on data accesses, both on
//! virtual addresses as the debugger sees them. They cost one predictable branch per block when
//! none is set, and are not part of the architectural state (snapshots neither save nor restore
//! them).

use crate::hart::Hart;
use crate::ram::Ram;

/// What kind of data access a watchpoint catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum WatchKind {
    /// Stores (including AMOs and successful SCs).
    Write,
    /// Loads (including AMOs and LRs).
    Read,
    /// Loads and stores.
    Access,
}

/// A watched range of virtual addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Watchpoint {
    /// First watched byte.
    pub addr: u64,
    /// Bytes watched (at least 1).
    pub len: u64,
    /// Accesses that trigger it.
    pub kind: WatchKind,
}

/// Why the hart stopped with [`crate::ExitReason::Debug`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DebugHit {
    /// The instruction at `pc` is about to execute (it has not: icount does not count it).
    Breakpoint {
        /// The breakpoint's address (= the hart's pc).
        pc: u64,
    },
    /// The instruction at the current pc is about to access a watched range (it has not
    /// executed: stopping before the access is what gdb expects of RISC-V, whose debug triggers
    /// fire before the access). An access that would trap still reports the hit.
    Watchpoint {
        /// The watchpoint that fired (as it was set).
        watch: Watchpoint,
        /// The access that fired it: `Read` or `Write` (an AMO reports `Write`).
        access: WatchKind,
        /// First byte of the access (virtual).
        addr: u64,
    },
}

/// The debugger's breakpoints and watchpoints on one hart.
#[derive(Debug, Clone, Default)]
pub struct DebugHooks {
    /// Breakpoint addresses (virtual), sorted, no duplicates.
    pub(crate) breakpoints: Vec<u64>,
    /// Watched ranges.
    pub(crate) watchpoints: Vec<Watchpoint>,
    /// Do not stop at a breakpoint or watchpoint for the first instruction of the next `run`
    /// if it is at this pc.
    pub(crate) skip_at: Option<(u64, bool)>,
    /// Set by `run` from `skip_at`: the skipped first instruction skips watchpoints too.
    pub(crate) skip_watch: bool,
    /// The hit that ended the last `run` with `ExitReason::Debug`.
    pub(crate) hit: Option<DebugHit>,
}

impl DebugHooks {
    /// Is any breakpoint or watchpoint set? `run` picks its checking interpreter on this.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        !self.breakpoints.is_empty() || !self.watchpoints.is_empty()
    }

    /// Is any breakpoint in `[lo, hi)`? (One binary search per block in the checking
    /// interpreter, so blocks without breakpoints need no per-instruction check.)
    #[inline]
    pub(crate) fn breakpoint_in(&self, lo: u64, hi: u64) -> bool {
        let i = self.breakpoints.partition_point(|&b| b < lo);
        self.breakpoints.get(i).is_some_and(|&b| b < hi)
    }

    /// Is there a breakpoint at `pc`?
    #[inline]
    pub(crate) fn is_breakpoint(&self, pc: u64) -> bool {
        self.breakpoints.binary_search(&pc).is_ok()
    }

    /// The instruction about to execute will access `[addr, addr+size)`: if that fires a
    /// watchpoint (the first in the order they were set), record the hit and return true. An
    /// access that both reads and writes (AMO) reports `Write` to `Write`/`Access` watches and
    /// `Read` to `Read` ones.
    pub(crate) fn watch_check(&mut self, addr: u64, size: u64, read: bool, write: bool) -> bool {
        let last = addr.saturating_add(size.max(1) - 1);
        for w in &self.watchpoints {
            let w_last = w.addr.saturating_add(w.len.max(1) - 1);
            if addr > w_last || w.addr > last {
                continue;
            }
            let access = match w.kind {
                WatchKind::Write | WatchKind::Access if write => WatchKind::Write,
                WatchKind::Read | WatchKind::Access if read => WatchKind::Read,
                _ => continue,
            };
            self.hit = Some(DebugHit::Watchpoint {
                watch: *w,
                access,
                addr,
            });
            return true;
        }
        false
    }
}

impl Hart {
    /// Replace the breakpoints (virtual pcs).
    pub fn set_breakpoints(&mut self, pcs: &[u64]) {
        let mut b = pcs.to_vec();
        b.sort_unstable();
        b.dedup();
        self.debug.breakpoints = b;
    }

    /// Replace the watchpoints.
    pub fn set_watchpoints(&mut self, watches: &[Watchpoint]) {
        self.debug.watchpoints = watches.to_vec();
    }

    /// Let the first instruction of the next `run` execute even if a breakpoint is at its pc
    /// (to resume from a breakpoint stop; its data accesses are still watched). Cleared by the
    /// next `run`.
    pub fn skip_breakpoint_once(&mut self) {
        self.debug.skip_at = Some((self.pc, false));
    }

    /// Let the first instruction of the next `run` execute even if a breakpoint is at its pc or
    /// its access is watched (to resume from a watchpoint stop). Cleared by the next `run`.
    pub fn skip_debug_once(&mut self) {
        self.debug.skip_at = Some((self.pc, true));
    }

    /// The hit that ended the last `run` with `ExitReason::Debug` (taken: a second call gives
    /// `None`).
    pub fn take_debug_hit(&mut self) -> Option<DebugHit> {
        self.debug.hit.take()
    }

    /// Translate a virtual address as a load in the current privilege mode would (ignoring
    /// `mstatus.MPRV`), without side effects: no TLB fill, no accessed/dirty bit updates, no
    /// trap. `None` when unmapped or not readable.
    pub fn debug_translate(&self, ram: &Ram, vaddr: u64) -> Option<u64> {
        self.peek_translate(ram, vaddr)
    }
}
