//! What a call carries and how it ends: the value types shared by client and server messages.

use serde::{Deserialize, Serialize};

use crate::ids::TransportId;
use crate::srtp::SrtpProfile;

/// What media a call carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Audio only.
    #[default]
    Audio,
    /// Audio and video.
    AudioVideo,
}

/// A media-negotiation payload relayed between the two endpoints of a call (browsers
/// negotiate WebRTC peer-to-peer through the supernode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Negotiation {
    /// An SDP offer.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// An SDP answer.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate.
    IceCandidate {
        /// The `candidate:` attribute line.
        candidate: String,
        /// The media stream id it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mid: Option<String>,
        /// The m-line index it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp_mline_index: Option<u32>,
    },
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EndReason {
    /// A party hung up.
    Hangup,
    /// The caller cancelled before an answer.
    Cancelled,
    /// A callee endpoint declined.
    Rejected,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// Every ringing endpoint of the callee went away.
    Unavailable,
    /// The other party's endpoint disconnected.
    PeerDisconnected,
    /// The relay could not give the call its transports (refused, failed or too slow).
    RelayFailure,
}

/// How the caller's or callee's *other* endpoints see a call they take no part in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    /// Another endpoint of this account is calling.
    Outgoing,
    /// The call was answered (by the endpoint named in the notice).
    Answered,
    /// The call ended.
    Ended,
}

/// SRTP parameters of a relay transport (SDES-like keying for edge clients).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtpKeying {
    /// The protection profile, by its RFC name, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub profile: SrtpProfile,
    /// Master key and salt, base64 ([`SrtpProfile::key_and_salt_len`] bytes).
    pub key_b64: String,
}

/// The relay transport an endpoint sends its media to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegInfo {
    /// The transport's id at the relay (a `tr_…` string, unique across nodes).
    pub leg_id: TransportId,
    /// `IP:PORT` of the relay transport.
    pub address: String,
    /// SRTP keying, when the transport is encrypted with keys from the supernode (edge
    /// clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SrtpKeying>,
    /// For a browser endpoint: the supernode's SDP answer to the offer it sent with
    /// `invite` or `accept` (ICE-lite, candidates included, DTLS-SRTP). `None` for edge
    /// clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
}
