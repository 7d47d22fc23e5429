//! Helpers for the relay's loopback tests: a client socket that speaks RTP/RTCP.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_relay::core::{CoreConfig, LegStats};
use supernode_relay::{LegId, LegInfo, LegRequest, Relay, RelayConfig, SessionId};

/// A relay on 127.0.0.1 with one worker, ports from a range unique to the test.
pub fn relay(port_base: u16, core: CoreConfig) -> Relay {
    Relay::start(RelayConfig {
        port_range: (port_base, port_base + 99),
        workers: 1,
        core,
        ..RelayConfig::default()
    })
    .expect("relay starts")
}

/// A client endpoint on loopback.
pub struct Client {
    pub sock: UdpSocket,
}

impl Client {
    pub fn new() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(800)))
            .unwrap();
        Self { sock }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn send(&self, to: SocketAddr, data: &[u8]) {
        self.sock.send_to(data, to).unwrap();
    }

    /// Receives one datagram, or `None` after the read timeout.
    pub fn recv(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 2048];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => Some((buf[..n].to_vec(), from)),
            Err(_) => None,
        }
    }

    /// Receives datagrams until the socket is quiet for the read timeout.
    pub fn recv_all(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((d, _)) = self.recv() {
            out.push(d);
        }
        out
    }

    /// Receives RTP packets only (skipping RTCP) until quiet.
    pub fn recv_rtp(&self) -> Vec<Vec<u8>> {
        self.recv_all()
            .into_iter()
            .filter(|d| d.len() > 1 && !(192..=223).contains(&d[1]))
            .collect()
    }
}

/// An RTP packet.
pub fn rtp(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(111),
        sequence_number: seq,
        timestamp: ts,
        ssrc: Ssrc(ssrc),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(payload, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// (ssrc, seq, ts, payload) of an RTP packet.
pub fn fields(pkt: &[u8]) -> (u32, u16, u32, Vec<u8>) {
    let p = RtpPacket::parse(pkt).expect("valid RTP");
    (
        p.ssrc().0,
        p.sequence_number(),
        p.timestamp(),
        p.payload().to_vec(),
    )
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

pub fn stats(relay: &Relay, leg: LegId) -> LegStats {
    relay.leg_stats(leg).expect("leg stats")
}

/// A session of two latching legs on `relay`, connected both ways.
pub fn latching_pair(relay: &Relay) -> (SessionId, Vec<LegInfo>) {
    latching_pair_at(relay, LegRequest::latching().clock_rate)
}

/// [`latching_pair`] with streams of a `clock_rate` Hz media clock (90 kHz: video, the
/// streams the relay keeps for retransmission).
pub fn latching_pair_at(relay: &Relay, clock_rate: u32) -> (SessionId, Vec<LegInfo>) {
    let leg = || LegRequest {
        clock_rate,
        ..LegRequest::latching()
    };
    let (s, legs) = relay.create_session(vec![leg(), leg()]).expect("session");
    relay.connect_both(legs[0].id, legs[1].id).expect("connect");
    (s, legs)
}

/// Waits (up to 2 s) until `leg`'s statistics satisfy `f`.
pub fn wait_stats(relay: &Relay, leg: LegId, f: impl Fn(&LegStats) -> bool) -> bool {
    wait_until(Duration::from_secs(2), || f(&stats(relay, leg)))
}
