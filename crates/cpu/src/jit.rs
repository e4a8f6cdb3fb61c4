//! The seam between the interpreter and a translating engine (the `rewind-jit` crate).
//!
//! The interpreter keeps its decoded blocks; a block executed [`HOT_THRESHOLD`] times is
//! handed to the installed [`BlockCompiler`], and from then on, whenever the whole block fits
//! in the budget and no debugger hook is active, its host code runs instead of the op loop.
//! Translated code only replaces *how* ops execute: it runs a prefix of the block's ops (the
//! ones the compiler supports), reports how many retired and why it stopped, and the
//! interpreter takes over from there with exactly the pc and icount it would have had. A
//! compiled block lives in its [`crate::decode::DecodedPage`], so every event that drops
//! decoded code (stores into it, `fence.i`, DMA, a page reset) drops the translation with it.
//!
//! CONTRACT: the layout of [`JitCtx`] and the exit codes are shared with `crates/jit`.

use std::sync::RwLock;

use crate::bus::Mmio;
use crate::decode::{DecodedPage, Op};
use crate::hart::Hart;
use crate::mmu::StoreOutcome;
use crate::ram::Ram;
use crate::trap::Exception;

/// Executions of a block in the interpreter before it is compiled.
pub const HOT_THRESHOLD: u8 = 16;

/// Host code of one block: returns an exit code (see `EXIT_*`).
pub type BlockFn = unsafe extern "C" fn(ctx: *mut JitCtx) -> u64;

/// Helper for loads: `(ctx, vaddr, info)` with `info = op index | size << 32`; returns the
/// zero-extended value, and sets `ctx.status` to an exit code if the block must stop.
pub type LoadFn = unsafe extern "C" fn(ctx: *mut JitCtx, vaddr: u64, info: u64) -> u64;

/// Helper for stores: `(ctx, vaddr, value, info)`; returns 0 or an exit code.
pub type StoreFn = unsafe extern "C" fn(ctx: *mut JitCtx, vaddr: u64, value: u64, info: u64) -> u64;

/// The block ran to its end: the next pc is in `JitCtx::npc`.
pub const EXIT_DONE: u64 = 0;
/// Tag (`code >> 32`): op `code as u32` raised the exception in the environment.
pub const EXIT_TRAP: u64 = 1;
/// Tag: the first `code as u32` ops retired; a write hit decoded code of this page.
pub const EXIT_DIRTY: u64 = 2;
/// Tag: the first `code as u32` ops retired; the last one stored to a device.
pub const EXIT_YIELD: u64 = 3;
/// Tag: the first `code as u32` ops retired; the next one is not translated.
pub const EXIT_STOP: u64 = 4;

/// What translated code sees (`repr(C)`: the compiler uses the field offsets below).
#[repr(C)]
pub struct JitCtx {
    /// The hart's integer registers (`x[0]` is never written).
    pub x: *mut u64,
    /// Virtual base of the page the block runs from (pc-relative immediates add to it).
    pub vbase: u64,
    /// Out: the next pc when the block ran to its end.
    pub npc: u64,
    /// The load helper.
    pub load: LoadFn,
    /// The store helper.
    pub store: StoreFn,
    /// Set by the load helper when the block must stop.
    pub status: u64,
    /// The interpreter's state for the helpers (`JitEnv<M>`).
    pub env: *mut std::ffi::c_void,
}

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
}

/// A code generator for blocks.
pub trait BlockCompiler: Send + Sync {
    /// Translate a prefix of `ops` (a block whose fall-through ends at page offset `end_off`);
    /// `None` if not even its first op is supported.
    fn compile(&self, ops: &[Op], end_off: u64) -> Option<BlockFn>;
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
}

/// After a memory access by op `i`: did a write hit decoded code of this page? (The
/// interpreter's `code_check`.)
///
/// # Safety
/// `env`'s pointers are valid and not otherwise borrowed.
#[inline(always)]
unsafe fn code_check<M>(env: &mut JitEnv<M>, i: u64) -> u64 {
    let ram = &mut *env.ram;
    if ram.way_dirty(env.way) {
        if let Some((lo, hi)) = ram.take_code_dirty(env.way) {
            if (*env.page).overlaps(lo, hi) {
                env.dirty = (lo, hi);
                return EXIT_DIRTY << 32 | (i + 1);
            }
        }
    }
    0
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
    let env = &mut *((*ctx).env as *mut JitEnv<M>);
    let i = info & 0xffff_ffff;
    let size = (info >> 32) as u8;
    let hart = &mut *env.hart;
    // Devices read the clock at the access.
    hart.icount = env.base + i;
    match hart.load_in(&mut *env.ram, &mut *env.mmio, vaddr, size, env.dmode) {
        Ok(v) => {
            (*ctx).status = code_check(env, i);
            v
        }
        Err(ex) => {
            env.exc = Some(ex);
            (*ctx).status = EXIT_TRAP << 32 | i;
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
    let env = &mut *((*ctx).env as *mut JitEnv<M>);
    let i = info & 0xffff_ffff;
    let size = (info >> 32) as u8;
    let hart = &mut *env.hart;
    hart.icount = env.base + i;
    match hart.store_in(&mut *env.ram, &mut *env.mmio, vaddr, size, value, env.dmode) {
        Ok(StoreOutcome::Ram) => 0,
        Ok(StoreOutcome::CodeModified) => code_check(env, i),
        Ok(StoreOutcome::Mmio) => EXIT_YIELD << 32 | (i + 1),
        Err(ex) => {
            env.exc = Some(ex);
            EXIT_TRAP << 32 | i
        }
    }
}
