//! virtio-net on user-mode networking, driven by Linux: the guest gets its address by DHCP,
//! fetches a file over HTTP from a server on the host's loopback (through 10.0.2.2), and
//! answers a host client that reaches it through `hostfwd`. The recording is replayed with the
//! host server gone and the forwarded port taken by someone else (replay opens no socket), and
//! `dump --pcap` gives the traffic in both directions. Skips like `linux.rs` when the Linux
//! assets cannot be made.

#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::linux::{boot_args, console_value, device_test_passed, linux_assets, APPEND};
use common::{recorded_icount, replay_matched_line, rewind_proc, run_rewind, Scratch};

/// One recording or replay.
const TIMEOUT: Duration = Duration::from_secs(300);
/// How long the guest may take to reach its hostfwd server (a whole boot).
const WAIT: Duration = Duration::from_secs(240);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// A port nobody listens on (bound, read and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("an ephemeral port")
        .port()
}

/// An HTTP/1.0 server on the host's loopback answering every request with `body`; it keeps
/// the request heads it saw. Stops when dropped.
struct HttpServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    fn start(body: Vec<u8>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTP server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("its port").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((mut c, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = c.set_nonblocking(false);
                let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .expect("requests")
                    .push(String::from_utf8_lossy(&head).into_owned());
                let reply = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(reply.as_bytes());
                let _ = c.write_all(&body);
            }
        });
        HttpServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `sha256sum` of `bytes` (the host tool: the guest prints the same format).
fn sha256_hex(bytes: &[u8], dir: &Scratch) -> String {
    let p = dir.write("body.bin", bytes);
    let out = Command::new("sha256sum")
        .arg(&p)
        .output()
        .expect("run sha256sum");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .expect("a sha256sum line")
        .to_string()
}

/// Waits until `file` contains `needle` (the recorder's console goes to a file).
fn wait_for_console(file: &Path, needle: &str, rec: &mut common::Proc) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        if start.elapsed() > WAIT || rec.exited() {
            let _ = rec.kill();
            panic!(
                "the guest never printed {needle:?}; console (tail):\n{}\nrecorder: {}",
                common::tail(&text, 30),
                rec.finish_mut(TIMEOUT).describe()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects through the forwarded port, says hello and reads the guest's answer. The guest
/// announces its server just before `nc` listens, so an early try may be refused: try again.
fn talk_through_hostfwd(port: u16) -> String {
    let start = Instant::now();
    loop {
        let mut got = Vec::new();
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
            let _ = c.write_all(b"ping from host\n");
            let mut buf = [0u8; 256];
            while !String::from_utf8_lossy(&got).contains('\n') {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        }
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.contains("pong") || start.elapsed() > Duration::from_secs(60) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The frames of a classic little-endian pcap file: (seconds, microseconds, bytes).
fn read_pcap(bytes: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    assert!(bytes.len() >= 24, "pcap shorter than its header");
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "pcap magic");
    assert_eq!(u32_at(20), 1, "link type Ethernet");
    let mut frames = Vec::new();
    let mut off = 24;
    while off < bytes.len() {
        assert!(off + 16 <= bytes.len(), "record header cut at {off}");
        let (sec, usec, incl, orig) = (
            u32_at(off),
            u32_at(off + 4),
            u32_at(off + 8),
            u32_at(off + 12),
        );
        assert_eq!(incl, orig, "frame cut in the pcap");
        assert!(usec < 1_000_000);
        let end = off + 16 + incl as usize;
        assert!(end <= bytes.len(), "frame cut at {off}");
        frames.push((sec, usec, bytes[off + 16..end].to_vec()));
        off = end;
    }
    frames
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// DHCP, HTTP from the host and a hostfwd exchange, recorded; the replay (no host server,
/// the forwarded port taken) prints the same console byte for byte and ends in the same state;
/// the pcap holds the HTTP request and reply and the hostfwd exchange.
#[test]
fn linux_net_dhcp_http_hostfwd_record_replay_pcap() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("net");
    let trace = dir.path("net.rwtrace");
    let console = dir.path("console.txt");
    // 200 KB the guest hashes: more than the TCP windows, so flow control takes part.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let body: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let want_sum = sha256_hex(&body, &dir);
    let server = HttpServer::start(body);
    let hport = free_port();

    let mut args = vec![s("record"), s("-o"), s(&trace)];
    args.extend(boot_args(&assets));
    args.extend([
        s("--netdev"),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:8080"),
        s("--device"),
        s("virtio-net-device,netdev=n0"),
        s("--append"),
        format!("{APPEND} rewind.test=net rewind.port={}", server.port),
        s("--serial"),
        format!("file:{}", console.display()),
    ]);
    let t0 = Instant::now();
    let mut rec = rewind_proc(&args);
    wait_for_console(&console, "hostfwd: listening", &mut rec);
    let answer = talk_through_hostfwd(hport);
    let done = rec.finish_mut(TIMEOUT);
    eprintln!("net: recorded in {:.1?}", t0.elapsed());
    let text = std::fs::read_to_string(&console).expect("the console file");
    assert_eq!(
        done.code,
        Some(0),
        "record: {}\nconsole:\n{}",
        done.describe(),
        common::tail(&text, 30)
    );
    assert_eq!(
        answer,
        "pong from guest\n",
        "through hostfwd; console:\n{}",
        common::tail(&text, 30)
    );
    assert!(
        device_test_passed(&text, "net"),
        "console:\n{}",
        common::tail(&text, 40)
    );
    // QEMU's user network as the guest sees it.
    assert_eq!(
        console_value(&text, "eth0: "),
        Some("10.0.2.15/24"),
        "{text}"
    );
    assert_eq!(
        console_value(&text, "gateway: "),
        Some("10.0.2.2"),
        "{text}"
    );
    assert_eq!(
        console_value(&text, "mac: "),
        Some("52:54:00:12:34:56"),
        "{text}"
    );
    assert_eq!(
        console_value(&text, "http sha256: "),
        Some(want_sum.as_str()),
        "{text}"
    );
    assert_eq!(
        console_value(&text, "hostfwd got: "),
        Some("ping from host"),
        "{text}"
    );
    let requests = server.requests.lock().expect("requests").clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].starts_with("GET /file HTTP/1.1\r\n"),
        "{requests:?}"
    );
    let icount = recorded_icount(&done.stderr).expect("the recorded icount");
    drop(server);

    // Replay: nothing on the host answers, and the forwarded port belongs to someone else.
    let squatter = TcpListener::bind(("127.0.0.1", hport)).expect("take the hostfwd port");
    // Recorded with the default engine (the JIT), replayed with the interpreter: the received
    // frames enter at the same instructions under either.
    let rep = run_rewind(
        &[s("replay"), s("--accel"), s("interp"), s(&trace)],
        TIMEOUT,
    );
    assert_eq!(rep.code, Some(0), "replay: {}", rep.describe());
    assert!(
        rep.stdout == text,
        "replay printed something else:\n{}",
        common::tail(&rep.stdout, 20)
    );
    let (n, _) = replay_matched_line(&rep.stderr).expect("a matched line");
    assert_eq!(n, icount, "{}", rep.describe());
    // From a snapshot taken while the network was up (the driver's queues, the card's state).
    let from = icount / 100 * 95;
    let rep = run_rewind(
        &[s("replay"), s("--from"), from.to_string(), s(&trace)],
        TIMEOUT,
    );
    assert_eq!(
        rep.code,
        Some(0),
        "replay --from {from}: {}",
        rep.describe()
    );
    assert_eq!(
        replay_matched_line(&rep.stderr).map(|m| m.0),
        Some(icount),
        "{}",
        rep.describe()
    );
    squatter.set_nonblocking(true).expect("nonblocking");
    assert!(
        squatter.accept().is_err(),
        "the replay connected to the forwarded port"
    );

    // The traffic in both directions, recovered by replaying.
    let pcap = dir.path("net.pcap");
    let d = run_rewind(&[s("dump"), s("--pcap"), s(&pcap), s(&trace)], TIMEOUT);
    assert_eq!(d.code, Some(0), "dump --pcap: {}", d.describe());
    let frames = read_pcap(&std::fs::read(&pcap).expect("the pcap"));
    let find = |needle: &[u8]| frames.iter().position(|f| contains(&f.2, needle));
    let get = find(b"GET /file HTTP/1.1").expect("the HTTP request in the pcap");
    let ok = find(b"HTTP/1.0 200 OK").expect("the HTTP reply in the pcap");
    let ping = find(b"ping from host").expect("the host's message in the pcap");
    let pong = find(b"pong from guest").expect("the guest's answer in the pcap");
    assert!(
        get < ok && ok < ping && ping < pong,
        "{get} {ok} {ping} {pong}"
    );
    // The request goes from the guest's MAC to the gateway's, the reply back.
    assert_eq!(&frames[get].2[6..12], &[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    assert_eq!(&frames[ok].2[6..12], &[0x52, 0x55, 10, 0, 2, 2]);
    // Virtual time stamps never go back.
    let stamps: Vec<u64> = frames
        .iter()
        .map(|f| u64::from(f.0) * 1_000_000 + u64::from(f.1))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "{stamps:?}");
}

/// QEMU's spelling (`-netdev user,...,hostfwd=... -device virtio-net-device,netdev=...`, `-nic`)
/// records the card and its netdev in the trace header, and the replay needs no option and
/// opens no socket (the forwarded port is taken meanwhile). Needs only a bare-metal guest.
#[test]
fn netdev_options_reach_the_trace_header_and_replay_needs_none() {
    let Some(elf) = common::guest_elf("exit_0") else {
        return;
    };
    let dir = Scratch::new("net-header");
    let trace = dir.path("n.rwtrace");
    let hport = free_port();
    let rec = run_rewind(
        &[
            s("run"),
            s("-M"),
            s("virt"),
            s("-bios"),
            s("none"),
            s("-kernel"),
            s(&elf),
            s("-nographic"),
            s("-icount"),
            format!("shift=0,rr=record,rrfile={}", trace.display()),
            s("-netdev"),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:22"),
            s("-device"),
            s("virtio-net-device,netdev=n0"),
            s("-nic"),
            s("user,model=virtio"),
        ],
        TIMEOUT,
    );
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    let d = run_rewind(&[s("dump"), s("--json"), s(&trace)], TIMEOUT);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let header: serde_json::Value =
        serde_json::from_str(d.stdout.lines().next().expect("a header line")).expect("JSON");
    let devices = &header["header"]["machine_config"]["devices"];
    assert_eq!(
        devices,
        &serde_json::json!([
            format!("virtio-net-device,mac=52:54:00:12:34:56,netdev=user,hostfwd=tcp:127.0.0.1:{hport}-:22"),
            "virtio-net-device,mac=52:54:00:12:34:57,netdev=user"
        ]),
        "{}",
        d.stdout
    );
    let _squatter = TcpListener::bind(("127.0.0.1", hport)).expect("take the hostfwd port");
    let rep = run_rewind(&[s("replay"), s(&trace)], TIMEOUT);
    assert_eq!(rep.code, Some(0), "{}", rep.describe());
    assert_eq!(rep.stdout, rec.stdout);
    // A device naming a netdev that does not exist is refused before anything runs.
    let bad = run_rewind(
        &[
            s("run"),
            s("--kernel"),
            s(&elf),
            s("--device"),
            s("virtio-net-device,netdev=nope"),
        ],
        TIMEOUT,
    );
    assert_eq!(bad.code, Some(2), "{}", bad.describe());
    assert!(
        bad.stderr.contains("no --netdev with id=nope"),
        "{}",
        bad.describe()
    );
}
