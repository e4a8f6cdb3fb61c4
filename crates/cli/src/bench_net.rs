//! `rewind bench net`: Linux receives 16 MiB through a hostfwd port while rewind records;
//! prints the throughput, the trace's bytes per MiB received, and the replay time.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rewind_log::{dump as logdump, EventKind, TraceReader};

/// Bytes sent to the guest.
const PAYLOAD: usize = 16 << 20;
/// Longest a boot, the transfer or the replay may take.
const TIMEOUT: Duration = Duration::from_secs(600);

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `file` contains `needle`; fails when `child` exits first or after [`TIMEOUT`].
fn wait_for(file: &Path, needle: &str, child: &mut std::process::Child) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(file).is_ok_and(|t| t.contains(needle)) {
            return Ok(());
        }
        if child.try_wait()?.is_some() || start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let tail = std::fs::read_to_string(file).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            bail!(
                "the guest never printed {needle:?}; console ends with:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A deterministic incompressible payload (xorshift), so the log cannot shrink it.
fn payload() -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(PAYLOAD);
    while v.len() < PAYLOAD {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Waits for the guest's server, sends `data` through `port`, and waits for the guest's hash
/// line: returns the transfer time.
fn transfer(
    console: &Path,
    child: &mut std::process::Child,
    port: u16,
    data: &[u8],
) -> anyhow::Result<Duration> {
    wait_for(console, "netbench: listening", child)?;
    // nc starts listening a moment after the line: give it that moment.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", port)).context("connect to hostfwd")?;
    c.write_all(data).context("send the payload")?;
    c.shutdown(std::net::Shutdown::Write)?;
    wait_for(console, "netbench sha256: ", child)?;
    Ok(start.elapsed())
}

/// The same transfer under QEMU 10 (user networking, `-icount rr=record` with
/// `filter-replay`), then its replay: (transfer time, replay file bytes, replay wall time).
fn qemu(
    files: &[std::path::PathBuf; 3],
    dir: &Path,
    data: &[u8],
) -> anyhow::Result<(Duration, u64, Duration)> {
    let rr = dir.join("qemu.rr");
    let port = free_port()?;
    let cmd = |mode: &str, console: &Path, port: u16| {
        let mut c = Command::new("qemu-system-riscv64");
        c.args([
            "-M",
            "virt",
            "-m",
            "512M",
            "-smp",
            "1",
            "-cpu",
            "rv64,h=false",
        ])
        .args(["-display", "none", "-monitor", "none"])
        .arg("-bios")
        .arg(&files[0])
        .arg("-kernel")
        .arg(&files[1])
        .arg("-initrd")
        .arg(&files[2])
        .args([
            "-append",
            "console=ttyS0 earlycon rdinit=/init rewind.test=netbench",
        ])
        .arg("-icount")
        .arg(format!("shift=0,rr={mode},rrfile={}", rr.display()))
        .arg("-netdev")
        .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:8080"))
        .args(["-device", "virtio-net-device,netdev=n0"])
        .args(["-object", "filter-replay,id=rep,netdev=n0"])
        .args(["-global", "virtio-mmio.force-legacy=false"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let console = dir.join("qemu-console.txt");
    let mut child = cmd("record", &console, port)
        .spawn()
        .context("cannot start qemu-system-riscv64")?;
    let t = transfer(&console, &mut child, port, data)?;
    if !child.wait()?.success() {
        bail!("QEMU's recording failed");
    }
    let size = std::fs::metadata(&rr)?.len();
    let console2 = dir.join("qemu-replay.txt");
    let start = Instant::now();
    let st = cmd("replay", &console2, free_port()?).status()?;
    let replay = start.elapsed();
    if !st.success() || std::fs::read(&console)? != std::fs::read(&console2)? {
        bail!("QEMU's replay did not print what its recording did");
    }
    Ok((t, size, replay))
}

/// `rewind bench net` (`no_qemu`: skip the QEMU comparison).
pub fn run(no_qemu: bool) -> anyhow::Result<u8> {
    let files = crate::commands::linux_assets()?;
    let exe = std::env::current_exe().context("cannot find the rewind binary")?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let trace = dir.path().join("net.rwtrace");
    let console = dir.path().join("console.txt");
    let hport = free_port()?;
    let data = payload();
    println!(
        "rewind bench net: Linux receives {} MiB through hostfwd (nc | sha256sum)",
        PAYLOAD >> 20
    );
    let mut child = Command::new(&exe)
        .arg("record")
        .arg("-o")
        .arg(&trace)
        .args(["-m", &format!("{}M", crate::commands::LINUX_RAM >> 20)])
        .arg("--bios")
        .arg(&files[0])
        .arg("--kernel")
        .arg(&files[1])
        .arg("--initrd")
        .arg(&files[2])
        .arg("--netdev")
        .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:8080"))
        .args(["--device", "virtio-net-device,netdev=n0", "--no-snapshots"])
        .arg("--append")
        .arg("console=ttyS0 earlycon rdinit=/init rewind.test=netbench")
        .arg("--serial")
        .arg(format!("file:{}", console.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start rewind record")?;
    let wall = transfer(&console, &mut child, hport, &data)?;
    let status = child.wait()?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    if !status.success() {
        bail!("rewind record failed ({status}):\n{stderr}");
    }
    let text = std::fs::read_to_string(&console)?;
    let sum = text
        .lines()
        .find_map(|l| l.strip_prefix("netbench sha256: "))
        .unwrap_or("")
        .trim()
        .to_string();
    // The host's sha256sum (coreutils) checks what the guest hashed.
    let body = dir.path().join("payload.bin");
    std::fs::write(&body, &data)?;
    let want = Command::new("sha256sum")
        .arg(&body)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .map(str::to_string)
        });
    let intact = want.as_deref() == Some(sum.as_str());
    let mib = PAYLOAD as f64 / f64::from(1u32 << 20);
    println!(
        "  record:  {mib:.0} MiB in {:.2} s = {:.2} MiB/s (guest sha256 {})",
        wall.as_secs_f64(),
        mib / wall.as_secs_f64(),
        match (intact, want.is_some()) {
            (true, _) => "matches the payload",
            (false, true) => "DIFFERS from the payload",
            (false, false) => "not checked: no sha256sum on the host",
        }
    );

    let mut reader = TraceReader::open(&trace)?;
    let st = logdump::stats(&mut reader)?;
    let kind = |k: EventKind| {
        st.kinds
            .iter()
            .find(|(kk, _)| *kk == k)
            .map_or((0, 0), |(_, s)| (s.count, s.raw_bytes))
    };
    let (rx_n, rx_bytes) = kind(EventKind::NetPacket);
    let (tx_n, tx_bytes) = kind(EventKind::NetSent);
    println!(
        "  trace:   {} bytes ({:.4} x the payload; {:.0} bytes per MiB received); \
         {rx_n} NetPacket events ({rx_bytes} raw bytes), {tx_n} NetSent events ({tx_bytes} raw bytes)",
        st.file_len,
        st.file_len as f64 / PAYLOAD as f64,
        st.file_len as f64 / mib,
    );
    println!(
        "           raw event stream {} bytes, compressed {} bytes (zstd blocks)",
        st.raw_bytes, st.compressed_bytes
    );

    let start = Instant::now();
    let rep = Command::new(&exe)
        .arg("replay")
        .arg(&trace)
        .args(["-q", "--serial", "null"])
        .stdin(Stdio::null())
        .output()
        .context("cannot start rewind replay")?;
    let rwall = start.elapsed();
    let matched = String::from_utf8_lossy(&rep.stderr).contains("replay matched the recording");
    println!(
        "  replay:  {:.2} s for the whole boot and transfer, {} (no socket opened)",
        rwall.as_secs_f64(),
        if matched { "matched" } else { "DID NOT MATCH" }
    );
    let have_qemu = Command::new("qemu-system-riscv64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if no_qemu || !have_qemu {
        println!("  QEMU: not run");
    } else {
        match qemu(&files, dir.path(), &data) {
            Ok((t, size, replay)) => println!(
                "  QEMU 10 (-netdev user + filter-replay, icount rr): record {:.2} MiB/s, \
                 replay file {size} bytes ({:.4} x the payload, uncompressed), replay {:.2} s",
                mib / t.as_secs_f64(),
                size as f64 / PAYLOAD as f64,
                replay.as_secs_f64()
            ),
            Err(e) => println!("  QEMU: {e:#}"),
        }
    }
    Ok(if matched && (intact || want.is_none()) {
        0
    } else {
        1
    })
}
