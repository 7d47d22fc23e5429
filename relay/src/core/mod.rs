//! The sans-IO forwarding core: sessions, legs, routes, latching, rewriting, statistics,
//! RTCP, retransmission cache, rate caps and idle timeouts.
//!
//! Drive it with three calls, never reading a clock or touching a socket:
//!
//! - [`Core::handle_datagram`]`(now, sock, src, bytes, &mut tx)` for every received datagram;
//!   what must be sent is appended to the [`TxBatch`].
//! - [`Core::handle_timeout`]`(now, &mut tx)` when [`Core::poll_timeout`] says (reports,
//!   idle legs).
//! - [`Core::poll_event`] for what the control plane must learn (a leg latched, a leg freed
//!   as idle).
//!
//! Early media: what a source sends toward a latching leg before that leg has a peer (the
//! caller's first words and first keyframe, sent while the callee's client is still
//! starting) is held in the leg's retransmission cache (the newest
//! [`leg::EARLY_MEDIA_PACKETS`]) and sent, in order, the moment the leg latches, if it is
//! no older than [`CoreConfig::early_media_max_age`] (200 ms by default).
//!
//! The control calls ([`Core::add_leg`], [`Core::connect`], [`Core::remove_leg`], …) run
//! between batches. On the per-packet path nothing allocates on plain legs: lookups are an
//! array index (own-port legs) or one hash probe (shared port), the transmit goes into the
//! preallocated batch and the rewrite is done in place.
#![forbid(unsafe_code)]

pub mod addr_map;
pub mod ids;
pub mod leg;
pub mod nack_cache;
pub mod rate;
pub mod rewrite;
pub mod rtcp;
pub mod srtp;
pub mod stats;
pub mod stun;
pub mod transmit;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtp::{self, RtpPacket};
use supernode_media::rfc3550::ReceiveStats;

use crate::error::RelayError;
use addr_map::FxHashMap;
pub use ids::{LegId, SessionId, SockSlot};
pub use leg::{IceCredentials, Leg, LegSpec, PeerMode};
use nack_cache::NackCache;
pub use rate::RateCap;
use rewrite::SourceKey;
pub use srtp::{LegSrtpKeys, SrtpKey, SrtpProfile};
pub use stats::{DropReason, LegCounters, LegStats};
pub use transmit::{Transmit, TxBatch};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// A leg that has received nothing for this long is freed.
    pub idle_timeout: Duration,
    /// Mean interval of the RTCP reports the relay generates toward each leg (each interval
    /// is drawn from 0.5–1.5× this, RFC 3550 §6.3.1).
    pub report_interval: Duration,
    /// Keyframe requests (PLI/FIR) toward one sender are coalesced to at most one per this.
    pub keyframe_min_interval: Duration,
    /// Bytes of retransmission cache per leg (0 turns NACK answering off).
    pub nack_cache_bytes: usize,
    /// Index entries of the retransmission cache per leg.
    pub nack_cache_slots: usize,
    /// Most destinations one leg may have (fan-out bound).
    pub max_destinations: usize,
    /// Early media held for a leg that has not latched is replayed when it latches only if
    /// it is no older than this (see [`leg::EARLY_MEDIA_MAX_AGE`], the default).
    pub early_media_max_age: Duration,
    /// Wall-clock time at `epoch` (for NTP timestamps in reports), as an offset from the Unix
    /// epoch.
    pub wallclock_at_epoch: Duration,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            report_interval: Duration::from_secs(1),
            keyframe_min_interval: Duration::from_millis(300),
            nack_cache_bytes: 32 * 1024,
            nack_cache_slots: 256,
            max_destinations: 64,
            early_media_max_age: leg::EARLY_MEDIA_MAX_AGE,
            wallclock_at_epoch: Duration::ZERO,
        }
    }
}

/// Something the control plane must learn.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A leg learned (or re-learned, with proof) its peer's address.
    Latched {
        /// The leg.
        leg: LegId,
        /// The peer address.
        addr: SocketAddr,
    },
    /// A leg received nothing for the idle timeout and was freed. Its socket (if its own)
    /// can be closed.
    LegFreed {
        /// The leg.
        leg: LegId,
        /// Its session.
        session: SessionId,
        /// Its socket.
        sock: SockSlot,
        /// Whether the socket was the leg's own (and can be closed).
        own_socket: bool,
        /// Its statistics at the moment it was freed (for totals that must not lose the
        /// traffic since they were last read).
        stats: Box<LegStats>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SockUse {
    Free,
    Leg(u32),
    Shared,
}

/// The forwarding core of one worker. See the module docs.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    epoch: Instant,
    legs: Vec<Option<Leg>>,
    free_legs: Vec<u32>,
    ids: HashMap<LegId, u32>,
    sessions: HashMap<SessionId, Vec<LegId>>,
    socks: Vec<SockUse>,
    by_addr: FxHashMap<(SockSlot, SocketAddr), u32>,
    by_ssrc: FxHashMap<(SockSlot, u32), u32>,
    by_ufrag: HashMap<(SockSlot, String), u32>,
    global_drops: [u64; DropReason::COUNT],
    events: VecDeque<Event>,
    next_sweep: Instant,
    /// State of the generator that spreads report times (RFC 3550 §6.3.1 randomization).
    jitter_state: u64,
    /// Where SRTP/SRTCP datagrams are copied and unprotected in place (the datagram comes
    /// in as `&[u8]`): one buffer for the core, taken while a packet is handled.
    srtp_scratch: Box<[u8]>,
}

/// How often the core scans its legs for due reports and idle legs. Short, so that reports
/// (each due at its own randomized time) go out a few at a time rather than in bursts.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(20);

impl Core {
    /// A core with no legs. `now` is its epoch (RTP arrival clocks count from here).
    pub fn new(config: CoreConfig, now: Instant) -> Self {
        Self {
            config,
            epoch: now,
            legs: Vec::new(),
            free_legs: Vec::new(),
            ids: HashMap::new(),
            sessions: HashMap::new(),
            socks: Vec::new(),
            by_addr: FxHashMap::default(),
            by_ssrc: FxHashMap::default(),
            by_ufrag: HashMap::new(),
            global_drops: [0; DropReason::COUNT],
            events: VecDeque::with_capacity(64),
            next_sweep: now,
            jitter_state: 0x9e37_79b9_7f4a_7c15,
            srtp_scratch: vec![0u8; transmit::MAX_DATAGRAM].into_boxed_slice(),
        }
    }

    /// `interval` scaled by a factor drawn uniformly from [0.5, 1.5), as RFC 3550 §6.3.1
    /// asks of RTCP intervals: legs created together (a burst of calls, a restart) must not
    /// send their reports in the same instant, or the relay stalls its media path every
    /// interval to write hundreds of reports.
    fn jittered(&mut self, interval: Duration) -> Duration {
        // xorshift64*: deterministic for a core, a few cycles, no clock or OS entropy needed.
        let mut x = self.jitter_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter_state = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11; // 53 random bits
        let u = r as f64 / (1u64 << 53) as f64;
        interval.mul_f64(0.5 + u)
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    fn set_sock(&mut self, sock: SockSlot, use_: SockUse) {
        let i = sock.0 as usize;
        if self.socks.len() <= i {
            self.socks.resize(i + 1, SockUse::Free);
        }
        self.socks[i] = use_;
    }

    /// Declares `sock` a shared socket: legs on it are told apart by source address, STUN
    /// username or SSRC.
    pub fn add_shared_socket(&mut self, sock: SockSlot) {
        self.set_sock(sock, SockUse::Shared);
    }

    /// Adds a leg. Fails on bad SRTP keys, or a shared-port leg with no way to be found.
    pub fn add_leg(&mut self, now: Instant, id: LegId, spec: LegSpec) -> Result<(), RelayError> {
        if spec.shared
            && spec.expected_ssrc.is_none()
            && spec.ice.is_none()
            && matches!(spec.peer, PeerMode::Latching)
        {
            return Err(RelayError::SharedLegUnidentifiable);
        }
        let srtp = match &spec.srtp {
            Some(k) => Some(srtp::LegSrtp::new(k).map_err(|e| RelayError::Srtp(e.to_string()))?),
            None => None,
        };
        let cache = NackCache::new(self.config.nack_cache_bytes, self.config.nack_cache_slots);
        let first_report = now + self.jittered(self.config.report_interval);
        let leg = Leg::new(id, &spec, srtp, cache, now, first_report);
        let idx = match self.free_legs.pop() {
            Some(i) => {
                self.legs[i as usize] = Some(leg);
                i
            }
            None => {
                self.legs.push(Some(leg));
                (self.legs.len() - 1) as u32
            }
        };
        self.ids.insert(id, idx);
        self.sessions.entry(spec.session).or_default().push(id);
        if spec.shared {
            if !matches!(self.socks.get(spec.sock.0 as usize), Some(SockUse::Shared)) {
                self.add_shared_socket(spec.sock);
            }
            if let PeerMode::Fixed(a) = spec.peer {
                self.by_addr.insert((spec.sock, a), idx);
            }
            if let Some(s) = spec.expected_ssrc {
                self.by_ssrc.insert((spec.sock, s), idx);
            }
            if let Some(ice) = &spec.ice {
                self.by_ufrag
                    .insert((spec.sock, ice.local_ufrag.clone()), idx);
            }
        } else {
            self.set_sock(spec.sock, SockUse::Leg(idx));
        }
        Ok(())
    }

    fn idx(&self, id: LegId) -> Result<u32, RelayError> {
        self.ids
            .get(&id)
            .copied()
            .ok_or(RelayError::UnknownLeg(id.0))
    }

    /// Routes what `from` receives to `to` (one direction). Fan-out: connect one source to
    /// many destinations.
    pub fn connect(&mut self, from: LegId, to: LegId) -> Result<(), RelayError> {
        let (f, t) = (self.idx(from)?, self.idx(to)?);
        if f == t {
            return Err(RelayError::SelfRoute);
        }
        let (fs, ts) = (self.leg(f).session, self.leg(t).session);
        if fs != ts {
            return Err(RelayError::CrossSession(from.0, to.0));
        }
        let max = self.config.max_destinations;
        let fl = self.leg_mut(f);
        if fl.dests.contains(&t) {
            return Ok(());
        }
        if fl.dests.len() >= max {
            return Err(RelayError::TooManyDestinations(from.0, max));
        }
        fl.dests.push(t);
        self.leg_mut(t).sources.push(f);
        Ok(())
    }

    /// Removes the route from `from` to `to`.
    pub fn disconnect(&mut self, from: LegId, to: LegId) -> Result<(), RelayError> {
        let (f, t) = (self.idx(from)?, self.idx(to)?);
        self.leg_mut(f).dests.retain(|&d| d != t);
        self.leg_mut(t).sources.retain(|&s| s != f);
        Ok(())
    }

    /// Sets (or replaces) the SRTP keys of a leg.
    pub fn set_srtp(&mut self, id: LegId, keys: Option<LegSrtpKeys>) -> Result<(), RelayError> {
        let i = self.idx(id)?;
        let srtp = match &keys {
            Some(k) => Some(srtp::LegSrtp::new(k).map_err(|e| RelayError::Srtp(e.to_string()))?),
            None => None,
        };
        self.leg_mut(i).srtp = srtp;
        Ok(())
    }

    /// Removes a leg and every route through it. Returns its socket and whether it was the
    /// leg's own.
    pub fn remove_leg(&mut self, id: LegId) -> Result<(SockSlot, bool), RelayError> {
        let i = self.idx(id)?;
        let leg = self.legs[i as usize].take().expect("indexed leg is live");
        self.ids.remove(&id);
        for &d in &leg.dests {
            if let Some(l) = self.legs[d as usize].as_mut() {
                l.sources.retain(|&s| s != i);
            }
        }
        for &s in &leg.sources {
            if let Some(l) = self.legs[s as usize].as_mut() {
                l.dests.retain(|&d| d != i);
            }
        }
        if let Some(v) = self.sessions.get_mut(&leg.session) {
            v.retain(|&l| l != id);
            if v.is_empty() {
                self.sessions.remove(&leg.session);
            }
        }
        if leg.shared {
            self.by_addr.retain(|_, v| *v != i);
            self.by_ssrc.retain(|_, v| *v != i);
            self.by_ufrag.retain(|_, v| *v != i);
        } else {
            self.set_sock(leg.sock, SockUse::Free);
        }
        self.free_legs.push(i);
        Ok((leg.sock, !leg.shared))
    }

    /// Removes every leg of a session; returns their sockets (and whether each was own).
    pub fn remove_session(
        &mut self,
        session: SessionId,
    ) -> Result<Vec<(SockSlot, bool)>, RelayError> {
        let legs = self
            .sessions
            .get(&session)
            .cloned()
            .ok_or(RelayError::UnknownSession(session.0))?;
        legs.into_iter().map(|l| self.remove_leg(l)).collect()
    }

    /// The legs of a session.
    pub fn session_legs(&self, session: SessionId) -> Option<&[LegId]> {
        self.sessions.get(&session).map(|v| v.as_slice())
    }

    /// Number of live legs.
    pub fn leg_count(&self) -> usize {
        self.ids.len()
    }

    /// Whether a leg is live.
    pub fn has_leg(&self, id: LegId) -> bool {
        self.ids.contains_key(&id)
    }

    /// Statistics of one leg.
    pub fn leg_stats(&self, id: LegId) -> Result<LegStats, RelayError> {
        let l = self.leg(self.idx(id)?);
        let expected = l.rx.expected();
        Ok(LegStats {
            counters: l.counters.clone(),
            expected,
            received: l.rx.received(),
            lost: l.rx.lost() as i64,
            loss_pct: if expected == 0 {
                0.0
            } else {
                100.0 * l.rx.lost() as f64 / expected as f64
            },
            jitter_ms: l.rx.jitter_ms(),
            reordered: l.rx.reordered(),
            duplicates: l.rx.duplicates(),
            rtt: l.rtt,
            peer: l.peer,
            last_received: l.heard.then_some(l.last_rx),
        })
    }

    /// Drops of datagrams on shared sockets that matched no leg, by reason.
    pub fn global_drops(&self, reason: DropReason) -> u64 {
        self.global_drops[reason as usize]
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Core::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Instant {
        self.next_sweep
    }

    #[inline]
    fn leg(&self, i: u32) -> &Leg {
        self.legs[i as usize].as_ref().expect("live leg index")
    }

    #[inline]
    fn leg_mut(&mut self, i: u32) -> &mut Leg {
        self.legs[i as usize].as_mut().expect("live leg index")
    }

    /// Finds the leg a datagram on a shared socket belongs to.
    #[inline]
    fn lookup_shared(
        &self,
        sock: SockSlot,
        src: SocketAddr,
        data: &[u8],
        kind: PacketKind,
    ) -> Option<u32> {
        if let Some(&i) = self.by_addr.get(&(sock, src)) {
            return Some(i);
        }
        match kind {
            PacketKind::Rtp | PacketKind::Rtcp if data.len() >= 12 => {
                let off = if kind == PacketKind::Rtp { 8 } else { 4 };
                let ssrc =
                    u32::from_be_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]]);
                self.by_ssrc.get(&(sock, ssrc)).copied()
            }
            PacketKind::Stun => {
                let ufrag = stun::username_local_part(data)?;
                // A borrowed-key lookup would avoid this allocation; STUN is not the media path.
                self.by_ufrag.get(&(sock, ufrag.to_owned())).copied()
            }
            _ => None,
        }
    }

    /// Handles one received datagram: `data` arrived on socket `sock` from `src` at `now`.
    /// Whatever must be sent is appended to `tx`.
    #[inline]
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        sock: SockSlot,
        src: SocketAddr,
        data: &[u8],
        tx: &mut TxBatch,
    ) {
        let kind = classify(data);
        let li = match self.socks.get(sock.0 as usize) {
            Some(SockUse::Leg(i)) => *i,
            Some(SockUse::Shared) => match self.lookup_shared(sock, src, data, kind) {
                Some(i) => i,
                None => {
                    self.global_drops[DropReason::Stranger as usize] += 1;
                    return;
                }
            },
            _ => {
                self.global_drops[DropReason::Stranger as usize] += 1;
                return;
            }
        };
        match kind {
            PacketKind::Rtp => self.on_rtp(now, li, src, data, tx),
            PacketKind::Rtcp => self.on_rtcp(now, li, src, data, tx),
            PacketKind::Stun => self.on_stun(now, li, src, data, tx),
            _ => self.leg_mut(li).counters.drop(DropReason::Unsupported),
        }
    }

    fn latch(&mut self, now: Instant, li: u32, src: SocketAddr, tx: &mut TxBatch) {
        let max_age = self.config.early_media_max_age;
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        let old = leg.peer.replace(src);
        if old.is_none() {
            leg.replay_early(now, max_age, tx);
        }
        leg.counters.latches += 1;
        let (id, sock, shared) = (leg.id, leg.sock, leg.shared);
        if shared {
            if let Some(o) = old {
                self.by_addr.remove(&(sock, o));
            }
            self.by_addr.insert((sock, src), li);
        }
        self.events.push_back(Event::Latched { leg: id, addr: src });
    }

    #[inline]
    fn on_rtp(&mut self, now: Instant, li: u32, src: SocketAddr, data: &[u8], tx: &mut TxBatch) {
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        let from_peer = leg.is_peer(src);
        let first = leg.may_first_latch();
        if !from_peer && !first && (leg.srtp.is_none() || matches!(leg.mode, PeerMode::Fixed(_))) {
            leg.counters.drop(DropReason::Stranger);
            return;
        }
        let Ok(pkt) = RtpPacket::parse(data) else {
            leg.counters.drop(if from_peer {
                DropReason::Malformed
            } else {
                DropReason::Stranger
            });
            return;
        };
        let ssrc = pkt.ssrc().0;
        let (seq, ts) = (pkt.sequence_number(), pkt.timestamp());
        if let Some(s) = leg.ssrc
            && s != ssrc
            && (from_peer || leg.srtp.is_none())
        {
            // From the peer: a stream this leg did not announce. From elsewhere: a stranger.
            leg.counters.drop(if from_peer {
                DropReason::WrongSsrc
            } else {
                DropReason::Stranger
            });
            return;
        }
        if from_peer && !leg.rate.admit(now, data.len()) {
            leg.counters.drop(DropReason::RateLimited);
            return;
        }
        // SRTP: unprotected in place in the core's scratch buffer (taken out of `self` for
        // the rest of this packet, and put back at the end).
        let mut scratch = std::mem::take(&mut self.srtp_scratch);
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        let decrypted = match leg.srtp.as_mut() {
            Some(s) => match s.unprotect_rtp(data, &mut scratch) {
                Ok(n) => Some(n),
                Err(_) => {
                    leg.counters.drop(if from_peer {
                        DropReason::SrtpAuth
                    } else {
                        DropReason::Stranger
                    });
                    self.srtp_scratch = scratch;
                    return;
                }
            },
            None => None,
        };
        if !from_peer {
            // First packet of a latching leg, or an authenticated (SRTP) packet from a new
            // address: learn it. An SRTP leg whose SSRC changes with a proven address change
            // starts a new stream.
            if leg.ssrc != Some(ssrc) {
                leg.ssrc = None;
                leg.rx = ReceiveStats::new(leg.clock_rate);
            }
            self.latch(now, li, src, tx);
        }
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        if leg.ssrc.is_none() {
            leg.ssrc = Some(ssrc);
            if leg.shared {
                let sock = leg.sock;
                self.by_ssrc.insert((sock, ssrc), li);
            }
        }
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        leg.rx.on_packet(now, seq, ts);
        leg.counters.rtp_in += 1;
        leg.counters.bytes_in += data.len() as u64;
        leg.last_rx = now;
        leg.heard = true;
        let plain: &[u8] = match decrypted {
            Some(n) => &scratch[..n],
            None => data,
        };
        let payload_len = plain.len().saturating_sub(pkt.header_len()) as u32;
        self.forward_rtp(now, li, plain, ssrc, seq, ts, payload_len, tx);
        self.srtp_scratch = scratch;
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn forward_rtp(
        &mut self,
        now: Instant,
        li: u32,
        plain: &[u8],
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload_len: u32,
        tx: &mut TxBatch,
    ) {
        let n = self.leg(li).dests.len();
        let clock = self.leg(li).clock_rate;
        let mut sent = 0usize;
        let mut tx_full = false;
        for k in 0..n {
            let di = self.leg(li).dests[k];
            let dest = self.legs[di as usize].as_mut().expect("live destination");
            let Some(peer) = dest.peer else {
                if dest.hold_early(now, SourceKey { leg: li, ssrc }, (seq, ts, clock), plain) {
                    sent += 1;
                }
                continue;
            };
            let (m, switched) = dest.rewrite.map(now, SourceKey { leg: li, ssrc }, seq, ts);
            if switched {
                dest.counters.source_switches += 1;
            }
            let Some(buf) = tx.push(dest.sock, peer, plain) else {
                tx_full = true;
                break;
            };
            if !m.identity {
                // The buffer was just parsed as RTP: the fixed header is there.
                let _ = rtp::set_ssrc(buf, m.ssrc);
                let _ = rtp::set_sequence_number(buf, m.seq);
                let _ = rtp::set_timestamp(buf, m.ts);
            }
            if let Some(s) = dest.srtp.as_mut()
                && tx.grow_last(|b, len| s.protect_rtp(b, len)).is_err()
            {
                continue;
            }
            if dest.cache.is_enabled()
                && let Some(wire) = tx.last_mut()
            {
                dest.cache.insert(m.seq, wire);
            }
            let wire_len = tx.items().last().map(|t| t.len).unwrap_or(0);
            dest.counters.packets_out += 1;
            dest.counters.bytes_out += u64::from(wire_len);
            dest.sent_packets = dest.sent_packets.wrapping_add(1);
            dest.sent_octets = dest.sent_octets.wrapping_add(payload_len);
            dest.last_sent_ts = Some((m.ts, now));
            sent += 1;
        }
        if tx_full {
            self.leg_mut(li).counters.drop(DropReason::TxFull);
        } else if sent == 0 {
            self.leg_mut(li).counters.drop(DropReason::NoDestination);
        }
    }

    /// Handles timers: frees idle legs and sends the RTCP reports that are due.
    pub fn handle_timeout(&mut self, now: Instant, tx: &mut TxBatch) {
        if now < self.next_sweep {
            return;
        }
        self.next_sweep = now + SWEEP_INTERVAL;
        let idle = self.config.idle_timeout;
        let mut freed = Vec::new();
        for i in 0..self.legs.len() {
            let Some(leg) = self.legs[i].as_ref() else {
                continue;
            };
            if now.saturating_duration_since(leg.last_rx) >= idle {
                freed.push(leg.id);
                continue;
            }
            if now >= leg.next_report && tx.room() > 0 {
                self.send_report(now, i as u32, tx);
            }
        }
        for id in freed {
            let session = self.leg(self.ids[&id]).session;
            let Ok(stats) = self.leg_stats(id) else {
                continue;
            };
            if let Ok((sock, own_socket)) = self.remove_leg(id) {
                self.events.push_back(Event::LegFreed {
                    leg: id,
                    session,
                    sock,
                    own_socket,
                    stats: Box::new(stats),
                });
            }
        }
    }

    /// The SSRC a destination leg currently receives from, as it sees it.
    pub fn dest_ssrc(&self, id: LegId) -> Option<Ssrc> {
        self.idx(id)
            .ok()
            .and_then(|i| self.leg(i).rewrite.out_ssrc())
    }
}
