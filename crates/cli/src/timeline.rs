//! `rewind timeline TRACE -o t.html`: one self-contained page (inline script, style and SVG;
//! nothing fetched) with the recording on an instruction-count axis. The facts come from
//! rewind_machine::timeline; this file parses options and writes the page.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rewind_machine::analysis::Segments;
use rewind_machine::timeline::{self, Lane};

use crate::analyze::TraceArgs;
use crate::commands::{open_session, same_file};

/// The page, with `__TITLE__` and `__DATA__` to fill in.
const PAGE: &str = include_str!("timeline.html");

/// Bins of the traps' density lane.
const TRAP_BINS: usize = 2000;

/// `rewind timeline`.
#[derive(clap::Args, Debug)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// The HTML page to write.
    #[arg(short = 'o', long = "output", value_name = "HTML")]
    pub output: PathBuf,
    /// Draw the logged events only: no replay (no console lines, traps or divergence check).
    #[arg(long)]
    pub events_only: bool,
    /// Segments replayed at once (default: the number of cores).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jobs: Option<u64>,
}

/// Colour of a lane's marks.
fn colour(lane: Lane) -> &'static str {
    match lane {
        Lane::SerialInput => "#0f9d7a",
        Lane::Keyboard => "#16a34a",
        Lane::Pointer => "#65a30d",
        Lane::NetIn => "#0891b2",
        Lane::NetOut => "#0e7490",
        Lane::AudioIn => "#db2777",
        Lane::Entropy => "#a16207",
        Lane::Clock => "#c2410c",
        Lane::IdleWarp => "#94a3b8",
        Lane::StateCheck => "#475569",
        Lane::Snapshot => "#7c3aed",
        Lane::Shutdown => "#be123c",
    }
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Refuse an output path that is the recording or one of its snapshot files.
fn check_output(out: &Path, protected: &[PathBuf]) -> anyhow::Result<()> {
    if out.is_dir() {
        bail!(
            "{}: is a directory; -o takes the HTML file to write (e.g. {}/timeline.html)",
            out.display(),
            out.display()
        );
    }
    if protected.iter().any(|p| p == out || same_file(p, out)) {
        bail!(
            "{}: refusing to write the timeline over the recording or its snapshots",
            out.display()
        );
    }
    Ok(())
}

/// `rewind timeline TRACE -o HTML`.
pub fn timeline(a: TimelineArgs) -> anyhow::Result<u8> {
    let t = &a.trace;
    let mut protected = vec![
        t.file.clone(),
        rewind_machine::sidecar::sidecar_path(&t.file),
    ];
    protected.extend(t.snapshots.clone());
    check_output(&a.output, &protected)?;
    let mut opened = open_session(&t.file, &t.image, t.snapshots.as_deref())?;
    let session = &mut opened.session;
    check_output(&a.output, &session.protected_files())?;
    let trace_path = session.trace().to_path_buf();
    let (marks, cut) = timeline::logged_marks(&trace_path)?;
    if let Some(c) = &cut {
        eprintln!(
            "rewind: warning: {}: recording was cut short: {c}",
            t.file.display()
        );
    }
    let total = session.total();
    let end = total
        .or_else(|| marks.last().map(|m| m.icount))
        .unwrap_or(0);
    // How the run ended: its last shutdown or exit event (a reset does not end it).
    let outcome = match (total, &cut) {
        (_, Some(_)) => Some("cut short".to_string()),
        (Some(_), None) => marks
            .iter()
            .rev()
            .find(|m| m.lane == Lane::Shutdown && !m.label.contains("system_reset"))
            .map(|m| m.label.clone()),
        (None, None) => None,
    };
    let segs = Segments::new(session).map_err(crate::commands::session_error)?;
    if let Some(w) = &segs.warning {
        eprintln!("rewind: warning: {w}; going on without these snapshots");
    }
    let list = segs.list();
    let snapshots: Vec<u64> = list.iter().skip(1).map(|s| s.start).collect();
    let replayed = (!a.events_only).then(|| {
        let jobs = crate::analyze::jobs(a.jobs);
        timeline::replay(&segs, end, TRAP_BINS, jobs)
    });

    // Snapshots at the snapshot file's positions (else where the log marks them).
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for m in &marks {
        if m.lane == Lane::Snapshot && !snapshots.is_empty() {
            continue;
        }
        rows.push(serde_json::json!([m.lane.id(), m.icount, m.label]));
    }
    for (k, n) in snapshots.iter().enumerate() {
        rows.push(serde_json::json!([
            Lane::Snapshot.id(),
            n,
            format!("snapshot {} (segment {} starts here)", k + 1, k + 1)
        ]));
    }
    let lanes: Vec<serde_json::Value> = Lane::ALL
        .iter()
        .map(|l| serde_json::json!({"id": l.id(), "title": l.title(), "color": colour(*l)}))
        .collect();
    let console: Vec<serde_json::Value> = replayed
        .as_ref()
        .map(|r| {
            r.console
                .iter()
                .map(|l| serde_json::json!([l.icount, l.text]))
                .collect()
        })
        .unwrap_or_default();
    let traps = replayed.as_ref().filter(|r| r.bin_width > 0).map(|r| {
        let bins: Vec<[u64; 2]> = r
            .traps
            .iter()
            .map(|b| [b.exceptions, b.interrupts])
            .collect();
        serde_json::json!({"width": r.bin_width, "bins": bins})
    });
    let departure = replayed.as_ref().and_then(|r| r.departure.as_ref());
    let shown = t.file.display().to_string();
    let data = serde_json::json!({
        "trace": shown,
        "replay": format!("rewind replay {}", shell_quote(&shown)),
        "end": end,
        "outcome": outcome,
        "snapshots": snapshots.len(),
        "replayed": replayed.is_some(),
        "lanes": lanes,
        "marks": rows,
        "console": console,
        "traps": traps,
        "divergence": departure.map(|d| serde_json::json!({
            "icount": d.icount,
            "segment": d.segment.to_string(),
            "report": d.report,
            "diverged": d.diverged,
        })),
    });
    // Inside <script>, "</" could close the element: JSON's "\u003c" says the same.
    let json = data.to_string().replace('<', "\\u003c");
    let title = shown
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = PAGE
        .replacen("__TITLE__", &title, 1)
        .replacen("__DATA__", &json, 1);
    std::fs::write(&a.output, page)
        .with_context(|| format!("{}: cannot write", a.output.display()))?;
    eprintln!(
        "rewind: timeline of {} ({} instructions, {} console lines, {} logged events, {} \
         snapshots) written to {}",
        t.file.display(),
        end,
        console.len(),
        rows.len(),
        snapshots.len(),
        a.output.display()
    );
    match departure {
        Some(d) => {
            eprintln!("rewind: {}: {}", d.segment, d.report);
            Ok(if d.diverged {
                crate::EXIT_DIVERGED
            } else {
                crate::EXIT_ERROR
            })
        }
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("runs/a.rwd"), "runs/a.rwd");
        assert_eq!(shell_quote("my run.rwd"), "'my run.rwd'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
