//! Tunables of the signaling service (the host binary fills them from its config file).

use std::time::Duration;

/// Settings of [`crate::Signaling`]. `Default` gives working values.
#[derive(Clone, Debug)]
pub struct SignalingConfig {
    /// The `ws_url` handed out with credentials (`ws://HOST:PORT/v1/ws`).
    pub public_ws_url: String,
    /// This supernode's name in the directory.
    pub node_id: String,
    /// Largest accepted request body, bytes.
    pub body_limit_bytes: usize,
    /// Sustained requests per second per API key.
    pub rate_limit_per_second: f64,
    /// Burst of requests per API key.
    pub rate_limit_burst: u32,
    /// TTL of a credential when the request names none.
    pub default_credential_ttl: Duration,
    /// Largest TTL a credential may ask for (also how long a rotated-out key verifies).
    pub max_credential_ttl: Duration,
    /// How long a call rings before `no_answer`.
    pub ring_timeout: Duration,
    /// How long a new socket has to send `login`.
    pub login_timeout: Duration,
    /// Interval of server WebSocket pings; a socket silent for twice this is closed.
    pub keepalive_interval: Duration,
    /// Largest WebSocket message, bytes: a larger one gets `error message_too_big` and the
    /// socket is closed with code 1009.
    pub ws_max_message_bytes: usize,
    /// Sustained WebSocket messages per second one socket may send (every frame counts,
    /// pings included).
    pub ws_rate_limit_per_second: f64,
    /// Burst of WebSocket messages per socket; past it the socket gets `error rate_limited`
    /// and is closed with code 1008.
    pub ws_rate_limit_burst: u32,
    /// How often the keyring is reloaded from storage (to pick up rotations).
    pub keyring_refresh: Duration,
    /// Most participants of a conference; a join past it is `conference_full`.
    pub max_participants: usize,
    /// Whether browsers in conferences may send simulcast (three layers; each receiver gets
    /// one, chosen from its bandwidth estimate).
    pub conference_simulcast: bool,
    /// TURN servers handed out (with TURN-REST credentials) as `ice_servers` with every
    /// login credential; `None`: `ice_servers` is empty.
    pub turn: Option<crate::turn::TurnConfig>,
    /// In a network: how long a cross-node call anchored here waits for its callee to
    /// resume on another node after the callee's node died (failover).
    pub failover_grace: Duration,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            public_ws_url: "ws://127.0.0.1:8080/v1/ws".into(),
            node_id: "supernode-1".into(),
            body_limit_bytes: 16 * 1024,
            rate_limit_per_second: 50.0,
            rate_limit_burst: 100,
            default_credential_ttl: Duration::from_secs(3600),
            max_credential_ttl: Duration::from_secs(86_400),
            ring_timeout: Duration::from_secs(60),
            login_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(20),
            ws_max_message_bytes: 64 * 1024,
            ws_rate_limit_per_second: 50.0,
            ws_rate_limit_burst: 200,
            keyring_refresh: Duration::from_secs(5),
            max_participants: 32,
            conference_simulcast: true,
            turn: None,
            failover_grace: Duration::from_secs(10),
        }
    }
}
