//! `rewind bench disk`: Linux writes then reads 64 MiB sequentially on a virtio-blk disk with
//! `dd` (O_DIRECT; `scripts/linux-tests/blkbench.sh`). rewind records and replays it; QEMU 10
//! records and replays it with `-icount shift=auto,rr=record|replay` and the `blkreplay`
//! driver (its only deterministic disk wiring). The table shows wall times to the start of the
//! dd phase and to the end, the dd phase itself, and the log sizes: rewind logs no block
//! payload and no completion (they follow from virtual time).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use rewind_log::TraceReader;
use rewind_machine::blk::DriveConfig;
use rewind_machine::record::replay_config;
use rewind_machine::{CheckSettings, Machine, MachineConfig, SerialOutput, VirtioDevice};

/// Kernel command line: the `blkbench` device test.
const APPEND: &str = "console=ttyS0 earlycon rdinit=/init rewind.test=blkbench";
/// Printed before the dd phase.
const START: &[u8] = b"--- blkbench dd start ---";
/// Printed after it.
const END: &[u8] = b"--- blkbench dd end ---";
/// Printed when the script succeeded.
const PASSED: &str = "--- rewind.test blkbench passed ---";
/// Disk size (the test writes 64 MiB of it).
const DISK: u64 = 80 << 20;
/// Longest a QEMU run may take.
const QEMU_TIMEOUT: Duration = Duration::from_secs(600);

/// One row of the table.
struct Row {
    name: &'static str,
    /// Wall time to the dd start marker and to the end marker.
    marks: (Option<Duration>, Option<Duration>),
    total: Duration,
    log: Option<u64>,
    note: String,
}

fn secs(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

impl Row {
    fn print(&self) {
        let dd = match self.marks {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        println!(
            "{:<26} {:>10} {:>10} {:>10} {:>12}  {}",
            self.name,
            secs(self.marks.0),
            secs(dd),
            secs(Some(self.total)),
            self.log.map_or("-".into(), |b| b.to_string()),
            self.note
        );
    }
}

/// Wall times (since `start`) at which `m`'s console showed the two markers.
fn marks(
    out: &[u8],
    start_at: Option<Duration>,
    end: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let has = |m: &[u8]| out.windows(m.len()).any(|w| w == m);
    (start_at.filter(|_| has(START)), has(END).then_some(end))
}

/// `rewind bench disk`.
pub fn run(no_qemu: bool) -> anyhow::Result<u8> {
    let files = crate::commands::linux_assets()?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let img = dir.path().join("disk.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(DISK))
        .with_context(|| format!("{}: cannot create", img.display()))?;
    let mut status = 0;
    let mut rows = Vec::new();

    eprintln!("rewind bench disk: record...");
    let mut config = MachineConfig {
        virtio: vec![VirtioDevice::Blk(DriveConfig {
            file: img.clone(),
            readonly: false,
            overlay: true,
            id: None,
            serial: None,
        })],
        ..crate::commands::linux_bench_config(&files, APPEND)
    };
    let trace = dir.path().join("disk.rwtrace");
    let checks = CheckSettings::default();
    let (writer, _) = crate::commands::create_trace(&trace, &mut config, checks, false)?;
    let mut rec = Machine::record(config, writer, checks)?;
    rec.watch_output(START);
    let t = Instant::now();
    let outcome = rec.run(None)?;
    let total = t.elapsed();
    let out = rec.captured_output().to_vec();
    let start_at = rec
        .output_marker()
        .map(|(_, at)| at.saturating_duration_since(t));
    let (rec_icount, rec_hash) = (rec.icount(), rec.state_hash());
    let guest_ns = rec.bus().clock.ns(rec_icount);
    let bytes = rec.finish_recording()?.unwrap_or(0);
    drop(rec);
    let passed = String::from_utf8_lossy(&out).contains(PASSED);
    if !passed {
        status = 1;
    }
    rows.push(Row {
        name: "rewind record",
        marks: marks(&out, start_at, total),
        total,
        log: Some(bytes),
        note: format!(
            "{outcome}, {rec_icount} instructions, {:.2} s guest time{}",
            guest_ns as f64 / 1e9,
            if passed { "" } else { ", dd FAILED" }
        ),
    });

    eprintln!("rewind bench disk: replay...");
    let reader = TraceReader::open(&trace)?;
    let (pconfig, _) = replay_config(reader.header(), &crate::commands::embedded_image)?;
    let mut rep = Machine::replay(pconfig, reader, SerialOutput::Capture)?;
    rep.watch_output(START);
    let t = Instant::now();
    let replayed = rep.run(None).and_then(|_| rep.finish_replay());
    let total = t.elapsed();
    let start_at = rep
        .output_marker()
        .map(|(_, at)| at.saturating_duration_since(t));
    let (note, ok) = crate::commands::replay_verdict(
        replayed,
        rep.state_hash() == rec_hash && rep.captured_output() == out,
    );
    if !ok {
        status = 1;
    }
    rows.push(Row {
        name: "rewind replay",
        marks: marks(rep.captured_output(), start_at, total),
        total,
        log: None,
        note,
    });
    drop(rep);

    let mut qemu_missing = false;
    if !no_qemu {
        let log = dir.path().join("qemu-rr.bin");
        for (name, mode) in [
            ("qemu rr=record+blkreplay", "record"),
            ("qemu rr=replay+blkreplay", "replay"),
        ] {
            eprintln!("rewind bench disk: {name}...");
            match qemu(&files, &img, &log, mode)? {
                None => {
                    qemu_missing = true;
                    break;
                }
                Some((marks, total, note)) => rows.push(Row {
                    name,
                    marks,
                    total,
                    log: (mode == "record")
                        .then(|| std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0)),
                    note,
                }),
            }
        }
    }

    println!("--- rewind bench disk: Linux dd, 64 MiB sequential write + read (O_DIRECT) on virtio-blk ---");
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>12}  notes",
        "", "to dd", "dd phase", "total", "log bytes"
    );
    for r in &rows {
        r.print();
    }
    println!(
        "(rewind: virtual disk latency {} us, {} MiB/s; wall times on this host)",
        rewind_machine::blk::LATENCY_NS / 1000,
        rewind_machine::blk::BYTES_PER_SEC >> 20
    );
    if qemu_missing {
        println!("qemu-system-riscv64 not found: no comparison");
    }
    Ok(status)
}

/// Wall times of the two markers, the total and a note.
type QemuRun = ((Option<Duration>, Option<Duration>), Duration, String);

/// QEMU 10 recording or replaying the test with blkreplay: wall times of the markers, total,
/// and a note. `None` without QEMU.
fn qemu(
    files: &[PathBuf; 3],
    img: &Path,
    log: &Path,
    mode: &str,
) -> anyhow::Result<Option<QemuRun>> {
    let Some(qemu) = crate::find_qemu() else {
        return Ok(None);
    };
    let mut cmd = Command::new(&qemu);
    cmd.args(["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"])
        .args(["-cpu", "rv64,h=false", "-bios"])
        .arg(&files[0])
        .arg("-kernel")
        .arg(&files[1])
        .arg("-initrd")
        .arg(&files[2])
        .args(["-append", APPEND])
        .arg("-icount")
        .arg(format!("shift=auto,rr={mode},rrfile={}", log.display()))
        .arg("-drive")
        .arg(format!(
            "file={},format=raw,if=none,snapshot=on,id=img-direct",
            img.display()
        ))
        .args([
            "-drive",
            "driver=blkreplay,if=none,image=img-direct,id=img-blkreplay",
            "-device",
            "virtio-blk-device,drive=img-blkreplay",
        ]);
    let run = crate::commands::watch_console(&qemu, &mut cmd, &[START, END], QEMU_TIMEOUT)?;
    let passed = String::from_utf8_lossy(&run.output).contains(PASSED);
    let note = match run.exit {
        None => "timed out".into(),
        Some(st) if st.success() && passed => "exit 0".into(),
        Some(st) => format!("{st}{}", if passed { "" } else { ", dd did not pass" }),
    };
    let (a, b, total) = (run.hits[0], run.hits[1], run.wall);
    Ok(Some(((a, b), total, note)))
}
