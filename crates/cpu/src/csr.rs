//! Control and status registers.
//!
//! CONTRACT (privileged-architecture work owns this file; the names below are used by exec.rs):
//! - `Csrs::new(hart_id)` gives reset values (misa = RV64IMAFDC + S + U, mstatus with UXL=SXL=2).
//! - `Hart::csr_op` implements csrrw/csrrs/csrrc(/i) semantics incl. privilege and read-only checks.
//! - After any CSR write the interpreter calls `Hart::take_pending_interrupt`.
//!
//! Behaviour follows QEMU 7.2's `virt` board (rv64 cpu without the H extension): writes are
//! modelled as QEMU's read-modify-write with a write mask, so csrrs/csrrc only touch the bits set
//! in the operand (this matters for mip.SEIP, whose read value includes the device line).

use crate::bus::Mmio;
use crate::hart::{Hart, Priv};
use crate::trap::Exception;

/// mstatus.SIE.
pub const MSTATUS_SIE: u64 = 1 << 1;
/// mstatus.MIE.
pub const MSTATUS_MIE: u64 = 1 << 3;
/// mstatus.SPIE.
pub const MSTATUS_SPIE: u64 = 1 << 5;
/// mstatus.UBE (read-only zero: little-endian only).
pub const MSTATUS_UBE: u64 = 1 << 6;
/// mstatus.MPIE.
pub const MSTATUS_MPIE: u64 = 1 << 7;
/// mstatus.SPP.
pub const MSTATUS_SPP: u64 = 1 << 8;
/// mstatus.MPP field mask.
pub const MSTATUS_MPP: u64 = 3 << 11;
/// Shift of mstatus.MPP.
pub const MSTATUS_MPP_SHIFT: u32 = 11;
/// mstatus.VS field mask (storage only, as in QEMU 7.2 without V).
pub const MSTATUS_VS: u64 = 3 << 9;
/// mstatus.FS field mask.
pub const MSTATUS_FS: u64 = 3 << 13;
/// mstatus.XS field mask (read-only zero: no custom extension state).
pub const MSTATUS_XS: u64 = 3 << 15;
/// mstatus.MPRV.
pub const MSTATUS_MPRV: u64 = 1 << 17;
/// mstatus.SUM.
pub const MSTATUS_SUM: u64 = 1 << 18;
/// mstatus.MXR.
pub const MSTATUS_MXR: u64 = 1 << 19;
/// mstatus.TVM.
pub const MSTATUS_TVM: u64 = 1 << 20;
/// mstatus.TW.
pub const MSTATUS_TW: u64 = 1 << 21;
/// mstatus.TSR.
pub const MSTATUS_TSR: u64 = 1 << 22;
/// mstatus.UXL field (read-only 2 = 64-bit).
pub const MSTATUS_UXL: u64 = 3 << 32;
/// mstatus.SXL field (read-only 2 = 64-bit).
pub const MSTATUS_SXL: u64 = 3 << 34;
/// mstatus.SD (read-only summary of FS/XS dirty).
pub const MSTATUS_SD: u64 = 1 << 63;

/// Bits of mstatus that software can write.
const MSTATUS_WMASK: u64 = MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_VS
    | MSTATUS_FS
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR;
/// The sstatus view of mstatus (what S-mode reads).
pub const SSTATUS_MASK: u64 = MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_UBE
    | MSTATUS_SPP
    | MSTATUS_VS
    | MSTATUS_FS
    | MSTATUS_XS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD;
/// The bits of sstatus that S-mode can write.
const SSTATUS_WMASK: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;

/// Supervisor software interrupt (bit 1 of mip/mie).
pub const MIP_SSIP: u64 = 1 << 1;
/// Machine software interrupt.
pub const MIP_MSIP: u64 = 1 << 3;
/// Supervisor timer interrupt.
pub const MIP_STIP: u64 = 1 << 5;
/// Machine timer interrupt.
pub const MIP_MTIP: u64 = 1 << 7;
/// Supervisor external interrupt.
pub const MIP_SEIP: u64 = 1 << 9;
/// Machine external interrupt.
pub const MIP_MEIP: u64 = 1 << 11;
/// The S-level interrupts (the only delegable ones; the only ones M can write in mip).
pub const S_INTERRUPTS: u64 = MIP_SSIP | MIP_STIP | MIP_SEIP;
/// All implemented interrupts: only these can be taken.
pub const ALL_INTERRUPTS: u64 = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP;
/// Writable bits of mideleg and of mip from M-mode, as QEMU 7.2 (h=false) keeps them: the S
/// interrupts plus the VS and LCOF bits, which are storage only here.
pub const MIDELEG_MASK: u64 = 0x2666;
/// Writable bits of mie as QEMU 7.2 (h=false) keeps them (VS/LCOF bits are storage only).
pub const MIE_MASK: u64 = 0x2eee;

/// Exceptions that medeleg keeps, as observed on QEMU 7.2 (h=false): causes 0-13, 15 and the
/// guest-fault causes 20-23. Delegating cause 11 has no effect (M-mode traps stay in M).
pub const MEDELEG_MASK: u64 = 0xf0_bfff;

/// Number of implemented programmable counters beyond the fixed three (QEMU's pmu-num=16:
/// mhpmcounter3..18; 19..31 are illegal).
pub const HPM_COUNTERS: usize = 16;

/// misa: MXL=2 (RV64) and extensions A C D F I M S U.
pub const MISA: u64 = (2 << 62)
    | (1 << 0)   // A
    | (1 << 2)   // C
    | (1 << 3)   // D
    | (1 << 5)   // F
    | (1 << 8)   // I
    | (1 << 12)  // M
    | (1 << 18)  // S
    | (1 << 20); // U

/// satp.MODE field shift.
pub const SATP_MODE_SHIFT: u32 = 60;
/// satp.PPN field mask.
pub const SATP_PPN_MASK: u64 = (1 << 44) - 1;
/// satp.ASID field mask (16 bits, all writable as in QEMU).
pub const SATP_ASID_MASK: u64 = 0xffff << 44;
/// satp mode Bare.
pub const SATP_MODE_BARE: u64 = 0;
/// satp mode Sv39.
pub const SATP_MODE_SV39: u64 = 8;
/// satp mode Sv48.
pub const SATP_MODE_SV48: u64 = 9;
/// satp mode Sv57 (QEMU 7.2 supports it, so Linux picks it there).
pub const SATP_MODE_SV57: u64 = 10;

/// menvcfg bits QEMU 7.2 keeps: FIOM, CBIE, CBCFE, CBZE, PBMTE, STCE.
pub const MENVCFG_WMASK: u64 = 1 | (3 << 4) | (1 << 6) | (1 << 7) | (1 << 62) | (1 << 63);
/// menvcfg.PBMTE: with it set, PTE bits 63:54 are not checked (QEMU 7.2 behaviour).
pub const MENVCFG_PBMTE: u64 = 1 << 62;
/// senvcfg bits QEMU 7.2 keeps: FIOM, CBIE, CBCFE, CBZE.
pub const SENVCFG_WMASK: u64 = 1 | (3 << 4) | (1 << 6) | (1 << 7);

/// PMP configuration bit: readable.
pub const PMP_R: u8 = 1;
/// PMP configuration bit: writable.
pub const PMP_W: u8 = 2;
/// PMP configuration bit: executable.
pub const PMP_X: u8 = 4;
/// PMP configuration field A (address matching mode).
pub const PMP_A: u8 = 3 << 3;
/// PMP configuration bit: locked.
pub const PMP_L: u8 = 1 << 7;
/// Number of PMP entries.
pub const PMP_COUNT: usize = 16;

/// The three CSR instruction kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrOp {
    /// csrrw / csrrwi
    Write,
    /// csrrs / csrrsi
    Set,
    /// csrrc / csrrci
    Clear,
}

/// All CSR storage of a hart (serde: snapshots; call [`Csrs::pmp_update_all`] after restoring).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Csrs {
    /// mhartid
    pub mhartid: u64,
    /// mstatus (sstatus is a view of it)
    pub mstatus: u64,
    /// Accrued FP exception flags (fflags, low 5 bits of fcsr).
    pub fflags: u8,
    /// Dynamic FP rounding mode (frm).
    pub frm: u8,
    /// misa (constant).
    pub misa: u64,
    /// medeleg
    pub medeleg: u64,
    /// mideleg
    pub mideleg: u64,
    /// mie (sie is a view of it)
    pub mie: u64,
    /// Effective mip: `mip_sw | mip_dev` (kept combined so the interrupt check is one AND).
    pub mip: u64,
    /// The software-written pending bits (SSIP, STIP, SEIP).
    pub mip_sw: u64,
    /// The device-driven pending bits (MSIP, MTIP, MEIP, SEIP).
    pub mip_dev: u64,
    /// mtvec
    pub mtvec: u64,
    /// stvec
    pub stvec: u64,
    /// mscratch
    pub mscratch: u64,
    /// sscratch
    pub sscratch: u64,
    /// mepc
    pub mepc: u64,
    /// sepc
    pub sepc: u64,
    /// mcause
    pub mcause: u64,
    /// scause
    pub scause: u64,
    /// mtval
    pub mtval: u64,
    /// stval
    pub stval: u64,
    /// mcounteren
    pub mcounteren: u64,
    /// scounteren
    pub scounteren: u64,
    /// mcountinhibit
    pub mcountinhibit: u64,
    /// menvcfg
    pub menvcfg: u64,
    /// senvcfg
    pub senvcfg: u64,
    /// satp
    pub satp: u64,
    /// mcycle = icount + `cycle_offset` (wrapping) while counting.
    pub cycle_offset: u64,
    /// minstret = icount + `instret_offset` (wrapping) while counting.
    pub instret_offset: u64,
    /// mcycle value frozen while mcountinhibit.CY is set.
    pub cycle_frozen: u64,
    /// minstret value frozen while mcountinhibit.IR is set.
    pub instret_frozen: u64,
    /// pmpcfg bytes, one per entry.
    pub pmpcfg: [u8; PMP_COUNT],
    /// pmpaddr registers.
    pub pmpaddr: [u64; PMP_COUNT],
    /// Decoded PMP ranges: inclusive start and end byte address per entry (QEMU's rules).
    pub pmp_range: [(u64, u64); PMP_COUNT],
    /// Number of PMP entries whose A field is not OFF (0: M-mode allowed, S/U denied).
    pub pmp_rules: u32,
    /// mhpmcounter3..18: writable, never counting (QEMU counts host ticks; we stay deterministic).
    pub mhpmcounter: [u64; HPM_COUNTERS],
    /// mhpmevent3..31 (storage only).
    pub mhpmevent: [u64; 29],
    /// marchid (0; QEMU 7.2 reports its version number, the machine may set that).
    pub marchid: u64,
    /// mimpid (0; see `marchid`).
    pub mimpid: u64,
}

impl Csrs {
    /// Reset values for hart `hart_id`.
    pub fn new(hart_id: u64) -> Self {
        Csrs {
            mhartid: hart_id,
            mstatus: (2 << 32) | (2 << 34),
            fflags: 0,
            frm: 0,
            misa: MISA,
            medeleg: 0,
            mideleg: 0,
            mie: 0,
            mip: 0,
            mip_sw: 0,
            mip_dev: 0,
            mtvec: 0,
            stvec: 0,
            mscratch: 0,
            sscratch: 0,
            mepc: 0,
            sepc: 0,
            mcause: 0,
            scause: 0,
            mtval: 0,
            stval: 0,
            mcounteren: 0,
            scounteren: 0,
            mcountinhibit: 0,
            menvcfg: 0,
            senvcfg: 0,
            satp: 0,
            cycle_offset: 0,
            instret_offset: 0,
            cycle_frozen: 0,
            instret_frozen: 0,
            pmpcfg: [0; PMP_COUNT],
            pmpaddr: [0; PMP_COUNT],
            pmp_range: [(0, 0); PMP_COUNT],
            pmp_rules: 0,
            mhpmcounter: [0; HPM_COUNTERS],
            mhpmevent: [0; 29],
            marchid: 0,
            mimpid: 0,
        }
    }

    /// Recompute the effective mip from the software and device bits.
    #[inline]
    pub fn update_mip(&mut self) {
        self.mip = self.mip_sw | self.mip_dev;
    }

    /// mcycle at instruction count `icount`.
    #[inline]
    pub fn mcycle(&self, icount: u64) -> u64 {
        if self.mcountinhibit & 1 != 0 {
            self.cycle_frozen
        } else {
            icount.wrapping_add(self.cycle_offset)
        }
    }

    /// minstret at instruction count `icount`.
    #[inline]
    pub fn minstret(&self, icount: u64) -> u64 {
        if self.mcountinhibit & 4 != 0 {
            self.instret_frozen
        } else {
            icount.wrapping_add(self.instret_offset)
        }
    }

    /// Is PMP entry `i` locked against writes? (Its own L bit.)
    #[inline]
    fn pmp_locked(&self, i: usize) -> bool {
        self.pmpcfg[i] & PMP_L != 0
    }

    /// Recompute the decoded range of PMP entry `i` (QEMU's `pmp_update_rule_addr`) and the rule
    /// count.
    fn pmp_update_rule(&mut self, i: usize) {
        let this = self.pmpaddr[i];
        let prev = if i == 0 { 0 } else { self.pmpaddr[i - 1] };
        let range = match (self.pmpcfg[i] & PMP_A) >> 3 {
            1 => {
                // TOR: [prev << 2, (this << 2) - 1], nothing (QEMU: [0, 0]) if reversed.
                let sa = prev << 2;
                let ea = (this << 2).wrapping_sub(1);
                if sa > ea {
                    (0, 0)
                } else {
                    (sa, ea)
                }
            }
            2 => {
                let sa = this << 2;
                (sa, sa.wrapping_add(3))
            }
            3 => {
                if this == u64::MAX {
                    (0, u64::MAX)
                } else {
                    let t1 = (!this).trailing_zeros();
                    let base = (this & !((1u64 << t1) - 1)) << 2;
                    let size = if t1 + 3 >= 64 {
                        u64::MAX
                    } else {
                        (1u64 << (t1 + 3)) - 1
                    };
                    (base, base.wrapping_add(size))
                }
            }
            _ => (0, 0),
        };
        self.pmp_range[i] = range;
        self.pmp_rules = self.pmpcfg.iter().filter(|c| *c & PMP_A != 0).count() as u32;
    }

    /// Recompute all PMP rules (after a reset or a snapshot restore).
    pub fn pmp_update_all(&mut self) {
        for i in 0..PMP_COUNT {
            self.pmp_update_rule(i);
        }
    }

    /// Write one pmpcfg byte (ignored while the entry is locked).
    fn pmp_write_cfg(&mut self, i: usize, val: u8) {
        if !self.pmp_locked(i) {
            self.pmpcfg[i] = val;
            self.pmp_update_rule(i);
            if i + 1 < PMP_COUNT {
                // A TOR entry after this one uses our address as its start.
                self.pmp_update_rule(i + 1);
            }
        }
    }

    /// Write pmpaddr `i`, ignored while locked or while the next entry is a locked TOR entry.
    fn pmp_write_addr(&mut self, i: usize, val: u64) {
        if i + 1 < PMP_COUNT {
            let next = self.pmpcfg[i + 1];
            if next & PMP_L != 0 && (next & PMP_A) >> 3 == 1 {
                return;
            }
        }
        if !self.pmp_locked(i) {
            self.pmpaddr[i] = val;
            self.pmp_update_rule(i);
            if i + 1 < PMP_COUNT {
                self.pmp_update_rule(i + 1);
            }
        }
    }

    /// Does PMP allow an access of `size` bytes at physical `addr` needing permission `perm`
    /// (PMP_R/W/X) from privilege `m_mode` (true = M)? QEMU 7.2's `pmp_hart_has_privs`: the
    /// lowest-numbered entry overlapping the access decides; partial overlap fails; no match
    /// allows M and denies S/U. With no active entry at all QEMU 7.2 also denies S/U (checked
    /// on QEMU: an `sret` to S with all PMP entries OFF faults on the first fetch).
    #[inline]
    pub fn pmp_allows(&self, addr: u64, size: u64, perm: u8, m_mode: bool) -> bool {
        if self.pmp_rules == 0 {
            return m_mode;
        }
        let last = addr.wrapping_add(size.max(1) - 1);
        for i in 0..PMP_COUNT {
            let (sa, ea) = self.pmp_range[i];
            let s = addr >= sa && addr <= ea;
            let e = last >= sa && last <= ea;
            if s != e {
                return false;
            }
            let cfg = self.pmpcfg[i];
            if s && cfg & PMP_A != 0 {
                let allowed = if !m_mode || cfg & PMP_L != 0 {
                    cfg & 7
                } else {
                    7
                };
                return allowed & perm == perm;
            }
        }
        m_mode
    }

    /// True when PMP gives the same answer for every access inside the 4 KiB page at `page`, so
    /// a translation of that page may be cached.
    pub fn pmp_page_uniform(&self, page: u64) -> bool {
        if self.pmp_rules == 0 {
            return true;
        }
        let end = page | 0xfff;
        self.pmp_range
            .iter()
            .all(|&(sa, ea)| (sa <= page && ea >= end) || ea < page || sa > end)
    }

    /// The satp mode field.
    #[inline]
    pub fn satp_mode(&self) -> u64 {
        self.satp >> SATP_MODE_SHIFT
    }
}

/// CSR addresses used below.
mod addr {
    pub const FFLAGS: u16 = 0x001;
    pub const FRM: u16 = 0x002;
    pub const FCSR: u16 = 0x003;
    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10a;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const SATP: u16 = 0x180;
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MENVCFG: u16 = 0x30a;
    pub const MCOUNTINHIBIT: u16 = 0x320;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const MCYCLE: u16 = 0xb00;
    pub const MINSTRET: u16 = 0xb02;
    pub const CYCLE: u16 = 0xc00;
    pub const TIME: u16 = 0xc01;
    pub const INSTRET: u16 = 0xc02;
    pub const MVENDORID: u16 = 0xf11;
    pub const MARCHID: u16 = 0xf12;
    pub const MIMPID: u16 = 0xf13;
    pub const MHARTID: u16 = 0xf14;
    pub const MCONFIGPTR: u16 = 0xf15;
}

impl Hart {
    /// Execute a CSR instruction on `addr`: returns the old value (to be written to rd).
    /// `write` is false for csrrs/csrrc with rs1 = x0 (or uimm = 0): no write side effects and
    /// read-only CSRs are allowed. `mmio` provides `mtime` for the `time` CSR.
    pub fn csr_op<M: Mmio>(
        &mut self,
        mmio: &M,
        addr: u16,
        op: CsrOp,
        operand: u64,
        write: bool,
    ) -> Result<u64, Exception> {
        // QEMU's model: new = (old & !mask) | (val & mask); a zero mask is no write at all.
        let (val, mask) = match op {
            CsrOp::Write => (operand, u64::MAX),
            CsrOp::Set => (u64::MAX, operand),
            CsrOp::Clear => (0, operand),
        };
        let write = write && mask != 0;
        let ill = Exception::IllegalInstr(0);
        if write && (addr >> 10) & 3 == 3 {
            return Err(ill);
        }
        if ((addr >> 8) & 3) as u8 > self.prv as u8 {
            return Err(ill);
        }
        let old = self.csr_read(mmio, addr)?;
        if write {
            self.csr_write(addr, (old & !mask) | (val & mask), mask);
        }
        Ok(old)
    }

    /// Counter access from S/U is gated by mcounteren (and scounteren for U).
    fn counter_allowed(&self, idx: u32) -> bool {
        match self.prv {
            Priv::M => true,
            Priv::S => self.csr.mcounteren >> idx & 1 != 0,
            Priv::U => self.csr.mcounteren >> idx & 1 != 0 && self.csr.scounteren >> idx & 1 != 0,
        }
    }

    /// Read a CSR (privilege already checked); unknown or inaccessible → illegal instruction.
    fn csr_read<M: Mmio>(&self, mmio: &M, a: u16) -> Result<u64, Exception> {
        use addr::*;
        let ill = Exception::IllegalInstr(0);
        let c = &self.csr;
        let v = match a {
            FFLAGS | FRM | FCSR => {
                if !self.fp_enabled() {
                    return Err(ill);
                }
                match a {
                    FFLAGS => c.fflags as u64 & 0x1f,
                    FRM => c.frm as u64 & 7,
                    _ => ((c.frm as u64 & 7) << 5) | (c.fflags as u64 & 0x1f),
                }
            }
            CYCLE..=0xc12 => {
                if !self.counter_allowed((a - CYCLE) as u32) {
                    return Err(ill);
                }
                match a {
                    CYCLE => c.mcycle(self.icount),
                    TIME => mmio.mtime(self.icount),
                    INSTRET => c.minstret(self.icount),
                    _ => c.mhpmcounter[(a - 0xc03) as usize],
                }
            }
            MCYCLE => c.mcycle(self.icount),
            MINSTRET => c.minstret(self.icount),
            0xb03..=0xb12 => c.mhpmcounter[(a - 0xb03) as usize],
            0x323..=0x33f => c.mhpmevent[(a - 0x323) as usize],
            MARCHID => c.marchid,
            MIMPID => c.mimpid,
            MVENDORID | MCONFIGPTR => 0,
            MHARTID => c.mhartid,
            MSTATUS => c.mstatus,
            MISA => c.misa,
            MEDELEG => c.medeleg,
            MIDELEG => c.mideleg,
            MIE => c.mie,
            MIP => c.mip,
            MTVEC => c.mtvec,
            MCOUNTEREN => c.mcounteren,
            MENVCFG => c.menvcfg,
            MCOUNTINHIBIT => c.mcountinhibit,
            MSCRATCH => c.mscratch,
            MEPC => c.mepc,
            MCAUSE => c.mcause,
            MTVAL => c.mtval,
            0x3a0 | 0x3a2 => {
                let base = (a - 0x3a0) as usize * 4;
                let mut v = 0u64;
                for i in 0..8 {
                    v |= (c.pmpcfg[base + i] as u64) << (8 * i);
                }
                v
            }
            0x3b0..=0x3bf => c.pmpaddr[(a - 0x3b0) as usize],
            SSTATUS => c.mstatus & SSTATUS_MASK,
            SIE => c.mie & c.mideleg & S_INTERRUPTS,
            SIP => c.mip & c.mideleg & S_INTERRUPTS,
            STVEC => c.stvec,
            SCOUNTEREN => c.scounteren,
            SENVCFG => c.senvcfg,
            SSCRATCH => c.sscratch,
            SEPC => c.sepc,
            SCAUSE => c.scause,
            STVAL => c.stval,
            SATP => {
                if self.prv == Priv::S && c.mstatus & MSTATUS_TVM != 0 {
                    return Err(ill);
                }
                c.satp
            }
            _ => return Err(ill),
        };
        Ok(v)
    }

    /// Write `v` (already merged with the old value) to a CSR that `csr_read` accepted; `mask`
    /// is the set of bits the instruction meant to write.
    fn csr_write(&mut self, a: u16, v: u64, mask: u64) {
        use addr::*;
        let icount = self.icount;
        let c = &mut self.csr;
        match a {
            FFLAGS => {
                c.fflags = (v & 0x1f) as u8;
                self.set_fs_dirty();
            }
            FRM => {
                c.frm = (v & 7) as u8;
                self.set_fs_dirty();
            }
            FCSR => {
                c.fflags = (v & 0x1f) as u8;
                c.frm = ((v >> 5) & 7) as u8;
                self.set_fs_dirty();
            }
            MCYCLE => {
                c.cycle_offset = v.wrapping_sub(icount);
                c.cycle_frozen = v;
            }
            MINSTRET => {
                c.instret_offset = v.wrapping_sub(icount);
                c.instret_frozen = v;
            }
            MCOUNTINHIBIT => {
                let (cy, ir) = (c.mcycle(icount), c.minstret(icount));
                c.mcountinhibit = v;
                // Freezing keeps the current value; resuming continues from it.
                c.cycle_frozen = cy;
                c.cycle_offset = cy.wrapping_sub(icount);
                c.instret_frozen = ir;
                c.instret_offset = ir.wrapping_sub(icount);
            }
            MSTATUS => self.write_mstatus(v, MSTATUS_WMASK),
            SSTATUS => self.write_mstatus(v, SSTATUS_WMASK),
            0xb03..=0xb12 => c.mhpmcounter[(a - 0xb03) as usize] = v,
            0x323..=0x33f => c.mhpmevent[(a - 0x323) as usize] = v,
            MEDELEG => c.medeleg = v & MEDELEG_MASK,
            MIDELEG => c.mideleg = v & MIDELEG_MASK,
            MIE => c.mie = v & MIE_MASK,
            SIE => {
                let m = c.mideleg & S_INTERRUPTS & mask;
                c.mie = (c.mie & !m) | (v & m);
            }
            MIP => {
                let m = MIDELEG_MASK & mask;
                c.mip_sw = (c.mip_sw & !m) | (v & m);
                c.update_mip();
            }
            SIP => {
                let m = c.mideleg & MIP_SSIP & mask;
                c.mip_sw = (c.mip_sw & !m) | (v & m);
                c.update_mip();
            }
            // Modes 2 and 3 are reserved: QEMU ignores the whole write.
            MTVEC if v & 3 < 2 => c.mtvec = v,
            STVEC if v & 3 < 2 => c.stvec = v,
            // QEMU 7.2 keeps all 64 bits of these.
            MCOUNTEREN => c.mcounteren = v,
            SCOUNTEREN => c.scounteren = v,
            MENVCFG => c.menvcfg = v & MENVCFG_WMASK,
            SENVCFG => c.senvcfg = v & SENVCFG_WMASK,
            MSCRATCH => c.mscratch = v,
            SSCRATCH => c.sscratch = v,
            // QEMU 7.2 keeps bit 0 (xRET ignores it, see trap.rs).
            MEPC => c.mepc = v,
            SEPC => c.sepc = v,
            MCAUSE => c.mcause = v,
            SCAUSE => c.scause = v,
            MTVAL => c.mtval = v,
            STVAL => c.stval = v,
            0x3a0 | 0x3a2 => {
                let base = (a - 0x3a0) as usize * 4;
                for i in 0..8 {
                    c.pmp_write_cfg(base + i, (v >> (8 * i)) as u8);
                }
                self.tlb.flush();
            }
            0x3b0..=0x3bf => {
                c.pmp_write_addr((a - 0x3b0) as usize, v);
                self.tlb.flush();
            }
            SATP => {
                let mode = v >> SATP_MODE_SHIFT;
                // Unsupported modes leave satp unchanged (WARL), as in QEMU.
                if matches!(
                    mode,
                    SATP_MODE_BARE | SATP_MODE_SV39 | SATP_MODE_SV48 | SATP_MODE_SV57
                ) {
                    let new = v & ((0xf << SATP_MODE_SHIFT) | SATP_ASID_MASK | SATP_PPN_MASK);
                    if new != c.satp {
                        c.satp = new;
                        self.tlb.flush();
                    }
                }
            }
            // misa: WARL, writes ignored.
            _ => {}
        }
    }

    /// Write the `wmask` bits of mstatus from `v`, recomputing SD.
    fn write_mstatus(&mut self, v: u64, wmask: u64) {
        let old = self.csr.mstatus;
        // QEMU 7.2 stores MPP = 2 as written (mret then goes to U, MPRV treats it as U).
        let mut new = (old & !wmask) | (v & wmask);
        new &= !MSTATUS_SD;
        if new & MSTATUS_FS == MSTATUS_FS || new & MSTATUS_VS == MSTATUS_VS {
            new |= MSTATUS_SD;
        }
        new = (new & !(MSTATUS_UXL | MSTATUS_SXL)) | (2 << 32) | (2 << 34);
        self.csr.mstatus = new;
        // Loads see MXR in their cached translations; SUM and MPRV select TLB sets instead.
        if (old ^ new) & MSTATUS_MXR != 0 {
            self.tlb.flush();
        }
    }

    /// Mark FP state dirty after an instruction wrote an f register or fflags.
    #[inline(always)]
    pub fn set_fs_dirty(&mut self) {
        self.csr.mstatus |= MSTATUS_FS | MSTATUS_SD;
    }

    /// FP instructions are illegal while mstatus.FS = Off.
    #[inline(always)]
    pub fn fp_enabled(&self) -> bool {
        self.csr.mstatus & MSTATUS_FS != 0
    }
}
