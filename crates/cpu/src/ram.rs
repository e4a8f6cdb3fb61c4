//! Guest RAM and the cache of pre-decoded code pages that lives beside it.
//!
//! The decode cache is keyed by physical page and kept here because every write to RAM (CPU
//! store, DMA, loader) must be able to invalidate it: whoever writes RAM goes through [`Ram`].

use crate::decode::DecodedPage;

/// Bits of the page offset (4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// Size of a page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// How many decoded pages the interpreter may hold checked out at once (its fetch cache).
pub const CODE_WAYS: usize = 4;

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
    /// Decoded instructions per 4 KiB page, present once the page has been executed from
    /// (`None` while the interpreter has the page checked out, see [`Ram::checkout_code`]).
    pub(crate) code: Vec<Option<Box<DecodedPage>>>,
    /// Per page: 0 = no decoded code, 1 = decoded code in `code`, 2 + k = checked out by the
    /// interpreter in fetch way k. Stores test it with one byte load.
    code_state: Vec<u8>,
    /// Per fetch way: inclusive slot range of its checked-out page that writes made stale.
    dirty: [Option<(usize, usize)>; CODE_WAYS],
    /// Bumped by `invalidate_all_code`; pages of an older generation are reset on next use.
    code_gen: u64,
}

impl std::fmt::Debug for Ram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ram")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &self.data.len())
            .finish()
    }
}

impl Ram {
    /// Zero-filled RAM of `size` bytes (rounded up to a page) at physical address `base`.
    pub fn new(base: u64, size: u64) -> Self {
        let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let pages = (size >> PAGE_SHIFT) as usize;
        let mut code = Vec::with_capacity(pages);
        code.resize_with(pages, || None);
        Ram {
            base,
            data: vec![0u8; size as usize],
            code,
            code_state: vec![0; pages],
            dirty: [None; CODE_WAYS],
            code_gen: 0,
        }
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
        let off = self.offset(paddr, buf.len() as u64).ok_or(OutOfRam {
            addr: paddr,
            len: buf.len() as u64,
        })?;
        buf.copy_from_slice(&self.data[off..off + buf.len()]);
        Ok(())
    }

    /// Copy bytes into RAM, dropping any decoded code on the pages written.
    pub fn write(&mut self, paddr: u64, bytes: &[u8]) -> Result<(), OutOfRam> {
        let off = self.offset(paddr, bytes.len() as u64).ok_or(OutOfRam {
            addr: paddr,
            len: bytes.len() as u64,
        })?;
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
        if self.code_state[page] | self.code_state[(off + size as usize - 1) >> PAGE_SHIFT] != 0 {
            self.invalidate_code_range(off, size as usize);
            true
        } else {
            false
        }
    }

    /// [`Ram::store_at`] for an access known not to cross a page boundary (naturally aligned):
    /// one code-page check instead of two.
    #[inline(always)]
    pub(crate) fn store_in_page(&mut self, off: usize, size: u8, value: u64) -> bool {
        let bytes = value.to_le_bytes();
        self.data[off..off + size as usize].copy_from_slice(&bytes[..size as usize]);
        if self.code_state[off >> PAGE_SHIFT] != 0 {
            self.invalidate_code_range(off, size as usize);
            true
        } else {
            false
        }
    }

    /// Drop decoded code for every page overlapping `[off, off+len)` (RAM offsets).
    ///
    /// Only the slots whose instructions can overlap the written bytes are forgotten (including
    /// the parcel before, which may start a 32-bit instruction), so data stores into a page that
    /// also holds code stay cheap.
    pub fn invalidate_code_range(&mut self, off: usize, len: usize) {
        if len == 0 {
            return;
        }
        let end = off + len; // exclusive
        let first = off >> PAGE_SHIFT;
        let last = (end - 1) >> PAGE_SHIFT;
        for p in first..=last.min(self.code.len().saturating_sub(1)) {
            let state = self.code_state[p];
            if state == 0 {
                continue;
            }
            let pstart = p << PAGE_SHIFT;
            let lo = off.max(pstart) - pstart;
            let hi = end.min(pstart + PAGE_SIZE as usize) - pstart; // exclusive, > lo
            let (slo, shi) = (lo.saturating_sub(2) >> 1, (hi - 1) >> 1);
            if let Some(d) = self.dirty.get_mut((state as usize).wrapping_sub(2)) {
                *d = Some(match *d {
                    Some((a, b)) => (a.min(slo), b.max(shi)),
                    None => (slo, shi),
                });
            } else if let Some(page) = self.code[p].as_mut() {
                page.invalidate(slo, shi);
            }
        }
    }

    /// Drop all decoded code (`fence.i`). O(1): pages of the old generation are reset lazily.
    pub fn invalidate_all_code(&mut self) {
        self.code_gen += 1;
        // Checked-out pages are reset by the interpreter before it executes from them again.
    }

    /// Take the decoded page for RAM page `page` (creating or resetting it as needed) into fetch
    /// way `way` (< [`CODE_WAYS`]), so the interpreter can execute from it while still passing
    /// `&mut Ram` around. Writes to the page meanwhile are recorded (see
    /// [`Ram::take_code_dirty`]); give it back with [`Ram::checkin_code`].
    pub(crate) fn checkout_code(&mut self, page: usize, way: usize) -> Box<DecodedPage> {
        let dp = match self.code[page].take() {
            Some(mut dp) => {
                if dp.gen != self.code_gen {
                    dp.reset(self.code_gen);
                }
                dp
            }
            None => DecodedPage::new(self.code_gen),
        };
        self.code_state[page] = 2 + way as u8;
        self.dirty[way % CODE_WAYS] = None;
        dp
    }

    /// Return a page taken with [`Ram::checkout_code`], applying writes recorded meanwhile.
    pub(crate) fn checkin_code(&mut self, page: usize, way: usize, mut dp: Box<DecodedPage>) {
        let dirty = self.dirty[way % CODE_WAYS].take();
        if dp.gen != self.code_gen {
            // A fence.i happened meanwhile: forget everything once, now.
            dp.reset(self.code_gen);
        } else if let Some((lo, hi)) = dirty {
            dp.invalidate(lo, hi);
        }
        self.code_state[page] = 1;
        self.code[page] = Some(dp);
    }

    /// Did a write hit any checked-out page since its last [`Ram::take_code_dirty`]?
    #[inline]
    pub(crate) fn code_dirty(&self) -> bool {
        self.dirty.iter().any(Option::is_some)
    }

    /// Did a write hit the page checked out in `way` since the last [`Ram::take_code_dirty`]?
    #[inline(always)]
    pub(crate) fn way_dirty(&self, way: usize) -> bool {
        self.dirty[way % CODE_WAYS].is_some()
    }

    /// The inclusive slot range of the page checked out in `way` that writes made stale, if any.
    #[inline]
    pub(crate) fn take_code_dirty(&mut self, way: usize) -> Option<(usize, usize)> {
        self.dirty[way % CODE_WAYS].take()
    }

    /// How many times all decoded code was dropped (`fence.i`); for tests and statistics.
    #[inline]
    pub fn code_generation(&self) -> u64 {
        self.code_gen
    }
}
