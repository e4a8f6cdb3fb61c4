//! Disk images in traces: identified by BLAKE3 like every image, but hashed by streaming (an
//! image of several GB is never read whole into memory), and the hash of a large image is
//! cached by file identity so recording and replaying it again does not re-read it.
//!
//! The cache key is (path, device, inode, size, mtime, ctime): ctime changes on every write and
//! cannot be set back by a user, so a file changed in place never matches a stale entry.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rewind_log::hostfile::{self, FileProblem};

/// Images at least this large have their hash cached.
pub const CACHE_MIN_SIZE: u64 = 64 << 20;
/// Images at least this large get a message saying how long hashing took.
pub const REPORT_MIN_SIZE: u64 = 256 << 20;
/// Entries kept in the cache file (the newest).
const CACHE_ENTRIES: usize = 256;

/// A disk image's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskHash {
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3, 64 lowercase hex digits.
    pub blake3: String,
    /// Taken from the cache.
    pub cached: bool,
    /// Time spent hashing (zero when cached).
    pub took: Duration,
}

/// The cache file: `$XDG_CACHE_HOME/rewind/disk-hashes` or `~/.cache/rewind/disk-hashes`.
pub fn default_cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("rewind").join("disk-hashes"))
}

/// The cache key of an open file's metadata.
fn key(path: &Path, m: &std::fs::Metadata) -> String {
    format!(
        "{} {} {} {}.{} {}.{} {}",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        path.display()
    )
}

/// Hash the disk image at `path` (a regular file), using and updating the default cache.
pub fn hash_disk(path: &Path) -> Result<DiskHash, FileProblem> {
    let h = hash_disk_with(path, default_cache_file().as_deref(), CACHE_MIN_SIZE)?;
    if !h.cached && h.size >= REPORT_MIN_SIZE {
        eprintln!(
            "rewind: hashed disk image {} ({} MiB) in {:.1?}",
            path.display(),
            h.size >> 20,
            h.took
        );
    }
    Ok(h)
}

/// [`hash_disk`] with an explicit cache file (`None`: no cache) for images of at least
/// `min_cached` bytes.
pub fn hash_disk_with(
    path: &Path,
    cache: Option<&Path>,
    min_cached: u64,
) -> Result<DiskHash, FileProblem> {
    let (file, size) = hostfile::open_regular(path, u64::MAX)?;
    let meta = file.metadata().map_err(FileProblem::Io)?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let key = key(&abs, &meta);
    let cache = cache.filter(|_| size >= min_cached);
    if let Some(c) = cache {
        if let Some(blake3) = lookup(c, &key) {
            return Ok(DiskHash {
                size,
                blake3,
                cached: true,
                took: Duration::ZERO,
            });
        }
    }
    let started = Instant::now();
    let mut hasher = blake3::Hasher::new();
    // Streaming: a 64 KiB buffer whatever the image size.
    let mut reader = std::io::BufReader::with_capacity(1 << 16, &file);
    hasher.update_reader(&mut reader).map_err(FileProblem::Io)?;
    let blake3 = hasher.finalize().to_hex().to_string();
    let took = started.elapsed();
    // The file must not have changed while it was read.
    let after = file.metadata().map_err(FileProblem::Io)?;
    if let Some(c) = cache.filter(|_| self::key(&abs, &after) == key) {
        // A cache that cannot be written costs a re-hash next time, nothing more.
        let _ = store(c, &key, &blake3);
    }
    Ok(DiskHash {
        size,
        blake3,
        cached: false,
        took,
    })
}

fn lookup(cache: &Path, key: &str) -> Option<String> {
    // The cache is small (CACHE_ENTRIES lines); a huge file there is not ours: ignore it.
    let text = hostfile::read_regular(cache, 1 << 20).ok()?;
    let text = String::from_utf8(text).ok()?;
    text.lines().rev().find_map(|line| {
        let (hash, rest) = line.split_once(' ')?;
        (rest == key && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hash.to_string())
    })
}

fn store(cache: &Path, key: &str, hash: &str) -> std::io::Result<()> {
    let old = hostfile::read_regular(cache, 1 << 20).unwrap_or_default();
    let old = String::from_utf8(old).unwrap_or_default();
    let mut lines: Vec<&str> = old
        .lines()
        .filter(|l| l.split_once(' ').is_some_and(|(_, k)| k != key))
        .collect();
    let entry = format!("{hash} {key}");
    lines.push(&entry);
    let keep = &lines[lines.len().saturating_sub(CACHE_ENTRIES)..];
    if let Some(dir) = cache.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written to a temporary file and renamed: concurrent runs never see half a cache.
    let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    for l in keep {
        writeln!(f, "{l}")?;
    }
    drop(f);
    std::fs::rename(&tmp, cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_stream_and_cache_by_file_identity() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        let cache = dir.path().join("cache/disk-hashes");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&img, &bytes).unwrap();
        let want = blake3::hash(&bytes).to_hex().to_string();
        let h = hash_disk_with(&img, Some(&cache), 0).unwrap();
        assert_eq!(
            (h.size, h.blake3.as_str(), h.cached),
            (300_000, want.as_str(), false)
        );
        let h = hash_disk_with(&img, Some(&cache), 0).unwrap();
        assert!(h.cached);
        assert_eq!(h.blake3, want);
        // Changed in place (same size): ctime moves, the cache entry no longer applies.
        let mut changed = bytes.clone();
        changed[5] ^= 1;
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&img, &changed).unwrap();
        let h = hash_disk_with(&img, Some(&cache), 0).unwrap();
        assert!(!h.cached);
        assert_eq!(h.blake3, blake3::hash(&changed).to_hex().to_string());
        // Below the size threshold nothing is cached; devices are refused.
        let other = dir.path().join("small.img");
        std::fs::write(&other, b"x").unwrap();
        hash_disk_with(&other, Some(&cache), 2).unwrap();
        assert!(!hash_disk_with(&other, Some(&cache), 2).unwrap().cached);
        assert!(matches!(
            hash_disk_with(Path::new("/dev/zero"), Some(&cache), 0),
            Err(FileProblem::NotRegular(_))
        ));
        // A corrupt cache is ignored.
        std::fs::write(&cache, b"zz not a cache\n").unwrap();
        assert!(!hash_disk_with(&img, Some(&cache), 0).unwrap().cached);
        assert!(hash_disk_with(&img, Some(&cache), 0).unwrap().cached);
    }
}
