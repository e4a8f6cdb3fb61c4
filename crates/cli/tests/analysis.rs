//! Questions asked of a recording: `rewind verify` (segments replayed on their own, in
//! parallel, checked against the next snapshot) and `rewind analyze console|coverage|
//! last-write`, with the guests of `guests/` (skipped without riscv64-unknown-elf-gcc unless
//! `REWIND_REQUIRE_GUESTS` is set). The answers are checked against independent replays.

#[allow(dead_code)]
mod common;

use common::{guest_elf, run_rewind, Done, Scratch};
use rewind_machine::session::{OpenOptions, ReplaySession};
use rewind_machine::{RunOutcome, SerialOutput};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

/// Record guest `name` to `trace` with a snapshot every `every` instructions.
fn record(name: &str, trace: &Path, every: u64) -> Done {
    record_with(name, trace, every, &[])
}

/// [`record`] with `extra` options.
fn record_with(name: &str, trace: &Path, every: u64, extra: &[&str]) -> Done {
    let elf = guest_elf(name).expect("guests");
    let mut args = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(elf),
        s("--serial"),
        s("stdio"),
        s("--snapshot-every"),
        every.to_string(),
    ];
    args.extend(extra.iter().map(s));
    let d = rewind(&args);
    assert_eq!(d.code, Some(0), "record: {}", d.describe());
    d
}

/// The address of symbol `sym` in guest `name` (from the toolchain's nm).
fn symbol(name: &str, sym: &str) -> u64 {
    let elf = guest_elf(name).expect("guests");
    let out = Command::new("riscv64-unknown-elf-nm")
        .arg(&elf)
        .output()
        .expect("nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(sym))
        .unwrap_or_else(|| panic!("no {sym} in {}", elf.display()));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

#[test]
fn verify_checks_every_segment_in_parallel_and_names_a_bad_snapshot() {
    if guest_elf("compute_timer").is_none() {
        return;
    }
    let scratch = Scratch::new("verify");
    let trace = scratch.path("c.rwd");
    // State checks every million instructions: a segment that starts from a wrong state
    // diverges at the next one.
    record_with(
        "compute_timer",
        &trace,
        50_000_000,
        &["--check-interval", "1000000"],
    );
    let one = rewind(&[s("verify"), s(&trace), s("--jobs"), s("1")]);
    let four = rewind(&[s("verify"), s(&trace), s("--jobs"), s("4")]);
    assert_eq!(one.code, Some(0), "{}", one.describe());
    assert_eq!(four.code, Some(0), "{}", four.describe());
    assert_eq!(one.stdout, four.stdout);
    assert_eq!(one.stderr, four.stderr);
    // Segments replay with the default engine (the JIT: the segments of one process share its
    // translations) or the one chosen; the states are the interpreter's.
    for accel in ["interp", "jit", "jit,check=interp"] {
        let d = rewind(&[s("verify"), s(&trace), s("--accel"), s(accel)]);
        assert_eq!(d.code, Some(0), "--accel {accel}: {}", d.describe());
        assert_eq!(d.stdout, one.stdout, "--accel {accel}");
    }
    // ~300 million instructions: segments at 0, 50M, ... 250M and one to the end.
    assert_eq!(one.stdout.lines().count(), 6, "{}", one.describe());
    assert!(
        one.stdout
            .contains("segment 3 (instructions 150000000..200000000): ok, state "),
        "{}",
        one.describe()
    );
    assert!(
        one.stderr
            .contains("rewind: verified 6 segments (299333514 instructions)"),
        "{}",
        one.describe()
    );

    // Change one register in snapshot 4 (instruction 200M), re-encoded through the library
    // so that the file is intact: the segment ending there is the bad one.
    let sidecar = PathBuf::from(format!("{}.snapshots", trace.display()));
    let mut session = ReplaySession::open(&trace, OpenOptions::default()).unwrap();
    let mut m = session.machine(SerialOutput::Null).unwrap();
    let reset = m.snapshot(None).unwrap();
    let mut snaps = session
        .snapshots(rewind_machine::sidecar::Select::All, &reset)
        .unwrap()
        .snapshots;
    assert_eq!(snaps.len(), 5);
    assert_eq!(snaps[3].icount(), 200_000_000);
    snaps[3].harts[0].x[2] ^= 0x10;
    let mut all = vec![reset];
    all.extend(snaps);
    let id = rewind_machine::snapshot::trace_id(session.header());
    rewind_machine::sidecar::save(&sidecar, &id, &all).unwrap();
    let bad = rewind(&[s("verify"), s(&trace), s("-j"), s("4")]);
    assert_eq!(bad.code, Some(3), "{}", bad.describe());
    let want = "rewind: segment 3 (instructions 150000000..200000000) differs from the \
                recording: hart 0 differs from the snapshot: x2 = ";
    assert!(bad.stderr.contains(want), "{}", bad.describe());
    // The segment that starts from it diverges at its first state check.
    assert!(
        bad.stdout.contains(
            "segment 4 (instructions 200000000..250000000): FAILED: replay diverged at \
             instruction 201000000"
        ),
        "{}",
        bad.describe()
    );
    assert!(
        bad.stdout
            .contains("segment 2 (instructions 100000000..150000000): ok"),
        "{}",
        bad.describe()
    );
}

/// `(privilege, pc)` of every instruction a replay of `trace` retires, stepping one
/// instruction at a time (the guest takes no trap, so the pc before a step is the pc of the
/// instruction it retires).
fn single_step_pcs(trace: &Path) -> (BTreeMap<(String, u64), u64>, u64) {
    let session = ReplaySession::open(trace, OpenOptions::default()).unwrap();
    let mut m = session.machine(SerialOutput::Null).unwrap();
    m.set_pause_at_limit(true);
    let mut seen = BTreeMap::new();
    loop {
        let h = m.hart();
        let (pc, prv) = (h.pc, h.prv);
        let before = m.icount();
        let o = m.run(Some(1)).unwrap();
        if m.icount() == before + 1 {
            // "M (machine)": the letter is the mode's name in the coverage.
            let mode = rewind_machine::state::privilege_name(prv);
            *seen.entry((mode[..1].to_string(), pc)).or_insert(0) += 1;
        }
        if o != RunOutcome::InstructionLimit || m.boundary().replay_at_end() {
            break;
        }
    }
    (seen, m.icount())
}

#[test]
fn coverage_equals_a_single_step_replay_and_does_not_depend_on_jobs() {
    if guest_elf("debugme").is_none() {
        return;
    }
    let scratch = Scratch::new("coverage");
    let trace = scratch.path("d.rwd");
    record("debugme", &trace, 2_000);
    let out1 = scratch.path("cov1.json");
    let out4 = scratch.path("cov4.json");
    for (out, jobs) in [(&out1, "1"), (&out4, "4")] {
        let d = rewind(&[
            s("analyze"),
            s("coverage"),
            s(&trace),
            s("--out"),
            s(out),
            s("--jobs"),
            s(jobs),
        ]);
        assert_eq!(d.code, Some(0), "{}", d.describe());
    }
    let text = std::fs::read(&out1).unwrap();
    assert_eq!(text, std::fs::read(&out4).unwrap());
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let mut cov = BTreeMap::new();
    for (mode, pcs) in v["modes"].as_object().unwrap() {
        for (pc, n) in pcs.as_object().unwrap() {
            let pc = u64::from_str_radix(pc.trim_start_matches("0x"), 16).unwrap();
            cov.insert((mode.clone(), pc), n.as_u64().unwrap());
        }
    }
    let (stepped, total) = single_step_pcs(&trace);
    assert_eq!(v["instructions"].as_u64(), Some(total));
    assert!(cov.len() > 100, "{} pcs", cov.len());
    assert_eq!(cov, stepped);

    // Per function, from the guest's symbols: tick() is straight-line code run once per
    // tick, ten times.
    let elf = guest_elf("debugme").expect("guests");
    let d = rewind(&[
        s("analyze"),
        s("coverage"),
        s(&trace),
        s("--symbols"),
        s(&elf),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let row = |f: &str| -> (u64, u64) {
        let line = d
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(f))
            .unwrap_or_else(|| panic!("no {f}: {}", d.stdout));
        let n: Vec<u64> = line
            .split_whitespace()
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        (n[0], n[1])
    };
    let (hits, pcs) = row("tick");
    assert_eq!(hits, 10 * pcs, "{}", d.stdout);
    let (main_hits, _) = row("main");
    assert!(main_hits > 0);
    let in_functions: u64 = d
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        in_functions <= total && in_functions > total / 2,
        "{}",
        d.stdout
    );
}

#[test]
fn console_lines_carry_increasing_icounts_and_last_write_finds_the_counter() {
    if guest_elf("debugme").is_none() {
        return;
    }
    let scratch = Scratch::new("console");
    let trace = scratch.path("d.rwd");
    let rec = record("debugme", &trace, 2_000);
    let d = rewind(&[s("analyze"), s("console"), s(&trace), s("--json")]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    // The same answer from either engine, `--accel` before or after the question.
    for args in [
        ["analyze", "--accel", "interp", "console"],
        ["analyze", "console", "--accel", "jit"],
    ] {
        let mut args: Vec<String> = args.iter().map(s).collect();
        args.extend([s(&trace), s("--json")]);
        let e = rewind(&args);
        assert_eq!(e.code, Some(0), "{args:?}: {}", e.describe());
        assert_eq!(e.stdout, d.stdout, "{args:?}");
    }
    let lines: Vec<serde_json::Value> = d
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    let recorded: Vec<&str> = rec
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert_eq!(texts, recorded);
    let icounts: Vec<u64> = lines
        .iter()
        .map(|l| l["icount"].as_u64().unwrap())
        .collect();
    assert!(icounts.windows(2).all(|w| w[0] < w[1]), "{icounts:?}");

    // Each tick stores `counter` once: the last store is tick 10's, before the line that
    // prints it; before that line's icount-ish point of tick 9, it is tick 9's.
    let counter = symbol("debugme", "counter");
    let addr = format!("{counter:#x}");
    let tick = |i: usize| {
        let line = lines
            .iter()
            .find(|l| {
                l["text"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("tick {i}:"))
            })
            .unwrap();
        let value: u64 = line["text"]
            .as_str()
            .unwrap()
            .split("counter=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap();
        (line["icount"].as_u64().unwrap(), value)
    };
    let last_jobs = |before: Option<u64>, jobs: &str| {
        let mut args = vec![
            s("analyze"),
            s("last-write"),
            s(&trace),
            s("--addr"),
            addr.clone(),
            s("--len"),
            s("8"),
            s("--json"),
            s("-j"),
            s(jobs),
        ];
        if let Some(b) = before {
            args.extend([s("--before"), b.to_string()]);
        }
        let d = rewind(&args);
        assert_eq!(d.code, Some(0), "{}", d.describe());
        serde_json::from_str::<serde_json::Value>(d.stdout.trim()).unwrap()
    };
    // Segments scanned one or three at a time: the same answer.
    let last = |before: Option<u64>| {
        let one = last_jobs(before, "1");
        assert_eq!(one, last_jobs(before, "3"), "before {before:?}");
        one
    };
    let (at10, value10) = tick(10);
    let (at9, value9) = tick(9);
    let w = last(None);
    assert_eq!(w["value"].as_u64(), Some(value10), "{w}");
    assert_eq!(w["mode"], "M");
    let w10 = w["icount"].as_u64().unwrap();
    assert!(at9 < w10 && w10 < at10, "{w}");
    // Just before that store: tick 9's; exactly at the store's icount it has not run yet.
    let w = last(Some(w10));
    assert_eq!(w["value"].as_u64(), Some(value9), "{w}");
    let w9 = w["icount"].as_u64().unwrap();
    assert!(w9 < at9, "{w}");
    let w = last(Some(w10 + 1));
    assert_eq!(w["icount"].as_u64(), Some(w10), "{w}");
    // Before the first tick: no write.
    let (at1, _) = tick(1);
    let first = last(Some(at1)); // tick 1 stored before printing
    assert_eq!(first["value"].as_u64(), Some(1), "{first}");
    let d = rewind(&[
        s("analyze"),
        s("last-write"),
        s(&trace),
        s("--addr"),
        addr,
        s("--before"),
        s("10"),
    ]);
    assert_eq!(d.code, Some(1), "{}", d.describe());
    assert!(
        d.stderr.contains("no instruction wrote"),
        "{}",
        d.describe()
    );
}

#[test]
fn syscalls_of_the_scripted_linux_boot_are_a_strace() {
    let Some(assets) = common::linux::linux_assets() else {
        return;
    };
    let scratch = Scratch::new("syscalls");
    let trace = scratch.path("l.rwd");
    let mut args = vec![s("record"), s("-o"), s(&trace), s("-q")];
    args.extend(common::linux::boot_args(&assets));
    args.extend([
        s("--append"),
        format!("{} rewind.test=1", common::linux::APPEND),
        s("--serial"),
        s("stdio"),
        s("--snapshot-every"),
        s("400000000"),
    ]);
    let rec = run_rewind(&args, Duration::from_secs(300));
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    assert!(
        rec.stdout.contains("--- rewind.test end ---"),
        "{}",
        rec.describe()
    );
    let strace = |jobs: &str| {
        let d = rewind(&[
            s("analyze"),
            s("syscalls"),
            s(&trace),
            s("--json"),
            s("-j"),
            s(jobs),
        ]);
        assert_eq!(d.code, Some(0), "{}", d.describe());
        d.stdout
    };
    let one = strace("1");
    assert_eq!(one, strace("3"));
    let calls: Vec<serde_json::Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(calls.len() > 100, "{} calls", calls.len());
    let icounts: Vec<u64> = calls
        .iter()
        .map(|c| c["icount"].as_u64().unwrap())
        .collect();
    assert!(icounts.windows(2).all(|w| w[0] < w[1]));
    // Writes to the terminal (fd 1 and 2) all complete: the result is the length.
    let writes: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| c["name"] == "write" && c["args"][0].as_u64().is_some_and(|fd| fd <= 2))
        .collect();
    assert!(writes.len() >= 20, "{} writes", writes.len());
    for w in &writes {
        assert_eq!(w["ret"].as_i64(), w["args"][2].as_i64(), "{w}");
    }
    for c in &calls {
        if let Some(r) = c["ret_icount"].as_u64() {
            assert!(r > c["icount"].as_u64().unwrap(), "{c}");
        }
        // Calls that never return to their caller.
        if c["name"] == "exit_group" || c["name"] == "exit" {
            assert!(c["ret"].is_null(), "{c}");
        }
    }
    // The program runs: execve succeeds somewhere (and so does not return).
    assert!(
        calls
            .iter()
            .any(|c| c["name"] == "execve" && c["ret"].is_null()),
        "no successful execve"
    );
}

/// The records of an lcov tracefile: (SF, lines of the record).
fn lcov_records(text: &str) -> Vec<(String, Vec<String>)> {
    text.split("end_of_record\n")
        .filter(|r| r.contains("SF:"))
        .map(|r| {
            let lines: Vec<String> = r.lines().map(str::to_string).collect();
            let sf = lines
                .iter()
                .find_map(|l| l.strip_prefix("SF:"))
                .unwrap()
                .to_string();
            (sf, lines)
        })
        .collect()
}

#[test]
fn lcov_has_lines_with_dwarf_and_functions_without() {
    if guest_elf("debugme").is_none() {
        return;
    }
    let scratch = Scratch::new("lcov");
    let trace = scratch.path("d.rwd");
    record("debugme", &trace, 5_000);
    let elf = guest_elf("debugme").expect("guests");
    let info = scratch.path("d.info");
    let d = rewind(&[
        s("analyze"),
        s("coverage"),
        s(&trace),
        s("--symbols"),
        s(&elf),
        s("--lcov"),
        s(&info),
        s("-j"),
        s("2"),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let text = std::fs::read_to_string(&info).unwrap();
    assert!(text.starts_with("TN:"), "{text}");
    let records = lcov_records(&text);
    let (_, main_c) = records
        .iter()
        .find(|(sf, _)| sf.ends_with("debugme/main.c"))
        .unwrap_or_else(|| panic!("no debugme/main.c record:\n{text}"));
    // tick() runs ten times, main() once; the line storing `counter` runs ten times.
    assert!(main_c.contains(&s("FNDA:10,tick")), "{main_c:?}");
    assert!(main_c.contains(&s("FNDA:1,main")), "{main_c:?}");
    let source =
        std::fs::read_to_string(common::repo_root().join("guests/debugme/main.c")).unwrap();
    let line = source
        .lines()
        .position(|l| l.trim_start().starts_with("counter = counter * 3"))
        .unwrap()
        + 1;
    assert!(
        main_c.contains(&format!("DA:{line},10")),
        "no DA:{line},10 in {main_c:?}"
    );
    let da = main_c.iter().filter(|l| l.starts_with("DA:")).count();
    let lf: usize = main_c
        .iter()
        .find_map(|l| l.strip_prefix("LF:"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(da, lf);

    // The demo guest has no DWARF: functions only.
    let demo = common::repo_root().join("guests/prebuilt/demo.elf");
    let trace = scratch.path("demo.rwd");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--kernel"),
        s(&demo),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let info = scratch.path("demo.info");
    let d = rewind(&[
        s("analyze"),
        s("coverage"),
        s(&trace),
        s("--symbols"),
        s(&demo),
        s("--lcov"),
        s(&info),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let text = std::fs::read_to_string(&info).unwrap();
    let records = lcov_records(&text);
    assert_eq!(records.len(), 1, "{text}");
    let (sf, lines) = &records[0];
    assert_eq!(sf, &s(&demo));
    assert!(!lines.iter().any(|l| l.starts_with("DA:")), "{text}");
    let fns = lines.iter().filter(|l| l.starts_with("FN:")).count();
    let fnda = lines.iter().filter(|l| l.starts_with("FNDA:")).count();
    assert!(fns > 3 && fns == fnda, "{text}");
    assert!(lines.contains(&s("FNDA:1,main")), "{text}");
    assert!(lines.contains(&format!("FNF:{fns}")), "{text}");
    // --lcov needs the symbols.
    let d = rewind(&[
        s("analyze"),
        s("coverage"),
        s(&trace),
        s("--lcov"),
        s(&info),
    ]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(d.stderr.contains("--symbols"), "{}", d.describe());
}

/// `last-write --phys` on the `vm` guest: its U-mode process stores to `user_data[1]` through
/// VA 0x40001008 and its S-mode kernel to `sum_page[1]` through VA 0x40005008; a watch on
/// those physical addresses finds these stores, where a virtual watch on the same numbers
/// finds M-mode's initialisation (M runs on bare addresses).
#[test]
fn last_write_on_physical_addresses_sees_stores_through_any_mapping() {
    if guest_elf("vm").is_none() {
        return;
    }
    let scratch = Scratch::new("lastwrite-phys");
    let trace = scratch.path("vm.rwd");
    record("vm", &trace, 3_000);
    let query = |addr: u64, phys: bool, jobs: &str| {
        let mut args = vec![
            s("analyze"),
            s("last-write"),
            s(&trace),
            s("--addr"),
            format!("{addr:#x}"),
            s("--len"),
            s("8"),
            s("--json"),
            s("-j"),
            s(jobs),
        ];
        if phys {
            args.push(s("--phys"));
        }
        let d = rewind(&args);
        assert_eq!(d.code, Some(0), "{}", d.describe());
        serde_json::from_str::<serde_json::Value>(d.stdout.trim()).unwrap()
    };
    let user = symbol("vm", "user_data") + 8;
    let w = query(user, true, "1");
    assert_eq!(w, query(user, true, "3"));
    assert_eq!(w["mode"], "U", "{w}");
    assert_eq!(w["addr"], "0x40001008", "{w}");
    assert_eq!(w["value"].as_u64(), Some(0x1001), "{w}");
    let pc = u64::from_str_radix(w["pc"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(pc & !0xfff, 0x4000_0000, "{w}");
    let v = query(user, false, "1");
    assert_eq!(v["mode"], "M", "{v}");
    assert_eq!(v["value"].as_u64(), Some(0x1001), "{v}");
    assert!(v["icount"].as_u64() < w["icount"].as_u64(), "{v} vs {w}");

    let sum = symbol("vm", "sum_page") + 8;
    let w = query(sum, true, "2");
    assert_eq!(w["mode"], "S", "{w}");
    assert_eq!(w["addr"], "0x40005008", "{w}");
    assert_eq!(w["value"].as_u64(), Some(0x77), "{w}");
    let v = query(sum, false, "2");
    assert_eq!(v["mode"], "M", "{v}");
    assert_eq!(v["value"].as_u64(), Some(0x5001), "{v}");
}
