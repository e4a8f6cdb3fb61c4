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

/// A user-mode network backend (`--netdev user,id=ID[,hostfwd=RULE]...`, or the backend
/// half of `--nic user,...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetdevSpec {
    /// Its id (`None` for `--nic`, whose backend belongs to the card it creates).
    pub id: Option<String>,
    /// Port forwards in QEMU's spelling.
    pub hostfwd: Vec<String>,
    /// `--nic` only: the card's MAC address.
    pub mac: Option<[u8; 6]>,
}

/// Parse `user,id=ID[,hostfwd=tcp:[ADDR]:HPORT-:GPORT]...` (`--netdev`) or, with `nic`,
/// `user[,hostfwd=...][,mac=MAC]` (`--nic`).
fn parse_user_net(s: &str, nic: bool) -> Result<NetdevSpec, String> {
    let flag = if nic { "--nic" } else { "--netdev" };
    let mut parts = s.split(',');
    match parts.next() {
        Some("user") => {}
        Some(other) => {
            return Err(format!(
                "{flag} {other}: only user-mode networking ('user') is supported"
            ))
        }
        None => return Err(format!("{flag}: empty")),
    }
    let mut spec = NetdevSpec {
        id: None,
        hostfwd: Vec::new(),
        mac: None,
    };
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("{flag} {s}: '{p}' is not KEY=VALUE"))?;
        match k {
            "id" if !v.is_empty() => spec.id = Some(v.to_string()),
            "hostfwd" => {
                let rule = rewind_replay::net::HostFwd::parse(v).map_err(|e| e.to_string())?;
                spec.hostfwd.push(rule.to_string());
            }
            "mac" if nic => {
                spec.mac = Some(
                    rewind_machine::virtio_net_mac(v)
                        .ok_or_else(|| format!("{flag} {s}: bad MAC address '{v}'"))?,
                )
            }
            // QEMU options that change nothing here.
            "model" if nic && matches!(v, "virtio" | "virtio-net-device" | "virtio-net") => {}
            "restrict" if v == "off" || v == "no" => {}
            _ => return Err(format!("{flag} {s}: unsupported option '{k}'")),
        }
    }
    if !nic && spec.id.is_none() {
        return Err(format!("{flag} {s}: needs id=NAME"));
    }
    Ok(spec)
}

/// `--netdev user,id=ID[,hostfwd=...]`.
pub fn parse_netdev(s: &str) -> Result<NetdevSpec, String> {
    parse_user_net(s, false)
}

/// `--nic user[,hostfwd=...][,mac=MAC]`.
pub fn parse_nic(s: &str) -> Result<NetdevSpec, String> {
    parse_user_net(s, true)
}

/// What `--device` names.
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
    /// A network card and the netdev it is plugged into.
    Net {
        /// The `--netdev` id.
        netdev: String,
        /// Its MAC address (default: QEMU's, counting up per card).
        mac: Option<[u8; 6]>,
    },
}

/// `virtio-rng-device`, `virtio-net-device,netdev=ID[,mac=MAC]`,
/// `virtio-blk-device,drive=ID[,serial=S]`, ... (QEMU's `-device` spelling; the short
/// `virtio-rng`/`virtio-net`/`virtio-blk` work too).
pub fn parse_device(s: &str) -> Result<DeviceArg, String> {
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or(s);
    if matches!(name, "virtio-blk-device" | "virtio-blk") {
        let items = rewind_machine::blk::split_options(s);
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
    if matches!(name, "virtio-net-device" | "virtio-net") {
        let (mut netdev, mut mac) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some(("netdev", v)) if !v.is_empty() => netdev = Some(v.to_string()),
                Some(("mac", v)) => {
                    mac = Some(
                        rewind_machine::virtio_net_mac(v)
                            .ok_or_else(|| format!("{s}: bad MAC address '{v}'"))?,
                    )
                }
                // QEMU's `id=` names the device; nothing refers to it here.
                Some(("id", _)) => {}
                _ => return Err(format!("{s}: unsupported option '{p}'")),
            }
        }
        let netdev =
            netdev.ok_or_else(|| format!("{s}: needs netdev=ID (a --netdev user,id=ID)"))?;
        return Ok(DeviceArg::Net { netdev, mac });
    }
    // QEMU's options after the name (`,id=...`) are accepted; those a device does not use
    // are ignored.
    rewind_machine::VirtioDevice::parse(s)
        .filter(|d| {
            !matches!(
                d,
                rewind_machine::VirtioDevice::Net(_) | rewind_machine::VirtioDevice::Blk(_)
            )
        })
        .map(DeviceArg::Plain)
        .ok_or_else(|| {
            format!(
                "unknown device '{name}' or option (known: virtio-rng-device, \
                 virtio-net-device, virtio-blk-device, virtio-sound-device, \
                 virtio-keyboard-device, virtio-mouse-device, virtio-tablet-device; the input \
                 devices take `,id=NAME` and not `serial=` or `wheel-axis=`)"
            )
        })
}

/// The virtio devices the options describe, in command-line order: the `--device` ones, then
/// one card per `--nic`, then the `if=virtio` drives. Every network card gets its netdev's
/// port forwards and a MAC address (QEMU's 52:54:00:12:34:56 counting up, unless given).
pub fn virtio_devices(
    devices: &[DeviceArg],
    netdevs: &[NetdevSpec],
    nics: &[NetdevSpec],
    drives: &[DriveArg],
) -> Result<Vec<rewind_machine::VirtioDevice>, String> {
    use rewind_machine::blk::DriveInterface;
    let mut ids = std::collections::HashSet::new();
    for (d, _) in drives {
        if let Some(id) = &d.id {
            if !ids.insert(id.as_str()) {
                return Err(format!("two drives have id={id}"));
            }
        }
    }
    let mut drives_used = std::collections::HashSet::new();
    let mut used = vec![false; netdevs.len()];
    let mut cards = 0u8;
    let mut next_mac = |mac: Option<[u8; 6]>| {
        let mut m = rewind_machine::NetSpec::default_mac();
        m[5] = m[5].wrapping_add(cards);
        cards = cards.wrapping_add(1);
        mac.unwrap_or(m)
    };
    let mut out = Vec::new();
    for d in devices {
        match d {
            DeviceArg::Plain(v) => out.push(v.clone()),
            DeviceArg::Blk { drive, serial } => {
                let Some((cfg, interface)) =
                    drives.iter().find(|(d, _)| d.id.as_ref() == Some(drive))
                else {
                    return Err(format!("virtio-blk-device: no --drive has id={drive}"));
                };
                if *interface != DriveInterface::None || !drives_used.insert(drive.as_str()) {
                    return Err(format!(
                        "virtio-blk-device: drive {drive} is already in use"
                    ));
                }
                let mut cfg = cfg.clone();
                if serial.is_some() {
                    cfg.serial = serial.clone();
                }
                out.push(rewind_machine::VirtioDevice::Blk(cfg));
            }
            DeviceArg::Net { netdev, mac } => {
                let i = netdevs
                    .iter()
                    .position(|n| n.id.as_deref() == Some(netdev))
                    .ok_or_else(|| format!("virtio-net-device: no --netdev with id={netdev}"))?;
                if std::mem::replace(&mut used[i], true) {
                    return Err(format!("netdev {netdev} is used by two devices"));
                }
                out.push(rewind_machine::VirtioDevice::Net(rewind_machine::NetSpec {
                    mac: next_mac(*mac),
                    hostfwd: netdevs[i].hostfwd.clone(),
                }));
            }
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        let id = netdevs[i].id.as_deref().unwrap_or("?");
        return Err(format!(
            "netdev {id} is not used by any device (add --device virtio-net-device,netdev={id})"
        ));
    }
    for n in nics {
        out.push(rewind_machine::VirtioDevice::Net(rewind_machine::NetSpec {
            mac: next_mac(n.mac),
            hostfwd: n.hostfwd.clone(),
        }));
    }
    out.extend(
        drives
            .iter()
            .filter(|(_, i)| *i == DriveInterface::Virtio)
            .map(|(d, _)| rewind_machine::VirtioDevice::Blk(d.clone())),
    );
    Ok(out)
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

    #[test]
    fn network_options_like_qemu() {
        let nd = parse_netdev("user,id=n0,hostfwd=tcp:127.0.0.1:5555-:22").unwrap();
        assert_eq!(nd.id.as_deref(), Some("n0"));
        assert_eq!(nd.hostfwd, vec!["tcp:127.0.0.1:5555-:22".to_string()]);
        assert!(parse_netdev("user").is_err());
        assert!(parse_netdev("tap,id=t0").is_err());
        assert!(parse_netdev("user,id=n0,hostfwd=udp::1-:2").is_err());
        assert!(parse_netdev("user,id=n0,smb=/tmp").is_err());
        let nic = parse_nic("user,hostfwd=::8080-:80,mac=52:54:00:00:00:01").unwrap();
        assert_eq!(nic.hostfwd, vec!["tcp:127.0.0.1:8080-:80".to_string()]);
        assert_eq!(nic.mac, Some([0x52, 0x54, 0, 0, 0, 1]));
        let dev = parse_device("virtio-net-device,netdev=n0").unwrap();
        assert_eq!(
            dev,
            DeviceArg::Net {
                netdev: "n0".into(),
                mac: None
            }
        );
        assert!(parse_device("virtio-net").is_err());
        let rng = parse_device("virtio-rng-device,id=r").unwrap();
        let v = virtio_devices(
            &[rng.clone(), dev.clone()],
            std::slice::from_ref(&nd),
            &[nic],
            &[],
        )
        .unwrap();
        let macs: Vec<[u8; 6]> = v
            .iter()
            .filter_map(|d| match d {
                rewind_machine::VirtioDevice::Net(n) => Some(n.mac),
                _ => None,
            })
            .collect();
        assert_eq!(
            macs,
            vec![[0x52, 0x54, 0, 0x12, 0x34, 0x56], [0x52, 0x54, 0, 0, 0, 1]]
        );
        assert_eq!(v[0], rewind_machine::VirtioDevice::Rng);
        // A device naming a missing netdev, a netdev used twice or not at all.
        assert!(virtio_devices(std::slice::from_ref(&dev), &[], &[], &[]).is_err());
        assert!(virtio_devices(&[dev.clone(), dev], std::slice::from_ref(&nd), &[], &[]).is_err());
        assert!(virtio_devices(&[rng], &[nd], &[], &[]).is_err());
    }
}
