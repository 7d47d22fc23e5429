//! The `error` message's codes ([`ErrorCode`]) and why a frame was refused ([`ProtocolError`]).

use serde::{Deserialize, Serialize};

use super::server::ServerMsg;

/// Codes of the `error` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, or not an object.
    MalformedJson,
    /// `v` missing or not a version this server speaks.
    UnsupportedVersion,
    /// A `type` this server does not know (the socket stays open).
    UnknownType,
    /// A known type with missing or wrongly typed fields.
    InvalidMessage,
    /// Binary frames are not part of the protocol.
    BinaryNotSupported,
    /// Anything before a successful `login`.
    NotLoggedIn,
    /// `login` twice on one socket.
    AlreadyLoggedIn,
    /// The token is malformed, forged, or signed with an unknown key.
    InvalidToken,
    /// The token's expiry has passed.
    TokenExpired,
    /// The account was deleted or its partner revoked.
    AccountUnavailable,
    /// No `login` within the login timeout.
    LoginTimeout,
    /// The call does not exist or this endpoint has no part in it.
    UnknownCall,
    /// The action does not fit the call's state (e.g. accept after an answer).
    InvalidState,
    /// This account is already in a call.
    AlreadyInCall,
    /// Calling oneself.
    InvalidTarget,
    /// Too many presence subscriptions.
    TooManySubscriptions,
    /// The server cannot serve the request right now (e.g. storage unavailable at login).
    Overloaded,
    /// The supernode is shutting down: it takes no new calls (calls already up go on).
    /// Reconnect to another supernode to call.
    Draining,
    /// The socket sent more messages than its budget allows (`ws_rate_limit_per_second`,
    /// `ws_rate_limit_burst`); the socket is closed (code 1008) after this error.
    RateLimited,
    /// A browser's SDP offer is malformed, or offers nothing the supernode serves (no
    /// Opus, no H.264 in the delivered profile); the message names the line or the reasons.
    InvalidSdp,
    /// A message above `ws_max_message_bytes`; the socket is closed (code 1009) after this
    /// error.
    MessageTooBig,
    /// The network of supernodes cannot be reached (NATS down): a call to an endpoint on
    /// another supernode cannot be set up now. Calls on this supernode still work.
    NetworkUnavailable,
    /// A `conference_join` (or an invite's answer) past the conference's
    /// `max_participants`: nothing changed.
    ConferenceFull,
}

/// Why a text frame is not a valid client message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtocolError {
    /// The code to answer with.
    pub code: ErrorCode,
    /// Detail.
    pub message: String,
    /// The frame's `type`, when it had one.
    pub in_reply_to: Option<String>,
}

impl ProtocolError {
    /// A refusal with this code, detail and offending `type`.
    pub fn new(code: ErrorCode, message: impl Into<String>, in_reply_to: Option<String>) -> Self {
        Self {
            code,
            message: message.into(),
            in_reply_to,
        }
    }

    /// The `error` message that answers this.
    pub fn to_msg(&self) -> ServerMsg {
        ServerMsg::Error {
            code: self.code,
            message: self.message.clone(),
            in_reply_to: self.in_reply_to.clone(),
        }
    }
}
