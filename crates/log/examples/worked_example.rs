//! Writes the worked example of docs/log-format.md and prints its bytes.
//!
//! `cargo run -p rewind-log --example worked_example -- /tmp/example.rwtrace`

use rewind_log::{Event, Footer, ShutdownCause, TraceHeader, TraceReader, TraceWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example.rwtrace".into());
    let mut header = TraceHeader::new(
        "0.1.0",
        serde_json::json!({"ram_mb": 128}),
        0,
        vec![],
        1_000_000,
    );
    header.created_unix_ms = 1_767_225_600_000; // fixed so the bytes below are reproducible
    let mut w = TraceWriter::create_overwrite(&path, &header)?;
    w.push(
        20_001,
        &Event::SerialInput {
            port: 0,
            bytes: b"ls\n".to_vec(),
        },
    )?;
    w.push(
        20_501,
        &Event::ClockRead {
            kind: 0,
            value_ns: 1_767_225_600_000_000_000,
        },
    )?;
    w.push(
        1_000_000,
        &Event::StateHash {
            hash: 0x1122_3344_5566_7788,
        },
    )?;
    w.push(
        1_200_000,
        &Event::HostShutdown {
            cause: ShutdownCause::SigInt,
        },
    )?;
    let len = w.finish(&Footer::new(1_200_000, Some(0x99aa_bbcc_ddee_ff00)))?;
    println!("{len} bytes");
    let bytes = std::fs::read(&path)?;
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let txt: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        println!("{:08x}  {:<48} {txt}", i * 16, hex.join(" "));
    }
    let mut r = TraceReader::open(&path)?;
    rewind_log::dump::dump_text(&mut r, &mut std::io::stdout(), &Default::default())?;
    let mut r = TraceReader::open(&path)?;
    println!("{}", rewind_log::dump::stats(&mut r)?);
    Ok(())
}
