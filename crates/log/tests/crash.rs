//! A writer process killed with SIGKILL leaves a readable prefix.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{header, read_all};
use rewind_log::{Event, TraceReader, TraceWriter};

const CHILD_ENV: &str = "REWIND_LOG_CRASH_CHILD";

/// Deterministic pseudo-random payload of event `i` (incompressible, so blocks are large).
fn payload(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..40_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs only in the child process: writes events until killed.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut w = TraceWriter::create(&path, &header()).unwrap();
    w.set_block_size(100_000);
    for i in 0..2_000u64 {
        w.push(i * 10, &Event::Random { bytes: payload(i) })
            .unwrap();
    }
    // Never finish: the parent kills us.
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn sigkilled_writer_leaves_complete_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.rwtrace");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) < 3 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child wrote too little"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let mut r = TraceReader::open(&path).unwrap();
    assert!(r.footer().is_none());
    let (got, err) = read_all(&mut r);
    assert!(err.is_none(), "{err:?}");
    assert!(got.len() >= 50, "only {} events", got.len());
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.icount, i as u64 * 10);
        assert_eq!(
            e.event,
            Event::Random {
                bytes: payload(i as u64)
            },
            "event {i}"
        );
    }
    let t = r.truncated().unwrap();
    assert_eq!(t.last_icount, Some((got.len() as u64 - 1) * 10));
    assert_eq!(
        t.file_offset + t.bytes_lost,
        std::fs::metadata(&path).unwrap().len()
    );
    eprintln!("{t}");
}
