//! The interpreter loop.
//!
//! `run` translates the pc's page once, checks its [`DecodedPage`] out of [`Ram`] and executes
//! from it for as long as the pc stays on that page and nothing invalidates the fetch
//! translation (traps, xRET, interrupts, `sfence.vma`, `fence.i`, writes to `satp`/`mstatus`/PMP
//! CSRs). Up to `CODE_WAYS` pages stay checked out with their virtual tag, so calls and returns
//! between a few pages skip translation until such an event. Slots are decoded lazily; writes
//! to a page reset the slots they overlap, and the loop applies those resets after every memory
//! access, so stale instructions never run.
//!
//! CONTRACT (interpreter work owns this file).

use crate::bus::Mmio;
use crate::csr::MSTATUS_TW;
use crate::csr::{CsrOp, CSR_MENVCFG, CSR_STIMECMP};
use crate::debug::DebugHit;
use crate::decode::{decode16, decode32_with, is_32bit, DecodedPage, Kind, Op, MAX_BLOCK, SLOTS};
use crate::fpu::{self, BinOp, FmaOp, IntKind};
use crate::hart::{ExitReason, Hart, Priv};
use crate::mmu::{Access, BlockTarget, StoreOutcome};
use crate::ram::{Ram, CODE_WAYS, PAGE_SHIFT, PAGE_SIZE};
use crate::trap::Exception;

/// After this many traps in a row without a retired instruction (e.g. a trap vector that itself
/// faults), `run` returns `Yield` so the machine loop stays responsive; deterministic because it
/// depends on guest state only.
const MAX_TRAPS_WITHOUT_RETIRE: u32 = 64;

/// Why the page loop returned to `run`.
pub(crate) enum PageExit {
    /// The pc left the page or the budget ran out; cached fetch translations stay valid.
    Leave,
    /// State changed that can alter fetch translation (xRET, interrupt, sfence.vma, satp /
    /// mstatus / PMP writes): forget the cached translations.
    Refetch,
    /// An exception was taken (the pc is at the handler).
    Trap,
    /// Return to the machine loop.
    Exit(ExitReason),
}

/// How an op run for translated code ended ([`Hart::jit_op`]).
pub(crate) enum JitOpDone {
    /// Retired; go on.
    Next,
    /// Retired; it may have written decoded code (check as the block loop's `code_check`).
    CodeCheck,
    /// Retired; it accessed a device (the block loop yields after it).
    Yield,
    /// A watchpoint fired before the access (retires nothing; the hit is recorded).
    Watch,
    /// Retired (a CSR write); the hart's pc and icount are set, maybe to an interrupt handler:
    /// the page loop must forget its fetch translations (`PageExit::Refetch`).
    Refetch,
}

/// What the run loop must do after a CSR op retired ([`Hart::exec_csr`]).
pub(crate) enum CsrDone {
    /// Go on with the next instruction.
    Next,
    /// The write unmasked an interrupt (taken: the pc is at its handler) or can change fetch
    /// or data translation: `PageExit::Refetch` with the hart's pc and icount.
    Refetch,
    /// A new timer deadline or trigger: back to the machine (`ExitReason::Yield`).
    Yield,
}

/// How a block ended.
enum BlockExit {
    /// Ran to its end (or its budget share).
    Done,
    /// Op `.0` raised an exception (it did not retire).
    Trap(usize, Exception),
    /// The first `.0` ops retired; a write hit decoded instructions in slots `.1..=.2`.
    Dirty(usize, usize, usize),
    /// The first `.0` ops retired; the last one stored to MMIO.
    Yield(usize),
    /// The first `.0` ops retired; op `.0` has a breakpoint.
    Break(usize),
    /// The first `.0` ops retired; op `.0` would access a watched range.
    Watch(usize),
}

/// A decoded page checked out of `Ram` by `run`, and the virtual page it was fetched through.
struct FetchWay {
    /// Virtual page base the tag is valid for (`TAG_NONE` once forgotten).
    vbase: u64,
    /// RAM page index.
    pidx: usize,
    /// RAM offset of the page.
    poff: usize,
    page: Box<DecodedPage>,
}

/// A tag no page-aligned virtual address equals.
const TAG_NONE: u64 = 1;

/// Forget every cached virtual → physical fetch tag (the pages stay checked out).
fn forget_tags(ways: &mut [Option<FetchWay>; CODE_WAYS]) {
    for w in ways.iter_mut().flatten() {
        w.vbase = TAG_NONE;
    }
}

/// The form an op takes in a block at slot `slot`: ops whose only effect is writing x0 become
/// `Nop`, and `jal`/`jalr` without a link become `J`/`Jr`, so the hot arms below may write `rd`
/// without re-zeroing x0; pc-relative ops get the instruction's page offset added to `imm`, so
/// the interpreter needs only the virtual page base (the sum cannot overflow: `auipc`
/// immediates have their low 12 bits clear, and branch / `jal` offsets are at most 1 MiB).
#[inline]
fn block_form(op: Op, slot: usize) -> Op {
    let k = op.kind as u8;
    let mut op = op;
    if op.rd == 0 {
        op.kind = match op.kind {
            Kind::Jal => Kind::J,
            Kind::Jalr => Kind::Jr,
            Kind::Lui | Kind::Auipc => Kind::Nop,
            _ if (Kind::Addi as u8..=Kind::CzeroNez as u8).contains(&k) => Kind::Nop,
            other => other,
        };
    }
    if matches!(
        op.kind,
        Kind::Auipc
            | Kind::Jal
            | Kind::J
            | Kind::Beq
            | Kind::Bne
            | Kind::Blt
            | Kind::Bge
            | Kind::Bltu
            | Kind::Bgeu
    ) {
        op.imm = op.imm.wrapping_add((slot * 2) as i32);
    }
    op
}

/// Does `kind` end a block? Control transfers and everything that may change privilege,
/// translation or interrupt state, or always traps.
#[inline]
fn ends_block(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Undecoded
            | Kind::CrossPage
            | Kind::Illegal
            | Kind::Jal
            | Kind::Jalr
            | Kind::J
            | Kind::Jr
            | Kind::Beq
            | Kind::Bne
            | Kind::Blt
            | Kind::Bge
            | Kind::Bltu
            | Kind::Bgeu
            | Kind::FenceI
            | Kind::Ecall
            | Kind::Ebreak
            | Kind::Mret
            | Kind::Sret
            | Kind::Wfi
            | Kind::SfenceVma
            | Kind::Csrrw
            | Kind::Csrrs
            | Kind::Csrrc
            | Kind::Csrrwi
            | Kind::Csrrsi
            | Kind::Csrrci
    )
}

/// The pc of op `i` of a block starting at page offset `start_off` of virtual page `vbase` (or
/// just past the block's ops for `i = ops.len()`): for early exits, off the hot path.
#[cold]
#[inline(never)]
fn pc_at(vbase: u64, start_off: u64, ops: &[Op], i: usize) -> u64 {
    let len: u64 = ops.iter().take(i).map(|o| o.len as u64).sum();
    vbase.wrapping_add(start_off).wrapping_add(len)
}

/// CSRs whose writes can change how instruction fetch translates or is permitted.
#[inline]
fn csr_affects_fetch(addr: u16) -> bool {
    matches!(addr, 0x100 | 0x180 | 0x300 | 0x301 | 0x747 | 0x3a0..=0x3ef)
}

/// CSRs whose write must end the run: stimecmp and menvcfg (timer deadline), the hpm counters
/// and mcountinhibit (Sscofpmf overflow deadline), the trigger registers (the checking
/// interpreter must run while a trigger is enabled).
#[inline]
fn csr_needs_exit(addr: u16) -> bool {
    addr == CSR_STIMECMP
        || addr == CSR_MENVCFG
        || addr == 0x320
        || (0xb03..=0xb12).contains(&addr)
        || (0x7a1..=0x7a8).contains(&addr)
}

#[inline(always)]
fn sext32(v: u64) -> u64 {
    v as i32 as i64 as u64
}

/// menvcfg/senvcfg.CBIE (2 bits; any non-zero value enables cbo.inval below M, as in QEMU).
const ENVCFG_CBIE: u64 = 3 << 4;
/// menvcfg/senvcfg.CBCFE: cbo.clean and cbo.flush below M.
const ENVCFG_CBCFE: u64 = 1 << 6;
/// menvcfg/senvcfg.CBZE: cbo.zero below M.
const ENVCFG_CBZE: u64 = 1 << 7;

/// Bytes in a cache block (QEMU's `cbom_blocksize` / `cboz_blocksize`).
const CBO_BLOCK: u64 = 64;

/// Zbb orc.b: each byte becomes 0xff if any of its bits is set, else 0.
#[inline]
fn orc_b(v: u64) -> u64 {
    let mut r = 0;
    for b in 0..8 {
        if (v >> (8 * b)) & 0xff != 0 {
            r |= 0xff << (8 * b);
        }
    }
    r
}

/// The full 128-bit carry-less product (clmul = low half, clmulh = high half, clmulr = bits
/// 126:63).
#[inline]
fn clmul(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for i in 0..64 {
        if (b >> i) & 1 != 0 {
            r ^= (a as u128) << i;
        }
    }
    r
}

/// The integer side of fcvt for the `rs2` selector.
#[inline]
fn int_kind(sel: u8) -> IntKind {
    match sel {
        0 => IntKind::W,
        1 => IntKind::Wu,
        2 => IntKind::L,
        _ => IntKind::Lu,
    }
}

/// Size and direction of an LR/SC/AMO access: LR reads, SC writes (whether or not it will
/// succeed), an AMO reads and writes.
fn amo_access(kind: Kind) -> (u64, bool, bool) {
    let size = if (kind as u8) <= (Kind::AmoMaxuW as u8) {
        4
    } else {
        8
    };
    let (read, write) = match kind {
        Kind::LrW | Kind::LrD => (true, false),
        Kind::ScW | Kind::ScD => (false, true),
        _ => (true, true),
    };
    (size, read, write)
}

impl Hart {
    /// Execute at most `budget` instructions (exactly `budget` unless it exits early), taking
    /// pending interrupts on entry and after state changes. `self.icount` counts retirements.
    pub fn run<M: Mmio>(&mut self, ram: &mut Ram, mmio: &mut M, budget: u64) -> ExitReason {
        let end = self.icount.saturating_add(budget);
        self.take_pending_interrupt();
        if self.wfi {
            return ExitReason::Wfi;
        }
        // A hit is reported by the run it ends only; the skip applies to this run only.
        self.debug.hit = None;
        let skip_entry = self.debug.skip_at.take();
        let mut skip = skip_entry.map(|(pc, _)| pc);
        self.debug.skip_watch = skip_entry.is_some_and(|(_, watches)| watches);
        if self.debug.tlb_marks_stale {
            self.mark_watched_pages(ram);
        }
        let mut ways: [Option<FetchWay>; CODE_WAYS] = Default::default();
        // Debugger hooks select a second instance of the interpreter that checks them, so the
        // normal one pays nothing for them.
        let reason = if self.debug.active() {
            if self.jit.is_some() && self.debug.jit_compatible() {
                // Breakpoints and watchpoints only: translated code runs on pages without a
                // breakpoint, its helpers check watchpoints.
                self.run_ways::<M, true, true>(ram, mmio, end, &mut ways, &mut skip)
            } else {
                self.run_ways::<M, true, false>(ram, mmio, end, &mut ways, &mut skip)
            }
        } else if self.jit.is_some() {
            // The translating engine: a third instance, so the plain interpreter pays nothing
            // for it either.
            self.run_ways::<M, false, true>(ram, mmio, end, &mut ways, &mut skip)
        } else {
            self.run_ways::<M, false, false>(ram, mmio, end, &mut ways, &mut skip)
        };
        for (k, w) in ways.iter_mut().enumerate() {
            if let Some(w) = w.take() {
                ram.checkin_code(w.pidx, k, w.page);
            }
        }
        if let Some(c) = self.debug.coverage.as_deref_mut() {
            c.settle(self.icount);
        }
        reason
    }

    /// The body of `run`, with its fetch cache: up to `CODE_WAYS` decoded pages stay checked
    /// out, tagged with the virtual page they were last fetched through. A tag is trusted until
    /// an event that can change fetch translation (`PageExit::Refetch`, a trap).
    ///
    /// `DEBUG` checks breakpoints and watchpoints; `skip` is the breakpoint not to stop at on
    /// the first instruction (see [`Hart::skip_debug_once`]).
    fn run_ways<M: Mmio, const DEBUG: bool, const JIT: bool>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        end: u64,
        ways: &mut [Option<FetchWay>; CODE_WAYS],
        skip: &mut Option<u64>,
    ) -> ExitReason {
        let mut traps = 0u32;
        let mut victim = 0usize;
        loop {
            if self.icount >= end {
                return ExitReason::Budget;
            }
            let pc = self.pc;
            let vbase = pc & !(PAGE_SIZE - 1);
            let hit = ways
                .iter()
                .position(|w| w.as_ref().is_some_and(|w| w.vbase == vbase));
            let k = match hit {
                Some(k) => k,
                None => {
                    let poff = match self.translate_fetch(ram, pc) {
                        // translate_fetch only returns RAM addresses; be defensive all the same.
                        Ok(pa) => ram
                            .offset_readable(pa & !(PAGE_SIZE - 1), PAGE_SIZE)
                            .ok_or(Exception::InstrAccessFault(pc)),
                        Err(e) => Err(e),
                    };
                    let poff = match poff {
                        Ok(poff) => poff,
                        Err(e) => {
                            // An instruction address breakpoint (guest trigger) outranks the
                            // fetch fault (priv spec exception priority, as QEMU 10).
                            let e = if DEBUG && self.trigger_exec_hit(pc) {
                                Exception::Breakpoint(pc)
                            } else {
                                e
                            };
                            self.take_exception(e);
                            forget_tags(ways);
                            traps += 1;
                            if traps >= MAX_TRAPS_WITHOUT_RETIRE {
                                return ExitReason::Yield;
                            }
                            continue;
                        }
                    };
                    let pidx = poff >> PAGE_SHIFT;
                    match ways
                        .iter()
                        .position(|w| w.as_ref().is_some_and(|w| w.pidx == pidx))
                    {
                        Some(k) => {
                            if let Some(w) = ways[k].as_mut() {
                                w.vbase = vbase;
                            }
                            k
                        }
                        None => {
                            let k = victim;
                            victim = (victim + 1) % CODE_WAYS;
                            if let Some(old) = ways[k].take() {
                                ram.checkin_code(old.pidx, k, old.page);
                            }
                            let page = ram.checkout_code(pidx, k);
                            ways[k] = Some(FetchWay {
                                vbase,
                                pidx,
                                poff,
                                page,
                            });
                            k
                        }
                    }
                }
            };
            let Some(w) = ways[k].as_mut() else {
                continue; // unreachable: way k was just found or filled
            };
            // Apply writes made while the page waited in the cache, and fence.i.
            if w.page.gen != ram.code_generation() {
                w.page.reset(ram.code_generation());
                ram.take_code_dirty(k);
            } else if let Some((lo, hi)) = ram.take_code_dirty(k) {
                w.page.invalidate(lo, hi);
            }
            let before = self.icount;
            let r = self.run_page::<M, DEBUG, JIT>(ram, mmio, &mut w.page, w.poff, k, end, skip);
            if self.icount != before {
                traps = 0;
            }
            match r {
                PageExit::Leave => {}
                PageExit::Refetch => forget_tags(ways),
                PageExit::Trap => {
                    forget_tags(ways);
                    traps += 1;
                    if traps >= MAX_TRAPS_WITHOUT_RETIRE {
                        return ExitReason::Yield;
                    }
                }
                PageExit::Exit(reason) => return reason,
            }
        }
    }

    /// Decode the block starting at `slot` of the page at RAM offset `poff` (virtual `pc`) and
    /// store it in `page`; returns its arena index. A 32-bit instruction straddling the page end
    /// goes alone into the scratch block, its upper half fetched through translation (whose
    /// fault reports the second page's address), and is never cached.
    #[cold]
    #[inline(never)]
    fn build_block(
        &mut self,
        ram: &mut Ram,
        page: &mut DecodedPage,
        poff: usize,
        slot: usize,
        pc: u64,
    ) -> Result<usize, Exception> {
        let mut ops = [Op::UNDECODED; MAX_BLOCK];
        let mut slots = [0u16; MAX_BLOCK];
        let mut n = 0;
        let mut s = slot;
        while s < SLOTS && n < MAX_BLOCK {
            let at = poff + s * 2;
            let lo = ram.load_at(at, 2) as u16;
            let op = if !is_32bit(lo) {
                decode16(lo)
            } else if s == SLOTS - 1 {
                if n > 0 {
                    break; // the straddling instruction starts its own (scratch) block
                }
                let va = pc.wrapping_add(2);
                let pa = self.translate_fetch(ram, va)?;
                let off = ram
                    .offset_readable(pa, 2)
                    .ok_or(Exception::InstrAccessFault(va))?;
                let word = lo as u32 | (ram.load_at(off, 2) as u32) << 16;
                let op = block_form(decode32_with(word, &self.features), s);
                return Ok(page.set_cross(op));
            } else {
                decode32_with(
                    lo as u32 | (ram.load_at(at + 2, 2) as u32) << 16,
                    &self.features,
                )
            };
            let op = block_form(op, s);
            ops[n] = op;
            slots[n] = s as u16;
            n += 1;
            s += op.len as usize / 2;
            if ends_block(op.kind) {
                break;
            }
        }
        Ok(page.add_block(slot, &ops[..n], &slots[..n], (s * 2) as u32))
    }

    /// Execute from one checked-out page, block by block, until the pc leaves it or something
    /// forces a refetch.
    ///
    /// A block runs in a tight loop over its ops with no per-instruction pc or budget work:
    /// the budget is checked once per block (a block longer than what is left runs only its
    /// first ops), and on an early exit (trap, MMIO store, code modification) the pc and the
    /// retired count are recomputed from the position in the block.
    ///
    /// With `DEBUG`, a block holding a breakpoint stops before it, and an instruction whose
    /// data access fires a watchpoint ends its block once it retired.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_page<M: Mmio, const DEBUG: bool, const JIT: bool>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        page: &mut DecodedPage,
        poff: usize,
        way: usize,
        end: u64,
        skip: &mut Option<u64>,
    ) -> PageExit {
        let mut pc = self.pc;
        let mut icount = self.icount;
        let vbase = pc & !(PAGE_SIZE - 1);
        // Constant while this page runs: privilege and mstatus change only through ops that
        // leave it (traps, xRET, CSR writes to mstatus / sstatus, see `csr_affects_fetch`).
        let dmode = self.data_mode();
        // With debugger hooks, translated code runs only on pages without a breakpoint (its
        // blocks never leave the page), and checks watchpoints in its memory helpers.
        let page_bp = DEBUG && self.debug.breakpoint_in(vbase, vbase + PAGE_SIZE);
        let jit_page = JIT && !page_bp;
        // The checking interpreter does only the checks this run needs (hooks change only
        // between runs, guest triggers only by CSR writes that end the run): with a breakpoint
        // elsewhere, its blocks here run almost as fast as the plain interpreter's.
        let watch = DEBUG && self.debug.watching();
        let triggers = DEBUG && self.debug.has_triggers();
        let coverage = DEBUG && self.debug.coverage.is_some();
        // The lockstep self-check translates on this thread, so a report names the same region
        // whatever the machine's load.
        let background = JIT && self.jit_background && !self.check.on;

        loop {
            // Only the first instruction of a run may skip its breakpoint.
            let skip_first = DEBUG && skip.take() == Some(pc);
            // Watches are skipped with it only after a watchpoint stop (`skip_debug_once`).
            let skip_watch_first = skip_first && self.debug.skip_watch;
            let start_off = pc & (PAGE_SIZE - 1);
            let slot = (start_off >> 1) as usize;
            let mut e = page.entry(slot);
            if e == 0 {
                e = match self.build_block(ram, page, poff, slot, pc) {
                    Ok(e) => e,
                    Err(ex) => {
                        self.pc = pc;
                        self.icount = icount;
                        let ex = if DEBUG && self.trigger_exec_hit(pc) {
                            Exception::Breakpoint(pc)
                        } else {
                            ex
                        };
                        self.take_exception(ex);
                        return PageExit::Trap;
                    }
                };
                // A page walk for a straddling instruction may have written this page.
                if let Some((lo, hi)) = ram.take_code_dirty(way) {
                    if page.overlaps(lo, hi) {
                        page.invalidate(lo, hi);
                        continue;
                    }
                }
            }
            let Some(hdr) = page.arena.get(e) else {
                // Cannot happen (entries point at headers); rebuild rather than panic.
                page.reset(page.gen);
                continue;
            };
            let full = hdr.raw as usize;
            let end_off = hdr.imm as u32 as u64;
            let n = if (full as u64) <= end - icount {
                full
            } else {
                (end - icount) as usize
            };
            // A hot block whose whole length fits the budget runs as host code (with debugger
            // hooks, not on a page with a breakpoint, nor for the instruction resumed from a
            // stop).
            let jit_fn = match self.jit {
                Some(c) if jit_page && n == full && !skip_first => {
                    page.jit_block(e, start_off, c, background)
                }
                _ => None,
            };
            if let Some(f) = jit_fn {
                if self.check.on {
                    // Lockstep self-check: the interpreter runs the region again and must agree.
                    self.pc = pc;
                    self.icount = icount;
                    match self.check_region(f, ram, mmio, page, poff, way, dmode, end, watch) {
                        Some(exit) => return exit,
                        None => {
                            pc = self.pc;
                            icount = self.icount;
                            if icount >= end || (pc & !(PAGE_SIZE - 1)) != vbase {
                                return PageExit::Leave;
                            }
                            continue;
                        }
                    }
                }
                let pp: *const DecodedPage = &*page;
                let budget = end - icount;
                let r = self.run_jit(f, ram, mmio, pp, way, dmode, icount, vbase, budget, watch);
                pc = r.npc;
                icount += r.retired;
                self.check.jit_retired += r.retired;
                match (r.tag, r.exc) {
                    (crate::jit::EXIT_TRAP, Some(ex)) => {
                        self.pc = pc;
                        self.icount = icount;
                        self.take_exception(ex);
                        return PageExit::Trap;
                    }
                    (crate::jit::EXIT_TRAP, None) if r.watch_hit => {
                        // A watchpoint fired before the access (the hit is recorded).
                        self.pc = pc;
                        self.icount = icount;
                        return PageExit::Exit(ExitReason::Debug);
                    }
                    (crate::jit::EXIT_DIRTY, _) => page.invalidate(r.dirty.0, r.dirty.1),
                    (crate::jit::EXIT_YIELD, _) => {
                        self.pc = pc;
                        self.icount = icount;
                        return PageExit::Exit(ExitReason::Yield);
                    }
                    (crate::jit::EXIT_REFETCH, _) => {
                        // A CSR write: the op helper set the pc (maybe to an interrupt
                        // handler) as the block loop's CSR arm does.
                        self.icount = icount;
                        return PageExit::Refetch;
                    }
                    _ => {}
                }
                if icount >= end || (pc & !(PAGE_SIZE - 1)) != vbase {
                    self.pc = pc;
                    self.icount = icount;
                    return PageExit::Leave;
                }
                continue;
            }
            let Some(ops) = page.arena.get(e + 1..e + 1 + n) else {
                page.reset(page.gen);
                continue;
            };
            let base = icount;
            // The fall-through pc; control ops (always last in a block) may replace it.
            let mut npc = if n == full {
                vbase.wrapping_add(end_off)
            } else {
                pc_at(vbase, start_off, ops, n)
            };
            // With breakpoints in this block (one search per block), check each op's pc.
            let mut bp_here = false;
            let mut dpc = pc;
            // The pc of each op, for coverage.
            let mut cpc = pc;
            if page_bp && self.debug.breakpoint_in(pc, npc) {
                if !skip_first && self.debug.is_breakpoint(pc) {
                    self.pc = pc;
                    self.icount = icount;
                    self.debug.hit = Some(DebugHit::Breakpoint { pc });
                    return PageExit::Exit(ExitReason::Debug);
                }
                // A guest execute trigger: breakpoint exception before the instruction.
                if self.trigger_exec_hit(pc) {
                    self.pc = pc;
                    self.icount = icount;
                    self.take_exception(Exception::Breakpoint(pc));
                    return PageExit::Trap;
                }
                bp_here = true;
            }

            macro_rules! rx {
                ($r:expr) => {
                    self.x[($r as usize) & 31]
                };
            }
            macro_rules! wx {
                ($r:expr, $v:expr) => {{
                    let v = $v;
                    self.x[($r as usize) & 31] = v;
                    self.x[0] = 0;
                }};
            }
            // For ops `block_form` guarantees have rd != 0.
            macro_rules! wr {
                ($r:expr, $v:expr) => {{
                    let v = $v;
                    self.x[($r as usize) & 31] = v;
                }};
            }
            // Retire the block's last op (`$i`) with next pc `$npc` and leave the page loop.
            macro_rules! retire_and {
                ($i:expr, $npc:expr, $exit:expr) => {{
                    self.pc = $npc;
                    self.icount = base + $i as u64 + 1;
                    return $exit;
                }};
            }
            // Make pc and icount exact for op `$i`, the block's last (a system op).
            macro_rules! sync_last {
                ($i:expr, $op:expr) => {{
                    self.pc = npc.wrapping_sub($op.len as u64);
                    self.icount = base + $i as u64;
                }};
            }

            let exit = 'blk: {
                // Writes may have hit decoded code of this page (stores, page-table A/D updates,
                // device DMA): leave the block after op `$i` if they hit an instruction.
                macro_rules! code_check {
                    ($i:expr) => {
                        if ram.way_dirty(way) {
                            if let Some((lo, hi)) = ram.take_code_dirty(way) {
                                if page.overlaps(lo, hi) {
                                    break 'blk BlockExit::Dirty($i + 1, lo, hi);
                                }
                            }
                        }
                    };
                }
                macro_rules! load {
                    ($i:expr, $op:expr, $size:expr) => {{
                        let a = rx!($op.rs1).wrapping_add($op.imm as i64 as u64);
                        // Devices read the clock at the access.
                        self.icount = base + $i as u64;
                        if watch
                            && !(skip_watch_first && $i == 0)
                            && self.watch_hit(ram, a, $size, true, false)
                        {
                            break 'blk BlockExit::Watch($i);
                        }
                        if triggers {
                            if let Some(t) = self.trigger_watch_hit(a, $size, true, false) {
                                break 'blk BlockExit::Trap($i, Exception::Breakpoint(t));
                            }
                        }
                        // With hooks the watchpoints were just checked (or deliberately skipped): a
                        // watched page's TLB entry serves the access like any other.
                        match self.load_in_w::<M, DEBUG>(ram, mmio, a, $size, dmode) {
                            Ok(v) => v,
                            Err(ex) => break 'blk BlockExit::Trap($i, ex),
                        }
                    }};
                }
                macro_rules! store {
                    ($i:expr, $op:expr, $size:expr, $val:expr) => {{
                        let a = rx!($op.rs1).wrapping_add($op.imm as i64 as u64);
                        let v = $val;
                        self.icount = base + $i as u64;
                        if watch
                            && !(skip_watch_first && $i == 0)
                            && self.watch_hit(ram, a, $size, false, true)
                        {
                            break 'blk BlockExit::Watch($i);
                        }
                        if triggers {
                            if let Some(t) = self.trigger_watch_hit(a, $size, false, true) {
                                break 'blk BlockExit::Trap($i, Exception::Breakpoint(t));
                            }
                        }
                        match self.store_in_w::<M, DEBUG>(ram, mmio, a, $size, v, dmode) {
                            Ok(StoreOutcome::Ram) => {}
                            Ok(StoreOutcome::CodeModified) => code_check!($i),
                            Ok(StoreOutcome::Mmio) => break 'blk BlockExit::Yield($i + 1),
                            Err(ex) => break 'blk BlockExit::Trap($i, ex),
                        }
                    }};
                }
                for (i, op) in ops.iter().enumerate() {
                    if DEBUG && bp_here {
                        if i > 0 && self.debug.is_breakpoint(dpc) {
                            break 'blk BlockExit::Break(i);
                        }
                        if i > 0 && self.trigger_exec_hit(dpc) {
                            break 'blk BlockExit::Trap(i, Exception::Breakpoint(dpc));
                        }
                        dpc = dpc.wrapping_add(op.len as u64);
                    }
                    if coverage {
                        if let Some(c) = self.debug.coverage.as_deref_mut() {
                            c.visit(base + i as u64, cpc, self.prv as u8);
                        }
                        cpc = cpc.wrapping_add(op.len as u64);
                    }
                    let imm = op.imm as i64 as u64;
                    match op.kind {
                        Kind::Undecoded | Kind::CrossPage | Kind::Illegal => {
                            break 'blk BlockExit::Trap(i, Exception::IllegalInstr(op.raw as u64))
                        }
                        Kind::Lui => wr!(op.rd, imm),
                        Kind::Auipc => wr!(op.rd, vbase.wrapping_add(imm)),
                        Kind::Jal => {
                            wr!(op.rd, npc);
                            npc = vbase.wrapping_add(imm);
                        }
                        Kind::Jalr => {
                            let t = rx!(op.rs1).wrapping_add(imm) & !1;
                            wr!(op.rd, npc);
                            npc = t;
                        }
                        Kind::Beq => {
                            if rx!(op.rs1) == rx!(op.rs2) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Bne => {
                            if rx!(op.rs1) != rx!(op.rs2) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Blt => {
                            if (rx!(op.rs1) as i64) < (rx!(op.rs2) as i64) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Bge => {
                            if (rx!(op.rs1) as i64) >= (rx!(op.rs2) as i64) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Bltu => {
                            if rx!(op.rs1) < rx!(op.rs2) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Bgeu => {
                            if rx!(op.rs1) >= rx!(op.rs2) {
                                npc = vbase.wrapping_add(imm);
                            }
                        }
                        Kind::Lb => {
                            let v = load!(i, op, 1);
                            wx!(op.rd, v as i8 as i64 as u64);
                            code_check!(i);
                        }
                        Kind::Lh => {
                            let v = load!(i, op, 2);
                            wx!(op.rd, v as i16 as i64 as u64);
                            code_check!(i);
                        }
                        Kind::Lw => {
                            let v = load!(i, op, 4);
                            wx!(op.rd, sext32(v));
                            code_check!(i);
                        }
                        Kind::Ld => {
                            let v = load!(i, op, 8);
                            wx!(op.rd, v);
                            code_check!(i);
                        }
                        Kind::Lbu => {
                            let v = load!(i, op, 1);
                            wx!(op.rd, v as u8 as u64);
                            code_check!(i);
                        }
                        Kind::Lhu => {
                            let v = load!(i, op, 2);
                            wx!(op.rd, v as u16 as u64);
                            code_check!(i);
                        }
                        Kind::Lwu => {
                            let v = load!(i, op, 4);
                            wx!(op.rd, v as u32 as u64);
                            code_check!(i);
                        }
                        Kind::Sb => store!(i, op, 1, rx!(op.rs2)),
                        Kind::Sh => store!(i, op, 2, rx!(op.rs2)),
                        Kind::Sw => store!(i, op, 4, rx!(op.rs2)),
                        Kind::Sd => store!(i, op, 8, rx!(op.rs2)),
                        Kind::Addi => wr!(op.rd, rx!(op.rs1).wrapping_add(imm)),
                        Kind::Slti => wr!(op.rd, ((rx!(op.rs1) as i64) < (imm as i64)) as u64),
                        Kind::Sltiu => wr!(op.rd, (rx!(op.rs1) < imm) as u64),
                        Kind::Xori => wr!(op.rd, rx!(op.rs1) ^ imm),
                        Kind::Ori => wr!(op.rd, rx!(op.rs1) | imm),
                        Kind::Andi => wr!(op.rd, rx!(op.rs1) & imm),
                        Kind::Slli => wr!(op.rd, rx!(op.rs1) << (imm & 63)),
                        Kind::Srli => wr!(op.rd, rx!(op.rs1) >> (imm & 63)),
                        Kind::Srai => wr!(op.rd, ((rx!(op.rs1) as i64) >> (imm & 63)) as u64),
                        Kind::Add => wr!(op.rd, rx!(op.rs1).wrapping_add(rx!(op.rs2))),
                        Kind::Sub => wr!(op.rd, rx!(op.rs1).wrapping_sub(rx!(op.rs2))),
                        Kind::Sll => wr!(op.rd, rx!(op.rs1) << (rx!(op.rs2) & 63)),
                        Kind::Slt => {
                            wr!(op.rd, ((rx!(op.rs1) as i64) < (rx!(op.rs2) as i64)) as u64)
                        }
                        Kind::Sltu => wr!(op.rd, (rx!(op.rs1) < rx!(op.rs2)) as u64),
                        Kind::Xor => wr!(op.rd, rx!(op.rs1) ^ rx!(op.rs2)),
                        Kind::Srl => wr!(op.rd, rx!(op.rs1) >> (rx!(op.rs2) & 63)),
                        Kind::Sra => {
                            wr!(op.rd, ((rx!(op.rs1) as i64) >> (rx!(op.rs2) & 63)) as u64)
                        }
                        Kind::Or => wr!(op.rd, rx!(op.rs1) | rx!(op.rs2)),
                        Kind::And => wr!(op.rd, rx!(op.rs1) & rx!(op.rs2)),
                        Kind::Addiw => wr!(op.rd, sext32(rx!(op.rs1).wrapping_add(imm))),
                        Kind::Slliw => {
                            wr!(op.rd, sext32(((rx!(op.rs1) as u32) << (imm & 31)) as u64))
                        }
                        Kind::Srliw => {
                            wr!(op.rd, sext32(((rx!(op.rs1) as u32) >> (imm & 31)) as u64))
                        }
                        Kind::Sraiw => {
                            wr!(op.rd, ((rx!(op.rs1) as i32) >> (imm & 31)) as i64 as u64)
                        }
                        Kind::Addw => wr!(op.rd, sext32(rx!(op.rs1).wrapping_add(rx!(op.rs2)))),
                        Kind::Subw => wr!(op.rd, sext32(rx!(op.rs1).wrapping_sub(rx!(op.rs2)))),
                        Kind::Sllw => wr!(
                            op.rd,
                            sext32(((rx!(op.rs1) as u32) << (rx!(op.rs2) & 31)) as u64)
                        ),
                        Kind::Srlw => wr!(
                            op.rd,
                            sext32(((rx!(op.rs1) as u32) >> (rx!(op.rs2) & 31)) as u64)
                        ),
                        Kind::Sraw => wr!(
                            op.rd,
                            ((rx!(op.rs1) as i32) >> (rx!(op.rs2) & 31)) as i64 as u64
                        ),
                        Kind::Mul => wr!(op.rd, rx!(op.rs1).wrapping_mul(rx!(op.rs2))),
                        Kind::Mulh => {
                            let p = (rx!(op.rs1) as i64 as i128) * (rx!(op.rs2) as i64 as i128);
                            wr!(op.rd, (p >> 64) as u64)
                        }
                        Kind::Mulhsu => {
                            let p = (rx!(op.rs1) as i64 as i128).wrapping_mul(rx!(op.rs2) as i128);
                            wr!(op.rd, (p >> 64) as u64)
                        }
                        Kind::Mulhu => {
                            let p = (rx!(op.rs1) as u128) * (rx!(op.rs2) as u128);
                            wr!(op.rd, (p >> 64) as u64)
                        }
                        Kind::Div => {
                            let (a, b) = (rx!(op.rs1) as i64, rx!(op.rs2) as i64);
                            wr!(
                                op.rd,
                                if b == 0 {
                                    u64::MAX
                                } else {
                                    a.wrapping_div(b) as u64
                                }
                            )
                        }
                        Kind::Divu => {
                            let (a, b) = (rx!(op.rs1), rx!(op.rs2));
                            wr!(op.rd, a.checked_div(b).unwrap_or(u64::MAX))
                        }
                        Kind::Rem => {
                            let (a, b) = (rx!(op.rs1) as i64, rx!(op.rs2) as i64);
                            wr!(
                                op.rd,
                                if b == 0 {
                                    a as u64
                                } else {
                                    a.wrapping_rem(b) as u64
                                }
                            )
                        }
                        Kind::Remu => {
                            let (a, b) = (rx!(op.rs1), rx!(op.rs2));
                            wr!(op.rd, if b == 0 { a } else { a % b })
                        }
                        Kind::Mulw => wr!(op.rd, sext32(rx!(op.rs1).wrapping_mul(rx!(op.rs2)))),
                        Kind::Divw => {
                            let (a, b) = (rx!(op.rs1) as i32, rx!(op.rs2) as i32);
                            wr!(
                                op.rd,
                                if b == 0 {
                                    u64::MAX
                                } else {
                                    a.wrapping_div(b) as i64 as u64
                                }
                            )
                        }
                        Kind::Divuw => {
                            let (a, b) = (rx!(op.rs1) as u32, rx!(op.rs2) as u32);
                            wr!(
                                op.rd,
                                a.checked_div(b).map_or(u64::MAX, |q| sext32(q as u64))
                            )
                        }
                        Kind::Remw => {
                            let (a, b) = (rx!(op.rs1) as i32, rx!(op.rs2) as i32);
                            wr!(
                                op.rd,
                                if b == 0 {
                                    a as i64 as u64
                                } else {
                                    a.wrapping_rem(b) as i64 as u64
                                }
                            )
                        }
                        Kind::Remuw => {
                            let (a, b) = (rx!(op.rs1) as u32, rx!(op.rs2) as u32);
                            wr!(
                                op.rd,
                                sext32(if b == 0 { a as u64 } else { (a % b) as u64 })
                            )
                        }
                        Kind::Sh1add => wr!(op.rd, (rx!(op.rs1) << 1).wrapping_add(rx!(op.rs2))),
                        Kind::Sh2add => wr!(op.rd, (rx!(op.rs1) << 2).wrapping_add(rx!(op.rs2))),
                        Kind::Sh3add => wr!(op.rd, (rx!(op.rs1) << 3).wrapping_add(rx!(op.rs2))),
                        Kind::AddUw => {
                            wr!(op.rd, (rx!(op.rs1) as u32 as u64).wrapping_add(rx!(op.rs2)))
                        }
                        Kind::Sh1addUw => wr!(
                            op.rd,
                            ((rx!(op.rs1) as u32 as u64) << 1).wrapping_add(rx!(op.rs2))
                        ),
                        Kind::Sh2addUw => wr!(
                            op.rd,
                            ((rx!(op.rs1) as u32 as u64) << 2).wrapping_add(rx!(op.rs2))
                        ),
                        Kind::Sh3addUw => wr!(
                            op.rd,
                            ((rx!(op.rs1) as u32 as u64) << 3).wrapping_add(rx!(op.rs2))
                        ),
                        Kind::SlliUw => wr!(op.rd, (rx!(op.rs1) as u32 as u64) << (imm & 63)),
                        Kind::Andn => wr!(op.rd, rx!(op.rs1) & !rx!(op.rs2)),
                        Kind::Orn => wr!(op.rd, rx!(op.rs1) | !rx!(op.rs2)),
                        Kind::Xnor => wr!(op.rd, !(rx!(op.rs1) ^ rx!(op.rs2))),
                        Kind::Clz => wr!(op.rd, rx!(op.rs1).leading_zeros() as u64),
                        Kind::Clzw => wr!(op.rd, (rx!(op.rs1) as u32).leading_zeros() as u64),
                        Kind::Ctz => wr!(op.rd, rx!(op.rs1).trailing_zeros() as u64),
                        Kind::Ctzw => wr!(op.rd, (rx!(op.rs1) as u32).trailing_zeros() as u64),
                        Kind::Cpop => wr!(op.rd, rx!(op.rs1).count_ones() as u64),
                        Kind::Cpopw => wr!(op.rd, (rx!(op.rs1) as u32).count_ones() as u64),
                        Kind::Max => {
                            wr!(op.rd, (rx!(op.rs1) as i64).max(rx!(op.rs2) as i64) as u64)
                        }
                        Kind::Maxu => wr!(op.rd, rx!(op.rs1).max(rx!(op.rs2))),
                        Kind::Min => {
                            wr!(op.rd, (rx!(op.rs1) as i64).min(rx!(op.rs2) as i64) as u64)
                        }
                        Kind::Minu => wr!(op.rd, rx!(op.rs1).min(rx!(op.rs2))),
                        Kind::SextB => wr!(op.rd, rx!(op.rs1) as i8 as i64 as u64),
                        Kind::SextH => wr!(op.rd, rx!(op.rs1) as i16 as i64 as u64),
                        Kind::ZextH => wr!(op.rd, rx!(op.rs1) as u16 as u64),
                        Kind::Rol => wr!(op.rd, rx!(op.rs1).rotate_left(rx!(op.rs2) as u32 & 63)),
                        Kind::Ror => {
                            wr!(op.rd, rx!(op.rs1).rotate_right(rx!(op.rs2) as u32 & 63))
                        }
                        Kind::Rori => wr!(op.rd, rx!(op.rs1).rotate_right(imm as u32 & 63)),
                        Kind::Rolw => wr!(
                            op.rd,
                            sext32((rx!(op.rs1) as u32).rotate_left(rx!(op.rs2) as u32 & 31) as u64)
                        ),
                        Kind::Rorw => wr!(
                            op.rd,
                            sext32(
                                (rx!(op.rs1) as u32).rotate_right(rx!(op.rs2) as u32 & 31) as u64
                            )
                        ),
                        Kind::Roriw => wr!(
                            op.rd,
                            sext32((rx!(op.rs1) as u32).rotate_right(imm as u32 & 31) as u64)
                        ),
                        Kind::OrcB => wr!(op.rd, orc_b(rx!(op.rs1))),
                        Kind::Rev8 => wr!(op.rd, rx!(op.rs1).swap_bytes()),
                        Kind::Clmul => wr!(op.rd, clmul(rx!(op.rs1), rx!(op.rs2)) as u64),
                        Kind::Clmulh => wr!(op.rd, (clmul(rx!(op.rs1), rx!(op.rs2)) >> 64) as u64),
                        Kind::Clmulr => wr!(op.rd, (clmul(rx!(op.rs1), rx!(op.rs2)) >> 63) as u64),
                        Kind::Bclr => wr!(op.rd, rx!(op.rs1) & !(1u64 << (rx!(op.rs2) & 63))),
                        Kind::Bclri => wr!(op.rd, rx!(op.rs1) & !(1u64 << (imm & 63))),
                        Kind::Bext => wr!(op.rd, (rx!(op.rs1) >> (rx!(op.rs2) & 63)) & 1),
                        Kind::Bexti => wr!(op.rd, (rx!(op.rs1) >> (imm & 63)) & 1),
                        Kind::Binv => wr!(op.rd, rx!(op.rs1) ^ (1u64 << (rx!(op.rs2) & 63))),
                        Kind::Binvi => wr!(op.rd, rx!(op.rs1) ^ (1u64 << (imm & 63))),
                        Kind::Bset => wr!(op.rd, rx!(op.rs1) | (1u64 << (rx!(op.rs2) & 63))),
                        Kind::Bseti => wr!(op.rd, rx!(op.rs1) | (1u64 << (imm & 63))),
                        Kind::CzeroEqz => {
                            wr!(op.rd, if rx!(op.rs2) == 0 { 0 } else { rx!(op.rs1) })
                        }
                        Kind::CzeroNez => {
                            wr!(op.rd, if rx!(op.rs2) != 0 { 0 } else { rx!(op.rs1) })
                        }
                        Kind::CboClean | Kind::CboFlush | Kind::CboInval => {
                            if let Err(ex) = self.cbo_manage(ram, op, dmode) {
                                break 'blk BlockExit::Trap(i, ex);
                            }
                            // A page walk may have set A bits in decoded code.
                            code_check!(i);
                        }
                        Kind::CboZero => {
                            let a = rx!(op.rs1) & !(CBO_BLOCK - 1);
                            self.icount = base + i as u64;
                            if DEBUG
                                && !(skip_watch_first && i == 0)
                                && self.watch_hit(ram, a, CBO_BLOCK, false, true)
                            {
                                break 'blk BlockExit::Watch(i);
                            }
                            match self.cbo_zero(ram, mmio, op, dmode) {
                                Ok(StoreOutcome::Ram) => {}
                                Ok(StoreOutcome::CodeModified) => code_check!(i),
                                Ok(StoreOutcome::Mmio) => break 'blk BlockExit::Yield(i + 1),
                                Err(ex) => break 'blk BlockExit::Trap(i, ex),
                            }
                        }
                        Kind::WrsNto | Kind::WrsSto => {
                            if let Err(ex) = self.wrs(op) {
                                break 'blk BlockExit::Trap(i, ex);
                            }
                        }
                        Kind::Fence | Kind::Nop => {}
                        Kind::J => npc = vbase.wrapping_add(imm),
                        Kind::Jr => npc = rx!(op.rs1).wrapping_add(imm) & !1,
                        Kind::FenceI => {
                            ram.invalidate_all_code();
                            retire_and!(i, npc, PageExit::Leave)
                        }
                        Kind::Ecall => break 'blk BlockExit::Trap(i, Exception::Ecall),
                        // QEMU 10 writes the ebreak's pc to xtval (the spec allows 0 or the pc).
                        Kind::Ebreak => {
                            let at = pc_at(vbase, start_off, ops, i);
                            break 'blk BlockExit::Trap(i, Exception::Breakpoint(at));
                        }
                        Kind::Mret | Kind::Sret => {
                            sync_last!(i, op);
                            let r = if op.kind == Kind::Mret {
                                self.mret()
                            } else {
                                self.sret()
                            };
                            match r {
                                Ok(target) => {
                                    self.pc = target;
                                    self.icount = base + i as u64 + 1;
                                    self.take_pending_interrupt();
                                    return PageExit::Refetch;
                                }
                                Err(_) => {
                                    break 'blk BlockExit::Trap(
                                        i,
                                        Exception::IllegalInstr(op.raw as u64),
                                    )
                                }
                            }
                        }
                        Kind::Wfi => {
                            sync_last!(i, op);
                            if self.wfi_allowed().is_err() {
                                break 'blk BlockExit::Trap(
                                    i,
                                    Exception::IllegalInstr(op.raw as u64),
                                );
                            }
                            self.pc = npc;
                            self.icount = base + i as u64 + 1;
                            // take_pending_interrupt clears `wfi` when any interrupt is pending
                            // in mip & mie, even one it cannot take now: then wfi does not wait.
                            self.wfi = true;
                            if self.take_pending_interrupt() {
                                self.wfi = false;
                                return PageExit::Refetch;
                            }
                            if self.wfi {
                                return PageExit::Exit(ExitReason::Wfi);
                            }
                            return PageExit::Refetch;
                        }
                        Kind::SfenceVma => {
                            sync_last!(i, op);
                            if self.sfence_allowed().is_err() {
                                break 'blk BlockExit::Trap(
                                    i,
                                    Exception::IllegalInstr(op.raw as u64),
                                );
                            }
                            self.tlb.flush();
                            retire_and!(i, npc, PageExit::Refetch)
                        }
                        Kind::Csrrw
                        | Kind::Csrrs
                        | Kind::Csrrc
                        | Kind::Csrrwi
                        | Kind::Csrrsi
                        | Kind::Csrrci => {
                            sync_last!(i, op);
                            match self.exec_csr(mmio, op, npc) {
                                Ok(CsrDone::Next) => {}
                                Ok(CsrDone::Refetch) => return PageExit::Refetch,
                                Ok(CsrDone::Yield) => return PageExit::Exit(ExitReason::Yield),
                                Err(ex) => break 'blk BlockExit::Trap(i, ex),
                            }
                        }
                        Kind::LrW
                        | Kind::ScW
                        | Kind::AmoSwapW
                        | Kind::AmoAddW
                        | Kind::AmoXorW
                        | Kind::AmoAndW
                        | Kind::AmoOrW
                        | Kind::AmoMinW
                        | Kind::AmoMaxW
                        | Kind::AmoMinuW
                        | Kind::AmoMaxuW
                        | Kind::LrD
                        | Kind::ScD
                        | Kind::AmoSwapD
                        | Kind::AmoAddD
                        | Kind::AmoXorD
                        | Kind::AmoAndD
                        | Kind::AmoOrD
                        | Kind::AmoMinD
                        | Kind::AmoMaxD
                        | Kind::AmoMinuD
                        | Kind::AmoMaxuD => {
                            self.icount = base + i as u64;
                            if DEBUG {
                                if !(skip_watch_first && i == 0)
                                    && self.amo_watch(ram, op.kind, rx!(op.rs1))
                                {
                                    break 'blk BlockExit::Watch(i);
                                }
                                if let Some(t) = self.amo_trigger(op.kind, rx!(op.rs1)) {
                                    break 'blk BlockExit::Trap(i, Exception::Breakpoint(t));
                                }
                            }
                            match self.exec_amo(ram, mmio, op) {
                                Err(ex) => break 'blk BlockExit::Trap(i, ex),
                                // A device register: its interrupt lines may have changed.
                                Ok(true) => break 'blk BlockExit::Yield(i + 1),
                                Ok(false) => {}
                            }
                            code_check!(i);
                        }
                        Kind::Flw | Kind::Fld => {
                            if !self.fp_enabled() {
                                break 'blk BlockExit::Trap(
                                    i,
                                    Exception::IllegalInstr(op.raw as u64),
                                );
                            }
                            if op.kind == Kind::Flw {
                                let v = load!(i, op, 4);
                                self.f[op.rd as usize & 31] = fpu::box_f32(v as u32);
                            } else {
                                let v = load!(i, op, 8);
                                self.f[op.rd as usize & 31] = v;
                            }
                            self.set_fs_dirty();
                            code_check!(i);
                        }
                        Kind::Fsw | Kind::Fsd => {
                            if !self.fp_enabled() {
                                break 'blk BlockExit::Trap(
                                    i,
                                    Exception::IllegalInstr(op.raw as u64),
                                );
                            }
                            let v = self.f[op.rs2 as usize & 31];
                            if op.kind == Kind::Fsw {
                                store!(i, op, 4, v)
                            } else {
                                store!(i, op, 8, v)
                            }
                        }
                        Kind::FmaddS
                        | Kind::FmsubS
                        | Kind::FnmsubS
                        | Kind::FnmaddS
                        | Kind::FmaddD
                        | Kind::FmsubD
                        | Kind::FnmsubD
                        | Kind::FnmaddD
                        | Kind::FaddS
                        | Kind::FsubS
                        | Kind::FmulS
                        | Kind::FdivS
                        | Kind::FsqrtS
                        | Kind::FaddD
                        | Kind::FsubD
                        | Kind::FmulD
                        | Kind::FdivD
                        | Kind::FsqrtD
                        | Kind::FsgnjS
                        | Kind::FsgnjD
                        | Kind::FminmaxS
                        | Kind::FminmaxD
                        | Kind::FcmpS
                        | Kind::FcmpD
                        | Kind::FclassS
                        | Kind::FclassD
                        | Kind::FcvtIntS
                        | Kind::FcvtIntD
                        | Kind::FcvtSInt
                        | Kind::FcvtDInt
                        | Kind::FcvtSD
                        | Kind::FcvtDS
                        | Kind::FmvXW
                        | Kind::FmvWX
                        | Kind::FmvXD
                        | Kind::FmvDX
                        | Kind::FliS
                        | Kind::FliD
                        | Kind::FminmaxmS
                        | Kind::FminmaxmD
                        | Kind::FroundS
                        | Kind::FroundD
                        | Kind::FcvtmodWD
                        | Kind::FcmpqS
                        | Kind::FcmpqD => {
                            if let Err(ex) = self.exec_fp(op) {
                                break 'blk BlockExit::Trap(i, ex);
                            }
                        }
                    }
                }
                BlockExit::Done
            };
            match exit {
                BlockExit::Done => {
                    pc = npc;
                    icount = base + n as u64;
                }
                BlockExit::Trap(i, ex) => {
                    self.pc = pc_at(vbase, start_off, ops, i);
                    self.icount = base + i as u64;
                    self.take_exception(ex);
                    return PageExit::Trap;
                }
                BlockExit::Yield(k) => {
                    self.pc = pc_at(vbase, start_off, ops, k);
                    self.icount = base + k as u64;
                    return PageExit::Exit(ExitReason::Yield);
                }
                BlockExit::Dirty(k, lo, hi) => {
                    pc = pc_at(vbase, start_off, ops, k);
                    icount = base + k as u64;
                    page.invalidate(lo, hi);
                }

                BlockExit::Break(i) => {
                    self.pc = pc_at(vbase, start_off, ops, i);
                    self.icount = base + i as u64;
                    self.debug.hit = Some(DebugHit::Breakpoint { pc: self.pc });
                    return PageExit::Exit(ExitReason::Debug);
                }
                BlockExit::Watch(k) => {
                    self.pc = pc_at(vbase, start_off, ops, k);
                    self.icount = base + k as u64;
                    return PageExit::Exit(ExitReason::Debug);
                }
            }
            if icount >= end || (pc & !(PAGE_SIZE - 1)) != vbase {
                self.pc = pc;
                self.icount = icount;
                return PageExit::Leave;
            }
        }
    }

    /// Run the translated region `f` (see [`crate::jit`]) with `budget` instructions at most,
    /// `base` = icount on entry, checking watchpoints if `watch`.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_jit<M: Mmio>(
        &mut self,
        f: crate::jit::BlockFn,
        ram: &mut Ram,
        mmio: &mut M,
        page: *const DecodedPage,
        way: usize,
        dmode: usize,
        base: u64,
        vbase: u64,
        budget: u64,
        watch: bool,
    ) -> crate::jit::RegionExit {
        use crate::jit::*;
        let tlb_load = self.tlb.set_ptr(crate::mmu::Access::Load, dmode).cast();
        let tlb_store = self.tlb.set_ptr(crate::mmu::Access::Store, dmode).cast();
        let (mem, code_state, page_dirty) = ram.jit_pointers();
        let [watch_load, watch_store] = self.debug.jit_windows;
        let hart: *mut Hart = self;
        let mut env = JitEnv::<M> {
            hart,
            ram,
            mmio,
            page,
            way,
            dmode,
            base,
            exc: None,
            dirty: (0, 0),
            watch,
            watch_hit: false,
        };
        let mut ctx = JitCtx {
            // SAFETY: `hart` is valid; only translated code and the helpers use it until `f`
            // returns.
            x: unsafe { (*hart).x.as_mut_ptr() },
            vbase,
            npc: 0,
            load: load_helper::<M>,
            store: store_helper::<M>,
            op: op_helper::<M>,
            status: 0,
            env: (&mut env as *mut JitEnv<M>).cast(),
            budget,
            retired: 0,
            tlb_load,
            tlb_store,
            mem,
            code_state,
            page_dirty,
            // The self-check's RAM journal sees only accesses through the helpers: no inline
            // fast path then. (Watched pages are flagged in the TLB, so the inline path misses
            // on them alone, and the helpers check those accesses the watch windows do not
            // rule out.)
            slow_mem: u64::from(self.check.on),
            // Only used on TLB entries flagged by the same watchpoints.
            watch_load,
            watch_store,
        };
        // SAFETY: `f` was generated for the `JitCtx` contract; every pointer in `ctx` is live
        // for the call and nothing else touches what they point to meanwhile.
        let tag = unsafe { f(&mut ctx) };
        RegionExit {
            tag,
            npc: ctx.npc,
            retired: ctx.retired,
            exc: env.exc.take(),
            dirty: env.dirty,
            watch_hit: env.watch_hit,
        }
    }

    /// A CSR op (`csrrw` .. `csrrci`, the last op of its block) with `self.pc` and `self.icount`
    /// its own and `npc` the next instruction's pc: the one implementation the block loop and
    /// translated code (through [`Hart::jit_op`]) share. On success `rd` holds the old value;
    /// after a write, `self.pc` = `npc` and `self.icount` counts the op, and an interrupt the
    /// write unmasked is taken. An illegal access is `IllegalInstr` with the instruction bits.
    #[inline(never)]
    pub(crate) fn exec_csr<M: Mmio>(
        &mut self,
        mmio: &M,
        op: &Op,
        npc: u64,
    ) -> Result<CsrDone, Exception> {
        let rs1 = self.x[op.rs1 as usize & 31];
        let (cop, operand, write) = match op.kind {
            Kind::Csrrw => (CsrOp::Write, rs1, true),
            Kind::Csrrs => (CsrOp::Set, rs1, op.rs1 != 0),
            Kind::Csrrc => (CsrOp::Clear, rs1, op.rs1 != 0),
            Kind::Csrrwi => (CsrOp::Write, op.rs1 as u64, true),
            Kind::Csrrsi => (CsrOp::Set, op.rs1 as u64, op.rs1 != 0),
            _ => (CsrOp::Clear, op.rs1 as u64, op.rs1 != 0),
        };
        let addr = op.imm as u16 & 0xfff;
        let old = match self.csr_op(mmio, addr, cop, operand, write) {
            Ok(old) => old,
            Err(Exception::IllegalInstr(_)) => return Err(Exception::IllegalInstr(op.raw as u64)),
            Err(ex) => return Err(ex),
        };
        self.x[op.rd as usize & 31] = old;
        self.x[0] = 0;
        if write {
            self.pc = npc;
            self.icount += 1;
            // The write may have unmasked an interrupt or changed translation.
            if self.take_pending_interrupt() || csr_affects_fetch(addr) {
                return Ok(CsrDone::Refetch);
            }
            // A new timer deadline or trigger: back to the machine (deadline) and to `run`
            // (which picks the interpreter).
            if csr_needs_exit(addr) {
                return Ok(CsrDone::Yield);
            }
        }
        Ok(CsrDone::Next)
    }

    /// One op for translated code (`crate::jit::op_helper`), exactly as the block loop runs it
    /// (with `watch`: as the checking interpreter, which is the one translated code stands in
    /// for when watchpoints are set; guest triggers never run translated code): LR/SC and
    /// AMOs, F and D computational ops, FP loads and stores, CSR ops. `self.icount` is the
    /// op's, `pc` its pc.
    #[inline(never)]
    pub(crate) fn jit_op<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        op: &Op,
        pc: u64,
        dmode: usize,
        watch: bool,
    ) -> Result<JitOpDone, Exception> {
        use Kind::*;
        let ill = Exception::IllegalInstr(op.raw as u64);
        let addr = self.x[op.rs1 as usize & 31].wrapping_add(op.imm as i64 as u64);
        match op.kind {
            Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci => {
                // As the block loop's `sync_last!`: the op's own pc.
                self.pc = pc;
                Ok(
                    match self.exec_csr(mmio, op, pc.wrapping_add(op.len as u64))? {
                        CsrDone::Next => JitOpDone::Next,
                        CsrDone::Refetch => JitOpDone::Refetch,
                        CsrDone::Yield => JitOpDone::Yield,
                    },
                )
            }
            LrW | ScW | AmoSwapW | AmoAddW | AmoXorW | AmoAndW | AmoOrW | AmoMinW | AmoMaxW
            | AmoMinuW | AmoMaxuW | LrD | ScD | AmoSwapD | AmoAddD | AmoXorD | AmoAndD | AmoOrD
            | AmoMinD | AmoMaxD | AmoMinuD | AmoMaxuD => {
                if watch && self.amo_watch(ram, op.kind, self.x[op.rs1 as usize & 31]) {
                    return Ok(JitOpDone::Watch);
                }
                // A device register: its interrupt lines may have changed.
                Ok(if self.exec_amo(ram, mmio, op)? {
                    JitOpDone::Yield
                } else {
                    JitOpDone::CodeCheck
                })
            }
            Flw | Fld => {
                if !self.fp_enabled() {
                    return Err(ill);
                }
                let size = if op.kind == Flw { 4 } else { 8 };
                if watch && self.watch_hit(ram, addr, size, true, false) {
                    return Ok(JitOpDone::Watch);
                }
                // `watch`: checked just above; without it no TLB entry carries the flag.
                let v = self.load_in_w::<M, true>(ram, mmio, addr, size as u8, dmode)?;
                self.f[op.rd as usize & 31] = if op.kind == Flw {
                    fpu::box_f32(v as u32)
                } else {
                    v
                };
                self.set_fs_dirty();
                Ok(JitOpDone::CodeCheck)
            }
            Fsw | Fsd => {
                if !self.fp_enabled() {
                    return Err(ill);
                }
                let v = self.f[op.rs2 as usize & 31];
                let size = if op.kind == Fsw { 4 } else { 8 };
                if watch && self.watch_hit(ram, addr, size, false, true) {
                    return Ok(JitOpDone::Watch);
                }
                Ok(
                    match self.store_in_w::<M, true>(ram, mmio, addr, size as u8, v, dmode)? {
                        StoreOutcome::Ram => JitOpDone::Next,
                        StoreOutcome::CodeModified => JitOpDone::CodeCheck,
                        StoreOutcome::Mmio => JitOpDone::Yield,
                    },
                )
            }
            CboClean | CboFlush | CboInval => {
                self.cbo_manage(ram, op, dmode)?;
                // A page walk may have set A bits in decoded code.
                Ok(JitOpDone::CodeCheck)
            }
            CboZero => {
                let a = self.x[op.rs1 as usize & 31] & !(CBO_BLOCK - 1);
                if watch && self.watch_hit(ram, a, CBO_BLOCK, false, true) {
                    return Ok(JitOpDone::Watch);
                }
                Ok(match self.cbo_zero(ram, mmio, op, dmode)? {
                    StoreOutcome::Ram => JitOpDone::Next,
                    StoreOutcome::CodeModified => JitOpDone::CodeCheck,
                    StoreOutcome::Mmio => JitOpDone::Yield,
                })
            }
            WrsNto | WrsSto => {
                self.wrs(op)?;
                Ok(JitOpDone::Next)
            }
            _ => {
                self.exec_fp(op)?;
                Ok(JitOpDone::Next)
            }
        }
    }

    /// Would the LR/SC/AMO about to execute at `addr` fire a watchpoint? LR reads, SC writes
    /// (whether or not it will succeed), an AMO reads and writes. Records the hit.
    #[cold]
    fn amo_watch(&mut self, ram: &Ram, kind: Kind, addr: u64) -> bool {
        let (size, read, write) = amo_access(kind);
        self.watch_hit(ram, addr, size, read, write)
    }

    /// Would the LR/SC/AMO about to execute at `addr` fire a guest load/store trigger? Its xtval.
    #[cold]
    fn amo_trigger(&self, kind: Kind, addr: u64) -> Option<u64> {
        let (size, read, write) = amo_access(kind);
        self.trigger_watch_hit(addr, size, read, write)
    }

    /// LR/SC and AMOs: read-modify-write at the physical address from `translate_atomic_any`.
    /// On a device register the access is a load then a store through `mmio` (as QEMU 10 does
    /// outside RAM); returns true then, so the interpreter yields to update interrupt lines.
    #[inline(never)]
    fn exec_amo<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        op: &Op,
    ) -> Result<bool, Exception> {
        use Kind::*;
        let addr = self.x[op.rs1 as usize & 31];
        let src = self.x[op.rs2 as usize & 31];
        let word = (op.kind as u8) <= (AmoMaxuW as u8);
        let size: u8 = if word { 4 } else { 8 };
        let ext = |v: u64| if word { sext32(v) } else { v };
        let lr = matches!(op.kind, LrW | LrD);
        // An SC whose address is not the one the LR reserved (or with no reservation) fails
        // without touching memory, so it cannot fault: QEMU 10 compares the SC's virtual address
        // with the LR's before any access. spec departure (docs/machine.md 8): a misaligned SC
        // raises store/AMO address misaligned (QEMU 10 just fails it).
        if matches!(op.kind, ScW | ScD) {
            if addr & (size as u64 - 1) != 0 {
                return Err(Exception::StoreMisaligned(addr));
            }
            if self.reservation != Some(addr) {
                self.reservation = None;
                self.x[op.rd as usize & 31] = 1;
                self.x[0] = 0;
                return Ok(false);
            }
        }
        let (pa, dev) = match self.translate_atomic_any(ram, addr, size, lr) {
            Ok(t) => t,
            Err(e @ Exception::StorePageFault(_)) => {
                // QEMU 10 (single-threaded TCG, as under -icount) performs an AMO or SC as a
                // load and then a store: the load's walk sets A (Svadu) on a readable page
                // before the store's walk faults. Svadu allows the A update ("may be performed
                // as a result of speculation"); a failing second walk changes nothing.
                let _ = self.translate_atomic_any(ram, addr, size, true);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let fault = if lr {
            Exception::LoadAccessFault(addr)
        } else {
            Exception::StoreAccessFault(addr)
        };
        // The cell: a RAM offset (LR may read ROM; stores need writable RAM) or a device.
        let cell = if dev {
            None
        } else if lr {
            Some(ram.offset_readable(pa, size as u64).ok_or(fault)?)
        } else {
            Some(ram.offset(pa, size as u64).ok_or(fault)?)
        };
        let icount = self.icount;
        let old = match cell {
            Some(off) => ram.load_at(off, size),
            None => mmio.load(ram, pa, size, icount).map_err(|_| fault)?,
        };
        let new = match op.kind {
            LrW | LrD => {
                self.reservation = Some(addr);
                self.reservation_val = old;
                None
            }
            // QEMU 10's SC is a compare-and-swap against the value the LR read: a store of
            // another value in between (even by this hart) makes it fail.
            ScW | ScD => {
                let ok = old == self.reservation_val;
                self.reservation = None;
                ok.then_some(src)
            }
            _ if word => {
                let (a, b) = (old as u32, src as u32);
                Some(
                    (match op.kind {
                        AmoSwapW => b,
                        AmoAddW => a.wrapping_add(b),
                        AmoXorW => a ^ b,
                        AmoAndW => a & b,
                        AmoOrW => a | b,
                        AmoMinW => (a as i32).min(b as i32) as u32,
                        AmoMaxW => (a as i32).max(b as i32) as u32,
                        AmoMinuW => a.min(b),
                        _ => a.max(b),
                    }) as u64,
                )
            }
            _ => {
                let (a, b) = (old, src);
                Some(match op.kind {
                    AmoSwapD => b,
                    AmoAddD => a.wrapping_add(b),
                    AmoXorD => a ^ b,
                    AmoAndD => a & b,
                    AmoOrD => a | b,
                    AmoMinD => (a as i64).min(b as i64) as u64,
                    AmoMaxD => (a as i64).max(b as i64) as u64,
                    AmoMinuD => a.min(b),
                    _ => a.max(b),
                })
            }
        };
        if let Some(v) = new {
            match cell {
                Some(off) => {
                    ram.store_at(off, size, v);
                }
                None => mmio.store(ram, pa, size, v, icount).map_err(|_| fault)?,
            }
        }
        let result = match op.kind {
            ScW | ScD => new.is_none() as u64,
            _ => ext(old),
        };
        self.x[op.rd as usize & 31] = result;
        self.x[0] = 0;
        Ok(dev)
    }

    /// The Zicbom/Zicboz enable of `menvcfg`/`senvcfg` (`field` = the envcfg bits of the
    /// operation) for the current privilege: off below M is an illegal instruction.
    fn cbo_allowed(&self, op: &Op, field: u64) -> Result<(), Exception> {
        let ill = Exception::IllegalInstr(op.raw as u64);
        if self.prv != Priv::M && self.csr.menvcfg & field == 0 {
            return Err(ill);
        }
        if self.prv == Priv::U && self.csr.senvcfg & field == 0 {
            return Err(ill);
        }
        Ok(())
    }

    /// cbo.clean / cbo.flush / cbo.inval: no cache to maintain, only the checks. Like QEMU,
    /// the block is first probed for a load; if that fails it must be writable, and the fault
    /// reported is the store's (for the block-aligned address).
    #[inline(never)]
    fn cbo_manage(&mut self, ram: &mut Ram, op: &Op, mode: usize) -> Result<(), Exception> {
        let field = if op.kind == Kind::CboInval {
            ENVCFG_CBIE
        } else {
            ENVCFG_CBCFE
        };
        self.cbo_allowed(op, field)?;
        let a = self.x[op.rs1 as usize & 31] & !(CBO_BLOCK - 1);
        if self
            .translate_block(ram, a, CBO_BLOCK, Access::Load, mode)
            .is_ok()
        {
            return Ok(());
        }
        self.translate_block(ram, a, CBO_BLOCK, Access::Store, mode)
            .map(|_| ())
    }

    /// cbo.zero: store zeros to the aligned 64-byte block (a device gets 64 byte stores, as
    /// under QEMU).
    #[inline(never)]
    fn cbo_zero<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        op: &Op,
        mode: usize,
    ) -> Result<StoreOutcome, Exception> {
        self.cbo_allowed(op, ENVCFG_CBZE)?;
        let a = self.x[op.rs1 as usize & 31] & !(CBO_BLOCK - 1);
        match self.translate_block(ram, a, CBO_BLOCK, Access::Store, mode)? {
            BlockTarget::Ram(off) => {
                let mut code = false;
                for k in 0..CBO_BLOCK as usize / 8 {
                    code |= ram.store_at(off + 8 * k, 8, 0);
                }
                Ok(if code || ram.code_dirty() {
                    StoreOutcome::CodeModified
                } else {
                    StoreOutcome::Ram
                })
            }
            BlockTarget::Mmio(pa) => {
                for k in 0..CBO_BLOCK {
                    mmio.store(ram, pa + k, 1, 0, self.icount)
                        .map_err(|_| Exception::StoreAccessFault(a + k))?;
                }
                Ok(StoreOutcome::Mmio)
            }
        }
    }

    /// wrs.nto / wrs.sto: the reservation is dropped and the wait ends at once (nothing else
    /// runs while this hart waits); like QEMU, wrs.nto below M with mstatus.TW set traps as
    /// if its time limit had expired.
    fn wrs(&mut self, op: &Op) -> Result<(), Exception> {
        if op.kind == Kind::WrsNto && self.prv != Priv::M && self.csr.mstatus & MSTATUS_TW != 0 {
            return Err(Exception::IllegalInstr(op.raw as u64));
        }
        self.reservation = None;
        Ok(())
    }

    /// The rounding mode for field value `rm` (7 = dynamic from `frm`); `None` if reserved.
    #[inline]
    fn resolve_rm(&self, rm: u8) -> Option<u8> {
        let r = if rm == 7 { self.csr.frm } else { rm };
        (r < 5).then_some(r)
    }

    /// F and D computational instructions (everything but loads and stores).
    #[inline(never)]
    fn exec_fp(&mut self, op: &Op) -> Result<(), Exception> {
        use Kind::*;
        let ill = Exception::IllegalInstr(op.raw as u64);
        if !self.fp_enabled() {
            return Err(ill);
        }
        let (rd, rs1, rs2, rs3) = (
            op.rd as usize & 31,
            op.rs1 as usize & 31,
            op.rs2 as usize & 31,
            op.rs3 as usize & 31,
        );
        let (f1, f2, f3) = (self.f[rs1], self.f[rs2], self.f[rs3]);
        let (s1, s2, s3) = (fpu::unbox_f32(f1), fpu::unbox_f32(f2), fpu::unbox_f32(f3));
        let mut fl = 0u8;
        // Only instructions with a rounding-mode field evaluate this (reserved → illegal).
        macro_rules! rm {
            () => {
                self.resolve_rm(op.rm).ok_or(ill)?
            };
        }
        let fma = |k: Kind| match k {
            FmaddS | FmaddD => FmaOp::Madd,
            FmsubS | FmsubD => FmaOp::Msub,
            FnmsubS | FnmsubD => FmaOp::Nmsub,
            _ => FmaOp::Nmadd,
        };
        let binop = |k: Kind| match k {
            FaddS | FaddD => BinOp::Add,
            FsubS | FsubD => BinOp::Sub,
            FmulS | FmulD => BinOp::Mul,
            _ => BinOp::Div,
        };
        const S32: u32 = 1 << 31;
        const S64: u64 = 1 << 63;
        // Either an f-register result or an x-register result.
        enum Res {
            F(u64),
            X(u64),
        }
        let res = match op.kind {
            FmaddS | FmsubS | FnmsubS | FnmaddS => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::f32_fma(
                    fma(op.kind),
                    s1,
                    s2,
                    s3,
                    rm,
                    &mut fl,
                )))
            }
            FmaddD | FmsubD | FnmsubD | FnmaddD => {
                let rm = rm!();
                Res::F(fpu::f64_fma(fma(op.kind), f1, f2, f3, rm, &mut fl))
            }
            FaddS | FsubS | FmulS | FdivS => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::f32_binop(
                    binop(op.kind),
                    s1,
                    s2,
                    rm,
                    &mut fl,
                )))
            }
            FaddD | FsubD | FmulD | FdivD => {
                let rm = rm!();
                Res::F(fpu::f64_binop(binop(op.kind), f1, f2, rm, &mut fl))
            }
            FsqrtS => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::f32_sqrt(s1, rm, &mut fl)))
            }
            FsqrtD => {
                let rm = rm!();
                Res::F(fpu::f64_sqrt(f1, rm, &mut fl))
            }
            FsgnjS => {
                let sign = match op.rm {
                    0 => s2 & S32,
                    1 => !s2 & S32,
                    _ => (s1 ^ s2) & S32,
                };
                Res::F(fpu::box_f32((s1 & !S32) | sign))
            }
            FsgnjD => {
                let sign = match op.rm {
                    0 => f2 & S64,
                    1 => !f2 & S64,
                    _ => (f1 ^ f2) & S64,
                };
                Res::F((f1 & !S64) | sign)
            }
            FminmaxS => Res::F(fpu::box_f32(fpu::f32_minmax(op.rm == 1, s1, s2, &mut fl))),
            FminmaxD => Res::F(fpu::f64_minmax(op.rm == 1, f1, f2, &mut fl)),
            FcmpS => Res::X(fpu::f32_cmp(op.rm, s1, s2, &mut fl)),
            FcmpD => Res::X(fpu::f64_cmp(op.rm, f1, f2, &mut fl)),
            FclassS => Res::X(fpu::f32_class(s1)),
            FclassD => Res::X(fpu::f64_class(f1)),
            FcvtIntS => {
                let rm = rm!();
                Res::X(fpu::f32_to_int(int_kind(op.rs2), s1, rm, &mut fl))
            }
            FcvtIntD => {
                let rm = rm!();
                Res::X(fpu::f64_to_int(int_kind(op.rs2), f1, rm, &mut fl))
            }
            FcvtSInt => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::int_to_f32(
                    int_kind(op.rs2),
                    self.x[rs1],
                    rm,
                    &mut fl,
                )))
            }
            FcvtDInt => {
                let rm = rm!();
                Res::F(fpu::int_to_f64(int_kind(op.rs2), self.x[rs1], rm, &mut fl))
            }
            FcvtSD => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::f64_to_f32(f1, rm, &mut fl)))
            }
            FcvtDS => {
                // Exact, but the rounding-mode field is still validated (as QEMU does).
                rm!();
                Res::F(fpu::f32_to_f64(s1, &mut fl))
            }
            FmvXW => Res::X(sext32(f1)),
            FmvWX => Res::F(fpu::box_f32(self.x[rs1] as u32)),
            FmvXD => Res::X(f1),
            FmvDX => Res::F(self.x[rs1]),
            FliS => Res::F(fpu::box_f32(fpu::fli_f32(op.rs1))),
            FliD => Res::F(fpu::fli_f64(op.rs1)),
            FminmaxmS => Res::F(fpu::box_f32(fpu::f32_minmax_m(op.rm == 1, s1, s2, &mut fl))),
            FminmaxmD => Res::F(fpu::f64_minmax_m(op.rm == 1, f1, f2, &mut fl)),
            FroundS => {
                let rm = rm!();
                Res::F(fpu::box_f32(fpu::f32_round_int(
                    s1,
                    rm,
                    op.rs2 == 5,
                    &mut fl,
                )))
            }
            FroundD => {
                let rm = rm!();
                Res::F(fpu::f64_round_int(f1, rm, op.rs2 == 5, &mut fl))
            }
            FcvtmodWD => Res::X(fpu::f64_to_i32_modulo(f1, &mut fl)),
            FcmpqS => Res::X(fpu::f32_cmp_quiet(op.rm == 1, s1, s2, &mut fl)),
            FcmpqD => Res::X(fpu::f64_cmp_quiet(op.rm == 1, f1, f2, &mut fl)),
            _ => return Err(ill),
        };
        match res {
            Res::F(v) => {
                self.f[rd] = v;
                self.csr.fflags |= fl;
                self.set_fs_dirty();
            }
            Res::X(v) => {
                self.x[rd] = v;
                self.x[0] = 0;
                if fl != 0 {
                    self.csr.fflags |= fl;
                    self.set_fs_dirty();
                }
            }
        }
        Ok(())
    }
}
