//! FPU tests: a QEMU-generated oracle table, known answers for tricky cases, and property
//! tests against the host's (correctly rounded, round-to-nearest-even) arithmetic.

use super::*;
use proptest::prelude::*;

/// Runs the named operation the way the oracle table names it; returns (x/f register value, flags).
fn dispatch(name: &str, a: u64, b: u64, c: u64, rm: u8) -> Option<(u64, u8)> {
    let mut fl = 0u8;
    let (a32, b32, c32) = (a as u32, b as u32, c as u32);
    let (fmt, op) = name.split_once('.')?;
    let kinds = |s: &str| match s {
        "w" => Some(IntKind::W),
        "wu" => Some(IntKind::Wu),
        "l" => Some(IntKind::L),
        "lu" => Some(IntKind::Lu),
        _ => None,
    };
    let r: u64 = if fmt == "s" {
        match op {
            "add" => f32_binop(BinOp::Add, a32, b32, rm, &mut fl) as u64,
            "sub" => f32_binop(BinOp::Sub, a32, b32, rm, &mut fl) as u64,
            "mul" => f32_binop(BinOp::Mul, a32, b32, rm, &mut fl) as u64,
            "div" => f32_binop(BinOp::Div, a32, b32, rm, &mut fl) as u64,
            "sqrt" => f32_sqrt(a32, rm, &mut fl) as u64,
            "madd" => f32_fma(FmaOp::Madd, a32, b32, c32, rm, &mut fl) as u64,
            "msub" => f32_fma(FmaOp::Msub, a32, b32, c32, rm, &mut fl) as u64,
            "nmsub" => f32_fma(FmaOp::Nmsub, a32, b32, c32, rm, &mut fl) as u64,
            "nmadd" => f32_fma(FmaOp::Nmadd, a32, b32, c32, rm, &mut fl) as u64,
            "min" => f32_minmax(false, a32, b32, &mut fl) as u64,
            "max" => f32_minmax(true, a32, b32, &mut fl) as u64,
            "eq" => f32_cmp(0, a32, b32, &mut fl),
            "lt" => f32_cmp(1, a32, b32, &mut fl),
            "le" => f32_cmp(2, a32, b32, &mut fl),
            "class" => f32_class(a32),
            "cvt.fmt" => f32_to_f64(a32, &mut fl),
            _ => {
                if let Some(k) = op.strip_prefix("cvt.") {
                    f32_to_int(kinds(k)?, a32, rm, &mut fl)
                } else if let Some(k) = op.strip_prefix("from.") {
                    int_to_f32(kinds(k)?, a, rm, &mut fl) as u64
                } else {
                    return None;
                }
            }
        }
    } else {
        match op {
            "add" => f64_binop(BinOp::Add, a, b, rm, &mut fl),
            "sub" => f64_binop(BinOp::Sub, a, b, rm, &mut fl),
            "mul" => f64_binop(BinOp::Mul, a, b, rm, &mut fl),
            "div" => f64_binop(BinOp::Div, a, b, rm, &mut fl),
            "sqrt" => f64_sqrt(a, rm, &mut fl),
            "madd" => f64_fma(FmaOp::Madd, a, b, c, rm, &mut fl),
            "msub" => f64_fma(FmaOp::Msub, a, b, c, rm, &mut fl),
            "nmsub" => f64_fma(FmaOp::Nmsub, a, b, c, rm, &mut fl),
            "nmadd" => f64_fma(FmaOp::Nmadd, a, b, c, rm, &mut fl),
            "min" => f64_minmax(false, a, b, &mut fl),
            "max" => f64_minmax(true, a, b, &mut fl),
            "eq" => f64_cmp(0, a, b, &mut fl),
            "lt" => f64_cmp(1, a, b, &mut fl),
            "le" => f64_cmp(2, a, b, &mut fl),
            "class" => f64_class(a),
            "cvt.fmt" => f64_to_f32(a, rm, &mut fl) as u64,
            _ => {
                if let Some(k) = op.strip_prefix("cvt.") {
                    f64_to_int(kinds(k)?, a, rm, &mut fl)
                } else if let Some(k) = op.strip_prefix("from.") {
                    int_to_f64(kinds(k)?, a, rm, &mut fl)
                } else {
                    return None;
                }
            }
        }
    };
    Some((r, fl))
}

/// Compares every line of a QEMU oracle table (see tests/data/README.md) with our results.
fn check_oracle_table(text: &str) -> usize {
    let mut checked = 0;
    let mut failures = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 5, "line {}: malformed", lineno + 1);
        let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
        let (a, b, c) = (hex(f[1]), hex(f[2]), hex(f[3]));
        for (rm, cell) in f[4..].iter().enumerate() {
            let (r, fl) = cell.split_once(':').unwrap();
            let (want_r, want_fl) = (hex(r), u8::from_str_radix(fl, 16).unwrap());
            let (got_r, got_fl) = dispatch(f[0], a, b, c, rm as u8)
                .unwrap_or_else(|| panic!("line {}: unknown op {}", lineno + 1, f[0]));
            checked += 1;
            if (got_r, got_fl) != (want_r, want_fl) {
                failures.push(format!(
                    "{} {:x} {:x} {:x} rm={}: got {:x}:{:x}, qemu {:x}:{:x}",
                    f[0], a, b, c, rm, got_r, got_fl, want_r, want_fl
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} mismatches vs QEMU, first ones:\n{}",
        failures.len(),
        checked,
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    checked
}

#[test]
fn matches_qemu_oracle_table() {
    let path = std::env::var("FPU_ORACLE_FILE").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fpu_qemu.txt").to_string()
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let n = check_oracle_table(&text);
    assert!(n > 1000, "oracle table too small: {n}");
}

// ---------------------------------------------------------------------------------------------
// Known answers.

const RNE: u8 = 0;
const RTZ: u8 = 1;
const RDN: u8 = 2;
const RUP: u8 = 3;
const RMM: u8 = 4;
const ALL_RM: [u8; 5] = [RNE, RTZ, RDN, RUP, RMM];

const S_MIN_SUB: u32 = 0x0000_0001;
const S_MIN_NORM: u32 = 0x0080_0000;
const S_MAX: u32 = 0x7f7f_ffff;
const S_INF: u32 = 0x7f80_0000;
const S_SNAN: u32 = 0x7f80_0001;
const S_QNAN: u32 = 0x7fc0_0001;
const S_ONE: u32 = 0x3f80_0000;
const D_MIN_SUB: u64 = 1;
const D_MIN_NORM: u64 = 0x0010_0000_0000_0000;
const D_MAX: u64 = 0x7fef_ffff_ffff_ffff;
const D_INF: u64 = 0x7ff0_0000_0000_0000;
const D_SNAN: u64 = 0x7ff0_0000_0000_0001;
const D_QNAN: u64 = 0x7ff8_0000_0000_0001;
const D_ONE: u64 = 0x3ff0_0000_0000_0000;
const D_NEG: u64 = 1 << 63;
const S_NEG: u32 = 1 << 31;

fn d(op: BinOp, a: u64, b: u64, rm: u8) -> (u64, u8) {
    let mut fl = 0;
    (f64_binop(op, a, b, rm, &mut fl), fl)
}

fn s(op: BinOp, a: u32, b: u32, rm: u8) -> (u32, u8) {
    let mut fl = 0;
    (f32_binop(op, a, b, rm, &mut fl), fl)
}

#[test]
fn overflow_per_rounding_mode() {
    let want = [
        (RNE, D_INF, D_INF | D_NEG),
        (RTZ, D_MAX, D_MAX | D_NEG),
        (RDN, D_MAX, D_INF | D_NEG),
        (RUP, D_INF, D_MAX | D_NEG),
        (RMM, D_INF, D_INF | D_NEG),
    ];
    for (rm, pos, neg) in want {
        assert_eq!(d(BinOp::Add, D_MAX, D_MAX, rm), (pos, OF | NX), "rm {rm}");
        assert_eq!(
            d(BinOp::Mul, D_MAX | D_NEG, 0x4000_0000_0000_0000, rm),
            (neg, OF | NX)
        );
    }
    assert_eq!(s(BinOp::Mul, S_MAX, 0x4000_0000, RTZ), (S_MAX, OF | NX));
    assert_eq!(s(BinOp::Mul, S_MAX, 0x4000_0000, RNE), (S_INF, OF | NX));
    // Rounds up to exactly 2^128 only after rounding: still overflow.
    assert_eq!(s(BinOp::Add, S_MAX, 0x7300_0000, RNE), (S_INF, OF | NX));
    assert_eq!(s(BinOp::Add, S_MAX, 0x7300_0000, RTZ), (S_MAX, NX));
}

#[test]
fn underflow_tininess_after_rounding() {
    // max_sub * (1 + 2^-52) = 2^-1022 * (1 - 2^-104): below 2^-1022 before rounding, but
    // rounding to 53 bits with unbounded exponent gives 2^-1022, so it is not tiny: NX only.
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM - 1, D_ONE + 1, RNE),
        (D_MIN_NORM, NX)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM - 1, D_ONE + 1, RUP),
        (D_MIN_NORM, NX)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM - 1, D_ONE + 1, RTZ),
        (D_MIN_NORM - 1, NX | UF)
    );
    assert_eq!(
        s(BinOp::Mul, S_MIN_NORM - 1, S_ONE + 1, RNE),
        (S_MIN_NORM, NX)
    );
    assert_eq!(
        s(BinOp::Mul, S_MIN_NORM - 1, S_ONE + 1, RDN),
        (S_MIN_NORM - 1, NX | UF)
    );
    // min_norm * (1 - 2^-53) = 2^-1023 * 1.111..1 (53 bits) is representable with unbounded
    // exponent, hence tiny; at subnormal precision it is a tie rounding (to even) to min_norm:
    // the result is normal yet UF is raised.
    let one_minus_ulp = 0x3fef_ffff_ffff_ffff;
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM, one_minus_ulp, RNE),
        (D_MIN_NORM, NX | UF)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM, one_minus_ulp, RTZ),
        (D_MIN_NORM - 1, NX | UF)
    );
    assert_eq!(
        s(BinOp::Mul, S_MIN_NORM, 0x3f7f_ffff, RNE),
        (S_MIN_NORM, NX | UF)
    );
    // The same boundary through fcvt.s.d: 2^-126 * (1 - 2^-26) rounds to 2^-126 at 24 bits.
    let mut fl = 0;
    assert_eq!(f64_to_f32(0x380f_ffff_f000_0000, RNE, &mut fl), S_MIN_NORM);
    assert_eq!(fl, NX);
    // Exact tiny result: no flags at all.
    assert_eq!(
        d(BinOp::Mul, D_MIN_NORM, 0x3fe0_0000_0000_0000, RNE),
        (D_MIN_NORM >> 1, 0)
    );
    // Half of the smallest subnormal: tie rounds to even (zero) in RNE, away in RMM.
    assert_eq!(
        d(BinOp::Mul, D_MIN_SUB, 0x3fe0_0000_0000_0000, RNE),
        (0, NX | UF)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_SUB, 0x3fe0_0000_0000_0000, RMM),
        (1, NX | UF)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_SUB, 0x3fe0_0000_0000_0000, RUP),
        (1, NX | UF)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_SUB | D_NEG, 0x3fe0_0000_0000_0000, RDN),
        (D_NEG | 1, NX | UF)
    );
    assert_eq!(
        d(BinOp::Mul, D_MIN_SUB | D_NEG, 0x3fe0_0000_0000_0000, RUP),
        (D_NEG, NX | UF)
    );
    assert_eq!(
        s(BinOp::Mul, S_MIN_NORM, 0x3f7f_ffff, RTZ),
        (S_MIN_NORM - 1, NX | UF)
    );
    assert_eq!(s(BinOp::Div, S_MIN_SUB, 0x4000_0000, RNE), (0, NX | UF));
    // Subnormal sums are exact: no underflow flag.
    assert_eq!(s(BinOp::Add, S_MIN_SUB, S_MIN_SUB, RNE), (2, 0));
    assert_eq!(
        s(BinOp::Sub, S_MIN_NORM, S_MIN_SUB, RNE),
        (S_MIN_NORM - 1, 0)
    );
}

#[test]
fn zero_signs_of_exact_results() {
    for rm in ALL_RM {
        let z = if rm == RDN { D_NEG } else { 0 };
        assert_eq!(d(BinOp::Add, D_ONE, D_ONE | D_NEG, rm), (z, 0));
        assert_eq!(d(BinOp::Sub, D_ONE, D_ONE, rm), (z, 0));
        assert_eq!(d(BinOp::Add, 0, D_NEG, rm), (z, 0));
        assert_eq!(d(BinOp::Add, D_NEG, D_NEG, rm), (D_NEG, 0));
        assert_eq!(d(BinOp::Sub, D_NEG, 0, rm), (D_NEG, 0));
        let mut fl = 0;
        // 1*1 - 1 = exact zero.
        assert_eq!(f64_fma(FmaOp::Msub, D_ONE, D_ONE, D_ONE, rm, &mut fl), z);
        // -(0*1) - 0 = -0 - 0 = -0 in every mode.
        assert_eq!(f64_fma(FmaOp::Nmadd, 0, D_ONE, 0, rm, &mut fl), D_NEG);
        // -(0*1) + 0 = -0 + +0.
        assert_eq!(f64_fma(FmaOp::Nmsub, 0, D_ONE, 0, rm, &mut fl), z);
        assert_eq!(
            f32_fma(FmaOp::Madd, S_NEG, S_ONE, S_NEG, rm, &mut fl),
            S_NEG
        );
        assert_eq!(fl, 0);
    }
}

#[test]
fn fma_single_rounding_and_nan_rules() {
    let mut fl = 0;
    // (1 + 2^-52)^2 - (1 + 2^-51) = 2^-104 exactly: a separate multiply would give 0.
    let a = D_ONE + 1;
    let c = D_ONE + 2;
    assert_eq!(
        f64_fma(FmaOp::Msub, a, a, c, RNE, &mut fl),
        0x3970_0000_0000_0000
    );
    assert_eq!(fl, 0);
    // inf * 0 + qNaN raises NV on RISC-V, giving the canonical NaN.
    let mut fl = 0;
    assert_eq!(
        f64_fma(FmaOp::Madd, D_INF, 0, D_QNAN, RNE, &mut fl),
        F64_CANONICAL_NAN
    );
    assert_eq!(fl, NV);
    let mut fl = 0;
    assert_eq!(
        f32_fma(FmaOp::Madd, 0, S_INF, S_QNAN, RNE, &mut fl),
        F32_CANONICAL_NAN
    );
    assert_eq!(fl, NV);
    // qNaN operand otherwise: canonical NaN, no flags; the sign of a NaN is never flipped.
    let mut fl = 0;
    assert_eq!(
        f32_fma(FmaOp::Nmadd, S_QNAN, S_ONE, S_ONE, RNE, &mut fl),
        F32_CANONICAL_NAN
    );
    assert_eq!(fl, 0);
    // sNaN addend: NV.
    let mut fl = 0;
    assert_eq!(
        f64_fma(FmaOp::Nmsub, D_ONE, D_ONE, D_SNAN, RNE, &mut fl),
        F64_CANONICAL_NAN
    );
    assert_eq!(fl, NV);
    // inf*1 - inf: invalid.
    let mut fl = 0;
    assert_eq!(
        f64_fma(FmaOp::Msub, D_INF, D_ONE, D_INF, RNE, &mut fl),
        F64_CANONICAL_NAN
    );
    assert_eq!(fl, NV);
    // fnmadd negates both product and addend: -(2*3) - 1 = -7.
    let mut fl = 0;
    assert_eq!(
        f64_fma(
            FmaOp::Nmadd,
            2f64.to_bits(),
            3f64.to_bits(),
            D_ONE,
            RNE,
            &mut fl
        ),
        (-7f64).to_bits()
    );
    assert_eq!(
        f64_fma(
            FmaOp::Nmsub,
            2f64.to_bits(),
            3f64.to_bits(),
            D_ONE,
            RNE,
            &mut fl
        ),
        (-5f64).to_bits()
    );
    assert_eq!(fl, 0);
}

#[test]
fn nan_results_are_canonical_and_flags() {
    assert_eq!(
        d(BinOp::Add, D_QNAN | D_NEG, D_ONE, RNE),
        (F64_CANONICAL_NAN, 0)
    );
    assert_eq!(d(BinOp::Mul, D_SNAN, D_ONE, RNE), (F64_CANONICAL_NAN, NV));
    assert_eq!(
        d(BinOp::Add, D_INF, D_INF | D_NEG, RNE),
        (F64_CANONICAL_NAN, NV)
    );
    assert_eq!(d(BinOp::Mul, D_INF, D_NEG, RNE), (F64_CANONICAL_NAN, NV));
    assert_eq!(d(BinOp::Div, 0, D_NEG, RNE), (F64_CANONICAL_NAN, NV));
    assert_eq!(d(BinOp::Div, D_INF, D_INF, RNE), (F64_CANONICAL_NAN, NV));
    assert_eq!(d(BinOp::Div, D_ONE | D_NEG, 0, RNE), (D_INF | D_NEG, DZ));
    assert_eq!(d(BinOp::Div, D_INF, 0, RNE), (D_INF, 0));
    assert_eq!(s(BinOp::Div, S_ONE, S_NEG, RNE), (S_INF | S_NEG, DZ));
    assert_eq!(s(BinOp::Sub, S_SNAN, S_QNAN, RNE), (F32_CANONICAL_NAN, NV));
    let mut fl = 0;
    assert_eq!(f64_sqrt(D_NEG, RNE, &mut fl), D_NEG);
    assert_eq!(f32_sqrt(S_NEG, RNE, &mut fl), S_NEG);
    assert_eq!(f64_sqrt(D_INF, RNE, &mut fl), D_INF);
    assert_eq!(fl, 0);
    assert_eq!(f64_sqrt(D_ONE | D_NEG, RNE, &mut fl), F64_CANONICAL_NAN);
    assert_eq!(fl, NV);
    let mut fl = 0;
    assert_eq!(f32_sqrt(S_MIN_SUB | S_NEG, RNE, &mut fl), F32_CANONICAL_NAN);
    assert_eq!(fl, NV);
    let mut fl = 0;
    assert_eq!(f32_sqrt(0x4080_0000, RNE, &mut fl), 0x4000_0000);
    assert_eq!(fl, 0);
    assert_eq!(f32_sqrt(0x4000_0000, RTZ, &mut fl), 0x3fb5_04f3);
    assert_eq!(f32_sqrt(0x4000_0000, RUP, &mut fl), 0x3fb5_04f4);
    assert_eq!(fl, NX);
    // Conversions between formats.
    let mut fl = 0;
    assert_eq!(f32_to_f64(S_SNAN, &mut fl), F64_CANONICAL_NAN);
    assert_eq!(fl, NV);
    let mut fl = 0;
    assert_eq!(f32_to_f64(S_QNAN | S_NEG, &mut fl), F64_CANONICAL_NAN);
    assert_eq!(f32_to_f64(S_MIN_SUB, &mut fl), 0x36a0_0000_0000_0000);
    assert_eq!(f64_to_f32(D_QNAN, RNE, &mut fl), F32_CANONICAL_NAN);
    assert_eq!(fl, 0);
    assert_eq!(f64_to_f32(D_MAX, RNE, &mut fl), S_INF);
    assert_eq!(fl, OF | NX);
    let mut fl = 0;
    assert_eq!(f64_to_f32(D_MAX, RTZ, &mut fl), S_MAX);
    assert_eq!(fl, OF | NX);
    let mut fl = 0;
    assert_eq!(f64_to_f32(D_MIN_NORM, RUP, &mut fl), S_MIN_SUB);
    assert_eq!(fl, UF | NX);
}

#[test]
fn minmax_and_compare_rules() {
    let mut fl = 0;
    assert_eq!(f64_minmax(false, 0, D_NEG, &mut fl), D_NEG);
    assert_eq!(f64_minmax(false, D_NEG, 0, &mut fl), D_NEG);
    assert_eq!(f64_minmax(true, D_NEG, 0, &mut fl), 0);
    assert_eq!(f32_minmax(true, 0, S_NEG, &mut fl), 0);
    assert_eq!(
        f64_minmax(true, D_QNAN, D_ONE | D_NEG, &mut fl),
        D_ONE | D_NEG
    );
    assert_eq!(f32_minmax(false, S_ONE, S_QNAN, &mut fl), S_ONE);
    assert_eq!(
        f32_minmax(false, S_QNAN, S_QNAN | S_NEG, &mut fl),
        F32_CANONICAL_NAN
    );
    assert_eq!(fl, 0);
    assert_eq!(f64_minmax(false, D_SNAN, D_ONE, &mut fl), D_ONE);
    assert_eq!(fl, NV);
    let mut fl = 0;
    assert_eq!(f64_minmax(true, D_SNAN, D_QNAN, &mut fl), F64_CANONICAL_NAN);
    assert_eq!(fl, NV);

    let mut fl = 0;
    assert_eq!(f64_cmp(0, 0, D_NEG, &mut fl), 1);
    assert_eq!(f64_cmp(1, D_NEG, 0, &mut fl), 0);
    assert_eq!(f64_cmp(2, D_NEG, 0, &mut fl), 1);
    assert_eq!(f32_cmp(1, S_ONE | S_NEG, S_MIN_SUB, &mut fl), 1);
    assert_eq!(f32_cmp(1, S_INF | S_NEG, S_INF, &mut fl), 1);
    assert_eq!(f64_cmp(0, D_QNAN, D_QNAN, &mut fl), 0);
    assert_eq!(fl, 0, "feq is quiet for qNaN");
    assert_eq!(f64_cmp(0, D_SNAN, D_ONE, &mut fl), 0);
    assert_eq!(fl, NV);
    for kind in [1, 2] {
        let mut fl = 0;
        assert_eq!(f32_cmp(kind, S_QNAN, S_ONE, &mut fl), 0);
        assert_eq!(fl, NV, "flt/fle signal on qNaN");
    }
}

#[test]
fn class_masks() {
    let cases64 = [
        (D_INF | D_NEG, 1 << 0),
        (D_ONE | D_NEG, 1 << 1),
        (D_MIN_SUB | D_NEG, 1 << 2),
        (D_NEG, 1 << 3),
        (0, 1 << 4),
        (D_MIN_NORM - 1, 1 << 5),
        (D_MIN_NORM, 1 << 6),
        (D_INF, 1 << 7),
        (D_SNAN, 1 << 8),
        (F64_CANONICAL_NAN | D_NEG, 1 << 9),
    ];
    for (v, m) in cases64 {
        assert_eq!(f64_class(v), m, "{v:x}");
    }
    let cases32 = [
        (S_INF | S_NEG, 1 << 0),
        (S_MAX | S_NEG, 1 << 1),
        (S_MIN_SUB | S_NEG, 1 << 2),
        (S_NEG, 1 << 3),
        (0, 1 << 4),
        (S_MIN_SUB, 1 << 5),
        (S_ONE, 1 << 6),
        (S_INF, 1 << 7),
        (S_SNAN | S_NEG, 1 << 8),
        (S_QNAN, 1 << 9),
    ];
    for (v, m) in cases32 {
        assert_eq!(f32_class(v), m, "{v:x}");
    }
}

#[test]
fn fcvt_to_int_saturation_table() {
    let cvt = |k: IntKind, v: f64, rm: u8| {
        let mut fl = 0;
        (f64_to_int(k, v.to_bits(), rm, &mut fl), fl)
    };
    let nan = f64::from_bits(F64_CANONICAL_NAN);
    let big = 1e30;
    // (kind, NaN / +inf / +big, -inf / -big)
    let table = [
        (IntKind::W, 0x7fff_ffffu64, 0xffff_ffff_8000_0000u64),
        (IntKind::Wu, 0xffff_ffff_ffff_ffff, 0),
        (IntKind::L, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000),
        (IntKind::Lu, 0xffff_ffff_ffff_ffff, 0),
    ];
    for (k, hi, lo) in table {
        for rm in ALL_RM {
            assert_eq!(cvt(k, nan, rm), (hi, NV));
            assert_eq!(cvt(k, f64::INFINITY, rm), (hi, NV));
            assert_eq!(cvt(k, big, rm), (hi, NV));
            assert_eq!(cvt(k, f64::NEG_INFINITY, rm), (lo, NV));
            assert_eq!(cvt(k, -big, rm), (lo, NV));
        }
    }
    // Boundaries.
    assert_eq!(cvt(IntKind::W, 2147483647.4, RNE), (0x7fff_ffff, NX));
    assert_eq!(cvt(IntKind::W, 2147483647.5, RNE), (0x7fff_ffff, NV));
    assert_eq!(cvt(IntKind::W, 2147483647.5, RTZ), (0x7fff_ffff, NX));
    assert_eq!(
        cvt(IntKind::W, -2147483648.9, RTZ),
        (0xffff_ffff_8000_0000, NX)
    );
    assert_eq!(
        cvt(IntKind::W, -2147483648.9, RNE),
        (0xffff_ffff_8000_0000, NV)
    );
    assert_eq!(
        cvt(IntKind::Wu, 4294967295.0, RNE),
        (0xffff_ffff_ffff_ffff, 0)
    );
    assert_eq!(
        cvt(IntKind::Wu, 4294967296.0, RNE),
        (0xffff_ffff_ffff_ffff, NV)
    );
    assert_eq!(
        cvt(IntKind::Wu, 2147483648.0, RNE),
        (0xffff_ffff_8000_0000, 0)
    );
    // Negative values that round to zero are fine for unsigned (NX only); below that NV.
    assert_eq!(cvt(IntKind::Wu, -0.4, RNE), (0, NX));
    assert_eq!(cvt(IntKind::Lu, -0.9, RTZ), (0, NX));
    assert_eq!(cvt(IntKind::Lu, -0.9, RUP), (0, NX));
    assert_eq!(cvt(IntKind::Lu, -0.9, RNE), (0, NV));
    assert_eq!(cvt(IntKind::Lu, -0.0, RNE), (0, 0));
    assert_eq!(cvt(IntKind::L, -9223372036854775808.0, RNE), (1 << 63, 0));
    assert_eq!(
        cvt(IntKind::L, 9223372036854775808.0, RNE),
        (i64::MAX as u64, NV)
    );
    assert_eq!(
        cvt(IntKind::Lu, 18446744073709549568.0, RNE),
        (0xffff_ffff_ffff_f800, 0)
    );
    // Rounding modes.
    for (rm, p, n) in [
        (RNE, 2, -2),
        (RTZ, 2, -2),
        (RDN, 2, -3),
        (RUP, 3, -2),
        (RMM, 3, -3),
    ] {
        assert_eq!(cvt(IntKind::L, 2.5, rm), (p as u64, NX), "rm {rm}");
        assert_eq!(cvt(IntKind::L, -2.5, rm), (n as i64 as u64, NX), "rm {rm}");
    }
    let mut fl = 0;
    assert_eq!(
        f32_to_int(IntKind::W, 0xcf00_0000, RNE, &mut fl),
        0xffff_ffff_8000_0000
    );
    assert_eq!(
        f32_to_int(IntKind::Wu, 0x4f7f_ffff, RNE, &mut fl),
        0xffff_ffff_ffff_ff00
    );
    assert_eq!(fl, 0);
}

#[test]
fn fcvt_from_int() {
    let mut fl = 0;
    assert_eq!(
        int_to_f64(IntKind::W, 0xffff_ffff, RNE, &mut fl),
        (-1f64).to_bits()
    );
    assert_eq!(
        int_to_f64(IntKind::Wu, 0xffff_ffff_ffff_ffff, RNE, &mut fl),
        4294967295f64.to_bits()
    );
    assert_eq!(int_to_f64(IntKind::L, 0, RDN, &mut fl), 0);
    assert_eq!(
        int_to_f32(IntKind::W, 0x8000_0000, RNE, &mut fl),
        0xcf00_0000
    );
    assert_eq!(fl, 0);
    // 2^24 + 1 is not representable in f32.
    for (rm, want) in [
        (RNE, 0x4b80_0000),
        (RTZ, 0x4b80_0000),
        (RDN, 0x4b80_0000),
        (RUP, 0x4b80_0001),
        (RMM, 0x4b80_0001),
    ] {
        let mut fl = 0;
        assert_eq!(
            int_to_f32(IntKind::L, (1 << 24) + 1, rm, &mut fl),
            want,
            "rm {rm}"
        );
        assert_eq!(fl, NX);
    }
    let mut fl = 0;
    assert_eq!(
        int_to_f64(IntKind::Lu, u64::MAX, RTZ, &mut fl),
        0x43ef_ffff_ffff_ffff
    );
    assert_eq!(
        int_to_f64(IntKind::Lu, u64::MAX, RNE, &mut fl),
        0x43f0_0000_0000_0000
    );
    assert_eq!(fl, NX);
}

#[test]
fn nan_boxing() {
    assert_eq!(unbox_f32(box_f32(0x3f80_0000)), 0x3f80_0000);
    assert_eq!(unbox_f32(0x0000_0000_3f80_0000), F32_CANONICAL_NAN);
    assert_eq!(unbox_f32(0xffff_fffe_3f80_0000), F32_CANONICAL_NAN);
}

// ---------------------------------------------------------------------------------------------
// Properties against host arithmetic (which is IEEE round-to-nearest-even).

fn canon64(x: f64) -> u64 {
    if x.is_nan() {
        F64_CANONICAL_NAN
    } else {
        x.to_bits()
    }
}

fn canon32(x: f32) -> u32 {
    if x.is_nan() {
        F32_CANONICAL_NAN
    } else {
        x.to_bits()
    }
}

/// Random f64 bit patterns biased towards interesting exponents.
fn any_f64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        (
            any::<bool>(),
            prop_oneof![0u64..4, 0x3f0u64..0x410, 0x7f0u64..0x800],
            any::<u64>()
        )
            .prop_map(|(s, e, m)| ((s as u64) << 63) | (e << 52) | (m >> 12)),
    ]
}

fn any_f32() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        (
            any::<bool>(),
            prop_oneof![0u32..4, 0x70u32..0x90, 0xf8u32..0x100],
            any::<u32>()
        )
            .prop_map(|(s, e, m)| ((s as u32) << 31) | (e << 23) | (m >> 9)),
    ]
}

/// Exactness of a + b via TwoSum (exact in round-to-nearest without overflow).
fn two_sum_err(a: f64, b: f64) -> f64 {
    let s = a + b;
    let bb = s - a;
    (a - (s - bb)) + (b - bb)
}

/// The next representable value above `x` (IEEE nextUp) on raw bits, for non-NaN `x`.
fn next_up64(x: u64) -> u64 {
    next_up_bits(x, 63, D_INF)
}

fn next_up_bits(x: u64, sign_shift: u32, inf: u64) -> u64 {
    let neg_zero = 1 << sign_shift;
    if x == neg_zero {
        return 1;
    }
    if x >> sign_shift == 0 {
        if x == inf {
            x
        } else {
            x + 1
        }
    } else {
        x - 1
    }
}

/// Checks the four directed/away modes of one operation against its RNE result.
fn check_directed(f: impl Fn(u8, &mut u8) -> u64) -> Result<(), TestCaseError> {
    check_directed_fmt(f, false)
}

/// [`check_directed`] for either format (`single`: results are f32 bit patterns).
fn check_directed_fmt(f: impl Fn(u8, &mut u8) -> u64, single: bool) -> Result<(), TestCaseError> {
    let val = |x: u64| {
        if single {
            f32::from_bits(x as u32) as f64
        } else {
            f64::from_bits(x)
        }
    };
    let le64 = |a: u64, b: u64| val(a) <= val(b);
    let next_up = |x: u64| {
        if single {
            next_up_bits(x, 31, S_INF as u64)
        } else {
            next_up64(x)
        }
    };
    let canon = if single {
        F32_CANONICAL_NAN as u64
    } else {
        F64_CANONICAL_NAN
    };
    let neg_zero = if single { S_NEG as u64 } else { D_NEG };
    let mut fl_ne = 0;
    let ne = f(RNE, &mut fl_ne);
    let res: Vec<(u64, u8)> = ALL_RM
        .iter()
        .map(|&rm| {
            let mut fl = 0;
            (f(rm, &mut fl), fl)
        })
        .collect();
    if val(ne).is_nan() {
        for &(r, fl) in &res {
            prop_assert_eq!(r, canon);
            prop_assert_eq!(fl, fl_ne);
        }
        return Ok(());
    }
    let (dn, up, tz, mm) = (res[2].0, res[3].0, res[1].0, res[4].0);
    if fl_ne & NX == 0 {
        for &(r, fl) in &res {
            prop_assert!(val(r) == val(ne));
            prop_assert_eq!(fl & NX, 0);
        }
        return Ok(());
    }
    for &(_, fl) in &res {
        prop_assert!(fl & NX != 0);
    }
    prop_assert!(le64(dn, ne) && le64(ne, up));
    prop_assert!(le64(dn, mm) && le64(mm, up));
    prop_assert_eq!(next_up(dn), up, "dn {:x} up {:x}", dn, up);
    // RTZ is whichever of dn/up is nearer zero.
    let neg = val(dn) < 0.0 || (dn == neg_zero);
    prop_assert_eq!(tz, if neg { up } else { dn });
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn f64_rne_matches_host(a in any_f64(), b in any_f64(), c in any_f64()) {
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        for (op, host) in [(BinOp::Add, x + y), (BinOp::Sub, x - y), (BinOp::Mul, x * y), (BinOp::Div, x / y)] {
            let mut fl = 0;
            prop_assert_eq!(f64_binop(op, a, b, RNE, &mut fl), canon64(host), "{:?}", op);
        }
        let mut fl = 0;
        prop_assert_eq!(f64_sqrt(a, RNE, &mut fl), canon64(x.sqrt()));
        prop_assert_eq!(f64_fma(FmaOp::Madd, a, b, c, RNE, &mut fl), canon64(x.mul_add(y, z)));
        prop_assert_eq!(f64_fma(FmaOp::Nmadd, a, b, c, RNE, &mut fl), canon64((-x).mul_add(y, -z)));
        prop_assert_eq!(f64_to_f32(a, RNE, &mut fl), canon32(x as f32));
    }

    #[test]
    fn f32_rne_matches_host(a in any_f32(), b in any_f32(), c in any_f32()) {
        let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
        for (op, host) in [(BinOp::Add, x + y), (BinOp::Sub, x - y), (BinOp::Mul, x * y), (BinOp::Div, x / y)] {
            let mut fl = 0;
            prop_assert_eq!(f32_binop(op, a, b, RNE, &mut fl), canon32(host), "{:?}", op);
        }
        let mut fl = 0;
        prop_assert_eq!(f32_sqrt(a, RNE, &mut fl), canon32(x.sqrt()));
        prop_assert_eq!(f32_fma(FmaOp::Msub, a, b, c, RNE, &mut fl), canon32(x.mul_add(y, -z)));
        prop_assert_eq!(f32_to_f64(a, &mut fl), canon64(x as f64));
    }

    /// NX/OF agree with exactness computed exactly in f64 (all f32 products, quotient checks
    /// and square-root checks below are exact in f64).
    #[test]
    fn f32_flags_match_exactness(a in any_f32(), b in any_f32()) {
        let (x, y) = (f32::from_bits(a), f32::from_bits(b));
        let (xd, yd) = (x as f64, y as f64);
        let fin = |v: f32| v.is_finite();
        for op in [BinOp::Add, BinOp::Mul, BinOp::Div] {
            let mut fl = 0;
            let r = f32::from_bits(f32_binop(op, a, b, RNE, &mut fl));
            if !(fin(x) && fin(y)) || (op == BinOp::Div && y == 0.0) {
                continue;
            }
            let overflow = r.is_infinite();
            prop_assert_eq!(fl & OF != 0, overflow);
            let exact = !overflow && match op {
                BinOp::Add | BinOp::Sub => two_sum_err(xd, yd) == 0.0 && (xd + yd) == r as f64,
                BinOp::Mul => xd * yd == r as f64,
                BinOp::Div => (r as f64) * yd == xd,
            };
            prop_assert_eq!(fl & NX == 0, exact, "{:?} {:x} {:x}", op, a, b);
            // Underflow only when tiny and inexact.
            if fl & UF != 0 {
                prop_assert!(!exact && (r.abs() <= f32::MIN_POSITIVE));
            }
        }
        if fin(x) && x >= 0.0 {
            let mut fl = 0;
            let r = f32::from_bits(f32_sqrt(a, RNE, &mut fl)) as f64;
            prop_assert_eq!(fl == 0, r * r == xd);
        }
    }

    #[test]
    fn f64_flags_match_exactness(a in any_f64(), b in any_f64()) {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        if !(x.is_finite() && y.is_finite()) {
            return Ok(());
        }
        let mut fl = 0;
        let r = f64::from_bits(f64_binop(BinOp::Add, a, b, RNE, &mut fl));
        if r.is_finite() {
            prop_assert_eq!(fl & NX == 0, two_sum_err(x, y) == 0.0);
        }
        let mut fl = 0;
        let r = f64::from_bits(f64_binop(BinOp::Mul, a, b, RNE, &mut fl));
        // The residual check is exact as long as the residual cannot underflow.
        if r.is_finite() && r.abs() > 1e-290 {
            prop_assert_eq!(fl & NX == 0, x.mul_add(y, -r) == 0.0);
        }
        let mut fl = 0;
        let r = f64::from_bits(f64_binop(BinOp::Div, a, b, RNE, &mut fl));
        if y != 0.0 && r.is_finite() && r.abs() > 1e-290 && r.abs() < 1e290 && x.abs() > 1e-290 {
            prop_assert_eq!(fl & NX == 0, r.mul_add(y, -x) == 0.0);
        }
        if x > 1e-290 {
            let mut fl = 0;
            let r = f64::from_bits(f64_sqrt(a, RNE, &mut fl));
            prop_assert_eq!(fl == 0, r.mul_add(r, -x) == 0.0);
        }
    }

    #[test]
    fn f64_directed_rounding_brackets(a in any_f64(), b in any_f64(), c in any_f64()) {
        for op in [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div] {
            check_directed(|rm, fl| f64_binop(op, a, b, rm, fl))?;
        }
        check_directed(|rm, fl| f64_sqrt(a, rm, fl))?;
        check_directed(|rm, fl| f64_fma(FmaOp::Madd, a, b, c, rm, fl))?;
        check_directed(|rm, fl| f64_fma(FmaOp::Nmsub, a, b, c, rm, fl))?;
        check_directed(|rm, fl| int_to_f64(IntKind::L, a, rm, fl))?;
        check_directed_fmt(|rm, fl| f64_to_f32(a, rm, fl) as u64, true)?;
        let (a32, b32, c32) = (a as u32, b as u32, c as u32);
        for op in [BinOp::Add, BinOp::Mul, BinOp::Div] {
            check_directed_fmt(|rm, fl| f32_binop(op, a32, b32, rm, fl) as u64, true)?;
        }
        check_directed_fmt(|rm, fl| f32_fma(FmaOp::Msub, a32, b32, c32, rm, fl) as u64, true)?;
        check_directed_fmt(|rm, fl| f32_sqrt(a32, rm, fl) as u64, true)?;
        check_directed_fmt(|rm, fl| int_to_f32(IntKind::Lu, a, rm, fl) as u64, true)?;
    }

    #[test]
    fn fcvt_matches_host_casts(a in any_f64(), x in any::<u64>()) {
        let v = f64::from_bits(a);
        if !v.is_nan() {
            let mut fl = 0;
            prop_assert_eq!(f64_to_int(IntKind::L, a, RTZ, &mut fl), v as i64 as u64);
            prop_assert_eq!(f64_to_int(IntKind::Lu, a, RTZ, &mut fl), v as u64);
            prop_assert_eq!(f64_to_int(IntKind::W, a, RTZ, &mut fl), v as i32 as i64 as u64);
            prop_assert_eq!(f64_to_int(IntKind::Wu, a, RTZ, &mut fl), v as u32 as i32 as i64 as u64);
            let mut fl = 0;
            let r = f64_to_int(IntKind::L, a, RNE, &mut fl) as i64;
            if fl & NV == 0 {
                prop_assert_eq!(r as f64, v.round_ties_even());
                prop_assert_eq!(fl & NX != 0, v.fract() != 0.0);
            }
        }
        let mut fl = 0;
        prop_assert_eq!(int_to_f64(IntKind::L, x, RNE, &mut fl), (x as i64 as f64).to_bits());
        prop_assert_eq!(int_to_f64(IntKind::Lu, x, RNE, &mut fl), (x as f64).to_bits());
        prop_assert_eq!(int_to_f32(IntKind::L, x, RNE, &mut fl), (x as i64 as f32).to_bits());
        prop_assert_eq!(int_to_f32(IntKind::Wu, x, RNE, &mut fl), (x as u32 as f32).to_bits());
        prop_assert_eq!(int_to_f32(IntKind::W, x, RNE, &mut fl), (x as i32 as f32).to_bits());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    /// The host-float RNE fast paths agree with the software core in result and flags.
    #[test]
    fn fast_paths_agree_with_soft_core(a in any_f64(), b in any_f64(), c in any_f64(), x in any::<u64>()) {
        use super::soft::{self, D, S};
        let both = |fast: &dyn Fn(&mut u8) -> u64, slow: &dyn Fn(&mut u8) -> u64| {
            let (mut f1, mut f2) = (0, 0);
            let r = (fast(&mut f1), slow(&mut f2));
            (r.0, f1, r.1, f2)
        };
        for op in [BinOp::Add, BinOp::Sub] {
            let (r1, f1, r2, f2) = both(&|fl| f64_binop(op, a, b, RNE, fl),
                &|fl| soft::add::<D>(a, b, op == BinOp::Sub, RNE, fl));
            prop_assert_eq!((r1, f1), (r2, f2));
        }
        let (a32, b32, c32) = (a as u32, b as u32, c as u32);
        for op in [BinOp::Add, BinOp::Sub] {
            let (r1, f1, r2, f2) = both(&|fl| f32_binop(op, a32, b32, RNE, fl) as u64,
                &|fl| soft::add::<S>(a32 as u64, b32 as u64, op == BinOp::Sub, RNE, fl));
            prop_assert_eq!((r1, f1), (r2, f2));
        }
        let checks: [(u64, u8, u64, u8); 10] = [
            both(&|fl| f64_binop(BinOp::Mul, a, b, RNE, fl), &|fl| soft::mul::<D>(a, b, RNE, fl)),
            both(&|fl| f64_binop(BinOp::Div, a, b, RNE, fl), &|fl| soft::div::<D>(a, b, RNE, fl)),
            both(&|fl| f64_sqrt(a, RNE, fl), &|fl| soft::sqrt::<D>(a, RNE, fl)),
            both(&|fl| f32_binop(BinOp::Mul, a32, b32, RNE, fl) as u64, &|fl| soft::mul::<S>(a32 as u64, b32 as u64, RNE, fl)),
            both(&|fl| f32_binop(BinOp::Div, a32, b32, RNE, fl) as u64, &|fl| soft::div::<S>(a32 as u64, b32 as u64, RNE, fl)),
            both(&|fl| f32_sqrt(a32, RNE, fl) as u64, &|fl| soft::sqrt::<S>(a32 as u64, RNE, fl)),
            both(&|fl| f32_fma(FmaOp::Madd, a32, b32, c32, RNE, fl) as u64,
                &|fl| soft::fma::<S>(a32 as u64, b32 as u64, c32 as u64, false, false, RNE, fl)),
            both(&|fl| f32_fma(FmaOp::Nmsub, a32, b32, c32, RNE, fl) as u64,
                &|fl| soft::fma::<S>(a32 as u64, b32 as u64, c32 as u64, true, false, RNE, fl)),
            both(&|fl| int_to_f64(IntKind::L, x >> (x % 64), RTZ, fl),
                &|fl| { let v = (x >> (x % 64)) as i64; if v == 0 { 0 } else { soft::round_pack::<D>(v < 0, v.unsigned_abs() as u128, 0, RTZ, fl) } }),
            both(&|fl| int_to_f32(IntKind::Lu, x >> (x % 64), RUP, fl) as u64,
                &|fl| { let v = x >> (x % 64); if v == 0 { 0 } else { soft::round_pack::<S>(false, v as u128, 0, RUP, fl) } }),
        ];
        for (i, (r1, f1, r2, f2)) in checks.into_iter().enumerate() {
            prop_assert_eq!((r1, f1), (r2, f2), "check {}", i);
        }
    }

    /// f32 fma near exact cancellation and in the subnormal range, where fast and slow paths meet.
    #[test]
    fn f32_fma_fast_path_edges(a in any_f32(), b in any_f32(), d in -3i64..3, neg in any::<bool>()) {
        use super::soft::{self, S};
        let p = f32::from_bits(a) * f32::from_bits(b);
        let c = (p.to_bits() as i64 + d) as u32 ^ if neg { 0 } else { S_NEG };
        let (mut f1, mut f2) = (0, 0);
        let r1 = f32_fma(FmaOp::Madd, a, b, c, RNE, &mut f1);
        let r2 = soft::fma::<S>(a as u64, b as u64, c as u64, false, false, RNE, &mut f2) as u32;
        prop_assert_eq!((r1, f1), (r2, f2));
    }
}
