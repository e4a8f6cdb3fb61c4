//! Packs are untrusted input: a pack cut short at any offset, with any byte flipped, or with a
//! forged index is an error (never a panic, never a file outside the target directory, never
//! a file that does not match its hash left behind); an intact pack unpacks to the same bytes.

use std::path::Path;
use std::sync::Arc;

use rewind_machine::pack::{self, PackError, PackReader, PackSource, Role, SourceData};

fn sources() -> Vec<PackSource> {
    let trace: Arc<[u8]> = Arc::from((0..3000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    let image: Arc<[u8]> = Arc::from(vec![0x5au8; 5000]);
    vec![
        PackSource {
            data: SourceData::Bytes(trace),
            name: "t.rwd".into(),
            role: Role::Trace,
        },
        PackSource {
            data: SourceData::Bytes(image.clone()),
            name: "kernel.elf".into(),
            role: Role::Image,
        },
        // The same image under another name: stored once.
        PackSource {
            data: SourceData::Bytes(image),
            name: "copy.elf".into(),
            role: Role::Image,
        },
    ]
}

fn unpack_bytes(dir: &Path, bytes: &[u8]) -> Result<Vec<std::path::PathBuf>, PackError> {
    let p = dir.join("p.rwpack");
    std::fs::write(&p, bytes).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let r = PackReader::open(&p).and_then(|mut r| r.unpack(&out));
    if r.is_err() {
        // Whatever was written is only what matched its hash.
        for e in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name == "t.rwd" || name == "kernel.elf", "left {name}");
        }
    }
    r
}

#[test]
fn an_intact_pack_round_trips_and_any_damage_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("good.rwpack");
    let entries = pack::write(&p, &sources(), false).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(pack::is_pack(&p));
    // Not over an existing file unless asked.
    assert!(pack::write(&p, &sources(), false).is_err());
    let bytes = std::fs::read(&p).unwrap();
    let files = unpack_bytes(dir.path(), &bytes).unwrap();
    assert_eq!(files.len(), 2);
    for (f, e) in files.iter().zip(&entries) {
        let b = std::fs::read(f).unwrap();
        assert_eq!(blake3::hash(&b).to_hex().to_string(), e.blake3);
    }
    for cut in 0..bytes.len() {
        let e = unpack_bytes(dir.path(), &bytes[..cut]).expect_err("a cut pack");
        assert!(matches!(e, PackError::Corrupt { .. }), "cut at {cut}: {e}");
    }
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        // A flip in a zstd frame's unused bits may decode to the same bytes; the hash says.
        if let Ok(files) = unpack_bytes(dir.path(), &b) {
            for (f, e) in files.iter().zip(&entries) {
                let got = blake3::hash(&std::fs::read(f).unwrap())
                    .to_hex()
                    .to_string();
                assert_eq!(got, e.blake3, "flip at {at}");
            }
        }
    }
}
