//! Per-leg counters and drops by reason, and the statistics snapshot of a leg. The RFC 3550
//! receive statistics (sequence, loss, jitter) are `supernode_media::rfc3550::ReceiveStats`,
//! shared with the edge.

use std::time::{Duration, Instant};

/// Why the relay dropped a datagram. Every drop is counted on the leg it arrived on (or, for
/// strangers on a shared port that match no leg, on the relay's global counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum DropReason {
    /// From an address that is not the leg's peer, without proof that it belongs to the leg.
    Stranger = 0,
    /// An RTP packet whose SSRC is not the one this leg sends.
    WrongSsrc,
    /// Not parseable as the kind its first byte says (RTP, RTCP, STUN).
    Malformed,
    /// Over the leg's rate cap.
    RateLimited,
    /// SRTP/SRTCP authentication or decryption failed (or a replay).
    SrtpAuth,
    /// No destination could take it (no route, or no destination has a known address yet).
    NoDestination,
    /// The transmit batch was full.
    TxFull,
    /// A kind the relay does not take (DTLS on a transport that is not a browser's, ZRTP,
    /// TURN, unknown first byte).
    Unsupported,
    /// A STUN message that is not a valid binding request for this leg.
    StunRejected,
    /// Media on a browser transport before DTLS-SRTP keyed it.
    NotKeyed,
}

impl DropReason {
    /// Number of reasons (size of the per-leg counter array).
    pub const COUNT: usize = 10;
    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        Self::Stranger,
        Self::WrongSsrc,
        Self::Malformed,
        Self::RateLimited,
        Self::SrtpAuth,
        Self::NoDestination,
        Self::TxFull,
        Self::Unsupported,
        Self::StunRejected,
        Self::NotKeyed,
    ];

    /// A short snake_case name, for metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stranger => "stranger",
            Self::WrongSsrc => "wrong_ssrc",
            Self::Malformed => "malformed",
            Self::RateLimited => "rate_limited",
            Self::SrtpAuth => "srtp_auth",
            Self::NoDestination => "no_destination",
            Self::TxFull => "tx_full",
            Self::Unsupported => "unsupported",
            Self::StunRejected => "stun_rejected",
            Self::NotKeyed => "not_keyed",
        }
    }
}

/// Counters of one leg. Plain integers: only the worker that owns the leg writes them.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct LegCounters {
    /// RTP packets received and accepted.
    pub rtp_in: u64,
    /// Bytes of accepted datagrams received.
    pub bytes_in: u64,
    /// Datagrams sent toward this leg's peer.
    pub packets_out: u64,
    /// Bytes sent toward this leg's peer.
    pub bytes_out: u64,
    /// RTCP packets (compounds) received and accepted.
    pub rtcp_in: u64,
    /// Drops by [`DropReason`], indexed by its discriminant.
    pub drops: [u64; DropReason::COUNT],
    /// NACKed packets the relay retransmitted from its cache toward this leg.
    pub nack_retransmits: u64,
    /// NACKed packets that were no longer (or never) in the cache.
    pub nack_misses: u64,
    /// Lost packets the relay asked this leg's peer to resend (NACKs of receivers that
    /// missed the relay's cache, mapped to this leg's stream and forwarded toward it).
    pub nacks_out: u64,
    /// Lost packets not asked for because this leg's peer was already asked for
    /// [`crate::core::CoreConfig::max_forwarded_nacks_per_sec`] (a receiver's NACK flood
    /// stops at the relay, not at the sender).
    pub nacks_out_limited: u64,
    /// PLI/FIR requests received from this leg's peer.
    pub keyframe_requests_in: u64,
    /// PLI/FIR requests forwarded to this leg's peer (after coalescing).
    pub keyframe_requests_out: u64,
    /// PLI/FIR requests toward this leg swallowed by coalescing.
    pub keyframe_requests_coalesced: u64,
    /// Times the leg's peer address was (re)learned.
    pub latches: u64,
    /// RTCP reports the relay generated toward this leg.
    pub reports_sent: u64,
    /// Source switches seen by this leg as a destination (rewrites started).
    pub source_switches: u64,
    /// Simulcast layer switches toward this leg (each also a source switch).
    pub layer_switches: u64,
    /// Packets held for this leg while it had no peer yet (early media).
    pub early_held: u64,
    /// Held packets sent when the leg latched.
    pub early_replayed: u64,
}

impl LegCounters {
    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops counted for `reason`.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

/// A copy of one leg's statistics, for the control plane.
#[derive(Debug, Clone, Default)]
pub struct LegStats {
    /// Counters.
    pub counters: LegCounters,
    /// Packets expected from this leg's peer (RFC 3550 A.3).
    pub expected: u64,
    /// Packets received from this leg's peer (duplicates excluded).
    pub received: u64,
    /// Cumulative loss from this leg's peer.
    pub lost: i64,
    /// Loss from this leg's peer in percent of expected.
    pub loss_pct: f64,
    /// Interarrival jitter from this leg's peer, in milliseconds.
    pub jitter_ms: f64,
    /// Reordered packets from this leg's peer.
    pub reordered: u64,
    /// Duplicate packets from this leg's peer.
    pub duplicates: u64,
    /// Round-trip time to this leg's peer, from its receiver reports.
    pub rtt: Option<Duration>,
    /// The peer address the leg sends to, if known.
    pub peer: Option<std::net::SocketAddr>,
    /// When a datagram was last accepted from the peer.
    pub last_received: Option<Instant>,
}
