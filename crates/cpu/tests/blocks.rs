//! Basic-block execution: entry in the middle of a decoded block, early exits from the middle
//! of a block (exact pc, count and trap state), and budgets that end inside a block.

mod asm;

use asm::*;
use rewind_cpu::csr::CsrOp;
use rewind_cpu::{ExitReason, Hart, Ram};

const BASE: u64 = 0x8000_0000;

fn setup(words: &[u32]) -> (Hart, Ram) {
    let mut p = Prog::new();
    for &w in words {
        p.w(w);
    }
    let mut ram = Ram::new(BASE, 1 << 20);
    ram.write(BASE, &p.bytes).unwrap();
    (Hart::new(0, BASE, 0), ram)
}

#[test]
fn entering_a_block_in_the_middle_keeps_pc_relative_ops_right() {
    let words = [
        addi(9, 0, 3),    // 0
        auipc(6, 0),      // 4
        auipc(7, 0x1000), // 8: re-entered by the branch (the middle of the block at 0)
        addi(8, 8, 1),    // 12
        blt(8, 9, -8),    // 16
        jal(0, 0),        // 20
    ];
    let (mut h, mut ram) = setup(&words);
    assert_eq!(h.run(&mut ram, &mut NoDevices, 11), ExitReason::Budget);
    assert_eq!((h.pc, h.icount), (BASE + 20, 11));
    assert_eq!((h.x[6], h.x[7], h.x[8]), (BASE + 4, BASE + 8 + 0x1000, 3));
}

#[test]
fn every_budget_inside_a_block_stops_exactly() {
    let words = [
        addi(5, 0, 1),
        addi(6, 5, 1),
        addi(7, 6, 1),
        addi(8, 7, 1),
        addi(9, 8, 1),
        jal(0, -20),
    ];
    for n in 0..=13u64 {
        let (mut h, mut ram) = setup(&words);
        assert_eq!(h.run(&mut ram, &mut NoDevices, n), ExitReason::Budget);
        let k = n % 6;
        assert_eq!((h.icount, h.pc), (n, BASE + 4 * k), "budget {n}");
        // Step the rest one by one: same state as one run.
        let (mut one, mut ram1) = setup(&words);
        for _ in 0..n {
            one.run(&mut ram1, &mut NoDevices, 1);
        }
        assert_eq!(
            (one.pc, one.icount, one.x),
            (h.pc, h.icount, h.x),
            "budget {n}"
        );
    }
}

#[test]
fn fault_in_the_middle_of_a_block_reports_its_pc_and_count() {
    // mtvec = BASE + 0x100 (a spin loop); then a load from an unmapped address mid-block.
    let mut words = vec![
        auipc(5, 0),
        addi(5, 5, 0x100),
        csr(1, 0, 5, 0x305),
        addi(10, 0, 1),
        lui(11, 0x2000_0000), // 16: unmapped (neither RAM nor a device)
        ld(12, 11, 8),        // 20: faults
        addi(13, 0, 1),
    ];
    words.resize(0x100 / 4, addi(0, 0, 0));
    words.push(jal(0, 0));
    let (mut h, mut ram) = setup(&words);
    assert_eq!(h.run(&mut ram, &mut NoDevices, 10), ExitReason::Budget);
    let csr = |h: &mut Hart, a| h.csr_op(&NoDevices, a, CsrOp::Set, 0, false).unwrap();
    assert_eq!(csr(&mut h, 0x341), BASE + 20, "mepc");
    assert_eq!(csr(&mut h, 0x342), 5, "mcause: load access fault");
    assert_eq!(csr(&mut h, 0x343), 0x2000_0008, "mtval");
    // 5 retired before the fault, then the spin loop for the rest of the budget.
    assert_eq!((h.pc, h.icount, h.x[10], h.x[13]), (BASE + 0x100, 10, 1, 0));
}
