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

impl H264Encoder {
    /// An encoder with these settings.
    pub fn new(config: &H264Config) -> Result<Self, CodecError> {
        // Validates the geometry.
        I420Frame::new(config.width, config.height)?;
        if config.bitrate_bps < 10_000 || config.bitrate_bps > 50_000_000 {
            return Err(CodecError::InvalidConfig(
                "bitrate must be 10 kbit/s ..= 50 Mbit/s",
            ));
        }
        if !(1.0..=120.0).contains(&config.frame_rate) {
            return Err(CodecError::InvalidConfig("frame rate must be 1..=120 fps"));
        }
        let cfg = EncoderConfig::new()
            .bitrate(BitRate::from_bps(config.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(config.frame_rate))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(config.keyframe_interval))
            .num_threads(1);
        let inner = Encoder::with_api_config(OpenH264API::from_source(), cfg)
            .map_err(|_| CodecError::H264Encode)?;
        Ok(Self {
            inner,
            config: *config,
        })
    }

    /// The settings in force.
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
