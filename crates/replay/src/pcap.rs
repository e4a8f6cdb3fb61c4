//! A pcap file writer (the classic libpcap format, LINKTYPE_ETHERNET, microsecond
//! timestamps) for `rewind dump --pcap`: 24-byte global header, then a 16-byte header before
//! each frame.

use std::io::{self, Write};

/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame length a record may carry (the snap length in the global header).
pub const SNAPLEN: u32 = 262_144;
/// The magic number of microsecond-resolution pcap files.
const MAGIC_USEC: u32 = 0xa1b2_c3d4;

/// Writes frames to a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_USEC.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // timezone: UTC
        h.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, frames: 0 })
    }

    /// Writes one frame seen at `ns` nanoseconds (virtual time since the machine started).
    pub fn frame(&mut self, ns: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let kept = len.min(SNAPLEN);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(((ns % 1_000_000_000) / 1000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&kept.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..kept as usize])?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the stream.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_libpcap_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.frame(3_000_001_999, &[1, 2, 3]).unwrap();
        assert_eq!(w.frames(), 1);
        let b = w.finish().unwrap();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u16::from_le_bytes([b[4], b[5]]), 2);
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 4);
        assert_eq!(u32::from_le_bytes([b[20], b[21], b[22], b[23]]), 1);
        let rec = &b[24..];
        assert_eq!(u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]), 3);
        assert_eq!(u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]), 1);
        assert_eq!(u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]), 3);
        assert_eq!(u32::from_le_bytes([rec[12], rec[13], rec[14], rec[15]]), 3);
        assert_eq!(&rec[16..], &[1, 2, 3]);
    }
}
