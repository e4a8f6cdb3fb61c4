//! Round-to-nearest-even fast paths on host floats.
//!
//! Host `f32`/`f64` arithmetic is IEEE 754 binary32/binary64 with round-to-nearest-even (Rust
//! guarantees this on every supported target; no flush-to-zero), so its results equal the
//! software core's bit for bit. What the host does not give is the exception flags, so each
//! fast path only accepts the cases where the flags follow from cheap exact checks and returns
//! `None` for everything else (NaN/inf operands or results, possible underflow, division by
//! zero), which then takes the software path.

use super::soft::{unpack, Format, D, S};
use super::NX;

/// Odd significand and exponent of a finite nonzero value: value = ±odd * 2^exp.
#[inline(always)]
fn odd_exp<F: Format>(bits: u64) -> (u64, i32) {
    let u = unpack::<F>(bits);
    let tz = u.m.trailing_zeros();
    (u.m >> tz, u.e + tz as i32)
}

/// Whether x * y == r exactly, for finite nonzero x, y, r (bits of format `F`).
#[inline(always)]
fn product_is<F: Format>(x: u64, y: u64, r: u64) -> bool {
    let (ox, ex) = odd_exp::<F>(x);
    let (oy, ey) = odd_exp::<F>(y);
    let (or, er) = odd_exp::<F>(r);
    ex + ey == er && ox as u128 * oy as u128 == or as u128
}

macro_rules! fast_paths {
    ($t:ty, $fmt:ty, $bits:ty, $add:ident, $mul:ident, $div:ident, $sqrt:ident) => {
        /// a + b in RNE; `None` unless flags are certain.
        #[inline(always)]
        pub(crate) fn $add(a: $bits, b: $bits, fl: &mut u8) -> Option<$bits> {
            let (x, y) = (<$t>::from_bits(a), <$t>::from_bits(b));
            let s = x + y;
            if !s.is_finite() {
                return None;
            }
            // TwoSum: the exact rounding error of s (exact unless an intermediate overflows,
            // which shows up as a non-finite error term). Sums never underflow.
            let bb = s - x;
            let err = (x - (s - bb)) + (y - bb);
            if !err.is_finite() {
                return None;
            }
            if err != 0.0 {
                *fl |= NX;
            }
            Some(s.to_bits())
        }

        /// a * b in RNE; `None` unless flags are certain.
        #[inline(always)]
        pub(crate) fn $mul(a: $bits, b: $bits, fl: &mut u8) -> Option<$bits> {
            let r = <$t>::from_bits(a) * <$t>::from_bits(b);
            // Strictly above the smallest normal: not tiny after rounding, hence no UF.
            if !(r.is_finite() && r.abs() > <$t>::MIN_POSITIVE) {
                return None;
            }
            if !product_is::<$fmt>(a as u64, b as u64, r.to_bits() as u64) {
                *fl |= NX;
            }
            Some(r.to_bits())
        }

        /// a / b in RNE; `None` unless flags are certain.
        #[inline(always)]
        pub(crate) fn $div(a: $bits, b: $bits, fl: &mut u8) -> Option<$bits> {
            let r = <$t>::from_bits(a) / <$t>::from_bits(b);
            // A finite quotient above the smallest normal implies finite nonzero operands.
            if !(r.is_finite() && r.abs() > <$t>::MIN_POSITIVE) {
                return None;
            }
            if !product_is::<$fmt>(r.to_bits() as u64, b as u64, a as u64) {
                *fl |= NX;
            }
            Some(r.to_bits())
        }

        /// sqrt(a) in RNE; `None` unless flags are certain.
        #[inline(always)]
        pub(crate) fn $sqrt(a: $bits, fl: &mut u8) -> Option<$bits> {
            let x = <$t>::from_bits(a);
            if !(x.is_finite() && x > 0.0) {
                return None;
            }
            let r = x.sqrt();
            if !product_is::<$fmt>(r.to_bits() as u64, r.to_bits() as u64, a as u64) {
                *fl |= NX;
            }
            Some(r.to_bits())
        }
    };
}

fast_paths!(f64, D, u64, add_f64, mul_f64, div_f64, sqrt_f64);
fast_paths!(f32, S, u32, add_f32, mul_f32, div_f32, sqrt_f32);

/// f32 fused multiply-add in RNE through f64: the product of two f32 is exact in f64, and when
/// the f64 sum is exact too (checked with TwoSum) a single rounding to f32 gives the fused
/// result. `None` unless that holds and flags are certain.
#[inline(always)]
pub(crate) fn fma_f32(
    a: u32,
    b: u32,
    c: u32,
    neg_prod: bool,
    neg_c: bool,
    fl: &mut u8,
) -> Option<u32> {
    let p = f32::from_bits(a) as f64 * f32::from_bits(b) as f64;
    let p = if neg_prod { -p } else { p };
    let z = f32::from_bits(c) as f64;
    let z = if neg_c { -z } else { z };
    let t = p + z;
    let bb = t - p;
    let err = (p - (t - bb)) + (z - bb);
    if !(t.is_finite() && err == 0.0) {
        return None;
    }
    let r = t as f32;
    if !(r.is_finite() && r.abs() > f32::MIN_POSITIVE) {
        return None;
    }
    if r as f64 != t {
        *fl |= NX;
    }
    Some(r.to_bits())
}
