//! The unprivileged extensions of QEMU 10's rv64 (Zicond, Zicbom/Zicboz, Zawrs, Zfa) where the
//! guests cannot compare with QEMU: behaviour behind a CPU option, precise code invalidation,
//! cache-block zeroing of device space, and the instruction bits in mtval where QEMU 10 writes 0
//! (its helpers raise those illegal-instruction traps without the instruction; Sstvala, which
//! QEMU advertises, requires the bits).

mod asm;

use asm::*;
use rewind_cpu::csr::CsrOp;
use rewind_cpu::{fpu, ExitReason, Hart, Mmio, MmioFault, Priv, Ram};

const BASE: u64 = 0x8000_0000;
const MMIO: u64 = 0x1000_0000;

/// A device window at `MMIO` that records stores.
#[derive(Default)]
struct Bus {
    stores: Vec<(u64, u8, u64)>,
}

impl Mmio for Bus {
    fn load(&mut self, _: &mut Ram, paddr: u64, _: u8, _: u64) -> Result<u64, MmioFault> {
        if (MMIO..MMIO + 0x1000).contains(&paddr) {
            Ok(0x42)
        } else {
            Err(MmioFault)
        }
    }
    fn store(
        &mut self,
        _: &mut Ram,
        paddr: u64,
        size: u8,
        v: u64,
        _: u64,
    ) -> Result<(), MmioFault> {
        if (MMIO..MMIO + 0x1000).contains(&paddr) {
            self.stores.push((paddr, size, v));
            Ok(())
        } else {
            Err(MmioFault)
        }
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}

struct M {
    hart: Hart,
    ram: Ram,
    bus: Bus,
}

/// The trap vector (a spin loop) is at this offset of every program.
const VEC: usize = 0x400;

impl M {
    /// `words` at BASE (after setting mtvec to BASE + VEC), a spin loop at BASE + VEC.
    fn new(words: &[u32]) -> M {
        let mut p = Prog::new();
        p.w(auipc(5, 0))
            .w(addi(5, 5, VEC as i32))
            .w(csr(1, 0, 5, 0x305));
        for &w in words {
            p.w(w);
        }
        p.w(jal(0, 0));
        assert!(p.bytes.len() <= VEC);
        p.bytes.resize(VEC, 0);
        p.w(jal(0, 0));
        let mut ram = Ram::new(BASE, 1 << 20);
        ram.write(BASE, &p.bytes).unwrap();
        let mut hart = Hart::new(0, BASE, 0);
        // PMP open for S and U.
        let bus = Bus::default();
        hart.csr_op(&bus, 0x3b0, CsrOp::Write, u64::MAX, true)
            .unwrap();
        hart.csr_op(&bus, 0x3a0, CsrOp::Write, 0x1f, true).unwrap();
        M { hart, ram, bus }
    }
    fn run(&mut self, n: u64) -> ExitReason {
        self.hart.run(&mut self.ram, &mut self.bus, n)
    }
    fn csr(&mut self, addr: u16) -> u64 {
        self.hart
            .csr_op(&self.bus, addr, CsrOp::Set, 0, false)
            .unwrap()
    }
    fn set_csr(&mut self, addr: u16, v: u64) {
        self.hart
            .csr_op(&self.bus, addr, CsrOp::Write, v, true)
            .unwrap();
    }
    /// Run the mtvec setup in M, then continue in `prv`.
    fn enter(&mut self, prv: Priv) {
        assert_eq!(self.run(3), ExitReason::Budget);
        self.hart.prv = prv;
    }
    fn trapped(&mut self) -> (u64, u64, u64) {
        (self.csr(0x342), self.csr(0x341), self.csr(0x343))
    }
    fn read64(&self, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        self.ram.read(pa, &mut b).unwrap();
        u64::from_le_bytes(b)
    }
}

fn czero(f3: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    r(7, rs2, rs1, f3, rd, 0x33)
}

fn cbo(imm: i32, rs1: u32) -> u32 {
    i(imm, rs1, 2, 0, 0x0f)
}

const CBO_ZERO: i32 = 4;
const WRS_NTO: u32 = 0x00d0_0073;

#[test]
fn zicond_works_when_switched_on_and_is_illegal_otherwise() {
    let words = [
        addi(1, 0, 5),
        addi(3, 0, -7),
        czero(5, 10, 1, 0), // czero.eqz: rs2 = 0 -> 0
        czero(5, 11, 1, 3), // rs2 != 0 -> rs1
        czero(7, 12, 3, 0), // czero.nez: rs2 = 0 -> rs1
        czero(7, 13, 3, 1), // rs2 != 0 -> 0
        czero(7, 0, 3, 0),  // rd = x0
    ];
    let mut m = M::new(&words);
    m.hart.features.zicond = true;
    m.hart.x[10] = 99;
    m.hart.x[13] = 99;
    assert_eq!(m.run(3 + 7), ExitReason::Budget);
    let x = &m.hart.x;
    assert_eq!(
        (x[10], x[11], x[12], x[13], x[0]),
        (0, 5, (-7i64) as u64, 0, 0)
    );
    assert_eq!(m.hart.pc, BASE + 4 * 10);

    // QEMU 10's default rv64 has no Zicond: the first czero is an illegal instruction.
    let mut m = M::new(&words);
    assert!(!m.hart.features.zicond);
    m.run(3 + 2);
    assert_eq!(m.hart.pc, BASE + 4 * 5);
    m.run(1); // traps (not retired), then the spin at the vector retires
    assert_eq!(m.trapped(), (2, BASE + 4 * 5, words[2] as u64));
    assert_eq!(
        (m.hart.icount, m.hart.pc, m.hart.x[10]),
        (6, BASE + VEC as u64, 0)
    );
}

#[test]
fn cbo_zero_of_device_space_stores_64_zero_bytes() {
    let words = [
        lui(1, MMIO as u32),
        addi(1, 1, 0x85),
        cbo(CBO_ZERO, 1),
        addi(2, 0, 1),
    ];
    let mut m = M::new(&words);
    m.enter(Priv::M);
    // Like any MMIO store, it ends the run after retiring.
    assert_eq!(m.run(10), ExitReason::Yield);
    assert_eq!((m.hart.icount, m.hart.pc), (6, BASE + 4 * 6));
    let want: Vec<_> = (0..64).map(|k| (MMIO + 0x80 + k, 1u8, 0u64)).collect();
    assert_eq!(m.bus.stores, want);
}

#[test]
fn cbo_zero_drops_the_decoded_block_it_is_running_in() {
    // cbo.zero clears the 64-byte block at BASE + 0x40, which holds the rest of this straight-line
    // block: the next fetch sees the zero parcel (illegal, mtval 0), not the stale addi.
    let mut words = vec![auipc(11, 0), addi(11, 11, 0x40 - 12), cbo(CBO_ZERO, 11)];
    while words.len() < 0x40 / 4 - 3 {
        words.push(addi(0, 0, 0));
    }
    for _ in 0..8 {
        words.push(addi(10, 10, 1));
    }
    let mut m = M::new(&words);
    // One run: everything up to BASE + 0x40 retires, then the fetch there traps (and the spin at
    // the vector retires once).
    m.run(0x40 / 4 + 1);
    assert_eq!(m.trapped(), (2, BASE + 0x40, 0));
    assert_eq!((m.hart.x[10], m.hart.icount), (0, 0x40 / 4 + 1));
    assert_eq!(m.read64(BASE + 0x78), 0);
}

#[test]
fn envcfg_and_tw_illegal_instructions_report_the_instruction_bits() {
    let zero = cbo(CBO_ZERO, 1);
    for (prv, menv, senv, trap) in [
        (Priv::S, 0, 0, true),
        (Priv::S, 0x80, 0, false),
        (Priv::U, 0x80, 0, true),
        (Priv::U, 0x80, 0x80, false),
        (Priv::U, 0, 0x80, true),
        (Priv::M, 0, 0, false),
    ] {
        let mut m = M::new(&[auipc(1, 0x1000), andi(1, 1, -64), zero, addi(2, 0, 1)]);
        m.set_csr(0x30a, menv);
        m.set_csr(0x10a, senv);
        m.ram.write(BASE + 0x1000, &[0xff; 64]).unwrap();
        m.enter(prv);
        m.run(4);
        let what = format!("{prv:?} menvcfg={menv:#x} senvcfg={senv:#x}");
        if trap {
            assert_eq!(m.trapped(), (2, BASE + 20, zero as u64), "{what}");
            assert_eq!(m.read64(BASE + 0x1000), u64::MAX, "{what}");
        } else {
            assert_eq!((m.hart.x[2], m.read64(BASE + 0x1038)), (1, 0), "{what}");
        }
    }
    // wrs.nto below M with mstatus.TW: illegal, mtval = its bits; wrs.sto never traps.
    for (prv, word, trap) in [
        (Priv::S, WRS_NTO, true),
        (Priv::U, WRS_NTO, true),
        (Priv::M, WRS_NTO, false),
        (Priv::U, 0x01d0_0073, false),
    ] {
        let mut m = M::new(&[word, addi(2, 0, 1)]);
        m.set_csr(0x300, 1 << 21);
        m.enter(prv);
        m.run(2);
        if trap {
            assert_eq!(m.trapped(), (2, BASE + 12, word as u64), "{prv:?}");
        } else {
            assert_eq!(m.hart.x[2], 1, "{prv:?} {word:#x}");
        }
    }
}

#[test]
fn wrs_drops_the_reservation() {
    // lr.d; wrs.sto; sc.d fails (1), like QEMU's wrs clearing load_res.
    let lr = amo(0x02, 3, 5, 1, 0);
    let sc = amo(0x03, 3, 6, 1, 2);
    let at = [auipc(1, 0x1000), andi(1, 1, -64)];
    let mut m = M::new(&[at[0], at[1], lr, 0x01d0_0073, sc, lr, sc]);
    m.run(3 + 7);
    assert_eq!((m.hart.x[6], m.hart.icount), (0, 10));
    let mut m = M::new(&[at[0], at[1], lr, 0x01d0_0073, sc]);
    m.run(3 + 5);
    assert_eq!(m.hart.x[6], 1);
}

#[test]
fn zfa_known_answers() {
    let mut fl = 0;
    // fround: no inexact flag; froundnx: inexact; ties per mode; sign of zero kept.
    assert_eq!(
        fpu::f64_round_int(2.5f64.to_bits(), 0, false, &mut fl),
        2.0f64.to_bits()
    );
    assert_eq!(fl, 0);
    assert_eq!(
        fpu::f64_round_int(2.5f64.to_bits(), 4, true, &mut fl),
        3.0f64.to_bits()
    );
    assert_eq!(fl, fpu::NX);
    fl = 0;
    assert_eq!(
        fpu::f32_round_int((-0.25f32).to_bits(), 0, true, &mut fl),
        (-0.0f32).to_bits()
    );
    assert_eq!(
        fpu::f32_round_int(1e-45f32.to_bits(), 3, false, &mut fl),
        1.0f32.to_bits()
    );
    assert_eq!(
        fpu::f32_round_int(0x7f80_0001, 0, false, &mut fl),
        fpu::F32_CANONICAL_NAN
    );
    assert_eq!(fl, fpu::NX | fpu::NV);
    // fcvtmod.w.d: modulo 2^32, NV (not NX) out of range, 0 for NaN / inf.
    fl = 0;
    assert_eq!(
        fpu::f64_to_i32_modulo((4294967301.5f64).to_bits(), &mut fl),
        5
    );
    assert_eq!(fl, fpu::NV);
    fl = 0;
    assert_eq!(
        fpu::f64_to_i32_modulo((-3.7f64).to_bits(), &mut fl),
        (-3i64) as u64
    );
    assert_eq!(fl, fpu::NX);
    fl = 0;
    assert_eq!(fpu::f64_to_i32_modulo(f64::INFINITY.to_bits(), &mut fl), 0);
    assert_eq!(
        fpu::f64_to_i32_modulo((-2147483648.0f64).to_bits(), &mut 0),
        0xffff_ffff_8000_0000
    );
    // fminm/fmaxm: any NaN gives the canonical NaN; -0 < +0.
    assert_eq!(
        fpu::f64_minmax_m(true, 1f64.to_bits(), f64::NAN.to_bits(), &mut 0),
        fpu::F64_CANONICAL_NAN
    );
    assert_eq!(
        fpu::f32_minmax_m(false, 0x8000_0000, 0, &mut 0),
        0x8000_0000
    );
    // fleq/fltq are quiet: qNaN raises nothing, sNaN NV.
    fl = 0;
    assert_eq!(fpu::f64_cmp_quiet(true, f64::NAN.to_bits(), 0, &mut fl), 0);
    assert_eq!(fl, 0);
    assert_eq!(fpu::f32_cmp_quiet(false, 0x7f80_0001, 0, &mut fl), 0);
    assert_eq!(fl, fpu::NV);
    assert_eq!(fpu::f32_cmp_quiet(false, 0x8000_0000, 0, &mut 0), 1);
    assert_eq!(fpu::f32_cmp_quiet(true, 0x8000_0000, 0, &mut 0), 0);
    assert_eq!(
        (fpu::fli_f32(1), fpu::fli_f64(29)),
        (0x0080_0000, 65536f64.to_bits())
    );
}
