//! Host audio backends (`--audiodev`, QEMU's spelling): a WAV file that receives what the
//! guest plays, and a WAV file (or silence) that capture reads from.
//!
//! Playback is derived output: it is written in run, record and replay alike, and each byte
//! position of the stream is written once (a replay that re-executes a stretch after
//! restoring a snapshot does not write it twice). Capture is a host input: the boundary logs
//! it; in replay the capture file is never opened.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Largest capture file read (it is decoded into memory whole).
pub const MAX_CAPTURE_FILE: u64 = 256 << 20;

/// Encoding of one PCM sample (little endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioSample {
    /// Signed 8 bits.
    S8,
    /// Unsigned 8 bits.
    U8,
    /// Signed 16 bits.
    S16,
    /// Unsigned 16 bits.
    U16,
    /// Signed 32 bits.
    S32,
    /// Unsigned 32 bits.
    U32,
    /// IEEE 754 single precision.
    F32,
}

impl AudioSample {
    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            AudioSample::S8 | AudioSample::U8 => 1,
            AudioSample::S16 | AudioSample::U16 => 2,
            AudioSample::S32 | AudioSample::U32 | AudioSample::F32 => 4,
        }
    }

    /// One sample of `b` (exactly [`AudioSample::bytes`] long) as a signed value scaled to
    /// the full 32-bit range.
    fn decode(self, b: &[u8]) -> i32 {
        match self {
            AudioSample::S8 => i32::from(b[0] as i8) << 24,
            AudioSample::U8 => i32::from((b[0] ^ 0x80) as i8) << 24,
            AudioSample::S16 => i32::from(i16::from_le_bytes([b[0], b[1]])) << 16,
            AudioSample::U16 => i32::from(i16::from_le_bytes([b[0], b[1] ^ 0x80])) << 16,
            AudioSample::S32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            AudioSample::U32 => i32::from_le_bytes([b[0], b[1], b[2], b[3] ^ 0x80]),
            AudioSample::F32 => f32_to_i32(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        }
    }

    /// Append sample `v` (full 32-bit scale) in this encoding.
    fn encode(self, v: i32, out: &mut Vec<u8>) {
        match self {
            AudioSample::S8 => out.push((v >> 24) as u8),
            AudioSample::U8 => out.push((v >> 24) as u8 ^ 0x80),
            AudioSample::S16 => out.extend_from_slice(&((v >> 16) as i16).to_le_bytes()),
            AudioSample::U16 => out.extend_from_slice(&(((v >> 16) as u16) ^ 0x8000).to_le_bytes()),
            AudioSample::S32 => out.extend_from_slice(&v.to_le_bytes()),
            AudioSample::U32 => out.extend_from_slice(&((v as u32) ^ 0x8000_0000).to_le_bytes()),
            AudioSample::F32 => out.extend_from_slice(&(v as f32 / 2_147_483_648.0).to_le_bytes()),
        }
    }
}

fn f32_to_i32(f: f32) -> i32 {
    // NaN → 0; the cast saturates.
    if f.is_nan() {
        0
    } else {
        (f64::from(f) * 2_147_483_648.0) as i32
    }
}

/// The format of a PCM stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    /// Frames per second.
    pub rate: u32,
    /// Interleaved channels.
    pub channels: u8,
    /// Sample encoding.
    pub sample: AudioSample,
}

impl AudioFormat {
    fn wav_spec(self) -> hound::WavSpec {
        let (bits, fmt) = match self.sample {
            AudioSample::S8 | AudioSample::U8 => (8, hound::SampleFormat::Int),
            AudioSample::S16 | AudioSample::U16 => (16, hound::SampleFormat::Int),
            AudioSample::S32 | AudioSample::U32 => (32, hound::SampleFormat::Int),
            AudioSample::F32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec {
            channels: u16::from(self.channels),
            sample_rate: self.rate,
            bits_per_sample: bits,
            sample_format: fmt,
        }
    }
}

/// Format of the WAV written when the guest never plays anything (QEMU's wav default).
const IDLE_FORMAT: AudioFormat = AudioFormat {
    rate: 44100,
    channels: 2,
    sample: AudioSample::S16,
};

/// One `--audiodev`: QEMU's `wav,id=ID,path=OUT.wav` (playback to a WAV file) or `none,id=ID`,
/// plus rewind's `in.path=IN.wav` (capture from a WAV file; silence without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDevConfig {
    /// The id devices refer to (`audiodev=ID`).
    pub id: String,
    /// Where playback goes (`path=`, wav only).
    pub out: Option<PathBuf>,
    /// Where capture comes from (`in.path=`).
    pub input: Option<PathBuf>,
}

/// QEMU's wav backend writes `qemu.wav` when no path is given; rewind writes this.
pub const DEFAULT_WAV: &str = "rewind.wav";

impl AudioDevConfig {
    /// Parse QEMU's `-audiodev` option list (`wav,id=a0,path=out.wav,in.path=in.wav`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(',');
        let driver = parts.next().unwrap_or("");
        let mut id = None;
        let mut out = None;
        let mut input = None;
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("audiodev option '{kv}' is not KEY=VALUE"))?;
            match k {
                "id" => id = Some(v.to_string()),
                "path" if driver == "wav" => out = Some(PathBuf::from(v)),
                "in.path" => input = Some(PathBuf::from(v)),
                // QEMU's per-direction settings: the guest's stream format is written as is.
                k if k.starts_with("out.") || k.starts_with("in.") || k == "timer-period" => {}
                _ => return Err(format!("audiodev {driver}: unknown option '{k}'")),
            }
        }
        let id = id.ok_or("audiodev: id=ID is required")?;
        match driver {
            "wav" => Ok(AudioDevConfig {
                id,
                out: Some(out.unwrap_or_else(|| PathBuf::from(DEFAULT_WAV))),
                input,
            }),
            "none" => Ok(AudioDevConfig {
                id,
                out: None,
                input,
            }),
            _ => Err(format!(
                "audiodev driver '{driver}' is not available (known: wav, none)"
            )),
        }
    }

    /// The option list again (what the trace header stores).
    pub fn spec(&self) -> String {
        let mut s = match &self.out {
            Some(p) => format!("wav,id={},path={}", self.id, p.display()),
            None => format!("none,id={}", self.id),
        };
        if let Some(p) = &self.input {
            s.push_str(&format!(",in.path={}", p.display()));
        }
        s
    }
}

/// A problem with an audio file.
#[derive(Debug, thiserror::Error)]
#[error("audiodev {id}: {}: {problem}", path.display())]
pub struct AudioError {
    /// The audiodev id.
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub problem: String,
}

/// Where played samples go: a WAV file, created at open, whose format is the guest's stream
/// format at its first playback.
struct WavOut {
    path: PathBuf,
    file: Option<File>,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    format: Option<AudioFormat>,
    /// Stream bytes written so far (positions below it are never written again).
    written: u64,
    warned: bool,
}

/// Captured samples: a WAV file decoded whole, consumed frame by frame.
struct CaptureIn {
    /// Samples at full 32-bit scale, interleaved.
    samples: Vec<i32>,
    channels: usize,
    rate: u32,
    /// Next frame.
    pos: usize,
    warned: bool,
}

/// The host side of one sound device.
pub struct AudioHost {
    id: String,
    out: Option<WavOut>,
    input: Option<CaptureIn>,
}

impl std::fmt::Debug for AudioHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioHost")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AudioHost {
    /// Open the backends `cfg` names; with `capture` false (replay) the capture file is not
    /// opened.
    pub fn open(cfg: &AudioDevConfig, capture: bool) -> Result<Self, AudioError> {
        let err = |path: &Path, problem: String| AudioError {
            id: cfg.id.clone(),
            path: path.to_path_buf(),
            problem,
        };
        let input = match &cfg.input {
            Some(p) if capture => Some(read_capture(p).map_err(|e| err(p, e))?),
            _ => None,
        };
        let out = match &cfg.out {
            Some(p) => Some(WavOut {
                path: p.clone(),
                file: Some(File::create(p).map_err(|e| err(p, format!("cannot create: {e}")))?),
                writer: None,
                format: None,
                written: 0,
                warned: false,
            }),
            None => None,
        };
        Ok(AudioHost {
            id: cfg.id.clone(),
            out,
            input,
        })
    }

    /// The guest played `pcm` (in `format`), starting at byte `pos` of its playback stream.
    pub fn playback(&mut self, format: AudioFormat, pos: u64, pcm: &[u8]) {
        let Some(out) = &mut self.out else { return };
        let end = pos.saturating_add(pcm.len() as u64);
        if end <= out.written {
            return;
        }
        if out.format.is_some_and(|f| f != format) {
            if !out.warned {
                out.warned = true;
                note!(
                    "rewind: audiodev {}: the guest changed its playback format to {format:?}; \
                     {} keeps {:?} and gets no more samples",
                    self.id,
                    out.path.display(),
                    out.format
                );
            }
            return;
        }
        if out.writer.is_none() {
            let Some(file) = out.file.take() else { return };
            match hound::WavWriter::new(BufWriter::new(file), format.wav_spec()) {
                Ok(w) => {
                    out.writer = Some(w);
                    out.format = Some(format);
                }
                Err(e) => {
                    note!("rewind: audiodev {}: {}: {e}", self.id, out.path.display());
                    return;
                }
            }
        }
        let Some(w) = &mut out.writer else { return };
        // A replay started past the beginning (`--from`) fills what it skipped with silence.
        let mut bytes = Vec::new();
        if pos > out.written {
            let gap = (pos - out.written).min(MAX_CAPTURE_FILE) as usize;
            let mut silence = Vec::new();
            format.sample.encode(0, &mut silence);
            bytes.extend(silence.iter().cycle().take(gap));
        }
        let skip = out.written.saturating_sub(pos) as usize;
        bytes.extend_from_slice(&pcm[skip.min(pcm.len())..]);
        out.written = end;
        let n = format.sample.bytes();
        let result = bytes.chunks_exact(n).try_for_each(|s| match format.sample {
            AudioSample::S8 => w.write_sample(s[0] as i8),
            AudioSample::U8 => w.write_sample((s[0] ^ 0x80) as i8),
            AudioSample::S16 | AudioSample::U16 => {
                w.write_sample((format.sample.decode(s) >> 16) as i16)
            }
            AudioSample::S32 | AudioSample::U32 => w.write_sample(format.sample.decode(s)),
            AudioSample::F32 => w.write_sample(f32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        });
        if let Err(e) = result {
            note!("rewind: audiodev {}: {}: {e}", self.id, out.path.display());
            out.writer = None;
        }
    }

    /// Fill `buf` with captured frames in `format` (silence once the file is exhausted, or
    /// without one). Channels are mapped (a mono file feeds every channel; extra file channels
    /// are dropped); rates are not converted.
    pub fn capture(&mut self, format: AudioFormat, buf: &mut [u8]) {
        let ch = usize::from(format.channels).max(1);
        let frame_bytes = ch * format.sample.bytes();
        let frames = buf.len() / frame_bytes;
        let mut out = Vec::with_capacity(buf.len());
        match &mut self.input {
            Some(inp) => {
                if inp.rate != format.rate && !inp.warned {
                    inp.warned = true;
                    note!(
                        "rewind: audiodev {}: the capture file has {} Hz, the guest captures \
                         at {} Hz: frames are passed without rate conversion",
                        self.id,
                        inp.rate,
                        format.rate
                    );
                }
                for _ in 0..frames {
                    let src = inp
                        .samples
                        .get(inp.pos * inp.channels..(inp.pos + 1) * inp.channels);
                    for c in 0..ch {
                        let v = src.map_or(0, |f| f[c.min(f.len() - 1)]);
                        format.sample.encode(v, &mut out);
                    }
                    if src.is_some() {
                        inp.pos += 1;
                    }
                }
            }
            None => {
                for _ in 0..frames * ch {
                    format.sample.encode(0, &mut out);
                }
            }
        }
        // A partial frame at the end is silence too.
        while out.len() < buf.len() {
            format.sample.encode(0, &mut out);
        }
        buf.copy_from_slice(&out[..buf.len()]);
    }

    /// Fill `buf` with silence in `format` (a sound device without an audiodev).
    pub fn silence(format: AudioFormat, buf: &mut [u8]) {
        let mut one = Vec::new();
        format.sample.encode(0, &mut one);
        for (b, s) in buf.iter_mut().zip(one.iter().cycle()) {
            *b = *s;
        }
    }

    /// Finish the WAV file (its header gets the final sizes).
    pub fn finish(&mut self) -> Result<(), AudioError> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        let err = |problem: String| AudioError {
            id: self.id.clone(),
            path: out.path.clone(),
            problem,
        };
        if let Some(file) = out.file.take() {
            // The guest never played: an empty WAV in QEMU's default format.
            let w = hound::WavWriter::new(BufWriter::new(file), IDLE_FORMAT.wav_spec())
                .map_err(|e| err(e.to_string()))?;
            w.finalize().map_err(|e| err(e.to_string()))?;
        }
        if let Some(w) = out.writer.take() {
            w.finalize().map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

impl Drop for AudioHost {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            note!("rewind: {e}");
        }
    }
}

fn read_capture(path: &Path) -> Result<CaptureIn, String> {
    let bytes =
        rewind_log::hostfile::read_regular(path, MAX_CAPTURE_FILE).map_err(|e| e.to_string())?;
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err("a WAV file without channels".into());
    }
    let samples: Result<Vec<i32>, hound::Error> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .map(|s| s.map(f32_to_i32))
            .collect(),
        (hound::SampleFormat::Int, bits @ 1..=32) => reader
            .into_samples::<i32>()
            .map(|s| s.map(|v| v << (32 - u32::from(bits))))
            .collect(),
        (f, b) => return Err(format!("unsupported WAV sample format ({f:?}, {b} bits)")),
    };
    Ok(CaptureIn {
        samples: samples.map_err(|e| e.to_string())?,
        channels: usize::from(spec.channels),
        rate: spec.sample_rate,
        pos: 0,
        warned: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMT: AudioFormat = AudioFormat {
        rate: 44100,
        channels: 2,
        sample: AudioSample::S16,
    };

    #[test]
    fn parse_and_spec() {
        let c = AudioDevConfig::parse("wav,id=a0,path=o.wav,in.path=i.wav").unwrap();
        assert_eq!(c.id, "a0");
        assert_eq!(c.out.as_deref(), Some(Path::new("o.wav")));
        assert_eq!(c.input.as_deref(), Some(Path::new("i.wav")));
        assert_eq!(AudioDevConfig::parse(&c.spec()).unwrap(), c);
        let n = AudioDevConfig::parse("none,id=x").unwrap();
        assert_eq!(n.out, None);
        assert_eq!(
            AudioDevConfig::parse("wav,id=d").unwrap().out.as_deref(),
            Some(Path::new(DEFAULT_WAV))
        );
        assert!(AudioDevConfig::parse("wav,path=o.wav").is_err());
        assert!(AudioDevConfig::parse("pa,id=a").is_err());
        assert!(AudioDevConfig::parse("wav,id=a,bogus=1").is_err());
    }

    #[test]
    fn wav_round_trip_and_capture() {
        let dir = std::env::temp_dir().join(format!("rewind-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("o.wav");
        let cfg = AudioDevConfig {
            id: "a".into(),
            out: Some(out.clone()),
            input: None,
        };
        let mut h = AudioHost::open(&cfg, true).unwrap();
        let pcm: Vec<u8> = (0..16u8).collect();
        h.playback(FMT, 0, &pcm[..8]);
        h.playback(FMT, 8, &pcm[8..]);
        // Re-executed after a snapshot restore: not written again.
        h.playback(FMT, 0, &pcm[..8]);
        drop(h);
        let r = hound::WavReader::open(&out).unwrap();
        assert_eq!(r.spec().sample_rate, 44100);
        assert_eq!(r.spec().channels, 2);
        let got: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
        let want: Vec<i16> = pcm
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(got, want);
        // That file as capture input: the same bytes come back, then silence.
        let cfg = AudioDevConfig {
            id: "b".into(),
            out: None,
            input: Some(out.clone()),
        };
        let mut h = AudioHost::open(&cfg, true).unwrap();
        let mut buf = [0xffu8; 20];
        h.capture(FMT, &mut buf);
        assert_eq!(&buf[..16], &pcm[..]);
        assert_eq!(&buf[16..], &[0; 4]);
        // Mono U8 from the stereo S16 file: left channel, high byte, offset.
        let mut h = AudioHost::open(&cfg, true).unwrap();
        let mut buf = [0u8; 2];
        let mono = AudioFormat {
            rate: 44100,
            channels: 1,
            sample: AudioSample::U8,
        };
        h.capture(mono, &mut buf);
        assert_eq!(buf, [1 ^ 0x80, 5 ^ 0x80]);
        // In replay the capture file is not opened: a missing one is no error.
        let gone = AudioDevConfig {
            id: "c".into(),
            out: None,
            input: Some(dir.join("missing.wav")),
        };
        assert!(AudioHost::open(&gone, false).is_ok());
        assert!(AudioHost::open(&gone, true).is_err());
        // Without input: silence in the stream's encoding.
        let mut h = AudioHost::open(&gone, false).unwrap();
        let mut buf = [1u8; 2];
        h.capture(mono, &mut buf);
        assert_eq!(buf, [0x80, 0x80]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
