//! virtio-input (virtio 1.2 §5.8): QEMU 10's `virtio-keyboard-device`, `virtio-mouse-device`
//! and `virtio-tablet-device`. Two queues: the event queue (device -> driver, 8-byte
//! `virtio_input_event`s) and the status queue (driver -> device: keyboard LEDs).
//!
//! The configuration space answers the `select`/`subsel` protocol with exactly QEMU's entries
//! (names, device ids, `EV_KEY`/`EV_REL`/`EV_ABS`/`EV_LED`/`EV_REP` bitmaps, absolute axis
//! ranges), with QEMU's space size and its way of keeping the last image read. Host events
//! arrive as [`DeviceInput::Input`] (already translated to evdev type/code/value by the QMP
//! monitor, see [`translate`]); as QEMU does, they are held until an `EV_SYN`/`SYN_REPORT`, and
//! the whole report is dropped when the event queue has fewer free buffers than it has events.

pub mod keymap;

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use super::queue::{QueueError, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use super::{DeviceModel, VirtioIo};
use crate::device::{DeviceInput, StateError};

/// virtio device id of an input device.
pub const DEVICE_ID: u32 = 18;

/// evdev event types (Linux `input-event-codes.h`).
pub mod ev {
    /// Synchronisation.
    pub const SYN: u16 = 0x00;
    /// Keys and buttons.
    pub const KEY: u16 = 0x01;
    /// Relative axes.
    pub const REL: u16 = 0x02;
    /// Absolute axes.
    pub const ABS: u16 = 0x03;
    /// LEDs.
    pub const LED: u16 = 0x11;
    /// Autorepeat.
    pub const REP: u16 = 0x14;
    /// `SYN_REPORT`: the end of one report.
    pub const SYN_REPORT: u16 = 0;
    /// `REL_X`.
    pub const REL_X: u16 = 0x00;
    /// `REL_Y`.
    pub const REL_Y: u16 = 0x01;
    /// `REL_WHEEL`.
    pub const REL_WHEEL: u16 = 0x08;
    /// `ABS_X`.
    pub const ABS_X: u16 = 0x00;
    /// `ABS_Y`.
    pub const ABS_Y: u16 = 0x01;
    /// `BTN_LEFT`.
    pub const BTN_LEFT: u16 = 0x110;
    /// `BTN_RIGHT`.
    pub const BTN_RIGHT: u16 = 0x111;
    /// `BTN_MIDDLE`.
    pub const BTN_MIDDLE: u16 = 0x112;
    /// `BTN_SIDE`.
    pub const BTN_SIDE: u16 = 0x113;
    /// `BTN_EXTRA`.
    pub const BTN_EXTRA: u16 = 0x114;
    /// `BTN_TOUCH`.
    pub const BTN_TOUCH: u16 = 0x14a;
    /// `BTN_GEAR_DOWN`.
    pub const BTN_GEAR_DOWN: u16 = 0x150;
    /// `BTN_GEAR_UP`.
    pub const BTN_GEAR_UP: u16 = 0x151;
    /// `LED_NUML`.
    pub const LED_NUML: u16 = 0;
    /// `LED_CAPSL`.
    pub const LED_CAPSL: u16 = 1;
    /// `LED_SCROLLL`.
    pub const LED_SCROLLL: u16 = 2;
}

/// Configuration selectors (virtio 1.2 §5.8.4).
pub mod cfg {
    /// Unset.
    pub const UNSET: u8 = 0x00;
    /// Device name (string).
    pub const ID_NAME: u8 = 0x01;
    /// Serial number (string).
    pub const ID_SERIAL: u8 = 0x02;
    /// Bus type, vendor, product, version.
    pub const ID_DEVIDS: u8 = 0x03;
    /// Input properties bitmap.
    pub const PROP_BITS: u8 = 0x10;
    /// Event codes bitmap of event type `subsel`.
    pub const EV_BITS: u8 = 0x11;
    /// Range of absolute axis `subsel`.
    pub const ABS_INFO: u8 = 0x12;
}

/// Smallest and largest value of the tablet's absolute axes (QEMU's `INPUT_EVENT_ABS_MIN/MAX`).
pub const ABS_MAX: i32 = 0x7fff;

/// Most events held while waiting for a `SYN_REPORT`; past it the report is dropped (QEMU
/// grows its list without bound).
pub const MAX_PENDING: usize = 1024;

/// Not an evdev type: rewind's hold marker. An input of this type makes the device wait
/// `value` ms of virtual time before it takes the inputs after it (QMP `send-key`'s hold
/// time, which QEMU counts in virtual time too). It is logged like the other inputs, and the
/// wait is derived from virtual time, so a replay holds exactly as the recording did.
pub const HOLD: u16 = 0xffff;

/// Flag on an input's type: it goes through the keyboard queue (QEMU's `kbd_queue`: the
/// events of `send-key` and `number` keys), so it waits behind a [`HOLD`] in progress. Inputs
/// without it are taken at once, as QEMU sends them past that queue.
pub const QUEUED: u16 = 0x8000;

/// Most inputs waiting behind a hold; past it new queued inputs are dropped.
pub const MAX_BACKLOG: usize = 4096;

/// `BUS_VIRTUAL`.
const BUS_VIRTUAL: u16 = 0x06;
/// QEMU's vendor id for its HID devices.
const VENDOR_QEMU_HID: u16 = 0x0627;

/// Which of QEMU's virtio input devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputKind {
    /// `virtio-keyboard-device`: key events.
    Keyboard,
    /// `virtio-mouse-device`: buttons and relative motion (and the wheel).
    Mouse,
    /// `virtio-tablet-device`: buttons and absolute position (and the wheel).
    Tablet,
}

/// The kinds of host events a device takes (QEMU's input handler masks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEventKind {
    /// Keys.
    Key,
    /// Buttons.
    Btn,
    /// Relative motion.
    Rel,
    /// Absolute position.
    Abs,
}

/// QEMU's `InputButton` names, in enum order.
pub const BUTTONS: [&str; 10] = [
    "left",
    "middle",
    "right",
    "wheel-up",
    "wheel-down",
    "side",
    "extra",
    "wheel-left",
    "wheel-right",
    "touch",
];

/// Linux code of each [`BUTTONS`] entry (QEMU's `keymap_button`; 0: not mapped).
const BUTTON_CODES: [u16; 10] = [
    ev::BTN_LEFT,
    ev::BTN_MIDDLE,
    ev::BTN_RIGHT,
    ev::BTN_GEAR_UP,
    ev::BTN_GEAR_DOWN,
    ev::BTN_SIDE,
    ev::BTN_EXTRA,
    0,
    0,
    ev::BTN_TOUCH,
];

/// A host input event as QEMU's input layer describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostEvent {
    /// A key (Linux key code) pressed or released.
    Key {
        /// Linux key code.
        code: u16,
        /// Pressed.
        down: bool,
    },
    /// A button (index into [`BUTTONS`]) pressed or released.
    Btn {
        /// Button index.
        button: usize,
        /// Pressed.
        down: bool,
    },
    /// Relative motion on axis 0 (x) or 1 (y).
    Rel {
        /// Axis.
        axis: u16,
        /// Amount.
        value: i32,
    },
    /// Absolute position on axis 0 (x) or 1 (y).
    Abs {
        /// Axis.
        axis: u16,
        /// Position, 0..=[`ABS_MAX`].
        value: i32,
    },
}

impl HostEvent {
    /// Which handler mask the event needs.
    pub fn kind(&self) -> HostEventKind {
        match self {
            HostEvent::Key { .. } => HostEventKind::Key,
            HostEvent::Btn { .. } => HostEventKind::Btn,
            HostEvent::Rel { .. } => HostEventKind::Rel,
            HostEvent::Abs { .. } => HostEventKind::Abs,
        }
    }
}

impl InputKind {
    /// Whether the device takes events of `kind` (QEMU's handler mask).
    pub fn accepts(self, kind: HostEventKind) -> bool {
        matches!(
            (self, kind),
            (InputKind::Keyboard, HostEventKind::Key)
                | (InputKind::Mouse, HostEventKind::Btn | HostEventKind::Rel)
                | (InputKind::Tablet, HostEventKind::Btn | HostEventKind::Abs)
        )
    }

    /// QEMU's device name (`ID_NAME`).
    pub fn id_name(self) -> &'static str {
        match self {
            InputKind::Keyboard => "QEMU Virtio Keyboard",
            InputKind::Mouse => "QEMU Virtio Mouse",
            InputKind::Tablet => "QEMU Virtio Tablet",
        }
    }

    /// The configuration entries QEMU 10 answers, as `(select, subsel, payload)`, in its order
    /// (mouse and tablet with their default `wheel-axis=on`).
    fn entries(self) -> Vec<(u8, u8, Vec<u8>)> {
        let mut name = self.id_name().as_bytes().to_vec();
        name.push(0); // QEMU counts the terminating NUL in the size.
        let product: u16 = match self {
            InputKind::Keyboard => 1,
            InputKind::Mouse => 2,
            InputKind::Tablet => 3,
        };
        let version: u16 = if self == InputKind::Keyboard { 1 } else { 2 };
        let mut devids = Vec::with_capacity(8);
        for v in [BUS_VIRTUAL, VENDOR_QEMU_HID, product, version] {
            devids.extend_from_slice(&v.to_le_bytes());
        }
        let mut e = vec![(cfg::ID_NAME, 0, name), (cfg::ID_DEVIDS, 0, devids)];
        let rel_wheel = vec![0u8, 1 << (ev::REL_WHEEL - 8)];
        let absinfo = || {
            let mut a = Vec::with_capacity(20);
            for v in [0i32, ABS_MAX, 0, 0, 0] {
                a.extend_from_slice(&v.to_le_bytes());
            }
            a
        };
        match self {
            InputKind::Keyboard => {
                e.push((cfg::EV_BITS, ev::REP as u8, vec![0]));
                e.push((
                    cfg::EV_BITS,
                    ev::LED as u8,
                    vec![1 << ev::LED_NUML | 1 << ev::LED_CAPSL | 1 << ev::LED_SCROLLL],
                ));
                let codes = keymap::QCODES.iter().map(|&(_, c)| c);
                e.push((cfg::EV_BITS, ev::KEY as u8, bitmap(codes)));
            }
            InputKind::Mouse => {
                let mut rel = rel_wheel;
                rel[0] = 1 << ev::REL_X | 1 << ev::REL_Y;
                e.push((cfg::EV_BITS, ev::REL as u8, rel));
                e.push((cfg::EV_BITS, ev::KEY as u8, bitmap(BUTTON_CODES)));
            }
            InputKind::Tablet => {
                e.push((
                    cfg::EV_BITS,
                    ev::ABS as u8,
                    vec![1 << ev::ABS_X | 1 << ev::ABS_Y],
                ));
                e.push((cfg::EV_BITS, ev::REL as u8, rel_wheel));
                e.push((cfg::ABS_INFO, ev::ABS_X as u8, absinfo()));
                e.push((cfg::ABS_INFO, ev::ABS_Y as u8, absinfo()));
                e.push((cfg::EV_BITS, ev::KEY as u8, bitmap(BUTTON_CODES)));
            }
        }
        e
    }

    /// Bytes of the configuration space: the largest entry plus the 8-byte header, as QEMU.
    pub fn config_size(self) -> usize {
        8 + self
            .entries()
            .iter()
            .map(|(_, _, p)| p.len())
            .max()
            .unwrap_or(0)
    }

    /// The configuration space image for `select`/`subsel`: the entry's header and payload,
    /// or all zeros (`select` and `subsel` included) when there is no such entry, as QEMU.
    fn image(self, select: u8, subsel: u8) -> Vec<u8> {
        let mut img = vec![0u8; self.config_size()];
        if let Some((s, ss, p)) = self
            .entries()
            .into_iter()
            .find(|(s, ss, _)| *s == select && *ss == subsel)
        {
            img[0] = s;
            img[1] = ss;
            img[2] = p.len() as u8;
            img[8..8 + p.len()].copy_from_slice(&p);
        }
        img
    }
}

/// The evdev event (type, code, value) QEMU's virtio input devices send for a host event
/// (`virtio_input_handle_event`, with `wheel-axis=on`): wheel buttons pressed are `REL_WHEEL`
/// ±1; released, they are `BTN_GEAR_UP/DOWN` 0, as on QEMU.
pub fn translate(event: HostEvent) -> Option<(u16, u16, i32)> {
    match event {
        HostEvent::Key { code, down } => (code != 0).then_some((ev::KEY, code, i32::from(down))),
        HostEvent::Btn { button, down } => {
            if down && (button == 3 || button == 4) {
                return Some((ev::REL, ev::REL_WHEEL, if button == 3 { 1 } else { -1 }));
            }
            let code = *BUTTON_CODES.get(button)?;
            (code != 0).then_some((ev::KEY, code, i32::from(down)))
        }
        HostEvent::Rel { axis, value } => Some((ev::REL, axis, value)),
        HostEvent::Abs { axis, value } => Some((ev::ABS, axis, value)),
    }
}

/// Linux key code of a QAPI `QKeyCode` name (`sysrq` is `print`, as QEMU normalises it);
/// `None` for an unknown name, `Some(0)` for a name QEMU does not map.
pub fn qcode_to_linux(name: &str) -> Option<u16> {
    let name = if name == "sysrq" { "print" } else { name };
    keymap::QCODES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, c)| c)
}

/// Linux key code of a QEMU "qnum" key number (0 when QEMU maps it to no key).
pub fn qnum_to_linux(number: i64) -> u16 {
    let qcode = u8::try_from(number)
        .ok()
        .and_then(|n| keymap::QNUM_TO_QCODE.iter().find(|(q, _)| *q == n))
        .map_or(0, |&(_, i)| usize::from(i));
    keymap::QCODES.get(qcode).map_or(0, |&(_, c)| c)
}

/// A bitmap with bit `c` set for every nonzero code, as long as its last nonzero byte.
fn bitmap(codes: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let mut b = Vec::new();
    for c in codes.into_iter().filter(|&c| c != 0) {
        let byte = usize::from(c / 8);
        if b.len() <= byte {
            b.resize(byte + 1, 0);
        }
        b[byte] |= 1 << (c % 8);
    }
    b
}

/// One `virtio_input_event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Event {
    kind: u16,
    code: u16,
    value: i32,
}

impl Event {
    fn bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..2].copy_from_slice(&self.kind.to_le_bytes());
        b[2..4].copy_from_slice(&self.code.to_le_bytes());
        b[4..].copy_from_slice(&self.value.to_le_bytes());
        b
    }
}

/// What a snapshot saves of an input device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Selected configuration entry.
    select: u8,
    subsel: u8,
    /// QEMU's copy of the configuration space as of the last write (see [`Input::stale`]).
    shadow: Vec<u8>,
    /// Events since the last `SYN_REPORT`.
    pending: Vec<Event>,
    /// Inputs waiting for a hold to end, in arrival order.
    backlog: std::collections::VecDeque<Event>,
    /// Virtual ns at which the current hold ends.
    hold_until: Option<u64>,
    /// LED bits the driver set (`EV_LED` codes).
    leds: u8,
}

/// A virtio input device.
#[derive(Debug)]
pub struct Input {
    kind: InputKind,
    state: State,
    /// A configuration read happened since the last write: QEMU's copy of the space is then
    /// the image of the selected entry (QEMU refreshes it on every read), which is what a
    /// partial write of `select` or `subsel` combines with.
    stale: Cell<bool>,
}

impl Input {
    /// A device of `kind` in reset state.
    pub fn new(kind: InputKind) -> Self {
        Input {
            kind,
            state: State {
                shadow: vec![0; kind.config_size()],
                ..State::default()
            },
            stale: Cell::new(false),
        }
    }

    /// The device kind.
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// LED bits set by the driver (bit `LED_NUML`, `LED_CAPSL`, `LED_SCROLLL`).
    pub fn leds(&self) -> u8 {
        self.state.leds
    }

    fn read_byte(&self, image: &[u8], offset: u64) -> u8 {
        usize::try_from(offset)
            .ok()
            .and_then(|o| image.get(o))
            .copied()
            .unwrap_or(0xff)
    }

    /// Take the backlog's inputs in order until a hold that has not ended. A hold with nothing
    /// behind it still holds back what comes next (QEMU's trailing `send-key` delay).
    fn drain(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        loop {
            if let Some(until) = self.state.hold_until {
                if io.t.ns < until {
                    break;
                }
                self.state.hold_until = None;
            }
            let Some(e) = self.state.backlog.pop_front() else {
                break;
            };
            if e.kind == HOLD {
                let ms = u64::try_from(e.value).unwrap_or(0);
                self.state.hold_until = Some(io.t.ns.saturating_add(ms * 1_000_000));
            } else {
                self.take(e, io)?;
            }
        }
        Ok(())
    }

    /// One evdev event: held until its report's `SYN_REPORT`.
    fn take(&mut self, e: Event, io: &mut VirtioIo) -> Result<(), QueueError> {
        if self.state.pending.len() >= MAX_PENDING {
            self.state.pending.clear();
        }
        self.state.pending.push(e);
        if e.kind == ev::SYN && e.code == ev::SYN_REPORT {
            self.flush(io)?;
        }
        Ok(())
    }

    /// QEMU's `virtio_input_send` at a `SYN_REPORT`: every pending event needs a buffer, or
    /// the whole report is dropped (the buffers taken go back).
    fn flush(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        let events = std::mem::take(&mut self.state.pending);
        let start = io.queues.first().map_or(0, |q| q.last_avail);
        let mut chains = Vec::with_capacity(events.len());
        for _ in &events {
            match io.pop(0)? {
                Some(c) => chains.push(c),
                None => {
                    if let Some(q) = io.queues.first_mut() {
                        q.last_avail = start;
                    }
                    return Ok(());
                }
            }
        }
        for (e, chain) in events.iter().zip(chains) {
            let written = chain.write_bytes(io.ram, &e.bytes())?;
            io.push_used(0, chain.head, written)?;
        }
        Ok(())
    }
}

impl DeviceModel for Input {
    fn name(&self) -> &'static str {
        match self.kind {
            InputKind::Keyboard => "virtio-keyboard",
            InputKind::Mouse => "virtio-mouse",
            InputKind::Tablet => "virtio-tablet",
        }
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX
    }

    fn queue_count(&self) -> usize {
        2
    }

    fn read_config(&self, offset: u64, size: u8) -> u64 {
        // QEMU maps config accesses of at most 4 bytes; 8 are two 4-byte ones, low first.
        if size == 8 {
            return self.read_config(offset, 4) | self.read_config(offset + 4, 4) << 32;
        }
        let size = u64::from(size);
        if offset + size > self.kind.config_size() as u64 {
            // Past the space: QEMU answers all ones.
            return u64::MAX >> (64 - 8 * size);
        }
        self.stale.set(true);
        let image = self.kind.image(self.state.select, self.state.subsel);
        (0..size).fold(0, |v, i| {
            v | u64::from(self.read_byte(&image, offset + i)) << (8 * i)
        })
    }

    fn write_config(&mut self, offset: u64, size: u8, value: u64) {
        if size == 8 {
            self.write_config(offset, 4, value & 0xffff_ffff);
            self.write_config(offset + 4, 4, value >> 32);
            return;
        }
        let len = self.kind.config_size();
        let Some(end) = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(usize::from(size)))
            .filter(|&e| e <= len)
        else {
            return;
        };
        if self.stale.replace(false) {
            self.state.shadow = self.kind.image(self.state.select, self.state.subsel);
        }
        let start = end - usize::from(size);
        self.state.shadow[start..end].copy_from_slice(&value.to_le_bytes()[..usize::from(size)]);
        self.state.select = self.state.shadow[0];
        self.state.subsel = self.state.shadow[1];
    }

    fn notify_on_config_write(&self) -> bool {
        true
    }

    fn reset(&mut self) {
        // QEMU keeps the selection and its copy of the space across a reset.
        self.state.pending.clear();
        self.state.backlog.clear();
        self.state.hold_until = None;
        self.state.leds = 0;
    }

    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        // Event buffers are used when events come; status buffers are read and returned.
        if queue != 1 {
            return Ok(());
        }
        let size = io.queues.get(1).map_or(0, |q| q.size);
        for _ in 0..size {
            let Some(chain) = io.pop(1)? else {
                break;
            };
            let mut b = chain.read_bytes(io.ram, 8)?;
            let len = b.len() as u32;
            b.resize(8, 0);
            let kind = u16::from_le_bytes([b[0], b[1]]);
            let code = u16::from_le_bytes([b[2], b[3]]);
            let value = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            if kind == ev::LED && code <= ev::LED_SCROLLL {
                if value != 0 {
                    self.state.leds |= 1 << code;
                } else {
                    self.state.leds &= !(1 << code);
                }
            }
            io.push_used(1, chain.head, len)?;
        }
        Ok(())
    }

    fn host_input(&mut self, input: DeviceInput, io: &mut VirtioIo) -> Result<(), QueueError> {
        let DeviceInput::Input { kind, code, value } = input else {
            return Ok(());
        };
        if kind != HOLD && kind & QUEUED == 0 {
            return self.take(Event { kind, code, value }, io);
        }
        if self.state.backlog.len() >= MAX_BACKLOG {
            return Ok(());
        }
        let kind = if kind == HOLD { kind } else { kind & !QUEUED };
        self.state.backlog.push_back(Event { kind, code, value });
        self.drain(io)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.state.hold_until
    }

    fn on_time(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        self.drain(io)
    }

    fn save_state(&self) -> Vec<u8> {
        let mut s = self.state.clone();
        if self.stale.get() {
            s.shadow = self.kind.image(s.select, s.subsel);
        }
        // Serialising a plain struct into a Vec cannot fail; an empty state fails to restore.
        postcard::to_allocvec(&s).unwrap_or_default()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let name = self.name();
        let s: State = postcard::from_bytes(bytes).map_err(|e| StateError::Decode {
            device: name,
            problem: e.to_string(),
        })?;
        let invalid = |problem: String| StateError::Invalid {
            device: name,
            problem,
        };
        if s.shadow.len() != self.kind.config_size() {
            return Err(invalid(format!(
                "configuration copy of {} bytes, the device has {}",
                s.shadow.len(),
                self.kind.config_size()
            )));
        }
        if s.pending.len() > MAX_PENDING || s.backlog.len() > MAX_BACKLOG {
            return Err(invalid(format!(
                "{} pending events, {} waiting",
                s.pending.len(),
                s.backlog.len()
            )));
        }
        if s.leds >> 3 != 0 {
            return Err(invalid(format!("LED bits {:#x}", s.leds)));
        }
        self.state = s;
        self.stale.set(false);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
