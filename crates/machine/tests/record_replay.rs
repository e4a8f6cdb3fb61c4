//! Record and replay in-process: equal state hashes, divergence reports on edited traces,
//! idle warps, serial input at exact icounts, traces cut short, changed images.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_log::{Event, Footer, TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, MachineError, RunOutcome, SerialOutput,
};
use rewind_replay::{HostEvent, ReplayStop};

static DEMO: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");

fn demo_config() -> MachineConfig {
    MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: "demo.elf".into(),
            bytes: Arc::from(DEMO),
        }),
        serial_output: SerialOutput::Capture,
        ..MachineConfig::default()
    }
}

fn embedded(name: &str) -> Option<Arc<[u8]>> {
    (name == "demo.elf").then(|| Arc::from(DEMO))
}

const CHECKS: CheckSettings = CheckSettings {
    interval: 200_000,
    registers_every: 2,
};

struct Recorded {
    outcome: RunOutcome,
    icount: u64,
    hash: u64,
    output: Vec<u8>,
}

fn record(
    mut config: MachineConfig,
    path: &Path,
    input: &[u8],
    block_size: Option<usize>,
) -> Recorded {
    let header = prepare_recording(&mut config, CHECKS).unwrap();
    let mut w = TraceWriter::create(path, &header).unwrap();
    if let Some(b) = block_size {
        w.set_block_size(b);
    }
    let mut m = Machine::record(config, w, CHECKS).unwrap();
    if !input.is_empty() {
        m.boundary()
            .sender()
            .send(HostEvent::Serial(input.to_vec()))
            .unwrap();
    }
    let outcome = m.run(Some(50_000_000)).unwrap();
    let r = Recorded {
        outcome,
        icount: m.icount(),
        hash: m.state_hash(),
        output: m.captured_output().to_vec(),
    };
    assert!(m.finish_recording().unwrap().unwrap() > 0);
    r
}

fn replay(path: &Path) -> (Result<RunOutcome, MachineError>, Machine) {
    let reader = TraceReader::open(path).unwrap();
    let (config, checks) = replay_config(reader.header(), &embedded).unwrap();
    assert_eq!(checks, CHECKS);
    let mut m = Machine::replay(config, reader, SerialOutput::Capture).unwrap();
    let r = m.run(None).and_then(|o| m.finish_replay().map(|()| o));
    (r, m)
}

fn events(path: &Path) -> Vec<(u64, Event)> {
    let mut r = TraceReader::open(path).unwrap();
    let mut v = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        v.push((e.icount, e.event));
    }
    v
}

/// Copy a trace, letting `edit` change its events (End is written by `finish`).
fn rewrite(from: &Path, to: &Path, edit: impl Fn(usize, &mut Event)) {
    let r = TraceReader::open(from).unwrap();
    let header = r.header().clone();
    let footer = r.footer().unwrap().clone();
    drop(r);
    let mut w = TraceWriter::create_overwrite(to, &header).unwrap();
    for (i, (icount, mut e)) in events(from).into_iter().enumerate() {
        if e == Event::End {
            break;
        }
        edit(i, &mut e);
        w.push(icount, &e).unwrap();
    }
    w.finish(&Footer::new(footer.final_icount, footer.final_state_hash))
        .unwrap();
}

fn divergence(r: Result<RunOutcome, MachineError>) -> rewind_replay::Divergence {
    match r {
        Err(MachineError::Replay(ReplayStop::Diverged(d))) => *d,
        other => panic!("expected a divergence, got {other:?}"),
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn replay_reproduces_the_recording_exactly() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let rec = record(demo_config(), &p, b"typed while running\r", None);
    assert_eq!(rec.outcome, RunOutcome::Exited(0));
    let (r, m) = replay(&p);
    assert_eq!(r.unwrap(), rec.outcome);
    assert_eq!(m.icount(), rec.icount);
    assert_eq!(m.state_hash(), rec.hash);
    assert_eq!(m.captured_output(), &rec.output[..]);
    let ev = events(&p);
    // Host clock and random seed at icount 0, state checks with registers, idle warps.
    assert!(matches!(ev[0], (0, Event::ClockRead { kind: 0, .. })));
    assert!(matches!(&ev[1], (0, Event::Random { bytes }) if bytes.len() == 32));
    let kinds = |f: fn(&Event) -> bool| ev.iter().filter(|(_, e)| f(e)).count();
    assert!(kinds(|e| matches!(e, Event::StateHash { .. })) >= 5);
    assert!(kinds(|e| matches!(e, Event::StateRegisters { .. })) >= 3);
    // The demo idles without live input: every warp goes to the timer deadline, which replay
    // derives from guest state, so none is logged.
    assert_eq!(kinds(|e| matches!(e, Event::IdleWarp { .. })), 0);
    assert!(matches!(
        ev[ev.len() - 2],
        (_, Event::GuestExit { code: 0, .. })
    ));
    assert_eq!(ev.last().unwrap(), &(rec.icount, Event::End));
}

#[test]
fn edited_registers_give_a_register_diff() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let q = dir.path().join("edited.rwtrace");
    record(demo_config(), &p, b"", None);
    let ev = events(&p);
    let (at, _) = ev
        .iter()
        .find(|(_, e)| matches!(e, Event::StateRegisters { .. }))
        .unwrap()
        .clone();
    // Change the recorded a0 (index 3 + 9) of the first register snapshot only.
    rewrite(&p, &q, |_, e| {
        if let Event::StateRegisters { regs } = e {
            if regs[2] == at {
                regs[12] ^= 0xdead;
            }
        }
    });
    let d = divergence(replay(&q).0);
    assert_eq!(d.icount, at);
    assert_eq!(d.register_diff.len(), 1, "{d}");
    assert_eq!(d.register_diff[0].name, "a0");
    assert_eq!(
        d.register_diff[0].recorded ^ d.register_diff[0].replayed,
        0xdead
    );
    assert!(d.pc.is_some());
    let text = d.to_string();
    assert!(
        text.starts_with(&format!("replay diverged at instruction {at}\n")),
        "{text}"
    );
    for needle in [
        "pc 0x",
        "privilege M",
        "state check",
        "StateRegisters at instruction",
        "last events replayed",
        "a0",
        "likely causes",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn edited_hash_diverges_with_a_note() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let q = dir.path().join("edited.rwtrace");
    record(demo_config(), &p, b"", None);
    let ev = events(&p);
    // A state hash without registers next to it: a mismatch with an explanatory note.
    let idx = (1..ev.len() - 1)
        .find(|&i| {
            matches!(ev[i].1, Event::StateHash { .. })
                && !matches!(ev[i + 1].1, Event::StateRegisters { .. })
        })
        .unwrap();
    rewrite(&p, &q, |i, e| {
        if let (true, Event::StateHash { hash }) = (i == idx, e) {
            *hash ^= 1;
        }
    });
    let d = divergence(replay(&q).0);
    assert_eq!(d.icount, ev[idx].0);
    assert!(d.register_diff.is_empty());
    assert!(d.note.as_deref().unwrap().contains("not recorded"), "{d}");
}

#[test]
fn guest_exit_mismatch_and_log_ending_early_diverge() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let q = dir.path().join("edited.rwtrace");
    let rec = record(demo_config(), &p, b"", None);
    rewrite(&p, &q, |_, e| {
        if let Event::GuestExit { code, kind } = e {
            *code = 7;
            *kind = rewind_log::GuestExitKind::Fail;
        }
    });
    let d = divergence(replay(&q).0);
    assert_eq!(d.icount, rec.icount);
    assert!(d.asked.contains("power off with exit status 0"), "{d}");
    assert!(
        d.log_next.as_ref().unwrap().summary.contains("code=7"),
        "{d}"
    );

    // A trace whose events stop early (End moved back) while the guest goes on.
    let r = TraceReader::open(&p).unwrap();
    let header = r.header().clone();
    drop(r);
    let mut w = TraceWriter::create_overwrite(&q, &header).unwrap();
    for (icount, e) in events(&p).into_iter().take(2) {
        w.push(icount, &e).unwrap();
    }
    w.finish(&Footer::new(1000, None)).unwrap();
    let d = divergence(replay(&q).0);
    assert_eq!(d.icount, 1000);
    assert!(d.asked.contains("where the recording ended"), "{d}");
}

#[test]
fn a_trace_cut_short_replays_to_its_last_complete_block() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    record(demo_config(), &p, b"", Some(16));
    let len = std::fs::metadata(&p).unwrap().len();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..(len as usize * 2 / 3)]).unwrap();
    let mut r = TraceReader::open(&p).unwrap();
    let mut last = 0;
    while let Some(e) = r.next_event().unwrap() {
        last = e.icount;
    }
    assert!(last > 0);
    let (res, m) = replay(&p);
    match res {
        Err(MachineError::Replay(ReplayStop::CutShort { icount, .. })) => {
            assert_eq!(icount, last);
            assert_eq!(m.icount(), last);
        }
        other => panic!("expected CutShort, got {other:?}"),
    }
}

#[test]
fn a_changed_image_is_refused_before_running() {
    let dir = tmp();
    let elf: PathBuf = dir.path().join("guest.elf");
    std::fs::write(&elf, DEMO).unwrap();
    let p = dir.path().join("t.rwtrace");
    let mut config = demo_config();
    config.kernel = Some(ImageSource::file(&elf));
    record(config, &p, b"", None);
    let mut changed = DEMO.to_vec();
    changed[4000] ^= 0xff;
    std::fs::write(&elf, &changed).unwrap();
    let reader = TraceReader::open(&p).unwrap();
    let err = replay_config(reader.header(), &embedded).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("guest.elf") && msg.contains("changed"),
        "{msg}"
    );
    std::fs::remove_file(&elf).unwrap();
    let msg = replay_config(reader.header(), &embedded)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("guest.elf") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn instruction_limit_is_recorded_and_replayed() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let header = {
        let mut c = demo_config();
        let h = prepare_recording(&mut c, CHECKS).unwrap();
        (c, h)
    };
    let w = TraceWriter::create(&p, &header.1).unwrap();
    let mut m = Machine::record(header.0, w, CHECKS).unwrap();
    assert_eq!(m.run(Some(300_000)).unwrap(), RunOutcome::InstructionLimit);
    let hash = m.state_hash();
    m.finish_recording().unwrap();
    let ev = events(&p);
    assert_eq!(
        ev[ev.len() - 2],
        (
            300_000,
            Event::HostShutdown {
                cause: rewind_log::ShutdownCause::EndOfRecording
            }
        )
    );
    let (r, m) = replay(&p);
    assert_eq!(r.unwrap(), RunOutcome::InstructionLimit);
    assert_eq!((m.icount(), m.state_hash()), (300_000, hash));
}

// --- a guest that echoes the UART: serial input must arrive at the recorded icounts -------

fn i_type(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn b_type(f3: u32, rs1: u32, rs2: u32, off: i32) -> u32 {
    let o = off as u32;
    ((o >> 12 & 1) << 31)
        | ((o >> 5 & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((o >> 1 & 0xf) << 8)
        | ((o >> 11 & 1) << 7)
        | 0x63
}
fn s_type(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23
}

/// Echo 12 bytes read by polling the UART (FIFO off: one byte of room at a time), each after
/// a busy loop of a few thousand instructions, then pass.
fn echo_guest() -> Vec<u32> {
    let (t0, t1, t2, t3, t4, t5) = (5, 6, 7, 28, 29, 30);
    let lui = |rd: u32, imm: u32| (imm << 12) | (rd << 7) | 0x37;
    let addi = |rd, rs1, imm| i_type(0x13, 0, rd, rs1, imm);
    vec![
        lui(t0, 0x10000),
        addi(t4, 0, 0),
        addi(t5, 0, 12),
        // loop: busy wait 2000 iterations so the bytes land far apart
        addi(t3, 0, 2000),
        addi(t3, t3, -1),
        b_type(1, t3, 0, -4),
        i_type(0x03, 4, t1, t0, 5), // lbu t1, 5(t0)
        i_type(0x13, 7, t1, t1, 1), // andi
        b_type(0, t1, 0, -8),
        i_type(0x03, 4, t2, t0, 0), // lbu t2, 0(t0)
        s_type(0, t0, t2, 0),       // sb t2, 0(t0)
        addi(t4, t4, 1),
        b_type(1, t4, t5, -36),
        // finisher pass
        lui(t3, 0x5),
        addi(t3, t3, 0x555),
        lui(t4, 0x100),
        s_type(2, t4, t3, 0),
        0x0000_006f, // j .
    ]
}

#[test]
fn serial_input_arrives_at_the_recorded_instruction_counts() {
    let dir = tmp();
    let p = dir.path().join("t.rwtrace");
    let bytes: Vec<u8> = echo_guest().iter().flat_map(|w| w.to_le_bytes()).collect();
    let bytes: Arc<[u8]> = Arc::from(bytes);
    let config = MachineConfig {
        ram_size: 16 << 20,
        bios: Some(ImageSource::Embedded {
            name: "echo.bin".into(),
            bytes: bytes.clone(),
        }),
        serial_output: SerialOutput::Capture,
        ..MachineConfig::default()
    };
    let rec = record(config, &p, b"hello world!", None);
    assert_eq!(rec.outcome, RunOutcome::Exited(0));
    assert_eq!(rec.output, b"hello world!");
    let serial: Vec<u64> = events(&p)
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::SerialInput { bytes, .. } if bytes.len() == 1))
        .map(|(i, _)| i)
        .collect();
    // One byte per delivery, each at a later icount than the previous one.
    assert_eq!(serial.len(), 12);
    assert!(serial.windows(2).all(|w| w[0] < w[1]), "{serial:?}");

    let reader = TraceReader::open(&p).unwrap();
    let (config, _) = replay_config(reader.header(), &|n| {
        (n == "echo.bin").then(|| bytes.clone())
    })
    .unwrap();
    let mut m = Machine::replay(config, reader, SerialOutput::Capture).unwrap();
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    m.finish_replay().unwrap();
    assert_eq!(m.captured_output(), b"hello world!");
    assert_eq!((m.icount(), m.state_hash()), (rec.icount, rec.hash));
}
