//! Software IEEE 754 core shared by both formats: unpacking, exact intermediates in `u128`,
//! and one rounding/packing routine with RISC-V conventions (tininess after rounding,
//! default NaN, underflow only when inexact).

use super::{DZ, NV, NX, OF, UF};

/// Rounding modes as encoded in `frm`/`rm`.
pub(crate) const RNE: u8 = 0;
pub(crate) const RTZ: u8 = 1;
pub(crate) const RDN: u8 = 2;
pub(crate) const RUP: u8 = 3;
pub(crate) const RMM: u8 = 4;

/// A binary interchange format; both live in `u64` bit patterns here.
pub(crate) trait Format {
    /// Exponent field width.
    const EXP: u32;
    /// Fraction field width (without the hidden bit).
    const FRAC: u32;
    /// The canonical (default) NaN.
    const CANON: u64;
    /// Exponent bias.
    const BIAS: i32 = (1 << (Self::EXP - 1)) - 1;
    /// All-ones exponent field (inf/NaN).
    const EMAX_FIELD: u64 = (1 << Self::EXP) - 1;
    /// Fraction mask.
    const FRAC_MASK: u64 = (1 << Self::FRAC) - 1;
    /// Sign bit position.
    const SIGN_SHIFT: u32 = Self::EXP + Self::FRAC;
}

/// Single precision.
pub(crate) struct S;
/// Double precision.
pub(crate) struct D;

impl Format for S {
    const EXP: u32 = 8;
    const FRAC: u32 = 23;
    const CANON: u64 = 0x7fc0_0000;
}

impl Format for D {
    const EXP: u32 = 11;
    const FRAC: u32 = 52;
    const CANON: u64 = 0x7ff8_0000_0000_0000;
}

/// Operand class after unpacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Zero,
    Finite,
    Inf,
    QNaN,
    SNaN,
}

/// An unpacked operand: for `Finite`, value = (-1)^sign * m * 2^e with `m != 0`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unp {
    pub sign: bool,
    pub cls: Class,
    pub m: u64,
    pub e: i32,
}

impl Unp {
    #[inline]
    pub fn is_nan(&self) -> bool {
        matches!(self.cls, Class::QNaN | Class::SNaN)
    }
}

#[inline]
pub(crate) fn unpack<F: Format>(bits: u64) -> Unp {
    let sign = (bits >> F::SIGN_SHIFT) & 1 != 0;
    let ef = (bits >> F::FRAC) & F::EMAX_FIELD;
    let frac = bits & F::FRAC_MASK;
    let (cls, m, e) = if ef == F::EMAX_FIELD {
        if frac == 0 {
            (Class::Inf, 0, 0)
        } else if frac >> (F::FRAC - 1) != 0 {
            (Class::QNaN, 0, 0)
        } else {
            (Class::SNaN, 0, 0)
        }
    } else if ef == 0 {
        if frac == 0 {
            (Class::Zero, 0, 0)
        } else {
            (Class::Finite, frac, 1 - F::BIAS - F::FRAC as i32)
        }
    } else {
        (
            Class::Finite,
            frac | (1 << F::FRAC),
            ef as i32 - F::BIAS - F::FRAC as i32,
        )
    };
    Unp { sign, cls, m, e }
}

#[inline]
pub(crate) fn sign_bit<F: Format>(sign: bool) -> u64 {
    (sign as u64) << F::SIGN_SHIFT
}

#[inline]
pub(crate) fn zero<F: Format>(sign: bool) -> u64 {
    sign_bit::<F>(sign)
}

#[inline]
pub(crate) fn inf<F: Format>(sign: bool) -> u64 {
    sign_bit::<F>(sign) | (F::EMAX_FIELD << F::FRAC)
}

/// Sign of an exact zero sum of operands with opposite signs (IEEE 754 §6.3).
#[inline]
pub(crate) fn exact_zero_sign(rm: u8) -> bool {
    rm == RDN
}

/// Rounds `sig >> shift` (1 <= shift <= 63) to an integer per `rm`; returns it and inexactness.
#[inline]
pub(crate) fn round_shift(sig: u64, shift: u32, sign: bool, rm: u8) -> (u64, bool) {
    let q = sig >> shift;
    let rem = sig & ((1u64 << shift) - 1);
    let half = 1u64 << (shift - 1);
    let inc = match rm {
        RTZ => false,
        RDN => rem != 0 && sign,
        RUP => rem != 0 && !sign,
        RMM => rem >= half,
        // RNE; reserved modes never reach here (the caller rejects them), treat them as RNE.
        _ => rem > half || (rem == half && q & 1 != 0),
    };
    (q + inc as u64, rem != 0)
}

/// Result of overflow per rounding mode: infinity or the largest finite value.
#[inline]
fn overflow<F: Format>(sign: bool, rm: u8) -> u64 {
    let to_inf = match rm {
        RTZ => false,
        RDN => sign,
        RUP => !sign,
        _ => true,
    };
    if to_inf {
        inf::<F>(sign)
    } else {
        sign_bit::<F>(sign) | (((F::EMAX_FIELD - 1) << F::FRAC) | F::FRAC_MASK)
    }
}

/// Rounds and packs (-1)^sign * sig/2^62 * 2^exp, where `sig` has bit 62 set and bit 0 is
/// sticky (ORed with every discarded lower bit).
#[inline]
pub(crate) fn round_pack_norm<F: Format>(
    sign: bool,
    exp: i32,
    sig: u64,
    rm: u8,
    fl: &mut u8,
) -> u64 {
    debug_assert!(sig >> 62 == 1);
    let base = 62 - F::FRAC;
    let be = exp + F::BIAS;
    if be >= 1 {
        let (mut q, inexact) = round_shift(sig, base, sign, rm);
        let mut be = be as u64;
        if q >> (F::FRAC + 1) != 0 {
            q >>= 1;
            be += 1;
        }
        if be >= F::EMAX_FIELD {
            *fl |= OF | NX;
            return overflow::<F>(sign, rm);
        }
        if inexact {
            *fl |= NX;
        }
        sign_bit::<F>(sign) | (((be - 1) << F::FRAC) + q)
    } else {
        // Tininess after rounding: tiny unless rounding to full precision with an unbounded
        // exponent would reach the smallest normal.
        let tiny = be < 0 || {
            let (q, _) = round_shift(sig, base, sign, rm);
            q >> (F::FRAC + 1) == 0
        };
        let shift = base as i64 + (1 - be as i64);
        let (sig, shift) = if shift > 63 {
            (1, 63)
        } else {
            (sig, shift as u32)
        };
        let (q, inexact) = round_shift(sig, shift, sign, rm);
        if inexact {
            *fl |= NX;
            if tiny {
                *fl |= UF;
            }
        }
        // q == 1 << FRAC carries into the exponent field: the smallest normal.
        sign_bit::<F>(sign) | q
    }
}

/// Rounds and packs (-1)^sign * x * 2^e for a nonzero exact (or sticky-jammed) `x`.
#[inline]
pub(crate) fn round_pack<F: Format>(sign: bool, x: u128, e: i32, rm: u8, fl: &mut u8) -> u64 {
    debug_assert!(x != 0);
    let top = 127 - x.leading_zeros() as i32;
    let sig = if top > 62 {
        let sh = (top - 62) as u32;
        ((x >> sh) as u64) | ((x & ((1u128 << sh) - 1) != 0) as u64)
    } else {
        (x as u64) << (62 - top)
    };
    round_pack_norm::<F>(sign, e + top, sig, rm, fl)
}

/// Default-NaN result of an operation with NaN operands: NV if any is signaling.
#[inline]
fn nan_result<F: Format>(ops: &[Unp], fl: &mut u8) -> u64 {
    if ops.iter().any(|u| u.cls == Class::SNaN) {
        *fl |= NV;
    }
    F::CANON
}

/// Exact-then-round sum of two nonzero magnitudes with signs (x = value / 2^e).
/// Exact for alignment distances that keep all bits in 126; beyond that the smaller operand
/// is jammed into a sticky bit far below the rounding point, which preserves the rounding.
#[inline]
pub(crate) fn add_core<F: Format>(
    (sa, xa, ea): (bool, u128, i32),
    (sb, xb, eb): (bool, u128, i32),
    rm: u8,
    fl: &mut u8,
) -> u64 {
    // Normalise both to bit 125 (two bits of headroom for the carry of an addition).
    let la = xa.leading_zeros() - 2;
    let lb = xb.leading_zeros() - 2;
    let (mut xa, mut ea, mut sa) = (xa << la, ea - la as i32, sa);
    let (mut xb, mut eb, mut sb) = (xb << lb, eb - lb as i32, sb);
    if eb > ea || (eb == ea && xb > xa) {
        core::mem::swap(&mut xa, &mut xb);
        core::mem::swap(&mut ea, &mut eb);
        core::mem::swap(&mut sa, &mut sb);
    }
    let d = (ea as i64 - eb as i64) as u64;
    let xb = if d == 0 {
        xb
    } else if d >= 127 {
        1
    } else {
        (xb >> d) | ((xb & ((1u128 << d) - 1) != 0) as u128)
    };
    let x = if sa == sb { xa + xb } else { xa - xb };
    if x == 0 {
        return zero::<F>(exact_zero_sign(rm));
    }
    round_pack::<F>(sa, x, ea, rm, fl)
}

/// a + b (with b's sign flipped when `neg_b`).
pub(crate) fn add<F: Format>(a: u64, b: u64, neg_b: bool, rm: u8, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    let mut ub = unpack::<F>(b);
    ub.sign ^= neg_b;
    if ua.is_nan() || ub.is_nan() {
        return nan_result::<F>(&[ua, ub], fl);
    }
    match (ua.cls, ub.cls) {
        (Class::Inf, Class::Inf) => {
            if ua.sign != ub.sign {
                *fl |= NV;
                F::CANON
            } else {
                inf::<F>(ua.sign)
            }
        }
        (Class::Inf, _) => inf::<F>(ua.sign),
        (_, Class::Inf) => inf::<F>(ub.sign),
        (Class::Zero, Class::Zero) => zero::<F>(if ua.sign == ub.sign {
            ua.sign
        } else {
            exact_zero_sign(rm)
        }),
        (Class::Zero, _) => b ^ sign_bit::<F>(neg_b),
        (_, Class::Zero) => a,
        _ => add_core::<F>(
            (ua.sign, ua.m as u128, ua.e),
            (ub.sign, ub.m as u128, ub.e),
            rm,
            fl,
        ),
    }
}

/// a * b.
pub(crate) fn mul<F: Format>(a: u64, b: u64, rm: u8, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    let ub = unpack::<F>(b);
    if ua.is_nan() || ub.is_nan() {
        return nan_result::<F>(&[ua, ub], fl);
    }
    let sign = ua.sign ^ ub.sign;
    match (ua.cls, ub.cls) {
        (Class::Inf, Class::Zero) | (Class::Zero, Class::Inf) => {
            *fl |= NV;
            F::CANON
        }
        (Class::Inf, _) | (_, Class::Inf) => inf::<F>(sign),
        (Class::Zero, _) | (_, Class::Zero) => zero::<F>(sign),
        _ => round_pack::<F>(sign, ua.m as u128 * ub.m as u128, ua.e + ub.e, rm, fl),
    }
}

/// a / b.
pub(crate) fn div<F: Format>(a: u64, b: u64, rm: u8, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    let ub = unpack::<F>(b);
    if ua.is_nan() || ub.is_nan() {
        return nan_result::<F>(&[ua, ub], fl);
    }
    let sign = ua.sign ^ ub.sign;
    match (ua.cls, ub.cls) {
        (Class::Inf, Class::Inf) | (Class::Zero, Class::Zero) => {
            *fl |= NV;
            F::CANON
        }
        (Class::Inf, _) => inf::<F>(sign),
        (_, Class::Inf) => zero::<F>(sign),
        (Class::Zero, _) => zero::<F>(sign),
        (_, Class::Zero) => {
            *fl |= DZ;
            inf::<F>(sign)
        }
        _ => {
            // Dividend normalised to bit 127, divisor to bit 63: the quotient has 64..65 bits.
            let sa = (ua.m as u128).leading_zeros();
            let sb = ub.m.leading_zeros();
            let n = (ua.m as u128) << sa;
            let dv = (ub.m << sb) as u128;
            let q = n / dv;
            let r = n - q * dv;
            let q = q | (r != 0) as u128;
            let e = (ua.e - sa as i32) - (ub.e - sb as i32);
            round_pack::<F>(sign, q, e, rm, fl)
        }
    }
}

/// Integer square root of `n` (floor).
#[inline]
fn isqrt(n: u128) -> u128 {
    if n == 0 {
        return 0;
    }
    // A float estimate (deterministic: IEEE sqrt is correctly rounded) refined by one Newton
    // step and exact integer corrections, so the result never depends on the estimate's quality.
    let mut s = (n as f64).sqrt() as u128;
    if s > 0 {
        s = (s + n / s) >> 1;
    }
    while s * s > n {
        s -= 1;
    }
    while (s + 1) * (s + 1) <= n {
        s += 1;
    }
    s
}

/// sqrt(a).
pub(crate) fn sqrt<F: Format>(a: u64, rm: u8, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    match ua.cls {
        Class::QNaN | Class::SNaN => nan_result::<F>(&[ua], fl),
        Class::Zero => a,
        _ if ua.sign => {
            *fl |= NV;
            F::CANON
        }
        Class::Inf => a,
        Class::Finite => {
            // N = m << k with the top bit at 124 or 125 and an even exponent e - k.
            let top = 63 - ua.m.leading_zeros() as i32;
            let mut k = 124 - top;
            if (ua.e - k) & 1 != 0 {
                k += 1;
            }
            let n = (ua.m as u128) << k;
            let s = isqrt(n);
            let s = s | (s * s != n) as u128;
            round_pack::<F>(false, s, (ua.e - k) >> 1, rm, fl)
        }
    }
}

/// Fused multiply-add: (-1)^neg_prod * a * b + (-1)^neg_c * c with a single rounding.
pub(crate) fn fma<F: Format>(
    a: u64,
    b: u64,
    c: u64,
    neg_prod: bool,
    neg_c: bool,
    rm: u8,
    fl: &mut u8,
) -> u64 {
    let ua = unpack::<F>(a);
    let ub = unpack::<F>(b);
    let mut uc = unpack::<F>(c);
    let inf_zero = matches!(
        (ua.cls, ub.cls),
        (Class::Inf, Class::Zero) | (Class::Zero, Class::Inf)
    );
    if ua.is_nan() || ub.is_nan() || uc.is_nan() {
        // RISC-V: inf * 0 is invalid even when the addend is a quiet NaN.
        if inf_zero {
            *fl |= NV;
        }
        return nan_result::<F>(&[ua, ub, uc], fl);
    }
    if inf_zero {
        *fl |= NV;
        return F::CANON;
    }
    let sp = ua.sign ^ ub.sign ^ neg_prod;
    uc.sign ^= neg_c;
    let prod_inf = ua.cls == Class::Inf || ub.cls == Class::Inf;
    let prod_zero = ua.cls == Class::Zero || ub.cls == Class::Zero;
    if prod_inf {
        if uc.cls == Class::Inf && uc.sign != sp {
            *fl |= NV;
            return F::CANON;
        }
        return inf::<F>(sp);
    }
    if uc.cls == Class::Inf {
        return inf::<F>(uc.sign);
    }
    if prod_zero {
        if uc.cls == Class::Zero {
            return zero::<F>(if sp == uc.sign {
                sp
            } else {
                exact_zero_sign(rm)
            });
        }
        return (c & !sign_bit::<F>(true)) | sign_bit::<F>(uc.sign);
    }
    let p = ua.m as u128 * ub.m as u128;
    let ep = ua.e + ub.e;
    if uc.cls == Class::Zero {
        return round_pack::<F>(sp, p, ep, rm, fl);
    }
    add_core::<F>((sp, p, ep), (uc.sign, uc.m as u128, uc.e), rm, fl)
}

/// Total-order key for non-NaN values (-0 < +0), usable with integer comparison.
#[inline]
fn order_key<F: Format>(bits: u64) -> u64 {
    let sb = sign_bit::<F>(true);
    if bits & sb != 0 {
        !bits & (sb | (sb - 1))
    } else {
        bits | sb
    }
}

/// fmin/fmax (IEEE 754-2019 minimumNumber/maximumNumber, as RISC-V F 2.2+).
pub(crate) fn minmax<F: Format>(max: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    let ub = unpack::<F>(b);
    if ua.cls == Class::SNaN || ub.cls == Class::SNaN {
        *fl |= NV;
    }
    match (ua.is_nan(), ub.is_nan()) {
        (true, true) => F::CANON,
        (true, false) => b,
        (false, true) => a,
        (false, false) => {
            let a_lt_b = order_key::<F>(a) < order_key::<F>(b);
            if a_lt_b != max {
                a
            } else {
                b
            }
        }
    }
}

/// feq (kind 0, quiet), flt (1), fle (2) (signaling).
pub(crate) fn cmp<F: Format>(kind: u8, a: u64, b: u64, fl: &mut u8) -> u64 {
    let ua = unpack::<F>(a);
    let ub = unpack::<F>(b);
    if ua.is_nan() || ub.is_nan() {
        if kind != 0 || ua.cls == Class::SNaN || ub.cls == Class::SNaN {
            *fl |= NV;
        }
        return 0;
    }
    let both_zero = ua.cls == Class::Zero && ub.cls == Class::Zero;
    let (ka, kb) = (order_key::<F>(a), order_key::<F>(b));
    let r = match kind {
        0 => a == b || both_zero,
        1 => !both_zero && ka < kb,
        _ => both_zero || ka <= kb,
    };
    r as u64
}

/// fclass mask.
pub(crate) fn class<F: Format>(a: u64) -> u64 {
    let u = unpack::<F>(a);
    let subnormal = (a >> F::FRAC) & F::EMAX_FIELD == 0;
    let bit = match (u.cls, u.sign) {
        (Class::Inf, true) => 0,
        (Class::Finite, true) if !subnormal => 1,
        (Class::Finite, true) => 2,
        (Class::Zero, true) => 3,
        (Class::Zero, false) => 4,
        (Class::Finite, false) if subnormal => 5,
        (Class::Finite, false) => 6,
        (Class::Inf, false) => 7,
        (Class::SNaN, _) => 8,
        (Class::QNaN, _) => 9,
    };
    1 << bit
}

/// Float → integer with the RISC-V saturation table; `min..=max` is the integer range.
pub(crate) fn to_int<F: Format>(a: u64, min: i128, max: i128, rm: u8, fl: &mut u8) -> i128 {
    let u = unpack::<F>(a);
    match u.cls {
        Class::QNaN | Class::SNaN => {
            *fl |= NV;
            max
        }
        Class::Inf => {
            *fl |= NV;
            if u.sign {
                min
            } else {
                max
            }
        }
        Class::Zero => 0,
        Class::Finite => {
            let (q, inexact) = if u.e >= 0 {
                if u.e > 70 {
                    // Far beyond any 64-bit range.
                    (u128::MAX >> 1, false)
                } else {
                    ((u.m as u128) << u.e, false)
                }
            } else {
                let shift = -(u.e as i64);
                // m < 2^54, so with a shift beyond 62 only its stickiness matters.
                let (m, shift) = if shift > 62 {
                    (1, 62)
                } else {
                    (u.m, shift as u32)
                };
                let (q, ix) = round_shift(m, shift, u.sign, rm);
                (q as u128, ix)
            };
            let v = if u.sign { -(q as i128) } else { q as i128 };
            if v < min {
                *fl |= NV;
                min
            } else if v > max {
                *fl |= NV;
                max
            } else {
                if inexact {
                    *fl |= NX;
                }
                v
            }
        }
    }
}

/// Signed magnitude → float, rounded per `rm`.
pub(crate) fn from_int<F: Format>(sign: bool, mag: u64, rm: u8, fl: &mut u8) -> u64 {
    if mag == 0 {
        return 0;
    }
    // Exact conversions (odd part fits the significand) need no rounding machinery.
    if mag >> mag.trailing_zeros() >> (F::FRAC + 1) == 0 {
        let top = 63 - mag.leading_zeros() as u64;
        let frac = (mag << (63 - top)) << 1 >> (64 - F::FRAC);
        return sign_bit::<F>(sign) | ((top + F::BIAS as u64) << F::FRAC) | frac;
    }
    round_pack::<F>(sign, mag as u128, 0, rm, fl)
}

/// Conversion between formats (`T` target), rounding per `rm`.
pub(crate) fn convert<F: Format, T: Format>(a: u64, rm: u8, fl: &mut u8) -> u64 {
    let u = unpack::<F>(a);
    match u.cls {
        Class::QNaN | Class::SNaN => nan_result::<T>(&[u], fl),
        Class::Inf => inf::<T>(u.sign),
        Class::Zero => zero::<T>(u.sign),
        Class::Finite => round_pack::<T>(u.sign, u.m as u128, u.e, rm, fl),
    }
}

/// Zfa fminm/fmaxm (IEEE 754-2019 minimum/maximum): a NaN operand gives the canonical NaN.
pub(crate) fn minmax_m<F: Format>(max: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    let (ua, ub) = (unpack::<F>(a), unpack::<F>(b));
    if ua.is_nan() || ub.is_nan() {
        return nan_result::<F>(&[ua, ub], fl);
    }
    minmax::<F>(max, a, b, fl)
}

/// Zfa fltq (`lt`) / fleq: quiet compares, NV only for a signaling NaN.
pub(crate) fn cmp_quiet<F: Format>(lt: bool, a: u64, b: u64, fl: &mut u8) -> u64 {
    let (ua, ub) = (unpack::<F>(a), unpack::<F>(b));
    if ua.is_nan() || ub.is_nan() {
        if ua.cls == Class::SNaN || ub.cls == Class::SNaN {
            *fl |= NV;
        }
        return 0;
    }
    cmp::<F>(if lt { 1 } else { 2 }, a, b, fl)
}

/// Zfa fround (`nx` false: inexact never raised) / froundnx: round to an integral value in
/// the same format; NaNs give the canonical NaN, zero results keep the operand's sign.
pub(crate) fn round_int<F: Format>(a: u64, rm: u8, nx: bool, fl: &mut u8) -> u64 {
    let u = unpack::<F>(a);
    match u.cls {
        Class::QNaN | Class::SNaN => nan_result::<F>(&[u], fl),
        Class::Inf | Class::Zero => a,
        Class::Finite if u.e >= 0 => a,
        Class::Finite => {
            let shift = -(u.e as i64);
            // m < 2^53, so with a shift beyond 62 only its stickiness matters.
            let (m, shift) = if shift > 62 {
                (1, 62)
            } else {
                (u.m, shift as u32)
            };
            let (q, inexact) = round_shift(m, shift, u.sign, rm);
            if inexact && nx {
                *fl |= NX;
            }
            if q == 0 {
                zero::<F>(u.sign)
            } else {
                // q fits the significand: the conversion is exact.
                from_int::<F>(u.sign, q, rm, fl)
            }
        }
    }
}

/// Zfa fcvtmod.w.d: the integer part (rounded towards zero) modulo 2^32, sign-extended; NaN
/// and infinity give 0. Out of the int32 range raises NV (and not NX), else inexact NX.
pub(crate) fn to_i32_modulo(a: u64, fl: &mut u8) -> u64 {
    let u = unpack::<D>(a);
    let (mag, inexact): (u128, bool) = match u.cls {
        Class::QNaN | Class::SNaN | Class::Inf => {
            *fl |= NV;
            return 0;
        }
        Class::Zero => return 0,
        // m < 2^53: below 2^75 the value fits u128; above, its low 64 bits are zero.
        Class::Finite if u.e >= 75 => (1 << 127, false),
        Class::Finite if u.e >= 0 => ((u.m as u128) << u.e, false),
        Class::Finite => {
            let sh = (-u.e) as u32;
            if sh >= 64 {
                (0, true)
            } else {
                ((u.m >> sh) as u128, u.m & ((1u64 << sh) - 1) != 0)
            }
        }
    };
    let limit = if u.sign {
        1u128 << 31
    } else {
        (1u128 << 31) - 1
    };
    if mag > limit {
        *fl |= NV;
    } else if inexact {
        *fl |= NX;
    }
    let low = mag as u64;
    let r = if u.sign { low.wrapping_neg() } else { low };
    r as u32 as i32 as i64 as u64
}
