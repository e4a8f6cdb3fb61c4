//! QEMU's command line, accepted: `rewind run` (and `record`, `replay`) take the single-dash
//! options of `qemu-system-riscv64` that rewind shares with it, translated here to rewind's own
//! `--long` options before clap sees them. `-icount …,rr=record|replay,rrfile=F` turns `run`
//! into `record -o F` or `replay F`, as QEMU's record/replay spelling does. An option rewind
//! does not have is refused with one line saying what to use instead.

use std::ffi::OsString;

/// The "QEMU equivalents" section of `rewind run --help`.
pub const HELP: &str = "\
QEMU equivalents (qemu-system-riscv64 options work as typed, single or double dash):
  -M virt[,dumpdtb=F]  the only board (--dump-dtb F)    -m SIZE       --memory SIZE
  -cpu rv64[,x=on|off] --cpu                            -smp N        --smp N (1-8)
  -bios/-kernel/-initrd/-append  --bios/--kernel/--initrd/--append
  -drive/-netdev/-nic/-device/-audiodev  the same options with two dashes
  -serial stdio|null|file:F|tcp:H:P,server|unix:P,server|chardev:ID (mon:stdio = stdio)
  -chardev stdio|null|file|socket,server=on,...         -nographic, -display none: always so
  -qmp unix:P,server|tcp:H:P   --qmp (HMP: QMP human-monitor-command)   -monitor none
  -s / -gdb tcp::PORT / -S     --gdb tcp::1234 / --gdb / -S
  -icount shift=N      --icount-shift N
  -icount shift=0,rr=record,rrfile=F   = rewind record -o F ...
  -icount shift=0,rr=replay,rrfile=F   = rewind replay F (the trace holds the machine)
  -rtc base=utc, -object rng-random|rng-builtin, -accel tcg: accepted (nothing to set)
  -accel jit|interp    --accel jit|interp (rewind's engines; tcg = the default; jit,check=interp
                       runs every translated region again in the interpreter and stops at a difference)
  -accel kvm, -enable-kvm, -dtb, -no-reboot, -monitor stdio: refused with what to use instead";

/// A QEMU option rewind cannot take, with what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The option as typed (with its value when that is the problem).
    pub option: String,
    /// Why, and what to use instead.
    pub reason: String,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.reason)
    }
}

fn unsupported(option: impl Into<String>, reason: impl Into<String>) -> Unsupported {
    Unsupported {
        option: option.into(),
        reason: reason.into(),
    }
}

/// What a QEMU option takes and becomes.
enum Rule {
    /// Takes a value; becomes `--long VALUE`.
    Value(&'static str),
    /// A flag; becomes `--long` (or `-S`).
    Flag(&'static str),
    /// Takes a value that needs its own translation.
    Special,
    /// A flag rewind needs not (it always behaves so).
    Ignore,
}

/// The QEMU options rewind shares, by QEMU name.
fn rule(name: &str) -> Option<Rule> {
    Some(match name {
        "m" => Rule::Value("--memory"),
        "cpu" => Rule::Value("--cpu"),
        "bios" => Rule::Value("--bios"),
        "kernel" => Rule::Value("--kernel"),
        "initrd" => Rule::Value("--initrd"),
        "append" => Rule::Value("--append"),
        "drive" => Rule::Value("--drive"),
        "netdev" => Rule::Value("--netdev"),
        "nic" => Rule::Value("--nic"),
        "device" => Rule::Value("--device"),
        "audiodev" => Rule::Value("--audiodev"),
        "qmp" => Rule::Value("--qmp"),
        "gdb" => Rule::Value("--gdb"),
        "S" => Rule::Flag("-S"),
        "s" => Rule::Flag("--gdb=tcp::1234"),
        "nographic" | "no-shutdown" => Rule::Ignore,
        "M" | "machine" | "smp" | "serial" | "display" | "monitor" | "chardev" | "icount"
        | "rtc" | "object" | "accel" | "enable-kvm" | "dtb" | "no-reboot" | "name" | "vga"
        | "nodefaults" => Rule::Special,
        _ => return None,
    })
}

/// The options that only QEMU flags take no value.
fn special_takes_value(name: &str) -> bool {
    !matches!(
        name,
        "enable-kvm" | "no-reboot" | "nodefaults" | "nographic" | "no-shutdown"
    )
}

/// Translate `args` (without the program name). Arguments that are not single-dash QEMU
/// options pass through unchanged, so rewind's own spelling keeps working; `-m` and `-S`,
/// which both spell alike, too.
pub fn translate(args: Vec<OsString>) -> Result<Vec<OsString>, Unsupported> {
    let cmd = match args.first().and_then(|a| a.to_str()) {
        Some(c @ ("run" | "record" | "replay")) => c.to_string(),
        _ => return Ok(args),
    };
    let cmd = cmd.as_str();
    let mut out: Vec<OsString> = vec![cmd.into()];
    let mut chardevs: Vec<(String, String)> = Vec::new();
    let mut rr: Option<(String, String)> = None;
    let mut it = args.into_iter().skip(1).peekable();
    while let Some(arg) = it.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        // A value that may start with '-' (a kernel command line) is never an option.
        if text == "--append" {
            out.push(arg);
            out.extend(it.next());
            continue;
        }
        // QEMU takes `--smp` as `-smp`; rewind's own `--long` options that QEMU shares mean
        // the same, so only QEMU's other options are translated in that spelling.
        let qemu_name = match text.strip_prefix("--") {
            Some(n) if matches!(rule(n), Some(Rule::Special | Rule::Ignore)) => Some(n),
            Some(_) => None,
            None => text.strip_prefix('-').filter(|n| !n.is_empty()),
        };
        let Some(name) = qemu_name else {
            out.push(arg);
            continue;
        };
        // `-option=value` is not QEMU's spelling; leave it to clap.
        if name.contains('=') {
            out.push(arg);
            continue;
        }
        let Some(r) = rule(name) else {
            // rewind's own short options (-o, -m, -q, -S) and anything clap should judge.
            if name.len() <= 1 {
                out.push(arg);
                continue;
            }
            return Err(unsupported(
                format!("-{name}"),
                "not an option rewind has (see `rewind run --help`, section QEMU equivalents)",
            ));
        };
        let mut value = || -> Result<String, Unsupported> {
            match it.next() {
                Some(v) => v
                    .into_string()
                    .map_err(|_| unsupported(format!("-{name}"), "its value is not UTF-8")),
                None => Err(unsupported(format!("-{name}"), "needs a value")),
            }
        };
        match r {
            Rule::Value(long) => {
                let v = value()?;
                out.push(long.into());
                out.push(v.into());
            }
            Rule::Flag(f) => out.push(f.into()),
            Rule::Ignore => {}
            Rule::Special => {
                let v = if special_takes_value(name) {
                    Some(value()?)
                } else {
                    None
                };
                special(name, v.as_deref(), &mut out, &mut chardevs, &mut rr)?;
            }
        }
    }
    resolve_chardevs(&mut out, &chardevs)?;
    if let Some((mode, file)) = rr {
        return record_replay(cmd, out, &mode, &file);
    }
    Ok(out)
}

/// The hart count of a `-smp` value: `N`, `cpus=N`, or the product of `sockets`, `cores`,
/// `threads` (and `dies`, `clusters`) when `cpus` is not given; `maxcpus` must equal it.
fn smp_cpus(v: &str) -> Result<u32, &'static str> {
    let (mut cpus, mut max, mut product) = (None, None, None::<u32>);
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=').unwrap_or(("cpus", part));
        let n: u32 = val
            .parse()
            .map_err(|_| "a count must be a number, e.g. -smp 4 or -smp cpus=4")?;
        match key {
            "cpus" => cpus = Some(n),
            "maxcpus" => max = Some(n),
            "sockets" | "dies" | "clusters" | "cores" | "threads" => {
                product = Some(product.unwrap_or(1).saturating_mul(n))
            }
            _ => {
                return Err(
                    "rewind knows cpus, maxcpus, sockets, dies, clusters, cores and threads",
                )
            }
        }
    }
    let n = cpus.or(product).unwrap_or(1);
    if max.is_some_and(|m| m != n) {
        return Err("rewind has no CPU hotplug: maxcpus must equal cpus");
    }
    if !(1..=8).contains(&n) {
        return Err("rewind runs 1 to 8 harts");
    }
    Ok(n)
}

/// `-serial` values: QEMU's `mon:stdio` is stdio here (the monitor is QMP), `chardev:ID`
/// is resolved after all `-chardev`s are seen.
fn serial(v: &str) -> Result<String, Unsupported> {
    Ok(match v {
        "mon:stdio" => "stdio".into(),
        "none" => "null".into(),
        v if v.starts_with("pty") || v.starts_with("vc") => {
            return Err(unsupported(
                format!("-serial {v}"),
                "use stdio, null, file:PATH, tcp:HOST:PORT,server or unix:PATH,server",
            ))
        }
        v => v.into(),
    })
}

fn special(
    name: &str,
    v: Option<&str>,
    out: &mut Vec<OsString>,
    chardevs: &mut Vec<(String, String)>,
    rr: &mut Option<(String, String)>,
) -> Result<(), Unsupported> {
    let v = v.unwrap_or("");
    let opt = || format!("-{name} {v}");
    match name {
        "M" | "machine" => {
            let mut parts = v.split(',');
            let machine = parts.next().unwrap_or("");
            let machine = machine.strip_prefix("type=").unwrap_or(machine);
            if machine != "virt" {
                return Err(unsupported(
                    opt(),
                    "rewind models QEMU's `virt` board only (-M virt)",
                ));
            }
            for p in parts {
                match p.split_once('=') {
                    Some(("dumpdtb", path)) => {
                        out.push("--dump-dtb".into());
                        out.push(path.into());
                    }
                    // Properties whose QEMU default rewind has (and cannot change).
                    Some(("aclint" | "aia" | "acpi" | "iommu-sys", "off" | "none")) => {}
                    _ => {
                        return Err(unsupported(
                            format!("-machine {p}"),
                            "rewind's virt has QEMU's defaults (no AIA, ACLINT, ACPI) and takes only dumpdtb=PATH",
                        ))
                    }
                }
            }
        }
        "smp" => {
            let n = smp_cpus(v).map_err(|why| unsupported(opt(), why))?;
            out.push("--smp".into());
            out.push(n.to_string().into());
        }
        "serial" => {
            out.push("--serial".into());
            out.push(serial(v)?.into());
        }
        "display" if v == "none" => {}
        "display" => {
            return Err(unsupported(
                opt(),
                "rewind has no display; its console is the serial port (-display none)",
            ))
        }
        "monitor" if v == "none" => {}
        "monitor" => {
            return Err(unsupported(
                opt(),
                "rewind's monitor is QMP (-qmp unix:PATH,server or tcp:HOST:PORT); HMP commands go through QMP's human-monitor-command",
            ))
        }
        "chardev" => {
            let (backend, props) = v.split_once(',').unwrap_or((v, ""));
            let mut id = None;
            let mut path = None;
            let mut host = None;
            let mut port = None;
            let mut server = false;
            for p in props.split(',').filter(|p| !p.is_empty()) {
                match p.split_once('=') {
                    Some(("id", x)) => id = Some(x.to_string()),
                    Some(("path", x)) => path = Some(x.to_string()),
                    Some(("host", x)) => host = Some(x.to_string()),
                    Some(("port", x)) => port = Some(x.to_string()),
                    Some(("server", x)) => server = matches!(x, "on" | "yes" | "true"),
                    None if p == "server" => server = true,
                    Some(("wait" | "mux" | "signal" | "logfile" | "nowait", _)) => {}
                    None if p == "nowait" => {}
                    _ => return Err(unsupported(format!("-chardev {p}"), "not a property rewind takes")),
                }
            }
            let id = id.ok_or_else(|| unsupported(opt(), "needs id=NAME"))?;
            let serial = match backend {
                "stdio" => "stdio".to_string(),
                "null" => "null".to_string(),
                "file" => format!(
                    "file:{}",
                    path.ok_or_else(|| unsupported(opt(), "needs path=FILE"))?
                ),
                "socket" if server => match (path, port) {
                    (Some(p), _) => format!("unix:{p},server"),
                    (None, Some(port)) => {
                        format!("tcp:{}:{port},server", host.unwrap_or_else(|| "127.0.0.1".into()))
                    }
                    _ => return Err(unsupported(opt(), "needs path=PATH or port=N")),
                },
                _ => {
                    return Err(unsupported(
                        opt(),
                        "rewind takes chardevs stdio, null, file and socket (server=on) for -serial",
                    ))
                }
            };
            chardevs.push((id, serial));
        }
        "icount" => {
            let mut shift = None;
            let mut mode = None;
            let mut file = None;
            for p in v.split(',') {
                match p.split_once('=') {
                    Some(("shift", s)) => shift = Some(s.to_string()),
                    None if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        shift = Some(p.to_string())
                    }
                    Some(("rr", m)) => mode = Some(m.to_string()),
                    Some(("rrfile", f)) => file = Some(f.to_string()),
                    Some(("align" | "sleep", _)) | Some(("rrsnapshot", _)) => {}
                    _ => return Err(unsupported(format!("-icount {p}"), "rewind takes shift=N|auto, rr=record|replay, rrfile=F")),
                }
            }
            let shift = shift.unwrap_or_else(|| "0".into());
            if let Some(mode) = mode {
                if shift != "0" && shift != "auto" {
                    return Err(unsupported(
                        opt(),
                        "record/replay runs with shift=0 (one instruction per ns); use shift=0 or auto",
                    ));
                }
                if !matches!(mode.as_str(), "record" | "replay") {
                    return Err(unsupported(opt(), "rr= is record or replay"));
                }
                let file = file.ok_or_else(|| unsupported(opt(), "rr= needs rrfile=FILE"))?;
                *rr = Some((mode, file));
            } else if shift != "auto" {
                out.push("--icount-shift".into());
                out.push(shift.into());
            }
        }
        "rtc" => {
            for p in v.split(',') {
                match p.split_once('=') {
                    Some(("base", "utc")) | Some(("clock", "host" | "vm" | "rt")) => {}
                    Some(("driftfix", _)) => {}
                    _ => {
                        return Err(unsupported(
                            format!("-rtc {p}"),
                            "rewind's RTC starts at the host's UTC time (base=utc); the value is recorded",
                        ))
                    }
                }
            }
        }
        "object" => {
            let kind = v.split(',').next().unwrap_or("");
            if !matches!(kind, "rng-random" | "rng-builtin") {
                return Err(unsupported(
                    opt(),
                    "rewind takes -object rng-random/rng-builtin only (virtio-rng's entropy always comes from the host, recorded)",
                ));
            }
        }
        // QEMU's TCG is rewind's default engine; rewind's own engines pass through.
        "accel" if v.split(',').next() == Some("tcg") => {}
        "accel" if matches!(v.split(',').next(), Some("jit" | "interp")) => {
            out.push("--accel".into());
            out.push(v.into());
        }
        "accel" | "enable-kvm" => {
            return Err(unsupported(
                if name == "accel" { opt() } else { "-enable-kvm".into() },
                "rewind counts every instruction: no hardware accelerator; its engines are -accel interp|jit (tcg = the default)",
            ))
        }
        "dtb" => {
            return Err(unsupported(
                opt(),
                "rewind builds the device tree from its devices (see it with -machine virt,dumpdtb=FILE)",
            ))
        }
        "no-reboot" => {
            return Err(unsupported(
                "-no-reboot",
                "a guest reboot restarts the machine in rewind; stop at the reboot with --max-instructions or a debugger",
            ))
        }
        "name" => {}
        "vga" if v == "none" => {}
        "nodefaults" => {}
        _ => return Err(unsupported(opt(), "rewind has no such device")),
    }
    Ok(())
}

/// `--serial chardev:ID` → the chardev's backend.
fn resolve_chardevs(
    out: &mut [OsString],
    chardevs: &[(String, String)],
) -> Result<(), Unsupported> {
    for a in out.iter_mut() {
        let Some(id) = a.to_str().and_then(|s| s.strip_prefix("chardev:")) else {
            continue;
        };
        let serial = chardevs
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| unsupported(format!("chardev:{id}"), "no -chardev with that id"))?;
        *a = serial.into();
    }
    Ok(())
}

/// `run … -icount rr=record,rrfile=F` is `record -o F …`; `rr=replay` is `replay F` (the trace
/// holds the machine, so the machine options are checked by the trace, not repeated).
fn record_replay(
    cmd: &str,
    out: Vec<OsString>,
    mode: &str,
    file: &str,
) -> Result<Vec<OsString>, Unsupported> {
    if cmd != "run" {
        return Err(unsupported(
            format!("-icount rr={mode}"),
            format!("QEMU's record/replay spelling goes with `rewind run`, not `rewind {cmd}`"),
        ));
    }
    let rest = out.into_iter().skip(1);
    if mode == "record" {
        let mut v: Vec<OsString> = vec!["record".into(), "-o".into(), file.into()];
        v.extend(rest);
        return Ok(v);
    }
    // Replay keeps only what a replay takes: the console, debuggers, the monitor.
    let mut v: Vec<OsString> = vec!["replay".into(), file.into()];
    let mut rest = rest.peekable();
    while let Some(a) = rest.next() {
        let keep_with_value = matches!(
            a.to_str(),
            Some("--serial" | "--gdb" | "--qmp" | "--sandbox")
        );
        if keep_with_value {
            v.push(a);
            if let Some(val) = rest.next() {
                v.push(val);
            }
        } else if matches!(a.to_str(), Some("-S"))
            || a.to_str().is_some_and(|s| s.starts_with("--gdb="))
        {
            v.push(a);
        } else if a.to_str().is_some_and(|s| s.starts_with("--"))
            && !a.to_str().is_some_and(|s| s.contains('='))
        {
            // A machine option and its value: the trace fixes the machine.
            if rest
                .peek()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('-'))
            {
                rest.next();
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Vec<String>, Unsupported> {
        translate(args.iter().map(OsString::from).collect()).map(|v| {
            v.into_iter()
                .map(|a| a.into_string().unwrap_or_default())
                .collect()
        })
    }

    #[test]
    fn a_qemu_line_becomes_rewinds() {
        let got = t(&[
            "run",
            "-M",
            "virt",
            "-m",
            "512M",
            "-smp",
            "1",
            "-nographic",
            "-cpu",
            "rv64,h=false",
            "-bios",
            "none",
            "-kernel",
            "k.elf",
            "-append",
            "console=ttyS0",
            "-serial",
            "mon:stdio",
            "-s",
            "-S",
        ])
        .unwrap();
        assert_eq!(
            got,
            [
                "run",
                "--memory",
                "512M",
                "--smp",
                "1",
                "--cpu",
                "rv64,h=false",
                "--bios",
                "none",
                "--kernel",
                "k.elf",
                "--append",
                "console=ttyS0",
                "--serial",
                "stdio",
                "--gdb=tcp::1234",
                "-S"
            ]
        );
    }

    #[test]
    fn rewinds_own_spelling_passes_through() {
        let args = [
            "record",
            "-o",
            "t.rwtrace",
            "--kernel",
            "k",
            "-q",
            "--serial",
            "null",
        ];
        assert_eq!(t(&args).unwrap(), args);
        assert_eq!(t(&["dump", "-kernel"]).unwrap(), ["dump", "-kernel"]);
    }

    #[test]
    fn icount_rr_picks_the_mode() {
        let rec = t(&[
            "run",
            "-kernel",
            "k",
            "-icount",
            "shift=0,rr=record,rrfile=f.rr",
        ])
        .unwrap();
        assert_eq!(rec, ["record", "-o", "f.rr", "--kernel", "k"]);
        let rep = t(&[
            "run",
            "-kernel",
            "k",
            "-nographic",
            "-serial",
            "null",
            "-icount",
            "shift=auto,rr=replay,rrfile=f.rr",
        ])
        .unwrap();
        assert_eq!(rep, ["replay", "f.rr", "--serial", "null"]);
        let e = t(&["run", "-icount", "shift=3,rr=record,rrfile=f"]).unwrap_err();
        assert!(e.to_string().contains("shift=0"), "{e}");
        assert_eq!(
            t(&["run", "-icount", "shift=2"]).unwrap(),
            ["run", "--icount-shift", "2"]
        );
    }

    #[test]
    fn chardev_sockets_feed_the_serial_port() {
        let got = t(&[
            "run",
            "-chardev",
            "socket,id=c0,path=/tmp/s,server=on,wait=off",
            "-serial",
            "chardev:c0",
        ])
        .unwrap();
        assert_eq!(got, ["run", "--serial", "unix:/tmp/s,server"]);
        let got = t(&[
            "run",
            "-chardev",
            "socket,id=c,host=127.0.0.1,port=4444,server=on",
            "-serial",
            "chardev:c",
        ])
        .unwrap();
        assert_eq!(got, ["run", "--serial", "tcp:127.0.0.1:4444,server"]);
        assert!(t(&["run", "-serial", "chardev:x"]).is_err());
    }

    #[test]
    fn accel_picks_an_engine() {
        assert_eq!(t(&["run", "-accel", "tcg"]).unwrap(), ["run"]);
        assert_eq!(
            t(&["record", "-accel", "jit"]).unwrap(),
            ["record", "--accel", "jit"]
        );
        assert_eq!(
            t(&["replay", "--accel", "interp"]).unwrap(),
            ["replay", "--accel", "interp"]
        );
        assert_eq!(
            t(&["run", "-accel", "jit,check=interp"]).unwrap(),
            ["run", "--accel", "jit,check=interp"]
        );
    }

    #[test]
    fn double_dash_qemu_options_are_qemus() {
        assert_eq!(
            t(&["run", "--smp", "cpus=2"]).unwrap(),
            ["run", "--smp", "2"]
        );
        assert!(t(&["run", "--accel", "kvm"])
            .unwrap_err()
            .to_string()
            .contains("accelerator"));
        assert_eq!(
            t(&["run", "--nographic", "--smp", "1"]).unwrap(),
            ["run", "--smp", "1"]
        );
        assert_eq!(
            t(&["run", "-smp", "cpus=4"]).unwrap(),
            ["run", "--smp", "4"]
        );
        assert_eq!(
            t(&["run", "-smp", "sockets=1,cores=2,threads=2"]).unwrap(),
            ["run", "--smp", "4"]
        );
        assert_eq!(
            t(&["run", "--append", "-x y", "-append", "-z"]).unwrap(),
            ["run", "--append", "-x y", "--append", "-z"]
        );
    }

    #[test]
    fn what_rewind_lacks_is_one_clear_line() {
        for (args, says) in [
            (&["run", "-accel", "kvm"][..], "accelerator"),
            (&["run", "-enable-kvm"][..], "accelerator"),
            (&["run", "-M", "sifive_u"][..], "virt"),
            (&["run", "-smp", "16"][..], "1 to 8 harts"),
            (&["run", "-smp", "2,maxcpus=4"][..], "hotplug"),
            (&["run", "-monitor", "stdio"][..], "QMP"),
            (&["run", "-dtb", "x.dtb"][..], "dumpdtb"),
            (&["run", "-vnc", ":0"][..], "not an option"),
            (&["run", "-kernel"][..], "needs a value"),
        ] {
            let e = t(args).unwrap_err().to_string();
            assert!(e.contains(says), "{args:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert_eq!(
            t(&["run", "-M", "virt,dumpdtb=x.dtb"]).unwrap(),
            ["run", "--dump-dtb", "x.dtb"]
        );
    }
}
