//! The RV64GC hart of rewind: a pre-decoding interpreter with an exact instruction count.
//!
//! The hart knows nothing about devices or the host: RAM is handed to it as [`Ram`], every other
//! physical address goes through the [`Mmio`] trait that the machine implements. That keeps the
//! CPU a pure function of its state and what the bus answers, which record/replay relies on.

pub mod bus;
pub mod csr;
pub mod debug;
pub mod decode;
pub mod exec;
pub mod fpu;
pub mod hart;
pub mod isa;
pub mod jit;
pub mod jit_check;
pub mod mmu;
pub mod ram;
pub mod stats;
pub mod trap;

pub use bus::{Mmio, MmioFault};
pub use debug::{
    Coverage, CoverageCounts, DebugHit, SyscallEvent, SyscallLog, WatchKind, Watchpoint,
};
pub use hart::{ExitReason, Hart, Priv};
pub use isa::{CpuFeatures, CpuModelError};
pub use ram::Ram;
pub use trap::Exception;
