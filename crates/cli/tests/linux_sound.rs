//! Linux drives rewind's virtio-sound: Debian's `virtio_snd` probes the card, and through the
//! OSS emulation (`/dev/dsp`: 8 kHz, mono, unsigned 8 bits; busybox has no aplay) the guest
//! plays a 500 Hz square wave and captures two seconds (`scripts/linux-tests/sound.sh`). The
//! recording's WAV holds the tone, the capture hash is the input file's, and a replay (without
//! the input file) prints the same and writes a byte-identical WAV. Linux sees the same card
//! and PCM device as under QEMU 10 (whose wav audiodev captures nothing: `head` fails there).
//! Skips like `linux.rs` when the Linux assets cannot be made.

#[allow(dead_code)]
mod common;

use common::linux::{console_value, device_test_passed, linux_assets, record_device_test};
use common::{have_tool, run_rewind, run_with_input, Scratch};
use std::time::Duration;

/// One recording or replay of a device test.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Bytes the script captures.
const CAPTURED: usize = 16000;

fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn linux_plays_and_captures_through_virtio_sound() {
    let Some(assets) = linux_assets() else { return };
    let dir = Scratch::new("sound");
    // Capture source: 8 kHz mono U8 (the format /dev/dsp opens with), a sawtooth.
    let input = dir.path("in.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 8,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&input, spec).unwrap();
    let mut pcm = Vec::new();
    for i in 0..40000u32 {
        let u = (i * 7 % 200 + 20) as u8;
        w.write_sample((u ^ 0x80) as i8).unwrap();
        pcm.push(u);
    }
    w.finalize().unwrap();
    let trace = dir.path("sound.rwtrace");
    let rec_wav = dir.path("rec.wav");
    let args = vec![
        "--device".to_string(),
        "virtio-sound-device,audiodev=a0".to_string(),
        "--audiodev".to_string(),
        format!(
            "wav,id=a0,path={},in.path={}",
            rec_wav.display(),
            input.display()
        ),
    ];
    let rec = record_device_test(&assets, &trace, "sound", &args, TIMEOUT);
    assert_eq!(rec.code, Some(0), "record: {}", rec.describe());
    assert!(
        device_test_passed(&rec.stdout, "sound"),
        "{}",
        rec.describe()
    );
    assert!(
        console_value(&rec.stdout, "cards: ").is_some_and(|c| c.contains("VirtIO SoundCard")),
        "{}",
        rec.describe()
    );
    assert!(
        console_value(&rec.stdout, "pcm: ").is_some_and(|c| c.contains("playback 1 : capture 1")),
        "{}",
        rec.describe()
    );
    // No I/O left behind when Linux released the streams.
    assert!(
        !rec.stdout.contains("failed to flush"),
        "{}",
        rec.describe()
    );
    let captured = console_value(&rec.stdout, "captured sha256: ")
        .unwrap_or_else(|| panic!("no capture line: {}", rec.describe()))
        .trim_end_matches('-')
        .trim()
        .to_string();
    assert_eq!(captured, sha256_hex(&pcm[..CAPTURED]));
    // The WAV: the guest's stream format, and the tone from its first byte.
    let r = hound::WavReader::open(&rec_wav).unwrap();
    assert_eq!(r.spec(), spec);
    let played: Vec<u8> = r
        .into_samples::<i8>()
        .map(|s| (s.unwrap() as u8) ^ 0x80)
        .collect();
    let tone: Vec<u8> = [[0xc0u8; 8], [0x40; 8]].concat().repeat(500);
    assert!(played.len() >= tone.len(), "{} bytes played", played.len());
    assert_eq!(&played[..tone.len()], &tone[..]);

    if have_tool("qemu-system-riscv64") {
        let mut q = std::process::Command::new("qemu-system-riscv64");
        q.args(["-M", "virt", "-m", "512M", "-smp", "1", "-nographic"])
            .args(["-cpu", "rv64,h=false", "-bios"])
            .arg(assets.join("fw_jump.bin"))
            .arg("-kernel")
            .arg(assets.join("Image"))
            .arg("-initrd")
            .arg(assets.join("initrd.cpio.gz"))
            .args([
                "-append",
                &format!("{} rewind.test=sound", common::linux::APPEND),
            ])
            .args(["-device", "virtio-sound-device,audiodev=a0", "-audiodev"])
            .arg(format!("wav,id=a0,path={}", dir.path("q.wav").display()))
            .args(["-global", "virtio-mmio.force-legacy=false"]);
        let q = run_with_input(q, b"", TIMEOUT);
        assert!(
            device_test_passed(&q.stdout, "sound"),
            "QEMU: {}",
            q.describe()
        );
        for key in ["cards: ", "pcm: ", "tone: "] {
            assert_eq!(
                console_value(&q.stdout, key),
                console_value(&rec.stdout, key),
                "{key}"
            );
        }
    }

    std::fs::remove_file(&input).unwrap();
    let rep_wav = dir.path("rep.wav");
    let rep = run_rewind(
        &[
            "replay".to_string(),
            trace.display().to_string(),
            "--audiodev".to_string(),
            format!("wav,id=a0,path={}", rep_wav.display()),
        ],
        TIMEOUT,
    );
    assert_eq!(rep.code, Some(0), "replay: {}", rep.describe());
    assert_eq!(rep.stdout, rec.stdout, "the replay printed something else");
    assert!(
        std::fs::read(&rec_wav).unwrap() == std::fs::read(&rep_wav).unwrap(),
        "the replay's WAV differs from the recording's"
    );
}
