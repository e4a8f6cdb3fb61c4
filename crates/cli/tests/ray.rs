//! The Ray engine (`--engine ray:ADDRESS`) on a local Ray cluster started by the test: the
//! analyses give the same bytes as `--jobs 1` and `--jobs 4`, `verify` passes on a good
//! recording and names the segment of a corrupted snapshot, `hunt` finds the same failing
//! seed as a local hunt, and the scripted Linux boot verifies (with `assets/linux`).
//!
//! Skipped when `ray` cannot be imported by `$REWIND_PYTHON` (default `python3`) unless
//! `REWIND_REQUIRE_RAY` is set (`.ci/run` sets it and installs Ray into target/py-venv).

#[allow(dead_code)]
mod common;

use common::{guest_elf, run_rewind, Done, Scratch};
use rewind_machine::session::{OpenOptions, ReplaySession};
use rewind_machine::SerialOutput;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(300);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

fn python() -> String {
    std::env::var("REWIND_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the Python the engine uses can import ray; when it cannot, the test is skipped
/// unless `REWIND_REQUIRE_RAY` is set.
fn have_ray() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import ray"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("REWIND_REQUIRE_RAY").is_none(),
            "REWIND_REQUIRE_RAY is set but {} cannot import ray",
            python()
        );
        eprintln!("SKIPPING ray tests: {} cannot import ray", python());
    }
    ok
}

/// The `ray` command next to the engine's Python (a venv's), or on PATH.
fn ray_command() -> PathBuf {
    let py = PathBuf::from(python());
    match py.parent() {
        Some(dir) if dir.join("ray").exists() => dir.join("ray"),
        _ => PathBuf::from("ray"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A local Ray cluster (`ray start --head --block` in its own process group); dropping it
/// stops every process of that group, and only those (`ray stop` would stop any Ray on
/// the machine).
struct Cluster {
    child: Child,
    address: String,
    temp: PathBuf,
    log: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let port = free_port();
        // Short: Ray's socket paths live under it.
        let temp = std::env::temp_dir().join(format!("rwray-{}", std::process::id()));
        let log_path = std::env::temp_dir().join(format!("rwray-{}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).expect("log");
        let mut cmd = Command::new(ray_command());
        cmd.args(["start", "--head", "--block", "--num-cpus=2"])
            .arg(format!("--port={port}"))
            .args([
                "--include-dashboard=false",
                "--disable-usage-stats",
                // A pack is stored once; keep the shared-memory store small.
                "--object-store-memory=100000000",
            ])
            .arg(format!("--dashboard-agent-listen-port={}", free_port()))
            .arg(format!("--temp-dir={}", temp.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // A test cluster on this machine: no token (a token file in ~/.ray would turn
            // token authentication on for the cluster but not for the probe below).
            .env("RAY_AUTH_MODE", "disabled")
            .process_group(0);
        let child = cmd.spawn().expect("ray start");
        let mut c = Cluster {
            child,
            address: format!("127.0.0.1:{port}"),
            temp,
            log: log_path,
        };
        // Up when a driver can connect.
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&c.log).unwrap_or_default();
            let ok = log.contains("Ray runtime started") && probe(&c.address);
            if ok {
                return c;
            }
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!("ray start exited ({st}); see {}", c.temp.display());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the Ray cluster did not come up in 120 s"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn engine(&self) -> String {
        format!("ray:{}", self.address)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Whatever drains slowly (Ray waits up to 30 s) is stopped now.
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.temp);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Whether a driver connects to the cluster at `address` within 60 s.
fn probe(address: &str) -> bool {
    let mut probe = Command::new(python())
        .args([
            "-c",
            &format!(
                "import ray, logging; ray.init(address='{address}', logging_level=logging.ERROR); ray.shutdown()"
            ),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python");
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        if let Ok(Some(st)) = probe.try_wait() {
            return st.success();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = probe.kill();
    let _ = probe.wait();
    false
}

/// Record guest `name` with a snapshot every `every` instructions.
fn record(name: &str, trace: &Path, every: u64, extra: &[&str]) {
    let elf = guest_elf(name).expect("guests");
    let mut args = vec![
        s("record"),
        s("-o"),
        s(trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(elf),
        s("--serial"),
        s("null"),
        s("--snapshot-every"),
        every.to_string(),
    ];
    args.extend(extra.iter().map(s));
    let d = rewind(&args);
    assert_eq!(d.code, Some(0), "record: {}", d.describe());
}

/// `rewind ARGS` three times: `--jobs 1`, `--jobs 4`, `--engine E`; all succeed with the same
/// standard output, which is returned.
fn same_three(args: &[String], engine: &str) -> String {
    let mut outs = Vec::new();
    for extra in [["--jobs", "1"], ["--jobs", "4"], ["--engine", engine]] {
        let mut a = args.to_vec();
        a.extend(extra.iter().map(s));
        let d = rewind(&a);
        assert_eq!(d.code, Some(0), "{a:?}: {}", d.describe());
        outs.push(d.stdout);
    }
    assert_eq!(outs[0], outs[1], "{args:?}: --jobs 1 and --jobs 4 differ");
    assert_eq!(
        outs[0], outs[2],
        "{args:?}: --jobs 1 and the Ray engine differ"
    );
    outs.swap_remove(0)
}

#[test]
fn the_ray_engine_gives_the_local_answers() {
    if !have_ray() || guest_elf("compute_timer").is_none() {
        return;
    }
    let cluster = Cluster::start();
    let engine = cluster.engine();
    let scratch = Scratch::new("ray");

    // Analyses: the same bytes whatever runs the segments.
    let trace = scratch.path("d.rwd");
    record("debugme", &trace, 2_000, &[]);
    let cov = same_three(&[s("analyze"), s("coverage"), s(&trace)], &engine);
    assert!(cov.starts_with("{\"instructions\":"), "{cov}");
    let console = same_three(
        &[s("analyze"), s("console"), s(&trace), s("--json")],
        &engine,
    );
    assert!(console.lines().count() > 5, "{console}");
    // debugme's `counter`, stored once per tick.
    let lw = same_three(
        &[
            s("analyze"),
            s("last-write"),
            s(&trace),
            s("--addr"),
            format!("{:#x}", symbol("debugme", "counter")),
            s("--len"),
            s("8"),
            s("--json"),
        ],
        &engine,
    );
    assert!(lw.contains("\"icount\":"), "{lw}");
    let sys = same_three(
        &[s("analyze"), s("syscalls"), s(&trace), s("--json")],
        &engine,
    );
    // A bare-metal guest makes no U-mode calls; the Linux boot below has them.
    assert_eq!(sys, "", "{sys}");

    // verify: a good recording passes; one register changed in the snapshot at 200M names
    // the segment ending there, exit status 3.
    let c = scratch.path("c.rwd");
    record(
        "compute_timer",
        &c,
        50_000_000,
        &["--check-interval", "1000000"],
    );
    let local = rewind(&[s("verify"), s(&c), s("--jobs"), s("2")]);
    let ray = rewind(&[s("verify"), s(&c), s("--engine"), s(&engine)]);
    assert_eq!(ray.code, Some(0), "{}", ray.describe());
    assert_eq!(local.stdout, ray.stdout);
    assert_eq!(ray.stdout.lines().count(), 6, "{}", ray.describe());
    corrupt_snapshot(&c, 3);
    let bad = rewind(&[s("verify"), s(&c), s("--engine"), s(&engine)]);
    assert_eq!(bad.code, Some(3), "{}", bad.describe());
    assert!(
        bad.stderr.contains(
            "rewind: segment 3 (instructions 150000000..200000000) differs from the \
             recording: hart 0 differs from the snapshot: x2 = "
        ),
        "{}",
        bad.describe()
    );
    // An analysis over the bad snapshot fails with the diverging segment's report.
    let div = rewind(&[
        s("analyze"),
        s("coverage"),
        s(&c),
        s("--engine"),
        s(&engine),
    ]);
    assert_eq!(div.code, Some(3), "{}", div.describe());
    assert!(
        div.stderr
            .starts_with("rewind: segment 4 (instructions 200000000..250000000): "),
        "{}",
        div.describe()
    );

    // hunt: the same first failing seed as a local hunt; the kept pack replays the failure.
    if let Some(race) = guest_elf("smp_race_assert") {
        let hunt = |out: &Path, extra: &[&str]| {
            let mut a = vec![
                s("hunt"),
                s("--until"),
                s("exit-nonzero"),
                s("--tries"),
                s("300"),
                s("--seed"),
                s("1"),
                s("-o"),
                s(out),
            ];
            a.extend(extra.iter().map(s));
            a.extend([s("--"), s("-smp"), s("4"), s("--kernel"), s(&race)]);
            let d = rewind(&a);
            assert_eq!(d.code, Some(0), "hunt {extra:?}: {}", d.describe());
            let line = d
                .stderr
                .lines()
                .find(|l| l.starts_with("hunt: found after"))
                .unwrap_or_else(|| panic!("{}", d.describe()))
                .to_string();
            // "found after N tries (T s): chaos seed S, OUTCOME;": all but the wall time.
            let tries = line.split(" (").next().unwrap_or("").to_string();
            let seed = line.split("chaos seed ").nth(1).unwrap_or("");
            (tries, seed.split(';').next().unwrap_or("").to_string())
        };
        let local = hunt(&scratch.path("race.rwd"), &[]);
        let kept = scratch.path("race-ray.rwd");
        let ray = hunt(&kept, &["--engine", &engine]);
        assert_eq!(local, ray);
        let rep = rewind(&[s("replay"), s(&kept), s("-q")]);
        assert_eq!(rep.code, Some(1), "the kept pack: {}", rep.describe());
        let left: Vec<String> = std::fs::read_dir(scratch.path("."))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".try-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }

    // Errors are one line: an unreachable cluster, a Python without ray.
    let dead = format!("ray:127.0.0.1:{}", free_port());
    let d = rewind(&[s("verify"), s(&trace), s("--engine"), dead]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr
            .starts_with("rewind: cannot reach the Ray cluster at 127.0.0.1:"),
        "{}",
        d.describe()
    );
    assert_eq!(d.stderr.lines().count(), 1, "{}", d.describe());

    if let Some(assets) = common::linux::linux_assets() {
        linux_verify(&scratch, &assets, &engine);
    }
    drop(cluster);
}

/// The scripted Linux boot, recorded with snapshots, verifies with the engine as with one
/// job, and its system calls are the same.
fn linux_verify(scratch: &Scratch, assets: &Path, engine: &str) {
    let trace = scratch.path("linux.rwd");
    let mut args = vec![s("record"), s("-o"), s(&trace), s("-q")];
    args.extend(common::linux::boot_args(assets));
    args.extend([
        s("--append"),
        format!("{} rewind.test=1", common::linux::APPEND),
        s("--serial"),
        s("null"),
        s("--snapshot-every"),
        s("400000000"),
    ]);
    let d = rewind(&args);
    assert_eq!(d.code, Some(0), "record linux: {}", d.describe());
    let one = rewind(&[s("verify"), s(&trace), s("--jobs"), s("1")]);
    let ray = rewind(&[s("verify"), s(&trace), s("--engine"), s(engine)]);
    assert_eq!(one.code, Some(0), "{}", one.describe());
    assert_eq!(ray.code, Some(0), "{}", ray.describe());
    assert_eq!(one.stdout, ray.stdout);
    assert!(one.stdout.lines().count() >= 4, "{}", one.describe());
    same_three(
        &[s("analyze"), s("syscalls"), s(&trace), s("--json")],
        engine,
    );
}

/// Flip a bit of x2 in the `k`-th snapshot (from 0) of `trace`'s snapshot file, re-encoded
/// through the library so that the file is intact.
fn corrupt_snapshot(trace: &Path, k: usize) {
    let sidecar = PathBuf::from(format!("{}.snapshots", trace.display()));
    let mut session = ReplaySession::open(trace, OpenOptions::default()).unwrap();
    let mut m = session.machine(SerialOutput::Null).unwrap();
    let reset = m.snapshot(None).unwrap();
    let mut snaps = session
        .snapshots(rewind_machine::sidecar::Select::All, &reset)
        .unwrap()
        .snapshots;
    snaps[k].harts[0].x[2] ^= 0x10;
    let mut all = vec![reset];
    all.extend(snaps);
    let id = rewind_machine::snapshot::trace_id(session.header());
    rewind_machine::sidecar::save(&sidecar, &id, &all).unwrap();
}

/// The address of symbol `sym` in guest `name`.
fn symbol(name: &str, sym: &str) -> u64 {
    let elf = guest_elf(name).expect("guests");
    let out = Command::new("riscv64-unknown-elf-nm")
        .arg(&elf)
        .output()
        .expect("nm");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(sym))
        .unwrap_or_else(|| panic!("no {sym} in {}", elf.display()));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}
