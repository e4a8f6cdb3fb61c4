//! IEEE 754 arithmetic with RISC-V semantics: five rounding modes, accrued exception flags,
//! canonical NaNs, NaN-boxing, fused multiply-add with a single rounding, and the `fcvt`
//! saturation rules. Pure functions over raw bits so the interpreter and tests share them.
//!
//! Rounding mode `rm` is the resolved mode (0 RNE, 1 RTZ, 2 RDN, 3 RUP, 4 RMM); the caller
//! resolves `dyn` (7) from `frm` and rejects reserved values. Flags are ORed into `*fl`.
//!
//! Reserved modes (5, 6) behave as RNE rather than panicking.
//!
//! The work is done by a software core (`soft`) generic over both formats: operands are
//! unpacked, combined exactly (or with a sticky bit far below the rounding point) in `u128`,
//! and rounded once by a shared routine, matching QEMU's softfloat bit for bit. In RNE, the
//! common cases of add/sub/mul/div/sqrt (and f32 fma) take host-float fast paths (`fast`)
//! whose flags come from exact checks; they are tested to agree with the software core.

mod fast;
mod soft;
#[cfg(test)]
mod tests;

use soft::{D, S};

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

/// f32 add/sub/mul/div.
pub fn f32_binop(op: BinOp, a: u32, b: u32, rm: u8, fl: &mut u8) -> u32 {
    if rm == soft::RNE {
        let r = match op {
            BinOp::Add => fast::add_f32(a, b, fl),
            BinOp::Sub => fast::add_f32(a, b ^ (1 << 31), fl),
            BinOp::Mul => fast::mul_f32(a, b, fl),
            BinOp::Div => fast::div_f32(a, b, fl),
        };
        if let Some(r) = r {
            return r;
        }
    }
    let (a, b) = (a as u64, b as u64);
    (match op {
        BinOp::Add => soft::add::<S>(a, b, false, rm, fl),
        BinOp::Sub => soft::add::<S>(a, b, true, rm, fl),
        BinOp::Mul => soft::mul::<S>(a, b, rm, fl),
        BinOp::Div => soft::div::<S>(a, b, rm, fl),
    }) as u32
}

/// f64 add/sub/mul/div.
pub fn f64_binop(op: BinOp, a: u64, b: u64, rm: u8, fl: &mut u8) -> u64 {
    if rm == soft::RNE {
        let r = match op {
            BinOp::Add => fast::add_f64(a, b, fl),
            BinOp::Sub => fast::add_f64(a, b ^ (1 << 63), fl),
            BinOp::Mul => fast::mul_f64(a, b, fl),
            BinOp::Div => fast::div_f64(a, b, fl),
        };
        if let Some(r) = r {
            return r;
        }
    }
    match op {
        BinOp::Add => soft::add::<D>(a, b, false, rm, fl),
        BinOp::Sub => soft::add::<D>(a, b, true, rm, fl),
        BinOp::Mul => soft::mul::<D>(a, b, rm, fl),
        BinOp::Div => soft::div::<D>(a, b, rm, fl),
    }
}

/// f32 square root.
pub fn f32_sqrt(a: u32, rm: u8, fl: &mut u8) -> u32 {
    if rm == soft::RNE {
        if let Some(r) = fast::sqrt_f32(a, fl) {
            return r;
        }
    }
    soft::sqrt::<S>(a as u64, rm, fl) as u32
}

/// f64 square root.
pub fn f64_sqrt(a: u64, rm: u8, fl: &mut u8) -> u64 {
    if rm == soft::RNE {
        if let Some(r) = fast::sqrt_f64(a, fl) {
            return r;
        }
    }
    soft::sqrt::<D>(a, rm, fl)
}

/// Which of product and addend an [`FmaOp`] negates.
#[inline]
fn fma_negations(op: FmaOp) -> (bool, bool) {
    match op {
        FmaOp::Madd => (false, false),
        FmaOp::Msub => (false, true),
        FmaOp::Nmsub => (true, false),
        FmaOp::Nmadd => (true, true),
    }
}

/// f32 fused multiply-add family, single rounding.
pub fn f32_fma(op: FmaOp, a: u32, b: u32, c: u32, rm: u8, fl: &mut u8) -> u32 {
    let (np, nc) = fma_negations(op);
    if rm == soft::RNE {
        if let Some(r) = fast::fma_f32(a, b, c, np, nc, fl) {
            return r;
        }
    }
    soft::fma::<S>(a as u64, b as u64, c as u64, np, nc, rm, fl) as u32
}

/// f64 fused multiply-add family, single rounding.
pub fn f64_fma(op: FmaOp, a: u64, b: u64, c: u64, rm: u8, fl: &mut u8) -> u64 {
    let (np, nc) = fma_negations(op);
    soft::fma::<D>(a, b, c, np, nc, rm, fl)
}

/// f32 fmin (`max` false) / fmax (`max` true) with RISC-V NaN and signed-zero rules.
pub fn f32_minmax(max: bool, a: u32, b: u32, fl: &mut u8) -> u32 {
    soft::minmax::<S>(max, a as u64, b as u64, fl) as u32
}

/// f64 fmin/fmax.
pub fn f64_minmax(max: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    soft::minmax::<D>(max, a, b, fl)
}

/// f32 compare: 0 = feq (quiet), 1 = flt, 2 = fle (signaling). Returns 0 or 1.
pub fn f32_cmp(kind: u8, a: u32, b: u32, fl: &mut u8) -> u64 {
    soft::cmp::<S>(kind, a as u64, b as u64, fl)
}

/// f64 compare: 0 = feq, 1 = flt, 2 = fle.
pub fn f64_cmp(kind: u8, a: u64, b: u64, fl: &mut u8) -> u64 {
    soft::cmp::<D>(kind, a, b, fl)
}

/// f32 fclass: the 10-bit class mask.
pub fn f32_class(a: u32) -> u64 {
    soft::class::<S>(a as u64)
}

/// f64 fclass.
pub fn f64_class(a: u64) -> u64 {
    soft::class::<D>(a)
}

/// Integer range of an [`IntKind`].
#[inline]
fn int_range(kind: IntKind) -> (i128, i128) {
    match kind {
        IntKind::W => (i32::MIN as i128, i32::MAX as i128),
        IntKind::Wu => (0, u32::MAX as i128),
        IntKind::L => (i64::MIN as i128, i64::MAX as i128),
        IntKind::Lu => (0, u64::MAX as i128),
    }
}

/// The x-register value of an in-range integer result: 32-bit kinds are sign-extended.
#[inline]
fn int_to_xreg(kind: IntKind, v: i128) -> u64 {
    match kind {
        IntKind::W | IntKind::Wu => v as u32 as i32 as i64 as u64,
        IntKind::L | IntKind::Lu => v as u64,
    }
}

/// fcvt.{w,wu,l,lu}.s: value for the x register (32-bit results sign-extended), saturating.
pub fn f32_to_int(kind: IntKind, a: u32, rm: u8, fl: &mut u8) -> u64 {
    let (min, max) = int_range(kind);
    int_to_xreg(kind, soft::to_int::<S>(a as u64, min, max, rm, fl))
}

/// fcvt.{w,wu,l,lu}.d.
pub fn f64_to_int(kind: IntKind, a: u64, rm: u8, fl: &mut u8) -> u64 {
    let (min, max) = int_range(kind);
    int_to_xreg(kind, soft::to_int::<D>(a, min, max, rm, fl))
}

/// Sign and magnitude of the integer operand of fcvt.{s,d}.{w,wu,l,lu}.
#[inline]
fn int_operand(kind: IntKind, x: u64) -> (bool, u64) {
    match kind {
        IntKind::W => {
            let v = x as u32 as i32;
            (v < 0, v.unsigned_abs() as u64)
        }
        IntKind::Wu => (false, x as u32 as u64),
        IntKind::L => {
            let v = x as i64;
            (v < 0, v.unsigned_abs())
        }
        IntKind::Lu => (false, x),
    }
}

/// fcvt.s.{w,wu,l,lu}: `x` is the raw x-register value (low 32 bits used for W/Wu).
pub fn int_to_f32(kind: IntKind, x: u64, rm: u8, fl: &mut u8) -> u32 {
    let (sign, mag) = int_operand(kind, x);
    soft::from_int::<S>(sign, mag, rm, fl) as u32
}

/// fcvt.d.{w,wu,l,lu}.
pub fn int_to_f64(kind: IntKind, x: u64, rm: u8, fl: &mut u8) -> u64 {
    let (sign, mag) = int_operand(kind, x);
    soft::from_int::<D>(sign, mag, rm, fl)
}

/// fcvt.s.d.
pub fn f64_to_f32(a: u64, rm: u8, fl: &mut u8) -> u32 {
    soft::convert::<D, S>(a, rm, fl) as u32
}

/// fcvt.d.s (exact; NaN inputs give the canonical NaN, signaling NaN raises NV).
pub fn f32_to_f64(a: u32, fl: &mut u8) -> u64 {
    // Widening is exact, so the rounding mode is irrelevant.
    soft::convert::<S, D>(a as u64, soft::RNE, fl)
}

/// The values of the Zfa `fli` table (index 1, the smallest normal, and 31, the canonical
/// NaN, are format-specific and handled by the callers).
const FLI: [f64; 32] = [
    -1.0,
    0.0,
    1.0 / 65536.0,
    1.0 / 32768.0,
    1.0 / 256.0,
    1.0 / 128.0,
    0.0625,
    0.125,
    0.25,
    0.3125,
    0.375,
    0.4375,
    0.5,
    0.625,
    0.75,
    0.875,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    4.0,
    8.0,
    16.0,
    128.0,
    256.0,
    32768.0,
    65536.0,
    f64::INFINITY,
    0.0,
];

/// Zfa fli.s: the constant with table index `idx` (0..=31).
pub fn fli_f32(idx: u8) -> u32 {
    match idx & 31 {
        1 => f32::MIN_POSITIVE.to_bits(),
        31 => F32_CANONICAL_NAN,
        i => (FLI[i as usize] as f32).to_bits(),
    }
}

/// Zfa fli.d.
pub fn fli_f64(idx: u8) -> u64 {
    match idx & 31 {
        1 => f64::MIN_POSITIVE.to_bits(),
        31 => F64_CANONICAL_NAN,
        i => FLI[i as usize].to_bits(),
    }
}

/// Zfa fminm (`max` false) / fmaxm for f32.
pub fn f32_minmax_m(max: bool, a: u32, b: u32, fl: &mut u8) -> u32 {
    soft::minmax_m::<S>(max, a as u64, b as u64, fl) as u32
}

/// Zfa fminm / fmaxm for f64.
pub fn f64_minmax_m(max: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    soft::minmax_m::<D>(max, a, b, fl)
}

/// Zfa fltq (`lt`) / fleq for f32: 0 or 1.
pub fn f32_cmp_quiet(lt: bool, a: u32, b: u32, fl: &mut u8) -> u64 {
    soft::cmp_quiet::<S>(lt, a as u64, b as u64, fl)
}

/// Zfa fltq / fleq for f64.
pub fn f64_cmp_quiet(lt: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    soft::cmp_quiet::<D>(lt, a, b, fl)
}

/// Zfa fround (`nx` false) / froundnx (`nx` true) for f32.
pub fn f32_round_int(a: u32, rm: u8, nx: bool, fl: &mut u8) -> u32 {
    soft::round_int::<S>(a as u64, rm, nx, fl) as u32
}

/// Zfa fround / froundnx for f64.
pub fn f64_round_int(a: u64, rm: u8, nx: bool, fl: &mut u8) -> u64 {
    soft::round_int::<D>(a, rm, nx, fl)
}

/// Zfa fcvtmod.w.d: the x-register value.
pub fn f64_to_i32_modulo(a: u64, fl: &mut u8) -> u64 {
    soft::to_i32_modulo(a, fl)
}
