//! Interpreter speed: runs small loop programs from RAM in M-mode (satp = 0, no devices) and
//! prints millions of retired instructions per second.
//!
//! `cargo run --release --example mips -p rewind-cpu [-- INSTRUCTIONS [alu|mem|call+rvc]]`

#[allow(dead_code, clippy::all)]
#[path = "../tests/asm/mod.rs"]
mod asm;

use asm::*;
use rewind_cpu::{ExitReason, Hart, Mmio, MmioFault, Ram};
use std::time::Instant;

const BASE: u64 = 0x8000_0000;

/// No devices at all.
struct NoBus;

impl Mmio for NoBus {
    fn load(&mut self, _: &mut Ram, _: u64, _: u8, _: u64) -> Result<u64, MmioFault> {
        Err(MmioFault)
    }
    fn store(&mut self, _: &mut Ram, _: u64, _: u8, _: u64, _: u64) -> Result<(), MmioFault> {
        Err(MmioFault)
    }
    fn mtime(&self, icount: u64) -> u64 {
        icount
    }
}

/// Integer ALU loop with a taken branch every sixth instruction.
fn alu_loop() -> Prog {
    let mut p = Prog::new();
    p.w(addi(5, 0, 0)).w(lui(6, 0x7000_0000));
    let top = p.here();
    p.w(addi(5, 5, 1))
        .w(xor(7, 7, 5))
        .w(add(28, 28, 7))
        .w(slli(29, 28, 1))
        .w(srli(29, 29, 3));
    let at = p.here();
    p.w(bne(5, 6, top - at)).w(jal(0, 0));
    p
}

/// Loads and stores to RAM in a loop.
fn mem_loop() -> Prog {
    let mut p = Prog::new();
    p.w(auipc(2, 0x10000));
    let top = p.here();
    p.w(ld(5, 2, 0))
        .w(addi(5, 5, 1))
        .w(sd(5, 2, 0))
        .w(ld(6, 2, 8))
        .w(add(6, 6, 5))
        .w(sd(6, 2, 8));
    let at = p.here();
    p.w(jal(0, top - at));
    p
}

/// Compressed code calling a function on another page (a page switch per call and return).
fn call_loop() -> Prog {
    let mut p = Prog::new();
    p.h(c_li(8, 0));
    let top = p.here();
    p.h(c_addi(8, 1));
    let call = p.here();
    p.w(jal(1, 0x2000 - call)).h(c_add(9, 10));
    let at = p.here();
    p.w(jal(0, top - at));
    p.bytes.resize(0x2000, 0);
    // The function: a few compressed ALU ops and a return.
    p.h(c_mv(10, 8))
        .h(c_slli(10, 3))
        .h(c_addi(10, 5))
        .w(jalr(0, 1, 0));
    p
}

fn bench(name: &str, p: &Prog, total: u64) {
    let mut ram = Ram::new(BASE, 16 << 20);
    ram.write(BASE, &p.bytes).expect("program fits in RAM");
    let mut hart = Hart::new(0, BASE, 0);
    let mut bus = NoBus;
    // Warm-up (decode, page faults of the host).
    hart.run(&mut ram, &mut bus, 1_000_000);
    let start_icount = hart.icount;
    let t = Instant::now();
    let chunk = 10_000_000;
    let mut left = total;
    while left > 0 {
        let n = chunk.min(left);
        let r = hart.run(&mut ram, &mut bus, n);
        assert_eq!(
            r,
            ExitReason::Budget,
            "{name}: unexpected exit at pc {:#x}",
            hart.pc
        );
        left -= n;
    }
    let secs = t.elapsed().as_secs_f64();
    let n = hart.icount - start_icount;
    println!(
        "{name:10} {n:>11} instructions in {secs:6.3} s: {:7.1} MIPS",
        n as f64 / secs / 1e6
    );
}

fn main() {
    let total = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000_000u64);
    let only = std::env::args().nth(2);
    for (name, p) in [
        ("alu", alu_loop()),
        ("mem", mem_loop()),
        ("call+rvc", call_loop()),
    ] {
        if only.as_deref().is_none_or(|o| o == name) {
            bench(name, &p, total);
        }
    }
}
