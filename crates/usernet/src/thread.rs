//! The network thread: runs a [`UserNet`] against the guest's frame channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::{NetConfig, NetError, UserNet};

/// Frames handed to the guest side and not yet delivered, beyond which the stack holds back
/// (TCP then waits, instead of the guest's receive queue dropping frames). Equal to the
/// virtio-net receive FIFO, so frames in flight always fit there.
pub const MAX_IN_FLIGHT: usize = 256;

/// A running network thread. Dropping it stops the thread.
#[derive(Debug)]
pub struct NetThread {
    /// Frames the guest sent go here.
    pub guest_frames: Sender<Vec<u8>>,
    /// Frames given to `deliver` and not yet handed to the guest: the receiver of the frames
    /// decrements it as it delivers them.
    pub in_flight: Arc<AtomicUsize>,
    /// The addresses the hostfwd rules listen on.
    pub hostfwd: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for NetThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts the stack on its own thread. Every frame for the guest is passed to `deliver`; when
/// it returns false (the receiver is gone) the thread ends.
pub fn spawn(
    config: &NetConfig,
    mut deliver: impl FnMut(Vec<u8>) -> bool + Send + 'static,
) -> Result<NetThread, NetError> {
    let mut net = UserNet::new(config)?;
    let hostfwd = net.hostfwd_addrs();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (flight, stopped) = (Arc::clone(&in_flight), Arc::clone(&stop));
    let handle = std::thread::Builder::new()
        .name("rewind-net".into())
        .spawn(move || loop {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            let budget = MAX_IN_FLIGHT.saturating_sub(flight.load(Ordering::SeqCst));
            let delay = if budget == 0 {
                std::time::Duration::from_millis(1)
            } else {
                net.poll_delay()
            };
            match rx.recv_timeout(delay) {
                Ok(f) => {
                    net.guest_frame(&f);
                    while let Ok(f) = rx.try_recv() {
                        net.guest_frame(&f);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let budget = MAX_IN_FLIGHT.saturating_sub(flight.load(Ordering::SeqCst));
            for f in net.poll(budget) {
                flight.fetch_add(1, Ordering::SeqCst);
                if !deliver(f) {
                    return;
                }
            }
        })
        .map_err(NetError::Thread)?;
    Ok(NetThread {
        guest_frames: tx,
        in_flight,
        hostfwd,
        stop,
        handle: Some(handle),
    })
}
