//! The typed, versioned WebSocket messages of `GET /v1/ws` (described in
//! `docs/protocol.md`).
//!
//! Every frame is one JSON text object with `"v": 1` and a `"type"`. [`decode_client`] turns
//! a text frame into a [`ClientMsg`] or a [`ProtocolError`] (which the server answers with an
//! `error` message and keeps the socket); [`encode_server`] renders a [`ServerMsg`] with the
//! version added.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CallId, EndpointId};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u64 = 1;

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

/// Messages a client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMsg {
    /// First message of every connection: the credential from `POST /v1/accounts/{id}/credentials`.
    Login {
        /// The signed token.
        token: String,
    },
    /// Application keep-alive; answered with `pong` carrying the same nonce.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: Option<u64>,
    },
    /// Watch the presence of these accounts (same partner only; others always read offline).
    SubscribePresence {
        /// Accounts to watch.
        account_ids: Vec<AccountId>,
    },
    /// Call an account: rings every endpoint of it.
    Invite {
        /// The callee.
        to: AccountId,
        /// What the call carries.
        #[serde(default)]
        media: MediaKind,
        /// The caller's own reference, echoed in `ringing`/`busy`/`unavailable`.
        #[serde(default)]
        client_ref: Option<String>,
        /// An SDP offer for browser callees (passed on in `incoming_call`).
        #[serde(default)]
        sdp: Option<String>,
    },
    /// Accept a ringing call (first accept wins).
    Accept {
        /// The call.
        call_id: CallId,
        /// An SDP answer for browser callers (passed on in `accepted`).
        #[serde(default)]
        sdp: Option<String>,
    },
    /// Decline a ringing call.
    Reject {
        /// The call.
        call_id: CallId,
    },
    /// The caller gives up before an answer.
    Cancel {
        /// The call.
        call_id: CallId,
    },
    /// End an answered call (either side; the caller before an answer is a cancel).
    Hangup {
        /// The call.
        call_id: CallId,
    },
    /// Pass an SDP offer/answer or ICE candidate to the other endpoint of an answered call.
    Negotiate {
        /// The call.
        call_id: CallId,
        /// The payload.
        negotiation: Negotiation,
    },
}

impl ClientMsg {
    /// The `type` names a client may send.
    pub const TYPES: &'static [&'static str] = &[
        "login",
        "ping",
        "subscribe_presence",
        "invite",
        "accept",
        "reject",
        "cancel",
        "hangup",
        "negotiate",
    ];
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
    /// The relay could not give the call its legs.
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

/// SRTP parameters of a relay leg (SDES-like keying for edge clients).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtpKeying {
    /// The protection profile, e.g. `AES_CM_128_HMAC_SHA1_80`.
    pub profile: String,
    /// Master key and salt, base64.
    pub key_b64: String,
}

/// The relay leg an endpoint sends its media to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegInfo {
    /// The leg's id at the relay.
    pub leg_id: u64,
    /// `IP:PORT` of the relay leg.
    pub address: String,
    /// SRTP keying, when the leg is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp: Option<SrtpKeying>,
}

/// Messages the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMsg {
    /// Login accepted.
    LoginOk {
        /// This connection's endpoint id.
        endpoint_id: EndpointId,
        /// The account logged in.
        account_id: AccountId,
        /// Seconds between server pings; silent longer than twice this closes the socket.
        keepalive_seconds: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// The nonce of the ping.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
    },
    /// A typed error about the message named in `in_reply_to` (if any).
    Error {
        /// Stable machine-readable code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
        /// The `type` of the offending message, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_reply_to: Option<String>,
    },
    /// An account came online or went offline.
    Presence {
        /// The account.
        account_id: AccountId,
        /// Whether at least one endpoint is attached.
        online: bool,
    },
    /// To every endpoint of the callee.
    IncomingCall {
        /// The call.
        call_id: CallId,
        /// The caller.
        from: AccountId,
        /// What the call carries.
        media: MediaKind,
        /// The caller's SDP offer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// To the calling endpoint: the callee's endpoints are ringing.
    Ringing {
        /// The call.
        call_id: CallId,
        /// The callee.
        to: AccountId,
        /// The `client_ref` of the invite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
    },
    /// To the calling endpoint: the callee is already in a call.
    Busy {
        /// The callee.
        to: AccountId,
        /// The `client_ref` of the invite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
    },
    /// To the calling endpoint: the callee has no endpoint online (or is unknown).
    Unavailable {
        /// The callee.
        to: AccountId,
        /// The `client_ref` of the invite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
    },
    /// To the calling endpoint: an endpoint of the callee accepted.
    Accepted {
        /// The call.
        call_id: CallId,
        /// The answering endpoint.
        by: EndpointId,
        /// Its SDP answer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// To every other ringing endpoint of the callee: stop ringing.
    AnsweredElsewhere {
        /// The call.
        call_id: CallId,
    },
    /// To an endpoint of a party that takes no part in the call.
    CallNotice {
        /// The call.
        call_id: CallId,
        /// What happened.
        state: NoticeState,
        /// The other account of the call.
        peer: AccountId,
    },
    /// To each of the two endpoints of an answered call: where to send media.
    Media {
        /// The call.
        call_id: CallId,
        /// This endpoint's relay leg.
        leg: LegInfo,
    },
    /// A relayed SDP offer/answer or ICE candidate from the other endpoint of the call.
    Negotiate {
        /// The call.
        call_id: CallId,
        /// The payload.
        negotiation: Negotiation,
    },
    /// The call ended for this endpoint.
    CallEnded {
        /// The call.
        call_id: CallId,
        /// Why.
        reason: EndReason,
    },
}

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
    /// A message above `ws_max_message_bytes`; the socket is closed (code 1009) after this
    /// error.
    MessageTooBig,
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
    fn new(code: ErrorCode, message: impl Into<String>, in_reply_to: Option<String>) -> Self {
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

/// Decodes one text frame from a client.
pub fn decode_client(text: &str) -> Result<ClientMsg, ProtocolError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new(ErrorCode::MalformedJson, e.to_string(), None))?;
    let obj = value.as_object().ok_or_else(|| {
        ProtocolError::new(ErrorCode::MalformedJson, "a message is a JSON object", None)
    })?;
    let ty = obj.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    match obj.get("v").and_then(|v| v.as_u64()) {
        Some(PROTOCOL_VERSION) => {}
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::UnsupportedVersion,
                format!("\"v\" must be {PROTOCOL_VERSION}"),
                ty,
            ));
        }
    }
    let Some(ty) = ty else {
        return Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            "missing string field \"type\"",
            None,
        ));
    };
    if !ClientMsg::TYPES.contains(&ty.as_str()) {
        return Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!("unknown message type {ty:?}"),
            Some(ty),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidMessage, e.to_string(), Some(ty)))
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    v: u64,
    #[serde(flatten)]
    msg: &'a T,
}

/// Renders a server message as a JSON text frame with `"v": 1`.
pub fn encode_server(msg: &ServerMsg) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_else(|_| {
        r#"{"v":1,"type":"error","code":"invalid_message","message":"encode"}"#.to_owned()
    })
}

/// Renders a client message as a JSON text frame with `"v": 1` (for clients and tests).
pub fn encode_client(msg: &ClientMsg) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_default()
}

/// Parses a server frame (for clients and tests).
pub fn decode_server(text: &str) -> Result<ServerMsg, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_round_trip_with_version() {
        let m = ClientMsg::Invite {
            to: AccountId::random(),
            media: MediaKind::AudioVideo,
            client_ref: Some("r1".into()),
            sdp: None,
        };
        let text = encode_client(&m);
        assert!(text.contains("\"v\":1"));
        assert!(text.contains("\"type\":\"invite\""));
        assert_eq!(decode_client(&text).unwrap(), m);
    }

    #[test]
    fn every_listed_type_is_known_to_serde() {
        for ty in ClientMsg::TYPES {
            let err = decode_client(&format!(r#"{{"v":1,"type":"{ty}"}}"#));
            // Either it parses (ping) or it fails on fields, never as an unknown type.
            if let Err(e) = err {
                assert_eq!(e.code, ErrorCode::InvalidMessage, "{ty}");
            }
        }
    }

    #[test]
    fn bad_frames_get_typed_errors() {
        assert_eq!(
            decode_client("{").unwrap_err().code,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode_client("[1]").unwrap_err().code,
            ErrorCode::MalformedJson
        );
        assert_eq!(
            decode_client(r#"{"type":"ping"}"#).unwrap_err().code,
            ErrorCode::UnsupportedVersion
        );
        assert_eq!(
            decode_client(r#"{"v":2,"type":"ping"}"#).unwrap_err().code,
            ErrorCode::UnsupportedVersion
        );
        let e = decode_client(r#"{"v":1,"type":"dance"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.in_reply_to.as_deref(), Some("dance"));
        assert_eq!(
            decode_client(r#"{"v":1,"type":"accept","call_id":"x"}"#)
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            decode_client(r#"{"v":1}"#).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn server_messages_carry_version_and_parse_back() {
        let m = ServerMsg::CallEnded {
            call_id: CallId(7),
            reason: EndReason::NoAnswer,
        };
        let text = encode_server(&m);
        assert_eq!(
            text,
            r#"{"v":1,"type":"call_ended","call_id":7,"reason":"no_answer"}"#
        );
        assert_eq!(decode_server(&text).unwrap(), m);
    }
}
