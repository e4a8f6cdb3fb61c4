//! The translating engine (`--accel jit`) against the interpreter, end to end: every bare-metal
//! guest that runs on its own records the same console output, exit status and instruction
//! count under both engines, and a trace recorded with either engine replays with the other to
//! the same final state hash. The self-modifying-code guest (`guests/smc`) and the guest that
//! faults in the middle of hot blocks (`guests/jitfault`) are checked line by line, and against
//! live QEMU where the architecture leaves no choice.

#[allow(dead_code)]
mod common;

use common::{
    guest_elf, have_tool, qemu_cmd, recorded_icount, replay_matched_line, rewind_cmd,
    run_with_input, Done, Scratch,
};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(300);

/// Guests that finish without input and run identically every time (the `hostile` guests with
/// other seeds and the interactive ones depend on host input or timing).
const GUESTS: &[&str] = &[
    "demo",
    "rv64i",
    "rv64m",
    "rv64a",
    "rv64c",
    "fpu",
    "bitmanip",
    "csr",
    "traps",
    "priv10",
    "vm",
    "pmp",
    "timer",
    "compute_timer",
    "exit_0",
    "exit_1",
    "exit_42",
    "debugme",
    "hostile_0x5eed",
    "smp_hello",
    "smp_spinlock",
    "smp_race",
    "smp_debug",
    "smc",
    "jitfault",
];

/// Blocks are translated after this many executions (the guests are short). Recordings and
/// `run`s translate on the hart's thread (`REWIND_JIT_BACKGROUND=0`: a block runs translated
/// from the moment it is hot, whatever the machine's load); replays use the compile thread, so
/// both ways are checked against the interpreter.
const HOT: &str = "16";

fn record(elf: &Path, accel: &str, trace: &Path) -> Done {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.env("REWIND_JIT_BACKGROUND", "0");
    cmd.args(["record", "-q", "--force", "--accel", accel, "-o"])
        .arg(trace)
        .args(["--bios", "none", "--serial", "stdio", "--kernel"])
        .arg(elf);
    run_with_input(cmd, b"", TIMEOUT)
}

/// `(instructions, state hash)` of replaying `trace` with `accel`.
fn replay(trace: &Path, accel: &str) -> (u64, String) {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.arg("replay")
        .arg(trace)
        .args(["--accel", accel, "--serial", "null", "-q"]);
    let d = run_with_input(cmd, b"", TIMEOUT);
    replay_matched_line(&d.stderr).unwrap_or_else(|| {
        panic!(
            "replay of {} with {accel} did not match\n{}",
            trace.display(),
            d.describe()
        )
    })
}

/// Record `name` with both engines, compare, and replay each trace with the other engine.
fn check(name: &str, dir: &Scratch) -> String {
    let Some(elf) = guest_elf(name) else {
        return String::new();
    };
    let ti = dir.path(&format!("{name}.interp.rwd"));
    let tj = dir.path(&format!("{name}.jit.rwd"));
    let i = record(&elf, "interp", &ti);
    let j = record(&elf, "jit", &tj);
    assert_eq!(
        i.code,
        j.code,
        "{name}: exit status\n{}\n{}",
        i.describe(),
        j.describe()
    );
    assert_eq!(i.stdout, j.stdout, "{name}: console output");
    let n = recorded_icount(&i.stderr);
    assert!(n.is_some(), "{name}: no icount\n{}", i.describe());
    assert_eq!(
        n,
        recorded_icount(&j.stderr),
        "{name}: instructions recorded"
    );
    let a = replay(&tj, "interp");
    let b = replay(&ti, "jit");
    assert_eq!(a, b, "{name}: cross-engine replays end in different states");
    assert_eq!(Some(a.0), n, "{name}: replayed instruction count");
    j.stdout
}

#[test]
fn every_guest_is_identical_under_both_engines_and_replays_across_them() {
    let dir = Scratch::new("jit-guests");
    for name in GUESTS {
        check(name, &dir);
    }
}

#[test]
fn self_modifying_code_is_seen_at_once_by_translated_code() {
    let dir = Scratch::new("jit-smc");
    let out = check("smc", &dir);
    if out.is_empty() {
        return; // no toolchain
    }
    for line in [
        "k=5 no fence: fff6",
        "k=7 no fence: fff4",
        "k=-9 fence.i: 4",
        "smc finished: pass",
    ] {
        assert!(out.lines().any(|l| l == line), "smc lacks {line:?}\n{out}");
    }
    // Patching code while running it without fence.i: rewind invalidates at the store (QEMU
    // executes the stale instruction once per call: 238000); both are allowed.
    assert!(out.contains("same-page patch: 202000"), "{out}");
}

#[test]
fn faults_in_the_middle_of_translated_blocks_are_precise() {
    let dir = Scratch::new("jit-fault");
    let out = check("jitfault", &dir);
    if out.is_empty() {
        return;
    }
    let traps: Vec<&str> = out.lines().filter(|l| l.starts_with("trap:")).collect();
    assert_eq!(traps.len(), 6, "{out}");
    assert!(out.contains("jitfault finished: pass"), "{out}");
    // Load and store access faults (mcause 5 and 7): mepc, mtval and minstret as QEMU has them.
    if have_tool("qemu-system-riscv64") {
        let elf = guest_elf("jitfault").expect("built above");
        let q = run_with_input(qemu_cmd(&elf), b"", TIMEOUT);
        for l in q
            .stdout
            .lines()
            .filter(|l| l.starts_with("trap: mcause=5") || l.starts_with("trap: mcause=7"))
        {
            assert!(
                out.lines().any(|o| o == l),
                "QEMU has {l:?}, rewind --accel jit:\n{out}"
            );
        }
    }
}

/// The scripted Linux boot recorded with the JIT (default threshold) finishes its test and
/// replays with the interpreter to the same state as the recording.
#[test]
fn linux_recorded_with_the_jit_replays_with_the_interpreter() {
    let Some(assets) = common::linux::linux_assets() else {
        return;
    };
    let dir = Scratch::new("jit-linux");
    let trace = dir.path("linux.rwd");
    let mut cmd = rewind_cmd();
    cmd.args(["record", "-q", "--accel", "jit", "-o"])
        .arg(&trace)
        .args(common::linux::boot_args(&assets))
        .args([
            "--append",
            &format!("{} rewind.test=1", common::linux::APPEND),
            "--serial",
            "stdio",
        ]);
    let rec = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    assert!(
        rec.stdout.contains("--- rewind.test end ---"),
        "the scripted test did not finish under --accel jit\n{}",
        common::tail(&rec.stdout, 30)
    );
    let n = recorded_icount(&rec.stderr).expect("recorded instruction count");
    let (replayed, _) = replay(&trace, "interp");
    assert_eq!(replayed, n, "instructions replayed");
}

/// Guests run with `--accel jit,check=interp` (every translated region run again by the
/// interpreter from the same state) and with the plain interpreter.
const CHECKED: &[&str] = &[
    "rv64i",
    "rv64m",
    "rv64c",
    "bitmanip",
    "traps",
    "vm",
    "pmp",
    "timer",
    "smc",
    "jitfault",
    "hostile_0x5eed",
];

/// `rewind run` of `elf` with `accel` and the environment `env`.
fn run(elf: &Path, accel: &str, env: &[(&str, &str)]) -> Done {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.env("REWIND_JIT_BACKGROUND", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "run", "--stats", "--accel", accel, "--bios", "none", "--kernel",
    ])
    .arg(elf);
    run_with_input(cmd, b"", TIMEOUT)
}

/// The lockstep self-check agrees with translated code on real guests (same output and exit
/// status as the interpreter, and it did check regions), and stops at an injected difference
/// naming the register, both values, the region's pc and icount.
#[test]
fn lockstep_self_check_passes_on_guests_and_catches_a_corrupted_result() {
    for name in CHECKED {
        let Some(elf) = guest_elf(name) else {
            return;
        };
        let plain = run(&elf, "interp", &[]);
        let checked = run(&elf, "jit,check=interp", &[]);
        assert_eq!(
            plain.code,
            checked.code,
            "{name}: exit status\n{}",
            checked.describe()
        );
        assert_eq!(plain.stdout, checked.stdout, "{name}: console output");
        let regions: u64 = checked
            .stderr
            .lines()
            .find(|l| l.contains("jit regions checked (check=interp)"))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or_else(|| panic!("{name}: no check count\n{}", checked.describe()));
        if *name != "pmp" {
            assert!(
                regions > 0,
                "{name}: no region was checked\n{}",
                checked.describe()
            );
        }
    }
    let Some(elf) = guest_elf("rv64m") else {
        return;
    };
    let bad = run(&elf, "jit,check=interp", &[("REWIND_JIT_CHECK_FAULT", "3")]);
    assert_eq!(bad.code, Some(2), "{}", bad.describe());
    let line = bad
        .stderr
        .lines()
        .find(|l| l.contains("JIT self-check failed"))
        .unwrap_or_else(|| panic!("no self-check report\n{}", bad.describe()));
    for part in [
        "on hart 0",
        "the region entered at pc 0x8",
        ", icount ",
        "differs from the interpreter: x",
        ": translated code 0x",
        ", interpreter 0x",
    ] {
        assert!(line.contains(part), "{part:?} not in {line:?}");
    }
    // The two values differ in bit 0 only (what the hook flipped).
    let vals: Vec<u64> = line
        .split("0x")
        .skip(2)
        .map(|v| {
            let hex: String = v.chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).expect("hex value")
        })
        .collect();
    assert_eq!(vals.len(), 2, "{line}");
    assert_eq!(vals[0] ^ vals[1], 1, "{line}");
    // Without the check, the same corruption hook does nothing (it lives in the check).
    let plain = run(&elf, "jit", &[("REWIND_JIT_CHECK_FAULT", "3")]);
    assert_eq!(plain.code, Some(0), "{}", plain.describe());
}

/// `--accel jit,check=interp` is a record/replay engine option too, and QEMU's spelling
/// `-accel jit,check=interp` means the same; a check option on the interpreter is refused.
#[test]
fn lockstep_self_check_records_and_replays() {
    let Some(elf) = guest_elf("traps") else {
        return;
    };
    let dir = Scratch::new("jit-check-rr");
    let trace = dir.path("traps.rwd");
    let rec = record(&elf, "jit,check=interp", &trace);
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    let n = recorded_icount(&rec.stderr);
    let (a, _) = replay(&trace, "jit,check=interp");
    assert_eq!(Some(a), n);
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.args([
        "run",
        "-M",
        "virt",
        "-nographic",
        "-accel",
        "jit,check=interp",
        "-bios",
        "none",
        "-kernel",
    ])
    .arg(&elf);
    let q = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(q.stdout, rec.stdout, "{}", q.describe());
    let mut cmd = rewind_cmd();
    cmd.args(["run", "--accel", "interp,check=interp", "--kernel"])
        .arg(&elf);
    let bad = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(bad.code, Some(2), "{}", bad.describe());
    assert!(
        bad.stderr.contains("use jit,check=interp"),
        "{}",
        bad.describe()
    );
}

/// Record `elf` with `accel` and extra options; (run, trace).
fn record_with(elf: &Path, accel: &str, trace: &Path, extra: &[&str]) -> Done {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.env("REWIND_JIT_BACKGROUND", "0");
    cmd.args(["record", "-q", "--force", "--accel", accel, "-o"])
        .arg(trace)
        .args(extra)
        .args(["--bios", "none", "--serial", "stdio", "--kernel"])
        .arg(elf);
    run_with_input(cmd, b"", TIMEOUT)
}

/// `(instructions, state hash)` of replaying `trace` with `accel` and extra options.
fn replay_with(trace: &Path, accel: &str, extra: &[&str]) -> (u64, String) {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
    cmd.arg("replay")
        .arg(trace)
        .args(["--accel", accel, "--serial", "null", "-q"])
        .args(extra);
    let d = run_with_input(cmd, b"", TIMEOUT);
    replay_matched_line(&d.stderr).unwrap_or_else(|| {
        panic!(
            "replay of {} with {accel} {extra:?} did not match\n{}",
            trace.display(),
            d.describe()
        )
    })
}

/// Snapshots taken while recording under one engine restore under the other: a replay from
/// the middle (`--from`, which starts at the snapshot before it) ends in the state of the full
/// replay, both ways.
#[test]
fn snapshots_taken_under_one_engine_restore_under_the_other() {
    let Some(elf) = guest_elf("compute_timer") else {
        return;
    };
    let dir = Scratch::new("jit-snap");
    for (rec_engine, replay_engine) in [("jit", "interp"), ("interp", "jit")] {
        let trace = dir.path(&format!("{rec_engine}.rwd"));
        let rec = record_with(&elf, rec_engine, &trace, &["--snapshot-every", "20000000"]);
        assert_eq!(rec.code, Some(0), "{}", rec.describe());
        let n = recorded_icount(&rec.stderr).expect("icount");
        let full = replay_with(&trace, rec_engine, &[]);
        assert_eq!(full.0, n);
        for from in [40_000_000 + 4_321, n - 10_000] {
            let part = replay_with(&trace, replay_engine, &["--from", &from.to_string()]);
            assert_eq!(
                part, full,
                "recorded with {rec_engine}, replayed with {replay_engine} from {from}"
            );
        }
    }
}

/// The SMP and virtio scenarios on bare metal recorded with one engine replay with the other to
/// the same final state: four harts under chaos scheduling (a race whose outcome depends on
/// the interleaving), and a virtio-rng device whose entropy comes from the trace.
#[test]
fn smp_and_virtio_traces_replay_across_engines() {
    let dir = Scratch::new("jit-cross");
    let cases: [(&str, &[&str]); 4] = [
        ("smp_race", &["--smp", "4", "--chaos", "7"]),
        ("smp_spinlock", &["--smp", "4", "--chaos", "3"]),
        ("smp_hello", &["--smp", "2"]),
        ("virtio_rng", &["--device", "virtio-rng-device"]),
    ];
    for (name, extra) in cases {
        let Some(elf) = guest_elf(name) else {
            return;
        };
        let ti = dir.path(&format!("{name}.interp.rwd"));
        let tj = dir.path(&format!("{name}.jit.rwd"));
        let i = record_with(&elf, "interp", &ti, extra);
        let j = record_with(&elf, "jit", &tj, extra);
        assert_eq!(i.code, Some(0), "{name}\n{}", i.describe());
        assert_eq!(j.code, Some(0), "{name}\n{}", j.describe());
        if name != "virtio_rng" {
            // Same guest, same seed: the same run (the rng's bytes come from the host).
            assert_eq!(i.stdout, j.stdout, "{name}: console output");
        }
        for (trace, rec, engines) in [(&ti, &i, ["interp", "jit"]), (&tj, &j, ["jit", "interp"])] {
            let n = recorded_icount(&rec.stderr).expect("icount");
            let same = replay_with(trace, engines[0], &[]);
            let other = replay_with(trace, engines[1], &[]);
            assert_eq!(same.0, n, "{name}: {}", trace.display());
            assert_eq!(
                other, same,
                "{name}: recorded with {}, replayed with {}",
                engines[0], engines[1]
            );
        }
    }
}
