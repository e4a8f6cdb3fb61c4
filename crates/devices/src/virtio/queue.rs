//! Split virtqueues (virtio 1.2 §2.7): descriptor chains (direct and indirect), the used ring,
//! and event-idx notification suppression. Written once, used by every virtio device.
//!
//! Everything the driver wrote is untrusted: every index is bounded by the queue size, every
//! chain by the number of descriptors it can hold, every buffer must lie inside RAM. A broken
//! queue is a [`QueueError`], which the transport turns into DEVICE_NEEDS_RESET.

use rewind_cpu::Ram;
use serde::{Deserialize, Serialize};

/// Largest queue size the transport offers (QEMU's `VIRTQUEUE_MAX_SIZE`).
pub const QUEUE_SIZE_MAX: u32 = 1024;

/// Descriptor flag: the chain goes on at `next`.
const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the buffer is device-writable.
const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds a table of descriptors.
const DESC_F_INDIRECT: u16 = 4;
/// Driver flag in the available ring: no interrupt wanted (without event-idx).
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Feature bit: indirect descriptors.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// Feature bit: `used_event` / `avail_event` notification suppression.
pub const F_EVENT_IDX: u64 = 1 << 29;
/// Feature bit: virtio 1.0 or later (required by the modern transport).
pub const F_VERSION_1: u64 = 1 << 32;

/// How the driver programmed a queue wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// Size 0, larger than the maximum, or not a power of two.
    #[error("queue size {0} is not a power of two up to {QUEUE_SIZE_MAX}")]
    BadSize(u32),
    /// A ring or descriptor table outside RAM or misaligned.
    #[error("{what} at {addr:#x} is misaligned or outside RAM")]
    BadRing {
        /// Which ring.
        what: &'static str,
        /// Its address.
        addr: u64,
    },
    /// The driver made more buffers available than the queue holds.
    #[error("available index moved by {0}, more than the queue size")]
    TooManyAvailable(u16),
    /// A descriptor index past the table.
    #[error("descriptor index {0} out of range")]
    BadIndex(u32),
    /// A chain longer than its table (a loop).
    #[error("descriptor chain longer than its table (a loop?)")]
    ChainTooLong,
    /// A buffer outside RAM.
    #[error("buffer at {addr:#x}+{len:#x} is outside RAM")]
    BadBuffer {
        /// Guest address.
        addr: u64,
        /// Length.
        len: u32,
    },
    /// An indirect table of a wrong length, or an indirect descriptor inside one.
    #[error("bad indirect descriptor table (length {0})")]
    BadIndirect(u32),
    /// A device-readable buffer after a device-writable one.
    #[error("readable descriptor after a writable one")]
    ReadAfterWrite,
    /// A chain the device cannot read as a request (headers missing or too short).
    #[error("malformed request: {0}")]
    Request(&'static str),
}

/// One buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address (checked to lie in RAM).
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// Device-writable.
    pub write: bool,
}

/// A descriptor chain taken from the available ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Index of its head descriptor (what goes back in the used ring).
    pub head: u16,
    /// Its buffers, readable ones first.
    pub segments: Vec<Segment>,
}

impl Chain {
    /// Total length of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.write)
            .map(|s| u64::from(s.len))
            .sum()
    }

    /// Total length of the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| !s.write)
            .map(|s| u64::from(s.len))
            .sum()
    }

    /// The device-readable buffers' bytes, in order, up to `max` bytes.
    pub fn read_bytes(&self, ram: &Ram, max: usize) -> Result<Vec<u8>, QueueError> {
        let mut out = Vec::with_capacity(self.readable_len().min(max as u64) as usize);
        for s in self.segments.iter().filter(|s| !s.write) {
            let n = (s.len as usize).min(max - out.len());
            if n == 0 {
                break;
            }
            let start = out.len();
            out.resize(start + n, 0);
            ram.read(s.addr, &mut out[start..])
                .map_err(|_| QueueError::BadBuffer {
                    addr: s.addr,
                    len: s.len,
                })?;
        }
        Ok(out)
    }

    /// Copy `data` into the writable buffers, in order; returns the bytes written.
    pub fn write_bytes(&self, ram: &mut Ram, data: &[u8]) -> Result<u32, QueueError> {
        let mut rest = data;
        for s in self.segments.iter().filter(|s| s.write) {
            if rest.is_empty() {
                break;
            }
            let n = rest.len().min(s.len as usize);
            ram.write(s.addr, &rest[..n])
                .map_err(|_| QueueError::BadBuffer {
                    addr: s.addr,
                    len: s.len,
                })?;
            rest = &rest[n..];
        }
        Ok((data.len() - rest.len()) as u32)
    }
}

/// One split virtqueue as the driver configured it, plus the device's ring positions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// Number of entries (`QueueNum`).
    pub size: u32,
    /// `QueueReady`.
    pub ready: bool,
    /// Descriptor table address.
    pub desc: u64,
    /// Available ring ("driver area") address.
    pub driver: u64,
    /// Used ring ("device area") address.
    pub device: u64,
    /// Next available-ring entry the device will take.
    pub last_avail: u16,
    /// The device's used index.
    pub used_idx: u16,
}

fn read_u16(ram: &Ram, addr: u64) -> Result<u16, QueueError> {
    let mut b = [0u8; 2];
    ram.read(addr, &mut b)
        .map_err(|_| QueueError::BadRing { what: "ring", addr })?;
    Ok(u16::from_le_bytes(b))
}

fn write_bytes(ram: &mut Ram, addr: u64, b: &[u8]) -> Result<(), QueueError> {
    ram.write(addr, b).map_err(|_| QueueError::BadRing {
        what: "used ring",
        addr,
    })
}

/// A raw descriptor.
struct Desc {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

fn read_desc(ram: &Ram, table: u64, index: u32) -> Result<Desc, QueueError> {
    let addr = table.wrapping_add(u64::from(index) * 16);
    let mut b = [0u8; 16];
    ram.read(addr, &mut b).map_err(|_| QueueError::BadRing {
        what: "descriptor table",
        addr,
    })?;
    Ok(Desc {
        addr: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        len: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
        flags: u16::from_le_bytes([b[12], b[13]]),
        next: u16::from_le_bytes([b[14], b[15]]),
    })
}

/// `vring_need_event` of the spec: whether moving the index from `old` to `new` passes `event`.
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl Queue {
    /// Check the configuration: size a power of two up to the maximum, rings aligned and
    /// inside RAM.
    pub fn check(&self, ram: &Ram) -> Result<(), QueueError> {
        let n = self.size;
        if n == 0 || n > QUEUE_SIZE_MAX || !n.is_power_of_two() {
            return Err(QueueError::BadSize(n));
        }
        let n = u64::from(n);
        for (what, addr, align, len) in [
            ("descriptor table", self.desc, 16, 16 * n),
            ("available ring", self.driver, 2, 6 + 2 * n),
            ("used ring", self.device, 4, 6 + 8 * n),
        ] {
            if addr % align != 0 || ram.offset(addr, len).is_none() {
                return Err(QueueError::BadRing { what, addr });
            }
        }
        Ok(())
    }

    /// Take the next available chain, if any. With `indirect`, indirect tables are accepted.
    pub fn pop(&mut self, ram: &Ram, indirect: bool) -> Result<Option<Chain>, QueueError> {
        self.check(ram)?;
        let avail_idx = read_u16(ram, self.driver + 2)?;
        let waiting = avail_idx.wrapping_sub(self.last_avail);
        if waiting == 0 {
            return Ok(None);
        }
        if u32::from(waiting) > self.size {
            return Err(QueueError::TooManyAvailable(waiting));
        }
        let slot = u64::from(u32::from(self.last_avail) % self.size);
        let head = read_u16(ram, self.driver + 4 + 2 * slot)?;
        let chain = self.walk(ram, head, indirect)?;
        self.last_avail = self.last_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    fn walk(&self, ram: &Ram, head: u16, indirect: bool) -> Result<Chain, QueueError> {
        let mut segments = Vec::new();
        let (mut table, mut limit) = (self.desc, self.size);
        let mut index = u32::from(head);
        let mut walked = 0u32;
        let mut in_indirect = false;
        loop {
            if index >= limit {
                return Err(QueueError::BadIndex(index));
            }
            walked += 1;
            if walked > limit {
                return Err(QueueError::ChainTooLong);
            }
            let d = read_desc(ram, table, index)?;
            if d.flags & DESC_F_INDIRECT != 0 {
                // Only as the sole descriptor of the main chain; never nested, never chained.
                if !indirect || in_indirect || d.flags & DESC_F_NEXT != 0 {
                    return Err(QueueError::BadIndirect(d.len));
                }
                let entries = d.len / 16;
                if d.len % 16 != 0 || entries == 0 || entries > QUEUE_SIZE_MAX {
                    return Err(QueueError::BadIndirect(d.len));
                }
                if d.addr % 16 != 0 || ram.offset(d.addr, u64::from(d.len)).is_none() {
                    return Err(QueueError::BadBuffer {
                        addr: d.addr,
                        len: d.len,
                    });
                }
                in_indirect = true;
                table = d.addr;
                limit = entries;
                index = 0;
                walked = 0;
                continue;
            }
            if ram.offset(d.addr, u64::from(d.len)).is_none() {
                return Err(QueueError::BadBuffer {
                    addr: d.addr,
                    len: d.len,
                });
            }
            let write = d.flags & DESC_F_WRITE != 0;
            if !write && segments.iter().any(|s: &Segment| s.write) {
                return Err(QueueError::ReadAfterWrite);
            }
            segments.push(Segment {
                addr: d.addr,
                len: d.len,
                write,
            });
            if d.flags & DESC_F_NEXT == 0 {
                return Ok(Chain { head, segments });
            }
            index = u32::from(d.next);
        }
    }

    /// With event-idx: publish `avail_event` = the next entry the device will take, so the
    /// driver kicks for the next buffer it adds (QEMU writes it at every pop). Without it, a
    /// buffer added after a pop but before the next used entry would never be notified.
    pub fn publish_avail_event(&self, ram: &mut Ram) -> Result<(), QueueError> {
        let n = u64::from(self.size);
        write_bytes(ram, self.device + 4 + 8 * n, &self.last_avail.to_le_bytes())
    }

    /// Return chain `head` to the driver with `len` bytes written; with `event_idx`, also
    /// publish `avail_event` (notify me at the next buffer). Returns whether the driver wants
    /// an interrupt for it.
    pub fn push_used(
        &mut self,
        ram: &mut Ram,
        head: u16,
        len: u32,
        event_idx: bool,
    ) -> Result<bool, QueueError> {
        self.check(ram)?;
        let n = u64::from(self.size);
        let slot = u64::from(u32::from(self.used_idx) % self.size);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        write_bytes(ram, self.device + 4 + 8 * slot, &elem)?;
        let old = self.used_idx;
        self.used_idx = old.wrapping_add(1);
        write_bytes(ram, self.device + 2, &self.used_idx.to_le_bytes())?;
        if event_idx {
            write_bytes(ram, self.device + 4 + 8 * n, &self.last_avail.to_le_bytes())?;
            let used_event = read_u16(ram, self.driver + 4 + 2 * n)?;
            Ok(need_event(used_event, self.used_idx, old))
        } else {
            Ok(read_u16(ram, self.driver)? & AVAIL_F_NO_INTERRUPT == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x8000_0000;
    const DESC: u64 = BASE + 0x1000;
    const AVAIL: u64 = BASE + 0x2000;
    const USED: u64 = BASE + 0x3000;

    fn setup(size: u32) -> (Ram, Queue) {
        let ram = Ram::new(BASE, 1 << 20);
        let q = Queue {
            size,
            ready: true,
            desc: DESC,
            driver: AVAIL,
            device: USED,
            ..Queue::default()
        };
        (ram, q)
    }

    fn desc(ram: &mut Ram, table: u64, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&addr.to_le_bytes());
        b[8..12].copy_from_slice(&len.to_le_bytes());
        b[12..14].copy_from_slice(&flags.to_le_bytes());
        b[14..].copy_from_slice(&next.to_le_bytes());
        ram.write(table + 16 * i, &b).unwrap();
    }

    fn offer(ram: &mut Ram, slot: u64, head: u16, idx: u16) {
        ram.write(AVAIL + 4 + 2 * slot, &head.to_le_bytes())
            .unwrap();
        ram.write(AVAIL + 2, &idx.to_le_bytes()).unwrap();
    }

    #[test]
    fn direct_chain_and_used_ring() {
        let (mut ram, mut q) = setup(8);
        desc(&mut ram, DESC, 0, BASE + 0x8000, 4, DESC_F_NEXT, 3);
        desc(&mut ram, DESC, 3, BASE + 0x9000, 16, DESC_F_WRITE, 0);
        offer(&mut ram, 0, 0, 1);
        let c = q.pop(&ram, false).unwrap().unwrap();
        assert_eq!(c.head, 0);
        assert_eq!(c.segments.len(), 2);
        assert_eq!(c.writable_len(), 16);
        assert_eq!(c.write_bytes(&mut ram, &[0xaa; 20]).unwrap(), 16);
        assert!(q.pop(&ram, false).unwrap().is_none());
        assert!(q.push_used(&mut ram, c.head, 16, false).unwrap());
        let mut b = [0u8; 12];
        ram.read(USED, &mut b).unwrap();
        assert_eq!(u16::from_le_bytes([b[2], b[3]]), 1);
        assert_eq!(u32::from_le_bytes([b[8], b[9], b[10], b[11]]), 16);
    }

    #[test]
    fn indirect_table() {
        let (mut ram, mut q) = setup(4);
        let table = BASE + 0x5000;
        desc(
            &mut ram,
            table,
            0,
            BASE + 0x8000,
            8,
            DESC_F_WRITE | DESC_F_NEXT,
            1,
        );
        desc(&mut ram, table, 1, BASE + 0x9000, 8, DESC_F_WRITE, 0);
        desc(&mut ram, DESC, 2, table, 32, DESC_F_INDIRECT, 0);
        offer(&mut ram, 0, 2, 1);
        assert_eq!(q.clone().pop(&ram, false), Err(QueueError::BadIndirect(32)));
        let c = q.pop(&ram, true).unwrap().unwrap();
        assert_eq!(c.head, 2);
        assert_eq!(c.writable_len(), 16);
    }

    #[test]
    fn broken_programming_is_an_error() {
        // A loop.
        let (mut ram, mut q) = setup(4);
        desc(&mut ram, DESC, 0, BASE, 8, DESC_F_NEXT, 1);
        desc(&mut ram, DESC, 1, BASE, 8, DESC_F_NEXT, 0);
        offer(&mut ram, 0, 0, 1);
        assert_eq!(q.pop(&ram, true), Err(QueueError::ChainTooLong));
        // Next index past the table.
        let (mut ram, mut q) = setup(4);
        desc(&mut ram, DESC, 0, BASE, 8, DESC_F_NEXT, 9);
        offer(&mut ram, 0, 0, 1);
        assert_eq!(q.pop(&ram, true), Err(QueueError::BadIndex(9)));
        // Buffer outside RAM.
        let (mut ram, mut q) = setup(4);
        desc(&mut ram, DESC, 0, 0x1000, 8, 0, 0);
        offer(&mut ram, 0, 0, 1);
        assert!(matches!(
            q.pop(&ram, true),
            Err(QueueError::BadBuffer { .. })
        ));
        // Too many available.
        let (mut ram, mut q) = setup(4);
        offer(&mut ram, 0, 0, 9);
        assert_eq!(q.pop(&ram, true), Err(QueueError::TooManyAvailable(9)));
        // Size not a power of two; ring outside RAM.
        let (ram, mut q) = setup(6);
        assert_eq!(q.pop(&ram, true), Err(QueueError::BadSize(6)));
        let (ram, mut q) = setup(4);
        q.device = 0x10;
        assert!(matches!(q.check(&ram), Err(QueueError::BadRing { .. })));
        // Readable after writable.
        let (mut ram, mut q) = setup(4);
        desc(&mut ram, DESC, 0, BASE, 8, DESC_F_WRITE | DESC_F_NEXT, 1);
        desc(&mut ram, DESC, 1, BASE, 8, 0, 0);
        offer(&mut ram, 0, 0, 1);
        assert_eq!(q.pop(&ram, true), Err(QueueError::ReadAfterWrite));
    }

    #[test]
    fn event_idx_suppresses_interrupts() {
        let (mut ram, mut q) = setup(4);
        // used_event = 1: interrupt when the used index passes 1 (on the second buffer).
        ram.write(AVAIL + 4 + 8, &1u16.to_le_bytes()).unwrap();
        assert!(!q.push_used(&mut ram, 0, 0, true).unwrap());
        assert!(q.push_used(&mut ram, 1, 0, true).unwrap());
        assert!(!q.push_used(&mut ram, 2, 0, true).unwrap());
        // Without event-idx: the no-interrupt flag.
        ram.write(AVAIL, &AVAIL_F_NO_INTERRUPT.to_le_bytes())
            .unwrap();
        assert!(!q.push_used(&mut ram, 0, 0, false).unwrap());
    }
}
