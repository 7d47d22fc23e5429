//! Failover of a trunked cross-node call when the node of one of its endpoints dies (`kill -9`).
//!
//! The anchor (the caller's node) learns of the death from membership
//! ([`CallCore::node_down`], the host calls it when a node misses its heartbeats): a call
//! whose callee was there keeps the caller's side (its relay session, the caller's transport
//! and the anchor's end of the trunk) for `CallConfig::failover_grace`, then ends
//! `peer_disconnected`. Calls anchored on the dead node wait as long, then end here.
//!
//! Meanwhile the callee's client, whose WebSocket closed, logs in on another node and sends
//! `resume` ([`CallCore::resume`]). That node keeps a *resuming* mirror of the call and
//! sends [`NodeMsg::Resume`] to the nodes of the caller's endpoints; the anchor checks the
//! account, makes the sender the callee's node, gives its own trunk end fresh keys (a
//! [`RelayOp::RekeyTrunk`](supernode_proto::relay_ops::RelayOp::RekeyTrunk), answered
//! asynchronously) and then sends the new node `trunk_setup` with the same address and the
//! new keys. Fresh keys matter because the new node's SRTP contexts start at index 0: under
//! the old keys the anchor would drop its SRTCP as replays (its index restarts at 0 below
//! the dead node's), and a stream the anchor sends that is past its first sequence wrap
//! (rollover counter ≥ 1) would not authenticate at the new node; with new keys both sides
//! start fresh contexts, and whatever still comes under the old keys (the dead node's) is
//! dropped and counted (`srtp_auth`). The new node sets up its end and the endpoint's
//! transport as for a fresh answer, and the endpoint gets a new `media` leg. The anchor's
//! trunk end is latching: the first packet from the new node that authenticates moves it
//! there (a proven move), so the caller's leg does not change.
//!
//! When the *anchor* dies, the caller's client resumes the same way on a third node, whose
//! `resume` reaches the callee's node: the call is **re-anchored** there
//! ([`CallCore::reanchor`](CallCore)). That node's trunk end (aimed at the dead anchor) gets
//! fresh keys and becomes latching, the third node gets `trunk_setup` aimed at it, and the
//! callee's transport, SSRCs and sequence numbers stay as they are; the relay adopts the
//! new trunk streams for the callee's send streams (continuous SSRC/sequence/timestamp).
//! From then on the two nodes are each other's far node; an `end` from a node the call
//! left is ignored.

use std::time::Instant;

use supernode_proto::network::{NodeMsg, NodeReply, Refusal};

use super::{Call, CallCore, CallError, Phase, err, remote::CallNet};
use crate::ids::{AccountId, CallId, EndpointId};
use crate::protocol::{EndReason, ErrorCode, MediaKind, ServerMsg};

impl CallCore {
    /// Node `node` is dead (membership): calls with their other end there wait
    /// `failover_grace` (for a resume when the callee's node died; for the node to be heard
    /// again when membership was wrong, see [`Self::node_up`]), then end
    /// `peer_disconnected`. Ringing calls are left to their ring timeout and `end`
    /// messages (a node judged dead during a NATS server's fail-over may be alive).
    pub fn node_down(&mut self, now: Instant, node: &str) {
        let grace = self.cfg.failover_grace;
        for (id, call) in &mut self.calls {
            let far = call.net.caller_node.as_deref() == Some(node)
                || call.net.callee_node.as_deref() == Some(node);
            if far
                && matches!(call.phase, Phase::Active { .. })
                && call.net.resuming.is_none()
                && call.net.orphaned_until.is_none()
            {
                tracing::info!(call = %id, node, "far node died: waiting for a resume");
                call.net.orphaned_until = Some(now + grace);
            }
        }
        // Its endpoints leave the lookups: their accounts may read offline now.
        self.presence_resync();
    }

    /// Node `node` is heard again (membership judged it dead wrongly, e.g. while a NATS
    /// server failed over): its calls stop waiting.
    pub fn node_up(&mut self, node: &str) {
        for call in self.calls.values_mut() {
            if call.net.caller_node.as_deref() == Some(node)
                || call.net.callee_node.as_deref() == Some(node)
            {
                call.net.orphaned_until = None;
            }
        }
        self.presence_resync();
    }

    /// The earliest failover deadline (an orphaned call's grace, a resume's wait).
    pub(super) fn failover_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| {
                c.net
                    .orphaned_until
                    .or(c.net.resuming.as_ref().map(|(_, t)| *t))
            })
            .min()
    }

    /// Ends orphaned calls whose grace passed and resumes the anchor never took up.
    pub(super) fn failover_expired(&mut self, now: Instant) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.net.orphaned_until.is_some_and(|t| t <= now)
                    || c.net.resuming.as_ref().is_some_and(|(_, t)| *t <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.net.resuming.is_some() {
                self.resume_failed(&id);
                continue;
            }
            if !call.net.migrated {
                // The dead node hears nothing.
                call.net.callee_node = None;
                call.net.caller_node = None;
            }
            tracing::info!(call = %id, "no resume within the failover grace");
            self.end_call(&id, EndReason::PeerDisconnected);
        }
    }

    /// `resume` from `ep` (a new connection after its node died): asks the nodes of the
    /// peer's endpoints to re-trunk the call here; `media` follows.
    pub fn resume(
        &mut self,
        now: Instant,
        ep: &EndpointId,
        call_id: &CallId,
        peer: AccountId,
    ) -> Result<(), CallError> {
        let account = self
            .endpoints
            .get(ep)
            .map(|e| e.account.clone())
            .ok_or_else(super::not_yours)?;
        if self.calls.contains_key(call_id) {
            // Anchored here (the callee came back to the caller's node), or resumed
            // already: a local resume is not done yet.
            return Err(err(
                ErrorCode::UnknownCall,
                "this call cannot be resumed on this supernode",
            ));
        }
        if self.busy.contains_key(&account) {
            return Err(err(
                ErrorCode::InvalidState,
                "the account is in another call",
            ));
        }
        if !self.cfg.network {
            return Err(super::not_yours());
        }
        if !self.network_up {
            return Err(err(
                ErrorCode::NetworkUnavailable,
                "the call spans supernodes and the network is unavailable",
            ));
        }
        let nodes = self.remote_nodes(&peer);
        if nodes.is_empty() {
            return Err(super::not_yours());
        }
        for node in &nodes {
            self.send_node(
                node.clone(),
                NodeMsg::Resume {
                    call: call_id.clone(),
                    callee: account.clone(),
                    endpoint: ep.clone(),
                },
            );
        }
        self.busy.insert(account.clone(), call_id.clone());
        self.calls.insert(
            call_id.clone(),
            Call {
                caller: peer,
                // The caller's endpoint is on the anchor; a mirror never addresses it.
                caller_ep: EndpointId::random(),
                callee: account,
                media: MediaKind::default(),
                sdp: None,
                caller_offer: None,
                deadline: now + self.cfg.relay_timeout,
                phase: Phase::Active {
                    callee_ep: ep.clone(),
                    session: None,
                },
                net: CallNet {
                    caller_node: nodes.iter().next().cloned(),
                    resuming: Some((nodes, now + self.cfg.relay_timeout)),
                    ..CallNet::default()
                },
            },
        );
        Ok(())
    }

    /// `trunk_setup` from `from` for a resuming call: `from` is its anchor.
    pub(super) fn resumed_by(&mut self, call_id: &CallId, from: &str) {
        if let Some(call) = self.calls.get_mut(call_id)
            && call.net.resuming.take().is_some()
        {
            call.net.caller_node = Some(from.to_owned());
        }
    }

    /// Node `to` refused (or never answered) a resume: when none is left, the resume fails.
    pub(super) fn resume_refused(&mut self, call_id: &CallId, to: &str) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some((nodes, _)) = call.net.resuming.as_mut() else {
            return;
        };
        nodes.remove(to);
        if nodes.is_empty() {
            self.resume_failed(call_id);
        }
    }

    /// Drops a resuming mirror; the endpoint hears `unknown_call`.
    fn resume_failed(&mut self, call_id: &CallId) {
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        if self.busy.get(&call.callee) == Some(call_id) {
            self.busy.remove(&call.callee);
        }
        if let Phase::Active { callee_ep, .. } = call.phase {
            self.push(
                callee_ep,
                ServerMsg::Error {
                    code: ErrorCode::UnknownCall,
                    message: "no call to resume".into(),
                    in_reply_to: Some("resume".into()),
                },
            );
        }
    }

    /// The anchor: `endpoint` of `callee` on node `from` resumes `call_id`. The old node
    /// (when still alive) is told the call ended there; `from` gets `trunk_setup` again.
    pub(super) fn handle_resume(
        &mut self,
        from: &str,
        call_id: &CallId,
        callee: &AccountId,
        endpoint: EndpointId,
    ) -> NodeReply {
        let unknown = NodeReply::Refused {
            why: Refusal::UnknownCall,
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return unknown;
        };
        if call.net.caller_node.is_some() {
            return self.reanchor(from, call_id, callee, endpoint);
        }
        if call.callee != *callee {
            return unknown;
        }
        let (
            Phase::Active {
                callee_ep,
                session: Some(session),
            },
            Some(_),
            Some(trunk_tr),
        ) = (&mut call.phase, &call.net.trunk_sent, &call.net.trunk_tr)
        else {
            return unknown;
        };
        let (session, trunk_tr) = (session.clone(), trunk_tr.clone());
        *callee_ep = endpoint;
        let old = call.net.callee_node.replace(from.to_owned());
        let orphaned = call.net.orphaned_until.take().is_some();
        tracing::info!(call = %call_id, from, old = ?old, "call resumed on another node");
        self.move_far_end(call_id, from, old, orphaned, &session, &trunk_tr)
    }

    /// The far end of `call_id` moved from `old` to `from`: the old node, when still alive
    /// (`orphaned` false) and not `from`, is told the call ended there (its endpoint must
    /// not keep the trunk); this node's trunk end gets fresh keys first (see the module
    /// docs), and `trunk_setup` with them follows the relay's answer
    /// ([`Self::rekey_progress`]).
    fn move_far_end(
        &mut self,
        call_id: &CallId,
        from: &str,
        old: Option<String>,
        orphaned: bool,
        session: &crate::ids::RelaySessionId,
        trunk_tr: &crate::ids::TransportId,
    ) -> NodeReply {
        if let Some(old) = old.filter(|o| !orphaned && o != from) {
            self.send_node(
                old,
                NodeMsg::End {
                    call: call_id.clone(),
                    reason: EndReason::PeerDisconnected,
                },
            );
        }
        let op = self.rekey_op(session, trunk_tr);
        self.emit(session, vec![op]);
        NodeReply::Ok
    }

    /// The node of the callee of a trunked call: `endpoint` of the *caller* (`account`) on
    /// node `from` resumes `call_id` (the anchor died, or its endpoint left it). The call is
    /// re-anchored here: this node's trunk end gets fresh keys and becomes latching (it moves
    /// to the first packet that authenticates under them), `from` becomes the far node and
    /// gets `trunk_setup` with the new keys (after the relay's answer,
    /// [`Self::rekey_progress`]), and the callee's transport stays as it is. The old anchor,
    /// when still alive, is told the call ended there.
    fn reanchor(
        &mut self,
        from: &str,
        call_id: &CallId,
        account: &AccountId,
        endpoint: EndpointId,
    ) -> NodeReply {
        let unknown = NodeReply::Refused {
            why: Refusal::UnknownCall,
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return unknown;
        };
        let ready = call.net.trunk_in.as_ref().is_some_and(|t| t.done);
        let (
            Phase::Active {
                session: Some(session),
                ..
            },
            true,
            Some(_),
            Some(trunk_tr),
        ) = (
            &call.phase,
            ready && call.caller == *account,
            &call.net.trunk_sent,
            &call.net.trunk_tr,
        )
        else {
            return unknown;
        };
        let (session, trunk_tr) = (session.clone(), trunk_tr.clone());
        call.caller_ep = endpoint;
        let old = call.net.caller_node.replace(from.to_owned());
        let orphaned = call.net.orphaned_until.take().is_some();
        tracing::info!(call = %call_id, from, old = ?old, "call re-anchored here: the caller resumed on another node");
        self.move_far_end(call_id, from, old, orphaned, &session, &trunk_tr)
    }
}
