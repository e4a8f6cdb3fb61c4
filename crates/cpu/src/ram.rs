//! Guest RAM and the cache of pre-decoded code pages that lives beside it.
//!
//! The decode cache is keyed by physical page and kept here because every write to RAM (CPU
//! store, DMA, loader) must be able to invalidate it: whoever writes RAM goes through [`Ram`].

use crate::decode::DecodedPage;

/// Bits of the page offset (4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// Size of a page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// An access outside RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("physical range {addr:#x}+{len:#x} is outside RAM")]
pub struct OutOfRam {
    /// First physical address of the access.
    pub addr: u64,
    /// Length of the access in bytes.
    pub len: u64,
}

/// Guest physical RAM: one contiguous region starting at `base`.
pub struct Ram {
    base: u64,
    data: Vec<u8>,
    /// Decoded instructions per 4 KiB page, present once the page has been executed from.
    pub(crate) code: Vec<Option<Box<DecodedPage>>>,
}

impl std::fmt::Debug for Ram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ram").field("base", &format_args!("{:#x}", self.base)).field("size", &self.data.len()).finish()
    }
}

impl Ram {
    /// Zero-filled RAM of `size` bytes (rounded up to a page) at physical address `base`.
    pub fn new(base: u64, size: u64) -> Self {
        let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let pages = (size >> PAGE_SHIFT) as usize;
        let mut code = Vec::with_capacity(pages);
        code.resize_with(pages, || None);
        Ram { base, data: vec![0u8; size as usize], code }
    }

    /// First physical address of RAM.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// Offset into RAM of `[paddr, paddr+len)`, if the whole range is inside RAM.
    #[inline(always)]
    pub fn offset(&self, paddr: u64, len: u64) -> Option<usize> {
        let off = paddr.wrapping_sub(self.base);
        if off < self.data.len() as u64 && len <= self.data.len() as u64 - off {
            Some(off as usize)
        } else {
            None
        }
    }

    /// The whole of RAM, read-only.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Copy bytes out of RAM.
    pub fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), OutOfRam> {
        let off = self.offset(paddr, buf.len() as u64).ok_or(OutOfRam { addr: paddr, len: buf.len() as u64 })?;
        buf.copy_from_slice(&self.data[off..off + buf.len()]);
        Ok(())
    }

    /// Copy bytes into RAM, dropping any decoded code on the pages written.
    pub fn write(&mut self, paddr: u64, bytes: &[u8]) -> Result<(), OutOfRam> {
        let off = self.offset(paddr, bytes.len() as u64).ok_or(OutOfRam { addr: paddr, len: bytes.len() as u64 })?;
        self.data[off..off + bytes.len()].copy_from_slice(bytes);
        self.invalidate_code_range(off, bytes.len());
        Ok(())
    }

    /// Read a little-endian value of `size` bytes at RAM offset `off` (caller checked bounds).
    #[inline(always)]
    pub fn load_at(&self, off: usize, size: u8) -> u64 {
        let d = &self.data[off..off + size as usize];
        match size {
            1 => d[0] as u64,
            2 => u16::from_le_bytes([d[0], d[1]]) as u64,
            4 => u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as u64,
            _ => u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]),
        }
    }

    /// Write a little-endian value of `size` bytes at RAM offset `off` (caller checked bounds).
    /// Returns true when the write hit a page holding decoded code (which is now dropped).
    #[inline(always)]
    pub fn store_at(&mut self, off: usize, size: u8, value: u64) -> bool {
        let bytes = value.to_le_bytes();
        self.data[off..off + size as usize].copy_from_slice(&bytes[..size as usize]);
        let page = off >> PAGE_SHIFT;
        if self.code[page].is_some() || self.code[(off + size as usize - 1) >> PAGE_SHIFT].is_some() {
            self.invalidate_code_range(off, size as usize);
            true
        } else {
            false
        }
    }

    /// Drop decoded code for every page overlapping `[off, off+len)` (RAM offsets).
    pub fn invalidate_code_range(&mut self, off: usize, len: usize) {
        if len == 0 {
            return;
        }
        let first = off >> PAGE_SHIFT;
        let last = (off + len - 1) >> PAGE_SHIFT;
        for p in first..=last.min(self.code.len().saturating_sub(1)) {
            self.code[p] = None;
        }
    }

    /// Drop all decoded code (`fence.i`).
    pub fn invalidate_all_code(&mut self) {
        for p in self.code.iter_mut() {
            *p = None;
        }
    }
}
