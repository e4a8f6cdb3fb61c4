//! The human monitor (HMP) behind QMP's `human-monitor-command`: the `info` commands and the
//! control commands QEMU users type, answered in QEMU's words. Control commands are the QMP
//! ones underneath; their errors come back as text (`Error: …`), as QEMU's HMP prints them.

use serde_json::{json, Value};

use crate::control::Controller;
use crate::qmp::QmpError;

/// The commands, with a line of help each (`help`).
const HELP: &[(&str, &str)] = &[
    (
        "info cpus",
        "show the harts (* marks the one whose turn it is)",
    ),
    ("info registers", "show the hart's registers"),
    (
        "info replay",
        "show the record/replay mode and instruction count",
    ),
    ("info snapshots", "show the snapshots a seek can start from"),
    ("info status", "show the machine's run state"),
    ("stop", "pause the machine"),
    ("cont|c", "resume the machine"),
    (
        "replay_break icount",
        "stop the replay at instruction icount",
    ),
    ("replay_delete_break", "remove the replay breakpoint"),
    (
        "replay_seek icount",
        "go to instruction icount (backwards too)",
    ),
    ("system_reset", "reset the machine (recorded)"),
    (
        "system_powerdown",
        "press the power button (virt has none: no effect)",
    ),
    (
        "sendkey keys [hold_ms]",
        "send keys to the virtio keyboard (ctrl-alt-f1; 0x.. is a key number)",
    ),
    ("quit|q", "quit"),
    ("help|?", "this list"),
];

/// Carry out one HMP command line; the answer is the text HMP would print.
pub fn execute(ctl: &mut Controller, line: &str) -> Result<String, QmpError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let qmp = |ctl: &mut Controller, cmd: &str, args: Value| -> String {
        match crate::qmp::execute(ctl, cmd, &args) {
            Ok(_) => String::new(),
            Err(e) => format!("Error: {e}\n"),
        }
    };
    let icount_arg = |ctl: &mut Controller, cmd: &str, arg: Option<&&str>| -> String {
        match arg.and_then(|a| parse_number(a)) {
            Some(n) => qmp(ctl, cmd, json!({ "icount": n })),
            None => format!(
                "Error: {} needs an instruction count\n",
                cmd.replace('-', "_")
            ),
        }
    };
    Ok(match words.as_slice() {
        [] => String::new(),
        ["info", "cpus"] => cpus(ctl),
        ["info", "registers", ..] => registers(ctl),
        ["info", "replay"] => replay(ctl),
        ["info", "snapshots"] => snapshots(ctl),
        ["info", "status"] => format!("VM status: {}\n", status(ctl)),
        ["info", what, ..] => format!("unknown info subcommand: '{what}' (try 'help')\n"),
        ["info"] => "info: needs a subcommand: cpus, registers, replay, snapshots, status\n".into(),
        ["stop"] => qmp(ctl, "stop", json!({})),
        ["cont" | "c"] => qmp(ctl, "cont", json!({})),
        ["quit" | "q"] => qmp(ctl, "quit", json!({})),
        ["system_reset"] => qmp(ctl, "system_reset", json!({})),
        ["system_powerdown"] => qmp(ctl, "system_powerdown", json!({})),
        ["replay_break", rest @ ..] => icount_arg(ctl, "replay-break", rest.first()),
        ["replay_seek", rest @ ..] => icount_arg(ctl, "replay-seek", rest.first()),
        ["replay_delete_break"] => qmp(ctl, "replay-delete-break", json!({})),
        ["sendkey", keys, rest @ ..] if rest.len() <= 1 => {
            // QEMU's spelling: qcode names joined by '-', `0x..` for a key number.
            let keys: Vec<Value> = keys
                .split('-')
                .map(
                    |k| match k.strip_prefix("0x").map(|h| i64::from_str_radix(h, 16)) {
                        Some(Ok(n)) => json!({"type": "number", "data": n}),
                        _ => json!({"type": "qcode", "data": k}),
                    },
                )
                .collect();
            let mut args = json!({ "keys": keys });
            if let Some(hold) = rest.first() {
                match hold.parse::<i64>() {
                    Ok(ms) => args["hold-time"] = json!(ms),
                    Err(_) => return Ok(format!("Error: sendkey: bad hold time '{hold}'\n")),
                }
            }
            qmp(ctl, "send-key", args)
        }
        ["help" | "?", ..] => HELP
            .iter()
            .map(|(c, h)| format!("{c:<24} -- {h}\n"))
            .collect(),
        [cmd, ..] => format!("unknown command: '{cmd}'\n"),
    })
}

/// A decimal or `0x` hexadecimal count.
fn parse_number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// QEMU's run-state names as `info status` prints them.
fn status(ctl: &Controller) -> &'static str {
    match ctl.status() {
        "running" => "running",
        "shutdown" => "paused (shutdown)",
        "debug" => "paused (debug)",
        _ => "paused",
    }
}

/// `info registers`, laid out as QEMU's RISC-V `cpu_dump_state`: pc and the CSRs, then the
/// integer registers four to a line, then the FP registers.
fn registers(ctl: &Controller) -> String {
    const ABI: [&str; 32] = [
        "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
        "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
        "t5", "t6",
    ];
    const FABI: [&str; 32] = [
        "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
        "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
        "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
    ];
    let machine = ctl.session().machine();
    let hart = machine.hart();
    let mut out = format!(" {:<8} {:016x}\n", "pc", hart.pc);
    out.push_str(&format!(" {:<8} {:016x}\n", "mhartid", 0));
    let privilege = match hart.prv {
        rewind_cpu::Priv::M => 3,
        rewind_cpu::Priv::S => 1,
        rewind_cpu::Priv::U => 0,
    };
    out.push_str(&format!(" {:<8} {:016x}\n", "priv", privilege));
    // The CSRs a state check compares, by name (mstatus, mepc, satp, ...).
    for (name, value) in machine.state_snapshot() {
        let skip = name == "pc" || name.starts_with('x') && name[1..].parse::<u8>().is_ok();
        if !skip && !matches!(name, "icount" | "priv" | "output") {
            out.push_str(&format!(" {name:<8} {value:016x}\n"));
        }
    }
    for (row, regs) in hart.x.chunks(4).enumerate() {
        for (col, v) in regs.iter().enumerate() {
            let i = row * 4 + col;
            out.push_str(&format!(" x{i}/{:<5}{v:016x}", ABI[i]));
        }
        out.push('\n');
    }
    for (row, regs) in hart.f.chunks(4).enumerate() {
        for (col, v) in regs.iter().enumerate() {
            let i = row * 4 + col;
            out.push_str(&format!(" {:<5}{v:016x}", FABI[i]));
        }
        out.push('\n');
    }
    out
}

/// `info replay` in QEMU's words.
fn replay(ctl: &Controller) -> String {
    let session = ctl.session();
    let file = session
        .trace_path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut out = match session.mode() {
        rewind_replay::Mode::Run => return "Record/replay is not active\n".into(),
        rewind_replay::Mode::Record => format!("Recording execution in file '{file}'\n"),
        rewind_replay::Mode::Replay => format!("Replaying execution '{file}'\n"),
    };
    out.push_str(&format!("instruction count = {}\n", session.icount()));
    if let Some(b) = session.replay_break() {
        out.push_str(&format!("replay breakpoint at instruction {b}\n"));
    }
    out
}

/// `info snapshots`: the in-memory snapshots a seek or reverse step starts from.
fn snapshots(ctl: &Controller) -> String {
    let seeker = ctl.session().seeker();
    let at = seeker.snapshot_icounts();
    if at.is_empty() {
        return "There is no snapshot available.\n".into();
    }
    let mut out = format!(
        "{} snapshots ({} bytes in memory):\nID        ICOUNT\n",
        at.len(),
        seeker.snapshot_memory()
    );
    for (i, n) in at.iter().enumerate() {
        out.push_str(&format!("{:<9} {n}\n", i + 1));
    }
    out
}

/// `info cpus` in QEMU's words: one line per hart, the current one (whose turn it is) starred.
fn cpus(ctl: &Controller) -> String {
    let machine = ctl.session().machine();
    let current = machine.current_hart();
    let tid = crate::qmp::cpu_thread_id();
    (0..machine.harts().len())
        .map(|i| {
            let star = if i == current { '*' } else { ' ' };
            format!("{star} CPU #{i}: thread_id={tid}\n")
        })
        .collect()
}
