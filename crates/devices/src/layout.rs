//! Physical memory map and interrupt numbers of the `virt` board, as QEMU 7.2 lays it out for one socket.
//!
//! The machine's bus and the FDT generator both read these, so the guest-visible layout has one source of truth.

/// SiFive test finisher ("syscon" for poweroff/reboot).
pub const VIRT_TEST: u64 = 0x0010_0000;
/// Size of the SiFive test finisher region.
pub const VIRT_TEST_SIZE: u64 = 0x1000;
/// Boot ROM holding QEMU's reset vector (the hart starts at `VIRT_MROM`) and the FDT pointer stub.
pub const VIRT_MROM: u64 = 0x1000;
/// Size of the boot ROM region.
pub const VIRT_MROM_SIZE: u64 = 0xf000;
/// Goldfish RTC.
pub const VIRT_RTC: u64 = 0x0010_1000;
/// Size of the Goldfish RTC region.
pub const VIRT_RTC_SIZE: u64 = 0x1000;
/// SiFive CLINT (ACLINT MSWI at +0, MTIMER at +0x4000).
pub const VIRT_CLINT: u64 = 0x0200_0000;
/// Size of the CLINT region.
pub const VIRT_CLINT_SIZE: u64 = 0x1_0000;
/// SiFive PLIC.
pub const VIRT_PLIC: u64 = 0x0c00_0000;
/// Size of the PLIC region (QEMU 7.2: `VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2)`, as its FDT says).
pub const VIRT_PLIC_SIZE: u64 = 0x60_0000;
/// NS16550A UART 0 (reg-shift 0, 8 registers, aliased through the region).
pub const VIRT_UART0: u64 = 0x1000_0000;
/// Size of the UART region.
pub const VIRT_UART0_SIZE: u64 = 0x100;
/// First virtio-mmio transport.
pub const VIRT_VIRTIO: u64 = 0x1000_1000;
/// Distance between consecutive virtio-mmio transports (also each one's size).
pub const VIRT_VIRTIO_STRIDE: u64 = 0x1000;
/// Size of one virtio-mmio transport.
pub const VIRT_VIRTIO_SIZE: u64 = 0x1000;
/// Number of virtio-mmio transports.
pub const VIRT_VIRTIO_COUNT: u32 = 8;
/// Start of DRAM.
pub const VIRT_DRAM: u64 = 0x8000_0000;

/// PLIC source of the UART.
pub const UART0_IRQ: u32 = 10;
/// PLIC source of the RTC.
pub const RTC_IRQ: u32 = 11;
/// PLIC source of the first virtio-mmio transport (transport `i` uses `VIRTIO_IRQ + i`).
pub const VIRTIO_IRQ: u32 = 1;

/// CLINT `mtime` frequency (Hz), the FDT's `timebase-frequency`.
pub const CLINT_TIMEBASE_FREQ: u64 = 10_000_000;
/// UART input clock (Hz) QEMU passes to `serial_mm_init` (the FDT's `clock-frequency`).
pub const UART0_CLOCK_FREQ: u32 = 3_686_400;
/// Number of PLIC interrupt sources including the unused source 0 (QEMU 10 writes one less as `riscv,ndev`).
pub const PLIC_NUM_SOURCES: u32 = 96;
/// Number of PLIC priority levels above 0 (priority bits 3).
pub const PLIC_NUM_PRIORITIES: u32 = 7;

/// Base address of virtio-mmio transport `index` (0-based).
pub const fn virtio_base(index: u32) -> u64 {
    VIRT_VIRTIO + VIRT_VIRTIO_STRIDE * index as u64
}

/// PLIC source of virtio-mmio transport `index` (0-based).
pub const fn virtio_irq(index: u32) -> u32 {
    VIRTIO_IRQ + index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_slots_match_qemu_fdt() {
        assert_eq!(virtio_base(0), 0x1000_1000);
        assert_eq!(virtio_base(7), 0x1000_8000);
        assert_eq!(virtio_irq(7), 8);
        // The last transport must not reach QEMU's fw-cfg at 0x1010_0000.
        assert!(virtio_base(VIRT_VIRTIO_COUNT) <= 0x1010_0000);
    }
}
