//! What a trace header says about the machine: the configuration (so `rewind replay FILE`
//! needs no other options) and every image with its BLAKE3 hash (so replay refuses a changed
//! one before running a single instruction).

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

fn image_bytes(src: &ImageSource) -> Result<Arc<[u8]>, MachineError> {
    match src {
        ImageSource::Embedded { bytes, .. } => Ok(bytes.clone()),
        ImageSource::File(p) => std::fs::read(p).map(Arc::from).map_err(|e| {
            let problem = if e.kind() == std::io::ErrorKind::NotFound {
                ImageProblem::NotFound
            } else {
                ImageProblem::Unreadable(e.to_string())
            };
            MachineError::image(p, problem)
        }),
    }
}

/// The trace header for recording `config` with state checks `checks`. Every image file is
/// read once here, hashed, and put into `config` as bytes, so the hash stored in the header is
/// the hash of what the machine loads even if a file changes while recording starts.
pub fn prepare_recording(
    config: &mut MachineConfig,
    checks: CheckSettings,
) -> Result<TraceHeader, MachineError> {
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
        devices: config
            .virtio
            .iter()
            .map(|d| d.qemu_name().to_string())
            .collect(),
    };
    let mut infos = Vec::new();
    for (role, slot) in [
        (ImageRole::Bios, &mut config.bios),
        (ImageRole::Kernel, &mut config.kernel),
        (ImageRole::Initrd, &mut config.initrd),
    ] {
        let Some(src) = slot else {
            continue;
        };
        let name = image_name(src);
        let bytes = image_bytes(src)?;
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
/// `embedded:NAME` images. The returned configuration holds the checked bytes.
pub fn replay_config(
    header: &TraceHeader,
    embedded: &dyn Fn(&str) -> Option<Arc<[u8]>>,
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
            let bytes = match name.strip_prefix(EMBEDDED_PREFIX) {
                Some(n) => embedded(n).ok_or_else(|| MachineError::ImageChanged {
                    path: PathBuf::from(name),
                    what: "this rewind build has no such built-in image".into(),
                })?,
                None => match std::fs::read(Path::new(name)) {
                    Ok(b) => Arc::from(b),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(MachineError::ImageChanged {
                            path: PathBuf::from(name),
                            what: format!(
                                "image missing: the trace was recorded with this file ({} bytes, \
                             blake3 {})",
                                info.size, info.blake3
                            ),
                        })
                    }
                    Err(e) => {
                        return Err(MachineError::image(
                            name,
                            ImageProblem::Unreadable(e.to_string()),
                        ))
                    }
                },
            };
            let hash = blake3::hash(&bytes).to_hex().to_string();
            if hash != info.blake3 || bytes.len() as u64 != info.size {
                return Err(MachineError::ImageChanged {
                    path: PathBuf::from(name),
                    what: format!(
                    "image changed since the recording: it is now {} bytes with blake3 {hash}, \
                     the trace was recorded with {} bytes and blake3 {}",
                    bytes.len(),
                    info.size,
                    info.blake3
                ),
                });
            }
            Ok(Some(ImageSource::Embedded {
                name: name
                    .strip_prefix(EMBEDDED_PREFIX)
                    .unwrap_or(name)
                    .to_string(),
                bytes,
            }))
        };
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
    let config = MachineConfig {
        cpu,
        virtio,
        ram_size: rc.ram_size,
        bios: load(&rc.bios, ImageRole::Bios)?,
        kernel: load(&rc.kernel, ImageRole::Kernel)?,
        initrd: load(&rc.initrd, ImageRole::Initrd)?,
        append: rc.append,
        icount_shift: rc.icount_shift,
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
