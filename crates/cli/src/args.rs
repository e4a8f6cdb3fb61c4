//! Command-line syntax: sizes and serial backends, parsed like QEMU's options.

use std::path::PathBuf;

/// Parse a memory size: a number with an optional K/M/G/T suffix (binary units, optional
/// trailing `B` or `iB`); a bare number is MiB, as with QEMU's `-m`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let body = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 10),
        Some('M') => (&body[..body.len() - 1], 20),
        Some('G') => (&body[..body.len() - 1], 30),
        Some('T') => (&body[..body.len() - 1], 40),
        _ => (body, 20),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("invalid size '{s}' (examples: 256M, 512, 1G)"))?;
    if n == 0 {
        return Err(format!("invalid size '{s}': must not be zero"));
    }
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("size '{s}' is too large"))
}

/// `--image NAME=PATH`.
pub fn parse_image_remap(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!(
            "invalid image '{s}': expected NAME=PATH (NAME: bios, kernel, initrd or the recorded file name)"
        )),
    }
}

/// What `--serial` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialSpec {
    /// Input from stdin, output to stdout.
    Stdio,
    /// No input, output discarded.
    Null,
    /// Output to a file, no input (QEMU's `file:` chardev).
    File(PathBuf),
    /// A TCP server socket `HOST:PORT`: one client, input and output.
    Tcp(String),
    /// A unix server socket: one client, input and output.
    Unix(PathBuf),
}

/// Parse `stdio`, `null` (or `none`), `file:PATH`, `tcp:HOST:PORT,server` or
/// `unix:PATH,server`.
pub fn parse_serial(s: &str) -> Result<SerialSpec, String> {
    let usage = || {
        format!(
            "invalid serial backend '{s}' (use stdio, null, file:PATH, tcp:HOST:PORT,server or \
             unix:PATH,server)"
        )
    };
    let server = |rest: &str| -> Result<String, String> {
        match rest.strip_suffix(",server") {
            Some(a) if !a.is_empty() => Ok(a.to_string()),
            _ => Err(format!(
                "invalid serial backend '{s}': only listening sockets are supported (add ,server)"
            )),
        }
    };
    match s {
        "stdio" => Ok(SerialSpec::Stdio),
        "null" | "none" => Ok(SerialSpec::Null),
        _ => {
            if let Some(p) = s.strip_prefix("file:") {
                return if p.is_empty() {
                    Err(usage())
                } else {
                    Ok(SerialSpec::File(PathBuf::from(p)))
                };
            }
            if let Some(rest) = s.strip_prefix("tcp:") {
                let addr = server(rest)?;
                if !addr.contains(':') {
                    return Err(format!(
                        "invalid serial backend '{s}': use tcp:HOST:PORT,server"
                    ));
                }
                return Ok(SerialSpec::Tcp(addr));
            }
            if let Some(rest) = s.strip_prefix("unix:") {
                return Ok(SerialSpec::Unix(PathBuf::from(server(rest)?)));
            }
            Err(usage())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("512"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn serial_specs() {
        assert_eq!(parse_serial("stdio"), Ok(SerialSpec::Stdio));
        assert_eq!(parse_serial("null"), Ok(SerialSpec::Null));
        assert_eq!(
            parse_serial("file:/tmp/x"),
            Ok(SerialSpec::File("/tmp/x".into()))
        );
        assert!(parse_serial("file:").is_err());
        assert!(parse_serial("tcp:1234").is_err());
        assert!(parse_serial("tcp:127.0.0.1:4444").is_err());
        assert_eq!(
            parse_serial("tcp:127.0.0.1:4444,server"),
            Ok(SerialSpec::Tcp("127.0.0.1:4444".into()))
        );
        assert_eq!(
            parse_serial("unix:/tmp/s.sock,server"),
            Ok(SerialSpec::Unix("/tmp/s.sock".into()))
        );
        assert!(parse_serial("unix:,server").is_err());
    }
}

/// A `--device` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceArg {
    /// A device complete in itself (`virtio-rng-device`).
    Plain(rewind_machine::VirtioDevice),
    /// `virtio-blk-device,drive=ID[,serial=S]`: the disk of an `if=none` drive.
    Blk {
        /// The drive's id.
        drive: String,
        /// GET_ID's serial.
        serial: Option<String>,
    },
}

/// `--device NAME[,OPTIONS]` (QEMU's `-device`).
pub fn parse_device(s: &str) -> Result<DeviceArg, String> {
    use rewind_machine::blk::split_options;
    let items = split_options(s);
    let name = items.first().map_or("", String::as_str);
    if matches!(name, "virtio-blk-device" | "virtio-blk") {
        let (mut drive, mut serial) = (None, None);
        for item in &items[1..] {
            match item.split_once('=') {
                Some(("drive", v)) if !v.is_empty() => drive = Some(v.to_string()),
                Some(("serial", v)) => serial = Some(v.to_string()),
                // QEMU's other options (`id=...`) are accepted and ignored.
                Some(_) => {}
                None => return Err(format!("'{item}': expected KEY=VALUE")),
            }
        }
        let drive =
            drive.ok_or("virtio-blk-device needs drive=ID (a --drive ...,if=none,id=ID)")?;
        return Ok(DeviceArg::Blk { drive, serial });
    }
    // QEMU's options after the name (`,id=...`) are accepted; those a device does not use
    // are ignored.
    rewind_machine::VirtioDevice::parse(s)
        .map(DeviceArg::Plain)
        .ok_or_else(|| {
            format!(
                "unknown device '{name}' (known: virtio-rng-device, virtio-blk-device, \
                 virtio-sound-device)"
            )
        })
}

/// A `--drive` option.
pub type DriveArg = (
    rewind_machine::blk::DriveConfig,
    rewind_machine::blk::DriveInterface,
);

/// `--drive file=IMG[,...]` (QEMU's `-drive`).
pub fn parse_drive(s: &str) -> Result<DriveArg, String> {
    rewind_machine::blk::DriveConfig::parse_drive(s)
}

/// The virtio devices of `--device` and `--drive`, in QEMU's order: the `--device` ones in
/// command-line order, then the `if=virtio` drives.
pub fn virtio_devices(
    devices: &[DeviceArg],
    drives: &[DriveArg],
) -> Result<Vec<rewind_machine::VirtioDevice>, String> {
    use rewind_machine::blk::DriveInterface;
    use rewind_machine::VirtioDevice;
    let mut ids = std::collections::HashSet::new();
    for (d, _) in drives {
        if let Some(id) = &d.id {
            if !ids.insert(id.as_str()) {
                return Err(format!("two drives have id={id}"));
            }
        }
    }
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for dev in devices {
        match dev {
            DeviceArg::Plain(d) => out.push(d.clone()),
            DeviceArg::Blk { drive, serial } => {
                let Some((cfg, interface)) =
                    drives.iter().find(|(d, _)| d.id.as_ref() == Some(drive))
                else {
                    return Err(format!("virtio-blk-device: no --drive has id={drive}"));
                };
                if *interface != DriveInterface::None || !used.insert(drive.as_str()) {
                    return Err(format!(
                        "virtio-blk-device: drive {drive} is already in use"
                    ));
                }
                let mut cfg = cfg.clone();
                if serial.is_some() {
                    cfg.serial = serial.clone();
                }
                out.push(VirtioDevice::Blk(cfg));
            }
        }
    }
    out.extend(
        drives
            .iter()
            .filter(|(_, i)| *i == DriveInterface::Virtio)
            .map(|(d, _)| VirtioDevice::Blk(d.clone())),
    );
    Ok(out)
}
