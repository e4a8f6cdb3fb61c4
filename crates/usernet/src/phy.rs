//! The smoltcp device between [`crate::UserNet`] and the guest: two frame queues.

use std::collections::VecDeque;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;

use crate::MAX_FRAME;

/// Frames from the guest waiting for smoltcp, and frames smoltcp produced for the guest.
#[derive(Debug, Default)]
pub(crate) struct Phy {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: Vec<Vec<u8>>,
    /// Frames smoltcp may still send on its own this poll (answers to received frames are
    /// always sent): the guest's receive path has room for only so many.
    pub(crate) budget: usize,
}

pub(crate) struct Rx(Vec<u8>);

pub(crate) struct Tx<'a> {
    tx: &'a mut Vec<Vec<u8>>,
}

impl RxToken for Rx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.tx.push(buf);
        r
    }
}

impl Device for Phy {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), Tx { tx: &mut self.tx }))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        Some(Tx { tx: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}
