//! Network: the user-mode network (a host backend thread, run and record only) and the frames
//! crossing the boundary.
//!
//! Frames for the guest come from the network thread as [`DeviceEvent::NetPacket`] and are
//! taken at checkpoints like every device event: logged whole at their delivery icount in
//! record, read from the log in replay. Frames the guest sends are output: record logs only
//! their length and a hash ([`Event::NetSent`]), replay checks every one against it, so a guest
//! whose network output differs from the recording is stopped at that frame. In replay no
//! socket is opened: nothing on the host is touched.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use rewind_log::Event;
pub use rewind_usernet::{HostFwd, NetConfig, NetError};

use crate::{Boundary, BoundaryError, DeviceEvent, HostEvent, Mode};

/// The host side of one network device.
#[derive(Debug)]
pub(crate) struct NetBackend {
    device: u8,
    thread: rewind_usernet::NetThread,
}

/// A frame's hash as logged: the first 8 bytes of its blake3.
pub fn frame_hash(frame: &[u8]) -> u64 {
    let h = blake3::hash(frame);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

impl Boundary {
    /// Starts the user-mode network of network device `device` (its virtio-mmio slot) and
    /// returns the host addresses its port forwards listen on. Replay opens nothing and
    /// returns no address.
    pub fn open_net(
        &mut self,
        device: u8,
        config: &NetConfig,
    ) -> Result<Vec<SocketAddr>, BoundaryError> {
        if self.mode == Mode::Replay {
            return Ok(Vec::new());
        }
        let tx = self.tx.clone();
        let thread = rewind_usernet::spawn(config, move |bytes| {
            tx.send(HostEvent::Device(DeviceEvent::NetPacket { device, bytes }))
                .is_ok()
        })
        .map_err(BoundaryError::Net)?;
        let addrs = thread.hostfwd.clone();
        self.net.push(NetBackend { device, thread });
        Ok(addrs)
    }

    /// True when a network backend is running: idle time then passes in real time, as host
    /// replies take real time to come.
    pub(crate) fn net_live(&self) -> bool {
        !self.net.is_empty()
    }

    /// The guest sent `frame` on network device `device` at `icount`.
    pub fn net_transmit(&mut self, icount: u64, device: u8, frame: &[u8]) {
        let number = self.net_sent;
        self.net_sent += 1;
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let hash = frame_hash(frame);
        match self.mode {
            Mode::Replay => {
                let asked = format!(
                    "to send network frame #{number} on device {device}: {len} bytes, \
                     hash {hash:#018x}"
                );
                self.expect(icount, asked, |e| {
                    *e == Event::NetSent { device, len, hash }
                });
            }
            Mode::Record | Mode::Run => {
                if self.mode == Mode::Record {
                    self.log_event(icount, &Event::NetSent { device, len, hash });
                }
                if let Some(b) = self.net.iter().find(|b| b.device == device) {
                    // A stopped thread only means the frame goes nowhere, as on a cut cable.
                    let _ = b.thread.guest_frames.send(frame.to_vec());
                }
            }
        }
    }

    /// A device event is handed to the machine: a delivered frame leaves room for the network
    /// thread to send another.
    pub(crate) fn net_delivered(&self, event: &DeviceEvent) {
        let DeviceEvent::NetPacket { device, .. } = event else {
            return;
        };
        if let Some(b) = self.net.iter().find(|b| b.device == *device) {
            let f = &b.thread.in_flight;
            let _ = f.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
}

#[cfg(test)]
mod tests;
