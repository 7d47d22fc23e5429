//! # supernode-media
//!
//! Everything a supernode or an edge client knows about media, with no I/O and no async
//! runtime: every type here takes bytes and `now: Instant` in and gives values out.
//!
//! - [`packet`]: zero-copy RTP, RTCP, STUN parsing and writing, and RFC 7983 demultiplexing.
//! - [`ids`]: newtypes for protocol ids (`Ssrc`, `Pt`, `SeqNo`, …).
//! - [`codec`]: Opus (libopus) and H.264 (openh264) encoders and decoders, [`codec::I420Frame`]
//!   with PSNR and a moving test pattern.
//! - [`payload`]: RTP payload formats: Opus (RFC 7587, TOC parsing) and H.264 (RFC 6184
//!   packetization-mode 1 packetizer and depacketizer).
//! - [`video`]: the video frame buffer (ordering, decodability, NACK, PLI).
//! - [`conference`]: the audio MCU of a group call (jitter buffers, N−1 mix, shared and
//!   per-speaker Opus encodes, levels and active speaker).
//! - [`quality`]: the ITU-T G.107 E-model (R factor, MOS) for call-quality estimates.
//! - [`srtp`]: SRTP/SRTCP sessions (RFC 3711, RFC 7714), protecting and unprotecting in place.
//! - [`rfc3550`]: receive statistics, NTP time and RTT of RTCP reports.
//! - [`wav`]: 16-bit PCM WAV files, read as mono and written as mono.
//!
//! Feature `codec` (default): [`codec`], [`jitter`] and [`mixer`] (libopus, openh264). Without it the
//! crate builds no C codec (the relay uses it so).
//!
//! Later parts (codecs, jitter buffers, the mixer and the network emulator) land as their own
//! modules; see `../shared/DESIGN.md` for the map.
#![forbid(unsafe_code)]

#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "codec")]
pub mod conference;
pub mod ids;
#[cfg(feature = "codec")]
pub mod jitter;
#[cfg(feature = "codec")]
pub mod mixer;
pub mod net;
pub mod packet;
pub mod payload;
pub mod quality;
pub mod rfc3550;
pub mod srtp;
pub mod tone;
pub mod video;
pub mod wav;
