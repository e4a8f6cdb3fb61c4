//! Helpers shared by the machine crate's integration tests.

use rewind_machine::Machine;

/// True when `image` holds exactly the bytes of the machine's RAM.
pub fn image_matches_ram(image: &rewind_cpu::ram::RamImage, m: &Machine) -> bool {
    let ram = m.ram().as_slice();
    image.size() == ram.len() as u64
        && image
            .pages()
            .iter()
            .zip(ram.chunks(4096))
            .all(|(p, r)| match p {
                Some(p) => p[..] == *r,
                None => r.iter().all(|&b| b == 0),
            })
}

/// Deterministic pseudo-random numbers (xorshift64*), seeded per test.
pub struct Rng(pub u64);
impl Rng {
    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}
