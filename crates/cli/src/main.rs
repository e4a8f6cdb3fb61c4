//! `rewind`: deterministic record and replay RISC-V emulator (run mode for now).

mod args;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use rewind_machine::{ImageSource, Machine, MachineConfig, RunOutcome, SerialInput, SerialOutput};

use args::{parse_serial, parse_size, SerialSpec};

/// The demo guest (guests/demo), built into the binary.
static DEMO_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");
/// The benchmark guest (guests/bench), built into the binary.
static BENCH_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

/// Exit status when `--max-instructions` stops the guest (as `timeout(1)` does).
const EXIT_INSTRUCTION_LIMIT: u8 = 124;
/// Exit status for every error (bad option, bad file, guest that can never continue).
const EXIT_ERROR: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "rewind",
    version,
    about = "Deterministic record and replay RISC-V (RV64GC) emulator"
)]
#[command(arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a guest on the `virt` board (QEMU 7.2 compatible).
    Run(RunArgs),
    /// Run the built-in demo guest and print a summary.
    Demo,
    /// Run the built-in benchmark guest (and QEMU, when installed) and print the speed.
    Bench {
        /// Do not run QEMU for comparison even if it is installed.
        #[arg(long)]
        no_qemu: bool,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Firmware loaded at 0x80000000 (ELF or raw binary), or `none`.
    #[arg(long, value_name = "none|PATH", default_value = "none")]
    bios: String,
    /// Kernel: with `--bios none` an ELF started in M-mode; otherwise ELF or raw image.
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Initial ramdisk.
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long, value_name = "STRING")]
    append: Option<String>,
    /// RAM size (a bare number is MiB).
    #[arg(short = 'm', long = "memory", value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    memory: u64,
    /// Each instruction takes 2^N ns of virtual time.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10))]
    icount_shift: u32,
    /// Serial console: stdio, null or file:PATH (output to a file).
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = parse_serial)]
    serial: SerialSpec,
    /// Feed the serial console with the bytes of this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    serial_input: Option<PathBuf>,
    /// Stop after this many instructions (exit status 124).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// Write the device tree blob to PATH and exit (like QEMU's `-machine dumpdtb=PATH`).
    #[arg(long, value_name = "PATH")]
    dump_dtb: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rewind: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Cmd::Run(a) => run(a),
        Cmd::Demo => demo(),
        Cmd::Bench { no_qemu } => bench(no_qemu),
    }
}

/// The exit status a run outcome maps to.
fn exit_status(outcome: RunOutcome, icount: u64) -> u8 {
    match outcome {
        RunOutcome::Exited(code) => code as u8,
        RunOutcome::HostQuit(cause) => {
            eprintln!("rewind: stopped by {cause} after {icount} instructions");
            cause.exit_status() as u8
        }
        RunOutcome::InstructionLimit => {
            eprintln!("rewind: instruction limit reached after {icount} instructions");
            EXIT_INSTRUCTION_LIMIT
        }
    }
}

fn run(a: RunArgs) -> anyhow::Result<u8> {
    let bios = (a.bios != "none").then(|| ImageSource::file(&a.bios));
    let (serial_input, serial_output) = match a.serial {
        SerialSpec::Stdio => (SerialInput::Stdio, SerialOutput::Stdout),
        SerialSpec::Null => (SerialInput::Null, SerialOutput::Null),
        SerialSpec::File(p) => (SerialInput::Null, SerialOutput::File(p)),
    };
    let serial_input = a
        .serial_input
        .map(SerialInput::File)
        .unwrap_or(serial_input);
    let config = MachineConfig {
        ram_size: a.memory,
        bios,
        kernel: a.kernel.map(ImageSource::File),
        initrd: a.initrd.map(ImageSource::File),
        append: a.append,
        icount_shift: a.icount_shift,
        serial_input,
        serial_output,
        handle_signals: true,
    };
    // The machine (and the terminal's raw mode) is dropped before the process exits.
    let mut m = Machine::new(config)?;
    if let Some(path) = &a.dump_dtb {
        std::fs::write(path, m.fdt())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        return Ok(0);
    }
    let outcome = m.run(a.max_instructions)?;
    Ok(exit_status(outcome, m.icount()))
}

fn embedded(name: &str, bytes: &[u8]) -> ImageSource {
    ImageSource::Embedded {
        name: name.into(),
        bytes: Arc::from(bytes),
    }
}

fn mips(instructions: u64, t: Duration) -> f64 {
    instructions as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

fn demo() -> anyhow::Result<u8> {
    let config = MachineConfig {
        kernel: Some(embedded("demo.elf", DEMO_ELF)),
        serial_output: SerialOutput::Stdout,
        handle_signals: true,
        ..MachineConfig::default()
    };
    let mut m = Machine::new(config)?;
    let start = Instant::now();
    let outcome = m.run(None)?;
    let wall = start.elapsed();
    let icount = m.icount();
    drop(m);
    let status = exit_status(outcome, icount);
    println!();
    println!("--- rewind demo summary ---");
    println!("guest instructions: {icount}");
    println!("wall time:          {:.3} s", wall.as_secs_f64());
    println!("speed:              {:.0} MIPS", mips(icount, wall));
    println!("exit status:        {status}");
    Ok(status)
}

/// Time QEMU running the same guest; `None` when QEMU is not installed.
fn run_qemu(elf: &[u8]) -> anyhow::Result<Option<(Duration, Vec<u8>)>> {
    let qemu = "qemu-system-riscv64";
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(qemu).is_file()))
        .unwrap_or(false);
    if !found {
        return Ok(None);
    }
    let path = std::env::temp_dir().join(format!("rewind-bench-{}.elf", std::process::id()));
    std::fs::write(&path, elf).with_context(|| format!("{}: cannot write", path.display()))?;
    let start = Instant::now();
    let out = Command::new(qemu)
        .args([
            "-machine",
            "virt",
            "-bios",
            "none",
            "-nographic",
            "-icount",
            "shift=0",
            "-kernel",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let wall = start.elapsed();
    let _ = std::fs::remove_file(&path);
    let out = out.with_context(|| format!("{qemu}: cannot start"))?;
    if !out.status.success() {
        eprintln!("rewind: warning: {qemu} exited with {}", out.status);
    }
    Ok(Some((wall, out.stdout)))
}

fn bench(no_qemu: bool) -> anyhow::Result<u8> {
    let config = MachineConfig {
        kernel: Some(embedded("bench.elf", BENCH_ELF)),
        serial_output: SerialOutput::Capture,
        handle_signals: true,
        ..MachineConfig::default()
    };
    let mut m = Machine::new(config)?;
    let start = Instant::now();
    let outcome = m.run(None)?;
    let wall = start.elapsed();
    let icount = m.icount();
    let output = m.captured_output().to_vec();
    drop(m);
    print!("{}", String::from_utf8_lossy(&output));
    let status = exit_status(outcome, icount);
    println!("--- rewind bench ---");
    println!("guest instructions: {icount}");
    println!("rewind wall time:   {:.3} s", wall.as_secs_f64());
    println!("rewind speed:       {:.0} MIPS", mips(icount, wall));
    if status != 0 {
        println!("guest exit status:  {status}");
    }
    if !no_qemu {
        match run_qemu(BENCH_ELF)? {
            None => println!("qemu-system-riscv64 not found: no comparison"),
            Some((qwall, qout)) => {
                println!("qemu wall time:     {:.3} s", qwall.as_secs_f64());
                println!(
                    "qemu speed:         {:.0} MIPS (same instruction count)",
                    mips(icount, qwall)
                );
                println!(
                    "rewind / qemu:      {:.2}x",
                    qwall.as_secs_f64() / wall.as_secs_f64().max(1e-9)
                );
                if qout != output {
                    let (q, r) = (
                        String::from_utf8_lossy(&qout),
                        String::from_utf8_lossy(&output),
                    );
                    let (q, r) = (q.replace('\r', ""), r.replace('\r', ""));
                    if let Some((ql, rl)) = q.lines().zip(r.lines()).find(|(a, b)| a != b) {
                        println!("note: guest output differs: QEMU '{ql}', rewind '{rl}'");
                    } else if q != r {
                        println!("note: guest output differs in length from QEMU's");
                    }
                }
            }
        }
    }
    Ok(status)
}
