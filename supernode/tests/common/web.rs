//! The browser driver of the tests: `web/tests/run.mjs` (playwright-core driving Debian's
//! headless Chromium with fake devices) against a running supernode, one scenario at a time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use supernode_testkit::external::unavailable;

use super::{BIN, Node};

pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests")
}

pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Whether Chromium, node and the npm packages are there (else `SKIP`, or a panic in CI).
pub fn driver_ready(test: &str) -> bool {
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
pub fn artifacts(scenario: &str) -> PathBuf {
    let target = Path::new(BIN).parent().and_then(Path::parent).unwrap();
    let dir = target.join("web-tests").join(scenario);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium runs one scenario at a time: several at once on a small machine would measure
/// the machine, not the supernode.
pub static ONE_CHROMIUM: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs one scenario of the driver; returns its check lines and the final summary.
/// Scenarios run one at a time: several Chromiums at once on a small machine would measure
/// the machine, not the supernode.
pub fn run(node: &Node, scenario: &str, extra: &[&str]) -> (Vec<Value>, Value) {
    run_with(node, scenario, extra, |_| {})
}

/// [`run`], calling `on_line` with every JSON line as it comes (e.g. to start an edge
/// client once the browser printed its account).
pub fn run_with(
    node: &Node,
    scenario: &str,
    extra: &[&str],
    on_line: impl FnMut(&Value),
) -> (Vec<Value>, Value) {
    run_at(&node.base(), scenario, extra, on_line)
}

/// [`run_with`] against the supernode at `base` (`http://IP:PORT`).
pub fn run_at(
    base: &str,
    scenario: &str,
    extra: &[&str],
    mut on_line: impl FnMut(&Value),
) -> (Vec<Value>, Value) {
    let _turn = ONE_CHROMIUM.lock().unwrap_or_else(|e| e.into_inner());
    let out = artifacts(scenario);
    let mut child = Command::new("node")
        .arg(tests_dir().join("run.mjs"))
        .args(["--base", base, "--scenario", scenario, "--out"])
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
        on_line(&v);
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
