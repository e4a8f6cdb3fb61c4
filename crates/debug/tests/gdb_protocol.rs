//! The gdb stub over a real socket, speaking the remote protocol directly (no gdb needed):
//! every resume gets its stop reply (including immediate ones: reverse-step at instruction 0,
//! Ctrl-C), reverse execution is offered in replay only, writes are refused in replay, `vKill`
//! ends serving, and a guest that exits ends a run-mode session with `W`.

#[allow(dead_code)]
mod common;
use common::{demo_config, record_demo, replayer, DEMO};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rewind_debug::control::{self, Controller, Frontends};
use rewind_debug::gdb::GdbServer;
use rewind_debug::Session;
use rewind_machine::seek::Seeker;
use rewind_machine::{ImageSource, Machine, MachineConfig, RunOutcome};

static BENCH: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

fn replay_session(path: &Path) -> Session {
    let m = replayer(path);
    Session::new(Seeker::new(m, 100_000).unwrap(), Some(path.to_path_buf()))
}

/// A minimal gdb: packets out, replies in (no-ack mode once negotiated).
struct Client {
    s: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Client {
            s,
            pending: Vec::new(),
        };
        assert_eq!(c.cmd("QStartNoAckMode"), "OK");
        c
    }

    fn send(&mut self, p: &str) {
        let sum = p.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        self.s
            .write_all(format!("${p}#{sum:02x}").as_bytes())
            .unwrap();
    }

    /// The next packet's payload (acks skipped).
    fn reply(&mut self) -> String {
        loop {
            if let Some(start) = self.pending.iter().position(|&b| b == b'$') {
                if let Some(end) = self.pending[start..].iter().position(|&b| b == b'#') {
                    let end = start + end;
                    if self.pending.len() >= end + 3 {
                        let body = run_length_decode(&self.pending[start + 1..end]);
                        self.pending.drain(..end + 3);
                        return body;
                    }
                }
            }
            let mut buf = [0u8; 4096];
            let n = self.s.read(&mut buf).expect("a reply before the timeout");
            assert!(n > 0, "the stub closed the connection");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    fn cmd(&mut self, p: &str) -> String {
        self.send(p);
        self.reply()
    }

    /// A 64-bit register by gdb number.
    fn reg(&mut self, n: usize) -> u64 {
        let hex = self.cmd(&format!("p{n:x}"));
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes);
        u64::from_le_bytes(b)
    }

    /// `monitor icount`.
    fn icount(&mut self) -> u64 {
        let out = self.cmd(&format!("qRcmd,{}", hex(b"icount")));
        assert_eq!(self.reply(), "OK");
        let text = out.strip_prefix('O').expect("console output");
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        String::from_utf8(bytes).unwrap().trim().parse().unwrap()
    }
}

/// Expand the protocol's run-length encoding (`X*N`: N - 29 more copies of X).
fn run_length_decode(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'*' && i + 1 < body.len() {
            let last = *out.last().expect("a character to repeat");
            for _ in 0..(body[i + 1] - 29) {
                out.push(last);
            }
            i += 2;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Serve `ctl` (paused) to gdb; `client` runs against it on another thread.
fn serve_with(ctl: &mut Controller, client: impl FnOnce(SocketAddr) + Send + 'static) {
    let server = GdbServer::bind("tcp::0").unwrap();
    let addr = server.local_addr();
    let gdb = thread::spawn(move || client(addr));
    let frontends = Frontends {
        gdb: Some(server),
        qmp: None,
    };
    control::serve(ctl, frontends).unwrap();
    gdb.join().unwrap();
}

#[test]
fn replay_reverse_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("demo.trace");
    record_demo(&trace);
    let mut ctl = Controller::new(replay_session(&trace), true);
    serve_with(&mut ctl, |addr| {
        let mut c = Client::connect(addr);
        let features = c.cmd("qSupported:swbreak+;hwbreak+;xmlRegisters=i386");
        assert!(features.contains("ReverseStep+") && features.contains("ReverseContinue+"));
        assert!(features.contains("qXfer:features:read+"));
        assert!(c.cmd("?").starts_with("T05"));
        assert_eq!(c.icount(), 0);
        // Nothing before instruction 0: an immediate stop reply, not silence.
        assert_eq!(c.cmd("bs"), "T05replaylog:begin;");
        assert_eq!(c.cmd("bc"), "T05replaylog:begin;");
        let mut pcs = vec![c.reg(32)];
        for _ in 0..5 {
            assert_eq!(c.cmd("vCont;s:1"), "S05");
            pcs.push(c.reg(32));
        }
        assert_eq!(c.icount(), 5);
        for i in (0..5).rev() {
            assert_eq!(c.cmd("bs"), "S05");
            assert_eq!(c.reg(32), pcs[i], "reverse-step to instruction {i}");
        }
        // A breakpoint found going forward, then again going backwards.
        assert_eq!(c.cmd(&format!("Z0,{:x},2", pcs[3])), "OK");
        assert_eq!(c.cmd("vCont;c:1"), "T05thread:01;swbreak:;");
        assert_eq!((c.icount(), c.reg(32)), (3, pcs[3]));
        assert_eq!(c.cmd("vCont;s:1"), "S05");
        assert_eq!(c.cmd("bc"), "T05thread:01;swbreak:;");
        assert_eq!(c.icount(), 3);
        assert_eq!(c.cmd(&format!("z0,{:x},2", pcs[3])), "OK");
        // Writes would change the recorded execution: the error reply says so (`E.text`).
        let reply = c.cmd(&format!("P20={}", hex(&0x1234u64.to_le_bytes())));
        assert!(
            reply.starts_with("E.cannot write registers while replaying"),
            "{reply}"
        );
        let reply = c.cmd(&format!("M{:x},4:00000000", pcs[0]));
        assert!(reply.starts_with("E.cannot write memory"), "{reply}");
        assert_eq!(c.reg(32), pcs[3]);
        // Run to the end of the recording: gdb stays attached and can go back from there.
        assert_eq!(c.cmd("vCont;c:1"), "T05replaylog:end;");
        let end = c.icount();
        assert!(end > 1000);
        assert_eq!(c.cmd("vCont;c:1"), "T05replaylog:end;");
        assert_eq!(c.cmd("bs"), "S05");
        assert_eq!(c.icount(), end - 1);
        // Unreadable memory is an error reply, readable memory the bytes.
        assert!(c.cmd("m0,8").starts_with('E'));
        assert_eq!(c.cmd(&format!("m{:x},4", pcs[0])).len(), 8);
        c.send("vKill;1");
        assert_eq!(c.reply(), "OK");
    });
    assert!(ctl.quit_requested());
}

/// A machine in run mode: the bench guest runs for seconds, the demo exits at once.
fn run_controller(elf: &'static [u8], name: &str) -> Controller {
    let config = MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: name.into(),
            bytes: Arc::from(elf),
        }),
        ..demo_config()
    };
    let m = Machine::new(config).unwrap();
    Controller::new(Session::new(Seeker::new(m, u64::MAX).unwrap(), None), true)
}

#[test]
fn run_mode_writes_and_ctrl_c() {
    let mut ctl = run_controller(BENCH, "bench.elf");
    serve_with(&mut ctl, |addr| {
        let mut c = Client::connect(addr);
        let features = c.cmd("qSupported:swbreak+;hwbreak+");
        assert!(!features.contains("ReverseStep+"), "{features}");
        // Not offered, so not understood.
        assert_eq!(c.cmd("bs"), "");
        let value = hex(&0xabcdu64.to_le_bytes());
        assert_eq!(c.cmd(&format!("P5={value}")), "OK");
        assert_eq!(c.reg(5), 0xabcd);
        // x0 stays zero.
        assert_eq!(c.cmd(&format!("P0={value}")), "OK");
        assert_eq!(c.reg(0), 0);
        // mscratch (CSR 0x340) through its register number.
        assert_eq!(c.cmd(&format!("P{:x}={value}", 65 + 0x340)), "OK");
        assert_eq!(c.reg(65 + 0x340), 0xabcd);
        // Ctrl-C while running answers the continue with SIGINT.
        c.send("vCont;c:1");
        thread::sleep(Duration::from_millis(50));
        c.s.write_all(&[0x03]).unwrap();
        assert_eq!(c.reply(), "S02");
        assert!(c.icount() > 1000);
        assert_eq!(c.cmd("vCont;s:1"), "S05");
        c.send("vKill;1");
        assert_eq!(c.reply(), "OK");
    });
    assert!(ctl.quit_requested());
}

#[test]
fn run_mode_exit_is_reported() {
    let mut ctl = run_controller(DEMO, "demo.elf");
    serve_with(&mut ctl, |addr| {
        let mut c = Client::connect(addr);
        // The demo exits by itself: gdb learns the exit status, and serving ends.
        assert_eq!(c.cmd("vCont;c:1"), "W00");
    });
    assert_eq!(ctl.session().ended(), Some(RunOutcome::Exited(0)));
}

/// The thread a stop reply `T..thread:ID;...` names.
fn stop_thread(reply: &str) -> Option<u64> {
    let id = reply.split("thread:").nth(1)?.split(';').next()?;
    u64::from_str_radix(id.rsplit('.').next()?.trim_start_matches('p'), 16).ok()
}

#[test]
fn several_harts_are_threads() {
    // The bench guest on 4 harts (harts 1 to 3 park in wfi), run mode.
    let config = MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: "bench.elf".into(),
            bytes: Arc::from(BENCH),
        }),
        smp: 4,
        ..demo_config()
    };
    let m = Machine::new(config).unwrap();
    let mut ctl = Controller::new(Session::new(Seeker::new(m, u64::MAX).unwrap(), None), true);
    serve_with(&mut ctl, |addr| {
        const MHARTID: usize = 65 + 0xf14;
        const MINSTRET: usize = 65 + 0xb02;
        let mut c = Client::connect(addr);
        c.cmd("qSupported:swbreak+;hwbreak+");
        let list = c.cmd("qfThreadInfo");
        let ids: Vec<u64> = list
            .strip_prefix('m')
            .unwrap_or_else(|| panic!("{list}"))
            .split(',')
            .map(|t| u64::from_str_radix(t, 16).unwrap())
            .collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(c.cmd("qsThreadInfo"), "l");
        assert_eq!(stop_thread(&c.cmd("?")), Some(1));
        // Registers are the thread's hart's.
        for t in 1..=4u64 {
            assert_eq!(c.cmd(&format!("Hg{t:x}")), "OK");
            assert_eq!(c.reg(MHARTID), t - 1);
        }
        // A write goes to the selected thread only.
        let value = hex(&0x5eedu64.to_le_bytes());
        assert_eq!(c.cmd("Hg2"), "OK");
        assert_eq!(c.cmd(&format!("Pa={value}")), "OK");
        assert_eq!(c.reg(10), 0x5eed);
        assert_eq!(c.cmd("Hg1"), "OK");
        assert_ne!(c.reg(10), 0x5eed);
        // A step of thread 3 (not the running hart): hart 2 retires one instruction, and the
        // stop names thread 3.
        assert_eq!(c.cmd("Hg3"), "OK");
        let (pc, retired) = (c.reg(32), c.reg(MINSTRET));
        let reply = c.cmd("vCont;s:3");
        assert!(reply.starts_with("T05"), "{reply}");
        assert_eq!(stop_thread(&reply), Some(3), "{reply}");
        assert_eq!(c.cmd("Hg3"), "OK");
        assert_eq!(c.reg(MINSTRET), retired + 1);
        assert_ne!(c.reg(32), pc);
        assert_eq!(c.reg(MHARTID), 2);
        // Ctrl-C: the reply names the thread of the hart that was running.
        c.send("vCont;c");
        thread::sleep(Duration::from_millis(50));
        c.s.write_all(&[0x03]).unwrap();
        let reply = c.reply();
        assert!(reply.starts_with("T02"), "{reply}");
        assert!(matches!(stop_thread(&reply), Some(1..=4)), "{reply}");
        c.send("vKill;1");
        assert_eq!(c.reply(), "OK");
    });
    assert!(ctl.quit_requested());
}
