//! virtio-net (virtio 1.2 §5.1): one receive and one transmit queue, a MAC address and a
//! link status in config space, the 12-byte `virtio_net_hdr_v1` before every frame.
//!
//! Transmit: every frame the driver queues goes to the host through the replay boundary
//! (`HostIo::net_transmit`; replay checks it against the recording). Receive: frames from the
//! host arrive as [`DeviceInput::NetFrame`] at checkpoints (logged at their delivery icount);
//! each fills one receive buffer, or waits in a bounded FIFO (part of the device state, so of
//! every snapshot) until the driver adds buffers. No offloads are offered: frames are plain
//! Ethernet with checksums filled in, as both sides of user-mode networking want them.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::queue::{QueueError, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use super::{DeviceModel, VirtioIo};
use crate::device::{DeviceInput, StateError};

/// virtio device id of a network card.
pub const DEVICE_ID: u32 = 1;
/// Feature bit: config space holds the MAC address.
pub const F_MAC: u64 = 1 << 5;
/// Feature bit: config space holds the link status.
pub const F_STATUS: u64 = 1 << 16;
/// Link status bit: the link is up.
pub const S_LINK_UP: u16 = 1;
/// Size of `virtio_net_hdr_v1` (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
/// num_buffers), the header before every frame with VERSION_1.
pub const HDR_LEN: usize = 12;
/// Frames waiting for receive buffers, beyond which new ones are dropped (as a NIC with a
/// full ring does; TCP recovers).
pub const RX_FIFO_MAX: usize = 256;
/// Largest frame accepted in either direction (no GSO is offered: 1514 plus VLAN tags is the
/// real limit; this bound only keeps a hostile driver from making the host copy gigabytes).
pub const MAX_FRAME: usize = 65_535;
/// The receive queue.
const RXQ: usize = 0;
/// The transmit queue.
const TXQ: usize = 1;

/// QEMU's MAC address for the first NIC; the next ones count up from it.
pub const DEFAULT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A network card as configured: its MAC address and the user-mode network behind it
/// (QEMU's `-netdev user,hostfwd=...` rules, in QEMU's spelling; the machine hands them to the
/// replay boundary, which alone opens host sockets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSpec {
    /// The card's MAC address.
    pub mac: [u8; 6],
    /// Port forwards `tcp:HOSTADDR:HOSTPORT-:GUESTPORT`.
    pub hostfwd: Vec<String>,
}

impl NetSpec {
    /// QEMU's MAC address for the first card.
    pub fn default_mac() -> [u8; 6] {
        DEFAULT_MAC
    }

    /// The spec as the trace header records it (QEMU's option-list style).
    pub fn spec(&self) -> String {
        let m = self.mac;
        let mut s = format!(
            "virtio-net-device,mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x},netdev=user",
            m[0], m[1], m[2], m[3], m[4], m[5]
        );
        for r in &self.hostfwd {
            s.push_str(",hostfwd=");
            s.push_str(r);
        }
        s
    }

    /// Reads back [`NetSpec::spec`]; `None` if it is not a virtio-net spec.
    pub fn parse(spec: &str) -> Option<NetSpec> {
        let mut parts = spec.split(',');
        if !matches!(parts.next()?, "virtio-net-device" | "virtio-net") {
            return None;
        }
        let mut out = NetSpec {
            mac: DEFAULT_MAC,
            hostfwd: Vec::new(),
        };
        for p in parts {
            let (k, v) = p.split_once('=')?;
            match k {
                "mac" => out.mac = parse_mac(v)?,
                "netdev" if v == "user" => {}
                "hostfwd" => out.hostfwd.push(v.to_string()),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// `52:54:00:12:34:56`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut it = s.split(':');
    for b in &mut mac {
        let p = it.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    it.next().is_none().then_some(mac)
}

/// Device-specific state saved in snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// Frames received from the host and not yet given to the driver.
    rx_fifo: VecDeque<Vec<u8>>,
    /// Frames dropped because the FIFO was full or the frame too large.
    rx_dropped: u64,
    /// Frames the driver sent.
    tx_frames: u64,
    /// Frames the driver sent that were too large to pass on.
    tx_dropped: u64,
}

/// A virtio network card.
#[derive(Debug, Clone)]
pub struct VirtioNet {
    mac: [u8; 6],
    state: State,
}

impl VirtioNet {
    /// A card with the given MAC address.
    pub fn new(mac: [u8; 6]) -> Self {
        VirtioNet {
            mac,
            state: State::default(),
        }
    }

    /// Frames waiting for receive buffers.
    pub fn rx_pending(&self) -> usize {
        self.state.rx_fifo.len()
    }

    /// Frames dropped on receive so far.
    pub fn rx_dropped(&self) -> u64 {
        self.state.rx_dropped
    }

    /// Sends every frame the driver queued.
    fn transmit(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        // At most one pass over the ring per notify: the driver cannot keep the device busy.
        let size = io.queues[TXQ].size;
        for _ in 0..size {
            let Some(chain) = io.pop(TXQ)? else {
                break;
            };
            let bytes = chain.read_bytes(io.ram, HDR_LEN + MAX_FRAME + 1)?;
            self.state.tx_frames += 1;
            if bytes.len() > HDR_LEN && bytes.len() <= HDR_LEN + MAX_FRAME {
                io.host.net_transmit(io.slot, &bytes[HDR_LEN..]);
            } else {
                // Too short to hold a header and a frame, or too long: the frame goes nowhere.
                self.state.tx_dropped += 1;
            }
            io.push_used(TXQ, chain.head, 0)?;
        }
        Ok(())
    }

    /// Moves waiting frames into receive buffers while the driver has some.
    fn fill_rx(&mut self, io: &mut VirtioIo) -> Result<(), QueueError> {
        while let Some(frame) = self.state.rx_fifo.front() {
            if !io.queues[RXQ].ready {
                break;
            }
            let Some(chain) = io.pop(RXQ)? else {
                break;
            };
            let mut buf = Vec::with_capacity(HDR_LEN + frame.len());
            buf.extend_from_slice(&rx_header());
            buf.extend_from_slice(frame);
            // A buffer too small for the frame gets what fits (a driver that follows the spec
            // without MRG_RXBUF gives at least 1526 bytes).
            let written = chain.write_bytes(io.ram, &buf)?;
            io.push_used(RXQ, chain.head, written)?;
            self.state.rx_fifo.pop_front();
        }
        Ok(())
    }
}

/// The header of a received frame: no checksum or GSO information, one buffer.
fn rx_header() -> [u8; HDR_LEN] {
    let mut h = [0u8; HDR_LEN];
    // num_buffers (le16) is the last field.
    h[10] = 1;
    h
}

impl DeviceModel for VirtioNet {
    fn name(&self) -> &'static str {
        "virtio-net"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_MAC | F_STATUS | F_INDIRECT_DESC | F_EVENT_IDX
    }

    fn queue_count(&self) -> usize {
        2
    }

    fn read_config(&self, offset: u64, size: u8) -> u64 {
        // struct virtio_net_config { u8 mac[6]; le16 status; ... }
        let mut cfg = [0u8; 8];
        cfg[..6].copy_from_slice(&self.mac);
        cfg[6..8].copy_from_slice(&S_LINK_UP.to_le_bytes());
        let mut v = 0u64;
        for i in 0..u64::from(size.min(8)) {
            let b = offset
                .checked_add(i)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| cfg.get(o).copied())
                .unwrap_or(0);
            v |= u64::from(b) << (8 * i);
        }
        v
    }

    fn reset(&mut self) {
        // Frames not yet delivered die with the driver that would have received them.
        self.state.rx_fifo.clear();
    }

    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        match queue {
            RXQ => self.fill_rx(io),
            TXQ => self.transmit(io),
            _ => Ok(()),
        }
    }

    fn host_input(&mut self, input: DeviceInput, io: &mut VirtioIo) -> Result<(), QueueError> {
        let DeviceInput::NetFrame(frame) = input else {
            return Ok(());
        };
        if self.state.rx_fifo.len() >= RX_FIFO_MAX || frame.len() > MAX_FRAME {
            self.state.rx_dropped += 1;
            return Ok(());
        }
        self.state.rx_fifo.push_back(frame);
        self.fill_rx(io)
    }

    fn save_state(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.state).unwrap_or_default()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let s: State = postcard::from_bytes(bytes).map_err(|e| StateError::Decode {
            device: "virtio-net",
            problem: e.to_string(),
        })?;
        if s.rx_fifo.len() > RX_FIFO_MAX || s.rx_fifo.iter().any(|f| f.len() > MAX_FRAME) {
            return Err(StateError::Invalid {
                device: "virtio-net",
                problem: format!("{} frames waiting, at most {RX_FIFO_MAX}", s.rx_fifo.len()),
            });
        }
        self.state = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
