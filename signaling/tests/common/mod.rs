//! Helpers shared by the signaling integration tests: databases, a served instance on a
//! loopback port, an HTTP client and a WebSocket client.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use supernode_proto::protocol::SrtpKeying;
use supernode_proto::relay_ops::{
    BrowserGrant, BrowserOffer, DtlsFingerprint, IceCandidate, RelayOp, RelayOpError, RelayOutcome,
    RelayResult, TransportGrant, TransportKind,
};
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::ids::{CallId, EndpointId, RelaySessionId, TransportId};
use supernode_signaling::protocol::{
    ClientKind, ClientMsg, ServerMsg, decode_server, encode_client,
};
use supernode_signaling::relay_access::RelayReply;
use supernode_signaling::{RelayAccess, Signaling, SignalingConfig, Store};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The PostgreSQL URL of the storage tests, or `None` after printing `SKIP:` (a failure
/// under `SUPERNODE_REQUIRE_EXTERNAL=1`: the rule is `supernode_testkit::external`'s).
pub fn postgres_url() -> Option<String> {
    match std::env::var("SUPERNODE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            supernode_testkit::external::unavailable(
                "PostgreSQL storage test: SUPERNODE_TEST_POSTGRES_URL is not set",
            );
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// A fresh SQLite database in a temporary directory of its own, removed when this is
/// dropped.
pub struct TempDb {
    /// The database's URL.
    pub url: String,
    dir: std::path::PathBuf,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh SQLite database file (see [`TempDb`]).
pub fn temp_sqlite() -> TempDb {
    let dir = std::env::temp_dir().join(unique("supernode_sig"));
    std::fs::create_dir_all(&dir).unwrap();
    TempDb {
        url: format!("sqlite://{}", dir.join("test.db").display()),
        dir,
    }
}

/// A fresh schema in the test PostgreSQL database, as a URL whose connections use it.
pub async fn postgres_schema_url(base: &str) -> String {
    let schema = unique("t");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(base)
        .await
        .expect("connect postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// A relay test double: a real in-process executor of the conference core's relay
/// operations that hands out loopback addresses and records every session, transport,
/// subscription and release. It answers at once (over the oneshot, like the host's).
#[derive(Default)]
pub struct RecordingRelay {
    pub state: Mutex<RelayLog>,
}

#[derive(Default, Debug)]
pub struct RelayLog {
    /// Transports handed out so far.
    pub allocated_legs: u64,
    /// The call of each live session.
    pub sessions: std::collections::HashMap<RelaySessionId, CallId>,
    /// Live calls and their transports.
    pub live: std::collections::BTreeMap<CallId, Vec<TransportId>>,
    pub allocations: u64,
    pub releases: u64,
    /// Subscriptions (call, source, sink).
    pub connected: Vec<(CallId, TransportId, TransportId)>,
    /// The next session fails to be created.
    pub fail_next: bool,
    /// While set, the relay says it takes no new calls (a draining host).
    pub draining: bool,
    /// What each browser transport was asked with (`AddTransport{Browser}`).
    pub browser_offers: Vec<(TransportId, BrowserOffer)>,
}

impl RecordingRelay {
    pub fn live_calls(&self) -> Vec<CallId> {
        self.state.lock().unwrap().live.keys().cloned().collect()
    }

    /// Waits (up to 5 s) until the live calls are `want` (releases run after the hub has
    /// sent `call_ended`); returns the last seen.
    pub async fn wait_live(&self, want: Vec<CallId>) -> Vec<CallId> {
        for _ in 0..500 {
            if self.live_calls() == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.live_calls()
    }

    fn run(&self, op: &RelayOp) -> Result<RelayOutcome, RelayOpError> {
        let mut s = self.state.lock().unwrap();
        match op {
            RelayOp::CreateSession(c) => {
                if std::mem::take(&mut s.fail_next) {
                    return Err(RelayOpError::Exhausted);
                }
                assert!(
                    !s.live.contains_key(&c.call),
                    "double allocation for {}",
                    c.call
                );
                s.sessions.insert(c.session.clone(), c.call.clone());
                s.live.insert(c.call.clone(), Vec::new());
                s.allocations += 1;
                Ok(RelayOutcome::SessionCreated)
            }
            RelayOp::AddTransport(t) => {
                let call = s
                    .sessions
                    .get(&t.session)
                    .cloned()
                    .ok_or(RelayOpError::UnknownSession)?;
                s.allocated_legs += 1;
                let n = s.allocated_legs;
                s.live.entry(call).or_default().push(t.transport.clone());
                let address =
                    SocketAddr::from(([127, 0, 0, 1], 40000 + (n % 20000) as u16)).to_string();
                if t.kind == TransportKind::Browser {
                    let offer = t.browser.clone().ok_or(RelayOpError::Unavailable(
                        "a browser transport without its offer".into(),
                    ))?;
                    s.browser_offers.push((t.transport.clone(), offer));
                    return Ok(RelayOutcome::TransportAdded(TransportGrant {
                        transport: t.transport.clone(),
                        address: address.clone(),
                        srtp: None,
                        browser: Some(BrowserGrant {
                            ice_ufrag: format!("rly{n}"),
                            ice_pwd: format!("relaypassword{n:0>12}"),
                            fingerprint: DtlsFingerprint {
                                algorithm: "sha-256".into(),
                                value: vec![format!("{:02X}", n as u8); 32].join(":"),
                            },
                            candidates: vec![IceCandidate {
                                foundation: "1".into(),
                                priority: 2_130_706_431,
                                address,
                            }],
                        }),
                    }));
                }
                let profile = t.srtp.unwrap_or_default();
                Ok(RelayOutcome::TransportAdded(TransportGrant {
                    transport: t.transport.clone(),
                    address: SocketAddr::from(([127, 0, 0, 1], 40000 + (n % 20000) as u16))
                        .to_string(),
                    srtp: Some(SrtpKeying {
                        profile,
                        key_b64: base64_of(&vec![n as u8; profile.key_and_salt_len()]),
                    }),
                    browser: None,
                }))
            }
            RelayOp::Subscribe(sub) => {
                let call = s
                    .sessions
                    .get(&sub.session)
                    .cloned()
                    .ok_or(RelayOpError::UnknownSession)?;
                let legs = s.live.get(&call).cloned().unwrap_or_default();
                if !legs.contains(&sub.source) || !legs.contains(&sub.sink) {
                    return Err(RelayOpError::UnknownTransport);
                }
                s.connected
                    .push((call, sub.source.clone(), sub.sink.clone()));
                Ok(RelayOutcome::Subscribed)
            }
            RelayOp::Release(r) => {
                if let Some(call) = s.sessions.remove(&r.session) {
                    s.live.remove(&call);
                    s.releases += 1;
                }
                Ok(RelayOutcome::Released)
            }
            _ => Err(RelayOpError::Unavailable("unknown operation".into())),
        }
    }
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl RelayAccess for RecordingRelay {
    fn accepting_calls(&self) -> bool {
        !self.state.lock().unwrap().draining
    }

    fn submit(&self, ops: Vec<RelayOp>) -> RelayReply {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let results = ops
            .iter()
            .map(|op| RelayResult {
                op: op.id().clone(),
                outcome: self.run(op),
            })
            .collect();
        let _ = tx.send(results);
        rx
    }
}

/// A served signaling instance on a loopback port.
pub struct Server {
    pub addr: SocketAddr,
    pub signaling: Signaling,
    pub relay: Arc<RecordingRelay>,
    pub store: Store,
    pub directory: Arc<InMemoryDirectory>,
    /// The database directory `start` made, removed with the server.
    pub _db: Option<TempDb>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }
}

pub fn test_config() -> SignalingConfig {
    SignalingConfig {
        rate_limit_per_second: 1000.0,
        rate_limit_burst: 1000,
        ..SignalingConfig::default()
    }
}

pub async fn start(cfg: SignalingConfig) -> Server {
    let db = temp_sqlite();
    let mut server = start_with(&db.url, cfg).await;
    server._db = Some(db);
    server
}

pub async fn start_with(db_url: &str, mut cfg: SignalingConfig) -> Server {
    let store = Store::connect(db_url).await.expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    cfg.public_ws_url = format!("ws://{addr}/v1/ws");
    let relay = Arc::new(RecordingRelay::default());
    let directory = Arc::new(InMemoryDirectory::new());
    let signaling = Signaling::new(
        store.clone(),
        cfg,
        Some(relay.clone() as Arc<dyn RelayAccess>),
        directory.clone(),
    )
    .await
    .expect("signaling");
    let app = signaling.router();
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        signaling,
        relay,
        store,
        directory,
        _db: None,
    }
}

/// Creates a partner and returns `(id, api key)`.
pub async fn partner(server: &Server, name: &str) -> (String, String) {
    let p = supernode_signaling::admin::create_partner(&server.store, name, false, 1_000)
        .await
        .unwrap();
    (p.id, p.api_key)
}

/// Creates an account through the API and returns its id.
pub async fn account(server: &Server, key: &str) -> String {
    supernode_testkit::rest::account(&server.url(""), key, &serde_json::json!({})).await
}

/// Issues a credential through the API and returns the token.
pub async fn token(server: &Server, key: &str, account: &str) -> String {
    supernode_testkit::rest::token(&server.url(""), key, account).await
}

/// A WebSocket test client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(server: &Server) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(server.ws_url(), None, true)
            .await
            .expect("ws connect");
        Self { ws }
    }

    /// Connects and logs in as an edge client; returns the client and its endpoint id.
    pub async fn login(server: &Server, token: &str) -> (Self, EndpointId) {
        Self::login_as(server, token, ClientKind::Edge).await
    }

    /// Connects and logs in as a `client` kind; returns the client and its endpoint id.
    pub async fn login_as(server: &Server, token: &str, client: ClientKind) -> (Self, EndpointId) {
        let mut c = Self::connect(server).await;
        c.send(&ClientMsg::Login {
            token: token.to_owned(),
            client,
        })
        .await;
        match c.recv().await {
            ServerMsg::LoginOk { endpoint_id, .. } => (c, endpoint_id),
            other => panic!("expected login_ok, got {other:?}"),
        }
    }

    pub async fn send(&mut self, m: &ClientMsg) {
        self.send_text(&encode_client(m)).await;
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).await.unwrap();
    }

    /// The next server message (skipping control frames); panics after 5 s.
    pub async fn recv(&mut self) -> ServerMsg {
        loop {
            let f = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("socket ended")
                .expect("socket error");
            match f {
                Message::Text(t) => return decode_server(t.as_str()).expect("server JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits until the server closes the socket; returns whether it closed (not timed out).
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Asserts nothing but control frames arrives within `ms`.
    pub async fn quiet(&mut self, ms: u64) {
        let end = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(end, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
