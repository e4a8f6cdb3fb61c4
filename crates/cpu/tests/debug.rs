//! Debugger hooks: breakpoints stop before the instruction (also in the middle of a decoded
//! block), watchpoints stop before the accessing instruction executes (as RISC-V debug triggers
//! do, which gdb expects), `skip_breakpoint_once` / `skip_debug_once` resume past them, neither
//! changes what the guest computes, and `debug_translate` walks page tables without side
//! effects.

mod asm;

use asm::*;
use rewind_cpu::csr::{CsrOp, MSTATUS_FS, MSTATUS_MXR};
use rewind_cpu::{DebugHit, ExitReason, Hart, Mmio, MmioFault, Priv, Ram, WatchKind, Watchpoint};

const BASE: u64 = 0x8000_0000;
const DATA: u64 = BASE + 0x1000;
const DEV: u64 = 0x1000_0000;

/// One device page at `DEV` that accepts everything; every other MMIO access faults.
#[derive(Default)]
struct Bus {
    loads: Vec<u64>,
    stores: Vec<(u64, u64)>,
}

impl Mmio for Bus {
    fn load(&mut self, _: &mut Ram, pa: u64, _: u8, _: u64) -> Result<u64, MmioFault> {
        if (DEV..DEV + 0x1000).contains(&pa) {
            self.loads.push(pa);
            Ok(0x42)
        } else {
            Err(MmioFault)
        }
    }
    fn store(&mut self, _: &mut Ram, pa: u64, _: u8, v: u64, _: u64) -> Result<(), MmioFault> {
        if (DEV..DEV + 0x1000).contains(&pa) {
            self.stores.push((pa, v));
            Ok(())
        } else {
            Err(MmioFault)
        }
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}

fn setup(p: &Prog) -> (Hart, Ram, Bus) {
    let mut ram = Ram::new(BASE, 4 << 20);
    ram.write(BASE, &p.bytes).unwrap();
    let mut h = Hart::new(0, BASE, 0);
    h.csr.mstatus |= MSTATUS_FS;
    (h, ram, Bus::default())
}

fn words(ws: &[u32]) -> Prog {
    let mut p = Prog::new();
    for &w in ws {
        p.w(w);
    }
    p
}

/// c.sw rs2', 0(rs1') (registers x8..x15).
fn c_sw0(rs2: u32, rs1: u32) -> u16 {
    (0b110 << 13 | (rs1 - 8) << 7 | (rs2 - 8) << 2) as u16
}

fn rd64(ram: &Ram, pa: u64) -> u64 {
    let mut b = [0u8; 8];
    ram.read(pa, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn wr64(ram: &mut Ram, pa: u64, v: u64) {
    ram.write(pa, &v.to_le_bytes()).unwrap();
}

/// Five increments of x5 and a jump back: one block of six instructions.
fn loop6() -> Prog {
    words(&[
        addi(5, 5, 1),
        addi(5, 5, 1),
        addi(5, 5, 1),
        addi(5, 5, 1),
        addi(5, 5, 1),
        jal(0, -20),
    ])
}

#[test]
fn breakpoint_in_the_middle_of_a_decoded_block_stops_before_it() {
    for k in 0..6u64 {
        let (mut h, mut ram, mut bus) = setup(&loop6());
        // Decode the block first (and leave the pc at its start).
        assert_eq!(h.run(&mut ram, &mut bus, 12), ExitReason::Budget);
        assert_eq!((h.pc, h.icount), (BASE, 12));
        let bp = BASE + 4 * k;
        h.set_breakpoints(&[bp]);
        if k == 0 {
            // A breakpoint at the first instruction of a run stops at once.
            assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
            assert_eq!(h.icount, 12);
            assert_eq!(h.take_debug_hit(), Some(DebugHit::Breakpoint { pc: bp }));
            h.skip_breakpoint_once();
        }
        assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug, "k {k}");
        let want = if k == 0 { 18 } else { 12 + k };
        assert_eq!((h.pc, h.icount), (bp, want), "k {k}");
        // Five increments per turn of six instructions.
        assert_eq!(h.x[5], want / 6 * 5 + (want % 6).min(5), "k {k}");
        assert_eq!(h.take_debug_hit(), Some(DebugHit::Breakpoint { pc: bp }));
        assert_eq!(h.take_debug_hit(), None, "a hit is taken once");
    }
}

#[test]
fn skip_once_resumes_and_is_cleared_by_the_next_run() {
    let (mut h, mut ram, mut bus) = setup(&loop6());
    let bp = BASE + 12;
    h.set_breakpoints(&[bp, bp, BASE + 0x800]);
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount, h.x[5]), (bp, 3, 3));
    // Without skip: no progress.
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount), (bp, 3));
    assert_eq!(h.take_debug_hit(), Some(DebugHit::Breakpoint { pc: bp }));
    // Skip: one loop turn later, at the same breakpoint.
    h.skip_breakpoint_once();
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount, h.x[5]), (bp, 9, 8));
    // A skip is consumed by the next run even if that run executes nothing.
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 0), ExitReason::Budget);
    assert_eq!(h.take_debug_hit(), None);
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!(h.icount, 9);
    // A skip at a pc without a breakpoint changes nothing; the next breakpoint in the block
    // stops.
    h.skip_breakpoint_once();
    h.set_breakpoints(&[BASE + 16]);
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount), (BASE + 16, 10));
    // Budget ends before the breakpoint, the next run stops at it.
    h.set_breakpoints(&[BASE + 8]);
    h.skip_breakpoint_once();
    assert_eq!(h.run(&mut ram, &mut bus, 3), ExitReason::Budget);
    assert_eq!((h.pc, h.icount), (BASE + 4, 13));
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount), (BASE + 8, 14));
    // `skip_debug_once` passes a breakpoint too: one loop turn later, at the same breakpoint.
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Debug);
    assert_eq!((h.pc, h.icount), (BASE + 8, 20));
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Breakpoint { pc: BASE + 8 })
    );
    // Cleared hooks: runs on.
    h.set_breakpoints(&[]);
    assert_eq!(h.run(&mut ram, &mut bus, 100), ExitReason::Budget);
    assert_eq!(h.icount, 120);
}

/// One block touching memory in many ways (x10 = DATA, x11 = DATA+32, x14 = DATA+48).
/// Returns the program and, per instruction, its offset.
fn mem_prog() -> (Prog, Vec<u64>) {
    fn w(p: &mut Prog, at: &mut Vec<u64>, x: u32) {
        at.push(p.here() as u64);
        p.w(x);
    }
    let mut p = Prog::new();
    let mut at = vec![];
    w(&mut p, &mut at, addi(5, 0, 7)); // 0
    w(&mut p, &mut at, sw(5, 10, 8)); // 1: store 4 at DATA+8
    w(&mut p, &mut at, addi(6, 0, 1)); // 2
    w(&mut p, &mut at, ld(7, 10, 16)); // 3: load 8 at DATA+16
    w(&mut p, &mut at, sd(5, 10, 24)); // 4: store 8 at DATA+24
    at.push(p.here() as u64);
    p.h(c_sw0(12, 11)); // 5: c.sw, store 4 at DATA+32
    w(&mut p, &mut at, fsd(1, 10, 40)); // 6: store 8 at DATA+40
    w(&mut p, &mut at, amo(0x00, 3, 8, 14, 5)); // 7: amoadd.d at DATA+48
    w(&mut p, &mut at, load(2, 9, 10, 56)); // 8: lw at DATA+56
    w(&mut p, &mut at, jal(0, 0)); // 9
    (p, at)
}

fn mem_setup() -> (Hart, Ram, Bus, Vec<u64>) {
    let (p, at) = mem_prog();
    let (mut h, mut ram, bus) = setup(&p);
    h.x[10] = DATA;
    h.x[11] = DATA + 32;
    h.x[12] = 0x1234_5678;
    h.x[14] = DATA + 48;
    h.f[1] = 0x4009_21fb_5444_2d18;
    wr64(&mut ram, DATA + 16, 0xaaaa_bbbb_cccc_dddd);
    wr64(&mut ram, DATA + 48, 100);
    wr64(&mut ram, DATA + 56, 0xffff_ffff_8000_0001);
    (h, ram, bus, at)
}

/// Run `mem_prog` with one watchpoint; the hit (if any), with icount and pc at the stop.
fn watch_once(w: Watchpoint) -> (Option<(DebugHit, u64, u64)>, Hart, Ram, Bus) {
    let (mut h, mut ram, mut bus, _) = mem_setup();
    h.set_watchpoints(&[w]);
    let r = h.run(&mut ram, &mut bus, 20);
    let hit = h.take_debug_hit();
    match r {
        ExitReason::Debug => (Some((hit.unwrap(), h.icount, h.pc)), h, ram, bus),
        other => {
            assert_eq!(other, ExitReason::Budget);
            assert_eq!(hit, None);
            (None, h, ram, bus)
        }
    }
}

/// What instruction `idx` of `mem_prog` writes (registers or memory), to compare before and
/// after it executes.
fn mem_prog_effect(idx: usize, h: &Hart, ram: &Ram) -> (u64, u64) {
    match idx {
        1 => (rd64(ram, DATA + 8) & 0xffff_ffff, 0),
        3 => (h.x[7], 0),
        4 => (rd64(ram, DATA + 24), 0),
        5 => (rd64(ram, DATA + 32) & 0xffff_ffff, 0),
        6 => (rd64(ram, DATA + 40), 0),
        7 => (h.x[8], rd64(ram, DATA + 48)),
        8 => (h.x[9], 0),
        _ => unreachable!(),
    }
}

#[test]
fn watchpoints_stop_before_the_access_and_skip_debug_once_resumes() {
    let (_, at) = mem_prog();
    let wp = |addr, len, kind| Watchpoint { addr, len, kind };
    // (watch, index of the instruction that fires it, access reported, access address)
    let cases = [
        (
            wp(DATA + 8, 4, WatchKind::Write),
            1,
            WatchKind::Write,
            DATA + 8,
        ),
        (
            wp(DATA + 11, 1, WatchKind::Access),
            1,
            WatchKind::Write,
            DATA + 8,
        ),
        (
            wp(DATA + 4, 5, WatchKind::Write),
            1,
            WatchKind::Write,
            DATA + 8,
        ),
        (
            wp(DATA + 16, 8, WatchKind::Read),
            3,
            WatchKind::Read,
            DATA + 16,
        ),
        (
            wp(DATA + 23, 1, WatchKind::Access),
            3,
            WatchKind::Read,
            DATA + 16,
        ),
        (
            wp(DATA + 24, 8, WatchKind::Write),
            4,
            WatchKind::Write,
            DATA + 24,
        ),
        (
            wp(DATA + 32, 4, WatchKind::Write),
            5,
            WatchKind::Write,
            DATA + 32,
        ),
        (
            wp(DATA + 44, 2, WatchKind::Access),
            6,
            WatchKind::Write,
            DATA + 40,
        ),
        (
            wp(DATA + 48, 8, WatchKind::Read),
            7,
            WatchKind::Read,
            DATA + 48,
        ),
        (
            wp(DATA + 48, 8, WatchKind::Write),
            7,
            WatchKind::Write,
            DATA + 48,
        ),
        (
            wp(DATA + 55, 1, WatchKind::Access),
            7,
            WatchKind::Write,
            DATA + 48,
        ),
        (
            wp(DATA + 56, 4, WatchKind::Access),
            8,
            WatchKind::Read,
            DATA + 56,
        ),
    ];
    // What each accessing instruction writes, before and after it executes.
    let before_after = |idx: usize| match idx {
        1 => ((0, 0), (7, 0)),
        3 => ((0, 0), (0xaaaa_bbbb_cccc_dddd, 0)),
        4 => ((0, 0), (7, 0)),
        5 => ((0, 0), (0x1234_5678, 0)),
        6 => ((0, 0), (0x4009_21fb_5444_2d18, 0)),
        7 => ((0, 100), (100, 107)),
        8 => ((0, 0), (0xffff_ffff_8000_0001, 0)),
        _ => unreachable!(),
    };
    for (w, idx, access, addr) in cases {
        let (hit, mut h, mut ram, mut bus) = watch_once(w);
        let (hit, icount, pc) = hit.unwrap_or_else(|| panic!("{w:?} did not fire"));
        let want_hit = DebugHit::Watchpoint {
            watch: w,
            access,
            addr,
        };
        assert_eq!(hit, want_hit, "{w:?}");
        let (before, after) = before_after(idx);
        // Stopped before the accessing instruction: not counted, pc at it, no effect yet
        // (the instructions before it did run).
        assert_eq!((icount, pc), (idx as u64, BASE + at[idx]), "{w:?}");
        assert_eq!(mem_prog_effect(idx, &h, &ram), before, "{w:?}");
        assert_eq!(h.x[5], 7, "{w:?}");
        // Resuming without a skip stops again at once, with the same hit.
        assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug, "{w:?}");
        assert_eq!((h.icount, h.pc), (idx as u64, BASE + at[idx]), "{w:?}");
        assert_eq!(h.take_debug_hit(), Some(want_hit), "{w:?}");
        assert_eq!(mem_prog_effect(idx, &h, &ram), before, "{w:?}");
        // So does `skip_breakpoint_once`: it passes breakpoints only.
        h.skip_breakpoint_once();
        assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug, "{w:?}");
        assert_eq!((h.icount, h.pc), (idx as u64, BASE + at[idx]), "{w:?}");
        assert_eq!(h.take_debug_hit(), Some(want_hit), "{w:?}");
        // `skip_debug_once` executes it (and only it: no other instruction fires this watch).
        h.skip_debug_once();
        assert_eq!(h.run(&mut ram, &mut bus, 1), ExitReason::Budget, "{w:?}");
        assert_eq!(
            (h.icount, h.pc),
            (idx as u64 + 1, BASE + at[idx + 1]),
            "{w:?}"
        );
        assert_eq!(h.take_debug_hit(), None, "{w:?}");
        assert_eq!(mem_prog_effect(idx, &h, &ram), after, "{w:?}");
        assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Budget, "{w:?}");
        assert_eq!((h.icount, h.take_debug_hit()), (idx as u64 + 21, None));
    }
}

#[test]
fn the_skip_applies_to_the_first_instruction_of_the_next_run_only() {
    let (_, at) = mem_prog();
    let w = Watchpoint {
        addr: DATA + 24,
        len: 8,
        kind: WatchKind::Write,
    };
    let (hit, mut h, mut ram, mut bus) = watch_once(w);
    assert!(hit.is_some());
    assert_eq!(h.take_debug_hit(), None, "taken by watch_once");
    // A skip is consumed by the next run even if that run executes nothing.
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 0), ExitReason::Budget);
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!((h.icount, h.pc), (4, BASE + at[4]));
    assert_eq!(rd64(&ram, DATA + 24), 0);
    // A skip taken at another pc does not apply.
    h.skip_debug_once();
    h.pc = BASE + at[3];
    h.icount = 3;
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!((h.icount, h.pc), (4, BASE + at[4]));
    assert_eq!(rd64(&ram, DATA + 24), 0);
    assert!(h.take_debug_hit().is_some());
    // The same access by a later instruction of the run is watched again.
    h.pc = BASE + at[3];
    h.icount = 3;
    h.skip_debug_once();
    h.x[10] = DATA - 8; // the ld at 3 now reads DATA+8.., the sd at 4 stores at DATA+16
    h.set_watchpoints(&[Watchpoint {
        addr: DATA + 8,
        len: 16,
        kind: WatchKind::Access,
    }]);
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!((h.icount, h.pc), (4, BASE + at[4]));
    assert_eq!(
        h.x[7], 7,
        "the skipped ld ran: it read DATA+8, where the sw stored 7"
    );
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Watchpoint {
            watch: Watchpoint {
                addr: DATA + 8,
                len: 16,
                kind: WatchKind::Access,
            },
            access: WatchKind::Write,
            addr: DATA + 16,
        })
    );
    assert_eq!(rd64(&ram, DATA + 16), 0xaaaa_bbbb_cccc_dddd);
}

#[test]
fn a_breakpoint_on_a_watched_access_stops_twice() {
    let (_, at) = mem_prog();
    let (mut h, mut ram, mut bus, _) = mem_setup();
    let w = Watchpoint {
        addr: DATA + 24,
        len: 8,
        kind: WatchKind::Write,
    };
    h.set_breakpoints(&[BASE + at[4]]);
    h.set_watchpoints(&[w]);
    let bp = DebugHit::Breakpoint { pc: BASE + at[4] };
    let wh = DebugHit::Watchpoint {
        watch: w,
        access: WatchKind::Write,
        addr: DATA + 24,
    };
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!(
        (h.icount, h.pc, h.take_debug_hit()),
        (4, BASE + at[4], Some(bp))
    );
    // Without a skip the breakpoint stops again; past it, the watchpoint stops.
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!(h.take_debug_hit(), Some(bp));
    h.skip_breakpoint_once();
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!(
        (h.icount, h.pc, h.take_debug_hit()),
        (4, BASE + at[4], Some(wh))
    );
    assert_eq!(rd64(&ram, DATA + 24), 0);
    // The breakpoint is checked first.
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Debug);
    assert_eq!(h.take_debug_hit(), Some(bp));
    // `skip_debug_once` passes both.
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 20), ExitReason::Budget);
    assert_eq!((h.icount, h.take_debug_hit()), (24, None));
    assert_eq!(rd64(&ram, DATA + 24), 7);
}

#[test]
fn watchpoints_that_do_not_match_do_not_fire() {
    let wp = |addr, len, kind| Watchpoint { addr, len, kind };
    for w in [
        wp(DATA + 12, 4, WatchKind::Access), // between sw and ld
        wp(DATA + 8, 4, WatchKind::Read),    // only stored to
        wp(DATA + 16, 8, WatchKind::Write),  // only loaded from
        wp(DATA + 60, 100, WatchKind::Access),
        wp(DATA, 8, WatchKind::Access),
        wp(BASE, 0x40, WatchKind::Access), // instruction fetches never fire
    ] {
        let (hit, h, _, _) = watch_once(w);
        assert_eq!(hit, None, "{w:?}");
        assert_eq!(h.icount, 20);
    }
}

#[test]
fn lr_and_sc_fire_for_what_they_access() {
    let prog = words(&[
        amo(0x02, 3, 5, 10, 0),  // lr.d x5, (x10)
        amo(0x03, 3, 6, 10, 7),  // sc.d x6, x7, (x10): succeeds
        amo(0x03, 3, 28, 10, 7), // sc.d x28, x7, (x10): no reservation, fails
        jal(0, 0),
    ]);
    let run = |w: Watchpoint| {
        let (mut h, mut ram, mut bus) = setup(&prog);
        h.x[10] = DATA;
        h.x[7] = 9;
        (h.x[5], h.x[6], h.x[28]) = (0x55, 0x66, 0x77);
        wr64(&mut ram, DATA, 0x1234);
        h.set_watchpoints(&[w]);
        let mut hits = vec![];
        while h.icount < 10 {
            if h.run(&mut ram, &mut bus, 10 - h.icount) == ExitReason::Debug {
                let Some(DebugHit::Watchpoint {
                    watch,
                    access,
                    addr,
                }) = h.take_debug_hit()
                else {
                    panic!("not a watchpoint hit");
                };
                assert_eq!((watch, addr), (w, DATA));
                assert_eq!(h.pc, BASE + 4 * h.icount);
                // Nothing of the accessing instruction happened yet.
                let state = (h.x[5], h.x[6], h.x[28], rd64(&ram, DATA));
                let want = match h.icount {
                    0 => (0x55, 0x66, 0x77, 0x1234),
                    1 => (0x1234, 0x66, 0x77, 0x1234),
                    2 => (0x1234, 0, 0x77, 9),
                    _ => panic!("hit at {}", h.icount),
                };
                assert_eq!(state, want, "hit at {}", h.icount);
                hits.push((h.icount, access));
                h.skip_debug_once();
            }
        }
        // The stops do not break the reservation: the first SC still succeeds.
        assert_eq!(
            (h.x[5], h.x[6], h.x[28], rd64(&ram, DATA)),
            (0x1234, 0, 1, 9)
        );
        hits
    };
    let w = |kind| Watchpoint {
        addr: DATA,
        len: 8,
        kind,
    };
    assert_eq!(run(w(WatchKind::Read)), [(0, WatchKind::Read)]);
    // An SC fires a write watch whether or not it succeeds.
    assert_eq!(
        run(w(WatchKind::Write)),
        [(1, WatchKind::Write), (2, WatchKind::Write)]
    );
    assert_eq!(
        run(w(WatchKind::Access)),
        [
            (0, WatchKind::Read),
            (1, WatchKind::Write),
            (2, WatchKind::Write)
        ]
    );
}

#[test]
fn a_trapping_access_fires_first_and_traps_on_resume() {
    for (insn, access, cause) in [
        (sw(5, 15, 0), WatchKind::Write, 7),     // store access fault
        (load(2, 6, 15, 0), WatchKind::Read, 5), // load access fault
    ] {
        let mut p = words(&[
            addi(7, 0, 1), // 0
            insn,          // 4: x15 = unmapped device address: access fault
            addi(7, 0, 2), // 8 (not reached)
            jal(0, 0),     // 12
        ]);
        p.bytes.resize(0x100, 0);
        p.w(jal(0, 0)); // trap vector
        let (mut h, mut ram, mut bus) = setup(&p);
        h.csr.mtvec = BASE + 0x100;
        h.x[5] = 0x55;
        h.x[15] = 0x2000_0000;
        let w = Watchpoint {
            addr: 0x2000_0000,
            len: 4,
            kind: WatchKind::Access,
        };
        h.set_watchpoints(&[w]);
        assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Debug);
        assert_eq!(
            h.take_debug_hit(),
            Some(DebugHit::Watchpoint {
                watch: w,
                access,
                addr: 0x2000_0000
            })
        );
        // Not trapped yet.
        assert_eq!((h.icount, h.pc, h.x[7]), (1, BASE + 4, 1));
        assert_eq!((h.csr.mcause, h.csr.mepc), (0, 0));
        // Resumed: the instruction traps (and retires nothing).
        h.skip_debug_once();
        assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Budget);
        assert_eq!(h.take_debug_hit(), None);
        assert_eq!((h.csr.mcause, h.csr.mepc), (cause, BASE + 4));
        assert_eq!((h.icount, h.pc, h.x[7], h.x[6]), (11, BASE + 0x100, 1, 0));
    }
}

#[test]
fn mmio_accesses_fire_before_the_device_sees_them() {
    let p = words(&[sw(5, 15, 4), load(2, 6, 15, 8), jal(0, 0)]);
    let (mut h, mut ram, mut bus) = setup(&p);
    h.x[5] = 0x55;
    h.x[15] = DEV;
    let w = Watchpoint {
        addr: DEV,
        len: 16,
        kind: WatchKind::Access,
    };
    h.set_watchpoints(&[w]);
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Debug);
    assert_eq!((h.icount, h.pc), (0, BASE));
    assert!(bus.stores.is_empty());
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Watchpoint {
            watch: w,
            access: WatchKind::Write,
            addr: DEV + 4
        })
    );
    // Resumed: the store reaches the device (and yields, as MMIO stores do).
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Yield);
    assert_eq!((h.icount, h.pc), (1, BASE + 4));
    assert_eq!(bus.stores, [(DEV + 4, 0x55)]);
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Debug);
    assert_eq!((h.icount, h.pc, h.x[6]), (1, BASE + 4, 0));
    assert!(
        bus.loads.is_empty(),
        "the device read is not done at the hit"
    );
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Watchpoint {
            watch: w,
            access: WatchKind::Read,
            addr: DEV + 8
        })
    );
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Budget);
    assert_eq!((h.icount, h.pc, h.x[6]), (11, BASE + 8, 0x42));
    assert_eq!(bus.loads, [DEV + 8]);
    assert_eq!(bus.stores.len(), 1);
}

/// A loop of loads, stores, an AMO, FP accesses and a compressed store (x9 = iterations).
fn busy_loop() -> Prog {
    let mut p = Prog::new();
    p.w(addi(5, 5, 1)); // 0
    p.w(sw(5, 10, 0)); // 4
    p.w(ld(6, 10, 0)); // 8
    p.w(add(7, 7, 6)); // 12
    p.w(amo(0x00, 3, 8, 14, 5)); // 16: amoadd.d x8, x5, (x14)
    p.h(c_sw0(12, 11)); // 20
    p.w(addi(12, 12, 3)); // 22
    p.w(fsd(1, 10, 8)); // 26
    p.w(fld(2, 10, 8)); // 30
    p.w(sd(7, 10, 16)); // 34
    p.w(blt(5, 9, -38)); // 38
    p.w(jal(0, 0)); // 42
    p
}

#[test]
fn hooks_do_not_change_what_the_guest_computes() {
    let init = || {
        let (mut h, ram, bus) = setup(&busy_loop());
        h.x[9] = 50;
        h.x[10] = DATA;
        h.x[11] = DATA + 32;
        h.x[14] = DATA + 48;
        h.f[1] = 0x3ff0_0000_0000_0000;
        (h, ram, bus)
    };
    const N: u64 = 1000;
    let (mut plain, mut plain_ram, mut bus) = init();
    assert_eq!(plain.run(&mut plain_ram, &mut bus, N), ExitReason::Budget);

    let (mut h, mut ram, mut bus) = init();
    // The breakpoint at 4 is on the watched sw: it stops there twice per turn.
    h.set_breakpoints(&[BASE + 4, BASE + 12, BASE + 22, BASE + 38]);
    let watches = [
        Watchpoint {
            addr: DATA,
            len: 4,
            kind: WatchKind::Write,
        },
        Watchpoint {
            addr: DATA + 8,
            len: 8,
            kind: WatchKind::Read,
        },
        Watchpoint {
            addr: DATA + 48,
            len: 1,
            kind: WatchKind::Access,
        },
    ];
    h.set_watchpoints(&watches);
    // (pc, hit) in order.
    let mut hits = vec![];
    while h.icount < N {
        let before = h.icount;
        match h.run(&mut ram, &mut bus, N - h.icount) {
            ExitReason::Debug => {
                let hit = h.take_debug_hit().expect("Debug exit without a hit");
                match hit {
                    DebugHit::Breakpoint { pc } => {
                        assert_eq!(pc, h.pc);
                        h.skip_breakpoint_once();
                    }
                    DebugHit::Watchpoint { .. } => h.skip_debug_once(),
                }
                // Every stop but the first makes progress (a skip never stops at once).
                assert!(hits.is_empty() || h.icount > before || h.pc == BASE + 4);
                hits.push((h.pc - BASE, hit));
            }
            r => assert_eq!(r, ExitReason::Budget),
        }
    }
    let bp = |pc| DebugHit::Breakpoint { pc: BASE + pc };
    let wh = |w: usize, access, addr| DebugHit::Watchpoint {
        watch: watches[w],
        access,
        addr,
    };
    let turn = [
        (4, bp(4)),
        (4, wh(0, WatchKind::Write, DATA)),
        (12, bp(12)),
        (16, wh(2, WatchKind::Write, DATA + 48)),
        (22, bp(22)),
        (30, wh(1, WatchKind::Read, DATA + 8)),
        (38, bp(38)),
    ];
    assert_eq!(hits.len(), 7 * 50);
    for (k, c) in hits.chunks(7).enumerate() {
        assert_eq!(c, turn, "turn {k}");
    }
    assert_eq!(
        (h.pc, h.icount, h.x, h.f),
        (plain.pc, plain.icount, plain.x, plain.f)
    );
    assert_eq!(h.save_state(), plain.save_state());
    let mut a = vec![0u8; 0x1000];
    let mut b = vec![0u8; 0x1000];
    ram.read(DATA, &mut a).unwrap();
    plain_ram.read(DATA, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(rd64(&ram, DATA + 48), (1..=50).sum::<u64>());

    // Hooks are not state: they survive a restore.
    let s = plain.save_state();
    h.restore_state(&s);
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Budget);
    h.pc = BASE;
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Debug);
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Breakpoint { pc: BASE + 4 })
    );
}

// Sv39 page tables for debug_translate.
const ROOT: u64 = BASE + 0x10_0000;
const L1: u64 = BASE + 0x10_1000;
const L0: u64 = BASE + 0x10_2000;
const V: u64 = 1;
const R: u64 = 2;
const W: u64 = 4;
const X: u64 = 8;
const U: u64 = 16;
const A: u64 = 64;
const D: u64 = 128;
const VA: u64 = 0x4000_0000;
const PA: u64 = BASE + 0x20_0000;

fn pte(pa: u64, flags: u64) -> u64 {
    (pa >> 12) << 10 | flags
}

#[test]
fn debug_translate_walks_without_side_effects() {
    let (mut h, mut ram, bus) = setup(&Prog::new());
    wr64(&mut ram, ROOT + 8, pte(L1, V));
    wr64(&mut ram, L1, pte(L0, V));
    wr64(&mut ram, ROOT + 2 * 8, pte(BASE, V | R | W | X | A | D)); // gigapage identity
    wr64(&mut ram, L0, pte(PA, V | R | W)); // no A/D yet
    wr64(&mut ram, L0 + 8, pte(PA + 0x1000, V | R | U));
    wr64(&mut ram, L0 + 16, pte(PA + 0x2000, V | X));
    wr64(&mut ram, L0 + 24, pte(PA + 0x3000, R | W)); // invalid
                                                      // PMP open for S/U, then Sv39.
    h.csr_op(&bus, 0x3b0, CsrOp::Write, u64::MAX, true).unwrap();
    h.csr_op(&bus, 0x3a0, CsrOp::Write, 0x1f, true).unwrap();
    h.csr_op(&bus, 0x180, CsrOp::Write, 8 << 60 | ROOT >> 12, true)
        .unwrap();

    // M-mode: identity, whatever satp says.
    assert_eq!(h.debug_translate(&ram, VA + 5), Some(VA + 5));
    assert_eq!(h.debug_translate(&ram, 0x1_2345), Some(0x1_2345));

    h.prv = Priv::S;
    assert_eq!(h.debug_translate(&ram, VA + 0x123), Some(PA + 0x123));
    assert_eq!(
        h.debug_translate(&ram, BASE + 0x4_5678),
        Some(BASE + 0x4_5678)
    );
    // A user page is visible from S without SUM; execute-only needs MXR; invalid is None.
    assert_eq!(h.debug_translate(&ram, VA + 0x1008), Some(PA + 0x1008));
    assert_eq!(h.debug_translate(&ram, VA + 0x2000), None);
    assert_eq!(h.debug_translate(&ram, VA + 0x3000), None);
    assert_eq!(h.debug_translate(&ram, VA + 0x8000), None); // L0 entry zero
    assert_eq!(h.debug_translate(&ram, 0x40_0000_0000), None); // not canonical
    h.csr.mstatus |= MSTATUS_MXR;
    assert_eq!(h.debug_translate(&ram, VA + 0x2010), Some(PA + 0x2010));
    h.csr.mstatus &= !MSTATUS_MXR;
    // No A/D update.
    assert_eq!(rd64(&ram, L0) & (A | D), 0);
    assert_eq!(rd64(&ram, L0 + 8) & (A | D), 0);

    // U: user pages only.
    h.prv = Priv::U;
    assert_eq!(h.debug_translate(&ram, VA + 0x1008), Some(PA + 0x1008));
    assert_eq!(h.debug_translate(&ram, VA), None);
    h.prv = Priv::S;

    // No TLB fill: remapping the page without sfence.vma is seen by the next real load.
    let mut bus = bus;
    wr64(&mut ram, PA + 0x5000, 0x5555);
    wr64(&mut ram, PA + 0x6000, 0x6666);
    wr64(&mut ram, L0, pte(PA + 0x5000, V | R | W));
    assert_eq!(h.load(&mut ram, &mut bus, VA, 8), Ok(0x5555));
    assert_eq!(rd64(&ram, L0) & (A | D), A, "the real load sets A");
    // And no TLB use: debug_translate reads the page table even where the TLB is stale.
    wr64(&mut ram, L0, pte(PA + 0x6000, V | R | W));
    assert_eq!(h.debug_translate(&ram, VA + 8), Some(PA + 0x6008));
    assert_eq!(
        h.load(&mut ram, &mut bus, VA, 8),
        Ok(0x5555),
        "stale TLB entry kept"
    );
    assert_eq!(rd64(&ram, L0) & (A | D), 0);
}

#[test]
fn a_watched_store_into_the_running_block_executes_the_new_code_on_resume() {
    let p = words(&[
        addi(7, 0, 1),  // 0
        sw(5, 10, 12),  // 4: overwrite the instruction at 12
        addi(28, 0, 1), // 8
        addi(6, 0, 1),  // 12: becomes addi x6, x0, 2
        jal(0, 0),      // 16
    ]);
    let (mut h, mut ram, mut bus) = setup(&p);
    // Decode the block (storing elsewhere), then go back to its start.
    h.x[10] = DATA;
    assert_eq!(h.run(&mut ram, &mut bus, 6), ExitReason::Budget);
    assert_eq!(h.x[6], 1);
    (h.pc, h.icount, h.x[6], h.x[7], h.x[28]) = (BASE, 0, 0, 0, 0);
    h.x[10] = BASE;
    h.x[5] = addi(6, 0, 2) as u64;
    let w = Watchpoint {
        addr: BASE + 12,
        len: 4,
        kind: WatchKind::Write,
    };
    h.set_watchpoints(&[w]);
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Debug);
    assert_eq!(
        h.take_debug_hit(),
        Some(DebugHit::Watchpoint {
            watch: w,
            access: WatchKind::Write,
            addr: BASE + 12
        })
    );
    // Stopped before the store: the code is still the old one.
    assert_eq!((h.icount, h.pc, h.x[7]), (1, BASE + 4, 1));
    let mut insn = [0u8; 4];
    ram.read(BASE + 12, &mut insn).unwrap();
    assert_eq!(u32::from_le_bytes(insn), addi(6, 0, 1));
    // Resume with the watchpoint still set: the store is done and the new code runs.
    h.skip_debug_once();
    assert_eq!(h.run(&mut ram, &mut bus, 10), ExitReason::Budget);
    assert_eq!(h.take_debug_hit(), None);
    assert_eq!((h.icount, h.pc), (11, BASE + 16));
    assert_eq!((h.x[6], h.x[28]), (2, 1));
    // The block at 0 (decoded before the store) runs the new instruction too.
    (h.pc, h.x[6], h.x[10]) = (BASE, 0, DATA);
    assert_eq!(h.run(&mut ram, &mut bus, 4), ExitReason::Budget);
    assert_eq!(h.x[6], 2);
}
