//! A relay worker: one OS thread that owns a [`Core`], its sockets (each leg's own port, and
//! its shared port), a poller and preallocated batches. It loops:
//!
//! 1. apply the control commands queued on its `crossbeam-channel` (between batches only);
//! 2. wait for readiness (`epoll`), bounded by the core's next timer;
//! 3. for each ready socket, `recvmmsg` a batch, hand every datagram to the core with the
//!    `now` read once per batch, and send what the core queued with one `sendmmsg` per
//!    source socket (GSO when a destination gets several datagrams);
//! 4. run the core's timers and pass its events to the control plane.
//!
//! Sessions are sharded: each session lives in exactly one worker, so no state is shared
//! between workers and nothing on the packet path takes a lock.
#![forbid(unsafe_code)]

use std::net::UdpSocket;
#[cfg(unix)]
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::backlog::BacklogPolicy;
use crate::core::warm::WARM_STAGES;
use crate::core::{
    Core, CoreConfig, DropReason, Event, LegId, LegSpec, LegSrtpKeys, LegStats, ProcessorPort,
    SessionId, SockSlot, Ssrc, TxBatch,
};
use crate::error::RelayError;
use crate::idle::IdlePolicy;
use crate::processor_link::{CoreCall, ProcessorReturn, ReturnSide};
use crate::udp::{self, Poller, RecvBatch, SendBatch, Waker};

/// Token of the waker in the poller.
const WAKER_TOKEN: u64 = u64::MAX;

/// I/O settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerIo {
    /// Datagrams per `recvmmsg`.
    pub batch: usize,
    /// Use the portable `recv_from`/`send_to` fallback instead of `recvmmsg`/`sendmmsg`.
    pub portable: bool,
    /// Use UDP GSO when a destination gets several datagrams of one batch.
    pub gso: bool,
    /// Pin the worker thread to this CPU (Linux).
    pub pin_cpu: Option<usize>,
    /// Longest spin (polling without blocking) after a busy round ([`crate::idle`]).
    pub spin: Duration,
    /// The shared port's configured kernel buffer, bytes: what [`crate::backlog`] restores
    /// after cutting it.
    pub shared_port_buffer: usize,
}

/// Counters of a worker's I/O, for benchmarks and metrics.
#[derive(Debug, Clone, Default)]
pub struct WorkerStats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams the kernel refused to send.
    pub send_failed: u64,
    /// Receive batches (`recvmmsg` calls that returned data).
    pub recv_batches: u64,
    /// Send system calls.
    pub send_syscalls: u64,
    /// GSO messages.
    pub gso_messages: u64,
    /// Live legs.
    pub legs: usize,
    /// Drops of datagrams on the shared port that matched no leg.
    pub shared_strangers: u64,
    /// Times the shared port's queue stood over half full and its buffer was cut
    /// ([`crate::backlog`]).
    pub backlog_cuts: u64,
    /// Whether the shared port's buffer is cut now.
    pub backlog_cut: bool,
}

/// A command from the control plane to a worker. Each carries a reply channel.
pub(crate) enum Command {
    AddLeg {
        id: LegId,
        spec: Box<LegSpec>,
        socket: Option<UdpSocket>,
        reply: Sender<Result<(), RelayError>>,
    },
    Connect {
        from: LegId,
        to: LegId,
        reply: Sender<Result<(), RelayError>>,
    },
    Disconnect {
        from: LegId,
        to: LegId,
        reply: Sender<Result<(), RelayError>>,
    },
    SetSrtp {
        leg: LegId,
        keys: Option<LegSrtpKeys>,
        reply: Sender<Result<(), RelayError>>,
    },
    RemoveLeg {
        leg: LegId,
        reply: Sender<Result<(), RelayError>>,
    },
    RemoveSession {
        session: SessionId,
        reply: Sender<Result<(), RelayError>>,
    },
    Stats {
        leg: LegId,
        reply: Sender<Result<LegStats, RelayError>>,
    },
    WorkerStats {
        reply: Sender<WorkerStats>,
    },
    /// A processor transport (see [`crate::processor_link`]).
    AddProcessor {
        id: LegId,
        session: SessionId,
        port: Arc<dyn ProcessorPort>,
        reply: Sender<Result<ProcessorReturn, RelayError>>,
    },
    /// Any other control call on the core (subscriptions by kind or stream, streams).
    CoreCall {
        f: CoreCall,
        reply: Sender<Result<(), RelayError>>,
    },
    Shutdown,
}

/// A worker's event toward the control plane: which worker, and what happened.
pub(crate) type WorkerEvent = (usize, Event);

pub(crate) struct Worker {
    index: usize,
    core: Core,
    sockets: Vec<Option<UdpSocket>>,
    shared: Option<SockSlot>,
    poller: Poller,
    waker: Arc<Waker>,
    commands: Receiver<Command>,
    events: Sender<WorkerEvent>,
    recv: RecvBatch,
    send: SendBatch,
    tx: TxBatch,
    io: WorkerIo,
    stats: WorkerStats,
    max_fanout: usize,
    returns: ReturnSide,
    /// Per datagram of a shared-port batch: its transport and SSRC, for warming.
    warm: Vec<Option<(u32, Ssrc)>>,
    /// Whether the shared port's queue stands full ([`crate::backlog`]).
    backlog: BacklogPolicy,
    /// When the round's poll returned, until its first batch takes it as its time.
    batch_clock: Option<Instant>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        index: usize,
        config: CoreConfig,
        shared_socket: Option<UdpSocket>,
        io: WorkerIo,
        waker: Arc<Waker>,
        commands: Receiver<Command>,
        events: Sender<WorkerEvent>,
    ) -> Result<Self, RelayError> {
        let max_fanout = config.max_destinations;
        let backlog = BacklogPolicy::new(io.shared_port_buffer);
        let mut w = Self {
            index,
            core: Core::new(config, Instant::now()),
            sockets: Vec::new(),
            shared: None,
            poller: Poller::new(256)?,
            waker,
            commands,
            events,
            recv: RecvBatch::new(io.batch, io.portable),
            send: SendBatch::new(io.batch * 16, io.portable, io.gso),
            // Room for a receive batch fanned out to ~16 destinations (a wider fan-out flushes
            // more often), plus reports.
            tx: TxBatch::new((io.batch * 16).max(max_fanout + 64)),
            io,
            stats: WorkerStats::default(),
            max_fanout,
            returns: ReturnSide::new(),
            warm: Vec::new(),
            backlog,
            batch_clock: None,
        };
        w.warm.reserve(w.io.batch);
        #[cfg(unix)]
        w.poller.add(w.waker.raw_fd(), WAKER_TOKEN)?;
        if let Some(s) = shared_socket {
            let slot = w.insert_socket(s)?;
            w.core.add_shared_socket(slot);
            w.shared = Some(slot);
        }
        Ok(w)
    }

    fn insert_socket(&mut self, s: UdpSocket) -> Result<SockSlot, RelayError> {
        let slot = match self.sockets.iter().position(|x| x.is_none()) {
            Some(i) => i,
            None => {
                self.sockets.push(None);
                self.sockets.len() - 1
            }
        };
        #[cfg(unix)]
        self.poller.add(s.as_raw_fd(), slot as u64)?;
        self.sockets[slot] = Some(s);
        Ok(SockSlot(slot as u32))
    }

    fn close_socket(&mut self, slot: SockSlot) {
        if let Some(s) = self.sockets.get_mut(slot.0 as usize).and_then(|s| s.take()) {
            #[cfg(unix)]
            let _ = self.poller.remove(s.as_raw_fd());
        }
    }

    fn apply(&mut self, cmd: Command) -> bool {
        let now = Instant::now();
        match cmd {
            Command::AddLeg {
                id,
                mut spec,
                socket,
                reply,
            } => {
                let r = (|| {
                    match socket {
                        Some(s) => {
                            spec.sock = self.insert_socket(s)?;
                            spec.shared = false;
                        }
                        None => {
                            spec.sock = self.shared.ok_or(RelayError::SharedLegUnidentifiable)?;
                            spec.shared = true;
                        }
                    }
                    let sock = spec.sock;
                    let own = !spec.shared;
                    let r = self.core.add_leg(now, id, *spec).map_err(RelayError::from);
                    if r.is_err() && own {
                        self.close_socket(sock);
                    }
                    r
                })();
                let _ = reply.send(r);
            }
            Command::Connect { from, to, reply } => {
                let _ = reply.send(self.core.connect(from, to).map_err(Into::into));
            }
            Command::Disconnect { from, to, reply } => {
                let _ = reply.send(self.core.disconnect(from, to).map_err(Into::into));
            }
            Command::SetSrtp { leg, keys, reply } => {
                let _ = reply.send(self.core.set_srtp(leg, keys).map_err(Into::into));
            }
            Command::RemoveLeg { leg, reply } => {
                let r = self
                    .core
                    .remove_leg(leg)
                    .map_err(Into::into)
                    .map(|(sock, own)| {
                        if own {
                            self.close_socket(sock);
                        }
                    });
                let _ = reply.send(r);
            }
            Command::RemoveSession { session, reply } => {
                let r = self
                    .core
                    .remove_session(session)
                    .map_err(Into::into)
                    .map(|socks| {
                        for (sock, own) in socks {
                            if own {
                                self.close_socket(sock);
                            }
                        }
                    });
                let _ = reply.send(r);
            }
            Command::Stats { leg, reply } => {
                let _ = reply.send(self.core.leg_stats(leg).map_err(Into::into));
            }
            Command::WorkerStats { reply } => {
                let mut s = self.stats.clone();
                s.legs = self.core.leg_count();
                s.shared_strangers = self.core.global_drops(DropReason::Stranger);
                s.backlog_cuts = self.backlog.cuts();
                s.backlog_cut = self.backlog.is_cut();
                let _ = reply.send(s);
            }
            Command::AddProcessor {
                id,
                session,
                port,
                reply,
            } => {
                let r = self
                    .core
                    .add_processor(now, id, session, port)
                    .map(|()| self.returns.handle(id, self.waker.clone()))
                    .map_err(Into::into);
                let _ = reply.send(r);
            }
            Command::CoreCall { f, reply } => {
                let _ = reply.send(f(now, &mut self.core).map_err(Into::into));
            }
            Command::Shutdown => return false,
        }
        true
    }

    /// Sends everything queued in the transmit batch: one `sendmmsg` per source socket.
    fn flush(&mut self) {
        if self.tx.is_empty() {
            return;
        }
        // Group by socket, keeping order within a socket (offsets grow with insertion).
        self.tx
            .items_mut()
            .sort_unstable_by_key(|t| (t.sock.0, t.off));
        let mut i = 0;
        let n = self.tx.len();
        while i < n {
            let sock = self.tx.items()[i].sock;
            let mut j = i;
            while j < n && self.tx.items()[j].sock == sock {
                j += 1;
            }
            if let Some(Some(s)) = self.sockets.get(sock.0 as usize) {
                let tx = &self.tx;
                let st = self
                    .send
                    .send(s, tx.items()[i..j].iter().map(|t| (t.dst, tx.data(t))));
                self.stats.sent += st.sent as u64;
                self.stats.send_failed += st.failed as u64;
                self.stats.send_syscalls += st.syscalls as u64;
                self.stats.gso_messages += st.gso_messages as u64;
            }
            i = j;
        }
        self.tx.clear();
    }

    /// Receives and handles what one socket has, in up to eight batches; returns the
    /// datagrams received and the most one batch held.
    fn drain_socket(&mut self, slot: usize) -> (usize, usize) {
        let (mut total, mut fullest) = (0, 0);
        // Bounded so one busy socket cannot starve the others.
        for _ in 0..8 {
            let Some(Some(sock)) = self.sockets.get(slot) else {
                return (total, fullest);
            };
            let n = match self.recv.recv(sock) {
                Ok(n) => n,
                Err(_) => return (total, fullest),
            };
            if n == 0 {
                if self.shared == Some(SockSlot(slot as u32)) {
                    // Emptied exactly at a batch boundary: drained all the same.
                    tend_backlog(&mut self.backlog, sock, None);
                }
                return (total, fullest);
            }
            total += n;
            fullest = fullest.max(n);
            self.stats.received += n as u64;
            self.stats.recv_batches += 1;
            // The round's first batch arrived when the poll returned; later ones read the
            // clock (a long round must not age their timestamps).
            let now = self.batch_clock.take().unwrap_or_else(Instant::now);
            if self.shared == Some(SockSlot(slot as u32)) {
                tend_backlog(&mut self.backlog, sock, (n == self.io.batch).then_some(now));
                self.warm_batch(slot, n);
            }
            for i in 0..n {
                if self.tx.room() < self.max_fanout + 2 {
                    self.flush();
                }
                if let Some(d) = self.recv.get(i) {
                    self.core.handle_datagram(
                        now,
                        SockSlot(slot as u32),
                        d.src,
                        d.data,
                        &mut self.tx,
                    );
                }
            }
            self.flush();
            if n < self.io.batch {
                return (total, fullest);
            }
        }
        (total, fullest)
    }

    /// Walks a received shared-port batch [`WARM_STAGES`] times, prefetching each walk the
    /// next link of every packet's data path, before any is handled (see
    /// [`crate::core::warm`]): the batch's cache misses overlap instead of coming one by one.
    fn warm_batch(&mut self, slot: usize, n: usize) {
        let hint = &mut |p: *const u8, bytes: usize| crate::udp::prefetch(p, bytes);
        self.warm.clear();
        for i in 0..n {
            let w = self.recv.get(i).and_then(|d| {
                self.core
                    .warm_lookup(SockSlot(slot as u32), d.src, d.data, hint)
            });
            self.warm.push(w);
        }
        for stage in 1..=WARM_STAGES {
            for &(li, ssrc) in self.warm.iter().flatten() {
                self.core.warm(stage, li, ssrc, hint);
            }
        }
    }

    /// Hands what processors sent back (mixes) to the core, in one batch.
    fn drain_returns(&mut self) {
        let mut now = None;
        while let Some(p) = self.returns.next() {
            let now = *now.get_or_insert_with(Instant::now);
            if self.tx.room() < self.max_fanout + 2 {
                self.flush();
            }
            // A processor removed meanwhile: its late packets are simply dropped.
            let _ =
                self.core
                    .handle_processed(now, p.leg, &p.data[..usize::from(p.len)], &mut self.tx);
        }
        self.flush();
    }

    pub(crate) fn run(mut self) {
        #[cfg(target_os = "linux")]
        if let Some(cpu) = self.io.pin_cpu {
            pin_to_cpu(cpu);
        }
        let mut idle = IdlePolicy::new(self.io.spin);
        // The clock is read twice a round (when the poll returns, when the round ends), at
        // 50-odd ns a read on this kind of guest; at a quarter of the maximum a round carries
        // one to three datagrams. The end of a round stands for the start of the next unless
        // a command ran in between.
        let mut now = Instant::now();
        loop {
            let mut commanded = false;
            while let Ok(cmd) = self.commands.try_recv() {
                commanded = true;
                if !self.apply(cmd) {
                    return;
                }
            }
            if commanded {
                now = Instant::now();
            }
            let timeout_ms = if idle.spinning(now) {
                0
            } else {
                let wait = self
                    .core
                    .poll_timeout()
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(50));
                // Round up: a timer due in 0.4 ms must not turn the wait into a busy loop.
                wait.as_micros().div_ceil(1000) as i32
            };
            let ready = self.poller.wait(timeout_ms).unwrap_or_default();
            let woke = Instant::now();
            self.batch_clock = Some(woke);
            let (mut received, mut fullest) = (0, 0);
            for k in 0..ready {
                let token = self.poller.token(k);
                if token == WAKER_TOKEN {
                    self.waker.reset();
                    continue;
                }
                let (n, most) = self.drain_socket(token as usize);
                received += n;
                fullest = fullest.max(most);
            }
            self.batch_clock = None;
            self.drain_returns();
            now = Instant::now();
            idle.after_round(woke, now, received, fullest, self.io.batch);
            if now >= self.core.poll_timeout() {
                self.core.handle_timeout(now, &mut self.tx);
                self.flush();
            }
            while let Some(ev) = self.core.poll_event() {
                if let Event::LegFreed {
                    sock,
                    own_socket: true,
                    ..
                } = &ev
                {
                    self.close_socket(*sock);
                }
                let _ = self.events.send((self.index, ev));
            }
        }
    }
}

/// The shared port's backlog after a receive: `full_at` when it filled its batch (at that
/// time), `None` when it did not or found the queue empty. Measures the queue when the
/// policy asks and applies the buffer size it decides ([`crate::backlog`]).
fn tend_backlog(policy: &mut BacklogPolicy, sock: &UdpSocket, full_at: Option<Instant>) {
    let change = match full_at {
        None => policy.drained(),
        Some(now) if policy.wants_measure(now) => udp::queue_memory(sock)
            .and_then(|(queued, capacity)| policy.measured(now, queued, capacity)),
        Some(_) => None,
    };
    if let Some(bytes) = change {
        udp::set_receive_buffer(sock, bytes);
    }
}

/// Pins the calling thread to one CPU.
#[cfg(target_os = "linux")]
pub fn pin_to_cpu(cpu: usize) {
    crate::udp::pin_current_thread(cpu);
}
