//! A leg: one endpoint's connection to the relay, its addressing, what it has learned about
//! its peer, and its per-leg state (statistics, rate cap, rewriting, retransmission cache).

use std::net::SocketAddr;
use std::time::Instant;

use super::ids::{LegId, SessionId, SockSlot};
use super::nack_cache::NackCache;
use super::rate::{RateCap, RateLimiter};
use super::rewrite::{Rewriter, SourceKey};
use super::srtp::{LegSrtp, LegSrtpKeys};
use super::stats::LegCounters;
use super::transmit::TxBatch;
use supernode_media::packet::rtp;
use supernode_media::rfc3550::ReceiveStats;

/// How a leg learns where its peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMode {
    /// Symmetric RTP: the peer address is learned from the first valid packet; a later change
    /// is accepted only from a packet that proves it belongs to the leg (SRTP authentication
    /// or a STUN binding request with the leg's credentials).
    Latching,
    /// Aimed at an explicit remote address by a trusted caller; packets from anywhere else
    /// are strangers.
    Fixed(SocketAddr),
}

/// ICE-lite style credentials for a leg: a binding request whose USERNAME starts with
/// `local_ufrag:` and whose MESSAGE-INTEGRITY verifies under `local_pwd` proves the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// The relay's username fragment for this leg.
    pub local_ufrag: String,
    /// The relay's password for this leg (short-term credential key).
    pub local_pwd: String,
}

/// Everything the control plane says about a new leg.
#[derive(Debug, Clone)]
pub struct LegSpec {
    /// The session the leg belongs to.
    pub session: SessionId,
    /// The socket the leg receives on and sends from.
    pub sock: SockSlot,
    /// Whether `sock` is shared with other legs (legs then told apart by address, STUN
    /// username or SSRC) or the leg's own port.
    pub shared: bool,
    /// Latching or fixed remote.
    pub peer: PeerMode,
    /// The SSRC the peer will send, if known in advance (required to latch on a shared port
    /// without ICE credentials). Unknown: learned from the first packet.
    pub expected_ssrc: Option<u32>,
    /// SRTP keys, if the leg is encrypted.
    pub srtp: Option<LegSrtpKeys>,
    /// ICE credentials, if the peer sends STUN binding requests.
    pub ice: Option<IceCredentials>,
    /// Media clock rate of what this leg receives (for jitter and rewriting), Hz.
    pub clock_rate: u32,
    /// Rate cap on what the peer sends.
    pub rate_cap: RateCap,
}

impl LegSpec {
    /// A latching plain-RTP leg on its own socket `sock`, with default settings (48 kHz
    /// clock, no rate cap).
    pub fn latching(session: SessionId, sock: SockSlot) -> Self {
        Self {
            session,
            sock,
            shared: false,
            peer: PeerMode::Latching,
            expected_ssrc: None,
            srtp: None,
            ice: None,
            clock_rate: 48_000,
            rate_cap: RateCap::default(),
        }
    }
}

/// The live state of a leg inside the core.
#[derive(Debug)]
pub struct Leg {
    /// Public id.
    pub id: LegId,
    /// Session.
    pub session: SessionId,
    /// Socket it uses.
    pub sock: SockSlot,
    /// Whether the socket is shared.
    pub shared: bool,
    /// Peer mode.
    pub mode: PeerMode,
    /// Where packets toward this leg go, once known.
    pub peer: Option<SocketAddr>,
    /// The SSRC this leg's peer sends (configured or learned).
    pub ssrc: Option<u32>,
    /// SRTP state.
    pub srtp: Option<LegSrtp>,
    /// ICE credentials.
    pub ice: Option<IceCredentials>,
    /// Media clock rate, Hz.
    pub clock_rate: u32,
    /// Destinations (leg indices in the core).
    pub dests: Vec<u32>,
    /// Sources feeding this leg (leg indices).
    pub sources: Vec<u32>,
    /// Receive statistics of what the peer sends.
    pub rx: ReceiveStats,
    /// Counters.
    pub counters: LegCounters,
    /// Rate cap.
    pub rate: RateLimiter,
    /// Rewriting of what is sent toward this leg.
    pub rewrite: Rewriter,
    /// Retransmission cache of what was sent toward this leg.
    pub cache: NackCache,
    /// Last accepted datagram from the peer (or the creation time).
    pub last_rx: Instant,
    /// Whether a datagram has been accepted since creation.
    pub heard: bool,
    /// When a keyframe request was last forwarded toward this leg (coalescing).
    pub last_keyframe_request: Option<Instant>,
    /// NTP middle-32 of the last SR the relay sent to this leg -> send time, for RTT.
    pub sent_sr: Option<(u32, Instant)>,
    /// Round-trip time from the peer's reports.
    pub rtt: Option<std::time::Duration>,
    /// Packets and octets sent to the peer (for the relay's SR).
    pub sent_packets: u32,
    /// Payload octets sent to the peer.
    pub sent_octets: u32,
    /// Last RTP timestamp sent toward the peer and when.
    pub last_sent_ts: Option<(u32, Instant)>,
    /// Next time a report is due toward this leg.
    pub next_report: Instant,
    /// The SSRC the relay uses for the reports it generates toward this leg.
    pub report_ssrc: u32,
    /// Early media: while this (latching) leg has no peer yet, what its sources send is held
    /// in its retransmission cache, which nothing else uses before latching; replayed when the
    /// leg latches.
    pub held: Option<EarlyHeld>,
}

impl Leg {
    /// Builds a leg from its spec. SRTP keys must already be valid.
    pub fn new(
        id: LegId,
        spec: &LegSpec,
        srtp: Option<LegSrtp>,
        cache: NackCache,
        now: Instant,
        next_report: Instant,
    ) -> Self {
        let peer = match spec.peer {
            PeerMode::Fixed(a) => Some(a),
            PeerMode::Latching => None,
        };
        Self {
            id,
            session: spec.session,
            sock: spec.sock,
            shared: spec.shared,
            mode: spec.peer,
            peer,
            ssrc: spec.expected_ssrc,
            srtp,
            ice: spec.ice.clone(),
            clock_rate: spec.clock_rate.max(1),
            dests: Vec::new(),
            sources: Vec::new(),
            rx: ReceiveStats::new(spec.clock_rate),
            counters: LegCounters::default(),
            rate: RateLimiter::new(spec.rate_cap, now),
            rewrite: Rewriter::new(spec.clock_rate),
            cache,
            last_rx: now,
            heard: false,
            last_keyframe_request: None,
            sent_sr: None,
            rtt: None,
            sent_packets: 0,
            sent_octets: 0,
            last_sent_ts: None,
            next_report,
            report_ssrc: 0x5EED_0000 ^ (id.0 as u32).wrapping_mul(0x9E37_79B9),
            held: None,
        }
    }

    /// Whether packets from `src` are from this leg's known peer.
    #[inline]
    pub fn is_peer(&self, src: SocketAddr) -> bool {
        self.peer == Some(src)
    }

    /// Whether this leg may latch onto a first address without proof.
    #[inline]
    pub fn may_first_latch(&self) -> bool {
        matches!(self.mode, PeerMode::Latching) && self.peer.is_none()
    }
}

/// Most packets held for a leg that has not latched yet (early media); older ones give way.
pub const EARLY_MEDIA_PACKETS: u16 = 64;

/// Default of [`super::CoreConfig::early_media_max_age`]: held early media older than this
/// (by arrival, and by RTP time behind the newest held packet) is not replayed: a burst of stale audio would only push up the receiver's jitter
/// buffer delay at the start of the call. It covers the usual gap between the caller's
/// first packet and the callee's (a few tens of milliseconds) with room to spare.
pub const EARLY_MEDIA_MAX_AGE: std::time::Duration = std::time::Duration::from_millis(200);

/// What a latching leg holds of early media.
#[derive(Debug, Clone, Copy)]
pub struct EarlyHeld {
    /// First and last outgoing sequence numbers held.
    pub first: u16,
    /// Last outgoing sequence number held.
    pub last: u16,
    /// Outgoing RTP timestamp of the newest held packet.
    pub last_ts: u32,
    /// Media clock rate of the held stream (its source's), Hz.
    pub clock_rate: u32,
    /// Arrival of the newest held packet.
    pub last_at: Instant,
}

impl Leg {
    /// Early media: a source sent `plain` (RTP, decrypted) toward this leg before it has a
    /// peer. A latching leg holds it, rewritten as it will be sent, in its retransmission
    /// cache (unused until the leg latches), keeping the newest [`EARLY_MEDIA_PACKETS`].
    /// Returns whether the packet was held.
    ///
    /// Without this, what a caller sends between the callee's answer and the callee's first
    /// packet (the start of speech, the first keyframe) is lost.
    pub fn hold_early(
        &mut self,
        now: Instant,
        src: SourceKey,
        (seq, ts, clock_rate): (u16, u32, u32),
        plain: &[u8],
    ) -> bool {
        if !matches!(self.mode, PeerMode::Latching) || !self.cache.is_enabled() {
            return false;
        }
        let (m, switched) = self.rewrite.map(now, src, seq, ts);
        if switched {
            self.counters.source_switches += 1;
        }
        let Some(buf) = self.cache.insert_mut(m.seq, plain) else {
            return false;
        };
        if !m.identity {
            // `plain` was parsed as RTP by the caller: the fixed header is there.
            let _ = rtp::set_ssrc(buf, m.ssrc);
            let _ = rtp::set_sequence_number(buf, m.seq);
            let _ = rtp::set_timestamp(buf, m.ts);
        }
        let first = match self.held {
            Some(h) if m.seq.wrapping_sub(h.first) < EARLY_MEDIA_PACKETS => h.first,
            Some(_) => m.seq.wrapping_sub(EARLY_MEDIA_PACKETS - 1),
            None => m.seq,
        };
        self.held = Some(EarlyHeld {
            first,
            last: m.seq,
            last_ts: m.ts,
            clock_rate: clock_rate.max(1),
            last_at: now,
        });
        self.counters.early_held += 1;
        true
    }

    /// The leg just learned its peer: sends what was held for it, oldest first, protected
    /// with the leg's SRTP context when it has one, and leaves the cache holding exactly what
    /// went on the wire (so NACKs for them are answered with the right bytes).
    /// Packets older than `max_age` (by arrival, or by RTP time behind the newest held one)
    /// are not sent.
    pub fn replay_early(&mut self, now: Instant, max_age: std::time::Duration, tx: &mut TxBatch) {
        let (Some(h), Some(peer)) = (self.held.take(), self.peer) else {
            return;
        };
        if now.saturating_duration_since(h.last_at) > max_age {
            if self.srtp.is_some() {
                self.cache.clear(); // plain packets must never answer a NACK
            }
            return;
        }
        let max_ticks = (max_age.as_micros() as u64 * u64::from(h.clock_rate) / 1_000_000) as i64;
        let start = tx.len();
        let count = h.last.wrapping_sub(h.first).min(EARLY_MEDIA_PACKETS - 1) + 1;
        let mut sent = 0u64;
        for k in 0..count {
            let Some(pkt) = self.cache.get(h.first.wrapping_add(k)) else {
                continue; // overwritten by later packets in the ring
            };
            let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
            if i64::from(h.last_ts.wrapping_sub(ts) as i32) > max_ticks {
                continue; // too old to be worth playing
            }
            if tx.push(self.sock, peer, pkt).is_none() {
                break;
            }
            if let Some(s) = self.srtp.as_mut()
                && tx.grow_last(|b, len| s.protect_rtp(b, len)).is_err()
            {
                continue;
            }
            sent += 1;
        }
        if self.srtp.is_some() {
            // The cache held plain packets: keep only their protected forms.
            self.cache.clear();
            for t in &tx.items()[start..] {
                let wire = tx.data(t);
                if wire.len() >= 4 {
                    self.cache
                        .insert(u16::from_be_bytes([wire[2], wire[3]]), wire);
                }
            }
        }
        let bytes: u64 = tx.items()[start..].iter().map(|t| u64::from(t.len)).sum();
        self.counters.early_replayed += sent;
        self.counters.packets_out += sent;
        self.counters.bytes_out += bytes;
        self.sent_packets = self.sent_packets.wrapping_add(sent as u32);
    }
}
