//! State checks: hashes (and every few checks the registers) of the machine state, logged in
//! record and compared in replay, so a silent divergence is caught at the earliest check.

use rewind_log::Event;

use crate::{Boundary, Log, RegisterDiff, ReplayStop};

/// How often record mode checks the machine state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSettings {
    /// Instructions between two state hashes (0: none).
    pub interval: u64,
    /// Log the registers themselves at every `registers_every`-th check (0: never).
    pub registers_every: u64,
}

/// Default instructions between state checks: 10 checks per guest second at icount shift 0.
pub const DEFAULT_CHECK_INTERVAL: u64 = 100_000_000;

/// Default: registers logged at every 16th check (and at the first one).
pub const DEFAULT_REGISTERS_EVERY: u64 = 16;

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            interval: DEFAULT_CHECK_INTERVAL,
            registers_every: DEFAULT_REGISTERS_EVERY,
        }
    }
}

impl Boundary {
    /// Whether the machine must compute a state check now: record when the check interval has
    /// passed, replay when the log holds a `StateHash` at this icount.
    pub fn state_check_due(&self, icount: u64) -> bool {
        match &self.log {
            Log::Record(r) => r.checks.interval > 0 && r.writer.is_some() && icount >= r.next_check,
            Log::Replay(_) => self
                .peek_at(icount, |e| matches!(e, Event::StateHash { .. }))
                .is_some(),
            Log::None => false,
        }
    }

    /// A state check: record logs `hash` (and every few checks the registers); replay compares
    /// them with the log, and on a mismatch builds a divergence with a register diff.
    pub fn state_check(&mut self, icount: u64, hash: u64, regs: &[(&str, u64)]) {
        match &mut self.log {
            Log::Record(r) => {
                let every = r.checks.registers_every;
                let with_regs = every > 0 && r.checks_done % every == 0;
                r.checks_done += 1;
                let interval = r.checks.interval.max(1);
                r.next_check = (icount / interval + 1).saturating_mul(interval);
                self.log_event(icount, &Event::StateHash { hash });
                if with_regs {
                    let regs = regs.iter().map(|&(_, v)| v).collect();
                    self.log_event(icount, &Event::StateRegisters { regs });
                }
            }
            Log::Replay(_) => {
                let Some(Event::StateHash { hash: recorded }) = self.consume() else {
                    return;
                };
                let recorded_regs =
                    match self.peek_at(icount, |e| matches!(e, Event::StateRegisters { .. })) {
                        Some(Event::StateRegisters { regs }) => Some(regs.clone()),
                        _ => None,
                    };
                let diff: Vec<RegisterDiff> = recorded_regs
                    .as_ref()
                    .map(|rec| {
                        regs.iter()
                            .zip(rec.iter().copied().chain(std::iter::repeat(0)))
                            .filter(|((_, now), was)| now != was)
                            .map(|(&(name, now), was)| RegisterDiff {
                                name: name.to_string(),
                                recorded: was,
                                replayed: now,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let layout_differs = recorded_regs
                    .as_ref()
                    .is_some_and(|r| r.len() != regs.len());
                if recorded != hash || !diff.is_empty() || layout_differs {
                    let asked = if recorded == hash {
                        format!(
                            "state check: hash {hash:#018x} matches, but the recorded registers \
                             differ"
                        )
                    } else {
                        format!(
                            "state check: hash {hash:#018x}, the recording has {recorded:#018x}"
                        )
                    };
                    let mut d = self.divergence(icount, asked);
                    d.register_diff = diff;
                    let last_good = self.replayer().and_then(|r| r.last_good_check);
                    let since = match last_good {
                        Some(g) => format!("the previous check at instruction {g} matched"),
                        None => "this is the first state check".to_string(),
                    };
                    d.note = Some(if recorded_regs.is_none() {
                        format!(
                            "registers were not recorded at this check (only every few \
                             checks carry them); {since}, so the guest went astray in between"
                        )
                    } else if d.register_diff.is_empty() {
                        format!(
                            "all registers match: the difference is in CSRs not recorded or in \
                             the serial output so far; {since}"
                        )
                    } else {
                        since
                    });
                    self.fail(ReplayStop::Diverged(Box::new(d)));
                    return;
                }
                if recorded_regs.is_some() {
                    self.consume();
                }
                if let Log::Replay(r) = &mut self.log {
                    r.last_good_check = Some(icount);
                }
            }
            Log::None => {}
        }
    }

    /// Record: the icount at which the next state check is due (the machine ends a slice
    /// there so checks fall at exact multiples of the interval); `None` otherwise.
    pub fn next_check_icount(&self) -> Option<u64> {
        match &self.log {
            Log::Record(r) if r.checks.interval > 0 && r.writer.is_some() => Some(r.next_check),
            _ => None,
        }
    }
}
