//! Device state in snapshots: a snapshot whose checksum is fine but whose device state is
//! inconsistent is refused with a clear error and changes nothing; a replay restored in the
//! middle of virtio-rng I/O reaches exactly the devices' states of the uninterrupted replay.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_devices::Plic;
use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::snapshot::{self, SnapshotError};
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, RunOutcome, SerialOutput, VirtioDevice,
};

static DEMO: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");

fn demo_machine() -> Machine {
    Machine::new(MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: "demo.elf".into(),
            bytes: Arc::from(DEMO),
        }),
        serial_output: SerialOutput::Capture,
        ram_size: 16 << 20,
        ..MachineConfig::default()
    })
    .unwrap()
}

#[test]
fn inconsistent_device_state_is_refused_and_changes_nothing() {
    let mut m = demo_machine();
    m.run(Some(20_000)).unwrap();
    let good = m.snapshot(None).unwrap();
    m.run(Some(5_000)).unwrap();
    let (icount, hash, bus) = (m.icount(), m.state_hash(), m.bus().save());

    let mut bad = good.clone();
    bad.bus.plic = Plic::new(0);
    // The file's checksum covers the bad state: it decodes, and the restore refuses it.
    let decoded = snapshot::decode(&snapshot::encode(&bad).unwrap()).unwrap();
    let e = m.restore(&decoded).unwrap_err();
    assert!(matches!(e, SnapshotError::State(_)), "{e:?}");
    assert!(e.to_string().contains("plic"), "{e}");

    let mut bad = good.clone();
    bad.bus.devices[0].1.truncate(1);
    let e = m.restore(&bad).unwrap_err();
    assert!(e.to_string().contains("rtc: cannot decode"), "{e}");

    let mut bad = good.clone();
    bad.bus.devices.swap(0, 1);
    let e = m.restore(&bad).unwrap_err();
    assert!(e.to_string().contains("saved devices"), "{e}");

    // Nothing changed; the good snapshot still restores.
    assert_eq!(
        (m.icount(), m.state_hash(), m.bus().save()),
        (icount, hash, bus)
    );
    m.restore(&good).unwrap();
    assert_eq!(m.icount(), good.icount());
}

fn virtio_guest() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/build/virtio_rng.elf");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("{} not built (guests/build.sh): skipped", p.display());
        None
    }
}

#[test]
fn restores_in_the_middle_of_virtio_io_reach_the_same_device_states() {
    let Some(elf) = virtio_guest() else { return };
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("rng.rwtrace");
    let mut config = MachineConfig {
        kernel: Some(ImageSource::file(&elf)),
        serial_output: SerialOutput::Capture,
        virtio: vec![VirtioDevice::Rng],
        ..MachineConfig::default()
    };
    let checks = CheckSettings {
        interval: 10_000,
        registers_every: 1,
    };
    let header = prepare_recording(&mut config, checks).unwrap();
    let w = TraceWriter::create(&trace, &header).unwrap();
    let mut rec = Machine::record(config, w, checks).unwrap();
    assert_eq!(rec.run(None).unwrap(), RunOutcome::Exited(0));
    rec.finish_recording().unwrap();
    let recorded = rec.captured_output().to_vec();

    let replayer = || {
        let reader = TraceReader::open(&trace).unwrap();
        let (config, _) = replay_config(reader.header(), &|_| None).unwrap();
        Machine::replay(config, reader, SerialOutput::Capture).unwrap()
    };
    // The uninterrupted replay, with the devices' states at a few points of the I/O.
    let stops = [23_000u64, 23_700, 30_000, 40_000, 60_000, 200_000];
    let mut full = replayer();
    let mut states = Vec::new();
    let mut at = 0;
    for &s in &stops {
        full.run(Some(s - at)).unwrap();
        at = s;
        states.push(full.snapshot(None).unwrap());
    }
    assert_eq!(full.run(None).unwrap(), RunOutcome::Exited(0));
    full.finish_replay().unwrap();
    assert_eq!(full.captured_output(), &recorded[..]);
    let end = (full.icount(), full.state_hash(), full.bus().save());
    // The rng device is in use at the stops: its saved state differs from one stop to the next.
    let rng = |s: &rewind_machine::Snapshot| s.bus.devices.last().unwrap().1.clone();
    assert_ne!(rng(&states[0]), rng(&states[3]));

    for snap in &states {
        // Through the file encoding, into a fresh replayer.
        let snap = snapshot::decode(&snapshot::encode(snap).unwrap()).unwrap();
        let mut m = replayer();
        m.restore(&snap).unwrap();
        assert_eq!(m.bus().save(), snap.bus);
        assert_eq!(m.run(None).unwrap(), RunOutcome::Exited(0));
        m.finish_replay().unwrap();
        assert_eq!((m.icount(), m.state_hash(), m.bus().save()), end);
    }
}
