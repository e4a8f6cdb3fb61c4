//! Cheap fingerprints of architectural state, for the state checks of record and replay.
//!
//! The register list is fixed (its layout is what `StateRegisters` events hold); the hash is
//! a fast multiplicative mix over the same values, so equal lists give equal hashes.

use rewind_cpu::{Hart, Priv};

/// ABI names of x1..x31.
const X_NAMES: [&str; 31] = [
    "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5", "a6",
    "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
];

/// Names of f0..f31.
const F_NAMES: [&str; 32] = [
    "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13", "f14",
    "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26", "f27",
    "f28", "f29", "f30", "f31",
];

/// Number of entries in a state snapshot.
pub const STATE_LEN: usize = 3 + 31 + 32 + 19;

/// Privilege mode as printed in reports.
pub fn privilege_name(p: Priv) -> &'static str {
    match p {
        Priv::M => "M (machine)",
        Priv::S => "S (supervisor)",
        Priv::U => "U (user)",
    }
}

/// The values compared at a state check, with their names: pc, privilege, icount, x1..x31,
/// f0..f31, the key CSRs, and the running hash of all serial output so far.
pub fn snapshot(hart: &Hart, output_hash: u64) -> Vec<(&'static str, u64)> {
    let c = &hart.csr;
    let mut v = Vec::with_capacity(STATE_LEN);
    v.push(("pc", hart.pc));
    v.push(("privilege", hart.prv as u64));
    v.push(("icount", hart.icount));
    for (i, name) in X_NAMES.iter().enumerate() {
        v.push((*name, hart.x[i + 1]));
    }
    for (i, name) in F_NAMES.iter().enumerate() {
        v.push((*name, hart.f[i]));
    }
    v.extend([
        ("mstatus", c.mstatus),
        ("fcsr", u64::from(c.frm) << 5 | u64::from(c.fflags)),
        ("medeleg", c.medeleg),
        ("mideleg", c.mideleg),
        ("mie", c.mie),
        ("mip", c.mip),
        ("mtvec", c.mtvec),
        ("stvec", c.stvec),
        ("mscratch", c.mscratch),
        ("sscratch", c.sscratch),
        ("mepc", c.mepc),
        ("sepc", c.sepc),
        ("mcause", c.mcause),
        ("scause", c.scause),
        ("mtval", c.mtval),
        ("stval", c.stval),
        ("satp", c.satp),
        ("menvcfg", c.menvcfg),
        ("serial-out", output_hash),
    ]);
    v
}

/// Names of hart `h`'s entries in [`snapshot_smp`] ("h1.pc", ...), made once.
fn hart_names(h: usize) -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<Vec<&'static str>>> = std::sync::OnceLock::new();
    let all = NAMES.get_or_init(|| {
        let one = snapshot(&Hart::new(0, 0, 0), 0);
        (0..crate::sched::MAX_HARTS as usize)
            .map(|h| {
                one.iter()
                    .filter(|(n, _)| *n != "serial-out")
                    .map(|(n, _)| &*Box::leak(format!("h{h}.{n}").into_boxed_str()))
                    .collect()
            })
            .collect()
    });
    all.get(h).map_or(&[], Vec::as_slice)
}

/// The state-check values of a machine with several harts: the total instruction count, the
/// scheduler's turn, then each hart's entries of [`snapshot`] (names prefixed `hN.`, the hart's
/// own `icount` being its `minstret` base), then the serial output hash.
pub fn snapshot_smp(
    harts: &[Hart],
    icount: u64,
    sched: &crate::sched::SchedState,
    output_hash: u64,
) -> Vec<(&'static str, u64)> {
    let mut v = Vec::with_capacity(4 + harts.len() * STATE_LEN);
    v.push(("icount", icount));
    v.push(("sched.hart", u64::from(sched.current)));
    v.push(("sched.left", sched.left));
    v.push(("sched.rng", sched.rng));
    for (i, h) in harts.iter().enumerate() {
        let names = hart_names(i);
        let values = snapshot(h, 0);
        v.extend(names.iter().copied().zip(values.iter().map(|&(_, x)| x)));
    }
    v.push(("serial-out", output_hash));
    v
}

/// Names of the fingerprints of other harts in [`registers_smp`].
fn fingerprint_name(h: usize) -> &'static str {
    const NAMES: [&str; crate::sched::MAX_HARTS as usize] = [
        "h0.state", "h1.state", "h2.state", "h3.state", "h4.state", "h5.state", "h6.state",
        "h7.state",
    ];
    NAMES.get(h).copied().unwrap_or("h?.state")
}

/// The registers a state check logs with several harts: the total instruction count and the
/// scheduler, the current hart's entries as in [`snapshot_smp`], a fingerprint (hash) of each
/// other hart's, and the serial output hash. A divergence report shows the current hart's
/// registers and which other harts differ.
pub fn registers_smp(
    harts: &[Hart],
    icount: u64,
    sched: &crate::sched::SchedState,
    output_hash: u64,
) -> Vec<(&'static str, u64)> {
    let cur = sched.current as usize;
    let mut v = Vec::with_capacity(5 + STATE_LEN + harts.len());
    v.push(("icount", icount));
    v.push(("sched.hart", u64::from(sched.current)));
    v.push(("sched.left", sched.left));
    v.push(("sched.rng", sched.rng));
    for (i, h) in harts.iter().enumerate() {
        let values = snapshot(h, 0);
        if i == cur {
            let names = hart_names(i);
            v.extend(names.iter().copied().zip(values.iter().map(|&(_, x)| x)));
        } else {
            v.push((fingerprint_name(i), hash(&values)));
        }
    }
    v.push(("serial-out", output_hash));
    v
}

/// Hash of a snapshot (order-sensitive).
pub fn hash(snapshot: &[(&str, u64)]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for &(_, v) in snapshot {
        h = (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
    }
    // splitmix64 finaliser: every input bit affects every output bit.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Running FNV-1a hash of the serial output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputHash(pub u64);

impl Default for OutputHash {
    fn default() -> Self {
        OutputHash(0xcbf2_9ce4_8422_2325)
    }
}

impl OutputHash {
    /// Add bytes written by the guest.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_layout_and_hash_sensitivity() {
        let mut h = Hart::new(0, 0x8000_0000, 0x8700_0000);
        let s = snapshot(&h, 1);
        assert_eq!(s.len(), STATE_LEN);
        assert_eq!(s[0], ("pc", 0x8000_0000));
        assert_eq!(s[3 + 9], ("a0", 0));
        assert_eq!(s[3 + 10], ("a1", 0x8700_0000));
        let base = hash(&s);
        h.x[31] ^= 1 << 40;
        assert_ne!(hash(&snapshot(&h, 1)), base);
        h.x[31] ^= 1 << 40;
        assert_eq!(hash(&snapshot(&h, 1)), base);
        assert_ne!(hash(&snapshot(&h, 2)), base);
    }

    #[test]
    fn output_hash_is_fnv1a() {
        let mut o = OutputHash::default();
        o.update(b"a");
        assert_eq!(o.0, 0xaf63_dc4c_8601_ec8c);
    }
}
