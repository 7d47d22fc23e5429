//! Wire formats: RTP (RFC 3550, 8285), RTCP (RFC 3550, 4585, 5104, transport-cc), STUN
//! (RFC 8489) and RFC 7983 demultiplexing. Zero-copy: parsers borrow the datagram.
//!
//! Drive it in this order on a receive path: [`demux::classify`] the datagram, then parse it
//! with the matching module ([`rtp::RtpPacket::parse`], [`rtcp::RtcpCompound::parse`],
//! [`stun::StunMessage::parse`]). Every parser returns a small `Copy` error on bad input and
//! never panics; parsing allocates nothing. Writers fill a caller-provided buffer.
//!
//! - [`demux`]: RFC 7983 first-byte classification.
//! - [`rtp`]: RTP packets and RFC 8285 header extensions; in-place rewrite helpers.
//! - [`seq`]: extended sequence numbers ([`crate::ids::SeqNo`]) and timestamp unwrapping.
//! - [`rtcp`]: compound RTCP, one packet type per file, with writers for each.
//! - [`stun`]: STUN messages, integrity (HMAC-SHA1, HMAC-SHA256) and fingerprint.
//!
//! Malformed-input, round-trip (proptest) and RFC 5769 tests live in `media/tests/packet_*.rs`;
//! fuzz targets in `fuzz/`; benches in `benches/benches/packets.rs`.

pub mod demux;
pub mod rtcp;
pub mod rtp;
pub mod seq;
pub mod stun;
