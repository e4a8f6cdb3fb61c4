//! The CPU's view of everything that is not RAM.

use crate::ram::Ram;

/// An MMIO access no device accepted (unmapped address or unsupported width): the hart raises an
/// access fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioFault;

/// Devices behind physical addresses outside RAM, plus the virtual clock.
///
/// `icount` is the hart's instruction count at the access (the instruction doing the access has
/// not retired yet), so devices that read time see an exact, deterministic value.
/// `ram` is passed so that DMA-capable devices (virtio) can touch guest memory on a doorbell.
pub trait Mmio {
    /// Read `size` (1, 2, 4 or 8) bytes at `paddr`, zero-extended.
    fn load(&mut self, ram: &mut Ram, paddr: u64, size: u8, icount: u64) -> Result<u64, MmioFault>;
    /// Write the low `size` bytes of `value` at `paddr`.
    fn store(
        &mut self,
        ram: &mut Ram,
        paddr: u64,
        size: u8,
        value: u64,
        icount: u64,
    ) -> Result<(), MmioFault>;
    /// The CLINT `mtime` value (10 MHz timebase) at instruction count `icount`; the `time` CSR reads this.
    fn mtime(&self, icount: u64) -> u64;
}
