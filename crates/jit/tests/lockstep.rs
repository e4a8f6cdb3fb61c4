//! Lockstep: random looping programs run on two harts, one interpreting and one with the JIT,
//! in slices of random budgets; after every slice the architectural state, the exit reason and
//! the device stores seen so far (with the icount each happened at) must be identical.
//!
//! The programs mix what the JIT translates (RV64I/M ALU ops, compressed forms, loads and stores
//! in a scratch buffer, forward branches, the loop's back edge, FP, AMOs, CSR ops) with device
//! loads and stores (which end a region), loads from an address with no memory (an access fault
//! in the middle of a translated block, whose handler skips the instruction), and CSR writes
//! that end a region: an interrupt they unmask, `satp`, a counter deadline. Half the programs
//! run their loop in S-mode (M-mode CSRs are illegal there). `REWIND_LOCKSTEP_SEED=<n>` runs one
//! program.

#[path = "../../cpu/tests/asm/mod.rs"]
mod asm;

use asm::*;
use rewind_cpu::{ExitReason, Hart, Mmio, MmioFault, Ram};

const BASE: u64 = 0x8000_0000;
const DEV: u64 = 0x1000_0000;

/// A device window at `DEV` that logs stores with their icount and reads back a counter.
#[derive(Default, PartialEq, Debug)]
struct Bus {
    log: Vec<(u64, u8, u64, u64)>,
    reads: u64,
}

impl Mmio for Bus {
    fn load(&mut self, _: &mut Ram, paddr: u64, size: u8, icount: u64) -> Result<u64, MmioFault> {
        if (DEV..DEV + 0x1000).contains(&paddr) {
            self.reads += 1;
            self.log.push((paddr, size, 0, icount));
            Ok(self.reads * 0x1234_5678 + icount)
        } else {
            Err(MmioFault)
        }
    }
    fn store(
        &mut self,
        _: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        if (DEV..DEV + 0x1000).contains(&paddr) {
            self.log.push((paddr, size, value, icount));
            Ok(())
        } else {
            Err(MmioFault)
        }
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn reg(&mut self) -> u32 {
        self.below(32) as u32
    }
    /// A destination: x1..=x24 (x25 and x26 = interrupts and exceptions taken, x27 = device
    /// base, x28 = fault address, x29 = handler temporary, x30 = scratch base, x31 = loop
    /// counter).
    fn rd(&mut self) -> u32 {
        1 + self.below(24) as u32
    }
}

/// Page offset of a data area in the code page (never executed): stores there take the store
/// helper (the page holds decoded code) without invalidating anything.
const CODE_DATA: i32 = 20;
/// Its size in bytes.
const CODE_DATA_LEN: i32 = 248;
/// Page offset of a subroutine `jalr x0, 0(x29)` right after the data: calls to it return
/// through the translated indirect jump cache.
const SUB: i32 = CODE_DATA + CODE_DATA_LEN;

/// One random instruction of the loop body (no control transfer but calls to `SUB`); `at` is
/// the page offset where `p` starts.
fn body_op(rng: &mut Rng, p: &mut Prog, at: i32) {
    let here = at + p.here();
    let (rd, rs1, rs2) = (rng.rd(), rng.reg(), rng.reg());
    let imm = rng.below(4096) as i32 - 2048;
    match rng.below(22) {
        0 => p.w(addi(rd, rs1, imm)),
        1 => p.w(addiw(rd, rs1, imm)),
        2 => p.w(xori(rd, rs1, imm)),
        3 => p.w(slli(rd, rs1, rng.below(64) as u32)),
        4 => p.w(srai(rd, rs1, rng.below(64) as u32)),
        5 => p.w(sraiw(rd, rs1, rng.below(32) as u32)),
        6 => p.w(lui(rd, rng.next() as u32)),
        7 => p.w(auipc(rd, rng.next() as u32)),
        8 => {
            let f = [
                add, sub, sll, slt, sltu, xor, sra, addw, subw, sllw, srlw, sraw,
            ];
            p.w(f[rng.below(f.len() as u64) as usize](rd, rs1, rs2))
        }
        // M: mul, mulh, mulhsu, mulhu, div, divu, rem, remu and the W forms.
        9 => p.w(mop(rng.below(8) as u32, rd, rs1, rs2)),
        10 => p.w(mopw([0, 4, 5, 6, 7][rng.below(5) as usize], rd, rs1, rs2)),
        11 | 12 => {
            // Loads and stores in the scratch buffer, naturally aligned.
            let size = 1u32 << rng.below(4);
            let off = (rng.below(2048 / size as u64) * size as u64) as i32;
            let f3 = match size {
                1 => 0,
                2 => 1,
                4 => 2,
                _ => 3,
            };
            if rng.below(2) == 0 {
                let f3 = if size < 8 && rng.below(2) == 0 {
                    f3 | 4
                } else {
                    f3
                };
                p.w(load(f3, rd, 30, off))
            } else {
                p.w(store(f3, rs2, 30, off))
            }
        }
        13 => p.h(c_addi(rd, ((rng.below(63) as i32) - 31) | 1)),
        14 => p.h(c_add(rd, 1 + rng.below(31) as u32)),
        15 => p.h(c_mv(rd, 1 + rng.below(31) as u32)),
        16 => csr_op(rng, p, rd, rs1),
        17 => match rng.below(10) {
            0 => p.w(store(3, rs2, 27, 8 * rng.below(8) as i32)),
            1 => p.w(load(3, rd, 27, 8 * rng.below(8) as i32)),
            // An access fault in the middle of a block (the handler skips it).
            2 => p.w(load(3, rd, 28, 0)),
            3 => p.w(store(2, rs2, 28, 4)),
            // Misaligned accesses in RAM (the helpers do them, as QEMU, without a trap).
            4 => p.w(load(
                [1, 2, 3, 5, 6][rng.below(5) as usize],
                rd,
                30,
                1 + 2 * rng.below(1000) as i32,
            )),
            5 => p.w(store(
                1 + rng.below(3) as u32,
                rs2,
                30,
                1 + 2 * rng.below(1000) as i32,
            )),
            // A store into the code page, next to the code.
            6 if CODE_DATA + CODE_DATA_LEN - 8 - here >= -2048 => {
                p.w(auipc(rd, 0));
                let k = rng.below(CODE_DATA_LEN as u64 / 8) as i32;
                p.w(sd(rs2, rd, CODE_DATA + 8 * k - here))
            }
            // A call on the same page: its return is an indirect jump back into the region.
            7 => p.w(jal(29, SUB - here)),
            _ => p.w(addi(rd, rs1, imm)),
        },
        18 | 19 => {
            fp_amo_op(rng, p);
            p
        }
        20 => p.w(bitmanip_op(rng, rd, rs1, rs2)),
        _ => csr_op(rng, p, rd, rs1),
    };
}

/// One CSR op (translated as a call of the interpreter's code): counter and clock reads (icount
/// exact at the op), scratch registers, `fflags`/`frm`/`fcsr`, illegal accesses (writes to
/// read-only CSRs, unknown CSRs, M-mode CSRs from S-mode), and writes that end the region:
/// `mip.SSIP` / `mie.SSIE` / `mstatus.MIE` (an interrupt unmasked mid-region, taken at once),
/// `satp` (fetch translation), `mcountinhibit` (the machine loop's counter deadline).
fn csr_op<'a>(rng: &mut Rng, p: &'a mut Prog, rd: u32, rs1: u32) -> &'a mut Prog {
    let pick = |rng: &mut Rng, v: &[u32]| v[rng.below(v.len() as u64) as usize];
    match rng.below(16) {
        0 | 1 => {
            let a = pick(
                rng,
                &[0xb02, 0xb00, 0xc00, 0xc01, 0xc02, 0x340, 0x140, 0x300],
            );
            p.w(csr(2, rd, 0, a))
        }
        2 => p.w(csr(1, rd, rs1, pick(rng, &[0x340, 0x140]))),
        3 => p.w(csr(pick(rng, &[1, 2, 3]), rd, rs1, pick(rng, &[1, 2, 3]))),
        4 => p.w(csr(
            pick(rng, &[5, 6, 7]),
            rd,
            rng.below(32) as u32,
            pick(rng, &[1, 2, 3]),
        )),
        // Illegal: a write to a read-only counter or mvendorid, an unknown CSR.
        5 => p.w(csr(1, rd, rs1, pick(rng, &[0xc00, 0xc02, 0xf11]))),
        6 => p.w(csr(2, rd, rng.rd(), 0xf11)),
        7 => p.w(csr(2, rd, 0, 0x8ff)),
        // mip.SSIP, mie.SSIE, mstatus.MIE set or cleared (set all three: an interrupt).
        8 | 9 => p.w(csr(
            pick(rng, &[6, 7]),
            0,
            2,
            pick(rng, &[0x344, 0x304, 0x344, 0x304]),
        )),
        10 => p.w(csr(pick(rng, &[6, 6, 7]), 0, 8, 0x300)),
        11 => p.w(csr(1, 0, 0, 0x180)),
        12 => p.w(csr(5, 0, rng.below(8) as u32, 0x320)),
        13 => p.w(csr(1, 0, rs1, pick(rng, &[0xb02, 0xb00]))),
        // sstatus.FS (S-mode's view of it).
        14 => {
            p.w(lui(rd, 0x2000));
            p.w(csr(if rng.below(3) == 0 { 3 } else { 2 }, 0, rd, 0x100))
        }
        _ => p.w(csr(2, rd, 0, pick(rng, &[0x342, 0x341, 0x344, 0x304]))),
    }
}

/// One Zba/Zbb/Zbs instruction the JIT translates inline.
fn bitmanip_op(rng: &mut Rng, rd: u32, rs1: u32, rs2: u32) -> u32 {
    let sh = rng.below(64) as u32;
    let pick = |rng: &mut Rng, v: &[u32]| v[rng.below(v.len() as u64) as usize];
    match rng.below(12) {
        // clz/ctz/cpop and the W forms.
        0 => i(0x600 | rng.below(3) as i32, rs1, 1, rd, 0x13),
        1 => i(0x600 | rng.below(3) as i32, rs1, 1, rd, 0x1b),
        2 => i(0x287, rs1, 5, rd, 0x13), // orc.b
        // rol/ror and rolw/rorw, rori, roriw.
        3 => r(
            0x30,
            rs2,
            rs1,
            pick(rng, &[1, 5]),
            rd,
            pick(rng, &[0x33, 0x3b]),
        ),
        4 => i((0x600 | sh) as i32, rs1, 5, rd, 0x13),
        5 => i((0x600 | (sh & 31)) as i32, rs1, 5, rd, 0x1b),
        // bclr/binv/bset, bext, their immediate forms.
        6 => r(pick(rng, &[0x24, 0x34, 0x14]), rs2, rs1, 1, rd, 0x33),
        7 => r(0x24, rs2, rs1, 5, rd, 0x33),
        8 => i(
            (pick(rng, &[0x480, 0x680, 0x280]) | sh) as i32,
            rs1,
            1,
            rd,
            0x13,
        ),
        9 => i((0x480 | sh) as i32, rs1, 5, rd, 0x13),
        10 => i((0x080 | sh) as i32, rs1, 1, rd, 0x1b), // slli.uw
        _ => r(0x10, rs2, rs1, pick(rng, &[2, 4, 6]), rd, 0x3b), // shNadd.uw
    }
}

/// R4-type fused multiply-add: `opc` 0x43 fmadd, 0x47 fmsub, 0x4b fnmsub, 0x4f fnmadd; `fmt`
/// 0 = .s, 1 = .d.
fn fma(opc: u32, fmt: u32, rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    rs3 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | opc
}

/// One F/D, LR/SC or AMO instruction (translated as calls of the interpreter's code), or a
/// change of `frm` or `mstatus.FS` (interpreted): rounding modes static, dynamic and reserved,
/// single-precision operands that are not NaN-boxed (after `fld`), FP loads and stores that
/// fault or reach a device in the middle of a block, FP ops with FS = Off.
fn fp_amo_op(rng: &mut Rng, p: &mut Prog) {
    let (rd, rs1, rs2) = (rng.rd(), rng.reg(), rng.reg());
    let (fd, f1, f2, f3) = (rng.reg(), rng.reg(), rng.reg(), rng.reg());
    // 0-4 static, 7 dynamic (frm), 5 reserved (illegal).
    let rm = [0, 1, 2, 3, 4, 7, 7, 5][rng.below(8) as usize];
    let s = rng.below(2) as u32;
    let pick = |rng: &mut Rng, v: &[u32]| v[rng.below(v.len() as u64) as usize];
    match rng.below(18) {
        0 => p.w(fp(pick(rng, &[0x00, 0x04, 0x08, 0x0c]) | s, fd, f1, f2, rm)),
        1 => p.w(fp(0x2c | s, fd, f1, 0, rm)),
        2 => p.w(fma(
            pick(rng, &[0x43, 0x47, 0x4b, 0x4f]),
            s,
            fd,
            f1,
            f2,
            f3,
            rm,
        )),
        3 => p.w(fp(0x10 | s, fd, f1, f2, rng.below(3) as u32)),
        4 => p.w(fp(0x14 | s, fd, f1, f2, rng.below(2) as u32)),
        // fle/flt/feq, fmv.x.w/d and fclass, fcvt to integer: integer results.
        5 => p.w(fp(0x50 | s, rd, f1, f2, rng.below(3) as u32)),
        6 => p.w(fp(0x70 | s, rd, f1, 0, rng.below(2) as u32)),
        7 => p.w(fp(0x60 | s, rd, f1, rng.below(4) as u32, rm)),
        8 => p.w(fp(0x68 | s, fd, rs1, rng.below(4) as u32, rm)),
        9 => p.w(if s == 0 {
            fp(0x20, fd, f1, 1, rm)
        } else {
            fp(0x21, fd, f1, 0, rm)
        }),
        10 => p.w(fp(0x78 | s, fd, rs1, 0, 0)),
        11 => {
            let off = 8 * rng.below(256) as i32;
            p.w(match rng.below(4) {
                0 => flw(fd, 30, off),
                1 => fld(fd, 30, off),
                2 => fsw(f2, 30, off),
                _ => fsd(f2, 30, off),
            })
        }
        12 => p.w(match rng.below(5) {
            // Access faults, a device, misaligned (done by the helper, as QEMU).
            0 => fld(fd, 28, 0),
            1 => fsw(f2, 28, 4),
            2 => fsd(f2, 27, 8 * rng.below(8) as i32),
            3 => fld(fd, 27, 8 * rng.below(8) as i32),
            _ => flw(fd, 30, 1 + 2 * rng.below(1000) as i32),
        }),
        13 => {
            // AMOs on the scratch buffer.
            p.w(addi(rd, 30, 8 * rng.below(32) as i32));
            let f5 = pick(rng, &[0x01, 0x00, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c]);
            p.w(amo(f5, 2 + rng.below(2) as u32, rng.rd(), rd, rs2))
        }
        14 => {
            // LR then SC, to the same address or (every third) the next doubleword.
            let a = rng.rd();
            p.w(addi(a, 30, 8 * rng.below(4) as i32));
            let w = 2 + rng.below(2) as u32;
            let t = rng.rd();
            p.w(amo(0x02, w, t, a, 0));
            if rng.below(3) == 0 {
                p.w(addi(a, a, 8));
            }
            p.w(amo(0x03, w, rng.rd(), a, rs2))
        }
        15 => match rng.below(3) {
            // An AMO on a device register, one that faults, one misaligned.
            0 => p.w(amo(0x00, 3, rd, 27, rs2)),
            1 => p.w(amo(0x01, 2, rd, 28, rs2)),
            _ => {
                p.w(addi(rd, 30, 4));
                p.w(amo(0x00, 3, rng.rd(), rd, rs2))
            }
        },
        // frm = 0..7 (5-7 make dynamic-rounding ops illegal).
        16 => p.w(csr(5, 0, rng.below(8) as u32, 0x002)),
        // mstatus.FS: Off (FP ops trap mid-block; the handler skips them) or back on.
        _ => {
            p.w(lui(rd, 0x2000));
            p.w(csr(if rng.below(3) == 0 { 3 } else { 2 }, 0, rd, 0x300))
        }
    };
}

/// Page offset of the trap handler (after `SUB`), and its length in bytes.
const HANDLER: i32 = SUB + 4;
const HANDLER_LEN: i32 = 40;

/// The trap handler (M-mode, at `HANDLER`, reached from `mtvec` = BASE + 4): an exception skips
/// the faulting instruction (only 32-bit ops fault here) and counts in x26; an interrupt (only
/// SSIP is ever pending) clears `mip.SSIP` and counts in x25. Clobbers x29.
fn handler(p: &mut Prog) {
    let start = p.here();
    p.w(csr(2, 29, 0, 0x342)); // csrr x29, mcause
    p.w(blt(29, 0, 24)); // interrupt
    p.w(csr(2, 29, 0, 0x341));
    p.w(addi(29, 29, 4));
    p.w(csr(1, 0, 29, 0x341));
    p.w(addi(26, 26, 1));
    p.w(MRET);
    p.w(csr(7, 0, 2, 0x344)); // csrci mip, SSIP
    p.w(addi(25, 25, 1));
    p.w(MRET);
    assert_eq!(p.here() - start, HANDLER_LEN);
}

/// Enter the code that follows in S-mode (`smode`) or M-mode, through `mret`: PMP opened for
/// S-mode, `cycle` and `instret` (not `time`) readable from it.
fn enter_mode(p: &mut Prog, smode: bool) {
    p.w(addi(29, 0, -1));
    p.w(csr(1, 0, 29, 0x3b0)); // pmpaddr0: everything
    p.w(addi(29, 0, 0x1f));
    p.w(csr(1, 0, 29, 0x3a0)); // pmpcfg0: NAPOT, RWX
    p.w(csr(5, 0, 5, 0x306)); // mcounteren = CY | IR
    p.w(addi(29, 0, 3));
    p.w(slli(29, 29, 11));
    p.w(csr(if smode { 3 } else { 2 }, 0, 29, 0x300)); // MPP = U, or M
    if smode {
        p.w(addi(29, 0, 1));
        p.w(slli(29, 29, 11));
        p.w(csr(2, 0, 29, 0x300)); // MPP = S
    }
    p.w(auipc(29, 0));
    p.w(addi(29, 29, 16));
    p.w(csr(1, 0, 29, 0x341));
    p.w(MRET);
}

/// A program: set up, then a loop of a random body (with forward branches) run `iters` times
/// (in S-mode for odd seeds), then spin. Traps go to [`handler`].
fn program(seed: u64) -> Prog {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut p = Prog::new();
    p.w(jal(0, HANDLER + HANDLER_LEN));
    p.w(jal(0, HANDLER - 4)); // mtvec
    p.bytes.resize(SUB as usize, 0);
    p.w(jalr(0, 29, 0));
    handler(&mut p);
    p.w(auipc(29, 0));
    p.w(addi(29, 29, -(HANDLER + HANDLER_LEN - 4)));
    p.w(csr(1, 0, 29, 0x305)); // csrw mtvec, x29
    p.w(auipc(30, 0x10000)); // scratch at about BASE + 64 KiB
    p.w(lui(27, DEV as u32));
    p.w(addi(28, 0, 0x100)); // nothing there: access faults
    p.w(addi(31, 0, 20 + rng.below(200) as i32));
    for r in 1..25 {
        p.w(addi(r, 0, rng.below(4096) as i32 - 2048));
        p.w(slli(r, r, rng.below(64) as u32));
        p.w(xori(r, r, rng.below(4096) as i32 - 2048));
    }
    // FP on (mstatus.FS = Initial), f registers from the x registers: doubles, and NaN-boxed
    // singles in the odd ones.
    p.w(lui(29, 0x2000));
    p.w(csr(2, 0, 29, 0x300));
    for f in 0..32 {
        p.w(fp(0x78 | (1 - f % 2), f, 1 + f % 26, 0, 0));
    }
    if seed.is_multiple_of(4) {
        // M-mode with mie.SSIE and (through mret) mstatus.MIE set: a write to mip.SSIP is an
        // interrupt at once.
        p.w(csr(6, 0, 2, 0x304));
        p.w(addi(29, 0, 0x80));
        p.w(csr(2, 0, 29, 0x300)); // MPIE
    }
    enter_mode(&mut p, seed % 2 == 1);
    let top = p.here();
    let len = 20 + rng.below(120);
    let mut i = 0;
    while i < len {
        if rng.below(12) == 0 {
            // A forward branch over the next op.
            let mut next = Prog::new();
            body_op(&mut rng, &mut next, p.here() + 4);
            let off = 4 + next.bytes.len() as i32;
            let (a, b) = (rng.reg(), rng.reg());
            p.w(match rng.below(4) {
                0 => beq(a, b, off),
                1 => bne(a, b, off),
                2 => blt(a, b, off),
                _ => bgeu(a, b, off),
            });
            p.bytes.extend_from_slice(&next.bytes);
            i += 2;
        } else {
            body_op(&mut rng, &mut p, 0);
            i += 1;
        }
    }
    p.w(addi(31, 31, -1));
    let here = p.here();
    p.w(bne(31, 0, top - here));
    let spin = p.here();
    p.w(addi(1, 1, 1));
    p.w(jal(0, spin - p.here()));
    p
}

struct Sys {
    hart: Hart,
    ram: Ram,
    bus: Bus,
}

fn sys(p: &Prog, jit: bool) -> Sys {
    sys_with(p, jit, false)
}

fn sys_with(p: &Prog, jit: bool, background: bool) -> Sys {
    let mut ram = Ram::new(BASE, 1 << 20);
    ram.write(BASE, &p.bytes).expect("program fits in RAM");
    let mut hart = Hart::new(0, BASE, 0);
    hart.jit = if jit {
        Some(rewind_jit::Jit::global().expect("the JIT supports this host"))
    } else {
        None
    };
    hart.jit_background = background;
    Sys {
        hart,
        ram,
        bus: Bus::default(),
    }
}

fn lockstep(seed: u64) -> Counts {
    lockstep_with(seed, false)
}

/// What a lockstep run counted.
#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    /// Instructions retired.
    retired: u64,
    /// Of those, in translated code.
    jit_retired: u64,
    /// Interrupts taken (x25, counted by the handler).
    interrupts: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            retired: self.retired + o.retired,
            jit_retired: self.jit_retired + o.jit_retired,
            interrupts: self.interrupts + o.interrupts,
        }
    }
}

/// [`lockstep`], the JIT's hart translating on the compile thread (`background`) or its own.
fn lockstep_with(seed: u64, background: bool) -> Counts {
    // Translate after a few executions: the loops here are short.
    rewind_cpu::jit::set_hot_threshold(16);
    let p = program(seed);
    let mut a = sys(&p, false);
    let mut b = sys_with(&p, true, background);
    let mut rng = Rng(seed ^ 0x5555_aaaa_1234_9876 | 1);
    let mut slices = 0;
    while a.hart.icount < 60_000 {
        let cap = if rng.below(4) == 0 { 5000 } else { 200 };
        let budget = 1 + rng.below(cap);
        let ra: ExitReason = a.hart.run(&mut a.ram, &mut a.bus, budget);
        let rb = b.hart.run(&mut b.ram, &mut b.bus, budget);
        slices += 1;
        assert_eq!(ra, rb, "seed {seed}: exit reason after slice {slices}");
        assert_eq!(
            a.hart.save_state(),
            b.hart.save_state(),
            "seed {seed}: state after slice {slices} (budget {budget})"
        );
        assert_eq!(
            a.bus, b.bus,
            "seed {seed}: device accesses after slice {slices}"
        );
    }
    let (mut ma, mut mb) = (vec![0u8; 8192], vec![0u8; 8192]);
    a.ram.read(BASE + 0x10000, &mut ma).expect("scratch is RAM");
    b.ram.read(BASE + 0x10000, &mut mb).expect("scratch is RAM");
    assert!(ma == mb, "seed {seed}: scratch memory differs");
    Counts {
        retired: b.hart.icount,
        jit_retired: b.hart.jit_retired(),
        interrupts: b.hart.x[25],
    }
}

#[test]
fn random_programs_run_identically_on_both_engines() {
    if let Some(seed) = std::env::var("REWIND_LOCKSTEP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        lockstep(seed);
        return;
    }
    let before = rewind_jit::Jit::global()
        .map(|j| j.blocks.load(std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(0);
    let counts = (1..=150)
        .map(lockstep)
        .fold(Counts::default(), |a, b| a + b);
    // Interrupts unmasked by CSR writes, most of them in translated code.
    assert!(
        counts.interrupts > 100,
        "only {} interrupts taken",
        counts.interrupts
    );
    // CSR ops included (about 93% without them).
    let share = counts.jit_retired as f64 / counts.retired as f64;
    assert!(
        share > 0.95,
        "only {:.1}% retired translated",
        share * 100.0
    );
    let after = rewind_jit::Jit::global()
        .map(|j| j.blocks.load(std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(0);
    // The programs must actually exercise translated code.
    assert!(
        after - before >= 150,
        "only {} regions translated",
        after - before
    );
}

/// The same programs with translation on the compile thread: regions appear at moments that
/// depend on the host's timing, and nothing the guest sees may depend on it.
#[test]
fn random_programs_with_background_translation_run_identically() {
    let retired: u64 = (1000..1060)
        .map(|seed| lockstep_with(seed, true).jit_retired)
        .sum();
    // Regions made on the compile thread did run (one is ready long before 60 programs of
    // 60,000 instructions end).
    assert!(retired > 0, "no region made on the compile thread ever ran");
}

/// Breakpoints and watchpoints under the JIT: the random programs run on both engines with a
/// watchpoint on part of the scratch buffer and a breakpoint on a page never executed (so
/// translated code keeps running); every stop must come at the same icount and pc with the
/// same reported hit, and the state must stay identical. The JIT engine's hart also runs the
/// lockstep self-check, which must never object.
#[test]
fn watchpoints_stop_translated_code_where_the_interpreter_stops() {
    use rewind_cpu::{WatchKind, Watchpoint};
    rewind_cpu::jit::set_hot_threshold(16);
    let mut stops = 0;
    let mut translated_runs = 0;
    let mut inline_runs = 0;
    for seed in 1..=40u64 {
        let p = program(seed);
        let mut a = sys(&p, false);
        let mut b = sys(&p, true);
        b.hart.set_jit_check(true);
        // The self-check sends every access through the helpers: `c` runs translated code
        // as it runs outside the check (accesses to the watched page compared inline with
        // the watch windows).
        let mut c = sys(&p, true);
        let mut rng = Rng(seed.wrapping_mul(77) | 1);
        let kind = [WatchKind::Write, WatchKind::Read, WatchKind::Access][rng.below(3) as usize];
        // The scratch buffer is at about BASE + 64 KiB (see `program`).
        let watch = Watchpoint {
            addr: BASE + 0x10000 + rng.below(2048),
            len: 1 + rng.below(64),
            kind,
        };
        for s in [&mut a, &mut b, &mut c] {
            // Every other program watches physical addresses (the same here: no MMU).
            if seed % 2 == 1 {
                s.hart.set_phys_watchpoints(&[watch]);
            } else {
                s.hart.set_watchpoints(&[watch]);
            }
            s.hart.set_breakpoints(&[BASE + 0x8000]);
        }
        let mut slices = 0;
        while a.hart.icount < 40_000 {
            let budget = 1 + rng.below(3000);
            let ra = a.hart.run(&mut a.ram, &mut a.bus, budget);
            let rb = b.hart.run(&mut b.ram, &mut b.bus, budget);
            let rc = c.hart.run(&mut c.ram, &mut c.bus, budget);
            slices += 1;
            assert_eq!(ra, rb, "seed {seed}: exit reason after slice {slices}");
            assert_eq!(
                ra, rc,
                "seed {seed}: exit reason (no check) after slice {slices}"
            );
            assert_eq!(
                a.hart.save_state(),
                b.hart.save_state(),
                "seed {seed}: state after slice {slices}"
            );
            assert_eq!(
                a.hart.save_state(),
                c.hart.save_state(),
                "seed {seed}: state (no check) after slice {slices}"
            );
            assert_eq!(a.bus, b.bus, "seed {seed}: device accesses");
            assert_eq!(a.bus, c.bus, "seed {seed}: device accesses (no check)");
            if ra == ExitReason::Debug {
                let (ha, hb) = (a.hart.take_debug_hit(), b.hart.take_debug_hit());
                let hc = c.hart.take_debug_hit();
                assert!(ha.is_some(), "seed {seed}: a stop without a hit");
                assert_eq!(ha, hb, "seed {seed}: hit at icount {}", a.hart.icount);
                assert_eq!(
                    ha, hc,
                    "seed {seed}: hit (no check) at icount {}",
                    a.hart.icount
                );
                stops += 1;
                a.hart.skip_debug_once();
                b.hart.skip_debug_once();
                c.hart.skip_debug_once();
            }
        }
        // Every translated region run is checked: this counts them.
        translated_runs += b.hart.jit_checked_regions();
        inline_runs += c.hart.jit_retired();
    }
    assert!(stops > 100, "only {stops} watchpoint stops");
    assert!(
        translated_runs > 1000,
        "translated code ran only {translated_runs} times with hooks set"
    );
    assert!(
        inline_runs > 100_000,
        "translated code retired only {inline_runs} instructions outside the check"
    );
}

/// A loop that writes word `i & 255` of the page at `BASE + 0x10000` and reads its word 255,
/// 4096 times, then spins.
fn page_writer() -> Prog {
    let mut p = Prog::new();
    p.w(auipc(5, 0x10000)); // x5 = BASE + 0x10000
    p.w(addi(6, 0, 0)); // i
    p.w(addi(9, 0, 1));
    p.w(slli(9, 9, 12)); // 4096 turns
    let top = p.here();
    p.w(andi(7, 6, 255));
    p.w(slli(7, 7, 3));
    p.w(add(7, 7, 5));
    p.w(sd(6, 7, 0));
    p.w(ld(8, 5, 2040));
    p.w(add(10, 10, 8));
    p.w(addi(6, 6, 1));
    let here = p.here();
    p.w(bne(6, 9, top - here));
    let spin = p.here();
    p.w(addi(1, 1, 1));
    p.w(jal(0, spin - p.here()));
    p
}

/// Run `page_writer` on the interpreter, the JIT, and the JIT under its lockstep self-check;
/// `watches` (physical ones with `phys`) are set once translated code has been writing the page
/// for a while (so the TLB already maps it). Every stop must come at the same icount and pc
/// with the same hit on all three; returns the stops, and how many loads and stores the JIT's
/// translated code (outside the check) made through the helpers while watching.
fn watch_page_writer(watches: &[rewind_cpu::Watchpoint], phys: bool) -> (Vec<(u64, u64)>, u64) {
    rewind_cpu::jit::set_hot_threshold(16);
    let p = page_writer();
    let mut harts = [sys(&p, false), sys(&p, true), sys(&p, true)];
    harts[2].hart.set_jit_check(true);
    let mut stops = Vec::new();
    let mut rng = Rng(0x5eed);
    let mut watching = None;
    let mut slices = 0;
    while harts[0].hart.icount < 40_000 {
        slices += 1;
        assert!(
            slices < 10_000,
            "no progress at icount {}",
            harts[0].hart.icount
        );
        if watching.is_none() && harts[0].hart.icount >= 600 {
            for s in harts.iter_mut() {
                if phys {
                    s.hart.set_phys_watchpoints(watches);
                } else {
                    s.hart.set_watchpoints(watches);
                }
            }
            // The loop is translated by now: what follows runs in translated code.
            assert!(harts[1].hart.jit_retired() > 0, "nothing translated yet");
            watching = Some(harts[1].hart.jit_helper_accesses());
        }
        let budget = 1 + rng.below(700);
        let r: Vec<ExitReason> = harts
            .iter_mut()
            .map(|s| s.hart.run(&mut s.ram, &mut s.bus, budget))
            .collect();
        let at = harts[0].hart.icount;
        for (i, s) in harts.iter().enumerate().skip(1) {
            assert_eq!(r[0], r[i], "engine {i}: exit reason at icount {at}");
            assert_eq!(
                harts[0].hart.save_state(),
                s.hart.save_state(),
                "engine {i}: state at icount {at}"
            );
        }
        if r[0] == ExitReason::Debug {
            let hits: Vec<_> = harts.iter_mut().map(|s| s.hart.take_debug_hit()).collect();
            assert!(hits[0].is_some(), "a stop without a hit at icount {at}");
            assert!(hits.iter().all(|h| *h == hits[0]), "hits {hits:?}");
            stops.push((at, harts[0].hart.pc));
            for s in harts.iter_mut() {
                s.hart.skip_debug_once();
            }
        }
    }
    assert!(
        harts[2].hart.jit_checked_regions() > 50,
        "translated code ran only {} times",
        harts[2].hart.jit_checked_regions()
    );
    // Nearly all of the JIT's instructions ran translated when there are few stops (the
    // interpreter runs the first executions of each block and the rest of the block resumed
    // after each stop).
    let share = harts[1].hart.jit_retired() as f64 / harts[1].hart.icount as f64;
    assert!(
        stops.len() > 100 || share > 0.9,
        "translated share {share} with {} stops",
        stops.len()
    );
    let (mut ma, mut mb) = (vec![0u8; 4096], vec![0u8; 4096]);
    harts[0].ram.read(BASE + 0x10000, &mut ma).expect("RAM");
    harts[1].ram.read(BASE + 0x10000, &mut mb).expect("RAM");
    assert!(ma == mb, "the written page differs");
    let helper = harts[1].hart.jit_helper_accesses() - watching.unwrap_or(0);
    (stops, helper)
}

/// The stops of `page_writer` at the 16 stores to word 200 of its page: the loop's 8 ops from
/// icount 4 on, word 200 written on turns 200 + 256 k by the sd (op 3 of the turn), at pc
/// BASE + 16 + 12.
fn word_200_stores() -> Vec<(u64, u64)> {
    (0..16)
        .map(|k| (4 + (200 + 256 * k) * 8 + 3, BASE + 28))
        .collect()
}

/// A watchpoint on a page translated code keeps writing (set after the code was translated
/// and the page mapped), virtual and physical: translated code stops at exactly the
/// interpreter's icount and pc, at each of the 16 stores to the watched word, and the other
/// accesses to the page (4900 turns of a store and a load) stay inline: only the 16 stores to
/// the watched word take the helper.
#[test]
fn a_watchpoint_on_a_page_translated_code_writes_stops_where_the_interpreter_does() {
    use rewind_cpu::{WatchKind, Watchpoint};
    let w = Watchpoint {
        addr: BASE + 0x10000 + 200 * 8,
        len: 8,
        kind: WatchKind::Write,
    };
    for phys in [false, true] {
        let (stops, helper) = watch_page_writer(&[w], phys);
        assert_eq!(stops, word_200_stores(), "physical: {phys}");
        assert!(
            helper <= 16,
            "{helper} accesses through the helpers (physical: {phys})"
        );
    }
}

/// Stores to other words of the watched page, and loads next to the watched word, do not stop.
#[test]
fn a_watchpoint_on_a_word_translated_code_never_touches_does_not_stop() {
    use rewind_cpu::{WatchKind, Watchpoint};
    let (stops, helper) = watch_page_writer(
        &[Watchpoint {
            addr: BASE + 0x10000 + 2048,
            len: 8,
            kind: WatchKind::Access,
        }],
        false,
    );
    assert_eq!(stops, vec![]);
    assert_eq!(helper, 0, "accesses through the helpers");
}

/// Accesses right next to watched ranges, or inside a range watched for the other kind of
/// access, run inline and never stop: a read watch on word 254 (stored to, never loaded; the
/// loaded word 255 follows it) and a write watch on the first byte after word 255 (the last
/// one stored), virtual and physical.
#[test]
fn accesses_next_to_watched_ranges_run_inline() {
    use rewind_cpu::{WatchKind, Watchpoint};
    let ws = [
        Watchpoint {
            addr: BASE + 0x10000 + 254 * 8,
            len: 8,
            kind: WatchKind::Read,
        },
        Watchpoint {
            addr: BASE + 0x10000 + 256 * 8,
            len: 1,
            kind: WatchKind::Write,
        },
    ];
    for phys in [false, true] {
        let (stops, helper) = watch_page_writer(&ws, phys);
        assert_eq!(stops, vec![], "phys {phys}");
        assert_eq!(helper, 0, "phys {phys}: accesses through the helpers");
    }
}

/// A read watch on the word the loop loads every turn stops translated code at every such
/// load (op 4 of the turn, pc BASE + 32), exactly where the interpreter stops.
#[test]
fn a_read_watch_on_a_hot_word_stops_at_every_load() {
    use rewind_cpu::{WatchKind, Watchpoint};
    let (stops, _) = watch_page_writer(
        &[Watchpoint {
            addr: BASE + 0x10000 + 2044,
            len: 1,
            kind: WatchKind::Read,
        }],
        false,
    );
    assert!(stops.len() > 3500, "{} stops", stops.len());
    assert!(stops.iter().all(|&(_, pc)| pc == BASE + 32), "{stops:?}");
    assert!(stops.windows(2).all(|w| w[1].0 - w[0].0 == 8), "{stops:?}");
}

/// Two write watchpoints on one page: translated code's window covers both, so the stores
/// between them take the helper (which finds no hit) and the others stay inline; the stops are
/// the interpreter's, at the stores to either watched word.
#[test]
fn two_watchpoints_on_a_hot_page_stop_exactly() {
    use rewind_cpu::{WatchKind, Watchpoint};
    let ws: Vec<Watchpoint> = [200, 250]
        .iter()
        .map(|w| Watchpoint {
            addr: BASE + 0x10000 + w * 8,
            len: 8,
            kind: WatchKind::Write,
        })
        .collect();
    let (stops, helper) = watch_page_writer(&ws, false);
    let mut expected = word_200_stores();
    expected.extend((0..16).map(|k| (4 + (250 + 256 * k) * 8 + 3, BASE + 28)));
    expected.sort_unstable();
    assert_eq!(stops, expected);
    // The stores to words 200 to 250, 51 of each 256 turns: 16 * 51, but for the turns the
    // interpreter runs (at the end of a slice's budget, or resumed after a stop).
    assert!(
        (700..=816).contains(&helper),
        "{helper} accesses through the helpers"
    );
}

/// The translation cache: a second machine running the same program (as the segments of one
/// analysis, or a page whose decoded code a snapshot restore dropped) runs the regions the
/// first one translated, made from the same decoded blocks, without translating them again,
/// on the hart's thread and from the compile thread alike, and ends in the same state as the
/// interpreter.
#[test]
fn a_second_machine_runs_the_translations_of_the_first_from_the_cache() {
    use std::sync::atomic::Ordering::Relaxed;
    rewind_cpu::jit::set_hot_threshold(16);
    // An engine of its own: the other tests translate concurrently into the global one.
    let jit: &'static rewind_jit::Jit = Box::leak(Box::new(
        rewind_jit::Jit::new().expect("the JIT supports this host"),
    ));
    let p = program(77);
    let run = |background: bool| {
        let mut s = sys(&p, false);
        s.hart.jit = Some(jit);
        s.hart.jit_background = background;
        while s.hart.icount < 60_000 {
            s.hart.run(&mut s.ram, &mut s.bus, 1000);
        }
        s
    };
    let mut reference = sys(&p, false);
    while reference.hart.icount < 60_000 {
        reference
            .hart
            .run(&mut reference.ram, &mut reference.bus, 1000);
    }
    let first = run(false);
    let translated = jit.blocks.load(Relaxed);
    assert!(translated > 0 && first.hart.jit_retired() > 0);
    assert_eq!(jit.reused.load(Relaxed), 0, "nothing to reuse yet");
    for background in [false, true] {
        let again = run(background);
        assert_eq!(
            jit.blocks.load(Relaxed),
            translated,
            "the same code was translated again (background {background})"
        );
        assert!(again.hart.jit_retired() > 0, "cached regions never ran");
        assert_eq!(again.hart.save_state(), reference.hart.save_state());
        assert_eq!(again.bus, reference.bus);
    }
    assert!(jit.reused.load(Relaxed) > 0);
}

/// A loop of CSR ops in M-mode (`smode` false) or S-mode: counter and clock reads, `sscratch`,
/// `fcsr`/`fflags`, `mip.SSIP` then `mstatus.MIE` then `mie.SSIE` set (the interrupt is taken
/// at the `mie` write, mid-region, and its handler clears SSIP), `mie`/`mstatus` cleared again,
/// a write to the read-only `cycle` (illegal), `mscratch` and `time` reads (illegal in S-mode:
/// an M-mode CSR, and `time` not enabled in `mcounteren`). `turns` times, then spin.
fn csr_loop(turns: i32, smode: bool) -> Prog {
    let mut p = Prog::new();
    p.w(jal(0, HANDLER + HANDLER_LEN));
    p.w(jal(0, HANDLER - 4)); // mtvec
    p.bytes.resize(HANDLER as usize, 0);
    handler(&mut p);
    p.w(auipc(29, 0));
    p.w(addi(29, 29, -(HANDLER + HANDLER_LEN - 4)));
    p.w(csr(1, 0, 29, 0x305)); // mtvec
    p.w(lui(29, 0x2000));
    p.w(csr(2, 0, 29, 0x300)); // mstatus.FS = Initial
    p.w(addi(31, 0, turns));
    enter_mode(&mut p, smode);
    let top = p.here();
    p.w(csr(2, 1, 0, 0xc00)); // csrr x1, cycle
    p.w(addi(2, 1, 3));
    p.w(csr(1, 3, 2, 0x140)); // csrrw x3, sscratch, x2
    p.w(csr(2, 4, 0, 0xc02)); // csrr x4, instret
    p.w(csr(1, 5, 2, 0x003)); // csrrw x5, fcsr, x2
    p.w(csr(2, 6, 0, 0x001)); // csrr x6, fflags
    p.w(add(7, 6, 5));
    p.w(csr(6, 0, 2, 0x344)); // csrsi mip, SSIP
    p.w(csr(6, 0, 8, 0x300)); // csrsi mstatus, MIE
    p.w(csr(6, 0, 2, 0x304)); // csrsi mie, SSIE: the interrupt
    p.w(add(8, 1, 4));
    p.w(csr(7, 0, 2, 0x304)); // csrci mie, SSIE
    p.w(csr(7, 0, 8, 0x300)); // csrci mstatus, MIE
    p.w(csr(1, 9, 1, 0xc00)); // csrrw x9, cycle, x1: illegal
    p.w(csr(2, 10, 0, 0x340)); // csrr x10, mscratch
    p.w(csr(2, 11, 0, 0xc01)); // csrr x11, time
    p.w(add(12, 12, 11));
    p.w(addi(31, 31, -1));
    let here = p.here();
    p.w(bne(31, 0, top - here));
    let spin = p.here();
    p.w(addi(13, 13, 1));
    p.w(jal(0, spin - p.here()));
    p
}

/// `csr_loop` on the interpreter, the JIT and the JIT under its lockstep self-check, in slices
/// of random budgets: the same exit reasons and states after every slice, the interrupts and
/// exceptions the loop must take, and most instructions (CSR ops included) retired in
/// translated code. Returns (interrupts, exceptions, share of translated instructions).
fn csr_lockstep(smode: bool) -> (u64, u64, f64) {
    rewind_cpu::jit::set_hot_threshold(16);
    let turns = 1500;
    let p = csr_loop(turns, smode);
    let mut harts = [sys(&p, false), sys(&p, true), sys(&p, true)];
    harts[2].hart.set_jit_check(true);
    let mut rng = Rng(0xc5a);
    let mut slices = 0;
    // Until the loop is done (x31 counts its turns down from `turns`, set by the setup).
    while harts[0].hart.icount < 100 || harts[0].hart.x[31] != 0 {
        assert!(harts[0].hart.icount < 1_000_000, "the loop does not end");
        slices += 1;
        let cap = if rng.below(4) == 0 { 3000 } else { 100 };
        let budget = 1 + rng.below(cap);
        let r: Vec<ExitReason> = harts
            .iter_mut()
            .map(|s| s.hart.run(&mut s.ram, &mut s.bus, budget))
            .collect();
        if r[2] == ExitReason::JitCheck {
            panic!("self-check: {:?}", harts[2].hart.take_check_failure());
        }
        for (i, s) in harts.iter().enumerate().skip(1) {
            assert_eq!(r[0], r[i], "engine {i}: exit reason after slice {slices}");
            assert_eq!(
                harts[0].hart.save_state(),
                s.hart.save_state(),
                "engine {i}: state after slice {slices} (budget {budget})"
            );
        }
    }
    let h = &harts[1].hart;
    (h.x[25], h.x[26], h.jit_retired() as f64 / h.icount as f64)
}

/// CSR ops run translated, end the region where the interpreter ends its block (an interrupt a
/// write unmasks is taken at that write), and trap precisely where illegal.
#[test]
fn csr_ops_run_translated_exactly_as_interpreted() {
    let (irqs, excs, share) = csr_lockstep(false);
    // One interrupt per turn (at the mie write); one illegal op (the cycle write).
    assert_eq!((irqs, excs), (1500, 1500));
    // Without CSR ops translated, each of the 14 CSR ops of a turn ends a region: 42% of the
    // instructions ran translated (93% with them).
    assert!(
        share > 0.85,
        "only {:.1}% retired translated",
        share * 100.0
    );
}

/// The same loop in S-mode: `mip`, `mie`, `mstatus` and `mscratch` are M-mode CSRs and `time`
/// is not enabled in `mcounteren`, so those accesses trap (precisely, from translated code).
#[test]
fn csr_ops_illegal_in_s_mode_trap_exactly_as_interpreted() {
    let (irqs, excs, share) = csr_lockstep(true);
    // mip, mstatus, mie, mie, mstatus, the cycle write, mscratch, time: 8 per turn.
    assert_eq!((irqs, excs), (0, 8 * 1500));
    // 50% without CSR ops translated, 89% with them.
    assert!(share > 0.8, "only {:.1}% retired translated", share * 100.0);
}
