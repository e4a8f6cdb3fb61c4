//! A tiny RV64GC assembler for tests and benchmarks: each function returns one instruction
//! word (or 16-bit parcel for the `c_*` forms), encoded per the RISC-V unprivileged spec.
#![allow(dead_code)]

/// R-type.
pub fn r(f7: u32, rs2: u32, rs1: u32, f3: u32, rd: u32, opc: u32) -> u32 {
    f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
}
/// I-type.
pub fn i(imm: i32, rs1: u32, f3: u32, rd: u32, opc: u32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc
}
/// S-type.
pub fn s(imm: i32, rs2: u32, rs1: u32, f3: u32, opc: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (imm & 31) << 7 | opc
}
/// B-type.
pub fn b(imm: i32, rs2: u32, rs1: u32, f3: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 12) & 1) << 31
        | ((imm >> 5) & 0x3f) << 25
        | rs2 << 20
        | rs1 << 15
        | f3 << 12
        | ((imm >> 1) & 0xf) << 8
        | ((imm >> 11) & 1) << 7
        | 0x63
}
/// U-type (imm is the full 32-bit value, low 12 bits ignored).
pub fn u(imm: u32, rd: u32, opc: u32) -> u32 {
    (imm & 0xffff_f000) | rd << 7 | opc
}
/// J-type.
pub fn j(imm: i32, rd: u32) -> u32 {
    let imm = imm as u32;
    ((imm >> 20) & 1) << 31
        | ((imm >> 1) & 0x3ff) << 21
        | ((imm >> 11) & 1) << 20
        | ((imm >> 12) & 0xff) << 12
        | rd << 7
        | 0x6f
}

pub fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x13)
}
pub fn addiw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x1b)
}
pub fn slti(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 2, rd, 0x13)
}
pub fn sltiu(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 3, rd, 0x13)
}
pub fn xori(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 4, rd, 0x13)
}
pub fn andi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 7, rd, 0x13)
}
pub fn slli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 1, rd, 0x13)
}
pub fn srli(rd: u32, rs1: u32, sh: u32) -> u32 {
    i(sh as i32, rs1, 5, rd, 0x13)
}
pub fn srai(rd: u32, rs1: u32, sh: u32) -> u32 {
    i((sh | 0x400) as i32, rs1, 5, rd, 0x13)
}
pub fn sraiw(rd: u32, rs1: u32, sh: u32) -> u32 {
    i((sh | 0x400) as i32, rs1, 5, rd, 0x1b)
}
pub fn lui(rd: u32, imm: u32) -> u32 {
    u(imm, rd, 0x37)
}
pub fn auipc(rd: u32, imm: u32) -> u32 {
    u(imm, rd, 0x17)
}
pub fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 0, rd, 0x33)
}
pub fn sub(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 0, rd, 0x33)
}
pub fn sll(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 1, rd, 0x33)
}
pub fn slt(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 2, rd, 0x33)
}
pub fn sltu(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 3, rd, 0x33)
}
pub fn xor(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 4, rd, 0x33)
}
pub fn sra(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 5, rd, 0x33)
}
pub fn addw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 0, rd, 0x3b)
}
pub fn subw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 0, rd, 0x3b)
}
pub fn sllw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 1, rd, 0x3b)
}
pub fn srlw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0, rs2, rs1, 5, rd, 0x3b)
}
pub fn sraw(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(0x20, rs2, rs1, 5, rd, 0x3b)
}
/// M extension: `f3` 0 mul, 1 mulh, 2 mulhsu, 3 mulhu, 4 div, 5 divu, 6 rem, 7 remu.
pub fn mop(f3: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, f3, rd, 0x33)
}
/// RV64M word ops: `f3` 0 mulw, 4 divw, 5 divuw, 6 remw, 7 remuw.
pub fn mopw(f3: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(1, rs2, rs1, f3, rd, 0x3b)
}
/// Loads: `f3` 0 lb, 1 lh, 2 lw, 3 ld, 4 lbu, 5 lhu, 6 lwu.
pub fn load(f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, f3, rd, 0x03)
}
pub fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
    load(3, rd, rs1, imm)
}
/// Stores: `f3` 0 sb, 1 sh, 2 sw, 3 sd.
pub fn store(f3: u32, rs2: u32, rs1: u32, imm: i32) -> u32 {
    s(imm, rs2, rs1, f3, 0x23)
}
pub fn sd(rs2: u32, rs1: u32, imm: i32) -> u32 {
    store(3, rs2, rs1, imm)
}
pub fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    store(2, rs2, rs1, imm)
}
pub fn beq(rs1: u32, rs2: u32, imm: i32) -> u32 {
    b(imm, rs2, rs1, 0)
}
pub fn bne(rs1: u32, rs2: u32, imm: i32) -> u32 {
    b(imm, rs2, rs1, 1)
}
pub fn blt(rs1: u32, rs2: u32, imm: i32) -> u32 {
    b(imm, rs2, rs1, 4)
}
pub fn bgeu(rs1: u32, rs2: u32, imm: i32) -> u32 {
    b(imm, rs2, rs1, 7)
}
pub fn jal(rd: u32, imm: i32) -> u32 {
    j(imm, rd)
}
pub fn jalr(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 0, rd, 0x67)
}
/// AMO: `f5` funct5 (0x02 lr, 0x03 sc, 0x01 swap, 0x00 add, 0x04 xor, 0x0c and, 0x08 or,
/// 0x10 min, 0x14 max, 0x18 minu, 0x1c maxu); `f3` 2 = .w, 3 = .d.
pub fn amo(f5: u32, f3: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(f5 << 2, rs2, rs1, f3, rd, 0x2f)
}
/// CSR: `f3` 1 csrrw, 2 csrrs, 3 csrrc, 5/6/7 immediate forms (rs1 = uimm).
pub fn csr(f3: u32, rd: u32, rs1: u32, addr: u32) -> u32 {
    addr << 20 | rs1 << 15 | f3 << 12 | rd << 7 | 0x73
}
pub const ECALL: u32 = 0x0000_0073;
pub const EBREAK: u32 = 0x0010_0073;
pub const MRET: u32 = 0x3020_0073;
pub const WFI: u32 = 0x1050_0073;
pub const FENCE_I: u32 = 0x0000_100f;
pub const NOP: u32 = 0x0000_0013;

/// OP-FP: funct7, rs2, rs1, funct3 (rm), rd.
pub fn fp(f7: u32, rd: u32, rs1: u32, rs2: u32, rm: u32) -> u32 {
    r(f7, rs2, rs1, rm, rd, 0x53)
}
pub fn flw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 2, rd, 0x07)
}
pub fn fld(rd: u32, rs1: u32, imm: i32) -> u32 {
    i(imm, rs1, 3, rd, 0x07)
}
pub fn fsw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s(imm, rs2, rs1, 2, 0x27)
}
pub fn fsd(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s(imm, rs2, rs1, 3, 0x27)
}

// Compressed forms (16-bit parcels).
/// c.li rd, imm (-32..31)
pub fn c_li(rd: u32, imm: i32) -> u16 {
    let imm = imm as u32;
    (0b010 << 13 | ((imm >> 5) & 1) << 12 | rd << 7 | (imm & 31) << 2 | 1) as u16
}
/// c.addi rd, imm
pub fn c_addi(rd: u32, imm: i32) -> u16 {
    let imm = imm as u32;
    (((imm >> 5) & 1) << 12 | rd << 7 | (imm & 31) << 2 | 1) as u16
}
/// c.slli rd, shamt
pub fn c_slli(rd: u32, sh: u32) -> u16 {
    (((sh >> 5) & 1) << 12 | rd << 7 | (sh & 31) << 2 | 2) as u16
}
/// c.mv rd, rs2
pub fn c_mv(rd: u32, rs2: u32) -> u16 {
    (0b100 << 13 | rd << 7 | rs2 << 2 | 2) as u16
}
/// c.add rd, rs2
pub fn c_add(rd: u32, rs2: u32) -> u16 {
    (0b100 << 13 | 1 << 12 | rd << 7 | rs2 << 2 | 2) as u16
}
/// c.bnez rs1' (x8..x15), offset
pub fn c_bnez(rs1: u32, off: i32) -> u16 {
    let o = off as u32;
    (0b111 << 13
        | ((o >> 8) & 1) << 12
        | ((o >> 3) & 3) << 10
        | (rs1 - 8) << 7
        | ((o >> 6) & 3) << 5
        | ((o >> 1) & 3) << 3
        | ((o >> 5) & 1) << 2
        | 1) as u16
}
/// c.j offset
pub fn c_j(off: i32) -> u16 {
    let o = off as u32;
    (0b101 << 13
        | ((o >> 11) & 1) << 12
        | ((o >> 4) & 1) << 11
        | ((o >> 8) & 3) << 9
        | ((o >> 10) & 1) << 8
        | ((o >> 6) & 1) << 7
        | ((o >> 7) & 1) << 6
        | ((o >> 1) & 7) << 3
        | ((o >> 5) & 1) << 2
        | 1) as u16
}
pub const C_NOP: u16 = 0x0001;

/// A program image built from 32-bit words and 16-bit parcels.
#[derive(Default, Clone)]
pub struct Prog {
    /// Little-endian bytes.
    pub bytes: Vec<u8>,
}

impl Prog {
    pub fn new() -> Self {
        Self::default()
    }
    /// Append a 32-bit instruction.
    pub fn w(&mut self, w: u32) -> &mut Self {
        self.bytes.extend_from_slice(&w.to_le_bytes());
        self
    }
    /// Append a 16-bit parcel.
    pub fn h(&mut self, h: u16) -> &mut Self {
        self.bytes.extend_from_slice(&h.to_le_bytes());
        self
    }
    /// Current byte offset.
    pub fn here(&self) -> i32 {
        self.bytes.len() as i32
    }
}

/// No devices: every MMIO access faults, `mtime` is the instruction count.
pub struct NoDevices;

impl rewind_cpu::Mmio for NoDevices {
    fn load(
        &mut self,
        _: &mut rewind_cpu::Ram,
        _: u64,
        _: u8,
        _: u64,
    ) -> Result<u64, rewind_cpu::MmioFault> {
        Err(rewind_cpu::MmioFault)
    }
    fn store(
        &mut self,
        _: &mut rewind_cpu::Ram,
        _: u64,
        _: u8,
        _: u64,
        _: u64,
    ) -> Result<(), rewind_cpu::MmioFault> {
        Err(rewind_cpu::MmioFault)
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}
