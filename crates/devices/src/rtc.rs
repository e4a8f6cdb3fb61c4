//! Goldfish RTC as QEMU 7.2's `hw/rtc/goldfish_rtc.c`: a 64-bit nanosecond counter with one alarm.
//!
//! Time: `now_ns` is the machine's real-time clock (host wall-clock base taken once through the replay
//! boundary, advanced by virtual time). The guest sees `now_ns + tick_offset`, where `tick_offset` is what
//! its TIME_LOW/TIME_HIGH writes added. QEMU's alarm is a timer armed in the `now_ns` base when ALARM_LOW is
//! written; it is not moved by later time writes, and neither is ours. Its expiry is applied lazily: any
//! call that sees `now_ns` at or past the deadline first does what QEMU's timer callback would have done.

use rewind_cpu::Ram;
use serde::{Deserialize, Serialize};

use crate::device::{Device, DeviceTime, FdtNode};

/// Register offsets.
pub mod reg {
    /// Low 32 bits of the time; reading it latches the high half into TIME_HIGH.
    pub const TIME_LOW: u64 = 0x00;
    /// High 32 bits of the time as latched by the last TIME_LOW read (writes set them).
    pub const TIME_HIGH: u64 = 0x04;
    /// Low 32 bits of the alarm; writing it arms the alarm.
    pub const ALARM_LOW: u64 = 0x08;
    /// High 32 bits of the alarm.
    pub const ALARM_HIGH: u64 = 0x0c;
    /// Interrupt enable (bit 0).
    pub const IRQ_ENABLED: u64 = 0x10;
    /// Write: disarm the alarm.
    pub const CLEAR_ALARM: u64 = 0x14;
    /// Read: 1 while the alarm is armed.
    pub const ALARM_STATUS: u64 = 0x18;
    /// Write: clear the pending interrupt.
    pub const CLEAR_INTERRUPT: u64 = 0x1c;
}

/// Guest-visible state of the Goldfish RTC.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GoldfishRtc {
    tick_offset: u64,
    alarm_next: u64,
    /// Expiry of the armed alarm in the `now_ns` base.
    alarm_at_ns: u64,
    alarm_running: bool,
    irq_pending: bool,
    irq_enabled: bool,
    time_high: u32,
}

impl GoldfishRtc {
    /// An RTC in its reset state (no alarm, interrupt disabled, guest time = `now_ns`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether QEMU accepts a naturally aligned access of `size` bytes (4 or 8; 1 and 2 fault).
    pub fn access_ok(offset: u64, size: u8) -> bool {
        matches!(size, 4 | 8)
            && offset & (u64::from(size) - 1) == 0
            && offset < crate::layout::VIRT_RTC_SIZE
    }

    /// Sized guest read: `None` is an access fault. An 8-byte access is two 4-byte ones, low half first,
    /// as QEMU's memory core splits it (so an 8-byte read of TIME_LOW returns the whole latched time).
    pub fn read_sized(&mut self, offset: u64, size: u8, now_ns: u64) -> Option<u64> {
        if !Self::access_ok(offset, size) {
            return None;
        }
        let lo = u64::from(self.read(offset, now_ns));
        if size == 8 {
            Some(lo | u64::from(self.read(offset + 4, now_ns)) << 32)
        } else {
            Some(lo)
        }
    }

    /// Sized guest write: `None` is an access fault. An 8-byte access is two 4-byte ones, low half first.
    pub fn write_sized(&mut self, offset: u64, size: u8, value: u64, now_ns: u64) -> Option<()> {
        if !Self::access_ok(offset, size) {
            return None;
        }
        self.write(offset, value as u32, now_ns);
        if size == 8 {
            self.write(offset + 4, (value >> 32) as u32, now_ns);
        }
        Some(())
    }

    fn count(&self, now_ns: u64) -> u64 {
        now_ns.wrapping_add(self.tick_offset)
    }

    fn alarm_fired(&self, now_ns: u64) -> bool {
        self.alarm_running && now_ns >= self.alarm_at_ns
    }

    /// Apply an alarm expiry that happened before `now_ns` (QEMU's timer callback).
    fn catch_up(&mut self, now_ns: u64) {
        if self.alarm_fired(now_ns) {
            self.alarm_running = false;
            self.irq_pending = true;
        }
    }

    /// Guest read of the 32-bit register at `offset`.
    pub fn read(&mut self, offset: u64, now_ns: u64) -> u32 {
        self.catch_up(now_ns);
        match offset {
            reg::TIME_LOW => {
                let t = self.count(now_ns);
                self.time_high = (t >> 32) as u32;
                t as u32
            }
            reg::TIME_HIGH => self.time_high,
            reg::ALARM_LOW => self.alarm_next as u32,
            reg::ALARM_HIGH => (self.alarm_next >> 32) as u32,
            reg::IRQ_ENABLED => u32::from(self.irq_enabled),
            reg::ALARM_STATUS => u32::from(self.alarm_running),
            // Write-only and unknown registers read as zero (QEMU logs a guest error).
            _ => 0,
        }
    }

    /// Guest write of the 32-bit `value` to the register at `offset`.
    pub fn write(&mut self, offset: u64, value: u32, now_ns: u64) {
        self.catch_up(now_ns);
        let value = u64::from(value);
        match offset {
            reg::TIME_LOW | reg::TIME_HIGH => {
                let current = self.count(now_ns);
                let new = if offset == reg::TIME_LOW {
                    (current & !0xffff_ffff) | value
                } else {
                    (current & 0xffff_ffff) | (value << 32)
                };
                self.tick_offset = self.tick_offset.wrapping_add(new.wrapping_sub(current));
            }
            reg::ALARM_LOW => {
                self.alarm_next = (self.alarm_next & !0xffff_ffff) | value;
                let ticks = self.count(now_ns);
                if self.alarm_next <= ticks {
                    self.alarm_running = false;
                    self.irq_pending = true;
                } else {
                    self.alarm_at_ns = self.alarm_next.wrapping_sub(self.tick_offset);
                    self.alarm_running = true;
                }
            }
            reg::ALARM_HIGH => {
                self.alarm_next = (self.alarm_next & 0xffff_ffff) | (value << 32);
            }
            reg::IRQ_ENABLED => self.irq_enabled = value & 1 != 0,
            reg::CLEAR_ALARM => self.alarm_running = false,
            reg::CLEAR_INTERRUPT => self.irq_pending = false,
            _ => {}
        }
    }

    /// Level of the RTC's interrupt line (PLIC source [`crate::layout::RTC_IRQ`]) at `now_ns`.
    pub fn irq_level(&self, now_ns: u64) -> bool {
        self.irq_enabled && (self.irq_pending || self.alarm_fired(now_ns))
    }

    /// When the armed alarm fires, in the `now_ns` base (`None` if no alarm is armed).
    pub fn next_alarm_ns(&self) -> Option<u64> {
        self.alarm_running.then_some(self.alarm_at_ns)
    }
}

impl crate::device::Validate for GoldfishRtc {
    const NAME: &'static str = "rtc";
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Device for GoldfishRtc {
    fn name(&self) -> &'static str {
        "rtc"
    }

    fn read(&mut self, offset: u64, size: u8, t: &DeviceTime) -> Option<u64> {
        self.read_sized(offset, size, t.rtc_ns)
    }

    fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        t: &DeviceTime,
        _ram: &mut Ram,
    ) -> Option<()> {
        self.write_sized(offset, size, value, t.rtc_ns)
    }

    fn reset(&mut self) {
        *self = GoldfishRtc::new();
    }

    fn irq_level(&self, t: &DeviceTime) -> bool {
        GoldfishRtc::irq_level(self, t.rtc_ns)
    }

    fn next_deadline_ns(&self, t: &DeviceTime) -> Option<u64> {
        // The alarm is in the RTC's base (host time at start + virtual time).
        self.next_alarm_ns()
            .map(|a| a.wrapping_sub(t.rtc_ns).wrapping_add(t.ns))
    }

    fn fdt_node(&self, base: u64, size: u64, irq: Option<u32>) -> Option<FdtNode> {
        Some(FdtNode::mmio("rtc", "google,goldfish-rtc", base, size, irq))
    }
}

#[cfg(test)]
mod tests {
    use super::reg::*;
    use super::*;

    const NOW: u64 = 0x1234_5678_9abc_def0;

    #[test]
    fn time_low_latches_high() {
        let mut r = GoldfishRtc::new();
        assert_eq!(r.read(TIME_LOW, NOW), 0x9abc_def0);
        // TIME_HIGH returns the latched half even after time moved past a 2^32 boundary.
        assert_eq!(r.read(TIME_HIGH, NOW + (1 << 32)), 0x1234_5678);
        assert_eq!(r.read(TIME_LOW, NOW + (1 << 32)), 0x9abc_def0);
        assert_eq!(r.read(TIME_HIGH, NOW), 0x1234_5679);
    }

    #[test]
    fn time_writes_set_offset() {
        let mut r = GoldfishRtc::new();
        r.write(TIME_HIGH, 0x10, NOW);
        r.write(TIME_LOW, 0x20, NOW);
        assert_eq!(r.read(TIME_LOW, NOW), 0x20);
        assert_eq!(r.read(TIME_HIGH, NOW), 0x10);
        assert_eq!(r.read(TIME_LOW, NOW + 100), 0x20 + 100);
    }

    #[test]
    fn alarm_fires_and_interrupts() {
        let mut r = GoldfishRtc::new();
        r.write(TIME_HIGH, 0, NOW);
        r.write(TIME_LOW, 1000, NOW);
        // Guest time is now NOW-based offset: guest 1000 == host NOW.
        r.write(ALARM_HIGH, 0, NOW);
        r.write(ALARM_LOW, 1500, NOW);
        assert_eq!(r.read(ALARM_STATUS, NOW), 1);
        assert_eq!(r.read(ALARM_LOW, NOW), 1500);
        assert_eq!(r.next_alarm_ns(), Some(NOW + 500));
        // Not enabled: the line stays low even after expiry, status drops.
        assert!(!r.irq_level(NOW + 500));
        r.write(IRQ_ENABLED, 1, NOW + 100);
        assert_eq!(r.read(IRQ_ENABLED, NOW), 1);
        assert!(!r.irq_level(NOW + 499));
        assert!(r.irq_level(NOW + 500));
        assert_eq!(r.read(ALARM_STATUS, NOW + 600), 0);
        assert_eq!(r.next_alarm_ns(), None);
        assert!(r.irq_level(NOW + 600));
        r.write(CLEAR_INTERRUPT, 1, NOW + 700);
        assert!(!r.irq_level(NOW + 700));
    }

    #[test]
    fn alarm_in_the_past_fires_at_once_and_clear_alarm_disarms() {
        let mut r = GoldfishRtc::new();
        r.write(IRQ_ENABLED, 1, NOW);
        r.write(ALARM_HIGH, (NOW >> 32) as u32, NOW);
        r.write(ALARM_LOW, NOW as u32, NOW);
        assert!(r.irq_level(NOW));
        assert_eq!(r.read(ALARM_STATUS, NOW), 0);
        r.write(CLEAR_INTERRUPT, 0, NOW);
        r.write(ALARM_LOW, (NOW as u32).wrapping_add(10), NOW);
        assert_eq!(r.read(ALARM_STATUS, NOW), 1);
        r.write(CLEAR_ALARM, 0, NOW + 5);
        assert_eq!(r.next_alarm_ns(), None);
        assert!(!r.irq_level(NOW + 100));
        // Write-only registers read as zero.
        assert_eq!(r.read(CLEAR_ALARM, NOW), 0);
        assert_eq!(r.read(CLEAR_INTERRUPT, NOW), 0);
    }

    #[test]
    fn time_write_does_not_move_armed_alarm() {
        let mut r = GoldfishRtc::new();
        r.write(ALARM_HIGH, (NOW >> 32) as u32, NOW);
        r.write(ALARM_LOW, (NOW as u32) + 1000, NOW);
        r.write(TIME_LOW, (NOW as u32) + 2000, NOW + 1);
        // QEMU's timer still expires at the host time it was armed for.
        assert_eq!(r.next_alarm_ns(), Some(NOW + 1000));
        assert_eq!(r.read(ALARM_STATUS, NOW + 999), 1);
        assert_eq!(r.read(ALARM_STATUS, NOW + 1000), 0);
    }

    #[test]
    fn access_sizes_and_split_64_bit_accesses() {
        assert!(GoldfishRtc::access_ok(0x10, 4));
        assert!(GoldfishRtc::access_ok(0x10, 8));
        assert!(!GoldfishRtc::access_ok(0x10, 2));
        assert!(!GoldfishRtc::access_ok(0x12, 4));
        let mut r = GoldfishRtc::new();
        assert_eq!(r.read_sized(0, 1, NOW), None);
        // QEMU 7.2: an 8-byte read of TIME_LOW returns the full time (TIME_HIGH latched by the low half).
        assert_eq!(r.read_sized(0, 8, NOW), Some(NOW));
        // An 8-byte alarm write arms with the low half first (old high half 0: already past, fires at once),
        // then sets the high half: QEMU reads back ALARM_HIGH=5, ALARM_LOW=6 and a pending interrupt.
        r.write(IRQ_ENABLED, 1, NOW);
        assert_eq!(r.write_sized(8, 8, 0x5_0000_0006, NOW), Some(()));
        assert_eq!(r.read(ALARM_HIGH, NOW), 5);
        assert_eq!(r.read(ALARM_LOW, NOW), 6);
        assert!(r.irq_level(NOW));
        assert_eq!(r.next_alarm_ns(), None);
    }
}
