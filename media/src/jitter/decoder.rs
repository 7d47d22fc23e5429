//! The decoder seen by the jitter buffer: decode, decode from FEC, conceal, and the two
//! facts about a payload it needs before decoding (duration, FEC presence).

use crate::codec::CodecError;
use crate::codec::opus::OpusDecoder;
use crate::payload::opus as opus_payload;

/// What [`crate::jitter::JitterBuffer`] needs from an audio decoder. Implemented for
/// [`OpusDecoder`]; a decoder must produce 48 kHz audio (the RTP clock of Opus).
pub trait AudioDecoder {
    /// Output sample rate in Hz (must be 48 000).
    fn sample_rate(&self) -> u32;
    /// Interleaved channels in the output (1 or 2).
    fn channel_count(&self) -> usize;
    /// Duration of `payload` in samples per channel at 48 kHz, or `None` if malformed.
    fn packet_samples(&self, payload: &[u8]) -> Option<usize>;
    /// Whether `payload` carries in-band FEC for the packet before it.
    fn has_fec(&self, payload: &[u8]) -> bool;
    /// Decodes `payload` into `out`, returning samples per channel.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
    /// Rebuilds the frame before `next_payload` from its FEC; `out` has the lost length.
    fn decode_fec(&mut self, next_payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError>;
    /// Synthesises `out.len() / channels` samples continuing the last output (PLC).
    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError>;
}

impl AudioDecoder for OpusDecoder {
    fn sample_rate(&self) -> u32 {
        OpusDecoder::sample_rate(self)
    }

    fn channel_count(&self) -> usize {
        self.channels().count()
    }

    fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        opus_payload::duration_48k(payload).ok().map(|d| d as usize)
    }

    fn has_fec(&self, payload: &[u8]) -> bool {
        opus_payload::has_fec(payload)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        OpusDecoder::decode(self, payload, out)
    }

    fn decode_fec(&mut self, next_payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        OpusDecoder::decode_fec(self, next_payload, out)
    }

    fn conceal(&mut self, out: &mut [i16]) -> Result<usize, CodecError> {
        OpusDecoder::conceal(self, out)
    }
}
