//! Property tests of the sans-IO conference core over random interleavings of endpoints
//! joining and leaving, invites, accepts, rejects, cancels, hangups, time passing — and the
//! relay: the core's relay operations run when the test says (batches in any order), their
//! results come back late, out of order, or failed, after the call they served may have
//! ended or timed out.
//!
//! Invariants checked:
//! * at most one answering endpoint per call, and media legs go only to the calling and the
//!   answering endpoint, and only once every relay operation of the call succeeded;
//! * every endpoint that was rung is told how it ended (`answered_elsewhere` or
//!   `call_ended`) unless it left while the call was live;
//! * a session is released only once its call is gone and every operation of it was
//!   answered; an answered call's session is live at the relay with both transports;
//! * at the end every session the core created is released exactly once and nothing is left
//!   at the relay (a failed, half-done or late allocation included);
//! * messages go only to attached endpoints; an account is in at most one call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use supernode_proto::relay_ops::{
    RelayOp, RelayOpError, RelayOutcome, RelayResult, TransportGrant,
};
use supernode_signaling::calls::{CallConfig, CallCore};
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::ids::{
    AccountId, CallId, EndpointId, OperationId, PartnerId, RelaySessionId, TransportId,
};
use supernode_signaling::protocol::{MediaKind, Negotiation, ServerMsg};

/// The relay as the core sees it: operations run when the test runs their batch, results
/// wait until the test delivers them.
#[derive(Default)]
struct ModelRelay {
    /// Sessions at the relay and their transports.
    live: BTreeMap<RelaySessionId, BTreeSet<TransportId>>,
    /// Submitted batches not yet run.
    batches: Vec<Vec<RelayOp>>,
    /// Results not yet delivered.
    results: Vec<RelayResult>,
    /// Operations submitted, per session, and which of them were answered.
    submitted: HashMap<RelaySessionId, BTreeSet<OperationId>>,
    answered: BTreeSet<OperationId>,
    /// The operation run after this many more fails.
    fail_in: Option<usize>,
    creates: u64,
    releases: u64,
}

impl ModelRelay {
    fn submit(&mut self, core: &CallCore, batch: Vec<RelayOp>) {
        let active: BTreeSet<RelaySessionId> = core.active_sessions().into_values().collect();
        for op in &batch {
            if let RelayOp::Release(r) = op {
                assert!(
                    !active.contains(&r.session),
                    "release of the session of a live call"
                );
                let unanswered: Vec<_> = self
                    .submitted
                    .get(&r.session)
                    .into_iter()
                    .flatten()
                    .filter(|o| !self.answered.contains(*o))
                    .collect();
                assert!(
                    unanswered.is_empty(),
                    "release while operations of the session are outstanding"
                );
                self.releases += 1;
            } else {
                self.submitted
                    .entry(op.session().clone())
                    .or_default()
                    .insert(op.id().clone());
            }
            if let RelayOp::CreateSession(_) = op {
                self.creates += 1;
            }
        }
        self.batches.push(batch);
    }

    fn run_batch(&mut self, i: usize) {
        if self.batches.is_empty() {
            return;
        }
        let batch = self.batches.remove(i % self.batches.len());
        for op in batch {
            let fail = match self.fail_in {
                _ if matches!(op, RelayOp::Release(_)) => false,
                Some(0) => {
                    self.fail_in = None;
                    true
                }
                Some(n) => {
                    self.fail_in = Some(n - 1);
                    false
                }
                None => false,
            };
            let outcome = if fail {
                Err(RelayOpError::Exhausted)
            } else {
                self.apply(&op)
            };
            self.results.push(RelayResult {
                op: op.id().clone(),
                outcome,
            });
        }
    }

    fn apply(&mut self, op: &RelayOp) -> Result<RelayOutcome, RelayOpError> {
        match op {
            RelayOp::CreateSession(c) => {
                self.live.insert(c.session.clone(), BTreeSet::new());
                Ok(RelayOutcome::SessionCreated)
            }
            RelayOp::AddTransport(t) => {
                let s = self
                    .live
                    .get_mut(&t.session)
                    .ok_or(RelayOpError::UnknownSession)?;
                s.insert(t.transport.clone());
                Ok(RelayOutcome::TransportAdded(TransportGrant {
                    transport: t.transport.clone(),
                    address: "127.0.0.1:40000".into(),
                    srtp: None,
                    browser: None,
                }))
            }
            RelayOp::Subscribe(sub) => {
                let s = self
                    .live
                    .get(&sub.session)
                    .ok_or(RelayOpError::UnknownSession)?;
                if s.contains(&sub.source) && s.contains(&sub.sink) {
                    Ok(RelayOutcome::Subscribed)
                } else {
                    Err(RelayOpError::UnknownTransport)
                }
            }
            RelayOp::Release(r) => {
                self.live.remove(&r.session);
                Ok(RelayOutcome::Released)
            }
            _ => Err(RelayOpError::Unavailable("unknown operation".into())),
        }
    }

    fn deliver(&mut self, i: usize, core: &mut CallCore) {
        if self.results.is_empty() {
            return;
        }
        let r = self.results.remove(i % self.results.len());
        self.answered.insert(r.op.clone());
        core.handle_relay_result(r);
    }

    /// Runs every batch and delivers every result (and what they lead to) until quiet.
    fn settle(&mut self, core: &mut CallCore, obs: &mut Observer) {
        loop {
            while let Some(b) = core.poll_relay() {
                self.submit(core, b);
            }
            obs.drain(core);
            if !self.batches.is_empty() {
                self.run_batch(0);
            } else if !self.results.is_empty() {
                self.deliver(0, core);
            } else {
                break;
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Attach(usize),
    Detach(usize),
    Invite(usize, usize),
    Accept(usize, usize),
    Reject(usize, usize),
    Cancel(usize, usize),
    Hangup(usize, usize),
    Negotiate(usize, usize),
    Advance(u64),
    FailRelay(usize),
    RunBatch(usize),
    Deliver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..5usize).prop_map(Op::Attach),
        1 => any::<usize>().prop_map(Op::Detach),
        3 => (any::<usize>(), 0..5usize).prop_map(|(e, a)| Op::Invite(e, a)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(e, c)| Op::Accept(e, c)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(e, c)| Op::Reject(e, c)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(e, c)| Op::Cancel(e, c)),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(e, c)| Op::Hangup(e, c)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(e, c)| Op::Negotiate(e, c)),
        1 => (0..40_000u64).prop_map(Op::Advance),
        2 => (0..5usize).prop_map(Op::FailRelay),
        3 => any::<usize>().prop_map(Op::RunBatch),
        4 => any::<usize>().prop_map(Op::Deliver),
    ]
}

#[derive(Default)]
struct Observer {
    /// Attached endpoints, in the order they attached (ids are random: a set would order
    /// them randomly, and the fixed interleavings below pick endpoints by index).
    attached: Vec<EndpointId>,
    /// (call, endpoint) that were rung → told or excused?
    rung: BTreeMap<(CallId, EndpointId), bool>,
    callers: HashMap<CallId, EndpointId>,
    answerer: HashMap<CallId, EndpointId>,
    media: HashMap<CallId, BTreeSet<EndpointId>>,
    ended_for: BTreeSet<(CallId, EndpointId)>,
    calls: Vec<CallId>,
}

impl Observer {
    fn drain(&mut self, core: &mut CallCore) {
        let active = core.active_sessions();
        while let Some(out) = core.poll_output() {
            assert!(
                self.attached.contains(&out.to),
                "message to a detached endpoint: {out:?}"
            );
            let to = out.to.clone();
            match out.msg {
                ServerMsg::IncomingCall { call_id, .. } => {
                    assert!(
                        self.rung.insert((call_id, to), false).is_none(),
                        "rung twice"
                    );
                }
                ServerMsg::Ringing { call_id, .. } => {
                    self.callers.insert(call_id.clone(), to);
                    self.calls.push(call_id);
                }
                ServerMsg::Accepted { call_id, by, .. } => {
                    assert_eq!(self.callers.get(&call_id), Some(&to));
                    assert_eq!(
                        self.rung.get(&(call_id.clone(), by.clone())),
                        Some(&false),
                        "answerer was ringing"
                    );
                    assert!(self.answerer.insert(call_id, by).is_none(), "two answerers");
                }
                ServerMsg::AnsweredElsewhere { call_id } => {
                    assert_ne!(self.answerer.get(&call_id), Some(&to));
                    let told = self.rung.get_mut(&(call_id, to)).expect("was rung");
                    assert!(!*told);
                    *told = true;
                }
                ServerMsg::Media { call_id, .. } => {
                    let ok = self.callers.get(&call_id) == Some(&to)
                        || self.answerer.get(&call_id) == Some(&to);
                    assert!(ok, "media to an endpoint that takes no part");
                    assert!(
                        active.contains_key(&call_id),
                        "media before every relay operation of the call succeeded"
                    );
                    let set = self.media.entry(call_id).or_default();
                    assert!(set.insert(to));
                    assert!(set.len() <= 2);
                }
                ServerMsg::CallEnded { call_id, .. } => {
                    assert!(
                        self.ended_for.insert((call_id.clone(), to.clone())),
                        "ended twice"
                    );
                    if let Some(told) = self.rung.get_mut(&(call_id.clone(), to.clone())) {
                        // The answerer is told at the end; others must not have been told.
                        if self.answerer.get(&call_id) != Some(&to) {
                            assert!(!*told, "ended after answered_elsewhere");
                        }
                        *told = true;
                    }
                }
                _ => {}
            }
        }
    }

    fn excuse(&mut self, ep: &EndpointId) {
        for ((_, e), told) in self.rung.iter_mut() {
            if e == ep {
                *told = true;
            }
        }
    }
}

fn pick<T: Clone>(v: &[T], i: usize) -> Option<T> {
    (!v.is_empty()).then(|| v[i % v.len()].clone())
}

fn run(ops: Vec<Op>) {
    let accounts: Vec<AccountId> = (0..5).map(|_| AccountId::random()).collect();
    let partners = [PartnerId::random(), PartnerId::random()];
    // Account 4 belongs to another partner.
    let partner_of = |a: usize| partners[usize::from(a == 4)].clone();
    let mut relay = ModelRelay::default();
    let mut core = CallCore::new(
        CallConfig {
            ring_timeout: Duration::from_secs(30),
            relay_timeout: Duration::from_secs(5),
            ..CallConfig::default()
        },
        Arc::new(InMemoryDirectory::new()),
    );
    let mut now = Instant::now();
    let mut obs = Observer::default();
    let unknown = CallId::random();

    for op in ops {
        let eps: Vec<EndpointId> = obs.attached.clone();
        let call = |i: usize| pick(&obs.calls, i).unwrap_or_else(|| unknown.clone());
        match op {
            Op::Attach(a) => {
                let ep = core.attach(accounts[a].clone(), partner_of(a));
                obs.attached.push(ep);
            }
            Op::Detach(i) => {
                if let Some(ep) = pick(&eps, i) {
                    core.detach(&ep);
                    obs.drain(&mut core);
                    obs.attached.retain(|e| *e != ep);
                    obs.excuse(&ep);
                }
            }
            Op::Invite(i, a) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ =
                        core.invite(now, &ep, accounts[a].clone(), MediaKind::Audio, None, None);
                }
            }
            Op::Accept(i, c) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ = core.accept(now, &ep, &call(c), None);
                }
            }
            Op::Reject(i, c) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ = core.reject(&ep, &call(c));
                }
            }
            Op::Cancel(i, c) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ = core.cancel(&ep, &call(c));
                }
            }
            Op::Hangup(i, c) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ = core.hangup(&ep, &call(c));
                }
            }
            Op::Negotiate(i, c) => {
                if let Some(ep) = pick(&eps, i) {
                    let _ = core.negotiate(&ep, &call(c), Negotiation::Offer { sdp: "v=0".into() });
                }
            }
            Op::Advance(ms) => {
                now += Duration::from_millis(ms);
                if core.poll_timeout().is_some_and(|t| t <= now) {
                    core.handle_timeout(now);
                }
            }
            Op::FailRelay(n) => relay.fail_in = Some(n),
            Op::RunBatch(i) => relay.run_batch(i),
            Op::Deliver(i) => relay.deliver(i, &mut core),
        }
        while let Some(b) = core.poll_relay() {
            relay.submit(&core, b);
        }
        obs.drain(&mut core);
        // An answered call's session is live at the relay with both its transports.
        for (call, session) in core.active_sessions() {
            let t = relay.live.get(&session);
            assert!(
                t.is_some_and(|t| t.len() == 2),
                "{call} is answered without its transports at the relay"
            );
        }
        // Every account is in at most one call, and the cross-partner account in none.
        assert!(core.call_of(&accounts[4]).is_none());
    }

    // The relay catches up, time runs out for every ringing or connecting call.
    relay.settle(&mut core, &mut obs);
    now += Duration::from_secs(3600);
    core.handle_timeout(now);
    relay.settle(&mut core, &mut obs);
    // Nothing rings any more: every rung endpoint has been told, except the answerer of a
    // call still in progress (or one that left while it was live).
    for ((call, ep), told) in &obs.rung {
        assert!(
            *told || core.answerer(call) == Some(ep.clone()),
            "endpoint {ep} was rung for {call} and never told"
        );
    }
    for ep in obs.attached.clone() {
        core.detach(&ep);
        obs.drain(&mut core);
        obs.attached.retain(|e| *e != ep);
        obs.excuse(&ep);
        relay.settle(&mut core, &mut obs);
    }
    assert_eq!(core.call_count(), 0);
    assert_eq!(core.endpoint_count(), 0);
    assert_eq!(core.outstanding_ops(), 0);
    assert!(
        core.unreleased_sessions().is_empty(),
        "sessions never released"
    );
    assert!(relay.live.is_empty(), "left at the relay: {:?}", relay.live);
    assert_eq!(relay.creates, relay.releases, "every session released once");
    let books = core.relay_books();
    assert_eq!(books.sessions_created, books.sessions_released);
    assert_eq!(books.unknown_results, 0);
    for ((call, ep), told) in &obs.rung {
        assert!(told, "endpoint {ep} was rung for {call} and never told");
    }
}

/// Like `run`, but ringing endpoints are told before anyone leaves: checks the "told"
/// invariant without the excuse of leaving.
fn run_then_time_out(ops: Vec<Op>) {
    let ops: Vec<Op> = ops
        .into_iter()
        .filter(|o| !matches!(o, Op::Detach(_)))
        .collect();
    run(ops);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_invariants(ops in proptest::collection::vec(op(), 1..150)) {
        run(ops);
    }

    #[test]
    fn without_disconnects_every_rung_endpoint_is_told(ops in proptest::collection::vec(op(), 1..150)) {
        run_then_time_out(ops);
    }
}

#[test]
fn two_tabs_one_accept() {
    // A fixed interleaving, for readability: bob has two tabs, the second accept is refused
    // (also while the first one's transports are being set up).
    run(vec![
        Op::Attach(0),
        Op::Attach(1),
        Op::Attach(1),
        Op::Invite(0, 1),
        Op::Accept(1, 0),
        Op::Accept(2, 0),
        Op::RunBatch(0),
        Op::Deliver(3),
        Op::Deliver(1),
        Op::Deliver(4),
        Op::Deliver(0),
        Op::Deliver(0),
        Op::Accept(2, 0),
        Op::Hangup(0, 0),
    ]);
}

#[test]
fn a_failed_allocation_fails_its_call_and_is_released() {
    run(vec![
        Op::Attach(0),
        Op::Attach(1),
        Op::Invite(0, 1),
        Op::Accept(1, 0),
        // The session is created, then a transport fails.
        Op::FailRelay(1),
        Op::RunBatch(0),
        Op::Deliver(1),
        Op::Deliver(0),
    ]);
}

#[test]
fn a_late_allocation_times_out_then_is_released() {
    run(vec![
        Op::Attach(0),
        Op::Attach(1),
        Op::Attach(2),
        Op::Attach(3),
        Op::Invite(0, 1),
        Op::Invite(2, 3),
        Op::Accept(1, 0),
        // Past the relay timeout: the call ends `relay_failure` before any result.
        Op::Advance(6_000),
        Op::Accept(3, 1),
        Op::RunBatch(0),
        Op::RunBatch(0),
        Op::Deliver(7),
        Op::Deliver(2),
    ]);
}
