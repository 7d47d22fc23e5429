//! H.264 encoder and decoder (Cisco's openh264, built from source by the `openh264` crate).
//!
//! ```no_run
//! use supernode_media::codec::{I420Frame, h264::{H264Config, H264Decoder, H264Encoder}};
//!
//! let cfg = H264Config { width: 640, height: 360, ..H264Config::default() };
//! let mut enc = H264Encoder::new(&cfg).unwrap();
//! let mut dec = H264Decoder::new().unwrap();
//! let picture = I420Frame::test_pattern(640, 360, 0).unwrap();
//! let mut access_unit = Vec::new();
//! let info = enc.encode(&picture, &mut access_unit).unwrap(); // Annex B bytes
//! assert!(info.keyframe);
//! let mut decoded = I420Frame::new(640, 360).unwrap();
//! assert!(dec.decode(&access_unit, &mut decoded).unwrap());
//! ```
//!
//! The encoder produces one Annex B access unit (NAL units behind `00 00 00 01` start
//! codes) per input picture; a keyframe carries SPS, PPS and an IDR slice. The decoder takes
//! one complete access unit per call (as rebuilt by `crate::payload::h264`) and writes the
//! picture into a caller-owned [`I420Frame`], reusing its buffers. Both run single-threaded
//! so that two cores can hold several streams.
//!
//! ## Changing the rate of a running encoder
//!
//! [`H264Encoder::set_bitrate`] and [`H264Encoder::set_frame_rate`] (a congestion controller's
//! knobs) validate the value at once (a typed [`CodecError::InvalidConfig`], the settings in
//! force left as they were) and take effect from the next [`H264Encoder::encode`]. The safe
//! API of the `openh264` crate (0.9) offers no runtime setter: openh264's own
//! `SetOption(ENCODER_OPTION_BITRATE / _FRAME_RATE)` is only reachable through the crate's
//! `unsafe` raw API, and this crate forbids `unsafe`. So a change rebuilds the openh264
//! encoder with the new settings, and **the first picture after a change is a keyframe**
//! (IDR with SPS and PPS; `EncodedInfo::keyframe` says so). Decoders and RTP receivers
//! simply see a keyframe. Changes made between two pictures are folded into one rebuild and a
//! change to the value in force is free, but each effective change costs one keyframe's worth
//! of bits (a few P-frames), so drive it with hysteresis (e.g. at most one change every few
//! seconds), not per RTCP report.

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSource;

use super::{CodecError, I420Frame};

/// Encoder settings. `Default`: 640×360, 800 kbit/s, 30 fps, no periodic keyframe (the
/// receiver asks for one with PLI), frames never skipped by rate control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct H264Config {
    /// Picture width in pixels (even).
    pub width: usize,
    /// Picture height in pixels (even).
    pub height: usize,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// Frame rate in frames per second (rate control budgets bits per frame from it).
    pub frame_rate: f32,
    /// A keyframe every this many frames; 0 = only on demand.
    pub keyframe_interval: u32,
}

impl Default for H264Config {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            bitrate_bps: 800_000,
            frame_rate: 30.0,
            keyframe_interval: 0,
        }
    }
}

/// What the encoder made of one picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedInfo {
    /// The access unit is an IDR picture (decodable on its own, with SPS and PPS).
    pub keyframe: bool,
    /// Bytes written (Annex B).
    pub len: usize,
}

/// An H.264 encoder (Constrained Baseline, single slice, single thread).
pub struct H264Encoder {
    inner: Encoder,
    config: H264Config,
    /// Bitrate or frame rate changed since `inner` was built: rebuild before the next picture.
    rebuild: bool,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .finish()
    }
}

/// Borrowed view of an [`I420Frame`] for openh264.
struct Source<'a>(&'a I420Frame);

impl YUVSource for Source<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width(), self.0.height())
    }
    fn strides(&self) -> (usize, usize, usize) {
        let c = self.0.width() / 2;
        (self.0.width(), c, c)
    }
    fn y(&self) -> &[u8] {
        &self.0.y
    }
    fn u(&self) -> &[u8] {
        &self.0.u
    }
    fn v(&self) -> &[u8] {
        &self.0.v
    }
}

fn check_bitrate(bps: u32) -> Result<(), CodecError> {
    if !(10_000..=50_000_000).contains(&bps) {
        return Err(CodecError::InvalidConfig(
            "bitrate must be 10 kbit/s ..= 50 Mbit/s",
        ));
    }
    Ok(())
}

fn check_frame_rate(fps: f32) -> Result<(), CodecError> {
    // `contains` is false for NaN.
    if !(1.0..=120.0).contains(&fps) {
        return Err(CodecError::InvalidConfig("frame rate must be 1..=120 fps"));
    }
    Ok(())
}

fn build(config: &H264Config) -> Result<Encoder, CodecError> {
    let cfg = EncoderConfig::new()
        .bitrate(BitRate::from_bps(config.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(config.frame_rate))
        .rate_control_mode(RateControlMode::Bitrate)
        .usage_type(UsageType::CameraVideoRealTime)
        .skip_frames(false)
        .intra_frame_period(IntraFramePeriod::from_num_frames(config.keyframe_interval))
        .num_threads(1);
    Encoder::with_api_config(OpenH264API::from_source(), cfg).map_err(|_| CodecError::H264Encode)
}

impl H264Encoder {
    /// An encoder with these settings.
    pub fn new(config: &H264Config) -> Result<Self, CodecError> {
        // Validates the geometry.
        I420Frame::new(config.width, config.height)?;
        check_bitrate(config.bitrate_bps)?;
        check_frame_rate(config.frame_rate)?;
        Ok(Self {
            inner: build(config)?,
            config: *config,
            rebuild: false,
        })
    }

    /// Sets the target bitrate (bits per second, 10 kbit/s ..= 50 Mbit/s) from the next
    /// picture on; that picture is a keyframe (see the module docs). Setting the bitrate in
    /// force does nothing. An invalid value is [`CodecError::InvalidConfig`] and changes
    /// nothing.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        check_bitrate(bitrate_bps)?;
        if bitrate_bps != self.config.bitrate_bps {
            self.config.bitrate_bps = bitrate_bps;
            self.rebuild = true;
        }
        Ok(())
    }

    /// Sets the frame rate (1 ..= 120 fps) that rate control budgets bits per picture by,
    /// from the next picture on; that picture is a keyframe (see the module docs). Setting
    /// the frame rate in force does nothing. An invalid value (NaN included) is
    /// [`CodecError::InvalidConfig`] and changes nothing.
    pub fn set_frame_rate(&mut self, fps: f32) -> Result<(), CodecError> {
        check_frame_rate(fps)?;
        if fps != self.config.frame_rate {
            self.config.frame_rate = fps;
            self.rebuild = true;
        }
        Ok(())
    }

    /// The settings in force (including changes waiting for the next picture).
    pub fn config(&self) -> &H264Config {
        &self.config
    }

    /// Makes the next encoded picture a keyframe (IDR with SPS and PPS): the answer to a PLI.
    pub fn force_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Encodes one picture (of the configured size) into `out` as an Annex B access unit,
    /// replacing `out`'s contents.
    pub fn encode(
        &mut self,
        picture: &I420Frame,
        out: &mut Vec<u8>,
    ) -> Result<EncodedInfo, CodecError> {
        if picture.width() != self.config.width || picture.height() != self.config.height {
            return Err(CodecError::FrameGeometry(
                "picture size differs from the encoder's",
            ));
        }
        out.clear();
        if self.rebuild {
            // Dropping the old encoder also drops a pending `force_keyframe`: the new one
            // starts with an IDR anyway.
            self.inner = build(&self.config)?;
            self.rebuild = false;
        }
        let bs = self
            .inner
            .encode(&Source(picture))
            .map_err(|_| CodecError::H264Encode)?;
        let keyframe = bs.frame_type() == FrameType::IDR;
        bs.write_vec(out);
        Ok(EncodedInfo {
            keyframe,
            len: out.len(),
        })
    }
}

/// An H.264 decoder: one Annex B access unit in, one I420 picture out.
pub struct H264Decoder {
    inner: Decoder,
}

impl std::fmt::Debug for H264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H264Decoder")
    }
}

impl H264Decoder {
    /// A decoder (error concealment off: a picture whose references are missing is an error,
    /// not a smeared image).
    pub fn new() -> Result<Self, CodecError> {
        let inner = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|_| CodecError::H264Decode)?;
        Ok(Self { inner })
    }

    /// Decodes one access unit. Returns `true` and fills `out` (resizing it to the stream's
    /// picture size) when a picture came out; `false` when the access unit held only
    /// parameter sets. A corrupt or undecodable access unit is [`CodecError::H264Decode`].
    pub fn decode(&mut self, access_unit: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        if access_unit.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let Some(pic) = self
            .inner
            .decode(access_unit)
            .map_err(|_| CodecError::H264Decode)?
        else {
            return Ok(false);
        };
        let (w, h) = pic.dimensions();
        let (sy, su, sv) = pic.strides();
        out.resize(w, h)?;
        copy_plane(pic.y(), sy, &mut out.y, w, h)?;
        copy_plane(pic.u(), su, &mut out.u, w / 2, h / 2)?;
        copy_plane(pic.v(), sv, &mut out.v, w / 2, h / 2)?;
        Ok(true)
    }
}

fn copy_plane(
    src: &[u8],
    stride: usize,
    dst: &mut [u8],
    w: usize,
    h: usize,
) -> Result<(), CodecError> {
    if stride < w || src.len() < stride * (h - 1) + w {
        return Err(CodecError::FrameGeometry("decoder returned a short plane"));
    }
    for (row, d) in dst.chunks_exact_mut(w).take(h).enumerate() {
        d.copy_from_slice(&src[row * stride..row * stride + w]);
    }
    Ok(())
}
