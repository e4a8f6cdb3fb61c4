//! Debugger hooks: breakpoints on the program counter and watchpoints on data accesses, both on
//! virtual addresses as the debugger sees them. They cost one predictable branch per block when
//! none is set, and are not part of the architectural state (snapshots neither save nor restore
//! them).
//!
//! The same machinery runs the guest's own Sdtrig triggers (tdata1/tdata2, see csr.rs): while
//! one is enabled the checking interpreter runs, and a match raises a breakpoint exception
//! (cause 3) before the instruction executes or accesses memory, as QEMU 10's debug.c does.

use crate::csr::{
    TDATA1_EXEC, TDATA1_LOAD, TDATA1_MODES, TDATA1_STORE, TRIGGERS, TTYPE_MCONTROL, TTYPE_MCONTROL6,
};
use crate::hart::Hart;
use crate::jit::WatchWindow;
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
    /// Watched ranges of physical addresses (an access fires one whatever virtual address
    /// it used).
    pub(crate) phys_watchpoints: Vec<Watchpoint>,
    /// Do not stop at a breakpoint or watchpoint for the first instruction of the next `run`
    /// if it is at this pc.
    pub(crate) skip_at: Option<(u64, bool)>,
    /// Set by `run` from `skip_at`: the skipped first instruction skips watchpoints too.
    pub(crate) skip_watch: bool,
    /// The watchpoints changed since the TLB's watch flags were last set (`run` redoes them).
    pub(crate) tlb_marks_stale: bool,
    /// Translated code's watch windows of loads and of stores ([`crate::jit::WatchWindow`]),
    /// redone with the TLB's watch flags.
    pub(crate) jit_windows: [WatchWindow; 2],
    /// The hit that ended the last `run` with `ExitReason::Debug`.
    pub(crate) hit: Option<DebugHit>,
    /// The guest's enabled Sdtrig triggers (derived from tdata1/tdata2/tdata3/mcontext).
    pub(crate) triggers: Vec<Trigger>,
    /// Addresses of enabled execute triggers, sorted (searched per block with `breakpoints`).
    pub(crate) trigger_pcs: Vec<u64>,
    /// Counts of retired instructions by privilege and pc, while an analysis wants them.
    pub(crate) coverage: Option<Box<Coverage>>,
    /// System call entries (`ecall` from U-mode) and returns (`sret` to U-mode), while an
    /// analysis wants them.
    pub(crate) syscalls: Option<Box<SyscallLog>>,
}

/// A system call boundary: an `ecall` from U-mode, or an `sret` back to U-mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallEvent {
    /// `true`: the `ecall`; `false`: the `sret`.
    pub call: bool,
    /// The instruction count at the `ecall` / `sret` (the hart's own count until the machine
    /// turns it into the global one, see [`SyscallLog::to_global`]).
    pub icount: u64,
    /// The `ecall`'s pc, or the U-mode pc the `sret` returns to.
    pub pc: u64,
    /// `satp` (the address space).
    pub satp: u64,
    /// The stack pointer (x2): a thread's is the same at its call and its return.
    pub sp: u64,
    /// Call: a7 (the number), a0..a5; return: a0 (the result) in `regs[1]`.
    pub regs: [u64; 7],
}

/// The system call boundaries a hart crossed (see [`Hart::set_syscall_log`]).
#[derive(Debug, Clone, Default)]
pub struct SyscallLog {
    /// The events, oldest first.
    pub events: Vec<SyscallEvent>,
    /// Events before this one have global instruction counts.
    global: usize,
}

impl SyscallLog {
    /// The hart just ran from its own count `hart_before`, which was the global count
    /// `global_before`: give the events of that run global counts.
    pub fn to_global(&mut self, hart_before: u64, global_before: u64) {
        for e in &mut self.events[self.global..] {
            e.icount = global_before.wrapping_add(e.icount.wrapping_sub(hart_before));
        }
        self.global = self.events.len();
    }
}

/// Counts of retired instructions by (privilege, pc).
pub type CoverageCounts =
    std::collections::HashMap<(u8, u64), u64, std::hash::BuildHasherDefault<PcHasher>>;

/// A fast hasher for pcs (FxHash's multiply-rotate): counting runs once per retired
/// instruction, where SipHash would cost more than the instruction. Not DoS-resistant; the
/// keys are the guest's own pcs.
#[derive(Debug, Clone, Copy, Default)]
pub struct PcHasher(u64);

impl std::hash::Hasher for PcHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

/// Retired instructions counted by privilege level and pc (see [`Hart::set_coverage`]).
///
/// The checking interpreter notes each instruction it starts with its icount; the one noted
/// before it retired if the next one starts at a later icount (an instruction that traps is
/// noted again at the same icount by the handler's first instruction, replacing it).
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Retired instructions by (privilege as in `mstatus.MPP`, pc).
    pub counts: CoverageCounts,
    /// The last instruction started: (icount, pc, privilege); not known yet to have retired.
    pending: Option<(u64, u64, u8)>,
}

impl Coverage {
    /// The instruction at `pc` starts with the hart at `icount`.
    #[inline]
    pub(crate) fn visit(&mut self, icount: u64, pc: u64, prv: u8) {
        if let Some((c, p, m)) = self.pending {
            if c < icount {
                *self.counts.entry((m, p)).or_insert(0) += 1;
            }
        }
        self.pending = Some((icount, pc, prv));
    }

    /// A run ended with the hart at `icount`: the pending instruction retired if it started
    /// before it (otherwise it runs again, and is noted again, in the next run).
    pub(crate) fn settle(&mut self, icount: u64) {
        if let Some((c, p, m)) = self.pending.take() {
            if c < icount {
                *self.counts.entry((m, p)).or_insert(0) += 1;
            }
        }
    }
}

/// An enabled address-match trigger (mcontrol or mcontrol6), decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trigger {
    /// tdata2: the address.
    addr: u64,
    /// Bytes from `addr` that a data access must touch (1 for size "any").
    len: u64,
    /// Execute / load / store bits.
    exec: bool,
    load: bool,
    store: bool,
    /// tdata1 mode bits (bit 3 + privilege).
    modes: u64,
    /// textra says the trigger only fires while mcontext = mhvalue and they differ.
    context_blocked: bool,
}

impl DebugHooks {
    /// Is any breakpoint or watchpoint set? `run` picks its checking interpreter on this.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        !self.breakpoints.is_empty()
            || !self.watchpoints.is_empty()
            || !self.phys_watchpoints.is_empty()
            || !self.triggers.is_empty()
            || self.coverage.is_some()
    }

    /// Can translated code run with these hooks? Breakpoints and watchpoints only: guest
    /// triggers and coverage need the checking interpreter's per-instruction work.
    #[inline]
    pub(crate) fn jit_compatible(&self) -> bool {
        self.triggers.is_empty() && self.coverage.is_none()
    }

    /// Is any guest trigger (Sdtrig) enabled?
    #[inline]
    pub(crate) fn has_triggers(&self) -> bool {
        !self.triggers.is_empty()
    }

    /// Is any watchpoint set?
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        !self.watchpoints.is_empty() || !self.phys_watchpoints.is_empty()
    }

    /// Does a watchpoint cover part of the virtual page `vpage` or of the physical page
    /// `ppage`? (The TLB flags such pages, so that the fast paths miss on them.)
    #[inline]
    pub(crate) fn watches_page(&self, vpage: u64, ppage: u64) -> bool {
        fn covers(ws: &[Watchpoint], page: u64) -> bool {
            let last = page | (crate::ram::PAGE_SIZE - 1);
            ws.iter()
                .any(|w| w.addr <= last && w.addr.saturating_add(w.len.max(1) - 1) >= page)
        }
        covers(&self.watchpoints, vpage) || covers(&self.phys_watchpoints, ppage)
    }

    /// Translated code's window for stores (`write`) or loads: the page offsets of the
    /// watchpoints such accesses fire, virtual and physical. One range of page offsets keeps
    /// the inline check short (it is emitted for every load and store, and translation time
    /// grows with the code): accesses between two watched ranges, or at a watched offset of
    /// another watched page, take the helper.
    fn jit_window(&self, write: bool) -> WatchWindow {
        let fires = |w: &&Watchpoint| match w.kind {
            WatchKind::Write => write,
            WatchKind::Read => !write,
            WatchKind::Access => true,
        };
        let span = |w: &Watchpoint| (w.addr, w.addr.saturating_add(w.len.max(1) - 1));
        let all = self.watchpoints.iter().chain(&self.phys_watchpoints);
        WatchWindow::covering(all.filter(fires).map(span))
    }

    /// Is any breakpoint in `[lo, hi)`? (One binary search per block in the checking
    /// interpreter, so blocks without breakpoints need no per-instruction check.)
    #[inline]
    pub(crate) fn breakpoint_in(&self, lo: u64, hi: u64) -> bool {
        let i = self.breakpoints.partition_point(|&b| b < lo);
        let j = self.trigger_pcs.partition_point(|&b| b < lo);
        self.breakpoints.get(i).is_some_and(|&b| b < hi)
            || self.trigger_pcs.get(j).is_some_and(|&b| b < hi)
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

    /// [`DebugHooks::watch_check`] for the physical watches: the access touches the physical
    /// range `[pa, pa+size)`; `vaddr` (its virtual address) is what the hit reports.
    fn phys_check(&mut self, vaddr: u64, pa: u64, size: u64, read: bool, write: bool) -> bool {
        let last = pa.saturating_add(size.max(1) - 1);
        for w in &self.phys_watchpoints {
            let w_last = w.addr.saturating_add(w.len.max(1) - 1);
            if pa > w_last || w.addr > last {
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
                addr: vaddr,
            });
            return true;
        }
        false
    }
}

impl Hart {
    /// Would an access of `size` bytes at virtual `addr` fire a watchpoint, virtual or
    /// physical? Records the hit. (The checking interpreter's test before each access.)
    #[inline]
    pub(crate) fn watch_hit(
        &mut self,
        ram: &Ram,
        addr: u64,
        size: u64,
        read: bool,
        write: bool,
    ) -> bool {
        self.debug.watch_check(addr, size, read, write)
            || (!self.debug.phys_watchpoints.is_empty()
                && self.phys_watch_hit(ram, addr, size, read, write))
    }

    /// The physical watches: the access translated as the debugger translates (the current
    /// privilege's address space, `mstatus.MPRV` ignored), each page it touches on its own.
    #[cold]
    fn phys_watch_hit(&mut self, ram: &Ram, addr: u64, size: u64, read: bool, write: bool) -> bool {
        let size = size.max(1);
        let first = size.min(4096 - (addr & 0xfff));
        if let Some(pa) = self.peek_translate(ram, addr) {
            if self.debug.phys_check(addr, pa, first, read, write) {
                return true;
            }
        }
        if size > first {
            let next = addr.wrapping_add(first);
            if let Some(pa) = self.peek_translate(ram, next) {
                return self.debug.phys_check(addr, pa, size - first, read, write);
            }
        }
        false
    }

    /// Rebuild the decoded triggers after a write to tselect/tdata*/mcontext or a restore.
    pub(crate) fn update_triggers(&mut self) {
        let c = &self.csr;
        let mut trig = Vec::new();
        if self.features.debug {
            for t in 0..TRIGGERS {
                let d1 = c.tdata1[t];
                let (ty, size) = (d1 >> 60, (d1 >> 16) & 3 | ((d1 >> 21) & 3) << 2);
                let size = match ty {
                    TTYPE_MCONTROL => size,
                    TTYPE_MCONTROL6 => (d1 >> 16) & 0xf,
                    _ => continue,
                };
                let rwx = d1 & (TDATA1_EXEC | TDATA1_LOAD | TDATA1_STORE);
                let modes = d1 & TDATA1_MODES;
                if rwx == 0 || modes == 0 {
                    continue;
                }
                let d3 = c.tdata3[t];
                // spec departure: QEMU 10 watches 8 bytes for size "any"; the spec matches
                // the accesses that touch the address.
                let len = match size {
                    1 => 1,
                    2 => 2,
                    3 => 4,
                    5 => 8,
                    _ => 1,
                };
                trig.push(Trigger {
                    addr: c.tdata2[t],
                    len,
                    exec: d1 & TDATA1_EXEC != 0,
                    load: d1 & TDATA1_LOAD != 0,
                    store: d1 & TDATA1_STORE != 0,
                    modes,
                    context_blocked: (d3 >> 48) & 7 == 4 && d3 >> 51 != c.mcontext,
                });
            }
        }
        let mut pcs: Vec<u64> = trig.iter().filter(|t| t.exec).map(|t| t.addr).collect();
        pcs.sort_unstable();
        pcs.dedup();
        self.debug.trigger_pcs = pcs;
        self.debug.triggers = trig;
    }

    /// Does an execute trigger fire for the instruction at `pc` in the current mode?
    #[cold]
    pub(crate) fn trigger_exec_hit(&self, pc: u64) -> bool {
        let mode = 1u64 << (3 + self.prv as u32);
        self.debug
            .triggers
            .iter()
            .any(|t| t.exec && t.addr == pc && t.modes & mode != 0 && !t.context_blocked)
    }

    /// Does a load (`read`) or store (`write`) trigger fire for an access of `size` bytes at
    /// `addr` in the current mode? Returns the xtval: the highest of the access and trigger
    /// addresses, as QEMU 10 reports the hit.
    #[cold]
    pub(crate) fn trigger_watch_hit(
        &self,
        addr: u64,
        size: u64,
        read: bool,
        write: bool,
    ) -> Option<u64> {
        let mode = 1u64 << (3 + self.prv as u32);
        let last = addr.saturating_add(size.max(1) - 1);
        self.debug
            .triggers
            .iter()
            .find(|t| {
                ((t.load && read) || (t.store && write))
                    && t.modes & mode != 0
                    && !t.context_blocked
                    && addr <= t.addr.saturating_add(t.len - 1)
                    && t.addr <= last
            })
            .map(|t| t.addr.max(addr))
    }

    /// Count retired instructions by privilege and pc from now on (`true`), or stop counting
    /// and drop the counts (`false`). While counting, the checking interpreter runs.
    pub fn set_coverage(&mut self, on: bool) {
        self.debug.coverage = on.then(Box::default);
    }

    /// The counts since [`Hart::set_coverage`] or the last take (counting goes on).
    pub fn take_coverage(&mut self) -> CoverageCounts {
        match self.debug.coverage.as_deref_mut() {
            Some(c) => std::mem::take(&mut c.counts),
            None => Default::default(),
        }
    }

    /// Log system call entries and returns from now on (`true`), or stop and drop the log.
    /// Costs a branch per trap and per `sret`.
    pub fn set_syscall_log(&mut self, on: bool) {
        self.debug.syscalls = on.then(Box::default);
    }

    /// The system call log, when on (the machine gives its events global counts).
    pub fn syscall_log_mut(&mut self) -> Option<&mut SyscallLog> {
        self.debug.syscalls.as_deref_mut()
    }

    /// Take the logged events (logging goes on).
    pub fn take_syscalls(&mut self) -> Vec<SyscallEvent> {
        match self.debug.syscalls.as_deref_mut() {
            Some(l) => {
                l.global = 0;
                std::mem::take(&mut l.events)
            }
            None => Vec::new(),
        }
    }

    /// Note a system call boundary if the log is on (`call`: the `ecall` at the current pc;
    /// else the `sret` to U-mode at `pc`).
    pub(crate) fn log_syscall(&mut self, call: bool, pc: u64) {
        if let Some(l) = self.debug.syscalls.as_deref_mut() {
            let x = &self.x;
            let regs = if call {
                [x[17], x[10], x[11], x[12], x[13], x[14], x[15]]
            } else {
                [0, x[10], 0, 0, 0, 0, 0]
            };
            l.events.push(SyscallEvent {
                call,
                icount: self.icount,
                pc,
                satp: self.csr.satp,
                sp: x[2],
                regs,
            });
        }
    }

    /// Replace the breakpoints (virtual pcs).
    pub fn set_breakpoints(&mut self, pcs: &[u64]) {
        let mut b = pcs.to_vec();
        b.sort_unstable();
        b.dedup();
        self.debug.breakpoints = b;
    }

    /// Replace the watchpoints.
    pub fn set_watchpoints(&mut self, watches: &[Watchpoint]) {
        if self.debug.watchpoints != watches {
            self.debug.watchpoints = watches.to_vec();
            self.debug.tlb_marks_stale = true;
        }
    }

    /// Replace the physical watchpoints: ranges of physical addresses, fired by an access
    /// whatever virtual address it used (the hit reports that virtual address).
    pub fn set_phys_watchpoints(&mut self, watches: &[Watchpoint]) {
        if self.debug.phys_watchpoints != watches {
            self.debug.phys_watchpoints = watches.to_vec();
            self.debug.tlb_marks_stale = true;
        }
    }

    /// Flag the TLB entries of watched pages (and unflag the others) after the watchpoints
    /// changed: translated code's inline memory path then misses on exactly those pages, and
    /// compares those accesses with the windows made here.
    #[cold]
    pub(crate) fn mark_watched_pages(&mut self, ram: &Ram) {
        self.debug.tlb_marks_stale = false;
        self.debug.jit_windows = [self.debug.jit_window(false), self.debug.jit_window(true)];
        let debug = &self.debug;
        self.tlb
            .mark_watched(|vpage, base| debug.watches_page(vpage, ram.paddr_of(base as usize)));
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
