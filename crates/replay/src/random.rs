//! Entropy: random bytes for the device tree seed and virtio-rng, logged in record and
//! returned from the log in replay.

use rewind_log::Event;

use crate::time::host_now_ns;
use crate::{Boundary, Mode};

impl Boundary {
    /// Fill `buf` with random bytes from the host.
    pub fn random(&mut self, icount: u64, buf: &mut [u8]) {
        if self.mode == Mode::Replay {
            let len = buf.len();
            let asked = format!("{len} random bytes");
            if let Some(Event::Random { bytes }) = self.expect(
                icount,
                asked,
                |e| matches!(e, Event::Random { bytes } if bytes.len() == len),
            ) {
                buf.copy_from_slice(&bytes);
            }
            return;
        }
        host_random(buf);
        if self.mode == Mode::Record {
            self.log_event(
                icount,
                &Event::Random {
                    bytes: buf.to_vec(),
                },
            );
        }
    }
}

/// Fill `buf` from the kernel's entropy source.
fn host_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: the pointer and length describe a writable slice.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No kernel entropy interface: fall back to a time-seeded generator (the value is
            // logged in record mode anyway).
            let mut x = host_now_ns() | 1;
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
