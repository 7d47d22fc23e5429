//! The relay inside the host: [`HostRelay`] owns the relay's workers, executes the relay
//! operations of the conference core ([`supernode_proto::relay_ops`]) with them, and keeps
//! the books the rest of the host needs (which session belongs to which call or relay-REST
//! owner, totals of released legs for `/metrics`, the draining flag).
//!
//! Drive it: [`HostRelay::start`] with the relay configuration; hand
//! [`RelayExecutor`]`(host)` to [`supernode_signaling::Signaling::new`] as the relay: the
//! signaling hub submits batches of operations to it without blocking, each batch runs in
//! order on a blocking thread ([`HostRelay::execute`]: socket binds, worker round trips) and
//! the results go back over a oneshot. Call [`HostRelay::pump_events`] now and then (the host
//! does it once a second) so idle-freed legs are forgotten and logged;
//! [`HostRelay::set_draining`] on SIGTERM makes every new session fail with
//! [`RelayOpError::Draining`] (a call answered then ends with `relay_failure`).
//!
//! Every client transport gets two own-port, latching SRTP legs (the profile the operation
//! names, one fresh random master key and salt per transport, the same in both
//! directions): the *audio* leg whose address signaling hands out, and a *video* companion
//! leg at the same IP and the audio port + 1. The relay carries one RTP stream (one SSRC)
//! per leg, so an endpoint that sends video to the companion (`edge --video-port-offset 1`)
//! gets audio and video through; one that sends both to the audio address gets only the
//! first stream it sent. Adjacent ports are retried a few times; when the range cannot give
//! them, the transport gets an audio leg only (logged). A `Subscribe` connects the audio
//! legs (and the companions) one way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rand::RngCore;
use supernode_proto::SrtpProfile as WireProfile;
use supernode_proto::ids::{CallId, RelaySessionId, TransportId};
use supernode_proto::protocol::SrtpKeying;
use supernode_proto::relay_ops::{
    AddTransport, RelayOp, RelayOpError, RelayOutcome, RelayResult, TransportGrant, TransportKind,
};
use supernode_relay::core::{DropReason, LegSrtpKeys, LegStats, SrtpKey, SrtpProfile};
use supernode_relay::{LegInfo, LegRequest, Relay, RelayConfig, RelayError, RelayEvent, SessionId};
use supernode_signaling::relay_access::{RelayAccess, RelayReply};

/// Who a relay session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A signaled call.
    Call(CallId),
    /// A relay REST session of this partner (`prt_…`).
    Rest(String),
}

/// Traffic counters summed over legs (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Accepted RTP and RTCP packets received from peers.
    pub packets_in: u64,
    /// Bytes of accepted datagrams.
    pub bytes_in: u64,
    /// Datagrams forwarded toward peers.
    pub packets_out: u64,
    /// Bytes forwarded toward peers.
    pub bytes_out: u64,
    /// Drops by reason (indexed like [`DropReason::ALL`]).
    pub drops: [u64; DropReason::COUNT],
}

impl Totals {
    /// One leg's counters.
    pub fn of(s: &LegStats) -> Self {
        let c = &s.counters;
        let mut drops = [0; DropReason::COUNT];
        for (t, d) in drops.iter_mut().zip(c.drops.iter()) {
            *t = *d;
        }
        Self {
            packets_in: c.rtp_in + c.rtcp_in,
            bytes_in: c.bytes_in,
            packets_out: c.packets_out,
            bytes_out: c.bytes_out,
            drops,
        }
    }

    /// Adds other counters to these.
    pub fn add(&mut self, o: &Totals) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        for (t, d) in self.drops.iter_mut().zip(o.drops.iter()) {
            *t += d;
        }
    }
}

/// The books behind the `/metrics` counters, kept so that they never decrease.
///
/// Invariant: the totals reported are `retired + Σ seen`. A live leg's entry in `seen` only
/// grows (it is replaced by fresher counters of the same leg, which the relay only
/// increments); a leg that is released or freed by the idle timeout moves its entry from
/// `seen` into `retired`, which leaves the sum unchanged. A released leg is read just
/// before it is removed, and the relay reports an idle leg's final counters with its
/// `LegIdle` event, so nothing it carried is lost, and nothing counted is ever taken back.
#[derive(Debug, Default)]
struct Books {
    /// Legs released or freed, summed.
    retired: Totals,
    /// The last counters seen of each leg not yet retired.
    seen: HashMap<supernode_relay::LegId, Totals>,
}

impl Books {
    fn observe(&mut self, leg: supernode_relay::LegId, counters: Totals) {
        self.seen.insert(leg, counters);
    }

    fn retire(&mut self, leg: supernode_relay::LegId) {
        if let Some(t) = self.seen.remove(&leg) {
            self.retired.add(&t);
        }
    }

    fn totals(&self) -> Totals {
        let mut t = self.retired.clone();
        for s in self.seen.values() {
            t.add(s);
        }
        t
    }
}

/// Attempts at finding adjacent audio/video ports before giving a call audio legs only.
const ADJACENT_TRIES: usize = 8;

/// The relay as the host runs it.
pub struct HostRelay {
    relay: Relay,
    sessions: Mutex<HashMap<SessionId, Owner>>,
    calls: Mutex<HashMap<RelaySessionId, CallSession>>,
    books: Mutex<Books>,
    draining: AtomicBool,
    refused: AtomicU64,
    idle_freed: AtomicU64,
}

impl HostRelay {
    /// Starts the relay's workers.
    pub fn start(cfg: RelayConfig) -> Result<Self, RelayError> {
        Ok(Self {
            relay: Relay::start(cfg)?,
            sessions: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            books: Mutex::new(Books::default()),
            draining: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            idle_freed: AtomicU64::new(0),
        })
    }

    /// The relay's control handle.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Stops (or resumes) taking new sessions.
    pub fn set_draining(&self, on: bool) {
        self.draining.store(on, Ordering::SeqCst);
    }

    /// Whether new sessions are refused.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Allocations refused so far (draining, exhausted, relay errors).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Legs freed by the idle timeout so far.
    pub fn idle_freed(&self) -> u64 {
        self.idle_freed.load(Ordering::Relaxed)
    }

    /// Creates a session of `legs` for `owner`; on error nothing stays allocated.
    pub fn create(
        &self,
        owner: Owner,
        legs: Vec<LegRequest>,
    ) -> Result<(SessionId, Vec<LegInfo>), RelayOpError> {
        if self.is_draining() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RelayOpError::Draining);
        }
        let (session, infos) = self.relay.create_session(legs).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            op_err(e)
        })?;
        lock(&self.sessions).insert(session, owner);
        Ok((session, infos))
    }

    /// The owner of a live session.
    pub fn owner(&self, session: SessionId) -> Option<Owner> {
        lock(&self.sessions).get(&session).cloned()
    }

    /// Releases a session, keeping its legs' counters in the totals. Unknown: `false`.
    pub fn release_session(&self, session: SessionId) -> bool {
        if lock(&self.sessions).remove(&session).is_none() {
            return false;
        }
        let mut books = lock(&self.books);
        let legs = self.relay.session_legs(session).unwrap_or_default();
        for &leg in &legs {
            if let Ok(s) = self.relay.leg_stats(leg) {
                books.observe(leg, Totals::of(&s));
            }
        }
        if let Err(e) = self.relay.release_session(session) {
            // Its legs were all freed by the idle timeout already.
            tracing::debug!(session = session.0, error = %e, "release of a gone session");
        }
        for leg in legs {
            books.retire(leg);
        }
        true
    }

    /// The legs of a live session and their statistics.
    pub fn session_stats(
        &self,
        session: SessionId,
    ) -> Option<Vec<(supernode_relay::LegId, Option<LegStats>)>> {
        if !lock(&self.sessions).contains_key(&session) {
            return None;
        }
        let legs = self.relay.session_legs(session).ok()?;
        Some(
            legs.into_iter()
                .map(|l| (l, self.relay.leg_stats(l).ok()))
                .collect(),
        )
    }

    /// Every live leg's statistics, and the traffic totals of every leg ever allocated
    /// (live, released and idle-freed): each total is at least what any earlier snapshot
    /// gave, so they can be exposed as Prometheus counters.
    pub fn snapshot(&self) -> (Vec<LegStats>, Totals) {
        let sessions: Vec<SessionId> = lock(&self.sessions).keys().copied().collect();
        let mut books = lock(&self.books);
        let mut out = Vec::new();
        for s in sessions {
            for leg in self.relay.session_legs(s).unwrap_or_default() {
                if let Ok(st) = self.relay.leg_stats(leg) {
                    books.observe(leg, Totals::of(&st));
                    out.push(st);
                }
            }
        }
        (out, books.totals())
    }

    /// Applies the relay's events: logs latching, retires the counters of legs freed by the
    /// idle timeout into the totals, forgets sessions whose legs were all freed.
    pub fn pump_events(&self) {
        while let Some(ev) = self.relay.poll_event() {
            match ev {
                RelayEvent::Latched { leg, addr } => {
                    tracing::debug!(leg = leg.0, %addr, "leg latched");
                }
                RelayEvent::LegIdle {
                    leg,
                    session,
                    stats,
                } => {
                    // The counters at the moment it was freed: nothing it carried since the
                    // last scrape is lost.
                    let mut books = lock(&self.books);
                    books.observe(leg, Totals::of(&stats));
                    books.retire(leg);
                    drop(books);
                    self.idle_freed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(leg = leg.0, session = session.0, "idle leg freed");
                    if self.relay.session_legs(session).is_err() {
                        lock(&self.sessions).remove(&session);
                    }
                }
                _ => {}
            }
        }
    }

    /// Sessions the host knows to be live.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The relay-side state of one session the conference core asked for.
#[derive(Debug, Default)]
struct CallSession {
    /// The relay's session.
    session: Option<SessionId>,
    /// Each transport's audio leg and video companion.
    transports: HashMap<TransportId, (supernode_relay::LegId, Option<supernode_relay::LegId>)>,
}

/// Fresh SRTP keys (key ‖ salt) for one transport, in the relay's and the wire's form.
fn fresh_keys(profile: WireProfile) -> Result<(SrtpKeying, LegSrtpKeys), RelayOpError> {
    let relay_profile = match profile {
        WireProfile::Aes128CmHmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        WireProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        #[allow(unreachable_patterns)]
        other => {
            return Err(RelayOpError::Unavailable(format!(
                "SRTP profile {other} is not supported by this relay"
            )));
        }
    };
    let mut k = vec![0u8; profile.key_and_salt_len()];
    rand::rng().fill_bytes(&mut k);
    let key = SrtpKey {
        profile: relay_profile,
        master_key: k[..profile.key_len()].to_vec(),
        master_salt: k[profile.key_len()..].to_vec(),
    };
    Ok((
        SrtpKeying {
            profile,
            key_b64: base64::engine::general_purpose::STANDARD.encode(&k),
        },
        LegSrtpKeys {
            inbound: key.clone(),
            outbound: key,
        },
    ))
}

fn op_err(e: RelayError) -> RelayOpError {
    match e {
        RelayError::PortsExhausted => RelayOpError::Exhausted,
        RelayError::UnknownSession(_) => RelayOpError::UnknownSession,
        RelayError::UnknownLeg(_) => RelayOpError::UnknownTransport,
        other => RelayOpError::Unavailable(other.to_string()),
    }
}

impl HostRelay {
    /// Runs a batch of relay operations in order and answers each (blocking: socket binds
    /// and worker round trips; [`RelayExecutor`] runs it on a blocking thread).
    pub fn execute(&self, ops: Vec<RelayOp>) -> Vec<RelayResult> {
        ops.into_iter()
            .map(|op| {
                let id = op.id().clone();
                let outcome = self.execute_one(op);
                if let Err(e) = &outcome {
                    tracing::debug!(op = %id, error = %e, "relay operation failed");
                }
                RelayResult { op: id, outcome }
            })
            .collect()
    }

    fn execute_one(&self, op: RelayOp) -> Result<RelayOutcome, RelayOpError> {
        match op {
            RelayOp::CreateSession(c) => {
                if lock(&self.calls).contains_key(&c.session) {
                    return Ok(RelayOutcome::SessionCreated);
                }
                let (session, _) = self.create(Owner::Call(c.call), Vec::new())?;
                lock(&self.calls).insert(
                    c.session,
                    CallSession {
                        session: Some(session),
                        transports: HashMap::new(),
                    },
                );
                Ok(RelayOutcome::SessionCreated)
            }
            RelayOp::AddTransport(t) => self.add_transport(t).map(RelayOutcome::TransportAdded),
            RelayOp::Subscribe(s) => {
                let (source, sink) = {
                    let calls = lock(&self.calls);
                    let cs = calls.get(&s.session).ok_or(RelayOpError::UnknownSession)?;
                    let find = |t: &TransportId| {
                        cs.transports
                            .get(t)
                            .copied()
                            .ok_or(RelayOpError::UnknownTransport)
                    };
                    (find(&s.source)?, find(&s.sink)?)
                };
                self.relay.connect(source.0, sink.0).map_err(op_err)?;
                if let (Some(a), Some(b)) = (source.1, sink.1) {
                    self.relay.connect(a, b).map_err(op_err)?;
                }
                Ok(RelayOutcome::Subscribed)
            }
            RelayOp::Release(r) => {
                let cs = lock(&self.calls).remove(&r.session);
                if let Some(session) = cs.and_then(|c| c.session) {
                    self.release_session(session);
                }
                Ok(RelayOutcome::Released)
            }
            other => Err(RelayOpError::Unavailable(format!(
                "operation {} is not supported by this relay",
                other.id()
            ))),
        }
    }

    /// A client transport: an own-port latching SRTP leg and, when adjacent ports can be
    /// found, its video companion at port + 1.
    fn add_transport(&self, t: AddTransport) -> Result<TransportGrant, RelayOpError> {
        if t.kind != TransportKind::Client {
            return Err(RelayOpError::Unsupported(t.kind));
        }
        let session = lock(&self.calls)
            .get(&t.session)
            .and_then(|c| c.session)
            .ok_or(RelayOpError::UnknownSession)?;
        let (keying, legkeys) = match t.srtp {
            Some(p) => {
                let (w, k) = fresh_keys(p)?;
                (Some(w), Some(k))
            }
            None => (None, None),
        };
        let req = LegRequest {
            srtp: legkeys,
            ..LegRequest::latching()
        };
        let refused = |e: RelayError| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            op_err(e)
        };
        let mut legs = None;
        for _ in 0..ADJACENT_TRIES {
            let audio = self.relay.add_leg(session, req.clone()).map_err(refused)?;
            let video = match self.relay.add_leg(session, req.clone()) {
                Ok(v) => v,
                Err(e) => {
                    let _ = self.relay.release_leg(audio.id);
                    return Err(refused(e));
                }
            };
            if video.local.ip() == audio.local.ip()
                && Some(video.local.port()) == audio.local.port().checked_add(1)
            {
                legs = Some((audio, Some(video.id)));
                break;
            }
            let _ = self.relay.release_leg(audio.id);
            let _ = self.relay.release_leg(video.id);
        }
        let (audio, video) = match legs {
            Some(l) => l,
            None => {
                tracing::warn!(
                    transport = %t.transport,
                    "no adjacent relay ports for a video companion; audio leg only"
                );
                (self.relay.add_leg(session, req).map_err(refused)?, None)
            }
        };
        let mut calls = lock(&self.calls);
        let Some(cs) = calls.get_mut(&t.session) else {
            // Released meanwhile (another batch): give the legs back.
            drop(calls);
            let _ = self.relay.release_leg(audio.id);
            if let Some(v) = video {
                let _ = self.relay.release_leg(v);
            }
            return Err(RelayOpError::UnknownSession);
        };
        cs.transports.insert(t.transport.clone(), (audio.id, video));
        Ok(TransportGrant {
            transport: t.transport,
            address: audio.local.to_string(),
            srtp: keying,
        })
    }
}

/// The executor the signaling hub submits relay operations to: each batch runs on a
/// blocking thread of the tokio runtime (socket binds, worker round trips), never on the
/// task that submitted it; the answer comes back over the oneshot.
pub struct RelayExecutor(pub Arc<HostRelay>);

impl RelayAccess for RelayExecutor {
    fn submit(&self, ops: Vec<RelayOp>) -> RelayReply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let host = self.0.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    let _ = tx.send(host.execute(ops));
                });
            }
            Err(_) => {
                let _ = tx.send(host.execute(ops));
            }
        }
        rx
    }

    fn accepting_calls(&self) -> bool {
        !self.0.is_draining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(base: u16) -> HostRelay {
        HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (base, base + 39),
            shared_port: None,
            ..RelayConfig::default()
        })
        .unwrap()
    }

    use supernode_proto::ids::OperationId;

    /// The profile the conference core asks for (its default).
    const CALL_SRTP_PROFILE: WireProfile = WireProfile::Aes128CmHmacSha1_80;
    use supernode_proto::relay_ops::{CreateSession, Release, Subscribe};

    /// The operations of a 1:1 call, as the conference core emits them.
    fn call_ops(session: &RelaySessionId, a: &TransportId, b: &TransportId) -> Vec<RelayOp> {
        let add = |t: &TransportId| {
            RelayOp::AddTransport(AddTransport {
                op: OperationId::random(),
                session: session.clone(),
                transport: t.clone(),
                kind: TransportKind::Client,
                srtp: Some(CALL_SRTP_PROFILE),
            })
        };
        let sub = |x: &TransportId, y: &TransportId| {
            RelayOp::Subscribe(Subscribe {
                op: OperationId::random(),
                session: session.clone(),
                source: x.clone(),
                sink: y.clone(),
            })
        };
        vec![
            RelayOp::CreateSession(CreateSession {
                op: OperationId::random(),
                session: session.clone(),
                call: CallId::random(),
            }),
            add(a),
            add(b),
            sub(a, b),
            sub(b, a),
        ]
    }

    fn release(session: &RelaySessionId) -> Vec<RelayOp> {
        vec![RelayOp::Release(Release {
            op: OperationId::random(),
            session: session.clone(),
        })]
    }

    fn grants(results: &[RelayResult]) -> Vec<TransportGrant> {
        results
            .iter()
            .filter_map(|r| match &r.outcome {
                Ok(RelayOutcome::TransportAdded(g)) => Some(g.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_call_gets_audio_legs_with_video_companions_and_release_frees_all() {
        let h = host(21_000 + (std::process::id() % 50) as u16 * 40);
        let (s, a, b) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let ops = call_ops(&s, &a, &b);
        let ids: Vec<_> = ops.iter().map(|o| o.id().clone()).collect();
        let results = h.execute(ops);
        assert_eq!(
            results.iter().map(|r| r.op.clone()).collect::<Vec<_>>(),
            ids
        );
        assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
        let grants = grants(&results);
        assert_eq!(grants.len(), 2);
        assert_eq!((&grants[0].transport, &grants[1].transport), (&a, &b));
        // Two legs per endpoint: audio (granted) and video at port + 1.
        assert_eq!(h.relay().leg_count(), 4);
        for g in &grants {
            let k = g.srtp.as_ref().unwrap();
            assert_eq!(k.profile, CALL_SRTP_PROFILE);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&k.key_b64)
                .unwrap();
            assert_eq!(raw.len(), 30);
        }
        assert_ne!(grants[0].srtp, grants[1].srtp);
        let legs: Vec<_> = lock(&h.calls)[&s].transports.values().copied().collect();
        for (a, v) in &legs {
            let v = v.expect("a video companion");
            let stats_a = h.relay().leg_stats(*a).unwrap();
            let stats_v = h.relay().leg_stats(v).unwrap();
            assert!(stats_a.peer.is_none() && stats_v.peer.is_none());
        }
        let port = |g: &TransportGrant| g.address.parse::<std::net::SocketAddr>().unwrap().port();
        assert_eq!(
            port(&grants[0]) + 2,
            port(&grants[1]),
            "fresh range: audio, video, audio, video"
        );
        // Operations on an unknown session or transport fail with typed errors.
        let other = RelaySessionId::random();
        let bad = h.execute(call_ops(&other, &a, &b)[1..].to_vec());
        assert!(
            bad.iter()
                .all(|r| r.outcome == Err(RelayOpError::UnknownSession)),
            "{bad:?}"
        );
        let mut sub = call_ops(&s, &a, &TransportId::random());
        let bad = h.execute(vec![sub.remove(3)]);
        assert_eq!(bad[0].outcome, Err(RelayOpError::UnknownTransport));
        assert_eq!(h.session_count(), 1);
        let r = h.execute(release(&s));
        assert_eq!(r[0].outcome, Ok(RelayOutcome::Released));
        assert_eq!(h.relay().leg_count(), 0);
        assert_eq!(h.session_count(), 0);
        // Releasing again (or an unknown session) is a no-op that succeeds.
        assert_eq!(
            h.execute(release(&s))[0].outcome,
            Ok(RelayOutcome::Released)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_executor_answers_over_the_oneshot_without_blocking_the_caller() {
        let h = Arc::new(host(29_000 + (std::process::id() % 50) as u16 * 40));
        let exec = RelayExecutor(h.clone());
        let (s, a, b) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let reply = exec.submit(call_ops(&s, &a, &b));
        let results = reply.await.unwrap();
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
        assert_eq!(h.relay().leg_count(), 4);
        exec.submit(release(&s)).await.unwrap();
        assert_eq!(h.relay().leg_count(), 0);
        assert!(exec.accepting_calls());
        h.set_draining(true);
        assert!(!exec.accepting_calls());
    }

    #[test]
    fn books_move_counts_from_live_to_retired_without_losing_or_doubling() {
        let t = |n: u64| Totals {
            packets_in: n,
            bytes_in: 100 * n,
            packets_out: 2 * n,
            bytes_out: 200 * n,
            drops: [n; DropReason::COUNT],
        };
        let (l1, l2) = (supernode_relay::LegId(1), supernode_relay::LegId(2));
        let mut b = Books::default();
        b.observe(l1, t(5));
        b.observe(l2, t(3));
        assert_eq!(b.totals(), t(8));
        b.observe(l1, t(7));
        assert_eq!(b.totals(), t(10));
        // Freed: its last counts stay, once.
        b.retire(l1);
        assert_eq!(b.totals(), t(10));
        b.retire(l1);
        assert_eq!(b.totals(), t(10));
        b.retire(supernode_relay::LegId(99));
        assert_eq!(b.totals(), t(10));
        b.observe(l2, t(4));
        b.retire(l2);
        assert_eq!(b.totals(), t(11));
        assert_eq!(b.retired, t(11));
        assert!(b.seen.is_empty());
    }

    #[test]
    fn totals_do_not_fall_when_idle_legs_are_freed() {
        let base = 27_000 + (std::process::id() % 50) as u16 * 40;
        let mut cfg = RelayConfig {
            workers: 1,
            port_range: (base, base + 39),
            shared_port: None,
            ..RelayConfig::default()
        };
        cfg.core.idle_timeout = std::time::Duration::from_millis(300);
        let h = HostRelay::start(cfg).unwrap();
        let (session, infos) = h
            .create(
                Owner::Rest("prt_x".into()),
                vec![LegRequest::latching(), LegRequest::latching()],
            )
            .unwrap();
        let ids: Vec<_> = infos.iter().map(|l| l.id).collect();
        h.relay().connect_all(&ids).unwrap();
        let socks: Vec<_> = (0..2)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
                s
            })
            .collect();
        let rtp = |ssrc: u8, seq: u16| {
            let mut p = vec![0x80, 96];
            p.extend(seq.to_be_bytes());
            p.extend([0, 0, 0, 0, 0, 0, 0, ssrc, 9, 9, 9, 9]);
            p
        };
        // Leg 1 latches to socket 1, then socket 0's packets reach socket 1 through leg 1.
        socks[1].send_to(&rtp(2, 0), infos[1].local).unwrap();
        let mut got = 0;
        let mut buf = [0u8; 1500];
        for seq in 0..5 {
            socks[0].send_to(&rtp(1, seq), infos[0].local).unwrap();
            let (n, from) = socks[1].recv_from(&mut buf).unwrap();
            assert_eq!(from, infos[1].local);
            got += usize::from(n == 16);
        }
        assert!(got >= 1, "nothing forwarded");
        let (live, before) = h.snapshot();
        assert_eq!(live.len(), 2);
        assert_eq!(before.packets_in, 6);
        assert!(before.packets_out >= got as u64);
        assert_eq!(h.session_stats(session).map(|v| v.len()), Some(2));

        // Silence: both legs are freed by the idle timeout.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while h.relay().leg_count() > 0 || h.session_count() > 0 {
            assert!(std::time::Instant::now() < end, "legs were not freed");
            h.pump_events();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(h.idle_freed(), 2);
        let (live, after) = h.snapshot();
        assert!(live.is_empty());
        assert!(
            after.packets_in >= before.packets_in,
            "{after:?} < {before:?}"
        );
        assert!(after.bytes_in >= before.bytes_in);
        assert!(after.packets_out >= before.packets_out);
        assert!(after.bytes_out >= before.bytes_out);
        for (a, b) in after.drops.iter().zip(before.drops.iter()) {
            assert!(a >= b);
        }
        // Releasing the gone session afterwards does not count anything twice.
        assert!(!h.release_session(session));
        assert_eq!(h.snapshot().1, after);
    }

    #[test]
    fn draining_refuses_new_sessions() {
        let h = host(23_000 + (std::process::id() % 50) as u16 * 40);
        h.set_draining(true);
        let (s, a, b) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let r = h.execute(call_ops(&s, &a, &b));
        assert_eq!(r[0].outcome, Err(RelayOpError::Draining));
        assert!(r[1..].iter().all(|r| r.outcome.is_err()));
        assert_eq!(h.refused(), 1);
        assert_eq!(h.relay().leg_count(), 0);
        h.set_draining(false);
        let r = h.execute(call_ops(&s, &a, &b));
        assert_eq!(grants(&r).len(), 2);
    }

    #[test]
    fn a_range_without_adjacent_ports_gives_audio_legs_only() {
        // Hold every other port of a small range: no two free ports are adjacent.
        let base = 25_000 + (std::process::id() % 50) as u16 * 40;
        let held: Vec<_> = (0..8)
            .step_by(2)
            .map(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)).unwrap())
            .collect();
        let h = HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (base, base + 7),
            shared_port: None,
            ..RelayConfig::default()
        })
        .unwrap();
        let (s, a, b) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let r = h.execute(call_ops(&s, &a, &b));
        assert_eq!(grants(&r).len(), 2, "{r:?}");
        assert!(r.iter().all(|r| r.outcome.is_ok()), "{r:?}");
        assert_eq!(h.relay().leg_count(), 2, "no companions");
        h.execute(release(&s));
        assert_eq!(h.relay().leg_count(), 0);
        drop(held);
    }
}
