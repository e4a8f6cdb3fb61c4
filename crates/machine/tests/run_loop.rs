//! The execution loop on tiny hand-assembled guests: output, finisher, timer warps, WFI with
//! nothing to wake it, serial input flow control, reset, instruction limits, boot registers.

use std::sync::Arc;

use rewind_machine::{ImageSource, Machine, MachineConfig, MachineError, RunOutcome};
use rewind_replay::{Boundary, HostEvent, OutputSink};

// --- a minimal RV64I encoder -------------------------------------------------------------

const T0: u32 = 5;
const T1: u32 = 6;
const T2: u32 = 7;
const T3: u32 = 28;
const T4: u32 = 29;
const T5: u32 = 30;
const A1: u32 = 11;
const A2: u32 = 12;

fn i_type(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op
}
fn s_type(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5 & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23
}
fn b_type(f3: u32, rs1: u32, rs2: u32, off: i32) -> u32 {
    let o = off as u32;
    ((o >> 12 & 1) << 31)
        | ((o >> 5 & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | ((o >> 1 & 0xf) << 8)
        | ((o >> 11 & 1) << 7)
        | 0x63
}
fn lui(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x37
}
fn auipc(rd: u32, imm20: u32) -> u32 {
    (imm20 << 12) | (rd << 7) | 0x17
}
fn addi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, 0, rd, rs1, imm)
}
fn andi(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x13, 7, rd, rs1, imm)
}
fn slli(rd: u32, rs1: u32, sh: i32) -> u32 {
    i_type(0x13, 1, rd, rs1, sh)
}
fn srli(rd: u32, rs1: u32, sh: i32) -> u32 {
    i_type(0x13, 5, rd, rs1, sh)
}
fn r_type(f3: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x33
}
fn add(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(0, rd, rs1, rs2)
}
fn or(rd: u32, rs1: u32, rs2: u32) -> u32 {
    r_type(6, rd, rs1, rs2)
}
fn lbu(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 4, rd, rs1, imm)
}
fn lw(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 2, rd, rs1, imm)
}
fn lwu(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 6, rd, rs1, imm)
}
fn ld(rd: u32, rs1: u32, imm: i32) -> u32 {
    i_type(0x03, 3, rd, rs1, imm)
}
fn sb(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s_type(0, rs1, rs2, imm)
}
fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s_type(2, rs1, rs2, imm)
}
fn sd(rs2: u32, rs1: u32, imm: i32) -> u32 {
    s_type(3, rs1, rs2, imm)
}
fn beq(rs1: u32, rs2: u32, off: i32) -> u32 {
    b_type(0, rs1, rs2, off)
}
fn bne(rs1: u32, rs2: u32, off: i32) -> u32 {
    b_type(1, rs1, rs2, off)
}
/// `csrrs x0, csr, rs1` (csrs).
fn csrs(csr: u32, rs1: u32) -> u32 {
    i_type(0x73, 2, 0, rs1, csr as i32)
}
const WFI: u32 = 0x1050_0073;
/// `j .`
const SPIN: u32 = 0x0000_006f;
const MIE: u32 = 0x304;

/// Write `value` (a 20-bit-upper + 12-bit-lower constant) to the test finisher.
fn finisher(value: u32) -> Vec<u32> {
    let hi = (value + 0x800) >> 12;
    let lo = (value as i32) - ((hi << 12) as i32);
    vec![
        lui(T3, hi),
        addi(T3, T3, lo),
        lui(T4, 0x100),
        sw(T3, T4, 0),
        SPIN,
    ]
}

fn image(words: &[u32]) -> ImageSource {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    ImageSource::Embedded {
        name: "test.bin".into(),
        bytes: Arc::from(bytes),
    }
}

/// A machine running `words` as raw firmware at 0x80000000, output captured.
fn machine(words: &[u32]) -> Machine {
    machine_with(words, Boundary::detached())
}

fn machine_with(words: &[u32], boundary: Boundary) -> Machine {
    let config = MachineConfig {
        ram_size: 16 << 20,
        bios: Some(image(words)),
        ..MachineConfig::default()
    };
    Machine::with_host(config, boundary, OutputSink::Capture(Vec::new())).unwrap()
}

// --- tests -----------------------------------------------------------------------------------

#[test]
fn uart_output_then_pass() {
    let mut p = vec![
        lui(T0, 0x10000),
        addi(T1, 0, 'h' as i32),
        sb(T1, T0, 0),
        addi(T1, 0, 'i' as i32),
        sb(T1, T0, 0),
    ];
    p.extend(finisher(0x5555));
    let mut m = machine(&p);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    assert_eq!(m.captured_output(), b"hi");
    // QEMU's 6-instruction reset vector in the mask ROM, five instructions, then
    // lui+addi+lui; the finisher store itself retires too.
    assert_eq!(m.icount(), 6 + 9);
}

#[test]
fn fail_code_becomes_exit_status() {
    let mut m = machine(&finisher(0x2a_3333));
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(42));
}

#[test]
fn instruction_limit_is_exact() {
    let mut m = machine(&[SPIN]);
    assert_eq!(m.run(Some(1000)).unwrap(), RunOutcome::InstructionLimit);
    assert_eq!(m.icount(), 1000);
    assert_eq!(m.run(Some(5)).unwrap(), RunOutcome::InstructionLimit);
    assert_eq!(m.icount(), 1005);
}

#[test]
fn wfi_warps_virtual_time_to_the_timer_deadline() {
    let mut p = vec![
        lui(T1, 0x200c),
        ld(T2, T1, -8), // mtime
        addi(T2, T2, 2000),
        lui(T0, 0x2004),
        sd(T2, T0, 0), // mtimecmp = mtime + 2000 ticks (200 us)
        addi(T3, 0, 0x80),
        csrs(MIE, T3), // MTIE; mstatus.MIE stays 0, so WFI just wakes up
        WFI,
        ld(T5, T1, -8), // mtime after waking
    ];
    p.extend(finisher(0x5555));
    let mut m = machine(&p);
    assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
    // 200 us of virtual time passed although only a handful of instructions ran.
    let bias = m.bus().clock.warp_bias_ns();
    assert!(bias > 190_000 && bias <= 200_000, "warp {bias}");
    assert!(m.hart().x[T5 as usize] >= m.hart().x[T2 as usize]);
    assert!(m.icount() < 20);
}

#[test]
fn wfi_with_nothing_to_wake_it_is_an_error() {
    let mut m = machine(&[WFI, SPIN]);
    match m.run(None) {
        Err(MachineError::GuestStuck { pc, .. }) => {
            assert!((0x8000_0000..0x8000_0008).contains(&pc))
        }
        other => panic!("expected GuestStuck, got {other:?}"),
    }
}

#[test]
fn serial_input_is_delivered_as_the_uart_has_room() {
    // Echo 20 bytes polled from the UART (FIFO off: one byte of room at a time), then pass.
    let mut p = vec![
        lui(T0, 0x10000),
        addi(T4, 0, 0),
        addi(T5, 0, 20),
        // loop:
        lbu(T1, T0, 5),
        andi(T1, T1, 1),
        beq(T1, 0, -8),
        lbu(T2, T0, 0),
        sb(T2, T0, 0),
        addi(T4, T4, 1),
        bne(T4, T5, -24),
    ];
    p.extend(finisher(0x5555));
    let boundary = Boundary::detached();
    let input = b"the quick brown fox!".to_vec();
    boundary
        .sender()
        .send(HostEvent::Serial(input.clone()))
        .unwrap();
    let mut m = machine_with(&p, boundary);
    assert_eq!(m.run(Some(100_000_000)).unwrap(), RunOutcome::Exited(0));
    assert_eq!(m.captured_output(), &input[..]);
}

#[test]
fn reset_reloads_images_and_keeps_ram() {
    // A counter 1 MiB into RAM (outside the image) survives resets; reset twice, then exit
    // with the counter as status.
    let mut p = vec![
        auipc(T0, 0x100),
        lw(T1, T0, 0),
        addi(T1, T1, 1),
        sw(T1, T0, 0),
        addi(T2, 0, 3),
        beq(T1, T2, 7 * 4),
    ];
    p.extend(finisher(0x7777)); // 5 words
    p.push(SPIN);
    p.extend(finisher(0x3_3333));
    let mut m = machine(&p);
    assert_eq!(m.run(Some(10_000)).unwrap(), RunOutcome::Exited(3));
}

#[test]
fn boot_registers_point_at_fdt_and_fw_dynamic_info() {
    let mut m = machine(&[ld(T0, A2, 0), lwu(T1, A1, 0), SPIN]);
    // The hart starts at the reset vector in the mask ROM, as QEMU's does.
    assert_eq!(m.hart().pc, 0x1000);
    assert_eq!(m.run(Some(6)).unwrap(), RunOutcome::InstructionLimit);
    assert_eq!(
        m.hart().pc,
        0x8000_0000,
        "the reset vector jumps to the firmware"
    );
    assert_eq!(m.run(Some(2)).unwrap(), RunOutcome::InstructionLimit);
    let x = &m.hart().x;
    assert_eq!(x[10], 0, "a0 = hart id");
    assert_eq!(x[A1 as usize], 0x80e0_0000, "a1 = fdt address for 16 MiB");
    assert_eq!(x[A2 as usize], 0x1028, "a2 = fw_dynamic_info");
    assert_eq!(x[T0 as usize], 0x4942_534f, "fw_dynamic_info magic");
    assert_eq!(
        x[T1 as usize], 0xedfe_0dd0,
        "FDT magic (big-endian d00dfeed)"
    );
}

#[test]
fn host_shutdown_request_stops_the_run() {
    let boundary = Boundary::detached();
    boundary
        .sender()
        .send(HostEvent::Shutdown(rewind_machine::ShutdownCause::Sigterm))
        .unwrap();
    let mut m = machine_with(&[SPIN], boundary);
    assert_eq!(
        m.run(None).unwrap(),
        RunOutcome::HostQuit(rewind_machine::ShutdownCause::Sigterm)
    );
}

#[test]
fn rtc_alarm_wakes_wfi_through_the_plic() {
    let mut p = vec![
        lui(T0, 0x101), // Goldfish RTC
        lwu(T1, T0, 0), // TIME_LOW (latches TIME_HIGH)
        lwu(T2, T0, 4), // TIME_HIGH
        slli(T2, T2, 32),
        or(T1, T1, T2),
        lui(T3, 0xf4),
        addi(T3, T3, 576), // 1_000_000 ns
        add(T1, T1, T3),
        srli(T2, T1, 32),
        sw(T2, T0, 12), // ALARM_HIGH
        sw(T1, T0, 8),  // ALARM_LOW arms the alarm
        addi(T3, 0, 1),
        sw(T3, T0, 16), // IRQ_ENABLED
        lui(T4, 0xc000),
        sw(T3, T4, 44), // PLIC priority[11] = 1
        slli(T3, T3, 11),
        lui(T5, 0xc002),
        sw(T3, T5, 0), // enable source 11 for context 0 (M)
        csrs(MIE, T3), // MEIE (bit 11)
        WFI,
    ];
    p.extend(finisher(0x5555));
    let mut m = machine(&p);
    assert_eq!(m.run(Some(1_000)).unwrap(), RunOutcome::Exited(0));
    let bias = m.bus().clock.warp_bias_ns();
    assert!(bias > 990_000 && bias <= 1_000_000, "warp {bias}");
    assert!(m.bus().plic.eip(0), "RTC interrupt pending at the PLIC");
}
