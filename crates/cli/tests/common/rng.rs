//! The seedable random number generator of the random differential tests (`random_programs`,
//! `random_system`): SplitMix64, tiny and identical on every platform (no extra crates needed).

/// SplitMix64 state.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A random element of `v`.
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    /// True with the given probability in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// A 64-bit value biased towards the corner cases that break emulators.
    pub fn interesting(&mut self) -> u64 {
        const SPECIAL: [u64; 12] = [
            0,
            1,
            u64::MAX,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_ffff,
            0xffff_ffff_8000_0000,
            63,
            31,
            0x8000_0000_0000_0001,
        ];
        match self.below(4) {
            0 => *self.pick(&SPECIAL),
            1 => self.next() & 0xffff,
            2 => (self.next() as i32) as i64 as u64,
            _ => self.next(),
        }
    }
    /// A double or a NaN-boxed single, biased towards special values.
    pub fn fp_bits(&mut self, single: bool) -> u64 {
        const SPECIAL_D: [u64; 10] = [
            0,
            0x8000_0000_0000_0000,
            0x3ff0_0000_0000_0000,
            0x7ff0_0000_0000_0000,
            0xfff0_0000_0000_0000,
            0x7ff8_0000_0000_0000,
            0x7ff0_0000_0000_0001,
            0x0000_0000_0000_0001,
            0x41e0_0000_0000_0000,
            0xc3e0_0000_0000_0000,
        ];
        const SPECIAL_S: [u32; 10] = [
            0,
            0x8000_0000,
            0x3f80_0000,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0x7f80_0001,
            1,
            0x4f00_0000,
            0xdf00_0000,
        ];
        let boxed = |v: u64| 0xffff_ffff_0000_0000 | (v & 0xffff_ffff);
        match (single, self.below(5)) {
            (false, 0) => *self.pick(&SPECIAL_D),
            (true, 0) => boxed(u64::from(*self.pick(&SPECIAL_S))),
            // Moderate magnitudes so arithmetic produces ordinary, inexact results.
            (false, 1 | 2) => ((0x3f0u64 + self.below(0x20)) << 52) | (self.next() >> 12),
            (true, 1 | 2) => boxed(((0x70 + self.below(0x20)) << 23) | (self.next() & 0x7f_ffff)),
            (false, _) => self.next(),
            (true, 3) => boxed(self.next()),
            // Occasionally a value that is not properly NaN-boxed.
            (true, _) => self.next(),
        }
    }
}
