//! Guest RAM and the cache of pre-decoded code pages that lives beside it.
//!
//! The decode cache is keyed by physical page and kept here because every write to RAM (CPU
//! store, DMA, loader) must be able to invalidate it: whoever writes RAM goes through [`Ram`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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

/// Guest memory could not be reserved.
#[derive(Debug, thiserror::Error)]
#[error("cannot reserve {bytes} bytes of host address space for guest memory: {source}")]
pub struct RamError {
    /// Bytes asked for (RAM and ROM).
    pub bytes: u64,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

/// Zero-filled anonymous memory that is reserved, not committed (`MAP_NORESERVE`): a page
/// costs host memory only once written, so a large guest RAM the guest barely touches (`-m
/// 64G` on a smaller host) costs little, and asking for it never aborts on the host's
/// overcommit heuristics.
struct Reserved {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (never aliased), like a `Vec<u8>`.
unsafe impl Send for Reserved {}
// SAFETY: shared access only reads, through `&[u8]`.
unsafe impl Sync for Reserved {}

impl Reserved {
    fn new(len: u64) -> Result<Self, RamError> {
        let err = |source| RamError { bytes: len, source };
        let n = usize::try_from(len)
            .map_err(|_| err(std::io::Error::from(std::io::ErrorKind::OutOfMemory)))?;
        if n == 0 {
            return Ok(Reserved {
                ptr: std::ptr::NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                n,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(err(std::io::Error::last_os_error()));
        }
        let ptr = std::ptr::NonNull::new(p.cast::<u8>())
            .ok_or_else(|| err(std::io::Error::from(std::io::ErrorKind::OutOfMemory)))?;
        Ok(Reserved { ptr, len: n })
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
        }
    }
}

impl std::ops::Deref for Reserved {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` bytes mapped readable and writable (zero-filled) for our lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Reserved {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// Guest physical RAM: one contiguous region starting at `base`, plus an optional small
/// read-only, executable ROM elsewhere (the board's mask ROM with the reset vector). The ROM's
/// pages follow RAM's in `data`, so the hart fetches and loads from them through the same fast
/// paths; stores never reach them ([`Ram::offset`] covers RAM only).
pub struct Ram {
    base: u64,
    /// RAM then ROM, reserved lazily (see [`Reserved`]).
    data: Reserved,
    /// Bytes of RAM at the start of `data` (the rest is ROM).
    ram_len: u64,
    /// Physical address of the ROM (meaningful when `rom_len` > 0).
    rom_base: u64,
    /// ROM size in bytes (a whole number of pages; 0 = no ROM).
    rom_len: u64,
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
    /// Per page: written since the RAM last matched the image `clean_since` (1) or not (0).
    page_dirty: Vec<u8>,
    /// Id of the [`RamImage`] that every clean page equals (0: none).
    clean_since: u64,
    /// That image (its pages are shared, so keeping it costs one pointer per page): a restore
    /// skips clean pages whose content it shares with the image restored.
    clean_image: Option<RamImage>,
    /// While the JIT self-check runs a region: every byte stores overwrite, with its old value
    /// (RAM offset, byte), so the region can be undone and run again by the interpreter.
    journal: Option<Vec<(usize, u8)>>,
}

/// Content of one page in a [`RamImage`], shared between images while it is unchanged.
pub type PageData = Arc<[u8; PAGE_SIZE as usize]>;

/// Source of [`RamImage`] ids (0 is never used).
static NEXT_IMAGE_ID: AtomicU64 = AtomicU64::new(1);

/// A copy of all of RAM: zero pages are `None`, others shared with earlier images when
/// unchanged (cloning an image is cheap).
#[derive(Clone, PartialEq, Eq)]
pub struct RamImage {
    id: u64,
    base: u64,
    pages: Vec<Option<PageData>>,
}

impl std::fmt::Debug for RamImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamImage")
            .field("base", &format_args!("{:#x}", self.base))
            .field("pages", &self.pages.len())
            .field("nonzero", &self.nonzero_pages())
            .finish()
    }
}

impl RamImage {
    /// An image from its pages (e.g. read from a file); it gets a fresh id.
    pub fn from_pages(base: u64, pages: Vec<Option<PageData>>) -> Self {
        RamImage {
            id: NEXT_IMAGE_ID.fetch_add(1, Ordering::Relaxed),
            base,
            pages,
        }
    }

    /// First physical address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        (self.pages.len() as u64) << PAGE_SHIFT
    }

    /// Every page (`None`: all zeros).
    pub fn pages(&self) -> &[Option<PageData>] {
        &self.pages
    }

    /// Number of pages that are not all zeros.
    pub fn nonzero_pages(&self) -> usize {
        self.pages.iter().filter(|p| p.is_some()).count()
    }

    /// Number of pages whose storage this image shares with `other` (same `Arc`).
    pub fn shared_pages_with(&self, other: &RamImage) -> usize {
        self.pages
            .iter()
            .zip(&other.pages)
            .filter(|(a, b)| matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b)))
            .count()
    }
}

/// A [`RamImage`] whose layout does not fit this RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("RAM image at {image_base:#x} of {image_size} bytes does not fit RAM at {base:#x} of {size} bytes")]
pub struct RamLayoutMismatch {
    /// The image's base.
    pub image_base: u64,
    /// The image's size.
    pub image_size: u64,
    /// RAM's base.
    pub base: u64,
    /// RAM's size.
    pub size: u64,
}

impl std::fmt::Debug for Ram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ram")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &self.ram_len)
            .field(
                "rom",
                &format_args!("{:#x}+{:#x}", self.rom_base, self.rom_len),
            )
            .finish()
    }
}

impl Ram {
    /// Zero-filled RAM of `size` bytes (rounded up to a page) at physical address `base`.
    pub fn new(base: u64, size: u64) -> Self {
        Ram::with_rom(base, size, 0, &[])
    }

    /// [`Ram::new`] plus a read-only, executable ROM holding `rom` (zero-padded to a page) at
    /// physical `rom_base`, which must not overlap RAM. An empty `rom` means no ROM.
    ///
    /// # Panics
    /// If the host cannot even reserve the address space (see [`Ram::try_with_rom`]).
    pub fn with_rom(base: u64, size: u64, rom_base: u64, rom: &[u8]) -> Self {
        Ram::try_with_rom(base, size, rom_base, rom).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Ram::with_rom`], with an error where the host cannot reserve the memory. Memory is
    /// reserved, not committed: host pages are used only as the guest writes them.
    pub fn try_with_rom(base: u64, size: u64, rom_base: u64, rom: &[u8]) -> Result<Self, RamError> {
        let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let rom_len = (rom.len() as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let pages = (size >> PAGE_SHIFT) as usize;
        let all_pages = ((size + rom_len) >> PAGE_SHIFT) as usize;
        let mut data = Reserved::new(size + rom_len)?;
        data[size as usize..size as usize + rom.len()].copy_from_slice(rom);
        let mut code = Vec::with_capacity(all_pages);
        code.resize_with(all_pages, || None);
        Ok(Ram {
            base,
            data,
            ram_len: size,
            rom_base,
            rom_len,
            code,
            code_state: vec![0; all_pages],
            dirty: [None; CODE_WAYS],
            code_gen: 0,
            page_dirty: vec![0; pages],
            clean_since: 0,
            clean_image: None,
            journal: None,
        })
    }

    /// The image that RAM's clean pages equal (the last one saved or restored); it shares
    /// their page data, so a page's reference count includes this one.
    pub fn clean_image(&self) -> Option<&RamImage> {
        self.clean_image.as_ref()
    }

    /// First physical address of RAM.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.ram_len
    }

    /// Offset into RAM of `[paddr, paddr+len)`, if the whole range is inside RAM (writable
    /// memory: never the ROM).
    #[inline(always)]
    pub fn offset(&self, paddr: u64, len: u64) -> Option<usize> {
        let off = paddr.wrapping_sub(self.base);
        if off < self.ram_len && len <= self.ram_len - off {
            Some(off as usize)
        } else {
            None
        }
    }

    /// Offset of `[paddr, paddr+len)` for reading or fetching: inside RAM, or inside the ROM.
    #[inline]
    pub fn offset_readable(&self, paddr: u64, len: u64) -> Option<usize> {
        if let Some(off) = self.offset(paddr, len) {
            return Some(off);
        }
        let roff = paddr.wrapping_sub(self.rom_base);
        if roff < self.rom_len && len <= self.rom_len - roff {
            Some((self.ram_len + roff) as usize)
        } else {
            None
        }
    }

    /// The physical address of a readable offset (see [`Ram::offset_readable`]).
    #[inline]
    pub fn paddr_of(&self, off: usize) -> u64 {
        let off = off as u64;
        if off < self.ram_len {
            self.base.wrapping_add(off)
        } else {
            self.rom_base.wrapping_add(off - self.ram_len)
        }
    }

    /// The whole of RAM, read-only.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[..self.ram_len as usize]
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
        if self.journal.is_some() {
            self.journal_bytes(off, bytes.len());
        }
        self.data[off..off + bytes.len()].copy_from_slice(bytes);
        if !bytes.is_empty() {
            let last = (off + bytes.len() - 1) >> PAGE_SHIFT;
            self.page_dirty[off >> PAGE_SHIFT..=last].fill(1);
        }
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
        if self.journal.is_some() {
            self.journal_bytes(off, size as usize);
        }
        let bytes = value.to_le_bytes();
        self.data[off..off + size as usize].copy_from_slice(&bytes[..size as usize]);
        let page = off >> PAGE_SHIFT;
        let last = (off + size as usize - 1) >> PAGE_SHIFT;
        self.page_dirty[page] = 1;
        self.page_dirty[last] = 1;
        if self.code_state[page] | self.code_state[last] != 0 {
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
        if self.journal.is_some() {
            self.journal_bytes(off, size as usize);
        }
        let bytes = value.to_le_bytes();
        self.data[off..off + size as usize].copy_from_slice(&bytes[..size as usize]);
        self.page_dirty[off >> PAGE_SHIFT] = 1;
        if self.code_state[off >> PAGE_SHIFT] != 0 {
            self.invalidate_code_range(off, size as usize);
            true
        } else {
            false
        }
    }

    /// Host pointers for translated code's inline memory path ([`crate::jit::JitCtx`]): RAM and
    /// ROM data (indexed by RAM offset), the per-page decoded-code state and the per-page
    /// written flags. Stable for the life of `self` (none of them is ever reallocated).
    pub(crate) fn jit_pointers(&mut self) -> (*mut u8, *const u8, *mut u8) {
        (
            self.data.ptr.as_ptr(),
            self.code_state.as_ptr(),
            self.page_dirty.as_mut_ptr(),
        )
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

    /// A copy of all of RAM. Pages unchanged since `prev` was taken (or restored) share its
    /// storage; so do changed pages whose content is equal to `prev`'s. Zero pages are elided.
    pub fn save_image(&mut self, prev: Option<&RamImage>) -> RamImage {
        let n = self.page_dirty.len();
        let prev = prev.filter(|p| p.base == self.base && p.pages.len() == n);
        let clean = prev.filter(|p| p.id == self.clean_since);
        // Never imaged or restored: a page not written since `new` is still all zeros (saves
        // reading all of a large, mostly untouched RAM for a first snapshot).
        let fresh = prev.is_none() && self.clean_since == 0;
        let mut pages = Vec::with_capacity(n);
        for i in 0..n {
            if fresh && self.page_dirty[i] == 0 {
                pages.push(None);
                continue;
            }
            if let Some(p) = clean {
                if self.page_dirty[i] == 0 {
                    pages.push(p.pages[i].clone());
                    continue;
                }
            }
            let d = &self.data[i << PAGE_SHIFT..(i + 1) << PAGE_SHIFT];
            let same_as_prev = prev
                .and_then(|p| p.pages[i].as_ref())
                .filter(|pd| pd[..] == *d);
            pages.push(if let Some(pd) = same_as_prev {
                Some(pd.clone())
            } else if d.iter().all(|&b| b == 0) {
                None
            } else {
                let mut page = [0u8; PAGE_SIZE as usize];
                page.copy_from_slice(d);
                Some(Arc::new(page))
            });
        }
        let image = RamImage::from_pages(self.base, pages);
        self.page_dirty.fill(0);
        self.clean_since = image.id;
        self.clean_image = Some(image.clone());
        image
    }

    /// Make RAM equal to `image`, dropping the decoded code of the pages whose content changes
    /// (the rest keep theirs). Pages untouched since `image` was taken or last restored are not
    /// copied again.
    pub fn restore_image(&mut self, image: &RamImage) -> Result<(), RamLayoutMismatch> {
        if image.base != self.base || image.pages.len() != self.page_dirty.len() {
            return Err(RamLayoutMismatch {
                image_base: image.base,
                image_size: image.size(),
                base: self.base,
                size: self.size(),
            });
        }
        // A clean page already holds the restored content when the image RAM last matched
        // has the same page (the same shared data, or both zero): restoring costs what
        // differs, and untouched zero pages of a large RAM are never written (nor made
        // resident).
        let clean = self
            .clean_image
            .as_ref()
            .filter(|c| c.pages.len() == image.pages.len());
        // Never imaged or restored: a page not written since `new` is still all zeros, so a
        // zero page of the image needs no write (a restore into a fresh machine costs the
        // image's non-zero pages, not all of RAM).
        let fresh = self.clean_since == 0 && self.clean_image.is_none();
        // Pages with decoded code whose content changes.
        let mut stale = Vec::new();
        for (i, page) in image.pages.iter().enumerate() {
            if fresh && self.page_dirty[i] == 0 && page.is_none() {
                continue;
            }
            if self.page_dirty[i] == 0 {
                if let Some(c) = clean {
                    let same = match (&c.pages[i], page) {
                        (None, None) => true,
                        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                        _ => false,
                    };
                    if same {
                        continue;
                    }
                }
            }
            let d = &mut self.data[i << PAGE_SHIFT..(i + 1) << PAGE_SHIFT];
            // Decoded (and translated) code survives a restore that leaves its page as it was:
            // seeks and reverse steps go back mostly to the same code.
            let changed = match page {
                Some(p) => d[..] != p[..],
                None => d.iter().any(|&b| b != 0),
            };
            if !changed {
                continue;
            }
            match page {
                Some(p) => d.copy_from_slice(&p[..]),
                None => d.fill(0),
            }
            if self.code_state[i] != 0 {
                stale.push(i);
            }
        }
        for i in stale {
            self.invalidate_code_range(i << PAGE_SHIFT, PAGE_SIZE as usize);
        }
        self.page_dirty.fill(0);
        self.clean_since = image.id;
        self.clean_image = Some(image.clone());
        Ok(())
    }

    /// Note the old values of `[off, off+len)` in the journal (the JIT self-check is on).
    #[cold]
    #[inline(never)]
    fn journal_bytes(&mut self, off: usize, len: usize) {
        if let Some(j) = self.journal.as_mut() {
            j.extend((off..off + len).map(|o| (o, self.data[o])));
        }
    }

    /// Start noting the old value of every byte written (`Some`), or stop and hand back what
    /// was noted (`None`).
    pub(crate) fn set_journal(&mut self, on: Option<Vec<(usize, u8)>>) -> Option<Vec<(usize, u8)>> {
        std::mem::replace(&mut self.journal, on)
    }

    /// Undo the writes of a journal (newest first); returns each byte written with the value
    /// it held after the writes, first write of an offset first.
    pub(crate) fn undo_journal(&mut self, journal: &[(usize, u8)]) -> Vec<(usize, u8)> {
        let mut after: Vec<(usize, u8)> = journal.iter().map(|&(o, _)| (o, self.data[o])).collect();
        after.sort_by_key(|&(o, _)| o);
        after.dedup_by_key(|e| e.0);
        for &(o, old) in journal.iter().rev() {
            self.data[o] = old;
        }
        after
    }

    /// The byte at RAM offset `off`.
    pub(crate) fn byte_at(&self, off: usize) -> u8 {
        self.data[off]
    }

    /// How many times all decoded code was dropped (`fence.i`); for tests and statistics.
    #[inline]
    pub fn code_generation(&self) -> u64 {
        self.code_gen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x8000_0000;

    #[test]
    fn a_restore_into_fresh_ram_zeroes_written_pages_and_skips_untouched_ones() {
        let mut src = Ram::new(BASE, 8 * PAGE_SIZE);
        src.write(BASE + 2 * PAGE_SIZE, b"two").unwrap();
        let image = src.save_image(None);
        // A fresh RAM that wrote pages 0 and 2 (as a machine loading its images does).
        let mut ram = Ram::new(BASE, 8 * PAGE_SIZE);
        ram.write(BASE + 1, b"boot").unwrap();
        ram.write(BASE + 2 * PAGE_SIZE + 100, b"old").unwrap();
        ram.restore_image(&image).unwrap();
        let mut page = vec![0u8; PAGE_SIZE as usize];
        for i in 0..8u64 {
            ram.read(BASE + i * PAGE_SIZE, &mut page).unwrap();
            let want = image.pages()[i as usize]
                .as_ref()
                .map_or_else(|| vec![0u8; PAGE_SIZE as usize], |p| p.to_vec());
            assert_eq!(page, want, "page {i}");
        }
    }

    #[test]
    fn images_elide_zero_pages_and_share_unchanged_ones() {
        let mut ram = Ram::new(BASE, 16 * PAGE_SIZE);
        ram.write(BASE + 5, b"abc").unwrap();
        ram.write(BASE + 3 * PAGE_SIZE, b"xyz").unwrap();
        let a = ram.save_image(None);
        assert_eq!(a.nonzero_pages(), 2);
        assert_eq!(&a.pages()[0].as_ref().unwrap()[5..8], b"abc");
        // Dirty page 3 (value unchanged in the end), page 7 (new), page 0 (changed).
        let off = ram.offset(BASE + 3 * PAGE_SIZE, 1).unwrap();
        ram.store_at(off, 1, u64::from(b'q'));
        ram.store_at(off, 1, u64::from(b'x'));
        let off7 = ram.offset(BASE + 7 * PAGE_SIZE + 8, 8).unwrap();
        ram.store_at(off7, 8, 0x1122_3344_5566_7788);
        ram.write(BASE + 6, b"Z").unwrap();
        let b = ram.save_image(Some(&a));
        assert_eq!(b.nonzero_pages(), 3);
        // Page 3 was written back to its old bytes: shared by content; page 0 changed.
        assert_eq!(b.shared_pages_with(&a), 1);
        assert!(Arc::ptr_eq(
            a.pages()[3].as_ref().unwrap(),
            b.pages()[3].as_ref().unwrap()
        ));
        // Restoring `a` (full copy) then `b` and `a` again gives their exact bytes.
        for img in [&a, &b, &a, &a] {
            ram.restore_image(img).unwrap();
            for (i, p) in img.pages().iter().enumerate() {
                let d = &ram.as_slice()[i << PAGE_SHIFT..(i + 1) << PAGE_SHIFT];
                match p {
                    Some(p) => assert_eq!(&p[..], d, "page {i}"),
                    None => assert!(d.iter().all(|&x| x == 0), "page {i}"),
                }
            }
            // Writes after a restore are undone by restoring the same image (incremental).
            ram.store_at(off7, 8, u64::MAX);
            ram.restore_image(img).unwrap();
            assert_eq!(
                ram.load_at(off7, 8),
                if img == &a { 0 } else { 0x1122_3344_5566_7788 }
            );
        }
        let mut other = Ram::new(BASE, 8 * PAGE_SIZE);
        assert!(other.restore_image(&a).is_err());
    }
}

#[cfg(test)]
mod reserve_tests {
    use super::*;

    /// Resident set size of this process in bytes (Linux), if known.
    fn rss() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4096)
    }

    #[test]
    fn large_ram_is_reserved_not_committed() {
        let before = rss();
        let size = 64u64 << 30;
        let mut ram = Ram::try_with_rom(0x8000_0000, size, 0x1000, &[0x13, 0, 0, 0])
            .expect("64 GiB of address space");
        assert_eq!(ram.size(), size);
        // The first and last bytes of RAM and the ROM work as usual.
        let last = 0x8000_0000 + size - 8;
        ram.write(last, &0x1122_3344_5566_7788u64.to_le_bytes())
            .unwrap();
        ram.write(0x8000_0000, &[1, 2, 3]).unwrap();
        let mut b = [0u8; 8];
        ram.read(last, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 0x1122_3344_5566_7788);
        let off = ram.offset_readable(0x1000, 4).unwrap();
        assert_eq!(ram.load_at(off, 4), 0x13);
        assert!(ram.offset(0x1000, 4).is_none(), "the ROM is not writable");
        ram.read(0x8000_0000 + size / 2, &mut b).unwrap();
        assert_eq!(b, [0; 8], "untouched RAM reads as zero");
        // Only the per-page bookkeeping is committed (8 bytes a page for the decode cache),
        // not the 64 GiB.
        if let (Some(a), Some(b)) = (before, rss()) {
            assert!(
                b.saturating_sub(a) < 512 << 20,
                "RSS grew by {} MiB",
                (b - a) >> 20
            );
        }
    }

    #[test]
    fn an_impossible_reservation_is_an_error() {
        // More than any 64-bit address space can map.
        let e = Ram::try_with_rom(0, 1 << 62, 0, &[]).expect_err("an error");
        assert!(e.to_string().contains("cannot reserve"), "{e}");
    }
}
