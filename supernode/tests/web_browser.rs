//! The web client in real headless Chromium (Debian's `/usr/bin/chromium`, fake camera and
//! microphone), driven by `playwright-core` from npm (`web/tests/run.mjs`), against a real
//! `supernode run` with the demo partner on.
//!
//! Needs `chromium`, `node` and `npm ci` done in `web/tests` (and Debian's `coturn` for the
//! relay-only test); when one is missing the tests print `SKIP: …` and pass, unless
//! `SUPERNODE_REQUIRE_EXTERNAL=1` (CI). Screenshots go to `target/web-tests/<scenario>/`.
//! The browser ↔ edge tests run the real `edge` binary (as the end-to-end tests do).

mod common;

use std::process::Command;

use serde_json::Value;

use common::web::{ONE_CHROMIUM, artifacts, chromium, driver_ready, run, run_with, tests_dir};
use common::{BIN, Edge, Node, data_dir};

/// A supernode with the demo partner on.
fn node(tag: &str) -> Node {
    Node::start(&data_dir(tag), &[("SUPERNODE_DEMO_PARTNER", "true")])
}

#[test]
fn three_tabs_of_one_account_the_first_to_answer_takes_the_call() {
    if !driver_ready("three_tabs") {
        return;
    }
    let node = node("web-tabs");
    let (checks, summary) = run(&node, "tabs", &[]);
    let names: Vec<&str> = checks.iter().filter_map(|c| c["check"].as_str()).collect();
    for want in [
        "all three tabs ring",
        "the other two tabs show \"Answered in another tab\" within 1 s",
        "the first tab took the call",
        "a later accept from another tab is refused",
    ] {
        assert!(names.contains(&want), "missing check {want:?}: {names:?}");
    }
    let delays = summary["facts"]["answered_elsewhere_ms"]
        .as_array()
        .unwrap();
    assert_eq!(delays.len(), 2);
    assert!(
        delays.iter().all(|d| d.as_f64().unwrap() < 1000.0),
        "{delays:?}"
    );
    assert!(
        artifacts("tabs")
            .join("tabs-answered-elsewhere.png")
            .exists()
    );
}

/// Must-show (1): two browsers in a call through the supernode's relay.
#[test]
fn browser_to_browser_call_media_flows_both_ways() {
    if !driver_ready("browser_to_browser") {
        return;
    }
    let node = node("web-b2b");
    let (checks, _) = run(&node, "b2b", &["--seconds", "8"]);
    for side in ["caller", "callee"] {
        for what in [
            "framesDecoded grows",
            "audio totalSamplesReceived grows",
            "video packetsLost < 1 %",
            "audio packetsLost < 1 %",
        ] {
            let name = format!("{side}: {what}");
            assert!(
                checks
                    .iter()
                    .any(|c| c["check"] == name.as_str() && c["ok"] == true),
                "{name}: {checks:?}"
            );
        }
    }
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "the remote video plays on both sides" && c["ok"] == true),
        "{checks:?}"
    );
    for shot in ["b2b-caller.png", "b2b-callee.png"] {
        assert!(artifacts("b2b").join(shot).exists(), "{shot}");
    }
}

/// A demo account and its login token (`POST /demo/login`, as the web page logs in), so the
/// browser sees it among its contacts.
fn demo_login(node: &Node, name: &str) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let v: Value = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/demo/login", node.base()))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    });
    (
        v["account"]["id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
    )
}

/// The edge client's media options for a call with a browser: it sends its test pattern
/// and synthetic speech; the browser sends Chromium's fake camera and tone (no reference to
/// compare against). The browser ends the call.
const EDGE_MEDIA: [&str; 7] = [
    "--duration",
    "90s",
    "--no-reference",
    "--width",
    "320",
    "--height",
    "180",
];

/// Must-show (2), both directions: the edge's report and the browser's `getStats()` agree
/// that at least 90 % of the frames each side sent were decoded on the other, audio flowed
/// both ways, and under 1 % of packets were lost.
fn check_browser_and_edge(checks: &[Value], summary: &Value, edge: &mut Edge) {
    let (code, rep) = edge.finish(std::time::Duration::from_secs(60));
    eprintln!("edge report: {rep}");
    assert_eq!(code, Some(0), "{rep}");
    assert_eq!(rep["ok"], true, "{rep}");
    for what in [
        "framesDecoded grows",
        "audio totalSamplesReceived grows",
        "video packetsLost < 1 %",
        "audio packetsLost < 1 %",
    ] {
        let name = format!("browser: {what}");
        assert!(
            checks
                .iter()
                .any(|c| c["check"] == name.as_str() && c["ok"] == true),
            "{name}: {checks:?}"
        );
    }
    let fin = &summary["facts"]["final"];
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let browser_sent = n(&fin["videoOut"]["framesSent"]);
    let browser_decoded = n(&fin["videoIn"]["framesDecoded"]);
    let edge_sent = n(&rep["video"]["frames_sent"]);
    let edge_decoded = n(&rep["video"]["frames_decoded"]);
    eprintln!(
        "browser -> edge: {edge_decoded} of {browser_sent} frames decoded; \
         edge -> browser: {browser_decoded} of {edge_sent}"
    );
    assert!(browser_sent > 100.0, "browser sent {browser_sent} frames");
    assert!(edge_sent > 100.0, "edge sent {edge_sent} frames");
    assert!(
        edge_decoded >= 0.9 * browser_sent,
        "the edge decoded {edge_decoded} of the browser's {browser_sent} frames"
    );
    assert!(
        browser_decoded >= 0.9 * edge_sent,
        "the browser decoded {browser_decoded} of the edge's {edge_sent} frames"
    );
    // Audio both ways, under 1 % lost.
    assert!(
        rep["audio"]["packets_received"].as_u64().unwrap() > 100,
        "{rep}"
    );
    assert!(rep["audio"]["loss_pct"].as_f64().unwrap() < 1.0, "{rep}");
    assert!(rep["video"]["loss_pct"].as_f64().unwrap() < 1.0, "{rep}");
    assert!(
        n(&fin["audioIn"]["totalSamplesReceived"]) > 48_000.0,
        "{fin}"
    );
}

/// Must-show (2): a browser calls an edge client that answers.
#[test]
fn browser_calls_an_edge_client_media_flows_both_ways() {
    if !driver_ready("browser_calls_edge") {
        return;
    }
    let node = node("web-b2e");
    let (edge_account, token) = demo_login(&node, "Edge");
    let mut args = vec!["answer", "--auto-accept", "--wait", "120s"];
    args.extend(EDGE_MEDIA);
    let mut edge = Edge::signaled(&node, &token, &args);
    let (checks, summary) = run(
        &node,
        "edge-callee",
        &["--seconds", "10", "--callee-account", &edge_account],
    );
    check_browser_and_edge(&checks, &summary, &mut edge);
    assert!(
        artifacts("edge-callee")
            .join("browser-calls-edge.png")
            .exists()
    );
}

/// Must-show (2): an edge client calls a browser, which answers.
#[test]
fn an_edge_client_calls_a_browser_media_flows_both_ways() {
    if !driver_ready("edge_calls_browser") {
        return;
    }
    let node = node("web-e2b");
    let (_, token) = demo_login(&node, "Edge");
    let mut edge = None;
    let (checks, summary) = run_with(&node, "edge-caller", &["--seconds", "10"], |v| {
        if let Some(acc) = v["browser_account"].as_str() {
            let mut args = vec!["call", acc, "--ring-timeout", "60s"];
            args.extend(EDGE_MEDIA);
            edge = Some(Edge::signaled(&node, &token, &args));
        }
    });
    let mut edge = edge.expect("the browser printed its account");
    check_browser_and_edge(&checks, &summary, &mut edge);
}

/// Must-show (4): two browsers forced to `iceTransportPolicy: "relay"` call each other
/// through a real coturn on loopback, authenticated with the TURN-REST credentials of their
/// login's `ice_servers`.
#[test]
fn browsers_forced_to_relay_call_through_coturn() {
    if !driver_ready("relay_only") {
        return;
    }
    let secret = "turn-secret-for-tests";
    let Some(turn) = supernode_testkit::coturn::Coturn::start(secret) else {
        return;
    };
    let url = turn.url();
    let node = Node::start(
        &data_dir("web-turn"),
        &[
            ("SUPERNODE_DEMO_PARTNER", "true"),
            ("SUPERNODE_TURN_URLS", &url),
            ("SUPERNODE_TURN_SECRET", secret),
        ],
    );
    let (checks, summary) = run(&node, "relay-b2b", &["--seconds", "8"]);
    let ok = |name: &str| checks.iter().any(|c| c["check"] == name && c["ok"] == true);
    assert!(ok("the login carried TURN ice_servers"), "{checks:?}");
    assert!(ok("the offers carry relay candidates only"), "{checks:?}");
    for side in ["caller", "callee"] {
        for what in [
            "framesDecoded grows",
            "audio totalSamplesReceived grows",
            "video packetsLost < 1 %",
            "audio packetsLost < 1 %",
        ] {
            let name = format!("{side}: {what}");
            assert!(ok(&name), "{name}: {checks:?}");
        }
    }
    assert!(
        ok("both sides send through TURN (selected local candidate: relay)"),
        "{summary}"
    );
    // coturn itself saw the allocations (authenticated) and relayed toward the supernode.
    let log = turn.log();
    assert!(
        log.contains("ALLOCATE") && log.contains("success"),
        "coturn log:\n{log}"
    );
}

/// `supernode demo --browser`: after the edge-to-edge call, headless Chromium calls a third
/// party (an edge client) and that call's figures are printed and checked too.
#[test]
fn the_demo_with_a_browser_passes() {
    if !driver_ready("demo_browser") {
        return;
    }
    let _turn = ONE_CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(BIN)
        .args(["demo", "--browser", "--seconds", "6", "--edge"])
        .arg(common::edge_bin())
        .arg("--web-tests")
        .arg(tests_dir())
        .env("CHROMIUM_BIN", chromium())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("VERDICT: PASS"), "{text}");
    assert!(text.contains("and a browser <-> edge call"), "{text}");
    assert!(text.contains("== Carol (edge, called by the browser) report =="));
    assert!(text.contains("browser -> Carol: "), "{text}");
}
