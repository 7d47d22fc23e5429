//! # supernode-network
//!
//! Several supernodes form one network over NATS with JetStream (Debian's `nats-server`
//! 2.9; the client's 2.10+ features are off). A node that has no NATS URL configured does
//! not use this crate at all: one supernode alone keeps its in-memory directory.
//!
//! ## How to drive it
//!
//! 1. Fill a [`NetworkConfig`] (`urls`, `node_id` — [`node_id_in`] keeps a generated one in
//!    the data directory —, `region`, `role`, `credentials`) and call
//!    [`Network::connect`]. It makes the three KV buckets if they are missing
//!    (`<prefix>_nodes`: the registry; `<prefix>_dir`: the directory; `<prefix>_calls`: answer
//!    claims), purges what an earlier run of this node left in the directory, and starts the
//!    background tasks: a heartbeat every second, the registry and directory watches, the
//!    directory writer, and re-registration when NATS comes back.
//! 2. Give [`Network::directory`] to signaling as its [`supernode_signaling::directory::Directory`]:
//!    lookups read a local replica, records of nodes without a heartbeat for 3 s are left out.
//! 3. Report the host's load with [`Network::set_load`] (and [`Network::set_draining`]);
//!    ask [`Network::place`] which node a client should use.
//! 4. Serve cross-node messages with [`Network::serve`] (a [`NodeHandler`]) and send them with
//!    [`Network::request`] (retries with one message id; the receiver acts once). Claim a
//!    call's answer with [`Network::claim_answer`]: exactly one endpoint wins network-wide.
//!
//! 5. Or let [`join`] do 4 for a signaling hub: the hub then rings endpoints on other nodes
//!    and claims answers through the network.
//!
//! Subjects and keys: `<prefix>.node.<node>` (a node's requests); registry key `<node>`;
//! directory key `<account>.<node>.<endpoint>`; claim key `answer.<call>`.
//!
//! The sans-IO parts ([`membership::Members`], [`dedupe::Dedupe`]) take `now` and are tested
//! with a virtual clock; the rest is a thin shell over `async-nats`, tested against a real
//! 3-server cluster (`supernode-testkit`, feature `nats`).
#![forbid(unsafe_code)]

pub mod config;
pub mod counters;
pub mod dedupe;
pub mod directory;
pub mod error;
pub mod join;
pub mod membership;
mod node;

pub use config::{Credentials, NetworkConfig, Role, node_id_in, parse_urls};
pub use counters::CountersSnapshot;
pub use directory::NatsDirectory;
pub use error::NetworkError;
pub use join::{HubHandler, NetworkAccessor, NetworkPlacement, join};
pub use membership::{Heartbeat, Load, Members};
pub use node::{Claim, Network, NodeHandler};
