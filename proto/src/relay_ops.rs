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
    /// The SRTP profile to key it with (`None`: plain RTP).
    pub srtp: Option<SrtpProfile>,
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

/// Frees a session and all its transports (idempotent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// This operation.
    pub op: OperationId,
    /// The session.
    pub session: RelaySessionId,
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
    /// [`Release`].
    Release(Release),
}

impl RelayOp {
    /// The operation's id.
    pub fn id(&self) -> &OperationId {
        match self {
            Self::CreateSession(o) => &o.op,
            Self::AddTransport(o) => &o.op,
            Self::Subscribe(o) => &o.op,
            Self::Release(o) => &o.op,
        }
    }

    /// The session it acts on.
    pub fn session(&self) -> &RelaySessionId {
        match self {
            Self::CreateSession(o) => &o.session,
            Self::AddTransport(o) => &o.session,
            Self::Subscribe(o) => &o.session,
            Self::Release(o) => &o.session,
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
    /// Its SRTP keying (made by the relay), when keyed.
    pub srtp: Option<SrtpKeying>,
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
    /// The session and its transports are gone.
    Released,
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
}
