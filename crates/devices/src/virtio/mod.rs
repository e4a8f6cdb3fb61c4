//! The virtio-mmio transport, modern interface (virtio 1.2 §4.2.2, version 2), at QEMU
//! `virt`'s slots. A slot without a device answers as QEMU's do: magic, version and vendor,
//! device id 0, everything else zero.
//!
//! Guest mistakes (bad queue sizes, rings outside RAM, broken chains) set
//! DEVICE_NEEDS_RESET and raise a configuration interrupt, as the spec asks; the device does
//! nothing more until the driver resets it.

pub mod queue;
pub mod rng;

use rewind_cpu::Ram;
use serde::{Deserialize, Serialize};

use crate::device::{Device, DeviceTime, FdtNode, HostInputs, Validate};
use queue::{Queue, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, QUEUE_SIZE_MAX};

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

/// The device behind a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// virtio-rng: entropy.
    Rng,
}

impl Backend {
    /// QEMU's `-device` name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Backend::Rng => "virtio-rng-device",
        }
    }

    /// The device named `name` (QEMU's `-device` name, or the short `virtio-rng`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "virtio-rng-device" | "virtio-rng" => Some(Backend::Rng),
            _ => None,
        }
    }

    fn device_id(self) -> u32 {
        match self {
            Backend::Rng => rng::DEVICE_ID,
        }
    }

    fn queues(self) -> usize {
        match self {
            Backend::Rng => 1,
        }
    }

    fn features(self) -> u64 {
        match self {
            Backend::Rng => F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX,
        }
    }
}

/// One virtio-mmio transport and its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtioMmio {
    backend: Option<Backend>,
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

impl VirtioMmio {
    /// A slot with no device.
    pub fn empty() -> Self {
        Self::with(None)
    }

    /// A transport holding `backend`, in reset state.
    pub fn new(backend: Backend) -> Self {
        Self::with(Some(backend))
    }

    fn with(backend: Option<Backend>) -> Self {
        VirtioMmio {
            backend,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: [0; 2],
            features: 0,
            queue_sel: 0,
            queues: vec![Queue::default(); backend.map_or(0, Backend::queues)],
            status: 0,
            isr: 0,
            config_generation: 0,
            notified: 0,
        }
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The interrupt status register.
    pub fn interrupt_status(&self) -> u32 {
        self.isr
    }

    fn soft_reset(&mut self) {
        *self = Self::with(self.backend);
    }

    fn needs_reset(&mut self) {
        self.status |= STATUS_NEEDS_RESET;
        self.isr |= INT_CONFIG;
        self.notified = 0;
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read32(&self, offset: u64) -> u32 {
        let Some(backend) = self.backend else {
            return match offset {
                reg::MAGIC => MAGIC,
                reg::VERSION => VERSION,
                reg::VENDOR_ID => VENDOR,
                _ => 0,
            };
        };
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            reg::MAGIC => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => backend.device_id(),
            reg::VENDOR_ID => VENDOR,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => backend.features() as u32,
                1 => (backend.features() >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => q.map_or(0, |_| QUEUE_SIZE_MAX),
            reg::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            reg::INTERRUPT_STATUS => self.isr,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            reg::SHM_LEN_LOW | reg::SHM_LEN_HIGH => u32::MAX,
            _ => 0,
        }
    }

    fn write32(&mut self, offset: u64, value: u32, ram: &Ram) {
        if self.backend.is_none() {
            return;
        }
        let set_low = |a: &mut u64| *a = (*a & !0xffff_ffff) | u64::from(value);
        let set_high = |a: &mut u64| *a = (*a & 0xffff_ffff) | u64::from(value) << 32;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES => {
                if let Some(w) = self
                    .driver_features
                    .get_mut(self.driver_features_sel as usize)
                {
                    *w = value;
                }
            }
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::QUEUE_SEL => self.queue_sel = value,
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
            reg::QUEUE_NOTIFY if (value as usize) < self.queues.len() => {
                self.notified |= 1 << value;
            }
            reg::INTERRUPT_ACK => self.isr &= !value,
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
        let offered = self.backend.map_or(0, Backend::features);
        if value & STATUS_FEATURES_OK != 0 && self.status & STATUS_FEATURES_OK == 0 {
            let wanted =
                u64::from(self.driver_features[1]) << 32 | u64::from(self.driver_features[0]);
            // Features the device did not offer, or a modern transport without VERSION_1:
            // FEATURES_OK does not stick, the driver sees it clear and gives up.
            if wanted & !offered != 0 || wanted & F_VERSION_1 == 0 {
                value &= !STATUS_FEATURES_OK;
            } else {
                self.features = wanted;
            }
        }
        // DEVICE_NEEDS_RESET is the device's to set; only a reset clears it.
        self.status = value | (self.status & STATUS_NEEDS_RESET);
    }

    fn serve(&mut self, ram: &mut Ram, host: &mut dyn HostInputs) {
        let notified = std::mem::take(&mut self.notified);
        let Some(backend) = self.backend else { return };
        if self.status & STATUS_DRIVER_OK == 0 || self.status & STATUS_NEEDS_RESET != 0 {
            return;
        }
        let indirect = self.features & F_INDIRECT_DESC != 0;
        let event_idx = self.features & F_EVENT_IDX != 0;
        for (i, q) in self.queues.iter_mut().enumerate() {
            if notified & (1 << i) == 0 || !q.ready {
                continue;
            }
            let r = match backend {
                Backend::Rng => rng::process(q, ram, host, indirect, event_idx),
            };
            match r {
                Ok(true) => self.isr |= INT_VRING,
                Ok(false) => {}
                Err(_) => {
                    self.needs_reset();
                    return;
                }
            }
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

impl Validate for VirtioMmio {
    const NAME: &'static str = "virtio-mmio";
    fn validate(&self) -> Result<(), String> {
        let want = self.backend.map_or(0, Backend::queues);
        if self.queues.len() != want {
            return Err(format!(
                "{} queues, the device has {want}",
                self.queues.len()
            ));
        }
        if self.notified >> want != 0 {
            return Err(format!("notified queues {:#x}", self.notified));
        }
        Ok(())
    }
}

impl Device for VirtioMmio {
    fn name(&self) -> &'static str {
        match self.backend {
            None => "virtio-mmio",
            Some(Backend::Rng) => "virtio-rng",
        }
    }

    fn read(&mut self, offset: u64, size: u8, _t: &DeviceTime) -> Option<u64> {
        if !access_ok(offset, size) {
            return None;
        }
        if size == 8 {
            // Two 4-byte accesses, low first, as QEMU's memory core splits it.
            let lo = self.read(offset, 4, _t)?;
            let hi = self.read(offset + 4, 4, _t)?;
            return Some(lo | hi << 32);
        }
        if self.backend.is_none() {
            let mask = u64::MAX >> (64 - 8 * u32::from(size));
            return Some(u64::from(self.read32(offset)) & mask);
        }
        if offset >= reg::CONFIG {
            // No device here has configuration space yet.
            return Some(0);
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
        if size == 8 {
            // Two 4-byte accesses, low first, as QEMU's memory core splits it.
            self.write32(offset, value as u32, ram);
            self.write32(offset + 4, (value >> 32) as u32, ram);
            return Some(());
        }
        if size == 4 && offset < reg::CONFIG {
            self.write32(offset, value as u32, ram);
        }
        Some(())
    }

    fn reset(&mut self) {
        self.soft_reset();
    }

    fn irq_level(&self, _t: &DeviceTime) -> bool {
        self.isr != 0
    }

    fn wants_service(&self) -> bool {
        self.notified != 0
    }

    fn service(&mut self, _t: &DeviceTime, ram: &mut Ram, host: &mut dyn HostInputs) {
        self.serve(ram, host);
    }

    fn fdt_node(&self, base: u64, size: u64, irq: Option<u32>) -> Option<FdtNode> {
        Some(FdtNode::mmio("virtio_mmio", "virtio,mmio", base, size, irq))
    }
}

#[cfg(test)]
mod tests;
