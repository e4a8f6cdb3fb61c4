//! The system bus: every physical address outside RAM, dispatched to the `virt` devices.

use rewind_cpu::{Mmio, MmioFault, Ram};
use rewind_devices::layout::*;
use rewind_devices::{Clint, FinisherAction, GoldfishRtc, Plic, SifiveTest, Uart16550};

use crate::clock::VirtualClock;

/// The devices of the board plus the clock they read time from.
#[derive(Debug)]
pub struct Bus {
    /// Virtual time (derived from icount).
    pub clock: VirtualClock,
    /// Host wall-clock time at machine start (ns since the epoch): the RTC's base.
    pub rtc_base_ns: u64,
    /// UART 0.
    pub uart: Uart16550,
    /// Timer and software interrupts.
    pub clint: Clint,
    /// External interrupt controller.
    pub plic: Plic,
    /// Real-time clock.
    pub rtc: GoldfishRtc,
    /// Poweroff / reboot switch.
    pub test: SifiveTest,
    /// The mask ROM at [`VIRT_MROM`] (reset vector and `fw_dynamic_info`); read-only.
    pub rom: Vec<u8>,
    /// A finisher request the machine loop has not acted on yet.
    pub finisher: Option<FinisherAction>,
}

/// Every part of the [`Bus`]: what a snapshot saves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BusState {
    /// Virtual clock (icount shift, warp bias).
    pub clock: VirtualClock,
    /// RTC base.
    pub rtc_base_ns: u64,
    /// UART 0.
    pub uart: Uart16550,
    /// CLINT.
    pub clint: Clint,
    /// PLIC.
    pub plic: Plic,
    /// RTC.
    pub rtc: GoldfishRtc,
    /// Test finisher.
    pub test: SifiveTest,
    /// Mask ROM.
    pub rom: Vec<u8>,
    /// Pending finisher request.
    pub finisher: Option<FinisherAction>,
}

impl Bus {
    /// Save every device. The destructuring is exhaustive, so a device added to the bus
    /// cannot be forgotten here.
    pub fn save(&self) -> BusState {
        let Bus {
            clock,
            rtc_base_ns,
            uart,
            clint,
            plic,
            rtc,
            test,
            rom,
            finisher,
        } = self;
        BusState {
            clock: *clock,
            rtc_base_ns: *rtc_base_ns,
            uart: uart.clone(),
            clint: clint.clone(),
            plic: plic.clone(),
            rtc: rtc.clone(),
            test: *test,
            rom: rom.clone(),
            finisher: *finisher,
        }
    }

    /// Put every device in the saved state.
    pub fn restore(&mut self, state: &BusState) {
        let BusState {
            clock,
            rtc_base_ns,
            uart,
            clint,
            plic,
            rtc,
            test,
            rom,
            finisher,
        } = state.clone();
        *self = Bus {
            clock,
            rtc_base_ns,
            uart,
            clint,
            plic,
            rtc,
            test,
            rom,
            finisher,
        };
    }

    /// Devices in reset state, a zeroed ROM, the clock at 0.
    pub fn new(icount_shift: u32, rtc_base_ns: u64) -> Self {
        Bus {
            clock: VirtualClock::new(icount_shift),
            rtc_base_ns,
            uart: Uart16550::new(),
            clint: Clint::new(1),
            plic: Plic::new(1),
            rtc: GoldfishRtc::new(),
            test: SifiveTest::new(),
            rom: vec![0; VIRT_MROM_SIZE as usize],
            finisher: None,
        }
    }

    /// Put every device back in its reset state (the clock keeps running, as on QEMU).
    pub fn reset_devices(&mut self) {
        self.uart = Uart16550::new();
        self.clint = Clint::new(1);
        self.plic = Plic::new(1);
        self.rtc = GoldfishRtc::new();
        self.test = SifiveTest::new();
        self.finisher = None;
    }

    /// The RTC's notion of now: host time at start plus virtual time.
    #[inline]
    pub fn rtc_now_ns(&self, icount: u64) -> u64 {
        self.rtc_base_ns.wrapping_add(self.clock.ns(icount))
    }

    fn rom_load(&self, off: u64, size: u8) -> Option<u64> {
        let off = off as usize;
        let bytes = self.rom.get(off..off.checked_add(size as usize)?)?;
        Some(bytes.iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64))
    }
}

/// The region holding `paddr` and the offset inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Uart(u64),
    Clint(u64),
    Plic(u64),
    Rtc(u64),
    Test(u64),
    Rom(u64),
    None,
}

#[inline]
fn region(paddr: u64) -> Region {
    // Ordered by how often guests touch them.
    if paddr.wrapping_sub(VIRT_UART0) < VIRT_UART0_SIZE {
        Region::Uart(paddr - VIRT_UART0)
    } else if paddr.wrapping_sub(VIRT_CLINT) < VIRT_CLINT_SIZE {
        Region::Clint(paddr - VIRT_CLINT)
    } else if paddr.wrapping_sub(VIRT_PLIC) < VIRT_PLIC_SIZE {
        Region::Plic(paddr - VIRT_PLIC)
    } else if paddr.wrapping_sub(VIRT_RTC) < VIRT_RTC_SIZE {
        Region::Rtc(paddr - VIRT_RTC)
    } else if paddr.wrapping_sub(VIRT_TEST) < VIRT_TEST_SIZE {
        Region::Test(paddr - VIRT_TEST)
    } else if paddr.wrapping_sub(VIRT_MROM) < VIRT_MROM_SIZE {
        Region::Rom(paddr - VIRT_MROM)
    } else {
        Region::None
    }
}

impl Mmio for Bus {
    fn load(
        &mut self,
        _ram: &mut Ram,
        paddr: u64,
        size: u8,
        icount: u64,
    ) -> Result<u64, MmioFault> {
        let v = match region(paddr) {
            Region::Uart(off) => {
                Uart16550::access_ok(off, size).then(|| u64::from(self.uart.read(off)))
            }
            Region::Clint(off) => {
                let mtime = self.clock.mtime(icount);
                self.clint.read(off, size, mtime)
            }
            Region::Plic(off) => self.plic.read(off, size),
            Region::Rtc(off) => {
                let now = self.rtc_now_ns(icount);
                self.rtc.read_sized(off, size, now)
            }
            Region::Test(off) => {
                SifiveTest::access_ok(off, size).then(|| u64::from(self.test.read(off)))
            }
            Region::Rom(off) => self.rom_load(off, size),
            Region::None => None,
        };
        v.ok_or(MmioFault)
    }

    fn store(
        &mut self,
        _ram: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        let ok = match region(paddr) {
            Region::Uart(off) => {
                let ok = Uart16550::access_ok(off, size);
                if ok {
                    self.uart.write(off, value as u8);
                }
                ok
            }
            Region::Clint(off) => {
                let mtime = self.clock.mtime(icount);
                self.clint.write(off, size, value, mtime).is_some()
            }
            Region::Plic(off) => self.plic.write(off, size, value).is_some(),
            Region::Rtc(off) => {
                let now = self.rtc_now_ns(icount);
                self.rtc.write_sized(off, size, value, now).is_some()
            }
            Region::Test(off) => {
                let ok = SifiveTest::access_ok(off, size);
                if ok {
                    if let Some(action) = self.test.write(off, value as u32) {
                        // The first request wins: the loop acts on it before the guest runs on.
                        self.finisher.get_or_insert(action);
                    }
                }
                ok
            }
            // Writes to the ROM are ignored, as QEMU ignores writes to ROM regions.
            Region::Rom(off) => off + u64::from(size) <= VIRT_MROM_SIZE,
            Region::None => false,
        };
        if ok {
            Ok(())
        } else {
            Err(MmioFault)
        }
    }

    #[inline]
    fn mtime(&self, icount: u64) -> u64 {
        self.clock
            .mtime(icount)
            .wrapping_add(self.clint.mtime_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rewind_devices::clint::{MTIME, MTIMECMP};

    fn bus() -> (Bus, Ram) {
        (Bus::new(0, 1_000_000_000), Ram::new(VIRT_DRAM, 1 << 20))
    }

    #[test]
    fn uart_transmit_and_line_status() {
        let (mut b, mut ram) = bus();
        b.store(&mut ram, VIRT_UART0, 1, u64::from(b'A'), 0)
            .unwrap();
        let mut out = Vec::new();
        b.uart.drain_tx(&mut out);
        assert_eq!(out, b"A");
        // LSR: THR empty and transmitter empty.
        assert_eq!(b.load(&mut ram, VIRT_UART0 + 5, 1, 0).unwrap() & 0x60, 0x60);
    }

    #[test]
    fn clint_mtime_follows_icount_and_offset() {
        let (mut b, mut ram) = bus();
        assert_eq!(b.load(&mut ram, VIRT_CLINT + MTIME, 8, 1_000).unwrap(), 10);
        assert_eq!(b.mtime(1_000), 10);
        b.store(&mut ram, VIRT_CLINT + MTIME, 8, 500, 1_000)
            .unwrap();
        assert_eq!(b.mtime(1_000), 500);
        assert_eq!(b.load(&mut ram, VIRT_CLINT + MTIME, 8, 2_000).unwrap(), 510);
        b.store(&mut ram, VIRT_CLINT + MTIMECMP, 8, 600, 2_000)
            .unwrap();
        assert_eq!(b.clint.mtimecmp(0), 600);
        // 1-byte CLINT accesses are access faults.
        assert_eq!(b.load(&mut ram, VIRT_CLINT + MTIME, 1, 0), Err(MmioFault));
    }

    #[test]
    fn finisher_request_is_kept_for_the_loop() {
        let (mut b, mut ram) = bus();
        b.store(&mut ram, VIRT_TEST, 4, 0x0002_3333, 0).unwrap();
        b.store(&mut ram, VIRT_TEST, 4, 0x5555, 0).unwrap();
        assert_eq!(b.finisher, Some(FinisherAction::Fail(2)));
        assert_eq!(b.store(&mut ram, VIRT_TEST, 8, 0x5555, 0), Err(MmioFault));
    }

    #[test]
    fn rtc_reads_host_base_plus_virtual_time() {
        let (mut b, mut ram) = bus();
        let t = b.load(&mut ram, VIRT_RTC, 8, 5).unwrap();
        assert_eq!(t, 1_000_000_005);
    }

    #[test]
    fn rom_is_readable_and_read_only() {
        let (mut b, mut ram) = bus();
        b.rom[..8].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(
            b.load(&mut ram, VIRT_MROM, 8, 0).unwrap(),
            0x1122_3344_5566_7788
        );
        assert_eq!(b.load(&mut ram, VIRT_MROM + 2, 2, 0).unwrap(), 0x5566);
        b.store(&mut ram, VIRT_MROM, 4, 0, 0).unwrap();
        assert_eq!(b.load(&mut ram, VIRT_MROM, 4, 0).unwrap(), 0x5566_7788);
    }

    #[test]
    fn unmapped_addresses_fault() {
        let (mut b, mut ram) = bus();
        for addr in [
            0u64,
            0x0fff,
            0x0010_2000,
            0x1000_1000,
            0x3000_0000,
            0x1_0000_0000_0000,
        ] {
            assert_eq!(b.load(&mut ram, addr, 4, 0), Err(MmioFault), "{addr:#x}");
            assert_eq!(
                b.store(&mut ram, addr, 4, 0, 0),
                Err(MmioFault),
                "{addr:#x}"
            );
        }
    }

    #[test]
    fn plic_claims_uart_interrupt() {
        let (mut b, mut ram) = bus();
        // Priority 1 for source 10, enable it for context 0 (M-mode hart 0).
        b.store(&mut ram, VIRT_PLIC + 4 * 10, 4, 1, 0).unwrap();
        b.store(&mut ram, VIRT_PLIC + 0x2000, 4, 1 << 10, 0)
            .unwrap();
        b.plic.set_level(UART0_IRQ, true);
        assert!(b.plic.eip(0));
        assert!(!b.plic.eip(1));
        assert_eq!(b.load(&mut ram, VIRT_PLIC + 0x20_0004, 4, 0).unwrap(), 10);
        assert!(!b.plic.eip(0));
    }
}
