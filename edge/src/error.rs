//! [`EdgeError`]: what can go wrong in the edge client, by layer.

use supernode_media::codec::CodecError;
use supernode_media::jitter::JitterError;
use supernode_media::packet::rtp::RtpError;
use supernode_media::payload::PayloadError;

/// Errors of the edge client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// A codec could not be set up or failed.
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The jitter buffer could not be set up.
    #[error("jitter buffer: {0}")]
    Jitter(#[from] JitterError),
    /// An RTP packet could not be written.
    #[error("rtp: {0}")]
    Rtp(#[from] RtpError),
    /// A payload could not be packetized.
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    /// SRTP keying or setup failed.
    #[error("srtp: {0}")]
    Srtp(String),
    /// A media file could not be read or written.
    #[error("file: {0}")]
    File(String),
    /// Bad configuration or arguments.
    #[error("config: {0}")]
    Config(String),
    /// Socket I/O failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The signaling exchange failed.
    #[error("signaling: {0}")]
    Signaling(String),
}
