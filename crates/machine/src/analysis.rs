//! Questions asked of a recording (design §10, "Segments"). The snapshots taken while
//! recording cut it into segments; each replays on its own (restore the snapshot, run to the
//! next one), so an analysis maps over segments on threads, each with its own machine, and
//! merges their results in segment order: the result does not depend on the number of jobs.
//!
//! - [`verify`]: every segment replayed and its end compared with the next snapshot;
//! - [`coverage`]: retired instructions by privilege level and pc (union of the segments);
//! - [`console`]: the serial output, line by line, with the icount that wrote each line;
//! - [`last_write`]: the last instruction that wrote an address range before a point.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rewind_cpu::{DebugHit, WatchKind, Watchpoint};

use crate::session::{ReplaySession, SessionError};
use crate::sidecar::{Select, SidecarError};
use crate::snapshot::Snapshot;
use crate::task;
use crate::{Machine, RunOutcome, SerialOutput};

/// One segment of a recording: from a snapshot (or reset) to the next one (or the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Its position, from 0 (the one starting at reset).
    pub index: usize,
    /// First instruction count.
    pub start: u64,
    /// The instruction count of the next snapshot (`None`: the segment runs to the end of
    /// the recording).
    pub end: Option<u64>,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.end {
            Some(e) => write!(
                f,
                "segment {} (instructions {}..{})",
                self.index, self.start, e
            ),
            None => write!(
                f,
                "segment {} (instructions {}..the end)",
                self.index, self.start
            ),
        }
    }
}

/// A recording cut at its snapshots.
pub struct Segments<'a> {
    session: &'a ReplaySession,
    /// The snapshot each segment starts from (the first: the machine at reset).
    starts: Vec<Snapshot>,
    /// Why the recording's default snapshot file was not used (then there is one segment).
    pub warning: Option<SidecarError>,
}

impl std::fmt::Debug for Segments<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segments")
            .field("segments", &self.list())
            .finish_non_exhaustive()
    }
}

/// How a segment's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentEnd {
    /// At the segment's end (the next snapshot).
    Reached,
    /// The recording ended (its end checked), with this outcome.
    Ended(RunOutcome),
    /// A debugger hook fired (the machine stopped before the instruction).
    Hit(DebugHit),
}

impl<'a> Segments<'a> {
    /// Cut the recording `session` opened at the snapshots of its snapshot file.
    pub fn new(session: &'a mut ReplaySession) -> Result<Self, SessionError> {
        let mut m = session.machine(SerialOutput::Null)?;
        let reset = m.snapshot(None)?;
        let loaded = session.snapshots(Select::All, &reset)?;
        let mut starts = vec![reset];
        starts.extend(loaded.snapshots.into_iter().filter(|s| s.icount() > 0));
        let session: &'a ReplaySession = session;
        Ok(Segments {
            session,
            starts,
            warning: loaded.warning,
        })
    }

    /// The segments, in order.
    pub fn list(&self) -> Vec<Segment> {
        (0..self.starts.len())
            .map(|k| Segment {
                index: k,
                start: self.starts[k].icount(),
                end: self.starts.get(k + 1).map(Snapshot::icount),
            })
            .collect()
    }

    /// The session.
    pub fn session(&self) -> &ReplaySession {
        self.session
    }

    /// A replay machine at the start of segment `k` (output discarded).
    pub fn machine_at(&self, k: usize) -> Result<Machine, SessionError> {
        let mut m = self.session.machine(SerialOutput::Null)?;
        if k > 0 {
            let snap = self
                .starts
                .get(k)
                .ok_or_else(|| SessionError::Request(format!("no segment {k}")))?;
            m.restore(snap)?;
        }
        Ok(m)
    }

    /// The snapshot the segment after `seg` starts from (`None` for the last one).
    pub fn end_snapshot(&self, seg: &Segment) -> Option<&Snapshot> {
        self.starts.get(seg.index + 1)
    }

    /// Run `f` on every segment, `jobs` at a time on threads, each segment with its own
    /// machine; results in segment order.
    pub fn map<T: Send>(
        &self,
        jobs: usize,
        f: impl Fn(&Segment, Machine) -> Result<T, SessionError> + Sync,
    ) -> Vec<Result<T, SessionError>> {
        self.map_over(self.list(), jobs, f)
    }

    /// [`Segments::map`] over the segments `segs` only; results in their order.
    pub fn map_over<T: Send>(
        &self,
        segs: Vec<Segment>,
        jobs: usize,
        f: impl Fn(&Segment, Machine) -> Result<T, SessionError> + Sync,
    ) -> Vec<Result<T, SessionError>> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<T, SessionError>>>> =
            Mutex::new((0..segs.len()).map(|_| None).collect());
        let worker = || loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(seg) = segs.get(k) else {
                return;
            };
            let r = self.machine_at(seg.index).and_then(|m| f(seg, m));
            if let Ok(mut g) = results.lock() {
                g[k] = Some(r);
            }
        };
        let jobs = jobs.clamp(1, segs.len().max(1));
        std::thread::scope(|s| {
            for _ in 1..jobs {
                s.spawn(worker);
            }
            worker();
        });
        results
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(SessionError::Request("a segment's worker failed".into())))
            })
            .collect()
    }
}

/// Run `m` (a replay machine at the start of `seg`, or within it) to `stop` (at most the
/// segment's end; `None`: the segment's end). At the end of the recording, its end is
/// checked as a full replay checks it.
pub fn run_segment(
    m: &mut Machine,
    seg: &Segment,
    stop: Option<u64>,
) -> Result<SegmentEnd, SessionError> {
    let stop = match (stop, seg.end) {
        (Some(s), Some(e)) => Some(s.min(e)),
        (s, e) => s.or(e),
    };
    let Some(stop) = stop else {
        return match m.run(None)? {
            RunOutcome::Debug(hit) => Ok(SegmentEnd::Hit(hit)),
            o => {
                m.finish_replay()?;
                Ok(SegmentEnd::Ended(o))
            }
        };
    };
    let now = m.icount();
    if now >= stop {
        return Ok(SegmentEnd::Reached);
    }
    // The limit is a pause, as in a seek: the recording goes on past it.
    m.set_pause_at_limit(true);
    let r = m.run(Some(stop - now));
    m.set_pause_at_limit(false);
    match r? {
        RunOutcome::Debug(hit) => Ok(SegmentEnd::Hit(hit)),
        RunOutcome::InstructionLimit if m.icount() == stop => Ok(SegmentEnd::Reached),
        o => {
            m.finish_replay()?;
            Ok(SegmentEnd::Ended(o))
        }
    }
}

/// What [`verify`] found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheck {
    /// The segment.
    pub segment: Segment,
    /// `Ok` with the state hash at its end, or what went wrong (a divergence: its whole
    /// report, several lines).
    pub result: Result<u64, String>,
}

/// Replay every segment from its snapshot to the next and compare the machine there with the
/// next snapshot (harts, scheduler, devices, serial output, every RAM page); the state checks
/// logged inside a segment are checked by its replay, the last segment's end by the footer.
pub fn verify(segments: &Segments<'_>, jobs: usize) -> Vec<SegmentCheck> {
    let list = segments.list();
    let mut local = task::Local { segments, jobs };
    match task::analyze(&list, &task::AnalysisSpec::Verify, &mut local) {
        Ok(task::Merged::Verify(checks)) => checks,
        Ok(_) | Err(_) => list
            .into_iter()
            .map(|segment| SegmentCheck {
                segment,
                result: Err("the segment's task failed".into()),
            })
            .collect(),
    }
}

/// Verify one segment (machine `m` at its start): `Ok(Ok(hash))` when its end matches the
/// next snapshot, `Ok(Err(what))` when not.
pub(crate) fn verify_segment(
    segments: &Segments<'_>,
    seg: &Segment,
    mut m: Machine,
) -> Result<Result<u64, String>, SessionError> {
    let end = run_segment(&mut m, seg, None)?;
    let check = match (end, segments.end_snapshot(seg)) {
        (SegmentEnd::Reached, Some(next)) => {
            // Pages untouched since the segment's start are shared with its snapshot
            // (not read again), and mostly with the next one too.
            let start = (seg.index > 0).then(|| &segments.starts[seg.index]);
            let now = m.snapshot(start)?;
            compare(&now, next)
        }
        (SegmentEnd::Ended(_), None) => Ok(()),
        (SegmentEnd::Ended(o), Some(next)) => Err(format!(
            "the recording ended at instruction {} ({o}), before its snapshot at {}",
            m.icount(),
            next.icount()
        )),
        (other, _) => Err(format!(
            "the replay stopped at instruction {}: {other:?}",
            m.icount()
        )),
    };
    Ok(check.map(|()| m.state_hash()))
}

/// The first difference between the replayed state `now` and the recorded snapshot `rec`.
fn compare(now: &Snapshot, rec: &Snapshot) -> Result<(), String> {
    if now.icount() != rec.icount() {
        return Err(format!(
            "the replay is at instruction {}, the snapshot at {}",
            now.icount(),
            rec.icount()
        ));
    }
    for (i, (a, b)) in now.harts.iter().zip(&rec.harts).enumerate() {
        if a != b {
            let what = if a.pc != b.pc {
                format!("pc {:#x}, the snapshot has {:#x}", a.pc, b.pc)
            } else if let Some(r) = (0..32).find(|&r| a.x[r] != b.x[r]) {
                format!("x{r} = {:#x}, the snapshot has {:#x}", a.x[r], b.x[r])
            } else if let Some(r) = (0..32).find(|&r| a.f[r] != b.f[r]) {
                format!("f{r} = {:#x}, the snapshot has {:#x}", a.f[r], b.f[r])
            } else {
                "CSRs or privilege differ".to_string()
            };
            return Err(format!("hart {i} differs from the snapshot: {what}"));
        }
    }
    if now.harts.len() != rec.harts.len() {
        return Err("the number of harts differs from the snapshot".into());
    }
    if now.sched != rec.sched {
        return Err("the hart scheduler's state differs from the snapshot".into());
    }
    if now.out_hash != rec.out_hash || now.output_len != rec.output_len {
        return Err(format!(
            "the serial output differs from the snapshot ({} bytes, {} recorded)",
            now.output_len, rec.output_len
        ));
    }
    if now.bus != rec.bus {
        return Err("the devices' state differs from the snapshot".into());
    }
    let (pa, pb) = (now.ram.pages(), rec.ram.pages());
    if pa.len() != pb.len() {
        return Err("the RAM size differs from the snapshot".into());
    }
    for (i, (a, b)) in pa.iter().zip(pb).enumerate() {
        let same = match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x[..] == y[..],
            (Some(x), None) | (None, Some(x)) => x.iter().all(|&b| b == 0),
        };
        if !same {
            let addr = now.ram.base() + i as u64 * rewind_cpu::ram::PAGE_SIZE;
            return Err(format!("RAM page {addr:#x} differs from the snapshot's"));
        }
    }
    Ok(())
}

/// Retired instructions by privilege level (`M`, `S`, `U`) and pc: `counts[mode][pc]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoverageMap {
    /// Hits by mode name, then pc (sorted).
    pub counts: BTreeMap<&'static str, BTreeMap<u64, u64>>,
}

impl CoverageMap {
    /// Add `other`'s counts to these (the union of the pcs, hits summed).
    pub fn merge(&mut self, other: CoverageMap) {
        for (mode, pcs) in other.counts {
            let mine = self.counts.entry(mode).or_default();
            for (pc, n) in pcs {
                *mine.entry(pc).or_insert(0) += n;
            }
        }
    }

    /// Instructions counted.
    pub fn instructions(&self) -> u64 {
        self.counts.values().flat_map(|m| m.values()).sum()
    }

    /// As JSON: `{"instructions": N, "modes": {"M": {"0x80000000": 12, ...}, ...}}` (pcs in
    /// ascending order, so equal maps give byte-identical text).
    pub fn to_json(&self) -> String {
        let modes: serde_json::Map<String, serde_json::Value> = self
            .counts
            .iter()
            .map(|(mode, pcs)| {
                let pcs: serde_json::Map<String, serde_json::Value> = pcs
                    .iter()
                    .map(|(pc, n)| (format!("{pc:#x}"), serde_json::Value::from(*n)))
                    .collect();
                (mode.to_string(), serde_json::Value::Object(pcs))
            })
            .collect();
        let v = serde_json::json!({
            "instructions": self.instructions(),
            "modes": modes,
        });
        format!("{v}\n")
    }
}

fn mode_name(prv: u8) -> &'static str {
    match prv {
        3 => "M",
        1 => "S",
        _ => "U",
    }
}

/// Retired instructions of the whole recording by privilege level and pc, segments replayed
/// `jobs` at a time and merged.
pub fn coverage(segments: &Segments<'_>, jobs: usize) -> Result<CoverageMap, SessionError> {
    match run_local(segments, &task::AnalysisSpec::Coverage, jobs)? {
        task::Merged::Coverage(c) => Ok(c),
        _ => Err(SessionError::Request("coverage: wrong result".into())),
    }
}

/// Run `spec` over every segment on `jobs` threads and merge.
fn run_local(
    segments: &Segments<'_>,
    spec: &task::AnalysisSpec,
    jobs: usize,
) -> Result<task::Merged, SessionError> {
    let mut local = task::Local { segments, jobs };
    task::analyze(&segments.list(), spec, &mut local)
        .map_err(|e| SessionError::Request(e.to_string()))
}

/// The coverage of one segment (machine `m` at its start).
pub(crate) fn coverage_segment(seg: &Segment, mut m: Machine) -> Result<CoverageMap, SessionError> {
    for h in m.harts_mut() {
        h.set_coverage(true);
    }
    let end = run_segment(&mut m, seg, None)?;
    if let SegmentEnd::Hit(hit) = end {
        return Err(SessionError::Request(format!("stopped by {hit:?}")));
    }
    let mut map = CoverageMap::default();
    for h in m.harts_mut() {
        for ((prv, pc), n) in h.take_coverage() {
            *map.counts
                .entry(mode_name(prv))
                .or_default()
                .entry(pc)
                .or_insert(0) += n;
        }
    }
    Ok(map)
}

/// One line of serial output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// The icount of the checkpoint that drained the line's last byte from the UART.
    pub icount: u64,
    /// Offset of its first byte in the whole output.
    pub offset: u64,
    /// The line without its line ending (a trailing `\r` is kept out too).
    pub text: String,
}

impl ConsoleLine {
    /// As one JSON object (`rewind analyze console --json` prints one per line):
    /// `{"icount": N, "offset": BYTE, "text": "..."}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "icount": self.icount,
            "offset": self.offset,
            "text": self.text,
        })
        .to_string()
    }
}

/// The recording's serial output line by line, each with the icount at which it was written
/// (a last line without a newline is included), from one replay from reset.
pub fn console(session: &ReplaySession) -> Result<Vec<ConsoleLine>, SessionError> {
    let m = session.machine(SerialOutput::Null)?;
    let seg = Segment {
        index: 0,
        start: 0,
        end: None,
    };
    Ok(console_lines(&console_segment(&seg, m)?))
}

/// [`console`] by segments, `jobs` at a time (the same lines).
pub fn console_segments(
    segments: &Segments<'_>,
    jobs: usize,
) -> Result<Vec<ConsoleLine>, SessionError> {
    match run_local(segments, &task::AnalysisSpec::Console, jobs)? {
        task::Merged::Console(c) => Ok(c),
        _ => Err(SessionError::Request("console: wrong result".into())),
    }
}

/// The serial output drained in one segment (machine `m` at its start), in order.
pub(crate) fn console_segment(
    seg: &Segment,
    mut m: Machine,
) -> Result<Vec<task::OutputChunk>, SessionError> {
    let chunks = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&chunks);
    m.set_output_observer(Some(Box::new(move |icount, offset, bytes| {
        if let Ok(mut c) = sink.lock() {
            c.push(task::OutputChunk {
                icount,
                offset,
                bytes: bytes.to_vec(),
            });
        }
    })));
    let end = run_segment(&mut m, seg, None);
    m.set_output_observer(None);
    if let SegmentEnd::Hit(hit) = end? {
        return Err(SessionError::Request(format!("stopped by {hit:?}")));
    }
    drop(m);
    let mut c = chunks
        .lock()
        .map_err(|_| SessionError::Request("the console observer failed".into()))?;
    Ok(std::mem::take(&mut *c))
}

/// The lines of the output `chunks` (in order), each with the icount of the chunk holding
/// its newline; a last line without one gets the last chunk's icount.
pub(crate) fn console_lines(chunks: &[task::OutputChunk]) -> Vec<ConsoleLine> {
    let mut lines = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let (mut start, mut last_icount) = (0, 0);
    for c in chunks {
        last_icount = c.icount;
        for (i, &b) in c.bytes.iter().enumerate() {
            if current.is_empty() {
                start = c.offset + i as u64;
            }
            if b == b'\n' {
                let mut text = std::mem::take(&mut current);
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                lines.push(ConsoleLine {
                    icount: c.icount,
                    offset: start,
                    text: String::from_utf8_lossy(&text).into_owned(),
                });
            } else {
                current.push(b);
            }
        }
    }
    if !current.is_empty() {
        lines.push(ConsoleLine {
            icount: last_icount,
            offset: start,
            text: String::from_utf8_lossy(&current).into_owned(),
        });
    }
    lines
}

/// An instruction that wrote a watched range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The icount at which it executed (it is the `icount+1`-th instruction).
    pub icount: u64,
    /// Its pc.
    pub pc: u64,
    /// The privilege level it ran in (`M`, `S` or `U`).
    pub mode: &'static str,
    /// The hart that executed it.
    pub hart: usize,
    /// First byte written (virtual).
    pub addr: u64,
    /// The watched range's bytes just after it (read as that hart sees them).
    pub value: Vec<u8>,
}

impl Write {
    /// The bytes after the write, in hex.
    pub fn bytes_hex(&self) -> String {
        self.value.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes after the write read as a little-endian integer, when there are 1 to 8.
    pub fn value_le(&self) -> Option<u64> {
        (self.value.len() <= 8 && !self.value.is_empty()).then(|| {
            self.value
                .iter()
                .rev()
                .fold(0u64, |v, &b| (v << 8) | u64::from(b))
        })
    }

    /// As one JSON object (`rewind analyze last-write --json`).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "icount": self.icount,
            "pc": format!("{:#x}", self.pc),
            "mode": self.mode,
            "hart": self.hart,
            "addr": format!("{:#x}", self.addr),
            "bytes": self.bytes_hex(),
            "value": self.value_le(),
        })
        .to_string()
    }
}

/// The last instruction that wrote any byte of `[addr, addr+len)` (virtual addresses as the
/// harts see them) before instruction count `before` (default: the end). The segments are
/// scanned backwards from the one holding `before`, `jobs` at a time, each with a write
/// watchpoint on every hart; the latest segment with a hit has the answer (so the answer does
/// not depend on `jobs`, and a write near the end costs one round of segments).
pub fn last_write(
    segments: &Segments<'_>,
    addr: u64,
    len: u64,
    before: Option<u64>,
    jobs: usize,
) -> Result<Option<Write>, SessionError> {
    last_write_in_space(segments, addr, len, before, jobs, false)
}

/// [`last_write`] on physical addresses (`physical`): the range is watched in RAM, whatever
/// virtual address a store used (each store translated as the debugger translates: the
/// hart's current address space, `mstatus.MPRV` ignored); [`Write::addr`] is then the
/// virtual address the store used and [`Write::value`] the range's bytes in RAM.
pub fn last_write_in_space(
    segments: &Segments<'_>,
    addr: u64,
    len: u64,
    before: Option<u64>,
    jobs: usize,
    physical: bool,
) -> Result<Option<Write>, SessionError> {
    let spec = task::AnalysisSpec::LastWrite {
        addr,
        len,
        before,
        physical,
    };
    match run_local(segments, &spec, jobs)? {
        task::Merged::LastWrite(w) => Ok(w),
        _ => Err(SessionError::Request("last-write: wrong result".into())),
    }
}

/// The last write to the range in segment `seg` (machine `m` at its start) before `before`.
pub(crate) fn last_write_in(
    mut m: Machine,
    seg: &Segment,
    addr: u64,
    len: u64,
    before: Option<u64>,
    physical: bool,
) -> Result<Option<Write>, SessionError> {
    let watch = Watchpoint {
        addr,
        len: len.max(1),
        kind: WatchKind::Write,
    };
    for h in m.harts_mut() {
        if physical {
            h.set_phys_watchpoints(&[watch]);
        } else {
            h.set_watchpoints(&[watch]);
        }
    }
    let mut last = None;
    loop {
        match run_segment(&mut m, seg, before)? {
            SegmentEnd::Hit(DebugHit::Watchpoint { addr: at, .. }) => {
                let icount = m.icount();
                let hart = m.current_hart();
                let h = &m.harts()[hart];
                let (pc, mode) = (h.pc, mode_name(h.prv as u8));
                // Execute the store, then read what it left.
                m.harts_mut()[hart].skip_debug_once();
                let stepped = run_segment(&mut m, seg, Some(icount + 1))?;
                let value = if physical {
                    read_physical(&m, addr, len.max(1))
                } else {
                    read_virtual(&m, hart, addr, len.max(1))
                };
                last = Some(Write {
                    icount,
                    pc,
                    mode,
                    hart,
                    addr: at,
                    value,
                });
                if stepped != SegmentEnd::Reached || before.is_some_and(|b| m.icount() >= b) {
                    break;
                }
            }
            SegmentEnd::Hit(other) => {
                return Err(SessionError::Request(format!("stopped by {other:?}")))
            }
            SegmentEnd::Reached | SegmentEnd::Ended(_) => break,
        }
        if seg.end.is_some_and(|e| m.icount() >= e) {
            break;
        }
    }
    Ok(last)
}

/// `len` bytes of RAM at physical `addr` (bytes outside RAM are left out).
fn read_physical(m: &Machine, addr: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..len.min(4096) {
        let mut b = [0u8; 1];
        match m.ram().read(addr.wrapping_add(i), &mut b) {
            Ok(()) => out.push(b[0]),
            Err(_) => break,
        }
    }
    out
}

/// `len` bytes at virtual `addr` as hart `hart` sees them (bytes that cannot be read are
/// left out).
fn read_virtual(m: &Machine, hart: usize, addr: u64, len: u64) -> Vec<u8> {
    let h = &m.harts()[hart];
    let mut out = Vec::new();
    for i in 0..len.min(4096) {
        let va = addr.wrapping_add(i);
        let mut b = [0u8; 1];
        match h.debug_translate(m.ram(), va) {
            Some(pa) if m.ram().read(pa, &mut b).is_ok() => out.push(b[0]),
            _ => break,
        }
    }
    out
}

/// One system call of a U-mode program: its `ecall` and, when the recording shows it, its
/// return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syscall {
    /// The instruction count at the `ecall`.
    pub icount: u64,
    /// The hart that made it.
    pub hart: usize,
    /// The `ecall`'s pc.
    pub pc: u64,
    /// `satp` at the call (tells address spaces apart).
    pub satp: u64,
    /// The number (a7).
    pub nr: u64,
    /// a0..a5.
    pub args: [u64; 6],
    /// The result (a0 at the `sret` back to the caller) and the icount of that `sret`.
    pub ret: Option<(u64, u64)>,
}

impl Syscall {
    /// As one JSON object (`rewind analyze syscalls --json` prints one per line).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "icount": self.icount,
            "hart": self.hart,
            "pc": format!("{:#x}", self.pc),
            "satp": format!("{:#x}", self.satp),
            "nr": self.nr,
            "name": syscall_name(self.nr),
            "args": self.args,
            "ret": self.ret.map(|r| r.0 as i64),
            "ret_icount": self.ret.map(|r| r.1),
        })
        .to_string()
    }
}

/// The Linux (riscv64, asm-generic) name of system call `nr`, for the common ones.
pub fn syscall_name(nr: u64) -> Option<&'static str> {
    Some(match nr {
        17 => "getcwd",
        23 => "dup",
        24 => "dup3",
        25 => "fcntl",
        29 => "ioctl",
        34 => "mkdirat",
        35 => "unlinkat",
        48 => "faccessat",
        49 => "chdir",
        56 => "openat",
        57 => "close",
        59 => "pipe2",
        61 => "getdents64",
        62 => "lseek",
        63 => "read",
        64 => "write",
        65 => "readv",
        66 => "writev",
        72 => "pselect6",
        73 => "ppoll",
        78 => "readlinkat",
        79 => "newfstatat",
        80 => "fstat",
        93 => "exit",
        94 => "exit_group",
        96 => "set_tid_address",
        98 => "futex",
        99 => "set_robust_list",
        101 => "nanosleep",
        113 => "clock_gettime",
        124 => "sched_yield",
        129 => "kill",
        134 => "rt_sigaction",
        135 => "rt_sigprocmask",
        139 => "rt_sigreturn",
        153 => "times",
        154 => "setpgid",
        155 => "getpgid",
        157 => "setsid",
        160 => "uname",
        166 => "umask",
        167 => "prctl",
        172 => "getpid",
        173 => "getppid",
        174 => "getuid",
        175 => "geteuid",
        176 => "getgid",
        177 => "getegid",
        178 => "gettid",
        179 => "sysinfo",
        198 => "socket",
        203 => "connect",
        214 => "brk",
        215 => "munmap",
        220 => "clone",
        221 => "execve",
        222 => "mmap",
        226 => "mprotect",
        233 => "madvise",
        260 => "wait4",
        261 => "prlimit64",
        278 => "getrandom",
        291 => "statx",
        435 => "clone3",
        _ => return None,
    })
}

/// Every `ecall` from U-mode in the recording (a strace of it), in instruction order, each
/// matched with the `sret` that returns to the instruction after it in the same address
/// space with the same stack pointer (the calling thread), wherever that is. Segments run
/// `jobs` at a time; a call in one segment may return in a later one.
pub fn syscalls(segments: &Segments<'_>, jobs: usize) -> Result<Vec<Syscall>, SessionError> {
    match run_local(segments, &task::AnalysisSpec::Syscalls, jobs)? {
        task::Merged::Syscalls(c) => Ok(c),
        _ => Err(SessionError::Request("syscalls: wrong result".into())),
    }
}

/// The syscall events of one segment (machine `m` at its start), by global icount.
pub(crate) fn syscalls_segment(
    seg: &Segment,
    mut m: Machine,
) -> Result<Vec<(usize, rewind_cpu::SyscallEvent)>, SessionError> {
    for h in m.harts_mut() {
        h.set_syscall_log(true);
    }
    if let SegmentEnd::Hit(hit) = run_segment(&mut m, seg, None)? {
        return Err(SessionError::Request(format!("stopped by {hit:?}")));
    }
    let mut events = Vec::new();
    for (k, h) in m.harts_mut().iter_mut().enumerate() {
        events.extend(h.take_syscalls().into_iter().map(|e| (k, e)));
    }
    // Per hart in order; across harts by the global count (stable: a hart's own order
    // is kept where counts tie).
    events.sort_by_key(|(_, e)| e.icount);
    Ok(events)
}

/// Calls matched with their returns over the segments' events (in segment order).
pub(crate) fn match_syscalls(segments: Vec<Vec<task::SyscallEventRecord>>) -> Vec<Syscall> {
    let mut calls: Vec<Syscall> = Vec::new();
    // Calls not yet returned, by (satp, return pc, sp): indices into `calls`.
    let mut open: std::collections::HashMap<(u64, u64, u64), Vec<usize>> = Default::default();
    for e in segments.into_iter().flatten() {
        if e.call {
            open.entry((e.satp, e.pc.wrapping_add(4), e.sp))
                .or_default()
                .push(calls.len());
            calls.push(Syscall {
                icount: e.icount,
                hart: e.hart,
                pc: e.pc,
                satp: e.satp,
                nr: e.regs[0],
                args: [
                    e.regs[1], e.regs[2], e.regs[3], e.regs[4], e.regs[5], e.regs[6],
                ],
                ret: None,
            });
        } else if let Some(waiting) = open.get_mut(&(e.satp, e.pc, e.sp)) {
            if !waiting.is_empty() {
                let i = waiting.remove(0);
                calls[i].ret = Some((e.regs[1], e.icount));
            }
        }
    }
    calls
}

/// A function of an ELF's symbol table with what coverage counted in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCoverage {
    /// Its name.
    pub name: String,
    /// Its first address.
    pub addr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Instructions retired in it (all privilege levels).
    pub hits: u64,
    /// Distinct pcs hit in it.
    pub pcs: u64,
}

/// The functions (`STT_FUNC` symbols with a size) of the ELF `elf`, each with the coverage
/// `cov` counted in it; functions never hit are left out. Sorted by hits, most first (then by
/// address). A malformed ELF is an error naming the problem.
pub fn coverage_by_function(
    cov: &CoverageMap,
    elf: &[u8],
) -> Result<Vec<FunctionCoverage>, String> {
    let e = goblin::elf::Elf::parse(elf).map_err(|e| format!("not a usable ELF: {e}"))?;
    let mut funcs: Vec<(u64, u64, String)> = e
        .syms
        .iter()
        .filter(|s| s.st_type() == goblin::elf::sym::STT_FUNC && s.st_size > 0)
        .map(|s| {
            let name = e.strtab.get_at(s.st_name).unwrap_or("?").to_string();
            (s.st_value, s.st_size, name)
        })
        .collect();
    funcs.sort();
    funcs.dedup_by_key(|f| f.0);
    let mut out: Vec<FunctionCoverage> = Vec::new();
    for (addr, size, name) in funcs {
        let end = addr.saturating_add(size);
        let (mut hits, mut pcs) = (0, 0);
        for m in cov.counts.values() {
            for (_, n) in m.range(addr..end) {
                hits += n;
                pcs += 1;
            }
        }
        if hits > 0 {
            out.push(FunctionCoverage {
                name,
                addr,
                size,
                hits,
                pcs,
            });
        }
    }
    out.sort_by(|a, b| b.hits.cmp(&a.hits).then(a.addr.cmp(&b.addr)));
    Ok(out)
}

/// The address of symbol `name` in the ELF `elf` (`None`: not there, or not an ELF).
pub fn elf_symbol(elf: &[u8], name: &str) -> Option<u64> {
    let e = goblin::elf::Elf::parse(elf).ok()?;
    e.syms
        .iter()
        .find(|s| e.strtab.get_at(s.st_name) == Some(name))
        .map(|s| s.st_value)
}
