//! Network frames through the boundary: a real user-mode network in record, the log in replay.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use rewind_log::{TraceHeader, TraceReader, TraceWriter};

use super::*;
use crate::{BoundaryConfig, CheckSettings, GuestRequest, ReplayStop};

/// A DHCPDISCOVER from the guest's MAC, built by hand (checksums zero: the user-mode DHCP
/// server does not need them).
fn dhcp_discover() -> Vec<u8> {
    let mac = rewind_usernet::GUEST_MAC;
    let mut bootp = vec![0u8; 240];
    bootp[0] = 1; // BOOTREQUEST
    bootp[1] = 1; // Ethernet
    bootp[2] = 6;
    bootp[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    bootp[28..34].copy_from_slice(&mac);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 1, 255]);
    let udp_len = 8 + bootp.len();
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + udp_len;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 255]);
    f.extend_from_slice(&68u16.to_be_bytes());
    f.extend_from_slice(&67u16.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&bootp);
    f
}

fn record(dir: &tempfile::TempDir) -> (std::path::PathBuf, Vec<u8>) {
    let p = dir.path().join("net.rwtrace");
    let h = TraceHeader::new("0.1.0", serde_json::Value::Null, 0, vec![], 0);
    let w = TraceWriter::create(&p, &h).unwrap();
    let checks = CheckSettings {
        interval: 0,
        registers_every: 1,
    };
    let mut b = Boundary::record(&BoundaryConfig::default(), w, checks).unwrap();
    b.open_net(3, &NetConfig::default()).unwrap();
    b.net_transmit(1000, 3, &dhcp_discover());
    // The offer comes back from the network thread; it is taken at a checkpoint.
    let start = Instant::now();
    let mut icount = 1000;
    let offer = loop {
        icount += 10;
        b.wait_for_input(Some(Duration::from_millis(50)));
        b.checkpoint(icount);
        if let Some(DeviceEvent::NetPacket { device, bytes }) = b.take_device_event(icount) {
            assert_eq!(device, 3);
            break bytes;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no DHCP offer");
    };
    // An ethernet frame from the gateway to the guest, carrying UDP 67 -> 68.
    assert_eq!(&offer[0..6], &rewind_usernet::GUEST_MAC);
    assert_eq!(&offer[6..12], &rewind_usernet::GATEWAY_MAC);
    assert_eq!(&offer[34..38], &[0, 67, 0, 68]);
    b.guest_request(icount + 5, GuestRequest::Exit(0));
    b.finish_recording(icount + 5, 7).unwrap();
    (p, offer)
}

#[test]
fn replay_delivers_the_logged_frames_and_checks_the_sent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (p, offer) = record(&dir);
    let mut reader = TraceReader::open(&p).unwrap();
    let mut kinds = Vec::new();
    while let Some(e) = reader.next_event().unwrap() {
        kinds.push((e.icount, e.event.kind()));
    }
    assert_eq!(kinds[0], (1000, rewind_log::EventKind::NetSent));
    assert_eq!(kinds[1].1, rewind_log::EventKind::NetPacket);

    // Replay: the same frame sent at the same icount passes, the offer comes from the log.
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    // A replay opens nothing: a hostfwd port stays free.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = NetConfig {
        hostfwd: vec![HostFwd {
            host_addr: Ipv4Addr::LOCALHOST,
            host_port: port,
            guest_port: 80,
        }],
    };
    assert!(r.open_net(3, &cfg).unwrap().is_empty());
    assert!(!r.net_live());
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    r.net_transmit(1000, 3, &dhcp_discover());
    assert!(!r.has_failure());
    let at = kinds[1].0;
    r.checkpoint(at);
    assert_eq!(
        r.take_device_event(at),
        Some(DeviceEvent::NetPacket {
            device: 3,
            bytes: offer
        })
    );
    r.check_position(at);
    assert!(!r.has_failure());

    // A guest that sends something else is stopped at that frame.
    let mut r = Boundary::replay(TraceReader::open(&p).unwrap());
    let mut other = dhcp_discover();
    other[50] ^= 1;
    other.push(0);
    r.net_transmit(1000, 3, &other);
    match r.take_failure() {
        Some(ReplayStop::Diverged(d)) => {
            assert_eq!(d.icount, 1000);
            let len = other.len();
            assert!(
                d.asked.contains("network frame #0") && d.asked.contains(&format!("{len} bytes")),
                "{}",
                d.asked
            );
            let next = d.log_next.expect("the logged frame");
            assert_eq!(next.kind, rewind_log::EventKind::NetSent);
            assert!(
                next.summary.contains(&format!("len={}", len - 1)),
                "{}",
                next.summary
            );
        }
        other => panic!("expected a divergence, got {other:?}"),
    }
}
