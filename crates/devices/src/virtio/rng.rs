//! virtio-rng (virtio 1.2 §5.4): one request queue; every buffer the driver offers is filled
//! with host entropy, which the machine fetches through the replay boundary (logged in record,
//! returned from the log in replay).

use super::queue::{QueueError, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use super::{DeviceModel, VirtioIo};
use crate::device::StateError;

/// virtio device id of an entropy source.
pub const DEVICE_ID: u32 = 4;

/// Most bytes given for one buffer: a hostile driver offering huge buffers cannot make the
/// trace grow by more than this per request.
pub const MAX_BYTES_PER_REQUEST: u64 = 4096;

/// The entropy device: it has no state of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rng;

impl DeviceModel for Rng {
    fn name(&self) -> &'static str {
        "virtio-rng"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX
    }

    fn queue_count(&self) -> usize {
        1
    }

    fn reset(&mut self) {}

    /// Fill every available buffer with entropy.
    fn notify(&mut self, queue: usize, io: &mut VirtioIo) -> Result<(), QueueError> {
        // At most one pass over the ring: the driver cannot keep the device busy forever.
        let size = io.queues.get(queue).map_or(0, |q| q.size);
        for _ in 0..size {
            let Some(chain) = io.pop(queue)? else {
                break;
            };
            let n = chain.writable_len().min(MAX_BYTES_PER_REQUEST) as usize;
            let mut buf = vec![0u8; n];
            if n > 0 {
                io.host.random(&mut buf);
            }
            let written = chain.write_bytes(io.ram, &buf)?;
            io.push_used(queue, chain.head, written)?;
        }
        Ok(())
    }

    fn save_state(&self) -> Vec<u8> {
        Vec::new()
    }

    fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err(StateError::Invalid {
                device: "virtio-rng",
                problem: format!("{} bytes of state for a stateless device", bytes.len()),
            })
        }
    }
}
