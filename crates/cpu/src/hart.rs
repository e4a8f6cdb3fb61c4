//! Architectural state of one hart.

use crate::csr::Csrs;
use crate::mmu::Tlb;

/// Privilege level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Priv {
    /// User mode.
    U = 0,
    /// Supervisor mode.
    S = 1,
    /// Machine mode.
    M = 3,
}

impl Priv {
    /// Decode the two-bit encoding used in `mstatus.MPP` (2, reserved, maps to U as WARL).
    pub fn from_bits(bits: u64) -> Priv {
        match bits & 3 {
            3 => Priv::M,
            1 => Priv::S,
            _ => Priv::U,
        }
    }
}

/// Why [`Hart::run`] returned to the machine loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The instruction budget is used up.
    Budget,
    /// The hart executed `wfi` and no interrupt is pending: the machine may warp time.
    Wfi,
    /// Something outside the hart may need attention before going on: an MMIO store (device
    /// state, interrupt lines) or a CSR write that can unmask an interrupt.
    Yield,
}

/// One RV64GC hart.
pub struct Hart {
    /// Integer registers; `x[0]` is kept zero.
    pub x: [u64; 32],
    /// FP registers as raw bits (single-precision values are NaN-boxed).
    pub f: [u64; 32],
    /// Program counter.
    pub pc: u64,
    /// Current privilege level.
    pub prv: Priv,
    /// Instructions retired since reset (an instruction that traps does not retire).
    pub icount: u64,
    /// Control and status registers.
    pub csr: Csrs,
    /// LR/SC reservation: the physical address reserved, if any.
    pub reservation: Option<u64>,
    /// Set while the hart waits in `wfi`.
    pub wfi: bool,
    /// Address-translation cache; flushed by `sfence.vma`, `satp` writes and privilege changes
    /// that alter translation.
    pub tlb: Tlb,
}

impl std::fmt::Debug for Hart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hart")
            .field("pc", &format_args!("{:#x}", self.pc))
            .field("prv", &self.prv)
            .field("icount", &self.icount)
            .finish_non_exhaustive()
    }
}

impl Hart {
    /// A hart in reset state: M-mode, `pc` = `reset_pc`, `a0` = hart id, `a1` = `fdt_addr`.
    pub fn new(hart_id: u64, reset_pc: u64, fdt_addr: u64) -> Self {
        let mut h = Hart {
            x: [0; 32],
            f: [0; 32],
            pc: reset_pc,
            prv: Priv::M,
            icount: 0,
            csr: Csrs::new(hart_id),
            reservation: None,
            wfi: false,
            tlb: Tlb::new(),
        };
        h.x[10] = hart_id;
        h.x[11] = fdt_addr;
        h
    }
}
