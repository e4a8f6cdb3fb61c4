//! QEMU's command line after `rewind run`: the same guest gives the same console under both,
//! QEMU's `-icount rr=record|replay` spelling records and replays, and what rewind lacks is one
//! clear line.

#[allow(dead_code)]
mod common;

use common::{guest_elf, have_tool, run_rewind, Proc, Scratch, QEMU_CPU};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A QEMU command line for a bare-metal guest, as a QEMU user types it.
fn qemu_line(elf: &Path) -> Vec<String> {
    [
        "-M",
        "virt",
        "-m",
        "128M",
        "-smp",
        "1",
        "-nographic",
        "-cpu",
        QEMU_CPU,
        "-bios",
        "none",
        "-kernel",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([elf.display().to_string()])
    .collect()
}

#[test]
fn a_qemu_command_line_runs_verbatim_and_matches_qemu() {
    let Some(elf) = guest_elf("compute_timer") else {
        return;
    };
    let line = qemu_line(&elf);
    let mut args = vec!["run".to_string()];
    args.extend(line.iter().cloned());
    args.extend(["-icount".into(), "shift=0".into()]);
    let ours = run_rewind(&args, TIMEOUT);
    assert_eq!(ours.code, Some(0), "{}", ours.describe());
    assert!(!ours.stdout.is_empty());
    if !have_tool("qemu-system-riscv64") {
        return;
    }
    let mut q = Command::new("qemu-system-riscv64");
    q.args(&line).args(["-icount", "shift=0"]);
    let theirs = Proc::spawn(q, None).finish(TIMEOUT);
    assert_eq!(theirs.code, Some(0), "QEMU: {}", theirs.describe());
    common::assert_same_output(
        "rewind run <QEMU line> vs QEMU 10",
        &theirs.stdout,
        &ours.stdout,
    );
}

#[test]
fn qemu_rr_spelling_records_and_replays() {
    let Some(elf) = guest_elf("compute_timer") else {
        return;
    };
    let dir = Scratch::new("qemu-rr");
    let trace = dir.path("run.rr");
    let with_rr = |mode: &str| {
        let mut args = vec!["run".to_string()];
        args.extend(qemu_line(&elf));
        args.extend([
            "-icount".into(),
            format!("shift=0,rr={mode},rrfile={}", trace.display()),
        ]);
        run_rewind(&args, TIMEOUT)
    };
    let rec = with_rr("record");
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    assert!(trace.is_file(), "rr=record wrote no trace");
    let rep = with_rr("replay");
    assert_eq!(rep.code, Some(0), "{}", rep.describe());
    assert_eq!(rep.stdout, rec.stdout);
    assert!(
        rep.stderr.contains("replay matched the recording"),
        "{}",
        rep.describe()
    );
    // A shift that record/replay cannot use is refused, naming the option.
    let mut args = vec!["run".to_string()];
    args.extend(qemu_line(&elf));
    args.extend(["-icount".into(), "shift=4,rr=record,rrfile=x.rr".into()]);
    let bad = run_rewind(&args, TIMEOUT);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.starts_with("rewind: -icount shift=4"),
        "{}",
        bad.stderr
    );
}

/// Every refusal is one `rewind: …` line naming the option and what to do.
#[test]
fn what_rewind_lacks_is_refused_in_one_line() {
    for (args, says) in [
        (&["run", "-accel", "kvm"][..], "-accel kvm: "),
        (
            &["run", "--smp", "16"][..],
            "-smp 16: rewind runs 1 to 8 harts",
        ),
        (&["run", "-M", "sifive_u"][..], "virt"),
        (&["run", "-vnc", ":1"][..], "-vnc: not an option"),
        (
            &["run", "--kernal", "x"][..],
            "unexpected argument '--kernal'",
        ),
    ] {
        let o = run_rewind(args, TIMEOUT);
        assert_eq!(o.code, Some(2), "{args:?}: {}", o.describe());
        let lines: Vec<&str> = o.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", o.stderr);
        assert!(lines[0].starts_with("rewind: "), "{}", o.stderr);
        assert!(lines[0].contains(says), "{args:?}: {}", o.stderr);
    }
    let help = run_rewind(&["run", "--help"], TIMEOUT);
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("QEMU equivalents"), "{}", help.stdout);
}

#[test]
fn file_mistakes_are_named_once() {
    let dir = Scratch::new("qemu-files");
    let o = run_rewind(
        &[
            "record",
            "-o",
            dir.path("").to_str().unwrap_or("."),
            "--kernel",
            "x",
        ],
        TIMEOUT,
    );
    assert_eq!(o.code, Some(2));
    assert!(o.stderr.contains("is a directory"), "{}", o.stderr);
    let missing = dir.path("nosuch.rwtrace");
    let o = run_rewind(&["replay".as_ref(), missing.as_os_str()], TIMEOUT);
    assert_eq!(o.code, Some(2));
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("nosuch.rwtrace: cannot open the trace: no such file"),
        "{}",
        o.stderr
    );
}
