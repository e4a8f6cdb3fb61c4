//! Virtual memory: Sv39/Sv48 translation, TLB, PMP checks, and the load/store/fetch paths the
//! interpreter uses.
//!
//! CONTRACT (privileged-architecture work owns this file; exec.rs uses these names).

use crate::bus::Mmio;
use crate::hart::Hart;
use crate::ram::Ram;
use crate::trap::Exception;

/// Kind of memory access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Instruction fetch.
    Fetch,
    /// Data read.
    Load,
    /// Data write (also AMOs and SC).
    Store,
}

/// What a store touched, so the interpreter knows whether to leave its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Plain RAM.
    Ram,
    /// RAM holding decoded code: the decode cache for that page was dropped.
    CodeModified,
    /// A device register: interrupt lines may have changed, return to the machine loop.
    Mmio,
}

/// Translation cache.
#[derive(Debug, Clone)]
pub struct Tlb {}

impl Tlb {
    /// An empty TLB.
    pub fn new() -> Self {
        Tlb {}
    }
    /// Drop every entry.
    pub fn flush(&mut self) {}
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

impl Hart {
    /// Translate `vaddr` for an instruction fetch at the current privilege (page-granular);
    /// returns the physical address. Fetch from outside RAM is an access fault.
    pub fn translate_fetch(&mut self, ram: &mut Ram, vaddr: u64) -> Result<u64, Exception> {
        let _ = (ram, vaddr);
        unimplemented!("mmu")
    }

    /// Load `size` bytes (1/2/4/8) at `vaddr`, zero-extended (the caller sign-extends).
    pub fn load<M: Mmio>(&mut self, ram: &mut Ram, mmio: &mut M, vaddr: u64, size: u8) -> Result<u64, Exception> {
        let _ = (ram, mmio, vaddr, size);
        unimplemented!("mmu")
    }

    /// Store the low `size` bytes of `value` at `vaddr`.
    pub fn store<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        value: u64,
    ) -> Result<StoreOutcome, Exception> {
        let _ = (ram, mmio, vaddr, size, value);
        unimplemented!("mmu")
    }

    /// Translate an AMO / LR / SC address (naturally aligned `size`, RAM only): the physical
    /// address for a read-modify-write. Misaligned gives a store/AMO misaligned (or access) fault
    /// as QEMU does; `lr` = true checks load permission only.
    pub fn translate_atomic(&mut self, ram: &mut Ram, vaddr: u64, size: u8, lr: bool) -> Result<u64, Exception> {
        let _ = (ram, vaddr, size, lr);
        unimplemented!("mmu")
    }
}
