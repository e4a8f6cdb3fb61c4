//! The segment-task seam (design §10, "Segments"): every analysis is an [`AnalysisSpec`]
//! (kind + options, serialisable), a function that runs it on one segment ([`run_task`])
//! and returns a serialisable [`Partial`], and a merge of the partials in segment order
//! ([`merge`]). Who runs the tasks is a [`Runner`]: [`Local`] runs them on threads
//! (`--jobs N`); an engine (the CLI's Ray driver) runs them anywhere and hands their JSON
//! back. Every path ends in the same merge of the same partials, so 1 job, N jobs and an
//! engine give the same result by construction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{
    self, ConsoleLine, CoverageMap, Segment, SegmentCheck, Segments, Syscall, Write,
};
use crate::session::SessionError;
use crate::Machine;

/// What to ask of every segment: an analysis and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AnalysisSpec {
    /// Replay the segment and compare its end with the next snapshot.
    Verify,
    /// Retired instructions by privilege level and pc.
    Coverage,
    /// The serial output written in the segment, with icounts.
    Console,
    /// `ecall`s from U-mode and `sret`s back to U-mode.
    Syscalls,
    /// The last write to `[addr, addr+len)` before `before`.
    LastWrite {
        /// First byte (virtual).
        addr: u64,
        /// Bytes in the range.
        len: u64,
        /// Only writes before this icount.
        before: Option<u64>,
        /// The range is physical (RAM), whatever virtual address a store used.
        #[serde(default)]
        physical: bool,
    },
}

impl AnalysisSpec {
    /// The segments worth running, in the order their partials are merged (all of them;
    /// for last-write, those before `before`, latest first).
    pub fn candidates(&self, list: &[Segment]) -> Vec<Segment> {
        match self {
            AnalysisSpec::LastWrite { before, .. } => list
                .iter()
                .rev()
                .filter(|seg| before.is_none_or(|b| seg.start < b))
                .copied()
                .collect(),
            _ => list.to_vec(),
        }
    }
}

/// Serial output drained in a segment: at `icount`, `bytes` at `offset` of the whole output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputChunk {
    /// The icount of the checkpoint that drained it.
    pub icount: u64,
    /// Offset of its first byte in the whole output.
    pub offset: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A syscall hook event of one hart, with global icount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallEventRecord {
    /// The hart.
    pub hart: usize,
    /// `true`: the `ecall`; `false`: the `sret`.
    pub call: bool,
    /// The global instruction count.
    pub icount: u64,
    /// The `ecall`'s pc, or the pc the `sret` returns to.
    pub pc: u64,
    /// `satp`.
    pub satp: u64,
    /// The stack pointer.
    pub sp: u64,
    /// Call: a7, a0..a5; return: a0 in `regs[1]`.
    pub regs: [u64; 7],
}

/// A write found by last-write (the wire form of [`Write`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// Its icount.
    pub icount: u64,
    /// Its pc.
    pub pc: u64,
    /// `M`, `S` or `U`.
    pub mode: String,
    /// The hart.
    pub hart: usize,
    /// First byte written.
    pub addr: u64,
    /// The range's bytes just after it.
    pub value: Vec<u8>,
}

/// One segment's answer, to be merged with the others'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Partial {
    /// The state hash at the segment's end, or what differs (a divergence: its report).
    Verify {
        /// `Ok(hash)` or the problem.
        result: Result<u64, String>,
    },
    /// Hits by mode, then `(pc, hits)` ascending.
    Coverage {
        /// By mode name.
        modes: BTreeMap<String, Vec<(u64, u64)>>,
    },
    /// Output drained in the segment, in order.
    Console {
        /// The chunks.
        chunks: Vec<OutputChunk>,
    },
    /// Syscall events, by global icount.
    Syscalls {
        /// The events.
        events: Vec<SyscallEventRecord>,
    },
    /// The segment's last write to the range, if any.
    LastWrite {
        /// The write.
        write: Option<WriteRecord>,
    },
}

/// The result of a task on one segment as it travels (the hidden `rewind segment-task`
/// prints it): which segment, and its partial or its failure (a divergence report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The segment it ran.
    pub segment: Segment,
    /// The partial, or the error (several lines for a divergence).
    pub partial: Result<Partial, Failure>,
}

/// A segment task that failed: its message (a divergence: the whole report) and whether the
/// replay diverged (the CLI's exit status 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub message: String,
    /// The segment's replay diverged from the recording.
    #[serde(default)]
    pub diverged: bool,
}

impl Failure {
    /// A failure that is not a divergence.
    pub fn other(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            diverged: false,
        }
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        let diverged = matches!(
            &e,
            SessionError::Machine(crate::MachineError::Replay(
                rewind_replay::ReplayStop::Diverged(_)
            ))
        );
        Failure {
            message: e.to_string(),
            diverged,
        }
    }
}

/// Anything that runs segment tasks: threads here, or an engine elsewhere.
pub trait Runner {
    /// Tasks it runs at once (last-write scans this many segments per round).
    fn parallelism(&self) -> usize;
    /// Run `spec` on each of `segs`; one result per segment, in their order. `Err`: the
    /// runner itself failed (an engine unreachable); a segment's failure is inside.
    fn run(
        &mut self,
        spec: &AnalysisSpec,
        segs: &[Segment],
    ) -> Result<Vec<Result<Partial, Failure>>, String>;
}

/// Runs tasks on `jobs` threads of this process, each segment with its own machine.
pub struct Local<'s, 'a> {
    /// The recording's segments.
    pub segments: &'s Segments<'a>,
    /// Threads.
    pub jobs: usize,
}

impl Runner for Local<'_, '_> {
    fn parallelism(&self) -> usize {
        self.jobs.max(1)
    }

    fn run(
        &mut self,
        spec: &AnalysisSpec,
        segs: &[Segment],
    ) -> Result<Vec<Result<Partial, Failure>>, String> {
        let segments = self.segments;
        Ok(segments
            .map_over(segs.to_vec(), self.jobs, |seg, m| {
                run_task(segments, spec, seg, m)
            })
            .into_iter()
            .map(|r| r.map_err(Failure::from))
            .collect())
    }
}

/// Run `spec` on segment `seg` of `segments` (machine `m` at its start).
pub fn run_task(
    segments: &Segments<'_>,
    spec: &AnalysisSpec,
    seg: &Segment,
    m: Machine,
) -> Result<Partial, SessionError> {
    match spec {
        AnalysisSpec::Verify => Ok(Partial::Verify {
            result: analysis::verify_segment(segments, seg, m)
                .unwrap_or_else(|e| Err(e.to_string())),
        }),
        AnalysisSpec::Coverage => {
            let map = analysis::coverage_segment(seg, m)?;
            Ok(Partial::Coverage {
                modes: map
                    .counts
                    .into_iter()
                    .map(|(mode, pcs)| (mode.to_string(), pcs.into_iter().collect()))
                    .collect(),
            })
        }
        AnalysisSpec::Console => Ok(Partial::Console {
            chunks: analysis::console_segment(seg, m)?,
        }),
        AnalysisSpec::Syscalls => Ok(Partial::Syscalls {
            events: analysis::syscalls_segment(seg, m)?
                .into_iter()
                .map(|(hart, e)| SyscallEventRecord {
                    hart,
                    call: e.call,
                    icount: e.icount,
                    pc: e.pc,
                    satp: e.satp,
                    sp: e.sp,
                    regs: e.regs,
                })
                .collect(),
        }),
        AnalysisSpec::LastWrite {
            addr,
            len,
            before,
            physical,
        } => {
            let w = analysis::last_write_in(m, seg, *addr, *len, *before, *physical)?;
            Ok(Partial::LastWrite {
                write: w.map(|w| WriteRecord {
                    icount: w.icount,
                    pc: w.pc,
                    mode: w.mode.to_string(),
                    hart: w.hart,
                    addr: w.addr,
                    value: w.value,
                }),
            })
        }
    }
}

/// Run the task `spec` on segment number `index` of `segments` (the hidden
/// `rewind segment-task`): the result as one JSON line's worth of text.
pub fn run_task_at(segments: &Segments<'_>, spec: &AnalysisSpec, index: usize) -> TaskResult {
    let list = segments.list();
    let Some(seg) = list.get(index).copied() else {
        return TaskResult {
            segment: Segment {
                index,
                start: 0,
                end: None,
            },
            partial: Err(Failure::other(format!(
                "the recording has {} segments, there is no segment {index}",
                list.len()
            ))),
        };
    };
    let partial = segments
        .machine_at(index)
        .and_then(|m| run_task(segments, spec, &seg, m))
        .map_err(Failure::from);
    TaskResult {
        segment: seg,
        partial,
    }
}

/// An analysis's merged answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// Every segment's check, in order.
    Verify(Vec<SegmentCheck>),
    /// The coverage of the whole recording.
    Coverage(CoverageMap),
    /// The console lines.
    Console(Vec<ConsoleLine>),
    /// The system calls, in order.
    Syscalls(Vec<Syscall>),
    /// The last write, if any.
    LastWrite(Option<Write>),
}

/// Why an analysis failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A segment's task failed (for a divergence, the message holds its report).
    #[error("{segment}: {}", failure.message)]
    Segment {
        /// The segment.
        segment: Segment,
        /// What went wrong.
        failure: Failure,
    },
    /// The runner failed (an engine unreachable, a worker lost).
    #[error("{0}")]
    Runner(String),
    /// A partial of the wrong kind or count (a runner out of step with the spec).
    #[error("{0}")]
    Mismatch(String),
}

/// Run `spec` over the segments `list` of a recording with `runner` and merge the partials.
/// Last-write runs rounds of `runner.parallelism()` segments, latest first, and stops at the
/// first round with a hit; the others run every segment once.
pub fn analyze(
    list: &[Segment],
    spec: &AnalysisSpec,
    runner: &mut dyn Runner,
) -> Result<Merged, TaskError> {
    let candidates = spec.candidates(list);
    if let AnalysisSpec::LastWrite { .. } = spec {
        for round in candidates.chunks(runner.parallelism().max(1)) {
            let parts = runner.run(spec, round).map_err(TaskError::Runner)?;
            if let Merged::LastWrite(Some(w)) = merge(spec, round, parts)? {
                return Ok(Merged::LastWrite(Some(w)));
            }
        }
        return Ok(Merged::LastWrite(None));
    }
    let parts = runner.run(spec, &candidates).map_err(TaskError::Runner)?;
    merge(spec, &candidates, parts)
}

fn static_mode(m: &str) -> Result<&'static str, TaskError> {
    match m {
        "M" => Ok("M"),
        "S" => Ok("S"),
        "U" => Ok("U"),
        _ => Err(TaskError::Mismatch(format!(
            "'{m}' is not a privilege level"
        ))),
    }
}

/// Merge the partials `parts` of the segments `segs` (in the order [`AnalysisSpec::candidates`]
/// gives) into the analysis's answer. The first failed segment fails the analysis (verify:
/// it is that segment's check).
pub fn merge(
    spec: &AnalysisSpec,
    segs: &[Segment],
    parts: Vec<Result<Partial, Failure>>,
) -> Result<Merged, TaskError> {
    if parts.len() != segs.len() {
        return Err(TaskError::Mismatch(format!(
            "{} results for {} segments",
            parts.len(),
            segs.len()
        )));
    }
    let wrong =
        |seg: &Segment| TaskError::Mismatch(format!("{seg}: the result is not of a {spec:?} task"));
    if let AnalysisSpec::Verify = spec {
        let mut checks = Vec::new();
        for (seg, p) in segs.iter().zip(parts) {
            let result = match p {
                Ok(Partial::Verify { result }) => result,
                Ok(_) => return Err(wrong(seg)),
                Err(e) => Err(e.message),
            };
            checks.push(SegmentCheck {
                segment: *seg,
                result,
            });
        }
        return Ok(Merged::Verify(checks));
    }
    let mut ok = Vec::new();
    for (seg, p) in segs.iter().zip(parts) {
        match p {
            Ok(p) => ok.push((*seg, p)),
            Err(failure) => {
                return Err(TaskError::Segment {
                    segment: *seg,
                    failure,
                })
            }
        }
    }
    match spec {
        AnalysisSpec::Verify => Err(TaskError::Mismatch("verify".into())),
        AnalysisSpec::Coverage => {
            let mut all = CoverageMap::default();
            for (seg, p) in ok {
                let Partial::Coverage { modes } = p else {
                    return Err(wrong(&seg));
                };
                let mut map = CoverageMap::default();
                for (mode, pcs) in modes {
                    map.counts
                        .insert(static_mode(&mode)?, pcs.into_iter().collect());
                }
                all.merge(map);
            }
            Ok(Merged::Coverage(all))
        }
        AnalysisSpec::Console => {
            let mut chunks = Vec::new();
            for (seg, p) in ok {
                let Partial::Console { chunks: c } = p else {
                    return Err(wrong(&seg));
                };
                chunks.extend(c);
            }
            Ok(Merged::Console(analysis::console_lines(&chunks)))
        }
        AnalysisSpec::Syscalls => {
            let mut events = Vec::new();
            for (seg, p) in ok {
                let Partial::Syscalls { events: e } = p else {
                    return Err(wrong(&seg));
                };
                events.push(e);
            }
            Ok(Merged::Syscalls(analysis::match_syscalls(events)))
        }
        AnalysisSpec::LastWrite { .. } => {
            // Latest segment first: its last hit is the answer.
            for (seg, p) in ok {
                let Partial::LastWrite { write } = p else {
                    return Err(wrong(&seg));
                };
                if let Some(w) = write {
                    return Ok(Merged::LastWrite(Some(Write {
                        icount: w.icount,
                        pc: w.pc,
                        mode: static_mode(&w.mode)?,
                        hart: w.hart,
                        addr: w.addr,
                        value: w.value,
                    })));
                }
            }
            Ok(Merged::LastWrite(None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_partials_survive_json() {
        let specs = [
            AnalysisSpec::Verify,
            AnalysisSpec::Coverage,
            AnalysisSpec::LastWrite {
                addr: u64::MAX,
                len: 8,
                before: Some(1 << 63),
                physical: true,
            },
        ];
        for s in specs {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<AnalysisSpec>(&text).unwrap(), s);
        }
        let r = TaskResult {
            segment: Segment {
                index: 2,
                start: 10,
                end: None,
            },
            partial: Ok(Partial::Coverage {
                modes: [("S".to_string(), vec![(u64::MAX, 3), (0x8000_0000, 1)])].into(),
            }),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<TaskResult>(&text).unwrap(), r);
        let text = r#"{"kind":"last-write","addr":1,"len":2,"before":null}"#;
        assert_eq!(
            serde_json::from_str::<AnalysisSpec>(text).unwrap(),
            AnalysisSpec::LastWrite {
                addr: 1,
                len: 2,
                before: None,
                physical: false
            }
        );
    }

    #[test]
    fn a_failed_segment_fails_the_merge_with_its_name() {
        let segs = [Segment {
            index: 1,
            start: 5,
            end: Some(9),
        }];
        let e = merge(
            &AnalysisSpec::Coverage,
            &segs,
            vec![Err(Failure::other("diverged"))],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "segment 1 (instructions 5..9): diverged");
        let Merged::Verify(c) = merge(
            &AnalysisSpec::Verify,
            &segs,
            vec![Err(Failure::other("diverged"))],
        )
        .unwrap() else {
            panic!("not verify")
        };
        assert_eq!(c[0].result, Err("diverged".to_string()));
        assert!(merge(&AnalysisSpec::Coverage, &segs, vec![]).is_err());
    }
}
