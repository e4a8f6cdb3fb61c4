//! SiFive CLINT as QEMU 7.2's `virt` builds it from `hw/intc/riscv_aclint.c`: an MSWI at +0x0000
//! (size 0x4000, 4-byte accesses only) and an MTIMER at +0x4000 (size 0x8000, 4- or 8-byte accesses)
//! with `mtimecmp` at +0x4000 + 8*hart and `mtime` at +0xbff8. The last 0x4000 bytes are unmapped.
//!
//! Time: every `mtime` argument is the *raw* clock-derived tick count (10 MHz virtual time). QEMU keeps a
//! guest-written delta (`time_delta`); here it is [`Clint::mtime_offset`], added with wrapping arithmetic,
//! so the guest-visible `mtime` (and the `time` CSR) is `mtime.wrapping_add(mtime_offset())`.

use serde::{Deserialize, Serialize};

/// Offset of the MTIMER part inside the CLINT.
pub const MTIMER_BASE: u64 = 0x4000;
/// Size of the MTIMER part (`RISCV_ACLINT_DEFAULT_MTIMER_SIZE`).
pub const MTIMER_SIZE: u64 = 0x8000;
/// Offset of `mtimecmp` for hart 0 inside the CLINT.
pub const MTIMECMP: u64 = MTIMER_BASE;
/// Offset of `mtime` inside the CLINT.
pub const MTIME: u64 = MTIMER_BASE + 0x7ff8;

/// Guest-visible state of the CLINT for `harts` harts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clint {
    msip: Vec<bool>,
    mtimecmp: Vec<u64>,
    mtime_offset: u64,
}

impl Clint {
    /// A CLINT in its reset state: no software interrupts, `mtimecmp` = 0, no `mtime` offset.
    pub fn new(harts: usize) -> Self {
        Self {
            msip: vec![false; harts],
            mtimecmp: vec![0; harts],
            mtime_offset: 0,
        }
    }

    /// Number of harts the CLINT serves.
    pub fn harts(&self) -> usize {
        self.msip.len()
    }

    /// Checks QEMU's `.valid` constraints for the region holding `offset`; `None` means an access fault.
    fn check(offset: u64, size: u8) -> Option<()> {
        let size_ok = match offset {
            0..MTIMER_BASE => size == 4,
            o if o < MTIMER_BASE + MTIMER_SIZE => size == 4 || size == 8,
            _ => false,
        };
        // QEMU rejects unaligned accesses to both parts (`valid.unaligned` is false).
        (size_ok && offset & (u64::from(size) - 1) == 0).then_some(())
    }

    /// Guest read of `size` bytes at `offset`; `None` is an access fault. `mtime` is the raw clock value.
    pub fn read(&mut self, offset: u64, size: u8, mtime: u64) -> Option<u64> {
        Self::check(offset, size)?;
        if offset < MTIMER_BASE {
            let hart = (offset >> 2) as usize;
            return Some(self.msip.get(hart).map_or(0, |&b| u64::from(b)));
        }
        let addr = offset - MTIMER_BASE;
        let value = if addr < (self.harts() as u64) << 3 {
            let cmp = self.mtimecmp[(addr >> 3) as usize];
            match (addr & 7, size) {
                (0, 4) => cmp & 0xffff_ffff,
                (0, _) => cmp,
                _ => cmp >> 32,
            }
        } else if offset == MTIME || offset == MTIME + 4 {
            let now = mtime.wrapping_add(self.mtime_offset);
            match (offset == MTIME, size) {
                (true, 4) => now & 0xffff_ffff,
                (true, _) => now,
                (false, _) => now >> 32,
            }
        } else {
            // Unimplemented registers read as zero (QEMU logs LOG_UNIMP).
            0
        };
        Some(value)
    }

    /// Guest write of `size` bytes at `offset`; `None` is an access fault. `mtime` is the raw clock value.
    pub fn write(&mut self, offset: u64, size: u8, value: u64, mtime: u64) -> Option<()> {
        Self::check(offset, size)?;
        if offset < MTIMER_BASE {
            if let Some(m) = self.msip.get_mut((offset >> 2) as usize) {
                *m = value & 1 != 0;
            }
            return Some(());
        }
        let addr = offset - MTIMER_BASE;
        if addr < (self.harts() as u64) << 3 {
            let hart = (addr >> 3) as usize;
            let old = self.mtimecmp[hart];
            self.mtimecmp[hart] = match (addr & 7, size) {
                (0, 4) => (old & !0xffff_ffff) | (value & 0xffff_ffff),
                (0, _) => value,
                _ => (value << 32) | (old & 0xffff_ffff),
            };
        } else if offset == MTIME || offset == MTIME + 4 {
            let now = mtime.wrapping_add(self.mtime_offset);
            let new = match (offset == MTIME, size) {
                (true, 4) => (now & !0xffff_ffff) | (value & 0xffff_ffff),
                (true, _) => value,
                (false, _) => (value << 32) | (now & 0xffff_ffff),
            };
            self.mtime_offset = new.wrapping_sub(mtime);
        }
        Some(())
    }

    /// Machine software interrupt pending bit (MIP.MSIP) of `hart`.
    pub fn msip(&self, hart: usize) -> bool {
        self.msip.get(hart).copied().unwrap_or(false)
    }

    /// Current `mtimecmp` of `hart` (0 for a hart that does not exist).
    pub fn mtimecmp(&self, hart: usize) -> u64 {
        self.mtimecmp.get(hart).copied().unwrap_or(0)
    }

    /// Machine timer interrupt pending bit (MIP.MTIP) of `hart` at raw clock value `mtime`.
    ///
    /// QEMU 10 (like 7.2) shows MTIP set at reset (`mtimecmp` = 0 <= `mtime`), and so does this.
    pub fn mtip(&self, hart: usize, mtime: u64) -> bool {
        self.mtimecmp
            .get(hart)
            .is_some_and(|&cmp| cmp <= mtime.wrapping_add(self.mtime_offset))
    }

    /// Raw clock value at or after `mtime` when `hart`'s MTIP becomes set (`mtime` itself if it already is),
    /// or `None` if the raw clock cannot reach it. Lets the machine end a slice there.
    pub fn mtip_deadline(&self, hart: usize, mtime: u64) -> Option<u64> {
        let cmp = *self.mtimecmp.get(hart)?;
        let now = mtime.wrapping_add(self.mtime_offset);
        if cmp <= now {
            Some(mtime)
        } else {
            mtime.checked_add(cmp - now)
        }
    }

    /// Wrapping amount the guest's `mtime` writes added to the clock-derived time.
    pub fn mtime_offset(&self) -> u64 {
        self.mtime_offset
    }
}

impl crate::device::Validate for Clint {
    const NAME: &'static str = "clint";
    fn validate(&self) -> Result<(), String> {
        if self.msip.is_empty() || self.msip.len() != self.mtimecmp.len() {
            return Err(format!(
                "{} msip bits and {} mtimecmp registers",
                self.msip.len(),
                self.mtimecmp.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msip_is_4_byte_only() {
        let mut c = Clint::new(2);
        assert_eq!(c.write(0x4, 4, 0xffff_ffff, 0), Some(()));
        assert!(c.msip(1));
        assert!(!c.msip(0));
        assert_eq!(c.read(0x4, 4, 0), Some(1));
        assert_eq!(c.read(0x0, 8, 0), None);
        assert_eq!(c.write(0x0, 8, 1, 0), None);
        assert_eq!(c.read(0x0, 1, 0), None);
        assert_eq!(c.read(0x2, 4, 0), None);
        c.write(0x4, 4, 2, 0);
        assert!(!c.msip(1));
        // Harts that do not exist read as zero and ignore writes.
        assert_eq!(c.write(0x8, 4, 1, 0), Some(()));
        assert_eq!(c.read(0x8, 4, 0), Some(0));
        assert_eq!(c.read(0x3ffc, 4, 0), Some(0));
    }

    #[test]
    fn mtimecmp_halves_and_full() {
        let mut c = Clint::new(2);
        c.write(0x4008, 8, 0x1122_3344_5566_7788, 0);
        assert_eq!(c.mtimecmp(1), 0x1122_3344_5566_7788);
        assert_eq!(c.read(0x4008, 8, 0), Some(0x1122_3344_5566_7788));
        assert_eq!(c.read(0x4008, 4, 0), Some(0x5566_7788));
        assert_eq!(c.read(0x400c, 4, 0), Some(0x1122_3344));
        c.write(0x4008, 4, 0xaaaa_bbbb_cccc_dddd, 0);
        assert_eq!(c.mtimecmp(1), 0x1122_3344_cccc_dddd);
        c.write(0x400c, 4, 0x0000_0000_9999_0000, 0);
        assert_eq!(c.mtimecmp(1), 0x9999_0000_cccc_dddd);
        assert_eq!(c.mtimecmp(0), 0);
        // Unaligned 8-byte access and 1/2-byte accesses fault.
        assert_eq!(c.read(0x400c, 8, 0), None);
        assert_eq!(c.write(0x4008, 2, 0, 0), None);
        // Beyond the harts and between registers: reads zero.
        assert_eq!(c.read(0x4010, 8, 0), Some(0));
        assert_eq!(c.read(0xbff0, 8, 0), Some(0));
        // The top 16 KiB of the CLINT is unmapped.
        assert_eq!(c.read(0xc000, 4, 0), None);
    }

    #[test]
    fn mtime_read_write_offset() {
        let mut c = Clint::new(1);
        let raw = 0x0000_0001_2345_6789;
        assert_eq!(c.read(MTIME, 8, raw), Some(raw));
        assert_eq!(c.read(MTIME, 4, raw), Some(0x2345_6789));
        assert_eq!(c.read(MTIME + 4, 4, raw), Some(1));
        c.write(MTIME, 8, 0, raw);
        assert_eq!(c.read(MTIME, 8, raw + 5), Some(5));
        assert_eq!(c.mtime_offset(), raw.wrapping_neg());
        // Low half write keeps the guest-visible high half.
        c.write(MTIME + 4, 4, 7, raw);
        assert_eq!(c.read(MTIME, 8, raw), Some(0x7_0000_0000));
        c.write(MTIME, 4, 0x10, raw);
        assert_eq!(c.read(MTIME, 8, raw + 1), Some(0x7_0000_0011));
        assert_eq!(c.read(MTIME + 4, 8, raw), None);
    }

    #[test]
    fn mtip_follows_compare() {
        let mut c = Clint::new(1);
        // QEMU 7.2 (checked with a bare-metal guest): MIP.MTIP is set at reset since mtimecmp is 0.
        assert!(c.mtip(0, 0));
        assert_eq!(c.mtip_deadline(0, 1000), Some(1000));
        assert_eq!(c.mtip_deadline(1, 1000), None);
        c.write(MTIMECMP, 8, 2000, 1000);
        assert!(!c.mtip(0, 1999));
        assert!(c.mtip(0, 2000));
        assert_eq!(c.mtip_deadline(0, 1000), Some(2000));
        assert_eq!(c.mtip_deadline(0, 2500), Some(2500));
        // Moving mtime forward by 500 brings the deadline 500 ticks earlier.
        c.write(MTIME, 8, 1500, 1000);
        assert!(c.mtip(0, 1500));
        assert_eq!(c.mtip_deadline(0, 1000), Some(1500));
        c.write(MTIMECMP, 8, u64::MAX, 1000);
        assert!(!c.mtip(0, 1_000_000));
        assert_eq!(c.mtip_deadline(0, 0), Some(u64::MAX - 500));
    }

    #[test]
    fn qemu_oracle_sequence() {
        // Known answers from QEMU 7.2 `virt`: all-ones mtimecmp clears MTIP, a low-half write of 0 keeps the
        // high half; an mtime low-half write keeps the guest-visible (not the raw) high half.
        let mut c = Clint::new(1);
        c.write(MTIMECMP, 8, u64::MAX, 50);
        assert!(!c.mtip(0, 50));
        c.write(MTIME, 8, 0x1_0000_0000, 50);
        c.write(MTIME, 4, 5, 60);
        assert_eq!(c.read(MTIME + 4, 4, 70), Some(1));
        c.write(MTIMECMP, 4, 0, 80);
        assert_eq!(c.mtimecmp(0), 0xffff_ffff_0000_0000);
        assert!(!c.mtip(0, 80));
    }
}
