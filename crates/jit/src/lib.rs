//! The translating engine of rewind: hot interpreter blocks become host code (Cranelift).
//!
//! The interpreter (`rewind_cpu::exec`) stays in charge of everything that makes a run exact:
//! budgets, deadlines, interrupts, traps, decoded-code invalidation, debugger hooks. It hands a
//! block it executed [`rewind_cpu::jit::hot_threshold`] times to [`Jit::compile`], which
//! translates the longest prefix of its ops it supports (RV64I + M integer ops, Zba/Zbb basics,
//! loads and stores through helpers, the block-ending jump or branch). The host code returns how
//! many ops retired and why it stopped; an op it does not support is left to the interpreter.
//!
//! Why Cranelift: a maintained, pure-Rust code generator that builds on stable with no system
//! dependency and targets x86-64 and aarch64 from the same IR; its SSA builder keeps guest
//! registers in host registers within a block with no register allocator of our own.
//!
//! Translated code is never freed (the code memory of a `JITModule` lives for the process):
//! blocks of pages that are reset are leaked, bounded by [`MAX_BLOCKS`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, SigRef, Signature, Value,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_frontend::{Switch, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};
use rewind_cpu::decode::{Kind, Op};
use rewind_cpu::jit::{
    offsets, BlockCompiler, BlockFn, CodePage, Later, PendingRegion, EXIT_DONE, EXIT_TRAP, NO_TLB,
    TLB_ENTRIES, TLB_TAG_WATCH,
};
use std::sync::mpsc::Sender;

/// Blocks translated per process before the engine stops translating (code is never freed).
pub const MAX_BLOCKS: u64 = 1 << 20;

/// Regions the compile thread may have waiting (about 15 ms of work): beyond it, blocks that
/// become hot are asked for again later (see `Later::Busy`).
const MAX_QUEUED: u64 = 8;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The host is not supported by the code generator.
    #[error("no JIT for this host: {0}")]
    Host(String),
}

/// The code generator state (one per process).
struct Backend {
    module: JITModule,
    fctx: FunctionBuilderContext,
}

// SAFETY: `JITModule` holds raw pointers to its own code memory; all access goes through the
// `Mutex` in `Jit`, so moving it between threads is sound.
unsafe impl Send for Backend {}

/// The Cranelift engine (its state is shared with its compile thread).
pub struct Jit {
    shared: std::sync::Arc<Shared>,
    /// The compile thread's queue, once started.
    queue: Mutex<Option<Sender<Job>>>,
}

impl std::ops::Deref for Jit {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// The code generator and its counters.
pub struct Shared {
    backend: Mutex<Backend>,
    /// Blocks translated.
    pub blocks: AtomicU64,
    /// Ops translated.
    pub ops: AtomicU64,
    /// Nanoseconds spent translating.
    pub compile_ns: AtomicU64,
    /// Guest blocks translated (a region holds one or more).
    pub guest_blocks: AtomicU64,
    /// Bytes of host code generated (never freed: the translation cache's memory).
    pub code_bytes: AtomicU64,
    /// Regions waiting for the compile thread.
    queued: AtomicU64,
    /// Regions found in the translation cache instead of translated again.
    pub reused: AtomicU64,
    /// Every region translated, by what it was made from (see [`RegionKey`]).
    cache: Mutex<std::collections::HashMap<RegionKey, BlockFn>>,
}

/// What a region's host code is a function of, exactly: its blocks' page offsets, decoded
/// ops, whether each is whole, and where each falls through. Translated code uses nothing
/// else of its page (the virtual page base, the TLB, the registers and the budget come from
/// `JitCtx` at run time), so any page that decodes to the same blocks (the same page after a
/// snapshot restore dropped and rebuilt its decoded code, the same library mapped elsewhere,
/// another machine of this process replaying the same guest) runs the same code.
type RegionKey = Vec<(u64, Vec<Op>, bool, u64)>;

/// The key of a region's blocks.
fn key_of(blocks: &[RBlock<'_>]) -> RegionKey {
    blocks
        .iter()
        .map(|b| (b.off, b.ops.to_vec(), b.whole, b.end))
        .collect()
}

impl Jit {
    /// A new engine for the host.
    pub fn new() -> Result<Jit, JitError> {
        let mut flags = settings::builder();
        for (k, v) in [
            // Translation time dominates on code that is not very hot (a Linux boot): Cranelift's
            // optimiser costs more than it gains on these short regions (measured on the bench
            // guest and Linux; the single-pass register allocator too).
            ("opt_level", "none"),
            // The IR comes from a fixed generator checked by the lockstep test; verifying every
            // function would double the translation time.
            ("enable_verifier", "false"),
            ("is_pic", "false"),
            ("use_colocated_libcalls", "false"),
        ] {
            flags.set(k, v).map_err(|e| JitError::Host(e.to_string()))?;
        }
        // Cranelift settings to try (`REWIND_JIT_FLAGS=opt_level=speed,regalloc_algorithm=...`):
        // they change only how fast code is made and runs, never what it does.
        if let Ok(extra) = std::env::var("REWIND_JIT_FLAGS") {
            for kv in extra.split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, "true"));
                flags
                    .set(k, v)
                    .map_err(|e| JitError::Host(format!("REWIND_JIT_FLAGS {kv}: {e}")))?;
            }
        }
        let isa = cranelift_native::builder()
            .map_err(|e| JitError::Host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| JitError::Host(e.to_string()))?;
        // Translated code does pointer arithmetic in 64 bits (the inline TLB path).
        if isa.pointer_type() != types::I64 {
            return Err(JitError::Host("not a 64-bit host".into()));
        }
        let module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
        Ok(Jit {
            shared: std::sync::Arc::new(Shared {
                backend: Mutex::new(Backend {
                    module,
                    fctx: FunctionBuilderContext::new(),
                }),
                blocks: AtomicU64::new(0),
                ops: AtomicU64::new(0),
                compile_ns: AtomicU64::new(0),
                guest_blocks: AtomicU64::new(0),
                code_bytes: AtomicU64::new(0),
                queued: AtomicU64::new(0),
                reused: AtomicU64::new(0),
                cache: Mutex::new(std::collections::HashMap::new()),
            }),
            queue: Mutex::new(None),
        })
    }

    /// The process-wide engine (created on first use).
    pub fn global() -> Result<&'static Jit, JitError> {
        static JIT: OnceLock<Result<Jit, String>> = OnceLock::new();
        match JIT.get_or_init(|| Jit::new().map_err(|e| e.to_string())) {
            Ok(j) => Ok(j),
            Err(e) => Err(JitError::Host(e.clone())),
        }
    }

    /// Make every hart created from now on use the process-wide engine.
    pub fn install() -> Result<(), JitError> {
        let j: &'static dyn BlockCompiler = Jit::global()?;
        rewind_cpu::jit::set_default_engine(Some(j));
        Ok(())
    }
}

/// How many leading ops of `ops` the generator supports.
fn supported_prefix(ops: &[Op]) -> usize {
    ops.iter().take_while(|o| supported(o.kind)).count()
}

/// Is `kind` translated as a call of the op helper (`JitCtx::op`: the interpreter's own code
/// for it)? LR/SC and AMOs, F and D computational ops, FP loads and stores, cache-block ops,
/// `wrs.*`, CSR ops (whose writes may end the region: `EXIT_YIELD`, `EXIT_REFETCH`).
fn via_helper(kind: Kind) -> bool {
    use Kind::*;
    matches!(
        kind,
        LrW | ScW
            | AmoSwapW
            | AmoAddW
            | AmoXorW
            | AmoAndW
            | AmoOrW
            | AmoMinW
            | AmoMaxW
            | AmoMinuW
            | AmoMaxuW
            | LrD
            | ScD
            | AmoSwapD
            | AmoAddD
            | AmoXorD
            | AmoAndD
            | AmoOrD
            | AmoMinD
            | AmoMaxD
            | AmoMinuD
            | AmoMaxuD
            | Flw
            | Fld
            | Fsw
            | Fsd
            | FmaddS
            | FmsubS
            | FnmsubS
            | FnmaddS
            | FmaddD
            | FmsubD
            | FnmsubD
            | FnmaddD
            | FaddS
            | FsubS
            | FmulS
            | FdivS
            | FsqrtS
            | FaddD
            | FsubD
            | FmulD
            | FdivD
            | FsqrtD
            | FsgnjS
            | FsgnjD
            | FminmaxS
            | FminmaxD
            | FcmpS
            | FcmpD
            | FclassS
            | FclassD
            | FcvtIntS
            | FcvtIntD
            | FcvtSInt
            | FcvtDInt
            | FcvtSD
            | FcvtDS
            | FmvXW
            | FmvWX
            | FmvXD
            | FmvDX
            | FliS
            | FliD
            | FminmaxmS
            | FminmaxmD
            | FroundS
            | FroundD
            | FcvtmodWD
            | FcmpqS
            | FcmpqD
            | CboClean
            | CboFlush
            | CboInval
            | CboZero
            | WrsNto
            | WrsSto
            | Csrrw
            | Csrrs
            | Csrrc
            | Csrrwi
            | Csrrsi
            | Csrrci
    )
}

/// Does the generator translate `kind`?
fn supported(kind: Kind) -> bool {
    use Kind::*;
    via_helper(kind)
        || matches!(
            kind,
            Lui | Auipc
                | Jal
                | Jalr
                | J
                | Jr
                | Beq
                | Bne
                | Blt
                | Bge
                | Bltu
                | Bgeu
                | Lb
                | Lh
                | Lw
                | Ld
                | Lbu
                | Lhu
                | Lwu
                | Sb
                | Sh
                | Sw
                | Sd
                | Addi
                | Slti
                | Sltiu
                | Xori
                | Ori
                | Andi
                | Slli
                | Srli
                | Srai
                | Add
                | Sub
                | Sll
                | Slt
                | Sltu
                | Xor
                | Srl
                | Sra
                | Or
                | And
                | Addiw
                | Slliw
                | Srliw
                | Sraiw
                | Addw
                | Subw
                | Sllw
                | Srlw
                | Sraw
                | Mul
                | Mulh
                | Mulhsu
                | Mulhu
                | Div
                | Divu
                | Rem
                | Remu
                | Mulw
                | Divw
                | Divuw
                | Remw
                | Remuw
                | Sh1add
                | Sh2add
                | Sh3add
                | AddUw
                | Andn
                | Orn
                | Xnor
                | Max
                | Maxu
                | Min
                | Minu
                | SextB
                | SextH
                | ZextH
                | Rev8
                | CzeroEqz
                | CzeroNez
                | Fence
                | Nop
                | Sh1addUw
                | Sh2addUw
                | Sh3addUw
                | SlliUw
                | Clz
                | Clzw
                | Ctz
                | Ctzw
                | Cpop
                | Cpopw
                | Rol
                | Ror
                | Rori
                | Rolw
                | Rorw
                | Roriw
                | OrcB
                | Bclr
                | Bclri
                | Bext
                | Bexti
                | Binv
                | Binvi
                | Bset
                | Bseti
        )
}

/// A region waiting for the compile thread: its blocks copied out of the page (the page may
/// change or go while it waits; the slot is then dropped by the page and the job skipped).
struct Job {
    blocks: RegionKey,
    slot: PendingRegion,
}

impl Shared {
    /// The region entered at `start`, if the engine would translate it.
    fn region_of<'a>(&self, page: CodePage<'a>, start: u64) -> Option<Vec<RBlock<'a>>> {
        let blocks = region(page, start);
        (blocks.first().map(|b| b.off) == Some(start)).then_some(blocks)
    }

    /// The code of a region translated before from the same blocks, if any.
    fn lookup(&self, key: &RegionKey) -> Option<BlockFn> {
        let f = *self.cache.lock().ok()?.get(key)?;
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(f)
    }

    /// Translate `blocks` (whose key is `key`), count it and keep it in the cache.
    fn translate(&self, blocks: &[RBlock<'_>], key: RegionKey) -> Option<BlockFn> {
        if self.blocks.load(Ordering::Relaxed) >= MAX_BLOCKS {
            return None;
        }
        let t0 = std::time::Instant::now();
        let mut be = self.backend.lock().ok()?;
        let (f, bytes) = be.translate(blocks)?;
        drop(be);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, f);
        }
        self.blocks.fetch_add(1, Ordering::Relaxed);
        self.guest_blocks
            .fetch_add(blocks.len() as u64, Ordering::Relaxed);
        self.code_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.ops.fetch_add(
            blocks.iter().map(|b| b.ops.len() as u64).sum(),
            Ordering::Relaxed,
        );
        self.compile_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Some(f)
    }

    /// The compile thread's loop: jobs in order, skipping those nobody waits for any more
    /// (their page dropped its blocks).
    fn serve(&self, rx: std::sync::mpsc::Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            if std::sync::Arc::strong_count(&job.slot) == 1 {
                continue;
            }
            // Queued twice before the first was made (two pages with the same code).
            if let Some(f) = self.lookup(&job.blocks) {
                let _ = job.slot.set(Some(f));
                continue;
            }
            let blocks: Vec<RBlock<'_>> = job
                .blocks
                .iter()
                .map(|(off, ops, whole, end)| RBlock {
                    off: *off,
                    ops,
                    whole: *whole,
                    end: *end,
                })
                .collect();
            let f = self.translate(&blocks, job.blocks.clone());
            let _ = job.slot.set(f);
        }
    }
}

impl BlockCompiler for Jit {
    fn compile(&self, page: CodePage<'_>, start: u64) -> Option<BlockFn> {
        let blocks = self.region_of(page, start)?;
        let key = key_of(&blocks);
        if let Some(f) = self.lookup(&key) {
            return Some(f);
        }
        self.translate(&blocks, key)
    }

    fn cached(&self, page: CodePage<'_>, start: u64) -> Option<BlockFn> {
        let blocks = self.region_of(page, start)?;
        self.lookup(&key_of(&blocks))
    }

    fn compile_later(&self, page: CodePage<'_>, start: u64) -> Later {
        let Some(blocks) = self.region_of(page, start) else {
            return Later::Unsupported;
        };
        let members = blocks.iter().skip(1).map(|b| b.off).collect();
        let key = key_of(&blocks);
        if let Some(f) = self.lookup(&key) {
            return Later::Queued(
                std::sync::Arc::new(std::sync::OnceLock::from(Some(f))),
                members,
            );
        }
        if self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            return Later::Busy;
        }
        let slot = PendingRegion::default();
        let job = Job {
            blocks: key,
            slot: slot.clone(),
        };
        let Ok(mut queue) = self.queue.lock() else {
            return Later::Unsupported;
        };
        if queue.is_none() {
            // The compile thread starts with the first job and lives as long as the engine.
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("rewind-jit".into())
                .spawn(move || shared.serve(rx));
            if spawned.is_err() {
                return Later::Unsupported;
            }
            *queue = Some(tx);
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        match queue.as_ref().map(|q| q.send(job)) {
            Some(Ok(())) => Later::Queued(slot, members),
            _ => Later::Unsupported,
        }
    }
}

/// Page size (regions never leave their page).
const PAGE: u64 = 4096;

/// Most blocks in one region.
const MAX_REGION_BLOCKS: usize = 16;

/// A block of a region.
struct RBlock<'a> {
    /// Page offset of its first op.
    off: u64,
    /// The ops translated (a prefix of the block, maybe all of it).
    ops: &'a [Op],
    /// Are `ops` the whole block?
    whole: bool,
    /// Page offset its fall-through ends at.
    end: u64,
}

/// The page offsets a whole block may go on at, where known statically.
fn successors(last: &Op, end: u64) -> Vec<i64> {
    use Kind::*;
    match last.kind {
        Beq | Bne | Blt | Bge | Bltu | Bgeu => vec![last.imm as i64, end as i64],
        // After a call, its return point: a return through the indirect jump cache lands there.
        Jal if last.rd != 0 => vec![last.imm as i64, end as i64],
        Jal | J => vec![last.imm as i64],
        Jalr | Jr => vec![],
        _ => vec![end as i64],
    }
}

/// Is page offset `t` a place a region can jump to?
fn on_page(t: i64) -> bool {
    (0..PAGE as i64).contains(&t) && t & 1 == 0
}

/// The blocks of `page` reachable from `start` through static jumps inside the page whose first
/// op is translatable (`start` first).
fn region(page: CodePage<'_>, start: u64) -> Vec<RBlock<'_>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut work = vec![start];
    while let Some(off) = work.pop() {
        if out.len() >= MAX_REGION_BLOCKS || !seen.insert(off) {
            continue;
        }
        let Some((ops, end)) = page.block(off) else {
            continue;
        };
        let n = supported_prefix(ops);
        if n == 0 {
            continue;
        }
        let whole = n == ops.len();
        if whole {
            // Reversed so the first successor is explored first (depth-first along hot paths
            // is not known; any order is correct).
            for t in successors(&ops[n - 1], end).into_iter().rev() {
                if on_page(t) {
                    work.push(t as u64);
                }
            }
        }
        out.push(RBlock {
            off,
            ops: &ops[..n],
            whole,
            end,
        });
    }
    out
}

/// Memory flags for the register file and the context (always valid, aligned).
fn trusted() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Where an exit continues: a page offset (added to the virtual page base) or a computed pc.
#[derive(Clone, Copy)]
enum Npc {
    Off(i64),
    Pc(Value),
}

/// What [`Gen::tlb_probe`] computes for an access.
struct Probe {
    /// The tag matched: the access is aligned and its page mapped RAM, unwatched.
    hit: Value,
    /// Host address of the access.
    host: Value,
    /// RAM offset of the page.
    base: Value,
    /// The address masked as the tag compare masks it.
    masked: Value,
    /// The entry's tag.
    tag: Value,
}

/// One region being generated.
struct Gen<'a> {
    b: FunctionBuilder<'a>,
    ctx: Value,
    xp: Value,
    /// SSA values of guest registers known in the current host block (registers are written
    /// through to the hart at once, so exits store nothing; reads are cached along a guest
    /// block, whose host blocks each dominate the next).
    cache: [Option<Value>; 32],
    retired: Variable,
    /// Page offsets of the region's blocks and their entry (budget check) blocks.
    entries: Vec<(u64, Block)>,
    /// The region's one exit: params (tag, npc, retired); stores `npc` and `retired` and
    /// returns `tag` (one function epilogue per region instead of one per exit).
    exit_blk: Block,
    /// Where helper calls that write no register stop: params (tag, page offset of the op,
    /// page offset after it, retired before it); a trap retires nothing of the op, any other
    /// stop retires it. Shared by the region's store and op helper calls (less cold code).
    stop_blk: Block,
}

impl Gen<'_> {
    /// The 64-bit `JitCtx` field at `off`, loaded where it is used: values live across the
    /// whole region would be spilled and reloaded around every helper call anyway, and
    /// shorter live ranges make register allocation (most of the translation time) cheaper.
    /// The entry block stored the effective TLB sets (`NO_TLB` with `slow_mem`).
    fn field(&mut self, off: i32) -> Value {
        self.b.ins().load(types::I64, trusted(), self.ctx, off)
    }

    fn vbase(&mut self) -> Value {
        self.field(offsets::VBASE)
    }

    fn get(&mut self, r: u8) -> Value {
        let r = (r & 31) as usize;
        if r == 0 {
            return self.b.ins().iconst(types::I64, 0);
        }
        if let Some(v) = self.cache[r] {
            return v;
        }
        let v = self
            .b
            .ins()
            .load(types::I64, trusted(), self.xp, (r * 8) as i32);
        self.cache[r] = Some(v);
        v
    }

    fn set(&mut self, r: u8, v: Value) {
        let r = (r & 31) as usize;
        if r != 0 {
            self.store_reg(r as u8, v);
            self.cache[r] = Some(v);
        }
    }

    /// Write `v` to guest register `r` (not x0) without caching it.
    fn store_reg(&mut self, r: u8, v: Value) {
        let r = (r & 31) as usize;
        if r != 0 {
            self.b.ins().store(trusted(), v, self.xp, (r * 8) as i32);
        }
    }

    /// Look `addr` up in the TLB set `set` for an access of `size` bytes. The host address and
    /// the page's RAM offset are meaningful only where `hit` is true (or the tag differs only
    /// by [`TLB_TAG_WATCH`]); computing them unconditionally is safe (no memory is touched
    /// through them). 64-bit hosts only.
    fn tlb_probe(&mut self, set: Value, addr: Value, size: u64) -> Probe {
        let idx = self.b.ins().ushr_imm_s(addr, 12);
        let idx = self.b.ins().band_imm_s(idx, TLB_ENTRIES as i64 - 1);
        let eoff = self.b.ins().ishl_imm_s(idx, 4);
        let entry = self.b.ins().iadd(set, eoff);
        let tag = self.b.ins().load(types::I64, trusted(), entry, 0);
        let masked = self
            .b
            .ins()
            .band_imm_s(addr, (!0xfffu64 | (size - 1)) as i64);
        let hit = self.b.ins().icmp(IntCC::Equal, masked, tag);
        let base = self.b.ins().load(types::I64, trusted(), entry, 8);
        let off = self.b.ins().band_imm_s(addr, 0xfff);
        let roff = self.b.ins().iadd(base, off);
        let mem = self.field(offsets::MEM);
        let host = self.b.ins().iadd(mem, roff);
        Probe {
            hit,
            host,
            base,
            masked,
            tag,
        }
    }

    /// The current block (cold) follows a TLB miss of the access at `addr`: if the entry
    /// missed only because a watchpoint covers part of its page, and the access's page offset
    /// is outside the watch window at `JitCtx` offset `window` (see `WatchWindow`: the
    /// helper's exact check would find no hit), go to `inline`; everything else goes to
    /// `helper`. A few ALU ops and one branch: this is emitted for every load and store, and
    /// translation time grows with the host code.
    fn watch_window(&mut self, p: &Probe, addr: Value, window: i32, inline: Block, helper: Block) {
        // Zero when the tag is the page's with the watch flag (and the access aligned).
        let x = self.b.ins().bxor(p.tag, p.masked);
        let x = self.b.ins().bxor_imm_s(x, TLB_TAG_WATCH as i64);
        // The sign of `((addr - start) & 0xfff) - len`: 1 inside the window.
        let start = self.field(window);
        let d = self.b.ins().isub(addr, start);
        let d = self.b.ins().band_imm_s(d, 0xfff);
        let len = self.field(window + 8);
        let d = self.b.ins().isub(d, len);
        let inside = self.b.ins().ushr_imm_s(d, 63);
        let go_helper = self.b.ins().bor(x, inside);
        self.b.ins().brif(go_helper, helper, &[], inline, &[]);
    }

    fn imm(&mut self, v: i64) -> Value {
        self.b.ins().iconst(types::I64, v)
    }

    /// Leave with `tag`, `npc` and `retired` (ends the current block): a jump to the region's
    /// shared exit block.
    fn exit(&mut self, tag: Value, npc: Npc, retired: Value) {
        let pc = match npc {
            Npc::Off(o) => {
                let vb = self.vbase();
                self.b.ins().iadd_imm_s(vb, o)
            }
            Npc::Pc(v) => v,
        };
        let blk = self.exit_blk;
        self.b
            .ins()
            .jump(blk, &[tag.into(), pc.into(), retired.into()]);
    }

    fn sext32(&mut self, v: Value) -> Value {
        let w = self.b.ins().ireduce(types::I32, v);
        self.b.ins().sextend(types::I64, w)
    }

    fn bool64(&mut self, c: Value) -> Value {
        self.b.ins().uextend(types::I64, c)
    }

    /// After a helper returned `st` (non-zero: stop) for op `i` at page offset `op_off` of a
    /// block entered with `r0` retired: leave (a trap retires nothing of the op; any other stop
    /// retires it, after `retire` wrote its result) or go on in a new block.
    fn helper_exit(
        &mut self,
        st: Value,
        r0: Value,
        i: usize,
        op: &Op,
        op_off: u64,
        retire: impl FnOnce(&mut Self),
    ) {
        let out = self.b.create_block();
        let cont = self.b.create_block();
        let trap = self.b.create_block();
        let other = self.b.create_block();
        // Helpers stop a region rarely (traps, device stores, self-modifying code): keep
        // these paths out of line.
        for blk in [out, trap, other] {
            self.b.set_cold_block(blk);
        }
        self.b.ins().brif(st, out, &[], cont, &[]);
        self.b.switch_to_block(out);
        let is_trap = self.b.ins().icmp_imm_s(IntCC::Equal, st, EXIT_TRAP as i64);
        self.b.ins().brif(is_trap, trap, &[], other, &[]);
        self.b.switch_to_block(trap);
        let r = self.b.ins().iadd_imm_s(r0, i as i64);
        self.exit(st, Npc::Off(op_off as i64), r);
        self.b.switch_to_block(other);
        retire(self);
        let r = self.b.ins().iadd_imm_s(r0, i as i64 + 1);
        self.exit(st, Npc::Off((op_off + op.len as u64) as i64), r);
        self.b.switch_to_block(cont);
    }

    /// After a helper that writes no guest register returned `st` for op `i` at page offset
    /// `op_off` of a block entered with `r0` retired: on a stop, the region's stop block.
    fn helper_stop(&mut self, st: Value, r0: Value, i: usize, op: &Op, op_off: u64) {
        let out = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(out);
        self.b.ins().brif(st, out, &[], cont, &[]);
        self.b.switch_to_block(out);
        let at = self.imm(op_off as i64);
        let next = self.imm((op_off + op.len as u64) as i64);
        let r = self.b.ins().iadd_imm_s(r0, i as i64);
        let blk = self.stop_blk;
        self.b
            .ins()
            .jump(blk, &[st.into(), at.into(), next.into(), r.into()]);
        self.b.switch_to_block(cont);
    }

    /// RISC-V division: no trap on zero or overflow. `signed`, `rem`, operands of `ty`.
    fn div(&mut self, a: Value, b: Value, signed: bool, rem: bool) -> Value {
        let ty = self.b.func.dfg.value_type(a);
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let one = self.b.ins().iconst(ty, 1);
        let safe_b = if signed {
            let min = if ty == types::I32 {
                i32::MIN as i64
            } else {
                i64::MIN
            };
            let amin = self.b.ins().icmp_imm_s(IntCC::Equal, a, min);
            let bm1 = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
            let ovf = self.b.ins().band(amin, bm1);
            let bad = self.b.ins().bor(zero, ovf);
            self.b.ins().select(bad, one, b)
        } else {
            self.b.ins().select(zero, one, b)
        };
        // With the divisor replaced by 1 on overflow, quotient = a (= MIN) and remainder = 0,
        // as RISC-V wants; division by zero is patched below.
        let r = match (signed, rem) {
            (true, false) => self.b.ins().sdiv(a, safe_b),
            (true, true) => self.b.ins().srem(a, safe_b),
            (false, false) => self.b.ins().udiv(a, safe_b),
            (false, true) => self.b.ins().urem(a, safe_b),
        };
        let on_zero = if rem { a } else { self.b.ins().iconst(ty, -1) };
        self.b.ins().select(zero, on_zero, r)
    }
}

/// Signatures of the helpers, imported into the function being built.
struct Helpers {
    load: SigRef,
    store: SigRef,
    op: SigRef,
}

impl Backend {
    /// Generate host code for the region `blocks` (`blocks[0]` is its entry).
    fn translate(&mut self, blocks: &[RBlock<'_>]) -> Option<(BlockFn, u64)> {
        let ptr = self.module.target_config().pointer_type();
        let mut cctx = self.module.make_context();
        let call_conv = self.module.isa().default_call_conv();
        cctx.func.signature.params.push(AbiParam::new(ptr));
        cctx.func.signature.returns.push(AbiParam::new(types::I64));
        let mut load_sig = Signature::new(call_conv);
        load_sig.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
            AbiParam::new(types::I64),
        ]);
        load_sig.returns.push(AbiParam::new(types::I64));
        let mut store_sig = Signature::new(call_conv);
        store_sig.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
            AbiParam::new(types::I64),
            AbiParam::new(types::I64),
        ]);
        store_sig.returns.push(AbiParam::new(types::I64));
        let mut op_sig = Signature::new(call_conv);
        op_sig.params.extend([
            AbiParam::new(ptr),
            AbiParam::new(ptr),
            AbiParam::new(types::I64),
        ]);
        op_sig.returns.push(AbiParam::new(types::I64));
        {
            let mut b = FunctionBuilder::new(&mut cctx.func, &mut self.fctx);
            let helpers = Helpers {
                load: b.import_signature(load_sig),
                store: b.import_signature(store_sig),
                op: b.import_signature(op_sig),
            };
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let ctx = b.block_params(entry)[0];
            let xp = b.ins().load(ptr, trusted(), ctx, offsets::X);
            // `slow_mem` selects a TLB set that never hits: every access through the helpers.
            // The region's loads and stores read the sets back from the context.
            let slow = b.ins().load(types::I64, trusted(), ctx, offsets::SLOW_MEM);
            let no_tlb = b.ins().iconst(ptr, NO_TLB.as_ptr() as i64);
            let tl = b.ins().load(ptr, trusted(), ctx, offsets::TLB_LOAD);
            let ts = b.ins().load(ptr, trusted(), ctx, offsets::TLB_STORE);
            let tlb_load = b.ins().select(slow, no_tlb, tl);
            let tlb_store = b.ins().select(slow, no_tlb, ts);
            b.ins().store(trusted(), tlb_load, ctx, offsets::TLB_LOAD);
            b.ins().store(trusted(), tlb_store, ctx, offsets::TLB_STORE);
            let retired = b.declare_var(types::I64);
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(retired, zero);
            let exit_blk = b.create_block();
            for _ in 0..3 {
                b.append_block_param(exit_blk, types::I64);
            }
            let stop_blk = b.create_block();
            b.set_cold_block(stop_blk);
            for _ in 0..4 {
                b.append_block_param(stop_blk, types::I64);
            }
            let check: Vec<Block> = blocks.iter().map(|_| b.create_block()).collect();
            let body: Vec<Block> = blocks.iter().map(|_| b.create_block()).collect();
            // The caller checked that the first block fits the budget.
            b.ins().jump(body[0], &[]);
            let mut g = Gen {
                b,
                ctx,
                xp,
                cache: [None; 32],
                retired,
                entries: blocks
                    .iter()
                    .map(|b| b.off)
                    .zip(check.iter().copied())
                    .collect(),
                exit_blk,
                stop_blk,
            };
            let index: std::collections::HashMap<u64, usize> =
                blocks.iter().enumerate().map(|(k, b)| (b.off, k)).collect();
            for (k, blk) in blocks.iter().enumerate() {
                // Enter only if the whole block fits in what is left of the budget.
                g.b.switch_to_block(check[k]);
                g.cache = [None; 32];
                let r = g.b.use_var(retired);
                let budget = g.field(offsets::BUDGET);
                let left = g.b.ins().isub(budget, r);
                let fits = g.b.ins().icmp_imm_u(
                    IntCC::UnsignedGreaterThanOrEqual,
                    left,
                    blk.ops.len() as i64,
                );
                let out = g.b.create_block();
                g.b.set_cold_block(out);
                g.b.ins().brif(fits, body[k], &[], out, &[]);
                g.b.switch_to_block(out);
                let done = g.imm(EXIT_DONE as i64);
                g.exit(done, Npc::Off(blk.off as i64), r);
                g.b.switch_to_block(body[k]);
                g.cache = [None; 32];
                g.block(blk, &helpers, ptr, &|t| {
                    if on_page(t) {
                        index.get(&(t as u64)).map(|&i| check[i])
                    } else {
                        None
                    }
                })?;
            }
            g.b.switch_to_block(stop_blk);
            let p = g.b.block_params(stop_blk).to_vec();
            let is_trap = g.b.ins().icmp_imm_s(IntCC::Equal, p[0], EXIT_TRAP as i64);
            let off = g.b.ins().select(is_trap, p[1], p[2]);
            let vb = g.vbase();
            let npc = g.b.ins().iadd(vb, off);
            let after = g.b.ins().iadd_imm_s(p[3], 1);
            let r = g.b.ins().select(is_trap, p[3], after);
            g.b.ins()
                .jump(exit_blk, &[p[0].into(), npc.into(), r.into()]);
            g.b.switch_to_block(exit_blk);
            let p = g.b.block_params(exit_blk).to_vec();
            g.b.ins().store(trusted(), p[1], ctx, offsets::NPC);
            g.b.ins().store(trusted(), p[2], ctx, offsets::RETIRED);
            g.b.ins().return_(&[p[0]]);
            g.b.seal_all_blocks();
            g.b.finalize(self.module.target_config());
        }
        let id = self
            .module
            .declare_anonymous_function(&cctx.func.signature)
            .ok()?;
        self.module.define_function(id, &mut cctx).ok()?;
        let bytes = cctx
            .compiled_code()
            .map_or(0, |c| c.code_buffer().len() as u64);
        self.module.clear_context(&mut cctx);
        self.module.finalize_definitions().ok()?;
        let code = self.module.get_finalized_function(id);
        // SAFETY: the function was generated with the `BlockFn` signature (one pointer in, one
        // i64 out, the host's C calling convention).
        Some((
            unsafe { std::mem::transmute::<*const u8, BlockFn>(code) },
            bytes,
        ))
    }
}

impl Gen<'_> {
    /// Emit the body of one region block (the current block is its entry); `target` maps a
    /// page offset to the region block checking entry there.
    fn block(
        &mut self,
        blk: &RBlock<'_>,
        helpers: &Helpers,
        ptr: types::Type,
        target: &dyn Fn(i64) -> Option<Block>,
    ) -> Option<()> {
        let g = self;
        let r0 = g.b.use_var(g.retired);
        let n = blk.ops.len();
        let mut off = blk.off;
        for (i, op) in blk.ops.iter().enumerate() {
            let op_off = off;
            off += op.len as u64;
            let imm = op.imm as i64;
            use Kind::*;
            macro_rules! rr {
                ($f:ident) => {{
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let v = g.b.ins().$f(a, c);
                    g.set(op.rd, v);
                }};
            }
            macro_rules! rw {
                ($f:ident) => {{
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let a = g.b.ins().ireduce(types::I32, a);
                    let c = g.b.ins().ireduce(types::I32, c);
                    let v = g.b.ins().$f(a, c);
                    let v = g.b.ins().sextend(types::I64, v);
                    g.set(op.rd, v);
                }};
            }
            // The last op of a whole block transfers control (or falls through below).
            let last = blk.whole && i + 1 == n;
            match op.kind {
                Lui => {
                    let v = g.imm(imm);
                    g.set(op.rd, v)
                }
                Auipc => {
                    let vb = g.vbase();
                    let v = g.b.ins().iadd_imm_s(vb, imm);
                    g.set(op.rd, v)
                }
                Jal | J => {
                    if op.kind == Jal {
                        let vb = g.vbase();
                        let fall = g.b.ins().iadd_imm_s(vb, blk.end as i64);
                        g.set(op.rd, fall);
                    }
                    let r = g.b.ins().iadd_imm_s(r0, n as i64);
                    g.b.def_var(g.retired, r);
                    g.goto(imm, target, r);
                    return Some(());
                }
                Jalr | Jr => {
                    let a = g.get(op.rs1);
                    let t = g.b.ins().iadd_imm_s(a, imm);
                    let npc = g.b.ins().band_imm_s(t, !1);
                    if op.kind == Jalr {
                        let vb = g.vbase();
                        let fall = g.b.ins().iadd_imm_s(vb, blk.end as i64);
                        g.set(op.rd, fall);
                    }
                    let r = g.b.ins().iadd_imm_s(r0, n as i64);
                    g.b.def_var(g.retired, r);
                    // The indirect jump cache: a target on this page that starts a block of
                    // the region goes on there (through its budget check); anything else
                    // leaves the region.
                    let out = g.b.create_block();
                    if !g.entries.is_empty() {
                        let disp = g.b.create_block();
                        let page = g.b.ins().band_imm_s(npc, !(PAGE as i64 - 1));
                        let vb = g.vbase();
                        let same = g.b.ins().icmp(IntCC::Equal, page, vb);
                        g.b.ins().brif(same, disp, &[], out, &[]);
                        g.b.switch_to_block(disp);
                        let off = g.b.ins().band_imm_s(npc, PAGE as i64 - 1);
                        let mut sw = Switch::new();
                        for &(o, blk) in &g.entries {
                            sw.set_entry(o as u128, blk);
                        }
                        sw.emit(&mut g.b, off, out);
                    } else {
                        g.b.ins().jump(out, &[]);
                    }
                    g.b.switch_to_block(out);
                    let done = g.imm(EXIT_DONE as i64);
                    g.exit(done, Npc::Pc(npc), r);
                    return Some(());
                }
                Beq | Bne | Blt | Bge | Bltu | Bgeu if last => {
                    let cc = match op.kind {
                        Beq => IntCC::Equal,
                        Bne => IntCC::NotEqual,
                        Blt => IntCC::SignedLessThan,
                        Bge => IntCC::SignedGreaterThanOrEqual,
                        Bltu => IntCC::UnsignedLessThan,
                        _ => IntCC::UnsignedGreaterThanOrEqual,
                    };
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let c = g.b.ins().icmp(cc, a, c);
                    let r = g.b.ins().iadd_imm_s(r0, n as i64);
                    g.b.def_var(g.retired, r);
                    let taken = g.b.create_block();
                    let not_taken = g.b.create_block();
                    g.b.ins().brif(c, taken, &[], not_taken, &[]);
                    g.b.switch_to_block(taken);
                    g.goto(imm, target, r);
                    g.b.switch_to_block(not_taken);
                    g.goto(blk.end as i64, target, r);
                    return Some(());
                }
                Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu => {
                    let size: u64 = match op.kind {
                        Lb | Lbu => 1,
                        Lh | Lhu => 2,
                        Lw | Lwu => 4,
                        _ => 8,
                    };
                    let a = g.get(op.rs1);
                    let addr = g.b.ins().iadd_imm_s(a, imm);
                    // The TLB hit path: one tag compare, then host memory.
                    let set = g.field(offsets::TLB_LOAD);
                    let p = g.tlb_probe(set, addr, size);
                    let host = p.host;
                    let fast = g.b.create_block();
                    let miss = g.b.create_block();
                    let slow = g.b.create_block();
                    let join = g.b.create_block();
                    g.b.set_cold_block(miss);
                    g.b.append_block_param(join, types::I64);
                    g.b.ins().brif(p.hit, fast, &[], miss, &[]);
                    g.b.switch_to_block(miss);
                    g.watch_window(&p, addr, offsets::WATCH_LOAD, fast, slow);
                    g.b.switch_to_block(fast);
                    let fl = MemFlagsData::trusted();
                    let v = match op.kind {
                        Lb => g.b.ins().sload8(types::I64, fl, host, 0),
                        Lbu => g.b.ins().uload8(types::I64, fl, host, 0),
                        Lh => g.b.ins().sload16(types::I64, fl, host, 0),
                        Lhu => g.b.ins().uload16(types::I64, fl, host, 0),
                        Lw => g.b.ins().sload32(fl, host, 0),
                        Lwu => g.b.ins().uload32(fl, host, 0),
                        _ => g.b.ins().load(types::I64, fl, host, 0),
                    };
                    g.b.ins().jump(join, &[v.into()]);
                    g.b.switch_to_block(slow);
                    let info = g.b.ins().iadd_imm_s(r0, (i as u64 | size << 32) as i64);
                    let f = g.b.ins().load(ptr, trusted(), g.ctx, offsets::LOAD);
                    let call =
                        g.b.ins()
                            .call_indirect(helpers.load, f, &[g.ctx, addr, info]);
                    let raw = g.b.inst_results(call)[0];
                    let v = match op.kind {
                        Lb => {
                            let t = g.b.ins().ireduce(types::I8, raw);
                            g.b.ins().sextend(types::I64, t)
                        }
                        Lh => {
                            let t = g.b.ins().ireduce(types::I16, raw);
                            g.b.ins().sextend(types::I64, t)
                        }
                        Lw => g.sext32(raw),
                        _ => raw,
                    };
                    let st =
                        g.b.ins()
                            .load(types::I64, trusted(), g.ctx, offsets::STATUS);
                    let rd = op.rd;
                    g.helper_exit(st, r0, i, op, op_off, |g| g.store_reg(rd, v));
                    g.b.ins().jump(join, &[v.into()]);
                    g.b.switch_to_block(join);
                    let v = g.b.block_params(join)[0];
                    g.set(op.rd, v);
                }
                Sb | Sh | Sw | Sd => {
                    let size: u64 = match op.kind {
                        Sb => 1,
                        Sh => 2,
                        Sw => 4,
                        _ => 8,
                    };
                    let a = g.get(op.rs1);
                    let addr = g.b.ins().iadd_imm_s(a, imm);
                    let val = g.get(op.rs2);
                    // The TLB hit path, unless the page holds decoded code (the helper
                    // invalidates it exactly as the interpreter does).
                    let set = g.field(offsets::TLB_STORE);
                    let p = g.tlb_probe(set, addr, size);
                    let (host, base) = (p.host, p.base);
                    let check = g.b.create_block();
                    let miss = g.b.create_block();
                    let fast = g.b.create_block();
                    let slow = g.b.create_block();
                    let join = g.b.create_block();
                    g.b.set_cold_block(miss);
                    g.b.ins().brif(p.hit, check, &[], miss, &[]);
                    g.b.switch_to_block(miss);
                    g.watch_window(&p, addr, offsets::WATCH_STORE, check, slow);
                    g.b.switch_to_block(check);
                    let pidx = g.b.ins().ushr_imm_s(base, 12);
                    let cs = g.field(offsets::CODE_STATE);
                    let cs_at = g.b.ins().iadd(cs, pidx);
                    let cs = g.b.ins().uload8(types::I64, trusted(), cs_at, 0);
                    g.b.ins().brif(cs, slow, &[], fast, &[]);
                    g.b.switch_to_block(fast);
                    let fl = MemFlagsData::trusted();
                    match size {
                        1 => g.b.ins().istore8(fl, val, host, 0),
                        2 => g.b.ins().istore16(fl, val, host, 0),
                        4 => g.b.ins().istore32(fl, val, host, 0),
                        _ => g.b.ins().store(fl, val, host, 0),
                    };
                    let pd = g.field(offsets::PAGE_DIRTY);
                    let pd_at = g.b.ins().iadd(pd, pidx);
                    let one = g.b.ins().iconst(types::I8, 1);
                    g.b.ins().store(trusted(), one, pd_at, 0);
                    g.b.ins().jump(join, &[]);
                    g.b.switch_to_block(slow);
                    let info = g.b.ins().iadd_imm_s(r0, (i as u64 | size << 32) as i64);
                    let f = g.b.ins().load(ptr, trusted(), g.ctx, offsets::STORE);
                    let call =
                        g.b.ins()
                            .call_indirect(helpers.store, f, &[g.ctx, addr, val, info]);
                    let st = g.b.inst_results(call)[0];
                    g.helper_stop(st, r0, i, op, op_off);
                    g.b.ins().jump(join, &[]);
                    g.b.switch_to_block(join);
                }
                Addi => {
                    let a = g.get(op.rs1);
                    let v = g.b.ins().iadd_imm_s(a, imm);
                    g.set(op.rd, v)
                }
                Slti | Sltiu => {
                    let a = g.get(op.rs1);
                    let cc = if op.kind == Slti {
                        IntCC::SignedLessThan
                    } else {
                        IntCC::UnsignedLessThan
                    };
                    let c = g.b.ins().icmp_imm_s(cc, a, imm);
                    let v = g.bool64(c);
                    g.set(op.rd, v)
                }
                Xori | Ori | Andi => {
                    let a = g.get(op.rs1);
                    let v = match op.kind {
                        Xori => g.b.ins().bxor_imm_s(a, imm),
                        Ori => g.b.ins().bor_imm_s(a, imm),
                        _ => g.b.ins().band_imm_s(a, imm),
                    };
                    g.set(op.rd, v)
                }
                Slli | Srli | Srai => {
                    let a = g.get(op.rs1);
                    let s = imm & 63;
                    let v = match op.kind {
                        Slli => g.b.ins().ishl_imm_s(a, s),
                        Srli => g.b.ins().ushr_imm_s(a, s),
                        _ => g.b.ins().sshr_imm_s(a, s),
                    };
                    g.set(op.rd, v)
                }
                Add => rr!(iadd),
                Sub => rr!(isub),
                Sll => rr!(ishl),
                Srl => rr!(ushr),
                Sra => rr!(sshr),
                Xor => rr!(bxor),
                Or => rr!(bor),
                And => rr!(band),
                Slt | Sltu => {
                    let cc = if op.kind == Slt {
                        IntCC::SignedLessThan
                    } else {
                        IntCC::UnsignedLessThan
                    };
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let c = g.b.ins().icmp(cc, a, c);
                    let v = g.bool64(c);
                    g.set(op.rd, v)
                }
                Addiw => {
                    let a = g.get(op.rs1);
                    let t = g.b.ins().iadd_imm_s(a, imm);
                    let v = g.sext32(t);
                    g.set(op.rd, v)
                }
                Slliw | Srliw | Sraiw => {
                    let a = g.get(op.rs1);
                    let a = g.b.ins().ireduce(types::I32, a);
                    let s = imm & 31;
                    let v = match op.kind {
                        Slliw => g.b.ins().ishl_imm_s(a, s),
                        Srliw => g.b.ins().ushr_imm_s(a, s),
                        _ => g.b.ins().sshr_imm_s(a, s),
                    };
                    let v = g.b.ins().sextend(types::I64, v);
                    g.set(op.rd, v)
                }
                Addw => rw!(iadd),
                Subw => rw!(isub),
                Sllw => rw!(ishl),
                Srlw => rw!(ushr),
                Sraw => rw!(sshr),
                Mul => rr!(imul),
                Mulh => rr!(smulhi),
                Mulhu => rr!(umulhi),
                Mulhsu => {
                    // mulhsu(a, b) = mulhu(a, b) - (a < 0 ? b : 0)
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let hu = g.b.ins().umulhi(a, c);
                    let neg = g.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                    let zero = g.imm(0);
                    let corr = g.b.ins().select(neg, c, zero);
                    let v = g.b.ins().isub(hu, corr);
                    g.set(op.rd, v)
                }
                Mulw => rw!(imul),
                Div | Divu | Rem | Remu => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let v = g.div(
                        a,
                        c,
                        matches!(op.kind, Div | Rem),
                        matches!(op.kind, Rem | Remu),
                    );
                    g.set(op.rd, v)
                }
                Divw | Divuw | Remw | Remuw => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let a = g.b.ins().ireduce(types::I32, a);
                    let c = g.b.ins().ireduce(types::I32, c);
                    let v = g.div(
                        a,
                        c,
                        matches!(op.kind, Divw | Remw),
                        matches!(op.kind, Remw | Remuw),
                    );
                    let v = g.b.ins().sextend(types::I64, v);
                    g.set(op.rd, v)
                }
                Sh1add | Sh2add | Sh3add | Sh1addUw | Sh2addUw | Sh3addUw => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let s = match op.kind {
                        Sh1add | Sh1addUw => 1,
                        Sh2add | Sh2addUw => 2,
                        _ => 3,
                    };
                    // The .uw forms shift the zero-extended low word of rs1.
                    let a = if matches!(op.kind, Sh1addUw | Sh2addUw | Sh3addUw) {
                        g.b.ins().band_imm_s(a, 0xffff_ffff)
                    } else {
                        a
                    };
                    let t = g.b.ins().ishl_imm_s(a, s);
                    let v = g.b.ins().iadd(t, c);
                    g.set(op.rd, v)
                }
                AddUw => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let t = g.b.ins().band_imm_s(a, 0xffff_ffff);
                    let v = g.b.ins().iadd(t, c);
                    g.set(op.rd, v)
                }
                Andn => rr!(band_not),
                Orn => rr!(bor_not),
                Xnor => rr!(bxor_not),
                Max => rr!(smax),
                Maxu => rr!(umax),
                Min => rr!(smin),
                Minu => rr!(umin),
                SextB | SextH => {
                    let a = g.get(op.rs1);
                    let ty = if op.kind == SextB {
                        types::I8
                    } else {
                        types::I16
                    };
                    let t = g.b.ins().ireduce(ty, a);
                    let v = g.b.ins().sextend(types::I64, t);
                    g.set(op.rd, v)
                }
                ZextH => {
                    let a = g.get(op.rs1);
                    let v = g.b.ins().band_imm_s(a, 0xffff);
                    g.set(op.rd, v)
                }
                Rev8 => {
                    let a = g.get(op.rs1);
                    let v = g.b.ins().bswap(a);
                    g.set(op.rd, v)
                }
                CzeroEqz | CzeroNez => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let zero = g.imm(0);
                    // select(c, x, y) = c != 0 ? x : y
                    let v = if op.kind == CzeroEqz {
                        g.b.ins().select(c, a, zero)
                    } else {
                        g.b.ins().select(c, zero, a)
                    };
                    g.set(op.rd, v)
                }
                SlliUw => {
                    let a = g.get(op.rs1);
                    let t = g.b.ins().band_imm_s(a, 0xffff_ffff);
                    let v = g.b.ins().ishl_imm_s(t, imm & 63);
                    g.set(op.rd, v)
                }
                Clz | Ctz | Cpop => {
                    let a = g.get(op.rs1);
                    let v = match op.kind {
                        Clz => g.b.ins().clz(a),
                        Ctz => g.b.ins().ctz(a),
                        _ => g.b.ins().popcnt(a),
                    };
                    g.set(op.rd, v)
                }
                Clzw | Ctzw | Cpopw => {
                    let a = g.get(op.rs1);
                    let a = g.b.ins().ireduce(types::I32, a);
                    let v = match op.kind {
                        Clzw => g.b.ins().clz(a),
                        Ctzw => g.b.ins().ctz(a),
                        _ => g.b.ins().popcnt(a),
                    };
                    let v = g.b.ins().uextend(types::I64, v);
                    g.set(op.rd, v)
                }
                // Cranelift's rotates and shifts take the amount modulo the width, as RISC-V.
                Rol => rr!(rotl),
                Ror => rr!(rotr),
                Rori => {
                    let a = g.get(op.rs1);
                    let v = g.b.ins().rotr_imm_s(a, imm & 63);
                    g.set(op.rd, v)
                }
                Rolw => rw!(rotl),
                Rorw => rw!(rotr),
                Roriw => {
                    let a = g.get(op.rs1);
                    let a = g.b.ins().ireduce(types::I32, a);
                    let v = g.b.ins().rotr_imm_s(a, imm & 31);
                    let v = g.b.ins().sextend(types::I64, v);
                    g.set(op.rd, v)
                }
                OrcB => {
                    // Per byte: bit 7 of ((b & 0x7f) + 0x7f) | b is set iff b != 0 (no carry
                    // crosses a byte); then spread it over the byte.
                    let a = g.get(op.rs1);
                    let lo = g.b.ins().band_imm_s(a, 0x7f7f_7f7f_7f7f_7f7f);
                    let t = g.b.ins().iadd_imm_s(lo, 0x7f7f_7f7f_7f7f_7f7f);
                    let t = g.b.ins().bor(t, a);
                    let t = g.b.ins().band_imm_s(t, 0x8080_8080_8080_8080u64 as i64);
                    let t = g.b.ins().ushr_imm_s(t, 7);
                    let v = g.b.ins().imul_imm_s(t, 0xff);
                    g.set(op.rd, v)
                }
                Bclr | Bext | Binv | Bset => {
                    let a = g.get(op.rs1);
                    let c = g.get(op.rs2);
                    let v = if op.kind == Bext {
                        let t = g.b.ins().ushr(a, c);
                        g.b.ins().band_imm_s(t, 1)
                    } else {
                        let one = g.imm(1);
                        let bit = g.b.ins().ishl(one, c);
                        match op.kind {
                            Bclr => g.b.ins().band_not(a, bit),
                            Binv => g.b.ins().bxor(a, bit),
                            _ => g.b.ins().bor(a, bit),
                        }
                    };
                    g.set(op.rd, v)
                }
                Bclri | Bexti | Binvi | Bseti => {
                    let a = g.get(op.rs1);
                    let s = imm & 63;
                    let bit = (1u64 << s) as i64;
                    let v = match op.kind {
                        Bclri => g.b.ins().band_imm_s(a, !bit),
                        Bexti => {
                            let t = g.b.ins().ushr_imm_s(a, s);
                            g.b.ins().band_imm_s(t, 1)
                        }
                        Binvi => g.b.ins().bxor_imm_s(a, bit),
                        _ => g.b.ins().bor_imm_s(a, bit),
                    };
                    g.set(op.rd, v)
                }
                Fence | Nop => {}
                k if via_helper(k) => {
                    // The helper needs the op for as long as the code lives (translated code
                    // is never freed; the page's arena may move), so it gets its own copy.
                    let copy: &'static Op = Box::leak(Box::new(*op));
                    let opp = g.b.ins().iconst(ptr, copy as *const Op as i64);
                    // The op's page offset: CSR ops need their pc (an interrupt a write
                    // unmasks is taken with the next one in xepc).
                    let info = g.b.ins().iadd_imm_s(r0, (i as u64 | op_off << 32) as i64);
                    let f = g.b.ins().load(ptr, trusted(), g.ctx, offsets::OP);
                    let call = g.b.ins().call_indirect(helpers.op, f, &[g.ctx, opp, info]);
                    let st = g.b.inst_results(call)[0];
                    // AMOs, FP-to-integer and CSR ops wrote their result to the hart.
                    g.cache[(op.rd & 31) as usize] = None;
                    g.helper_stop(st, r0, i, op, op_off);
                }
                _ => return None, // not reached: `supported_prefix` filtered the ops
            }
        }
        let r = g.b.ins().iadd_imm_s(r0, n as i64);
        if blk.whole {
            // A block cut by its length limit or the page end falls through.
            g.b.def_var(g.retired, r);
            g.goto(blk.end as i64, target, r);
        } else {
            // Op `n` is not translated: the interpreter goes on there.
            let done = g.imm(EXIT_DONE as i64);
            g.exit(done, Npc::Off(off as i64), r);
        }
        Some(())
    }

    /// Go on at page offset `t` (ends the current block): to its region block, else out with
    /// `retired` instructions retired.
    fn goto(&mut self, t: i64, target: &dyn Fn(i64) -> Option<Block>, retired: Value) {
        match target(t) {
            Some(blk) => {
                self.b.ins().jump(blk, &[]);
            }
            None => {
                let done = self.imm(EXIT_DONE as i64);
                self.exit(done, Npc::Off(t), retired);
            }
        }
    }
}
