//! Streams inside a transport.
//!
//! - A [`RecvStream`] is one SSRC a transport sends to the relay (declared by the control
//!   plane, or learned from the first packets of a latching client, up to a small bound): its
//!   RFC 3550 receive statistics, its clock rate, the last sender report its source sent (for
//!   LSR/DLSR and for lip sync), keyframe-request coalescing, and the send streams it feeds.
//! - A [`SendStream`] is one source stream as one receiving transport gets it: its own
//!   [`Rewriter`] (SSRC, sequence and timestamp continuity), its sender-report state, its
//!   entries in the transport's retransmission cache (keyed by its SSRC). N sources reach a
//!   receiver as N send streams: fan-in is correct by construction.
//!
//! A send stream also translates the codec's payload type when the source and the receiver
//! number it differently (see [`SendStream::pt_map`]).
//!
//! A send stream whose source goes away (unsubscribed, its transport removed or restarted)
//! is *orphaned*, not dropped: the next new source stream of the same clock rate toward that
//! receiver adopts it and continues it (one SSRC, continuous sequence numbers and
//! timestamps), which is how a failover or a device switch stays seamless.

use std::time::Instant;

use supernode_media::ids::{Pt, Ssrc};
use supernode_media::rfc3550::ReceiveStats;

use super::layers::{Layer, LayerSel, RateMeter};
use super::mid::MidRewrite;
use super::rewrite::Rewriter;

/// A sender report as received from a source: its NTP time, its RTP time, and when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrInfo {
    /// 64-bit NTP timestamp of the report.
    pub ntp: u64,
    /// RTP timestamp of the same instant, in the source's stream.
    pub rtp: u32,
    /// Arrival at the relay.
    pub at: Instant,
}

/// Where a receive stream's packets go: the receiving transport and the slot of the send
/// stream there (both indices in the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Out {
    /// Index of the receiving transport.
    pub transport: u32,
    /// Slot of the send stream in that transport.
    pub slot: u32,
}

/// One SSRC a transport sends to the relay.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct RecvStream {
    /// The SSRC.
    pub ssrc: Ssrc,
    /// Media clock rate, Hz.
    pub clock_rate: u32,
    /// The send streams this stream feeds (one per subscribed transport).
    pub outs: Vec<Out>,
    /// Its simulcast layer, when its transport sends simulcast ([`super::layers`]).
    pub layer: Option<Layer>,
    /// Declared by the control plane (never retired) rather than learned.
    pub declared: bool,
    /// Its bitrate (measured for simulcast layers only).
    pub rate: RateMeter,
    /// RFC 3550 receive statistics.
    pub stats: ReceiveStats,
    /// The last sender report for this SSRC.
    pub last_sr: Option<SrInfo>,
    /// When a keyframe request was last sent toward the source for this stream.
    pub last_keyframe_request: Option<Instant>,
}

impl RecvStream {
    /// A stream of `ssrc` at `clock_rate` Hz.
    pub fn new(ssrc: Ssrc, clock_rate: u32, declared: bool) -> Self {
        Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            declared,
            stats: ReceiveStats::new(clock_rate.max(1)),
            last_sr: None,
            last_keyframe_request: None,
            outs: Vec::new(),
            layer: None,
            rate: RateMeter::default(),
        }
    }
}

/// The source feeding a send stream: the sending transport's index and its stream's SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Index of the sending transport in the core.
    pub transport: u32,
    /// SSRC of the source stream.
    pub ssrc: Ssrc,
}

/// One source stream toward one receiving transport.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct SendStream {
    /// Header rewriting toward the receiver.
    pub rewrite: Rewriter,
    /// Payload type translation `(source's, receiver's)` of the codec of this clock rate,
    /// when the two transports number it differently (a browser's H.264 is not the edge
    /// client's 96); `None`: payload types pass unchanged. Only the source's codec payload
    /// type is translated (its RTX and anything else pass as they are).
    pub pt_map: Option<(Pt, Pt)>,
    /// Media clock rate, Hz.
    pub clock_rate: u32,
    /// Packets sent (for the relay's SR).
    pub packets: u32,
    /// Payload octets sent (for the relay's SR).
    pub octets: u32,
    /// Last RTP timestamp sent and when.
    pub last_sent: Option<(u32, Instant)>,
    /// The MID header extension rewrite toward a browser that negotiated it (its id and the
    /// m-line's MID replace the source's); `None`: extensions pass unchanged.
    pub mid: Option<MidRewrite>,
    /// The layer selection, when the source sends simulcast: every layer of the source feeds
    /// this one send stream, and one of them passes ([`super::layers`]).
    pub layers: Option<LayerSel>,
    /// The source, or `None` while orphaned (waiting to be adopted).
    pub source: Option<Source>,
    /// When it was orphaned (the oldest orphans give way first).
    pub orphaned_at: Option<Instant>,
    /// The source's last sender report, copied when it arrives (lip sync through the
    /// rewrite): the relay's SR toward the receiver carries this NTP↔RTP pair.
    pub source_sr: Option<SrInfo>,
    /// Middle 32 bits of the NTP time of the last SR the relay sent on this stream, and when
    /// (the receiver's LSR/DLSR give the round-trip time).
    pub sent_sr: Option<(u32, Instant)>,
    /// RTP timestamp of the newest packet held for the receiver before it latched.
    pub held_last_ts: Option<u32>,
}

impl SendStream {
    /// A send stream fed by `source`, sending as `out_ssrc`.
    pub fn new(source: Source, out_ssrc: Ssrc, clock_rate: u32) -> Self {
        Self {
            source: Some(source),
            orphaned_at: None,
            rewrite: Rewriter::new(out_ssrc, clock_rate),
            clock_rate: clock_rate.max(1),
            packets: 0,
            octets: 0,
            last_sent: None,
            source_sr: None,
            sent_sr: None,
            held_last_ts: None,
            pt_map: None,
            mid: None,
            layers: None,
        }
    }

    /// The SSRC the receiver sees.
    #[inline]
    pub fn ssrc(&self) -> Ssrc {
        self.rewrite.out_ssrc()
    }
}
