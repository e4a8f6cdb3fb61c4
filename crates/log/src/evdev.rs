//! Names of evdev event types and codes (Linux `input-event-codes.h`) for `rewind dump`: the
//! ones rewind's virtio keyboard, mouse and tablet send.

/// The `EV_*` name of an event type.
pub fn type_name(kind: u16) -> Option<&'static str> {
    Some(match kind {
        0x00 => "EV_SYN",
        0x01 => "EV_KEY",
        0x02 => "EV_REL",
        0x03 => "EV_ABS",
        0x11 => "EV_LED",
        0x14 => "EV_REP",
        // Not evdev: rewind's virtio input devices wait `value` ms of virtual time here.
        0xffff => "HOLD",
        _ => return None,
    })
}

/// The name of `code` for events of type `kind` (`KEY_A`, `BTN_LEFT`, `REL_X`, ...).
pub fn code_name(kind: u16, code: u16) -> Option<String> {
    let fixed = |s: &str| Some(s.to_string());
    match (kind, code) {
        (0x00, 0) => fixed("SYN_REPORT"),
        (0x02, 0) => fixed("REL_X"),
        (0x02, 1) => fixed("REL_Y"),
        (0x02, 8) => fixed("REL_WHEEL"),
        (0x03, 0) => fixed("ABS_X"),
        (0x03, 1) => fixed("ABS_Y"),
        (0x01, c) => key_name(c),
        _ => None,
    }
}

/// Keys by rows of the keyboard, as Linux numbers them.
const ROWS: [(u16, &str); 4] = [
    (2, "1234567890"),
    (16, "QWERTYUIOP"),
    (30, "ASDFGHJKL"),
    (44, "ZXCVBNM"),
];

fn key_name(code: u16) -> Option<String> {
    for (start, keys) in ROWS {
        if let Some(k) = code
            .checked_sub(start)
            .and_then(|i| keys.chars().nth(usize::from(i)))
        {
            return Some(format!("KEY_{k}"));
        }
    }
    if (59..=68).contains(&code) {
        return Some(format!("KEY_F{}", code - 58));
    }
    let name = match code {
        1 => "KEY_ESC",
        12 => "KEY_MINUS",
        13 => "KEY_EQUAL",
        14 => "KEY_BACKSPACE",
        15 => "KEY_TAB",
        26 => "KEY_LEFTBRACE",
        27 => "KEY_RIGHTBRACE",
        28 => "KEY_ENTER",
        29 => "KEY_LEFTCTRL",
        39 => "KEY_SEMICOLON",
        40 => "KEY_APOSTROPHE",
        41 => "KEY_GRAVE",
        42 => "KEY_LEFTSHIFT",
        43 => "KEY_BACKSLASH",
        51 => "KEY_COMMA",
        52 => "KEY_DOT",
        53 => "KEY_SLASH",
        54 => "KEY_RIGHTSHIFT",
        56 => "KEY_LEFTALT",
        57 => "KEY_SPACE",
        58 => "KEY_CAPSLOCK",
        87 => "KEY_F11",
        88 => "KEY_F12",
        97 => "KEY_RIGHTCTRL",
        99 => "KEY_SYSRQ",
        100 => "KEY_RIGHTALT",
        102 => "KEY_HOME",
        103 => "KEY_UP",
        104 => "KEY_PAGEUP",
        105 => "KEY_LEFT",
        106 => "KEY_RIGHT",
        107 => "KEY_END",
        108 => "KEY_DOWN",
        109 => "KEY_PAGEDOWN",
        110 => "KEY_INSERT",
        111 => "KEY_DELETE",
        125 => "KEY_LEFTMETA",
        126 => "KEY_RIGHTMETA",
        0x110 => "BTN_LEFT",
        0x111 => "BTN_RIGHT",
        0x112 => "BTN_MIDDLE",
        0x113 => "BTN_SIDE",
        0x114 => "BTN_EXTRA",
        0x14a => "BTN_TOUCH",
        0x150 => "BTN_GEAR_DOWN",
        0x151 => "BTN_GEAR_UP",
        _ => return None,
    };
    Some(name.to_string())
}

/// `EV_KEY KEY_A` (numbers where a name is not known).
pub fn describe(kind: u16, code: u16) -> String {
    if kind == 0xffff {
        return "HOLD: the device waits value ms".into();
    }
    // rewind's keyboard-queue flag (send-key): the event waits behind a HOLD.
    if kind & 0x8000 != 0 {
        return format!("queued {}", describe(kind & 0x7fff, code));
    }
    let t = type_name(kind).map_or_else(|| format!("type {kind}"), str::to_string);
    let c = code_name(kind, code).unwrap_or_else(|| format!("code {code}"));
    format!("{t} {c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_input_event_codes_h() {
        assert_eq!(describe(1, 30), "EV_KEY KEY_A");
        assert_eq!(describe(1, 16), "EV_KEY KEY_Q");
        assert_eq!(describe(1, 50), "EV_KEY KEY_M");
        assert_eq!(describe(1, 11), "EV_KEY KEY_0");
        assert_eq!(describe(1, 2), "EV_KEY KEY_1");
        assert_eq!(describe(1, 59), "EV_KEY KEY_F1");
        assert_eq!(describe(1, 68), "EV_KEY KEY_F10");
        assert_eq!(describe(1, 0x110), "EV_KEY BTN_LEFT");
        assert_eq!(describe(0, 0), "EV_SYN SYN_REPORT");
        assert_eq!(describe(3, 1), "EV_ABS ABS_Y");
        assert_eq!(describe(2, 8), "EV_REL REL_WHEEL");
        assert_eq!(describe(1, 0x1ff), "EV_KEY code 511");
        assert_eq!(describe(9, 1), "type 9 code 1");
        assert_eq!(describe(0xffff, 0), "HOLD: the device waits value ms");
        assert_eq!(describe(0x8001, 30), "queued EV_KEY KEY_A");
    }
}
