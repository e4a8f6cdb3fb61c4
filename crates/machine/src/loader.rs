//! Loading images into RAM the way QEMU 7.2's `hw/riscv/boot.c` does: ELF files by the physical
//! addresses of their PT_LOAD segments, anything else as a raw binary at a given address.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{EI_CLASS, ELFCLASS64, ELFMAG, EM_RISCV, ET_DYN, SELFMAG};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};

use crate::error::ImageProblem;

/// One contiguous piece of an image in guest physical memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Physical address of the first byte.
    pub addr: u64,
    /// Bytes to copy (a segment's file part).
    pub data: Vec<u8>,
    /// Bytes the segment occupies (`data` then zeros up to this size).
    pub mem_size: u64,
}

impl Segment {
    /// End address (exclusive).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.mem_size)
    }
}

/// An image ready to be copied into RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its pieces, sorted by address and not overlapping.
    pub segments: Vec<Segment>,
    /// ELF entry point (for a raw image, its load address).
    pub entry: u64,
    /// Whether the file was an ELF.
    pub is_elf: bool,
}

impl Image {
    /// Lowest address the image occupies.
    pub fn low(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.addr)
    }

    /// End (exclusive) of the highest segment.
    pub fn high(&self) -> u64 {
        self.segments.iter().map(Segment::end).max().unwrap_or(0)
    }
}

/// True when `bytes` start with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.len() >= SELFMAG && &bytes[..SELFMAG] == ELFMAG
}

/// Parse a RISC-V 64-bit ELF. `rebase_pie_to`: for a position-independent (ET_DYN) image whose
/// lowest segment lies below that address (Debian's OpenSBI `.elf`, linked at 0), shift every
/// segment and the entry so the image starts there.
pub fn parse_elf(bytes: &[u8], rebase_pie_to: Option<u64>) -> Result<Image, ImageProblem> {
    if !is_elf(bytes) {
        return Err(ImageProblem::NotElf(""));
    }
    if bytes.len() <= EI_CLASS || bytes[EI_CLASS] != ELFCLASS64 {
        return Err(ImageProblem::WrongArch("32-bit ELF".into()));
    }
    let header = goblin::elf::Elf::parse_header(bytes)
        .map_err(|e| ImageProblem::Malformed(e.to_string()))?;
    if header.e_machine != EM_RISCV {
        return Err(ImageProblem::WrongArch(format!(
            "machine {}",
            goblin::elf::header::machine_to_str(header.e_machine)
        )));
    }
    if header
        .endianness()
        .map_err(|e| ImageProblem::Malformed(e.to_string()))?
        != Endian::Little
    {
        return Err(ImageProblem::WrongArch("big-endian".into()));
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phoff = usize::try_from(header.e_phoff)
        .map_err(|_| ImageProblem::Malformed("program header offset out of range".into()))?;
    if phoff > bytes.len() {
        return Err(ImageProblem::Malformed(
            "program headers lie past the end of the file".into(),
        ));
    }
    let phdrs = ProgramHeader::parse(bytes, phoff, header.e_phnum as usize, ctx)
        .map_err(|e| ImageProblem::Malformed(e.to_string()))?;

    let mut segments = Vec::new();
    for ph in phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
    {
        if ph.p_filesz > ph.p_memsz {
            return Err(ImageProblem::Malformed(format!(
                "segment at {:#x} has file size {:#x} above its memory size {:#x}",
                ph.p_paddr, ph.p_filesz, ph.p_memsz
            )));
        }
        let start = usize::try_from(ph.p_offset).ok();
        let end = start
            .zip(usize::try_from(ph.p_filesz).ok())
            .and_then(|(s, n)| s.checked_add(n));
        let data = match (start, end) {
            (Some(s), Some(e)) if e <= bytes.len() => bytes[s..e].to_vec(),
            _ => {
                return Err(ImageProblem::Malformed(format!(
                    "segment at {:#x} extends past the end of the file",
                    ph.p_paddr
                )))
            }
        };
        if ph.p_paddr.checked_add(ph.p_memsz).is_none() {
            return Err(ImageProblem::Malformed(format!(
                "segment at {:#x} wraps around",
                ph.p_paddr
            )));
        }
        segments.push(Segment {
            addr: ph.p_paddr,
            data,
            mem_size: ph.p_memsz,
        });
    }
    if segments.is_empty() {
        return Err(ImageProblem::NoSegments);
    }
    segments.sort_by_key(|s| s.addr);
    for w in segments.windows(2) {
        if w[1].addr < w[0].end() {
            return Err(ImageProblem::OverlappingSegments(w[1].addr));
        }
    }
    let mut entry = header.e_entry;
    if let Some(base) = rebase_pie_to {
        let low = segments[0].addr;
        if header.e_type == ET_DYN && low < base {
            let bias = base - low;
            for s in &mut segments {
                s.addr = s.addr.checked_add(bias).ok_or_else(|| {
                    ImageProblem::Malformed("segment address overflows when relocated".into())
                })?;
            }
            entry = entry.wrapping_add(bias);
        }
    }
    Ok(Image {
        segments,
        entry,
        is_elf: true,
    })
}

/// A raw binary placed at `addr`.
pub fn raw_image(bytes: &[u8], addr: u64) -> Result<Image, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::Empty);
    }
    Ok(Image {
        segments: vec![Segment {
            addr,
            data: bytes.to_vec(),
            mem_size: bytes.len() as u64,
        }],
        entry: addr,
        is_elf: false,
    })
}

/// Check that `image` lies inside RAM `[ram_base, ram_base + ram_size)`.
pub fn check_in_ram(image: &Image, ram_base: u64, ram_size: u64) -> Result<(), ImageProblem> {
    let ram_end = ram_base.saturating_add(ram_size);
    let (low, high) = (image.low(), image.high());
    let span = high - low;
    if span > ram_size {
        return Err(ImageProblem::LargerThanRam {
            needed: span,
            ram: ram_size,
        });
    }
    for s in &image.segments {
        if s.addr < ram_base || s.end() > ram_end {
            return Err(ImageProblem::OutsideRam {
                start: s.addr,
                end: s.end(),
                ram_start: ram_base,
                ram_end,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal RISC-V ELF64 with the given (paddr, data, memsz) PT_LOAD segments.
    pub(crate) fn make_elf(
        e_type: u16,
        machine: u16,
        entry: u64,
        segs: &[(u64, &[u8], u64)],
    ) -> Vec<u8> {
        let phoff = 64u64;
        let mut data_off = phoff + 56 * segs.len() as u64;
        let mut out = Vec::new();
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&e_type.to_le_bytes());
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
        out.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        out.extend_from_slice(&64u16.to_le_bytes()); // shentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // shnum
        out.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
        assert_eq!(out.len(), 64);
        for (paddr, data, memsz) in segs {
            out.extend_from_slice(&PT_LOAD.to_le_bytes());
            out.extend_from_slice(&7u32.to_le_bytes());
            out.extend_from_slice(&data_off.to_le_bytes());
            out.extend_from_slice(&paddr.to_le_bytes()); // vaddr
            out.extend_from_slice(&paddr.to_le_bytes());
            out.extend_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&memsz.to_le_bytes());
            out.extend_from_slice(&8u64.to_le_bytes());
            data_off += data.len() as u64;
        }
        for (_, data, _) in segs {
            out.extend_from_slice(data);
        }
        out
    }

    const ET_EXEC: u16 = 2;

    #[test]
    fn loads_segments_by_physical_address() {
        let elf = make_elf(
            ET_EXEC,
            EM_RISCV,
            0x8000_0000,
            &[(0x8000_1000, b"data", 16), (0x8000_0000, b"code", 4)],
        );
        let img = parse_elf(&elf, None).unwrap();
        assert_eq!(img.entry, 0x8000_0000);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.segments[0].data, b"code");
        assert_eq!(img.segments[1].addr, 0x8000_1000);
        assert_eq!(img.segments[1].mem_size, 16);
        assert_eq!((img.low(), img.high()), (0x8000_0000, 0x8000_1010));
        check_in_ram(&img, 0x8000_0000, 1 << 20).unwrap();
    }

    #[test]
    fn rejects_wrong_files() {
        assert_eq!(
            parse_elf(b"hello world", None),
            Err(ImageProblem::NotElf(""))
        );
        let x86 = make_elf(ET_EXEC, 62, 0, &[(0x8000_0000, b"x", 1)]);
        assert!(
            matches!(parse_elf(&x86, None), Err(ImageProblem::WrongArch(m)) if m.contains("X86_64"))
        );
        let mut elf32 = make_elf(ET_EXEC, EM_RISCV, 0, &[(0x8000_0000, b"x", 1)]);
        elf32[4] = 1;
        assert_eq!(
            parse_elf(&elf32, None),
            Err(ImageProblem::WrongArch("32-bit ELF".into()))
        );
        let overlap = make_elf(
            ET_EXEC,
            EM_RISCV,
            0,
            &[(0x8000_0000, b"abcd", 0x100), (0x8000_0080, b"x", 1)],
        );
        assert_eq!(
            parse_elf(&overlap, None),
            Err(ImageProblem::OverlappingSegments(0x8000_0080))
        );
        let none = make_elf(ET_EXEC, EM_RISCV, 0, &[]);
        assert_eq!(parse_elf(&none, None), Err(ImageProblem::NoSegments));
        let mut truncated = make_elf(ET_EXEC, EM_RISCV, 0, &[(0x8000_0000, b"abcdefgh", 8)]);
        truncated.truncate(truncated.len() - 4);
        assert!(matches!(
            parse_elf(&truncated, None),
            Err(ImageProblem::Malformed(_))
        ));
        assert!(matches!(
            parse_elf(&truncated[..40], None),
            Err(ImageProblem::Malformed(_))
        ));
    }

    #[test]
    fn rebases_position_independent_firmware_linked_at_zero() {
        let pie = make_elf(ET_DYN, EM_RISCV, 0x10, &[(0, b"fw", 2), (0x1000, b"d", 1)]);
        let img = parse_elf(&pie, Some(0x8000_0000)).unwrap();
        assert_eq!(img.segments[0].addr, 0x8000_0000);
        assert_eq!(img.segments[1].addr, 0x8000_1000);
        assert_eq!(img.entry, 0x8000_0010);
        // Not rebased without the request, nor when it already sits in RAM.
        assert_eq!(parse_elf(&pie, None).unwrap().low(), 0);
        let exec = make_elf(ET_EXEC, EM_RISCV, 0, &[(0, b"fw", 2)]);
        assert_eq!(parse_elf(&exec, Some(0x8000_0000)).unwrap().low(), 0);
    }

    #[test]
    fn ram_checks() {
        let big = raw_image(&vec![1u8; 0x3000], 0x8000_0000).unwrap();
        assert_eq!(
            check_in_ram(&big, 0x8000_0000, 0x2000),
            Err(ImageProblem::LargerThanRam {
                needed: 0x3000,
                ram: 0x2000
            })
        );
        let low = raw_image(b"abc", 0x1000).unwrap();
        assert!(matches!(
            check_in_ram(&low, 0x8000_0000, 0x2000),
            Err(ImageProblem::OutsideRam { .. })
        ));
        assert_eq!(raw_image(b"", 0), Err(ImageProblem::Empty));
    }
}
