//! The typed, versioned WebSocket messages of `GET /v1/ws` (described in
//! `docs/protocol.md`).
//!
//! Every frame is one JSON text object with `"v": 2` ([`PROTOCOL_VERSION`]) and a `"type"`.
//! [`decode_client`] turns a text frame into a [`ClientMsg`] or a [`ProtocolError`] (which the
//! server answers with an `error` message and keeps the socket); [`encode_server`] renders a
//! [`ServerMsg`] with the version added. Clients use [`encode_client`] and
//! [`decode_server`].
//!
//! Version 2 (this one) differs from version 1 in its ids: endpoint, call and leg ids are
//! random `ep_…`, `call_…` and `tr_…` strings instead of small integers, and an SRTP profile
//! is checked against the one profile table ([`crate::SrtpProfile`]). A version-1 frame is
//! refused with `unsupported_version`.

mod call;
mod client;
mod error;
mod server;

use serde::Serialize;

pub use self::call::{EndReason, LegInfo, MediaKind, Negotiation, NoticeState, SrtpKeying};
pub use self::client::{ClientKind, ClientMsg};
pub use self::error::{ErrorCode, ProtocolError};
pub use self::server::{Participant, ServerMsg};

/// The protocol version this crate speaks (the `"v"` of every frame).
pub const PROTOCOL_VERSION: u64 = 2;

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
        other => {
            let got = other.map_or_else(|| "none".to_owned(), |v| v.to_string());
            return Err(ProtocolError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "\"v\" must be {PROTOCOL_VERSION} (got {got}); see \"Changes in version \
                     {PROTOCOL_VERSION}\" in docs/protocol.md"
                ),
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

/// Renders a server message as a JSON text frame with `"v": 2`.
pub fn encode_server(msg: &ServerMsg) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        msg,
    })
    .unwrap_or_else(|_| {
        r#"{"v":2,"type":"error","code":"invalid_message","message":"encode"}"#.to_owned()
    })
}

/// Renders a client message as a JSON text frame with `"v": 2` (for clients and tests).
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
    use crate::ids::{AccountId, CallId, TransportId};
    use crate::srtp::SrtpProfile;

    #[test]
    fn client_messages_round_trip_with_version() {
        let m = ClientMsg::Invite {
            to: AccountId::from_bytes([7; 16]),
            media: MediaKind::AudioVideo,
            client_ref: Some("r1".into()),
            sdp: None,
        };
        let text = encode_client(&m);
        assert!(text.contains("\"v\":2"));
        assert!(text.contains("\"type\":\"invite\""));
        assert_eq!(decode_client(&text).unwrap(), m);
        assert_eq!(m.type_name(), "invite");
    }

    #[test]
    fn every_listed_type_is_known_to_serde() {
        for ty in ClientMsg::TYPES {
            let err = decode_client(&format!(r#"{{"v":2,"type":"{ty}"}}"#));
            // Either it parses (ping) or it fails on fields, never as an unknown type.
            match err {
                Err(e) => assert_eq!(e.code, ErrorCode::InvalidMessage, "{ty}"),
                Ok(m) => assert_eq!(m.type_name(), *ty),
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
        let v1 = decode_client(r#"{"v":1,"type":"ping"}"#).unwrap_err();
        assert_eq!(v1.code, ErrorCode::UnsupportedVersion);
        assert!(v1.message.contains("must be 2"), "{}", v1.message);
        let e = decode_client(r#"{"v":2,"type":"dance"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.in_reply_to.as_deref(), Some("dance"));
        assert_eq!(
            decode_client(r#"{"v":2,"type":"accept","call_id":"x"}"#)
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
        // Version 1's integer call ids are not ids any more.
        assert_eq!(
            decode_client(r#"{"v":2,"type":"hangup","call_id":7}"#)
                .unwrap_err()
                .code,
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            decode_client(r#"{"v":2}"#).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn server_messages_carry_version_and_parse_back() {
        let call_id = CallId::from_bytes([0x11; 16]);
        let m = ServerMsg::CallEnded {
            call_id: call_id.clone(),
            reason: EndReason::NoAnswer,
        };
        let text = encode_server(&m);
        assert_eq!(
            text,
            r#"{"v":2,"type":"call_ended","call_id":"call_11111111111111111111111111111111","reason":"no_answer"}"#
        );
        assert_eq!(decode_server(&text).unwrap(), m);
        let media = ServerMsg::Media {
            call_id,
            leg: LegInfo {
                leg_id: TransportId::from_bytes([0x22; 16]),
                address: "127.0.0.1:40000".into(),
                srtp: Some(SrtpKeying {
                    profile: SrtpProfile::AeadAes128Gcm,
                    key_b64: "AAAA".into(),
                }),
                sdp: None,
            },
        };
        let text = encode_server(&media);
        assert!(text.contains(r#""leg_id":"tr_2222"#), "{text}");
        assert!(text.contains(r#""profile":"AEAD_AES_128_GCM""#), "{text}");
        assert_eq!(decode_server(&text).unwrap(), media);
        assert!(
            decode_server(&text.replace("AEAD_AES_128_GCM", "NULL")).is_err(),
            "unknown profiles are refused"
        );
    }

    #[test]
    fn resume_and_the_node_list_of_login_ok() {
        let m = ClientMsg::Resume {
            call_id: CallId::from_bytes([3; 16]),
            peer: AccountId::from_bytes([4; 16]),
        };
        let text = encode_client(&m);
        assert!(text.contains("\"type\":\"resume\""), "{text}");
        assert_eq!(decode_client(&text).unwrap(), m);
        assert_eq!(m.type_name(), "resume");
        // `nodes` is left out when empty (a supernode alone), and optional when read.
        let ok = |nodes: Vec<String>| ServerMsg::LoginOk {
            endpoint_id: crate::ids::EndpointId::from_bytes([5; 16]),
            account_id: AccountId::from_bytes([4; 16]),
            keepalive_seconds: 20,
            nodes,
        };
        let alone = encode_server(&ok(Vec::new()));
        assert!(!alone.contains("nodes"), "{alone}");
        assert_eq!(decode_server(&alone).unwrap(), ok(Vec::new()));
        let net = ok(vec!["ws://a/v1/ws".into(), "ws://b/v1/ws".into()]);
        assert_eq!(decode_server(&encode_server(&net)).unwrap(), net);
    }
}
