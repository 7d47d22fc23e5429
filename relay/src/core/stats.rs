//! Per-leg statistics: RFC 3550 A.1 sequence tracking, A.3 loss, A.8 interarrival jitter,
//! plus reordering, duplicates and drops by reason.

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
    /// A kind the relay does not forward (DTLS, ZRTP, TURN, unknown first byte).
    Unsupported,
    /// A STUN message that is not a valid binding request for this leg.
    StunRejected,
}

impl DropReason {
    /// Number of reasons (size of the per-leg counter array).
    pub const COUNT: usize = 9;
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
        }
    }
}

const MAX_DROPOUT: u64 = 3000;
const WINDOW: u64 = 128;

/// Receive-side state of one RTP stream (RFC 3550 A.1/A.8), on extended sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    started: bool,
    base_seq: u64,
    max_seq: u64,
    /// Bit i set: sequence `max_seq - i` was received (duplicate detection window).
    seen: u128,
    received: u64,
    duplicates: u64,
    reordered: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter in timestamp units, scaled by 16 (RFC 3550 A.8 integer form).
    jitter_q4: u64,
    last_transit: Option<i64>,
}

/// What [`ReceiveStats::on_packet`] concluded about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Newest so far.
    InOrder,
    /// Older than the newest, not seen before.
    Reordered,
    /// Seen before.
    Duplicate,
}

impl ReceiveStats {
    /// Records one packet with 16-bit sequence `seq`, RTP timestamp `ts`, arriving at
    /// `arrival` expressed in the same clock's units.
    #[inline]
    pub fn on_packet(&mut self, seq: u16, ts: u32, arrival: i64) -> SeqVerdict {
        if !self.started {
            self.started = true;
            self.base_seq = u64::from(seq) + (1 << 16);
            self.max_seq = self.base_seq;
            self.seen = 1;
            self.received = 1;
            self.last_transit = Some(arrival - i64::from(ts));
            return SeqVerdict::InOrder;
        }
        // Extend relative to the highest so far.
        let max16 = self.max_seq as u16;
        let delta = seq.wrapping_sub(max16) as i16 as i64;
        let ext = (self.max_seq as i64 + delta).max(0) as u64;
        let verdict = if ext > self.max_seq {
            let shift = ext - self.max_seq;
            if shift > MAX_DROPOUT {
                // A big jump: treat as a restart of the stream (RFC 3550 A.1 resync, simplified).
                self.base_seq = ext;
                self.seen = 0;
                self.received_prior = self.received;
                self.expected_prior = 0;
            }
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.max_seq = ext;
            SeqVerdict::InOrder
        } else {
            let back = self.max_seq - ext;
            if back < WINDOW && self.seen & (1u128 << back) != 0 {
                self.duplicates += 1;
                return SeqVerdict::Duplicate;
            }
            if back < WINDOW {
                self.seen |= 1u128 << back;
            }
            self.reordered += 1;
            if ext < self.base_seq {
                self.base_seq = ext;
            }
            SeqVerdict::Reordered
        };
        self.received += 1;
        // RFC 3550 A.8: J += (|D| - J) / 16, with J kept scaled by 16.
        let transit = arrival - i64::from(ts);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        verdict
    }

    /// Whether any packet has been seen.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Packets received (duplicates excluded).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the first to the highest sequence seen.
    pub fn expected(&self) -> u64 {
        if !self.started {
            0
        } else {
            self.max_seq - self.base_seq + 1
        }
    }

    /// Cumulative number of packets lost (may be negative with duplicates, RFC 3550 A.3;
    /// duplicates are excluded here, so it is not).
    pub fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Highest extended sequence number seen, as RFC 3550 reports carry it (cycles << 16 |
    /// seq, with the first cycle counted as 0).
    pub fn extended_max(&self) -> u32 {
        self.max_seq.saturating_sub(1 << 16) as u32
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    /// Duplicates seen.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after a newer one.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Fraction lost since the previous call, in 1/256 (RFC 3550 A.3), and resets the
    /// interval. Called when a receiver report is built.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost = expected_interval.saturating_sub(received_interval);
        if expected_interval == 0 || lost == 0 {
            0
        } else {
            ((lost << 8) / expected_interval).min(255) as u8
        }
    }
}

/// Counters of one leg. Plain integers: only the worker that owns the leg writes them.
#[derive(Debug, Clone, Default)]
pub struct LegCounters {
    /// RTP packets received and accepted.
    pub rtp_in: u64,
    /// RTCP packets (compounds) received and accepted.
    pub rtcp_in: u64,
    /// Bytes of accepted datagrams received.
    pub bytes_in: u64,
    /// Datagrams sent toward this leg's peer.
    pub packets_out: u64,
    /// Bytes sent toward this leg's peer.
    pub bytes_out: u64,
    /// Drops by [`DropReason`], indexed by its discriminant.
    pub drops: [u64; DropReason::COUNT],
    /// NACKed packets the relay retransmitted from its cache toward this leg.
    pub nack_retransmits: u64,
    /// NACKed packets that were no longer (or never) in the cache.
    pub nack_misses: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reorder_duplicate() {
        let mut s = ReceiveStats::default();
        for seq in [10u16, 11, 13, 12, 12, 15] {
            s.on_packet(seq, u32::from(seq) * 960, i64::from(seq) * 960);
        }
        assert_eq!(s.received(), 5);
        assert_eq!(s.expected(), 6); // 10..=15
        assert_eq!(s.lost(), 1); // 14
        assert_eq!(s.duplicates(), 1);
        assert_eq!(s.reordered(), 1);
        assert_eq!(s.jitter(), 0, "perfectly timed packets have no jitter");
    }

    #[test]
    fn wraps_around() {
        let mut s = ReceiveStats::default();
        for i in 0..100u32 {
            let seq = (65_500 + i) as u16;
            s.on_packet(seq, i * 960, i64::from(i) * 960);
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.lost(), 0);
        assert_eq!(s.extended_max(), (1 << 16) + 65_599 - 65_536);
    }

    #[test]
    fn jitter_follows_a8() {
        let mut s = ReceiveStats::default();
        // Arrival alternates 0 and +160 ticks late: |D| = 160 each time after the first.
        for i in 0..2000i64 {
            let late = if i % 2 == 0 { 0 } else { 160 };
            s.on_packet(i as u16, (i * 960) as u32, i * 960 + late);
        }
        assert!((150..=160).contains(&s.jitter()), "jitter {}", s.jitter());
    }

    #[test]
    fn fraction_lost_per_interval() {
        let mut s = ReceiveStats::default();
        for seq in 0..100u16 {
            if seq % 4 != 0 {
                s.on_packet(seq, 0, 0);
            }
        }
        // 99 expected after the first (seq 0 missing): base is 1.
        let f = s.take_fraction_lost();
        assert!(f > 60 && f < 70, "fraction {f}"); // ~25% of 256
        assert_eq!(s.take_fraction_lost(), 0);
    }
}
