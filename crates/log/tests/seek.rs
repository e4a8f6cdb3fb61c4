//! A reader taken back to a saved cursor returns exactly the events that followed it.

mod common;

use common::header;
use rewind_log::{Event, Footer, LogError, TraceReader, TraceWriter};

fn write_trace(path: &std::path::Path, n: u64) {
    let mut w = TraceWriter::create(path, &header()).unwrap();
    // Small blocks so the trace has many of them.
    w.set_block_size(64);
    for i in 0..n {
        let e = Event::SerialInput {
            port: 0,
            bytes: vec![i as u8; (i % 7) as usize + 1],
        };
        w.push(i * 10, &e).unwrap();
    }
    w.finish(&Footer::new(n * 10, Some(1))).unwrap();
}

#[test]
fn seek_back_to_every_cursor_replays_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.rwtrace");
    write_trace(&path, 200);
    let mut r = TraceReader::open(&path).unwrap();
    let mut cursors = vec![r.cursor()];
    let mut events = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        events.push(e);
        cursors.push(r.cursor());
    }
    assert!(r.blocks_read() > 10, "only {} blocks", r.blocks_read());
    assert_eq!(events.len(), 201);
    // Back to positions at the start, inside and at the end of blocks, in any order; the
    // footer check after End still passes (the event counts are part of the cursor).
    for &k in &[150usize, 0, 1, 77, 200, 3, 199, 201] {
        r.seek_to(&cursors[k]).unwrap();
        let mut rest = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            rest.push(e);
        }
        assert_eq!(rest, events[k..], "from cursor {k}");
    }
    // A fresh reader of the same file accepts the cursors too.
    let mut r2 = TraceReader::open(&path).unwrap();
    r2.seek_to(&cursors[120]).unwrap();
    assert_eq!(r2.next_event().unwrap().as_ref(), Some(&events[120]));
}

#[test]
fn a_cursor_of_another_trace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.rwtrace");
    let small = dir.path().join("small.rwtrace");
    write_trace(&big, 200);
    write_trace(&small, 3);
    let mut r = TraceReader::open(&big).unwrap();
    for _ in 0..150 {
        r.next_event().unwrap();
    }
    let cursor = r.cursor();
    let mut s = TraceReader::open(&small).unwrap();
    let err = s.seek_to(&cursor).unwrap_err();
    assert!(matches!(err, LogError::BadSeek { .. }), "{err}");
    assert!(
        err.to_string().contains("cannot seek to block offset"),
        "{err}"
    );
}
