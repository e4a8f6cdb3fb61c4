//! The system bus: every physical address outside RAM, dispatched through a table of regions.
//!
//! The board's core devices (CLINT and PLIC, which the hart's interrupt state reads; the UART
//! console and the test finisher, which the machine loop drains) are typed fields; every other
//! device is a [`Device`] in a slot. Regions are checked for overlap when they are added.

use rewind_cpu::{Mmio, MmioFault, Ram};
use rewind_devices::device::{
    Device, DeviceCtx, DeviceInput, DeviceTime, FdtNode, FdtValue, HostIo, StateError,
};
use rewind_devices::layout::*;
use rewind_devices::virtio::VirtioMmio;
use rewind_devices::{Clint, FinisherAction, GoldfishRtc, Plic, SifiveTest, Uart16550};

use crate::clock::VirtualClock;

/// What a region of the address map is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Uart,
    Clint,
    Plic,
    Test,
    Rom,
    /// Index into [`Bus::slots`].
    Slot(usize),
}

/// One entry of the address map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    base: u64,
    size: u64,
    target: Target,
}

/// A pluggable device and where it sits.
#[derive(Debug)]
pub struct Slot {
    /// First physical address of its region.
    pub base: u64,
    /// Region size.
    pub size: u64,
    /// Its PLIC source, if it has an interrupt line.
    pub irq: Option<u32>,
    /// The device.
    pub device: Box<dyn Device>,
}

/// A device that cannot be placed on the bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// Its region overlaps one already mapped.
    #[error("{name} at {base:#x}+{size:#x} overlaps a region at {other:#x}+{other_size:#x}")]
    Overlap {
        /// The device added.
        name: &'static str,
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
        /// Base of the region it overlaps.
        other: u64,
        /// Size of that region.
        other_size: u64,
    },
}

/// The virtio-mmio transport index of a region at `base` (0xff for other devices): the
/// `device` byte of log events.
fn virtio_slot(base: u64) -> u8 {
    (0..VIRT_VIRTIO_COUNT)
        .find(|&i| virtio_base(i) == base)
        .map_or(0xff, |i| i as u8)
}

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
    /// Poweroff / reboot switch.
    pub test: SifiveTest,
    /// The mask ROM at [`VIRT_MROM`] (reset vector and `fw_dynamic_info`); read-only.
    pub rom: Vec<u8>,
    /// A finisher request the machine loop has not acted on yet.
    pub finisher: Option<FinisherAction>,
    /// Pluggable devices (RTC, virtio-mmio transports), in address-map order.
    slots: Vec<Slot>,
    /// The address map, most used regions first.
    regions: Vec<Region>,
    /// Number of harts (CLINT and PLIC contexts are sized for it).
    harts: usize,
    /// Added (wrapping) to the instruction count a hart passes to an MMIO access: the running
    /// hart counts its own instructions, time follows the machine's total.
    pub icount_bias: u64,
}

/// Every part of the [`Bus`]: what a snapshot saves. Pluggable devices are saved by name, each
/// in its own encoding ([`Persist`]).
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
    /// Test finisher.
    pub test: SifiveTest,
    /// Mask ROM.
    pub rom: Vec<u8>,
    /// Pending finisher request.
    pub finisher: Option<FinisherAction>,
    /// Pluggable devices in slot order: (name, state).
    pub devices: Vec<(String, Vec<u8>)>,
}

fn validated<T: rewind_devices::Validate>(v: &T) -> Result<(), StateError> {
    v.validate().map_err(|problem| StateError::Invalid {
        device: T::NAME,
        problem,
    })
}

impl Bus {
    /// Save every device. The destructuring is exhaustive, so a field added to the bus
    /// cannot be forgotten here.
    pub fn save(&self) -> BusState {
        let Bus {
            clock,
            rtc_base_ns,
            uart,
            clint,
            plic,
            test,
            rom,
            finisher,
            slots,
            regions: _,
            harts: _,
            icount_bias: _,
        } = self;
        BusState {
            clock: *clock,
            rtc_base_ns: *rtc_base_ns,
            uart: uart.clone(),
            clint: clint.clone(),
            plic: plic.clone(),
            test: *test,
            rom: rom.clone(),
            finisher: *finisher,
            devices: slots
                .iter()
                .map(|s| (s.device.name().to_string(), s.device.save_state()))
                .collect(),
        }
    }

    /// Put every device in the saved state, after checking it fits this bus (same devices,
    /// consistent tables). On error the bus is unchanged.
    pub fn restore(&mut self, state: &BusState) -> Result<(), StateError> {
        let BusState {
            clock,
            rtc_base_ns,
            uart,
            clint,
            plic,
            test,
            rom,
            finisher,
            devices,
        } = state;
        validated(uart)?;
        validated(clint)?;
        validated(plic)?;
        if clint.harts() != self.harts || plic.contexts() != 2 * self.harts {
            return Err(StateError::Invalid {
                device: "clint/plic",
                problem: format!(
                    "sized for {} harts and {} contexts, the machine has {} harts",
                    clint.harts(),
                    plic.contexts(),
                    self.harts
                ),
            });
        }
        if rom.len() as u64 != VIRT_MROM_SIZE {
            return Err(StateError::Invalid {
                device: "rom",
                problem: format!("{} bytes, {VIRT_MROM_SIZE} expected", rom.len()),
            });
        }
        let names = |v: &mut dyn Iterator<Item = &str>| v.collect::<Vec<_>>().join(", ");
        if devices.len() != self.slots.len()
            || devices
                .iter()
                .zip(&self.slots)
                .any(|((n, _), s)| n != s.device.name())
        {
            return Err(StateError::Devices {
                saved: names(&mut devices.iter().map(|(n, _)| n.as_str())),
                machine: names(&mut self.slots.iter().map(|s| s.device.name())),
            });
        }
        let backup: Vec<Vec<u8>> = self.slots.iter().map(|s| s.device.save_state()).collect();
        for (i, (_, bytes)) in devices.iter().enumerate() {
            if let Err(e) = self.slots[i].device.restore_state(bytes) {
                // Put back the devices already restored: their own states always restore.
                for (s, b) in self.slots.iter_mut().zip(&backup).take(i) {
                    let _ = s.device.restore_state(b);
                }
                return Err(e);
            }
        }
        self.clock = *clock;
        self.rtc_base_ns = *rtc_base_ns;
        self.uart = uart.clone();
        self.clint = clint.clone();
        self.plic = plic.clone();
        self.test = *test;
        self.rom = rom.clone();
        self.finisher = *finisher;
        Ok(())
    }

    /// A one-hart bus: see [`Bus::with_harts`].
    pub fn new(icount_shift: u32, rtc_base_ns: u64) -> Self {
        Bus::with_harts(icount_shift, rtc_base_ns, 1)
    }

    /// Devices in reset state for `harts` harts, a zeroed ROM, the clock at 0; the RTC and
    /// eight empty virtio-mmio transports in their slots.
    pub fn with_harts(icount_shift: u32, rtc_base_ns: u64, harts: usize) -> Self {
        let core = |base, size, target| Region { base, size, target };
        let mut bus = Bus {
            clock: VirtualClock::new(icount_shift),
            rtc_base_ns,
            uart: Uart16550::new(),
            clint: Clint::new(harts),
            plic: Plic::new(harts),
            test: SifiveTest::new(),
            rom: vec![0; VIRT_MROM_SIZE as usize],
            finisher: None,
            slots: Vec::new(),
            // Ordered by how often guests touch them; slots go between the PLIC and the test.
            regions: vec![
                core(VIRT_UART0, VIRT_UART0_SIZE, Target::Uart),
                core(VIRT_CLINT, VIRT_CLINT_SIZE, Target::Clint),
                core(VIRT_PLIC, VIRT_PLIC_SIZE, Target::Plic),
                core(VIRT_TEST, VIRT_TEST_SIZE, Target::Test),
                core(VIRT_MROM, VIRT_MROM_SIZE, Target::Rom),
            ],
            harts,
            icount_bias: 0,
        };
        // The board's own layout does not overlap (a unit test checks it).
        let _ = bus.add_device(
            VIRT_RTC,
            VIRT_RTC_SIZE,
            Some(RTC_IRQ),
            Box::new(GoldfishRtc::new()),
        );
        for i in 0..VIRT_VIRTIO_COUNT {
            let _ = bus.add_device(
                virtio_base(i),
                VIRT_VIRTIO_SIZE,
                Some(virtio_irq(i)),
                Box::new(VirtioMmio::empty()),
            );
        }
        bus
    }

    /// Map `device` at `[base, base+size)` with PLIC source `irq`; refused if the region
    /// overlaps another.
    pub fn add_device(
        &mut self,
        base: u64,
        size: u64,
        irq: Option<u32>,
        device: Box<dyn Device>,
    ) -> Result<(), BusError> {
        let end = base.saturating_add(size);
        if let Some(r) = self
            .regions
            .iter()
            .find(|r| base < r.base.saturating_add(r.size) && r.base < end)
        {
            return Err(BusError::Overlap {
                name: device.name(),
                base,
                size,
                other: r.base,
                other_size: r.size,
            });
        }
        let at = self.regions.len().min(3);
        self.regions.insert(
            at + self.slots.len(),
            Region {
                base,
                size,
                target: Target::Slot(self.slots.len()),
            },
        );
        self.slots.push(Slot {
            base,
            size,
            irq,
            device,
        });
        Ok(())
    }

    /// Put the device in the virtio-mmio transport `index` (0-based; QEMU's `-device
    /// virtio-*-device` fill them from the last one down, as QEMU's bus does).
    pub fn plug_virtio(
        &mut self,
        index: u32,
        model: Box<dyn rewind_devices::virtio::DeviceModel>,
    ) -> Option<()> {
        let base = virtio_base(index);
        let slot = self.slots.iter_mut().find(|s| s.base == base)?;
        slot.device = Box::new(VirtioMmio::new(model));
        Some(())
    }

    /// The pluggable devices.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Put every device back in its reset state (the clock keeps running, as on QEMU).
    pub fn reset_devices(&mut self) {
        self.uart = Uart16550::new();
        self.clint = Clint::new(self.harts);
        self.plic = Plic::new(self.harts);
        self.test = SifiveTest::new();
        self.finisher = None;
        for s in &mut self.slots {
            s.device.reset();
        }
    }

    /// The RTC's notion of now: host time at start plus virtual time.
    #[inline]
    pub fn rtc_now_ns(&self, icount: u64) -> u64 {
        self.rtc_base_ns.wrapping_add(self.clock.ns(icount))
    }

    /// Time as devices see it at `icount`.
    #[inline]
    pub fn device_time(&self, icount: u64) -> DeviceTime {
        DeviceTime {
            icount,
            ns: self.clock.ns(icount),
            mtime: self.clock.mtime(icount),
            rtc_ns: self.rtc_now_ns(icount),
        }
    }

    /// The earliest deadline (virtual ns) of the pluggable devices, after `icount`'s time.
    pub fn next_device_deadline_ns(&self, icount: u64) -> Option<u64> {
        let t = self.device_time(icount);
        self.slots
            .iter()
            .filter_map(|s| s.device.next_deadline_ns(&t))
            .filter(|&ns| ns > t.ns)
            .min()
    }

    /// Drive the PLIC's input lines from the devices.
    pub fn update_irq_lines(&mut self, icount: u64) {
        let t = self.device_time(icount);
        self.plic.set_level(UART0_IRQ, self.uart.irq_level());
        for s in &self.slots {
            if let Some(irq) = s.irq {
                self.plic.set_level(irq, s.device.irq_level(&t));
            }
        }
    }

    /// Let devices with pending work do it (at a checkpoint, right after the access that
    /// asked for it).
    pub fn service_devices(&mut self, icount: u64, ram: &mut Ram, host: &mut dyn HostIo) {
        let t = self.device_time(icount);
        for s in &mut self.slots {
            if s.device.wants_service(&t) {
                let slot = virtio_slot(s.base);
                s.device.service(&mut DeviceCtx { t, ram, host, slot });
            }
        }
    }

    /// Whether a device waits for [`Bus::service_devices`].
    pub fn wants_service(&self, icount: u64) -> bool {
        let t = self.device_time(icount);
        self.slots.iter().any(|s| s.device.wants_service(&t))
    }

    /// Hand an asynchronous host input to the device in virtio-mmio transport `slot`; an input
    /// for a slot without such a device is dropped (it was dropped in record too).
    pub fn deliver(
        &mut self,
        slot: u8,
        input: DeviceInput,
        icount: u64,
        ram: &mut Ram,
        host: &mut dyn HostIo,
    ) {
        let t = self.device_time(icount);
        let base = virtio_base(u32::from(slot));
        if let Some(s) = self.slots.iter_mut().find(|s| s.base == base) {
            s.device
                .host_input(input, &mut DeviceCtx { t, ram, host, slot });
        }
    }

    /// The device tree nodes of the devices under `/soc` before the PLIC, in QEMU 10's order
    /// (RTC, UART, test finisher, then the virtio-mmio transports from the last to the first).
    pub fn fdt_nodes(&self, phandle_test: u32) -> Vec<FdtNode> {
        let node_of = |s: &Slot| s.device.fdt_node(s.base, s.size, s.irq);
        let mut out: Vec<FdtNode> = self
            .slots
            .iter()
            .filter(|s| s.base < VIRT_VIRTIO)
            .filter_map(node_of)
            .collect();
        out.push(FdtNode {
            name: format!("serial@{VIRT_UART0:x}"),
            props: vec![
                ("interrupts", FdtValue::U32(UART0_IRQ)),
                ("interrupt-parent", FdtValue::InterruptParent),
                ("clock-frequency", FdtValue::U32(UART0_CLOCK_FREQ)),
                ("reg", FdtValue::U64s(vec![VIRT_UART0, VIRT_UART0_SIZE])),
                ("compatible", FdtValue::Str("ns16550a".into())),
            ],
        });
        out.push(FdtNode {
            name: format!("test@{VIRT_TEST:x}"),
            props: vec![
                ("phandle", FdtValue::U32(phandle_test)),
                ("reg", FdtValue::U64s(vec![VIRT_TEST, VIRT_TEST_SIZE])),
                (
                    "compatible",
                    FdtValue::Strs(vec![
                        "sifive,test1".into(),
                        "sifive,test0".into(),
                        "syscon".into(),
                    ]),
                ),
            ],
        });
        let mut later: Vec<&Slot> = self
            .slots
            .iter()
            .filter(|s| s.base >= VIRT_VIRTIO)
            .collect();
        later.sort_by_key(|s| std::cmp::Reverse(s.base));
        out.extend(later.into_iter().filter_map(node_of));
        out
    }

    fn rom_load(&self, off: u64, size: u8) -> Option<u64> {
        let off = off as usize;
        let bytes = self.rom.get(off..off.checked_add(size as usize)?)?;
        Some(bytes.iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64))
    }

    /// The region holding `paddr` and the offset inside it.
    #[inline]
    fn route(&self, paddr: u64) -> Option<(Target, u64)> {
        self.regions.iter().find_map(|r| {
            let off = paddr.wrapping_sub(r.base);
            (off < r.size).then_some((r.target, off))
        })
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
        let Some((target, off)) = self.route(paddr) else {
            return Err(MmioFault);
        };
        let icount = icount.wrapping_add(self.icount_bias);
        let v = match target {
            Target::Uart => Uart16550::access_ok(off, size).then(|| u64::from(self.uart.read(off))),
            Target::Clint => {
                let mtime = self.clock.mtime(icount);
                self.clint.read(off, size, mtime)
            }
            Target::Plic => self.plic.read(off, size),
            Target::Test => {
                SifiveTest::access_ok(off, size).then(|| u64::from(self.test.read(off)))
            }
            Target::Rom => self.rom_load(off, size),
            Target::Slot(i) => {
                let t = self.device_time(icount);
                self.slots[i].device.read(off, size, &t)
            }
        };
        v.ok_or(MmioFault)
    }

    fn store(
        &mut self,
        ram: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault> {
        let Some((target, off)) = self.route(paddr) else {
            return Err(MmioFault);
        };
        let icount = icount.wrapping_add(self.icount_bias);
        let ok = match target {
            Target::Uart => {
                let ok = Uart16550::access_ok(off, size);
                if ok {
                    self.uart.write(off, value as u8);
                }
                ok
            }
            Target::Clint => {
                let mtime = self.clock.mtime(icount);
                self.clint.write(off, size, value, mtime).is_some()
            }
            Target::Plic => self.plic.write(off, size, value).is_some(),
            Target::Test => {
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
            Target::Rom => off + u64::from(size) <= VIRT_MROM_SIZE,
            Target::Slot(i) => {
                let t = self.device_time(icount);
                self.slots[i]
                    .device
                    .write(off, size, value, &t, ram)
                    .is_some()
            }
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
            .mtime(icount.wrapping_add(self.icount_bias))
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
            0x1000_0100,
            // Past the 0x200 bytes QEMU maps of a virtio-mmio transport.
            0x1000_1200,
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
    fn empty_virtio_slots_answer_as_qemus() {
        let (mut b, mut ram) = bus();
        for i in 0..VIRT_VIRTIO_COUNT {
            let base = virtio_base(i);
            assert_eq!(b.load(&mut ram, base, 4, 0).unwrap(), 0x7472_6976);
            assert_eq!(b.load(&mut ram, base + 4, 4, 0).unwrap(), 2);
            assert_eq!(b.load(&mut ram, base + 8, 4, 0).unwrap(), 0, "device id");
            assert_eq!(b.load(&mut ram, base + 0xc, 4, 0).unwrap(), 0x554d_4551);
            assert_eq!(b.load(&mut ram, base + 0x70, 4, 0).unwrap(), 0);
            b.store(&mut ram, base + 0x70, 4, 0xf, 0).unwrap();
            assert_eq!(b.load(&mut ram, base + 0x70, 4, 0).unwrap(), 0);
        }
    }

    #[test]
    fn regions_never_overlap() {
        let (mut b, _) = bus();
        let regions = b.regions.clone();
        for (i, r) in regions.iter().enumerate() {
            for s in &regions[i + 1..] {
                assert!(
                    r.base + r.size <= s.base || s.base + s.size <= r.base,
                    "{r:?} {s:?}"
                );
            }
        }
        let e = b.add_device(VIRT_UART0 + 0x80, 0x100, None, Box::new(GoldfishRtc::new()));
        assert!(
            matches!(
                e,
                Err(BusError::Overlap {
                    other: VIRT_UART0,
                    ..
                })
            ),
            "{e:?}"
        );
        let e = b.add_device(virtio_base(3) - 8, 0x10, None, Box::new(GoldfishRtc::new()));
        assert!(matches!(e, Err(BusError::Overlap { .. })), "{e:?}");
        b.add_device(0x2000_0000, 0x1000, Some(40), Box::new(GoldfishRtc::new()))
            .unwrap();
        assert_eq!(b.slots().len(), 10);
    }

    #[test]
    fn restore_refuses_inconsistent_state_and_changes_nothing() {
        let (mut b, mut ram) = bus();
        b.store(&mut ram, VIRT_UART0 + 7, 1, 0x5a, 0).unwrap();
        let good = b.save();
        let mut other = Bus::new(0, 1_000_000_000);
        other.restore(&good).unwrap();
        assert_eq!(other.save(), good);

        let mut bad = good.clone();
        bad.devices.pop();
        assert!(matches!(
            other.restore(&bad),
            Err(StateError::Devices { .. })
        ));
        let mut bad = good.clone();
        bad.devices[3].1 = vec![0xff; 3];
        assert!(matches!(
            other.restore(&bad),
            Err(StateError::Decode { .. })
        ));
        let mut bad = good.clone();
        bad.rom.truncate(10);
        assert!(other.restore(&bad).is_err());
        let mut bad = good.clone();
        bad.plic = Plic::new(0);
        assert!(matches!(
            other.restore(&bad),
            Err(StateError::Invalid { .. })
        ));
        assert_eq!(other.save(), good);
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
