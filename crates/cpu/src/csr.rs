//! Control and status registers.
//!
//! CONTRACT (privileged-architecture work owns this file; the names below are used by exec.rs):
//! - `Csrs::new(hart_id)` gives reset values (misa = RV64IMAFDC + S + U, mstatus with UXL=SXL=2);
//!   `Csrs::reset_for(features)` the extension-dependent ones (menvcfg.ADUE/PBMTE).
//! - `Hart::csr_op` implements csrrw/csrrs/csrrc(/i) semantics incl. privilege and read-only checks;
//!   an illegal access is `IllegalInstr(0)` and the interpreter reports the instruction bits.
//! - After any CSR write the interpreter calls `Hart::take_pending_interrupt`; writes to
//!   stimecmp/menvcfg and the trigger CSRs also end the run (`CSR_STIMECMP`, `CSR_MENVCFG`).
//! - The machine calls `Hart::update_stimecmp(time)` with the device lines and ends its slices
//!   at `Hart::stimecmp_deadline()` (Sstc).
//!
//! Behaviour follows QEMU 10's `virt` board (`-cpu rv64,h=false`) where it agrees with the
//! ratified privileged spec (the departures are listed in the project notes and marked "spec:"
//! below): writes are modelled as QEMU's read-modify-write with a write mask, so csrrs/csrrc only
//! touch the bits set in the operand (this matters for mip.SEIP, whose read value includes the
//! device line). Extension CSRs exist only when `Hart::features` has the extension.

use crate::bus::Mmio;
use crate::hart::{Hart, Priv};
use crate::isa::CpuFeatures;
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
/// mstatus.VS field mask (read-only zero: no V extension, as QEMU 10).
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
    | MSTATUS_FS
    | MSTATUS_XS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD;
/// The bits of sstatus that S-mode can write.
const SSTATUS_WMASK: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;

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
/// All interrupts that can be taken: the six standard ones and LCOFI (13), which software can
/// set in mip (QEMU 10 takes it, with or without Sscofpmf).
pub const ALL_INTERRUPTS: u64 = S_INTERRUPTS | MIP_MSIP | MIP_MTIP | MIP_MEIP | (1 << 13);
/// Local counter-overflow interrupt (Sscofpmf).
pub const MIP_LCOFIP: u64 = 1 << 13;
/// Writable bits of mideleg and of mip from M-mode, as QEMU 10 (h=false) keeps them: the S
/// interrupts plus the VS and LCOF bits, which are storage only here.
pub const MIDELEG_MASK: u64 = 0x2666;
/// Writable bits of mie as QEMU 10 (h=false) keeps them: the M and S interrupts and bits 13-63
/// (QEMU's "local interrupts", storage only here).
pub const MIE_MASK: u64 = !0x1fff | 0xaaa;
/// The bits of sie/sip that mideleg can expose to S (S interrupts and LCOFI, as QEMU 10).
const SIE_MASK: u64 = S_INTERRUPTS | MIP_LCOFIP;
/// The bits of sip that S can write (where delegated): SSIP and LCOFIP.
const SIP_WMASK: u64 = MIP_SSIP | MIP_LCOFIP;

/// Exceptions that medeleg keeps, as QEMU 10 (h=false): causes 0-13, 15, 18 (software check)
/// and the guest-fault causes 20-23. Delegating cause 11 has no effect (M traps stay in M).
pub const MEDELEG_MASK: u64 = 0xf4_bfff;

/// Implemented counters in mcounteren/scounteren/mcountinhibit: CY, TM, IR and HPM3..18.
pub const COUNTEREN_MASK: u64 = 0x7_ffff;
/// mcountinhibit has no TM bit.
pub const MCOUNTINHIBIT_MASK: u64 = 0x7_fffd;
/// mhpmevent bits kept without H (QEMU 10 drops VSINH/VUINH, bits 59-58).
pub const MHPMEVENT_MASK: u64 = !(3 << 58);

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
/// satp mode Sv57 (QEMU 10's default; Linux picks it).
pub const SATP_MODE_SV57: u64 = 10;

/// menvcfg/senvcfg.FIOM.
pub const ENVCFG_FIOM: u64 = 1;
/// menvcfg/senvcfg.CBIE field (Zicbom).
pub const ENVCFG_CBIE: u64 = 3 << 4;
/// menvcfg/senvcfg.CBCFE (Zicbom).
pub const ENVCFG_CBCFE: u64 = 1 << 6;
/// menvcfg/senvcfg.CBZE (Zicboz).
pub const ENVCFG_CBZE: u64 = 1 << 7;
/// menvcfg.ADUE (Svadu): hardware A/D updates; without it a clear A/D bit is a page fault.
pub const MENVCFG_ADUE: u64 = 1 << 61;
/// menvcfg.PBMTE (Svpbmt): PTE bits 62:61 select a memory type.
pub const MENVCFG_PBMTE: u64 = 1 << 62;
/// menvcfg.STCE (Sstc): stimecmp drives STIP.
pub const MENVCFG_STCE: u64 = 1 << 63;

/// Number of Sdtrig triggers (QEMU 10's RV_MAX_TRIGGERS).
pub const TRIGGERS: usize = 2;
/// Trigger type 2 (mcontrol) in tdata1[63:60].
pub const TTYPE_MCONTROL: u64 = 2;
/// Trigger type 6 (mcontrol6).
pub const TTYPE_MCONTROL6: u64 = 6;
/// tdata1 execute / store / load bits (same place in mcontrol and mcontrol6).
pub const TDATA1_EXEC: u64 = 1 << 2;
/// tdata1 store bit.
pub const TDATA1_STORE: u64 = 1 << 1;
/// tdata1 load bit.
pub const TDATA1_LOAD: u64 = 1 << 0;
/// tdata1 U / S / M mode bits (bit 3 + privilege).
pub const TDATA1_MODES: u64 = (1 << 3) | (1 << 4) | (1 << 6);

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
    /// mhpmcounter3..18 as last written (or frozen). They count retired instructions while
    /// mapped to event 1 (cycles) or 2 (instructions), as QEMU 10 does under -icount (see
    /// [`Csrs::mhpmcounter`]), and hold otherwise.
    pub mhpmcounter: [u64; HPM_COUNTERS],
    /// The instruction count the counting started from (QEMU's `mhpmcounter_prev`): a counting
    /// counter reads `icount - prev + value`.
    pub mhpmcounter_prev: [u64; HPM_COUNTERS],
    /// The counter (3..18, 0 = none) that counts event 1 (cycles) and event 2 (instructions):
    /// QEMU 10 maps each event to the first counter whose mhpmevent selected it, until that
    /// counter's mhpmevent is written with event 0.
    pub hpm_event_map: [u8; 2],
    /// Sscofpmf: the instruction count at which each counter, as last written or resumed,
    /// wraps to 0 (`u64::MAX`: not armed). Like QEMU 10's PMU timer, only a write while
    /// counting or a resume arms it.
    pub hpm_overflow_at: [u64; HPM_COUNTERS],
    /// mhpmevent3..31.
    pub mhpmevent: [u64; 29],
    /// marchid (0, as QEMU 10 reports for rv64).
    pub marchid: u64,
    /// mimpid (0, as QEMU 10 reports for rv64).
    pub mimpid: u64,
    /// stimecmp (Sstc).
    pub stimecmp: u64,
    /// tselect (Sdtrig).
    pub tselect: u64,
    /// tdata1 of each trigger.
    pub tdata1: [u64; TRIGGERS],
    /// tdata2 of each trigger (the match address).
    pub tdata2: [u64; TRIGGERS],
    /// tdata3 (textra) of each trigger.
    pub tdata3: [u64; TRIGGERS],
    /// mcontext (13 bits without H).
    pub mcontext: u64,
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
            mhpmcounter_prev: [0; HPM_COUNTERS],
            hpm_event_map: [0; 2],
            hpm_overflow_at: [u64::MAX; HPM_COUNTERS],
            mhpmevent: [0; 29],
            marchid: 0,
            mimpid: 0,
            stimecmp: 0,
            tselect: 0,
            tdata1: [TTYPE_MCONTROL << 60; TRIGGERS],
            tdata2: [0; TRIGGERS],
            tdata3: [0; TRIGGERS],
            mcontext: 0,
        }
    }

    /// Reset values that depend on the extensions: menvcfg has ADUE set when Svadu is
    /// implemented (QEMU 10 without Svade) and PBMTE with Svpbmt.
    pub fn reset_for(&mut self, f: &CpuFeatures) {
        self.menvcfg =
            if f.svadu { MENVCFG_ADUE } else { 0 } | if f.svpbmt { MENVCFG_PBMTE } else { 0 };
    }

    /// Recompute the effective mip from the software and device bits. With menvcfg.STCE the
    /// STIP bit comes from the stimecmp comparison (kept in `mip_dev`), not from software.
    #[inline]
    pub fn update_mip(&mut self) {
        let sw = if self.menvcfg & MENVCFG_STCE != 0 {
            self.mip_sw & !MIP_STIP
        } else {
            self.mip_sw
        };
        self.mip = sw | self.mip_dev;
    }

    /// mhpmcounter`3 + i` at instruction count `icount`.
    #[inline]
    pub fn mhpmcounter(&self, i: usize, icount: u64) -> u64 {
        let v = self.mhpmcounter.get(i).copied().unwrap_or(0);
        if self.hpm_counting(i) {
            let prev = self.mhpmcounter_prev.get(i).copied().unwrap_or(0);
            icount.wrapping_sub(prev).wrapping_add(v)
        } else {
            v
        }
    }

    /// Write mhpmcounter`3 + i` at instruction count `icount` (QEMU's riscv_pmu_write_ctr);
    /// `arm`: Sscofpmf is implemented, so a counting counter is armed to overflow.
    fn set_mhpmcounter(&mut self, i: usize, v: u64, icount: u64, arm: bool) {
        let counting = self.hpm_counting(i);
        let prev = if counting { icount } else { v };
        if let (Some(c), Some(p)) = (
            self.mhpmcounter.get_mut(i),
            self.mhpmcounter_prev.get_mut(i),
        ) {
            *c = v;
            *p = prev;
        }
        if counting && arm {
            self.arm_overflow(i, v, icount);
        }
    }

    /// Sscofpmf: arm counter `3 + i`, which holds `v` at `icount`, to overflow when it wraps
    /// (QEMU 10's riscv_pmu_setup_timer: not while its OF bit is set; from 0 a full period).
    fn arm_overflow(&mut self, i: usize, v: u64, icount: u64) {
        let Some(at) = self.hpm_overflow_at.get_mut(i) else {
            return;
        };
        let of = self.mhpmevent.get(i).is_some_and(|e| e >> 63 != 0);
        let delta = if v == 0 { u64::MAX } else { v.wrapping_neg() };
        // QEMU 10 raises LCOFI one instruction after the wrap (its PMU timer is armed from the
        // clock before the counter write retires): checked with priv10 on QEMU.
        *at = if of {
            u64::MAX
        } else {
            icount.saturating_add(delta).saturating_add(1)
        };
    }

    /// The earliest armed counter overflow (an instruction count), if Sscofpmf arms any.
    pub fn hpm_overflow_deadline(&self) -> Option<u64> {
        self.hpm_overflow_at
            .iter()
            .copied()
            .filter(|&at| at != u64::MAX)
            .min()
    }

    /// Sscofpmf: counters whose overflow point `icount` reached set their mhpmevent.OF and,
    /// if it was clear, raise LCOFIP (QEMU 10's pmu_timer_trigger_irq; a counter that no
    /// longer counts is dropped).
    pub fn hpm_overflow_check(&mut self, icount: u64) {
        for i in 0..HPM_COUNTERS {
            if self.hpm_overflow_at[i] > icount {
                continue;
            }
            self.hpm_overflow_at[i] = u64::MAX;
            if self.hpm_counting(i) && self.mhpmevent[i] >> 63 == 0 {
                self.mhpmevent[i] |= 1 << 63;
                self.mip_sw |= MIP_LCOFIP;
                self.update_mip();
            }
        }
    }

    /// Is mhpmcounter`3 + i` mapped to event 1 or 2?
    #[inline]
    fn hpm_mapped(&self, i: usize) -> bool {
        let ctr = i as u8 + 3;
        self.hpm_event_map.contains(&ctr)
    }

    /// Does mhpmcounter`3 + i` count? Mapped (cycles and instructions are both retired
    /// instructions here) and not stopped by mcountinhibit.
    #[inline]
    fn hpm_counting(&self, i: usize) -> bool {
        self.hpm_mapped(i) && self.mcountinhibit >> (i + 3) & 1 == 0
    }

    /// mhpmevent`3 + i` was written with `v`: QEMU 10's event map update. The counter's value
    /// is not touched (a newly mapped counter reads `icount - prev + value`).
    fn hpm_map_event(&mut self, i: usize, v: u64) {
        if i >= HPM_COUNTERS {
            return;
        }
        let ctr = i as u8 + 3;
        match v & 0xf_ffff {
            0 => {
                for m in self.hpm_event_map.iter_mut().filter(|m| **m == ctr) {
                    *m = 0;
                }
            }
            ev @ (1 | 2) => {
                let m = &mut self.hpm_event_map[ev as usize - 1];
                if *m == 0 {
                    *m = ctr;
                }
            }
            // QEMU also maps its TLB-miss events, which count host TLB misses: never here.
            _ => {}
        }
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
    /// (PMP_R/W/X) from privilege `m_mode` (true = M)? QEMU 10's `pmp_hart_has_privs`: the
    /// lowest-numbered entry overlapping the access decides; partial overlap fails; no match
    /// allows M and denies S/U. With no active entry at all QEMU 10 also denies S/U (checked
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
    pub const STIMECMP: u16 = 0x14d;
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
    pub const TSELECT: u16 = 0x7a0;
    pub const TDATA1: u16 = 0x7a1;
    pub const TDATA2: u16 = 0x7a2;
    pub const TDATA3: u16 = 0x7a3;
    pub const TINFO: u16 = 0x7a4;
    pub const MCONTEXT: u16 = 0x7a8;
    pub const SCOUNTOVF: u16 = 0xda0;
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

/// CSR address of stimecmp: a write to it (or to menvcfg) changes the timer deadline.
pub const CSR_STIMECMP: u16 = addr::STIMECMP;
/// CSR address of menvcfg.
pub const CSR_MENVCFG: u16 = addr::MENVCFG;

/// Bytes matched by an mcontrol/mcontrol6 size encoding, `None` for the unsupported ones
/// (QEMU 10's `access_size`: any, 1, 2, 4, 8 bytes; 6 bytes and the rest are not supported).
fn trigger_size_ok(size: u64) -> bool {
    matches!(size, 0 | 1 | 2 | 3 | 5)
}

/// The legal tdata1 value for a write of `v` (QEMU 10's `type2_mcontrol_validate` /
/// `type6_mcontrol6_validate`): the type, the size if supported, the mode and access bits;
/// match, chain, action, timing, select, hit and dmode are always zero. `None` for types other
/// than 2 and 6 (the write is ignored).
fn tdata1_legalize(v: u64) -> Option<u64> {
    let keep = TDATA1_MODES | TDATA1_EXEC | TDATA1_STORE | TDATA1_LOAD;
    match v >> 60 {
        TTYPE_MCONTROL => {
            let size = ((v >> 21) & 3) << 2 | ((v >> 16) & 3);
            let sz = if trigger_size_ok(size) {
                v & ((3 << 16) | (3 << 21))
            } else {
                0
            };
            Some((TTYPE_MCONTROL << 60) | sz | (v & keep))
        }
        TTYPE_MCONTROL6 => {
            let sz = if trigger_size_ok((v >> 16) & 0xf) {
                v & (0xf << 16)
            } else {
                0
            };
            // VU and VS (bits 23, 24) are kept as QEMU 10 keeps them without H.
            Some((TTYPE_MCONTROL6 << 60) | sz | (v & (keep | (3 << 23))))
        }
        // spec departure: QEMU 10 also accepts type 3 (icount), which tinfo does not list.
        _ => None,
    }
}

/// The legal textra (tdata3) value: mhvalue and mhselect 0 or 4 (QEMU 10 without H); the
/// S-mode fields are not implemented.
fn textra_legalize(v: u64) -> u64 {
    let mhvalue = v & (0x1fff << 51);
    let mhselect = if (v >> 48) & 7 >= 4 { 4 << 48 } else { 0 };
    mhvalue | mhselect
}

impl Hart {
    /// Execute a CSR instruction on `addr`: returns the old value (to be written to rd).
    /// `write` is false for csrrs/csrrc with rs1 = x0 (or uimm = 0): no write side effects and
    /// read-only CSRs are allowed. With `write` and a zero mask (rs1 holding 0) read-only CSRs
    /// trap but nothing is written. `mmio` provides `mtime` for the `time` CSR and Sstc.
    /// An illegal access is `Exception::IllegalInstr(0)`: the interpreter puts the instruction
    /// bits in xtval.
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
        let ill = Exception::IllegalInstr(0);
        // csrrs/csrrc with rs1 != x0 attempt a write even when the value is zero: read-only
        // CSRs trap (spec, QEMU 10), but nothing is written.
        if write && (addr >> 10) & 3 == 3 {
            return Err(ill);
        }
        let write = write && mask != 0;
        if ((addr >> 8) & 3) as u8 > self.prv as u8 {
            return Err(ill);
        }
        let old = self.csr_read(mmio, addr)?;
        if write {
            self.csr_write(addr, (old & !mask) | (val & mask), mask);
            if addr == addr::STIMECMP || addr == addr::MENVCFG {
                self.update_stimecmp(mmio.mtime(self.icount));
            }
        }
        Ok(old)
    }

    /// Sstc: recompute the timer STIP from stimecmp at guest time `time` (the `time` CSR
    /// value). Only effective while menvcfg.STCE is set; the machine calls this when it updates
    /// the device interrupt lines, and CSR writes to stimecmp/menvcfg call it too.
    pub fn update_stimecmp(&mut self, time: u64) {
        let c = &mut self.csr;
        let on = self.features.sstc && c.menvcfg & MENVCFG_STCE != 0 && time >= c.stimecmp;
        c.mip_dev = (c.mip_dev & !MIP_STIP) | if on { MIP_STIP } else { 0 };
        c.update_mip();
    }

    /// The guest time at which the Sstc timer raises STIP, if it is armed and not yet pending.
    pub fn stimecmp_deadline(&self) -> Option<u64> {
        let c = &self.csr;
        (self.features.sstc && c.menvcfg & MENVCFG_STCE != 0 && c.mip_dev & MIP_STIP == 0)
            .then_some(c.stimecmp)
    }

    /// Counter access from S/U is gated by mcounteren (and scounteren for U).
    fn counter_allowed(&self, idx: u32) -> bool {
        match self.prv {
            Priv::M => true,
            Priv::S => self.csr.mcounteren >> idx & 1 != 0,
            Priv::U => self.csr.mcounteren >> idx & 1 != 0 && self.csr.scounteren >> idx & 1 != 0,
        }
    }

    /// The menvcfg bits software can write: FIOM always, the others with their extension.
    /// spec departure: QEMU 10 also keeps CDE (bit 60) without Smcdeleg, and the CBO bits without
    /// Zicbom/Zicboz.
    fn menvcfg_wmask(&self) -> u64 {
        let f = &self.features;
        self.senvcfg_wmask()
            | if f.svpbmt { MENVCFG_PBMTE } else { 0 }
            | if f.sstc { MENVCFG_STCE } else { 0 }
            | if f.svadu { MENVCFG_ADUE } else { 0 }
    }

    /// The senvcfg bits software can write.
    fn senvcfg_wmask(&self) -> u64 {
        let f = &self.features;
        ENVCFG_FIOM
            | if f.zicbom {
                ENVCFG_CBIE | ENVCFG_CBCFE
            } else {
                0
            }
            | if f.zicboz { ENVCFG_CBZE } else { 0 }
    }

    /// Read a CSR (privilege already checked); unknown or inaccessible → illegal instruction.
    fn csr_read<M: Mmio>(&self, mmio: &M, a: u16) -> Result<u64, Exception> {
        use addr::*;
        let ill = Exception::IllegalInstr(0);
        let c = &self.csr;
        let f = &self.features;
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
            CYCLE..=0xc1f => {
                let exists = match a {
                    CYCLE..=INSTRET => f.zicntr,
                    _ => f.zihpm && ((a - CYCLE) as usize) < 3 + HPM_COUNTERS,
                };
                if !exists || !self.counter_allowed((a - CYCLE) as u32) {
                    return Err(ill);
                }
                match a {
                    CYCLE => c.mcycle(self.icount),
                    TIME => mmio.mtime(self.icount),
                    INSTRET => c.minstret(self.icount),
                    _ => c.mhpmcounter((a - 0xc03) as usize, self.icount),
                }
            }
            MCYCLE => c.mcycle(self.icount),
            MINSTRET => c.minstret(self.icount),
            0xb03..=0xb12 if f.zihpm => c.mhpmcounter((a - 0xb03) as usize, self.icount),
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
            SIE => c.mie & c.mideleg & SIE_MASK,
            SIP => c.mip & c.mideleg & SIE_MASK,
            STVEC => c.stvec,
            SCOUNTEREN => c.scounteren,
            SENVCFG => c.senvcfg,
            SSCRATCH => c.sscratch,
            SEPC => c.sepc,
            SCAUSE => c.scause,
            STVAL => c.stval,
            STIMECMP if f.sstc => {
                // From S it needs both mcounteren.TM and menvcfg.STCE (U never gets here).
                if self.prv != Priv::M && (c.mcounteren & 2 == 0 || c.menvcfg & MENVCFG_STCE == 0) {
                    return Err(ill);
                }
                c.stimecmp
            }
            SATP => {
                if self.prv == Priv::S && c.mstatus & MSTATUS_TVM != 0 {
                    return Err(ill);
                }
                c.satp
            }
            TSELECT if f.debug => c.tselect,
            TDATA1 | TDATA2 | TDATA3 if f.debug => {
                let t = c.tselect as usize % TRIGGERS;
                match a {
                    TDATA1 => c.tdata1[t],
                    TDATA2 => c.tdata2[t],
                    _ => c.tdata3[t],
                }
            }
            TINFO if f.debug => (1 << TTYPE_MCONTROL) | (1 << TTYPE_MCONTROL6),
            MCONTEXT if f.debug => c.mcontext,
            // Sscofpmf's scountovf: the OF bits of the hpm counters S may see (mcounteren).
            // Counters never overflow by themselves here (no LCOFI is raised); OF is what
            // software wrote to mhpmevent.
            SCOUNTOVF if f.sscofpmf => (3..32).fold(0, |acc, i| {
                let of = c.mhpmevent[i - 3] >> 63 & c.mcounteren >> i & 1;
                acc | of << i
            }),
            _ => return Err(ill),
        };
        Ok(v)
    }

    /// Write `v` (already merged with the old value) to a CSR that `csr_read` accepted; `mask`
    /// is the set of bits the instruction meant to write.
    fn csr_write(&mut self, a: u16, v: u64, mask: u64) {
        use addr::*;
        let icount = self.icount;
        let menvcfg_wmask = self.menvcfg_wmask();
        let senvcfg_wmask = self.senvcfg_wmask();
        let self_sscofpmf = self.features.sscofpmf;
        // Without Zihpm only CY, TM and IR exist (QEMU 10).
        let counteren_mask = if self.features.zihpm {
            COUNTEREN_MASK
        } else {
            7
        };
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
                let old = c.mcountinhibit;
                let hpm: [u64; HPM_COUNTERS] = std::array::from_fn(|i| c.mhpmcounter(i, icount));
                c.mcountinhibit = v & counteren_mask & MCOUNTINHIBIT_MASK;
                // Freezing keeps the current value; resuming continues from it.
                c.cycle_frozen = cy;
                c.cycle_offset = cy.wrapping_sub(icount);
                c.instret_frozen = ir;
                c.instret_offset = ir.wrapping_sub(icount);
                // A mapped counter freezes at its current value and resumes from it
                // (QEMU's write_mcountinhibit).
                for (i, h) in hpm.into_iter().enumerate() {
                    if (old ^ c.mcountinhibit) >> (i + 3) & 1 != 0 && c.hpm_mapped(i) {
                        if c.mcountinhibit >> (i + 3) & 1 != 0 {
                            c.mhpmcounter[i] = h;
                        } else {
                            c.mhpmcounter_prev[i] = icount;
                            if self_sscofpmf {
                                c.arm_overflow(i, h, icount);
                            }
                        }
                    }
                }
            }
            MSTATUS => self.write_mstatus(v, MSTATUS_WMASK),
            SSTATUS => self.write_mstatus(v, SSTATUS_WMASK),
            0xb03..=0xb12 => c.set_mhpmcounter((a - 0xb03) as usize, v, icount, self_sscofpmf),
            0x323..=0x33f => {
                let i = (a - 0x323) as usize;
                c.mhpmevent[i] = v & MHPMEVENT_MASK;
                c.hpm_map_event(i, v);
            }
            MEDELEG => c.medeleg = v & MEDELEG_MASK,
            MIDELEG => c.mideleg = v & MIDELEG_MASK,
            MIE => c.mie = v & MIE_MASK,
            SIE => {
                let m = c.mideleg & SIE_MASK & mask;
                c.mie = (c.mie & !m) | (v & m);
            }
            MIP => {
                // With Sstc enabled STIP is read-only (it follows stimecmp).
                let stce = if c.menvcfg & MENVCFG_STCE != 0 {
                    MIP_STIP
                } else {
                    0
                };
                let m = MIDELEG_MASK & mask & !stce;
                c.mip_sw = (c.mip_sw & !m) | (v & m);
                c.update_mip();
            }
            SIP => {
                let m = c.mideleg & SIP_WMASK & mask;
                c.mip_sw = (c.mip_sw & !m) | (v & m);
                c.update_mip();
            }
            // Modes 2 and 3 are reserved: QEMU ignores the whole write.
            MTVEC if v & 3 < 2 => c.mtvec = v,
            STVEC if v & 3 < 2 => c.stvec = v,
            MCOUNTEREN => c.mcounteren = v & counteren_mask,
            SCOUNTEREN => c.scounteren = v & counteren_mask,
            MENVCFG => {
                let old = c.menvcfg;
                c.menvcfg = envcfg_write(old, v, menvcfg_wmask);
                c.update_mip();
                // The page walk depends on ADUE and PBMTE.
                if (old ^ c.menvcfg) & (MENVCFG_ADUE | MENVCFG_PBMTE) != 0 {
                    self.tlb.flush();
                }
            }
            SENVCFG => c.senvcfg = envcfg_write(c.senvcfg, v, senvcfg_wmask),
            STIMECMP => c.stimecmp = v,
            MSCRATCH => c.mscratch = v,
            SSCRATCH => c.sscratch = v,
            // spec: mepc[0]/sepc[0] are always zero (QEMU 10 keeps bit 0 on write).
            MEPC => c.mepc = v & !1,
            SEPC => c.sepc = v & !1,
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
            TSELECT if v < TRIGGERS as u64 => c.tselect = v,
            TDATA1 | TDATA2 | TDATA3 => {
                let t = c.tselect as usize % TRIGGERS;
                match a {
                    TDATA1 => {
                        if let Some(n) = tdata1_legalize(v) {
                            c.tdata1[t] = n;
                        }
                    }
                    TDATA2 => c.tdata2[t] = v,
                    _ => c.tdata3[t] = textra_legalize(v),
                }
                self.update_triggers();
            }
            MCONTEXT => {
                c.mcontext = v & 0x1fff;
                self.update_triggers();
            }
            // misa, tinfo: WARL, writes ignored.
            _ => {}
        }
    }

    /// Write the `wmask` bits of mstatus from `v`, recomputing SD.
    fn write_mstatus(&mut self, v: u64, wmask: u64) {
        let old = self.csr.mstatus;
        let mut new = (old & !wmask) | (v & wmask);
        // MPP = 2 is reserved: the field keeps its value (QEMU 10's legalize_mpp).
        if (new & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT == 2 {
            new = (new & !MSTATUS_MPP) | (old & MSTATUS_MPP);
        }
        new &= !MSTATUS_SD;
        if new & MSTATUS_FS == MSTATUS_FS || new & MSTATUS_XS == MSTATUS_XS {
            new |= MSTATUS_SD;
        }
        // spec: UXL/SXL are read-only 2 (only 64-bit S and U); QEMU 10 lets UXL be written,
        // even with the reserved value 3.
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

/// A write of `v` to menvcfg/senvcfg with writable bits `wmask`. spec departure: CBIE = 2 is
/// reserved and is written as 0 (QEMU 10 stores it; later QEMU canonicalizes it to 0 too).
fn envcfg_write(old: u64, v: u64, wmask: u64) -> u64 {
    let new = (old & !wmask) | (v & wmask);
    if new & ENVCFG_CBIE == 2 << 4 {
        new & !ENVCFG_CBIE
    } else {
        new
    }
}
