//! The fuzz targets as a seeded mutation test on stable Rust (CI runs it with `cargo test`).
//!
//! Per target: the committed corpus (`fuzz/corpus/TARGET/`), the valid seeds, then
//! `REWIND_FUZZ_CASES` (default 2000) inputs mutated from them, half of them structure-aware
//! where the target has a re-framing mutator. The seed is printed; `REWIND_FUZZ_SEED=N`
//! repeats a run exactly. A panicking input is written to `target/fuzz-failures/` and the test
//! fails naming it (replay it with `REWIND_FUZZ_REPLAY=FILE`, or add it to the corpus).
//! `REWIND_FUZZ_WRITE_CORPUS=1` writes the seeds into the corpus directories.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rewind_fuzz::mutate::{mutate, Rng};
use rewind_fuzz::TargetInfo;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The committed corpus of a target, in name order.
fn corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo_root().join("fuzz/corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

/// Runs `input` through the target; on a panic saves the input and fails the test.
fn run_one(t: &TargetInfo, input: &[u8], what: &str) {
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| (t.run)(input)));
    if r.is_err() {
        let dir = repo_root().join("target/fuzz-failures");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{}-{}.bin", t.name, what.replace(' ', "-")));
        let _ = std::fs::write(&file, input);
        panic!(
            "fuzz target {} panicked on {what}; input saved to {}",
            t.name,
            file.display()
        );
    }
}

fn fuzz_target(t: &TargetInfo, seed: u64, cases: u64) {
    let start = Instant::now();
    let mut bases: Vec<Vec<u8>> = (t.seeds)();
    if std::env::var_os("REWIND_FUZZ_WRITE_CORPUS").is_some() {
        let dir = repo_root().join("fuzz/corpus").join(t.name);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (i, b) in bases.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), b).expect("write corpus");
        }
    }
    for (path, bytes) in corpus(t.name) {
        run_one(t, &bytes, &format!("corpus {}", path.display()));
        bases.push(bytes);
    }
    for (i, b) in bases.iter().enumerate() {
        run_one(t, b, &format!("seed {i}"));
    }
    let mut rng = Rng::new(seed ^ fnv(t.name));
    let mut slowest = Duration::ZERO;
    for case in 0..cases {
        let base = &bases[rng.below(bases.len())];
        let other = &bases[rng.below(bases.len())];
        let input = match t.reframe {
            Some(reframe) if rng.one_in(2) => {
                reframe(&mut rng, base).unwrap_or_else(|| mutate(&mut rng, base, other))
            }
            _ => mutate(&mut rng, base, other),
        };
        let t0 = Instant::now();
        run_one(t, &input, &format!("seed {seed} case {case}"));
        slowest = slowest.max(t0.elapsed());
    }
    eprintln!(
        "rewind-fuzz: {:<8} {cases} cases in {:.2?} (slowest {:.2?})",
        t.name,
        start.elapsed(),
        slowest
    );
    // A case that takes seconds is a hang in the making (unbounded reads, runaway replays).
    assert!(
        slowest < Duration::from_secs(5),
        "{}: one input took {slowest:?} (seed {seed})",
        t.name
    );
}

/// FNV-1a, to give each target its own stream from one seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn fuzz_targets_survive_seeded_mutations() {
    let targets = rewind_fuzz::all();
    if let Ok(file) = std::env::var("REWIND_FUZZ_REPLAY") {
        let bytes = std::fs::read(&file).expect("REWIND_FUZZ_REPLAY file");
        let name = Path::new(&file)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('-').next())
            .unwrap_or("");
        let t = targets
            .iter()
            .find(|t| t.name == name)
            .expect("file name starts with a target name");
        (t.run)(&bytes);
        return;
    }
    let seed = env_u64("REWIND_FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let cases = env_u64("REWIND_FUZZ_CASES").unwrap_or(2000);
    eprintln!("rewind-fuzz: seed {seed} (REWIND_FUZZ_SEED={seed} repeats this run)");
    let only = std::env::var("REWIND_FUZZ_TARGET").ok();
    for t in &targets {
        if only.as_deref().is_some_and(|o| o != t.name) {
            continue;
        }
        fuzz_target(t, seed, cases);
    }
}
