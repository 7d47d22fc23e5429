//! `sigbench relay` mode: signaling latency while calls with real relay transports are set
//! up at the highest rate the machine holds, against real `supernode` processes.
//!
//! For each `--supernode` executable given (e.g. the old and the new build), in one run:
//! starts `supernode run` on loopback in a fresh data directory (a partner made with
//! `supernode admin`), creates accounts and credentials over REST, then
//!
//! 1. measures the WebSocket round trip of a `ping` message (`pong` back) with nothing else
//!    going on (idle), then
//! 2. runs `--pairs` caller/callee pairs that set calls up and tear them down back to back
//!    (`invite` → `incoming_call` → `accept` → `accepted` + `media` on both sides, with the
//!    relay's transports → `hangup` → `call_ended` on both sides) for `--seconds`, while
//!    `--pingers` other endpoints keep measuring the ping round trip.
//!
//! The frames are built as JSON values with the version the server speaks (found at login:
//! version 2, else 1), so the same run drives servers of both protocol versions. Prints a
//! table (p50/p99/max of the ping round trip idle and under load, call set-ups/s) and one
//! JSON object per server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Options of the relay mode.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// `supernode` executables to measure, in order (give the old one and the new one).
    #[arg(long = "supernode", required = true)]
    pub supernodes: Vec<PathBuf>,
    /// Caller/callee pairs setting calls up concurrently.
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,
    /// Endpoints measuring the ping round trip meanwhile.
    #[arg(long, default_value_t = 2)]
    pub pingers: usize,
    /// Seconds of load (and of idle pinging before it).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Pause between two pings of one pinger, ms.
    #[arg(long, default_value_t = 5)]
    pub ping_interval_ms: u64,
}

/// What one server gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    name: String,
    version: u64,
    idle: Percentiles,
    loaded: Percentiles,
    setups: u64,
    failed: u64,
    secs: f64,
}

#[derive(Debug, Clone, Default)]
struct Percentiles {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn percentiles(mut v: Vec<f64>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Percentiles {
        n: v.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: v[v.len() - 1],
    }
}

pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) base: String,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start(bin: &Path, tag: usize) -> Result<(Node, String)> {
    start_with(bin, tag, &[])
}

/// Starts `supernode run` like [`start`], the partner made with `partner_flags` (e.g.
/// `--relay` for a key that may use the relay REST API).
pub(crate) fn start_with(bin: &Path, tag: usize, partner_flags: &[&str]) -> Result<(Node, String)> {
    let dir = std::env::temp_dir().join(format!("sigbench_relay_{}_{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    // `admin --data-dir D partner create`: the spelling old and new builds both take.
    let out = Command::new(bin)
        .args(["admin", "--data-dir"])
        .arg(&dir)
        .args(["partner", "create", "sigbench"])
        .args(partner_flags)
        .env_remove("SUPERNODE_CONFIG")
        .output()
        .context("running supernode admin")?;
    if !out.status.success() {
        bail!("admin: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let key = v["api_key"].as_str().context("api_key")?.to_owned();
    let mut child = Command::new(bin)
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("SUPERNODE_CONFIG")
        .env("SUPERNODE_RATE_LIMIT_PER_SECOND", "1000000")
        .env("SUPERNODE_RATE_LIMIT_BURST", "1000000")
        // The pingers send a frame every few ms, above the per-WebSocket flood limit of
        // builds that have one (older builds ignore the variables).
        .env("SUPERNODE_WS_RATE_LIMIT_PER_SECOND", "1000000")
        .env("SUPERNODE_WS_RATE_LIMIT_BURST", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting supernode run")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let l = lines.next().context("supernode exited")??;
        if let Some(a) = l.strip_prefix("supernode: listening on ") {
            break a.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok((Node { child, base, dir }, key))
}

pub(crate) async fn account(
    http: &reqwest::Client,
    base: &str,
    key: &str,
) -> Result<(String, String)> {
    let r = http
        .post(format!("{base}/v1/accounts"))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await?;
    let v: Value = r.json().await?;
    let id = v["id"].as_str().context("id")?.to_owned();
    let r = http
        .post(format!("{base}/v1/accounts/{id}/credentials"))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await?;
    let v: Value = r.json().await?;
    Ok((id, v["token"].as_str().context("token")?.to_owned()))
}

pub(crate) struct Client {
    ws: Ws,
    v: u64,
}

impl Client {
    pub(crate) async fn login(url: &str, token: &str) -> Result<Self> {
        for v in [2u64, 1] {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
            let mut c = Client { ws, v };
            c.send(json!({"type": "login", "token": token})).await?;
            let m = c.recv().await?;
            match m["type"].as_str() {
                Some("login_ok") => return Ok(c),
                Some("error") if m["code"] == "unsupported_version" => continue,
                _ => bail!("login: {m}"),
            }
        }
        bail!("the server speaks neither protocol version 2 nor 1")
    }

    async fn send(&mut self, mut m: Value) -> Result<()> {
        m["v"] = json!(self.v);
        self.ws.send(Message::text(m.to_string())).await?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<Value> {
        loop {
            let f = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .context("timeout")?
                .context("closed")??;
            if let Message::Text(t) = f {
                return Ok(serde_json::from_str(t.as_str())?);
            }
        }
    }

    /// The next message of type `ty` (others are skipped).
    async fn expect(&mut self, ty: &str) -> Result<Value> {
        loop {
            let m = self.recv().await?;
            if m["type"] == ty {
                return Ok(m);
            }
            if m["type"] == "call_ended" || m["type"] == "error" {
                bail!("waiting for {ty}: {m}");
            }
        }
    }
}

/// One call set up (with relay transports) and torn down; `Ok(false)` when the server
/// refused or failed it (the loop goes on).
pub(crate) async fn one_call(caller: &mut Client, callee: &mut Client, to: &str) -> Result<bool> {
    caller.send(json!({"type": "invite", "to": to})).await?;
    let call_id = caller.expect("ringing").await?["call_id"].clone();
    callee.expect("incoming_call").await?;
    callee
        .send(json!({"type": "accept", "call_id": call_id}))
        .await?;
    let r = async {
        caller.expect("accepted").await?;
        caller.expect("media").await?;
        callee.expect("media").await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if r.is_err() {
        // relay_failure: both sides were told; drain to a clean state.
        return Ok(false);
    }
    caller
        .send(json!({"type": "hangup", "call_id": call_id}))
        .await?;
    caller.expect("call_ended").await?;
    callee.expect("call_ended").await?;
    Ok(true)
}

async fn pinger(mut c: Client, stop: Arc<AtomicBool>, every: Duration) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let t = Instant::now();
        c.send(json!({"type": "ping", "nonce": n})).await?;
        loop {
            let m = c.recv().await?;
            if m["type"] == "pong" && m["nonce"] == n {
                break;
            }
        }
        out.push(t.elapsed().as_secs_f64() * 1e3);
        tokio::time::sleep(every).await;
    }
    Ok(out)
}

async fn measure(bin: &Path, tag: usize, a: &RelayArgs) -> Result<Outcome> {
    let (node, key) = start(bin, tag)?;
    let http = reqwest::Client::new();
    let ws_url = format!("{}/v1/ws", node.base.replacen("http://", "ws://", 1));
    let mut pairs = Vec::new();
    for _ in 0..a.pairs {
        let (_, ta) = account(&http, &node.base, &key).await?;
        let (b, tb) = account(&http, &node.base, &key).await?;
        pairs.push((
            Client::login(&ws_url, &ta).await?,
            Client::login(&ws_url, &tb).await?,
            b,
        ));
    }
    let mut pingers = Vec::new();
    for _ in 0..a.pingers.max(1) {
        let (_, t) = account(&http, &node.base, &key).await?;
        pingers.push(Client::login(&ws_url, &t).await?);
    }
    let version = pingers[0].v;
    let every = Duration::from_millis(a.ping_interval_ms);
    let window = Duration::from_secs(a.seconds.max(1));

    // 1. Idle.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = pingers
        .into_iter()
        .map(|c| tokio::spawn(pinger(c, stop.clone(), every)))
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let mut idle = Vec::new();
    for t in tasks {
        idle.extend(t.await??);
    }

    // 2. Set-ups at full rate, pings meanwhile.
    let mut pingers = Vec::new();
    for _ in 0..a.pingers.max(1) {
        let (_, t) = account(&http, &node.base, &key).await?;
        pingers.push(Client::login(&ws_url, &t).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let setups = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let callers: Vec<_> = pairs
        .into_iter()
        .map(|(mut ca, mut cb, to)| {
            let (stop, setups, failed) = (stop.clone(), setups.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if one_call(&mut ca, &mut cb, &to).await? {
                        setups.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    let pings: Vec<_> = pingers
        .into_iter()
        .map(|c| tokio::spawn(pinger(c, stop.clone(), every)))
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    let mut loaded = Vec::new();
    for t in pings {
        loaded.extend(t.await??);
    }
    for t in callers {
        t.await??;
    }
    Ok(Outcome {
        name: bin.display().to_string(),
        version,
        idle: percentiles(idle),
        loaded: percentiles(loaded),
        setups: setups.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        secs,
    })
}

/// Runs the mode: every server in turn, then the table.
pub async fn run(a: RelayArgs) -> Result<()> {
    let mut rows = Vec::new();
    for (i, bin) in a.supernodes.iter().enumerate() {
        rows.push(
            measure(bin, i, &a)
                .await
                .with_context(|| bin.display().to_string())?,
        );
    }
    println!(
        "sigbench relay: {} caller/callee pairs setting calls up with relay transports, {} pingers every {} ms, {} s per phase",
        a.pairs, a.pingers, a.ping_interval_ms, a.seconds
    );
    println!(
        "{:<40} {:>2} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "supernode",
        "v",
        "idle p50",
        "idle p99",
        "load p50",
        "load p99",
        "load max",
        "pings",
        "setups/s",
        "failed"
    );
    for r in &rows {
        println!(
            "{:<40} {:>2} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9} {:>10.1} {:>7}",
            r.name,
            r.version,
            r.idle.p50,
            r.idle.p99,
            r.loaded.p50,
            r.loaded.p99,
            r.loaded.max,
            r.loaded.n,
            r.setups as f64 / r.secs,
            r.failed
        );
    }
    for r in &rows {
        println!(
            "{}",
            json!({
                "supernode": r.name, "protocol": r.version,
                "ping_ms_idle": {"p50": r.idle.p50, "p99": r.idle.p99, "max": r.idle.max, "n": r.idle.n},
                "ping_ms_under_setups": {"p50": r.loaded.p50, "p99": r.loaded.p99, "max": r.loaded.max, "n": r.loaded.n},
                "call_setups_per_second": r.setups as f64 / r.secs, "failed_setups": r.failed,
            })
        );
    }
    Ok(())
}
