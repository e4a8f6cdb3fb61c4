//! Where the guest's serial output goes. Serial output follows from guest state (it is not an
//! input), so it is never logged: it only needs a destination.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Destination of the bytes the guest transmits on its UART.
pub enum OutputSink {
    /// The process's standard output (flushed at every checkpoint that produced output).
    Stdout,
    /// A file, created or truncated when the sink is opened.
    File(io::BufWriter<File>),
    /// Discard everything.
    Null,
    /// Keep everything in memory (tests, and commands that inspect the output).
    Capture(Vec<u8>),
    /// A connected socket (the serial socket backends); a client that went away is not an
    /// error.
    Stream(Box<dyn Write + Send>),
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutputSink::Stdout => "Stdout",
            OutputSink::File(_) => "File",
            OutputSink::Null => "Null",
            OutputSink::Capture(_) => "Capture",
            OutputSink::Stream(_) => "Stream",
        })
    }
}

impl OutputSink {
    /// Create (or truncate) `path` and write into it.
    pub fn file(path: &Path) -> io::Result<Self> {
        Ok(OutputSink::File(io::BufWriter::new(File::create(path)?)))
    }

    /// Append guest output. A closed standard output (reader went away) is not an error: the
    /// guest keeps running, as on QEMU.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            OutputSink::Stdout => {
                let mut out = io::stdout().lock();
                match out.write_all(bytes).and_then(|()| out.flush()) {
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                    r => r,
                }
            }
            OutputSink::File(f) => f.write_all(bytes),
            OutputSink::Null => Ok(()),
            OutputSink::Capture(v) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            OutputSink::Stream(s) => match s.write_all(bytes).and_then(|()| s.flush()) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    Ok(())
                }
                r => r,
            },
        }
    }

    /// Push buffered bytes to their destination.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            OutputSink::File(f) => f.flush(),
            OutputSink::Stdout => match io::stdout().flush() {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                r => r,
            },
            _ => Ok(()),
        }
    }

    /// The bytes kept by a [`OutputSink::Capture`] sink (empty for the others).
    pub fn captured(&self) -> &[u8] {
        match self {
            OutputSink::Capture(v) => v,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_and_file_keep_bytes() {
        let mut s = OutputSink::Capture(Vec::new());
        s.write(b"ab").unwrap();
        s.write(b"c").unwrap();
        assert_eq!(s.captured(), b"abc");

        let path = std::env::temp_dir().join(format!("rewind-output-test-{}", std::process::id()));
        let mut f = OutputSink::file(&path).unwrap();
        f.write(b"hello\n").unwrap();
        f.flush().unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello\n");
        let _ = std::fs::remove_file(&path);
    }
}
