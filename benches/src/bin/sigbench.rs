//! `sigbench`: signaling load over real HTTP and WebSocket on loopback.
//!
//! Starts an in-process signaling service (SQLite in a temporary directory, the same router
//! `supernode run` serves) on a free loopback port, then measures, with `--concurrency`
//! clients at once:
//!
//! 1. accounts created/s (`POST /v1/accounts`),
//! 2. credentials issued/s (`POST /v1/accounts/{id}/credentials`),
//! 3. WebSocket logins/s (connect, `login`, `login_ok`, close),
//! 4. call set-ups/s: `invite` → `ringing`/`incoming_call` → `accept` → `accepted` →
//!    `hangup` → `call_ended` on both sides, over `--concurrency` caller/callee pairs.
//!
//! No relay is wired in this in-process mode, so call set-up here excludes relay
//! transports. Prints a table, then one JSON object per line.
//!
//! `sigbench relay --supernode OLD --supernode NEW` is the mode with real relay transports
//! against real `supernode` processes: the WebSocket ping round trip while calls are set up
//! at full rate, and call set-ups/s (see `benches/src/sigbench/relay.rs`).
//!
//! `sigbench churn --supernode BIN` creates and releases 10,000 calls with relay transports
//! (WebSocket and relay REST) and checks that the node's sessions, transports, ports and
//! file descriptors come back to their baseline (see `benches/src/sigbench/churn.rs`).
//!
//! `cargo run --release -p supernode-benches --bin sigbench -- --help`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use supernode_proto::ids::AccountId;
use supernode_proto::protocol::{
    ClientKind, ClientMsg, MediaKind, ServerMsg, decode_server, encode_client,
};
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::{Signaling, SignalingConfig, Store};
use tokio_tungstenite::tungstenite::Message;

#[path = "../sigbench/churn.rs"]
mod churn;
#[path = "../sigbench/relay.rs"]
mod relay;

/// Signaling load generator.
#[derive(Debug, Parser)]
#[command(name = "sigbench")]
struct Args {
    /// Another mode (default: the in-process signaling load).
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Accounts to create (and credentials to issue).
    #[arg(long, default_value_t = 2000)]
    accounts: usize,
    /// WebSocket logins to perform.
    #[arg(long, default_value_t = 1000)]
    logins: usize,
    /// Calls set up and torn down per caller/callee pair.
    #[arg(long, default_value_t = 200)]
    calls_per_pair: usize,
    /// Concurrent clients (and caller/callee pairs).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Runtime worker threads of the server and the clients together.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Modes besides the default one.
#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Ping round trip while calls with real relay transports are set up at full rate,
    /// against `supernode` processes (old and new in one run).
    Relay(relay::RelayArgs),
    /// Creates and releases many calls with relay transports (WebSocket and relay REST)
    /// against a `supernode` process and checks that sessions, transports, ports and file
    /// descriptors come back to their baseline.
    Churn(churn::ChurnArgs),
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    match args.mode {
        Some(Mode::Relay(r)) => rt.block_on(relay::run(r)),
        Some(Mode::Churn(c)) => {
            if rt.block_on(churn::run(c))? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        None => rt.block_on(run(args)),
    }
}

struct Row {
    name: &'static str,
    ops: usize,
    secs: f64,
}

async fn run(args: Args) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sigbench_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Store::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cfg = SignalingConfig {
        public_ws_url: format!("ws://{addr}/v1/ws"),
        rate_limit_per_second: 1e9,
        rate_limit_burst: u32::MAX,
        ws_rate_limit_per_second: 1e9,
        ws_rate_limit_burst: u32::MAX,
        ..SignalingConfig::default()
    };
    let signaling =
        Signaling::new(store.clone(), cfg, None, Arc::new(InMemoryDirectory::new())).await?;
    let app = signaling.router();
    tokio::spawn(async move { axum_serve(listener, app).await });
    let partner = supernode_signaling::admin::create_partner(&store, "sigbench", false, 0).await?;
    let key = Arc::new(partner.api_key);
    let base = Arc::new(format!("http://{addr}"));
    let http = reqwest::Client::new();
    let c = args.concurrency.max(1);
    let mut rows = Vec::new();

    // 1. Accounts.
    let t = Instant::now();
    let ids = parallel(c, args.accounts, {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        move |_| {
            let (http, base, key) = (http.clone(), base.clone(), key.clone());
            async move {
                let r = http
                    .post(format!("{base}/v1/accounts"))
                    .bearer_auth(&*key)
                    .json(&serde_json::json!({}))
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("create account: {}", r.status());
                }
                let v: serde_json::Value = r.json().await?;
                Ok(v["id"].as_str().context("id")?.to_owned())
            }
        }
    })
    .await?;
    rows.push(Row {
        name: "accounts_created",
        ops: ids.len(),
        secs: t.elapsed().as_secs_f64(),
    });

    // 2. Credentials.
    let ids = Arc::new(ids);
    let t = Instant::now();
    let tokens = parallel(c, ids.len(), {
        let (http, base, key, ids) = (http.clone(), base.clone(), key.clone(), ids.clone());
        move |i| {
            let (http, base, key, ids) = (http.clone(), base.clone(), key.clone(), ids.clone());
            async move { credential(&http, &base, &key, &ids[i]).await }
        }
    })
    .await?;
    rows.push(Row {
        name: "credentials_issued",
        ops: tokens.len(),
        secs: t.elapsed().as_secs_f64(),
    });

    // 3. WebSocket logins.
    let tokens = Arc::new(tokens);
    let ws_url = Arc::new(format!("ws://{addr}/v1/ws"));
    let t = Instant::now();
    let n = parallel(c, args.logins, {
        let (tokens, ws_url) = (tokens.clone(), ws_url.clone());
        move |i| {
            let (tokens, ws_url) = (tokens.clone(), ws_url.clone());
            async move {
                let mut ws = login(&ws_url, &tokens[i % tokens.len()]).await?;
                ws.close(None).await.ok();
                Ok(())
            }
        }
    })
    .await?;
    rows.push(Row {
        name: "ws_logins",
        ops: n.len(),
        secs: t.elapsed().as_secs_f64(),
    });

    // 4. Call set-ups over `c` pairs (accounts 0..2c).
    if ids.len() < 2 * c {
        bail!("need at least 2 × concurrency accounts");
    }
    let mut pairs = Vec::new();
    for p in 0..c {
        let caller = login(&ws_url, &tokens[2 * p]).await?;
        let callee = login(&ws_url, &tokens[2 * p + 1]).await?;
        let callee_id = AccountId::parse(&ids[2 * p + 1]).context("id")?;
        pairs.push((caller, callee, callee_id));
    }
    let t = Instant::now();
    let per = args.calls_per_pair;
    let mut tasks = Vec::new();
    for (caller, callee, callee_id) in pairs {
        tasks.push(tokio::spawn(call_loop(caller, callee, callee_id, per)));
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await??;
    }
    rows.push(Row {
        name: "call_setups",
        ops: calls,
        secs: t.elapsed().as_secs_f64(),
    });

    println!(
        "sigbench: signaling over loopback HTTP/WebSocket, {c} concurrent clients, {} runtime threads (server and clients share them)",
        args.threads
    );
    println!(
        "{:<22} {:>8} {:>10} {:>12}",
        "what", "ops", "seconds", "ops/s"
    );
    for r in &rows {
        println!(
            "{:<22} {:>8} {:>10.3} {:>12.0}",
            r.name,
            r.ops,
            r.secs,
            r.ops as f64 / r.secs
        );
    }
    for r in &rows {
        println!(
            "{}",
            serde_json::json!({"what": r.name, "ops": r.ops, "seconds": r.secs, "per_second": (r.ops as f64 / r.secs).round()})
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, app).await;
}

async fn credential(http: &reqwest::Client, base: &str, key: &str, id: &str) -> Result<String> {
    let r = http
        .post(format!("{base}/v1/accounts/{id}/credentials"))
        .bearer_auth(key)
        .json(&serde_json::json!({}))
        .send()
        .await?;
    if r.status() != 201 {
        bail!("credential: {}", r.status());
    }
    let v: serde_json::Value = r.json().await?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}

async fn login(url: &str, token: &str) -> Result<Ws> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    send(
        &mut ws,
        &ClientMsg::Login {
            token: token.to_owned(),
            client: ClientKind::Edge,
        },
    )
    .await?;
    match recv(&mut ws).await? {
        ServerMsg::LoginOk { .. } => Ok(ws),
        other => bail!("login: {other:?}"),
    }
}

async fn send(ws: &mut Ws, m: &ClientMsg) -> Result<()> {
    ws.send(Message::text(encode_client(m))).await?;
    Ok(())
}

async fn recv(ws: &mut Ws) -> Result<ServerMsg> {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("timeout")?
            .context("closed")??;
        if let Message::Text(t) = f {
            return Ok(decode_server(t.as_str())?);
        }
    }
}

async fn call_loop(mut caller: Ws, mut callee: Ws, to: AccountId, n: usize) -> Result<usize> {
    for _ in 0..n {
        send(
            &mut caller,
            &ClientMsg::Invite {
                to: to.clone(),
                media: MediaKind::Audio,
                client_ref: None,
                sdp: None,
            },
        )
        .await?;
        let call_id = match recv(&mut caller).await? {
            ServerMsg::Ringing { call_id, .. } => call_id,
            other => bail!("invite: {other:?}"),
        };
        match recv(&mut callee).await? {
            ServerMsg::IncomingCall { call_id: c, .. } if c == call_id => {}
            other => bail!("incoming: {other:?}"),
        }
        send(
            &mut callee,
            &ClientMsg::Accept {
                call_id: call_id.clone(),
                sdp: None,
            },
        )
        .await?;
        match recv(&mut caller).await? {
            ServerMsg::Accepted { .. } => {}
            other => bail!("accepted: {other:?}"),
        }
        send(&mut caller, &ClientMsg::Hangup { call_id }).await?;
        for ws in [&mut caller, &mut callee] {
            match recv(ws).await? {
                ServerMsg::CallEnded { .. } => {}
                other => bail!("ended: {other:?}"),
            }
        }
    }
    Ok(n)
}

/// Runs `f(i)` for `i in 0..n` with at most `c` in flight; returns results in order.
async fn parallel<T, F, Fut>(c: usize, n: usize, f: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (f, next) = (f.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                out.push((i, f(i).await?));
            }
            Ok::<_, anyhow::Error>(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, v)| v).collect())
}
