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

/// Blocks are translated after this many executions (the guests are short).
const HOT: &str = "16";

fn record(elf: &Path, accel: &str, trace: &Path) -> Done {
    let mut cmd = rewind_cmd();
    cmd.env("REWIND_JIT_HOT", HOT);
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
