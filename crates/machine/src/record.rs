//! What a trace header says about the machine: the configuration (so `rewind replay FILE`
//! needs no other options) and every image with its BLAKE3 hash (so replay refuses a changed
//! one before running a single instruction).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rewind_log::hostfile::{self, FileProblem};
use rewind_log::{ImageInfo, ImageRole, TraceHeader};
use rewind_replay::CheckSettings;
use serde::{Deserialize, Serialize};

use crate::{ImageProblem, ImageSource, MachineConfig, MachineError};

/// Prefix of image names that refer to images built into the `rewind` binary.
pub const EMBEDDED_PREFIX: &str = "embedded:";

/// The part of [`MachineConfig`] stored in a trace header (host backends are not: replay
/// opens none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedConfig {
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Firmware image name (a path, or `embedded:NAME`).
    pub bios: Option<String>,
    /// Kernel image name.
    pub kernel: Option<String>,
    /// Initrd image name.
    pub initrd: Option<String>,
    /// Kernel command line.
    pub append: Option<String>,
    /// icount shift.
    pub icount_shift: u32,
    /// Instructions between state checks.
    pub check_interval: u64,
    /// Registers logged every this many checks.
    pub registers_every: u64,
    /// The CPU model in QEMU's `-cpu` spelling (`rv64,h=false,...`). Traces without it were
    /// recorded with the QEMU 7.2-era CPU, which this rewind no longer emulates.
    pub cpu: String,
    /// virtio devices in QEMU's `-device` spelling (`virtio-rng-device`), command-line order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Audio backends in QEMU's `-audiodev` spelling (`wav,id=a0,path=...,in.path=...`), with
    /// absolute paths. Replay opens no capture file and writes no WAV unless told where.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiodevs: Vec<String>,
    /// Number of harts (absent: 1).
    #[serde(default = "one_hart")]
    pub smp: u32,
    /// Instructions per hart turn: the interleaving follows from it (absent: the default).
    #[serde(default = "default_quantum")]
    pub quantum: u64,
    /// Chaos scheduling seed, if the recording was made with `--chaos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<u64>,
}

fn one_hart() -> u32 {
    1
}

fn default_quantum() -> u64 {
    crate::sched::DEFAULT_QUANTUM
}

fn image_name(src: &ImageSource) -> String {
    match src {
        ImageSource::File(p) => std::path::absolute(p)
            .unwrap_or_else(|_| p.clone())
            .display()
            .to_string(),
        ImageSource::Embedded { name, .. } => format!("{EMBEDDED_PREFIX}{name}"),
    }
}

/// The bytes of an image: a regular file no larger than RAM (`ram_size`), which is all an
/// image can fill; a device node or FIFO is refused before it is opened.
pub(crate) fn image_bytes(src: &ImageSource, ram_size: u64) -> Result<Arc<[u8]>, MachineError> {
    match src {
        ImageSource::Embedded { bytes, .. } => Ok(bytes.clone()),
        ImageSource::File(p) => read_image_file(p, ram_size).map(Arc::from),
    }
}

/// [`hostfile::read_regular`] with its problems as image errors.
fn read_image_file(p: &Path, max: u64) -> Result<Vec<u8>, MachineError> {
    hostfile::read_regular(p, max).map_err(|e| {
        let problem = match e {
            FileProblem::NotFound => ImageProblem::NotFound,
            FileProblem::TooLarge { size, max } => ImageProblem::LargerThanRam {
                needed: size,
                ram: max,
            },
            other => ImageProblem::Unreadable(other.to_string()),
        };
        MachineError::image(p, problem)
    })
}

/// Where replay looks for the images a trace names. The recorded path is only a hint (the
/// trace may come from another machine): an image is whatever regular file has the recorded
/// size and BLAKE3.
#[derive(Debug, Clone, Default)]
pub struct ImageSearch {
    /// A directory searched for a file with the recorded size and hash (the trace's own).
    pub dir: Option<PathBuf>,
    /// `--image NAME=PATH`: NAME is a role (`bios`, `kernel`, `initrd`) or the recorded
    /// file's name; PATH must hold exactly the recorded image.
    pub remap: Vec<(String, PathBuf)>,
}

/// Files of the search directory looked at (a directory of thousands is not scanned whole).
const MAX_DIR_ENTRIES: usize = 4096;
/// Files of the recorded size hashed in the search directory.
const MAX_DIR_CANDIDATES: usize = 16;

/// What a candidate file is to a recorded image.
enum Candidate {
    /// Same size and hash: these are the bytes.
    Match(Arc<[u8]>),
    /// A regular file with other contents (nothing more is said about it).
    Differs,
    /// Not usable at all.
    Unusable(FileProblem),
}

/// Looks at `path` as a copy of the image `info`: only a regular file of the recorded size is
/// read, and no more than that size.
fn candidate(path: &Path, info: &ImageInfo) -> Candidate {
    match hostfile::regular_file_size(path) {
        Err(e) => return Candidate::Unusable(e),
        Ok(size) if size != info.size => return Candidate::Differs,
        Ok(_) => {}
    }
    match hostfile::read_regular(path, info.size) {
        Ok(bytes) if blake3::hash(&bytes).to_hex().as_str() == info.blake3 => {
            Candidate::Match(Arc::from(bytes))
        }
        Ok(_) | Err(FileProblem::TooLarge { .. }) => Candidate::Differs,
        Err(e) => Candidate::Unusable(e),
    }
}

fn role_name(role: ImageRole) -> &'static str {
    match role {
        ImageRole::Bios => "bios",
        ImageRole::Kernel => "kernel",
        ImageRole::Initrd => "initrd",
        ImageRole::Dtb => "dtb",
        ImageRole::Disk => "disk",
        ImageRole::Other => "image",
    }
}

/// Finds the image `info` (recorded as `name`, role `role`) by content: an explicit
/// `--image` remap, else the recorded path, else the search directory. Messages never
/// describe a file that does not match beyond "differs".
fn find_image(
    info: &ImageInfo,
    name: &str,
    search: &ImageSearch,
) -> Result<Arc<[u8]>, MachineError> {
    let recorded = Path::new(name);
    let base = recorded
        .file_name()
        .map(|b| b.to_string_lossy().into_owned());
    let role = role_name(info.role);
    let wanted = format!("{} bytes, blake3 {}", info.size, info.blake3);
    let remap = search.remap.iter().find(|(n, _)| {
        n == role || (n == "firmware" && role == "bios") || Some(n) == base.as_ref()
    });
    if let Some((_, p)) = remap {
        return match candidate(p, info) {
            Candidate::Match(bytes) => Ok(bytes),
            Candidate::Differs => Err(MachineError::ImageChanged {
                path: p.clone(),
                what: format!(
                    "differs from the {role} image the trace was recorded with ({wanted})"
                ),
            }),
            Candidate::Unusable(e) => Err(MachineError::image(
                p,
                ImageProblem::Unreadable(e.to_string()),
            )),
        };
    }
    let at_recorded = match candidate(recorded, info) {
        Candidate::Match(bytes) => return Ok(bytes),
        Candidate::Differs => "image changed since the recording: the file there differs from the \
             one recorded"
            .to_string(),
        Candidate::Unusable(FileProblem::NotFound) => "image missing".to_string(),
        Candidate::Unusable(e) => format!("image unusable ({e})"),
    };
    if let Some(dir) = &search.dir {
        if let Some(bytes) = search_dir(dir, base.as_deref(), info) {
            return Ok(bytes);
        }
    }
    let looked = match &search.dir {
        Some(d) => format!(
            "; no file in {} matches it either (name one with --image {role}=PATH)",
            d.display()
        ),
        None => String::new(),
    };
    Err(MachineError::ImageChanged {
        path: recorded.to_path_buf(),
        what: format!(
            "{at_recorded}: the trace was recorded with this {role} image ({wanted}){looked}"
        ),
    })
}

/// A regular file in `dir` with the size and hash of `info`: the recorded file name first,
/// then any file of the recorded size (bounded: see [`MAX_DIR_ENTRIES`]).
fn search_dir(dir: &Path, base: Option<&str>, info: &ImageInfo) -> Option<Arc<[u8]>> {
    if let Some(b) = base {
        if let Candidate::Match(bytes) = candidate(&dir.join(b), info) {
            return Some(bytes);
        }
    }
    let mut hashed = 0;
    for entry in std::fs::read_dir(dir).ok()?.flatten().take(MAX_DIR_ENTRIES) {
        // Directory entries are not followed through symlinks to devices: the metadata
        // check in `candidate` refuses anything but a regular file.
        let path = entry.path();
        if hostfile::regular_file_size(&path).ok() != Some(info.size) {
            continue;
        }
        if let Candidate::Match(bytes) = candidate(&path, info) {
            return Some(bytes);
        }
        hashed += 1;
        if hashed >= MAX_DIR_CANDIDATES {
            break;
        }
    }
    None
}

/// The header entry of the disk image at `path` (hashed by streaming).
fn disk_info(path: &Path) -> Result<ImageInfo, MachineError> {
    let h = crate::disk::hash_disk(path).map_err(|e| disk_problem(path, e))?;
    Ok(ImageInfo {
        role: ImageRole::Disk,
        file_name: path.display().to_string(),
        size: h.size,
        blake3: h.blake3,
    })
}

fn disk_problem(path: &Path, e: FileProblem) -> MachineError {
    let problem = match e {
        FileProblem::NotFound => ImageProblem::NotFound,
        other => ImageProblem::Unreadable(other.to_string()),
    };
    MachineError::image(path, problem)
}

/// What a candidate file is to a recorded disk image: `Ok(None)` a regular file of other size
/// or content (with its hash when the size matched).
fn disk_candidate(
    path: &Path,
    info: &ImageInfo,
) -> Result<Result<(), Option<String>>, FileProblem> {
    if hostfile::regular_file_size(path)? != info.size {
        return Ok(Err(None));
    }
    let h = crate::disk::hash_disk(path)?;
    Ok(if h.size == info.size && h.blake3 == info.blake3 {
        Ok(())
    } else {
        Err(Some(h.blake3))
    })
}

/// Finds the disk image `info` (recorded as `name`, drive `id`) by content as
/// [`find_image`] does, without reading it into memory; returns its path.
fn find_disk(
    info: &ImageInfo,
    name: &str,
    id: Option<&str>,
    search: &ImageSearch,
) -> Result<PathBuf, MachineError> {
    let recorded = Path::new(name);
    let base = recorded
        .file_name()
        .map(|b| b.to_string_lossy().into_owned());
    let wanted = format!("{} bytes, blake3 {}", info.size, info.blake3);
    let changed = |p: &Path, found: Option<String>| MachineError::ImageChanged {
        path: p.to_path_buf(),
        what: format!(
            "differs from the disk image the trace was recorded with ({wanted}){}",
            match found {
                Some(h) => format!("; this file has blake3 {h}"),
                None => "; this file has another size".into(),
            }
        ),
    };
    let remap = search
        .remap
        .iter()
        .find(|(n, _)| n == "disk" || Some(n) == base.as_ref() || Some(n.as_str()) == id);
    if let Some((_, p)) = remap {
        return match disk_candidate(p, info) {
            Ok(Ok(())) => Ok(p.clone()),
            Ok(Err(found)) => Err(changed(p, found)),
            Err(e) => Err(MachineError::image(
                p,
                ImageProblem::Unreadable(e.to_string()),
            )),
        };
    }
    let at_recorded = match disk_candidate(recorded, info) {
        Ok(Ok(())) => return Ok(recorded.to_path_buf()),
        Ok(Err(found)) => Some(changed(recorded, found)),
        Err(_) => None,
    };
    if let Some(dir) = &search.dir {
        let mut tried = 0;
        let named = base.as_ref().map(|b| dir.join(b));
        let others = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .take(MAX_DIR_ENTRIES)
            .map(|e| e.path());
        for p in named.into_iter().chain(others) {
            if hostfile::regular_file_size(&p).ok() != Some(info.size) {
                continue;
            }
            if let Ok(Ok(())) = disk_candidate(&p, info) {
                return Ok(p);
            }
            tried += 1;
            if tried >= MAX_DIR_CANDIDATES {
                break;
            }
        }
    }
    Err(at_recorded.unwrap_or_else(|| MachineError::ImageChanged {
        path: recorded.to_path_buf(),
        what: format!(
            "disk image missing: the trace was recorded with this disk image ({wanted}); name \
             a copy with --image disk=PATH"
        ),
    }))
}

/// The trace header for recording `config` with state checks `checks`. Every image file is
/// read once here, hashed, and put into `config` as bytes, so the hash stored in the header is
/// the hash of what the machine loads even if a file changes while recording starts.
pub fn prepare_recording(
    config: &mut MachineConfig,
    checks: CheckSettings,
) -> Result<TraceHeader, MachineError> {
    crate::check_ram_reservable(config.ram_size)?;
    // Disks first: their spec in the header names the absolute path, and in a recording
    // guest writes always go to the overlay.
    let mut infos = Vec::new();
    for d in &mut config.virtio {
        if let crate::VirtioDevice::Blk(drive) = d {
            drive.file = std::path::absolute(&drive.file).unwrap_or_else(|_| drive.file.clone());
            drive.overlay = true;
            infos.push(disk_info(&drive.file)?);
        }
    }
    let recorded = RecordedConfig {
        ram_size: config.ram_size,
        bios: config.bios.as_ref().map(image_name),
        kernel: config.kernel.as_ref().map(image_name),
        initrd: config.initrd.as_ref().map(image_name),
        append: config.append.clone(),
        icount_shift: config.icount_shift,
        check_interval: checks.interval,
        registers_every: checks.registers_every,
        cpu: config.cpu.qemu_cpu_arg(),
        devices: config.virtio.iter().map(|d| d.spec()).collect(),
        audiodevs: config
            .audiodevs
            .iter()
            .map(|a| {
                let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
                crate::AudioDevConfig {
                    id: a.id.clone(),
                    out: a.out.as_ref().map(abs),
                    input: a.input.as_ref().map(abs),
                }
                .spec()
            })
            .collect(),
        smp: config.smp,
        quantum: config.quantum,
        chaos: config.chaos,
    };
    for (role, slot) in [
        (ImageRole::Bios, &mut config.bios),
        (ImageRole::Kernel, &mut config.kernel),
        (ImageRole::Initrd, &mut config.initrd),
    ] {
        let Some(src) = slot else {
            continue;
        };
        let name = image_name(src);
        let bytes = image_bytes(src, config.ram_size)?;
        infos.push(ImageInfo::from_bytes(role, name, &bytes));
        if let ImageSource::File(p) = src {
            // Keep the name used in messages; load the bytes just hashed.
            let name = p.display().to_string();
            *slot = Some(ImageSource::Embedded { name, bytes });
        }
    }
    let json = serde_json::to_value(&recorded)
        .map_err(|e| MachineError::Config(format!("cannot describe the configuration: {e}")))?;
    Ok(TraceHeader::new(
        env!("CARGO_PKG_VERSION"),
        json,
        config.icount_shift,
        infos,
        checks.interval,
    ))
}

/// The machine configuration and state-check settings a trace was recorded with. Every image
/// is read now and checked against its recorded size and BLAKE3 hash; `embedded` resolves
/// `embedded:NAME` images. The returned configuration holds the checked bytes. Images are
/// looked for at their recorded paths only; see [`replay_config_with`].
pub fn replay_config(
    header: &TraceHeader,
    embedded: &dyn Fn(&str) -> Option<Arc<[u8]>>,
) -> Result<(MachineConfig, CheckSettings), MachineError> {
    replay_config_with(header, embedded, &ImageSearch::default())
}

/// [`replay_config`], finding each image by content as `search` says (remaps, the recorded
/// path as a hint, a directory).
pub fn replay_config_with(
    header: &TraceHeader,
    embedded: &dyn Fn(&str) -> Option<Arc<[u8]>>,
    search: &ImageSearch,
) -> Result<(MachineConfig, CheckSettings), MachineError> {
    let rc: RecordedConfig =
        serde_json::from_value(header.machine_config.clone()).map_err(|e| {
            MachineError::Config(format!(
                "the trace's machine configuration is not one this rewind understands ({e}); \
                 it was recorded by rewind {}",
                header.rewind_version
            ))
        })?;
    let load =
        |name: &Option<String>, role: ImageRole| -> Result<Option<ImageSource>, MachineError> {
            let Some(name) = name else {
                return Ok(None);
            };
            let info = header
                .images
                .iter()
                .find(|i| i.role == role && &i.file_name == name)
                .ok_or_else(|| {
                    MachineError::Config(format!(
                        "the trace header lists no hash for its {role:?} image {name}"
                    ))
                })?;
            if info.size > rc.ram_size {
                return Err(MachineError::Config(format!(
                    "the trace header's {role:?} image {name} ({} bytes) is larger than its RAM \
                     ({} bytes)",
                    info.size, rc.ram_size
                )));
            }
            let bytes = match name.strip_prefix(EMBEDDED_PREFIX) {
                Some(n) => {
                    let bytes = embedded(n).ok_or_else(|| MachineError::ImageChanged {
                        path: PathBuf::from(name),
                        what: "this rewind build has no such built-in image".into(),
                    })?;
                    let hash = blake3::hash(&bytes).to_hex().to_string();
                    if hash != info.blake3 || bytes.len() as u64 != info.size {
                        return Err(MachineError::ImageChanged {
                            path: PathBuf::from(name),
                            what: format!(
                                "this rewind build's image differs from the one recorded ({} \
                                 bytes, blake3 {})",
                                info.size, info.blake3
                            ),
                        });
                    }
                    bytes
                }
                None => find_image(info, name, search)?,
            };
            Ok(Some(ImageSource::Embedded {
                name: name
                    .strip_prefix(EMBEDDED_PREFIX)
                    .unwrap_or(name)
                    .to_string(),
                bytes,
            }))
        };
    crate::check_ram_reservable(rc.ram_size)?;
    let cpu = rewind_cpu::CpuFeatures::parse(&rc.cpu).map_err(|e| {
        MachineError::Config(format!(
            "the trace's CPU model '{}' is not usable: {e}",
            rc.cpu
        ))
    })?;
    let virtio = rc
        .devices
        .iter()
        .map(|d| {
            crate::VirtioDevice::parse(d).ok_or_else(|| {
                MachineError::Config(format!(
                    "the trace's device '{d}' is not one this rewind has"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut virtio = virtio;
    for d in &mut virtio {
        if let crate::VirtioDevice::Blk(drive) = d {
            let name = drive.file.display().to_string();
            let info = header
                .images
                .iter()
                .find(|i| i.role == ImageRole::Disk && i.file_name == name)
                .ok_or_else(|| {
                    MachineError::Config(format!(
                        "the trace header lists no hash for its disk image {name}"
                    ))
                })?;
            drive.file = find_disk(info, &name, drive.id.as_deref(), search)?;
            // Replay never writes the user's image.
            drive.overlay = true;
        }
    }
    // Replay writes playback only where its own `--audiodev` says (see `set_replay_audio`).
    let audiodevs = rc
        .audiodevs
        .iter()
        .map(|a| {
            crate::AudioDevConfig::parse(a)
                .map(|c| crate::AudioDevConfig { out: None, ..c })
                .map_err(|e| MachineError::Config(format!("the trace's audiodev '{a}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let config = MachineConfig {
        cpu,
        virtio,
        audiodevs,
        ram_size: rc.ram_size,
        bios: load(&rc.bios, ImageRole::Bios)?,
        kernel: load(&rc.kernel, ImageRole::Kernel)?,
        initrd: load(&rc.initrd, ImageRole::Initrd)?,
        append: rc.append,
        icount_shift: rc.icount_shift,
        smp: rc.smp,
        quantum: rc.quantum,
        chaos: rc.chaos,
        ..MachineConfig::default()
    };
    Ok((
        config,
        CheckSettings {
            interval: rc.check_interval,
            registers_every: rc.registers_every,
        },
    ))
}

/// Replay: write the playback of audiodev `given.id` where `given` says (its capture input is
/// ignored: captured audio comes from the trace). The id must be one the trace has.
pub fn set_replay_audio(
    config: &mut MachineConfig,
    given: &crate::AudioDevConfig,
) -> Result<(), MachineError> {
    let known: Vec<String> = config.audiodevs.iter().map(|a| a.id.clone()).collect();
    let Some(a) = config.audiodevs.iter_mut().find(|a| a.id == given.id) else {
        return Err(MachineError::Config(format!(
            "the trace has no audiodev '{}' (it has: {})",
            given.id,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    a.out = given.out.clone();
    Ok(())
}

/// Refuses an audio output file that is one of `protected` (the trace, its snapshots, a
/// capture input, an image): writing it would destroy what the recording needs.
pub fn check_audio_outputs(
    config: &MachineConfig,
    protected: &[PathBuf],
) -> Result<(), MachineError> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    };
    let mut guarded: Vec<PathBuf> = protected.to_vec();
    guarded.extend(config.audiodevs.iter().filter_map(|a| a.input.clone()));
    for src in [&config.bios, &config.kernel, &config.initrd]
        .into_iter()
        .flatten()
    {
        if let ImageSource::File(p) = src {
            guarded.push(p.clone());
        }
    }
    for a in &config.audiodevs {
        let Some(out) = &a.out else { continue };
        if let Some(g) = guarded.iter().find(|g| same(out, g)) {
            return Err(MachineError::Config(format!(
                "audiodev {}: refusing to write audio into {}: the recording needs that file",
                a.id,
                g.display()
            )));
        }
    }
    Ok(())
}
