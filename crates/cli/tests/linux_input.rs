//! Linux drives rewind's virtio keyboard, mouse and tablet: the devices look to the guest as
//! QEMU 10's do (`/proc/bus/input/devices` compared with QEMU running the same initramfs),
//! and keys and pointer events sent over QMP while recording (`send-key`,
//! `input-send-event`) are read by the guest from `/dev/input/eventN`, then replayed with no
//! monitor to the identical console. Skips like `linux.rs` when the Linux assets cannot be made.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "common/qmp_client.rs"]
mod qmp_client;

use common::linux::{boot_args, device_test_passed, linux_assets, APPEND};
use common::{
    have_tool, replay_matched_line, rewind_cmd, run_rewind, skip_because, Done, Proc, Scratch,
};
use qmp_client::{free_port, Qmp};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One recording or replay.
const TIMEOUT: Duration = Duration::from_secs(300);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// The `devices: ` lines the guest printed (its `/proc/bus/input/devices`).
fn device_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("devices: "))
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// The virtio keyboard, mouse and tablet as Linux lists them: identical on rewind and QEMU 10.
#[test]
fn linux_sees_qemus_virtio_input_devices() {
    let Some(assets) = linux_assets() else { return };
    let devices = [
        "virtio-keyboard-device",
        "virtio-mouse-device",
        "virtio-tablet-device",
    ];
    let append = format!("{APPEND} rewind.test=input-devices");
    let mut args = vec![s("run")];
    args.extend(boot_args(&assets));
    for d in devices {
        args.extend([s("--device"), s(d)]);
    }
    args.extend([s("--append"), append.clone()]);
    let rw = run_rewind(&args, TIMEOUT);
    assert_eq!(rw.code, Some(0), "{}", rw.describe());
    assert!(
        device_test_passed(&rw.stdout, "input-devices"),
        "{}",
        rw.describe()
    );
    let ours = device_lines(&rw.stdout);
    for name in [
        "N: Name=\"QEMU Virtio Keyboard\"",
        "N: Name=\"QEMU Virtio Mouse\"",
        "N: Name=\"QEMU Virtio Tablet\"",
        "I: Bus=0006 Vendor=0627 Product=0001 Version=0001",
        "B: ABS=3",
    ] {
        assert!(ours.iter().any(|l| l == name), "no {name:?} in {ours:#?}");
    }
    if !have_tool("qemu-system-riscv64") {
        skip_because("qemu-system-riscv64 is not installed: no comparison with QEMU");
        return;
    }
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"])
        .args(["-cpu", "rv64,h=false", "-no-reboot"])
        .args(["-global", "virtio-mmio.force-legacy=false"]);
    for (flag, file) in [
        ("-bios", "fw_jump.bin"),
        ("-kernel", "Image"),
        ("-initrd", "initrd.cpio.gz"),
    ] {
        qemu.arg(flag).arg(assets.join(file));
    }
    for d in devices {
        qemu.args(["-device", d]);
    }
    qemu.args(["-append", &append]);
    let q = Proc::spawn(qemu, None).finish(TIMEOUT);
    assert!(
        device_test_passed(&q.stdout, "input-devices"),
        "{}",
        q.describe()
    );
    assert_eq!(ours, device_lines(&q.stdout), "QEMU lists other devices");
}

/// `rewind record` of the `input` device test with a keyboard and a tablet and a QMP monitor;
/// stdout goes to `console` so the test can watch for the guest's "input ready".
fn start_recording(assets: &Path, trace: &Path, console: &Path, qmp: &str) -> Child {
    let out = std::fs::File::create(console).expect("console file");
    rewind_cmd()
        .args(["record", "-o"])
        .arg(trace)
        .args(boot_args(assets))
        .args([
            "--device",
            "virtio-keyboard-device",
            "--device",
            "virtio-tablet-device",
            "--qmp",
            &format!("tcp:{qmp}"),
            "--serial",
            "stdio",
            "--append",
            &format!("{APPEND} rewind.test=input"),
        ])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rewind record")
}

/// The host input of the `input` test, the same for rewind and QEMU. F1 goes first: a key
/// sent past the keyboard queue while `send-key` holds would land between its steps at a
/// point that depends on host timing (on QEMU too).
fn send_inputs(q: &mut Qmp) {
    // F1 pressed and released in one report.
    let f1 = |down| json!({"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": "f1"}}});
    q.ok("input-send-event", json!({"events": [f1(true), f1(false)]}));
    // a (qcode) then b (qnum 0x30): pressed in order, released in reverse, 10 ms apart.
    q.ok(
        "send-key",
        json!({"keys": [{"type": "qcode", "data": "a"}, {"type": "number", "data": 0x30}]}),
    );
    q.ok(
        "input-send-event",
        json!({"events": [
            {"type": "abs", "data": {"axis": "x", "value": 16384}},
            {"type": "abs", "data": {"axis": "y", "value": 8192}},
            {"type": "btn", "data": {"down": true, "button": "left"}}
        ]}),
    );
    q.ok(
        "input-send-event",
        json!({"events": [{"type": "btn", "data": {"down": false, "button": "left"}}]}),
    );
    q.ok(
        "input-send-event",
        json!({"events": [{"type": "btn", "data": {"down": true, "button": "wheel-up"}}]}),
    );
}

/// The `event ...` lines of a console.
fn event_lines(console: &str) -> Vec<&str> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("event "))
        .collect()
}

/// A child process killed when the test ends, even by a failed assertion.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until `console` contains one of `markers` (or the recording ends, or `timeout`).
fn wait_for_console(
    child: &mut Child,
    console: &Path,
    markers: &[&str],
    timeout: Duration,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::fs::read_to_string(console).is_ok_and(|c| markers.iter().any(|m| c.contains(m))) {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Keys (`send-key`, qcode and qnum) and key and tablet events (`input-send-event`) sent while
/// recording reach the guest's `/dev/input` readers as QEMU's devices send them; the replay,
/// with no monitor, prints the identical console.
#[test]
fn linux_reads_qmp_input_events_and_replays_them() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("input");
    let trace = dir.path("input.rwtrace");
    let console = dir.path("console.txt");
    let qmp = format!("127.0.0.1:{}", free_port());
    let mut guard = Killed(start_recording(&assets, &trace, &console, &qmp));
    let child = &mut guard.0;
    let stderr = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let ready = wait_for_console(child, &console, &["input ready"], TIMEOUT);
    let mut q = Qmp::connect(&qmp, Duration::from_secs(10));
    if ready {
        send_inputs(&mut q);
    }
    let passed = "--- rewind.test input passed ---";
    let failed = "--- rewind.test input FAILED ---";
    let done = ready && wait_for_console(child, &console, &[passed, failed], TIMEOUT);
    if done {
        q.ok("quit", json!({}));
    }
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if start.elapsed() > Duration::from_secs(60) || !done {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rec = Done {
        stdout: std::fs::read_to_string(&console).unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
    };
    assert!(ready, "the guest never got ready: {}", rec.describe());
    assert!(rec.stdout.contains(passed), "{}", rec.describe());
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let events = event_lines(&rec.stdout);
    assert_eq!(
        events,
        [
            "kbd type=1 code=59 value=1",
            "kbd type=1 code=59 value=0",
            "kbd type=0 code=0 value=0",
            "kbd type=1 code=30 value=1",
            "kbd type=0 code=0 value=0",
            "kbd type=1 code=48 value=1",
            "kbd type=0 code=0 value=0",
            "kbd type=1 code=48 value=0",
            "kbd type=0 code=0 value=0",
            "kbd type=1 code=30 value=0",
            "kbd type=0 code=0 value=0",
            "tab type=3 code=0 value=16384",
            "tab type=3 code=1 value=8192",
            "tab type=1 code=272 value=1",
            "tab type=0 code=0 value=0",
            "tab type=1 code=272 value=0",
            "tab type=0 code=0 value=0",
            "tab type=2 code=8 value=1",
            "tab type=0 code=0 value=0",
        ],
        "{}",
        rec.describe()
    );
    // send-key's default hold, 10 ms, passes in the guest's (virtual) time, plus the time to
    // take the interrupt.
    let hold: u64 = rec
        .stdout
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("kbd hold: "))
        .and_then(|t| t.strip_suffix(" us")?.parse().ok())
        .unwrap_or_else(|| panic!("no hold line: {}", rec.describe()));
    eprintln!("linux input: send-key hold seen by the guest: {hold} us");
    assert!((9_000..12_000).contains(&hold), "hold of {hold} us");
    let rep = run_rewind(&["replay".as_ref(), trace.as_os_str()], TIMEOUT);
    assert_eq!(rep.code, Some(0), "replay: {}", rep.describe());
    assert_eq!(rep.stdout, rec.stdout, "the replay printed something else");
    let full = replay_matched_line(&rep.stderr);
    assert!(full.is_some(), "{}", rep.describe());

    // The events are in the trace at their delivery icounts; a replay started from a snapshot
    // in the middle of them (device state and queued events restored) ends in the same state.
    let dump = run_rewind(&[s("dump"), s(&trace)], TIMEOUT);
    assert_eq!(dump.code, Some(0), "{}", dump.describe());
    let at: Vec<u64> = dump
        .stdout
        .lines()
        .filter(|l| l.contains("InputEvent"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    // 19 events and send-key's 4 holds.
    assert_eq!(at.len(), 23, "{}", dump.stdout);
    assert!(
        dump.stdout.contains("(queued EV_KEY KEY_A)") && dump.stdout.contains("(EV_KEY BTN_LEFT)"),
        "{}",
        dump.stdout
    );
    let middle = at[at.len() / 2];
    let from = run_rewind(
        &[
            s("replay"),
            s(&trace),
            s("--serial"),
            s("null"),
            s("--from"),
            middle.to_string(),
        ],
        TIMEOUT,
    );
    assert_eq!(from.code, Some(0), "--from {middle}: {}", from.describe());
    assert_eq!(
        replay_matched_line(&from.stderr),
        full,
        "--from {middle}: {}",
        from.describe()
    );

    // QEMU 10 with the same devices, guest and QMP commands: the guest reads the same events.
    if !have_tool("qemu-system-riscv64") {
        skip_because("qemu-system-riscv64 is not installed: no comparison with QEMU");
        return;
    }
    let qconsole = dir.path("qemu-console.txt");
    let qmp = format!("127.0.0.1:{}", free_port());
    let mut qemu = Command::new("qemu-system-riscv64");
    qemu.args(["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"])
        .args(["-cpu", "rv64,h=false", "-no-reboot"])
        .args(["-global", "virtio-mmio.force-legacy=false"])
        .args(["-device", "virtio-keyboard-device"])
        .args(["-device", "virtio-tablet-device"])
        .args(["-qmp", &format!("tcp:{qmp},server=on,wait=off")]);
    for (flag, file) in [
        ("-bios", "fw_jump.bin"),
        ("-kernel", "Image"),
        ("-initrd", "initrd.cpio.gz"),
    ] {
        qemu.arg(flag).arg(assets.join(file));
    }
    qemu.args(["-append", &format!("{APPEND} rewind.test=input")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&qconsole).expect("QEMU console file"))
        .stderr(Stdio::null());
    let mut guard = Killed(qemu.spawn().expect("start QEMU"));
    let child = &mut guard.0;
    assert!(
        wait_for_console(child, &qconsole, &["input ready"], TIMEOUT),
        "QEMU: the guest never got ready"
    );
    let mut q = Qmp::connect(&qmp, Duration::from_secs(10));
    send_inputs(&mut q);
    assert!(
        wait_for_console(child, &qconsole, &[passed, failed], TIMEOUT),
        "QEMU: the guest did not finish"
    );
    let qemu_console = std::fs::read_to_string(&qconsole).unwrap_or_default();
    assert!(qemu_console.contains(passed), "QEMU:\n{qemu_console}");
    assert_eq!(
        event_lines(&qemu_console),
        events,
        "QEMU's guest read other events"
    );
}
