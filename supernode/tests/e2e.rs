//! End to end: the real `supernode` binary and real `edge` processes on loopback (see
//! `common` for how the edge executable is found or built).

mod common;

use std::time::Duration;

use common::{Edge, Node, data_dir, partner};
use serde_json::json;

/// Media options: audio+video (one relay leg per endpoint carries both).
fn media(secs: &str) -> Vec<String> {
    vec![
        "--duration".to_owned(),
        secs.to_owned(),
        "--width".into(),
        "320".into(),
        "--height".into(),
        "180".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn call_media_is_checked_and_hangup_frees_every_leg() {
    let dir = data_dir("call");
    let (_, key) = partner(&dir, "p", false);
    let node = Node::start(&dir, &[]);
    let (_, alice) = node.account(&key, "Alice").await;
    let (bob_id, bob) = node.account(&key, "Bob").await;
    let m = media("4s");
    let mut args = vec!["answer", "--auto-accept", "--seed", "2", "--peer-seed", "1"];
    args.extend(strs(&m));
    let mut callee = Edge::signaled(&node, &bob, &args);
    node.expect_metric("supernode_endpoints", 1.0).await;
    let mut args = vec!["call", &bob_id, "--seed", "1", "--peer-seed", "2"];
    args.extend(strs(&m));
    let mut caller = Edge::signaled(&node, &alice, &args);
    // During the call the relay holds legs.
    node.expect_metric("supernode_calls", 1.0).await;
    assert!(node.metric("supernode_relay_legs").await >= 2.0);
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
        assert!(r["audio"]["similarity"].as_f64().unwrap() >= 0.7, "{r}");
        // No loss and a short path on loopback: the E-model estimate is high.
        assert!(r["audio"]["mos"].as_f64().unwrap() > 4.0, "{r}");
        assert!(r["video"]["frames_decoded"].as_u64().unwrap() > 60, "{r}");
        assert!(r["video"]["psnr_db"].as_f64().unwrap() >= 32.0, "{r}");
    }
    // Hangup frees every leg.
    node.expect_metric("supernode_relay_legs", 0.0).await;
    assert_eq!(node.metric("supernode_calls").await, 0.0);
    assert!(node.metric("supernode_relay_packets_forwarded_total").await > 200.0);
    // A call at normal load never stands a worker's shared-port queue full.
    assert_eq!(
        node.metric("supernode_relay_worker_backlog_cuts_total{worker=\"0\"}")
            .await,
        0.0
    );
    assert_eq!(
        node.metric("supernode_relay_worker_backlog_cut{worker=\"0\"}")
            .await,
        0.0
    );
    // Each audio leg's MOS estimate went into the histogram once, when the call released it
    // (one leg per endpoint).
    assert_eq!(node.metric("supernode_call_mos_count").await, 2.0);
    let mean = node.metric("supernode_call_mos_sum").await / 2.0;
    assert!(mean > 4.0 && mean <= 4.5, "mean MOS {mean}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callee_logged_in_twice_gets_answered_elsewhere_on_the_second_endpoint() {
    let dir = data_dir("twice");
    let (_, key) = partner(&dir, "p", false);
    let node = Node::start(&dir, &[]);
    let (_, alice) = node.account(&key, "Alice").await;
    let (bob_id, bob) = node.account(&key, "Bob").await;
    let answer = ["answer", "--no-video", "--duration", "3s", "--wait", "30s"];
    // Bob's first endpoint accepts at once; the second one is asked and says yes only once
    // the call is up elsewhere.
    let mut b1 = Edge::signaled(&node, &bob, &[&answer[..], &["--auto-accept"]].concat());
    let mut b2 = Edge::signaled(&node, &bob, &answer);
    node.expect_metric("supernode_endpoints", 2.0).await;
    let mut caller = Edge::signaled(
        &node,
        &alice,
        &["call", &bob_id, "--no-video", "--duration", "3s"],
    );
    node.expect_metric("supernode_calls", 1.0).await;
    assert!(
        node.wait_metric("supernode_relay_legs", 2.0, Duration::from_secs(10))
            .await
            >= 2.0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    b2.say("y");
    let (cc, crep) = caller.finish(Duration::from_secs(60));
    assert_eq!(cc, Some(0), "{crep}");
    let r1 = b1.finish(Duration::from_secs(60));
    let r2 = b2.finish(Duration::from_secs(60));
    let ends: Vec<_> = [&r1, &r2]
        .iter()
        .map(|(_, r)| r["call_end"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(r1.0, Some(0), "{ends:?}");
    assert_eq!(r1.1["ok"], true);
    assert_eq!(r2.0, Some(2), "signaling failure exit status: {ends:?}");
    assert_eq!(r2.1["call_end"], "answered_elsewhere", "{ends:?}");
    node.expect_metric("supernode_relay_legs", 0.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_edge_frees_its_legs() {
    let dir = data_dir("killed");
    let (_, key) = partner(&dir, "p", false);
    let node = Node::start(&dir, &[("SUPERNODE_RELAY_IDLE_TIMEOUT_SECONDS", "2")]);
    let (mut caller, mut callee) = node.audio_call(&key, "60s").await;
    // Media flows, then the callee dies without a word.
    node.expect_metric_at_least("supernode_relay_packets_forwarded_total", 50.0)
        .await;
    assert!(node.metric("supernode_relay_legs").await >= 2.0);
    callee.kill();
    // Its socket closes (the call ends) or its leg goes idle: either way every leg is freed
    // within the idle timeout and a little.
    node.expect_metric("supernode_relay_legs", 0.0).await;
    assert_eq!(node.metric("supernode_calls").await, 0.0);
    // The caller learns the call ended.
    let (_, rep) = caller.finish(Duration::from_secs(30));
    assert!(rep["call_end"].is_string(), "{rep}");
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_legs_that_hear_nothing_are_freed_after_the_idle_timeout_and_counters_stay() {
    let dir = data_dir("idle");
    let (_, key) = partner(&dir, "tool", true);
    let node = Node::start(&dir, &[("SUPERNODE_RELAY_IDLE_TIMEOUT_SECONDS", "1")]);
    let (_, legs) = common::relay_session(&node, &key, json!([{}, {}])).await;
    // Both legs latch to a peer and hear RTP (so each forwards to the other) until the
    // counters have been scraped; then silence.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (stop, legs) = (stop.clone(), legs.clone());
        std::thread::spawn(move || {
            let socks: Vec<_> = (0..2)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            let mut seq = 0u16;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, (s, to)) in socks.iter().zip(&legs).enumerate() {
                    let mut p = vec![0x80, 96];
                    p.extend(seq.to_be_bytes());
                    p.extend([0, 0, 0, 0, 0, 0, 0, 7 + i as u8, 1, 2, 3, 4]);
                    s.send_to(&p, to).unwrap();
                }
                seq = seq.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    node.expect_metric_at_least("supernode_relay_packets_forwarded_total", 10.0)
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    let counters = [
        "supernode_relay_packets_received_total",
        "supernode_relay_bytes_received_total",
        "supernode_relay_packets_forwarded_total",
        "supernode_relay_bytes_forwarded_total",
    ];
    let mut before = Vec::new();
    for c in counters {
        before.push(node.metric(c).await);
    }
    assert!(before[0] >= 10.0 && before[2] >= 10.0, "{before:?}");
    node.expect_metric("supernode_relay_legs", 0.0).await;
    assert!(node.metric("supernode_relay_idle_legs_freed_total").await >= 2.0);
    // The legs are gone; what they counted stays in the `_total` counters.
    for (c, b) in counters.iter().zip(&before) {
        let after = node.metric(c).await;
        assert!(
            after >= *b,
            "{c} fell from {b} to {after} when idle legs were freed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_running_calls_and_keeps_account_data() {
    let dir = data_dir("drain");
    let (_, key) = partner(&dir, "p", true);
    let node = Node::start(&dir, &[("SUPERNODE_DRAIN_SECONDS", "30")]);
    let (mut caller, mut callee) = node.audio_call(&key, "5s").await;
    node.term();
    // Draining: not ready, no new relay sessions, the running call goes on.
    let http = reqwest::Client::new();
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = http
            .get(format!("{}/readyz", node.base()))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "draining");
            break;
        }
        assert!(std::time::Instant::now() < end, "readyz never turned 503");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = http
        .post(format!("{}/v1/relay/sessions", node.base()))
        .bearer_auth(&key)
        .json(&json!({ "legs": [{}, {}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "relay_unavailable");
    assert_eq!(node.metric("supernode_draining").await, 1.0);
    assert_eq!(node.metric("supernode_calls").await, 1.0);

    let (cc, crep) = caller.finish(Duration::from_secs(60));
    let (bc, brep) = callee.finish(Duration::from_secs(60));
    assert_eq!(cc, Some(0), "{crep}");
    assert_eq!(bc, Some(0), "{brep}");
    assert_eq!(crep["ok"], true);
    let mut node = node;
    let st = node.child.wait().unwrap();
    assert!(st.success(), "supernode exit status {st}");
    let lines: Vec<String> = node.stdout.try_iter().collect();
    assert!(
        lines.iter().any(|l| l.contains("stopped (0 calls cut")),
        "{lines:?}"
    );

    // Nothing lost: a new supernode on the same data directory knows the accounts.
    let again = Node::start(&dir, &[]);
    let (_, _token) = again.account(&key, "Carol").await;
    let r = http
        .post(format!("{}/v1/accounts", again.base()))
        .bearer_auth(&key)
        .json(&json!({ "external_id": "x-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_rest_is_for_relay_keys_only_and_in_the_openapi_document() {
    let dir = data_dir("rest");
    let (_, tool) = partner(&dir, "tool", true);
    let (_, other_tool) = partner(&dir, "tool2", true);
    let (_, plain) = partner(&dir, "plain", false);
    let node = Node::start(&dir, &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/relay/sessions", node.base());

    let r = http
        .post(&url)
        .bearer_auth(&plain)
        .json(&json!({ "legs": [{}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "relay_forbidden");
    let r = http
        .post(&url)
        .json(&json!({ "legs": [{}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    for bad in [
        json!({ "legs": [] }),
        json!({ "legs": [{ "remote": "nope" }] }),
        json!({ "legs": [{ "srtp": { "key": "AAAA" } }] }),
        json!({ "legs": [{ "srtp": { "key": "!!" } }] }),
        // Arrays where objects belong: serde would read a struct from them.
        json!({ "legs": [[null, null]] }),
        json!({ "legs": [[]] }),
        json!({ "legs": [{ "srtp": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"] }] }),
        json!([[{}]]),
        // Unknown fields at every depth.
        json!({ "legs": [{}], "ttl": 5 }),
        json!({ "legs": [{ "remote": "127.0.0.1:9", "rmote": "x" }] }),
        json!({ "legs": [{ "srtp": { "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", "kind": 1 } }] }),
    ] {
        let r = http
            .post(&url)
            .bearer_auth(&tool)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_body", "{bad}: {v}");
    }
    assert_eq!(node.metric("supernode_relay_legs").await, 0.0);

    let (id, legs) = common::relay_session(
        &node,
        &tool,
        json!([{ "remote": "127.0.0.1:9" }, { "srtp": { "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd" } }]),
    )
    .await;
    assert_eq!(legs.len(), 2);
    assert_ne!(legs[0], legs[1]);
    let r = http
        .get(format!("{url}/{id}"))
        .bearer_auth(&tool)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["legs"].as_array().unwrap().len(), 2);
    assert_eq!(v["legs"][0]["peer"], "127.0.0.1:9");
    // Another relay partner sees nothing of it.
    let r = http
        .get(format!("{url}/{id}"))
        .bearer_auth(&other_tool)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .delete(format!("{url}/{id}"))
        .bearer_auth(&other_tool)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(node.metric("supernode_relay_legs").await, 2.0);
    let r = http
        .delete(format!("{url}/{id}"))
        .bearer_auth(&tool)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(node.metric("supernode_relay_legs").await, 0.0);
    let r = http
        .get(format!("{url}/{id}"))
        .bearer_auth(&tool)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let doc: serde_json::Value = http
        .get(format!("{}/v1/openapi.json", node.base()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/relay/sessions"]["post"].is_object());
    assert!(doc["paths"]["/v1/relay/sessions/{id}"]["delete"].is_object());
    let schemas = &doc["components"]["schemas"];
    // SrtpSpec is `oneOf` two objects (the key length goes with the profile).
    let srtp = schemas["SrtpSpec"]["oneOf"].as_array().unwrap();
    for schema in [
        &schemas["CreateSession"],
        &schemas["LegSpecBody"],
        &srtp[0],
        &srtp[1],
    ] {
        assert_eq!(schema["type"], "object", "{schema}");
        assert_eq!(schema["additionalProperties"], false, "{schema}");
    }
    assert!(doc["paths"]["/v1/accounts"]["post"].is_object());
}
