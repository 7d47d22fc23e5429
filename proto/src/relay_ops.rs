//! Relay operations: what the control plane asks of a relay, and what the relay answers.
//!
//! The conference core (in signaling) emits [`RelayOp`]s, each with an [`OperationId`]; an
//! executor (the host's relay, or a relay on another node over a trunk) runs them and answers
//! each with a [`RelayResult`] carrying the same id. Nothing here does I/O: the types are the
//! contract between the two, and serialize with serde so that they can cross nodes.
//!
//! A call's operations come in batches (one [`RelayOp::CreateSession`] with the
//! [`RelayOp::AddTransport`]s and [`RelayOp::Subscribe`]s of its endpoints); an executor runs
//! one batch in order and may run batches concurrently. [`RelayOp::Release`] frees a session
//! and every transport in it; releasing an unknown session succeeds (it is idempotent), so a
//! control plane may always release what it asked for, whatever came back.

use serde::{Deserialize, Serialize};

use crate::ids::{CallId, OperationId, RelaySessionId, TransportId};
use crate::protocol::SrtpKeying;
use crate::srtp::SrtpProfile;

/// The kind of a transport (see the design's "relay core's nouns").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportKind {
    /// An edge client: its own latching port, SRTP with keys the relay makes (SDES-like).
    Client,
    /// A browser (WebRTC: ICE-lite, DTLS-SRTP).
    Browser,
    /// Another supernode's relay.
    Trunk,
    /// A media processor (a mixer on media threads).
    Processor,
}

/// Opens a session: the set of transports of one call or conference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    /// This operation.
    pub op: OperationId,
    /// The session's id (chosen by the control plane).
    pub session: RelaySessionId,
    /// The call or conference the session belongs to.
    pub call: CallId,
}

/// Adds a transport to a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTransport {
    /// This operation.
    pub op: OperationId,
    /// The session.
    pub session: RelaySessionId,
    /// The transport's id (chosen by the control plane).
    pub transport: TransportId,
    /// What is at the other end.
    pub kind: TransportKind,
    /// The SRTP profile to key it with (`None`: plain RTP). For a browser transport the
    /// profile is negotiated in the DTLS handshake instead and this is ignored.
    pub srtp: Option<SrtpProfile>,
    /// What the browser's offer says, for [`TransportKind::Browser`] (required then, ignored
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserOffer>,
}

/// A DTLS certificate fingerprint as SDP carries it (`a=fingerprint:sha-256 AB:CD:…`,
/// RFC 8122).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtlsFingerprint {
    /// The hash function, lower case as in SDP: `sha-256` (the only one the relay makes and
    /// checks).
    pub algorithm: String,
    /// The digest as upper-case hex bytes separated by colons (`AB:CD:…`); compared
    /// case-insensitively.
    pub value: String,
}

/// The browser side of a WebRTC transport, from its SDP offer. Everything on one BUNDLE
/// transport with rtcp-mux (audio, video and RTX SSRCs on one 5-tuple).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserOffer {
    /// The offer's `a=ice-ufrag` (the browser's username fragment: a binding request's
    /// USERNAME is `<relay ufrag>:<this>`).
    pub ice_ufrag: String,
    /// The offer's `a=fingerprint` (the browser's DTLS certificate): a handshake whose
    /// client certificate does not hash to it closes the transport.
    pub fingerprint: DtlsFingerprint,
    /// The `a=extmap` id of
    /// `http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01`, if the
    /// offer has it: the relay then sends transport-wide congestion control feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twcc_extension_id: Option<u8>,
    /// The `a=extmap` id of `urn:ietf:params:rtp-hdrext:sdes:mid`, if the answer
    /// negotiated it: the relay then writes the MIDs of [`BrowserOffer::send`] under it in
    /// what it forwards to this browser (whatever the source's numbering), and knows the
    /// browser's own MID elements by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid_extension_id: Option<u8>,
    /// Media clock rate by RTP payload type of what the browser sends (from the offer's
    /// `a=rtpmap`s: Opus 48000, H.264 90000, RTX 90000).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clock_rates: Vec<(u8, u32)>,
    /// What the relay sends toward this browser, one entry per accepted m-line that
    /// receives: the SDP answer announces these SSRCs (`a=ssrc`, `a=ssrc-group:FID`) and
    /// payload types, so forwarded packets must carry them (rewritten from the source
    /// stream's). Empty: the browser only sends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send: Vec<BrowserSend>,
    /// The browser's simulcast video, when the answer accepted it: the relay binds its
    /// video SSRCs to layers by RID and forwards one layer to each receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulcast: Option<BrowserSimulcast>,
}

/// Simulcast accepted from a browser (`a=simulcast:recv` in the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSimulcast {
    /// The `a=extmap` id of `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub rid_extension_id: u8,
    /// The `a=extmap` id of `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired_rid_extension_id: Option<u8>,
    /// The RIDs, lowest layer first (the offer's order).
    pub rids: Vec<String>,
}

/// One stream the relay sends toward a browser (one m-line of the answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserSend {
    /// `audio` or `video`: which source streams go out here.
    pub kind: MediaKindOfLine,
    /// The m-line's `a=mid` (for the MID header extension, when negotiated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// The browser's payload type for the codec (Opus or H.264).
    pub pt: u8,
    /// The SSRC announced for it.
    pub ssrc: u32,
    /// The RTX payload type and SSRC, when RTX was negotiated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtx: Option<(u8, u32)>,
}

/// The media kind of an m-line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKindOfLine {
    /// Opus.
    Audio,
    /// H.264.
    Video,
}

/// Routes every stream `source` receives to `sink` (one direction).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// This operation.
    pub op: OperationId,
    /// The session of both transports.
    pub session: RelaySessionId,
    /// Where the media comes from.
    pub source: TransportId,
    /// Where it goes.
    pub sink: TransportId,
}

/// Adds a trunk transport to a session: a transport toward another supernode's relay,
/// every packet SRTP-authenticated with keys of its own (one per direction), so a packet from
/// anyone without the keys is dropped and counted (`stranger`).
///
/// A trunk is made in two steps. The first node adds it with no `peer`: the relay makes
/// fresh keys, latches onto the far relay's first authenticated packet and answers
/// [`RelayOutcome::TrunkAdded`] with its address and keys. The second node adds its end with
/// `peer` (the first end's address and keys, swapped to its own view: what the first end
/// sends is its inbound): a transport aimed at that address only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTrunk {
    /// This operation.
    pub op: OperationId,
    /// The session.
    pub session: RelaySessionId,
    /// The transport's id (chosen by the control plane).
    pub transport: TransportId,
    /// The SRTP profile of fresh keys (ignored with `peer`: its keys name their profile).
    pub srtp: SrtpProfile,
    /// The far end, when it exists already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<TrunkPeer>,
}

/// The far end of a trunk, as the second node's relay is told it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkPeer {
    /// `IP:PORT` of the far relay's end of the trunk.
    pub address: String,
    /// The keys, from this end's view.
    pub keys: TrunkKeys,
}

/// The SRTP keys of one end of a trunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkKeys {
    /// What the far end protects with (this end unprotects with it).
    pub inbound: SrtpKeying,
    /// What this end protects with.
    pub outbound: SrtpKeying,
}

impl TrunkKeys {
    /// The same keys from the far end's view.
    pub fn swapped(self) -> Self {
        Self {
            inbound: self.outbound,
            outbound: self.inbound,
        }
    }
}

/// What an added trunk gives the control plane: where it is and its keys (this end's view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkGrant {
    /// The transport.
    pub transport: TransportId,
    /// `IP:PORT` the far relay sends to.
    pub address: String,
    /// Its keys.
    pub keys: TrunkKeys,
}

/// Gives an existing trunk end fresh SRTP master keys (both directions, of profile `srtp`):
/// fresh send and receive contexts, so the streams it sends start a fresh packet index under
/// the new keys and nothing under the old keys is accepted any more (dropped and counted).
/// The anchor of a call does this when the call resumes on another node, before it sends
/// that node the trunk (a fresh far end starts every context at index 0: with the old keys
/// its RTCP would be taken for replays and a stream past its first sequence wrap would not
/// authenticate). Answered [`RelayOutcome::TrunkRekeyed`] with the new keys (this end's
/// view); the end's address does not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyTrunk {
    /// This operation.
    pub op: OperationId,
    /// The session.
    pub session: RelaySessionId,
    /// The trunk transport.
    pub transport: TransportId,
    /// The SRTP profile of the fresh keys.
    pub srtp: SrtpProfile,
}

/// What a re-keyed trunk end gives the control plane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkRekey {
    /// The transport.
    pub transport: TransportId,
    /// Its new keys (this end's view).
    pub keys: TrunkKeys,
}

/// Frees a session and all its transports (idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// This operation.
    pub op: OperationId,
    /// The session.
    pub session: RelaySessionId,
}

/// Opens a conference: a session whose audio goes through a mixer (a processor transport
/// whose far side is an audio MCU). Answered [`RelayOutcome::SessionCreated`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenConference {
    /// This operation.
    pub op: OperationId,
    /// The session's id (chosen by the control plane).
    pub session: RelaySessionId,
    /// The conference (its id on the wire).
    pub call: CallId,
    /// Most participants the mixer takes.
    pub max_participants: u32,
}

/// Adds a participant to a conference: a client transport whose audio goes to the mixer,
/// which gets its own mix back, and whose video goes to (and comes from) every other
/// participant. Answered [`RelayOutcome::TransportAdded`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinConference {
    /// This operation.
    pub op: OperationId,
    /// The conference's session.
    pub session: RelaySessionId,
    /// The participant's transport (chosen by the control plane).
    pub transport: TransportId,
    /// The SRTP profile to key it with (`None`: plain RTP).
    pub srtp: Option<SrtpProfile>,
    /// What a browser participant's offer says: the transport is then a browser transport
    /// (ICE-lite, DTLS-SRTP; the SRTP profile is ignored) whose [`BrowserOffer::send`]
    /// lists its audio m-line and its video m-lines, the slots the other participants'
    /// videos go to (one source each, in join order; sources beyond them are not sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserOffer>,
}

/// Removes a participant's transport from a conference (the others go on). Answered
/// [`RelayOutcome::Left`]; an unknown transport is [`RelayOpError::UnknownTransport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveConference {
    /// This operation.
    pub op: OperationId,
    /// The conference's session.
    pub session: RelaySessionId,
    /// The participant's transport.
    pub transport: TransportId,
}

/// One operation for a relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayOp {
    /// [`CreateSession`].
    CreateSession(CreateSession),
    /// [`AddTransport`].
    AddTransport(AddTransport),
    /// [`Subscribe`].
    Subscribe(Subscribe),
    /// [`AddTrunk`].
    AddTrunk(AddTrunk),
    /// [`RekeyTrunk`].
    RekeyTrunk(RekeyTrunk),
    /// [`Release`].
    Release(Release),
    /// [`OpenConference`].
    OpenConference(OpenConference),
    /// [`JoinConference`].
    JoinConference(JoinConference),
    /// [`LeaveConference`].
    LeaveConference(LeaveConference),
}

impl RelayOp {
    /// The operation's id.
    pub fn id(&self) -> &OperationId {
        match self {
            Self::CreateSession(o) => &o.op,
            Self::AddTransport(o) => &o.op,
            Self::Subscribe(o) => &o.op,
            Self::AddTrunk(o) => &o.op,
            Self::RekeyTrunk(o) => &o.op,
            Self::Release(o) => &o.op,
            Self::OpenConference(o) => &o.op,
            Self::JoinConference(o) => &o.op,
            Self::LeaveConference(o) => &o.op,
        }
    }

    /// The session it acts on.
    pub fn session(&self) -> &RelaySessionId {
        match self {
            Self::CreateSession(o) => &o.session,
            Self::AddTransport(o) => &o.session,
            Self::Subscribe(o) => &o.session,
            Self::AddTrunk(o) => &o.session,
            Self::RekeyTrunk(o) => &o.session,
            Self::Release(o) => &o.session,
            Self::OpenConference(o) => &o.session,
            Self::JoinConference(o) => &o.session,
            Self::LeaveConference(o) => &o.session,
        }
    }

    /// The answer `error` gives to this operation.
    pub fn failed(&self, error: RelayOpError) -> RelayResult {
        RelayResult {
            op: self.id().clone(),
            outcome: Err(error),
        }
    }
}

/// What an added transport gives its endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportGrant {
    /// The transport.
    pub transport: TransportId,
    /// `IP:PORT` the endpoint sends media to.
    pub address: String,
    /// Its SRTP keying (made by the relay), when keyed. `None` for a browser transport
    /// (keyed by DTLS-SRTP).
    pub srtp: Option<SrtpKeying>,
    /// What the SDP answer needs, for a browser transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserGrant>,
}

/// What a browser transport gives the SDP answer: the relay is an ICE-lite agent
/// (`a=ice-lite`) and the DTLS server (`a=setup:passive`), on one BUNDLE transport with
/// rtcp-mux.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserGrant {
    /// `a=ice-ufrag` of the answer.
    pub ice_ufrag: String,
    /// `a=ice-pwd` of the answer.
    pub ice_pwd: String,
    /// `a=fingerprint` of the answer (the relay's self-signed ECDSA P-256 certificate).
    pub fingerprint: DtlsFingerprint,
    /// The host candidates (`a=candidate:… typ host`), one per address the transport is
    /// reached at (the grant's `address` first).
    pub candidates: Vec<IceCandidate>,
}

/// One ICE candidate of a browser transport (UDP, host type).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The candidate's foundation.
    pub foundation: String,
    /// Its priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// `IP:PORT`.
    pub address: String,
}

impl IceCandidate {
    /// The candidate as an SDP attribute value (after `a=`):
    /// `candidate:<foundation> 1 udp <priority> <ip> <port> typ host`.
    pub fn to_sdp(&self) -> String {
        let (ip, port) = match self.address.rsplit_once(':') {
            Some((ip, port)) => (ip.trim_start_matches('[').trim_end_matches(']'), port),
            None => (self.address.as_str(), "0"),
        };
        format!(
            "candidate:{} 1 udp {} {} {} typ host",
            self.foundation, self.priority, ip, port
        )
    }
}

/// What a successful operation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "done", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayOutcome {
    /// The session exists.
    SessionCreated,
    /// The transport exists.
    TransportAdded(TransportGrant),
    /// The route exists.
    Subscribed,
    /// The trunk transport exists.
    TrunkAdded(TrunkGrant),
    /// The trunk end has fresh keys ([`RekeyTrunk`]).
    TrunkRekeyed(TrunkRekey),
    /// The session and its transports are gone.
    Released,
    /// The participant left the conference (its transport is gone).
    Left,
}

/// Why a relay operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RelayOpError {
    /// No ports or capacity left.
    #[error("relay has no capacity left")]
    Exhausted,
    /// The relay is draining (shutting down) and takes no new sessions.
    #[error("relay is draining")]
    Draining,
    /// The session is not known to the relay.
    #[error("unknown relay session")]
    UnknownSession,
    /// A transport is not known to the relay (or not in this session).
    #[error("unknown transport")]
    UnknownTransport,
    /// This relay cannot make transports of this kind (yet).
    #[error("transport kind {0:?} is not supported by this relay")]
    Unsupported(TransportKind),
    /// The operation is malformed (a browser transport without its offer's ICE ufrag and
    /// DTLS fingerprint, or with a fingerprint the relay cannot check).
    #[error("bad relay operation: {0}")]
    BadRequest(String),
    /// The conference already holds its `max_participants`.
    #[error("the conference is full ({0} participants)")]
    Full(u32),
    /// The relay did not answer in time (or its executor went away).
    #[error("relay did not answer in time")]
    TimedOut,
    /// Any other failure of the relay.
    #[error("relay unavailable: {0}")]
    Unavailable(String),
}

/// The answer to one [`RelayOp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayResult {
    /// The operation answered.
    pub op: OperationId,
    /// What happened.
    pub outcome: Result<RelayOutcome, RelayOpError>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_results_round_trip() {
        let session = RelaySessionId::from_bytes([1; 16]);
        let ops = vec![
            RelayOp::CreateSession(CreateSession {
                op: OperationId::from_bytes([2; 16]),
                session: session.clone(),
                call: CallId::from_bytes([3; 16]),
            }),
            RelayOp::AddTransport(AddTransport {
                op: OperationId::from_bytes([4; 16]),
                session: session.clone(),
                transport: TransportId::from_bytes([5; 16]),
                kind: TransportKind::Client,
                srtp: Some(SrtpProfile::Aes128CmHmacSha1_80),
                browser: None,
            }),
            RelayOp::Release(Release {
                op: OperationId::from_bytes([6; 16]),
                session: session.clone(),
            }),
        ];
        for op in &ops {
            let json = serde_json::to_string(op).unwrap();
            assert_eq!(&serde_json::from_str::<RelayOp>(&json).unwrap(), op);
            assert_eq!(op.session(), &session);
        }
        let r = ops[1].failed(RelayOpError::Exhausted);
        assert_eq!(r.op, OperationId::from_bytes([4; 16]));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"exhausted\""), "{json}");
        assert_eq!(serde_json::from_str::<RelayResult>(&json).unwrap(), r);
    }

    #[test]
    fn browser_transport_op_and_grant_round_trip() {
        let op = RelayOp::AddTransport(AddTransport {
            op: OperationId::from_bytes([7; 16]),
            session: RelaySessionId::from_bytes([1; 16]),
            transport: TransportId::from_bytes([8; 16]),
            kind: TransportKind::Browser,
            srtp: None,
            browser: Some(BrowserOffer {
                ice_ufrag: "abcd".into(),
                fingerprint: DtlsFingerprint {
                    algorithm: "sha-256".into(),
                    value: "AB:CD".into(),
                },
                twcc_extension_id: Some(3),
                mid_extension_id: Some(4),
                clock_rates: vec![(111, 48_000), (96, 90_000)],
                send: vec![BrowserSend {
                    kind: MediaKindOfLine::Video,
                    mid: Some("1".into()),
                    pt: 96,
                    ssrc: 7,
                    rtx: Some((97, 8)),
                }],
                simulcast: Some(BrowserSimulcast {
                    rid_extension_id: 10,
                    repaired_rid_extension_id: Some(11),
                    rids: vec!["q".into(), "h".into(), "f".into()],
                }),
            }),
        });
        let json = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<RelayOp>(&json).unwrap(), op);
        let grant = TransportGrant {
            transport: TransportId::from_bytes([8; 16]),
            address: "192.0.2.7:3478".into(),
            srtp: None,
            browser: Some(BrowserGrant {
                ice_ufrag: "relayufrag".into(),
                ice_pwd: "relaypassword0123456789".into(),
                fingerprint: DtlsFingerprint {
                    algorithm: "sha-256".into(),
                    value: "01:02".into(),
                },
                candidates: vec![IceCandidate {
                    foundation: "1".into(),
                    priority: 2_130_706_431,
                    address: "192.0.2.7:3478".into(),
                }],
            }),
        };
        let json = serde_json::to_string(&grant).unwrap();
        assert_eq!(
            serde_json::from_str::<TransportGrant>(&json).unwrap(),
            grant
        );
        assert_eq!(
            grant.browser.as_ref().unwrap().candidates[0].to_sdp(),
            "candidate:1 1 udp 2130706431 192.0.2.7 3478 typ host"
        );
        // A client transport's JSON has no browser field (what older peers send), and
        // parses back.
        let client = TransportGrant {
            browser: None,
            ..grant.clone()
        };
        let json = serde_json::to_string(&client).unwrap();
        assert!(!json.contains("browser"), "{json}");
        assert_eq!(
            serde_json::from_str::<TransportGrant>(&json).unwrap(),
            client
        );
    }
}
