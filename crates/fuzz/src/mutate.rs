//! A small seeded mutation engine (no dependency, the same sequence for the same seed on every
//! host) and structure-aware mutators for inputs protected by checksums.

/// SplitMix64: tiny, fast, and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// Values that tend to sit on boundaries of length and count checks.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// Mutate `input` with 1 to 8 stacked edits: bit flips, random or boundary bytes and words,
/// insertions, deletions, duplicated ranges, truncation, or bytes spliced from `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        let len = v.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next_u64() as u8;
            }
            2 if len >= 8 => {
                let i = rng.below(len - 7);
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let val = INTERESTING[rng.below(INTERESTING.len())]
                    .wrapping_add(rng.below(3) as u64)
                    .wrapping_sub(1);
                v[i..i + width].copy_from_slice(&val.to_le_bytes()[..width]);
            }
            3 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(i..i, bytes);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                v.drain(i..i + n);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            7 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(256));
                let at = rng.below(len + 1);
                let end = (at + n).min(len);
                v.splice(at..end, other[i..i + n].iter().copied());
            }
            8 if len > 0 => {
                // A run of one byte value (zeroed or 0xff regions).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let b = if rng.one_in(2) { 0 } else { 0xff };
                v[i..i + n].fill(b);
            }
            _ => {
                let n = 1 + rng.below(8);
                v.extend((0..n).map(|_| rng.next_u64() as u8));
            }
        }
    }
    v
}

/// Trace: mutate the decompressed events of one block and write it back with valid lengths
/// and CRC, so the event decoder and the icount and footer checks see the mutation (a raw
/// byte change only ever reaches the block checksum).
pub fn reframe_trace_block(rng: &mut Rng, trace: &[u8]) -> Option<Vec<u8>> {
    const BLOCK_HEADER: usize = 24;
    let header_len = u32::from_le_bytes(trace.get(10..14)?.try_into().ok()?) as usize;
    let mut off = 14 + header_len + 4;
    let mut blocks = Vec::new();
    while trace.get(off..off + 4) == Some(b"RWBK") {
        let comp = u32::from_le_bytes(trace.get(off + 4..off + 8)?.try_into().ok()?) as usize;
        blocks.push(off);
        off += BLOCK_HEADER + comp;
    }
    let &at = blocks.get(rng.below(blocks.len()))?;
    let comp_len = u32::from_le_bytes(trace.get(at + 4..at + 8)?.try_into().ok()?) as usize;
    let first_icount = trace.get(at + 12..at + 20)?.to_vec();
    let comp = trace.get(at + BLOCK_HEADER..at + BLOCK_HEADER + comp_len)?;
    let raw = zstd::bulk::decompress(comp, 16 << 20).ok()?;
    let raw = mutate(rng, &raw, &[]);
    if raw.is_empty() {
        return None;
    }
    let new_comp = zstd::bulk::compress(&raw, 1).ok()?;
    let mut fields = Vec::with_capacity(16);
    fields.extend_from_slice(&(new_comp.len() as u32).to_le_bytes());
    fields.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    if rng.one_in(4) {
        fields.extend_from_slice(&(rng.next_u64() >> rng.below(64)).to_le_bytes());
    } else {
        fields.extend_from_slice(&first_icount);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&fields);
    crc.update(&new_comp);
    let mut out = trace[..at].to_vec();
    out.extend_from_slice(b"RWBK");
    out.extend_from_slice(&fields);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&new_comp);
    let rest = &trace[at + BLOCK_HEADER + comp_len..];
    // The trailer points at the footer: keep it pointing there after the block changed size.
    let delta = new_comp.len() as i64 - comp_len as i64;
    let n = rest.len();
    if n >= 16 && &rest[n - 8..] == b"RWNDEND\0" {
        let footer = u64::from_le_bytes(rest[n - 16..n - 8].try_into().ok()?);
        out.extend_from_slice(&rest[..n - 16]);
        out.extend_from_slice(&(footer as i64 + delta).to_le_bytes());
        out.extend_from_slice(b"RWNDEND\0");
    } else {
        out.extend_from_slice(rest);
    }
    Some(out)
}

/// Snapshot file: mutate the decompressed payload (the encoded machine state and pages) and
/// write it back with a valid length and CRC, so decoding and restore validation see it.
pub fn reframe_snapshot(rng: &mut Rng, file: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: usize = 24;
    let comp = file.get(PREFIX..)?;
    let raw = zstd::stream::decode_all(comp).ok()?;
    let raw = mutate(rng, &raw, &[]);
    let new_comp = zstd::bulk::compress(&raw, 1).ok()?;
    let mut out = file[..12].to_vec();
    out.extend_from_slice(&crc32fast::hash(&new_comp).to_le_bytes());
    out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
    out.extend_from_slice(&new_comp);
    Some(out)
}

/// gdb: mutate the bodies of the `$body#cs` packets in `input` and frame them again with the
/// right checksum (gdb's stub drops packets with a bad one before parsing them).
pub fn reframe_gdb_packets(rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for part in input.split(|&b| b == b'$').skip(1) {
        let body = part.split(|&b| b == b'#').next()?;
        let body = if rng.one_in(2) {
            mutate(rng, body, &[])
        } else {
            body.to_vec()
        };
        let body: Vec<u8> = body
            .into_iter()
            .filter(|b| !matches!(b, b'$' | b'#'))
            .collect();
        let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        out.push(b'$');
        out.extend_from_slice(&body);
        out.extend_from_slice(format!("#{sum:02x}").as_bytes());
        if rng.one_in(8) {
            out.push(0x03); // an interrupt request between packets
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Pack: mutate the JSON index and frame it again (length, CRC32), so the mutation reaches
/// the index's checks (names, sizes, offsets) instead of stopping at the checksum.
pub fn reframe_pack_index(rng: &mut Rng, file: &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(file.get(12..16)?.try_into().ok()?) as usize;
    let index = file.get(20..20 + len)?;
    let rest = file.get(20 + len..)?;
    let index = mutate(rng, index, &[]);
    let mut out = file[..12].to_vec();
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&index).to_le_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let input = b"the quick brown fox jumps over the lazy dog";
        let a: Vec<Vec<u8>> = {
            let mut r = Rng::new(7);
            (0..50).map(|_| mutate(&mut r, input, b"xyz")).collect()
        };
        let mut r = Rng::new(7);
        for m in &a {
            assert_eq!(&mutate(&mut r, input, b"xyz"), m);
        }
        assert!(a.iter().any(|m| m != input), "nothing mutated");
    }

    #[test]
    fn gdb_packets_are_framed_with_their_checksum() {
        let mut r = Rng::new(1);
        let out = reframe_gdb_packets(&mut r, b"$g#67").unwrap();
        let s = String::from_utf8_lossy(&out).into_owned();
        let body = &s[1..s.find('#').unwrap()];
        let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        assert!(s.contains(&format!("#{sum:02x}")), "{s}");
    }
}
