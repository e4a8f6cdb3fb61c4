//! Differential testing against QEMU with random RV64GC straight-line programs.
//!
//! Each program seeds all registers, runs ~300 random instructions (ALU, M, shifts, compressed forms,
//! loads/stores in a scratch buffer, F/D arithmetic and conversions with random rounding modes, a few
//! forward branches, and the unprivileged extensions of QEMU 10's rv64: Zba/Zbb/Zbc/Zbs, Zfa,
//! Zicbom/Zicboz on the scratch buffer, Zawrs and the hints), then prints every x and f register
//! and fcsr over the UART and exits. The output under rewind must equal the output under
//! `qemu-system-riscv64 -icount shift=0`.
//!
//! The run prints its seeds. `REWIND_RANDOM_SEED=<seed>` replays exactly one program;
//! `REWIND_RANDOM_COUNT=<n>` changes how many programs a normal run tries (default 30);
//! `REWIND_RANDOM_KEEP=1` keeps the generated sources and ELFs (they are always kept on failure).

#[allow(dead_code)]
mod common;

use common::rng::Rng;
use common::{have_tools, qemu_cmd_cpu, repo_root, rewind_run_cmd, run_ok, Done, Proc};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DEFAULT_COUNT: u64 = 30;
const BODY_LEN: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Integer registers the body may use: everything but x0 and x3 (gp = scratch buffer base).
const XREGS: [u32; 30] = [
    1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    28, 29, 30, 31,
];
/// Registers reachable by the 3-bit fields of compressed instructions.
const CREGS: [u32; 8] = [8, 9, 10, 11, 12, 13, 14, 15];
const RMS: [&str; 6] = ["rne", "rtz", "rdn", "rup", "rmm", "dyn"];
const SCRATCH: u64 = 2048;
/// What the C caller relies on: saved on entry, restored before returning.
const CALLER_STATE: [&str; 16] = [
    "ra", "sp", "gp", "tp", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
    "s11",
];

/// Whether programs use Zicond (czero.eqz/nez), which QEMU 10's default rv64 lacks: both sides
/// then run [`CPU`].
const ZICOND: bool = true;

/// The CPU both emulators run (QEMU's `-cpu`, rewind's `--cpu`): the default plus Zicond.
const CPU: &str = "rv64,h=false,zicond=on";

/// The `-march` the programs are assembled with (Zfa and Zicond are emitted with `.insn`, which
/// binutils 2.40 lacks).
const MARCH: &str = "-march=rv64gc_zba_zbb_zbc_zbs_zicbom_zicboz_zicbop_zawrs_zihintpause";

/// Emits one instruction of the newer extensions.
fn gen_ext(rng: &mut Rng, out: &mut String) {
    let rd = x(*rng.pick(&XREGS));
    let rs1 = x(*rng.pick(&XREGS));
    let rs2 = x(*rng.pick(&XREGS));
    let single = rng.chance(50);
    let fd = freg(rng, single);
    let fs1 = freg(rng, single);
    let fs2 = freg(rng, single);
    // OP-FP funct7 low bits: 0 for single, 1 for double.
    let fmt = if single { 0 } else { 1 };
    match rng.below(20) {
        0..=5 => {
            const OPS: [&str; 25] = [
                "sh1add",
                "sh2add",
                "sh3add",
                "add.uw",
                "sh1add.uw",
                "sh2add.uw",
                "sh3add.uw",
                "andn",
                "orn",
                "xnor",
                "max",
                "maxu",
                "min",
                "minu",
                "rol",
                "rolw",
                "ror",
                "rorw",
                "clmul",
                "clmulh",
                "clmulr",
                "bclr",
                "bext",
                "binv",
                "bset",
            ];
            let _ = writeln!(out, "    {} {rd}, {rs1}, {rs2}", rng.pick(&OPS));
        }
        6..=7 => {
            const OPS: [&str; 11] = [
                "clz", "clzw", "ctz", "ctzw", "cpop", "cpopw", "sext.b", "sext.h", "zext.h",
                "orc.b", "rev8",
            ];
            let _ = writeln!(out, "    {} {rd}, {rs1}", rng.pick(&OPS));
        }
        8..=9 => {
            let (op, max) = *rng.pick(&[
                ("rori", 64),
                ("roriw", 32),
                ("slli.uw", 64),
                ("bclri", 64),
                ("bexti", 64),
                ("binvi", 64),
                ("bseti", 64),
            ]);
            let _ = writeln!(out, "    {op} {rd}, {rs1}, {}", rng.below(max));
        }
        10 if ZICOND => {
            let f3 = if rng.chance(50) { 5 } else { 7 };
            let _ = writeln!(out, "    .insn r 0x33, {f3}, 7, {rd}, {rs1}, {rs2}");
        }
        10..=11 => {
            // fli.s / fli.d: rs1 is the table index, rs2 = 1.
            let _ = writeln!(
                out,
                "    .insn r 0x53, 0, {}, {fd}, x{}, x1",
                0x78 + fmt,
                rng.below(32)
            );
        }
        12..=13 => {
            // fminm (2) / fmaxm (3).
            let f3 = 2 + rng.below(2);
            let _ = writeln!(
                out,
                "    .insn r 0x53, {f3}, {}, {fd}, {fs1}, {fs2}",
                0x14 + fmt
            );
        }
        14..=15 => {
            // fround (rs2 = 4) / froundnx (5) with a static or the dynamic rounding mode.
            let rm = *rng.pick(&[0, 1, 2, 3, 4, 7]);
            let _ = writeln!(
                out,
                "    .insn r 0x53, {rm}, {}, {fd}, {fs1}, x{}",
                0x20 + fmt,
                4 + rng.below(2)
            );
        }
        16 => {
            // fleq (4) / fltq (5).
            let f3 = 4 + rng.below(2);
            let _ = writeln!(
                out,
                "    .insn r 0x53, {f3}, {}, {rd}, {fs1}, {fs2}",
                0x50 + fmt
            );
        }
        17 => {
            let fs = freg(rng, false);
            let _ = writeln!(out, "    .insn r 0x53, 1, 0x61, {rd}, {fs}, x8"); // fcvtmod.w.d
        }
        18 => {
            // A cache-block operation on the scratch buffer (64-byte aligned, so cbo.zero stays
            // inside it).
            let op = rng.pick(&["cbo.zero", "cbo.clean", "cbo.flush", "cbo.inval"]);
            let _ = writeln!(out, "    addi {rd}, gp, {}", rng.below(SCRATCH));
            let _ = writeln!(out, "    {op} ({rd})");
        }
        _ => {
            let off = rng.below(32) * 32;
            let hints = [
                "wrs.nto".to_string(),
                "wrs.sto".to_string(),
                "pause".to_string(),
                format!("prefetch.r {off}(gp)"),
                format!("prefetch.w {off}(gp)"),
                format!("prefetch.i {off}(gp)"),
                format!(".insn r 0x33, 0, 0, x0, x0, x{}", 2 + off % 4), // ntl.*
                format!(".2byte {:#x}", 0x900a + 4 * (off % 4)),         // c.ntl.*
            ];
            let hint = rng.pick(&hints);
            let _ = writeln!(out, "    {hint}");
        }
    }
}

/// An FP register from the bank of the given precision (90%) or any register.
fn freg(rng: &mut Rng, single: bool) -> String {
    let r = if rng.chance(90) {
        rng.below(16) + if single { 0 } else { 16 }
    } else {
        rng.below(32)
    };
    format!("f{r}")
}

fn x(r: u32) -> String {
    format!("x{r}")
}

/// Emits one random instruction (or a short group) into `out`.
fn gen_insn(rng: &mut Rng, out: &mut String, label: &mut u32, pending: &mut Vec<(usize, u32)>) {
    let rd = x(*rng.pick(&XREGS));
    let rs1 = x(*rng.pick(&XREGS));
    let rs2 = x(*rng.pick(&XREGS));
    // f0-f15 mostly hold singles and f16-f31 doubles, so that most FP operations see values of their
    // own precision (the rest exercise NaN boxing).
    let single = rng.chance(50);
    let p = if single { "s" } else { "d" };
    let fd = freg(rng, single);
    let fs1 = freg(rng, single);
    let fs2 = freg(rng, single);
    let fs3 = freg(rng, single);
    let rm = *rng.pick(&RMS);
    if rng.chance(15) {
        gen_ext(rng, out);
        return;
    }
    match rng.below(100) {
        0..=19 => {
            const OPS: [&str; 28] = [
                "add", "sub", "sll", "srl", "sra", "slt", "sltu", "xor", "or", "and", "addw",
                "subw", "sllw", "srlw", "sraw", "mul", "mulh", "mulhsu", "mulhu", "div", "divu",
                "rem", "remu", "mulw", "divw", "divuw", "remw", "remuw",
            ];
            let _ = writeln!(out, "    {} {rd}, {rs1}, {rs2}", rng.pick(&OPS));
        }
        20..=31 => {
            let imm = rng.below(4096) as i64 - 2048;
            match rng.below(9) {
                0 => _ = writeln!(out, "    addi {rd}, {rs1}, {imm}"),
                1 => _ = writeln!(out, "    slti {rd}, {rs1}, {imm}"),
                2 => _ = writeln!(out, "    sltiu {rd}, {rs1}, {imm}"),
                3 => _ = writeln!(out, "    xori {rd}, {rs1}, {imm}"),
                4 => _ = writeln!(out, "    andi {rd}, {rs1}, {imm}"),
                5 => _ = writeln!(out, "    addiw {rd}, {rs1}, {imm}"),
                6 => {
                    let op = rng.pick(&["slli", "srli", "srai"]);
                    let _ = writeln!(out, "    {op} {rd}, {rs1}, {}", rng.below(64));
                }
                7 => {
                    let op = rng.pick(&["slliw", "srliw", "sraiw"]);
                    let _ = writeln!(out, "    {op} {rd}, {rs1}, {}", rng.below(32));
                }
                _ => _ = writeln!(out, "    lui {rd}, {}", rng.below(1 << 20)),
            }
        }
        32..=43 => {
            // Compressed forms, written explicitly so the assembler cannot pick otherwise.
            let cd = x(*rng.pick(&CREGS));
            let cs = x(*rng.pick(&CREGS));
            let nz = |rng: &mut Rng| {
                let v = rng.below(63) as i64 - 32;
                if v == 0 {
                    1
                } else {
                    v
                }
            };
            match rng.below(12) {
                0 => _ = writeln!(out, "    c.add {rd}, {rs2}"),
                1 => _ = writeln!(out, "    c.mv {rd}, {rs2}"),
                2 => _ = writeln!(out, "    c.addi {rd}, {}", nz(rng)),
                3 => _ = writeln!(out, "    c.li {rd}, {}", rng.below(64) as i64 - 32),
                4 => _ = writeln!(out, "    c.slli {rd}, {}", 1 + rng.below(63)),
                5 => {
                    let op = rng.pick(&["c.srli", "c.srai"]);
                    let _ = writeln!(out, "    {op} {cd}, {}", 1 + rng.below(63));
                }
                6 => _ = writeln!(out, "    c.andi {cd}, {}", rng.below(64) as i64 - 32),
                7 => {
                    let op = rng.pick(&["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"]);
                    let _ = writeln!(out, "    {op} {cd}, {cs}");
                }
                8 => _ = writeln!(out, "    c.addiw {rd}, {}", rng.below(64) as i64 - 32),
                9 => {
                    let r = loop {
                        let r = *rng.pick(&XREGS);
                        if r != 2 {
                            break r;
                        }
                    };
                    let v = rng.below(63) + 1;
                    let v = if v >= 32 { 0xfffe0 + (v - 32) } else { v };
                    let _ = writeln!(out, "    c.lui x{r}, {v:#x}");
                }
                10 => _ = writeln!(out, "    c.nop"),
                _ => {
                    // c.beqz / c.bnez over the next few instructions.
                    let op = rng.pick(&["c.beqz", "c.bnez"]);
                    *label += 1;
                    let _ = writeln!(out, "    {op} {cs}, .Lb{label}");
                    pending.push((1 + rng.below(3) as usize, *label));
                }
            }
        }
        44..=55 => {
            // Loads and stores within the scratch buffer (gp), naturally aligned.
            let (op, size, fp) = *rng.pick(&[
                ("lb", 1, false),
                ("lbu", 1, false),
                ("lh", 2, false),
                ("lhu", 2, false),
                ("lw", 4, false),
                ("lwu", 4, false),
                ("ld", 8, false),
                ("sb", 1, false),
                ("sh", 2, false),
                ("sw", 4, false),
                ("sd", 8, false),
                ("flw", 4, true),
                ("fld", 8, true),
                ("fsw", 4, true),
                ("fsd", 8, true),
            ]);
            let off = rng.below(SCRATCH / size) * size;
            let reg = if fp {
                freg(rng, size == 4)
            } else if op.starts_with('s') {
                rs2.clone()
            } else {
                rd.clone()
            };
            let _ = writeln!(out, "    {op} {reg}, {off}(gp)");
        }
        56..=59 => {
            // Forward branch over 1..4 instructions.
            let op = rng.pick(&["beq", "bne", "blt", "bge", "bltu", "bgeu"]);
            *label += 1;
            let _ = writeln!(out, "    {op} {rs1}, {rs2}, .Lb{label}");
            pending.push((1 + rng.below(4) as usize, *label));
        }
        60..=77 => match rng.below(6) {
            0 | 1 => {
                let op = rng.pick(&["fadd", "fsub", "fmul", "fdiv"]);
                let _ = writeln!(out, "    {op}.{p} {fd}, {fs1}, {fs2}, {rm}");
            }
            2 => {
                let op = rng.pick(&["fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"]);
                let _ = writeln!(out, "    {op}.{p} {fd}, {fs1}, {fs2}");
            }
            3 => {
                let op = rng.pick(&["fmadd", "fmsub", "fnmadd", "fnmsub"]);
                let _ = writeln!(out, "    {op}.{p} {fd}, {fs1}, {fs2}, {fs3}, {rm}");
            }
            4 => _ = writeln!(out, "    fsqrt.{p} {fd}, {fs1}, {rm}"),
            _ => {
                let op = rng.pick(&["feq", "flt", "fle"]);
                let _ = writeln!(out, "    {op}.{p} {rd}, {fs1}, {fs2}");
            }
        },
        78..=91 => {
            // Conversions and moves between the register files.
            let i = rng.pick(&["w", "wu", "l", "lu"]);
            match rng.below(7) {
                0 | 1 => _ = writeln!(out, "    fcvt.{i}.{p} {rd}, {fs1}, {rm}"),
                2 | 3 => {
                    // int -> double from 32 bits is exact: the assembler takes no rounding mode.
                    if p == "d" && (*i == "w" || *i == "wu") {
                        let _ = writeln!(out, "    fcvt.{p}.{i} {fd}, {rs1}");
                    } else {
                        let _ = writeln!(out, "    fcvt.{p}.{i} {fd}, {rs1}, {rm}");
                    }
                }
                4 => {
                    if rng.chance(50) {
                        let (d, s1) = (freg(rng, true), freg(rng, false));
                        let _ = writeln!(out, "    fcvt.s.d {d}, {s1}, {rm}");
                    } else {
                        let (d, s1) = (freg(rng, false), freg(rng, true));
                        let _ = writeln!(out, "    fcvt.d.s {d}, {s1}");
                    }
                }
                5 => {
                    let op = rng.pick(&["fmv.x.w", "fmv.x.d", "fclass.s", "fclass.d"]);
                    let _ = writeln!(out, "    {op} {rd}, {fs1}");
                }
                _ => {
                    let op = rng.pick(&["fmv.w.x", "fmv.d.x"]);
                    let _ = writeln!(out, "    {op} {fd}, {rs1}");
                }
            }
        }
        92..=94 => {
            // Change the dynamic rounding mode (only valid values: 5..7 would trap on dyn ops).
            let _ = writeln!(out, "    fsrmi {}", rng.below(5));
        }
        95..=96 => {
            let _ = writeln!(out, "    csrrs {rd}, fflags, x0");
        }
        _ => {
            // auipc: the value depends only on the (fixed) link address.
            let _ = writeln!(out, "    auipc {rd}, {}", rng.below(1 << 20));
        }
    }
}

/// Generates the assembly source of one random program.
fn generate(seed: u64) -> String {
    let mut rng = Rng(seed);
    let mut s = String::new();
    let _ = writeln!(s, "# random RV64GC program, seed {seed:#x}");
    s.push_str(
        "    .text\n    .globl random_test\n    .align 2\nrandom_test:\n\
         \x20   la t0, saved_state\n",
    );
    // Save everything the C caller relies on.
    for (i, r) in CALLER_STATE.iter().enumerate() {
        let _ = writeln!(s, "    sd {r}, {}(t0)", i * 8);
    }
    // Seed FP registers from a table, then integer registers with li.
    s.push_str("    la t0, fp_seed\n");
    for f in 0..32 {
        let _ = writeln!(s, "    fld f{f}, {}(t0)", f * 8);
    }
    let _ = writeln!(s, "    fsrmi {}", rng.below(5));
    s.push_str("    csrwi fflags, 0\n    la gp, scratch\n");
    for r in XREGS {
        let _ = writeln!(s, "    li x{r}, {:#x}", rng.interesting());
    }
    s.push_str("    .option rvc\n");
    let mut label = 0u32;
    let mut pending: Vec<(usize, u32)> = Vec::new();
    for _ in 0..BODY_LEN {
        gen_insn(&mut rng, &mut s, &mut label, &mut pending);
        // Place branch targets once their distance has been covered.
        for p in pending.iter_mut() {
            p.0 -= 1;
        }
        for (_, l) in pending.iter().filter(|p| p.0 == 0) {
            let _ = writeln!(s, ".Lb{l}:");
        }
        pending.retain(|p| p.0 > 0);
    }
    for (_, l) in &pending {
        let _ = writeln!(s, ".Lb{l}:");
    }
    // Epilogue: dump x1..x31 (gp = x3 holds the scratch address), fcsr and f0..f31.
    s.push_str("    la gp, reg_dump\n");
    for r in 1..32 {
        if r != 3 {
            let _ = writeln!(s, "    sd x{r}, {}(gp)", r * 8);
        }
    }
    s.push_str("    frcsr t0\n    sd t0, 0(gp)\n");
    for f in 0..32 {
        let _ = writeln!(s, "    fsd f{f}, {}(gp)", (32 + f) * 8);
    }
    s.push_str("    la t0, saved_state\n");
    for (i, r) in CALLER_STATE.iter().enumerate() {
        let _ = writeln!(s, "    ld {r}, {}(t0)", i * 8);
    }
    s.push_str("    ret\n\n    .data\n    .align 3\nfp_seed:\n");
    for f in 0..32 {
        let _ = writeln!(s, "    .dword {:#x}", rng.fp_bits(f < 16));
    }
    // 64-byte aligned: cbo.zero on an address inside it clears only scratch bytes.
    s.push_str("    .align 6\nscratch:\n");
    for _ in 0..SCRATCH / 8 {
        let _ = writeln!(s, "    .dword {:#x}", rng.interesting());
    }
    s.push_str("    .bss\n    .align 3\nsaved_state:\n    .zero 128\n    .globl reg_dump\nreg_dump:\n    .zero 512\n");
    s
}

/// The C side: call the program, print the dump.
const MAIN_C: &str = r#"
#include "guest.h"
extern void random_test(void);
extern uint64_t reg_dump[64];
int main(void)
{
    random_test();
    for (int i = 1; i < 32; i++)
        if (i != 3)
            printf("x%d %016lx\n", i, reg_dump[i]);
    printf("fcsr %lx\n", reg_dump[0]);
    for (int i = 0; i < 32; i++)
        printf("f%d %016lx\n", i, reg_dump[32 + i]);
    puts_("random done\n");
    return 0;
}
"#;

/// Assembles and links one program with the common guest runtime; returns the ELF path.
fn build(dir: &Path, seed: u64) -> PathBuf {
    let guests = repo_root().join("guests");
    let common = guests.join("common");
    let asm = dir.join(format!("random_{seed:016x}.S"));
    let main_c = dir.join("main.c");
    let elf = dir.join(format!("random_{seed:016x}.elf"));
    std::fs::write(&asm, generate(seed)).expect("write program");
    if !main_c.exists() {
        std::fs::write(&main_c, MAIN_C).expect("write main.c");
    }
    let mut gcc = Command::new("riscv64-unknown-elf-gcc");
    gcc.args([
        MARCH,
        "-mabi=lp64d",
        "-mcmodel=medany",
        "-nostdlib",
        "-ffreestanding",
    ])
    .args([
        "-fno-builtin",
        "-static",
        "-O2",
        "-Wl,--no-warn-rwx-segments",
        "-I",
    ])
    .arg(&common)
    .arg("-T")
    .arg(common.join("link.ld"))
    .arg(common.join("start.S"))
    .arg(common.join("lib.c"))
    .arg(&main_c)
    .arg(&asm)
    .arg("-o")
    .arg(&elf);
    run_ok(
        &mut gcc,
        &format!("seed {seed:#x}: assembling {}", asm.display()),
    );
    elf
}

/// Runs `cmd` with empty stdin, killing it after the timeout (a timeout is a failure of the
/// seed, reported with the others, not a panic).
fn run(cmd: Command) -> Done {
    Proc::spawn(cmd, None).wait(TIMEOUT)
}

/// Line-by-line differences, for a readable failure message.
fn diff(qemu: &str, rewind: &str) -> String {
    let q: Vec<&str> = qemu.lines().collect();
    let r: Vec<&str> = rewind.lines().collect();
    let mut s = String::new();
    for i in 0..q.len().max(r.len()) {
        let a = q.get(i).copied().unwrap_or("<missing>");
        let b = r.get(i).copied().unwrap_or("<missing>");
        if a != b {
            let _ = writeln!(s, "  qemu: {a:<30} rewind: {b}");
        }
    }
    s
}

/// Checks one seed; returns a failure description.
fn check_seed(dir: &Path, seed: u64) -> Result<(), String> {
    let elf = build(dir, seed);
    let Done {
        stdout: q,
        code: qcode,
        stderr: qerr,
        ..
    } = run(qemu_cmd_cpu(&elf, CPU));
    if qcode != Some(0) || !q.ends_with("random done\n") {
        return Err(format!(
            "seed {seed:#x}: QEMU did not complete the program (exit {qcode:?}): {qerr}\n{q}"
        ));
    }
    let Done {
        stdout: r,
        code: rcode,
        stderr: rerr,
        ..
    } = run({
        let mut cmd = rewind_run_cmd(&elf);
        cmd.args(["--cpu", CPU]);
        cmd
    });
    if rcode != Some(0) || r != q {
        return Err(format!(
            "seed {seed:#x}: rewind differs from QEMU (rewind exit {rcode:?}); program: {}\n{}{}",
            elf.with_extension("S").display(),
            diff(&q, &r),
            if rerr.is_empty() {
                String::new()
            } else {
                format!("rewind stderr:\n{rerr}")
            }
        ));
    }
    Ok(())
}

#[test]
fn generator_is_deterministic() {
    assert_eq!(generate(42), generate(42));
    assert_ne!(generate(42), generate(43));
    let p = generate(7);
    assert!(p.contains("c."), "compressed instructions are generated");
    let many: String = (0..20).map(generate).collect();
    for ext in ["sh2add", "clmul", "bset", ".insn r 0x53", "cbo.", "rev8"] {
        assert!(many.contains(ext), "{ext} is generated");
    }
    assert_eq!(many.contains(".insn r 0x33, 5, 7,"), ZICOND);
    assert!(p.matches('\n').count() > BODY_LEN, "program has a body");
}

#[test]
fn random_programs_match_qemu() {
    if !have_tools(&["riscv64-unknown-elf-gcc", "qemu-system-riscv64"]) {
        return;
    }
    let seeds: Vec<u64> = match std::env::var("REWIND_RANDOM_SEED") {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            vec![parsed.expect("REWIND_RANDOM_SEED must be a decimal or 0x-hex u64")]
        }
        Err(_) => {
            let count = std::env::var("REWIND_RANDOM_COUNT")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(DEFAULT_COUNT);
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let mut rng = Rng(base);
            (0..count).map(|_| rng.next()).collect()
        }
    };
    eprintln!(
        "random programs: seeds {}",
        seeds
            .iter()
            .map(|s| format!("{s:#x}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let dir = std::env::temp_dir().join(format!("rewind-random-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut failures = Vec::new();
    for &seed in &seeds {
        if let Err(e) = check_seed(&dir, seed) {
            failures.push(e);
        }
    }
    if failures.is_empty() && std::env::var_os("REWIND_RANDOM_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("programs kept in {}", dir.display());
    }
    assert!(
        failures.is_empty(),
        "{} of {} random programs failed (replay one with REWIND_RANDOM_SEED=<seed>):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}
