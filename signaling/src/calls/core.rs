//! The conference state machine.

mod conference;
mod failover;
mod migrate;
mod ops;
mod presence;
mod remote;
mod trunk;

pub use conference::{SPEECH_ROSTER_EVERY, SpeechEvent};
pub use remote::NodeOut;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use supernode_proto::SrtpProfile;
use supernode_proto::relay_ops::{
    CreateSession, RelayOp, RelayOutcome, RelayResult, Release, TransportGrant,
};

use super::browser::CheckedOffer;
use crate::directory::{Directory, EndpointRecord};
use crate::ids::{
    AccountId, CallId, EndpointId, OperationId, PartnerId, RelaySessionId, TransportId,
};
use crate::protocol::{
    ClientKind, EndReason, ErrorCode, LegInfo, MediaKind, Negotiation, NoticeState, ServerMsg,
};
use crate::sdp::MediaPolicy;

/// Tunables of the conference core.
#[derive(Clone, Debug)]
pub struct CallConfig {
    /// How long an invite rings before it ends with `no_answer`.
    pub ring_timeout: Duration,
    /// Most accounts one endpoint may watch for presence.
    pub max_presence_subscriptions: usize,
    /// Whether answered calls get relay transports (a core without a relay answers calls
    /// at once, with no `media` messages).
    pub relay: bool,
    /// How long an answered call waits for its relay transports before it ends with
    /// `relay_failure`.
    pub relay_timeout: Duration,
    /// The SRTP profile of client transports.
    pub srtp: SrtpProfile,
    /// This supernode's id in the directory.
    pub node_id: String,
    /// What browsers are served (the H.264 profile delivered, transport-cc, ...).
    pub browser_media: MediaPolicy,
    /// `relay_public_ip`: announced first in browsers' SDP answers.
    pub public_ip: Option<IpAddr>,
    /// Whether this supernode is part of a network: it then rings endpoints of other nodes
    /// (the directory lists them) through [`CallCore::poll_node`].
    pub network: bool,
    /// Most participants of a conference (joined and joining); a join past it is
    /// `conference_full`.
    pub max_participants: usize,
    /// Whether browsers in conferences may send simulcast (answered with
    /// [`MediaPolicy::simulcast`]).
    pub conference_simulcast: bool,
    /// Failover: how long a trunked call anchored here waits for its callee to resume on
    /// another node after the callee's node died.
    pub failover_grace: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(60),
            max_presence_subscriptions: 1000,
            relay: true,
            relay_timeout: Duration::from_secs(5),
            srtp: SrtpProfile::Aes128CmHmacSha1_80,
            node_id: "local".into(),
            // No MID extension: see `MediaPolicy::mid_extension`.
            browser_media: MediaPolicy {
                mid_extension: false,
                ..MediaPolicy::default()
            },
            public_ip: None,
            network: false,
            max_participants: 32,
            conference_simulcast: true,
            failover_grace: Duration::from_secs(10),
        }
    }
}

/// One message for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The endpoint to deliver to.
    pub to: EndpointId,
    /// The message.
    pub msg: ServerMsg,
}

/// Why the core refused an action (answered to the acting endpoint as an `error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct CallError {
    /// The code.
    pub code: ErrorCode,
    /// Detail.
    pub message: String,
}

fn err(code: ErrorCode, message: &str) -> CallError {
    CallError {
        code,
        message: message.to_owned(),
    }
}

/// `unknown_call` for a call the endpoint takes no part in (the same answer as for a call
/// that does not exist, so nothing leaks about other people's calls).
fn not_yours() -> CallError {
    err(ErrorCode::UnknownCall, "no such call for this endpoint")
}

/// Counters of the relay side of the core (for tests and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayBooks {
    /// Sessions asked for (`CreateSession` emitted).
    pub sessions_created: u64,
    /// Sessions released (`Release` emitted).
    pub sessions_released: u64,
    /// Failed operation results received.
    pub failed_results: u64,
    /// Results of operations the core did not ask for (or already had), dropped.
    pub unknown_results: u64,
    /// Calls ended `relay_failure` because the relay answered too late.
    pub timed_out: u64,
}

#[derive(Debug)]
struct Endpoint {
    account: AccountId,
    partner: PartnerId,
    kind: ClientKind,
    watching: BTreeSet<AccountId>,
}

/// The relay side of an answered call still being set up.
#[derive(Debug)]
struct Pending {
    session: RelaySessionId,
    caller_tr: TransportId,
    callee_tr: TransportId,
    grants: HashMap<TransportId, TransportGrant>,
    deadline: Instant,
    /// The answer's SDP, passed on in `accepted` (edge callees).
    sdp: Option<String>,
    /// A browser callee's offer, answered in its `media`.
    callee_offer: Option<Box<CheckedOffer>>,
    /// The callee's endpoints that rang and were told `answered_elsewhere` on accept.
    elsewhere: BTreeSet<EndpointId>,
}

#[derive(Debug)]
enum Phase {
    Ringing {
        ringing: BTreeSet<EndpointId>,
    },
    /// Accepted by `callee_ep`; waiting for the relay. The other endpoints still ring.
    Connecting {
        ringing: BTreeSet<EndpointId>,
        callee_ep: EndpointId,
        pending: Pending,
    },
    Active {
        callee_ep: EndpointId,
        session: Option<RelaySessionId>,
    },
}

#[derive(Debug)]
struct Call {
    caller: AccountId,
    caller_ep: EndpointId,
    callee: AccountId,
    media: MediaKind,
    /// An edge caller's SDP, passed on in `incoming_call`.
    sdp: Option<String>,
    /// A browser caller's offer, answered in its `media`.
    caller_offer: Option<CheckedOffer>,
    deadline: Instant,
    phase: Phase,
    /// The call's cross-node state (empty for a call within this node).
    net: remote::CallNet,
}

/// A relay session the core asked for, until it is released.
#[derive(Debug)]
struct SessionBook {
    /// The call using it; `None` once the call ended (then it is released as soon as no
    /// operation of it is outstanding).
    call: Option<CallId>,
    /// Operations of it whose results have not come back.
    outstanding: BTreeSet<OperationId>,
}

/// The sans-IO conference core of one supernode (a 1:1 call is a conference of two).
pub struct CallCore {
    cfg: CallConfig,
    directory: Arc<dyn Directory>,
    endpoints: BTreeMap<EndpointId, Endpoint>,
    /// The call each account takes part in.
    busy: HashMap<AccountId, CallId>,
    watchers: HashMap<AccountId, BTreeSet<EndpointId>>,
    calls: BTreeMap<CallId, Call>,
    sessions: HashMap<RelaySessionId, SessionBook>,
    /// Which session each outstanding operation belongs to.
    ops: HashMap<OperationId, RelaySessionId>,
    /// Release operations whose results have not come back.
    releases: BTreeSet<OperationId>,
    out: VecDeque<Outgoing>,
    relay_out: VecDeque<Vec<RelayOp>>,
    books: RelayBooks,
    /// Messages for other nodes and answer claims.
    node_out: VecDeque<remote::NodeOut>,
    /// Whether the network can be reached now (set by the hub).
    network_up: bool,
    /// The node whose `end` is being handled (not told back).
    ending_from: Option<String>,
    /// Calls this node rang for another node and that were answered elsewhere (the newest
    /// 1024): a late `accept` hears `answered_elsewhere`, not `unknown_call`.
    elsewhere: VecDeque<(CallId, AccountId)>,
    /// Conferences (group calls).
    conf: conference::Conferences,
    /// `drain --migrate`: endpoints told to move to other nodes.
    migration: migrate::Migration,
    /// Watched account → watchers' partner → the presence last told to them.
    presence_told: HashMap<AccountId, HashMap<PartnerId, bool>>,
}

impl std::fmt::Debug for CallCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCore")
            .field("endpoints", &self.endpoints.len())
            .field("calls", &self.calls.len())
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl CallCore {
    /// An empty core that reads (and records) endpoints in `directory`.
    pub fn new(cfg: CallConfig, directory: Arc<dyn Directory>) -> Self {
        Self {
            cfg,
            directory,
            endpoints: BTreeMap::new(),
            busy: HashMap::new(),
            watchers: HashMap::new(),
            calls: BTreeMap::new(),
            sessions: HashMap::new(),
            ops: HashMap::new(),
            releases: BTreeSet::new(),
            out: VecDeque::new(),
            relay_out: VecDeque::new(),
            books: RelayBooks::default(),
            node_out: VecDeque::new(),
            network_up: true,
            ending_from: None,
            elsewhere: VecDeque::new(),
            conf: conference::Conferences::default(),
            migration: migrate::Migration::default(),
            presence_told: HashMap::new(),
        }
    }

    /// The next message to deliver.
    pub fn poll_output(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// The next batch of relay operations to execute. Run a batch's operations in order;
    /// batches may run concurrently. Feed every result back with
    /// [`Self::handle_relay_result`].
    pub fn poll_relay(&mut self) -> Option<Vec<RelayOp>> {
        self.relay_out.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| match &c.phase {
                Phase::Ringing { .. } => Some(c.deadline),
                Phase::Connecting { pending, .. } => Some(pending.deadline),
                Phase::Active { .. } => None,
            })
            .chain(self.failover_timeout())
            .chain(self.speech_timeout())
            .min()
    }

    /// Number of live calls (ringing, connecting or answered).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Number of attached endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The relay sessions of answered calls (one per call with transports).
    pub fn active_sessions(&self) -> BTreeMap<CallId, RelaySessionId> {
        self.calls
            .iter()
            .filter_map(|(id, c)| match &c.phase {
                Phase::Active {
                    session: Some(s), ..
                } => Some((id.clone(), s.clone())),
                _ => None,
            })
            .collect()
    }

    /// Relay sessions asked for and not yet released.
    pub fn unreleased_sessions(&self) -> BTreeSet<RelaySessionId> {
        self.sessions.keys().cloned().collect()
    }

    /// Operations whose results have not come back (releases included).
    pub fn outstanding_ops(&self) -> usize {
        self.ops.len() + self.releases.len()
    }

    /// Counters of the relay side.
    pub fn relay_books(&self) -> &RelayBooks {
        &self.books
    }

    /// The call an account takes part in, if any.
    pub fn call_of(&self, account: &AccountId) -> Option<CallId> {
        self.busy.get(account).cloned()
    }

    /// The answering endpoint of a call, once answered (also while its transports are
    /// being set up).
    pub fn answerer(&self, call: &CallId) -> Option<EndpointId> {
        match &self.calls.get(call)?.phase {
            Phase::Active { callee_ep, .. } | Phase::Connecting { callee_ep, .. } => {
                Some(callee_ep.clone())
            }
            Phase::Ringing { .. } => None,
        }
    }

    fn push(&mut self, to: EndpointId, msg: ServerMsg) {
        self.out.push_back(Outgoing { to, msg });
    }

    /// This node's attached endpoints of `account`, read from the directory.
    fn local_endpoints(&self, account: &AccountId) -> BTreeSet<EndpointId> {
        self.directory
            .endpoints_of(account)
            .into_iter()
            .filter(|r| r.supernode == self.cfg.node_id && self.endpoints.contains_key(&r.endpoint))
            .map(|r| r.endpoint)
            .collect()
    }

    fn partner_of_account(&self, account: &AccountId) -> Option<PartnerId> {
        let ep = self.local_endpoints(account).into_iter().next()?;
        self.endpoints.get(&ep).map(|e| e.partner.clone())
    }

    /// An endpoint of `account` (of `partner`) logged in; returns its id (and records it in
    /// the directory). If the account is being called, the new endpoint rings too; if it is
    /// in a call, it gets a notice.
    pub fn attach(&mut self, account: AccountId, partner: PartnerId) -> EndpointId {
        self.attach_as(account, partner, ClientKind::Edge)
    }

    /// [`Self::attach`] for an endpoint of kind `kind` (a browser sends SDP offers with
    /// `invite` and `accept`, and gets SDP answers in `media`).
    pub fn attach_as(
        &mut self,
        account: AccountId,
        partner: PartnerId,
        kind: ClientKind,
    ) -> EndpointId {
        let ep = EndpointId::random();
        self.endpoints.insert(
            ep.clone(),
            Endpoint {
                account: account.clone(),
                partner: partner.clone(),
                kind,
                watching: BTreeSet::new(),
            },
        );
        self.directory.attach(EndpointRecord {
            account: account.clone(),
            endpoint: ep.clone(),
            supernode: self.cfg.node_id.clone(),
            partner: Some(partner.clone()),
        });
        self.refresh_presence(&account);
        let call_id = self.busy.get(&account).cloned();
        if let Some(call_id) = call_id
            && let Some(call) = self.calls.get_mut(&call_id)
        {
            let peer = if call.callee == account {
                call.caller.clone()
            } else {
                call.callee.clone()
            };
            let msg = match &mut call.phase {
                Phase::Ringing { ringing } | Phase::Connecting { ringing, .. }
                    if call.callee == account =>
                {
                    ringing.insert(ep.clone());
                    ServerMsg::IncomingCall {
                        call_id,
                        from: call.caller.clone(),
                        media: call.media,
                        sdp: call.sdp.clone(),
                    }
                }
                Phase::Ringing { .. } | Phase::Connecting { .. } => ServerMsg::CallNotice {
                    call_id,
                    state: NoticeState::Outgoing,
                    peer,
                },
                Phase::Active { .. } => ServerMsg::CallNotice {
                    call_id,
                    state: NoticeState::Answered,
                    peer,
                },
            };
            self.push(ep.clone(), msg);
        }
        ep
    }

    /// An endpoint disconnected: ends the call it takes part in (if any), stops it ringing,
    /// drops its subscriptions and its directory record.
    pub fn detach(&mut self, ep: &EndpointId) {
        let Some(endpoint) = self.endpoints.remove(ep) else {
            return;
        };
        self.directory
            .detach(&self.cfg.node_id, &endpoint.account, ep);
        for watched in &endpoint.watching {
            if let Some(w) = self.watchers.get_mut(watched) {
                w.remove(ep);
                if w.is_empty() {
                    self.watchers.remove(watched);
                    self.presence_told.remove(watched);
                }
            }
        }
        let account = endpoint.account;
        self.conference_detach(ep, &account);
        if self.keep_for_resume(ep, &account) {
            // Told to move (drain --migrate): its call waits for the resume elsewhere.
        } else if let Some(call_id) = self.busy.get(&account).cloned() {
            let action = match self.calls.get_mut(&call_id) {
                Some(call) if call.caller_ep == *ep => Some(match call.phase {
                    Phase::Ringing { .. } => EndReason::Cancelled,
                    Phase::Connecting { .. } | Phase::Active { .. } => EndReason::PeerDisconnected,
                }),
                Some(call) => match &mut call.phase {
                    Phase::Active { callee_ep, .. } | Phase::Connecting { callee_ep, .. }
                        if callee_ep == ep =>
                    {
                        Some(EndReason::PeerDisconnected)
                    }
                    Phase::Ringing { ringing } => {
                        ringing.remove(ep);
                        ringing.is_empty().then_some(EndReason::Unavailable)
                    }
                    Phase::Connecting { ringing, .. } => {
                        ringing.remove(ep);
                        None
                    }
                    Phase::Active { .. } => None,
                },
                None => None,
            };
            if let Some(reason) = action {
                self.end_call(&call_id, reason);
            }
        }
        self.refresh_presence(&account);
    }

    /// `subscribe_presence`: answers the current presence of each account at once, then on
    /// every change (endpoints here, and in a network on other live nodes: see
    /// [`Self::presence_changed`]). Accounts of another partner always read offline.
    pub fn subscribe_presence(
        &mut self,
        ep: &EndpointId,
        accounts: Vec<AccountId>,
    ) -> Result<(), CallError> {
        let Some(endpoint) = self.endpoints.get(ep) else {
            return Err(err(ErrorCode::NotLoggedIn, "unknown endpoint"));
        };
        let mut all: BTreeSet<AccountId> = endpoint.watching.clone();
        all.extend(accounts.iter().cloned());
        if all.len() > self.cfg.max_presence_subscriptions {
            return Err(err(
                ErrorCode::TooManySubscriptions,
                "too many presence subscriptions",
            ));
        }
        let partner = endpoint.partner.clone();
        for account in accounts {
            // Those watching already are brought up to date first.
            self.refresh_presence(&account);
            self.watchers
                .entry(account.clone())
                .or_default()
                .insert(ep.clone());
            if let Some(e) = self.endpoints.get_mut(ep) {
                e.watching.insert(account.clone());
            }
            let online = self.online_for(&account, &partner);
            self.presence_told
                .entry(account.clone())
                .or_default()
                .insert(partner.clone(), online);
            self.push(
                ep.clone(),
                ServerMsg::Presence {
                    account_id: account,
                    online,
                },
            );
        }
        Ok(())
    }

    /// `invite`: rings every endpoint of `to` (as the directory lists them on this node), or
    /// answers `busy` / `unavailable`.
    pub fn invite(
        &mut self,
        now: Instant,
        ep: &EndpointId,
        to: AccountId,
        media: MediaKind,
        client_ref: Option<String>,
        sdp: Option<String>,
    ) -> Result<(), CallError> {
        let Some(endpoint) = self.endpoints.get(ep) else {
            return Err(err(ErrorCode::NotLoggedIn, "unknown endpoint"));
        };
        let caller = endpoint.account.clone();
        let partner = endpoint.partner.clone();
        let browser = endpoint.kind == ClientKind::Browser;
        if caller == to {
            return Err(err(
                ErrorCode::InvalidTarget,
                "an account cannot call itself",
            ));
        }
        if self.call_of(&caller).is_some() || self.conf.of(&caller).is_some() {
            return Err(err(
                ErrorCode::AlreadyInCall,
                "this account is already in a call",
            ));
        }
        let remote = self.remote_nodes(&to);
        let local_partner = self.partner_of_account(&to);
        // With endpoints only on other nodes, those nodes check the partner.
        if (local_partner.is_some() || remote.is_empty()) && local_partner != Some(partner) {
            self.push(ep.clone(), ServerMsg::Unavailable { to, client_ref });
            return Ok(());
        }
        if self.call_of(&to).is_some() || self.conf.of(&to).is_some() {
            self.push(ep.clone(), ServerMsg::Busy { to, client_ref });
            return Ok(());
        }
        // A browser's offer is for the supernode, not for the callee.
        let (sdp, caller_offer) = if browser {
            (None, Some(self.browser_offer(sdp.as_deref(), "invite")?))
        } else {
            (sdp, None)
        };
        let ringing = self.local_endpoints(&to);
        if ringing.is_empty() && !self.network_up {
            return Err(err(
                ErrorCode::NetworkUnavailable,
                "the callee is on another supernode and the network is unavailable",
            ));
        }
        let remote = if self.network_up {
            remote
        } else {
            BTreeSet::new()
        };
        // Rung only elsewhere: the caller hears `ringing` when a node confirms it rings.
        let announced = remote.is_empty() || !ringing.is_empty();
        let call_id = CallId::random();
        for r in &ringing {
            self.push(
                r.clone(),
                ServerMsg::IncomingCall {
                    call_id: call_id.clone(),
                    from: caller.clone(),
                    media,
                    sdp: sdp.clone(),
                },
            );
        }
        if announced {
            self.push(
                ep.clone(),
                ServerMsg::Ringing {
                    call_id: call_id.clone(),
                    to: to.clone(),
                    client_ref: client_ref.clone(),
                },
            );
        }
        let net = self.ring_remote(&call_id, ep, &caller, &to, media, &sdp, remote);
        let net = remote::CallNet {
            announced,
            client_ref,
            ..net
        };
        self.notice_others(
            &caller,
            std::slice::from_ref(ep),
            &call_id,
            NoticeState::Outgoing,
            &to,
        );
        self.busy.insert(caller.clone(), call_id.clone());
        self.busy.insert(to.clone(), call_id.clone());
        self.calls.insert(
            call_id,
            Call {
                caller,
                caller_ep: ep.clone(),
                callee: to,
                media,
                sdp,
                caller_offer,
                deadline: now + self.cfg.ring_timeout,
                phase: Phase::Ringing { ringing },
                net,
            },
        );
        Ok(())
    }

    /// Checks a browser endpoint's offer (required with `what`).
    fn browser_offer(&self, sdp: Option<&str>, what: &str) -> Result<CheckedOffer, CallError> {
        let Some(sdp) = sdp else {
            return Err(CallError {
                code: ErrorCode::InvalidMessage,
                message: format!("a browser's {what} carries its SDP offer in \"sdp\""),
            });
        };
        CheckedOffer::check(sdp, &self.cfg.browser_media)
    }

    fn is_browser(&self, ep: &EndpointId) -> bool {
        self.endpoints
            .get(ep)
            .is_some_and(|e| e.kind == ClientKind::Browser)
    }

    fn notice_others(
        &mut self,
        account: &AccountId,
        except: &[EndpointId],
        call_id: &CallId,
        state: NoticeState,
        peer: &AccountId,
    ) {
        let others: Vec<EndpointId> = self
            .local_endpoints(account)
            .into_iter()
            .filter(|e| !except.contains(e))
            .collect();
        for o in others {
            self.push(
                o,
                ServerMsg::CallNotice {
                    call_id: call_id.clone(),
                    state,
                    peer: peer.clone(),
                },
            );
        }
    }

    fn emit(&mut self, session: &RelaySessionId, batch: Vec<RelayOp>) {
        let book = self.sessions.get_mut(session);
        if let Some(book) = book {
            for op in &batch {
                book.outstanding.insert(op.id().clone());
                self.ops.insert(op.id().clone(), session.clone());
            }
        }
        self.relay_out.push_back(batch);
    }

    /// `accept`: the first ringing endpoint to accept answers the call. Without a relay the
    /// call is answered at once; with one, the core emits the call's relay operations
    /// (session, a client transport per endpoint, a subscription each way) and answers the
    /// call — `accepted`, `answered_elsewhere`, `media` — when their results are all in
    /// ([`Self::handle_relay_result`]). A failure or no answer within the relay timeout ends
    /// the call with `relay_failure`.
    pub fn accept(
        &mut self,
        now: Instant,
        ep: &EndpointId,
        call_id: &CallId,
        sdp: Option<String>,
    ) -> Result<(), CallError> {
        if self.answered_elsewhere(ep, call_id) {
            return Ok(());
        }
        let call = self.call(call_id)?;
        let ringing = match &call.phase {
            Phase::Ringing { ringing } if ringing.contains(ep) => ringing.clone(),
            Phase::Active { .. } | Phase::Connecting { .. }
                if self.is_callee_endpoint(call, ep) =>
            {
                return Err(err(ErrorCode::InvalidState, "the call is already answered"));
            }
            _ if *ep == call.caller_ep => {
                return Err(err(ErrorCode::InvalidState, "the caller cannot accept"));
            }
            _ => {
                return Err(not_yours());
            }
        };
        // A browser accepts with its offer: refuse a bad one before anything happens.
        if self.is_browser(ep) {
            self.browser_offer(sdp.as_deref(), "accept")?;
        }
        if call.net.needs_claim() {
            return self.claim(ep, call_id, sdp);
        }
        self.answer(now, ep, call_id, ringing, sdp);
        Ok(())
    }

    /// Answers a ringing call by `ep` (a local endpoint, or a remote one whose node holds
    /// the answer claim): at once without a relay, else once its transports are set up.
    fn answer(
        &mut self,
        now: Instant,
        ep: &EndpointId,
        call_id: &CallId,
        ringing: BTreeSet<EndpointId>,
        sdp: Option<String>,
    ) {
        // A browser's offer is for the supernode (answered in its `media`), not for the
        // caller; an edge callee's SDP is passed on in `accepted`.
        let (sdp, callee_offer) = if self.is_browser(ep) {
            match self.browser_offer(sdp.as_deref(), "accept") {
                Ok(o) => (None, Some(Box::new(o))),
                Err(e) => {
                    self.push(
                        ep.clone(),
                        ServerMsg::Error {
                            code: e.code,
                            message: e.message,
                            in_reply_to: Some("accept".into()),
                        },
                    );
                    return;
                }
            }
        } else {
            (sdp, None)
        };
        // The first accept wins: the other ringing endpoints stop ringing now, not once the
        // relay answered (a later accept from them is `invalid_state`).
        let elsewhere: BTreeSet<EndpointId> =
            ringing.iter().filter(|r| *r != ep).cloned().collect();
        for r in &elsewhere {
            self.push(
                r.clone(),
                ServerMsg::AnsweredElsewhere {
                    call_id: call_id.clone(),
                },
            );
        }
        let ringing: BTreeSet<EndpointId> = BTreeSet::from([ep.clone()]);
        if !self.cfg.relay {
            if let Some(call) = self.calls.get_mut(call_id) {
                call.phase = Phase::Active {
                    callee_ep: ep.clone(),
                    session: None,
                };
            }
            self.answered(call_id, ep, &ringing, &elsewhere, sdp, None);
            return;
        }
        let session = RelaySessionId::random();
        let (caller_tr, callee_tr) = (TransportId::random(), TransportId::random());
        let caller_offer = self.calls.get(call_id).and_then(|c| c.caller_offer.clone());
        // A callee on another node is reached over a trunk to its node's relay.
        let callee_remote = self
            .calls
            .get(call_id)
            .is_some_and(|c| c.net.callee_node.is_some());
        let callee_op = if callee_remote {
            self.trunk_op(&session, &callee_tr)
        } else {
            self.endpoint_transport_op(&session, &callee_tr, callee_offer.as_deref())
        };
        let batch = vec![
            RelayOp::CreateSession(CreateSession {
                op: OperationId::random(),
                session: session.clone(),
                call: call_id.clone(),
            }),
            self.endpoint_transport_op(&session, &caller_tr, caller_offer.as_ref()),
            callee_op,
            ops::subscribe_op(&session, &caller_tr, &callee_tr),
            ops::subscribe_op(&session, &callee_tr, &caller_tr),
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
        let deadline = now + self.cfg.relay_timeout;
        if let Some(call) = self.calls.get_mut(call_id) {
            call.phase = Phase::Connecting {
                ringing,
                callee_ep: ep.clone(),
                pending: Pending {
                    session,
                    caller_tr,
                    callee_tr,
                    grants: HashMap::new(),
                    deadline,
                    sdp,
                    callee_offer,
                    elsewhere,
                },
            };
        }
    }

    /// The messages of an answered call: `accepted` to the caller, `answered_elsewhere` to
    /// the endpoints that started ringing after the accept (the others, `elsewhere`, were
    /// told on accept), notices, and `media` to both endpoints when there are transports.
    fn answered(
        &mut self,
        call_id: &CallId,
        ep: &EndpointId,
        ringing: &BTreeSet<EndpointId>,
        elsewhere: &BTreeSet<EndpointId>,
        sdp: Option<String>,
        legs: Option<(LegInfo, LegInfo)>,
    ) {
        let Some(call) = self.calls.get(call_id) else {
            return;
        };
        let caller_ep = call.caller_ep.clone();
        let caller = call.caller.clone();
        let callee = call.callee.clone();
        self.push(
            caller_ep.clone(),
            ServerMsg::Accepted {
                call_id: call_id.clone(),
                by: ep.clone(),
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
        self.notice_others(
            &caller,
            std::slice::from_ref(&caller_ep),
            call_id,
            NoticeState::Answered,
            &callee,
        );
        let mut except: Vec<EndpointId> = ringing.iter().chain(elsewhere).cloned().collect();
        except.push(ep.clone());
        self.notice_others(&callee, &except, call_id, NoticeState::Answered, &caller);
        if let Some((a, b)) = legs {
            self.push(
                caller_ep,
                ServerMsg::Media {
                    call_id: call_id.clone(),
                    leg: a,
                },
            );
            match self
                .calls
                .get(call_id)
                .and_then(|c| c.net.callee_node.clone())
            {
                Some(node) => {
                    let msg = self.media_msg_for_node(call_id, b);
                    self.send_node(node, msg)
                }
                None => self.push(
                    ep.clone(),
                    ServerMsg::Media {
                        call_id: call_id.clone(),
                        leg: b,
                    },
                ),
            }
        }
    }

    /// The result of a relay operation this core emitted (in any order, at any time: after
    /// its call ended, after the relay timeout). A failed operation ends its call with
    /// `relay_failure`; a call whose operations all succeeded is answered. A session whose
    /// call is gone is released once no operation of it is outstanding, so whatever was
    /// allocated — late, failed or half — is always released.
    pub fn handle_relay_result(&mut self, result: RelayResult) {
        if self.conference_result(&result) {
            return;
        }
        if self.releases.remove(&result.op) {
            if result.outcome.is_err() {
                self.books.failed_results += 1;
            }
            return;
        }
        let Some(session) = self.ops.remove(&result.op) else {
            self.books.unknown_results += 1;
            return;
        };
        let call_id = match self.sessions.get_mut(&session) {
            Some(book) => {
                book.outstanding.remove(&result.op);
                book.call.clone()
            }
            None => None,
        };
        match result.outcome {
            Err(_) => {
                self.books.failed_results += 1;
                if let Some(call_id) = &call_id {
                    self.end_call(call_id, EndReason::RelayFailure);
                }
            }
            Ok(outcome) => {
                if let Some(call_id) = &call_id {
                    self.progress(call_id, &session, outcome);
                }
            }
        }
        self.release_if_done(&session);
    }

    /// A successful result for a connecting call: records a grant; answers the call when
    /// every operation of its session is done.
    fn progress(&mut self, call_id: &CallId, session: &RelaySessionId, outcome: RelayOutcome) {
        let outstanding = self
            .sessions
            .get(session)
            .map_or(0, |b| b.outstanding.len());
        // A re-key first: on a node the call was re-anchored on, the session is also the
        // one of its trunk set-up.
        if self.rekey_progress(call_id, &outcome) || self.trunk_progress(call_id, session, &outcome)
        {
            return;
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Phase::Connecting { pending, .. } = &mut call.phase else {
            return;
        };
        if &pending.session != session {
            return;
        }
        match outcome {
            RelayOutcome::TransportAdded(grant) => {
                pending.grants.insert(grant.transport.clone(), grant);
            }
            RelayOutcome::TrunkAdded(g) => {
                let mut grants = std::mem::take(&mut pending.grants);
                self.keep_trunk_grant(call_id, g, &mut grants);
                if let Some(Call {
                    phase: Phase::Connecting { pending, .. },
                    ..
                }) = self.calls.get_mut(call_id)
                {
                    pending.grants = grants;
                }
            }
            _ => {}
        }
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Phase::Connecting { pending, .. } = &mut call.phase else {
            return;
        };
        if outstanding > 0 {
            return;
        }
        let (public_ip, policy) = (self.cfg.public_ip, &self.cfg.browser_media);
        let legs = match (
            pending.grants.get(&pending.caller_tr),
            pending.grants.get(&pending.callee_tr),
        ) {
            (Some(a), Some(b)) => leg_info(a, call.caller_offer.as_ref(), public_ip, policy)
                .and_then(|a| {
                    leg_info(b, pending.callee_offer.as_deref(), public_ip, policy).map(|b| (a, b))
                }),
            _ => Err("a transport of the call is missing".to_owned()),
        };
        let legs = match legs {
            Ok(legs) => legs,
            Err(e) => {
                // Every operation answered, yet not a usable answer.
                tracing::warn!(call = %call_id, error = %e, "relay grant unusable");
                self.end_call(call_id, EndReason::RelayFailure);
                return;
            }
        };
        let Some(call) = self.calls.get_mut(call_id) else {
            return;
        };
        let Phase::Connecting {
            ringing,
            callee_ep,
            pending,
        } = std::mem::replace(
            &mut call.phase,
            Phase::Ringing {
                ringing: BTreeSet::new(),
            },
        )
        else {
            return;
        };
        call.phase = Phase::Active {
            callee_ep: callee_ep.clone(),
            session: Some(pending.session),
        };
        self.answered(
            call_id,
            &callee_ep,
            &ringing,
            &pending.elsewhere,
            pending.sdp,
            Some(legs),
        );
    }

    /// Emits the release of a session whose call is gone, once none of its operations is
    /// outstanding.
    fn release_if_done(&mut self, session: &RelaySessionId) {
        let done = self
            .sessions
            .get(session)
            .is_some_and(|b| b.call.is_none() && b.outstanding.is_empty());
        if !done {
            return;
        }
        self.sessions.remove(session);
        let op = OperationId::random();
        self.releases.insert(op.clone());
        self.books.sessions_released += 1;
        self.relay_out.push_back(vec![RelayOp::Release(Release {
            op,
            session: session.clone(),
        })]);
    }

    /// The call `call_id`, or the `unknown_call` error.
    fn call(&self, call_id: &CallId) -> Result<&Call, CallError> {
        self.calls
            .get(call_id)
            .ok_or_else(|| err(ErrorCode::UnknownCall, "no such call"))
    }

    fn is_callee_endpoint(&self, call: &Call, ep: &EndpointId) -> bool {
        self.endpoints
            .get(ep)
            .is_some_and(|e| e.account == call.callee)
    }

    /// `reject`: a ringing endpoint declines; the call ends `rejected` for everyone.
    pub fn reject(&mut self, ep: &EndpointId, call_id: &CallId) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        match &call.phase {
            Phase::Ringing { ringing } if ringing.contains(ep) => {
                self.end_call(call_id, EndReason::Rejected);
                Ok(())
            }
            _ if self.takes_part(call, ep) => Err(err(
                ErrorCode::InvalidState,
                "only a ringing endpoint can reject",
            )),
            _ => Err(not_yours()),
        }
    }

    /// `cancel`: the calling endpoint gives up before an answer (also while the answer's
    /// transports are being set up: the caller has not heard `accepted` yet).
    pub fn cancel(&mut self, ep: &EndpointId, call_id: &CallId) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        if call.caller_ep != *ep {
            return Err(not_yours());
        }
        if matches!(call.phase, Phase::Active { .. }) {
            return Err(err(
                ErrorCode::InvalidState,
                "the call is answered: hang up instead",
            ));
        }
        self.end_call(call_id, EndReason::Cancelled);
        Ok(())
    }

    /// `hangup`: either endpoint of an answered call ends it (the caller's hangup before
    /// `accepted` cancels; a ringing endpoint's hangup rejects).
    pub fn hangup(&mut self, ep: &EndpointId, call_id: &CallId) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        let reason = match &call.phase {
            Phase::Ringing { .. } | Phase::Connecting { .. } if call.caller_ep == *ep => {
                EndReason::Cancelled
            }
            Phase::Ringing { ringing } if ringing.contains(ep) => EndReason::Rejected,
            Phase::Connecting { callee_ep, .. } | Phase::Active { callee_ep, .. }
                if callee_ep == ep || call.caller_ep == *ep =>
            {
                EndReason::Hangup
            }
            _ => {
                return Err(not_yours());
            }
        };
        self.end_call(call_id, reason);
        Ok(())
    }

    /// `negotiate`: passes an SDP/ICE payload to the other endpoint of an answered call.
    pub fn negotiate(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        negotiation: Negotiation,
    ) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        let peer = match &call.phase {
            Phase::Active { callee_ep, .. } if call.caller_ep == *ep => callee_ep.clone(),
            Phase::Active { callee_ep, .. } if callee_ep == ep => call.caller_ep.clone(),
            Phase::Ringing { .. } | Phase::Connecting { .. } if self.takes_part(call, ep) => {
                return Err(err(
                    ErrorCode::InvalidState,
                    "negotiation starts once the call is answered",
                ));
            }
            _ => {
                return Err(not_yours());
            }
        };
        if let Some(node) = call.net.node_of_peer(call, ep) {
            self.send_node(
                node,
                supernode_proto::network::NodeMsg::Negotiate {
                    call: call_id.clone(),
                    negotiation,
                },
            );
            return Ok(());
        }
        self.push(
            peer,
            ServerMsg::Negotiate {
                call_id: call_id.clone(),
                negotiation,
            },
        );
        Ok(())
    }

    fn takes_part(&self, call: &Call, ep: &EndpointId) -> bool {
        call.caller_ep == *ep
            || match &call.phase {
                Phase::Ringing { ringing } => ringing.contains(ep),
                Phase::Connecting {
                    ringing, callee_ep, ..
                } => ringing.contains(ep) || callee_ep == ep,
                Phase::Active { callee_ep, .. } => callee_ep == ep,
            }
    }

    /// Ends ringing calls whose ring timeout passed (`no_answer`) and answered calls whose
    /// transports did not come within the relay timeout (`relay_failure`).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_speech(now, None);
        let due: Vec<(CallId, EndReason)> = self
            .calls
            .iter()
            .filter_map(|(id, c)| match &c.phase {
                Phase::Ringing { .. } if c.deadline <= now => {
                    Some((id.clone(), EndReason::NoAnswer))
                }
                Phase::Connecting { pending, .. } if pending.deadline <= now => {
                    Some((id.clone(), EndReason::RelayFailure))
                }
                _ => None,
            })
            .collect();
        for (id, reason) in due {
            if reason == EndReason::RelayFailure {
                self.books.timed_out += 1;
            }
            self.end_call(&id, reason);
        }
        self.failover_expired(now);
    }

    /// Removes the call, lets go of its relay session (released now, or once its
    /// outstanding operations are answered), and tells every endpoint that took part (and
    /// notices the other endpoints of both accounts).
    fn end_call(&mut self, call_id: &CallId, reason: EndReason) {
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        self.end_remote(call_id, &call.net, reason);
        let mut parties: Vec<EndpointId> = vec![call.caller_ep.clone()];
        let session = match &call.phase {
            Phase::Ringing { ringing } => {
                parties.extend(ringing.iter().cloned());
                None
            }
            Phase::Connecting {
                ringing,
                callee_ep,
                pending,
            } => {
                parties.extend(ringing.iter().cloned());
                if !parties.contains(callee_ep) {
                    parties.push(callee_ep.clone());
                }
                Some(pending.session.clone())
            }
            Phase::Active { callee_ep, session } => {
                parties.push(callee_ep.clone());
                session.clone()
            }
        };
        if let Some(session) = session {
            if let Some(book) = self.sessions.get_mut(&session) {
                book.call = None;
            }
            self.release_if_done(&session);
        }
        for p in &parties {
            if self.endpoints.contains_key(p) {
                self.push(
                    p.clone(),
                    ServerMsg::CallEnded {
                        call_id: call_id.clone(),
                        reason,
                    },
                );
            }
        }
        for (account, peer) in [(&call.caller, &call.callee), (&call.callee, &call.caller)] {
            self.notice_others(account, &parties, call_id, NoticeState::Ended, peer);
            if self.busy.get(account) == Some(call_id) {
                self.busy.remove(account);
            }
        }
        self.migrate_freed(&parties);
    }
}

/// The `media` message's leg for a grant; a browser's carries the answer to its offer.
fn leg_info(
    g: &TransportGrant,
    offer: Option<&CheckedOffer>,
    public_ip: Option<IpAddr>,
    policy: &MediaPolicy,
) -> Result<LegInfo, String> {
    let sdp = match offer {
        Some(o) => Some(o.answer(g, public_ip, policy)?),
        None => None,
    };
    Ok(LegInfo {
        leg_id: g.transport.clone(),
        address: g.address.clone(),
        srtp: g.srtp.clone(),
        sdp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_subscriptions_are_bounded_and_partner_scoped() {
        let mut core = CallCore::new(
            CallConfig {
                max_presence_subscriptions: 2,
                ..CallConfig::default()
            },
            Arc::new(crate::directory::InMemoryDirectory::new()),
        );
        let p1 = PartnerId::random();
        let p2 = PartnerId::random();
        let (a, b, x) = (
            AccountId::random(),
            AccountId::random(),
            AccountId::random(),
        );
        let ea = core.attach(a.clone(), p1.clone());
        core.attach(b.clone(), p1.clone());
        core.attach(x.clone(), p2.clone());
        core.subscribe_presence(&ea, vec![b.clone(), x.clone()])
            .unwrap();
        let got: Vec<ServerMsg> =
            std::iter::from_fn(|| core.poll_output().map(|o| o.msg)).collect();
        assert_eq!(
            got,
            vec![
                ServerMsg::Presence {
                    account_id: b,
                    online: true
                },
                ServerMsg::Presence {
                    account_id: x,
                    online: false
                },
            ]
        );
        let e = core
            .subscribe_presence(&ea, vec![AccountId::random()])
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManySubscriptions);
        assert_eq!(
            core.subscribe_presence(&EndpointId::random(), vec![])
                .unwrap_err()
                .code,
            ErrorCode::NotLoggedIn
        );
    }
}
