//! The host configuration: TOML where every key has a working default, overridden by
//! `SUPERNODE_<KEY>` environment variables (e.g. `SUPERNODE_LISTEN`,
//! `SUPERNODE_RATE_LIMIT_PER_SECOND`), overridden by flags.
//!
//! ```toml
//! listen = "127.0.0.1:8080"        # HTTP: REST, WebSocket, /healthz, /readyz
//! data_dir = "supernode-data"      # SQLite file lives here
//! database_url = ""                # empty: sqlite://<data_dir>/supernode.db; or postgres://…
//! public_ws_url = ""               # empty: ws://<bound address>/v1/ws
//! node_id = "supernode-1"
//! log = "info"
//! body_limit_bytes = 16384
//! rate_limit_per_second = 50.0
//! rate_limit_burst = 100
//! credential_ttl_seconds = 3600
//! max_credential_ttl_seconds = 86400
//! ring_timeout_seconds = 60
//! max_participants = 32            # most participants of a conference; past it: conference_full
//! conference_simulcast = true      # browsers in conferences send 3 layers, each receiver gets one
//! login_timeout_seconds = 10
//! keepalive_seconds = 20
//! ws_max_message_bytes = 65536     # a larger WebSocket message: error message_too_big, close 1009
//! ws_rate_limit_per_second = 50.0  # messages one WebSocket may send per second …
//! ws_rate_limit_burst = 200        # … in bursts of this many; past it: rate_limited, close 1008
//! max_connections = 10000          # open HTTP/WebSocket connections; past it: 503 server_full
//! max_connections_per_ip = 256     # per client IP; past it: 429 too_many_connections
//! header_read_timeout_seconds = 10 # request headers must arrive within this (else closed)
//! body_timeout_seconds = 10        # a request body must arrive within this (else 408)
//! relay_ip = "127.0.0.1"           # the relay's sockets bind here (and legs are reached here)
//! relay_port_min = 30000           # own-port legs take ports from this inclusive range
//! relay_port_max = 39999
//! relay_shared_port = 0            # first shared port (worker i: +i); 0: ephemeral ports
//! relay_workers = 0                # relay worker threads; 0: one per core
//! relay_idle_timeout_seconds = 30  # a leg that hears nothing this long is freed
//! relay_spin_us = 200              # longest spin (polling without sleeping) after a busy round of a loaded worker
//! relay_shared_port_buffer_kb = 8192 # kernel buffer of each worker's shared port (browsers queue there)
//! relay_early_media_ms = 200       # media held for a leg not yet latched is kept this long
//! relay_nack_cache = "first_nack"  # keep sent video for NACKs: "first_nack" (from a leg's
//!                                  # first NACK on), "always", or "off"
//! relay_public_ip = ""             # a NAT'd host: the address legs are reached at (grants, SDP)
//! turn_urls = ""                   # TURN for browsers, comma-separated, e.g. "turn:203.0.113.5:3478"
//! turn_secret = ""                 # coturn's static-auth-secret (use-auth-secret); docs/browsers.md
//! drain_seconds = 30               # on SIGTERM, how long running calls may go on
//! # A network of supernodes (docs/network.md); empty nats_url: this node is alone.
//! nats_url = ""                    # e.g. "nats://10.0.0.1:4222,nats://10.0.0.2:4222"
//! region = "default"               # placement groups nodes by region
//! role = "standard"                # or "mega": takes a dead node's endpoints first
//! nats_user = ""                   # NATS user/password, or …
//! nats_password = ""
//! nats_token = ""                  # … a token (never logged)
//! nats_kv_replicas = 1             # replicas of the KV buckets (3 in a 3-server cluster)
//! node_dead_after_ms = 3000        # a node silent this long is dead (placement, failover)
//! failover_grace_ms = 10000        # a call whose callee's node died waits this long for a resume
//! demo_partner = false             # POST /demo/login makes accounts for the web client (dev only)
//! tls_cert = ""                    # PEM certificate chain: with tls_key, the listener is HTTPS/WSS
//! tls_key = ""                     # PEM private key (PKCS#8, PKCS#1 or SEC1)
//! ```
//!
//! In a network, a node whose `node_id` is left at its default takes the id kept in
//! `<data_dir>/node_id` (generated on first start).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use supernode_signaling::SignalingConfig;

use crate::cli::Common;

/// The whole host configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite in the data directory.
    pub database_url: String,
    /// The `ws_url` handed out with credentials; empty means derived from the bound address.
    pub public_ws_url: String,
    /// This supernode's name in the directory.
    pub node_id: String,
    /// Log filter (`RUST_LOG` wins when set).
    pub log: String,
    /// Largest request body.
    pub body_limit_bytes: usize,
    /// Requests per second per API key.
    pub rate_limit_per_second: f64,
    /// Burst per API key.
    pub rate_limit_burst: u32,
    /// Default credential TTL.
    pub credential_ttl_seconds: u64,
    /// Largest credential TTL (and how long a rotated-out secret verifies).
    pub max_credential_ttl_seconds: u64,
    /// Ring timeout.
    pub ring_timeout_seconds: u64,
    /// Most participants of a conference (group call).
    pub max_participants: usize,
    /// Whether browsers in conferences send simulcast (on by default).
    pub conference_simulcast: bool,
    /// Time a new WebSocket has to log in.
    pub login_timeout_seconds: u64,
    /// WebSocket ping interval.
    pub keepalive_seconds: u64,
    /// Largest WebSocket message (and frame), bytes.
    pub ws_max_message_bytes: usize,
    /// Messages per second one WebSocket may send, sustained.
    pub ws_rate_limit_per_second: f64,
    /// Messages one WebSocket may send in a burst.
    pub ws_rate_limit_burst: u32,
    /// Open HTTP connections (WebSockets included) at most; more are answered `503`.
    pub max_connections: usize,
    /// Open HTTP connections from one client IP at most; more are answered `429`.
    pub max_connections_per_ip: usize,
    /// A request's headers must arrive within this many seconds of its start (an idle
    /// keep-alive connection: of the previous answer), else the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// A request body must arrive within this many seconds, else `408`.
    pub body_timeout_seconds: u64,
    /// Address the relay binds (and legs are reached at).
    pub relay_ip: IpAddr,
    /// First port of the own-port leg range.
    pub relay_port_min: u16,
    /// Last port of the own-port leg range (inclusive).
    pub relay_port_max: u16,
    /// First shared port (worker `i` listens on `+i`); 0 picks ephemeral ports.
    pub relay_shared_port: u16,
    /// Relay worker threads; 0 means one per core.
    pub relay_workers: usize,
    /// A leg that receives nothing for this long is freed.
    pub relay_idle_timeout_seconds: u64,
    /// After a round with traffic, relay workers keep polling this many microseconds before
    /// they sleep (lower, steadier latency under load; 0 turns it off to save idle CPU).
    pub relay_spin_us: u64,
    /// Kernel buffer (send and receive) of each relay worker's shared port, KiB: what the
    /// worker's browser transports may queue. Larger absorbs longer stalls; but a worker that
    /// falls behind a long queue reads cold data and stays behind, its media late.
    pub relay_shared_port_buffer_kb: usize,
    /// Media sent toward a leg that has not latched yet is held and replayed when it
    /// latches, if no older than this many milliseconds (0: nothing is replayed).
    pub relay_early_media_ms: u64,
    /// When the relay keeps sent video to answer NACKs itself: `first_nack` (from a leg's
    /// first NACK on; loss-free legs cost nothing), `always`, or `off` (every NACK goes on
    /// to the sender).
    pub relay_nack_cache: String,
    /// On SIGTERM, how long running calls may continue before the process exits.
    pub drain_seconds: u64,
    /// NATS URLs of the network (commas between several); empty: no network.
    pub nats_url: String,
    /// This node's region (placement).
    pub region: String,
    /// `standard` or `mega`.
    pub role: String,
    /// NATS user (with `nats_password`).
    pub nats_user: String,
    /// NATS password.
    pub nats_password: String,
    /// NATS token (instead of user/password).
    pub nats_token: String,
    /// Replicas of the network's KV buckets.
    pub nats_kv_replicas: usize,
    /// A node not heard for this many milliseconds is dead: out of placement, its
    /// directory records ignored, its calls failed over (heartbeats are every second).
    pub node_dead_after_ms: u64,
    /// How long (ms) a call anchored here waits for its callee to resume on another node
    /// after the callee's node died.
    pub failover_grace_ms: u64,
    /// Serve the demo partner (`POST /demo/login`, `GET /demo/contacts`): anyone who
    /// reaches the port can create accounts. Off by default; `supernode demo` and the dev
    /// configuration (`config/dev.toml`) turn it on.
    pub demo_partner: bool,
    /// PEM certificate chain of the HTTPS/WSS listener; empty (with `tls_key`): plain HTTP.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
    /// The address the relay is reached at from outside when it sits behind a NAT (empty:
    /// `relay_ip`): client grants and browsers' SDP answers announce it, at the leg's port.
    pub relay_public_ip: String,
    /// TURN server URLs handed to browsers (`ice_servers`), comma-separated; empty: none.
    pub turn_urls: String,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`): the
    /// TURN-REST credentials are signed with it. Required when `turn_urls` is set.
    pub turn_secret: String,
}

/// Keys that `SUPERNODE_<KEY>` may override.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "public_ws_url",
    "node_id",
    "log",
    "body_limit_bytes",
    "rate_limit_per_second",
    "rate_limit_burst",
    "credential_ttl_seconds",
    "max_credential_ttl_seconds",
    "ring_timeout_seconds",
    "max_participants",
    "conference_simulcast",
    "login_timeout_seconds",
    "keepalive_seconds",
    "ws_max_message_bytes",
    "ws_rate_limit_per_second",
    "ws_rate_limit_burst",
    "max_connections",
    "max_connections_per_ip",
    "header_read_timeout_seconds",
    "body_timeout_seconds",
    "relay_ip",
    "relay_port_min",
    "relay_port_max",
    "relay_shared_port",
    "relay_workers",
    "relay_idle_timeout_seconds",
    "relay_spin_us",
    "relay_shared_port_buffer_kb",
    "relay_early_media_ms",
    "relay_nack_cache",
    "drain_seconds",
    "nats_url",
    "region",
    "role",
    "nats_user",
    "nats_password",
    "nats_token",
    "nats_kv_replicas",
    "node_dead_after_ms",
    "failover_grace_ms",
    "demo_partner",
    "tls_cert",
    "tls_key",
    "relay_public_ip",
    "turn_urls",
    "turn_secret",
];

impl Default for Config {
    fn default() -> Self {
        let s = SignalingConfig::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("supernode-data"),
            database_url: String::new(),
            public_ws_url: String::new(),
            node_id: s.node_id,
            log: "info".into(),
            body_limit_bytes: s.body_limit_bytes,
            rate_limit_per_second: s.rate_limit_per_second,
            rate_limit_burst: s.rate_limit_burst,
            credential_ttl_seconds: s.default_credential_ttl.as_secs(),
            max_credential_ttl_seconds: s.max_credential_ttl.as_secs(),
            ring_timeout_seconds: s.ring_timeout.as_secs(),
            max_participants: s.max_participants,
            conference_simulcast: s.conference_simulcast,
            login_timeout_seconds: s.login_timeout.as_secs(),
            keepalive_seconds: s.keepalive_interval.as_secs(),
            ws_max_message_bytes: s.ws_max_message_bytes,
            ws_rate_limit_per_second: s.ws_rate_limit_per_second,
            ws_rate_limit_burst: s.ws_rate_limit_burst,
            max_connections: 10_000,
            max_connections_per_ip: 256,
            header_read_timeout_seconds: 10,
            body_timeout_seconds: 10,
            relay_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay_port_min: 30_000,
            relay_port_max: 39_999,
            relay_shared_port: 0,
            relay_workers: 0,
            relay_idle_timeout_seconds: 30,
            relay_spin_us: 200,
            relay_shared_port_buffer_kb: supernode_relay::handle::SHARED_PORT_BUFFER >> 10,
            relay_early_media_ms: 200,
            relay_nack_cache: "first_nack".into(),
            drain_seconds: 30,
            nats_url: String::new(),
            region: "default".into(),
            role: "standard".into(),
            nats_user: String::new(),
            nats_password: String::new(),
            nats_token: String::new(),
            nats_kv_replicas: 1,
            node_dead_after_ms: 3000,
            failover_grace_ms: 10_000,
            demo_partner: false,
            tls_cert: String::new(),
            tls_key: String::new(),
            relay_public_ip: String::new(),
            turn_urls: String::new(),
            turn_secret: String::new(),
        }
    }
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(f) = raw.parse::<f64>() {
        toml::Value::Float(f)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(raw.to_owned())
    }
}

impl Config {
    /// Defaults < file < environment (`env` lists `(name, value)`) < flags.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        data_dir: Option<&Path>,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config {}", p.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing config {}", p.display()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("SUPERNODE_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if KEYS.contains(&key.as_str()) {
                // Text keys stay text even when they look like numbers.
                let v = match key.as_str() {
                    "data_dir" | "database_url" | "public_ws_url" | "node_id" | "log"
                    | "listen" | "relay_ip" | "nats_url" | "region" | "role" | "nats_user"
                    | "nats_password" | "nats_token" | "tls_cert" | "tls_key"
                    | "relay_public_ip" | "turn_urls" | "turn_secret" | "relay_nack_cache" => {
                        toml::Value::String(value)
                    }
                    _ => env_value(&value),
                };
                table.insert(key, v);
            }
        }
        let mut cfg: Config = table.try_into().context("invalid configuration")?;
        if let Some(d) = data_dir {
            cfg.data_dir = d.to_owned();
        }
        if let Some(l) = listen {
            cfg.listen = l;
        }
        if cfg.max_credential_ttl_seconds == 0 || cfg.credential_ttl_seconds == 0 {
            bail!("credential TTLs must be at least 1 second");
        }
        if cfg.relay_port_min > cfg.relay_port_max {
            bail!("relay_port_min exceeds relay_port_max");
        }
        if cfg.relay_idle_timeout_seconds == 0 {
            bail!("relay_idle_timeout_seconds must be at least 1");
        }
        if cfg.relay_spin_us > 10_000 {
            bail!("relay_spin_us above 10000 (10 ms) would only burn CPU");
        }
        if !(256..=262_144).contains(&cfg.relay_shared_port_buffer_kb) {
            bail!("relay_shared_port_buffer_kb must be between 256 and 262144 (KiB)");
        }
        if cfg.relay_early_media_ms > 5_000 {
            bail!("relay_early_media_ms above 5000 would replay stale media");
        }
        cfg.nack_cache()?;
        if cfg.credential_ttl_seconds > cfg.max_credential_ttl_seconds {
            bail!("credential_ttl_seconds exceeds max_credential_ttl_seconds");
        }
        cfg.check_limits()?;
        if cfg.tls_cert.is_empty() != cfg.tls_key.is_empty() {
            bail!("set both tls_cert and tls_key (HTTPS), or neither (plain HTTP)");
        }
        if cfg.tls() && cfg.demo_partner {
            bail!("demo_partner calls the REST API over plain HTTP: not with tls_cert/tls_key");
        }
        cfg.public_ip()?;
        if !cfg.turn_urls.trim().is_empty() {
            if cfg.turn_secret.is_empty() {
                bail!("turn_urls needs turn_secret (the TURN server's static-auth-secret)");
            }
            for u in cfg.turn_list() {
                if !(u.starts_with("turn:") || u.starts_with("turns:")) {
                    bail!("turn_urls: {u:?} is not a turn: or turns: URL");
                }
            }
        }
        if !cfg.nats_url.is_empty() {
            cfg.role
                .parse::<supernode_network::Role>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !cfg.nats_token.is_empty() && !cfg.nats_user.is_empty() {
                bail!("set nats_token or nats_user/nats_password, not both");
            }
            if cfg.nats_kv_replicas == 0 || cfg.nats_kv_replicas > 5 {
                bail!("nats_kv_replicas must be between 1 and 5");
            }
        }
        Ok(cfg)
    }

    /// Whether the listener is HTTPS/WSS (`tls_cert` and `tls_key` set).
    pub fn tls(&self) -> bool {
        !self.tls_cert.is_empty() && !self.tls_key.is_empty()
    }

    /// The network settings, when `nats_url` is set (`None`: this node is alone).
    /// `ws_url` is what the node's clients use (published for placement).
    pub fn network(
        &self,
        ws_url: String,
    ) -> anyhow::Result<Option<supernode_network::NetworkConfig>> {
        if self.nats_url.is_empty() {
            return Ok(None);
        }
        let node_id = if self.node_id == SignalingConfig::default().node_id {
            supernode_network::node_id_in(&self.data_dir)
                .with_context(|| format!("node id in {}", self.data_dir.display()))?
        } else {
            self.node_id.clone()
        };
        let credentials = if !self.nats_token.is_empty() {
            supernode_network::Credentials::Token(self.nats_token.clone())
        } else if !self.nats_user.is_empty() {
            supernode_network::Credentials::UserPassword {
                user: self.nats_user.clone(),
                password: self.nats_password.clone(),
            }
        } else {
            supernode_network::Credentials::None
        };
        let cfg = supernode_network::NetworkConfig {
            urls: supernode_network::parse_urls(&self.nats_url),
            node_id,
            region: self.region.clone(),
            role: self.role.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            credentials,
            kv_replicas: self.nats_kv_replicas,
            dead_after: Duration::from_millis(self.node_dead_after_ms),
            ws_url,
            ..supernode_network::NetworkConfig::default()
        };
        cfg.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Some(cfg))
    }

    /// The client-facing limits are in range (see `docs/host.md`, "Limits").
    fn check_limits(&self) -> anyhow::Result<()> {
        if !(1024..=16 << 20).contains(&self.ws_max_message_bytes) {
            bail!("ws_max_message_bytes must be between 1024 and 16777216");
        }
        if !(self.ws_rate_limit_per_second.is_finite() && self.ws_rate_limit_per_second > 0.0) {
            bail!("ws_rate_limit_per_second must be above 0");
        }
        if self.ws_rate_limit_burst == 0 {
            bail!("ws_rate_limit_burst must be at least 1");
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            bail!("max_connections and max_connections_per_ip must be at least 1");
        }
        for (name, v) in [
            (
                "header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            ("body_timeout_seconds", self.body_timeout_seconds),
        ] {
            if !(1..=3600).contains(&v) {
                bail!("{name} must be between 1 and 3600");
            }
        }
        Ok(())
    }

    /// The connection limits of the HTTP server.
    pub fn http_limits(&self) -> crate::http_server::HttpLimits {
        crate::http_server::HttpLimits {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
        }
    }

    /// Loads from the process environment and the common flags.
    pub fn load(common: &Common, listen: Option<SocketAddr>) -> anyhow::Result<Self> {
        Self::load_from(
            common.config.as_deref(),
            std::env::vars(),
            common.data_dir.as_deref(),
            listen,
        )
    }

    /// The database URL in effect (creates the data directory for SQLite).
    pub fn database_url(&self) -> anyhow::Result<String> {
        if !self.database_url.is_empty() {
            return Ok(self.database_url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        Ok(format!(
            "sqlite://{}",
            self.data_dir.join("supernode.db").display()
        ))
    }

    /// The relay settings.
    pub fn relay(&self) -> supernode_relay::RelayConfig {
        let mut r = supernode_relay::RelayConfig {
            bind_ip: self.relay_ip,
            port_range: (self.relay_port_min, self.relay_port_max),
            shared_port: Some(self.relay_shared_port),
            workers: self.relay_workers,
            ..supernode_relay::RelayConfig::default()
        };
        r.core.idle_timeout = Duration::from_secs(self.relay_idle_timeout_seconds);
        r.spin = Duration::from_micros(self.relay_spin_us);
        r.shared_port_buffer = self.relay_shared_port_buffer_kb << 10;
        r.core.early_media_max_age = Duration::from_millis(self.relay_early_media_ms);
        match self.nack_cache() {
            Ok(Some(policy)) => r.core.nack_cache_policy = policy,
            Ok(None) => r.core.nack_cache_bytes = 0,
            Err(_) => {} // refused when the configuration was loaded
        }
        r
    }

    /// `relay_nack_cache`, parsed: the policy, or `None` for `off`.
    fn nack_cache(&self) -> anyhow::Result<Option<supernode_relay::core::NackCachePolicy>> {
        use supernode_relay::core::NackCachePolicy;
        match self.relay_nack_cache.trim() {
            "first_nack" => Ok(Some(NackCachePolicy::FromFirstNack)),
            "always" => Ok(Some(NackCachePolicy::Always)),
            "off" => Ok(None),
            other => {
                bail!("relay_nack_cache: {other:?} is not \"first_nack\", \"always\" or \"off\"")
            }
        }
    }

    /// `relay_public_ip`, parsed (`None` when empty).
    pub fn public_ip(&self) -> anyhow::Result<Option<IpAddr>> {
        let s = self.relay_public_ip.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .with_context(|| format!("relay_public_ip {s:?} is not an IP address"))
    }

    fn turn_list(&self) -> Vec<String> {
        self.turn_urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The TURN servers handed to browsers, when `turn_urls` is set.
    pub fn turn(&self) -> Option<supernode_signaling::turn::TurnConfig> {
        let urls = self.turn_list();
        (!urls.is_empty()).then(|| supernode_signaling::turn::TurnConfig {
            urls,
            secret: self.turn_secret.clone(),
        })
    }

    /// The signaling settings, with the `ws_url` derived from the bound address if unset.
    pub fn signaling(&self, bound: SocketAddr) -> SignalingConfig {
        SignalingConfig {
            public_ws_url: if self.public_ws_url.is_empty() {
                let ws = if self.tls() { "wss" } else { "ws" };
                format!("{ws}://{bound}/v1/ws")
            } else {
                self.public_ws_url.clone()
            },
            node_id: self.node_id.clone(),
            body_limit_bytes: self.body_limit_bytes,
            rate_limit_per_second: self.rate_limit_per_second,
            rate_limit_burst: self.rate_limit_burst,
            default_credential_ttl: Duration::from_secs(self.credential_ttl_seconds),
            max_credential_ttl: Duration::from_secs(self.max_credential_ttl_seconds),
            ring_timeout: Duration::from_secs(self.ring_timeout_seconds.max(1)),
            login_timeout: Duration::from_secs(self.login_timeout_seconds.max(1)),
            keepalive_interval: Duration::from_secs(self.keepalive_seconds.max(1)),
            ws_max_message_bytes: self.ws_max_message_bytes,
            ws_rate_limit_per_second: self.ws_rate_limit_per_second,
            ws_rate_limit_burst: self.ws_rate_limit_burst,
            max_participants: self.max_participants.max(1),
            conference_simulcast: self.conference_simulcast,
            turn: self.turn(),
            failover_grace: Duration::from_millis(self.failover_grace_ms),
            ..SignalingConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tls_needs_both_files_and_makes_the_ws_url_wss() {
        let load = |pairs: &[(&str, &str)]| Config::load_from(None, env(pairs), None, None);
        let plain = load(&[]).unwrap();
        assert!(!plain.tls());
        let bound: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            plain.signaling(bound).public_ws_url,
            "ws://127.0.0.1:9/v1/ws"
        );
        assert!(load(&[("SUPERNODE_TLS_CERT", "c.pem")]).is_err());
        assert!(load(&[("SUPERNODE_TLS_KEY", "k.pem")]).is_err());
        let both = [
            ("SUPERNODE_TLS_CERT", "c.pem"),
            ("SUPERNODE_TLS_KEY", "k.pem"),
        ];
        let tls = load(&both).unwrap();
        assert!(tls.tls());
        assert_eq!(
            tls.signaling(bound).public_ws_url,
            "wss://127.0.0.1:9/v1/ws"
        );
        let mut with_demo = both.to_vec();
        with_demo.push(("SUPERNODE_DEMO_PARTNER", "true"));
        assert!(
            load(&with_demo).is_err(),
            "the demo partner needs plain HTTP"
        );
    }

    #[test]
    fn defaults_work_without_a_file() {
        let c = Config::load_from(None, env(&[]), None, None).unwrap();
        assert_eq!(c.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(c.database_url.is_empty());
        let s = c.signaling("127.0.0.1:9".parse().unwrap());
        assert_eq!(s.public_ws_url, "ws://127.0.0.1:9/v1/ws");
    }

    /// Removes a test's temporary directory when the test ends, passed or failed.
    struct RemoveOnDrop(std::path::PathBuf);

    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = std::env::temp_dir().join(format!("sn_cfg_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = RemoveOnDrop(dir.clone());
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nrate_limit_burst = 7\nnode_id = \"n9\"\n",
        )
        .unwrap();
        let c = Config::load_from(Some(&file), env(&[]), None, None).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.rate_limit_burst, 7);
        assert_eq!(c.node_id, "n9");

        let e = env(&[
            ("SUPERNODE_RATE_LIMIT_BURST", "9"),
            ("SUPERNODE_RATE_LIMIT_PER_SECOND", "2.5"),
            ("SUPERNODE_NODE_ID", "12345"),
            ("SUPERNODE_UNRELATED", "x"),
            ("HOME", "/root"),
        ]);
        let c = Config::load_from(Some(&file), e.clone(), None, None).unwrap();
        assert_eq!(c.rate_limit_burst, 9);
        assert_eq!(c.rate_limit_per_second, 2.5);
        assert_eq!(c.node_id, "12345");
        assert_eq!(c.listen.port(), 7000);

        let c = Config::load_from(
            Some(&file),
            e,
            Some(Path::new("/tmp/x")),
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_configs_are_refused() {
        let dir = std::env::temp_dir().join(format!("sn_cfg_bad_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = RemoveOnDrop(dir.clone());
        let file = dir.join("c.toml");
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(Config::load_from(Some(&file), env(&[]), None, None).is_err());
        std::fs::write(&file, "listen = 5\n").unwrap();
        assert!(Config::load_from(Some(&file), env(&[]), None, None).is_err());
        assert!(Config::load_from(None, env(&[("SUPERNODE_LISTEN", "nope")]), None, None).is_err());
        assert!(
            Config::load_from(
                None,
                env(&[("SUPERNODE_CREDENTIAL_TTL_SECONDS", "999999")]),
                None,
                None
            )
            .is_err()
        );
        assert!(
            Config::load_from(Some(Path::new("/nonexistent/x.toml")), env(&[]), None, None)
                .is_err()
        );
        assert!(
            Config::load_from(
                None,
                env(&[("SUPERNODE_RELAY_SPIN_US", "50000")]),
                None,
                None
            )
            .is_err()
        );
    }

    #[test]
    fn turn_and_public_ip_are_checked_and_reach_signaling() {
        let c = Config::load_from(
            None,
            env(&[
                (
                    "SUPERNODE_TURN_URLS",
                    "turn:127.0.0.1:3478?transport=udp, turns:t.example:5349",
                ),
                ("SUPERNODE_TURN_SECRET", "s"),
                ("SUPERNODE_RELAY_PUBLIC_IP", "203.0.113.9"),
            ]),
            None,
            None,
        )
        .unwrap();
        let turn = c.signaling("127.0.0.1:9".parse().unwrap()).turn.unwrap();
        assert_eq!(
            turn.urls,
            ["turn:127.0.0.1:3478?transport=udp", "turns:t.example:5349"]
        );
        assert_eq!(turn.secret, "s");
        assert_eq!(c.public_ip().unwrap(), Some("203.0.113.9".parse().unwrap()));
        let none = Config::load_from(None, env(&[]), None, None).unwrap();
        assert!(
            none.signaling("127.0.0.1:9".parse().unwrap())
                .turn
                .is_none()
        );
        assert_eq!(none.public_ip().unwrap(), None);
        for bad in [
            vec![("SUPERNODE_TURN_URLS", "turn:127.0.0.1:3478")],
            vec![
                ("SUPERNODE_TURN_URLS", "http://x"),
                ("SUPERNODE_TURN_SECRET", "s"),
            ],
            vec![("SUPERNODE_RELAY_PUBLIC_IP", "not-an-ip")],
        ] {
            assert!(
                Config::load_from(None, env(&bad), None, None).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_shared_port_buffer_is_bounded_and_reaches_the_relay() {
        let load = |pairs: &[(&str, &str)]| Config::load_from(None, env(pairs), None, None);
        for v in ["0", "255", "262145", "-1", "lots"] {
            assert!(
                load(&[("SUPERNODE_RELAY_SHARED_PORT_BUFFER_KB", v)]).is_err(),
                "relay_shared_port_buffer_kb={v} accepted"
            );
        }
        let default = load(&[]).unwrap();
        assert_eq!(
            default.relay().shared_port_buffer,
            supernode_relay::handle::SHARED_PORT_BUFFER
        );
        let set = load(&[("SUPERNODE_RELAY_SHARED_PORT_BUFFER_KB", "2048")]).unwrap();
        assert_eq!(set.relay().shared_port_buffer, 2 << 20);
    }

    #[test]
    fn client_limits_are_validated_and_reach_signaling() {
        for (k, v) in [
            ("SUPERNODE_WS_MAX_MESSAGE_BYTES", "10"),
            ("SUPERNODE_WS_MAX_MESSAGE_BYTES", "999999999"),
            ("SUPERNODE_WS_RATE_LIMIT_PER_SECOND", "0"),
            ("SUPERNODE_WS_RATE_LIMIT_PER_SECOND", "-3"),
            ("SUPERNODE_WS_RATE_LIMIT_BURST", "0"),
            ("SUPERNODE_MAX_CONNECTIONS", "0"),
            ("SUPERNODE_MAX_CONNECTIONS_PER_IP", "0"),
            ("SUPERNODE_HEADER_READ_TIMEOUT_SECONDS", "0"),
            ("SUPERNODE_BODY_TIMEOUT_SECONDS", "0"),
            ("SUPERNODE_BODY_TIMEOUT_SECONDS", "100000"),
        ] {
            assert!(
                Config::load_from(None, env(&[(k, v)]), None, None).is_err(),
                "{k}={v} accepted"
            );
        }
        let c = Config::load_from(
            None,
            env(&[
                ("SUPERNODE_WS_MAX_MESSAGE_BYTES", "4096"),
                ("SUPERNODE_WS_RATE_LIMIT_PER_SECOND", "5"),
                ("SUPERNODE_WS_RATE_LIMIT_BURST", "7"),
                ("SUPERNODE_MAX_CONNECTIONS", "300"),
                ("SUPERNODE_MAX_CONNECTIONS_PER_IP", "30"),
                ("SUPERNODE_HEADER_READ_TIMEOUT_SECONDS", "2"),
            ]),
            None,
            None,
        )
        .unwrap();
        let s = c.signaling("127.0.0.1:9".parse().unwrap());
        assert_eq!(s.ws_max_message_bytes, 4096);
        assert_eq!(s.ws_rate_limit_per_second, 5.0);
        assert_eq!(s.ws_rate_limit_burst, 7);
        let h = c.http_limits();
        assert_eq!(h.max_connections, 300);
        assert_eq!(h.max_connections_per_ip, 30);
        assert_eq!(h.header_read_timeout, Duration::from_secs(2));
        let d = Config::default();
        assert_eq!(d.ws_max_message_bytes, 65_536);
        assert_eq!(d.max_connections, 10_000);
        assert_eq!(d.body_timeout_seconds, 10);
    }

    #[test]
    fn relay_idle_policy_and_early_media_reach_the_relay_config() {
        let c = Config::load_from(
            None,
            env(&[
                ("SUPERNODE_RELAY_SPIN_US", "0"),
                ("SUPERNODE_RELAY_EARLY_MEDIA_MS", "500"),
            ]),
            None,
            None,
        )
        .unwrap();
        let r = c.relay();
        assert_eq!(r.spin, Duration::ZERO);
        assert_eq!(r.core.early_media_max_age, Duration::from_millis(500));
        let d = Config::default().relay();
        assert_eq!(d.spin, Duration::from_micros(200));
        assert_eq!(d.core.early_media_max_age, Duration::from_millis(200));
    }

    #[test]
    fn relay_nack_cache_is_first_nack_always_or_off_and_nothing_else() {
        use supernode_relay::core::NackCachePolicy;
        let load = |v: &str| {
            Config::load_from(None, env(&[("SUPERNODE_RELAY_NACK_CACHE", v)]), None, None)
        };
        let d = Config::default().relay().core;
        assert_eq!(d.nack_cache_policy, NackCachePolicy::FromFirstNack);
        assert!(d.nack_cache_bytes > 0);
        let a = load("always").unwrap().relay().core;
        assert_eq!(a.nack_cache_policy, NackCachePolicy::Always);
        assert_eq!(load("off").unwrap().relay().core.nack_cache_bytes, 0);
        let e = load("sometimes").unwrap_err().to_string();
        assert!(e.contains("relay_nack_cache"), "{e}");
    }
}
