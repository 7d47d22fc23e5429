//! Trunks: a transport toward another supernode's relay, carrying the streams of a call
//! whose endpoints are on two nodes.
//!
//! A trunk is an ordinary transport of the core — the hot path treats it like any other
//! (lookup by its own socket, SRTP unprotect, forward, protect) — set up so that only the far
//! relay can use it:
//!
//! - **Every packet is authenticated**: SRTP/SRTCP ([`super::srtp`], the one implementation
//!   in `supernode-media`) with keys of its own, one per direction, exchanged between the
//!   nodes' control planes (over NATS), never seen by an endpoint.
//! - **A stranger's packet is dropped and counted** ([`super::DropReason::Stranger`] on the
//!   trunk's counters): from another address it is a stranger; a first end that has not
//!   heard its peer yet latches only onto a packet that authenticates; a forged packet from
//!   the peer's own address fails SRTP (`srtp_auth`).
//! - **Both ends are made in two steps**: the first node's end is latching (the far relay's
//!   address is not known when its keys are made) and learns the peer from its first
//!   authenticated packet; the second node's end is aimed at the first ([`PeerMode::Fixed`]),
//!   so it sends at once.
//! - RTCP is terminated per transport as everywhere: each relay reports on its side of the
//!   trunk; a keyframe request from the far endpoint reaches the sender hop by hop (the far
//!   relay maps it to its source stream, the trunk, and sends a PLI over it; this relay maps
//!   that to its source); a NACK is answered by the nearest relay whose retransmission
//!   cache has the packet, each relay that misses passing it on toward the source (see
//!   [`super::rtcp`]).
//! - **A resumed call re-keys the first end** ([`super::Core::set_srtp`] with fresh keys):
//!   the new far end starts its SRTP contexts at index 0, so the first end starts fresh
//!   contexts too (and forgets its retransmission cache, protected under the old keys);
//!   whatever still comes under the old keys is dropped and counted.
//!
//! [`trunk_spec`] makes the core's spec of one end.

use std::net::SocketAddr;

use supernode_media::ids::Pt;

use super::ids::{SessionId, SockSlot};
use super::rate::RateCap;
use super::srtp::LegSrtpKeys;
use super::transport::{LegSpec, MAX_STREAMS, PeerMode};

/// Streams one trunk may carry (the streams of every endpoint on the far node that it feeds
/// into this session: audio, video and their retransmission streams).
pub const TRUNK_MAX_STREAMS: usize = MAX_STREAMS;

/// The spec of one end of a trunk on its own socket `sock`: aimed at `peer` (the second end)
/// or latching onto the first authenticated packet (the first end, `peer` `None`), keyed with
/// `keys` (inbound: what the far relay protects with), streams learned with `clock_rates` by
/// payload type, no rate cap (the far relay caps its own endpoints), sending under SSRCs
/// salted with `ssrc_salt` (random per end: both ends of a resumed call's trunk share keys
/// with the ends before them, and must not share SSRC and packet index with them, which
/// would repeat an SRTP IV).
pub fn trunk_spec(
    session: SessionId,
    sock: SockSlot,
    peer: Option<SocketAddr>,
    keys: LegSrtpKeys,
    clock_rates: Vec<(Pt, u32)>,
    ssrc_salt: u32,
) -> LegSpec {
    LegSpec {
        ssrc_salt,
        peer: peer.map_or(PeerMode::Latching, PeerMode::Fixed),
        max_streams: TRUNK_MAX_STREAMS,
        srtp: Some(keys),
        clock_rates,
        rate_cap: RateCap::default(),
        ..LegSpec::latching(session, sock)
    }
}
