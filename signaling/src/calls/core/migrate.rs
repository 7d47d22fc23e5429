//! `supernode drain --migrate`: this node's endpoints move to other nodes the failover way.
//!
//! [`CallCore::migrate`] tells every endpoint that can move `migrate` (with the nodes to go
//! to): an endpoint in no call, or in a trunked call (its other end on another node). Its
//! client logs in again elsewhere and, in a call, sends `resume` there, exactly as after
//! its node died; the node holding the call's other end takes it up (the anchor re-trunks
//! to the new node, or the callee's node re-anchors the call, see `failover`) and tells this
//! node `end`, which releases its side quietly. Until then the call is not ended when the
//! moving endpoint's WebSocket closes: it waits up to `failover_grace` (then ends, telling
//! the far node, which is alive).
//!
//! A call with both ends on this node cannot move that way (no other node holds an end of
//! it), nor can a conference hosted here, nor a browser's call (a browser does not resume;
//! it calls again): their endpoints are told `migrate` when the call ends, and meanwhile
//! they run on until `drain_seconds`. (A member of a conference is told when it next ends
//! a 1:1 call; leaving a conference does not tell it yet.)

use std::time::Instant;

use super::{CallCore, Phase};
use crate::ids::{AccountId, EndpointId};
use crate::protocol::ServerMsg;

/// The migration state of a node being drained.
#[derive(Debug, Default)]
pub(super) struct Migration {
    /// Whether a migration was asked for (endpoints that become free are told then).
    pub(super) on: bool,
    /// Where the endpoints should go (placement order).
    pub(super) nodes: Vec<String>,
    /// Until when a trunked call of an endpoint told to move waits for its resume elsewhere
    /// after the endpoint's WebSocket closed: `failover_grace` after the migration began.
    pub(super) until: Option<Instant>,
    /// Endpoints told to move.
    pub(super) told: std::collections::HashSet<EndpointId>,
}

impl CallCore {
    /// Asks every endpoint that can move to move to one of `nodes` (a drain with
    /// `--migrate`); the others are asked as soon as their call or conference ends. Returns
    /// how many were asked now.
    pub fn migrate(&mut self, now: Instant, nodes: Vec<String>) -> usize {
        self.migration.on = true;
        self.migration.nodes = nodes;
        self.migration.until = Some(now + self.cfg.failover_grace);
        let eps: Vec<EndpointId> = self.endpoints.keys().cloned().collect();
        let mut told = 0;
        for ep in eps {
            if self.may_migrate(&ep) && self.tell_migrate(&ep) {
                told += 1;
            }
        }
        told
    }

    /// Whether `ep` can move now: it is in no conference and in no call held on this node
    /// alone.
    fn may_migrate(&self, ep: &EndpointId) -> bool {
        let Some(account) = self.endpoints.get(ep).map(|e| &e.account) else {
            return false;
        };
        if self.conf.of(account).is_some() {
            return false;
        }
        let Some(call) = self.busy.get(account).and_then(|id| self.calls.get(id)) else {
            return true;
        };
        let ours = call.caller_ep == *ep
            || matches!(&call.phase, Phase::Active { callee_ep, .. } | Phase::Connecting { callee_ep, .. } if callee_ep == ep);
        // A browser cannot resume a call (it calls again): it moves once its call ended.
        let trunked = call.net.caller_node.is_some() || call.net.callee_node.is_some();
        !ours || (trunked && !self.is_browser(ep))
    }

    /// Tells `ep` to move (once). `false` when told already.
    fn tell_migrate(&mut self, ep: &EndpointId) -> bool {
        if !self.migration.told.insert(ep.clone()) {
            return false;
        }
        let nodes = self.migration.nodes.clone();
        self.push(ep.clone(), ServerMsg::Migrate { nodes });
        true
    }

    /// After a call or conference ended during a migration: tells its endpoints here that
    /// can move now.
    pub(super) fn migrate_freed(&mut self, parties: &[EndpointId]) {
        if !self.migration.on {
            return;
        }
        for ep in parties {
            if self.endpoints.contains_key(ep) && self.may_migrate(ep) {
                self.tell_migrate(ep);
            }
        }
    }

    /// `ep` of `account` (told to move) disconnected: its trunked call, if any, waits for
    /// the resume elsewhere instead of ending. `true` when the call was kept.
    pub(super) fn keep_for_resume(&mut self, ep: &EndpointId, account: &AccountId) -> bool {
        let (true, Some(until)) = (self.migration.told.remove(ep), self.migration.until) else {
            return false;
        };
        let Some(call) = self.busy.get(account).and_then(|id| self.calls.get_mut(id)) else {
            return false;
        };
        let Phase::Active { callee_ep, .. } = &call.phase else {
            return false;
        };
        let ours = call.caller_ep == *ep || callee_ep == ep;
        let trunked = call.net.caller_node.is_some() || call.net.callee_node.is_some();
        if !(ours && trunked) {
            return false;
        }
        call.net.orphaned_until = Some(until);
        call.net.migrated = true;
        true
    }
}
