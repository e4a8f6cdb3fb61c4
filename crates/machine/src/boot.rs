//! Where each image goes and how the hart starts, following QEMU 10's `virt_machine_done` and
//! `hw/riscv/boot.c`.
//!
//! QEMU's hart starts in its mask ROM at 0x1000, whose reset vector sets `a0` = hart id,
//! `a1` = FDT address, `a2` = address of the `fw_dynamic_info` that follows it in the ROM, and
//! jumps to the start address in `t0`. rewind builds the same ROM and the hart executes it,
//! so the instruction count at the first firmware instruction is QEMU's (6).

use std::path::PathBuf;

use rewind_devices::layout::{VIRT_DRAM, VIRT_MROM};

use crate::error::{ImageProblem, MachineError};
use crate::fdt::{fdt_address, QEMU_FDT_SIZE};
use crate::loader::{check_in_ram, is_elf, parse_elf, raw_image, Image, Segment};
use crate::{ImageSource, MachineConfig};

/// Size of QEMU's reset vector (10 words); `fw_dynamic_info` follows it.
pub const RESET_VEC_SIZE: u64 = 40;
/// `fw_dynamic_info.magic` ("OSBI").
pub const FW_DYNAMIC_INFO_MAGIC: u64 = 0x4942_534f;
/// `fw_dynamic_info.version` written by QEMU 10 (as 7.2).
pub const FW_DYNAMIC_INFO_VERSION: u64 = 2;
/// `fw_dynamic_info.next_mode`: supervisor mode.
pub const FW_DYNAMIC_INFO_NEXT_MODE_S: u64 = 1;

/// One piece of RAM content, written at machine start and again at every reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The image it comes from (for messages).
    pub source: PathBuf,
    /// The bytes and their place.
    pub segment: Segment,
}

/// The result of laying out the images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    /// RAM contents, not overlapping.
    pub blobs: Vec<Blob>,
    /// Where the hart starts (the ROM's jump target).
    pub start_pc: u64,
    /// `fw_dynamic_info.next_addr`: where the firmware should go next (the kernel).
    pub kernel_entry: u64,
    /// Initrd range, if any.
    pub initrd: Option<(u64, u64)>,
    /// Device tree address.
    pub fdt_addr: u64,
}

/// An image's bytes: a regular file no larger than RAM (see [`crate::record::image_bytes`]).
fn read_source(src: &ImageSource, ram_size: u64) -> Result<std::sync::Arc<[u8]>, MachineError> {
    crate::record::image_bytes(src, ram_size)
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a).saturating_mul(a)
}

/// Lay out firmware, kernel and initrd as QEMU 10 does for `config`.
pub fn plan(config: &MachineConfig) -> Result<BootPlan, MachineError> {
    let ram_base = VIRT_DRAM;
    let ram_size = config.ram_size;
    let mut blobs: Vec<Blob> = Vec::new();

    let add = |blobs: &mut Vec<Blob>, src: &ImageSource, img: Image| -> Result<(), MachineError> {
        let path = src.name().to_path_buf();
        check_in_ram(&img, ram_base, ram_size).map_err(|p| MachineError::image(&path, p))?;
        for seg in img.segments {
            if let Some(other) = blobs
                .iter()
                .find(|b| seg.addr < b.segment.end() && b.segment.addr < seg.end())
            {
                return Err(MachineError::image(
                    &path,
                    ImageProblem::Overlaps {
                        start: seg.addr,
                        end: seg.end(),
                        other: other.source.display().to_string(),
                        other_start: other.segment.addr,
                        other_end: other.segment.end(),
                    },
                ));
            }
            blobs.push(Blob {
                source: path.clone(),
                segment: seg,
            });
        }
        Ok(())
    };

    // Firmware at the start of RAM; the ROM jumps there whatever the ELF entry says.
    let mut firmware_end = ram_base;
    let mut start_pc = ram_base;
    if let Some(fw) = &config.bios {
        let bytes = read_source(fw, ram_size)?;
        let img = if is_elf(&bytes) {
            parse_elf(&bytes, Some(ram_base)).map_err(|p| MachineError::image(fw.name(), p))?
        } else {
            raw_image(&bytes, ram_base).map_err(|p| MachineError::image(fw.name(), p))?
        };
        firmware_end = img.high();
        add(&mut blobs, fw, img)?;
    }

    let mut kernel_entry = 0;
    let mut initrd = None;
    match (&config.kernel, &config.bios) {
        (None, None) => {
            return Err(MachineError::Config(
                "nothing to run: give --kernel ELF (bare metal) or --bios FIRMWARE".into(),
            ))
        }
        (None, Some(_)) => {
            if config.initrd.is_some() {
                return Err(MachineError::Config("--initrd needs --kernel".into()));
            }
        }
        (Some(k), bios) => {
            let bytes = read_source(k, ram_size)?;
            let kernel_start = align_up(firmware_end, 2 << 20);
            let img = if bios.is_none() {
                // Bare-metal guest: it must say where it starts.
                parse_elf(&bytes, None).map_err(|p| match p {
                    ImageProblem::NotElf(_) => MachineError::image(
                        k.name(),
                        ImageProblem::NotElf(
                            " (with --bios none the kernel must be an ELF executable)",
                        ),
                    ),
                    p => MachineError::image(k.name(), p),
                })?
            } else if is_elf(&bytes) {
                parse_elf(&bytes, None).map_err(|p| MachineError::image(k.name(), p))?
            } else {
                raw_image(&bytes, kernel_start).map_err(|p| MachineError::image(k.name(), p))?
            };
            // QEMU hands the firmware the ELF's lowest address, not its entry (riscv_load_kernel).
            kernel_entry = img.low();
            if bios.is_none() {
                start_pc = img.entry;
            }
            add(&mut blobs, k, img)?;

            if let Some(rd) = &config.initrd {
                let bytes = read_source(rd, ram_size)?;
                let start = kernel_entry.saturating_add((ram_size / 2).min(512 << 20));
                let img =
                    raw_image(&bytes, start).map_err(|p| MachineError::image(rd.name(), p))?;
                initrd = Some((start, img.high()));
                add(&mut blobs, rd, img)?;
            }
        }
    }

    let fdt_addr = fdt_address(ram_base, ram_size).ok_or_else(|| {
        MachineError::Config(format!(
            "RAM size {ram_size} bytes is too small for the device tree"
        ))
    })?;
    let fdt_end = fdt_addr + QEMU_FDT_SIZE;
    if let Some(b) = blobs
        .iter()
        .find(|b| b.segment.addr < fdt_end && fdt_addr < b.segment.end())
    {
        return Err(MachineError::image(
            &b.source,
            ImageProblem::Overlaps {
                start: b.segment.addr,
                end: b.segment.end(),
                other: "the device tree".into(),
                other_start: fdt_addr,
                other_end: fdt_end,
            },
        ));
    }
    Ok(BootPlan {
        blobs,
        start_pc,
        kernel_entry,
        initrd,
        fdt_addr,
    })
}

/// The first bytes of QEMU 10's mask ROM for RV64 (`riscv_setup_rom_reset_vec` and
/// `riscv_rom_copy_firmware_info`): reset vector, then `fw_dynamic_info`.
pub fn mask_rom(start_addr: u64, fdt_addr: u64, kernel_entry: u64) -> Vec<u8> {
    let reset_vec: [u32; 10] = [
        0x0000_0297, // 1: auipc  t0, %pcrel_hi(fw_dyn)
        0x0282_8613, //    addi   a2, t0, %pcrel_lo(1b)
        0xf140_2573, //    csrr   a0, mhartid
        0x0202_b583, //    ld     a1, 32(t0)
        0x0182_b283, //    ld     t0, 24(t0)
        0x0002_8067, //    jr     t0
        start_addr as u32,
        (start_addr >> 32) as u32,
        fdt_addr as u32,
        (fdt_addr >> 32) as u32,
    ];
    let mut rom: Vec<u8> = reset_vec.iter().flat_map(|w| w.to_le_bytes()).collect();
    for v in [
        FW_DYNAMIC_INFO_MAGIC,
        FW_DYNAMIC_INFO_VERSION,
        kernel_entry,
        FW_DYNAMIC_INFO_NEXT_MODE_S,
        0,
        0,
    ] {
        rom.extend_from_slice(&v.to_le_bytes());
    }
    rom
}

/// Address of `fw_dynamic_info` (the value the reset vector leaves in `a2`).
pub const FW_DYNAMIC_INFO_ADDR: u64 = VIRT_MROM + RESET_VEC_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::tests::make_elf;
    use goblin::elf::header::{EM_RISCV, ET_DYN, ET_EXEC};

    fn cfg() -> MachineConfig {
        MachineConfig {
            ram_size: 128 << 20,
            ..MachineConfig::default()
        }
    }

    fn embedded(name: &str, bytes: Vec<u8>) -> ImageSource {
        ImageSource::Embedded {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    #[test]
    fn bare_metal_elf_starts_at_its_entry() {
        let elf = make_elf(
            ET_EXEC,
            EM_RISCV,
            0x8000_0040,
            &[(0x8000_0000, &[0x13; 0x80], 0x1000)],
        );
        let c = MachineConfig {
            kernel: Some(embedded("k.elf", elf)),
            ..cfg()
        };
        let p = plan(&c).unwrap();
        assert_eq!(p.start_pc, 0x8000_0040);
        assert_eq!(p.kernel_entry, 0x8000_0000);
        assert_eq!(p.fdt_addr, 0x87e0_0000);
        assert_eq!(p.blobs.len(), 1);
    }

    #[test]
    fn firmware_kernel_initrd_placed_like_qemu() {
        let fw = vec![0x13u8; 0x2_3456];
        let kernel = vec![0x6fu8; 0x10_0000];
        let c = MachineConfig {
            bios: Some(embedded("fw.bin", fw)),
            kernel: Some(embedded("Image", kernel)),
            initrd: Some(embedded("initrd", vec![1u8; 0x1000])),
            ..cfg()
        };
        let p = plan(&c).unwrap();
        assert_eq!(p.start_pc, 0x8000_0000);
        // Raw kernel at the next 2 MiB boundary after the firmware.
        assert_eq!(p.kernel_entry, 0x8020_0000);
        // Initrd at kernel + min(ram / 2, 512 MiB) (QEMU 10).
        assert_eq!(p.initrd, Some((0x8420_0000, 0x8420_1000)));
        assert_eq!(
            p.blobs.iter().map(|b| b.segment.addr).collect::<Vec<_>>(),
            vec![0x8000_0000, 0x8020_0000, 0x8420_0000]
        );
    }

    #[test]
    fn pie_firmware_elf_is_rebased_to_ram() {
        let fw = make_elf(ET_DYN, EM_RISCV, 0, &[(0, &[0x13; 0x100], 0x3_0000)]);
        let c = MachineConfig {
            bios: Some(embedded("fw_dynamic.elf", fw)),
            ..cfg()
        };
        let p = plan(&c).unwrap();
        assert_eq!(p.blobs[0].segment.addr, 0x8000_0000);
        assert_eq!(p.start_pc, 0x8000_0000);
        assert_eq!(p.kernel_entry, 0);
    }

    #[test]
    fn errors_name_the_file() {
        let c = MachineConfig {
            kernel: Some(ImageSource::file("/nonexistent/k.elf")),
            ..cfg()
        };
        assert_eq!(
            plan(&c).unwrap_err().to_string(),
            "/nonexistent/k.elf: no such file"
        );
        let c = MachineConfig {
            kernel: Some(embedded("notes.txt", b"hello".to_vec())),
            ..cfg()
        };
        let e = plan(&c).unwrap_err().to_string();
        assert!(e.starts_with("notes.txt: not an ELF file"), "{e}");
        let big = make_elf(
            ET_EXEC,
            EM_RISCV,
            0x8000_0000,
            &[(0x8000_0000, b"x", 256 << 20)],
        );
        let c = MachineConfig {
            kernel: Some(embedded("big.elf", big)),
            ..cfg()
        };
        let e = plan(&c).unwrap_err().to_string();
        assert!(
            e.starts_with("big.elf: image needs 268435456 bytes, larger than RAM"),
            "{e}"
        );
        let c = MachineConfig { ..cfg() };
        assert!(matches!(plan(&c), Err(MachineError::Config(_))));
        // An image running into the device tree.
        let over = make_elf(
            ET_EXEC,
            EM_RISCV,
            0x8000_0000,
            &[(0x8000_0000, b"x", 127 << 20)],
        );
        let c = MachineConfig {
            kernel: Some(embedded("over.elf", over)),
            ..cfg()
        };
        let e = plan(&c).unwrap_err().to_string();
        assert!(e.contains("overlaps the device tree"), "{e}");
    }

    #[test]
    fn rom_matches_qemu_layout() {
        let rom = mask_rom(0x8000_0000, 0x87e0_0000, 0x8020_0000);
        let word = |i: usize| u32::from_le_bytes(rom[i * 4..i * 4 + 4].try_into().unwrap());
        let dword = |off: usize| u64::from_le_bytes(rom[off..off + 8].try_into().unwrap());
        assert_eq!(word(0), 0x0000_0297);
        assert_eq!(dword(24), 0x8000_0000);
        assert_eq!(dword(32), 0x87e0_0000);
        assert_eq!(dword(40), FW_DYNAMIC_INFO_MAGIC);
        assert_eq!(dword(48), 2);
        assert_eq!(dword(56), 0x8020_0000);
        assert_eq!(dword(64), 1);
        assert_eq!(rom.len(), 88);
        assert_eq!(FW_DYNAMIC_INFO_ADDR, 0x1028);
    }
}
