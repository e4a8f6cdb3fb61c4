//! Counts of the traps a hart took: exceptions and interrupts by cause, and the SBI calls a
//! supervisor made (`ecall` from S-mode, decoded from a7/a6). What `--stats` prints; counting
//! happens on the trap path only, so it costs the interpreter nothing.
//!
//! Not architectural state: snapshots do not carry it, and a seek does not rewind it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::hart::Priv;

/// Trap counters of one hart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrapStats {
    /// Exceptions by `xcause` (0..=15); ecalls are split by mode in causes 8, 9 and 11.
    pub exceptions: [u64; 16],
    /// Interrupts by cause (0..=15).
    pub interrupts: [u64; 16],
    /// SBI calls from S-mode: (extension id, function id) → count. Legacy extensions (a7 < 16)
    /// have no function id (0).
    pub sbi_calls: BTreeMap<(u64, u64), u64>,
}

/// Name of an SBI extension id (legacy ones by their call).
pub fn sbi_extension_name(eid: u64) -> Option<&'static str> {
    Some(match eid {
        0x00 => "legacy set_timer",
        0x01 => "legacy console_putchar",
        0x02 => "legacy console_getchar",
        0x03 => "legacy clear_ipi",
        0x04 => "legacy send_ipi",
        0x05 => "legacy remote_fence_i",
        0x06 => "legacy remote_sfence_vma",
        0x07 => "legacy remote_sfence_vma_asid",
        0x08 => "legacy shutdown",
        0x10 => "BASE",
        0x5449_4d45 => "TIME",
        0x0073_5049 => "IPI",
        0x5246_4e43 => "RFENCE",
        0x0048_534d => "HSM",
        0x5352_5354 => "SRST",
        0x0050_4d55 => "PMU",
        0x4442_434e => "DBCN",
        0x5355_5350 => "SUSP",
        0x4350_5043 => "CPPC",
        0x4e41_434c => "NACL",
        0x0053_5441 => "STA",
        _ => return None,
    })
}

/// Name of an exception cause.
fn exception_name(cause: usize) -> &'static str {
    [
        "instruction address misaligned",
        "instruction access fault",
        "illegal instruction",
        "breakpoint",
        "load address misaligned",
        "load access fault",
        "store/AMO address misaligned",
        "store/AMO access fault",
        "ecall from U",
        "ecall from S",
        "cause 10",
        "ecall from M",
        "instruction page fault",
        "load page fault",
        "cause 14",
        "store/AMO page fault",
    ][cause & 15]
}

/// Name of an interrupt cause.
fn interrupt_name(cause: usize) -> &'static str {
    match cause {
        1 => "supervisor software",
        3 => "machine software",
        5 => "supervisor timer",
        7 => "machine timer",
        9 => "supervisor external",
        11 => "machine external",
        13 => "counter overflow",
        _ => "other",
    }
}

impl TrapStats {
    /// Count an exception with cause `cause` raised in mode `prv`; for an ecall from S, `a7`
    /// and `a6` name the SBI call.
    #[inline]
    pub fn exception(&mut self, cause: u64, prv: Priv, a7: u64, a6: u64) {
        if let Some(c) = self.exceptions.get_mut(cause as usize) {
            *c += 1;
        }
        if cause == 9 && prv == Priv::S {
            let fid = if a7 < 16 { 0 } else { a6 };
            *self.sbi_calls.entry((a7, fid)).or_insert(0) += 1;
        }
    }

    /// Count an interrupt with cause `cause`.
    #[inline]
    pub fn interrupt(&mut self, cause: u64) {
        if let Some(c) = self.interrupts.get_mut(cause as usize) {
            *c += 1;
        }
    }

    /// SBI calls to the timer (TIME.set_timer and the legacy set_timer).
    pub fn sbi_timer_calls(&self) -> u64 {
        self.sbi_calls
            .iter()
            .filter(|((eid, _), _)| *eid == 0 || *eid == 0x5449_4d45)
            .map(|(_, n)| n)
            .sum()
    }

    /// A human-readable table (one line per non-zero counter).
    pub fn report(&self) -> String {
        let mut s = String::new();
        for (cause, n) in self.exceptions.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = writeln!(s, "  exception  {:<34} {n:>12}", exception_name(cause));
        }
        for (cause, n) in self.interrupts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = writeln!(s, "  interrupt  {:<34} {n:>12}", interrupt_name(cause));
        }
        for ((eid, fid), n) in &self.sbi_calls {
            let name = match sbi_extension_name(*eid) {
                Some(x) if *eid < 16 => x.to_string(),
                Some(x) => format!("{x} fid {fid}"),
                None => format!("eid {eid:#x} fid {fid}"),
            };
            let _ = writeln!(s, "  sbi call   {name:<34} {n:>12}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sbi_timer_calls_only_from_s_mode() {
        let mut t = TrapStats::default();
        t.exception(9, Priv::S, 0x5449_4d45, 0);
        t.exception(9, Priv::S, 0, 99);
        t.exception(8, Priv::U, 0x5449_4d45, 0);
        t.exception(9, Priv::S, 0x10, 3);
        t.interrupt(5);
        assert_eq!(t.sbi_timer_calls(), 2);
        assert_eq!(t.exceptions[9], 3);
        assert_eq!(t.interrupts[5], 1);
        let r = t.report();
        assert!(r.contains("TIME fid 0"), "{r}");
        assert!(r.contains("legacy set_timer"), "{r}");
        assert!(r.contains("BASE fid 3"), "{r}");
        assert!(r.contains("supervisor timer"), "{r}");
    }
}
