//! virtio-rng (virtio 1.2 §5.4): one request queue; every buffer the driver offers is filled
//! with host entropy, which the machine fetches through the replay boundary (logged in record,
//! returned from the log in replay).

use rewind_cpu::Ram;

use super::queue::{Queue, QueueError};
use crate::device::HostInputs;

/// virtio device id of an entropy source.
pub const DEVICE_ID: u32 = 4;

/// Most bytes given for one buffer: a hostile driver offering huge buffers cannot make the
/// trace grow by more than this per request.
pub const MAX_BYTES_PER_REQUEST: u64 = 4096;

/// Fill every available buffer of `q` with entropy; returns whether the driver wants an
/// interrupt.
pub fn process(
    q: &mut Queue,
    ram: &mut Ram,
    host: &mut dyn HostInputs,
    indirect: bool,
    event_idx: bool,
) -> Result<bool, QueueError> {
    let mut notify = false;
    // At most one pass over the ring: the driver cannot keep the device busy forever.
    for _ in 0..q.size {
        let Some(chain) = q.pop(ram, indirect)? else {
            break;
        };
        let n = chain.writable_len().min(MAX_BYTES_PER_REQUEST) as usize;
        let mut buf = vec![0u8; n];
        if n > 0 {
            host.random(&mut buf);
        }
        let written = chain.write_bytes(ram, &buf)?;
        notify |= q.push_used(ram, chain.head, written, event_idx)?;
    }
    Ok(notify)
}
