//! Linux on virtio-blk: an ext4 image built at test time (`mkfs.ext4 -d`) is mounted, read and
//! written by the guest (`scripts/linux-tests/blk.sh`). Recording and replays never write the
//! image; replays (whole, and from a snapshot in the middle of the disk activity) print the same
//! console; `run` writes the guest's files into the image. Skips like `linux.rs` without the
//! Linux assets, and without e2fsprogs.

#[allow(dead_code)]
mod common;

use common::linux::{console_value, device_test_passed, linux_assets, record_device_test};
use common::{recorded_icount, run_rewind, skip_because, Scratch};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One recording or replay of the test.
const TIMEOUT: Duration = Duration::from_secs(400);

/// The known file put into the image.
const KNOWN: &str = "rewind virtio-blk known file\nline two\n";

/// An e2fsprogs tool: on PATH or in the sbin directories (often not on a user's PATH).
fn e2fs_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A 16 MiB ext4 image holding `known.txt`, or `None` (skipped) without e2fsprogs.
fn ext4_image(dir: &Scratch, name: &str) -> Option<PathBuf> {
    let Some(mkfs) = e2fs_tool("mkfs.ext4").filter(|_| e2fs_tool("debugfs").is_some()) else {
        skip_because("e2fsprogs (mkfs.ext4, debugfs) is not installed");
        return None;
    };
    let root = dir.path(&format!("{name}-root"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("known.txt"), KNOWN).unwrap();
    let img = dir.path(name);
    let out = Command::new(mkfs)
        .args(["-q", "-F", "-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("16M")
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(img)
}

/// `debugfs -R "cat PATH" img`: a file of the image, read on the host.
fn debugfs_cat(img: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(e2fs_tool("debugfs").expect("debugfs"))
        .args(["-R", &format!("cat {path}")])
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debugfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn hash(p: &Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

fn drive_args(img: &Path) -> Vec<String> {
    vec![
        "--drive".into(),
        format!("file={},format=raw", img.display()),
    ]
}

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Record the disk test, replay it three times and from a snapshot in the middle of the disk
/// activity: identical consoles, and the image is never written.
#[test]
fn linux_ext4_on_virtio_blk_records_and_replays() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("blk");
    let Some(img) = ext4_image(&dir, "disk.img") else {
        return;
    };
    let before = hash(&img);
    let trace = dir.path("blk.rwtrace");
    let mut args = drive_args(&img);
    args.extend(["--snapshot-every".into(), "100000000".into()]);
    let rec = record_device_test(&assets, &trace, "blk", &args, TIMEOUT);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    assert!(device_test_passed(&rec.stdout, "blk"), "{}", rec.describe());
    assert_eq!(console_value(&rec.stdout, "blk size: "), Some("32768"));
    assert_eq!(console_value(&rec.stdout, "blk ro: "), Some("0"));
    assert_eq!(
        console_value(&rec.stdout, "known sha256: "),
        Some(sha256(KNOWN.as_bytes()).as_str()),
        "{}",
        rec.describe()
    );
    let random = console_value(&rec.stdout, "random sha256: ").map(str::to_string);
    assert!(random.is_some(), "{}", rec.describe());
    assert_eq!(
        console_value(&rec.stdout, "reread sha256: "),
        random.as_deref()
    );
    assert_eq!(
        console_value(&rec.stdout, "hello: "),
        Some("rewind disk test")
    );
    assert_eq!(hash(&img), before, "recording wrote the base image");

    // Recorded with the default engine (the JIT); the engines are interchangeable, so the
    // interpreter replays the disk's completions at the same instructions too.
    for (i, accel) in ["jit", "interp", "jit"].into_iter().enumerate() {
        let rep = run_rewind(
            &[
                "replay".as_ref(),
                "--accel".as_ref(),
                accel.as_ref(),
                trace.as_os_str(),
            ],
            TIMEOUT,
        );
        assert_eq!(
            rep.code,
            Some(0),
            "replay {i} ({accel}): {}",
            rep.describe()
        );
        assert_eq!(
            rep.stdout, rec.stdout,
            "replay {i} ({accel}) printed something else"
        );
    }
    assert_eq!(hash(&img), before, "replay wrote the base image");

    // From a snapshot while the guest writes and re-reads its files: after the known file's
    // hash was printed, before the re-read. The rest of the console and the end state (checked
    // by replay) are the whole replay's. A few points are tried to find one in that window.
    let total = recorded_icount(&rec.stderr).expect("recorded icount");
    let mut inside = None;
    for percent in [88, 85, 91, 82, 93, 80, 95] {
        let from = total * percent / 100;
        let rep = run_rewind(
            &[
                "replay".as_ref(),
                trace.as_os_str(),
                "--from".as_ref(),
                from.to_string().as_ref(),
            ],
            TIMEOUT,
        );
        assert_eq!(
            rep.code,
            Some(0),
            "replay --from {from}: {}",
            rep.describe()
        );
        assert!(
            rec.stdout.ends_with(&rep.stdout),
            "replay --from {from} printed something else: {}",
            rep.describe()
        );
        if !rep.stdout.contains("known sha256:") && rep.stdout.contains("reread sha256:") {
            inside = Some(from);
            break;
        }
    }
    let from = inside.expect("no --from point between the mount and the re-read");
    assert_eq!(hash(&img), before, "replay --from wrote the base image");

    // Reverse execution there: run past the re-read, seek back to `from` through a snapshot
    // (the overlay restored with it), and forward again: the states are those reached going
    // forwards only (the state includes the console output's hash, so the re-read data too).
    let end = total - 1000;
    let stops = |list: String| {
        let rep = run_rewind(
            &[
                "replay".as_ref(),
                trace.as_os_str(),
                "--stop-at".as_ref(),
                list.as_ref(),
            ],
            TIMEOUT,
        );
        assert_eq!(rep.code, Some(0), "--stop-at {list}: {}", rep.describe());
        rep.stderr
            .lines()
            .filter_map(|l| l.trim().strip_prefix("state"))
            .map(|v| v.trim().to_string())
            .collect::<Vec<_>>()
    };
    let forwards = stops(format!("{from},{end}"));
    assert_eq!(forwards.len(), 2);
    let back = stops(format!("{end},{from},{},{end}", from - 1));
    assert_eq!(back.len(), 4);
    assert_eq!(
        (&back[0], &back[1], &back[3]),
        (&forwards[1], &forwards[0], &forwards[1])
    );
    assert_eq!(stops(format!("{}", from - 1)), [back[2].clone()]);
}

/// `run` writes what the guest writes into the image, as QEMU does; `snapshot=on` does not.
#[test]
fn linux_run_writes_the_image() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("blk-run");
    let Some(img) = ext4_image(&dir, "run.img") else {
        return;
    };
    let before = hash(&img);
    let mut args = vec!["run".to_string()];
    args.extend(common::linux::boot_args(&assets));
    args.push("--drive".into());
    args.push(format!("file={},snapshot=on", img.display()));
    args.extend([
        "--append".into(),
        format!("{} rewind.test=blk", common::linux::APPEND),
        "--serial".into(),
        "stdio".into(),
    ]);
    let snap = run_rewind(&args, TIMEOUT);
    assert!(
        device_test_passed(&snap.stdout, "blk"),
        "{}",
        snap.describe()
    );
    assert_eq!(hash(&img), before, "snapshot=on wrote the image");

    let n = args.len();
    args[n - 5] = format!("file={}", img.display());
    let run = run_rewind(&args, TIMEOUT);
    assert!(device_test_passed(&run.stdout, "blk"), "{}", run.describe());
    assert_eq!(debugfs_cat(&img, "/hello.txt"), b"rewind disk test\n");
    let random = debugfs_cat(&img, "/random.bin");
    assert_eq!(random.len(), 4 << 20);
    assert_eq!(
        Some(sha256(&random).split_whitespace().next().unwrap_or("")),
        console_value(&run.stdout, "random sha256: ").and_then(|s| s.split_whitespace().next())
    );
}
