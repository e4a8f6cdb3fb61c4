//! Time: the host clock read once for the RTC base, and idle-time warps.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use rewind_log::Event;

use crate::{Boundary, Log, Mode};

impl Boundary {
    /// Wall-clock time in ns since the Unix epoch (devices read it once, for their base).
    pub fn host_clock_ns(&mut self, icount: u64) -> u64 {
        match self.mode {
            Mode::Replay => {
                match self.expect(icount, "read the host clock".into(), |e| {
                    matches!(e, Event::ClockRead { kind: 0, .. })
                }) {
                    Some(Event::ClockRead { value_ns, .. }) => value_ns,
                    _ => 0,
                }
            }
            Mode::Record => {
                let value_ns = host_now_ns();
                self.log_event(icount, &Event::ClockRead { kind: 0, value_ns });
                value_ns
            }
            Mode::Run => host_now_ns(),
        }
    }

    /// Block up to `timeout` (forever with `None`) for a host event; true if one arrived.
    /// Replay never waits.
    pub fn wait_for_input(&mut self, timeout: Option<Duration>) -> bool {
        if self.mode == Mode::Replay {
            return false;
        }
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
    /// `None` when nothing can ever wake the guest (or, in replay, on a divergence).
    ///
    /// Run and record: with a live console, wait real time up to the deadline (forever without
    /// one) so an idle interactive guest does not spin, and warp by the time waited; otherwise
    /// jump straight to the deadline. Record logs a warp only when host input cut it short;
    /// replay applies the logged one without waiting, or warps to the deadline when none is logged.
    pub fn idle(&mut self, icount: u64, deadline_ns: Option<u64>) -> Option<u64> {
        if self.mode == Mode::Replay {
            let asked = match deadline_ns {
                Some(d) => format!("wait for an interrupt (next timer deadline in {d} ns)"),
                None => "wait for an interrupt (no timer armed)".to_string(),
            };
            // A recorded warp never goes past the timer deadline the guest set.
            let fits = |e: &Event| matches!(e, Event::IdleWarp { ns } if deadline_ns.is_none_or(|d| *ns <= d));
            // Record logs only warps cut short by host input: no logged warp here means the
            // recording slept all the way to the deadline, which follows from guest state.
            if let Some(d) = deadline_ns {
                if self.peek_at(icount, fits).is_none() {
                    return Some(d);
                }
            }
            return match self.expect(icount, asked, fits) {
                Some(Event::IdleWarp { ns }) => Some(ns),
                _ => None,
            };
        }
        let warp = if self.interactive || self.net_live() {
            let start = Instant::now();
            self.wait_for_input(deadline_ns.map(Duration::from_nanos));
            let waited = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            Some(deadline_ns.map_or(waited, |d| waited.min(d)))
        } else {
            deadline_ns
        };
        if let (Some(ns), Log::Record(r)) = (warp, &mut self.log) {
            r.warped = true;
            // A warp to the deadline is implied by guest state (replay recomputes it): log only
            // the ones host input cut short, so an idle guest's timer ticks cost nothing.
            if deadline_ns != Some(ns) {
                self.log_event(icount, &Event::IdleWarp { ns });
            } else {
                r.implied_warps.retain(|&(at, _)| at == icount);
                r.implied_warps.push((icount, ns));
            }
        }
        warp
    }
}

/// Host wall-clock time in ns since the Unix epoch.
pub(crate) fn host_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
