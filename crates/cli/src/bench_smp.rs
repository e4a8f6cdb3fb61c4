//! `rewind bench smp`: one hart against four. Debian Linux runs the parallel workload of
//! `scripts/linux-tests/smp.sh` (four `sha256sum` loops) with `-smp 1` and `-smp 4`: run and
//! record wall time, MIPS in all and per hart, record overhead, trace bytes per guest second,
//! and QEMU 10 on the same guest with `-icount shift=0` and without (`-smp N` both). Then the
//! cost of the quantum: the bench guest alone and with three parked harts, and the Linux
//! workload under three quanta.

use std::time::{Duration, Instant};

use anyhow::Context;
use rewind_machine::{CheckSettings, Machine, MachineConfig, RunOutcome, SerialOutput};

use crate::commands::{create_trace, linux_assets, watch_console};

const APPEND: &str = "console=ttyS0 earlycon rdinit=/init rewind.test=smp";
const PASSED: &[u8] = b"--- rewind.test smp passed ---";
const QEMU_TIMEOUT: Duration = Duration::from_secs(600);

/// One timed rewind run of the Linux workload.
struct Timed {
    icount: u64,
    wall: Duration,
    guest_s: f64,
    bytes: Option<u64>,
    passed: bool,
    outcome: RunOutcome,
}

fn linux_config(files: &[std::path::PathBuf; 3], harts: u32, quantum: u64) -> MachineConfig {
    MachineConfig {
        smp: harts,
        quantum,
        ..crate::commands::linux_bench_config(files, APPEND)
    }
}

fn passed(m: &Machine) -> bool {
    m.captured_output()
        .windows(PASSED.len())
        .any(|w| w == PASSED)
}

fn run_linux(config: MachineConfig, record: bool) -> anyhow::Result<Timed> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("smp.rwtrace");
    let mut m = if record {
        let mut config = config;
        let checks = CheckSettings::default();
        let (writer, _) = create_trace(&trace, &mut config, checks, false)?;
        Machine::record(config, writer, checks)?
    } else {
        Machine::new(config)?
    };
    let start = Instant::now();
    let outcome = m.run(None)?;
    let wall = start.elapsed();
    let icount = m.icount();
    let guest_s = m.bus().clock.ns(icount) as f64 / 1e9;
    let passed = passed(&m);
    let bytes = m.finish_recording()?;
    Ok(Timed {
        icount,
        wall,
        guest_s,
        bytes,
        passed,
        outcome,
    })
}

/// QEMU on the Linux workload with `-smp harts` (and `-icount shift=0` if `icount`): wall time
/// and whether every hart came up and the workload passed.
fn qemu(
    files: &[std::path::PathBuf; 3],
    harts: u32,
    icount: bool,
) -> anyhow::Result<Option<(Duration, String)>> {
    let Some(qemu) = crate::find_qemu() else {
        return Ok(None);
    };
    let mut cmd = std::process::Command::new(&qemu);
    cmd.args([
        "-M",
        "virt",
        "-m",
        "512M",
        "-nographic",
        "-cpu",
        "rv64,h=false",
    ])
    .args(["-smp", &harts.to_string(), "-bios"])
    .arg(&files[0])
    .arg("-kernel")
    .arg(&files[1])
    .arg("-initrd")
    .arg(&files[2])
    .args(["-append", APPEND]);
    if icount {
        cmd.args(["-icount", "shift=0"]);
    }
    let run = watch_console(&qemu, &mut cmd, &[PASSED], QEMU_TIMEOUT)?;
    let text = String::from_utf8_lossy(&run.output);
    let nproc = text
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("nproc: "))
        .unwrap_or("?")
        .to_string();
    let note = match (run.hits[0], run.exit) {
        (_, None) => "timed out".to_string(),
        (Some(_), Some(_)) => format!("passed, nproc {nproc}"),
        (None, Some(_)) => format!("FAILED, nproc {nproc}"),
    };
    Ok(Some((run.wall, note)))
}

fn note(t: &Timed) -> String {
    let mut n = match t.outcome {
        RunOutcome::Exited(c) => format!("exit {c}"),
        o => o.to_string(),
    };
    if !t.passed {
        n.push_str(", workload FAILED");
    }
    n
}

/// `rewind bench smp`.
pub fn run(no_qemu: bool) -> anyhow::Result<u8> {
    let files = linux_assets()?;
    let mut status = 0;
    let q = rewind_machine::sched::DEFAULT_QUANTUM;
    println!(
        "--- rewind bench smp: Debian Linux, four sha256sum loops (rewind.test=smp), -m 512M ---"
    );
    println!(
        "{:<28} {:>14} {:>9} {:>8} {:>9} {:>11} {:>9} {:>9}  notes",
        "", "instructions", "wall", "MIPS", "MIPS/hart", "trace bytes", "guest s", "B/guest s"
    );
    let mut qemu_rows = Vec::new();
    for harts in [1u32, 4] {
        for record in [false, true] {
            eprintln!(
                "rewind bench smp: {} with -smp {harts}...",
                if record { "record" } else { "run" }
            );
            let t = run_linux(linux_config(&files, harts, q), record)?;
            if !t.passed || t.outcome != RunOutcome::Exited(0) {
                status = 1;
            }
            let mips = crate::mips(t.icount, t.wall);
            let (bytes, per_s) = match t.bytes {
                Some(b) => (
                    b.to_string(),
                    format!("{:.0}", b as f64 / t.guest_s.max(1e-9)),
                ),
                None => ("-".into(), "-".into()),
            };
            println!(
                "{:<28} {:>14} {:>8.3}s {:>8.0} {:>9.0} {:>11} {:>9.3} {:>9}  {}",
                format!(
                    "rewind {} -smp {harts}",
                    if record { "record" } else { "run" }
                ),
                t.icount,
                t.wall.as_secs_f64(),
                mips,
                mips / f64::from(harts),
                bytes,
                t.guest_s,
                per_s,
                note(&t)
            );
        }
        if !no_qemu {
            for icount in [true, false] {
                eprintln!("rewind bench smp: QEMU -smp {harts}...");
                if let Some((wall, note)) = qemu(&files, harts, icount)? {
                    qemu_rows.push((
                        format!(
                            "qemu -smp {harts}{}",
                            if icount { " -icount shift=0" } else { "" }
                        ),
                        wall,
                        note,
                    ));
                }
            }
        }
    }
    for (name, wall, note) in &qemu_rows {
        println!(
            "{name:<28} {:>14} {:>8.3}s {:>8} {:>9} {:>11} {:>9} {:>9}  {note}",
            "-",
            wall.as_secs_f64(),
            "-",
            "-",
            "-",
            "-",
            "-"
        );
    }

    println!("--- the quantum: bench guest alone and with three parked harts; Linux -smp 4 ---");
    for harts in [1u32, 4] {
        let config = MachineConfig {
            kernel: Some(crate::embedded("bench.elf", crate::BENCH_ELF)),
            serial_output: SerialOutput::Null,
            smp: harts,
            ..MachineConfig::default()
        };
        let mut m = Machine::new(config)?;
        let start = Instant::now();
        m.run(None)?;
        let wall = start.elapsed();
        println!(
            "bench guest -smp {harts}: {} instructions in {:.3} s, {:.0} MIPS",
            m.icount(),
            wall.as_secs_f64(),
            crate::mips(m.icount(), wall)
        );
    }
    for quantum in [1_000u64, q, 100_000] {
        eprintln!("rewind bench smp: run -smp 4 --quantum {quantum}...");
        let t = run_linux(linux_config(&files, 4, quantum), false)?;
        println!(
            "linux -smp 4 --quantum {quantum:>7}: {} instructions in {:.3} s, {:.0} MIPS ({})",
            t.icount,
            t.wall.as_secs_f64(),
            crate::mips(t.icount, t.wall),
            note(&t)
        );
    }
    if qemu_rows.is_empty() && !no_qemu {
        println!("qemu-system-riscv64 not found: no comparison");
    }
    Ok(status)
}
