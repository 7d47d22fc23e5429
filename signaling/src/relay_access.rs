//! How signaling reaches the relay: the [`RelayAccess`] trait.
//!
//! `signaling` never imports the relay crate. The conference core emits relay operations
//! ([`supernode_proto::relay_ops`]); the hub hands each batch to [`RelayAccess::submit`],
//! which must not block: it queues the work (the host runs it on a blocking thread, a trunk
//! would send it over the network) and answers later over the returned oneshot channel,
//! one [`RelayResult`] per operation, in order. The hub awaits that answer in a task of its
//! own and feeds it back into the core, so nothing waits on a socket bind or a worker round
//! trip while holding the hub's lock, and a slow relay holds up only its own call.
//!
//! Rules for implementations: run the operations of one batch in order (a `Subscribe` needs
//! the transports added before it); batches may run concurrently; answer every operation,
//! with a typed [`supernode_proto::relay_ops::RelayOpError`] when it fails; a `Release` of
//! an unknown session succeeds. Dropping the sender without answering counts as a failure
//! of every operation of the batch.

use supernode_proto::relay_ops::{RelayOp, RelayResult};
use tokio::sync::oneshot;

/// The answer to a submitted batch: one result per operation, in order.
pub type RelayReply = oneshot::Receiver<Vec<RelayResult>>;

/// The relay as the conference core's executor sees it.
pub trait RelayAccess: Send + Sync {
    /// Queues a batch of operations and returns at once; the results come over the reply.
    fn submit(&self, ops: Vec<RelayOp>) -> RelayReply;
    /// Whether new calls may start. A host that drains (SIGTERM) answers `false`: new
    /// invites are then refused at once with the `draining` error, instead of ringing the
    /// callee for a call that could not get transports. Calls already set up go on.
    fn accepting_calls(&self) -> bool {
        true
    }
}
