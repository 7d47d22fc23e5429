//! Wire formats: RTP (RFC 3550, 8285), RTCP (RFC 3550, 4585, 5104, transport-cc), STUN
//! (RFC 8489) and RFC 7983 demultiplexing. Zero-copy: parsers borrow the datagram.
//!
//! Drive it in this order on a receive path: [`demux::classify`] the datagram, then parse it
//! with the matching module ([`rtp::RtpPacket::parse`], …). Every parser returns a small typed
//! error on bad input and never panics; writers fill a caller-provided buffer.

pub mod demux;
pub mod rtcp;
pub mod rtp;
pub mod seq;
pub mod stun;
