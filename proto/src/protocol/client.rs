//! Messages a client sends ([`ClientMsg`]).

use serde::{Deserialize, Serialize};

use super::call::{MediaKind, Negotiation};
use crate::ids::{AccountId, CallId};

/// What kind of client an endpoint is, declared at `login`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientKind {
    /// The edge client: SRTP keyed by the supernode (SDES-like), its own relay port.
    #[default]
    Edge,
    /// A browser (WebRTC): sends an SDP offer with `invite`/`accept`; the supernode answers
    /// it (ICE-lite, DTLS-SRTP, BUNDLE) in the `media` message.
    Browser,
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
        /// What kind of client this endpoint is (`edge` when absent). A `browser` sets its
        /// calls up with SDP offers the supernode answers (`docs/protocol.md`, "Browser
        /// endpoints").
        #[serde(default)]
        client: ClientKind,
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
        /// A browser caller's SDP offer, answered by the supernode (in the caller's `media`
        /// once the call is answered). From an edge caller it is passed on in `incoming_call`.
        #[serde(default)]
        sdp: Option<String>,
    },
    /// Accept a ringing call (first accept wins).
    Accept {
        /// The call.
        call_id: CallId,
        /// A browser callee's SDP offer, answered by the supernode (in the callee's `media`).
        /// From an edge callee it is passed on in `accepted`.
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
    /// Open a conference (group call) and join it: answered `conference_created`, then
    /// `media` and `conference_roster` once the relay has the transport.
    ConferenceCreate {
        /// The creator's own reference, echoed in `conference_created`.
        #[serde(default)]
        client_ref: Option<String>,
        /// A browser's SDP offer (required from a browser, ignored from an edge client):
        /// one sendrecv audio m-line (the mix of the others comes back on it), one sendrecv
        /// video m-line and any number of recvonly video m-lines (each receives one other
        /// participant's video). Answered in the endpoint's `media` message.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Invite an account into a conference one takes part in: rings all its endpoints
    /// (`conference_invite`); the first that joins takes part, the others are told
    /// `answered_elsewhere`.
    ConferenceInvite {
        /// The conference.
        conference_id: CallId,
        /// The invitee.
        to: AccountId,
    },
    /// Join a conference one's account was invited to (or answer its ring).
    ConferenceJoin {
        /// The conference.
        conference_id: CallId,
        /// A browser's SDP offer, as for `conference_create`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// Leave a conference (the others go on; the last one out closes it).
    ConferenceLeave {
        /// The conference.
        conference_id: CallId,
    },
    /// Take an answered call back after this endpoint's supernode died (failover): sent
    /// on a new connection, on another node, by the same account that answered. The call's
    /// anchor (the node of `peer`) re-trunks it to this node; the endpoint then gets a new
    /// `media` leg. Refused with `error` `unknown_call` (`in_reply_to: "resume"`) when no
    /// such call waits for this account.
    Resume {
        /// The call.
        call_id: CallId,
        /// The other party (the caller): the node of its endpoint anchors the call.
        peer: AccountId,
    },
    /// Tell the other participants which SSRCs this participant sends (they appear in its
    /// `conference_roster` entry, so that a receiver maps the forwarded video streams to
    /// participants). Sent once the participant has its transport; sending again replaces.
    ConferenceStreams {
        /// The conference.
        conference_id: CallId,
        /// The SSRC of its audio.
        #[serde(default)]
        audio_ssrc: Option<u32>,
        /// The SSRC of its video.
        #[serde(default)]
        video_ssrc: Option<u32>,
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
        "conference_create",
        "conference_invite",
        "conference_join",
        "conference_leave",
        "resume",
        "conference_streams",
    ];

    /// This message's `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Login { .. } => "login",
            Self::Ping { .. } => "ping",
            Self::SubscribePresence { .. } => "subscribe_presence",
            Self::Invite { .. } => "invite",
            Self::Accept { .. } => "accept",
            Self::Reject { .. } => "reject",
            Self::Cancel { .. } => "cancel",
            Self::Hangup { .. } => "hangup",
            Self::Negotiate { .. } => "negotiate",
            Self::ConferenceCreate { .. } => "conference_create",
            Self::ConferenceInvite { .. } => "conference_invite",
            Self::ConferenceJoin { .. } => "conference_join",
            Self::ConferenceLeave { .. } => "conference_leave",
            Self::Resume { .. } => "resume",
            Self::ConferenceStreams { .. } => "conference_streams",
        }
    }
}
