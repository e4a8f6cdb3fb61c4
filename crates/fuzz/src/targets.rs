//! The fuzz targets and the valid inputs they start from. Fixtures (a machine, a replay
//! session, a gdb connection) are built once per thread and reused; a target must leave them
//! usable whatever it was fed.

use std::cell::RefCell;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_debug::control::Controller;
use rewind_debug::gdb::GdbConnection;
use rewind_debug::Session;
use rewind_log::{TraceReader, TraceWriter};
use rewind_machine::record::{prepare_recording, replay_config};
use rewind_machine::seek::Seeker;
use rewind_machine::snapshot::{self, Snapshot};
use rewind_machine::{loader, sidecar};
use rewind_machine::{CheckSettings, ImageSource, Machine, MachineConfig, SerialOutput};

/// The demo guest (it prints, reads the console, and exits by itself).
pub static DEMO: &[u8] = include_bytes!("../../../guests/prebuilt/demo.elf");
/// The benchmark guest (another ELF layout for the loader).
pub static BENCH: &[u8] = include_bytes!("../../../guests/prebuilt/bench.elf");

/// Instructions a fuzzed trace is replayed for at most (a few milliseconds).
const REPLAY_BUDGET: u64 = 500_000;
/// State checks of the seed recordings: frequent, with registers.
const CHECKS: CheckSettings = CheckSettings {
    interval: 50_000,
    registers_every: 2,
};

fn embedded(name: &str) -> Option<Arc<[u8]>> {
    (name == "demo.elf").then(|| Arc::from(DEMO))
}

/// The demo on a 16 MiB machine, output captured, no host input.
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

/// Scratch directory of this thread (targets that need a file write it here).
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    DIR.with(|d| d.path().to_path_buf())
}

fn write_scratch(name: &str, data: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    // A fuzz input that cannot be written is not a finding: the reader then sees no file.
    let _ = std::fs::write(&p, data);
    p
}

/// Record the demo for `instructions` into `path`.
fn record_demo(path: &Path, instructions: u64) {
    let mut config = demo_config();
    let header = prepare_recording(&mut config, CHECKS).expect("recording header");
    let w = TraceWriter::create_overwrite(path, &header).expect("trace file");
    let mut m = Machine::record(config, w, CHECKS).expect("recording machine");
    // The instruction limit is logged as the end of the recording by the run itself.
    m.run(Some(instructions)).expect("recording runs");
    m.finish_recording().expect("trace finished");
}

/// A recording of the demo (made once per thread), for the replay-based fixtures.
fn demo_trace() -> PathBuf {
    thread_local! {
        static TRACE: PathBuf = {
            let p = scratch().join("demo-fixture.rwtrace");
            record_demo(&p, 2_000_000);
            p
        };
    }
    TRACE.with(Clone::clone)
}

/// A replay session of [`demo_trace`], paused.
fn replay_controller() -> Controller {
    let trace = demo_trace();
    let reader = TraceReader::open(&trace).expect("fixture trace");
    let (config, _) = replay_config(reader.header(), &embedded).expect("fixture config");
    let m = Machine::replay(config, reader, SerialOutput::Capture).expect("replay machine");
    let seeker = Seeker::new(m, 500_000).expect("seeker");
    Controller::new(Session::new(seeker, Some(trace)), true)
}

// ---------------------------------------------------------------------------------------------
// Targets.

/// A trace file: open, read every event, statistics, snapshot-mark positions, and a replay of
/// at most [`REPLAY_BUDGET`] instructions when its header describes a machine.
pub fn trace(data: &[u8]) {
    let path = write_scratch("fuzz.rwtrace", data);
    let Ok(mut r) = TraceReader::open(&path) else {
        return;
    };
    let mut n = 0u64;
    while let Ok(Some(_)) = r.next_event() {
        n += 1;
        assert!(n < 10_000_000, "a small file gave ten million events");
    }
    if let Ok(mut r) = TraceReader::open(&path) {
        let _ = rewind_log::dump::stats(&mut r);
    }
    if let Ok(mut r) = TraceReader::open(&path) {
        let _ = rewind_replay::mark_positions(&mut r);
    }
    let Ok(reader) = TraceReader::open(&path) else {
        return;
    };
    // Only machines the fixture can build quickly: small RAM, the embedded demo.
    let Ok((config, _)) = replay_config(reader.header(), &embedded) else {
        return;
    };
    if config.ram_size > 64 << 20 {
        return;
    }
    let Ok(mut m) = Machine::replay(config, reader, SerialOutput::Null) else {
        return;
    };
    if let Ok(rewind_machine::RunOutcome::Exited(_) | rewind_machine::RunOutcome::HostQuit(_)) =
        m.run(Some(REPLAY_BUDGET))
    {
        let _ = m.finish_replay();
    }
}

thread_local! {
    /// The machine snapshots are restored into (run mode, the demo, reset state at first).
    static MACHINE: RefCell<Machine> =
        RefCell::new(Machine::new(demo_config()).expect("fixture machine"));
}

/// A snapshot file: decode, and restore what decodes into a machine, which must then still
/// run.
pub fn snapshot(data: &[u8]) {
    let Ok(snap) = snapshot::decode(data) else {
        return;
    };
    MACHINE.with(|m| {
        let mut m = m.borrow_mut();
        if m.restore(&snap).is_ok() {
            let _ = m.state_hash();
            let _ = m.run(Some(1000));
        }
    });
}

/// The recording's snapshot file (sidecar): index, and every snapshot loaded over the reset
/// RAM of the seed recording; the first one restored.
pub fn sidecar(data: &[u8]) {
    let path = write_scratch("fuzz.snapshots", data);
    let _ = sidecar::read_index(&path);
    let seed = seed_sidecar();
    let Ok(snaps) = sidecar::load(
        &path,
        &seed.id,
        Path::new("fuzz.rwtrace"),
        sidecar::Select::All,
        &seed.reset.ram,
    ) else {
        return;
    };
    if let Some(s) = snaps.first() {
        MACHINE.with(|m| {
            let _ = m.borrow_mut().restore(s);
        });
    }
}

/// A pack (`rewind pack`): header and index checked, every file unpacked into a scratch
/// directory (emptied first) and checked against its size and hash.
pub fn pack(data: &[u8]) {
    let path = write_scratch("fuzz.rwpack", data);
    let dir = scratch().join("unpacked");
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(mut r) = rewind_machine::pack::PackReader::open(&path) {
        let _ = r.unpack(&dir);
    }
}

/// An ELF (or raw) kernel image: parsed as the loader does, and checked against RAM.
pub fn elf(data: &[u8]) {
    let _ = loader::is_elf(data);
    for rebase in [None, Some(0x8000_0000)] {
        if let Ok(image) = loader::parse_elf(data, rebase) {
            let _ = loader::check_in_ram(&image, 0x8000_0000, 16 << 20);
            let _ = (image.low(), image.high());
        }
    }
    if let Ok(image) = loader::raw_image(data, 0x8020_0000) {
        let _ = loader::check_in_ram(&image, 0x8000_0000, 16 << 20);
    }
}

/// Guest RAM of the virtqueue target: where it starts and how large it is.
const VIRTQ_RAM: (u64, u64) = (0x8000_0000, 64 << 10);
/// Bytes before the RAM contents in a virtqueue input.
const VIRTQ_HEADER: usize = 13;

/// A virtqueue as a guest driver set it up, in the descriptors the device walks: `data` gives
/// the queue's size, ring addresses and positions and the feature bits (13 bytes), then guest
/// RAM's contents. The device takes every available chain, fills its writable buffers and
/// returns it, as virtio-rng does.
pub fn virtq(data: &[u8]) {
    use rewind_devices::virtio::queue::Queue;
    if data.len() < VIRTQ_HEADER {
        return;
    }
    let u16_at = |i: usize| u16::from_le_bytes([data[i], data[i + 1]]);
    let (base, size) = VIRTQ_RAM;
    let mut ram = rewind_cpu::ram::Ram::new(base, size);
    let contents = &data[VIRTQ_HEADER..];
    let n = contents.len().min(size as usize);
    if ram.write(base, &contents[..n]).is_err() {
        return;
    }
    let mut q = Queue {
        size: u32::from(u16_at(0)),
        ready: true,
        desc: base + u64::from(u16_at(2)),
        driver: base + u64::from(u16_at(4)),
        device: base + u64::from(u16_at(6)),
        last_avail: u16_at(8),
        used_idx: u16_at(10),
    };
    let (indirect, event_idx) = (data[12] & 1 != 0, data[12] & 2 != 0);
    // Every pop takes one available entry, and at most `size` are ever available.
    for _ in 0..=1024 {
        let chain = match q.pop(&ram, indirect) {
            Ok(Some(c)) => c,
            Ok(None) | Err(_) => return,
        };
        assert!(
            chain.segments.len() <= 2 * 1024,
            "a chain longer than two tables"
        );
        let fill = vec![0xa5u8; chain.writable_len().min(4096) as usize];
        let Ok(written) = chain.write_bytes(&mut ram, &fill) else {
            return;
        };
        if q.push_used(&mut ram, chain.head, written, event_idx)
            .is_err()
        {
            return;
        }
    }
    panic!("more chains taken than the queue can hold");
}

thread_local! {
    static QMP: RefCell<Option<Controller>> = const { RefCell::new(None) };
}

/// Bytes from a QMP client: framed and parsed as the server does, every command but the
/// file ones carried out on a replay session (and the machine run a slice if resumed).
pub fn qmp(data: &[u8]) {
    QMP.with(|c| {
        let mut c = c.borrow_mut();
        let ctl = c.get_or_insert_with(replay_controller);
        let _ = rewind_debug::qmp::fuzz_client_bytes(ctl, data);
        let _ = ctl.run_pending();
        let _ = ctl.take_events();
        if ctl.quit_requested() {
            *c = None;
        }
    });
}

/// A gdb connection on a replay session, the stub's output drained by a thread.
struct GdbFixture {
    ctl: Controller,
    conn: Option<GdbConnection>,
}

fn gdb_connection(ctl: &mut Controller) -> Option<GdbConnection> {
    let listener = TcpListener::bind("127.0.0.1:0").ok()?;
    let client = TcpStream::connect(listener.local_addr().ok()?).ok()?;
    let (server, _) = listener.accept().ok()?;
    // The stub's answers go to the client side; read them so its writes never block.
    std::thread::spawn(move || {
        let mut client = client;
        let mut buf = [0u8; 4096];
        while matches!(client.read(&mut buf), Ok(n) if n > 0) {}
    });
    GdbConnection::new(server, ctl).ok()
}

thread_local! {
    static GDB: RefCell<Option<GdbFixture>> = const { RefCell::new(None) };
}

/// Bytes from a gdb client (packets, acks, interrupts) fed to the stub on a replay session;
/// a closed connection (kill, detach, error) is replaced for the next input.
pub fn gdb(data: &[u8]) {
    GDB.with(|g| {
        let mut g = g.borrow_mut();
        let fx = g.get_or_insert_with(|| {
            let mut ctl = replay_controller();
            let conn = gdb_connection(&mut ctl);
            GdbFixture { ctl, conn }
        });
        let Some(conn) = fx.conn.as_mut() else {
            *g = None;
            return;
        };
        let open = matches!(conn.incoming(&mut fx.ctl, data), Ok(true));
        let _ = fx.ctl.run_pending();
        let _ = fx.ctl.take_events();
        if !open || fx.ctl.quit_requested() {
            *g = None;
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Seeds.

/// The reset snapshot of the demo machine and two later ones (made once per thread).
fn seed_snapshots() -> (Snapshot, Vec<Snapshot>) {
    thread_local! {
        static SNAPS: (Snapshot, Vec<Snapshot>) = {
            let mut m = Machine::new(demo_config()).expect("seed machine");
            let reset = m.snapshot(None).expect("snapshot");
            let mut later = Vec::new();
            for _ in 0..2 {
                let _ = m.run(Some(60_000));
                let prev = later.last().unwrap_or(&reset);
                later.push(m.snapshot(Some(prev)).expect("snapshot"));
            }
            (reset, later)
        };
    }
    SNAPS.with(Clone::clone)
}

/// A sidecar written while recording the demo: its trace id, the reset snapshot its deltas
/// start from, and its bytes (made once per thread).
#[derive(Clone)]
struct SeedSidecar {
    id: String,
    reset: Snapshot,
    bytes: Vec<u8>,
}

fn seed_sidecar() -> SeedSidecar {
    thread_local! {
        static SIDECAR: SeedSidecar = {
            let mut config = demo_config();
            let header = prepare_recording(&mut config, CHECKS).expect("recording header");
            let id = snapshot::trace_id(&header);
            let trace = scratch().join("sidecar-seed.rwtrace");
            let w = TraceWriter::create_overwrite(&trace, &header).expect("trace file");
            let m = Machine::record(config, w, CHECKS).expect("recording machine");
            let mut seeker = Seeker::new(m, 100_000).expect("seeker");
            let _ = seeker.run(Some(350_000));
            let snaps = seeker.snapshots().to_vec();
            let p = scratch().join("seed.snapshots");
            sidecar::save(&p, &id, &snaps).expect("seed sidecar");
            SeedSidecar {
                id,
                reset: snaps[0].clone(),
                bytes: std::fs::read(&p).expect("seed sidecar"),
            }
        };
    }
    SIDECAR.with(Clone::clone)
}

/// Valid inputs of every target.
pub mod seeds {
    use super::*;

    /// A short recording of the demo (several blocks, state checks, a footer).
    pub fn trace() -> Vec<Vec<u8>> {
        let p = scratch().join("seed.rwtrace");
        record_demo(&p, 400_000);
        vec![std::fs::read(&p).expect("seed trace")]
    }

    /// Snapshot files of the demo machine at reset and later.
    pub fn snapshot() -> Vec<Vec<u8>> {
        let (reset, later) = seed_snapshots();
        std::iter::once(&reset)
            .chain(&later)
            .map(|s| snapshot::encode(s).expect("encode"))
            .collect()
    }

    /// A sidecar with two snapshots after the reset one.
    pub fn sidecar() -> Vec<Vec<u8>> {
        vec![seed_sidecar().bytes]
    }

    /// A pack of a trace-like file, a snapshot-like file and an image stored twice.
    pub fn pack() -> Vec<Vec<u8>> {
        use rewind_machine::pack::{self, PackSource, Role, SourceData};
        let file = |name: &str, role, bytes: &[u8]| PackSource {
            data: SourceData::Bytes(Arc::from(bytes)),
            name: name.into(),
            role,
        };
        let files = [
            file("t.rwtrace", Role::Trace, b"RWNDTRACE and some events"),
            file("t.rwtrace.snapshots", Role::Snapshots, &[7u8; 300]),
            file("demo.elf", Role::Image, DEMO),
            file("copy.elf", Role::Image, DEMO),
        ];
        let path = scratch().join("seed.rwpack");
        let _ = std::fs::remove_file(&path);
        pack::write(&path, &files, true).expect("seed pack");
        vec![std::fs::read(&path).expect("seed pack")]
    }

    /// The two built-in guests.
    pub fn elf() -> Vec<Vec<u8>> {
        vec![DEMO.to_vec(), BENCH.to_vec()]
    }

    /// A queue of 8 with two chains: a readable and a writable buffer, and an indirect table
    /// of two; then the same with event-idx, and an empty ring.
    pub fn virtq() -> Vec<Vec<u8>> {
        // Compact, so that mutations land on descriptors and rings rather than buffers.
        let (desc, avail, used) = (0x000u16, 0x100u16, 0x180u16);
        let mut ram = vec![0u8; 0x300];
        let put_desc =
            |ram: &mut Vec<u8>, at: usize, addr: u64, len: u32, flags: u16, next: u16| {
                ram[at..at + 8].copy_from_slice(&(addr + 0x8000_0000).to_le_bytes());
                ram[at + 8..at + 12].copy_from_slice(&len.to_le_bytes());
                ram[at + 12..at + 14].copy_from_slice(&flags.to_le_bytes());
                ram[at + 14..at + 16].copy_from_slice(&next.to_le_bytes());
            };
        // Chain 0: desc 0 (readable, NEXT) -> desc 1 (writable).
        put_desc(&mut ram, 0, 0x200, 16, 1, 1);
        put_desc(&mut ram, 16, 0x240, 64, 2, 0);
        // Chain 1: desc 2, an indirect table of two at 0x2c0.
        put_desc(&mut ram, 32, 0x2c0, 32, 4, 0);
        put_desc(&mut ram, 0x2c0, 0x200, 8, 1, 1);
        put_desc(&mut ram, 0x2d0, 0x280, 32, 2, 0);
        // Available ring: idx 2, entries 0 and 2.
        let a = usize::from(avail);
        ram[a + 2..a + 4].copy_from_slice(&2u16.to_le_bytes());
        ram[a + 4..a + 6].copy_from_slice(&0u16.to_le_bytes());
        ram[a + 6..a + 8].copy_from_slice(&2u16.to_le_bytes());
        let header = |features: u8| {
            let mut h = Vec::new();
            for v in [8u16, desc, avail, used, 0, 0] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.push(features);
            h
        };
        let with = |features: u8, ram: &[u8]| [header(features), ram.to_vec()].concat();
        vec![with(1, &ram), with(3, &ram), with(0, &ram[..0x100])]
    }

    /// A monitor conversation touching every command.
    pub fn qmp() -> Vec<Vec<u8>> {
        let mut conv = String::from("{\"execute\":\"qmp_capabilities\"}\n");
        for c in rewind_debug::qmp::command_names() {
            conv.push_str(&format!("{{\"execute\":\"{c}\",\"id\":1}}\n"));
        }
        vec![
            conv.into_bytes(),
            b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"replay-break\",\"arguments\":{\"icount\":100000}}{\"execute\":\"cont\"}\r\n{\"execute\":\"replay-seek\",\"arguments\":{\"icount\":5000}}\n{\"execute\":\"x-rewind-state\",\"id\":[1,{\"a\":null}]}\n{\"execute\":\"query-replay\"}\n".to_vec(),
        ]
    }

    /// gdb packets: the handshake, registers, memory, breakpoints, steps and reverse steps.
    pub fn gdb() -> Vec<Vec<u8>> {
        let packets = [
            "qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=riscv",
            "QStartNoAckMode",
            "?",
            "qXfer:features:read:target.xml:0,ffb",
            "g",
            "p20",
            "p1000",
            "P1=1234",
            "m80000000,40",
            "M80001000,4:01020304",
            "X80001000,0:",
            "Z0,80000010,4",
            "z0,80000010,4",
            "Z2,80001000,8",
            "vCont?",
            "vCont;s:1",
            "s",
            "bs",
            "bc",
            "c",
            "qRcmd,68656c70",
            "D",
        ];
        let frame = |p: &str| {
            let sum = p.bytes().fold(0u8, |a, b| a.wrapping_add(b));
            format!("${p}#{sum:02x}")
        };
        let all: String = packets.iter().map(|p| frame(p)).collect();
        vec![all.into_bytes(), frame("g").into_bytes()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds are valid: the trace replays to its end and matches, every snapshot decodes
    /// and restores, the sidecar loads.
    #[test]
    fn the_seeds_are_valid_inputs() {
        let trace = &seeds::trace()[0];
        let path = write_scratch("valid.rwtrace", trace);
        let reader = TraceReader::open(&path).unwrap();
        let (config, _) = replay_config(reader.header(), &embedded).unwrap();
        let mut m = Machine::replay(config, reader, SerialOutput::Null).unwrap();
        assert_eq!(
            m.run(Some(REPLAY_BUDGET)).unwrap(),
            rewind_machine::RunOutcome::InstructionLimit
        );
        assert_eq!(
            m.icount(),
            400_000,
            "the seed ends within the replay budget"
        );
        m.finish_replay().unwrap();
        let mut fixture = Machine::new(demo_config()).unwrap();
        for s in seeds::snapshot() {
            fixture.restore(&snapshot::decode(&s).unwrap()).unwrap();
        }
        let seed = seed_sidecar();
        let path = write_scratch("valid.snapshots", &seed.bytes);
        let snaps = sidecar::load(
            &path,
            &seed.id,
            Path::new("t"),
            sidecar::Select::All,
            &seed.reset.ram,
        )
        .unwrap();
        assert!(snaps.len() >= 3, "{} snapshots", snaps.len());
    }

    /// The virtqueue seed is a working queue: the device takes both chains (one through an
    /// indirect table) and returns them with their writable bytes filled.
    #[test]
    fn the_virtqueue_seed_holds_two_chains() {
        let seed = &seeds::virtq()[0];
        virtq(seed);
        let mut ram = rewind_cpu::ram::Ram::new(VIRTQ_RAM.0, VIRTQ_RAM.1);
        ram.write(VIRTQ_RAM.0, &seed[VIRTQ_HEADER..]).unwrap();
        let mut q = rewind_devices::virtio::queue::Queue {
            size: 8,
            ready: true,
            desc: VIRTQ_RAM.0,
            driver: VIRTQ_RAM.0 + 0x100,
            device: VIRTQ_RAM.0 + 0x180,
            last_avail: 0,
            used_idx: 0,
        };
        let a = q.pop(&ram, true).unwrap().unwrap();
        assert_eq!((a.head, a.segments.len(), a.writable_len()), (0, 2, 64));
        let b = q.pop(&ram, true).unwrap().unwrap();
        assert_eq!((b.head, b.segments.len(), b.writable_len()), (2, 2, 32));
        assert!(q.pop(&ram, true).unwrap().is_none());
    }
}
