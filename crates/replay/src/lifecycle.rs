//! Lifecycle: host shutdown requests, guest poweroff/reset requests, and the end of a
//! recording (End event, footer) and of its replay.

use std::sync::atomic::Ordering;

use rewind_log::{Event, GuestExitKind, ShutdownCause as LogCause};

use crate::{Boundary, Log, Mode, ReplayStop};

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
    /// The recording reached its instruction limit (`--max-instructions`).
    EndOfRecording,
    /// A monitor client quit (QMP `quit`, gdb `kill`).
    Monitor,
}

impl std::fmt::Display for ShutdownCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShutdownCause::QuitKey => "Ctrl-A x",
            ShutdownCause::Sigint => "SIGINT",
            ShutdownCause::Sigterm => "SIGTERM",
            ShutdownCause::Sighup => "SIGHUP",
            ShutdownCause::EndOfRecording => "the end of the recording",
            ShutdownCause::Monitor => "the monitor's quit",
        })
    }
}

impl ShutdownCause {
    /// The cause as stored in a trace.
    pub fn to_log(self) -> rewind_log::ShutdownCause {
        use rewind_log::ShutdownCause as L;
        match self {
            ShutdownCause::QuitKey => L::CtrlAX,
            ShutdownCause::Sigint => L::SigInt,
            ShutdownCause::Sigterm => L::SigTerm,
            ShutdownCause::Sighup => L::SigHup,
            ShutdownCause::EndOfRecording => L::EndOfRecording,
            ShutdownCause::Monitor => L::Monitor,
        }
    }

    /// The cause stored in a trace (a host reset is no shutdown and never reaches here).
    pub fn from_log(c: rewind_log::ShutdownCause) -> Self {
        use rewind_log::ShutdownCause as L;
        match c {
            L::CtrlAX | L::HostReset => ShutdownCause::QuitKey,
            L::Monitor => ShutdownCause::Monitor,
            L::SigInt => ShutdownCause::Sigint,
            L::SigTerm => ShutdownCause::Sigterm,
            L::SigHup => ShutdownCause::Sighup,
            L::EndOfRecording => ShutdownCause::EndOfRecording,
        }
    }
}

impl ShutdownCause {
    /// The exit status a process conventionally reports for this cause (128 + signal number;
    /// 0 for a quit the user asked for on the console, as QEMU does).
    pub fn exit_status(self) -> i32 {
        match self {
            ShutdownCause::QuitKey | ShutdownCause::Monitor => 0,
            ShutdownCause::Sigint => 128 + libc::SIGINT,
            ShutdownCause::Sigterm => 128 + libc::SIGTERM,
            ShutdownCause::Sighup => 128 + libc::SIGHUP,
            ShutdownCause::EndOfRecording => 124,
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

impl Boundary {
    /// True once SIGINT, SIGTERM or SIGHUP arrived (signal handling on). Its shutdown request
    /// waits in the host event queue for the machine's next checkpoint: a caller that keeps
    /// the machine paused (a debugger) must run it to that checkpoint so it ends cleanly.
    pub fn host_signal_received(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }

    /// A pending host shutdown request, handed over once.
    pub fn take_shutdown_request(&mut self, icount: u64) -> Option<ShutdownCause> {
        match self.mode {
            Mode::Replay => {
                let is_shutdown = |e: &Event| matches!(e, Event::HostShutdown { cause } if *cause != LogCause::HostReset);
                let cause = match self.peek_at(icount, is_shutdown) {
                    Some(Event::HostShutdown { cause }) => ShutdownCause::from_log(*cause),
                    _ => return None,
                };
                self.consume();
                Some(cause)
            }
            Mode::Record => {
                let cause = self.shutdown.take()?;
                self.log_event(
                    icount,
                    &Event::HostShutdown {
                        cause: cause.to_log(),
                    },
                );
                Some(cause)
            }
            Mode::Run => self.shutdown.take(),
        }
    }

    /// Ask for a machine reset (monitor `system_reset`), taken at the next checkpoint. A
    /// replay resets where its recording did, never on request.
    pub fn request_host_reset(&mut self) {
        if self.mode != Mode::Replay {
            self.reset_requested = true;
        }
    }

    /// Whether a host reset is due now: logged in record, taken from the log in replay.
    pub fn take_host_reset(&mut self, icount: u64) -> bool {
        match self.mode {
            Mode::Replay => {
                let due = self
                    .peek_at(icount, |e| {
                        matches!(
                            e,
                            Event::HostShutdown {
                                cause: LogCause::HostReset
                            }
                        )
                    })
                    .is_some();
                if due {
                    self.consume();
                }
                due
            }
            Mode::Record | Mode::Run => {
                let due = std::mem::take(&mut self.reset_requested);
                if due && self.mode == Mode::Record {
                    self.log_event(
                        icount,
                        &Event::HostShutdown {
                            cause: LogCause::HostReset,
                        },
                    );
                }
                due
            }
        }
    }

    /// The recording ends here (instruction limit): record mode logs
    /// `HostShutdown(EndOfRecording)` (unless [`Boundary::set_pause_at_limit`] is on); the other
    /// modes do nothing.
    pub fn end_of_recording(&mut self, icount: u64) {
        if self.mode == Mode::Record && !self.pause_at_limit {
            self.log_event(
                icount,
                &Event::HostShutdown {
                    cause: rewind_log::ShutdownCause::EndOfRecording,
                },
            );
        }
    }

    /// A monitor client quit the recording: the request is taken (and in record mode logged as
    /// `HostShutdown(Monitor)`) at the next checkpoint, exactly where the replay takes it, so
    /// both end in the same state with the same status (0).
    pub fn request_monitor_quit(&mut self) {
        if self.mode != Mode::Replay {
            self.shutdown = Some(ShutdownCause::Monitor);
        }
    }

    /// The guest asked to power off or reset: record mode logs it; replay checks it against
    /// the log (a mismatch is a divergence).
    pub fn guest_request(&mut self, icount: u64, request: GuestRequest) {
        let (kind, code) = match request {
            GuestRequest::Exit(0) => (GuestExitKind::Pass, 0),
            GuestRequest::Exit(c) => (GuestExitKind::Fail, c as u16),
            GuestRequest::Reset => (GuestExitKind::Reset, 0),
        };
        match self.mode {
            Mode::Record => self.log_event(icount, &Event::GuestExit { kind, code }),
            Mode::Replay => {
                let asked = match request {
                    GuestRequest::Exit(c) => format!("power off with exit status {c}"),
                    GuestRequest::Reset => "reset the machine".to_string(),
                };
                self.expect(icount, asked, |e| *e == Event::GuestExit { kind, code });
            }
            Mode::Run => {}
        }
    }

    /// Record: write the `End` event and the footer; returns the trace size in bytes. Other
    /// modes: `Ok(None)`.
    pub fn finish_recording(
        &mut self,
        icount: u64,
        final_state_hash: u64,
    ) -> Result<Option<u64>, ReplayStop> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        let Log::Record(r) = &mut self.log else {
            return Ok(None);
        };
        let Some(w) = r.writer.take() else {
            return Ok(None);
        };
        let footer = rewind_log::Footer::new(icount, Some(final_state_hash));
        Ok(Some(w.finish(&footer)?))
    }

    /// Replay: the machine stopped at `icount` with `final_state_hash`; the log must end right
    /// here with the same final state.
    pub fn finish_replay(&mut self, icount: u64, final_state_hash: u64) -> Result<(), ReplayStop> {
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        let Some(r) = self.replayer() else {
            return Ok(());
        };
        let footer_hash = r.reader.footer().and_then(|f| f.final_state_hash);
        match &r.next {
            Some(e) if matches!(e.event, Event::End) && e.icount == icount => {}
            None if r.reader.truncated().is_some() => {
                self.check_position(icount);
                return match self.failure.take() {
                    Some(f) => Err(f),
                    None => Ok(()),
                };
            }
            _ => {
                self.diverge(icount, "to stop the machine here".into());
                return Err(self.failure.take().unwrap_or_else(|| {
                    ReplayStop::Diverged(Box::new(self.divergence(icount, String::new())))
                }));
            }
        }
        // Consuming End reads past it, which verifies the footer against the events read:
        // data after End or a footer that is zeroed or disagrees is a corrupt trace.
        self.consume();
        if let Some(f) = self.failure.take() {
            return Err(f);
        }
        if let Log::Replay(r) = &mut self.log {
            r.reader.next_event()?;
            // Every event is there but the footer is not: the recorder was killed while
            // finishing, so the final state hash cannot be checked.
            if let Some(t) = r.reader.truncated() {
                return Err(ReplayStop::CutShort {
                    path: r.reader.path().to_path_buf(),
                    icount,
                    detail: format!(
                        "every event replayed, but the footer with the final state hash is \
                         missing; the file ends at offset {} with {} unusable bytes",
                        t.file_offset, t.bytes_lost
                    ),
                });
            }
        }
        if let Some(h) = footer_hash {
            if h != final_state_hash {
                let mut d = self.divergence(
                    icount,
                    format!("to stop with state hash {final_state_hash:#018x}"),
                );
                d.note = Some(format!("the recording ended with state hash {h:#018x}"));
                return Err(ReplayStop::Diverged(Box::new(d)));
            }
        }
        Ok(())
    }
}
