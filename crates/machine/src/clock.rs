//! Virtual time derived from the instruction count.
//!
//! `ns = (icount << shift) + warp_bias_ns`: each retired instruction takes 2^shift ns (QEMU's
//! `-icount shift=N`), and idle warps (recorded, in record mode) add to the bias. The CLINT's
//! `mtime` is that time at its 10 MHz timebase, so timer interrupts fall at exact instruction
//! counts without being logged.

use rewind_devices::layout::CLINT_TIMEBASE_FREQ;

/// Nanoseconds per `mtime` tick.
pub const NS_PER_TICK: u64 = 1_000_000_000 / CLINT_TIMEBASE_FREQ;

/// Largest accepted icount shift (as QEMU's `MAX_ICOUNT_SHIFT`).
pub const MAX_SHIFT: u32 = 10;

/// The machine's virtual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VirtualClock {
    shift: u32,
    warp_bias_ns: u64,
}

impl VirtualClock {
    /// A clock at time 0 where each instruction takes `2^shift` ns (`shift` is clamped to
    /// [`MAX_SHIFT`]).
    pub fn new(shift: u32) -> Self {
        VirtualClock {
            shift: shift.min(MAX_SHIFT),
            warp_bias_ns: 0,
        }
    }

    /// The icount shift.
    pub fn shift(&self) -> u32 {
        self.shift
    }

    /// Total of all idle warps so far.
    pub fn warp_bias_ns(&self) -> u64 {
        self.warp_bias_ns
    }

    /// Virtual ns at instruction count `icount`.
    #[inline]
    pub fn ns(&self, icount: u64) -> u64 {
        (icount << self.shift).wrapping_add(self.warp_bias_ns)
    }

    /// Raw `mtime` (10 MHz ticks, before the CLINT's guest-written offset) at `icount`.
    #[inline]
    pub fn mtime(&self, icount: u64) -> u64 {
        self.ns(icount) / NS_PER_TICK
    }

    /// The first instruction count at which virtual time reaches `ns` (saturating).
    pub fn icount_at_ns(&self, ns: u64) -> u64 {
        let Some(rest) = ns.checked_sub(self.warp_bias_ns) else {
            return 0;
        };
        let per = 1u64 << self.shift;
        rest.div_ceil(per)
    }

    /// Virtual ns at which raw `mtime` reaches `mtime` (saturating).
    pub fn ns_at_mtime(&self, mtime: u64) -> u64 {
        mtime.saturating_mul(NS_PER_TICK)
    }

    /// The first instruction count at which raw `mtime` reaches `mtime` (saturating).
    pub fn icount_at_mtime(&self, mtime: u64) -> u64 {
        self.icount_at_ns(self.ns_at_mtime(mtime))
    }

    /// Move virtual time forward by `ns` without retiring instructions (idle warp).
    pub fn warp(&mut self, ns: u64) {
        self.warp_bias_ns = self.warp_bias_ns.saturating_add(ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_zero_is_one_ns_per_instruction() {
        let c = VirtualClock::new(0);
        assert_eq!(c.ns(1234), 1234);
        assert_eq!(c.mtime(99), 0);
        assert_eq!(c.mtime(100), 1);
        assert_eq!(c.mtime(1_000_000_000), 10_000_000);
    }

    #[test]
    fn inverse_gives_first_icount_reaching_mtime() {
        for shift in [0u32, 1, 3, 7, 10] {
            let mut c = VirtualClock::new(shift);
            c.warp(12_345);
            for target in [0u64, 1, 2, 123, 124, 10_000, 987_654_321] {
                let i = c.icount_at_mtime(target);
                assert!(c.mtime(i) >= target, "shift {shift} target {target}");
                if i > 0 {
                    assert!(
                        c.mtime(i - 1) < target,
                        "shift {shift} target {target} not minimal"
                    );
                }
            }
        }
    }

    #[test]
    fn warp_moves_time_not_instructions() {
        let mut c = VirtualClock::new(2);
        assert_eq!(c.ns(10), 40);
        c.warp(1000);
        assert_eq!(c.ns(10), 1040);
        assert_eq!(c.warp_bias_ns(), 1000);
        // A deadline already passed thanks to the warp is reached at icount 0.
        assert_eq!(c.icount_at_ns(500), 0);
        assert_eq!(c.icount_at_ns(1001), 1);
        assert_eq!(c.icount_at_mtime(u64::MAX), (u64::MAX - 1000).div_ceil(4));
    }
}
