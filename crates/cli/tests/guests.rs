//! End-to-end tests with rewind's own bare-metal guests (sources in `guests/`).
//!
//! Every guest is built with `guests/build.sh`, run under `rewind run --bios none --kernel X --serial stdio`
//! and its serial output and exit status are compared with the QEMU-generated reference in
//! `guests/expected/X.txt`, and with a live `qemu-system-riscv64` run when QEMU is installed.
//! Without `riscv64-unknown-elf-gcc` the tests skip, unless `REWIND_REQUIRE_GUESTS` is set (CI sets it).

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, expected_output, guests_dir, have_tool, number_after, qemu_cmd,
    qemu_cmd_cpu, rewind_run_cmd, run_ok, run_with_input, Done, Scratch,
};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long one guest may run before the test gives up on it.
const TIMEOUT: Duration = Duration::from_secs(120);

fn run_rewind(elf: &Path, input: &[u8]) -> Done {
    run_with_input(rewind_run_cmd(elf), input, TIMEOUT)
}

fn run_qemu(elf: &Path, input: &[u8]) -> Done {
    run_with_input(qemu_cmd(elf), input, TIMEOUT)
}

/// Runs guest `name` on rewind (and QEMU if installed) and checks everything we know about it.
fn check_guest(name: &str, input: &[u8], exit_code: i32, key_lines: &[&str]) {
    let Some(dir) = guests_dir() else { return };
    let elf = dir.join("build").join(format!("{name}.elf"));
    let expected = expected_output(&dir, name);
    for key in key_lines {
        assert!(
            expected.lines().any(|l| l == *key),
            "reference guests/expected/{name}.txt lacks key line {key:?}"
        );
    }

    let rw = run_rewind(&elf, input);
    assert_eq!(
        rw.code,
        Some(exit_code),
        "rewind exit status for {name}\n{}",
        rw.describe()
    );
    for key in key_lines {
        assert!(
            rw.stdout.lines().any(|l| l == *key),
            "rewind output of {name} lacks {key:?}\n{}",
            rw.describe()
        );
    }
    assert_same_output(
        &format!("{name}: guests/expected/{name}.txt (QEMU reference) vs rewind"),
        &expected,
        &rw.stdout,
    );

    if have_tool("qemu-system-riscv64") {
        let q = run_qemu(&elf, input);
        assert_eq!(
            q.code,
            Some(exit_code),
            "QEMU exit status for {name}: {}",
            q.stderr
        );
        assert_same_output(
            &format!("{name}: live QEMU vs rewind"),
            &q.stdout,
            &rw.stdout,
        );
    } else {
        eprintln!("qemu-system-riscv64 not installed: {name} compared with guests/expected only");
    }
}

#[test]
fn guest_demo() {
    check_guest("demo", b"", 0, &["timer tick 3", "demo finished: pass"]);
}

#[test]
fn guest_rv64i() {
    check_guest(
        "rv64i",
        b"",
        0,
        &[
            "sra 4 a: 0xffffffffffffffff",
            "lui 0x80000: 0xffffffff80000000",
            "rv64i done",
        ],
    );
}

#[test]
fn guest_rv64m() {
    check_guest(
        "rv64m",
        b"",
        0,
        &[
            "div by zero: 0xffffffffffffffff",
            "div overflow: 0x8000000000000000",
            "rv64m done",
        ],
    );
}

#[test]
fn guest_rv64a() {
    check_guest(
        "rv64a",
        b"",
        0,
        &[
            "lr.d/sc.d: loaded 1111 sc=0 mem=2222",
            "second sc.d: sc=1 mem=2222",
            "rv64a done",
        ],
    );
}

#[test]
fn guest_rv64c() {
    check_guest(
        "rv64c",
        b"",
        0,
        &[
            "c.lui -32: 0xfffffffffffe0000",
            "trap mcause=2 mtval=6181",
            "rv64c done",
        ],
    );
}

/// Zba/Zbb/Zbc/Zbs tables, Zicond off, Zfa, Zawrs, the hint extensions and Zicbom/Zicboz
/// (envcfg gating, page and PMP faults, cbo.zero on ROM, unmapped space and code).
#[test]
fn guest_bitmanip() {
    check_guest(
        "bitmanip",
        b"",
        0,
        &[
            "rev8 9: 0xf0debc9a78563412",
            "clmulr 9 b: 0x1c071b0d110a1608",
            "czero.eqz: trap cause=2 tval=ef4d433",
            "fli 12: s=ffffffff3f000000 d=3fe0000000000000",
            "fcvtmod.w.d m1: ffffffff80000000 fl=10",
            "wrs.nto S TW=1: trap cause=2 tval=insn|0",
            "cbo.zero ro: trap cause=f tval=40001040",
            "block 3 cbo.clean: trap cause=7 tval=c0",
            "second call: a0=0 trap cause=2 tval=0",
            "bitmanip done",
        ],
    );
}

/// The same guest on a CPU with Zicond (off by default): rewind `--cpu` against QEMU `-cpu`.
#[test]
fn guest_bitmanip_with_zicond() {
    let Some(dir) = guests_dir() else { return };
    if !have_tool("qemu-system-riscv64") {
        eprintln!("qemu-system-riscv64 not installed: guest_bitmanip_with_zicond skipped");
        return;
    }
    let elf = dir.join("build").join("bitmanip.elf");
    let cpu = "rv64,h=false,zicond=on";
    let mut cmd = rewind_run_cmd(&elf);
    cmd.args(["--cpu", cpu]);
    let rw = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(rw.code, Some(0), "{}", rw.describe());
    for key in [
        "czero.eqz: ok",
        "czero.eqz rd (0x77 if it trapped): 0",
        "czero.nez: ok",
        "bitmanip done",
    ] {
        assert!(
            rw.stdout.lines().any(|l| l == key),
            "rewind --cpu {cpu} lacks {key:?}\n{}",
            rw.describe()
        );
    }
    let q = run_with_input(qemu_cmd_cpu(&elf, cpu), b"", TIMEOUT);
    assert_eq!(q.code, Some(0), "QEMU: {}", q.stderr);
    assert_same_output(
        &format!("bitmanip with -cpu {cpu}: live QEMU vs rewind"),
        &q.stdout,
        &rw.stdout,
    );
}

#[test]
fn guest_fpu() {
    check_guest(
        "fpu",
        b"",
        0,
        &[
            "fadd.s of unboxed: 0xffffffff7fc00000",
            "fdiv.s 0 2 0: ffffffff7f800000 8",
            "fpu done",
        ],
    );
}

#[test]
fn guest_csr() {
    check_guest(
        "csr",
        b"",
        0,
        &[
            "misa (H hidden): 0x800000000014112d",
            "minstret delta over 5 nops: 0x0000000000000006",
            "csr done",
        ],
    );
}

#[test]
fn guest_traps() {
    check_guest(
        "traps",
        b"",
        0,
        &[
            "S: cause=8 epc_ok=1 tval=0 status.PP=0 status.PIE=0",
            "vectors taken: 3 x1, 7 x1",
            "traps done",
        ],
    );
}

/// The privileged architecture of QEMU 10 (`-cpu rv64,h=false`): CSR existence from M/S/U, WARL
/// masks, xtval of every illegal-instruction and breakpoint case, AMO/LR/SC fault causes, Svadu,
/// reserved PTE bits, Sstc (incl. a timer interrupt in S and wfi wake-up), Sdtrig triggers,
/// hpm counters (guests/priv10).
#[test]
fn guest_priv10() {
    check_guest(
        "priv10",
        b"",
        0,
        &[
            "M 7a4: 44",
            "S sfence.vma TVM: cause=2 tval=12b50073 mpp=1 mpie=1",
            "S amoadd invalid: cause=f tval=40003000 mpp=1 mpie=1",
            "S sd A=0 svade: cause=f tval=40001000 mpp=1 mpie=1",
            "S timer irqs 1, late enough 1",
            "exec S mcontext match: cause=3 tval=epc mpp=1 mpie=1",
            "hpm3 event 2 delta 6",
            "priv10 done",
        ],
    );
}

/// priv10 on CPUs with the privileged extensions switched the other way (Sstc, Svadu, Sdtrig,
/// Zihpm, Zicntr off, Svpbmt on; and Sscofpmf on): rewind `--cpu` against QEMU `-cpu` (CSR
/// existence, counter masks, menvcfg.PBMTE at reset, hardware A/D updates without Svadu, PBMT
/// accepted, scountovf, counter overflow raising LCOFI at the exact instruction).
#[test]
fn guest_priv10_other_extensions() {
    let Some(dir) = guests_dir() else { return };
    if !have_tool("qemu-system-riscv64") {
        eprintln!("qemu-system-riscv64 not installed: guest_priv10_other_extensions skipped");
        return;
    }
    let elf = dir.join("build").join("priv10.elf");
    let runs: [(&str, &[&str]); 2] = [
        (
            "rv64,h=false,sstc=off,svadu=off,debug=off,zihpm=off,zicntr=off,svpbmt=on",
            &[
                "M 30a: 4000000000000000",
                "M 7a0: trap c=2 tval=7a002573",
                "S ld pbmt: no trap",
                "S ld A=0 svade: no trap",
                "csr 14d absent: section skipped",
                "priv10 done",
            ],
        ),
        (
            "rv64,h=false,sscofpmf=on",
            &[
                "M da0: 0",
                "scountovf 30",
                "scountovf 10",
                "lcofi after 20 addis, OF 1, mip.LCOFIP 1",
                "priv10 done",
            ],
        ),
    ];
    for (cpu, keys) in runs {
        let mut cmd = rewind_run_cmd(&elf);
        cmd.args(["--cpu", cpu]);
        let rw = run_with_input(cmd, b"", TIMEOUT);
        assert_eq!(rw.code, Some(0), "{}", rw.describe());
        for key in keys {
            assert!(
                rw.stdout.lines().any(|l| l == *key),
                "rewind --cpu {cpu} lacks {key:?}\n{}",
                rw.describe()
            );
        }
        let q = run_with_input(qemu_cmd_cpu(&elf, cpu), b"", TIMEOUT);
        assert_eq!(q.code, Some(0), "QEMU: {}", q.stderr);
        assert_same_output(
            &format!("priv10 with -cpu {cpu}: live QEMU vs rewind"),
            &q.stdout,
            &rw.stdout,
        );
    }
}

#[test]
fn guest_vm() {
    check_guest(
        "vm",
        b"",
        0,
        &[
            "page fault from U: scause=d stval=40002000",
            "after store: A=1 D=1",
            "MPRV load through S translation: 6d656761",
            "vm done",
        ],
    );
}

#[test]
fn guest_pmp() {
    check_guest(
        "pmp",
        b"",
        0,
        &[
            "access fault: mcause=5 page B offset 18 from mode 1",
            "pmp done",
        ],
    );
}

#[test]
fn guest_timer() {
    check_guest(
        "timer",
        b"",
        0,
        &[
            "timer interrupt 5, mtime past deadline: 1",
            "software interrupt 3, msip now 0",
            "timer done",
        ],
    );
}

#[test]
fn guest_uart_irq() {
    check_guest(
        "uart_irq",
        b"hello world\nRewind 123\nabc\nquit\n",
        0,
        &[
            "echo 1: HELLO WORLD",
            "echo 2: REWIND 123",
            "echo 3: ABC",
            "uart_irq done",
        ],
    );
}

#[test]
fn guest_exit_codes() {
    check_guest("exit_0", b"", 0, &["exiting with code 0"]);
    check_guest("exit_1", b"", 1, &["exiting with code 1"]);
    check_guest("exit_42", b"", 42, &["exiting with code 42"]);
    check_guest("exit_uart", b"7", 7, &["exiting with code 7"]);
}

/// The long benchmark guest (~1.6e9 instructions): run with `cargo test -- --ignored`.
/// Its tick count depends on virtual time, which QEMU does not derive exactly from the instruction
/// count, so only the checksum is compared with QEMU; rewind must give identical output twice.
#[test]
#[ignore]
fn guest_bench() {
    let Some(dir) = guests_dir() else { return };
    let elf = dir.join("build/bench.elf");
    let first = run_rewind(&elf, b"");
    assert_eq!(first.code, Some(0), "bench exit status: {}", first.stderr);
    for key in ["bench checksum 0x7581f127de691424", "bench finished: pass"] {
        assert!(
            first.stdout.lines().any(|l| l == key),
            "bench output lacks {key:?}:\n{}",
            first.stdout
        );
    }
    let ticks = number_after(&first.stdout, "bench ticks ").expect("bench prints its tick count");
    // ~1.63e9 instructions at 1 ns each and a 1 ms tick.
    assert!(
        (1500..=1750).contains(&ticks),
        "bench ticks {ticks} out of range"
    );
    let second = run_rewind(&elf, b"");
    assert_same_output("bench: two rewind runs", &first.stdout, &second.stdout);
}

/// `guests/prebuilt/*.elf` (embedded into the binary) must be exactly what the sources build to.
#[test]
fn prebuilt_guests_are_reproducible() {
    let Some(dir) = guests_dir() else { return };
    let scratch = Scratch::new("prebuilt");
    let tmp = scratch.path("elfs");
    let mut build = Command::new("bash");
    build
        .arg(dir.join("build.sh"))
        .arg("--prebuilt-to")
        .arg(&tmp);
    run_ok(&mut build, "guests/build.sh --prebuilt-to");
    for name in ["demo", "bench"] {
        let committed =
            std::fs::read(dir.join("prebuilt").join(format!("{name}.elf"))).expect("prebuilt ELF");
        let rebuilt = std::fs::read(tmp.join(format!("{name}.elf"))).expect("rebuilt ELF");
        assert!(
            committed == rebuilt,
            "guests/prebuilt/{name}.elf differs from a fresh build: run `guests/build.sh --prebuilt`"
        );
    }
}
