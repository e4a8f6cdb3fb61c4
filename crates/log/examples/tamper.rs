//! Rewrites a trace with one state hash falsified (valid checksums: only a replay can tell),
//! for tests of divergence reports (tests/python).
//!
//! `cargo run -p rewind-log --example tamper -- IN OUT [K]`: flips bit 0 of the K-th
//! `StateHash` event (default: the middle one) and prints its icount.

use rewind_log::{Event, Footer, TraceReader, TraceWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(src), Some(dst)) = (args.first(), args.get(1)) else {
        return Err("usage: tamper IN OUT [K]".into());
    };
    let mut r = TraceReader::open(src)?;
    let header = r.header().clone();
    let footer = r.footer().cloned().ok_or("the trace has no footer")?;
    let mut events = Vec::new();
    while let Some(e) = r.next_event()? {
        if e.event != Event::End {
            events.push((e.icount, e.event));
        }
    }
    let hashes: Vec<usize> = (0..events.len())
        .filter(|&k| matches!(events[k].1, Event::StateHash { .. }))
        .collect();
    let k = match args.get(2) {
        Some(k) => k.parse()?,
        None => hashes.len() / 2,
    };
    let at = *hashes.get(k).ok_or("not that many state hashes")?;
    if let Event::StateHash { hash } = &mut events[at].1 {
        *hash ^= 1;
    }
    let mut w = TraceWriter::create_overwrite(dst, &header)?;
    for (icount, e) in &events {
        w.push(*icount, e)?;
    }
    w.finish(&Footer::new(footer.final_icount, footer.final_state_hash))?;
    println!("{}", events[at].0);
    Ok(())
}
