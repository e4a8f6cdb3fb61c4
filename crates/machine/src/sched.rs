//! The hart scheduler: several harts take turns on the execution thread, each for a quantum of
//! instructions or until it waits in `wfi`. Which hart runs when follows from guest state and
//! this state alone (a turn ends after a count of *retired* instructions, never at a host
//! event), so nothing about the interleaving is logged: a replay derives the same one.
//!
//! Chaos mode (`--chaos SEED`) draws each turn's length and the next hart from a PRNG seeded
//! from the trace header, and now and then starves one hart for a long stretch: interleavings a
//! fixed quantum never produces, still exactly reproducible.

use serde::{Deserialize, Serialize};

/// Default quantum: instructions a hart runs before the next one takes its turn.
///
/// A turn switch costs one checkpoint: four switches per 10,000 instructions (three parked
/// harts) cost about 3 % on the bench guest, so a switch costs under 1 % at this quantum,
/// while a hart answers an IPI within `harts × 10,000` instructions (40 µs of virtual time
/// with 4 harts at shift 0). With one hart there is no switch and the quantum costs nothing.
pub const DEFAULT_QUANTUM: u64 = 10_000;

/// Largest accepted quantum.
pub const MAX_QUANTUM: u64 = 1 << 30;

/// Most harts a machine has (QEMU `virt`'s limit is higher; 8 keeps the PLIC small).
pub const MAX_HARTS: u32 = 8;

/// Shortest chaos turn: an LR/SC sequence (at most 16 instructions by the spec's forward
/// progress rule) always fits into a turn, so chaos cannot livelock a correct guest.
pub const CHAOS_MIN_TURN: u64 = 64;

/// How the scheduler picks turns (fixed for a machine; from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedConfig {
    /// Number of harts.
    pub harts: usize,
    /// Instructions per turn (the mean turn in chaos mode).
    pub quantum: u64,
    /// Chaos seed, if the turns are drawn at random.
    pub chaos: Option<u64>,
}

/// The scheduler's state: part of every snapshot and of the state hash with several harts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedState {
    /// The hart whose turn it is.
    pub current: u32,
    /// Instructions left in its turn.
    pub left: u64,
    /// Harts found waiting in `wfi` (bit per hart) since the last retired instruction; all
    /// set: the machine is idle.
    pub waiting: u32,
    /// Chaos PRNG state.
    pub rng: u64,
    /// Chaos: a hart not given a turn until the total instruction count reaches the bound
    /// (unless every other hart waits).
    pub starved: Option<(u32, u64)>,
}

impl SchedState {
    /// The state at power-on: hart 0's turn.
    pub fn new(cfg: &SchedConfig) -> Self {
        let mut s = SchedState {
            current: 0,
            left: cfg.quantum,
            waiting: 0,
            rng: cfg.chaos.unwrap_or(0) ^ 0x6a09_e667_f3bc_c909,
            starved: None,
        };
        if cfg.chaos.is_some() {
            s.left = s.turn_length(cfg);
        }
        s
    }

    /// Check a state read from a snapshot against the machine it is put into.
    pub fn validate(&self, cfg: &SchedConfig) -> Result<(), String> {
        if self.current as usize >= cfg.harts {
            return Err(format!(
                "hart {} runs, the machine has {}",
                self.current, cfg.harts
            ));
        }
        if let Some((h, _)) = self.starved {
            if h as usize >= cfg.harts {
                return Err(format!(
                    "hart {h} is starved, the machine has {}",
                    cfg.harts
                ));
            }
        }
        if cfg.harts < 32 && self.waiting >> cfg.harts != 0 {
            return Err(format!(
                "waiting mask {:#x} names missing harts",
                self.waiting
            ));
        }
        Ok(())
    }

    /// The bit mask of all harts.
    pub fn all(cfg: &SchedConfig) -> u32 {
        if cfg.harts >= 32 {
            u32::MAX
        } else {
            (1u32 << cfg.harts) - 1
        }
    }

    /// splitmix64: small, fast, and its whole state is one word in the snapshot.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A chaos turn: mostly short and varied, sometimes very short, sometimes long.
    fn turn_length(&mut self, cfg: &SchedConfig) -> u64 {
        let q = cfg.quantum.max(CHAOS_MIN_TURN);
        let r = self.next();
        let len = match r % 8 {
            // Short turns put switches inside critical sections.
            0 | 1 => CHAOS_MIN_TURN + (r >> 8) % (q / 8 + 1),
            // Long turns let one hart get far ahead.
            2 => q + (r >> 8) % (4 * q),
            _ => CHAOS_MIN_TURN + (r >> 8) % (2 * q),
        };
        len.max(CHAOS_MIN_TURN)
    }

    /// End the current turn at total instruction count `icount` and pick the next hart.
    pub fn switch(&mut self, cfg: &SchedConfig, icount: u64) {
        let n = cfg.harts as u32;
        if cfg.chaos.is_none() {
            self.current = (self.current + 1) % n;
            self.left = cfg.quantum;
            return;
        }
        if matches!(self.starved, Some((_, until)) if icount >= until) {
            self.starved = None;
        }
        // Now and then starve one hart for a long stretch (a preempted vCPU, a busy host).
        if self.starved.is_none() && n > 1 && self.next().is_multiple_of(64) {
            let victim = (self.next() % u64::from(n)) as u32;
            let stretch = cfg.quantum.max(CHAOS_MIN_TURN) * (8 + self.next() % 56);
            self.starved = Some((victim, icount.saturating_add(stretch)));
        }
        let all = Self::all(cfg);
        let starved_bit = self.starved.map_or(0, |(h, _)| 1u32 << h);
        // Prefer harts not known to wait and not starved; fall back to any other hart.
        let mut candidates = all & !self.waiting & !starved_bit & !(1 << self.current);
        if candidates == 0 {
            candidates = all & !(1 << self.current);
        }
        if candidates == 0 {
            candidates = all;
        }
        let k = (self.next() % u64::from(candidates.count_ones())) as u32;
        let mut c = candidates;
        for _ in 0..k {
            c &= c - 1;
        }
        self.current = c.trailing_zeros();
        self.left = self.turn_length(cfg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(harts: usize, chaos: Option<u64>) -> SchedConfig {
        SchedConfig {
            harts,
            quantum: 1000,
            chaos,
        }
    }

    #[test]
    fn round_robin_takes_turns_in_order() {
        let c = cfg(3, None);
        let mut s = SchedState::new(&c);
        let mut order = vec![s.current];
        for i in 0..5 {
            s.switch(&c, i * 1000);
            order.push(s.current);
            assert_eq!(s.left, 1000);
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn chaos_is_reproducible_and_seed_dependent() {
        let run = |seed| {
            let c = cfg(4, Some(seed));
            let mut s = SchedState::new(&c);
            let mut icount = 0;
            (0..200)
                .map(|_| {
                    icount += s.left;
                    s.switch(&c, icount);
                    (s.current, s.left)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let turns = run(7);
        assert!(turns.iter().all(|&(h, l)| h < 4 && l >= CHAOS_MIN_TURN));
        let lens: std::collections::BTreeSet<u64> = turns.iter().map(|&(_, l)| l).collect();
        assert!(lens.len() > 50, "turn lengths vary");
    }

    #[test]
    fn chaos_never_picks_the_same_hart_while_another_can_run() {
        let c = cfg(2, Some(3));
        let mut s = SchedState::new(&c);
        for i in 0..100 {
            let before = s.current;
            s.switch(&c, i * 100);
            assert_ne!(before, s.current);
        }
    }

    #[test]
    fn validate_refuses_states_of_other_machines() {
        let c = cfg(2, None);
        let mut s = SchedState::new(&c);
        assert!(s.validate(&c).is_ok());
        s.current = 2;
        assert!(s.validate(&c).unwrap_err().contains("hart 2"));
        s.current = 0;
        s.waiting = 0b100;
        assert!(s.validate(&c).is_err());
    }
}
