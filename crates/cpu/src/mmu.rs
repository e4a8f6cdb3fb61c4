//! Virtual memory: Sv39/Sv48 translation, TLB, PMP checks, and the load/store/fetch paths the
//! interpreter uses.
//!
//! CONTRACT (privileged-architecture work owns this file; exec.rs uses these names).
//!
//! The TLB is direct-mapped, one set of [`TLB_ENTRIES`] entries per access kind (fetch, load,
//! store) and per translation regime (U, S, S with SUM, M), like QEMU's MMU indexes: privilege
//! changes (traps, xRET, MPRV) and SUM toggles just select another set, nothing is flushed.
//! Only `satp` writes, `sfence.vma`, PMP writes and MXR changes flush. An entry maps a virtual
//! page to the RAM offset of its physical page (or to an MMIO page, flagged in the tag so that
//! the fast path misses). The fast path is one tag compare that also checks alignment, then a
//! RAM access. Page walks follow QEMU 10's `get_physical_address` (Sv39/48/57, Svadu's
//! menvcfg.ADUE, Svpbmt, reserved PTE bits), PMP its `pmp_hart_has_privs`.

use crate::bus::Mmio;
use crate::csr::{
    MENVCFG_ADUE, MENVCFG_PBMTE, MSTATUS_MPRV, MSTATUS_MXR, PMP_R, PMP_W, PMP_X, SATP_MODE_BARE,
    SATP_MODE_SV39, SATP_MODE_SV48, SATP_MODE_SV57, SATP_PPN_MASK,
};
use crate::hart::{Hart, Priv};
use crate::ram::{Ram, PAGE_SIZE};
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

/// Entries per TLB set (direct-mapped on the low virtual page number bits).
pub const TLB_ENTRIES: usize = 256;
/// Number of TLB sets: 3 access kinds x 4 regimes, rounded up to a power of two.
const TLB_SETS: usize = 16;
const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// Tag flag: never matches a (masked) virtual address.
const TAG_INVALID: u64 = 1 << 11;
/// Tag flag: the page is MMIO (`base` is its physical address); the fast path misses on it.
const TAG_MMIO: u64 = 1 << 10;
/// Tag flag: a debugger watchpoint covers part of this RAM page (load and store sets only).
/// The fast paths (the interpreter's and translated code's) miss on it, so every access to
/// the page reaches code that checks the watchpoints, while accesses to other pages stay fast.
pub(crate) const TAG_WATCH: u64 = 1 << 9;
/// The flags a TLB hit ignores (`xlate`): the entry still maps the page.
const TAG_FLAGS: u64 = TAG_MMIO | TAG_WATCH;

/// Translation regime index: U, S, S with SUM, M.
const MODE_U: usize = 0;
const MODE_S: usize = 1;
const MODE_S_SUM: usize = 2;
const MODE_M: usize = 3;

// PTE bits.
const PTE_V: u64 = 1 << 0;
const PTE_R: u64 = 1 << 1;
const PTE_W: u64 = 1 << 2;
const PTE_X: u64 = 1 << 3;
const PTE_U: u64 = 1 << 4;
const PTE_A: u64 = 1 << 6;
const PTE_D: u64 = 1 << 7;
/// PPN field (bits 53:10).
const PTE_PPN_MASK: u64 = ((1 << 44) - 1) << 10;
/// Svpbmt memory type (bits 62:61).
const PTE_PBMT: u64 = 3 << 61;
/// Svnapot (bit 63): reserved, Svnapot is not implemented (nor advertised by QEMU 10's rv64).
const PTE_N: u64 = 1 << 63;
/// Svpbmt (bits 62:61) and Svnapot (bit 63).
const PTE_ATTR: u64 = PTE_PBMT | PTE_N;
/// Bits 60:54: reserved, must be zero.
const PTE_RESERVED: u64 = 0x7f << 54;

/// The PTE checks that do not depend on the access (QEMU 10's order): reserved bits, PBMT
/// without menvcfg.PBMTE, N without Svnapot. On success, the PPN.
#[inline]
fn pte_ppn(pte: u64, pbmte: bool) -> Option<u64> {
    if pte & (PTE_RESERVED | PTE_N) != 0 || (!pbmte && pte & PTE_PBMT != 0) {
        return None;
    }
    Some((pte & PTE_PPN_MASK) >> 10)
}

/// One TLB entry (`repr(C)`: translated code reads `tag` at offset 0 and `base` at 8, see
/// [`crate::jit::JitCtx::tlb_load`]).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct TlbEntry {
    /// Virtual page address, or with `TAG_INVALID` / `TAG_MMIO` / `TAG_WATCH` set.
    tag: u64,
    /// RAM offset of the physical page (or its physical address for MMIO pages).
    base: u64,
}

const INVALID_ENTRY: TlbEntry = TlbEntry {
    tag: TAG_INVALID,
    base: 0,
};

/// Translation cache.
#[derive(Debug, Clone)]
pub struct Tlb {
    sets: Box<[[TlbEntry; TLB_ENTRIES]; TLB_SETS]>,
    /// Bit per set that may hold valid entries, so a flush only clears those.
    used: u16,
    /// Some entry came from a superpage: a single-page flush must flush everything.
    has_superpage: bool,
}

impl Tlb {
    /// An empty TLB.
    pub fn new() -> Self {
        Tlb {
            sets: Box::new([[INVALID_ENTRY; TLB_ENTRIES]; TLB_SETS]),
            used: 0,
            has_superpage: false,
        }
    }

    /// Drop every entry.
    pub fn flush(&mut self) {
        let mut used = self.used;
        while used != 0 {
            let s = used.trailing_zeros() as usize;
            used &= used - 1;
            self.sets[s] = [INVALID_ENTRY; TLB_ENTRIES];
        }
        self.used = 0;
        self.has_superpage = false;
    }

    /// Drop the entries for the page holding `vaddr` (`sfence.vma` with rs1 != x0).
    pub fn flush_page(&mut self, vaddr: u64) {
        if self.has_superpage {
            self.flush();
            return;
        }
        let i = (vaddr >> 12) as usize & (TLB_ENTRIES - 1);
        let page = vaddr & PAGE_MASK;
        for set in self.sets.iter_mut() {
            if set[i].tag & !TAG_FLAGS == page {
                set[i] = INVALID_ENTRY;
            }
        }
    }

    #[inline(always)]
    fn entry(&self, acc: Access, mode: usize, vaddr: u64) -> TlbEntry {
        self.sets[(acc as usize * 4 + mode) & (TLB_SETS - 1)]
            [(vaddr >> 12) as usize & (TLB_ENTRIES - 1)]
    }

    /// The [`TLB_ENTRIES`] entries of the set for `acc` in regime `mode`, for translated code's
    /// inline lookup. The sets live in one box that is never reallocated (flushes overwrite them
    /// in place), so the pointer stays valid as long as the TLB lives.
    pub(crate) fn set_ptr(&self, acc: Access, mode: usize) -> *const TlbEntry {
        self.sets[(acc as usize * 4 + mode) & (TLB_SETS - 1)].as_ptr()
    }

    /// Set `TAG_WATCH` on the valid RAM entries of the load and store sets for which
    /// `watched(virtual page, RAM offset of the physical page)` holds, and clear it on the
    /// others (after the watchpoints changed).
    pub(crate) fn mark_watched(&mut self, mut watched: impl FnMut(u64, u64) -> bool) {
        for acc in [Access::Load, Access::Store] {
            for mode in 0..4 {
                let s = (acc as usize * 4 + mode) & (TLB_SETS - 1);
                if self.used & (1 << s) == 0 {
                    continue;
                }
                for e in self.sets[s].iter_mut() {
                    if e.tag & (TAG_INVALID | TAG_MMIO) != 0 {
                        continue;
                    }
                    let page = e.tag & PAGE_MASK;
                    e.tag = if watched(page, e.base) {
                        page | TAG_WATCH
                    } else {
                        page
                    };
                }
            }
        }
    }

    fn insert(&mut self, acc: Access, mode: usize, vaddr: u64, e: TlbEntry, superpage: bool) {
        let s = (acc as usize * 4 + mode) & (TLB_SETS - 1);
        self.sets[s][(vaddr >> 12) as usize & (TLB_ENTRIES - 1)] = e;
        self.used |= 1 << s;
        self.has_superpage |= superpage;
    }
}

impl Default for Tlb {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a translated address lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// RAM offset.
    Ram(u64),
    /// Physical address of a device register.
    Mmio(u64),
}

impl Target {
    #[inline]
    fn add(self, d: u64) -> Target {
        match self {
            Target::Ram(o) => Target::Ram(o.wrapping_add(d)),
            Target::Mmio(a) => Target::Mmio(a.wrapping_add(d)),
        }
    }
}

#[inline]
fn page_fault(acc: Access, vaddr: u64) -> Exception {
    match acc {
        Access::Fetch => Exception::InstrPageFault(vaddr),
        Access::Load => Exception::LoadPageFault(vaddr),
        Access::Store => Exception::StorePageFault(vaddr),
    }
}

#[inline]
fn access_fault(acc: Access, vaddr: u64) -> Exception {
    match acc {
        Access::Fetch => Exception::InstrAccessFault(vaddr),
        Access::Load => Exception::LoadAccessFault(vaddr),
        Access::Store => Exception::StoreAccessFault(vaddr),
    }
}

#[inline]
fn mode_priv(mode: usize) -> Priv {
    match mode {
        MODE_U => Priv::U,
        MODE_S | MODE_S_SUM => Priv::S,
        _ => Priv::M,
    }
}

impl Hart {
    /// Translation regime of loads and stores: MPRV selects MPP's privilege; SUM matters in S.
    #[inline(always)]
    pub(crate) fn data_mode(&self) -> usize {
        // Indexed by privilege (MPP = 2, storable as in QEMU, acts as U) and SUM.
        const MODES: [u8; 8] = [
            MODE_U as u8,
            MODE_U as u8,
            MODE_S as u8,
            MODE_S_SUM as u8,
            MODE_U as u8,
            MODE_U as u8,
            MODE_M as u8,
            MODE_M as u8,
        ];
        let ms = self.csr.mstatus;
        let p = if ms & MSTATUS_MPRV != 0 {
            (ms >> 11) & 3
        } else {
            self.prv as u64
        };
        MODES[((p << 1) | ((ms >> 18) & 1)) as usize & 7] as usize
    }

    /// Translation regime of instruction fetch (MPRV and SUM do not apply).
    #[inline(always)]
    fn fetch_mode(&self) -> usize {
        match self.prv {
            Priv::U => MODE_U,
            Priv::S => MODE_S,
            Priv::M => MODE_M,
        }
    }

    /// Translate `vaddr` through the TLB, filling it on a miss.
    #[inline]
    fn xlate(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        acc: Access,
        mode: usize,
        size: u64,
    ) -> Result<Target, Exception> {
        let e = self.tlb.entry(acc, mode, vaddr);
        if e.tag & !TAG_FLAGS == vaddr & PAGE_MASK {
            let off = vaddr & !PAGE_MASK;
            return Ok(if e.tag & TAG_MMIO != 0 {
                Target::Mmio(e.base + off)
            } else {
                Target::Ram(e.base + off)
            });
        }
        self.fill(ram, vaddr, acc, mode, size)
    }

    /// TLB miss: walk the page table (unless Bare / M-mode), check PMP, cache the result when
    /// PMP treats the whole page alike.
    #[inline(never)]
    fn fill(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        acc: Access,
        mode: usize,
        size: u64,
    ) -> Result<Target, Exception> {
        let prv = mode_priv(mode);
        let (paddr, superpage) = if prv == Priv::M || self.csr.satp_mode() == SATP_MODE_BARE {
            (vaddr, false)
        } else {
            self.walk(ram, vaddr, acc, prv, mode == MODE_S_SUM)?
        };
        let (perm, psize) = match acc {
            // QEMU checks instruction fetch from the address to the end of the page.
            Access::Fetch => (PMP_X, PAGE_SIZE - (paddr & !PAGE_MASK)),
            Access::Load => (PMP_R, size),
            Access::Store => (PMP_W, size),
        };
        if !self.csr.pmp_allows(paddr, psize, perm, prv == Priv::M) {
            return Err(access_fault(acc, vaddr));
        }
        let ppage = paddr & PAGE_MASK;
        // Fetches and loads also reach the board's ROM; stores only RAM.
        let mapped = if acc == Access::Store {
            ram.offset(ppage, PAGE_SIZE)
        } else {
            ram.offset_readable(ppage, PAGE_SIZE)
        };
        let entry = match mapped {
            Some(off) => TlbEntry {
                tag: if acc != Access::Fetch && self.debug.watches_page(vaddr & PAGE_MASK, ppage) {
                    (vaddr & PAGE_MASK) | TAG_WATCH
                } else {
                    vaddr & PAGE_MASK
                },
                base: off as u64,
            },
            None if acc == Access::Fetch => return Err(Exception::InstrAccessFault(vaddr)),
            None => TlbEntry {
                tag: (vaddr & PAGE_MASK) | TAG_MMIO,
                base: ppage,
            },
        };
        if self.csr.pmp_page_uniform(ppage) {
            self.tlb.insert(acc, mode, vaddr, entry, superpage);
        }
        let off = vaddr & !PAGE_MASK;
        Ok(if entry.tag & TAG_MMIO != 0 {
            Target::Mmio(ppage + off)
        } else {
            Target::Ram(entry.base + off)
        })
    }

    /// Sv39/Sv48/Sv57 page walk for privilege `prv` (U or S); returns the physical address and
    /// whether the leaf was a superpage. With menvcfg.ADUE (or without Svadu) sets A (and D for
    /// stores) in RAM; with Svadu and ADUE = 0 a clear A (D for a store) is a page fault.
    fn walk(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        acc: Access,
        prv: Priv,
        sum: bool,
    ) -> Result<(u64, bool), Exception> {
        let satp = self.csr.satp;
        let levels: u32 = match satp >> 60 {
            SATP_MODE_SV39 => 3,
            SATP_MODE_SV48 => 4,
            SATP_MODE_SV57 => 5,
            _ => return Err(page_fault(acc, vaddr)),
        };
        let va_bits = 12 + 9 * levels;
        // Bits above the VA width must all equal bit va_bits-1.
        let msbs = (vaddr as i64) >> (va_bits - 1);
        if msbs != 0 && msbs != -1 {
            return Err(page_fault(acc, vaddr));
        }
        let mxr = self.csr.mstatus & MSTATUS_MXR != 0;
        let pbmte = self.csr.menvcfg & MENVCFG_PBMTE != 0;
        let adue = !self.features.svadu || self.csr.menvcfg & MENVCFG_ADUE != 0;
        let mut base = (satp & SATP_PPN_MASK) << 12;
        for i in 0..levels {
            let ptshift = (levels - 1 - i) * 9;
            let idx = (vaddr >> (12 + ptshift)) & 511;
            let pte_addr = base.wrapping_add(idx * 8);
            // Page-table reads are checked by PMP as S-mode loads.
            if !self.csr.pmp_allows(pte_addr, 8, PMP_R, false) {
                return Err(access_fault(acc, vaddr));
            }
            let Some(pte_off) = ram.offset(pte_addr, 8) else {
                return Err(page_fault(acc, vaddr));
            };
            let pte = ram.load_at(pte_off, 8);
            let Some(ppn) = pte_ppn(pte, pbmte) else {
                return Err(page_fault(acc, vaddr));
            };
            if pte & PTE_V == 0 {
                return Err(page_fault(acc, vaddr));
            }
            let rwx = pte & (PTE_R | PTE_W | PTE_X);
            if rwx == 0 {
                // Pointer to the next level.
                if pte & (PTE_D | PTE_A | PTE_U | PTE_ATTR) != 0 {
                    return Err(page_fault(acc, vaddr));
                }
                base = ppn << 12;
                continue;
            }
            // spec departure: PBMT = 3 is reserved (a page fault); QEMU 10 accepts it.
            let ok = rwx != PTE_W
                && rwx != (PTE_W | PTE_X)
                && pte & PTE_PBMT != PTE_PBMT
                && if pte & PTE_U != 0 {
                    prv == Priv::U || (sum && acc != Access::Fetch)
                } else {
                    prv == Priv::S
                }
                && ppn & ((1u64 << ptshift) - 1) == 0
                && match acc {
                    Access::Load => pte & PTE_R != 0 || (mxr && pte & PTE_X != 0),
                    Access::Fetch => pte & PTE_X != 0,
                    Access::Store => pte & PTE_W != 0,
                };
            if !ok {
                return Err(page_fault(acc, vaddr));
            }
            let updated = pte | PTE_A | if acc == Access::Store { PTE_D } else { 0 };
            if updated != pte {
                if !adue {
                    return Err(page_fault(acc, vaddr));
                }
                ram.store_at(pte_off, 8, updated);
            }
            let vpn = vaddr >> 12;
            let pa = ((ppn | (vpn & ((1u64 << ptshift) - 1))) << 12) | (vaddr & !PAGE_MASK);
            return Ok((pa, ptshift != 0));
        }
        Err(page_fault(acc, vaddr))
    }

    /// Translate `vaddr` for an instruction fetch at the current privilege (page-granular);
    /// returns the physical address. Fetch from outside RAM is an access fault.
    #[inline]
    pub fn translate_fetch(&mut self, ram: &mut Ram, vaddr: u64) -> Result<u64, Exception> {
        let mode = self.fetch_mode();
        match self.xlate(ram, vaddr, Access::Fetch, mode, 2)? {
            Target::Ram(off) => Ok(ram.paddr_of(off as usize)),
            Target::Mmio(_) => Err(Exception::InstrAccessFault(vaddr)),
        }
    }

    /// Load `size` bytes (1/2/4/8) at `vaddr`, zero-extended (the caller sign-extends).
    #[inline(always)]
    pub fn load<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
    ) -> Result<u64, Exception> {
        self.load_in(ram, mmio, vaddr, size, self.data_mode())
    }

    /// [`Hart::load`] in translation regime `mode` (from [`Hart::data_mode`], which the
    /// interpreter computes once per run of a page: only instructions that end it change it).
    #[inline(always)]
    pub(crate) fn load_in<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        mode: usize,
    ) -> Result<u64, Exception> {
        self.load_in_w::<M, false>(ram, mmio, vaddr, size, mode)
    }

    /// [`Hart::load_in`]; with `WATCHED` (the caller checked the watchpoints for this access)
    /// the fast path also takes entries flagged `TAG_WATCH`: the flag only sends accesses to
    /// code that checks watchpoints, it says nothing about the page's mapping.
    #[inline(always)]
    pub(crate) fn load_in_w<M: Mmio, const WATCHED: bool>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        mode: usize,
    ) -> Result<u64, Exception> {
        let e = self.tlb.entry(Access::Load, mode, vaddr);
        let tag = if WATCHED { e.tag & !TAG_WATCH } else { e.tag };
        if vaddr & (PAGE_MASK | (size as u64).wrapping_sub(1)) == tag {
            return Ok(ram.load_at((e.base + (vaddr & !PAGE_MASK)) as usize, size));
        }
        self.load_slow(ram, mmio, vaddr, size, mode)
    }

    #[inline(never)]
    fn load_slow<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        mode: usize,
    ) -> Result<u64, Exception> {
        let sz = size as u64;
        let t = self.xlate(ram, vaddr, Access::Load, mode, sz)?;
        let misaligned = vaddr & (sz - 1) != 0;
        let crosses = (vaddr & !PAGE_MASK) + sz > PAGE_SIZE;
        if !crosses {
            match t {
                Target::Ram(off) => return Ok(ram.load_at(off as usize, size)),
                Target::Mmio(pa) if !misaligned => {
                    return mmio
                        .load(ram, pa, size, self.icount)
                        .map_err(|_| Exception::LoadAccessFault(vaddr));
                }
                Target::Mmio(_) => {}
            }
        }
        // Misaligned across a page or on MMIO: like QEMU, load the two aligned words around
        // the data (the second page translated with its own address as the fault address).
        let a1 = vaddr & !(sz - 1);
        let a2 = a1.wrapping_add(sz);
        let lo_t = t.add(a1.wrapping_sub(vaddr));
        let hi_t = if crosses {
            self.xlate(ram, a2, Access::Load, mode, sz)?
        } else {
            t.add(a2.wrapping_sub(vaddr))
        };
        // A fault reports the first byte of the part that faulted: the address itself, or the
        // start of the second page (as QEMU 10).
        let r1 = self.phys_load(ram, mmio, lo_t, size, vaddr)?;
        let r2 = self.phys_load(ram, mmio, hi_t, size, if crosses { a2 } else { vaddr })?;
        let shift = (vaddr - a1) * 8;
        let v = (r1 >> shift) | (r2 << (sz * 8 - shift));
        Ok(if sz == 8 {
            v
        } else {
            v & ((1u64 << (sz * 8)) - 1)
        })
    }

    /// An aligned access to a translated target.
    fn phys_load<M: Mmio>(
        &self,
        ram: &mut Ram,
        mmio: &mut M,
        t: Target,
        size: u8,
        va: u64,
    ) -> Result<u64, Exception> {
        match t {
            Target::Ram(off) => Ok(ram.load_at(off as usize, size)),
            Target::Mmio(pa) => mmio
                .load(ram, pa, size, self.icount)
                .map_err(|_| Exception::LoadAccessFault(va)),
        }
    }

    /// Store the low `size` bytes of `value` at `vaddr`.
    #[inline(always)]
    pub fn store<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        value: u64,
    ) -> Result<StoreOutcome, Exception> {
        self.store_in(ram, mmio, vaddr, size, value, self.data_mode())
    }

    /// [`Hart::store`] in translation regime `mode` (see [`Hart::load_in`]).
    #[inline(always)]
    pub(crate) fn store_in<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        value: u64,
        mode: usize,
    ) -> Result<StoreOutcome, Exception> {
        self.store_in_w::<M, false>(ram, mmio, vaddr, size, value, mode)
    }

    /// [`Hart::store_in`]; `WATCHED` as for [`Hart::load_in_w`].
    #[inline(always)]
    pub(crate) fn store_in_w<M: Mmio, const WATCHED: bool>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        value: u64,
        mode: usize,
    ) -> Result<StoreOutcome, Exception> {
        let e = self.tlb.entry(Access::Store, mode, vaddr);
        let tag = if WATCHED { e.tag & !TAG_WATCH } else { e.tag };
        if vaddr & (PAGE_MASK | (size as u64).wrapping_sub(1)) == tag {
            // The tag check proves the access aligned, hence inside one page.
            let code = ram.store_in_page((e.base + (vaddr & !PAGE_MASK)) as usize, size, value);
            return Ok(if code {
                StoreOutcome::CodeModified
            } else {
                StoreOutcome::Ram
            });
        }
        self.store_slow(ram, mmio, vaddr, size, value, mode)
    }

    #[inline(never)]
    fn store_slow<M: Mmio>(
        &mut self,
        ram: &mut Ram,
        mmio: &mut M,
        vaddr: u64,
        size: u8,
        value: u64,
        mode: usize,
    ) -> Result<StoreOutcome, Exception> {
        let sz = size as u64;
        let t = self.xlate(ram, vaddr, Access::Store, mode, sz)?;
        let misaligned = vaddr & (sz - 1) != 0;
        let page2 = (vaddr & PAGE_MASK).wrapping_add(PAGE_SIZE);
        let crosses = (vaddr & !PAGE_MASK) + sz > PAGE_SIZE;
        if !crosses {
            match t {
                Target::Ram(off) => {
                    let code = ram.store_at(off as usize, size, value);
                    // A page-table A/D update may also have hit decoded code.
                    return Ok(if code || ram.code_dirty() {
                        StoreOutcome::CodeModified
                    } else {
                        StoreOutcome::Ram
                    });
                }
                Target::Mmio(pa) if !misaligned => {
                    mmio.store(ram, pa, size, value, self.icount)
                        .map_err(|_| Exception::StoreAccessFault(vaddr))?;
                    return Ok(StoreOutcome::Mmio);
                }
                Target::Mmio(_) => {}
            }
        }
        // Misaligned across a page or on MMIO: QEMU makes sure the second page is writable,
        // then stores byte by byte.
        let t2 = if crosses {
            self.xlate(
                ram,
                page2,
                Access::Store,
                mode,
                vaddr.wrapping_add(sz).wrapping_sub(page2),
            )?
        } else {
            t
        };
        let (mut any_mmio, mut code) = (false, false);
        for i in 0..sz {
            let va = vaddr.wrapping_add(i);
            let tt = if crosses && va >= page2 {
                t2.add(va - page2)
            } else {
                t.add(i)
            };
            let b = (value >> (8 * i)) & 0xff;
            match tt {
                Target::Ram(off) => code |= ram.store_at(off as usize, 1, b),
                Target::Mmio(pa) => {
                    any_mmio = true;
                    mmio.store(ram, pa, 1, b, self.icount).map_err(|_| {
                        // The first byte of the faulting part (see load_slow).
                        Exception::StoreAccessFault(if va >= page2 && crosses {
                            page2
                        } else {
                            vaddr
                        })
                    })?;
                }
            }
        }
        Ok(if any_mmio {
            StoreOutcome::Mmio
        } else if code || ram.code_dirty() {
            StoreOutcome::CodeModified
        } else {
            StoreOutcome::Ram
        })
    }

    /// Translate an AMO / LR / SC address (naturally aligned `size`, RAM only): the physical
    /// address for a read-modify-write; `lr` = true checks load permission only.
    ///
    /// LR faults are load faults (misaligned 4, access 5, page 13); AMOs and SC raise
    /// store/AMO faults (6, 7, 15), as the spec says and QEMU 10 does. Device registers give
    /// an access fault here (the interpreter uses `translate_atomic_any` and performs the
    /// atomic on the device as QEMU 10 does).
    pub fn translate_atomic(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        size: u8,
        lr: bool,
    ) -> Result<u64, Exception> {
        match self.translate_atomic_any(ram, vaddr, size, lr)? {
            (pa, false) => Ok(pa),
            (_, true) if lr => Err(Exception::LoadAccessFault(vaddr)),
            (_, true) => Err(Exception::StoreAccessFault(vaddr)),
        }
    }

    /// [`Hart::translate_atomic`] for RAM and devices: the physical address and whether it is
    /// a device register (QEMU 10 performs atomics on devices as a load and a store).
    pub(crate) fn translate_atomic_any(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        size: u8,
        lr: bool,
    ) -> Result<(u64, bool), Exception> {
        let sz = size as u64;
        if vaddr & (sz.wrapping_sub(1)) != 0 {
            return Err(if lr {
                Exception::LoadMisaligned(vaddr)
            } else {
                Exception::StoreMisaligned(vaddr)
            });
        }
        let mode = self.data_mode();
        let acc = if lr { Access::Load } else { Access::Store };
        Ok(match self.xlate(ram, vaddr, acc, mode, sz)? {
            Target::Ram(off) => (ram.paddr_of(off as usize), false),
            Target::Mmio(pa) => (pa, true),
        })
    }
}

/// Where a cache block ([`Hart::translate_block`]) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockTarget {
    /// RAM offset.
    Ram(usize),
    /// Physical address of device registers (or of nothing).
    Mmio(u64),
}

impl Hart {
    /// Translate the aligned block of `size` bytes at `vaddr` (inside one page) for a data
    /// access `acc` in regime `mode`, with PMP checked over the whole block (Zicbom/Zicboz).
    pub(crate) fn translate_block(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        size: u64,
        acc: Access,
        mode: usize,
    ) -> Result<BlockTarget, Exception> {
        Ok(match self.xlate(ram, vaddr, acc, mode, size)? {
            Target::Ram(off) => BlockTarget::Ram(off as usize),
            Target::Mmio(pa) => BlockTarget::Mmio(pa),
        })
    }
}

impl Hart {
    /// [`Hart::debug_translate`]: the page walk of a load at the current privilege (MPRV
    /// ignored, user pages readable from S whatever SUM says, MXR as set), reading the page
    /// table without setting accessed/dirty bits and without the TLB, so a debugger looking at
    /// memory cannot change what the guest later does.
    pub(crate) fn peek_translate(&self, ram: &Ram, vaddr: u64) -> Option<u64> {
        let prv = self.prv;
        if prv == Priv::M || self.csr.satp_mode() == SATP_MODE_BARE {
            return Some(vaddr);
        }
        let satp = self.csr.satp;
        let levels: u32 = match satp >> 60 {
            SATP_MODE_SV39 => 3,
            SATP_MODE_SV48 => 4,
            SATP_MODE_SV57 => 5,
            _ => return None,
        };
        let va_bits = 12 + 9 * levels;
        let msbs = (vaddr as i64) >> (va_bits - 1);
        if msbs != 0 && msbs != -1 {
            return None;
        }
        let mxr = self.csr.mstatus & MSTATUS_MXR != 0;
        let pbmte = self.csr.menvcfg & MENVCFG_PBMTE != 0;
        let mut base = (satp & SATP_PPN_MASK) << 12;
        for i in 0..levels {
            let ptshift = (levels - 1 - i) * 9;
            let idx = (vaddr >> (12 + ptshift)) & 511;
            let pte_off = ram.offset(base.wrapping_add(idx * 8), 8)?;
            let pte = ram.load_at(pte_off, 8);
            let ppn = pte_ppn(pte, pbmte)?;
            if pte & PTE_V == 0 {
                return None;
            }
            let rwx = pte & (PTE_R | PTE_W | PTE_X);
            if rwx == 0 {
                if pte & (PTE_D | PTE_A | PTE_U | PTE_ATTR) != 0 {
                    return None;
                }
                base = ppn << 12;
                continue;
            }
            // Supervisor pages are invisible from U; user pages are visible from S (no SUM
            // check: the debugger, not the kernel, is reading).
            let ok = rwx != PTE_W
                && rwx != (PTE_W | PTE_X)
                && (pte & PTE_U != 0 || prv == Priv::S)
                && ppn & ((1u64 << ptshift) - 1) == 0
                && (pte & PTE_R != 0 || (mxr && pte & PTE_X != 0));
            if !ok {
                return None;
            }
            let vpn = vaddr >> 12;
            return Some(((ppn | (vpn & ((1u64 << ptshift) - 1))) << 12) | (vaddr & !PAGE_MASK));
        }
        None
    }
}
