//! Documentation that cannot drift: every command block in README.md and docs/*.md whose fence
//! reads ```` ```sh doctest ```` runs here, as a bash script (`set -e -o pipefail`) in a scratch
//! directory where `guests/` is the repository's and `rewind` is the binary under test. A
//! line `#=> TEXT` in a block asserts that the block's output (stdout and stderr) so far
//! contains TEXT. A documented command that stops working, or whose output changed, fails here.

#[allow(dead_code)]
mod common;

use common::{repo_root, Scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One runnable block: where it is and its lines.
struct Block {
    file: PathBuf,
    line: usize,
    body: Vec<String>,
}

/// The `sh doctest` blocks of a Markdown file.
fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match current.take() {
            Some(b) if fence => out.push(b),
            Some(mut b) => {
                b.body.push(line.to_string());
                current = Some(b);
            }
            None if fence && line.trim_start().trim_start_matches('`').trim() == "sh doctest" => {
                current = Some(Block {
                    file: file.to_path_buf(),
                    line: i + 1,
                    body: Vec::new(),
                });
            }
            None => {}
        }
    }
    out
}

/// The Markdown files the harness reads.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    files.extend(docs);
    files
}

/// Run `block`; `Err` says which check failed, with the output.
fn run(block: &Block, scratch: &Scratch, bin_dir: &Path) -> Result<(), String> {
    let mut script = String::from("set -e -o pipefail\n");
    let mut checks = Vec::new();
    for (n, line) in block.body.iter().enumerate() {
        if let Some(want) = line.trim_start().strip_prefix("#=>") {
            // Mark the position so the check sees only the output before it.
            script.push_str(&format!("echo '@@check {n}@@'\n"));
            checks.push((n, want.trim().to_string()));
        } else {
            script.push_str(line);
            script.push('\n');
        }
    }
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("exec 2>&1\n{script}"))
        .current_dir(scratch.path(""))
        .env("PATH", path)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let place = format!("{}:{}", block.file.display(), block.line);
    if !out.status.success() {
        return Err(format!(
            "{place}: the block failed ({})\n{text}",
            out.status
        ));
    }
    for (n, want) in checks {
        let upto = text
            .split(&format!("@@check {n}@@"))
            .next()
            .unwrap_or_default();
        if !upto.contains(&want) {
            return Err(format!(
                "{place}: line {} expects output containing {want:?}\n{text}",
                block.line + n + 1
            ));
        }
    }
    Ok(())
}

#[test]
fn documented_commands_run_as_documented() {
    let root = repo_root();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rewind"));
    let bin_dir = bin.parent().expect("binary directory").to_path_buf();
    let all: Vec<Block> = documents().iter().flat_map(|f| blocks(f)).collect();
    assert!(
        all.len() >= 3,
        "the docs lost their runnable blocks ({} found)",
        all.len()
    );
    let mut failures = Vec::new();
    for block in &all {
        let scratch = Scratch::new("doc");
        // Documented paths are relative to the repository: give the block its guests.
        std::os::unix::fs::symlink(root.join("guests"), scratch.path("guests"))
            .expect("link guests/");
        if let Err(e) = run(block, &scratch, &bin_dir) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_harness_catches_a_broken_block() {
    let scratch = Scratch::new("doc-self");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rewind"));
    let block = |body: &[&str]| Block {
        file: PathBuf::from("self-test.md"),
        line: 1,
        body: body.iter().map(|s| s.to_string()).collect(),
    };
    let dir = bin.parent().expect("binary directory");
    assert!(run(&block(&["rewind --version", "#=> rewind"]), &scratch, dir).is_ok());
    let e = run(
        &block(&["rewind --version", "#=> no such text"]),
        &scratch,
        dir,
    )
    .unwrap_err();
    assert!(e.contains("expects output containing"), "{e}");
    let e = run(&block(&["rewind replay missing.rwtrace"]), &scratch, dir).unwrap_err();
    assert!(e.contains("the block failed"), "{e}");
}
