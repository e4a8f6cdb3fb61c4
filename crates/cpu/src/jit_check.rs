//! Lockstep self-check of the translating engine (`--accel jit,check=interp`).
//!
//! Every translated region runs twice from the same state: first as host code, with RAM
//! writes journaled and device accesses recorded; then the region is undone (registers, CSRs,
//! TLB, RAM) and the interpreter runs the same instructions, its device accesses answered from
//! the record (a device sees each access once) and its RAM writes journaled too. The two must
//! agree on the exit (trap, yield, fall through), every register, the CSRs, the bytes written
//! and the device accesses; the first difference stops the hart with
//! [`crate::ExitReason::JitCheck`] and a [`CheckFailure`] naming it. The run goes on from the
//! interpreter's result, so a check never changes what the guest does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::bus::{Mmio, MmioFault};
use crate::decode::DecodedPage;
use crate::exec::PageExit;
use crate::hart::{ExitReason, Hart};
use crate::jit::{BlockFn, EXIT_REFETCH, EXIT_TRAP, EXIT_YIELD};
use crate::ram::Ram;
use crate::ram::PAGE_SIZE;

/// Whether harts created from now on check their translated regions.
static CHECK: AtomicBool = AtomicBool::new(false);

/// Test hook: corrupt a register written by the first checked region from this count on (0:
/// never).
static FAULT_AT: AtomicU64 = AtomicU64::new(0);

/// Make harts created from now on run every translated region in lockstep with the
/// interpreter (`true`), or not.
pub fn set_default_check(on: bool) {
    CHECK.store(on, Ordering::Relaxed);
}

/// Do new harts check their translated regions?
pub fn default_check() -> bool {
    CHECK.load(Ordering::Relaxed)
}

/// Test hook: from the `n`-th checked region of a hart on (1-based; 0 = never), flip bit 0 of
/// the first register a region's translated code wrote, once: the check must catch it.
pub fn inject_fault_at(n: u64) {
    FAULT_AT.store(n, Ordering::Relaxed);
}

/// The self-check state of one hart (not architectural state).
#[derive(Debug, Default)]
pub struct CheckState {
    /// Check every translated region.
    pub(crate) on: bool,
    /// Regions checked so far.
    pub(crate) regions: u64,
    /// The fault of [`inject_fault_at`] was injected.
    pub(crate) injected: bool,
    /// The difference that stopped the hart.
    pub(crate) failure: Option<Box<CheckFailure>>,
    /// Instructions retired by translated code (statistics, not counting checked regions).
    pub(crate) jit_retired: u64,
    /// Loads and stores translated code made through the memory helpers rather than inline
    /// (statistics).
    pub(crate) jit_mem_helper: u64,
}

/// The first difference between a translated region and the interpreter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The hart's instruction count when the region was entered.
    pub icount: u64,
    /// The pc the region was entered at.
    pub pc: u64,
    /// What differs, with both values (translated code's first).
    pub what: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "translated code and the interpreter differ in the region entered at pc {:#x}, icount {}: {}",
            self.pc, self.icount, self.what
        )
    }
}

impl std::error::Error for CheckFailure {}

impl Hart {
    /// Check translated regions against the interpreter from now on (`true`), or not.
    pub fn set_jit_check(&mut self, on: bool) {
        self.check.on = on;
    }

    /// Instructions this hart retired in translated code (outside the self-check).
    pub fn jit_retired(&self) -> u64 {
        self.check.jit_retired
    }

    /// Loads and stores this hart's translated code made through the memory helpers (TLB
    /// misses, devices, misaligned accesses, watched ranges, the self-check) rather than inline.
    pub fn jit_helper_accesses(&self) -> u64 {
        self.check.jit_mem_helper
    }

    /// Regions checked so far.
    pub fn jit_checked_regions(&self) -> u64 {
        self.check.regions
    }

    /// The difference that ended the last `run` with [`ExitReason::JitCheck`] (taken).
    pub fn take_check_failure(&mut self) -> Option<CheckFailure> {
        self.check.failure.take().map(|b| *b)
    }
}

/// One device access of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// A load and what the device answered (`None`: a fault).
    Load {
        paddr: u64,
        size: u8,
        icount: u64,
        value: Option<u64>,
    },
    /// A store and whether the device took it.
    Store {
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
        ok: bool,
    },
}

/// The devices, recording what the translated code asks of them.
struct Recorder<'a, M> {
    inner: &'a mut M,
    log: Vec<Access>,
}

impl<M: Mmio> Mmio for Recorder<'_, M> {
    fn load(&mut self, ram: &mut Ram, paddr: u64, size: u8, icount: u64) -> Result<u64, MmioFault> {
        // What a device writes to RAM (DMA) happens once: not undone, not compared.
        let j = ram.set_journal(None);
        let r = self.inner.load(ram, paddr, size, icount);
        ram.set_journal(j);
        self.log.push(Access::Load {
            paddr,
            size,
            icount,
            value: r.ok(),
        });
        r
    }

    fn store(
        &mut self,
        ram: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        let j = ram.set_journal(None);
        let r = self.inner.store(ram, paddr, size, value, icount);
        ram.set_journal(j);
        self.log.push(Access::Store {
            paddr,
            size,
            value,
            icount,
            ok: r.is_ok(),
        });
        r
    }

    fn mtime(&self, icount: u64) -> u64 {
        self.inner.mtime(icount)
    }
}

/// The clock of the devices (all the interpreter's run needs of them besides the record).
trait Clock {
    fn now(&self, icount: u64) -> u64;
}

impl<M: Mmio> Clock for M {
    fn now(&self, icount: u64) -> u64 {
        self.mtime(icount)
    }
}

/// The devices as the interpreter sees them: the record of the translated code's accesses.
struct Replayer<'a> {
    log: &'a [Access],
    pos: usize,
    mismatch: Option<String>,
    clock: &'a dyn Clock,
}

impl Replayer<'_> {
    /// The next recorded access, if `got` is it; otherwise note the mismatch.
    fn next(&mut self, got: Access) -> Option<Access> {
        let want = self.log.get(self.pos).copied();
        let same = match (want, got) {
            (
                Some(Access::Load {
                    paddr,
                    size,
                    icount,
                    ..
                }),
                Access::Load {
                    paddr: p,
                    size: s,
                    icount: i,
                    ..
                },
            ) => (paddr, size, icount) == (p, s, i),
            (
                Some(Access::Store {
                    paddr,
                    size,
                    value,
                    icount,
                    ..
                }),
                Access::Store {
                    paddr: p,
                    size: s,
                    value: v,
                    icount: i,
                    ..
                },
            ) => (paddr, size, value, icount) == (p, s, v, i),
            _ => false,
        };
        if same {
            self.pos += 1;
            return want;
        }
        if self.mismatch.is_none() {
            self.mismatch = Some(format!(
                "device access #{}: translated code {}, interpreter {}",
                self.pos + 1,
                want.map_or_else(|| "made no more".into(), describe),
                describe(got)
            ));
        }
        None
    }
}

/// An access in words.
fn describe(a: Access) -> String {
    match a {
        Access::Load {
            paddr,
            size,
            icount,
            ..
        } => format!("load of {size} bytes at {paddr:#x} (icount {icount})"),
        Access::Store {
            paddr,
            size,
            value,
            icount,
            ..
        } => format!("store of {value:#x} ({size} bytes) at {paddr:#x} (icount {icount})"),
    }
}

impl Mmio for Replayer<'_> {
    fn load(&mut self, _: &mut Ram, paddr: u64, size: u8, icount: u64) -> Result<u64, MmioFault> {
        match self.next(Access::Load {
            paddr,
            size,
            icount,
            value: None,
        }) {
            Some(Access::Load { value: Some(v), .. }) => Ok(v),
            _ => Err(MmioFault),
        }
    }

    fn store(
        &mut self,
        _: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        match self.next(Access::Store {
            paddr,
            size,
            value,
            icount,
            ok: true,
        }) {
            Some(Access::Store { ok: true, .. }) => Ok(()),
            _ => Err(MmioFault),
        }
    }

    fn mtime(&self, icount: u64) -> u64 {
        self.clock.now(icount)
    }
}

/// How a region (or the interpreter's run of it) ended, for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Fell through, left the page or ran out of budget.
    Go,
    /// Took an exception.
    Trap,
    /// Stored to a device or wrote a CSR that needs the machine loop.
    Yield,
    /// A CSR write unmasked an interrupt or can change translation.
    Refetch,
    /// Anything else the interpreter may report (it would be a difference).
    Other,
}

/// ABI names of the integer registers, for reports.
const XNAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

impl Hart {
    /// Run the translated region `f` entered at `self.pc`, then the interpreter over the same
    /// instructions from the same state, and compare (see the module documentation). Leaves
    /// the hart as the interpreter left it; returns how the page loop must exit (`None`: go on
    /// at `self.pc`, `self.icount`).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_region<M: Mmio>(
        &mut self,
        f: BlockFn,
        ram: &mut Ram,
        mmio: &mut M,
        page: &mut DecodedPage,
        poff: usize,
        way: usize,
        dmode: usize,
        end: u64,
        watch: bool,
    ) -> Option<PageExit> {
        let (pc0, ic0) = (self.pc, self.icount);
        let vbase = pc0 & !(PAGE_SIZE - 1);
        let before = self.save_state();
        let tlb = self.tlb.clone();
        let stats = self.stats.clone();

        // Translated code first, on the real devices.
        ram.set_journal(Some(Vec::new()));
        let mut rec = Recorder {
            inner: mmio,
            log: Vec::new(),
        };
        let pp: *const DecodedPage = &*page;
        let r = self.run_jit(
            f,
            ram,
            &mut rec,
            pp,
            way,
            dmode,
            ic0,
            vbase,
            end - ic0,
            watch,
        );
        // After a CSR write that ends the region the op helper set the pc (maybe to an
        // interrupt handler).
        if r.tag != EXIT_REFETCH {
            self.pc = r.npc;
        }
        self.icount = ic0 + r.retired;
        let jit_end = match (r.tag, r.exc) {
            (EXIT_TRAP, Some(ex)) => {
                self.take_exception(ex);
                End::Trap
            }
            (EXIT_YIELD, _) => End::Yield,
            (EXIT_REFETCH, _) => End::Refetch,
            _ => End::Go,
        };
        self.check.regions += 1;
        let fault_at = FAULT_AT.load(Ordering::Relaxed);
        if fault_at != 0 && self.check.regions >= fault_at && !self.check.injected {
            if let Some(i) = (1..32).find(|&i| self.x[i] != before.x[i]) {
                self.x[i] ^= 1;
                self.check.injected = true;
            }
        }
        let journal = ram.set_journal(None).unwrap_or_default();
        let jit_state = self.save_state();
        let jit_bytes = ram.undo_journal(&journal);
        let hit = self.debug.hit.take();
        let Recorder { inner, log } = rec;

        // Back to where the region started; the interpreter runs the same instructions (up to
        // and including a trapping one).
        self.restore_state(&before);
        self.tlb = tlb;
        self.stats = stats;
        let end_i = ic0 + r.retired + u64::from(jit_end == End::Trap);
        let mut rep = Replayer {
            log: &log,
            pos: 0,
            mismatch: None,
            clock: &*inner,
        };
        ram.set_journal(Some(Vec::new()));
        let exit = self
            .run_page::<Replayer, false, false>(ram, &mut rep, page, poff, way, end_i, &mut None);
        let journal_i = ram.set_journal(None).unwrap_or_default();
        let int_end = match exit {
            PageExit::Leave => End::Go,
            PageExit::Refetch => End::Refetch,
            PageExit::Trap => End::Trap,
            PageExit::Exit(ExitReason::Yield) => End::Yield,
            PageExit::Exit(_) => End::Other,
        };

        let what = if let Some(m) = rep.mismatch.take() {
            Some(m)
        } else if rep.pos < log.len() {
            Some(format!(
                "device access #{}: translated code {}, interpreter made no more",
                rep.pos + 1,
                describe(log[rep.pos])
            ))
        } else if jit_end != int_end {
            Some(format!(
                "exit: translated code {jit_end:?}, interpreter {int_end:?}"
            ))
        } else {
            self.state_difference(&jit_state)
                .or_else(|| memory_difference(ram, &jit_bytes, &journal_i))
        };
        if let Some(what) = what {
            self.check.failure = Some(Box::new(CheckFailure {
                icount: ic0,
                pc: pc0,
                what,
            }));
            return Some(PageExit::Exit(ExitReason::JitCheck));
        }
        if hit.is_some() {
            // A watchpoint stopped the region before an access: stop there too.
            self.debug.hit = hit;
            return Some(PageExit::Exit(ExitReason::Debug));
        }
        match exit {
            PageExit::Leave => None,
            other => Some(other),
        }
    }

    /// The first difference between the hart's state and `jit` (translated code's), in words.
    fn state_difference(&self, jit: &crate::hart::HartState) -> Option<String> {
        let me = self.save_state();
        if me.pc != jit.pc {
            return Some(format!(
                "pc: translated code {:#x}, interpreter {:#x}",
                jit.pc, me.pc
            ));
        }
        if me.icount != jit.icount {
            return Some(format!(
                "instructions retired: translated code {}, interpreter {}",
                jit.icount, me.icount
            ));
        }
        if me.prv != jit.prv {
            return Some(format!(
                "privilege: translated code {:?}, interpreter {:?}",
                jit.prv, me.prv
            ));
        }
        if let Some((i, (name, (j, m)))) = XNAMES
            .iter()
            .zip(jit.x.iter().zip(&me.x))
            .enumerate()
            .find(|(_, (_, (j, m)))| j != m)
        {
            return Some(format!(
                "x{i} ({name}): translated code {j:#x}, interpreter {m:#x}"
            ));
        }
        if let Some((i, (j, m))) = jit
            .f
            .iter()
            .zip(&me.f)
            .enumerate()
            .find(|(_, (j, m))| j != m)
        {
            return Some(format!("f{i}: translated code {j:#x}, interpreter {m:#x}"));
        }
        if me != *jit {
            return Some(format!(
                "CSRs or LR/SC reservation: translated code {:?}, interpreter {:?}",
                jit.csr, me.csr
            ));
        }
        None
    }
}

/// The first RAM byte written differently: `jit` holds each byte translated code wrote with
/// its value then (RAM now holds the interpreter's), `interp` the interpreter's journal.
fn memory_difference(ram: &Ram, jit: &[(usize, u8)], interp: &[(usize, u8)]) -> Option<String> {
    let report = |off: usize, j: u8| {
        format!(
            "memory at {:#x}: translated code wrote {j:#04x}, interpreter {:#04x}",
            ram.paddr_of(off),
            ram.byte_at(off)
        )
    };
    for &(off, v) in jit {
        if ram.byte_at(off) != v {
            return Some(report(off, v));
        }
    }
    // Bytes only the interpreter wrote: translated code left their old value.
    let mut seen = std::collections::HashSet::new();
    for &(off, old) in interp {
        // The first entry of an offset holds the byte before the region.
        if !seen.insert(off) {
            continue;
        }
        if jit.binary_search_by_key(&off, |e| e.0).is_err() && ram.byte_at(off) != old {
            return Some(report(off, old));
        }
    }
    None
}
