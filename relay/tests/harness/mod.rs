//! A sans-IO harness for the relay core: the core, a virtual clock, fake peers with inboxes,
//! and [`Harness::progress`] that moves datagrams between them until nothing is left to do
//! (quinn's `Pair`, str0m's `progress()`). Tests run in microseconds of real time per
//! virtual second: no sockets, no threads, no sleeps.
//!
//! How to drive it:
//!
//! ```ignore
//! let mut h = Harness::new(CoreConfig::default());
//! let [la, lb] = h.latching_pair();            // a session of two legs, connected both ways
//! let (a, b) = (h.peer(), h.peer());           // two clients, each an address with an inbox
//! h.send_rtp(b, lb, 0xB, 1, 0, b"latch");      // b latches leg `lb`
//! h.send_rtp(a, la, 0xA, 1, 0, b"hi");         // forwarded to b, at the current virtual time
//! assert_eq!(h.take_rtp(b)[0].payload, b"hi");
//! h.advance(Duration::from_secs(2));           // timers fire at their exact virtual times
//! ```
//!
//! **This file is the only one that calls the core's API** (`Core`, `LegSpec`, `Event`,
//! `TxBatch`, `LegStats`, the SRTP context): tests speak of sessions, legs, peers, RTP and
//! counters through the harness, so a change of the core's API (legs becoming transports
//! carrying streams, issue 10) is absorbed here.
//!
//! Model:
//! - every own-port leg gets a relay address `10.0.0.1:<20000 + socket slot>`; shared-port
//!   legs share `10.0.0.1:3478`; a freed leg's socket slot goes back to the pool, as the
//!   I/O shell closes its socket;
//! - a [`Peer`] is an address `192.0.2.1:<40000 + n>` with an inbox; what the core sends to an
//!   address that is no peer lands in the stranger sink ([`Harness::stranger_sink`]);
//! - the wire is instantaneous unless a peer's uplink goes through a seeded
//!   [`NetEmulator`] ([`Harness::set_uplink`]);
//! - [`Harness::progress`] hands every datagram due to the core, fires `handle_timeout`
//!   whenever the virtual clock has reached `poll_timeout`, delivers every transmit and
//!   collects the core's events, until idle. Every `send*` call runs it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::net::{NetEmulator, NetProfile, NetStats};
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtcp::{
    Nack, NackPair, Pli, RtcpCompound, RtcpPacket, WireList, write_compound,
};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_media::packet::stun::{Class, Method, StunAttr, StunWriter, TransactionId};
use supernode_relay::core::dtls::DtlsClient;
use supernode_relay::core::srtp::LegSrtp;
use supernode_relay::core::{
    Core, Event, IceCredentials, LegSpec, LegStats, PeerMode, ProcessorPort, SockSlot, StreamSpec,
    TxBatch,
};

pub use supernode_relay::core::{CoreError, StreamKind};

pub use supernode_relay::core::{BrowserCounters, BrowserSpec, DtlsIdentity, Fingerprint};

pub use supernode_relay::core::{CoreConfig, DropReason, RateCap, SrtpProfile};
pub use supernode_relay::{LegId, SessionId};

/// SRTP keys of a leg as the relay holds them (what its peer protects with, what the relay
/// protects with).
pub type RelaySrtpKeys = supernode_relay::core::LegSrtpKeys;

const RELAY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const PEER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const SHARED_PORT: u16 = 3478;

/// A fake client: an address with an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer {
    idx: usize,
    /// Its address, as the relay sees it.
    pub addr: SocketAddr,
}

/// A leg of a session, as the control plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Leg {
    /// Its id.
    pub id: LegId,
    /// Its session.
    pub session: SessionId,
    /// The relay address its peer sends to (and the relay sends from).
    pub local: SocketAddr,
}

/// One datagram on the virtual wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Source address.
    pub from: SocketAddr,
    /// Destination address.
    pub to: SocketAddr,
    /// Bytes.
    pub data: Vec<u8>,
    /// Virtual time of delivery, since the harness started.
    pub at: Duration,
}

impl Datagram {
    /// Whether it is RTP (RFC 7983 demultiplexing).
    pub fn is_rtp(&self) -> bool {
        classify(&self.data) == PacketKind::Rtp
    }

    /// Whether it is RTCP.
    pub fn is_rtcp(&self) -> bool {
        classify(&self.data) == PacketKind::Rtcp
    }

    /// Whether it is STUN.
    pub fn is_stun(&self) -> bool {
        classify(&self.data) == PacketKind::Stun
    }

    /// Whether it is DTLS.
    pub fn is_dtls(&self) -> bool {
        classify(&self.data) == PacketKind::Dtls
    }
}

/// The fields of a received (plain) RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtp {
    /// Source address (the relay address of the leg it came through).
    pub from: SocketAddr,
    /// SSRC.
    pub ssrc: u32,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub ts: u32,
    /// Payload.
    pub payload: Vec<u8>,
    /// Virtual time of delivery, since the harness started.
    pub at: Duration,
}

/// Parses a plain RTP packet (panics if it is not one).
pub fn parse_rtp(d: &Datagram) -> Rtp {
    let p = RtpPacket::parse(&d.data).expect("valid RTP");
    Rtp {
        from: d.from,
        ssrc: p.ssrc().0,
        seq: p.sequence_number(),
        ts: p.timestamp(),
        payload: p.payload().to_vec(),
        at: d.at,
    }
}

/// (ssrc, seq, ts, payload) of plain RTP bytes.
pub fn fields(pkt: &[u8]) -> (u32, u16, u32, Vec<u8>) {
    let p = RtpPacket::parse(pkt).expect("valid RTP");
    (
        p.ssrc().0,
        p.sequence_number(),
        p.timestamp(),
        p.payload().to_vec(),
    )
}

/// An RTP packet (payload type 111), written with `supernode_media`'s writer.
pub fn rtp(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    rtp_pt(111, ssrc, seq, ts, payload)
}

/// The (media SSRC, lost sequence numbers) of every NACK in the RTCP compounds `rtcp`.
pub fn nacks(rtcp: &[Vec<u8>]) -> Vec<(u32, Vec<u16>)> {
    let mut out = Vec::new();
    for c in rtcp {
        for p in RtcpCompound::parse(c).flatten() {
            if let RtcpPacket::Nack(n) = p {
                out.push((n.media_ssrc.0, n.lost().collect()));
            }
        }
    }
    out
}

/// An RTP packet of payload type `pt`.
pub fn rtp_pt(pt: u8, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(pt),
        sequence_number: seq,
        timestamp: ts,
        ssrc: Ssrc(ssrc),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(payload, &mut buf).expect("RTP fits");
    buf.truncate(n);
    buf
}

/// An RTP packet with RFC 8285 header extension elements `ext` (id, value; the one-byte
/// form when they fit it).
pub fn rtp_ext(
    pt: u8,
    ssrc: u32,
    seq: u16,
    ts: u32,
    ext: &[(u8, &[u8])],
    payload: &[u8],
) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(pt),
        sequence_number: seq,
        timestamp: ts,
        ssrc: Ssrc(ssrc),
        extensions: ext.iter().map(|(id, v)| (*id, v.to_vec())).collect(),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(payload, &mut buf).expect("RTP fits");
    buf.truncate(n);
    buf
}

/// An RTP packet (payload type 96) carrying a transport-wide sequence number in the one-byte
/// header extension `ext_id` (what a browser sends when TWCC is negotiated).
pub fn rtp_twcc(
    ssrc: u32,
    seq: u16,
    ts: u32,
    ext_id: u8,
    twcc_seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    rtp_ext(
        96,
        ssrc,
        seq,
        ts,
        &[(ext_id, &twcc_seq.to_be_bytes())],
        payload,
    )
}

/// The header extension elements (id, value) of a plain RTP packet.
pub fn extensions(pkt: &[u8]) -> Vec<(u8, Vec<u8>)> {
    RtpPacket::parse(pkt)
        .expect("an RTP packet")
        .extensions()
        .map(|(id, v)| (id, v.to_vec()))
        .collect()
}

/// An RTCP compound of `packets`.
pub fn rtcp(packets: &[RtcpPacket<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = write_compound(packets, &mut buf).expect("RTCP fits");
    buf.truncate(n);
    buf
}

/// A generic NACK from `sender` about `media`, with (pid, blp) pairs.
pub fn nack(sender: u32, media: u32, pairs: &[(u16, u16)]) -> Vec<u8> {
    let pairs: Vec<NackPair> = pairs
        .iter()
        .map(|&(pid, blp)| NackPair { pid, blp })
        .collect();
    rtcp(&[RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(sender),
        media_ssrc: Ssrc(media),
        pairs: WireList::Items(&pairs),
    })])
}

/// A PLI from `sender` about `media`.
pub fn pli(sender: u32, media: u32) -> Vec<u8> {
    rtcp(&[RtcpPacket::Pli(Pli {
        sender_ssrc: Ssrc(sender),
        media_ssrc: Ssrc(media),
    })])
}

/// A STUN binding request with USERNAME `<ufrag>:peer`, MESSAGE-INTEGRITY under `pwd` and a
/// FINGERPRINT; its transaction id is `[tid; 12]`.
pub fn binding_request(ufrag: &str, pwd: &str, tid: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .expect("STUN header fits");
    let user = format!("{ufrag}:peer");
    w.add(&StunAttr::Username(user.as_bytes())).unwrap();
    w.add(&StunAttr::Priority(1)).unwrap();
    w.add_message_integrity(pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// An ICE connectivity check as a browser sends it: USERNAME `<relay ufrag>:<browser
/// ufrag>`, PRIORITY, ICE-CONTROLLING, USE-CANDIDATE if `nominate`, MESSAGE-INTEGRITY under
/// `pwd` and FINGERPRINT; transaction id `[tid; 12]`.
pub fn ice_check(
    relay_ufrag: &str,
    browser_ufrag: &str,
    pwd: &str,
    tid: u8,
    nominate: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .expect("STUN header fits");
    let user = format!("{relay_ufrag}:{browser_ufrag}");
    w.add(&StunAttr::Username(user.as_bytes())).unwrap();
    w.add(&StunAttr::Priority(0x6e00_1eff)).unwrap();
    w.add(&StunAttr::IceControlling(0x1234_5678_9abc_def0))
        .unwrap();
    if nominate {
        w.add(&StunAttr::UseCandidate).unwrap();
    }
    w.add_message_integrity(pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// A fake browser: a peer address, its own DTLS identity (the fingerprint of its "offer")
/// and a DTLS client of the same crate as the relay's server.
pub struct BrowserPeer {
    /// Its address.
    pub peer: Peer,
    /// Its DTLS identity.
    pub identity: Arc<DtlsIdentity>,
    /// Its DTLS client, once started.
    pub dtls: Option<DtlsClient>,
    /// Its ICE ufrag (what the offer says).
    pub ufrag: String,
}

impl BrowserPeer {
    /// Its certificate's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// Runs the DTLS handshake with the relay through `leg` (after ICE selected this peer's
    /// path): sends the client's flights, feeds it the relay's, on the virtual clock, until
    /// it completes or `rounds` exchanges pass. Returns the client's SRTP context (protects
    /// what the browser sends, opens what the relay sends) when connected.
    pub fn handshake(&mut self, h: &mut Harness, leg: Leg, rounds: usize) -> Option<SrtpClient> {
        let now = h.now;
        let client = self
            .dtls
            .get_or_insert_with(|| DtlsClient::new(&self.identity, now));
        for _ in 0..rounds {
            client.handle_timeout(h.now);
            for d in client.drain() {
                h.send(self.peer, leg, &d);
            }
            let got: Vec<Datagram> = h.take(self.peer);
            let mut any = false;
            for d in got.iter().filter(|d| d.is_dtls()) {
                client.handle_datagram(h.now, &d.data);
                any = true;
            }
            // Keep what is not DTLS (media, STUN answers) in the inbox.
            h.peers[self.peer.idx].extend(got.into_iter().filter(|d| !d.is_dtls()));
            if client.is_connected() {
                // The client's last flight (its Finished) may still be queued.
                for d in client.drain() {
                    h.send(self.peer, leg, &d);
                }
                let keys = client.keys()?.clone();
                return Some(SrtpClient(LegSrtp::new(&keys).expect("valid keys")));
            }
            if !any {
                h.advance(Duration::from_millis(100));
            }
        }
        None
    }
}

/// The client side of an SRTP leg: protects what the peer sends, unprotects what it gets.
pub struct SrtpClient(LegSrtp);

impl SrtpClient {
    /// Protects a plain RTP packet.
    pub fn protect_rtp(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + 64, 0);
        let n = self.0.protect_rtp(&mut buf, plain.len()).expect("protect");
        buf.truncate(n);
        buf
    }

    /// Protects a plain RTCP compound.
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Vec<u8> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + 64, 0);
        let n = self.0.protect_rtcp(&mut buf, plain.len()).expect("protect");
        buf.truncate(n);
        buf
    }

    /// Authenticates and decrypts an SRTP packet; `None` if it does not verify.
    pub fn unprotect_rtp(&mut self, wire: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; wire.len()];
        let n = self.0.unprotect_rtp(wire, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// Authenticates and decrypts an SRTCP packet; `None` if it does not verify.
    pub fn unprotect_rtcp(&mut self, wire: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![0u8; wire.len()];
        let n = self.0.unprotect_rtcp(wire, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }
}

/// Keys for one SRTP leg derived from `seed`: the relay's view and the client's mirror image.
pub fn srtp_pair(profile: SrtpProfile, seed: u8) -> (RelaySrtpKeys, SrtpClient) {
    use supernode_relay::core::SrtpKey;
    let salt_len = profile.salt_len();
    let key = |k: u8, s: u8| SrtpKey {
        profile,
        master_key: vec![k; profile.key_len()],
        master_salt: vec![s; salt_len],
    };
    let up = key(seed, seed ^ 0x55);
    let down = key(seed ^ 0xff, seed ^ 0xaa);
    let relay = RelaySrtpKeys {
        inbound: up.clone(),
        outbound: down.clone(),
    };
    let client = RelaySrtpKeys {
        inbound: down,
        outbound: up,
    };
    (
        relay,
        SrtpClient(LegSrtp::new(&client).expect("valid keys")),
    )
}

/// What the control plane says about a new leg.
#[derive(Debug, Clone)]
pub struct LegOpts {
    shared: bool,
    fixed: Option<SocketAddr>,
    expected_ssrc: Option<u32>,
    max_streams: Option<usize>,
    srtp: Option<RelaySrtpKeys>,
    ice: Option<(String, String)>,
    clock_rate: u32,
    rate_cap: RateCap,
    browser: Option<BrowserSpec>,
    clock_rates: Vec<(u8, u32)>,
}

impl LegOpts {
    /// A latching plain-RTP leg on its own port, 48 kHz, no rate cap.
    pub fn latching() -> Self {
        Self {
            shared: false,
            fixed: None,
            expected_ssrc: None,
            max_streams: None,
            srtp: None,
            ice: None,
            clock_rate: 48_000,
            rate_cap: RateCap::default(),
            browser: None,
            clock_rates: Vec::new(),
        }
    }

    /// Clock rates of learned streams by payload type (audio and video on one leg).
    pub fn clock_rates(mut self, rates: &[(u8, u32)]) -> Self {
        self.clock_rates = rates.to_vec();
        self
    }

    /// A browser transport on the shared port: ICE-lite with `ufrag`/`pwd`, DTLS server
    /// with `spec`, up to 8 learned streams.
    pub fn browser(ufrag: &str, pwd: &str, spec: BrowserSpec) -> Self {
        Self {
            shared: true,
            ice: Some((ufrag.into(), pwd.into())),
            max_streams: Some(8),
            browser: Some(spec),
            ..Self::latching()
        }
    }

    /// A leg aimed at an explicit remote address (trusted callers only).
    pub fn fixed(remote: SocketAddr) -> Self {
        Self {
            fixed: Some(remote),
            ..Self::latching()
        }
    }

    /// On the shared port instead of its own.
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// The SSRC the peer will send, announced in advance.
    pub fn expected_ssrc(mut self, ssrc: u32) -> Self {
        self.expected_ssrc = Some(ssrc);
        self
    }

    /// At most `n` streams (SSRCs) learned from the peer; a further one is a wrong SSRC.
    /// The leg-based core carries exactly one stream per leg, so only `1` can be asked of
    /// it (and is what it does anyway); the streams core takes any bound.
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = Some(n);
        self
    }

    /// SRTP keys.
    pub fn srtp(mut self, keys: RelaySrtpKeys) -> Self {
        self.srtp = Some(keys);
        self
    }

    /// ICE-lite credentials (the relay's ufrag and password for this leg).
    pub fn ice(mut self, ufrag: &str, pwd: &str) -> Self {
        self.ice = Some((ufrag.to_owned(), pwd.to_owned()));
        self
    }

    /// Media clock rate of what the leg receives.
    pub fn clock_rate(mut self, hz: u32) -> Self {
        self.clock_rate = hz;
        self
    }

    /// Rate cap on what the peer sends.
    pub fn rate_cap(mut self, cap: RateCap) -> Self {
        self.rate_cap = cap;
        self
    }
}

/// A snapshot of one leg's statistics and counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegView {
    /// The peer address the leg sends to, if known.
    pub peer: Option<SocketAddr>,
    /// RTP packets accepted from the peer.
    pub rtp_in: u64,
    /// RTCP compounds accepted from the peer.
    pub rtcp_in: u64,
    /// Bytes accepted from the peer.
    pub bytes_in: u64,
    /// Datagrams sent toward the peer.
    pub packets_out: u64,
    /// Bytes sent toward the peer.
    pub bytes_out: u64,
    /// Packets received from the peer, duplicates excluded (RFC 3550).
    pub received: u64,
    /// Packets expected from the peer.
    pub expected: u64,
    /// Cumulative loss from the peer.
    pub lost: i64,
    /// Duplicates from the peer.
    pub duplicates: u64,
    /// Reordered packets from the peer.
    pub reordered: u64,
    /// Early media held for this leg.
    pub early_held: u64,
    /// Held packets sent when it latched.
    pub early_replayed: u64,
    /// NACKed packets retransmitted toward the peer.
    pub nack_retransmits: u64,
    /// NACKed packets not in the cache.
    pub nack_misses: u64,
    /// Lost packets asked of this leg's peer (NACKs forwarded toward the source).
    pub nacks_out: u64,
    /// Lost packets not asked of the peer: over its budget of forwarded NACKs.
    pub nacks_out_limited: u64,
    /// Keyframe requests from the peer.
    pub keyframe_requests_in: u64,
    /// Keyframe requests sent to the peer.
    pub keyframe_requests_out: u64,
    /// Keyframe requests toward the peer swallowed by coalescing.
    pub keyframe_requests_coalesced: u64,
    /// Source switches seen as a destination.
    pub source_switches: u64,
    /// Simulcast layer switches seen as a destination.
    pub layer_switches: u64,
    /// Times the peer address was (re)learned.
    pub latches: u64,
    /// Reports generated toward the peer.
    pub reports_sent: u64,
    drops: Vec<(DropReason, u64)>,
}

impl LegView {
    fn from_stats(s: &LegStats) -> Self {
        let c = &s.counters;
        Self {
            peer: s.peer,
            rtp_in: c.rtp_in,
            rtcp_in: c.rtcp_in,
            bytes_in: c.bytes_in,
            packets_out: c.packets_out,
            bytes_out: c.bytes_out,
            received: s.received,
            expected: s.expected,
            lost: s.lost,
            duplicates: s.duplicates,
            reordered: s.reordered,
            early_held: c.early_held,
            early_replayed: c.early_replayed,
            nack_retransmits: c.nack_retransmits,
            nack_misses: c.nack_misses,
            nacks_out: c.nacks_out,
            nacks_out_limited: c.nacks_out_limited,
            keyframe_requests_in: c.keyframe_requests_in,
            keyframe_requests_out: c.keyframe_requests_out,
            keyframe_requests_coalesced: c.keyframe_requests_coalesced,
            source_switches: c.source_switches,
            layer_switches: c.layer_switches,
            latches: c.latches,
            reports_sent: c.reports_sent,
            drops: DropReason::ALL
                .iter()
                .map(|&r| (r, c.drops_for(r)))
                .collect(),
        }
    }

    /// Drops counted on this leg for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// All drops counted on this leg.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }
}

/// What the control plane learned from the core.
#[derive(Debug, Clone, PartialEq)]
pub enum HarnessEvent {
    /// A leg learned its peer's address.
    Latched {
        /// The leg.
        leg: LegId,
        /// The address.
        addr: SocketAddr,
    },
    /// A leg was freed as idle, with its final statistics.
    Freed {
        /// The leg.
        leg: LegId,
        /// Its session.
        session: SessionId,
        /// Its statistics when freed.
        stats: Box<LegView>,
    },
}

/// What a processor queue held: the source leg and the packet's (ssrc, seq, ts, payload).
pub type Queued = (LegId, (u32, u16, u32, Vec<u8>));

type Shared<T> = Arc<Mutex<Vec<T>>>;

/// The far side of a processor transport in tests: a bounded queue of (source leg, RTP).
#[derive(Debug, Clone)]
pub struct ProcessorQueue {
    inner: Shared<(LegId, Vec<u8>)>,
    capacity: usize,
}

impl ProcessorPort for ProcessorQueue {
    fn push(&self, _now: Instant, from: LegId, packet: &[u8]) -> bool {
        let mut q = self.inner.lock().expect("queue lock");
        if q.len() >= self.capacity {
            return false;
        }
        q.push((from, packet.to_vec()));
        true
    }
}

impl ProcessorQueue {
    /// Takes what was queued: (source leg, parsed RTP fields).
    pub fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.inner.lock().expect("queue lock"))
            .into_iter()
            .map(|(l, p)| (l, fields(&p)))
            .collect()
    }
}

/// The core, its virtual clock, the fake peers and the wire between them.
pub struct Harness {
    core: Core,
    tx: TxBatch,
    start: Instant,
    now: Instant,
    /// Socket slot -> relay address (None: free slot).
    socks: Vec<Option<SocketAddr>>,
    by_local: HashMap<SocketAddr, SockSlot>,
    shared: Option<SockSlot>,
    peers: Vec<Vec<Datagram>>,
    by_peer_addr: HashMap<SocketAddr, usize>,
    stranger_sink: Vec<Datagram>,
    to_relay: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    uplink_profiles: HashMap<usize, (NetProfile, u64)>,
    uplinks: BTreeMap<(usize, SocketAddr), NetEmulator>,
    events: Vec<HarnessEvent>,
    next_session: u64,
    next_leg: u64,
    /// Datagrams sent to a relay address with no socket (a freed leg's port).
    pub unrouted: u64,
    /// Times `handle_timeout` ran.
    pub timeouts: u64,
}

impl Harness {
    /// A core with `config`, at a virtual time of zero.
    pub fn new(config: CoreConfig) -> Self {
        let start = Instant::now();
        Self {
            core: Core::new(config, start),
            tx: TxBatch::new(4096),
            start,
            now: start,
            socks: Vec::new(),
            by_local: HashMap::new(),
            shared: None,
            peers: Vec::new(),
            by_peer_addr: HashMap::new(),
            stranger_sink: Vec::new(),
            to_relay: VecDeque::new(),
            uplink_profiles: HashMap::new(),
            uplinks: BTreeMap::new(),
            events: Vec::new(),
            next_session: 1,
            next_leg: 1,
            unrouted: 0,
            timeouts: 0,
        }
    }

    /// Virtual time since the harness started.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    // ---- control plane ----

    /// A new session id.
    pub fn session(&mut self) -> SessionId {
        let s = SessionId(self.next_session);
        self.next_session += 1;
        s
    }

    fn alloc_own_socket(&mut self) -> (SockSlot, SocketAddr) {
        let slot = match self.socks.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.socks.push(None);
                self.socks.len() - 1
            }
        };
        let addr = SocketAddr::new(RELAY_IP, 20_000 + slot as u16);
        self.socks[slot] = Some(addr);
        self.by_local.insert(addr, SockSlot(slot as u32));
        (SockSlot(slot as u32), addr)
    }

    fn shared_socket(&mut self) -> (SockSlot, SocketAddr) {
        let addr = SocketAddr::new(RELAY_IP, SHARED_PORT);
        if let Some(s) = self.shared {
            return (s, addr);
        }
        let slot = self.socks.len();
        self.socks.push(Some(addr));
        let s = SockSlot(slot as u32);
        self.by_local.insert(addr, s);
        self.core.add_shared_socket(s);
        self.shared = Some(s);
        (s, addr)
    }

    fn free_socket(&mut self, slot: SockSlot) {
        if let Some(addr) = self.socks.get_mut(slot.0 as usize).and_then(Option::take) {
            self.by_local.remove(&addr);
        }
    }

    /// Adds a leg to `session`.
    pub fn add_leg(&mut self, session: SessionId, opts: LegOpts) -> Leg {
        let (sock, local) = if opts.shared {
            self.shared_socket()
        } else {
            self.alloc_own_socket()
        };
        // Field by field on top of the core's default, so that a new field of the spec
        // needs no change here.
        let mut spec = LegSpec::latching(session, sock);
        spec.shared = opts.shared;
        if let Some(a) = opts.fixed {
            spec.peer = PeerMode::Fixed(a);
        }
        if let Some(ssrc) = opts.expected_ssrc {
            spec.streams = vec![StreamSpec {
                ssrc: Ssrc(ssrc),
                clock_rate: opts.clock_rate,
            }];
        }
        if let Some(n) = opts.max_streams {
            spec.max_streams = n;
        }
        spec.srtp = opts.srtp;
        spec.ice = opts.ice.map(|(u, p)| IceCredentials {
            local_ufrag: u,
            local_pwd: p,
        });
        spec.clock_rate = opts.clock_rate;
        spec.rate_cap = opts.rate_cap;
        spec.browser = opts.browser;
        spec.clock_rates = opts.clock_rates.iter().map(|&(p, c)| (Pt(p), c)).collect();
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        if let Err(e) = self.core.add_leg(self.now, id, spec) {
            if !opts.shared {
                self.free_socket(sock);
            }
            panic!("add_leg: {e}");
        }
        Leg { id, session, local }
    }

    /// A new session with one leg per `opts`, not connected.
    pub fn session_with(&mut self, opts: impl IntoIterator<Item = LegOpts>) -> Vec<Leg> {
        let s = self.session();
        opts.into_iter().map(|o| self.add_leg(s, o)).collect()
    }

    /// A new session of `n` latching legs, every leg hearing every other (what the relay REST
    /// API sets up).
    pub fn mesh(&mut self, n: usize) -> Vec<Leg> {
        let legs = self.session_with((0..n).map(|_| LegOpts::latching()));
        self.connect_all(&legs);
        legs
    }

    /// A new session of two latching legs connected both ways.
    pub fn latching_pair(&mut self) -> [Leg; 2] {
        let legs = self.session_with([LegOpts::latching(), LegOpts::latching()]);
        self.connect_both(legs[0], legs[1]);
        [legs[0], legs[1]]
    }

    /// Adds a processor transport to `session` whose far side is a queue of `capacity`
    /// packets (the test's stand-in for a media thread's inlet).
    pub fn add_processor(&mut self, session: SessionId, capacity: usize) -> (Leg, ProcessorQueue) {
        let q = ProcessorQueue {
            inner: Arc::new(Mutex::new(Vec::new())),
            capacity,
        };
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        self.core
            .add_processor(self.now, id, session, Arc::new(q.clone()))
            .expect("add_processor");
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        (Leg { id, session, local }, q)
    }

    /// Routes the streams of one kind of `from` to `to`.
    pub fn connect_kind(&mut self, from: Leg, to: Leg, kind: StreamKind) {
        self.core
            .connect_kind(from.id, to.id, kind)
            .expect("connect_kind");
    }

    /// Removes the orphaned send streams of one kind at `leg`.
    pub fn drop_orphans(&mut self, leg: Leg, kind: StreamKind) -> usize {
        self.core.drop_orphans(leg.id, kind).expect("drop_orphans")
    }

    /// Declares a stream `leg` sends (a processor's mix).
    pub fn add_stream(&mut self, leg: Leg, ssrc: u32, clock_rate: u32) -> Result<(), CoreError> {
        self.core.add_stream(
            leg.id,
            StreamSpec {
                ssrc: Ssrc(ssrc),
                clock_rate,
            },
        )
    }

    /// Removes a declared stream of `leg`.
    pub fn remove_stream(&mut self, leg: Leg, ssrc: u32) {
        self.core
            .remove_stream(leg.id, Ssrc(ssrc))
            .expect("remove_stream");
    }

    /// Routes the one stream `ssrc` of `from` to `to`.
    pub fn subscribe_stream(&mut self, from: Leg, ssrc: u32, to: Leg) -> Result<(), CoreError> {
        self.core.subscribe_stream(from.id, Ssrc(ssrc), to.id)
    }

    /// The processor behind `leg` produced `packet`: the core forwards it.
    pub fn processed(&mut self, leg: Leg, packet: &[u8]) -> Result<(), CoreError> {
        let r = self
            .core
            .handle_processed(self.now, leg.id, packet, &mut self.tx);
        self.flush();
        self.progress();
        r
    }

    /// Whether `leg` is a processor transport.
    pub fn is_processor(&self, leg: Leg) -> bool {
        self.core.is_processor(leg.id)
    }

    /// Routes what `from` receives to `to`.
    pub fn connect(&mut self, from: Leg, to: Leg) {
        self.core.connect(from.id, to.id).expect("connect");
    }

    /// Routes both ways.
    pub fn connect_both(&mut self, a: Leg, b: Leg) {
        self.connect(a, b);
        self.connect(b, a);
    }

    /// Routes every leg to every other.
    pub fn connect_all(&mut self, legs: &[Leg]) {
        for &a in legs {
            for &b in legs {
                if a != b {
                    self.connect(a, b);
                }
            }
        }
    }

    /// Removes the route from `from` to `to`.
    pub fn disconnect(&mut self, from: Leg, to: Leg) {
        self.core.disconnect(from.id, to.id).expect("disconnect");
    }

    /// Sets or replaces a leg's SRTP keys.
    pub fn set_srtp(&mut self, leg: Leg, keys: Option<RelaySrtpKeys>) {
        self.core.set_srtp(leg.id, keys).expect("set_srtp");
    }

    /// Removes a leg (its own socket goes back to the pool).
    pub fn remove_leg(&mut self, leg: Leg) {
        let (sock, own) = self.core.remove_leg(leg.id).expect("remove_leg");
        if own {
            self.free_socket(sock);
        }
    }

    // ---- introspection ----

    /// Statistics of a live leg (panics if it is gone).
    pub fn stats(&self, leg: Leg) -> LegView {
        LegView::from_stats(&self.core.leg_stats(leg.id).expect("live leg"))
    }

    /// Whether a leg is live.
    pub fn is_live(&self, leg: Leg) -> bool {
        self.core.has_leg(leg.id)
    }

    /// Live legs.
    pub fn leg_count(&self) -> usize {
        self.core.leg_count()
    }

    /// Datagrams on the shared port that matched no leg.
    pub fn shared_strangers(&self) -> u64 {
        self.core.global_drops(DropReason::Stranger)
    }

    /// Datagrams on the shared port that matched no leg, for `reason`.
    pub fn shared_drops(&self, reason: DropReason) -> u64 {
        self.core.global_drops(reason)
    }

    /// Relay-wide counters of browser transports.
    pub fn browser_counters(&self) -> BrowserCounters {
        self.core.browser_counters()
    }

    /// The simulcast state of `leg` as a receiver.
    pub fn simulcast_view(&self, leg: Leg) -> supernode_relay::core::layers::SimulcastView {
        self.core.simulcast_view(leg.id).expect("live leg")
    }

    /// Caps the simulcast layer `leg` receives.
    pub fn set_max_layer(&mut self, leg: Leg, max: Option<u8>) {
        self.core
            .set_max_layer(self.now, leg.id, max, &mut self.tx)
            .expect("live leg");
        self.flush();
        self.progress();
    }

    /// A fake browser with its own DTLS identity and ICE ufrag.
    pub fn browser_peer(&mut self, ufrag: &str) -> BrowserPeer {
        BrowserPeer {
            peer: self.peer(),
            identity: Arc::new(DtlsIdentity::generate().expect("certificate")),
            dtls: None,
            ufrag: ufrag.into(),
        }
    }

    /// Events collected so far (drained).
    pub fn events(&mut self) -> Vec<HarnessEvent> {
        std::mem::take(&mut self.events)
    }

    /// What the core sent to addresses that are no peer's.
    pub fn stranger_sink(&self) -> &[Datagram] {
        &self.stranger_sink
    }

    // ---- peers ----

    /// A new peer with an empty inbox.
    pub fn peer(&mut self) -> Peer {
        let idx = self.peers.len();
        let addr = SocketAddr::new(PEER_IP, 40_000 + idx as u16);
        self.peers.push(Vec::new());
        self.by_peer_addr.insert(addr, idx);
        Peer { idx, addr }
    }

    /// Everything `peer` has received and not taken, oldest first.
    pub fn inbox(&self, peer: Peer) -> &[Datagram] {
        &self.peers[peer.idx]
    }

    /// Takes everything `peer` has received.
    pub fn take(&mut self, peer: Peer) -> Vec<Datagram> {
        std::mem::take(&mut self.peers[peer.idx])
    }

    /// Takes everything `peer` has received and returns the (plain) RTP packets among it.
    pub fn take_rtp(&mut self, peer: Peer) -> Vec<Rtp> {
        self.take(peer)
            .iter()
            .filter(|d| d.is_rtp())
            .map(parse_rtp)
            .collect()
    }

    /// The (plain) RTP packets `peer` has received, without taking them.
    pub fn rtp(&self, peer: Peer) -> Vec<Rtp> {
        self.peers[peer.idx]
            .iter()
            .filter(|d| d.is_rtp())
            .map(parse_rtp)
            .collect()
    }

    /// The RTCP compounds `peer` has received, without taking them.
    pub fn rtcp(&self, peer: Peer) -> Vec<Vec<u8>> {
        self.peers[peer.idx]
            .iter()
            .filter(|d| d.is_rtcp())
            .map(|d| d.data.clone())
            .collect()
    }

    /// Sends `peer`'s uplink (everything it sends toward the relay) through a seeded network
    /// emulator with `profile`; one path per relay address, seeded from `seed`.
    pub fn set_uplink(&mut self, peer: Peer, profile: NetProfile, seed: u64) {
        self.uplink_profiles.insert(peer.idx, (profile, seed));
    }

    /// What the emulated uplinks of `peer` did, summed over its paths.
    pub fn uplink_stats(&self, peer: Peer) -> NetStats {
        let mut t = NetStats::default();
        for ((p, _), e) in &self.uplinks {
            if *p != peer.idx {
                continue;
            }
            let s = e.stats();
            t.sent += s.sent;
            t.delivered += s.delivered;
            t.lost += s.lost;
            t.lost_random += s.lost_random;
            t.lost_blackout += s.lost_blackout;
            t.lost_queue += s.lost_queue;
            t.duplicated += s.duplicated;
            t.reordered += s.reordered;
        }
        t
    }

    // ---- sending ----

    /// `peer` sends `data` to the relay address `to`; the core handles it (and whatever it
    /// causes is delivered) before this returns, unless the peer's uplink is emulated.
    pub fn send_to(&mut self, peer: Peer, to: SocketAddr, data: &[u8]) {
        if let Some(&(profile, seed)) = self.uplink_profiles.get(&peer.idx) {
            let n = self.uplinks.len() as u64;
            let now = self.now;
            self.uplinks
                .entry((peer.idx, to))
                .or_insert_with(|| NetEmulator::new(profile, seed.wrapping_add(n)))
                .send(now, Bytes::copy_from_slice(data));
        } else {
            self.to_relay.push_back((peer.addr, to, data.to_vec()));
        }
        self.progress();
    }

    /// What warming a batch (`Core::warm_lookup`, then every `Core::warm` stage) hints for
    /// `data` from `peer` arriving at `leg`'s address: `None` when it is not warmed, else
    /// per stage (the lookup first) the regions hinted, each inside a live allocation's
    /// bounds (checked here: no hint of zero bytes).
    pub fn warm_hints(&self, peer: Peer, leg: Leg, data: &[u8]) -> Option<Vec<usize>> {
        use supernode_relay::core::warm::WARM_STAGES;
        let slot = *self.by_local.get(&leg.local)?;
        let count = std::cell::Cell::new(0usize);
        let mut hint = |_: *const u8, bytes: usize| {
            assert!(bytes > 0, "a hint of zero bytes");
            count.set(count.get() + 1);
        };
        let (li, ssrc) = self.core.warm_lookup(slot, peer.addr, data, &mut hint)?;
        let mut per_stage = vec![count.replace(0)];
        for stage in 1..=WARM_STAGES {
            self.core.warm(stage, li, ssrc, &mut hint);
            per_stage.push(count.replace(0));
        }
        Some(per_stage)
    }

    /// `peer` sends `data` to `leg`'s relay address.
    pub fn send(&mut self, peer: Peer, leg: Leg, data: &[u8]) {
        self.send_to(peer, leg.local, data);
    }

    /// `peer` sends a plain RTP packet to `leg`.
    pub fn send_rtp(&mut self, peer: Peer, leg: Leg, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        self.send(peer, leg, &rtp(ssrc, seq, ts, payload));
    }

    // ---- time ----

    /// Runs until idle at the current virtual time: hands every due datagram to the core,
    /// fires its timer if due, delivers every transmit, collects events.
    pub fn progress(&mut self) {
        loop {
            let mut busy = self.release_uplinks();
            while let Some((from, to, data)) = self.to_relay.pop_front() {
                busy = true;
                self.deliver_to_core(from, to, &data);
            }
            if self.now >= self.core.poll_timeout() {
                self.core.handle_timeout(self.now, &mut self.tx);
                self.timeouts += 1;
                self.flush();
                busy = true;
            }
            self.collect_events();
            if !busy {
                break;
            }
        }
    }

    /// Moves the virtual clock forward by `d`, stopping at every timer of the core and every
    /// emulated delivery on the way (each runs at its exact time).
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.progress();
        loop {
            let mut next = self.core.poll_timeout();
            if let Some(t) = self
                .uplinks
                .values()
                .filter_map(|e| e.next_delivery())
                .min()
            {
                next = next.min(t);
            }
            if next > target {
                break;
            }
            self.now = self.now.max(next);
            self.progress();
        }
        self.now = target;
        self.progress();
    }

    fn release_uplinks(&mut self) -> bool {
        let mut any = false;
        for (&(peer, to), net) in self.uplinks.iter_mut() {
            while let Some(b) = net.poll(self.now) {
                let from = SocketAddr::new(PEER_IP, 40_000 + peer as u16);
                self.to_relay.push_back((from, to, b.to_vec()));
                any = true;
            }
        }
        any
    }

    fn deliver_to_core(&mut self, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let Some(&slot) = self.by_local.get(&to) else {
            self.unrouted += 1;
            return;
        };
        self.core
            .handle_datagram(self.now, slot, from, data, &mut self.tx);
        self.flush();
    }

    fn flush(&mut self) {
        let at = self.elapsed();
        for t in self.tx.items() {
            let from = self.socks[t.sock.0 as usize].expect("the core sends from a live socket");
            let d = Datagram {
                from,
                to: t.dst,
                data: self.tx.data(t).to_vec(),
                at,
            };
            match self.by_peer_addr.get(&t.dst) {
                Some(&i) => self.peers[i].push(d),
                None => self.stranger_sink.push(d),
            }
        }
        self.tx.clear();
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::Latched { leg, addr } => {
                    self.events.push(HarnessEvent::Latched { leg, addr });
                }
                Event::LegFreed {
                    leg,
                    session,
                    sock,
                    own_socket,
                    stats,
                } => {
                    if own_socket {
                        self.free_socket(sock);
                    }
                    self.events.push(HarnessEvent::Freed {
                        leg,
                        session,
                        stats: Box::new(LegView::from_stats(&stats)),
                    });
                }
                other => panic!("an event the harness does not know: {other:?}"),
            }
        }
    }
}
