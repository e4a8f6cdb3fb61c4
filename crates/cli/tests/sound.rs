//! virtio-sound end to end, with the `virtio_sound` guest (sources in `guests/`): the guest's
//! view of the device matches QEMU 10 (`-device virtio-sound-device` on the modern transport,
//! PCM_INFO answers, statuses), the tone it plays is written to the `--audiodev` WAV (QEMU's
//! WAV of the same run is a prefix of it), capture reads `in.path=` in record and the trace in
//! replay, and a replay writes a byte-identical WAV. Without `riscv64-unknown-elf-gcc` the tests
//! skip, unless `REWIND_REQUIRE_GUESTS` is set.

#[allow(dead_code)]
mod common;

use common::{
    assert_same_output, expected_output, guests_dir, have_tool, qemu_cmd, run_rewind,
    run_with_input, Done, Scratch,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);
/// Frames per period and periods the guest plays / captures (see guests/virtio_sound/main.c).
const FRAMES: usize = 441;
const PLAY_PERIODS: usize = 20;
const CAPTURE_BYTES: usize = 8 * FRAMES * 4;

fn s(x: impl AsRef<std::ffi::OsStr>) -> String {
    x.as_ref().to_string_lossy().into_owned()
}

fn elf() -> Option<PathBuf> {
    guests_dir().map(|d| d.join("build/virtio_sound.elf"))
}

/// The output QEMU's reference holds: no audio-clock or capture lines, nothing after the
/// capture starts (QEMU's wav audiodev captures nothing).
fn comparable(out: &str) -> String {
    let mut kept = String::new();
    for l in out.lines() {
        if l.starts_with("elapsed:") || l.starts_with("capture:") {
            continue;
        }
        kept.push_str(l);
        kept.push('\n');
        if l.starts_with("capture start:") {
            break;
        }
    }
    kept
}

/// The guest's `capture: N bytes fnv1a H` line.
fn capture_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("capture: "))
        .unwrap_or_else(|| panic!("no capture line in\n{out}"))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The tone the guest plays: 440 Hz square wave, +-8000, right channel inverted.
fn tone() -> Vec<i16> {
    (0..PLAY_PERIODS * FRAMES)
        .flat_map(|n| {
            let v: i16 = if (n * 440 * 2 / 44100) % 2 == 1 {
                -8000
            } else {
                8000
            };
            [v, -v]
        })
        .collect()
}

fn wav_samples(path: &Path) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let samples = r.into_samples::<i16>().map(Result::unwrap).collect();
    (spec, samples)
}

/// A capture source: 1 s of 44.1 kHz stereo S16 with a pattern in each channel; returns its
/// PCM bytes as they lie in the file.
fn write_capture_wav(path: &Path) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut pcm = Vec::new();
    for i in 0..44100i32 {
        for v in [(i * 37) % 30000 - 15000, (i * 91) % 20000 - 10000] {
            w.write_sample(v as i16).unwrap();
            pcm.extend_from_slice(&(v as i16).to_le_bytes());
        }
    }
    w.finalize().unwrap();
    pcm
}

fn rewind(args: &[String]) -> Done {
    run_rewind(args, TIMEOUT)
}

#[test]
fn guest_sees_virtio_sound_as_on_qemu() {
    let Some(elf) = elf() else { return };
    let dir = guests_dir().expect("guests");
    let scratch = Scratch::new("qemu");
    let wav = scratch.path("rw.wav");
    let mut cmd = common::rewind_run_cmd(&elf);
    cmd.args(["--device", "virtio-sound-device,audiodev=a0", "--audiodev"])
        .arg(format!("wav,id=a0,path={}", wav.display()));
    let rw = run_with_input(cmd, b"", TIMEOUT);
    assert_eq!(rw.code, Some(0), "{}", rw.describe());
    assert_same_output(
        "virtio_sound: guests/expected/virtio_sound.txt (QEMU reference) vs rewind",
        &expected_output(&dir, "virtio_sound"),
        &comparable(&rw.stdout),
    );
    // Playback takes its 20 periods of 10 ms in virtual time.
    assert!(
        rw.stdout.lines().any(|l| l == "elapsed: 200 ms"),
        "{}",
        rw.stdout
    );
    // Without a capture file the guest captures silence.
    assert_eq!(
        capture_line(&rw.stdout),
        format!(
            "capture: {CAPTURE_BYTES} bytes fnv1a {:x}",
            fnv1a(&[0; CAPTURE_BYTES])
        )
    );
    let (spec, samples) = wav_samples(&wav);
    assert_eq!((spec.sample_rate, spec.channels), (44100, 2));
    assert_eq!(samples, tone());
    // A sound device needs its audiodev defined.
    let mut bad = common::rewind_run_cmd(&elf);
    bad.args(["--device", "virtio-sound-device,audiodev=zz"]);
    let bad = run_with_input(bad, b"", TIMEOUT);
    assert_eq!(bad.code, Some(2), "{}", bad.describe());
    assert!(
        bad.stderr.contains("audiodev 'zz' is not defined"),
        "{}",
        bad.stderr
    );

    if !have_tool("qemu-system-riscv64") {
        eprintln!(
            "qemu-system-riscv64 not installed: virtio_sound compared with guests/expected only"
        );
        return;
    }
    let qwav = scratch.path("q.wav");
    let mut q = qemu_cmd(&elf);
    q.args([
        "-device",
        "virtio-sound-device,audiodev=a0",
        "-global",
        "virtio-mmio.force-legacy=false",
        "-audiodev",
    ])
    .arg(format!("wav,id=a0,path={}", qwav.display()));
    let q = run_with_input(q, b"", TIMEOUT);
    // QEMU's wav audiodev captures nothing: the guest gives up after a second.
    assert_eq!(q.code, Some(5), "QEMU: {}", q.describe());
    assert_same_output(
        "virtio_sound: live QEMU vs rewind",
        &comparable(&q.stdout),
        &comparable(&rw.stdout),
    );
    // QEMU's WAV has the same format and samples; it may miss the end (QEMU's audio timer
    // had not written the last periods when the guest moved on).
    let (qspec, qsamples) = wav_samples(&qwav);
    assert_eq!(qspec, spec);
    assert!(
        qsamples.len() >= samples.len() / 2,
        "QEMU wrote {} samples",
        qsamples.len()
    );
    assert_eq!(&samples[..qsamples.len()], &qsamples[..]);
}

#[test]
fn playback_and_capture_are_recorded_and_replayed() {
    let Some(elf) = elf() else { return };
    let scratch = Scratch::new("rr");
    let input = scratch.path("in.wav");
    let input_pcm = write_capture_wav(&input);
    let trace = scratch.path("t.rwtrace");
    let rec_wav = scratch.path("rec.wav");
    let rec = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--device"),
        s("virtio-sound,audiodev=a0"),
        s("--audiodev"),
        format!(
            "wav,id=a0,path={},in.path={}",
            rec_wav.display(),
            input.display()
        ),
        s("--kernel"),
        s(&elf),
        s("--serial"),
        s("stdio"),
    ]);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let want = format!(
        "capture: {CAPTURE_BYTES} bytes fnv1a {:x}",
        fnv1a(&input_pcm[..CAPTURE_BYTES])
    );
    assert_eq!(capture_line(&rec.stdout), want);
    let (_, samples) = wav_samples(&rec_wav);
    assert_eq!(samples, tone());
    let dump = rewind(&[s("dump"), s(&trace)]);
    assert_eq!(
        dump.stdout.matches("AudioCapture").count(),
        8,
        "one event per captured period: {}",
        dump.stdout
    );

    // Replay reads no capture file: it comes from the trace.
    std::fs::remove_file(&input).unwrap();
    let rep_wav = scratch.path("rep.wav");
    let rep = rewind(&[
        s("replay"),
        s(&trace),
        s("-q"),
        s("--audiodev"),
        format!("wav,id=a0,path={}", rep_wav.display()),
    ]);
    assert_eq!(rep.code, Some(0), "replay: {}", rep.describe());
    assert!(
        rep.stderr.contains("replay matched the recording"),
        "{}",
        rep.stderr
    );
    assert_eq!(rep.stdout, rec.stdout);
    assert_eq!(capture_line(&rep.stdout), want);
    let (a, b) = (
        std::fs::read(&rec_wav).unwrap(),
        std::fs::read(&rep_wav).unwrap(),
    );
    assert!(a == b, "the replay's WAV differs from the recording's");
    // Without --audiodev, replay writes no audio.
    let quiet = rewind(&[s("replay"), s(&trace), s("-q")]);
    assert_eq!(quiet.code, Some(0), "{}", quiet.describe());
    assert_eq!(std::fs::read(&rep_wav).unwrap(), b);

    // Replay never writes audio over the trace, and needs an audiodev id the trace has.
    let before = std::fs::read(&trace).unwrap();
    let over = rewind(&[
        s("replay"),
        s(&trace),
        s("-q"),
        s("--audiodev"),
        format!("wav,id=a0,path={}", trace.display()),
    ]);
    assert_eq!(over.code, Some(2), "{}", over.describe());
    assert!(
        over.stderr.contains("refusing to write audio"),
        "{}",
        over.stderr
    );
    assert_eq!(std::fs::read(&trace).unwrap(), before);
    let unknown = rewind(&[
        s("replay"),
        s(&trace),
        s("-q"),
        s("--audiodev"),
        s("wav,id=b9,path=x.wav"),
    ]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.describe());
    assert!(
        unknown.stderr.contains("no audiodev 'b9'"),
        "{}",
        unknown.stderr
    );

    // Recording refuses to write audio over its capture input.
    let input2 = scratch.path("in2.wav");
    let pcm2 = write_capture_wav(&input2);
    let clash = rewind(&[
        s("record"),
        s("-o"),
        s(scratch.path("t2.rwtrace")),
        s("--device"),
        s("virtio-sound,audiodev=a0"),
        s("--audiodev"),
        format!("wav,id=a0,path={0},in.path={0}", input2.display()),
        s("--kernel"),
        s(&elf),
    ]);
    assert_eq!(clash.code, Some(2), "{}", clash.describe());
    assert!(
        clash.stderr.contains("refusing to write audio"),
        "{}",
        clash.stderr
    );
    let (_, kept) = wav_samples(&input2);
    assert_eq!(kept.len() * 2, pcm2.len());
    assert!(!scratch.path("t2.rwtrace").exists());
}

/// `(icount, state)` from `rewind: replay matched the recording: N instructions, state H`.
fn matched(d: &Done) -> Option<(u64, String)> {
    let line = d
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("rewind: replay matched the recording: "))?;
    let (n, rest) = line.split_once(" instructions, state ")?;
    Some((n.parse().ok()?, rest.trim().to_string()))
}

/// Snapshots taken while buffers are in flight (playing, capturing) restore them: replays
/// `--from` there end in the recorded state, print the recorded tail, and write the samples
/// played from the snapshot they start at in their place in the WAV (silence before it).
#[test]
fn replays_from_snapshots_with_audio_in_flight() {
    let Some(elf) = elf() else { return };
    let scratch = Scratch::new("from");
    let input = scratch.path("in.wav");
    write_capture_wav(&input);
    let trace = scratch.path("t.rwtrace");
    let rec_wav = scratch.path("rec.wav");
    let rec = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--snapshot-every"),
        s("3000"),
        s("--device"),
        s("virtio-sound,audiodev=a0"),
        s("--audiodev"),
        format!(
            "wav,id=a0,path={},in.path={}",
            rec_wav.display(),
            input.display()
        ),
        s("--kernel"),
        s(&elf),
        s("--serial"),
        s("stdio"),
    ]);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    let n = common::recorded_icount(&rec.stderr).expect("icount");
    let full = rewind(&[s("replay"), s(&trace), s("-q")]);
    let (icount, state) = matched(&full).expect("full replay matched");
    assert_eq!(icount, n);
    let whole = std::fs::read(&rec_wav).unwrap();
    // Between the START of playback and the first capture, and while capturing.
    let dump = rewind(&[s("dump"), s(&trace)]);
    let captures: Vec<u64> = dump
        .stdout
        .lines()
        .filter(|l| l.contains("AudioCapture"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(captures.len(), 8, "{}", dump.stdout);
    let mut padded = 0;
    for from in [
        captures[0] / 2,
        captures[0] * 3 / 4,
        captures[2] + 1,
        captures[5],
    ] {
        let wav = scratch.path(&format!("from{from}.wav"));
        let d = rewind(&[
            s("replay"),
            s(&trace),
            s("-q"),
            s("--from"),
            from.to_string(),
            s("--audiodev"),
            format!("wav,id=a0,path={}", wav.display()),
        ]);
        assert_eq!(d.code, Some(0), "--from {from}: {}", d.describe());
        assert_eq!(
            matched(&d),
            Some((icount, state.clone())),
            "--from {from}: {}",
            d.describe()
        );
        assert!(
            full.stdout.ends_with(&d.stdout),
            "--from {from}: {}",
            d.stdout
        );
        let part = std::fs::read(&wav).unwrap();
        if from > captures[0] {
            // Playback was over before the capture started: nothing is left to write.
            assert_eq!(part.len(), 44, "--from {from}: an empty WAV");
            continue;
        }
        assert_eq!(part.len(), whole.len(), "--from {from}");
        // Whatever was written is the recording's; the rest is silence.
        let differs = part
            .iter()
            .zip(&whole)
            .skip(44)
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            part[44..]
                .iter()
                .zip(&whole[44..])
                .all(|(a, b)| a == b || *a == 0),
            "--from {from}: {differs} bytes differ"
        );
        assert!(part.ends_with(&whole[whole.len() - 64..]), "--from {from}");
        padded += usize::from(differs > 0);
    }
    assert!(
        padded > 0,
        "no replay started in the middle of the playback"
    );
}

/// The `virtio_rng` guest's hostile part (descriptor loops, 20,000 random register writes over
/// every transport with random ring contents) with a sound card in the next transport: no
/// panic, and the replay is identical.
#[test]
fn hostile_programming_with_a_sound_card_replays_identically() {
    let Some(dir) = guests_dir() else { return };
    let elf = dir.join("build/virtio_rng.elf");
    let scratch = Scratch::new("hostile");
    let trace = scratch.path("h.rwtrace");
    let rec = rewind(&[
        s("record"),
        s("-o"),
        s(&trace),
        s("--device"),
        s("virtio-rng-device"),
        s("--device"),
        s("virtio-sound-device"),
        s("--kernel"),
        s(&elf),
        s("--serial"),
        s("stdio"),
    ]);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    assert!(
        rec.stdout
            .contains("slot 6: magic 74726976 version 2 device 25"),
        "{}",
        rec.stdout
    );
    assert!(
        rec.stdout.contains("random writes survived"),
        "{}",
        rec.stdout
    );
    let rep = rewind(&[s("replay"), s(&trace), s("-q")]);
    assert_eq!(rep.code, Some(0), "replay: {}", rep.describe());
    assert_eq!(rep.stdout, rec.stdout);
    assert!(matched(&rep).is_some(), "{}", rep.stderr);
}
