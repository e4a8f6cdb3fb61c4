//! Debugging a machine: a [`session::Session`] runs it forwards and (in replay) backwards with
//! breakpoints, watchpoints, seeks and reverse steps; [`control`] drives one session from the
//! gdb stub ([`gdb`]) and the QMP monitor ([`qmp`]) at the same time.

pub mod bench;
pub mod control;
pub mod gdb;
pub mod qmp;
pub mod session;

pub use session::{Session, SessionError, StopReason};
