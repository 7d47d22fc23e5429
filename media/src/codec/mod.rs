//! Audio and video codecs: Opus through libopus ([`opus`]) and H.264 through openh264
//! ([`h264`]), with [`I420Frame`] for raw pictures (PSNR, a moving test pattern).
//!
//! The codecs are plain synchronous values: build an encoder from a config, feed it one raw
//! frame per call and get one compressed frame back; build a decoder, feed it one compressed
//! frame (an Opus packet, an H.264 access unit) and get raw samples or pixels back. Nothing
//! here reads the clock or touches the network; the RTP payload formats live in
//! `crate::payload` and the buffering against network jitter in `crate::video` and the
//! audio jitter buffer.
//!
//! Errors are [`CodecError`]: a corrupt packet is a typed error, never a panic.

mod error;
mod frame;
pub mod h264;
pub mod opus;

pub use error::CodecError;
pub use frame::I420Frame;
