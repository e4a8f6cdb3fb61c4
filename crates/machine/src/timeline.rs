//! What `rewind timeline` draws, gathered from a recording: the events of its log grouped by
//! family (read without replaying), and from a replay of its segments in parallel the console
//! lines with their icounts, the traps and interrupts taken per instruction-count bin, and the
//! first point where a segment's replay left the recording.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rewind_log::{Event, LogError, ShutdownCause, TraceReader, Truncation};

use crate::analysis::{self, ConsoleLine, Segment, SegmentEnd, Segments};
use crate::session::SessionError;
use crate::Machine;

/// A family of logged events: one lane of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Bytes typed into a serial port.
    SerialInput,
    /// Key presses and releases of a keyboard.
    Keyboard,
    /// Pointer motion, buttons and wheel (mouse, tablet).
    Pointer,
    /// Frames that arrived from the host's network.
    NetIn,
    /// Frames the guest sent (their hashes, checked on replay).
    NetOut,
    /// Host audio handed to a sound device.
    AudioIn,
    /// Host entropy handed to the guest.
    Entropy,
    /// Host clock reads (RTC).
    Clock,
    /// All harts idle: virtual time jumped forward.
    IdleWarp,
    /// State-hash checkpoints.
    StateCheck,
    /// Snapshots taken while recording.
    Snapshot,
    /// The run's end or a reset (host shutdown, guest exit, monitor reset).
    Shutdown,
}

impl Lane {
    /// Every lane, in display order.
    pub const ALL: [Lane; 12] = [
        Lane::SerialInput,
        Lane::Keyboard,
        Lane::Pointer,
        Lane::NetIn,
        Lane::NetOut,
        Lane::AudioIn,
        Lane::Entropy,
        Lane::Clock,
        Lane::IdleWarp,
        Lane::StateCheck,
        Lane::Snapshot,
        Lane::Shutdown,
    ];

    /// Its short identifier (used in the page's markup).
    pub fn id(self) -> &'static str {
        match self {
            Lane::SerialInput => "serial-input",
            Lane::Keyboard => "keyboard",
            Lane::Pointer => "pointer",
            Lane::NetIn => "net-in",
            Lane::NetOut => "net-out",
            Lane::AudioIn => "audio-in",
            Lane::Entropy => "entropy",
            Lane::Clock => "clock",
            Lane::IdleWarp => "idle-warp",
            Lane::StateCheck => "state-check",
            Lane::Snapshot => "snapshot",
            Lane::Shutdown => "shutdown",
        }
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Lane::SerialInput => "serial input",
            Lane::Keyboard => "keyboard",
            Lane::Pointer => "mouse / tablet",
            Lane::NetIn => "network in",
            Lane::NetOut => "network out",
            Lane::AudioIn => "audio in",
            Lane::Entropy => "entropy",
            Lane::Clock => "clock reads",
            Lane::IdleWarp => "idle warps",
            Lane::StateCheck => "state checks",
            Lane::Snapshot => "snapshots",
            Lane::Shutdown => "shutdown / reset",
        }
    }
}

/// One logged event on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Its lane.
    pub lane: Lane,
    /// The icount it is logged at.
    pub icount: u64,
    /// What it was, in a few words.
    pub label: String,
}

/// Linux's evdev event types and the first button code (`BTN_MISC`): keys below it are a
/// keyboard's, the rest a pointer's buttons.
const EV_SYN: u16 = 0;
const EV_KEY: u16 = 1;
const BTN_MISC: u16 = 0x100;

/// Printable text of typed bytes (control bytes escaped).
fn text_of(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(200) {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > 200 {
        s.push('…');
    }
    s
}

/// The mark an event makes (`None`: events the timeline leaves out: the end marker, the
/// registers that go with a state check, evdev sync reports).
pub fn mark_of(icount: u64, event: &Event) -> Option<Mark> {
    let (lane, label) = match event {
        Event::SerialInput { port, bytes } => (
            Lane::SerialInput,
            format!("port {port}: \"{}\"", text_of(bytes)),
        ),
        Event::InputEvent {
            device,
            kind,
            code,
            value,
        } => {
            if *kind == EV_SYN {
                return None;
            }
            let lane = if *kind == EV_KEY && *code < BTN_MISC {
                Lane::Keyboard
            } else {
                Lane::Pointer
            };
            let what = rewind_log::evdev::describe(*kind, *code);
            (lane, format!("device {device}: {what} = {value}"))
        }
        Event::NetPacket { device, bytes } => (
            Lane::NetIn,
            format!("device {device}: frame of {} bytes", bytes.len()),
        ),
        Event::NetSent { device, len, .. } => (
            Lane::NetOut,
            format!("device {device}: frame of {len} bytes"),
        ),
        Event::AudioCapture { device, bytes } => (
            Lane::AudioIn,
            format!("device {device}: {} bytes of capture", bytes.len()),
        ),
        Event::Random { bytes } => (Lane::Entropy, format!("{} random bytes", bytes.len())),
        Event::ClockRead { kind, value_ns } => {
            (Lane::Clock, format!("clock {kind} read: {value_ns} ns"))
        }
        Event::IdleWarp { ns } => (Lane::IdleWarp, format!("idle: time jumps {ns} ns")),
        Event::StateHash { hash } => (Lane::StateCheck, format!("state hash {hash:016x}")),
        Event::SnapshotMark { seq } => (Lane::Snapshot, format!("snapshot {seq}")),
        Event::HostShutdown { cause } => (
            Lane::Shutdown,
            match cause {
                ShutdownCause::HostReset => "monitor system_reset".to_string(),
                c => format!("host shutdown ({c:?})"),
            },
        ),
        Event::GuestExit { kind, code } => {
            (Lane::Shutdown, format!("guest exit: {kind:?}, code {code}"))
        }
        Event::StateRegisters { .. } | Event::End => return None,
    };
    Some(Mark {
        lane,
        icount,
        label,
    })
}

/// The marks of every event logged in `trace`, in log order, and the cut if the trace was cut
/// short (its events up to the cut are there).
pub fn logged_marks(trace: &Path) -> Result<(Vec<Mark>, Option<Truncation>), LogError> {
    let mut r = TraceReader::open(trace)?;
    let mut marks = Vec::new();
    while let Some(e) = r.next_event()? {
        marks.extend(mark_of(e.icount, &e.event));
    }
    Ok((marks, r.truncated()))
}

/// Traps taken in one bin of instruction counts, over all harts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrapBin {
    /// Exceptions (ecalls, page faults, ...).
    pub exceptions: u64,
    /// Interrupts.
    pub interrupts: u64,
}

/// Where a segment's replay left the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The segment.
    pub segment: Segment,
    /// The icount: the divergence's, or where the replay stopped.
    pub icount: u64,
    /// The whole report (a divergence report is several lines).
    pub report: String,
    /// A divergence (not a cut or unreadable trace).
    pub diverged: bool,
}

/// What a replay of the segments showed.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The console lines with their icounts (see [`analysis::console`]).
    pub console: Vec<ConsoleLine>,
    /// Instructions per trap bin.
    pub bin_width: u64,
    /// Traps per bin: bin `k` covers `[k*bin_width, (k+1)*bin_width)`.
    pub traps: Vec<TrapBin>,
    /// The first segment whose replay left the recording.
    pub departure: Option<Departure>,
    /// The error that made it leave (the first segment's).
    pub error: Option<SessionError>,
}

/// Output chunks seen by a segment's replay: (icount, offset, bytes).
type Chunks = Vec<(u64, u64, Vec<u8>)>;

/// Traps of all harts so far: (exceptions, interrupts).
fn traps_so_far(m: &Machine) -> (u64, u64) {
    m.harts().iter().fold((0, 0), |(e, i), h| {
        (
            e + h.stats.exceptions.iter().sum::<u64>(),
            i + h.stats.interrupts.iter().sum::<u64>(),
        )
    })
}

/// What one segment's replay gathered.
struct SegmentFacts {
    chunks: Chunks,
    traps: Vec<(usize, TrapBin)>,
    departure: Option<(Departure, Option<SessionError>)>,
}

/// Replay segment `seg` (machine `m` at its start), stopping at every multiple of `width` to
/// count the traps taken since (`width == 0`: no counting), with its console output observed.
fn replay_segment(mut m: Machine, seg: &Segment, width: u64) -> SegmentFacts {
    let chunks = Arc::new(Mutex::new(Chunks::new()));
    let sink = Arc::clone(&chunks);
    m.set_output_observer(Some(Box::new(move |icount, offset, bytes| {
        if let Ok(mut c) = sink.lock() {
            c.push((icount, offset, bytes.to_vec()));
        }
    })));
    let mut traps = Vec::new();
    let mut departure = None;
    loop {
        let before = m.icount();
        let counted = traps_so_far(&m);
        let stop = before
            .checked_div(width)
            .map(|k| (k + 1).saturating_mul(width));
        let r = analysis::run_segment(&mut m, seg, stop);
        if width > 0 {
            let (e, i) = traps_so_far(&m);
            let bin = TrapBin {
                exceptions: e - counted.0,
                interrupts: i - counted.1,
            };
            if bin != TrapBin::default() {
                traps.push(((before / width.max(1)) as usize, bin));
            }
        }
        match r {
            Ok(SegmentEnd::Reached) if seg.end.is_none_or(|e| m.icount() < e) => {}
            Ok(SegmentEnd::Reached | SegmentEnd::Ended(_)) => break,
            Ok(SegmentEnd::Hit(hit)) => {
                let d = Departure {
                    segment: *seg,
                    icount: m.icount(),
                    report: format!("the replay stopped: {hit:?}"),
                    diverged: false,
                };
                departure = Some((d, None));
                break;
            }
            Err(e) => {
                let (icount, diverged) = match &e {
                    SessionError::Machine(crate::MachineError::Replay(
                        rewind_replay::ReplayStop::Diverged(d),
                    )) => (d.icount, true),
                    _ => (m.icount(), false),
                };
                let d = Departure {
                    segment: *seg,
                    icount,
                    report: e.to_string(),
                    diverged,
                };
                departure = Some((d, Some(e)));
                break;
            }
        }
    }
    m.set_output_observer(None);
    let chunks = chunks.lock().map(|c| c.clone()).unwrap_or_default();
    SegmentFacts {
        chunks,
        traps,
        departure,
    }
}

/// Console lines from output chunks in order (a last line without a newline included).
pub fn lines_of_chunks<'a>(
    chunks: impl IntoIterator<Item = (u64, u64, &'a [u8])>,
) -> Vec<ConsoleLine> {
    let mut lines = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let (mut start, mut last) = (0u64, 0u64);
    let mut next_offset: Option<u64> = None;
    for (icount, offset, bytes) in chunks {
        // A chunk seen twice (a segment's end and the next one's start) is taken once.
        let skip = next_offset.map_or(0, |n| n.saturating_sub(offset)) as usize;
        if skip >= bytes.len() {
            continue;
        }
        last = icount;
        for (i, &b) in bytes.iter().enumerate().skip(skip) {
            if current.is_empty() {
                start = offset + i as u64;
            }
            if b == b'\n' {
                let mut text = std::mem::take(&mut current);
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                lines.push(ConsoleLine {
                    icount,
                    offset: start,
                    text: String::from_utf8_lossy(&text).into_owned(),
                });
            } else {
                current.push(b);
            }
        }
        next_offset = Some(offset + bytes.len() as u64);
    }
    if !current.is_empty() {
        lines.push(ConsoleLine {
            icount: last,
            offset: start,
            text: String::from_utf8_lossy(&current).into_owned(),
        });
    }
    lines
}

/// Replay every segment, `jobs` at a time, gathering console lines and (with `bins > 0`)
/// traps per bin over `span` instructions. A segment whose replay leaves the recording is
/// not an error: the first one is [`Replayed::departure`], and what it gathered up to there
/// is kept (the other segments start from their own snapshots and are gathered too).
pub fn replay(segments: &Segments<'_>, span: u64, bins: usize, jobs: usize) -> Replayed {
    let width = if bins == 0 {
        0
    } else {
        span.div_ceil(bins as u64).max(1)
    };
    let results = segments.map(jobs, |seg, m| Ok(replay_segment(m, seg, width)));
    let mut facts = Vec::new();
    // The first segment that left the recording, with its error.
    let mut departure: Option<(Departure, Option<SessionError>)> = None;
    for (seg, r) in segments.list().into_iter().zip(results) {
        match r {
            Ok(mut f) => {
                if departure.is_none() {
                    departure = f.departure.take();
                }
                facts.push(f);
            }
            // The segment's machine could not be built (its snapshot cannot be restored).
            Err(e) if departure.is_none() => {
                let d = Departure {
                    segment: seg,
                    icount: seg.start,
                    report: e.to_string(),
                    diverged: false,
                };
                departure = Some((d, Some(e)));
            }
            Err(_) => {}
        }
    }
    let console = lines_of_chunks(
        facts
            .iter()
            .flat_map(|f| f.chunks.iter().map(|(i, o, b)| (*i, *o, b.as_slice()))),
    );
    let nbins = if width == 0 {
        0
    } else {
        (span.div_ceil(width) as usize).max(1)
    };
    let mut traps = vec![TrapBin::default(); nbins];
    for f in &facts {
        for (k, b) in &f.traps {
            if let Some(t) = traps.get_mut(*k) {
                t.exceptions += b.exceptions;
                t.interrupts += b.interrupts;
            } else if let Some(t) = traps.last_mut() {
                t.exceptions += b.exceptions;
                t.interrupts += b.interrupts;
            }
        }
    }
    let (departure, error) = match departure {
        Some((d, e)) => (Some(d), e),
        None => (None, None),
    };
    Replayed {
        console,
        bin_width: width,
        traps,
        departure,
        error,
    }
}

/// The console lines of the recording from its segments replayed `jobs` at a time (the
/// parallel [`analysis::console`]); a segment that leaves the recording is an error.
pub fn console(segments: &Segments<'_>, jobs: usize) -> Result<Vec<ConsoleLine>, SessionError> {
    let r = replay(segments, 0, 0, jobs);
    match (r.error, r.departure) {
        (Some(e), _) => Err(e),
        (None, Some(d)) => Err(SessionError::Request(format!(
            "{}: {}",
            d.segment, d.report
        ))),
        (None, None) => Ok(r.console),
    }
}
