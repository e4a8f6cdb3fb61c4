//! The stack against hand-built frames and against a second smoltcp interface playing the
//! guest.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::tcp;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress,
    EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpCidr, IpProtocol, Ipv4Address,
    Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

use super::*;

fn eth(dst: [u8; 6], ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress(GUEST_MAC),
        dst_addr: EthernetAddress(dst),
        ethertype,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut f);
    f.payload_mut().copy_from_slice(payload);
    buf
}

fn arp_request(target: Ipv4Address) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(GUEST_MAC),
        source_protocol_addr: GUEST_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    let mut p = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut p[..]));
    eth([0xff; 6], EthernetProtocol::Arp, &p)
}

fn parse_arp_reply(frame: &[u8]) -> (EthernetAddress, Ipv4Address, EthernetAddress) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(f.ethertype(), EthernetProtocol::Arp);
    match ArpRepr::parse(&ArpPacket::new_checked(f.payload()).unwrap()).unwrap() {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_hardware_addr,
            ..
        } => {
            assert_eq!(operation, ArpOperation::Reply);
            (
                source_hardware_addr,
                source_protocol_addr,
                target_hardware_addr,
            )
        }
        _ => panic!("not an IPv4 ARP"),
    }
}

#[test]
fn answers_arp_for_gateway_and_dns_only() {
    let mut net = UserNet::new(&NetConfig::default()).unwrap();
    net.guest_frame(&arp_request(GATEWAY_IP));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    let (mac, ip, to) = parse_arp_reply(&out[0]);
    assert_eq!(mac.0, GATEWAY_MAC);
    assert_eq!(ip, GATEWAY_IP);
    assert_eq!(to.0, GUEST_MAC);

    net.guest_frame(&arp_request(DNS_IP));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    let (mac, ip, _) = parse_arp_reply(&out[0]);
    assert_eq!(mac.0, DNS_MAC);
    assert_eq!(ip, DNS_IP);

    net.guest_frame(&arp_request(Ipv4Address::new(10, 0, 2, 77)));
    assert!(net.poll(MAX_IN_FLIGHT).is_empty());
}

fn dhcp_frame(kind: DhcpMessageType, requested: Option<Ipv4Address>) -> Vec<u8> {
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: 0x1234_5678,
        secs: 0,
        client_hardware_address: EthernetAddress(GUEST_MAC),
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: Ipv4Address::UNSPECIFIED,
        server_ip: Ipv4Address::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: false,
        requested_ip: requested,
        client_identifier: None,
        server_identifier: None,
        parameter_request_list: Some(&[1, 3, 6, 51]),
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    };
    let mut dhcp = vec![0u8; repr.buffer_len()];
    repr.emit(&mut DhcpPacket::new_unchecked(&mut dhcp[..]))
        .unwrap();
    let udp = UdpRepr {
        src_port: 68,
        dst_port: 67,
    };
    let ip = Ipv4Repr {
        src_addr: Ipv4Address::UNSPECIFIED,
        dst_addr: Ipv4Address::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: 8 + dhcp.len(),
        hop_limit: 64,
    };
    let mut p = vec![0u8; ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut ipp = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.emit(&mut ipp, &caps);
    udp.emit(
        &mut UdpPacket::new_unchecked(ipp.payload_mut()),
        &IpAddress::Ipv4(Ipv4Address::UNSPECIFIED),
        &IpAddress::Ipv4(Ipv4Address::BROADCAST),
        dhcp.len(),
        |b| b.copy_from_slice(&dhcp),
        &caps,
    );
    eth([0xff; 6], EthernetProtocol::Ipv4, &p)
}

/// The reply's DHCP fields, with checksums verified on the way.
fn parse_dhcp(
    frame: &[u8],
) -> (
    DhcpMessageType,
    u32,
    Ipv4Address,
    Option<Ipv4Address>,
    Option<u32>,
    Vec<u8>,
) {
    let f = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(f.dst_addr().0, GUEST_MAC);
    assert_eq!(f.src_addr().0, GATEWAY_MAC);
    let caps = ChecksumCapabilities::default();
    let ipp = Ipv4Packet::new_checked(f.payload()).unwrap();
    let ip = Ipv4Repr::parse(&ipp, &caps).unwrap();
    assert_eq!(ip.src_addr, GATEWAY_IP);
    let udpp = UdpPacket::new_checked(ipp.payload()).unwrap();
    let udp = UdpRepr::parse(
        &udpp,
        &IpAddress::Ipv4(ip.src_addr),
        &IpAddress::Ipv4(ip.dst_addr),
        &caps,
    )
    .unwrap();
    assert_eq!((udp.src_port, udp.dst_port), (67, 68));
    let dp = DhcpPacket::new_checked(udpp.payload()).unwrap();
    let d = DhcpRepr::parse(&dp).unwrap();
    assert_eq!(d.server_identifier, Some(GATEWAY_IP));
    let dns = d
        .dns_servers
        .map(|v| v.iter().flat_map(|a| a.octets()).collect())
        .unwrap_or_default();
    (
        d.message_type,
        d.transaction_id,
        d.your_ip,
        d.router,
        d.lease_duration,
        dns,
    )
}

#[test]
fn dhcp_offers_and_acks_the_guest_address() {
    let mut net = UserNet::new(&NetConfig::default()).unwrap();
    net.guest_frame(&dhcp_frame(DhcpMessageType::Discover, None));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    let (kind, xid, yiaddr, router, lease, dns) = parse_dhcp(&out[0]);
    assert_eq!(kind, DhcpMessageType::Offer);
    assert_eq!(xid, 0x1234_5678);
    assert_eq!(yiaddr, GUEST_IP);
    assert_eq!(router, Some(GATEWAY_IP));
    assert_eq!(lease, Some(LEASE_SECS));
    assert_eq!(dns, DNS_IP.octets());

    net.guest_frame(&dhcp_frame(DhcpMessageType::Request, Some(GUEST_IP)));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    let (kind, _, yiaddr, ..) = parse_dhcp(&out[0]);
    assert_eq!(kind, DhcpMessageType::Ack);
    assert_eq!(yiaddr, GUEST_IP);

    net.guest_frame(&dhcp_frame(
        DhcpMessageType::Request,
        Some(Ipv4Address::new(10, 0, 2, 99)),
    ));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    assert_eq!(parse_dhcp(&out[0]).0, DhcpMessageType::Nak);

    // Garbage and truncated DHCP get no answer and no panic.
    let mut broken = dhcp_frame(DhcpMessageType::Discover, None);
    broken.truncate(60);
    net.guest_frame(&broken);
    net.guest_frame(&[0u8; 3]);
    assert!(net.poll(MAX_IN_FLIGHT).is_empty());
}

/// A smoltcp interface standing in for the guest, wired to a [`UserNet`].
struct Guest {
    iface: Interface,
    phy: phy::Phy,
    sockets: SocketSet<'static>,
    epoch: Instant,
}

impl Guest {
    fn new() -> Guest {
        let mut phy = phy::Phy::default();
        let cfg = Config::new(EthernetAddress(GUEST_MAC).into());
        let mut iface = Interface::new(cfg, &mut phy, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(GUEST_IP), 24)).unwrap();
        });
        Guest {
            iface,
            phy,
            sockets: SocketSet::new(Vec::new()),
            epoch: Instant::now(),
        }
    }

    /// One round: the guest's frames to the stack, the stack's frames to the guest.
    fn step(&mut self, net: &mut UserNet) {
        let now = smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64);
        self.phy.budget = usize::MAX;
        self.iface.poll(now, &mut self.phy, &mut self.sockets);
        for f in self.phy.tx.drain(..) {
            net.guest_frame(&f);
        }
        self.phy.rx.extend(net.poll(MAX_IN_FLIGHT));
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn guest_tcp_to_gateway_reaches_host_loopback() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expect = body.clone();
    let host = std::thread::spawn(move || {
        let (mut s, _) = server.accept().unwrap();
        let mut req = [0u8; 5];
        s.read_exact(&mut req).unwrap();
        assert_eq!(&req, b"hello");
        s.write_all(&body).unwrap();
    });
    let mut net = UserNet::new(&NetConfig::default()).unwrap();
    let mut g = Guest::new();
    let h = g.sockets.add(new_socket());
    let cx = g.iface.context();
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(cx, (IpAddress::Ipv4(GATEWAY_IP), port), 40000)
        .unwrap();
    let mut got = Vec::new();
    let mut sent = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        g.step(&mut net);
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        if !sent && s.can_send() {
            s.send_slice(b"hello").unwrap();
            sent = true;
        }
        while s.can_recv() {
            s.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        if sent && !s.may_recv() {
            break;
        }
    }
    host.join().unwrap();
    assert_eq!(got.len(), expect.len());
    assert!(got == expect);
}

#[test]
fn guest_tcp_to_closed_host_port_is_refused() {
    // A port nobody listens on: bind, learn it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut net = UserNet::new(&NetConfig::default()).unwrap();
    let mut g = Guest::new();
    let h = g.sockets.add(new_socket());
    let cx = g.iface.context();
    g.sockets
        .get_mut::<tcp::Socket>(h)
        .connect(cx, (IpAddress::Ipv4(GATEWAY_IP), port), 40001)
        .unwrap();
    for _ in 0..50 {
        g.step(&mut net);
    }
    assert_eq!(g.sockets.get::<tcp::Socket>(h).state(), tcp::State::Closed);
    assert_eq!(net.connections(), 0);
}

#[test]
fn hostfwd_connects_host_client_to_guest_server() {
    let rule = HostFwd {
        host_addr: std::net::Ipv4Addr::LOCALHOST,
        host_port: 0,
        guest_port: 8080,
    };
    let mut net = UserNet::new(&NetConfig {
        hostfwd: vec![rule],
    })
    .unwrap();
    let addr = net.hostfwd_addrs()[0];
    let mut g = Guest::new();
    let h = g.sockets.add(new_socket());
    g.sockets.get_mut::<tcp::Socket>(h).listen(8080).unwrap();
    let client = std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"ping from host").unwrap();
        let mut reply = Vec::new();
        c.read_to_end(&mut reply).unwrap();
        reply
    });
    let mut got = Vec::new();
    let mut answered = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !client.is_finished() {
        g.step(&mut net);
        let s = g.sockets.get_mut::<tcp::Socket>(h);
        while s.can_recv() {
            s.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        if !answered && got == b"ping from host" {
            s.send_slice(b"pong from guest").unwrap();
            s.close();
            answered = true;
        }
    }
    assert_eq!(got, b"ping from host");
    assert_eq!(client.join().unwrap(), b"pong from guest");
}

#[test]
fn hostfwd_rules_parse_like_qemu() {
    let r = HostFwd::parse("tcp:127.0.0.1:5555-:22").unwrap();
    assert_eq!(
        r,
        HostFwd {
            host_addr: std::net::Ipv4Addr::LOCALHOST,
            host_port: 5555,
            guest_port: 22
        }
    );
    assert_eq!(
        HostFwd::parse("::8080-10.0.2.15:80").unwrap().guest_port,
        80
    );
    assert_eq!(r.to_string(), "tcp:127.0.0.1:5555-:22");
    assert!(HostFwd::parse("udp::1-:2").is_err());
    assert!(HostFwd::parse("tcp::1-10.0.2.9:2").is_err());
    assert!(HostFwd::parse("tcp::0-:2").is_err());
    assert!(HostFwd::parse("tcp::1:2").is_err());
    assert!(HostFwd::parse("tcp::x-:2").is_err());
}

#[test]
fn thread_answers_through_its_channels() {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = spawn(&NetConfig::default(), move |f| tx.send(f).is_ok()).unwrap();
    t.guest_frames
        .send(dhcp_frame(DhcpMessageType::Discover, None))
        .unwrap();
    let f = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(parse_dhcp(&f).0, DhcpMessageType::Offer);
    assert_eq!(t.in_flight.load(std::sync::atomic::Ordering::SeqCst), 1);
    drop(t);
}

#[test]
fn gateway_answers_ping() {
    use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr};
    let mut net = UserNet::new(&NetConfig::default()).unwrap();
    // The guest asks for the gateway's MAC first, as a real one does (and so is known).
    net.guest_frame(&arp_request(GATEWAY_IP));
    assert_eq!(net.poll(MAX_IN_FLIGHT).len(), 1);
    let caps = ChecksumCapabilities::default();
    let data = b"rewind ping";
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data,
    };
    let ip = Ipv4Repr {
        src_addr: GUEST_IP,
        dst_addr: GATEWAY_IP,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: 64,
    };
    let mut p = vec![0u8; ip.buffer_len() + ip.payload_len];
    let mut ipp = Ipv4Packet::new_unchecked(&mut p[..]);
    ip.emit(&mut ipp, &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(ipp.payload_mut()), &caps);
    net.guest_frame(&eth(GATEWAY_MAC, EthernetProtocol::Ipv4, &p));
    let out = net.poll(MAX_IN_FLIGHT);
    assert_eq!(out.len(), 1);
    let f = EthernetFrame::new_checked(&out[0][..]).unwrap();
    assert_eq!(f.dst_addr().0, GUEST_MAC);
    let ipp = Ipv4Packet::new_checked(f.payload()).unwrap();
    let ip = Ipv4Repr::parse(&ipp, &caps).unwrap();
    assert_eq!((ip.src_addr, ip.dst_addr), (GATEWAY_IP, GUEST_IP));
    let reply = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(ipp.payload()).unwrap(), &caps);
    assert_eq!(
        reply.unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 7,
            data
        }
    );
}
