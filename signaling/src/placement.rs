//! Which supernode a new client should use: the [`Placement`] trait.
//!
//! A supernode alone answers its own WebSocket URL with every credential. In a network the
//! host gives signaling a `Placement` (the least-loaded live node of this node's region
//! that takes endpoints, draining and full nodes left out), so the credential endpoint
//! spreads clients over the network, and a draining node sends new clients elsewhere.

/// Placement of new clients.
pub trait Placement: Send + Sync {
    /// The WebSocket URL a new client should use; `None`: this node's own.
    fn ws_url(&self) -> Option<String>;

    /// The WebSocket URLs of every node a client may use, preferred first: told to each
    /// client at login (`login_ok.nodes`), where it reconnects when its node dies
    /// (failover). Empty by default.
    fn ws_urls(&self) -> Vec<String> {
        Vec::new()
    }
}
