//! The CPU rewind shows a guest is the one QEMU 10 shows for the same `-cpu` option: the device
//! tree's cpu node (`riscv,isa`, `riscv,isa-extensions`, cache-block sizes, `mmu-type`) is
//! compared with `qemu-system-riscv64 -M virt,dumpdtb=...` for several configurations.

#[allow(dead_code)]
mod common;

use common::{have_tools, repo_root, required, rewind_cmd, skip_because, Proc, Scratch};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A device tree blob as dtc prints it.
fn dts(dtb: &Path) -> String {
    let mut cmd = Command::new("dtc");
    cmd.args(["-I", "dtb", "-O", "dts"]).arg(dtb);
    let out = Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(out.code, Some(0), "dtc failed: {}", out.stderr);
    out.stdout
}

/// The `/pmu` node (OpenSBI's event-to-counter map).
fn pmu_node(dtb: &Path) -> String {
    let text = dts(dtb);
    let start = text
        .find("pmu {")
        .unwrap_or_else(|| panic!("no pmu node in {}", dtb.display()));
    let rest = &text[start..];
    rest[..rest.find("};").unwrap_or(rest.len())].to_string()
}

/// The `/cpus/cpu@0` node of a device tree blob as dtc prints it, without phandles.
fn cpu_node(dtb: &Path) -> String {
    let text = dts(dtb);
    let start = text
        .find("cpu@0 {")
        .unwrap_or_else(|| panic!("no cpu@0 node in {}", dtb.display()));
    let rest = &text[start..];
    let end = rest.find("cpu-map").unwrap_or(rest.len());
    rest[..end]
        .lines()
        .filter(|l| !l.contains("phandle"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn rewind_dtb(cpu: &str, out: &Path) {
    let mut cmd = rewind_cmd();
    cmd.args(["run", "--cpu", cpu, "--dump-dtb"])
        .arg(out)
        .arg("--kernel")
        .arg(repo_root().join("guests/prebuilt/demo.elf"));
    let done = Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(
        done.code,
        Some(0),
        "rewind --cpu {cpu}: {}",
        done.describe()
    );
}

fn qemu_dtb(cpu: &str, out: &Path) {
    let mut cmd = Command::new("qemu-system-riscv64");
    cmd.arg("-M")
        .arg(format!("virt,dumpdtb={}", out.display()))
        .args(["-cpu", cpu, "-display", "none"]);
    let done = Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(done.code, Some(0), "QEMU -cpu {cpu}: {}", done.stderr);
}

#[test]
fn cpu_node_matches_qemu10_for_each_cpu_option() {
    if !have_tools(&["qemu-system-riscv64", "dtc"]) {
        if required() {
            panic!("REWIND_REQUIRE_GUESTS is set but qemu-system-riscv64 or dtc is missing");
        }
        skip_because("qemu-system-riscv64 and dtc");
        return;
    }
    let dir = Scratch::new("isa-dtb");
    // (rewind's --cpu, QEMU's -cpu): the same CPU in both spellings.
    let cases = [
        ("rv64", "rv64,h=false"),
        (
            "rv64,zicond=on,svpbmt=on,sscofpmf=on",
            "rv64,h=false,zicond=on,svpbmt=on,sscofpmf=on",
        ),
        (
            "rv64,svadu=off,zicbom=off,zbb=off,sstc=off",
            "rv64,h=false,svadu=off,zicbom=off,zbb=off,sstc=off",
        ),
        (
            "rv64,zicbom=off,zicboz=off,zicbop=off,zfa=off,zawrs=off",
            "rv64,h=false,zicbom=off,zicboz=off,zicbop=off,zfa=off,zawrs=off",
        ),
        (
            "rv64,zicntr=off,zihpm=off,zihintntl=off,zba=off,zbc=off,zbs=off",
            "rv64,h=false,zicntr=off,zihpm=off,zihintntl=off,zba=off,zbc=off,zbs=off",
        ),
    ];
    for (i, (ours, theirs)) in cases.iter().enumerate() {
        let a = dir.path(&format!("rewind-{i}.dtb"));
        let b = dir.path(&format!("qemu-{i}.dtb"));
        rewind_dtb(ours, &a);
        qemu_dtb(theirs, &b);
        let (na, nb) = (cpu_node(&a), cpu_node(&b));
        assert_eq!(
            na, nb,
            "cpu node differs for rewind --cpu {ours} vs QEMU -cpu {theirs}"
        );
        let (pa, pb) = (pmu_node(&a), pmu_node(&b));
        assert_eq!(
            pa, pb,
            "pmu node differs for rewind --cpu {ours} vs QEMU -cpu {theirs}"
        );
    }
}

#[test]
fn bad_cpu_options_are_one_clear_line() {
    for (spec, needle) in [
        ("rv64,zzz=on", "unknown CPU property 'zzz'"),
        ("rv64,h=on", "does not implement the h extension"),
        ("rv64,zbb=maybe", "takes on|off|true|false"),
        ("sifive-u54", "unsupported CPU model 'sifive-u54'"),
    ] {
        let mut cmd = rewind_cmd();
        cmd.args(["run", "--cpu", spec, "--dump-dtb", "/dev/null"]);
        let done = Proc::spawn(cmd, None).finish(TIMEOUT);
        assert_eq!(done.code, Some(2), "--cpu {spec}: {}", done.describe());
        assert!(
            done.stderr.contains(needle),
            "--cpu {spec}: expected {needle:?} in {}",
            done.stderr
        );
    }
}

/// A device tree as dtc prints it, without the nodes QEMU's `virt` has and rewind does not
/// (PCI, flash, fw-cfg, the platform bus) and without the random `rng-seed`.
fn board_dts(dtb: &Path) -> String {
    let text = dts(dtb);
    let mut out = Vec::new();
    let mut skip_until: Option<String> = None;
    for line in text.lines() {
        if let Some(end) = &skip_until {
            if line == end {
                skip_until = None;
            }
            continue;
        }
        let body = line.trim_start_matches('\t');
        let indent = &line[..line.len() - body.len()];
        let absent = ["platform-bus@", "fw-cfg@", "flash@", "pci@"];
        if absent.iter().any(|n| body.starts_with(n)) && body.ends_with('{') {
            skip_until = Some(format!("{indent}}};"));
            continue;
        }
        // Blank lines separate nodes, some of which are gone.
        if body.starts_with("rng-seed") || body.is_empty() {
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

#[test]
fn device_tree_matches_qemu10_with_several_harts() {
    if !have_tools(&["qemu-system-riscv64", "dtc"]) {
        if required() {
            panic!("REWIND_REQUIRE_GUESTS is set but qemu-system-riscv64 or dtc is missing");
        }
        skip_because("qemu-system-riscv64 and dtc");
        return;
    }
    let dir = Scratch::new("smp-dtb");
    for harts in ["1", "2", "4", "8"] {
        let ours = dir.path(&format!("rewind-{harts}.dtb"));
        let theirs = dir.path(&format!("qemu-{harts}.dtb"));
        let mut cmd = rewind_cmd();
        cmd.args(["run", "-smp", harts, "-m", "128M", "--dump-dtb"])
            .arg(&ours)
            .arg("--kernel")
            .arg(repo_root().join("guests/prebuilt/demo.elf"));
        let done = Proc::spawn(cmd, None).finish(TIMEOUT);
        assert_eq!(
            done.code,
            Some(0),
            "rewind -smp {harts}: {}",
            done.describe()
        );
        let mut cmd = Command::new("qemu-system-riscv64");
        cmd.arg("-M")
            .arg(format!("virt,dumpdtb={}", theirs.display()))
            .args(["-smp", harts, "-m", "128M", "-cpu", "rv64,h=false"])
            .args(["-display", "none"]);
        let done = Proc::spawn(cmd, None).finish(TIMEOUT);
        assert_eq!(done.code, Some(0), "QEMU -smp {harts}: {}", done.stderr);
        let (a, b) = (board_dts(&ours), board_dts(&theirs));
        assert!(
            a.matches("device_type = \"cpu\"").count() == harts.parse::<usize>().unwrap(),
            "rewind -smp {harts} lists another number of cpus:\n{a}"
        );
        if a != b {
            let first = a
                .lines()
                .zip(b.lines())
                .position(|(x, y)| x != y)
                .unwrap_or(a.lines().count().min(b.lines().count()));
            panic!(
                "-smp {harts}: the device tree differs from QEMU 10's at line {first}:\n\
                 rewind: {:?}\nQEMU:   {:?}",
                a.lines().nth(first),
                b.lines().nth(first)
            );
        }
    }
}
