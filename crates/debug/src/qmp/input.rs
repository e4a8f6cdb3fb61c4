//! QEMU's host input commands, `input-send-event` and `send-key`, for the virtio keyboard,
//! mouse and tablet.
//!
//! Events are translated here, as QEMU's input layer and `virtio_input_handle_event` do, into
//! evdev events, routed to a device, and handed to the replay boundary as
//! [`DeviceEvent::Input`] (device = the virtio-mmio slot); the boundary logs each one at the
//! icount where the machine takes it, so a replay needs no monitor. `send-key`'s hold time is a
//! [`vinput::HOLD`] input: the keyboard itself waits that long in virtual time, as QEMU's
//! keyboard queue does, so a guest sees the same hold however fast it runs; the events that go
//! through that queue carry [`vinput::QUEUED`].

use rewind_devices::virtio::input::{
    self as vinput, ev, HostEvent, HostEventKind, InputKind, BUTTONS,
};
use rewind_devices::virtio::Backend;
use rewind_replay::{DeviceEvent, HostEvent as BoundaryEvent, Mode};
use serde_json::{json, Value};

use super::QmpError;
use crate::control::Controller;

/// QEMU's hold time between `send-key` steps when none (or 0) is given, in ms.
pub const DEFAULT_HOLD_MS: u64 = 10;

/// Most events one `input-send-event` may carry (the device holds at most this many before
/// a `SYN_REPORT`).
const MAX_EVENTS: usize = vinput::MAX_PENDING - 8;

/// An input device of the machine: its slot, kind and `id`.
struct Target {
    slot: u8,
    kind: InputKind,
    id: Option<String>,
}

/// The input devices, in command-line order (the first is in the last transport).
fn targets(ctl: &Controller) -> Vec<Target> {
    let count = rewind_devices::layout::VIRT_VIRTIO_COUNT as usize;
    ctl.session()
        .machine()
        .config()
        .virtio
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match b {
            Backend::Input(kind, id) => Some(Target {
                slot: u8::try_from(count.checked_sub(i + 1)?).ok()?,
                kind: *kind,
                id: id.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Host input is for a running machine in run or record mode.
fn check_mode(ctl: &Controller, command: &str) -> Result<(), QmpError> {
    if ctl.session().mode() == Mode::Replay {
        return Err(QmpError::generic(format!(
            "{command} is not available in replay: the recorded input events are replayed"
        )));
    }
    Ok(())
}

fn check_running(ctl: &Controller) -> Result<(), QmpError> {
    if ctl.running().is_none() {
        return Err(QmpError::generic("VM not running"));
    }
    Ok(())
}

/// Hand `events` to the boundary: the machine takes them all at its next checkpoint.
fn send(ctl: &Controller, events: Vec<DeviceEvent>) -> Result<(), QmpError> {
    let boundary = ctl.session().machine().boundary().sender();
    for e in events {
        boundary
            .send(BoundaryEvent::Device(e))
            .map_err(|_| QmpError::generic("the machine takes no more input"))?;
    }
    Ok(())
}

fn missing(name: &str) -> QmpError {
    QmpError::generic(format!("Parameter '{name}' is missing"))
}

fn wrong_type(name: &str, expected: &str) -> QmpError {
    QmpError::generic(format!(
        "Invalid parameter type for '{name}', expected: {expected}"
    ))
}

fn bad_value(name: &str, value: &str) -> QmpError {
    QmpError::generic(format!(
        "Parameter '{name}' does not accept value '{value}'"
    ))
}

/// Member `key` of object `v` (called `path`), which must be there.
fn member<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a Value, QmpError> {
    let obj = v.as_object().ok_or_else(|| wrong_type(path, "object"))?;
    let name = format!("{path}.{key}");
    let m = obj.get(key).ok_or_else(|| missing(&name))?;
    Ok(m)
}

/// Refuse members of `v` other than `known`, as QEMU's visitor does.
fn no_extra(v: &Value, path: &str, known: &[&str]) -> Result<(), QmpError> {
    if let Some(k) = v
        .as_object()
        .and_then(|o| o.keys().find(|k| !known.contains(&k.as_str())))
    {
        return Err(QmpError::generic(format!(
            "Parameter '{path}.{k}' is unexpected"
        )));
    }
    Ok(())
}

fn bool_member(v: &Value, path: &str, key: &str) -> Result<bool, QmpError> {
    member(v, path, key)?
        .as_bool()
        .ok_or_else(|| wrong_type(&format!("{path}.{key}"), "boolean"))
}

fn int_member(v: &Value, path: &str, key: &str) -> Result<i64, QmpError> {
    member(v, path, key)?
        .as_i64()
        .ok_or_else(|| wrong_type(&format!("{path}.{key}"), "integer"))
}

fn str_member<'a>(v: &'a Value, path: &str, key: &str) -> Result<&'a str, QmpError> {
    member(v, path, key)?
        .as_str()
        .ok_or_else(|| wrong_type(&format!("{path}.{key}"), "string"))
}

/// A QAPI `KeyValue` (`{"type": "qcode", "data": "a"}` or `{"type": "number", "data": 30}`)
/// as a Linux key code (0: QEMU maps it to no key).
fn key_value(v: &Value, path: &str) -> Result<u16, QmpError> {
    no_extra(v, path, &["type", "data"])?;
    match str_member(v, path, "type")? {
        "qcode" => {
            let name = str_member(v, path, "data")?;
            vinput::qcode_to_linux(name).ok_or_else(|| bad_value(&format!("{path}.data"), name))
        }
        "number" => Ok(vinput::qnum_to_linux(int_member(v, path, "data")?)),
        other => Err(bad_value(&format!("{path}.type"), other)),
    }
}

fn axis(v: &Value, path: &str) -> Result<u16, QmpError> {
    match str_member(v, path, "axis")? {
        "x" => Ok(0),
        "y" => Ok(1),
        other => Err(bad_value(&format!("{path}.axis"), other)),
    }
}

/// A QAPI `InputEvent`; `None` for `mtt`, which no device here takes.
fn input_event(v: &Value, path: &str) -> Result<Option<HostEvent>, QmpError> {
    no_extra(v, path, &["type", "data"])?;
    let kind = str_member(v, path, "type")?;
    let data = member(v, path, "data")?;
    let dpath = format!("{path}.data");
    let i32_value = |d: &Value| -> Result<i32, QmpError> {
        let n = int_member(d, &dpath, "value")?;
        // QAPI's int, cast to the C int of QEMU's InputMoveEvent handling.
        Ok(n as i32)
    };
    Ok(Some(match kind {
        "key" => {
            no_extra(data, &dpath, &["key", "down"])?;
            let code = key_value(member(data, &dpath, "key")?, &format!("{dpath}.key"))?;
            HostEvent::Key {
                code,
                down: bool_member(data, &dpath, "down")?,
            }
        }
        "btn" => {
            no_extra(data, &dpath, &["button", "down"])?;
            let name = str_member(data, &dpath, "button")?;
            let button = BUTTONS
                .iter()
                .position(|b| *b == name)
                .ok_or_else(|| bad_value(&format!("{dpath}.button"), name))?;
            HostEvent::Btn {
                button,
                down: bool_member(data, &dpath, "down")?,
            }
        }
        "rel" | "abs" => {
            no_extra(data, &dpath, &["axis", "value"])?;
            let axis = axis(data, &dpath)?;
            let value = i32_value(data)?;
            if kind == "rel" {
                HostEvent::Rel { axis, value }
            } else {
                HostEvent::Abs { axis, value }
            }
        }
        "mtt" => return Ok(None),
        other => return Err(bad_value(&format!("{path}.type"), other)),
    }))
}

/// QEMU's handler lookup: a device named by `device` if it takes the event, else the most
/// recently activated one that does. A guest brings its devices up in bus order (Linux probes
/// virtio0, the first on the command line, first), so that is the last on the command line.
fn route(targets: &[Target], named: Option<usize>, kind: HostEventKind) -> Option<usize> {
    named
        .filter(|&i| targets[i].kind.accepts(kind))
        .or_else(|| targets.iter().rposition(|t| t.kind.accepts(kind)))
}

fn event_name(kind: Option<HostEventKind>) -> &'static str {
    match kind {
        Some(HostEventKind::Key) => "key",
        Some(HostEventKind::Btn) => "btn",
        Some(HostEventKind::Rel) => "rel",
        Some(HostEventKind::Abs) => "abs",
        None => "mtt",
    }
}

fn device_event(t: &Target, (kind, code, value): (u16, u16, i32)) -> DeviceEvent {
    DeviceEvent::Input {
        device: t.slot,
        kind,
        code,
        value,
    }
}

/// An event through the keyboard queue (see [`vinput::QUEUED`]).
fn queued(t: &Target, (kind, code, value): (u16, u16, i32)) -> DeviceEvent {
    device_event(t, (kind | vinput::QUEUED, code, value))
}

fn syn(t: &Target) -> DeviceEvent {
    device_event(t, (ev::SYN, ev::SYN_REPORT, 0))
}

/// `input-send-event`: every event to its device, then one `SYN_REPORT` to each device that
/// took events.
pub fn input_send_event(ctl: &mut Controller, args: &Value) -> Result<Value, QmpError> {
    check_mode(ctl, "input-send-event")?;
    let targets = targets(ctl);
    let named = match args.get("device").and_then(Value::as_str) {
        None => None,
        Some(id) => Some(
            targets
                .iter()
                .position(|t| t.id.as_deref() == Some(id))
                .ok_or_else(|| QmpError {
                    class: "DeviceNotFound",
                    desc: format!("Device '{id}' not found"),
                })?,
        ),
    };
    check_running(ctl)?;
    let list = args
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| wrong_type("events", "array"))?;
    if list.len() > MAX_EVENTS {
        return Err(QmpError::generic(format!(
            "at most {MAX_EVENTS} events per command"
        )));
    }
    let mut parsed = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        parsed.push(input_event(v, &format!("events[{i}]"))?);
    }
    let mut routed = Vec::with_capacity(parsed.len());
    for e in &parsed {
        let kind = e.map(|e| e.kind());
        let to = kind
            .and_then(|k| route(&targets, named, k))
            .ok_or_else(|| {
                QmpError::generic(format!(
                    "Input handler not found for event type {}",
                    event_name(kind)
                ))
            })?;
        routed.push(to);
    }
    let mut events = Vec::new();
    let mut touched: Vec<usize> = Vec::new();
    for ((e, to), v) in parsed.iter().zip(routed).zip(list) {
        let t = &targets[to];
        // QEMU sends a `number` key through its keyboard queue (behind a `send-key` in
        // progress), with a sync of its own.
        if v.pointer("/data/key/type").and_then(Value::as_str) == Some("number") {
            if let Some(x) = e.and_then(vinput::translate) {
                events.push(queued(t, x));
            }
            events.push(queued(t, (ev::SYN, ev::SYN_REPORT, 0)));
            continue;
        }
        if let Some(x) = e.and_then(vinput::translate) {
            events.push(device_event(t, x));
        }
        if !touched.contains(&to) {
            touched.push(to);
        }
    }
    // QEMU syncs in its handler order: the most recently activated first.
    touched.sort_unstable_by(|a, b| b.cmp(a));
    events.extend(touched.iter().map(|&i| syn(&targets[i])));
    send(ctl, events)?;
    Ok(json!({}))
}

/// `send-key`: press the keys in order, then release them in reverse, one step every
/// `hold-time` ms (QEMU's default 10), each key event followed by a `SYN_REPORT`.
pub fn send_key(ctl: &mut Controller, args: &Value) -> Result<Value, QmpError> {
    check_mode(ctl, "send-key")?;
    check_running(ctl)?;
    let hold = match args.get("hold-time") {
        None => 0,
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| wrong_type("hold-time", "integer"))?;
            u64::try_from(n)
                .ok()
                .filter(|&n| n <= 60_000)
                .ok_or_else(|| QmpError::generic("Parameter 'hold-time' must be 0 to 60000 (ms)"))?
        }
    };
    let hold = if hold == 0 { DEFAULT_HOLD_MS } else { hold };
    let list = args
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| wrong_type("keys", "array"))?;
    if list.len() > MAX_EVENTS / 4 {
        return Err(QmpError::generic(format!(
            "at most {} keys per command",
            MAX_EVENTS / 4
        )));
    }
    let mut codes = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        codes.push(key_value(v, &format!("keys[{i}]"))?);
    }
    // Without a keyboard QEMU finds no handler and drops the keys.
    let targets = targets(ctl);
    let Some(kbd) = route(&targets, None, HostEventKind::Key).map(|i| &targets[i]) else {
        return Ok(json!({}));
    };
    let hold_event = device_event(kbd, (vinput::HOLD, 0, hold as i32));
    let mut events = Vec::with_capacity(6 * codes.len() + 1);
    let mut step = |code: u16, down: bool| {
        if let Some(x) = vinput::translate(HostEvent::Key { code, down }) {
            events.push(queued(kbd, x));
        }
        events.push(queued(kbd, (ev::SYN, ev::SYN_REPORT, 0)));
        // QEMU's kbd queue delay after every key event, the last one included: it holds back
        // later key events too.
        events.push(hold_event.clone());
    };
    for &c in &codes {
        step(c, true);
    }
    for &c in codes.iter().rev() {
        step(c, false);
    }
    send(ctl, events)?;
    Ok(json!({}))
}
