//! How signaling reaches the other supernodes of a network: the [`NetworkAccess`] trait.
//!
//! `signaling` does not know NATS. The conference core emits [`crate::calls::NodeOut`]s (a
//! message for another node, or an answer claim); the hub hands each to this trait, which
//! must not block: it answers later over the returned oneshot, and the hub feeds the answer
//! back into the core. Messages from other nodes come in through
//! [`crate::calls::hub::Hub::handle_node_msg`]. Without a network (one supernode alone) the
//! hub has no `NetworkAccess` and the core never emits these outputs.

use supernode_proto::ids::{CallId, EndpointId};
use supernode_proto::network::{NodeMsg, NodeReply};
use tokio::sync::oneshot;

/// Why a cross-node operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetFailure {
    /// NATS cannot be reached now (clients hear `network_unavailable`).
    #[error("the network is unavailable")]
    Unavailable,
    /// The other node did not answer (gone, or too slow after the retries).
    #[error("the other node did not answer")]
    Unreachable,
}

/// The answer to a message sent to another node.
pub type NodeReplyRx = oneshot::Receiver<Result<NodeReply, NetFailure>>;

/// The answer to an answer claim: `true` when this claim won.
pub type ClaimRx = oneshot::Receiver<Result<bool, NetFailure>>;

/// The network as the conference core's executor sees it.
pub trait NetworkAccess: Send + Sync {
    /// Whether NATS is reachable now, or may be again within a short grace (new cross-node
    /// calls fail with `network_unavailable` when it is not).
    fn available(&self) -> bool;
    /// Sends `msg` to `node` (retries and idempotency are the implementation's).
    fn send(&self, node: &str, msg: NodeMsg) -> NodeReplyRx;
    /// Claims the answer of `call` for `endpoint` (one claim per call wins network-wide).
    fn claim(&self, call: &CallId, endpoint: &EndpointId) -> ClaimRx;
}
