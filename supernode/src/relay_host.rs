//! The relay inside the host: [`HostRelay`] owns the relay's workers, implements the
//! signaling service's [`RelayAccess`] with them, and keeps the books the rest of the host
//! needs (which session belongs to which call or relay-REST owner, totals of released legs
//! for `/metrics`, the draining flag).
//!
//! Drive it: [`HostRelay::start`] with the relay configuration; hand it to
//! [`supernode_signaling::Signaling::new`] as the relay; call [`HostRelay::pump_events`]
//! now and then (the host does it once a second) so idle-freed legs are forgotten and logged;
//! [`HostRelay::set_draining`] on SIGTERM makes every new allocation fail with
//! [`RelayAccessError::Unavailable`] (a call answered then ends with `relay_failure`).
//!
//! Every call endpoint gets two own-port, latching SRTP legs (`AES_CM_128_HMAC_SHA1_80`, one
//! fresh random master key and salt per endpoint, the same in both directions): the *audio*
//! leg whose address signaling hands out, and a *video* companion leg at the same IP and the
//! audio port + 1. The relay carries one RTP stream (one SSRC) per leg, so an endpoint that
//! sends video to the companion (`edge --video-port-offset 1`) gets audio and video through;
//! one that sends both to the audio address gets only the first stream it sent. Adjacent
//! ports are retried a few times; when the range cannot give them, the call gets audio legs
//! only (logged).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::RngCore;
use supernode_proto::ids::{CallId, TransportId};
use supernode_relay::core::{DropReason, LegSrtpKeys, LegStats, SrtpKey, SrtpProfile};
use supernode_relay::{LegInfo, LegRequest, Relay, RelayConfig, RelayError, RelayEvent, SessionId};
use supernode_signaling::{LegGrant, LegId, RelayAccess, RelayAccessError, SrtpParams};

use crate::call_quality::MosHistogram;

/// The SRTP profile every call leg uses.
pub const CALL_SRTP_PROFILE: supernode_proto::SrtpProfile =
    supernode_proto::SrtpProfile::Aes128CmHmacSha1_80;

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

/// The relay legs of one call: the session, and per endpoint its transport id, audio leg
/// and video companion (if adjacent ports were found).
#[derive(Debug, Clone)]
struct CallLegs {
    session: SessionId,
    legs: Vec<(
        TransportId,
        supernode_relay::LegId,
        Option<supernode_relay::LegId>,
    )>,
}

/// Attempts at finding adjacent audio/video ports before giving a call audio legs only.
const ADJACENT_TRIES: usize = 8;

/// The relay as the host runs it.
pub struct HostRelay {
    relay: Relay,
    sessions: Mutex<HashMap<SessionId, Owner>>,
    calls: Mutex<HashMap<CallId, CallLegs>>,
    books: Mutex<Books>,
    /// MOS estimates of ended legs (`supernode_call_mos`).
    mos: Mutex<MosHistogram>,
    /// Video companion legs of calls (not observed in `mos`).
    companions: Mutex<HashSet<supernode_relay::LegId>>,
    draining: AtomicBool,
    refused: AtomicU64,
    idle_freed: AtomicU64,
}

fn relay_err(e: RelayError) -> RelayAccessError {
    match e {
        RelayError::PortsExhausted => RelayAccessError::Exhausted,
        RelayError::UnknownLeg(_) | RelayError::UnknownSession(_) => RelayAccessError::Unknown,
        other => RelayAccessError::Unavailable(other.to_string()),
    }
}

/// Fresh SRTP keys (key ‖ salt, 30 bytes) for one leg.
fn fresh_keys() -> (Vec<u8>, LegSrtpKeys) {
    let mut k = [0u8; 30];
    rand::rng().fill_bytes(&mut k);
    let key = SrtpKey {
        profile: SrtpProfile::Aes128CmHmacSha1_80,
        master_key: k[..16].to_vec(),
        master_salt: k[16..].to_vec(),
    };
    (
        k.to_vec(),
        LegSrtpKeys {
            inbound: key.clone(),
            outbound: key,
        },
    )
}

impl HostRelay {
    /// Starts the relay's workers.
    pub fn start(cfg: RelayConfig) -> Result<Self, RelayError> {
        Ok(Self {
            relay: Relay::start(cfg)?,
            sessions: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            books: Mutex::new(Books::default()),
            mos: Mutex::new(MosHistogram::default()),
            companions: Mutex::new(HashSet::new()),
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

    /// The MOS estimates of every audio leg that has ended (see [`crate::call_quality`]).
    pub fn mos_histogram(&self) -> MosHistogram {
        lock(&self.mos).clone()
    }

    /// Observes an ending leg's MOS estimate (once: the leg is forgotten as a companion).
    fn observe_ended(&self, leg: supernode_relay::LegId, stats: &LegStats) {
        if lock(&self.companions).remove(&leg) {
            return;
        }
        if let Some(mos) = lock(&self.mos).observe_leg(stats) {
            tracing::debug!(leg = leg.0, mos, "leg ended");
        }
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
    ) -> Result<(SessionId, Vec<LegInfo>), RelayAccessError> {
        if self.is_draining() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RelayAccessError::Unavailable(
                "supernode is draining".into(),
            ));
        }
        let (session, infos) = self.relay.create_session(legs).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            relay_err(e)
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
                self.observe_ended(leg, &s);
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
                    self.observe_ended(leg, &stats);
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

impl HostRelay {
    /// Allocates `count` endpoints' legs with video companions at port + 1 when possible.
    fn allocate_call(
        &self,
        call: &CallId,
        count: usize,
    ) -> Result<(CallLegs, Vec<LegGrant>), RelayAccessError> {
        for attempt in 0..=ADJACENT_TRIES {
            let paired = attempt < ADJACENT_TRIES;
            let mut keys = Vec::with_capacity(count);
            let mut reqs = Vec::with_capacity(count * 2);
            for _ in 0..count {
                let (raw, legkeys) = fresh_keys();
                keys.push(raw);
                let req = LegRequest {
                    srtp: Some(legkeys),
                    ..LegRequest::latching()
                };
                if paired {
                    reqs.push(req.clone());
                }
                reqs.push(req);
            }
            let (session, infos) = self.create(Owner::Call(call.clone()), reqs)?;
            let legs: Vec<_> = if paired {
                let adjacent = infos.chunks(2).all(|p| {
                    p[1].local.ip() == p[0].local.ip()
                        && Some(p[1].local.port()) == p[0].local.port().checked_add(1)
                });
                if !adjacent {
                    self.release_session(session);
                    continue;
                }
                lock(&self.companions).extend(infos.chunks(2).map(|p| p[1].id));
                infos.chunks(2).map(|p| (p[0], Some(p[1].id))).collect()
            } else {
                tracing::warn!(
                    call = %call,
                    "no adjacent relay ports for video companions; audio legs only"
                );
                infos.iter().map(|l| (*l, None)).collect()
            };
            let ids: Vec<TransportId> = legs.iter().map(|_| TransportId::random()).collect();
            let grants = legs
                .iter()
                .zip(keys)
                .zip(&ids)
                .map(|(((l, _), k), id)| LegGrant {
                    leg: id.clone(),
                    address: l.local,
                    srtp: Some(SrtpParams {
                        profile: CALL_SRTP_PROFILE,
                        key_and_salt: k,
                    }),
                })
                .collect();
            let legs = legs
                .into_iter()
                .zip(ids)
                .map(|((l, v), id)| (id, l.id, v))
                .collect();
            return Ok((CallLegs { session, legs }, grants));
        }
        Err(RelayAccessError::Exhausted)
    }
}

impl RelayAccess for HostRelay {
    fn allocate(&self, call: &CallId, count: usize) -> Result<Vec<LegGrant>, RelayAccessError> {
        let (legs, grants) = self.allocate_call(call, count)?;
        if let Some(old) = lock(&self.calls).insert(call.clone(), legs) {
            self.release_session(old.session);
        }
        Ok(grants)
    }

    fn connect(&self, call: &CallId, a: &LegId, b: &LegId) -> Result<(), RelayAccessError> {
        let legs = lock(&self.calls)
            .get(call)
            .cloned()
            .ok_or(RelayAccessError::Unknown)?;
        let find = |id: &LegId| {
            legs.legs
                .iter()
                .find(|(t, _, _)| t == id)
                .map(|(_, l, v)| (*l, *v))
        };
        let (Some((a, av)), Some((b, bv))) = (find(a), find(b)) else {
            return Err(RelayAccessError::Unknown);
        };
        self.relay.connect_both(a, b).map_err(relay_err)?;
        if let (Some(av), Some(bv)) = (av, bv) {
            self.relay.connect_both(av, bv).map_err(relay_err)?;
        }
        Ok(())
    }

    fn release(&self, call: &CallId) {
        let legs = lock(&self.calls).remove(call);
        if let Some(l) = legs {
            self.release_session(l.session);
        }
    }

    fn accepting_calls(&self) -> bool {
        !self.is_draining()
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

    #[test]
    fn a_call_gets_audio_legs_with_video_companions_and_release_frees_all() {
        let h = host(21_000 + (std::process::id() % 50) as u16 * 40);
        let (c7, c8) = (CallId::random(), CallId::random());
        let grants = h.allocate(&c7, 2).unwrap();
        assert_eq!(grants.len(), 2);
        // Two legs per endpoint: audio (granted) and video at port + 1.
        assert_eq!(h.relay().leg_count(), 4);
        for g in &grants {
            let s = g.srtp.as_ref().unwrap();
            assert_eq!(s.profile, CALL_SRTP_PROFILE);
            assert_eq!(s.key_and_salt.len(), 30);
        }
        assert_ne!(
            grants[0].srtp.as_ref().unwrap().key_and_salt,
            grants[1].srtp.as_ref().unwrap().key_and_salt
        );
        let legs = lock(&h.calls).get(&c7).cloned().unwrap();
        for (_, a, v) in &legs.legs {
            let v = v.expect("a video companion");
            let stats_a = h.relay().leg_stats(*a).unwrap();
            let stats_v = h.relay().leg_stats(v).unwrap();
            assert!(stats_a.peer.is_none() && stats_v.peer.is_none());
        }
        assert_eq!(
            grants[0].address.port() + 2,
            grants[1].address.port(),
            "fresh range: audio, video, audio, video"
        );
        h.connect(&c7, &grants[0].leg, &grants[1].leg).unwrap();
        assert_eq!(
            h.connect(&c8, &grants[0].leg, &grants[1].leg),
            Err(RelayAccessError::Unknown)
        );
        assert_eq!(h.session_count(), 1);
        h.release(&c7);
        assert_eq!(h.relay().leg_count(), 0);
        assert_eq!(h.session_count(), 0);
        // Releasing again is a no-op.
        h.release(&c7);
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
        let c1 = CallId::random();
        assert!(matches!(
            h.allocate(&c1, 2),
            Err(RelayAccessError::Unavailable(_))
        ));
        assert_eq!(h.refused(), 1);
        assert_eq!(h.relay().leg_count(), 0);
        h.set_draining(false);
        assert_eq!(h.allocate(&c1, 2).unwrap().len(), 2);
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
        let c3 = CallId::random();
        let grants = h.allocate(&c3, 2).unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(h.relay().leg_count(), 2, "no companions");
        h.release(&c3);
        assert_eq!(h.relay().leg_count(), 0);
        drop(held);
    }
}
