//! Which ISA extensions the hart implements: QEMU 10's `-cpu rv64,...` model.
//!
//! The default is QEMU 10.0's default `rv64` CPU on the `virt` board without the hypervisor
//! extension (QEMU's `-cpu rv64,h=false`; rewind does not implement H). Every extension that
//! QEMU lets a user switch off with `-cpu rv64,zbb=off` can be switched off here with the same
//! spelling, and the extensions QEMU 10 has but leaves off by default (Zicond, Svpbmt,
//! Sscofpmf) can be switched on. The device tree's `riscv,isa` strings are generated from this
//! in QEMU's canonical order, so Linux sees the same CPU as under QEMU.

use std::fmt;

/// A `-cpu` option that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuModelError {
    /// Not `rv64` (or QEMU's `max`/`any` aliases we treat the same way).
    #[error("unsupported CPU model '{0}': rewind emulates QEMU's 'rv64' (e.g. -cpu rv64,zbb=off)")]
    Model(String),
    /// A property rewind does not know.
    #[error("unknown CPU property '{0}' in -cpu (known: {known})", known = CpuFeatures::property_names().join(", "))]
    Property(String),
    /// A value that is not on/off/true/false.
    #[error("CPU property '{name}' takes on|off|true|false, not '{value}'")]
    Value {
        /// The property.
        name: String,
        /// What was given.
        value: String,
    },
    /// Known but not implemented when on (the hypervisor extension).
    #[error("CPU property '{0}=on' is not supported: rewind does not implement the {0} extension (use {0}=off)")]
    Unsupported(String),
}

/// The optional extensions of the hart. Fields are named as QEMU's `-cpu` properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CpuFeatures {
    /// Address generation (sh1add, add.uw, ...).
    pub zba: bool,
    /// Basic bit manipulation (andn, clz, rev8, ...).
    pub zbb: bool,
    /// Carry-less multiplication.
    pub zbc: bool,
    /// Single-bit instructions (bset, bclr, ...).
    pub zbs: bool,
    /// Integer conditional operations (czero.eqz/nez). Off by default, as in QEMU 10.
    pub zicond: bool,
    /// Cache-block management (cbo.clean/flush/inval).
    pub zicbom: bool,
    /// Cache-block zero (cbo.zero).
    pub zicboz: bool,
    /// Cache-block prefetch hints.
    pub zicbop: bool,
    /// `pause` hint.
    pub zihintpause: bool,
    /// Non-temporal locality hints.
    pub zihintntl: bool,
    /// Wait-on-reservation-set (wrs.nto, wrs.sto).
    pub zawrs: bool,
    /// Additional floating-point instructions (fli, fminm, fround, ...).
    pub zfa: bool,
    /// cycle/time/instret counters readable from S/U.
    pub zicntr: bool,
    /// hpmcounter3..31.
    pub zihpm: bool,
    /// Supervisor timer compare (`stimecmp`).
    pub sstc: bool,
    /// Page-based memory types in PTE bits 62:61. Off by default, as in QEMU 10.
    pub svpbmt: bool,
    /// Hardware updating of PTE A/D bits (menvcfg.ADUE).
    pub svadu: bool,
    /// Counter overflow and mode-based filtering (LCOFI). Off by default, as in QEMU 10.
    pub sscofpmf: bool,
    /// Sdtrig debug triggers (QEMU's `debug` property).
    pub debug: bool,
}

impl Default for CpuFeatures {
    fn default() -> Self {
        CpuFeatures::qemu10_rv64()
    }
}

impl CpuFeatures {
    /// QEMU 10.0's default `rv64` CPU without H.
    pub const fn qemu10_rv64() -> Self {
        CpuFeatures {
            zba: true,
            zbb: true,
            zbc: true,
            zbs: true,
            zicond: false,
            zicbom: true,
            zicboz: true,
            zicbop: true,
            zihintpause: true,
            zihintntl: true,
            zawrs: true,
            zfa: true,
            zicntr: true,
            zihpm: true,
            sstc: true,
            svpbmt: false,
            svadu: true,
            sscofpmf: false,
            debug: true,
        }
    }

    /// The CPU of QEMU 7.2's `rv64` (rewind's model before QEMU 10): none of the newer
    /// extensions. `-cpu rv64,...` options switch single ones back on.
    pub const fn baseline() -> Self {
        CpuFeatures {
            zba: false,
            zbb: false,
            zbc: false,
            zbs: false,
            zicond: false,
            zicbom: false,
            zicboz: false,
            zicbop: false,
            zihintpause: true,
            zihintntl: false,
            zawrs: false,
            zfa: false,
            zicntr: true,
            zihpm: true,
            sstc: false,
            svpbmt: false,
            svadu: false,
            sscofpmf: false,
            debug: false,
        }
    }

    fn flags_mut(&mut self) -> [(&'static str, &mut bool); 19] {
        [
            ("zba", &mut self.zba),
            ("zbb", &mut self.zbb),
            ("zbc", &mut self.zbc),
            ("zbs", &mut self.zbs),
            ("zicond", &mut self.zicond),
            ("zicbom", &mut self.zicbom),
            ("zicboz", &mut self.zicboz),
            ("zicbop", &mut self.zicbop),
            ("zihintpause", &mut self.zihintpause),
            ("zihintntl", &mut self.zihintntl),
            ("zawrs", &mut self.zawrs),
            ("zfa", &mut self.zfa),
            ("zicntr", &mut self.zicntr),
            ("zihpm", &mut self.zihpm),
            ("sstc", &mut self.sstc),
            ("svpbmt", &mut self.svpbmt),
            ("svadu", &mut self.svadu),
            ("sscofpmf", &mut self.sscofpmf),
            ("debug", &mut self.debug),
        ]
    }

    /// The `-cpu` property names rewind accepts.
    pub fn property_names() -> Vec<&'static str> {
        let mut f = CpuFeatures::default();
        let mut names: Vec<&'static str> = f.flags_mut().into_iter().map(|(n, _)| n).collect();
        names.push("h");
        names
    }

    /// Parse QEMU's `-cpu` spelling: `rv64[,prop=on|off|true|false]...` (also `max`, which
    /// QEMU 10 turns into every extension it has; here: every extension rewind has).
    pub fn parse(spec: &str) -> Result<Self, CpuModelError> {
        let mut parts = spec.split(',');
        let model = parts.next().unwrap_or_default().trim();
        let mut feats = match model {
            "rv64" | "" => CpuFeatures::qemu10_rv64(),
            "max" => {
                let mut all = CpuFeatures::qemu10_rv64();
                for (_, v) in all.flags_mut() {
                    *v = true;
                }
                all
            }
            other => return Err(CpuModelError::Model(other.to_string())),
        };
        for part in parts.filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, "on"));
            let on = match value {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => {
                    return Err(CpuModelError::Value {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                }
            };
            if name == "h" {
                if on {
                    return Err(CpuModelError::Unsupported("h".into()));
                }
                continue;
            }
            let mut found = false;
            for (n, v) in feats.flags_mut() {
                if n == name {
                    *v = on;
                    found = true;
                }
            }
            if !found {
                return Err(CpuModelError::Property(name.to_string()));
            }
        }
        Ok(feats)
    }

    /// The same CPU as a QEMU `-cpu` argument (what the oracle tests pass to QEMU 10).
    pub fn qemu_cpu_arg(&self) -> String {
        let mut s = String::from("rv64,h=false");
        let default = CpuFeatures::qemu10_rv64();
        let mut me = *self;
        let mut def = default;
        for ((n, v), (_, d)) in me.flags_mut().into_iter().zip(def.flags_mut()) {
            if *v != *d {
                s.push_str(&format!(",{n}={}", if *v { "on" } else { "off" }));
            }
        }
        s
    }

    /// misa: MXL=2 (RV64) with A C D F I M S U (H is not implemented; the Z*/S* extensions
    /// have no misa bits).
    pub fn misa(&self) -> u64 {
        crate::csr::MISA
    }

    /// The extension names of `riscv,isa-extensions`, in QEMU 10's order (its `isa_edata_arr`),
    /// including the names QEMU derives from the implementation (zic64b, zmmul, ...).
    pub fn isa_extensions(&self) -> Vec<&'static str> {
        let table: [(&'static str, bool); 47] = [
            ("i", true),
            ("m", true),
            ("a", true),
            ("f", true),
            ("d", true),
            ("c", true),
            // QEMU derives it from the block sizes (64), whether or not a Zicbo* is on.
            ("zic64b", true),
            ("zicbom", self.zicbom),
            ("zicbop", self.zicbop),
            ("zicboz", self.zicboz),
            ("ziccamoa", true),
            ("ziccif", true),
            ("zicclsm", true),
            ("ziccrse", true),
            ("zicond", self.zicond),
            ("zicntr", self.zicntr),
            ("zicsr", true),
            ("zifencei", true),
            ("zihintntl", self.zihintntl),
            ("zihintpause", self.zihintpause),
            ("zihpm", self.zihpm),
            ("zmmul", true),
            ("za64rs", true),
            ("zaamo", true),
            ("zalrsc", true),
            ("zawrs", self.zawrs),
            ("zfa", self.zfa),
            ("zca", true),
            ("zcd", true),
            ("zba", self.zba),
            ("zbb", self.zbb),
            ("zbc", self.zbc),
            ("zbs", self.zbs),
            ("shcounterenw", true),
            ("shgatpa", true),
            ("shtvala", true),
            ("shvsatpa", true),
            ("shvstvala", true),
            ("shvstvecd", true),
            ("ssccptr", true),
            ("sscofpmf", self.sscofpmf),
            ("sscounterenw", true),
            ("sstc", self.sstc),
            ("sstvala", true),
            ("sstvecd", true),
            ("ssu64xl", true),
            ("svadu", self.svadu),
        ];
        let mut v: Vec<&'static str> = table
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect();
        if self.svpbmt {
            v.push("svpbmt");
        }
        v.push("svvptc");
        v
    }

    /// The device tree's `riscv,isa`: "rv64imafdc" then `_ext` for each multi-letter one.
    pub fn isa_string(&self) -> String {
        let mut s = String::from("rv64");
        for e in self.isa_extensions() {
            if e.len() == 1 {
                s.push_str(e);
            } else {
                s.push('_');
                s.push_str(e);
            }
        }
        s
    }
}

impl fmt::Display for CpuFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qemu_cpu_arg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_isa_string_is_qemu10_rv64_without_h() {
        assert_eq!(
            CpuFeatures::default().isa_string(),
            "rv64imafdc_zic64b_zicbom_zicbop_zicboz_ziccamoa_ziccif_zicclsm_ziccrse_zicntr_zicsr_zifencei_zihintntl_zihintpause_zihpm_zmmul_za64rs_zaamo_zalrsc_zawrs_zfa_zca_zcd_zba_zbb_zbc_zbs_shcounterenw_shgatpa_shtvala_shvsatpa_shvstvala_shvstvecd_ssccptr_sscounterenw_sstc_sstvala_sstvecd_ssu64xl_svadu_svvptc"
        );
    }

    #[test]
    fn parses_qemu_spelling() {
        let f = CpuFeatures::parse("rv64,zbb=off,zicond=on,h=false,svpbmt=true").unwrap();
        assert!(!f.zbb && f.zicond && f.svpbmt && f.zba);
        assert_eq!(f.qemu_cpu_arg(), "rv64,h=false,zbb=off,zicond=on,svpbmt=on");
        assert_eq!(CpuFeatures::parse(&f.qemu_cpu_arg()).unwrap(), f);
        assert!(matches!(
            CpuFeatures::parse("rv64,h=on"),
            Err(CpuModelError::Unsupported(_))
        ));
        assert!(matches!(
            CpuFeatures::parse("rv64,zzz=on"),
            Err(CpuModelError::Property(_))
        ));
        assert!(matches!(
            CpuFeatures::parse("rv64,zbb=maybe"),
            Err(CpuModelError::Value { .. })
        ));
        assert!(matches!(
            CpuFeatures::parse("sifive-u54"),
            Err(CpuModelError::Model(_))
        ));
    }
}
