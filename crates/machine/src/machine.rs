//! The machine and its execution loop.

use std::path::PathBuf;

use rewind_cpu::{CpuFeatures, ExitReason, Hart, Ram};
use rewind_devices::device::{DeviceInput, HostIo, PcmFormat, SampleFormat};
use rewind_devices::layout::{VIRT_DRAM, VIRT_MROM, VIRT_VIRTIO_COUNT};
use rewind_devices::FinisherAction;
use rewind_log::{TraceReader, TraceWriter};
use rewind_replay::{
    AudioFormat, AudioSample, Boundary, BoundaryConfig, CheckSettings, DeviceEvent, GuestRequest,
    Mode, OutputSink, ReplayStop, ShutdownCause,
};

use crate::boot::{self, BootPlan};
use crate::bus::Bus;
use crate::clock::MAX_SHIFT;
use crate::fdt::{build_fdt_with, phandle_test, FdtParams};
use crate::sched::{SchedConfig, SchedState};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::state::{self, OutputHash};
use crate::{MachineConfig, MachineError, SerialOutput, VirtioDevice};

/// Longest slice between checkpoints, in instructions: host input is noticed within about a
/// millisecond of guest execution.
pub const MAX_SLICE: u64 = 1 << 20;

/// Largest accepted RAM size (64 GiB).
pub const MAX_RAM_SIZE: u64 = 64 << 30;

/// `mmu-type` advertised in the device tree.
pub const MMU_TYPE: &str = "riscv,sv57";

/// After this many hart returns in a row without a retired instruction (outside WFI), the
/// guest is declared stuck: every instruction traps and time does not move.
const NO_PROGRESS_LIMIT: u32 = 100_000;

/// Flush guest output to its sink once this much is buffered (and at every slice end).
const OUTPUT_FLUSH_BYTES: usize = 4096;

/// Why [`Machine::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The guest powered off through the test finisher with this exit status.
    Exited(i32),
    /// The host asked to stop (`Ctrl-A x`, a signal).
    HostQuit(ShutdownCause),
    /// The instruction limit given to `run` was reached.
    InstructionLimit,
    /// A debugger breakpoint or watchpoint set on the hart fired (see
    /// [`rewind_cpu::debug`]); the run can go on from here.
    Debug(rewind_cpu::DebugHit),
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunOutcome::Exited(c) => write!(f, "guest exit status {c}"),
            RunOutcome::HostQuit(c) => write!(f, "stopped by {c}"),
            RunOutcome::InstructionLimit => write!(f, "instruction limit"),
            RunOutcome::Debug(rewind_cpu::DebugHit::Breakpoint { pc }) => {
                write!(f, "breakpoint at {pc:#x}")
            }
            RunOutcome::Debug(rewind_cpu::DebugHit::Watchpoint { access, addr, .. }) => {
                write!(f, "watchpoint: {access:?} access at {addr:#x}")
            }
        }
    }
}

/// A `virt` machine with one or more harts.
pub struct Machine {
    /// The harts; each counts its own retired instructions (`minstret`).
    harts: Vec<Hart>,
    /// Instructions retired by all harts: the coordinate of events, time, checks and seeks.
    icount: u64,
    /// Whose turn it is (see [`crate::sched`]).
    sched: SchedState,
    sched_cfg: SchedConfig,
    ram: Ram,
    bus: Bus,
    boundary: Boundary,
    output: OutputSink,
    output_name: PathBuf,
    out_buf: Vec<u8>,
    rx_buf: Vec<u8>,
    plan: BootPlan,
    fdt: Vec<u8>,
    config: MachineConfig,
    /// Running hash of all serial output (part of every state check).
    out_hash: OutputHash,
    /// Bytes of serial output so far.
    out_total: u64,
    /// Most bytes of serial output ever handed to the sink (after restores, `out_total` may be
    /// below it).
    out_written: u64,
    /// Hand each output byte position to the sink only once, even when re-executed after
    /// restoring a snapshot.
    output_once: bool,
    /// A byte string to look for in the serial output (benchmarks time boot milestones).
    watch: Option<OutputWatch>,
    /// Sees every network frame in both directions (`rewind dump --pcap`).
    net_capture: Option<NetCapture>,
    /// Sees the serial output as it is drained from the UART (`rewind analyze console`).
    output_observer: Option<OutputObserver>,
}

/// A callback seeing serial output: the icount of the checkpoint that drained it, the offset
/// of its first byte in the whole output, the bytes.
pub type OutputObserver = Box<dyn FnMut(u64, u64, &[u8]) + Send>;

/// Which way a captured network frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetDirection {
    /// From the host to the guest.
    ToGuest,
    /// From the guest to the host.
    FromGuest,
}

/// A callback seeing network frames: direction, virtio transport slot, virtual ns, frame.
pub type NetCapture = Box<dyn FnMut(NetDirection, u8, u64, &[u8]) + Send>;

/// State of [`Machine::watch_output`]: the marker, the output tail that may start a match,
/// and where the marker first appeared.
#[derive(Debug, Default)]
struct OutputWatch {
    marker: Vec<u8>,
    tail: Vec<u8>,
    hit: Option<(u64, std::time::Instant)>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("harts", &self.harts)
            .field("icount", &self.icount)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// Build a machine: load the images, open the host backends the configuration names.
    pub fn new(config: MachineConfig) -> Result<Self, MachineError> {
        Machine::open(config, Boundary::new)
    }

    /// Build a machine that records every host input into `writer` (whose header was made by
    /// [`crate::record::trace_header`] for this configuration).
    pub fn record(
        config: MachineConfig,
        writer: TraceWriter,
        checks: CheckSettings,
    ) -> Result<Self, MachineError> {
        Machine::open(config, move |c| Boundary::record(c, writer, checks))
    }

    /// Build a machine that replays `reader` (configuration from
    /// [`crate::record::replay_config`]); guest output goes to `output`. No host input is
    /// opened: `config.serial_input` and `config.handle_signals` are ignored.
    pub fn replay(
        mut config: MachineConfig,
        reader: TraceReader,
        output: SerialOutput,
    ) -> Result<Self, MachineError> {
        config.serial_input = rewind_replay::SerialInput::Null;
        config.handle_signals = false;
        config.serial_output = output;
        Machine::open(config, move |_| Ok(Boundary::replay(reader)))
    }

    fn open(
        config: MachineConfig,
        boundary: impl FnOnce(&BoundaryConfig) -> Result<Boundary, rewind_replay::BoundaryError>,
    ) -> Result<Self, MachineError> {
        // Check the configuration and images before touching the terminal or signal handlers.
        check_config(&config)?;
        let plan = boot::plan(&config)?;
        let (output, output_name) = match &config.serial_output {
            SerialOutput::Stdout => (OutputSink::Stdout, PathBuf::from("standard output")),
            SerialOutput::Null => (OutputSink::Null, PathBuf::from("null")),
            SerialOutput::Capture => (OutputSink::Capture(Vec::new()), PathBuf::from("capture")),
            SerialOutput::File(p) => (
                OutputSink::file(p).map_err(|source| MachineError::Output {
                    path: p.clone(),
                    source,
                })?,
                p.clone(),
            ),
        };
        let mut boundary = boundary(&BoundaryConfig {
            serial: config.serial_input.clone(),
            signals: config.handle_signals,
        })?;
        // A serial socket carries guest output back to its client.
        let (output, output_name) = match boundary.take_socket_output() {
            Some(sink) => (sink, PathBuf::from("serial socket")),
            None => (output, output_name),
        };
        let mut m = Machine::build(config, plan, boundary, output)?;
        m.output_name = output_name;
        Ok(m)
    }

    /// Build a machine around an existing boundary and output sink (the configuration's
    /// `serial_input`, `serial_output` and `handle_signals` are not used).
    pub fn with_host(
        config: MachineConfig,
        boundary: Boundary,
        output: OutputSink,
    ) -> Result<Self, MachineError> {
        check_config(&config)?;
        let plan = boot::plan(&config)?;
        Machine::build(config, plan, boundary, output)
    }

    fn build(
        config: MachineConfig,
        plan: BootPlan,
        mut boundary: Boundary,
        output: OutputSink,
    ) -> Result<Self, MachineError> {
        let rtc_base = boundary.host_clock_ns(0);
        let mut rng_seed = [0u8; 32];
        boundary.random(0, &mut rng_seed);
        if let Some(stop) = boundary.take_failure() {
            return Err(stop.into());
        }
        let nharts = config.smp as usize;
        let mut bus = Bus::with_harts(config.icount_shift, rtc_base, nharts);
        // QEMU plugs `-device virtio-*-device` into the transports from the last one down.
        for (i, backend) in config.virtio.iter().enumerate() {
            let model = backend
                .build()
                .map_err(|e| MachineError::Config(format!("{}: {e}", backend.qemu_name())))?;
            let slot = (VIRT_VIRTIO_COUNT as usize).checked_sub(i + 1);
            let slot =
                slot.ok_or_else(|| MachineError::Config("too many virtio devices".into()))?;
            bus.plug_virtio(slot as u32, model)
                .ok_or_else(|| MachineError::Config("too many virtio devices".into()))?;
            if let VirtioDevice::Sound { audiodev } = backend {
                if !audiodev.is_empty() {
                    let cfg = config
                        .audiodevs
                        .iter()
                        .find(|a| &a.id == audiodev)
                        .ok_or_else(|| {
                            MachineError::Config(format!(
                                "virtio-sound-device: audiodev '{audiodev}' is not defined \
                                 (--audiodev wav,id={audiodev},path=FILE.wav)"
                            ))
                        })?;
                    boundary.open_audio(slot as u8, cfg)?;
                }
            }
        }
        let fdt = build_fdt_with(
            &FdtParams {
                ram_size: config.ram_size,
                bootargs: config.append.clone(),
                initrd: plan.initrd,
                rng_seed,
                mmu_type: MMU_TYPE,
                cpu: config.cpu,
                harts: config.smp,
            },
            &bus.fdt_nodes(phandle_test(config.smp)),
        )
        .map_err(|e| MachineError::Config(format!("cannot build the device tree: {e}")))?;
        let rom = boot::mask_rom(plan.start_pc, plan.fdt_addr, plan.kernel_entry);
        bus.rom[..rom.len()].copy_from_slice(&rom);
        // The hart starts in the mask ROM and executes QEMU's reset vector from it.
        let ram = Ram::try_with_rom(VIRT_DRAM, config.ram_size, VIRT_MROM, &rom).map_err(|e| {
            MachineError::Config(format!("guest RAM ({} bytes): {e}", config.ram_size))
        })?;
        let sched_cfg = SchedConfig {
            harts: nharts,
            quantum: config.quantum,
            chaos: config.chaos,
        };
        let mut m = Machine {
            harts: (0..nharts).map(|i| reset_hart(config.cpu, i, 0)).collect(),
            icount: 0,
            sched: SchedState::new(&sched_cfg),
            sched_cfg,
            ram,
            bus,
            boundary,
            output,
            output_name: PathBuf::from("serial output"),
            out_buf: Vec::with_capacity(OUTPUT_FLUSH_BYTES),
            rx_buf: Vec::new(),
            plan,
            fdt,
            config,
            out_hash: OutputHash::default(),
            out_total: 0,
            out_written: 0,
            output_once: false,
            watch: None,
            net_capture: None,
            output_observer: None,
        };
        m.open_networks()?;
        m.load_images()?;
        Ok(m)
    }

    /// Start the user-mode network of every virtio-net card (run and record; replay opens
    /// nothing). Cards are numbered by their transport slot, as their log events are.
    fn open_networks(&mut self) -> Result<(), MachineError> {
        for (i, backend) in self.config.virtio.iter().enumerate() {
            let rewind_devices::virtio::Backend::Net(spec) = backend else {
                continue;
            };
            let slot = (VIRT_VIRTIO_COUNT as usize - 1 - i) as u8;
            let hostfwd = spec
                .hostfwd
                .iter()
                .map(|r| rewind_replay::net::HostFwd::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| MachineError::Config(e.to_string()))?;
            let cfg = rewind_replay::net::NetConfig { hostfwd };
            self.boundary
                .open_net(slot, &cfg)
                .map_err(|e| MachineError::Config(e.to_string()))?;
        }
        Ok(())
    }

    /// Show every network frame crossing the boundary to `capture` (with the virtual time it
    /// crossed at); `None` stops it.
    pub fn set_net_capture(&mut self, capture: Option<NetCapture>) {
        self.net_capture = capture;
    }

    /// Show the serial output to `observer` as the guest writes it (every byte once per
    /// execution: output produced again after a restore is shown again); `None` stops it.
    pub fn set_output_observer(&mut self, observer: Option<OutputObserver>) {
        self.output_observer = observer;
    }

    /// Copy every image and the device tree into RAM (at start and at every reset, as QEMU's
    /// ROM blobs are).
    fn load_images(&mut self) -> Result<(), MachineError> {
        let cfg_err = |e: rewind_cpu::ram::OutOfRam| MachineError::Config(e.to_string());
        let zeros = [0u8; 4096];
        for b in &self.plan.blobs {
            let s = &b.segment;
            self.ram.write(s.addr, &s.data).map_err(cfg_err)?;
            let mut at = s.addr + s.data.len() as u64;
            while at < s.end() {
                let n = (s.end() - at).min(zeros.len() as u64);
                self.ram.write(at, &zeros[..n as usize]).map_err(cfg_err)?;
                at += n;
            }
        }
        self.ram
            .write(self.plan.fdt_addr, &self.fdt)
            .map_err(cfg_err)?;
        Ok(())
    }

    /// The hart whose turn it is (the one that stopped at a debugger hit).
    pub fn hart(&self) -> &Hart {
        &self.harts[self.sched.current as usize]
    }

    /// The current hart, mutably: for debugger hooks, and register writes in `run` mode only
    /// (a change while recording or replaying breaks determinism).
    pub fn hart_mut(&mut self) -> &mut Hart {
        &mut self.harts[self.sched.current as usize]
    }

    /// Every hart, by hart id.
    pub fn harts(&self) -> &[Hart] {
        &self.harts
    }

    /// Every hart, mutably (see [`Machine::hart_mut`]).
    pub fn harts_mut(&mut self) -> &mut [Hart] {
        &mut self.harts
    }

    /// The id of the hart whose turn it is.
    pub fn current_hart(&self) -> usize {
        self.sched.current as usize
    }

    /// The scheduler's state (whose turn, how much of it is left).
    pub fn sched_state(&self) -> &SchedState {
        &self.sched
    }

    /// RAM, mutably: debugger memory writes in `run` mode only (see [`Machine::hart_mut`]).
    pub fn ram_mut(&mut self) -> &mut Ram {
        &mut self.ram
    }

    /// Guest RAM.
    pub fn ram(&self) -> &Ram {
        &self.ram
    }

    /// The devices and the clock.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The configuration the machine was built from.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// Where everything was loaded and how the hart started.
    pub fn boot_plan(&self) -> &BootPlan {
        &self.plan
    }

    /// The device tree blob given to the guest.
    pub fn fdt(&self) -> &[u8] {
        &self.fdt
    }

    /// Instructions retired by all harts since the machine was built.
    pub fn icount(&self) -> u64 {
        self.icount
    }

    /// Output kept by a [`SerialOutput::Capture`] sink.
    pub fn captured_output(&self) -> &[u8] {
        self.output.captured()
    }

    /// Reset the machine at the next checkpoint (monitor `system_reset`); a recording logs
    /// it, a replay ignores the request (its recording says where resets happen).
    pub fn request_host_reset(&mut self) {
        self.boundary.request_host_reset();
    }

    /// The replay boundary (host events can be injected through its sender).
    pub fn boundary(&self) -> &Boundary {
        &self.boundary
    }

    /// The values a state check compares (pc, privilege, icount, registers, key CSRs, serial
    /// output hash), with their names.
    pub fn state_snapshot(&self) -> Vec<(&'static str, u64)> {
        if self.harts.len() == 1 {
            return state::snapshot(&self.harts[0], self.out_hash.0);
        }
        state::snapshot_smp(&self.harts, self.icount, &self.sched, self.out_hash.0)
    }

    /// Hash of [`Machine::state_snapshot`]: equal in a recording and its replay at equal icount.
    pub fn state_hash(&self) -> u64 {
        state::hash(&self.state_snapshot())
    }

    /// Bytes of serial output the guest produced so far.
    pub fn output_len(&self) -> u64 {
        self.out_total
    }

    /// Identity of the trace being replayed ([`crate::snapshot::trace_id`]); `None` outside
    /// replay.
    pub fn trace_id(&self) -> Option<String> {
        self.boundary.replay_header().map(crate::snapshot::trace_id)
    }

    /// With `true`, output the guest produces again after a [`Machine::restore`] (the same
    /// bytes, since execution is deterministic) is not handed to the output sink a second time.
    pub fn set_output_once(&mut self, once: bool) {
        self.output_once = once;
    }

    /// Take a snapshot of the whole machine (between two `run` calls). RAM pages unchanged
    /// since `prev` share its storage.
    /// While recording, a `SnapshotMark` is written to the trace so the snapshot can later be
    /// placed in the replay (see [`crate::sidecar`]).
    pub fn snapshot(&mut self, prev: Option<&Snapshot>) -> Result<Snapshot, MachineError> {
        self.flush_output()?;
        let mark = self.boundary.snapshot_mark(self.icount);
        self.check_boundary()?;
        Ok(Snapshot {
            harts: self.harts.iter().map(Hart::save_state).collect(),
            sched: self.sched.clone(),
            ram: self.ram.save_image(prev.map(|p| &p.ram)),
            bus: self.bus.save(),
            out_hash: self.out_hash.0,
            output_len: self.out_total,
            replay: self.boundary.replay_position(),
            trace_id: self.trace_id(),
            mark,
        })
    }

    /// Record: with `true`, an instruction limit reached by [`Machine::run`] is a pause (to
    /// take a snapshot, or a debugger step), not the end of the recording: nothing is logged.
    pub fn set_pause_at_limit(&mut self, pause: bool) {
        self.boundary.set_pause_at_limit(pause);
    }

    /// Record: a monitor client quit here; the replay ends here too, with the same status.
    /// The quit goes through a checkpoint, as every host request does and as the replay takes
    /// it (output drained, pending events delivered, in the same order): logged directly, a
    /// quit while the guest idles could leave the recording in a state its replay does not
    /// reach. Returns how the recording ends (a guest request already due wins).
    pub fn log_monitor_quit(&mut self) -> Result<RunOutcome, MachineError> {
        self.boundary.request_monitor_quit();
        let outcome = self.checkpoint(true)?;
        Ok(outcome.unwrap_or(RunOutcome::HostQuit(ShutdownCause::Monitor)))
    }

    /// Record: the recording ends here because an instruction limit was reached by runs that
    /// paused at their limits (see [`Machine::set_pause_at_limit`]): log it as
    /// [`Machine::run`] does at an unpaused limit, so the replay stops here too.
    pub fn log_end_of_recording(&mut self) -> Result<(), MachineError> {
        self.boundary.end_of_recording(self.icount);
        self.check_boundary()
    }

    /// Treat the first `len` bytes of serial output as already handed to the sink (with
    /// [`Machine::set_output_once`]): `u64::MAX` silences the output, e.g. while a replay
    /// started from a snapshot runs up to where its output should begin.
    pub fn set_output_written(&mut self, len: u64) {
        self.out_written = len;
    }

    /// Put the machine in the state of `snap` (taken on this machine or on one built from the
    /// same trace and configuration); in replay, the trace is positioned where it was taken.
    /// A refused snapshot (recording, other trace, RAM layout) changes nothing; if the trace
    /// cannot be read at the saved position, the machine is unchanged but its replay cannot go on.
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), SnapshotError> {
        if self.boundary.mode() == Mode::Record {
            return Err(SnapshotError::Recording);
        }
        let mine = self.trace_id();
        if mine != snap.trace_id || (mine.is_some() && snap.replay.is_none()) {
            let name = |id: &Option<String>| id.clone().unwrap_or_else(|| "none".into());
            return Err(SnapshotError::DifferentTrace {
                snapshot: name(&snap.trace_id),
                trace: name(&mine),
            });
        }
        if snap.ram.base() != self.ram.base() || snap.ram.size() != self.ram.size() {
            return Err(rewind_cpu::ram::RamLayoutMismatch {
                image_base: snap.ram.base(),
                image_size: snap.ram.size(),
                base: self.ram.base(),
                size: self.ram.size(),
            }
            .into());
        }
        if snap.harts.len() != self.harts.len() {
            return Err(SnapshotError::Harts {
                saved: snap.harts.len(),
                machine: self.harts.len(),
            });
        }
        snap.sched
            .validate(&self.sched_cfg)
            .map_err(SnapshotError::Scheduler)?;
        // Devices first: their state is validated and refused whole before anything changes.
        let backup = self.bus.save();
        self.bus.restore(&snap.bus)?;
        if let Some(pos) = &snap.replay {
            if let Err(e) = self.boundary.seek_replay(pos) {
                let _ = self.bus.restore(&backup);
                return Err(e.into());
            }
        }
        self.ram.restore_image(&snap.ram)?;
        for (h, s) in self.harts.iter_mut().zip(&snap.harts) {
            h.restore_state(s);
        }
        self.icount = snap.icount();
        self.sched = snap.sched.clone();
        self.out_hash = OutputHash(snap.out_hash);
        self.out_total = snap.output_len;
        self.out_buf.clear();
        self.rx_buf.clear();
        Ok(())
    }

    /// Look for `marker` in the serial output from now on; see [`Machine::output_marker`].
    pub fn watch_output(&mut self, marker: &[u8]) {
        self.watch = Some(OutputWatch {
            marker: marker.to_vec(),
            ..OutputWatch::default()
        });
    }

    /// The icount and host time at which the watched marker was first seen in the output
    /// (exact to the checkpoint that drained it from the UART, at most [`MAX_SLICE`] later).
    pub fn output_marker(&self) -> Option<(u64, std::time::Instant)> {
        self.watch.as_ref().and_then(|w| w.hit)
    }

    /// Check the output bytes from `out_buf[from..]` for the watched marker.
    fn scan_watch(&mut self, from: usize) {
        if let Some(obs) = self.output_observer.as_mut() {
            let new = &self.out_buf[from..];
            obs(self.icount, self.out_total - new.len() as u64, new);
        }
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        if w.hit.is_some() || w.marker.is_empty() {
            return;
        }
        w.tail.extend_from_slice(&self.out_buf[from..]);
        if w.tail.windows(w.marker.len()).any(|x| x == w.marker) {
            w.hit = Some((self.icount, std::time::Instant::now()));
            w.tail.clear();
            return;
        }
        // Keep only what could still be the start of a match.
        let keep = w.marker.len() - 1;
        if w.tail.len() > keep {
            w.tail.drain(..w.tail.len() - keep);
        }
    }

    /// Record mode: end the trace (End event and footer with the final icount and state hash)
    /// and return its size in bytes; `None` in the other modes.
    pub fn finish_recording(&mut self) -> Result<Option<u64>, MachineError> {
        let hash = self.state_hash();
        let r = self.boundary.finish_recording(self.icount, hash);
        r.map_err(|e| self.replay_error(e))
    }

    /// Replay mode: check that the trace ends exactly here, with the recorded final state.
    pub fn finish_replay(&mut self) -> Result<(), MachineError> {
        let hash = self.state_hash();
        let r = self.boundary.finish_replay(self.icount, hash);
        r.map_err(|e| self.replay_error(e))
    }

    fn replay_error(&self, mut stop: ReplayStop) -> MachineError {
        let h = self.hart();
        stop.set_cpu(h.pc, state::privilege_name(h.prv));
        MachineError::Replay(stop)
    }

    /// A failure the boundary noticed (divergence, cut trace, write error), as an error.
    fn check_boundary(&mut self) -> Result<(), MachineError> {
        match self.boundary.take_failure() {
            Some(stop) => {
                let _ = self.flush_output();
                Err(self.replay_error(stop))
            }
            None => Ok(()),
        }
    }

    /// Run until the guest exits, the host asks to stop, or `limit` more instructions have
    /// retired (counted over all harts).
    pub fn run(&mut self, limit: Option<u64>) -> Result<RunOutcome, MachineError> {
        let end = limit.map(|l| self.icount.saturating_add(l));
        let smp = self.harts.len() > 1;
        let mut no_progress = 0u32;
        let mut slice_end = true;
        loop {
            if let Some(outcome) = self.checkpoint(slice_end)? {
                return Ok(outcome);
            }
            let now = self.icount;
            let mut budget = MAX_SLICE;
            if let Some(end) = end {
                if now >= end {
                    self.boundary.end_of_recording(now);
                    self.check_boundary()?;
                    self.flush_output()?;
                    return Ok(RunOutcome::InstructionLimit);
                }
                budget = budget.min(end - now);
            }
            if smp {
                budget = budget.min(self.sched.left.max(1));
            }
            if let Some(d) = self.next_deadline_ns(now) {
                budget = budget.min(self.bus.clock.icount_at_ns(d).saturating_sub(now).max(1));
            }
            let cur = self.sched.current as usize;
            let hart = &mut self.harts[cur];
            // Sscofpmf: a counter overflow (counters count the hart's retired instructions)
            // ends the slice.
            if let Some(at) = hart.csr.hpm_overflow_deadline() {
                budget = budget.min(at.saturating_sub(hart.icount).max(1));
            }
            if let Some(c) = self.boundary.next_check_icount() {
                budget = budget.min(c.saturating_sub(now).max(1));
            }
            if let Some(e) = self.boundary.next_event_icount() {
                budget = budget.min(e.saturating_sub(now).max(1));
            }
            let before = hart.icount;
            self.bus.icount_bias = now.wrapping_sub(before);
            let reason = hart.run(&mut self.ram, &mut self.bus, budget);
            let retired = hart.icount.wrapping_sub(before);
            if let Some(log) = hart.syscall_log_mut() {
                log.to_global(before, now);
            }
            self.icount += retired;
            if smp {
                self.sched.left = self.sched.left.saturating_sub(retired);
            }
            if reason == ExitReason::JitCheck {
                self.flush_output()?;
                let f = self.harts[cur].take_check_failure();
                let (pc, at, what) =
                    f.map_or((0, before, String::new()), |f| (f.pc, f.icount, f.what));
                return Err(MachineError::JitCheck {
                    hart: cur,
                    pc,
                    icount: now.wrapping_add(at.wrapping_sub(before)),
                    what,
                });
            }
            if reason == ExitReason::Debug {
                if let Some(hit) = self.harts[cur].take_debug_hit() {
                    // Show the user the guest's output up to here, as a checkpoint would; host
                    // events stay queued for the checkpoint that starts the resumed run.
                    let before = self.out_buf.len();
                    self.bus.uart.drain_tx(&mut self.out_buf);
                    self.out_hash.update(&self.out_buf[before..]);
                    self.out_total += (self.out_buf.len() - before) as u64;
                    if self.out_buf.len() > before {
                        self.scan_watch(before);
                    }
                    self.flush_output()?;
                    return Ok(RunOutcome::Debug(hit));
                }
            }
            let progressed = retired != 0;
            if progressed {
                self.sched.waiting = 0;
            }
            slice_end = reason != ExitReason::Yield;
            match reason {
                ExitReason::Wfi if !progressed => {
                    // The checkpoint just delivered every input and interrupt line and the hart
                    // still waits: let another hart run, or time pass when all of them wait.
                    self.sched.waiting |= 1 << cur;
                    if self.sched.waiting == SchedState::all(&self.sched_cfg) {
                        self.idle()?;
                        self.sched.waiting = 0;
                    } else {
                        self.switch_hart();
                    }
                    no_progress = 0;
                }
                ExitReason::Wfi if smp => {
                    self.switch_hart();
                    no_progress = 0;
                }
                _ if progressed => {
                    no_progress = 0;
                    if smp && self.sched.left == 0 {
                        self.switch_hart();
                    }
                }
                _ => {
                    no_progress += 1;
                    if smp && self.sched.left == 0 {
                        self.switch_hart();
                    }
                    if no_progress >= NO_PROGRESS_LIMIT {
                        self.flush_output()?;
                        let pc = self.harts[cur].pc;
                        return Err(MachineError::NoProgress { pc, icount: now });
                    }
                }
            }
        }
    }

    /// End the current hart's turn: the next hart (as the scheduler says) runs after the next
    /// checkpoint. The LR/SC reservation of the hart leaving is dropped: other harts run
    /// before it goes on, and the spec lets an SC fail for that (its loop retries in a turn
    /// of its own: turns are longer than any constrained LR/SC loop).
    fn switch_hart(&mut self) {
        let cur = self.sched.current as usize;
        self.harts[cur].reservation = None;
        self.sched.switch(&self.sched_cfg, self.icount);
    }

    /// The next virtual time (ns, strictly in the future) at which a device raises an interrupt
    /// line by itself: the CLINT timer, the hart's Sstc timer (stimecmp) or a bus device's
    /// deadline (the RTC alarm).
    fn next_deadline_ns(&self, icount: u64) -> Option<u64> {
        let clock = &self.bus.clock;
        let now_ns = clock.ns(icount);
        let mtime = clock.mtime(icount);
        // stimecmp compares with the guest-visible time (raw clock + the CLINT offset).
        let offset = self.bus.clint.mtime_offset();
        let now = mtime.wrapping_add(offset);
        let harts = self.harts.iter().enumerate().flat_map(|(i, h)| {
            let timer = self
                .bus
                .clint
                .mtip_deadline(i, mtime)
                .filter(|&d| d > mtime)
                .map(|d| clock.ns_at_mtime(d));
            let stimer = h
                .stimecmp_deadline()
                .filter(|&cmp| cmp > now)
                .and_then(|cmp| mtime.checked_add(cmp - now))
                .map(|d| clock.ns_at_mtime(d));
            [timer, stimer]
        });
        let devices = self.bus.next_device_deadline_ns(icount);
        harts
            .chain([devices])
            .flatten()
            .filter(|&ns| ns > now_ns)
            .min()
    }

    /// All harts wait for an interrupt: warp virtual time to the next deadline (or wait for host
    /// input, through the boundary).
    fn idle(&mut self) -> Result<(), MachineError> {
        let icount = self.icount;
        let now_ns = self.bus.clock.ns(icount);
        let until = self.next_deadline_ns(icount).map(|d| d - now_ns);
        self.flush_output()?;
        let warp = self.boundary.idle(icount, until);
        self.check_boundary()?;
        match warp {
            Some(warp) => {
                self.bus.clock.warp(warp);
                Ok(())
            }
            None => Err(MachineError::GuestStuck {
                pc: self.hart().pc,
                icount,
            }),
        }
    }

    /// A checkpoint: guest output out, finisher requests, host events in, interrupt lines
    /// updated. Returns an outcome when the run must stop.
    fn checkpoint(&mut self, slice_end: bool) -> Result<Option<RunOutcome>, MachineError> {
        let icount = self.icount;
        let before = self.out_buf.len();
        self.bus.uart.drain_tx(&mut self.out_buf);
        self.out_hash.update(&self.out_buf[before..]);
        self.out_total += (self.out_buf.len() - before) as u64;
        if self.out_buf.len() > before {
            self.scan_watch(before);
        }
        if let Some(action) = self.bus.finisher.take() {
            self.boundary.guest_request(
                icount,
                match action {
                    FinisherAction::Pass => GuestRequest::Exit(0),
                    FinisherAction::Fail(code) => GuestRequest::Exit(i32::from(code)),
                    FinisherAction::Reset => GuestRequest::Reset,
                },
            );
            self.check_boundary()?;
            match action {
                FinisherAction::Pass => {
                    self.flush_output()?;
                    return Ok(Some(RunOutcome::Exited(0)));
                }
                FinisherAction::Fail(code) => {
                    self.flush_output()?;
                    return Ok(Some(RunOutcome::Exited(i32::from(code))));
                }
                FinisherAction::Reset => self.reset()?,
            }
        }
        self.boundary.checkpoint(icount);
        if let Some(outcome) = self.host_shutdown(icount)? {
            return Ok(Some(outcome));
        }
        if self.boundary.take_host_reset(icount) {
            self.reset()?;
        }
        if self.boundary.queued_serial_input() > 0 {
            let room = self.bus.uart.rx_room();
            if room > 0 {
                self.rx_buf.clear();
                self.boundary
                    .take_serial_input(icount, room, &mut self.rx_buf);
                for &b in &self.rx_buf {
                    self.bus.uart.push_rx(b);
                }
            }
        }
        while let Some(event) = self.boundary.take_device_event(icount) {
            let (slot, input) = match event {
                DeviceEvent::NetPacket { device, bytes } => (device, DeviceInput::NetFrame(bytes)),
                DeviceEvent::Input {
                    device,
                    kind,
                    code,
                    value,
                } => (device, DeviceInput::Input { kind, code, value }),
            };
            let ns = self.bus.device_time(icount).ns;
            if let (Some(c), DeviceInput::NetFrame(f)) = (self.net_capture.as_mut(), &input) {
                c(NetDirection::ToGuest, slot, ns, f);
            }
            let mut host = BoundaryHost {
                boundary: &mut self.boundary,
                icount,
                ns,
                capture: self.net_capture.as_mut(),
            };
            self.bus
                .deliver(slot, input, icount, &mut self.ram, &mut host);
        }
        // Work a register write asked for (a virtio queue notify), or a device deadline: the
        // write ended the slice, so this is the instruction boundary right after it, in every
        // mode.
        if self.bus.wants_service(icount) {
            let mut host = BoundaryHost {
                boundary: &mut self.boundary,
                icount,
                ns: self.bus.device_time(icount).ns,
                capture: self.net_capture.as_mut(),
            };
            self.bus.service_devices(icount, &mut self.ram, &mut host);
        }
        self.update_interrupts();
        if self.boundary.state_check_due(icount) {
            let snap = self.state_snapshot();
            let hash = state::hash(&snap);
            if self.harts.len() == 1 {
                self.boundary.state_check(icount, hash, &snap);
            } else {
                // The hash covers every hart; the registers logged with it are the current
                // hart's, with a fingerprint of each other hart (a quarter of the log bytes).
                let regs =
                    state::registers_smp(&self.harts, self.icount, &self.sched, self.out_hash.0);
                self.boundary.state_check(icount, hash, &regs);
            }
        }
        // Replay: a shutdown logged after this checkpoint's other events ends the run here.
        if self.boundary.mode() == Mode::Replay {
            if let Some(outcome) = self.host_shutdown(icount)? {
                return Ok(Some(outcome));
            }
            self.boundary.check_position(icount);
        }
        self.check_boundary()?;
        if slice_end || self.out_buf.len() >= OUTPUT_FLUSH_BYTES {
            self.flush_output()?;
        }
        Ok(None)
    }

    /// A host shutdown request due now, as the run outcome it causes.
    fn host_shutdown(&mut self, icount: u64) -> Result<Option<RunOutcome>, MachineError> {
        let cause = self.boundary.take_shutdown_request(icount);
        self.check_boundary()?;
        let Some(cause) = cause else {
            return Ok(None);
        };
        self.flush_output()?;
        Ok(Some(match cause {
            // A recording stopped by its instruction limit replays to the same outcome.
            ShutdownCause::EndOfRecording => RunOutcome::InstructionLimit,
            c => RunOutcome::HostQuit(c),
        }))
    }

    /// Drive the PLIC's inputs and the hart's interrupt-pending bits from device state.
    fn update_interrupts(&mut self) {
        let icount = self.icount;
        let bus = &mut self.bus;
        bus.update_irq_lines(icount);
        let mtime = bus.clock.mtime(icount);
        for (i, hart) in self.harts.iter_mut().enumerate() {
            let mtip = bus.clint.mtip(i, mtime);
            let (meip, seip) = (bus.plic.eip(2 * i), bus.plic.eip(2 * i + 1));
            hart.set_device_interrupts(mtip, bus.clint.msip(i), meip, seip);
            hart.update_stimecmp(mtime.wrapping_add(bus.clint.mtime_offset()));
            // Counters count the hart's own instructions.
            let own = hart.icount;
            hart.csr.hpm_overflow_check(own);
        }
    }

    /// Guest-requested reset: devices and hart back to reset state, images reloaded; RAM is not
    /// cleared and time goes on, as on QEMU.
    fn reset(&mut self) -> Result<(), MachineError> {
        self.flush_output()?;
        self.bus.reset_devices();
        self.load_images()?;
        for (i, h) in self.harts.iter_mut().enumerate() {
            *h = reset_hart(self.config.cpu, i, h.icount);
        }
        Ok(())
    }

    fn flush_output(&mut self) -> Result<(), MachineError> {
        let start = self.out_total - self.out_buf.len() as u64;
        let skip = if self.output_once {
            self.out_written
                .saturating_sub(start)
                .min(self.out_buf.len() as u64) as usize
        } else {
            0
        };
        let r = self
            .output
            .write(&self.out_buf[skip..])
            .and_then(|()| self.output.flush());
        self.out_buf.clear();
        self.out_written = self.out_written.max(self.out_total);
        r.map_err(|source| MachineError::Output {
            path: self.output_name.clone(),
            source,
        })
    }
}

/// Reject settings the machine cannot honour.
fn check_config(config: &MachineConfig) -> Result<(), MachineError> {
    if config.icount_shift > MAX_SHIFT {
        return Err(MachineError::Config(format!(
            "icount shift {} is too large (at most {MAX_SHIFT})",
            config.icount_shift
        )));
    }
    if config.smp == 0 || config.smp > crate::sched::MAX_HARTS {
        return Err(MachineError::Config(format!(
            "{} harts are not supported (-smp 1 to {})",
            config.smp,
            crate::sched::MAX_HARTS
        )));
    }
    if config.quantum == 0 || config.quantum > crate::sched::MAX_QUANTUM {
        return Err(MachineError::Config(format!(
            "a quantum of {} instructions is not supported (1 to {})",
            config.quantum,
            crate::sched::MAX_QUANTUM
        )));
    }
    if config.ram_size < (2 << 20) || config.ram_size > MAX_RAM_SIZE || config.ram_size & 0xfff != 0
    {
        return Err(MachineError::Config(format!(
            "RAM size {} bytes is not supported (a multiple of 4 KiB between 2 MiB and 64 GiB)",
            config.ram_size
        )));
    }
    Ok(())
}

/// A hart at reset as QEMU 10 has it: M-mode, all registers zero, pc at the mask ROM's reset
/// vector (which sets a0/a1/a2 and jumps to the firmware or kernel: 6 instructions).
fn reset_hart(cpu: CpuFeatures, id: usize, icount: u64) -> Hart {
    let mut h = Hart::new(id as u64, VIRT_MROM, 0);
    h.x = [0; 32];
    h.set_features(cpu);
    h.icount = icount;
    h
}

/// Host I/O of devices, answered through the replay boundary at the current icount.
struct BoundaryHost<'a> {
    boundary: &'a mut Boundary,
    icount: u64,
    /// Virtual time now (for the network capture).
    ns: u64,
    capture: Option<&'a mut NetCapture>,
}

impl HostIo for BoundaryHost<'_> {
    fn random(&mut self, buf: &mut [u8]) {
        self.boundary.random(self.icount, buf);
    }

    fn net_transmit(&mut self, slot: u8, frame: &[u8]) {
        if let Some(c) = self.capture.as_mut() {
            c(NetDirection::FromGuest, slot, self.ns, frame);
        }
        self.boundary.net_transmit(self.icount, slot, frame);
    }

    fn audio_capture(&mut self, slot: u8, format: PcmFormat, buf: &mut [u8]) {
        self.boundary
            .audio_capture(self.icount, slot, audio_format(format), buf);
    }

    fn audio_playback(&mut self, slot: u8, format: PcmFormat, pos: u64, pcm: &[u8]) {
        self.boundary
            .audio_playback(slot, audio_format(format), pos, pcm);
    }
}

/// A device's PCM format as the host audio backends spell it.
fn audio_format(f: PcmFormat) -> AudioFormat {
    AudioFormat {
        rate: f.rate,
        channels: f.channels,
        sample: match f.sample {
            SampleFormat::S8 => AudioSample::S8,
            SampleFormat::U8 => AudioSample::U8,
            SampleFormat::S16 => AudioSample::S16,
            SampleFormat::U16 => AudioSample::U16,
            SampleFormat::S32 => AudioSample::S32,
            SampleFormat::U32 => AudioSample::U32,
            SampleFormat::F32 => AudioSample::F32,
        },
    }
}
