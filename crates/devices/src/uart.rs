//! NS16550A UART, register-compatible with QEMU 7.2's `hw/char/serial.c` (reg-shift 0).
//!
//! Differences from QEMU that a guest cannot rely on anyway (they depend on host timing there):
//! - transmission is instant, so THRE/TEMT are set again before the guest's next access;
//! - the character-timeout interrupt (CTI, IIR 0xCC) is considered expired at once: it is reported whenever
//!   the RX FIFO holds data below the trigger level, and RDA (0xC4) at or above it. QEMU raises CTI 4
//!   character times after the last byte (so IIR reads 0xC1 until then) and keeps reporting CTI, even past
//!   the trigger level, until RBR is read; that depends on host timing and has no deterministic meaning here.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Depth of the RX and TX FIFOs of a 16550A.
pub const FIFO_LEN: usize = 16;
/// Bytes QEMU 7.2 actually maps (`8 << reg_shift`): the rest of the FDT's 0x100 window faults.
pub const REGION_SIZE: u64 = 8;

const LCR_DLAB: u8 = 0x80;

const IER_MSI: u8 = 0x08;
const IER_RLSI: u8 = 0x04;
const IER_THRI: u8 = 0x02;
const IER_RDI: u8 = 0x01;

const IIR_NO_INT: u8 = 0x01;
const IIR_ID: u8 = 0x06;
const IIR_MSI: u8 = 0x00;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_RLSI: u8 = 0x06;
const IIR_CTI: u8 = 0x0c;
const IIR_FE: u8 = 0xc0;

const MCR_LOOP: u8 = 0x10;
const MCR_OUT2: u8 = 0x08;

const MSR_DCD: u8 = 0x80;
const MSR_DSR: u8 = 0x20;
const MSR_CTS: u8 = 0x10;
const MSR_ANY_DELTA: u8 = 0x0f;

const LSR_TEMT: u8 = 0x40;
const LSR_THRE: u8 = 0x20;
const LSR_BI: u8 = 0x10;
const LSR_OE: u8 = 0x02;
const LSR_DR: u8 = 0x01;
const LSR_INT_ANY: u8 = 0x1e;

const FCR_XFR: u8 = 0x04;
const FCR_RFR: u8 = 0x02;
const FCR_FE: u8 = 0x01;

/// Register offsets (reg-shift 0).
pub mod reg {
    /// Receiver buffer (read) / transmitter holding (write) / divisor latch low (DLAB).
    pub const RBR_THR_DLL: u64 = 0;
    /// Interrupt enable / divisor latch high (DLAB).
    pub const IER_DLM: u64 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u64 = 2;
    /// Line control.
    pub const LCR: u64 = 3;
    /// Modem control.
    pub const MCR: u64 = 4;
    /// Line status.
    pub const LSR: u64 = 5;
    /// Modem status.
    pub const MSR: u64 = 6;
    /// Scratch.
    pub const SCR: u64 = 7;
}

/// Guest-visible state of one NS16550A UART.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uart16550 {
    divider: u16,
    rbr: u8,
    thr: u8,
    ier: u8,
    iir: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    fcr: u8,
    recv_fifo_itl: u8,
    thr_ipending: bool,
    rx_fifo: VecDeque<u8>,
    /// Bytes transmitted by the guest and not yet drained by the machine.
    tx_out: Vec<u8>,
}

impl Default for Uart16550 {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart16550 {
    /// A UART in QEMU's reset state (9600 8N1, FIFOs off, OUT2 set, no interrupt).
    pub fn new() -> Self {
        Self {
            divider: 0x0c,
            rbr: 0,
            thr: 0,
            ier: 0,
            iir: IIR_NO_INT,
            lcr: 0,
            mcr: MCR_OUT2,
            lsr: LSR_TEMT | LSR_THRE,
            // QEMU's chardev backends other than a host tty give no modem lines: the reset value stays.
            msr: MSR_DCD | MSR_DSR | MSR_CTS,
            scr: 0,
            fcr: 0,
            recv_fifo_itl: 1,
            thr_ipending: false,
            rx_fifo: VecDeque::with_capacity(FIFO_LEN),
            tx_out: Vec::new(),
        }
    }

    /// Whether QEMU accepts a naturally aligned access of `size` bytes at `offset` (anything inside the
    /// 8 mapped bytes). An accepted access of any width touches only the register at `offset`: reads
    /// zero-extend its byte, writes keep the low byte.
    pub fn access_ok(offset: u64, size: u8) -> bool {
        matches!(size, 1 | 2 | 4 | 8) && offset & (u64::from(size) - 1) == 0 && offset < REGION_SIZE
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_FE != 0
    }

    /// Stand-in for QEMU's `timeout_ipending`: data sits below the trigger level (see module doc).
    fn timeout_pending(&self) -> bool {
        self.fifo_enabled()
            && !self.rx_fifo.is_empty()
            && self.rx_fifo.len() < usize::from(self.recv_fifo_itl)
    }

    fn update_irq(&mut self) {
        let id = if self.ier & IER_RLSI != 0 && self.lsr & LSR_INT_ANY != 0 {
            IIR_RLSI
        } else if self.ier & IER_RDI != 0 && self.timeout_pending() {
            IIR_CTI
        } else if self.ier & IER_RDI != 0
            && self.lsr & LSR_DR != 0
            && (!self.fifo_enabled() || self.rx_fifo.len() >= usize::from(self.recv_fifo_itl))
        {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thr_ipending {
            IIR_THRI
        } else if self.ier & IER_MSI != 0 && self.msr & MSR_ANY_DELTA != 0 {
            IIR_MSI
        } else {
            IIR_NO_INT
        };
        self.iir = id | (self.iir & 0xf0);
    }

    /// QEMU's `serial_receive1` for one byte (host input or loopback).
    fn receive(&mut self, byte: u8) {
        if self.fifo_enabled() {
            // Receive overruns do not overwrite FIFO contents.
            if self.rx_fifo.len() < FIFO_LEN {
                self.rx_fifo.push_back(byte);
            } else {
                self.lsr |= LSR_OE;
            }
        } else {
            if self.lsr & LSR_DR != 0 {
                self.lsr |= LSR_OE;
            }
            self.rbr = byte;
        }
        self.lsr |= LSR_DR;
        self.update_irq();
    }

    /// QEMU's `serial_xmit` with a backend that always accepts the byte.
    fn transmit(&mut self) {
        let tsr = self.thr;
        self.lsr |= LSR_THRE;
        if !self.thr_ipending {
            self.thr_ipending = true;
            self.update_irq();
        }
        if self.mcr & MCR_LOOP != 0 {
            self.receive(tsr);
        } else {
            self.tx_out.push(tsr);
        }
        self.lsr |= LSR_TEMT;
    }

    /// Guest read of the register at `offset` (only the low 3 bits select it; see [`Self::access_ok`]).
    pub fn read(&mut self, offset: u64) -> u8 {
        match offset & 7 {
            0 => {
                if self.lcr & LCR_DLAB != 0 {
                    return self.divider as u8;
                }
                let ret = if self.fifo_enabled() {
                    let b = self.rx_fifo.pop_front().unwrap_or(0);
                    if self.rx_fifo.is_empty() {
                        self.lsr &= !(LSR_DR | LSR_BI);
                    }
                    b
                } else {
                    self.lsr &= !(LSR_DR | LSR_BI);
                    self.rbr
                };
                self.update_irq();
                ret
            }
            1 => {
                if self.lcr & LCR_DLAB != 0 {
                    (self.divider >> 8) as u8
                } else {
                    self.ier
                }
            }
            2 => {
                let ret = self.iir;
                // Reading IIR acknowledges THRI only when it is the source being reported.
                if ret & IIR_ID == IIR_THRI {
                    self.thr_ipending = false;
                    self.update_irq();
                }
                ret
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                let ret = self.lsr;
                if self.lsr & (LSR_BI | LSR_OE) != 0 {
                    self.lsr &= !(LSR_BI | LSR_OE);
                    self.update_irq();
                }
                ret
            }
            6 => {
                if self.mcr & MCR_LOOP != 0 {
                    // In loopback the modem outputs drive the inputs: OUT2->DCD, OUT1->RI, RTS->CTS, DTR->DSR.
                    ((self.mcr & 0x0c) << 4) | ((self.mcr & 0x02) << 3) | ((self.mcr & 0x01) << 5)
                } else {
                    let ret = self.msr;
                    if self.msr & MSR_ANY_DELTA != 0 {
                        self.msr &= 0xf0;
                        self.update_irq();
                    }
                    ret
                }
            }
            _ => self.scr,
        }
    }

    /// Guest write of `value` to the register at `offset` (only the low 3 bits select it).
    pub fn write(&mut self, offset: u64, value: u8) {
        match offset & 7 {
            0 => {
                if self.lcr & LCR_DLAB != 0 {
                    self.divider = (self.divider & 0xff00) | u16::from(value);
                } else {
                    self.thr = value;
                    self.thr_ipending = false;
                    self.lsr &= !(LSR_THRE | LSR_TEMT);
                    self.update_irq();
                    self.transmit();
                }
            }
            1 => {
                if self.lcr & LCR_DLAB != 0 {
                    self.divider = (self.divider & 0x00ff) | (u16::from(value) << 8);
                } else {
                    let changed = (self.ier ^ value) & 0x0f;
                    self.ier = value & 0x0f;
                    // Enabling THRI while THR is empty raises it even if an IIR read had acknowledged it.
                    if changed & IER_THRI != 0 {
                        self.thr_ipending = self.ier & IER_THRI != 0 && self.lsr & LSR_THRE != 0;
                    }
                    if changed != 0 {
                        self.update_irq();
                    }
                }
            }
            2 => {
                let mut val = value;
                // Toggling the FIFO enable flushes both FIFOs.
                if (val ^ self.fcr) & FCR_FE != 0 {
                    val |= FCR_XFR | FCR_RFR;
                }
                if val & FCR_RFR != 0 {
                    self.lsr &= !(LSR_DR | LSR_BI);
                    self.rx_fifo.clear();
                }
                if val & FCR_XFR != 0 {
                    self.lsr |= LSR_THRE;
                    self.thr_ipending = true;
                }
                self.fcr = val & 0xc9;
                if self.fcr & FCR_FE != 0 {
                    self.iir |= IIR_FE;
                    self.recv_fifo_itl = match self.fcr & 0xc0 {
                        0x00 => 1,
                        0x40 => 4,
                        0x80 => 8,
                        _ => 14,
                    };
                } else {
                    self.iir &= !IIR_FE;
                }
                self.update_irq();
            }
            3 => self.lcr = value,
            4 => self.mcr = value & 0x1f,
            5 | 6 => {}
            _ => self.scr = value,
        }
    }

    /// Level of the UART's interrupt line (PLIC source [`crate::layout::UART0_IRQ`]).
    pub fn irq_level(&self) -> bool {
        self.iir & IIR_NO_INT == 0
    }

    /// Number of bytes the receiver can take now: free FIFO places, or 1/0 for the holding register.
    pub fn rx_room(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_LEN - self.rx_fifo.len().min(FIFO_LEN)
        } else if self.lsr & LSR_DR != 0 {
            0
        } else {
            1
        }
    }

    /// Deliver one host byte to the receiver; returns false (and changes nothing) when there is no room.
    pub fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_room() == 0 {
            return false;
        }
        self.receive(byte);
        true
    }

    /// Move the bytes the guest transmitted since the last drain to the end of `out`.
    pub fn drain_tx(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.tx_out);
    }
}

impl crate::device::Validate for Uart16550 {
    const NAME: &'static str = "uart";
    fn validate(&self) -> Result<(), String> {
        if self.rx_fifo.len() > FIFO_LEN {
            return Err(format!(
                "{} bytes in the {FIFO_LEN}-byte receive FIFO",
                self.rx_fifo.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::reg::*;
    use super::*;

    fn drained(u: &mut Uart16550) -> Vec<u8> {
        let mut v = Vec::new();
        u.drain_tx(&mut v);
        v
    }

    #[test]
    fn reset_values_match_qemu() {
        let mut u = Uart16550::new();
        assert_eq!(u.read(IER_DLM), 0x00);
        assert_eq!(u.read(IIR_FCR), 0x01);
        assert_eq!(u.read(LCR), 0x00);
        assert_eq!(u.read(MCR), 0x08);
        assert_eq!(u.read(LSR), 0x60);
        assert_eq!(u.read(MSR), 0xb0);
        assert_eq!(u.read(SCR), 0x00);
        assert!(!u.irq_level());
        // Divisor latch: 9600 baud at reset.
        u.write(LCR, 0x80);
        assert_eq!(u.read(RBR_THR_DLL), 0x0c);
        assert_eq!(u.read(IER_DLM), 0x00);
        u.write(RBR_THR_DLL, 0x01);
        u.write(IER_DLM, 0x02);
        assert_eq!(u.read(RBR_THR_DLL), 0x01);
        assert_eq!(u.read(IER_DLM), 0x02);
        u.write(LCR, 0x03);
        // DLAB writes never transmit.
        assert!(drained(&mut u).is_empty());
        assert_eq!(u.read(LCR), 0x03);
        // QEMU 7.2 maps only 8 bytes; wider aligned accesses inside them are fine.
        assert!(Uart16550::access_ok(7, 1));
        assert!(Uart16550::access_ok(0, 8));
        assert!(Uart16550::access_ok(4, 4));
        assert!(!Uart16550::access_ok(8, 1));
        assert!(!Uart16550::access_ok(0xff, 1));
        assert!(!Uart16550::access_ok(5, 4));
    }

    #[test]
    fn transmit_is_instant_and_drained_in_order() {
        let mut u = Uart16550::new();
        for &b in b"hi\n" {
            u.write(RBR_THR_DLL, b);
            assert_eq!(u.read(LSR) & 0x60, 0x60);
        }
        assert_eq!(drained(&mut u), b"hi\n");
        assert!(drained(&mut u).is_empty());
    }

    #[test]
    fn thri_rules() {
        let mut u = Uart16550::new();
        // Enabling ETBEI while THR is empty raises THRI at once.
        u.write(IER_DLM, 0x02);
        assert!(u.irq_level());
        assert_eq!(u.read(IIR_FCR), 0x02);
        // Reading IIR while THRI is the reported source clears it.
        assert!(!u.irq_level());
        assert_eq!(u.read(IIR_FCR), 0x01);
        // Writing THR clears and, since the byte leaves at once, raises it again.
        u.write(RBR_THR_DLL, b'a');
        assert_eq!(u.read(IIR_FCR), 0x02);
        assert_eq!(u.read(IIR_FCR), 0x01);
        // Rewriting IER with THRI unchanged does not re-raise...
        u.write(IER_DLM, 0x02);
        assert_eq!(u.read(IIR_FCR), 0x01);
        // ...but toggling it off and on does (what Windows and Linux's THRE test rely on).
        u.write(IER_DLM, 0x00);
        u.write(IER_DLM, 0x02);
        assert_eq!(u.read(IIR_FCR), 0x02);
        // With ETBEI off, THR writes do not interrupt; enabling afterwards does.
        u.write(IER_DLM, 0x00);
        u.write(RBR_THR_DLL, b'b');
        assert_eq!(u.read(IIR_FCR), 0x01);
        assert!(!u.irq_level());
        u.write(IER_DLM, 0x02);
        assert_eq!(u.read(IIR_FCR), 0x02);
    }

    #[test]
    fn thri_not_cleared_by_iir_read_when_higher_priority_reported() {
        let mut u = Uart16550::new();
        u.write(IER_DLM, 0x03);
        assert!(u.push_rx(b'x'));
        // RDA outranks THRI; reading IIR reports RDA and leaves THRI pending.
        assert_eq!(u.read(IIR_FCR), 0x04);
        assert_eq!(u.read(RBR_THR_DLL), b'x');
        assert_eq!(u.read(IIR_FCR), 0x02);
        assert_eq!(u.read(IIR_FCR), 0x01);
    }

    #[test]
    fn non_fifo_receive_and_overrun() {
        let mut u = Uart16550::new();
        u.write(IER_DLM, 0x05);
        assert_eq!(u.rx_room(), 1);
        assert!(u.push_rx(b'1'));
        assert_eq!(u.rx_room(), 0);
        assert!(!u.push_rx(b'2'));
        assert_eq!(u.read(IIR_FCR), 0x04);
        assert_eq!(u.read(LSR), 0x61);
        assert_eq!(u.read(RBR_THR_DLL), b'1');
        assert_eq!(u.read(LSR), 0x60);
        assert_eq!(u.read(IIR_FCR), 0x01);
        // Overrun through loopback (which bypasses flow control) sets OE: an RLS interrupt cleared by LSR read.
        u.write(MCR, 0x10);
        u.write(RBR_THR_DLL, b'a');
        u.write(RBR_THR_DLL, b'b');
        assert!(drained(&mut u).is_empty());
        assert_eq!(u.read(IIR_FCR), 0x06);
        assert_eq!(u.read(LSR), 0x63);
        assert_eq!(u.read(IIR_FCR), 0x04);
        assert_eq!(u.read(LSR), 0x61);
        assert_eq!(u.read(RBR_THR_DLL), b'b');
    }

    #[test]
    fn fifo_trigger_levels() {
        for (fcr, itl) in [(0x01u8, 1usize), (0x41, 4), (0x81, 8), (0xc1, 14)] {
            let mut u = Uart16550::new();
            u.write(IIR_FCR, fcr);
            u.write(IER_DLM, 0x01);
            assert_eq!(u.read(IIR_FCR), 0xc1, "FIFO enabled bits, no interrupt");
            for i in 1..=FIFO_LEN {
                assert!(u.push_rx(i as u8));
                let want = if i >= itl { 0xc4 } else { 0xcc };
                assert_eq!(u.read(IIR_FCR), want, "fcr {fcr:#x}, {i} bytes");
            }
            assert_eq!(u.rx_room(), 0);
            assert!(!u.push_rx(0xff));
            for i in 1..=FIFO_LEN {
                assert_eq!(u.read(LSR) & 1, 1);
                assert_eq!(u.read(RBR_THR_DLL), i as u8);
            }
            assert_eq!(u.read(LSR), 0x60);
            assert_eq!(u.read(IIR_FCR), 0xc1);
            assert!(!u.irq_level());
            // Reading an empty FIFO gives 0.
            assert_eq!(u.read(RBR_THR_DLL), 0);
        }
    }

    #[test]
    fn fifo_rx_room_and_reset() {
        let mut u = Uart16550::new();
        u.write(IIR_FCR, 0x07);
        assert_eq!(u.rx_room(), 16);
        for b in 0..5 {
            assert!(u.push_rx(b));
        }
        assert_eq!(u.rx_room(), 11);
        // RX FIFO reset flushes data and DR; FE stays.
        u.write(IIR_FCR, 0x03);
        assert_eq!(u.rx_room(), 16);
        assert_eq!(u.read(LSR), 0x60);
        // Disabling FIFOs drops the FE bits of IIR and returns to the 1-byte holding register.
        u.write(IIR_FCR, 0x00);
        assert_eq!(u.read(IIR_FCR), 0x01);
        assert_eq!(u.rx_room(), 1);
    }

    #[test]
    fn loopback_fifo_and_msr() {
        let mut u = Uart16550::new();
        u.write(IIR_FCR, 0xc7);
        u.write(MCR, 0x1f);
        assert_eq!(u.read(MCR), 0x1f);
        // Outputs looped to inputs: DCD|RI|DSR|CTS.
        assert_eq!(u.read(MSR), 0xf0);
        u.write(MCR, 0x10 | 0x02);
        assert_eq!(u.read(MSR), 0x10);
        for &b in b"loop" {
            u.write(RBR_THR_DLL, b);
        }
        assert!(drained(&mut u).is_empty());
        let got: Vec<u8> = (0..4).map(|_| u.read(RBR_THR_DLL)).collect();
        assert_eq!(got, b"loop");
        u.write(MCR, 0x08);
        u.write(RBR_THR_DLL, b'z');
        assert_eq!(drained(&mut u), b"z");
        assert_eq!(u.read(LSR), 0x60);
    }

    #[test]
    fn rls_outranks_rda_and_irq_follows_ier() {
        let mut u = Uart16550::new();
        u.write(MCR, 0x10);
        u.write(RBR_THR_DLL, 1);
        u.write(RBR_THR_DLL, 2);
        // OE and DR set but no interrupt is enabled.
        assert!(!u.irq_level());
        u.write(IER_DLM, 0x07);
        assert!(u.irq_level());
        assert_eq!(u.read(IIR_FCR), 0x06);
        u.write(IER_DLM, 0x00);
        assert!(!u.irq_level());
        assert_eq!(u.read(IIR_FCR), 0x01);
    }

    #[test]
    fn serde_round_trip_keeps_fifo_and_pending_state() {
        let mut u = Uart16550::new();
        u.write(IIR_FCR, 0x41);
        u.write(IER_DLM, 0x03);
        assert!(u.push_rx(7));
        let json = serde_json::to_string(&u).unwrap();
        let mut back: Uart16550 = serde_json::from_str(&json).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.read(IIR_FCR), 0xcc);
        assert_eq!(back.read(RBR_THR_DLL), 7);
        assert_eq!(back.read(IIR_FCR), 0xc2);
    }
}
