//! [`JitterError`]: what the jitter buffer refuses.

/// An error from [`crate::jitter::JitterBuffer`]. Cheap, `Copy`, no heap data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JitterError {
    /// The payload is empty.
    #[error("empty payload")]
    EmptyPayload,
    /// The payload is not a packet of the codec (its duration cannot be read), or lasts
    /// longer than the buffer supports (120 ms).
    #[error("malformed payload")]
    MalformedPayload,
    /// The output slice given to `pull` does not hold exactly one 10 ms frame.
    #[error("output holds {got} values, a 10 ms frame needs {needed}")]
    OutputSize {
        /// Values a 10 ms frame needs (480 × channels).
        needed: usize,
        /// Values the slice holds.
        got: usize,
    },
    /// The decoder does not run at 48 kHz or has an unsupported channel count.
    #[error("decoder format unsupported: {0}")]
    UnsupportedFormat(&'static str),
}
