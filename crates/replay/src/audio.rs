//! Audio: what a sound device captures is a host input (logged in record, taken from the log
//! in replay); what it plays is derived output, written to the audiodev's WAV file in every
//! mode (a replay writes the same samples again).

use rewind_log::Event;

use crate::host::audio::{AudioDevConfig, AudioFormat, AudioHost};
use crate::{Boundary, BoundaryError, Mode};

impl Boundary {
    /// Give the sound device in transport `slot` the audio backend `cfg`. In replay the
    /// capture file is not opened (captured data comes from the trace).
    pub fn open_audio(&mut self, slot: u8, cfg: &AudioDevConfig) -> Result<(), BoundaryError> {
        let host = AudioHost::open(cfg, self.mode != Mode::Replay)?;
        self.audio.retain(|(s, _)| *s != slot);
        self.audio.push((slot, host));
        Ok(())
    }

    fn audio_host(&mut self, slot: u8) -> Option<&mut AudioHost> {
        self.audio
            .iter_mut()
            .find(|(s, _)| *s == slot)
            .map(|(_, h)| h)
    }

    /// Fill `buf` with audio captured for the sound device in transport `slot`.
    pub fn audio_capture(&mut self, icount: u64, slot: u8, format: AudioFormat, buf: &mut [u8]) {
        if self.mode == Mode::Replay {
            let len = buf.len();
            let asked = format!("{len} bytes of audio captured by device {slot}");
            if let Some(Event::AudioCapture { bytes, .. }) = self.expect(icount, asked, |e| {
                matches!(e, Event::AudioCapture { device, bytes } if *device == slot && bytes.len() == len)
            }) {
                buf.copy_from_slice(&bytes);
            }
            return;
        }
        match self.audio_host(slot) {
            Some(h) => h.capture(format, buf),
            None => AudioHost::silence(format, buf),
        }
        if self.mode == Mode::Record {
            self.log_event(
                icount,
                &Event::AudioCapture {
                    device: slot,
                    bytes: buf.to_vec(),
                },
            );
        }
    }

    /// The sound device in transport `slot` played `pcm`, from byte `pos` of its stream.
    pub fn audio_playback(&mut self, slot: u8, format: AudioFormat, pos: u64, pcm: &[u8]) {
        if let Some(h) = self.audio_host(slot) {
            h.playback(format, pos, pcm);
        }
    }

    /// Finish the audio files (also done when the boundary is dropped).
    pub fn finish_audio(&mut self) -> Result<(), crate::AudioError> {
        self.audio.iter_mut().try_for_each(|(_, h)| h.finish())
    }
}
