//! Helpers shared by rewind-debug's integration tests: the embedded demo guest, recording it,
//! and opening a replay of the recording.

use std::path::Path;
use std::sync::Arc;

use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::{
    CheckSettings, ImageSource, Machine, MachineConfig, RunOutcome, SerialOutput,
};

/// The demo guest (about 1.55M instructions, exits by itself).
pub static DEMO: &[u8] = include_bytes!("../../../../guests/prebuilt/demo.elf");

/// Frequent state checks (with registers), so replays check themselves often.
pub const CHECKS: CheckSettings = CheckSettings {
    interval: 100_000,
    registers_every: 2,
};

/// The demo guest on a 16 MiB machine, output captured.
pub fn demo_config() -> MachineConfig {
    MachineConfig {
        kernel: Some(ImageSource::Embedded {
            name: "demo.elf".into(),
            bytes: Arc::from(DEMO),
        }),
        serial_output: SerialOutput::Capture,
        ram_size: 16 << 20,
        ..MachineConfig::default()
    }
}

/// The images a demo trace names.
pub fn embedded(name: &str) -> Option<Arc<[u8]>> {
    (name == "demo.elf").then(|| Arc::from(DEMO))
}

/// Record the demo to `path` (it exits by itself).
pub fn record_demo(path: &Path) {
    record_demo_with(path, CHECKS);
}

/// Record the demo to `path` with these state checks (another header: another trace id).
pub fn record_demo_with(path: &Path, checks: CheckSettings) {
    let mut config = demo_config();
    let header = prepare_recording(&mut config, checks).unwrap();
    let w = TraceWriter::create(path, &header).unwrap();
    let mut m = Machine::record(config, w, checks).unwrap();
    assert_eq!(m.run(Some(50_000_000)).unwrap(), RunOutcome::Exited(0));
    m.finish_recording().unwrap();
}

/// A replay of the demo trace at `path`.
pub fn replayer(path: &Path) -> Machine {
    let reader = TraceReader::open(path).unwrap();
    let (config, _) = replay_config(reader.header(), &embedded).unwrap();
    Machine::replay(config, reader, SerialOutput::Capture).unwrap()
}
