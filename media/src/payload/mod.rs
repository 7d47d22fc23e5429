//! RTP payload formats: how codec frames travel inside RTP packets.
//!
//! - [`opus`]: RFC 7587. One Opus packet per RTP payload, timestamps at 48 kHz; TOC parsing
//!   (RFC 6716 §3.1) gives a packet's duration, mode and whether it carries in-band FEC.
//! - [`h264`]: RFC 6184 packetization-mode 1 (single NAL unit, STAP-A, FU-A): a packetizer
//!   that splits an access unit to a configured MTU and a depacketizer that rebuilds access
//!   units from packets received in any order, spots missing fragments, knows keyframes and
//!   keeps the last SPS/PPS.
//!
//! These types see RTP payloads and the few header fields they need (sequence number,
//! timestamp, marker); the RTP header itself is `crate::packet`'s job. No I/O, no clock.

mod error;
pub mod h264;
pub mod opus;

pub use error::PayloadError;
