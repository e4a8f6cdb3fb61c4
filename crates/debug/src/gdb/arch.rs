//! The RV64GC register file as gdb sees it: a custom [`Arch`] whose target description names
//! the general registers (`zero`, `ra`, `sp`, ...), the FP registers, the main CSRs and the
//! privilege level, with the register numbers gdb's RISC-V port uses (QEMU's layout): x0-x31
//! are 0-31, pc 32, f0-f31 33-64, CSR `n` is `65 + n` and `priv` is 4161. The `g` packet holds
//! x, pc and f; CSRs and `priv` are read one at a time (`p` packets).

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use gdbstub::arch::{Arch, RegId, Registers};
use rewind_cpu::csr::{self, CsrOp};
use rewind_cpu::{Hart, Mmio, MmioFault, Priv, Ram};

/// gdb's register number of `pc`.
pub const PC_REGNUM: usize = 32;
/// gdb's register number of `f0`.
pub const FIRST_FPR_REGNUM: usize = 33;
/// gdb's register number of CSR 0 (CSR `n` is `FIRST_CSR_REGNUM + n`).
pub const FIRST_CSR_REGNUM: usize = 65;
/// gdb's register number of the `priv` virtual register.
pub const PRIV_REGNUM: usize = 4161;

/// Bytes of the `g` packet: x0-x31, pc, f0-f31.
pub const G_PACKET_LEN: usize = 65 * 8;
/// Bytes of a `g` packet without the FP registers (what gdb sends back when it only knows
/// the integer registers).
const G_PACKET_INT_LEN: usize = 33 * 8;

/// The ABI names gdb expects for x0-x31 in `org.gnu.gdb.riscv.cpu`.
pub const GPR_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// The ABI names gdb expects for f0-f31 in `org.gnu.gdb.riscv.fpu`.
pub const FPR_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The FP CSRs, described in the FPU feature as 32-bit registers (as QEMU does).
const FP_CSRS: [(&str, u16); 3] = [("fflags", 0x001), ("frm", 0x002), ("fcsr", 0x003)];

/// The CSRs in the `org.gnu.gdb.riscv.csr` feature, by name and number.
pub const CSRS: &[(&str, u16)] = &[
    ("sstatus", 0x100),
    ("sie", 0x104),
    ("stvec", 0x105),
    ("scounteren", 0x106),
    ("senvcfg", 0x10a),
    ("sscratch", 0x140),
    ("sepc", 0x141),
    ("scause", 0x142),
    ("stval", 0x143),
    ("sip", 0x144),
    ("satp", 0x180),
    ("mstatus", 0x300),
    ("misa", 0x301),
    ("medeleg", 0x302),
    ("mideleg", 0x303),
    ("mie", 0x304),
    ("mtvec", 0x305),
    ("mcounteren", 0x306),
    ("menvcfg", 0x30a),
    ("mcountinhibit", 0x320),
    ("mscratch", 0x340),
    ("mepc", 0x341),
    ("mcause", 0x342),
    ("mtval", 0x343),
    ("mip", 0x344),
    ("pmpcfg0", 0x3a0),
    ("pmpcfg2", 0x3a2),
    ("pmpaddr0", 0x3b0),
    ("pmpaddr1", 0x3b1),
    ("pmpaddr2", 0x3b2),
    ("pmpaddr3", 0x3b3),
    ("pmpaddr4", 0x3b4),
    ("pmpaddr5", 0x3b5),
    ("pmpaddr6", 0x3b6),
    ("pmpaddr7", 0x3b7),
    ("pmpaddr8", 0x3b8),
    ("pmpaddr9", 0x3b9),
    ("pmpaddr10", 0x3ba),
    ("pmpaddr11", 0x3bb),
    ("pmpaddr12", 0x3bc),
    ("pmpaddr13", 0x3bd),
    ("pmpaddr14", 0x3be),
    ("pmpaddr15", 0x3bf),
    ("mcycle", 0xb00),
    ("minstret", 0xb02),
    ("cycle", 0xc00),
    ("instret", 0xc02),
    ("mvendorid", 0xf11),
    ("marchid", 0xf12),
    ("mimpid", 0xf13),
    ("mhartid", 0xf14),
];

/// The RV64GC hart as a gdbstub architecture.
pub enum Rv64 {}

impl Arch for Rv64 {
    type Usize = u64;
    type Registers = Rv64Regs;
    type BreakpointKind = usize;
    type RegId = Rv64RegId;

    fn target_description_xml() -> Option<&'static str> {
        Some(target_xml())
    }
}

/// The registers of the `g` packet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rv64Regs {
    /// x0-x31.
    pub x: [u64; 32],
    /// The program counter.
    pub pc: u64,
    /// f0-f31 as raw bits.
    pub f: [u64; 32],
    /// False when a `G` packet carried only x and pc (leave the FP registers alone).
    pub has_fp: bool,
}

impl Rv64Regs {
    /// The registers of `hart`.
    pub fn from_hart(hart: &Hart) -> Self {
        Rv64Regs {
            x: hart.x,
            pc: hart.pc,
            f: hart.f,
            has_fp: true,
        }
    }

    /// Write these registers to `hart` (x0 stays zero).
    pub fn apply(&self, hart: &mut Hart) {
        hart.x = self.x;
        hart.x[0] = 0;
        hart.pc = self.pc;
        if self.has_fp && hart.f != self.f {
            hart.f = self.f;
            hart.set_fs_dirty();
        }
    }
}

impl Registers for Rv64Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.pc
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for v in self.x.iter().chain([&self.pc]).chain(self.f.iter()) {
            for b in v.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() != G_PACKET_LEN && bytes.len() != G_PACKET_INT_LEN {
            return Err(());
        }
        let mut words = bytes.chunks_exact(8).map(le_u64);
        for r in self.x.iter_mut() {
            *r = words.next().ok_or(())?;
        }
        self.pc = words.next().ok_or(())?;
        self.has_fp = bytes.len() == G_PACKET_LEN;
        if self.has_fp {
            for r in self.f.iter_mut() {
                *r = words.next().ok_or(())?;
            }
        }
        Ok(())
    }
}

/// A little-endian u64 from up to 8 bytes (missing high bytes are zero).
fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

/// One register, by gdb's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rv64RegId {
    /// x0-x31.
    Gpr(u8),
    /// The program counter.
    Pc,
    /// f0-f31.
    Fpr(u8),
    /// A CSR by number.
    Csr(u16),
    /// The privilege level (0 U, 1 S, 3 M).
    Priv,
}

impl Rv64RegId {
    /// Bytes gdb expects for this register (as the target description says).
    pub fn size(self) -> usize {
        match self {
            Rv64RegId::Csr(n) if FP_CSRS.iter().any(|&(_, c)| c == n) => 4,
            _ => 8,
        }
    }
}

impl RegId for Rv64RegId {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        let reg = match id {
            0..=31 => Rv64RegId::Gpr(id as u8),
            PC_REGNUM => Rv64RegId::Pc,
            33..=64 => Rv64RegId::Fpr((id - FIRST_FPR_REGNUM) as u8),
            65..=4160 => Rv64RegId::Csr((id - FIRST_CSR_REGNUM) as u16),
            PRIV_REGNUM => Rv64RegId::Priv,
            _ => return None,
        };
        Some((reg, NonZeroUsize::new(reg.size())))
    }
}

/// The target description: the four features gdb's RISC-V port knows, with explicit register
/// numbers so `p`/`P` packets name registers as [`Rv64RegId`] does.
pub fn target_xml() -> &'static str {
    static XML: OnceLock<String> = OnceLock::new();
    XML.get_or_init(|| {
        let mut x = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n\
             <target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n\
             <feature name=\"org.gnu.gdb.riscv.cpu\">\n",
        );
        for (i, name) in GPR_NAMES.iter().enumerate() {
            let ty = match *name {
                "sp" | "gp" | "tp" | "fp" => "data_ptr",
                "ra" => "code_ptr",
                _ => "int",
            };
            x.push_str(&format!(
                "  <reg name=\"{name}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>\n"
            ));
        }
        x.push_str(&format!(
            "  <reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"{PC_REGNUM}\"/>\n\
             </feature>\n<feature name=\"org.gnu.gdb.riscv.fpu\">\n\
               <union id=\"riscv_double\">\n    <field name=\"float\" type=\"ieee_single\"/>\n\
                 <field name=\"double\" type=\"ieee_double\"/>\n  </union>\n"
        ));
        for (i, name) in FPR_NAMES.iter().enumerate() {
            x.push_str(&format!(
                "  <reg name=\"{name}\" bitsize=\"64\" type=\"riscv_double\" regnum=\"{}\"/>\n",
                FIRST_FPR_REGNUM + i
            ));
        }
        for (name, n) in FP_CSRS {
            x.push_str(&format!(
                "  <reg name=\"{name}\" bitsize=\"32\" type=\"int\" regnum=\"{}\"/>\n",
                FIRST_CSR_REGNUM + n as usize
            ));
        }
        x.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n");
        for (name, n) in CSRS {
            x.push_str(&format!(
                "  <reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\"/>\n",
                FIRST_CSR_REGNUM + *n as usize
            ));
        }
        x.push_str(&format!(
            "</feature>\n<feature name=\"org.gnu.gdb.riscv.virtual\">\n\
             <reg name=\"priv\" bitsize=\"64\" type=\"int\" regnum=\"{PRIV_REGNUM}\"/>\n\
             </feature>\n</target>\n"
        ));
        x
    })
}

/// Read a CSR as the debugger sees it: the value a `csrr` in M-mode would give, with no
/// privilege or FP-enable check. `None` for CSRs rewind does not implement.
pub fn read_csr(hart: &Hart, n: u16) -> Option<u64> {
    let c = &hart.csr;
    let v = match n {
        0x001 => c.fflags as u64 & 0x1f,
        0x002 => c.frm as u64 & 7,
        0x003 => ((c.frm as u64 & 7) << 5) | (c.fflags as u64 & 0x1f),
        0x100 => c.mstatus & csr::SSTATUS_MASK,
        0x104 => c.mie & c.mideleg & csr::S_INTERRUPTS,
        0x105 => c.stvec,
        0x106 => c.scounteren,
        0x10a => c.senvcfg,
        0x140 => c.sscratch,
        0x141 => c.sepc,
        0x142 => c.scause,
        0x143 => c.stval,
        0x144 => c.mip & c.mideleg & csr::S_INTERRUPTS,
        0x180 => c.satp,
        0x300 => c.mstatus,
        0x301 => c.misa,
        0x302 => c.medeleg,
        0x303 => c.mideleg,
        0x304 => c.mie,
        0x305 => c.mtvec,
        0x306 => c.mcounteren,
        0x30a => c.menvcfg,
        0x320 => c.mcountinhibit,
        0x323..=0x33f => c.mhpmevent[(n - 0x323) as usize],
        0x340 => c.mscratch,
        0x341 => c.mepc,
        0x342 => c.mcause,
        0x343 => c.mtval,
        0x344 => c.mip,
        0x3a0 | 0x3a2 => {
            let base = (n - 0x3a0) as usize * 4;
            c.pmpcfg[base..base + 8]
                .iter()
                .enumerate()
                .fold(0, |v, (i, &b)| v | (b as u64) << (8 * i))
        }
        0x3b0..=0x3bf => c.pmpaddr[(n - 0x3b0) as usize],
        0xb00 | 0xc00 => c.mcycle(hart.icount),
        0xb02 | 0xc02 => c.minstret(hart.icount),
        0xb03..=0xb12 => c.mhpmcounter[(n - 0xb03) as usize],
        0xc03..=0xc12 => c.mhpmcounter[(n - 0xc03) as usize],
        0xf11 | 0xf15 => 0,
        0xf12 => c.marchid,
        0xf13 => c.mimpid,
        0xf14 => c.mhartid,
        _ => return None,
    };
    Some(v)
}

/// Write a CSR from the debugger with the instruction's side effects (WARL masks, TLB flushes),
/// as an M-mode `csrw` would. Read-only and unknown CSRs are an error.
pub fn write_csr(hart: &mut Hart, n: u16, value: u64) -> Result<(), String> {
    if read_csr(hart, n).is_none() {
        return Err(format!("CSR {n:#x} is not implemented"));
    }
    if (n >> 10) & 3 == 3 {
        return Err(format!("CSR {n:#x} is read-only"));
    }
    // The FP CSRs need mstatus.FS on, as for the instruction; the debugger's write turns it on.
    if matches!(n, 0x001..=0x003) && !hart.fp_enabled() {
        hart.set_fs_dirty();
    }
    let prv = hart.prv;
    hart.prv = Priv::M;
    let r = hart.csr_op(&NoMmio, n, CsrOp::Write, value, true);
    hart.prv = prv;
    r.map(|_| ())
        .map_err(|e| format!("CSR {n:#x} cannot be written: {e:?}"))
}

/// Set the privilege level (`priv`: 0 U, 1 S, 3 M).
pub fn write_priv(hart: &mut Hart, value: u64) -> Result<(), String> {
    let p = match value {
        0 => Priv::U,
        1 => Priv::S,
        3 => Priv::M,
        _ => return Err(format!("{value} is not a privilege level (0 U, 1 S, 3 M)")),
    };
    if p != hart.prv {
        hart.prv = p;
        // Cached translations were made for the old privilege level.
        hart.tlb.flush();
    }
    Ok(())
}

/// The bus a CSR write from the debugger sees: CSR writes touch no device (only the `time`
/// CSR reads one, and it is read-only).
struct NoMmio;

impl Mmio for NoMmio {
    fn load(&mut self, _: &mut Ram, _: u64, _: u8, _: u64) -> Result<u64, MmioFault> {
        Ok(0)
    }

    fn store(&mut self, _: &mut Ram, _: u64, _: u8, _: u64, _: u64) -> Result<(), MmioFault> {
        Ok(())
    }

    fn mtime(&self, _: u64) -> u64 {
        0
    }
}
