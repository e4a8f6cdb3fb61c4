//! Guest-facing logic of the `virt` board's devices, register-compatible with QEMU 7.2.
//!
//! Every device here is a pure, deterministic state machine: no host I/O, threads or clocks. Time is passed
//! in by the machine, input bytes are pushed in and output bytes drained by it, and every state struct
//! derives serde's `Serialize`/`Deserialize` so snapshots can store it.

pub mod clint;
pub mod device;
pub mod layout;
pub mod plic;
pub mod rtc;
pub mod test_finisher;
pub mod uart;
pub mod virtio;

pub use clint::Clint;
pub use device::{Device, DeviceTime, FdtNode, FdtValue, HostIo, Persist, StateError, Validate};
pub use plic::Plic;
pub use rtc::GoldfishRtc;
pub use test_finisher::{FinisherAction, SifiveTest};
pub use uart::Uart16550;
