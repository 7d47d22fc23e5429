//! Three real `supernode run` processes on a real 3-server NATS cluster (JetStream, loopback
//! ports; Debian's `nats-server`, skipped when missing unless
//! `SUPERNODE_REQUIRE_EXTERNAL=1`), sharing one database (PostgreSQL when
//! `SUPERNODE_TEST_POSTGRES_URL` is set, else one SQLite file), each connected to a
//! different NATS server first.
//!
//! * an account with tabs on all three nodes: every tab rings, the first answer wins, the
//!   others are told `answered_elsewhere`;
//! * edge clients on different nodes call each other with media verified (similarity),
//!   each talking to its own node's relay, the relays over a trunk; a stranger's packets to
//!   either relay's ports are dropped and counted;
//! * one NATS server killed: calls and logins go on; every NATS server down: a call that is
//!   running keeps its media, a new cross-node call gets `network_unavailable`, a same-node
//!   call still works; NATS back: cross-node calls work again.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Node, data_dir};
use serde_json::Value;
use supernode_edge::signaling::{CallError, CallSetup, SignalingClient};
use supernode_proto::ids::AccountId;
use supernode_proto::protocol::{ErrorCode, MediaKind, ServerMsg};
use supernode_testkit::nats::NatsCluster;

struct Network {
    cluster: NatsCluster,
    nodes: Vec<Node>,
    key: String,
    db_url: String,
    _db_dir: common::DataDir,
}

fn shared_db(dir: &Path) -> String {
    match std::env::var("SUPERNODE_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => format!("sqlite://{}/shared.db", dir.display()),
    }
}

/// `supernode admin partner create` on the shared database: the partner's API key.
fn partner(db_dir: &Path, db_url: &str) -> String {
    let out = Command::new(BIN)
        .args(["admin", "--data-dir"])
        .arg(db_dir)
        .args(["partner", "create", "network-test"])
        .env("SUPERNODE_DATABASE_URL", db_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["api_key"].as_str().unwrap().to_owned()
}

fn start_node(cluster: &NatsCluster, i: usize, db_url: &str) -> Node {
    start_node_with(cluster, i, db_url, &[])
}

/// [`start_node`] with more environment (`extra`).
fn start_node_with(cluster: &NatsCluster, i: usize, db_url: &str, extra: &[(&str, &str)]) -> Node {
    let mut urls = cluster.client_urls();
    let n = urls.len();
    urls.rotate_left(i % n);
    let urls = urls.join(",");
    let id = format!("node-{i}");
    let mut env = vec![
        ("SUPERNODE_DATABASE_URL", db_url),
        ("SUPERNODE_NATS_URL", &urls),
        ("SUPERNODE_NODE_ID", &id),
        ("SUPERNODE_NATS_KV_REPLICAS", "3"),
        ("SUPERNODE_REGION", "eu"),
        // The doubling phase of netbench opens thousands of WebSockets from 127.0.0.1.
        ("SUPERNODE_MAX_CONNECTIONS_PER_IP", "10000"),
    ];
    env.extend_from_slice(extra);
    Node::start(&data_dir(&format!("net{i}")), &env)
}

async fn network_view(node: &Node) -> Value {
    reqwest::get(format!("{}/v1/network", node.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl Network {
    async fn start() -> Option<Self> {
        Self::start_with(&[]).await
    }

    /// [`Network::start`] with more environment for node 0 (`first`).
    async fn start_with(first: &[(&str, &str)]) -> Option<Self> {
        let cluster = NatsCluster::start(3)?;
        let db_dir = data_dir("net_db");
        let db_url = shared_db(&db_dir);
        let key = partner(&db_dir, &db_url);
        let nodes: Vec<Node> = (0..3)
            .map(|i| start_node_with(&cluster, i, &db_url, if i == 0 { first } else { &[] }))
            .collect();
        let net = Self {
            cluster,
            nodes,
            key,
            db_url,
            _db_dir: db_dir,
        };
        for n in &net.nodes {
            net.wait(n, "three live nodes", |v| {
                v["live"].as_array().is_some_and(|l| l.len() == 3)
            })
            .await;
        }
        Some(net)
    }

    /// Panics with `what` and the nodes' logs (their warnings and errors, and the last 40
    /// lines of any level).
    fn fail(&self, what: &str) -> ! {
        for (i, n) in self.nodes.iter().enumerate() {
            let log = std::fs::read_to_string(n.dir.join("supernode.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines.len().saturating_sub(40);
            eprintln!("--- node-{i} (warnings and errors, then the last 40 lines)");
            for l in lines[..tail]
                .iter()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .chain(&lines[tail..])
            {
                eprintln!("{l}");
            }
        }
        panic!("{what}");
    }

    /// Polls `/v1/network` of `node` until `f` holds (20 s at most).
    async fn wait(&self, node: &Node, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let v = network_view(node).await;
            if f(&v) {
                return v;
            }
            assert!(Instant::now() < end, "{what}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node's directory holds at least `n` records.
    async fn directory_at_least(&self, n: u64) {
        for node in &self.nodes {
            self.wait(node, "directory converged", |v| {
                v["directory_records"].as_u64().unwrap_or(0) >= n
            })
            .await;
        }
    }

    async fn account(&self) -> (AccountId, String) {
        let (id, token) = self.nodes[0].account(&self.key, "x").await;
        (AccountId::parse(&id).unwrap(), token)
    }

    async fn login(&self, node: usize, token: &str) -> SignalingClient {
        SignalingClient::connect(&self.nodes[node].base(), token)
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_on_three_nodes_ring_and_the_first_answer_wins() {
    let Some(net) = Network::start().await else {
        return;
    };
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let mut a = net.login(0, &alice_token).await;
    let mut tabs = Vec::new();
    for i in 0..3 {
        tabs.push(net.login(i, &bob_token).await);
    }
    net.directory_at_least(4).await;
    // Every tab accepts as soon as it rings.
    let answering: Vec<_> = tabs
        .into_iter()
        .map(|mut t| {
            tokio::spawn(async move {
                let r = t.answer(|_, _| true, Duration::from_secs(15)).await;
                (t, r)
            })
        })
        .collect();
    let call = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(15))
        .await
        .unwrap();
    let mut won = 0;
    let mut elsewhere = 0;
    for h in answering {
        let (_t, r) = h.await.unwrap();
        match r {
            Ok(setup) => {
                won += 1;
                assert_eq!(setup.call_id, call.call_id);
                assert!(setup.leg.srtp.is_some());
            }
            Err(CallError::AnsweredElsewhere) => elsewhere += 1,
            // The anchor's own tab accepting while a remote answer is being set up hears
            // `invalid_state` (as on one node), then `answered_elsewhere`.
            Err(CallError::Server(ErrorCode::InvalidState, _)) => {
                let end = tokio::time::Instant::now() + Duration::from_secs(5);
                let mut t = _t;
                loop {
                    match t.next(end).await.unwrap() {
                        Some(ServerMsg::AnsweredElsewhere { call_id }) => {
                            assert_eq!(call_id, call.call_id);
                            elsewhere += 1;
                            break;
                        }
                        Some(_) => {}
                        None => panic!("a losing tab was never told answered_elsewhere"),
                    }
                }
            }
            Err(e) => panic!("a tab ended with {e:?}"),
        }
    }
    assert_eq!((won, elsewhere), (1, 2), "one winner, the others told");
    a.hangup(call.call_id).await.unwrap();
    // Messages and claims went over NATS.
    let v = network_view(&net.nodes[0]).await;
    assert!(v["counters"]["requests"].as_u64().unwrap() >= 2, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_clients_on_different_nodes_call_with_media() {
    use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
    use supernode_edge::similarity::PASS_THRESHOLD;
    let Some(net) = Network::start().await else {
        return;
    };
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let audio_only = |c: &mut SignaledCall| {
        c.media_bind = "127.0.0.1:0".parse().unwrap();
        c.engine.mark_period_ms = 1_000;
    };
    // Bob on node 2, Alice on node 0.
    let mut callee = SignaledCall::new(
        &net.nodes[2].base(),
        &bob_token,
        Role::Answer {
            wait: Duration::from_secs(20),
            decide: None,
        },
        Duration::from_secs(30),
    );
    audio_only(&mut callee);
    let callee = tokio::spawn(run_signaled_call(callee));
    net.wait(&net.nodes[0], "bob visible on node-0", |v| {
        v["directory_records"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let mut caller = SignaledCall::new(
        &net.nodes[0].base(),
        &alice_token,
        Role::Call {
            to: bob,
            media: MediaKind::Audio,
            ring_timeout: Duration::from_secs(10),
        },
        Duration::from_secs(4),
    );
    audio_only(&mut caller);
    let caller = tokio::spawn(run_signaled_call(caller));
    // Trunked: each endpoint talks to its own node's relay (a leg each) and the two relays
    // to each other (a trunk end each).
    for n in [&net.nodes[0], &net.nodes[2]] {
        n.expect_metric_at_least("supernode_relay_legs", 2.0).await;
    }
    // A stranger sprays every port of both relays' ranges (the legs and the trunk's ends
    // among them) while the call runs: dropped and counted, never forwarded (the clients'
    // audio below stays clean, and nothing fails SRTP at the clients).
    let stranger_drops = "supernode_relay_packets_dropped_total{reason=\"stranger\"}";
    let before = [
        net.nodes[0].metric(stranger_drops).await,
        net.nodes[2].metric(stranger_drops).await,
    ];
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut pkt = vec![0x80, 111, 0, 0, 0, 0, 0, 0, 0x57, 0x57, 0x57, 0x57];
    pkt.extend_from_slice(&[0x55; 160]);
    for node in [&net.nodes[0], &net.nodes[2]] {
        for port in node.relay_ports.0..=node.relay_ports.1 {
            for i in 0..20u16 {
                pkt[2..4].copy_from_slice(&i.to_be_bytes());
                let _ = stranger.send_to(&pkt, ("127.0.0.1", port));
            }
        }
    }
    for (node, before) in [&net.nodes[0], &net.nodes[2]].into_iter().zip(before) {
        // At least the 20 packets to each of the node's two transports (a leg, a trunk end).
        node.expect_metric_at_least(stranger_drops, before + 40.0)
            .await;
    }
    let a = caller.await.unwrap().unwrap();
    let b = tokio::time::timeout(Duration::from_secs(10), callee)
        .await
        .expect("the callee ends with the caller")
        .unwrap()
        .unwrap();
    assert_eq!(b.report.call_end.as_deref(), Some("remote_hangup"));
    for r in [&a.report, &b.report] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        assert!(r.audio.packets_received > 100);
        assert!(r.audio.similarity.unwrap() > PASS_THRESHOLD);
        assert_eq!(r.drops.srtp_auth, 0);
    }
    // The media went through both nodes' relays (the callee's own node forwarded it), and
    // not through the third.
    for (i, busy) in [(0, true), (1, false), (2, true)] {
        let fwd = net.nodes[i]
            .metric("supernode_relay_packets_forwarded_total")
            .await;
        assert_eq!(fwd > 100.0, busy, "node-{i} forwarded {fwd}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_failures_one_server_then_all_then_back() {
    let Some(mut net) = Network::start().await else {
        return;
    };
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let (_carol, carol_token) = net.account().await;
    let (dave, dave_token) = net.account().await;
    let mut a = net.login(0, &alice_token).await;
    let mut b = net.login(1, &bob_token).await;
    net.directory_at_least(2).await;

    // One NATS server dies (node-0's first one): once every node's client has failed over
    // (two heartbeats acknowledged by JetStream after the kill), a cross-node call still
    // sets up, and a new login on node-0 still works. (A call rung *during* the fail-over
    // could be lost under load on the 2-core CI machine: known gap, see the closing note.)
    let mut beats = Vec::new();
    for node in &net.nodes {
        beats.push(
            network_view(node).await["counters"]["heartbeats"]
                .as_u64()
                .unwrap(),
        );
    }
    net.cluster.kill(0);
    for (node, b0) in net.nodes.iter().zip(beats) {
        net.wait(node, "heartbeats acknowledged after the fail-over", |v| {
            v["connected"] == true && v["counters"]["heartbeats"].as_u64().unwrap_or(0) >= b0 + 2
        })
        .await;
    }
    let answer = tokio::spawn(async move {
        let r = b.answer(|_, _| true, Duration::from_secs(20)).await;
        (b, r)
    });
    let call = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| net.fail(&format!("a call after one NATS server died: {e:?}")));
    let (mut b, answered) = answer.await.unwrap();
    answered.unwrap();
    let mut c = net.login(0, &carol_token).await;
    a.hangup(call.call_id.clone()).await.unwrap();
    let _ = b
        .wait_end(
            call.call_id,
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await;

    // Every NATS server down.
    net.cluster.stop_all();
    net.wait(&net.nodes[0], "node-0 disconnected", |v| {
        v["connected"] == false
    })
    .await;
    // A new cross-node call fails fast with `network_unavailable`.
    let t = Instant::now();
    let e = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::Server(ErrorCode::NetworkUnavailable, _)),
        "{e:?}"
    );
    // Within the reconnect grace (4 s) plus a request's time.
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    // A same-node call still works (Dave logs in on node-0 while NATS is down).
    let mut d = net.login(0, &dave_token).await;
    let answer = tokio::spawn(async move {
        let r = d.answer(|_, _| true, Duration::from_secs(10)).await;
        (d, r)
    });
    let local = c
        .invite(dave.clone(), MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap();
    let (_d, r) = answer.await.unwrap();
    r.unwrap();
    c.hangup(local.call_id).await.unwrap();

    // NATS back: nodes re-register, cross-node calls work again.
    net.cluster.start_all();
    for n in &net.nodes {
        net.wait(n, "reconnected with three live nodes", |v| {
            v["connected"] == true && v["live"].as_array().is_some_and(|l| l.len() == 3)
        })
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = tokio::spawn(async move {
            let r = b.answer(|_, _| true, Duration::from_secs(5)).await;
            (b, r)
        });
        let r = a
            .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(5))
            .await;
        let (bb, answered) = answer.await.unwrap();
        b = bb;
        if let (Ok(call), Ok(_)) = (&r, &answered) {
            a.hangup(call.call_id.clone()).await.unwrap();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no cross-node call after NATS came back: {r:?} / {answered:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let v = network_view(&net.nodes[1]).await;
    assert!(
        v["counters"]["reregistrations"].as_u64().unwrap() >= 1,
        "{v}"
    );
    let _ = &net.db_url;
}

/// The `ws_url` of a new credential for `account`, asked of `node`.
async fn credential_ws_url(node: &Node, key: &str, account: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/accounts/{account}/credentials", node.base()))
        .bearer_auth(key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["ws_url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_picks_the_least_loaded_live_node_and_a_draining_node_redirects() {
    let Some(net) = Network::start().await else {
        return;
    };
    let ws = |i: usize| format!("ws://{}/v1/ws", net.nodes[i].addr);
    let account = supernode_testkit::rest::account(
        &net.nodes[0].base(),
        &net.key,
        &serde_json::json!({ "display_name": "p" }),
    )
    .await;
    // Idle nodes tie: every node sends new clients to the same one (the smallest id).
    for n in &net.nodes {
        assert_eq!(credential_ws_url(n, &net.key, &account).await, ws(0));
    }
    // Nodes 0 and 2 get 20 endpoints each, node 1 a call (2 endpoints, 2 transports):
    // node 1 is the least loaded.
    let (_, token) = net.account().await;
    let mut clients = Vec::new();
    for i in [0, 2] {
        for _ in 0..20 {
            clients.push(net.login(i, &token).await);
        }
    }
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let mut a = net.login(1, &alice_token).await;
    let mut b = net.login(1, &bob_token).await;
    let answer = tokio::spawn(async move {
        let r = b.answer(|_, _| true, Duration::from_secs(10)).await;
        (b, r)
    });
    let _call = a
        .invite(bob, MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap();
    let (_b, r) = answer.await.unwrap();
    r.unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    while credential_ws_url(&net.nodes[2], &net.key, &account).await != ws(1) {
        assert!(
            Instant::now() < end,
            "placement never chose the least-loaded node"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Node 1 drains (SIGTERM; its call keeps it up): it leaves placement at once, and a
    // credential asked of it sends the client elsewhere.
    let t = Instant::now();
    net.nodes[1].term();
    loop {
        let from_draining = credential_ws_url(&net.nodes[1], &net.key, &account).await;
        let from_other = credential_ws_url(&net.nodes[2], &net.key, &account).await;
        if from_draining != ws(1) && from_other != ws(1) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a draining node stayed in placement"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("out of placement {:?} after SIGTERM", t.elapsed());
    drop(clients);
}

/// Sum of one counter over the nodes' `/v1/network` views.
async fn counter_sum(net: &Network, name: &str) -> u64 {
    let mut sum = 0;
    for n in &net.nodes {
        sum += network_view(n).await["counters"][name]
            .as_u64()
            .unwrap_or(0);
    }
    sum
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// One call set up and hung up: invite → `accepted` on the caller (ms).
async fn timed_call(
    a: &mut SignalingClient,
    b: SignalingClient,
    to: &AccountId,
) -> (f64, SignalingClient) {
    let answer = tokio::spawn(async move {
        let mut b = b;
        let r = b.answer(|_, _| true, Duration::from_secs(10)).await;
        (b, r)
    });
    let t = Instant::now();
    let call = a
        .invite(to.clone(), MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let (b, r) = answer.await.unwrap();
    r.unwrap();
    a.hangup(call.call_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    (ms, b)
}

/// `cargo test -p supernode --test network -- --ignored netbench --nocapture`: logins/s and
/// call set-up latency on one node vs across nodes of a 3-node network on this machine, and
/// NATS messages and KV writes per login and per call (from the nodes' counters).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn netbench() {
    let Some(net) = Network::start().await else {
        return;
    };
    const LOGINS: usize = 150;
    const CALLS: usize = 40;
    // Logins: all on node 0, then spread over the three nodes.
    let mut tokens = Vec::new();
    for _ in 0..LOGINS {
        tokens.push(net.account().await.1);
    }
    let (m0, k0) = (
        counter_sum(&net, "messages").await,
        counter_sum(&net, "kv_writes").await,
    );
    let t = Instant::now();
    let mut one = Vec::new();
    for tok in &tokens {
        one.push(net.login(0, tok).await);
    }
    let one_node = LOGINS as f64 / t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (m1, k1) = (
        counter_sum(&net, "messages").await,
        counter_sum(&net, "kv_writes").await,
    );
    drop(one);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let mut spread = Vec::new();
    for (i, tok) in tokens.iter().enumerate() {
        spread.push(net.login(i % 3, tok).await);
    }
    let three_nodes = LOGINS as f64 / t.elapsed().as_secs_f64();
    drop(spread);
    // Heartbeats in the window are counted too: 3 nodes × 1/s.
    let secs = 1.5 + LOGINS as f64 / one_node;
    let per_login_msgs = ((m1 - m0) as f64 - 3.0 * secs) / LOGINS as f64;
    let per_login_kv = ((k1 - k0) as f64 - 3.0 * secs) / LOGINS as f64;

    // Calls: same node (both on node 0), then across nodes (caller node 0, callee node 1).
    let (_alice, at) = net.account().await;
    let (bob, bt) = net.account().await;
    let (carol, ct) = net.account().await;
    let mut a = net.login(0, &at).await;
    let mut b = net.login(0, &bt).await;
    let mut c = net.login(1, &ct).await;
    net.directory_at_least(3).await;
    let mut same = Vec::new();
    for _ in 0..CALLS {
        let (ms, bb) = timed_call(&mut a, b, &bob).await;
        b = bb;
        same.push(ms);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (m0, k0, r0) = (
        counter_sum(&net, "messages").await,
        counter_sum(&net, "kv_writes").await,
        counter_sum(&net, "requests").await,
    );
    let t = Instant::now();
    let mut cross = Vec::new();
    for _ in 0..CALLS {
        let (ms, cc) = timed_call(&mut a, c, &carol).await;
        c = cc;
        cross.push(ms);
    }
    let secs = t.elapsed().as_secs_f64() + 0.3;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (m1, k1, r1) = (
        counter_sum(&net, "messages").await,
        counter_sum(&net, "kv_writes").await,
        counter_sum(&net, "requests").await,
    );
    let per_call_msgs = ((m1 - m0) as f64 - 3.0 * secs) / CALLS as f64;
    let per_call_kv = ((k1 - k0) as f64 - 3.0 * secs) / CALLS as f64;
    let per_call_requests = (r1 - r0) as f64 / CALLS as f64;
    println!("netbench (3 supernodes + 3 nats-servers + this client on one machine)");
    println!("| figure | value |");
    println!("|---|---|");
    println!("| logins/s, all on one node (sequential) | {one_node:.0} |");
    println!("| logins/s, spread over 3 nodes (sequential) | {three_nodes:.0} |");
    println!(
        "| call set-up (invite → accepted) same node p50 / p99 ms | {:.1} / {:.1} |",
        percentile(&mut same, 0.5),
        percentile(&mut same, 0.99)
    );
    println!(
        "| call set-up cross-node p50 / p99 ms | {:.1} / {:.1} |",
        percentile(&mut cross, 0.5),
        percentile(&mut cross, 0.99)
    );
    println!("| NATS messages per login (heartbeats removed) | {per_login_msgs:.1} |");
    println!("| KV writes per login | {per_login_kv:.1} |");
    println!("| cross-node requests per call (set-up + hang-up) | {per_call_requests:.1} |");
    println!("| NATS messages per cross-node call (heartbeats removed) | {per_call_msgs:.1} |");
    println!("| KV writes per cross-node call | {per_call_kv:.1} |");
    drop((a, b, c));

    // Doubling: N endpoints logged in over the three nodes, then N more within 60 s
    // (concurrent logins, 100 accounts), every login timed; errors counted.
    let n: usize = std::env::var("NETBENCH_ENDPOINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut accounts = Vec::new();
    for _ in 0..100 {
        accounts.push(net.account().await.1);
    }
    let bases: Vec<String> = net.nodes.iter().map(|n| n.base()).collect();
    let login_wave = |from: usize, count: usize| {
        let mut tasks = tokio::task::JoinSet::new();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
        for i in from..from + count {
            let base = bases[i % 3].clone();
            let token = accounts[i % accounts.len()].clone();
            let sem = sem.clone();
            tasks.spawn(async move {
                let _permit = sem.acquire_owned().await.unwrap();
                let t = Instant::now();
                let r = SignalingClient::connect(&base, &token).await;
                (t.elapsed().as_secs_f64() * 1000.0, r)
            });
        }
        tasks
    };
    let mut held = Vec::new();
    let mut errors = 0usize;
    let mut wave = login_wave(0, n);
    while let Some(r) = wave.join_next().await {
        match r.unwrap() {
            (_, Ok(c)) => held.push(c),
            (_, Err(_)) => errors += 1,
        }
    }
    let t = Instant::now();
    let mut lat = Vec::new();
    let mut wave = login_wave(n, n);
    while let Some(r) = wave.join_next().await {
        match r.unwrap() {
            (ms, Ok(c)) => {
                lat.push(ms);
                held.push(c);
            }
            (_, Err(_)) => errors += 1,
        }
    }
    let took = t.elapsed();
    let mut total = 0;
    for node in &net.nodes {
        total += node.metric("supernode_endpoints").await as usize;
    }
    println!(
        "| doubling {n} → {} endpoints over 3 nodes: time, login p50 / p99 / max ms, errors | {:.1} s, {:.1} / {:.1} / {:.1}, {errors} |",
        2 * n,
        took.as_secs_f64(),
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        percentile(&mut lat, 1.0),
    );
    println!("| endpoints the nodes count after the doubling | {total} |");
    assert_eq!(errors, 0, "logins failed during the doubling");
    assert!(took < Duration::from_secs(60), "the doubling took {took:?}");
    assert_eq!(total, 2 * n);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_cross_node_call_keeps_its_media_when_nats_goes_away() {
    use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
    use supernode_edge::similarity::PASS_THRESHOLD;
    let Some(mut net) = Network::start().await else {
        return;
    };
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let audio_only = |c: &mut SignaledCall| {
        c.media_bind = "127.0.0.1:0".parse().unwrap();
        c.engine.mark_period_ms = 1_000;
    };
    let mut callee = SignaledCall::new(
        &net.nodes[1].base(),
        &bob_token,
        Role::Answer {
            wait: Duration::from_secs(20),
            decide: None,
        },
        Duration::from_secs(6),
    );
    audio_only(&mut callee);
    let callee = tokio::spawn(run_signaled_call(callee));
    net.wait(&net.nodes[0], "bob visible on node-0", |v| {
        v["directory_records"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let mut caller = SignaledCall::new(
        &net.nodes[0].base(),
        &alice_token,
        Role::Call {
            to: bob,
            media: MediaKind::Audio,
            ring_timeout: Duration::from_secs(10),
        },
        Duration::from_secs(6),
    );
    audio_only(&mut caller);
    let caller = tokio::spawn(run_signaled_call(caller));
    // The call is up (the anchor counts it); then every NATS server goes away.
    let end = Instant::now() + Duration::from_secs(10);
    while net.nodes[0].metric("supernode_calls").await < 1.0 {
        assert!(Instant::now() < end, "the call never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    net.cluster.stop_all();
    let a = caller.await.unwrap().unwrap();
    let b = tokio::time::timeout(Duration::from_secs(15), callee)
        .await
        .expect("the callee ends")
        .unwrap()
        .unwrap();
    for r in [&a.report, &b.report] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        // 6 s of audio at 50 packets/s, most of it after NATS went away.
        assert!(
            r.audio.packets_received > 200,
            "{}",
            r.audio.packets_received
        );
        assert!(r.audio.similarity.unwrap() > PASS_THRESHOLD);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_three_nodes_calls_across_two_of_them_over_a_trunk() {
    if !supernode_testkit::nats::installed() {
        supernode_testkit::external::unavailable(
            "nats-server is not installed (Debian: apt-get install nats-server)",
        );
        return;
    }
    let edge = common::edge_bin();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["demo", "--nodes", "3", "--seconds", "3", "--edge"])
            .arg(edge)
            .env_remove("SUPERNODE_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("every node sees 3 live nodes"), "{stdout}");
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("VERDICT: PASS"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        verdict.contains("from node-1 to node-3 over a trunk"),
        "{verdict}"
    );
}

/// A test endpoint's media: 50 RTP packets/s (SRTP, one SSRC, sequence numbers continuing
/// across legs) to the current leg, and the arrival time of every packet that
/// authenticates. A new leg (after a resume) takes new keys and a new destination.
struct Pump {
    leg: tokio::sync::watch::Sender<Option<supernode_proto::protocol::LegInfo>>,
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Pump {
    fn start(ssrc: u32) -> Self {
        use supernode_edge::srtp::{SrtpKey, SrtpKeyB64, session};
        let (leg, mut rx) = tokio::sync::watch::channel(None::<supernode_proto::protocol::LegInfo>);
        let arrivals = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = arrivals.clone();
        let task = tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let (mut seq, mut ts) = (1000u16, 0u32);
            let mut cur = None;
            let mut buf = vec![0u8; 2048];
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        let l = rx.borrow_and_update().clone();
                        cur = l.map(|l| {
                            let key = SrtpKey::from_keying(l.srtp.as_ref().unwrap()).unwrap();
                            let dest: std::net::SocketAddr = l.address.parse().unwrap();
                            (dest, session(&key).unwrap(), session(&key).unwrap())
                        });
                    }
                    _ = tick.tick() => {
                        let Some((dest, tx, _)) = cur.as_mut() else { continue };
                        let mut pkt = vec![0x80, 111];
                        pkt.extend_from_slice(&seq.to_be_bytes());
                        pkt.extend_from_slice(&ts.to_be_bytes());
                        pkt.extend_from_slice(&ssrc.to_be_bytes());
                        pkt.extend_from_slice(&[0x42; 80]);
                        let n = pkt.len();
                        pkt.resize(n + 16, 0);
                        let n = tx.protect_rtp(&mut pkt, n).unwrap();
                        let _ = sock.send_to(&pkt[..n], *dest).await;
                        seq = seq.wrapping_add(1);
                        ts = ts.wrapping_add(960);
                    }
                    r = sock.recv_from(&mut buf) => {
                        let Ok((n, _)) = r else { continue };
                        let Some((_, _, rx_s)) = cur.as_mut() else { continue };
                        // RTP only (RTCP has payload types 200-204 in its second byte).
                        if n < 12 || (200..=204).contains(&buf[1]) {
                            continue;
                        }
                        if rx_s.unprotect_rtp(&mut buf[..n]).is_ok() {
                            seen.lock().unwrap().push(Instant::now());
                        }
                    }
                }
            }
        });
        Self {
            leg,
            arrivals,
            task,
        }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Waits until `n` packets arrived after `since` (20 s at most).
    async fn wait_flowing(&self, since: Instant, n: usize, what: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while self.arrivals().iter().filter(|t| **t > since).count() < n {
            assert!(Instant::now() < end, "{what}: media never flowed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The media gap around `at`: first arrival after it − last arrival before it.
    fn gap(&self, at: Instant) -> Duration {
        let a = self.arrivals();
        let before = a.iter().filter(|t| **t <= at).max().expect("media before");
        let after = a.iter().filter(|t| **t > at).min().expect("media after");
        *after - *before
    }
}

/// Which node of a trunked call `failover_once` kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    /// The callee's node: the callee resumes elsewhere, the anchor re-trunks to it.
    Callee,
    /// The anchor (the caller's node): the caller resumes elsewhere, and the call is
    /// re-anchored on the callee's node.
    Anchor,
}

/// A running call: Alice (logged in on node `anchor`) called Bob (on node `callee`), who
/// answered; both pump media and each hears the other.
struct FlowingCall {
    alice: AccountId,
    alice_token: String,
    bob: AccountId,
    bob_token: String,
    a: SignalingClient,
    b: SignalingClient,
    call_a: CallSetup,
    call_b: CallSetup,
    pump_a: Pump,
    pump_b: Pump,
}

/// Sets up a [`FlowingCall`] between nodes `anchor` and `callee`.
async fn flowing_call(net: &Network, anchor: usize, callee: usize) -> FlowingCall {
    let (alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let mut b = net.login(callee, &bob_token).await;
    assert_eq!(
        b.nodes.len(),
        3,
        "login_ok lists the live nodes: {:?}",
        b.nodes
    );
    let mut a = net.login(anchor, &alice_token).await;
    net.wait(&net.nodes[anchor], "bob visible on the anchor", |v| {
        v["directory_records"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let answer = tokio::spawn(async move {
        let r = b.answer(|_, _| true, Duration::from_secs(15)).await;
        (b, r)
    });
    let call_a = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(15))
        .await
        .unwrap();
    let (b, call_b) = answer.await.unwrap();
    let call_b = call_b.unwrap();
    let pump_a = Pump::start(0x0a11ce);
    let pump_b = Pump::start(0x0b0b);
    pump_a.leg.send(Some(call_a.leg.clone())).unwrap();
    pump_b.leg.send(Some(call_b.leg.clone())).unwrap();
    let t0 = Instant::now();
    pump_a.wait_flowing(t0, 50, "alice hearing bob").await;
    pump_b.wait_flowing(t0, 50, "bob hearing alice").await;
    FlowingCall {
        alice,
        alice_token,
        bob,
        bob_token,
        a,
        b,
        call_a,
        call_b,
        pump_a,
        pump_b,
    }
}

/// `stays` hangs up `stays_call`; `moved`, which resumed the call elsewhere, must hear it as
/// the remote's hang-up of `moved_call` (the call is whole after the move).
async fn hangup_reaches(
    stays: &mut SignalingClient,
    stays_call: &CallSetup,
    moved: &mut SignalingClient,
    moved_call: &CallSetup,
) {
    stays.hangup(stays_call.call_id.clone()).await.unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    match moved
        .wait_end(moved_call.call_id.clone(), end)
        .await
        .unwrap()
    {
        supernode_edge::signaling::CallEnd::Remote(r) => {
            assert_eq!(r, supernode_proto::protocol::EndReason::Hangup)
        }
        e => panic!("the moved endpoint never heard the hang-up: {e:?}"),
    }
}

/// One failover: Alice on node `anchor` calls Bob on node `callee` (trunked, media both
/// ways); `kill -9` the node of `victim`; that endpoint's client reconnects along the node
/// list of its login, resumes the call, and media flows again both ways. Returns the two
/// media gaps (Alice hearing Bob, Bob hearing Alice) and the node the endpoint resumed on.
async fn failover_once(
    net: &mut Network,
    anchor: usize,
    callee: usize,
    victim: Victim,
) -> (Duration, Duration, String) {
    use supernode_edge::failover::{Reconnect, resume_call};
    let FlowingCall {
        alice,
        alice_token,
        bob,
        bob_token,
        a,
        b,
        call_a,
        call_b,
        pump_a,
        pump_b,
    } = flowing_call(net, anchor, callee).await;

    // kill -9 the victim's node; its client notices (its WebSocket closes), the other
    // endpoint stays where it is.
    let (mut gone, stays, node, token, call, peer, old_leg) = match victim {
        Victim::Callee => (
            b,
            a,
            callee,
            &bob_token,
            &call_b,
            alice.clone(),
            &call_b.leg,
        ),
        Victim::Anchor => (
            a,
            b,
            anchor,
            &alice_token,
            &call_a,
            bob.clone(),
            &call_a.leg,
        ),
    };
    let killed_url = gone.url.clone();
    let nodes = gone.nodes.clone();
    let stays_url = stays.url.clone();
    let killed = Instant::now();
    net.nodes[node].child.kill().unwrap();
    let _ = net.nodes[node].child.wait();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    let noticed = loop {
        match gone.next(end).await {
            Err(_) => break Instant::now(),
            Ok(None) => panic!("the WebSocket to a killed node stayed open"),
            Ok(Some(_)) => {}
        }
    };
    let plan = Reconnect::new(&nodes, &killed_url, Duration::from_millis(100), 0x5eed);
    let (back, leg) = resume_call(plan, token, &call.call_id, &peer, Duration::from_secs(15))
        .await
        .expect("the call resumes on another node");
    let resumed = Instant::now();
    assert_ne!(back.url, killed_url);
    assert_ne!(leg.address, old_leg.address);
    match victim {
        Victim::Callee => pump_b.leg.send(Some(leg)).unwrap(),
        Victim::Anchor => pump_a.leg.send(Some(leg)).unwrap(),
    }
    pump_a
        .wait_flowing(resumed, 50, "alice hearing bob after the failover")
        .await;
    pump_b
        .wait_flowing(resumed, 50, "bob hearing alice after the failover")
        .await;
    let (gap_a, gap_b) = (pump_a.gap(killed), pump_b.gap(killed));
    eprintln!(
        "failover ({victim:?} killed): WebSocket closed after {:?}, resumed on {} after {:?} (the other end on {stays_url}); media gap alice←bob {:?}, bob←alice {:?}",
        noticed - killed,
        back.url,
        resumed - killed,
        gap_a,
        gap_b
    );
    // The call is whole: a hang-up by the endpoint that stayed reaches the resumed one.
    let (mut stays, mut back) = (stays, back);
    let (stays_call, back_call) = match victim {
        Victim::Callee => (&call_a, &call_b),
        Victim::Anchor => (&call_b, &call_a),
    };
    hangup_reaches(&mut stays, stays_call, &mut back, back_call).await;
    pump_a.task.abort();
    pump_b.task.abort();
    (gap_a, gap_b, back.url.clone())
}

/// The must-show: `kill -9` the node that carries the callee → media flows again
/// within 5 s (measured: last packet before the kill → first after, each way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_the_callees_node_and_the_call_resumes_on_another() {
    let Some(mut net) = Network::start().await else {
        return;
    };
    let (gap_a, gap_b, resumed_on) = failover_once(&mut net, 0, 1, Victim::Callee).await;
    assert_ne!(resumed_on, format!("ws://{}/v1/ws", net.nodes[1].addr));
    for gap in [gap_a, gap_b] {
        assert!(gap < Duration::from_secs(5), "media gap {gap:?}");
    }
    // The dead node leaves placement once it misses its heartbeats (3 s).
    let dead = format!("ws://{}/v1/ws", net.nodes[1].addr);
    let t = Instant::now();
    for i in [0, 2] {
        net.wait(&net.nodes[i], "the dead node leaves the live list", |v| {
            v["live"]
                .as_array()
                .is_some_and(|l| l.len() == 2 && l.iter().all(|n| n["ws_url"] != dead.as_str()))
        })
        .await;
    }
    eprintln!(
        "dead node out of placement {:?} after the call resumed",
        t.elapsed()
    );
}

/// `kill -9` the *anchor* (the caller's node) → the caller resumes on a third node, the
/// call is re-anchored on the callee's node (its trunk end re-keyed and moved to the third
/// node), and media flows again within 5 s each way; the callee's leg is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_the_anchor_and_the_call_is_reanchored_on_the_callees_node() {
    let Some(mut net) = Network::start().await else {
        return;
    };
    let (gap_a, gap_b, resumed_on) = failover_once(&mut net, 0, 1, Victim::Anchor).await;
    assert_eq!(
        resumed_on,
        format!("ws://{}/v1/ws", net.nodes[2].addr),
        "the caller resumes on the third node (the callee's node holds the call already)"
    );
    for gap in [gap_a, gap_b] {
        assert!(gap < Duration::from_secs(5), "media gap {gap:?}");
    }
}

/// `supernode drain --migrate` on the anchor of a running trunked call: the node leaves
/// placement, tells its endpoints `migrate` (the nodes to go to, itself left out); the
/// caller's client moves to another node and resumes there, the call is re-anchored on the
/// callee's node and media flows again both ways; an idle endpoint is told too; the drained
/// node, its last call gone, stops by itself before `drain_seconds` with no call cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_migrate_moves_the_endpoints_and_their_calls_to_other_nodes() {
    use supernode_edge::failover::{Reconnect, resume_call};
    let Some(mut net) = Network::start().await else {
        return;
    };
    let FlowingCall {
        alice_token,
        bob,
        mut a,
        mut b,
        call_a,
        call_b,
        pump_a,
        pump_b,
        ..
    } = flowing_call(&net, 0, 1).await;
    // An idle endpoint on the node to drain, told to move too.
    let (_carol, carol_token) = net.account().await;
    let mut c = net.login(0, &carol_token).await;

    let drained_url = a.url.clone();
    let out = Command::new(BIN)
        .args(["drain", "--migrate", "--data-dir"])
        .arg(&net.nodes[0].dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "supernode drain --migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = Instant::now();
    // Both endpoints on the drained node are told where to go.
    let mut told = Vec::new();
    for client in [&mut a, &mut c] {
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        let nodes = loop {
            match client.next(end).await.unwrap() {
                Some(ServerMsg::Migrate { nodes }) => break nodes,
                Some(_) => {}
                None => panic!("no migrate within 10 s"),
            }
        };
        assert!(
            !nodes.is_empty() && !nodes.contains(&drained_url),
            "{nodes:?}"
        );
        told.push(nodes);
    }
    // Alice moves: her old socket closes, she resumes the call on another node.
    drop(a);
    let plan = Reconnect::new(&told[0], &drained_url, Duration::from_millis(100), 0x5eed);
    let (a2, leg) = resume_call(
        plan,
        &alice_token,
        &call_a.call_id,
        &bob,
        Duration::from_secs(15),
    )
    .await
    .expect("the call resumes on another node");
    let resumed = Instant::now();
    assert_ne!(a2.url, drained_url);
    pump_a.leg.send(Some(leg)).unwrap();
    pump_a
        .wait_flowing(resumed, 50, "alice hearing bob after the move")
        .await;
    pump_b
        .wait_flowing(resumed, 50, "bob hearing alice after the move")
        .await;
    let (gap_a, gap_b) = (pump_a.gap(asked), pump_b.gap(asked));
    eprintln!(
        "drain --migrate: resumed on {} {:?} after the drain; media gap alice←bob {gap_a:?}, bob←alice {gap_b:?}",
        a2.url,
        resumed - asked
    );
    for gap in [gap_a, gap_b] {
        assert!(gap < Duration::from_secs(5), "media gap {gap:?}");
    }
    drop(c);
    // The drained node lets go of the call (the callee's node told it `end`) and stops by
    // itself, with no call cut, well before its 30 s drain.
    let node = &mut net.nodes[0];
    let stopped = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(25),
            "the drained node still runs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stopped.success(), "{stopped:?}");
    let lines: Vec<String> = node.stdout.try_iter().collect();
    assert!(
        lines.iter().any(|l| l.contains("stopped (0 calls cut")),
        "{lines:?}"
    );
    // The call is whole: bob's hang-up reaches alice on her new node.
    let mut a2 = a2;
    hangup_reaches(&mut b, &call_b, &mut a2, &call_a).await;
    pump_a.task.abort();
    pump_b.task.abort();
}

/// Presence across nodes: Alice on node 0 watches Bob; Bob logging in on node 1 reads
/// online to her, his leaving offline, and his node's `kill -9` offline too (once the
/// node misses its heartbeats).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes() {
    use supernode_proto::protocol::ClientMsg;
    let Some(mut net) = Network::start().await else {
        return;
    };
    let (_alice, alice_token) = net.account().await;
    let (bob, bob_token) = net.account().await;
    let mut a = net.login(0, &alice_token).await;
    a.send(&ClientMsg::SubscribePresence {
        account_ids: vec![bob.clone()],
    })
    .await
    .unwrap();
    async fn next_presence(a: &mut SignalingClient, bob: &AccountId) -> (bool, Instant) {
        let end = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            match a.next(end).await.unwrap() {
                Some(ServerMsg::Presence { account_id, online }) if account_id == *bob => {
                    return (online, Instant::now());
                }
                Some(_) => {}
                None => panic!("no presence of bob within 15 s"),
            }
        }
    }
    assert!(
        !next_presence(&mut a, &bob).await.0,
        "bob is offline at first"
    );
    let t = Instant::now();
    let b = net.login(1, &bob_token).await;
    let (online, at) = next_presence(&mut a, &bob).await;
    assert!(online, "bob logged in on node 1 reads online on node 0");
    eprintln!(
        "presence across nodes: online {:?} after bob's login",
        at - t
    );
    let t = Instant::now();
    drop(b);
    let (online, at) = next_presence(&mut a, &bob).await;
    assert!(!online, "bob's leaving reads offline");
    eprintln!("presence across nodes: offline {:?} after bob left", at - t);
    // Bob on node 2, whose process dies: offline once node 2 is dead for placement.
    let _b = net.login(2, &bob_token).await;
    assert!(next_presence(&mut a, &bob).await.0);
    let t = Instant::now();
    net.nodes[2].child.kill().unwrap();
    let _ = net.nodes[2].child.wait();
    let (online, at) = next_presence(&mut a, &bob).await;
    assert!(!online, "bob's dead node takes him offline");
    eprintln!(
        "presence across nodes: offline {:?} after kill -9 of bob's node",
        at - t
    );
}

/// `cargo test -p supernode --test network -- --ignored failover_bench --nocapture`: the
/// failovers above 10 times (the anchor and the callee's node rotate over the three nodes;
/// even runs kill the callee's node, odd runs the anchor; the killed node is started again
/// between runs); p50 and max of the media gap, each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn failover_bench() {
    let Some(mut net) = Network::start().await else {
        return;
    };
    const RUNS: usize = 10;
    let (mut to_alice, mut to_bob) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        let (anchor, callee) = (run % 3, (run + 1) % 3);
        // Even runs kill the callee's node, odd runs the anchor.
        let victim = if run % 2 == 0 {
            Victim::Callee
        } else {
            Victim::Anchor
        };
        let (ga, gb, _) = failover_once(&mut net, anchor, callee, victim).await;
        to_alice.push(ga.as_secs_f64() * 1000.0);
        to_bob.push(gb.as_secs_f64() * 1000.0);
        let dead = if victim == Victim::Callee {
            callee
        } else {
            anchor
        };
        net.nodes[dead] = start_node(&net.cluster, dead, &net.db_url);
        for n in &net.nodes {
            net.wait(n, "three live nodes again", |v| {
                v["live"].as_array().is_some_and(|l| l.len() == 3)
            })
            .await;
        }
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "failover_bench: {RUNS} runs, media gap (last packet before kill -9 → first after), ms"
    );
    eprintln!("| direction | p50 | max |");
    eprintln!("|---|---|---|");
    eprintln!(
        "| caller hears callee | {:.0} | {:.0} |",
        percentile(&mut to_alice.clone(), 0.5),
        max(&to_alice)
    );
    eprintln!(
        "| callee hears caller | {:.0} | {:.0} |",
        percentile(&mut to_bob.clone(), 0.5),
        max(&to_bob)
    );
    eprintln!("runs: caller←callee {to_alice:.0?}, callee←caller {to_bob:.0?}");
}

/// The next line from the browser driver that has the key `want`.
async fn next_line(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>, want: &str) -> Value {
    loop {
        let v = tokio::time::timeout(Duration::from_secs(90), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the browser never printed {want}"))
            .unwrap_or_else(|| panic!("the driver ended before {want}"));
        if v.get(want).is_some() {
            return v;
        }
    }
}

/// The web client's failover (real headless Chromium, `web/tests/run.mjs --scenario
/// reconnect`): a browser logged in on node 0 (whose page it loaded) loses it to `kill -9`,
/// logs in again on another node of its `login_ok.nodes` on its own, and is then reachable
/// there: an invite from node 1 rings the tab, and the tab takes the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_whose_node_dies_logs_in_again_on_another_and_takes_calls() {
    if !common::web::driver_ready("browser_failover") {
        return;
    }
    let Some(mut net) = Network::start_with(&[("SUPERNODE_DEMO_PARTNER", "true")]).await else {
        return;
    };
    // The caller must be the demo partner's too (calls stay within a partner).
    let demo: Value = reqwest::Client::new()
        .post(format!("{}/demo/login", net.nodes[0].base()))
        .json(&serde_json::json!({ "name": "Caller" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let caller_token = demo["token"]
        .as_str()
        .expect("a demo credential")
        .to_owned();
    let base = net.nodes[0].base();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let driver = tokio::task::spawn_blocking(move || {
        common::web::run_at(&base, "reconnect", &[], |v| {
            let _ = tx.send(v.clone());
        })
    });
    let who = next_line(&mut rx, "browser_account").await;
    let browser = AccountId::parse(who["browser_account"].as_str().unwrap()).unwrap();
    // kill -9 the node the page came from and logged in on.
    net.nodes[0].child.kill().unwrap();
    let again = next_line(&mut rx, "reconnected").await;
    let node_ws = again["reconnected"].as_str().unwrap().to_owned();
    assert!(
        [1, 2]
            .iter()
            .any(|&i| node_ws == format!("ws://{}/v1/ws", net.nodes[i].addr)),
        "reconnected to {node_ws}"
    );
    // The browser is reachable through the network: a call from node 1 rings it (once the
    // directory has its new endpoint: until then the answer is `unavailable`).
    let mut caller = net.login(1, &caller_token).await;
    let end = Instant::now() + Duration::from_secs(30);
    let call = loop {
        match caller
            .invite(browser.clone(), MediaKind::Audio, Duration::from_secs(30))
            .await
        {
            Ok(call) => break call,
            Err(CallError::Unavailable) if Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => net.fail(&format!("calling the reconnected browser: {e:?}")),
        }
    };
    // Once the tab is in the call, the caller hangs up: the tab goes back to idle, and the
    // driver ends.
    next_line(&mut rx, "in_call").await;
    caller.hangup(call.call_id).await.unwrap();
    let (_, summary) = driver.await.unwrap();
    assert!(
        summary["facts"]["reconnect_ms"].as_f64().is_some(),
        "{summary}"
    );
    eprintln!(
        "browser failover: logged in again on {node_ws} {} ms after the node died",
        summary["facts"]["reconnect_ms"]
    );
}
