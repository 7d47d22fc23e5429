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
//! Every call endpoint gets **one** own-port, latching SRTP leg (a relay transport;
//! `AES_CM_128_HMAC_SHA1_80`, one fresh random master key and salt per endpoint, the same in
//! both directions) whose address signaling hands out. It carries the endpoint's audio and
//! video: the relay learns each SSRC the endpoint sends (clock rates by payload type: Opus
//! 111 at 48 kHz, H.264 96 at 90 kHz, the edge's payload types) and gives the other
//! endpoint each of them as a stream of its own. The two legs of a call are connected both
//! ways.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::RngCore;
use supernode_proto::ids::{CallId, TransportId};
use supernode_relay::core::{LegSrtpKeys, LegStats, Pt, SrtpKey, SrtpProfile};
use supernode_relay::{LegInfo, LegRequest, Relay, RelayConfig, RelayError, RelayEvent, SessionId};
use supernode_signaling::{LegGrant, LegId, RelayAccess, RelayAccessError, SrtpParams};

use crate::relay_books::Books;
pub use crate::relay_books::Totals;

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

/// The relay legs of one call: the session, and per endpoint its transport id and its one
/// leg.
#[derive(Debug, Clone)]
struct CallLegs {
    session: SessionId,
    legs: Vec<(TransportId, supernode_relay::LegId)>,
}

/// Payload types of call media and their clock rates (what the edge sends: Opus and H.264),
/// so the relay keeps each learned stream's statistics and timestamps in the right clock.
const CALL_CLOCK_RATES: [(Pt, u32); 2] = [(Pt(111), 48_000), (Pt(96), 90_000)];

/// The relay as the host runs it.
pub struct HostRelay {
    relay: Relay,
    sessions: Mutex<HashMap<SessionId, Owner>>,
    calls: Mutex<HashMap<CallId, CallLegs>>,
    books: Mutex<Books>,
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

impl HostRelay {
    /// Allocates one leg per endpoint of a call.
    fn allocate_call(
        &self,
        call: &CallId,
        count: usize,
    ) -> Result<(CallLegs, Vec<LegGrant>), RelayAccessError> {
        let mut keys = Vec::with_capacity(count);
        let mut reqs = Vec::with_capacity(count);
        for _ in 0..count {
            let (raw, legkeys) = fresh_keys();
            keys.push(raw);
            reqs.push(LegRequest {
                srtp: Some(legkeys),
                clock_rates: CALL_CLOCK_RATES.to_vec(),
                ..LegRequest::latching()
            });
        }
        let (session, infos) = self.create(Owner::Call(call.clone()), reqs)?;
        let ids: Vec<TransportId> = infos.iter().map(|_| TransportId::random()).collect();
        let grants = infos
            .iter()
            .zip(keys)
            .zip(&ids)
            .map(|((l, k), id)| LegGrant {
                leg: id.clone(),
                address: l.local,
                srtp: Some(SrtpParams {
                    profile: CALL_SRTP_PROFILE,
                    key_and_salt: k,
                }),
            })
            .collect();
        let legs = ids.into_iter().zip(infos.iter().map(|l| l.id)).collect();
        Ok((CallLegs { session, legs }, grants))
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
        let find = |id: &LegId| legs.legs.iter().find(|(t, _)| t == id).map(|(_, l)| *l);
        let (Some(a), Some(b)) = (find(a), find(b)) else {
            return Err(RelayAccessError::Unknown);
        };
        self.relay.connect_both(a, b).map_err(relay_err)
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

    /// An SRTP packet as an endpoint sends it with its granted key.
    fn srtp_rtp(
        ctx: &mut supernode_relay::core::srtp::LegSrtp,
        pt: u8,
        ssrc: u8,
        seq: u16,
    ) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend(seq.to_be_bytes());
        p.extend((u32::from(seq) * 960).to_be_bytes());
        p.extend([0, 0, 0, ssrc]);
        p.extend([7u8; 40]);
        let len = p.len();
        p.resize(len + 64, 0);
        let n = ctx.protect_rtp(&mut p, len).unwrap();
        p.truncate(n);
        p
    }

    fn endpoint_ctx(g: &LegGrant) -> supernode_relay::core::srtp::LegSrtp {
        let k = &g.srtp.as_ref().unwrap().key_and_salt;
        let key = SrtpKey {
            profile: SrtpProfile::Aes128CmHmacSha1_80,
            master_key: k[..16].to_vec(),
            master_salt: k[16..].to_vec(),
        };
        supernode_relay::core::srtp::LegSrtp::new(&LegSrtpKeys {
            inbound: key.clone(),
            outbound: key,
        })
        .unwrap()
    }

    #[test]
    fn a_call_gets_one_leg_per_endpoint_for_audio_and_video_and_release_frees_all() {
        let h = host(21_000 + (std::process::id() % 50) as u16 * 40);
        let (c7, c8) = (CallId::random(), CallId::random());
        let grants = h.allocate(&c7, 2).unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(
            h.relay().leg_count(),
            2,
            "one leg per endpoint, no companion"
        );
        for g in &grants {
            let s = g.srtp.as_ref().unwrap();
            assert_eq!(s.profile, CALL_SRTP_PROFILE);
            assert_eq!(s.key_and_salt.len(), 30);
        }
        assert_ne!(
            grants[0].srtp.as_ref().unwrap().key_and_salt,
            grants[1].srtp.as_ref().unwrap().key_and_salt
        );
        h.connect(&c7, &grants[0].leg, &grants[1].leg).unwrap();
        assert_eq!(
            h.connect(&c8, &grants[0].leg, &grants[1].leg),
            Err(RelayAccessError::Unknown)
        );
        // A sends audio (PT 111) and video (PT 96) to its one leg; B gets both streams.
        let (mut ca, mut cb) = (endpoint_ctx(&grants[0]), endpoint_ctx(&grants[1]));
        let socks: Vec<_> = (0..2)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
                    .unwrap();
                s
            })
            .collect();
        socks[1]
            .send_to(&srtp_rtp(&mut cb, 111, 0xB, 1), grants[1].address)
            .unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let legs = lock(&h.calls).get(&c7).cloned().unwrap();
        while h.relay().leg_stats(legs.legs[1].1).unwrap().peer.is_none() {
            assert!(std::time::Instant::now() < end, "B did not latch");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for seq in 0..5u16 {
            for (pt, ssrc) in [(111, 0xA1), (96, 0xA2)] {
                socks[0]
                    .send_to(&srtp_rtp(&mut ca, pt, ssrc, seq), grants[0].address)
                    .unwrap();
            }
        }
        let mut got = HashMap::<(u8, u8), usize>::new();
        let mut buf = [0u8; 1500];
        while let Ok((n, _)) = socks[1].recv_from(&mut buf) {
            if (192..=223).contains(&buf[1]) {
                continue;
            }
            let mut plain = [0u8; 1500];
            cb.unprotect_rtp(&buf[..n], &mut plain)
                .expect("B's key opens it");
            *got.entry((plain[1] & 0x7f, plain[11])).or_default() += 1;
        }
        assert_eq!(got.get(&(111, 0xA1)), Some(&5), "audio: {got:?}");
        assert_eq!(got.get(&(96, 0xA2)), Some(&5), "video: {got:?}");
        assert_eq!(h.session_count(), 1);
        h.release(&c7);
        assert_eq!(h.relay().leg_count(), 0);
        assert_eq!(h.session_count(), 0);
        // Releasing again is a no-op.
        h.release(&c7);
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
}
