//! Raw mode for the controlling terminal while the guest owns the console.
//!
//! The saved settings live in a process-wide slot so that a panic hook can restore them too:
//! a crashed emulator must never leave the user's shell in raw mode.

use std::sync::{Mutex, Once};

static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Restores the terminal settings when dropped.
#[derive(Debug)]
pub struct RawModeGuard {
    _private: (),
}

/// True when standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// Put the terminal on stdin into raw mode, as QEMU's stdio chardev does: no echo, no line
/// editing, no signal keys (Ctrl-C goes to the guest), output post-processing kept so the
/// guest's `\n` still starts a new line. Returns `None` when stdin is not a terminal.
pub fn enter_raw_mode() -> std::io::Result<Option<RawModeGuard>> {
    if !stdin_is_tty() {
        return Ok(None);
    }
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut tio: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and pointer.
    if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut tio) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = tio;
    tio.c_iflag &= !(libc::IGNBRK
        | libc::BRKINT
        | libc::PARMRK
        | libc::ISTRIP
        | libc::INLCR
        | libc::IGNCR
        | libc::ICRNL
        | libc::IXON);
    tio.c_oflag |= libc::OPOST;
    tio.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN | libc::ISIG);
    tio.c_cflag &= !(libc::CSIZE | libc::PARENB);
    tio.c_cflag |= libc::CS8;
    tio.c_cc[libc::VMIN] = 1;
    tio.c_cc[libc::VTIME] = 0;
    if let Ok(mut slot) = SAVED.lock() {
        if slot.is_none() {
            *slot = Some(saved);
        }
    }
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            prev(info);
        }));
    });
    // SAFETY: valid descriptor and pointer.
    if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &tio) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some(RawModeGuard { _private: () }))
}

/// Put back the settings saved by [`enter_raw_mode`], if any (idempotent).
pub fn restore() {
    let saved = match SAVED.lock() {
        Ok(mut slot) => slot.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(tio) = saved {
        // SAFETY: valid descriptor and pointer to a termios obtained from tcgetattr.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &tio);
        }
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        restore();
    }
}
