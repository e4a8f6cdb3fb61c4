//! Reading host files that may not be what they claim: a path named by a trace, a monitor
//! client or a command line can point at a device node (`/dev/zero` reads without end), a
//! FIFO (an `open` that blocks forever) or a file far larger than any legitimate input. These
//! helpers open regular files only, without blocking, and never read more than a stated cap.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a host file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The file does not exist.
    #[error("no such file")]
    NotFound,
    /// A directory, device node, FIFO or socket: never read as an input file.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// Larger than anything that could legitimately be there.
    #[error("file is {size} bytes, more than the {max} bytes it can legitimately hold")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The OS refused.
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

impl FileProblem {
    /// As an I/O error (for error types that hold one); "no such file" keeps its kind.
    pub fn into_io_error(self) -> std::io::Error {
        match self {
            FileProblem::NotFound => std::io::Error::from_raw_os_error(libc::ENOENT),
            FileProblem::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }

    fn from_io(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            FileProblem::NotFound
        } else {
            FileProblem::Io(e)
        }
    }
}

/// What kind of file `t` is, in messages.
fn kind_name(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_block_device() || t.is_char_device() {
        "a device node"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// The size of `path` if it is a regular file (symlinks followed), without opening it.
pub fn regular_file_size(path: &Path) -> Result<u64, FileProblem> {
    let meta = std::fs::metadata(path).map_err(FileProblem::from_io)?;
    if !meta.file_type().is_file() {
        return Err(FileProblem::NotRegular(kind_name(meta.file_type())));
    }
    Ok(meta.len())
}

/// Open `path` for reading if it is a regular file no larger than `max`; returns it and its
/// size. The open never blocks (`O_NONBLOCK`, so a FIFO swapped in after the check cannot
/// hang it) and the type is checked again on the opened file.
pub fn open_regular(path: &Path, max: u64) -> Result<(File, u64), FileProblem> {
    regular_file_size(path)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FileProblem::from_io)?;
    let meta = file.metadata().map_err(FileProblem::Io)?;
    if !meta.file_type().is_file() {
        return Err(FileProblem::NotRegular(kind_name(meta.file_type())));
    }
    if meta.len() > max {
        return Err(FileProblem::TooLarge {
            size: meta.len(),
            max,
        });
    }
    Ok((file, meta.len()))
}

/// Read the whole of `path`, a regular file of at most `max` bytes (a file that grows past
/// `max` while being read is refused too).
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, FileProblem> {
    let (file, size) = open_regular(path, max)?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(size).unwrap_or(usize::MAX))
        .map_err(|e| FileProblem::Io(std::io::Error::other(e)))?;
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileProblem::Io)?;
    if bytes.len() as u64 > max {
        return Err(FileProblem::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_their_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"hello");
        assert!(matches!(
            read_regular(&p, 4),
            Err(FileProblem::TooLarge { size: 5, max: 4 })
        ));
        assert!(matches!(
            read_regular(&dir.path().join("nope"), 5),
            Err(FileProblem::NotFound)
        ));
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for (path, kind) in [
            (Path::new("/dev/zero"), "a device node"),
            (Path::new("/dev/null"), "a device node"),
            (fifo.as_path(), "a FIFO"),
            (dir.path(), "a directory"),
        ] {
            match read_regular(path, 1 << 20) {
                Err(FileProblem::NotRegular(k)) => assert_eq!(k, kind, "{}", path.display()),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
        // A symlink to a device is the device.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_regular(&link, 10),
            Err(FileProblem::NotRegular("a device node"))
        ));
    }
}
