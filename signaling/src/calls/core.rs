//! The call state machine.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::ids::{AccountId, CallId, EndpointId, PartnerId};
use crate::protocol::{
    EndReason, ErrorCode, LegInfo, MediaKind, Negotiation, NoticeState, ServerMsg, SrtpKeying,
};
use crate::relay_access::{LegGrant, RelayAccess};

/// Tunables of the call core.
#[derive(Clone, Debug)]
pub struct CallConfig {
    /// How long an invite rings before it ends with `no_answer`.
    pub ring_timeout: Duration,
    /// Most accounts one endpoint may watch for presence.
    pub max_presence_subscriptions: usize,
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            ring_timeout: Duration::from_secs(60),
            max_presence_subscriptions: 1000,
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

#[derive(Debug)]
struct Endpoint {
    account: AccountId,
    partner: PartnerId,
    watching: BTreeSet<AccountId>,
}

#[derive(Debug)]
enum Phase {
    Ringing { ringing: BTreeSet<EndpointId> },
    Active { callee_ep: EndpointId, legs: bool },
}

#[derive(Debug)]
struct Call {
    caller: AccountId,
    caller_ep: EndpointId,
    callee: AccountId,
    media: MediaKind,
    sdp: Option<String>,
    deadline: Instant,
    phase: Phase,
}

#[derive(Debug, Default)]
struct Account {
    endpoints: BTreeSet<EndpointId>,
    call: Option<CallId>,
}

/// The sans-IO call state machine of one supernode.
#[derive(Debug)]
pub struct CallCore {
    cfg: CallConfig,
    endpoints: BTreeMap<EndpointId, Endpoint>,
    accounts: HashMap<AccountId, Account>,
    watchers: HashMap<AccountId, BTreeSet<EndpointId>>,
    calls: BTreeMap<CallId, Call>,
    out: VecDeque<Outgoing>,
}

impl CallCore {
    /// An empty core.
    pub fn new(cfg: CallConfig) -> Self {
        Self {
            cfg,
            endpoints: BTreeMap::new(),
            accounts: HashMap::new(),
            watchers: HashMap::new(),
            calls: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// The next message to deliver.
    pub fn poll_output(&mut self) -> Option<Outgoing> {
        self.out.pop_front()
    }

    /// When [`Self::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter(|c| matches!(c.phase, Phase::Ringing { .. }))
            .map(|c| c.deadline)
            .min()
    }

    /// Number of live calls (ringing or answered).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Number of attached endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Ids of the live calls whose legs are allocated.
    pub fn calls_with_legs(&self) -> Vec<CallId> {
        self.calls
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Active { legs: true, .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The call an account takes part in, if any.
    pub fn call_of(&self, account: &AccountId) -> Option<CallId> {
        self.accounts.get(account).and_then(|a| a.call.clone())
    }

    /// The answering endpoint of a call, once answered.
    pub fn answerer(&self, call: &CallId) -> Option<EndpointId> {
        match &self.calls.get(call)?.phase {
            Phase::Active { callee_ep, .. } => Some(callee_ep.clone()),
            Phase::Ringing { .. } => None,
        }
    }

    fn push(&mut self, to: EndpointId, msg: ServerMsg) {
        self.out.push_back(Outgoing { to, msg });
    }

    fn online(&self, account: &AccountId) -> bool {
        self.accounts
            .get(account)
            .is_some_and(|a| !a.endpoints.is_empty())
    }

    fn partner_of_account(&self, account: &AccountId) -> Option<&PartnerId> {
        let ep = self.accounts.get(account)?.endpoints.first()?;
        self.endpoints.get(ep).map(|e| &e.partner)
    }

    fn announce_presence(&mut self, account: &AccountId, online: bool, partner: &PartnerId) {
        let Some(watchers) = self.watchers.get(account) else {
            return;
        };
        let targets: Vec<EndpointId> = watchers
            .iter()
            .filter(|w| {
                self.endpoints
                    .get(*w)
                    .is_some_and(|e| &e.partner == partner)
            })
            .cloned()
            .collect();
        for w in targets {
            self.push(
                w,
                ServerMsg::Presence {
                    account_id: account.clone(),
                    online,
                },
            );
        }
    }

    /// An endpoint of `account` (of `partner`) logged in; returns its id. If the account is
    /// being called, the new endpoint rings too; if it is in a call, it gets a notice.
    pub fn attach(&mut self, account: AccountId, partner: PartnerId) -> EndpointId {
        let ep = EndpointId::random();
        let was_online = self.online(&account);
        self.endpoints.insert(
            ep.clone(),
            Endpoint {
                account: account.clone(),
                partner: partner.clone(),
                watching: BTreeSet::new(),
            },
        );
        let entry = self.accounts.entry(account.clone()).or_default();
        entry.endpoints.insert(ep.clone());
        let call_id = entry.call.clone();
        if !was_online {
            self.announce_presence(&account, true, &partner);
        }
        if let Some(call_id) = call_id
            && let Some(call) = self.calls.get_mut(&call_id)
        {
            let peer = if call.callee == account {
                call.caller.clone()
            } else {
                call.callee.clone()
            };
            match &mut call.phase {
                Phase::Ringing { ringing } if call.callee == account => {
                    ringing.insert(ep.clone());
                    let msg = ServerMsg::IncomingCall {
                        call_id,
                        from: call.caller.clone(),
                        media: call.media,
                        sdp: call.sdp.clone(),
                    };
                    self.push(ep.clone(), msg);
                }
                Phase::Ringing { .. } => self.push(
                    ep.clone(),
                    ServerMsg::CallNotice {
                        call_id,
                        state: NoticeState::Outgoing,
                        peer,
                    },
                ),
                Phase::Active { .. } => self.push(
                    ep.clone(),
                    ServerMsg::CallNotice {
                        call_id,
                        state: NoticeState::Answered,
                        peer,
                    },
                ),
            }
        }
        ep
    }

    /// An endpoint disconnected: ends the call it takes part in (if any), stops it ringing,
    /// and drops its subscriptions.
    pub fn detach(&mut self, ep: &EndpointId, relay: Option<&dyn RelayAccess>) {
        let Some(endpoint) = self.endpoints.remove(ep) else {
            return;
        };
        for watched in &endpoint.watching {
            if let Some(w) = self.watchers.get_mut(watched) {
                w.remove(ep);
                if w.is_empty() {
                    self.watchers.remove(watched);
                }
            }
        }
        let account = endpoint.account;
        let call_id = self.accounts.get(&account).and_then(|a| a.call.clone());
        if let Some(acc) = self.accounts.get_mut(&account) {
            acc.endpoints.remove(ep);
        }
        if let Some(call_id) = call_id {
            let action = match self.calls.get_mut(&call_id) {
                Some(call) if call.caller_ep == *ep => Some(match call.phase {
                    Phase::Ringing { .. } => EndReason::Cancelled,
                    Phase::Active { .. } => EndReason::PeerDisconnected,
                }),
                Some(call) => match &mut call.phase {
                    Phase::Active { callee_ep, .. } if callee_ep == ep => {
                        Some(EndReason::PeerDisconnected)
                    }
                    Phase::Ringing { ringing } => {
                        ringing.remove(ep);
                        ringing.is_empty().then_some(EndReason::Unavailable)
                    }
                    Phase::Active { .. } => None,
                },
                None => None,
            };
            if let Some(reason) = action {
                self.end_call(&call_id, reason, relay);
            }
        }
        if !self.online(&account) {
            self.announce_presence(&account, false, &endpoint.partner);
            self.gc_account(&account);
        }
    }

    fn gc_account(&mut self, account: &AccountId) {
        if let Some(a) = self.accounts.get(account)
            && a.endpoints.is_empty()
            && a.call.is_none()
        {
            self.accounts.remove(account);
        }
    }

    /// `subscribe_presence`: answers the current presence of each account at once, then on
    /// every change. Accounts of another partner always read offline.
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
            self.watchers
                .entry(account.clone())
                .or_default()
                .insert(ep.clone());
            if let Some(e) = self.endpoints.get_mut(ep) {
                e.watching.insert(account.clone());
            }
            let online =
                self.online(&account) && self.partner_of_account(&account) == Some(&partner);
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

    /// `invite`: rings every endpoint of `to`, or answers `busy` / `unavailable`.
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
        if caller == to {
            return Err(err(
                ErrorCode::InvalidTarget,
                "an account cannot call itself",
            ));
        }
        if self.call_of(&caller).is_some() {
            return Err(err(
                ErrorCode::AlreadyInCall,
                "this account is already in a call",
            ));
        }
        if !self.online(&to) || self.partner_of_account(&to) != Some(&partner) {
            self.push(ep.clone(), ServerMsg::Unavailable { to, client_ref });
            return Ok(());
        }
        if self.call_of(&to).is_some() {
            self.push(ep.clone(), ServerMsg::Busy { to, client_ref });
            return Ok(());
        }
        let call_id = CallId::random();
        let ringing: BTreeSet<EndpointId> = self
            .accounts
            .get(&to)
            .map(|a| a.endpoints.clone())
            .unwrap_or_default();
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
        self.push(
            ep.clone(),
            ServerMsg::Ringing {
                call_id: call_id.clone(),
                to: to.clone(),
                client_ref,
            },
        );
        self.notice_others(&caller, ep, &call_id, NoticeState::Outgoing, &to);
        self.accounts.entry(caller.clone()).or_default().call = Some(call_id.clone());
        self.accounts.entry(to.clone()).or_default().call = Some(call_id.clone());
        self.calls.insert(
            call_id,
            Call {
                caller,
                caller_ep: ep.clone(),
                callee: to,
                media,
                sdp,
                deadline: now + self.cfg.ring_timeout,
                phase: Phase::Ringing { ringing },
            },
        );
        Ok(())
    }

    fn notice_others(
        &mut self,
        account: &AccountId,
        except: &EndpointId,
        call_id: &CallId,
        state: NoticeState,
        peer: &AccountId,
    ) {
        let others: Vec<EndpointId> = self
            .accounts
            .get(account)
            .map(|a| {
                a.endpoints
                    .iter()
                    .filter(|e| *e != except)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
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

    /// `accept`: the first ringing endpoint to accept answers the call; legs are allocated
    /// and connected, both endpoints get `media`, the others `answered_elsewhere`.
    pub fn accept(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        sdp: Option<String>,
        relay: Option<&dyn RelayAccess>,
    ) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        let ringing = match &call.phase {
            Phase::Ringing { ringing } if ringing.contains(ep) => ringing.clone(),
            Phase::Active { .. } if self.is_callee_endpoint(call, ep) => {
                return Err(err(ErrorCode::InvalidState, "the call is already answered"));
            }
            _ if *ep == call.caller_ep => {
                return Err(err(ErrorCode::InvalidState, "the caller cannot accept"));
            }
            _ => {
                return Err(not_yours());
            }
        };
        let caller_ep = call.caller_ep.clone();
        let caller = call.caller.clone();
        let callee = call.callee.clone();

        let mut grants: Option<(LegGrant, LegGrant)> = None;
        if let Some(relay) = relay {
            let legs = match relay.allocate(call_id, 2) {
                Ok(legs) if legs.len() == 2 => legs,
                Ok(_) => {
                    relay.release(call_id);
                    self.end_call(call_id, EndReason::RelayFailure, None);
                    return Ok(());
                }
                Err(_) => {
                    self.end_call(call_id, EndReason::RelayFailure, None);
                    return Ok(());
                }
            };
            if relay.connect(call_id, &legs[0].leg, &legs[1].leg).is_err() {
                relay.release(call_id);
                self.end_call(call_id, EndReason::RelayFailure, None);
                return Ok(());
            }
            let mut it = legs.into_iter();
            if let (Some(a), Some(b)) = (it.next(), it.next()) {
                grants = Some((a, b));
            }
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            call.phase = Phase::Active {
                callee_ep: ep.clone(),
                legs: grants.is_some(),
            };
        }
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
        self.notice_others(&caller, &caller_ep, call_id, NoticeState::Answered, &callee);
        let callee_others: Vec<EndpointId> = self
            .accounts
            .get(&callee)
            .map(|a| {
                a.endpoints
                    .iter()
                    .filter(|e| *e != ep && !ringing.contains(*e))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for o in callee_others {
            self.push(
                o,
                ServerMsg::CallNotice {
                    call_id: call_id.clone(),
                    state: NoticeState::Answered,
                    peer: caller.clone(),
                },
            );
        }
        if let Some((a, b)) = grants {
            self.push(
                caller_ep,
                ServerMsg::Media {
                    call_id: call_id.clone(),
                    leg: leg_info(&a),
                },
            );
            self.push(
                ep.clone(),
                ServerMsg::Media {
                    call_id: call_id.clone(),
                    leg: leg_info(&b),
                },
            );
        }
        Ok(())
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
    pub fn reject(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        relay: Option<&dyn RelayAccess>,
    ) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        match &call.phase {
            Phase::Ringing { ringing } if ringing.contains(ep) => {
                self.end_call(call_id, EndReason::Rejected, relay);
                Ok(())
            }
            _ if self.takes_part(call, ep) => Err(err(
                ErrorCode::InvalidState,
                "only a ringing endpoint can reject",
            )),
            _ => Err(not_yours()),
        }
    }

    /// `cancel`: the calling endpoint gives up before an answer.
    pub fn cancel(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        relay: Option<&dyn RelayAccess>,
    ) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        if call.caller_ep != *ep {
            return Err(not_yours());
        }
        if !matches!(call.phase, Phase::Ringing { .. }) {
            return Err(err(
                ErrorCode::InvalidState,
                "the call is answered: hang up instead",
            ));
        }
        self.end_call(call_id, EndReason::Cancelled, relay);
        Ok(())
    }

    /// `hangup`: either endpoint of an answered call ends it (the caller's hangup while
    /// ringing cancels; a ringing endpoint's hangup rejects).
    pub fn hangup(
        &mut self,
        ep: &EndpointId,
        call_id: &CallId,
        relay: Option<&dyn RelayAccess>,
    ) -> Result<(), CallError> {
        let call = self.call(call_id)?;
        let reason = match &call.phase {
            Phase::Ringing { .. } if call.caller_ep == *ep => EndReason::Cancelled,
            Phase::Ringing { ringing } if ringing.contains(ep) => EndReason::Rejected,
            Phase::Active { callee_ep, .. } if call.caller_ep == *ep || callee_ep == ep => {
                EndReason::Hangup
            }
            _ => {
                return Err(not_yours());
            }
        };
        self.end_call(call_id, reason, relay);
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
            Phase::Ringing { .. } if self.takes_part(call, ep) => {
                return Err(err(
                    ErrorCode::InvalidState,
                    "negotiation starts once the call is answered",
                ));
            }
            _ => {
                return Err(not_yours());
            }
        };
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
                Phase::Active { callee_ep, .. } => callee_ep == ep,
            }
    }

    /// Ends ringing calls whose ring timeout passed (`no_answer`).
    pub fn handle_timeout(&mut self, now: Instant, relay: Option<&dyn RelayAccess>) {
        let due: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Ringing { .. }) && c.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.end_call(&id, EndReason::NoAnswer, relay);
        }
    }

    /// Removes the call, releases its legs, and tells every endpoint that took part (and
    /// notices the other endpoints of both accounts).
    fn end_call(&mut self, call_id: &CallId, reason: EndReason, relay: Option<&dyn RelayAccess>) {
        let Some(call) = self.calls.remove(call_id) else {
            return;
        };
        let mut parties: Vec<EndpointId> = vec![call.caller_ep.clone()];
        match &call.phase {
            Phase::Ringing { ringing } => parties.extend(ringing.iter().cloned()),
            Phase::Active { callee_ep, legs } => {
                parties.push(callee_ep.clone());
                if *legs && let Some(relay) = relay {
                    relay.release(call_id);
                }
            }
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
            let others: Vec<EndpointId> = self
                .accounts
                .get(account)
                .map(|a| {
                    a.endpoints
                        .iter()
                        .filter(|e| !parties.contains(e))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for o in others {
                self.push(
                    o,
                    ServerMsg::CallNotice {
                        call_id: call_id.clone(),
                        state: NoticeState::Ended,
                        peer: peer.clone(),
                    },
                );
            }
            if let Some(a) = self.accounts.get_mut(account)
                && a.call.as_ref() == Some(call_id)
            {
                a.call = None;
            }
        }
        self.gc_account(&call.caller);
        self.gc_account(&call.callee);
    }
}

fn leg_info(g: &LegGrant) -> LegInfo {
    LegInfo {
        leg_id: g.leg.clone(),
        address: g.address.to_string(),
        srtp: g.srtp.as_ref().map(|s| SrtpKeying {
            profile: s.profile,
            key_b64: base64::engine::general_purpose::STANDARD.encode(&s.key_and_salt),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_subscriptions_are_bounded_and_partner_scoped() {
        let mut core = CallCore::new(CallConfig {
            max_presence_subscriptions: 2,
            ..CallConfig::default()
        });
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
