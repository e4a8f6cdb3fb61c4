//! IEEE 754 arithmetic with RISC-V semantics: five rounding modes, accrued exception flags,
//! canonical NaNs, NaN-boxing, fused multiply-add with a single rounding, and the `fcvt`
//! saturation rules. Pure functions over raw bits so the interpreter and tests share them.
//!
//! Rounding mode `rm` is the resolved mode (0 RNE, 1 RTZ, 2 RDN, 3 RUP, 4 RMM); the caller
//! resolves `dyn` (7) from `frm` and rejects reserved values. Flags are ORed into `*fl`.
//!
//! CONTRACT (owned by the FPU work; signatures are fixed, bodies to be written):

/// Inexact.
pub const NX: u8 = 1;
/// Underflow.
pub const UF: u8 = 2;
/// Overflow.
pub const OF: u8 = 4;
/// Divide by zero.
pub const DZ: u8 = 8;
/// Invalid operation.
pub const NV: u8 = 16;

/// The canonical quiet NaN of single precision.
pub const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The canonical quiet NaN of double precision.
pub const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Read a single-precision value from a 64-bit FP register: not properly NaN-boxed → canonical NaN.
#[inline(always)]
pub fn unbox_f32(reg: u64) -> u32 {
    if reg >> 32 == 0xffff_ffff {
        reg as u32
    } else {
        F32_CANONICAL_NAN
    }
}

/// NaN-box a single-precision value for a 64-bit FP register.
#[inline(always)]
pub fn box_f32(v: u32) -> u64 {
    0xffff_ffff_0000_0000 | v as u64
}

/// Arithmetic operation selector for the two-operand functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
}

/// Fused multiply-add variant: FMADD = a*b+c, FMSUB = a*b-c, FNMSUB = -(a*b)+c, FNMADD = -(a*b)-c.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FmaOp {
    /// a*b + c
    Madd,
    /// a*b - c
    Msub,
    /// -(a*b) + c
    Nmsub,
    /// -(a*b) - c
    Nmadd,
}

/// Integer side of an `fcvt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntKind {
    /// signed 32-bit (result sign-extended to 64 bits when written to an x register)
    W,
    /// unsigned 32-bit (result sign-extended to 64 bits, as the spec says)
    Wu,
    /// signed 64-bit
    L,
    /// unsigned 64-bit
    Lu,
}

macro_rules! fpu_todo {
    () => {
        unimplemented!("fpu")
    };
}

/// f32 add/sub/mul/div.
pub fn f32_binop(op: BinOp, a: u32, b: u32, rm: u8, fl: &mut u8) -> u32 { let _ = (op, a, b, rm, fl); fpu_todo!() }
/// f64 add/sub/mul/div.
pub fn f64_binop(op: BinOp, a: u64, b: u64, rm: u8, fl: &mut u8) -> u64 { let _ = (op, a, b, rm, fl); fpu_todo!() }
/// f32 square root.
pub fn f32_sqrt(a: u32, rm: u8, fl: &mut u8) -> u32 { let _ = (a, rm, fl); fpu_todo!() }
/// f64 square root.
pub fn f64_sqrt(a: u64, rm: u8, fl: &mut u8) -> u64 { let _ = (a, rm, fl); fpu_todo!() }
/// f32 fused multiply-add family, single rounding.
pub fn f32_fma(op: FmaOp, a: u32, b: u32, c: u32, rm: u8, fl: &mut u8) -> u32 { let _ = (op, a, b, c, rm, fl); fpu_todo!() }
/// f64 fused multiply-add family, single rounding.
pub fn f64_fma(op: FmaOp, a: u64, b: u64, c: u64, rm: u8, fl: &mut u8) -> u64 { let _ = (op, a, b, c, rm, fl); fpu_todo!() }
/// f32 fmin (`max` false) / fmax (`max` true) with RISC-V NaN and signed-zero rules.
pub fn f32_minmax(max: bool, a: u32, b: u32, fl: &mut u8) -> u32 { let _ = (max, a, b, fl); fpu_todo!() }
/// f64 fmin/fmax.
pub fn f64_minmax(max: bool, a: u64, b: u64, fl: &mut u8) -> u64 { let _ = (max, a, b, fl); fpu_todo!() }
/// f32 compare: 0 = feq (quiet), 1 = flt, 2 = fle (signaling). Returns 0 or 1.
pub fn f32_cmp(kind: u8, a: u32, b: u32, fl: &mut u8) -> u64 { let _ = (kind, a, b, fl); fpu_todo!() }
/// f64 compare: 0 = feq, 1 = flt, 2 = fle.
pub fn f64_cmp(kind: u8, a: u64, b: u64, fl: &mut u8) -> u64 { let _ = (kind, a, b, fl); fpu_todo!() }
/// f32 fclass: the 10-bit class mask.
pub fn f32_class(a: u32) -> u64 { let _ = a; fpu_todo!() }
/// f64 fclass.
pub fn f64_class(a: u64) -> u64 { let _ = a; fpu_todo!() }
/// fcvt.{w,wu,l,lu}.s: value for the x register (32-bit results sign-extended), saturating.
pub fn f32_to_int(kind: IntKind, a: u32, rm: u8, fl: &mut u8) -> u64 { let _ = (kind, a, rm, fl); fpu_todo!() }
/// fcvt.{w,wu,l,lu}.d.
pub fn f64_to_int(kind: IntKind, a: u64, rm: u8, fl: &mut u8) -> u64 { let _ = (kind, a, rm, fl); fpu_todo!() }
/// fcvt.s.{w,wu,l,lu}: `x` is the raw x-register value (low 32 bits used for W/Wu).
pub fn int_to_f32(kind: IntKind, x: u64, rm: u8, fl: &mut u8) -> u32 { let _ = (kind, x, rm, fl); fpu_todo!() }
/// fcvt.d.{w,wu,l,lu}.
pub fn int_to_f64(kind: IntKind, x: u64, rm: u8, fl: &mut u8) -> u64 { let _ = (kind, x, rm, fl); fpu_todo!() }
/// fcvt.s.d.
pub fn f64_to_f32(a: u64, rm: u8, fl: &mut u8) -> u32 { let _ = (a, rm, fl); fpu_todo!() }
/// fcvt.d.s (exact; NaN inputs give the canonical NaN, signaling NaN raises NV).
pub fn f32_to_f64(a: u32, fl: &mut u8) -> u64 { let _ = (a, fl); fpu_todo!() }
