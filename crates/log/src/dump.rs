//! Human- and machine-readable dumps of a trace, and summary statistics (`rewind dump`).

use std::fmt;
use std::io::Write;

use serde_json::json;

use crate::event::{Event, EventKind};
use crate::reader::{EventAt, TraceReader, Truncation};
use crate::LogError;

/// Bytes of a blob shown in summaries.
const PREVIEW: usize = 16;

fn out_err(e: std::io::Error) -> LogError {
    LogError::Output(e)
}

/// Escapes bytes as a Rust-like string literal body: printable ASCII as is, the rest escaped.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// First bytes of a blob in hex, with an ellipsis if longer.
fn preview(bytes: &[u8]) -> String {
    let n = bytes.len().min(PREVIEW);
    let more = if bytes.len() > n { "..." } else { "" };
    format!("{}{more}", hex(&bytes[..n]))
}

/// One-line payload summary of an event.
pub fn summary(event: &Event) -> String {
    match event {
        Event::SerialInput { port, bytes } => {
            format!("port={port} len={} \"{}\"", bytes.len(), escape(bytes))
        }
        Event::HostShutdown { cause } => format!("cause={cause:?}"),
        Event::GuestExit { kind, code } => format!("kind={kind:?} code={code}"),
        Event::ClockRead { kind, value_ns } => format!("clock={kind} value_ns={value_ns}"),
        Event::Random { bytes } => format!("len={} {}", bytes.len(), preview(bytes)),
        Event::IdleWarp { ns } => format!("ns={ns}"),
        Event::SnapshotMark { seq } => format!("seq={seq}"),
        Event::AudioCapture { device, bytes } => {
            format!("device={device} len={} {}", bytes.len(), preview(bytes))
        }
        Event::StateHash { hash } => format!("hash={hash:#018x}"),
        Event::StateRegisters { regs } => {
            let first: Vec<String> = regs.iter().take(2).map(|r| format!("{r:#x}")).collect();
            format!(
                "count={} [{}{}]",
                regs.len(),
                first.join(", "),
                if regs.len() > 2 { ", ..." } else { "" }
            )
        }
        Event::NetSent { device, len, hash } => {
            format!("device={device} len={len} hash={hash:#018x}")
        }
        Event::NetPacket { device, bytes } => {
            format!("device={device} len={} {}", bytes.len(), preview(bytes))
        }
        Event::InputEvent {
            device,
            kind,
            code,
            value,
        } => format!(
            "device={device} type={kind} code={code} value={value} ({})",
            crate::evdev::describe(*kind, *code)
        ),
        Event::End => String::new(),
    }
}

/// Payload of an event as JSON fields.
fn event_json(e: &EventAt) -> serde_json::Value {
    let mut v = json!({
        "icount": e.icount,
        "block": e.position.block_index,
        "block_offset": e.position.block_file_offset,
        "offset_in_block": e.position.offset_in_block,
        "kind": e.event.kind().name(),
    });
    let fields = match &e.event {
        Event::SerialInput { port, bytes } => {
            json!({"port": port, "len": bytes.len(), "hex": hex(bytes), "text": String::from_utf8_lossy(bytes)})
        }
        Event::HostShutdown { cause } => json!({ "cause": cause }),
        Event::GuestExit { kind, code } => json!({"exit": kind, "code": code}),
        Event::ClockRead { kind, value_ns } => json!({"clock": kind, "value_ns": value_ns}),
        Event::Random { bytes } => json!({"len": bytes.len(), "hex": hex(bytes)}),
        Event::IdleWarp { ns } => json!({ "ns": ns }),
        Event::SnapshotMark { seq } => json!({ "seq": seq }),
        Event::AudioCapture { device, bytes } => {
            json!({"device": device, "len": bytes.len(), "hex": hex(bytes)})
        }
        Event::StateHash { hash } => json!({ "hash": format!("{hash:#018x}") }),
        Event::StateRegisters { regs } => json!({ "regs": regs }),
        Event::NetSent { device, len, hash } => {
            json!({"device": device, "len": len, "hash": format!("{hash:#018x}")})
        }
        Event::NetPacket { device, bytes } => {
            json!({"device": device, "len": bytes.len(), "hex": hex(bytes)})
        }
        Event::InputEvent {
            device,
            kind,
            code,
            value,
        } => json!({
            "device": device,
            "type": kind,
            "code": code,
            "value": value,
            "type_name": crate::evdev::type_name(*kind),
            "code_name": crate::evdev::code_name(*kind, *code),
        }),
        Event::End => json!({}),
    };
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), fields) {
        obj.extend(extra);
    }
    v
}

/// Which events a dump prints: kinds, an instruction range, and how far into the trace it
/// already printed (`--follow` prints only what is new).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Print only these kinds (`None`: all).
    pub kinds: Option<Vec<EventKind>>,
    /// Print only events at or after this instruction.
    pub from: Option<u64>,
    /// Print only events at or before this instruction (reading stops past it).
    pub to: Option<u64>,
    /// Skip events at or before this position (block file offset, offset in block).
    pub after: Option<(u64, u32)>,
    /// Leave out the header lines.
    pub no_header: bool,
    /// Leave out the footer or truncation line.
    pub no_trailer: bool,
}

/// Where a dump stopped reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpEnd {
    /// Position of the last event read (block file offset, offset in block).
    pub last: Option<(u64, u32)>,
    /// An event past [`Filter::to`] was read: nothing later can be printed.
    pub range_over: bool,
}

impl Filter {
    /// Event kinds named by `spec`: a comma-separated list of kind names (`SerialInput`, any
    /// case) or families (`serial`, `clock`, `random`, `warp`, `state`, `net`, `input`,
    /// `audio`, `shutdown`, `exit`, `snapshot`, `end`).
    pub fn parse_kinds(spec: &str) -> Result<Vec<EventKind>, String> {
        let mut kinds = Vec::new();
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let family: &[EventKind] = match word.to_ascii_lowercase().as_str() {
                "serial" => &[EventKind::SerialInput],
                "clock" => &[EventKind::ClockRead],
                "random" => &[EventKind::Random],
                "warp" | "idle" => &[EventKind::IdleWarp],
                "state" | "check" => &[EventKind::StateHash, EventKind::StateRegisters],
                "net" => &[EventKind::NetPacket, EventKind::NetSent],
                "input" => &[EventKind::InputEvent],
                "audio" | "sound" => &[EventKind::AudioCapture],
                "shutdown" | "host" => &[EventKind::HostShutdown],
                "exit" | "guest" => &[EventKind::GuestExit],
                "snapshot" => &[EventKind::SnapshotMark],
                "end" => &[EventKind::End],
                w => match EventKind::ALL
                    .iter()
                    .find(|k| k.name().eq_ignore_ascii_case(w))
                {
                    Some(k) => std::slice::from_ref(k),
                    None => {
                        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
                        return Err(format!(
                            "unknown event kind '{word}' (families: serial, clock, random, warp, state, net, input, audio, shutdown, exit, snapshot, end; kinds: {})",
                            names.join(", ")
                        ));
                    }
                },
            };
            for k in family {
                if !kinds.contains(k) {
                    kinds.push(*k);
                }
            }
        }
        Ok(kinds)
    }

    /// Read the rest of the trace, calling `print` on every event the filter picks; stops
    /// early once the range is over.
    fn each(
        &self,
        reader: &mut TraceReader,
        mut print: impl FnMut(&crate::reader::EventAt) -> Result<(), LogError>,
    ) -> Result<DumpEnd, LogError> {
        let mut end = DumpEnd::default();
        while let Some(e) = reader.next_event()? {
            end.last = Some((e.position.block_file_offset, e.position.offset_in_block));
            match self.pick(&e) {
                None => {
                    end.range_over = true;
                    break;
                }
                Some(false) => {}
                Some(true) => print(&e)?,
            }
        }
        Ok(end)
    }

    /// Whether `e` is printed; `None` once the range is over (nothing later can be).
    fn pick(&self, e: &crate::reader::EventAt) -> Option<bool> {
        if self.to.is_some_and(|to| e.icount > to) {
            return None;
        }
        let pos = (e.position.block_file_offset, e.position.offset_in_block);
        Some(
            self.after.is_none_or(|a| pos > a)
                && self.from.is_none_or(|f| e.icount >= f)
                && self
                    .kinds
                    .as_ref()
                    .is_none_or(|k| k.contains(&e.event.kind())),
        )
    }
}

fn truncation_line(t: &Truncation) -> String {
    format!("# TRUNCATED: {t}")
}

/// Prints one line per event (`icount  block_offset+offset_in_block  kind  payload`), preceded by
/// `#` header lines and followed by a footer or truncation line. A corruption error is returned
/// after the events before it were printed.
pub fn dump_text(
    reader: &mut TraceReader,
    out: &mut impl Write,
    filter: &Filter,
) -> Result<DumpEnd, LogError> {
    if !filter.no_header {
        dump_text_header(reader, out)?;
    }
    let end = filter.each(reader, |e| {
        let loc = format!(
            "{:#x}+{}",
            e.position.block_file_offset, e.position.offset_in_block
        );
        let line = format!(
            "{:>18} {:>20} {:<14} {}",
            e.icount,
            loc,
            e.event.kind().name(),
            summary(&e.event)
        );
        writeln!(out, "{}", line.trim_end()).map_err(out_err)
    })?;
    if let (Some(t), false) = (reader.truncated(), filter.no_trailer) {
        writeln!(out, "{}", truncation_line(&t)).map_err(out_err)?;
    }
    Ok(end)
}

fn dump_text_header(reader: &TraceReader, out: &mut impl Write) -> Result<(), LogError> {
    let h = reader.header();
    writeln!(
        out,
        "# rewind trace {} (format {}), recorded by rewind {}, icount shift {}, state hash every {} instructions",
        reader.path().display(),
        crate::FORMAT_VERSION,
        h.rewind_version,
        h.icount_shift,
        h.state_hash_interval
    )
    .map_err(out_err)?;
    for img in &h.images {
        writeln!(
            out,
            "# image {:?} {} ({} bytes, blake3 {})",
            img.role, img.file_name, img.size, img.blake3
        )
        .map_err(out_err)?;
    }
    if let Some(f) = reader.footer() {
        writeln!(
            out,
            "# footer: {} events, final icount {}",
            f.total_events, f.final_icount
        )
        .map_err(out_err)?;
    }
    writeln!(
        out,
        "# {:>16} {:>20} {:<14} payload",
        "icount", "block+offset", "kind"
    )
    .map_err(out_err)?;
    Ok(())
}

/// Prints one JSON object per line: `{"type":"header",...}`, one `{"type":"event",...}` per
/// event, then `{"type":"footer",...}` or `{"type":"truncated",...}`.
pub fn dump_json(
    reader: &mut TraceReader,
    out: &mut impl Write,
    filter: &Filter,
) -> Result<DumpEnd, LogError> {
    let line = |out: &mut dyn Write, v: serde_json::Value| writeln!(out, "{v}").map_err(out_err);
    if !filter.no_header {
        line(
            out,
            json!({"type": "header", "format_version": crate::FORMAT_VERSION, "header": reader.header()}),
        )?;
    }
    let end = filter.each(reader, |e| {
        let mut v = event_json(e);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("type".into(), json!("event"));
        }
        line(out, v)
    })?;
    if filter.no_trailer {
        return Ok(end);
    }
    if let Some(t) = reader.truncated() {
        line(
            out,
            json!({
                "type": "truncated",
                "file_offset": t.file_offset,
                "bytes_lost": t.bytes_lost,
                "last_icount": t.last_icount,
                "events_complete": t.events_complete,
            }),
        )?;
    } else if let Some(f) = reader.footer() {
        line(out, json!({"type": "footer", "footer": f}))?;
    }
    Ok(end)
}

/// Count and encoded size of one event kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Number of events.
    pub count: u64,
    /// Bytes of their encodings in the decompressed stream.
    pub raw_bytes: u64,
}

/// Summary of a whole trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Size of the file.
    pub file_len: u64,
    /// Per kind, in [`EventKind::ALL`] order.
    pub kinds: Vec<(EventKind, KindStats)>,
    /// Number of events.
    pub events: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Compressed payload bytes of all blocks.
    pub compressed_bytes: u64,
    /// Decompressed bytes of all blocks.
    pub raw_bytes: u64,
    /// icount of the first and last event.
    pub icount_span: Option<(u64, u64)>,
    /// Set if the file is cut short.
    pub truncation: Option<Truncation>,
    /// Whether the file has a footer.
    pub has_footer: bool,
}

/// Reads the rest of the trace and summarises it.
pub fn stats(reader: &mut TraceReader) -> Result<Stats, LogError> {
    let mut kinds = [KindStats::default(); EventKind::ALL.len()];
    let mut span: Option<(u64, u64)> = None;
    let mut events = 0;
    while let Some(e) = reader.next_event()? {
        let k = &mut kinds[e.event.kind() as usize];
        k.count += 1;
        k.raw_bytes += u64::from(e.encoded_len);
        events += 1;
        span = Some(match span {
            None => (e.icount, e.icount),
            Some((first, _)) => (first, e.icount),
        });
    }
    Ok(Stats {
        file_len: reader.file_len(),
        kinds: EventKind::ALL.iter().copied().zip(kinds).collect(),
        events,
        blocks: reader.blocks_read(),
        compressed_bytes: reader.compressed_bytes_read(),
        raw_bytes: reader.raw_bytes_read(),
        icount_span: span,
        truncation: reader.truncated(),
        has_footer: reader.footer().is_some(),
    })
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:>12} {:>14} {:>10}",
            "kind", "events", "raw bytes", "bytes/ev"
        )?;
        for (kind, k) in &self.kinds {
            if k.count == 0 {
                continue;
            }
            writeln!(
                f,
                "{:<14} {:>12} {:>14} {:>10.2}",
                kind.name(),
                k.count,
                k.raw_bytes,
                k.raw_bytes as f64 / k.count as f64
            )?;
        }
        writeln!(f, "total events: {}", self.events)?;
        let ratio = if self.compressed_bytes > 0 {
            self.raw_bytes as f64 / self.compressed_bytes as f64
        } else {
            0.0
        };
        writeln!(
            f,
            "blocks: {}, raw {} bytes, compressed {} bytes (ratio {ratio:.1}), file {} bytes",
            self.blocks, self.raw_bytes, self.compressed_bytes, self.file_len
        )?;
        match self.icount_span {
            Some((a, b)) => writeln!(f, "icount span: {a} .. {b} ({} instructions)", b - a)?,
            None => writeln!(f, "icount span: no events")?,
        }
        match &self.truncation {
            Some(t) => write!(f, "TRUNCATED: {t}"),
            None if self.has_footer => write!(f, "complete (footer verified)"),
            None => write!(f, "no footer"),
        }
    }
}
