//! Processor transports on the relay's workers: the way back from a media thread, and the
//! control calls of conferences.
//!
//! A processor transport ([`crate::core::processor`]) is fed by its worker through the
//! [`ProcessorPort`] the control plane gives (a media thread's bounded inlet). What the
//! processor produces comes back through the [`ProcessorReturn`] that
//! [`Relay::add_processor`] answers with: [`ProcessorReturn::push`] copies the packet into
//! the worker's bounded return queue (a full queue is a counted drop, never a blocked media
//! thread) and [`ProcessorReturn::wake`] wakes the worker once for a batch. The worker
//! drains its return queue on every round and hands each packet to
//! [`crate::core::Core::handle_processed`]. Nothing on either side allocates per packet: the
//! queue's slots hold the bytes inline.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use supernode_relay::core::{ProcessorPort, StreamKind, StreamSpec, Ssrc};
//! # use supernode_relay::{LegId, LegRequest, Relay, RelayConfig};
//! # #[derive(Debug)] struct Mixer;
//! # impl ProcessorPort for Mixer {
//! #     fn push(&self, _: std::time::Instant, _: LegId, _: &[u8]) -> bool { true }
//! # }
//! let relay = Relay::start(RelayConfig::default()).unwrap();
//! let (session, legs) = relay.create_session(vec![LegRequest::latching()]).unwrap();
//! let (mixer, back) = relay.add_processor(session, Arc::new(Mixer)).unwrap();
//! relay.connect_kind(legs[0].id, mixer, StreamKind::Audio).unwrap();
//! let mix = StreamSpec { ssrc: Ssrc(0x3000), clock_rate: 48_000 };
//! relay.add_stream(mixer, mix).unwrap();
//! relay.subscribe_stream(mixer, mix.ssrc, legs[0].id).unwrap();
//! // On the media thread, per mixed packet for leg 0: `back.push(&packet)`, then `back.wake()`.
//! # let _ = back;
//! ```
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::core::transmit::MAX_DATAGRAM;
use crate::core::{Core, CoreError, LegId, ProcessorPort, SessionId, Ssrc, StreamKind, StreamSpec};
use crate::error::RelayError;
use crate::handle::Relay;
use crate::udp::Waker;
use crate::worker::Command;

/// Slots of each worker's return queue (mixed packets on their way back to the worker).
pub const RETURN_CAPACITY: usize = 512;

/// One packet a processor sends back, held inline in the queue's slot (no allocation per
/// packet).
pub(crate) struct Processed {
    pub(crate) leg: LegId,
    pub(crate) len: u16,
    pub(crate) data: [u8; MAX_DATAGRAM],
}

/// The media thread's way back into the relay for one processor transport. Cloneable,
/// `Send`; see the module docs.
#[derive(Clone)]
pub struct ProcessorReturn {
    leg: LegId,
    queue: Sender<Processed>,
    waker: Arc<Waker>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for ProcessorReturn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorReturn")
            .field("leg", &self.leg)
            .finish_non_exhaustive()
    }
}

impl ProcessorReturn {
    /// The processor transport this returns to.
    pub fn leg(&self) -> LegId {
        self.leg
    }

    /// Queues one RTP packet the processor produced (a packet of one of the transport's
    /// declared streams). `false` when the worker's queue is full or the packet too large:
    /// dropped and counted ([`ProcessorReturn::dropped`]).
    pub fn push(&self, packet: &[u8]) -> bool {
        if packet.len() > MAX_DATAGRAM {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let mut p = Processed {
            leg: self.leg,
            len: packet.len() as u16,
            data: [0u8; MAX_DATAGRAM],
        };
        p.data[..packet.len()].copy_from_slice(packet);
        match self.queue.try_send(p) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Wakes the worker (once after a batch of pushes).
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// Packets dropped because the worker's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The worker's side of its return queue.
pub(crate) struct ReturnSide {
    queue: Receiver<Processed>,
    queue_tx: Sender<Processed>,
}

impl ReturnSide {
    pub(crate) fn new() -> Self {
        let (queue_tx, queue) = crossbeam_channel::bounded(RETURN_CAPACITY);
        Self { queue, queue_tx }
    }

    /// A return handle for processor transport `leg` of this worker.
    pub(crate) fn handle(&self, leg: LegId, waker: Arc<Waker>) -> ProcessorReturn {
        ProcessorReturn {
            leg,
            queue: self.queue_tx.clone(),
            waker,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Takes the next returned packet, if any.
    pub(crate) fn next(&self) -> Option<Processed> {
        self.queue.try_recv().ok()
    }
}

/// A control call run on the worker that owns a session, against its core.
pub(crate) type CoreCall = Box<dyn FnOnce(Instant, &mut Core) -> Result<(), CoreError> + Send>;

impl Relay {
    fn core_call(
        &self,
        leg_or_session: Result<usize, RelayError>,
        f: CoreCall,
    ) -> Result<(), RelayError> {
        let worker = leg_or_session?;
        self.call(worker, |reply| Command::CoreCall { f, reply })?
    }

    /// Adds a processor transport to `session`, fed through `port` (see
    /// [`crate::core::processor`]); returns its id and the way back for what it produces.
    pub fn add_processor(
        &self,
        session: SessionId,
        port: Arc<dyn ProcessorPort>,
    ) -> Result<(LegId, ProcessorReturn), RelayError> {
        let (id, worker) = self.reserve_leg(session)?;
        let back = self.call(worker, |reply| Command::AddProcessor {
            id,
            session,
            port,
            reply,
        })??;
        self.record_leg(id, worker, session);
        Ok((id, back))
    }

    /// Subscribes `to` to the streams of `from` of one kind, present and future.
    pub fn connect_kind(&self, from: LegId, to: LegId, kind: StreamKind) -> Result<(), RelayError> {
        self.core_call(
            self.worker_of(from),
            Box::new(move |_, core| core.connect_kind(from, to, kind)),
        )
    }

    /// Subscribes `to` to the one stream `ssrc` of `from`.
    pub fn subscribe_stream(&self, from: LegId, ssrc: Ssrc, to: LegId) -> Result<(), RelayError> {
        self.core_call(
            self.worker_of(from),
            Box::new(move |_, core| core.subscribe_stream(from, ssrc, to)),
        )
    }

    /// Declares one more stream that `leg` sends (a processor's mix for one participant).
    pub fn add_stream(&self, leg: LegId, stream: StreamSpec) -> Result<(), RelayError> {
        self.core_call(
            self.worker_of(leg),
            Box::new(move |_, core| core.add_stream(leg, stream)),
        )
    }

    /// Removes the orphaned send streams of one kind at `leg` (see
    /// [`Core::drop_orphans`](crate::core::Core::drop_orphans)).
    pub fn drop_orphans(&self, leg: LegId, kind: StreamKind) -> Result<(), RelayError> {
        self.core_call(
            self.worker_of(leg),
            Box::new(move |_, core| core.drop_orphans(leg, kind).map(|_| ())),
        )
    }

    /// Removes a declared stream of `leg`.
    pub fn remove_stream(&self, leg: LegId, ssrc: Ssrc) -> Result<(), RelayError> {
        self.core_call(
            self.worker_of(leg),
            Box::new(move |_, core| core.remove_stream(leg, ssrc)),
        )
    }
}
