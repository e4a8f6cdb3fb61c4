//! SiFive PLIC as QEMU 7.2's `virt` configures `hw/intc/sifive_plic.c`: 96 sources (0 unused), 3 priority bits,
//! two contexts per hart (even = M-mode, odd = S-mode), 4-byte accesses only.
//!
//! The gateway is level-triggered: a source is pending while its line is high and it is not claimed, and it
//! pends again on completion if the line is still high. (QEMU re-pends only when the device re-raises its
//! line; every QEMU device does that on its next register access, so drivers see the same thing. The one
//! visible difference: QEMU's pending word can show a claimed source whose device re-raised its line.)

use serde::{Deserialize, Serialize};

use crate::layout::{PLIC_NUM_PRIORITIES, PLIC_NUM_SOURCES, VIRT_PLIC_SIZE};

/// Offset of the source priority registers (source `n` at `4 * n`).
pub const PRIORITY_BASE: u64 = 0x0;
/// Offset of the pending bit words.
pub const PENDING_BASE: u64 = 0x1000;
/// Offset of the enable words of context 0.
pub const ENABLE_BASE: u64 = 0x2000;
/// Distance between the enable words of consecutive contexts.
pub const ENABLE_STRIDE: u64 = 0x80;
/// Offset of the threshold register of context 0 (claim/complete follows at +4).
pub const CONTEXT_BASE: u64 = 0x20_0000;
/// Distance between the threshold registers of consecutive contexts.
pub const CONTEXT_STRIDE: u64 = 0x1000;

const NUM_SOURCES: usize = PLIC_NUM_SOURCES as usize;
const WORDS: usize = NUM_SOURCES.div_ceil(32);

/// Guest-visible state of the PLIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plic {
    priority: Vec<u32>,
    threshold: Vec<u32>,
    pending: [u32; WORDS],
    claimed: [u32; WORDS],
    /// Input line levels, as last given to [`Plic::set_level`].
    level: [u32; WORDS],
    /// `WORDS` enable words per context.
    enable: Vec<u32>,
}

fn bit(words: &[u32; WORDS], irq: usize) -> bool {
    words[irq >> 5] & (1 << (irq & 31)) != 0
}

fn set_bit(words: &mut [u32; WORDS], irq: usize, on: bool) {
    let mask = 1u32 << (irq & 31);
    if on {
        words[irq >> 5] |= mask;
    } else {
        words[irq >> 5] &= !mask;
    }
}

impl Plic {
    /// A PLIC in its reset state for `harts` harts (2 contexts each): everything zero.
    pub fn new(harts: usize) -> Self {
        let contexts = harts * 2;
        Self {
            priority: vec![0; NUM_SOURCES],
            threshold: vec![0; contexts],
            pending: [0; WORDS],
            claimed: [0; WORDS],
            level: [0; WORDS],
            enable: vec![0; contexts * WORDS],
        }
    }

    /// Number of contexts (two per hart).
    pub fn contexts(&self) -> usize {
        self.threshold.len()
    }

    /// Drive interrupt line `source` (1..=95) to `level`; other source numbers are ignored.
    pub fn set_level(&mut self, source: u32, level: bool) {
        let irq = source as usize;
        if irq == 0 || irq >= NUM_SOURCES {
            return;
        }
        set_bit(&mut self.level, irq, level);
        set_bit(&mut self.pending, irq, level && !bit(&self.claimed, irq));
    }

    /// The source `context` would claim now: highest priority above the threshold, lowest number on ties; 0 if none.
    fn best(&self, context: usize) -> u32 {
        let Some(&threshold) = self.threshold.get(context) else {
            return 0;
        };
        let enable = &self.enable[context * WORDS..(context + 1) * WORDS];
        let mut max_irq = 0;
        let mut max_prio = threshold;
        for (w, &en) in enable.iter().enumerate() {
            let mut candidates = self.pending[w] & !self.claimed[w] & en;
            while candidates != 0 {
                let j = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let irq = (w << 5) + j;
                let prio = self.priority[irq];
                if prio > max_prio {
                    max_irq = irq as u32;
                    max_prio = prio;
                }
            }
        }
        max_irq
    }

    /// External interrupt line of `context` (MEIP for even, SEIP for odd contexts).
    pub fn eip(&self, context: usize) -> bool {
        self.best(context) != 0
    }

    /// Guest read of `size` bytes at `offset`; `None` is an access fault (any size but 4).
    ///
    /// Like every device here it expects naturally aligned accesses: QEMU's softmmu splits a misaligned
    /// MMIO load into two aligned ones of the same size, and a misaligned store into smaller ones, before
    /// the device sees them; that splitting is the machine's job. Misaligned offsets give `None`.
    pub fn read(&mut self, offset: u64, size: u8) -> Option<u64> {
        if size != 4 || offset & 3 != 0 || offset >= VIRT_PLIC_SIZE {
            return None;
        }
        let contexts = self.contexts() as u64;
        let value = if offset < PRIORITY_BASE + 4 * NUM_SOURCES as u64 {
            self.priority[((offset - PRIORITY_BASE) >> 2) as usize]
        } else if (PENDING_BASE..PENDING_BASE + NUM_SOURCES as u64 / 8).contains(&offset) {
            self.pending[((offset - PENDING_BASE) >> 2) as usize]
        } else if (ENABLE_BASE..ENABLE_BASE + contexts * ENABLE_STRIDE).contains(&offset) {
            let ctx = ((offset - ENABLE_BASE) / ENABLE_STRIDE) as usize;
            let word = ((offset & (ENABLE_STRIDE - 1)) >> 2) as usize;
            if word < WORDS {
                self.enable[ctx * WORDS + word]
            } else {
                0
            }
        } else if (CONTEXT_BASE..CONTEXT_BASE + contexts * CONTEXT_STRIDE).contains(&offset) {
            let ctx = ((offset - CONTEXT_BASE) / CONTEXT_STRIDE) as usize;
            match offset & (CONTEXT_STRIDE - 1) {
                0 => self.threshold[ctx],
                4 => {
                    let irq = self.best(ctx);
                    if irq != 0 {
                        set_bit(&mut self.pending, irq as usize, false);
                        set_bit(&mut self.claimed, irq as usize, true);
                    }
                    irq
                }
                _ => 0,
            }
        } else {
            // QEMU logs a guest error and reads zero.
            0
        };
        Some(u64::from(value))
    }

    /// Guest write of `size` bytes at `offset`; `None` is an access fault (any size but 4; misaligned).
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Option<()> {
        if size != 4 || offset & 3 != 0 || offset >= VIRT_PLIC_SIZE {
            return None;
        }
        let value = value as u32;
        let contexts = self.contexts() as u64;
        if offset < PRIORITY_BASE + 4 * NUM_SOURCES as u64 {
            // Priority bits are WARL: keep the implemented ones. Source 0 stays 0 (QEMU 7.2 reads it as 0).
            let irq = ((offset - PRIORITY_BASE) >> 2) as usize;
            if irq != 0 {
                self.priority[irq] = value % (PLIC_NUM_PRIORITIES + 1);
            }
        } else if (ENABLE_BASE..ENABLE_BASE + contexts * ENABLE_STRIDE).contains(&offset) {
            let ctx = ((offset - ENABLE_BASE) / ENABLE_STRIDE) as usize;
            let word = ((offset & (ENABLE_STRIDE - 1)) >> 2) as usize;
            if word < WORDS {
                self.enable[ctx * WORDS + word] = value;
            }
        } else if (CONTEXT_BASE..CONTEXT_BASE + contexts * CONTEXT_STRIDE).contains(&offset) {
            let ctx = ((offset - CONTEXT_BASE) / CONTEXT_STRIDE) as usize;
            match offset & (CONTEXT_STRIDE - 1) {
                0 => self.threshold[ctx] = value % (PLIC_NUM_PRIORITIES + 1),
                4 => {
                    // Like QEMU, completion does not check that this context claimed the source.
                    let irq = value as usize;
                    if irq < NUM_SOURCES {
                        set_bit(&mut self.claimed, irq, false);
                        if bit(&self.level, irq) {
                            set_bit(&mut self.pending, irq, true);
                        }
                    }
                }
                _ => {}
            }
        }
        // Pending bits are read-only; other offsets are ignored (QEMU logs a guest error).
        Some(())
    }
}

impl crate::device::Validate for Plic {
    const NAME: &'static str = "plic";
    fn validate(&self) -> Result<(), String> {
        let contexts = self.threshold.len();
        if self.priority.len() != NUM_SOURCES {
            return Err(format!(
                "{} priorities for {NUM_SOURCES} sources",
                self.priority.len()
            ));
        }
        if contexts == 0 || contexts & 1 != 0 || self.enable.len() != contexts * WORDS {
            return Err(format!(
                "{contexts} contexts with {} enable words",
                self.enable.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M0: usize = 0;
    const S0: usize = 1;

    fn w(p: &mut Plic, off: u64, v: u32) {
        assert_eq!(p.write(off, 4, u64::from(v)), Some(()));
    }

    fn r(p: &mut Plic, off: u64) -> u32 {
        p.read(off, 4).unwrap() as u32
    }

    fn claim_reg(ctx: u64) -> u64 {
        CONTEXT_BASE + CONTEXT_STRIDE * ctx + 4
    }

    #[test]
    fn priority_is_warl_3_bits() {
        let mut p = Plic::new(1);
        w(&mut p, 4 * 10, 0xffff_ffff);
        assert_eq!(r(&mut p, 4 * 10), 7);
        w(&mut p, 4 * 10, 9);
        assert_eq!(r(&mut p, 4 * 10), 1);
        w(&mut p, 4 * 95, 3);
        assert_eq!(r(&mut p, 4 * 95), 3);
        // Past the last source: reads zero, writes ignored.
        w(&mut p, 4 * 96, 3);
        assert_eq!(r(&mut p, 4 * 96), 0);
        w(&mut p, CONTEXT_BASE, 0xf);
        assert_eq!(r(&mut p, CONTEXT_BASE), 7);
        // Source 0 has no priority register in QEMU 7.2 (reads 0 after a write of 5).
        w(&mut p, 0, 5);
        assert_eq!(r(&mut p, 0), 0);
        // Enable bit 0 is writable, and a fourth pending word reads 0.
        w(&mut p, ENABLE_BASE, 0xffff_ffff);
        assert_eq!(r(&mut p, ENABLE_BASE), 0xffff_ffff);
        assert_eq!(r(&mut p, PENDING_BASE + 12), 0);
    }

    #[test]
    fn only_aligned_word_accesses() {
        let mut p = Plic::new(1);
        assert_eq!(p.read(0x4, 8), None);
        assert_eq!(p.read(0x4, 1), None);
        assert_eq!(p.read(0x6, 4), None);
        assert_eq!(p.write(0x4, 2, 1), None);
        assert_eq!(p.read(VIRT_PLIC_SIZE, 4), None);
        // Contexts beyond the harts read as zero.
        assert_eq!(p.read(claim_reg(2), 4), Some(0));
    }

    #[test]
    fn claim_complete_and_level_repend() {
        let mut p = Plic::new(1);
        w(&mut p, 4 * 10, 1);
        p.set_level(10, true);
        assert_eq!(r(&mut p, PENDING_BASE), 1 << 10);
        // Pending but not enabled: no interrupt.
        assert!(!p.eip(S0));
        w(&mut p, ENABLE_BASE + ENABLE_STRIDE, 1 << 10);
        assert_eq!(r(&mut p, ENABLE_BASE + ENABLE_STRIDE), 1 << 10);
        assert!(p.eip(S0));
        assert!(!p.eip(M0));
        assert_eq!(r(&mut p, claim_reg(1)), 10);
        assert_eq!(r(&mut p, PENDING_BASE), 0);
        assert!(!p.eip(S0));
        // Claimed: a second claim finds nothing.
        assert_eq!(r(&mut p, claim_reg(1)), 0);
        // Line still high at completion: pends again.
        w(&mut p, claim_reg(1), 10);
        assert!(p.eip(S0));
        assert_eq!(r(&mut p, claim_reg(1)), 10);
        // Line dropped while claimed: completion leaves it idle.
        p.set_level(10, false);
        w(&mut p, claim_reg(1), 10);
        assert!(!p.eip(S0));
        assert_eq!(r(&mut p, PENDING_BASE), 0);
        // Dropping the line while pending withdraws the request.
        p.set_level(10, true);
        assert!(p.eip(S0));
        p.set_level(10, false);
        assert!(!p.eip(S0));
    }

    #[test]
    fn threshold_and_priority_order() {
        let mut p = Plic::new(1);
        w(&mut p, ENABLE_BASE, (1 << 1) | (1 << 5) | (1 << 10));
        w(&mut p, 4, 2);
        w(&mut p, 4 * 5, 6);
        w(&mut p, 4 * 10, 6);
        p.set_level(1, true);
        p.set_level(5, true);
        p.set_level(10, true);
        // Priority 0 never interrupts; threshold masks priorities <= it.
        w(&mut p, CONTEXT_BASE, 6);
        assert!(!p.eip(M0));
        assert_eq!(r(&mut p, claim_reg(0)), 0);
        w(&mut p, CONTEXT_BASE, 1);
        assert!(p.eip(M0));
        // Ties go to the lowest source number.
        assert_eq!(r(&mut p, claim_reg(0)), 5);
        assert_eq!(r(&mut p, claim_reg(0)), 10);
        assert_eq!(r(&mut p, claim_reg(0)), 1);
        assert_eq!(r(&mut p, claim_reg(0)), 0);
        w(&mut p, 4, 0);
        w(&mut p, claim_reg(0), 1);
        assert!(!p.eip(M0));
        assert_eq!(r(&mut p, PENDING_BASE), 1 << 1);
    }

    #[test]
    fn pending_words_and_sources_above_31() {
        let mut p = Plic::new(2);
        p.set_level(95, true);
        p.set_level(33, true);
        p.set_level(0, true);
        p.set_level(96, true);
        assert_eq!(r(&mut p, PENDING_BASE), 0);
        assert_eq!(r(&mut p, PENDING_BASE + 4), 1 << 1);
        assert_eq!(r(&mut p, PENDING_BASE + 8), 1 << 31);
        // Pending is read-only.
        w(&mut p, PENDING_BASE + 8, 0);
        assert_eq!(r(&mut p, PENDING_BASE + 8), 1 << 31);
        // Hart 1's S context is context 3.
        w(&mut p, 4 * 95, 1);
        w(&mut p, ENABLE_BASE + 3 * ENABLE_STRIDE + 8, 1 << 31);
        assert!(p.eip(3));
        assert!(!p.eip(1));
        assert_eq!(r(&mut p, claim_reg(3)), 95);
        assert!(!p.eip(3));
    }

    #[test]
    fn serde_round_trip() {
        let mut p = Plic::new(1);
        w(&mut p, 4 * 3, 5);
        w(&mut p, ENABLE_BASE, 1 << 3);
        p.set_level(3, true);
        let json = serde_json::to_string(&p).unwrap();
        let mut back: Plic = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(r(&mut back, claim_reg(0)), 3);
    }
}
