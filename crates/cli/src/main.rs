//! `rewind`: deterministic record and replay RISC-V emulator.

// std's print macros panic when the stream is closed (`rewind replay ... 2>&1 | head -c 10`
// gives EPIPE, as SIGPIPE is ignored): these shadow them in the whole crate and drop the
// write error, so a closed pipe ends nothing but the message.

/// `eprintln!` that ignores write errors (a closed stderr is not a reason to panic).
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that ignores write errors.
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that ignores write errors (a closed stdout is not a reason to panic).
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores write errors.
macro_rules! print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod analyze;
mod args;
mod bench_analysis;
mod bench_disk;
mod bench_net;
mod bench_reverse;
mod bench_smp;
mod commands;
mod debugging;
mod engine;
mod hunt;
mod pack;
mod qemu;
mod timeline;

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use rewind_machine::{
    ImageSource, Machine, MachineConfig, MachineError, RunOutcome, SerialInput, SerialOutput,
};
use rewind_replay::ReplayStop;

use args::{parse_serial, parse_size, SerialSpec};

/// The demo guest (guests/demo), built into the binary.
static DEMO_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");
/// The benchmark guest (guests/bench), built into the binary.
static BENCH_ELF: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

/// Exit status when `--max-instructions` stops the guest (as `timeout(1)` does).
const EXIT_INSTRUCTION_LIMIT: u8 = 124;
/// Exit status for every error (bad option, bad file, guest that can never continue).
const EXIT_ERROR: u8 = 2;
/// Exit status of a replay that diverged from its recording.
const EXIT_DIVERGED: u8 = 3;
/// Exit status of a replay whose trace was cut short.
const EXIT_CUT_SHORT: u8 = 4;

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
    /// Run a guest on the `virt` board (QEMU 10 compatible; QEMU's options work too).
    #[command(after_help = qemu::HELP)]
    Run(RunArgs),
    /// Run a guest and record every host input into a trace file.
    Record(RecordArgs),
    /// Replay a trace: the guest runs exactly as it did when recorded.
    Replay(ReplayArgs),
    /// Record a guest again and again under chaos scheduling (a fresh seed each try) until a
    /// condition shows up; keep only that recording, which replays it exactly.
    #[command(
        after_help = "Example: rewind hunt --chaos --until exit-nonzero --tries 50 -o race.rwd \\\n    -- -smp 4 --kernel guest.elf"
    )]
    Hunt(hunt::HuntArgs),
    /// Replay every segment of a trace (snapshot to snapshot) on its own, in parallel, and
    /// check each against the next snapshot; names the first bad segment (exit status 3).
    Verify(analyze::VerifyArgs),
    /// Ask a recording questions: console lines by icount, coverage, system calls, the last
    /// write to an address.
    Analyze {
        #[command(flatten)]
        engine: EngineArgs,
        #[command(subcommand)]
        question: analyze::AnalyzeCmd,
    },
    /// Write one self-contained HTML page with the recording on an instruction-count axis:
    /// console lines, input events by family, traps, idle warps, state checks, snapshots and
    /// where a replay left the recording; each mark shows the `rewind replay --from` command
    /// that goes there.
    Timeline(timeline::TimelineArgs),
    /// Put a recording and everything its replay needs (snapshots, firmware, kernel, initrd,
    /// disk images) into one verified file; `rewind replay PACK` replays it anywhere.
    Pack(pack::PackArgs),
    /// Unpack a pack's files into a directory, checking each file's size and hash.
    Unpack(pack::UnpackArgs),
    /// One segment task of an analysis, its partial result as JSON (run by the Ray engine's
    /// workers).
    #[command(hide = true)]
    SegmentTask(engine::SegmentTaskArgs),
    /// One try of a hunt, packed when it shows the condition (run by the Ray engine's
    /// workers).
    #[command(hide = true)]
    HuntTask(hunt::HuntTaskArgs),
    /// Print the events of a trace with their icount and file offset. Exits as `replay` would
    /// for the file: 0 intact, 4 cut short (after printing up to the cut), 2 corrupt.
    Dump(DumpArgs),
    /// Record the built-in demo guest, replay it, and compare.
    Demo,
    /// Run the built-in benchmark guest (and QEMU, when installed) and print the speed.
    Bench {
        /// The guest: the built-in benchmark (default) or `linux` (Debian's kernel from
        /// assets/linux, made by scripts/linux-guest.sh).
        #[arg(value_enum, value_name = "GUEST")]
        guest: Option<BenchGuest>,
        /// Do not run QEMU for comparison even if it is installed.
        #[arg(long)]
        no_qemu: bool,
        /// CPU model for `linux` (QEMU's `-cpu` spelling; QEMU runs the same CPU), e.g.
        /// `rv64,sstc=off,zba=off,zbb=off,zbc=off,zbs=off` to time Linux without them.
        #[arg(long, value_name = "rv64[,EXT=on|off...]", default_value = "rv64", value_parser = parse_cpu)]
        cpu: rewind_machine::CpuFeatures,
        /// For `reverse`: also time seeks and reverse steps in this recording (repeatable),
        /// e.g. a Linux boot or a 10^10-instruction run recorded with snapshots.
        #[arg(long = "trace", value_name = "FILE")]
        traces: Vec<PathBuf>,
        /// For `reverse`: time only the `--trace` recordings, not the built-in benchmark.
        #[arg(long, requires = "traces")]
        traces_only: bool,
        /// Execution engine for the timed runs (the built-in benchmark also times the other).
        /// Default: as for `run`.
        #[arg(long, value_enum)]
        accel: Option<Accel>,
    },
}

/// Guests `rewind bench` can time.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BenchGuest {
    /// Boot Debian's OpenSBI + Linux + busybox initramfs to poweroff.
    Linux,
    /// Record the benchmark guest with and without periodic snapshots, then time seeks and
    /// reverse steps in its replay (snapshot overhead, latency, snapshot memory).
    Reverse,
    /// Record Linux receiving 16 MiB through a hostfwd port (virtio-net, user-mode network):
    /// throughput, trace bytes per MiB received, replay time.
    Net,
    /// Linux `dd` writes then reads 64 MiB on a virtio-blk disk: rewind record and replay vs
    /// QEMU `rr=record`/`rr=replay` with blkreplay (times, log bytes).
    Disk,
    /// Linux with one hart and with four (a parallel workload): MIPS in all and per hart,
    /// record overhead, trace bytes per guest second, QEMU `-smp N`; the cost of the quantum.
    Smp,
    /// `analyze coverage` with 1 job, 2, all cores and the Ray engine, and `last-write`
    /// latency, on the benchmark guest's recording and the scripted Linux boot.
    Analysis,
}

/// The options that define a machine (shared by `run` and `record`).
#[derive(clap::Args, Debug)]
struct MachineArgs {
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
    /// CPU model in QEMU's spelling: `rv64` (QEMU 10's default rv64 without H) with
    /// extensions switched on or off, e.g. `rv64,zbb=off,sstc=off` or `rv64,zicond=on`.
    #[arg(long, value_name = "rv64[,EXT=on|off...]", default_value = "rv64", value_parser = parse_cpu)]
    cpu: rewind_machine::CpuFeatures,
    /// Add a device (QEMU's `-device` spelling; may be repeated): `virtio-rng-device` (or
    /// `virtio-rng`), an entropy source whose bytes go through the replay boundary;
    /// `virtio-net-device,netdev=ID[,mac=MAC]` (or `virtio-net`), a network card on the
    /// `--netdev` ID; `virtio-sound-device,audiodev=ID` (or `virtio-sound`), a sound card with
    /// one playback and one capture stream; `virtio-keyboard-device`, `virtio-mouse-device`,
    /// `virtio-tablet-device` (or `virtio-keyboard`, ...; `,id=NAME` names one for QMP's
    /// `input-send-event`), fed by QMP's `send-key` and `input-send-event`;
    /// `virtio-blk-device,drive=ID[,serial=S]`, the disk of `--drive ...,if=none,id=ID`. The
    /// first device takes the last virtio-mmio transport (0x10008000), as on QEMU.
    #[arg(long = "device", value_name = "DEVICE", value_parser = args::parse_device)]
    devices: Vec<args::DeviceArg>,
    /// A user-mode network (QEMU's `-netdev user`; may be repeated):
    /// `user,id=ID[,hostfwd=tcp:127.0.0.1:HOSTPORT-:GUESTPORT]...`. The guest gets 10.0.2.15
    /// by DHCP; 10.0.2.2 is the host's loopback. Plug it in with `--device
    /// virtio-net-device,netdev=ID`. Replay opens no socket: the recorded packets are replayed.
    #[arg(long = "netdev", value_name = "user,id=ID[,hostfwd=...]", value_parser = args::parse_netdev)]
    netdevs: Vec<args::NetdevSpec>,
    /// A virtio-net card with its own user-mode network (QEMU's `-nic`):
    /// `user[,hostfwd=...][,mac=MAC]`. These cards come after the `--device` ones.
    #[arg(long = "nic", value_name = "user[,hostfwd=...]", value_parser = args::parse_nic)]
    nics: Vec<args::NetdevSpec>,
    /// A disk (QEMU's `-drive` spelling; may be repeated):
    /// `file=IMG[,format=raw][,readonly=on][,id=NAME][,if=virtio|none][,snapshot=on][,serial=S]`.
    /// `if=virtio` (the default) plugs a virtio-blk-device after the `--device` ones, as QEMU
    /// does. `record` and `replay` never write the image: guest writes go to an overlay kept in
    /// the trace's snapshots. `run` writes to it unless `readonly=on` or `snapshot=on`.
    #[arg(long = "drive", value_name = "file=IMG[,...]", value_parser = args::parse_drive)]
    drives: Vec<args::DriveArg>,
    /// Host audio backend (QEMU's `-audiodev` spelling; may be repeated):
    /// `wav,id=ID,path=OUT.wav` writes what the guest plays; `none,id=ID` discards it. rewind
    /// adds `in.path=IN.wav`: capture reads that file (silence without it, or past its end).
    #[arg(long = "audiodev", value_name = "wav,id=ID,path=OUT.wav[,in.path=IN.wav]", value_parser = parse_audiodev)]
    audiodevs: Vec<rewind_machine::AudioDevConfig>,
    /// RAM size (a bare number is MiB).
    #[arg(short = 'm', long = "memory", value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    memory: u64,
    /// Each instruction takes 2^N ns of virtual time.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10))]
    icount_shift: u32,
    /// Number of harts (QEMU's `-smp`). They take turns on one thread, each for a quantum of
    /// instructions or until it waits in `wfi`: the interleaving follows from guest state.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    smp: u32,
    /// Instructions a hart runs before the next one takes its turn (recorded in the trace).
    #[arg(long, value_name = "N", default_value_t = rewind_machine::sched::DEFAULT_QUANTUM,
          value_parser = clap::value_parser!(u64).range(1..=rewind_machine::sched::MAX_QUANTUM))]
    quantum: u64,
    /// Chaos scheduling: each turn's length and the next hart are drawn from a PRNG seeded
    /// with SEED, and one hart is starved now and then; still deterministic (the seed is in
    /// the trace). Finds races a fixed quantum hides; see `rewind hunt`.
    #[arg(long, value_name = "SEED")]
    chaos: Option<u64>,
    /// Serial console: stdio, null, file:PATH (output to a file), tcp:HOST:PORT,server or
    /// unix:PATH,server (wait for one client; input and output over the socket).
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = parse_serial)]
    serial: SerialSpec,
    /// Feed the serial console with the bytes of this file instead of standard input.
    #[arg(long, value_name = "PATH")]
    serial_input: Option<PathBuf>,
    /// Stop after this many instructions (exit status 124).
    #[arg(long, value_name = "N")]
    max_instructions: Option<u64>,
    /// At the end, print the traps taken (exceptions and interrupts by cause) and the SBI
    /// calls the supervisor made, to standard error.
    #[arg(long)]
    stats: bool,
}

/// Execution engines (`--accel`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Accel {
    /// The pre-decoding interpreter.
    #[default]
    Interp,
    /// The interpreter plus translation of hot blocks to host code (Cranelift): same
    /// instructions at the same icount, faster.
    Jit,
}

/// The engine option of `run`, `record`, `replay`, `verify` and `analyze` (engines are
/// interchangeable: a trace recorded with one replays with the other).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub(crate) struct EngineArgs {
    /// Execution engine: `interp`, `jit`, or `jit,check=interp` (every translated region is
    /// run again by the interpreter from the same state; the first difference stops the run
    /// with an error naming it). Default: the environment variable REWIND_ACCEL (same
    /// spelling), else `jit` where the host has it (x86-64, aarch64), else `interp`.
    #[arg(long, global = true, value_name = "interp|jit[,check=interp]", value_parser = parse_accel)]
    accel: Option<AccelSpec>,
}

/// An engine with its options (`--accel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccelSpec {
    /// The engine.
    engine: Accel,
    /// Lockstep self-check against the interpreter (`check=interp`).
    check: bool,
}

/// Parse `interp`, `jit` or `jit,check=interp`.
fn parse_accel(s: &str) -> Result<AccelSpec, String> {
    let mut parts = s.split(',');
    let engine = match parts.next().unwrap_or("") {
        "interp" => Accel::Interp,
        "jit" => Accel::Jit,
        other => {
            return Err(format!(
                "unknown engine `{other}`: the engines are interp and jit"
            ))
        }
    };
    let mut check = false;
    for opt in parts {
        match opt {
            "check=interp" if engine == Accel::Jit => check = true,
            "check=interp" => {
                return Err("check=interp checks the jit engine: use jit,check=interp".into())
            }
            other => {
                return Err(format!(
                    "unknown engine option `{other}`: the only one is check=interp (with jit)"
                ))
            }
        }
    }
    Ok(AccelSpec { engine, check })
}

impl EngineArgs {
    /// Make the harts created from now on use the chosen engine.
    pub(crate) fn install(self) -> anyhow::Result<()> {
        let spec = match self.accel {
            Some(s) => s,
            None => default_accel()?,
        };
        select_engine(spec.engine)?;
        rewind_cpu::jit_check::set_default_check(spec.check);
        // Test knob: corrupt a translated result from the N-th checked region on (the check
        // must catch it).
        if let Some(n) = std::env::var("REWIND_JIT_CHECK_FAULT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            rewind_cpu::jit_check::inject_fault_at(n);
        }
        Ok(())
    }
}

/// The engine when `--accel` is not given: REWIND_ACCEL, else the JIT where the host has one
/// (x86-64, aarch64), else the interpreter.
fn default_accel() -> anyhow::Result<AccelSpec> {
    match std::env::var("REWIND_ACCEL") {
        Ok(v) if !v.is_empty() => {
            parse_accel(&v).map_err(|e| anyhow::anyhow!("REWIND_ACCEL={v}: {e}"))
        }
        _ => Ok(AccelSpec {
            engine: host_accel(),
            check: false,
        }),
    }
}

/// The fastest engine this host has.
fn host_accel() -> Accel {
    if rewind_jit::Jit::global().is_ok() {
        Accel::Jit
    } else {
        Accel::Interp
    }
}

/// Make the harts created from now on use `accel`.
pub(crate) fn select_engine(accel: Accel) -> anyhow::Result<()> {
    match accel {
        Accel::Interp => rewind_cpu::jit::set_default_engine(None),
        Accel::Jit => rewind_jit::Jit::install().context("--accel jit")?,
    }
    // Translation on a second thread unless REWIND_JIT_BACKGROUND=0 (tests that must see a
    // block translated the moment it is hot; results never depend on it).
    rewind_cpu::jit::set_background(std::env::var("REWIND_JIT_BACKGROUND").as_deref() != Ok("0"));
    // Test knob: translate after N executions (short test guests never reach the default).
    if let Some(n) = std::env::var("REWIND_JIT_HOT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rewind_cpu::jit::set_hot_threshold(n);
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    debug: debugging::DebugArgs,
    /// Write the device tree blob to PATH and exit (like QEMU's `-machine dumpdtb=PATH`).
    #[arg(long, value_name = "PATH")]
    dump_dtb: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RecordArgs {
    /// The trace file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    debug: debugging::DebugArgs,
    #[command(flatten)]
    machine: MachineArgs,
    /// Instructions between two state checks (0: none).
    #[arg(long, value_name = "N", default_value_t = rewind_replay::DEFAULT_CHECK_INTERVAL)]
    check_interval: u64,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Raw bytes per trace block (tests use tiny blocks to cut traces between blocks).
    #[arg(long, value_name = "BYTES", hide = true)]
    block_size: Option<usize>,
    /// Instructions between two snapshots, kept in FILE.snapshots so a replay can start
    /// anywhere (`replay --from`) at most this many instructions of replay away.
    #[arg(long, value_name = "N", default_value_t = rewind_machine::sidecar::DEFAULT_SNAPSHOT_INTERVAL,
          value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,
    /// Memory the snapshots may hold while recording, in MiB: beyond it, older snapshots are
    /// thinned out (the first is always kept).
    #[arg(long, value_name = "MiB", default_value_t = 512)]
    snapshot_budget: u64,
    /// Take no snapshots and write no FILE.snapshots.
    #[arg(long, conflicts_with_all = ["snapshot_every", "snapshot_budget"])]
    no_snapshots: bool,
    /// No progress line (it is shown only when standard error is a terminal).
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The trace to replay (or a pack made by `rewind pack`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    debug: debugging::DebugArgs,
    /// Where guest output goes: stdio, null or file:PATH.
    #[arg(long, value_name = "BACKEND", default_value = "stdio", value_parser = parse_serial)]
    serial: SerialSpec,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// At the end, print the traps taken and the SBI calls made (as `run --stats`).
    #[arg(long)]
    stats: bool,
    /// Replay to exactly instruction N, print the machine state to stderr and exit 0. Several
    /// (N1,N2,...) are visited in the order given, backwards too (through snapshots).
    #[arg(long, value_name = "N", value_delimiter = ',')]
    stop_at: Vec<u64>,
    /// With --stop-at: keep an in-memory snapshot every K instructions (for seeking back).
    #[arg(
        long,
        value_name = "K",
        default_value_t = 10_000_000,
        requires = "stop_at"
    )]
    snapshot_every: u64,
    /// With --stop-at: write a snapshot of the machine at the last stop to FILE.
    #[arg(long, value_name = "FILE", requires = "stop_at")]
    save_snapshot: Option<PathBuf>,
    /// Start at instruction N: restore the recording's nearest snapshot at or before N, run to
    /// N without showing output, then replay on to the end and verify as usual.
    #[arg(long, value_name = "N", conflicts_with = "stop_at")]
    from: Option<u64>,
    /// The recording's snapshot file (default: FILE.snapshots, used when present and valid).
    #[arg(long, value_name = "SNAPSHOTS")]
    snapshots: Option<PathBuf>,
    /// Write the playback of the trace's audiodev ID to OUT.wav (QEMU's `-audiodev`
    /// spelling; may be repeated). Without it replay writes no audio. Capture is never read:
    /// it comes from the trace.
    #[arg(long = "audiodev", value_name = "wav,id=ID,path=OUT.wav", value_parser = parse_audiodev)]
    audiodev: Vec<rewind_machine::AudioDevConfig>,
    /// Use PATH for the trace's image NAME (bios, kernel, initrd, or the recorded file name);
    /// it must hold exactly the recorded bytes. Without it an image is looked for by content:
    /// at its recorded path, then next to the trace.
    #[arg(long, value_name = "NAME=PATH", value_parser = args::parse_image_remap)]
    image: Vec<(String, PathBuf)>,
}

#[derive(clap::Args, Debug)]
struct DumpArgs {
    /// The trace to print.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Per-kind counts and sizes instead of the events.
    #[arg(long, conflicts_with_all = ["kind", "from", "to", "follow"])]
    stats: bool,
    /// Write the network traffic in both directions to PCAP (libpcap format, Ethernet,
    /// virtual-time stamps) instead of printing events. The frames the guest sent are not in
    /// the trace (only their hashes): they are recovered by replaying it.
    #[arg(long, value_name = "PCAP", conflicts_with_all = ["json", "stats", "kind", "from", "to", "follow"])]
    pcap: Option<PathBuf>,
    /// Only these event kinds: families (serial, clock, random, warp, state, net, input,
    /// shutdown, exit, snapshot, end) or kind names (SerialInput, ...), comma-separated.
    #[arg(long, value_name = "KINDS")]
    kind: Option<String>,
    /// Only events at or after instruction N.
    #[arg(long, value_name = "N")]
    from: Option<u64>,
    /// Only events at or before instruction N.
    #[arg(long, value_name = "N")]
    to: Option<u64>,
    /// Keep printing events as a recording in progress writes them, until it ends.
    #[arg(long, short = 'f')]
    follow: bool,
}

fn main() -> ExitCode {
    let args = match qemu::translate(std::env::args_os().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rewind: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let cli = match Cli::try_parse_from(std::iter::once("rewind".into()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rewind: {}", error_message(&e));
            ExitCode::from(error_status(&e))
        }
    }
}

/// A command-line error in the one-line `rewind: …` form (help and version print as usual).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayVersion || e.kind() == ErrorKind::DisplayHelp {
                0
            } else {
                EXIT_ERROR
            },
        );
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_string();
    let tip = match e.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => format!(" (did you mean '{s}'?)"),
        _ => String::new(),
    };
    eprintln!("rewind: {first}{tip}; see 'rewind --help' (QEMU's own options work too: 'rewind run --help')");
    ExitCode::from(EXIT_ERROR)
}

/// An error and its causes on one line, `: `-separated, leaving out a cause whose text the
/// message already ends with (errors that print their source would show it twice).
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim_end();
        if msg.is_empty() {
            msg.push_str(text);
        } else if !msg.ends_with(text) {
            msg.push_str(": ");
            msg.push_str(text);
        }
    }
    msg
}

/// The exit status of an error: 3 for a divergence, 4 for a trace cut short, 2 otherwise.
fn error_status(e: &anyhow::Error) -> u8 {
    let stop = e
        .chain()
        .find_map(|c| match c.downcast_ref::<MachineError>() {
            Some(MachineError::Replay(s)) => Some(s),
            _ => c.downcast_ref::<ReplayStop>(),
        });
    if e.chain()
        .any(|c| c.downcast_ref::<analyze::SegmentDiverged>().is_some())
    {
        return EXIT_DIVERGED;
    }
    match stop {
        Some(ReplayStop::Diverged(_)) => EXIT_DIVERGED,
        Some(ReplayStop::CutShort { .. }) => EXIT_CUT_SHORT,
        _ => EXIT_ERROR,
    }
}

fn dispatch(mut cli: Cli) -> anyhow::Result<u8> {
    if let Cmd::Bench { accel, .. } = &mut cli.command {
        let engine = match *accel {
            Some(a) => a,
            None => default_accel()?.engine,
        };
        *accel = Some(engine);
        select_engine(engine)?;
    }
    match cli.command {
        Cmd::Run(a) => {
            a.engine.install()?;
            run(a)
        }
        Cmd::Record(a) => {
            a.engine.install()?;
            commands::record(a)
        }
        // Analyses replay (and a hunt records) with the default engine: segments of one
        // process share its translation cache.
        Cmd::Hunt(a) => {
            EngineArgs::default().install()?;
            hunt::hunt(a)
        }
        Cmd::Replay(a) => {
            a.engine.install()?;
            commands::replay(a)
        }
        Cmd::Dump(a) => commands::dump(a),
        Cmd::Verify(a) => {
            a.accel.install()?;
            analyze::verify(a)
        }
        Cmd::Pack(a) => pack::pack(a),
        Cmd::Unpack(a) => pack::unpack(a),
        Cmd::SegmentTask(a) => {
            EngineArgs::default().install()?;
            engine::segment_task(a)
        }
        Cmd::HuntTask(a) => {
            EngineArgs::default().install()?;
            hunt::hunt_task(a)
        }
        Cmd::Analyze { engine, question } => {
            engine.install()?;
            analyze::analyze(question)
        }
        Cmd::Timeline(a) => {
            EngineArgs::default().install()?;
            timeline::timeline(a)
        }
        Cmd::Demo => commands::demo(),
        Cmd::Bench {
            guest: Some(BenchGuest::Linux),
            no_qemu,
            cpu,
            ..
        } => commands::bench_linux(no_qemu, cpu),
        Cmd::Bench {
            guest: Some(BenchGuest::Reverse),
            traces,
            traces_only,
            ..
        } => bench_reverse::run(&traces, traces_only),
        Cmd::Bench {
            guest: Some(BenchGuest::Net),
            no_qemu,
            ..
        } => bench_net::run(no_qemu),
        Cmd::Bench {
            guest: Some(BenchGuest::Disk),
            no_qemu,
            ..
        } => bench_disk::run(no_qemu),
        Cmd::Bench {
            guest: Some(BenchGuest::Analysis),
            ..
        } => bench_analysis::run(),
        Cmd::Bench {
            guest: Some(BenchGuest::Smp),
            no_qemu,
            ..
        } => bench_smp::run(no_qemu),
        Cmd::Bench {
            guest: None,
            no_qemu,
            accel,
            ..
        } => bench(no_qemu, accel.unwrap_or(Accel::Interp)),
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
        // Only a debugger sets breakpoints; a run that ends on one stopped cleanly.
        RunOutcome::Debug(hit) => {
            eprintln!("rewind: stopped by a debugger {hit:?} after {icount} instructions");
            0
        }
    }
}

/// The machine configuration the options describe.
fn machine_config(a: &MachineArgs) -> anyhow::Result<MachineConfig> {
    let virtio = args::virtio_devices(&a.devices, &a.netdevs, &a.nics, &a.drives)
        .map_err(anyhow::Error::msg)?;
    let bios = (a.bios != "none").then(|| ImageSource::file(&a.bios));
    let (serial_input, serial_output) = match &a.serial {
        SerialSpec::Stdio => (SerialInput::Stdio, SerialOutput::Stdout),
        SerialSpec::Null => (SerialInput::Null, SerialOutput::Null),
        SerialSpec::File(p) => (SerialInput::Null, SerialOutput::File(p.clone())),
        // Output goes to the socket the boundary accepts.
        SerialSpec::Tcp(addr) => (SerialInput::TcpServer(addr.clone()), SerialOutput::Null),
        SerialSpec::Unix(p) => (SerialInput::UnixServer(p.clone()), SerialOutput::Null),
    };
    let serial_input = a
        .serial_input
        .clone()
        .map(SerialInput::File)
        .unwrap_or(serial_input);
    Ok(MachineConfig {
        ram_size: a.memory,
        bios,
        kernel: a.kernel.clone().map(ImageSource::File),
        initrd: a.initrd.clone().map(ImageSource::File),
        append: a.append.clone(),
        icount_shift: a.icount_shift,
        serial_input,
        serial_output,
        handle_signals: true,
        cpu: a.cpu,
        virtio,
        audiodevs: a.audiodevs.clone(),
        smp: a.smp,
        quantum: a.quantum,
        chaos: a.chaos,
    })
}

fn parse_audiodev(s: &str) -> Result<rewind_machine::AudioDevConfig, String> {
    rewind_machine::AudioDevConfig::parse(s)
}

fn parse_cpu(s: &str) -> Result<rewind_machine::CpuFeatures, String> {
    rewind_machine::CpuFeatures::parse(s).map_err(|e| e.to_string())
}

fn run(a: RunArgs) -> anyhow::Result<u8> {
    let config = machine_config(&a.machine)?;
    rewind_machine::check_ram_reservable(config.ram_size)?;
    // Not over a capture input or an image either.
    rewind_machine::record::check_audio_outputs(&config, &[])?;
    if a.dump_dtb.is_none() {
        if let Some(debugging) = a.debug.bind(a.machine.max_instructions)? {
            // Run mode takes no snapshots (it cannot go back).
            let seeker = rewind_machine::seek::Seeker::new(Machine::new(config)?, u64::MAX)?;
            return debugging.serve(seeker, None).status();
        }
    }
    // The machine (and the terminal's raw mode) is dropped before the process exits.
    let mut m = Machine::new(config)?;
    if let Some(path) = &a.dump_dtb {
        std::fs::write(path, m.fdt())
            .with_context(|| format!("{}: cannot write", path.display()))?;
        return Ok(0);
    }
    let outcome = m.run(a.machine.max_instructions)?;
    let status = exit_status(outcome, m.icount());
    if a.machine.stats {
        let report = stats_report(&m);
        drop(m);
        eprint!("{report}");
    }
    Ok(status)
}

/// What `--stats` prints: instructions, then one line per non-zero trap counter.
pub(crate) fn stats_report(m: &Machine) -> String {
    let stats = &m.hart().stats;
    format!(
        "rewind: statistics after {} instructions\n  sbi timer calls (all kinds)           {:>12}\n{}{}{}",
        m.icount(),
        stats.sbi_timer_calls(),
        stats.report(),
        jit_report(),
        check_report(m)
    )
}

/// How many translated regions the self-check ran again in the interpreter (for `--stats`,
/// with `--accel jit,check=interp`).
fn check_report(m: &Machine) -> String {
    if rewind_cpu::jit::default_engine().is_none() || !rewind_cpu::jit_check::default_check() {
        return String::new();
    }
    let checked: u64 = m.harts().iter().map(|h| h.jit_checked_regions()).sum();
    format!("  jit regions checked (check=interp)    {checked:>12}\n")
}

/// The translating engine's counters, if it runs: regions, guest blocks, ops, translation
/// nanoseconds, host code bytes.
pub(crate) fn jit_counters() -> Option<[u64; 6]> {
    rewind_cpu::jit::default_engine()?;
    let j = rewind_jit::Jit::global().ok()?;
    use std::sync::atomic::Ordering::Relaxed;
    Some([
        j.blocks.load(Relaxed),
        j.guest_blocks.load(Relaxed),
        j.ops.load(Relaxed),
        j.compile_ns.load(Relaxed),
        j.code_bytes.load(Relaxed),
        j.reused.load(Relaxed),
    ])
}

/// The line telling which share of the instructions `m`'s harts retired ran as translated
/// code (empty when the JIT is not in use).
pub(crate) fn jit_share(m: &Machine) -> String {
    if rewind_cpu::jit::default_engine().is_none() {
        return String::new();
    }
    let (jit, all) = m
        .harts()
        .iter()
        .fold((0, 0), |(j, a), h| (j + h.jit_retired(), a + h.icount));
    format!(
        "jit share:          {:.1}% of the instructions retired in translated code\n",
        100.0 * jit as f64 / all.max(1) as f64
    )
}

/// Print what translation cost during a run of `wall` that started with the counters `before`
/// (nothing when the JIT is not in use).
pub(crate) fn print_jit_cost(before: Option<[u64; 6]>, wall: Duration) {
    let (Some(a), Some(b)) = (jit_counters(), before) else {
        return;
    };
    let [regions, blocks, ops, ns, bytes, reused] = std::array::from_fn(|i| a[i] - b[i]);
    let thread = if rewind_cpu::jit::background() {
        "compile thread"
    } else {
        "hart thread"
    };
    println!(
        "jit compile cost:   {regions} regions ({blocks} blocks, {ops} ops) in {:.0} ms = {:.1}% of the run ({thread}), {:.0} KiB of host code; {reused} regions reused from the translation cache",
        ns as f64 / 1e6,
        ns as f64 / 1e9 / wall.as_secs_f64().max(1e-9) * 100.0,
        bytes as f64 / 1024.0
    );
}

/// What the translating engine did, if harts use it (for `--stats`).
pub(crate) fn jit_report() -> String {
    if rewind_cpu::jit::default_engine().is_none() {
        return String::new();
    }
    match rewind_jit::Jit::global() {
        Ok(j) => {
            use std::sync::atomic::Ordering::Relaxed;
            format!(
                "  jit blocks translated                 {:>12}\n  jit ops translated                    {:>12}\n  jit translation time (ms)             {:>12}\n  jit host code (KiB)                   {:>12}\n",
                j.blocks.load(Relaxed),
                j.ops.load(Relaxed),
                j.compile_ns.load(Relaxed) / 1_000_000,
                j.code_bytes.load(Relaxed) / 1024
            )
        }
        Err(_) => String::new(),
    }
}

pub(crate) fn embedded(name: &str, bytes: &[u8]) -> ImageSource {
    ImageSource::Embedded {
        name: name.into(),
        bytes: Arc::from(bytes),
    }
}

/// Record `config` (signals left alone) into `trace` with the default state checks, to its
/// end: the recording machine (not finished yet) and the wall time of the run.
fn record_bench(
    config: MachineConfig,
    trace: &std::path::Path,
) -> anyhow::Result<(Machine, Duration)> {
    let mut rconfig = MachineConfig {
        handle_signals: false,
        ..config
    };
    let checks = rewind_machine::CheckSettings::default();
    let (writer, _) = commands::create_trace(trace, &mut rconfig, checks, false)?;
    let mut rec = Machine::record(rconfig, writer, checks)?;
    let t = Instant::now();
    rec.run(None)?;
    Ok((rec, t.elapsed()))
}

fn mips(instructions: u64, t: Duration) -> f64 {
    instructions as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

/// Where `qemu-system-riscv64` is, if installed.
fn find_qemu() -> Option<PathBuf> {
    let qemu = "qemu-system-riscv64";
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(qemu))
            .find(|c| c.is_file())
    })
}

/// Time QEMU running the same guest, with extra `-icount` options; `None` when QEMU is not
/// installed.
fn run_qemu(elf: &[u8], icount_extra: &str) -> anyhow::Result<Option<(Duration, Vec<u8>)>> {
    let Some(qemu) = find_qemu() else {
        return Ok(None);
    };
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = dir.path().join("bench.elf");
    std::fs::write(&path, elf).with_context(|| format!("{}: cannot write", path.display()))?;
    let start = Instant::now();
    let out = Command::new(&qemu)
        .args([
            "-machine",
            "virt",
            "-cpu",
            "rv64,h=false",
            "-bios",
            "none",
            "-nographic",
            "-icount",
            &format!("shift=0{icount_extra}"),
            "-kernel",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let wall = start.elapsed();
    let out = out.with_context(|| format!("{}: cannot start", qemu.display()))?;
    if !out.status.success() {
        eprintln!(
            "rewind: warning: {} exited with {}",
            qemu.display(),
            out.status
        );
    }
    Ok(Some((wall, out.stdout)))
}

/// QEMU recording the bench guest (`rr=record`): wall time and log size.
fn qemu_record(elf: &[u8]) -> anyhow::Result<Option<(Duration, u64)>> {
    if find_qemu().is_none() {
        return Ok(None);
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let log = dir.path().join("qemu-rr.bin");
    let Some((wall, _)) = run_qemu(elf, &format!(",rr=record,rrfile={}", log.display()))? else {
        return Ok(None);
    };
    let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    Ok(Some((wall, size)))
}

fn bench(no_qemu: bool, accel: Accel) -> anyhow::Result<u8> {
    let config = MachineConfig {
        kernel: Some(embedded("bench.elf", BENCH_ELF)),
        serial_output: SerialOutput::Capture,
        handle_signals: true,
        ..MachineConfig::default()
    };
    let other_config = config.clone();
    println!("engine:             {accel:?}");
    let mut m = Machine::new(config.clone())?;
    let jit_before = jit_counters();
    let start = Instant::now();
    let outcome = m.run(None)?;
    let wall = start.elapsed();
    let icount = m.icount();
    let output = m.captured_output().to_vec();
    let share = jit_share(&m);
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
    print_jit_cost(jit_before, wall);
    print!("{share}");

    // Record and replay the same guest.
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("bench.rwtrace");
    let (mut rec, rec_wall) = record_bench(config, &trace)?;
    let guest_ns = rec.bus().clock.ns(rec.icount());
    let rec_hash = rec.state_hash();
    let bytes = rec.finish_recording()?.unwrap_or(0);
    drop(rec);
    let reader = rewind_log::TraceReader::open(&trace)?;
    let (pconfig, _) =
        rewind_machine::record::replay_config(reader.header(), &commands::embedded_image)?;
    let mut rep = Machine::replay(pconfig, reader, SerialOutput::Null)?;
    let t = Instant::now();
    let replayed = rep.run(None).and_then(|_| rep.finish_replay());
    let rep_wall = t.elapsed();
    let guest_s = guest_ns as f64 / 1e9;
    println!(
        "record wall time:   {:.3} s ({:+.1}% over run)",
        rec_wall.as_secs_f64(),
        (rec_wall.as_secs_f64() / wall.as_secs_f64().max(1e-9) - 1.0) * 100.0
    );
    match replayed {
        Ok(()) if rep.state_hash() == rec_hash => println!(
            "replay wall time:   {:.3} s ({:.2}x the speed of recording, state matched)",
            rep_wall.as_secs_f64(),
            rec_wall.as_secs_f64() / rep_wall.as_secs_f64().max(1e-9)
        ),
        Ok(()) => println!("replay:             state hash differs from the recording!"),
        Err(e) => println!(
            "replay:             failed: {}",
            e.to_string().lines().next().unwrap_or("")
        ),
    }
    println!(
        "trace size:         {bytes} bytes for {guest_s:.3} guest seconds = {:.0} bytes per guest second",
        bytes as f64 / guest_s.max(1e-9)
    );
    if !no_qemu {
        match run_qemu(BENCH_ELF, "")? {
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
                if let Some((qrwall, qsize)) = qemu_record(BENCH_ELF)? {
                    println!(
                        "qemu rr=record:     {:.3} s, log {qsize} bytes ({:.0} bytes per guest second)",
                        qrwall.as_secs_f64(),
                        qsize as f64 / guest_s.max(1e-9)
                    );
                    println!(
                        "record vs qemu:     rewind {:.3} s / {bytes} bytes, qemu {:.3} s / {qsize} bytes",
                        rec_wall.as_secs_f64(),
                        qrwall.as_secs_f64()
                    );
                    println!("qemu record speed:  {:.0} MIPS", mips(icount, qrwall));
                }
            }
        }
    }
    println!("rewind record speed: {:.0} MIPS", mips(icount, rec_wall));
    // The other engine on the same guest: same instructions, same final state.
    let other = if accel == Accel::Jit {
        Accel::Interp
    } else {
        Accel::Jit
    };
    select_engine(other)?;
    let r = bench_engine(other_config, rec_hash);
    select_engine(accel)?;
    let (o_icount, o_run, o_rec, same) = r?;
    println!(
        "{:<20}run {:.0} MIPS, record {:.0} MIPS, {}",
        format!("{other:?} engine:"),
        mips(o_icount, o_run),
        mips(o_icount, o_rec),
        if o_icount == icount && same {
            "same instructions and state"
        } else {
            "DIFFERENT instructions or state!"
        }
    );
    let jit = jit_report();
    if !jit.is_empty() || other == Accel::Jit {
        if let Ok(j) = rewind_jit::Jit::global() {
            use std::sync::atomic::Ordering::Relaxed;
            println!(
                "jit translation:    {} regions, {} ops, {} ms",
                j.blocks.load(Relaxed),
                j.ops.load(Relaxed),
                j.compile_ns.load(Relaxed) / 1_000_000
            );
        }
    }
    Ok(status)
}

/// Run and record the bench guest with the engine selected now: (instructions, run wall time,
/// record wall time, whether the recording ended in state `want_hash`).
fn bench_engine(
    config: MachineConfig,
    want_hash: u64,
) -> anyhow::Result<(u64, Duration, Duration, bool)> {
    let mut m = Machine::new(config.clone())?;
    let t = Instant::now();
    m.run(None)?;
    let run_wall = t.elapsed();
    let icount = m.icount();
    drop(m);
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("bench.rwtrace");
    let (mut rec, rec_wall) = record_bench(config, &trace)?;
    let same = rec.state_hash() == want_hash;
    rec.finish_recording()?;
    Ok((icount, run_wall, rec_wall, same))
}
