//! The sans-IO forwarding core: sessions of transports carrying streams, subscriptions,
//! latching, rewriting, statistics, RTCP, retransmission cache, rate caps and idle timeouts.
//!
//! Drive it with three calls, never reading a clock or touching a socket:
//!
//! - [`Core::handle_datagram`]`(now, sock, src, bytes, &mut tx)` for every received datagram;
//!   what must be sent is appended to the [`TxBatch`].
//! - [`Core::handle_timeout`]`(now, &mut tx)` when [`Core::poll_timeout`] says (reports,
//!   idle transports).
//! - [`Core::poll_event`] for what the control plane must learn (a transport latched, a
//!   transport freed as idle).
//!
//! ## Nouns
//!
//! - A **transport** ([`transport::Transport`], a *leg* in the control API) is one 5-tuple
//!   or shared-port peer: latching, ICE-lite, SRTP contexts, rate cap, counters.
//! - It carries **streams** ([`stream`]): a receive stream per SSRC its peer sends (declared
//!   in the [`LegSpec`], or learned from a latching client up to
//!   [`LegSpec::max_streams`]; any other SSRC is `wrong_ssrc`) and a send stream per source
//!   stream it receives, each with its own rewriter, cache entries and sender-report state.
//! - **Subscriptions** route streams: [`Core::connect`]`(from, to)` subscribes `to` to every
//!   stream of `from`, present and future. Two senders are two streams at every receiver.
//!
//! Data path of one RTP packet: transport lookup (own port: socket slot; shared port:
//! address, else SSRC or STUN username) → latching and proof checks → SRTP unprotect →
//! receive stream by SSRC (statistics) → for each send stream it feeds: rewrite → protect →
//! batch → cache → count (the private `egress` module). RTCP is per transport ([`rtcp`]).
//! Timers live in a heap ([`timers`]).
//!
//! Early media: what a source sends toward a latching transport before that transport has a
//! peer (the caller's first words and first keyframe, sent while the callee's client is
//! still starting) is held in the transport's retransmission cache (the newest
//! [`transport::EARLY_MEDIA_PACKETS`]) and sent, in order, the moment it latches, if no
//! older than [`CoreConfig::early_media_max_age`] (200 ms by default).
//!
//! The control calls ([`Core::add_leg`], [`Core::connect`], [`Core::remove_leg`], …) run
//! between batches and may allocate (a new stream, a new subscription). On the per-packet
//! path nothing allocates on plain transports: lookups are an array index (own port) or one
//! hash probe (shared port) and a scan of the transport's few streams, the transmit goes into
//! the preallocated batch and the rewrite is done in place.
#![forbid(unsafe_code)]

pub mod addr_map;
pub mod browser;
pub mod bwe;
pub mod dtls;
mod egress;
pub mod error;
pub mod ids;
pub mod keyframe;
pub mod layers;
pub mod mid;
pub mod nack_cache;
pub mod processor;
pub mod rate;
pub mod rewrite;
pub mod rtcp;
pub mod srtp;
pub mod stats;
pub mod stream;
pub mod stun;
mod subscribe;
pub mod timers;
pub mod transmit;
pub mod transport;
pub mod trunk;
pub mod twcc;
pub mod warm;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtp::RtpPacket;

use addr_map::FxHashMap;
pub use browser::{BrowserCounters, BrowserSpec};
pub use bwe::BweConfig;
pub use dtls::{DtlsIdentity, Fingerprint};
use egress::{Out, Sent, egress};
pub use error::CoreError;
pub use ids::{LegId, SessionId, SockSlot};
pub use layers::SimulcastSpec;
use nack_cache::NackCache;
pub use nack_cache::NackCachePolicy;
pub use processor::{PROCESSOR_SOCK, ProcessorPort, ProcessorState, StreamKind};
pub use rate::RateCap;
use rewrite::SourceKey;
pub use srtp::{LegSrtpKeys, SrtpKey, SrtpProfile};
pub use stats::{DropReason, LegCounters, LegStats};
use stream::RecvStream;
use timers::Timers;
pub use transmit::{Transmit, TxBatch};
pub use transport::{IceCredentials, LegSpec, PeerMode, StreamSpec, Transport};

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
    /// Bytes of retransmission cache per transport (0 turns NACK answering off).
    pub nack_cache_bytes: usize,
    /// Index entries of the retransmission cache per transport.
    pub nack_cache_slots: usize,
    /// When a transport's cache starts keeping what is sent (default: from its first NACK).
    pub nack_cache_policy: NackCachePolicy,
    /// Most lost packets per second the relay asks one transport's peer to resend on behalf
    /// of receivers its cache could not serve (burst: half a second's worth); 0: no limit.
    pub max_forwarded_nacks_per_sec: u32,
    /// Most subscribers one transport may have (fan-out bound).
    pub max_destinations: usize,
    /// Early media held for a leg that has not latched is replayed when it latches only if
    /// it is no older than this (see [`transport::EARLY_MEDIA_MAX_AGE`], the default).
    pub early_media_max_age: Duration,
    /// Wall-clock time at `epoch` (for NTP timestamps in reports), as an offset from the Unix
    /// epoch.
    pub wallclock_at_epoch: Duration,
    /// A browser transport with no valid connectivity check for this long has lost consent
    /// (RFC 7675: 30 s) and is freed.
    pub consent_timeout: Duration,
    /// Interval of transport-wide congestion control feedback toward browser senders.
    pub twcc_interval: Duration,
    /// The bandwidth estimator of browser receivers ([`bwe`]), which picks their simulcast
    /// layers.
    pub bwe: BweConfig,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            report_interval: Duration::from_secs(1),
            keyframe_min_interval: Duration::from_millis(300),
            nack_cache_bytes: 32 * 1024,
            nack_cache_slots: 256,
            nack_cache_policy: NackCachePolicy::default(),
            max_forwarded_nacks_per_sec: 500,
            max_destinations: 64,
            early_media_max_age: transport::EARLY_MEDIA_MAX_AGE,
            wallclock_at_epoch: Duration::ZERO,
            consent_timeout: Duration::from_secs(30),
            twcc_interval: Duration::from_millis(100),
            bwe: BweConfig::default(),
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
    /// Boxed: an `Option` of the 800-byte transport puts its `None` niche wherever the
    /// compiler likes (it chose a cold field in the twelfth cache line, so every lookup
    /// read a cold line); a dense array of pointers keeps the liveness check in one hot
    /// line and the lookup on the transport's first line. See docs/design-notes.md.
    transports: Vec<Option<Box<Transport>>>,
    free_slots: Vec<u32>,
    next_generation: u32,
    ids: HashMap<LegId, u32>,
    sessions: HashMap<SessionId, Vec<LegId>>,
    socks: Vec<SockUse>,
    by_addr: FxHashMap<(SockSlot, SocketAddr), u32>,
    by_ssrc: FxHashMap<(SockSlot, Ssrc), u32>,
    by_ufrag: HashMap<(SockSlot, String), u32>,
    global_drops: [u64; DropReason::COUNT],
    events: VecDeque<Event>,
    timers: Timers,
    /// State of the generator that spreads report times (RFC 3550 §6.3.1 randomization).
    jitter_state: u64,
    /// Where SRTP/SRTCP datagrams are copied and unprotected in place (the datagram comes
    /// in as `&[u8]`): one buffer for the core, taken while a packet is handled.
    srtp_scratch: Box<[u8]>,
    browser_counters: BrowserCounters,
}

impl Core {
    /// A core with no transports. `now` is its epoch (RTP arrival clocks count from here).
    pub fn new(config: CoreConfig, now: Instant) -> Self {
        Self {
            config,
            epoch: now,
            transports: Vec::new(),
            free_slots: Vec::new(),
            next_generation: 0,
            ids: HashMap::new(),
            sessions: HashMap::new(),
            socks: Vec::new(),
            by_addr: FxHashMap::default(),
            by_ssrc: FxHashMap::default(),
            by_ufrag: HashMap::new(),
            global_drops: [0; DropReason::COUNT],
            events: VecDeque::with_capacity(64),
            timers: Timers::default(),
            jitter_state: 0x9e37_79b9_7f4a_7c15,
            srtp_scratch: vec![0u8; transmit::MAX_DATAGRAM].into_boxed_slice(),
            browser_counters: BrowserCounters::default(),
        }
    }

    /// `interval` scaled by a factor drawn uniformly from [0.5, 1.5), as RFC 3550 §6.3.1
    /// asks of RTCP intervals: transports created together (a burst of calls, a restart) must
    /// not send their reports in the same instant, or the relay stalls its media path every
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

    /// Declares `sock` a shared socket: transports on it are told apart by source address,
    /// STUN username or SSRC.
    pub fn add_shared_socket(&mut self, sock: SockSlot) {
        self.set_sock(sock, SockUse::Shared);
    }

    /// Adds a transport (leg). Fails on bad SRTP keys, bad stream declarations, or a
    /// shared-port transport with no way to be found.
    pub fn add_leg(&mut self, now: Instant, id: LegId, spec: LegSpec) -> Result<(), CoreError> {
        self.add_leg_with(now, id, spec, None)
    }

    /// [`Core::add_leg`], or a processor transport when `processor` is given (see
    /// [`processor`]).
    fn add_leg_with(
        &mut self,
        now: Instant,
        id: LegId,
        spec: LegSpec,
        processor: Option<Box<processor::ProcessorState>>,
    ) -> Result<(), CoreError> {
        if spec.shared
            && spec.streams.is_empty()
            && spec.ice.is_none()
            && matches!(spec.peer, PeerMode::Latching)
        {
            return Err(CoreError::SharedLegUnidentifiable);
        }
        if spec.streams.len() > transport::MAX_STREAMS {
            return Err(CoreError::BadStreams("too many streams declared"));
        }
        for (i, a) in spec.streams.iter().enumerate() {
            if spec.streams[..i].iter().any(|b| b.ssrc == a.ssrc) {
                return Err(CoreError::BadStreams("an SSRC is declared twice"));
            }
        }
        if self.ids.contains_key(&id) {
            return Err(CoreError::DuplicateLeg(id.0));
        }
        if spec.browser.is_some() && (spec.ice.is_none() || spec.srtp.is_some()) {
            return Err(CoreError::BadBrowser);
        }
        let srtp = match &spec.srtp {
            Some(k) => Some(srtp::LegSrtp::new(k).map_err(|e| CoreError::Srtp(e.to_string()))?),
            None => None,
        };
        let cache = NackCache::with_policy(
            self.config.nack_cache_bytes,
            self.config.nack_cache_slots,
            self.config.nack_cache_policy,
        );
        let first_report = now + self.jittered(self.config.report_interval);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let mut t = Transport::new(id, generation, &spec, srtp, cache, now, first_report);
        t.nack_forward = rate::RateLimiter::new(
            rate::RateCap {
                packets_per_sec: self.config.max_forwarded_nacks_per_sec,
                bytes_per_sec: 0,
                burst_ms: 500,
            },
            now,
        );
        if let Some(b) = t.browser.as_mut()
            && b.bwe.is_some()
        {
            b.bwe = Some(bwe::Bwe::new(self.config.bwe));
        }
        let is_processor = processor.is_some();
        if is_processor {
            t.processor = processor;
            t.declared = true;
        }
        let idx = match self.free_slots.pop() {
            Some(i) => {
                self.transports[i as usize] = Some(Box::new(t));
                i
            }
            None => {
                self.transports.push(Some(Box::new(t)));
                (self.transports.len() - 1) as u32
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
            for s in &spec.streams {
                self.by_ssrc.insert((spec.sock, s.ssrc), idx);
            }
            if let Some(ice) = &spec.ice {
                self.by_ufrag
                    .insert((spec.sock, ice.local_ufrag.clone()), idx);
            }
        } else if !is_processor {
            self.set_sock(spec.sock, SockUse::Leg(idx));
        }
        let (idle, consent) = (self.config.idle_timeout, self.config.consent_timeout);
        let t = self.t_mut(idx);
        let due = t.next_due(idle, consent);
        t.timer_due = due;
        self.timers.schedule(due, idx, generation);
        Ok(())
    }

    fn idx(&self, id: LegId) -> Result<u32, CoreError> {
        self.ids
            .get(&id)
            .copied()
            .ok_or(CoreError::UnknownLeg(id.0))
    }

    /// Sets (or replaces) the SRTP keys of a transport: fresh contexts both ways, so every
    /// stream it sends starts a fresh packet index (rollover counter 0, SRTCP index 0) under
    /// the new keys, as a fresh far end expects; what the peer still sends under the old keys
    /// fails authentication (`srtp_auth`, dropped and counted). A re-key of a trunk end on a
    /// resume (see [`trunk`]) is this. The retransmission cache is forgotten when it holds
    /// what went on the wire (protected under the old keys, which a NACK must never replay);
    /// packets held plain for a transport that has not latched are kept.
    ///
    /// A transport aimed at a fixed address that is given keys becomes latching: it keeps
    /// sending to that address until a packet that authenticates under the new keys comes
    /// from elsewhere, and then moves there (only the holder of the new keys can move it).
    /// A trunk end of the node that did not make the trunk is re-keyed this way when the
    /// call is re-anchored on it (its far node died and the other endpoint resumed on a
    /// third node, which then aims at this end).
    pub fn set_srtp(&mut self, id: LegId, keys: Option<LegSrtpKeys>) -> Result<(), CoreError> {
        let i = self.idx(id)?;
        let srtp = match &keys {
            Some(k) => Some(srtp::LegSrtp::new(k).map_err(|e| CoreError::Srtp(e.to_string()))?),
            None => None,
        };
        let t = self.t_mut(i);
        if srtp.is_some()
            && let PeerMode::Fixed(a) = t.mode
        {
            t.mode = PeerMode::Latching;
            t.peer = Some(a);
        }
        t.srtp = srtp.map(Box::new);
        if t.early.is_empty() {
            t.cache.clear();
        }
        Ok(())
    }

    /// Removes a transport, its streams and every subscription through it. Returns its
    /// socket and whether it was its own. What it fed becomes orphaned send streams at the
    /// receivers (see [`stream`]).
    pub fn remove_leg(&mut self, id: LegId) -> Result<(SockSlot, bool), CoreError> {
        let i = self.idx(id)?;
        self.unlink_transport(i);
        let t = self.transports[i as usize]
            .take()
            .expect("indexed transport is live");
        self.ids.remove(&id);
        if let Some(v) = self.sessions.get_mut(&t.session) {
            v.retain(|&l| l != id);
            if v.is_empty() {
                self.sessions.remove(&t.session);
            }
        }
        if t.shared {
            self.by_addr.retain(|_, v| *v != i);
            self.by_ssrc.retain(|_, v| *v != i);
            self.by_ufrag.retain(|_, v| *v != i);
        } else if t.processor.is_none() {
            self.set_sock(t.sock, SockUse::Free);
        }
        self.free_slots.push(i);
        Ok((t.sock, !t.shared && t.processor.is_none()))
    }

    /// Removes every transport of a session; returns their sockets (and whether each was
    /// its own).
    pub fn remove_session(
        &mut self,
        session: SessionId,
    ) -> Result<Vec<(SockSlot, bool)>, CoreError> {
        let legs = self
            .sessions
            .get(&session)
            .cloned()
            .ok_or(CoreError::UnknownSession(session.0))?;
        legs.into_iter().map(|l| self.remove_leg(l)).collect()
    }

    /// The transports of a session.
    pub fn session_legs(&self, session: SessionId) -> Option<&[LegId]> {
        self.sessions.get(&session).map(|v| v.as_slice())
    }

    /// Number of live transports.
    pub fn leg_count(&self) -> usize {
        self.ids.len()
    }

    /// Whether a transport is live.
    pub fn has_leg(&self, id: LegId) -> bool {
        self.ids.contains_key(&id)
    }

    /// Statistics of one transport: its counters, and the receive statistics of its streams
    /// summed (jitter: the largest of its streams').
    pub fn leg_stats(&self, id: LegId) -> Result<LegStats, CoreError> {
        let t = self.t(self.idx(id)?);
        let (mut expected, mut received, mut lost) = (0u64, 0u64, 0i64);
        let (mut reordered, mut duplicates, mut jitter_ms) = (0u64, 0u64, 0f64);
        for r in &t.recv {
            expected += r.stats.expected();
            received += r.stats.received();
            lost += r.stats.lost() as i64;
            reordered += r.stats.reordered();
            duplicates += r.stats.duplicates();
            jitter_ms =
                jitter_ms.max(f64::from(r.stats.jitter()) * 1000.0 / f64::from(r.clock_rate));
        }
        Ok(LegStats {
            counters: t.counters.clone(),
            expected,
            received,
            lost,
            loss_pct: if expected == 0 {
                0.0
            } else {
                100.0 * lost.max(0) as f64 / expected as f64
            },
            jitter_ms,
            reordered,
            duplicates,
            rtt: t.rtt,
            peer: t.peer,
            last_received: t.heard.then_some(t.last_rx),
        })
    }

    /// The SSRCs a transport sends to the relay (declared or learned so far).
    pub fn recv_ssrcs(&self, id: LegId) -> Vec<Ssrc> {
        self.idx(id)
            .map(|i| self.t(i).recv.iter().map(|r| r.ssrc).collect())
            .unwrap_or_default()
    }

    /// The SSRCs a transport receives from the relay (one per source stream, orphans
    /// included), in slot order.
    pub fn send_ssrcs(&self, id: LegId) -> Vec<Ssrc> {
        self.idx(id)
            .map(|i| self.t(i).send.iter().flatten().map(|s| s.ssrc()).collect())
            .unwrap_or_default()
    }

    /// Drops of datagrams on shared sockets that matched no transport, by reason.
    pub fn global_drops(&self, reason: DropReason) -> u64 {
        self.global_drops[reason as usize]
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Core::handle_timeout`] should next be called (far in the future when there is
    /// no transport).
    pub fn poll_timeout(&self) -> Instant {
        self.timers
            .next()
            .unwrap_or(self.epoch + Duration::from_secs(100 * 365 * 86_400))
    }

    #[inline]
    fn t(&self, i: u32) -> &Transport {
        self.transports[i as usize]
            .as_ref()
            .expect("live transport index")
    }

    #[inline]
    fn t_mut(&mut self, i: u32) -> &mut Transport {
        self.transports[i as usize]
            .as_mut()
            .expect("live transport index")
    }

    /// Finds the transport a datagram on a shared socket belongs to.
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
                self.by_ssrc.get(&(sock, Ssrc(ssrc))).copied()
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
            PacketKind::Dtls => self.on_dtls(now, li, src, data, tx),
            _ => self.t_mut(li).counters.drop(DropReason::Unsupported),
        }
    }

    fn latch(&mut self, now: Instant, li: u32, src: SocketAddr, tx: &mut TxBatch) {
        let max_age = self.config.early_media_max_age;
        let t = self.transports[li as usize]
            .as_mut()
            .expect("live transport");
        let old = t.peer.replace(src);
        if old.is_none() && t.media_ready() {
            egress::replay_early(now, max_age, t, tx);
        }
        t.counters.latches += 1;
        let (id, sock, shared) = (t.id, t.sock, t.shared);
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
        let t = self.transports[li as usize]
            .as_mut()
            .expect("live transport");
        let from_peer = t.is_peer(src);
        let first = t.may_first_latch();
        if t.browser.is_some() && !(from_peer && t.srtp.is_some()) {
            // A browser's path is chosen by ICE, and its media keyed by DTLS first.
            t.counters.drop(if from_peer {
                DropReason::NotKeyed
            } else {
                DropReason::Stranger
            });
            return;
        }
        if !from_peer && !first && (t.srtp.is_none() || matches!(t.mode, PeerMode::Fixed(_))) {
            t.counters.drop(DropReason::Stranger);
            return;
        }
        let Ok(pkt) = RtpPacket::parse(data) else {
            t.counters.drop(if from_peer {
                DropReason::Malformed
            } else {
                DropReason::Stranger
            });
            return;
        };
        let ssrc = pkt.ssrc();
        let (seq, ts) = (pkt.sequence_number(), pkt.timestamp());
        let known = t.recv_index(ssrc);
        // A new video SSRC of a simulcast browser is placed by its RID, or not at all.
        let mut layer = None;
        if known.is_none()
            && let Some(sim) = t.browser.as_ref().and_then(|b| b.simulcast.as_ref())
            && t.clock_for(pkt.payload_type()) == 90_000
        {
            layer = sim.layer_of(&pkt);
            if layer.is_none() {
                t.counters.drop(DropReason::WrongSsrc);
                return;
            }
        }
        // A proven move (SRTP from a new address) may bring a new SSRC: the peer restarted
        // (a new device); its learned streams are replaced below.
        let proven_move = !from_peer && !first;
        if known.is_none() && !(t.may_learn() || (proven_move && !t.declared)) {
            // From the peer: a stream this transport did not announce (or one too many).
            // From elsewhere: a stranger.
            t.counters.drop(if from_peer {
                DropReason::WrongSsrc
            } else {
                DropReason::Stranger
            });
            return;
        }
        if from_peer && !t.rate.admit(now, data.len()) {
            t.counters.drop(DropReason::RateLimited);
            return;
        }
        // SRTP: unprotected in place in the core's scratch buffer (taken out of `self` for
        // the rest of this packet, and put back at the end).
        let mut scratch = std::mem::take(&mut self.srtp_scratch);
        let t = self.transports[li as usize]
            .as_mut()
            .expect("live transport");
        let decrypted = match t.srtp.as_mut() {
            Some(s) => match s.unprotect_rtp(data, &mut scratch) {
                Ok(n) => Some(n),
                Err(_) => {
                    t.counters.drop(if from_peer {
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
            if proven_move && known.is_none() {
                self.retire_learned(now, li);
            }
            self.latch(now, li, src, tx);
        }
        let k = match known {
            Some(k) => k,
            None => {
                let clock = self.t(li).clock_for(pkt.payload_type());
                let mut r = RecvStream::new(ssrc, clock, false);
                r.layer = layer;
                self.add_recv_stream(now, li, r)
            }
        };
        let t = self.transports[li as usize]
            .as_mut()
            .expect("live transport");
        t.recv[k].stats.on_packet(now, seq, ts);
        let layer_rate_measured =
            t.recv[k].layer.is_some() && t.recv[k].rate.on_packet(now, data.len());
        if let Some(rec) = t.browser.as_mut().and_then(|b| b.twcc.as_mut())
            && let Some(tw) = rec.seq_of(&pkt)
        {
            let since = now.saturating_duration_since(self.epoch);
            rec.on_packet(now, since, ssrc, tw, self.config.twcc_interval);
            let (due, gen_) = (rec.due, t.generation);
            if let Some(due) = due.filter(|&d| d < t.timer_due) {
                t.timer_due = due;
                self.timers.schedule(due, li, gen_);
            }
        }
        let t = self.transports[li as usize]
            .as_mut()
            .expect("live transport");
        t.counters.rtp_in += 1;
        t.counters.bytes_in += data.len() as u64;
        t.last_rx = now;
        t.heard = true;
        let plain: &[u8] = match decrypted {
            Some(n) => &scratch[..n],
            None => data,
        };
        let payload_len = plain.len().saturating_sub(pkt.header_len()) as u32;
        let payload_off = plain.len() - payload_len as usize;
        self.forward_rtp(now, li, k, plain, (seq, ts, payload_len, payload_off), tx);
        self.srtp_scratch = scratch;
        if layer_rate_measured {
            self.reselect_for_layer(now, li, k, tx);
        }
    }

    /// Sends one RTP packet of receive stream `k` of transport `li` to every send stream it
    /// feeds.
    #[inline]
    fn forward_rtp(
        &mut self,
        now: Instant,
        li: u32,
        k: usize,
        plain: &[u8],
        (seq, ts, payload_len, payload_off): (u16, u32, u32, usize),
        tx: &mut TxBatch,
    ) {
        let src = self.t(li);
        let key = SourceKey {
            leg: src.id,
            ssrc: src.recv[k].ssrc,
        };
        let layer = src.recv[k].layer;
        let n = src.recv[k].outs.len();
        let mut sent = 0usize;
        let mut skipped = 0usize;
        let mut want_keyframe = false;
        let mut tx_full = false;
        for j in 0..n {
            let o = self.t(li).recv[k].outs[j];
            let dest = self.transports[o.transport as usize]
                .as_mut()
                .expect("live destination");
            let Some(Some(ss)) = dest.send.get_mut(o.slot as usize) else {
                continue;
            };
            if let (Some(l), Some(sel)) = (layer, ss.layers.as_mut())
                && sel.current != Some(l.index)
            {
                // Not the layer this receiver gets: passed over, unless it is the one wanted
                // and this packet opens a keyframe (then the receiver switches here).
                if sel.target != l.index {
                    skipped += 1;
                    continue;
                }
                if !keyframe::h264_keyframe_start(plain.get(payload_off..).unwrap_or(&[])) {
                    want_keyframe = true;
                    skipped += 1;
                    continue;
                }
                if sel.current.is_some() {
                    sel.switches += 1;
                    dest.counters.layer_switches += 1;
                    self.browser_counters.layer_switches += 1;
                }
                sel.current = Some(l.index);
                ss.source = Some(stream::Source {
                    transport: li,
                    ssrc: key.ssrc,
                });
                ss.source_sr = None;
            }
            let (map, switched) = ss.rewrite.map(now, key, seq, ts);
            let (pt_map, mid) = (ss.pt_map, ss.mid);
            if switched {
                dest.counters.source_switches += 1;
            }
            let pt = pt_map.and_then(|(from, to)| (plain[1] & 0x7f == from.0).then_some(to));
            if dest.processor.is_some() {
                let m = (map, pt);
                if processor::push_to_processor(dest, o, key.leg, plain, m, payload_len, now) {
                    sent += 1;
                }
                continue;
            }
            let out = Out::Rtp {
                plain,
                map,
                pt,
                mid,
                slot: o.slot,
                payload_len,
                now,
            };
            match egress(tx, dest, out) {
                Sent::Batched | Sent::Held => sent += 1,
                Sent::Full => {
                    tx_full = true;
                    break;
                }
                Sent::Nothing => {}
            }
        }
        if want_keyframe {
            self.request_keyframe_of_stream(now, li, k, tx);
        }
        if tx_full {
            self.t_mut(li).counters.drop(DropReason::TxFull);
        } else if sent == 0 && skipped == 0 {
            self.t_mut(li).counters.drop(DropReason::NoDestination);
        }
    }

    /// Handles timers: frees idle transports and sends the RTCP reports that are due.
    pub fn handle_timeout(&mut self, now: Instant, tx: &mut TxBatch) {
        let idle = self.config.idle_timeout;
        while let Some((due, i, generation)) = self.timers.pop_due(now) {
            let Some(t) = self.transports.get(i as usize).and_then(Option::as_ref) else {
                continue;
            };
            if t.generation != generation || t.timer_due != due {
                continue; // a freed slot's, or superseded by an earlier entry
            }
            let is_browser = t.browser.is_some();
            if now.saturating_duration_since(t.last_rx) >= idle {
                if t.processor.is_none() {
                    self.free_idle(i);
                    continue;
                }
                // A processor's far side is in the process: never idle (the control plane
                // removes it).
                self.t_mut(i).last_rx = now;
            }
            if is_browser && !self.browser_timeout(now, i, tx) {
                continue; // freed (consent expired, or DTLS failed)
            }
            if now >= self.t(i).next_report {
                if tx.room() == 0 {
                    // The shell flushes and calls again: poll_timeout is already due.
                    self.timers.schedule(due, i, generation);
                    return;
                }
                self.send_report(now, i, tx);
            }
            let consent = self.config.consent_timeout;
            let t = self.t_mut(i);
            let next = t.next_due(idle, consent);
            t.timer_due = next;
            self.timers.schedule(next, i, generation);
        }
    }

    fn free_idle(&mut self, i: u32) {
        let (id, session) = {
            let t = self.t(i);
            (t.id, t.session)
        };
        let Ok(stats) = self.leg_stats(id) else {
            return;
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

    /// The SSRC a transport receives its first source stream as (see
    /// [`Core::send_ssrcs`] for all of them).
    pub fn dest_ssrc(&self, id: LegId) -> Option<Ssrc> {
        self.send_ssrcs(id).first().copied()
    }
}
