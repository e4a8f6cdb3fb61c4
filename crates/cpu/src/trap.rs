//! Exceptions, interrupts, and the privileged return instructions.
//!
//! CONTRACT (privileged-architecture work owns this file; exec.rs uses these names).

use crate::csr::{
    ALL_INTERRUPTS, MIP_MEIP, MIP_MSIP, MIP_MTIP, MIP_SEIP, MIP_STIP, MSTATUS_MIE, MSTATUS_MPIE,
    MSTATUS_MPP, MSTATUS_MPP_SHIFT, MSTATUS_MPRV, MSTATUS_SIE, MSTATUS_SPIE, MSTATUS_SPP,
    MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW,
};
use crate::hart::{Hart, Priv};

/// A synchronous exception; the payload is the value for `xtval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// cause 0
    InstrMisaligned(u64),
    /// cause 1
    InstrAccessFault(u64),
    /// cause 2 (tval = the instruction bits, as QEMU does)
    IllegalInstr(u64),
    /// cause 3 (tval = the pc of the `ebreak`, or the address a debug trigger matched, as
    /// QEMU 10 writes)
    Breakpoint(u64),
    /// cause 4
    LoadMisaligned(u64),
    /// cause 5
    LoadAccessFault(u64),
    /// cause 6
    StoreMisaligned(u64),
    /// cause 7
    StoreAccessFault(u64),
    /// cause 8/9/11 depending on the privilege level of the `ecall`
    Ecall,
    /// cause 12
    InstrPageFault(u64),
    /// cause 13
    LoadPageFault(u64),
    /// cause 15
    StorePageFault(u64),
}

impl Exception {
    /// The `xcause` code of this exception when raised at privilege `prv`, and its `xtval`.
    pub fn cause_and_tval(self, prv: Priv) -> (u64, u64) {
        use Exception::*;
        match self {
            InstrMisaligned(t) => (0, t),
            InstrAccessFault(t) => (1, t),
            IllegalInstr(t) => (2, t),
            Breakpoint(t) => (3, t),
            LoadMisaligned(t) => (4, t),
            LoadAccessFault(t) => (5, t),
            StoreMisaligned(t) => (6, t),
            StoreAccessFault(t) => (7, t),
            Ecall => (8 + prv as u64, 0),
            InstrPageFault(t) => (12, t),
            LoadPageFault(t) => (13, t),
            StorePageFault(t) => (15, t),
        }
    }
}

/// Encoding of `mret` (its only form), reported in xtval when it is illegal.
pub const MRET_BITS: u64 = 0x3020_0073;
/// Encoding of `sret`.
pub const SRET_BITS: u64 = 0x1020_0073;
/// Encoding of `wfi`.
pub const WFI_BITS: u64 = 0x1050_0073;

/// Interrupt numbers in priority order (highest first): MEI, MSI, MTI, SEI, SSI, STI, LCOFI.
const IRQ_PRIORITY: [u32; 7] = [11, 3, 7, 9, 1, 5, 13];

impl Hart {
    /// Enter the trap handler for `e` raised by the instruction at `self.pc` (which does not
    /// retire): delegation, xepc/xcause/xtval, status stack, pc = handler. Clears the reservation.
    pub fn take_exception(&mut self, e: Exception) {
        if self.prv == Priv::U && matches!(e, Exception::Ecall) {
            self.log_syscall(true, self.pc);
        }
        let (cause, tval) = e.cause_and_tval(self.prv);
        self.stats
            .exception(cause, self.prv, self.x[17], self.x[16]);
        let to_s = self.prv != Priv::M && (self.csr.medeleg >> cause) & 1 != 0;
        self.enter_trap(cause, tval, to_s, false);
    }

    /// Common trap entry; `cause` without the interrupt bit, `vector` for interrupts.
    fn enter_trap(&mut self, cause: u64, tval: u64, to_s: bool, interrupt: bool) {
        let c = &mut self.csr;
        let xcause = cause | ((interrupt as u64) << 63);
        let mut s = c.mstatus;
        let tvec = if to_s {
            c.sepc = self.pc;
            c.scause = xcause;
            c.stval = tval;
            // SPIE = SIE, SIE = 0, SPP = previous privilege.
            s = (s & !(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP))
                | if s & MSTATUS_SIE != 0 {
                    MSTATUS_SPIE
                } else {
                    0
                }
                | if self.prv == Priv::S { MSTATUS_SPP } else { 0 };
            c.stvec
        } else {
            c.mepc = self.pc;
            c.mcause = xcause;
            c.mtval = tval;
            s = (s & !(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP))
                | if s & MSTATUS_MIE != 0 {
                    MSTATUS_MPIE
                } else {
                    0
                }
                | (self.prv as u64) << MSTATUS_MPP_SHIFT;
            c.mtvec
        };
        c.mstatus = s;
        self.prv = if to_s { Priv::S } else { Priv::M };
        let base = tvec & !3;
        self.pc = if interrupt && tvec & 3 == 1 {
            base.wrapping_add(4 * cause)
        } else {
            base
        };
        self.reservation = None;
        self.wfi = false;
    }

    /// If an interrupt is pending and enabled for the current privilege, take it and return
    /// true (`self.pc` then points at the handler). Also clears `wfi` when any interrupt is
    /// pending in `mip & mie`, enabled or not.
    #[inline]
    pub fn take_pending_interrupt(&mut self) -> bool {
        let pending = self.csr.mip & self.csr.mie & ALL_INTERRUPTS;
        if pending == 0 {
            return false;
        }
        self.take_pending_slow(pending)
    }

    #[inline(never)]
    fn take_pending_slow(&mut self, pending: u64) -> bool {
        self.wfi = false;
        let st = self.csr.mstatus;
        let m_on = self.prv != Priv::M || st & MSTATUS_MIE != 0;
        let s_on = self.prv == Priv::U || (self.prv == Priv::S && st & MSTATUS_SIE != 0);
        let m_irqs = if m_on { pending & !self.csr.mideleg } else { 0 };
        let s_irqs = if s_on { pending & self.csr.mideleg } else { 0 };
        // M-level interrupts take precedence over S-level ones.
        let (irqs, to_s) = if m_irqs != 0 {
            (m_irqs, false)
        } else if s_irqs != 0 {
            (s_irqs, true)
        } else {
            return false;
        };
        for irq in IRQ_PRIORITY {
            if irqs >> irq & 1 != 0 {
                self.stats.interrupt(irq as u64);
                self.enter_trap(irq as u64, 0, to_s, true);
                return true;
            }
        }
        false
    }

    /// Set the interrupt-pending bits driven by devices (MTIP, MSIP, MEIP, SEIP from the PLIC's
    /// S context; the guest-writable SEIP/SSIP/STIP bits are kept separately and ORed in). The
    /// Sstc STIP bit is kept: [`Hart::update_stimecmp`] drives it.
    #[inline]
    pub fn set_device_interrupts(&mut self, mtip: bool, msip: bool, meip: bool, seip: bool) {
        let c = &mut self.csr;
        c.mip_dev = (c.mip_dev & MIP_STIP)
            | if mtip { MIP_MTIP } else { 0 }
            | if msip { MIP_MSIP } else { 0 }
            | if meip { MIP_MEIP } else { 0 }
            | if seip { MIP_SEIP } else { 0 };
        c.update_mip();
    }

    /// `mret`: returns the new pc or an exception (illegal below M).
    pub fn mret(&mut self) -> Result<u64, Exception> {
        if self.prv != Priv::M {
            return Err(Exception::IllegalInstr(MRET_BITS));
        }
        let s = self.csr.mstatus;
        let mpp = Priv::from_bits((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
        // spec departure: QEMU 10 raises an instruction access fault at the mret when no PMP
        // entry is active and MPP is below M; per the spec mret completes and the fetch at mepc
        // fails its PMP check (S/U with no active entry), with mepc/mtval = that address.
        let mut n = (s & !(MSTATUS_MIE | MSTATUS_MPP)) | MSTATUS_MPIE;
        if s & MSTATUS_MPIE != 0 {
            n |= MSTATUS_MIE;
        }
        if mpp != Priv::M {
            n &= !MSTATUS_MPRV;
        }
        self.csr.mstatus = n;
        self.prv = mpp;
        self.reservation = None;
        // With C, IALIGN=16: bit 0 of the stored mepc is ignored.
        self.pc = self.csr.mepc & !1;
        Ok(self.pc)
    }

    /// `sret`: returns the new pc or an exception (illegal in U, or in S with mstatus.TSR).
    pub fn sret(&mut self) -> Result<u64, Exception> {
        let s = self.csr.mstatus;
        if self.prv == Priv::U || (self.prv == Priv::S && s & MSTATUS_TSR != 0) {
            return Err(Exception::IllegalInstr(SRET_BITS));
        }
        let spp = if s & MSTATUS_SPP != 0 {
            Priv::S
        } else {
            Priv::U
        };
        let mut n = (s & !(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV)) | MSTATUS_SPIE;
        if s & MSTATUS_SPIE != 0 {
            n |= MSTATUS_SIE;
        }
        self.csr.mstatus = n;
        self.prv = spp;
        self.reservation = None;
        self.pc = self.csr.sepc & !1;
        if spp == Priv::U {
            self.log_syscall(false, self.pc);
        }
        Ok(self.pc)
    }

    /// `wfi` legality (mstatus.TW, U-mode): Ok(()) when the hart may wait.
    pub fn wfi_allowed(&self) -> Result<(), Exception> {
        match self.prv {
            Priv::M => Ok(()),
            Priv::S if self.csr.mstatus & MSTATUS_TW == 0 => Ok(()),
            _ => Err(Exception::IllegalInstr(WFI_BITS)),
        }
    }

    /// `sfence.vma` legality (mstatus.TVM in S, U-mode): Ok(()) when allowed. The error's tval
    /// is 0: the interpreter replaces it with the instruction bits.
    pub fn sfence_allowed(&self) -> Result<(), Exception> {
        match self.prv {
            Priv::M => Ok(()),
            Priv::S if self.csr.mstatus & MSTATUS_TVM == 0 => Ok(()),
            _ => Err(Exception::IllegalInstr(0)),
        }
    }
}
