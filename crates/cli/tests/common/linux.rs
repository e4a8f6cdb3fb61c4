//! The Debian Linux guest of the tests: its assets (made by `scripts/linux-guest.sh` when
//! missing) and the options that boot it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{repo_root, tail};

/// The kernel command line of every test boot (a device test adds `rewind.test=NAME`).
pub const APPEND: &str = "console=ttyS0 earlycon rdinit=/init";

/// The files a boot needs, under `assets/linux/`.
pub const ASSETS: [&str; 3] = ["fw_jump.bin", "Image", "initrd.cpio.gz"];

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

/// Whether `REWIND_REQUIRE_LINUX` is set: missing assets then fail instead of skipping.
pub fn linux_required() -> bool {
    std::env::var_os("REWIND_REQUIRE_LINUX").is_some()
}

/// `assets/linux/`, after running `scripts/linux-guest.sh` if a file is missing; `None` = skip.
/// Prepared once per test process: tests run in parallel threads, and two concurrent runs of
/// the script would share its apt state directories.
pub fn linux_assets() -> Option<PathBuf> {
    static ASSETS_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    ASSETS_DIR.get_or_init(prepare_linux_assets).clone()
}

fn prepare_linux_assets() -> Option<PathBuf> {
    let root = repo_root();
    let dir = root.join("assets/linux");
    let missing = |d: &Path| -> Vec<&str> {
        ASSETS
            .iter()
            .copied()
            .filter(|f| !d.join(f).is_file())
            .collect()
    };
    let absent = missing(&dir);
    if absent.is_empty() {
        return Some(dir);
    }
    let script = root.join("scripts/linux-guest.sh");
    eprintln!(
        "linux: {} lacks {absent:?}: running {}",
        dir.display(),
        script.display()
    );
    let started = Instant::now();
    let problem = match Command::new("bash").arg(&script).output() {
        Err(e) => format!("cannot run {}: {e}", script.display()),
        Ok(o) if !o.status.success() => format!(
            "{} failed ({}):\n{}",
            script.display(),
            o.status,
            tail(&String::from_utf8_lossy(&o.stderr), 15)
        ),
        Ok(_) if !missing(&dir).is_empty() => {
            format!("{} did not produce {:?}", script.display(), missing(&dir))
        }
        Ok(_) => {
            eprintln!("linux: assets ready in {:.1?}", started.elapsed());
            return Some(dir);
        }
    };
    assert!(
        !linux_required(),
        "REWIND_REQUIRE_LINUX is set but the Linux guest assets are missing: {problem}"
    );
    eprintln!("SKIPPING linux test: {problem}\n(set REWIND_REQUIRE_LINUX=1 to make this an error)");
    None
}

/// `-m 512M` and the firmware, kernel and initrd options of the Linux guest in `assets`.
pub fn boot_args(assets: &Path) -> Vec<String> {
    let mut args = vec![s("-m"), s("512M")];
    for (flag, file) in [
        ("--bios", "fw_jump.bin"),
        ("--kernel", "Image"),
        ("--initrd", "initrd.cpio.gz"),
    ] {
        args.push(s(flag));
        args.push(s(assets.join(file)));
    }
    args
}

/// `rewind record -o TRACE` of the Linux guest running device test `name`
/// (`scripts/linux-tests/NAME.sh`) with `extra` options (devices, drives, netdevs).
pub fn record_device_test(
    assets: &Path,
    trace: &Path,
    name: &str,
    extra: &[String],
    timeout: std::time::Duration,
) -> super::Done {
    let mut args = vec![s("record"), s("-o"), s(trace)];
    args.extend(boot_args(assets));
    args.extend(extra.iter().cloned());
    args.extend([s("--append"), format!("{APPEND} rewind.test={name}")]);
    args.extend([s("--serial"), s("stdio")]);
    super::run_rewind(&args, timeout)
}

/// Whether the console shows device test `name` passing (its script exited 0).
pub fn device_test_passed(console: &str, name: &str) -> bool {
    console.contains(&format!("--- rewind.test {name} passed ---"))
}

/// The text after `prefix` on the first console line that starts with it.
pub fn console_value<'a>(console: &'a str, prefix: &str) -> Option<&'a str> {
    console
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(prefix))
        .map(str::trim)
}
