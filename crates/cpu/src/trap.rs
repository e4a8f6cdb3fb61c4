//! Exceptions, interrupts, and the privileged return instructions.
//!
//! CONTRACT (privileged-architecture work owns this file; exec.rs uses these names).

use crate::hart::Hart;

/// A synchronous exception; the payload is the value for `xtval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// cause 0
    InstrMisaligned(u64),
    /// cause 1
    InstrAccessFault(u64),
    /// cause 2 (tval = the instruction bits, as QEMU does)
    IllegalInstr(u64),
    /// cause 3 (tval = pc)
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

impl Hart {
    /// Enter the trap handler for `e` raised by the instruction at `self.pc` (which does not
    /// retire): delegation, xepc/xcause/xtval, status stack, pc = handler. Clears the reservation.
    pub fn take_exception(&mut self, e: Exception) {
        let _ = e;
        unimplemented!("trap")
    }

    /// If an interrupt is pending and enabled for the current privilege, take it and return
    /// true (`self.pc` then points at the handler). Also clears `wfi` when any interrupt is
    /// pending in `mip & mie`, enabled or not.
    pub fn take_pending_interrupt(&mut self) -> bool {
        unimplemented!("trap")
    }

    /// Set the interrupt-pending bits driven by devices (MTIP, MSIP, MEIP, SEIP from the PLIC's
    /// S context; the guest-writable SEIP/SSIP/STIP bits are kept separately and ORed in).
    pub fn set_device_interrupts(&mut self, mtip: bool, msip: bool, meip: bool, seip: bool) {
        let _ = (mtip, msip, meip, seip);
        unimplemented!("trap")
    }

    /// `mret`: returns the new pc or an exception (illegal below M).
    pub fn mret(&mut self) -> Result<u64, Exception> {
        unimplemented!("trap")
    }

    /// `sret`: returns the new pc or an exception (illegal in U, or in S with mstatus.TSR).
    pub fn sret(&mut self) -> Result<u64, Exception> {
        unimplemented!("trap")
    }

    /// `wfi` legality (mstatus.TW, U-mode): Ok(()) when the hart may wait.
    pub fn wfi_allowed(&self) -> Result<(), Exception> {
        unimplemented!("trap")
    }

    /// `sfence.vma` legality (mstatus.TVM in S, U-mode): Ok(()) when allowed.
    pub fn sfence_allowed(&self) -> Result<(), Exception> {
        unimplemented!("trap")
    }
}
