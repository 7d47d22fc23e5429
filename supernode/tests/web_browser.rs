//! The web client in real headless Chromium (Debian's `/usr/bin/chromium`, fake camera and
//! microphone), driven by `playwright-core` from npm (`web/tests/run.mjs`), against a real
//! `supernode run` with the demo partner on.
//!
//! Needs `chromium`, `node` and `npm ci` done in `web/tests`; when one is missing the tests
//! print `SKIP: …` and pass, unless `SUPERNODE_REQUIRE_EXTERNAL=1` (CI). Screenshots go to
//! `target/web-tests/<scenario>/`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use supernode_testkit::external::unavailable;

use common::{BIN, Node, data_dir};

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether Chromium, node and the npm packages are there (else `SKIP`, or a panic in CI).
fn driver_ready(test: &str) -> bool {
    if !chromium().exists() {
        return unavailable(format!(
            "{test}: no {} (apt-get install chromium)",
            chromium().display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return unavailable(format!("{test}: no node (apt-get install nodejs npm)"));
    }
    if !tests_dir().join("node_modules/playwright-core").exists() {
        return unavailable(format!(
            "{test}: playwright-core missing (run `npm ci` in {})",
            tests_dir().display()
        ));
    }
    true
}

/// `target/web-tests/<scenario>` (next to the binary under test's profile directory).
fn artifacts(scenario: &str) -> PathBuf {
    let target = Path::new(BIN).parent().and_then(Path::parent).unwrap();
    let dir = target.join("web-tests").join(scenario);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A supernode with the demo partner on.
fn node(tag: &str) -> Node {
    Node::start(&data_dir(tag), &[("SUPERNODE_DEMO_PARTNER", "true")])
}

/// Runs one scenario of the driver; returns its check lines and the final summary.
/// Scenarios run one at a time: several Chromiums at once on a small machine would measure
/// the machine, not the supernode.
fn run(node: &Node, scenario: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = artifacts(scenario);
    let mut child = Command::new("node")
        .arg(tests_dir().join("run.mjs"))
        .args(["--base", &node.base(), "--scenario", scenario, "--out"])
        .arg(&out)
        .args(extra)
        .env("CHROMIUM_BIN", chromium())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting node");
    let mut lines = Vec::new();
    let mut summary = Value::Null;
    for l in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        eprintln!("[run.mjs] {l}");
        let Ok(v) = serde_json::from_str::<Value>(&l) else {
            continue;
        };
        if v.get("scenario").is_some() {
            summary = v;
        } else {
            lines.push(v);
        }
    }
    let status = child.wait().unwrap();
    assert!(
        status.success() && summary["ok"] == true,
        "{scenario} failed ({status}): {summary}"
    );
    (lines, summary)
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
