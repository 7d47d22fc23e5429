//! A transport: one 5-tuple (or one shared-port peer) of one endpoint — what the control API
//! calls a *leg*. It owns the addressing (latching, fixed remote, ICE-lite credentials), the
//! SRTP contexts, the rate cap, the counters, the retransmission cache and the early-media
//! record, and carries streams: a [`RecvStream`] per SSRC its peer sends, a [`SendStream`]
//! per source stream it receives.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_media::ids::{Pt, Ssrc};

use super::browser::{BrowserSpec, BrowserState};
use super::ids::{LegId, SessionId, SockSlot};
use super::nack_cache::NackCache;
use super::processor::{ProcessorState, StreamKind};
use super::rate::{RateCap, RateLimiter};
use super::srtp::{LegSrtp, LegSrtpKeys};
use super::stats::LegCounters;
use super::stream::{RecvStream, SendStream};

/// How a transport learns where its peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMode {
    /// Symmetric RTP: the peer address is learned from the first valid packet; a later change
    /// is accepted only from a packet that proves it belongs to the transport (SRTP
    /// authentication or a STUN binding request with its credentials).
    Latching,
    /// Aimed at an explicit remote address by a trusted caller; packets from anywhere else
    /// are strangers.
    Fixed(SocketAddr),
}

/// ICE-lite style credentials for a transport: a binding request whose USERNAME starts with
/// `local_ufrag:` and whose MESSAGE-INTEGRITY verifies under `local_pwd` proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCredentials {
    /// The relay's username fragment for this transport.
    pub local_ufrag: String,
    /// The relay's password for this transport (short-term credential key).
    pub local_pwd: String,
}

/// One stream a transport declares it will send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// Its SSRC.
    pub ssrc: Ssrc,
    /// Its media clock rate, Hz.
    pub clock_rate: u32,
}

/// How many streams a latching transport that declared none may teach the relay (audio,
/// video and their retransmission streams); packets of any further SSRC are `wrong_ssrc`.
pub const DEFAULT_MAX_STREAMS: usize = 4;

/// Most streams a transport may declare or learn (one RTCP compound has room for a report
/// block per stream).
pub const MAX_STREAMS: usize = 16;

/// Everything the control plane says about a new transport (leg).
#[derive(Debug, Clone)]
pub struct LegSpec {
    /// The session it belongs to.
    pub session: SessionId,
    /// The socket it receives on and sends from.
    pub sock: SockSlot,
    /// Whether `sock` is shared with other transports (then told apart by address, STUN
    /// username or SSRC) or its own port.
    pub shared: bool,
    /// Latching or fixed remote.
    pub peer: PeerMode,
    /// The streams the peer will send, if known in advance (required to latch on a shared
    /// port without ICE credentials). Declared: any other SSRC is `wrong_ssrc`. None
    /// declared: streams are learned from the first packets, up to `max_streams`.
    pub streams: Vec<StreamSpec>,
    /// Most streams learned when none are declared (at most [`MAX_STREAMS`]).
    pub max_streams: usize,
    /// SRTP keys, if the transport is encrypted.
    pub srtp: Option<LegSrtpKeys>,
    /// ICE credentials, if the peer sends STUN binding requests.
    pub ice: Option<IceCredentials>,
    /// Media clock rate of a learned stream whose payload type is not in `clock_rates`, Hz.
    pub clock_rate: u32,
    /// Clock rates of learned streams by payload type (audio and video on one transport).
    pub clock_rates: Vec<(Pt, u32)>,
    /// Rate cap on what the peer sends.
    pub rate_cap: RateCap,
    /// A browser transport (WebRTC: ICE-lite, DTLS-SRTP, TWCC; see [`super::browser`]):
    /// needs `ice`, and `srtp` must be `None` (DTLS makes the keys).
    pub browser: Option<BrowserSpec>,
    /// Mixed into the SSRCs this transport sends with (its send streams' and its RTCP
    /// sender SSRC); 0: none. A trunk gets a random one per end, so that a new end keyed like
    /// an old one (a call resumed on another node) never sends under the SSRC, and so the
    /// SRTP IVs, that the old end used.
    pub ssrc_salt: u32,
}

impl LegSpec {
    /// A latching plain-RTP transport on its own socket `sock`, with default settings (48 kHz
    /// clock, streams learned, no rate cap).
    pub fn latching(session: SessionId, sock: SockSlot) -> Self {
        Self {
            session,
            sock,
            shared: false,
            peer: PeerMode::Latching,
            streams: Vec::new(),
            max_streams: DEFAULT_MAX_STREAMS,
            srtp: None,
            ice: None,
            clock_rate: 48_000,
            clock_rates: Vec::new(),
            rate_cap: RateCap::default(),
            browser: None,
            ssrc_salt: 0,
        }
    }
}

/// Most packets held for a transport that has not latched yet (early media); older ones
/// give way.
pub const EARLY_MEDIA_PACKETS: usize = 64;

/// Default of [`super::CoreConfig::early_media_max_age`]: held early media older than this
/// (by arrival, and by RTP time behind the newest held packet of its stream) is not
/// replayed: a burst of stale audio would only push up the receiver's jitter buffer delay at
/// the start of the call. It covers the usual gap between the caller's first packet and the
/// callee's (a few tens of milliseconds) with room to spare.
pub const EARLY_MEDIA_MAX_AGE: Duration = Duration::from_millis(200);

/// One packet held for a transport that has not latched: which send stream, its outgoing
/// SSRC and sequence number (its key in the retransmission cache, which holds the bytes),
/// its outgoing timestamp and its arrival.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// Slot of the send stream.
    pub slot: u32,
    /// Outgoing SSRC.
    pub ssrc: Ssrc,
    /// Outgoing sequence number.
    pub seq: u16,
    /// Outgoing RTP timestamp.
    pub ts: u32,
    /// Arrival.
    pub at: Instant,
}

/// The early media of a transport, oldest first, in a fixed ring.
#[derive(Debug, Clone, Default)]
pub struct EarlyRing {
    items: Vec<Held>,
    start: usize,
}

impl EarlyRing {
    /// Records one held packet, forgetting the oldest beyond [`EARLY_MEDIA_PACKETS`].
    pub fn push(&mut self, h: Held) {
        if self.items.len() < EARLY_MEDIA_PACKETS {
            self.items.push(h);
        } else {
            self.items[self.start] = h;
            self.start = (self.start + 1) % EARLY_MEDIA_PACKETS;
        }
    }

    /// Takes every record, oldest first (the ring is left empty).
    pub fn drain(&mut self) -> impl Iterator<Item = Held> + '_ {
        let start = self.start;
        self.start = 0;
        let n = self.items.len();
        let mut v = std::mem::take(&mut self.items);
        v.rotate_left(start % n.max(1));
        v.into_iter()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The live state of a transport inside the core.
///
/// The layout is fixed (`repr(C)`) so that what the forwarding path reads for every packet —
/// addressing, the stream lists, the SRTP and browser parts (boxed: a pointer here), the
/// receive time, the flags and the traffic counters — sits in the first cache lines, and the
/// control plane's state after it: at a quarter of the relay's maximum rate every packet
/// finds this state out of the CPU's caches, and each line touched is a miss
/// (`docs/design-notes.md`, "Hot fields first"). `layout_tests` below keeps it so.
#[derive(Debug)]
#[repr(C)]
pub struct Transport {
    // ---- hot: read or written for every packet ----
    /// Where packets toward this transport go, once known.
    pub peer: Option<SocketAddr>,
    /// Peer mode.
    pub mode: PeerMode,
    /// What the peer sends, one per SSRC.
    pub recv: Vec<RecvStream>,
    /// What the relay sends toward the peer, one per source stream (slots; `None` is free).
    pub send: Vec<Option<SendStream>>,
    /// SRTP state.
    pub srtp: Option<Box<LegSrtp>>,
    /// The browser part (ICE-lite state, DTLS, TWCC), for a browser transport.
    pub browser: Option<Box<BrowserState>>,
    /// For a processor transport, its far side (see [`super::processor`]).
    pub processor: Option<Box<ProcessorState>>,
    /// Last accepted datagram from the peer (or the creation time).
    pub last_rx: Instant,
    /// When its live entry in the core's timer heap is due (other entries are stale).
    pub timer_due: Instant,
    /// Public id.
    pub id: LegId,
    /// Most learned streams.
    pub max_streams: usize,
    /// Generation of its slot in the core (timers of a freed slot's previous transport are
    /// recognised and skipped).
    pub generation: u32,
    /// Socket it uses.
    pub sock: SockSlot,
    /// Whether the socket is shared.
    pub shared: bool,
    /// Whether its streams were declared (no learning).
    pub declared: bool,
    /// Whether a datagram has been accepted since creation.
    pub heard: bool,
    /// The highest simulcast layer this transport may receive ([`super::layers`]).
    pub max_layer: u8,
    /// Counters (the per-packet ones first).
    pub counters: LegCounters,
    /// Rate cap.
    pub rate: RateLimiter,
    /// Retransmission cache of what was sent toward this transport (all its send streams).
    pub cache: NackCache,
    // ---- cold: the control plane's, RTCP's and the timers' ----
    /// See [`LegSpec::ssrc_salt`].
    pub ssrc_salt: u32,
    /// The SSRC the relay uses for the receiver reports and feedback it sends here.
    pub report_ssrc: Ssrc,
    /// Default media clock rate of learned streams, Hz.
    pub clock_rate: u32,
    /// Session.
    pub session: SessionId,
    /// ICE credentials.
    pub ice: Option<IceCredentials>,
    /// Clock rates of learned streams by payload type.
    pub clock_rates: Vec<(Pt, u32)>,
    /// Transports subscribed to every stream of this one (compatibility `connect`).
    pub subscribers: Vec<u32>,
    /// Transports subscribed to the streams of one kind of this one ([`super::Core::connect_kind`]).
    pub kind_subscribers: Vec<(u32, StreamKind)>,
    /// Transports this one is subscribed to.
    pub publishers: Vec<u32>,
    /// Lost packets the relay may ask this transport's peer to resend (forwarded NACKs).
    pub nack_forward: RateLimiter,
    /// Early media held until the transport latches.
    pub early: EarlyRing,
    /// Round-trip time from the peer's reports.
    pub rtt: Option<Duration>,
    /// Next time a report is due toward this transport.
    pub next_report: Instant,
}

impl Transport {
    /// Builds a transport from its spec. SRTP keys must already be valid.
    pub fn new(
        id: LegId,
        generation: u32,
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
            generation,
            session: spec.session,
            sock: spec.sock,
            shared: spec.shared,
            mode: spec.peer,
            peer,
            srtp: srtp.map(Box::new),
            ice: spec.ice.clone(),
            clock_rate: spec.clock_rate.max(1),
            clock_rates: spec.clock_rates.clone(),
            declared: !spec.streams.is_empty(),
            max_streams: spec.max_streams.clamp(1, MAX_STREAMS),
            recv: spec
                .streams
                .iter()
                .map(|s| RecvStream::new(s.ssrc, s.clock_rate, true))
                .collect(),
            send: Vec::new(),
            subscribers: Vec::new(),
            kind_subscribers: Vec::new(),
            publishers: Vec::new(),
            processor: None,
            counters: LegCounters::default(),
            rate: RateLimiter::new(spec.rate_cap, now),
            // Set by the core from its configuration (unlimited until then).
            nack_forward: RateLimiter::new(RateCap::default(), now),
            cache,
            early: EarlyRing::default(),
            last_rx: now,
            heard: false,
            rtt: None,
            next_report,
            report_ssrc: Ssrc(
                0x5EED_0000 ^ (id.0 as u32).wrapping_mul(0x9E37_79B9) ^ spec.ssrc_salt,
            ),
            ssrc_salt: spec.ssrc_salt,
            browser: spec
                .browser
                .as_ref()
                .map(|b| Box::new(BrowserState::new(b, now, Default::default()))),
            timer_due: next_report,
            max_layer: u8::MAX,
        }
    }

    /// Whether media may flow toward and from the peer: always for plain and SDES-keyed
    /// transports; for a browser transport once DTLS-SRTP has keyed it.
    #[inline]
    pub fn media_ready(&self) -> bool {
        self.browser.is_none() || self.srtp.is_some()
    }

    /// When the transport's timer is next due: its next report, its idle deadline, and its
    /// browser part's deadlines.
    pub fn next_due(&self, idle: Duration, consent: Duration) -> Instant {
        let mut due = self.next_report.min(self.last_rx + idle);
        if let Some(b) = &self.browser {
            due = due.min(b.next_due(consent));
        }
        due
    }

    /// Whether packets from `src` are from this transport's known peer.
    #[inline]
    pub fn is_peer(&self, src: SocketAddr) -> bool {
        self.peer == Some(src)
    }

    /// Whether this transport may latch onto a first address without proof.
    #[inline]
    pub fn may_first_latch(&self) -> bool {
        matches!(self.mode, PeerMode::Latching) && self.peer.is_none()
    }

    /// The receive stream of `ssrc`.
    #[inline]
    pub fn recv_index(&self, ssrc: Ssrc) -> Option<usize> {
        self.recv.iter().position(|r| r.ssrc == ssrc)
    }

    /// Whether a new SSRC may be learned.
    #[inline]
    pub fn may_learn(&self) -> bool {
        !self.declared && self.recv.len() < self.max_streams
    }

    /// Clock rate of a learned stream whose first packet has payload type `pt`.
    pub fn clock_for(&self, pt: Pt) -> u32 {
        self.clock_rates
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, c)| *c)
            .unwrap_or(self.clock_rate)
    }

    /// The payload type this transport's peer numbers the codec of `clock` Hz with: the
    /// first entry of that rate in `clock_rates` (a browser's lists each m-line's codec
    /// before its RTX). `None` when no entry has that rate (payload types are not known).
    pub fn codec_pt(&self, clock: u32) -> Option<Pt> {
        self.clock_rates
            .iter()
            .find(|(_, c)| *c == clock)
            .map(|(p, _)| *p)
    }

    /// The send stream whose SSRC (as the peer sees it) is `ssrc`.
    pub fn send_by_ssrc(&self, ssrc: Ssrc) -> Option<usize> {
        self.send
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.ssrc() == ssrc))
    }

    /// Whether `ssrc` is taken at this transport (by a send stream or by its own streams).
    pub fn ssrc_taken(&self, ssrc: Ssrc) -> bool {
        self.send_by_ssrc(ssrc).is_some() || self.recv_index(ssrc).is_some()
    }
}

#[cfg(test)]
mod layout_tests {
    //! The per-packet fields stay in the first cache lines (see [`Transport`]'s docs): a
    //! field added above them, or a hot one moved below, fails here.
    use std::mem::{offset_of, size_of};

    use super::super::browser::BrowserState;
    use super::super::stats::LegCounters;
    use super::super::stream::{RecvStream, SendStream};
    use super::Transport;

    const LINE: usize = 64;

    #[test]
    fn the_forwarding_path_reads_the_first_four_lines_of_a_transport() {
        let hot_end = offset_of!(Transport, counters) + offset_of!(LegCounters, rtcp_in);
        assert!(
            hot_end <= 4 * LINE,
            "hot part of Transport ends at {hot_end}"
        );
        for off in [
            offset_of!(Transport, peer),
            offset_of!(Transport, recv),
            offset_of!(Transport, send),
            offset_of!(Transport, srtp),
            offset_of!(Transport, browser),
            offset_of!(Transport, last_rx),
            offset_of!(Transport, heard),
        ] {
            assert!(off < 4 * LINE, "hot field at {off}");
        }
        // The rate cap and the cache's `armed` flag come right after the counters' hot part.
        assert!(offset_of!(Transport, rate) < offset_of!(Transport, ssrc_salt));
        assert!(
            size_of::<Transport>() > 4 * LINE,
            "the split is worth keeping"
        );
    }

    #[test]
    fn a_receive_stream_is_found_and_fanned_out_from_its_first_line() {
        assert_eq!(offset_of!(RecvStream, ssrc), 0);
        assert!(offset_of!(RecvStream, outs) + size_of::<Vec<u8>>() <= LINE);
        assert!(offset_of!(RecvStream, layer) < LINE);
    }

    #[test]
    fn a_send_stream_rewrites_from_its_first_line() {
        assert_eq!(offset_of!(SendStream, rewrite), 0);
        assert!(offset_of!(SendStream, mid) < 2 * LINE);
        assert!(
            offset_of!(SendStream, last_sent) + size_of::<Option<(u32, std::time::Instant)>>()
                <= 2 * LINE
        );
    }

    #[test]
    fn a_browser_transport_records_transport_cc_before_its_dtls_state() {
        assert_eq!(offset_of!(BrowserState, twcc), 0);
        assert!(offset_of!(BrowserState, dtls) > offset_of!(BrowserState, bwe));
    }
}
