//! Architectural state of one hart.

use crate::csr::Csrs;
use crate::mmu::Tlb;

/// Privilege level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// A breakpoint or watchpoint fired: see [`Hart::take_debug_hit`].
    Debug,
    /// The lockstep self-check found translated code and the interpreter disagreeing: see
    /// [`Hart::take_check_failure`].
    JitCheck,
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
    /// LR/SC reservation: the virtual address the LR used, if any (QEMU 10 compares an SC's
    /// address with it before translating, so an SC elsewhere fails without faulting).
    pub reservation: Option<u64>,
    /// The value the LR read (raw bits): like QEMU 10's compare-and-swap SC, an SC succeeds only
    /// if the reserved location still holds it.
    pub reservation_val: u64,
    /// Set while the hart waits in `wfi`.
    pub wfi: bool,
    /// Address-translation cache; flushed by `sfence.vma`, `satp` writes and privilege changes
    /// that alter translation.
    pub tlb: Tlb,
    /// Debugger breakpoints and watchpoints (not architectural state).
    pub debug: crate::debug::DebugHooks,
    /// The implemented extensions (fixed for the life of a machine: decoded pages depend on it).
    pub features: crate::isa::CpuFeatures,
    /// Traps taken by this hart (statistics, not architectural state).
    pub stats: crate::stats::TrapStats,
    /// The translating engine hot blocks are compiled with (`None`: interpret only). Not
    /// architectural state: engines are interchangeable at any instruction.
    pub jit: Option<&'static dyn crate::jit::BlockCompiler>,
    /// Translate on the engine's compile thread (see [`crate::jit::set_background`]).
    pub jit_background: bool,
    /// The lockstep self-check of translated code (not architectural state).
    pub(crate) check: crate::jit_check::CheckState,
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
            reservation_val: 0,
            wfi: false,
            tlb: Tlb::new(),
            debug: Default::default(),
            features: Default::default(),
            stats: Default::default(),
            jit: crate::jit::default_engine(),
            jit_background: crate::jit::background(),
            check: crate::jit_check::CheckState {
                on: crate::jit_check::default_check(),
                ..Default::default()
            },
        };
        h.x[10] = hart_id;
        h.x[11] = fdt_addr;
        h.csr.reset_for(&h.features);
        h
    }

    /// Give the hart the extensions `features` (before it runs: the reset values of
    /// extension-dependent CSRs follow them).
    pub fn set_features(&mut self, features: crate::isa::CpuFeatures) {
        self.features = features;
        self.csr.reset_for(&features);
        self.csr.update_mip();
    }
}

/// Everything architectural about a hart (no caches): what a snapshot saves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HartState {
    /// Integer registers.
    pub x: [u64; 32],
    /// FP registers (raw bits).
    pub f: [u64; 32],
    /// Program counter.
    pub pc: u64,
    /// Privilege level.
    pub prv: Priv,
    /// Instructions retired.
    pub icount: u64,
    /// Control and status registers.
    pub csr: Csrs,
    /// LR/SC reservation.
    pub reservation: Option<u64>,
    /// The value the LR read.
    pub reservation_val: u64,
    /// Waiting in `wfi`.
    pub wfi: bool,
}

impl Hart {
    /// The hart's architectural state.
    pub fn save_state(&self) -> HartState {
        // Exhaustive destructuring: a new field must be considered here (the TLB is a cache).
        let Hart {
            x,
            f,
            pc,
            prv,
            icount,
            csr,
            reservation,
            reservation_val,
            wfi,
            tlb: _,
            debug: _,
            features: _,
            stats: _,
            jit: _,
            jit_background: _,
            check: _,
        } = self;
        HartState {
            x: *x,
            f: *f,
            pc: *pc,
            prv: *prv,
            icount: *icount,
            csr: csr.clone(),
            reservation: *reservation,
            reservation_val: *reservation_val,
            wfi: *wfi,
        }
    }

    /// Put the hart in `state`; derived state (TLB, decoded PMP rules) is rebuilt.
    pub fn restore_state(&mut self, state: &HartState) {
        let HartState {
            x,
            f,
            pc,
            prv,
            icount,
            csr,
            reservation,
            reservation_val,
            wfi,
        } = state;
        self.x = *x;
        self.x[0] = 0;
        self.f = *f;
        self.pc = *pc;
        self.prv = *prv;
        self.icount = *icount;
        self.csr = csr.clone();
        // Derived from pmpcfg/pmpaddr: never trust the stored copy.
        self.csr.pmp_update_all();
        self.reservation = *reservation;
        self.reservation_val = *reservation_val;
        self.wfi = *wfi;
        self.tlb.flush();
        // Derived from tdata1/tdata2 (and the debugger's own hooks, which stay).
        self.update_triggers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_restore_round_trips_and_rebuilds_derived_state() {
        let mut h = Hart::new(0, 0x8000_0000, 0x8700_0000);
        h.x[7] = 77;
        h.f[3] = 0x4000_0000_0000_0000;
        h.pc = 0x8000_1234;
        h.prv = Priv::S;
        h.icount = 999;
        h.reservation = Some(0x8000_0040);
        h.wfi = true;
        h.csr.satp = 8 << 60 | 0x80123;
        h.csr.pmpcfg[0] = 0x0f; // TOR, RWX
        h.csr.pmpaddr[0] = 0x2000_4000;
        h.csr.pmp_update_all();
        let mut state = h.save_state();
        let expect_range = state.csr.pmp_range;
        // A stored copy of derived state is not trusted.
        state.csr.pmp_range[0] = (1, 0);
        state.csr.pmp_rules = 0;
        let mut g = Hart::new(0, 0, 0);
        g.restore_state(&state);
        assert_eq!(g.csr.pmp_range, expect_range);
        assert_eq!(g.csr.pmp_rules, 1);
        state.csr.pmp_range = expect_range;
        state.csr.pmp_rules = 1;
        assert_eq!(g.save_state(), state);
        assert_eq!(
            (g.x[7], g.pc, g.prv, g.icount),
            (77, 0x8000_1234, Priv::S, 999)
        );
    }
}
