//! The decoder against an independent one (the `riscv-isa` crate): same valid/illegal verdict,
//! same mnemonic, same register operands and immediates, for random 32-bit words (proptest) and
//! for every 16-bit parcel (exhaustive). Known disagreements are listed and justified below.

use proptest::prelude::*;
use rewind_cpu::decode::{decode16, decode32, decode32_with, Kind, Op};
use rewind_cpu::isa::CpuFeatures;
use riscv_isa::{decode_compressed, decode_full, Instruction, Target, Xlen};

/// QEMU 10's default rv64 as far as the oracle knows its extensions (it has no Zfa, Zicbo*
/// or Zicond, see `known_deviation32`).
fn target() -> Target {
    Target {
        zba: true,
        zbb: true,
        zbc: true,
        zbs: true,
        zawrs: true,
        ..base_target()
    }
}

/// RV64GC without any of the newer extensions (rewind's `CpuFeatures::baseline`).
fn base_target() -> Target {
    Target {
        xlen: Xlen::Rv64,
        privileged: true,
        supervisor_mode: true,
        m: true,
        a: true,
        f: true,
        d: true,
        c: true,
        zicsr: true,
        zifencei: true,
        ..Default::default()
    }
}

/// Mnemonic (underscores removed) and numeric fields of an oracle instruction, parsed from its
/// `Debug` form, e.g. `ADDI { rd: 1, rs1: 2, imm: 3 }`.
fn oracle_fields(i: &Instruction) -> (String, Vec<(String, i64)>) {
    let s = format!("{i:?}");
    let (name, rest) = match s.find(' ') {
        Some(p) => (&s[..p], &s[p..]),
        None => (&s[..], ""),
    };
    let mut fields = Vec::new();
    let body = rest.trim().trim_start_matches('{').trim_end_matches('}');
    for part in body.split(',') {
        if let Some((k, v)) = part.split_once(':') {
            if let Ok(v) = v.trim().parse::<i64>() {
                fields.push((k.trim().to_string(), v));
            }
        }
    }
    (name.replace('_', ""), fields)
}

/// Our mnemonic for `op`, in the oracle's spelling without underscores.
fn our_name(op: &Op) -> String {
    let int = ["W", "WU", "L", "LU"][(op.rs2 & 3) as usize];
    match op.kind {
        Kind::FsgnjS | Kind::FsgnjD => {
            format!(
                "{}{}",
                ["FSGNJ", "FSGNJN", "FSGNJX"][op.rm as usize % 3],
                if op.kind == Kind::FsgnjS { "S" } else { "D" }
            )
        }
        Kind::FminmaxS | Kind::FminmaxD => {
            format!(
                "{}{}",
                ["FMIN", "FMAX"][op.rm as usize % 2],
                if op.kind == Kind::FminmaxS { "S" } else { "D" }
            )
        }
        Kind::FcmpS | Kind::FcmpD => {
            format!(
                "{}{}",
                ["FEQ", "FLT", "FLE"][op.rm as usize % 3],
                if op.kind == Kind::FcmpS { "S" } else { "D" }
            )
        }
        Kind::FcvtIntS => format!("FCVT{int}S"),
        Kind::FcvtIntD => format!("FCVT{int}D"),
        Kind::FcvtSInt => format!("FCVTS{int}"),
        Kind::FcvtDInt => format!("FCVTD{int}"),
        k => format!("{k:?}").to_uppercase(),
    }
}

/// Compare one decoded op with the oracle's instruction; Err describes the mismatch.
fn compare(op: &Op, oracle: &Instruction) -> Result<(), String> {
    let (name, fields) = oracle_fields(oracle);
    if our_name(op) != name {
        return Err(format!("mnemonic: ours {op:?}, oracle {oracle:?}"));
    }
    for (k, v) in fields {
        let ours: i64 = match k.as_str() {
            "rd" | "frd" => op.rd as i64,
            "rs1" | "frs1" | "uimm" => op.rs1 as i64,
            "rs2" | "frs2" => op.rs2 as i64,
            "frs3" => op.rs3 as i64,
            "rm" => op.rm as i64,
            "imm" if matches!(op.kind, Kind::Lui | Kind::Auipc) => ((op.imm as u32) >> 12) as i64,
            "imm" | "offset" | "shamt" | "csr" => op.imm as i64,
            _ => continue,
        };
        if ours != v {
            return Err(format!(
                "field {k}: ours {ours} ({op:?}), oracle {v} ({oracle:?})"
            ));
        }
    }
    Ok(())
}

/// 32-bit words where we knowingly differ from the oracle: `fence` with a non-zero `fm` field
/// (fence.tso has fm = 1000; QEMU ignores fm), which the oracle rejects.
fn known_deviation32(w: u32) -> bool {
    // FENCE with reserved fm bits; and the RV64 `rev8` encoding, which riscv-isa 0.3 decodes
    // only under Zbkb although Zbb has it (decode.rs's unit tests and guests/bitmanip, compared
    // with QEMU 10, check it).
    (w & 0x707f == 0x000f && w >> 28 != 0) || w & 0xfff0_707f == 0x6b80_5013
}

/// Encodings of the extensions the oracle does not know (Zfa, Zicbom/Zicboz), which QEMU 10's
/// default rv64 has: checked by `new_extensions_decode_like_qemu` instead.
fn oracle_lacks(w: u32) -> bool {
    let (opc, f3, f7, rs2) = (w & 0x7f, (w >> 12) & 7, w >> 25, (w >> 20) & 31);
    let zfa = opc == 0x53
        && match f7 {
            0x78 | 0x79 => rs2 == 1 && f3 == 0,
            0x14 | 0x15 => f3 == 2 || f3 == 3,
            0x20 | 0x21 => rs2 == 4 || rs2 == 5,
            0x61 => rs2 == 8 && f3 == 1,
            0x50 | 0x51 => f3 == 4 || f3 == 5,
            _ => false,
        };
    let cbo = opc == 0x0f && f3 == 2 && (w >> 7) & 31 == 0 && matches!(w >> 20, 0 | 1 | 2 | 4);
    zfa || cbo
}

/// 16-bit parcels where we knowingly differ from the oracle, which does not reject reserved RVC
/// encodings, applies the RV32 rule (shamt[5] must be 0) to RV64 shifts, and puts C.AND at
/// bit 12 = 1 instead of 0.
fn known_deviation16(h: u16) -> bool {
    let w = h as u32;
    let (q, f3, b12, rd, rs2) = (w & 3, w >> 13, (w >> 12) & 1, (w >> 7) & 31, (w >> 2) & 31);
    match (q, f3) {
        (0, 0) => (w >> 5) & 0xff == 0,          // C.ADDI4SPN, nzuimm = 0
        (1, 1) => rd == 0,                       // C.ADDIW rd = 0
        (1, 3) => b12 == 0 && rs2 == 0,          // C.LUI / C.ADDI16SP imm = 0
        (1, 4) if (w >> 10) & 3 < 2 => b12 == 1, // C.SRLI/C.SRAI shamt[5]
        (1, 4) if (w >> 10) & 3 == 3 => (w >> 5) & 3 == 3, // C.AND / reserved slot
        (2, 0) => b12 == 1,                      // C.SLLI shamt[5]
        (2, 2) | (2, 3) => rd == 0,              // C.LWSP / C.LDSP rd = 0
        (2, 4) => b12 == 0 && rd == 0 && rs2 == 0, // C.JR x0
        _ => false,
    }
}

#[test]
fn every_compressed_parcel_matches_the_oracle() {
    let t = target();
    let mut checked = 0;
    for h in 0..=u16::MAX {
        if h & 3 == 3 {
            continue;
        }
        let ours = decode16(h);
        assert_eq!(ours.len, 2, "{h:#06x}");
        if known_deviation16(h) {
            continue;
        }
        let oracle = Instruction::from(decode_compressed(h, &t));
        let oracle_illegal = oracle == Instruction::UNIMP;
        assert_eq!(
            ours.is_illegal(),
            oracle_illegal,
            "{h:#06x}: ours {ours:?}, oracle {oracle:?}"
        );
        if !oracle_illegal {
            // The oracle turns every C.ADDI with rd = x0 (a hint) into `c.nop`, dropping imm.
            let nop_hint = h & 0xef83 == 0x0001;
            if nop_hint {
                assert_eq!(
                    (ours.kind, ours.rd, ours.rs1),
                    (Kind::Addi, 0, 0),
                    "{h:#06x}"
                );
            } else if let Err(e) = compare(&ours, &oracle) {
                panic!("{h:#06x}: {e}");
            }
        } else {
            assert_eq!(ours.raw, h as u32, "illegal parcel keeps its bits");
        }
        checked += 1;
    }
    assert!(checked > 40_000, "only {checked} parcels compared");
}

/// The deviations themselves: reserved forms are illegal for us, RV64 shifts and C.AND are not.
#[test]
fn compressed_deviations_follow_the_spec() {
    assert!(decode16(0x0000).is_illegal()); // all-zero parcel
    assert!(decode16(0x0004).is_illegal()); // C.ADDI4SPN x9, 0 (rd' = 1)
    assert!(decode16(0x2001).is_illegal()); // C.ADDIW x0, 0
    assert!(decode16(0x6081).is_illegal()); // C.LUI x1, 0
    assert!(decode16(0x6101).is_illegal()); // C.ADDI16SP 0
    assert!(decode16(0x4002).is_illegal()); // C.LWSP x0
    assert!(decode16(0x6002).is_illegal()); // C.LDSP x0
    assert!(decode16(0x8002).is_illegal()); // C.JR x0
    assert!(decode16(0x9c61).is_illegal()); // reserved (bit12=1, funct2=11, 11)
    let srli = decode16(0x9005); // c.srli x8, 33
    assert_eq!(
        (srli.kind, srli.rd, srli.rs1, srli.imm),
        (Kind::Srli, 8, 8, 33)
    );
    let and = decode16(0x8c65); // c.and x8, x9
    assert_eq!((and.kind, and.rd, and.rs1, and.rs2), (Kind::And, 8, 8, 9));
    let slli = decode16(0x1086); // c.slli x1, 33
    assert_eq!((slli.kind, slli.rd, slli.imm), (Kind::Slli, 1, 33));
}

/// Major opcodes of RV64GC: biasing random words towards them exercises the decoder's fields.
const OPCODES: [u32; 20] = [
    0x03, 0x07, 0x0f, 0x13, 0x17, 0x1b, 0x23, 0x27, 0x2f, 0x33, 0x37, 0x3b, 0x43, 0x47, 0x4b, 0x4f,
    0x53, 0x63, 0x67, 0x73,
];

fn check32(w: u32) -> Result<(), TestCaseError> {
    let ours = decode32(w);
    prop_assert_eq!(ours.len, 4);
    if known_deviation32(w) {
        return Ok(());
    }
    // With every newer extension off, the oracle without them must agree too (their encodings
    // then are illegal, Zfa and CBO ones included).
    let base = decode32_with(w, &CpuFeatures::baseline());
    if oracle_lacks(w) {
        prop_assert!(
            base.is_illegal() && base.raw == w,
            "{:#010x}: {:?}",
            w,
            base
        );
        return Ok(());
    }
    check_against(w, ours, &target())?;
    check_against(w, base, &base_target())
}

fn check_against(w: u32, ours: Op, t: &Target) -> Result<(), TestCaseError> {
    let oracle = decode_full(w, t);
    let oracle_illegal = oracle == Instruction::UNIMP;
    prop_assert_eq!(
        ours.is_illegal(),
        oracle_illegal,
        "{:#010x}: ours {:?}, oracle {:?}",
        w,
        ours,
        oracle
    );
    if oracle_illegal {
        prop_assert_eq!(ours.raw, w);
    } else if let Err(e) = compare(&ours, &oracle) {
        return Err(TestCaseError::fail(format!("{w:#010x}: {e}")));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    #[test]
    fn random_words_match_the_oracle(w in any::<u32>()) {
        check32(w | 3)?;
    }

    #[test]
    fn random_words_of_known_opcodes_match_the_oracle(w in any::<u32>(), k in 0..OPCODES.len()) {
        check32((w & !0x7f) | OPCODES[k])?;
    }

    /// Funct7/funct3 combinations of OP, OP-32 and OP-FP with random registers.
    #[test]
    fn random_register_ops_match_the_oracle(
        f7 in 0u32..128, f3 in 0u32..8, regs in any::<u16>(), rd in 0u32..32, k in 0usize..5
    ) {
        let opc = [0x33, 0x3b, 0x53, 0x13, 0x1b][k];
        let w = f7 << 25 | ((regs as u32 & 0x3ff) << 15) | f3 << 12 | rd << 7 | opc;
        check32(w)?;
    }
}
