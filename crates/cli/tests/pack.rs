//! `rewind pack` / `unpack` / `replay PACK`: a recording whose images are gone replays from
//! its pack alone; unpacking restores the same bytes; a damaged pack is a clear error.
//! Skipped without riscv64-unknown-elf-gcc unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{guest_elf, run_rewind, Done, Scratch};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

fn b3(p: &std::path::Path) -> String {
    blake3::hash(&std::fs::read(p).unwrap())
        .to_hex()
        .to_string()
}

#[test]
fn a_pack_replays_without_the_original_files_and_unpacks_to_the_same_bytes() {
    let Some(elf) = guest_elf("debugme") else {
        return;
    };
    let scratch = Scratch::new("pack");
    let images = scratch.path("images");
    let rec_dir = scratch.path("rec");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&rec_dir).unwrap();
    let kernel = images.join("guest.elf");
    std::fs::copy(&elf, &kernel).unwrap();
    // A disk base image too (the guest never reads it; the replay needs it all the same).
    let disk = images.join("disk.img");
    let sectors: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&disk, &sectors).unwrap();
    let trace = rec_dir.join("d.rwd");
    let rec = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(&kernel),
        s("--serial"),
        s("stdio"),
        s("--snapshot-every"),
        s("3000"),
        s("--drive"),
        format!("file={},format=raw", disk.display()),
    ]);
    assert_eq!(rec.code, Some(0), "{}", rec.describe());
    let full = rewind(&[s("replay"), s(&trace), s("-q")]);
    assert_eq!(full.code, Some(0), "{}", full.describe());
    let matched = common::replay_matched_line(&full.stderr).expect("matched");
    let sidecar = rec_dir.join("d.rwd.snapshots");
    let hashes = [b3(&trace), b3(&sidecar), b3(&kernel), b3(&disk)];

    let pack = scratch.path("d.rwpack");
    let d = rewind(&[s("pack"), s(&trace), s("-o"), s(&pack)]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    assert!(
        d.stderr.contains("rewind: packed 4 files into"),
        "{}",
        d.describe()
    );
    // Packing again over it is refused.
    let again = rewind(&[s("pack"), s(&trace), s("-o"), s(&pack)]);
    assert_eq!(again.code, Some(2), "{}", again.describe());
    assert!(
        again.stderr.contains("file already exists"),
        "{}",
        again.describe()
    );

    // The images and the recording are gone: the pack alone replays, from reset and from a
    // snapshot inside it, and verifies.
    std::fs::remove_dir_all(&images).unwrap();
    let moved = scratch.path("elsewhere");
    std::fs::rename(&rec_dir, &moved).unwrap();
    let r = rewind(&[s("replay"), s(&pack), s("-q")]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(
        common::replay_matched_line(&r.stderr),
        Some(matched.clone())
    );
    assert_eq!(r.stdout, full.stdout);
    assert!(r.stdout.contains("debugme finished: pass"), "{}", r.stdout);
    let r = rewind(&[s("replay"), s(&pack), s("-q"), s("--from"), s("7000")]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(common::replay_matched_line(&r.stderr), Some(matched));
    let v = rewind(&[s("verify"), s(&pack)]);
    assert_eq!(v.code, Some(0), "{}", v.describe());

    let out = scratch.path("out");
    let u = rewind(&[s("unpack"), s(&pack), s("-C"), s(&out)]);
    assert_eq!(u.code, Some(0), "{}", u.describe());
    assert_eq!(b3(&out.join("d.rwd")), hashes[0]);
    assert_eq!(b3(&out.join("d.rwd.snapshots")), hashes[1]);
    assert_eq!(b3(&out.join("guest.elf")), hashes[2]);
    assert_eq!(b3(&out.join("disk.img")), hashes[3]);
    // Never over existing files.
    let u = rewind(&[s("unpack"), s(&pack), s("-C"), s(&out)]);
    assert_eq!(u.code, Some(2), "{}", u.describe());
    assert!(u.stderr.contains("d.rwd: File exists"), "{}", u.describe());

    // Damaged packs: cut short anywhere, a flipped byte in a stored file, a name that leaves
    // the directory; each a one-line error naming the pack and an offset, never a panic.
    let bytes = std::fs::read(&pack).unwrap();
    for cut in [0, 5, 19, 40, bytes.len() / 2, bytes.len() - 1] {
        let p = scratch.write("cut.rwpack", &bytes[..cut]);
        let d = rewind(&[s("replay"), s(&p), s("-q")]);
        assert_eq!(d.code, Some(2), "cut {cut}: {}", d.describe());
        let want = format!("{}: corrupt pack at offset ", p.display());
        let not_pack = cut < 8;
        assert!(
            d.stderr.contains(&want) || not_pack,
            "cut {cut}: {}",
            d.describe()
        );
        assert_eq!(d.stderr.lines().count(), 1, "cut {cut}: {}", d.describe());
    }
    let mut flipped = bytes.clone();
    let at = bytes.len() - 20;
    flipped[at] ^= 0x55;
    let p = scratch.write("flipped.rwpack", &flipped);
    let dir = scratch.path("flipped");
    let d = rewind(&[s("unpack"), s(&p), s("-C"), s(&dir)]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr.contains("corrupt pack at offset ") && d.stderr.contains("guest.elf"),
        "{}",
        d.describe()
    );
    // The damaged file is not left behind.
    assert!(!dir.join("guest.elf").exists());

    let ilen = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let index = String::from_utf8(bytes[20..20 + ilen].to_vec()).unwrap();
    let evil = index.replacen("\"guest.elf\"", "\"../x.elf\"", 1);
    assert_eq!(evil.len(), index.len() - 1);
    let mut forged = bytes[..12].to_vec();
    forged.extend_from_slice(&(evil.len() as u32).to_le_bytes());
    forged.extend_from_slice(&crc32fast::hash(evil.as_bytes()).to_le_bytes());
    forged.extend_from_slice(evil.as_bytes());
    forged.extend_from_slice(&bytes[20 + ilen..]);
    let p = scratch.write("evil.rwpack", &forged);
    let d = rewind(&[s("unpack"), s(&p), s("-C"), s(scratch.path("evil"))]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(
        d.stderr
            .contains("corrupt pack at offset 20: file 3 has an unsafe name \"../x.elf\""),
        "{}",
        d.describe()
    );
    assert!(!scratch.path("x.elf").exists());
}
