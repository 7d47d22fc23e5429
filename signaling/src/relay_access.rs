//! How signaling reaches the relay: the [`RelayAccess`] trait.
//!
//! `signaling` never imports the relay crate; the host binary hands the call core an
//! implementation backed by the relay's control plane. The call core allocates two legs when
//! a call is answered, connects them, and releases them when the call ends — always, whatever
//! the way it ends (hangup, disconnect, relay error after allocation).
//!
//! Calls are synchronous on purpose: the relay's control plane answers from memory (a port
//! from its range, a command queued to its workers), so a call never waits on the network.

use std::net::SocketAddr;

use supernode_proto::SrtpProfile;

use crate::ids::{CallId, TransportId};

/// A leg's id at the relay: the transport id endpoints see on the wire.
pub type LegId = TransportId;

/// SRTP master key material of a leg (the relay and the endpoint share it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpParams {
    /// The protection profile.
    pub profile: SrtpProfile,
    /// Master key followed by master salt.
    pub key_and_salt: Vec<u8>,
}

/// One allocated leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegGrant {
    /// Its id.
    pub leg: LegId,
    /// Where the endpoint sends media (the relay's local `IP:PORT` for this leg).
    pub address: SocketAddr,
    /// SRTP keying, when the leg is encrypted.
    pub srtp: Option<SrtpParams>,
}

/// Why the relay refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayAccessError {
    /// No ports or capacity left.
    #[error("relay has no capacity left")]
    Exhausted,
    /// The relay is shutting down or not running.
    #[error("relay unavailable: {0}")]
    Unavailable(String),
    /// The call or leg is not known to the relay.
    #[error("unknown call or leg")]
    Unknown,
}

/// The relay as the call core sees it.
pub trait RelayAccess: Send + Sync {
    /// Allocates `count` client legs for `call` (they latch to their peers after
    /// authentication). On error nothing stays allocated.
    fn allocate(&self, call: &CallId, count: usize) -> Result<Vec<LegGrant>, RelayAccessError>;
    /// Makes legs `a` and `b` of `call` hear each other.
    fn connect(&self, call: &CallId, a: &LegId, b: &LegId) -> Result<(), RelayAccessError>;
    /// Frees every leg of `call`. Releasing an unknown call is a no-op.
    fn release(&self, call: &CallId);
    /// Whether new calls may start. A host that drains (SIGTERM) answers `false`: new
    /// invites are then refused at once with the `draining` error, instead of ringing the
    /// callee for a call that could not get legs. Calls already set up go on.
    fn accepting_calls(&self) -> bool {
        true
    }
}
