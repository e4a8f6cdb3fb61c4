//! Control and status registers.
//!
//! CONTRACT (privileged-architecture work owns this file; the names below are used by exec.rs):
//! - `Csrs::new(hart_id)` gives reset values (misa = RV64IMAFDC + S + U, mstatus with UXL=SXL=2).
//! - `Hart::csr_op` implements csrrw/csrrs/csrrc(/i) semantics incl. privilege and read-only checks.
//! - After any CSR write the interpreter calls `Hart::take_pending_interrupt`.

use crate::bus::Mmio;
use crate::hart::Hart;
use crate::trap::Exception;

/// mstatus.FS field mask.
pub const MSTATUS_FS: u64 = 3 << 13;
/// mstatus.SD (read-only summary of FS/XS dirty).
pub const MSTATUS_SD: u64 = 1 << 63;
/// mstatus.MPRV.
pub const MSTATUS_MPRV: u64 = 1 << 17;

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

/// All CSR storage of a hart.
#[derive(Debug, Clone)]
pub struct Csrs {
    /// mhartid
    pub mhartid: u64,
    /// mstatus (sstatus is a view of it)
    pub mstatus: u64,
    /// Accrued FP exception flags (fflags, low 5 bits of fcsr).
    pub fflags: u8,
    /// Dynamic FP rounding mode (frm).
    pub frm: u8,
}

impl Csrs {
    /// Reset values for hart `hart_id`.
    pub fn new(hart_id: u64) -> Self {
        Csrs { mhartid: hart_id, mstatus: (2 << 32) | (2 << 34), fflags: 0, frm: 0 }
    }
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
        let _ = (mmio, addr, op, operand, write);
        unimplemented!("csr")
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
