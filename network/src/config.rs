//! What a node needs to join a network: NATS URLs, credentials, its id, region and role.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::NetworkError;

/// A node's role in placement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An ordinary node.
    #[default]
    Standard,
    /// A mega-supernode on a dedicated server: takes the endpoints of a dead node first.
    Mega,
}

impl std::str::FromStr for Role {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Self::Standard),
            "mega" => Ok(Self::Mega),
            other => Err(NetworkError::Config(format!(
                "role must be \"standard\" or \"mega\", not {other:?}"
            ))),
        }
    }
}

/// How a node authenticates to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication (a private, loopback-only cluster).
    #[default]
    None,
    /// `user` / `password` (nats-server `--user`/`--pass` or an `authorization` block).
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// A token (nats-server `--auth`).
    Token(String),
}

impl std::fmt::Debug for Credentials {
    // Secrets are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            Self::Token(_) => f.write_str("Token(***)"),
        }
    }
}

/// Settings of one node of a network. `urls` empty means no network (one node alone).
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// NATS server URLs (`nats://host:port`); several for a cluster. The client connects to
    /// one and fails over to the others.
    pub urls: Vec<String>,
    /// This node's id: `[A-Za-z0-9_-]`, 1–64 characters (it is part of subjects and keys).
    pub node_id: String,
    /// The region placement groups nodes by.
    pub region: String,
    /// Standard or mega.
    pub role: Role,
    /// NATS credentials.
    pub credentials: Credentials,
    /// How often the node heartbeats into the registry.
    pub heartbeat_interval: Duration,
    /// A node silent for this long is dead for placement and its directory records are
    /// ignored.
    pub dead_after: Duration,
    /// Replicas of the KV buckets (3 in a 3-server cluster, so one server may die).
    pub kv_replicas: usize,
    /// How long one cross-node request waits for its answer.
    pub request_timeout: Duration,
    /// How many times a cross-node request is sent (same message id) before it fails.
    pub request_attempts: u32,
    /// How long a lost NATS connection may take to come back (the client fails over to
    /// another server of the list) before new cross-node work fails with
    /// `network_unavailable`; work started meanwhile waits for it.
    pub reconnect_grace: Duration,
    /// How long a KV write that decides something (an answer claim) is retried while its
    /// bucket's stream has no leader. After the leader's server dies, the other replicas
    /// wait 4–9 s before they campaign (nats-server's Raft election timeouts), so this
    /// covers one election and a second round.
    pub kv_retry_window: Duration,
    /// Prefix of every subject and bucket name (several test networks may share a cluster).
    pub prefix: String,
    /// The WebSocket URL clients of this node use (published in its heartbeat for
    /// placement).
    pub ws_url: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            node_id: "supernode-1".into(),
            region: "default".into(),
            role: Role::Standard,
            credentials: Credentials::None,
            heartbeat_interval: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            kv_replicas: 1,
            request_timeout: Duration::from_millis(1000),
            request_attempts: 3,
            reconnect_grace: Duration::from_secs(4),
            kv_retry_window: Duration::from_secs(20),
            prefix: "sn".into(),
            ws_url: String::new(),
        }
    }
}

impl NetworkConfig {
    /// Checks what can be checked without a server.
    pub fn validate(&self) -> Result<(), NetworkError> {
        if self.urls.is_empty() {
            return Err(NetworkError::Config("no NATS URL".into()));
        }
        if !valid_token(&self.node_id, 64) {
            return Err(NetworkError::Config(format!(
                "node_id {:?} must be 1-64 of [A-Za-z0-9_-]",
                self.node_id
            )));
        }
        if !valid_token(&self.prefix, 32) {
            return Err(NetworkError::Config(format!(
                "prefix {:?} must be 1-32 of [A-Za-z0-9_-]",
                self.prefix
            )));
        }
        if self.heartbeat_interval.is_zero() || self.dead_after <= self.heartbeat_interval {
            return Err(NetworkError::Config(
                "dead_after must be longer than the heartbeat interval".into(),
            ));
        }
        if self.request_attempts == 0 || self.kv_replicas == 0 {
            return Err(NetworkError::Config(
                "request_attempts and kv_replicas must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `s` is 1..=`max` characters of `[A-Za-z0-9_-]` (safe in subjects, keys and
/// bucket names).
pub fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Splits a URL list (`SUPERNODE_NATS_URL=nats://a:4222,nats://b:4222`; commas or white
/// space) into URLs.
pub fn parse_urls(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The node id kept in `data_dir/node_id`: read it, or make one (`node-` and 16 random hex
/// digits) and write it there, so a restarted node keeps its id.
pub fn node_id_in(data_dir: &Path) -> io::Result<String> {
    let path = data_dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim().to_owned();
            if valid_token(&id, 64) {
                return Ok(id);
            }
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a node id: {id:?}", path.display()),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = format!("node-{:016x}", rand::random::<u64>());
            std::fs::create_dir_all(data_dir)?;
            std::fs::write(&path, format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_roles_and_ids() {
        assert_eq!(
            parse_urls("nats://a:1, nats://b:2\nnats://c:3,,"),
            vec!["nats://a:1", "nats://b:2", "nats://c:3"]
        );
        assert_eq!("mega".parse::<Role>().unwrap(), Role::Mega);
        assert!("giant".parse::<Role>().is_err());
        assert!(valid_token("node-1_a", 64));
        assert!(!valid_token("node.1", 64));
        assert!(!valid_token("", 64));
        let mut cfg = NetworkConfig::default();
        assert!(cfg.validate().is_err(), "no URL");
        cfg.urls = vec!["nats://127.0.0.1:4222".into()];
        cfg.validate().unwrap();
        cfg.node_id = "a b".into();
        assert!(cfg.validate().is_err());
        let creds = Credentials::UserPassword {
            user: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }

    #[test]
    fn node_id_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("sn-nodeid-{}", rand::random::<u64>()));
        let a = node_id_in(&dir).unwrap();
        assert!(a.starts_with("node-") && valid_token(&a, 64), "{a}");
        assert_eq!(node_id_in(&dir).unwrap(), a);
        std::fs::write(dir.join("node_id"), "bad id\n").unwrap();
        assert!(node_id_in(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
