//! User-mode networking for rewind's virtio-net, in the manner of QEMU's `-netdev user` (slirp).
//!
//! The guest sees an Ethernet segment 10.0.2.0/24 with a gateway at 10.0.2.2 that answers ARP
//! and ping, a DHCP server handing out 10.0.2.15 (router 10.0.2.2, DNS 10.0.2.3), TCP
//! connections to 10.0.2.2:PORT proxied to the host's 127.0.0.1:PORT, and port forwards
//! (`hostfwd`) from a host loopback port to a guest port. IP and TCP are [`smoltcp`]'s; DHCP and
//! the ARP answer for 10.0.2.3 are built by hand here.
//!
//! This is the host side of the replay boundary: it uses host time and host sockets, and is only
//! ever created in run and record mode. Determinism comes from logging the frames it delivers.
//! [`UserNet`] is the stack itself (single-threaded, testable); [`spawn`] runs it on a thread.

mod dhcp;
mod phy;
mod thread;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, IpAddress, IpCidr, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

pub use thread::{spawn, NetThread, MAX_IN_FLIGHT};

/// The guest NIC's MAC address, QEMU's default for the first NIC.
pub const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The gateway's MAC address (slirp's: 52:55 followed by the IP address).
pub const GATEWAY_MAC: [u8; 6] = [0x52, 0x55, 10, 0, 2, 2];
/// The DNS address's MAC address (slirp's scheme).
pub const DNS_MAC: [u8; 6] = [0x52, 0x55, 10, 0, 2, 3];
/// The gateway, which is also the host as the guest sees it.
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// The address DHCP names as DNS server.
pub const DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// The address DHCP hands the guest.
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);
/// The network's prefix length (10.0.2.0/24).
pub const PREFIX_LEN: u8 = 24;
/// DHCP lease time in seconds (slirp's 24 h).
pub const LEASE_SECS: u32 = 86_400;
/// Largest Ethernet frame the stack sends or accepts (MTU 1500 plus the 14-byte header).
pub const MAX_FRAME: usize = 1514;

/// Per-connection TCP buffer size, each direction.
const TCP_BUFFER: usize = 256 * 1024;
/// Most connections at once (each holds two [`TCP_BUFFER`]s): past it, guest connections to
/// 10.0.2.2 are refused and hostfwd clients are closed at once.
pub const MAX_CONNECTIONS: usize = 128;
/// A proxy listener whose SYN never arrived is dropped after this long.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of the host-side connect for a guest connection to 10.0.2.2.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One port forward from the host into the guest (`hostfwd=tcp:ADDR:HPORT-:GPORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostFwd {
    /// Host address to listen on (loopback unless the user says otherwise).
    pub host_addr: Ipv4Addr,
    /// Host port to listen on.
    pub host_port: u16,
    /// Guest port the connections go to (at the DHCP address 10.0.2.15).
    pub guest_port: u16,
}

/// A malformed `hostfwd` rule or netdev option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

impl HostFwd {
    /// Parses QEMU's `[tcp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`; the guest address, if
    /// given, must be 10.0.2.15.
    pub fn parse(rule: &str) -> Result<HostFwd, ParseError> {
        let bad = |why: &str| ParseError(format!("hostfwd={rule}: {why}"));
        let (proto, rest) = rule
            .split_once(':')
            .ok_or_else(|| bad("expected [tcp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"))?;
        if !(proto.is_empty() || proto == "tcp") {
            return Err(bad("only tcp forwarding is supported"));
        }
        let (host, guest) = rest
            .split_once('-')
            .ok_or_else(|| bad("missing '-' between host and guest side"))?;
        let (haddr, hport) = host
            .rsplit_once(':')
            .ok_or_else(|| bad("host side must be [ADDR]:PORT"))?;
        let (gaddr, gport) = guest
            .rsplit_once(':')
            .ok_or_else(|| bad("guest side must be [ADDR]:PORT"))?;
        let host_addr = if haddr.is_empty() {
            Ipv4Addr::LOCALHOST
        } else {
            haddr
                .parse()
                .map_err(|_| bad("host address is not an IPv4 address"))?
        };
        if !gaddr.is_empty() && gaddr.parse::<Ipv4Addr>() != Ok(GUEST_IP) {
            return Err(bad("the guest address must be 10.0.2.15 (or empty)"));
        }
        let port = |p: &str| -> Result<u16, ParseError> {
            match p.parse::<u16>() {
                Ok(n) if n != 0 => Ok(n),
                _ => Err(bad("ports must be 1..=65535")),
            }
        };
        Ok(HostFwd {
            host_addr,
            host_port: port(hport)?,
            guest_port: port(gport)?,
        })
    }
}

impl std::fmt::Display for HostFwd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tcp:{}:{}-:{}",
            self.host_addr, self.host_port, self.guest_port
        )
    }
}

/// Settings of one user-mode network.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    /// Port forwards from the host into the guest.
    pub hostfwd: Vec<HostFwd>,
}

/// Failure to open the host side.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A hostfwd listener could not be opened.
    #[error("hostfwd {rule}: cannot listen: {source}")]
    Listen {
        /// The rule.
        rule: HostFwd,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The network thread could not be started.
    #[error("cannot start the network thread: {0}")]
    Thread(std::io::Error),
}

/// One TCP connection between a smoltcp socket and a host stream.
struct Conn {
    handle: SocketHandle,
    stream: TcpStream,
    /// The host side reached end of file (the socket has been closed towards the guest).
    host_eof: bool,
    /// The guest's FIN has been passed on to the host (`shutdown(Write)`).
    guest_eof: bool,
    /// When the socket was created (a proxy listener waits for its SYN only so long).
    created: Instant,
}

/// The user-mode network stack: frames from the guest in, frames for the guest out.
pub struct UserNet {
    iface: Interface,
    sockets: SocketSet<'static>,
    phy: phy::Phy,
    conns: Vec<Conn>,
    listeners: Vec<(TcpListener, HostFwd)>,
    /// Frames built here (DHCP, ARP for the DNS address), sent before smoltcp's.
    out: Vec<Vec<u8>>,
    next_port: u16,
    epoch: Instant,
}

impl std::fmt::Debug for UserNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserNet")
            .field("connections", &self.conns.len())
            .field("hostfwd", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl UserNet {
    /// Opens the hostfwd listeners and sets up the gateway.
    pub fn new(config: &NetConfig) -> Result<UserNet, NetError> {
        let mut listeners = Vec::new();
        for rule in &config.hostfwd {
            let addr = SocketAddrV4::new(rule.host_addr, rule.host_port);
            let l = TcpListener::bind(addr)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|source| NetError::Listen {
                    rule: *rule,
                    source,
                })?;
            listeners.push((l, *rule));
        }
        let epoch = Instant::now();
        let mut phy = phy::Phy::default();
        let mut cfg = Config::new(EthernetAddress(GATEWAY_MAC).into());
        // Fixed, so the stack's choices (initial sequence numbers) do not depend on the OS.
        cfg.random_seed = 0x7265_7769_6e64;
        let mut iface = Interface::new(cfg, &mut phy, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            // A fresh interface has room for several addresses.
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(GATEWAY_IP), PREFIX_LEN));
        });
        Ok(UserNet {
            iface,
            sockets: SocketSet::new(Vec::new()),
            phy,
            conns: Vec::new(),
            listeners,
            out: Vec::new(),
            next_port: 49152,
            epoch,
        })
    }

    /// The host ports the hostfwd rules listen on (useful when a rule asked for port 0).
    pub fn hostfwd_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    /// Takes one frame the guest sent.
    pub fn guest_frame(&mut self, frame: &[u8]) {
        if frame.len() > MAX_FRAME + 4 {
            return;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        match eth.ethertype() {
            EthernetProtocol::Arp => {
                if let Some(reply) = arp_for_dns(&eth) {
                    self.out.push(reply);
                    return;
                }
            }
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                    return;
                };
                match ip.next_header() {
                    IpProtocol::Udp => {
                        if let Ok(udp) = UdpPacket::new_checked(ip.payload()) {
                            if udp.dst_port() == dhcp::SERVER_PORT {
                                if let Some(reply) = dhcp::reply(eth.src_addr(), udp.payload()) {
                                    self.out.push(reply);
                                }
                                return;
                            }
                        }
                    }
                    IpProtocol::Tcp if ip.dst_addr() == GATEWAY_IP => {
                        if let Ok(tcp) = TcpPacket::new_checked(ip.payload()) {
                            if tcp.syn() && !tcp.ack() {
                                self.prepare_proxy(ip.src_addr(), tcp.src_port(), tcp.dst_port());
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        self.phy.rx.push_back(frame.to_vec());
        // At once, so a proxy listener is taken by its SYN before the next SYN is looked at.
        let now = self.now();
        while self
            .iface
            .poll_ingress_single(now, &mut self.phy, &mut self.sockets)
            != smoltcp::iface::PollIngressSingleResult::None
        {}
    }

    /// A guest SYN to 10.0.2.2:port: connect to the host's loopback port and, if that works,
    /// put a listening socket there for the SYN to land on. Otherwise smoltcp answers with a
    /// reset, which the guest sees as "connection refused".
    fn prepare_proxy(&mut self, src: Ipv4Addr, src_port: u16, port: u16) {
        let ready = self.conns.iter().any(|c| {
            let s = self.sockets.get::<tcp::Socket>(c.handle);
            if s.state() == tcp::State::Listen {
                s.listen_endpoint().port == port
            } else {
                s.local_endpoint().map(|e| e.port) == Some(port)
                    && s.remote_endpoint() == Some((IpAddress::Ipv4(src), src_port).into())
            }
        });
        if ready || self.conns.len() >= MAX_CONNECTIONS {
            return;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let Ok(stream) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
            return;
        };
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let mut socket = new_socket();
        if socket.listen((IpAddress::Ipv4(GATEWAY_IP), port)).is_err() {
            return;
        }
        let handle = self.sockets.add(socket);
        self.conns.push(Conn {
            handle,
            stream,
            host_eof: false,
            guest_eof: false,
            created: Instant::now(),
        });
    }

    /// Accepts hostfwd clients: each becomes a connection from 10.0.2.2 to the guest port.
    fn accept_hostfwd(&mut self) {
        for i in 0..self.listeners.len() {
            loop {
                let (stream, rule) = match self.listeners[i].0.accept() {
                    Ok((s, _)) => (s, self.listeners[i].1),
                    Err(_) => break,
                };
                if self.conns.len() >= MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let local = self.next_port;
                self.next_port = if self.next_port == u16::MAX {
                    49152
                } else {
                    self.next_port + 1
                };
                let mut socket = new_socket();
                let remote = (IpAddress::Ipv4(GUEST_IP), rule.guest_port);
                let cx = self.iface.context();
                if socket
                    .connect(cx, remote, (IpAddress::Ipv4(GATEWAY_IP), local))
                    .is_err()
                {
                    continue;
                }
                let handle = self.sockets.add(socket);
                self.conns.push(Conn {
                    handle,
                    stream,
                    host_eof: false,
                    guest_eof: false,
                    created: Instant::now(),
                });
            }
        }
    }

    /// Moves bytes between each socket and its host stream; drops finished connections.
    fn pump(&mut self) {
        let now = Instant::now();
        let sockets = &mut self.sockets;
        self.conns.retain_mut(|c| {
            let s = sockets.get_mut::<tcp::Socket>(c.handle);
            let keep = pump_one(c, s, now);
            if !keep {
                sockets.remove(c.handle);
            }
            keep
        });
    }

    /// Runs the stack: handles the frames taken so far, moves data to and from the host, and
    /// returns at most `budget` frames from smoltcp (plus any DHCP/ARP answers) for the guest.
    pub fn poll(&mut self, budget: usize) -> Vec<Vec<u8>> {
        self.accept_hostfwd();
        self.phy.budget = budget;
        let now = self.now();
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        self.pump();
        let now = self.now();
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        let mut frames = std::mem::take(&mut self.out);
        frames.append(&mut self.phy.tx);
        frames
    }

    /// How long the caller may wait before the next [`UserNet::poll`] if nothing arrives: the
    /// stack's own timers, shortened while host sockets may produce data.
    pub fn poll_delay(&mut self) -> Duration {
        let now = self.now();
        let stack = self
            .iface
            .poll_delay(now, &self.sockets)
            .map(|d| Duration::from_micros(d.total_micros()))
            .unwrap_or(Duration::from_millis(50));
        let host = if !self.conns.is_empty() {
            Duration::from_millis(1)
        } else if !self.listeners.is_empty() {
            Duration::from_millis(10)
        } else {
            Duration::from_millis(50)
        };
        stack.min(host)
    }

    /// Open connections (proxied or forwarded), including ones waiting for their SYN.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

fn new_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    )
}

/// One connection's data movement; false when it is finished and can go.
fn pump_one(c: &mut Conn, s: &mut tcp::Socket, now: Instant) -> bool {
    match s.state() {
        tcp::State::Closed => return false,
        tcp::State::Listen => return now.duration_since(c.created) < LISTEN_TIMEOUT,
        _ => {}
    }
    // Guest -> host.
    while s.can_recv() {
        let r = s.recv(|buf| match c.stream.write(buf) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match r {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::WouldBlock => break,
            Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
            _ => {
                s.abort();
                return true;
            }
        }
    }
    // The guest's FIN, once everything before it went to the host.
    let fin_received = matches!(
        s.state(),
        tcp::State::CloseWait | tcp::State::LastAck | tcp::State::Closing
    );
    if !c.guest_eof && fin_received && s.recv_queue() == 0 {
        c.guest_eof = true;
        let _ = c.stream.shutdown(Shutdown::Write);
    }
    // Host -> guest.
    while !c.host_eof && s.can_send() {
        let r = s.send(|buf| match c.stream.read(buf) {
            Ok(n) => (n, Ok(n)),
            Err(e) => (0, Err(e)),
        });
        match r {
            Ok(Ok(0)) => {
                c.host_eof = true;
                s.close();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::WouldBlock => break,
            Ok(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
            _ => {
                s.abort();
                return true;
            }
        }
    }
    // Both directions are done once the socket waits out TIME-WAIT; nobody needs it after.
    s.state() != tcp::State::TimeWait
}

/// The answer to an ARP request for the DNS address (smoltcp answers for the gateway).
fn arp_for_dns(eth: &EthernetFrame<&[u8]>) -> Option<Vec<u8>> {
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    let ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr,
        source_protocol_addr,
        target_protocol_addr,
        ..
    } = ArpRepr::parse(&arp).ok()?
    else {
        return None;
    };
    if target_protocol_addr != DNS_IP {
        return None;
    }
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(DNS_MAC),
        source_protocol_addr: DNS_IP,
        target_hardware_addr: source_hardware_addr,
        target_protocol_addr: source_protocol_addr,
    };
    let eth_repr = EthernetRepr {
        src_addr: EthernetAddress(DNS_MAC),
        dst_addr: source_hardware_addr,
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth_repr.buffer_len() + reply.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth_repr.emit(&mut frame);
    reply.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    Some(buf)
}

#[cfg(test)]
mod tests;
