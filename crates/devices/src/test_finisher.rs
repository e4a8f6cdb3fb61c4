//! SiFive test finisher (`sifive,test0`/`syscon`) as QEMU 7.2's `hw/misc/sifive_test.c`: the guest's
//! poweroff, failure-exit and reboot switch.

use serde::{Deserialize, Serialize};

/// Status value (low 16 bits) requesting a failure exit; the exit code is in bits 16..32.
pub const FINISHER_FAIL: u32 = 0x3333;
/// Status value requesting a successful exit (poweroff).
pub const FINISHER_PASS: u32 = 0x5555;
/// Status value requesting a reset (reboot).
pub const FINISHER_RESET: u32 = 0x7777;

/// What the guest asked for through the finisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinisherAction {
    /// Power off with exit status 0.
    Pass,
    /// Power off with this exit status.
    Fail(u16),
    /// Reset the machine.
    Reset,
}

/// The finisher device; it has no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SifiveTest;

impl SifiveTest {
    /// The finisher.
    pub fn new() -> Self {
        Self
    }

    /// Whether QEMU accepts a naturally aligned access of `size` bytes (2 or 4; 1 and 8 are access faults).
    pub fn access_ok(offset: u64, size: u8) -> bool {
        (size == 2 || size == 4) && offset & (u64::from(size) - 1) == 0
    }

    /// Guest read: always 0.
    pub fn read(&mut self, _offset: u64) -> u32 {
        0
    }

    /// Guest write of `value` at `offset`; returns the requested action, if any. Writes elsewhere than
    /// offset 0 and unknown status values do nothing (QEMU logs a guest error for them).
    pub fn write(&mut self, offset: u64, value: u32) -> Option<FinisherAction> {
        if offset != 0 {
            return None;
        }
        let code = (value >> 16) as u16;
        match value & 0xffff {
            FINISHER_FAIL => Some(FinisherAction::Fail(code)),
            FINISHER_PASS => Some(FinisherAction::Pass),
            FINISHER_RESET => Some(FinisherAction::Reset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finisher_codes() {
        let mut t = SifiveTest::new();
        assert_eq!(t.write(0, 0x5555), Some(FinisherAction::Pass));
        // The code field is ignored for pass and reset, as in QEMU.
        assert_eq!(t.write(0, 0x0001_5555), Some(FinisherAction::Pass));
        assert_eq!(t.write(0, 0x0007_3333), Some(FinisherAction::Fail(7)));
        assert_eq!(t.write(0, 0xffff_3333), Some(FinisherAction::Fail(0xffff)));
        assert_eq!(t.write(0, 0x3333), Some(FinisherAction::Fail(0)));
        assert_eq!(t.write(0, 0x7777), Some(FinisherAction::Reset));
        assert_eq!(t.write(0, 0x1234), None);
        assert_eq!(t.write(4, 0x5555), None);
        assert_eq!(t.read(0), 0);
    }

    #[test]
    fn access_sizes() {
        assert!(SifiveTest::access_ok(0, 4));
        assert!(SifiveTest::access_ok(0, 2));
        assert!(!SifiveTest::access_ok(0, 1));
        assert!(!SifiveTest::access_ok(0, 8));
    }
}
