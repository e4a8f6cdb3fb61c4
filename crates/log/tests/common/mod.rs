//! Shared helpers for the trace tests.
#![allow(dead_code)]

use rewind_log::{
    Event, EventAt, GuestExitKind, ImageInfo, ImageRole, ShutdownCause, TraceHeader, TraceReader,
};

/// A header with a non-trivial configuration and two images.
pub fn header() -> TraceHeader {
    TraceHeader::new(
        "0.1.0-test",
        serde_json::json!({"machine": "virt", "ram_mb": 128, "harts": 1, "serial": ["stdio"]}),
        3,
        vec![
            ImageInfo::from_bytes(ImageRole::Bios, "fw.bin", b"firmware bytes"),
            ImageInfo::from_bytes(ImageRole::Kernel, "Image", &[0u8; 1000]),
        ],
        1_000_000,
    )
}

/// One event of every kind, with indices on both sides of the tag escape (15).
pub fn every_kind() -> Vec<Event> {
    let mut v = vec![
        Event::SerialInput {
            port: 0,
            bytes: b"ls -l\n".to_vec(),
        },
        Event::SerialInput {
            port: 14,
            bytes: vec![],
        },
        Event::SerialInput {
            port: 15,
            bytes: vec![0, 0xff, 0x1b],
        },
        Event::SerialInput {
            port: 255,
            bytes: vec![b'x'; 300],
        },
        Event::GuestExit {
            kind: GuestExitKind::Pass,
            code: 0,
        },
        Event::GuestExit {
            kind: GuestExitKind::Fail,
            code: 0xbeef,
        },
        Event::GuestExit {
            kind: GuestExitKind::Reset,
            code: 7,
        },
        Event::ClockRead {
            kind: 0,
            value_ns: 1_700_000_000_123_456_789,
        },
        Event::ClockRead {
            kind: 200,
            value_ns: u64::MAX,
        },
        Event::Random {
            bytes: (0..=255u8).collect(),
        },
        Event::Random { bytes: vec![] },
        Event::IdleWarp { ns: 0 },
        Event::IdleWarp { ns: u64::MAX },
        Event::StateHash {
            hash: 0x0123_4567_89ab_cdef,
        },
        Event::NetSent {
            device: 1,
            len: 42,
            hash: 0,
        },
        Event::NetSent {
            device: 77,
            len: u32::MAX,
            hash: u64::MAX,
        },
        Event::NetPacket {
            device: 0,
            bytes: vec![0xaa; 1514],
        },
        Event::NetPacket {
            device: 15,
            bytes: vec![1, 2, 3],
        },
        Event::InputEvent {
            device: 2,
            kind: 1,
            code: 30,
            value: 1,
        },
        Event::InputEvent {
            device: 200,
            kind: 0xffff,
            code: 0,
            value: i32::MIN,
        },
    ];
    for cause in [
        ShutdownCause::SigInt,
        ShutdownCause::SigTerm,
        ShutdownCause::CtrlAX,
        ShutdownCause::EndOfRecording,
        ShutdownCause::Monitor,
        ShutdownCause::HostReset,
        ShutdownCause::SigHup,
    ] {
        v.push(Event::HostShutdown { cause });
    }
    v.push(Event::StateRegisters {
        regs: vec![0, 1, u64::MAX, 0x8000_0000],
    });
    v.push(Event::SnapshotMark { seq: 0 });
    v.push(Event::SnapshotMark { seq: u64::MAX });
    v
}

/// Reads every event until `Ok(None)` or the first error.
pub fn read_all(r: &mut TraceReader) -> (Vec<EventAt>, Option<rewind_log::LogError>) {
    let mut out = Vec::new();
    loop {
        match r.next_event() {
            Ok(Some(e)) => out.push(e),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}
