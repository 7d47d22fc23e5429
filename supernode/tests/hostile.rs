//! Hostile clients against a real `supernode run` process on loopback: message floods and
//! oversized WebSocket messages, thousands of idle and half-open connections, connection
//! caps, slow HTTP clients, bad JSON at every depth, expired credentials replayed, and a
//! relay key reaching for other partners' sessions.
//!
//! Each test checks the clear answer the hostile client gets, and that a bystander — a
//! logged-in pair of WebSockets with an answered call, in one test also a real `edge` call
//! with media — goes on untouched: pings still ponged, its call still up and ended by its
//! own hangup. Hostile connections come from other loopback addresses (127.0.0.2 …) than the
//! bystanders (127.0.0.1), so per-address caps are exercised as they are meant.
//! Limits are shortened through `SUPERNODE_*` settings, never waited out at their defaults.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{Node, data_dir, partner};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

type Ws = WebSocketStream<TcpStream>;

/// `127.0.0.N`.
fn lo(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

/// A TCP connection to the node from `src`.
async fn tcp_from(addr: SocketAddr, src: Ipv4Addr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((src, 0))).unwrap();
    s.connect(addr).await.unwrap()
}

/// A WebSocket to the node's `/v1/ws` from `src`, not logged in.
async fn ws_from(node: &Node, src: Ipv4Addr) -> Ws {
    let tcp = tcp_from(node.addr, src).await;
    let url = format!("ws://{}/v1/ws", node.addr);
    let (ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("ws upgrade");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// What a WebSocket heard next.
#[derive(Debug)]
enum Heard {
    Text(Value),
    Closed(Option<(u16, String)>),
    Gone,
}

async fn hear(ws: &mut Ws, limit: Duration) -> Heard {
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => panic!("nothing heard within {limit:?}"),
            Ok(None | Some(Err(_))) => return Heard::Gone,
            Ok(Some(Ok(Message::Text(t)))) => {
                return Heard::Text(serde_json::from_str(t.as_str()).expect("server JSON"));
            }
            Ok(Some(Ok(Message::Close(f)))) => {
                return Heard::Closed(f.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The next text message (panics on a close).
async fn msg(ws: &mut Ws) -> Value {
    match hear(ws, Duration::from_secs(10)).await {
        Heard::Text(v) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The next message of type `ty`, skipping others.
async fn msg_of(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let v = msg(ws).await;
        if v["type"] == ty {
            return v;
        }
    }
}

/// Expects `error{code}` then a close frame with `close_code`; returns the close reason.
async fn refused_with(ws: &mut Ws, code: &str, close_code: u16) -> String {
    // Replies to frames sent before the refusal may come first.
    loop {
        match hear(ws, Duration::from_secs(10)).await {
            Heard::Text(v) if v["type"] == "error" && v["code"] == code => break,
            Heard::Text(v) if v["type"] == "pong" => continue,
            other => panic!("expected error {code}, got {other:?}"),
        }
    }
    match hear(ws, Duration::from_secs(10)).await {
        Heard::Closed(Some((c, reason))) => {
            assert_eq!(c, close_code, "close code ({reason})");
            reason
        }
        other => panic!("expected a close frame {close_code}, got {other:?}"),
    }
}

async fn login(node: &Node, src: Ipv4Addr, token: &str) -> Ws {
    let mut ws = ws_from(node, src).await;
    send(&mut ws, json!({"v": 2, "type": "login", "token": token})).await;
    let v = msg(&mut ws).await;
    assert_eq!(v["type"], "login_ok", "{v}");
    ws
}

/// The bystanders: two logged-in endpoints of one partner, from 127.0.0.1, with a call.
struct Pair {
    a: Ws,
    b: Ws,
    b_id: String,
    nonce: u64,
    call: Option<String>,
}

impl Pair {
    async fn new(node: &Node, key: &str) -> Pair {
        let (_, ta) = node.account(key, "Bystander A").await;
        let (b_id, tb) = node.account(key, "Bystander B").await;
        let a = login(node, lo(1), &ta).await;
        let b = login(node, lo(1), &tb).await;
        Pair {
            a,
            b,
            b_id,
            nonce: 0,
            call: None,
        }
    }

    /// A calls B, B answers: the call is up (with relay legs).
    async fn call(&mut self) {
        send(
            &mut self.a,
            json!({"v": 2, "type": "invite", "to": self.b_id, "media": "audio"}),
        )
        .await;
        let ringing = msg_of(&mut self.a, "ringing").await;
        let call = ringing["call_id"].as_str().unwrap().to_owned();
        let inc = msg_of(&mut self.b, "incoming_call").await;
        assert_eq!(inc["call_id"].as_str(), Some(call.as_str()));
        send(
            &mut self.b,
            json!({"v": 2, "type": "accept", "call_id": call}),
        )
        .await;
        msg_of(&mut self.a, "accepted").await;
        let ma = msg_of(&mut self.a, "media").await;
        let mb = msg_of(&mut self.b, "media").await;
        assert!(ma["leg"]["address"].is_string() && mb["leg"]["address"].is_string());
        self.call = Some(call);
    }

    /// Both endpoints still answer pings promptly.
    async fn alive(&mut self) {
        for ws in [&mut self.a, &mut self.b] {
            self.nonce += 1;
            let t = Instant::now();
            send(ws, json!({"v": 2, "type": "ping", "nonce": self.nonce})).await;
            let v = msg_of(ws, "pong").await;
            assert_eq!(v["nonce"].as_u64(), Some(self.nonce), "{v}");
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "pong after {:?}",
                t.elapsed()
            );
        }
    }

    /// Still alive, the call still up; A hangs up and both hear `hangup` (not a
    /// disconnect).
    async fn finish(mut self, node: &Node) {
        self.alive().await;
        assert_eq!(node.metric("supernode_calls").await, 1.0);
        let call = self.call.expect("a call");
        send(
            &mut self.a,
            json!({"v": 2, "type": "hangup", "call_id": call}),
        )
        .await;
        for ws in [&mut self.a, &mut self.b] {
            let v = msg_of(ws, "call_ended").await;
            assert_eq!(v["call_id"].as_str(), Some(call.as_str()));
            assert_eq!(v["reason"], "hangup", "{v}");
        }
        node.expect_metric("supernode_calls", 0.0).await;
    }
}

/// A node with a plain partner: `(node, api key)`.
fn node_with(tag: &str, env: &[(&str, &str)]) -> (Node, String) {
    let dir = data_dir(tag);
    let (_, key) = partner(&dir, "p", false);
    (Node::start(&dir, env), key)
}

/// A labelled `/metrics` series.
async fn labelled(node: &Node, series: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}

/// The resident set of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Asserts `r` is an error answer with `status` and the JSON shape; returns its code.
async fn json_error(r: reqwest::Response, status: u16) -> String {
    assert_eq!(r.status().as_u16(), status, "{r:?}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let v: Value = r.json().await.unwrap();
    let code = v["error"]["code"].as_str().expect("error.code").to_owned();
    assert!(v["error"]["message"].is_string(), "{v}");
    code
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_flood_is_cut_off_with_rate_limited_and_counted() {
    let (node, key) = node_with(
        "flood",
        &[
            ("SUPERNODE_WS_RATE_LIMIT_PER_SECOND", "20"),
            ("SUPERNODE_WS_RATE_LIMIT_BURST", "50"),
        ],
    );
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;

    // A logged-in flooder: 5,000 pings as fast as it can write them.
    let (_, t) = node.account(&key, "Flooder").await;
    let mut ws = login(&node, lo(2), &t).await;
    for i in 0..5_000u64 {
        let m = json!({"v": 2, "type": "ping", "nonce": i}).to_string();
        if ws.feed(Message::text(m)).await.is_err() {
            break;
        }
    }
    let _ = ws.flush().await;
    let reason = refused_with(&mut ws, "rate_limited", 1008).await;
    assert_eq!(reason, "rate limit exceeded");
    pair.alive().await;

    // A flood before login is cut off the same way (pings are frames too).
    let mut ws = ws_from(&node, lo(3)).await;
    for _ in 0..500 {
        if ws.feed(Message::Ping(Default::default())).await.is_err() {
            break;
        }
    }
    let _ = ws.flush().await;
    refused_with(&mut ws, "rate_limited", 1008).await;

    assert_eq!(
        labelled(
            &node,
            "supernode_ws_closed_by_limit_total{reason=\"rate_limited\"}"
        )
        .await,
        2.0
    );
    // The flooder's account may log in again and talk at a sane pace.
    let mut again = login(&node, lo(2), &t).await;
    send(&mut again, json!({"v": 2, "type": "ping", "nonce": 7})).await;
    assert_eq!(msg_of(&mut again, "pong").await["nonce"], 7);
    pair.finish(&node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_messages_close_the_socket_with_1009() {
    let (node, key) = node_with("big", &[("SUPERNODE_WS_MAX_MESSAGE_BYTES", "4096")]);
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;

    // Logged in: a message one size class above the limit.
    let (_, t) = node.account(&key, "Big").await;
    let mut ws = login(&node, lo(2), &t).await;
    let pad = "x".repeat(6_000);
    send(
        &mut ws,
        json!({"v": 2, "type": "ping", "nonce": 1, "pad": pad}),
    )
    .await;
    let reason = refused_with(&mut ws, "message_too_big", 1009).await;
    assert_eq!(reason, "message too big");

    // Not logged in: an oversized login.
    let mut ws = ws_from(&node, lo(3)).await;
    send(
        &mut ws,
        json!({"v": 2, "type": "login", "token": "t".repeat(5_000)}),
    )
    .await;
    refused_with(&mut ws, "message_too_big", 1009).await;

    // A message just under the limit is an ordinary message: answered, the socket stays.
    let mut ws = login(&node, lo(2), &t).await;
    send(
        &mut ws,
        json!({"v": 2, "type": "ping", "nonce": 2, "pad": "y".repeat(3_000)}),
    )
    .await;
    assert_eq!(msg_of(&mut ws, "pong").await["nonce"], 2);
    send(&mut ws, json!({"v": 2, "type": "ping", "nonce": 3})).await;
    assert_eq!(msg_of(&mut ws, "pong").await["nonce"], 3);

    // A 4 MiB frame: the server reads its header, not its body, and lets the socket go.
    let mut huge = ws_from(&node, lo(4)).await;
    let _ = huge.send(Message::binary(vec![0u8; 4 << 20])).await;
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            Instant::now() < end,
            "the socket of a 4 MiB frame stayed open"
        );
        match hear(&mut huge, Duration::from_secs(10)).await {
            Heard::Text(v) => assert_eq!(v["code"], "message_too_big", "{v}"),
            Heard::Closed(_) | Heard::Gone => break,
        }
    }

    assert_eq!(
        labelled(
            &node,
            "supernode_ws_closed_by_limit_total{reason=\"too_big\"}"
        )
        .await,
        3.0
    );
    pair.finish(&node).await;
}

/// 2,000 hostile connections from ten loopback addresses — half connect and never send a
/// byte, half upgrade to a WebSocket and never log in — while a real `edge` call and the
/// bystander pair go on. The header-read and login timeouts close every one; the
/// supernode's resident memory stays within a stated bound at the peak and after.
#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_idle_and_half_open_connections_time_out_without_harm() {
    const IDLE_TCP: usize = 1_000;
    const SILENT_WS: usize = 1_000;
    // The timeouts are longer than opening 2,000 connections takes on a loaded 2-core CI
    // machine (≈ 1–5 s), so all of them are open at once when the count below is read; that
    // count, not a stopwatch, is what the test asserts.
    let (node, key) = node_with(
        "idle",
        &[
            ("SUPERNODE_HEADER_READ_TIMEOUT_SECONDS", "12"),
            ("SUPERNODE_LOGIN_TIMEOUT_SECONDS", "12"),
        ],
    );
    let (mut caller, mut callee) = node.audio_call(&key, "30s").await;
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;
    let pid = node.child.id();
    let rss_before = rss_kib(pid);

    // Opened 50 at a time, concurrently, from ten source addresses.
    let started = Instant::now();
    let mut idle = Vec::with_capacity(IDLE_TCP);
    for chunk in (0..IDLE_TCP).collect::<Vec<_>>().chunks(50) {
        idle.extend(
            futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|i| tcp_from(node.addr, lo(2 + (i % 10) as u8))),
            )
            .await,
        );
    }
    let mut silent = Vec::with_capacity(SILENT_WS);
    for chunk in (0..SILENT_WS).collect::<Vec<_>>().chunks(50) {
        silent.extend(
            futures_util::future::join_all(
                chunk.iter().map(|i| ws_from(&node, lo(2 + (i % 10) as u8))),
            )
            .await,
        );
    }
    let opened_in = started.elapsed();
    let open = node.metric("supernode_http_connections").await;
    let rss_peak = rss_kib(pid);
    pair.alive().await;
    assert!(
        open >= (IDLE_TCP + SILENT_WS) as f64,
        "{open} connections open"
    );

    // Every idle TCP connection is closed by the header-read timeout (EOF, no answer) …
    let idle_closed = futures_util::future::join_all(idle.into_iter().map(|mut s| async move {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(30), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }))
    .await;
    assert!(idle_closed.iter().all(|c| *c), "an idle connection stayed");
    // … and every silent WebSocket hears login_timeout and a close.
    let ws_closed = futures_util::future::join_all(silent.into_iter().map(|mut ws| async move {
        refused_with(&mut ws, "login_timeout", 1008).await;
    }))
    .await;
    assert_eq!(ws_closed.len(), SILENT_WS);
    pair.alive().await;

    // Back to the bystanders' connections only: the pair and the two edges.
    // (`/metrics` counts the scrape's own connection.)
    node.expect_metric("supernode_http_connections", 5.0).await;
    assert_eq!(
        node.metric("supernode_http_header_timeouts_total").await,
        IDLE_TCP as f64
    );
    assert_eq!(
        labelled(
            &node,
            "supernode_ws_closed_by_limit_total{reason=\"login_timeout\"}"
        )
        .await,
        SILENT_WS as f64
    );
    let rss_after = rss_kib(pid);
    eprintln!(
        "hostile: {} connections opened in {opened_in:?}; supernode RSS {rss_before} KiB before, {rss_peak} KiB at the peak, {rss_after} KiB after",
        IDLE_TCP + SILENT_WS
    );
    // Bounded memory: at most 24 KiB per hostile connection at the peak (measured: ~9 KiB;
    // it was ~72 KiB before WebSocket read buffers were cut to 4 KiB), and at most 32 MiB
    // kept once they are gone (allocator caches, not per-connection state).
    let per_conn = (rss_peak.saturating_sub(rss_before)) / (IDLE_TCP + SILENT_WS) as u64;
    assert!(per_conn <= 24, "{per_conn} KiB per idle connection");
    assert!(
        rss_after.saturating_sub(rss_before) <= 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // The real call carried its media untouched.
    let (cc, crep) = caller.finish(Duration::from_secs(60));
    let (bc, brep) = callee.finish(Duration::from_secs(60));
    for (code, r) in [(cc, &crep), (bc, &brep)] {
        assert_eq!(code, Some(0), "{r}");
        assert_eq!(r["ok"], true, "{r}");
        assert!(
            r["audio"]["packets_received"].as_u64().unwrap() > 100,
            "{r}"
        );
        assert_eq!(r["audio"]["loss_pct"].as_f64(), Some(0.0), "{r}");
    }
    pair.finish(&node).await;
}

/// Reads a whole HTTP/1.1 answer (the head and a `content-length` body) from `s`.
async fn read_answer(s: &mut (impl tokio::io::AsyncRead + Unpin)) -> (u16, Value) {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < end, "no whole answer");
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
            .await
            .expect("answer in time")
            .expect("read");
        buf.extend_from_slice(&b[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                return (
                    status,
                    serde_json::from_str(&body[..len]).unwrap_or(Value::Null),
                );
            }
        }
        assert!(n > 0, "closed before a whole answer: {text}");
    }
}

async fn get_health(s: &mut TcpStream) -> (u16, Value) {
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    read_answer(s).await
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_caps_refuse_with_429_and_503_json() {
    let (node, key) = node_with(
        "caps",
        &[
            ("SUPERNODE_MAX_CONNECTIONS", "150"),
            ("SUPERNODE_MAX_CONNECTIONS_PER_IP", "60"),
            ("SUPERNODE_HEADER_READ_TIMEOUT_SECONDS", "60"),
        ],
    );
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;
    // Only the pair is connected (and the scrape that counts itself).
    node.expect_metric("supernode_http_connections", 3.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // One address fills its share; its next connection is refused with 429.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(tcp_from(node.addr, lo(2)).await);
    }
    let mut over = tcp_from(node.addr, lo(2)).await;
    let (status, body) = get_health(&mut over).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    assert!(body["error"]["message"].is_string());
    // Other addresses are not held back by it: fill the node (2 bystanders + 60 + 60 + 28).
    for _ in 0..60 {
        held.push(tcp_from(node.addr, lo(3)).await);
    }
    for _ in 0..28 {
        held.push(tcp_from(node.addr, lo(4)).await);
    }
    // The node is full: anyone new hears 503, through an ordinary HTTP client too.
    let mut full = tcp_from(node.addr, lo(5)).await;
    let (status, body) = get_health(&mut full).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "server_full", "{body}");
    let http = reqwest::Client::builder()
        .local_address(Some(lo(6).into()))
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/healthz", node.base()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(json_error(r, 503).await, "server_full");
    // The connections already in — the bystanders' — are served as before.
    pair.alive().await;

    // Capacity comes back as connections close.
    held.truncate(100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut s = tcp_from(node.addr, lo(5)).await;
    assert_eq!(get_health(&mut s).await.0, 200);
    drop(held);
    drop((over, full, s));
    node.expect_metric("supernode_http_connections", 3.0).await;
    assert_eq!(
        labelled(
            &node,
            "supernode_http_connections_refused_total{reason=\"per_ip_cap\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        labelled(
            &node,
            "supernode_http_connections_refused_total{reason=\"global_cap\"}"
        )
        .await,
        2.0
    );
    pair.finish(&node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let (node, key) = node_with(
        "slow",
        &[
            ("SUPERNODE_HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("SUPERNODE_BODY_TIMEOUT_SECONDS", "1"),
        ],
    );
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;

    // Headers dribbled a byte every 100 ms (a 75-byte request would take 7.5 s): the
    // connection is closed without an answer once the 1 s header timeout passes.
    let mut s = tcp_from(node.addr, lo(2)).await;
    let req = b"GET /healthz HTTP/1.1\r\nhost: x\r\nuser-agent: slowloris-slowloris-slow\r\n\r\n";
    let t = Instant::now();
    let mut sent = 0;
    let mut closed = false;
    for b in req.iter() {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        sent += 1;
        let mut probe = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut probe)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => panic!(
                "an answer to dribbled headers: {}",
                String::from_utf8_lossy(&probe[..n])
            ),
        }
    }
    assert!(closed, "the dribbled request was served");
    assert!(sent < req.len());
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "closed after {:?}",
        t.elapsed()
    );
    pair.alive().await;

    // A kept-alive connection that goes quiet after an answer is closed the same way.
    let mut s = tcp_from(node.addr, lo(2)).await;
    assert_eq!(get_health(&mut s).await.0, 200);
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "{r:?}");

    // A body dribbled a byte every 100 ms: 408 body_timeout, and the connection closes.
    let body = br#"{"display_name": "a very slow client indeed, one byte at a time"}"#;
    let s = tcp_from(node.addr, lo(3)).await;
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (mut rd, mut wr) = s.into_split();
    wr.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let dribbler = tokio::spawn(async move {
        for b in body.iter() {
            if wr.write_all(&[*b]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    });
    // The answer comes while the body is still being dribbled (it would take 6.7 s).
    let (status, answer) = read_answer(&mut rd).await;
    assert_eq!(status, 408, "{answer}");
    assert_eq!(answer["error"]["code"], "body_timeout", "{answer}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(!dribbler.is_finished() || !dribbler.await.unwrap());
    // … and the connection is closed.
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0) | Err(_))), "{r:?}");

    // The same body sent at once is served.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/accounts", node.base()))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(node.metric("supernode_http_header_timeouts_total").await >= 2.0);
    pair.finish(&node).await;
}

/// Bodies that are wrong at every depth: syntax (`400 malformed_json`), shape and types
/// (`422 invalid_body`, the API's documented split), size (`413`).
fn bad_bodies() -> Vec<(&'static str, Vec<u8>, u16)> {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!(
        "{{\"display_name\": {}1{}}}",
        "{\"a\":".repeat(1_000),
        "}".repeat(1_000)
    );
    vec![
        ("empty", b"".to_vec(), 400),
        ("truncated", br#"{"display_name": "Ann"#.to_vec(), 400),
        ("trailing garbage", br#"{} {}"#.to_vec(), 400),
        (
            "not utf-8",
            b"{\"display_name\": \"\xff\xfe\"}".to_vec(),
            400,
        ),
        ("nul", b"{\"display_name\": \"a\x00b\"}".to_vec(), 400),
        ("deep array", deep.into_bytes(), 413),
        ("deep object", deep_obj.into_bytes(), 400),
        ("null", b"null".to_vec(), 422),
        ("array", b"[{}]".to_vec(), 422),
        ("number", b"1e999999".to_vec(), 400),
        ("wrong type", br#"{"display_name": 42}"#.to_vec(), 422),
        (
            "wrong nested type",
            br#"{"display_name": {"x": [1, 2]}}"#.to_vec(),
            422,
        ),
        ("unknown field", br#"{"evil": true}"#.to_vec(), 422),
        (
            "huge integer",
            br#"{"display_name": 123456789012345678901234567890}"#.to_vec(),
            422,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_json_at_every_depth_gets_json_errors_and_hurts_nobody() {
    let dir = data_dir("badjson");
    let (_, key) = partner(&dir, "p", false);
    let (_, relay_key) = partner(&dir, "tool", true);
    let node = Node::start(&dir, &[]);
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;
    let http = reqwest::Client::new();
    let (acc, _) = node.account(&key, "Target").await;

    let post = |path: String, k: &str, body: Vec<u8>| {
        http.post(format!("{}{path}", node.base()))
            .bearer_auth(k)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (what, body, status) in bad_bodies() {
        let r = post("/v1/accounts".into(), &key, body).await.unwrap();
        let code = json_error(r, status).await;
        eprintln!("accounts, {what}: {status} {code}");
    }
    // Credentials: wrong types and absurd numbers at the only field.
    for (body, status) in [
        (json!({"ttl_seconds": "60"}), 422),
        (json!({"ttl_seconds": 1e300}), 422),
        (json!({"ttl_seconds": -1}), 422),
        (json!({"ttl_seconds": 0.5}), 422),
        (json!({"ttl_seconds": [60]}), 422),
        (json!({"ttl_seconds": {"n": 60}}), 422),
        (json!({"ttl_seconds": 60, "scope": "all"}), 422),
    ] {
        let r = post(
            format!("/v1/accounts/{acc}/credentials"),
            &key,
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
        json_error(r, status).await;
    }
    let r = post(
        format!("/v1/accounts/{acc}/credentials"),
        &key,
        br#"{"ttl_seconds": 123456789012345678901234567890123456789}"#.to_vec(),
    )
    .await
    .unwrap();
    let code = json_error(r, 422).await;
    assert_eq!(code, "invalid_field");
    // Relay sessions: bad values two and three levels down.
    for body in [
        json!({"legs": "two"}),
        json!({"legs": [{"remote": 5}]}),
        json!({"legs": [{"remote": "not an address"}]}),
        json!({"legs": [{}, {"srtp": {"key": 7}}]}),
        json!({"legs": [{}, {"srtp": {"profile": "ROT13", "key": "AAAA"}}]}),
        json!({"legs": [{}, {"srtp": {"key": "%%%not base64%%%"}}]}),
        json!({"legs": [{}, {"srtp": {"key": "AAAA", "extra": 1}}]}),
        json!({"legs": [[null, null]]}),
        json!({"legs": [{"remote": {"ip": "127.0.0.1"}}]}),
    ] {
        let r = post(
            "/v1/relay/sessions".into(),
            &relay_key,
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
        let s = r.status().as_u16();
        assert!(matches!(s, 400 | 422), "{body}: {s}");
        json_error(r, s).await;
    }
    pair.alive().await;

    // The WebSocket: every bad frame gets a typed error, and the socket stays.
    let (_, t) = node.account(&key, "Junk").await;
    let mut ws = login(&node, lo(2), &t).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_to = format!(
        "{{\"v\":1,\"type\":\"invite\",\"to\":{}\"x\"{}}}",
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    for (frame, code) in [
        (r#"{"v":2,"type":"ping""#.to_owned(), "malformed_json"),
        ("".to_owned(), "malformed_json"),
        ("null".to_owned(), "malformed_json"),
        (deep, "malformed_json"),
        (nested_to, "malformed_json"),
        (r#"{"v":1e999,"type":"ping"}"#.to_owned(), "malformed_json"),
        (r#"{"v":"1","type":"ping"}"#.to_owned(), "unsupported_version"),
        (r#"{"v":2,"type":["ping"]}"#.to_owned(), "invalid_message"),
        (
            r#"{"v":2,"type":"ping","nonce":18446744073709551616}"#.to_owned(),
            "invalid_message",
        ),
        (r#"{"v":2,"type":"ping","nonce":-1}"#.to_owned(), "invalid_message"),
        (r#"{"v":2,"type":"ping","nonce":"7"}"#.to_owned(), "invalid_message"),
        (r#"{"v":2,"type":"invite","to":42}"#.to_owned(), "invalid_message"),
        (
            r#"{"v":2,"type":"invite","to":{"id":"a"},"media":"audio"}"#.to_owned(),
            "invalid_message",
        ),
        (
            r#"{"v":2,"type":"negotiate","call_id":1,"negotiation":{"kind":"offer","sdp":{"v":0}}}"#
                .to_owned(),
            "invalid_message",
        ),
        (
            r#"{"v":2,"type":"negotiate","call_id":1,"negotiation":{"kind":"teleport"}}"#
                .to_owned(),
            "invalid_message",
        ),
        (
            r#"{"v":2,"type":"subscribe_presence","account_ids":[1,2,3]}"#.to_owned(),
            "invalid_message",
        ),
        (
            r#"{"v":2,"type":"accept","call_id":1e300}"#.to_owned(),
            "invalid_message",
        ),
    ] {
        ws.send(Message::text(frame.clone())).await.unwrap();
        let v = msg(&mut ws).await;
        assert_eq!(v["type"], "error", "{frame:.80}: {v}");
        assert!(v["message"].is_string(), "{v}");
        assert_eq!(v["code"], code, "{frame:.80}: {v}");
    }
    send(&mut ws, json!({"v": 2, "type": "ping", "nonce": 99})).await;
    assert_eq!(msg_of(&mut ws, "pong").await["nonce"], 99);
    pair.finish(&node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_credential_replayed_is_refused_with_token_expired() {
    let (node, key) = node_with("expired", &[]);
    let mut pair = Pair::new(&node, &key).await;
    pair.call().await;
    let (acc, _) = node.account(&key, "Replay").await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/accounts/{acc}/credentials", node.base()))
        .bearer_auth(&key)
        .json(&json!({"ttl_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // While valid it logs in (twice: a token is a bearer credential for every tab).
    let first = login(&node, lo(2), &token).await;
    let second = login(&node, lo(2), &token).await;
    drop((first, second));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    // Replayed after its expiry: token_expired, the socket closed 1008; every time.
    for _ in 0..3 {
        let mut ws = ws_from(&node, lo(2)).await;
        send(&mut ws, json!({"v": 2, "type": "login", "token": token})).await;
        refused_with(&mut ws, "token_expired", 1008).await;
    }
    // Tampering with the expiry to revive it is a forgery, not an expiry.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let exp_at = parts
        .iter()
        .position(|p| p.parse::<i64>().is_ok_and(|n| n > 1_000_000_000))
        .expect("an expiry field");
    parts[exp_at] = (parts[exp_at].parse::<i64>().unwrap() + 3_600).to_string();
    let mut ws = ws_from(&node, lo(2)).await;
    send(
        &mut ws,
        json!({"v": 2, "type": "login", "token": parts.join(".")}),
    )
    .await;
    refused_with(&mut ws, "invalid_token", 1008).await;
    pair.finish(&node).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_key_learns_nothing_of_other_partners_sessions() {
    let dir = data_dir("relaykeys");
    let (_, key) = partner(&dir, "p", false);
    let (_, owner) = partner(&dir, "owner", true);
    let (_, prober) = partner(&dir, "prober", true);
    let node = Node::start(&dir, &[]);
    let mut pair = Pair::new(&node, &key).await;
    // The bystanders' call holds relay sessions too (owned by the call, not by a key).
    pair.call().await;
    let (id, _) = common::relay_session(&node, &owner, json!([{}, {}])).await;
    let legs = node.metric("supernode_relay_legs").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/v1/relay/sessions/{p}", node.base());

    // What "no such session" looks like.
    let r = http
        .get(url("rs_999999"))
        .bearer_auth(&prober)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let nothing = r.bytes().await.unwrap();

    let n: u64 = id.trim_start_matches("rs_").parse().unwrap();
    let mut probes: Vec<String> = (0..=n + 5).map(|i| format!("rs_{i}")).collect();
    probes.extend(
        [
            "rs_-1",
            "rs_99999999999999999999999",
            "rs_1%00",
            "..%2F..%2Fmetrics",
            "%F0%9F%92%A3",
            "RS_1",
            "1",
        ]
        .map(str::to_owned),
    );
    for p in &probes {
        let r = http.get(url(p)).bearer_auth(&prober).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {p}");
        assert_eq!(r.bytes().await.unwrap(), nothing, "GET {p} told more");
        let r = http
            .delete(url(p))
            .bearer_auth(&prober)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "DELETE {p}");
        assert_eq!(r.bytes().await.unwrap(), nothing, "DELETE {p} told more");
    }
    // A partner key without relay rights hears 403 whatever the id, existing or not.
    let r = http.get(url(&id)).bearer_auth(&key).send().await.unwrap();
    let forbidden_existing = (r.status(), r.bytes().await.unwrap());
    let r = http
        .get(url("rs_999999"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let forbidden_missing = (r.status(), r.bytes().await.unwrap());
    assert_eq!(forbidden_existing.0, 403);
    assert_eq!(forbidden_existing, forbidden_missing);

    // Nothing was touched: the owner's session, the call's legs, the call.
    assert_eq!(node.metric("supernode_relay_legs").await, legs);
    let r = http.get(url(&id)).bearer_auth(&owner).send().await.unwrap();
    assert_eq!(r.status(), 200);
    pair.finish(&node).await;
    let r = http
        .delete(url(&id))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}
