//! QEMU's console escape sequences on the stdio serial backend: `Ctrl-A x` quits, `Ctrl-A Ctrl-A`
//! sends one `Ctrl-A`, `Ctrl-A h` prints help; other `Ctrl-A <key>` pairs are swallowed.

/// The escape character (Ctrl-A), as in QEMU's `-nographic` mux.
pub const ESCAPE: u8 = 0x01;

/// What one host key means after escape processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A byte for the guest.
    Byte(u8),
    /// `Ctrl-A x`: the user asked to quit.
    Quit,
    /// `Ctrl-A h`: the user asked for the list of escapes.
    Help,
    /// Nothing (first half of an escape, or an unknown escape).
    None,
}

/// Help text for `Ctrl-A h`, modelled on QEMU's.
pub const HELP: &str =
    "\r\nC-a h    print this help\r\nC-a x    exit emulator\r\nC-a C-a  sends C-a\r\n";

/// Escape-sequence state machine fed one host byte at a time.
#[derive(Debug, Default, Clone)]
pub struct EscapeParser {
    pending: bool,
}

impl EscapeParser {
    /// A parser outside any escape sequence.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one byte typed by the user.
    pub fn feed(&mut self, b: u8) -> Key {
        if self.pending {
            self.pending = false;
            return match b {
                ESCAPE => Key::Byte(ESCAPE),
                b'x' | b'X' => Key::Quit,
                b'h' | b'H' | b'?' => Key::Help,
                _ => Key::None,
            };
        }
        if b == ESCAPE {
            self.pending = true;
            Key::None
        } else {
            Key::Byte(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Vec<Key> {
        let mut p = EscapeParser::new();
        input
            .iter()
            .map(|&b| p.feed(b))
            .filter(|k| *k != Key::None)
            .collect()
    }

    #[test]
    fn plain_bytes_pass_through() {
        assert_eq!(
            run(b"ab\x03"),
            vec![Key::Byte(b'a'), Key::Byte(b'b'), Key::Byte(3)]
        );
    }

    #[test]
    fn ctrl_a_x_quits_and_double_ctrl_a_sends_one() {
        assert_eq!(run(b"a\x01x"), vec![Key::Byte(b'a'), Key::Quit]);
        assert_eq!(run(b"\x01\x01z"), vec![Key::Byte(1), Key::Byte(b'z')]);
        assert_eq!(run(b"\x01h"), vec![Key::Help]);
        // Unknown escapes are swallowed together with their key.
        assert_eq!(run(b"\x01qz"), vec![Key::Byte(b'z')]);
    }
}
