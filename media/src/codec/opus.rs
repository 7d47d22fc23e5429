//! Opus encoder and decoder (libopus through the `opus` crate).
//!
//! Drive it like this:
//!
//! ```
//! use supernode_media::codec::opus::{OpusConfig, OpusDecoder, OpusEncoder};
//!
//! let cfg = OpusConfig::default(); // 48 kHz mono, 20 ms, 32 kbit/s, FEC on
//! let mut enc = OpusEncoder::new(&cfg).unwrap();
//! let mut dec = OpusDecoder::new(cfg.sample_rate, cfg.channels).unwrap();
//! let pcm = vec![0i16; cfg.samples_per_frame()]; // one 20 ms frame, all channels
//! let mut packet = [0u8; 1500];
//! let n = enc.encode(&pcm, &mut packet).unwrap();
//! let mut out = vec![0i16; cfg.samples_per_frame()];
//! let samples = dec.decode(&packet[..n], &mut out).unwrap();
//! assert_eq!(samples, 960); // samples per channel
//! ```
//!
//! A lost packet is recovered from the next packet's in-band FEC with
//! [`OpusDecoder::decode_fec`] (when the encoder had FEC on and the next packet carries it:
//! see `crate::payload::opus::has_fec`), or concealed with [`OpusDecoder::conceal`].
//! Buffers are the caller's: no call here allocates.
//!
//! ## DTX and comfort noise
//!
//! With [`OpusConfig::dtx`] on, once the input has been inactive (silence or steady
//! background noise) for a while, the encoder's packets shrink to one byte (a TOC byte and no
//! audio data: [`is_dtx_packet`]), with a real packet of a few dozen bytes every 400 ms that
//! updates the receiver's picture of the background noise. A sender should not transmit the
//! DTX packets (WebRTC does not): it sends nothing for up to 400 ms, and the RTP timestamp
//! jumps while the sequence number does not (`crate::payload::opus::OpusRtpClock::skip`).
//! The receiver fills the gap with [`OpusDecoder::comfort_noise`], one call per missing
//! frame: libopus synthesises noise at the level and colour of the last update, which is
//! exactly what decoding the untransmitted DTX packets would have produced (see
//! `media/tests/codec_opus_dtx.rs`). A receiver tells a DTX gap from loss by the sequence
//! numbers: a timestamp gap with no sequence gap is DTX, a sequence gap is loss.

use super::CodecError;

/// Whether `packet`, as returned by [`OpusEncoder::encode`], is a DTX packet (at most 2
/// bytes: no audio data, nothing worth sending). The receiver makes comfort noise for it
/// with [`OpusDecoder::comfort_noise`] whether it was sent or not.
pub fn is_dtx_packet(packet: &[u8]) -> bool {
    packet.len() <= 2
}

/// Number of audio channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channels {
    /// One channel.
    #[default]
    Mono,
    /// Two channels, interleaved left/right.
    Stereo,
}

impl Channels {
    /// 1 or 2.
    pub fn count(self) -> usize {
        match self {
            Channels::Mono => 1,
            Channels::Stereo => 2,
        }
    }

    fn to_opus(self) -> ::opus::Channels {
        match self {
            Channels::Mono => ::opus::Channels::Mono,
            Channels::Stereo => ::opus::Channels::Stereo,
        }
    }
}

/// Duration of one encoded Opus frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrameMs {
    /// 10 ms.
    Ms10,
    /// 20 ms (the usual choice for calls).
    #[default]
    Ms20,
    /// 40 ms.
    Ms40,
    /// 60 ms.
    Ms60,
}

impl FrameMs {
    /// The duration in milliseconds.
    pub fn as_ms(self) -> u32 {
        match self {
            FrameMs::Ms10 => 10,
            FrameMs::Ms20 => 20,
            FrameMs::Ms40 => 40,
            FrameMs::Ms60 => 60,
        }
    }

    /// Samples per channel in one frame at `sample_rate`.
    pub fn samples_per_channel(self, sample_rate: u32) -> usize {
        (sample_rate as usize / 1000) * self.as_ms() as usize
    }
}

impl TryFrom<u32> for FrameMs {
    type Error = CodecError;

    fn try_from(ms: u32) -> Result<Self, CodecError> {
        match ms {
            10 => Ok(FrameMs::Ms10),
            20 => Ok(FrameMs::Ms20),
            40 => Ok(FrameMs::Ms40),
            60 => Ok(FrameMs::Ms60),
            _ => Err(CodecError::InvalidConfig(
                "frame duration must be 10, 20, 40 or 60 ms",
            )),
        }
    }
}

/// Encoder settings. `Default` is 48 kHz mono, 20 ms frames, 32 kbit/s, complexity 9,
/// in-band FEC on (tuned for 10% expected loss), DTX off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Sample rate in Hz: 8000, 12000, 16000, 24000 or 48000.
    pub sample_rate: u32,
    /// Mono or stereo.
    pub channels: Channels,
    /// Frame duration.
    pub frame_ms: FrameMs,
    /// Target bitrate in bits per second (500..=512000).
    pub bitrate_bps: u32,
    /// Encoder complexity 0 (fastest) ..= 10 (best).
    pub complexity: u8,
    /// In-band forward error correction (LBRR): each packet carries a low-rate copy of the
    /// previous frame, used by [`OpusDecoder::decode_fec`].
    pub fec: bool,
    /// Discontinuous transmission: near-silent frames shrink to a byte or two.
    pub dtx: bool,
    /// Expected packet loss in percent (0..=100); FEC is only emitted when this is above 0.
    pub expected_loss_pct: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            channels: Channels::Mono,
            frame_ms: FrameMs::Ms20,
            bitrate_bps: 32_000,
            complexity: 9,
            fec: true,
            dtx: false,
            expected_loss_pct: 10,
        }
    }
}

impl OpusConfig {
    /// Samples (all channels, interleaved) in one input frame.
    pub fn samples_per_frame(&self) -> usize {
        self.frame_ms.samples_per_channel(self.sample_rate) * self.channels.count()
    }

    fn validate(&self) -> Result<(), CodecError> {
        check_rate(self.sample_rate)?;
        if !(500..=512_000).contains(&self.bitrate_bps) {
            return Err(CodecError::InvalidConfig(
                "bitrate must be 500..=512000 bit/s",
            ));
        }
        if self.complexity > 10 {
            return Err(CodecError::InvalidConfig("complexity must be 0..=10"));
        }
        if self.expected_loss_pct > 100 {
            return Err(CodecError::InvalidConfig("expected loss must be 0..=100 %"));
        }
        Ok(())
    }
}

fn check_rate(sample_rate: u32) -> Result<(), CodecError> {
    match sample_rate {
        8000 | 12000 | 16000 | 24000 | 48000 => Ok(()),
        _ => Err(CodecError::InvalidConfig(
            "sample rate must be 8000, 12000, 16000, 24000 or 48000 Hz",
        )),
    }
}

/// An Opus encoder (application VoIP) for one stream.
pub struct OpusEncoder {
    inner: ::opus::Encoder,
    config: OpusConfig,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("config", &self.config)
            .finish()
    }
}

impl OpusEncoder {
    /// An encoder with these settings.
    pub fn new(config: &OpusConfig) -> Result<Self, CodecError> {
        config.validate()?;
        let mut inner = ::opus::Encoder::new(
            config.sample_rate,
            config.channels.to_opus(),
            ::opus::Application::Voip,
        )?;
        inner.set_bitrate(::opus::Bitrate::Bits(config.bitrate_bps as i32))?;
        inner.set_complexity(i32::from(config.complexity))?;
        inner.set_inband_fec(config.fec)?;
        inner.set_packet_loss_perc(i32::from(config.expected_loss_pct))?;
        inner.set_dtx(config.dtx)?;
        Ok(Self {
            inner,
            config: *config,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &OpusConfig {
        &self.config
    }

    /// Encodes one frame of interleaved PCM (exactly [`OpusConfig::samples_per_frame`]
    /// samples) into `out`, returning the packet length. 1275 bytes (4000 for 60 ms
    /// stereo at high rates) always suffice.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let expected = self.config.samples_per_frame();
        if pcm.len() != expected {
            return Err(CodecError::FrameSize {
                expected,
                got: pcm.len(),
            });
        }
        Ok(self.inner.encode(pcm, out)?)
    }

    /// Changes the target bitrate (bits per second) from the next frame on.
    pub fn set_bitrate(&mut self, bitrate_bps: u32) -> Result<(), CodecError> {
        if !(500..=512_000).contains(&bitrate_bps) {
            return Err(CodecError::InvalidConfig(
                "bitrate must be 500..=512000 bit/s",
            ));
        }
        self.inner
            .set_bitrate(::opus::Bitrate::Bits(bitrate_bps as i32))?;
        self.config.bitrate_bps = bitrate_bps;
        Ok(())
    }

    /// Changes the expected loss (percent), which decides how much FEC the encoder spends.
    pub fn set_expected_loss(&mut self, pct: u8) -> Result<(), CodecError> {
        if pct > 100 {
            return Err(CodecError::InvalidConfig("expected loss must be 0..=100 %"));
        }
        self.inner.set_packet_loss_perc(i32::from(pct))?;
        self.config.expected_loss_pct = pct;
        Ok(())
    }
}

/// An Opus decoder for one stream, with FEC recovery and packet-loss concealment.
pub struct OpusDecoder {
    inner: ::opus::Decoder,
    sample_rate: u32,
    channels: Channels,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .finish()
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` at `sample_rate` (any Opus stream decodes at any
    /// supported rate and channel count).
    pub fn new(sample_rate: u32, channels: Channels) -> Result<Self, CodecError> {
        check_rate(sample_rate)?;
        Ok(Self {
            inner: ::opus::Decoder::new(sample_rate, channels.to_opus())?,
            sample_rate,
            channels,
        })
    }

    /// Output sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Output channels.
    pub fn channels(&self) -> Channels {
        self.channels
    }

    /// Decodes one packet into `out` (interleaved), returning samples per channel. `out` must
    /// hold the packet's whole duration (5760 samples per channel always suffice at 48 kHz).
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let per_channel = ::opus::packet::get_nb_samples(payload, self.sample_rate)?;
        let needed = per_channel * self.channels.count();
        if out.len() < needed {
            return Err(CodecError::BufferTooSmall {
                needed,
                got: out.len(),
            });
        }
        Ok(self.inner.decode(payload, &mut out[..needed], false)?)
    }

    /// Recovers the lost frame *before* `next_payload` from the in-band FEC that
    /// `next_payload` carries. `out` is sized to the lost frame (samples per channel ×
    /// channels, a multiple of 2.5 ms). When `next_payload` has no FEC, libopus conceals
    /// instead. Call [`Self::decode`] on `next_payload` afterwards as usual.
    pub fn decode_fec(
        &mut self,
        next_payload: &[u8],
        out: &mut [i16],
    ) -> Result<usize, CodecError> {
        if next_payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        self.check_plc_len(out.len())?;
        Ok(self.inner.decode(next_payload, out, true)?)
    }

    /// Packet-loss concealment: synthesises `out.len() / channels` samples per channel
    /// (a multiple of 2.5 ms) continuing the last decoded audio.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        self.check_plc_len(out.len())?;
        Ok(self.inner.decode(&[], out, false)?)
    }

    /// Comfort noise for a DTX gap: synthesises `out.len() / channels` samples per channel
    /// (a multiple of 2.5 ms) of background noise shaped by the last packets received, the
    /// same audio that decoding the sender's untransmitted DTX packets gives. Call it for
    /// every frame of a gap whose sequence numbers show no loss (see the module docs); for a
    /// lost packet use [`Self::conceal`] or [`Self::decode_fec`]. (libopus runs the same
    /// synthesis for both; the separate call lets a jitter buffer count DTX apart from
    /// concealment.)
    pub fn comfort_noise(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        self.check_plc_len(out.len())?;
        Ok(self.inner.decode(&[], out, false)?)
    }

    fn check_plc_len(&self, len: usize) -> Result<(), CodecError> {
        let ch = self.channels.count();
        let quantum = self.sample_rate as usize / 400; // 2.5 ms
        if len == 0 || !len.is_multiple_of(ch) || !(len / ch).is_multiple_of(quantum) {
            return Err(CodecError::InvalidConfig(
                "concealment length must be a non-zero multiple of 2.5 ms",
            ));
        }
        if len / ch > self.sample_rate as usize * 120 / 1000 {
            return Err(CodecError::InvalidConfig("concealment length above 120 ms"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ms_conversions() {
        assert_eq!(FrameMs::try_from(40).unwrap(), FrameMs::Ms40);
        assert!(FrameMs::try_from(30).is_err());
        assert_eq!(FrameMs::Ms10.samples_per_channel(48_000), 480);
        let cfg = OpusConfig {
            channels: Channels::Stereo,
            frame_ms: FrameMs::Ms60,
            ..OpusConfig::default()
        };
        assert_eq!(cfg.samples_per_frame(), 5760);
    }

    #[test]
    fn rejects_bad_config() {
        let bad = OpusConfig {
            sample_rate: 44_100,
            ..OpusConfig::default()
        };
        assert!(matches!(
            OpusEncoder::new(&bad),
            Err(CodecError::InvalidConfig(_))
        ));
        let bad = OpusConfig {
            complexity: 11,
            ..OpusConfig::default()
        };
        assert!(OpusEncoder::new(&bad).is_err());
    }
}
