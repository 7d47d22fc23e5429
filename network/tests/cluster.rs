//! The network layer against a real 3-server NATS cluster with JetStream (Debian's
//! `nats-server`; skipped when missing unless `SUPERNODE_REQUIRE_EXTERNAL=1`).
//!
//! Each node connects to a different server first (the URL list rotated), as three
//! supernodes of a deployment would.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use supernode_network::{Claim, Load, Network, NetworkConfig, NetworkError, NodeHandler};
use supernode_proto::ids::{AccountId, CallId, EndpointId};
use supernode_proto::network::{Envelope, MessageId, NodeMsg, NodeReply, Refusal};
use supernode_proto::protocol::EndReason;
use supernode_signaling::directory::{Directory, EndpointRecord};
use supernode_testkit::nats::NatsCluster;

fn cfg(cluster: &NatsCluster, i: usize) -> NetworkConfig {
    let mut urls = cluster.client_urls();
    let n = urls.len();
    urls.rotate_left(i % n);
    NetworkConfig {
        urls,
        node_id: format!("node-{i}"),
        region: "eu".into(),
        kv_replicas: cluster.len().min(3),
        request_timeout: Duration::from_millis(500),
        ws_url: format!("ws://127.0.0.1:{}/v1/ws", 9000 + i),
        ..NetworkConfig::default()
    }
}

async fn nodes(cluster: &NatsCluster, n: usize) -> Vec<Arc<Network>> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(Network::connect(cfg(cluster, i)).await.expect("connect"));
    }
    v
}

/// Polls `f` every 20 ms until it holds; panics with `what` after `limit`.
async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn record(account: &AccountId, node: &Network) -> EndpointRecord {
    EndpointRecord {
        account: account.clone(),
        endpoint: EndpointId::random(),
        supernode: node.node_id().to_owned(),
        partner: Some(supernode_proto::ids::PartnerId::from_bytes([5; 16])),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_heartbeats_load_and_death_after_three_seconds() {
    let Some(cluster) = NatsCluster::start(3) else {
        return;
    };
    let net = nodes(&cluster, 3).await;
    for n in &net {
        eventually(
            "every node sees three live nodes",
            Duration::from_secs(5),
            || n.live_nodes().len() == 3,
        )
        .await;
    }
    net[1].set_load(Load {
        endpoints: 500,
        transports: 10,
        packets_per_second: 1000,
        cpu_percent: 12.5,
    });
    eventually(
        "node-1's load reaches node-0",
        Duration::from_secs(5),
        || {
            net[0]
                .members()
                .get("node-1")
                .is_some_and(|b| b.load.endpoints == 500 && b.load.cpu_percent == 12.5)
        },
    )
    .await;
    // Placement: least-loaded live node of the region.
    assert_ne!(net[0].place("eu", false).unwrap().node, "node-1");
    assert!(net[0].place("us", false).is_none());
    net[0].set_draining(true);
    eventually(
        "a draining node leaves placement",
        Duration::from_secs(5),
        || {
            net[2]
                .place("eu", false)
                .is_some_and(|b| b.node == "node-2")
        },
    )
    .await;
    // A silent node (crashed: no goodbye) is dead for placement 3 s after its last beat.
    let stopped = Instant::now();
    net[2].stop();
    let took = eventually("node-2 dead", Duration::from_secs(6), || {
        !net[0].live_nodes().iter().any(|b| b.node == "node-2")
    })
    .await;
    assert!(
        took >= Duration::from_secs(2) && stopped.elapsed() <= Duration::from_secs(6),
        "dead after {took:?}"
    );
    // A node that leaves is gone at once.
    net[1].leave().await;
    eventually("node-1 gone", Duration::from_secs(2), || {
        net[0].members().get("node-1").is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_is_shared_and_ignores_dead_nodes() {
    let Some(cluster) = NatsCluster::start(3) else {
        return;
    };
    let net = nodes(&cluster, 3).await;
    let alice = AccountId::random();
    let tabs: Vec<EndpointRecord> = net.iter().map(|n| record(&alice, n)).collect();
    for (n, r) in net.iter().zip(&tabs) {
        n.directory().attach(r.clone());
    }
    let mut changes = net[0].directory().changes();
    for n in &net {
        let d = n.directory();
        eventually(
            "each node sees alice's three tabs",
            Duration::from_secs(5),
            || d.endpoints_of(&alice).len() == 3,
        )
        .await;
    }
    assert!(
        changes.try_recv().is_ok(),
        "a change of alice was announced"
    );
    net[1]
        .directory()
        .detach("node-1", &alice, &tabs[1].endpoint);
    let d0 = net[0].directory();
    eventually("a detach reaches node-0", Duration::from_secs(5), || {
        let eps = d0.endpoints_of(&alice);
        eps.len() == 2 && !eps.contains(&tabs[1])
    })
    .await;
    // node-2 crashes: its record stays in the bucket but is ignored once it is dead.
    net[2].stop();
    eventually("node-2's tab ignored", Duration::from_secs(6), || {
        d0.endpoints_of(&alice) == vec![tabs[0].clone()]
    })
    .await;
    assert!(d0.all_records().contains(&tabs[2]), "still in the bucket");
    // node-2 comes back under its id: its earlier records are purged.
    drop(net);
    let again = Network::connect(cfg(&cluster, 2)).await.unwrap();
    let d = again.directory();
    eventually("stale records purged", Duration::from_secs(5), || {
        !d.all_records().contains(&tabs[2]) && d.all_records().contains(&tabs[0])
    })
    .await;
}

/// Records what it handles; refuses rings to "busy" accounts.
struct Recorder {
    handled: AtomicU64,
    busy: AccountId,
}

impl NodeHandler for Recorder {
    fn handle(&self, _from: &str, msg: NodeMsg) -> NodeReply {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match msg {
            NodeMsg::Ring { callee, .. } if callee == self.busy => {
                NodeReply::Refused { why: Refusal::Busy }
            }
            _ => NodeReply::Ok,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_once_per_message_id() {
    let Some(cluster) = NatsCluster::start(3) else {
        return;
    };
    let net = nodes(&cluster, 2).await;
    // node-0 addresses node-1 once it has seen node-1's heartbeat.
    eventually("node-0 sees node-1", Duration::from_secs(10), || {
        net[0].live_nodes().iter().any(|b| b.node == "node-1")
    })
    .await;
    let rec = Arc::new(Recorder {
        handled: AtomicU64::new(0),
        busy: AccountId::random(),
    });
    net[1].serve(rec.clone()).await.unwrap();
    let call = CallId::random();
    let r = net[0]
        .request(
            "node-1",
            NodeMsg::End {
                call: call.clone(),
                reason: EndReason::Hangup,
            },
        )
        .await
        .unwrap();
    assert_eq!(r, NodeReply::Ok);
    let r = net[0]
        .request(
            "node-1",
            NodeMsg::Ring {
                call: call.clone(),
                caller: AccountId::random(),
                caller_endpoint: EndpointId::random(),
                partner: supernode_proto::ids::PartnerId::random(),
                callee: rec.busy.clone(),
                media: supernode_proto::protocol::MediaKind::Audio,
                sdp: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(r, NodeReply::Refused { why: Refusal::Busy });
    assert_eq!(rec.handled.load(Ordering::SeqCst), 2);
    // The same envelope three times (a sender's retries): handled once, answered thrice.
    let client = async_nats::connect(cluster.client_urls()[0].as_str())
        .await
        .unwrap();
    let env = Envelope {
        id: MessageId::random(),
        from: "node-x".into(),
        msg: NodeMsg::Answered { call },
    };
    for _ in 0..3 {
        let m = client
            .request("sn.node.node-1", serde_json::to_vec(&env).unwrap().into())
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<NodeReply>(&m.payload).unwrap(),
            NodeReply::Ok
        );
    }
    assert_eq!(rec.handled.load(Ordering::SeqCst), 3);
    assert_eq!(net[1].counters().repeats, 2);
    // Garbage is dropped and counted (no answer).
    let garbage = client.request("sn.node.node-1", "{not json".into()).await;
    assert!(garbage.is_err());
    assert_eq!(net[1].counters().undecodable, 1);
    // A node nobody serves: fails fast, not after the retries.
    let t = Instant::now();
    let e = net[0]
        .request(
            "node-9",
            NodeMsg::Answered {
                call: CallId::random(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, NetworkError::NoSuchNode(_)), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_answer_claim_wins() {
    let Some(cluster) = NatsCluster::start(3) else {
        return;
    };
    let net = nodes(&cluster, 3).await;
    for _round in 0..5 {
        let call = CallId::random();
        let tabs: Vec<EndpointId> = (0..3).map(|_| EndpointId::random()).collect();
        let mut handles = Vec::new();
        for (n, ep) in net.iter().zip(&tabs) {
            let (n, call, ep) = (n.clone(), call.clone(), ep.clone());
            handles.push(tokio::spawn(
                async move { n.claim_answer(&call, &ep).await },
            ));
        }
        let mut won = 0;
        let mut winners = Vec::new();
        for h in handles {
            match h.await.unwrap().unwrap() {
                Claim::Won => won += 1,
                Claim::Lost { winner } => winners.push(winner),
            }
        }
        assert_eq!(won, 1, "one winner per call");
        assert_eq!(winners.len(), 2);
        assert_eq!(winners[0], winners[1], "losers name the same winner");
        // A repeat of the winner's own claim still wins (a retry after a lost ack).
        let w = &winners[0];
        let (node, ep) = w.split_once('/').unwrap();
        let i: usize = node.trim_start_matches("node-").parse().unwrap();
        assert_eq!(
            net[i]
                .claim_answer(&call, &EndpointId::parse(ep).unwrap())
                .await
                .unwrap(),
            Claim::Won
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_nats_server_down_then_all_down_then_back() {
    let Some(mut cluster) = NatsCluster::start(3) else {
        return;
    };
    let net = nodes(&cluster, 3).await;
    let rec = Arc::new(Recorder {
        handled: AtomicU64::new(0),
        busy: AccountId::random(),
    });
    net[2].serve(rec.clone()).await.unwrap();
    let alice = AccountId::random();
    // Kill the server node-0 is connected to: it fails over to another one, and the
    // directory (3 replicas) and requests go on.
    cluster.kill(0);
    let a = record(&alice, &net[0]);
    net[0].directory().attach(a.clone());
    let d2 = net[2].directory();
    // The bucket's stream may have lost its leader with that server: the write is retried
    // until a new one is elected (nats-server followers wait 4–9 s before they campaign,
    // longer on a loaded machine) and the watch delivers it. CI saw more than 10 s.
    eventually(
        "a record written after one server died arrives",
        Duration::from_secs(30),
        || d2.endpoints_of(&alice).contains(&a),
    )
    .await;
    let end = NodeMsg::End {
        call: CallId::random(),
        reason: EndReason::Hangup,
    };
    let mut ok = false;
    for _ in 0..20 {
        if net[0].request("node-2", end.clone()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "requests go on with one server down");

    // Every server down: requests fail with `Unavailable` once the reconnect grace (4 s)
    // is over; the directory keeps answering from its replica.
    cluster.stop_all();
    eventually("node-0 notices", Duration::from_secs(10), || {
        !net[0].connected()
    })
    .await;
    let t = Instant::now();
    let e = net[0].request("node-2", end.clone()).await.unwrap_err();
    assert!(matches!(e, NetworkError::Unavailable(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    eventually("past the grace", Duration::from_secs(8), || {
        !net[0].reachable()
    })
    .await;
    let t = Instant::now();
    assert!(net[0].request("node-2", end.clone()).await.is_err());
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "fast after the grace"
    );
    assert!(matches!(
        net[0]
            .claim_answer(&CallId::random(), &EndpointId::random())
            .await,
        Err(NetworkError::Unavailable(_))
    ));
    assert!(net[0].directory().endpoints_of(&alice).contains(&a));
    // A login while NATS is away is written when it is back.
    let b = record(&alice, &net[1]);
    net[1].directory().attach(b.clone());

    cluster.start_all();
    let took = eventually("all reconnect", Duration::from_secs(20), || {
        net.iter().all(|n| n.connected())
    })
    .await;
    eprintln!("reconnected {took:?} after the restart");
    let d = net[2].directory();
    eventually(
        "directory rebuilt with the record made while NATS was away",
        Duration::from_secs(30),
        || {
            let eps = d.endpoints_of(&alice);
            eps.contains(&a) && eps.contains(&b)
        },
    )
    .await;
    eventually("three live nodes again", Duration::from_secs(10), || {
        net[0].live_nodes().len() == 3
    })
    .await;
    let mut ok = false;
    for _ in 0..50 {
        if net[0].request("node-2", end.clone()).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "requests work again");
    assert!(net[1].counters().reregistrations >= 1);
}
