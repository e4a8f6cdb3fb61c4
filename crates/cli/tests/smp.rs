//! Several harts on bare metal (guests/smp_*): the same output as QEMU 10 where the guest is
//! deterministic by design, a race whose outcome follows the chaos seed and replays exactly,
//! locks and LR/SC that stay correct under chaos, and `rewind hunt` finding a failing
//! interleaving and keeping a trace that reproduces it.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, guest_elf, have_tool, qemu_cmd, replay_matched_line, required,
    rewind_run_cmd, run_rewind, skip_because, Done, Proc, Scratch,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn elf(name: &str) -> Option<PathBuf> {
    let e = guest_elf(name);
    if e.is_none() {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but guests cannot be built"
        );
        skip_because("the RISC-V guest toolchain");
    }
    e
}

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind_smp(elf: &Path, harts: u32, extra: &[&str]) -> Done {
    let mut cmd = rewind_run_cmd(elf);
    cmd.args(["--smp", &harts.to_string()]).args(extra);
    Proc::spawn(cmd, None).finish(TIMEOUT)
}

fn record(elf: &Path, trace: &Path, harts: u32, chaos: Option<u64>) -> Done {
    let mut args = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--smp"),
        harts.to_string(),
    ];
    if let Some(seed) = chaos {
        args.extend([s("--chaos"), seed.to_string()]);
    }
    args.extend([s("--kernel"), s(elf), s("--serial"), s("stdio")]);
    run_rewind(&args, TIMEOUT)
}

/// A replay of `trace` that matches its recording; its console.
fn replay_matches(trace: &Path, recorded: &Done) -> String {
    let rep = run_rewind(&[s("replay"), s(trace)], TIMEOUT);
    assert_eq!(rep.code, recorded.code, "replay status: {}", rep.describe());
    assert!(
        replay_matched_line(&rep.stderr).is_some(),
        "replay did not match: {}",
        rep.describe()
    );
    assert_eq!(rep.stdout, recorded.stdout, "replay printed something else");
    rep.stdout
}

fn line_value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// smp_hello (release order, IPIs through each hart's msip, each hart's own mtimecmp) and
/// smp_spinlock print the same as on QEMU 10 for 1, 2, 4 and 8 harts — except the one line
/// where QEMU departs from the spec (an SC after another hart stored the same value).
#[test]
fn smp_guests_print_what_qemu_prints() {
    let Some(hello) = elf("smp_hello") else {
        return;
    };
    let Some(spin) = elf("smp_spinlock") else {
        return;
    };
    let qemu = have_tool("qemu-system-riscv64");
    if !qemu {
        assert!(
            !required(),
            "REWIND_REQUIRE_GUESTS is set but QEMU is missing"
        );
        skip_because("qemu-system-riscv64");
        return;
    }
    for (guest, harts) in [
        (&hello, 1),
        (&hello, 2),
        (&hello, 4),
        (&hello, 8),
        (&spin, 2),
        (&spin, 4),
    ] {
        let ours = rewind_smp(guest, harts, &[]);
        assert_eq!(
            ours.code,
            Some(0),
            "{}: {}",
            guest.display(),
            ours.describe()
        );
        let mut q = qemu_cmd(guest);
        q.args(["-smp", &harts.to_string()]);
        let theirs = Proc::spawn(q, None).finish(TIMEOUT);
        assert_eq!(theirs.code, Some(0), "QEMU: {}", theirs.describe());
        let keep = |o: &str| {
            o.lines()
                .filter(|l| !l.starts_with("lrsc-aba"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_same_output(
            &format!("{} -smp {harts}", guest.display()),
            &keep(&theirs.stdout),
            &keep(&ours.stdout),
        );
        assert!(ours.stdout.contains(&format!("harts: {harts}")) || guest == &spin);
    }
}

/// A store by another hart between LR and SC makes the SC fail, even when it stored the value
/// the LR read (the spec; QEMU 10's compare-and-swap SC succeeds there). Locks built on
/// amoswap and on LR/SC, amoadd and an LR/SC compare-and-swap loop count exactly under chaos.
#[test]
fn atomics_and_lr_sc_hold_under_chaos() {
    let Some(spin) = elf("smp_spinlock") else {
        return;
    };
    for seed in [1u64, 2, 3] {
        let o = rewind_smp(&spin, 4, &["--chaos", &seed.to_string()]);
        assert_eq!(o.code, Some(0), "chaos {seed}: {}", o.describe());
        assert!(
            o.stdout
                .contains("spinlock: harts=4 amoswap=8000 lrsc=8000 amoadd=8000 cas=8000 ok"),
            "chaos {seed}: {}",
            o.stdout
        );
        assert!(o.stdout.contains("lrsc-aba: sc failed"), "{}", o.stdout);
        assert!(o.stdout.contains("lrsc-diff: sc failed"), "{}", o.stdout);
    }
}

/// Two harts increment a counter without atomics: the updates lost follow the chaos seed, and
/// every recording replays to its own count. Snapshots hold the scheduler: a seek back lands
/// on the state reached forwards.
#[test]
fn a_race_follows_the_chaos_seed_and_replays_exactly() {
    let Some(race) = elf("smp_race") else { return };
    let dir = Scratch::new("smp-race");
    let mut counts = Vec::new();
    let mut first_icount = None;
    for seed in [1u64, 2, 3, 4] {
        let trace = dir.path(&format!("race{seed}.rwd"));
        let rec = record(&race, &trace, 2, Some(seed));
        assert_eq!(rec.code, Some(0), "chaos {seed}: {}", rec.describe());
        let count = line_value(&rec.stdout, "count=")
            .unwrap_or_else(|| panic!("no count: {}", rec.stdout))
            .to_string();
        replay_matches(&trace, &rec);
        first_icount = first_icount.or(common::recorded_icount(&rec.stderr));
        // The same seed again: the same interleaving.
        let again = rewind_smp(&race, 2, &["--chaos", &seed.to_string()]);
        assert_eq!(again.stdout, rec.stdout, "chaos {seed} run twice");
        counts.push(count);
    }
    counts.sort();
    counts.dedup();
    assert!(
        counts.len() >= 3,
        "four chaos seeds gave only these counts: {counts:?}"
    );

    let trace = dir.path("race1.rwd");
    let total = first_icount.expect("the first recording's length");
    common::assert_seek_back_agrees(
        &trace,
        total / 3 + 11,
        total / 4 * 3 + 5,
        &["--snapshot-every", "100000"],
        TIMEOUT,
    );
}

/// `rewind hunt` records with fresh chaos seeds until the guest's assertion fails, within a
/// bounded number of tries; the kept trace reproduces the failure; no try files are left.
#[test]
fn hunt_finds_a_failing_interleaving_and_keeps_it() {
    let Some(guest) = elf("smp_race_assert") else {
        return;
    };
    let dir = Scratch::new("smp-hunt");
    let kept = dir.path("race.rwd");
    let h = run_rewind(
        &[
            s("hunt"),
            s("--chaos"),
            s("--until"),
            s("exit-nonzero"),
            s("--tries"),
            s("300"),
            s("--seed"),
            s("1"),
            s("-o"),
            s(&kept),
            s("--"),
            s("-smp"),
            s("4"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(h.code, Some(0), "hunt: {}", h.describe());
    assert!(h.stderr.contains("hunt: found after"), "{}", h.describe());
    let rep = run_rewind(&[s("replay"), s(&kept)], TIMEOUT);
    assert_eq!(rep.code, Some(1), "the kept trace: {}", rep.describe());
    assert!(
        rep.stdout.contains("ASSERTION FAILED"),
        "the kept trace does not fail: {}",
        rep.describe()
    );
    assert!(
        replay_matched_line(&rep.stderr).is_some(),
        "{}",
        rep.describe()
    );
    let left: Vec<_> = std::fs::read_dir(dir.path("."))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(left.len(), 2, "only the trace and its snapshots: {left:?}");

    // The same hunt on the console: the seeds are the same, so the same try is kept.
    let kept2 = dir.path("race2.rwd");
    let h2 = run_rewind(
        &[
            s("hunt"),
            s("--until"),
            s("console:ASSERTION FAILED"),
            s("--tries"),
            s("300"),
            s("--seed"),
            s("1"),
            s("-o"),
            s(&kept2),
            s("--"),
            s("--smp"),
            s("4"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(h2.code, Some(0), "hunt: {}", h2.describe());
    // "found after N tries (T s): chaos seed S, OUTCOME": the tries and the seed, not the
    // wall time.
    let found = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("hunt: found after"))
            .map(|l| {
                let tries = l.split(" (").next().unwrap_or("").to_string();
                let seed = l.split("chaos seed ").nth(1).unwrap_or("").to_string();
                let seed = seed.split(',').next().unwrap_or("").to_string();
                (tries, seed)
            })
    };
    assert!(found(&h.stderr).is_some(), "{}", h.describe());
    assert_eq!(found(&h.stderr), found(&h2.stderr));

    // Three tries at a time: the same first failing seed, the same count, no try files left.
    let kept3 = dir.path("race3.rwd");
    let h3 = run_rewind(
        &[
            s("hunt"),
            s("--until"),
            s("exit-nonzero"),
            s("--tries"),
            s("300"),
            s("--seed"),
            s("1"),
            s("--jobs"),
            s("3"),
            s("-o"),
            s(&kept3),
            s("--"),
            s("-smp"),
            s("4"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(h3.code, Some(0), "hunt --jobs 3: {}", h3.describe());
    assert_eq!(found(&h.stderr), found(&h3.stderr), "{}", h3.describe());
    let rep = run_rewind(&[s("replay"), s(&kept3), s("-q")], TIMEOUT);
    assert_eq!(rep.code, Some(1), "the kept trace: {}", rep.describe());
    let tries_left: Vec<_> = std::fs::read_dir(dir.path("."))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".try-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(tries_left.is_empty(), "{tries_left:?}");

    // A hunt that cannot succeed says so and keeps nothing; a seed of the user's is refused.
    let none = dir.path("none.rwd");
    let miss = run_rewind(
        &[
            s("hunt"),
            s("--until"),
            s("console:no such text"),
            s("--tries"),
            s("3"),
            s("-o"),
            s(&none),
            s("--"),
            s("--smp"),
            s("2"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(miss.code, Some(1), "{}", miss.describe());
    assert!(
        miss.stderr.contains("not found in 3 tries"),
        "{}",
        miss.describe()
    );
    assert!(!none.exists());
    let bad = run_rewind(
        &[
            s("hunt"),
            s("--until"),
            s("exit-nonzero"),
            s("-o"),
            s(&none),
            s("--"),
            s("--chaos"),
            s("5"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(bad.code, Some(2), "{}", bad.describe());
    assert!(
        bad.stderr.contains("hunt's to choose"),
        "{}",
        bad.describe()
    );
    // The kept trace is the user's: a second hunt does not replace it.
    let again = run_rewind(
        &[
            s("hunt"),
            s("--until"),
            s("exit-nonzero"),
            s("-o"),
            s(&kept),
            s("--"),
            s("--kernel"),
            s(&guest),
        ],
        TIMEOUT,
    );
    assert_eq!(again.code, Some(2), "{}", again.describe());
    assert!(again.stderr.contains("--force"), "{}", again.describe());
}
