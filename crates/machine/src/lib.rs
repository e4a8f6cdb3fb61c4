//! The `virt` board of rewind: RAM, devices on a bus, device tree, boot loading as QEMU 7.2
//! does it, and the execution loop that runs the hart in slices between checkpoints.
//!
//! ```no_run
//! use rewind_machine::{ImageSource, Machine, MachineConfig, RunOutcome};
//! let config = MachineConfig { kernel: Some(ImageSource::file("guest.elf")), ..MachineConfig::default() };
//! let mut m = Machine::new(config)?;
//! match m.run(None)? {
//!     RunOutcome::Exited(code) => println!("guest exited with {code}"),
//!     other => println!("stopped: {other:?}"),
//! }
//! # Ok::<(), rewind_machine::MachineError>(())
//! ```

pub mod analysis;
pub mod boot;
pub mod bus;
pub mod clock;
pub mod disk;
mod error;
pub mod fdt;
pub mod file_kind;
pub mod lcov;
pub mod loader;
mod machine;
pub mod pack;
pub mod record;
pub mod sched;
pub mod seek;
pub mod session;
pub mod sidecar;
pub mod snapshot;
pub mod state;
pub mod task;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{ImageProblem, MachineError};
pub use machine::{Machine, NetCapture, NetDirection, OutputObserver, RunOutcome};
pub use rewind_cpu::{CpuFeatures, CpuModelError};
pub use rewind_devices::virtio::blk;
pub use rewind_devices::virtio::net::{parse_mac as virtio_net_mac, NetSpec};
pub use rewind_devices::virtio::Backend as VirtioDevice;
pub use rewind_replay::{AudioDevConfig, CheckSettings, SerialInput, ShutdownCause};
pub use snapshot::{Snapshot, SnapshotError};

/// Default RAM size (QEMU's is 128 MiB; Linux with an initrd is happier with more).
pub const DEFAULT_RAM_SIZE: u64 = 256 << 20;

/// Whether the host can reserve `ram_size` bytes of guest RAM (address space only, nothing is
/// committed; see [`rewind_cpu::ram::Ram::try_with_rom`]): checked before a machine is built,
/// so a host that cannot (a low `ulimit -v`) gets a clear error instead of a crash.
pub fn check_ram_reservable(ram_size: u64) -> Result<(), MachineError> {
    // Sizes the board refuses anyway are left to its own message.
    if ram_size > machine::MAX_RAM_SIZE {
        return Ok(());
    }
    rewind_cpu::ram::Ram::try_with_rom(rewind_devices::layout::VIRT_DRAM, ram_size, 0, &[])
        .map(drop)
        .map_err(|e| MachineError::Config(format!("guest RAM of {} MiB: {e}", ram_size >> 20)))
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// A file on the host.
    File(PathBuf),
    /// Bytes built into the program (the embedded demo and bench guests).
    Embedded {
        /// Name used in messages.
        name: String,
        /// The image.
        bytes: Arc<[u8]>,
    },
}

impl ImageSource {
    /// An image read from `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        ImageSource::File(path.into())
    }

    /// The name used in messages (the path, or the embedded image's name).
    pub fn name(&self) -> &Path {
        match self {
            ImageSource::File(p) => p,
            ImageSource::Embedded { name, .. } => Path::new(name),
        }
    }
}

/// Where the guest's serial output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialOutput {
    /// Standard output.
    Stdout,
    /// A file (created or truncated).
    File(PathBuf),
    /// Nowhere.
    Null,
    /// Kept in memory; see [`Machine::captured_output`].
    Capture,
}

/// Everything that defines a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// RAM size in bytes (RAM starts at 0x8000_0000).
    pub ram_size: u64,
    /// Firmware loaded at the start of RAM (`None`: QEMU's `-bios none`).
    pub bios: Option<ImageSource>,
    /// Kernel: with no firmware, an ELF started in M-mode; with firmware, an ELF or raw image
    /// placed after it.
    pub kernel: Option<ImageSource>,
    /// Initial ramdisk (needs a kernel).
    pub initrd: Option<ImageSource>,
    /// Kernel command line (`/chosen/bootargs`).
    pub append: Option<String>,
    /// Each instruction takes 2^shift ns of virtual time.
    pub icount_shift: u32,
    /// Serial input backend.
    pub serial_input: SerialInput,
    /// Serial output destination.
    pub serial_output: SerialOutput,
    /// Turn SIGINT/SIGTERM/SIGHUP into orderly host shutdown requests.
    pub handle_signals: bool,
    /// The CPU's extensions (QEMU's `-cpu rv64,...`; default: QEMU 10's rv64 without H).
    pub cpu: rewind_cpu::CpuFeatures,
    /// virtio devices, in command-line order (the first goes in the last transport, as on QEMU).
    pub virtio: Vec<VirtioDevice>,
    /// Host audio backends (`--audiodev`), referred to by sound devices' `audiodev=ID`.
    pub audiodevs: Vec<AudioDevConfig>,
    /// Number of harts (QEMU's `-smp`), 1 to [`sched::MAX_HARTS`].
    pub smp: u32,
    /// Instructions per hart turn (see [`sched`]).
    pub quantum: u64,
    /// Chaos scheduling seed (`--chaos SEED`): turns drawn at random, reproducibly.
    pub chaos: Option<u64>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            ram_size: DEFAULT_RAM_SIZE,
            bios: None,
            kernel: None,
            initrd: None,
            append: None,
            icount_shift: 0,
            serial_input: SerialInput::Null,
            serial_output: SerialOutput::Stdout,
            handle_signals: false,
            cpu: rewind_cpu::CpuFeatures::default(),
            virtio: Vec::new(),
            audiodevs: Vec::new(),
            smp: 1,
            quantum: sched::DEFAULT_QUANTUM,
            chaos: None,
        }
    }
}
