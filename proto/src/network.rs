//! Messages between supernodes of one network (cross-node signaling).
//!
//! A node sends a [`NodeMsg`] to another node inside an [`Envelope`] (request/reply over
//! NATS, the subject of the receiving node); the receiver answers a [`NodeReply`]. Every
//! envelope carries a [`MessageId`]: a sender retries with the same id, and a receiver
//! that has seen the id answers its first reply again without acting twice (idempotent
//! handling). The call's id is global, so both nodes name the call alike.
//!
//! One call between endpoints on two nodes: the caller's node (the *anchor*) sends
//! [`NodeMsg::Ring`] to each node with endpoints of the callee; a node whose endpoint
//! accepts claims the answer atomically (one winner network-wide) and sends
//! [`NodeMsg::Answer`]; the anchor sets media up and sends [`NodeMsg::MediaSetup`] to the
//! answering node and [`NodeMsg::Answered`] to the other ringing nodes (their endpoints are
//! told `answered_elsewhere`) — or, with trunks, [`NodeMsg::TrunkSetup`]: the answering node
//! then sets up its end of a relay-to-relay trunk and its endpoint's transport;
//! [`NodeMsg::End`] ends the call on the other side, whoever
//! ends it; [`NodeMsg::Negotiate`] passes SDP/ICE between the two endpoints.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CallId, EndpointId, PartnerId};
use crate::protocol::{EndReason, LegInfo, MediaKind, Negotiation};
use crate::relay_ops::TrunkPeer;

/// The id of one cross-node message (retries keep it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub String);

impl MessageId {
    /// A new random id (`msg_` and 32 hex digits).
    #[cfg(feature = "rand")]
    pub fn random() -> Self {
        Self(format!("msg_{:032x}", rand::random::<u128>()))
    }
}

/// One cross-node call message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeMsg {
    /// Ring your endpoints of `callee` for `call` (refused: `unavailable` when none is
    /// there or the partner differs, `busy` when the account is in another call).
    Ring {
        /// The call.
        call: CallId,
        /// The calling account.
        caller: AccountId,
        /// The calling endpoint (on the sending node).
        caller_endpoint: EndpointId,
        /// Its partner (accounts of other partners cannot reach each other).
        partner: PartnerId,
        /// The called account.
        callee: AccountId,
        /// Audio or audio+video.
        media: MediaKind,
        /// The caller's offer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Your caller's call was answered by `endpoint` on the sending node (which holds the
    /// network-wide answer claim).
    Answer {
        /// The call.
        call: CallId,
        /// The answering endpoint.
        endpoint: EndpointId,
        /// Its answer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// The answered call's media: the leg the answering endpoint sends to.
    MediaSetup {
        /// The call.
        call: CallId,
        /// The leg for the answering endpoint.
        leg: LegInfo,
    },
    /// The answered call's media over a trunk: the anchor's relay has its end of a trunk
    /// at `trunk.address`; the answering node adds the other end (aimed at it, with these
    /// keys) and a transport for its endpoint, and hands that endpoint its `media` leg. The
    /// endpoint then talks to its own node's relay only.
    TrunkSetup {
        /// The call.
        call: CallId,
        /// The anchor's end of the trunk, keys from the receiver's view.
        trunk: TrunkPeer,
    },
    /// The call was answered on another node: stop ringing (`answered_elsewhere`).
    Answered {
        /// The call.
        call: CallId,
    },
    /// The call ended on the sending node.
    End {
        /// The call.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// Failover: `endpoint` of one of the call's accounts, on the sending node, takes the
    /// call back after the node it was on died. The receiver holds the other end of the
    /// call: the anchor when the callee resumes (it makes the sender the callee's node), the
    /// callee's node when the caller resumes (the call is re-anchored there: the anchor
    /// died). Either re-keys its trunk end and sends the sender `trunk_setup` (the same
    /// trunk end, which moves to the first packet that authenticates under the new keys).
    /// Refused `unknown_call` otherwise. (The field keeps its wire name `callee`.)
    Resume {
        /// The call.
        call: CallId,
        /// The account resuming (the callee's, or the caller's when the anchor died).
        callee: AccountId,
        /// Its endpoint on the sending node.
        endpoint: EndpointId,
    },
    /// SDP/ICE for the far endpoint of an answered call.
    Negotiate {
        /// The call.
        call: CallId,
        /// The payload.
        negotiation: Negotiation,
    },
}

impl NodeMsg {
    /// The call the message is about.
    pub fn call(&self) -> &CallId {
        match self {
            Self::Ring { call, .. }
            | Self::Answer { call, .. }
            | Self::MediaSetup { call, .. }
            | Self::TrunkSetup { call, .. }
            | Self::Answered { call }
            | Self::End { call, .. }
            | Self::Resume { call, .. }
            | Self::Negotiate { call, .. } => call,
        }
    }
}

/// The receiving node's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeReply {
    /// Done.
    Ok,
    /// Not done.
    Refused {
        /// Why.
        why: Refusal,
    },
}

/// Why a node refused a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The called account is in another call (the caller hears `busy`).
    Busy,
    /// No endpoint of the called account is here, or it belongs to another partner (the
    /// caller hears `unavailable`).
    Unavailable,
    /// The node does not know the call (it ended there).
    UnknownCall,
}

/// What travels on the wire: a message, its id and its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The message id (kept across retries).
    pub id: MessageId,
    /// The sending node.
    pub from: String,
    /// The message.
    pub msg: NodeMsg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let env = Envelope {
            id: MessageId("msg_1".into()),
            from: "node-a".into(),
            msg: NodeMsg::End {
                call: CallId::from_bytes([7; 16]),
                reason: EndReason::Hangup,
            },
        };
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains("\"type\":\"end\""), "{json}");
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
        assert_eq!(env.msg.call(), &CallId::from_bytes([7; 16]));
        let resume = NodeMsg::Resume {
            call: CallId::from_bytes([7; 16]),
            callee: AccountId::from_bytes([8; 16]),
            endpoint: EndpointId::from_bytes([9; 16]),
        };
        let json = serde_json::to_string(&resume).unwrap();
        assert!(json.contains("\"type\":\"resume\""), "{json}");
        assert_eq!(serde_json::from_str::<NodeMsg>(&json).unwrap(), resume);
        assert_eq!(resume.call(), &CallId::from_bytes([7; 16]));
        let r = NodeReply::Refused { why: Refusal::Busy };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<NodeReply>(&json).unwrap(), r);
    }
}
