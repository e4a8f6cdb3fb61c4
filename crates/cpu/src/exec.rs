//! The interpreter loop.
//!
//! CONTRACT (interpreter work owns this file).

use crate::bus::Mmio;
use crate::hart::{ExitReason, Hart};
use crate::ram::Ram;

impl Hart {
    /// Execute at most `budget` instructions (exactly `budget` unless it exits early), taking
    /// pending interrupts on entry and after state changes. `self.icount` counts retirements.
    pub fn run<M: Mmio>(&mut self, ram: &mut Ram, mmio: &mut M, budget: u64) -> ExitReason {
        let _ = (ram, mmio, budget);
        unimplemented!("exec")
    }
}
