//! Trunked cross-node calls: the media of a call whose endpoints are on two nodes goes
//! endpoint → its own node's relay → trunk → the other node's relay → endpoint.
//!
//! The anchor (caller's node) sets up, on its relay, the caller's transport and its end of a
//! trunk ([`RelayOp::AddTrunk`] with no peer: the relay makes the trunk's keys), subscribed
//! both ways, and sends the answering node [`NodeMsg::TrunkSetup`] (the trunk's address and
//! keys, from the receiver's view). The answering node then asks its own relay for the other
//! end (aimed at the anchor's) and a transport for its endpoint, subscribed both ways, and
//! hands its endpoint `media` once every operation succeeded; a failure ends the call
//! `relay_failure` everywhere. Its session is released with the call, like the anchor's.
//! When the call resumes on another node, the anchor re-keys its end first
//! ([`RelayOp::RekeyTrunk`], see `failover`) and sends that node the new keys.

use std::collections::{BTreeSet, HashMap};

use supernode_proto::network::NodeMsg;
use supernode_proto::relay_ops::{
    AddTrunk, CreateSession, RekeyTrunk, RelayOp, RelayOutcome, TransportGrant, TrunkGrant,
    TrunkPeer,
};

use super::ops::subscribe_op;
use super::{CallCore, Phase, SessionBook, leg_info};
use crate::calls::browser::CheckedOffer;
use crate::ids::{CallId, OperationId, RelaySessionId, TransportId};
use crate::protocol::{EndReason, ServerMsg};

/// The answering node's side of a trunked call while its relay sets it up.
#[derive(Debug)]
pub(super) struct TrunkIn {
    /// Its relay session.
    pub(super) session: RelaySessionId,
    /// The endpoint's transport.
    pub(super) client_tr: TransportId,
    /// Its grant, once in.
    pub(super) grant: Option<TransportGrant>,
    /// A browser endpoint's offer (answered in its `media`).
    pub(super) offer: Option<Box<CheckedOffer>>,
    /// Whether the endpoint was handed its `media`.
    pub(super) done: bool,
}

/// The grant the anchor's core keeps for the trunk in place of the callee's transport grant
/// (its address stands for the callee's leg), and the peer to send the answering node.
pub(super) fn trunk_grant_parts(
    g: TrunkGrant,
    public_ip: Option<std::net::IpAddr>,
) -> (TransportGrant, TrunkPeer) {
    let address = match (public_ip, g.address.parse::<std::net::SocketAddr>()) {
        (Some(ip), Ok(mut a)) => {
            a.set_ip(ip);
            a.to_string()
        }
        _ => g.address.clone(),
    };
    (
        TransportGrant {
            transport: g.transport,
            address: address.clone(),
            srtp: None,
            browser: None,
        },
        TrunkPeer {
            address,
            keys: g.keys.swapped(),
        },
    )
}

impl CallCore {
    /// The anchor's operation for the answering node's side of a call: its end of a trunk.
    pub(super) fn trunk_op(&self, session: &RelaySessionId, transport: &TransportId) -> RelayOp {
        RelayOp::AddTrunk(AddTrunk {
            op: OperationId::random(),
            session: session.clone(),
            transport: transport.clone(),
            srtp: self.cfg.srtp,
            peer: None,
        })
    }

    /// The anchor's operation that gives its trunk end fresh keys (on a resume).
    pub(super) fn rekey_op(&self, session: &RelaySessionId, transport: &TransportId) -> RelayOp {
        RelayOp::RekeyTrunk(RekeyTrunk {
            op: OperationId::random(),
            session: session.clone(),
            transport: transport.clone(),
            srtp: self.cfg.srtp,
        })
    }

    /// A trunk end was re-keyed for a resume; the node the other endpoint resumed on gets
    /// `trunk_setup` with the new keys (the end's address is unchanged). `false` when
    /// `outcome` is no re-key.
    pub(super) fn rekey_progress(&mut self, call_id: &CallId, outcome: &RelayOutcome) -> bool {
        let RelayOutcome::TrunkRekeyed(r) = outcome else {
            return false;
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return true;
        };
        if call.net.trunk_tr.as_ref() != Some(&r.transport) {
            return true;
        }
        // The far node: the callee's for the anchor; the caller's for a node the call was
        // re-anchored on.
        let far = call
            .net
            .callee_node
            .clone()
            .or(call.net.caller_node.clone());
        let (Some(node), Some(sent)) = (far, call.net.trunk_sent.as_mut()) else {
            return true;
        };
        sent.keys = r.keys.clone().swapped();
        let trunk = sent.clone();
        tracing::info!(call = %call_id, node = %node, "trunk re-keyed: sending it to the resumed node");
        self.send_node(
            node,
            NodeMsg::TrunkSetup {
                call: call_id.clone(),
                trunk,
            },
        );
        true
    }

    /// `trunk_setup` from the anchor: sets up this node's end of the trunk and the answering
    /// endpoint's transport. `false` when the call is not one answered here.
    pub(super) fn handle_trunk_setup(&mut self, call_id: &CallId, trunk: TrunkPeer) -> bool {
        let Some(call) = self.calls.get(call_id) else {
            return false;
        };
        let Phase::Active {
            callee_ep,
            session: None,
        } = &call.phase
        else {
            // Set up already (a repeated message is answered from the dedupe memory; a
            // late one is moot).
            return matches!(call.phase, Phase::Active { .. });
        };
        let callee_ep = callee_ep.clone();
        let offer = if self.is_browser(&callee_ep) {
            let sdp = call.net.answer_sdp.clone();
            match self.browser_offer(sdp.as_deref(), "accept") {
                Ok(o) => Some(Box::new(o)),
                Err(_) => {
                    self.end_call(call_id, EndReason::RelayFailure);
                    return true;
                }
            }
        } else {
            None
        };
        let session = RelaySessionId::random();
        let (trunk_tr, client_tr) = (TransportId::random(), TransportId::random());
        let batch = vec![
            RelayOp::CreateSession(CreateSession {
                op: OperationId::random(),
                session: session.clone(),
                call: call_id.clone(),
            }),
            RelayOp::AddTrunk(AddTrunk {
                op: OperationId::random(),
                session: session.clone(),
                transport: trunk_tr.clone(),
                srtp: self.cfg.srtp,
                peer: Some(trunk),
            }),
            self.endpoint_transport_op(&session, &client_tr, offer.as_deref()),
            subscribe_op(&session, &trunk_tr, &client_tr),
            subscribe_op(&session, &client_tr, &trunk_tr),
        ];
        self.sessions.insert(
            session.clone(),
            SessionBook {
                call: Some(call_id.clone()),
                outstanding: BTreeSet::new(),
            },
        );
        self.books.sessions_created += 1;
        self.emit(&session, batch);
        if let Some(call) = self.calls.get_mut(call_id) {
            call.phase = Phase::Active {
                callee_ep,
                session: Some(session.clone()),
            };
            call.net.trunk_tr = Some(trunk_tr);
            call.net.trunk_in = Some(TrunkIn {
                session,
                client_tr,
                grant: None,
                offer,
                done: false,
            });
        }
        true
    }

    /// A successful result of the answering node's trunk set-up: `true` when it was one
    /// (the endpoint gets its `media` once every operation is in).
    pub(super) fn trunk_progress(
        &mut self,
        call_id: &CallId,
        session: &RelaySessionId,
        outcome: &RelayOutcome,
    ) -> bool {
        let outstanding = self
            .sessions
            .get(session)
            .map_or(0, |b| b.outstanding.len());
        let (public_ip, policy) = (self.cfg.public_ip, self.cfg.browser_media);
        let Some(call) = self.calls.get_mut(call_id) else {
            return false;
        };
        let Phase::Active { callee_ep, .. } = &call.phase else {
            return false;
        };
        let callee_ep = callee_ep.clone();
        let Some(t) = call.net.trunk_in.as_mut().filter(|t| &t.session == session) else {
            return false;
        };
        if let RelayOutcome::TransportAdded(g) = outcome
            && g.transport == t.client_tr
        {
            t.grant = Some(g.clone());
        }
        if let RelayOutcome::TrunkAdded(g) = outcome
            && call.net.trunk_tr.as_ref() == Some(&g.transport)
        {
            // Its address, for a re-anchoring here (see `failover`); the keys are replaced
            // by fresh ones then.
            call.net.trunk_sent = Some(trunk_grant_parts(g.clone(), public_ip).1);
        }
        if outstanding > 0 || t.done {
            return true;
        }
        t.done = true;
        let leg = match &t.grant {
            Some(g) => leg_info(g, t.offer.as_deref(), public_ip, &policy),
            None => Err("the endpoint's transport is missing".to_owned()),
        };
        match leg {
            Ok(leg) => self.push(
                callee_ep,
                ServerMsg::Media {
                    call_id: call_id.clone(),
                    leg,
                },
            ),
            Err(e) => {
                tracing::warn!(call = %call_id, error = %e, "trunk grant unusable");
                self.end_call(call_id, EndReason::RelayFailure);
            }
        }
        true
    }

    /// The anchor: keeps a trunk grant among the pending call's grants (standing for the
    /// callee's transport) and the peer for `trunk_setup`.
    pub(super) fn keep_trunk_grant(
        &mut self,
        call_id: &CallId,
        g: TrunkGrant,
        grants: &mut HashMap<TransportId, TransportGrant>,
    ) {
        let (grant, peer) = trunk_grant_parts(g, self.cfg.public_ip);
        let transport = grant.transport.clone();
        grants.insert(grant.transport.clone(), grant);
        if let Some(call) = self.calls.get_mut(call_id) {
            call.net.trunk_out = Some(peer);
            call.net.trunk_tr = Some(transport);
        }
    }

    /// The anchor: the message that hands the answering node its side of the media.
    pub(super) fn media_msg_for_node(
        &mut self,
        call_id: &CallId,
        leg: crate::protocol::LegInfo,
    ) -> NodeMsg {
        let trunk = self.calls.get_mut(call_id).and_then(|c| {
            let t = c.net.trunk_out.take();
            c.net.trunk_sent = t.clone();
            t
        });
        match trunk {
            Some(trunk) => NodeMsg::TrunkSetup {
                call: call_id.clone(),
                trunk,
            },
            None => NodeMsg::MediaSetup {
                call: call_id.clone(),
                leg,
            },
        }
    }
}
