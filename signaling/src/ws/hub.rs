//! The hub: the shared [`CallCore`] of a supernode and the outbound queues of its sockets.
//!
//! Connection tasks call into the hub; the hub runs the core under a short lock (no
//! `.await` inside), then delivers the core's outputs to the endpoints' bounded queues. An
//! endpoint whose queue is full is shed (its queue is closed; its task closes the socket).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::calls::{CallConfig, CallCore, CallError};
use crate::config::SignalingConfig;
use crate::directory::{Directory, EndpointRecord};
use crate::ids::{AccountId, EndpointId, PartnerId};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};
use crate::relay_access::RelayAccess;

/// Capacity of one endpoint's outbound queue.
pub const QUEUE: usize = 256;

struct Inner {
    core: CallCore,
    /// Outbound queues; an entry is removed when the endpoint is shed.
    senders: HashMap<EndpointId, (AccountId, mpsc::Sender<ServerMsg>)>,
    /// Every attached endpoint's account, until it detaches (shed or not).
    attached: HashMap<EndpointId, AccountId>,
}

/// Shared call state of one supernode.
pub struct Hub {
    inner: Mutex<Inner>,
    relay: Option<Arc<dyn RelayAccess>>,
    directory: Arc<dyn Directory>,
    node_id: String,
}

impl Hub {
    /// A hub with an empty core.
    pub fn new(
        cfg: &SignalingConfig,
        relay: Option<Arc<dyn RelayAccess>>,
        directory: Arc<dyn Directory>,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                core: CallCore::new(CallConfig {
                    ring_timeout: cfg.ring_timeout,
                    ..CallConfig::default()
                }),
                senders: HashMap::new(),
                attached: HashMap::new(),
            }),
            relay,
            directory,
            node_id: cfg.node_id.clone(),
        })
    }

    /// Starts the ring-timeout task (stops when the hub is dropped).
    pub fn start_timer(hub: &Arc<Self>) {
        let weak = Arc::downgrade(hub);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Some(hub) = weak.upgrade() else { break };
                let mut inner = hub.lock();
                if inner
                    .core
                    .poll_timeout()
                    .is_some_and(|t| t <= Instant::now())
                {
                    inner
                        .core
                        .handle_timeout(Instant::now(), hub.relay.as_deref());
                    flush(&mut inner);
                }
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Attaches a logged-in endpoint whose messages go to `tx`.
    pub fn attach(
        &self,
        account: AccountId,
        partner: PartnerId,
        tx: mpsc::Sender<ServerMsg>,
    ) -> EndpointId {
        let mut inner = self.lock();
        let ep = inner.core.attach(account.clone(), partner);
        inner.senders.insert(ep.clone(), (account.clone(), tx));
        inner.attached.insert(ep.clone(), account.clone());
        self.directory.attach(EndpointRecord {
            account,
            endpoint: ep.clone(),
            supernode: self.node_id.clone(),
        });
        flush(&mut inner);
        ep
    }

    /// Detaches an endpoint (socket closed).
    pub fn detach(&self, ep: &EndpointId) {
        let mut inner = self.lock();
        inner.senders.remove(ep);
        if let Some(account) = inner.attached.remove(ep) {
            self.directory.detach(&self.node_id, &account, ep);
        }
        inner.core.detach(ep, self.relay.as_deref());
        flush(&mut inner);
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
                code: crate::protocol::ErrorCode::AccountUnavailable,
                message: "the account was deleted".into(),
                in_reply_to: None,
            });
            false
        });
    }

    /// Handles one call message of a logged-in endpoint.
    pub fn handle(&self, ep: &EndpointId, msg: ClientMsg, now: Instant) -> Result<(), CallError> {
        let relay = self.relay.as_deref();
        let mut inner = self.lock();
        let core = &mut inner.core;
        let r = match msg {
            ClientMsg::SubscribePresence { account_ids } => {
                core.subscribe_presence(ep, account_ids)
            }
            ClientMsg::Invite { .. } if relay.is_some_and(|r| !r.accepting_calls()) => {
                Err(CallError {
                    code: ErrorCode::Draining,
                    message: "this supernode is shutting down and takes no new calls".into(),
                })
            }
            ClientMsg::Invite {
                to,
                media,
                client_ref,
                sdp,
            } => core.invite(now, ep, to, media, client_ref, sdp),
            ClientMsg::Accept { call_id, sdp } => core.accept(ep, &call_id, sdp, relay),
            ClientMsg::Reject { call_id } => core.reject(ep, &call_id, relay),
            ClientMsg::Cancel { call_id } => core.cancel(ep, &call_id, relay),
            ClientMsg::Hangup { call_id } => core.hangup(ep, &call_id, relay),
            ClientMsg::Negotiate {
                call_id,
                negotiation,
            } => core.negotiate(ep, &call_id, negotiation),
            // Login and ping are the connection's business.
            ClientMsg::Login { .. } | ClientMsg::Ping { .. } => Ok(()),
            // A message type newer than this hub.
            _ => Ok(()),
        };
        flush(&mut inner);
        r
    }

    /// Attached endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.lock().core.endpoint_count()
    }

    /// Live calls.
    pub fn call_count(&self) -> usize {
        self.lock().core.call_count()
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
