//! The hub: the shared [`CallCore`] of a supernode, the outbound queues of its sockets, and
//! the execution of the core's relay operations.
//!
//! Connection tasks call into the hub; the hub runs the core under a short lock (no
//! `.await` and no relay call inside), delivers the core's messages to the endpoints' bounded
//! queues, and — after the lock is released — submits the core's relay operations to the
//! relay ([`RelayAccess::submit`], which never blocks). One tokio task per batch awaits the
//! relay's answer and feeds the results back into the core under the lock. A slow or failed
//! relay therefore holds up only the call it serves. An endpoint whose queue is full is shed
//! (its queue is closed; its task closes the socket).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use supernode_proto::relay_ops::{RelayOp, RelayOpError, RelayResult};
use tokio::sync::mpsc;

use crate::calls::{CallConfig, CallCore, CallError, NodeOut, SpeechEvent};
use crate::config::SignalingConfig;
use crate::directory::Directory;
use crate::ids::{AccountId, EndpointId, PartnerId, RelaySessionId};
use crate::network_access::{NetFailure, NetworkAccess};
use crate::protocol::{ClientKind, ClientMsg, ErrorCode, ServerMsg};
use crate::relay_access::RelayAccess;
use supernode_proto::network::{NodeMsg, NodeReply};

/// Capacity of one endpoint's outbound queue.
pub const QUEUE: usize = 256;

struct Inner {
    core: CallCore,
    /// Outbound queues; an entry is removed when the endpoint is shed.
    senders: HashMap<EndpointId, (AccountId, mpsc::Sender<ServerMsg>)>,
}

/// Shared call state of one supernode.
pub struct Hub {
    inner: Mutex<Inner>,
    relay: Option<Arc<dyn RelayAccess>>,
    /// The network of supernodes, when this node is part of one.
    network: OnceLock<Arc<dyn NetworkAccess>>,
}

impl Hub {
    /// A hub with an empty core that reads and records endpoints in `directory`.
    pub fn new(
        cfg: &SignalingConfig,
        relay: Option<Arc<dyn RelayAccess>>,
        directory: Arc<dyn Directory>,
    ) -> Arc<Self> {
        let core = CallCore::new(
            CallConfig {
                ring_timeout: cfg.ring_timeout,
                relay: relay.is_some(),
                node_id: cfg.node_id.clone(),
                max_participants: cfg.max_participants,
                conference_simulcast: cfg.conference_simulcast,
                failover_grace: cfg.failover_grace,
                ..CallConfig::default()
            },
            directory,
        );
        Arc::new(Self {
            inner: Mutex::new(Inner {
                core,
                senders: HashMap::new(),
            }),
            relay,
            network: OnceLock::new(),
        })
    }

    /// Makes this hub part of a network: calls ring endpoints on other nodes too (the
    /// directory lists them), through `network`. Call once, before clients attach; later
    /// calls are ignored.
    pub fn attach_network(self: &Arc<Self>, network: Arc<dyn NetworkAccess>) {
        if self.network.set(network).is_ok() {
            self.lock().core.enable_network();
        }
    }

    /// A message from another node of the network (each message once: the network layer
    /// drops repeats); the answer goes back to it.
    pub fn handle_node_msg(self: &Arc<Self>, from: &str, msg: NodeMsg) -> NodeReply {
        self.step(|core| core.handle_node_msg(Instant::now(), from, msg))
    }

    /// Node `node` of the network is dead (missed heartbeats): see
    /// [`CallCore::node_down`] (failover).
    pub fn node_down(self: &Arc<Self>, node: &str) {
        self.step(|core| core.node_down(Instant::now(), node));
    }

    /// `drain --migrate`: tells this node's endpoints to move to `nodes` (see
    /// [`CallCore::migrate`]); returns how many were told now.
    pub fn migrate(self: &Arc<Self>, nodes: Vec<String>) -> usize {
        self.step(|core| core.migrate(Instant::now(), nodes))
    }

    /// The directory says the records of `account` changed on some node: see
    /// [`CallCore::presence_changed`].
    pub fn presence_changed(self: &Arc<Self>, account: &AccountId) {
        self.step(|core| core.presence_changed(account));
    }

    /// Reads the presence of every watched account again (see
    /// [`CallCore::presence_resync`]).
    pub fn presence_resync(self: &Arc<Self>) {
        self.step(|core| core.presence_resync());
    }

    /// Node `node` is live again: see [`CallCore::node_up`].
    pub fn node_up(self: &Arc<Self>, node: &str) {
        self.step(|core| core.node_up(node));
    }

    /// Starts the timer task (ring and relay timeouts; stops when the hub is dropped).
    pub fn start_timer(hub: &Arc<Self>) {
        let weak = Arc::downgrade(hub);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let Some(hub) = weak.upgrade() else { break };
                let now = Instant::now();
                hub.step(|core| {
                    if core.poll_timeout().is_some_and(|t| t <= now) {
                        core.handle_timeout(now);
                    }
                });
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core under the lock, delivers its messages, then (lock released)
    /// submits its relay operations.
    fn step<R>(self: &Arc<Self>, f: impl FnOnce(&mut CallCore) -> R) -> R {
        let mut batches = Vec::new();
        let mut node_outs = Vec::new();
        let network = self.network.get();
        let r = {
            let mut inner = self.lock();
            if let Some(net) = network {
                inner.core.set_network_up(net.available());
            }
            let r = f(&mut inner.core);
            flush(&mut inner);
            while let Some(b) = inner.core.poll_relay() {
                batches.push(b);
            }
            while let Some(o) = inner.core.poll_node() {
                node_outs.push(o);
            }
            r
        };
        for b in batches {
            self.execute(b);
        }
        if let Some(net) = network {
            for o in node_outs {
                self.execute_node(net, o);
            }
        }
        r
    }

    /// Hands one cross-node output to the network and spawns the task that feeds its
    /// answer back.
    fn execute_node(self: &Arc<Self>, net: &Arc<dyn NetworkAccess>, out: NodeOut) {
        let hub = Arc::downgrade(self);
        match out {
            NodeOut::Send { to, msg } => {
                let reply = net.send(&to, msg.clone());
                tokio::spawn(async move {
                    let result = reply.await.unwrap_or(Err(NetFailure::Unreachable));
                    if let Err(e) = &result {
                        tracing::debug!(node = %to, error = %e, "cross-node message failed");
                    }
                    if let Some(hub) = hub.upgrade() {
                        hub.step(|core| core.handle_node_reply(&to, &msg, result));
                    }
                });
            }
            NodeOut::Claim { call, endpoint } => {
                let reply = net.claim(&call, &endpoint);
                tokio::spawn(async move {
                    let result = reply.await.unwrap_or(Err(NetFailure::Unreachable));
                    if let Some(hub) = hub.upgrade() {
                        hub.step(|core| {
                            core.handle_claim(Instant::now(), &call, &endpoint, result)
                        });
                    }
                });
            }
        }
    }

    /// Submits one batch and spawns the task that feeds its results back.
    fn execute(self: &Arc<Self>, batch: Vec<RelayOp>) {
        let Some(relay) = self.relay.clone() else {
            // A core without a relay emits nothing; answer defensively all the same.
            let results = batch
                .iter()
                .map(|op| op.failed(RelayOpError::Unavailable("no relay".into())))
                .collect();
            self.results(results);
            return;
        };
        let reply = relay.submit(batch.clone());
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            let results = match reply.await {
                Ok(r) => r,
                // The executor went away without answering: every operation failed.
                Err(_) => batch
                    .iter()
                    .map(|op| op.failed(RelayOpError::TimedOut))
                    .collect(),
            };
            if let Some(hub) = hub.upgrade() {
                hub.results(results);
            }
        });
    }

    fn results(self: &Arc<Self>, results: Vec<RelayResult>) {
        for r in &results {
            if let Err(e) = &r.outcome {
                tracing::warn!(op = %r.op, error = %e, "relay operation failed");
            }
        }
        self.step(|core| {
            for r in results {
                core.handle_relay_result(r);
            }
        });
    }

    /// Attaches a logged-in edge endpoint whose messages go to `tx`.
    pub fn attach(
        self: &Arc<Self>,
        account: AccountId,
        partner: PartnerId,
        tx: mpsc::Sender<ServerMsg>,
    ) -> EndpointId {
        self.attach_as(account, partner, ClientKind::Edge, tx)
    }

    /// Attaches a logged-in endpoint of kind `client` whose messages go to `tx`.
    pub fn attach_as(
        self: &Arc<Self>,
        account: AccountId,
        partner: PartnerId,
        client: ClientKind,
        tx: mpsc::Sender<ServerMsg>,
    ) -> EndpointId {
        let mut inner = self.lock();
        let ep = inner.core.attach_as(account.clone(), partner, client);
        inner.senders.insert(ep.clone(), (account, tx));
        flush(&mut inner);
        ep
    }

    /// Detaches an endpoint (socket closed).
    pub fn detach(self: &Arc<Self>, ep: &EndpointId) {
        self.lock().senders.remove(ep);
        self.step(|core| core.detach(ep));
    }

    /// Sheds every endpoint of a deleted account: each is told `account_unavailable`, then
    /// its queue closes and its socket follows.
    pub fn kick_account(&self, account: &AccountId) {
        let mut inner = self.lock();
        inner.senders.retain(|_, (a, tx)| {
            if a != account {
                return true;
            }
            let _ = tx.try_send(ServerMsg::Error {
                code: ErrorCode::AccountUnavailable,
                message: "the account was deleted".into(),
                in_reply_to: None,
            });
            false
        });
    }

    /// Handles one call message of a logged-in endpoint.
    pub fn handle(
        self: &Arc<Self>,
        ep: &EndpointId,
        msg: ClientMsg,
        now: Instant,
    ) -> Result<(), CallError> {
        if matches!(
            msg,
            ClientMsg::Invite { .. } | ClientMsg::ConferenceCreate { .. }
        ) && self.relay.as_ref().is_some_and(|r| !r.accepting_calls())
        {
            return Err(CallError {
                code: ErrorCode::Draining,
                message: "this supernode is shutting down and takes no new calls".into(),
            });
        }
        self.step(|core| match msg {
            ClientMsg::SubscribePresence { account_ids } => {
                core.subscribe_presence(ep, account_ids)
            }
            ClientMsg::Invite {
                to,
                media,
                client_ref,
                sdp,
            } => core.invite(now, ep, to, media, client_ref, sdp),
            ClientMsg::Accept { call_id, sdp } => core.accept(now, ep, &call_id, sdp),
            ClientMsg::Reject { call_id } => core.reject(ep, &call_id),
            ClientMsg::Cancel { call_id } => core.cancel(ep, &call_id),
            ClientMsg::Hangup { call_id } => core.hangup(ep, &call_id),
            ClientMsg::Negotiate {
                call_id,
                negotiation,
            } => core.negotiate(ep, &call_id, negotiation),
            ClientMsg::ConferenceCreate { client_ref, sdp } => {
                core.conference_create(ep, client_ref, sdp.as_deref())
            }
            ClientMsg::ConferenceInvite { conference_id, to } => {
                core.conference_invite(ep, &conference_id, to)
            }
            ClientMsg::ConferenceJoin { conference_id, sdp } => {
                core.conference_join(ep, &conference_id, sdp.as_deref())
            }
            ClientMsg::ConferenceLeave { conference_id } => {
                core.conference_leave(ep, &conference_id)
            }
            ClientMsg::Resume { call_id, peer } => core.resume(now, ep, &call_id, peer),
            ClientMsg::ConferenceStreams {
                conference_id,
                audio_ssrc,
                video_ssrc,
            } => core.conference_streams(ep, &conference_id, audio_ssrc, video_ssrc),
            // Login and ping are the connection's business; newer types are not ours.
            _ => Ok(()),
        })
    }

    /// What the mixer of the conference on relay session `session` said about voices
    /// (see [`CallCore::conference_speech`]): rosters with who speaks, rate-limited.
    pub fn conference_speech(self: &Arc<Self>, session: &RelaySessionId, ev: SpeechEvent) {
        let now = Instant::now();
        self.step(|core| core.conference_speech(now, session, ev));
    }

    /// Attached endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.lock().core.endpoint_count()
    }

    /// Live calls.
    pub fn call_count(&self) -> usize {
        self.lock().core.call_count()
    }

    /// Live conferences.
    pub fn conference_count(&self) -> usize {
        self.lock().core.conference_count()
    }
}

fn flush(inner: &mut Inner) {
    while let Some(out) = inner.core.poll_output() {
        let full = match inner.senders.get(&out.to) {
            Some((_, tx)) => tx.try_send(out.msg).is_err(),
            None => false,
        };
        if full {
            // Too slow (or gone): dropping the sender closes its queue.
            inner.senders.remove(&out.to);
        }
    }
}
