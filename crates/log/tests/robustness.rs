//! Damaged, truncated and foreign files: clear errors with offsets, never panics, never
//! silently accepted modified data.

mod common;

use std::path::Path;

use common::{every_kind, header, read_all};
use rewind_log::{Corruption, Event, EventAt, Footer, LogError, TraceReader, TraceWriter};

/// Length of the file prefix + header record for `common::header()`.
fn data_start() -> u64 {
    18 + serde_json::to_vec(&header()).unwrap().len() as u64
}

/// A small finished trace of several blocks; returns its bytes and the events read back.
fn small_multiblock(path: &Path) -> (Vec<u8>, Vec<EventAt>) {
    let mut w = TraceWriter::create(path, &header()).unwrap();
    w.set_block_size(24);
    let mut icount = 100;
    for (i, e) in every_kind().iter().enumerate() {
        // Keep blobs short so the file stays small and the loops below fast.
        let e = match e {
            Event::SerialInput { port, bytes } => Event::SerialInput {
                port: *port,
                bytes: bytes.iter().copied().take(10).collect(),
            },
            Event::Random { bytes } => Event::Random {
                bytes: bytes.iter().copied().take(10).collect(),
            },
            other => other.clone(),
        };
        icount += 1000 * i as u64;
        w.push(icount, &e).unwrap();
    }
    w.finish(&Footer::new(icount + 5, Some(99))).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let mut r = TraceReader::open(path).unwrap();
    let (events, err) = read_all(&mut r);
    assert!(err.is_none());
    (bytes, events)
}

#[test]
fn truncation_at_every_offset_reads_exactly_the_complete_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let (bytes, events) = small_multiblock(&full);
    let len = bytes.len() as u64;
    // Block boundaries: where each block starts, plus where the last one ends (the footer).
    let mut starts: Vec<u64> = events
        .iter()
        .map(|e| e.position.block_file_offset)
        .collect();
    starts.dedup();
    assert!(
        starts.len() >= 5,
        "want a multi-block file, got {} blocks",
        starts.len()
    );
    let footer_offset = u64::from_le_bytes(bytes[bytes.len() - 16..][..8].try_into().unwrap());
    let mut ends: Vec<u64> = starts[1..].to_vec();
    ends.push(footer_offset);
    let cut_path = dir.path().join("cut");
    for cut in 0..=len {
        std::fs::write(&cut_path, &bytes[..cut as usize]).unwrap();
        let r = TraceReader::open(&cut_path);
        if cut < data_start() {
            assert!(
                matches!(r, Err(LogError::TruncatedHeader { .. })),
                "cut {cut}: {:?}",
                r.err()
            );
            continue;
        }
        let mut r = r.unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let (got, err) = read_all(&mut r);
        assert!(err.is_none(), "cut {cut}: {err:?}");
        // Complete blocks are those ending at or before the cut.
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        let expected: Vec<&EventAt> = events
            .iter()
            .filter(|e| {
                starts
                    .iter()
                    .position(|&s| s == e.position.block_file_offset)
                    .unwrap()
                    < complete
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "cut {cut}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(&g, e, "cut {cut}");
        }
        if cut == len {
            assert!(r.truncated().is_none());
            assert!(r.footer().is_some());
            continue;
        }
        assert!(r.footer().is_none(), "cut {cut}");
        let t = r
            .truncated()
            .unwrap_or_else(|| panic!("cut {cut}: no truncation reported"));
        let usable = if complete == 0 {
            data_start()
        } else {
            ends[complete - 1]
        };
        assert_eq!(t.file_offset, usable, "cut {cut}");
        assert_eq!(t.bytes_lost, cut - usable, "cut {cut}");
        assert_eq!(t.last_icount, got.last().map(|e| e.icount), "cut {cut}");
        assert_eq!(t.events_complete, complete == ends.len(), "cut {cut}");
    }
}

#[test]
fn any_flipped_byte_of_a_finished_trace_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let (bytes, _) = small_multiblock(&full);
    let p = dir.path().join("flipped");
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            std::fs::write(&p, &b).unwrap();
            let err = match TraceReader::open(&p) {
                Err(e) => e,
                Ok(mut r) => match read_all(&mut r) {
                    (_, Some(e)) => e,
                    (got, None) => panic!(
                        "byte {i} ^ {mask:#x} silently accepted: {} events, truncated {:?}",
                        got.len(),
                        r.truncated()
                    ),
                },
            };
            let msg = err.to_string();
            assert!(
                msg.contains("flipped"),
                "error does not name the file: {msg}"
            );
            match err {
                LogError::BadMagic { .. }
                | LogError::UnsupportedVersion { .. }
                | LogError::HeaderChecksum { .. }
                | LogError::BadHeader { .. }
                | LogError::TruncatedHeader { .. }
                | LogError::Corrupt { .. } => {}
                other => panic!("byte {i}: unexpected error kind {other}"),
            }
        }
    }
}

#[test]
fn flipped_bytes_of_an_unfinished_trace_never_alter_events() {
    // Without a footer a damaged last length can only look like a cut: the events returned
    // must still be an unmodified prefix.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let (bytes, events) = small_multiblock(&full);
    let footer_offset = u64::from_le_bytes(bytes[bytes.len() - 16..][..8].try_into().unwrap());
    let bytes = &bytes[..footer_offset as usize];
    let p = dir.path().join("flipped");
    for i in 0..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] ^= 0x10;
        std::fs::write(&p, &b).unwrap();
        if let Ok(mut r) = TraceReader::open(&p) {
            let (got, err) = read_all(&mut r);
            if err.is_none() {
                assert!(r.truncated().is_some(), "byte {i}");
                assert!(got.len() < events.len(), "byte {i}");
                assert_eq!(got[..], events[..got.len()], "byte {i}");
            }
        }
    }
}

#[test]
fn bad_magic_is_not_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, b"hello world, this is not a trace").unwrap();
    let err = TraceReader::open(&p).err().unwrap();
    assert!(matches!(err, LogError::BadMagic { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("notes.txt") && msg.contains("not a rewind trace"),
        "{msg}"
    );
    // A QEMU replay log (big-endian version word) is not one either.
    std::fs::write(&p, [0x00, 0xe0, 0x20, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0, 0x25]).unwrap();
    assert!(matches!(
        TraceReader::open(&p),
        Err(LogError::BadMagic { .. })
    ));
    std::fs::write(&p, b"").unwrap();
    assert!(matches!(
        TraceReader::open(&p),
        Err(LogError::TruncatedHeader { .. })
    ));
}

#[test]
fn unknown_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    TraceWriter::create(&p, &header())
        .unwrap()
        .finish(&Footer::new(0, None))
        .unwrap();
    let mut b = std::fs::read(&p).unwrap();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(&p, &b).unwrap();
    let err = TraceReader::open(&p).err().unwrap();
    assert!(
        matches!(
            err,
            LogError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("found 2") || err.to_string().contains("version 2"));
    assert!(err.to_string().contains("this build reads 1"));
}

#[test]
fn header_checksum_mismatch_names_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    TraceWriter::create(&p, &header())
        .unwrap()
        .finish(&Footer::new(0, None))
        .unwrap();
    let mut b = std::fs::read(&p).unwrap();
    // Change one JSON character (the '3' of icount_shift) to another valid one.
    let pos = b
        .windows(16)
        .position(|w| w == b"\"icount_shift\":3")
        .unwrap()
        + 15;
    b[pos] = b'4';
    std::fs::write(&p, &b).unwrap();
    let err = TraceReader::open(&p).err().unwrap();
    let crc_offset = data_start() - 4;
    assert!(
        matches!(err, LogError::HeaderChecksum { offset, .. } if offset == crc_offset),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("offset {crc_offset}")));
}

/// Appends a block with a valid checksum holding `raw` (already encoded events).
fn append_block(file: &mut Vec<u8>, first_icount: u64, raw: &[u8], raw_len_field: Option<u32>) {
    let comp = zstd::bulk::compress(raw, 3).unwrap();
    let mut fields = Vec::new();
    fields.extend_from_slice(&(comp.len() as u32).to_le_bytes());
    fields.extend_from_slice(&raw_len_field.unwrap_or(raw.len() as u32).to_le_bytes());
    fields.extend_from_slice(&first_icount.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&fields);
    h.update(&comp);
    file.extend_from_slice(b"RWBK");
    file.extend_from_slice(&fields);
    file.extend_from_slice(&h.finalize().to_le_bytes());
    file.extend_from_slice(&comp);
}

/// A trace holding just the header (writer dropped before any event).
fn header_only(path: &Path) -> Vec<u8> {
    drop(TraceWriter::create(path, &header()).unwrap());
    std::fs::read(path).unwrap()
}

#[test]
fn unknown_tag_in_a_valid_block_is_named_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    let mut b = header_only(&p);
    // SerialInput port 0, delta 0, "hi"; then tag 0x85 (class 8 does not exist).
    let raw = [0x10, 0x00, 0x02, b'h', b'i', 0x85, 0x03];
    append_block(&mut b, 777, &raw, None);
    std::fs::write(&p, &b).unwrap();
    let mut r = TraceReader::open(&p).unwrap();
    let first = r.next_event().unwrap().unwrap();
    assert_eq!(first.icount, 777);
    assert_eq!(
        first.event,
        Event::SerialInput {
            port: 0,
            bytes: b"hi".to_vec()
        }
    );
    let err = r.next_event().unwrap_err();
    match &err {
        LogError::Corrupt {
            file_offset,
            block_index: 0,
            what,
            ..
        } => {
            assert_eq!(*file_offset, data_start());
            assert_eq!(
                *what,
                Corruption::UnknownTag {
                    tag: 0x85,
                    offset_in_block: 5
                }
            );
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("unknown event tag 0x85 at byte 5"), "{msg}");
    assert!(msg.contains(&format!("offset {}", data_start())), "{msg}");
    // The reader stops after an error.
    assert_eq!(r.next_event().unwrap(), None);

    // Tag 0x00 (zero-filled data) and unused control / shutdown / exit sub-tags are unknown too.
    for tag in [0x00u8, 0x08, 0x27, 0x33, 0xf0] {
        let mut b = header_only(&dir.path().join(format!("h{tag}")));
        append_block(
            &mut b,
            0,
            &[tag, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            None,
        );
        std::fs::write(&p, &b).unwrap();
        let err = read_all(&mut TraceReader::open(&p).unwrap()).1.unwrap();
        assert!(
            matches!(err, LogError::Corrupt { what: Corruption::UnknownTag { tag: t, offset_in_block: 0 }, .. } if t == tag),
            "{err}"
        );
    }
}

#[test]
fn malformed_blocks_with_valid_checksums_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    let base = header_only(&p);
    let check = |b: &[u8], want: &dyn Fn(&Corruption) -> bool| {
        std::fs::write(&p, b).unwrap();
        let err = read_all(&mut TraceReader::open(&p).unwrap())
            .1
            .expect("an error");
        match err {
            LogError::Corrupt { ref what, .. } if want(what) => {}
            other => panic!("unexpected: {other}"),
        }
    };
    // Varint of 11 bytes.
    let mut b = base.clone();
    let mut raw = vec![0x02];
    raw.extend_from_slice(&[0xff; 10]);
    raw.push(0x00);
    append_block(&mut b, 0, &raw, None);
    check(&b, &|c| {
        matches!(c, Corruption::BadVarint { offset_in_block: 1 })
    });
    // Blob length larger than the block.
    let mut b = base.clone();
    append_block(&mut b, 0, &[0x04, 0x00, 0x7f, 1, 2, 3], None);
    check(&b, &|c| {
        matches!(c, Corruption::EventOverrun { offset_in_block: 0 })
    });
    // Blob length beyond the cap: refused before allocating.
    let mut b = base.clone();
    append_block(&mut b, 0, &[0x04, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f], None);
    check(&b, &|c| matches!(c, Corruption::BadLength { .. }));
    // Raw length field disagreeing with the compressed data.
    let mut b = base.clone();
    append_block(&mut b, 0, &[0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], Some(12));
    check(&b, &|c| {
        matches!(
            c,
            Corruption::SizeMismatch {
                expected: 12,
                got: 10
            }
        )
    });
    // Absurd raw length: refused before allocating.
    let mut b = base.clone();
    append_block(
        &mut b,
        0,
        &[0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8],
        Some(u32::MAX),
    );
    check(&b, &|c| {
        matches!(
            c,
            Corruption::BadLength {
                field: "block raw length",
                ..
            }
        )
    });
    // First event not at the block's icount.
    let mut b = base.clone();
    append_block(&mut b, 0, &[0x02, 0x05, 1, 2, 3, 4, 5, 6, 7, 8], None);
    check(&b, &|c| matches!(c, Corruption::IcountInconsistent { .. }));
    // A block starting before the previous block's last event.
    let mut b = base.clone();
    append_block(&mut b, 100, &[0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], None);
    append_block(&mut b, 99, &[0x02, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], None);
    check(&b, &|c| matches!(c, Corruption::IcountInconsistent { .. }));
    // An event after End.
    let mut b = base.clone();
    append_block(&mut b, 0, &[0x01, 0x00, 0x03, 0x00, 0x00], None);
    check(&b, &|c| matches!(c, Corruption::DataAfterEnd));
    // Garbage (zeros) where a block should start.
    let mut b = base.clone();
    b.extend_from_slice(&[0u8; 64]);
    check(&b, &|c| {
        matches!(
            c,
            Corruption::BadBlockMagic {
                found: [0, 0, 0, 0]
            }
        )
    });
}

#[test]
fn huge_compressed_length_in_a_cut_file_is_a_truncation_without_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    let mut b = header_only(&p);
    b.extend_from_slice(b"RWBK");
    b.extend_from_slice(&(16u32 << 20).to_le_bytes());
    b.extend_from_slice(&100u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 12]);
    std::fs::write(&p, &b).unwrap();
    let mut r = TraceReader::open(&p).unwrap();
    assert_eq!(r.next_event().unwrap(), None);
    let t = r.truncated().unwrap();
    assert_eq!(t.file_offset, data_start());
    assert_eq!(t.bytes_lost, 24);
    assert_eq!(t.last_icount, None);
    assert!(t.to_string().contains("before its first event"));
}

/// Replaces the footer JSON of a finished trace with `edit(footer)`, fixing its checksum and the
/// trailer, so only the footer's content is wrong.
fn with_footer(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let n = bytes.len();
    let footer_at = u64::from_le_bytes(bytes[n - 16..n - 8].try_into().unwrap()) as usize;
    let len = u32::from_le_bytes(bytes[footer_at + 4..footer_at + 8].try_into().unwrap()) as usize;
    let mut json: serde_json::Value =
        serde_json::from_slice(&bytes[footer_at + 8..footer_at + 8 + len]).unwrap();
    edit(&mut json);
    let json = serde_json::to_vec(&json).unwrap();
    let mut out = bytes[..footer_at].to_vec();
    out.extend_from_slice(b"RWFT");
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    out.extend_from_slice(&(footer_at as u64).to_le_bytes());
    out.extend_from_slice(b"RWNDEND\0");
    out
}

/// An event whose delta puts it past the footer's final icount is corruption, reported at its
/// block before anything acts on it (replay would otherwise run an idle guest toward it).
#[test]
fn an_event_past_the_footers_final_icount_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    let mut w = TraceWriter::create(&p, &header()).unwrap();
    w.set_block_size(24);
    w.push(100, &Event::StateHash { hash: 1 }).unwrap();
    w.push(1_000_000_000_000, &Event::StateHash { hash: 2 })
        .unwrap();
    w.finish(&Footer::new(1_000_000_000_005, Some(3))).unwrap();
    let good = std::fs::read(&p).unwrap();
    let (events, err) = read_all(&mut TraceReader::open(&p).unwrap());
    assert!(err.is_none(), "{err:?}");
    let far_block = events[1].position.block_file_offset;

    // The footer says the recording ended at 17,723: the event at 10^12 cannot be.
    let bad = with_footer(&good, |f| f["final_icount"] = 17_723.into());
    std::fs::write(&p, &bad).unwrap();
    let mut r = TraceReader::open(&p).unwrap();
    assert_eq!(r.next_event().unwrap().unwrap().icount, 100);
    let err = r.next_event().unwrap_err();
    match &err {
        LogError::Corrupt {
            file_offset,
            what: Corruption::IcountInconsistent { detail },
            ..
        } => {
            assert_eq!(*file_offset, far_block, "{err}");
            assert!(detail.contains("final icount 17723"), "{err}");
        }
        other => panic!("expected an icount inconsistency, got {other}"),
    }
    assert_eq!(r.next_event().unwrap(), None);

    // The same footer one instruction short of the End event is caught at the End event.
    let bad = with_footer(&good, |f| f["final_icount"] = 1_000_000_000_004u64.into());
    std::fs::write(&p, &bad).unwrap();
    let err = read_all(&mut TraceReader::open(&p).unwrap()).1.unwrap();
    assert!(
        matches!(
            err,
            LogError::Corrupt {
                what: Corruption::IcountInconsistent { .. },
                ..
            }
        ),
        "{err}"
    );
}

/// A footer that is missing, zeroed, contradicts the events or follows stray data: the events
/// read back, then a cut (missing) or corruption with the footer's offset (the rest).
#[test]
fn footer_missing_zeroed_contradicting_or_after_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t");
    let (good, events) = small_multiblock(&p);
    let n = good.len();
    let footer_at = u64::from_le_bytes(good[n - 16..n - 8].try_into().unwrap());
    let read = |bytes: &[u8]| {
        std::fs::write(&p, bytes).unwrap();
        let mut r = TraceReader::open(&p).unwrap();
        let (got, err) = read_all(&mut r);
        (got.len(), err, r.truncated())
    };

    // Missing: every event, then a cut with `events_complete`.
    let (got, err, cut) = read(&good[..footer_at as usize]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, events.len());
    let cut = cut.expect("a cut");
    assert!(cut.events_complete);
    assert_eq!(cut.file_offset, footer_at);

    let corrupt_at_footer = |bytes: &[u8], what: &str| {
        let (_, err, _) = read(bytes);
        let err = err.unwrap_or_else(|| panic!("{what}: accepted"));
        let msg = err.to_string();
        assert!(
            matches!(err, LogError::Corrupt { file_offset, .. } if file_offset == footer_at),
            "{what}: {msg}"
        );
        assert!(
            msg.contains(&format!("offset {footer_at}")),
            "{what}: {msg}"
        );
    };
    // Zeroed (footer and trailer).
    let mut z = good.clone();
    z[footer_at as usize..].fill(0);
    corrupt_at_footer(&z, "zeroed footer");
    // Another final icount, another event count.
    let last = events.last().unwrap().icount;
    corrupt_at_footer(
        &with_footer(&good, |f| f["final_icount"] = (last + 1).into()),
        "final icount + 1",
    );
    corrupt_at_footer(
        &with_footer(&good, |f| f["total_events"] = 1.into()),
        "total events",
    );
    // Stray bytes between the End block and the footer (the trailer points at the footer).
    let mut after = good[..footer_at as usize].to_vec();
    after.extend_from_slice(&[0u8; 7]);
    let moved = with_footer(&good, |_| {});
    after.extend_from_slice(&moved[footer_at as usize..n - 16]);
    after.extend_from_slice(&(footer_at + 7).to_le_bytes());
    after.extend_from_slice(b"RWNDEND\0");
    let (_, err, _) = read(&after);
    let err = err.expect("data after End accepted");
    assert!(
        matches!(
            err,
            LogError::Corrupt {
                file_offset,
                what: Corruption::DataAfterEnd,
                ..
            } if file_offset == footer_at
        ),
        "{err}"
    );
}
