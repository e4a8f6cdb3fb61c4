//! Debugging sessions over a real replay of the demo guest: seeks and reverse steps reach the
//! continuous replay's states, breakpoints and watchpoints are found again going backwards,
//! replay breaks stop exactly, writes are refused outside `run` mode, snapshots round-trip.

#[allow(dead_code)]
mod common;
use common::{demo_config, embedded, record_demo, record_demo_with, replayer, CHECKS, DEMO};

use std::path::{Path, PathBuf};

use rewind_cpu::{WatchKind, Watchpoint};
use rewind_debug::session::BreakKind;
use rewind_debug::{Session, SessionError, StopReason};
use rewind_log::TraceWriter;
use rewind_machine::record::prepare_recording;
use rewind_machine::seek::Seeker;
use rewind_machine::{CheckSettings, Machine, RunOutcome, SnapshotError};

fn session(path: &Path, interval: u64) -> Session {
    let seeker = Seeker::new(replayer(path), interval).unwrap();
    Session::new(seeker, Some(path.to_path_buf()))
}

/// A recorded demo trace and the length of its replay.
struct Trace {
    _dir: tempfile::TempDir,
    path: PathBuf,
    total: u64,
    final_hash: u64,
}

fn recorded() -> Trace {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.rwtrace");
    record_demo(&path);
    let mut m = replayer(&path);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    m.finish_replay().unwrap();
    Trace {
        _dir: dir,
        path,
        total: m.icount(),
        final_hash: m.state_hash(),
    }
}

/// Snapshot interval giving about 16 snapshots over the trace.
fn interval(t: &Trace) -> u64 {
    (t.total / 16).max(1)
}

/// Deterministic pseudo-random numbers (xorshift64*), seeded per test.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The address of symbol `name` in an ELF64 little-endian image.
fn symbol(elf: &[u8], name: &str) -> u64 {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap());
    let shoff = u64_at(0x28) as usize;
    let (shentsize, shnum) = (u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| shoff + i * shentsize;
    for i in 0..shnum {
        let sh = section(i);
        if u32_at(sh + 4) != 2 {
            continue; // not SHT_SYMTAB
        }
        let (off, size) = (u64_at(sh + 0x18) as usize, u64_at(sh + 0x20) as usize);
        let strtab = u64_at(section(u32_at(sh + 0x28)) + 0x18) as usize;
        for sym in (off..off + size).step_by(24) {
            let n = strtab + u32_at(sym);
            let end = n + elf[n..].iter().position(|&b| b == 0).unwrap();
            if &elf[n..end] == name.as_bytes() {
                return u64_at(sym + 8);
            }
        }
    }
    panic!("no symbol {name}");
}

/// A breakpoint or watchpoint stop seen going forward: where, and the registers there.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    icount: u64,
    reason: StopReason,
    pc: u64,
    x: [u64; 32],
}

fn seen(s: &Session, reason: StopReason) -> Seen {
    let h = s.machine().hart();
    Seen {
        icount: s.icount(),
        reason,
        pc: h.pc,
        x: h.x,
    }
}

/// Resume with `budget` until the guest ends, collecting the stops on the way.
fn run_forward(s: &mut Session, budget: u64) -> (Vec<Seen>, RunOutcome) {
    let mut stops = Vec::new();
    loop {
        match s.resume(budget).unwrap() {
            None => {}
            Some(StopReason::Ended(o)) => return (stops, o),
            Some(r) => stops.push(seen(s, r)),
        }
    }
}

#[test]
fn seeks_in_random_order_reach_the_continuous_replay_states() {
    let t = recorded();
    let mut rng = Rng(0x5e55_0001 ^ t.total);
    let mut targets: Vec<u64> = (0..24).map(|_| rng.below(t.total + 1)).collect();
    targets.extend([0, 1, t.total - 1, t.total]);
    // The continuous replay's state at each target.
    let mut sorted = targets.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let mut cont = replayer(&t.path);
    let mut expect = std::collections::HashMap::new();
    for &n in &sorted {
        let now = cont.icount();
        if n > now {
            cont.run(Some(n - now)).unwrap();
        }
        assert_eq!(cont.icount(), n);
        let ram = digest(cont.ram().as_slice());
        expect.insert(n, (cont.state_hash(), ram));
    }

    let mut s = session(&t.path, interval(&t));
    for &n in &targets {
        assert_eq!(
            s.seek(n).unwrap(),
            StopReason::SeekDone { icount: n },
            "seek {n}"
        );
        let m = s.machine();
        let got = (m.state_hash(), digest(m.ram().as_slice()));
        assert_eq!(got, expect[&n], "state after seeking to {n}");
    }
}

/// A cheap, order-sensitive digest of RAM (FNV-1a over 8-byte words).
fn digest(bytes: &[u8]) -> u64 {
    bytes.chunks(8).fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        (h ^ u64::from_le_bytes(w)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn reverse_steps_land_on_the_previous_instruction() {
    let t = recorded();
    let mut rng = Rng(0x5e55_0002 ^ t.total);
    let mut starts: Vec<u64> = (0..6).map(|_| 5 + rng.below(t.total - 5)).collect();
    starts.push(t.total);
    starts.sort_unstable();
    // The continuous replay's pc and state at start-5 ..= start.
    let mut cont = replayer(&t.path);
    let mut expect = std::collections::HashMap::new();
    for &st in &starts {
        for n in st - 5..=st {
            let now = cont.icount();
            if n > now {
                cont.run(Some(n - now)).unwrap();
            }
            if cont.icount() == n {
                expect.insert(n, (cont.hart().pc, cont.state_hash()));
            }
        }
    }
    let mut s = session(&t.path, interval(&t));
    // Latest first: each sequence starts past where the previous one left the machine.
    for &st in starts.iter().rev() {
        s.seek(st).unwrap();
        for n in (st - 5..st).rev() {
            assert_eq!(s.reverse_step().unwrap(), StopReason::Step);
            assert_eq!(s.icount(), n);
            let h = s.machine().hart();
            assert_eq!((h.pc, s.machine().state_hash()), expect[&n], "at {n}");
        }
        // And forward again by one step: the state the reverse step left from.
        assert_eq!(s.step().unwrap(), StopReason::Step);
        let n = st - 4;
        assert_eq!(s.icount(), n);
        assert_eq!(
            (s.machine().hart().pc, s.machine().state_hash()),
            expect[&n]
        );
    }
}

#[test]
fn breakpoint_hits_are_found_again_backwards() {
    let t = recorded();
    let handler = symbol(DEMO, "mtrap_handler");
    let puts = symbol(DEMO, "puts_");
    let mut s = session(&t.path, interval(&t));
    assert!(s.add_breakpoint(handler, BreakKind::Software));
    assert!(!s.add_breakpoint(handler, BreakKind::Software));
    assert!(s.add_breakpoint(puts, BreakKind::Hardware));
    // Resume from 0 to the end; every stop is at one of the breakpoints, before it executes.
    let (forward, outcome) = run_forward(&mut s, u64::MAX);
    assert_eq!(outcome, RunOutcome::Exited(0));
    assert_eq!(s.icount(), t.total);
    assert!(forward.len() >= 6, "{forward:?}");
    for f in &forward {
        let kind = if f.pc == handler {
            BreakKind::Software
        } else {
            BreakKind::Hardware
        };
        assert_eq!(f.reason, StopReason::Breakpoint { pc: f.pc, kind });
    }
    assert!(forward.iter().any(|f| f.pc == handler));
    assert!(forward.iter().any(|f| f.pc == puts));
    assert!(forward.windows(2).all(|w| w[0].icount < w[1].icount));
    // The end is sticky and the final state is the recording's.
    assert_eq!(
        s.resume(u64::MAX).unwrap(),
        Some(StopReason::Ended(RunOutcome::Exited(0)))
    );
    assert_eq!(s.ended(), Some(RunOutcome::Exited(0)));
    assert_eq!(s.machine().state_hash(), t.final_hash);

    // Backwards from the end: the same hits, latest first, with the same registers.
    for f in forward.iter().rev() {
        let r = s.reverse_continue().unwrap();
        assert_eq!(seen(&s, r), *f);
        assert_eq!(s.ended(), None);
    }
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);

    // Forward in small slices from instruction 0: the budget running out never loses a hit.
    let mut sliced = session(&t.path, interval(&t));
    sliced.add_breakpoint(handler, BreakKind::Software);
    sliced.add_breakpoint(puts, BreakKind::Hardware);
    let (again, _) = run_forward(&mut sliced, 997);
    assert_eq!(again, forward);

    // Few snapshots (a tight memory budget thins them): the same hits backwards.
    let mut thin = session(&t.path, 10_000);
    thin.add_breakpoint(handler, BreakKind::Software);
    thin.add_breakpoint(puts, BreakKind::Hardware);
    assert_eq!(
        thin.seek(t.total).unwrap(),
        StopReason::SeekDone { icount: t.total }
    );
    let (all, memory) = (
        thin.seeker().snapshot_icounts().len(),
        thin.seeker().snapshot_memory(),
    );
    thin.seeker_mut().set_budget(Some(memory / 3));
    let kept = thin.seeker().snapshot_icounts().len();
    assert!(all > 100 && kept < all / 2, "{all} -> {kept}");
    for f in forward.iter().rev() {
        let r = thin.reverse_continue().unwrap();
        assert_eq!(seen(&thin, r), *f);
    }

    // A fresh session placed far from its only snapshot (instruction 0) by a snapshot file:
    // the search scans the whole unsnapshotted stretch.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("late.rwsnap");
    s.seek(forward[7].icount + 100).unwrap();
    s.save_snapshot(&file, false).unwrap();
    let mut fresh = session(&t.path, interval(&t));
    fresh.load_snapshot(&file).unwrap();
    assert_eq!(fresh.seeker().snapshot_icounts(), vec![0]);
    fresh.add_breakpoint(handler, BreakKind::Software);
    fresh.add_breakpoint(puts, BreakKind::Hardware);
    for f in forward[..8].iter().rev() {
        let r = fresh.reverse_continue().unwrap();
        assert_eq!(seen(&fresh, r), *f);
    }

    // From the middle of a hit-free stretch: the previous hit, and removing breakpoints works.
    let mid = (forward[2].icount + forward[3].icount) / 2;
    s.seek(mid).unwrap();
    let r = s.reverse_continue().unwrap();
    assert_eq!(seen(&s, r), forward[2]);
    assert!(s.remove_breakpoint(handler, BreakKind::Software));
    assert!(!s.remove_breakpoint(handler, BreakKind::Software));
    assert!(s.remove_breakpoint(puts, BreakKind::Hardware));
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);
}

#[test]
fn watchpoints_stop_before_the_write_forward_and_backwards() {
    let t = recorded();
    let ticks = symbol(DEMO, "ticks");
    let watch = Watchpoint {
        addr: ticks,
        len: 4,
        kind: WatchKind::Write,
    };
    let read_ticks = |s: &Session| {
        let mut b = [0u8; 4];
        s.read_memory(ticks, &mut b).unwrap();
        u32::from_le_bytes(b)
    };
    let mut s = session(&t.path, interval(&t));
    assert!(s.add_watchpoint(watch));
    assert!(!s.add_watchpoint(watch));
    let (forward, outcome) = run_forward(&mut s, u64::MAX);
    assert_eq!(outcome, RunOutcome::Exited(0));
    // The value before each writing instruction and after it.
    let (before, after): (Vec<u32>, Vec<u32>) = {
        let mut c = session(&t.path, interval(&t));
        forward
            .iter()
            .map(|f| {
                c.seek(f.icount).unwrap();
                let b = read_ticks(&c);
                c.seek(f.icount + 1).unwrap();
                (b, read_ticks(&c))
            })
            .unzip()
    };
    // Zeroing .bss and `ticks = 0` write zeros; then each tick counts up by one.
    let zeros = after.iter().take_while(|&&v| v == 0).count();
    assert!(zeros >= 2, "{after:?}");
    let counted: Vec<u32> = (1..=(after.len() - zeros) as u32).collect();
    assert_eq!(after[zeros..], counted[..], "{after:?}");
    assert!(counted.len() >= 3, "{after:?}");
    // Stopped before the write: memory still held the previous value (RAM starts zeroed).
    assert_eq!(before[0], 0);
    assert_eq!(before[1..], after[..after.len() - 1]);
    for f in &forward {
        match f.reason {
            StopReason::Watchpoint {
                watch: w,
                access,
                addr,
            } => {
                assert_eq!(w, watch);
                assert_eq!(access, WatchKind::Write);
                assert!(addr <= ticks + 3 && addr + 8 > ticks, "{addr:#x}");
            }
            ref other => panic!("{other:?}"),
        }
    }

    // Backwards: before each writing instruction, the old value; one step writes the new one.
    for (k, f) in forward.iter().enumerate().rev() {
        let r = s.reverse_continue().unwrap();
        assert_eq!(r, f.reason);
        assert_eq!(s.icount(), f.icount, "hit {k}");
        assert_eq!(read_ticks(&s), before[k], "before write {k}");
        assert_eq!(
            s.step().unwrap(),
            StopReason::Step,
            "stepping the write {k}"
        );
        assert_eq!(s.icount(), f.icount + 1);
        assert_eq!(read_ticks(&s), after[k]);
        assert_eq!(s.reverse_step().unwrap(), StopReason::Step);
        assert_eq!(seen(&s, f.reason.clone()), *f);
    }
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);
    assert!(s.remove_watchpoint(watch));
    assert!(!s.remove_watchpoint(watch));
}

#[test]
fn reverse_execution_at_instruction_zero_is_history_start() {
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    assert_eq!(s.reverse_step().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);
    // No hooks at all: reverse-continue from anywhere goes back to the start.
    s.seek(t.total / 3 * 2).unwrap();
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);
}

#[test]
fn seeking_beyond_the_end_fails_in_place_and_the_session_goes_on() {
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    let err = s.seek(t.total + 1000).unwrap_err();
    match &err {
        SessionError::BeyondEnd { target, end, how } => {
            assert_eq!((*target, *end), (t.total + 1000, t.total));
            assert!(how.contains("exited with status 0"), "{how}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("beyond the end"), "{err}");
    // The failed seek left the session where it was.
    assert_eq!(s.icount(), 0);
    assert_eq!(s.ended(), None);
    // At the end, a seek past it fails and stays there; forward execution is over.
    assert_eq!(
        s.seek(t.total).unwrap(),
        StopReason::SeekDone { icount: t.total }
    );
    assert_eq!(s.machine().state_hash(), t.final_hash);
    assert!(matches!(
        s.seek(u64::MAX),
        Err(SessionError::BeyondEnd { .. })
    ));
    assert_eq!(s.icount(), t.total);
    assert_eq!(s.step().unwrap(), StopReason::Ended(RunOutcome::Exited(0)));
    assert_eq!(s.icount(), t.total);

    // Back and forward again.
    let mid = t.total / 2;
    let mut cont = replayer(&t.path);
    cont.run(Some(mid)).unwrap();
    assert_eq!(s.seek(mid).unwrap(), StopReason::SeekDone { icount: mid });
    assert_eq!(s.ended(), None);
    assert_eq!(s.machine().state_hash(), cont.state_hash());
    assert_eq!(
        s.resume(u64::MAX).unwrap(),
        Some(StopReason::Ended(RunOutcome::Exited(0)))
    );
    assert_eq!(s.icount(), t.total);
    assert_eq!(s.machine().state_hash(), t.final_hash);
    assert_eq!(
        s.seek(t.total).unwrap(),
        StopReason::SeekDone { icount: t.total }
    );
}

#[test]
fn replay_breaks_stop_exactly_once() {
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    let at = t.total / 3 + 7;
    s.set_replay_break(Some(at)).unwrap();
    assert_eq!(s.replay_break(), Some(at));
    assert_eq!(
        s.resume(u64::MAX).unwrap(),
        Some(StopReason::ReplayBreak { icount: at })
    );
    assert_eq!(s.icount(), at);
    assert_eq!(s.replay_break(), None);
    // In slices, replacing the previous break; a break behind is refused.
    s.set_replay_break(Some(at + 50_000)).unwrap();
    s.set_replay_break(Some(at + 12_345)).unwrap();
    let err = s.set_replay_break(Some(at - 1)).unwrap_err();
    assert!(matches!(err, SessionError::BreakInPast { .. }), "{err}");
    assert_eq!(s.replay_break(), Some(at + 12_345));
    let stop = loop {
        if let Some(r) = s.resume(1000).unwrap() {
            break r;
        }
    };
    assert_eq!(
        stop,
        StopReason::ReplayBreak {
            icount: at + 12_345
        }
    );
    assert_eq!(s.icount(), at + 12_345);
    // Cleared, it does not stop again.
    s.set_replay_break(Some(at + 20_000)).unwrap();
    s.set_replay_break(None).unwrap();
    assert_eq!(
        s.resume(u64::MAX).unwrap(),
        Some(StopReason::Ended(RunOutcome::Exited(0)))
    );
}

#[test]
fn writes_are_refused_while_replaying_or_recording() {
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    s.seek(1000).unwrap();
    let hash = s.machine().state_hash();
    let err = s.write_memory(0x8000_0000, &[1, 2, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::WriteRefused {
                what: "memory",
                mode: "replaying"
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cannot write memory while replaying"),
        "{err}"
    );
    let err = s.write_registers(|h| h.x[5] = 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot write registers while replaying"),
        "{err}"
    );
    assert_eq!(s.machine().state_hash(), hash);

    // Recording.
    let dir = tempfile::tempdir().unwrap();
    let mut config = demo_config();
    let header = prepare_recording(&mut config, CHECKS).unwrap();
    let w = TraceWriter::create(dir.path().join("r.rwtrace"), &header).unwrap();
    let m = Machine::record(config, w, CHECKS).unwrap();
    let mut r = Session::new(Seeker::new(m, 1_000_000).unwrap(), None);
    let err = r.write_memory(0x8000_0000, &[1]).unwrap_err();
    assert!(err.to_string().contains("while recording"), "{err}");
    assert!(matches!(
        r.write_registers(|_| {}),
        Err(SessionError::WriteRefused { .. })
    ));
    let err = r.seek(10).unwrap_err();
    assert!(
        matches!(err, SessionError::NotReplaying { mode: "record", .. }),
        "{err}"
    );
    assert!(matches!(
        r.reverse_step(),
        Err(SessionError::NotReplaying { .. })
    ));
    assert!(matches!(
        r.set_replay_break(Some(5)),
        Err(SessionError::NotReplaying { .. })
    ));
}

#[test]
fn run_mode_writes_memory_and_registers_and_the_new_code_runs() {
    let puts = symbol(DEMO, "puts_");
    let m = Machine::new(demo_config()).unwrap();
    let mut s = Session::new(Seeker::new(m, 1_000_000).unwrap(), None);
    s.add_breakpoint(puts, BreakKind::Software);
    // The second call: the code at `puts_` has been decoded and executed once.
    for _ in 0..2 {
        assert_eq!(
            s.resume(u64::MAX).unwrap(),
            Some(StopReason::Breakpoint {
                pc: puts,
                kind: BreakKind::Software
            })
        );
    }
    // `addi t0, zero, 42` over the first instruction (4 bytes: puts_ may start with a
    // compressed one, which the next parcel then follows).
    s.write_memory(puts, &0x02a0_0293u32.to_le_bytes()).unwrap();
    let mut back = [0u8; 4];
    s.read_memory(puts, &mut back).unwrap();
    assert_eq!(u32::from_le_bytes(back), 0x02a0_0293);
    s.write_registers(|h| h.x[6] = 0x1234).unwrap();
    assert_eq!(s.step().unwrap(), StopReason::Step);
    let h = s.machine().hart();
    assert_eq!((h.x[5], h.x[6], h.pc), (42, 0x1234, puts + 4));
}

#[test]
fn memory_reads_cover_ram_and_rom_and_refuse_the_rest() {
    let t = recorded();
    let s = session(&t.path, interval(&t));
    // The reset vector in the boot ROM.
    let mut rom = [0u8; 16];
    s.read_memory(0x1000, &mut rom).unwrap();
    assert_eq!(&rom[..], &s.machine().bus().rom[..16]);
    // RAM across a page boundary: the ELF's bytes.
    let mut ram = vec![0u8; 64];
    s.read_memory(0x8000_0fe0, &mut ram).unwrap();
    let mut direct = vec![0u8; 64];
    s.machine().ram().read(0x8000_0fe0, &mut direct).unwrap();
    assert_eq!(ram, direct);
    assert!(ram.iter().any(|&b| b != 0));
    // The UART and nothing at all: errors naming the address.
    let mut b = [0u8; 4];
    let err = s.read_memory(0x1000_0000, &mut b).unwrap_err();
    assert!(err.to_string().contains("0x10000000"), "{err}");
    // A read running off the end of RAM names the first address outside.
    let end = 0x8000_0000u64 + (16 << 20);
    let mut b = [0u8; 8];
    let err = s.read_memory(end - 4, &mut b).unwrap_err();
    assert!(
        matches!(err, SessionError::BadAddress { addr } if addr == end),
        "{err}"
    );
}

#[test]
fn snapshots_round_trip_and_other_traces_are_refused() {
    let t = recorded();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.rwsnap");
    let mut s = session(&t.path, interval(&t));
    let at = t.total / 2 + 3;
    s.seek(at).unwrap();
    let hash = s.machine().state_hash();
    s.save_snapshot(&file, false).unwrap();
    s.seek(t.total / 4).unwrap();
    s.load_snapshot(&file).unwrap();
    assert_eq!((s.icount(), s.machine().state_hash()), (at, hash));
    assert_eq!(
        s.resume(u64::MAX).unwrap(),
        Some(StopReason::Ended(RunOutcome::Exited(0)))
    );
    assert_eq!(s.machine().state_hash(), t.final_hash);
    // Loading at the end goes back.
    s.load_snapshot(&file).unwrap();
    assert_eq!((s.icount(), s.ended()), (at, None));

    // Another recording (its header differs in the check interval).
    let other = dir.path().join("other.rwtrace");
    record_demo_with(
        &other,
        CheckSettings {
            interval: 150_000,
            ..CHECKS
        },
    );
    let mut o = session(&other, 1_000_000);
    o.seek(1000).unwrap();
    let err = o.load_snapshot(&file).unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Snapshot(SnapshotError::DifferentTrace { .. })
        ),
        "{err}"
    );
    assert_eq!(o.icount(), 1000);
    // A corrupt file.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x10;
    let bad = dir.path().join("bad.rwsnap");
    std::fs::write(&bad, &bytes).unwrap();
    let err = o.load_snapshot(&bad).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    let err = o.load_snapshot(&dir.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    // Still usable.
    assert_eq!(o.seek(500).unwrap(), StopReason::SeekDone { icount: 500 });
    assert_eq!(o.reverse_step().unwrap(), StopReason::Step);
    assert_eq!(o.icount(), 499);
}

#[test]
fn the_reverse_benchmark_measures_a_recording() {
    use rewind_debug::bench::{bench_reverse, ReverseBenchOptions};
    let t = recorded();
    let opts = ReverseBenchOptions {
        snapshot_interval: 100_000,
        snapshot_budget: None,
        seeks: 5,
        reverse_steps: 4,
        seed: 7,
        continues: true,
        continue_rounds: 1,
        hot_watch: None,
    };
    let b = bench_reverse(&t.path, &embedded, &opts).unwrap();
    assert_eq!(b.instructions, t.total);
    assert_eq!((b.seek.count, b.reverse_step.count), (5, 4));
    assert!(b.reverse_step.max_ms >= b.reverse_step.mean_ms && b.reverse_step.mean_ms > 0.0);
    assert_eq!(b.snapshots as u64, t.total / 100_000 + 1);
    assert!(b.snapshot_memory > 0);
    assert!(b.continues.is_some_and(|c| c.iter().all(|&s| s > 0.0)));
    let text = b.to_string();
    assert!(
        text.contains("reverse step:")
            && text.contains("snapshots:")
            && text.contains("with a watchpoint"),
        "{text}"
    );
    // A trace cut short has no known length.
    let cut = t.path.with_extension("cut");
    let bytes = std::fs::read(&t.path).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let err = bench_reverse(&cut, &embedded, &opts).unwrap_err();
    assert!(err.to_string().contains("cut"), "{err}");
}

#[test]
fn a_breakpoint_on_a_watched_write_is_reported_before_the_watchpoint() {
    let t = recorded();
    let ticks = symbol(DEMO, "ticks");
    let watch = Watchpoint {
        addr: ticks,
        len: 4,
        kind: WatchKind::Write,
    };
    let mut s = session(&t.path, interval(&t));
    s.add_watchpoint(watch);
    let (writes, _) = run_forward(&mut s, u64::MAX);
    // The timer handler's increment (the last write).
    let store = writes.last().unwrap().pc;

    let mut s = session(&t.path, interval(&t));
    s.add_watchpoint(watch);
    s.add_breakpoint(store, BreakKind::Software);
    let (forward, _) = run_forward(&mut s, u64::MAX);
    let expect_break = StopReason::Breakpoint {
        pc: store,
        kind: BreakKind::Software,
    };
    // Each write at `store` stops twice before the instruction: breakpoint, then watchpoint.
    let pairs = forward
        .windows(2)
        .filter(|w| w[0].reason == expect_break)
        .inspect(|w| {
            assert!(
                matches!(w[1].reason, StopReason::Watchpoint { .. }),
                "{w:?}"
            );
            assert_eq!((w[1].icount, w[1].x), (w[0].icount, w[0].x));
        })
        .count();
    assert!(pairs >= 3, "{forward:?}");
    assert_eq!(forward.len(), writes.len() + pairs);

    // Backwards, reverse-continue always moves to an earlier instruction: at each position it
    // lands on the last hit there (the watchpoint).
    let mut last_per_position: Vec<&Seen> = Vec::new();
    for f in &forward {
        match last_per_position.last_mut() {
            Some(l) if l.icount == f.icount => *l = f,
            _ => last_per_position.push(f),
        }
    }
    for f in last_per_position.iter().rev() {
        let r = s.reverse_continue().unwrap();
        assert_eq!(r, f.reason);
        assert_eq!(s.icount(), f.icount);
    }
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
}

#[test]
fn a_long_reverse_continue_goes_one_interval_at_a_time_and_can_be_interrupted() {
    use rewind_debug::control::{Action, Controller};
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    // No hooks: the search runs back to the start, one snapshot interval per call.
    s.seek(t.total - 1).unwrap();
    let mut search = s.start_reverse_search().unwrap();
    let mut intervals = 0;
    let mut positions = vec![s.icount()];
    let stop = loop {
        intervals += 1;
        if let Some(stop) = s.continue_reverse_search(&mut search).unwrap() {
            break stop;
        }
        positions.push(s.icount());
    };
    assert_eq!(stop, StopReason::HistoryStart);
    assert_eq!(s.icount(), 0);
    assert!(intervals >= 3, "{intervals} intervals");
    assert!(positions.windows(2).all(|w| w[1] < w[0]), "{positions:?}");

    // Through the controller: one interval per run_pending, and a stop request in between
    // ends the search where it stands, paused, with one STOP event.
    let start = t.total - 1;
    s.seek(start).unwrap();
    let mut ctl = Controller::new(s, true);
    ctl.take_events();
    ctl.resume(Action::ReverseContinue).unwrap();
    assert_eq!(ctl.run_pending().unwrap(), None);
    assert_eq!(ctl.running(), Some(Action::ReverseContinue));
    let at = ctl.session().icount();
    assert!(at < start, "{at} vs {start}");
    ctl.pause(StopReason::Requested);
    assert_eq!(ctl.running(), None);
    assert_eq!(ctl.status(), "paused");
    assert_eq!(ctl.session().icount(), at);
    let stops = ctl
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, rewind_debug::control::MachineEvent::Stop(_)))
        .count();
    assert_eq!(stops, 1);
    // A new reverse-continue starts from here, not from where the first one began.
    ctl.resume(Action::ReverseContinue).unwrap();
    let mut stop = None;
    while stop.is_none() {
        stop = ctl.run_pending().unwrap();
    }
    assert_eq!(stop, Some(StopReason::HistoryStart));
    assert_eq!(ctl.session().icount(), 0);
}

/// `--sandbox DIR`: a client's snapshot files are taken relative to DIR and never lead out of
/// it (`..`, absolute paths, symlinks to outside directories or files).
#[test]
fn file_commands_stay_inside_the_sandbox() {
    let t = recorded();
    let mut s = session(&t.path, interval(&t));
    let outside = tempfile::tempdir().unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    s.set_sandbox(sandbox.path()).unwrap();
    s.seek(t.total / 2).unwrap();
    s.save_snapshot(Path::new("mid.snap"), false).unwrap();
    assert!(sandbox.path().join("mid.snap").exists());
    std::fs::create_dir(sandbox.path().join("sub")).unwrap();
    s.save_snapshot(&sandbox.path().join("sub/abs.snap"), false)
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), sandbox.path().join("out")).unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"keep").unwrap();
    std::os::unix::fs::symlink(&secret, sandbox.path().join("link.snap")).unwrap();
    for bad in [
        PathBuf::from("../escape.snap"),
        PathBuf::from("sub/../../escape.snap"),
        outside.path().join("abs.snap"),
        PathBuf::from("out/via-dir-link.snap"),
        PathBuf::from("link.snap"),
        PathBuf::from(".."),
    ] {
        let e = s.save_snapshot(&bad, true).unwrap_err();
        assert!(
            matches!(e, SessionError::OutsideSandbox { .. }),
            "{}: {e}",
            bad.display()
        );
        let e = s.load_snapshot(&bad).unwrap_err();
        assert!(
            matches!(e, SessionError::OutsideSandbox { .. }),
            "load {}: {e}",
            bad.display()
        );
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"keep");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
    s.seek(0).unwrap();
    s.load_snapshot(Path::new("mid.snap")).unwrap();
    assert_eq!(s.icount(), t.total / 2);
}

/// A demo trace recorded with 4 harts and short turns (the demo parks harts 1 to 3 in `wfi`:
/// their turns end at once, so hart 0's turns begin at instruction counts where the scheduler
/// first passes the waiting harts).
fn recorded_harts() -> Trace {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo4.rwtrace");
    let mut config = demo_config();
    config.smp = 4;
    config.quantum = 1000;
    let header = prepare_recording(&mut config, CHECKS).unwrap();
    let w = TraceWriter::create(&path, &header).unwrap();
    let mut m = Machine::record(config, w, CHECKS).unwrap();
    assert_eq!(m.run(Some(50_000_000)).unwrap(), RunOutcome::Exited(0));
    m.finish_recording().unwrap();
    let mut m = replayer(&path);
    assert_eq!(m.harts().len(), 4);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    m.finish_replay().unwrap();
    Trace {
        _dir: dir,
        path,
        total: m.icount(),
        final_hash: m.state_hash(),
    }
}

#[test]
fn several_harts_reverse_continue_lands_on_the_hart_that_hit() {
    let t = recorded_harts();
    let puts = symbol(DEMO, "puts_");
    let mut s = session(&t.path, interval(&t));
    s.add_breakpoint(puts, BreakKind::Software);
    let mut forward = Vec::new();
    loop {
        match s.resume(u64::MAX).unwrap() {
            None => {}
            Some(StopReason::Ended(_)) => break,
            Some(r) => {
                assert_eq!(s.machine().current_hart(), 0, "only hart 0 runs the demo");
                assert_eq!(s.stop_hart(), 0);
                forward.push((seen(&s, r), s.machine().state_hash()));
            }
        }
    }
    assert!(forward.len() >= 4, "{}", forward.len());
    for (f, hash) in forward.iter().rev() {
        let r = s.reverse_continue().unwrap();
        assert_eq!(seen(&s, r), *f);
        assert_eq!(s.machine().current_hart(), 0, "at {}", f.icount);
        assert_eq!(s.stop_hart(), 0);
        assert_eq!(s.machine().state_hash(), *hash, "at {}", f.icount);
    }
    assert_eq!(s.reverse_continue().unwrap(), StopReason::HistoryStart);
    // Forward from a reverse-continue's stop: the next hit, not the same one again.
    s.seek(forward[1].0.icount - 1).unwrap();
    let r = s.reverse_continue().unwrap();
    assert_eq!(seen(&s, r), forward[0].0);
    let r = s.resume(u64::MAX).unwrap().unwrap();
    assert_eq!(seen(&s, r), forward[1].0);
}

#[test]
fn several_harts_step_and_reverse_step_one_hart() {
    let t = recorded_harts();
    let mut s = session(&t.path, interval(&t));
    // A position where a parked hart's turn is current (hart 0 has just used up its turn).
    s.seek(100_000).unwrap();
    assert_eq!(s.machine().current_hart(), 0);
    let at = 100_000 + s.machine().sched_state().left;
    s.seek(at).unwrap();
    assert_ne!(
        s.machine().current_hart(),
        0,
        "hart 0's turn is over at {at}"
    );
    let (pc, own) = (s.machine().harts()[0].pc, s.machine().harts()[0].icount);
    let hash = s.machine().state_hash();
    // Stepping hart 0: the parked harts retire nothing, hart 0 exactly one instruction.
    assert_eq!(s.step_hart(0, 1 << 16).unwrap(), Some(StopReason::Step));
    assert_eq!(s.machine().harts()[0].icount, own + 1);
    assert_eq!(s.icount(), at + 1);
    assert_eq!(s.stop_hart(), 0);
    // A parked hart never retires an instruction: the step does not end.
    let parked = s.machine().harts()[1].icount;
    assert_eq!(s.step_hart(1, 5000).unwrap(), None);
    assert_eq!(s.machine().harts()[1].icount, parked);
    assert!(s.icount() > at + 1);
    // Back to before hart 0's last instruction.
    assert_eq!(s.reverse_step_hart(0).unwrap(), StopReason::Step);
    assert_eq!(s.stop_hart(), 0);
    assert!(s.machine().harts()[0].icount > own);
    // Step back over hart 0's steps until it stands where it stood before.
    while s.machine().harts()[0].icount > own {
        assert_eq!(s.reverse_step_hart(0).unwrap(), StopReason::Step);
    }
    assert_eq!(s.machine().harts()[0].icount, own);
    assert_eq!(s.machine().harts()[0].pc, pc);
    assert_eq!(
        s.icount(),
        at,
        "hart 0's previous instruction was the first after {at}"
    );
    assert_eq!(s.machine().state_hash(), hash);

    // A hit of hart 0 where its turn begins: the seek to it stops before the scheduler passed
    // the parked harts; reverse-continue still lands on hart 0, and goes on from there.
    s.seek(at + 1).unwrap();
    assert!(s.add_breakpoint(pc, BreakKind::Software));
    assert_eq!(
        s.reverse_continue().unwrap(),
        StopReason::Breakpoint {
            pc,
            kind: BreakKind::Software
        }
    );
    assert_eq!(s.icount(), at);
    assert_eq!(s.machine().current_hart(), 0);
    assert_eq!(s.stop_hart(), 0);
    let next = s.resume(u64::MAX).unwrap();
    assert!(s.icount() > at, "{next:?} at {}", s.icount());
    assert!(s.remove_breakpoint(pc, BreakKind::Software));
    assert_eq!(
        s.step_hart(7, 1).unwrap_err().to_string(),
        "there is no hart 7 (the machine has 4)"
    );
}
