//! `rewind timeline`: the page is loaded in a real headless browser (Debian's `chromium`), and
//! the DOM its script built is checked mark by mark against the recording (console lines and
//! their icounts from `rewind analyze console`, snapshots at the snapshot file's positions,
//! state checks from the log, the divergence of a tampered trace); its screenshot must show
//! something. Skipped without chromium unless `REWIND_REQUIRE_CHROMIUM` is set (CI sets it),
//! and without the guests' toolchain unless `REWIND_REQUIRE_GUESTS` is.

#[allow(dead_code)]
mod common;

use common::{guest_elf, run_rewind, Done, Scratch};
use rewind_log::{Event, Footer, TraceReader, TraceWriter};
use rewind_machine::session::{OpenOptions, ReplaySession};
use rewind_machine::SerialOutput;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

/// The headless browser, or `None` (skip) when it is missing and not required.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        if common::have_tool(name) {
            return Some(PathBuf::from(name));
        }
    }
    assert!(
        std::env::var_os("REWIND_REQUIRE_CHROMIUM").is_none(),
        "REWIND_REQUIRE_CHROMIUM is set but chromium is not installed (scripts/install-deps.sh \
         installs it)"
    );
    eprintln!(
        "SKIPPING timeline browser test: no chromium (set REWIND_REQUIRE_CHROMIUM=1 to fail)"
    );
    None
}

/// Chromium's headless run over `page` with `args` (as root it needs --no-sandbox); killed
/// after two minutes.
fn browse(browser: &Path, page: &Path, args: &[&str]) -> Done {
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let profile = page.with_extension("profile");
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,1000",
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(&url);
    let done = common::Proc::spawn(cmd, None).finish(TIMEOUT);
    assert_eq!(done.code, Some(0), "chromium {args:?}: {}", done.describe());
    done
}

/// The DOM of `page` after its script ran.
fn rendered_dom(browser: &Path, page: &Path) -> String {
    browse(browser, page, &["--dump-dom"]).stdout
}

/// Value of attribute `name` in the tag text `tag`.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    tag[i..].split('"').next()
}

/// The rendered marks of lane `lane`: (data-icount, data-count) of each.
fn marks(dom: &str, lane: &str) -> Vec<(u64, u64)> {
    dom.split("<rect")
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or(""))
        .filter(|t| attr(t, "data-lane") == Some(lane))
        .map(|t| {
            let n = |a| attr(t, a).and_then(|v| v.parse().ok()).unwrap();
            (n("data-icount"), n("data-count"))
        })
        .collect()
}

/// Record guest `name` to `trace`: a snapshot every `every` instructions, a state check every
/// `check` instructions.
fn record(name: &str, trace: &Path, every: u64, check: u64) -> Done {
    let elf = guest_elf(name).expect("guests");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(trace),
        s("--bios"),
        s("none"),
        s("--kernel"),
        s(elf),
        s("--serial"),
        s("stdio"),
        s("--snapshot-every"),
        every.to_string(),
        s("--check-interval"),
        check.to_string(),
    ]);
    assert_eq!(d.code, Some(0), "record: {}", d.describe());
    d
}

/// The icounts of the snapshots in the recording's snapshot file.
fn snapshot_icounts(trace: &Path) -> Vec<u64> {
    let mut session = ReplaySession::open(trace, OpenOptions::default()).unwrap();
    let mut m = session.machine(SerialOutput::Null).unwrap();
    let reset = m.snapshot(None).unwrap();
    session
        .snapshots(rewind_machine::sidecar::Select::All, &reset)
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.icount())
        .filter(|&n| n > 0)
        .collect()
}

/// The icounts of the events of `kind` logged in `trace`.
fn logged(trace: &Path, want: &str) -> Vec<u64> {
    let mut r = TraceReader::open(trace).unwrap();
    let mut v = Vec::new();
    while let Some(e) = r.next_event().unwrap() {
        if e.event.kind().name() == want {
            v.push(e.icount);
        }
    }
    v
}

/// Check that the PNG at `path` shows a page: several colours, and not almost all one.
fn assert_not_blank(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(info.width >= 800 && info.height >= 600, "{info:?}");
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(&p[..3.min(px)]).or_insert(0usize) += 1;
    }
    let most = counts.values().max().copied().unwrap_or(0);
    assert!(
        counts.len() > 20,
        "{}: only {} colours",
        path.display(),
        counts.len()
    );
    assert!(
        most < pixels.len() * 97 / 100,
        "{}: {most} of {} pixels are one colour",
        path.display(),
        pixels.len()
    );
}

#[test]
fn timeline_page_shows_the_console_snapshots_and_state_checks_in_a_browser() {
    let Some(browser) = chromium() else { return };
    if guest_elf("debugme").is_none() {
        return;
    }
    let scratch = Scratch::new("timeline");
    let trace = scratch.path("d.rwd");
    record("debugme", &trace, 2_000, 500);
    let page = scratch.path("t.html");
    let d = rewind(&[s("timeline"), s(&trace), s("-o"), s(&page), s("-j"), s("2")]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing loaded from anywhere.
    for bad in ["<link", " src=", "@import", "url("] {
        assert!(!html.contains(bad), "the page refers to {bad}");
    }

    let console = rewind(&[s("analyze"), s("console"), s(&trace), s("--json")]);
    assert_eq!(console.code, Some(0), "{}", console.describe());
    let lines: Vec<(u64, String)> = console
        .stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["icount"].as_u64().unwrap(),
                s(v["text"].as_str().unwrap()),
            )
        })
        .collect();
    assert!(lines.len() >= 12, "{lines:?}");

    let dom = rendered_dom(&browser, &page);
    // One mark per console line, at its icount (the lines are far apart at this width).
    let shown = marks(&dom, "console");
    let want: Vec<(u64, u64)> = lines.iter().map(|(i, _)| (*i, 1)).collect();
    assert_eq!(shown, want, "console marks");
    // Snapshots where the snapshot file has them.
    let snaps = snapshot_icounts(&trace);
    assert!(snaps.len() >= 2, "{snaps:?}");
    let shown: Vec<u64> = marks(&dom, "snapshot").iter().map(|m| m.0).collect();
    assert_eq!(shown, snaps, "snapshot marks");
    // Every state check of the log is in a mark (close ones share a pixel column).
    let checks = logged(&trace, "StateHash");
    let shown = marks(&dom, "state-check");
    assert_eq!(
        shown.iter().map(|m| m.1).sum::<u64>(),
        checks.len() as u64,
        "state checks"
    );
    let firsts: BTreeSet<u64> = checks.iter().copied().collect();
    assert!(shown.iter().all(|m| firsts.contains(&m.0)), "{shown:?}");
    // debugme takes no trap: an empty traps lane; no divergence mark.
    assert!(
        dom.contains("data-bins=\"0\""),
        "trap bars in debugme's page"
    );
    assert!(marks(&dom, "divergence").is_empty());

    // The command a mark shows goes there: replay from the third line's icount.
    assert!(html.contains(&format!("\"replay\":\"rewind replay {}\"", trace.display())));
    let n = lines[2].0;
    let from = rewind(&[
        s("replay"),
        s(&trace),
        s("--from"),
        n.to_string(),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(from.code, Some(0), "{}", from.describe());
    assert!(
        from.stderr.contains("replay matched the recording"),
        "{}",
        from.describe()
    );

    let shot = scratch.path("t.png");
    browse(
        &browser,
        &page,
        &[&format!("--screenshot={}", shot.display())],
    );
    assert_not_blank(&shot);

    // The demo guest's timer handler runs three times: three interrupts in the traps lane.
    let demo = scratch.path("demo.rwd");
    let d = rewind(&[
        s("record"),
        s("-o"),
        s(&demo),
        s("--kernel"),
        s(common::repo_root().join("guests/prebuilt/demo.elf")),
        s("--serial"),
        s("null"),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let demo_page = scratch.path("demo.html");
    let d = rewind(&[s("timeline"), s(&demo), s("-o"), s(&demo_page)]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let dom = rendered_dom(&browser, &demo_page);
    let bars: Vec<(u64, u64)> = dom
        .split("<rect")
        .filter(|t| t.contains("class=\"bar\""))
        .map(|t| {
            let n = |a| attr(t, a).and_then(|v| v.parse().ok()).unwrap();
            (n("data-exceptions"), n("data-interrupts"))
        })
        .collect();
    assert_eq!(
        bars.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)),
        (0, 3),
        "{bars:?}"
    );

    // Without a replay: the logged events only.
    let quick = scratch.path("q.html");
    let d = rewind(&[
        s("timeline"),
        s(&trace),
        s("-o"),
        s(&quick),
        s("--events-only"),
    ]);
    assert_eq!(d.code, Some(0), "{}", d.describe());
    let dom = rendered_dom(&browser, &quick);
    assert!(marks(&dom, "console").is_empty());
    assert_eq!(
        marks(&dom, "state-check").iter().map(|m| m.1).sum::<u64>(),
        checks.len() as u64
    );

    // The recording and its snapshot file are never written over.
    let sidecar = PathBuf::from(format!("{}.snapshots", trace.display()));
    let before = std::fs::read(&trace).unwrap();
    for target in [&trace, &sidecar] {
        let d = rewind(&[s("timeline"), s(&trace), s("-o"), s(target)]);
        assert_eq!(d.code, Some(2), "{}", d.describe());
        assert!(d.stderr.contains("refusing to write"), "{}", d.describe());
    }
    assert_eq!(std::fs::read(&trace).unwrap(), before);
    let d = rewind(&[
        s("timeline"),
        s(scratch.path("missing.rwd")),
        s("-o"),
        s(scratch.path("m.html")),
    ]);
    assert_eq!(d.code, Some(2), "{}", d.describe());
    assert!(d.stderr.contains("missing.rwd"), "{}", d.describe());
}

#[test]
fn timeline_marks_where_a_tampered_trace_diverges() {
    let Some(browser) = chromium() else { return };
    if guest_elf("debugme").is_none() {
        return;
    }
    let scratch = Scratch::new("timeline-bad");
    let trace = scratch.path("d.rwd");
    record("debugme", &trace, 2_000, 500);
    // A copy of the trace with one state hash changed (written through the library, so the
    // file itself is intact), and the same snapshot file.
    let bad = scratch.path("bad.rwd");
    let mut r = TraceReader::open(&trace).unwrap();
    let mut w = TraceWriter::create(&bad, r.header()).unwrap();
    let checks = logged(&trace, "StateHash");
    let target = checks[checks.len() / 2];
    while let Some(e) = r.next_event().unwrap() {
        let ev = match e.event {
            Event::End => continue,
            Event::StateHash { hash } if e.icount == target => Event::StateHash { hash: hash ^ 1 },
            other => other,
        };
        w.push(e.icount, &ev).unwrap();
    }
    let f = r.footer().unwrap();
    w.finish(&Footer::new(f.final_icount, f.final_state_hash))
        .unwrap();
    std::fs::copy(
        format!("{}.snapshots", trace.display()),
        format!("{}.snapshots", bad.display()),
    )
    .unwrap();

    let page = scratch.path("bad.html");
    let d = rewind(&[s("timeline"), s(&bad), s("-o"), s(&page)]);
    assert_eq!(d.code, Some(3), "{}", d.describe());
    assert!(
        d.stderr
            .contains(&format!("replay diverged at instruction {target}")),
        "{}",
        d.describe()
    );
    let dom = rendered_dom(&browser, &page);
    assert_eq!(marks(&dom, "divergence"), vec![(target, 1)]);
    assert!(
        dom.contains(&format!("Replay diverged at instruction {}", group(target))),
        "no banner"
    );
    // The console lines are still all there: the segments after the bad one start from
    // their own snapshots.
    let lines = marks(&dom, "console");
    assert!(lines.len() >= 8, "{lines:?}");
    assert!(lines.last().is_some_and(|l| l.0 > target), "{lines:?}");
}

/// `n` with thousands separators, as the page prints it.
fn group(n: u64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
