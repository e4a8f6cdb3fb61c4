//! `--drive` on the command line: the trace header holds the disk image's hash, replay refuses
//! a changed image naming the file and both hashes, finds a moved one by content through
//! `--image`, and option mistakes are errors that name the problem. The guest is the prebuilt
//! demo (it never touches the disk): these tests are about the image, not the device.

#[allow(dead_code)]
mod common;

use common::{repo_root, run_rewind, Scratch};
use std::path::PathBuf;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn demo_elf() -> PathBuf {
    repo_root().join("guests/prebuilt/demo.elf")
}

fn record(dir: &Scratch, drive: &str) -> (PathBuf, common::Done) {
    let trace = dir.path("t.rwtrace");
    let demo = demo_elf();
    let done = run_rewind(
        &[
            "record",
            "-o",
            trace.to_str().unwrap(),
            "--kernel",
            demo.to_str().unwrap(),
            "--serial",
            "null",
            "--drive",
            drive,
        ],
        TIMEOUT,
    );
    (trace, done)
}

#[test]
fn replay_refuses_a_changed_disk_image_and_finds_a_moved_one() {
    let dir = Scratch::new("changed");
    let img = dir.write("disk.img", vec![7u8; 1 << 20]);
    let (trace, rec) = record(&dir, &format!("file={},format=raw", img.display()));
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    let before = blake3::hash(&std::fs::read(&img).unwrap())
        .to_hex()
        .to_string();

    let dump = run_rewind(&["dump", trace.to_str().unwrap()], TIMEOUT);
    assert!(
        dump.stdout.contains(&before) || dump.stderr.contains(&before),
        "the header lists the disk's hash: {}",
        dump.describe()
    );

    let rep = run_rewind(&["replay", trace.to_str().unwrap()], TIMEOUT);
    assert_eq!(rep.code, Some(0), "{}", rep.describe());

    // Same size, one byte changed.
    let mut changed = vec![7u8; 1 << 20];
    changed[12345] = 8;
    std::fs::write(&img, &changed).unwrap();
    let after = blake3::hash(&changed).to_hex().to_string();
    let rep = run_rewind(&["replay", trace.to_str().unwrap()], TIMEOUT);
    assert_eq!(rep.code, Some(2), "{}", rep.describe());
    for want in [img.display().to_string(), before.clone(), after] {
        assert!(
            rep.stderr.contains(&want),
            "message lacks {want}: {}",
            rep.describe()
        );
    }

    // The original bytes elsewhere, named with --image disk=PATH (or the drive's file name).
    let copy = dir.write("copy.img", vec![7u8; 1 << 20]);
    for name in ["disk", "disk.img"] {
        let rep = run_rewind(
            &[
                "replay",
                trace.to_str().unwrap(),
                "--image",
                &format!("{name}={}", copy.display()),
            ],
            TIMEOUT,
        );
        assert_eq!(rep.code, Some(0), "--image {name}=: {}", rep.describe());
    }
    // Missing altogether.
    std::fs::remove_file(&img).unwrap();
    std::fs::remove_file(&copy).unwrap();
    let rep = run_rewind(&["replay", trace.to_str().unwrap()], TIMEOUT);
    assert_eq!(rep.code, Some(2), "{}", rep.describe());
    assert!(
        rep.stderr.contains("disk image missing"),
        "{}",
        rep.describe()
    );
}

#[test]
fn drive_option_mistakes_are_named() {
    let dir = Scratch::new("opts");
    let img = dir.write("d.img", vec![0u8; 4096]);
    let demo = demo_elf();
    let cases: [(&[&str], &str); 6] = [
        (&["--drive", "file=/nonexistent/x.img"], "no such file"),
        (&["--drive", "file=IMG,format=qcow2"], "only raw"),
        (&["--drive", "format=raw"], "needs file="),
        (&["--drive", "file=IMG,if=ide"], "if=ide"),
        (
            &[
                "--device",
                "virtio-blk-device,drive=nope",
                "--drive",
                "file=IMG,if=none,id=d0",
            ],
            "no --drive has id=nope",
        ),
        (&["--drive", "file=IMG,bogus=1"], "bogus=1"),
    ];
    for (args, want) in cases {
        let mut all = vec![
            "run",
            "--kernel",
            demo.to_str().unwrap(),
            "--serial",
            "null",
        ];
        let owned: Vec<String> = args
            .iter()
            .map(|a| a.replace("IMG", img.to_str().unwrap()))
            .collect();
        all.extend(owned.iter().map(String::as_str));
        let done = run_rewind(&all, TIMEOUT);
        assert_eq!(done.code, Some(2), "{args:?}: {}", done.describe());
        assert!(
            done.stderr.contains(want),
            "{args:?}: wanted '{want}': {}",
            done.describe()
        );
    }
    // if=none plus --device works.
    let ok = run_rewind(
        &[
            "run",
            "--kernel",
            demo.to_str().unwrap(),
            "--serial",
            "null",
            "--drive",
            &format!("file={},if=none,id=d0", img.display()),
            "--device",
            "virtio-blk-device,drive=d0,serial=abc",
        ],
        TIMEOUT,
    );
    assert_eq!(ok.code, Some(0), "{}", ok.describe());
}
