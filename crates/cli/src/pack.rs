//! `rewind pack` and `rewind unpack`: a recording and everything its replay needs in one
//! file (rewind_machine::pack); this file parses options and prints.

use std::path::PathBuf;

use rewind_machine::pack;

use crate::analyze::TraceArgs;
use crate::commands::open_session;

/// `rewind pack`.
#[derive(clap::Args, Debug)]
pub struct PackArgs {
    #[command(flatten)]
    pub trace: TraceArgs,
    /// The pack to write.
    #[arg(short = 'o', long = "output", value_name = "PACK")]
    pub output: PathBuf,
    /// Replace PACK if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `rewind unpack`.
#[derive(clap::Args, Debug)]
pub struct UnpackArgs {
    /// The pack.
    #[arg(value_name = "PACK")]
    pub pack: PathBuf,
    /// The directory to unpack into (created if missing; files there are never replaced).
    #[arg(
        short = 'C',
        long = "directory",
        value_name = "DIR",
        default_value = "."
    )]
    pub dir: PathBuf,
}

/// `rewind pack TRACE -o PACK`: the trace, its snapshot file and its images (found and
/// checked as a replay finds them) in one file.
pub fn pack(a: PackArgs) -> anyhow::Result<u8> {
    if pack::is_pack(&a.trace.file) {
        anyhow::bail!("{}: is already a pack", a.trace.file.display());
    }
    let opened = open_session(&a.trace.file, &a.trace.image, a.trace.snapshots.as_deref())?;
    let session = &opened.session;
    let protected = session.protected_files();
    if protected
        .iter()
        .any(|p| p == &a.output || crate::commands::same_file(p, &a.output))
    {
        anyhow::bail!(
            "{}: refusing to write the pack over the recording",
            a.output.display()
        );
    }
    let snaps = session.snapshots_path();
    let snaps = snaps.exists().then_some(snaps);
    let files = pack::sources(
        session.trace(),
        snaps.as_deref(),
        session.config(),
        &session.header().images,
    );
    let entries = pack::write(&a.output, &files, a.force)?;
    for e in &entries {
        println!("{}  {:>12}  {}", e.blake3, e.size, e.name);
    }
    let bytes = std::fs::metadata(&a.output).map_or(0, |m| m.len());
    eprintln!(
        "rewind: packed {} files into {} ({bytes} bytes)",
        entries.len(),
        a.output.display()
    );
    Ok(0)
}

/// `rewind unpack PACK -C DIR`.
pub fn unpack(a: UnpackArgs) -> anyhow::Result<u8> {
    let mut r = pack::PackReader::open(&a.pack)?;
    let entries = r.entries().to_vec();
    r.unpack(&a.dir)?;
    for e in &entries {
        println!(
            "{}  {:>12}  {}",
            e.blake3,
            e.size,
            a.dir.join(&e.name).display()
        );
    }
    eprintln!(
        "rewind: unpacked {} files into {} (every file's size and hash checked)",
        entries.len(),
        a.dir.display()
    );
    Ok(0)
}
