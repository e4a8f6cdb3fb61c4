//! QMP's `send-key` and `input-send-event` against `rewind record` with a virtio keyboard and
//! tablet and mouse: the events reach the trace translated and routed as QEMU does (keys to
//! the keyboard, absolute moves to the tablet, relative moves to the mouse, buttons to the last
//! of tablet and mouse on the command line, as QEMU after Linux brought them up; one
//! `SYN_REPORT` per device and report), QEMU's errors for what cannot be delivered, and the
//! replay refuses host input.
//! The guest is a bare-metal loop (no driver), so it needs no toolchain: the events are logged
//! at their delivery and dropped by the device, identically in replay.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "common/qmp_client.rs"]
mod qmp_client;

use common::{rewind_cmd, run_rewind, Proc, Scratch, Server};
use qmp_client::{free_port, logged_input_events, Qmp};
use serde_json::json;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A RISC-V ELF whose one instruction, at 0x8000_0000, jumps to itself.
fn loop_elf() -> Vec<u8> {
    let entry: u64 = 0x8000_0000;
    let code = 0x0000_006fu32.to_le_bytes(); // j .
    let mut e = Vec::new();
    e.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&243u16.to_le_bytes()); // EM_RISCV
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&entry.to_le_bytes());
    e.extend_from_slice(&64u64.to_le_bytes()); // phoff
    e.extend_from_slice(&0u64.to_le_bytes()); // shoff
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    // PT_LOAD, R+X, at file offset 120.
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&5u32.to_le_bytes());
    for v in [120u64, entry, entry, 4, 4, 4] {
        e.extend_from_slice(&v.to_le_bytes());
    }
    e.extend_from_slice(&code);
    e
}

const KBD: u8 = 7;
const TABLET: u8 = 6;
const MOUSE: u8 = 5;

#[test]
fn qmp_input_commands_are_translated_routed_logged_and_refused_in_replay() {
    let dir = Scratch::new("input-qmp");
    let elf = dir.write("loop.elf", loop_elf());
    let trace = dir.path("input.rwtrace");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = rewind_cmd();
    cmd.arg("record")
        .arg("-o")
        .arg(&trace)
        .args(["--bios", "none", "--kernel"])
        .arg(&elf)
        .args([
            "--device",
            "virtio-keyboard-device,id=kbd",
            "--device",
            "virtio-tablet",
            "--device",
            "virtio-mouse-device",
            "--serial",
            "null",
            "--qmp",
            &format!("tcp:{addr}"),
            "-S",
        ]);
    let mut server = Server(Some(Proc::spawn(cmd, None)));
    let mut q = Qmp::connect(&addr, TIMEOUT);

    // Paused: QEMU's "VM not running".
    let key_a =
        json!({"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "a"}}});
    let (_, desc) = q.err("input-send-event", json!({"events": [key_a]}));
    assert_eq!(desc, "VM not running");
    q.ok("cont", json!({}));

    // a (qcode), a (qnum 0x1e), ctrl: pressed in order, released in reverse.
    q.ok(
        "send-key",
        json!({"keys": [
            {"type": "qcode", "data": "a"},
            {"type": "number", "data": 0x1e},
            {"type": "qcode", "data": "ctrl"}
        ], "hold-time": 1}),
    );
    // Absolute moves go to the tablet, buttons to the mouse; one SYN_REPORT per device.
    q.ok(
        "input-send-event",
        json!({"events": [
            {"type": "abs", "data": {"axis": "x", "value": 100}},
            {"type": "abs", "data": {"axis": "y", "value": 32767}},
            {"type": "btn", "data": {"down": true, "button": "left"}},
            {"type": "btn", "data": {"down": true, "button": "wheel-up"}}
        ]}),
    );
    // Named device, and a key and a button in one command: one SYN_REPORT per device.
    q.ok(
        "input-send-event",
        json!({"device": "kbd", "events": [
            {"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "f12"}}},
            {"type": "btn", "data": {"down": false, "button": "left"}}
        ]}),
    );
    // Relative moves: only the mouse takes them.
    q.ok(
        "input-send-event",
        json!({"events": [
            {"type": "rel", "data": {"axis": "x", "value": 5}},
            {"type": "rel", "data": {"axis": "y", "value": -3}}
        ]}),
    );
    // A `number` key goes through QEMU's keyboard queue with a sync of its own; the qcode key
    // and the tablet move go past it.
    q.ok(
        "input-send-event",
        json!({"events": [
            {"type": "abs", "data": {"axis": "x", "value": 7}},
            {"type": "key", "data": {"down": true, "key": {"type": "number", "data": 0x1c}}},
            {"type": "key", "data": {"down": false, "key": {"type": "qcode", "data": "ret"}}}
        ]}),
    );
    // HMP's sendkey: QEMU's key spelling, then the same path.
    assert_eq!(
        q.ok(
            "human-monitor-command",
            json!({"command-line": "sendkey ctrl-0x1e 2"})
        ),
        json!("")
    );
    let hmp = q.ok(
        "human-monitor-command",
        json!({"command-line": "sendkey nosuchkey"}),
    );
    assert!(
        hmp.as_str().is_some_and(|t| t.starts_with("Error: ")),
        "{hmp}"
    );
    // What no device here takes, or is not QAPI.
    let (class, desc) = q.err(
        "input-send-event",
        json!({"device": "nope", "events": [key_a]}),
    );
    assert_eq!(
        (class.as_str(), desc.as_str()),
        ("DeviceNotFound", "Device 'nope' not found")
    );
    for (event, want) in [
        (
            json!({"type": "mtt", "data": {"type": "begin", "slot": 0, "tracking-id": 1, "axis": "x", "value": 1}}),
            "Input handler not found for event type mtt",
        ),
        (
            json!({"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "nosuchkey"}}}),
            "Parameter 'events[0].data.key.data' does not accept value 'nosuchkey'",
        ),
        (
            json!({"type": "abs", "data": {"axis": "z", "value": 1}}),
            "Parameter 'events[0].data.axis' does not accept value 'z'",
        ),
        (
            json!({"type": "btn", "data": {"button": "left"}}),
            "Parameter 'events[0].data.down' is missing",
        ),
    ] {
        let (_, desc) = q.err("input-send-event", json!({"events": [event]}));
        assert_eq!(desc, want);
    }
    let (_, desc) = q.err("send-key", json!({"keys": [], "hold-time": -1}));
    assert!(desc.contains("hold-time"), "{desc}");

    // The queue thread hands everything over within milliseconds; let the machine take it.
    std::thread::sleep(Duration::from_millis(500));
    q.ok("quit", json!({}));
    let rec = server.0.take().expect("server").finish(TIMEOUT);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    assert!(
        rec.stderr.contains("rewind: recorded "),
        "{}",
        rec.describe()
    );

    let dump = run_rewind(&["dump".as_ref(), trace.as_os_str()], TIMEOUT);
    assert_eq!(dump.code, Some(0), "{}", dump.describe());
    let syn = |d| (d, 0, 0, 0);
    let key = |code, v| (KBD, 1, code, v);
    // Through the keyboard queue (send-key, number keys): the type carries 0x8000, and the
    // keyboard waits `hold` ms of virtual time after each send-key step.
    let qkey = |code, v| (KBD, 0x8001, code, v);
    let qsyn = (KBD, 0x8000, 0, 0);
    let hold = |ms| (KBD, 0xffff, 0, ms);
    let mut want = Vec::new();
    for (code, v) in [(30, 1), (30, 1), (29, 1), (29, 0), (30, 0), (30, 0)] {
        want.extend([qkey(code, v), qsyn, hold(1)]);
    }
    want.extend([
        // Buttons go to the last device on the command line that takes them (the mouse).
        (TABLET, 3, 0, 100),
        (TABLET, 3, 1, 32767),
        (MOUSE, 1, 0x110, 1),
        (MOUSE, 2, 8, 1),
        // The devices a command touched get their SYN_REPORT last-activated first.
        syn(MOUSE),
        syn(TABLET),
        key(88, 1),
        (MOUSE, 1, 0x110, 0),
        syn(MOUSE),
        syn(KBD),
        (MOUSE, 2, 0, 5),
        (MOUSE, 2, 1, -3),
        syn(MOUSE),
        (TABLET, 3, 0, 7),
        qkey(28, 1),
        qsyn,
        key(28, 0),
        syn(TABLET),
        syn(KBD),
    ]);
    for (code, v) in [(29, 1), (30, 1), (30, 0), (29, 0)] {
        want.extend([qkey(code, v), qsyn, hold(2)]);
    }
    assert_eq!(logged_input_events(&dump.stdout), want, "{}", dump.stdout);
    assert!(
        dump.stdout.contains("(queued EV_KEY KEY_A)") && dump.stdout.contains("(EV_ABS ABS_Y)"),
        "{}",
        dump.stdout
    );

    // Replay delivers the logged events with no monitor; with one, host input is refused.
    let rep = run_rewind(&["replay".as_ref(), trace.as_os_str()], TIMEOUT);
    assert_eq!(rep.code, rec.code, "replay: {}", rep.describe());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = rewind_cmd();
    cmd.arg("replay")
        .arg(&trace)
        .args(["--serial", "null", "--qmp", &format!("tcp:{addr}"), "-S"]);
    let mut server = Server(Some(Proc::spawn(cmd, None)));
    let mut q = Qmp::connect(&addr, TIMEOUT);
    for command in ["send-key", "input-send-event"] {
        let args = if command == "send-key" {
            json!({"keys": [{"type": "qcode", "data": "a"}]})
        } else {
            json!({"events": [key_a]})
        };
        let (_, desc) = q.err(command, args);
        assert!(desc.contains("not available in replay"), "{desc}");
    }
    q.ok("quit", json!({}));
    let rep = server.0.take().expect("server").finish(TIMEOUT);
    assert_eq!(rep.code, Some(0), "{}", rep.describe());
}
