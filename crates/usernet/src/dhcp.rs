//! The DHCP server of the user-mode network: one client, one address (10.0.2.15), as slirp's
//! with its defaults.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    UdpPacket, UdpRepr,
};

use crate::{DNS_IP, GATEWAY_IP, GATEWAY_MAC, GUEST_IP, LEASE_SECS};

/// The server's UDP port.
pub(crate) const SERVER_PORT: u16 = 67;
/// The client's UDP port.
pub(crate) const CLIENT_PORT: u16 = 68;
/// DHCP option: domain name servers.
const OPT_DNS: u8 = 6;

/// The Ethernet frame answering one DHCP message from `client` (None: no answer is due).
pub(crate) fn reply(client: EthernetAddress, payload: &[u8]) -> Option<Vec<u8>> {
    let packet = DhcpPacket::new_checked(payload).ok()?;
    let req = DhcpRepr::parse(&packet).ok()?;
    let message_type = match req.message_type {
        DhcpMessageType::Discover => DhcpMessageType::Offer,
        DhcpMessageType::Request => {
            // A renewal names the address in ciaddr, a selection in the option.
            let wanted = req.requested_ip.or(if req.client_ip.is_unspecified() {
                None
            } else {
                Some(req.client_ip)
            });
            match wanted {
                None => DhcpMessageType::Ack,
                Some(a) if a == GUEST_IP => DhcpMessageType::Ack,
                Some(_) => DhcpMessageType::Nak,
            }
        }
        _ => return None,
    };
    let nak = message_type == DhcpMessageType::Nak;
    let dns = DNS_IP.octets();
    let extra = [DhcpOption {
        kind: OPT_DNS,
        data: &dns,
    }];
    let repr = DhcpRepr {
        message_type,
        transaction_id: req.transaction_id,
        secs: 0,
        client_hardware_address: req.client_hardware_address,
        client_ip: Ipv4Address::UNSPECIFIED,
        your_ip: if nak {
            Ipv4Address::UNSPECIFIED
        } else {
            GUEST_IP
        },
        server_ip: if nak {
            Ipv4Address::UNSPECIFIED
        } else {
            GATEWAY_IP
        },
        router: (!nak).then_some(GATEWAY_IP),
        subnet_mask: (!nak).then_some(Ipv4Address::new(255, 255, 255, 0)),
        relay_agent_ip: Ipv4Address::UNSPECIFIED,
        broadcast: req.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(GATEWAY_IP),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: (!nak).then_some(LEASE_SECS),
        renew_duration: None,
        rebind_duration: None,
        additional_options: if nak { &[] } else { &extra },
    };
    let dhcp_len = repr.buffer_len();
    let udp = UdpRepr {
        src_port: SERVER_PORT,
        dst_port: CLIENT_PORT,
    };
    let ip = Ipv4Repr {
        src_addr: GATEWAY_IP,
        dst_addr: Ipv4Address::BROADCAST,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + dhcp_len,
        hop_limit: 64,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(GATEWAY_MAC),
        dst_addr: client,
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let caps = ChecksumCapabilities::default();
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut ipp = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut ipp, &caps);
    let mut udpp = UdpPacket::new_unchecked(ipp.payload_mut());
    let mut ok = true;
    udp.emit(
        &mut udpp,
        &IpAddress::Ipv4(GATEWAY_IP),
        &IpAddress::Ipv4(Ipv4Address::BROADCAST),
        dhcp_len,
        |p| ok = repr.emit(&mut DhcpPacket::new_unchecked(p)).is_ok(),
        &caps,
    );
    ok.then_some(buf)
}
