//! Serial socket backends (`tcp:HOST:PORT,server`, `unix:PATH,server`): listen, wait for one
//! client, then read input from it and write guest output to it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc::Sender;

use crate::{BoundaryError, HostEvent};

type Halves = (Box<dyn Read + Send>, Box<dyn Write + Send>);

fn err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BoundaryError {
    let what = what.into();
    move |source| BoundaryError::Socket { what, source }
}

/// Listen on `addr` and wait for one client.
pub(crate) fn accept_tcp(addr: &str) -> Result<Halves, BoundaryError> {
    let listener = TcpListener::bind(addr).map_err(err(format!("tcp:{addr}")))?;
    note!("rewind: waiting for a connection on tcp:{addr}");
    let (stream, _) = listener.accept().map_err(err(format!("tcp:{addr}")))?;
    // Small writes (one guest byte) must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let writer = stream.try_clone().map_err(err(format!("tcp:{addr}")))?;
    Ok((Box::new(stream), Box::new(writer)))
}

/// Listen on the unix socket `path` (replacing a stale socket file) and wait for one client.
pub(crate) fn accept_unix(path: &Path) -> Result<Halves, BoundaryError> {
    let what = format!("unix:{}", path.display());
    if std::fs::symlink_metadata(path)
        .map(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        })
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(err(what.clone()))?;
    note!("rewind: waiting for a connection on {what}");
    let accepted = listener.accept();
    let (stream, _) = match accepted {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(err(what)(e));
        }
    };
    let writer = stream.try_clone().map_err(err(what))?;
    Ok((Box::new(stream), Box::new(writer)))
}

/// Forward the client's bytes as serial input until it disconnects.
pub(crate) fn reader_thread(mut reader: Box<dyn Read + Send>, tx: Sender<HostEvent>) {
    let mut buf = [0u8; 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if tx.send(HostEvent::Serial(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = tx.send(HostEvent::SerialClosed);
}
