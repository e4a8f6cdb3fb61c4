//! The virtio-mmio transport, modern interface (virtio 1.2 §4.2.2, version 2), at QEMU
//! `virt`'s slots. A slot without a device answers as QEMU's do: magic, version and vendor,
//! device id 0, everything else zero.
//!
//! Guest mistakes (bad queue sizes, rings outside RAM, broken chains) set
//! DEVICE_NEEDS_RESET and raise a configuration interrupt, as the spec asks; the device does
//! nothing more until the driver resets it.

pub mod blk;
pub mod input;
pub mod net;
pub mod queue;
pub mod rng;
pub mod sound;

use rewind_cpu::Ram;
use serde::{Deserialize, Serialize};

use crate::device::{
    Device, DeviceCtx, DeviceInput, DeviceTime, FdtNode, HostIo, Persist, StateError,
};
use queue::{Chain, Queue, QueueError, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, QUEUE_SIZE_MAX};

/// `MagicValue`: "virt".
pub const MAGIC: u32 = 0x7472_6976;
/// `Version` of the modern interface.
pub const VERSION: u32 = 2;
/// `VendorID` QEMU reports ("QEMU").
pub const VENDOR: u32 = 0x554d_4551;

/// Register offsets.
pub mod reg {
    /// Magic value.
    pub const MAGIC: u64 = 0x000;
    /// Interface version.
    pub const VERSION: u64 = 0x004;
    /// Device id.
    pub const DEVICE_ID: u64 = 0x008;
    /// Vendor id.
    pub const VENDOR_ID: u64 = 0x00c;
    /// Device features (32 bits selected by `DEVICE_FEATURES_SEL`).
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// Device features word selector.
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// Driver features.
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// Driver features word selector.
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// Queue selector.
    pub const QUEUE_SEL: u64 = 0x030;
    /// Largest queue size.
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// Queue size.
    pub const QUEUE_NUM: u64 = 0x038;
    /// Queue ready.
    pub const QUEUE_READY: u64 = 0x044;
    /// Queue notifier.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// Interrupt status.
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// Interrupt acknowledge.
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// Device status.
    pub const STATUS: u64 = 0x070;
    /// Descriptor table address, low.
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// Descriptor table address, high.
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// Available ring address, low.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// Available ring address, high.
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// Used ring address, low.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// Used ring address, high.
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// Shared memory length, low (no regions: all ones).
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    /// Shared memory length, high.
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    /// Configuration generation.
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// Start of the device configuration space.
    pub const CONFIG: u64 = 0x100;
}

/// Status bit: the driver is ready.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Status bit: feature negotiation is complete.
pub const STATUS_FEATURES_OK: u32 = 8;
/// Status bit: the device hit an error and needs a reset.
pub const STATUS_NEEDS_RESET: u32 = 0x40;
/// Interrupt status bit: a used buffer.
pub const INT_VRING: u32 = 1;
/// Interrupt status bit: configuration change (incl. DEVICE_NEEDS_RESET).
pub const INT_CONFIG: u32 = 2;

/// A device kind behind a virtio-mmio transport: one file per kind implements it.
pub trait DeviceModel: std::fmt::Debug + Send {
    /// Short name (`virtio-rng`): snapshots and errors.
    fn name(&self) -> &'static str;
    /// virtio device id.
    fn device_id(&self) -> u32;
    /// Features offered, [`F_VERSION_1`] included.
    fn features(&self) -> u64;
    /// Number of virtqueues.
    fn queue_count(&self) -> usize;
    /// Read of the device configuration space (`offset` from 0x100).
    fn read_config(&self, _offset: u64, _size: u8) -> u64 {
        0
    }
    /// Write to the device configuration space.
    fn write_config(&mut self, _offset: u64, _size: u8, _value: u64) {}
    /// Whether a configuration write raises the configuration interrupt (while DRIVER_OK)
    /// and bumps the generation, as QEMU's `virtio_notify_config` in a device's `set_config`.
    fn notify_on_config_write(&self) -> bool {
        false
    }
    /// Back to the reset state (the driver wrote status 0, or the machine reset).
    fn reset(&mut self);
    /// The driver kicked queue `queue`.
    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError>;
    /// An asynchronous host input (only while the driver is ready).
    fn host_input(&mut self, _input: DeviceInput, _io: &mut VirtioIo) -> Result<(), QueueError> {
        Ok(())
    }
    /// Virtual ns at which [`DeviceModel::on_time`] must run.
    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }
    /// A deadline passed (only while the driver is ready).
    fn on_time(&mut self, _io: &mut VirtioIo) -> Result<(), QueueError> {
        Ok(())
    }
    /// The device's own state.
    fn save_state(&self) -> Vec<u8>;
    /// Replace the device's own state (validated; host handles are kept).
    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError>;
}

/// What a [`DeviceModel`] works with while serving its queues.
pub struct VirtioIo<'a> {
    /// The transport's queues.
    pub queues: &'a mut [Queue],
    /// Guest RAM.
    pub ram: &'a mut Ram,
    /// The host, through the replay boundary.
    pub host: &'a mut dyn HostIo,
    /// Time now.
    pub t: DeviceTime,
    /// Transport index (the `device` byte of log events).
    pub slot: u8,
    /// Negotiated features.
    pub features: u64,
    /// Interrupt status bits to raise.
    isr: u32,
}

impl VirtioIo<'_> {
    /// The next available chain of queue `q`, if any (`None` too for a queue not ready).
    pub fn pop(&mut self, q: usize) -> Result<Option<Chain>, QueueError> {
        let indirect = self.features & F_INDIRECT_DESC != 0;
        match self.queues.get_mut(q) {
            Some(queue) if queue.ready => {
                let chain = queue.pop(self.ram, indirect)?;
                if chain.is_some() && self.features & F_EVENT_IDX != 0 {
                    queue.publish_avail_event(self.ram)?;
                }
                Ok(chain)
            }
            _ => Ok(None),
        }
    }

    /// Return chain `head` of queue `q` with `len` bytes written; raises the used-buffer
    /// interrupt if the driver wants one.
    pub fn push_used(&mut self, q: usize, head: u16, len: u32) -> Result<(), QueueError> {
        let event_idx = self.features & F_EVENT_IDX != 0;
        let Some(queue) = self.queues.get_mut(q) else {
            return Ok(());
        };
        if queue.push_used(self.ram, head, len, event_idx)? {
            self.isr |= INT_VRING;
        }
        Ok(())
    }

    /// Whether queue `q` is ready.
    pub fn ready(&self, q: usize) -> bool {
        self.queues.get(q).is_some_and(|q| q.ready)
    }

    /// The configuration space changed: raise the configuration interrupt.
    pub fn config_changed(&mut self) {
        self.isr |= INT_CONFIG;
    }
}

/// The device behind a transport, as configured on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// virtio-rng: entropy.
    Rng,
    /// virtio-keyboard / -mouse / -tablet, with an optional `id=` QMP's `input-send-event`
    /// can name.
    Input(input::InputKind, Option<String>),
    /// virtio-net: a network card on user-mode networking.
    Net(net::NetSpec),
    /// virtio-blk: a disk image.
    Blk(blk::DriveConfig),
    /// virtio-sound: one playback and one capture stream, on the host audio backend `audiodev`
    /// (an `--audiodev` id; empty: none, playback is dropped and capture is silence).
    Sound {
        /// The `--audiodev` id.
        audiodev: String,
    },
}

impl Backend {
    /// QEMU's `-device` name.
    pub fn qemu_name(&self) -> &'static str {
        match self {
            Backend::Rng => "virtio-rng-device",
            Backend::Input(input::InputKind::Keyboard, _) => "virtio-keyboard-device",
            Backend::Input(input::InputKind::Mouse, _) => "virtio-mouse-device",
            Backend::Input(input::InputKind::Tablet, _) => "virtio-tablet-device",
            Backend::Net(_) => "virtio-net-device",
            Backend::Blk(_) => "virtio-blk-device",
            Backend::Sound { .. } => "virtio-sound-device",
        }
    }

    /// The device as the trace header records it: [`Backend::parse`] reads it back. Devices
    /// with options (drives, netdevs) write them as QEMU's `-device` option lists do.
    pub fn spec(&self) -> String {
        match self {
            Backend::Input(_, Some(id)) => format!("{},id={id}", self.qemu_name()),
            Backend::Net(n) => n.spec(),
            Backend::Blk(d) => d.spec(),
            Backend::Sound { audiodev } if !audiodev.is_empty() => {
                format!("{},audiodev={audiodev}", self.qemu_name())
            }
            _ => self.qemu_name().to_string(),
        }
    }

    /// The device a `-device` spec names (QEMU's name, or the short `virtio-rng`,
    /// `virtio-sound`, `virtio-keyboard`, ..., then QEMU-style `,key=value` options; unknown
    /// options are ignored, as `id=` for most devices).
    pub fn parse(spec: &str) -> Option<Self> {
        let mut parts = spec.split(',');
        let name = parts.next()?;
        let opt = |key: &str| {
            spec.split(',')
                .skip(1)
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let input = |kind| {
            // Properties that change what the guest sees are not modelled: refused, not
            // ignored. `id=` names the device for QMP's `input-send-event`.
            if opt("serial").is_some() || opt("wheel-axis").is_some() {
                return None;
            }
            let id = match opt("id") {
                None => None,
                Some(id) if valid_id(&id) => Some(id),
                Some(_) => return None,
            };
            Some(Backend::Input(kind, id))
        };
        match name {
            "virtio-rng-device" | "virtio-rng" => Some(Backend::Rng),
            "virtio-sound-device" | "virtio-sound" => Some(Backend::Sound {
                audiodev: opt("audiodev").unwrap_or_default(),
            }),
            "virtio-keyboard-device" | "virtio-keyboard" => input(input::InputKind::Keyboard),
            "virtio-mouse-device" | "virtio-mouse" => input(input::InputKind::Mouse),
            "virtio-tablet-device" | "virtio-tablet" => input(input::InputKind::Tablet),
            _ => net::NetSpec::parse(spec)
                .map(Backend::Net)
                .or_else(|| blk::DriveConfig::from_spec(spec).map(Backend::Blk)),
        }
    }

    /// The device model, in reset state (opening whatever host files it needs).
    pub fn build(&self) -> Result<Box<dyn DeviceModel>, String> {
        Ok(match self {
            Backend::Rng => Box::new(rng::Rng),
            Backend::Input(kind, _) => Box::new(input::Input::new(*kind)),
            Backend::Net(n) => Box::new(net::VirtioNet::new(n.mac)),
            Backend::Blk(d) => Box::new(blk::Blk::open(d).map_err(|e| e.to_string())?),
            Backend::Sound { .. } => Box::new(sound::Sound::new()),
        })
    }
}

/// A QEMU device id: a letter, then letters, digits, `-`, `.` and `_`.
fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The transport's registers: what a snapshot saves besides the device's own state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Transport {
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: [u32; 2],
    /// Features in force since FEATURES_OK.
    features: u64,
    queue_sel: u32,
    queues: Vec<Queue>,
    status: u32,
    isr: u32,
    config_generation: u32,
    /// Queues notified and not served yet (bit per queue): the in-flight work.
    notified: u32,
}

/// One virtio-mmio transport and its device.
#[derive(Debug)]
pub struct VirtioMmio {
    model: Option<Box<dyn DeviceModel>>,
    regs: Transport,
}

/// A saved transport: its registers and the device's own state.
#[derive(Serialize, Deserialize)]
struct SavedTransport {
    regs: Transport,
    model: Vec<u8>,
}

/// The device model's own part of a saved transport (for tools and tests that look into
/// snapshots); `None` if `transport` does not decode.
pub fn saved_model_state(transport: &[u8]) -> Option<Vec<u8>> {
    postcard::from_bytes::<SavedTransport>(transport)
        .ok()
        .map(|s| s.model)
}

impl VirtioMmio {
    /// A slot with no device.
    pub fn empty() -> Self {
        VirtioMmio {
            model: None,
            regs: Transport::default(),
        }
    }

    /// A transport holding `model`, in reset state.
    pub fn new(model: Box<dyn DeviceModel>) -> Self {
        let mut d = VirtioMmio {
            model: Some(model),
            regs: Transport::default(),
        };
        d.soft_reset();
        d
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.regs.status
    }

    /// The interrupt status register.
    pub fn interrupt_status(&self) -> u32 {
        self.regs.isr
    }

    fn soft_reset(&mut self) {
        let queues = self.model.as_ref().map_or(0, |m| m.queue_count());
        self.regs = Transport {
            queues: vec![Queue::default(); queues],
            ..Transport::default()
        };
        if let Some(m) = &mut self.model {
            m.reset();
        }
    }

    fn needs_reset(&mut self) {
        self.regs.status |= STATUS_NEEDS_RESET;
        self.regs.isr |= INT_CONFIG;
        self.regs.notified = 0;
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.regs.queues.get_mut(self.regs.queue_sel as usize)
    }

    fn read32(&self, offset: u64) -> u32 {
        let Some(model) = &self.model else {
            return match offset {
                reg::MAGIC => MAGIC,
                reg::VERSION => VERSION,
                reg::VENDOR_ID => VENDOR,
                _ => 0,
            };
        };
        let r = &self.regs;
        let q = r.queues.get(r.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => model.device_id(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match r.device_features_sel {
                0 => model.features() as u32,
                1 => (model.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => q.map_or(0, |_| QUEUE_SIZE_MAX),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => r.isr,
            reg::STATUS => r.status,
            reg::CONFIG_GENERATION => r.config_generation,
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => u32::MAX,
            _ => 0,
        }
    }

    fn write32(&mut self, offset: u64, value: u32, ram: &Ram) {
        if self.model.is_none() {
            return;
        }
        let set_low = |a: &mut u64| *a = (*a & !0xffff_ffff) | u64::from(value);
        let set_high = |a: &mut u64| *a = (*a & 0xffff_ffff) | u64::from(value) << 32;
        let r = &mut self.regs;
        match offset {
            reg::DEVICE_FEATURES_SEL => r.device_features_sel = value,
            reg::DRIVER_FEATURES => {
                if let Some(w) = r.driver_features.get_mut(r.driver_features_sel as usize) {
                    *w = value;
                }
            }
            reg::DRIVER_FEATURES_SEL => r.driver_features_sel = value,
            reg::QUEUE_SEL => r.queue_sel = value,
            reg::QUEUE_NUM => {
                if let Some(q) = self.queue() {
                    q.size = value;
                }
            }
            reg::QUEUE_READY => {
                let Some(q) = self.queue() else { return };
                if value == 0 {
                    q.ready = false;
                    return;
                }
                let ok = q.check(ram).is_ok();
                q.ready = true;
                if !ok {
                    self.needs_reset();
                }
            }
            reg::QUEUE_NOTIFY if (value as usize) < r.queues.len() => {
                r.notified |= 1 << value;
            }
            reg::INTERRUPT_ACK => r.isr &= !value,
            reg::STATUS => self.write_status(value),
            reg::QUEUE_DESC_LOW => self.queue().map_or((), |q| set_low(&mut q.desc)),
            reg::QUEUE_DESC_HIGH => self.queue().map_or((), |q| set_high(&mut q.desc)),
            reg::QUEUE_DRIVER_LOW => self.queue().map_or((), |q| set_low(&mut q.driver)),
            reg::QUEUE_DRIVER_HIGH => self.queue().map_or((), |q| set_high(&mut q.driver)),
            reg::QUEUE_DEVICE_LOW => self.queue().map_or((), |q| set_low(&mut q.device)),
            reg::QUEUE_DEVICE_HIGH => self.queue().map_or((), |q| set_high(&mut q.device)),
            _ => {}
        }
    }

    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.soft_reset();
            return;
        }
        let mut value = value & 0xff;
        let offered = self.model.as_ref().map_or(0, |m| m.features());
        let r = &mut self.regs;
        if value & STATUS_FEATURES_OK != 0 && r.status & STATUS_FEATURES_OK == 0 {
            let wanted = u64::from(r.driver_features[1]) << 32 | u64::from(r.driver_features[0]);
            // Features the device did not offer, or a modern transport without VERSION_1:
            // FEATURES_OK does not stick, the driver sees it clear and gives up.
            if wanted & !offered != 0 || wanted & F_VERSION_1 == 0 {
                value &= !STATUS_FEATURES_OK;
            } else {
                r.features = wanted;
            }
        }
        // DEVICE_NEEDS_RESET is the device's to set; only a reset clears it.
        r.status = value | (r.status & STATUS_NEEDS_RESET);
    }

    /// Whether the driver has the device running (DRIVER_OK, no error).
    fn live(&self) -> bool {
        self.regs.status & STATUS_DRIVER_OK != 0 && self.regs.status & STATUS_NEEDS_RESET == 0
    }

    /// Run `work` on the device model with its queues; an error puts the device into
    /// DEVICE_NEEDS_RESET.
    fn with_model(
        &mut self,
        ctx: &mut DeviceCtx,
        work: impl FnOnce(&mut dyn DeviceModel, &mut VirtioIo) -> Result<(), QueueError>,
    ) {
        let Some(model) = self.model.as_deref_mut() else {
            return;
        };
        let mut io = VirtioIo {
            queues: &mut self.regs.queues,
            ram: ctx.ram,
            host: ctx.host,
            t: ctx.t,
            slot: ctx.slot,
            features: self.regs.features,
            isr: 0,
        };
        let r = work(model, &mut io);
        self.regs.isr |= io.isr;
        if r.is_err() {
            self.needs_reset();
        }
    }

    fn serve(&mut self, ctx: &mut DeviceCtx) {
        let notified = std::mem::take(&mut self.regs.notified);
        if !self.live() {
            return;
        }
        for i in 0..self.regs.queues.len() {
            if notified & (1 << i) == 0 || !self.regs.queues[i].ready || !self.live() {
                continue;
            }
            self.with_model(ctx, |m, io| m.notify(i, io));
        }
        if self.live()
            && self
                .model
                .as_ref()
                .and_then(|m| m.next_deadline_ns())
                .is_some_and(|d| d <= ctx.t.ns)
        {
            self.with_model(ctx, |m, io| m.on_time(io));
        }
    }
}

/// QEMU maps 0x200 bytes of each transport; the rest of the 4 KiB slot is unassigned (an
/// access fault). Accesses are naturally aligned.
fn access_ok(offset: u64, size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8)
        && offset & (u64::from(size) - 1) == 0
        && offset + u64::from(size) <= MAPPED_SIZE
}

/// Bytes of a transport QEMU maps.
pub const MAPPED_SIZE: u64 = 0x200;

impl Transport {
    fn validate(&self, want_queues: usize) -> Result<(), String> {
        if self.queues.len() != want_queues {
            return Err(format!(
                "{} queues, the device has {want_queues}",
                self.queues.len()
            ));
        }
        if self.notified >> want_queues != 0 {
            return Err(format!("notified queues {:#x}", self.notified));
        }
        Ok(())
    }
}

impl Persist for VirtioMmio {
    fn save_state(&self) -> Vec<u8> {
        let saved = SavedTransport {
            regs: self.regs.clone(),
            model: self
                .model
                .as_ref()
                .map_or_else(Vec::new, |m| m.save_state()),
        };
        // Serialising plain structs into a Vec cannot fail; an empty state would fail to restore.
        postcard::to_allocvec(&saved).unwrap_or_default()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let name = self.name();
        let saved: SavedTransport =
            postcard::from_bytes(bytes).map_err(|e| StateError::Decode {
                device: name,
                problem: e.to_string(),
            })?;
        let want = self.model.as_ref().map_or(0, |m| m.queue_count());
        saved
            .regs
            .validate(want)
            .map_err(|problem| StateError::Invalid {
                device: name,
                problem,
            })?;
        match &mut self.model {
            Some(m) => m.restore_state(&saved.model)?,
            None if !saved.model.is_empty() => {
                return Err(StateError::Invalid {
                    device: name,
                    problem: "device state for an empty slot".into(),
                })
            }
            None => {}
        }
        self.regs = saved.regs;
        Ok(())
    }
}

impl Device for VirtioMmio {
    fn name(&self) -> &'static str {
        self.model.as_ref().map_or("virtio-mmio", |m| m.name())
    }

    fn read(&mut self, offset: u64, size: u8, _t: &DeviceTime) -> Option<u64> {
        if !access_ok(offset, size) {
            return None;
        }
        if size == 8 && offset < reg::CONFIG {
            // Two 4-byte accesses, low first, as QEMU's memory core splits it.
            let lo = u64::from(self.read32(offset));
            let hi = u64::from(self.read32(offset + 4));
            return Some(lo | hi << 32);
        }
        let Some(model) = &self.model else {
            let mask = u64::MAX >> (64 - 8 * u32::from(size));
            return Some(u64::from(self.read32(offset)) & mask);
        };
        if offset >= reg::CONFIG {
            return Some(model.read_config(offset - reg::CONFIG, size));
        }
        // Registers are 32 bits wide; other widths read 0, as on QEMU.
        Some(if size == 4 {
            u64::from(self.read32(offset))
        } else {
            0
        })
    }

    fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        _t: &DeviceTime,
        ram: &mut Ram,
    ) -> Option<()> {
        if !access_ok(offset, size) {
            return None;
        }
        if offset >= reg::CONFIG {
            if let Some(m) = &mut self.model {
                m.write_config(offset - reg::CONFIG, size, value);
                if m.notify_on_config_write() && self.regs.status & STATUS_DRIVER_OK != 0 {
                    // QEMU's virtio_notify_config sets both interrupt status bits.
                    self.regs.isr |= INT_VRING | INT_CONFIG;
                    self.regs.config_generation = self.regs.config_generation.wrapping_add(1);
                }
            }
            return Some(());
        }
        if size == 8 {
            // Two 4-byte accesses, low first, as QEMU's memory core splits it.
            self.write32(offset, value as u32, ram);
            self.write32(offset + 4, (value >> 32) as u32, ram);
            return Some(());
        }
        if size == 4 {
            self.write32(offset, value as u32, ram);
        }
        Some(())
    }

    fn reset(&mut self) {
        self.soft_reset();
    }

    fn irq_level(&self, _t: &DeviceTime) -> bool {
        self.regs.isr != 0
    }

    fn next_deadline_ns(&self, _t: &DeviceTime) -> Option<u64> {
        if !self.live() {
            return None;
        }
        self.model.as_ref()?.next_deadline_ns()
    }

    fn wants_service(&self, t: &DeviceTime) -> bool {
        self.regs.notified != 0
            || (self.live()
                && self
                    .model
                    .as_ref()
                    .and_then(|m| m.next_deadline_ns())
                    .is_some_and(|d| d <= t.ns))
    }

    fn service(&mut self, ctx: &mut DeviceCtx) {
        self.serve(ctx);
    }

    fn host_input(&mut self, input: DeviceInput, ctx: &mut DeviceCtx) {
        if self.live() {
            self.with_model(ctx, |m, io| m.host_input(input, io));
        }
    }

    fn fdt_node(&self, base: u64, size: u64, irq: Option<u32>) -> Option<FdtNode> {
        Some(FdtNode::mmio("virtio_mmio", "virtio,mmio", base, size, irq))
    }
}

#[cfg(test)]
mod tests;
