//! The device seam: what every pluggable device of the board implements ([`Device`]), how its
//! state goes into snapshots ([`Persist`]), and the few things it may ask of the host
//! ([`HostIo`], always answered through the replay boundary).

use rewind_cpu::Ram;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Time as a device sees it at an access or a service call: all derived from the icount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceTime {
    /// Instructions retired.
    pub icount: u64,
    /// Virtual time in ns since reset (warps included).
    pub ns: u64,
    /// The raw CLINT clock (10 MHz ticks).
    pub mtime: u64,
    /// The real-time clock's notion of now: host time at start plus `ns`.
    pub rtc_ns: u64,
}

/// Host-side I/O a device may need while serving a request. The machine answers it through
/// the replay boundary: inputs are logged in record and returned from the log in replay; guest
/// output is derived and checked against the recording.
pub trait HostIo {
    /// Fill `buf` with entropy.
    fn random(&mut self, buf: &mut [u8]);
    /// A frame the guest sent on the network device in transport `slot`.
    fn net_transmit(&mut self, _slot: u8, _frame: &[u8]) {}
    /// Fill `buf` with captured audio (in `format`) for the sound device in transport `slot`.
    fn audio_capture(&mut self, _slot: u8, _format: PcmFormat, buf: &mut [u8]) {
        buf.fill(0);
    }
    /// Samples (in `format`) the guest played on the sound device in transport `slot`,
    /// starting at byte `pos` of everything it played since the machine started (the same
    /// positions come again when a stretch is re-executed after a snapshot restore).
    fn audio_playback(&mut self, _slot: u8, _format: PcmFormat, _pos: u64, _pcm: &[u8]) {}
}

/// Encoding of one PCM sample (the virtio-sound formats QEMU 10 supports; little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    /// Signed 8 bits.
    S8,
    /// Unsigned 8 bits.
    U8,
    /// Signed 16 bits.
    S16,
    /// Unsigned 16 bits.
    U16,
    /// Signed 32 bits.
    S32,
    /// Unsigned 32 bits.
    U32,
    /// IEEE 754 single precision.
    F32,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn bytes(self) -> u32 {
        match self {
            SampleFormat::S8 | SampleFormat::U8 => 1,
            SampleFormat::S16 | SampleFormat::U16 => 2,
            SampleFormat::S32 | SampleFormat::U32 | SampleFormat::F32 => 4,
        }
    }
}

/// The format of a PCM stream: frames per second, samples per frame, sample encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcmFormat {
    /// Frames per second.
    pub rate: u32,
    /// Channels (samples per frame, interleaved).
    pub channels: u8,
    /// Sample encoding.
    pub sample: SampleFormat,
}

impl PcmFormat {
    /// Bytes per frame.
    pub fn frame_bytes(self) -> u32 {
        u32::from(self.channels) * self.sample.bytes()
    }
}

/// An asynchronous host input for one device, handed over at a checkpoint (logged at its
/// delivery icount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceInput {
    /// A network frame for the guest.
    NetFrame(Vec<u8>),
    /// A keyboard or pointer event (evdev type, code, value).
    Input {
        /// evdev type.
        kind: u16,
        /// evdev code.
        code: u16,
        /// evdev value.
        value: i32,
    },
}

/// What a device works with while serving: time, guest RAM (DMA), the host, and its slot
/// (the virtio-mmio transport index: the `device` byte of its log events).
pub struct DeviceCtx<'a> {
    /// Time of the checkpoint.
    pub t: DeviceTime,
    /// Guest RAM.
    pub ram: &'a mut Ram,
    /// The host, through the replay boundary.
    pub host: &'a mut dyn HostIo,
    /// Transport index.
    pub slot: u8,
}

/// A property value of a device tree node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FdtValue {
    /// One 32-bit cell.
    U32(u32),
    /// 64-bit values (two cells each), e.g. `reg`.
    U64s(Vec<u64>),
    /// A string.
    Str(String),
    /// A string list.
    Strs(Vec<String>),
    /// The board's interrupt controller (PLIC) phandle.
    InterruptParent,
}

/// A device tree node a device contributes under `/soc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtNode {
    /// Node name, unit address included (`virtio_mmio@10001000`).
    pub name: String,
    /// Properties in the order QEMU writes them.
    pub props: Vec<(&'static str, FdtValue)>,
}

impl FdtNode {
    /// The node of a plain MMIO device as QEMU writes it: `interrupts` and `interrupt-parent`
    /// (when it has a line), `reg`, then `compatible`; named `{prefix}@{base:x}`.
    pub fn mmio(prefix: &str, compatible: &str, base: u64, size: u64, irq: Option<u32>) -> Self {
        let mut props = Vec::new();
        if let Some(irq) = irq {
            props.push(("interrupts", FdtValue::U32(irq)));
            props.push(("interrupt-parent", FdtValue::InterruptParent));
        }
        props.push(("reg", FdtValue::U64s(vec![base, size])));
        props.push(("compatible", FdtValue::Str(compatible.into())));
        FdtNode {
            name: format!("{prefix}@{base:x}"),
            props,
        }
    }
}

/// A snapshot of a device that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The saved bytes do not decode.
    #[error("{device}: cannot decode the saved state: {problem}")]
    Decode {
        /// Device name.
        device: &'static str,
        /// Decoder message.
        problem: String,
    },
    /// The saved state decodes but breaks an invariant of the device.
    #[error("{device}: inconsistent saved state: {problem}")]
    Invalid {
        /// Device name.
        device: &'static str,
        /// Which invariant.
        problem: String,
    },
    /// The saved machine has other devices than this one.
    #[error("saved devices ({saved}) differ from the machine's ({machine})")]
    Devices {
        /// Names in the snapshot.
        saved: String,
        /// Names on the bus.
        machine: String,
    },
}

/// Saving and restoring a device's guest-visible state. Restoring validates everything a later
/// guest access relies on, so a snapshot that passed its checksum but is inconsistent gives an
/// error here instead of a panic on a later MMIO access.
pub trait Persist {
    /// The state as bytes (postcard).
    fn save_state(&self) -> Vec<u8>;
    /// Replace the state with saved bytes; on error the device is unchanged.
    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError>;
}

/// Invariants of a device's state (sizes of tables, ranges of indices).
pub trait Validate {
    /// Name used in errors.
    const NAME: &'static str;
    /// `Err(problem)` when the state breaks an invariant.
    fn validate(&self) -> Result<(), String>;
}

impl<T: Serialize + DeserializeOwned + Validate> Persist for T {
    fn save_state(&self) -> Vec<u8> {
        // Serialising plain structs into a Vec cannot fail; an empty state would fail to restore.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let v: T = postcard::from_bytes(bytes).map_err(|e| StateError::Decode {
            device: T::NAME,
            problem: e.to_string(),
        })?;
        v.validate().map_err(|problem| StateError::Invalid {
            device: T::NAME,
            problem,
        })?;
        *self = v;
        Ok(())
    }
}

/// A device on the board's bus: register accesses at an offset into its region, reset,
/// one interrupt line level, the next time it changes state by itself, and its device tree node.
pub trait Device: Persist + std::fmt::Debug + Send {
    /// Short name (snapshots, errors).
    fn name(&self) -> &'static str;
    /// Guest read of `size` (1, 2, 4, 8) bytes at `offset`; `None` is an access fault.
    fn read(&mut self, offset: u64, size: u8, t: &DeviceTime) -> Option<u64>;
    /// Guest write; `ram` is there for devices that reach guest memory (DMA). `None` is an
    /// access fault.
    fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        t: &DeviceTime,
        ram: &mut Ram,
    ) -> Option<()>;
    /// Back to the reset state.
    fn reset(&mut self);
    /// Level of the device's interrupt line.
    fn irq_level(&self, _t: &DeviceTime) -> bool {
        false
    }
    /// Virtual time (ns since reset, strictly after `t.ns`) at which the device changes its
    /// interrupt line by itself, if any.
    fn next_deadline_ns(&self, _t: &DeviceTime) -> Option<u64> {
        None
    }
    /// Whether the device has work for [`Device::service`]: a register write asked for it
    /// (the machine serves it at the checkpoint right after that instruction, in every mode),
    /// or one of its deadlines has passed.
    fn wants_service(&self, _t: &DeviceTime) -> bool {
        false
    }
    /// Do deferred work that needs host I/O or guest memory.
    fn service(&mut self, _ctx: &mut DeviceCtx) {}
    /// Take an asynchronous host input (a network frame, an input event).
    fn host_input(&mut self, _input: DeviceInput, _ctx: &mut DeviceCtx) {}
    /// The device tree node for the device at `base` (region `size`, PLIC source `irq`).
    fn fdt_node(&self, base: u64, size: u64, irq: Option<u32>) -> Option<FdtNode>;
}
