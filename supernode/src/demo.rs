//! `supernode demo`: one real call, end to end, on this machine.
//!
//! 1. Starts `supernode run` (this same executable) with embedded defaults on a free
//!    loopback port, in a fresh temporary data directory.
//! 2. Creates a partner (`supernode admin partner create`), then — as the partner's server
//!    would — two anonymous accounts and a login credential for each through the REST API.
//! 3. Starts two `edge` processes (found next to this executable, or at `--edge`): one
//!    answers, the other calls; they exchange Opus speech-like audio and an H.264 test pattern
//!    over SRTP legs of the relay for `--seconds` (10 by default), then hang up.
//! 4. Prints progress lines, both call reports, each side's E-model MOS estimate
//!    (`audio.mos` of its report) and a one-line verdict. It fails (non-zero
//!    exit) when either side reports a failure, any loss, no mouth-to-ear figure, audio
//!    similarity below the edge's pass threshold, video PSNR below 32 dB, or when the relay
//!    still holds legs after the hangup.
//!
//! 5. With `--browser`: headless Chromium (the web client, driven by `web/tests/run.mjs`)
//!    logs in through the demo partner and calls a third party, an edge client that answers;
//!    after `--seconds` of media the browser hangs up and both sides' figures are printed (the
//!    browser's `getStats()` and the edge's report). It fails when either side decoded fewer
//!    than 90 % of the frames the other sent, or the browser's checks failed. Without
//!    Chromium, node or the npm packages it fails saying how to get them.
//!
//! Every child process is killed on every path (a guard owns them); the data directory is
//! removed at the end unless `--keep-data` is given.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::DemoArgs;

/// Lowest video PSNR that passes, dB (the codec issue's bar at 640×360, 800 kbit/s).
pub const MIN_PSNR_DB: f64 = 32.0;
/// Lowest audio similarity that passes (the edge's `similarity::PASS_THRESHOLD`).
pub const MIN_SIMILARITY: f64 = 0.7;

/// What the browser's call with an edge client gave.
struct BrowserCall {
    /// The browser's last `getStats()` figures (the driver's `facts.final`).
    browser: Value,
    /// The edge's report.
    edge: Option<Value>,
    /// One line of figures.
    line: String,
    /// What failed.
    problems: Vec<String>,
}

/// The browser driver's directory: `--web-tests`, `$SUPERNODE_WEB_TESTS`, else `web/tests`
/// of the source tree this executable was built from.
fn web_tests_dir(args: &DemoArgs) -> PathBuf {
    args.web_tests
        .clone()
        .or_else(|| std::env::var_os("SUPERNODE_WEB_TESTS").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests"))
}

/// How to get what the browser part needs, when something is missing.
pub fn browser_missing(web_tests: &Path) -> Option<String> {
    let chromium = std::env::var_os("CHROMIUM_BIN")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Some(format!(
            "no {} (Debian: apt-get install chromium nodejs npm)",
            chromium.display()
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return Some("no node (Debian: apt-get install nodejs npm)".into());
    }
    if !web_tests.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core missing: run `npm ci` in {} (or `make web-test-deps`)",
            web_tests.display()
        ));
    }
    None
}

/// Headless Chromium calls an edge client that answers (a third party, Carol).
fn browser_call(
    args: &DemoArgs,
    edge: &Path,
    base: &str,
    dir: &Path,
    guard: &mut Guard,
) -> anyhow::Result<BrowserCall> {
    let web = web_tests_dir(args);
    if let Some(why) = browser_missing(&web) {
        bail!("--browser: {why}");
    }
    let secs = args.seconds.max(4);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Carol logs in through the demo partner, as the web page does, so the browser sees her
    // among its contacts.
    let login: Value = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/demo/login"))
            .json(&json!({ "name": "Carol (edge)" }))
            .send()
            .await
            .context("POST /demo/login")?;
        let status = r.status();
        let v: Value = r.json().await.context("JSON answer")?;
        if !status.is_success() {
            bail!("POST /demo/login: {status} {v}");
        }
        anyhow::Ok(v)
    })?;
    let carol = login["account"]["id"]
        .as_str()
        .context("account id")?
        .to_owned();
    let token = login["token"].as_str().context("token")?;
    let mut c = Command::new(edge)
        .arg("--server")
        .arg(base)
        .arg("--token")
        .arg(token)
        .args(["answer", "--auto-accept", "--wait", "120s", "--duration"])
        .arg(format!("{}s", secs + 60))
        .args(["--no-reference", "--width", "320", "--height", "180"])
        .args(["--report-json", "--media-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting Carol's edge")?;
    let carol_err = relay_lines("carol", c.stderr.take().context("stderr")?);
    let carol_out = collect(c.stdout.take().context("stdout")?);
    let ci = guard.add("edge answer (Carol)", c);
    say(&format!(
        "headless Chromium logs in to the web client and calls Carol ({carol}), an edge client: \
         {secs} s of audio + video through the relay (WebRTC on the browser's side)"
    ));
    let out_dir = dir.join("browser");
    let mut d = Command::new("node")
        .arg(web.join("run.mjs"))
        .args(["--base", base, "--scenario", "edge-callee", "--out"])
        .arg(&out_dir)
        .args(["--seconds", &secs.to_string(), "--callee-account", &carol])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting node web/tests/run.mjs")?;
    let driver_err = relay_lines("browser", d.stderr.take().context("stderr")?);
    let driver_out = collect(d.stdout.take().context("stdout")?);
    let di = guard.add("browser driver", d);
    let driver_status = guard.wait(di, Duration::from_secs(secs + 120));
    let carol_status = guard.wait(ci, Duration::from_secs(30));
    drop((carol_err, driver_err));
    let text = driver_out
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let summary = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("scenario").is_some())
        .unwrap_or(Value::Null);
    let edge_report = last_json(
        &carol_out
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default(),
    );
    let mut problems = Vec::new();
    if summary["ok"] != true || !driver_status.is_some_and(|s| s.success()) {
        problems.push(format!(
            "the browser's call failed: {}",
            summary
                .get("failures")
                .map_or_else(|| "no summary from the driver".to_owned(), Value::to_string)
        ));
    }
    // Carol hears Chromium's fake microphone and sees its fake camera: no reference to
    // score similarity or PSNR against; her report must be ok with audio and under 1 % loss.
    if !carol_status.is_some_and(|s| s.success()) {
        problems.push(format!("Carol's edge ended with {carol_status:?}"));
    }
    match &edge_report {
        Some(r) if r["ok"] == true => {
            let loss = r.pointer("/audio/loss_pct").and_then(Value::as_f64);
            if !loss.is_some_and(|l| l < 1.0) {
                problems.push(format!("Carol's audio loss {loss:?} %"));
            }
        }
        Some(r) => problems.push(format!("Carol: {}", r["failure"])),
        None => problems.push("Carol's edge printed no report".into()),
    }
    let fin = summary["facts"]["final"].clone();
    let n = |v: Option<&Value>, p: &str| v.and_then(|v| v.pointer(p)).and_then(Value::as_f64);
    let b_sent = n(Some(&fin), "/videoOut/framesSent").unwrap_or(0.0);
    let b_dec = n(Some(&fin), "/videoIn/framesDecoded").unwrap_or(0.0);
    let e_sent = n(edge_report.as_ref(), "/video/frames_sent").unwrap_or(0.0);
    let e_dec = n(edge_report.as_ref(), "/video/frames_decoded").unwrap_or(0.0);
    if b_sent == 0.0 || e_dec < 0.9 * b_sent {
        problems.push(format!(
            "Carol decoded {e_dec} of the browser's {b_sent} frames (under 90 %)"
        ));
    }
    if e_sent == 0.0 || b_dec < 0.9 * e_sent {
        problems.push(format!(
            "the browser decoded {b_dec} of Carol's {e_sent} frames (under 90 %)"
        ));
    }
    let line = format!(
        "browser -> Carol: {e_dec} of {b_sent} frames decoded; Carol -> browser: {b_dec} of \
         {e_sent}; browser audio received {} samples, lost {} packets; Carol's MOS {}",
        n(Some(&fin), "/audioIn/totalSamplesReceived").unwrap_or(0.0),
        n(Some(&fin), "/audioIn/packetsLost").unwrap_or(0.0)
            + n(Some(&fin), "/videoIn/packetsLost").unwrap_or(0.0),
        n(edge_report.as_ref(), "/audio/mos").map_or_else(|| "n/a".into(), |m| format!("{m:.2}")),
    );
    Ok(BrowserCall {
        browser: fin,
        edge: edge_report,
        line,
        problems,
    })
}

/// Children killed when dropped.
#[derive(Default)]
pub(crate) struct Guard {
    pub(crate) children: Vec<(String, Child)>,
}

impl Guard {
    pub(crate) fn add(&mut self, name: &str, c: Child) -> usize {
        self.children.push((name.to_owned(), c));
        self.children.len() - 1
    }

    pub(crate) fn pid(&self, i: usize) -> u32 {
        self.children[i].1.id()
    }

    /// Waits for child `i` up to `limit`; kills it past that.
    pub(crate) fn wait(&mut self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        let c = &mut self.children[i].1;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return Some(s);
            }
            if Instant::now() >= end {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

pub(crate) fn say(msg: &str) {
    println!("demo: {msg}");
}

/// Forwards a child's stderr lines with a prefix; returns them all at the end.
pub(crate) fn relay_lines(
    name: &'static str,
    r: impl Read + Send + 'static,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            println!("  [{name}] {line}");
            let _ = tx.send(line);
        }
    });
    rx
}

/// Collects a child's whole stdout.
pub(crate) fn collect(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(r).read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// The `edge` executable: `--edge`, else `$SUPERNODE_EDGE_BIN`, else next to this one.
pub fn edge_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Some(p) = std::env::var_os("SUPERNODE_EDGE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("locating this executable")?;
    let p = me.with_file_name("edge");
    if !p.exists() {
        bail!(
            "no `edge` executable at {} — build it first: cargo build --release -p supernode-edge \
             (`make demo` does)",
            p.display()
        );
    }
    Ok(p)
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.nodes > 1 {
        if args.browser {
            bail!("--browser runs with one supernode (leave out --nodes)");
        }
        return crate::demo_network::run(args);
    }
    let edge = edge_path(args.edge.as_deref())?;
    let me = std::env::current_exe().context("locating this executable")?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!("supernode-demo-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let r = demo(&args, &me, &edge, &dir);
    if args.keep_data {
        say(&format!("data kept in {}", dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

fn demo(args: &DemoArgs, me: &Path, edge: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut guard = Guard::default();
    say(&format!("data directory {}", dir.display()));

    // The partner: an operator action on the database.
    let out = Command::new(me)
        .args(["admin", "--data-dir"])
        .arg(dir)
        .args(["partner", "create", "demo-partner"])
        .env_remove("SUPERNODE_CONFIG")
        .output()
        .context("running supernode admin")?;
    if !out.status.success() {
        bail!(
            "supernode admin failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let partner: Value = serde_json::from_slice(&out.stdout).context("admin output")?;
    let api_key = partner["api_key"]
        .as_str()
        .context("no api_key from admin")?
        .to_owned();
    say(&format!(
        "partner {} created (API key issued)",
        partner["id"].as_str().unwrap_or("?")
    ));

    // The supernode.
    let log = std::fs::File::create(dir.join("supernode.log"))?;
    let mut child = Command::new(me)
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("SUPERNODE_CONFIG")
        .env("SUPERNODE_DRAIN_SECONDS", "5")
        // The web client works against the demo's supernode (open the printed URL).
        .env("SUPERNODE_DEMO_PARTNER", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .context("starting supernode run")?;
    let stdout = child.stdout.take().context("supernode stdout")?;
    let sn = guard.add("supernode", child);
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("  [supernode] {line}");
            if let Some(rest) = line.strip_prefix("supernode: listening on http://")
                && let Ok(a) = rest.trim().parse::<SocketAddr>()
            {
                let _ = addr_tx.send(a);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(20))
        .context("supernode did not start (see supernode.log with --keep-data)")?;
    let base = format!("http://{addr}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let DemoPair {
        alice,
        bob,
        alice_token: alice_tok,
        bob_token: bob_tok,
    } = rt.block_on(make_pair(&http, &base, &api_key))?;
    say(&format!(
        "accounts {alice} (Alice, caller) and {bob} (Bob, callee) created; credentials issued"
    ));

    let secs = args.seconds.max(2);
    let spawn_edge = |role: &[&str], token: &str, seed: &str, peer_seed: &str| {
        Command::new(edge)
            .arg("--server")
            .arg(&base)
            .arg("--token")
            .arg(token)
            .args(role)
            .args(["--report-json", "--duration"])
            .arg(format!("{secs}s"))
            .args(["--seed", seed, "--peer-seed", peer_seed])
            .args(["--media-bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let mut callee = spawn_edge(
        &["answer", "--auto-accept", "--wait", "60s"],
        &bob_tok,
        "2",
        "1",
    )
    .context("starting edge answer")?;
    let callee_err = relay_lines("bob", callee.stderr.take().context("stderr")?);
    let callee_out = collect(callee.stdout.take().context("stdout")?);
    let ci = guard.add("edge answer", callee);
    say("Bob's edge is logging in and waits for a call");
    let t0 = Instant::now();
    while metric(&rt, &http, &base, "supernode_endpoints") < Some(1.0) {
        if t0.elapsed() > Duration::from_secs(15) {
            bail!("Bob's edge did not log in");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    say(&format!(
        "Alice's edge calls Bob: {secs} s of Opus audio + H.264 640x360 video over SRTP \
         through the relay (one relay leg per endpoint carries both)"
    ));
    let mut caller =
        spawn_edge(&["call", bob.as_str()], &alice_tok, "1", "2").context("starting edge call")?;
    let caller_err = relay_lines("alice", caller.stderr.take().context("stderr")?);
    let caller_out = collect(caller.stdout.take().context("stdout")?);
    let ki = guard.add("edge call", caller);

    // Progress from the supernode's metrics while the call runs.
    let start = Instant::now();
    let limit = Duration::from_secs(secs + 40);
    loop {
        if let Ok(Some(_)) = guard.children[ki].1.try_wait() {
            break;
        }
        if start.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        let calls = metric(&rt, &http, &base, "supernode_calls").unwrap_or(0.0);
        let legs = metric(&rt, &http, &base, "supernode_relay_legs").unwrap_or(0.0);
        let fwd =
            metric(&rt, &http, &base, "supernode_relay_packets_forwarded_total").unwrap_or(0.0);
        say(&format!(
            "t+{:>2} s: {calls} call(s), {legs} relay legs, {fwd} packets forwarded",
            start.elapsed().as_secs()
        ));
    }
    let caller_status = guard.wait(ki, Duration::from_secs(5));
    let callee_status = guard.wait(ci, Duration::from_secs(20));
    drop((caller_err, callee_err));
    let caller_json = caller_out
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    let callee_json = callee_out
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();

    // Legs are freed at hangup.
    let mut legs_after = None;
    for _ in 0..30 {
        legs_after = metric(&rt, &http, &base, "supernode_relay_legs");
        if legs_after == Some(0.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let browser = if args.browser {
        Some(browser_call(args, edge, &base, dir, &mut guard)?)
    } else {
        None
    };

    // Stop the supernode cleanly (SIGTERM drains; nothing is running any more).
    let _ = Command::new("kill")
        .args(["-TERM", &guard.pid(sn).to_string()])
        .status();
    if guard.wait(sn, Duration::from_secs(10)).is_none() {
        say("supernode did not stop on SIGTERM; killed");
    } else {
        say("supernode stopped (SIGTERM, drained)");
    }

    let caller_report = last_json(&caller_json);
    let callee_report = last_json(&callee_json);
    println!();
    println!("== Alice (caller) report ==");
    println!("{}", pretty(&caller_report));
    println!("== Bob (callee) report ==");
    println!("{}", pretty(&callee_report));
    println!();

    let mut problems = Vec::new();
    for (who, st, rep) in [
        ("Alice", caller_status, &caller_report),
        ("Bob", callee_status, &callee_report),
    ] {
        check(who, st, rep, &mut problems);
    }
    if legs_after != Some(0.0) {
        problems.push(format!(
            "relay still holds {legs_after:?} legs after the hangup"
        ));
    }
    if let Some(b) = &browser {
        println!("== Browser (headless Chromium) calls Carol (edge): browser getStats ==");
        println!("{}", pretty(&Some(b.browser.clone())));
        println!("== Carol (edge, called by the browser) report ==");
        println!("{}", pretty(&b.edge));
        println!("{}", b.line);
        println!();
        problems.extend(b.problems.iter().cloned());
    }
    let fig = |r: &Option<Value>, p: &str| {
        r.as_ref()
            .and_then(|v| v.pointer(p))
            .and_then(Value::as_f64)
            .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.1}"))
    };
    let mos = |r: &Option<Value>| {
        r.as_ref()
            .and_then(|v| v.pointer("/audio/mos"))
            .and_then(Value::as_f64)
            .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}"))
    };
    println!(
        "call quality (E-model MOS estimate from loss, jitter buffer, RTT, Opus): Alice hears {}, \
         Bob hears {}",
        mos(&caller_report),
        mos(&callee_report)
    );
    let summary = format!(
        "MOS {}/{}, loss {}%/{}%, similarity {}/{}, PSNR {}/{} dB, mouth-to-ear {}/{} ms, RTT {}/{} ms (Alice/Bob)",
        mos(&caller_report),
        mos(&callee_report),
        fig(&caller_report, "/audio/loss_pct"),
        fig(&callee_report, "/audio/loss_pct"),
        fig(&caller_report, "/audio/similarity"),
        fig(&callee_report, "/audio/similarity"),
        fig(&caller_report, "/video/psnr_db"),
        fig(&callee_report, "/video/psnr_db"),
        fig(&caller_report, "/mouth_to_ear_ms"),
        fig(&callee_report, "/mouth_to_ear_ms"),
        fig(&caller_report, "/rtt_ms"),
        fig(&callee_report, "/rtt_ms"),
    );
    let with_browser = if browser.is_some() {
        " and a browser <-> edge call"
    } else {
        ""
    };
    if problems.is_empty() {
        println!(
            "VERDICT: PASS — {secs} s audio+video call through the relay{with_browser}; {summary}"
        );
        Ok(())
    } else {
        println!("VERDICT: FAIL — {}; {summary}", problems.join("; "));
        bail!("the demo call failed")
    }
}

pub(crate) fn check(
    who: &str,
    st: Option<ExitStatus>,
    rep: &Option<Value>,
    problems: &mut Vec<String>,
) {
    match st {
        Some(s) if s.success() => {}
        Some(s) => problems.push(format!("{who}'s edge exited with {s}")),
        None => problems.push(format!("{who}'s edge did not finish in time")),
    }
    let Some(r) = rep else {
        problems.push(format!("{who}'s edge printed no report"));
        return;
    };
    let f = |p: &str| r.pointer(p).and_then(Value::as_f64);
    if r.pointer("/ok").and_then(Value::as_bool) != Some(true) {
        problems.push(format!(
            "{who}: {}",
            r.pointer("/failure")
                .and_then(Value::as_str)
                .unwrap_or("call not ok")
        ));
    }
    if f("/audio/packets_received").unwrap_or(0.0) <= 0.0 {
        problems.push(format!("{who} received no audio"));
    }
    if f("/audio/loss_pct") != Some(0.0) {
        problems.push(format!(
            "{who} saw audio loss {:?}% on loopback",
            f("/audio/loss_pct")
        ));
    }
    if f("/video/frames_decoded").unwrap_or(0.0) <= 0.0 {
        problems.push(format!("{who} decoded no video"));
    }
    match f("/audio/similarity") {
        Some(s) if s >= MIN_SIMILARITY => {}
        s => problems.push(format!("{who}: audio similarity {s:?} < {MIN_SIMILARITY}")),
    }
    match f("/video/psnr_db") {
        Some(p) if p >= MIN_PSNR_DB => {}
        p => problems.push(format!("{who}: video PSNR {p:?} < {MIN_PSNR_DB} dB")),
    }
    if f("/mouth_to_ear_ms").is_none() {
        problems.push(format!("{who}: no mouth-to-ear figure"));
    }
}

/// The last line of `s` that parses as a JSON object.
pub fn last_json(s: &str) -> Option<Value> {
    s.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
}

pub(crate) fn pretty(v: &Option<Value>) -> String {
    match v {
        Some(v) => {
            let mut v = v.clone();
            // The per-mark samples make the report long; the median is shown.
            if let Some(o) = v.as_object_mut() {
                o.remove("mouth_to_ear_samples_ms");
            }
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        None => "(none)".into(),
    }
}

/// Alice and Bob, the demo's two anonymous accounts, with a login credential each.
pub(crate) struct DemoPair {
    pub alice: String,
    pub bob: String,
    pub alice_token: String,
    pub bob_token: String,
}

/// Creates the demo's two accounts through the partner REST API at `base` and issues each a
/// credential: what a partner's server does before its users call.
pub(crate) async fn make_pair(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
) -> anyhow::Result<DemoPair> {
    let post = |path: String, body: Value| {
        let url = format!("{base}{path}");
        async move {
            let r = http
                .post(&url)
                .bearer_auth(api_key)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = r.status();
            let v: Value = r.json().await.context("JSON answer")?;
            if !status.is_success() {
                bail!("POST {url}: {status} {v}");
            }
            anyhow::Ok(v)
        }
    };
    let account = |name: &'static str, external: &'static str| {
        let post = &post;
        async move {
            let account = post(
                "/v1/accounts".into(),
                json!({"display_name": name, "external_id": external}),
            )
            .await?;
            let id = account["id"].as_str().context("account id")?.to_owned();
            let cred = post(format!("/v1/accounts/{id}/credentials"), json!({})).await?;
            let token = cred["token"].as_str().context("token")?.to_owned();
            anyhow::Ok((id, token))
        }
    };
    let (alice, alice_token) = account("Alice", "demo-alice").await?;
    let (bob, bob_token) = account("Bob", "demo-bob").await?;
    Ok(DemoPair {
        alice,
        bob,
        alice_token,
        bob_token,
    })
}

/// One unlabelled sample of `/metrics`.
pub(crate) fn metric(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    base: &str,
    name: &str,
) -> Option<f64> {
    let text = rt.block_on(async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    })?;
    metric_value(&text, name)
}

/// The value of the unlabelled series `name` in Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}
