//! Writing then reading traces gives back exactly what was written.

mod common;

use common::{every_kind, header, read_all};
use proptest::prelude::*;
use rewind_log::dump::{dump_json, dump_text, stats};
use rewind_log::{Event, EventKind, Footer, LogError, TraceReader, TraceWriter};

#[test]
fn every_event_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rwtrace");
    let h = header();
    let mut w = TraceWriter::create(&path, &h).unwrap();
    let events = every_kind();
    let mut icount = 5u64;
    let mut expected = Vec::new();
    for (i, e) in events.iter().enumerate() {
        w.push(icount, e).unwrap();
        expected.push((icount, e.clone()));
        // Same-icount events (delta 0) as well as large jumps.
        icount += if i % 3 == 0 { 0 } else { 1 << (i * 2) };
    }
    let total = w.finish(&Footer::new(icount, Some(0xfeed))).unwrap();
    assert_eq!(total, std::fs::metadata(&path).unwrap().len());

    let mut r = TraceReader::open(&path).unwrap();
    assert_eq!(r.header(), &h);
    // The footer is available before any event is read (found through the trailer).
    let f = r.footer().unwrap().clone();
    assert_eq!(f.final_icount, icount);
    assert_eq!(f.final_state_hash, Some(0xfeed));
    assert_eq!(f.total_events, events.len() as u64 + 1);
    assert_eq!(f.event_counts[&EventKind::HostShutdown], 7);
    assert_eq!(f.event_counts[&EventKind::StateRegisters], 1);
    assert_eq!(f.event_counts[&EventKind::SerialInput], 4);
    assert_eq!(f.event_counts[&EventKind::End], 1);
    let (got, err) = read_all(&mut r);
    assert!(err.is_none(), "{err:?}");
    let got: Vec<(u64, Event)> = got.into_iter().map(|e| (e.icount, e.event)).collect();
    expected.push((icount, Event::End));
    assert_eq!(got, expected);
    assert!(r.truncated().is_none());
    assert_eq!(r.next_event().unwrap(), None);
}

#[test]
fn empty_trace_has_only_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let w = TraceWriter::create(&path, &header()).unwrap();
    w.finish(&Footer::new(0, None)).unwrap();
    let mut r = TraceReader::open(&path).unwrap();
    let (got, err) = read_all(&mut r);
    assert!(err.is_none());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, Event::End);
    assert_eq!(got[0].icount, 0);
}

#[test]
fn icount_backwards_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let mut w = TraceWriter::create(&path, &header()).unwrap();
    w.push(100, &Event::IdleWarp { ns: 1 }).unwrap();
    w.push(100, &Event::IdleWarp { ns: 2 }).unwrap();
    let err = w.push(99, &Event::IdleWarp { ns: 3 }).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::IcountBackwards {
                previous: 100,
                got: 99,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("went backwards"));
    // Also across a block boundary, and for the final icount.
    w.flush().unwrap();
    assert!(matches!(
        w.push(50, &Event::IdleWarp { ns: 3 }),
        Err(LogError::IcountBackwards {
            previous: 100,
            got: 50,
            ..
        })
    ));
    assert!(matches!(
        w.finish(&Footer::new(10, None)),
        Err(LogError::IcountBackwards {
            previous: 100,
            got: 10,
            ..
        })
    ));
}

#[test]
fn end_and_oversized_events_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(dir.path().join("t"), &header()).unwrap();
    assert!(matches!(
        w.push(0, &Event::End),
        Err(LogError::InvalidEvent { .. })
    ));
    let big = Event::NetPacket {
        device: 0,
        bytes: vec![0; rewind_log::MAX_EVENT_BLOB + 1],
    };
    assert!(matches!(
        w.push(0, &big),
        Err(LogError::InvalidEvent { .. })
    ));
}

#[test]
fn overwrite_is_refused_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    std::fs::write(&path, b"precious").unwrap();
    let err = TraceWriter::create(&path, &header()).err().unwrap();
    assert!(matches!(err, LogError::AlreadyExists { .. }), "{err}");
    assert!(err.to_string().contains("already exists"));
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    let w = TraceWriter::create_overwrite(&path, &header()).unwrap();
    w.finish(&Footer::new(1, None)).unwrap();
    assert!(TraceReader::open(&path).unwrap().footer().is_some());
}

#[test]
fn dropped_writer_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    {
        let mut w = TraceWriter::create(&path, &header()).unwrap();
        w.push(10, &Event::StateHash { hash: 1 }).unwrap();
        w.flush().unwrap();
        w.push(20, &Event::StateHash { hash: 2 }).unwrap();
    }
    let mut r = TraceReader::open(&path).unwrap();
    assert!(r.footer().is_none());
    let (got, err) = read_all(&mut r);
    assert!(err.is_none());
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].icount, 20);
    assert_eq!(got[1].position.block_index, 1);
    let t = r.truncated().unwrap();
    assert_eq!(t.last_icount, Some(20));
    assert_eq!(t.bytes_lost, 0);
    assert!(!t.events_complete);
    assert!(t.to_string().contains("cut at instruction 20"), "{t}");
}

#[test]
fn serial_bytes_compress_to_a_few_bytes_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let mut w = TraceWriter::create(&path, &header()).unwrap();
    let text = b"root@rewind:~# ls -l /etc && cat /proc/cpuinfo | grep isa\n";
    let mut icount = 1_000_000u64;
    let mut seed = 12345u32;
    for i in 0..10_000 {
        // Typing: a few thousand instructions between keys, pseudo-random.
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        icount += 1000 + u64::from(seed >> 24);
        let b = text[i % text.len()];
        w.push(
            icount,
            &Event::SerialInput {
                port: 0,
                bytes: vec![b],
            },
        )
        .unwrap();
    }
    let w_header_len = {
        let json = serde_json::to_vec(&header()).unwrap();
        18 + json.len() as u64
    };
    let total = w.finish(&Footer::new(icount, None)).unwrap();
    let per_event = (total - w_header_len) as f64 / 10_000.0;
    // Raw encoding is 5 bytes (tag, 2-byte delta, length, byte); zstd must do better.
    eprintln!("{per_event:.2} bytes per event");
    assert!(per_event < 3.0, "{per_event} bytes per event");
    let s = stats(&mut TraceReader::open(&path).unwrap()).unwrap();
    assert_eq!(s.kinds[EventKind::SerialInput as usize].1.count, 10_000);
    // 5 bytes each, except the block's first event whose delta is 0 (1 byte shorter).
    assert_eq!(s.blocks, 1);
    assert_eq!(s.kinds[EventKind::SerialInput as usize].1.raw_bytes, 49_999);
    assert!(s.compressed_bytes < s.raw_bytes);
}

#[test]
fn dumps_show_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t");
    let mut w = TraceWriter::create(&path, &header()).unwrap();
    w.push(
        20001,
        &Event::SerialInput {
            port: 0,
            bytes: b"ls\n\x01".to_vec(),
        },
    )
    .unwrap();
    w.push(
        20501,
        &Event::Random {
            bytes: (0..40).collect(),
        },
    )
    .unwrap();
    w.flush().unwrap();
    w.push(30000, &Event::StateHash { hash: 0xabc }).unwrap();
    w.finish(&Footer::new(40000, None)).unwrap();

    let mut text = Vec::new();
    dump_text(
        &mut TraceReader::open(&path).unwrap(),
        &mut text,
        &Default::default(),
    )
    .unwrap();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains("20001") && lines[0].contains(r#"port=0 len=4 "ls\n\x01""#),
        "{text}"
    );
    assert!(
        lines[1].contains("Random") && lines[1].contains("000102030405060708090a0b0c0d0e0f...")
    );
    assert!(lines[2].contains("StateHash") && lines[2].contains("hash=0x0000000000000abc"));
    assert!(lines[3].contains("40000") && lines[3].contains("End"));
    // Offsets: the first block starts right after the header; second event at byte 7 of it.
    let data_start = 18 + serde_json::to_vec(&header()).unwrap().len();
    assert!(lines[1].contains(&format!("{data_start:#x}+7")), "{text}");
    assert!(text.contains("image Kernel Image (1000 bytes, blake3 "));

    let mut json = Vec::new();
    dump_json(
        &mut TraceReader::open(&path).unwrap(),
        &mut json,
        &Default::default(),
    )
    .unwrap();
    let objs: Vec<serde_json::Value> = String::from_utf8(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 6);
    assert_eq!(objs[0]["type"], "header");
    assert_eq!(objs[0]["header"]["icount_shift"], 3);
    assert_eq!(objs[1]["kind"], "SerialInput");
    assert_eq!(objs[1]["text"], "ls\n\u{1}");
    assert_eq!(objs[1]["block_offset"], data_start as u64);
    assert_eq!(objs[3]["block"], 1);
    assert_eq!(objs[5]["type"], "footer");
    assert_eq!(objs[5]["footer"]["total_events"], 4);

    let s = stats(&mut TraceReader::open(&path).unwrap()).unwrap();
    assert_eq!(s.events, 4);
    assert_eq!(s.blocks, 2);
    assert_eq!(s.icount_span, Some((20001, 40000)));
    let shown = s.to_string();
    assert!(
        shown.contains("icount span: 20001 .. 40000 (19999 instructions)"),
        "{shown}"
    );
    assert!(shown.contains("complete (footer verified)"));
}

fn arb_event() -> impl Strategy<Value = Event> {
    use rewind_log::{GuestExitKind as G, ShutdownCause as S};
    let blob = proptest::collection::vec(any::<u8>(), 0..200);
    prop_oneof![
        (any::<u8>(), blob.clone()).prop_map(|(port, bytes)| Event::SerialInput { port, bytes }),
        prop_oneof![
            Just(S::SigInt),
            Just(S::SigTerm),
            Just(S::CtrlAX),
            Just(S::EndOfRecording),
            Just(S::Monitor),
            Just(S::SigHup),
            Just(S::HostReset)
        ]
        .prop_map(|cause| Event::HostShutdown { cause }),
        (
            prop_oneof![Just(G::Pass), Just(G::Fail), Just(G::Reset)],
            any::<u16>()
        )
            .prop_map(|(kind, code)| Event::GuestExit { kind, code }),
        (any::<u8>(), any::<u64>())
            .prop_map(|(kind, value_ns)| Event::ClockRead { kind, value_ns }),
        blob.clone().prop_map(|bytes| Event::Random { bytes }),
        any::<u64>().prop_map(|ns| Event::IdleWarp { ns }),
        any::<u64>().prop_map(|hash| Event::StateHash { hash }),
        (any::<u8>(), any::<u32>(), any::<u64>()).prop_map(|(device, len, hash)| Event::NetSent {
            device,
            len,
            hash
        }),
        (any::<u8>(), blob).prop_map(|(device, bytes)| Event::NetPacket { device, bytes }),
        (any::<u8>(), any::<u16>(), any::<u16>(), any::<i32>()).prop_map(
            |(device, kind, code, value)| Event::InputEvent {
                device,
                kind,
                code,
                value
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_sequences_round_trip(
        start in any::<u32>(),
        items in proptest::collection::vec(
            (prop_oneof![0u64..3, 0u64..100_000, any::<u32>().prop_map(u64::from)], arb_event(), any::<bool>()),
            0..120),
        block_size in prop_oneof![Just(1usize), 16usize..2000, Just(64 << 10)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let mut w = TraceWriter::create(&path, &header()).unwrap();
        w.set_block_size(block_size);
        let mut icount = u64::from(start);
        let mut expected = Vec::new();
        for (delta, ev, flush) in &items {
            icount += delta;
            w.push(icount, ev).unwrap();
            expected.push((icount, ev.clone()));
            if *flush {
                w.flush().unwrap();
            }
        }
        let end = icount + 17;
        w.finish(&Footer::new(end, Some(icount))).unwrap();
        expected.push((end, Event::End));
        let mut r = TraceReader::open(&path).unwrap();
        prop_assert_eq!(r.footer().unwrap().total_events, expected.len() as u64);
        let (got, err) = read_all(&mut r);
        prop_assert!(err.is_none(), "{:?}", err);
        let got: Vec<(u64, Event)> = got.into_iter().map(|e| (e.icount, e.event)).collect();
        prop_assert_eq!(got, expected);
        prop_assert!(r.truncated().is_none());
    }
}

/// Known-answer test: the worked example of docs/log-format.md §6, byte for byte (except the
/// zstd frame, which may differ between zstd versions; its content is checked instead).
#[test]
fn worked_example_matches_the_documented_bytes() {
    use rewind_log::{ShutdownCause, TraceHeader};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.rwtrace");
    let mut h = TraceHeader::new(
        "0.1.0",
        serde_json::json!({"ram_mb": 128}),
        0,
        vec![],
        1_000_000,
    );
    h.created_unix_ms = 1_767_225_600_000;
    let mut w = TraceWriter::create(&path, &h).unwrap();
    w.push(
        20_001,
        &Event::SerialInput {
            port: 0,
            bytes: b"ls\n".to_vec(),
        },
    )
    .unwrap();
    w.push(
        20_501,
        &Event::ClockRead {
            kind: 0,
            value_ns: 1_767_225_600_000_000_000,
        },
    )
    .unwrap();
    w.push(
        1_000_000,
        &Event::StateHash {
            hash: 0x1122_3344_5566_7788,
        },
    )
    .unwrap();
    w.push(
        1_200_000,
        &Event::HostShutdown {
            cause: ShutdownCause::SigInt,
        },
    )
    .unwrap();
    w.finish(&Footer::new(1_200_000, Some(0x99aa_bbcc_ddee_ff00)))
        .unwrap();
    let b = std::fs::read(&path).unwrap();

    let json = br#"{"rewind_version":"0.1.0","machine_config":{"ram_mb":128},"icount_shift":0,"images":[],"created_unix_ms":1767225600000,"state_hash_interval":1000000}"#;
    assert_eq!(&b[..14], b"RWNDTRC\0\x01\x00\x95\x00\x00\x00");
    assert_eq!(&b[14..0xa3], json);
    assert_eq!(&b[0xa3..0xa7], [0xd5, 0x74, 0xe0, 0xc1]);
    assert_eq!(&b[0xa7..0xab], b"RWBK");
    let comp_len = u32::from_le_bytes(b[0xab..0xaf].try_into().unwrap()) as usize;
    assert_eq!(
        &b[0xaf..0xbb],
        [0x23, 0, 0, 0, 0x21, 0x4e, 0, 0, 0, 0, 0, 0]
    );
    let comp = &b[0xbf..0xbf + comp_len];
    let raw = zstd::bulk::decompress(comp, 100).unwrap();
    let expected_raw: [u8; 35] = [
        0x10, 0x00, 0x03, b'l', b's', b'\n', // SerialInput port 0, delta 0, "ls\n"
        0x40, 0xf4, 0x03, 0x00, 0x00, 0xfa, 0xed, 0x51, 0x72, 0x86, 0x18, // ClockRead
        0x02, 0xab, 0xe4, 0x3b, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // StateHash
        0x20, 0xc0, 0x9a, 0x0c, // HostShutdown SigInt, delta 200000
        0x01, 0x00, // End
    ];
    assert_eq!(raw, expected_raw);
    let footer_at = 0xbf + comp_len;
    assert_eq!(&b[footer_at..footer_at + 8], b"RWFT\xa7\x00\x00\x00");
    let n = b.len();
    assert_eq!(&b[n - 8..], b"RWNDEND\0");
    assert_eq!(
        u64::from_le_bytes(b[n - 16..n - 8].try_into().unwrap()),
        footer_at as u64
    );
    assert_eq!(n, footer_at + 8 + 0xa7 + 4 + 16);
}
