//! Interpreter tests: small programs assembled in the test, executed from RAM in M-mode with
//! satp = 0, checked against known answers (register values, memory, pc, icount, exit reason).

mod asm;

use asm::*;
use rewind_cpu::csr::{CsrOp, MSTATUS_FS};
use rewind_cpu::fpu::F32_CANONICAL_NAN;
use rewind_cpu::{ExitReason, Hart, Mmio, MmioFault, Ram};

const BASE: u64 = 0x8000_0000;
const MMIO: u64 = 0x1000_0000;

/// A device window at `MMIO` that records stores and reads back 0x42.
#[derive(Default)]
struct Bus {
    stores: Vec<(u64, u8, u64, u64)>,
}

impl Mmio for Bus {
    fn load(
        &mut self,
        _ram: &mut Ram,
        paddr: u64,
        _size: u8,
        _icount: u64,
    ) -> Result<u64, MmioFault> {
        if (MMIO..MMIO + 0x1000).contains(&paddr) {
            Ok(0x42)
        } else {
            Err(MmioFault)
        }
    }
    fn store(
        &mut self,
        _ram: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        if (MMIO..MMIO + 0x1000).contains(&paddr) {
            self.stores.push((paddr, size, value, icount));
            Ok(())
        } else {
            Err(MmioFault)
        }
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}

struct M {
    hart: Hart,
    ram: Ram,
    bus: Bus,
}

impl M {
    fn new(p: &Prog) -> M {
        let mut ram = Ram::new(BASE, 1 << 20);
        ram.write(BASE, &p.bytes).unwrap();
        M {
            hart: Hart::new(0, BASE, 0),
            ram,
            bus: Bus::default(),
        }
    }
    fn run(&mut self, n: u64) -> ExitReason {
        self.hart.run(&mut self.ram, &mut self.bus, n)
    }
    fn x(&self, r: usize) -> u64 {
        self.hart.x[r]
    }
    fn csr(&mut self, addr: u16) -> u64 {
        self.hart
            .csr_op(&self.bus, addr, CsrOp::Set, 0, false)
            .unwrap()
    }
    fn read64(&self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.ram.read(pa, &mut b).unwrap();
        u64::from_le_bytes(b)
    }
}

fn prog(words: &[u32]) -> Prog {
    let mut p = Prog::new();
    for &w in words {
        p.w(w);
    }
    p
}

/// The program's words followed by a self-loop (`j .`).
fn prog_spin(words: &[u32]) -> Prog {
    let mut p = prog(words);
    p.w(jal(0, 0));
    p
}

#[test]
fn integer_alu_known_answers() {
    let p = prog_spin(&[
        addi(1, 0, -1),      // x1 = -1
        lui(2, 0x8000_0000), // x2 = 0xffffffff80000000
        addiw(3, 2, -1),     // x3 = 0x7fffffff
        slli(4, 1, 63),      // x4 = 1 << 63
        srai(5, 4, 63),      // x5 = -1
        srli(6, 4, 63),      // x6 = 1
        sltiu(7, 0, 1),      // x7 = 1
        slti(8, 1, 0),       // x8 = 1
        sub(9, 0, 6),        // x9 = -1
        sraw(10, 2, 6),      // x10 = 0xffffffffc0000000
        srlw(11, 2, 6),      // x11 = 0x40000000
        addi(13, 0, 31),     // x13 = 31
        sllw(12, 6, 13),     // x12 = 0xffffffff80000000
        addi(0, 0, 5),       // x0 stays 0
        add(0, 1, 1),        // x0 stays 0
        auipc(14, 0x1000),   // x14 = pc + 0x1000
        sltu(15, 0, 1),      // x15 = 1 (0 < max)
        slt(16, 1, 0),       // x16 = 1 (-1 < 0)
        xori(17, 0, -1),     // x17 = -1
        andi(18, 1, 0x7f0),  // x18 = 0x7f0
        sra(19, 4, 13),      // x19 = (1<<63) >> 31 arithmetic
        addw(20, 3, 6),      // x20 = 0x80000000 sext
        subw(21, 0, 6),      // x21 = -1
        sraiw(22, 2, 4),     // x22 = 0xfffffffff8000000
        sll(23, 6, 4),       // x23 = 1 << (x4 & 63) = 1
    ]);
    let mut m = M::new(&p);
    assert_eq!(m.run(25), ExitReason::Budget);
    assert_eq!(m.hart.icount, 25);
    assert_eq!(m.hart.pc, BASE + 100);
    let expect: [(usize, u64); 23] = [
        (0, 0),
        (1, u64::MAX),
        (2, 0xffff_ffff_8000_0000),
        (3, 0x7fff_ffff),
        (4, 1 << 63),
        (5, u64::MAX),
        (6, 1),
        (7, 1),
        (8, 1),
        (9, u64::MAX),
        (10, 0xffff_ffff_c000_0000),
        (11, 0x4000_0000),
        (12, 0xffff_ffff_8000_0000),
        (14, BASE + 60 + 0x1000),
        (15, 1),
        (16, 1),
        (17, u64::MAX),
        (18, 0x7f0),
        (19, 0xffff_ffff_0000_0000),
        (20, 0xffff_ffff_8000_0000),
        (21, u64::MAX),
        (22, 0xffff_ffff_f800_0000),
        (23, 1),
    ];
    for (r, v) in expect {
        assert_eq!(m.x(r), v, "x{r}");
    }
}

#[test]
fn m_extension_edge_cases() {
    let p = prog_spin(&[
        addi(6, 0, 6),
        addi(1, 0, 1),
        slli(1, 1, 63),      // x1 = i64::MIN
        addi(2, 0, -1),      // x2 = -1
        lui(4, 0x8000_0000), // x4 = i32::MIN sign-extended
        mop(4, 10, 1, 2),    // div  MIN / -1 = MIN
        mop(6, 11, 1, 2),    // rem  MIN % -1 = 0
        mop(4, 12, 1, 3),    // div  by 0 = -1
        mop(5, 13, 1, 3),    // divu by 0 = MAX
        mop(6, 14, 1, 3),    // rem  by 0 = dividend
        mop(7, 15, 1, 3),    // remu by 0 = dividend
        mop(1, 16, 1, 2),    // mulh MIN * -1 = 2^63 → high 0
        mop(3, 17, 2, 2),    // mulhu MAX*MAX → 0xffff...fffe
        mop(2, 18, 2, 2),    // mulhsu -1 * MAX → high -1
        mopw(4, 19, 4, 2),   // divw i32::MIN / -1 = i32::MIN
        mopw(6, 20, 4, 2),   // remw → 0
        mopw(5, 21, 4, 3),   // divuw by 0 → MAX
        mopw(7, 22, 4, 3),   // remuw by 0 → sext(dividend)
        mopw(0, 23, 4, 4),   // mulw → 0
        mopw(4, 24, 2, 3),   // divw by 0 → -1
        mopw(6, 25, 4, 3),   // remw by 0 → dividend
        mop(0, 26, 2, 2),    // mul -1*-1 = 1
        mop(5, 27, 2, 4),    // divu MAX / 0xffffffff80000000 = 1
        mopw(5, 28, 2, 6),   // divuw 0xffffffff / 6 = 0x2aaaaaaa
    ]);
    let mut m = M::new(&p);
    m.run(24);
    let min = 1u64 << 63;
    let expect: [(usize, u64); 19] = [
        (10, min),
        (11, 0),
        (12, u64::MAX),
        (13, u64::MAX),
        (14, min),
        (15, min),
        (16, 0),
        (17, 0xffff_ffff_ffff_fffe),
        (18, u64::MAX),
        (19, 0xffff_ffff_8000_0000),
        (20, 0),
        (21, u64::MAX),
        (22, 0xffff_ffff_8000_0000),
        (23, 0),
        (24, u64::MAX),
        (25, 0xffff_ffff_8000_0000),
        (26, 1),
        (27, 1),
        (28, 0x2aaa_aaaa),
    ];
    for (r, v) in expect {
        assert_eq!(m.x(r), v, "x{r}");
    }
}

/// sum = 100 + 99 + ... + 1 in a loop, then a self-loop.
fn sum_loop() -> Prog {
    prog_spin(&[
        addi(5, 0, 100), // 0
        addi(6, 0, 0),   // 4
        add(6, 6, 5),    // 8
        addi(5, 5, -1),  // 12
        bne(5, 0, -8),   // 16
    ])
}

#[test]
fn loop_retires_exactly_the_budget() {
    let mut m = M::new(&sum_loop());
    assert_eq!(m.run(302), ExitReason::Budget);
    assert_eq!((m.x(6), m.hart.icount, m.hart.pc), (5050, 302, BASE + 20));
    assert_eq!(m.run(10), ExitReason::Budget);
    assert_eq!((m.hart.icount, m.hart.pc), (312, BASE + 20));
    assert_eq!(m.run(0), ExitReason::Budget);
    assert_eq!(m.hart.icount, 312);
}

#[test]
fn chunked_runs_match_one_run() {
    for chunk in [1u64, 2, 3, 7, 50, 301] {
        let mut m = M::new(&sum_loop());
        let mut left = 250u64;
        while left > 0 {
            let n = chunk.min(left);
            let before = m.hart.icount;
            assert_eq!(m.run(n), ExitReason::Budget);
            assert_eq!(m.hart.icount - before, n);
            left -= n;
        }
        let mut one = M::new(&sum_loop());
        one.run(250);
        assert_eq!(
            (m.hart.pc, m.x(5), m.x(6)),
            (one.hart.pc, one.x(5), one.x(6)),
            "chunk {chunk}"
        );
    }
}

#[test]
fn jumps_link_and_clear_bit_zero() {
    let p = prog(&[
        jal(1, 8),     // 0: x1 = 4, → 8
        jal(0, 0),     // 4: spin
        jalr(5, 1, 1), // 8: → (4+1) & !1 = 4, x5 = 12
    ]);
    let mut m = M::new(&p);
    m.run(3);
    assert_eq!(
        (m.x(1), m.x(5), m.hart.pc, m.hart.icount),
        (BASE + 4, BASE + 12, BASE + 4, 3)
    );
    // jalr with rd == rs1 reads the register before writing the link.
    let p = prog(&[auipc(1, 0), jalr(1, 1, 12), NOP, jal(0, 0)]);
    let mut m = M::new(&p);
    m.run(2);
    assert_eq!((m.x(1), m.hart.pc), (BASE + 8, BASE + 12));
}

#[test]
fn branches_signed_and_unsigned() {
    let p = prog_spin(&[
        addi(1, 0, -1),
        addi(2, 0, 1),
        blt(1, 2, 8),   // taken (-1 < 1)
        addi(10, 0, 1), // skipped
        bgeu(1, 2, 8),  // taken (MAX >= 1)
        addi(11, 0, 1), // skipped
        beq(1, 2, 8),   // not taken
        addi(12, 0, 1), // executed
    ]);
    let mut m = M::new(&p);
    m.run(7);
    assert_eq!((m.x(10), m.x(11), m.x(12), m.hart.pc), (0, 0, 1, BASE + 32));
}

#[test]
fn loads_sign_and_zero_extend() {
    let p = prog_spin(&[
        auipc(2, 0x8000), // x2 = BASE + 0x8000
        addi(1, 0, -2),
        sd(1, 2, 0),
        load(0, 3, 2, 0), // lb
        load(4, 4, 2, 0), // lbu
        load(1, 5, 2, 0), // lh
        load(5, 6, 2, 0), // lhu
        load(2, 7, 2, 0), // lw
        load(6, 8, 2, 0), // lwu
        ld(9, 2, 0),
        store(0, 0, 2, 1), // sb x0, 1(x2)
        ld(10, 2, 0),
        store(1, 0, 2, 6), // sh x0, 6(x2)
        sw(0, 2, 8),       // sw x0, 8(x2) (beyond the doubleword)
        ld(11, 2, 0),
    ]);
    let mut m = M::new(&p);
    m.run(15);
    assert_eq!(m.x(3), (-2i64) as u64);
    assert_eq!(m.x(4), 0xfe);
    assert_eq!(m.x(5), (-2i64) as u64);
    assert_eq!(m.x(6), 0xfffe);
    assert_eq!(m.x(7), (-2i64) as u64);
    assert_eq!(m.x(8), 0xffff_fffe);
    assert_eq!(m.x(9), (-2i64) as u64);
    assert_eq!(m.x(10), 0xffff_ffff_ffff_00fe);
    assert_eq!(m.x(11), 0x0000_ffff_ffff_00fe);
    assert_eq!(m.read64(BASE + 0x8000), 0x0000_ffff_ffff_00fe);
}

#[test]
fn compressed_program_runs_with_exact_count() {
    let mut p = Prog::new();
    p.h(c_li(8, 5)) // x8 = 5
        .h(c_addi(8, 3)) // 8
        .h(c_slli(8, 2)) // 32
        .h(c_mv(9, 8)) // x9 = 32
        .h(c_add(9, 8)) // 64
        .h(c_li(10, 3))
        .w(addi(11, 0, 7)) // a 32-bit instruction at a 2 (mod 4) address
        .h(c_addi(10, -1)) // loop:
        .h(c_bnez(10, -2))
        .h(c_j(0));
    let mut m = M::new(&p);
    assert_eq!(m.run(13), ExitReason::Budget);
    assert_eq!((m.x(8), m.x(9), m.x(10), m.x(11)), (32, 64, 0, 7));
    assert_eq!(m.hart.pc, BASE + 20);
    m.run(5);
    assert_eq!((m.hart.pc, m.hart.icount), (BASE + 20, 18));
}

#[test]
fn instruction_straddling_two_pages() {
    let mut p = Prog::new();
    p.w(jal(0, 0xffc));
    p.bytes.resize(0xffc, 0);
    p.h(c_li(8, 1)).w(addi(9, 0, 77)).h(c_j(0));
    let mut m = M::new(&p);
    m.run(4);
    assert_eq!(
        (m.x(8), m.x(9), m.hart.pc, m.hart.icount),
        (1, 77, BASE + 0x1002, 4)
    );
    // Rewrite only the upper half (on the second page): the new instruction must run.
    let new = addi(9, 0, 78);
    m.ram
        .write(BASE + 0x1000, &((new >> 16) as u16).to_le_bytes())
        .unwrap();
    m.hart.pc = BASE + 0xffe;
    m.run(1);
    assert_eq!((m.x(9), m.hart.pc), (78, BASE + 0x1002));
}

/// Program that runs the instruction at `target` (offset 28) once, overwrites it with
/// `addi x10, x0, 42`, optionally executes fence.i, and runs it again.
fn smc_prog(fence: bool) -> Prog {
    let new = addi(10, 0, 42);
    let lo = ((new & 0xfff) as i32) << 20 >> 20;
    let hi = new.wrapping_sub(lo as u32);
    prog(&[
        auipc(5, 0),                       // 0
        jal(1, 24),                        // 4: call 28
        lui(6, hi),                        // 8
        addi(6, 6, lo),                    // 12: x6 = new
        sw(6, 5, 28),                      // 16
        if fence { FENCE_I } else { NOP }, // 20
        jal(1, 4),                         // 24: call 28
        addi(10, 0, 1),                    // 28: target
        jalr(0, 1, 0),                     // 32
    ])
}

#[test]
fn self_modifying_code_with_fence_i() {
    for fence in [true, false] {
        let mut m = M::new(&smc_prog(fence));
        m.run(3);
        assert_eq!(m.x(10), 1, "old instruction ran first");
        m.run(7);
        assert_eq!(
            m.x(10),
            42,
            "new instruction after the store (fence.i: {fence})"
        );
        assert_eq!(m.hart.icount, 10);
    }
}

#[test]
fn store_into_the_next_instruction_takes_effect() {
    // sw overwrites the instruction right after it, on the page being executed.
    let new = addi(10, 0, 9);
    let lo = ((new & 0xfff) as i32) << 20 >> 20;
    let hi = new.wrapping_sub(lo as u32);
    let p = prog_spin(&[
        auipc(5, 0),
        lui(6, hi),
        addi(6, 6, lo),
        sw(6, 5, 16),
        addi(10, 0, 1),
    ]);
    let mut m = M::new(&p);
    m.run(5);
    assert_eq!((m.x(10), m.hart.pc), (9, BASE + 20));
}

#[test]
fn mmio_store_yields_after_retiring() {
    let p = prog_spin(&[
        lui(5, MMIO as u32),
        addi(6, 0, 5),
        sw(6, 5, 8),
        addi(7, 0, 1),
    ]);
    let mut m = M::new(&p);
    assert_eq!(m.run(100), ExitReason::Yield);
    assert_eq!((m.hart.icount, m.hart.pc), (3, BASE + 12));
    assert_eq!(m.bus.stores, vec![(MMIO + 8, 4, 5, 2)]);
    assert_eq!(m.run(1), ExitReason::Budget);
    assert_eq!(m.x(7), 1);
}

#[test]
fn mmio_load_goes_to_the_bus() {
    let p = prog_spin(&[lui(5, MMIO as u32), load(2, 6, 5, 0)]);
    let mut m = M::new(&p);
    m.run(2);
    assert_eq!(m.x(6), 0x42);
}

#[test]
fn wfi_retires_and_exits() {
    let p = prog_spin(&[addi(1, 0, 1), WFI, addi(2, 0, 2)]);
    let mut m = M::new(&p);
    assert_eq!(m.run(100), ExitReason::Wfi);
    assert_eq!((m.hart.icount, m.hart.pc, m.hart.wfi), (2, BASE + 8, true));
    // Still no interrupt: the hart keeps waiting without retiring anything.
    assert_eq!(m.run(100), ExitReason::Wfi);
    assert_eq!(m.hart.icount, 2);
}

#[test]
fn lr_sc_and_amos() {
    let p = prog_spin(&[
        auipc(2, 0x1000), // x2 = BASE + 0x1000
        addi(1, 0, 5),
        sd(1, 2, 0),
        amo(0x02, 3, 3, 2, 0), // lr.d x3, (x2)          → 5
        addi(1, 0, 7),
        amo(0x03, 3, 4, 2, 1), // sc.d x4, x1, (x2)      → 0, mem = 7
        amo(0x03, 3, 5, 2, 1), // sc.d again: no reservation → 1
        amo(0x00, 3, 6, 2, 1), // amoadd.d x6 = 7, mem = 14
        addi(7, 0, -3),
        amo(0x10, 2, 8, 2, 7),  // amomin.w x8 = 14, mem.w = -3
        amo(0x18, 2, 9, 2, 1),  // amominu.w x9 = sext(-3), mem.w = 7
        amo(0x01, 3, 11, 2, 7), // amoswap.d x11 = 0x00000000_00000007 | ..., mem = -3
        amo(0x14, 3, 12, 2, 1), // amomax.d x12 = -3, mem = 7
        amo(0x02, 2, 13, 2, 0), // lr.w x13 = 7
        amo(0x03, 2, 14, 2, 7), // sc.w x14 = 0, mem.w = -3
    ]);
    let mut m = M::new(&p);
    m.run(15);
    assert_eq!(m.x(3), 5);
    assert_eq!(m.x(4), 0);
    assert_eq!(m.x(5), 1);
    assert_eq!(m.x(6), 7);
    assert_eq!(m.x(8), 14);
    assert_eq!(m.x(9), (-3i64) as u64);
    assert_eq!(m.x(11), 7);
    assert_eq!(m.x(12), (-3i64) as u64);
    assert_eq!(m.x(13), 7);
    assert_eq!(m.x(14), 0);
    assert_eq!(m.read64(BASE + 0x1000) as u32, (-3i32) as u32);
    assert_eq!(m.hart.reservation, None);
}

#[test]
fn illegal_instructions_trap_with_their_bits() {
    // mtvec = BASE + 0x100 (a spin loop there); then the illegal instruction.
    let cases: [(u32, u8); 5] = [
        (0xffff_ffff, 4),           // 48-bit-or-longer prefix / reserved
        (0x0000_6081, 2),           // C.LUI x1, 0 (reserved)
        (0x0000_0000, 2),           // the all-zero parcel
        (0x0200_0033 | 1 << 27, 4), // OP with a reserved funct7
        (csr(1, 0, 1, 0xfff), 4),   // csrrw to a nonexistent (read-only-range) CSR
    ];
    for (word, len) in cases {
        let mut p = prog(&[auipc(5, 0), addi(5, 5, 0x100), csr(1, 0, 5, 0x305)]);
        if len == 2 {
            p.h(word as u16).h(0);
        } else {
            p.w(word);
        }
        p.bytes.resize(0x100, 0);
        p.w(jal(0, 0));
        let mut m = M::new(&p);
        m.run(4);
        assert_eq!(m.hart.pc, BASE + 0x100, "{word:#x} trapped");
        assert_eq!(
            m.hart.icount, 4,
            "{word:#x}: the trapping instruction does not retire"
        );
        assert_eq!(m.csr(0x342), 2, "mcause for {word:#x}");
        assert_eq!(m.csr(0x341), BASE + 12, "mepc");
        let raw = if len == 2 {
            word as u16 as u64
        } else {
            word as u64
        };
        assert_eq!(m.csr(0x343), raw, "mtval holds the instruction bits");
    }
}

#[test]
fn ecall_and_ebreak_trap() {
    let p = |w: u32| {
        let mut p = prog(&[auipc(5, 0), addi(5, 5, 0x100), csr(1, 0, 5, 0x305), w]);
        p.bytes.resize(0x100, 0);
        p.w(jal(0, 0));
        p
    };
    let mut m = M::new(&p(ECALL));
    m.run(4);
    assert_eq!(
        (m.hart.pc, m.csr(0x342), m.csr(0x341), m.hart.icount),
        (BASE + 0x100, 11, BASE + 12, 4)
    );
    let mut m = M::new(&p(EBREAK));
    m.run(4);
    // mtval = the ebreak's pc, as QEMU 10 writes; mepc names the ebreak too.
    assert_eq!(
        (m.csr(0x342), m.csr(0x343), m.csr(0x341)),
        (3, BASE + 12, BASE + 12)
    );
}

#[test]
fn csr_instructions_read_old_values() {
    let p = prog_spin(&[
        addi(1, 0, 0x55),
        csr(1, 2, 1, 0x340), // csrrw x2, mscratch, x1  → x2 = 0
        csr(6, 3, 2, 0x340), // csrrsi x3, mscratch, 2  → x3 = 0x55, mscratch = 0x57
        csr(3, 4, 0, 0x340), // csrrc x4, mscratch, x0  → 0x57 (no write)
        csr(7, 5, 1, 0x340), // csrrci x5, mscratch, 1  → 0x57, mscratch = 0x56
        csr(2, 6, 0, 0x340), // csrr x6 → 0x56
    ]);
    let mut m = M::new(&p);
    m.run(6);
    assert_eq!(
        (m.x(2), m.x(3), m.x(4), m.x(5), m.x(6)),
        (0, 0x55, 0x57, 0x57, 0x56)
    );
}

#[test]
fn fp_moves_box_and_sign_inject() {
    let p = prog_spin(&[
        lui(1, 0x3f80_0000),  // x1 = 1.0f bits
        fp(0x78, 1, 1, 0, 0), // fmv.w.x f1, x1       → boxed
        fp(0x70, 2, 1, 0, 0), // fmv.x.w x2, f1
        fp(0x10, 2, 1, 1, 1), // fsgnjn.s f2, f1, f1  → -1.0
        fp(0x70, 3, 2, 0, 0), // fmv.x.w x3, f2       → sext(0xbf800000)
        fp(0x79, 3, 1, 0, 0), // fmv.d.x f3, x1       (not NaN-boxed as f32)
        fp(0x10, 4, 3, 3, 0), // fsgnj.s f4, f3, f3   → canonical NaN
        auipc(5, 0x2000),
        andi(5, 5, -8),
        fsd(1, 5, 0),         // fsd f1
        flw(5, 5, 0),         // flw f5 ← low word of f1 → boxed 1.0
        fsw(2, 5, 8),         // fsw f2: low 32 bits
        load(6, 6, 5, 8),     // lwu x6
        fld(6, 5, 0),         // fld f6 = f1's bits
        fp(0x11, 7, 6, 6, 2), // fsgnjx.d f7, f6, f6 → sign cleared (f6 sign set)
    ]);
    let mut m = M::new(&p);
    m.hart.csr.mstatus |= MSTATUS_FS;
    m.run(15);
    let boxed_one = 0xffff_ffff_3f80_0000u64;
    assert_eq!(m.hart.f[1], boxed_one);
    assert_eq!(m.x(2), 0x3f80_0000);
    assert_eq!(m.hart.f[2], 0xffff_ffff_bf80_0000);
    assert_eq!(m.x(3), 0xffff_ffff_bf80_0000);
    assert_eq!(
        m.hart.f[4],
        0xffff_ffff_0000_0000 | F32_CANONICAL_NAN as u64
    );
    assert_eq!(m.hart.f[5], boxed_one);
    assert_eq!(m.x(6), 0xbf80_0000);
    assert_eq!(m.hart.f[6], boxed_one);
    assert_eq!(m.hart.f[7], boxed_one & !(1 << 63));
    assert_eq!(m.hart.csr.mstatus & MSTATUS_FS, MSTATUS_FS, "FS dirty");
}

#[test]
fn fp_instructions_are_illegal_with_fs_off() {
    let word = fp(0x78, 1, 1, 0, 0); // fmv.w.x f1, x1
    let mut p = prog(&[auipc(5, 0), addi(5, 5, 0x100), csr(1, 0, 5, 0x305), word]);
    p.bytes.resize(0x100, 0);
    p.w(jal(0, 0));
    let mut m = M::new(&p);
    m.hart.csr.mstatus &= !MSTATUS_FS;
    m.run(4);
    assert_eq!(
        (m.hart.pc, m.csr(0x342), m.csr(0x343)),
        (BASE + 0x100, 2, word as u64)
    );
}

#[test]
fn reserved_rounding_mode_is_illegal() {
    let word = fp(0x00, 1, 2, 3, 5); // fadd.s f1, f2, f3, rm=5
    let mut p = prog(&[auipc(5, 0), addi(5, 5, 0x100), csr(1, 0, 5, 0x305), word]);
    p.bytes.resize(0x100, 0);
    p.w(jal(0, 0));
    let mut m = M::new(&p);
    m.hart.csr.mstatus |= MSTATUS_FS;
    m.run(4);
    assert_eq!(
        (m.hart.pc, m.csr(0x342), m.csr(0x343)),
        (BASE + 0x100, 2, word as u64)
    );
}

/// R4-type fused multiply-add (`opc` 0x43 fmadd .. 0x4f fnmadd), single precision.
fn fma_s(opc: u32, rd: u32, rs1: u32, rs2: u32, rs3: u32, rm: u32) -> u32 {
    rs3 << 27 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | opc
}

#[test]
fn fp_arithmetic_compares_converts_and_flags() {
    let p = prog_spin(&[
        lui(1, 0x3f80_0000), // 1.0f
        lui(2, 0x4000_0000), // 2.0f
        addi(7, 0, -5),
        fp(0x78, 1, 1, 0, 0),       // fmv.w.x f1, x1
        fp(0x78, 2, 2, 0, 0),       // fmv.w.x f2, x2
        fp(0x78, 5, 0, 0, 0),       // fmv.w.x f5, x0 (+0.0)
        fp(0x00, 3, 1, 2, 7),       // fadd.s f3 = 3.0 (dynamic rm)
        fp(0x0c, 4, 1, 5, 0),       // fdiv.s f4 = 1/0 = +inf, DZ
        fp(0x50, 3, 1, 2, 1),       // flt.s x3 = 1
        fp(0x50, 4, 1, 2, 0),       // fle.s x4 = (1 <= 2) = 1
        fp(0x50, 5, 1, 2, 2),       // feq.s x5 = (1 == 2) = 0
        fp(0x60, 6, 3, 0, 1),       // fcvt.w.s x6 = 3 (rtz)
        fp(0x68, 6, 7, 0, 7),       // fcvt.s.w f6 = -5.0
        fp(0x70, 8, 4, 0, 1),       // fclass.s x8 = +inf (bit 7)
        fma_s(0x43, 7, 1, 2, 3, 0), // fmadd.s f7 = 1*2+3 = 5.0
        fp(0x21, 8, 3, 0, 7),       // fcvt.d.s f8 = 3.0
        fp(0x14, 9, 1, 2, 1),       // fmax.s f9 = 2.0
    ]);
    let mut m = M::new(&p);
    m.hart.csr.mstatus |= MSTATUS_FS;
    m.run(17);
    let boxed = |v: u32| 0xffff_ffff_0000_0000 | v as u64;
    assert_eq!(m.hart.f[3], boxed(0x4040_0000));
    assert_eq!(m.hart.f[4], boxed(0x7f80_0000));
    assert_eq!((m.x(3), m.x(4), m.x(5)), (1, 1, 0), "flt, fle, feq");
    assert_eq!(m.x(6), 3);
    assert_eq!(m.hart.f[6], boxed(0xc0a0_0000));
    assert_eq!(m.x(8), 1 << 7);
    assert_eq!(m.hart.f[7], boxed(0x40a0_0000));
    assert_eq!(m.hart.f[8], 0x4008_0000_0000_0000);
    assert_eq!(m.hart.f[9], boxed(0x4000_0000));
    assert_eq!(m.hart.csr.fflags & rewind_cpu::fpu::DZ, rewind_cpu::fpu::DZ);
    assert_eq!(m.hart.icount, 17);
}

#[test]
fn dynamic_rounding_mode_with_reserved_frm_is_illegal() {
    let word = fp(0x00, 3, 1, 2, 7); // fadd.s, rm = dyn
    let mut p = prog(&[auipc(5, 0), addi(5, 5, 0x100), csr(1, 0, 5, 0x305), word]);
    p.bytes.resize(0x100, 0);
    p.w(jal(0, 0));
    let mut m = M::new(&p);
    m.hart.csr.mstatus |= MSTATUS_FS;
    m.hart.csr.frm = 5;
    m.run(4);
    assert_eq!(
        (m.hart.pc, m.csr(0x342), m.csr(0x343)),
        (BASE + 0x100, 2, word as u64)
    );
}

#[test]
fn code_modified_on_another_cached_page() {
    // Page 0 calls a function on page 1, rewrites it with a store, and calls it again: the
    // store hits a page held in another fetch way.
    let new = addi(10, 0, 42);
    let lo = ((new & 0xfff) as i32) << 20 >> 20;
    let hi = new.wrapping_sub(lo as u32);
    let mut p = prog(&[
        auipc(5, 0x1000),    // 0: x5 = BASE + 0x1000
        jal(1, 0x1000 - 4),  // 4
        lui(6, hi),          // 8
        addi(6, 6, lo),      // 12
        sw(6, 5, 0),         // 16
        jal(1, 0x1000 - 20), // 20
        jal(0, 0),           // 24
    ]);
    p.bytes.resize(0x1000, 0);
    p.w(addi(10, 0, 1)).w(jalr(0, 1, 0));
    let mut m = M::new(&p);
    m.run(4);
    assert_eq!((m.x(10), m.hart.pc), (1, BASE + 8));
    // One run for everything else, so page 1 stays in the fetch cache while it is rewritten.
    let mut m = M::new(&p);
    m.run(10);
    assert_eq!((m.x(10), m.hart.pc, m.hart.icount), (42, BASE + 24, 10));
}

#[test]
fn single_byte_overwrite_of_a_decoded_instruction() {
    // `addi x10, x0, 1` at 20 runs, then its top byte (imm[11:4]) becomes 0x02: imm = 33.
    let p = prog(&[
        auipc(5, 0),        // 0
        jal(1, 16),         // 4: call 20
        addi(6, 0, 2),      // 8
        store(0, 6, 5, 23), // 12: sb x6, 23(x5)
        jal(1, 4),          // 16: call 20
        addi(10, 0, 1),     // 20
        jalr(0, 1, 0),      // 24
    ]);
    let mut m = M::new(&p);
    m.run(3);
    assert_eq!(m.x(10), 1);
    m.run(5);
    assert_eq!(m.x(10), 33);
}

#[test]
fn fence_i_with_several_cached_pages_keeps_executing_correctly() {
    // Alternate between two pages with a fence.i on each pass: results and count stay exact.
    let mut p = prog(&[
        addi(5, 0, 10),     // 0
        jal(1, 0x1000 - 4), // 4: call
        addi(5, 5, -1),     // 8
        bne(5, 0, -8),      // 12
        jal(0, 0),          // 16
    ]);
    p.bytes.resize(0x1000, 0);
    p.w(FENCE_I).w(addi(6, 6, 3)).w(jalr(0, 1, 0));
    let mut m = M::new(&p);
    assert_eq!(m.run(1 + 10 * 6), ExitReason::Budget);
    assert_eq!((m.x(6), m.hart.pc), (30, BASE + 16));
}
