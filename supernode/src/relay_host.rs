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
//! Every client transport gets **one** own-port, latching SRTP leg (the profile the
//! operation names, one fresh random master key and salt per transport, the same in both
//! directions) whose address signaling hands out. It carries the endpoint's audio and video:
//! the relay learns each SSRC the endpoint sends (clock rates by payload type: Opus 111 at
//! 48 kHz, H.264 96 at 90 kHz, the edge's payload types) and gives every subscribed
//! transport each of them as a stream of its own. A `Subscribe` connects two transports one
//! way.
//!
//! A **browser** transport (`AddTransport{kind: Browser, browser: Some(offer)}`) is a leg on
//! the relay's shared port: ICE-lite with a fresh ufrag/pwd, DTLS server with the relay's
//! one self-signed certificate (made at start), checked against the offer's fingerprint,
//! DTLS-SRTP keys, transport-wide congestion control feedback when the offer has the
//! extension. Its [`TransportGrant::browser`] carries what the SDP answer needs:
//! `a=ice-ufrag`, `a=ice-pwd`, `a=fingerprint:sha-256`, one host candidate (the grant's
//! `address`), `a=ice-lite` and `a=setup:passive` implied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rand::RngCore;
use supernode_proto::SrtpProfile as WireProfile;
use supernode_proto::ids::{CallId, RelaySessionId, TransportId};
use supernode_proto::protocol::SrtpKeying;
use supernode_proto::relay_ops::{
    AddTransport, BrowserGrant, BrowserOffer, DtlsFingerprint, IceCandidate, MediaKindOfLine,
    RelayOp, RelayOpError, RelayOutcome, RelayResult, TransportGrant, TransportKind,
};
use supernode_relay::core::{
    BrowserSpec, DtlsIdentity, Fingerprint, IceCredentials, LegSrtpKeys, LegStats, Pt,
    SimulcastSpec, SrtpKey, SrtpProfile,
};
use supernode_relay::{LegInfo, LegRequest, Relay, RelayConfig, RelayError, RelayEvent, SessionId};
use supernode_signaling::relay_access::{RelayAccess, RelayReply};

use crate::call_quality::MosHistogram;
use crate::conference_host::{ConferenceHostError, HostedConference};
use crate::media_threads::{MediaThreads, participant_of};
use supernode_media::conference::{ConferenceConfig, ConferenceEvent, ParticipantId};
use supernode_proto::relay_ops::{JoinConference, OpenConference};
use supernode_signaling::calls::SpeechEvent;

/// Who a relay session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A signaled call.
    Call(CallId),
    /// A relay REST session of this partner (`prt_…`).
    Rest(String),
    /// A WHIP/WHEP stream of this partner (`prt_…`): its publisher and viewers.
    Whip(String),
}

mod trunk;

use crate::relay_books::Books;
pub use crate::relay_books::Totals;

/// Payload types of call media and their clock rates (what the edge sends: Opus and H.264),
/// so the relay keeps each learned stream's statistics and timestamps in the right clock.
const CALL_CLOCK_RATES: [(Pt, u32); 2] = [(Pt(111), 48_000), (Pt(96), 90_000)];

/// The relay as the host runs it.
pub struct HostRelay {
    relay: Relay,
    sessions: Mutex<HashMap<SessionId, Owner>>,
    calls: Mutex<HashMap<RelaySessionId, CallSession>>,
    books: Mutex<Books>,
    /// MOS estimates of ended legs (`supernode_call_mos`).
    mos: Mutex<MosHistogram>,
    draining: AtomicBool,
    refused: AtomicU64,
    idle_freed: AtomicU64,
    /// The relay's DTLS certificate (browser transports), made at start.
    dtls: Arc<DtlsIdentity>,
    /// Conferences the conference core opened, by its session id.
    conferences: Mutex<HashMap<RelaySessionId, ConferenceSession>>,
    /// The media threads of conference mixers (started with the first conference).
    media: Mutex<Option<MediaThreads>>,
    /// `relay_public_ip`: announced in grants instead of the bind address.
    public_ip: Option<std::net::IpAddr>,
}

/// One conference the conference core opened: its host-side conference and each
/// participant's transport.
struct ConferenceSession {
    conf: HostedConference,
    transports: HashMap<TransportId, supernode_relay::LegId>,
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
            draining: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            idle_freed: AtomicU64::new(0),
            dtls: Arc::new(
                DtlsIdentity::generate()
                    .map_err(|e| RelayError::Io(std::io::Error::other(e.to_string())))?,
            ),
            conferences: Mutex::new(HashMap::new()),
            media: Mutex::new(None),
            public_ip: None,
        })
    }

    /// Announces `ip` (`relay_public_ip`: a host behind a NAT) instead of the bind address
    /// in call transport grants: the client's address and the browser's ICE candidate (and
    /// so its SDP answer), each at the leg's own port.
    pub fn with_public_ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.public_ip = ip;
        self
    }

    /// Where a leg bound at `local` is reached from outside (`relay_public_ip`, at the
    /// leg's port).
    pub(crate) fn announced(&self, local: std::net::SocketAddr) -> std::net::SocketAddr {
        self.public_ip
            .map_or(local, |ip| std::net::SocketAddr::new(ip, local.port()))
    }

    /// The SHA-256 fingerprint of the relay's DTLS certificate (what every browser
    /// transport's answer announces).
    pub fn dtls_fingerprint(&self) -> Fingerprint {
        self.dtls.fingerprint()
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

    /// The MOS estimates of every leg that has ended (see [`crate::call_quality`]).
    pub fn mos_histogram(&self) -> MosHistogram {
        lock(&self.mos).clone()
    }

    /// Observes an ending leg's MOS estimate.
    fn observe_ended(&self, leg: supernode_relay::LegId, stats: &LegStats) {
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

    /// Takes what the conferences' mixers said about voices since the last call, as the
    /// conference core names it (its relay session, the participants' transports). The
    /// host hands each to [`supernode_signaling::calls::hub::Hub::conference_speech`].
    pub fn take_speech(&self) -> Vec<(RelaySessionId, SpeechEvent)> {
        let confs = lock(&self.conferences);
        let mut out = Vec::new();
        for (session, cs) in confs.iter() {
            let transport_of = |p: ParticipantId| {
                cs.transports
                    .iter()
                    .find(|(_, leg)| participant_of(**leg) == p)
                    .map(|(t, _)| t.clone())
            };
            for ev in cs.conf.outlet().events.try_iter() {
                let ev = match ev {
                    ConferenceEvent::Speaking {
                        participant,
                        speaking,
                    } => match transport_of(participant) {
                        Some(transport) => SpeechEvent::Speaking {
                            transport,
                            speaking,
                        },
                        None => continue,
                    },
                    ConferenceEvent::ActiveSpeaker(p) => match p.map(transport_of) {
                        None => SpeechEvent::ActiveSpeaker(None),
                        Some(Some(t)) => SpeechEvent::ActiveSpeaker(Some(t)),
                        Some(None) => continue,
                    },
                    _ => continue,
                };
                out.push((session.clone(), ev));
            }
        }
        out
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
    /// Each transport's one leg (audio and video).
    transports: HashMap<TransportId, supernode_relay::LegId>,
}

/// The relay's SRTP profile for a wire profile.
fn relay_profile(profile: WireProfile) -> Result<SrtpProfile, RelayOpError> {
    Ok(match profile {
        WireProfile::Aes128CmHmacSha1_80 => SrtpProfile::Aes128CmHmacSha1_80,
        WireProfile::AeadAes128Gcm => SrtpProfile::AeadAes128Gcm,
        WireProfile::AeadAes256Gcm => SrtpProfile::AeadAes256Gcm,
        #[allow(unreachable_patterns)]
        other => {
            return Err(RelayOpError::Unavailable(format!(
                "SRTP profile {other} is not supported by this relay"
            )));
        }
    })
}

/// Fresh SRTP keys (key ‖ salt) for one transport, in the relay's and the wire's form.
fn fresh_keys(profile: WireProfile) -> Result<(SrtpKeying, LegSrtpKeys), RelayOpError> {
    let relay_profile = relay_profile(profile)?;
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

/// Priority of the relay's host candidate (RFC 8445 §5.1.2.1: type preference 126, local
/// preference 65535, component 1).
const HOST_CANDIDATE_PRIORITY: u32 = (126 << 24) | (65_535 << 8) | 255;

/// `n` random ICE characters (letters and digits, a subset of RFC 8839's ice-char).
fn ice_chars(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect()
}

fn conf_err(e: ConferenceHostError) -> RelayOpError {
    match e {
        ConferenceHostError::Full(n) => RelayOpError::Full(n as u32),
        ConferenceHostError::NotIn(_) => RelayOpError::UnknownTransport,
        ConferenceHostError::Relay(e) => op_err(e),
        other => RelayOpError::Unavailable(other.to_string()),
    }
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
            RelayOp::AddTrunk(t) => self.add_trunk(t).map(RelayOutcome::TrunkAdded),
            RelayOp::RekeyTrunk(t) => self.rekey_trunk(t).map(RelayOutcome::TrunkRekeyed),
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
                self.relay.connect(source, sink).map_err(op_err)?;
                Ok(RelayOutcome::Subscribed)
            }
            RelayOp::OpenConference(o) => self.open_conference(o),
            RelayOp::JoinConference(j) => self.join_conference(j),
            RelayOp::LeaveConference(l) => {
                let mut confs = lock(&self.conferences);
                let cs = confs
                    .get_mut(&l.session)
                    .ok_or(RelayOpError::UnknownSession)?;
                let leg = cs
                    .transports
                    .remove(&l.transport)
                    .ok_or(RelayOpError::UnknownTransport)?;
                if let Ok(st) = self.relay.leg_stats(leg) {
                    let mut books = lock(&self.books);
                    books.observe(leg, Totals::of(&st));
                    books.retire(leg);
                    drop(books);
                    self.observe_ended(leg, &st);
                }
                cs.conf.leave(&self.relay, leg).map_err(conf_err)?;
                Ok(RelayOutcome::Left)
            }
            RelayOp::Release(r) => {
                if let Some(cs) = lock(&self.conferences).remove(&r.session) {
                    // The legs' counters go to the books; the mixer stops when its
                    // handle drops.
                    self.release_session(cs.conf.session());
                    return Ok(RelayOutcome::Released);
                }
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

    /// A conference: a relay session with a processor transport whose far side is an audio
    /// MCU on a media thread ([`HostedConference`]).
    fn open_conference(&self, o: OpenConference) -> Result<RelayOutcome, RelayOpError> {
        if lock(&self.conferences).contains_key(&o.session) {
            return Ok(RelayOutcome::SessionCreated);
        }
        if self.is_draining() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(RelayOpError::Draining);
        }
        let mut config = ConferenceConfig::default();
        config.mixer.max_participants = o.max_participants.max(1) as usize;
        let conf = {
            let mut media = lock(&self.media);
            if media.is_none() {
                *media = Some(
                    MediaThreads::start(1)
                        .map_err(|e| RelayOpError::Unavailable(format!("media threads: {e}")))?,
                );
            }
            let threads = media.as_mut().expect("started above");
            HostedConference::open(&self.relay, threads, config).map_err(conf_err)?
        };
        lock(&self.sessions).insert(conf.session(), Owner::Call(o.call));
        lock(&self.conferences).insert(
            o.session,
            ConferenceSession {
                conf,
                transports: HashMap::new(),
            },
        );
        Ok(RelayOutcome::SessionCreated)
    }

    /// A participant: one own-port latching SRTP leg (audio to the mixer, video SFU), or
    /// for a browser's offer a browser leg on the shared port (its video m-lines are the
    /// slots the others' videos go to, in join order).
    fn join_conference(&self, j: JoinConference) -> Result<RelayOutcome, RelayOpError> {
        let (mut keying, mut browser) = (None, None);
        let req = match &j.browser {
            Some(offer) => {
                let (req, grant) = self.browser_request(offer)?;
                browser = Some(grant);
                req
            }
            None => {
                let legkeys = match j.srtp {
                    Some(p) => {
                        let (w, k) = fresh_keys(p)?;
                        keying = Some(w);
                        Some(k)
                    }
                    None => None,
                };
                LegRequest {
                    srtp: legkeys,
                    clock_rates: CALL_CLOCK_RATES.to_vec(),
                    ..LegRequest::latching()
                }
            }
        };
        let mut confs = lock(&self.conferences);
        let cs = confs
            .get_mut(&j.session)
            .ok_or(RelayOpError::UnknownSession)?;
        let info = cs.conf.join(&self.relay, req).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            conf_err(e)
        })?;
        cs.transports.insert(j.transport.clone(), info.id);
        let address = self.announced(info.local);
        if let Some(b) = browser.as_mut() {
            b.candidates = host_candidates(address);
        }
        Ok(RelayOutcome::TransportAdded(TransportGrant {
            transport: j.transport,
            address: address.to_string(),
            srtp: keying,
            browser,
        }))
    }

    /// A client transport: one own-port latching SRTP leg for the endpoint's audio and
    /// video.
    fn add_transport(&self, t: AddTransport) -> Result<TransportGrant, RelayOpError> {
        if !matches!(t.kind, TransportKind::Client | TransportKind::Browser) {
            return Err(RelayOpError::Unsupported(t.kind));
        }
        let session = lock(&self.calls)
            .get(&t.session)
            .and_then(|c| c.session)
            .ok_or(RelayOpError::UnknownSession)?;
        let (mut keying, mut browser) = (None, None);
        let req = if t.kind == TransportKind::Browser {
            let offer = t.browser.as_ref().ok_or_else(|| {
                RelayOpError::BadRequest(
                    "a browser transport needs the offer's ICE ufrag and DTLS fingerprint".into(),
                )
            })?;
            let (req, grant) = self.browser_request(offer)?;
            browser = Some(grant);
            req
        } else {
            let legkeys = match t.srtp {
                Some(p) => {
                    let (w, k) = fresh_keys(p)?;
                    keying = Some(w);
                    Some(k)
                }
                None => None,
            };
            LegRequest {
                srtp: legkeys,
                clock_rates: CALL_CLOCK_RATES.to_vec(),
                ..LegRequest::latching()
            }
        };
        let leg = self.relay.add_leg(session, req).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            op_err(e)
        })?;
        let mut calls = lock(&self.calls);
        let Some(cs) = calls.get_mut(&t.session) else {
            // Released meanwhile (another batch): give the leg back.
            drop(calls);
            let _ = self.relay.release_leg(leg.id);
            return Err(RelayOpError::UnknownSession);
        };
        cs.transports.insert(t.transport.clone(), leg.id);
        let address = self.announced(leg.local).to_string();
        if let Some(b) = browser.as_mut() {
            b.candidates = host_candidates(self.announced(leg.local));
        }
        Ok(TransportGrant {
            transport: t.transport,
            address,
            srtp: keying,
            browser,
        })
    }

    /// The leg request of a browser transport and its grant (candidates filled in once the
    /// leg has an address): fresh ICE credentials, the offer's fingerprint, TWCC id and
    /// clock rates.
    fn browser_request(
        &self,
        offer: &BrowserOffer,
    ) -> Result<(LegRequest, BrowserGrant), RelayOpError> {
        let fingerprint =
            Fingerprint::parse(&offer.fingerprint.algorithm, &offer.fingerprint.value)
                .map_err(|e| RelayOpError::BadRequest(e.to_string()))?;
        if offer.ice_ufrag.is_empty() || offer.ice_ufrag.len() > 256 {
            return Err(RelayOpError::BadRequest("bad ICE ufrag".into()));
        }
        let ice = IceCredentials {
            local_ufrag: ice_chars(8),
            local_pwd: ice_chars(24),
        };
        let clock_rates = if offer.clock_rates.is_empty() {
            CALL_CLOCK_RATES.to_vec()
        } else {
            offer
                .clock_rates
                .iter()
                .map(|&(pt, hz)| (Pt(pt), hz))
                .collect()
        };
        let grant = BrowserGrant {
            ice_ufrag: ice.local_ufrag.clone(),
            ice_pwd: ice.local_pwd.clone(),
            fingerprint: DtlsFingerprint {
                algorithm: "sha-256".into(),
                value: self.dtls.fingerprint().to_sdp(),
            },
            candidates: Vec::new(),
        };
        let spec = BrowserSpec {
            identity: self.dtls.clone(),
            remote_fingerprint: fingerprint,
            remote_ufrag: Some(offer.ice_ufrag.clone()),
            twcc_extension_id: offer.twcc_extension_id,
            mid_extension_id: offer.mid_extension_id,
            receive_mids: offer
                .send
                .iter()
                .filter_map(|s| {
                    let clock = match s.kind {
                        MediaKindOfLine::Audio => 48_000,
                        MediaKindOfLine::Video => 90_000,
                    };
                    Some((clock, s.mid.clone()?))
                })
                .collect(),
            simulcast: offer.simulcast.as_ref().map(|s| SimulcastSpec {
                rid_extension_id: s.rid_extension_id,
                repaired_rid_extension_id: s.repaired_rid_extension_id,
                rids: s.rids.clone(),
            }),
        };
        Ok((LegRequest::browser(ice, spec, clock_rates), grant))
    }
}

impl HostRelay {
    /// Adds a browser transport for `offer` to relay session `session` (a WHIP publisher or
    /// WHEP viewer): a leg on the shared port with fresh ICE-lite credentials, the relay's
    /// DTLS certificate and the offer's fingerprint; the grant carries the host candidate.
    pub fn add_browser_leg(
        &self,
        session: SessionId,
        offer: &BrowserOffer,
    ) -> Result<(LegInfo, BrowserGrant), RelayOpError> {
        let (req, mut grant) = self.browser_request(offer)?;
        let leg = self.relay.add_leg(session, req).map_err(|e| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            op_err(e)
        })?;
        grant.candidates = host_candidates(self.announced(leg.local));
        Ok((leg, grant))
    }

    /// Releases one leg of a live session, keeping its counters in the totals. Unknown (or
    /// freed by the idle timeout): `false`.
    pub fn release_leg(&self, leg: supernode_relay::LegId) -> bool {
        let stats = self.relay.leg_stats(leg).ok();
        if let Some(s) = &stats {
            lock(&self.books).observe(leg, Totals::of(s));
            self.observe_ended(leg, s);
        }
        let freed = self.relay.release_leg(leg).is_ok();
        lock(&self.books).retire(leg);
        freed && stats.is_some()
    }
}

/// The one host candidate of a browser leg: its local address.
/// The one host candidate of a browser leg: the address it is reached at (`relay_public_ip`
/// when set, at the leg's port).
fn host_candidates(address: std::net::SocketAddr) -> Vec<IceCandidate> {
    vec![IceCandidate {
        foundation: "1".into(),
        priority: HOST_CANDIDATE_PRIORITY,
        address: address.to_string(),
    }]
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
                browser: None,
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

    /// `relay_public_ip`: the client's grant and the browser's candidate announce the public
    /// address at the leg's own port, not the bind address.
    #[test]
    fn grants_announce_the_public_ip_at_the_legs_port() {
        use supernode_proto::relay_ops::BrowserOffer;
        let public: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let host = HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (47_500, 47_539),
            shared_port: Some(0),
            ..RelayConfig::default()
        })
        .unwrap()
        .with_public_ip(Some(public));
        let (session, tb, tc) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let mut ops = call_ops(&session, &tb, &tc);
        if let RelayOp::AddTransport(a) = &mut ops[1] {
            a.kind = TransportKind::Browser;
            a.srtp = None;
            a.browser = Some(BrowserOffer {
                ice_ufrag: "brws".into(),
                fingerprint: DtlsFingerprint {
                    algorithm: "sha-256".into(),
                    value: DtlsIdentity::generate().unwrap().fingerprint().to_sdp(),
                },
                twcc_extension_id: None,
                mid_extension_id: None,
                clock_rates: vec![(111, 48_000)],
                send: vec![],
                simulcast: None,
            });
        }
        let results = host.execute(ops);
        assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
        let g = grants(&results);
        assert_eq!(g.len(), 2);
        for grant in &g {
            let a: std::net::SocketAddr = grant.address.parse().unwrap();
            assert_eq!(a.ip(), public, "{grant:?}");
            assert_ne!(a.port(), 0, "{grant:?}");
        }
        let b = g[0].browser.as_ref().expect("browser grant");
        assert_eq!(b.candidates[0].address, g[0].address);
        // Without it, the bind address.
        let plain = host_with_shared(47_540);
        let results = plain.execute(call_ops(
            &RelaySessionId::random(),
            &TransportId::random(),
            &TransportId::random(),
        ));
        for grant in grants(&results) {
            let a: std::net::SocketAddr = grant.address.parse().unwrap();
            assert!(a.ip().is_loopback(), "{grant:?}");
        }
    }

    fn host_with_shared(base: u16) -> HostRelay {
        HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (base, base + 39),
            shared_port: Some(0),
            ..RelayConfig::default()
        })
        .unwrap()
    }

    /// A browser and an edge client in one call: the browser's grant carries fresh ICE
    /// credentials, the relay's fingerprint and a host candidate on the shared port; an ICE
    /// check with those credentials and a DTLS handshake over loopback work, and media from
    /// the browser reaches the client's leg. Malformed browser operations get `BadRequest`.
    #[test]
    fn a_browser_transport_is_granted_ice_dtls_and_a_candidate_that_work() {
        use supernode_media::packet::demux::{PacketKind, classify};
        use supernode_media::packet::stun::{
            Class, Method, StunAttr, StunMessage, StunWriter, TransactionId,
        };
        use supernode_proto::relay_ops::BrowserOffer;
        use supernode_relay::core::dtls::DtlsClient;

        let host = HostRelay::start(RelayConfig {
            workers: 1,
            port_range: (47_300, 47_339),
            shared_port: Some(0),
            ..RelayConfig::default()
        })
        .unwrap();
        let browser_id = DtlsIdentity::generate().unwrap();
        let (session, tb, tc) = (
            RelaySessionId::random(),
            TransportId::random(),
            TransportId::random(),
        );
        let offer = |fp: String| BrowserOffer {
            ice_ufrag: "brws".into(),
            fingerprint: DtlsFingerprint {
                algorithm: "sha-256".into(),
                value: fp,
            },
            twcc_extension_id: Some(3),
            mid_extension_id: None,
            clock_rates: vec![(111, 48_000), (96, 90_000)],
            send: vec![],
            simulcast: None,
        };
        let mut ops = call_ops(&session, &tb, &tc);
        if let RelayOp::AddTransport(a) = &mut ops[1] {
            a.kind = TransportKind::Browser;
            a.srtp = None;
            a.browser = Some(offer(browser_id.fingerprint().to_sdp()));
        }
        let results = host.execute(ops);
        assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
        let g = grants(&results);
        let (gb, gc) = (&g[0], &g[1]);
        let b = gb.browser.as_ref().expect("browser grant");
        assert!(gb.srtp.is_none(), "keyed by DTLS, not by signaling");
        assert_eq!(b.ice_ufrag.len(), 8);
        assert_eq!(b.ice_pwd.len(), 24);
        assert_eq!(b.fingerprint.value, host.dtls_fingerprint().to_sdp());
        assert_eq!(b.candidates.len(), 1);
        assert_eq!(b.candidates[0].address, gb.address);
        let relay_addr: std::net::SocketAddr = gb.address.parse().unwrap();

        // ICE over loopback with the granted credentials.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut buf = vec![0u8; 256];
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            TransactionId([1; 12]),
        )
        .unwrap();
        let user = format!("{}:brws", b.ice_ufrag);
        w.add(&StunAttr::Username(user.as_bytes())).unwrap();
        w.add(&StunAttr::UseCandidate).unwrap();
        w.add_message_integrity(b.ice_pwd.as_bytes()).unwrap();
        w.add_fingerprint().unwrap();
        let n = w.finish();
        sock.send_to(&buf[..n], relay_addr).unwrap();
        let mut rx = [0u8; 2048];
        let (n, _) = sock.recv_from(&mut rx).expect("ICE answer");
        let m = StunMessage::parse(&rx[..n]).unwrap();
        m.verify_integrity(b.ice_pwd.as_bytes()).unwrap();
        assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));

        // DTLS over loopback: the relay's certificate is the granted fingerprint.
        let mut dtls = DtlsClient::new(&browser_id, std::time::Instant::now());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dtls.is_connected() && std::time::Instant::now() < deadline {
            dtls.handle_timeout(std::time::Instant::now());
            for d in dtls.drain() {
                sock.send_to(&d, relay_addr).unwrap();
            }
            while let Ok((n, _)) = sock.recv_from(&mut rx) {
                if classify(&rx[..n]) == PacketKind::Dtls {
                    dtls.handle_datagram(std::time::Instant::now(), &rx[..n]);
                }
            }
        }
        assert!(dtls.is_connected());
        for d in dtls.drain() {
            sock.send_to(&d, relay_addr).unwrap();
        }
        assert_eq!(
            dtls.peer_fingerprint().map(|f| f.to_sdp()),
            Some(b.fingerprint.value.clone())
        );
        let mut ctx = supernode_relay::core::srtp::LegSrtp::new(dtls.keys().unwrap()).unwrap();
        let leg_b = lock(&host.calls).get(&session).unwrap().transports[&tb];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut seq = 0;
        while host.relay().leg_stats(leg_b).unwrap().counters.rtp_in == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "browser media accepted"
            );
            seq += 1;
            sock.send_to(&srtp_rtp(&mut ctx, 111, 0xB, seq), relay_addr)
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            gc.browser.is_none() && gc.srtp.is_some(),
            "the client's grant is as before"
        );

        // Malformed browser operations.
        let bad = |offer: Option<BrowserOffer>| {
            let session = RelaySessionId::random();
            let mut ops = call_ops(&session, &TransportId::random(), &TransportId::random());
            if let RelayOp::AddTransport(a) = &mut ops[1] {
                a.kind = TransportKind::Browser;
                a.browser = offer;
            }
            let r = host.execute(ops);
            host.execute(release(&session));
            r[1].outcome.clone()
        };
        assert!(matches!(bad(None), Err(RelayOpError::BadRequest(_))));
        assert!(matches!(
            bad(Some(offer("AB:CD".into()))),
            Err(RelayOpError::BadRequest(_))
        ));
        host.execute(release(&session));
    }

    fn endpoint_ctx(g: &TransportGrant) -> supernode_relay::core::srtp::LegSrtp {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&g.srtp.as_ref().unwrap().key_b64)
            .unwrap();
        let key = SrtpKey {
            profile: SrtpProfile::Aes128CmHmacSha1_80,
            master_key: raw[..16].to_vec(),
            master_salt: raw[16..].to_vec(),
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
        assert_eq!(
            h.relay().leg_count(),
            2,
            "one leg per endpoint, no companion"
        );
        for g in &grants {
            let k = g.srtp.as_ref().unwrap();
            assert_eq!(k.profile, CALL_SRTP_PROFILE);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&k.key_b64)
                .unwrap();
            assert_eq!(raw.len(), 30);
        }
        assert_ne!(grants[0].srtp, grants[1].srtp);
        let (leg_a, leg_b) = {
            let calls = lock(&h.calls);
            (calls[&s].transports[&a], calls[&s].transports[&b])
        };
        // A sends audio (PT 111) and video (PT 96) to its one leg; B gets both streams.
        let (mut ca, mut cb) = (endpoint_ctx(&grants[0]), endpoint_ctx(&grants[1]));
        let addr = |g: &TransportGrant| g.address.parse::<std::net::SocketAddr>().unwrap();
        let socks: Vec<_> = (0..2)
            .map(|_| {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_millis(500)))
                    .unwrap();
                s
            })
            .collect();
        socks[1]
            .send_to(&srtp_rtp(&mut cb, 111, 0xB, 1), addr(&grants[1]))
            .unwrap();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while h.relay().leg_stats(leg_b).unwrap().peer.is_none() {
            assert!(std::time::Instant::now() < end, "B did not latch");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(h.relay().leg_stats(leg_a).unwrap().peer.is_none());
        for seq in 0..5u16 {
            for (pt, ssrc) in [(111, 0xA1), (96, 0xA2)] {
                socks[0]
                    .send_to(&srtp_rtp(&mut ca, pt, ssrc, seq), addr(&grants[0]))
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
        assert_eq!(h.relay().leg_count(), 2);
        exec.submit(release(&s)).await.unwrap();
        assert_eq!(h.relay().leg_count(), 0);
        assert!(exec.accepting_calls());
        h.set_draining(true);
        assert!(!exec.accepting_calls());
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
}
