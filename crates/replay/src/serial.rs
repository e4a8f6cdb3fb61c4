//! Serial (UART 0) input: bytes from the host delivered as the guest's UART has room,
//! logged at their delivery icount.

use rewind_log::Event;

use crate::{Boundary, Mode};

impl Boundary {
    /// Deliver serial input: append to `out` at most `room` of the queued bytes (the rest stay
    /// queued until the guest's UART has room). Returns the number of bytes appended.
    pub fn take_serial_input(&mut self, icount: u64, room: usize, out: &mut Vec<u8>) -> usize {
        if self.mode == Mode::Replay {
            let mut n = 0;
            while let Some(Event::SerialInput { bytes, .. }) =
                self.peek_at(icount, |e| matches!(e, Event::SerialInput { port: 0, .. }))
            {
                if bytes.len() > room - n {
                    let asked = format!(
                        "accept serial input with room for {} bytes in the UART",
                        room - n
                    );
                    self.diverge(icount, asked);
                    return n;
                }
                n += bytes.len();
                out.extend_from_slice(bytes);
                self.consume();
            }
            return n;
        }
        let n = room.min(self.serial_queue.len());
        if n == 0 {
            return 0;
        }
        let start = out.len();
        out.extend(self.serial_queue.drain(..n));
        if self.mode == Mode::Record {
            let bytes = out[start..].to_vec();
            self.log_event(icount, &Event::SerialInput { port: 0, bytes });
        }
        n
    }

    /// Serial bytes waiting for room in the guest's UART (replay: those of the next logged
    /// serial event).
    pub fn queued_serial_input(&self) -> usize {
        match self.replayer() {
            Some(r) => match r.next.as_ref().map(|e| &e.event) {
                Some(Event::SerialInput { bytes, .. }) => bytes.len().max(1),
                _ => 0,
            },
            None => self.serial_queue.len(),
        }
    }

    /// True while the serial backend can still produce bytes by itself (a live stdin or
    /// socket). Always false in replay.
    pub fn is_interactive(&self) -> bool {
        self.interactive && self.mode != Mode::Replay
    }
}
