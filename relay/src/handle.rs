//! The control API: a plain Rust handle over the relay's workers.
//!
//! ```no_run
//! use supernode_relay::handle::{LegRequest, Relay, RelayConfig};
//! let relay = Relay::start(RelayConfig::default()).unwrap();
//! let (session, legs) = relay
//!     .create_session(vec![LegRequest::latching(), LegRequest::latching()])
//!     .unwrap();
//! relay.connect_both(legs[0].id, legs[1].id).unwrap();
//! println!("send to {} and {}", legs[0].local, legs[1].local);
//! relay.release_session(session).unwrap();
//! ```
//!
//! Every call sends a command to the worker that owns the session (sessions are sharded
//! across workers) and waits for its answer; workers apply commands between batches. Ports
//! come from the configured range, one per own-port leg; shared-port legs use their worker's
//! shared port (`shared_port + worker index`).
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::core::transport::DEFAULT_MAX_STREAMS;
use crate::core::{
    BrowserSpec, CoreConfig, Event, IceCredentials, LegId, LegSpec, LegSrtpKeys, LegStats,
    PeerMode, RateCap, SessionId, SockSlot, StreamSpec,
};
use crate::error::RelayError;
use crate::udp::{self, Waker};
use crate::worker::{Command, Worker, WorkerEvent, WorkerIo, WorkerStats};
use supernode_media::ids::Pt;

/// How long a control call waits for its worker.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Kernel buffer of a worker's shared port (send and receive), bytes, by default: every
/// browser transport of the worker shares it, where an own-port leg has 1 MB of its own.
/// Measured with loadgen's `webrtc` row: at 1 MB the worker's stalls on a loaded machine
/// overflowed it at 68k packets/s (22% lost, all `RcvbufErrors`); at 32 MB a worker that fell
/// behind under overload never caught up — the queue held over 100 ms of media, read from
/// memory long out of the caches, and 74–85% of what it forwarded came out more than 100 ms
/// late; at 8 MB the same overload (272k packets/s offered) gave 0.1–14% loss and nothing
/// late, at 3.6–4.4 µs a packet (docs/design-notes.md, "The shared port's buffer"). Capped
/// by `net.core.rmem_max`/`wmem_max` unless the process may force it.
pub const SHARED_PORT_BUFFER: usize = 8 << 20;

/// Configuration of a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address the relay's sockets bind to (and that legs are reached at).
    pub bind_ip: IpAddr,
    /// Inclusive range of ports for own-port legs.
    pub port_range: (u16, u16),
    /// First shared port (worker `i` listens on `shared_port + i`); `None`: no shared port,
    /// `Some(0)`: an ephemeral port per worker.
    pub shared_port: Option<u16>,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Datagrams per receive batch.
    pub batch: usize,
    /// Use the portable I/O fallback.
    pub portable_io: bool,
    /// Allow UDP GSO.
    pub gso: bool,
    /// Pin worker `i` to CPU `pin_cpus[i]`, when given.
    pub pin_cpus: Vec<usize>,
    /// After a busy round of a loaded worker (see [`crate::idle`]), a worker keeps polling without blocking for
    /// up to this long before it sleeps in `epoll_wait` (shorter while spins keep running
    /// out). Sleeping and being woken costs a context
    /// switch on each side and, in a virtual machine, an IPI and a halt/wake of the vCPU per
    /// wake-up; under steady traffic that is most of a packet's cost. Spinning trades idle CPU
    /// for lower and steadier latency. `Duration::ZERO` turns it off (a worker then blocks
    /// as soon as it is idle).
    pub spin: Duration,
    /// Kernel buffer of each worker's shared port (send and receive), bytes (see
    /// [`SHARED_PORT_BUFFER`], the default). While the port's queue stands full under
    /// overload the worker cuts its receive buffer to an eighth of this ([`crate::backlog`]).
    pub shared_port_buffer: usize,
    /// The forwarding core's tunables.
    pub core: CoreConfig,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_range: (30_000, 39_999),
            shared_port: Some(0),
            workers: 0,
            batch: 32,
            portable_io: false,
            gso: true,
            pin_cpus: Vec::new(),
            spin: Duration::from_micros(200),
            shared_port_buffer: SHARED_PORT_BUFFER,
            core: CoreConfig {
                wallclock_at_epoch: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
                ..CoreConfig::default()
            },
        }
    }
}

/// How a new leg is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// A port of its own from the range (plain RTP tools, SIP phones).
    OwnPort,
    /// The worker's shared port; the leg is told apart by address, STUN username or SSRC.
    Shared,
}

/// What the control plane asks for one leg.
#[derive(Debug, Clone)]
pub struct LegRequest {
    /// Own port or shared port.
    pub addressing: Addressing,
    /// Latching, or an explicit remote (trusted callers only: the caller of this API is
    /// responsible for that check).
    pub peer: PeerMode,
    /// The streams the peer will send, if known (then any other SSRC is dropped as
    /// `wrong_ssrc`). None: learned from the first packets, up to `max_streams`.
    pub streams: Vec<StreamSpec>,
    /// Most streams learned when none are declared.
    pub max_streams: usize,
    /// SRTP keys.
    pub srtp: Option<LegSrtpKeys>,
    /// ICE credentials.
    pub ice: Option<IceCredentials>,
    /// Media clock rate (Hz) of a learned stream whose payload type is not in `clock_rates`.
    pub clock_rate: u32,
    /// Clock rates of learned streams by payload type (audio and video on one transport).
    pub clock_rates: Vec<(Pt, u32)>,
    /// Rate cap.
    pub rate_cap: RateCap,
    /// A browser transport (ICE-lite, DTLS-SRTP): see [`LegRequest::browser`].
    pub browser: Option<BrowserSpec>,
    /// Mixed into the SSRCs the leg sends with; see [`crate::core::LegSpec::ssrc_salt`].
    pub ssrc_salt: u32,
}

impl LegRequest {
    /// A latching plain leg on its own port.
    pub fn latching() -> Self {
        Self {
            addressing: Addressing::OwnPort,
            peer: PeerMode::Latching,
            streams: Vec::new(),
            max_streams: DEFAULT_MAX_STREAMS,
            srtp: None,
            ice: None,
            clock_rate: 48_000,
            clock_rates: Vec::new(),
            rate_cap: RateCap::default(),
            browser: None,
            ssrc_salt: 0,
        }
    }

    /// A browser transport on the shared port: ICE-lite with the relay's `ice` credentials
    /// (the answer's `a=ice-ufrag`/`a=ice-pwd`), DTLS server with the relay's identity in
    /// `browser`, streams learned (audio, video, RTX: up to 8) with `clock_rates` by payload
    /// type. The leg's `local` address is the candidate of the answer.
    pub fn browser(ice: IceCredentials, browser: BrowserSpec, clock_rates: Vec<(Pt, u32)>) -> Self {
        Self {
            addressing: Addressing::Shared,
            max_streams: 8,
            ice: Some(ice),
            clock_rates,
            clock_rate: 90_000,
            browser: Some(browser),
            ..Self::latching()
        }
    }

    /// One end of a trunk to another relay on its own port (see [`crate::core::trunk`]):
    /// aimed at `peer`, or latching onto the first packet that authenticates under `keys`;
    /// `ssrc_salt` must be random per end (see [`crate::core::LegSpec::ssrc_salt`]).
    pub fn trunk(
        peer: Option<SocketAddr>,
        keys: LegSrtpKeys,
        clock_rates: Vec<(Pt, u32)>,
        ssrc_salt: u32,
    ) -> Self {
        let spec = crate::core::trunk::trunk_spec(
            SessionId(0),
            SockSlot(0),
            peer,
            keys,
            clock_rates,
            ssrc_salt,
        );
        Self {
            ssrc_salt: spec.ssrc_salt,
            peer: spec.peer,
            max_streams: spec.max_streams,
            srtp: spec.srtp,
            clock_rates: spec.clock_rates,
            rate_cap: spec.rate_cap,
            ..Self::latching()
        }
    }

    /// A plain leg on its own port aimed at `remote` (trusted callers only).
    pub fn fixed(remote: SocketAddr) -> Self {
        Self {
            peer: PeerMode::Fixed(remote),
            ..Self::latching()
        }
    }
}

/// A created leg: its id and the local address its peer must send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegInfo {
    /// The leg.
    pub id: LegId,
    /// Where the peer sends (and where the relay sends from).
    pub local: SocketAddr,
}

/// What the control plane learns from the relay.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A leg learned its peer address.
    Latched {
        /// Leg.
        leg: LegId,
        /// Peer address.
        addr: SocketAddr,
    },
    /// A leg was freed after the idle timeout.
    LegIdle {
        /// Leg.
        leg: LegId,
        /// Its session.
        session: SessionId,
        /// Its statistics when it was freed.
        stats: Box<LegStats>,
    },
}

struct WorkerHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    join: Option<JoinHandle<()>>,
    shared: Option<SocketAddr>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    free_ports: VecDeque<u16>,
    legs: HashMap<LegId, LegEntry>,
    sessions: HashMap<SessionId, (usize, Vec<LegId>)>,
    events: VecDeque<RelayEvent>,
}

#[derive(Clone, Copy)]
struct LegEntry {
    worker: usize,
    session: SessionId,
    port: Option<u16>,
}

/// The relay: worker threads and the handle that controls them. Dropping it stops the
/// workers.
pub struct Relay {
    config: RelayConfig,
    workers: Vec<WorkerHandle>,
    state: Mutex<State>,
    events: Receiver<WorkerEvent>,
}

impl Relay {
    /// Starts the workers (and binds their shared ports).
    pub fn start(config: RelayConfig) -> Result<Self, RelayError> {
        let n = if config.workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            config.workers
        };
        let (ev_tx, ev_rx) = unbounded();
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let shared = match config.shared_port {
                Some(base) => {
                    let port = if base == 0 { 0 } else { base + i as u16 };
                    let sock = udp::bind(SocketAddr::new(config.bind_ip, port), true)?;
                    // Every browser transport of the worker arrives on this one socket: its
                    // kernel buffer must absorb what hundreds of own-port sockets would.
                    udp::force_buffer_sizes(&sock, config.shared_port_buffer);
                    Some(sock)
                }
                None => None,
            };
            let shared_addr = shared.as_ref().map(|s| s.local_addr()).transpose()?;
            let (cmd_tx, cmd_rx) = unbounded();
            let waker = Arc::new(Waker::new()?);
            let io = WorkerIo {
                batch: config.batch,
                portable: config.portable_io,
                gso: config.gso,
                pin_cpu: config.pin_cpus.get(i).copied(),
                spin: config.spin,
                shared_port_buffer: config.shared_port_buffer,
            };
            let worker = Worker::new(
                i,
                config.core.clone(),
                shared,
                io,
                waker.clone(),
                cmd_rx,
                ev_tx.clone(),
            )?;
            let join = std::thread::Builder::new()
                .name(format!("relay-worker-{i}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerHandle {
                commands: cmd_tx,
                waker,
                join: Some(join),
                shared: shared_addr,
            });
        }
        let state = State {
            next_id: 1,
            free_ports: (config.port_range.0..=config.port_range.1).collect(),
            ..State::default()
        };
        Ok(Self {
            config,
            workers,
            state: Mutex::new(state),
            events: ev_rx,
        })
    }

    /// Number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// The shared port address of each worker.
    pub fn shared_addrs(&self) -> Vec<SocketAddr> {
        self.workers.iter().filter_map(|w| w.shared).collect()
    }

    pub(crate) fn call<T>(
        &self,
        worker: usize,
        make: impl FnOnce(Sender<T>) -> Command,
    ) -> Result<T, RelayError> {
        let (tx, rx) = bounded(1);
        let w = &self.workers[worker];
        w.commands
            .send(make(tx))
            .map_err(|_| RelayError::WorkerGone)?;
        w.waker.wake();
        rx.recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| RelayError::WorkerGone)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what the workers reported (frees the ports of idle legs).
    fn drain_events(&self, st: &mut State) {
        while let Ok((_, ev)) = self.events.try_recv() {
            match ev {
                Event::Latched { leg, addr } => {
                    st.events.push_back(RelayEvent::Latched { leg, addr })
                }
                Event::LegFreed {
                    leg,
                    session,
                    stats,
                    ..
                } => {
                    if let Some(e) = st.legs.remove(&leg)
                        && let Some(p) = e.port
                    {
                        st.free_ports.push_back(p);
                    }
                    if let Some((_, v)) = st.sessions.get_mut(&session) {
                        v.retain(|l| *l != leg);
                        if v.is_empty() {
                            st.sessions.remove(&session);
                        }
                    }
                    st.events.push_back(RelayEvent::LegIdle {
                        leg,
                        session,
                        stats,
                    });
                }
            }
        }
    }

    /// The next event (latching, idle legs freed).
    pub fn poll_event(&self) -> Option<RelayEvent> {
        let mut st = self.lock();
        self.drain_events(&mut st);
        st.events.pop_front()
    }

    /// Creates a session with `legs`; returns its id and each leg's id and local address, in
    /// order. Legs are not connected: use [`Relay::connect`], [`Relay::connect_both`] or
    /// [`Relay::connect_all`].
    pub fn create_session(
        &self,
        legs: Vec<LegRequest>,
    ) -> Result<(SessionId, Vec<LegInfo>), RelayError> {
        let (session, worker) = {
            let mut st = self.lock();
            self.drain_events(&mut st);
            let id = st.next_id;
            st.next_id += 1;
            let worker = (id as usize) % self.workers.len();
            st.sessions.insert(SessionId(id), (worker, Vec::new()));
            (SessionId(id), worker)
        };
        let mut out = Vec::with_capacity(legs.len());
        for req in legs {
            match self.add_leg_on(session, worker, req) {
                Ok(info) => out.push(info),
                Err(e) => {
                    let _ = self.release_session(session);
                    return Err(e);
                }
            }
        }
        Ok((session, out))
    }

    /// Adds a leg to an existing session.
    pub fn add_leg(&self, session: SessionId, req: LegRequest) -> Result<LegInfo, RelayError> {
        let worker = {
            let st = self.lock();
            st.sessions
                .get(&session)
                .map(|s| s.0)
                .ok_or(RelayError::UnknownSession(session.0))?
        };
        self.add_leg_on(session, worker, req)
    }

    fn add_leg_on(
        &self,
        session: SessionId,
        worker: usize,
        req: LegRequest,
    ) -> Result<LegInfo, RelayError> {
        let (id, socket, port, local) = {
            let mut st = self.lock();
            self.drain_events(&mut st);
            let id = LegId(st.next_id);
            st.next_id += 1;
            match req.addressing {
                Addressing::OwnPort => {
                    // Try ports until one binds (another process may hold some of the range).
                    let mut tries = st.free_ports.len();
                    loop {
                        let Some(p) = st.free_ports.pop_front() else {
                            return Err(RelayError::PortsExhausted);
                        };
                        // Exclusive bind (no SO_REUSEPORT): a leg's port must be its own.
                        match udp::bind(SocketAddr::new(self.config.bind_ip, p), false) {
                            Ok(s) => {
                                let local = s.local_addr()?;
                                break (id, Some(s), Some(p), local);
                            }
                            Err(_) => {
                                st.free_ports.push_back(p);
                                tries -= 1;
                                if tries == 0 {
                                    return Err(RelayError::PortsExhausted);
                                }
                            }
                        }
                    }
                }
                Addressing::Shared => {
                    let local = self.workers[worker]
                        .shared
                        .ok_or(RelayError::SharedLegUnidentifiable)?;
                    (id, None, None, local)
                }
            }
        };
        let spec = LegSpec {
            session,
            sock: SockSlot(0),
            shared: socket.is_none(),
            peer: req.peer,
            streams: req.streams,
            max_streams: req.max_streams,
            srtp: req.srtp,
            ice: req.ice,
            clock_rate: req.clock_rate,
            clock_rates: req.clock_rates,
            rate_cap: req.rate_cap,
            browser: req.browser,
            ssrc_salt: req.ssrc_salt,
        };
        let r = self
            .call(worker, |reply| Command::AddLeg {
                id,
                spec: Box::new(spec),
                socket,
                reply,
            })
            .and_then(|r| r);
        let mut st = self.lock();
        match r {
            Ok(()) => {
                st.legs.insert(
                    id,
                    LegEntry {
                        worker,
                        session,
                        port,
                    },
                );
                if let Some(s) = st.sessions.get_mut(&session) {
                    s.1.push(id);
                }
                Ok(LegInfo { id, local })
            }
            Err(e) => {
                if let Some(p) = port {
                    st.free_ports.push_back(p);
                }
                Err(e)
            }
        }
    }

    /// The worker that owns `leg`'s session.
    pub(crate) fn worker_of(&self, leg: LegId) -> Result<usize, RelayError> {
        self.entry(leg).map(|e| e.worker)
    }

    /// A new leg id in `session`, and the session's worker (for a leg with no socket: a
    /// processor transport).
    pub(crate) fn reserve_leg(&self, session: SessionId) -> Result<(LegId, usize), RelayError> {
        let mut st = self.lock();
        self.drain_events(&mut st);
        let worker = st
            .sessions
            .get(&session)
            .map(|s| s.0)
            .ok_or(RelayError::UnknownSession(session.0))?;
        let id = LegId(st.next_id);
        st.next_id += 1;
        Ok((id, worker))
    }

    /// Records a leg with no socket that its worker accepted.
    pub(crate) fn record_leg(&self, id: LegId, worker: usize, session: SessionId) {
        let mut st = self.lock();
        st.legs.insert(
            id,
            LegEntry {
                worker,
                session,
                port: None,
            },
        );
        if let Some(s) = st.sessions.get_mut(&session) {
            s.1.push(id);
        }
    }

    fn entry(&self, leg: LegId) -> Result<LegEntry, RelayError> {
        let mut st = self.lock();
        self.drain_events(&mut st);
        st.legs
            .get(&leg)
            .copied()
            .ok_or(RelayError::UnknownLeg(leg.0))
    }

    /// Routes what `from` receives to `to`: subscribes `to` to every stream of `from`,
    /// present and future. Each stream reaches `to` as a stream of its own (its own SSRC,
    /// sequence numbers and timestamps), so several legs connected to one are heard apart.
    pub fn connect(&self, from: LegId, to: LegId) -> Result<(), RelayError> {
        let (a, b) = (self.entry(from)?, self.entry(to)?);
        if a.session != b.session {
            return Err(RelayError::CrossSession(from.0, to.0));
        }
        self.call(a.worker, |reply| Command::Connect { from, to, reply })?
    }

    /// Routes both ways between two legs (a one-to-one call).
    pub fn connect_both(&self, a: LegId, b: LegId) -> Result<(), RelayError> {
        self.connect(a, b)?;
        self.connect(b, a)
    }

    /// Routes every leg of `legs` to every other (all hear all).
    pub fn connect_all(&self, legs: &[LegId]) -> Result<(), RelayError> {
        for &a in legs {
            for &b in legs {
                if a != b {
                    self.connect(a, b)?;
                }
            }
        }
        Ok(())
    }

    /// Removes the route from `from` to `to`.
    pub fn disconnect(&self, from: LegId, to: LegId) -> Result<(), RelayError> {
        let a = self.entry(from)?;
        self.call(a.worker, |reply| Command::Disconnect { from, to, reply })?
    }

    /// Sets or clears a leg's SRTP keys.
    pub fn set_srtp(&self, leg: LegId, keys: Option<LegSrtpKeys>) -> Result<(), RelayError> {
        let e = self.entry(leg)?;
        self.call(e.worker, |reply| Command::SetSrtp { leg, keys, reply })?
    }

    /// Releases one leg.
    pub fn release_leg(&self, leg: LegId) -> Result<(), RelayError> {
        let e = self.entry(leg)?;
        self.call(e.worker, |reply| Command::RemoveLeg { leg, reply })??;
        let mut st = self.lock();
        st.legs.remove(&leg);
        if let Some(p) = e.port {
            st.free_ports.push_back(p);
        }
        if let Some((_, v)) = st.sessions.get_mut(&e.session) {
            v.retain(|l| *l != leg);
        }
        Ok(())
    }

    /// Releases a session and all its legs.
    pub fn release_session(&self, session: SessionId) -> Result<(), RelayError> {
        let (worker, legs) = {
            let mut st = self.lock();
            self.drain_events(&mut st);
            st.sessions
                .remove(&session)
                .ok_or(RelayError::UnknownSession(session.0))?
        };
        // A session whose legs all failed to be created has nothing in the worker.
        let r = self.call(worker, |reply| Command::RemoveSession { session, reply })?;
        let mut st = self.lock();
        for l in legs {
            if let Some(e) = st.legs.remove(&l)
                && let Some(p) = e.port
            {
                st.free_ports.push_back(p);
            }
        }
        match r {
            Ok(()) | Err(RelayError::UnknownSession(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Statistics of a leg.
    pub fn leg_stats(&self, leg: LegId) -> Result<LegStats, RelayError> {
        let e = self.entry(leg)?;
        self.call(e.worker, |reply| Command::Stats { leg, reply })?
    }

    /// The legs of a session.
    pub fn session_legs(&self, session: SessionId) -> Result<Vec<LegId>, RelayError> {
        let mut st = self.lock();
        self.drain_events(&mut st);
        st.sessions
            .get(&session)
            .map(|s| s.1.clone())
            .ok_or(RelayError::UnknownSession(session.0))
    }

    /// Number of live legs, as the control plane knows them.
    pub fn leg_count(&self) -> usize {
        let mut st = self.lock();
        self.drain_events(&mut st);
        st.legs.len()
    }

    /// I/O counters of every worker.
    pub fn worker_stats(&self) -> Result<Vec<WorkerStats>, RelayError> {
        (0..self.workers.len())
            .map(|i| self.call(i, |reply| Command::WorkerStats { reply }))
            .collect()
    }

    /// Stops the workers and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for w in &self.workers {
            let _ = w.commands.send(Command::Shutdown);
            w.waker.wake();
        }
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
