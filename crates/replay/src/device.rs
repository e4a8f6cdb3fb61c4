//! Asynchronous device inputs (network frames, input events), taken at checkpoints and
//! logged at their delivery icount. Block completions are not among them: they are derived
//! from virtual time.

use rewind_log::Event;

use crate::{Boundary, Mode};

/// An asynchronous input for a device (network frames, keyboard and mouse). Host
/// backends send them as [`HostEvent::Device`]; the machine takes them with
/// [`Boundary::take_device_event`] at checkpoints, in all three modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A network frame arrived.
    NetPacket {
        /// Network device index.
        device: u8,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A keyboard / pointer event.
    Input {
        /// Input device index.
        device: u8,
        /// evdev type.
        kind: u16,
        /// evdev code.
        code: u16,
        /// evdev value.
        value: i32,
    },
}

impl DeviceEvent {
    fn to_log(&self) -> Event {
        match self.clone() {
            DeviceEvent::NetPacket { device, bytes } => Event::NetPacket { device, bytes },
            DeviceEvent::Input {
                device,
                kind,
                code,
                value,
            } => Event::InputEvent {
                device,
                kind,
                code,
                value,
            },
        }
    }

    fn from_log(e: &Event) -> Option<Self> {
        Some(match e.clone() {
            Event::NetPacket { device, bytes } => DeviceEvent::NetPacket { device, bytes },
            Event::InputEvent {
                device,
                kind,
                code,
                value,
            } => DeviceEvent::Input {
                device,
                kind,
                code,
                value,
            },
            _ => return None,
        })
    }
}

impl Boundary {
    /// A completion or input event for a device, if one is due now.
    pub fn take_device_event(&mut self, icount: u64) -> Option<DeviceEvent> {
        match self.mode {
            Mode::Replay => {
                let d = self
                    .peek_at(icount, |e| DeviceEvent::from_log(e).is_some())
                    .and_then(DeviceEvent::from_log)?;
                self.consume();
                Some(d)
            }
            Mode::Record => {
                let d = self.device_queue.pop_front()?;
                self.log_event(icount, &d.to_log());
                self.net_delivered(&d);
                Some(d)
            }
            Mode::Run => {
                let d = self.device_queue.pop_front()?;
                self.net_delivered(&d);
                Some(d)
            }
        }
    }
}
