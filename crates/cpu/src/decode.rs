//! Instruction decoding into a pre-decoded form, cached per physical page.
//!
//! Every RV64GC instruction (RV64IMAFD, Zicsr, Zifencei, the privileged instructions, and all
//! RV64C forms) decodes to an [`Op`]: an operation [`Kind`] plus register numbers and a
//! pre-sign-extended immediate. Compressed instructions are expanded to the equivalent base
//! operation and keep `len = 2`. Reserved or unsupported encodings decode to [`Kind::Illegal`]
//! with the raw bits (the 16-bit parcel for compressed forms), which become `mtval`.
//!
//! CONTRACT (interpreter work owns this file): `DecodedPage` is what `Ram` caches per page.

use crate::isa::CpuFeatures;
use crate::ram::PAGE_SIZE;

/// Number of 2-byte parcels (decode slots) in a page.
pub const SLOTS: usize = (PAGE_SIZE / 2) as usize;

/// Operation kinds. `#[repr(u8)]` so the interpreter's `match` is a dense jump table.
///
/// Field use beyond `rd`/`rs1`/`rs2`/`imm` is noted per kind.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Slot not decoded yet (zero-filled pages start like this).
    Undecoded = 0,
    /// A 32-bit instruction whose upper half is on the next page: decoded on every execution.
    CrossPage = 1,
    /// Reserved / unsupported encoding: `raw` holds the bits for `xtval`.
    Illegal,
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Ld,
    Lbu,
    Lhu,
    Lwu,
    Sb,
    Sh,
    Sw,
    Sd,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Addiw,
    Slliw,
    Srliw,
    Sraiw,
    Addw,
    Subw,
    Sllw,
    Srlw,
    Sraw,
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    Mulw,
    Divw,
    Divuw,
    Remw,
    Remuw,
    // Zba/Zbb/Zbc/Zbs/Zicond: plain register ALU ops (kept contiguous from `Addi` to
    // `CzeroNez`: writing x0 makes them `Nop`s). Immediate forms keep the shift amount in `imm`.
    Sh1add,
    Sh2add,
    Sh3add,
    AddUw,
    Sh1addUw,
    Sh2addUw,
    Sh3addUw,
    SlliUw,
    Andn,
    Orn,
    Xnor,
    Clz,
    Clzw,
    Ctz,
    Ctzw,
    Cpop,
    Cpopw,
    Max,
    Maxu,
    Min,
    Minu,
    SextB,
    SextH,
    ZextH,
    Rol,
    Rolw,
    Ror,
    Rori,
    Roriw,
    Rorw,
    OrcB,
    Rev8,
    Clmul,
    Clmulh,
    Clmulr,
    Bclr,
    Bclri,
    Bext,
    Bexti,
    Binv,
    Binvi,
    Bset,
    Bseti,
    CzeroEqz,
    CzeroNez,
    /// fence (and fence.tso, pause): no-op on one in-order hart.
    Fence,
    /// Never produced by [`decode`]: the interpreter's form of an ALU op writing x0 (a hint).
    Nop,
    /// Never produced by [`decode`]: the interpreter's form of `jal x0`.
    J,
    /// Never produced by [`decode`]: the interpreter's form of `jalr x0`.
    Jr,
    FenceI,
    Ecall,
    Ebreak,
    Mret,
    Sret,
    Wfi,
    SfenceVma,
    /// CSR ops: `imm` = CSR address, `rs1` = source register.
    Csrrw,
    Csrrs,
    Csrrc,
    /// CSR immediate ops: `imm` = CSR address, `rs1` = the 5-bit uimm.
    Csrrwi,
    Csrrsi,
    Csrrci,
    LrW,
    ScW,
    AmoSwapW,
    AmoAddW,
    AmoXorW,
    AmoAndW,
    AmoOrW,
    AmoMinW,
    AmoMaxW,
    AmoMinuW,
    AmoMaxuW,
    LrD,
    ScD,
    AmoSwapD,
    AmoAddD,
    AmoXorD,
    AmoAndD,
    AmoOrD,
    AmoMinD,
    AmoMaxD,
    AmoMinuD,
    AmoMaxuD,
    /// FP loads/stores: `rd`/`rs2` are f registers.
    Flw,
    Fld,
    Fsw,
    Fsd,
    /// Fused multiply-add: `rm` = rounding-mode field, `rs3` = addend.
    FmaddS,
    FmsubS,
    FnmsubS,
    FnmaddS,
    FmaddD,
    FmsubD,
    FnmsubD,
    FnmaddD,
    /// Arithmetic with a rounding mode: `rm` = rounding-mode field.
    FaddS,
    FsubS,
    FmulS,
    FdivS,
    FsqrtS,
    FaddD,
    FsubD,
    FmulD,
    FdivD,
    FsqrtD,
    /// Sign injection: `rm` = 0 (fsgnj), 1 (fsgnjn), 2 (fsgnjx).
    FsgnjS,
    FsgnjD,
    /// `rm` = 0 (fmin), 1 (fmax).
    FminmaxS,
    FminmaxD,
    /// Compares: `rm` = fpu compare kind (0 feq, 1 flt, 2 fle).
    FcmpS,
    FcmpD,
    FclassS,
    FclassD,
    /// fcvt.{w,wu,l,lu}.s: `rs2` selects the integer kind (0 W, 1 WU, 2 L, 3 LU), `rm` rounding.
    FcvtIntS,
    FcvtIntD,
    /// fcvt.s.{w,wu,l,lu}: `rs2` selects the integer kind, `rm` rounding.
    FcvtSInt,
    FcvtDInt,
    FcvtSD,
    FcvtDS,
    FmvXW,
    FmvWX,
    FmvXD,
    FmvDX,
    /// Zfa fli: `rs1` = index into the constant table.
    FliS,
    FliD,
    /// Zfa fminm (`rm` = 0) / fmaxm (`rm` = 1).
    FminmaxmS,
    FminmaxmD,
    /// Zfa fround (`rs2` = 4) / froundnx (`rs2` = 5): `rm` = rounding-mode field.
    FroundS,
    FroundD,
    /// Zfa fcvtmod.w.d (rounding is always towards zero).
    FcvtmodWD,
    /// Zfa quiet compares: `rm` = 0 (fleq), 1 (fltq).
    FcmpqS,
    FcmpqD,
    /// Zicbom/Zicboz: `rs1` = base address register.
    CboClean,
    CboFlush,
    CboInval,
    CboZero,
    /// Zawrs.
    WrsNto,
    WrsSto,
}

/// One pre-decoded instruction (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Op {
    /// What to do.
    pub kind: Kind,
    /// Destination register (x or f depending on `kind`).
    pub rd: u8,
    /// First source register (or the uimm of csrr*i).
    pub rs1: u8,
    /// Second source register (or a sub-selector, see [`Kind`]).
    pub rs2: u8,
    /// Third source register (fused multiply-add).
    pub rs3: u8,
    /// Rounding-mode field or sub-operation selector (see [`Kind`]).
    pub rm: u8,
    /// Instruction length in bytes: 2 (compressed) or 4; 0 for `Undecoded`.
    pub len: u8,
    /// Sign-extended immediate (offset, CSR address, shift amount...).
    pub imm: i32,
    /// The raw instruction bits (16-bit parcel for compressed instructions).
    pub raw: u32,
}

impl Op {
    /// The empty slot.
    pub const UNDECODED: Op = Op {
        kind: Kind::Undecoded,
        rd: 0,
        rs1: 0,
        rs2: 0,
        rs3: 0,
        rm: 0,
        len: 0,
        imm: 0,
        raw: 0,
    };

    /// The illegal instruction `raw` of length `len`.
    #[inline]
    pub fn illegal(raw: u32, len: u8) -> Op {
        Op {
            kind: Kind::Illegal,
            len,
            raw,
            ..Op::UNDECODED
        }
    }

    /// Is this an illegal (reserved or unsupported) encoding?
    pub fn is_illegal(&self) -> bool {
        self.kind == Kind::Illegal
    }
}

/// Most ops in one block: bounds the cost of building a block and the duplication caused by
/// entering existing blocks in the middle.
pub(crate) const MAX_BLOCK: usize = 64;

/// Arena size (in ops) beyond which a page drops all its blocks before building another one, so
/// pathological entry patterns cannot grow it without bound (and indices fit in `u16`).
const ARENA_MAX: usize = 1 << 15;

/// Arena index of the scratch block holding the current page-straddling instruction (a header
/// and one op), which is decoded afresh on every execution because its upper half lives on the
/// next page. Index 0 is a dummy so that an entry of 0 means "no block".
pub(crate) const CROSS_BLOCK: usize = 1;

/// First arena index used by cached blocks.
const FIRST_BLOCK: usize = CROSS_BLOCK + 2;

/// The translation of a block: ready, or being made on the compile thread.
#[derive(Clone)]
enum JitSlot {
    Ready(crate::jit::BlockFn),
    Pending(crate::jit::PendingRegion),
    Failed,
}

/// Decoded basic blocks of one 4 KiB physical page.
///
/// A block is a run of instructions decoded from a start slot up to and including the first
/// control-flow or system instruction (or the page end, or [`MAX_BLOCK`] ops). It lives in
/// `arena` as a header op (`imm` = page offset just past its last instruction, `raw` = number
/// of ops) followed by its ops, laid out contiguously so that the interpreter walks them with an
/// index instead of chasing the pc through each op's length. Ops whose meaning depends on the
/// pc (`auipc`, `jal`, `j`, branches) have the instruction's page offset added to `imm`: the
/// interpreter adds only the virtual page base.
///
/// Writes to the page drop every block if they overlap an instruction of any block (see
/// [`crate::ram::Ram::invalidate_code_range`]); writes to data sharing the page keep them.
pub struct DecodedPage {
    /// Value of `Ram`'s code generation when this page was (re)initialised; a page from an older
    /// generation (before a `fence.i`) is reset before use.
    pub(crate) gen: u64,
    /// Per slot: arena index of the header of the block starting there (0 = none).
    entry: [u16; SLOTS],
    /// Bit per slot: some block holds an instruction starting at that slot.
    covered: [u64; SLOTS / 64],
    /// Headers and ops of all blocks (see the type's documentation).
    pub(crate) arena: Vec<Op>,
    /// Translated blocks (a header's `rs1..=rm` hold the index + 1, little-endian; its `rd` and
    /// `len` count executions until the block is hot, `u16::MAX` once translation was tried).
    jit: Vec<JitSlot>,
}

impl std::fmt::Debug for DecodedPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let decoded: u32 = self.covered.iter().map(|w| w.count_ones()).sum();
        f.debug_struct("DecodedPage")
            .field("gen", &self.gen)
            .field("decoded_slots", &decoded)
            .field("arena_ops", &self.arena.len())
            .finish()
    }
}

impl DecodedPage {
    /// An empty page of generation `gen`.
    pub fn new(gen: u64) -> Box<DecodedPage> {
        let mut arena = Vec::with_capacity(256);
        arena.resize(FIRST_BLOCK, Op::UNDECODED);
        Box::new(DecodedPage {
            gen,
            entry: [0; SLOTS],
            covered: [0; SLOTS / 64],
            arena,
            jit: Vec::new(),
        })
    }

    /// Does an instruction of some block start in slots `[lo, hi]` (inclusive, clamped)?
    #[inline]
    pub fn overlaps(&self, lo: usize, hi: usize) -> bool {
        let hi = hi.min(SLOTS - 1);
        if lo > hi {
            return false;
        }
        let (wlo, whi) = (lo / 64, hi / 64);
        (wlo..=whi).any(|w| {
            let mut m = !0u64;
            if w == wlo {
                m &= !0u64 << (lo % 64);
            }
            if w == whi {
                m &= !0u64 >> (63 - hi % 64);
            }
            self.covered[w] & m != 0
        })
    }

    /// Forget the decoded code if any instruction starts in slots `[lo, hi]` (inclusive,
    /// clamped to the page). Blocks are dropped wholesale: self-modifying code is rare, and
    /// data stores into a code page do not hit instructions.
    #[inline]
    pub fn invalidate(&mut self, lo: usize, hi: usize) {
        if self.overlaps(lo, hi) {
            self.clear_blocks();
        }
    }

    /// Forget every block and adopt generation `gen`.
    pub fn reset(&mut self, gen: u64) {
        self.clear_blocks();
        self.gen = gen;
    }

    /// Drop all blocks.
    fn clear_blocks(&mut self) {
        if self.arena.len() > FIRST_BLOCK {
            self.entry.fill(0);
            self.covered.fill(0);
            self.arena.truncate(FIRST_BLOCK);
            self.jit.clear();
        }
    }

    /// The translated code of the block at arena index `e` (starting at page offset `start`),
    /// if it has some. Otherwise count an execution, and once the block is hot, translate it
    /// with `compiler` — once: a block that cannot be translated stays interpreted. With
    /// `background`, the translation is made on the compile thread and used from the first
    /// execution after it is ready (the block is interpreted until then).
    #[inline]
    pub(crate) fn jit_block(
        &mut self,
        e: usize,
        start: u64,
        compiler: &dyn crate::jit::BlockCompiler,
        background: bool,
    ) -> Option<crate::jit::BlockFn> {
        if e == CROSS_BLOCK {
            return None; // decoded afresh on every execution
        }
        let h = self.arena.get_mut(e)?;
        let idx = u32::from_le_bytes([h.rs1, h.rs2, h.rs3, h.rm]);
        if idx != 0 {
            let slot = self.jit.get_mut(idx as usize - 1)?;
            return match slot {
                JitSlot::Ready(f) => Some(*f),
                JitSlot::Pending(p) => match p.get() {
                    None => None,
                    Some(Some(f)) => {
                        let f = *f;
                        *slot = JitSlot::Ready(f);
                        Some(f)
                    }
                    Some(None) => {
                        *slot = JitSlot::Failed;
                        None
                    }
                },
                JitSlot::Failed => None,
            };
        }
        let count = u16::from_le_bytes([h.rd, h.len]);
        if count < crate::jit::hot_threshold() {
            [h.rd, h.len] = (count + 1).to_le_bytes();
            // Not with translation on the hart's thread (the lockstep self-check): when a
            // region starts to run translated stays a function of the run alone.
            if count == crate::jit::cache_probe() && background {
                let f = compiler.cached(crate::jit::CodePage { page: self }, start)?;
                return self.attach(e, JitSlot::Ready(f));
            }
            return None;
        }
        if count == u16::MAX {
            return None;
        }
        [h.rd, h.len] = u16::MAX.to_le_bytes();
        let page = crate::jit::CodePage { page: self };
        let slot = if background {
            match compiler.compile_later(page, start) {
                crate::jit::Later::Queued(pending, members) => {
                    // The region's other blocks keep running interpreted until it is ready:
                    // start their counts again, so that they do not each ask for a region of
                    // their own meanwhile (once it is ready, they run inside it).
                    for off in members {
                        self.restart_count(off);
                    }
                    match pending.get() {
                        // Found in the translation cache.
                        Some(Some(f)) => JitSlot::Ready(*f),
                        _ => JitSlot::Pending(pending),
                    }
                }
                crate::jit::Later::Busy => {
                    let h = self.arena.get_mut(e)?;
                    [h.rd, h.len] = [0, 0];
                    return None;
                }
                crate::jit::Later::Unsupported => return None,
            }
        } else {
            JitSlot::Ready(compiler.compile(page, start)?)
        };
        self.attach(e, slot)
    }

    /// Give the block whose header is at `e` its translation slot; its code if ready.
    fn attach(&mut self, e: usize, slot: JitSlot) -> Option<crate::jit::BlockFn> {
        let ready = match &slot {
            JitSlot::Ready(f) => Some(*f),
            _ => None,
        };
        self.jit.push(slot);
        let b = (self.jit.len() as u32).to_le_bytes();
        let h = self.arena.get_mut(e)?;
        (h.rs1, h.rs2, h.rs3, h.rm) = (b[0], b[1], b[2], b[3]);
        ready
    }

    /// Count the executions of the block at page offset `off` from zero again, if it has
    /// not been handed to the compiler yet.
    fn restart_count(&mut self, off: u64) {
        if off & 1 != 0 || off >= (SLOTS * 2) as u64 {
            return;
        }
        let e = self.entry(off as usize / 2);
        if let Some(h) = self.arena.get_mut(e).filter(|_| e >= FIRST_BLOCK) {
            let idx = u32::from_le_bytes([h.rs1, h.rs2, h.rs3, h.rm]);
            if idx == 0 && u16::from_le_bytes([h.rd, h.len]) != u16::MAX {
                [h.rd, h.len] = [0, 0];
            }
        }
    }

    /// The cached block starting at page offset `off`: its ops and the page offset its
    /// fall-through ends at.
    pub(crate) fn block_at(&self, off: u64) -> Option<(&[Op], u64)> {
        if off & 1 != 0 || off >= (SLOTS * 2) as u64 {
            return None;
        }
        let e = self.entry(off as usize / 2);
        if e < FIRST_BLOCK {
            return None;
        }
        let h = self.arena.get(e)?;
        let ops = self.arena.get(e + 1..e + 1 + h.raw as usize)?;
        Some((ops, h.imm as u32 as u64))
    }

    /// Arena index of the block starting at `slot` (0 if none).
    #[inline(always)]
    pub(crate) fn entry(&self, slot: usize) -> usize {
        self.entry[slot & (SLOTS - 1)] as usize
    }

    /// Store a block starting at `slot` made of `ops` (occupying the given `slots`, ending at
    /// page offset `end_off`); returns its arena index.
    pub(crate) fn add_block(
        &mut self,
        slot: usize,
        ops: &[Op],
        slots: &[u16],
        end_off: u32,
    ) -> usize {
        if self.arena.len() + ops.len() + 1 > ARENA_MAX {
            self.clear_blocks();
        }
        let idx = self.arena.len();
        self.arena.push(Op {
            imm: end_off as i32,
            raw: ops.len() as u32,
            ..Op::UNDECODED
        });
        self.arena.extend_from_slice(ops);
        for &s in slots {
            let s = s as usize & (SLOTS - 1);
            self.covered[s / 64] |= 1 << (s % 64);
        }
        self.entry[slot & (SLOTS - 1)] = idx as u16;
        idx
    }

    /// Put the page-straddling instruction `op` (at page offset `SLOTS * 2 - 2`) into the
    /// scratch block; returns its arena index.
    pub(crate) fn set_cross(&mut self, op: Op) -> usize {
        self.arena[CROSS_BLOCK] = Op {
            imm: (SLOTS * 2 + 2) as i32,
            raw: 1,
            ..Op::UNDECODED
        };
        self.arena[CROSS_BLOCK + 1] = op;
        CROSS_BLOCK
    }
}

/// Is the parcel `lo16` the start of a 32-bit (or longer) instruction?
#[inline(always)]
pub fn is_32bit(lo16: u16) -> bool {
    lo16 & 3 == 3
}

/// Decode an instruction for QEMU 10's default `rv64` CPU: if the low two bits are `11` all 32
/// bits are used, otherwise only the low 16 bits (a compressed instruction).
pub fn decode(word: u32) -> Op {
    decode_with(word, &DEFAULT_FEATURES)
}

/// [`decode`] for the CPU model `f`: instructions of extensions it lacks are illegal.
pub fn decode_with(word: u32, f: &CpuFeatures) -> Op {
    if word & 3 == 3 {
        decode32_with(word, f)
    } else {
        decode16(word as u16)
    }
}

/// The extensions [`decode`] and [`decode32`] assume (QEMU 10 `rv64` without H).
const DEFAULT_FEATURES: CpuFeatures = CpuFeatures::qemu10_rv64();

#[inline(always)]
fn op4(kind: Kind, rd: u32, rs1: u32, rs2: u32, imm: i32, raw: u32) -> Op {
    Op {
        kind,
        rd: rd as u8,
        rs1: rs1 as u8,
        rs2: rs2 as u8,
        rs3: 0,
        rm: 0,
        len: 4,
        imm,
        raw,
    }
}

#[inline(always)]
fn op2(kind: Kind, rd: u32, rs1: u32, rs2: u32, imm: i32, raw: u16) -> Op {
    Op {
        kind,
        rd: rd as u8,
        rs1: rs1 as u8,
        rs2: rs2 as u8,
        rs3: 0,
        rm: 0,
        len: 2,
        imm,
        raw: raw as u32,
    }
}

/// Decode a 32-bit instruction word (low two bits `11`) for QEMU 10's default `rv64` CPU.
pub fn decode32(w: u32) -> Op {
    decode32_with(w, &DEFAULT_FEATURES)
}

/// Decode a 32-bit instruction word for the CPU model `f`. An instruction of an extension `f`
/// lacks decodes exactly like an unknown encoding: [`Kind::Illegal`] with its bits.
pub fn decode32_with(w: u32, f: &CpuFeatures) -> Op {
    use Kind::*;
    let opcode = w & 0x7f;
    let rd = (w >> 7) & 31;
    let funct3 = (w >> 12) & 7;
    let rs1 = (w >> 15) & 31;
    let rs2 = (w >> 20) & 31;
    let funct7 = w >> 25;
    let imm_i = (w as i32) >> 20;
    let imm_s = (((w as i32) >> 25) << 5) | ((w >> 7) & 31) as i32;
    let imm_b = (((w as i32) >> 31) << 12)
        | (((w >> 7) & 1) << 11) as i32
        | (((w >> 25) & 0x3f) << 5) as i32
        | (((w >> 8) & 0xf) << 1) as i32;
    let imm_u = (w & 0xffff_f000) as i32;
    let imm_j = (((w as i32) >> 31) << 20)
        | (w & 0x000f_f000) as i32
        | (((w >> 20) & 1) << 11) as i32
        | (((w >> 21) & 0x3ff) << 1) as i32;
    let ill = Op::illegal(w, 4);
    let r = |k: Kind| op4(k, rd, rs1, rs2, 0, w);
    let i = |k: Kind| op4(k, rd, rs1, 0, imm_i, w);
    match opcode {
        0x37 => op4(Lui, rd, 0, 0, imm_u, w),
        0x17 => op4(Auipc, rd, 0, 0, imm_u, w),
        0x6f => op4(Jal, rd, 0, 0, imm_j, w),
        0x67 if funct3 == 0 => i(Jalr),
        0x63 => {
            let k = match funct3 {
                0 => Beq,
                1 => Bne,
                4 => Blt,
                5 => Bge,
                6 => Bltu,
                7 => Bgeu,
                _ => return ill,
            };
            op4(k, 0, rs1, rs2, imm_b, w)
        }
        0x03 => {
            let k = match funct3 {
                0 => Lb,
                1 => Lh,
                2 => Lw,
                3 => Ld,
                4 => Lbu,
                5 => Lhu,
                6 => Lwu,
                _ => return ill,
            };
            i(k)
        }
        0x23 => {
            let k = match funct3 {
                0 => Sb,
                1 => Sh,
                2 => Sw,
                3 => Sd,
                _ => return ill,
            };
            op4(k, 0, rs1, rs2, imm_s, w)
        }
        0x13 => {
            let shamt = ((w >> 20) & 0x3f) as i32;
            let sh = |k: Kind| op4(k, rd, rs1, 0, shamt, w);
            let un = |k: Kind| op4(k, rd, rs1, 0, 0, w);
            // Shift-immediate forms: funct6 above a 6-bit shamt; unary forms: a full imm12.
            match (funct3, w >> 26) {
                (0, _) => i(Addi),
                (2, _) => i(Slti),
                (3, _) => i(Sltiu),
                (4, _) => i(Xori),
                // Also the Zicbop prefetch hints (rd = x0), which need nothing more.
                (6, _) => i(Ori),
                (7, _) => i(Andi),
                (1, 0) => sh(Slli),
                (5, 0) => sh(Srli),
                (5, 0x10) => sh(Srai),
                (1, 0x18) if f.zbb => match w >> 20 {
                    0x600 => un(Clz),
                    0x601 => un(Ctz),
                    0x602 => un(Cpop),
                    0x604 => un(SextB),
                    0x605 => un(SextH),
                    _ => ill,
                },
                (5, 0x18) if f.zbb => sh(Rori),
                (5, _) if f.zbb && w >> 20 == 0x287 => un(OrcB),
                (5, _) if f.zbb && w >> 20 == 0x6b8 => un(Rev8),
                (1, 0x12) if f.zbs => sh(Bclri),
                (5, 0x12) if f.zbs => sh(Bexti),
                (1, 0x1a) if f.zbs => sh(Binvi),
                (1, 0x0a) if f.zbs => sh(Bseti),
                _ => ill,
            }
        }
        0x1b => {
            let shamt = rs2 as i32;
            match (funct3, funct7) {
                (0, _) => i(Addiw),
                (1, 0) => op4(Slliw, rd, rs1, 0, shamt, w),
                (5, 0) => op4(Srliw, rd, rs1, 0, shamt, w),
                (5, 0x20) => op4(Sraiw, rd, rs1, 0, shamt, w),
                // slli.uw: funct6 = 000010 and a 6-bit shamt.
                (1, 4 | 5) if f.zba => op4(SlliUw, rd, rs1, 0, ((w >> 20) & 0x3f) as i32, w),
                (1, 0x30) if f.zbb => match rs2 {
                    0 => op4(Clzw, rd, rs1, 0, 0, w),
                    1 => op4(Ctzw, rd, rs1, 0, 0, w),
                    2 => op4(Cpopw, rd, rs1, 0, 0, w),
                    _ => ill,
                },
                (5, 0x30) if f.zbb => op4(Roriw, rd, rs1, 0, shamt, w),
                _ => ill,
            }
        }
        0x33 => {
            let k = match (funct7, funct3) {
                (0, 0) => Add,
                (0x20, 0) => Sub,
                (0, 1) => Sll,
                (0, 2) => Slt,
                (0, 3) => Sltu,
                (0, 4) => Xor,
                (0, 5) => Srl,
                (0x20, 5) => Sra,
                (0, 6) => Or,
                (0, 7) => And,
                (1, 0) => Mul,
                (1, 1) => Mulh,
                (1, 2) => Mulhsu,
                (1, 3) => Mulhu,
                (1, 4) => Div,
                (1, 5) => Divu,
                (1, 6) => Rem,
                (1, 7) => Remu,
                (0x10, 2) if f.zba => Sh1add,
                (0x10, 4) if f.zba => Sh2add,
                (0x10, 6) if f.zba => Sh3add,
                (0x20, 7) if f.zbb => Andn,
                (0x20, 6) if f.zbb => Orn,
                (0x20, 4) if f.zbb => Xnor,
                (0x05, 4) if f.zbb => Min,
                (0x05, 5) if f.zbb => Minu,
                (0x05, 6) if f.zbb => Max,
                (0x05, 7) if f.zbb => Maxu,
                (0x30, 1) if f.zbb => Rol,
                (0x30, 5) if f.zbb => Ror,
                (0x05, 1) if f.zbc => Clmul,
                (0x05, 2) if f.zbc => Clmulr,
                (0x05, 3) if f.zbc => Clmulh,
                (0x24, 1) if f.zbs => Bclr,
                (0x24, 5) if f.zbs => Bext,
                (0x34, 1) if f.zbs => Binv,
                (0x14, 1) if f.zbs => Bset,
                (0x07, 5) if f.zicond => CzeroEqz,
                (0x07, 7) if f.zicond => CzeroNez,
                _ => return ill,
            };
            r(k)
        }
        0x3b => {
            let k = match (funct7, funct3) {
                (0, 0) => Addw,
                (0x20, 0) => Subw,
                (0, 1) => Sllw,
                (0, 5) => Srlw,
                (0x20, 5) => Sraw,
                (1, 0) => Mulw,
                (1, 4) => Divw,
                (1, 5) => Divuw,
                (1, 6) => Remw,
                (1, 7) => Remuw,
                (0x04, 0) if f.zba => AddUw,
                (0x10, 2) if f.zba => Sh1addUw,
                (0x10, 4) if f.zba => Sh2addUw,
                (0x10, 6) if f.zba => Sh3addUw,
                (0x30, 1) if f.zbb => Rolw,
                (0x30, 5) if f.zbb => Rorw,
                // zext.h is RV64's packw with rs2 = x0 (packw itself is Zbkb).
                (0x04, 4) if f.zbb && rs2 == 0 => ZextH,
                _ => return ill,
            };
            r(k)
        }
        0x0f => match funct3 {
            // Like QEMU, the unused fm/rs1/rd fields of fence and fence.i are not checked.
            0 => op4(Fence, 0, 0, 0, 0, w),
            1 => op4(FenceI, 0, 0, 0, 0, w),
            // CBO: the operation is the whole imm12, rd must be x0.
            2 if rd == 0 => match w >> 20 {
                0 if f.zicbom => op4(CboInval, 0, rs1, 0, 0, w),
                1 if f.zicbom => op4(CboClean, 0, rs1, 0, 0, w),
                2 if f.zicbom => op4(CboFlush, 0, rs1, 0, 0, w),
                4 if f.zicboz => op4(CboZero, 0, rs1, 0, 0, w),
                _ => ill,
            },
            _ => ill,
        },
        0x73 => match funct3 {
            0 => match w {
                0x0000_0073 => op4(Ecall, 0, 0, 0, 0, w),
                0x0010_0073 => op4(Ebreak, 0, 0, 0, 0, w),
                0x1020_0073 => op4(Sret, 0, 0, 0, 0, w),
                0x3020_0073 => op4(Mret, 0, 0, 0, 0, w),
                0x1050_0073 => op4(Wfi, 0, 0, 0, 0, w),
                0x00d0_0073 if f.zawrs => op4(WrsNto, 0, 0, 0, 0, w),
                0x01d0_0073 if f.zawrs => op4(WrsSto, 0, 0, 0, 0, w),
                _ if funct7 == 0x09 && rd == 0 => op4(SfenceVma, 0, rs1, rs2, 0, w),
                _ => ill,
            },
            4 => ill,
            _ => {
                let k = match funct3 {
                    1 => Csrrw,
                    2 => Csrrs,
                    3 => Csrrc,
                    5 => Csrrwi,
                    6 => Csrrsi,
                    _ => Csrrci,
                };
                op4(k, rd, rs1, 0, (w >> 20) as i32, w)
            }
        },
        0x2f => {
            let funct5 = w >> 27;
            let k = match (funct3, funct5) {
                (2, 0x02) if rs2 == 0 => LrW,
                (2, 0x03) => ScW,
                (2, 0x01) => AmoSwapW,
                (2, 0x00) => AmoAddW,
                (2, 0x04) => AmoXorW,
                (2, 0x0c) => AmoAndW,
                (2, 0x08) => AmoOrW,
                (2, 0x10) => AmoMinW,
                (2, 0x14) => AmoMaxW,
                (2, 0x18) => AmoMinuW,
                (2, 0x1c) => AmoMaxuW,
                (3, 0x02) if rs2 == 0 => LrD,
                (3, 0x03) => ScD,
                (3, 0x01) => AmoSwapD,
                (3, 0x00) => AmoAddD,
                (3, 0x04) => AmoXorD,
                (3, 0x0c) => AmoAndD,
                (3, 0x08) => AmoOrD,
                (3, 0x10) => AmoMinD,
                (3, 0x14) => AmoMaxD,
                (3, 0x18) => AmoMinuD,
                (3, 0x1c) => AmoMaxuD,
                _ => return ill,
            };
            r(k)
        }
        0x07 => match funct3 {
            2 => i(Flw),
            3 => i(Fld),
            _ => ill,
        },
        0x27 => match funct3 {
            2 => op4(Fsw, 0, rs1, rs2, imm_s, w),
            3 => op4(Fsd, 0, rs1, rs2, imm_s, w),
            _ => ill,
        },
        0x43 | 0x47 | 0x4b | 0x4f => {
            let fmt = (w >> 25) & 3;
            let k = match (opcode, fmt) {
                (0x43, 0) => FmaddS,
                (0x47, 0) => FmsubS,
                (0x4b, 0) => FnmsubS,
                (0x4f, 0) => FnmaddS,
                (0x43, 1) => FmaddD,
                (0x47, 1) => FmsubD,
                (0x4b, 1) => FnmsubD,
                (0x4f, 1) => FnmaddD,
                _ => return ill,
            };
            Op {
                rs3: (w >> 27) as u8,
                rm: funct3 as u8,
                ..r(k)
            }
        }
        0x53 => decode_op_fp(w, f, rd, funct3, rs1, rs2, funct7),
        _ => ill,
    }
}

/// The OP-FP major opcode.
fn decode_op_fp(
    w: u32,
    f: &CpuFeatures,
    rd: u32,
    funct3: u32,
    rs1: u32,
    rs2: u32,
    funct7: u32,
) -> Op {
    use Kind::*;
    let ill = Op::illegal(w, 4);
    // `rm` carries either the rounding mode or the funct3 sub-operation, as noted per Kind.
    let mk = |k: Kind, rm: u32| Op {
        rm: rm as u8,
        ..op4(k, rd, rs1, rs2, 0, w)
    };
    match funct7 {
        0x00 => mk(FaddS, funct3),
        0x04 => mk(FsubS, funct3),
        0x08 => mk(FmulS, funct3),
        0x0c => mk(FdivS, funct3),
        0x01 => mk(FaddD, funct3),
        0x05 => mk(FsubD, funct3),
        0x09 => mk(FmulD, funct3),
        0x0d => mk(FdivD, funct3),
        0x2c if rs2 == 0 => mk(FsqrtS, funct3),
        0x2d if rs2 == 0 => mk(FsqrtD, funct3),
        0x10 if funct3 < 3 => mk(FsgnjS, funct3),
        0x11 if funct3 < 3 => mk(FsgnjD, funct3),
        0x14 if funct3 < 2 => mk(FminmaxS, funct3),
        0x15 if funct3 < 2 => mk(FminmaxD, funct3),
        0x20 if rs2 == 1 => mk(FcvtSD, funct3),
        0x21 if rs2 == 0 => mk(FcvtDS, funct3),
        // feq (funct3 2) → fpu kind 0, flt (1) → 1, fle (0) → 2.
        0x50 if funct3 < 3 => mk(FcmpS, 2 - funct3),
        0x51 if funct3 < 3 => mk(FcmpD, 2 - funct3),
        0x60 if rs2 < 4 => mk(FcvtIntS, funct3),
        0x61 if rs2 < 4 => mk(FcvtIntD, funct3),
        0x68 if rs2 < 4 => mk(FcvtSInt, funct3),
        0x69 if rs2 < 4 => mk(FcvtDInt, funct3),
        0x70 if rs2 == 0 && funct3 == 0 => mk(FmvXW, 0),
        0x70 if rs2 == 0 && funct3 == 1 => mk(FclassS, 0),
        0x71 if rs2 == 0 && funct3 == 0 => mk(FmvXD, 0),
        0x71 if rs2 == 0 && funct3 == 1 => mk(FclassD, 0),
        0x78 if rs2 == 0 && funct3 == 0 => mk(FmvWX, 0),
        0x79 if rs2 == 0 && funct3 == 0 => mk(FmvDX, 0),
        // Zfa (fmvh.x.d and fmvp.d.x exist only on RV32).
        0x78 if f.zfa && rs2 == 1 && funct3 == 0 => mk(FliS, 0),
        0x79 if f.zfa && rs2 == 1 && funct3 == 0 => mk(FliD, 0),
        0x14 if f.zfa && (funct3 == 2 || funct3 == 3) => mk(FminmaxmS, funct3 - 2),
        0x15 if f.zfa && (funct3 == 2 || funct3 == 3) => mk(FminmaxmD, funct3 - 2),
        0x20 if f.zfa && (rs2 == 4 || rs2 == 5) => mk(FroundS, funct3),
        0x21 if f.zfa && (rs2 == 4 || rs2 == 5) => mk(FroundD, funct3),
        0x61 if f.zfa && rs2 == 8 && funct3 == 1 => mk(FcvtmodWD, funct3),
        0x50 if f.zfa && (funct3 == 4 || funct3 == 5) => mk(FcmpqS, funct3 - 4),
        0x51 if f.zfa && (funct3 == 4 || funct3 == 5) => mk(FcmpqD, funct3 - 4),
        _ => ill,
    }
}

/// Decode a 16-bit compressed instruction (low two bits not `11`) into its base-ISA equivalent.
pub fn decode16(h: u16) -> Op {
    use Kind::*;
    let w = h as u32;
    let ill = Op::illegal(w, 2);
    let funct3 = w >> 13;
    let b12 = (w >> 12) & 1;
    // Full register fields (quadrants 1 and 2) and the 3-bit x8..x15 fields.
    let rd = (w >> 7) & 31;
    let rs2 = (w >> 2) & 31;
    let rdp = ((w >> 2) & 7) + 8; // rd'/rs2' at bits 4:2
    let rs1p = ((w >> 7) & 7) + 8; // rs1'/rd' at bits 9:7
                                   // CI-format 6-bit signed immediate: imm[5] = bit 12, imm[4:0] = bits 6:2.
    let imm6 = ((((w >> 2) & 31) | (b12 << 5)) as i32) << 26 >> 26;
    let shamt = (((w >> 2) & 31) | (b12 << 5)) as i32;
    // CL/CS offsets: doubleword (uimm[5:3] = 12:10, [7:6] = 6:5) and word ([5:3] = 12:10, [2] = 6, [6] = 5).
    let off_d = (((w >> 10) & 7) << 3 | ((w >> 5) & 3) << 6) as i32;
    let off_w = (((w >> 10) & 7) << 3 | ((w >> 6) & 1) << 2 | ((w >> 5) & 1) << 6) as i32;
    match (w & 3, funct3) {
        (0, 0) => {
            // C.ADDI4SPN: nzuimm[5:4|9:6|2|3] at bits 12:5; zero (incl. the all-zero parcel) is reserved.
            let imm = ((w >> 11) & 3) << 4
                | ((w >> 7) & 0xf) << 6
                | ((w >> 6) & 1) << 2
                | ((w >> 5) & 1) << 3;
            if imm == 0 {
                return ill;
            }
            op2(Addi, rdp, 2, 0, imm as i32, h)
        }
        (0, 1) => op2(Fld, rdp, rs1p, 0, off_d, h),
        (0, 2) => op2(Lw, rdp, rs1p, 0, off_w, h),
        (0, 3) => op2(Ld, rdp, rs1p, 0, off_d, h),
        (0, 5) => op2(Fsd, 0, rs1p, rdp, off_d, h),
        (0, 6) => op2(Sw, 0, rs1p, rdp, off_w, h),
        (0, 7) => op2(Sd, 0, rs1p, rdp, off_d, h),
        (0, _) => ill,
        // C.NOP / C.ADDI (rd = 0 or imm = 0 are hints, i.e. legal no-ops).
        (1, 0) => op2(Addi, rd, rd, 0, imm6, h),
        (1, 1) => {
            // C.ADDIW; rd = 0 is reserved.
            if rd == 0 {
                return ill;
            }
            op2(Addiw, rd, rd, 0, imm6, h)
        }
        (1, 2) => op2(Addi, rd, 0, 0, imm6, h), // C.LI
        (1, 3) => {
            if (w >> 2) & 31 == 0 && b12 == 0 {
                return ill; // C.ADDI16SP / C.LUI with a zero immediate
            }
            if rd == 2 {
                // C.ADDI16SP: nzimm[9] = 12, bits 6:2 = nzimm[4|6|8:7|5].
                let imm = (b12 << 9)
                    | ((w >> 6) & 1) << 4
                    | ((w >> 5) & 1) << 6
                    | ((w >> 3) & 3) << 7
                    | ((w >> 2) & 1) << 5;
                op2(Addi, 2, 2, 0, ((imm as i32) << 22) >> 22, h)
            } else {
                op2(Lui, rd, 0, 0, imm6 << 12, h)
            }
        }
        (1, 4) => match (w >> 10) & 3 {
            0 => op2(Srli, rs1p, rs1p, 0, shamt, h),
            1 => op2(Srai, rs1p, rs1p, 0, shamt, h),
            2 => op2(Andi, rs1p, rs1p, 0, imm6, h),
            _ => {
                let k = match (b12, (w >> 5) & 3) {
                    (0, 0) => Sub,
                    (0, 1) => Xor,
                    (0, 2) => Or,
                    (0, 3) => And,
                    (1, 0) => Subw,
                    (1, 1) => Addw,
                    _ => return ill,
                };
                op2(k, rs1p, rs1p, rdp, 0, h)
            }
        },
        (1, 5) => {
            // C.J: offset[11|4|9:8|10|6|7|3:1|5] at bits 12:2.
            let imm = (b12 << 11)
                | ((w >> 11) & 1) << 4
                | ((w >> 9) & 3) << 8
                | ((w >> 8) & 1) << 10
                | ((w >> 7) & 1) << 6
                | ((w >> 6) & 1) << 7
                | ((w >> 3) & 7) << 1
                | ((w >> 2) & 1) << 5;
            op2(Jal, 0, 0, 0, ((imm as i32) << 20) >> 20, h)
        }
        (1, 6) | (1, 7) => {
            // C.BEQZ / C.BNEZ: offset[8|4:3] at 12:10, [7:6|2:1|5] at 6:2.
            let imm = (b12 << 8)
                | ((w >> 10) & 3) << 3
                | ((w >> 5) & 3) << 6
                | ((w >> 3) & 3) << 1
                | ((w >> 2) & 1) << 5;
            let k = if funct3 == 6 { Beq } else { Bne };
            op2(k, 0, rs1p, 0, ((imm as i32) << 23) >> 23, h)
        }
        (2, 0) => op2(Slli, rd, rd, 0, shamt, h), // rd = 0 / shamt = 0 are hints
        (2, 1) => {
            // C.FLDSP: uimm[5] = 12, [4:3|8:6] = 6:2.
            let imm = (b12 << 5) | ((w >> 5) & 3) << 3 | ((w >> 2) & 7) << 6;
            op2(Fld, rd, 2, 0, imm as i32, h)
        }
        (2, 2) => {
            if rd == 0 {
                return ill;
            }
            // C.LWSP: uimm[5] = 12, [4:2|7:6] = 6:2.
            let imm = (b12 << 5) | ((w >> 4) & 7) << 2 | ((w >> 2) & 3) << 6;
            op2(Lw, rd, 2, 0, imm as i32, h)
        }
        (2, 3) => {
            if rd == 0 {
                return ill;
            }
            let imm = (b12 << 5) | ((w >> 5) & 3) << 3 | ((w >> 2) & 7) << 6;
            op2(Ld, rd, 2, 0, imm as i32, h)
        }
        (2, 4) => match (b12, rd, rs2) {
            (0, 0, 0) => ill,                        // C.JR x0 is reserved
            (0, _, 0) => op2(Jalr, 0, rd, 0, 0, h),  // C.JR
            (0, _, _) => op2(Add, rd, 0, rs2, 0, h), // C.MV
            (1, 0, 0) => op2(Ebreak, 0, 0, 0, 0, h), // C.EBREAK
            (1, _, 0) => op2(Jalr, 1, rd, 0, 0, h),  // C.JALR
            _ => op2(Add, rd, rd, rs2, 0, h),        // C.ADD
        },
        (2, 5) => {
            // C.FSDSP: uimm[5:3|8:6] at 12:7.
            let imm = ((w >> 10) & 7) << 3 | ((w >> 7) & 7) << 6;
            op2(Fsd, 0, 2, rs2, imm as i32, h)
        }
        (2, 6) => {
            // C.SWSP: uimm[5:2|7:6] at 12:7.
            let imm = ((w >> 9) & 0xf) << 2 | ((w >> 7) & 3) << 6;
            op2(Sw, 0, 2, rs2, imm as i32, h)
        }
        (2, 7) => {
            let imm = ((w >> 10) & 7) << 3 | ((w >> 7) & 7) << 6;
            op2(Sd, 0, 2, rs2, imm as i32, h)
        }
        _ => ill,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Kind::*;

    /// Every RV64C form, encoded by GNU as (`riscv64-unknown-elf-as -march=rv64gc`), and the
    /// base instruction it must expand to: (parcel, kind, rd, rs1, rs2, imm).
    const RVC: [(u16, Kind, u8, u8, u8, i32); 36] = [
        (0x1fe0, Addi, 8, 2, 0, 1020),  // c.addi4spn s0, sp, 1020
        (0x3fe4, Fld, 9, 15, 0, 248),   // c.fld fs1, 248(a5)
        (0x5de8, Lw, 10, 11, 0, 124),   // c.lw a0, 124(a1)
        (0x7ef0, Ld, 12, 13, 0, 248),   // c.ld a2, 248(a3)
        (0xa488, Fsd, 0, 9, 10, 8),     // c.fsd fa0, 8(s1)
        (0xc3b8, Sw, 0, 15, 14, 64),    // c.sw a4, 64(a5)
        (0xf044, Sd, 0, 8, 9, 160),     // c.sd s1, 160(s0)
        (0x1281, Addi, 5, 5, 0, -32),   // c.addi t0, -32
        (0x257d, Addiw, 10, 10, 0, 31), // c.addiw a0, 31
        (0x50fd, Addi, 1, 0, 0, -1),    // c.li ra, -1
        (0x7101, Addi, 2, 2, 0, -512),  // c.addi16sp sp, -512
        (0x7305, Lui, 6, 0, 0, 0xfffe_1000u32 as i32), // c.lui t1, 0xfffe1
        (0x917d, Srli, 10, 10, 0, 63),  // c.srli a0, 63
        (0x8485, Srai, 9, 9, 0, 1),     // c.srai s1, 1
        (0x9be5, Andi, 15, 15, 0, -7),  // c.andi a5, -7
        (0x8c1d, Sub, 8, 8, 15, 0),     // c.sub s0, a5
        (0x8d2d, Xor, 10, 10, 11, 0),   // c.xor a0, a1
        (0x8cd1, Or, 9, 9, 12, 0),      // c.or s1, a2
        (0x8ef9, And, 13, 13, 14, 0),   // c.and a3, a4
        (0x9f81, Subw, 15, 15, 8, 0),   // c.subw a5, s0
        (0x9d29, Addw, 10, 10, 10, 0),  // c.addw a0, a0
        (0xb001, Jal, 0, 0, 0, -2048),  // c.j .-2048
        (0xcd7d, Beq, 0, 10, 0, 254),   // c.beqz a0, .+254
        (0xf081, Bne, 0, 9, 0, -256),   // c.bnez s1, .-256
        (0x1fa2, Slli, 31, 31, 0, 40),  // c.slli t6, 40
        (0x31fe, Fld, 3, 2, 0, 504),    // c.fldsp ft3, 504(sp)
        (0x52fe, Lw, 5, 2, 0, 252),     // c.lwsp t0, 252(sp)
        (0x7dfe, Ld, 27, 2, 0, 504),    // c.ldsp s11, 504(sp)
        (0x8082, Jalr, 0, 1, 0, 0),     // c.jr ra
        (0x851e, Add, 10, 0, 7, 0),     // c.mv a0, t2
        (0x9002, Ebreak, 0, 0, 0, 0),   // c.ebreak
        (0x9282, Jalr, 1, 5, 0, 0),     // c.jalr t0
        (0x9146, Add, 2, 2, 17, 0),     // c.add sp, a7
        (0xbfee, Fsd, 0, 2, 27, 504),   // c.fsdsp fs11, 504(sp)
        (0xdf86, Sw, 0, 2, 1, 252),     // c.swsp ra, 252(sp)
        (0xffa2, Sd, 0, 2, 8, 504),     // c.sdsp s0, 504(sp)
    ];

    #[test]
    fn rvc_expands_like_gnu_as_encodes() {
        for (h, kind, rd, rs1, rs2, imm) in RVC {
            let op = decode(h as u32 | 0xdead_0000); // upper half must be ignored
            assert_eq!(
                (op.kind, op.rd, op.rs1, op.rs2, op.imm, op.len, op.raw),
                (kind, rd, rs1, rs2, imm, 2, h as u32),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn base_known_answers() {
        // From GNU as: lui a0, 0x80000 / jal ra, -4 / sraiw a1, a2, 31 / csrrsi a0, mstatus, 8 /
        // fmadd.d fa0, fa1, fa2, fa3, rtz / amomaxu.d.aqrl t0, t1, (a0) / fence.tso
        let op = decode(0x8000_0537);
        assert_eq!((op.kind, op.rd, op.imm), (Lui, 10, 0x8000_0000u32 as i32));
        let op = decode(0xffdf_f0ef);
        assert_eq!((op.kind, op.rd, op.imm), (Jal, 1, -4));
        let op = decode(0x41f6_559b);
        assert_eq!((op.kind, op.rd, op.rs1, op.imm), (Sraiw, 11, 12, 31));
        let op = decode(0x3004_6573);
        assert_eq!((op.kind, op.rd, op.rs1, op.imm), (Csrrsi, 10, 8, 0x300));
        let op = decode(0x6ac5_9543);
        assert_eq!(
            (op.kind, op.rd, op.rs1, op.rs2, op.rs3, op.rm),
            (FmaddD, 10, 11, 12, 13, 1)
        );
        let op = decode(0xe665_32af);
        assert_eq!((op.kind, op.rd, op.rs1, op.rs2), (AmoMaxuD, 5, 10, 6));
        assert_eq!(decode(0x8330_000f).kind, Fence);
    }

    /// An R-type word.
    const fn rw(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, opc: u32) -> u32 {
        f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
    }

    /// Which feature flag an extension's instruction needs.
    type Flag = fn(&mut CpuFeatures) -> &mut bool;

    /// One instruction of each gated group (GNU as encodings where binutils 2.40 has them,
    /// else built from the spec's fields): (word, kind, rd, rs1, rs2, imm, extension).
    #[allow(clippy::type_complexity)]
    fn gated() -> Vec<(u32, Kind, u8, u8, u8, i32, Flag)> {
        vec![
            (0x40c5_f533, Andn, 10, 11, 12, 0, |f| &mut f.zbb), // andn a0,a1,a2
            (0x6b85_d513, Rev8, 10, 11, 0, 0, |f| &mut f.zbb),  // rev8 a0,a1
            (0x2875_d513, OrcB, 10, 11, 0, 0, |f| &mut f.zbb),  // orc.b a0,a1
            (0x0805_c53b, ZextH, 10, 11, 0, 0, |f| &mut f.zbb), // zext.h a0,a1
            (0x63f5_d513, Rori, 10, 11, 0, 63, |f| &mut f.zbb), // rori a0,a1,63
            (0x61f5_d51b, Roriw, 10, 11, 0, 31, |f| &mut f.zbb), // roriw a0,a1,31
            (0x6005_951b, Clzw, 10, 11, 0, 0, |f| &mut f.zbb),  // clzw a0,a1
            (0x0a85_951b, SlliUw, 10, 11, 0, 40, |f| &mut f.zba), // slli.uw a0,a1,40
            (0x20c5_e53b, Sh3addUw, 10, 11, 12, 0, |f| &mut f.zba), // sh3add.uw a0,a1,a2
            (0x08c5_853b, AddUw, 10, 11, 12, 0, |f| &mut f.zba), // add.uw a0,a1,a2
            (0x0ac5_a533, Clmulr, 10, 11, 12, 0, |f| &mut f.zbc), // clmulr a0,a1,a2
            (0x4bf5_d513, Bexti, 10, 11, 0, 63, |f| &mut f.zbs), // bexti a0,a1,63
            (rw(7, 12, 11, 5, 10, 0x33), CzeroEqz, 10, 11, 12, 0, |f| {
                &mut f.zicond
            }),
            (rw(7, 12, 11, 7, 10, 0x33), CzeroNez, 10, 11, 12, 0, |f| {
                &mut f.zicond
            }),
            (0x0015_200f, CboClean, 0, 10, 0, 0, |f| &mut f.zicbom), // cbo.clean (a0)
            (0x0025_a00f, CboFlush, 0, 11, 0, 0, |f| &mut f.zicbom), // cbo.flush (a1)
            (0x0002_a00f, CboInval, 0, 5, 0, 0, |f| &mut f.zicbom),  // cbo.inval (t0)
            (0x0044_a00f, CboZero, 0, 9, 0, 0, |f| &mut f.zicboz),   // cbo.zero (s1)
            (0x00d0_0073, WrsNto, 0, 0, 0, 0, |f| &mut f.zawrs),     // wrs.nto
            (0x01d0_0073, WrsSto, 0, 0, 0, 0, |f| &mut f.zawrs),     // wrs.sto
            (rw(0x78, 1, 12, 0, 10, 0x53), FliS, 10, 12, 1, 0, |f| {
                &mut f.zfa
            }),
            (rw(0x79, 1, 31, 0, 10, 0x53), FliD, 10, 31, 1, 0, |f| {
                &mut f.zfa
            }),
            (
                rw(0x14, 12, 11, 3, 10, 0x53),
                FminmaxmS,
                10,
                11,
                12,
                0,
                |f| &mut f.zfa,
            ),
            (
                rw(0x15, 12, 11, 2, 10, 0x53),
                FminmaxmD,
                10,
                11,
                12,
                0,
                |f| &mut f.zfa,
            ),
            (rw(0x20, 5, 11, 7, 10, 0x53), FroundS, 10, 11, 5, 0, |f| {
                &mut f.zfa
            }),
            (rw(0x21, 4, 11, 1, 10, 0x53), FroundD, 10, 11, 4, 0, |f| {
                &mut f.zfa
            }),
            (rw(0x61, 8, 11, 1, 10, 0x53), FcvtmodWD, 10, 11, 8, 0, |f| {
                &mut f.zfa
            }),
            (rw(0x50, 12, 11, 4, 10, 0x53), FcmpqS, 10, 11, 12, 0, |f| {
                &mut f.zfa
            }),
            (rw(0x51, 12, 11, 5, 10, 0x53), FcmpqD, 10, 11, 12, 0, |f| {
                &mut f.zfa
            }),
        ]
    }

    #[test]
    fn extensions_decode_only_when_enabled() {
        let mut all = CpuFeatures::qemu10_rv64();
        all.zicond = true;
        for (w, kind, rd, rs1, rs2, imm, flag) in gated() {
            let op = decode32_with(w, &all);
            assert_eq!(
                (op.kind, op.rd, op.rs1, op.rs2, op.imm, op.raw, op.len),
                (kind, rd, rs1, rs2, imm, w, 4),
                "{w:#010x}"
            );
            let mut off = all;
            *flag(&mut off) = false;
            let op = decode32_with(w, &off);
            assert!(op.is_illegal(), "{w:#010x} with its extension off: {op:?}");
            assert_eq!((op.raw, op.len), (w, 4));
            // Every extension but this one off changes nothing.
            let mut only = CpuFeatures::baseline();
            *flag(&mut only) = true;
            assert_eq!(decode32_with(w, &only).kind, kind, "{w:#010x}");
        }
        // Zicond is off in QEMU 10's default rv64.
        assert!(decode32(rw(7, 12, 11, 5, 10, 0x33)).is_illegal());
    }

    #[test]
    fn hints_stay_legal_with_their_extensions_off() {
        let none = CpuFeatures::baseline();
        // prefetch.r 64(a0) (ori x0), ntl.all (add x0, x0, x5), pause (fence), c.ntl.all.
        for (w, kind) in [
            (0x0415_6013u32, Ori),
            (rw(0, 5, 0, 0, 0, 0x33), Add),
            (0x0100_000f, Fence),
        ] {
            assert_eq!(decode32_with(w, &none).kind, kind, "{w:#010x}");
            assert_eq!(decode32(w).kind, kind, "{w:#010x}");
        }
        let c = decode16(0x9016); // c.add x0, x5 = c.ntl.all
        assert_eq!((c.kind, c.rd, c.rs2), (Add, 0, 5));
    }

    #[test]
    fn rv32_only_and_other_reserved_extension_forms_are_illegal() {
        for w in [
            rw(0x71, 1, 11, 0, 10, 0x53),  // fmvh.x.d (RV32 only)
            rw(0x59, 12, 11, 0, 10, 0x53), // fmvp.d.x (RV32 only)
            rw(0x61, 8, 11, 0, 10, 0x53),  // fcvtmod.w.d with rm != rtz
            rw(0x7a, 1, 11, 0, 10, 0x53),  // fli.h (no Zfh)
            0x6985_d513,                   // rev8 of RV32
            rw(4, 0, 11, 4, 10, 0x33),     // zext.h of RV32 (pack, Zbkb)
            rw(4, 12, 11, 4, 10, 0x3b),    // packw (Zbkb)
            rw(0x30, 3, 11, 1, 10, 0x13),  // clz-group rs2 = 3
            0x0015_228f,                   // cbo.clean with rd != 0
            0x0035_200f,                   // CBO imm 3
            0x0600_101b,                   // OP-IMM-32 funct3 1, funct7 3
            0x02d0_0073,                   // wrs with an unknown imm
        ] {
            let op = decode32(w);
            assert!(op.is_illegal(), "{w:#010x} decoded as {op:?}");
            assert_eq!(op.raw, w);
        }
    }

    #[test]
    fn reserved_encodings_are_illegal_with_their_bits() {
        // slli x0, x0, 32 is valid in RV64 (6-bit shamt).
        assert_eq!(decode(0x0200_1013).kind, Slli);
        for w in [
            0x0400_1013u32,        // slli with funct6 = 1 (reserved)
            0x0200_101b,           // slliw with shamt[5] = 1
            0x4000_101b,           // slliw with funct7 = 0x20
            0x0000_7003,           // load funct3 7
            0x0000_4023,           // store funct3 4
            0x0000_2063,           // branch funct3 2
            0x0000_1067,           // jalr funct3 1
            0x0020_0073,           // uret (not in RV64GC)
            0x7b20_0073,           // dret
            0x0000_4073,           // SYSTEM funct3 4
            0x1200_00f3,           // sfence.vma with rd != 0
            0x1000_502f,           // AMO funct3 5
            0x1010_202f,           // lr.w with rs2 != 0
            0x0400_0053,           // OP-FP fmt H (fadd.h)
            0x5800_1053 | 1 << 20, // fsqrt.s with rs2 != 0
            0xe000_2053,           // fmv.x.w with funct3 2
            0x0000_0043 | 2 << 25, // fmadd with fmt H
            0xffff_ffff,           // >= 48-bit prefix
        ] {
            let op = decode(w);
            assert!(op.is_illegal(), "{w:#010x} decoded as {op:?}");
            assert_eq!((op.raw, op.len), (w, 4));
        }
    }
}
