//! The replay boundary: every input the machine receives from the host passes through one
//! [`Boundary`] value owned by the execution thread.
//!
//! Host backends (stdin reader, signal watcher) are threads that push [`HostEvent`]s into a
//! channel; the machine drains them only at checkpoints (slice boundaries), passing the current
//! instruction count, so every input has an exact position in the instruction stream.
//! Synchronous host reads (clock, random bytes) and idle-time warps also go through here.
//!
//! Only [`Mode::Run`] exists today: inputs pass through and nothing is logged. Record mode will
//! log each value returned by these methods with its icount, and replay mode will return the
//! logged values without opening any host backend; the machine cannot tell the modes apart,
//! which is why every method takes the icount even where run mode ignores it.

pub mod escape;
pub mod output;
pub mod terminal;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

pub use output::OutputSink;

use escape::{EscapeParser, Key};

/// How the boundary treats host inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass host inputs through; log nothing.
    Run,
}

/// Where serial (UART 0) input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialInput {
    /// The process's standard input (raw mode on a terminal; `Ctrl-A x` quits).
    Stdio,
    /// The bytes of a file, delivered as fast as the guest's UART accepts them.
    File(PathBuf),
    /// No input at all.
    Null,
}

/// Settings of the host side of the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundaryConfig {
    /// Serial input backend.
    pub serial: SerialInput,
    /// Turn SIGINT/SIGTERM/SIGHUP into shutdown requests (instead of killing the process).
    pub signals: bool,
}

impl Default for BoundaryConfig {
    fn default() -> Self {
        BoundaryConfig {
            serial: SerialInput::Null,
            signals: false,
        }
    }
}

/// Why the host asked the machine to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCause {
    /// The user typed `Ctrl-A x` on the console.
    QuitKey,
    /// SIGINT.
    Sigint,
    /// SIGTERM.
    Sigterm,
    /// SIGHUP (the terminal went away).
    Sighup,
}

impl std::fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShutdownCause::QuitKey => "Ctrl-A x",
            ShutdownCause::Sigint => "SIGINT",
            ShutdownCause::Sigterm => "SIGTERM",
            ShutdownCause::Sighup => "SIGHUP",
        })
    }
}

impl ShutdownCause {
    /// The exit status a process conventionally reports for this cause (128 + signal number;
    /// 0 for a quit the user asked for on the console, as QEMU does).
    pub fn exit_status(self) -> i32 {
        match self {
            ShutdownCause::QuitKey => 0,
            ShutdownCause::Sigint => 128 + libc::SIGINT,
            ShutdownCause::Sigterm => 128 + libc::SIGTERM,
            ShutdownCause::Sighup => 128 + libc::SIGHUP,
        }
    }
}

/// A shutdown or reset the guest asked for (through the test finisher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestRequest {
    /// Power off with this exit status.
    Exit(i32),
    /// Reset the machine.
    Reset,
}

/// An asynchronous input produced by a host backend thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// Bytes typed or read for UART 0.
    Serial(Vec<u8>),
    /// The serial input reached its end: no more bytes will come.
    SerialClosed,
    /// The host asks the machine to stop.
    Shutdown(ShutdownCause),
}

/// Failure to open a host backend.
#[derive(Debug, thiserror::Error)]
pub enum BoundaryError {
    /// The serial input file cannot be read.
    #[error("{}: {source}", path.display())]
    SerialFile {
        /// The file named on the command line.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The terminal could not be put into raw mode.
    #[error("standard input: cannot switch the terminal to raw mode: {0}")]
    Terminal(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// The single entry point of host inputs into the machine.
pub struct Boundary {
    mode: Mode,
    rx: Receiver<HostEvent>,
    tx: Sender<HostEvent>,
    /// Serial bytes received from the host and not yet delivered to the guest.
    serial_queue: VecDeque<u8>,
    /// The serial backend is a live source (stdin) that has not reached its end.
    interactive: bool,
    /// A shutdown request not yet handed to the machine.
    shutdown: Option<ShutdownCause>,
    raw_mode: Option<terminal::RawModeGuard>,
    signals: Option<signal_hook::iterator::Handle>,
}

impl std::fmt::Debug for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("mode", &self.mode)
            .field("queued_serial", &self.serial_queue.len())
            .field("interactive", &self.interactive)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl Boundary {
    /// A run-mode boundary with the given host backends started.
    pub fn new(config: &BoundaryConfig) -> Result<Self, BoundaryError> {
        let mut b = Boundary::detached();
        match &config.serial {
            SerialInput::Null => {}
            SerialInput::File(path) => {
                let bytes = std::fs::read(path).map_err(|source| BoundaryError::SerialFile {
                    path: path.clone(),
                    source,
                })?;
                b.serial_queue.extend(bytes);
            }
            SerialInput::Stdio => {
                b.raw_mode = terminal::enter_raw_mode().map_err(BoundaryError::Terminal)?;
                b.interactive = true;
                let tx = b.tx.clone();
                std::thread::Builder::new()
                    .name("rewind-stdin".into())
                    .spawn(move || stdin_reader(tx))
                    .map_err(BoundaryError::Terminal)?;
            }
        }
        if config.signals {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(BoundaryError::Signals)?;
            b.signals = Some(signals.handle());
            let tx = b.tx.clone();
            std::thread::Builder::new()
                .name("rewind-signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        let cause = match sig {
                            SIGINT => ShutdownCause::Sigint,
                            SIGHUP => ShutdownCause::Sighup,
                            _ => ShutdownCause::Sigterm,
                        };
                        if tx.send(HostEvent::Shutdown(cause)).is_err() {
                            break;
                        }
                    }
                })
                .map_err(BoundaryError::Signals)?;
        }
        Ok(b)
    }

    /// A run-mode boundary with no host backend: no serial input, no signal handling. Events
    /// can still be injected through [`Boundary::sender`].
    pub fn detached() -> Self {
        let (tx, rx) = mpsc::channel();
        Boundary {
            mode: Mode::Run,
            rx,
            tx,
            serial_queue: VecDeque::new(),
            interactive: false,
            shutdown: None,
            raw_mode: None,
            signals: None,
        }
    }

    /// The boundary's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A handle host backends use to push events; they are seen at the next checkpoint.
    pub fn sender(&self) -> Sender<HostEvent> {
        self.tx.clone()
    }

    /// Checkpoint: take every event the backends have produced so far (never blocks).
    pub fn checkpoint(&mut self, icount: u64) {
        let _ = icount;
        while let Ok(ev) = self.rx.try_recv() {
            self.accept(ev);
        }
    }

    fn accept(&mut self, ev: HostEvent) {
        match ev {
            HostEvent::Serial(bytes) => self.serial_queue.extend(bytes),
            HostEvent::SerialClosed => self.interactive = false,
            HostEvent::Shutdown(cause) => {
                // The first request wins; later ones add nothing.
                self.shutdown.get_or_insert(cause);
            }
        }
    }

    /// Deliver serial input: append to `out` at most `room` of the queued bytes (the rest stay
    /// queued until the guest's UART has room). Returns the number of bytes appended.
    pub fn take_serial_input(&mut self, icount: u64, room: usize, out: &mut Vec<u8>) -> usize {
        let _ = icount;
        let n = room.min(self.serial_queue.len());
        out.extend(self.serial_queue.drain(..n));
        n
    }

    /// Serial bytes waiting for room in the guest's UART.
    pub fn queued_serial_input(&self) -> usize {
        self.serial_queue.len()
    }

    /// A pending host shutdown request, handed over once.
    pub fn take_shutdown_request(&mut self, icount: u64) -> Option<ShutdownCause> {
        let _ = icount;
        self.shutdown.take()
    }

    /// Wall-clock time in ns since the Unix epoch (devices read it once, for their base).
    pub fn host_clock_ns(&mut self, icount: u64) -> u64 {
        let _ = icount;
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    /// Fill `buf` with random bytes from the host.
    pub fn random(&mut self, icount: u64, buf: &mut [u8]) {
        let _ = icount;
        let mut filled = 0;
        while filled < buf.len() {
            let rest = &mut buf[filled..];
            // SAFETY: the pointer and length describe a writable slice.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                filled += n as usize;
            } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                // No kernel entropy interface: fall back to a time-seeded generator (run mode
                // only; the value would be logged in record mode anyway).
                let mut x = self.host_clock_ns(icount) | 1;
                for b in rest.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                break;
            }
        }
    }

    /// True while the serial backend can still produce bytes by itself (a live stdin).
    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// Block up to `timeout` (forever with `None`) for a host event; true if one arrived.
    pub fn wait_for_input(&mut self, timeout: Option<Duration>) -> bool {
        let ev = match timeout {
            Some(t) => match self.rx.recv_timeout(t) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return false
                }
            },
            None => match self.rx.recv() {
                Ok(ev) => ev,
                Err(_) => return false,
            },
        };
        self.accept(ev);
        true
    }

    /// The guest idles (all harts in WFI) with the next timer deadline `deadline_ns` virtual ns
    /// away (`None`: no timer armed). Returns how many virtual ns to warp time forward, or
    /// `None` when nothing can ever wake the guest.
    ///
    /// Run mode: with a live console, wait real time up to the deadline (forever without one)
    /// so an idle interactive guest does not spin, and warp by the time waited; otherwise
    /// jump straight to the deadline.
    pub fn idle(&mut self, icount: u64, deadline_ns: Option<u64>) -> Option<u64> {
        let _ = icount;
        if self.interactive {
            let start = Instant::now();
            self.wait_for_input(deadline_ns.map(Duration::from_nanos));
            let waited = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            return Some(deadline_ns.map_or(waited, |d| waited.min(d)));
        }
        deadline_ns
    }

    /// The guest asked to power off or reset: record mode logs the cause (replay checks it
    /// against the log); run mode has nothing to do.
    pub fn guest_request(&mut self, icount: u64, request: GuestRequest) {
        let _ = (icount, request);
    }

    /// Icount of the next logged event the machine must stop at (replay); `None` in run mode.
    pub fn next_event_icount(&self) -> Option<u64> {
        None
    }
}

impl Drop for Boundary {
    fn drop(&mut self) {
        if let Some(h) = self.signals.take() {
            h.close();
        }
        // Dropping the guard restores the terminal.
        self.raw_mode.take();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_input_is_delivered_only_as_room_allows() {
        let mut b = Boundary::detached();
        b.sender()
            .send(HostEvent::Serial(b"hello".to_vec()))
            .unwrap();
        let mut out = Vec::new();
        // Not seen before a checkpoint.
        assert_eq!(b.take_serial_input(0, 16, &mut out), 0);
        b.checkpoint(10);
        assert_eq!(b.take_serial_input(10, 2, &mut out), 2);
        assert_eq!(out, b"he");
        assert_eq!(b.queued_serial_input(), 3);
        assert_eq!(b.take_serial_input(20, 16, &mut out), 3);
        assert_eq!(out, b"hello");
    }

    #[test]
    fn file_backend_queues_the_whole_file() {
        let path = std::env::temp_dir().join(format!("rewind-serial-in-{}", std::process::id()));
        std::fs::write(&path, b"abc").unwrap();
        let mut b = Boundary::new(&BoundaryConfig {
            serial: SerialInput::File(path.clone()),
            signals: false,
        })
        .unwrap();
        assert!(!b.is_interactive());
        let mut out = Vec::new();
        b.take_serial_input(0, 100, &mut out);
        assert_eq!(out, b"abc");
        let _ = std::fs::remove_file(&path);
        let missing = PathBuf::from("/nonexistent/rewind-input");
        let err = Boundary::new(&BoundaryConfig {
            serial: SerialInput::File(missing),
            signals: false,
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/rewind-input: "),
            "{err}"
        );
    }

    #[test]
    fn first_shutdown_request_wins_and_is_taken_once() {
        let mut b = Boundary::detached();
        let tx = b.sender();
        tx.send(HostEvent::Shutdown(ShutdownCause::QuitKey))
            .unwrap();
        tx.send(HostEvent::Shutdown(ShutdownCause::Sigterm))
            .unwrap();
        b.checkpoint(5);
        assert_eq!(b.take_shutdown_request(5), Some(ShutdownCause::QuitKey));
        assert_eq!(b.take_shutdown_request(6), None);
    }

    #[test]
    fn idle_without_live_input_jumps_to_the_deadline_or_gives_up() {
        let mut b = Boundary::detached();
        assert_eq!(b.idle(0, Some(1_000_000_000)), Some(1_000_000_000));
        assert_eq!(b.idle(0, None), None);
    }

    #[test]
    fn idle_with_live_input_waits_for_it() {
        let mut b = Boundary::detached();
        b.interactive = true;
        let tx = b.sender();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(HostEvent::Serial(b"x".to_vec())).unwrap();
        });
        let warp = b.idle(0, Some(10_000_000_000)).unwrap();
        t.join().unwrap();
        assert!((15_000_000..5_000_000_000).contains(&warp), "warp {warp}");
        assert_eq!(b.queued_serial_input(), 1);
        // A deadline that passes with no input warps exactly to it.
        assert_eq!(b.idle(0, Some(1_000_000)), Some(1_000_000));
        // End of input makes the console non-interactive.
        b.sender().send(HostEvent::SerialClosed).unwrap();
        b.checkpoint(0);
        assert!(!b.is_interactive());
    }

    #[test]
    fn random_fills_the_buffer() {
        let mut b = Boundary::detached();
        let mut x = [0u8; 64];
        b.random(0, &mut x);
        assert!(x.iter().any(|&v| v != 0));
        assert!(b.host_clock_ns(0) > 1_600_000_000_000_000_000);
    }
}
