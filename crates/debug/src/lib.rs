//! Debugging a machine: a [`session::Session`] runs it forwards and (in replay) backwards with
//! breakpoints, watchpoints, seeks and reverse steps; [`control`] drives one session from the
//! gdb stub ([`gdb`]) and the QMP monitor ([`qmp`]) at the same time.

/// A message on stderr that ignores write errors: std's `eprintln!` panics when stderr is a
/// closed pipe (`rewind ... 2>&1 | head`), and a lost message is no reason to stop.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod bench;
pub mod control;
pub mod gdb;
pub mod hmp;
pub mod qmp;
pub mod session;

pub use session::{Session, SessionError, StopReason};
