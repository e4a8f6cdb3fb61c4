//! Record a session and replay it through the boundary alone (no machine).

use super::*;
use rewind_log::{Event, TraceHeader};

fn writer(dir: &tempfile::TempDir) -> (PathBuf, TraceWriter) {
    let p = dir.path().join("t.rwtrace");
    let h = TraceHeader::new("0.1.0", serde_json::Value::Null, 0, vec![], 0);
    let w = TraceWriter::create(&p, &h).unwrap();
    (p, w)
}

/// Record a session with serial input, a warp, a device event, a state check and a guest
/// exit; replay must hand back the same values at the same icounts, without waiting.
#[test]
fn record_then_replay_gives_the_same_inputs_at_the_same_icounts() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = writer(&dir);
    let checks = CheckSettings {
        interval: 1000,
        registers_every: 1,
    };
    let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
    assert_eq!(b.mode(), Mode::Record);
    let t0 = b.host_clock_ns(0);
    let mut seed = [0u8; 8];
    b.random(0, &mut seed);
    let tx = b.sender();
    tx.send(HostEvent::Serial(b"abc".to_vec())).unwrap();
    tx.send(HostEvent::Device(DeviceEvent::Input {
        device: 1,
        kind: 1,
        code: 30,
        value: 1,
    }))
    .unwrap();
    b.checkpoint(100);
    let mut out = Vec::new();
    assert_eq!(b.take_serial_input(100, 2, &mut out), 2);
    assert!(b.take_device_event(100).is_some());
    // A second checkpoint at the same icount takes no new host events.
    tx.send(HostEvent::Shutdown(ShutdownCause::Sigterm))
        .unwrap();
    b.checkpoint(100);
    assert_eq!(b.take_shutdown_request(100), None);
    assert_eq!(b.idle(100, Some(5_000_000_000)), Some(5_000_000_000));
    b.checkpoint(100);
    assert_eq!(b.take_serial_input(100, 16, &mut out), 1);
    assert_eq!(out, b"abc");
    assert_eq!(b.next_check_icount(), Some(1000));
    assert!(!b.state_check_due(999));
    assert!(b.state_check_due(1000));
    b.state_check(1000, 0x1234, &[("pc", 0x8000_0000), ("a0", 7)]);
    b.guest_request(1200, GuestRequest::Exit(3));
    assert!(b.finish_recording(1200, 0x99).unwrap().unwrap() > 0);
    drop(b);

    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    assert_eq!(r.mode(), Mode::Replay);
    assert!(!r.is_interactive());
    assert_eq!(r.host_clock_ns(0), t0);
    let mut seed2 = [0u8; 8];
    r.random(0, &mut seed2);
    assert_eq!(seed, seed2);
    assert_eq!(r.next_event_icount(), Some(100));
    r.checkpoint(50);
    let mut out2 = Vec::new();
    // Nothing is delivered before the logged icount.
    assert_eq!(r.take_serial_input(50, 16, &mut out2), 0);
    r.check_position(50);
    assert!(!r.has_failure());
    r.checkpoint(100);
    assert_eq!(r.take_shutdown_request(100), None);
    assert_eq!(r.take_serial_input(100, 16, &mut out2), 2);
    assert_eq!(
        r.take_device_event(100),
        Some(DeviceEvent::Input {
            device: 1,
            kind: 1,
            code: 30,
            value: 1
        })
    );
    // The 5 s warp is applied at once.
    let start = Instant::now();
    assert_eq!(r.idle(100, Some(5_000_000_000)), Some(5_000_000_000));
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(r.take_serial_input(100, 16, &mut out2), 1);
    assert_eq!(out2, b"abc");
    r.check_position(100);
    assert_eq!(r.next_event_icount(), Some(1000));
    assert!(r.state_check_due(1000));
    r.state_check(1000, 0x1234, &[("pc", 0x8000_0000), ("a0", 7)]);
    assert!(!r.has_failure());
    r.guest_request(1200, GuestRequest::Exit(3));
    r.finish_replay(1200, 0x99).unwrap();
}

/// Warps to the timer deadline follow from guest state: they cost no log bytes unless an
/// event follows at the same icount, and replay derives them.
#[test]
fn warps_to_the_deadline_are_implied_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = writer(&dir);
    let checks = CheckSettings {
        interval: 0,
        registers_every: 1,
    };
    let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
    for i in 1..=1000u64 {
        b.checkpoint(i * 10);
        assert_eq!(b.idle(i * 10, Some(1_000_000)), Some(1_000_000));
    }
    b.guest_request(20_000, GuestRequest::Exit(0));
    b.finish_recording(20_000, 1).unwrap();
    drop(b);
    let mut reader = TraceReader::open(&p).unwrap();
    let mut warps = 0;
    while let Some(e) = reader.next_event().unwrap() {
        warps += usize::from(matches!(e.event, Event::IdleWarp { .. }));
    }
    assert_eq!(warps, 0, "implied warps were logged");

    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    for i in 1..=1000u64 {
        r.checkpoint(i * 10);
        assert_eq!(r.idle(i * 10, Some(1_000_000)), Some(1_000_000));
    }
    assert!(!r.has_failure());
    r.guest_request(20_000, GuestRequest::Exit(0));
    r.finish_replay(20_000, 1).unwrap();
}

#[test]
fn a_request_the_log_does_not_hold_is_a_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = writer(&dir);
    let mut b = Boundary::record(&BoundaryConfig::default(), w, CheckSettings::default()).unwrap();
    b.host_clock_ns(0);
    b.guest_request(500, GuestRequest::Exit(0));
    b.finish_recording(500, 1).unwrap();
    drop(b);

    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    r.host_clock_ns(0);
    // The guest asks for random bytes the recording never gave it.
    let mut buf = [0u8; 4];
    r.random(10, &mut buf);
    let Some(ReplayStop::Diverged(d)) = r.take_failure() else {
        panic!("no divergence");
    };
    assert_eq!(d.icount, 10);
    assert_eq!(d.asked, "4 random bytes");
    let next = d.log_next.as_ref().unwrap();
    assert_eq!(
        (next.kind, next.icount),
        (rewind_log::EventKind::GuestExit, 500)
    );
    assert_eq!(d.recent.len(), 1);
    assert_eq!(d.recent[0].kind, rewind_log::EventKind::ClockRead);
    let text = d.to_string();
    assert!(
        text.starts_with("replay diverged at instruction 10\n"),
        "{text}"
    );
    assert!(
        text.contains("GuestExit at instruction 500 (file offset 0x"),
        "{text}"
    );

    // Running past the logged exit is caught at the next checkpoint.
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    r.host_clock_ns(0);
    r.check_position(499);
    assert!(!r.has_failure());
    r.check_position(501);
    assert!(matches!(r.take_failure(), Some(ReplayStop::Diverged(_))));
}

/// Snapshot marks are invisible to replay, and [`mark_positions`] gives each the position
/// a replay has once it has consumed every event before the mark.
#[test]
fn snapshot_marks_are_skipped_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = writer(&dir);
    let checks = CheckSettings {
        interval: 100,
        registers_every: 0,
    };
    let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
    b.host_clock_ns(0);
    assert_eq!(b.snapshot_mark(0), Some(0));
    b.state_check(100, 7, &[]);
    assert_eq!(b.snapshot_mark(100), Some(1));
    // Two marks in a row, then an implied warp written before a later event at 300.
    assert_eq!(b.snapshot_mark(200), Some(2));
    b.checkpoint(300);
    assert_eq!(b.idle(300, Some(50)), Some(50));
    assert_eq!(b.snapshot_mark(300), Some(3));
    b.set_pause_at_limit(true);
    b.end_of_recording(300);
    b.set_pause_at_limit(false);
    b.guest_request(400, GuestRequest::Exit(0));
    b.finish_recording(400, 1).unwrap();
    drop(b);

    let marks = mark_positions(&mut TraceReader::open(&p).unwrap()).unwrap();
    assert_eq!(
        marks.iter().map(|m| (m.seq, m.icount)).collect::<Vec<_>>(),
        [(0, 0), (1, 100), (2, 200), (3, 300)]
    );
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    r.host_clock_ns(0);
    assert_eq!(r.replay_position().unwrap(), marks[0].position);
    assert!(r.state_check_due(100));
    r.state_check(100, 7, &[]);
    let at_100 = r.replay_position().unwrap();
    assert_eq!(at_100, marks[1].position);
    assert_eq!(at_100.last_good_check, Some(100));
    // Nothing is logged between 100 and 300 but marks: both stand before the warp.
    assert_eq!(marks[2].position, at_100);
    assert_eq!(r.idle(300, Some(50)), Some(50));
    assert_eq!(r.replay_position().unwrap(), marks[3].position);
    // The paused limit logged no end of recording.
    assert_eq!(r.take_shutdown_request(300), None);
    r.guest_request(400, GuestRequest::Exit(0));
    assert!(!r.has_failure());
    r.finish_replay(400, 1).unwrap();
    // A replay resumed at any mark reads the same events on.
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    r.seek_replay(&marks[1].position).unwrap();
    assert_eq!(r.idle(300, Some(50)), Some(50));
    r.guest_request(400, GuestRequest::Exit(0));
    r.finish_replay(400, 1).unwrap();
}

#[test]
fn serial_input_is_delivered_only_as_room_allows() {
    let mut b = Boundary::detached();
    b.sender()
        .send(HostEvent::Serial(b"hello".to_vec()))
        .unwrap();
    let mut out = Vec::new();
    // Not seen before a checkpoint.
    assert_eq!(b.take_serial_input(0, 16, &mut out), 0);
    b.checkpoint(10);
    assert_eq!(b.take_serial_input(10, 2, &mut out), 2);
    assert_eq!(out, b"he");
    assert_eq!(b.queued_serial_input(), 3);
    assert_eq!(b.take_serial_input(20, 16, &mut out), 3);
    assert_eq!(out, b"hello");
}

#[test]
fn file_backend_queues_the_whole_file() {
    let path = std::env::temp_dir().join(format!("rewind-serial-in-{}", std::process::id()));
    std::fs::write(&path, b"abc").unwrap();
    let mut b = Boundary::new(&BoundaryConfig {
        serial: SerialInput::File(path.clone()),
        signals: false,
    })
    .unwrap();
    assert!(!b.is_interactive());
    let mut out = Vec::new();
    b.take_serial_input(0, 100, &mut out);
    assert_eq!(out, b"abc");
    let _ = std::fs::remove_file(&path);
    let missing = PathBuf::from("/nonexistent/rewind-input");
    let err = Boundary::new(&BoundaryConfig {
        serial: SerialInput::File(missing),
        signals: false,
    })
    .unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/rewind-input: "),
        "{err}"
    );
}

#[test]
fn first_shutdown_request_wins_and_is_taken_once() {
    let mut b = Boundary::detached();
    let tx = b.sender();
    tx.send(HostEvent::Shutdown(ShutdownCause::QuitKey))
        .unwrap();
    tx.send(HostEvent::Shutdown(ShutdownCause::Sigterm))
        .unwrap();
    b.checkpoint(5);
    assert_eq!(b.take_shutdown_request(5), Some(ShutdownCause::QuitKey));
    assert_eq!(b.take_shutdown_request(6), None);
}

#[test]
fn idle_without_live_input_jumps_to_the_deadline_or_gives_up() {
    let mut b = Boundary::detached();
    assert_eq!(b.idle(0, Some(1_000_000_000)), Some(1_000_000_000));
    assert_eq!(b.idle(0, None), None);
}

#[test]
fn idle_with_live_input_waits_for_it() {
    let mut b = Boundary::detached();
    b.interactive = true;
    let tx = b.sender();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(HostEvent::Serial(b"x".to_vec())).unwrap();
    });
    let warp = b.idle(0, Some(10_000_000_000)).unwrap();
    t.join().unwrap();
    assert!((15_000_000..5_000_000_000).contains(&warp), "warp {warp}");
    assert_eq!(b.queued_serial_input(), 1);
    // A deadline that passes with no input warps exactly to it.
    assert_eq!(b.idle(0, Some(1_000_000)), Some(1_000_000));
    // End of input makes the console non-interactive.
    b.sender().send(HostEvent::SerialClosed).unwrap();
    b.checkpoint(0);
    assert!(!b.is_interactive());
}

#[test]
fn random_fills_the_buffer() {
    let mut b = Boundary::detached();
    let mut x = [0u8; 64];
    b.random(0, &mut x);
    assert!(x.iter().any(|&v| v != 0));
    assert!(b.host_clock_ns(0) > 1_600_000_000_000_000_000);
}

/// Captured audio is logged with its device in record and handed back in replay, where the
/// capture file is not opened; playback is written to the WAV in both modes.
#[test]
fn audio_capture_is_logged_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (p, w) = writer(&dir);
    let fmt = AudioFormat {
        rate: 8000,
        channels: 1,
        sample: AudioSample::S16,
    };
    let input = dir.path().join("in.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wr = hound::WavWriter::create(&input, spec).unwrap();
    for s in [100i16, -200, 300] {
        wr.write_sample(s).unwrap();
    }
    wr.finalize().unwrap();
    let mut b = Boundary::record(&BoundaryConfig::default(), w, CheckSettings::default()).unwrap();
    let out1 = dir.path().join("o1.wav");
    let cfg = AudioDevConfig {
        id: "a0".into(),
        out: Some(out1.clone()),
        input: Some(input.clone()),
    };
    b.open_audio(5, &cfg).unwrap();
    let mut got = [0u8; 8];
    b.audio_capture(40, 5, fmt, &mut got);
    assert_eq!(&got[..6], &[100, 0, 0x38, 0xff, 0x2c, 0x01]);
    assert_eq!(&got[6..], &[0, 0]);
    // A device without an audiodev captures silence (logged too).
    let mut quiet = [9u8; 2];
    b.audio_capture(41, 6, fmt, &mut quiet);
    assert_eq!(quiet, [0, 0]);
    b.audio_playback(5, fmt, 0, &[1, 2, 3, 4]);
    b.finish_recording(50, 0).unwrap();
    drop(b);

    std::fs::remove_file(&input).unwrap();
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    let out2 = dir.path().join("o2.wav");
    r.open_audio(
        5,
        &AudioDevConfig {
            out: Some(out2.clone()),
            ..cfg
        },
    )
    .unwrap();
    let mut again = [0u8; 8];
    r.audio_capture(40, 5, fmt, &mut again);
    assert_eq!(again, got);
    let mut quiet = [9u8; 2];
    r.audio_capture(41, 6, fmt, &mut quiet);
    assert_eq!(quiet, [0, 0]);
    r.audio_playback(5, fmt, 0, &[1, 2, 3, 4]);
    assert!(r.take_failure().is_none());
    // A capture of another length is a divergence.
    let mut r2 = Boundary::replay(TraceReader::open(&p).unwrap());
    let mut short = [0u8; 4];
    r2.audio_capture(40, 5, fmt, &mut short);
    assert!(r2.take_failure().is_some());
    drop(r);
    assert_eq!(std::fs::read(&out1).unwrap(), std::fs::read(&out2).unwrap());
}
