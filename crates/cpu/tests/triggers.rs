//! Sdtrig triggers firing in the interpreter: a breakpoint exception (cause 3) before the
//! instruction executes or accesses memory, with QEMU 10's xtval, at the exact icount; the
//! guest-level comparison with QEMU is guests/priv10.

mod asm;

use asm::*;
use rewind_cpu::csr::CsrOp;
use rewind_cpu::{Hart, Priv, Ram};

const BASE: u64 = 0x8000_0000;

/// A hart at BASE running `words`, mtvec = BASE + 0x100 (a `j .` loop).
fn setup(words: &[u32]) -> (Hart, Ram) {
    let mut p = Prog::new();
    for &w in words {
        p.w(w);
    }
    p.bytes.resize(0x100, 0);
    p.w(jal(0, 0));
    let mut ram = Ram::new(BASE, 1 << 20);
    ram.write(BASE, &p.bytes).unwrap();
    let mut h = Hart::new(0, BASE, 0);
    h.csr.mtvec = BASE + 0x100;
    (h, ram)
}

fn csrw(h: &mut Hart, a: u16, v: u64) {
    h.csr_op(&NoDevices, a, CsrOp::Write, v, true).unwrap();
}

const T2: u64 = 2 << 60;
const T6: u64 = 6 << 60;
const M: u64 = 1 << 6;
const S: u64 = 1 << 4;
const X: u64 = 1 << 2;
const ST: u64 = 1 << 1;
const LD: u64 = 1;

#[test]
fn execute_trigger_fires_before_the_instruction() {
    let (mut h, mut ram) = setup(&[NOP, NOP, addi(5, 0, 7), NOP]);
    csrw(&mut h, 0x7a2, BASE + 8);
    csrw(&mut h, 0x7a1, T2 | M | X);
    let mut bus = NoDevices;
    // Two nops retire, the trigger fires at the addi (which does not retire), the third
    // retired instruction is the handler's `j .`.
    h.run(&mut ram, &mut bus, 3);
    assert_eq!(
        (h.csr.mcause, h.csr.mtval, h.csr.mepc, h.icount, h.x[5]),
        (3, BASE + 8, BASE + 8, 3, 0),
        "the addi did not retire"
    );
    assert_eq!(h.pc, BASE + 0x100, "in the handler");
    assert_eq!(h.csr.minstret(h.icount), 3);
    // A trigger for S only does not fire in M; disabling it ends checking.
    let (mut h, mut ram) = setup(&[NOP, NOP, addi(5, 0, 7), NOP]);
    csrw(&mut h, 0x7a2, BASE + 8);
    csrw(&mut h, 0x7a1, T6 | S | X);
    h.run(&mut ram, &mut bus, 4);
    assert_eq!((h.icount, h.x[5], h.pc), (4, 7, BASE + 16));
}

#[test]
fn load_and_store_triggers_report_the_accessed_address() {
    // t0 = BASE + 0x200; ld t1, 8(t0); sd t1, 16(t0)
    let prog = [
        auipc(5, 0),
        addi(5, 5, 0x200),
        ld(6, 5, 8),
        sd(6, 5, 16),
        NOP,
    ];
    let mut bus = NoDevices;
    // Load trigger on the loaded doubleword's middle byte (explicit size 8 from tdata2 - 4).
    let (mut h, mut ram) = setup(&prog);
    csrw(&mut h, 0x7a0, 1);
    csrw(&mut h, 0x7a2, BASE + 0x204);
    csrw(&mut h, 0x7a1, T6 | M | LD | (5 << 16));
    h.run(&mut ram, &mut bus, 3);
    assert_eq!(
        (h.csr.mcause, h.csr.mtval, h.csr.mepc, h.icount, h.x[6]),
        (3, BASE + 0x208, BASE + 8, 3, 0),
        "tval = max(access, trigger address); the ld did not load"
    );
    // Store trigger, size any: fires only for an access touching tdata2.
    let (mut h, mut ram) = setup(&prog);
    csrw(&mut h, 0x7a2, BASE + 0x217);
    csrw(&mut h, 0x7a1, T2 | M | ST);
    h.run(&mut ram, &mut bus, 4);
    assert_eq!(
        (h.csr.mcause, h.csr.mtval, h.csr.mepc, h.icount),
        (3, BASE + 0x217, BASE + 12, 4)
    );
    let (mut h, mut ram) = setup(&prog);
    csrw(&mut h, 0x7a2, BASE + 0x218);
    csrw(&mut h, 0x7a1, T2 | M | ST);
    h.run(&mut ram, &mut bus, 5);
    assert_eq!((h.icount, h.pc), (5, BASE + 20), "no access touches it");
    // In S the M-only trigger does not fire; the mode is checked when it matches.
    let (mut h, mut ram) = setup(&prog);
    csrw(&mut h, 0x7a2, BASE + 0x217);
    csrw(&mut h, 0x7a1, T2 | M | ST);
    h.csr.pmpaddr[0] = u64::MAX;
    h.csr.pmpcfg[0] = 0x1f;
    h.csr.pmp_update_all();
    h.prv = Priv::S;
    h.run(&mut ram, &mut bus, 5);
    assert_eq!((h.icount, h.pc), (5, BASE + 20));
}
