//! Messages the server sends ([`ServerMsg`]).

use serde::{Deserialize, Serialize};

use super::call::{EndReason, LegInfo, MediaKind, Negotiation, NoticeState};
use super::error::ErrorCode;
use crate::ids::{AccountId, CallId, EndpointId};

/// Messages the server sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMsg {
    /// Login accepted.
    LoginOk {
        /// This connection's endpoint id (an `ep_…` string, unique across nodes).
        endpoint_id: EndpointId,
        /// The account logged in.
        account_id: AccountId,
        /// Seconds between server pings; silent longer than twice this closes the socket.
        keepalive_seconds: u64,
        /// In a network: the WebSocket URLs of the live nodes of this node's region, the
        /// preferred first (placement order), where the client reconnects if this node
        /// dies (failover). Empty for a supernode alone.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nodes: Vec<String>,
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
        /// The call (a `call_…` string, unique across nodes).
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
    /// This node is being drained (`supernode drain --migrate`): log in again on one of
    /// `nodes` (placement order; this node is not among them) with the same credential and
    /// `resume` a call in progress there, as after this node's death. The node keeps a
    /// call of this endpoint for its resume elsewhere (`failover_grace`) after the
    /// WebSocket closes.
    Migrate {
        /// WebSocket URLs of the nodes to go to, preferred first.
        nodes: Vec<String>,
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
        /// This endpoint's relay transport.
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
    /// To the creating endpoint: the conference exists (its `media` and roster follow).
    ConferenceCreated {
        /// The conference (a `call_…` string).
        conference_id: CallId,
        /// The `client_ref` of `conference_create`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ref: Option<String>,
    },
    /// To every endpoint of an invited account: answer with `conference_join`.
    ConferenceInvite {
        /// The conference.
        conference_id: CallId,
        /// The inviting account.
        from: AccountId,
        /// Who is in it now.
        participants: Vec<Participant>,
    },
    /// To every participant, whenever who is in the conference changes (at once), or who
    /// speaks (at most every 500 ms).
    ConferenceRoster {
        /// The conference.
        conference_id: CallId,
        /// Who is in it (with a transport), in join order.
        participants: Vec<Participant>,
        /// The active speaker (the loudest participant, with hysteresis), if anyone speaks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        active_speaker: Option<EndpointId>,
    },
}

/// One participant of a conference, in `conference_roster`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The account.
    pub account_id: AccountId,
    /// The endpoint taking part.
    pub endpoint_id: EndpointId,
    /// The SSRC of its audio, as it declared in `conference_streams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_ssrc: Option<u32>,
    /// The SSRC of its video, as it declared in `conference_streams`: the forwarded
    /// video stream of that SSRC is this participant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_ssrc: Option<u32>,
    /// Whether there is voice in its audio now (the mixer's voice activity, held briefly).
    #[serde(default)]
    pub speaking: bool,
}
