//! The seam between the interpreter and a translating engine (the `rewind-jit` crate).
//!
//! The interpreter keeps its decoded blocks; a block executed [`hot_threshold`] times is
//! handed to the installed [`BlockCompiler`] with the rest of its page, and from then on,
//! whenever the whole block fits in the budget (and, with debugger hooks, its page holds no
//! breakpoint: the helpers check watchpoints on the pages the TLB flags), host code runs
//! instead of the op loop: that block and the blocks of the same page it jumps to (a region),
//! each entered only if it fits in what is left of the budget. Translated code only replaces
//! *how* ops execute: it reports how many instructions retired, where to go on and why it
//! stopped, and the interpreter takes over with exactly the pc and icount it would have had.
//! The code lives in its [`crate::decode::DecodedPage`], so every event that drops decoded
//! code (stores into it, `fence.i`, DMA, a page reset) drops the translation with it.
//!
//! CONTRACT: the layout of [`JitCtx`] and the exit codes are shared with `crates/jit`.

use std::sync::RwLock;

use crate::bus::Mmio;
use crate::decode::{DecodedPage, Op};
use crate::hart::Hart;
use crate::mmu::StoreOutcome;
use crate::ram::Ram;
use crate::trap::Exception;

/// Executions of a block in the interpreter before it is compiled: translating a region costs
/// about as much as interpreting a few hundred thousand instructions, so only code that runs
/// often pays back (a Linux boot translates tens of thousands of blocks at a low threshold).
pub const HOT_THRESHOLD: u16 = 2000;

/// The threshold in force (tests lower it to exercise translation on short programs).
static HOT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(HOT_THRESHOLD);

/// Translate blocks after `n` executions from now on (at most `u16::MAX - 1`).
pub fn set_hot_threshold(n: u16) {
    HOT.store(n.min(u16::MAX - 1), std::sync::atomic::Ordering::Relaxed);
}

/// The threshold in force.
#[inline]
pub fn hot_threshold() -> u16 {
    HOT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Host code of one region: returns an exit tag (`EXIT_*`) with `JitCtx::npc` and
/// `JitCtx::retired` set.
pub type BlockFn = unsafe extern "C" fn(ctx: *mut JitCtx) -> u64;

/// Helper for loads: `(ctx, vaddr, info)` with `info = instructions retired before this one
/// since the region was entered | size << 32`; returns the zero-extended value, and sets
/// `ctx.status` to an exit tag if the region must stop.
pub type LoadFn = unsafe extern "C" fn(ctx: *mut JitCtx, vaddr: u64, info: u64) -> u64;

/// Helper for stores: `(ctx, vaddr, value, info)`; returns 0 or an exit tag.
pub type StoreFn = unsafe extern "C" fn(ctx: *mut JitCtx, vaddr: u64, value: u64, info: u64) -> u64;

/// Helper for the ops translated as a call into the interpreter (LR/SC, AMOs, F and D
/// computational ops, FP loads and stores, CSR ops): `(ctx, op, info)` with `op` a copy of the
/// decoded op that lives as long as the code, `info` = instructions retired before it since the
/// region was entered | the op's page offset << 32; returns 0 or an exit tag. Integer results
/// are written to the hart's registers.
pub type OpFn = unsafe extern "C" fn(ctx: *mut JitCtx, op: *const Op, info: u64) -> u64;

/// Go on at `npc` (the region ended, left the page, ran out of budget, or reached an op it
/// does not translate).
pub const EXIT_DONE: u64 = 0;
/// The instruction at `npc` raised the exception in the environment (it did not retire).
pub const EXIT_TRAP: u64 = 1;
/// The last instruction retired wrote decoded code of this page.
pub const EXIT_DIRTY: u64 = 2;
/// The last instruction retired stored to a device, or wrote a CSR that needs the machine
/// loop (a timer deadline).
pub const EXIT_YIELD: u64 = 3;
/// The last instruction retired (a CSR write) unmasked an interrupt or can change fetch or data
/// translation: the op helper already set the hart's pc (maybe to the interrupt handler) and
/// icount, `npc` is not used; the page loop must forget its fetch translations.
pub const EXIT_REFETCH: u64 = 4;

/// What translated code sees (`repr(C)`: the compiler uses the field offsets below).
#[repr(C)]
pub struct JitCtx {
    /// The hart's integer registers (`x[0]` is never written).
    pub x: *mut u64,
    /// Virtual base of the page the region runs from (pc-relative immediates add to it).
    pub vbase: u64,
    /// Out: where execution goes on (see the exit tags).
    pub npc: u64,
    /// The load helper.
    pub load: LoadFn,
    /// The store helper.
    pub store: StoreFn,
    /// Set by the load helper when the region must stop.
    pub status: u64,
    /// The interpreter's state for the helpers (`JitEnv<M>`).
    pub env: *mut std::ffi::c_void,
    /// In: instructions the region may retire (a block that does not fit is not entered).
    pub budget: u64,
    /// Out: instructions retired.
    pub retired: u64,
    /// The TLB set of loads in the data translation regime of this run ([`TLB_ENTRIES`]
    /// entries of 16 bytes: tag at 0, RAM offset of the physical page at 8). An aligned access
    /// hits when `vaddr & (!0xfff | (size - 1)) == tag`; the tag of an invalid, MMIO or watched
    /// entry never matches, so devices, faults, misaligned accesses, page walks (A/D bits) and PMP
    /// always take the helper.
    pub tlb_load: *const u8,
    /// The TLB set of stores, same layout (entries only ever map RAM, never the ROM).
    pub tlb_store: *const u8,
    /// Host address of RAM offset 0 (RAM then ROM, as TLB entries index them).
    pub mem: *mut u8,
    /// Per RAM page (offset >> 12): nonzero when the page holds decoded code. A store hitting
    /// the TLB takes the helper anyway on such a page, so that self-modifying code (and data
    /// sharing a page with code) invalidates exactly as in the interpreter.
    pub code_state: *const u8,
    /// Per RAM page: set to 1 by every store (the snapshot code's written-page flags).
    pub page_dirty: *mut u8,
    /// In: when nonzero, every load and store of the run goes through the helpers (the inline
    /// TLB path is skipped): set it when the helpers must see each access (the self-check).
    /// Watchpoints do not need it: the TLB entries of watched pages never match the inline
    /// test (a flag in the tag), so only accesses to those pages that the watch windows cannot
    /// rule out reach the helpers. Read once when a region is entered.
    pub slow_mem: u64,
    /// The op helper.
    pub op: OpFn,
    /// The watch window of loads (read and access watchpoints), see [`WatchWindow`]: an
    /// access that misses the TLB only because its entry is flagged [`TLB_TAG_WATCH`] runs
    /// inline when its page offset is outside the window, else it takes the helper (which
    /// checks the watchpoints exactly).
    pub watch_load: WatchWindow,
    /// The watch window of stores (write and access watchpoints).
    pub watch_store: WatchWindow,
}

/// The flag bit a TLB entry's tag carries when a watchpoint covers part of its page (the
/// inline tag compare misses on it; see [`JitCtx::watch_load`]).
pub const TLB_TAG_WATCH: u64 = crate::mmu::TAG_WATCH;

/// Where on a watched page translated code's accesses may fire a watchpoint: a range of page
/// offsets (cyclic: it may wrap from 0xfff to 0), the union over the watchpoints of the access
/// kind, virtual and physical alike (an address and its translation share the page offset). An
/// aligned access of at most 8 bytes at `addr` may overlap a watched range if
/// `(addr - start) & 0xfff < len`: the range starts 7 bytes before the watched bytes so that
/// one compare serves every access size. That over-approximates (so does the union, and the
/// same offsets on another watched page): the helper then finds no hit and the access goes
/// on as it would have; only accesses outside the range skip it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct WatchWindow {
    /// First page offset an access may overlap a watched range from.
    pub start: u64,
    /// Page offsets from `start` on (modulo the page) that may: 0 (no watchpoint) to 4096.
    pub len: u64,
}

impl WatchWindow {
    /// The window of the watched ranges `ranges` (first and last address, inclusive).
    pub(crate) fn covering(ranges: impl Iterator<Item = (u64, u64)>) -> WatchWindow {
        const PAGE: u64 = crate::ram::PAGE_SIZE;
        // Each range as (first page offset, length), the union as one such interval.
        let mut union: Option<(u64, u64)> = None;
        for (lo, hi) in ranges {
            let r = (lo & (PAGE - 1), (hi - lo).saturating_add(1).min(PAGE));
            union = Some(match union {
                None => r,
                // Two intervals that do not wrap: from the first start to the last end.
                Some((s, l)) if s + l <= PAGE && r.0 + r.1 <= PAGE => {
                    let (s2, e2) = (s.min(r.0), (s + l).max(r.0 + r.1));
                    (s2, e2 - s2)
                }
                Some(_) => (0, PAGE),
            });
        }
        match union {
            None => WatchWindow { start: 0, len: 0 },
            Some((s, l)) => WatchWindow {
                start: s.wrapping_sub(7) & (PAGE - 1),
                len: (l + 7).min(PAGE),
            },
        }
    }
}

/// Entries in a TLB set ([`JitCtx::tlb_load`]): the set index is `(vaddr >> 12) & (TLB_ENTRIES - 1)`.
pub const TLB_ENTRIES: usize = crate::mmu::TLB_ENTRIES;

/// Offsets of [`JitCtx`] fields, for code generators.
pub mod offsets {
    /// `x`.
    pub const X: i32 = 0;
    /// `vbase`.
    pub const VBASE: i32 = 8;
    /// `npc`.
    pub const NPC: i32 = 16;
    /// `load`.
    pub const LOAD: i32 = 24;
    /// `store`.
    pub const STORE: i32 = 32;
    /// `status`.
    pub const STATUS: i32 = 40;
    /// `budget`.
    pub const BUDGET: i32 = 56;
    /// `retired`.
    pub const RETIRED: i32 = 64;
    /// `tlb_load`.
    pub const TLB_LOAD: i32 = 72;
    /// `tlb_store`.
    pub const TLB_STORE: i32 = 80;
    /// `mem`.
    pub const MEM: i32 = 88;
    /// `code_state`.
    pub const CODE_STATE: i32 = 96;
    /// `page_dirty`.
    pub const PAGE_DIRTY: i32 = 104;
    /// `slow_mem`.
    pub const SLOW_MEM: i32 = 112;
    /// `op`.
    pub const OP: i32 = 120;
    /// `watch_load` (a [`super::WatchWindow`]: `start` at 0, `len` at 8).
    pub const WATCH_LOAD: i32 = 128;
    /// `watch_store`.
    pub const WATCH_STORE: i32 = 144;

    // The layout is a contract with code generators: check it where it is defined.
    const _: () = {
        assert!(std::mem::offset_of!(super::JitCtx, retired) == RETIRED as usize);
        assert!(std::mem::offset_of!(super::JitCtx, tlb_load) == TLB_LOAD as usize);
        assert!(std::mem::offset_of!(super::JitCtx, tlb_store) == TLB_STORE as usize);
        assert!(std::mem::offset_of!(super::JitCtx, mem) == MEM as usize);
        assert!(std::mem::offset_of!(super::JitCtx, code_state) == CODE_STATE as usize);
        assert!(std::mem::offset_of!(super::JitCtx, page_dirty) == PAGE_DIRTY as usize);
        assert!(std::mem::offset_of!(super::JitCtx, slow_mem) == SLOW_MEM as usize);
        assert!(std::mem::offset_of!(super::JitCtx, op) == OP as usize);
        assert!(std::mem::offset_of!(super::JitCtx, watch_load) == WATCH_LOAD as usize);
        assert!(std::mem::offset_of!(super::JitCtx, watch_store) == WATCH_STORE as usize);
        assert!(std::mem::size_of::<super::WatchWindow>() == 16);
    };
}

/// A TLB set whose entries never match (what `slow_mem` selects), for code generators.
pub static NO_TLB: [u64; 2 * TLB_ENTRIES] = {
    let mut t = [0u64; 2 * TLB_ENTRIES];
    let mut i = 0;
    while i < TLB_ENTRIES {
        // Bit 11 is cleared by the hit test's mask: never equal.
        t[2 * i] = 1 << 11;
        i += 1;
    }
    t
};

/// The decoded blocks of one physical page, as a code generator sees them.
#[derive(Clone, Copy)]
pub struct CodePage<'a> {
    pub(crate) page: &'a DecodedPage,
}

impl<'a> CodePage<'a> {
    /// The decoded block starting at page offset `off` (its ops, and the page offset its
    /// fall-through ends at), if there is one. pc-relative immediates (`auipc`, `jal`,
    /// branches) are relative to the page base.
    pub fn block(&self, off: u64) -> Option<(&'a [Op], u64)> {
        self.page.block_at(off)
    }
}

/// A translation made on the compile thread: empty while it is being made, then the code, or
/// `None` if the region could not be translated.
pub type PendingRegion = std::sync::Arc<std::sync::OnceLock<Option<BlockFn>>>;

/// A code generator.
pub trait BlockCompiler: Send + Sync {
    /// Translate the region of `page` entered at page offset `start` (the block there, and
    /// whatever of the page it chooses to chain to); `None` if not even the first op of the
    /// block is supported.
    fn compile(&self, page: CodePage<'_>, start: u64) -> Option<BlockFn>;

    /// Start translating that region on another thread (see [`Later`]). The default
    /// translates at once.
    fn compile_later(&self, page: CodePage<'_>, start: u64) -> Later {
        match self.compile(page, start) {
            Some(f) => Later::Queued(
                std::sync::Arc::new(std::sync::OnceLock::from(Some(f))),
                Vec::new(),
            ),
            None => Later::Unsupported,
        }
    }

    /// The code of that region if it was translated before (from the same decoded blocks,
    /// on any page): asked early, before the block is hot. The default has no cache.
    fn cached(&self, _page: CodePage<'_>, _start: u64) -> Option<BlockFn> {
        None
    }
}

/// Executions of a block before the translation cache is asked for its region (translated
/// before from the same code: the same page after a snapshot restore rebuilt its decoded
/// blocks, another machine replaying the same guest), long before it is hot: 1/64 of the
/// hot threshold (31 by default), once the page has decoded the blocks around it.
#[inline]
pub fn cache_probe() -> u16 {
    hot_threshold() / 64
}

/// What [`BlockCompiler::compile_later`] did with a region.
pub enum Later {
    /// Queued: the slot the code will appear in (the caller polls it; dropping every handle
    /// to it cancels the work), and the page offsets of the region's other blocks.
    Queued(PendingRegion, Vec<u64>),
    /// The compile thread has enough to do: ask again once the block is hot again, so that
    /// of the many blocks that become hot at once (a boot), those that stay hot go first.
    Busy,
    /// Not even the first op is translatable.
    Unsupported,
}

/// Translate on a second thread (see [`BlockCompiler::compile_later`])? Which instructions
/// execute when never depends on it: only how soon hot code runs translated.
static BACKGROUND: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Make harts created from now on translate hot regions on a second thread (`false`: on the
/// hart's thread, at the moment a block becomes hot, which makes the translated share of a run
/// reproducible; [`Hart::jit_background`] sets it per hart).
pub fn set_background(on: bool) {
    BACKGROUND.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Is background translation on?
#[inline]
pub fn background() -> bool {
    BACKGROUND.load(std::sync::atomic::Ordering::Relaxed)
}

/// The engine [`Hart::new`] gives new harts.
static DEFAULT_ENGINE: RwLock<Option<&'static dyn BlockCompiler>> = RwLock::new(None);

/// Make harts created from now on use `engine` (`None`: the interpreter only).
pub fn set_default_engine(engine: Option<&'static dyn BlockCompiler>) {
    if let Ok(mut e) = DEFAULT_ENGINE.write() {
        *e = engine;
    }
}

/// The engine new harts use.
pub fn default_engine() -> Option<&'static dyn BlockCompiler> {
    DEFAULT_ENGINE.read().ok().and_then(|e| *e)
}

/// How a translated region ended (what [`Hart`]'s `run_jit` returns).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RegionExit {
    /// The exit tag (`EXIT_*`).
    pub tag: u64,
    /// Where execution goes on.
    pub npc: u64,
    /// Instructions retired.
    pub retired: u64,
    /// The exception of an `EXIT_TRAP` (none: a watchpoint fired, see `watch_hit`).
    pub exc: Option<Exception>,
    /// The slots of the page a write made stale (`EXIT_DIRTY`).
    pub dirty: (usize, usize),
    /// A watchpoint fired before the access of the instruction at `npc`.
    pub watch_hit: bool,
}

/// What the helpers need: everything the interpreter's block loop holds.
pub(crate) struct JitEnv<M> {
    pub hart: *mut Hart,
    pub ram: *mut Ram,
    pub mmio: *mut M,
    pub page: *const DecodedPage,
    pub way: usize,
    pub dmode: usize,
    /// icount before the block's first op.
    pub base: u64,
    pub exc: Option<Exception>,
    pub dirty: (usize, usize),
    /// Check the debugger's watchpoints before each access (as the checking interpreter does).
    pub watch: bool,
    /// A watchpoint fired (the region stopped with `EXIT_TRAP` and no exception, before the
    /// access; the hit is in the hart's debug hooks).
    pub watch_hit: bool,
}

/// Retired-count offset and size from a helper's `info`.
#[inline(always)]
fn split_info(info: u64) -> (u64, u8) {
    (info & 0xffff_ffff, (info >> 32) as u8)
}

/// After a memory access by op `i`: did a write hit decoded code of this page? (The
/// interpreter's `code_check`.)
///
/// # Safety
/// `env`'s pointers are valid and not otherwise borrowed.
#[inline(always)]
unsafe fn code_check<M>(env: &mut JitEnv<M>) -> u64 {
    let ram = &mut *env.ram;
    if ram.way_dirty(env.way) {
        if let Some((lo, hi)) = ram.take_code_dirty(env.way) {
            if (*env.page).overlaps(lo, hi) {
                env.dirty = (lo, hi);
                return EXIT_DIRTY;
            }
        }
    }
    0
}

/// A helper's environment and access size from its `ctx` and `info`, with the hart's icount
/// set to the instruction's own (devices read the clock at the access).
///
/// # Safety
/// `ctx` is the context the interpreter set up for the running region.
#[inline(always)]
unsafe fn helper_env<'a, M>(ctx: *mut JitCtx, info: u64) -> (&'a mut JitEnv<M>, u8) {
    let env = &mut *((*ctx).env as *mut JitEnv<M>);
    let (i, size) = split_info(info);
    (*env.hart).icount = env.base + i;
    (env, size)
}

/// The load helper for a machine whose devices are `M`.
///
/// # Safety
/// Called by translated code only, with the `ctx` set up by the interpreter.
pub(crate) unsafe extern "C" fn load_helper<M: Mmio>(
    ctx: *mut JitCtx,
    vaddr: u64,
    info: u64,
) -> u64 {
    let (env, size) = helper_env::<M>(ctx, info);
    let hart = &mut *env.hart;
    hart.check.jit_mem_helper += 1;
    // Virtual and physical watchpoints, as the checking interpreter's `watch_hit`.
    if env.watch && hart.watch_hit(&*env.ram, vaddr, u64::from(size), true, false) {
        env.watch_hit = true;
        (*ctx).status = EXIT_TRAP;
        return 0;
    }
    // Watchpoints are checked (or none is set, and no TLB entry is flagged): the TLB entry of
    // a watched page serves the access like any other.
    match hart.load_in_w::<M, true>(&mut *env.ram, &mut *env.mmio, vaddr, size, env.dmode) {
        Ok(v) => {
            (*ctx).status = code_check(env);
            v
        }
        Err(ex) => {
            env.exc = Some(ex);
            (*ctx).status = EXIT_TRAP;
            0
        }
    }
}

/// The store helper for a machine whose devices are `M`.
///
/// # Safety
/// Called by translated code only, with the `ctx` set up by the interpreter.
pub(crate) unsafe extern "C" fn store_helper<M: Mmio>(
    ctx: *mut JitCtx,
    vaddr: u64,
    value: u64,
    info: u64,
) -> u64 {
    let (env, size) = helper_env::<M>(ctx, info);
    let hart = &mut *env.hart;
    hart.check.jit_mem_helper += 1;
    if env.watch && hart.watch_hit(&*env.ram, vaddr, u64::from(size), false, true) {
        env.watch_hit = true;
        return EXIT_TRAP;
    }
    let (ram, mmio) = (&mut *env.ram, &mut *env.mmio);
    match hart.store_in_w::<M, true>(ram, mmio, vaddr, size, value, env.dmode) {
        Ok(StoreOutcome::Ram) => 0,
        Ok(StoreOutcome::CodeModified) => code_check(env),
        Ok(StoreOutcome::Mmio) => EXIT_YIELD,
        Err(ex) => {
            env.exc = Some(ex);
            EXIT_TRAP
        }
    }
}

/// The op helper for a machine whose devices are `M`: the interpreter's own code for the op
/// (`Hart::jit_op`: `exec_amo`, `exec_fp`, the FP loads and stores, `exec_csr`), so results,
/// flags, the reservation, `mstatus.FS` checks, CSR side effects and traps are those of the
/// interpreter.
///
/// # Safety
/// Called by translated code only, with the `ctx` set up by the interpreter and `op` valid.
pub(crate) unsafe extern "C" fn op_helper<M: Mmio>(
    ctx: *mut JitCtx,
    op: *const Op,
    info: u64,
) -> u64 {
    let (env, _) = helper_env::<M>(ctx, info);
    let hart = &mut *env.hart;
    let pc = (*ctx).vbase.wrapping_add(info >> 32);
    match hart.jit_op(
        &mut *env.ram,
        &mut *env.mmio,
        &*op,
        pc,
        env.dmode,
        env.watch,
    ) {
        Ok(crate::exec::JitOpDone::Next) => 0,
        Ok(crate::exec::JitOpDone::Refetch) => EXIT_REFETCH,
        Ok(crate::exec::JitOpDone::CodeCheck) => code_check(env),
        Ok(crate::exec::JitOpDone::Yield) => EXIT_YIELD,
        Ok(crate::exec::JitOpDone::Watch) => {
            env.watch_hit = true;
            EXIT_TRAP
        }
        Err(ex) => {
            env.exc = Some(ex);
            EXIT_TRAP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WatchWindow;

    fn covering(r: &[(u64, u64)]) -> (u64, u64) {
        let w = WatchWindow::covering(r.iter().copied());
        (w.start, w.len)
    }

    /// Is an access at page offset `o` sent to the helper by the window?
    fn inside(w: (u64, u64), o: u64) -> bool {
        (o.wrapping_sub(w.0) & 0xfff) < w.1
    }

    #[test]
    fn watch_windows_cover_the_page_offsets_of_the_watched_ranges() {
        assert_eq!(covering(&[]), (0, 0));
        // A word: accesses from 7 bytes before it to its last byte.
        let w = covering(&[(0x8000_1100, 0x8000_1107)]);
        assert_eq!(w, (0x0f9, 15));
        assert!(inside(w, 0x0f9) && inside(w, 0x107));
        assert!(!inside(w, 0x0f8) && !inside(w, 0x108));
        // Two ranges on different pages: their page offsets' union.
        assert_eq!(
            covering(&[(0x1010, 0x1010), (0x5020, 0x5027)]),
            (0x009, 0x1f)
        );
        // A range across a page boundary wraps; with another range, the whole page.
        let w = covering(&[(0x1ffc, 0x2003)]);
        assert_eq!(w, (0xff5, 15));
        assert!(inside(w, 0xff8) && inside(w, 0x000) && !inside(w, 0x008));
        assert_eq!(covering(&[(0x1ffc, 0x2003), (0x10, 0x10)]).1, 4096);
        // Large and full-range watches cover every offset.
        assert_eq!(covering(&[(0, u64::MAX)]), (0xff9, 4096));
        assert!(inside(covering(&[(0x3000, 0x4000)]), 0x123));
        // A range at offset 0: from 7 bytes before, i.e. the end of the previous page.
        assert_eq!(covering(&[(0x2000, 0x2000)]), (0xff9, 8));
    }
}
