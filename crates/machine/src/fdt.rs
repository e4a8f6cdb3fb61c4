//! The flattened device tree of the `virt` board, matching what QEMU 10 generates for one hart
//! (without the devices rewind does not have: PCI, flash, fw-cfg, PMU). The nodes of the bus's
//! devices come from the devices themselves.

use rewind_cpu::CpuFeatures;
use rewind_devices::device::{FdtNode, FdtValue};
use rewind_devices::layout::*;
use vm_fdt::{Error as FdtError, FdtWriter};

/// Size QEMU 7.2 gives its device tree blob (`FDT_MAX_SIZE`); it places the blob as if it had
/// this size, and so do we, to put it at the same address.
pub const QEMU_FDT_SIZE: u64 = 0x10_0000;

/// Phandles as QEMU 10 hands them out: it creates the cpu nodes from the last hart down, each
/// cpu then its interrupt controller, then the PLIC and the test finisher.
fn phandle_cpu(harts: u32, hart: u32) -> u32 {
    2 * (harts - 1 - hart) + 1
}

fn phandle_intc(harts: u32, hart: u32) -> u32 {
    phandle_cpu(harts, hart) + 1
}

fn phandle_plic(harts: u32) -> u32 {
    2 * harts + 1
}

/// Phandle of the test finisher (the syscon poweroff/reboot nodes point at it).
pub fn phandle_test(harts: u32) -> u32 {
    2 * harts + 2
}

/// The test finisher's phandle with one hart.
pub const PHANDLE_TEST: u32 = 4;

/// Interrupt numbers of the hart's local interrupt controller (`mcause` values).
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;

/// What the device tree describes beyond the fixed board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtParams {
    /// RAM size in bytes (RAM starts at [`VIRT_DRAM`]).
    pub ram_size: u64,
    /// Kernel command line (`/chosen/bootargs`), if any.
    pub bootargs: Option<String>,
    /// Initrd physical range `[start, end)`, if any.
    pub initrd: Option<(u64, u64)>,
    /// `/chosen/rng-seed` (QEMU puts 32 random bytes there).
    pub rng_seed: [u8; 32],
    /// `mmu-type` of the cpu node (e.g. "riscv,sv39").
    pub mmu_type: &'static str,
    /// The CPU's extensions (`riscv,isa*` and the cache-block sizes).
    pub cpu: CpuFeatures,
    /// Number of harts (at least 1).
    pub harts: u32,
}

/// Where QEMU 10 puts the device tree on RV64: the highest 2 MiB boundary that leaves room for
/// the blob below the end of RAM (`riscv_compute_fdt_addr`; QEMU 7.2 also kept it below 3 GiB).
/// QEMU subtracts its packed blob's size (a few KiB); we reserve [`QEMU_FDT_SIZE`], which gives
/// the same address whenever RAM ends on a 1 MiB boundary.
pub fn fdt_address(ram_base: u64, ram_size: u64) -> Option<u64> {
    let ram_end = ram_base.checked_add(ram_size)?;
    let addr = ram_end.checked_sub(QEMU_FDT_SIZE)? & !((2 << 20) - 1);
    (addr >= ram_base).then_some(addr)
}

/// Cache-block size of Zicbom/Zicboz/Zicbop, as QEMU 10 advertises it.
pub const CACHE_BLOCK_SIZE: u32 = 64;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Build the device tree blob of the board with its default devices.
pub fn build_fdt(p: &FdtParams) -> Result<Vec<u8>, FdtError> {
    build_fdt_with(
        p,
        &crate::bus::Bus::new(0, 0).fdt_nodes(phandle_test(p.harts.max(1))),
    )
}

/// One device's node under `/soc`.
fn write_node(f: &mut FdtWriter, node: &FdtNode, plic: u32) -> Result<(), FdtError> {
    let n = f.begin_node(&node.name)?;
    for (name, value) in &node.props {
        match value {
            FdtValue::U32(v) if *name == "phandle" => f.property_phandle(*v)?,
            FdtValue::U32(v) => f.property_u32(name, *v)?,
            FdtValue::U64s(v) => f.property_array_u64(name, v)?,
            FdtValue::Str(v) => f.property_string(name, v)?,
            FdtValue::Strs(v) => f.property_string_list(name, v.clone())?,
            FdtValue::InterruptParent => f.property_u32(name, plic)?,
        }
    }
    f.end_node(n)
}

/// Build the device tree blob; `nodes` are the bus's devices before the PLIC under `/soc`
/// ([`crate::bus::Bus::fdt_nodes`]).
pub fn build_fdt_with(p: &FdtParams, nodes: &[FdtNode]) -> Result<Vec<u8>, FdtError> {
    let harts = p.harts.max(1);
    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_string("compatible", "riscv-virtio")?;
    f.property_string("model", "riscv-virtio,qemu")?;

    for (name, value) in [("poweroff", 0x5555u32), ("reboot", 0x7777)] {
        let n = f.begin_node(name)?;
        f.property_u32("value", value)?;
        f.property_u32("offset", 0)?;
        f.property_u32("regmap", phandle_test(harts))?;
        f.property_string("compatible", &format!("syscon-{name}"))?;
        f.end_node(n)?;
    }

    let mem = f.begin_node(&format!("memory@{VIRT_DRAM:x}"))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u64("reg", &[VIRT_DRAM, p.ram_size])?;
    f.end_node(mem)?;

    let cpus = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    f.property_u32("timebase-frequency", CLINT_TIMEBASE_FREQ as u32)?;
    for hart in 0..harts {
        let cpu = f.begin_node(&format!("cpu@{hart}"))?;
        f.property_phandle(phandle_cpu(harts, hart))?;
        f.property_string("device_type", "cpu")?;
        f.property_u32("reg", hart)?;
        f.property_string("status", "okay")?;
        f.property_string("compatible", "riscv")?;
        // QEMU 10's order of these properties.
        for (name, on) in [
            ("riscv,cbop-block-size", p.cpu.zicbop),
            ("riscv,cboz-block-size", p.cpu.zicboz),
            ("riscv,cbom-block-size", p.cpu.zicbom),
        ] {
            if on {
                f.property_u32(name, CACHE_BLOCK_SIZE)?;
            }
        }
        f.property_string_list("riscv,isa-extensions", strings(&p.cpu.isa_extensions()))?;
        f.property_string("riscv,isa-base", "rv64i")?;
        f.property_string("riscv,isa", &p.cpu.isa_string())?;
        f.property_string("mmu-type", p.mmu_type)?;
        let intc = f.begin_node("interrupt-controller")?;
        f.property_u32("#interrupt-cells", 1)?;
        f.property_null("interrupt-controller")?;
        f.property_string("compatible", "riscv,cpu-intc")?;
        f.property_phandle(phandle_intc(harts, hart))?;
        f.end_node(intc)?;
        f.end_node(cpu)?;
    }
    let map = f.begin_node("cpu-map")?;
    let cluster = f.begin_node("cluster0")?;
    for hart in 0..harts {
        let core = f.begin_node(&format!("core{hart}"))?;
        f.property_u32("cpu", phandle_cpu(harts, hart))?;
        f.end_node(core)?;
    }
    f.end_node(cluster)?;
    f.end_node(map)?;
    f.end_node(cpus)?;

    // OpenSBI's SBI PMU learns from this which counters count which events (QEMU 10's map:
    // cycles and instructions on the fixed counters plus mhpmcounter3..18, three TLB-miss
    // events on the programmable ones only).
    let hpm = if p.cpu.zihpm {
        ((1u32 << rewind_cpu::csr::HPM_COUNTERS) - 1) << 3
    } else {
        0
    };
    let pmu = f.begin_node("pmu")?;
    f.property_array_u32(
        "riscv,event-to-mhpmcounters",
        &[
            0x1,
            0x1,
            hpm | 1,
            0x2,
            0x2,
            hpm | 4,
            0x10019,
            0x10019,
            hpm,
            0x1001b,
            0x1001b,
            hpm,
            0x10021,
            0x10021,
            hpm,
        ],
    )?;
    f.property_string("compatible", "riscv,pmu")?;
    f.end_node(pmu)?;

    let aliases = f.begin_node("aliases")?;
    f.property_string("serial0", &format!("/soc/serial@{VIRT_UART0:x}"))?;
    f.end_node(aliases)?;

    // Property order as QEMU 10 leaves it (bootargs and the initrd are set on the node later
    // than QEMU creates it, and libfdt puts them first).
    let chosen = f.begin_node("chosen")?;
    if let Some(args) = p.bootargs.as_deref().filter(|a| !a.is_empty()) {
        f.property_string("bootargs", args)?;
    }
    if let Some((start, end)) = p.initrd {
        f.property_u64("linux,initrd-end", end)?;
        f.property_u64("linux,initrd-start", start)?;
    }
    f.property_string("stdout-path", &format!("/soc/serial@{VIRT_UART0:x}"))?;
    f.property("rng-seed", &p.rng_seed)?;
    f.end_node(chosen)?;

    let soc = f.begin_node("soc")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_string("compatible", "simple-bus")?;
    f.property_null("ranges")?;

    for node in nodes {
        write_node(&mut f, node, phandle_plic(harts))?;
    }

    let plic = f.begin_node(&format!("plic@{VIRT_PLIC:x}"))?;
    f.property_phandle(phandle_plic(harts))?;
    // QEMU 10 counts the sources without the unused source 0.
    f.property_u32("riscv,ndev", PLIC_NUM_SOURCES - 1)?;
    f.property_array_u64("reg", &[VIRT_PLIC, VIRT_PLIC_SIZE])?;
    let contexts: Vec<u32> = (0..harts)
        .flat_map(|h| {
            let intc = phandle_intc(harts, h);
            [intc, IRQ_M_EXT, intc, IRQ_S_EXT]
        })
        .collect();
    f.property_array_u32("interrupts-extended", &contexts)?;
    f.property_null("interrupt-controller")?;
    f.property_string_list("compatible", strings(&["sifive,plic-1.0.0", "riscv,plic0"]))?;
    f.property_u32("#address-cells", 0)?;
    f.property_u32("#interrupt-cells", 1)?;
    f.end_node(plic)?;

    let clint = f.begin_node(&format!("clint@{VIRT_CLINT:x}"))?;
    let lines: Vec<u32> = (0..harts)
        .flat_map(|h| {
            let intc = phandle_intc(harts, h);
            [intc, IRQ_M_SOFT, intc, IRQ_M_TIMER]
        })
        .collect();
    f.property_array_u32("interrupts-extended", &lines)?;
    f.property_array_u64("reg", &[VIRT_CLINT, VIRT_CLINT_SIZE])?;
    f.property_string_list("compatible", strings(&["sifive,clint0", "riscv,clint0"]))?;
    f.end_node(clint)?;

    f.end_node(soc)?;
    f.end_node(root)?;
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> FdtParams {
        FdtParams {
            ram_size: 256 << 20,
            bootargs: Some("console=ttyS0 earlycon".into()),
            initrd: Some((0x8800_0000, 0x8810_0000)),
            rng_seed: [7; 32],
            mmu_type: "riscv,sv39",
            cpu: CpuFeatures::default(),
            harts: 1,
        }
    }

    fn u32_of(node: &fdt::node::FdtNode, name: &str) -> u32 {
        let v = node.property(name).unwrap().value;
        u32::from_be_bytes([v[0], v[1], v[2], v[3]])
    }

    fn cells(node: &fdt::node::FdtNode, name: &str) -> Vec<u32> {
        node.property(name)
            .unwrap()
            .value
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    #[test]
    fn placement_matches_qemu_7_2() {
        // QEMU 7.2 with -m 128M puts the FDT at 0x87e00000 (seen in `info roms`).
        assert_eq!(fdt_address(VIRT_DRAM, 128 << 20), Some(0x87e0_0000));
        assert_eq!(fdt_address(VIRT_DRAM, 256 << 20), Some(0x8fe0_0000));
        // Above 3 GiB of address space it stays below 3 GiB.
        assert_eq!(fdt_address(VIRT_DRAM, 4 << 30), Some(0x1_7fe0_0000));
        assert_eq!(fdt_address(VIRT_DRAM, 1 << 20), Some(VIRT_DRAM));
        assert_eq!(fdt_address(VIRT_DRAM, 512 << 10), None);
    }

    #[test]
    fn tree_describes_the_board() {
        let blob = build_fdt(&params()).unwrap();
        let t = fdt::Fdt::new(&blob).unwrap();
        assert_eq!(t.root().compatible().first(), "riscv-virtio");
        assert_eq!(t.chosen().bootargs(), Some("console=ttyS0 earlycon"));
        assert_eq!(t.chosen().stdout().unwrap().name, "serial@10000000");
        let chosen = t.find_node("/chosen").unwrap();
        let u64_of = |name: &str| {
            let v = chosen.property(name).unwrap().value;
            u64::from_be_bytes(v.try_into().unwrap())
        };
        // QEMU 10 writes both as 64-bit values.
        assert_eq!(u64_of("linux,initrd-start"), 0x8800_0000);
        assert_eq!(u64_of("linux,initrd-end"), 0x8810_0000);
        assert_eq!(chosen.property("rng-seed").unwrap().value, &[7u8; 32]);

        let mem: Vec<_> = t.memory().regions().collect();
        assert_eq!(mem.len(), 1);
        assert_eq!(mem[0].starting_address as u64, VIRT_DRAM);
        assert_eq!(mem[0].size, Some(256 << 20));

        let cpus: Vec<_> = t.cpus().collect();
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].ids().first(), 0);
        assert_eq!(cpus[0].timebase_frequency(), 10_000_000);
        let cpu = t.find_node("/cpus/cpu@0").unwrap();
        let cf = CpuFeatures::default();
        assert_eq!(
            cpu.property("riscv,isa").unwrap().as_str(),
            Some(cf.isa_string().as_str())
        );
        let exts: Vec<&str> = cpu
            .property("riscv,isa-extensions")
            .unwrap()
            .value
            .split(|&b| b == 0)
            .filter(|x| !x.is_empty())
            .map(|x| std::str::from_utf8(x).unwrap())
            .collect();
        assert_eq!(exts, cf.isa_extensions());
        assert!(exts.contains(&"zbb") && exts.contains(&"sstc"));
        assert_eq!(u32_of(&cpu, "riscv,cbom-block-size"), 64);
        assert_eq!(
            cpu.property("riscv,isa-base").unwrap().as_str(),
            Some("rv64i")
        );
        assert_eq!(
            cpu.property("mmu-type").unwrap().as_str(),
            Some("riscv,sv39")
        );
        let intc = t.find_node("/cpus/cpu@0/interrupt-controller").unwrap();
        assert_eq!(intc.compatible().unwrap().first(), "riscv,cpu-intc");
        assert_eq!(u32_of(&intc, "phandle"), phandle_intc(1, 0));

        let uart = t.find_node("/soc/serial@10000000").unwrap();
        assert_eq!(uart.compatible().unwrap().first(), "ns16550a");
        assert_eq!(uart.interrupts().unwrap().collect::<Vec<_>>(), vec![10]);
        assert_eq!(u32_of(&uart, "clock-frequency"), 3_686_400);
        assert_eq!(uart.interrupt_parent().unwrap().name, "plic@c000000");
        let reg = uart.reg().unwrap().next().unwrap();
        assert_eq!(
            (reg.starting_address as u64, reg.size),
            (0x1000_0000, Some(0x100))
        );

        let rtc = t.find_node("/soc/rtc@101000").unwrap();
        assert_eq!(rtc.compatible().unwrap().first(), "google,goldfish-rtc");
        assert_eq!(rtc.interrupts().unwrap().collect::<Vec<_>>(), vec![11]);

        let plic = t.find_node("/soc/plic@c000000").unwrap();
        assert_eq!(u32_of(&plic, "riscv,ndev"), 95);
        assert_eq!(cells(&plic, "interrupts-extended"), vec![2, 11, 2, 9]);
        assert!(plic.compatible().unwrap().all().any(|c| c == "riscv,plic0"));
        let reg = plic.reg().unwrap().next().unwrap();
        assert_eq!(reg.size, Some(0x60_0000));

        let clint = t.find_node("/soc/clint@2000000").unwrap();
        assert_eq!(cells(&clint, "interrupts-extended"), vec![2, 3, 2, 7]);
        assert_eq!(clint.reg().unwrap().next().unwrap().size, Some(0x1_0000));

        let test = t.find_node("/soc/test@100000").unwrap();
        let compat: Vec<_> = test.compatible().unwrap().all().collect();
        assert_eq!(compat, vec!["sifive,test1", "sifive,test0", "syscon"]);
        let poweroff = t.find_node("/poweroff").unwrap();
        assert_eq!(u32_of(&poweroff, "value"), 0x5555);
        assert_eq!(u32_of(&poweroff, "regmap"), u32_of(&test, "phandle"));
        assert_eq!(u32_of(&t.find_node("/reboot").unwrap(), "value"), 0x7777);
    }

    #[test]
    fn no_bootargs_or_initrd_when_not_given() {
        let mut p = params();
        p.bootargs = None;
        p.initrd = None;
        let blob = build_fdt(&p).unwrap();
        let t = fdt::Fdt::new(&blob).unwrap();
        let chosen = t.find_node("/chosen").unwrap();
        assert!(chosen.property("bootargs").is_none());
        assert!(chosen.property("linux,initrd-start").is_none());
        assert!((blob.len() as u64) < QEMU_FDT_SIZE);
    }
}
