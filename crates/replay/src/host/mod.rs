//! Host backends: the threads and files that produce host input (stdin, sockets, signals,
//! the terminal) and where guest output goes. Only the boundary talks to them.

pub mod audio;
pub mod escape;
pub mod output;
pub(crate) mod socket;
pub mod terminal;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use escape::{EscapeParser, Key};

use crate::{Boundary, BoundaryConfig, BoundaryError, HostEvent, SerialInput, ShutdownCause};

impl Boundary {
    pub(crate) fn open_backends(&mut self, config: &BoundaryConfig) -> Result<(), BoundaryError> {
        match &config.serial {
            SerialInput::Null => {}
            SerialInput::File(path) => {
                // Queued whole: a regular file of bounded size, never a device or FIFO.
                let bytes = rewind_log::hostfile::read_regular(path, crate::MAX_SERIAL_INPUT_FILE)
                    .map_err(|p| BoundaryError::SerialFile {
                        path: path.clone(),
                        source: p.into_io_error(),
                    })?;
                self.serial_queue.extend(bytes);
            }
            SerialInput::Stdio => {
                self.raw_mode = terminal::enter_raw_mode().map_err(BoundaryError::Terminal)?;
                self.interactive = true;
                let tx = self.tx.clone();
                std::thread::Builder::new()
                    .name("rewind-stdin".into())
                    .spawn(move || stdin_reader(tx))
                    .map_err(BoundaryError::Terminal)?;
            }
            SerialInput::TcpServer(addr) => {
                let (reader, writer) = socket::accept_tcp(addr)?;
                self.start_socket(reader, writer)?;
            }
            SerialInput::UnixServer(path) => {
                let (reader, writer) = socket::accept_unix(path)?;
                self.socket_path = Some(path.clone());
                self.start_socket(reader, writer)?;
            }
        }
        if config.signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(BoundaryError::Signals)?;
            self.signals = Some(signals.handle());
            let tx = self.tx.clone();
            let signalled = Arc::clone(&self.signalled);
            std::thread::Builder::new()
                .name("rewind-signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        let cause = match sig {
                            SIGINT => ShutdownCause::Sigint,
                            SIGHUP => ShutdownCause::Sighup,
                            _ => ShutdownCause::Sigterm,
                        };
                        signalled.store(true, Ordering::SeqCst);
                        if tx.send(HostEvent::Shutdown(cause)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(BoundaryError::Signals)?;
        }
        Ok(())
    }

    fn start_socket(
        &mut self,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
    ) -> Result<(), BoundaryError> {
        self.interactive = true;
        self.socket_output = Some(writer);
        let tx = self.tx.clone();
        std::thread::Builder::new()
            .name("rewind-serial-socket".into())
            .spawn(move || socket::reader_thread(reader, tx))
            .map_err(|source| BoundaryError::Socket {
                what: "reader thread".into(),
                source,
            })?;
        Ok(())
    }
}

/// The stdin backend thread: escape processing, then one event per read.
fn stdin_reader(tx: Sender<HostEvent>) {
    let mut parser = EscapeParser::new();
    let mut buf = [0u8; 256];
    let mut stdin = std::io::stdin();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let mut bytes = Vec::with_capacity(n);
        let mut quit = false;
        for &b in &buf[..n] {
            match parser.feed(b) {
                Key::Byte(b) => bytes.push(b),
                Key::Quit => {
                    quit = true;
                    break;
                }
                Key::Help => {
                    let _ = std::io::stderr().write_all(escape::HELP.as_bytes());
                }
                Key::None => {}
            }
        }
        if !bytes.is_empty() && tx.send(HostEvent::Serial(bytes)).is_err() {
            return;
        }
        if quit {
            let _ = tx.send(HostEvent::Shutdown(ShutdownCause::QuitKey));
            return;
        }
    }
    let _ = tx.send(HostEvent::SerialClosed);
}
