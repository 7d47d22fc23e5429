//! The network layer's errors.

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The configuration is not usable.
    #[error("network configuration: {0}")]
    Config(String),
    /// NATS cannot be reached (not connected, or no server answered): new cross-node work
    /// fails fast with this (clients see `network_unavailable`).
    #[error("network unavailable: {0}")]
    Unavailable(String),
    /// The peer node did not answer within the request timeout, after every retry.
    #[error("node {node} did not answer after {attempts} attempts")]
    TimedOut {
        /// The node asked.
        node: String,
        /// Attempts made.
        attempts: u32,
    },
    /// No node listens on the subject (the node is gone).
    #[error("node {0} is not on the network")]
    NoSuchNode(String),
    /// A JetStream KV operation failed.
    #[error("key-value store: {0}")]
    Kv(String),
    /// A message from another node could not be decoded (dropped and counted).
    #[error("undecodable message: {0}")]
    Decode(#[from] serde_json::Error),
}
