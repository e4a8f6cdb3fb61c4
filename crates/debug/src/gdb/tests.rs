//! Tests of the stub's pure parts: address specs, the register file layout, the target
//! description, CSR access and the stop replies.

use super::arch::*;
use super::*;
use gdbstub::arch::{Arch, RegId, Registers};
use rewind_cpu::{Hart, Watchpoint};

#[test]
fn specs_like_qemu() {
    assert_eq!(
        parse_spec("tcp::1234").unwrap(),
        "127.0.0.1:1234".parse().unwrap()
    );
    assert_eq!(
        parse_spec(":1234").unwrap(),
        "127.0.0.1:1234".parse().unwrap()
    );
    assert_eq!(
        parse_spec("tcp:127.0.0.1:99").unwrap(),
        "127.0.0.1:99".parse().unwrap()
    );
    assert_eq!(
        parse_spec("0.0.0.0:7").unwrap(),
        "0.0.0.0:7".parse().unwrap()
    );
    assert_eq!(
        parse_spec("tcp:[::1]:5").unwrap(),
        "[::1]:5".parse().unwrap()
    );
    assert_eq!(parse_spec("localhost:3").unwrap().port(), 3);
}

#[test]
fn bad_specs_say_why() {
    for (spec, why) in [
        ("tcp:1234", "no port"),
        ("tcp:host:port", "the port is not a number"),
        ("nonsense", "no port"),
        ("tcp::99999", "the port is not a number"),
        ("unix:/tmp/x", "only TCP"),
    ] {
        let e = parse_spec(spec).unwrap_err().to_string();
        assert!(e.contains(why) && e.contains(spec), "{spec}: {e}");
    }
}

#[test]
fn bind_port_zero_reports_the_real_port() {
    let s = GdbServer::bind("tcp::0").unwrap();
    assert!(s.local_addr().ip().is_loopback());
    assert_ne!(s.local_addr().port(), 0);
    let e = GdbServer::bind(&format!("tcp::{}", s.local_addr().port()))
        .err()
        .unwrap();
    assert!(e.to_string().contains("cannot listen"), "{e}");
}

fn sample_hart() -> Hart {
    let mut h = Hart::new(0, 0x8000_0000, 0x8700_0000);
    for i in 1..32 {
        h.x[i] = 0x1111_0000_0000_0000 + i as u64;
        h.f[i] = 0x2222_0000_0000_0000 + i as u64;
    }
    h.pc = 0x8000_1234;
    h
}

#[test]
fn g_packet_is_x_pc_f_little_endian() {
    let h = sample_hart();
    let regs = Rv64Regs::from_hart(&h);
    let mut bytes = Vec::new();
    regs.gdb_serialize(|b| bytes.push(b.unwrap()));
    assert_eq!(bytes.len(), G_PACKET_LEN);
    assert_eq!(&bytes[8..16], &h.x[1].to_le_bytes());
    assert_eq!(&bytes[32 * 8..33 * 8], &0x8000_1234u64.to_le_bytes());
    assert_eq!(&bytes[33 * 8 + 8..33 * 8 + 16], &h.f[1].to_le_bytes());
    assert_eq!(regs.pc(), 0x8000_1234);

    let mut back = Rv64Regs::default();
    back.gdb_deserialize(&bytes).unwrap();
    assert_eq!(back, regs);
    // A G packet with the integer registers only leaves the FP registers alone.
    let mut int_only = Rv64Regs::default();
    int_only.gdb_deserialize(&bytes[..33 * 8]).unwrap();
    assert!(!int_only.has_fp);
    let mut target = sample_hart();
    target.f[3] = 77;
    int_only.x[0] = 5;
    int_only.apply(&mut target);
    assert_eq!(target.f[3], 77);
    assert_eq!(target.x[0], 0, "x0 stays zero");
    assert_eq!(target.x[7], h.x[7]);
    assert!(Rv64Regs::default().gdb_deserialize(&bytes[..100]).is_err());
}

#[test]
fn register_numbers_match_gdb() {
    let id = |n| Rv64RegId::from_raw_id(n).map(|(r, s)| (r, s.map(|s| s.get())));
    assert_eq!(id(0), Some((Rv64RegId::Gpr(0), Some(8))));
    assert_eq!(id(31), Some((Rv64RegId::Gpr(31), Some(8))));
    assert_eq!(id(32), Some((Rv64RegId::Pc, Some(8))));
    assert_eq!(id(33), Some((Rv64RegId::Fpr(0), Some(8))));
    assert_eq!(id(64), Some((Rv64RegId::Fpr(31), Some(8))));
    assert_eq!(id(66), Some((Rv64RegId::Csr(1), Some(4))));
    assert_eq!(id(68), Some((Rv64RegId::Csr(3), Some(4))));
    assert_eq!(id(65 + 0x300), Some((Rv64RegId::Csr(0x300), Some(8))));
    assert_eq!(id(4161), Some((Rv64RegId::Priv, Some(8))));
    assert_eq!(id(4162), None);
}

/// The `(name, regnum, bitsize)` of every register in the description.
fn xml_regs(xml: &str) -> Vec<(String, usize, usize)> {
    let attr = |tag: &str, a: &str| -> String {
        let start = tag.find(&format!(" {a}=\"")).unwrap() + a.len() + 3;
        tag[start..].split('"').next().unwrap().to_string()
    };
    xml.split("<reg ")
        .skip(1)
        .map(|t| {
            let tag = t.split("/>").next().unwrap();
            let tag = format!(" {tag}");
            (
                attr(&tag, "name"),
                attr(&tag, "regnum").parse().unwrap(),
                attr(&tag, "bitsize").parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn target_description_agrees_with_the_register_ids() {
    let xml = Rv64::target_description_xml().unwrap();
    for f in ["cpu", "fpu", "csr", "virtual"] {
        assert!(xml.contains(&format!("<feature name=\"org.gnu.gdb.riscv.{f}\">")));
    }
    assert!(xml.contains("<architecture>riscv:rv64</architecture>"));
    assert_eq!(
        xml.matches("<feature").count(),
        xml.matches("</feature>").count()
    );
    let regs = xml_regs(xml);
    let mut seen = std::collections::HashSet::new();
    for (name, num, bits) in &regs {
        assert!(seen.insert(*num), "regnum {num} twice");
        let (id, size) = Rv64RegId::from_raw_id(*num).unwrap();
        assert_eq!(size.unwrap().get() * 8, *bits, "{name}");
        let h = sample_hart();
        if let Rv64RegId::Csr(n) = id {
            assert!(read_csr(&h, n).is_some(), "{name} ({n:#x}) readable");
        }
    }
    let find = |n: &str| regs.iter().find(|r| r.0 == n).map(|r| r.1);
    assert_eq!(find("zero"), Some(0));
    assert_eq!(find("sp"), Some(2));
    assert_eq!(find("fp"), Some(8));
    assert_eq!(find("t6"), Some(31));
    assert_eq!(find("pc"), Some(32));
    assert_eq!(find("ft0"), Some(33));
    assert_eq!(find("ft11"), Some(64));
    assert_eq!(find("fcsr"), Some(68));
    assert_eq!(find("mstatus"), Some(65 + 0x300));
    assert_eq!(find("satp"), Some(65 + 0x180));
    assert_eq!(find("mhartid"), Some(65 + 0xf14));
    assert_eq!(find("priv"), Some(4161));
    assert_eq!(regs.len(), 32 + 1 + 32 + 3 + CSRS.len() + 1);
}

#[test]
fn csr_reads_follow_the_hart() {
    let mut h = sample_hart();
    h.csr.mstatus = 0xa_0000_2000 | rewind_cpu::csr::MSTATUS_SIE | rewind_cpu::csr::MSTATUS_MIE;
    h.csr.mscratch = 0x1234;
    h.csr.fflags = 0x3;
    h.csr.frm = 0x2;
    h.csr.mideleg = 0x222;
    h.csr.mie = 0xaaa;
    h.icount = 1000;
    assert_eq!(read_csr(&h, 0x340), Some(0x1234));
    assert_eq!(read_csr(&h, 0x003), Some(0x43));
    assert_eq!(read_csr(&h, 0x300), Some(h.csr.mstatus));
    // sstatus hides the M-mode bits.
    assert_eq!(
        read_csr(&h, 0x100).unwrap() & rewind_cpu::csr::MSTATUS_MIE,
        0
    );
    assert_ne!(
        read_csr(&h, 0x100).unwrap() & rewind_cpu::csr::MSTATUS_SIE,
        0
    );
    assert_eq!(read_csr(&h, 0x104), Some(0x222));
    assert_eq!(read_csr(&h, 0xb02), Some(1000));
    assert_eq!(read_csr(&h, 0xf14), Some(0));
    assert_eq!(read_csr(&h, 0x7c0), None);
}

#[test]
fn csr_writes_use_the_instruction_semantics() {
    let mut h = sample_hart();
    h.prv = rewind_cpu::Priv::U;
    write_csr(&mut h, 0x340, 0xfeed).unwrap();
    assert_eq!(h.csr.mscratch, 0xfeed);
    assert_eq!(h.prv, rewind_cpu::Priv::U, "privilege restored");
    // WARL: mtvec mode 2 is reserved, the write is ignored.
    h.csr.mtvec = 0x100;
    write_csr(&mut h, 0x305, 0x8000_0002).unwrap();
    assert_eq!(h.csr.mtvec, 0x100);
    write_csr(&mut h, 0x003, 0x7f).unwrap();
    assert_eq!((h.csr.frm, h.csr.fflags), (3, 0x1f));
    assert!(write_csr(&mut h, 0xf14, 1)
        .unwrap_err()
        .contains("read-only"));
    assert!(write_csr(&mut h, 0x7c0, 1)
        .unwrap_err()
        .contains("not implemented"));
    write_priv(&mut h, 1).unwrap();
    assert_eq!(h.prv, rewind_cpu::Priv::S);
    assert!(write_priv(&mut h, 2).is_err());
}

#[test]
fn stop_replies() {
    use gdbstub::stub::SingleThreadStopReason as S;
    let r = |reason: StopReason, mode| stop_reason(&reason, mode);
    assert_eq!(
        r(StopReason::Requested, Mode::Run),
        S::Signal(Signal::SIGINT)
    );
    assert_eq!(
        r(
            StopReason::Breakpoint {
                pc: 4,
                kind: BreakKind::Software
            },
            Mode::Run
        ),
        S::SwBreak(())
    );
    assert_eq!(
        r(
            StopReason::Breakpoint {
                pc: 4,
                kind: BreakKind::Hardware
            },
            Mode::Replay
        ),
        S::HwBreak(())
    );
    assert_eq!(r(StopReason::Step, Mode::Replay), S::DoneStep);
    assert_eq!(
        r(StopReason::SeekDone { icount: 3 }, Mode::Replay),
        S::DoneStep
    );
    assert_eq!(
        r(StopReason::ReplayBreak { icount: 3 }, Mode::Replay),
        S::DoneStep
    );
    assert_eq!(
        r(StopReason::HistoryStart, Mode::Replay),
        S::ReplayLog {
            tid: None,
            pos: ReplayLogPosition::Begin
        }
    );
    let exited = StopReason::Ended(RunOutcome::Exited(3));
    assert_eq!(r(exited.clone(), Mode::Run), S::Exited(3));
    assert_eq!(r(exited.clone(), Mode::Record), S::Exited(3));
    assert_eq!(
        r(exited, Mode::Replay),
        S::ReplayLog {
            tid: None,
            pos: ReplayLogPosition::End
        }
    );
    assert_eq!(
        r(StopReason::Ended(RunOutcome::InstructionLimit), Mode::Run),
        S::Signal(Signal::SIGTERM)
    );
    // The reported address lies in the watched range, as gdb checks.
    let watch = Watchpoint {
        addr: 0x1004,
        len: 4,
        kind: rewind_cpu::WatchKind::Access,
    };
    let hit = |addr| StopReason::Watchpoint {
        watch,
        access: rewind_cpu::WatchKind::Write,
        addr,
    };
    assert_eq!(
        r(hit(0x1000), Mode::Run),
        S::Watch {
            tid: (),
            kind: GdbWatchKind::ReadWrite,
            addr: 0x1004
        }
    );
    assert_eq!(
        r(hit(0x1006), Mode::Run),
        S::Watch {
            tid: (),
            kind: GdbWatchKind::ReadWrite,
            addr: 0x1006
        }
    );
}

#[test]
fn watch_kinds() {
    assert_eq!(
        watch_kind(GdbWatchKind::Write),
        rewind_cpu::WatchKind::Write
    );
    assert_eq!(watch_kind(GdbWatchKind::Read), rewind_cpu::WatchKind::Read);
    assert_eq!(
        watch_kind(GdbWatchKind::ReadWrite),
        rewind_cpu::WatchKind::Access
    );
}

/// gdb-multiarch (when installed) accepts the description: every register is known under
/// its name, with the expected groups.
#[test]
fn gdb_accepts_the_target_description() {
    let Ok(out) = std::process::Command::new("gdb-multiarch")
        .arg("--version")
        .output()
    else {
        eprintln!("gdb-multiarch not installed: skipped");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("target.xml");
    std::fs::write(&path, Rv64::target_description_xml().unwrap()).unwrap();
    let out = std::process::Command::new("gdb-multiarch")
        .args(["-nx", "-batch", "-ex", "set architecture riscv:rv64"])
        .arg("-ex")
        .arg(format!("set tdesc filename {}", path.display()))
        .args(["-ex", "maint print remote-registers"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.to_lowercase().contains("warning"), "{text}");
    // ` Name Nr Rel Offset Size Type Rmt Nr g/G Offset`: the remote numbers are ours.
    let remote_nr = |name: &str| -> Option<usize> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(6))
            .and_then(|n| n.parse().ok())
    };
    assert_eq!(remote_nr("zero"), Some(0), "{text}");
    assert_eq!(remote_nr("pc"), Some(32), "{text}");
    assert_eq!(remote_nr("ft0"), Some(33), "{text}");
    assert_eq!(remote_nr("fflags"), Some(66), "{text}");
    assert_eq!(remote_nr("mstatus"), Some(65 + 0x300), "{text}");
    assert_eq!(remote_nr("priv"), Some(4161), "{text}");
}
