//! The relay operations a call asks for, built in one place: an endpoint's transport and a
//! subscription between two transports of a session.

use supernode_proto::relay_ops::{AddTransport, RelayOp, Subscribe, TransportKind};

use super::CallCore;
use crate::calls::browser::CheckedOffer;
use crate::ids::{OperationId, RelaySessionId, TransportId};

impl CallCore {
    /// `transport` for an endpoint in `session`: a browser transport answering `offer` when
    /// the endpoint is a browser, else an edge client's transport with the configured SRTP
    /// profile.
    pub(super) fn endpoint_transport_op(
        &self,
        session: &RelaySessionId,
        transport: &TransportId,
        offer: Option<&CheckedOffer>,
    ) -> RelayOp {
        RelayOp::AddTransport(AddTransport {
            op: OperationId::random(),
            session: session.clone(),
            transport: transport.clone(),
            kind: if offer.is_some() {
                TransportKind::Browser
            } else {
                TransportKind::Client
            },
            srtp: if offer.is_some() {
                None
            } else {
                Some(self.cfg.srtp)
            },
            browser: offer.map(|o| o.relay_offer(transport, &self.cfg.browser_media)),
        })
    }
}

/// `sink` receives what `source` sends, within `session`.
pub(super) fn subscribe_op(
    session: &RelaySessionId,
    source: &TransportId,
    sink: &TransportId,
) -> RelayOp {
    RelayOp::Subscribe(Subscribe {
        op: OperationId::random(),
        session: session.clone(),
        source: source.clone(),
        sink: sink.clone(),
    })
}
