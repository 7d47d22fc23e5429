//! The conference core's cross-node half: calls whose endpoints are on several nodes.
//!
//! The caller's node is the call's *anchor*: it rings its own endpoints of the callee and
//! sends `ring` to every other node the directory lists for the callee; it sets the media
//! up (on its relay) once an endpoint answers anywhere, and ends the call everywhere. A node
//! that is rung keeps a *mirror* of the call: its endpoints ring; when one accepts, the
//! node claims the answer ([`NodeOut::Claim`], one winner network-wide), tells the anchor
//! (`answer`) and later hands its endpoint the `media` leg the anchor sends. Endpoints that
//! lose the claim, or ring on a node that hears `answered`, get `answered_elsewhere`.
//!
//! The core stays sans-IO: it emits [`NodeOut`]s (drain with [`CallCore::poll_node`]) and
//! takes their answers ([`CallCore::handle_node_reply`], [`CallCore::handle_claim`]) and
//! other nodes' messages ([`CallCore::handle_node_msg`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use supernode_proto::network::{NodeMsg, NodeReply, Refusal};

use super::{Call, CallCore, CallError, Phase, err};
use crate::ids::{AccountId, CallId, EndpointId};
use crate::network_access::NetFailure;
use crate::protocol::{EndReason, ErrorCode, MediaKind, NoticeState, ServerMsg};

/// Something for the network to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeOut {
    /// Send `msg` to node `to`; feed the answer to [`CallCore::handle_node_reply`].
    Send {
        /// The node.
        to: String,
        /// The message.
        msg: NodeMsg,
    },
    /// Claim the answer of `call` for `endpoint`; feed the answer to
    /// [`CallCore::handle_claim`].
    Claim {
        /// The call.
        call: CallId,
        /// This node's answering endpoint.
        endpoint: EndpointId,
    },
}

/// The cross-node state of one call.
#[derive(Debug, Default)]
pub(super) struct CallNet {
    /// Mirror: the anchor (the caller's node).
    pub(super) caller_node: Option<String>,
    /// Anchor: other nodes ringing the callee, and whether each has confirmed.
    pub(super) ringing_nodes: BTreeMap<String, bool>,
    /// Anchor: the node of the answering endpoint, when not this one.
    pub(super) callee_node: Option<String>,
    /// A local endpoint whose answer claim is out, and its answer SDP.
    pub(super) claiming: Option<(EndpointId, Option<String>)>,
    /// Anchor: whether the caller has heard `ringing`.
    pub(super) announced: bool,
    /// Anchor: the invite's `client_ref`, for a late `ringing`/`busy`/`unavailable`.
    pub(super) client_ref: Option<String>,
    /// Anchor: a rung node answered `busy`.
    pub(super) refused_busy: bool,
    /// Anchor: a rung node could not be reached.
    pub(super) unreachable: bool,
    /// Mirror: the answering endpoint's SDP (a browser's offer, for its transport here).
    pub(super) answer_sdp: Option<String>,
    /// Anchor: the trunk's far end to send the answering node (`trunk_setup`).
    pub(super) trunk_out: Option<supernode_proto::relay_ops::TrunkPeer>,
    /// Mirror: this node's side of a trunked call.
    pub(super) trunk_in: Option<super::trunk::TrunkIn>,
    /// Anchor: the trunk end sent to the answering node, kept for a resume (failover).
    pub(super) trunk_sent: Option<supernode_proto::relay_ops::TrunkPeer>,
    /// Anchor: its trunk transport (re-keyed on a resume).
    pub(super) trunk_tr: Option<crate::ids::TransportId>,
    /// Anchor: the callee's node died; the call waits for a resume until then.
    pub(super) orphaned_until: Option<Instant>,
    /// The local endpoint left on `migrate` (drain): the far node is alive, and is told
    /// `end` if no resume comes within the grace.
    pub(super) migrated: bool,
    /// Mirror of a resumed call: the nodes asked to resume it that have not refused, and
    /// until when the anchor's `trunk_setup` may take.
    pub(super) resuming: Option<(BTreeSet<String>, Instant)>,
}

impl CallNet {
    /// Whether an answer needs the network-wide claim (someone on another node may answer
    /// too).
    pub(super) fn needs_claim(&self) -> bool {
        self.caller_node.is_some() || !self.ringing_nodes.is_empty()
    }

    /// The node of `ep`'s peer in an answered call, when it is on another node.
    pub(super) fn node_of_peer(&self, call: &Call, ep: &EndpointId) -> Option<String> {
        if *ep == call.caller_ep {
            self.callee_node.clone()
        } else {
            self.caller_node.clone()
        }
    }
}

impl CallCore {
    /// Makes the core part of a network (as `CallConfig::network`).
    pub fn enable_network(&mut self) {
        self.cfg.network = true;
    }

    /// The next thing for the network to do.
    pub fn poll_node(&mut self) -> Option<NodeOut> {
        self.node_out.pop_front()
    }

    /// Whether the network can be reached now (the hub sets it before each step; with it
    /// down, calls that need another node fail fast with `network_unavailable`).
    pub fn set_network_up(&mut self, up: bool) {
        self.network_up = up;
    }

    /// A late `accept` of a call answered on another node: tells `ep` so (`true`).
    pub(super) fn answered_elsewhere(&mut self, ep: &EndpointId, call_id: &CallId) -> bool {
        let Some(account) = self.endpoints.get(ep).map(|e| &e.account) else {
            return false;
        };
        // Only the callee's endpoints learn of it (nothing leaks about other calls).
        if self.calls.contains_key(call_id)
            || !self
                .elsewhere
                .iter()
                .any(|(c, callee)| c == call_id && callee == account)
        {
            return false;
        }
        self.push(
            ep.clone(),
            ServerMsg::AnsweredElsewhere {
                call_id: call_id.clone(),
            },
        );
        true
    }

    fn remember_elsewhere(&mut self, call_id: &CallId, callee: &AccountId) {
        if self.elsewhere.len() >= 1024 {
            self.elsewhere.pop_front();
        }
        self.elsewhere.push_back((call_id.clone(), callee.clone()));
    }

    pub(super) fn send_node(&mut self, to: String, msg: NodeMsg) {
        self.node_out.push_back(NodeOut::Send { to, msg });
    }

    /// Other nodes with endpoints of `account` (none without a network).
    pub(super) fn remote_nodes(&self, account: &AccountId) -> BTreeSet<String> {
        if !self.cfg.network {
            return BTreeSet::new();
        }
        self.directory
            .endpoints_of(account)
            .into_iter()
            .filter(|r| r.supernode != self.cfg.node_id)
            .map(|r| r.supernode)
            .collect()
    }

    /// Sends `ring` to each node in `nodes`; the call's cross-node state.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ring_remote(
        &mut self,
        call: &CallId,
        caller_ep: &EndpointId,
        caller: &AccountId,
        callee: &AccountId,
        media: MediaKind,
        sdp: &Option<String>,
        nodes: BTreeSet<String>,
    ) -> CallNet {
        let partner = self.endpoints.get(caller_ep).map(|e| e.partner.clone());
        let mut net = CallNet::default();
        let Some(partner) = partner else {
            return net;
        };
        for node in nodes {
            self.send_node(
                node.clone(),
                NodeMsg::Ring {
                    call: call.clone(),
                    caller: caller.clone(),
                    caller_endpoint: caller_ep.clone(),
                    partner: partner.clone(),
                    callee: callee.clone(),
                    media,
                    sdp: sdp.clone(),
                },
            );
            net.ringing_nodes.insert(node, false);
        }
        net
    }

    /// `accept` of a call that another node may answer too: claims it first.
    pub(super) fn claim(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        sdp: Option<String>,
    ) -> Result<(), CallError> {
        if !self.network_up {
            return Err(err(
                ErrorCode::NetworkUnavailable,
                "the call spans supernodes and the network is unavailable",
            ));
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            return Err(err(ErrorCode::UnknownCall, "no such call"));
        };
        if call.net.claiming.is_some() {
            return Err(err(ErrorCode::InvalidState, "the call is being answered"));
        }
        call.net.claiming = Some((ep.clone(), sdp));
        self.node_out.push_back(NodeOut::Claim {
            call: call_id.clone(),
            endpoint: ep.clone(),
        });
        Ok(())
    }

    /// The answer to a claim this core asked for.
    pub fn handle_claim(
        &mut self,
        now: Instant,
        call_id: &CallId,
        ep: &EndpointId,
        result: Result<bool, NetFailure>,
    ) {
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let sdp = match call.net.claiming.take() {
            Some((claimer, sdp)) if claimer == *ep => sdp,
            other => {
                call.net.claiming = other;
                return;
            }
        };
        let ringing = match &call.phase {
            Phase::Ringing { ringing } if ringing.contains(ep) => ringing.clone(),
            // Answered or ended meanwhile: the claim is moot.
            _ => return,
        };
        match result {
            Err(_) => self.push(
                ep.clone(),
                ServerMsg::Error {
                    code: ErrorCode::NetworkUnavailable,
                    message: "the answer could not be claimed: the network is unavailable".into(),
                    in_reply_to: Some("accept".into()),
                },
            ),
            Ok(false) => {
                if let Some(Call {
                    phase: Phase::Ringing { ringing },
                    ..
                }) = self.calls.get_mut(call_id)
                {
                    ringing.remove(ep);
                }
                self.push(
                    ep.clone(),
                    ServerMsg::AnsweredElsewhere {
                        call_id: call_id.clone(),
                    },
                );
            }
            Ok(true) => match call.net.caller_node.clone() {
                // Anchor: stop the other nodes ringing and answer here.
                None => {
                    let nodes: Vec<String> = std::mem::take(&mut call.net.ringing_nodes)
                        .into_keys()
                        .collect();
                    for node in nodes {
                        self.send_node(
                            node,
                            NodeMsg::Answered {
                                call: call_id.clone(),
                            },
                        );
                    }
                    self.answer(now, ep, call_id, ringing, sdp);
                }
                // Mirror: tell the anchor; our other endpoints stop ringing.
                Some(anchor) => {
                    call.phase = Phase::Active {
                        callee_ep: ep.clone(),
                        session: None,
                    };
                    let (callee, caller) = (call.callee.clone(), call.caller.clone());
                    call.net.answer_sdp = sdp.clone();
                    self.send_node(
                        anchor,
                        NodeMsg::Answer {
                            call: call_id.clone(),
                            endpoint: ep.clone(),
                            sdp,
                        },
                    );
                    for r in ringing.iter().filter(|r| *r != ep) {
                        self.push(
                            r.clone(),
                            ServerMsg::AnsweredElsewhere {
                                call_id: call_id.clone(),
                            },
                        );
                    }
                    let mut except: Vec<EndpointId> = ringing.into_iter().collect();
                    except.push(ep.clone());
                    self.notice_others(&callee, &except, call_id, NoticeState::Answered, &caller);
                }
            },
        }
    }

    /// The answer of node `to` to `msg` (sent by this core).
    pub fn handle_node_reply(
        &mut self,
        to: &str,
        msg: &NodeMsg,
        result: Result<NodeReply, NetFailure>,
    ) {
        let call_id = msg.call().clone();
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        match (msg, &result) {
            (NodeMsg::Ring { .. }, Ok(NodeReply::Ok)) => {
                if let Some(confirmed) = call.net.ringing_nodes.get_mut(to) {
                    *confirmed = true;
                }
                if !call.net.announced {
                    call.net.announced = true;
                    let msg = ServerMsg::Ringing {
                        call_id: call_id.clone(),
                        to: call.callee.clone(),
                        client_ref: call.net.client_ref.clone(),
                    };
                    let caller_ep = call.caller_ep.clone();
                    self.push(caller_ep, msg);
                }
            }
            (NodeMsg::Ring { .. }, _) => {
                call.net.ringing_nodes.remove(to);
                match &result {
                    Ok(NodeReply::Refused { why: Refusal::Busy }) => call.net.refused_busy = true,
                    Err(_) => call.net.unreachable = true,
                    _ => {}
                }
                self.ring_gone(&call_id);
            }
            (NodeMsg::Answer { .. }, Err(_) | Ok(NodeReply::Refused { .. })) => {
                // The anchor never heard the answer: the call cannot go on here.
                self.end_call(&call_id, EndReason::Unavailable);
            }
            (
                NodeMsg::MediaSetup { .. } | NodeMsg::TrunkSetup { .. },
                Err(_) | Ok(NodeReply::Refused { .. }),
            ) => {
                self.end_call(&call_id, EndReason::PeerDisconnected);
            }
            (NodeMsg::Resume { .. }, Ok(NodeReply::Ok)) => {}
            (NodeMsg::Resume { .. }, _) => self.resume_refused(&call_id, to),
            _ => {}
        }
    }

    /// A node stopped ringing for the call: when nothing rings any more, the call ends
    /// (or, if the caller never heard `ringing`, is answered `busy`/`unavailable`).
    pub(super) fn ring_gone(&mut self, call_id: &CallId) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let Phase::Ringing { ringing } = &call.phase else {
            return;
        };
        if !ringing.is_empty() || !call.net.ringing_nodes.is_empty() {
            return;
        }
        if call.net.announced {
            self.end_call(call_id, EndReason::Unavailable);
            return;
        }
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        for account in [&call.caller, &call.callee] {
            if self.busy.get(account) == Some(call_id) {
                self.busy.remove(account);
            }
        }
        let (to, client_ref) = (call.callee, call.net.client_ref);
        let msg = if call.net.refused_busy {
            ServerMsg::Busy { to, client_ref }
        } else if call.net.unreachable {
            ServerMsg::Error {
                code: ErrorCode::NetworkUnavailable,
                message: "the callee's supernode could not be reached".into(),
                in_reply_to: Some("invite".into()),
            }
        } else {
            ServerMsg::Unavailable { to, client_ref }
        };
        self.push(call.caller_ep, msg);
    }

    /// Tells the other nodes of a call that it ended here (not the node whose `end` is
    /// being handled).
    pub(super) fn end_remote(&mut self, call_id: &CallId, net: &CallNet, reason: EndReason) {
        let mut nodes: BTreeSet<String> = net.ringing_nodes.keys().cloned().collect();
        nodes.extend(net.callee_node.iter().cloned());
        nodes.extend(net.caller_node.iter().cloned());
        if let Some(from) = &self.ending_from {
            nodes.remove(from);
        }
        for node in nodes {
            self.send_node(
                node,
                NodeMsg::End {
                    call: call_id.clone(),
                    reason,
                },
            );
        }
    }

    /// A message from node `from`; the answer goes back to it.
    pub fn handle_node_msg(&mut self, now: Instant, from: &str, msg: NodeMsg) -> NodeReply {
        let ok = NodeReply::Ok;
        let unknown = NodeReply::Refused {
            why: Refusal::UnknownCall,
        };
        match msg {
            NodeMsg::Ring {
                call,
                caller,
                caller_endpoint,
                partner,
                callee,
                media,
                sdp,
            } => {
                let tabs = self.local_endpoints(&callee);
                if tabs.is_empty() || self.partner_of_account(&callee) != Some(partner) {
                    return NodeReply::Refused {
                        why: Refusal::Unavailable,
                    };
                }
                match self.call_of(&callee) {
                    Some(c) if c == call => return ok,
                    Some(_) => {
                        return NodeReply::Refused { why: Refusal::Busy };
                    }
                    None => {}
                }
                for t in &tabs {
                    self.push(
                        t.clone(),
                        ServerMsg::IncomingCall {
                            call_id: call.clone(),
                            from: caller.clone(),
                            media,
                            sdp: sdp.clone(),
                        },
                    );
                }
                self.busy.insert(callee.clone(), call.clone());
                self.calls.insert(
                    call,
                    Call {
                        caller,
                        caller_ep: caller_endpoint,
                        callee,
                        media,
                        sdp,
                        // The caller's node answers a browser caller's offer.
                        caller_offer: None,
                        deadline: now + self.cfg.ring_timeout,
                        phase: Phase::Ringing { ringing: tabs },
                        net: CallNet {
                            caller_node: Some(from.to_owned()),
                            ..CallNet::default()
                        },
                    },
                );
                ok
            }
            NodeMsg::Answer {
                call: call_id,
                endpoint,
                sdp,
            } => {
                let Some(call) = self.calls.get_mut(&call_id) else {
                    return unknown;
                };
                let Phase::Ringing { ringing } = &call.phase else {
                    return unknown;
                };
                if call.net.caller_node.is_some() || !call.net.ringing_nodes.contains_key(from) {
                    return unknown;
                }
                let ringing = ringing.clone();
                call.net.ringing_nodes.remove(from);
                call.net.callee_node = Some(from.to_owned());
                let others: Vec<String> = std::mem::take(&mut call.net.ringing_nodes)
                    .into_keys()
                    .collect();
                for node in others {
                    self.send_node(
                        node,
                        NodeMsg::Answered {
                            call: call_id.clone(),
                        },
                    );
                }
                self.answer(now, &endpoint, &call_id, ringing, sdp);
                ok
            }
            NodeMsg::MediaSetup { call: call_id, leg } => {
                match self.calls.get(&call_id).map(|c| &c.phase) {
                    Some(Phase::Active { callee_ep, .. }) => {
                        let to = callee_ep.clone();
                        self.push(to, ServerMsg::Media { call_id, leg });
                        ok
                    }
                    _ => unknown,
                }
            }
            NodeMsg::TrunkSetup {
                call: call_id,
                trunk,
            } => {
                self.resumed_by(&call_id, from);
                if self.handle_trunk_setup(&call_id, trunk) {
                    ok
                } else {
                    unknown
                }
            }
            NodeMsg::Answered { call: call_id } => {
                let Some(call) = self.calls.get(&call_id) else {
                    return ok;
                };
                let Phase::Ringing { ringing } = &call.phase else {
                    return ok;
                };
                let ringing = ringing.clone();
                let callee = call.callee.clone();
                self.remember_elsewhere(&call_id, &callee);
                if let Some(call) = self.calls.remove(&call_id) {
                    for account in [&call.caller, &call.callee] {
                        if self.busy.get(account) == Some(&call_id) {
                            self.busy.remove(account);
                        }
                    }
                }
                for r in ringing {
                    self.push(
                        r,
                        ServerMsg::AnsweredElsewhere {
                            call_id: call_id.clone(),
                        },
                    );
                }
                ok
            }
            NodeMsg::End {
                call: call_id,
                reason,
            } => {
                let Some(call) = self.calls.get_mut(&call_id) else {
                    return unknown;
                };
                let net = &call.net;
                if !(net.caller_node.as_deref() == Some(from)
                    || net.callee_node.as_deref() == Some(from)
                    || net.ringing_nodes.contains_key(from)
                    || net
                        .resuming
                        .as_ref()
                        .is_some_and(|(nodes, _)| nodes.contains(from)))
                {
                    // Not (or no longer) a node of this call: the call moved away from it
                    // (a resume elsewhere), and what it says is stale.
                    tracing::debug!(call = %call_id, from, "end from a node the call left: ignored");
                    return ok;
                }
                let only_rings = call.net.ringing_nodes.contains_key(from)
                    && call.net.callee_node.as_deref() != Some(from);
                if only_rings && reason != EndReason::Rejected {
                    // That node stopped ringing (its endpoints left, or its ring timed out).
                    call.net.ringing_nodes.remove(from);
                    self.ring_gone(&call_id);
                    return ok;
                }
                self.ending_from = Some(from.to_owned());
                self.end_call(&call_id, reason);
                self.ending_from = None;
                ok
            }
            NodeMsg::Resume {
                call,
                callee,
                endpoint,
            } => self.handle_resume(from, &call, &callee, endpoint),
            NodeMsg::Negotiate {
                call: call_id,
                negotiation,
            } => {
                let Some(call) = self.calls.get(&call_id) else {
                    return unknown;
                };
                let Phase::Active { callee_ep, .. } = &call.phase else {
                    return unknown;
                };
                let to = if call.net.caller_node.is_some() {
                    callee_ep.clone()
                } else {
                    call.caller_ep.clone()
                };
                self.push(
                    to,
                    ServerMsg::Negotiate {
                        call_id,
                        negotiation,
                    },
                );
                ok
            }
            _ => NodeReply::Refused {
                why: Refusal::UnknownCall,
            },
        }
    }
}
