//! virtio-blk state in snapshots: Linux records its ext4 disk test; the replay is stopped where
//! the disk has requests in flight, and a fresh replayer restored there (through the snapshot
//! file encoding) completes them and reaches the same end as the uninterrupted replay: same
//! console, state hash and device states (the overlay included). Skips without the Linux
//! assets (`scripts/linux-guest.sh`) or e2fsprogs.

use std::path::{Path, PathBuf};
use std::process::Command;

use rewind_devices::virtio::{blk, saved_model_state};
use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::blk::DriveConfig;
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::snapshot;
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, RunOutcome, SerialOutput, VirtioDevice,
};

fn linux_assets() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/linux");
    let ok = ["fw_jump.bin", "Image", "initrd.cpio.gz"]
        .iter()
        .all(|f| dir.join(f).is_file());
    if !ok {
        eprintln!(
            "{}: no Linux assets (scripts/linux-guest.sh): skipped",
            dir.display()
        );
    }
    ok.then_some(dir)
}

fn mkfs() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mkfs.ext4"))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("mkfs.ext4 (e2fsprogs) not installed: skipped");
    }
    found
}

/// Requests in flight on the disk (the first device: the last transport).
fn in_flight(m: &Machine) -> usize {
    let devices = m.bus().save().devices;
    let (name, state) = devices.last().expect("a virtio slot");
    assert_eq!(name, "virtio-blk");
    saved_model_state(state)
        .and_then(|model| blk::saved_in_flight(&model))
        .expect("a virtio-blk state")
}

#[test]
fn snapshots_with_disk_requests_in_flight_restore_and_complete_identically() {
    let Some(assets) = linux_assets() else { return };
    let Some(mkfs) = mkfs() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("known.txt"), "known\n").unwrap();
    let img = dir.path().join("disk.img");
    let st = Command::new(mkfs)
        .args(["-q", "-F", "-E", "root_owner=0:0", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("16M")
        .status()
        .unwrap();
    assert!(st.success());
    let base = std::fs::read(&img).unwrap();

    let trace = dir.path().join("blk.rwtrace");
    let mut config = MachineConfig {
        ram_size: 512 << 20,
        bios: Some(ImageSource::file(assets.join("fw_jump.bin"))),
        kernel: Some(ImageSource::file(assets.join("Image"))),
        initrd: Some(ImageSource::file(assets.join("initrd.cpio.gz"))),
        append: Some("console=ttyS0 earlycon rdinit=/init rewind.test=blk".into()),
        serial_output: SerialOutput::Capture,
        virtio: vec![VirtioDevice::Blk(DriveConfig {
            file: img.clone(),
            readonly: false,
            overlay: false,
            id: None,
            serial: None,
        })],
        ..MachineConfig::default()
    };
    let checks = CheckSettings {
        interval: 1_000_000,
        registers_every: 16,
    };
    let header = prepare_recording(&mut config, checks).unwrap();
    let w = TraceWriter::create(&trace, &header).unwrap();
    let mut rec = Machine::record(config, w, checks).unwrap();
    assert_eq!(rec.run(None).unwrap(), RunOutcome::Exited(0));
    rec.finish_recording().unwrap();
    let recorded = rec.captured_output().to_vec();
    let console = String::from_utf8_lossy(&recorded);
    assert!(
        console.contains("--- rewind.test blk passed ---"),
        "{console}"
    );
    drop(rec);

    let replayer = || {
        let reader = TraceReader::open(&trace).unwrap();
        let (config, _) = replay_config(reader.header(), &|_| None).unwrap();
        Machine::replay(config, reader, SerialOutput::Capture).unwrap()
    };
    // The uninterrupted replay, stopped at a few points with requests in flight.
    let mut full = replayer();
    let mut states = Vec::new();
    let mut step = 20_000_000;
    while states.len() < 3 {
        match full.run(Some(step)).unwrap() {
            RunOutcome::InstructionLimit => {}
            other => panic!("the replay ended ({other:?}) with {} stops", states.len()),
        }
        if in_flight(&full) > 0 {
            states.push(full.snapshot(None).unwrap());
            step = 7_000_001;
        } else if String::from_utf8_lossy(full.captured_output()).contains("blk size:") {
            // The disk is in use: look closely.
            step = 1_000_003;
        }
    }
    assert_eq!(full.run(None).unwrap(), RunOutcome::Exited(0));
    full.finish_replay().unwrap();
    assert_eq!(full.captured_output(), &recorded[..]);
    let end = (full.icount(), full.state_hash(), full.bus().save());

    for snap in &states {
        let snap = snapshot::decode(&snapshot::encode(snap).unwrap()).unwrap();
        let mut m = replayer();
        m.restore(&snap).unwrap();
        assert!(in_flight(&m) > 0);
        assert_eq!(m.bus().save(), snap.bus);
        assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
        m.finish_replay().unwrap();
        assert_eq!((m.icount(), m.state_hash(), m.bus().save()), end);
    }
    assert_eq!(
        std::fs::read(&img).unwrap(),
        base,
        "the base image was written"
    );
}
