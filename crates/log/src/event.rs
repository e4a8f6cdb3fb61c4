//! Events and their hand-written binary encoding (see docs/log-format.md §4).
//!
//! Tag byte = `class << 4 | sub`. Tag values are pinned here forever: a new kind takes a new
//! value, never shifts old ones (QEMU shifted shutdown ids without a version bump once).

use serde::{Deserialize, Serialize};

use crate::error::Corruption;

/// Largest blob (serial bytes, random bytes, packet) one event may carry.
pub const MAX_EVENT_BLOB: usize = 8 << 20;

/// Why the host ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShutdownCause {
    /// SIGINT (Ctrl-C on the terminal).
    SigInt,
    /// SIGTERM.
    SigTerm,
    /// The Ctrl-A X escape on the console.
    CtrlAX,
    /// The recording reached its configured end (instruction or time limit).
    EndOfRecording,
    /// A monitor command asked to quit.
    Monitor,
    /// SIGHUP (the terminal went away).
    SigHup,
    /// Not a shutdown: a monitor `system_reset`. The machine resets here and runs on.
    HostReset,
}

impl ShutdownCause {
    const ALL: [ShutdownCause; 7] = [
        ShutdownCause::SigInt,
        ShutdownCause::SigTerm,
        ShutdownCause::CtrlAX,
        ShutdownCause::EndOfRecording,
        ShutdownCause::Monitor,
        ShutdownCause::SigHup,
        ShutdownCause::HostReset,
    ];
}

/// How the guest ended the run (test finisher / reset device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GuestExitKind {
    /// Power off with success.
    Pass,
    /// Power off with a failure code.
    Fail,
    /// Reset request.
    Reset,
}

impl GuestExitKind {
    const ALL: [GuestExitKind; 3] = [
        GuestExitKind::Pass,
        GuestExitKind::Fail,
        GuestExitKind::Reset,
    ];
}

/// One recorded non-deterministic input (or marker), without its icount.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// Bytes typed into a serial port; delivered asynchronously at a checkpoint.
    SerialInput {
        /// Serial port index.
        port: u8,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The host stopped the run.
    HostShutdown {
        /// Why.
        cause: ShutdownCause,
    },
    /// The guest stopped or reset the machine.
    GuestExit {
        /// Pass, fail or reset.
        kind: GuestExitKind,
        /// Exit code given by the guest.
        code: u16,
    },
    /// A host clock was read (RTC, time CSR source...).
    ClockRead {
        /// Which clock (assigned by the machine).
        kind: u8,
        /// Value returned, in ns.
        value_ns: u64,
    },
    /// Host entropy handed to the guest.
    Random {
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// All harts idle (WFI): virtual time jumped forward.
    IdleWarp {
        /// Nanoseconds skipped.
        ns: u64,
    },
    /// Cheap hash of architectural state plus serial output so far, to catch divergence early.
    StateHash {
        /// The hash.
        hash: u64,
    },
    /// A frame the guest sent (derived output): its length and hash, so a replay whose guest
    /// sends something else is stopped at that packet.
    NetSent {
        /// Network device index.
        device: u8,
        /// Frame length.
        len: u32,
        /// Hash of the frame.
        hash: u64,
    },
    /// A network packet arrived from the host side.
    NetPacket {
        /// Network device index.
        device: u8,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A keyboard / pointer event.
    InputEvent {
        /// Input device index.
        device: u8,
        /// Event type (evdev-style).
        kind: u16,
        /// Event code.
        code: u16,
        /// Event value.
        value: i32,
    },
    /// Architectural registers at a state check (same icount as the `StateHash` before it), so
    /// a hash mismatch can be reported as a register diff. Layout chosen by the machine.
    StateRegisters {
        /// The register values.
        regs: Vec<u64>,
    },
    /// A machine snapshot was taken here while recording (the `seq`-th one, from 0). Carries
    /// no input: replay skips it; it gives a snapshot kept outside the trace (the sidecar
    /// file) its exact position in the trace.
    SnapshotMark {
        /// Sequence number of the snapshot in the recording.
        seq: u64,
    },
    /// Audio captured by the host for a sound device, handed to the guest when a capture
    /// buffer completes (a synchronous read, like [`Event::Random`]).
    AudioCapture {
        /// Sound device index (its virtio-mmio transport).
        device: u8,
        /// The PCM bytes, in the stream's format.
        bytes: Vec<u8>,
    },
    /// End of the event stream (written by `TraceWriter::finish`).
    End,
}

/// The kind of an [`Event`], without payload (used for counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// [`Event::SerialInput`].
    SerialInput,
    /// [`Event::HostShutdown`].
    HostShutdown,
    /// [`Event::GuestExit`].
    GuestExit,
    /// [`Event::ClockRead`].
    ClockRead,
    /// [`Event::Random`].
    Random,
    /// [`Event::IdleWarp`].
    IdleWarp,
    /// [`Event::StateHash`].
    StateHash,
    /// [`Event::NetSent`].
    NetSent,
    /// [`Event::NetPacket`].
    NetPacket,
    /// [`Event::InputEvent`].
    InputEvent,
    /// [`Event::StateRegisters`].
    StateRegisters,
    /// [`Event::End`].
    End,
    /// [`Event::SnapshotMark`].
    SnapshotMark,
    /// [`Event::AudioCapture`].
    AudioCapture,
}

impl EventKind {
    /// Every kind, in a fixed order (index = `as usize`).
    pub const ALL: [EventKind; 14] = [
        EventKind::SerialInput,
        EventKind::HostShutdown,
        EventKind::GuestExit,
        EventKind::ClockRead,
        EventKind::Random,
        EventKind::IdleWarp,
        EventKind::StateHash,
        EventKind::NetSent,
        EventKind::NetPacket,
        EventKind::InputEvent,
        EventKind::StateRegisters,
        EventKind::End,
        EventKind::SnapshotMark,
        EventKind::AudioCapture,
    ];

    /// Name as printed by dumps.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::SerialInput => "SerialInput",
            EventKind::HostShutdown => "HostShutdown",
            EventKind::GuestExit => "GuestExit",
            EventKind::ClockRead => "ClockRead",
            EventKind::Random => "Random",
            EventKind::IdleWarp => "IdleWarp",
            EventKind::StateHash => "StateHash",
            EventKind::NetSent => "NetSent",
            EventKind::NetPacket => "NetPacket",
            EventKind::InputEvent => "InputEvent",
            EventKind::StateRegisters => "StateRegisters",
            EventKind::End => "End",
            EventKind::SnapshotMark => "SnapshotMark",
            EventKind::AudioCapture => "AudioCapture",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Event {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::SerialInput { .. } => EventKind::SerialInput,
            Event::HostShutdown { .. } => EventKind::HostShutdown,
            Event::GuestExit { .. } => EventKind::GuestExit,
            Event::ClockRead { .. } => EventKind::ClockRead,
            Event::Random { .. } => EventKind::Random,
            Event::IdleWarp { .. } => EventKind::IdleWarp,
            Event::StateHash { .. } => EventKind::StateHash,
            Event::NetSent { .. } => EventKind::NetSent,
            Event::NetPacket { .. } => EventKind::NetPacket,
            Event::InputEvent { .. } => EventKind::InputEvent,
            Event::StateRegisters { .. } => EventKind::StateRegisters,
            Event::SnapshotMark { .. } => EventKind::SnapshotMark,
            Event::AudioCapture { .. } => EventKind::AudioCapture,
            Event::End => EventKind::End,
        }
    }

    /// The blob carried by the event, if any (its length is checked against [`MAX_EVENT_BLOB`]).
    pub fn blob(&self) -> Option<&[u8]> {
        match self {
            Event::SerialInput { bytes, .. }
            | Event::Random { bytes }
            | Event::AudioCapture { bytes, .. }
            | Event::NetPacket { bytes, .. } => Some(bytes),
            _ => None,
        }
    }
}

// Tag classes (high nibble) and control sub-tags. Pinned values: see docs/log-format.md.
const CLASS_CONTROL: u8 = 0x0;
const CLASS_SERIAL: u8 = 0x1;
const CLASS_SHUTDOWN: u8 = 0x2;
const CLASS_GUEST_EXIT: u8 = 0x3;
const CLASS_CLOCK: u8 = 0x4;
const CLASS_NET_SENT: u8 = 0x5;
const CLASS_NET: u8 = 0x6;
const CLASS_INPUT: u8 = 0x7;
const TAG_END: u8 = 0x01;
const TAG_STATE_HASH: u8 = 0x02;
const TAG_IDLE_WARP: u8 = 0x03;
const TAG_RANDOM: u8 = 0x04;
const TAG_STATE_REGISTERS: u8 = 0x05;
const TAG_SNAPSHOT_MARK: u8 = 0x06;
const TAG_AUDIO_CAPTURE: u8 = 0x07;
/// Most registers one `StateRegisters` event may carry.
pub const MAX_STATE_REGISTERS: usize = 1024;
/// Sub value meaning "the index does not fit in the nibble: a u8 index byte follows".
const SUB_ESCAPE: u8 = 0xF;

/// Appends `v` as unsigned LEB128.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one encoded event (tag, varint icount delta, payload) to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, delta: u64, event: &Event) {
    // The delta follows the tag, but an escaped index byte comes after the delta so the
    // layout is always: tag, delta, payload.
    let (tag, escaped) = match event {
        Event::SerialInput { port: i, .. }
        | Event::ClockRead { kind: i, .. }
        | Event::NetSent { device: i, .. }
        | Event::NetPacket { device: i, .. }
        | Event::InputEvent { device: i, .. } => {
            let class = match event {
                Event::SerialInput { .. } => CLASS_SERIAL,
                Event::ClockRead { .. } => CLASS_CLOCK,
                Event::NetSent { .. } => CLASS_NET_SENT,
                Event::NetPacket { .. } => CLASS_NET,
                _ => CLASS_INPUT,
            };
            if *i < SUB_ESCAPE {
                (class << 4 | *i, None)
            } else {
                (class << 4 | SUB_ESCAPE, Some(*i))
            }
        }
        Event::HostShutdown { cause } => (CLASS_SHUTDOWN << 4 | *cause as u8, None),
        Event::GuestExit { kind, .. } => (CLASS_GUEST_EXIT << 4 | *kind as u8, None),
        Event::Random { .. } => (TAG_RANDOM, None),
        Event::IdleWarp { .. } => (TAG_IDLE_WARP, None),
        Event::StateHash { .. } => (TAG_STATE_HASH, None),
        Event::StateRegisters { .. } => (TAG_STATE_REGISTERS, None),
        Event::SnapshotMark { .. } => (TAG_SNAPSHOT_MARK, None),
        Event::AudioCapture { .. } => (TAG_AUDIO_CAPTURE, None),
        Event::End => (TAG_END, None),
    };
    out.push(tag);
    put_varint(out, delta);
    if let Some(i) = escaped {
        out.push(i);
    }
    match event {
        Event::SerialInput { bytes, .. }
        | Event::Random { bytes }
        | Event::NetPacket { bytes, .. } => {
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Event::HostShutdown { .. } | Event::End => {}
        Event::GuestExit { code, .. } => out.extend_from_slice(&code.to_le_bytes()),
        Event::ClockRead { value_ns, .. } => out.extend_from_slice(&value_ns.to_le_bytes()),
        Event::IdleWarp { ns } => put_varint(out, *ns),
        Event::SnapshotMark { seq } => put_varint(out, *seq),
        Event::AudioCapture { device, bytes } => {
            out.push(*device);
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        Event::StateHash { hash } => out.extend_from_slice(&hash.to_le_bytes()),
        Event::StateRegisters { regs } => {
            put_varint(out, regs.len() as u64);
            for &r in regs {
                put_varint(out, r);
            }
        }
        Event::NetSent { len, hash, .. } => {
            put_varint(out, u64::from(*len));
            out.extend_from_slice(&hash.to_le_bytes());
        }
        Event::InputEvent {
            kind, code, value, ..
        } => {
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// Bounds-checked cursor over a decompressed block.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the event's tag, for error messages.
    start: usize,
}

impl Cursor<'_> {
    fn overrun(&self) -> Corruption {
        Corruption::EventOverrun {
            offset_in_block: self.start as u32,
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], Corruption> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.overrun())?;
        let s = self.data.get(self.pos..end).ok_or_else(|| self.overrun())?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Corruption> {
        Ok(self.bytes(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Corruption> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, Corruption> {
        let at = self.pos as u32;
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            // The 10th byte may only carry bit 63.
            if i == 9 && b > 1 {
                return Err(Corruption::BadVarint {
                    offset_in_block: at,
                });
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corruption::BadVarint {
            offset_in_block: at,
        })
    }

    /// Reads a varint length and that many bytes; the length is checked against the data
    /// before anything is allocated.
    fn blob(&mut self) -> Result<Vec<u8>, Corruption> {
        let len = self.varint()?;
        if len > MAX_EVENT_BLOB as u64 {
            return Err(Corruption::BadLength {
                field: "event blob length",
                value: len,
                max: MAX_EVENT_BLOB as u64,
            });
        }
        Ok(self.bytes(len as usize)?.to_vec())
    }
}

/// Decodes the event at `pos` in a decompressed block: returns (icount delta, event, encoded length).
pub(crate) fn decode_event(data: &[u8], pos: usize) -> Result<(u64, Event, usize), Corruption> {
    let mut c = Cursor {
        data,
        pos,
        start: pos,
    };
    let tag = c.u8()?;
    let unknown = Corruption::UnknownTag {
        tag,
        offset_in_block: pos as u32,
    };
    let class = tag >> 4;
    let sub = tag & 0xF;
    // Reject unknown tags before reading anything else so the error names the tag.
    let known = match class {
        CLASS_CONTROL => matches!(
            tag,
            TAG_END
                | TAG_STATE_HASH
                | TAG_IDLE_WARP
                | TAG_RANDOM
                | TAG_STATE_REGISTERS
                | TAG_SNAPSHOT_MARK
                | TAG_AUDIO_CAPTURE
        ),
        CLASS_SHUTDOWN => (sub as usize) < ShutdownCause::ALL.len(),
        CLASS_GUEST_EXIT => (sub as usize) < GuestExitKind::ALL.len(),
        CLASS_SERIAL | CLASS_CLOCK | CLASS_NET_SENT | CLASS_NET | CLASS_INPUT => true,
        _ => false,
    };
    if !known {
        return Err(unknown);
    }
    let delta = c.varint()?;
    let index = if sub == SUB_ESCAPE { c.u8()? } else { sub };
    let event = match class {
        CLASS_CONTROL => match tag {
            TAG_END => Event::End,
            TAG_STATE_HASH => Event::StateHash {
                hash: u64::from_le_bytes(c.array()?),
            },
            TAG_IDLE_WARP => Event::IdleWarp { ns: c.varint()? },
            TAG_SNAPSHOT_MARK => Event::SnapshotMark { seq: c.varint()? },
            TAG_AUDIO_CAPTURE => Event::AudioCapture {
                device: c.u8()?,
                bytes: c.blob()?,
            },
            TAG_STATE_REGISTERS => {
                let n = c.varint()?;
                if n > MAX_STATE_REGISTERS as u64 {
                    return Err(Corruption::BadLength {
                        field: "register count",
                        value: n,
                        max: MAX_STATE_REGISTERS as u64,
                    });
                }
                let mut regs = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    regs.push(c.varint()?);
                }
                Event::StateRegisters { regs }
            }
            _ => Event::Random { bytes: c.blob()? },
        },
        CLASS_SERIAL => Event::SerialInput {
            port: index,
            bytes: c.blob()?,
        },
        CLASS_SHUTDOWN => Event::HostShutdown {
            cause: ShutdownCause::ALL[sub as usize],
        },
        CLASS_GUEST_EXIT => Event::GuestExit {
            kind: GuestExitKind::ALL[sub as usize],
            code: u16::from_le_bytes(c.array()?),
        },
        CLASS_CLOCK => Event::ClockRead {
            kind: index,
            value_ns: u64::from_le_bytes(c.array()?),
        },
        CLASS_NET_SENT => Event::NetSent {
            device: index,
            len: u32::try_from(c.varint()?).map_err(|_| unknown)?,
            hash: u64::from_le_bytes(c.array()?),
        },
        CLASS_NET => Event::NetPacket {
            device: index,
            bytes: c.blob()?,
        },
        _ => Event::InputEvent {
            device: index,
            kind: u16::from_le_bytes(c.array()?),
            code: u16::from_le_bytes(c.array()?),
            value: i32::from_le_bytes(c.array()?),
        },
    };
    Ok((delta, event, c.pos - pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_known_answers() {
        let mut v = Vec::new();
        put_varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        v.clear();
        put_varint(&mut v, u64::MAX);
        assert_eq!(v.len(), 10);
        assert_eq!(v[9], 0x01);
    }

    #[test]
    fn known_encodings() {
        let mut v = Vec::new();
        encode_event(
            &mut v,
            3,
            &Event::SerialInput {
                port: 0,
                bytes: b"ls".to_vec(),
            },
        );
        assert_eq!(v, [0x10, 0x03, 0x02, b'l', b's']);
        v.clear();
        encode_event(
            &mut v,
            0,
            &Event::SerialInput {
                port: 200,
                bytes: vec![],
            },
        );
        assert_eq!(v, [0x1f, 0x00, 200, 0x00]);
        v.clear();
        encode_event(
            &mut v,
            1,
            &Event::GuestExit {
                kind: GuestExitKind::Fail,
                code: 0x1234,
            },
        );
        assert_eq!(v, [0x31, 0x01, 0x34, 0x12]);
        v.clear();
        encode_event(&mut v, 2, &Event::SnapshotMark { seq: 300 });
        assert_eq!(v, [0x06, 0x02, 0xac, 0x02]);
        assert_eq!(
            decode_event(&v, 0),
            Ok((2, Event::SnapshotMark { seq: 300 }, 4))
        );
        v.clear();
        let e = Event::AudioCapture {
            device: 7,
            bytes: vec![1, 2, 3],
        };
        encode_event(&mut v, 5, &e);
        assert_eq!(v, [0x07, 0x05, 7, 0x03, 1, 2, 3]);
        assert_eq!(decode_event(&v, 0), Ok((5, e, 7)));
    }

    #[test]
    fn overlong_varint_rejected() {
        let data = [
            0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert_eq!(
            decode_event(&data, 0),
            Err(Corruption::BadVarint { offset_in_block: 1 })
        );
    }
}
