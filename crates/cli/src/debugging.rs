//! `--gdb`, `--qmp` and `-S`: serve a run, recording or replay to gdb and QMP clients
//! (rewind-debug's control loop) instead of running it straight through.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rewind_debug::control::{self, Controller, Frontends};
use rewind_debug::gdb::GdbServer;
use rewind_debug::qmp::QmpServer;
use rewind_debug::Session;
use rewind_machine::seek::Seeker;
use rewind_machine::RunOutcome;

use crate::exit_status;

/// Instructions between two in-memory snapshots of a debugged replay (a reverse step replays
/// up to this many instructions: about 25 ms).
pub const SNAPSHOT_INTERVAL: u64 = 10_000_000;

/// The debugging front-ends of `run`, `record` and `replay`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct DebugArgs {
    /// Wait for gdb on tcp:HOST:PORT (like QEMU's -gdb; `tcp::1234` is 127.0.0.1 port 1234).
    /// In replay gdb can also go backwards (reverse-stepi, reverse-continue).
    #[arg(long, value_name = "tcp:HOST:PORT")]
    pub gdb: Option<String>,
    /// Start paused (like QEMU's -S): the guest runs once gdb continues or QMP sends `cont`.
    /// Needs --gdb or --qmp.
    #[arg(short = 'S')]
    pub start_paused: bool,
    /// Serve the QMP monitor on unix:PATH or tcp:HOST:PORT (like QEMU's -qmp).
    #[arg(long, value_name = "unix:PATH|tcp:HOST:PORT")]
    pub qmp: Option<String>,
    /// Confine the clients' file commands (QMP x-rewind-snapshot, x-rewind-load-snapshot) to
    /// DIR: their paths are relative to it and may not lead out of it.
    #[arg(long, value_name = "DIR")]
    pub sandbox: Option<PathBuf>,
}

/// The bound servers of a debugged session, ready to be served once the machine is built.
pub struct Debugging {
    frontends: Frontends,
    start_paused: bool,
    sandbox: Option<PathBuf>,
}

impl DebugArgs {
    /// Bind the servers the options ask for (before the machine starts, so a client can
    /// connect as soon as rewind prints where). `None` when no front-end was asked for.
    /// `max_instructions`: the command's instruction limit, which a debugged session has not.
    pub fn bind(&self, max_instructions: Option<u64>) -> anyhow::Result<Option<Debugging>> {
        if self.gdb.is_none() && self.qmp.is_none() {
            if self.start_paused {
                bail!("-S needs --gdb or --qmp: nothing could start the paused machine");
            }
            return Ok(None);
        }
        if max_instructions.is_some() {
            bail!("--max-instructions cannot be combined with --gdb or --qmp (use a breakpoint or QMP replay-break)");
        }
        if let Some(dir) = &self.sandbox {
            if !dir.is_dir() {
                bail!("--sandbox {}: not a directory", dir.display());
            }
        }
        let mut frontends = Frontends::default();
        if let Some(spec) = &self.gdb {
            let server = GdbServer::bind(spec)?;
            eprintln!(
                "rewind: gdb server listening on {} (target remote {})",
                server.local_addr(),
                server.local_addr()
            );
            frontends.gdb = Some(server);
        }
        if let Some(spec) = &self.qmp {
            let server =
                QmpServer::bind(spec).with_context(|| format!("--qmp {spec}: cannot listen"))?;
            eprintln!("rewind: QMP monitor on {spec}");
            frontends.qmp = Some(server);
        }
        Ok(Some(Debugging {
            frontends,
            start_paused: self.start_paused,
            sandbox: self.sandbox.clone(),
        }))
    }
}

/// What serving left: the machine with its snapshots, how the guest's execution ended (if it
/// did), and a front-end failure that ended serving early (reported after the caller finished
/// the recording, so a broken connection does not lose it).
pub struct Served {
    /// The machine and its snapshots.
    pub seeker: Seeker,
    /// How the guest's execution ended, if it did.
    pub ended: Option<RunOutcome>,
    /// A gdb connection failure that ended serving.
    pub error: Option<anyhow::Error>,
}

impl Served {
    /// The exit status: the guest's when its execution ended, 0 after a quit; or the error.
    pub fn status(self) -> anyhow::Result<u8> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let icount = self.seeker.machine().icount();
        Ok(self.ended.map_or(0, |o| exit_status(o, icount)))
    }
}

impl Debugging {
    /// Serve the machine in `seeker` (a run, recording or replay of `trace`) until a client
    /// quits, or the guest ends after gdb detached with no monitor. The caller finishes the
    /// recording; a replay that reached its end was already checked against the trace.
    pub fn serve(self, seeker: Seeker, trace: Option<PathBuf>) -> Served {
        let mut session = Session::new(seeker, trace);
        if let Some(dir) = &self.sandbox {
            if let Err(e) = session.set_sandbox(dir) {
                return Served {
                    ended: None,
                    seeker: session.into_seeker(),
                    error: Some(anyhow::anyhow!("--sandbox {}: {e}", dir.display())),
                };
            }
        }
        let mut ctl = Controller::new(session, self.start_paused);
        let served = control::serve(&mut ctl, self.frontends);
        let session = ctl.into_session();
        Served {
            ended: session.ended(),
            seeker: session.into_seeker(),
            error: served.err().map(anyhow::Error::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        debug: DebugArgs,
    }

    fn parse(args: &[&str]) -> DebugArgs {
        Cli::try_parse_from([&["rewind"], args].concat())
            .unwrap()
            .debug
    }

    #[test]
    fn options_parse_like_qemu() {
        let d = parse(&["--gdb", "tcp::1234", "-S"]);
        assert_eq!(d.gdb.as_deref(), Some("tcp::1234"));
        assert!(d.start_paused);
        assert!(d.qmp.is_none());
        let d = parse(&["--qmp", "unix:/tmp/q.sock"]);
        assert_eq!(d.qmp.as_deref(), Some("unix:/tmp/q.sock"));
        assert!(!d.start_paused);
    }

    #[test]
    fn nothing_to_serve_without_a_frontend() {
        assert!(parse(&[]).bind(Some(5)).unwrap().is_none());
        let e = parse(&["-S"]).bind(None).err().unwrap().to_string();
        assert!(e.contains("-S needs --gdb or --qmp"), "{e}");
    }

    #[test]
    fn gdb_server_is_bound_before_the_machine_runs() {
        let d = parse(&["--gdb", "tcp::0"]).bind(None).unwrap().unwrap();
        let addr = d.frontends.gdb.as_ref().unwrap().local_addr();
        // Connecting succeeds at once: the socket listens already.
        std::net::TcpStream::connect(addr).unwrap();
        let e = parse(&["--gdb", "tcp::0"])
            .bind(Some(10))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--max-instructions"), "{e}");
        let e = parse(&["--gdb", "nonsense"])
            .bind(None)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("nonsense"), "{e}");
    }
}
