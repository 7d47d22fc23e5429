//! [`CodecError`]: what can go wrong when encoding or decoding audio and video.

/// An error from an encoder or decoder of [`crate::codec`].
///
/// Every variant is cheap to build and carries no heap data, so that a decoder fed a corrupt
/// packet on the receive path returns it without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A configuration value is out of the codec's range.
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(&'static str),
    /// The input frame does not have the size the encoder was configured for.
    #[error("input frame has {got} samples, expected {expected}")]
    FrameSize {
        /// Samples (all channels) the encoder expects per call.
        expected: usize,
        /// Samples (all channels) that were given.
        got: usize,
    },
    /// The output buffer is too small for what the call produces.
    #[error("output buffer holds {got} values, {needed} needed")]
    BufferTooSmall {
        /// Values the call needs room for.
        needed: usize,
        /// Values the buffer holds.
        got: usize,
    },
    /// An empty payload was given to a decoder (use `conceal` for a lost packet).
    #[error("empty payload")]
    EmptyPayload,
    /// libopus reported an error.
    #[error("libopus {function} failed with code {code}")]
    Opus {
        /// The libopus function that failed.
        function: &'static str,
        /// The libopus error code (`OPUS_BAD_ARG` = -1, `OPUS_INVALID_PACKET` = -4, …).
        code: i32,
    },
    /// The H.264 encoder (openh264) reported an error.
    #[error("H.264 encoder failed")]
    H264Encode,
    /// The H.264 decoder (openh264) rejected the bitstream.
    #[error("H.264 decoder rejected the bitstream")]
    H264Decode,
    /// A video frame's geometry is invalid (odd or zero size, planes of the wrong length).
    #[error("invalid video frame geometry: {0}")]
    FrameGeometry(&'static str),
}

impl From<::opus::Error> for CodecError {
    fn from(e: ::opus::Error) -> Self {
        CodecError::Opus {
            function: e.function(),
            code: e.code() as i32,
        }
    }
}
